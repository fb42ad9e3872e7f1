//! The Spin app (`components/http`) under the wasmtime harness: the same HTTP contract suite as
//! the native service, unchanged, then what only the app has to prove — state that lives in the
//! key-value store, not in an instance.

use edgescore_tests::contract;
use edgescore_tests::http::AppServer;

/// Spin's reuse: an instance serves up to 128 requests.
async fn app() -> AppServer {
    AppServer::start(128).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_contract() {
    contract::seed_contract(&app().await.client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_ready() {
    contract::health_and_ready(&app().await.client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_bad_bodies() {
    contract::refuses_bad_bodies(&app().await.client).await;
}

/// The token comes from the Spin variable `api_token`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requires_the_api_token() {
    let mut config = edgescore_tests::http::app_config(128, 64);
    config.variables = vec![("api_token".into(), "s3cret-app".into())];
    let server = AppServer::start_config(config).await;
    contract::requires_the_api_token(&server.client, "s3cret-app").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_bodies_that_are_not_json() {
    contract::refuses_bodies_that_are_not_json(&app().await.client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejects_bad_events_alone() {
    contract::rejects_bad_events_alone(&app().await.client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_clock_expires_nobody() {
    contract::a_fast_clock_expires_nobody(&app().await.client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_follow_the_reference() {
    contract::windows_follow_the_reference(&app().await.client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_lose_nothing() {
    contract::concurrent_clients_lose_nothing(&app().await.client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn predict_scores_without_touching_windows() {
    contract::predict_scores_without_touching_windows(&app().await.client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_lists_the_registry() {
    contract::models_lists_the_registry(&app().await.client).await;
}

/// Every request in a fresh instance: nothing survives in an instance, so the windows, the
/// watermark and the counters can only come from the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_lives_in_the_store_not_the_instance() {
    contract::seed_contract(&AppServer::start(1).await.client).await;
    let server = AppServer::start(1).await;
    contract::windows_follow_the_reference(&server.client).await;
    assert!(
        server.app.instances_started() > 30,
        "a fresh instance per request"
    );
}

/// Twelve clients on the same three users, every request in a fresh instance: every write is a
/// compare-and-swap race on a hot key, and still every accepted event is in its window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_users_from_many_instances_lose_nothing() {
    let server = AppServer::start(1).await;
    contract::hot_users_lose_nothing(std::slice::from_ref(&server.client)).await;
}

/// A window whose events have all expired is forgotten: its key leaves the store, and the
/// counters `/stats` reads (never a scan of the store) follow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emptied_windows_leave_the_store_and_the_counters() {
    use serde_json::json;
    let mut config = edgescore_tests::http::app_config(128, 64);
    config.env = vec![("EDGESCORE_WINDOW_SECONDS".into(), "2".into())];
    let server = AppServer::start_config(config).await;
    let c = &server.client;
    let t = contract::now();
    let event =
        |user: &str, t: f64| json!({"user_id": user, "timestamp": t, "features": [0.1, 0.2, 0.3]});
    let r = c
        .post_json(
            "/ingest",
            &json!({"events": [event("gone", t - 1.0), event("gone", t - 0.5), event("stays", t)]}),
        )
        .await;
    assert_eq!(r.body["processed"], 3, "{}", r.body);
    let s = c.get("/stats").await.body;
    assert_eq!(
        (s["users_tracked"].as_i64(), s["events_in_windows"].as_i64()),
        (Some(2), Some(3))
    );
    assert!(server.app.key_value().values("default", "user/gone").len() == 1);
    // Once the clock (and with it the watermark) passes t + 1.5, gone's events are all out.
    while contract::now() <= t + 1.6 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let r = c
        .post_json(
            "/ingest",
            &json!({"events": [event("stays", contract::now())]}),
        )
        .await;
    assert_eq!(r.body["processed"], 1, "{}", r.body);
    assert_eq!(c.get("/users/gone/median").await.body["count"], 0);
    assert!(
        server
            .app
            .key_value()
            .values("default", "user/gone")
            .is_empty(),
        "the emptied window's key is deleted"
    );
    let s = c.get("/stats").await.body;
    assert_eq!(s["users_tracked"], 1, "{s}");
    let stays = c.get("/users/stays/median").await.body["count"]
        .as_i64()
        .unwrap();
    assert_eq!(s["events_in_windows"].as_i64(), Some(stays), "{s}");
    // One window: its header (format byte and write ids), then 12 bytes per event.
    let header = 1 + 8 * edgescore_contract::stored_window::WRITE_IDS as i64;
    assert_eq!(
        s["stored_window_bytes"].as_i64(),
        Some(header + 12 * stays),
        "{s}"
    );
}

/// `spin.toml` serves what `cargo xtask build` builds, on every path, composed with the scoring
/// component every host embeds, with the store and the environment the app reads, and builds
/// both with `spin build` (`cargo xtask components`).
#[test]
fn spin_toml_describes_the_built_app() {
    let text = String::from_utf8(edgescore_tests::read("spin.toml")).unwrap();
    let manifest: toml::Table = toml::from_str(&text).unwrap();
    assert_eq!(manifest["spin_manifest_version"].as_integer(), Some(2));
    let trigger = &manifest["trigger"]["http"].as_array().unwrap()[0];
    assert_eq!(trigger["route"].as_str(), Some("/..."));
    let name = trigger["component"].as_str().unwrap();
    let component = &manifest["component"][name];
    let source = component["source"].as_str().unwrap();
    assert_eq!(source, "target/wasm32-wasip2/component/edgescore_http.wasm");
    assert!(
        edgescore_tests::repo_root().join(source).exists(),
        "{source} is built"
    );
    // The scoring component Spin plugs in is the one every host embeds (and the tests ran).
    let dependency = component["dependencies"]["edgescore:scoring@0.1.0"]["path"]
        .as_str()
        .unwrap();
    let built = std::fs::read(edgescore_tests::repo_root().join(dependency)).unwrap();
    assert!(
        built == edgescore_embedded::SCORING_COMPONENT,
        "{dependency} is the scoring component"
    );
    let stores: Vec<&str> = component["key_value_stores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    let env = component["environment"].as_table().unwrap();
    let store = env["EDGESCORE_KV_STORE"].as_str().unwrap();
    assert!(stores.contains(&store), "{store} in {stores:?}");
    assert_eq!(env["EDGESCORE_WINDOW_SECONDS"].as_str(), Some("300"));
    assert_eq!(env["EDGESCORE_MAX_CLOCK_SKEW_SECONDS"].as_str(), Some("60"));
    // The API token is a secret application variable, passed to the component by name.
    let token = &manifest["variables"]["api_token"];
    assert_eq!(token["secret"].as_bool(), Some(true));
    assert_eq!(
        component["variables"]["api_token"].as_str(),
        Some("{{ api_token }}")
    );
    // `spin build` makes both as xtask does: the scoring component pre-initialized, at that path.
    let build = component["build"]["command"].as_str().unwrap();
    assert_eq!(build, "cargo xtask components");
}

/// Instances are bounded: 16 concurrent clients on an app allowed 2 instances all get their
/// answers, from no more than 2 instances ever started (each serves many requests).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_are_bounded_and_requests_wait_for_one() {
    let server = AppServer::start_with(128, 2).await;
    let mut clients = Vec::new();
    for k in 0..16 {
        let c = server.client.clone();
        clients.push(tokio::spawn(async move {
            for r in 0..5 {
                let body = serde_json::json!({"events": [{"user_id": format!("b-{k}"), "timestamp": contract::now(), "features": [0.1, 0.2, r as f32 / 10.0]}]});
                let a = c.post_json("/ingest", &body).await;
                assert_eq!((a.status, &a.body["processed"]), (200, &serde_json::json!(1)));
            }
        }));
    }
    for c in clients {
        c.await.unwrap();
    }
    assert!(
        server.app.instances_started() <= 2,
        "{}",
        server.app.instances_started()
    );
    let s = server.client.get("/stats").await.body;
    assert_eq!(s["events_processed"], 80);
}

/// With every instance busy, a request waits at most `instance_wait`, then gets 503 with
/// `Retry-After` (nothing of it done); once an instance is free, requests pass again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_an_instance_is_bounded() {
    let mut config = edgescore_tests::http::app_config(128, 1);
    config.instance_wait = std::time::Duration::from_millis(200);
    let server = AppServer::start_config(config).await;
    let body = serde_json::json!({"events": [{"user_id": "w", "timestamp": contract::now(), "features": [0.1, 0.2, 0.3]}]});
    let busy = server.app.hold_instance_slot().expect("the only slot");
    let r = server.client.post_json("/ingest", &body).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.retry_after.as_deref(), Some("1"));
    assert!(
        r.error().starts_with("app: no app instance became free"),
        "{}",
        r.body
    );
    drop(busy);
    let r = server.client.post_json("/ingest", &body).await;
    assert_eq!(
        (r.status, &r.body["processed"]),
        (200, &serde_json::json!(1))
    );
    assert_eq!(server.client.get("/users/w/median").await.body["count"], 1);
}

/// The app's `/stats` latency percentiles come from bucket counters in the store: over 40
/// requests, as many samples as requests, ordered percentiles, an average that agrees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_percentiles_count_every_ingest() {
    let server = app().await;
    let c = &server.client;
    // Small and large requests; each one's time as the client saw it bounds the server's own.
    let mut seen = Vec::new();
    for i in 0..40 {
        let n = if i % 4 == 0 { 2000 } else { 1 };
        let events: Vec<serde_json::Value> = (0..n)
            .map(|k| serde_json::json!({"user_id": format!("p-{i}-{k}"), "timestamp": contract::now(), "features": [0.1, 0.2, 0.3]}))
            .collect();
        let started = std::time::Instant::now();
        let r = c
            .post_json("/ingest", &serde_json::json!({ "events": events }))
            .await;
        seen.push(started.elapsed().as_secs_f64());
        assert_eq!(r.status, 200);
    }
    seen.sort_by(f64::total_cmp);
    let s = c.get("/stats").await.body;
    let l = &s["ingest_latency_seconds"];
    assert_eq!(l["count"], 40, "{l}");
    assert_eq!(s["ingest_requests"], 40);
    let q = |k: &str| l[k].as_f64().unwrap();
    assert!(
        q("p50") <= q("p95") && q("p95") <= q("p99") && q("p99") <= q("max"),
        "{l}"
    );
    // A percentile is its bucket's upper bound: at most 2^(1/4) above the server's own time,
    // which is below the client's.
    let bound = 2f64.powf(0.25);
    let client = |p: f64| seen[((p * 40.0).ceil() as usize).clamp(1, 40) - 1];
    for (k, p) in [("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1.0)] {
        assert!(
            q(k) <= client(p) * bound,
            "{k}: {} > client {}; {l}",
            q(k),
            client(p)
        );
    }
    let client_avg = seen.iter().sum::<f64>() / 40.0;
    assert!(
        q("avg") > 0.0 && q("avg") <= client_avg,
        "{l} vs {client_avg}"
    );
    assert_eq!(s["avg_ingest_latency_seconds"].as_f64(), Some(q("avg")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_are_echoed_and_named_in_errors() {
    contract::request_ids_are_echoed_and_named_in_errors(&app().await.client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_describes_every_route() {
    contract::openapi_describes_every_route(&app().await.client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_serve_swagger_ui() {
    contract::docs_serve_swagger_ui(&app().await.client).await;
}
