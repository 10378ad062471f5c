//! The ledger's RFC 6962 Merkle tree on both backends: the root kept in every commit
//! matches one recomputed from the exported leaves; inclusion and consistency proofs from
//! stored nodes verify, at every size; a database whose tree is missing (sealed before the
//! tree existed, or by a tool that sealed events alone) gets it rebuilt when opened.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[macro_use]
mod common;

use heliosdb_lite::engine::audit::merkle::{self, reference_root};
use heliosdb_lite::engine::audit::tree::KS_AUDIT_TREE;
use heliosdb_lite::engine::audit::{self, Hash};
use heliosdb_lite::engine::backend::{Direction, Durability, WriteBatch};
use heliosdb_lite::{Database, Error};
use std::ops::Bound;

fn open(kind: &str, dir: &std::path::Path) -> Database {
    match kind {
        "memory" => Database::in_memory().expect("memory"),
        _ => Database::open(dir).expect("fjall"),
    }
}

/// Every leaf hash, recomputed from the export (not from the engine's tree).
fn leaves(db: &Database) -> Vec<Hash> {
    let mut out = Vec::new();
    audit::export(db.backend(), None, None, &mut out).expect("export");
    String::from_utf8(out)
        .expect("utf-8")
        .lines()
        .map(|line| {
            let line: audit::ExportLine = serde_json::from_str(line).expect("line");
            audit::leaf_hash(&line.event().expect("event").canonical())
        })
        .collect()
}

fn roots_and_proofs_match_the_definition(kind: &str) {
    let dir = tempfile::tempdir().expect("dir");
    let db = open(kind, dir.path());
    assert_eq!(db.audit_root(), (0, merkle::empty_root()));
    common::insert_rows(&db, 40);
    let leaves = leaves(&db);
    let (size, root) = db.audit_root();
    assert_eq!(size, leaves.len() as u64);
    assert_eq!(root, reference_root(&leaves));
    for n in 1..=size {
        assert_eq!(
            db.audit_root_at(n).expect("root"),
            reference_root(&leaves[..n as usize]),
            "size {n}"
        );
    }
    for n in [1, 2, 3, 7, 8, 9, size - 1, size] {
        let root_n = reference_root(&leaves[..n as usize]);
        for seq in 1..=n {
            let proof = db.inclusion_proof(seq, n).expect("inclusion proof");
            assert!(
                merkle::verify_inclusion(seq - 1, n, &leaves[seq as usize - 1], &proof, &root_n),
                "seq {seq} in {n}"
            );
        }
        for old in 1..=n {
            let proof = db.consistency_proof(old, n).expect("consistency proof");
            let old_root = reference_root(&leaves[..old as usize]);
            assert!(
                merkle::verify_consistency(old, n, &old_root, &root_n, &proof),
                "{old} -> {n}"
            );
        }
    }
    for error in [
        db.inclusion_proof(0, size).expect_err("seq 0"),
        db.inclusion_proof(5, 4).expect_err("seq past size"),
        db.inclusion_proof(1, size + 1)
            .expect_err("size past the ledger"),
        db.consistency_proof(5, 4).expect_err("old past new"),
        db.audit_root_at(size + 1)
            .expect_err("size past the ledger"),
    ] {
        assert!(matches!(error, Error::OutOfRange(_)), "{error:?}");
    }
    if kind == "fjall" {
        drop(db);
        let db = open(kind, dir.path());
        assert_eq!(
            db.audit_root(),
            (size, root),
            "the frontier survives a reopen"
        );
    }
}

on_both_backends!(roots_and_proofs_match_the_definition);

#[test]
fn a_missing_tree_is_rebuilt_on_open() {
    let dir = tempfile::tempdir().expect("dir");
    let (size, root) = {
        let db = Database::open(dir.path()).expect("open");
        common::insert_rows(&db, 25);
        db.audit_root()
    };
    // Remove the tree: what a database sealed before it existed looks like.
    {
        let backend = heliosdb_lite::FjallBackend::open(dir.path()).expect("backend");
        use heliosdb_lite::StorageBackend;
        let snapshot = backend.snapshot().expect("snapshot");
        let mut batch = WriteBatch::new();
        for item in snapshot
            .range(
                KS_AUDIT_TREE,
                Bound::Unbounded,
                Bound::Unbounded,
                Direction::Forward,
            )
            .expect("range")
        {
            let (key, _) = item.expect("node");
            batch.delete(KS_AUDIT_TREE, key);
        }
        backend.commit(&batch, Durability::Sync).expect("commit");
    }
    let db = Database::open(dir.path()).expect("reopen rebuilds the tree");
    assert_eq!(db.audit_root(), (size, root));
    let proof = db
        .inclusion_proof(3, size)
        .expect("proof from rebuilt nodes");
    let before = leaves(&db);
    assert!(merkle::verify_inclusion(2, size, &before[2], &proof, &root));
    // And the tree keeps growing from there.
    common::insert_rows(&db, 1);
    assert_eq!(db.audit_root().1, reference_root(&leaves(&db)));
}
