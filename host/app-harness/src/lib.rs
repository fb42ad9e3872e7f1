//! `edgescore serve-app`: the Spin app (`components/http`, a WASIp3 `wasi:http/handler@0.3.0`
//! component) served the way Spin serves it — wasmtime-wasi-http's p3 implementation, an
//! instance reused for up to 128 requests, state in `wasi:keyvalue@0.2.0-draft2` ([`keyvalue`],
//! an in-process store shared by every instance). The test harness of the Spin app, and a way to
//! run it without Spin.
//!
//! The guest gets what Spin grants it and nothing more: no files, no sockets, no outgoing HTTP,
//! the environment variables of its `spin.toml` `environment`, the key-value store named there;
//! memory and time per request are bounded.

mod front;
pub mod keyvalue;
pub mod runtime_config;
mod state;
mod variables;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use axum::body::Bytes;
use axum::http::{Request, Response};
use http_body_util::BodyExt;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store, StoreLimitsBuilder};
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi_http::p3::bindings::{Service, ServicePre};
use wasmtime_wasi_http::{Error as HttpError, WasiHttpCtx};

pub use edgescore_durable::Durability;
use edgescore_runtime::GuestLimits;
pub use front::Busy;
pub use keyvalue::StoreBackend;
use keyvalue::{KeyValue, KeyValueView, RequestScope};
use state::{AppState, NoOutgoingHttp};

/// How the app is run.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// The key-value store the app may open (`key_value_stores` in `spin.toml`).
    pub store: String,
    /// Where the store is kept: memory, a SQLite file or Redis.
    pub backend: StoreBackend,
    /// When a SQLite store's writes reach the disk; with `Fsync`, each answer waits for those
    /// of its request.
    pub durability: Durability,
    /// Environment variables granted to the guest (`environment` in `spin.toml`).
    pub env: Vec<(String, String)>,
    /// Spin variables the app may read (`[variables]` in `spin.toml`, `spin up --variable`).
    pub variables: Vec<(String, String)>,
    /// Requests an instance serves before it is dropped (Spin 4: 128); 1 = a fresh instance each.
    pub reuse: usize,
    /// Instances alive at once, at most: requests beyond wait for one to be free (each instance
    /// holds its own memories, so this bounds what the app may use in all).
    pub max_instances: usize,
    /// How long a request waits for a free instance before it is answered 503.
    pub instance_wait: Duration,
    /// Largest request body, in bytes: 413 as soon as a body passes it.
    pub max_body_bytes: usize,
    pub limits: GuestLimits,
}

/// The request was done, but its writes could not be made durable.
#[derive(Debug, thiserror::Error)]
#[error("the request was done, but {0}")]
pub struct NotDurable(String);

struct Instance {
    store: Store<AppState>,
    service: Service,
    served: usize,
}

/// The compiled app, its idle instances and the shared key-value store.
pub struct App {
    engine: Engine,
    pre: ServicePre<AppState>,
    kv: KeyValue,
    variables: variables::Variables,
    config: AppConfig,
    idle: Mutex<Vec<Instance>>,
    /// One permit per instance that may be alive.
    instances: tokio::sync::Semaphore,
    instances_started: AtomicU64,
    stop_ticker: Arc<std::sync::atomic::AtomicBool>,
}

/// Epoch granularity of the per-request deadline.
const TICK: Duration = Duration::from_millis(10);

impl App {
    /// Compiles the component (cached on disk like the scoring component) and links it.
    pub fn new(component: &[u8], config: AppConfig) -> Result<Arc<App>> {
        let mut wasm = Config::new();
        wasm.wasm_component_model_async(true)
            .epoch_interruption(true);
        let engine = Engine::new(&wasm)?;
        let component: Component = edgescore_runtime::cache::load_or_compile(
            &engine,
            component,
            &edgescore_runtime::cache::default_dir(),
        )
        .context("compiling the app component")?;
        let mut linker = Linker::<AppState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi::p3::add_to_linker(&mut linker)?;
        wasmtime_wasi_http::p3::add_to_linker(&mut linker)?;
        variables::add_to_linker(&mut linker, |s: &mut AppState| &s.variables)?;
        keyvalue::add_to_linker(&mut linker, |s: &mut AppState| KeyValueView {
            kv: &s.kv,
            table: &mut s.table,
            request: &mut s.request,
        })?;
        let pre = ServicePre::new(linker.instantiate_pre(&component)?)?;
        let stop_ticker = Arc::new(std::sync::atomic::AtomicBool::new(false));
        edgescore_runtime::spawn_epoch_ticker(engine.clone(), TICK, stop_ticker.clone());
        Ok(Arc::new(App {
            engine,
            pre,
            kv: KeyValue::open(
                [(config.store.clone(), config.backend.clone())],
                config.durability,
            )
            .with_context(|| format!("opening the key-value store {:?}", config.store))?,
            variables: std::sync::Arc::new(config.variables.iter().cloned().collect()),
            instances: tokio::sync::Semaphore::new(config.max_instances.max(1)),
            config,
            idle: Mutex::new(Vec::new()),
            instances_started: AtomicU64::new(0),
            stop_ticker,
        }))
    }

    /// The key-value store the instances share.
    pub fn key_value(&self) -> &KeyValue {
        &self.kv
    }

    /// Instances started so far (each a cold start: nothing loaded, no model).
    pub fn instances_started(&self) -> u64 {
        self.instances_started.load(Ordering::Relaxed)
    }

    /// Epoch ticks of the per-request deadline (one whole tick more).
    fn deadline_ticks(&self) -> u64 {
        (self.config.limits.call_timeout.as_millis() / TICK.as_millis() + 2) as u64
    }

    async fn instance(&self) -> Result<Instance> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        if let Some(instance) = idle {
            return Ok(instance);
        }
        let mut wasi = WasiCtx::builder();
        // The app's own log lines (as Spin shows a component's stderr).
        wasi.inherit_stderr();
        for (k, v) in &self.config.env {
            wasi.env(k, v);
        }
        let state = AppState {
            table: ResourceTable::new(),
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            hooks: NoOutgoingHttp,
            kv: self.kv.clone(),
            request: RequestScope::default(),
            variables: self.variables.clone(),
            limits: StoreLimitsBuilder::new()
                .memory_size(self.config.limits.memory_bytes)
                .instances(16)
                .build(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(self.deadline_ticks());
        let service = self.pre.instantiate_async(&mut store).await?;
        self.instances_started.fetch_add(1, Ordering::Relaxed);
        Ok(Instance {
            store,
            service,
            served: 0,
        })
    }

    /// Takes one instance slot until the permit is dropped, as a request does: with every slot
    /// taken, requests wait (at most `instance_wait`).
    pub fn hold_instance_slot(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        self.instances.try_acquire().ok()
    }

    /// One request through one instance, under the per-request deadline; [`front::Busy`] when no
    /// instance becomes free within `instance_wait`.
    pub async fn handle(&self, request: Request<Bytes>) -> Result<Response<Bytes>> {
        // Held until the instance is back in the pool or dropped.
        let wait = self.config.instance_wait;
        let _alive = tokio::time::timeout(wait, self.instances.acquire())
            .await
            .map_err(|_| front::Busy(wait))??;
        let mut instance = self.instance().await?;
        instance.store.set_epoch_deadline(self.deadline_ticks());
        // What the previous request read is no start for this one's compare-and-swaps.
        let refused = self.kv.refusing_writes();
        instance.store.data_mut().request.begin(refused);
        let request = request.map(|b| {
            http_body_util::Full::new(b)
                .map_err(|e: std::convert::Infallible| -> HttpError { match e {} })
        });
        let (request, io) = wasmtime_wasi_http::p3::Request::from_http(
            &mut instance.store.data_mut().hooks,
            request,
        );
        let Instance { store, service, .. } = &mut instance;
        let response = store
            .run_concurrent(async move |store| {
                let (response, ()) = tokio::try_join!(
                    async {
                        let response = match service.handle(store, request).await? {
                            Ok(response) => response,
                            Err(code) => anyhow::bail!("the app failed the request: {code:?}"),
                        };
                        let response =
                            store.with(|store| response.into_http(store, async { Ok(()) }))?;
                        let (parts, body) = response.into_parts();
                        let body = body.collect().await.context("the response body")?;
                        Ok(Response::from_parts(parts, body.to_bytes()))
                    },
                    async { io.await.context("the request body") }
                )?;
                anyhow::Ok(response)
            })
            .await;
        let response = match response {
            Ok(Ok(response)) => response,
            // A trap, a deadline or a failed request: the instance is not reused.
            Ok(Err(e)) => return Err(e),
            Err(e) => return Err(e.into()),
        };
        let unsynced = instance.store.data_mut().request.take_unsynced();
        instance.served += 1;
        if instance.served < self.config.reuse {
            self.idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(instance);
        }
        // The instance serves others meanwhile; this answer waits for its writes' sync.
        drop(_alive);
        for (commit, through) in unsynced {
            commit.synced(through).await.map_err(NotDurable)?;
        }
        Ok(response)
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}
