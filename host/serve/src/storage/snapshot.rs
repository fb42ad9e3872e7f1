//! A shard's snapshot file: its engine's state (the chunks of a checkpoint) and what the log's
//! records are replayed onto — the model, the counters, the watermark. Framed records: the meta
//! first, then the state's header and chunks. A file is valid only whole: every record's
//! checksum matches and it holds exactly the chunks its meta announces.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::Arc;

use edgescore_durable::{atomic, frame};
use edgescore_runtime::Chunks;
use serde::{Deserialize, Serialize};

/// The layout of this file; a snapshot of another is refused by name.
const FORMAT: u32 = 1;

/// What a shard has counted over its life: part of its durable state, so that `/stats` keeps
/// counting across restarts and a replayed record is never counted twice.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShardTotals {
    /// Events recorded in windows.
    pub events: u64,
    /// The shard's rejections, by reason index.
    pub rejected: Vec<u64>,
    /// Events recorded, by the model version that scored them.
    pub by_version: BTreeMap<String, u64>,
}

impl ShardTotals {
    pub fn count(&mut self, version: &str, events: u64, rejected: &[(u8, u32)]) {
        self.events += events;
        if events > 0 {
            *self.by_version.entry(version.to_owned()).or_default() += events;
        }
        for &(reason, n) in rejected {
            let reason = reason as usize;
            if self.rejected.len() <= reason {
                self.rejected.resize(reason + 1, 0);
            }
            self.rejected[reason] += u64::from(n);
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    pub format: u32,
    pub shard: u32,
    pub generation: u64,
    /// The label and the model store's key of the model scoring when it was taken.
    pub version: String,
    pub model_sha256: String,
    /// The watermark the shard's engine had been advanced to.
    pub watermark: Option<f64>,
    pub totals: ShardTotals,
    /// User chunks that follow the state's header.
    pub chunks: u32,
}

impl SnapshotMeta {
    pub fn new(
        shard: usize,
        generation: u64,
        version: String,
        model_sha256: String,
        watermark: Option<f64>,
        totals: ShardTotals,
    ) -> SnapshotMeta {
        SnapshotMeta {
            format: FORMAT,
            shard: shard as u32,
            generation,
            version,
            model_sha256,
            watermark,
            totals,
            chunks: 0,
        }
    }
}

/// Writes `chunks` with `meta` to `path`, atomically (the chunks are not copied).
pub fn write(path: &Path, mut meta: SnapshotMeta, chunks: &Chunks) -> io::Result<()> {
    meta.chunks = u32::try_from(chunks.users.len()).map_err(io::Error::other)?;
    let meta = postcard::to_allocvec(&meta).map_err(io::Error::other)?;
    let payloads: Vec<&[u8]> = [meta.as_slice(), chunks.header.as_slice()]
        .into_iter()
        .chain(chunks.users.iter().map(Vec::as_slice))
        .collect();
    let headers: Vec<[u8; frame::HEADER_BYTES]> =
        payloads.iter().map(|p| frame::header(p)).collect();
    let parts = headers
        .iter()
        .zip(&payloads)
        .flat_map(|(h, p)| [h.as_slice(), p]);
    atomic::write(path, parts)
}

/// Why a snapshot file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("it is corrupt: {0}")]
    Corrupt(String),
}

/// Reads and checks the snapshot at `path`.
pub fn read(path: &Path) -> Result<(SnapshotMeta, Arc<Chunks>), SnapshotError> {
    let bytes = std::fs::read(path)?;
    let read = frame::read(&bytes);
    if read.tail != frame::Tail::Clean {
        return Err(SnapshotError::Corrupt(format!(
            "a record at byte {} is {:?} (the file has {} bytes)",
            read.valid_len,
            read.tail,
            bytes.len()
        )));
    }
    let Some((meta, rest)) = read.records.split_first() else {
        return Err(SnapshotError::Corrupt("the file is empty".into()));
    };
    let meta: SnapshotMeta = postcard::from_bytes(meta)
        .map_err(|e| SnapshotError::Corrupt(format!("its meta record does not decode: {e}")))?;
    if meta.format != FORMAT {
        return Err(SnapshotError::Corrupt(format!(
            "format {} (this edgescore reads format {FORMAT})",
            meta.format
        )));
    }
    let Some((header, users)) = rest.split_first() else {
        return Err(SnapshotError::Corrupt(
            "the state's header is missing".into(),
        ));
    };
    if users.len() != meta.chunks as usize {
        return Err(SnapshotError::Corrupt(format!(
            "it holds {} chunks of the {} its meta announces",
            users.len(),
            meta.chunks
        )));
    }
    let chunks = Chunks {
        header: header.to_vec(),
        users: users.iter().map(|u| u.to_vec()).collect(),
    };
    Ok((meta, Arc::new(chunks)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (SnapshotMeta, Chunks) {
        let mut totals = ShardTotals::default();
        totals.count("m@1", 3, &[(5, 2)]);
        let meta = SnapshotMeta::new(1, 4, "m@1".into(), "ab".into(), Some(10.0), totals);
        let chunks = Chunks {
            header: b"head".to_vec(),
            users: vec![b"one".to_vec(), b"two".to_vec()],
        };
        (meta, chunks)
    }

    #[test]
    fn reads_back_what_it_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snapshot");
        let (meta, chunks) = sample();
        write(&path, meta.clone(), &chunks).unwrap();
        let (read_meta, read_chunks) = read(&path).unwrap();
        assert_eq!(read_meta, SnapshotMeta { chunks: 2, ..meta });
        assert_eq!(*read_chunks, chunks);
        assert_eq!(read_meta.totals.rejected, vec![0, 0, 0, 0, 0, 2]);
    }

    #[test]
    fn a_flipped_bit_or_a_missing_chunk_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snapshot");
        let (meta, chunks) = sample();
        write(&path, meta, &chunks).unwrap();
        let whole = std::fs::read(&path).unwrap();
        let mut flipped = whole.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x40;
        std::fs::write(&path, &flipped).unwrap();
        assert!(matches!(read(&path), Err(SnapshotError::Corrupt(_))));
        // The last chunk cut off whole: every record left is valid, one is missing.
        std::fs::write(&path, &whole[..whole.len() - frame::HEADER_BYTES - 3]).unwrap();
        let error = read(&path).unwrap_err().to_string();
        assert!(error.contains("1 chunks of the 2"), "{error}");
    }
}
