//! Precompiled components: Cranelift takes seconds on the scoring component, loading a `.cwasm`
//! about a millisecond. Files are keyed by the component's sha256 and the engine's compatibility
//! hash (wasmtime version and compilation settings), so a changed component or wasmtime never
//! loads a stale artifact.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// `$EDGESCORE_CACHE_DIR`, else `$XDG_CACHE_HOME/edgescore`, else `~/.cache/edgescore`.
pub fn default_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("EDGESCORE_CACHE_DIR") {
        return dir.into();
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return Path::new(&dir).join("edgescore");
    }
    match std::env::var_os("HOME") {
        Some(home) => Path::new(&home).join(".cache/edgescore"),
        None => std::env::temp_dir().join("edgescore-cache"),
    }
}

/// The cache file for these component bytes under this engine.
pub fn artifact_path(engine: &Engine, component: &[u8], dir: &Path) -> PathBuf {
    let digest = Sha256::digest(component);
    let component_key: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    let mut hasher = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    dir.join(format!(
        "scoring-{component_key}-{:016x}.cwasm",
        hasher.finish()
    ))
}

/// Loads the component from the cache, or compiles it and stores it there. A cache that cannot be
/// read or written only costs the compilation.
pub fn load_or_compile(engine: &Engine, component: &[u8], dir: &Path) -> Result<Component> {
    let path = artifact_path(engine, component, dir);
    if path.exists() {
        // SAFETY: the file is one this function wrote, under a name that commits to the exact
        // component bytes and engine settings; wasmtime checks its header and version as well.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(compiled) => return Ok(compiled),
            Err(_) => {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    let compiled = Component::new(engine, component)
        .map_err(anyhow::Error::from)
        .context("compiling the scoring component")?;
    if let Err(e) = store(&compiled, &path) {
        eprintln!(
            "edgescore: could not cache the compiled component at {}: {e:#}",
            path.display()
        );
    }
    Ok(compiled)
}

fn store(compiled: &Component, path: &Path) -> Result<()> {
    let dir = path.parent().context("cache path has no folder")?;
    std::fs::create_dir_all(dir)?;
    // Write then rename, so that a concurrent reader never sees half a file.
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().unwrap().to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&tmp, compiled.serialize()?)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
