//! The binary `cargo xtask run` builds to serve: `edgescore` without the `spin-app` feature, as a
//! user runs it. `cargo xtask test` runs this file with the feature off; with the feature on
//! (`cargo test`'s default) the binary has the app, and there is nothing here to run.
#![cfg(not(feature = "spin-app"))]

use std::process::Command;

fn edgescore(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_edgescore"))
        .args(args)
        .output()
        .expect("running edgescore")
}

/// `serve-app` and `bench-app` take their usual arguments and answer with one line saying how
/// to build the binary that has them, and exit status 1.
#[test]
fn the_app_subcommands_say_how_to_build_them() {
    for args in [
        &["serve-app", "--port", "3001", "--ephemeral"][..],
        &["bench-app", "--requests", "5"][..],
    ] {
        let out = edgescore(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.contains("built without the Spin app"), "{stderr}");
        assert!(stderr.contains("cargo xtask build"), "{stderr}");
        assert!(out.stdout.is_empty());
    }
}

/// The native service is there, with its arguments.
#[test]
fn the_native_service_is_there() {
    let out = edgescore(&["serve", "--help"]);
    assert!(out.status.success());
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("--data-dir")
    );
}
