//! What turns the scoring crate's build into the component that ships, in two steps:
//!
//! 1. [`componentize`]: rustc builds the crate for `wasm32-unknown-unknown` (std without WASI, so
//!    that the component imports only what it uses), which gives a core module carrying
//!    wit-bindgen's description of the `scoring` world; wit-component wraps it in a component.
//! 2. [`preinit`]: pre-initialization (wasmtime wizer): an instance runs the component's
//!    `preload` export once, which loads and optimizes the registry's default model, and a copy
//!    of the component is written whose initial state is that instance's state. Every instance
//!    of the copy starts with the model loaded: its first `model.load` of those bytes costs a
//!    comparison instead of a parse and an optimization (the cold start).
//!
//! The instance runs in the same sandbox as in the hosts (`edgescore-sandbox`: `wasi:random`
//! and nothing else). `preload` is kept in the copy, where calling it again does nothing, so the
//! copy still has every export of the `scoring` world.

use wasmtime::component::{
    Component, ComponentType, Instance, Lift, Linker, ResourceTable, WasmList,
};
use wasmtime::error::Context as _;
use wasmtime::{Config, Engine, Result, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wizer::{ComponentInstanceState, Wizer};

/// The component of the core module `wasm` (wit-component, from the world wit-bindgen embedded in
/// it); a component is returned unchanged.
pub fn componentize(wasm: &[u8]) -> Result<Vec<u8>> {
    // A core module's header is `\0asm` then version 1; a component's has another version and layer.
    if wasm.get(..8) != Some(b"\0asm\x01\0\0\0") {
        return Ok(wasm.to_vec());
    }
    wit_component::ComponentEncoder::default()
        .module(wasm)
        .and_then(|encoder| encoder.validate(true).encode())
        .map_err(|e| wasmtime::format_err!("{e:#}"))
        .context("making a component of the core module")
}

/// The export that `preinit` runs (see `wit/scoring.wit`).
pub const INIT_EXPORT: &str = "preload";

/// The pre-initialized copy of `component` (a scoring component's bytes).
pub fn preinit(component: &[u8]) -> Result<Vec<u8>> {
    let mut wizer = Wizer::new();
    wizer.init_func(INIT_EXPORT).keep_init_func(true);
    let (context, instrumented) = wizer
        .instrument_component(component)
        .context("preparing the component for pre-initialization")?;

    let engine = Engine::new(&Config::new())?;
    let instrumented =
        Component::new(&engine, &instrumented).context("compiling the instrumented component")?;
    if instrumented.get_export_index(None, INIT_EXPORT).is_none() {
        wasmtime::bail!(
            "the component exports no `{INIT_EXPORT}` function: only the scoring component \
             (wit/scoring.wit, world `scoring`) can be pre-initialized"
        );
    }
    let mut linker = Linker::new(&engine);
    edgescore_sandbox::add_to_linker(&mut linker)?;
    let mut store = Store::new(&engine, Sandbox::new());
    let instance = linker
        .instantiate(&mut store, &instrumented)
        .context("instantiating the component")?;
    let preload = instance
        .get_typed_func::<(), ()>(&mut store, INIT_EXPORT)
        .with_context(|| format!("the component exports no `{INIT_EXPORT}: func()`"))?;
    preload
        .call(&mut store, ())
        .with_context(|| format!("`{INIT_EXPORT}` failed"))?;

    // wizer's snapshot API is async; every call it makes here is synchronous.
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    runtime.block_on(wizer.snapshot_component(
        &context,
        &mut Running {
            store: &mut store,
            instance,
        },
    ))
}

/// What the instance may use while it pre-initializes: what the hosts grant (`edgescore-sandbox`).
struct Sandbox {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl Sandbox {
    fn new() -> Self {
        Sandbox {
            wasi: edgescore_sandbox::wasi(),
            table: ResourceTable::new(),
        }
    }
}

impl WasiView for Sandbox {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The instance being snapshotted: wizer reads its memories and globals through the accessor
/// functions it added to the component.
struct Running<'a> {
    store: &'a mut Store<Sandbox>,
    instance: Instance,
}

impl Running<'_> {
    /// Calls `func() -> R` of the exported instance `instance`.
    fn call<R: ComponentType + Lift + Send + Sync + 'static>(
        &mut self,
        instance: &str,
        func: &str,
    ) -> R {
        let store = &mut *self.store;
        let (_, parent) = self
            .instance
            .get_export(&mut *store, None, instance)
            .unwrap_or_else(|| panic!("wizer's accessor instance {instance} is exported"));
        let (_, index) = self
            .instance
            .get_export(&mut *store, Some(&parent), func)
            .unwrap_or_else(|| panic!("wizer's accessor {instance}#{func} is exported"));
        let accessor = self
            .instance
            .get_typed_func::<(), (R,)>(&mut *store, index)
            .unwrap_or_else(|e| panic!("{instance}#{func}: {e}"));
        accessor
            .call(&mut *store, ())
            .unwrap_or_else(|e| panic!("{instance}#{func}: {e}"))
            .0
    }
}

impl ComponentInstanceState for Running<'_> {
    async fn call_func_ret_list_u8(
        &mut self,
        instance: &str,
        func: &str,
        contents: impl FnOnce(&[u8]) + Send,
    ) {
        let list: WasmList<u8> = self.call(instance, func);
        contents(list.as_le_slice(&*self.store));
    }

    async fn call_func_ret_s32(&mut self, instance: &str, func: &str) -> i32 {
        self.call(instance, func)
    }

    async fn call_func_ret_s64(&mut self, instance: &str, func: &str) -> i64 {
        self.call(instance, func)
    }

    async fn call_func_ret_f32(&mut self, instance: &str, func: &str) -> u32 {
        self.call::<f32>(instance, func).to_bits()
    }

    async fn call_func_ret_f64(&mut self, instance: &str, func: &str) -> u64 {
        self.call::<f64>(instance, func).to_bits()
    }
}
