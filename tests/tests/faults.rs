//! Faults injected where they are hard to provoke from outside (fail-rs fail points, compiled
//! into the test build only): a shard thread that panics, a rebuild that fails (`/ready`), a
//! trap between a checkpoint and what follows it, a shard that fails its swap in a reload, a
//! batch job whose scoring fails, a full batch queue; a sync of the log that fails after later
//! calls were scored; and a reload that waits for queue room or loses its client.
//!
//! Fail points are process-wide: the tests here run one at a time, and each stops its service
//! (joining its shard threads) before the next configures a fail point.

use std::time::Duration;

use edgescore_engine::Model;
use edgescore_serve::{Durability, DurableConfig, ModelSet, ServiceConfig};
use edgescore_tests::contract::now;
use edgescore_tests::http::{Client, NativeServer, service_config};
use edgescore_tests::{add_seed_version, runtime, seed_onnx};
use serde_json::{Value, json};

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A fail point configured until dropped.
struct FailPoint(&'static str);

impl FailPoint {
    fn set(name: &'static str, actions: &str) -> FailPoint {
        fail::cfg(name, actions).unwrap();
        FailPoint(name)
    }
}

impl Drop for FailPoint {
    fn drop(&mut self) {
        fail::remove(self.0);
    }
}

fn event(user: &str, row: [f32; 3]) -> Value {
    json!({"user_id": user, "timestamp": now(), "features": row})
}

async fn ingest(c: &Client, events: Vec<Value>) -> u64 {
    let r = c.post_json("/ingest", &json!({ "events": events })).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["processed"].as_u64().unwrap()
}

async fn count(c: &Client, user: &str) -> u64 {
    c.get(&format!("/users/{user}/median")).await.body["count"]
        .as_u64()
        .unwrap()
}

/// A user's count, asked until the shard's rebuild pause is over: meanwhile the shard answers
/// 503 with `Retry-After`.
async fn count_once_rebuilt(c: &Client, user: &str) -> u64 {
    until("the shard is rebuilt", async || {
        let r = c.get(&format!("/users/{user}/median")).await;
        if r.status == 200 {
            return r.body["count"].as_u64();
        }
        assert_eq!(r.status, 503, "{}", r.body);
        assert!(r.retry_after.is_some(), "a 503 says when to retry");
        None
    })
    .await
}

/// `/ready` once it answers `status`.
async fn ready_when(c: &Client, status: u16) -> edgescore_tests::http::Answer {
    until("/ready changes", async || {
        let r = c.get("/ready").await;
        (r.status == status).then_some(r)
    })
    .await
}

/// Polls `attempt` until it gives a value (a minute at most: a test that waits longer failed).
async fn until<T>(what: &str, mut attempt: impl AsyncFnMut() -> Option<T>) -> T {
    let started = std::time::Instant::now();
    loop {
        if let Some(value) = attempt().await {
            return value;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "never: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A user on each shard.
fn one_per_shard(server: &NativeServer, prefix: &str) -> [String; 2] {
    let find = |shard| {
        (0..)
            .map(|i| format!("{prefix}-{i}"))
            .find(|u| server.service.shard_of(u) == shard)
            .unwrap()
    };
    [find(0), find(1)]
}

/// The median a user with one event of `row` has under seed model `version`, natively.
fn native_score(version: u32, row: [f32; 3]) -> f64 {
    let model = Model::load(&seed_onnx(version)).unwrap();
    f64::from(model.score(&row).unwrap()[0])
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-5 * b.abs().max(1.0)
}

/// The service config with its state in `dir` (synced before every answer), as `serve` runs
/// by default: a rebuild then replays from the shard's log on disk, not from memory.
fn durable_in(dir: &tempfile::TempDir, mut config: ServiceConfig) -> ServiceConfig {
    config.durable = Some(DurableConfig {
        dir: dir.path().to_path_buf(),
        durability: Durability::Fsync,
    });
    config
}

/// A panic in a shard's thread is caught: the requests it was handling fail (500, not
/// acknowledged), the shard rebuilds from its checkpoint and log — keeping every acknowledged
/// event — and serves again; `/stats` counts the panic. While its rebuild fails, `/ready` is 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_shard_is_rebuilt_and_ready_says_so_meanwhile() {
    let _serial = ONE_AT_A_TIME.lock().await;
    panicking_shard_is_rebuilt(service_config()).await;
}

/// The same with a data directory: the rebuild replays the shard's log from disk (its first
/// record is the model swapped in at start).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_durable_shard_is_rebuilt_from_its_log_on_disk() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    panicking_shard_is_rebuilt(durable_in(&dir, service_config())).await;
}

async fn panicking_shard_is_rebuilt(config: ServiceConfig) {
    let server = NativeServer::start(runtime(), config).await;
    let c = &server.client;
    let [a, b] = one_per_shard(&server, "p");
    assert_eq!(
        ingest(
            c,
            vec![event(&a, [0.1, 0.2, 0.3]), event(&b, [0.4, 0.5, 0.6])]
        )
        .await,
        2
    );
    assert_eq!(ingest(c, vec![event(&a, [0.2, 0.2, 0.3])]).await, 1);

    {
        let _panic = FailPoint::set("shard-handle", "1*panic");
        let _no_rebuild = FailPoint::set("shard-rebuild", "return");
        let r = c
            .post_json("/ingest", &json!({"events": [event(&a, [0.7, 0.8, 0.9])]}))
            .await;
        assert_eq!(r.status, 500, "{}", r.body);
        assert_eq!(r.body["not_recorded"], json!([0]), "{}", r.body);
        // The 500 goes out as the panic unwinds, before the shard is marked as rebuilding.
        let ready = ready_when(c, 503).await;
        assert_eq!(ready.body["status"], "unavailable");
        assert!(
            ready.body["reason"]
                .as_str()
                .unwrap()
                .contains("could not be rebuilt")
        );
    }
    // A request after the rebuild's pause (it backs off after failing) rebuilds the shard;
    // /ready follows.
    assert_eq!(
        count_once_rebuilt(c, &a).await,
        2,
        "the acknowledged events survived, the failed one is not there"
    );
    assert_eq!(c.get("/ready").await.status, 200);
    assert_eq!(count(c, &b).await, 1);
    assert_eq!(ingest(c, vec![event(&a, [0.7, 0.8, 0.9])]).await, 1);
    assert_eq!(count(c, &a).await, 3);
    let s = c.get("/stats").await.body;
    assert_eq!(s["shard_panics"], 1, "{s}");
    assert!(s["shard_restarts"].as_u64().unwrap() >= 2, "{s}");
    server.stop().await;
}

/// A checkpoint holds the log it covers: a trap right after a successful checkpoint (here in
/// the `stats` call that follows it) must not make the rebuild replay those events again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trap_after_a_checkpoint_counts_nothing_twice() {
    let _serial = ONE_AT_A_TIME.lock().await;
    trap_after_a_checkpoint(service_config()).await;
}

/// The same with a data directory: the rebuild replays the next log (empty), not the one the
/// checkpoint covers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trap_after_a_durable_checkpoint_counts_nothing_twice() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    trap_after_a_checkpoint(durable_in(&dir, service_config())).await;
}

async fn trap_after_a_checkpoint(mut config: ServiceConfig) {
    // Every busy moment is checkpoint time.
    config.shard.checkpoint_interval = Duration::ZERO;
    let server = NativeServer::start(runtime(), config).await;
    let c = &server.client;
    let events: Vec<Value> = (0..5)
        .map(|i| event("twice", [0.1 * i as f32, 0.2, 0.3]))
        .collect();
    {
        let _trap = FailPoint::set("shard-stats-after-checkpoint", "1*return");
        assert_eq!(ingest(c, events).await, 5);
        // The checkpoint after that ingest, then the injected trap: the shard rebuilds on the
        // next request from the checkpoint (which holds the 5 events) and what was logged after.
        assert_eq!(count(c, "twice").await, 5);
    }
    let s = c.get("/stats").await.body;
    assert!(
        s["shard_restarts"].as_u64().unwrap() >= 1,
        "the trap was hit: {s}"
    );
    assert_eq!(s["events_in_windows"], 5, "{s}");
    server.stop().await;
}

/// A checkpoint whose next log cannot be started: the current log goes on, and a rebuild
/// replays it from where the checkpoint was taken — neither from its start (counting the
/// checkpoint's events twice) nor from the next log (losing what followed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_without_a_next_log_replays_the_current_one_from_its_mark() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = durable_in(&dir, service_config());
    config.shard.checkpoint_interval = Duration::ZERO;
    let server = NativeServer::start(runtime(), config).await;
    let c = &server.client;
    {
        let _no_rotation = FailPoint::set("log-rotate", "return");
        // Checkpointed after this call; the next log cannot be started.
        assert_eq!(ingest(c, events_of("marked", 40, 0.1)).await, 40);
        // Logged after the checkpoint, in the same log (too few for another checkpoint: under
        // an eighth of the state); the panic then fails the next call.
        assert_eq!(ingest(c, events_of("marked", 3, 0.5)).await, 3);
        fail_a_call_with_a_panic(c, events_of("marked", 1, 0.9)).await;
    }
    every_acknowledged_event_is_back(c, "marked", 43).await;
    server.stop().await;
}

/// A durable shard keeps no copy of its checkpoint once the snapshot writer is done with it: a
/// rebuild reads the snapshot file back. When that file could not be written, or is found
/// corrupt, it falls back to the snapshot before it (here generation 0's empty state) and
/// replays the longer log — every acknowledged event comes back, none twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_falls_back_past_a_snapshot_that_could_not_be_written() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let _no_snapshot = FailPoint::set("snapshot-write", "return");
    rebuild_from_disk(|_| {}, "snapshot_failures").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_falls_back_past_a_written_snapshot_found_corrupt() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let corrupt = |dir: &std::path::Path| {
        let snapshot = dir.join("shards").join("0").join("snapshot-000000000001");
        assert!(
            snapshot.exists(),
            "the checkpoint was written as generation 1"
        );
        std::fs::write(snapshot, b"garbage").unwrap();
    };
    rebuild_from_disk(corrupt, "snapshots_written").await;
}

/// 40 events checkpointed (its snapshot then written or not, as `counted` says), `damage` done
/// to the files, 3 events logged after, then a failed call: the rebuild must find all 43.
async fn rebuild_from_disk(damage: impl FnOnce(&std::path::Path), counted: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = durable_in(&dir, service_config());
    config.shard.checkpoint_interval = Duration::ZERO;
    config.shards = 1;
    let server = NativeServer::start(runtime(), config).await;
    let c = &server.client;
    assert_eq!(ingest(c, events_of("on-disk", 40, 0.1)).await, 40);
    // The writer reports once it has dropped the checkpoint: no copy is left in memory.
    until("the snapshot writer is done", async || {
        let s = c.get("/stats").await.body;
        (s["storage"][counted].as_u64() == Some(1)).then_some(())
    })
    .await;
    damage(dir.path());
    // Too few for another checkpoint (under an eighth of the state).
    assert_eq!(ingest(c, events_of("on-disk", 3, 0.5)).await, 3);
    fail_a_call_with_a_panic(c, events_of("on-disk", 1, 0.9)).await;
    every_acknowledged_event_is_back(c, "on-disk", 43).await;
    server.stop().await;
}

/// `n` events of `user`, the first feature rising from `x` by 0.01.
fn events_of(user: &str, n: usize, x: f32) -> Vec<Value> {
    (0..n)
        .map(|i| event(user, [x + 0.01 * i as f32, 0.2, 0.3]))
        .collect()
}

/// Ingests `events` while the shard's handling panics: the call fails, nothing acknowledged.
async fn fail_a_call_with_a_panic(c: &Client, events: Vec<Value>) {
    let _panic = FailPoint::set("shard-handle", "1*panic");
    let r = c.post_json("/ingest", &json!({ "events": events })).await;
    assert_eq!(r.status, 500, "{}", r.body);
}

/// After the rebuild that one panic caused, `user` has its `n` acknowledged events, once each.
async fn every_acknowledged_event_is_back(c: &Client, user: &str, n: u64) {
    assert_eq!(count_once_rebuilt(c, user).await, n);
    let s = c.get("/stats").await.body;
    assert_eq!(s["events_in_windows"], n, "{s}");
    assert_eq!(s["shard_panics"], 1, "{s}");
}

fn registry_with(versions: &[u32]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for &v in versions {
        add_seed_version(dir.path(), v);
    }
    dir
}

async fn start_on(dir: &tempfile::TempDir, config: ServiceConfig) -> NativeServer {
    let models = ModelSet::from_dir(Some(dir.path().to_path_buf()), None, None).unwrap();
    NativeServer::start_with(runtime(), models, config).await
}

/// Every shard scores with `version`: a fresh user on each gets its native score.
async fn every_shard_scores_with(server: &NativeServer, version: u32, prefix: &str) {
    let c = &server.client;
    let row = [0.3, 0.6, 0.9];
    for user in one_per_shard(server, prefix) {
        assert_eq!(ingest(c, vec![event(&user, row)]).await, 1);
        let median = c.get(&format!("/users/{user}/median")).await.body["median"]
            .as_f64()
            .unwrap();
        assert!(
            close(median, native_score(version, row)),
            "{user}: {median}"
        );
    }
}

/// A shard that fails its swap makes the reload fail and roll back: the catalog stays on the
/// previous version and every shard scores with it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_swap_rolls_every_shard_back() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let dir = registry_with(&[1]);
    let server = start_on(&dir, service_config()).await;
    let c = &server.client;
    add_seed_version(dir.path(), 2);
    {
        let _fail = FailPoint::set("shard-swap", "1*return");
        let r = c.post("/models/reload", "").await;
        assert_eq!(r.status, 500, "{}", r.body);
        assert!(
            r.error().contains("swapping the new model in"),
            "{}",
            r.body
        );
    }
    let models = c.get("/models").await.body;
    let active: Vec<&Value> = models["models"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["active"] == true)
        .map(|m| &m["version"])
        .collect();
    assert_eq!(active, [&json!(1)], "{models}");
    assert_eq!(c.get("/stats").await.body["model"]["version"], 1);
    every_shard_scores_with(&server, 1, "rolled-back").await;
    // And a reload that works switches them all.
    assert_eq!(c.post("/models/reload", "").await.status, 200);
    every_shard_scores_with(&server, 2, "reloaded").await;
    server.stop().await;
}

/// A reload waiting for room in a full shard queue holds no lock: other requests are served
/// meanwhile; the reload completes once there is room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_waiting_for_queue_room_stalls_nothing() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let dir = registry_with(&[1]);
    let mut config = service_config();
    config.shard.queue_depth = 1;
    let server = start_on(&dir, config).await;
    add_seed_version(dir.path(), 2);
    // Shard 0's only queue slot, taken just as the reload comes to queue its swaps (the new
    // model is loaded in every shard by then): the reload must wait for room.
    type Slot = Option<tokio::sync::mpsc::OwnedPermit<edgescore_serve::shard::Command>>;
    let slot: std::sync::Arc<std::sync::Mutex<Slot>> = Default::default();
    let (queue, taken) = (server.service.shards()[0].queue.clone(), slot.clone());
    fail::cfg_callback("reload-swap", move || {
        let mut taken = taken.lock().unwrap();
        if taken.is_none() {
            *taken = queue.clone().try_reserve_owned().ok();
        }
    })
    .unwrap();
    let _remove = FailPoint("reload-swap");
    let service = server.service.clone();
    let reload = tokio::spawn(async move { service.reload().await });
    eventually("the reload reaches its swaps", || {
        assert!(!reload.is_finished(), "the reload ended early");
        slot.lock().unwrap().is_some()
    })
    .await;
    let c = &server.client;
    assert_eq!(within(c.get("/models")).await.status, 200);
    let [_, on_shard_1] = one_per_shard(&server, "meanwhile");
    let body = json!({"events": [event(&on_shard_1, [0.1, 0.1, 0.1])]});
    let r = within(c.post_json("/ingest", &body)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        !reload.is_finished(),
        "the reload was waiting for room all along"
    );
    slot.lock().unwrap().take();
    let outcome = reload.await.unwrap().unwrap();
    assert!(outcome.swapped);
    every_shard_scores_with(&server, 2, "after").await;
    server.stop().await;
}

/// Waits until `done` holds (a minute at most: a test that waits longer has failed).
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(60), "never: {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// `what`, answered within 10 s (it hangs if a lock is held across the wait).
async fn within<T>(what: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), what)
        .await
        .expect("answered while the reload waits")
}

/// A reload whose client goes away still completes: no shard is left on another version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_whose_client_leaves_still_completes() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let dir = registry_with(&[1]);
    let mut config = service_config();
    config.shard.queue_depth = 1;
    let server = start_on(&dir, config).await;
    add_seed_version(dir.path(), 2);
    // Shard 1 busy: the reload cannot finish before its client gives up.
    let slot = server.service.shards()[1].queue.try_reserve().unwrap();
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let gone = impatient
        .post(format!("{}/models/reload", server.client.base))
        .send()
        .await;
    assert!(gone.is_err(), "the client timed out");
    drop(slot);
    let c = &server.client;
    let started = std::time::Instant::now();
    while c.get("/stats").await.body["model"]["version"] != 2 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the reload never completed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    every_shard_scores_with(&server, 2, "left").await;
    server.stop().await;
}

/// A batch job whose scoring fails ends `failed`, with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_batch_job_says_so() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let server = NativeServer::start(runtime(), service_config()).await;
    let c = &server.client;
    let _fail = FailPoint::set("batch-score", "return");
    let r = c
        .post_json("/batch", &json!({"instances": [[0.1, 0.2, 0.3]]}))
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.body["job_id"].as_str().unwrap().to_string();
    let job = edgescore_tests::contract::wait_for_job(c, &id).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert!(
        job["error"]
            .as_str()
            .unwrap()
            .starts_with("scoring failed:"),
        "{job}"
    );
    assert!(job.get("predictions").is_none(), "{job}");
    server.stop().await;
}

/// A full job queue answers 429 (nothing queued); finished jobs are forgotten after the
/// retention time. The one worker is parked inside the first job, so the second waits in the one
/// queue slot and the third finds the queue full, however fast the machine scores.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_queue_is_bounded_and_jobs_expire() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let mut config = service_config();
    config.jobs.workers = 1;
    config.jobs.queue = 1;
    config.jobs.chunk = 8;
    config.jobs.retention = Duration::from_millis(300);
    let server = NativeServer::start(runtime(), config).await;
    let c = &server.client;
    let rows: Vec<[f32; 3]> = (0..1_000).map(|i| [i as f32 / 1e3, 0.5, 0.5]).collect();
    let body = json!({"instances": rows});
    let submit = async || c.post_json("/batch", &body).await;

    let (release, parked, _point) = park_at("batch-score");
    let first = submit().await;
    assert_eq!(first.status, 202, "{}", first.body);
    eventually("the worker takes the first job", || {
        parked.load(std::sync::atomic::Ordering::SeqCst)
    })
    .await;
    let second = submit().await;
    assert_eq!(second.status, 202, "{}", second.body);
    let refused = submit().await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(refused.retry_after.as_deref(), Some("1"));
    assert!(
        refused.error().starts_with("batch: the job queue is full"),
        "{}",
        refused.body
    );
    release.send(()).unwrap();

    let accepted = [&first, &second].map(|r| r.body["job_id"].as_str().unwrap().to_string());
    for id in &accepted {
        let job = edgescore_tests::contract::wait_for_job(c, id).await;
        assert_eq!(job["status"], "done", "{job}");
        assert_eq!(job["progress"]["done"], 1_000);
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    for id in &accepted {
        assert_eq!(
            c.get(&format!("/batch/{id}")).await.status,
            404,
            "{id} expired"
        );
    }
    server.stop().await;
}

/// Two requests queued on one shard are scored in one component call; an event the model scores
/// as infinite is rejected alone (`non_finite_score`, at its position in its own request), and
/// nothing else of either request is lost. The shard is held (a fail point blocks its thread)
/// until both requests wait in its queue, so the merge is certain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_finite_score_in_a_merged_call_rejects_that_event_alone() {
    let _serial = ONE_AT_A_TIME.lock().await;
    // x * 1e30: an input of 1e9 scores as infinity.
    let scale = edgescore_tests::read("tests/fixtures/scale.onnx");
    let models = ModelSet::single("scale".into(), &scale);
    let mut config = service_config();
    config.shards = 1;
    let server = NativeServer::start_with(runtime(), models, config).await;
    let c = server.client.clone();
    let one = |user: &str, x: f64| json!({"user_id": user, "timestamp": now(), "features": [x]});
    let calls_before = c.get("/stats").await.body["model_calls"].as_u64().unwrap();

    // A median request parks the shard's thread in the fail point ...
    let (release, parked, _point) = park_the_shard();
    let waiting = tokio::spawn({
        let c = c.clone();
        async move { c.get("/users/nobody/median").await }
    });
    eventually("the shard parks", || {
        parked.load(std::sync::atomic::Ordering::SeqCst)
    })
    .await;
    // ... while two ingests queue up behind it.
    let first = tokio::spawn({
        let (c, body) = (
            c.clone(),
            json!({"events": [one("a", 1e-30), one("b", 1e9), one("a", 2e-30)]}),
        );
        async move { c.post_json("/ingest", &body).await }
    });
    let second = tokio::spawn({
        let (c, body) = (
            c.clone(),
            json!({"events": [one("c", 1e9), one("d", 3e-30)]}),
        );
        async move { c.post_json("/ingest", &body).await }
    });
    let shard = &server.service.shards()[0];
    eventually("both requests queue", || shard.queued() >= 2).await;
    release.send(()).unwrap();
    assert_eq!(waiting.await.unwrap().status, 200);
    let (first, second) = (first.await.unwrap(), second.await.unwrap());
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!(first.body["processed"], 2);
    assert_eq!(first.body["rejected"][0]["index"], 1);
    assert_eq!(first.body["rejected"][0]["error"], "non_finite_score");
    assert_eq!(second.body["processed"], 1);
    assert_eq!(second.body["rejected"][0]["index"], 0);
    assert_eq!(second.body["rejected"][0]["error"], "non_finite_score");
    let s = c.get("/stats").await.body;
    assert_eq!(
        s["model_calls"].as_u64().unwrap() - calls_before,
        1,
        "both requests in one component call: {s}"
    );
    assert_eq!(s["rejections"]["non_finite_score"], 2);
    for (user, n) in [("a", 2), ("b", 0), ("c", 0), ("d", 1)] {
        assert_eq!(count(&c, user).await, n, "{user}");
    }
    // /predict refuses an instance scored as infinite, naming it.
    let r = c
        .post_json("/predict", &json!({"instances": [[1e-30], [1e9]]}))
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.error()
            .starts_with("instances[1]: the model scored this instance as inf"),
        "{}",
        r.body
    );
    server.stop().await;
}

/// `--durability fsync` syncs the log off the shard's thread, which scores on meanwhile. A
/// sync that fails after the shard scored later calls fails the calls it covered and every later
/// one (503, nothing acknowledged or counted); the shard cuts its log back to the last synced
/// record, rebuilds from it and serves again; a restart finds exactly what was acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_that_fails_after_later_calls_were_scored_acknowledges_none_of_them() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = durable_in(&dir, service_config());
    config.shards = 1;
    let server = NativeServer::start(runtime(), config.clone()).await;
    let c = server.client.clone();
    assert_eq!(ingest(&c, events_of("kept", 3, 0.1)).await, 3);

    let logged = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = logged.clone();
    fail::cfg_callback("shard-logged", move || {
        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    })
    .unwrap();
    let _logged_point = FailPoint("shard-logged");
    let (release, parked, _pause) = park_at("log-sync-pause");
    let post = |user: &'static str| {
        let c = c.clone();
        tokio::spawn(async move {
            c.post_json("/ingest", &json!({ "events": events_of(user, 2, 0.5) }))
                .await
        })
    };
    let first = post("first");
    until("the first call's sync is parked", async || {
        parked
            .load(std::sync::atomic::Ordering::SeqCst)
            .then_some(())
    })
    .await;
    // One at a time, so that each is a call of its own, scored after the first one's.
    let mut later = Vec::new();
    for (user, calls) in [("second", 2), ("third", 3)] {
        later.push(post(user));
        until("a later call is scored and logged", async || {
            (logged.load(std::sync::atomic::Ordering::SeqCst) >= calls).then_some(())
        })
        .await;
    }
    // One sync fails: the calls after it must fail too, without a sync of their own.
    let failing = FailPoint::set("log-sync", "1*return");
    drop(release);
    for call in std::iter::once(first).chain(later) {
        let r = call.await.unwrap();
        assert_eq!(r.status, 503, "{}", r.body);
        assert!(r.retry_after.is_some(), "{}", r.body);
        assert!(r.error().contains("log-sync"), "{}", r.body);
    }
    drop(failing);

    assert_eq!(ingest(&c, events_of("after", 2, 0.7)).await, 2);
    let expect = [
        ("kept", 3),
        ("first", 0),
        ("second", 0),
        ("third", 0),
        ("after", 2),
    ];
    for (user, n) in expect {
        assert_eq!(count(&c, user).await, n, "{user}");
    }
    let stats = c.get("/stats").await.body;
    assert_eq!(stats["events_processed"], 5, "{stats}");
    assert_eq!(stats["events_in_windows"], 5, "{stats}");
    assert_eq!(stats["shard_restarts"], 1, "{stats}");
    server.stop().await;

    let server = NativeServer::start(runtime(), config).await;
    for (user, n) in expect {
        assert_eq!(
            count(&server.client, user).await,
            n,
            "{user}, after a restart"
        );
    }
    let stats = server.client.get("/stats").await.body;
    assert_eq!(stats["events_processed"], 5, "{stats}");
    server.stop().await;
}

/// Parks the (first) shard's thread in the `shard-handle` fail point, the first time a shard
/// handles something, until the sender is used or dropped; the flag says it is parked.
fn park_the_shard() -> (
    std::sync::mpsc::Sender<()>,
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    FailPoint,
) {
    park_at("shard-handle")
}

/// The first thread to reach fail point `name` waits there until `release` is sent (or
/// dropped); `parked` tells when it is there.
fn park_at(
    name: &'static str,
) -> (
    std::sync::mpsc::Sender<()>,
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    FailPoint,
) {
    let (release, held) = std::sync::mpsc::channel::<()>();
    let held = std::sync::Mutex::new(Some(held));
    let parked = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = parked.clone();
    fail::cfg_callback(name, move || {
        if let Some(held) = held.lock().unwrap().take() {
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
            let _ = held.recv();
        }
    })
    .unwrap();
    (release, parked, FailPoint(name))
}

/// A request (but an ingest) not answered within the request timeout gets 503 + Retry-After.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_takes_too_long_is_answered_503() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let mut config = service_config();
    config.shards = 1;
    config.limits.request = Duration::from_millis(300);
    let server = NativeServer::start(runtime(), config).await;
    let (release, _, _point) = park_the_shard();
    let r = server.client.get("/users/slow/median").await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.retry_after.as_deref(), Some("1"));
    assert!(
        r.error().starts_with("request: not answered within 0.3 s"),
        "{}",
        r.body
    );
    drop(release);
    assert_eq!(count(&server.client, "slow").await, 0);
    server.stop().await;
}

/// With every place for a request in flight taken, the next request is refused at once (503 +
/// Retry-After), the probes still answer, and requests pass again once places free up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_in_flight_limit_are_refused_at_once() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let mut config = service_config();
    config.shards = 1;
    config.limits.max_in_flight = 2;
    let server = NativeServer::start(runtime(), config).await;
    let c = server.client.clone();
    let (release, parked, _point) = park_the_shard();
    let median = |i: usize| {
        let c = c.clone();
        tokio::spawn(async move { c.get(&format!("/users/w{i}/median")).await })
    };
    // One after the other: sent together, the shard could take both in one drain.
    let mut waiting = vec![median(0)];
    eventually("the shard is parked", || {
        parked.load(std::sync::atomic::Ordering::SeqCst)
    })
    .await;
    waiting.push(median(1));
    let shard = &server.service.shards()[0];
    eventually("two requests in flight, one queued", || {
        shard.queued() >= 1 && server.service.requests_in_flight() >= 2
    })
    .await;
    let r = within(c.get("/stats")).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.retry_after.as_deref(), Some("1"));
    assert!(
        r.error().starts_with("overloaded: 2 requests"),
        "{}",
        r.body
    );
    assert_eq!(within(c.get("/health")).await.status, 200);
    release.send(()).unwrap();
    for w in waiting {
        assert_eq!(w.await.unwrap().status, 200);
    }
    assert_eq!(c.get("/stats").await.status, 200);
    server.stop().await;
}

/// A flood of distinct users into a shard with little memory (64 MiB): the shard takes users
/// until its capacity, then refuses new ones one by one (`capacity`), keeps taking the events of
/// the users it holds, never fails a request or traps, its memory stays flat, `/ready` stays
/// honest; and a rebuild at capacity (after a panic) restores the state in place, in chunks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_new_users_is_refused_at_capacity_and_the_shard_keeps_serving() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let runtime = edgescore_tests::runtime_with(edgescore_runtime::GuestLimits {
        memory_bytes: 64 << 20,
        ..edgescore_runtime::GuestLimits::default()
    });
    let mut config = service_config();
    config.shards = 1;
    let server = NativeServer::start(&runtime, config).await;
    let c = &server.client;
    assert_eq!(ingest(c, vec![event("held", [0.1, 0.2, 0.3])]).await, 1);
    let (mut refused, mut batches, mut memory_when_full) = (0, 0, None);
    while batches < 60 {
        let events: Vec<Value> = (0..5000)
            .map(|i| event(&format!("flood-{batches}-{i}"), [0.5, 0.5, 0.5]))
            .collect();
        let r = c.post_json("/ingest", &json!({ "events": events })).await;
        assert_eq!(r.status, 200, "batch {batches}: {}", r.body);
        let capacity = r.body["rejected"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["error"] == "capacity")
            .count();
        refused += capacity;
        batches += 1;
        let s = c.get("/stats").await.body;
        let memory = s["shard_detail"][0]["guest_memory_bytes"].as_u64().unwrap();
        assert!(memory <= 64 << 20, "{memory}");
        if capacity == 5000 && memory_when_full.is_none() {
            memory_when_full = Some(memory);
        }
    }
    assert!(refused > 0, "the flood reached capacity");
    let full = memory_when_full.expect("whole batches refused at capacity");
    let s = c.get("/stats").await.body;
    let detail = &s["shard_detail"][0];
    // New users stop where one more would pass nine tenths of the budget.
    assert!(detail["fill_permille"].as_u64().unwrap() >= 890, "{detail}");
    let end = detail["guest_memory_bytes"].as_u64().unwrap();
    assert!(
        end <= full + (2 << 20),
        "memory grew from {full} to {end} while refusing"
    );
    assert_eq!(s["failed_requests"], 0, "{s}");
    assert_eq!(s["shard_restarts"], 0, "{s}");
    assert_eq!(
        s["rejections"]["capacity"].as_u64().unwrap() as usize,
        refused
    );
    assert_eq!(c.get("/ready").await.status, 200);
    // The users it holds are still served.
    assert_eq!(ingest(c, vec![event("held", [0.4, 0.5, 0.6])]).await, 1);
    assert_eq!(count(c, "held").await, 2);
    let users = s["users_tracked"].as_u64().unwrap();

    // A rebuild at capacity restores every user in place.
    {
        let _panic = FailPoint::set("shard-handle", "1*panic");
        let r = c.get("/users/held/median").await;
        assert_eq!(r.status, 503, "a read the shard dropped: {}", r.body);
        assert!(r.retry_after.is_some());
    }
    eventually_async(c, |s| s["shard_panics"] == 1).await;
    assert_eq!(count_once_rebuilt(c, "held").await, 2);
    let s = c.get("/stats").await.body;
    assert_eq!(s["users_tracked"].as_u64(), Some(users), "{s}");
    assert_eq!(c.get("/ready").await.status, 200);
    server.stop().await;
}

/// Waits until `/stats` satisfies `done`.
async fn eventually_async(c: &Client, done: impl Fn(&Value) -> bool) {
    until("/stats changes", async || {
        let s = c.get("/stats").await.body;
        done(&s).then_some(())
    })
    .await
}
