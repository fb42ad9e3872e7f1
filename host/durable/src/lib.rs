//! What `edgescore serve` keeps on disk, as plain files (issue 12 builds the durable service on
//! these):
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
