//! Files replaced whole or not at all: the new content goes to a temporary file beside the
//! target, is synced, renamed over the target, and the folder is synced so that the rename
//! itself survives a crash. A reader sees the old file or the new one, never a mix.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// Replaces (or creates) `path` with `chunks`, atomically and durably.
pub fn write<'a>(path: &Path, chunks: impl IntoIterator<Item = &'a [u8]>) -> io::Result<()> {
    let folder = path
        .parent()
        .ok_or_else(|| io::Error::other(format!("{} has no folder", path.display())))?;
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = Path::new(&temporary);
    let mut file = File::create(temporary)?;
    for chunk in chunks {
        file.write_all(chunk)?;
    }
    file.sync_all()?;
    drop(file);
    fs::rename(temporary, path)?;
    File::open(folder)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_whole_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shard-0.snapshot");
        write(&path, [&b"old"[..]]).unwrap();
        write(&path, [&b"new "[..], b"content"]).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new content");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec!["shard-0.snapshot"]);
    }

    #[test]
    fn a_failed_write_leaves_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shard-0.snapshot");
        write(&path, [&b"old"[..]]).unwrap();
        // The temporary's name taken by a folder: creating it fails before the rename.
        fs::create_dir(dir.path().join("shard-0.snapshot.tmp")).unwrap();
        assert!(write(&path, [&b"new"[..]]).is_err());
        assert_eq!(fs::read(&path).unwrap(), b"old");
    }
}
