//! Group commit off the shard's thread (`--durability fsync`). The shard appends a call's
//! records and goes on to score its next call; this thread syncs the log again and again, each
//! `fdatasync` covering whatever was appended before it began, and only then sends the answers
//! of the calls it covered — the write-ahead log writer of a database, and Kafka's `acks=all`.
//!
//! A failed sync fails every call it covered and every call handed over after it: after a
//! failed `fdatasync` the kernel may have dropped the pages, and a later sync that succeeds
//! proves nothing about them. The shard then cuts its log back to the last synced byte and
//! rebuilds its engine from what the log holds ([`Committer::take_failure`]), so it never
//! scores on state the log cannot give back.

use std::fs::File;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use super::shard_log::LogMark;

/// What to do once a call's records are synced (`Ok`) or cannot be (`Err`, the reason).
pub type Done = Box<dyn FnOnce(Result<(), String>) + Send>;

struct Waiter {
    end: LogMark,
    done: Done,
}

#[derive(Default)]
struct State {
    waiting: Vec<Waiter>,
    /// A batch is being synced (its waiters are not answered yet).
    syncing: bool,
    /// Everything before this mark is on disk.
    durable: LogMark,
    /// The failure of a sync, until the shard takes it.
    failed: Option<String>,
    stop: bool,
}

struct Shared {
    state: Mutex<State>,
    /// Something to sync, or stop.
    work: Condvar,
    /// Nothing waiting and nothing being synced.
    idle: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One shard's committer thread.
pub struct Committer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Committer {
    /// Syncs the file `log` holds (the shard's current log; swapped when it rotates), whose
    /// records before `durable` are on disk already.
    pub fn start(
        shard: usize,
        log: Arc<Mutex<Option<File>>>,
        durable: LogMark,
    ) -> std::io::Result<Committer> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                durable,
                ..State::default()
            }),
            work: Condvar::new(),
            idle: Condvar::new(),
        });
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("shard-{shard}-commit"))
                .spawn(move || commit_loop(&shared, &log))?
        };
        Ok(Committer {
            shared,
            thread: Some(thread),
        })
    }

    /// Calls `done` once the log is on disk through `end` (at once if it is already), or with
    /// the failure.
    pub fn commit(&self, end: LogMark, done: Done) {
        let mut state = self.shared.lock();
        if state.failed.is_none()
            && state.waiting.is_empty()
            && !state.syncing
            && end <= state.durable
        {
            drop(state);
            return done(Ok(()));
        }
        state.waiting.push(Waiter { end, done });
        self.shared.work.notify_one();
    }

    /// Waits until every call handed over is answered; the failure, if a sync failed.
    pub fn flush(&self) -> Result<(), String> {
        let mut state = self.shared.lock();
        while !state.waiting.is_empty() || state.syncing {
            state = self
                .shared
                .idle
                .wait(state)
                .unwrap_or_else(|p| p.into_inner());
        }
        match &state.failed {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// A sync failed: waits for the calls handed over to be answered (failed), then returns
    /// the mark the log is durable to, where the shard cuts it back, and the reason. The
    /// committer takes calls again.
    pub fn take_failure(&self) -> Option<(LogMark, String)> {
        self.shared.lock().failed.as_ref()?;
        let _ = self.flush();
        let mut state = self.shared.lock();
        let failed = state.failed.take()?;
        Some((state.durable, failed))
    }

    /// The shard synced the log itself, with every call handed over answered (a swap, a
    /// rotation to a new file): everything before `mark` is on disk.
    pub fn synced_to(&self, mark: LogMark) {
        self.shared.lock().durable = mark;
    }
}

impl Drop for Committer {
    /// Answers what was handed over, then ends the thread.
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.work.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn commit_loop(shared: &Shared, log: &Mutex<Option<File>>) {
    loop {
        let (batch, failed) = {
            let mut state = shared.lock();
            while state.waiting.is_empty() && !state.stop {
                state = shared.work.wait(state).unwrap_or_else(|p| p.into_inner());
            }
            if state.waiting.is_empty() {
                return;
            }
            state.syncing = true;
            (std::mem::take(&mut state.waiting), state.failed.clone())
        };
        let end = batch.iter().map(|w| w.end).max().expect("a batch");
        // Once a sync failed, nothing appended after it can be trusted until the shard cuts
        // the log back: every call fails without a sync.
        let result = match failed {
            Some(e) => Err(e),
            None => sync(log).map_err(|e| format!("syncing the log: {e}")),
        };
        {
            let mut state = shared.lock();
            match &result {
                Ok(()) => state.durable = state.durable.max(end),
                Err(e) => {
                    state.failed.get_or_insert_with(|| e.clone());
                }
            }
        }
        for waiter in batch {
            (waiter.done)(result.clone());
        }
        shared.lock().syncing = false;
        shared.idle.notify_all();
    }
}

fn sync(log: &Mutex<Option<File>>) -> std::io::Result<()> {
    fail::fail_point!("log-sync-pause");
    fail::fail_point!("log-sync", |_| Err(std::io::Error::other(
        "injected by the log-sync fail point"
    )));
    match log.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
        Some(file) => file.sync_data(),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(offset: u64) -> LogMark {
        LogMark {
            generation: 0,
            offset,
        }
    }

    fn answered() -> (Done, std::sync::mpsc::Receiver<Result<(), String>>) {
        let (tx, rx) = std::sync::mpsc::channel();
        (Box::new(move |r| tx.send(r).unwrap()), rx)
    }

    #[test]
    fn a_call_is_answered_once_synced_and_at_once_when_it_already_is() {
        let file = tempfile::tempfile().unwrap();
        let committer = Committer::start(0, Arc::new(Mutex::new(Some(file))), mark(10)).unwrap();
        let (done, rx) = answered();
        committer.commit(mark(20), done);
        assert_eq!(rx.recv().unwrap(), Ok(()));
        committer.flush().unwrap();
        assert_eq!(committer.shared.lock().durable, mark(20));
        let (done, rx) = answered();
        committer.commit(mark(15), done);
        assert_eq!(rx.try_recv().unwrap(), Ok(()), "answered without a sync");
        assert!(committer.take_failure().is_none());
    }

    #[test]
    fn dropping_it_answers_what_was_handed_over() {
        let committer = Committer::start(0, Arc::new(Mutex::new(None)), mark(0)).unwrap();
        let receivers: Vec<_> = (1..=5)
            .map(|i| {
                let (done, rx) = answered();
                committer.commit(mark(i), done);
                rx
            })
            .collect();
        drop(committer);
        for rx in receivers {
            assert_eq!(rx.recv().unwrap(), Ok(()));
        }
    }
}
