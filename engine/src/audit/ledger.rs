//! The ledger: the append-only, SHA-256 hash-chained record of audit events, written in the
//! same atomic batch as the data change each event describes.
//!
//! * `leaf_n  = SHA-256(0x00 || canonical(event_n))`
//! * `chain_0 = SHA-256("heliosdb-audit/v1" || database_id)`
//! * `chain_n = SHA-256(chain_{n-1} || leaf_n)`
//!
//! Storage (keyspace `audit`): key = seq (u64 BE), value = canonical bytes followed by the
//! 32-byte chain hash. The head (`audit/head` in `catalog`: seq u64 BE + chain hash) is
//! written in the same batch, so opening a database reads it in O(1). Index entries for
//! `__audit_log` (keyspace `audit_idx`) are written in the same batch too.

use super::event::AuditEvent;
use crate::backend::{Snapshot, WriteBatch};
use crate::catalog::{self, KS_CATALOG, corrupt};
use crate::codec::{self, DecodeError};
use crate::error::{Error, Result};
use gluesql_core::data::{Key, Value};
use sha2::{Digest, Sha256};

/// Keyspace of sealed audit records.
pub const KS_AUDIT: &str = "audit";
/// Keyspace of `__audit_log` index entries.
pub const KS_AUDIT_INDEX: &str = "audit_idx";
/// Catalog key of the ledger head.
pub const HEAD_KEY: &[u8] = b"audit/head";
/// Catalog key of the database id.
pub const DATABASE_ID_KEY: &[u8] = b"meta/database_id";
/// Domain-separation prefix of the genesis chain hash.
pub const GENESIS_PREFIX: &[u8] = b"heliosdb-audit/v1";

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// `SHA-256(0x00 || canonical)`: the RFC 6962 leaf hash of an event.
pub fn leaf_hash(canonical: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0u8]);
    hasher.update(canonical);
    hasher.finalize().into()
}

/// `SHA-256(prev || leaf)`.
pub fn chain_hash(prev: &Hash, leaf: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(prev);
    hasher.update(leaf);
    hasher.finalize().into()
}

/// `chain_0 = SHA-256("heliosdb-audit/v1" || database_id)`.
pub fn genesis(database_id: &[u8; 16]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(GENESIS_PREFIX);
    hasher.update(database_id);
    hasher.finalize().into()
}

/// The last sealed event: its seq (0 when the ledger is empty) and chain hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// Seq of the last event; 0 for an empty ledger.
    pub seq: u64,
    /// Chain hash after the last event (`chain_0` for an empty ledger).
    pub chain: Hash,
}

impl Head {
    /// Encodes as `seq u64 BE || chain`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(40);
        out.extend(self.seq.to_be_bytes());
        out.extend(self.chain);
        out
    }

    /// Decodes [`Head::encode`]'s output.
    pub fn decode(bytes: &[u8]) -> Result<Head, DecodeError> {
        if bytes.len() != 40 {
            return Err(DecodeError {
                what: "ledger head must be 40 bytes",
                offset: 0,
            });
        }
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&bytes[..8]);
        let mut chain = [0u8; 32];
        chain.copy_from_slice(&bytes[8..]);
        Ok(Head {
            seq: u64::from_be_bytes(seq),
            chain,
        })
    }
}

/// A sealed event as stored: the event (with its seq) and its chain hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The event.
    pub event: AuditEvent,
    /// `chain_seq`.
    pub chain: Hash,
}

/// Storage key of the record with `seq`.
pub fn record_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// Splits a stored record into canonical bytes and chain hash.
pub fn split_record(value: &[u8]) -> Result<(&[u8], Hash), DecodeError> {
    if value.len() < 32 {
        return Err(DecodeError {
            what: "audit record shorter than its chain hash",
            offset: 0,
        });
    }
    let (canonical, chain) = value.split_at(value.len() - 32);
    let mut hash = [0u8; 32];
    hash.copy_from_slice(chain);
    Ok((canonical, hash))
}

/// Decodes a stored record (without checking any hash).
pub fn decode_record(key: &[u8], value: &[u8]) -> Result<Record> {
    let bad = |e: DecodeError| corrupt(KS_AUDIT, "audit record", key, e);
    let (canonical, chain) = split_record(value).map_err(bad)?;
    let event = AuditEvent::from_canonical(canonical).map_err(bad)?;
    Ok(Record { event, chain })
}

/// Reads the database id, creating it on first use (in `batch`).
pub(crate) fn load_or_create_database_id(
    snapshot: &dyn Snapshot,
    batch: &mut WriteBatch,
) -> Result<[u8; 16]> {
    match snapshot.get(KS_CATALOG, DATABASE_ID_KEY)? {
        Some(bytes) => <[u8; 16]>::try_from(bytes.as_slice()).map_err(|_| {
            corrupt(
                KS_CATALOG,
                "database id",
                DATABASE_ID_KEY,
                DecodeError {
                    what: "database id must be 16 bytes",
                    offset: 0,
                },
            )
        }),
        None => {
            let id = *uuid::Uuid::new_v4().as_bytes();
            batch.put(KS_CATALOG, DATABASE_ID_KEY, id.to_vec());
            Ok(id)
        }
    }
}

/// Reads the stored head, or the genesis head of an empty ledger. O(1).
pub fn load_head(snapshot: &dyn Snapshot, database_id: &[u8; 16]) -> Result<Head> {
    match snapshot.get(KS_CATALOG, HEAD_KEY)? {
        Some(bytes) => {
            Head::decode(&bytes).map_err(|e| corrupt(KS_CATALOG, "ledger head", HEAD_KEY, e))
        }
        None => Ok(Head {
            seq: 0,
            chain: genesis(database_id),
        }),
    }
}

/// Names of the indexed `__audit_log` columns and their index names.
pub const AUDIT_INDEXES: [(&str, &str); 4] = [
    ("timestamp", "__audit_log_timestamp"),
    ("user", "__audit_log_user"),
    ("operation", "__audit_log_operation"),
    ("target", "__audit_log_target"),
];

/// Table id under which `__audit_log` index entries are keyed (never allocated to a table).
pub const AUDIT_TABLE_ID: u64 = u64::MAX;

/// Seals `events` after `head`: assigns seqs, computes hashes, and stages records, index
/// entries and the new head into `batch`. Returns the new head. The caller commits `batch`
/// atomically and adopts the head only if the commit succeeds.
///
/// This is the one path by which events enter the ledger. An open [`Database`] calls it
/// under its ledger lock; tools that build a ledger directly on a backend no database
/// has open (benchmarks generating synthetic history, importers) may call it too.
///
/// [`Database`]: crate::Database
pub fn seal(head: Head, events: &mut [AuditEvent], batch: &mut WriteBatch) -> Result<Head> {
    seal_with(head, events, batch, |_| {})
}

/// [`seal`], handing each event's leaf hash to `leaf` in seq order (for the Merkle tree).
pub(crate) fn seal_with(
    head: Head,
    events: &mut [AuditEvent],
    batch: &mut WriteBatch,
    mut leaf: impl FnMut(Hash),
) -> Result<Head> {
    let mut head = head;
    for event in events.iter_mut() {
        head.seq = head
            .seq
            .checked_add(1)
            .ok_or_else(|| Error::Internal("audit sequence exhausted".to_owned()))?;
        event.seq = head.seq;
        let canonical = event.canonical();
        let leaf_hash = leaf_hash(&canonical);
        leaf(leaf_hash);
        head.chain = chain_hash(&head.chain, &leaf_hash);
        let pk = codec::encode_key(&Key::I64(seq_as_i64(head.seq)?));
        for (_, entry) in index_entries(event, &pk)? {
            batch.put(KS_AUDIT_INDEX, entry, pk.clone());
        }
        let mut value = canonical;
        value.extend(head.chain);
        batch.put(KS_AUDIT, record_key(head.seq).to_vec(), value);
    }
    batch.put(KS_CATALOG, HEAD_KEY, head.encode());
    Ok(head)
}

pub(crate) fn seq_as_i64(seq: u64) -> Result<i64> {
    i64::try_from(seq).map_err(|_| Error::Internal("audit sequence exceeds i64".to_owned()))
}

/// One `audit_idx` entry: index name, key, value.
pub type IndexEntry = (&'static str, Vec<u8>, Vec<u8>);

/// The `audit_idx` entries of a sealed event (its seq set), as `(index name, key, value)`:
/// what `verify` expects to find for it (`docs/FORMAT.md` §5.4).
pub fn audit_index_entries(event: &AuditEvent) -> Result<Vec<IndexEntry>> {
    let pk = codec::encode_key(&Key::I64(seq_as_i64(event.seq)?));
    Ok(index_entries(event, &pk)?
        .into_iter()
        .map(|(index, key)| (index, key, pk.clone()))
        .collect())
}

/// The `audit_idx` entry keys of one event, with their index names; `pk` is the encoded
/// `__audit_log` key of the event (its seq). Each entry's value is `pk`.
pub(crate) fn index_entries(event: &AuditEvent, pk: &[u8]) -> Result<Vec<(&'static str, Vec<u8>)>> {
    let mut entries = Vec::with_capacity(AUDIT_INDEXES.len());
    for (column, index) in AUDIT_INDEXES {
        let value = index_value(event, column);
        let key = codec::value_to_key(&value)
            .map_err(|e| Error::Internal(format!("audit index value: {e}")))?;
        let mut entry = catalog::index_prefix(AUDIT_TABLE_ID, index);
        codec::encode_key_into(&mut entry, &key);
        entry.extend_from_slice(pk);
        entries.push((index, entry));
    }
    Ok(entries)
}

/// The `__audit_log` value of an indexed column.
fn index_value(event: &AuditEvent, column: &str) -> Value {
    match column {
        "timestamp" => Value::Timestamp(super::event::timestamp(event.timestamp_us)),
        "user" => Value::Str(event.user.clone()),
        "operation" => Value::Str(event.operation.clone()),
        _ => Value::Str(event.targets.join(",")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genesis_and_chain_follow_the_documented_rules() {
        let id = [1u8; 16];
        let mut expected = Sha256::new();
        expected.update(b"heliosdb-audit/v1");
        expected.update([1u8; 16]);
        let expected: Hash = expected.finalize().into();
        assert_eq!(genesis(&id), expected);

        let leaf = leaf_hash(b"abc");
        let mut h = Sha256::new();
        h.update([0u8]);
        h.update(b"abc");
        assert_eq!(leaf, <Hash>::from(h.finalize()));
        assert_ne!(
            chain_hash(&genesis(&id), &leaf),
            chain_hash(&leaf, &genesis(&id))
        );
    }

    #[test]
    fn head_round_trips() {
        let head = Head {
            seq: 42,
            chain: [9u8; 32],
        };
        assert_eq!(Head::decode(&head.encode()).expect("decode"), head);
        assert!(Head::decode(&[0u8; 39]).is_err());
    }
}
