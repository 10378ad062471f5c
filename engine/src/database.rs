//! `Database`: one open database, shared by any number of sessions on any number of threads.

use crate::audit::checkpoints::{self, StoredCheckpoint};
use crate::audit::ledger::{self, Head};
use crate::audit::prune::{self, LegalHold, PruneAnchor, PruneBefore, PruneReport};
use crate::audit::sink::{Follower, HeadSignal};
use crate::audit::sink::{SinkLedger, SinkRecorder};
use crate::audit::tree;
use crate::audit::{AuditSink, SinkContext, SinkStatus};
use crate::backend::{Durability, StorageBackend, StorageError, WriteBatch};
use crate::catalog;
use crate::error::{Error, Result};
use crate::refused::{self, REFUSED_COMMIT_OPERATION};
use crate::session::{AppEvent, Session, SessionInfo};
use crate::store::SqlStore;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::commit::{Core, LedgerState, SessionIds, first_free_session_id};
pub use crate::commit::{DatabaseOptions, DurabilityMode, RetentionOptions};

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

/// A background thread of the database: the group-commit syncer, the retention runner.
struct Syncer {
    // Dropping the sender tells the thread to finish (the syncer: after a last fsync).
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
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
        let first_session_id = first_free_session_id(&*snapshot)?;
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
            session_ids: Mutex::new(SessionIds {
                next: first_session_id,
                reserved_until: first_session_id,
            }),
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
        SqlStore::new(
            Arc::clone(&self.shared.core),
            Arc::clone(&self.shared) as Arc<dyn Send + Sync>,
        )
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
                recorder: SinkRecorder::new({
                    let core: Arc<dyn SinkLedger> = Arc::clone(&self.shared.core) as _;
                    Arc::downgrade(&core)
                }),
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
