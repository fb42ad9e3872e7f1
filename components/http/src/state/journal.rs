//! What one request wrote, so that it can be taken back when a later write fails: a request is
//! then answered 503 (retry) with nothing of it in the store, never 500 with half of it in.
//!
//! Taking back is itself a write, to a store that just failed (a Redis restarting, say): each
//! step is retried, with growing pauses, until [`TAKE_BACK_WITHIN`]. Should the store stay
//! away longer, what was written stays written and the request says exactly which events were
//! recorded (500).

use std::time::{Duration, Instant};

use super::windows::{self, WindowChange};
use super::{Bucket, Result, count};

/// How long a request keeps trying to take back what it wrote.
const TAKE_BACK_WITHIN: Duration = Duration::from_secs(4);

/// Events added to a user's window.
struct WindowWrite {
    user_id: String,
    events: Vec<(f64, f32)>,
    /// Known to be done (a write whose answer was lost, the store gone, may or may not be).
    done: bool,
}

#[derive(Default)]
pub struct Journal {
    windows: Vec<WindowWrite>,
    /// Counters incremented, and by how much.
    counters: Vec<(String, i64)>,
    /// What the windows' writes changed that is not in the counters yet.
    uncounted: WindowChange,
    /// Everything the windows' writes changed, counted or not.
    recorded: WindowChange,
}

impl Journal {
    /// Adds `events` to `user_id`'s window (dropping what is at or before `cutoff`).
    pub fn record(
        &mut self,
        bucket: &Bucket,
        user_id: &str,
        events: Vec<(f64, f32)>,
        cutoff: f64,
    ) -> Result<()> {
        // Entered even if it failed, unless the store refused it: should the answer have been
        // lost, taking back takes the events out if the write was done after all (and finds
        // nothing to take if it was not).
        let written = windows::record(bucket, user_id, &events, cutoff);
        if !written.as_ref().is_err_and(|e| e.refused) {
            self.windows.push(WindowWrite {
                user_id: user_id.to_string(),
                events,
                done: written.is_ok(),
            });
        }
        let change = written?;
        self.uncounted.add(change);
        self.recorded.add(change);
        Ok(())
    }

    /// The users whose windows are known to hold this request's events.
    pub fn written(&self) -> impl Iterator<Item = &str> {
        self.windows
            .iter()
            .filter(|w| w.done)
            .map(|w| w.user_id.as_str())
    }

    pub fn count(&mut self, bucket: &Bucket, name: &str, delta: i64) -> Result<()> {
        if delta != 0 {
            count(bucket, name, delta)?;
            self.counters.push((name.to_string(), delta));
        }
        Ok(())
    }

    /// Enters what the windows' writes changed in their counters.
    pub fn count_windows(&mut self, bucket: &Bucket) -> Result<()> {
        for (name, delta) in self.uncounted.counters() {
            self.count(bucket, name, delta)?;
            match name {
                "users" => self.uncounted.users = 0,
                _ => self.uncounted.events = 0,
            }
        }
        Ok(())
    }

    /// Takes back every write, newest first: counters by the opposite increment, events out of
    /// their windows. The counters are then as before the request, so what stays of the windows'
    /// changes (events the writes expired) is counted. On an error, the journal holds what is
    /// still to be taken back.
    pub fn take_back(&mut self, bucket: &Bucket) -> Result<()> {
        let deadline = Instant::now() + TAKE_BACK_WITHIN;
        while let Some((name, delta)) = self.counters.last() {
            retrying(deadline, || count(bucket, name, -delta))?;
            self.counters.pop();
        }
        while let Some(write) = self.windows.last() {
            let change = retrying(deadline, || {
                windows::take_back(bucket, &write.user_id, &write.events)
            })?;
            self.recorded.add(change);
            self.windows.pop();
        }
        for (name, delta) in std::mem::take(&mut self.recorded).counters() {
            if delta != 0 {
                retrying(deadline, || count(bucket, name, delta))?;
            }
        }
        Ok(())
    }
}

/// `step`, again after a pause while it fails, until `deadline`.
fn retrying<T>(deadline: Instant, mut step: impl FnMut() -> Result<T>) -> Result<T> {
    let mut pause = Duration::from_millis(20);
    loop {
        match step() {
            Ok(done) => return Ok(done),
            Err(e) if Instant::now() + pause > deadline => return Err(e),
            Err(_) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(500));
            }
        }
    }
}
