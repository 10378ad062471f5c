//! The checkpoint sink: a follower that signs a checkpoint every N events or T seconds
//! (whichever comes first, when events are waiting) and when the database closes, and
//! keeps it outside the database — appended to a file, or as one file per checkpoint in a
//! directory ([`CheckpointFiles`]), the place an operator mounts on WORM storage or ships
//! off the device — after storing a copy in the database's `__audit_checkpoints`.
//!
//! It never signs two inconsistent checkpoints. On start it reads the last checkpoint of
//! this database signed by its key from its file or directory and requires the root
//! recomputed from the ledger's records at that size to equal the signed one; from there
//! it extends the frontier only with leaves it reads from the ledger's records, and before
//! each signature the database checks that the new checkpoint extends the newest one it
//! stores ([`SinkRecorder::checkpoint_root`]). A ledger that was cut, rolled back or
//! rewritten makes it refuse to sign, and the refusal is its reported error.

use crate::{
    Checkpoint, CheckpointError, CheckpointFiles, RecorderLedger, SignerKey, sign_and_publish,
};
use heliosdb_engine::audit::merkle::Frontier;
use heliosdb_engine::audit::{AuditSink, Hash, SealedEvent, SinkContext, SinkError, SinkRecorder};
use std::path::Path;
use std::time::{Duration, Instant};

/// A follower sink that signs checkpoints. See the module documentation.
pub struct CheckpointSink {
    name: String,
    key: SignerKey,
    files: CheckpointFiles,
    every_events: u64,
    every: Duration,
    database_id: [u8; 16],
    frontier: Frontier,
    signed_size: u64,
    last_signed_at: Instant,
    recorder: Option<SinkRecorder>,
}

impl std::fmt::Debug for CheckpointSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointSink")
            .field("key", &self.key)
            .field("files", &self.files)
            .field("every_events", &self.every_events)
            .field("every", &self.every)
            .finish_non_exhaustive()
    }
}

impl CheckpointSink {
    /// Signs with `key`, appending to `file`, every `every_events` events or `every` (at
    /// least one event apart), and on close.
    pub fn new(key: SignerKey, file: impl AsRef<Path>, every_events: u64, every: Duration) -> Self {
        Self::with_files(
            key,
            CheckpointFiles::File(file.as_ref().to_path_buf()),
            every_events,
            every,
        )
    }

    /// Like [`CheckpointSink::new`], writing one file per checkpoint into directory `dir`
    /// (created if missing; see [`CheckpointFiles::Dir`]).
    pub fn in_dir(
        key: SignerKey,
        dir: impl AsRef<Path>,
        every_events: u64,
        every: Duration,
    ) -> Self {
        Self::with_files(
            key,
            CheckpointFiles::Dir(dir.as_ref().to_path_buf()),
            every_events,
            every,
        )
    }

    /// Signs with `key` into `files`, every `every_events` events or `every` (at least one
    /// event apart), and on close.
    pub fn with_files(
        key: SignerKey,
        files: CheckpointFiles,
        every_events: u64,
        every: Duration,
    ) -> Self {
        Self {
            name: format!("checkpoint:{}", files.path().display()),
            key,
            files,
            every_events: every_events.max(1),
            every,
            database_id: [0; 16],
            frontier: Frontier::new(),
            signed_size: 0,
            last_signed_at: Instant::now(),
            recorder: None,
        }
    }

    /// The last checkpoint of this database signed by this sink's key in its files.
    fn last_in_files(&self) -> Result<Option<Checkpoint>, CheckpointError> {
        self.files
            .last_signed(&self.key.verifier(), &self.database_id)
    }

    fn sign_now(&mut self) -> Result<(), SinkError> {
        let size = self.frontier.size();
        if size == self.signed_size {
            return Ok(());
        }
        let published = match &self.recorder {
            Some(recorder) => {
                let ledger = RecorderLedger {
                    recorder,
                    database_id: self.database_id,
                };
                sign_and_publish(
                    &ledger,
                    &self.key,
                    size,
                    Some(self.frontier.root()),
                    Some(&self.files),
                )
            }
            // Not attached yet: nothing to check the root against, nothing to sign.
            None => return Ok(()),
        };
        published?;
        self.signed_size = size;
        self.last_signed_at = Instant::now();
        Ok(())
    }

    fn due(&self) -> bool {
        let waiting = self.frontier.size() - self.signed_size;
        waiting >= self.every_events || (waiting > 0 && self.last_signed_at.elapsed() >= self.every)
    }
}

impl AuditSink for CheckpointSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn signs_checkpoints(&self) -> bool {
        true
    }

    fn resume_after(&mut self, context: &SinkContext) -> Result<u64, SinkError> {
        self.database_id = context.database_id;
        self.recorder = Some(context.recorder.clone());
        let Some(last) = self.last_in_files()? else {
            self.frontier = Frontier::new();
            self.signed_size = 0;
            return Ok(0);
        };
        let place = self.files.path().display();
        // The root at the last signed size, recomputed from the records (the database
        // also checks it extends the newest checkpoint it stores).
        let root = context.recorder.checkpoint_root(last.size).map_err(|e| {
            format!(
                "refusing to sign: the ledger is not consistent with the last checkpoint in {place} (size {}): {e}",
                last.size
            )
        })?;
        if root != last.root {
            return Err(format!(
                "refusing to sign: the ledger is not consistent with the last checkpoint in {place} (size {}): it was rewritten or rolled back",
                last.size
            )
            .into());
        }
        let frontier = context.tree.frontier_at(last.size).map_err(|e| {
            format!(
                "refusing to sign: the ledger no longer holds the {} events of the last checkpoint in {place}: {e}",
                last.size
            )
        })?;
        self.frontier = frontier;
        self.signed_size = last.size;
        self.last_signed_at = Instant::now();
        Ok(last.size)
    }

    fn deliver(&mut self, _prev_chain: &Hash, events: &[SealedEvent]) -> Result<(), SinkError> {
        for sealed in events {
            // A batch offered again after a failed signing: its first events are in.
            if sealed.event.seq <= self.frontier.size() {
                continue;
            }
            if sealed.event.seq != self.frontier.size() + 1 {
                return Err(format!(
                    "event {} does not follow the tree of {} events",
                    sealed.event.seq,
                    self.frontier.size()
                )
                .into());
            }
            self.frontier.push(sealed.leaf, |_, _| {});
            if self.frontier.size() - self.signed_size >= self.every_events {
                self.sign_now()?;
            }
        }
        if self.due() {
            self.sign_now()?;
        }
        Ok(())
    }

    fn idle(&mut self) -> Result<(), SinkError> {
        if self.due() { self.sign_now() } else { Ok(()) }
    }

    fn close(&mut self) -> Result<(), SinkError> {
        self.sign_now()
    }
}
