//! Precompiled components: Cranelift takes seconds on the scoring component, loading a `.cwasm`
//! about a millisecond. Files are keyed by the component's sha256 and the engine's compatibility
//! hash (wasmtime version and compilation settings), so a changed component or wasmtime never
//! loads a stale artifact.
//!
//! A `.cwasm` is machine code that wasmtime maps and runs as it is: whoever can write one where
//! we read it runs code in the host. So the cache is used only in a private folder — created
//! 0700, owned by the user running the host, writable by nobody else — and only files owned by
//! that user and writable by nobody else are loaded. Anything else is not read (the component
//! is compiled in memory instead, and the log says why).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use edgescore_registry::sha256_hex;
use wasmtime::Engine;
use wasmtime::component::Component;

/// `$EDGESCORE_CACHE_DIR`, else `$XDG_CACHE_HOME/edgescore`, else `~/.cache/edgescore`, else a
/// folder of this user's own in the temporary directory.
pub fn default_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("EDGESCORE_CACHE_DIR") {
        return dir.into();
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return Path::new(&dir).join("edgescore");
    }
    match std::env::var_os("HOME") {
        Some(home) => Path::new(&home).join(".cache/edgescore"),
        None => std::env::temp_dir().join(format!("edgescore-cache-{}", user_id())),
    }
}

/// Where a component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Deserialized from the cache.
    Cache,
    /// Compiled now (and stored in the cache if it is private).
    Compiled,
}

/// A component's bytes and their sha256 (hex). For the embedded component the digest is
/// computed at build time, so that a cache hit never reads the bytes.
#[derive(Debug, Clone, Copy)]
pub struct Wasm<'a> {
    pub bytes: &'a [u8],
    pub sha256: &'a str,
}

/// The cache file for the component of digest `sha256` (hex) under this engine.
pub fn artifact_path(engine: &Engine, sha256: &str, dir: &Path) -> PathBuf {
    let component_key = &sha256[..32];
    let mut hasher = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    dir.join(format!(
        "scoring-{component_key}-{:016x}.cwasm",
        hasher.finish()
    ))
}

/// Loads the component from the cache, or compiles it and stores it there. A cache that cannot
/// be used (not private, unreadable, corrupt) only costs the compilation.
pub fn load_or_compile(engine: &Engine, component: &[u8], dir: &Path) -> Result<Component> {
    let sha256 = sha256_hex(component);
    let wasm = Wasm {
        bytes: component,
        sha256: &sha256,
    };
    load_or_compile_from(engine, wasm, dir).map(|(compiled, _)| compiled)
}

/// [`load_or_compile`] for a component whose digest is known, saying where it came from.
pub fn load_or_compile_from(
    engine: &Engine,
    component: Wasm<'_>,
    dir: &Path,
) -> Result<(Component, Origin)> {
    let private = private_dir(dir);
    if let Err(e) = &private {
        eprintln!("edgescore: not using the compiled-component cache: {e:#}");
    }
    let path = artifact_path(engine, component.sha256, dir);
    if private.is_ok() && path.exists() {
        match trusted_file(&path) {
            // SAFETY: the file is in a folder only this user can write, owned by this user and
            // writable by nobody else, under a name that commits to the exact component bytes
            // and engine settings; wasmtime checks its header and version as well.
            Ok(()) => match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(compiled) => return Ok((compiled, Origin::Cache)),
                Err(_) => {
                    let _ = std::fs::remove_file(&path);
                }
            },
            Err(e) => eprintln!("edgescore: not loading {}: {e:#}", path.display()),
        }
    }
    let compiled = Component::new(engine, component.bytes)
        .map_err(anyhow::Error::from)
        .context("compiling the scoring component")?;
    if private.is_ok()
        && let Err(e) = store(&compiled, &path)
    {
        eprintln!(
            "edgescore: could not cache the compiled component at {}: {e:#}",
            path.display()
        );
    }
    Ok((compiled, Origin::Compiled))
}

/// Creates `dir` (0700) if it is missing, and checks that it is this user's alone.
fn private_dir(dir: &Path) -> Result<()> {
    if !dir.exists() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    owned_and_not_shared(dir)
}

/// A cached file may be loaded: this user's, writable by nobody else.
fn trusted_file(path: &Path) -> Result<()> {
    owned_and_not_shared(path)
}

#[cfg(unix)]
fn owned_and_not_shared(path: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta =
        std::fs::symlink_metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if meta.file_type().is_symlink() {
        bail!("{} is a symbolic link", path.display());
    }
    if meta.uid() != user_id() {
        bail!(
            "{} belongs to user {}, not to this user ({})",
            path.display(),
            meta.uid(),
            user_id()
        );
    }
    if meta.mode() & 0o022 != 0 {
        bail!(
            "{} is writable by other users (mode {:o})",
            path.display(),
            meta.mode() & 0o777
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn owned_and_not_shared(_: &Path) -> Result<()> {
    Ok(())
}

#[cfg(unix)]
fn user_id() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

#[cfg(not(unix))]
fn user_id() -> u32 {
    0
}

fn store(compiled: &Component, path: &Path) -> Result<()> {
    let dir = path.parent().context("cache path has no folder")?;
    // Write then rename, so that a concurrent reader never sees half a file; 0600 like the
    // folder's other files.
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().unwrap().to_string_lossy(),
        std::process::id()
    ));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(&tmp)?, &compiled.serialize()?)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn tiny() -> Vec<u8> {
        wat::parse_str("(component (core module))").unwrap()
    }

    fn origin_in(engine: &Engine, dir: &Path) -> Origin {
        let bytes = tiny();
        let sha256 = sha256_hex(&bytes);
        let wasm = Wasm {
            bytes: &bytes,
            sha256: &sha256,
        };
        load_or_compile_from(engine, wasm, dir).unwrap().1
    }

    #[test]
    fn a_private_folder_caches_and_a_corrupt_file_is_compiled_again() {
        let engine = Engine::default();
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("cache");
        let origin = |dir: &Path| origin_in(&engine, dir);
        assert_eq!(origin(&dir), Origin::Compiled);
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert_eq!(origin(&dir), Origin::Cache);
        // Corrupt (truncated) or stale bytes under the right name: compiled again, replaced.
        let path = artifact_path(&engine, &sha256_hex(&tiny()), &dir);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        assert_eq!(origin(&dir), Origin::Compiled);
        assert_eq!(origin(&dir), Origin::Cache);
        std::fs::write(&path, b"not a cwasm").unwrap();
        assert_eq!(origin(&dir), Origin::Compiled);
        assert_eq!(origin(&dir), Origin::Cache);
    }

    #[test]
    fn a_folder_or_file_others_can_write_is_never_read() {
        let engine = Engine::default();
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("shared");
        let origin = |dir: &Path| origin_in(&engine, dir);
        assert_eq!(origin(&dir), Origin::Compiled);
        assert_eq!(origin(&dir), Origin::Cache);
        // A folder anyone may write in (as /tmp): a file planted there is not loaded.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert_eq!(origin(&dir), Origin::Compiled);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(origin(&dir), Origin::Cache);
        // A file others may write: not loaded either.
        let path = artifact_path(&engine, &sha256_hex(&tiny()), &dir);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert_eq!(origin(&dir), Origin::Compiled);
    }
}
