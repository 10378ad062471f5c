//! # heliosdb-checkpoint
//!
//! Signed checkpoints of a HeliosDB-Lite audit ledger: Ed25519 keys in the C2SP
//! signed-note text forms ([`SignerKey`], [`VerifierKey`]), C2SP signed notes ([`Note`]),
//! and C2SP `tlog-checkpoint` bodies over the ledger's RFC 6962 Merkle root
//! ([`Checkpoint`]). A checkpoint held outside the database lets anyone detect what a hash
//! chain alone cannot: a truncated tail, a database rolled back to an older copy, or a
//! whole ledger rewritten with a recomputed chain.
//!
//! ```
//! use heliosdb_checkpoint::{Checkpoint, SignerKey};
//! let key = SignerKey::generate("clinic-ledger")?;
//! let checkpoint = Checkpoint::new(&[7; 16], 42, [9; 32]);
//! let signed = checkpoint.sign(&key)?;
//! let again = Checkpoint::open(&signed.to_string(), &key.verifier())?;
//! assert_eq!(again, checkpoint);
//! # Ok::<(), heliosdb_checkpoint::CheckpointError>(())
//! ```
#![deny(unsafe_code)]

mod batch;
mod check;
mod checkpoint;
mod config;
mod files;
mod key;
mod note;
mod proof;
mod publish;
mod sink;

pub use batch::{
    BATCH_FORMAT, BatchError, BatchReceipt, BatchSummary, VerifiedBatch, verify_batch, write_batch,
};
pub use check::{Verdict, check};
pub use checkpoint::{Checkpoint, ORIGIN_PREFIX, parse_notes};
pub use config::{CheckpointConfig, CheckpointConfigError};
pub use files::{CHECKPOINT_EXTENSION, CheckpointFiles, file_name};
pub use key::{ALG_ED25519, SignerKey, VerifierKey, is_valid_name, key_id};
pub use note::{Note, NoteSignature};
pub use proof::{EventProof, PROOF_HEADER, ProvedEvent};
pub use publish::{CheckpointLedger, PublishError, Published, RecorderLedger, sign_and_publish};
pub use sink::CheckpointSink;

use std::path::{Path, PathBuf};

/// What can be wrong with keys, notes and checkpoints.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// A key is malformed or does not match its id.
    #[error("bad key: {what}")]
    Key {
        /// What is wrong.
        what: String,
    },
    /// A key file holds a bad key.
    #[error("{}: {source}", path.display())]
    InFile {
        /// The file.
        path: PathBuf,
        /// The problem.
        #[source]
        source: Box<CheckpointError>,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A signed note is malformed.
    #[error("bad signed note: {what}")]
    Note {
        /// What is wrong.
        what: String,
    },
    /// The note carries no signature by the key.
    #[error("not signed by key {key}")]
    NotSigned {
        /// `name+id` of the key.
        key: String,
    },
    /// The key's signature on the note is invalid: the text was changed or forged.
    #[error("the signature by key {key} does not match the text (changed or forged)")]
    BadSignature {
        /// `name+id` of the key.
        key: String,
    },
    /// A proof is malformed or does not prove what it claims.
    #[error("bad proof: {what}")]
    Proof {
        /// What is wrong.
        what: String,
    },
    /// A checkpoint body is malformed.
    #[error("bad checkpoint: {what}")]
    Checkpoint {
        /// What is wrong.
        what: String,
    },
}

impl CheckpointError {
    /// This error, attributed to `path`.
    pub fn in_file(self, path: &Path) -> CheckpointError {
        CheckpointError::InFile {
            path: path.to_path_buf(),
            source: Box::new(self),
        }
    }
}
