//! The engine's error type.

use crate::backend::StorageError;
use crate::codec::DecodeError;
use gluesql_core::data::ValueError;
use gluesql_core::error::{Error as GlueError, ValidateError};

/// Result alias for the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the engine, grouped by who is at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ----- configuration ----------------------------------------------------------------
    /// The configuration (`heliosdb.toml`, an environment override, a preset) is invalid;
    /// the source names the file, line and key.
    #[error("configuration error: {0}")]
    Config(#[source] Box<dyn std::error::Error + Send + Sync>),

    // ----- the caller's SQL -------------------------------------------------------------
    /// The statement could not be parsed, planned or executed (syntax, unknown table or
    /// column, type mismatch, ...).
    #[error("SQL error: {0}")]
    Sql(#[source] Box<GlueError>),
    /// A bound parameter could not be used.
    #[error("parameter ${index}: {message}")]
    Param {
        /// 1-based parameter position.
        index: usize,
        /// What is wrong with it.
        message: String,
    },
    /// A transaction command does not fit the session's state (e.g. nested `BEGIN`).
    #[error("transaction error: {0}")]
    Transaction(String),
    /// `__audit_log` cannot be changed: not by INSERT, UPDATE, DELETE, DROP, ALTER or
    /// CREATE INDEX. The attempt itself is recorded.
    #[error("{table} is read-only: {operation} is not allowed (the attempt has been recorded)")]
    AuditLogReadOnly {
        /// The system table (`__audit_log` or `__audit_checkpoints`).
        table: String,
        /// What was attempted.
        operation: String,
    },
    /// The database was opened read-only ([`DatabaseOptions::read_only`]): the statement or
    /// operation would change data, schema or retention. A refused statement is recorded.
    ///
    /// [`DatabaseOptions::read_only`]: crate::DatabaseOptions::read_only
    #[error("read-only database: {0}")]
    ReadOnly(String),
    /// Pruning is not allowed: lockdown, or a legal hold.
    #[error("prune refused: {0}")]
    RetentionRefused(String),
    /// The stored audit trail is not in a state an operation can work on (an event is
    /// missing); `verify` locates the problem.
    #[error("{0}")]
    Integrity(String),
    /// The database was closed (its last handle dropped) before the call.
    #[error("the database is closed")]
    Closed,
    /// A checkpoint handed to the database does not describe its ledger (wrong origin,
    /// size beyond the ledger, or a root that differs from the ledger's).
    #[error("checkpoint refused: {0}")]
    CheckpointRefused(String),
    /// A checkpoint of `size` events would not extend the newest checkpoint stored in
    /// `__audit_checkpoints` (of `stored_size` events): the root recomputed from the stored
    /// events at `stored_size` is not the one it signed, or the ledger no longer holds that
    /// many events. The ledger was cut, rolled back or rewritten since; nothing is signed or
    /// stored, and `verify --pubkey` locates the problem.
    #[error(
        "refusing to sign a checkpoint of {size} events: the ledger is not consistent with the newest stored checkpoint, of {stored_size} events: {why}"
    )]
    CheckpointInconsistent {
        /// Size of the newest stored checkpoint.
        stored_size: u64,
        /// Size of the checkpoint that was to be signed or stored.
        size: u64,
        /// What differs.
        why: String,
    },
    /// A request names something outside what exists (a seq or tree size beyond the
    /// ledger, ...).
    #[error("out of range: {0}")]
    OutOfRange(String),
    /// The statement is valid SQL that this engine does not support.
    #[error("not supported: {0}")]
    Unsupported(String),

    // ----- data constraints -------------------------------------------------------------
    /// A primary-key, unique or not-null constraint was violated; nothing was written.
    #[error("constraint violation: {0}")]
    Constraint(#[source] Box<GlueError>),
    /// A value cannot be stored as a key or indexed (maps, lists, points).
    #[error("cannot store key in table {table:?}: {source}")]
    Unkeyable {
        /// Table name.
        table: String,
        /// What was refused.
        #[source]
        source: crate::codec::UnkeyableValue,
    },

    // ----- concurrency ------------------------------------------------------------------
    /// Another session committed after this transaction took its snapshot; the transaction
    /// was not applied. Roll back and retry it.
    #[error(
        "transaction conflict: another session committed since this transaction began; roll back and retry"
    )]
    Conflict,
    /// The write lock could not be acquired within the busy timeout.
    #[error(
        "database is busy: another session holds the write lock (waited {waited_ms} ms); retry or raise busy_timeout"
    )]
    Busy {
        /// How long the session waited.
        waited_ms: u64,
    },

    // ----- storage ----------------------------------------------------------------------
    /// The storage backend failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Stored bytes could not be decoded.
    #[error("corrupt {what} in keyspace {keyspace:?} (key {key_hex}): {source}")]
    Corrupt {
        /// Keyspace name.
        keyspace: &'static str,
        /// What was being decoded ("row", "table record", ...).
        what: &'static str,
        /// The key, hex-encoded.
        key_hex: String,
        /// Why decoding failed.
        #[source]
        source: CorruptSource,
    },
    /// The database was written by a newer format than this build reads.
    #[error(
        "database format version {found} is not supported by this build (it reads version {supported})"
    )]
    FormatVersion {
        /// Version found on disk.
        found: u32,
        /// Version this build reads and writes.
        supported: u32,
    },

    // ----- bugs -------------------------------------------------------------------------
    /// An internal invariant did not hold. Please report it.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Why stored bytes could not be decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CorruptSource {
    /// Our binary encoding was malformed.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A JSON-encoded catalog entry was malformed.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

impl Error {
    /// Classifies an error raised by GlueSQL.
    pub(crate) fn from_glue(error: GlueError) -> Self {
        match &error {
            GlueError::Validate(
                ValidateError::DuplicateEntryOnPrimaryKeyField(_)
                | ValidateError::DuplicateEntryOnUniqueField(..),
            ) => Error::Constraint(Box::new(error)),
            GlueError::Insert(gluesql_core::executor::InsertError::CannotFindReferencedValue {
                ..
            })
            | GlueError::Update(gluesql_core::executor::UpdateError::CannotFindReferencedValue {
                ..
            })
            | GlueError::Delete(gluesql_core::executor::DeleteError::ReferencingColumnExists(_)) => {
                Error::Constraint(Box::new(error))
            }
            GlueError::Value(value_error)
                if matches!(**value_error, ValueError::NullValueOnNotNullField) =>
            {
                Error::Constraint(Box::new(error))
            }
            _ => Error::Sql(Box::new(error)),
        }
    }

    /// A short, stable name of the error's kind, for logs, exit codes and audit records.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Config(_) => "config",
            Error::Sql(_) => "sql",
            Error::Param { .. } | Error::OutOfRange(_) => "param",
            Error::Transaction(_) => "transaction",
            Error::AuditLogReadOnly { .. } | Error::ReadOnly(_) => "permission",
            Error::CheckpointRefused(_) | Error::CheckpointInconsistent { .. } => "integrity",
            Error::Closed => "closed",
            Error::RetentionRefused(_) => "permission",
            Error::Integrity(_) => "integrity",
            Error::Unsupported(_) => "unsupported",
            Error::Constraint(_) | Error::Unkeyable { .. } => "constraint",
            Error::Conflict | Error::Busy { .. } => "concurrency",
            Error::Storage(_) | Error::Corrupt { .. } | Error::FormatVersion { .. } => "storage",
            Error::Internal(_) => "internal",
        }
    }

    /// True when the error is about the caller's statement or data (bad SQL, constraint,
    /// conflict) rather than the database or the machine.
    pub fn is_user_error(&self) -> bool {
        matches!(
            self.kind(),
            "sql"
                | "param"
                | "transaction"
                | "unsupported"
                | "constraint"
                | "concurrency"
                | "permission"
        )
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}
