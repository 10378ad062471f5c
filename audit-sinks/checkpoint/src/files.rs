//! Where signed checkpoints are kept outside the database — the place an operator mounts
//! on WORM storage or ships off the device: one file the notes are appended to, or a
//! directory with one file per checkpoint.
//!
//! In a directory, the checkpoint of `size` events is the file
//! `<size as 20 digits>.checkpoint` (so the names sort by size), holding its signed note
//! (or notes, when several keys signed the same size), each followed by a blank line.
//! Each file is written whole: to a temporary file, fsynced, renamed into place, then the
//! directory is fsynced — a crash leaves either the old file or the new one, never half of
//! one.

use crate::{Checkpoint, CheckpointError, Note, VerifierKey, parse_notes};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Extension of the files of a checkpoint directory.
pub const CHECKPOINT_EXTENSION: &str = "checkpoint";

/// Where signed checkpoints are kept outside the database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckpointFiles {
    /// One file; each note is appended, followed by a blank line.
    File(PathBuf),
    /// A directory; one file per checkpoint, named by its size (see the module docs).
    Dir(PathBuf),
}

impl CheckpointFiles {
    /// The place at `path` as a command line names it: a directory when `path` is an
    /// existing directory or ends with `/`, a file otherwise.
    pub fn at(path: impl AsRef<Path>) -> Self {
        let path = path.as_ref();
        let trailing_slash = path
            .as_os_str()
            .to_str()
            .is_some_and(|p| p.ends_with('/') || p.ends_with(std::path::MAIN_SEPARATOR));
        if trailing_slash || path.is_dir() {
            CheckpointFiles::Dir(path.to_path_buf())
        } else {
            CheckpointFiles::File(path.to_path_buf())
        }
    }

    /// The file or directory.
    pub fn path(&self) -> &Path {
        match self {
            CheckpointFiles::File(path) | CheckpointFiles::Dir(path) => path,
        }
    }

    /// Every note kept, with the file that holds it: a file's notes in file order, a
    /// directory's files by name (so by size). Nothing yet (no file, no directory) is an
    /// empty list; a malformed note is an error naming its file.
    pub fn read_notes(&self) -> Result<Vec<(PathBuf, Note)>, CheckpointError> {
        let files = match self {
            CheckpointFiles::File(path) => vec![path.clone()],
            CheckpointFiles::Dir(dir) => {
                let entries = match std::fs::read_dir(dir) {
                    Ok(entries) => entries,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                    Err(source) => return Err(io(dir, source)),
                };
                let mut files = Vec::new();
                for entry in entries {
                    let path = entry.map_err(|source| io(dir, source))?.path();
                    let named = path.extension().is_some_and(|e| e == CHECKPOINT_EXTENSION)
                        && !path
                            .file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.starts_with('.'));
                    if named && path.is_file() {
                        files.push(path);
                    }
                }
                files.sort();
                files
            }
        };
        let mut notes = Vec::new();
        for file in files {
            let text = match std::fs::read_to_string(&file) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => return Err(io(&file, source)),
            };
            for note in parse_notes(&text).map_err(|e| e.in_file(&file))? {
                notes.push((file.clone(), note));
            }
        }
        Ok(notes)
    }

    /// The largest checkpoint kept here of the database `database_id` that `key` signed;
    /// notes of other keys or databases are skipped, a malformed one is an error naming
    /// its file. What a signer that keeps its checkpoints here must extend.
    pub fn last_signed(
        &self,
        key: &VerifierKey,
        database_id: &[u8; 16],
    ) -> Result<Option<Checkpoint>, CheckpointError> {
        let origin = Checkpoint::new(database_id, 0, [0; 32]).origin;
        let mut last: Option<Checkpoint> = None;
        for (file, note) in self.read_notes()? {
            if note.verify(key).is_err() {
                continue; // Another key's checkpoint: not this signer's to extend.
            }
            let checkpoint = Checkpoint::parse_body(note.text()).map_err(|e| e.in_file(&file))?;
            if checkpoint.origin == origin
                && last.as_ref().is_none_or(|l| l.size <= checkpoint.size)
            {
                last = Some(checkpoint);
            }
        }
        Ok(last)
    }

    /// Keeps `note`, the signed checkpoint of `size` events, durably; returns the file it
    /// is in. In a directory a note already in its file is not added twice.
    pub fn write(&self, size: u64, note: &Note) -> Result<PathBuf, CheckpointError> {
        let note = format!("{note}\n");
        match self {
            CheckpointFiles::File(path) => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).map_err(|source| io(parent, source))?;
                }
                let mut file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|source| io(path, source))?;
                file.write_all(note.as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(|source| io(path, source))?;
                Ok(path.clone())
            }
            CheckpointFiles::Dir(dir) => {
                std::fs::create_dir_all(dir).map_err(|source| io(dir, source))?;
                let name = file_name(size);
                let target = dir.join(&name);
                let mut text = match std::fs::read_to_string(&target) {
                    Ok(text) => text,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
                    Err(source) => return Err(io(&target, source)),
                };
                if text.contains(&note) {
                    return Ok(target);
                }
                text.push_str(&note);
                let tmp = dir.join(format!(".{name}.tmp"));
                let written = std::fs::File::create(&tmp)
                    .and_then(|mut file| {
                        file.write_all(text.as_bytes())?;
                        file.sync_all()
                    })
                    .map_err(|source| io(&tmp, source));
                if let Err(error) = written {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(error);
                }
                std::fs::rename(&tmp, &target).map_err(|source| io(&target, source))?;
                sync_dir(dir).map_err(|source| io(dir, source))?;
                Ok(target)
            }
        }
    }
}

/// The name of the file of the checkpoint of `size` events in a checkpoint directory.
pub fn file_name(size: u64) -> String {
    format!("{size:020}.{CHECKPOINT_EXTENSION}")
}

fn io(path: &Path, source: std::io::Error) -> CheckpointError {
    CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Makes a rename in `dir` durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Directories cannot be opened for fsync here; the rename is as durable as the platform
/// makes it.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::{Checkpoint, SignerKey};

    #[test]
    fn a_directory_keeps_one_file_per_checkpoint_in_size_order() {
        let dir = tempfile::tempdir().expect("dir");
        let place = CheckpointFiles::at(format!("{}/cps/", dir.path().display()));
        assert!(matches!(place, CheckpointFiles::Dir(_)));
        assert!(place.read_notes().expect("nothing yet").is_empty());
        let key = SignerKey::generate("a").expect("key");
        let other = SignerKey::generate("b").expect("key");
        for size in [1234, 7, 99] {
            let note = Checkpoint::new(&[1; 16], size, [2; 32])
                .sign(&key)
                .expect("sign");
            place.write(size, &note).expect("write");
            place.write(size, &note).expect("again: kept once");
        }
        let note = Checkpoint::new(&[1; 16], 7, [2; 32])
            .sign(&other)
            .expect("sign");
        let file = place.write(7, &note).expect("second key");
        assert_eq!(file, dir.path().join("cps/00000000000000000007.checkpoint"));
        let sizes: Vec<u64> = place
            .read_notes()
            .expect("read")
            .iter()
            .map(|(_, n)| Checkpoint::parse_body(n.text()).expect("body").size)
            .collect();
        assert_eq!(sizes, [7, 7, 99, 1234]);
        assert_eq!(
            CheckpointFiles::at(dir.path().join("cps")),
            CheckpointFiles::Dir(dir.path().join("cps")),
            "an existing directory"
        );
        let leftovers = std::fs::read_dir(dir.path().join("cps"))
            .expect("list")
            .filter(|e| {
                e.as_ref()
                    .expect("entry")
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".tmp")
            })
            .count();
        assert_eq!(leftovers, 0);
    }
}
