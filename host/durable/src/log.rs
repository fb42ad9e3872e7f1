//! An append-only log file of framed records ([`crate::frame`]). Records are written as they are
//! appended and made durable by [`Log::sync`]: one `fdatasync` covers every record appended
//! since the last one, so a caller that appends a whole call's records and then syncs once
//! commits them as a group.
//!
//! The file runs ahead of its records by up to [`PREALLOCATED_BYTES`] of written zeros, so that
//! most records overwrite space the file already has: an `fdatasync` that does not change the
//! file's size writes the data alone, without a journal commit of the file system's metadata
//! (half the cost or less, and no queueing behind another file's sync). Reading stops at those
//! zeros ([`frame::read_log`]).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::frame::{self, Tail};

/// How far ahead of its records a log's file is zeroed, each time it runs out.
pub const PREALLOCATED_BYTES: u64 = 1 << 20;

pub struct Log {
    file: File,
    path: PathBuf,
    /// Bytes of whole records in the file.
    len: u64,
    /// The file's length: the records, then zeros.
    allocated: u64,
    /// Records appended since the last sync.
    unsynced: bool,
    buffer: Vec<u8>,
}

/// A log opened for appending, with the records it held.
pub struct Opened {
    pub log: Log,
    pub records: Vec<Vec<u8>>,
    /// What was cut off its end, if anything.
    pub cut: Option<Cut>,
}

/// The end of a log that did not hold whole records, cut off on open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    /// Where the whole records end (the length the file was cut to).
    pub at: u64,
    /// Bytes cut off.
    pub bytes: u64,
    /// Why: a record cut short, or one whose checksum does not match.
    pub tail: Tail,
}

impl Log {
    /// Opens (or creates) the log at `path`, reads its records, and cuts off a tail that is
    /// neither whole records nor zeros (and syncs the cut) so that new records follow the last
    /// whole one and nothing written after it can ever be read.
    pub fn open(path: &Path) -> io::Result<Opened> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let read = frame::read_log(&bytes);
        let valid = read.valid_len as u64;
        let cut = (valid < bytes.len() as u64 && read.tail != Tail::Zeros).then(|| Cut {
            at: valid,
            bytes: bytes.len() as u64 - valid,
            tail: read.tail,
        });
        let records = read.records.iter().map(|r| r.to_vec()).collect();
        let allocated = if cut.is_some() {
            file.set_len(valid)?;
            file.sync_all()?;
            valid
        } else {
            bytes.len() as u64
        };
        let log = Log {
            file,
            path: path.to_path_buf(),
            len: valid,
            allocated,
            unsynced: false,
            buffer: Vec::new(),
        };
        Ok(Opened { log, records, cut })
    }

    /// Writes one record, never empty (not yet durable: see [`Log::sync`]). On a failed write
    /// the file is cut back to its last whole record, so that a later record never follows a
    /// partial one.
    pub fn append(&mut self, payload: &[u8]) -> io::Result<()> {
        if payload.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a log record cannot be empty",
            ));
        }
        self.buffer.clear();
        frame::encode(payload, &mut self.buffer);
        let end = self.len + self.buffer.len() as u64;
        self.make_room(end)?;
        if let Err(e) = self.file.write_all_at(&self.buffer, self.len) {
            let _ = self.file.set_len(self.len);
            self.allocated = self.len;
            return Err(e);
        }
        self.len = end;
        self.unsynced = true;
        Ok(())
    }

    /// Makes the file reach `end`: zeroed [`PREALLOCATED_BYTES`] past it, or, on a disk without
    /// room for that, exactly to it (running ahead is for speed, never a reason to refuse a
    /// record). The zeros are written, not just reserved: a reserved (unwritten) extent changes
    /// the file system's metadata on its first write, which is the journal commit this avoids.
    fn make_room(&mut self, end: u64) -> io::Result<()> {
        if end <= self.allocated {
            return Ok(());
        }
        let before = self.allocated;
        for target in [end + PREALLOCATED_BYTES, end] {
            match self.zero_to(target) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    // Give back what was written, so that the disk keeps its room for the other
                    // files, and the file holds nothing but zeros after its records.
                    let _ = self.file.set_len(before);
                    self.allocated = before;
                    if target == end {
                        return Err(e);
                    }
                }
            }
        }
        Ok(())
    }

    fn zero_to(&mut self, target: u64) -> io::Result<()> {
        static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
        while self.allocated < target {
            let n = (target - self.allocated).min(ZEROS.len() as u64);
            self.file
                .write_all_at(&ZEROS[..n as usize], self.allocated)?;
            self.allocated += n;
        }
        Ok(())
    }

    /// Makes every record appended so far durable (`fdatasync`), if any is not yet.
    pub fn sync(&mut self) -> io::Result<()> {
        if self.unsynced {
            self.file.sync_data()?;
            self.unsynced = false;
        }
        Ok(())
    }

    /// Cuts the log back to `len` (a length [`Log::len`] gave before later appends): a caller
    /// that could not make those records durable takes them back, so that they are never read.
    /// The zeros after them go too; the next append writes new ones.
    pub fn truncate(&mut self, len: u64) -> io::Result<()> {
        if len < self.len {
            self.file.set_len(len)?;
            self.len = len;
            self.allocated = len;
            self.unsynced = true;
        }
        Ok(())
    }

    /// A second handle on the file, for syncing it from another thread (`--durability interval`).
    pub fn sync_handle(&self) -> io::Result<File> {
        self.file.try_clone()
    }

    /// Empties the log (once a snapshot holds what it held), durably.
    pub fn clear(&mut self) -> io::Result<()> {
        self.file.set_len(0)?;
        self.file.sync_all()?;
        self.len = 0;
        self.allocated = 0;
        self.unsynced = false;
        Ok(())
    }

    /// Bytes of whole records in the log.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The records of the log at `path` between byte `from` (where a record starts) and `to` (the
/// end of a whole record; the zeros or the file's end if none), read without opening it for
/// writing. Bytes there that are not whole records are an error: the range is one a writer
/// already made whole.
pub fn read_range(path: &Path, from: u64, to: Option<u64>) -> io::Result<Vec<Vec<u8>>> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(from))?;
    let mut bytes = Vec::new();
    match to {
        Some(to) => {
            let len = to.checked_sub(from).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "a range that ends before it starts",
                )
            })?;
            bytes.resize(len as usize, 0);
            file.read_exact(&mut bytes)?;
        }
        None => {
            file.read_to_end(&mut bytes)?;
        }
    }
    let read = frame::read_log(&bytes);
    let whole = match to {
        Some(_) => read.valid_len == bytes.len(),
        None => matches!(read.tail, Tail::Clean | Tail::Zeros),
    };
    if !whole {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: the bytes from {} on are not whole records ({:?})",
                path.display(),
                from + read.valid_len as u64,
                read.tail
            ),
        ));
    }
    Ok(read.records.iter().map(|r| r.to_vec()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reopen(path: &Path) -> Opened {
        Log::open(path).unwrap()
    }

    #[test]
    fn records_survive_reopening_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shard-0.log");
        let mut log = reopen(&path).log;
        for r in [&b"a"[..], b"bb", b"c"] {
            log.append(r).unwrap();
        }
        log.sync().unwrap();
        drop(log);
        let opened = reopen(&path);
        assert_eq!(
            opened.records,
            vec![b"a".to_vec(), b"bb".to_vec(), b"c".to_vec()]
        );
        assert_eq!(opened.cut, None);
    }

    #[test]
    fn the_file_runs_ahead_in_zeros_and_records_follow_the_last_whole_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shard-0.log");
        let mut log = reopen(&path).log;
        log.append(b"one").unwrap();
        log.sync().unwrap();
        let records = log.len();
        let file_len = std::fs::metadata(&path).unwrap().len();
        assert_eq!(file_len, records + PREALLOCATED_BYTES);
        drop(log);
        let mut opened = reopen(&path);
        assert_eq!((opened.records.len(), opened.cut), (1, None));
        assert_eq!(opened.log.len(), records);
        opened.log.append(b"two").unwrap();
        opened.log.sync().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), file_len);
        drop(opened);
        assert_eq!(
            reopen(&path).records,
            vec![b"one".to_vec(), b"two".to_vec()]
        );
        let empty = reopen(&path).log.append(b"").unwrap_err();
        assert_eq!(empty.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn a_record_that_reached_the_disk_after_one_that_did_not_is_cut_for_good() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shard-0.log");
        let mut log = reopen(&path).log;
        log.append(b"synced").unwrap();
        let synced = log.len();
        log.append(b"lost").unwrap();
        let lost = log.len();
        log.append(b"written back before the one before it")
            .unwrap();
        drop(log);
        // The crash: the kernel had written back the third record but not the second.
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(&vec![0; (lost - synced) as usize], synced)
            .unwrap();
        let mut opened = reopen(&path);
        assert_eq!(opened.records, vec![b"synced".to_vec()]);
        assert_eq!(
            opened.cut.map(|c| (c.at, c.tail)),
            Some((synced, Tail::Corrupt))
        );
        assert_eq!(std::fs::metadata(&path).unwrap().len(), synced);
        // A record of the same length as the lost one must not bring the third one back.
        opened.log.append(b"next").unwrap();
        opened.log.sync().unwrap();
        drop(opened);
        assert_eq!(
            reopen(&path).records,
            vec![b"synced".to_vec(), b"next".to_vec()]
        );
    }

    #[test]
    fn a_torn_tail_is_cut_and_new_records_follow_the_last_whole_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shard-0.log");
        let mut log = reopen(&path).log;
        log.append(b"whole").unwrap();
        log.append(b"torn by a crash").unwrap();
        log.sync().unwrap();
        let whole = (frame::HEADER_BYTES + 5) as u64;
        let full = log.len();
        drop(log);
        // The crash: the second record's last bytes never reached the disk.
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(full - 4)
            .unwrap();
        let mut opened = reopen(&path);
        assert_eq!(opened.records, vec![b"whole".to_vec()]);
        let cut = opened.cut.unwrap();
        assert_eq!(
            (cut.at, cut.bytes, cut.tail),
            (whole, full - 4 - whole, Tail::Torn)
        );
        assert_eq!(std::fs::metadata(&path).unwrap().len(), whole);
        opened.log.append(b"after").unwrap();
        opened.log.sync().unwrap();
        drop(opened);
        let records = reopen(&path).records;
        assert_eq!(records, vec![b"whole".to_vec(), b"after".to_vec()]);
    }

    #[test]
    fn truncate_takes_back_the_records_after_a_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shard-0.log");
        let mut log = reopen(&path).log;
        log.append(b"kept").unwrap();
        let mark = log.len();
        log.append(b"not made durable").unwrap();
        log.truncate(mark).unwrap();
        log.append(b"next").unwrap();
        log.sync().unwrap();
        drop(log);
        assert_eq!(
            reopen(&path).records,
            vec![b"kept".to_vec(), b"next".to_vec()]
        );
    }

    #[test]
    fn clear_empties_it_durably() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shard-0.log");
        let mut log = reopen(&path).log;
        log.append(b"covered by a snapshot").unwrap();
        log.clear().unwrap();
        assert!(log.is_empty());
        drop(log);
        assert!(reopen(&path).records.is_empty());
    }

    #[test]
    fn read_range_gives_the_records_between_two_marks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shard-0.log");
        let mut log = reopen(&path).log;
        log.append(b"before").unwrap();
        let from = log.len();
        log.append(b"one").unwrap();
        log.append(b"two").unwrap();
        let to = log.len();
        log.append(b"after").unwrap();
        assert_eq!(
            read_range(&path, from, Some(to)).unwrap(),
            vec![b"one".to_vec(), b"two".to_vec()]
        );
        assert_eq!(
            read_range(&path, to, None).unwrap(),
            vec![b"after".to_vec()]
        );
        // A range that does not start at a record is refused, not misread.
        let refused = read_range(&path, from + 1, Some(to)).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::InvalidData);
    }
}
