//! Time per event of the windows' insert + expire, on two audience shapes: wide and sparse (one
//! event per user in the window) and narrow and deep (~150 per user). Prints a table; compare
//! commits by running it at each in one session (`cargo run --release -p edgescore-engine
//! --example windows_bench`).

use std::time::Instant;

use edgescore_engine::windows::Windows;

/// `events` events at 5,000/s over `users` users, timestamps up to 5 s out of order, expiring
/// every 10 events; returns nanoseconds per event and the users and events left in the windows.
fn run(users: usize, events: u64) -> (f64, usize, usize) {
    let ids: Vec<String> = (0..users).map(|u| format!("user-{u}")).collect();
    let mut windows = Windows::new(300.0);
    let mut x: u64 = 1;
    let start = Instant::now();
    for i in 0..events {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let user = &ids[(x >> 33) as usize % ids.len()];
        let jitter = ((x >> 20) % 1000) as f64 / 1000.0 * 5.0;
        let t = 1_700_000_000.0 + i as f64 / 5000.0 - jitter;
        windows.advance(t);
        windows.insert(user, t, ((x >> 40) % 10_000) as f32 / 10_000.0);
        if i % 10 == 9 {
            windows.expire();
        }
    }
    windows.expire();
    let nanos = start.elapsed().as_nanos() as f64 / events as f64;
    (nanos, windows.users(), windows.events())
}

fn main() {
    println!("| users | events | ns/event | users left | events left |");
    println!("| ---: | ---: | ---: | ---: | ---: |");
    for (users, events) in [(10_000_000, 3_000_000), (10_000, 3_000_000)] {
        for _ in 0..3 {
            let (nanos, left, windowed) = run(users, events);
            println!("| {users} | {events} | {nanos:.0} | {left} | {windowed} |");
        }
    }
}
