//! What a loaded model is, and why a model or a batch is refused.

/// What a loaded model is: its signature and the digest of its bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    pub input_name: String,
    pub output_name: String,
    pub input_width: u32,
    /// Hex sha256 of the ONNX bytes the model was loaded from.
    pub sha256: String,
}

/// Why a model could not be loaded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// The bytes are not an ONNX model tract can read or optimize.
    #[error("invalid ONNX model: {0}")]
    Invalid(String),
    /// The model reads well but its input or output is not `[N, width]` f32 → `[N]` or `[N, 1]`.
    #[error("unsupported model signature: {0}")]
    UnsupportedSignature(String),
}

/// Why a batch could not be scored. Nothing of the batch is scored then.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScoreError {
    #[error("features: the batch is empty")]
    EmptyBatch,
    /// The flat feature buffer is not a whole number of rows of the model's width.
    #[error("features: {len} values are not a whole number of rows of width {width}")]
    WrongWidth { width: u32, len: u32 },
    #[error("features: row {row} holds a value that is not finite")]
    NonFinite { row: u32 },
    /// The model failed (tract's message). A model that scores a row as NaN or infinite has not
    /// failed: its scores come back as they are, for the caller to judge.
    #[error("inference failed: {0}")]
    Inference(String),
}
