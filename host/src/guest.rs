//! Calling the scoring component: a stateless [`Scorer`] and a stateful [`ScoringEngine`], each
//! owning one instance in its own store. A call that traps or runs past its deadline is reported
//! as a [`CallError`]; the instance is then discarded and rebuilt on the next call (the engine from
//! its last checkpoint), so the host keeps working.

use std::sync::Arc;
use std::time::Duration;

use edgescore_core as core;
use wasmtime::Store;
use wasmtime::component::ResourceAny;

use crate::bindings::Scoring;
use crate::convert;
use crate::runtime::{HostState, Runtime};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    #[error("the scoring component ran past its {0:?} deadline and was interrupted")]
    Deadline(Duration),
    #[error("the scoring component trapped: {0}")]
    Trap(String),
    #[error("the scoring component could not be (re)started: {0}")]
    Instantiate(String),
    #[error(transparent)]
    Model(#[from] core::ModelError),
    #[error(transparent)]
    Score(#[from] core::ScoreError),
    #[error("invalid engine config: {0}")]
    Config(String),
    #[error(transparent)]
    Snapshot(#[from] core::SnapshotError),
}

impl CallError {
    /// True when the guest itself failed (trap, deadline), as opposed to refusing bad input.
    pub fn is_guest_failure(&self) -> bool {
        matches!(
            self,
            CallError::Deadline(_) | CallError::Trap(_) | CallError::Instantiate(_)
        )
    }
}

/// One instance of the component in its own store.
struct Instance {
    store: Store<HostState>,
    bindings: Scoring,
    deadline_ticks: u64,
    timeout: Duration,
}

impl Instance {
    fn new(runtime: &Runtime) -> Result<Self, CallError> {
        let (store, bindings) = runtime
            .instantiate()
            .map_err(|e| CallError::Instantiate(format!("{e:#}")))?;
        Ok(Instance {
            store,
            bindings,
            deadline_ticks: runtime.deadline_ticks(),
            timeout: runtime.limits().call_timeout,
        })
    }

    /// One call into the guest under a fresh deadline.
    fn call<R>(
        &mut self,
        f: impl FnOnce(&Scoring, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        f(&self.bindings, &mut self.store).map_err(|e| match e.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::Interrupt) => CallError::Deadline(self.timeout),
            _ => CallError::Trap(format!("{e:#}")),
        })
    }

    fn load_model(&mut self, onnx: &[u8]) -> Result<ResourceAny, CallError> {
        self.call(|b, s| b.edgescore_scoring_scorer().model().call_load(s, onnx))?
            .map_err(|e| convert::model_error(e).into())
    }
}

/// An instance and the resource it serves; after a guest failure it is dropped and started
/// again on the next call.
struct Restartable {
    live: Option<(Instance, ResourceAny)>,
    restarts: u64,
}

impl Restartable {
    fn new(instance: Instance, resource: ResourceAny) -> Self {
        Restartable {
            live: Some((instance, resource)),
            restarts: 0,
        }
    }

    fn call<R>(
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

/// Stateless scoring with one model.
pub struct Scorer {
    runtime: Runtime,
    onnx: Arc<[u8]>,
    info: core::ModelInfo,
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

    pub fn info(&self) -> &core::ModelInfo {
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

/// The stateful engine inside the component.
pub struct ScoringEngine {
    runtime: Runtime,
    /// The model scoring now.
    onnx: Arc<[u8]>,
    config: core::EngineConfig,
    checkpoint: Checkpoint,
    live: Restartable,
}

/// What the engine returns to after a guest failure: the state and the model it was taken with.
struct Checkpoint {
    snapshot: Option<Vec<u8>>,
    onnx: Arc<[u8]>,
}

/// A model loaded into the engine's instance, ready to be swapped in
/// ([`ScoringEngine::replace_model`]) without loading anything at that moment.
pub struct LoadedModel {
    onnx: Arc<[u8]>,
    resource: ResourceAny,
    /// The instance it lives in (restarts count): a rebuilt instance does not have it.
    instance: u64,
}

/// An event as the bindings lower it into the component.
pub type GuestEvent = crate::bindings::types::Event;

/// Moves a core event into the bindings' type (no copy of its id or features).
pub fn guest_event(e: core::Event) -> GuestEvent {
    GuestEvent {
        user_id: e.user_id,
        timestamp: e.timestamp,
        features: e.features,
    }
}

/// The engine resource's methods in the bindings.
type EngineExports<'a> = crate::bindings::exports::edgescore::scoring::engine::GuestEngine<'a>;

impl ScoringEngine {
    pub fn new(
        runtime: &Runtime,
        onnx: &[u8],
        config: core::EngineConfig,
    ) -> Result<Self, CallError> {
        let (instance, engine) = start_engine(runtime, onnx, config, None)?;
        let onnx: Arc<[u8]> = onnx.into();
        Ok(ScoringEngine {
            runtime: runtime.clone(),
            onnx: onnx.clone(),
            config,
            checkpoint: Checkpoint {
                snapshot: None,
                onnx,
            },
            live: Restartable::new(instance, engine),
        })
    }

    /// Loads a model into the live instance (tract parses and optimizes it now), for a later
    /// [`ScoringEngine::replace_model`]; the engine keeps scoring with its current model.
    pub fn load_model(&mut self, onnx: Arc<[u8]>) -> Result<LoadedModel, CallError> {
        self.model_info()?; // the instance is live after this
        let (instance, _) = self.live.live.as_mut().expect("live after a call");
        let resource = instance.load_model(&onnx).inspect_err(|e| {
            if e.is_guest_failure() {
                self.live.live = None;
            }
        })?;
        Ok(LoadedModel {
            onnx,
            resource,
            instance: self.live.restarts,
        })
    }

    /// Swaps the model; the windows keep their history. A model loaded into an instance that
    /// has since been rebuilt is loaded again.
    pub fn replace_model(&mut self, model: LoadedModel) -> Result<(), CallError> {
        let model = if model.instance == self.live.restarts && self.live.live.is_some() {
            model
        } else {
            self.load_model(model.onnx)?
        };
        self.call(|e, s, r| e.call_replace_model(s, r, model.resource))?;
        self.onnx = model.onnx;
        Ok(())
    }

    /// Frees a loaded model that will not be swapped in.
    pub fn discard_model(&mut self, model: LoadedModel) {
        if model.instance == self.live.restarts
            && let Some((instance, _)) = self.live.live.as_mut()
        {
            let _ = model.resource.resource_drop(&mut instance.store);
        }
    }

    /// The model scoring now, as bytes.
    pub fn model(&self) -> &Arc<[u8]> {
        &self.onnx
    }

    /// How many times the instance was rebuilt after a guest failure.
    pub fn restarts(&self) -> u64 {
        self.live.restarts
    }

    pub fn model_info(&mut self) -> Result<core::ModelInfo, CallError> {
        self.call(|e, s, r| e.call_model_info(s, r))
            .map(convert::model_info)
    }

    pub fn ingest(
        &mut self,
        events: &[core::Event],
        now: f64,
    ) -> Result<core::IngestReport, CallError> {
        self.ingest_guest_events(&convert::events(events), now)
    }

    /// [`ScoringEngine::ingest`] for events already in the bindings' type (see [`GuestEvent`]),
    /// which a hot path builds once instead of copying core events per call.
    pub fn ingest_guest_events(
        &mut self,
        events: &[GuestEvent],
        now: f64,
    ) -> Result<core::IngestReport, CallError> {
        let report = self.call(|e, s, r| e.call_ingest(s, r, events, now))?;
        Ok(convert::report(report.map_err(convert::score_error)?))
    }

    /// Drops the instance and starts a new one now, from the last checkpoint (or empty) and with
    /// the model that was scoring when it was taken.
    pub fn rebuild(&mut self) -> Result<(), CallError> {
        self.live.live = None;
        self.model_info().map(drop)
    }

    /// Raises the engine's watermark to the service-wide one; see the WIT's `advance`.
    pub fn advance(&mut self, watermark: f64) -> Result<(), CallError> {
        self.call(|e, s, r| e.call_advance(s, r, watermark))
    }

    pub fn median(&mut self, user_id: &str) -> Result<core::UserMedian, CallError> {
        self.call(|e, s, r| e.call_median(s, r, user_id))
            .map(convert::median)
    }

    pub fn stats(&mut self) -> Result<core::EngineStats, CallError> {
        self.call(|e, s, r| e.call_stats(s, r)).map(convert::stats)
    }

    pub fn snapshot(&mut self) -> Result<Vec<u8>, CallError> {
        self.call(|e, s, r| e.call_snapshot(s, r))
    }

    pub fn restore(&mut self, snapshot: &[u8]) -> Result<(), CallError> {
        self.call(|e, s, r| e.call_restore(s, r, snapshot))?
            .map_err(|e| convert::snapshot_error(e).into())
    }

    /// Takes a snapshot and keeps it: after a guest failure the engine is rebuilt from it (and
    /// the model scoring now).
    pub fn checkpoint(&mut self) -> Result<(), CallError> {
        self.checkpoint = Checkpoint {
            snapshot: Some(self.snapshot()?),
            onnx: self.onnx.clone(),
        };
        Ok(())
    }

    /// One call on the engine resource, restarting the instance first if the last call failed.
    fn call<R>(
        &mut self,
        f: impl FnOnce(&EngineExports<'_>, &mut Store<HostState>, ResourceAny) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        if self.live.live.is_none() {
            self.onnx = self.checkpoint.onnx.clone();
        }
        let ScoringEngine {
            runtime,
            config,
            checkpoint,
            live,
            ..
        } = self;
        live.call(
            || {
                start_engine(
                    runtime,
                    &checkpoint.onnx,
                    *config,
                    checkpoint.snapshot.as_deref(),
                )
            },
            |i, r| i.call(|b, s| f(&b.edgescore_scoring_engine().engine(), s, r)),
        )
    }
}

fn start_engine(
    runtime: &Runtime,
    onnx: &[u8],
    config: core::EngineConfig,
    checkpoint: Option<&[u8]>,
) -> Result<(Instance, ResourceAny), CallError> {
    let mut instance = Instance::new(runtime)?;
    let model = instance.load_model(onnx)?;
    let config = convert::config(config);
    let engine = instance
        .call(|b, s| {
            b.edgescore_scoring_engine()
                .engine()
                .call_create(s, config, model)
        })?
        .map_err(|e| CallError::Config(convert::config_error(e)))?;
    if let Some(snapshot) = checkpoint {
        instance
            .call(|b, s| {
                b.edgescore_scoring_engine()
                    .engine()
                    .call_restore(s, engine, snapshot)
            })?
            .map_err(convert::snapshot_error)?;
    }
    Ok((instance, engine))
}
