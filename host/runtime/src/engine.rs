//! The stateful engine inside the component: windows and counters live in the guest; the host
//! keeps a checkpoint (a snapshot and the model it was taken with) to rebuild from after a guest
//! failure, or, when a copy is kept elsewhere (on disk), only a weak reference to it.

use std::sync::{Arc, Weak};

use edgescore_types as types;
use wasmtime::Store;
use wasmtime::component::ResourceAny;

use crate::convert;
use crate::instance::{CallError, Instance, Restartable};
use crate::runtime::{HostState, Runtime};

/// The stateful engine inside the component.
pub struct ScoringEngine {
    runtime: Runtime,
    /// The model scoring now.
    onnx: Arc<[u8]>,
    config: types::EngineConfig,
    /// The state bytes the engine may hold (0: no bound), applied again after a rebuild.
    capacity: u64,
    checkpoint: Checkpoint,
    live: Restartable,
}

/// What the engine returns to after a guest failure: the state, in chunks (never a second whole
/// copy inside the guest, taking or restoring it), and the model it was taken with.
struct Checkpoint {
    chunks: Option<Held>,
    onnx: Arc<[u8]>,
}

/// How the engine holds its checkpoint's chunks.
enum Held {
    Kept(Arc<Chunks>),
    /// Released to whoever keeps a copy (the snapshot writer, then the file it writes): usable
    /// while they still hold it in memory, then the owner restores it
    /// ([`ScoringEngine::restore_checkpoint`]) before the engine can be rebuilt.
    Released(Weak<Chunks>),
}

impl Checkpoint {
    /// The chunks to rebuild from: `Ok(None)` for the empty state, `Err` when they were released
    /// and are gone.
    fn chunks(&self) -> Result<Option<Arc<Chunks>>, CallError> {
        match &self.chunks {
            None => Ok(None),
            Some(Held::Kept(chunks)) => Ok(Some(chunks.clone())),
            Some(Held::Released(weak)) => weak.upgrade().map(Some).ok_or_else(|| {
                CallError::Instantiate(
                    "the checkpoint was released and is no longer in memory: restore it first"
                        .into(),
                )
            }),
        }
    }
}

/// A chunked snapshot of an engine's state: its header and its chunks of users, as the
/// component's `snapshot-begin` / `snapshot-next` give them (and `restore-*` take them back).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunks {
    pub header: Vec<u8>,
    pub users: Vec<Vec<u8>>,
}

impl Chunks {
    /// Bytes of state in the chunks.
    pub fn bytes(&self) -> usize {
        self.header.len() + self.users.iter().map(Vec::len).sum::<usize>()
    }
}

/// The size of one snapshot chunk: what a checkpoint or a rebuild needs in the guest beside the
/// state itself.
const CHUNK_BYTES: u32 = 1 << 20;

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
pub fn guest_event(e: types::Event) -> GuestEvent {
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
        config: types::EngineConfig,
    ) -> Result<Self, CallError> {
        let (instance, engine) = start_engine(runtime, onnx, config, 0, None)?;
        let onnx: Arc<[u8]> = onnx.into();
        Ok(ScoringEngine {
            runtime: runtime.clone(),
            onnx: onnx.clone(),
            config,
            capacity: 0,
            checkpoint: Checkpoint { chunks: None, onnx },
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

    pub fn model_info(&mut self) -> Result<types::ModelInfo, CallError> {
        self.call(|e, s, r| e.call_model_info(s, r))
            .map(convert::model_info)
    }

    pub fn ingest(
        &mut self,
        events: &[types::Event],
        now: f64,
    ) -> Result<types::IngestReport, CallError> {
        self.ingest_guest_events(&convert::events(events), now)
    }

    /// [`ScoringEngine::ingest`] for events already in the bindings' type (see [`GuestEvent`]),
    /// which a hot path builds once instead of copying core events per call.
    pub fn ingest_guest_events(
        &mut self,
        events: &[GuestEvent],
        now: f64,
    ) -> Result<types::IngestReport, CallError> {
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

    pub fn median(&mut self, user_id: &str) -> Result<types::UserMedian, CallError> {
        self.call(|e, s, r| e.call_median(s, r, user_id))
            .map(convert::median)
    }

    pub fn stats(&mut self) -> Result<types::EngineStats, CallError> {
        self.call(|e, s, r| e.call_stats(s, r)).map(convert::stats)
    }

    pub fn snapshot(&mut self) -> Result<Vec<u8>, CallError> {
        self.call(|e, s, r| e.call_snapshot(s, r))
    }

    pub fn restore(&mut self, snapshot: &[u8]) -> Result<(), CallError> {
        self.call(|e, s, r| e.call_restore(s, r, snapshot))?
            .map_err(|e| convert::snapshot_error(e).into())
    }

    /// Takes a snapshot, chunk by chunk, and keeps it: after a guest failure the engine is
    /// rebuilt from it (and the model scoring now). Returns it, for a copy on disk.
    pub fn checkpoint(&mut self) -> Result<Arc<Chunks>, CallError> {
        let header = self.call(|e, s, r| e.call_snapshot_begin(s, r))?;
        let mut users = Vec::new();
        while let Some(chunk) = self.call(|e, s, r| e.call_snapshot_next(s, r, CHUNK_BYTES))? {
            users.push(chunk);
        }
        let chunks = Arc::new(Chunks { header, users });
        self.checkpoint = Checkpoint {
            chunks: Some(Held::Kept(chunks.clone())),
            onnx: self.onnx.clone(),
        };
        Ok(chunks)
    }

    /// Starts again from `chunks` (a checkpoint taken earlier, by this process or one before it;
    /// none: the empty state) with model `onnx`: the new instance restores them, and they are
    /// the checkpoint a later rebuild returns to.
    pub fn restore_checkpoint(
        &mut self,
        chunks: Option<Arc<Chunks>>,
        onnx: Arc<[u8]>,
    ) -> Result<(), CallError> {
        self.checkpoint = Checkpoint {
            chunks: chunks.map(Held::Kept),
            onnx,
        };
        self.rebuild()
    }

    /// Stops keeping the checkpoint's chunks: whoever holds a copy of them (a file) is the one
    /// to bring them back. Until they are dropped there, a rebuild still uses them; after, it
    /// fails until [`ScoringEngine::restore_checkpoint`] gives them again.
    pub fn release_checkpoint(&mut self) {
        if let Some(Held::Kept(chunks)) = &self.checkpoint.chunks {
            self.checkpoint.chunks = Some(Held::Released(Arc::downgrade(chunks)));
        }
    }

    /// Whether a rebuild has its checkpoint at hand (kept, or released but still in memory).
    pub fn holds_checkpoint(&self) -> bool {
        self.checkpoint.chunks().is_ok()
    }

    /// Bounds the state the engine takes on to about `state_bytes` of guest memory (0: no
    /// bound); see the WIT's `set-capacity`. Kept across rebuilds.
    pub fn set_capacity(&mut self, state_bytes: u64) -> Result<(), CallError> {
        self.call(|e, s, r| e.call_set_capacity(s, r, state_bytes))?;
        self.capacity = state_bytes;
        Ok(())
    }

    /// How full the capacity is, in thousandths (0 without one).
    pub fn fill(&mut self) -> Result<u32, CallError> {
        self.call(|e, s, r| e.call_fill(s, r))
    }

    /// The guest's linear memory now, in bytes (it only grows; a rebuild starts it again).
    pub fn memory_bytes(&self) -> u64 {
        self.live
            .live
            .as_ref()
            .map_or(0, |(instance, _)| instance.memory_bytes())
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
            capacity,
            checkpoint,
            live,
            ..
        } = self;
        live.call(
            || {
                let chunks = checkpoint.chunks()?;
                start_engine(
                    runtime,
                    &checkpoint.onnx,
                    *config,
                    *capacity,
                    chunks.as_deref(),
                )
            },
            |i, r| i.call(|b, s| f(&b.edgescore_scoring_engine().engine(), s, r)),
        )
    }
}

fn start_engine(
    runtime: &Runtime,
    onnx: &[u8],
    config: types::EngineConfig,
    capacity: u64,
    checkpoint: Option<&Chunks>,
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
    if capacity > 0 {
        instance.call(|b, s| {
            b.edgescore_scoring_engine()
                .engine()
                .call_set_capacity(s, engine, capacity)
        })?;
    }
    if let Some(chunks) = checkpoint {
        restore_chunks(&mut instance, engine, chunks)?;
    }
    Ok((instance, engine))
}

/// A chunked snapshot restored in place, chunk by chunk.
fn restore_chunks(
    instance: &mut Instance,
    engine: ResourceAny,
    chunks: &Chunks,
) -> Result<(), CallError> {
    instance
        .call(|b, s| {
            b.edgescore_scoring_engine()
                .engine()
                .call_restore_begin(s, engine, &chunks.header)
        })?
        .map_err(convert::snapshot_error)?;
    for chunk in &chunks.users {
        instance
            .call(|b, s| {
                b.edgescore_scoring_engine()
                    .engine()
                    .call_restore_next(s, engine, chunk)
            })?
            .map_err(convert::snapshot_error)?;
    }
    instance.call(|b, s| {
        b.edgescore_scoring_engine()
            .engine()
            .call_restore_end(s, engine)
    })
}
