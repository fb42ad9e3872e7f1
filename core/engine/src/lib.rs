//! What the edgescore scoring component is, as a plain Rust library: no WebAssembly, wasmtime or
//! HTTP in it. The scoring component (`components/scoring`) is a thin WIT layer over this crate;
//! the native CLI runs it directly to cross-check the component.
//!
//! - [`model`]: the ONNX model runner on tract (`[N, width]` f32 rows → one score per row).
//! - [`window`]: exact rolling medians: one user's window, and every user's under a
//!   service-wide watermark ([`window::Windows`]).
//! - [`engine`]: judges a batch by the rules of `edgescore-types`, scores the accepted events in
//!   one model call, records them in the windows; medians, stats, snapshot and restore.
//! - [`snapshot`]: the engine's state as bytes;
//! - [`capacity`]: how much state an engine with a budget takes on;
//! - [`hashing`]: the instance's hash keys for the maps keyed by what clients send;
//! - `kernel` (in the component only): the f32 matrix-multiply kernels tract runs there.
//!
//! ```no_run
//! use edgescore_engine::{Engine, Model};
//! use edgescore_types::{EngineConfig, Event};
//!
//! let model = Model::load(&std::fs::read("models/seed-mlp/2/model.onnx")?)?;
//! let mut engine = Engine::new(EngineConfig::default(), model)?;
//! let event = Event { user_id: "user-7".into(), timestamp: 1.7e9, features: vec![0.1, 0.2, 0.3] };
//! engine.ingest(&[event], 1.7e9)?;
//! println!("{:?}", engine.median("user-7").median);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod capacity;
pub mod engine;
mod growth;
pub mod hashing;
// The component's matrix-multiply kernels; natively only their tests.
#[cfg(any(test, all(target_arch = "wasm32", target_feature = "simd128")))]
mod kernel;
pub mod model;
pub mod snapshot;
pub mod window;

pub use engine::Engine;
pub use model::Model;
