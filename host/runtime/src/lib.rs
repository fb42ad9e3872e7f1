//! The wasmtime embedding of the edgescore scoring component (`wit/scoring.wit`): one engine with
//! epoch deadlines, the component compiled once through a `.cwasm` cache, an `InstancePre` every
//! instance starts from, a WASI context that grants nothing, and memory and time limits per call.
//! On top, a stateless [`Scorer`] and a stateful [`ScoringEngine`] that restart themselves after
//! a guest failure (the engine from its last checkpoint).
//!
//! Any Rust host can depend on it; `examples/embed.rs` is a complete one:
//!
//! ```no_run
//! use edgescore_runtime::{GuestLimits, Runtime, Scorer};
//!
//! // The component the `edgescore` binary carries, or `ComponentSource::Path` to a built one.
//! let component = edgescore_embedded::scoring_component();
//! let runtime = Runtime::new(&component, GuestLimits::default())?;
//! let onnx = std::fs::read("models/seed-mlp/2/model.onnx")?;
//! let mut scorer = Scorer::new(&runtime, &onnx)?;
//! let scores = scorer.score(&[0.1, 0.2, 0.3, 0.9, 0.0, 0.5])?; // two rows of three features
//! assert_eq!(scores.len(), 2);
//! # Ok::<(), anyhow::Error>(())
//! ```

mod bindings;
pub mod cache;
mod convert;
mod engine;
mod instance;
mod runtime;
mod scorer;
pub mod wit;

pub use engine::{Chunks, GuestEvent, LoadedModel, ScoringEngine, guest_event};
pub use instance::CallError;
pub use runtime::{ComponentSource, GuestLimits, Runtime, spawn_epoch_ticker};
pub use scorer::Scorer;

/// The version of wasmtime this host runs components with.
pub const WASMTIME_VERSION: &str = wasmtime_environ::VERSION;
