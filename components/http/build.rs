//! Embeds the repository's model registry in the component: an instance loads its model from
//! memory, with no file access granted.

use std::path::PathBuf;

#[path = "../../models/embed.rs"]
mod embed;

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../..");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("embedded_models.rs");
    std::fs::write(&out, embed::embedded_models(&root.join("models"))).unwrap();
}
