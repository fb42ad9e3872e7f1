//! The Spin app under the real Spin runtime (`spin up --from spin.toml`, unchanged): the shared
//! contract suite, every function of it, on Spin's default store (SQLite in the state
//! directory) and on Redis through a runtime config; `/stats` exact on a fresh app and after
//! traffic; the API token; the state across a SIGKILL of Spin.
//!
//! Without a `spin` binary (`EDGESCORE_SPIN`, or `spin` on the `PATH`) each test prints
//! "skipped: no spin binary" and passes; CI runs them with one.

use std::collections::BTreeMap;

use edgescore_test_redis::RedisServer;
use edgescore_tests::contract;
use edgescore_tests::http::Client;
use edgescore_tests::spin::{SpinApp, SpinOptions, SpinStore};
use serde_json::{Value, json};

/// `spin up` serves no Swagger UI: that page is a host's (see `contract::docs_serve_swagger_ui`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_no_docs_page() {
    let Some(app) = on_sqlite().await else { return };
    let r = app.client.get("/docs").await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(r.error().contains("/docs"), "{}", r.body);
}

/// Spin on its default store.
async fn on_sqlite() -> Option<SpinApp> {
    SpinApp::start().await
}

/// Spin on a Redis of its own (kept alive beside it).
async fn on_redis() -> Option<(SpinApp, RedisServer)> {
    edgescore_tests::spin::binary()?;
    let redis = RedisServer::start();
    let options = SpinOptions {
        store: SpinStore::Redis(redis.url()),
        ..SpinOptions::default()
    };
    let app = SpinApp::start_with(options).await?;
    Some((app, redis))
}

/// Each function of the shared contract suite on a fresh Spin app, once per store.
macro_rules! under_spin {
    ($($suite:ident),* $(,)?) => {
        mod default_store {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $suite() {
                    let Some(app) = on_sqlite().await else { return };
                    contract::$suite(&app.client).await;
                }
            )*

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn hot_users_lose_nothing() {
                let Some(app) = on_sqlite().await else { return };
                contract::hot_users_lose_nothing(std::slice::from_ref(&app.client)).await;
            }
        }

        mod redis_store {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $suite() {
                    let Some((app, _redis)) = on_redis().await else { return };
                    contract::$suite(&app.client).await;
                }
            )*

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn hot_users_lose_nothing() {
                let Some((app, _redis)) = on_redis().await else { return };
                contract::hot_users_lose_nothing(std::slice::from_ref(&app.client)).await;
            }
        }
    };
}

under_spin!(
    seed_contract,
    health_and_ready,
    request_ids_are_echoed_and_named_in_errors,
    openapi_describes_every_route,
    refuses_bad_bodies,
    refuses_bodies_that_are_not_json,
    rejects_bad_events_alone,
    a_fast_clock_expires_nobody,
    windows_follow_the_reference,
    concurrent_clients_lose_nothing,
    predict_scores_without_touching_windows,
    models_lists_the_registry,
);

/// What a client sent, counted on its side: `/stats` must say exactly this.
#[derive(Default)]
struct Sent {
    ingests: u64,
    processed: u64,
    rejected: BTreeMap<String, u64>,
    /// Accepted events per user.
    users: BTreeMap<String, u64>,
    medians: u64,
}

/// Traffic with rejections of several kinds, over 40 users, and some median reads.
async fn traffic(c: &Client) -> Sent {
    let mut sent = Sent::default();
    let t = contract::now();
    for r in 0..25u32 {
        let mut events: Vec<Value> = (0..8u32)
            .map(|i| {
                let user = format!("s-{}", (r * 8 + i) % 40);
                json!({"user_id": user, "timestamp": t + f64::from(r) * 0.01, "features": [0.01 * f64::from(i), 0.5, 0.25]})
            })
            .collect();
        if r % 5 == 0 {
            events.push(
                json!({"user_id": "s-late", "timestamp": t - 1000.0, "features": [0.1, 0.2, 0.3]}),
            );
            events.push(json!({"user_id": "s-narrow", "timestamp": t, "features": [0.1, 0.2]}));
        }
        let answer = c.post_json("/ingest", &json!({ "events": events })).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        sent.ingests += 1;
        let rejections = answer.body["rejected"].as_array().unwrap();
        assert_eq!(
            answer.body["processed"].as_u64(),
            Some((events.len() - rejections.len()) as u64),
            "{}",
            answer.body
        );
        for (i, event) in events.iter().enumerate() {
            match rejections.iter().find(|x| x["index"] == i) {
                Some(x) => {
                    let reason = x["error"].as_str().unwrap().to_string();
                    *sent.rejected.entry(reason).or_default() += 1;
                }
                None => {
                    sent.processed += 1;
                    let user = event["user_id"].as_str().unwrap().to_string();
                    *sent.users.entry(user).or_default() += 1;
                }
            }
        }
    }
    for user in ["s-0", "s-1", "s-39"] {
        let m = c.get(&format!("/users/{user}/median")).await;
        assert_eq!(m.body["count"].as_u64(), sent.users.get(user).copied());
        sent.medians += 1;
    }
    sent
}

/// `/stats` says exactly what `sent` counted, and the windows hold what it says they hold.
async fn stats_are_exact(c: &Client, sent: &Sent) {
    let s = c.get("/stats").await;
    assert_eq!(s.status, 200, "{}", s.body);
    let s = s.body;
    assert_eq!(s["ingest_requests"].as_u64(), Some(sent.ingests), "{s}");
    assert_eq!(s["events_processed"].as_u64(), Some(sent.processed), "{s}");
    assert_eq!(s["median_requests"].as_u64(), Some(sent.medians), "{s}");
    let rejected: u64 = sent.rejected.values().sum();
    assert_eq!(s["events_rejected"].as_u64(), Some(rejected), "{s}");
    for (reason, n) in s["rejections"].as_object().unwrap() {
        let expected = sent.rejected.get(reason).copied().unwrap_or(0);
        assert_eq!(n.as_u64(), Some(expected), "{reason}: {s}");
    }
    assert_eq!(
        s["users_tracked"].as_u64(),
        Some(sent.users.len() as u64),
        "{s}"
    );
    assert_eq!(s["events_in_windows"].as_u64(), Some(sent.processed), "{s}");
    assert_eq!(
        s["ingest_latency_seconds"]["count"].as_u64(),
        Some(sent.ingests)
    );
    // Independently of the counters: the windows themselves.
    let mut in_windows = 0;
    for user in sent.users.keys() {
        let m = c.get(&format!("/users/{user}/median")).await;
        in_windows += m.body["count"].as_u64().unwrap();
    }
    assert_eq!(in_windows, sent.processed);
}

async fn stats_on_a_fresh_app_and_after_traffic(c: &Client) {
    let fresh = c.get("/stats").await;
    assert_eq!(fresh.status, 200, "{}", fresh.body);
    stats_are_exact(c, &Sent::default()).await;
    let sent = traffic(c).await;
    assert!(sent.rejected.len() >= 2 && sent.users.len() == 40);
    stats_are_exact(c, &sent).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_are_exact_on_the_default_store() {
    let Some(app) = on_sqlite().await else { return };
    stats_on_a_fresh_app_and_after_traffic(&app.client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_are_exact_on_redis() {
    let Some((app, _redis)) = on_redis().await else {
        return;
    };
    stats_on_a_fresh_app_and_after_traffic(&app.client).await;
    // Spin's Redis store fails get-many; the app says so in its log, and reads key by key.
    assert!(
        app.log().contains("get-many failed"),
        "the fallback is logged: {}",
        app.log()
    );
}

/// The token comes from the Spin variable `api_token` (`spin up --variable api_token=...`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requires_the_api_token() {
    let options = SpinOptions {
        variables: vec![("api_token".into(), "s3cret-spin".into())],
        ..SpinOptions::default()
    };
    let Some(app) = SpinApp::start_with(options).await else {
        return;
    };
    contract::requires_the_api_token(&app.client, "s3cret-spin").await;
}

/// Spin killed with SIGKILL and started again on the same state directory: every event it
/// acknowledged is in its window, and `/stats` still counts exactly what was sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_store_keeps_everything_across_a_sigkill() {
    let Some(mut app) = on_sqlite().await else {
        return;
    };
    let sent = traffic(&app.client).await;
    let medians: Vec<Value> = {
        let mut medians = Vec::new();
        for user in sent.users.keys() {
            medians.push(app.client.get(&format!("/users/{user}/median")).await.body);
        }
        medians
    };
    app.restart().await;
    for (user, before) in sent.users.keys().zip(&medians) {
        let after = app.client.get(&format!("/users/{user}/median")).await.body;
        assert_eq!(&after, before, "{user}");
    }
    let reads = sent.users.len() as u64 * 2;
    let sent = Sent {
        medians: sent.medians + reads,
        ..sent
    };
    stats_are_exact(&app.client, &sent).await;
}
