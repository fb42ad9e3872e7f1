//! The vocabulary every edgescore crate shares, and the rules one event is judged by.
//!
//! - [`event`]: events, rejections and their reasons, the report of one ingested batch.
//! - [`rules`]: the window config and how an event is judged against the watermark
//!   (`docs/http-api.md`, "Events and the rolling window"): the engine applies them, and so does
//!   the ingest pipeline both hosts share (`edgescore-contract`), before splitting a batch.
//! - [`model`] and [`engine`]: what a model and an engine answer, and why they refuse.
//!
//! These mirror the `types` interface of `wit/scoring.wit`: the scoring component speaks them on
//! one side of the boundary, the hosts on the other. The crate has no dependency on tract,
//! wasmtime or HTTP, so both the native host and the Spin app can use it.
//!
//! ```
//! use edgescore_types::{EngineConfig, Event, Rules};
//!
//! let rules = Rules { config: EngineConfig::default(), width: 3 };
//! let event = |t: f64| Event { user_id: "user-7".into(), timestamp: t, features: vec![0.1, 0.2, 0.3] };
//! let (checked, watermark) = rules.check_batch(&[event(1000.0), event(600.0)], 1000.0, None);
//! assert_eq!(checked.accepted, vec![0]); // 600 is at or before 1000 - 300: late
//! assert_eq!(watermark, Some(1000.0));
//! ```

pub mod engine;
pub mod event;
pub mod model;
pub mod rules;

pub use engine::{ConfigError, EngineStats, SnapshotError, UserMedian};
pub use event::{Event, IngestReport, MAX_USER_ID_BYTES, Rejection, RejectionReason};
pub use model::{ModelError, ModelInfo, ScoreError};
pub use rules::{Checked, EngineConfig, Rules};
