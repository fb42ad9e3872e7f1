//! `edgescore serve --data-dir`: what was acknowledged survives SIGKILL, SIGTERM, a torn log
//! tail and a corrupt snapshot; a full disk answers 503 and acknowledges nothing; a data
//! directory serves one process at a time; the active model version survives a restart. Every
//! test runs the real binary.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::events::{Event, body, check_windows, unix_now};
use support::{Served, post};

/// `edgescore serve` on `dir` with 2 shards, checkpointing every 100 ms of load.
fn serve_on(dir: &Path, extra: &[(&str, &str)]) -> Served {
    let mut env = vec![
        ("EDGESCORE_DATA_DIR", dir.to_str().unwrap()),
        ("EDGESCORE_SHARDS", "2"),
        ("EDGESCORE_CHECKPOINT_INTERVAL_MS", "100"),
    ];
    env.extend_from_slice(extra);
    Served::start(&env)
}

/// Clients ingest concurrently, each recording what was acknowledged; the process is SIGKILLed
/// mid-load and restarted on the same directory: every acknowledged event is in its user's
/// window (exact median), nothing is counted twice, and snapshots were taken during the load.
#[test]
fn kill_9_under_load_loses_no_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve_on(dir.path(), &[]);
    let address = served.address.clone();
    let acked: Arc<Mutex<BTreeMap<String, Vec<Event>>>> = Arc::default();
    let in_doubt: Arc<Mutex<HashMap<String, Vec<Event>>>> = Arc::default();
    let base = unix_now() - 30.0;
    let clients: Vec<_> = (0..8u64)
        .map(|client| {
            let (address, acked, in_doubt) = (address.clone(), acked.clone(), in_doubt.clone());
            std::thread::spawn(move || {
                for n in 0u64.. {
                    // 10 events over this client's 20 users, timestamps rising.
                    let events: Vec<Event> = (0..10)
                        .map(|i| {
                            let seq = n * 10 + i;
                            let user = format!("c{client}-u{}", seq % 20);
                            Event::new(user, base + seq as f64 * 1e-3, client * 1_000_000 + seq)
                        })
                        .collect();
                    match post(&address, "/ingest", &body(&events)) {
                        Ok((200, _, answer)) => {
                            assert_eq!(answer["processed"], 10, "{answer}");
                            let mut acked = acked.lock().unwrap();
                            for e in events {
                                acked.entry(e.user.clone()).or_default().push(e);
                            }
                        }
                        Ok((status, _, answer)) => panic!("{status} {answer}"),
                        Err(_) => {
                            // The process died with this request in flight: it may or may
                            // not have been recorded, each shard's part whole or not at all.
                            let mut in_doubt = in_doubt.lock().unwrap();
                            for e in events {
                                in_doubt.entry(e.user.clone()).or_default().push(e);
                            }
                            return n;
                        }
                    }
                }
                unreachable!()
            })
        })
        .collect();
    // Load until several snapshots were written (checkpoints every 100 ms of load).
    let deadline = Instant::now() + Duration::from_secs(60);
    while served.get("/stats").1["checkpoints"].as_u64().unwrap() < 6 {
        assert!(Instant::now() < deadline, "no checkpoints under load");
        std::thread::sleep(Duration::from_millis(50));
    }
    served.kill();
    let requests: u64 = clients.into_iter().map(|c| c.join().unwrap()).sum();
    assert!(requests > 50, "only {requests} requests before the kill");

    let restarted = serve_on(dir.path(), &[]);
    let acked = acked.lock().unwrap();
    let in_doubt = in_doubt.lock().unwrap();
    let held = check_windows(&restarted, &acked, &in_doubt);
    let (_, stats) = restarted.get("/stats");
    assert_eq!(
        stats["events_processed"], held,
        "counted once each: {stats}"
    );
    assert_eq!(stats["events_in_windows"], held);
    let snapshots = files(dir.path(), "snapshot-");
    assert!(!snapshots.is_empty(), "no snapshot was written");
}

/// The files under `dir` whose name starts with `prefix`.
fn files(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for shard in std::fs::read_dir(dir.join("shards")).unwrap() {
        for f in std::fs::read_dir(shard.unwrap().path()).unwrap() {
            let path = f.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            // A `.tmp` is a write that a SIGKILL cut short (the server ignores it).
            if name.starts_with(prefix) && !name.ends_with(".tmp") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Ingests `batches` batches of 10 events over 30 users; returns what was acknowledged.
fn ingest(served: &Served, batches: u64, seed: u64) -> BTreeMap<String, Vec<Event>> {
    let base = unix_now() - 20.0;
    let mut acked: BTreeMap<String, Vec<Event>> = BTreeMap::new();
    for n in 0..batches {
        let events: Vec<Event> = (0..10)
            .map(|i| {
                let seq = n * 10 + i;
                let ts = base + (seed * 1000 + seq) as f64 * 1e-3;
                Event::new(format!("u{}", seq % 30), ts, seed * 1_000_000 + seq)
            })
            .collect();
        let (status, _, answer) = served.post("/ingest", &body(&events));
        assert_eq!(status, 200, "{answer}");
        for e in events {
            acked.entry(e.user.clone()).or_default().push(e);
        }
    }
    acked
}

/// SIGTERM, then a restart: the same windows, and the counters keep counting.
#[test]
fn sigterm_restart_keeps_every_window_and_the_counters() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve_on(dir.path(), &[]);
    let acked = ingest(&served, 40, 0);
    served.get("/users/u1/median");
    let (_, before) = served.get("/stats");
    served.terminate();

    let restarted = serve_on(dir.path(), &[]);
    let held = check_windows(&restarted, &acked, &HashMap::new());
    assert_eq!(held, 400);
    let (_, after) = restarted.get("/stats");
    for counter in ["events_processed", "ingest_requests", "events_in_windows"] {
        assert_eq!(after[counter], before[counter], "{counter}");
    }
    // Counted over both runs: the one before and the ones check_windows made.
    assert!(
        after["median_requests"].as_u64().unwrap() > before["median_requests"].as_u64().unwrap()
    );
    assert_eq!(after["watermark"], before["watermark"]);
    // And they go on counting.
    ingest(&restarted, 1, 1);
    assert_eq!(restarted.get("/stats").1["events_processed"], 410);
}

/// A log whose last record a crash cut short: cut at its last whole record, and said so.
#[test]
fn a_torn_tail_is_cut_and_logged() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve_on(
        dir.path(),
        &[("EDGESCORE_CHECKPOINT_INTERVAL_MS", "3600000")],
    );
    let acked = ingest(&served, 20, 0);
    served.kill();
    // Half a record more at the end of every shard's newest log.
    for shard in ["0", "1"] {
        let log = newest(dir.path(), shard, "log-");
        let mut bytes = std::fs::read(&log).unwrap();
        let whole = bytes.len();
        bytes.extend_from_slice(&[200, 0, 0, 0, 1, 2, 3, 4, 5, 6]);
        std::fs::write(&log, &bytes).unwrap();
        assert!(std::fs::metadata(&log).unwrap().len() > whole as u64);
    }
    let restarted = serve_on(dir.path(), &[]);
    assert!(
        restarted
            .seen
            .iter()
            .any(|l| l.contains("the log's tail was not a whole record")),
        "{:#?}",
        restarted.seen
    );
    check_windows(&restarted, &acked, &HashMap::new());
    // The cut is durable: more records follow the last whole one, and read back.
    let more = ingest(&restarted, 5, 1);
    restarted.kill();
    let again = serve_on(dir.path(), &[]);
    let mut all = acked;
    for (user, events) in more {
        all.entry(user).or_default().extend(events);
    }
    check_windows(&again, &all, &HashMap::new());
}

fn newest(dir: &Path, shard: &str, prefix: &str) -> PathBuf {
    let folder = dir.join("shards").join(shard);
    let mut found: Vec<PathBuf> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|f| f.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect();
    found.sort();
    found
        .pop()
        .unwrap_or_else(|| panic!("no {prefix} in {}", folder.display()))
}

/// A corrupt newest snapshot: the previous one and the longer log are used instead, with an
/// error in the log. When nothing valid remains, the process refuses to start, naming the file.
#[test]
fn a_corrupt_snapshot_falls_back_and_nothing_valid_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve_on(dir.path(), &[]);
    let mut acked = BTreeMap::new();
    // Batches with pauses, so that several checkpoints (100 ms apart) cut the load.
    for round in 0..8 {
        for (user, events) in ingest(&served, 10, round) {
            acked.entry(user).or_insert_with(Vec::new).extend(events);
        }
        std::thread::sleep(Duration::from_millis(150));
    }
    served.terminate();
    let snapshot = newest(dir.path(), "0", "snapshot-");
    let mut bytes = std::fs::read(&snapshot).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&snapshot, &bytes).unwrap();

    let restarted = serve_on(dir.path(), &[]);
    assert!(
        restarted
            .seen
            .iter()
            .any(|l| l.contains("a snapshot cannot be used") && l.contains("falling back")),
        "{:#?}",
        restarted.seen
    );
    check_windows(&restarted, &acked, &HashMap::new());
    restarted.kill();

    // Every snapshot of shard 0 corrupt and the log before them gone: nothing to start from.
    let folder = dir.path().join("shards/0");
    let snapshots: Vec<PathBuf> = files(dir.path(), "snapshot-")
        .into_iter()
        .filter(|p| p.starts_with(&folder))
        .collect();
    for s in &snapshots {
        std::fs::write(s, b"not a snapshot").unwrap();
    }
    std::fs::remove_file(folder.join("log-000000000000")).ok();
    let error = refused(dir.path());
    let named = snapshots.last().unwrap().display().to_string();
    assert!(error.contains(&named), "{error}");
    assert!(error.contains("no older snapshot"), "{error}");
}

/// `edgescore serve` on `dir`, expected to refuse to start: its one-line error.
fn refused(dir: &Path) -> String {
    let output = support::edgescore()
        .args(["serve", "--port", "0", "--shards", "2"])
        .env("EDGESCORE_DATA_DIR", dir)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    stderr
}

/// A second process on a directory in use refuses to start, naming the holder.
#[test]
fn two_processes_never_share_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let first = serve_on(dir.path(), &[]);
    let error = refused(dir.path());
    assert!(
        error.contains("in use by another edgescore process"),
        "{error}"
    );
    assert!(
        error.contains(&format!("pid {}", first.child.id())),
        "{error}"
    );
    // The first one goes on serving.
    assert_eq!(first.get("/ready").0, 200);
}

/// A disk with no room: ingest answers 503 with a JSON error and acknowledges nothing, /ready is
/// 503; with room again both recover, and a restart holds exactly what was acknowledged.
#[test]
fn a_full_disk_answers_503_and_acknowledges_nothing() {
    let mount = tempfile::tempdir().unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(mount.path())
        .status()
        .expect("mount(8)");
    assert!(
        mounted.success(),
        "this test mounts a 4 MiB tmpfs and needs root for it"
    );
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mount.path().to_path_buf());
    let dir = mount.path().join("data");
    let served = serve_on(&dir, &[("EDGESCORE_CHECKPOINT_INTERVAL_MS", "3600000")]);
    let mut acked = ingest(&served, 10, 0);
    // Fill what is left of the disk.
    let filler = mount.path().join("filler");
    let _ = std::fs::write(&filler, vec![0u8; 8 << 20]);
    // The logs run ahead of their records in zeros (up to 1 MiB each), and records go into that
    // room first: ingest until it is used up. One user per request, so that one shard takes it.
    let base = unix_now() - 10.0;
    let (head, answer) = (0..500u64)
        .find_map(|n| {
            let user = format!("{:0>200}", n % 30);
            let events: Vec<Event> = (0..200)
                .map(|i| {
                    Event::new(
                        user.clone(),
                        base + (n * 200 + i) as f64 * 1e-5,
                        500_000 + n * 200 + i,
                    )
                })
                .collect();
            let (status, head, answer) = served.post("/ingest", &body(&events));
            match status {
                200 => {
                    acked.entry(user).or_default().extend(events);
                    None
                }
                503 => Some((head, answer)),
                other => panic!("{other} {answer}"),
            }
        })
        .expect("a full disk turns ingest away");
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 1"),
        "{head}"
    );
    let error = answer["error"].as_str().unwrap();
    assert_eq!(answer["processed"], 0, "{answer}");
    assert!(error.contains("writing its log failed"), "{error}");
    assert!(
        error.contains("nothing of this request was acknowledged"),
        "{error}"
    );
    assert_eq!(served.get("/ready").0, 503);
    check_windows(&served, &acked, &HashMap::new());

    std::fs::remove_file(&filler).unwrap();
    assert_eq!(served.get("/ready").0, 200);
    let more = ingest(&served, 2, 1);
    served.kill();
    let restarted = serve_on(&dir, &[]);
    let mut all = acked;
    for (user, events) in more {
        all.entry(user).or_default().extend(events);
    }
    check_windows(&restarted, &all, &HashMap::new());
    drop(restarted);
}

/// A hot reload's version is served again after a restart, even when the registry has gained a
/// higher version meanwhile (it is served after a reload, not before).
#[test]
fn the_active_model_version_survives_a_restart() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/seed-mlp");
    let models = tempfile::tempdir().unwrap();
    let add = |from: &str, to: u32| {
        let folder = models.path().join("seed-mlp").join(to.to_string());
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::copy(
            repo.join(from).join("model.onnx"),
            folder.join("model.onnx"),
        )
        .unwrap();
        let manifest = std::fs::read_to_string(repo.join(from).join("manifest.json")).unwrap();
        let mut manifest: Value = serde_json::from_str(&manifest).unwrap();
        manifest["version"] = to.into();
        std::fs::write(folder.join("manifest.json"), manifest.to_string()).unwrap();
    };
    add("1", 1);
    let dir = tempfile::tempdir().unwrap();
    let env = [("EDGESCORE_MODELS_DIR", models.path().to_str().unwrap())];
    let served = serve_on(dir.path(), &env);
    let v1 = ingest(&served, 3, 0);
    add("2", 2);
    let (status, _, outcome) = served.post("/models/reload", "");
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["active"]["version"], 2);
    let v2 = ingest(&served, 3, 1);
    served.terminate();
    add("2", 3);

    let restarted = serve_on(dir.path(), &env);
    assert_eq!(restarted.get("/stats").1["model"]["version"], 2);
    let by_version = restarted.get("/stats").1["events_by_model_version"].clone();
    let count = |m: &BTreeMap<String, Vec<Event>>| m.values().map(Vec::len).sum::<usize>();
    assert_eq!(by_version["1"], count(&v1), "{by_version}");
    assert_eq!(by_version["2"], count(&v2), "{by_version}");
}

/// Batch jobs are kept: a finished one is served again after a SIGKILL, and one that had not
/// finished is scored after the restart.
#[test]
fn batch_jobs_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("EDGESCORE_BATCH_CHUNK", "8")];
    let served = serve_on(dir.path(), &env);
    let instances = |n: usize, seed: f32| -> Vec<Vec<f32>> {
        (0..n)
            .map(|i| vec![(i as f32 * 0.37 + seed) % 1.0, 0.5, seed])
            .collect()
    };
    let submit = |served: &Served, rows: &[Vec<f32>]| -> String {
        let (status, _, answer) = served.post("/batch", &json!({ "instances": rows }).to_string());
        assert_eq!(status, 202, "{answer}");
        answer["job_id"].as_str().unwrap().to_string()
    };
    let wait_done = |served: &Served, id: &str| -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let (status, job) = served.get(&format!("/batch/{id}"));
            assert_eq!(status, 200, "{job}");
            if job["status"] == "done" {
                return job;
            }
            assert_ne!(job["status"], "failed", "{job}");
            assert!(Instant::now() < deadline, "{job}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let small = instances(20, 0.1);
    let finished = submit(&served, &small);
    let before = wait_done(&served, &finished);
    let large = instances(10_000, 0.2);
    let unfinished = submit(&served, &large);
    served.kill();

    let restarted = serve_on(dir.path(), &env);
    assert_eq!(wait_done(&restarted, &finished), before);
    let job = wait_done(&restarted, &unfinished);
    let predictions: Vec<f64> = job["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_f64().unwrap())
        .collect();
    assert_eq!(predictions.len(), large.len());
    // Against /predict of the same instances (a few, to f32 precision).
    let (status, _, direct) = restarted.post(
        "/predict",
        &json!({ "instances": &large[..50] }).to_string(),
    );
    assert_eq!(status, 200, "{direct}");
    for (i, p) in direct["predictions"].as_array().unwrap().iter().enumerate() {
        let want = p.as_f64().unwrap();
        assert!(
            (predictions[i] - want).abs() <= 1e-6 * want.abs().max(1.0),
            "{i}"
        );
    }
}
