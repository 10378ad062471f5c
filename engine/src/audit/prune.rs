//! Retention: removing the oldest events without breaking verification.
//!
//! Pruning removes whole events from the start of the ledger only. In the same commit as
//! the deletions it stores a **prune anchor** — the first kept seq, the chain hash before
//! it and the Merkle frontier of the removed prefix — and seals a SYSTEM `PRUNE` event
//! that states the range and the anchor, so the anchor is itself covered by the chain
//! after it. Each removed event leaves its 32-byte leaf hash in the Merkle tree
//! (`audit_tree`, level 0), so inclusion proofs of kept events, roots at old sizes and
//! consistency proofs from old checkpoints keep working. `verify` starts from the anchor.
//! Then the storage is compacted, so the space is actually returned
//! ([`StorageBackend::reclaim`]).
//!
//! [`StorageBackend::reclaim`]: crate::backend::StorageBackend::reclaim

pub use super::anchor::{ANCHOR_KEY, PruneAnchor, load_anchor};
use super::ledger::{self, AUDIT_INDEXES, AUDIT_TABLE_ID, Hash, KS_AUDIT, KS_AUDIT_INDEX};
use super::merkle::NodeId;
use super::tree::{self, KS_AUDIT_TREE};
use crate::backend::{Direction, Snapshot};
use crate::catalog::{self, KS_CATALOG, corrupt};
use crate::codec::{self, DecodeError};
use crate::error::{Error, Result, hex};
use gluesql_core::data::Key;
use std::ops::Bound;

/// `catalog` key of a legal hold placed with [`Database::set_legal_hold`].
///
/// [`Database::set_legal_hold`]: crate::Database::set_legal_hold
pub const HOLD_KEY: &[u8] = b"audit/legal_hold";
/// Operation of the SYSTEM event that records a prune.
pub const PRUNE_OPERATION: &str = "PRUNE";

/// A legal hold placed on the audit trail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LegalHold {
    /// Why (a case or matter reference).
    pub reason: String,
    /// Who placed it.
    pub by: String,
    /// Since when, in microseconds since the Unix epoch.
    pub since_us: i64,
}

impl LegalHold {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend(self.since_us.to_be_bytes());
        for text in [&self.by, &self.reason] {
            codec::put_varint(&mut out, text.len() as u64);
            out.extend(text.as_bytes());
        }
        out
    }

    fn decode(bytes: &[u8]) -> Result<LegalHold, DecodeError> {
        let mut r = codec::Reader::new(bytes);
        let since_us = i64::from_be_bytes(r.array()?);
        let mut text = || -> Result<String, DecodeError> {
            let at = r.pos;
            String::from_utf8(r.bytes()?.to_vec()).map_err(|_| r.err_at(at, "text is not UTF-8"))
        };
        let by = text()?;
        let reason = text()?;
        Ok(LegalHold {
            reason,
            by,
            since_us,
        })
    }
}

/// The stored legal hold, if one is placed.
pub fn load_hold(snapshot: &dyn Snapshot) -> Result<Option<LegalHold>> {
    snapshot
        .get(KS_CATALOG, HOLD_KEY)?
        .map(|bytes| {
            LegalHold::decode(&bytes).map_err(|e| corrupt(KS_CATALOG, "legal hold", HOLD_KEY, e))
        })
        .transpose()
}

/// What to prune: every event before a seq, or the oldest events up to a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PruneBefore {
    /// Every event with a seq below this one.
    Seq(u64),
    /// The oldest events, up to the first one recorded at or after this time
    /// (microseconds since the Unix epoch): pruning never skips over a newer event.
    Time(i64),
}

/// What a prune did (or, in a dry run, would do).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PruneReport {
    /// The first seq stored before the prune.
    pub first_seq: u64,
    /// The last seq the request covered.
    pub requested_through: u64,
    /// The last seq pruned (`first_seq - 1` when nothing was).
    pub pruned_through: u64,
    /// Events pruned.
    pub events: u64,
    /// Why fewer events than requested were pruned, when that happened.
    pub limited_by: Option<String>,
    /// True when nothing was changed (a dry run).
    pub dry_run: bool,
    /// Seqs of the SYSTEM `PRUNE` events sealed (one per chunk).
    pub prune_events: Vec<u64>,
}

/// Operation of the SYSTEM event that records an automatic pruning run skipped (lockdown,
/// a legal hold); recorded once per reason, not on every run.
pub const AUTO_PRUNE_SKIPPED_OPERATION: &str = "AUTO_PRUNE_SKIPPED";

/// How long a prune waits for every attached sink to say where it stands.
pub const SINK_POSITION_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Events removed per commit: each commit is atomic with its own anchor and `PRUNE`
/// event, so a crash between two leaves a consistent, verifiable ledger.
pub const PRUNE_CHUNK: u64 = 50_000;

/// The last seq of the oldest run of events recorded before `time_us`, from `start`.
pub(crate) fn last_before(snapshot: &dyn Snapshot, start: u64, time_us: i64) -> Result<u64> {
    let lower = ledger::record_key(start);
    let records = snapshot.range(
        KS_AUDIT,
        Bound::Included(lower.as_slice()),
        Bound::Unbounded,
        Direction::Forward,
    )?;
    let mut last = start - 1;
    for item in records {
        let (key, value) = item?;
        let record = ledger::decode_record(&key, &value)?;
        if record.event.timestamp_us >= time_us {
            break;
        }
        last = record.event.seq;
    }
    Ok(last)
}

/// Stages the removal of events `from..=through` into `batch`: records and index entries
/// deleted, leaf hashes kept as level-0 tree nodes. Returns the chain hash of `through`.
pub(crate) fn stage_removal(
    snapshot: &dyn Snapshot,
    from: u64,
    through: u64,
    batch: &mut crate::backend::WriteBatch,
) -> Result<Hash> {
    let lower = ledger::record_key(from);
    let upper = ledger::record_key(through);
    let records = snapshot.range(
        KS_AUDIT,
        Bound::Included(lower.as_slice()),
        Bound::Included(upper.as_slice()),
        Direction::Forward,
    )?;
    let mut expected = from;
    let mut chain = None;
    for item in records {
        let (key, value) = item?;
        let (canonical, stored_chain) =
            ledger::split_record(&value).map_err(|e| corrupt(KS_AUDIT, "audit record", &key, e))?;
        let record = ledger::decode_record(&key, &value)?;
        if record.event.seq != expected {
            return Err(Error::Integrity(format!(
                "cannot prune: event {expected} is missing (run verify)"
            )));
        }
        for (_, entry, _) in ledger::audit_index_entries(&record.event)? {
            batch.delete(KS_AUDIT_INDEX, entry);
        }
        let leaf = NodeId {
            level: 0,
            index: expected - 1,
        };
        batch.put(
            KS_AUDIT_TREE,
            tree::node_key(leaf).to_vec(),
            ledger::leaf_hash(canonical).to_vec(),
        );
        batch.delete(KS_AUDIT, key);
        chain = Some(stored_chain);
        expected += 1;
    }
    match chain {
        Some(chain) if expected == through + 1 => Ok(chain),
        _ => Err(Error::Integrity(format!(
            "cannot prune: event {expected} is missing (run verify)"
        ))),
    }
}

/// The seq of the newest `PRUNE` event, found through the `operation` index.
pub(crate) fn newest_prune_event(snapshot: &dyn Snapshot) -> Result<Option<u64>> {
    let Some((_, index)) = AUDIT_INDEXES
        .iter()
        .find(|(column, _)| *column == "operation")
    else {
        return Ok(None);
    };
    let mut prefix = catalog::index_prefix(AUDIT_TABLE_ID, index);
    codec::encode_key_into(&mut prefix, &Key::Str(PRUNE_OPERATION.to_owned()));
    let upper = crate::backend::prefix_successor(&prefix);
    let mut entries = snapshot.range(
        KS_AUDIT_INDEX,
        Bound::Included(prefix.as_slice()),
        upper.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
        Direction::Reverse,
    )?;
    let Some(entry) = entries.next() else {
        return Ok(None);
    };
    let (key, pk) = entry?;
    match codec::decode_key(&pk).map_err(|e| corrupt(KS_AUDIT_INDEX, "index entry", &key, e))? {
        Key::I64(seq) => Ok(u64::try_from(seq).ok()),
        _ => Ok(None),
    }
}

/// The custom fields a `PRUNE` event carries about the anchor it created.
pub(crate) fn anchor_fields(anchor: &PruneAnchor) -> [(String, String); 3] {
    [
        (
            "anchor_first_kept".to_owned(),
            anchor.first_kept.to_string(),
        ),
        ("anchor_chain".to_owned(), hex(&anchor.chain_before)),
        ("anchor_root".to_owned(), hex(&anchor.frontier.root())),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::merkle::Frontier;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn anchors_round_trip(first_kept in 2u64..1 << 40, chain in any::<[u8; 32]>(), at in any::<i64>()) {
            let size = first_kept - 1;
            let roots = (0..size.count_ones()).map(|i| [i as u8; 32]).collect();
            let anchor = PruneAnchor {
                first_kept,
                chain_before: chain,
                frontier: Frontier::from_parts(size, roots).expect("one root per bit"),
                pruned_at_us: at,
            };
            prop_assert_eq!(PruneAnchor::decode(&anchor.encode()), Ok(anchor));
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = PruneAnchor::decode(&bytes);
            let _ = LegalHold::decode(&bytes);
        }
    }

    #[test]
    fn holds_round_trip() {
        let hold = LegalHold {
            reason: "case 42".into(),
            by: "counsel".into(),
            since_us: 7,
        };
        assert_eq!(LegalHold::decode(&hold.encode()), Ok(hold));
    }
}
