//! Working on a copy of a database: `--copy-to DIR`, and what read-only commands do by
//! themselves when the database directory cannot be written.
//!
//! The store writes a lock file and its journal even to read, so a database on a
//! read-only mount (an evidence copy on WORM media, a write-protected directory) cannot be
//! opened where it is. `verify`, `audit tail`, `audit export`, `audit token` and `audit
//! subject` then copy it to a fresh temporary directory, say so on standard error, run on
//! the copy and delete it; nothing in the original directory is created or changed.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};

/// Copies the database directory `from` into `to`, which must not exist or be empty.
pub fn copy_database(from: &Path, to: &Path) -> anyhow::Result<()> {
    if !from.is_dir() {
        bail!("no database at {} to copy", from.display());
    }
    if std::fs::read_dir(to).is_ok_and(|mut entries| entries.next().is_some()) {
        bail!(
            "cannot copy the database to {}: the directory is not empty",
            to.display()
        );
    }
    std::fs::create_dir_all(to)
        .with_context(|| format!("cannot create {} for the copy", to.display()))?;
    let (source, target) = (std::fs::canonicalize(from)?, std::fs::canonicalize(to)?);
    if target.starts_with(&source) {
        bail!(
            "cannot copy the database into itself: {} is inside {}",
            to.display(),
            from.display()
        );
    }
    copy_tree(from, to).with_context(|| {
        format!(
            "cannot copy the database at {} to {}",
            from.display(),
            to.display()
        )
    })
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// A temporary copy of a database, deleted on drop.
pub struct TemporaryCopy {
    dir: PathBuf,
}

impl TemporaryCopy {
    /// Copies `from` into a new directory under the system's temporary directory.
    pub fn of(from: &Path) -> anyhow::Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir =
            std::env::temp_dir().join(format!("heliosdb-copy-{}-{nanos}", std::process::id()));
        let copy = TemporaryCopy { dir };
        copy_database(from, &copy.dir)?;
        Ok(copy)
    }

    /// Where the copy is.
    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for TemporaryCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// True when `error` says the database directory cannot be written.
pub fn is_read_only_directory(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<heliosdb_lite::StorageError>(),
            Some(heliosdb_lite::StorageError::ReadOnlyDirectory { .. })
        ) || matches!(
            cause.downcast_ref::<heliosdb_lite::Error>(),
            Some(heliosdb_lite::Error::Storage(
                heliosdb_lite::StorageError::ReadOnlyDirectory { .. }
            ))
        )
    })
}
