//! When each client sends. At a fixed total rate, every client sends a batch once per period,
//! offset from the others so that the clients interleave evenly; without a rate, each sends as
//! soon as its last answer came. A paced request's latency counts from when it was due, not
//! from when it was sent, so a stalled server cannot hide its stall by delaying the requests
//! (coordinated omission) — unless the client was free when it was due: then only its own timer
//! woke it late (tokio's timers tick in milliseconds), which is no part of the server's latency
//! ([`latency_start`]).

use std::time::{Duration, Instant};

pub struct Pacing {
    /// Between two batches of one client (none: as fast as answers come).
    period: Option<Duration>,
    next_due: Instant,
    started: Instant,
    duration: Duration,
}

impl Pacing {
    /// Client `index` of `clients`, together sending `events_per_sec` (0: as fast as answers
    /// come) in batches of `batch_size`, from `started` for `duration`.
    pub fn new(
        events_per_sec: u64,
        batch_size: u32,
        (index, clients): (u32, u32),
        started: Instant,
        duration: Duration,
    ) -> Pacing {
        let period = (events_per_sec > 0).then(|| {
            let batches_per_sec = events_per_sec as f64 / batch_size as f64;
            Duration::from_secs_f64(clients as f64 / batches_per_sec)
        });
        let offset = period.map_or(Duration::ZERO, |p| p * index / clients);
        Pacing {
            period,
            next_due: started + offset,
            started,
            duration,
        }
    }

    /// When the next request is due, `now` being the time (none: the run is over). Paced, it is
    /// the schedule's time however late the client is; unpaced, it is `now`.
    pub fn next_due(&mut self, now: Instant) -> Option<Instant> {
        match self.period {
            Some(period) => {
                let due = self.next_due;
                if due.duration_since(self.started) >= self.duration {
                    return None;
                }
                self.next_due += period;
                Some(due)
            }
            None => (now.saturating_duration_since(self.started) < self.duration).then_some(now),
        }
    }
}

/// Where a request's latency counts from: when it was `due`, if the client's previous answer
/// came after that (the server held it up), else when the client `woke` to send it.
pub fn latency_start(due: Instant, previous_answer: Instant, woke: Instant) -> Instant {
    if previous_answer > due {
        due
    } else {
        woke.max(due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every due time of one client over the run.
    fn schedule(mut pacing: Pacing, started: Instant) -> Vec<Duration> {
        std::iter::from_fn(|| pacing.next_due(started))
            .map(|due| due - started)
            .collect()
    }

    #[test]
    fn the_clients_together_send_the_rate_interleaved_evenly() {
        let started = Instant::now();
        let second = Duration::from_secs(1);
        // 5,000 events/s in batches of 10 from 32 clients: each sends every 64 ms.
        let all: Vec<Vec<Duration>> = (0..32)
            .map(|i| schedule(Pacing::new(5000, 10, (i, 32), started, second), started))
            .collect();
        for (i, dues) in all.iter().enumerate() {
            assert_eq!(
                dues[0],
                Duration::from_millis(2 * i as u64),
                "client {i}'s offset"
            );
            for pair in dues.windows(2) {
                assert_eq!(pair[1] - pair[0], Duration::from_millis(64));
            }
            assert!(dues.iter().all(|d| *d < second));
        }
        // Client i's requests: those of 2i + 64k ms below 1,000 ms.
        let expected: usize = (0..32).map(|i| (1000 - 2 * i as usize).div_ceil(64)).sum();
        let sent: usize = all.iter().map(Vec::len).sum();
        assert_eq!(sent, expected);
        assert_eq!(expected * 10, 5000, "the events of one second");
        let mut merged: Vec<Duration> = all.into_iter().flatten().collect();
        merged.sort();
        for pair in merged.windows(2) {
            assert_eq!(
                pair[1] - pair[0],
                Duration::from_millis(2),
                "evenly interleaved"
            );
        }
    }

    #[test]
    fn a_late_client_keeps_its_schedule_so_latency_counts_from_when_it_was_due() {
        let started = Instant::now();
        let mut pacing = Pacing::new(100, 10, (0, 1), started, Duration::from_secs(1));
        let late = started + Duration::from_millis(750);
        assert_eq!(pacing.next_due(late), Some(started));
        assert_eq!(
            pacing.next_due(late),
            Some(started + Duration::from_millis(100))
        );
    }

    #[test]
    fn latency_counts_from_the_due_time_only_when_the_server_held_the_client_up() {
        let due = Instant::now() + Duration::from_millis(10);
        let ms = Duration::from_millis;
        // Free long before, woken 0.9 ms late by its timer: from the wake-up.
        assert_eq!(latency_start(due, due - ms(5), due + ms(1)), due + ms(1));
        // Its previous answer came 3 ms after this request was due: from the due time.
        assert_eq!(latency_start(due, due + ms(3), due + ms(3)), due);
        // Woken early (never happens with tokio, but never counts from before the due time).
        assert_eq!(latency_start(due, due - ms(5), due - ms(1)), due);
    }

    #[test]
    fn without_a_rate_a_client_sends_at_once_until_the_run_is_over() {
        let started = Instant::now();
        let mut pacing = Pacing::new(0, 10, (3, 8), started, Duration::from_secs(2));
        let now = started + Duration::from_millis(1999);
        assert_eq!(pacing.next_due(now), Some(now));
        assert_eq!(pacing.next_due(started), Some(started));
        assert_eq!(pacing.next_due(started + Duration::from_secs(2)), None);
    }
}
