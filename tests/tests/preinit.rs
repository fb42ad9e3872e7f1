//! The scoring component as shipped is pre-initialized (`edgescore-preinit`, wasmtime wizer):
//! every fresh instance starts with the registry's default model loaded and optimized, so that
//! loading it is a comparison of bytes instead of a parse and an optimization (the cold
//! start). Measured in wasm instructions (wasmtime fuel), which do not depend on the machine.

use edgescore_registry::Registry;
use edgescore_runtime::{CallError, GuestLimits, Runtime, Scorer};
use edgescore_tests::{rows, runtime, runtime_with, seed_onnx};

/// The fewest instructions `Scorer::new(onnx)` (one `model.load` call, then `model.info`) needs
/// on a fresh instance, by bisection: fuel is counted exactly, so the answer is too.
fn instructions_to_load(onnx: &[u8]) -> u64 {
    let fits = |fuel: u64| {
        let runtime: Runtime = runtime_with(GuestLimits {
            call_fuel: Some(fuel),
            ..GuestLimits::default()
        });
        match Scorer::new(&runtime, onnx) {
            Ok(_) => true,
            Err(CallError::Budget(_)) => false,
            Err(e) => panic!("{e}"),
        }
    };
    let (mut low, mut high) = (1u64, 1u64 << 36);
    while high - low > low / 100 {
        let mid = low + (high - low) / 2;
        if fits(mid) { high = mid } else { low = mid }
    }
    high
}

/// The default model loads in a small fraction of the instructions another model of the same
/// network takes (measured: 1.46M against 22.9M); without pre-initialization the two are alike.
#[test]
fn a_fresh_instance_has_the_default_model_loaded_already() {
    let default = Registry::embedded()
        .select(None, None)
        .unwrap()
        .onnx
        .clone();
    let other = seed_onnx(1);
    assert_ne!(default, other);
    let (preloaded, parsed) = (instructions_to_load(&default), instructions_to_load(&other));
    println!("instructions to load: the default model {preloaded}, another {parsed}");
    assert!(
        preloaded * 5 < parsed,
        "the default model took {preloaded} instructions to load, another {parsed}"
    );

    // And the preloaded model is the default model: it scores as a scorer of its own bytes.
    let features = rows(64, 3, 7, 1.0);
    let mut scorer = Scorer::new(runtime(), &default).unwrap();
    let native = edgescore_engine::Model::load(&default).unwrap();
    let (wasm, native) = (
        scorer.score(&features).unwrap(),
        native.score(&features).unwrap(),
    );
    assert!(
        wasm.iter()
            .zip(&native)
            .all(|(a, b)| (a - b).abs() <= 1e-5 * a.abs().max(1.0)),
        "{wasm:?} against {native:?}"
    );
}

/// A component without the `preload` export is refused with that said.
#[test]
fn preinit_names_what_is_missing() {
    let app = edgescore_tests::read("target/wasm32-wasip2/component/edgescore_http.wasm");
    let e = edgescore_preinit::preinit(&app).unwrap_err();
    assert!(format!("{e:#}").contains("preload"), "{e:#}");
    assert!(edgescore_preinit::preinit(b"not wasm").is_err());
}
