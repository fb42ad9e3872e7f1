//! `edgescore serve`, `edgescore serve-app` and `edgescore loadgen` as processes: configuration
//! from the environment, one JSON log line per request, the loadgen's own check of the medians,
//! bodies limited while they stream, and a graceful exit on SIGTERM that finishes the requests in
//! flight.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

mod support;

use support::{Served, edgescore};

/// Sends `POST /ingest` with a chunked body of endless `[` bytes, 64 KiB at a time, until the
/// server answers (or 64 MiB are sent); returns the status line, the body and the bytes sent.
fn endless_body(address: &str) -> (String, String, usize) {
    let stream = TcpStream::connect(address).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reading = {
        let answered = answered.clone();
        let mut stream = stream;
        std::thread::spawn(move || {
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer);
            answered.store(true, std::sync::atomic::Ordering::SeqCst);
            String::from_utf8_lossy(&answer).into_owned()
        })
    };
    write!(
        writer,
        "POST /ingest HTTP/1.1\r\nHost: {address}\r\ncontent-type: application/json\r\n\
         transfer-encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let chunk = vec![b'['; 64 << 10];
    let mut sent = 0;
    while sent < 64 << 20 && !answered.load(std::sync::atomic::Ordering::SeqCst) {
        let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
        if writer.write_all(&framed).is_err() {
            break; // the server closed the connection after answering
        }
        sent += chunk.len();
    }
    let _ = writer.write_all(b"0\r\n\r\n");
    let answer = reading.join().unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    (
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
        sent,
    )
}

/// A body far over the limit is answered 413 as soon as the limit is passed: the server stops
/// reading long before the client would stop sending (it never buffers the body whole).
#[test]
fn bodies_are_limited_while_they_stream() {
    for command in [&["serve"][..], &["serve-app"]] {
        let served = Served::start_with(command, &[("EDGESCORE_MAX_BODY_BYTES", "1048576")]);
        let (status, body, sent) = endless_body(&served.address);
        assert!(status.contains(" 413 "), "{command:?}: {status} {body}");
        assert!(
            body.contains("body: larger than the limit of 1048576 bytes"),
            "{command:?}: {body}"
        );
        // 1 MiB read, a few MiB in socket buffers: far from the 64 MiB a buffering server takes.
        assert!(
            sent < 16 << 20,
            "{command:?}: {sent} bytes sent before the answer"
        );
    }
}

/// SIGTERM while a request is in flight (its handler is reading a body not yet sent): the
/// server stops accepting, the request finishes and is answered, the process exits 0.
#[test]
fn sigterm_finishes_the_requests_in_flight() {
    for command in [&["serve"][..], &["serve-app"]] {
        let mut served = Served::start_with(command, &[]);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let body = format!(
            r#"{{"events":[{{"user_id":"drain","timestamp":{t},"features":[0.1,0.2,0.3]}}]}}"#
        );
        let mut stream = TcpStream::connect(&served.address).unwrap();
        write!(
            stream,
            "POST /ingest HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n\
             content-length: {}\r\nexpect: 100-continue\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .unwrap();
        // `100 Continue` comes when the handler starts reading the body: the request is in
        // flight from then on.
        let mut continued = [0u8; 25];
        stream.read_exact(&mut continued).unwrap();
        assert!(
            String::from_utf8_lossy(&continued).starts_with("HTTP/1.1 100 Continue"),
            "{command:?}"
        );
        // SAFETY: sending a signal to our own child process.
        unsafe {
            libc::kill(served.child.id() as i32, libc::SIGTERM);
        }
        served.wait_for(
            |l| l["message"] == "shutting down: finishing requests in flight",
            30,
        );
        stream.write_all(body.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{command:?}: {answer}");
        assert!(answer.contains(r#""processed":1"#), "{command:?}: {answer}");
        served.wait_for(|l| l["message"] == "stopped", 30);
        let status = served.child.wait().unwrap();
        assert!(status.success(), "{command:?}: {status}");
    }
}

/// A client that sends its request head or body too slowly is cut off: an unfinished head
/// closes the connection, an unfinished body gets 408 (with a JSON error), both after their
/// timeouts rather than holding a connection forever.
#[test]
fn slow_clients_are_cut_off() {
    let served = Served::start(&[
        ("EDGESCORE_HEADER_TIMEOUT_MS", "300"),
        ("EDGESCORE_BODY_TIMEOUT_MS", "300"),
    ]);
    // Far longer than either timeout: a server that waits for the client fails the test.
    let patience = Some(Duration::from_secs(30));
    let mut head = TcpStream::connect(&served.address).unwrap();
    head.set_read_timeout(patience).unwrap();
    write!(head, "POST /ingest HTTP/1.1\r\nHost: x\r\n").unwrap();
    let mut answer = Vec::new();
    head.read_to_end(&mut answer)
        .expect("the server closed the connection of an unfinished head");

    let mut body = TcpStream::connect(&served.address).unwrap();
    body.set_read_timeout(patience).unwrap();
    write!(
        body,
        "POST /ingest HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n\
         content-length: 100\r\nConnection: close\r\n\r\n{{\"events\":["
    )
    .unwrap();
    let mut answer = String::new();
    body.read_to_string(&mut answer)
        .expect("the server answered an unfinished body");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("body: not received within 0.3 s"),
        "{answer}"
    );
}

#[test]
fn serve_takes_env_config_logs_each_request_and_stops_on_sigterm() {
    let mut served = Served::start(&[
        ("EDGESCORE_WINDOW_SECONDS", "120"),
        ("EDGESCORE_SHARDS", "2"),
    ]);
    let out = edgescore()
        .args([
            "loadgen",
            "--duration",
            "1",
            "--events-per-sec",
            "2000",
            "--verify",
            "25",
        ])
        .args(["--concurrency", "8", "--users", "100", "--json", "--url"])
        .arg(format!("http://{}", served.address))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let sent = report["events_sent"].as_u64().unwrap();
    assert!(sent >= 1000, "{report}");
    assert_eq!(report["events_accepted"].as_u64(), Some(sent));
    assert_eq!(report["http_errors"], 0);
    assert_eq!(report["verify"]["users_checked"], 25);
    assert_eq!(report["verify"]["mismatches"], 0);

    let (status, stats) = served.get("/stats");
    assert_eq!(status, 200);
    assert_eq!(stats["window_seconds"], 120.0);
    assert_eq!(stats["shards"], 2);
    assert_eq!(stats["events_processed"].as_u64(), Some(sent));
    assert_eq!(stats["median_requests"], 25);

    let line = served.wait_for(|l| l["route"] == "/ingest", 10);
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["method"], "POST");
    assert_eq!(line["status"], 200);
    assert!(line["latency_ms"].as_f64().unwrap() > 0.0);
    assert!(line["timestamp"].is_string());
    let id = line["request_id"].as_str().unwrap_or_default();
    assert_eq!(id.len(), 36, "a made request id in the log line: {line}");

    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(served.child.id() as i32, libc::SIGTERM);
    }
    served.wait_for(|l| l["message"] == "stopped", 30);
    let status = served.child.wait().unwrap();
    assert!(status.success(), "{status}");
}

#[test]
fn bad_configuration_is_one_line_and_a_non_zero_exit() {
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 3] = [
        (
            &["--window-seconds=-1"],
            &[],
            "window_seconds: must be a finite number above 0",
        ),
        (
            &[],
            &[("EDGESCORE_SHARDS", "0")],
            "shards: must be at least 1",
        ),
        (&["--log", "info,[[["], &[], "log level:"),
    ];
    for (args, env, message) in cases {
        let out = edgescore()
            .args(["serve", "--port", "0"])
            .args(args)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    let out = edgescore()
        .args(["loadgen", "--url", "http://127.0.0.1:9", "--duration", "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("the service does not answer"), "{stderr}");
}

/// SIGHUP rescans `EDGESCORE_MODELS_DIR`: a version dropped in becomes the active one.
#[test]
fn sighup_reloads_the_registry() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/seed-mlp");
    let dir = tempfile::tempdir().unwrap();
    let add = |version: &str| {
        let to = dir.path().join("seed-mlp").join(version);
        std::fs::create_dir_all(&to).unwrap();
        for file in ["manifest.json", "model.onnx"] {
            std::fs::copy(repo.join(version).join(file), to.join(file)).unwrap();
        }
    };
    add("1");
    let mut served = Served::start(&[
        ("EDGESCORE_MODELS_DIR", dir.path().to_str().unwrap()),
        ("EDGESCORE_SHARDS", "2"),
    ]);
    assert_eq!(served.get("/stats").1["model"]["version"], 1);

    add("2");
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(served.child.id() as i32, libc::SIGHUP);
    }
    let line = served.wait_for(|l| l["message"] == "models reloaded", 60);
    assert_eq!(line["swapped"], true);
    assert_eq!(line["active"], 2);
    let (status, models) = served.get("/models");
    assert_eq!(status, 200);
    let active: Vec<_> = models["models"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["active"] == true)
        .map(|m| m["version"].clone())
        .collect();
    assert_eq!(active, [serde_json::json!(2)]);
    assert_eq!(served.get("/stats").1["model"]["version"], 2);
}
