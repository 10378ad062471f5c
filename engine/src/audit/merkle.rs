//! RFC 6962 / RFC 9162 Merkle tree over the ledger's leaves.
//!
//! * leaf hash: `SHA-256(0x00 || canonical event)` (the ledger's `leaf_n`, for seq `n`,
//!   is leaf index `n - 1`);
//! * interior node: `SHA-256(0x01 || left || right)`;
//! * `MTH({})` = `SHA-256("")`; for `n > 1`, with `k` the largest power of two below `n`,
//!   `MTH(D[n]) = node(MTH(D[0:k]), MTH(D[k:n]))`.
//!
//! The ledger keeps the tree's *frontier* — the roots of the complete subtrees that make up
//! the current size, one per set bit — in its head, so the root at the current size costs
//! O(log n), and stores every complete interior node as it completes (keyspace
//! `audit_tree`), so inclusion and consistency proofs are assembled from O(log n) stored
//! nodes without rehashing the log. Everything here is hand-written against the RFCs: these
//! bytes are what checkpoints sign.

use super::ledger::Hash;
use sha2::{Digest, Sha256};

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([1u8]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The root of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two strictly below `n` (`n >= 2`).
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// A stored complete subtree: level `level` (0 = a leaf), covering leaves
/// `index * 2^level .. (index + 1) * 2^level`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId {
    /// Height above the leaves.
    pub level: u8,
    /// Position among the nodes of its level, from 0.
    pub index: u64,
}

/// The roots of the complete subtrees of a tree of `size` leaves, largest (leftmost) first:
/// one per set bit of `size`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Frontier {
    size: u64,
    roots: Vec<Hash>,
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// A frontier from its parts; `None` unless there is one root per set bit of `size`.
    pub fn from_parts(size: u64, roots: Vec<Hash>) -> Option<Self> {
        (roots.len() == size.count_ones() as usize).then_some(Self { size, roots })
    }

    /// Leaves so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The complete subtree roots, largest first.
    pub fn roots(&self) -> &[Hash] {
        &self.roots
    }

    /// Appends a leaf; calls `completed` with every interior node this completes (level ≥ 1),
    /// lowest first — the nodes the ledger stores.
    pub fn push(&mut self, leaf: Hash, mut completed: impl FnMut(NodeId, &Hash)) {
        let index = self.size;
        let mut node = leaf;
        let mut level: u8 = 0;
        // Each trailing one bit of `index` is a complete subtree of that height to the left
        // of the new leaf: merge with it.
        while (index >> level) & 1 == 1 {
            // A root exists for every set bit, so the stack cannot be empty here.
            let Some(left) = self.roots.pop() else { break };
            node = node_hash(&left, &node);
            level += 1;
            completed(
                NodeId {
                    level,
                    index: index >> level,
                },
                &node,
            );
        }
        self.roots.push(node);
        self.size += 1;
    }

    /// The Merkle tree hash at the current size. O(log n).
    pub fn root(&self) -> Hash {
        let mut roots = self.roots.iter().rev();
        let Some(last) = roots.next() else {
            return empty_root();
        };
        roots.fold(*last, |acc, left| node_hash(left, &acc))
    }
}

/// Where proofs get their nodes: the hash of a stored complete subtree.
pub trait NodeSource {
    /// The error of a failed read.
    type Error;
    /// The hash of complete subtree `id` (level 0: the leaf hash).
    fn node(&mut self, id: NodeId) -> Result<Hash, Self::Error>;
}

/// Leaves held in memory (tests, offline tools): nodes are computed on demand.
impl NodeSource for &[Hash] {
    type Error = std::convert::Infallible;

    fn node(&mut self, id: NodeId) -> Result<Hash, Self::Error> {
        let width = 1u64 << id.level;
        let start = id.index * width;
        Ok(reference_root(
            &self[start as usize..(start + width) as usize],
        ))
    }
}

/// `MTH(D[start:end])` from stored complete subtrees: O(log n) node reads. `start` must
/// be aligned to the largest power of two not above `end - start`, as it is in every
/// RFC 6962 recursion; `end > start`.
pub fn subtree_root<S: NodeSource>(source: &mut S, start: u64, end: u64) -> Result<Hash, S::Error> {
    let width = end - start;
    if width.is_power_of_two() {
        let level = width.trailing_zeros() as u8;
        return source.node(NodeId {
            level,
            index: start >> level,
        });
    }
    let k = split_point(width);
    let left = subtree_root(source, start, start + k)?;
    let right = subtree_root(source, start + k, end)?;
    Ok(node_hash(&left, &right))
}

/// The inclusion proof of leaf `index` in the tree of the first `size` leaves
/// (RFC 9162 §2.1.3.1), leaf-side first. `index < size`.
pub fn inclusion_proof<S: NodeSource>(
    source: &mut S,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, S::Error> {
    let mut path = Vec::new();
    // Iterative form of PATH(m, D[start:end]): descend, collecting siblings root-side
    // first, then reverse.
    let (mut start, mut end) = (0u64, size);
    while end - start > 1 {
        let k = split_point(end - start);
        if index < start + k {
            path.push(subtree_root(source, start + k, end)?);
            end = start + k;
        } else {
            path.push(subtree_root(source, start, start + k)?);
            start += k;
        }
    }
    path.reverse();
    Ok(path)
}

/// The consistency proof from the tree of `old_size` leaves to the tree of `new_size`
/// (RFC 9162 §2.1.4.1). `0 < old_size <= new_size`; empty when the sizes are equal.
pub fn consistency_proof<S: NodeSource>(
    source: &mut S,
    old_size: u64,
    new_size: u64,
) -> Result<Vec<Hash>, S::Error> {
    let mut proof = Vec::new();
    if old_size == 0 || old_size >= new_size {
        return Ok(proof);
    }
    // SUBPROOF(m, D[start:end], b), iteratively, siblings collected root-side first.
    let (mut start, mut end, mut complete) = (0u64, new_size, true);
    let m = old_size;
    loop {
        let n = end - start;
        let m_rel = m - start;
        if m_rel == n {
            if !complete {
                proof.push(subtree_root(source, start, end)?);
            }
            break;
        }
        let k = split_point(n);
        if m_rel <= k {
            proof.push(subtree_root(source, start + k, end)?);
            end = start + k;
        } else {
            proof.push(subtree_root(source, start, start + k)?);
            start += k;
            complete = false;
        }
    }
    proof.reverse();
    Ok(proof)
}

/// Checks an inclusion proof (RFC 9162 §2.1.3.2): does `leaf` sit at `index` in the tree
/// of `size` leaves whose root is `root`?
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    s_n == 0 && r == *root
}

/// Checks a consistency proof (RFC 9162 §2.1.4.2): is the tree of `old_size` leaves with
/// root `old_root` a prefix of the tree of `new_size` leaves with root `new_root`?
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    if old_size > new_size {
        return false;
    }
    if old_size == new_size {
        return proof.is_empty() && old_root == new_root;
    }
    if old_size == 0 {
        // Every tree extends the empty one; nothing to prove.
        return proof.is_empty();
    }
    let mut path: Vec<Hash> = proof.to_vec();
    // When the old size is a power of two the old root is the first node of the path.
    if old_size.is_power_of_two() {
        path.insert(0, *old_root);
    }
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let (mut f_n, mut s_n) = (old_size - 1, new_size - 1);
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    fr == *old_root && sr == *new_root && s_n == 0
}

/// `MTH` computed directly from the definition, recursively: the reference the fast paths
/// are tested against, and the root for leaves held in memory.
pub fn reference_root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split_point(n as u64) as usize;
            node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::ledger::leaf_hash;
    use proptest::prelude::*;

    fn hex(h: &Hash) -> String {
        crate::error::hex(h)
    }

    /// RFC 6962 §2.1 recursion for PATH, straight from the text.
    fn reference_path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
        let n = leaves.len();
        if n <= 1 {
            return Vec::new();
        }
        let k = split_point(n as u64) as usize;
        if m < k {
            let mut p = reference_path(m, &leaves[..k]);
            p.push(reference_root(&leaves[k..]));
            p
        } else {
            let mut p = reference_path(m - k, &leaves[k..]);
            p.push(reference_root(&leaves[..k]));
            p
        }
    }

    /// RFC 6962 §2.1.2 SUBPROOF, straight from the text.
    fn reference_subproof(m: usize, leaves: &[Hash], complete: bool) -> Vec<Hash> {
        let n = leaves.len();
        if m == n {
            return if complete {
                Vec::new()
            } else {
                vec![reference_root(leaves)]
            };
        }
        let k = split_point(n as u64) as usize;
        if m <= k {
            let mut p = reference_subproof(m, &leaves[..k], complete);
            p.push(reference_root(&leaves[k..]));
            p
        } else {
            let mut p = reference_subproof(m - k, &leaves[k..], false);
            p.push(reference_root(&leaves[..k]));
            p
        }
    }

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(&(i as u64).to_be_bytes()))
            .collect()
    }

    /// The leaves and roots used by the Certificate Transparency implementations' tests.
    #[test]
    fn known_roots_of_the_rfc6962_test_leaves() {
        let inputs: [&[u8]; 8] = [
            b"",
            &[0x00],
            &[0x10],
            &[0x20, 0x21],
            &[0x30, 0x31],
            &[0x40, 0x41, 0x42, 0x43],
            &[0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57],
            &[
                0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d,
                0x6e, 0x6f,
            ],
        ];
        let roots = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        let leaves: Vec<Hash> = inputs.iter().map(|d| leaf_hash(d)).collect();
        let mut frontier = Frontier::new();
        for (i, leaf) in leaves.iter().enumerate() {
            frontier.push(*leaf, |_, _| {});
            assert_eq!(hex(&frontier.root()), roots[i], "size {}", i + 1);
            assert_eq!(hex(&reference_root(&leaves[..=i])), roots[i]);
        }
        assert_eq!(
            hex(&empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn completed_nodes_are_the_complete_subtrees() {
        let leaves = leaves(13);
        let mut frontier = Frontier::new();
        let mut stored = Vec::new();
        for leaf in &leaves {
            frontier.push(*leaf, |id, hash| stored.push((id, *hash)));
        }
        // 13 leaves: 6 + 3 + 1 complete interior nodes.
        assert_eq!(stored.len(), 10);
        for (id, hash) in stored {
            let width = 1usize << id.level;
            let start = id.index as usize * width;
            assert_eq!(
                hash,
                reference_root(&leaves[start..start + width]),
                "{id:?}"
            );
        }
        assert_eq!(frontier.roots().len(), 3);
        let rebuilt = Frontier::from_parts(13, frontier.roots().to_vec()).expect("valid");
        assert_eq!(rebuilt.root(), reference_root(&leaves));
        assert!(Frontier::from_parts(13, vec![[0; 32]]).is_none());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn proofs_match_the_rfc_recursion_and_verify(size in 1usize..300, seed in any::<u64>()) {
            let leaves = leaves(size);
            let root = reference_root(&leaves);
            let mut frontier = Frontier::new();
            for leaf in &leaves {
                frontier.push(*leaf, |_, _| {});
            }
            prop_assert_eq!(frontier.root(), root);
            let mut source: &[Hash] = &leaves;
            let index = (seed % size as u64) as usize;
            let path = inclusion_proof(&mut source, index as u64, size as u64).expect("infallible");
            prop_assert_eq!(&path, &reference_path(index, &leaves));
            prop_assert!(verify_inclusion(index as u64, size as u64, &leaves[index], &path, &root));
            // Any change to the claim fails.
            let other = (index + 1) % size;
            if other != index {
                prop_assert!(!verify_inclusion(other as u64, size as u64, &leaves[index], &path, &root));
            }
            prop_assert!(!verify_inclusion(size as u64, size as u64, &leaves[index], &path, &root));
            if let Some(first) = path.first() {
                let mut bad = path.clone();
                bad[0] = node_hash(first, first);
                prop_assert!(!verify_inclusion(index as u64, size as u64, &leaves[index], &bad, &root));
            }

            let old = 1 + (seed >> 20) as usize % size;
            let proof = consistency_proof(&mut source, old as u64, size as u64).expect("infallible");
            let expected = if old == size { Vec::new() } else { reference_subproof(old, &leaves, true) };
            prop_assert_eq!(&proof, &expected);
            let old_root = reference_root(&leaves[..old]);
            prop_assert!(verify_consistency(old as u64, size as u64, &old_root, &root, &proof));
            if old < size {
                let wrong = node_hash(&old_root, &old_root);
                prop_assert!(!verify_consistency(old as u64, size as u64, &wrong, &root, &proof));
                prop_assert!(!verify_consistency(old as u64, size as u64, &old_root, &wrong, &proof));
                let mut bad = proof.clone();
                bad.pop();
                prop_assert!(!verify_consistency(old as u64, size as u64, &old_root, &root, &bad));
            }
        }
    }
}
