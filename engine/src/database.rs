//! `Database`: one open database, shared by any number of sessions on any number of threads.

use crate::audit::checkpoints::{self, StoredCheckpoint};
use crate::audit::ledger::{self, Head};
use crate::audit::merkle::Frontier;
use crate::audit::prune::{self, LegalHold, PruneAnchor, PruneBefore, PruneReport};
use crate::audit::sink::SinkRecorder;
use crate::audit::sink::{Follower, HeadSignal};
use crate::audit::tree;
use crate::audit::{AuditEvent, AuditPolicy, AuditSink, EventClass, SinkContext, SinkStatus};
use crate::backend::{Durability, StorageBackend, StorageError, WriteBatch};
use crate::catalog;
use crate::error::{Error, Result};
use crate::refused::{self, REFUSED_COMMIT_OPERATION};
use crate::session::{AppEvent, Session, SessionInfo};
use crate::store::SqlStore;
use parking_lot::{Mutex, RawMutex, lock_api::ArcMutexGuard};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

/// The user and application of events the database records on its own behalf.
pub const SYSTEM_USER: &str = "heliosdb";

/// When a commit becomes durable against power loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DurabilityMode {
    /// Every commit is fsynced before it returns.
    Sync,
    /// Commits reach the operating system before they return (a crash of the process loses
    /// nothing); a background thread fsyncs every `interval`, so a power loss loses at most
    /// that much — data and audit records together.
    Group {
        /// Time between fsyncs.
        interval: Duration,
    },
}

impl Default for DurabilityMode {
    fn default() -> Self {
        DurabilityMode::Group {
            interval: Duration::from_millis(10),
        }
    }
}

/// Settings of an open database.
#[derive(Clone, Debug)]
pub struct DatabaseOptions {
    /// Durability of commits.
    pub durability: DurabilityMode,
    /// How long a writer waits for another session's write transaction before
    /// [`Error::Busy`].
    pub busy_timeout: Duration,
    /// Name of the database, recorded in session metadata.
    pub name: String,
    /// What the audit trail records.
    pub audit: AuditPolicy,
    /// Most events a follower sink is handed in one delivery.
    pub sink_batch_size: usize,
    /// How long audit events are kept, and what may prune them.
    pub retention: RetentionOptions,
    /// Refuse every statement that could write data or schema ([`Error::ReadOnly`], the
    /// attempt recorded), and pruning, legal holds and subject erasure: for reporters and
    /// investigators. Their own reads are still audited, and sinks still deliver.
    pub read_only: bool,
}

/// Retention of the audit trail (`docs/CONFIG.md`, `audit.retention_days` and the keys
/// after it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetentionOptions {
    /// Days events are kept; 0 keeps them forever.
    pub retention_days: u64,
    /// Prune events older than `retention_days` when the database opens, then every
    /// `auto_prune_interval` while it is open (and on [`Database::apply_retention`]).
    pub auto_prune: bool,
    /// Time between automatic pruning runs while the database is open (default one hour).
    pub auto_prune_interval: Duration,
    /// A legal hold from the configuration: every prune is refused.
    pub legal_hold: bool,
    /// The trail may never be pruned (FDA 21 CFR Part 11 preset).
    pub lockdown: bool,
    /// Prune only under a signed checkpoint, even before the first one exists.
    pub require_checkpoints: bool,
}

impl Default for RetentionOptions {
    fn default() -> Self {
        Self {
            retention_days: 0,
            auto_prune: false,
            auto_prune_interval: Duration::from_secs(3600),
            legal_hold: false,
            lockdown: false,
            require_checkpoints: false,
        }
    }
}

/// The outcome of one automatic pruning run ([`Database::retention_status`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetentionRun {
    /// When it ran, in microseconds since the Unix epoch.
    pub at_us: i64,
    /// Events it pruned.
    pub events: u64,
    /// Why it did not prune at all (lockdown, a legal hold), when it was skipped.
    pub skipped: Option<String>,
    /// The error it stopped on, if any.
    pub error: Option<String>,
}

impl Default for DatabaseOptions {
    fn default() -> Self {
        Self {
            durability: DurabilityMode::default(),
            busy_timeout: Duration::from_secs(5),
            name: "main".to_owned(),
            audit: AuditPolicy::default(),
            sink_batch_size: 1024,
            retention: RetentionOptions::default(),
            read_only: false,
        }
    }
}

/// Exclusive right to commit, held by one transaction at a time.
pub(crate) type WriterGuard = ArcMutexGuard<RawMutex, ()>;

/// The open database as sessions see it: its core, plus the threads that work beside it.
/// Dropping the last handle stops the followers first — they may still record into the
/// core (a last checkpoint) — then the group-commit thread, then persists.
pub(crate) struct Shared {
    core: Arc<Core>,
    syncer: Mutex<Option<Syncer>>,
    followers: Mutex<Vec<Follower>>,
    /// Set once a sink that signs checkpoints is attached: pruning then stays under the
    /// newest stored signed checkpoint, even before the first one.
    checkpoint_sink: AtomicBool,
    /// The periodic automatic pruning thread ([`Database::start_retention`]).
    retention: Mutex<Option<Syncer>>,
    retention_status: Mutex<Option<RetentionRun>>,
}

impl std::ops::Deref for Shared {
    type Target = Core;

    fn deref(&self) -> &Core {
        &self.core
    }
}

/// Storage, ledger state and options: everything a commit needs.
pub(crate) struct Core {
    backend: Arc<dyn StorageBackend>,
    writer: Arc<Mutex<()>>,
    /// Number of commits so far; a transaction whose snapshot predates the latest commit
    /// must not write.
    version: AtomicU64,
    /// Serializes backend commits and fsyncs, so a commit that failed is the last thing
    /// the backend was asked to write: nothing (an fsync of the group-commit thread
    /// included) reaches it between the failure and the poison.
    commit_lock: Mutex<()>,
    poisoned: AtomicBool,
    /// Set by commits, cleared by the group-commit thread when it fsyncs.
    dirty: AtomicBool,
    options: DatabaseOptions,
    next_session_id: AtomicU64,
    database_id: [u8; 16],
    /// The ledger head and Merkle frontier; held while sealing and committing, so seqs
    /// follow commit order.
    ledger: Mutex<LedgerState>,
    /// The head seq for follower sinks to wait on; advanced after each commit.
    signal: Arc<HeadSignal>,
    /// Held while a checkpoint is checked and stored: the newest stored checkpoint cannot
    /// change under the check.
    checkpointing: Mutex<()>,
    /// The tree rebuilt from the stored records by checkpoint checks, so that each check
    /// hashes only the events sealed since the last one. Sealed records change only
    /// through this process while it holds the database open, and never after sealing.
    records_tree: Mutex<Option<RecordsTree>>,
}

/// A Merkle frontier recomputed from the stored records, and the roots it passed through
/// that checks asked for.
struct RecordsTree {
    frontier: Frontier,
    roots: std::collections::BTreeMap<u64, ledger::Hash>,
}

/// Roots a [`RecordsTree`] remembers (the checks ask for the newest stored checkpoint's
/// size and the next one's).
const REMEMBERED_ROOTS: usize = 16;

/// What sealing needs from the last commit.
struct LedgerState {
    head: Head,
    frontier: Frontier,
}

/// A background thread of the database: the group-commit syncer, the retention runner.
struct Syncer {
    // Dropping the sender tells the thread to finish (the syncer: after a last fsync).
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl Core {
    pub(crate) fn backend(&self) -> &dyn StorageBackend {
        &*self.backend
    }

    pub(crate) fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Waits up to the busy timeout for the write lock.
    pub(crate) fn lock_writer(&self) -> Result<WriterGuard> {
        let timeout = self.options.busy_timeout;
        self.writer.try_lock_arc_for(timeout).ok_or(Error::Busy {
            waited_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        })
    }

    pub(crate) fn options(&self) -> &DatabaseOptions {
        &self.options
    }

    pub(crate) fn database_id(&self) -> [u8; 16] {
        self.database_id
    }

    pub(crate) fn policy(&self) -> &AuditPolicy {
        &self.options.audit
    }

    pub(crate) fn next_session_id(&self) -> u64 {
        self.next_session_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The ledger head as of the last commit.
    pub(crate) fn head(&self) -> Head {
        self.ledger.lock().head
    }

    /// Commits `batch` and seals `events` into the ledger, in one atomic backend commit.
    /// Data writes need the write lock, which the caller proves by lending its guard;
    /// audit-only commits (queries, failures, rollbacks) need only the ledger lock.
    pub(crate) fn commit(
        &self,
        writer: Option<&WriterGuard>,
        batch: WriteBatch,
        events: &mut [AuditEvent],
    ) -> Result<()> {
        let has_data = !batch.is_empty();
        if has_data && writer.is_none() {
            return Err(Error::Internal(
                "data commit without the write lock".to_owned(),
            ));
        }
        if !has_data && events.is_empty() {
            return Ok(());
        }
        if self.poisoned.load(Ordering::Acquire) {
            return Err(StorageError::Poisoned.into());
        }
        let mut batch = batch;
        let mut state = self.ledger.lock();
        let (next_head, next_frontier) = if events.is_empty() {
            (state.head, None)
        } else {
            let mut leaves = Vec::with_capacity(events.len());
            let head = ledger::seal_with(state.head, events, &mut batch, |leaf| leaves.push(leaf))?;
            let mut frontier = state.frontier.clone();
            tree::append(&mut frontier, leaves, &mut batch);
            (head, Some(frontier))
        };
        batch.validate()?;
        self.write(batch)?;
        state.head = next_head;
        if let Some(frontier) = next_frontier {
            state.frontier = frontier;
        }
        self.signal.advance(next_head.seq);
        if has_data {
            self.version.fetch_add(1, Ordering::AcqRel);
        }
        Ok(())
    }

    /// Writes `batch` to the backend with the configured durability and marks the
    /// database dirty for the group-commit thread.
    ///
    /// Fails closed: after an ambiguous failure (see [`StorageError::is_clean_refusal`])
    /// the database is poisoned and a [`refused::RefusedCommit`] is kept, so that the next open
    /// undoes the batch should it reach the disk after all.
    fn write(&self, batch: WriteBatch) -> Result<()> {
        let durability = match self.options.durability {
            DurabilityMode::Sync => Durability::Sync,
            DurabilityMode::Group { .. } => Durability::Buffered,
        };
        let _serial = self.commit_lock.lock();
        if self.poisoned.load(Ordering::Acquire) {
            return Err(StorageError::Poisoned.into());
        }
        match refused::commit_or_keep(&*self.backend, &batch, durability) {
            Ok(()) => {
                self.dirty.store(true, Ordering::Release);
                Ok(())
            }
            Err(failure) => {
                // After a failed write or fsync we cannot know what reached the disk:
                // refuse every later write rather than continue in an unknown state (the
                // record that undoes this batch, should it land, is kept).
                if failure.poisons {
                    self.poisoned.store(true, Ordering::Release);
                }
                Err(failure.error)
            }
        }
    }

    /// A SYSTEM event (user `heliosdb`) ready to seal.
    pub(crate) fn system_event(&self, event: AppEvent) -> Result<AuditEvent> {
        let AppEvent {
            operation,
            targets,
            detail,
            success,
            custom,
        } = event;
        let operation = crate::session::operation_name(&operation, "a system event")?;
        let policy = self.policy();
        let (query, query_truncated) = policy.truncate(&detail);
        Ok(AuditEvent {
            timestamp_us: crate::chrono::Utc::now().timestamp_micros(),
            database_id: self.database_id,
            user: SYSTEM_USER.to_owned(),
            application: SYSTEM_USER.to_owned(),
            database: if policy.capture.database {
                self.options.name.clone()
            } else {
                String::new()
            },
            class: EventClass::System,
            operation,
            targets,
            query,
            query_truncated,
            success,
            custom,
            ..AuditEvent::default()
        })
    }

    /// Seals one SYSTEM event, on behalf of the engine or a sink, in its own commit;
    /// returns its seq.
    pub(crate) fn record_system(&self, event: AppEvent) -> Result<u64> {
        let mut events = [self.system_event(event)?];
        self.commit(None, WriteBatch::new(), &mut events)?;
        Ok(events[0].seq)
    }

    /// The Merkle roots at `sizes` (sorted, deduplicated) recomputed from the stored
    /// records — never from stored nodes or the frontier; `None` beyond the last record.
    fn roots_from_records(&self, sizes: &[u64]) -> Result<Vec<Option<ledger::Hash>>> {
        let mut cache = self.records_tree.lock();
        let snapshot = self.backend.snapshot()?;
        // After pruning, the kept records extend the anchor's frontier; a prune since the
        // last check removed records the cached frontier had not reached yet.
        let anchor = prune::load_anchor(&*snapshot)?.map(|a| a.frontier);
        let behind_anchor = |cached: &RecordsTree| {
            anchor
                .as_ref()
                .is_some_and(|a| a.size() > cached.frontier.size())
        };
        if cache.as_ref().is_none_or(behind_anchor) {
            *cache = Some(RecordsTree {
                frontier: anchor.clone().unwrap_or_default(),
                roots: std::collections::BTreeMap::new(),
            });
        }
        let Some(tree_cache) = cache.as_mut() else {
            return Err(Error::Internal("the records tree is not set".to_owned()));
        };
        let missing: Vec<u64> = sizes
            .iter()
            .copied()
            .filter(|size| !tree_cache.roots.contains_key(size))
            .collect();
        if missing
            .iter()
            .any(|size| *size < tree_cache.frontier.size())
        {
            drop(snapshot);
            return tree::roots_from_records(&*self.backend, sizes);
        }
        let found = tree::extend_from_records(&*snapshot, &mut tree_cache.frontier, &missing)?;
        for (size, root) in missing.iter().zip(found) {
            if let Some(root) = root {
                tree_cache.roots.insert(*size, root);
            }
        }
        while tree_cache.roots.len() > REMEMBERED_ROOTS {
            tree_cache.roots.pop_first();
        }
        Ok(sizes
            .iter()
            .map(|size| tree_cache.roots.get(size).copied())
            .collect())
    }

    /// The root a checkpoint of the first `size` events signs, recomputed from the stored
    /// records, once it is known that such a checkpoint extends the newest one stored:
    /// the root recomputed from the records at that one's size must be the root it signed
    /// ([`Error::CheckpointInconsistent`] otherwise). The stored tree must agree too, or
    /// proofs built from it would not check.
    pub(crate) fn checkpoint_root(&self, size: u64) -> Result<ledger::Hash> {
        let (tree_size, tree_root) = {
            let state = self.ledger.lock();
            (state.frontier.size(), state.frontier.root())
        };
        if size == 0 || size > tree_size {
            return Err(Error::CheckpointRefused(format!(
                "it covers {size} events; the ledger holds {tree_size}"
            )));
        }
        let snapshot = self.backend.snapshot()?;
        let newest = checkpoints::latest(&*snapshot)?;
        let mut sizes = vec![size];
        if let Some(newest) = &newest {
            sizes.push(newest.size);
        }
        sizes.sort_unstable();
        sizes.dedup();
        let roots = self.roots_from_records(&sizes)?;
        let root_at = |at: u64| {
            sizes
                .binary_search(&at)
                .ok()
                .and_then(|i| roots.get(i).copied().flatten())
        };
        if let Some(newest) = newest {
            let inconsistent = |why: String| Error::CheckpointInconsistent {
                stored_size: newest.size,
                size,
                why,
            };
            match root_at(newest.size) {
                None => {
                    return Err(inconsistent(format!(
                        "the ledger holds only {tree_size} events: its tail was cut or it was rolled back"
                    )));
                }
                Some(root) if root != newest.root => {
                    return Err(inconsistent(format!(
                        "the root recomputed from the stored events at {} is {}, the signed one is {}: events it covers were changed, removed or rewritten",
                        newest.size,
                        crate::error::hex(&root),
                        crate::error::hex(&newest.root)
                    )));
                }
                Some(_) => {}
            }
        }
        let root = root_at(size).ok_or_else(|| {
            Error::Integrity(format!(
                "the ledger head says {tree_size} events, but event records up to {size} are missing (run verify)"
            ))
        })?;
        let stored = if size == tree_size {
            tree_root
        } else {
            tree::root_at(&*snapshot, size, tree_size)?
        };
        if stored != root {
            return Err(Error::CheckpointRefused(format!(
                "the stored Merkle tree's root at {size} events is {}, the root recomputed from the stored events is {} (run verify)",
                crate::error::hex(&stored),
                crate::error::hex(&root)
            )));
        }
        Ok(root)
    }

    /// Stores a signed checkpoint after checking that it extends the newest one stored and
    /// that `root` is this ledger's Merkle root at `size`, recomputed from the records
    /// ([`Core::checkpoint_root`]). Returns false when a checkpoint of that size is
    /// already stored.
    pub(crate) fn store_checkpoint(&self, checkpoint: &StoredCheckpoint) -> Result<bool> {
        let expected_origin = format!("heliosdb/{}", crate::error::hex(&self.database_id));
        if checkpoint.origin != expected_origin {
            return Err(Error::CheckpointRefused(format!(
                "its origin is {:?}, this database's is {expected_origin:?}",
                checkpoint.origin
            )));
        }
        if self.poisoned.load(Ordering::Acquire) {
            return Err(StorageError::Poisoned.into());
        }
        let _serial = self.checkpointing.lock();
        let root = self.checkpoint_root(checkpoint.size)?;
        if root != checkpoint.root {
            return Err(Error::CheckpointRefused(format!(
                "its root for {} events is {}, the ledger's is {} (run verify)",
                checkpoint.size,
                crate::error::hex(&checkpoint.root),
                crate::error::hex(&root)
            )));
        }
        let snapshot = self.backend.snapshot()?;
        if checkpoints::get(&*snapshot, checkpoint.size)?.is_some() {
            return Ok(false);
        }
        drop(snapshot);
        let mut batch = WriteBatch::new();
        checkpoints::put(&mut batch, checkpoint);
        self.write(batch)?;
        Ok(true)
    }

    fn persist(&self) -> Result<()> {
        let _serial = self.commit_lock.lock();
        if self.poisoned.load(Ordering::Acquire) {
            return Err(StorageError::Poisoned.into());
        }
        self.dirty.store(false, Ordering::Release);
        self.backend.persist().map_err(|error| {
            self.poisoned.store(true, Ordering::Release);
            Error::Storage(error)
        })
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(retention) = self.retention.get_mut().take() {
            drop(retention.stop);
            // The retention thread may itself hold the last handle, and so run this.
            if retention.thread.thread().id() != std::thread::current().id() {
                let _ = retention.thread.join();
            }
        }
        // Followers deliver what is sealed and close before the storage goes.
        for mut follower in self.followers.get_mut().drain(..) {
            follower.stop();
        }
        if let Some(syncer) = self.syncer.get_mut().take() {
            drop(syncer.stop);
            // The syncer holds only a weak reference to the core: it never drops `Shared`
            // and so is never the thread running this.
            let _ = syncer.thread.join();
        }
        // Best effort: a clean close leaves everything on stable storage (a poisoned
        // database writes nothing more).
        let _ = self.core.persist();
    }
}

/// An open database. Cheap to clone; clones share the same storage. `Send + Sync`: open
/// sessions from any thread with [`Database::session`].
///
/// Writers are serialized (one write transaction at a time); readers never wait and see
/// only committed data.
#[derive(Clone)]
pub struct Database {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("backend", &self.shared.backend.kind())
            .field("location", &self.shared.backend.location())
            .field("options", &self.shared.options)
            .finish()
    }
}

impl Database {
    /// Opens a database on an already opened backend, creating the catalog on first use.
    pub fn with_backend(
        backend: Arc<dyn StorageBackend>,
        options: DatabaseOptions,
    ) -> Result<Database> {
        // First of all: a commit an earlier open was told had failed must not stay.
        let recovered = refused::recover(&*backend, options.read_only)?;
        catalog::initialize(&*backend)?;
        backend.ensure_keyspace(ledger::KS_AUDIT)?;
        backend.ensure_keyspace(ledger::KS_AUDIT_INDEX)?;
        backend.ensure_keyspace(tree::KS_AUDIT_TREE)?;
        backend.ensure_keyspace(checkpoints::KS_AUDIT_CHECKPOINTS)?;
        let snapshot = backend.snapshot()?;
        let mut batch = WriteBatch::new();
        let database_id = ledger::load_or_create_database_id(&*snapshot, &mut batch)?;
        if !batch.is_empty() {
            backend.commit(&batch, Durability::Sync)?;
        }
        let head = ledger::load_head(&*snapshot, &database_id)?;
        drop(snapshot);
        let frontier = tree::catch_up(&*backend, head.seq)?;
        let core = Arc::new(Core {
            backend,
            writer: Arc::new(Mutex::new(())),
            version: AtomicU64::new(0),
            commit_lock: Mutex::new(()),
            poisoned: AtomicBool::new(false),
            dirty: AtomicBool::new(false),
            options,
            next_session_id: AtomicU64::new(1),
            database_id,
            ledger: Mutex::new(LedgerState { head, frontier }),
            signal: Arc::new(HeadSignal::new(head.seq)),
            checkpointing: Mutex::new(()),
            records_tree: Mutex::new(None),
        });
        let syncer = match core.options.durability {
            DurabilityMode::Group { interval } => {
                Some(start_syncer(Arc::downgrade(&core), interval)?)
            }
            DurabilityMode::Sync => None,
        };
        let shared = Arc::new(Shared {
            core,
            syncer: Mutex::new(syncer),
            followers: Mutex::new(Vec::new()),
            checkpoint_sink: AtomicBool::new(false),
            retention: Mutex::new(None),
            retention_status: Mutex::new(None),
        });
        if let Some(recovered) = recovered {
            shared.record_system(
                AppEvent::new(REFUSED_COMMIT_OPERATION)
                    .detail(recovered.detail())
                    .custom("undone", if recovered.undone { "true" } else { "false" })
                    .custom("keys", recovered.keys.to_string()),
            )?;
        }
        Ok(Database { shared })
    }

    /// Opens a session: the unit of work, carrying who is connected and from where.
    /// A session is used by one thread at a time; open one per thread or per request.
    pub fn session(&self, info: SessionInfo) -> Session {
        let id = self.shared.next_session_id();
        Session::new(self.sql_store(), info, id)
    }

    /// A GlueSQL storage over this database, for driving GlueSQL directly (its own test
    /// suite does). Prefer [`Database::session`].
    pub fn sql_store(&self) -> SqlStore {
        SqlStore::new(Arc::clone(&self.shared))
    }

    /// The storage backend.
    pub fn backend(&self) -> &dyn StorageBackend {
        self.shared.backend()
    }

    /// The options the database was opened with.
    pub fn options(&self) -> &DatabaseOptions {
        &self.shared.options
    }

    /// [`Error::ReadOnly`] naming `what` when the database was opened read-only.
    pub(crate) fn refuse_if_read_only(&self, what: &str) -> Result<()> {
        if self.shared.options.read_only {
            return Err(Error::ReadOnly(format!("{what} is not allowed")));
        }
        Ok(())
    }

    /// Makes every commit so far durable against power loss.
    pub fn persist(&self) -> Result<()> {
        self.shared.persist()
    }

    /// The database's random id, fixed at creation; it seeds the audit chain.
    pub fn database_id(&self) -> [u8; 16] {
        self.shared.database_id()
    }

    /// The ledger head: seq and chain hash of the last audit event.
    pub fn audit_head(&self) -> Head {
        self.shared.head()
    }

    /// The Merkle tree head: the number of events and the RFC 6962 root over their leaves
    /// (`docs/FORMAT.md` §5.7). O(log n).
    pub fn audit_root(&self) -> (u64, ledger::Hash) {
        let state = self.shared.ledger.lock();
        (state.frontier.size(), state.frontier.root())
    }

    /// The Merkle root over the first `size` events, from stored nodes: O(log n).
    pub fn audit_root_at(&self, size: u64) -> Result<ledger::Hash> {
        let tree_size = self.audit_root().0;
        let snapshot = self.shared.backend.snapshot()?;
        tree::root_at(&*snapshot, size, tree_size)
    }

    /// The Merkle frontier after the first `size` events — the roots of the perfect
    /// subtrees that cover them, left to right — from stored nodes: O(log n). Push the
    /// leaves of later events onto it to compute later roots, as a sync batch does.
    pub fn audit_frontier_at(&self, size: u64) -> Result<crate::audit::merkle::Frontier> {
        let tree_size = self.audit_root().0;
        let snapshot = self.shared.backend.snapshot()?;
        tree::frontier_at(&*snapshot, size, tree_size)
    }

    /// The RFC 9162 inclusion proof of event `seq` in the tree of the first `size` events.
    /// Check it with [`merkle::verify_inclusion`](crate::audit::merkle::verify_inclusion)
    /// (leaf index `seq - 1`).
    pub fn inclusion_proof(&self, seq: u64, size: u64) -> Result<Vec<ledger::Hash>> {
        let tree_size = self.audit_root().0;
        let snapshot = self.shared.backend.snapshot()?;
        tree::inclusion_proof(&*snapshot, seq, size, tree_size)
    }

    /// The RFC 9162 consistency proof from the tree of `old_size` events to that of
    /// `new_size`. Check it with
    /// [`merkle::verify_consistency`](crate::audit::merkle::verify_consistency).
    pub fn consistency_proof(&self, old_size: u64, new_size: u64) -> Result<Vec<ledger::Hash>> {
        let tree_size = self.audit_root().0;
        let snapshot = self.shared.backend.snapshot()?;
        tree::consistency_proof(&*snapshot, old_size, new_size, tree_size)
    }

    /// The Merkle root a checkpoint of the first `size` events must sign, recomputed from
    /// the stored records (not from the stored tree), after checking that such a
    /// checkpoint extends the newest one in `__audit_checkpoints`: the root recomputed
    /// from the records at that one's size must be the one it signed. Refused with
    /// [`Error::CheckpointInconsistent`] (naming both sizes) after the ledger was cut,
    /// rolled back or rewritten under a stored checkpoint, and with
    /// [`Error::CheckpointRefused`] when the stored tree disagrees with the records. Every
    /// signer calls this before signing; [`Database::record_checkpoint`] checks again.
    ///
    /// The first call after opening hashes every stored event once; later calls hash only
    /// the events sealed since.
    pub fn checkpoint_root(&self, size: u64) -> Result<ledger::Hash> {
        self.shared.checkpoint_root(size)
    }

    /// Stores a signed checkpoint in `__audit_checkpoints`, after checking that its origin
    /// names this database, that it extends the newest stored checkpoint, and that its root
    /// is the ledger's Merkle root at its size recomputed from the records — see
    /// [`Database::checkpoint_root`] (refused with [`Error::CheckpointInconsistent`] or
    /// [`Error::CheckpointRefused`] otherwise). Returns false when a checkpoint of that
    /// size is already stored (it is kept). The checkpoint sink and `heliosdb checkpoint`
    /// call this; the copy that protects against a rollback of the whole database is the
    /// one kept outside.
    pub fn record_checkpoint(&self, checkpoint: &StoredCheckpoint) -> Result<bool> {
        self.shared.store_checkpoint(checkpoint)
    }

    /// Every checkpoint stored in the database, by increasing size.
    pub fn checkpoints(&self) -> Result<Vec<StoredCheckpoint>> {
        checkpoints::all(&*self.shared.backend.snapshot()?)
    }

    /// The stored checkpoint with the largest size.
    pub fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>> {
        checkpoints::latest(&*self.shared.backend.snapshot()?)
    }

    /// Records a SYSTEM event (user `heliosdb`) in its own commit, whatever the policy's
    /// class switches say; returns its seq. For operational facts an auditor must see: a
    /// sink quarantining a record, a retention run.
    pub fn record_system_event(&self, event: AppEvent) -> Result<u64> {
        self.shared.record_system(event)
    }

    /// The prune anchor, when events were ever pruned: where the kept ledger starts.
    pub fn prune_anchor(&self) -> Result<Option<PruneAnchor>> {
        prune::load_anchor(&*self.shared.backend.snapshot()?)
    }

    /// The legal hold placed with [`Database::set_legal_hold`], if any (a hold from the
    /// configuration is in [`DatabaseOptions::retention`]).
    pub fn legal_hold(&self) -> Result<Option<LegalHold>> {
        prune::load_hold(&*self.shared.backend.snapshot()?)
    }

    /// Places (`Some(reason)`) or releases (`None`) a legal hold: while one is placed every
    /// prune is refused. Stored in the database and recorded as a SYSTEM event
    /// (`LEGAL_HOLD_ON` / `LEGAL_HOLD_OFF`) naming `by` and the reason, in the same commit.
    pub fn set_legal_hold(&self, reason: Option<&str>, by: &str) -> Result<()> {
        self.refuse_if_read_only("placing or releasing a legal hold")?;
        let guard = self.shared.lock_writer()?;
        let mut batch = WriteBatch::new();
        let mut event = match reason {
            Some(reason) => {
                let reason = reason.trim();
                if reason.is_empty() {
                    return Err(Error::Unsupported(
                        "a legal hold needs a reason (a case or matter reference)".to_owned(),
                    ));
                }
                let hold = LegalHold {
                    reason: reason.to_owned(),
                    by: by.to_owned(),
                    since_us: crate::chrono::Utc::now().timestamp_micros(),
                };
                batch.put(catalog::KS_CATALOG, prune::HOLD_KEY, hold.encode());
                let mut event = AppEvent::new("LEGAL_HOLD_ON");
                event.detail = reason.to_owned();
                event
            }
            None => {
                batch.delete(catalog::KS_CATALOG, prune::HOLD_KEY);
                AppEvent::new("LEGAL_HOLD_OFF")
            }
        };
        event.targets = vec![crate::audit::AUDIT_TABLE.to_owned()];
        event.custom.insert("by".to_owned(), by.to_owned());
        let mut events = [self.shared.system_event(event)?];
        self.shared.commit(Some(&guard), batch, &mut events)
    }

    /// Why pruning is not allowed now, if it is not.
    fn prune_refusal(&self) -> Result<Option<String>> {
        let retention = &self.shared.options.retention;
        if retention.lockdown {
            return Ok(Some(
                "audit.audit_trail_lockdown = true: this audit trail is never pruned".to_owned(),
            ));
        }
        if retention.legal_hold {
            return Ok(Some(
                "audit.legal_hold = true in the configuration: pruning is suspended".to_owned(),
            ));
        }
        if let Some(hold) = self.legal_hold()? {
            return Ok(Some(format!(
                "a legal hold is placed ({}, by {}): pruning is suspended until it is released with `heliosdb audit hold off`",
                hold.reason, hold.by
            )));
        }
        Ok(None)
    }

    /// Removes the oldest events of the audit trail: those before `before`, never past
    /// the newest stored signed checkpoint that ends at or before them (once checkpoints
    /// are in use, while a sink that signs them is attached, or with
    /// `require_checkpoints`: then nothing is pruned before the first one is stored), nor
    /// past what an attached sink has taken. Waits up to
    /// [`SINK_POSITION_WAIT`](prune::SINK_POSITION_WAIT) for every attached sink to say where
    /// it stands (a sink that never does stops the prune; the report says which). Refused
    /// with [`Error::RetentionRefused`] under lockdown or a legal hold. With `dry_run`,
    /// reports what would be pruned and changes nothing. See
    /// [`prune`](crate::audit::prune) for what is kept.
    pub fn prune_before(&self, before: PruneBefore, dry_run: bool) -> Result<PruneReport> {
        self.prune_in_chunks(before, dry_run, prune::PRUNE_CHUNK)
    }

    /// [`Database::prune_before`], removing at most `chunk` events per commit (each commit
    /// with its own anchor and `PRUNE` event). Exposed so tests can drive several chunks
    /// without sealing hundreds of thousands of events.
    #[doc(hidden)]
    pub fn prune_in_chunks(
        &self,
        before: PruneBefore,
        dry_run: bool,
        chunk: u64,
    ) -> Result<PruneReport> {
        if !dry_run {
            self.refuse_if_read_only("pruning the audit trail")?;
        }
        if let Some(refusal) = self.prune_refusal()? {
            return Err(Error::RetentionRefused(refusal));
        }
        let chunk = chunk.max(1);
        self.wait_for_sink_positions(prune::SINK_POSITION_WAIT);
        let guard = self.shared.lock_writer()?;
        let snapshot = self.shared.backend.snapshot()?;
        let anchor = prune::load_anchor(&*snapshot)?;
        let first_seq = anchor.as_ref().map_or(1, |a| a.first_kept);
        let head = self.shared.head().seq;
        let requested = match before {
            PruneBefore::Seq(seq) => seq.saturating_sub(1).min(head),
            PruneBefore::Time(time_us) => prune::last_before(&*snapshot, first_seq, time_us)?,
        };
        let mut through = requested;
        let mut limited_by = None;
        let stored = checkpoints::all(&*snapshot)?;
        let sink_attached = self.shared.checkpoint_sink.load(Ordering::Acquire);
        let required = self.shared.options.retention.require_checkpoints;
        if !stored.is_empty() || sink_attached || required {
            let covered = stored
                .iter()
                .map(|c| c.size)
                .filter(|size| *size <= through)
                .max()
                .unwrap_or(0);
            if covered < through {
                limited_by = Some(match (covered, stored.first()) {
                    (0, None) => format!(
                        "no signed checkpoint is stored yet ({}): pruning waits for the first one",
                        if sink_attached {
                            "a checkpoint sink is attached"
                        } else {
                            "audit.require_checkpoints = true"
                        }
                    ),
                    (0, Some(oldest)) => format!(
                        "no signed checkpoint ends at or before seq {through} (the oldest stored is of {} events)",
                        oldest.size
                    ),
                    (size, _) => {
                        format!("the newest signed checkpoint that covers them is of {size} events")
                    }
                });
                through = covered;
            }
        }
        for follower in self.shared.followers.lock().iter() {
            let (floor, why) = match follower.delivered() {
                Some(delivered) => (
                    delivered,
                    format!(
                        "audit sink {} has taken events only up to {delivered}",
                        follower.status().name
                    ),
                ),
                None => {
                    let status = follower.status();
                    (
                        0,
                        match status.last_error {
                            Some(e) => format!(
                                "audit sink {} has not said where it stands (last error: {e})",
                                status.name
                            ),
                            None => format!(
                                "audit sink {} has not said where it stands after {} s",
                                status.name,
                                prune::SINK_POSITION_WAIT.as_secs()
                            ),
                        },
                    )
                }
            };
            if floor < through {
                limited_by = Some(why);
                through = floor;
            }
        }
        let through = through.max(first_seq - 1);
        let mut report = PruneReport {
            first_seq,
            requested_through: requested,
            pruned_through: through,
            events: through - (first_seq - 1),
            limited_by,
            dry_run,
            prune_events: Vec::new(),
        };
        drop(snapshot);
        if dry_run || report.events == 0 {
            return Ok(report);
        }
        let reason = match before {
            PruneBefore::Seq(seq) => format!("before seq {seq}"),
            PruneBefore::Time(time_us) => format!(
                "recorded before {}",
                crate::audit::table::timestamp(time_us).format("%Y-%m-%d %H:%M:%S UTC")
            ),
        };
        let mut from = first_seq;
        while from <= through {
            let last = through.min(from.saturating_add(chunk - 1));
            let snapshot = self.shared.backend.snapshot()?;
            let tree_size = self.audit_root().0;
            let mut batch = WriteBatch::new();
            let chain = prune::stage_removal(&*snapshot, from, last, &mut batch)?;
            let next = PruneAnchor {
                first_kept: last + 1,
                chain_before: chain,
                frontier: tree::frontier_at(&*snapshot, last, tree_size)?,
                pruned_at_us: crate::chrono::Utc::now().timestamp_micros(),
            };
            batch.put(catalog::KS_CATALOG, prune::ANCHOR_KEY, next.encode());
            let mut event = AppEvent::new(prune::PRUNE_OPERATION);
            event.targets = vec![crate::audit::AUDIT_TABLE.to_owned()];
            event.detail = format!(
                "pruned events {from}..={last} ({} events, {reason})",
                last - from + 1
            );
            event.custom.extend([
                ("pruned_from".to_owned(), from.to_string()),
                ("pruned_through".to_owned(), last.to_string()),
            ]);
            event.custom.extend(prune::anchor_fields(&next));
            let mut events = [self.shared.system_event(event)?];
            drop(snapshot);
            self.shared.commit(Some(&guard), batch, &mut events)?;
            report.prune_events.push(events[0].seq);
            from = last + 1;
        }
        drop(guard);
        self.shared
            .backend
            .reclaim(&[ledger::KS_AUDIT, ledger::KS_AUDIT_INDEX])?;
        Ok(report)
    }

    /// Waits until every attached sink has said where it stands (its `resume_after`
    /// returned), or `patience` has passed: a sink just attached — the database was opened
    /// a moment ago — would otherwise count as having taken nothing.
    fn wait_for_sink_positions(&self, patience: Duration) {
        let deadline = std::time::Instant::now() + patience;
        // A sink whose start failed (a checkpoint sink refusing a rolled-back ledger) will
        // not say more by waiting: the prune is limited by it at once, not after `patience`.
        while self
            .shared
            .followers
            .lock()
            .iter()
            .any(|f| f.delivered().is_none() && f.status().last_error.is_none())
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Applies `retention_days` when `auto_prune` is on: prunes the events recorded more
    /// than that many days ago (within the limits of [`Database::prune_before`]). Returns
    /// `None` when automatic pruning is off, refused (lockdown, legal hold) or has nothing
    /// to do; [`Database::retention_status`] tells which, and a run skipped for a new
    /// reason is recorded as a SYSTEM `AUTO_PRUNE_SKIPPED` event.
    pub fn apply_retention(&self) -> Result<Option<PruneReport>> {
        let retention = &self.shared.options.retention;
        if !retention.auto_prune || retention.retention_days == 0 || self.options().read_only {
            return Ok(None);
        }
        let at_us = crate::chrono::Utc::now().timestamp_micros();
        if let Some(refusal) = self.prune_refusal()? {
            let repeated = self
                .shared
                .retention_status
                .lock()
                .as_ref()
                .is_some_and(|last| last.skipped.as_deref() == Some(refusal.as_str()));
            if !repeated {
                let mut event = AppEvent::new(prune::AUTO_PRUNE_SKIPPED_OPERATION);
                event.targets = vec![crate::audit::AUDIT_TABLE.to_owned()];
                event.detail = format!("automatic pruning skipped: {refusal}");
                self.shared.record_system(event)?;
            }
            *self.shared.retention_status.lock() = Some(RetentionRun {
                at_us,
                events: 0,
                skipped: Some(refusal),
                error: None,
            });
            return Ok(None);
        }
        let days = i64::try_from(retention.retention_days).unwrap_or(i64::MAX);
        let cutoff = at_us.saturating_sub(days.saturating_mul(86_400_000_000));
        let result = self.prune_before(PruneBefore::Time(cutoff), false);
        *self.shared.retention_status.lock() = Some(RetentionRun {
            at_us,
            events: result.as_ref().map_or(0, |r| r.events),
            skipped: None,
            error: result.as_ref().err().map(ToString::to_string),
        });
        let report = result?;
        Ok((report.events > 0).then_some(report))
    }

    /// The outcome of the last automatic pruning run in this process (at open or
    /// periodic), if one ran.
    pub fn retention_status(&self) -> Option<RetentionRun> {
        self.shared.retention_status.lock().clone()
    }

    /// Starts automatic pruning while the database is open: every
    /// [`RetentionOptions::auto_prune_interval`], [`Database::apply_retention`] runs on a
    /// background thread, stopped when the database closes. Does nothing unless
    /// `auto_prune` is on with `retention_days` above 0 (and not read-only), or when it is
    /// already running. The builder calls it after attaching the configured sinks.
    pub fn start_retention(&self) -> Result<()> {
        let retention = &self.shared.options.retention;
        if !retention.auto_prune || retention.retention_days == 0 || self.options().read_only {
            return Ok(());
        }
        let mut slot = self.shared.retention.lock();
        if slot.is_some() {
            return Ok(());
        }
        let interval = retention.auto_prune_interval.max(Duration::from_millis(1));
        let weak = Arc::downgrade(&self.shared);
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("heliosdb-retention".to_owned())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    let Some(shared) = weak.upgrade() else {
                        return;
                    };
                    let db = Database { shared };
                    // The outcome, an error included, is kept for `retention_status`.
                    let _ = db.apply_retention();
                }
            })
            .map_err(|e| Error::Storage(StorageError::Io(e)))?;
        *slot = Some(Syncer { stop, thread });
        Ok(())
    }

    /// Recomputes every leaf and chain hash of the audit ledger from the stored records
    /// (never from a cached head), streaming with constant memory, and reports the first
    /// problem: the exact seq and what is wrong.
    pub fn verify(&self) -> Result<crate::audit::VerifyReport> {
        crate::audit::verify(self.backend())
    }

    /// Starts a follower sink: from now until the database closes, `sink` receives every
    /// sealed event after the seq it reports from
    /// [`resume_after`](AuditSink::resume_after), on its own thread, in batches of at most
    /// [`DatabaseOptions::sink_batch_size`]. Commits never wait for it.
    pub fn attach_sink(&self, sink: Box<dyn AuditSink>) -> Result<()> {
        let signs_checkpoints = sink.signs_checkpoints();
        let follower = Follower::start(
            sink,
            Arc::clone(&self.shared.backend),
            Arc::clone(&self.shared.signal),
            SinkContext {
                database_id: self.shared.database_id,
                tree: tree::TreeReader::new(Arc::clone(&self.shared.backend)),
                recorder: SinkRecorder::new(Arc::downgrade(&self.shared.core)),
            },
            self.shared.options.sink_batch_size,
        )?;
        self.shared.followers.lock().push(follower);
        if signs_checkpoints {
            self.shared.checkpoint_sink.store(true, Ordering::Release);
        }
        Ok(())
    }

    /// Where each sink attached to this handle stands: delivered seq, lag (events and,
    /// with [`SinkStatus::lag_time`], time) and last error. This is the in-process view of
    /// the exporters this application runs; another process (`heliosdb audit sinks`)
    /// cannot see them, it runs sinks of its own.
    pub fn sink_status(&self) -> Vec<SinkStatus> {
        self.shared
            .followers
            .lock()
            .iter()
            .map(Follower::status)
            .collect()
    }

    /// True after a failed write or fsync: every later write fails until the database is
    /// reopened.
    pub fn is_poisoned(&self) -> bool {
        self.shared.poisoned.load(Ordering::Acquire)
    }
}

fn start_syncer(shared: Weak<Core>, interval: Duration) -> Result<Syncer> {
    let (stop, stopped) = mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("heliosdb-group-commit".to_owned())
        .spawn(move || {
            loop {
                let last = matches!(
                    stopped.recv_timeout(interval),
                    Err(RecvTimeoutError::Disconnected)
                );
                let Some(shared) = shared.upgrade() else {
                    return;
                };
                if shared.dirty.load(Ordering::Acquire) && !shared.poisoned.load(Ordering::Acquire)
                {
                    // A failure poisons the database; commits then report it.
                    let _ = shared.persist();
                }
                if last {
                    return;
                }
            }
        })
        .map_err(|e| Error::Storage(StorageError::Io(e)))?;
    Ok(Syncer { stop, thread })
}
