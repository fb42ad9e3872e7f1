//! The Spin app on Redis: two `serve-app` replicas over one real redis-server are one service.
//! (Killing a replica process, and Redis under load, are in `host/cli/tests/redis.rs`.)

use std::collections::{BTreeMap, BTreeSet};

use edgescore_app_harness::StoreBackend;
use edgescore_app_harness::runtime_config::RuntimeConfig;
use edgescore_contract::stored_window::StoredWindow;
use edgescore_test_redis::RedisServer;
use edgescore_tests::contract;
use edgescore_tests::http::{AppServer, Client, app_config};
use serde_json::{Value, json};

/// Two replicas of the app (in this process, sharing nothing but the Redis) and the Redis.
struct Replicas {
    redis: RedisServer,
    a: AppServer,
    b: AppServer,
}

impl Replicas {
    async fn start(reuse: usize) -> Replicas {
        Replicas::start_env(reuse, 64, &[]).await
    }

    async fn start_env(reuse: usize, max_instances: usize, env: &[(&str, &str)]) -> Replicas {
        let redis = RedisServer::start();
        let replica = || {
            let mut config = app_config(reuse, max_instances);
            config.backend = StoreBackend::Redis(redis.url());
            config.env = env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            AppServer::start_config(config)
        };
        let (a, b) = (replica().await, replica().await);
        Replicas { redis, a, b }
    }

    /// Writes through replica a, reads through replica b.
    fn split(&self) -> Client {
        Client::split(&self.a.client.base, &self.b.client.base)
    }

    fn user_keys(&self) -> Vec<String> {
        let mut c = self.redis.connection();
        let keys: Vec<String> = redis::cmd("KEYS").arg("user*").query(&mut c).unwrap();
        keys
    }
}

/// The shared contract suite, each function on a new pair of replicas over a new Redis,
/// writing through one and reading through the other.
macro_rules! across_replicas {
    ($($suite:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $suite() {
                let replicas = Replicas::start(128).await;
                contract::$suite(&replicas.split()).await;
            }
        )*
    };
}

across_replicas!(
    seed_contract,
    health_and_ready,
    refuses_bad_bodies,
    refuses_bodies_that_are_not_json,
    rejects_bad_events_alone,
    a_fast_clock_expires_nobody,
    windows_follow_the_reference,
    concurrent_clients_lose_nothing,
    predict_scores_without_touching_windows,
    models_lists_the_registry,
);

/// Twelve clients on three users, every request in a fresh instance, turn by turn on either
/// replica: compare-and-swap races across processes' worth of instances, and nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_users_across_two_replicas_lose_nothing() {
    let replicas = Replicas::start(1).await;
    contract::hot_users_lose_nothing(&[replicas.a.client.clone(), replicas.b.client.clone()]).await;
}

/// Spin's Redis store takes keys of at most 256 bytes: an id of 256 bytes is kept under its
/// hash, the id itself in the value; one of 251 bytes keeps its plain key (exactly 256).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_fits_in_256_bytes() {
    let replicas = Replicas::start(128).await;
    let c = replicas.split();
    let longest = "ü".repeat(128);
    let plain = "p".repeat(251);
    for (user, features) in [(&longest, [0.1, 0.2, 0.3]), (&plain, [0.3, 0.2, 0.1])] {
        let batch = json!({"events": [{"user_id": user, "timestamp": contract::now(), "features": features}]});
        let answer = c.post_json("/ingest", &batch).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    for user in [&longest, &plain] {
        let escaped: String = user.bytes().map(|b| format!("%{b:02X}")).collect();
        let m = c.get(&format!("/users/{escaped}/median")).await;
        assert_eq!(m.status, 200, "{}", m.body);
        assert_eq!(m.body["user_id"].as_str(), Some(user.as_str()));
        assert_eq!(m.body["count"], 1);
    }
    let mut conn = replicas.redis.connection();
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut conn).unwrap();
    assert!(keys.iter().all(|k| k.len() <= 256), "{keys:?}");
    assert!(keys.contains(&format!("user/{plain}")));
    let hashed: Vec<&String> = keys.iter().filter(|k| k.starts_with("userh/")).collect();
    assert_eq!(hashed.len(), 1, "{keys:?}");
    let value: Vec<u8> = redis::cmd("GET").arg(hashed[0]).query(&mut conn).unwrap();
    assert_eq!(
        u16::from_le_bytes([value[0], value[1]]) as usize,
        longest.len()
    );
    assert_eq!(&value[2..2 + longest.len()], longest.as_bytes());
}

/// What one ingest costs in Redis commands, the seed workload's shape (10 events of 10 users
/// already known): one MGET of the watermark and the windows, a swap per user, the counters, the
/// watermark's swap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingest_costs_a_round_trip_per_user_and_a_few() {
    let replicas = Replicas::start(128).await;
    let c = &replicas.a.client;
    let batch = |r: u32| {
        let events: Vec<Value> = (0..10)
            .map(|u| json!({"user_id": format!("user-{u}"), "timestamp": contract::now() + f64::from(r) * 1e-3, "features": [0.1, 0.2, 0.3]}))
            .collect();
        json!({"events": events})
    };
    assert_eq!(c.post_json("/ingest", &batch(0)).await.status, 200);
    let before = replicas.redis.command_calls();
    const REQUESTS: u32 = 20;
    for r in 1..=REQUESTS {
        let answer = c.post_json("/ingest", &batch(r)).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    let after = replicas.redis.command_calls();
    let delta =
        |name: &str| after.get(name).copied().unwrap_or(0) - before.get(name).copied().unwrap_or(0);
    // What the backend sends; Redis also counts the GET and SET its swap script runs inside.
    const SENT: [&str; 6] = ["mget", "mset", "del", "incrby", "evalsha", "scan"];
    const INSIDE_THE_SCRIPT_OR_OURS: [&str; 5] = ["get", "set", "info", "ping", "script|load"];
    for name in after.keys() {
        assert!(
            SENT.contains(&name.as_str()) || INSIDE_THE_SCRIPT_OR_OURS.contains(&name.as_str()),
            "a command not accounted for: {name}"
        );
    }
    let calls: u64 = SENT.iter().map(|name| delta(name)).sum();
    let per_request = calls as f64 / f64::from(REQUESTS);
    eprintln!("Redis commands per ingest of 10 events, 10 users: {per_request:.1} ({after:?})");
    // 1 MGET + 10 swaps + 4 INCRBY + 1 watermark swap = 16.
    assert!(per_request <= 16.0, "{per_request} commands per request");
    // The watermark and the windows read in one go.
    assert_eq!(delta("mget"), u64::from(REQUESTS));
    // A swap per user, and the watermark's (it rises with every request here).
    assert_eq!(delta("evalsha"), 11 * u64::from(REQUESTS));
}

/// Users who stop coming leave the store: the writes sweep it a page at a time, and the
/// counters follow the keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_users_are_swept_out_of_the_store() {
    // One instance serves every request (its sweep comes after 500 windows written).
    let replicas = Replicas::start_env(10_000, 1, &[("EDGESCORE_WINDOW_SECONDS", "5")]).await;
    let c = &replicas.a.client;
    let t0 = contract::now() - 50.0;
    let idle: Vec<Value> = (0..40)
        .map(|u| json!({"user_id": format!("idle-{u}"), "timestamp": t0, "features": [0.1, 0.2, 0.3]}))
        .collect();
    assert_eq!(
        c.post_json("/ingest", &json!({"events": idle}))
            .await
            .status,
        200
    );
    for r in 0..60 {
        let events: Vec<Value> = (0..10)
            .map(|u| json!({"user_id": format!("active-{r}-{u}"), "timestamp": t0 + 40.0 + f64::from(r) * 0.01, "features": [0.3, 0.2, 0.1]}))
            .collect();
        let answer = c.post_json("/ingest", &json!({"events": events})).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    let keys = replicas.user_keys();
    assert!(
        !keys.iter().any(|k| k.starts_with("user/idle-")),
        "idle users still stored: {keys:?}"
    );
    let s = replicas.b.client.get("/stats").await.body;
    assert_eq!(s["users_tracked"].as_u64(), Some(keys.len() as u64), "{s}");
    let mut conn = replicas.redis.connection();
    let mut events = 0;
    for key in &keys {
        let value: Vec<u8> = redis::cmd("GET").arg(key).query(&mut conn).unwrap();
        events += StoredWindow::decode(&value).unwrap().len();
    }
    assert_eq!(s["events_in_windows"].as_u64(), Some(events as u64), "{s}");
}

/// Redis gone: 503 with Retry-After, nothing half written; back: the replicas serve again by
/// themselves, and what was acknowledged before is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_is_503_then_the_replicas_recover_by_themselves() {
    let mut replicas = Replicas::start(128).await;
    let c = replicas.split();
    let event = |user: &str| json!({"events": [{"user_id": user, "timestamp": contract::now(), "features": [0.1, 0.2, 0.3]}]});
    assert_eq!(c.post_json("/ingest", &event("before")).await.status, 200);
    replicas.redis.kill();
    let down = c.post_json("/ingest", &event("during")).await;
    assert_eq!(down.status, 503, "{}", down.body);
    assert_eq!(down.retry_after.as_deref(), Some("1"));
    assert!(down.error().contains("redis"), "{}", down.body);
    let read = c.get("/users/before/median").await;
    assert_eq!(read.status, 503, "{}", read.body);
    replicas.redis.restart();
    let mut answer = c.post_json("/ingest", &event("after")).await;
    for _ in 0..50 {
        if answer.status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        answer = c.post_json("/ingest", &event("after")).await;
    }
    assert_eq!(answer.status, 200, "{}", answer.body);
    for (user, count) in [("before", 1), ("during", 0), ("after", 1)] {
        let m = c.get(&format!("/users/{user}/median")).await;
        assert_eq!(m.body["count"], count, "{user}: {}", m.body);
    }
}

/// What the store holds as the app reads it: an emptied window or a zeroed counter counts as
/// absent (taking back a new user's events leaves those).
fn store_contents(redis: &RedisServer) -> BTreeMap<String, Vec<u8>> {
    let mut c = redis.connection();
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut c).unwrap();
    keys.into_iter()
        .filter_map(|key| {
            let value: Vec<u8> = redis::cmd("GET").arg(&key).query(&mut c).unwrap();
            let absent = value.is_empty() || (key.starts_with("count/") && value == b"0");
            (!absent).then(|| {
                let value = if key.starts_with("user/") {
                    window_events(&value)
                } else {
                    value
                };
                (key, value)
            })
        })
        .collect()
}

/// A stored window's events as bytes: what a window holds, without the ids of the writes it
/// went through (a take-back is a write of its own).
fn window_events(value: &[u8]) -> Vec<u8> {
    let window = StoredWindow::decode(value).expect("a stored window");
    window
        .events()
        .iter()
        .flat_map(|(t, s)| [t.to_le_bytes().to_vec(), s.to_le_bytes().to_vec()])
        .flatten()
        .collect()
}

/// Redis' ACL lets the app write only the keys matching `patterns` (reading every key), or
/// every key again with `["*"]`: a store that refuses one write while the others go through.
fn only_writable(redis: &RedisServer, patterns: &[&str]) {
    let mut acl = redis::cmd("ACL");
    acl.arg(&["SETUSER", "default", "resetkeys", "%R~*"]);
    for pattern in patterns {
        acl.arg(format!("%RW~{pattern}"));
    }
    acl.query::<()>(&mut redis.connection()).unwrap();
}

/// A write refused in the middle of a request (the ones before it went through) is taken back:
/// 503 with `Retry-After`, the store as it was before the request, and the same request
/// recorded whole once the store takes it. Refused in turn: the window of the request's second
/// user, a counter after the windows, the watermark after the counters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_refused_mid_request_is_taken_back_whole() {
    let replicas = Replicas::start(128).await;
    let c = replicas.split();
    let t0 = contract::now() - 400.0;
    let batch = |users: &[&str], t: f64| {
        let events: Vec<Value> = users
            .iter()
            .map(|u| json!({"user_id": u, "timestamp": t, "features": [0.1, 0.2, 0.3]}))
            .collect();
        json!({ "events": events })
    };
    // Taking back must leave the event a-1 had before.
    assert_eq!(
        c.post_json("/ingest", &batch(&["a-1"], t0)).await.status,
        200
    );
    let cases: [(&str, &[&str]); 3] = [
        (
            "z-1's window",
            &["user/a*", "count/*", "watermark", "sweep/*"],
        ),
        (
            "the events_processed counter",
            &[
                "user/*",
                "count/users",
                "count/events_in_windows",
                "watermark",
                "sweep/*",
            ],
        ),
        ("the watermark", &["user/*", "count/*", "sweep/*"]),
    ];
    for (step, (refused, writable)) in cases.into_iter().enumerate() {
        // Each request raises the watermark.
        let request = batch(&["a-1", "z-1"], t0 + 1.0 + step as f64);
        let before = store_contents(&replicas.redis);
        only_writable(&replicas.redis, writable);
        let answer = c.post_json("/ingest", &request).await;
        only_writable(&replicas.redis, &["*"]);
        assert_eq!(answer.status, 503, "{refused} refused: {}", answer.body);
        assert_eq!(answer.retry_after.as_deref(), Some("1"));
        assert!(answer.error().contains("taken back"), "{}", answer.body);
        assert_eq!(answer.body["processed"], 0, "{}", answer.body);
        assert_eq!(
            answer.body["not_recorded"],
            json!([0, 1]),
            "{}",
            answer.body
        );
        assert_eq!(store_contents(&replicas.redis), before, "{refused} refused");
        let again = c.post_json("/ingest", &request).await;
        assert_eq!(
            again.status, 200,
            "{refused} writable again: {}",
            again.body
        );
    }
    let windows = async |a: u64, z: u64| {
        for (user, count) in [("a-1", a), ("z-1", z)] {
            let m = c.get(&format!("/users/{user}/median")).await;
            assert_eq!(m.body["count"], count, "{user}: {}", m.body);
        }
        let stats = c.get("/stats").await.body;
        assert_eq!(stats["events_in_windows"], a + z, "{stats}");
        assert_eq!(
            stats["users_tracked"],
            u64::from(a > 0) + u64::from(z > 0),
            "{stats}"
        );
    };
    windows(4, 3).await;
    // A request 350 s on expires every event before it: refused at the watermark, it takes its
    // own events back, and what it expired stays expired, counted so.
    let late = batch(&["a-1", "z-1"], t0 + 350.0);
    only_writable(&replicas.redis, &["user/*", "count/*", "sweep/*"]);
    let answer = c.post_json("/ingest", &late).await;
    only_writable(&replicas.redis, &["*"]);
    assert_eq!(answer.status, 503, "{}", answer.body);
    windows(0, 0).await;
    assert_eq!(c.post_json("/ingest", &late).await.status, 200);
    windows(1, 1).await;
}

/// A store that serves reads but refuses writes (Redis out of memory, say): reads still answer,
/// leaving expired events out, and an ingest gets 503; once writes are taken again, a read
/// writes the trimmed window back and counts what it dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_answer_while_the_store_refuses_writes() {
    let replicas = Replicas::start(128).await;
    let c = replicas.split();
    let t0 = contract::now() - 400.0;
    let event = |user: &str, t: f64| json!({"events": [{"user_id": user, "timestamp": t, "features": [0.1, 0.2, 0.3]}]});
    for t in [t0, t0 + 1.0] {
        assert_eq!(c.post_json("/ingest", &event("old-1", t)).await.status, 200);
    }
    // 350 s on: old-1's events are out of the window.
    assert_eq!(
        c.post_json("/ingest", &event("new-1", t0 + 350.0))
            .await
            .status,
        200
    );
    only_writable(&replicas.redis, &[]);
    for (user, count) in [("old-1", 0), ("new-1", 1)] {
        let m = c.get(&format!("/users/{user}/median")).await;
        assert_eq!(m.status, 200, "{user} with writes refused: {}", m.body);
        assert_eq!(m.body["count"], count, "{user}: {}", m.body);
    }
    let stats = c.get("/stats").await;
    assert_eq!(stats.status, 200, "{}", stats.body);
    let refused = c.post_json("/ingest", &event("new-1", t0 + 351.0)).await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    only_writable(&replicas.redis, &["*"]);
    let m = c.get("/users/old-1/median").await;
    assert_eq!(
        (m.status, m.body["count"].clone()),
        (200, json!(0)),
        "{}",
        m.body
    );
    let stats = c.get("/stats").await.body;
    assert_eq!(stats["events_in_windows"], 1, "{stats}");
    assert_eq!(stats["users_tracked"], 1, "{stats}");
}

/// Redis holding every write (`CLIENT PAUSE ... WRITE`, as in a failover) for longer than the
/// host waits for an answer (2 s) and less than a take-back keeps trying (4 s): the request's
/// first write gets no answer (a write whose outcome is unknown), the take-back waits for the
/// pause to end. Whatever the request was answered, the store agrees with it once the held
/// writes have run: 503, nothing of it; 200, all of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_held_past_their_answer_leave_the_store_as_answered() {
    let replicas = Replicas::start(128).await;
    let c = replicas.split();
    let t0 = contract::now() - 100.0;
    let events: Vec<Value> = ["a-1", "z-1"]
        .iter()
        .map(|u| json!({"user_id": u, "timestamp": t0, "features": [0.1, 0.2, 0.3]}))
        .collect();
    let before = store_contents(&replicas.redis);
    let mut conn = replicas.redis.connection();
    redis::cmd("CLIENT")
        .arg(&["PAUSE", "3000", "WRITE"])
        .query::<()>(&mut conn)
        .unwrap();
    let answer = c.post_json("/ingest", &json!({ "events": events })).await;
    // A write of the test's own waits for the pause to end, after the writes held before it.
    redis::cmd("SET")
        .arg(&["after-the-pause", "1"])
        .query::<()>(&mut conn)
        .unwrap();
    redis::cmd("DEL")
        .arg("after-the-pause")
        .query::<()>(&mut conn)
        .unwrap();
    let held = match answer.status {
        200 => 1,
        503 => {
            assert_eq!(store_contents(&replicas.redis), before, "{}", answer.body);
            0
        }
        status => panic!("{status} {}", answer.body),
    };
    for user in ["a-1", "z-1"] {
        let m = c.get(&format!("/users/{user}/median")).await;
        assert_eq!(
            m.body["count"], held,
            "{user} after {}: {}",
            answer.status, m.body
        );
    }
}

/// The checked-in examples: the runtime config names Redis for the store `default`, and the
/// SpinKube manifest runs two replicas on the same runtime config.
#[test]
fn the_runtime_config_examples_say_what_the_readme_says() {
    let root = edgescore_tests::repo_root();
    let config = RuntimeConfig::read(&root.join("runtime-config.toml"), "unused".as_ref()).unwrap();
    assert_eq!(
        config.stores.get("default"),
        Some(&StoreBackend::Redis("redis://127.0.0.1:6379".into()))
    );
    assert!(config.ignored.is_empty());

    let manifest = std::fs::read_to_string(root.join("docs/spinkube/edgescore.yaml")).unwrap();
    let documents: Vec<serde_json::Value> = serde_yaml_ng::Deserializer::from_str(&manifest)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    let kind = |k: &str| {
        documents
            .iter()
            .find(|d| d["kind"] == k)
            .unwrap_or_else(|| panic!("no {k} in the manifest"))
    };
    let app = kind("SpinApp");
    assert_eq!(app["apiVersion"], "core.spinkube.dev/v1alpha1");
    assert_eq!(app["spec"]["replicas"], 2);
    let secret = kind("Secret");
    assert_eq!(
        app["spec"]["runtimeConfig"]["loadFromSecret"],
        secret["metadata"]["name"]
    );
    let embedded = secret["stringData"]["runtime-config.toml"]
        .as_str()
        .unwrap();
    let embedded = RuntimeConfig::parse(embedded, ".".as_ref(), "unused".as_ref()).unwrap();
    let service = kind("Service")["metadata"]["name"].as_str().unwrap();
    assert_eq!(
        embedded.stores.get("default"),
        Some(&StoreBackend::Redis(format!("redis://{service}:6379")))
    );
    let redis = kind("StatefulSet");
    let args = &redis["spec"]["template"]["spec"]["containers"][0]["args"];
    let args: BTreeSet<&str> = args
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a.as_str())
        .collect();
    assert!(args.contains("appendonly") || args.contains("--appendonly"));
    assert!(args.contains("always"), "appendfsync always: {args:?}");
}
