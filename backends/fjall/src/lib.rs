//! Durable storage backend for HeliosDB-Lite on [fjall](https://crates.io/crates/fjall), an
//! LSM-tree with a write-ahead journal.
//!
//! * Every [`WriteBatch`] becomes one fjall batch across keyspaces: one journal record, all or
//!   nothing after a crash.
//! * [`Durability::Buffered`] hands the journal record to the operating system before
//!   returning (survives `kill -9`); [`Durability::Sync`] also fsyncs it.
//! * A second open of the same directory, from this process or another, fails with
//!   [`StorageError::Locked`] naming the path.
//! * A failed fsync poisons the backend: every later commit returns
//!   [`StorageError::Poisoned`] until the database is reopened.
//! * Side records ([`StorageBackend::put_side_record`]) are files `heliosdb.NAME` in the
//!   directory, written whole and renamed into place. The directory also keeps a
//!   [`RESERVE_FILE`] of [`RESERVE_BYTES`], deleted to make room for a side record when
//!   the disk is full: the record a failed commit leaves is written exactly then.
//! * Errors are sentences naming the path and the cause; a read-only directory is
//!   [`StorageError::ReadOnlyDirectory`].
#![deny(unsafe_code)]

use fjall::{KeyspaceCreateOptions, PersistMode, Readable};
use heliosdb_engine::backend::{
    BatchOp, Direction, Durability, ErasureStep, KvIter, Snapshot, StorageBackend, StorageError,
    WriteBatch, validate_keyspace_name, validate_side_record_name,
};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::io::Write as _;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

type Keyspaces = HashMap<String, fjall::Keyspace>;

/// Tuning for [`FjallBackend::open_with`]. The defaults suit a small device.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct FjallOptions {
    /// Block cache size in bytes (fjall's default when `None`: 32 MiB).
    pub cache_size_bytes: Option<u64>,
    /// Largest total journal size before memtables are flushed (fjall's default when
    /// `None`).
    pub max_journaling_size_bytes: Option<u64>,
    /// Largest in-memory write buffer (memtable) of each keyspace before it is flushed to
    /// disk (fjall's default when `None`: 64 MiB).
    pub max_memtable_bytes: Option<u64>,
}

/// A [`StorageBackend`] on fjall, in one directory.
pub struct FjallBackend {
    path: PathBuf,
    db: fjall::Database,
    /// Shared with every snapshot: a snapshot costs one reference count, and a keyspace
    /// created later replaces the map (snapshots keep theirs).
    keyspaces: RwLock<Arc<Keyspaces>>,
    poisoned: AtomicBool,
    memtable_bytes: Option<u64>,
}

impl std::fmt::Debug for FjallBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FjallBackend")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn backend_error(error: fjall::Error) -> StorageError {
    match error {
        fjall::Error::Poisoned => StorageError::Poisoned,
        fjall::Error::Io(io) => StorageError::Io(io),
        other => StorageError::Backend {
            backend: "fjall",
            source: Box::new(FjallFailure::new(other)),
        },
    }
}

/// A fjall error as a sentence: fjall prints its errors as Rust debug output
/// (`FjallError: Io(Os { .. })`), which tells a user nothing. The original is kept
/// ([`FjallFailure::fjall_error`]); its I/O cause, when there is one, is the source, so a
/// chain of causes printed for a user stays sentences.
#[derive(Debug)]
pub struct FjallFailure {
    message: String,
    error: fjall::Error,
}

impl FjallFailure {
    fn new(error: fjall::Error) -> Self {
        Self {
            message: describe(&error),
            error,
        }
    }

    /// The error fjall reported.
    pub fn fjall_error(&self) -> &fjall::Error {
        &self.error
    }
}

impl std::fmt::Display for FjallFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for FjallFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        io_cause(&self.error).map(|io| io as &(dyn std::error::Error + 'static))
    }
}

/// The first I/O error in `error`'s source chain.
fn io_cause<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a std::io::Error> {
    let mut cause = Some(error);
    while let Some(current) = cause {
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        cause = current.source();
    }
    None
}

fn describe(error: &fjall::Error) -> String {
    if let Some(io) = io_cause(error) {
        return io.to_string();
    }
    match error {
        fjall::Error::JournalRecovery(_) => {
            "the write-ahead journal is damaged and cannot be replayed".to_owned()
        }
        fjall::Error::InvalidVersion(_) => {
            "the directory holds a store of a format version this build does not read".to_owned()
        }
        fjall::Error::Decompress(_) => {
            "a block of a table file cannot be decompressed: the file is damaged".to_owned()
        }
        fjall::Error::InvalidTrailer | fjall::Error::InvalidTag(_) => {
            "a table file is damaged (bad trailer or tag)".to_owned()
        }
        fjall::Error::Storage(_) => "a table file is damaged or unreadable".to_owned(),
        fjall::Error::Poisoned => {
            "the store refuses writes after an earlier write failure".to_owned()
        }
        fjall::Error::KeyspaceDeleted => "a keyspace was deleted while in use".to_owned(),
        fjall::Error::Locked => "the directory is locked by another open handle".to_owned(),
        fjall::Error::Unrecoverable => "the store is damaged beyond recovery".to_owned(),
        _ => "the store reported an unknown failure".to_owned(),
    }
}

/// The file kept in the directory to be deleted when a side record must be written on a
/// full disk.
pub const RESERVE_FILE: &str = "heliosdb.reserve";

/// Size of [`RESERVE_FILE`]: room for the record of a failed commit of several thousand
/// rows.
pub const RESERVE_BYTES: usize = 4 << 20;

fn side_record_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("heliosdb.{name}"))
}

/// Writes `bytes` to `path` and fsyncs it.
fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Creates [`RESERVE_FILE`] when it is missing, best effort: a full disk leaves it for a
/// later open. Filled with pseudo-random bytes, so that a compressing file system keeps
/// real blocks for it.
fn ensure_reserve(dir: &Path) {
    let path = dir.join(RESERVE_FILE);
    if std::fs::metadata(&path).is_ok_and(|meta| meta.len() >= RESERVE_BYTES as u64) {
        return;
    }
    let mut state = 0x2545_F491_4F6C_DD1D_u64;
    let mut bytes = Vec::with_capacity(RESERVE_BYTES);
    while bytes.len() < RESERVE_BYTES {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    let tmp = dir.join(format!("{RESERVE_FILE}.tmp"));
    let made = write_synced(&tmp, &bytes)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .and_then(|()| sync_dir(dir));
    if made.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

impl FjallBackend {
    /// Opens the database in directory `path`, creating it if missing.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StorageError> {
        Self::open_with(path, FjallOptions::default())
    }

    /// Capacity of the block cache, in bytes.
    pub fn cache_capacity(&self) -> u64 {
        self.db.cache_capacity()
    }

    fn keyspace_options(memtable_bytes: Option<u64>) -> KeyspaceCreateOptions {
        let options = KeyspaceCreateOptions::default();
        match memtable_bytes {
            Some(bytes) => options.max_memtable_size(bytes),
            None => options,
        }
    }

    /// Opens with explicit tuning.
    pub fn open_with(path: impl AsRef<Path>, options: FjallOptions) -> Result<Self, StorageError> {
        let path = path.as_ref().to_path_buf();
        let open_error = |source: Box<dyn std::error::Error + Send + Sync>| StorageError::Open {
            path: path.clone(),
            source,
        };
        let read_only = |io: &std::io::Error| {
            matches!(
                io.kind(),
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
            )
            .then(|| StorageError::ReadOnlyDirectory {
                path: path.clone(),
                source: std::io::Error::new(io.kind(), io.to_string()),
            })
        };
        let fjall_error = |error: fjall::Error| {
            io_cause(&error)
                .and_then(read_only)
                .unwrap_or_else(|| open_error(Box::new(FjallFailure::new(error))))
        };
        match std::fs::metadata(&path) {
            Ok(meta) if !meta.is_dir() => {
                return Err(open_error("the path exists and is not a directory".into()));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(&path).map_err(|e| open_error(Box::new(e)))?;
            }
            Err(e) => return Err(open_error(Box::new(e))),
        }
        restore_lock_file(&path)
            .map_err(|e| read_only(&e).unwrap_or_else(|| open_error(Box::new(e))))?;
        let key = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        let reopening = closed_here()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&key);
        let started = std::time::Instant::now();
        let db = loop {
            let mut builder = fjall::Database::builder(&path);
            if let Some(bytes) = options.cache_size_bytes {
                builder = builder.cache_size(bytes);
            }
            if let Some(bytes) = options.max_journaling_size_bytes {
                builder = builder.max_journaling_size(bytes);
            }
            match builder.open() {
                Ok(db) => break db,
                // This process closed the database a moment ago: fjall lets go of the lock
                // only once its background flushes and compactions have stopped, which
                // can take a while after a large write. Wait for that rather than report
                // the database as open elsewhere.
                Err(fjall::Error::Locked) if reopening && started.elapsed() < RELOCK_PATIENCE => {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Err(fjall::Error::Locked) => return Err(StorageError::Locked { path }),
                Err(other) => return Err(fjall_error(other)),
            }
        };
        closed_here()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&key);
        let mut keyspaces = HashMap::new();
        for name in db.list_keyspace_names() {
            let name = name.to_string();
            // Names listed by fjall were valid when created; check anyway, fjall panics on
            // invalid names.
            if validate_keyspace_name(&name).is_err() {
                continue;
            }
            let handle = db
                .keyspace(&name, || Self::keyspace_options(options.max_memtable_bytes))
                .map_err(fjall_error)?;
            keyspaces.insert(name, handle);
        }
        ensure_reserve(&path);
        Ok(Self {
            path,
            db,
            keyspaces: RwLock::new(Arc::new(keyspaces)),
            poisoned: AtomicBool::new(false),
            memtable_bytes: options.max_memtable_bytes,
        })
    }

    fn check_poisoned(&self) -> Result<(), StorageError> {
        if self.poisoned.load(Ordering::Acquire) {
            Err(StorageError::Poisoned)
        } else {
            Ok(())
        }
    }

    fn poison_on_error<T>(&self, result: Result<T, fjall::Error>) -> Result<T, StorageError> {
        result.map_err(|e| {
            self.poisoned.store(true, Ordering::Release);
            backend_error(e)
        })
    }
}

struct FjallSnapshot {
    snapshot: fjall::Snapshot,
    keyspaces: Arc<Keyspaces>,
}

impl FjallSnapshot {
    fn handle(&self, name: &str) -> Result<&fjall::Keyspace, StorageError> {
        self.keyspaces
            .get(name)
            .ok_or_else(|| StorageError::UnknownKeyspace {
                name: name.to_owned(),
            })
    }
}

fn owned(bound: Bound<&[u8]>) -> Bound<Vec<u8>> {
    match bound {
        Bound::Included(k) => Bound::Included(k.to_vec()),
        Bound::Excluded(k) => Bound::Excluded(k.to_vec()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

fn is_empty_range(lower: &Bound<Vec<u8>>, upper: &Bound<Vec<u8>>) -> bool {
    match (lower, upper) {
        (Bound::Included(l), Bound::Included(u)) => l > u,
        (Bound::Included(l), Bound::Excluded(u))
        | (Bound::Excluded(l), Bound::Included(u))
        | (Bound::Excluded(l), Bound::Excluded(u)) => l >= u,
        _ => false,
    }
}

impl Snapshot for FjallSnapshot {
    fn get(&self, keyspace: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        let handle = self.handle(keyspace)?;
        self.snapshot
            .get(handle, key)
            .map(|v| v.map(|v| v.to_vec()))
            .map_err(backend_error)
    }

    fn range<'a>(
        &'a self,
        keyspace: &str,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        direction: Direction,
    ) -> Result<KvIter<'a>, StorageError> {
        let handle = self.handle(keyspace)?;
        let (lower, upper) = (owned(lower), owned(upper));
        if is_empty_range(&lower, &upper) {
            return Ok(Box::new(std::iter::empty()));
        }
        let iter = self.snapshot.range::<Vec<u8>, _>(handle, (lower, upper));
        let pair = |guard: fjall::Guard| {
            guard
                .into_inner()
                .map(|(k, v)| (k.to_vec(), v.to_vec()))
                .map_err(backend_error)
        };
        Ok(match direction {
            Direction::Forward => Box::new(iter.map(pair)),
            Direction::Reverse => Box::new(iter.rev().map(pair)),
        })
    }
}

impl StorageBackend for FjallBackend {
    fn kind(&self) -> &'static str {
        "fjall"
    }

    fn location(&self) -> Option<PathBuf> {
        Some(self.path.clone())
    }

    fn limits(&self) -> Vec<(&'static str, u64)> {
        let mut limits = vec![("cache_bytes", self.cache_capacity())];
        if let Some(bytes) = self.memtable_bytes {
            limits.push(("max_memtable_bytes", bytes));
        }
        limits
    }

    fn ensure_keyspace(&self, name: &str) -> Result<(), StorageError> {
        validate_keyspace_name(name)?;
        if self.keyspaces.read().contains_key(name) {
            return Ok(());
        }
        let mut keyspaces = self.keyspaces.write();
        if !keyspaces.contains_key(name) {
            let handle = self
                .db
                .keyspace(name, || Self::keyspace_options(self.memtable_bytes))
                .map_err(backend_error)?;
            Arc::make_mut(&mut keyspaces).insert(name.to_owned(), handle);
        }
        Ok(())
    }

    fn keyspaces(&self) -> Result<Vec<String>, StorageError> {
        let mut names: Vec<String> = self.keyspaces.read().keys().cloned().collect();
        names.sort();
        Ok(names)
    }

    fn snapshot(&self) -> Result<Box<dyn Snapshot>, StorageError> {
        // Clone the handles first: a keyspace created after this snapshot is simply unknown
        // to it.
        let keyspaces = Arc::clone(&self.keyspaces.read());
        Ok(Box::new(FjallSnapshot {
            snapshot: self.db.snapshot(),
            keyspaces,
        }))
    }

    fn commit(&self, batch: &WriteBatch, durability: Durability) -> Result<(), StorageError> {
        self.check_poisoned()?;
        batch.validate()?;
        let mut fjall_batch = self.db.batch().durability(Some(match durability {
            Durability::Buffered => PersistMode::Buffer,
            Durability::Sync => PersistMode::SyncAll,
        }));
        {
            let keyspaces = self.keyspaces.read();
            let handle = |name: &String| {
                keyspaces
                    .get(name)
                    .ok_or_else(|| StorageError::UnknownKeyspace { name: name.clone() })
            };
            for op in batch.ops() {
                match op {
                    BatchOp::Put {
                        keyspace,
                        key,
                        value,
                    } => fjall_batch.insert(handle(keyspace)?, key.as_slice(), value.as_slice()),
                    BatchOp::Delete { keyspace, key } => {
                        fjall_batch.remove(handle(keyspace)?, key.as_slice());
                    }
                }
            }
        }
        self.poison_on_error(fjall_batch.commit())
    }

    fn persist(&self) -> Result<(), StorageError> {
        self.check_poisoned()?;
        self.poison_on_error(self.db.persist(PersistMode::SyncAll))
    }

    fn erasure_after_close(&self) -> Option<Box<dyn ErasureStep>> {
        Some(Box::new(JournalRetirement {
            dir: self.path.clone(),
            old: Vec::new(),
        }))
    }

    fn side_record(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        validate_side_record_name(name)?;
        match std::fs::read(side_record_path(&self.path, name)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StorageError::Io(e)),
        }
    }

    fn put_side_record(&self, name: &str, bytes: &[u8]) -> Result<(), StorageError> {
        validate_side_record_name(name)?;
        let path = side_record_path(&self.path, name);
        let tmp = self.path.join(format!("heliosdb.{name}.tmp"));
        let written = write_synced(&tmp, bytes).or_else(|first| {
            // The disk may be full: the reserve is kept for exactly this.
            let _ = std::fs::remove_file(&tmp);
            match std::fs::remove_file(self.path.join(RESERVE_FILE)) {
                Ok(()) => write_synced(&tmp, bytes),
                Err(_) => Err(first),
            }
        });
        let done = written
            .and_then(|()| std::fs::rename(&tmp, &path))
            .and_then(|()| sync_dir(&self.path));
        if done.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        done.map_err(StorageError::Io)
    }

    fn remove_side_record(&self, name: &str) -> Result<(), StorageError> {
        validate_side_record_name(name)?;
        match std::fs::remove_file(side_record_path(&self.path, name)) {
            Ok(()) => sync_dir(&self.path).map_err(StorageError::Io),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StorageError::Io(e)),
        }
    }

    fn reclaim(&self, keyspaces: &[&str]) -> Result<(), StorageError> {
        self.check_poisoned()?;
        self.persist()?;
        let all: Vec<fjall::Keyspace> = self.keyspaces.read().values().cloned().collect();
        // Every memtable goes to a table file (fjall retires a journal once it is full
        // and no memtable needs it), then the named keyspaces are rewritten.
        for keyspace in &all {
            self.poison_on_error(keyspace.rotate_memtable_and_wait())?;
        }
        for name in keyspaces {
            let keyspace = self.keyspaces.read().get(*name).cloned();
            if let Some(keyspace) = keyspace {
                self.poison_on_error(keyspace.major_compact())?;
            }
        }
        self.persist()?;
        self.retire_sealed_journals()
    }
}

impl FjallBackend {
    /// fjall deletes a sealed journal (one [`FjallBackend::seal_journal`] sealed, or one
    /// that filled up) in its maintenance after a flush, once every keyspace has
    /// persisted past it. So flush every keyspace, the memtables replayed from the sealed
    /// journal at open included: a keyspace whose active memtable is empty would not
    /// rotate, so each first gets a tombstone for a private marker key (never written, so
    /// no reader sees anything; no key of the engine starts with 0xFF 0xFF: table ids,
    /// seqs and node ids are big-endian and small, catalog keys are ASCII). Then wait for
    /// the maintenance that follows the last flush. Deterministic: nothing is left to
    /// chance but the scheduling of fjall's worker, given [`JOURNAL_RETIREMENT_PATIENCE`]
    /// before this gives up with an error naming the journal count.
    fn retire_sealed_journals(&self) -> Result<(), StorageError> {
        if self.db.journal_count() <= 1 {
            return Ok(());
        }
        let all: Vec<fjall::Keyspace> = self.keyspaces.read().values().cloned().collect();
        for keyspace in &all {
            self.poison_on_error(keyspace.remove(JOURNAL_MARKER_KEY))?;
            self.poison_on_error(keyspace.rotate_memtable_and_wait())?;
        }
        let deadline = std::time::Instant::now() + JOURNAL_RETIREMENT_PATIENCE;
        while self.db.journal_count() > 1 {
            if std::time::Instant::now() >= deadline {
                return Err(StorageError::Io(std::io::Error::other(format!(
                    "fjall kept {} journals in {} after every keyspace was flushed; the sealed one was not retired within {} s",
                    self.db.journal_count(),
                    self.path.display(),
                    JOURNAL_RETIREMENT_PATIENCE.as_secs()
                ))));
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        self.persist()
    }

    /// Seals the write-ahead journal of the database in `path`, which must be closed (an
    /// open database is refused with [`StorageError::Locked`]): the next open writes to a
    /// new, empty journal and replays the sealed one like any full journal; the next
    /// [`reclaim`](StorageBackend::reclaim) deletes it once every keyspace has persisted
    /// past it. fjall retires its journal only after 64 MB of writes; erasing a deleted
    /// value from every file (`heliosdb audit forget-subject`) needs it sooner: reclaim,
    /// close, seal, reopen, reclaim. Does nothing where there is no journal yet.
    pub fn seal_journal(path: impl AsRef<Path>) -> Result<(), StorageError> {
        let path = path.as_ref();
        let lock_path = path.join("lock");
        let lock = match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&lock_path)
        {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(StorageError::Io(e)),
        };
        let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let reopening = closed_here()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&key);
        let started = std::time::Instant::now();
        loop {
            match lock.try_lock() {
                Ok(()) => break,
                // Like an open: this process's own handle may still be winding down.
                Err(std::fs::TryLockError::WouldBlock)
                    if reopening && started.elapsed() < RELOCK_PATIENCE =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(StorageError::Locked {
                        path: path.to_path_buf(),
                    });
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(StorageError::Io(e)),
            }
        }
        let mut newest = None;
        for entry in std::fs::read_dir(path)? {
            let name = entry?.file_name();
            let id = name
                .to_str()
                .and_then(|n| n.strip_suffix(".jnl"))
                .and_then(|n| n.parse::<u64>().ok());
            newest = newest.max(id);
        }
        if let Some(id) = newest {
            let next = path.join(format!("{}.jnl", id + 1));
            let file = std::fs::File::create_new(&next)?;
            file.sync_all()?;
            std::fs::File::open(path)?.sync_all()?;
        }
        lock.unlock()?;
        Ok(())
    }
}

/// The erasure step of a fjall database ([`StorageBackend::erasure_after_close`]): the
/// write-ahead journal may still hold deleted values, and fjall retires a journal only
/// after 64 MB of writes. So, with the database closed, the journal is sealed
/// ([`FjallBackend::seal_journal`]); the reclaim of the next open deletes it; and the
/// check makes sure no journal that was there before the seal survived.
struct JournalRetirement {
    dir: PathBuf,
    /// The journals found when the journal was sealed.
    old: Vec<PathBuf>,
}

impl ErasureStep for JournalRetirement {
    fn before_reopen(&mut self) -> Result<(), StorageError> {
        self.old = journal_files(&self.dir)?;
        FjallBackend::seal_journal(&self.dir)
    }

    fn check_after(&self) -> Result<(), StorageError> {
        match self.old.iter().find(|path| path.exists()) {
            Some(left) => Err(StorageError::Io(std::io::Error::other(format!(
                "the old journal {} is still in use and may hold deleted values; run the erasure again",
                left.display()
            )))),
            None => Ok(()),
        }
    }
}

/// The journal files (`*.jnl`) in `dir`.
fn journal_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "jnl") {
            found.push(path);
        }
    }
    Ok(found)
}

/// The key [`FjallBackend::retire_sealed_journals`] deletes (a tombstone only) to cause a
/// flush: no key of the engine starts with 0xFF 0xFF.
const JOURNAL_MARKER_KEY: &[u8] = b"\xff\xffheliosdb-fjall/journal-retirement";

/// How long [`StorageBackend::reclaim`] waits for fjall to delete a sealed journal once
/// every keyspace has been flushed past it (it takes milliseconds; this bounds a stuck
/// worker, not a slow one).
const JOURNAL_RETIREMENT_PATIENCE: std::time::Duration = std::time::Duration::from_secs(120);

impl Drop for FjallBackend {
    fn drop(&mut self) {
        // Best effort: a clean close leaves the journal on stable storage.
        if !self.poisoned.load(Ordering::Acquire) {
            let _ = self.db.persist(PersistMode::SyncAll);
        }
        let key = std::fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone());
        closed_here()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key);
    }
}

/// fjall opens an existing store only when its `lock` file is there (it creates the file
/// for a new store only): a lock file deleted by hand made the database unopenable with a
/// bare "No such file or directory". The file holds nothing; recreate it.
fn restore_lock_file(dir: &Path) -> std::io::Result<()> {
    let lock = dir.join("lock");
    if dir.join("version").exists() && !lock.exists() {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lock)
        {
            Ok(_) => sync_dir(dir)?,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// How long an open waits for this process's own, just-closed handle to release the lock.
const RELOCK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// Databases this process has closed (canonical paths), whose lock fjall may still hold
/// while its background threads wind down.
fn closed_here() -> &'static std::sync::Mutex<std::collections::HashSet<PathBuf>> {
    static CLOSED: std::sync::OnceLock<std::sync::Mutex<std::collections::HashSet<PathBuf>>> =
        std::sync::OnceLock::new();
    CLOSED.get_or_init(Default::default)
}
