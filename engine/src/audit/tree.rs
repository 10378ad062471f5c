//! The ledger's Merkle tree in storage: every complete interior node (keyspace
//! `audit_tree`), written in the same commit as the events it covers. The frontier — the
//! complete subtrees that make up the current size — is read back from those nodes when a
//! database opens, in O(log n), and kept in memory. Layout in `docs/FORMAT.md` §5.7.

use super::ledger::{HEAD_KEY, Hash, Head, KS_AUDIT, leaf_hash, record_key, split_record};
use super::merkle::{self, Frontier, NodeId, NodeSource};
use crate::backend::{Direction, Snapshot, StorageBackend, WriteBatch};
use crate::catalog::{KS_CATALOG, corrupt};
use crate::codec::DecodeError;
use crate::error::{Error, Result};
use std::ops::Bound;

/// Keyspace of complete interior nodes: key `level u8 || index u64 BE`, value the hash.
pub const KS_AUDIT_TREE: &str = "audit_tree";
/// Storage key of interior node `id`.
pub fn node_key(id: NodeId) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = id.level;
    key[1..].copy_from_slice(&id.index.to_be_bytes());
    key
}

/// Appends `leaves` to `frontier`, staging the nodes they complete into `batch`.
pub fn append(
    frontier: &mut Frontier,
    leaves: impl IntoIterator<Item = Hash>,
    batch: &mut WriteBatch,
) {
    for leaf in leaves {
        frontier.push(leaf, |id, hash| {
            batch.put(KS_AUDIT_TREE, node_key(id).to_vec(), hash.to_vec());
        });
    }
}

/// Leaves hashed per commit while the tree catches up with the ledger.
const CATCH_UP_BATCH: usize = 10_000;

/// The frontier of the ledger's `head_seq` events, read from the stored nodes; when the
/// tree does not cover them (a database sealed before the tree existed, a tool that sealed
/// events alone, an interrupted rebuild) it is built from the records, once, committing
/// every 10,000 leaves.
pub fn catch_up(backend: &dyn StorageBackend, head_seq: u64) -> Result<Frontier> {
    let snapshot = backend.snapshot()?;
    match frontier_at(&*snapshot, head_seq, head_seq) {
        Ok(frontier) => return Ok(frontier),
        Err(Error::Corrupt { .. }) => {}
        Err(other) => return Err(other),
    }
    let records = snapshot.range(
        KS_AUDIT,
        Bound::Unbounded,
        Bound::Included(record_key(head_seq).as_slice()),
        Direction::Forward,
    )?;
    let mut frontier = Frontier::new();
    let mut leaves = Vec::with_capacity(CATCH_UP_BATCH);
    let mut expected = 1;
    for item in records {
        let (key, value) = item?;
        if key.as_slice() != record_key(expected) {
            return Err(gap(expected));
        }
        let (canonical, _) =
            split_record(&value).map_err(|e| corrupt(KS_AUDIT, "audit record", &key, e))?;
        leaves.push(leaf_hash(canonical));
        expected += 1;
        if leaves.len() == CATCH_UP_BATCH {
            let mut batch = WriteBatch::new();
            append(&mut frontier, leaves.drain(..), &mut batch);
            backend.commit(&batch, crate::backend::Durability::Buffered)?;
        }
    }
    if expected != head_seq + 1 {
        return Err(gap(expected));
    }
    let mut batch = WriteBatch::new();
    append(&mut frontier, leaves, &mut batch);
    backend.commit(&batch, crate::backend::Durability::Sync)?;
    Ok(frontier)
}

fn gap(seq: u64) -> Error {
    corrupt(
        KS_AUDIT,
        "audit record",
        &record_key(seq),
        DecodeError {
            what: "record missing while building the Merkle tree (run verify)",
            offset: 0,
        },
    )
}

/// Reads nodes from a snapshot: leaves from the audit records, interior nodes from
/// `audit_tree`.
pub struct StoredNodes<'a> {
    snapshot: &'a dyn Snapshot,
}

impl<'a> StoredNodes<'a> {
    /// Nodes as of `snapshot`.
    pub fn new(snapshot: &'a dyn Snapshot) -> Self {
        Self { snapshot }
    }
}

impl NodeSource for StoredNodes<'_> {
    type Error = Error;

    fn node(&mut self, id: NodeId) -> Result<Hash> {
        if id.level == 0 {
            let key = record_key(id.index + 1);
            if let Some(value) = self.snapshot.get(KS_AUDIT, &key)? {
                let (canonical, _) =
                    split_record(&value).map_err(|e| corrupt(KS_AUDIT, "audit record", &key, e))?;
                return Ok(leaf_hash(canonical));
            }
            // A pruned event leaves its leaf hash in the tree (`audit::prune`).
            let stored = self.snapshot.get(KS_AUDIT_TREE, &node_key(id))?;
            return stored
                .as_deref()
                .and_then(|v| <[u8; 32]>::try_from(v).ok())
                .ok_or_else(|| gap(id.index + 1));
        }
        let key = node_key(id);
        let value = self.snapshot.get(KS_AUDIT_TREE, &key)?;
        value
            .as_deref()
            .and_then(|v| <[u8; 32]>::try_from(v).ok())
            .ok_or_else(|| {
                corrupt(
                    KS_AUDIT_TREE,
                    "Merkle node",
                    &key,
                    DecodeError {
                        what: "missing or not a 32-byte hash",
                        offset: 0,
                    },
                )
            })
    }
}

/// Checks `0 < size <= tree size` (and `index < size`) for proofs.
fn check_size(what: &str, size: u64, tree_size: u64) -> Result<()> {
    if size == 0 || size > tree_size {
        return Err(Error::OutOfRange(format!(
            "{what}: tree size {size} is outside 1..={tree_size}, the events sealed so far"
        )));
    }
    Ok(())
}

/// The root of the tree of the first `size` events (`size <= tree_size`).
pub fn root_at(snapshot: &dyn Snapshot, size: u64, tree_size: u64) -> Result<Hash> {
    if size == 0 {
        return Ok(merkle::empty_root());
    }
    check_size("Merkle root", size, tree_size)?;
    merkle::subtree_root(&mut StoredNodes::new(snapshot), 0, size)
}

/// The inclusion proof of event `seq` in the tree of the first `size` events.
pub fn inclusion_proof(
    snapshot: &dyn Snapshot,
    seq: u64,
    size: u64,
    tree_size: u64,
) -> Result<Vec<Hash>> {
    check_size("inclusion proof", size, tree_size)?;
    if seq == 0 || seq > size {
        return Err(Error::OutOfRange(format!(
            "inclusion proof: seq {seq} is outside 1..={size}"
        )));
    }
    merkle::inclusion_proof(&mut StoredNodes::new(snapshot), seq - 1, size)
}

/// The consistency proof from the tree of `old_size` events to that of `new_size`.
pub fn consistency_proof(
    snapshot: &dyn Snapshot,
    old_size: u64,
    new_size: u64,
    tree_size: u64,
) -> Result<Vec<Hash>> {
    check_size("consistency proof", new_size, tree_size)?;
    if old_size == 0 || old_size > new_size {
        return Err(Error::OutOfRange(format!(
            "consistency proof: old size {old_size} is outside 1..={new_size}"
        )));
    }
    merkle::consistency_proof(&mut StoredNodes::new(snapshot), old_size, new_size)
}

/// The Merkle roots over the first `sizes[i]` events, recomputed from the stored records
/// alone — never from stored nodes or the frontier — in one streaming pass: what a
/// checkpoint's root is checked against. `sizes` must be sorted; a size beyond the ledger
/// yields `None`.
pub fn roots_from_records(
    backend: &dyn StorageBackend,
    sizes: &[u64],
) -> Result<Vec<Option<Hash>>> {
    let mut roots = vec![None; sizes.len()];
    let mut wanted = sizes.iter().copied().enumerate().peekable();
    while let Some((i, 0)) = wanted.peek().copied() {
        roots[i] = Some(merkle::empty_root());
        wanted.next();
    }
    if wanted.peek().is_none() || !backend.keyspaces()?.iter().any(|k| k == KS_AUDIT) {
        return Ok(roots);
    }
    let snapshot = backend.snapshot()?;
    // After pruning, the kept records extend the anchor's frontier; roots at sizes inside
    // the pruned prefix come from the leaf hashes pruning kept in the tree.
    let mut frontier = Frontier::new();
    if let Some(anchor) = super::anchor::load_anchor(&*snapshot)? {
        let pruned = anchor.frontier.size();
        while let Some((i, size)) = wanted.peek().copied() {
            if size > pruned {
                break;
            }
            roots[i] = Some(merkle::subtree_root(
                &mut StoredNodes::new(&*snapshot),
                0,
                size,
            )?);
            wanted.next();
        }
        frontier = anchor.frontier;
    }
    let (indices, rest): (Vec<usize>, Vec<u64>) = wanted.unzip();
    let found = extend_from_records(&*snapshot, &mut frontier, &rest)?;
    for (i, root) in indices.into_iter().zip(found) {
        roots[i] = root;
    }
    Ok(roots)
}

/// Pushes onto `frontier` the leaves of the stored records that follow it, recomputed from
/// the records alone, up to the largest of `sizes`; returns the root at each of `sizes`
/// (sorted, none below `frontier.size()`), `None` for a size beyond the last record.
pub fn extend_from_records(
    snapshot: &dyn Snapshot,
    frontier: &mut Frontier,
    sizes: &[u64],
) -> Result<Vec<Option<Hash>>> {
    let mut roots = vec![None; sizes.len()];
    let mut wanted = sizes.iter().copied().enumerate().peekable();
    if wanted
        .peek()
        .is_some_and(|(_, size)| *size < frontier.size())
    {
        return Err(Error::Internal(format!(
            "roots below the {} events already hashed were asked for",
            frontier.size()
        )));
    }
    let mut capture = |frontier: &Frontier, roots: &mut Vec<Option<Hash>>| {
        while let Some((i, size)) = wanted.peek().copied() {
            if size != frontier.size() {
                break;
            }
            roots[i] = Some(frontier.root());
            wanted.next();
        }
    };
    capture(frontier, &mut roots);
    let Some(&last) = sizes.last() else {
        return Ok(roots);
    };
    if last <= frontier.size() {
        return Ok(roots);
    }
    let first = record_key(frontier.size() + 1);
    let records = snapshot.range(
        KS_AUDIT,
        Bound::Included(first.as_slice()),
        Bound::Included(record_key(last).as_slice()),
        Direction::Forward,
    )?;
    for item in records {
        let (key, value) = item?;
        if key.as_slice() != record_key(frontier.size() + 1) {
            return Err(gap(frontier.size() + 1));
        }
        let (canonical, _) =
            split_record(&value).map_err(|e| corrupt(KS_AUDIT, "audit record", &key, e))?;
        frontier.push(leaf_hash(canonical), |_, _| {});
        capture(frontier, &mut roots);
    }
    Ok(roots)
}

/// The frontier of the tree of the first `size` events, from stored nodes: O(log n).
pub fn frontier_at(snapshot: &dyn Snapshot, size: u64, tree_size: u64) -> Result<Frontier> {
    if size > 0 {
        check_size("Merkle frontier", size, tree_size)?;
    }
    let mut source = StoredNodes::new(snapshot);
    let mut roots = Vec::new();
    let mut start = 0u64;
    for bit in (0..64u32).rev() {
        let width = 1u64 << bit;
        if size & width != 0 {
            roots.push(merkle::subtree_root(&mut source, start, start + width)?);
            start += width;
        }
    }
    Frontier::from_parts(size, roots)
        .ok_or_else(|| Error::Internal("frontier roots do not match the size".to_owned()))
}

/// Read access to the sealed ledger's Merkle tree, for sinks: roots, frontiers and
/// consistency proofs at any size up to the current one, from stored nodes.
#[derive(Clone)]
pub struct TreeReader {
    backend: std::sync::Arc<dyn StorageBackend>,
}

impl std::fmt::Debug for TreeReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TreeReader").finish_non_exhaustive()
    }
}

impl TreeReader {
    /// A reader over `backend`'s ledger.
    pub fn new(backend: std::sync::Arc<dyn StorageBackend>) -> Self {
        Self { backend }
    }

    fn tree_size(snapshot: &dyn Snapshot) -> Result<u64> {
        Ok(match snapshot.get(KS_CATALOG, HEAD_KEY)? {
            Some(bytes) => {
                Head::decode(&bytes)
                    .map_err(|e| corrupt(KS_CATALOG, "ledger head", HEAD_KEY, e))?
                    .seq
            }
            None => 0,
        })
    }

    /// The frontier at `size`.
    pub fn frontier_at(&self, size: u64) -> Result<Frontier> {
        let snapshot = self.backend.snapshot()?;
        let tree_size = Self::tree_size(&*snapshot)?;
        frontier_at(&*snapshot, size, tree_size)
    }

    /// The consistency proof from `old_size` to `new_size`.
    pub fn consistency_proof(&self, old_size: u64, new_size: u64) -> Result<Vec<Hash>> {
        let snapshot = self.backend.snapshot()?;
        let tree_size = Self::tree_size(&*snapshot)?;
        consistency_proof(&*snapshot, old_size, new_size, tree_size)
    }
}
