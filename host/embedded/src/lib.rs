//! The components this build of the host carries: the scoring component every host runs by
//! default, and (feature `spin-app`) the Spin app composed with it that `edgescore serve-app`
//! serves.
//!
//! They live in this crate alone, which only the `edgescore` binary and the tests depend on, so
//! that the rest of the host (runtime, serve, app-harness) compiles while the components build
//! (`cargo xtask build`): only this crate and the binary wait for them.

use edgescore_runtime::ComponentSource;

/// The scoring component, pre-initialized (`edgescore-preinit`).
pub static SCORING_COMPONENT: &[u8] = include_bytes!(env!("EDGESCORE_EMBEDDED_COMPONENT"));

/// [`SCORING_COMPONENT`]'s sha256 (hex), computed when it was embedded.
pub const SCORING_COMPONENT_SHA256: &str = env!("EDGESCORE_EMBEDDED_COMPONENT_SHA256");

/// The Spin app composed with the scoring component.
#[cfg(feature = "spin-app")]
pub static APP: &[u8] = include_bytes!(env!("EDGESCORE_EMBEDDED_APP"));

/// The embedded scoring component, as a runtime loads it.
pub fn scoring_component() -> ComponentSource {
    ComponentSource::Embedded {
        bytes: SCORING_COMPONENT,
        sha256: SCORING_COMPONENT_SHA256,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The digest the build script gave is the embedded bytes' own: the cache key and
    /// `edgescore_build_info` name the component that runs.
    #[test]
    fn the_embedded_digest_is_the_embedded_components() {
        assert_eq!(
            SCORING_COMPONENT_SHA256,
            edgescore_registry::sha256_hex(SCORING_COMPONENT)
        );
    }

    /// The pre-initialized component carries each model file of the registry once, its static
    /// copy: `preload` keeps no copy of the default model's bytes, and what it freed (the
    /// registry's copies, tract's parse) is zeroed before the snapshot
    /// (components/scoring/src/allocator.rs). The first KiB is the file's framing (only a copy of
    /// the file holds it), the middle KiB its weights (tract's parse held them too). Before
    /// that, the default model's weights were in it four times.
    #[test]
    fn the_snapshot_holds_no_freed_copy_of_the_models() {
        for (folder, _, onnx) in edgescore_registry::EMBEDDED_MODELS {
            let middle = onnx.len() / 2;
            for (what, window) in [
                ("framing", &onnx[..1024]),
                ("weights", &onnx[middle..middle + 1024]),
            ] {
                let copies = SCORING_COMPONENT
                    .windows(window.len())
                    .filter(|w| *w == window)
                    .count();
                assert_eq!(copies, 1, "{folder}'s {what}: {copies} copies");
            }
        }
    }
}
