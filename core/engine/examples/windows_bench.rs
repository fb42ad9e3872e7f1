//! Time per event of the windows' insert + expire, on three audience shapes: wide and sparse (one
//! event per user in the window), narrow and deep (~150 per user), and deeper (~600 per user). Prints a table; compare
//! commits by running it at each in one session (`cargo run --release -p edgescore-engine
//! --example windows_bench`).

use std::time::Instant;

use edgescore_engine::window::Windows;

#[path = "../tests/workload/mod.rs"]
mod workload;

/// Nanoseconds per event of the seed's workload (`tests/workload`) over `users` users, and the
/// users and events left in the windows.
fn run(users: usize, events: u64) -> (f64, usize, usize) {
    let ids: Vec<String> = (0..users).map(|u| format!("user-{u}")).collect();
    let mut windows = Windows::new(300.0);
    let start = Instant::now();
    workload::feed(&mut windows, &ids, events);
    let nanos = start.elapsed().as_nanos() as f64 / events as f64;
    (nanos, windows.users(), windows.events())
}

fn main() {
    println!("| users | events | ns/event | users left | events left |");
    println!("| ---: | ---: | ---: | ---: | ---: |");
    for (users, events) in [
        (10_000_000, 3_000_000),
        (10_000, 3_000_000),
        (5_000, 3_000_000),
        (2_500, 3_000_000),
    ] {
        for _ in 0..3 {
            let (nanos, left, windowed) = run(users, events);
            println!("| {users} | {events} | {nanos:.0} | {left} | {windowed} |");
        }
    }
}
