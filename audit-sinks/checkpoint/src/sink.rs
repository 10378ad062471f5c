//! The checkpoint sink: a follower that signs a checkpoint every N events or T seconds
//! (whichever comes first, when events are waiting) and when the database closes, and
//! appends it to a file — the file an operator mounts on WORM storage or ships off the
//! device — after storing a copy in the database's `__audit_checkpoints`.
//!
//! It never signs two inconsistent checkpoints. On start it reads the last checkpoint of
//! this database signed by its key from the file, rebuilds the tree's frontier at that
//! size from the ledger and requires its root to equal the signed one; from there it
//! extends the frontier only with leaves it reads from the ledger's records, so every new
//! checkpoint extends the previous one by construction. A ledger that was cut, rolled back
//! or rewritten makes it refuse to sign, and the refusal is its reported error.

use crate::{Checkpoint, CheckpointError, SignerKey, parse_notes};
use heliosdb_engine::audit::merkle::Frontier;
use heliosdb_engine::audit::{AuditSink, Hash, SealedEvent, SinkContext, SinkError, SinkRecorder};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A follower sink that signs checkpoints. See the module documentation.
pub struct CheckpointSink {
    name: String,
    key: SignerKey,
    file: PathBuf,
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
            .field("file", &self.file)
            .field("every_events", &self.every_events)
            .field("every", &self.every)
            .finish_non_exhaustive()
    }
}

impl CheckpointSink {
    /// Signs with `key` into `file`, every `every_events` events or `every` (at least one
    /// event apart), and on close.
    pub fn new(key: SignerKey, file: impl AsRef<Path>, every_events: u64, every: Duration) -> Self {
        let file = file.as_ref().to_path_buf();
        Self {
            name: format!("checkpoint:{}", file.display()),
            key,
            file,
            every_events: every_events.max(1),
            every,
            database_id: [0; 16],
            frontier: Frontier::new(),
            signed_size: 0,
            last_signed_at: Instant::now(),
            recorder: None,
        }
    }

    /// The last checkpoint of this database signed by this sink's key in the file.
    fn last_in_file(&self) -> Result<Option<Checkpoint>, CheckpointError> {
        let text = match std::fs::read_to_string(&self.file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(CheckpointError::Io {
                    path: self.file.clone(),
                    source,
                });
            }
        };
        let verifier = self.key.verifier();
        let origin = Checkpoint::new(&self.database_id, 0, [0; 32]).origin;
        let mut last = None;
        for note in parse_notes(&text).map_err(|e| e.in_file(&self.file))? {
            if note.verify(&verifier).is_err() {
                continue; // Another key's checkpoint: not ours to extend.
            }
            let checkpoint =
                Checkpoint::parse_body(note.text()).map_err(|e| e.in_file(&self.file))?;
            if checkpoint.origin == origin {
                last = Some(checkpoint);
            }
        }
        Ok(last)
    }

    fn sign_now(&mut self) -> Result<(), SinkError> {
        let size = self.frontier.size();
        if size == self.signed_size {
            return Ok(());
        }
        let checkpoint = Checkpoint::new(&self.database_id, size, self.frontier.root());
        let note = checkpoint.sign(&self.key)?;
        // The database checks the root against its own tree before keeping a copy: a
        // stored tree that disagrees with the records is refused before anything is
        // published. Once the database is gone (a sink outliving it), only the file is
        // written.
        if let Some(recorder) = &self.recorder {
            let stored = checkpoint.to_stored(&self.key, &note, now_micros());
            match recorder.record_checkpoint(&stored) {
                Ok(_) | Err(heliosdb_engine::Error::Closed) => {}
                Err(error) => {
                    return Err(format!(
                        "refusing to publish checkpoint of {size} events: {error}"
                    )
                    .into());
                }
            }
        }
        let note = note.to_string();
        let io = |source| CheckpointError::Io {
            path: self.file.clone(),
            source,
        };
        if let Some(parent) = self.file.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.file)
            .map_err(io)?;
        file.write_all(format!("{note}\n").as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(io)?;
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
        let Some(last) = self.last_in_file()? else {
            self.frontier = Frontier::new();
            self.signed_size = 0;
            return Ok(0);
        };
        let frontier = context.tree.frontier_at(last.size).map_err(|e| {
            format!(
                "refusing to sign: the ledger no longer holds the {} events of the last checkpoint in {}: {e}",
                last.size,
                self.file.display()
            )
        })?;
        if frontier.root() != last.root {
            return Err(format!(
                "refusing to sign: the ledger is not consistent with the last checkpoint in {} (size {}): it was rewritten or rolled back",
                self.file.display(),
                last.size
            )
            .into());
        }
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

fn now_micros() -> i64 {
    heliosdb_engine::chrono::Utc::now().timestamp_micros()
}
