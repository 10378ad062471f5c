//! The prune anchor: where the kept ledger starts after pruning (see
//! [`prune`](super::prune)). Below the ledger's users — the tree catches up from it,
//! `verify` starts from it, retention writes it — so none of them depends on another.

use super::ledger::Hash;
use super::merkle::Frontier;
use crate::backend::Snapshot;
use crate::catalog::{KS_CATALOG, corrupt};
use crate::codec::DecodeError;
use crate::error::Result;

/// `catalog` key of the prune anchor.
pub const ANCHOR_KEY: &[u8] = b"audit/prune_anchor";
const ANCHOR_VERSION: u8 = 1;

/// Where the kept ledger starts after pruning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PruneAnchor {
    /// The first seq still stored (every seq below it was pruned).
    pub first_kept: u64,
    /// The chain hash of `first_kept - 1`: where verification of the kept events starts.
    pub chain_before: Hash,
    /// The Merkle frontier of the first `first_kept - 1` events.
    pub frontier: Frontier,
    /// When the prune ran, in microseconds since the Unix epoch.
    pub pruned_at_us: i64,
}

impl PruneAnchor {
    /// `01 || first_kept u64 BE || chain_before || pruned_at i64 BE || frontier roots`
    /// (one 32-byte root per set bit of `first_kept - 1`, largest subtree first).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(49 + 32 * self.frontier.roots().len());
        out.push(ANCHOR_VERSION);
        out.extend(self.first_kept.to_be_bytes());
        out.extend(self.chain_before);
        out.extend(self.pruned_at_us.to_be_bytes());
        for root in self.frontier.roots() {
            out.extend(root);
        }
        out
    }

    /// Decodes [`PruneAnchor::encode`]'s output.
    pub fn decode(bytes: &[u8]) -> Result<PruneAnchor, DecodeError> {
        let bad = |what| DecodeError { what, offset: 0 };
        let (&version, rest) = bytes.split_first().ok_or(bad("empty prune anchor"))?;
        if version != ANCHOR_VERSION {
            return Err(bad("unknown prune anchor version"));
        }
        if rest.len() < 48 || (rest.len() - 48) % 32 != 0 {
            return Err(bad("prune anchor has the wrong length"));
        }
        let first_kept = u64::from_be_bytes(array(&rest[..8]));
        let chain_before = array(&rest[8..40]);
        let pruned_at_us = i64::from_be_bytes(array(&rest[40..48]));
        let roots = rest[48..].chunks_exact(32).map(array).collect();
        let frontier = Frontier::from_parts(first_kept.saturating_sub(1), roots)
            .filter(|_| first_kept > 1)
            .ok_or(bad("prune anchor frontier does not match its size"))?;
        Ok(PruneAnchor {
            first_kept,
            chain_before,
            frontier,
            pruned_at_us,
        })
    }
}

fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(bytes);
    out
}

/// The stored prune anchor, if the ledger was ever pruned.
pub fn load_anchor(snapshot: &dyn Snapshot) -> Result<Option<PruneAnchor>> {
    snapshot
        .get(KS_CATALOG, ANCHOR_KEY)?
        .map(|bytes| {
            PruneAnchor::decode(&bytes)
                .map_err(|e| corrupt(KS_CATALOG, "prune anchor", ANCHOR_KEY, e))
        })
        .transpose()
}
