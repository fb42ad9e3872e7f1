//! The wasmtime side: one engine with epoch interruption, the scoring component compiled once
//! (through the `.cwasm` cache), and an `InstancePre` from which every instance starts.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::ScoringPre;
use crate::cache;

/// How often the epoch advances: the granularity of call deadlines.
const EPOCH_TICK: Duration = Duration::from_millis(5);

/// What a guest may use.
#[derive(Debug, Clone, Copy)]
pub struct GuestLimits {
    /// Linear memory per instance, in bytes.
    pub memory_bytes: usize,
    /// Wall time one call into the guest may take before it is interrupted.
    pub call_timeout: Duration,
    /// A budget of wasm instructions ("fuel") one call may use, beside the deadline: unlike
    /// wall time it does not depend on the machine's speed or load, so a test can stop a call
    /// at exactly the same point on every machine. None (the default): no budget, no cost.
    pub call_fuel: Option<u64>,
}

impl Default for GuestLimits {
    fn default() -> Self {
        GuestLimits {
            memory_bytes: 1024 << 20,
            call_timeout: Duration::from_secs(10),
            call_fuel: None,
        }
    }
}

/// Where the component's bytes come from.
#[derive(Clone)]
pub enum ComponentSource {
    /// Bytes in the binary (e.g. `edgescore-embedded`'s), with their sha256 (hex): borrowed,
    /// never copied, and read only when the compiled copy is not in the cache.
    Embedded {
        bytes: &'static [u8],
        sha256: &'static str,
    },
    Path(PathBuf),
}

/// Names the source without its megabytes of bytes.
impl std::fmt::Debug for ComponentSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ComponentSource::Embedded { bytes, sha256 } => f
                .debug_struct("Embedded")
                .field("len", &bytes.len())
                .field("sha256", sha256)
                .finish(),
            ComponentSource::Path(path) => f.debug_tuple("Path").field(path).finish(),
        }
    }
}

/// Per-store host state: a WASI context that grants nothing, and the store's limits.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limits: Limits,
}

/// The store's limits, and the size its linear memory has grown to.
pub(crate) struct Limits {
    inner: StoreLimits,
    /// The largest linear memory's size, in bytes.
    pub(crate) memory: usize,
}

impl wasmtime::ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.inner.memory_growing(current, desired, maximum)?;
        if allowed {
            self.memory = self.memory.max(desired);
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A compiled scoring component, ready to instantiate many times.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    pre: ScoringPre<HostState>,
    /// Borrowed from the binary when embedded: never copied, and read only on a cache miss.
    component_bytes: Cow<'static, [u8]>,
    component_sha256: String,
    limits: GuestLimits,
    ticker_stop: Arc<AtomicBool>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

impl Runtime {
    pub fn new(source: &ComponentSource, limits: GuestLimits) -> Result<Self> {
        let (bytes, sha256) = match source {
            ComponentSource::Embedded { bytes, sha256 } => {
                (Cow::Borrowed(*bytes), (*sha256).to_owned())
            }
            ComponentSource::Path(path) => {
                let bytes = std::fs::read(path)
                    .with_context(|| format!("reading the component {}", path.display()))?;
                let sha256 = edgescore_registry::sha256_hex(&bytes);
                (Cow::Owned(bytes), sha256)
            }
        };
        let mut config = Config::new();
        config
            .epoch_interruption(true)
            .consume_fuel(limits.call_fuel.is_some());
        let engine = Engine::new(&config)?;
        let wasm = cache::Wasm {
            bytes: &bytes,
            sha256: &sha256,
        };
        let (component, _) = cache::load_or_compile_from(&engine, wasm, &cache::default_dir())?;

        let mut linker = Linker::<HostState>::new(&engine);
        // `wasi:random/random` and nothing else (the component's only import).
        edgescore_sandbox::add_to_linker(&mut linker)?;
        let pre = ScoringPre::new(linker.instantiate_pre(&component)?)?;

        let ticker_stop = Arc::new(AtomicBool::new(false));
        spawn_epoch_ticker(engine.clone(), EPOCH_TICK, ticker_stop.clone());
        Ok(Runtime {
            inner: Arc::new(Inner {
                engine,
                pre,
                component_bytes: bytes,
                component_sha256: sha256,
                limits,
                ticker_stop,
            }),
        })
    }

    pub fn limits(&self) -> GuestLimits {
        self.inner.limits
    }

    pub fn component_bytes(&self) -> &[u8] {
        &self.inner.component_bytes
    }

    /// The component's sha256, in hex.
    pub fn component_sha256(&self) -> &str {
        &self.inner.component_sha256
    }

    /// A fresh store with the limits applied and an instance of the component in it.
    pub(crate) fn instantiate(&self) -> Result<(Store<HostState>, crate::bindings::Scoring)> {
        let state = HostState {
            wasi: edgescore_sandbox::wasi(),
            table: ResourceTable::new(),
            limits: Limits {
                inner: StoreLimitsBuilder::new()
                    .memory_size(self.inner.limits.memory_bytes)
                    .instances(4)
                    .build(),
                memory: 0,
            },
        };
        let mut store = Store::new(&self.inner.engine, state);
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(self.deadline_ticks());
        if let Some(fuel) = self.inner.limits.call_fuel {
            store.set_fuel(fuel)?;
        }
        let bindings = self.inner.pre.instantiate(&mut store)?;
        Ok((store, bindings))
    }

    /// Starts one instance and drops it: what every instance costs (`edgescore bench` times it).
    pub fn instantiate_once(&self) -> Result<()> {
        self.instantiate().map(drop)
    }

    /// Epoch ticks that make up the call timeout (at least one whole tick more).
    pub(crate) fn deadline_ticks(&self) -> u64 {
        let tick = EPOCH_TICK.as_micros();
        (self.inner.limits.call_timeout.as_micros().div_ceil(tick) + 1) as u64
    }
}

/// Advances the engine's epoch every `tick` until `stop` is set or the engine is dropped.
pub fn spawn_epoch_ticker(engine: Engine, tick: Duration, stop: Arc<AtomicBool>) {
    let weak = engine.weak();
    drop(engine);
    std::thread::Builder::new()
        .name("edgescore-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        })
        .expect("spawning the epoch thread");
}
