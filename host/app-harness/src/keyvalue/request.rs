//! What the key-value host keeps of the request an instance is serving: the values it read
//! (where its next compare-and-swap of such a key starts: see the parent module), how far its
//! writes must be synced before it is answered, and whether its writes are refused (the disk is
//! full).

use std::collections::HashMap;
use std::sync::Arc;

use super::{Backend, GroupCommit};

#[derive(Default)]
pub struct RequestScope {
    /// By store and key.
    values: HashMap<(String, String), Option<Vec<u8>>>,
    /// Each group commit written through, and the number of the request's last write there.
    unsynced: Vec<(Arc<GroupCommit>, u64)>,
    /// Why every write of this request is refused, if it is.
    refused: Option<String>,
}

impl RequestScope {
    /// A new request begins: nothing read or written yet; its writes refused, and why, if a
    /// store cannot take them.
    pub fn begin(&mut self, refused: Option<String>) {
        self.values.clear();
        self.unsynced.clear();
        self.refused = refused;
    }

    /// Why this request's writes are refused, if they are.
    pub fn refused(&self) -> Option<&str> {
        self.refused.as_deref()
    }

    /// What the request's answer waits for: each group commit and the write to sync through.
    pub fn take_unsynced(&mut self) -> Vec<(Arc<GroupCommit>, u64)> {
        std::mem::take(&mut self.unsynced)
    }

    /// Notes that the request read or wrote `backend` as it is now: its answer waits until
    /// every write applied so far is durable (a read may have seen a write not yet in the file,
    /// and no answer may show what a crash could take back).
    pub(super) fn depends_on(&mut self, backend: &dyn Backend) {
        let Some(commit) = backend.group_commit() else {
            return;
        };
        let last = commit.last_applied();
        match self
            .unsynced
            .iter_mut()
            .find(|(c, _)| Arc::ptr_eq(c, commit))
        {
            Some((_, through)) => *through = last,
            None => self.unsynced.push((commit.clone(), last)),
        }
    }

    pub(super) fn read(&mut self, store: &str, key: &str, value: &Option<Vec<u8>>) {
        self.values
            .insert((store.to_string(), key.to_string()), value.clone());
    }

    pub(super) fn written(&mut self, store: &str, key: &str) {
        self.values.remove(&(store.to_string(), key.to_string()));
    }

    pub(super) fn take(&mut self, store: &str, key: &str) -> Option<Option<Vec<u8>>> {
        self.values.remove(&(store.to_string(), key.to_string()))
    }
}
