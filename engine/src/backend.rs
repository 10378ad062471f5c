//! The storage abstraction every backend implements.
//!
//! A backend is a set of named keyspaces, each an ordered map from byte keys to byte values.
//! Reads go through a [`Snapshot`], a consistent view across all keyspaces. Writes are
//! collected in a [`WriteBatch`] and committed atomically across keyspaces: after a crash
//! either every operation of a batch is visible or none is.
//!
//! The SQL layer, the audit ledger and every sink are written once on top of this trait;
//! `heliosdb-backend-memory` and `heliosdb-backend-fjall` implement it.

use std::fmt;
use std::ops::Bound;
use std::path::PathBuf;

pub mod fault;

/// Largest key a backend must accept, in bytes. Larger keys are refused with
/// [`StorageError::KeyTooLarge`] before they reach the backend (fjall panics on them).
pub const MAX_KEY_LEN: usize = 65_535;

/// Largest value a backend must accept, in bytes (fjall's limit is just under 4 GiB; we keep
/// a margin so one row can never come near it).
pub const MAX_VALUE_LEN: usize = 1 << 30;

/// Longest keyspace name, in bytes. Names are ASCII letters, digits, `_`, `-` and `.`.
pub const MAX_KEYSPACE_NAME_LEN: usize = 64;

/// How durable a commit must be before [`StorageBackend::commit`] returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Durability {
    /// Flushed to the operating system: survives a crash of the process, not a power loss
    /// until the next [`StorageBackend::persist`].
    #[default]
    Buffered,
    /// Flushed and fsynced: survives a power loss.
    Sync,
}

/// Direction of a range scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Direction {
    /// Ascending key order.
    #[default]
    Forward,
    /// Descending key order.
    Reverse,
}

/// One operation of a [`WriteBatch`].
#[derive(Clone, PartialEq, Eq)]
pub enum BatchOp {
    /// Insert or overwrite `key` in `keyspace`.
    Put {
        /// Target keyspace.
        keyspace: String,
        /// Key bytes.
        key: Vec<u8>,
        /// Value bytes.
        value: Vec<u8>,
    },
    /// Remove `key` from `keyspace` (no error if absent).
    Delete {
        /// Target keyspace.
        keyspace: String,
        /// Key bytes.
        key: Vec<u8>,
    },
}

impl fmt::Debug for BatchOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatchOp::Put {
                keyspace,
                key,
                value,
            } => write!(
                f,
                "Put({keyspace}, {} key bytes, {} value bytes)",
                key.len(),
                value.len()
            ),
            BatchOp::Delete { keyspace, key } => {
                write!(f, "Delete({keyspace}, {} key bytes)", key.len())
            }
        }
    }
}

/// Operations committed together, atomically, across keyspaces. Later operations on the same
/// key win over earlier ones.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteBatch {
    ops: Vec<BatchOp>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a put.
    pub fn put(&mut self, keyspace: &str, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push(BatchOp::Put {
            keyspace: keyspace.to_owned(),
            key: key.into(),
            value: value.into(),
        });
    }

    /// Adds a delete.
    pub fn delete(&mut self, keyspace: &str, key: impl Into<Vec<u8>>) {
        self.ops.push(BatchOp::Delete {
            keyspace: keyspace.to_owned(),
            key: key.into(),
        });
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when the batch holds no operation.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The operations in the order they were added.
    pub fn ops(&self) -> &[BatchOp] {
        &self.ops
    }

    /// Consumes the batch, yielding its operations in order.
    pub fn into_ops(self) -> Vec<BatchOp> {
        self.ops
    }

    /// Checks every key and value against the limits every backend honours, and every
    /// keyspace name against [`validate_keyspace_name`].
    pub fn validate(&self) -> Result<(), StorageError> {
        for op in &self.ops {
            let (keyspace, key, value_len) = match op {
                BatchOp::Put {
                    keyspace,
                    key,
                    value,
                } => (keyspace, key, Some(value.len())),
                BatchOp::Delete { keyspace, key } => (keyspace, key, None),
            };
            validate_keyspace_name(keyspace)?;
            if key.is_empty() || key.len() > MAX_KEY_LEN {
                return Err(StorageError::KeyTooLarge {
                    keyspace: keyspace.clone(),
                    len: key.len(),
                });
            }
            if let Some(len) = value_len.filter(|len| *len > MAX_VALUE_LEN) {
                return Err(StorageError::ValueTooLarge {
                    keyspace: keyspace.clone(),
                    len,
                });
            }
        }
        Ok(())
    }
}

/// Checks a keyspace name: 1 to [`MAX_KEYSPACE_NAME_LEN`] bytes of ASCII letters, digits,
/// `_`, `-` or `.`.
pub fn validate_keyspace_name(name: &str) -> Result<(), StorageError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_KEYSPACE_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(StorageError::InvalidKeyspaceName {
            name: name.to_owned(),
        })
    }
}

/// The smallest key greater than every key that starts with `prefix`, or `None` when no such
/// key exists (the prefix is empty or all `0xFF`).
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// A key/value pair read from a backend.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// An iterator over key/value pairs of one keyspace, in the requested direction.
pub type KvIter<'a> = Box<dyn Iterator<Item = Result<KeyValue, StorageError>> + 'a>;

/// A consistent, read-only view of every keyspace at one point in time. Commits made after
/// the snapshot was taken are not visible through it.
pub trait Snapshot: Send + Sync {
    /// Reads one key.
    fn get(&self, keyspace: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError>;

    /// Scans keys within the bounds, in `direction` order.
    fn range<'a>(
        &'a self,
        keyspace: &str,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        direction: Direction,
    ) -> Result<KvIter<'a>, StorageError>;

    /// Scans every key that starts with `prefix`, in `direction` order.
    fn prefix<'a>(
        &'a self,
        keyspace: &str,
        prefix: &[u8],
        direction: Direction,
    ) -> Result<KvIter<'a>, StorageError> {
        match prefix_successor(prefix) {
            Some(end) => self.range(
                keyspace,
                Bound::Included(prefix),
                Bound::Excluded(&end),
                direction,
            ),
            None => self.range(
                keyspace,
                Bound::Included(prefix),
                Bound::Unbounded,
                direction,
            ),
        }
    }
}

/// A storage backend: named keyspaces of ordered keys, consistent snapshots, atomic batches.
///
/// Implementations must be safe to share between threads. The engine serializes writers
/// itself, so `commit` is never called concurrently by one database; snapshots are taken
/// concurrently with commits.
pub trait StorageBackend: Send + Sync + 'static {
    /// Short name of the implementation (`"memory"`, `"fjall"`), for messages.
    fn kind(&self) -> &'static str;

    /// Where the data lives on disk, if anywhere.
    fn location(&self) -> Option<PathBuf>;

    /// The backend's size settings in effect, as (name, bytes) pairs — cache capacity,
    /// write-buffer and size limits — for diagnostics. Empty by default.
    fn limits(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }

    /// Creates the keyspace if it does not exist yet. Idempotent.
    fn ensure_keyspace(&self, name: &str) -> Result<(), StorageError>;

    /// Names of the existing keyspaces, sorted.
    fn keyspaces(&self) -> Result<Vec<String>, StorageError>;

    /// A consistent view of all keyspaces as of now.
    fn snapshot(&self) -> Result<Box<dyn Snapshot>, StorageError>;

    /// Applies every operation of `batch` atomically across keyspaces. Every keyspace named
    /// must exist. With [`Durability::Sync`] the batch is on stable storage before this
    /// returns.
    ///
    /// A commit that returns an error must not be visible to any snapshot taken after it.
    /// Whether it reaches stable storage later may be unknown (a write that failed half
    /// way, an fsync that failed after the write): the engine treats every error outside
    /// [`StorageError::is_clean_refusal`] as such an ambiguous failure, keeps what the
    /// batch overwrote in a side record ([`StorageBackend::put_side_record`]) and undoes
    /// the batch at the next open if it turns out durable after all.
    fn commit(&self, batch: &WriteBatch, durability: Durability) -> Result<(), StorageError>;

    /// Makes every commit so far durable against power loss (fsync).
    fn persist(&self) -> Result<(), StorageError>;

    /// Returns the space of deleted entries: writes out what is held in memory and
    /// rewrites `keyspaces`' table files without what was deleted from them. Retention
    /// calls it after pruning. A backend may still hold deleted bytes in a write-ahead
    /// journal until it retires that journal (fjall does at 64 MiB of journal), so
    /// secrets that must leave every file are kept elsewhere (`audit::redact` keys).
    /// Blocks until done. The default does nothing (a backend that keeps no files).
    fn reclaim(&self, keyspaces: &[&str]) -> Result<(), StorageError> {
        let _ = keyspaces;
        Ok(())
    }

    /// What erasing deleted values from every file still needs once this backend is
    /// closed, beyond [`reclaim`](StorageBackend::reclaim) while it is open: a backend
    /// that keeps a write-ahead journal can retire it only while closed. The erasure
    /// (`heliosdb_lite::erase_subject`) closes the database, runs
    /// [`ErasureStep::before_reopen`], opens and reclaims it again, closes it and ends
    /// with [`ErasureStep::check_after`]. `None` (the default): reclaim is enough.
    fn erasure_after_close(&self) -> Option<Box<dyn ErasureStep>> {
        None
    }

    /// Reads the side record `name`, if there is one. Side records are small named blobs
    /// kept beside the keyspaces, outside the journal and outside every commit, that live
    /// as long as the data does (in the database directory on disk, in memory otherwise).
    /// Names pass [`validate_side_record_name`].
    fn side_record(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError>;

    /// Writes the side record `name` durably (on stable storage before this returns),
    /// replacing any earlier one, atomically: a crash leaves the old record or the new one.
    /// It must work while commits fail and the backend is poisoned: the engine writes one
    /// right after a failed commit, when the disk may be full (a backend on disk keeps
    /// space in reserve for it).
    fn put_side_record(&self, name: &str, bytes: &[u8]) -> Result<(), StorageError>;

    /// Removes the side record `name` durably; no error when there is none.
    fn remove_side_record(&self, name: &str) -> Result<(), StorageError>;
}

/// The part of an erasure a backend runs on its closed storage
/// ([`StorageBackend::erasure_after_close`]).
pub trait ErasureStep: Send {
    /// Runs while no handle on the storage is open, before it is opened and reclaimed
    /// again (fjall: seals the journal, so that the next reclaim deletes it).
    fn before_reopen(&mut self) -> Result<(), StorageError>;

    /// Runs after that reopened database was reclaimed and closed: an error naming what
    /// the erasure had to remove and is still there.
    fn check_after(&self) -> Result<(), StorageError>;
}

/// Checks a side record name: 1 to 64 ASCII lowercase letters, digits or `-`.
pub fn validate_side_record_name(name: &str) -> Result<(), StorageError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(StorageError::InvalidKeyspaceName {
            name: name.to_owned(),
        })
    }
}

/// Errors raised by storage backends.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The database directory is locked by another open handle or process.
    #[error(
        "database at {} is already open (by another process or another handle in this one); close it first",
        path.display()
    )]
    Locked {
        /// Database directory.
        path: PathBuf,
    },
    /// The database directory cannot be written (a read-only mount, a write-protected
    /// evidence copy) and the backend must write to open it.
    #[error(
        "cannot open database at {}: the directory is read-only ({source}), and the store writes a lock file and its journal even to read; open a copy instead (heliosdb --db {} --copy-to DIR <command> copies it and runs the command on the copy)",
        path.display(), path.display()
    )]
    ReadOnlyDirectory {
        /// Database directory.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The database could not be opened or created at `path`.
    #[error("cannot open database at {}: {source}", path.display())]
    Open {
        /// Database directory.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An I/O error from the operating system.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// An error reported by the backend implementation.
    #[error("{backend} backend: {source}")]
    Backend {
        /// Backend kind.
        backend: &'static str,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A keyspace that does not exist was named.
    #[error("unknown keyspace {name:?}")]
    UnknownKeyspace {
        /// Keyspace name.
        name: String,
    },
    /// A keyspace name is empty, too long or has characters outside `[A-Za-z0-9_.-]`.
    #[error(
        "invalid keyspace name {name:?}: use 1 to {MAX_KEYSPACE_NAME_LEN} ASCII letters, digits, '_', '-' or '.'"
    )]
    InvalidKeyspaceName {
        /// The rejected name.
        name: String,
    },
    /// A key is empty or longer than [`MAX_KEY_LEN`].
    #[error(
        "key of {len} bytes in keyspace {keyspace:?} is empty or over the {MAX_KEY_LEN}-byte limit"
    )]
    KeyTooLarge {
        /// Keyspace name.
        keyspace: String,
        /// Key length in bytes.
        len: usize,
    },
    /// A value is longer than [`MAX_VALUE_LEN`].
    #[error("value of {len} bytes in keyspace {keyspace:?} is over the {MAX_VALUE_LEN}-byte limit")]
    ValueTooLarge {
        /// Keyspace name.
        keyspace: String,
        /// Value length in bytes.
        len: usize,
    },
    /// The backend's size limit would be exceeded; the commit changed nothing. Raise the
    /// limit (`database.memory_limit_mb`) or delete data.
    #[error(
        "database is full: the commit needs {needed_bytes} bytes, over the limit of {limit_bytes} bytes (database.memory_limit_mb)"
    )]
    Full {
        /// The limit, in bytes.
        limit_bytes: u64,
        /// What the data would have grown to.
        needed_bytes: u64,
    },
    /// A previous write failed in a way that may have left the journal in an unknown state;
    /// the database refuses further writes until it is reopened.
    #[error(
        "database is poisoned by an earlier write failure; nothing more is written until it is closed and opened again"
    )]
    Poisoned,
}

impl StorageError {
    /// True when the error is a refusal that changed nothing and never will: the batch
    /// was checked and refused before anything was written (bad keys or names, a full
    /// in-memory limit, a poisoned backend that writes nothing more). Every other commit
    /// error is ambiguous: part of the batch may have reached the disk, and may become
    /// durable later.
    pub fn is_clean_refusal(&self) -> bool {
        matches!(
            self,
            StorageError::UnknownKeyspace { .. }
                | StorageError::InvalidKeyspaceName { .. }
                | StorageError::KeyTooLarge { .. }
                | StorageError::ValueTooLarge { .. }
                | StorageError::Full { .. }
                | StorageError::Poisoned
                | StorageError::Locked { .. }
                | StorageError::ReadOnlyDirectory { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_successor_increments_last_non_ff_byte() {
        assert_eq!(prefix_successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_successor(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_successor(&[0xFF, 0xFF]), None);
        assert_eq!(prefix_successor(b""), None);
    }

    #[test]
    fn batch_validation_rejects_what_fjall_would_panic_on() {
        let mut batch = WriteBatch::new();
        batch.put("rows", vec![0u8; MAX_KEY_LEN + 1], b"v".to_vec());
        assert!(matches!(
            batch.validate(),
            Err(StorageError::KeyTooLarge { len, .. }) if len == MAX_KEY_LEN + 1
        ));

        let mut batch = WriteBatch::new();
        batch.put("", b"k".to_vec(), b"v".to_vec());
        assert!(matches!(
            batch.validate(),
            Err(StorageError::InvalidKeyspaceName { .. })
        ));

        let mut batch = WriteBatch::new();
        batch.put("rows", b"k".to_vec(), b"v".to_vec());
        batch.delete("rows", b"k".to_vec());
        assert!(batch.validate().is_ok());
        assert_eq!(batch.len(), 2);
    }

    #[test]
    fn keyspace_names_are_checked() {
        assert!(validate_keyspace_name("audit_log.v1-a").is_ok());
        assert!(validate_keyspace_name("bad/name").is_err());
        assert!(validate_keyspace_name(&"x".repeat(MAX_KEYSPACE_NAME_LEN + 1)).is_err());
    }
}
