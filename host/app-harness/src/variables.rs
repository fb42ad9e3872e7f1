//! `spin:variables/variables@3.0.0` for the app: the values `spin up` would take from
//! `[variables]` in `spin.toml` and `--variable`, here given by the harness's config. A name the
//! harness does not define is `undefined`, as in Spin.

use std::collections::HashMap;
use std::sync::Arc;

use wasmtime::component::{Accessor, HasData, Linker};

mod bindings {
    wasmtime::component::bindgen!({
        world: "spin:variables/imports",
        path: "../../wit/deps/spin-variables",
        imports: { default: trappable },
    });
}

use bindings::spin::variables::variables::{self, Error, Host, HostWithStore};

/// The variables granted to every instance of the app.
pub type Variables = Arc<HashMap<String, String>>;

/// The `HasData` marker for the linker.
struct VariablesImpl;

impl HasData for VariablesImpl {
    type Data<'a> = &'a Variables;
}

impl<U> HostWithStore<U> for VariablesImpl {
    async fn get(
        store: &Accessor<U, Self>,
        name: String,
    ) -> wasmtime::Result<Result<String, Error>> {
        Ok(store.with(|mut view| match view.get().get(&name) {
            Some(value) => Ok(value.clone()),
            None => Err(Error::Undefined(format!("no variable {name:?} is defined"))),
        }))
    }
}

impl Host for &Variables {}

/// Adds the interface; `get` gives a store's variables.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &Variables,
) -> wasmtime::Result<()> {
    variables::add_to_linker::<T, VariablesImpl>(linker, get)
}
