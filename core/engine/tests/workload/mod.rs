//! The seed's workload shape, shared by the memory test and `examples/windows_bench.rs`: events
//! at 5,000/s spread over a set of users, timestamps up to 5 s out of order, expiring every 10
//! events.

use edgescore_engine::window::Windows;

/// Feeds `events` such events over `users` into `windows`, then expires.
pub fn feed(windows: &mut Windows, users: &[String], events: u64) {
    let mut x: u64 = 1;
    for i in 0..events {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let user = &users[(x >> 33) as usize % users.len()];
        let jitter = ((x >> 20) % 1000) as f64 / 1000.0 * 5.0;
        let t = 1_700_000_000.0 + i as f64 / 5000.0 - jitter;
        windows.advance(t);
        windows.insert(user, t, ((x >> 40) % 10_000) as f32 / 10_000.0);
        if i % 10 == 9 {
            windows.expire();
        }
    }
    windows.expire();
}
