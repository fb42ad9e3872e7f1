//! Embeds the Spin app composed with the scoring component (`edgescore_app.wasm`, built by
//! `cargo xtask build`, or `EDGESCORE_APP_WASM`), as the app `edgescore serve-app` serves.

#[path = "../embed_component.rs"]
mod embed_component;

fn main() {
    let root = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../..");
    embed_component::embed_component(
        &root,
        "EDGESCORE_APP_WASM",
        "edgescore_app.wasm",
        "EDGESCORE_EMBEDDED_APP",
    );
}
