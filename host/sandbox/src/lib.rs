//! What the scoring component may use of WASI, in every host of this project (the runtime's
//! instances, and the instance `edgescore-preinit` snapshots at build time): `wasi:random/random`,
//! from which it draws the keys of its hash maps, and nothing else. The linker holds no other
//! WASI interface: a component that imported files, sockets, clocks, the environment or stdio
//! would fail to instantiate instead of getting them.

use wasmtime::component::Linker;
use wasmtime_wasi::p2::bindings::random::random;
use wasmtime_wasi::random::WasiRandom;
use wasmtime_wasi::{WasiCtx, WasiView};

/// Defines in `linker` the only WASI interface the scoring component imports.
pub fn add_to_linker<T: WasiView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    random::add_to_linker::<T, WasiRandom>(linker, |state| state.ctx().ctx.random())
}

/// The WASI context behind that linker: its random source (the operating system's).
pub fn wasi() -> WasiCtx {
    WasiCtx::builder().build()
}
