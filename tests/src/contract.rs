//! The HTTP contract of `docs/http-api.md` as a test suite over a base URL: every host that
//! serves the API (the native service, the Spin app under the wasmtime harness) runs these same
//! functions against a fresh instance of itself serving the seed model v2.

use std::collections::HashMap;

use edgescore_engine::Model;
use serde_json::{Value, json};

use crate::http::Client;

/// Seconds since the Unix epoch, now.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn event(user: &str, timestamp: f64, features: [f32; 3]) -> Value {
    json!({"user_id": user, "timestamp": timestamp, "features": features})
}

fn model() -> Model {
    Model::load(&crate::seed_onnx(2)).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-5 * a.abs().max(1.0)
}

/// The seed's own test: one event, its median is not null, stats count it.
pub async fn seed_contract(c: &Client) {
    let batch = json!({"events": [{"user_id": "user-1", "timestamp": 1700000000, "features": [0.1, 0.2, 0.3]}]});
    let r = c.post_json("/ingest", &batch).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.content_type.as_deref(), Some("application/json"));
    assert_eq!(r.body, json!({"processed": 1, "rejected": []}));

    let m = c.get("/users/user-1/median").await;
    assert_eq!(m.status, 200);
    let keys: Vec<&String> = m.body.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 4, "{}", m.body);
    let expected = model().score(&[0.1, 0.2, 0.3]).unwrap()[0] as f64;
    assert!(
        close(m.body["median"].as_f64().unwrap(), expected),
        "{}",
        m.body
    );
    assert_eq!(m.body["user_id"], "user-1");
    assert_eq!(m.body["count"], 1);
    assert_eq!(m.body["window_seconds"], 300.0);

    let s = c.get("/stats").await;
    assert_eq!(s.status, 200);
    assert!(s.body["events_processed"].as_u64().unwrap() >= 1);
    assert_eq!(s.body["ingest_requests"], 1);
    assert_eq!(s.body["median_requests"], 1);
    assert!(s.body["avg_ingest_latency_seconds"].as_f64().unwrap() > 0.0);
    // Ours: the ingest latency's percentiles, over the one request.
    let latency = &s.body["ingest_latency_seconds"];
    assert_eq!(latency["count"], 1, "{latency}");
    let (p50, p99) = (
        latency["p50"].as_f64().unwrap(),
        latency["p99"].as_f64().unwrap(),
    );
    assert!(
        p50 > 0.0 && p50 <= p99 && p99 <= latency["max"].as_f64().unwrap(),
        "{latency}"
    );

    let unknown = c.get("/users/nobody/median").await;
    assert_eq!(
        unknown.body,
        json!({"user_id": "nobody", "median": null, "count": 0, "window_seconds": 300.0})
    );
}

/// Health and readiness of a service that has its model.
pub async fn health_and_ready(c: &Client) {
    for path in ["/health", "/ready"] {
        let r = c.get(path).await;
        assert_eq!(
            (r.status, &r.body),
            (200, &json!({"status": "ok"})),
            "{path}"
        );
    }
}

/// Request ids: a client's `x-request-id` is echoed and named in an error body; a request
/// without one is given a new id (a UUID), also echoed and named.
pub async fn request_ids_are_echoed_and_named_in_errors(c: &Client) {
    let traced = c.with_header("x-request-id", "trace-42");
    let ok = traced.get("/health").await;
    assert_eq!(
        (ok.status, ok.request_id.as_deref()),
        (200, Some("trace-42"))
    );
    assert_eq!(
        ok.body,
        json!({"status": "ok"}),
        "a success body is unchanged"
    );
    for answer in [
        traced.post("/ingest", "not json").await,
        traced.get("/no/such/route").await,
        traced
            .get(&format!("/users/{}/median", "u".repeat(300)))
            .await,
    ] {
        assert!(answer.status >= 400, "{answer:?}");
        assert_eq!(answer.request_id.as_deref(), Some("trace-42"), "{answer:?}");
        assert_eq!(answer.body["request_id"], "trace-42", "{answer:?}");
        assert!(!answer.error().is_empty());
    }

    let first = c.post("/ingest", "{}").await;
    let second = c.post("/ingest", "{}").await;
    for answer in [&first, &second] {
        assert_eq!(answer.status, 422, "{answer:?}");
        let id = answer.request_id.as_deref().expect("a new request id");
        assert_eq!(answer.body["request_id"], id, "{answer:?}");
        let uuid: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(uuid, [8, 4, 4, 4, 12], "a UUID: {id}");
    }
    assert_ne!(
        first.request_id, second.request_id,
        "each request its own id"
    );
}

/// `GET /openapi.json`: a valid OpenAPI 3 document (checked by openapi-spec-validator, in
/// Python) that describes exactly the routes this host serves: every documented operation is
/// served, and every path of the native service's router that this host serves (probed with GET
/// and POST) is documented.
pub async fn openapi_describes_every_route(c: &Client) {
    let (status, content_type, text) = c.get_text("/openapi.json").await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(content_type, "application/json");
    let doc: Value = serde_json::from_str(&text).expect("a JSON document");
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    validate_openapi(&text);

    let concrete = |template: &str| {
        template
            .replace("{user_id}", "probe-user")
            .replace("{job_id}", "probe-job")
            .replace("{name}", "seed-mlp")
            .replace("{version}", "2")
    };
    let served = async |method: &str, path: &str| {
        let answer = match method {
            "get" => c.get(path).await,
            _ => c.post(path, "{}").await,
        };
        let no_route = answer.status == 405
            || (answer.status == 404
                && answer.body["error"]
                    .as_str()
                    .is_some_and(|e| e.starts_with("path: no route")));
        !no_route
    };
    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            assert!(
                served(method, &concrete(path)).await,
                "documented and not served: {method} {path}"
            );
            let responses = &item[method]["responses"];
            assert!(
                responses.as_object().is_some_and(|r| !r.is_empty()),
                "{method} {path} documents no response"
            );
            documented.push((method.clone(), path.clone()));
        }
    }
    for path in edgescore_serve::route_paths() {
        if path == "/docs" {
            continue;
        }
        for method in ["get", "post"] {
            if served(method, &concrete(path)).await {
                assert!(
                    documented.contains(&(method.to_string(), path.to_string())),
                    "served and not documented: {method} {path}"
                );
            }
        }
    }
    assert!(documented.len() >= 7, "{documented:?}");
}

/// `GET /docs` is Swagger UI over `/openapi.json`, with its files from the host (no CDN): a page
/// of the hosts that serve the API from a process of their own (`edgescore serve`, `serve-app`).
/// The app itself does not carry Swagger UI's 1.9 MB, so `spin up` serves no `/docs`.
pub async fn docs_serve_swagger_ui(c: &Client) {
    let (status, content_type, page) = c.get_text("/docs").await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "text/html"),
        "{page}"
    );
    assert!(page.contains("/openapi.json") && page.contains("swagger-ui-bundle.js"));
    assert!(!page.contains("https://"), "no CDN: {page}");
    let (status, _, bundle) = c.get_text("/docs/swagger-ui-bundle.js").await;
    assert_eq!(status, 200);
    assert!(bundle.len() > 100_000, "Swagger UI's bundle is served");
}

/// Runs openapi-spec-validator (tests/requirements.txt) on a document.
fn validate_openapi(text: &str) {
    let file = std::env::temp_dir().join(format!("edgescore-openapi-{}.json", std::process::id()));
    std::fs::write(&file, text).unwrap();
    let out = std::process::Command::new(crate::python())
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output()
        .expect("running openapi-spec-validator");
    let _ = std::fs::remove_file(&file);
    assert!(
        out.status.success(),
        "the document is not valid OpenAPI:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Bodies refused as a whole: nothing of them is accepted, and the error names the problem.
pub async fn refuses_bad_bodies(c: &Client) {
    let t = now();
    let good = event("kept-out", t, [0.1, 0.2, 0.3]);
    let cases: Vec<(String, u16, &str)> = vec![
        ("not json".into(), 400, "body: not valid JSON"),
        ("".into(), 400, "body: not valid JSON"),
        (
            format!(
                r#"{{"events":[{good}, {{"user_id":"x","timestamp":NaN,"features":[1,2,3]}}]}}"#
            ),
            400,
            "body: not valid JSON",
        ),
        (
            format!(
                r#"{{"events":[{good}, {{"user_id":"x","timestamp":1,"features":[Infinity,2,3]}}]}}"#
            ),
            400,
            "body: not valid JSON",
        ),
        ("{}".into(), 422, "events: missing"),
        (
            r#"{"events": {"a": 1}}"#.into(),
            422,
            "events: must be an array",
        ),
        (format!("[{good}]"), 422, "body: must be a JSON object"),
    ];
    for (body, status, prefix) in cases {
        let r = c.post("/ingest", body.clone()).await;
        assert_eq!(r.status, status, "{body}: {}", r.body);
        assert!(r.error().starts_with(prefix), "{body}: {}", r.error());
    }

    let too_many: Vec<Value> = (0..10_001)
        .map(|i| event(&format!("many-{i}"), t, [0.0; 3]))
        .collect();
    let r = c.post_json("/ingest", &json!({"events": too_many})).await;
    assert_eq!(r.status, 413, "{}", r.body);
    assert!(
        r.error().starts_with("events: more than 10000"),
        "{}",
        r.error()
    );

    let huge = format!(
        r#"{{"events":[{good}],"padding":"{}"}}"#,
        "x".repeat(8 << 20)
    );
    let r = c.post("/ingest", huge).await;
    assert_eq!(r.status, 413, "{}", r.body);
    assert!(
        r.error().starts_with("body: larger than the limit"),
        "{}",
        r.error()
    );

    for user in ["kept-out", "many-0"] {
        let m = c.get(&format!("/users/{user}/median")).await;
        assert_eq!(
            m.body["count"], 0,
            "{user}: nothing of a refused body is accepted"
        );
    }
    let s = c.get("/stats").await;
    assert_eq!(s.body["events_processed"], 0);
}

/// A POST body must be JSON: another content type is 415 before anything is read or recorded (a
/// web page cannot post a form or text here cross-site); a missing content type is read as JSON.
pub async fn refuses_bodies_that_are_not_json(c: &Client) {
    let body = json!({"events": [event("ct", now(), [0.1, 0.2, 0.3])]}).to_string();
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let r = c.post_as("/ingest", Some(content_type), body.clone()).await;
        assert_eq!(r.status, 415, "{content_type}: {}", r.body);
        assert!(r.error().starts_with("content-type:"), "{}", r.body);
        let r = c
            .post_as("/predict", Some(content_type), r#"{"instances":[[1,2,3]]}"#)
            .await;
        assert_eq!(r.status, 415, "{content_type}: {}", r.body);
    }
    assert_eq!(c.get("/users/ct/median").await.body["count"], 0);
    for content_type in [
        Some("application/json; charset=utf-8"),
        Some("application/vnd.edgescore+json"),
        None,
    ] {
        let r = c.post_as("/ingest", content_type, body.clone()).await;
        assert_eq!(r.status, 200, "{content_type:?}: {}", r.body);
    }
    assert_eq!(c.get("/users/ct/median").await.body["count"], 3);
}

/// With an API token, every route but the probes needs it: 401 with a JSON error and
/// `WWW-Authenticate` without it or with another (nothing of such a request is done), 200 with
/// it. `c` has no token; `token` is the service's.
pub async fn requires_the_api_token(c: &Client, token: &str) {
    let body = json!({"events": [event("tok", now(), [0.1, 0.2, 0.3])]});
    let wrong = c.with_token(&format!("{token}x"));
    for client in [c, &wrong] {
        for r in [
            client.post_json("/ingest", &body).await,
            client.get("/users/tok/median").await,
            client.get("/stats").await,
            client.get("/models").await,
            client
                .post_json("/predict", &json!({"instances": [[1, 2, 3]]}))
                .await,
            // The token is checked before the content type.
            client.post_as("/ingest", Some("text/plain"), "x").await,
        ] {
            assert_eq!(r.status, 401, "{}", r.body);
            assert!(r.error().starts_with("authorization:"), "{}", r.body);
            assert_eq!(
                r.www_authenticate.as_deref(),
                Some(r#"Bearer realm="edgescore""#)
            );
        }
    }
    for probe in ["/health", "/ready", "/openapi.json"] {
        assert_eq!(c.get(probe).await.status, 200, "{probe}");
    }
    let c = c.with_token(token);
    assert_eq!(c.get("/users/tok/median").await.body["count"], 0);
    let r = c.post_json("/ingest", &body).await;
    assert_eq!(
        (r.status, &r.body["processed"]),
        (200, &json!(1)),
        "{}",
        r.body
    );
    assert_eq!(c.get("/stats").await.body["events_processed"], 1);
}

/// Each bad event is rejected alone, with its reason and a sentence naming the field; `/stats`
/// counts rejections by reason.
pub async fn rejects_bad_events_alone(c: &Client) {
    let t = now();
    let long_id = "u".repeat(257);
    let batch = json!({"events": [
        event("ok-1", t - 10.0, [0.1, 0.2, 0.3]),
        event("", t, [0.1, 0.2, 0.3]),
        event(&long_id, t, [0.1, 0.2, 0.3]),
        {"user_id": "a", "timestamp": "yesterday", "features": [0.1, 0.2, 0.3]},
        {"user_id": "a", "timestamp": t, "features": [0.1, 0.2]},
        {"user_id": "a", "timestamp": t, "features": [0.1, 1e39, 0.3]},
        event("a", t + 3600.0, [0.1, 0.2, 0.3]),
        event("a", t - 400.0, [0.1, 0.2, 0.3]),
        "not an event",
        {"timestamp": t, "features": [0.1, 0.2, 0.3]},
        event("ok-2", t, [0.4, 0.5, 0.6]),
    ]});
    let r = c.post_json("/ingest", &batch).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["processed"], 2);
    let rejected: Vec<(u64, &str, &str)> = r.body["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["index"].as_u64().unwrap(),
                x["error"].as_str().unwrap(),
                x["message"].as_str().unwrap(),
            )
        })
        .collect();
    let expected = [
        (1, "invalid_user_id", "user_id:"),
        (2, "invalid_user_id", "user_id:"),
        (3, "invalid_timestamp", "timestamp:"),
        (4, "wrong_width", "features:"),
        (5, "non_finite_feature", "features[1]"),
        (6, "future", "timestamp:"),
        (7, "late", "timestamp:"),
        (8, "malformed_event", "event:"),
        (9, "invalid_user_id", "user_id: missing"),
    ];
    assert_eq!(rejected.len(), expected.len(), "{}", r.body);
    for ((index, error, message), (ei, ee, em)) in rejected.iter().zip(expected) {
        assert_eq!((*index, *error), (ei, ee), "{}", r.body);
        assert!(message.starts_with(em), "{message}");
    }
    for user in ["ok-1", "ok-2"] {
        assert_eq!(
            c.get(&format!("/users/{user}/median")).await.body["count"],
            1
        );
    }
    let s = c.get("/stats").await;
    let by_reason = &s.body["rejections"];
    for (reason, n) in [
        ("invalid_user_id", 3),
        ("invalid_timestamp", 1),
        ("wrong_width", 1),
        ("non_finite_feature", 1),
        ("future", 1),
        ("late", 1),
        ("malformed_event", 1),
    ] {
        assert_eq!(by_reason[reason], n, "{reason}: {}", s.body);
    }
    assert_eq!(s.body["events_rejected"], 9);
    assert_eq!(s.body["events_processed"], 2);

    let r = c.get(&format!("/users/{long_id}/median")).await;
    assert_eq!(r.status, 400);
    assert!(r.error().starts_with("user_id: must be 1 to 256 bytes"));
    let r = c.get("/no/such/route").await;
    assert_eq!(r.status, 404);
    assert!(r.error().contains("/no/such/route"));
    let r = c.post("/stats", "{}").await;
    assert_eq!(r.status, 405);
    assert!(r.error().starts_with("method:"));
}

/// A client whose clock runs fast — an event 50 s ahead, within the 60 s skew — is accepted and
/// its event kept, but the watermark does not pass the host's clock, so nobody else's window
/// loses an event; the clock, not the client, moves the windows.
pub async fn a_fast_clock_expires_nobody(c: &Client) {
    let t = now();
    let features = |i: usize| [0.05 * i as f32, 0.5, 0.25];
    // Ten events near the window's start (they expire once the clock passes t + 1.9) and ten
    // recent ones.
    let victim: Vec<Value> = (0..10)
        .map(|i| event("victim", t - 299.0 + i as f64 * 0.1, features(i)))
        .chain((0..10).map(|i| event("victim", t - 10.0 + i as f64, features(i + 10))))
        .collect();
    let r = c.post_json("/ingest", &json!({ "events": victim })).await;
    assert_eq!(r.body["processed"], 20, "{}", r.body);
    let before = c.get("/users/victim/median").await.body;
    assert_eq!(before["count"], 20);

    let r = c
        .post_json(
            "/ingest",
            &json!({"events": [event("fast-clock", t + 50.0, [0.9, 0.1, 0.4])]}),
        )
        .await;
    assert_eq!(r.body["processed"], 1, "{}", r.body);
    let watermark = c.get("/stats").await.body["watermark"].as_f64().unwrap();
    assert!(
        watermark <= now(),
        "the watermark {watermark} passed the clock"
    );
    assert_eq!(
        c.get("/users/victim/median").await.body,
        before,
        "a fast clock expired another user's events"
    );
    assert_eq!(c.get("/users/fast-clock/median").await.body["count"], 1);

    // Once the clock passes t + 1.9, the next event raises the watermark past it and the ten
    // oldest events (at or before t - 298.1) leave the window.
    while now() <= t + 2.0 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let r = c
        .post_json(
            "/ingest",
            &json!({"events": [event("clock", now(), [0.1, 0.1, 0.1])]}),
        )
        .await;
    assert_eq!(r.body["processed"], 1, "{}", r.body);
    assert_eq!(c.get("/users/victim/median").await.body["count"], 10);
    assert_eq!(c.get("/users/fast-clock/median").await.body["count"], 1);
}

/// The spec's window rules, computed naively.
struct Reference {
    window: f64,
    watermark: Option<f64>,
    scores: HashMap<String, Vec<(f64, f32)>>,
}

impl Reference {
    /// Accepts or rejects (as `late`) each event in order at clock `now`; returns the rejected
    /// positions.
    fn ingest(&mut self, batch: &[(String, f64, [f32; 3])], model: &Model, now: f64) -> Vec<u64> {
        let mut rejected = Vec::new();
        for (i, (user, t, features)) in batch.iter().enumerate() {
            if self.watermark.is_some_and(|w| *t <= w - self.window) {
                rejected.push(i as u64);
                continue;
            }
            let t_or_now = t.min(now);
            self.watermark = Some(self.watermark.map_or(t_or_now, |w| w.max(t_or_now)));
            let score = model.score(features).unwrap()[0];
            self.scores
                .entry(user.clone())
                .or_default()
                .push((*t, score));
        }
        rejected
    }

    fn median(&self, user: &str) -> (Option<f64>, u64) {
        let cutoff = self.watermark.unwrap_or(f64::MIN) - self.window;
        let mut s: Vec<f64> = self
            .scores
            .get(user)
            .into_iter()
            .flatten()
            .filter(|(t, _)| *t > cutoff)
            .map(|(_, s)| *s as f64)
            .collect();
        s.sort_by(f64::total_cmp);
        let n = s.len();
        let median = match n {
            0 => None,
            _ if n % 2 == 1 => Some(s[n / 2]),
            _ => Some((s[n / 2 - 1] + s[n / 2]) / 2.0),
        };
        (median, n as u64)
    }
}

/// Sequential batches with out-of-order, late and expiring events over many users (so over every
/// shard): each answer, and every user's median and count, against the reference.
pub async fn windows_follow_the_reference(c: &Client) {
    let model = model();
    let mut reference = Reference {
        window: 300.0,
        watermark: None,
        scores: HashMap::new(),
    };
    let start = now() - 3000.0;
    let mut rng = fastrand_like(11);
    let users: Vec<String> = (0..40).map(|i| format!("ref-{i}")).collect();
    for b in 0..30 {
        // The clock moves ~60 s per batch; events scatter 0-400 s behind it, so some are late
        // and old ones expire from every user's window.
        let head = start + 60.0 * b as f64;
        let batch: Vec<(String, f64, [f32; 3])> = (0..25)
            .map(|_| {
                let user = users[(rng() * users.len() as f64) as usize].clone();
                let t = (head - 400.0 * rng() * rng()).floor() + 0.5 * (rng() < 0.5) as u8 as f64;
                (user, t, [rng() as f32, rng() as f32, rng() as f32])
            })
            .collect();
        let expected_rejected = reference.ingest(&batch, &model, now());
        let body =
            json!({"events": batch.iter().map(|(u, t, f)| event(u, *t, *f)).collect::<Vec<_>>()});
        let r = c.post_json("/ingest", &body).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let rejected: Vec<u64> = r.body["rejected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| {
                assert_eq!(x["error"], "late");
                x["index"].as_u64().unwrap()
            })
            .collect();
        assert_eq!(
            rejected, expected_rejected,
            "batch {b}: {} {body} {:?}",
            r.body, reference.watermark
        );
        assert_eq!(
            r.body["processed"].as_u64().unwrap(),
            batch.len() as u64 - rejected.len() as u64
        );
    }
    let mut late = 0;
    for user in &users {
        let m = c.get(&format!("/users/{user}/median")).await;
        let (median, count) = reference.median(user);
        assert_eq!(m.body["count"].as_u64().unwrap(), count, "{user}");
        match median {
            Some(expected) => assert!(
                close(m.body["median"].as_f64().unwrap(), expected),
                "{user}: {} vs {expected}",
                m.body
            ),
            None => assert!(m.body["median"].is_null(), "{user}"),
        }
        late += count;
    }
    let s = c.get("/stats").await;
    assert_eq!(s.body["watermark"].as_f64(), reference.watermark);
    assert_eq!(s.body["events_in_windows"].as_u64().unwrap(), late);
    assert!(
        s.body["rejections"]["late"].as_u64().unwrap() > 0,
        "the test makes late events"
    );
}

/// Many clients at once: every answer's `processed` adds up to `/stats`, and each user's count to
/// what was sent to it.
pub async fn concurrent_clients_lose_nothing(c: &Client) {
    let clients = 16;
    let requests = 40;
    let t = now();
    let mut tasks = Vec::new();
    for k in 0..clients {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let mut processed = 0;
            let mut sent: HashMap<String, u64> = HashMap::new();
            for r in 0..requests {
                let batch: Vec<Value> = (0..10)
                    .map(|i| {
                        let user = format!("c-{}", (k * 7 + r * 3 + i) % 50);
                        *sent.entry(user.clone()).or_default() += 1;
                        event(&user, t - (r % 5) as f64, [0.1 * i as f32, 0.2, 0.3])
                    })
                    .collect();
                let a = c.post_json("/ingest", &json!({"events": batch})).await;
                assert_eq!(a.status, 200, "{}", a.body);
                processed += a.body["processed"].as_u64().unwrap();
            }
            (processed, sent)
        }));
    }
    let mut processed = 0;
    let mut sent: HashMap<String, u64> = HashMap::new();
    for task in tasks {
        let (p, s) = task.await.unwrap();
        processed += p;
        for (user, n) in s {
            *sent.entry(user).or_default() += n;
        }
    }
    assert_eq!(processed, (clients * requests * 10) as u64);
    let s = c.get("/stats").await;
    assert_eq!(s.body["events_processed"].as_u64().unwrap(), processed);
    assert_eq!(
        s.body["ingest_requests"].as_u64().unwrap(),
        (clients * requests) as u64
    );
    for (user, n) in sent {
        let m = c.get(&format!("/users/{user}/median")).await;
        assert_eq!(m.body["count"].as_u64().unwrap(), n, "{user}");
    }
}

/// A small deterministic generator in [0, 1), so that the suite needs no extra crate.
fn fastrand_like(seed: u64) -> impl FnMut() -> f64 {
    let mut x = seed | 1;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `POST /predict`: rows or named objects, scores equal to the model's, `?version=` picks a
/// served version (unknown → 404), bad instances → 422 naming them, and no window is touched.
pub async fn predict_scores_without_touching_windows(c: &Client) {
    let rows = [[0.1f32, 0.2, 0.3], [0.9, 0.0, 0.5], [0.25, 0.75, 1.0]];
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    for (version, query) in [(2, ""), (2, "?version=2"), (1, "?version=1")] {
        let expected = Model::load(&crate::seed_onnx(version))
            .unwrap()
            .score(&flat)
            .unwrap();
        let r = c
            .post_json(&format!("/predict{query}"), &json!({"instances": rows}))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["model_version"], version.to_string());
        assert!(r.body["latency_ms"].as_f64().unwrap() >= 0.0);
        let got: Vec<f64> = r.body["predictions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_f64().unwrap())
            .collect();
        assert_eq!(got.len(), rows.len());
        for (g, e) in got.iter().zip(&expected) {
            assert!(close(*g, *e as f64), "{query}: {g} vs {e}");
        }
    }
    let named: Vec<Value> = rows
        .iter()
        .map(|r| json!({"feature_c": r[2], "feature_a": r[0], "feature_b": r[1]}))
        .collect();
    let by_name = c.post_json("/predict", &json!({"instances": named})).await;
    let by_row = c.post_json("/predict", &json!({"instances": rows})).await;
    assert_eq!(by_name.body["predictions"], by_row.body["predictions"]);

    let r = c
        .post_json("/predict?version=9", &json!({"instances": rows}))
        .await;
    assert_eq!(r.status, 404);
    assert!(
        r.error()
            .starts_with("version: seed-mlp has no version \"9\""),
        "{}",
        r.error()
    );
    let cases = [
        (
            json!({"instances": [{"feature_a": 1, "feature_b": 2, "speed": 3}]}),
            "instances[0]: missing feature_c; unknown speed",
        ),
        (
            json!({"instances": [[1, 2]]}),
            "instances[0]: expected 3 values, got 2",
        ),
        (json!({"rows": []}), "instances: missing"),
    ];
    for (body, message) in cases {
        let r = c.post_json("/predict", &body).await;
        assert_eq!(r.status, 422, "{body}");
        assert!(r.error().starts_with(message), "{}", r.error());
    }
    let r = c.post("/predict", "{\"instances\": [[NaN, 1, 2]]}").await;
    assert_eq!(r.status, 400);

    let s = c.get("/stats").await.body;
    assert_eq!(
        (s["events_processed"].as_u64(), s["users_tracked"].as_u64()),
        (Some(0), Some(0))
    );
}

/// `GET /models`: every served version, its sha256 and feature names, and which is active.
pub async fn models_lists_the_registry(c: &Client) {
    let r = c.get("/models").await;
    assert_eq!(r.status, 200);
    let models = r.body["models"].as_array().unwrap();
    assert_eq!(models.len(), 2, "{}", r.body);
    for (entry, version) in models.iter().zip([1, 2]) {
        let manifest: Value = serde_json::from_slice(&crate::read(&format!(
            "models/seed-mlp/{version}/manifest.json"
        )))
        .unwrap();
        assert_eq!(entry["name"], "seed-mlp");
        assert_eq!(entry["version"], version);
        assert_eq!(entry["sha256"], manifest["sha256"]);
        assert_eq!(entry["feature_names"], manifest["feature_names"]);
        assert_eq!(entry["input_width"], 3);
        assert_eq!(entry["active"], version == 2);
    }
}

/// One sample of a Prometheus text exposition: name, labels, value.
type Sample = (String, Vec<(String, String)>, f64);

/// Parses the Prometheus text format strictly enough to fail on anything malformed.
pub fn parse_prometheus(text: &str) -> Vec<Sample> {
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars().enumerate().all(|(i, ch)| {
                ch.is_ascii_alphabetic() || ch == '_' || ch == ':' || (i > 0 && ch.is_ascii_digit())
            })
    };
    let mut samples = Vec::new();
    let mut helped = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(comment) = line.strip_prefix('#') {
            let words: Vec<&str> = comment.split_whitespace().collect();
            if words.first() == Some(&"HELP") {
                assert!(words.len() >= 3, "a HELP line without text: {line}");
                helped.push(words[1].to_string());
            }
            if words.first() == Some(&"TYPE") {
                assert!(
                    helped.iter().any(|h| h == words[1]),
                    "no HELP before {line}"
                );
                assert!(
                    words.len() == 3 && name_ok(words[1]),
                    "bad TYPE line: {line}"
                );
                assert!(
                    ["counter", "gauge", "summary", "histogram", "untyped"].contains(&words[2]),
                    "{line}"
                );
            }
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value: {line}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value: {line}"));
        let (name, labels) = match series.split_once('{') {
            None => (series, Vec::new()),
            Some((name, rest)) => {
                let inner = rest
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("bad labels: {line}"));
                let labels = inner
                    .split(',')
                    .map(|pair| {
                        let (k, v) = pair.split_once('=').unwrap_or_else(|| panic!("{line}"));
                        let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"'));
                        assert!(name_ok(k), "bad label name in {line}");
                        (
                            k.to_string(),
                            v.unwrap_or_else(|| panic!("unquoted: {line}")).to_string(),
                        )
                    })
                    .collect();
                (name, labels)
            }
        };
        assert!(name_ok(name), "bad metric name: {line}");
        samples.push((name.to_string(), labels, value));
    }
    samples
}

/// `GET /metrics`: Prometheus text with per-route request counts and latencies, the service's
/// counters, and the time spent inside the component apart from HTTP time.
pub async fn metrics_are_prometheus_text(c: &Client) {
    let t = now();
    for i in 0..3 {
        let batch = json!({"events": [event(&format!("m-{i}"), t, [0.1, 0.2, 0.3]), event("m", t - 400.0, [0.1, 0.2, 0.3])]});
        assert_eq!(c.post_json("/ingest", &batch).await.status, 200);
    }
    c.post_json("/predict", &json!({"instances": [[0.1, 0.2, 0.3]]}))
        .await;
    c.get("/no/such/route").await;

    let (status, content_type, text) = c.get_text("/metrics").await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let samples = parse_prometheus(&text);
    let value = |name: &str, labels: &[(&str, &str)]| {
        samples
            .iter()
            .find(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|(_, _, v)| *v)
            .unwrap_or_else(|| panic!("no {name} {labels:?} in\n{text}"))
    };
    assert_eq!(
        value(
            "edgescore_http_requests_total",
            &[("route", "/ingest"), ("status", "200")]
        ),
        3.0
    );
    assert_eq!(
        value(
            "edgescore_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ),
        1.0
    );
    assert_eq!(value("edgescore_events_processed_total", &[]), 3.0);
    assert_eq!(
        value("edgescore_events_rejected_total", &[("reason", "late")]),
        3.0
    );
    assert_eq!(
        value(
            "edgescore_http_request_duration_seconds_count",
            &[("route", "/ingest")]
        ),
        3.0
    );
    assert!(
        value(
            "edgescore_component_call_seconds_count",
            &[("call", "ingest")]
        ) >= 1.0
    );
    assert_eq!(
        value(
            "edgescore_component_call_seconds_count",
            &[("call", "predict")]
        ),
        1.0
    );
    // Histograms: cumulative buckets that end in +Inf = the count, so replicas add up.
    let buckets: Vec<(f64, f64)> = samples
        .iter()
        .filter(|(n, l, _)| {
            n == "edgescore_http_request_duration_seconds_bucket"
                && l.iter().any(|(k, v)| k == "route" && v == "/ingest")
        })
        .map(|(_, l, v)| {
            let le = &l.iter().find(|(k, _)| k == "le").expect("an le label").1;
            (le.parse::<f64>().unwrap_or(f64::INFINITY), *v)
        })
        .collect();
    assert!(buckets.len() >= 10, "{text}");
    assert!(
        buckets
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
        "buckets rise: {buckets:?}"
    );
    assert_eq!(buckets.last(), Some(&(f64::INFINITY, 3.0)), "{buckets:?}");
    assert!(
        !text.contains("quantile="),
        "latencies are histograms, not summaries"
    );
    let build = samples
        .iter()
        .find(|(n, ..)| n == "edgescore_build_info")
        .unwrap_or_else(|| panic!("no edgescore_build_info in\n{text}"));
    let label = |k: &str| {
        build
            .1
            .iter()
            .find(|(lk, _)| lk == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(build.2, 1.0);
    assert_eq!(label("version").as_deref(), Some(env!("CARGO_PKG_VERSION")));
    assert_eq!(label("component_sha256").map(|s| s.len()), Some(64));
    assert!(label("wasmtime").is_some_and(|v| v.split('.').count() == 3));

    let s = c.get("/stats").await.body;
    assert_eq!(s["routes"]["/ingest"]["requests"], 3);
    assert_eq!(s["routes"]["unmatched"]["errors"], 1);
    assert!(
        s["routes"]["/ingest"]["latency_seconds"]["p99"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert_eq!(s["component_call_seconds"]["predict"]["count"], 1);
}

/// Drift: a shifted feature_a over a full window (1,000 events) raises a signal for that feature
/// alone (`/drift`, `/stats`, `/metrics`); normal traffic over another window clears it.
pub async fn drift_is_raised_and_cleared(c: &Client) {
    let t = now();
    let mut rng = fastrand_like(5);
    let mut send = async |shift: f32| {
        for _ in 0..2 {
            let events: Vec<Value> = (0..500)
                .map(|i| {
                    let f = [rng() as f32 + shift, rng() as f32, rng() as f32];
                    event(&format!("d-{}", i % 50), t, f)
                })
                .collect();
            let r = c.post_json("/ingest", &json!({"events": events})).await;
            assert_eq!(r.body["processed"], 500, "{}", r.body);
        }
    };
    send(0.0).await;
    let d = c.get("/drift").await.body;
    assert_eq!(
        (d["drifting"].as_bool(), d["events_in_window"].as_u64()),
        (Some(false), Some(1000)),
        "{d}"
    );
    assert_eq!(d["model_version"], "2");
    assert_eq!(d["features"][0]["feature"], "feature_a");

    send(1.0).await;
    let d = c.get("/drift").await.body;
    let drifting: Vec<bool> = d["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["drifting"].as_bool().unwrap())
        .collect();
    assert_eq!(drifting, vec![true, false, false], "{d}");
    let mean = d["features"][0]["rolling_mean"].as_f64().unwrap();
    assert!((mean - 1.5).abs() < 0.05, "{mean}");
    // Uniform features: σ = 1/√12, so a shift of 1.0 is ~3.5 σ.
    let shift = d["features"][0]["standardized_shift"].as_f64().unwrap();
    assert!(
        (shift - 1.0 / d["features"][0]["baseline_std"].as_f64().unwrap()).abs() < 0.2,
        "{d}"
    );
    assert!(
        d["features"][1]["standardized_shift"]
            .as_f64()
            .unwrap()
            .abs()
            < 0.5,
        "{d}"
    );
    let s = c.get("/stats").await.body;
    assert_eq!(
        s["drift"],
        json!({"drifting": true, "features": ["feature_a"]})
    );
    let (_, _, text) = c.get_text("/metrics").await;
    let gauge = parse_prometheus(&text)
        .into_iter()
        .find(|(n, l, _)| {
            n == "edgescore_feature_drift"
                && l.iter().any(|(k, v)| k == "feature" && v == "feature_a")
        })
        .map(|(_, _, v)| v);
    assert_eq!(gauge, Some(1.0), "{text}");

    send(0.0).await;
    let d = c.get("/drift").await.body;
    assert_eq!(d["drifting"], false, "{d}");
    assert_eq!(c.get("/stats").await.body["drift"]["features"], json!([]));
}

/// Polls `GET /batch/{id}` until the job is done or failed; checks progress never goes back.
pub async fn wait_for_job(c: &Client, id: &str) -> Value {
    let started = std::time::Instant::now();
    let mut last_done = 0;
    loop {
        let r = c.get(&format!("/batch/{id}")).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let done = r.body["progress"]["done"].as_u64().unwrap();
        assert!(done >= last_done, "progress went back: {}", r.body);
        last_done = done;
        match r.body["status"].as_str().unwrap() {
            "done" | "failed" => return r.body,
            "queued" | "running" => {}
            other => panic!("status {other}"),
        }
        assert!(started.elapsed().as_secs() < 60, "job {id} never finished");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// `POST /batch` → 202 + job id; the job runs to done with progress; its predictions are
/// `/predict`'s for the same instances; unknown ids are 404, bad bodies refused like predict's.
pub async fn batch_job_runs_to_done(c: &Client) {
    let mut rng = fastrand_like(9);
    let instances: Vec<[f32; 3]> = (0..3000)
        .map(|_| [rng() as f32, rng() as f32, rng() as f32])
        .collect();
    let r = c
        .post_json("/batch", &json!({"instances": instances}))
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.body["job_id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 32);
    let job = wait_for_job(c, &id).await;
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["progress"], json!({"done": 3000, "total": 3000}));
    assert_eq!(job["model_version"], "2");
    let direct = c
        .post_json("/predict", &json!({"instances": instances}))
        .await;
    assert_eq!(job["predictions"], direct.body["predictions"]);

    let v1 = c
        .post_json("/batch?version=1", &json!({"instances": [[0.1, 0.2, 0.3]]}))
        .await;
    let job = wait_for_job(c, v1.body["job_id"].as_str().unwrap()).await;
    assert_eq!(job["model_version"], "1");

    let r = c.get("/batch/0123456789abcdef0123456789abcdef").await;
    assert_eq!(r.status, 404);
    assert!(r.error().starts_with("job_id:"), "{}", r.error());
    let r = c.post_json("/batch", &json!({"instances": [[1, 2]]})).await;
    assert_eq!(r.status, 422);
    let r = c
        .post_json("/batch?version=7", &json!({"instances": [[1, 2, 3]]}))
        .await;
    assert_eq!(r.status, 404);
}

/// Twelve clients on the same three users, request r of client k sent through replica
/// `(k + r) % replicas.len()`: every write is a compare-and-swap race on a hot key (the app's
/// store), and still every accepted event is in its window, counted once, on every replica.
pub async fn hot_users_lose_nothing(replicas: &[Client]) {
    let mut clients = Vec::new();
    for k in 0..12 {
        let replicas = replicas.to_vec();
        clients.push(tokio::spawn(async move {
            let mut accepted = 0;
            for r in 0..15 {
                let events: Vec<Value> = (0..6)
                    .map(|i| json!({"user_id": format!("hot-{}", (k + r + i) % 3), "timestamp": now(), "features": [0.1 * i as f32, 0.5, 0.9]}))
                    .collect();
                let c = &replicas[(k + r) % replicas.len()];
                let answer = c.post_json("/ingest", &json!({"events": events})).await;
                assert_eq!(answer.status, 200, "{}", answer.body);
                accepted += answer.body["processed"].as_u64().unwrap();
            }
            accepted
        }));
    }
    let mut total = 0;
    for c in clients {
        total += c.await.unwrap();
    }
    assert_eq!(total, 12 * 15 * 6);
    for c in replicas {
        let mut in_windows = 0;
        for u in 0..3 {
            let m = c.get(&format!("/users/hot-{u}/median")).await;
            in_windows += m.body["count"].as_u64().unwrap();
        }
        assert_eq!(in_windows, total);
        let s = c.get("/stats").await.body;
        assert_eq!(s["events_processed"].as_u64(), Some(total));
        assert_eq!(s["ingest_requests"], 12 * 15);
        assert_eq!(s["events_in_windows"].as_u64(), Some(total));
        assert_eq!(s["users_tracked"], 3);
        // The race was real: swaps conflicted and were retried (and nothing was lost, above).
        assert!(s["cas_retries"].as_u64().unwrap() > 0, "{s}");
    }
}
