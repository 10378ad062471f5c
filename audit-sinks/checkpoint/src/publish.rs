//! Signing and publishing one checkpoint: the one path the checkpoint sink and every
//! signing command (`heliosdb checkpoint`, `audit prove --key`, `audit sync`) take.
//!
//! In order: the database recomputes the root of the first `size` events from its
//! records, refusing when that would not extend the newest checkpoint it stores; a signer
//! that tracked the root itself (the sink) must agree with it; the checkpoint is signed;
//! the database checks it again and keeps a copy in `__audit_checkpoints`; only then is
//! it written to the signer's files. Nothing inconsistent is signed, and nothing is
//! published that the database refused.

use crate::{Checkpoint, CheckpointError, CheckpointFiles, Note, SignerKey};
use heliosdb_engine::audit::{Hash, SinkRecorder, StoredCheckpoint};
use std::path::PathBuf;

/// What signing needs from the database the checkpoint describes.
pub trait CheckpointLedger {
    /// The database's id (it names the checkpoint's origin).
    fn database_id(&self) -> [u8; 16];

    /// The Merkle root of the first `size` events, recomputed from the stored records once
    /// a checkpoint of that size is known to extend the newest stored one
    /// ([`Database::checkpoint_root`](heliosdb_engine::Database::checkpoint_root)).
    /// `Ok(None)` when the database is gone (a sink outliving it): there is nothing left to
    /// check against or to store into.
    fn checkpoint_root(&self, size: u64) -> heliosdb_engine::Result<Option<Hash>>;

    /// Stores the signed checkpoint after checking it again
    /// ([`Database::record_checkpoint`](heliosdb_engine::Database::record_checkpoint)); a
    /// database that is gone stores nothing.
    fn record_checkpoint(&self, checkpoint: &StoredCheckpoint) -> heliosdb_engine::Result<()>;
}

impl CheckpointLedger for heliosdb_engine::Database {
    fn database_id(&self) -> [u8; 16] {
        heliosdb_engine::Database::database_id(self)
    }

    fn checkpoint_root(&self, size: u64) -> heliosdb_engine::Result<Option<Hash>> {
        heliosdb_engine::Database::checkpoint_root(self, size).map(Some)
    }

    fn record_checkpoint(&self, checkpoint: &StoredCheckpoint) -> heliosdb_engine::Result<()> {
        heliosdb_engine::Database::record_checkpoint(self, checkpoint).map(drop)
    }
}

/// A sink's view of the database it follows ([`SinkRecorder`]), under the id its
/// context gave.
pub struct RecorderLedger<'a> {
    /// The recorder from the sink's context.
    pub recorder: &'a SinkRecorder,
    /// The database id from the sink's context.
    pub database_id: [u8; 16],
}

impl CheckpointLedger for RecorderLedger<'_> {
    fn database_id(&self) -> [u8; 16] {
        self.database_id
    }

    fn checkpoint_root(&self, size: u64) -> heliosdb_engine::Result<Option<Hash>> {
        match self.recorder.checkpoint_root(size) {
            Ok(root) => Ok(Some(root)),
            Err(heliosdb_engine::Error::Closed) => Ok(None),
            Err(error) => Err(error),
        }
    }

    fn record_checkpoint(&self, checkpoint: &StoredCheckpoint) -> heliosdb_engine::Result<()> {
        match self.recorder.record_checkpoint(checkpoint) {
            Ok(_) | Err(heliosdb_engine::Error::Closed) => Ok(()),
            Err(error) => Err(error),
        }
    }
}

/// A checkpoint signed, stored and written.
#[derive(Clone, Debug)]
pub struct Published {
    /// What was signed.
    pub checkpoint: Checkpoint,
    /// The signed note.
    pub note: Note,
    /// The file it was written to, when files were given.
    pub written: Option<PathBuf>,
}

/// Why a checkpoint was not signed or not published.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The database refused the size: the ledger does not extend the newest stored
    /// checkpoint (`Error::CheckpointInconsistent`), or holds fewer events.
    #[error(transparent)]
    Ledger(heliosdb_engine::Error),
    /// The root the signer tracked is not the database's.
    #[error(
        "refusing to sign a checkpoint of {size} events: the events read since the last checkpoint do not hash to the ledger's root"
    )]
    RootMismatch {
        /// The checkpoint's size.
        size: u64,
    },
    /// Nothing to sign: the database is gone and the signer tracked no root.
    #[error("refusing to sign a checkpoint of {size} events: the database is closed")]
    Closed {
        /// The checkpoint's size.
        size: u64,
    },
    /// The database refused to keep the signed checkpoint; it was not published.
    #[error("refusing to publish checkpoint of {size} events: {source}")]
    Store {
        /// The checkpoint's size.
        size: u64,
        /// Why.
        #[source]
        source: heliosdb_engine::Error,
    },
    /// Signing or writing the files failed.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

/// Signs a checkpoint of the first `size` events with `key`, stores it in the database
/// and writes it to `files` (see the module documentation for the order of the checks).
/// `tracked_root` is the root a signer computed itself from the events it read (the
/// sink); it must match the database's.
pub fn sign_and_publish(
    ledger: &dyn CheckpointLedger,
    key: &SignerKey,
    size: u64,
    tracked_root: Option<Hash>,
    files: Option<&CheckpointFiles>,
) -> Result<Published, PublishError> {
    let database_root = ledger.checkpoint_root(size).map_err(PublishError::Ledger)?;
    let root = match (tracked_root, database_root) {
        (Some(tracked), Some(stored)) if tracked != stored => {
            return Err(PublishError::RootMismatch { size });
        }
        (Some(root), _) | (None, Some(root)) => root,
        (None, None) => return Err(PublishError::Closed { size }),
    };
    let checkpoint = Checkpoint::new(&ledger.database_id(), size, root);
    let note = checkpoint.sign(key)?;
    let signed_at = heliosdb_engine::chrono::Utc::now().timestamp_micros();
    ledger
        .record_checkpoint(&checkpoint.to_stored(key, &note, signed_at))
        .map_err(|source| PublishError::Store { size, source })?;
    let written = files.map(|files| files.write(size, &note)).transpose()?;
    Ok(Published {
        checkpoint,
        note,
        written,
    })
}
