//! Room kept for a full disk. Beside the database lies a file of [`RESERVE_BYTES`]. When a pass
//! of the flusher finds the disk full, the reserve is released and the pass tried again: the
//! requests already running get their writes into the file, so that none is left half-written.
//! A request that begins while the disk is full has its writes refused at once, before it writes
//! anything. Once the reserve can be made again there is room, and writes are accepted again.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The room kept: the log takes about two 4 KiB pages per key written, so this holds about 500
/// windows' writes, far more than the requests running at once make.
pub const RESERVE_BYTES: usize = 4 << 20;

/// How often a full store tries to make its reserve again.
const RETRY_EVERY: Duration = Duration::from_secs(1);

pub struct Reserve {
    path: PathBuf,
    /// Since when the disk is full (the reserve released), if it is.
    full_since: Mutex<Option<Instant>>,
}

impl Reserve {
    /// The reserve of the database at `database`, made now if there is room (if not, the store
    /// starts full).
    pub fn keep(database: &Path) -> Reserve {
        let mut name = database.as_os_str().to_owned();
        name.push(".reserve");
        let reserve = Reserve {
            path: PathBuf::from(name),
            full_since: Mutex::new(None),
        };
        if let Err(e) = reserve.make() {
            tracing::error!(error = %e, path = %reserve.path.display(), "no room for the key-value store's reserve: writes are refused until there is");
            *reserve.lock() = Some(Instant::now());
        }
        reserve
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.full_since.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn make(&self) -> std::io::Result<()> {
        if std::fs::metadata(&self.path).is_ok_and(|m| m.len() == RESERVE_BYTES as u64) {
            return Ok(());
        }
        let written = (|| {
            let mut file = std::fs::File::create(&self.path)?;
            let block = vec![0u8; 64 << 10];
            for _ in 0..RESERVE_BYTES / block.len() {
                file.write_all(&block)?;
            }
            file.sync_all()
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&self.path);
        }
        written
    }

    /// A pass found the disk full: the reserve is released for the requests running now.
    pub fn disk_full(&self) {
        let mut full_since = self.lock();
        if full_since.is_none() {
            tracing::error!(path = %self.path.display(), "the key-value store's disk is full: its reserve released for taking back, new requests' writes refused until there is room");
            *full_since = Some(Instant::now());
        }
        let _ = std::fs::remove_file(&self.path);
    }

    /// Why a request beginning now gets its writes refused, if it does: the disk is full and the
    /// reserve could not be made again (tried at most every [`RETRY_EVERY`]).
    pub fn refusing(&self) -> Option<String> {
        let mut full_since = self.lock();
        let since = (*full_since)?;
        if since.elapsed() >= RETRY_EVERY {
            match self.make() {
                Ok(()) => {
                    tracing::info!(path = %self.path.display(), "the key-value store has room again: writes accepted");
                    *full_since = None;
                    return None;
                }
                Err(_) => *full_since = Some(Instant::now()),
            }
        }
        Some(
            "the key-value store's disk is full: writes are refused until there is room again \
             (nothing of this request was written)"
                .into(),
        )
    }
}
