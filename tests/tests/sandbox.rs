//! The scoring component's sandbox: it imports one WASI interface, `wasi:random/random`, and the
//! hosts' linker (`edgescore-sandbox`) defines nothing else, so a component that wanted files,
//! sockets, clocks, the environment or stdio would not even instantiate.

use edgescore_runtime::{ComponentSource, GuestLimits, Runtime};

#[test]
fn the_scoring_component_imports_nothing_but_random_bytes() {
    let imports = edgescore_runtime::wit::imports(edgescore_embedded::SCORING_COMPONENT).unwrap();
    assert_eq!(imports, ["wasi:random/random@0.2.0"]);
}

#[test]
fn a_component_importing_more_of_wasi_does_not_instantiate() {
    // The Spin app imports much of WASI (stdio, clocks, the environment...) through Rust's std.
    let app =
        edgescore_tests::repo_root().join("target/wasm32-wasip2/component/edgescore_http.wasm");
    let imports = edgescore_runtime::wit::imports(&std::fs::read(&app).unwrap()).unwrap();
    assert!(
        imports.iter().any(|i| i.starts_with("wasi:cli/")),
        "{imports:?}"
    );
    let Err(e) = Runtime::new(&ComponentSource::Path(app), GuestLimits::default()) else {
        panic!("the app instantiated with the scoring component's linker");
    };
    let e = format!("{e:#}");
    assert!(
        e.contains("wasi:") && !e.contains("wasi:random/random"),
        "the error names the missing WASI import: {e}"
    );
}
