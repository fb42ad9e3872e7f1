//! The scoring component: a thin wit-bindgen layer over `edgescore-engine` exporting
//! `wit/scoring.wit`. All logic lives in the engine; this file only converts types, and keeps
//! the model `preload` loads.

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
mod allocator;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
mod random;

use std::cell::{OnceCell, RefCell};

use edgescore_engine as engine;
use edgescore_types as types;

wit_bindgen::generate!({
    world: "scoring",
    path: "../../wit",
    // The world's one import, `wasi:random/random` (see random.rs).
    generate_all,
});

use exports::edgescore::scoring::engine::{Guest as EngineGuest, GuestEngine};
use exports::edgescore::scoring::scorer::{Guest as ScorerGuest, GuestModel, Model};
use exports::edgescore::scoring::types::{
    ConfigError, EngineConfig, EngineStats, Event, IngestReport, ModelError, ModelInfo, Rejection,
    RejectionCount, RejectionReason, ScoreError, SnapshotError, UserMedian, WidthMismatch,
};

struct Component;

impl ScorerGuest for Component {
    type Model = ModelResource;
}

impl EngineGuest for Component {
    type Engine = EngineResource;
}

export!(Component);

thread_local! {
    /// The registry's default model and the bytes it was loaded from, once `preload` ran (in a
    /// pre-initialized component: before the component was written).
    static PRELOADED: OnceCell<(&'static [u8], engine::Model)> = const { OnceCell::new() };
}

impl Guest for Component {
    fn preload() {
        #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
        allocator::zeroing_freed_memory(load_the_default_model);
        #[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
        load_the_default_model();
    }
}

fn load_the_default_model() {
    PRELOADED.with(|preloaded| {
        preloaded.get_or_init(|| {
            let registry = edgescore_registry::Registry::embedded();
            let default = registry
                .select(None, None)
                .expect("the built-in registry has a default model");
            let model = engine::Model::load(&default.onnx)
                .expect("the built-in registry's default model loads");
            // They would be in the snapshot, the same in every instance.
            assert!(
                !engine::hashing::keys_drawn(),
                "preload drew the instance's hash keys"
            );
            (embedded_bytes(&default.onnx), model)
        });
    });
}

/// The binary's own copy of a model the embedded registry holds (the registry's are on the heap,
/// and a pre-initialized component would carry a second copy of them).
fn embedded_bytes(onnx: &[u8]) -> &'static [u8] {
    edgescore_registry::EMBEDDED_MODELS
        .iter()
        .map(|(_, _, bytes)| *bytes)
        .find(|bytes| *bytes == onnx)
        .expect("an embedded registry's model is one of the embedded models")
}

/// The preloaded model, if `onnx` are the bytes it was loaded from: a copy sharing its
/// optimized plan.
fn preloaded(onnx: &[u8]) -> Option<engine::Model> {
    PRELOADED.with(|preloaded| {
        preloaded
            .get()
            .filter(|(bytes, _)| *bytes == onnx)
            .map(|(_, model)| model.clone())
    })
}

pub struct ModelResource(engine::Model);

impl GuestModel for ModelResource {
    fn load(onnx: Vec<u8>) -> Result<Model, ModelError> {
        let model = match preloaded(&onnx) {
            Some(model) => model,
            None => engine::Model::load(&onnx).map_err(model_error)?,
        };
        Ok(Model::new(ModelResource(model)))
    }

    fn info(&self) -> ModelInfo {
        model_info(self.0.info())
    }

    fn score(&self, features: Vec<f32>) -> Result<Vec<f32>, ScoreError> {
        self.0.score(&features).map_err(score_error)
    }
}

/// Resource methods take `&self`; the engine mutates, and a component instance is
/// single-threaded, so a `RefCell` is all the synchronisation needed.
pub struct EngineResource(RefCell<engine::Engine>);

impl GuestEngine for EngineResource {
    fn create(
        config: EngineConfig,
        model: Model,
    ) -> Result<exports::edgescore::scoring::engine::Engine, ConfigError> {
        let config = types::EngineConfig {
            window_seconds: config.window_seconds,
            max_clock_skew_seconds: config.max_clock_skew_seconds,
        };
        let model = model.into_inner::<ModelResource>().0;
        let engine = engine::Engine::new(config, model).map_err(|e| match e {
            types::ConfigError::WindowSeconds(_) => ConfigError::WindowSeconds(e.to_string()),
            types::ConfigError::ClockSkew(_) => ConfigError::MaxClockSkewSeconds(e.to_string()),
        })?;
        Ok(exports::edgescore::scoring::engine::Engine::new(
            EngineResource(RefCell::new(engine)),
        ))
    }

    fn model_info(&self) -> ModelInfo {
        model_info(self.0.borrow().model().info())
    }

    fn ingest(&self, events: Vec<Event>, now: f64) -> Result<IngestReport, ScoreError> {
        let events: Vec<types::Event> = events
            .into_iter()
            .map(|e| types::Event {
                user_id: e.user_id,
                timestamp: e.timestamp,
                features: e.features,
            })
            .collect();
        let report = self
            .0
            .borrow_mut()
            .ingest(&events, now)
            .map_err(score_error)?;
        Ok(IngestReport {
            accepted: report.accepted,
            rejections: report
                .rejections
                .into_iter()
                .map(|r| Rejection {
                    index: r.index,
                    reason: reason(r.reason),
                    message: r.message,
                })
                .collect(),
        })
    }

    fn advance(&self, watermark: f64) {
        self.0.borrow_mut().advance(watermark);
    }

    fn median(&self, user_id: String) -> UserMedian {
        let m = self.0.borrow_mut().median(&user_id);
        UserMedian {
            median: m.median,
            count: m.count,
            window_seconds: m.window_seconds,
        }
    }

    fn stats(&self) -> EngineStats {
        let s = self.0.borrow().stats();
        EngineStats {
            ingest_batches: s.ingest_batches,
            events_received: s.events_received,
            events_accepted: s.events_accepted,
            rejected: s
                .rejected
                .into_iter()
                .map(|(r, count)| RejectionCount {
                    reason: reason(r),
                    count,
                })
                .collect(),
            median_queries: s.median_queries,
            model_calls: s.model_calls,
            users_tracked: s.users_tracked,
            events_in_windows: s.events_in_windows,
            watermark: s.watermark,
            window_seconds: s.window_seconds,
        }
    }

    fn snapshot(&self) -> Vec<u8> {
        self.0.borrow().snapshot()
    }

    fn restore(&self, snapshot: Vec<u8>) -> Result<(), SnapshotError> {
        self.0
            .borrow_mut()
            .restore(&snapshot)
            .map_err(snapshot_error)
    }

    fn snapshot_begin(&self) -> Vec<u8> {
        self.0.borrow_mut().snapshot_begin()
    }

    fn snapshot_next(&self, max_bytes: u32) -> Option<Vec<u8>> {
        self.0.borrow_mut().snapshot_next(max_bytes as usize)
    }

    fn restore_begin(&self, header: Vec<u8>) -> Result<(), SnapshotError> {
        self.0
            .borrow_mut()
            .restore_begin(&header)
            .map_err(snapshot_error)
    }

    fn restore_next(&self, chunk: Vec<u8>) -> Result<(), SnapshotError> {
        self.0
            .borrow_mut()
            .restore_next(&chunk)
            .map_err(snapshot_error)
    }

    fn restore_end(&self) {
        self.0.borrow_mut().restore_end();
    }

    fn set_capacity(&self, state_bytes: u64) {
        self.0.borrow_mut().set_capacity(state_bytes);
    }

    fn fill(&self) -> u32 {
        self.0.borrow().fill_permille()
    }

    fn replace_model(&self, model: Model) {
        self.0
            .borrow_mut()
            .replace_model(model.into_inner::<ModelResource>().0);
    }
}

fn model_info(info: &types::ModelInfo) -> ModelInfo {
    ModelInfo {
        input_name: info.input_name.clone(),
        output_name: info.output_name.clone(),
        input_width: info.input_width,
        sha256: info.sha256.clone(),
    }
}

fn model_error(e: types::ModelError) -> ModelError {
    match e {
        types::ModelError::Invalid(why) => ModelError::Invalid(why),
        types::ModelError::UnsupportedSignature(why) => ModelError::UnsupportedSignature(why),
    }
}

fn score_error(e: types::ScoreError) -> ScoreError {
    match e {
        types::ScoreError::EmptyBatch => ScoreError::EmptyBatch,
        types::ScoreError::WrongWidth { width, len } => {
            ScoreError::WrongWidth(WidthMismatch { width, len })
        }
        types::ScoreError::NonFinite { row } => ScoreError::NonFinite(row),
        types::ScoreError::Inference(why) => ScoreError::Inference(why),
    }
}

fn reason(r: types::RejectionReason) -> RejectionReason {
    match r {
        types::RejectionReason::InvalidUserId => RejectionReason::InvalidUserId,
        types::RejectionReason::InvalidTimestamp => RejectionReason::InvalidTimestamp,
        types::RejectionReason::WrongWidth => RejectionReason::WrongWidth,
        types::RejectionReason::NonFiniteFeature => RejectionReason::NonFiniteFeature,
        types::RejectionReason::Future => RejectionReason::Future,
        types::RejectionReason::Late => RejectionReason::Late,
        types::RejectionReason::MalformedEvent => RejectionReason::MalformedEvent,
        types::RejectionReason::NonFiniteScore => RejectionReason::NonFiniteScore,
        types::RejectionReason::Capacity => RejectionReason::Capacity,
    }
}

fn snapshot_error(e: types::SnapshotError) -> SnapshotError {
    match e {
        types::SnapshotError::NotASnapshot => SnapshotError::NotASnapshot,
        types::SnapshotError::UnsupportedVersion(v) => SnapshotError::UnsupportedVersion(v),
        types::SnapshotError::Corrupt(why) => SnapshotError::Corrupt(why),
    }
}
