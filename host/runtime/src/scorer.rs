//! Stateless scoring with one model in its own instance of the component.

use std::sync::Arc;

use edgescore_types as types;
use wasmtime::component::ResourceAny;

use crate::convert;
use crate::instance::{CallError, Instance, Restartable};
use crate::runtime::Runtime;

/// Stateless scoring with one model.
pub struct Scorer {
    runtime: Runtime,
    onnx: Arc<[u8]>,
    info: types::ModelInfo,
    live: Restartable,
}

impl Scorer {
    pub fn new(runtime: &Runtime, onnx: &[u8]) -> Result<Self, CallError> {
        let (mut instance, model) = start_scorer(runtime, onnx)?;
        let info =
            instance.call(|b, s| b.edgescore_scoring_scorer().model().call_info(s, model))?;
        Ok(Scorer {
            runtime: runtime.clone(),
            onnx: onnx.into(),
            info: convert::model_info(info),
            live: Restartable::new(instance, model),
        })
    }

    pub fn info(&self) -> &types::ModelInfo {
        &self.info
    }

    /// Scores `rows × width` features (row-major) in one call.
    pub fn score(&mut self, features: &[f32]) -> Result<Vec<f32>, CallError> {
        let Scorer {
            runtime,
            onnx,
            live,
            ..
        } = self;
        live.call(
            || start_scorer(runtime, onnx),
            |i, m| {
                i.call(|b, s| {
                    b.edgescore_scoring_scorer()
                        .model()
                        .call_score(s, m, features)
                })
            },
        )?
        .map_err(|e| convert::score_error(e).into())
    }
}

fn start_scorer(runtime: &Runtime, onnx: &[u8]) -> Result<(Instance, ResourceAny), CallError> {
    let mut instance = Instance::new(runtime)?;
    let model = instance.load_model(onnx)?;
    Ok((instance, model))
}
