//! `edgescore serve-app`'s default store, a SQLite file in the data directory like `spin up`'s:
//! what was acknowledged survives SIGKILL under load (`--durability fsync`), and a disk with no
//! room answers 503 with nothing of the request half-written. Every test runs the real binary.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::events::{Event, body, check_windows, unix_now};
use support::{Served, post};

fn serve_app_on(dir: &Path) -> Served {
    let env = [
        ("EDGESCORE_DATA_DIR", dir.to_str().unwrap()),
        ("EDGESCORE_DURABILITY", "fsync"),
    ];
    Served::start_with(&["serve-app"], &env)
}

type ByUser = BTreeMap<String, Vec<Event>>;

/// What concurrent clients saw: acknowledged (200), turned away (503, nothing recorded), and in
/// doubt (no answer: the process died with it in flight).
#[derive(Default)]
struct Seen {
    acked: Mutex<ByUser>,
    refused: AtomicU64,
    in_doubt: Mutex<HashMap<String, Vec<Event>>>,
}

/// `clients` threads, each ingesting batches of 10 events over its own 20 users until `stop` is
/// set or its connection fails; any answer but 200 or 503 fails the test.
fn load(
    address: &str,
    clients: u64,
    seen: &Arc<Seen>,
    stop: &Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<u64>> {
    let base = unix_now() - 30.0;
    (0..clients)
        .map(|client| {
            let (address, seen, stop) = (address.to_string(), seen.clone(), stop.clone());
            std::thread::spawn(move || {
                for n in 0u64.. {
                    if stop.load(Ordering::Relaxed) {
                        return n;
                    }
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
                            let mut acked = seen.acked.lock().unwrap();
                            for e in events {
                                acked.entry(e.user.clone()).or_default().push(e);
                            }
                        }
                        Ok((503, head, answer)) => {
                            assert_eq!(answer["processed"], 0, "{answer}");
                            assert!(answer["error"].is_string(), "{answer}");
                            assert!(head.to_ascii_lowercase().contains("retry-after"), "{head}");
                            seen.refused.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok((status, _, answer)) => panic!("{status} {answer}"),
                        Err(_) => {
                            // Each user's part of this request is in its window whole or not
                            // at all (one compare-and-swap per user).
                            let mut in_doubt = seen.in_doubt.lock().unwrap();
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
        .collect()
}

/// Waits until `seen` holds `events` acknowledged events, failing with `why` after `seconds`.
fn wait_until_acked(seen: &Seen, events: usize, seconds: u64, why: &str) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while seen
        .acked
        .lock()
        .unwrap()
        .values()
        .map(Vec::len)
        .sum::<usize>()
        < events
    {
        assert!(Instant::now() < deadline, "{why}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Stops the clients of [`load`] and waits for them.
fn stop_load(stop: &AtomicBool, clients: Vec<std::thread::JoinHandle<u64>>) {
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().unwrap();
    }
}

/// Clients ingest concurrently; the process is SIGKILLed mid-load and restarted on the same
/// directory: every acknowledged event is in its user's window exactly once, with the exact
/// median, and the counters hold no event twice.
#[test]
fn kill_9_under_load_loses_no_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve_app_on(dir.path());
    let seen = Arc::new(Seen::default());
    let stop = Arc::new(AtomicBool::new(false));
    let clients = load(&served.address, 8, &seen, &stop);
    wait_until_acked(&seen, 2_000, 60, "too few acknowledged under load");
    served.kill();
    for client in clients {
        client.join().unwrap();
    }
    assert_eq!(
        seen.refused.load(Ordering::Relaxed),
        0,
        "nothing turned away"
    );

    let restarted = serve_app_on(dir.path());
    let acked = seen.acked.lock().unwrap();
    let in_doubt = seen.in_doubt.lock().unwrap();
    let held = check_windows(&restarted, &acked, &in_doubt);
    // A request cut short by the kill may have written windows and not yet its counters: the
    // counters hold at most what the windows hold, and at least what was acknowledged.
    let acked_events = acked.values().map(Vec::len).sum::<usize>() as u64;
    let (_, stats) = restarted.get("/stats");
    for counter in ["events_processed", "events_in_windows"] {
        let n = stats[counter].as_u64().unwrap();
        assert!(
            (acked_events..=held).contains(&n),
            "{counter} {n}: {acked_events} acknowledged, {held} in the windows"
        );
    }
}

/// A tmpfs of `size`, unmounted when dropped (the test runs as root, as CI does).
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount(8)");
        assert!(
            mounted.success(),
            "this test mounts a {size} tmpfs and needs root for it"
        );
        Tmpfs(dir)
    }

    fn path(&self) -> PathBuf {
        self.0.path().to_path_buf()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.0.path())
            .status();
    }
}

/// Clients ingest while the disk fills up: once it is full, ingest answers 503 (a JSON error,
/// Retry-After), and the windows hold exactly the acknowledged events — nothing of a request
/// turned away stays half-written. With room again, ingest is accepted again, and a restart
/// holds all of it.
#[test]
fn a_full_disk_answers_503_with_nothing_half_written() {
    let disk = Tmpfs::mount("24m");
    let dir = disk.path().join("data");
    let served = serve_app_on(&dir);
    let seen = Arc::new(Seen::default());
    let stop = Arc::new(AtomicBool::new(false));
    let clients = load(&served.address, 4, &seen, &stop);
    std::thread::sleep(Duration::from_millis(500));
    // Fill what is left of the disk, under the load.
    let filler = disk.path().join("filler");
    let _ = std::fs::write(&filler, vec![0u8; 32 << 20]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.refused.load(Ordering::Relaxed) < 50 {
        assert!(
            Instant::now() < deadline,
            "a full disk never turned ingest away"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    stop_load(&stop, clients);
    let acked = std::mem::take(&mut *seen.acked.lock().unwrap());
    assert!(
        !acked.is_empty(),
        "nothing was acknowledged before the disk filled"
    );
    assert!(seen.in_doubt.lock().unwrap().is_empty());
    check_windows(&served, &acked, &HashMap::new());

    // Room again: within a few seconds, ingest is accepted again.
    std::fs::remove_file(&filler).unwrap();
    let more = Arc::new(Seen::default());
    let stop = Arc::new(AtomicBool::new(false));
    let clients = load(&served.address, 1, &more, &stop);
    wait_until_acked(
        &more,
        100,
        20,
        "room again, but ingest is still turned away",
    );
    stop_load(&stop, clients);
    served.kill();
    let restarted = serve_app_on(&dir);
    let mut all = acked;
    for (user, events) in std::mem::take(&mut *more.acked.lock().unwrap()) {
        all.entry(user).or_default().extend(events);
    }
    check_windows(&restarted, &all, &HashMap::new());
}

/// The store is a SQLite file in the data directory, like `spin up`'s: windows survive a SIGKILL
/// and a restart.
#[test]
fn the_store_is_a_file_in_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve_app_on(dir.path());
    let seen = Arc::new(Seen::default());
    let stop = Arc::new(AtomicBool::new(false));
    let clients = load(&served.address, 1, &seen, &stop);
    std::thread::sleep(Duration::from_millis(300));
    stop_load(&stop, clients);
    served.kill();
    assert!(dir.path().join("app-store.sqlite").exists());
    let restarted = serve_app_on(dir.path());
    let acked = seen.acked.lock().unwrap();
    let held = check_windows(&restarted, &acked, &HashMap::new());
    assert_eq!(held as usize, acked.values().map(Vec::len).sum::<usize>());
    assert!(held > 0);
}
