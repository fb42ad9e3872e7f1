//! `--durability fsync` without the shard waiting on the disk: a call's records are synced on a
//! thread of the shard's own while the shard scores its next call, and the call is answered once
//! its sync is done. One `fdatasync` covers every record written before it started.

use std::fs::File;
use std::io;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

/// A shard's sync thread; it ends when this is dropped.
pub struct Syncer {
    requests: mpsc::Sender<mpsc::Sender<io::Result<()>>>,
}

/// A sync asked for and not yet waited on.
pub struct InFlight {
    done: mpsc::Receiver<io::Result<()>>,
    result: Option<io::Result<()>>,
}

impl Syncer {
    /// `log`: the handle on the shard's current log (replaced when the log rotates, which the
    /// shard does only with no sync in flight).
    pub fn start(shard: usize, log: Arc<Mutex<Option<File>>>) -> io::Result<Syncer> {
        let (requests, asked) = mpsc::channel::<mpsc::Sender<io::Result<()>>>();
        std::thread::Builder::new()
            .name(format!("log-sync-{shard}"))
            .spawn(move || {
                for done in asked {
                    let _ = done.send(sync(&log));
                }
            })?;
        Ok(Syncer { requests })
    }

    /// Starts a sync of everything written to the log so far.
    pub fn sync(&self) -> InFlight {
        let (done, wait) = mpsc::channel();
        let result = self.requests.send(done).err().map(|_| Err(gone()));
        InFlight { done: wait, result }
    }
}

fn sync(log: &Mutex<Option<File>>) -> io::Result<()> {
    fail::fail_point!("log-sync-slow");
    fail::fail_point!("log-sync", |_| Err(io::Error::other(
        "injected by the log-sync fail point"
    )));
    let file = log.lock().unwrap_or_else(|p| p.into_inner());
    match file.as_ref() {
        Some(file) => file.sync_data(),
        None => Err(io::Error::other("the shard's log is not open")),
    }
}

impl InFlight {
    /// Whether the sync has ended (then [`InFlight::wait`] does not block).
    pub fn is_done(&mut self) -> bool {
        if self.result.is_none() {
            match self.done.try_recv() {
                Ok(result) => self.result = Some(result),
                Err(mpsc::TryRecvError::Empty) => {}
                Err(mpsc::TryRecvError::Disconnected) => self.result = Some(Err(gone())),
            }
        }
        self.result.is_some()
    }

    /// Waits for the sync to end.
    pub fn wait(mut self) -> io::Result<()> {
        match self.result.take() {
            Some(result) => result,
            None => self.done.recv().unwrap_or_else(|_| Err(gone())),
        }
    }
}

fn gone() -> io::Error {
    io::Error::other("the shard's sync thread is gone")
}
