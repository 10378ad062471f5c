//! Signed checkpoints kept in the database: `__audit_checkpoints`.
//!
//! A checkpoint signer (a follower sink, or `heliosdb checkpoint`) hands each signed
//! checkpoint back to the database, which checks that its root is the Merkle root of its
//! own ledger at that size and stores it, keyed by size, in one commit. The copy kept here
//! is for convenience — SQL queries, proofs built on the latest checkpoint, export to a
//! SIEM; the copy that protects against rollback is the one kept outside the database
//! (`docs/THREAT-MODEL.md`). Checkpoints are never written by SQL and never audited as
//! events (an event per checkpoint would itself call for a new checkpoint).

use super::event::timestamp;
use super::ledger::Hash;
use crate::backend::{Direction, Snapshot, WriteBatch};
use crate::catalog::corrupt;
use crate::codec::{DecodeError, Reader, put_varint};
use crate::error::{Result, hex};
use gluesql_core::ast::{ColumnDef, ColumnUniqueOption, DataType};
use gluesql_core::data::{Schema, Value};
use std::ops::Bound;

/// Keyspace of the stored checkpoints: `size u64 BE -> encoded checkpoint`.
pub const KS_AUDIT_CHECKPOINTS: &str = "audit_checkpoints";

/// Name of the read-only system table that shows them.
pub const CHECKPOINT_TABLE: &str = "__audit_checkpoints";

/// Table id GlueSQL sees for `__audit_checkpoints` (next to `__audit_log`'s `u64::MAX`).
pub const CHECKPOINT_TABLE_ID: u64 = u64::MAX - 1;

/// Version byte that starts every stored checkpoint.
const VERSION: u8 = 1;

/// True when `name` names the checkpoint table (case-insensitively).
pub fn is_checkpoint_table(name: &str) -> bool {
    name.eq_ignore_ascii_case(CHECKPOINT_TABLE)
}

/// A signed checkpoint as the database keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// Number of events the checkpoint covers (the tree size).
    pub size: u64,
    /// The RFC 6962 root over those events.
    pub root: Hash,
    /// When it was signed: microseconds since the Unix epoch, UTC.
    pub signed_at_us: i64,
    /// The checkpoint's origin line (`heliosdb/<database id>`).
    pub origin: String,
    /// Name of the key that signed it.
    pub key_name: String,
    /// The key's id: 8 hex digits.
    pub key_id: String,
    /// The whole signed note, exactly as signed (what a verifier checks).
    pub note: String,
}

/// `(column, type)` of `__audit_checkpoints`, in order; none is nullable.
pub const COLUMNS: [(&str, DataType); 7] = [
    ("size", DataType::Int),
    ("root", DataType::Text),
    ("signed_at", DataType::Timestamp),
    ("origin", DataType::Text),
    ("key_name", DataType::Text),
    ("key_id", DataType::Text),
    ("note", DataType::Text),
];

impl StoredCheckpoint {
    /// The storage key: the size, big-endian, so checkpoints sort by size.
    pub fn key(&self) -> [u8; 8] {
        self.size.to_be_bytes()
    }

    /// `version || size || root || signed_at || origin || key_name || key_id || note`,
    /// integers as LEB128 varints (signed_at zig-zag), strings length-prefixed.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.note.len());
        out.push(VERSION);
        put_varint(&mut out, self.size);
        out.extend_from_slice(&self.root);
        put_varint(
            &mut out,
            ((self.signed_at_us << 1) ^ (self.signed_at_us >> 63)) as u64,
        );
        for text in [&self.origin, &self.key_name, &self.key_id, &self.note] {
            put_varint(&mut out, text.len() as u64);
            out.extend_from_slice(text.as_bytes());
        }
        out
    }

    /// Decodes [`StoredCheckpoint::encode`]'s output.
    pub fn decode(bytes: &[u8]) -> Result<StoredCheckpoint, DecodeError> {
        let mut r = Reader::new(bytes);
        if r.u8()? != VERSION {
            return Err(r.err_at(0, "unknown checkpoint record version"));
        }
        let size = r.varint()?;
        let root = r.array::<32>()?;
        let zigzag = r.varint()?;
        let signed_at_us = ((zigzag >> 1) as i64) ^ -((zigzag & 1) as i64);
        let mut text = || -> Result<String, DecodeError> {
            let at = r.pos;
            let bytes = r.bytes()?;
            String::from_utf8(bytes.to_vec()).map_err(|_| r.err_at(at, "text is not UTF-8"))
        };
        let checkpoint = StoredCheckpoint {
            size,
            root,
            signed_at_us,
            origin: text()?,
            key_name: text()?,
            key_id: text()?,
            note: text()?,
        };
        if r.pos != bytes.len() {
            return Err(r.err("trailing bytes after the checkpoint"));
        }
        Ok(checkpoint)
    }

    /// The checkpoint as a `__audit_checkpoints` row, in [`COLUMNS`] order.
    pub fn row(&self) -> Vec<Value> {
        vec![
            Value::I64(i64::try_from(self.size).unwrap_or(i64::MAX)),
            Value::Str(hex(&self.root)),
            Value::Timestamp(timestamp(self.signed_at_us)),
            Value::Str(self.origin.clone()),
            Value::Str(self.key_name.clone()),
            Value::Str(self.key_id.clone()),
            Value::Str(self.note.clone()),
        ]
    }
}

/// The schema GlueSQL sees for `__audit_checkpoints`.
pub fn schema() -> Schema {
    let column_defs = COLUMNS
        .iter()
        .map(|(name, data_type)| ColumnDef {
            name: (*name).to_owned(),
            data_type: data_type.clone(),
            nullable: false,
            default: None,
            unique: (*name == "size").then_some(ColumnUniqueOption { is_primary: true }),
            comment: None,
        })
        .collect();
    Schema {
        table_name: CHECKPOINT_TABLE.to_owned(),
        column_defs: Some(column_defs),
        indexes: Vec::new(),
        engine: None,
        foreign_keys: Vec::new(),
        comment: Some("HeliosDB-Lite signed checkpoints (read-only)".to_owned()),
    }
}

fn decode_entry(key: &[u8], value: &[u8]) -> Result<StoredCheckpoint> {
    let checkpoint = StoredCheckpoint::decode(value)
        .map_err(|e| corrupt(KS_AUDIT_CHECKPOINTS, "checkpoint", key, e))?;
    if key != checkpoint.key() {
        return Err(corrupt(
            KS_AUDIT_CHECKPOINTS,
            "checkpoint",
            key,
            DecodeError {
                what: "checkpoint stored under another size",
                offset: 0,
            },
        ));
    }
    Ok(checkpoint)
}

/// The checkpoint of exactly `size` events, if one is stored.
pub fn get(snapshot: &dyn Snapshot, size: u64) -> Result<Option<StoredCheckpoint>> {
    let key = size.to_be_bytes();
    snapshot
        .get(KS_AUDIT_CHECKPOINTS, &key)?
        .map(|value| decode_entry(&key, &value))
        .transpose()
}

/// Every stored checkpoint, by increasing size (none is of size 0: such are refused).
pub fn all(snapshot: &dyn Snapshot) -> Result<Vec<StoredCheckpoint>> {
    after(snapshot, 0)
}

/// The stored checkpoints larger than `size`, by increasing size.
pub fn after(snapshot: &dyn Snapshot, size: u64) -> Result<Vec<StoredCheckpoint>> {
    let Some(lower) = size.checked_add(1) else {
        return Ok(Vec::new());
    };
    let lower = lower.to_be_bytes();
    snapshot
        .range(
            KS_AUDIT_CHECKPOINTS,
            Bound::Included(lower.as_slice()),
            Bound::Unbounded,
            Direction::Forward,
        )?
        .map(|entry| {
            let (key, value) = entry?;
            decode_entry(&key, &value)
        })
        .collect()
}

/// The stored checkpoint with the largest size.
pub fn latest(snapshot: &dyn Snapshot) -> Result<Option<StoredCheckpoint>> {
    snapshot
        .range(
            KS_AUDIT_CHECKPOINTS,
            Bound::Unbounded,
            Bound::Unbounded,
            Direction::Reverse,
        )?
        .next()
        .map(|entry| {
            let (key, value) = entry?;
            decode_entry(&key, &value)
        })
        .transpose()
}

/// Adds `checkpoint` to `batch`.
pub(crate) fn put(batch: &mut WriteBatch, checkpoint: &StoredCheckpoint) {
    batch.put(
        KS_AUDIT_CHECKPOINTS,
        checkpoint.key().to_vec(),
        checkpoint.encode(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn encoding_round_trips(
            size in any::<u64>(),
            root in any::<[u8; 32]>(),
            signed_at_us in any::<i64>(),
            origin in ".*",
            key_name in ".*",
            note in ".*",
        ) {
            let checkpoint = StoredCheckpoint {
                size, root, signed_at_us, origin, key_name, key_id: "0a1b2c3d".into(), note,
            };
            prop_assert_eq!(StoredCheckpoint::decode(&checkpoint.encode()), Ok(checkpoint));
        }

        #[test]
        fn decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = StoredCheckpoint::decode(&bytes);
        }
    }

    #[test]
    fn truncated_records_are_refused() {
        let checkpoint = StoredCheckpoint {
            size: 3,
            root: [7; 32],
            signed_at_us: -5,
            origin: "heliosdb/x".into(),
            key_name: "k".into(),
            key_id: "00000000".into(),
            note: "note".into(),
        };
        let bytes = checkpoint.encode();
        for cut in 0..bytes.len() {
            assert!(
                StoredCheckpoint::decode(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
    }
}
