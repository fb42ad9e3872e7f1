//! edgescore's scoring core: a plain Rust library with no WebAssembly or wasmtime dependency,
//! used natively by the hosts and compiled into the scoring component.
//!
//! - [`model`]: ONNX model runner on tract (`[N, width]` f32 rows → one score per row).
//! - [`window`] / [`windows`]: exact rolling medians per user under a service-wide watermark.
//! - [`rules`]: how an event is judged (width, finiteness, clock skew, lateness).
//! - [`api`]: the HTTP contract's bodies and ingest parsing, shared by every host serving it.
//! - [`stored_window`]: one user's window as a key-value value (the Spin app's state).
//! - [`engine`]: validation + one model call per batch + windows, stats, snapshot/restore.

pub mod api;
pub mod engine;
pub mod event;
pub mod manifest;
pub mod model;
pub mod rules;
pub mod snapshot;
pub mod stored_window;
pub mod window;
pub mod windows;

pub use engine::{ConfigError, Engine, EngineConfig, EngineStats, UserMedian};
pub use event::{Event, IngestReport, MAX_USER_ID_BYTES, Rejection, RejectionReason};
pub use model::{Model, ModelError, ModelInfo, ScoreError};
pub use rules::{Checked, Rules};
pub use snapshot::SnapshotError;
