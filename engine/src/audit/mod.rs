//! The audit pipeline: events, their canonical encoding, the policy that filters them, the
//! hash-chained ledger they are sealed into, the `__audit_log` table that shows them, and
//! the tools that check the ledger ([`verify()`]) and take it out ([`export()`],
//! [`verify_export()`]), and the follower sinks that carry it elsewhere ([`AuditSink`]; the
//! built-in ones are crates of their own under `audit-sinks/`).

mod anchor;
pub mod checkpoints;
mod event;
pub mod export;
pub mod ledger;
pub mod merkle;
mod policy;
pub mod prune;
pub mod redact;
pub mod sink;
pub mod table;
pub mod tree;
pub mod verify;

pub use crate::classify::{Classification, EventClass, classify};
pub use checkpoints::{CHECKPOINT_TABLE, StoredCheckpoint};
pub(crate) use event::operation_name;
pub use event::{AppEvent, AuditEvent, CANONICAL_MAGIC, CANONICAL_VERSION};
pub use export::{ExportLine, ExportProblem, ExportReport, export, tail, verify_export};
pub use ledger::{
    Hash, Head, IndexEntry, Record, audit_index_entries, chain_hash, genesis, leaf_hash,
};
pub use policy::{AuditPolicy, MetadataCapture, ParamCapture, Redaction, RedactionMode};
pub use prune::{LegalHold, PruneAnchor, PruneBefore, PruneReport};
pub use sink::{
    AuditSink, MAX_RETRY_AFTER, MAX_WAIT, RetryAfter, SealedEvent, SinkContext, SinkError,
    SinkRecorder, SinkStatus,
};
pub use table::AUDIT_TABLE;
pub use verify::{Problem, ProblemKind, VerifyOptions, VerifyReport, verify, verify_with};
