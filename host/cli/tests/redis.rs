//! `edgescore serve-app --runtime-config-file` on Redis, as real processes over a real
//! redis-server: a replica SIGKILLed under load and restarted loses no acknowledged event, and
//! Redis SIGKILLed under load (append-only, synced on every write) answers 503s, then the
//! replicas recover by themselves with every acknowledged event kept and nothing of a 503 kept.
//! (Taking back a request cut off mid-write is tested deterministically in `tests/redis.rs`.)

mod support;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use edgescore_test_redis::RedisServer;
use support::events::{Event, body, check_windows, unix_now};
use support::{Served, post};

type ByUser = Arc<Mutex<BTreeMap<String, Vec<Event>>>>;

/// A replica of the app on `redis`, with the runtime config in `dir`.
fn replica(dir: &Path, redis: &RedisServer) -> Served {
    let file = dir.join("runtime-config.toml");
    let config = format!(
        "[key_value_store.default]\ntype = \"redis\"\nurl = \"{}\"\n",
        redis.url()
    );
    std::fs::write(&file, config).unwrap();
    let data_dir = dir.to_str().unwrap();
    Served::start_with(
        &["serve-app", "--runtime-config-file", file.to_str().unwrap()],
        &[("EDGESCORE_DATA_DIR", data_dir)],
    )
}

/// What the clients saw: events acknowledged (200), refused whole (503), in doubt (the answer
/// lost with the process), by user; and answers by status.
#[derive(Default, Clone)]
struct Outcomes {
    acked: ByUser,
    refused: ByUser,
    in_doubt: ByUser,
    statuses: Arc<Mutex<BTreeMap<u16, u64>>>,
}

impl Outcomes {
    fn enter(map: &ByUser, events: Vec<Event>) {
        let mut map = map.lock().unwrap();
        for e in events {
            map.entry(e.user.clone()).or_default().push(e);
        }
    }

    fn status(&self, status: u16) -> u64 {
        self.statuses
            .lock()
            .unwrap()
            .get(&status)
            .copied()
            .unwrap_or(0)
    }
}

/// A client posting batches of 10 events of its own 20 users to the replicas in `addresses`
/// (the one of request n: n % len), until `stop`; an answer lost ends it. Returns its requests.
fn client(
    id: u64,
    addresses: Arc<Mutex<Vec<String>>>,
    outcomes: Outcomes,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
) -> std::thread::JoinHandle<()> {
    let base = unix_now() - 30.0;
    std::thread::spawn(move || {
        for n in 0u64.. {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let events: Vec<Event> = (0..10)
                .map(|i| {
                    let seq = n * 10 + i;
                    let user = format!("c{id}-u{}", seq % 20);
                    Event::new(user, base + seq as f64 * 1e-3, id * 1_000_000 + seq)
                })
                .collect();
            let address = {
                let addresses = addresses.lock().unwrap();
                addresses[n as usize % addresses.len()].clone()
            };
            let answer = post(&address, "/ingest", &body(&events));
            sent.fetch_add(1, Ordering::Relaxed);
            let status = answer.as_ref().map_or(0, |a| a.0);
            *outcomes.statuses.lock().unwrap().entry(status).or_default() += 1;
            match answer {
                Ok((200, _, answer)) => {
                    assert_eq!(answer["processed"], 10, "{answer}");
                    Outcomes::enter(&outcomes.acked, events);
                }
                // Nothing of it recorded: refused before writing, or what it wrote taken back.
                Ok((503, head, answer)) => {
                    assert!(
                        head.to_lowercase().contains("retry-after: 1"),
                        "{head} {answer}"
                    );
                    Outcomes::enter(&outcomes.refused, events);
                }
                // The store stayed away longer than a request keeps taking back: the answer
                // accounts for every event, and each user's one event is in doubt (a write whose
                // answer was lost with the store may or may not have been done).
                Ok((500, _, answer)) => {
                    let processed = answer["processed"].as_u64().expect("processed");
                    let not_recorded = answer["not_recorded"].as_array().expect("not_recorded");
                    assert_eq!(processed + not_recorded.len() as u64, 10, "{answer}");
                    Outcomes::enter(&outcomes.in_doubt, events);
                }
                Ok((status, _, answer)) => panic!("{status} {answer}"),
                Err(_) => {
                    Outcomes::enter(&outcomes.in_doubt, events);
                    return;
                }
            }
        }
    })
}

/// Waits (polling, at most a minute) until `done`.
fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "waited a minute for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Each user's window holds exactly what was acknowledged (a request in doubt: all of a user's
/// events or none), nothing of a refused request, with exact medians.
fn check(served: &Served, outcomes: &Outcomes) -> u64 {
    let acked = outcomes.acked.lock().unwrap();
    let in_doubt: HashMap<String, Vec<Event>> = outcomes
        .in_doubt
        .lock()
        .unwrap()
        .clone()
        .into_iter()
        .collect();
    let mut users: BTreeMap<String, Vec<Event>> = acked.clone();
    // A user only refused or in doubt must be checked too (for an empty window).
    for user in outcomes
        .refused
        .lock()
        .unwrap()
        .keys()
        .chain(in_doubt.keys())
    {
        users.entry(user.clone()).or_default();
    }
    check_windows(served, &users, &in_doubt)
}

#[test]
fn a_replica_killed_under_load_and_restarted_loses_nothing() {
    let redis = RedisServer::start();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = replica(dir_a.path(), &redis);
    let b = replica(dir_b.path(), &redis);
    let outcomes = Outcomes::default();
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    // Four clients on a alone (they end with it), four spreading over both.
    let only_a = Arc::new(Mutex::new(vec![a.address.clone()]));
    let both = Arc::new(Mutex::new(vec![b.address.clone()]));
    let mut clients: Vec<_> = (0..4)
        .map(|id| {
            client(
                id,
                only_a.clone(),
                outcomes.clone(),
                stop.clone(),
                sent.clone(),
            )
        })
        .collect();
    clients.extend((4..8).map(|id| {
        client(
            id,
            both.clone(),
            outcomes.clone(),
            stop.clone(),
            sent.clone(),
        )
    }));
    until("load", || sent.load(Ordering::Relaxed) >= 200);
    a.kill();
    let restarted = replica(dir_a.path(), &redis);
    both.lock().unwrap().push(restarted.address.clone());
    let resumed = sent.load(Ordering::Relaxed);
    until("load on the restarted replica", || {
        sent.load(Ordering::Relaxed) >= resumed + 200
    });
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    assert!(outcomes.status(200) > 400, "{:?}", outcomes.statuses);
    assert_eq!(outcomes.status(503), 0, "{:?}", outcomes.statuses);
    let held = check(&restarted, &outcomes);
    // The counter counts every acknowledged event once. A request cut off by the kill may have
    // written its windows but not its counters: by at most the events in doubt, it counts less.
    let in_doubt: usize = outcomes
        .in_doubt
        .lock()
        .unwrap()
        .values()
        .map(Vec::len)
        .sum();
    let (_, stats) = b.get("/stats");
    let counted = stats["events_in_windows"].as_u64().unwrap();
    assert!(
        counted <= held && counted + in_doubt as u64 >= held,
        "{counted} counted, {held} held, {in_doubt} in doubt: {stats}"
    );
}

#[test]
fn redis_killed_under_load_answers_503_then_recovers_losing_nothing() {
    let mut redis = RedisServer::start();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = replica(dir_a.path(), &redis);
    let b = replica(dir_b.path(), &redis);
    let outcomes = Outcomes::default();
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let both = Arc::new(Mutex::new(vec![a.address.clone(), b.address.clone()]));
    let clients: Vec<_> = (0..8)
        .map(|id| {
            client(
                id,
                both.clone(),
                outcomes.clone(),
                stop.clone(),
                sent.clone(),
            )
        })
        .collect();
    until("load", || sent.load(Ordering::Relaxed) >= 200);
    redis.kill();
    // A request of the test's own, on each replica, finds the store gone: 503, nothing kept.
    // Redis comes back at once, so the requests cut off mid-write can take back what they wrote.
    for (replica, served) in [("a", &a), ("b", &b)] {
        let probe = vec![Event::new(format!("probe-{replica}"), unix_now(), 0)];
        let (status, head, answer) = post(&served.address, "/ingest", &body(&probe)).unwrap();
        assert_eq!(status, 503, "{answer}");
        assert!(head.to_lowercase().contains("retry-after: 1"), "{head}");
        Outcomes::enter(&outcomes.refused, probe);
    }
    redis.restart();
    let ok_before = outcomes.status(200);
    until("recovery", || outcomes.status(200) >= ok_before + 200);
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    // Every request was answered (the replicas lived on); a 500 (the store away longer than
    // a take-back waits) is in doubt, checked user by user.
    assert_eq!(outcomes.status(0), 0, "{:?}", outcomes.statuses);
    check(&a, &outcomes);
    check(&b, &outcomes);
}
