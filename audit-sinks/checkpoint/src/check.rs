//! Checking a ledger against signed checkpoints taken earlier.

use crate::Checkpoint;
use heliosdb_engine::audit::ledger::DATABASE_ID_KEY;
use heliosdb_engine::audit::tree;
use heliosdb_engine::backend::StorageBackend;
use heliosdb_engine::catalog::KS_CATALOG;
use std::fmt;

/// How the ledger compares with one checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The root recomputed from the first `size` stored events equals the signed one.
    Matches,
    /// The checkpoint is of another database.
    ForeignDatabase,
    /// The ledger holds fewer events than the checkpoint covers: its tail was cut, or the
    /// database was rolled back to an older copy.
    Truncated {
        /// Events in the ledger now.
        ledger_size: u64,
    },
    /// The root recomputed from the stored events differs: events the checkpoint covers
    /// were changed, removed or rewritten (even with a recomputed chain).
    RootMismatch,
}

impl Verdict {
    /// True for [`Verdict::Matches`].
    pub fn is_match(&self) -> bool {
        matches!(self, Verdict::Matches)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Matches => f.write_str("the ledger matches it"),
            Verdict::ForeignDatabase => f.write_str("it is a checkpoint of another database"),
            Verdict::Truncated { ledger_size } => write!(
                f,
                "the ledger holds only {ledger_size} events: its tail was cut or the database was rolled back"
            ),
            Verdict::RootMismatch => f.write_str(
                "the Merkle root of the stored events differs: events it covers were changed or rewritten",
            ),
        }
    }
}

/// Compares the ledger of `backend` with each checkpoint (signatures already checked):
/// the Merkle root of the first `size` events is recomputed from the stored records —
/// trusting no stored hash, frontier or node — in one streaming pass.
pub fn check(
    backend: &dyn StorageBackend,
    checkpoints: &[Checkpoint],
) -> heliosdb_engine::Result<Vec<Verdict>> {
    let database_id = backend
        .snapshot()?
        .get(KS_CATALOG, DATABASE_ID_KEY)?
        .and_then(|bytes| <[u8; 16]>::try_from(bytes.as_slice()).ok());
    let mut sizes: Vec<u64> = checkpoints.iter().map(|c| c.size).collect();
    sizes.sort_unstable();
    sizes.dedup();
    let roots = tree::roots_from_records(backend, &sizes)?;
    let ledger_size = roots_ledger_size(backend)?;
    Ok(checkpoints
        .iter()
        .map(|checkpoint| {
            if database_id.is_none() || checkpoint.database_id() != database_id {
                return Verdict::ForeignDatabase;
            }
            let at = sizes.binary_search(&checkpoint.size).ok();
            match at.and_then(|i| roots.get(i).copied().flatten()) {
                Some(root) if root == checkpoint.root => Verdict::Matches,
                Some(_) => Verdict::RootMismatch,
                None => Verdict::Truncated { ledger_size },
            }
        })
        .collect())
}

/// Events stored: the seq of the last record (the stored head is not trusted here).
fn roots_ledger_size(backend: &dyn StorageBackend) -> heliosdb_engine::Result<u64> {
    Ok(heliosdb_engine::audit::tail(backend, 1)?
        .first()
        .map_or(0, |record| record.event.seq))
}
