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
    /// A result has no row at that position ([`Rows::get`](crate::Rows::get)).
    #[error("result has no row {row} (it has {rows} rows)")]
    NoSuchRow {
        /// The 0-based row asked for.
        row: usize,
        /// Rows in the result.
        rows: usize,
    },
    /// A result has no such column ([`Row::get`](crate::Row::get)).
    #[error("result has no column {column:?} (its columns: {})", columns.join(", "))]
    NoSuchColumn {
        /// The label asked for, or `#N` for a 0-based index.
        column: String,
        /// The result's column labels.
        columns: Vec<String>,
    },
    /// A result column holds a value the requested Rust type cannot take.
    #[error("result column {column:?} holds {found}, not {expected}")]
    ColumnType {
        /// The column's label (or `#N`).
        column: String,
        /// What the Rust type takes ([`FromValue::SQL_TYPE`](crate::FromValue::SQL_TYPE)).
        expected: &'static str,
        /// The SQL type of the stored value.
        found: &'static str,
    },
    /// [`Session::query_row`](crate::Session::query_row) found no row.
    #[error("the query returned no rows")]
    NoRows,
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
    /// A commit failed in a way that may still let it reach the disk, and the record
    /// that undoes it at the next open could not be kept either (the disk is full even
    /// for that, or failing). The database is poisoned; if the statement's changes are
    /// found after a reopen, they were never acknowledged.
    #[error(
        "{source}; the database is poisoned, and the record that undoes the failed commit at the next open could not be kept ({why}): free space, close the database and check, after opening it again, that the failed statement's changes are absent"
    )]
    RefusalNotKept {
        /// The commit's error.
        #[source]
        source: StorageError,
        /// Why the record could not be kept.
        why: String,
    },
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
            Error::Sql(_)
            | Error::NoSuchRow { .. }
            | Error::NoSuchColumn { .. }
            | Error::ColumnType { .. }
            | Error::NoRows => "sql",
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
            Error::Storage(_)
            | Error::RefusalNotKept { .. }
            | Error::Corrupt { .. }
            | Error::FormatVersion { .. } => "storage",
            Error::Internal(_) => "internal",
        }
    }

    /// True when the error is about the caller's statement or data (bad SQL, constraint,
    /// conflict) rather than the database or the machine.
    pub fn is_user_error(&self) -> bool {
        Self::is_user_kind(self.kind())
    }

    /// True when errors of `kind` (a value of [`Error::kind`]) are about the caller's
    /// statement or data rather than the database or the machine.
    pub fn is_user_kind(kind: &str) -> bool {
        matches!(
            kind,
            "sql"
                | "param"
                | "transaction"
                | "unsupported"
                | "constraint"
                | "concurrency"
                | "permission"
        )
    }

    /// The [`kind`](Error::kind) of the error whose message (`to_string()`) is `message`:
    /// what an audit event records in `error`, read back by a consumer of the trail (the
    /// OTLP export's severity and `error.type`). `None` when the message does not tell:
    /// storage and integrity errors whose text comes from below, and texts that are not an
    /// engine error (a login's refusal reason). It is kept here, beside the messages, and a
    /// test builds every variant, so a changed message cannot silently change a kind.
    pub fn kind_of_message(message: &str) -> Option<&'static str> {
        // `{table} is read-only: ...` for the audit system tables.
        if message.starts_with("__audit") && message.contains(" is read-only: ") {
            return Some("permission");
        }
        MESSAGE_KINDS
            .iter()
            .find(|(prefix, _)| message.starts_with(prefix))
            .map(|(_, kind)| *kind)
    }
}

/// The start of each variant's message and its kind (see [`Error::kind_of_message`]).
const MESSAGE_KINDS: [(&str, &str); 23] = [
    ("configuration error: ", "config"),
    ("SQL error: ", "sql"),
    ("result has no row ", "sql"),
    ("result has no column ", "sql"),
    ("result column ", "sql"),
    ("the query returned no rows", "sql"),
    ("parameter $", "param"),
    ("out of range: ", "param"),
    ("transaction error: ", "transaction"),
    ("read-only database: ", "permission"),
    ("prune refused: ", "permission"),
    ("the database is closed", "closed"),
    ("checkpoint refused: ", "integrity"),
    ("refusing to sign a checkpoint ", "integrity"),
    ("not supported: ", "unsupported"),
    ("constraint violation: ", "constraint"),
    ("cannot store key in table ", "constraint"),
    ("transaction conflict: ", "concurrency"),
    ("database is busy: ", "concurrency"),
    ("corrupt ", "storage"),
    ("database format version ", "storage"),
    ("I/O error: ", "storage"),
    ("internal error: ", "internal"),
];

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One error of each variant. The match makes a new variant fail to compile here
    /// until it is added (and its message classified).
    fn every_variant() -> Vec<Error> {
        let glue = || Box::new(GlueError::StorageMsg("boom".to_owned()));
        let all = vec![
            Error::Config("bad key".into()),
            Error::Sql(glue()),
            Error::Param {
                index: 2,
                message: "not a number".to_owned(),
            },
            Error::Transaction("nested BEGIN".to_owned()),
            Error::NoSuchRow { row: 3, rows: 1 },
            Error::NoSuchColumn {
                column: "x".to_owned(),
                columns: vec!["a".to_owned()],
            },
            Error::ColumnType {
                column: "a".to_owned(),
                expected: "TEXT",
                found: "INTEGER",
            },
            Error::NoRows,
            Error::AuditLogReadOnly {
                table: "__audit_log".to_owned(),
                operation: "DELETE".to_owned(),
            },
            Error::AuditLogReadOnly {
                table: "__audit_checkpoints".to_owned(),
                operation: "UPDATE".to_owned(),
            },
            Error::ReadOnly("INSERT".to_owned()),
            Error::RetentionRefused("legal hold".to_owned()),
            Error::Integrity("seq 7 is missing".to_owned()),
            Error::Closed,
            Error::CheckpointRefused("wrong origin".to_owned()),
            Error::CheckpointInconsistent {
                stored_size: 4,
                size: 9,
                why: "rewritten".to_owned(),
            },
            Error::OutOfRange("seq 99".to_owned()),
            Error::Unsupported("WINDOW".to_owned()),
            Error::Constraint(glue()),
            Error::Unkeyable {
                table: "t".to_owned(),
                source: crate::codec::UnkeyableValue("MAP"),
            },
            Error::Conflict,
            Error::Busy { waited_ms: 5 },
            Error::Storage(StorageError::Io(std::io::Error::other("disk"))),
            Error::RefusalNotKept {
                source: StorageError::Io(std::io::Error::other("disk")),
                why: "no space".to_owned(),
            },
            Error::Corrupt {
                keyspace: "rows",
                what: "row",
                key_hex: "00".to_owned(),
                source: CorruptSource::Decode(DecodeError {
                    what: "truncated",
                    offset: 0,
                }),
            },
            Error::FormatVersion {
                found: 9,
                supported: 1,
            },
            Error::Internal("x".to_owned()),
        ];
        for error in &all {
            match error {
                Error::Config(_)
                | Error::Sql(_)
                | Error::Param { .. }
                | Error::Transaction(_)
                | Error::NoSuchRow { .. }
                | Error::NoSuchColumn { .. }
                | Error::ColumnType { .. }
                | Error::NoRows
                | Error::AuditLogReadOnly { .. }
                | Error::ReadOnly(_)
                | Error::RetentionRefused(_)
                | Error::Integrity(_)
                | Error::Closed
                | Error::CheckpointRefused(_)
                | Error::CheckpointInconsistent { .. }
                | Error::OutOfRange(_)
                | Error::Unsupported(_)
                | Error::Constraint(_)
                | Error::Unkeyable { .. }
                | Error::Conflict
                | Error::Busy { .. }
                | Error::Storage(_)
                | Error::RefusalNotKept { .. }
                | Error::Corrupt { .. }
                | Error::FormatVersion { .. }
                | Error::Internal(_) => {}
            }
        }
        all
    }

    #[test]
    fn every_message_tells_its_kind() {
        for error in every_variant() {
            let message = error.to_string();
            let read = Error::kind_of_message(&message);
            match error {
                // Their text comes from elsewhere (the backend, the verifier); both are
                // the engine's own failures, never the caller's.
                Error::Storage(StorageError::Backend { .. } | StorageError::Open { .. })
                | Error::Integrity(_) => {
                    assert!(!error.is_user_error());
                    assert!(read.is_none() || read == Some(error.kind()), "{message}");
                }
                _ => assert_eq!(read, Some(error.kind()), "{message}"),
            }
        }
        // A text that is no engine error says nothing.
        assert_eq!(Error::kind_of_message("wrong password"), None);
        assert_eq!(Error::kind_of_message("__audit_log was read"), None);
    }
}
