//! Embeds the scoring component (built by `cargo xtask build`, or `EDGESCORE_COMPONENT_WASM`) in
//! the library, as the component every host runs by default.

#[path = "../embed_component.rs"]
mod embed_component;

fn main() {
    let root = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../..");
    embed_component::embed_component(
        &root,
        "EDGESCORE_COMPONENT_WASM",
        "edgescore_scoring.wasm",
        "EDGESCORE_EMBEDDED_COMPONENT",
    );
}
