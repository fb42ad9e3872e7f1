//! The WIT a component exports, decoded from its own bytes (what `edgescore inspect` prints): its
//! world (imports and exports) and the interfaces of its own packages; the WASI packages that
//! Rust's std imports are named in the world but not printed out.

use anyhow::{Context, Result};
use wit_component::{DecodedWasm, WitPrinter};

pub fn exported_wit(component: &[u8]) -> Result<String> {
    let decoded = wit_component::decode(component).context("decoding the component's WIT")?;
    let DecodedWasm::Component(resolve, world) = &decoded else {
        anyhow::bail!("not a component: a WIT package was given");
    };
    let package = resolve.worlds[*world]
        .package
        .context("the world has no package")?;
    let mut printer = WitPrinter::default();
    let nested: Vec<_> = resolve
        .packages
        .iter()
        .filter(|(id, p)| *id != package && p.name.namespace != "wasi")
        .map(|(id, _)| id)
        .collect();
    printer.print(resolve, package, &nested)?;
    Ok(printer.output.to_string())
}

/// The names of what a component imports (`wasi:random/random@0.2.0`, ...), in its order.
pub fn imports(component: &[u8]) -> Result<Vec<String>> {
    let decoded = wit_component::decode(component).context("decoding the component's WIT")?;
    let DecodedWasm::Component(resolve, world) = &decoded else {
        anyhow::bail!("not a component: a WIT package was given");
    };
    Ok(resolve.worlds[*world]
        .imports
        .keys()
        .map(|key| resolve.name_world_key(key))
        .collect())
}
