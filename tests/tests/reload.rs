//! Hot reload of the model registry (`POST /models/reload`) on the native service: a new version
//! swapped in under concurrent ingest with no failed request and no lost event, the windows
//! keeping their history; bad versions skipped; a rebuild after a swap replaying it in place.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use edgescore_runtime::{GuestLimits, Scorer};
use edgescore_serve::ModelSet;
use edgescore_tests::contract::now;
use edgescore_tests::http::{Client, NativeServer, service_config};
use edgescore_tests::{add_seed_version, runtime, runtime_with, seed_onnx};
use serde_json::{Value, json};

fn registry_with(versions: &[u32]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for &v in versions {
        add_seed_version(dir.path(), v);
    }
    dir
}

fn models_in(dir: &tempfile::TempDir) -> ModelSet {
    ModelSet::from_dir(Some(dir.path().to_path_buf()), None, None).unwrap()
}

/// The score the seed model `version` gives one row, computed by a scorer of its own.
fn score(version: u32, row: [f32; 3]) -> f64 {
    let mut scorer = Scorer::new(runtime(), &seed_onnx(version)).unwrap();
    f64::from(scorer.score(&row).unwrap()[0])
}

/// Waits until `answered` (the clients' answered requests) reaches `n`. With c clients, each
/// with one request at a time, `c` answers before a reload means every client was scored before
/// it, and `2c` answers after it means requests begun after it were too: no sleep to guess.
async fn until_answered(answered: &AtomicUsize, n: usize) {
    let started = std::time::Instant::now();
    while answered.load(Ordering::SeqCst) < n {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the clients stalled"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn median(c: &Client, user: &str) -> Value {
    c.get(&format!("/users/{user}/median")).await.body
}

async fn ingest_one(c: &Client, user: &str, row: [f32; 3]) {
    let body = json!({"events": [{"user_id": user, "timestamp": now(), "features": row}]});
    let r = c.post_json("/ingest", &body).await;
    assert_eq!(
        (r.status, &r.body["processed"]),
        (200, &json!(1)),
        "{}",
        r.body
    );
}

/// Every shard switches at the same point of the ingest order: clients keep sending requests of
/// one event per shard (each its own user, with features the two versions score differently)
/// while v2 is reloaded; each request is scored wholly by one version, and a client that has seen
/// v2 never sees v1 again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shard_switches_at_one_point_of_the_ingest_order() {
    let dir = registry_with(&[1]);
    let server = NativeServer::start_with(runtime(), models_in(&dir), service_config()).await;
    let c = &server.client;
    let row = [0.3, 0.6, 0.9];
    let (v1, v2) = (score(1, row), score(2, row));
    let service = server.service.clone();
    // A user name on `shard`, unique to client `k`'s request `n`.
    let on = move |shard: usize, k: usize, n: usize| {
        (0..)
            .map(|i| format!("sw{k}-{n}-{shard}-{i}"))
            .find(|u| service.shard_of(u) == shard)
            .unwrap()
    };
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for k in 0..6 {
        let (c, stop, on) = (c.clone(), stop.clone(), on.clone());
        let answered = answered.clone();
        clients.push(tokio::spawn(async move {
            let mut sent = Vec::new();
            while !stop.load(Ordering::Relaxed) || sent.len() < 10 {
                let users = [on(0, k, sent.len()), on(1, k, sent.len())];
                let events: Vec<Value> = users
                    .iter()
                    .map(|u| json!({"user_id": u, "timestamp": now(), "features": row}))
                    .collect();
                let r = c.post_json("/ingest", &json!({ "events": events })).await;
                assert_eq!(
                    (r.status, &r.body["processed"]),
                    (200, &json!(2)),
                    "{}",
                    r.body
                );
                sent.push(users);
                answered.fetch_add(1, Ordering::SeqCst);
            }
            sent
        }));
    }
    until_answered(&answered, 6).await;
    add_seed_version(dir.path(), 2);
    assert_eq!(c.post("/models/reload", "").await.status, 200);
    until_answered(&answered, answered.load(Ordering::SeqCst) + 12).await;
    stop.store(true, Ordering::Relaxed);
    let version = async |user: &str| {
        let m = median(c, user).await["median"].as_f64().unwrap();
        match m {
            m if (m - v1).abs() < 1e-6 => 1,
            m if (m - v2).abs() < 1e-6 => 2,
            m => panic!("{user}: {m} is neither version's score"),
        }
    };
    let mut seen = [false; 3];
    for (k, client) in clients.into_iter().enumerate() {
        let mut last = 1;
        for [a, b] in client.await.unwrap() {
            let (va, vb) = (version(&a).await, version(&b).await);
            assert_eq!(
                va, vb,
                "client {k}: {a} and {b} of one request scored by v{va} and v{vb}"
            );
            assert!(va >= last, "client {k}: v{va} after v{last}");
            last = va;
            seen[va] = true;
        }
    }
    assert!(seen[1] && seen[2], "the switch happened during the traffic");
}

/// Eight clients ingest without pause while v2 is dropped into the registry and reloaded: every
/// request is answered 200, every accepted event is in its user's window, events before the swap
/// were scored by v1 and after it by v2, and /stats counts them per version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_under_concurrent_ingest_fails_nothing_and_keeps_the_windows() {
    let dir = registry_with(&[1]);
    let server = NativeServer::start_with(runtime(), models_in(&dir), service_config()).await;
    let c = &server.client;
    let row = [0.3, 0.6, 0.9];
    let (v1, v2) = (score(1, row), score(2, row));
    assert!((v1 - v2).abs() > 1e-3, "the two versions score differently");
    ingest_one(c, "before", row).await;

    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for k in 0..8 {
        let (c, stop, answered) = (c.clone(), stop.clone(), answered.clone());
        clients.push(tokio::spawn(async move {
            let (mut sent, mut failed, mut requests) = (0u64, Vec::new(), 0u32);
            while !stop.load(Ordering::Relaxed) || requests < 20 {
                let events: Vec<Value> = (0..20)
                    .map(|i| json!({"user_id": format!("c{k}-{}", i % 5), "timestamp": now(), "features": [0.1, 0.2, 0.3]}))
                    .collect();
                let r = c.post_json("/ingest", &json!({"events": events})).await;
                requests += 1;
                answered.fetch_add(1, Ordering::SeqCst);
                if r.status == 200 && r.body["processed"] == 20 {
                    sent += 20;
                } else {
                    failed.push(format!("{} {}", r.status, r.body));
                }
            }
            (sent, failed)
        }));
    }
    until_answered(&answered, 8).await;
    add_seed_version(dir.path(), 2);
    let r = c.post("/models/reload", "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["swapped"], true);
    assert_eq!(r.body["previous"]["version"], 1);
    assert_eq!(r.body["active"]["version"], 2);
    until_answered(&answered, answered.load(Ordering::SeqCst) + 16).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = 1;
    for (k, client) in clients.into_iter().enumerate() {
        let (sent, failed) = client.await.unwrap();
        assert!(failed.is_empty(), "client {k}: {failed:?}");
        total += sent;
        let mut in_windows = 0;
        for u in 0..5 {
            in_windows += median(c, &format!("c{k}-{u}")).await["count"]
                .as_u64()
                .unwrap();
        }
        assert_eq!(
            in_windows, sent,
            "client {k}: every accepted event is in a window"
        );
    }

    ingest_one(c, "after", row).await;
    total += 1;
    let before = median(c, "before").await["median"].as_f64().unwrap();
    let after = median(c, "after").await["median"].as_f64().unwrap();
    assert!(
        (before - v1).abs() < 1e-6,
        "before the swap: v1 {v1}, got {before}"
    );
    assert!(
        (after - v2).abs() < 1e-6,
        "after the swap: v2 {v2}, got {after}"
    );

    let stats = c.get("/stats").await.body;
    assert_eq!(stats["events_processed"], total);
    assert_eq!(stats["failed_requests"], 0);
    assert_eq!(stats["model"]["version"], 2);
    let by_version = stats["events_by_model_version"].as_object().unwrap();
    let (n1, n2) = (
        by_version["1"].as_u64().unwrap(),
        by_version["2"].as_u64().unwrap(),
    );
    assert!(n1 > 1 && n2 > 1, "{by_version:?}");
    assert_eq!(n1 + n2, total);

    let models = c.get("/models").await.body;
    let active: Vec<&Value> = models["models"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["active"] == true)
        .collect();
    assert_eq!(models["models"].as_array().unwrap().len(), 2);
    assert_eq!(active.len(), 1);
    assert_eq!(active[0]["version"], 2);
    let p = c.post_json("/predict", &json!({"instances": [row]})).await;
    assert_eq!(p.body["model_version"], "2");
    assert!((p.body["predictions"][0].as_f64().unwrap() - v2).abs() < 1e-6);
    assert_eq!(c.get("/drift").await.body["model_version"], "2");
    let metrics = c.get_text("/metrics").await.2;
    assert!(
        metrics.contains("edgescore_events_scored_total{model_version=\"2\"}"),
        "{metrics}"
    );
}

/// A version whose file does not match its sha256, and one the component cannot load, are
/// reported and never served; a registry left with nothing servable answers 409 and the service
/// keeps its model; reloading an unchanged registry swaps nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_skips_bad_versions_and_keeps_serving() {
    let dir = registry_with(&[1]);
    let server = NativeServer::start_with(runtime(), models_in(&dir), service_config()).await;
    let c = &server.client;

    let r = c.post("/models/reload", "").await;
    assert_eq!(
        (r.status, &r.body["swapped"]),
        (200, &json!(false)),
        "{}",
        r.body
    );

    // Version 2: the manifest of v2 over bytes that are not its model.
    add_seed_version(dir.path(), 2);
    std::fs::write(dir.path().join("seed-mlp/2/model.onnx"), b"not onnx").unwrap();
    // Version 3: a manifest whose sha256 matches, over bytes tract cannot read.
    let garbage = b"still not an onnx model".to_vec();
    let v3 = dir.path().join("seed-mlp/3");
    std::fs::create_dir_all(&v3).unwrap();
    let mut manifest: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("seed-mlp/1/manifest.json")).unwrap(),
    )
    .unwrap();
    manifest["version"] = json!(3);
    manifest["sha256"] = json!(edgescore_tests::sha256_hex(&garbage));
    std::fs::write(v3.join("manifest.json"), manifest.to_string()).unwrap();
    std::fs::write(v3.join("model.onnx"), &garbage).unwrap();

    let r = c.post("/models/reload", "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["swapped"], false);
    assert_eq!(r.body["active"]["version"], 1);
    let skipped = r.body["skipped"].to_string();
    assert!(
        skipped.contains("seed-mlp/2") && skipped.contains("sha256"),
        "{skipped}"
    );
    assert!(
        skipped.contains("version 3") && skipped.contains("cannot load"),
        "{skipped}"
    );
    let models = c.get("/models").await.body;
    assert_eq!(models["models"].as_array().unwrap().len(), 1);

    std::fs::remove_dir_all(dir.path().join("seed-mlp")).unwrap();
    let r = c.post("/models/reload", "").await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.error().starts_with("reload: "), "{}", r.error());
    ingest_one(c, "still-served", [0.1, 0.2, 0.3]).await;
    assert_eq!(c.get("/stats").await.body["model"]["version"], 1);
}

/// A service started on one ONNX file has no registry to rescan: 409.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_without_a_registry_is_409() {
    let models = ModelSet::single("seed".into(), &seed_onnx(2));
    let server = NativeServer::start_with(runtime(), models, service_config()).await;
    let r = server.client.post("/models/reload", "").await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.error().contains("--models-dir"), "{}", r.error());
}

/// A shard that traps after a swap is rebuilt with the model of its checkpoint (none here: the
/// initial v1) and replays its log, the swap in its place: events before it keep v1's scores,
/// events after it v2's, and the next events are scored by v2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_after_a_swap_replays_it_in_place() {
    let runtime = runtime_with(GuestLimits {
        // Loading a model fits in this instruction budget easily; the 300,000-row call below
        // does not, on any machine.
        call_fuel: Some(1_000_000_000),
        memory_bytes: 2 << 30,
        ..GuestLimits::default()
    });
    let dir = registry_with(&[1]);
    let mut config = service_config();
    config.shards = 1;
    config.max_events = 400_000;
    config.max_body_bytes = 64 << 20;
    config.shard.checkpoint_interval = Duration::from_secs(3600);
    let server = NativeServer::start_with(&runtime, models_in(&dir), config).await;
    let c = &server.client;
    let row = [0.7, 0.1, 0.5];
    let (v1, v2) = (score(1, row), score(2, row));

    ingest_one(c, "a", row).await;
    add_seed_version(dir.path(), 2);
    assert_eq!(c.post("/models/reload", "").await.body["swapped"], true);
    ingest_one(c, "b", row).await;

    let events: Vec<Value> = (0..300_000)
        .map(|i| json!({"user_id": format!("big-{}", i % 1000), "timestamp": now(), "features": row}))
        .collect();
    let r = c.post_json("/ingest", &json!({"events": events})).await;
    assert_eq!(r.status, 500, "the call runs past its budget: {}", r.body);
    assert_eq!(c.get("/stats").await.body["shard_restarts"], 1);

    ingest_one(c, "c", row).await;
    for (user, expected) in [("a", v1), ("b", v2), ("c", v2)] {
        let m = median(c, user).await;
        assert_eq!(m["count"], 1, "{user}: {m}");
        let got = m["median"].as_f64().unwrap();
        assert!(
            (got - expected).abs() < 1e-6,
            "{user}: expected {expected}, got {got}"
        );
    }
    let stats = c.get("/stats").await.body;
    assert_eq!(stats["events_by_model_version"], json!({"1": 1, "2": 2}));
}
