//! The native host of the edgescore scoring component: loads it with wasmtime (precompiled-artifact
//! cache, `InstancePre`, a WASI context granting nothing, memory and time limits per call) and
//! wraps it as a stateless [`Scorer`] and a stateful [`ScoringEngine`]. The `edgescore` binary
//! (src/main.rs, src/cli/) is built on it.

pub mod app;
pub mod bindings;
pub mod cache;
mod convert;
pub mod guest;
pub mod input;
pub mod registry;
pub mod runtime;
pub mod serve;
pub mod wit;

pub use guest::{CallError, Scorer, ScoringEngine};
pub use registry::{Manifest, ModelVersion, Registry};
pub use runtime::{ComponentSource, EMBEDDED_COMPONENT, GuestLimits, Runtime};
