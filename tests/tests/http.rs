//! The native service over real HTTP: the shared contract suite, then what only a native host
//! does (overload with 503, trap recovery, graceful shutdown with requests in flight).

use edgescore_tests::contract;
use edgescore_tests::http::{NativeServer, service_config};
use edgescore_tests::runtime;

async fn native() -> NativeServer {
    NativeServer::start(runtime(), service_config()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_contract() {
    let server = native().await;
    contract::seed_contract(&server.client).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_ready() {
    contract::health_and_ready(&native().await.client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_bad_bodies() {
    contract::refuses_bad_bodies(&native().await.client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requires_the_api_token() {
    let config = edgescore_serve::ServiceConfig {
        api_token: Some("s3cret-native".into()),
        ..service_config()
    };
    let server = NativeServer::start(runtime(), config).await;
    contract::requires_the_api_token(&server.client, "s3cret-native").await;
    // Prometheus scrapes without a token.
    assert_eq!(server.client.get_text("/metrics").await.0, 200);
}

/// `promtool check metrics`, Prometheus's own linter, finds nothing on `/metrics` once traffic has
/// filled every family (ingests, predictions, a refused request, a median).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_finds_nothing_wrong_with_the_metrics() {
    use std::io::Write;
    let server = native().await;
    let c = &server.client;
    let body = serde_json::json!({"events": [{"user_id": "u1", "timestamp": edgescore_contract::clock::unix_now(), "features": [0.1, 0.2, 0.3]}]});
    assert_eq!(c.post_json("/ingest", &body).await.status, 200);
    let predict = serde_json::json!({"instances": [[0.1, 0.2, 0.3]]});
    assert_eq!(c.post_json("/predict", &predict).await.status, 200);
    assert_eq!(c.post("/ingest", "not json").await.status, 400);
    assert_eq!(c.get("/users/u1/median").await.status, 200);
    let (status, _, metrics) = c.get_text("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("_bucket{"),
        "histograms present:\n{metrics}"
    );
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian: apt-get install prometheus; `cargo xtask test` installs it)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "{said}\n{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_bodies_that_are_not_json() {
    contract::refuses_bodies_that_are_not_json(&native().await.client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejects_bad_events_alone() {
    contract::rejects_bad_events_alone(&native().await.client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_clock_expires_nobody() {
    contract::a_fast_clock_expires_nobody(&native().await.client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_follow_the_reference() {
    contract::windows_follow_the_reference(&native().await.client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_lose_nothing() {
    contract::concurrent_clients_lose_nothing(&native().await.client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_job_runs_to_done() {
    contract::batch_job_runs_to_done(&native().await.client).await;
}

mod native_only {
    use std::time::{Duration, Instant};

    use edgescore_runtime::GuestLimits;
    use edgescore_tests::http::{Client, NativeServer, service_config};
    use edgescore_tests::{contract::now, runtime, runtime_with};
    use serde_json::{Value, json};

    fn batch(users: impl Iterator<Item = String>, t: f64) -> Value {
        let events: Vec<Value> = users
            .enumerate()
            .map(|(i, u)| json!({"user_id": u, "timestamp": t, "features": [0.001 * (i % 1000) as f32, 0.2, 0.3]}))
            .collect();
        json!({"events": events})
    }

    async fn count(c: &Client, user: &str) -> u64 {
        c.get(&format!("/users/{user}/median")).await.body["count"]
            .as_u64()
            .unwrap()
    }

    /// A full queue on one shard refuses the whole request with 503 + Retry-After: the part bound
    /// for the other shard is not recorded either. Once there is room, the same request passes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn overload_refuses_whole_requests() {
        let mut config = service_config();
        config.shard.queue_depth = 1;
        let server = NativeServer::start(runtime(), config).await;
        let c = &server.client;
        let service = &server.service;
        let users: Vec<String> = (0..40).map(|i| format!("o-{i}")).collect();
        let on = |shard| {
            users
                .iter()
                .filter(|u| service.shard_of(u) == shard)
                .count()
        };
        assert!(on(0) > 0 && on(1) > 0, "the batch spans both shards");
        let body = batch(users.iter().cloned(), now());

        // Shard 1's only queue slot, taken: exactly what a busy shard looks like to a request.
        let slot = service.shards()[1].queue.try_reserve().unwrap();
        let r = c.post_json("/ingest", &body).await;
        assert_eq!(r.status, 503, "{}", r.body);
        assert_eq!(r.retry_after.as_deref(), Some("1"));
        assert!(
            r.error().starts_with("overloaded: shard 1"),
            "{}",
            r.error()
        );
        drop(slot);
        for u in &users {
            assert_eq!(
                count(c, u).await,
                0,
                "{u}: nothing of a 503 request is recorded"
            );
        }

        let r = c.post_json("/ingest", &body).await;
        assert_eq!((r.status, &r.body["processed"]), (200, &json!(40)));
        let s = c.get("/stats").await.body;
        assert_eq!(s["overloaded_requests"], 1);
        assert_eq!(s["events_processed"], 40);
        assert_eq!(s["ingest_requests"], 2);
        for u in &users {
            assert_eq!(count(c, u).await, 1, "{u}");
        }
    }

    /// A call that runs past its budget fails its request with 500 and a JSON error; the shard is
    /// rebuilt from its checkpoint plus the events recorded after it, so nothing accepted is lost.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_trapped_shard_is_rebuilt_without_losing_events() {
        // An instruction budget (the same on every machine) small calls and a rebuild fit in
        // easily, and 200,000 rows do not.
        let runtime = runtime_with(GuestLimits {
            call_fuel: Some(1_000_000_000),
            memory_bytes: 2 << 30,
            ..GuestLimits::default()
        });
        let mut config = service_config();
        config.shards = 1;
        config.max_events = 300_000;
        config.max_body_bytes = 64 << 20;
        config.shard.checkpoint_interval = Duration::ZERO;
        let server = NativeServer::start(&runtime, config).await;
        let c = &server.client;
        let t = now();

        // Checkpointed (a checkpoint is due after this drain), then one more batch only in the log.
        let first = batch((0..100).map(|i| format!("a-{}", i % 10)), t - 5.0);
        assert_eq!(c.post_json("/ingest", &first).await.status, 200);
        // The shard checkpoints right after answering: wait for it (the clock plays no part).
        let started = Instant::now();
        while c.get("/stats").await.body["checkpoints"] != 1 {
            assert!(started.elapsed() < Duration::from_secs(60), "no checkpoint");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let second = batch((0..3).map(|_| "b".to_string()), t);
        assert_eq!(c.post_json("/ingest", &second).await.status, 200);
        let mut before = Vec::new();
        for u in ["a-0", "a-9", "b"] {
            before.push(c.get(&format!("/users/{u}/median")).await.body);
        }

        let huge = batch((0..200_000).map(|i| format!("big-{}", i % 1000)), t);
        let r = c.post_json("/ingest", &huge).await;
        assert_eq!(r.status, 500, "{}", r.body);
        assert!(r.error().contains("scoring component"), "{}", r.error());
        assert_eq!(r.body["processed"], 0);
        assert_eq!(r.body["not_recorded"].as_array().unwrap().len(), 200_000);

        for (u, was) in ["a-0", "a-9", "b"].into_iter().zip(before) {
            let now = c.get(&format!("/users/{u}/median")).await.body;
            assert_eq!(now, was, "{u} survives the rebuild");
        }
        assert_eq!(count(c, "big-0").await, 0);
        let s = c.get("/stats").await.body;
        assert_eq!(s["shard_restarts"], 1);
        assert_eq!(s["failed_requests"], 1);
        assert_eq!(s["events_processed"], 103);
        assert_eq!(c.get("/ready").await.status, 200);
        let again = batch((0..5).map(|_| "b".to_string()), t);
        assert_eq!(c.post_json("/ingest", &again).await.body["processed"], 5);
        assert_eq!(count(c, "b").await, 8);
    }

    /// `/predict` answers exactly what the scoring component computes (no tolerance: same code).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn predict_equals_the_component_scores() {
        let server = NativeServer::start(runtime(), service_config()).await;
        let rows = edgescore_tests::rows(64, 3, 5, 2.0);
        let mut scorer =
            edgescore_runtime::Scorer::new(runtime(), &edgescore_tests::seed_onnx(2)).unwrap();
        let expected = scorer.score(&rows).unwrap();
        let instances: Vec<&[f32]> = rows.chunks(3).collect();
        let r = server
            .client
            .post_json("/predict", &json!({"instances": instances}))
            .await;
        // Scores are f32: compare at that precision (JSON's decimal round trip through f64 may
        // differ in the last bit of the double, never of the f32).
        let got: Vec<f32> = r.body["predictions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(got, expected);
    }

    /// Finished jobs are kept within a count and a size: the oldest are forgotten first.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn finished_batch_jobs_are_capped_oldest_first() {
        let mut config = service_config();
        config.jobs.max_finished = 3;
        // Three predictions (24 bytes) fit, four do not.
        config.jobs.max_result_bytes = 24;
        let server = NativeServer::start(runtime(), config).await;
        let c = &server.client;
        let submit = |n: usize| {
            let rows: Vec<[f32; 3]> = (0..n).map(|i| [i as f32 / 10.0, 0.5, 0.5]).collect();
            json!({"instances": rows})
        };
        let mut ids = Vec::new();
        for n in [1, 1, 1, 1] {
            let r = c.post_json("/batch", &submit(n)).await;
            let id = r.body["job_id"].as_str().unwrap().to_string();
            edgescore_tests::contract::wait_for_job(c, &id).await;
            ids.push(id);
        }
        let status = async |id: &str| c.get(&format!("/batch/{id}")).await.status;
        // Four finished, three kept: the first is gone.
        assert_eq!(status(&ids[0]).await, 404);
        for id in &ids[1..] {
            assert_eq!(status(id).await, 200, "{id}");
        }
        // A job of two predictions: four jobs (one too many) and 40 bytes; the oldest goes for
        // the count, the next for the bytes (32 > 24), and the newest two stay (24 bytes).
        let r = c.post_json("/batch", &submit(2)).await;
        let big = r.body["job_id"].as_str().unwrap().to_string();
        edgescore_tests::contract::wait_for_job(c, &big).await;
        assert_eq!(status(&ids[1]).await, 404);
        assert_eq!(status(&ids[2]).await, 404);
        assert_eq!(status(&ids[3]).await, 200);
        assert_eq!(status(&big).await, 200);
    }

    /// Shutdown lets the requests already in the service finish (and be recorded) before it ends.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn graceful_shutdown_finishes_requests_in_flight() {
        let mut config = service_config();
        config.shards = 1;
        config.max_events = 50_000;
        let server = NativeServer::start(runtime(), config).await;
        let c = server.client.clone();
        let t = now();
        let mut requests = Vec::new();
        for k in 0..2 {
            let c = c.clone();
            let body = batch((0..40_000).map(move |i| format!("g{k}-{}", i % 100)), t);
            requests.push(tokio::spawn(
                async move { c.post_json("/ingest", &body).await },
            ));
        }
        // Wait until both requests are inside the service.
        let started = Instant::now();
        while server.service.requests_in_flight() < 2 {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the requests never queued"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let service = server.service.clone();
        server.stop().await;
        for r in requests {
            let r = r.await.unwrap();
            assert_eq!((r.status, &r.body["processed"]), (200, &json!(40_000)));
        }
        assert_eq!(service.requests_in_flight(), 0);
        assert_eq!(service.shards()[0].queued(), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn predict_scores_without_touching_windows() {
    contract::predict_scores_without_touching_windows(&native().await.client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_lists_the_registry() {
    contract::models_lists_the_registry(&native().await.client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_prometheus_text() {
    contract::metrics_are_prometheus_text(&native().await.client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_raised_and_cleared() {
    contract::drift_is_raised_and_cleared(&native().await.client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_are_echoed_and_named_in_errors() {
    contract::request_ids_are_echoed_and_named_in_errors(&native().await.client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_describes_every_route() {
    contract::openapi_describes_every_route(&native().await.client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_serve_swagger_ui() {
    contract::docs_serve_swagger_ui(&native().await.client).await;
}
