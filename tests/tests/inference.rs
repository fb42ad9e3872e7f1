//! The Open Inference Protocol (KServe v2) with its own client: `tritonclient.http` runs
//! `tests/inference/tritonclient_check.py` against each host — health, metadata, the repository
//! index, inference with JSON and with binary tensors, a versioned inference, a wrong shape, a
//! wrong datatype, an unknown model, a missing token — and compares the scores with onnxruntime
//! running the same model files, within 1e-5.

use edgescore_serve::ServiceConfig;
use edgescore_tests::http::{AppServer, Client, NativeServer, app_config, service_config};
use edgescore_tests::spin::{SpinApp, SpinOptions};
use edgescore_tests::{python, repo_root, runtime};

const TOKEN: &str = "triton-token";

/// Runs the tritonclient check against `client`'s host; panics with what failed.
async fn tritonclient(host: &str, client: &Client, token: Option<&str>) {
    let address = client.base.trim_start_matches("http://").to_string();
    let mut command = std::process::Command::new(python());
    command
        .arg(repo_root().join("tests/inference/tritonclient_check.py"))
        .arg(address)
        .arg(repo_root().join("models"));
    command.args(token);
    // Off the runtime's threads: the host under test answers on them.
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("the check's thread")
        .expect("running tests/inference/tritonclient_check.py");
    assert!(
        out.status.success(),
        "tritonclient against {host} (token: {}):\n{}{}",
        token.is_some(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tritonclient_speaks_to_the_native_service() {
    let open = NativeServer::start(runtime(), service_config()).await;
    tritonclient("edgescore serve", &open.client, None).await;
    // Counted like every route: the check's inferences (4 answered, 4 refused) and its calls of
    // the unversioned route among them.
    let routes = open.client.get("/stats").await.body["routes"].clone();
    let infer = &routes["/v2/models/{name}/infer"];
    let versioned = &routes["/v2/models/{name}/versions/{version}/infer"];
    let requests = |r: &serde_json::Value| r["requests"].as_u64().unwrap_or(0);
    assert_eq!(requests(infer) + requests(versioned), 8, "{routes}");
    assert!(infer["errors"].as_u64().unwrap() >= 2, "{routes}");
    let config = ServiceConfig {
        api_token: Some(TOKEN.into()),
        ..service_config()
    };
    let guarded = NativeServer::start(runtime(), config).await;
    tritonclient("edgescore serve", &guarded.client, Some(TOKEN)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tritonclient_speaks_to_the_spin_app() {
    let open = AppServer::start(128).await;
    tritonclient("edgescore serve-app", &open.client, None).await;
    let mut config = app_config(128, 64);
    config.variables = vec![("api_token".into(), TOKEN.into())];
    let guarded = AppServer::start_config(config).await;
    tritonclient("edgescore serve-app", &guarded.client, Some(TOKEN)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tritonclient_speaks_to_the_app_under_spin() {
    let options = SpinOptions {
        variables: vec![("api_token".into(), TOKEN.into())],
        ..SpinOptions::default()
    };
    let Some(app) = SpinApp::start_with(options).await else {
        return;
    };
    tritonclient("spin up", &app.client, Some(TOKEN)).await;
}
