//! `edgescore serve` and `edgescore loadgen` as processes: configuration from the environment,
//! one JSON log line per request, the loadgen's own check of the medians, and a graceful exit on
//! SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

fn edgescore() -> Command {
    Command::new(env!("CARGO_BIN_EXE_edgescore"))
}

/// A running `edgescore serve` and the log lines it has written so far.
struct Served {
    child: Child,
    address: String,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Served {
    fn start(env: &[(&str, &str)]) -> Served {
        let mut child = edgescore()
            .args(["serve", "--port", "0", "--log-format", "json"])
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut served = Served {
            child,
            address: String::new(),
            lines,
            seen: Vec::new(),
        };
        // The first start may compile the component (~15 s in a debug host).
        let listening = served.wait_for(|l| l["message"] == "listening", 120);
        served.address = listening["address"].as_str().unwrap().to_string();
        served
    }

    fn wait_for(&mut self, what: impl Fn(&Value) -> bool, seconds: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no such log line; seen: {:#?}", self.seen));
            self.seen.push(line.clone());
            let value: Value = serde_json::from_str(&line)
                .unwrap_or_else(|_| panic!("a log line that is not JSON: {line}"));
            if what(&value) {
                return value;
            }
        }
    }

    /// A plain HTTP/1.1 GET; returns the status and the JSON body.
    fn get(&self, path: &str) -> (u16, Value) {
        let mut stream = TcpStream::connect(&self.address).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.address
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let status = answer[9..12].parse().unwrap();
        let body = answer.split("\r\n\r\n").nth(1).unwrap_or("");
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
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
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/seed-mlp");
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
