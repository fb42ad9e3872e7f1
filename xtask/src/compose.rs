//! The Spin app composed with the scoring component into one file (`edgescore_app.wasm`), as Spin
//! composes them at load time from `spin.toml`'s component dependencies: the app's imports of
//! `edgescore:scoring` plugged with the scoring component's exports (wac-graph).

use std::path::Path;

use anyhow::{Context, Result};
use wac_graph::types::Package;
use wac_graph::{CompositionGraph, EncodeOptions, plug};

pub fn compose(scoring: &Path, app: &Path, out: &Path) -> Result<()> {
    let mut graph = CompositionGraph::new();
    let mut register = |name: &str, path: &Path| -> Result<_> {
        let package = Package::from_file(name, None, path, graph.types_mut())
            .with_context(|| format!("reading {}", path.display()))?;
        Ok(graph.register_package(package)?)
    };
    let scoring = register("edgescore:scoring", scoring)?;
    let app = register("edgescore:http", app)?;
    plug(&mut graph, vec![scoring], app).context("plugging the scoring component into the app")?;
    let bytes = graph.encode(EncodeOptions::default())?;
    crate::write_if_changed(out, &bytes)?;
    eprintln!(
        "xtask: composed app {} ({:.1} MiB)",
        out.display(),
        bytes.len() as f64 / (1 << 20) as f64
    );
    Ok(())
}
