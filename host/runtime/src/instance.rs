//! One instance of the scoring component in its own store, called under a deadline, and what a
//! failed call is. A call that traps or runs past its deadline is reported as a [`CallError`];
//! the instance is then discarded and started again on the next call, so the host keeps working.

use std::time::Duration;

use edgescore_types as types;
use wasmtime::Store;
use wasmtime::component::ResourceAny;

use crate::bindings::Scoring;
use crate::convert;
use crate::runtime::{HostState, Runtime};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    #[error("the scoring component ran past its {0:?} deadline and was interrupted")]
    Deadline(Duration),
    #[error(
        "the scoring component used up its budget of {0} instructions for one call and was stopped"
    )]
    Budget(u64),
    #[error("the scoring component trapped: {0}")]
    Trap(String),
    #[error("the scoring component could not be (re)started: {0}")]
    Instantiate(String),
    #[error(transparent)]
    Model(#[from] types::ModelError),
    #[error(transparent)]
    Score(#[from] types::ScoreError),
    #[error("invalid engine config: {0}")]
    Config(String),
    #[error(transparent)]
    Snapshot(#[from] types::SnapshotError),
}

impl CallError {
    /// True when the guest itself failed (trap, deadline), as opposed to refusing bad input.
    pub fn is_guest_failure(&self) -> bool {
        matches!(
            self,
            CallError::Deadline(_)
                | CallError::Budget(_)
                | CallError::Trap(_)
                | CallError::Instantiate(_)
        )
    }
}

/// One instance of the component in its own store.
pub(crate) struct Instance {
    pub(crate) store: Store<HostState>,
    bindings: Scoring,
    deadline_ticks: u64,
    timeout: Duration,
    fuel: Option<u64>,
}

impl Instance {
    pub(crate) fn new(runtime: &Runtime) -> Result<Self, CallError> {
        let (store, bindings) = runtime
            .instantiate()
            .map_err(|e| CallError::Instantiate(format!("{e:#}")))?;
        Ok(Instance {
            store,
            bindings,
            deadline_ticks: runtime.deadline_ticks(),
            timeout: runtime.limits().call_timeout,
            fuel: runtime.limits().call_fuel,
        })
    }

    /// One call into the guest under a fresh deadline.
    pub(crate) fn call<R>(
        &mut self,
        f: impl FnOnce(&Scoring, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        if let Some(fuel) = self.fuel {
            self.store
                .set_fuel(fuel)
                .map_err(|e| CallError::Trap(format!("{e:#}")))?;
        }
        f(&self.bindings, &mut self.store).map_err(|e| match e.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::Interrupt) => CallError::Deadline(self.timeout),
            Some(wasmtime::Trap::OutOfFuel) => CallError::Budget(self.fuel.unwrap_or(0)),
            _ => CallError::Trap(format!("{e:#}")),
        })
    }

    /// The guest's linear memory, in bytes.
    pub(crate) fn memory_bytes(&self) -> u64 {
        self.store.data().limits.memory as u64
    }

    pub(crate) fn load_model(&mut self, onnx: &[u8]) -> Result<ResourceAny, CallError> {
        self.call(|b, s| b.edgescore_scoring_scorer().model().call_load(s, onnx))?
            .map_err(|e| convert::model_error(e).into())
    }
}

/// An instance and the resource it serves; after a guest failure it is dropped and started
/// again on the next call.
pub(crate) struct Restartable {
    pub(crate) live: Option<(Instance, ResourceAny)>,
    pub(crate) restarts: u64,
}

impl Restartable {
    pub(crate) fn new(instance: Instance, resource: ResourceAny) -> Self {
        Restartable {
            live: Some((instance, resource)),
            restarts: 0,
        }
    }

    pub(crate) fn call<R>(
        &mut self,
        start: impl FnOnce() -> Result<(Instance, ResourceAny), CallError>,
        f: impl FnOnce(&mut Instance, ResourceAny) -> Result<R, CallError>,
    ) -> Result<R, CallError> {
        if self.live.is_none() {
            self.live = Some(start()?);
            self.restarts += 1;
        }
        let (instance, resource) = self.live.as_mut().expect("started above");
        let result = f(instance, *resource);
        if result.as_ref().is_err_and(CallError::is_guest_failure) {
            self.live = None;
        }
        result
    }
}
