//! schemathesis, the OpenAPI tester, against each host's own `/openapi.json`: every operation,
//! every check (the status codes and bodies the document declares, the bounds it states, requests
//! it forbids being refused, undeclared methods answered 405 with `Allow`, the token when one is
//! declared), with and without an API token. A fixed seed and a bounded number of examples keep a
//! run the same from one machine to the next. Its settings are `tests/schemathesis/schemathesis.toml`.

use std::process::Stdio;

use edgescore_serve::ServiceConfig;
use edgescore_tests::http::{AppServer, Client, NativeServer, app_config, service_config};
use edgescore_tests::spin::{SpinApp, SpinOptions};
use edgescore_tests::{python, repo_root, runtime};

const TOKEN: &str = "schemathesis-token";
const SEED: &str = "20261207";
const EXAMPLES: &str = "40";

/// Runs schemathesis against `client`'s host, sending `token` when given; panics with its report
/// unless it finds nothing. Twice: every operation but inference with every check, then the
/// inference operations with every check but one. An inference request's `data` must hold as
/// many numbers as its `shape` says (N × width), a constraint between two fields that JSON Schema
/// cannot state, so a request generated as valid may rightly be a 400 there.
async fn schemathesis(host: &str, client: &Client, token: Option<&str>) {
    let runs: [&[&str]; 2] = [
        &["--exclude-path-regex", ".*/infer$"],
        &[
            "--include-path-regex",
            ".*/infer$",
            "--exclude-checks",
            "positive_data_acceptance",
        ],
    ];
    for selection in runs {
        run_schemathesis(host, client, token, selection).await;
    }
}

async fn run_schemathesis(host: &str, client: &Client, token: Option<&str>, selection: &[&str]) {
    let tool = python().with_file_name("schemathesis");
    let config = repo_root().join("tests/schemathesis/schemathesis.toml");
    let mut command = std::process::Command::new(&tool);
    command
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(format!("{}/openapi.json", client.base))
        // Every check is on by default.
        .args(["--seed", SEED, "--max-examples", EXAMPLES])
        .args(selection)
        .args(["--workers", "1", "--no-color"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(token) = token {
        command.args(["--header", &format!("Authorization: Bearer {token}")]);
    }
    // Off the runtime's threads: the host under test answers on them.
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("schemathesis' thread")
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run the tests with `cargo xtask test`)",
                tool.display()
            )
        });
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found problems with {host} (token: {}, {selection:?}):\n{report}\n{}",
        token.is_some(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains(" passed"), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_native_service_keeps_its_document_without_a_token() {
    let server = NativeServer::start(runtime(), service_config()).await;
    schemathesis("edgescore serve", &server.client, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_native_service_keeps_its_document_with_a_token() {
    let config = ServiceConfig {
        api_token: Some(TOKEN.into()),
        ..service_config()
    };
    let server = NativeServer::start(runtime(), config).await;
    schemathesis("edgescore serve", &server.client, Some(TOKEN)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spin_app_keeps_its_document_without_a_token() {
    let server = AppServer::start(128).await;
    schemathesis("edgescore serve-app", &server.client, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spin_app_keeps_its_document_with_a_token() {
    let mut config = app_config(128, 64);
    config.variables = vec![("api_token".into(), TOKEN.into())];
    let server = AppServer::start_config(config).await;
    schemathesis("edgescore serve-app", &server.client, Some(TOKEN)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spin_app_under_spin_keeps_its_document_with_and_without_a_token() {
    let Some(open) = SpinApp::start().await else {
        return;
    };
    schemathesis("spin up", &open.client, None).await;
    drop(open);
    let options = SpinOptions {
        variables: vec![("api_token".into(), TOKEN.into())],
        ..SpinOptions::default()
    };
    let Some(guarded) = SpinApp::start_with(options).await else {
        return;
    };
    schemathesis("spin up", &guarded.client, Some(TOKEN)).await;
}
