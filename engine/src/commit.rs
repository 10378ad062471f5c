//! The commit path: the one place data and audit events become durable together.
//!
//! [`Core`] holds the storage, the ledger head and Merkle frontier, the options and the
//! poison flag. [`Core::commit`] seals events into the ledger and writes them with the
//! data in one atomic backend commit; [`Core::write`] fails closed
//! ([`refused`](crate::refused)). Everything above — the store adapter, sessions, the
//! database and its threads — commits through here; nothing here knows of them.

use crate::audit::checkpoints::{self, StoredCheckpoint};
use crate::audit::ledger::{self, Head};
use crate::audit::merkle::Frontier;
use crate::audit::prune;
use crate::audit::sink::{HeadSignal, SinkLedger};
use crate::audit::tree;
use crate::audit::{AppEvent, AuditEvent, AuditPolicy, EventClass};
use crate::backend::{Durability, StorageBackend, StorageError, WriteBatch};
use crate::error::{Error, Result};
use crate::refused;
use parking_lot::{Mutex, RawMutex, lock_api::ArcMutexGuard};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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

/// Storage, ledger state and options: everything a commit needs.
pub(crate) struct Core {
    pub(crate) backend: Arc<dyn StorageBackend>,
    pub(crate) writer: Arc<Mutex<()>>,
    /// Number of commits so far; a transaction whose snapshot predates the latest commit
    /// must not write.
    pub(crate) version: AtomicU64,
    /// Serializes backend commits and fsyncs, so a commit that failed is the last thing
    /// the backend was asked to write: nothing (an fsync of the group-commit thread
    /// included) reaches it between the failure and the poison.
    pub(crate) commit_lock: Mutex<()>,
    pub(crate) poisoned: AtomicBool,
    /// Set by commits, cleared by the group-commit thread when it fsyncs.
    pub(crate) dirty: AtomicBool,
    pub(crate) options: DatabaseOptions,
    pub(crate) session_ids: Mutex<SessionIds>,
    pub(crate) database_id: [u8; 16],
    /// The ledger head and Merkle frontier; held while sealing and committing, so seqs
    /// follow commit order.
    pub(crate) ledger: Mutex<LedgerState>,
    /// The head seq for follower sinks to wait on; advanced after each commit.
    pub(crate) signal: Arc<HeadSignal>,
    /// Held while a checkpoint is checked and stored: the newest stored checkpoint cannot
    /// change under the check.
    pub(crate) checkpointing: Mutex<()>,
    /// The tree rebuilt from the stored records by checkpoint checks, so that each check
    /// hashes only the events sealed since the last one. Sealed records change only
    /// through this process while it holds the database open, and never after sealing.
    pub(crate) records_tree: Mutex<Option<RecordsTree>>,
}

/// A Merkle frontier recomputed from the stored records, and the roots it passed through
/// that checks asked for.
pub(crate) struct RecordsTree {
    frontier: Frontier,
    roots: std::collections::BTreeMap<u64, ledger::Hash>,
}

/// Roots a [`RecordsTree`] remembers (the checks ask for the newest stored checkpoint's
/// size and the next one's).
const REMEMBERED_ROOTS: usize = 16;

/// Session ids reserved in the catalog and the next one to hand out.
pub(crate) struct SessionIds {
    pub(crate) next: u64,
    pub(crate) reserved_until: u64,
}

/// Session ids reserved per catalog write.
pub(crate) const SESSION_ID_BLOCK: u64 = 1024;

/// The first session id the catalog has not handed out (1 for a new database).
pub(crate) fn first_free_session_id(snapshot: &dyn crate::backend::Snapshot) -> Result<u64> {
    let key = crate::catalog::NEXT_SESSION_ID_KEY;
    match snapshot.get(crate::catalog::KS_CATALOG, key)? {
        None => Ok(1),
        Some(bytes) => <[u8; 8]>::try_from(bytes.as_slice())
            .map(u64::from_be_bytes)
            .map_err(|_| {
                crate::catalog::corrupt(
                    crate::catalog::KS_CATALOG,
                    "next session id",
                    key,
                    crate::codec::DecodeError {
                        what: "a session id must be 8 bytes",
                        offset: 0,
                    },
                )
            }),
    }
}

/// What sealing needs from the last commit.
pub(crate) struct LedgerState {
    pub(crate) head: Head,
    pub(crate) frontier: Frontier,
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

    /// A session id unique for the life of the database, across opens and processes, and
    /// increasing. Ids are handed out from blocks of [`SESSION_ID_BLOCK`] reserved durably
    /// in the catalog (`meta/next_session_id`) before the first of them is used, so an id
    /// is never handed out twice, even after a crash (unused ids of a block are skipped).
    /// When a block cannot be reserved (the database is poisoned) ids go on increasing
    /// in this process; a later open starts after the last block reserved.
    pub(crate) fn next_session_id(&self) -> u64 {
        let mut ids = self.session_ids.lock();
        if ids.next >= ids.reserved_until {
            let until = ids.next.saturating_add(SESSION_ID_BLOCK);
            let mut batch = WriteBatch::new();
            batch.put(
                crate::catalog::KS_CATALOG,
                crate::catalog::NEXT_SESSION_ID_KEY,
                until.to_be_bytes().to_vec(),
            );
            if self.write(batch).is_ok() {
                ids.reserved_until = until;
            }
        }
        let id = ids.next;
        ids.next += 1;
        id
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
        let operation = crate::audit::operation_name(&operation, "a system event")?;
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

    pub(crate) fn persist(&self) -> Result<()> {
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

impl SinkLedger for Core {
    fn record_system(&self, event: AppEvent) -> Result<u64> {
        Core::record_system(self, event)
    }

    fn backend(&self) -> &dyn StorageBackend {
        Core::backend(self)
    }

    fn checkpoint_root(&self, size: u64) -> Result<ledger::Hash> {
        Core::checkpoint_root(self, size)
    }

    fn store_checkpoint(&self, checkpoint: &StoredCheckpoint) -> Result<bool> {
        Core::store_checkpoint(self, checkpoint)
    }
}
