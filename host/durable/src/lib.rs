//! What `edgescore serve` keeps on disk, as plain files, and when both hosts sync their writes
//! ([`Durability`]):
//!
//! - [`frame`]: records framed by their length and a CRC-32, and the reading of a log that
//!   stops at the first record that is not whole (a torn tail after a crash);
//! - [`log`]: an append-only log file of such records, its torn tail cut on open, synced on
//!   demand (one `fdatasync` for every record appended since the last: group commit);
//! - [`atomic`]: files replaced atomically (write a temporary file, fsync, rename, fsync the
//!   folder), for snapshots;
//! - [`lock`]: the data directory's lock, so that two processes never share one.

pub mod atomic;
pub mod frame;
pub mod lock;
pub mod log;

use std::time::Duration;

/// When writes reach the disk: the same words and the same promise for `edgescore serve`'s logs
/// and for `serve-app`'s SQLite store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Before every answer that depends on them, one `fdatasync` for every write made since the
    /// last (group commit). Nothing acknowledged is lost, even by a power loss.
    Fsync,
    /// Every so often, off the request path. A process crash loses nothing (the writes are in
    /// the kernel before the answer); a power loss loses up to this long.
    Interval(Duration),
    /// Never by edgescore: the kernel writes back when it wants. A process crash loses nothing;
    /// a power loss loses what the kernel had not written (Linux: up to ~30 s).
    None,
}
