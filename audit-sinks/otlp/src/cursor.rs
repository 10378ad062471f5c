//! The sink's durable cursor: the seq of the last event the receiver acknowledged, in a
//! small JSON file replaced atomically (write a temporary file, fsync it, rename it over
//! the cursor, fsync the directory), so a crash leaves either the old or the new cursor.

use crate::error::OtlpError;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What the cursor file holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CursorState {
    /// The followed database's id, hex: a cursor never moves to another database.
    pub database_id: String,
    /// Seq of the last event acknowledged by the receiver (or quarantined).
    pub seq: u64,
    /// Size of the last signed checkpoint acknowledged by the receiver (0 for none).
    #[serde(default)]
    pub checkpoint_size: u64,
}

/// The cursor file.
#[derive(Debug)]
pub struct Cursor {
    path: PathBuf,
}

impl Cursor {
    /// The cursor kept at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the cursor of database `database_id`: zeros when there is no file yet; an
    /// error when the file is unreadable or belongs to another database.
    pub fn load(&self, database_id: &str) -> Result<CursorState, OtlpError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(CursorState {
                    database_id: database_id.to_owned(),
                    ..CursorState::default()
                });
            }
            Err(e) => return Err(OtlpError::file(&self.path, "cannot read the cursor")(e)),
        };
        let state: CursorState = serde_json::from_slice(&bytes).map_err(|e| OtlpError::Cursor {
            path: self.path.clone(),
            message: format!(
                "not a cursor file ({e}); move it away to export the whole trail again"
            ),
        })?;
        if state.database_id != database_id {
            return Err(OtlpError::Cursor {
                path: self.path.clone(),
                message: format!(
                    "this cursor follows database {}, not this database ({database_id}); give each database its own cursor path",
                    state.database_id
                ),
            });
        }
        Ok(state)
    }

    /// Replaces the cursor with `state`, durably.
    pub fn store(&self, state: &CursorState) -> Result<(), OtlpError> {
        let dir = match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir)
            .map_err(OtlpError::file(&dir, "cannot create the directory"))?;
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(".tmp");
        let temp = dir.join(name);
        let mut text = serde_json::to_vec(state).map_err(|e| OtlpError::Cursor {
            path: self.path.clone(),
            message: format!("cannot encode the cursor: {e}"),
        })?;
        text.push(b'\n');
        let mut file = File::create(&temp).map_err(OtlpError::file(&temp, "cannot create"))?;
        file.write_all(&text)
            .and_then(|()| file.sync_all())
            .map_err(OtlpError::file(&temp, "cannot write"))?;
        drop(file);
        std::fs::rename(&temp, &self.path)
            .map_err(OtlpError::file(&self.path, "cannot replace the cursor"))?;
        sync_dir(&dir)
    }
}

/// Makes a rename in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), OtlpError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(OtlpError::file(dir, "cannot sync the directory"))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_another_database() -> Result<(), OtlpError> {
        let dir = tempfile::tempdir().map_err(OtlpError::file(Path::new("."), "tempdir"))?;
        let cursor = Cursor::new(dir.path().join("sub/otlp.cursor"));
        assert_eq!(cursor.load("aa")?.seq, 0);
        cursor.store(&CursorState {
            database_id: "aa".into(),
            seq: 42,
            checkpoint_size: 40,
        })?;
        let state = cursor.load("aa")?;
        assert_eq!((state.seq, state.checkpoint_size), (42, 40));
        // A cursor written before checkpoints were exported reads as none exported.
        std::fs::write(cursor.path(), br#"{"database_id":"aa","seq":7}"#)
            .map_err(OtlpError::file(cursor.path(), "w"))?;
        assert_eq!(cursor.load("aa")?.checkpoint_size, 0);
        let other = cursor.load("bb").map(|_| ()).map_err(|e| e.to_string());
        assert!(other.is_err_and(|e| e.contains("not this database")));
        std::fs::write(cursor.path(), b"garbage").map_err(OtlpError::file(cursor.path(), "w"))?;
        assert!(cursor.load("aa").is_err());
        Ok(())
    }
}
