//! Our keys, signed checkpoints and Merkle proofs, checked by independent implementations:
//! `signed_note` (C2SP signed-note), `tlog_tiles` (C2SP tlog-checkpoint, Go `tlog` proof
//! checks) and `ct-merkle` (RFC 6962 proofs) — and their tampered variants rejected.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use heliosdb_checkpoint::{Checkpoint, Note, SignerKey, VerifierKey};
use heliosdb_engine::audit::{self, Hash};
use heliosdb_engine::{Database, DatabaseOptions, Param, SessionInfo};
use signed_note::{Note as TheirNote, Signer as _, StandardSigner, StandardVerifier, VerifierList};
use std::sync::Arc;

fn database(events: i64) -> Database {
    let db = Database::with_backend(
        Arc::new(heliosdb_backend_memory::MemoryBackend::new()),
        DatabaseOptions::default(),
    )
    .expect("open");
    let mut s = db.session(SessionInfo::new("interop"));
    s.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)", &[])
        .expect("ddl");
    for id in 0..events {
        s.execute("INSERT INTO t VALUES ($1)", &[Param::from(id)])
            .expect("insert");
    }
    db
}

/// Each event's canonical bytes, in seq order.
fn canonical_events(db: &Database) -> Vec<Vec<u8>> {
    audit::tail(db.backend(), usize::MAX)
        .expect("ledger")
        .into_iter()
        .map(|r| r.event.canonical())
        .collect()
}

#[test]
fn our_keys_and_notes_are_read_by_signed_note() {
    let key = SignerKey::generate("heliosdb-interop").expect("key");
    let their_verifier = StandardVerifier::new(&key.verifier().to_string()).expect("our vkey");
    let their_signer = StandardSigner::new(&key.to_private_text()).expect("our skey");
    assert_eq!(their_signer.key_id(), key.id());

    let checkpoint = Checkpoint::new(&[3; 16], 10, [4; 32]);
    let ours = checkpoint.sign(&key).expect("sign").to_string();
    let list = VerifierList::new(vec![Box::new(their_verifier)]);
    let note = TheirNote::from_bytes(ours.as_bytes()).expect("they parse our note");
    note.verify(&list).expect("they accept our signature");
    assert_eq!(note.text(), checkpoint.body().as_bytes());
    // Byte for byte, their signing of the same text gives the same note (Ed25519 is
    // deterministic).
    let mut theirs = TheirNote::new(checkpoint.body().as_bytes(), &[]).expect("note");
    theirs.add_sigs(&[&their_signer]).expect("they sign");
    assert_eq!(theirs.to_bytes(), ours.as_bytes());

    let forged = ours.replacen("\n10\n", "\n11\n", 1);
    let forged = TheirNote::from_bytes(forged.as_bytes()).expect("parses");
    let list = VerifierList::new(vec![Box::new(
        StandardVerifier::new(&key.verifier().to_string()).expect("vkey"),
    )]);
    assert!(forged.verify(&list).is_err(), "they reject a changed size");
}

#[test]
fn their_keys_and_notes_are_read_by_us() {
    let mut rng = rand_core_06::OsRng;
    let (skey, vkey) = signed_note::generate_key(&mut rng, "their-log");
    let ours = SignerKey::parse(&skey).expect("we read their signer key");
    let verifier = VerifierKey::parse(&vkey).expect("we read their verifier key");
    assert_eq!(ours.verifier(), verifier);
    let signer = StandardSigner::new(&skey).expect("skey");
    let body = Checkpoint::new(&[9; 16], 3, [1; 32]).body();
    let mut note = TheirNote::new(body.as_bytes(), &[]).expect("note");
    note.add_sigs(&[&signer]).expect("sign");
    let text = String::from_utf8(note.to_bytes()).expect("utf-8");
    let opened = Checkpoint::open(&text, &verifier).expect("we accept their note");
    assert_eq!(opened.size, 3);
    assert!(
        Note::parse(&text.replace("\n3\n", "\n4\n"))
            .expect("parses")
            .verify(&verifier)
            .is_err()
    );
}

#[test]
fn our_checkpoints_are_read_by_tlog_tiles() {
    let db = database(5);
    let (size, root) = db.audit_root();
    let checkpoint = Checkpoint::new(&db.database_id(), size, root);
    let theirs = tlog_tiles::Checkpoint::from_bytes(checkpoint.body().as_bytes()).expect("parses");
    assert_eq!(theirs.origin(), checkpoint.origin);
    assert_eq!(theirs.size(), size);
    assert_eq!(theirs.hash().0, root);
}

#[test]
fn our_proofs_pass_tlog_tiles_and_ct_merkle_and_tampered_ones_fail() {
    use ct_merkle::{ConsistencyProof, InclusionProof, RootHash};
    type Sha = sha2_v011::Sha256;
    let db = database(40);
    let events = canonical_events(&db);
    let leaves: Vec<Hash> = events.iter().map(|c| audit::leaf_hash(c)).collect();
    let (size, _) = db.audit_root();
    assert_eq!(size as usize, events.len());
    let their = |h: &Hash| tlog_tiles::Hash(*h);
    for n in [1u64, 2, 5, 16, 17, size] {
        let root_n = db.audit_root_at(n).expect("root");
        let ct_root = RootHash::<Sha>::new(root_n.into(), n);
        for seq in [1, n / 2 + 1, n] {
            let proof = db.inclusion_proof(seq, n).expect("proof");
            let theirs: Vec<tlog_tiles::Hash> = proof.iter().map(their).collect();
            tlog_tiles::check_record(
                &theirs,
                n,
                their(&root_n),
                seq - 1,
                their(&leaves[seq as usize - 1]),
            )
            .expect("tlog_tiles accepts our inclusion proof");
            let ct_proof = InclusionProof::<Sha>::from_bytes(proof.concat());
            ct_root
                .verify_inclusion(&events[seq as usize - 1], seq - 1, &ct_proof)
                .expect("ct-merkle accepts our inclusion proof");
            if let Some(first) = proof.first() {
                let mut bad = proof.clone();
                bad[0] = audit::leaf_hash(first);
                let theirs: Vec<tlog_tiles::Hash> = bad.iter().map(their).collect();
                assert!(
                    tlog_tiles::check_record(
                        &theirs,
                        n,
                        their(&root_n),
                        seq - 1,
                        their(&leaves[seq as usize - 1])
                    )
                    .is_err()
                );
                assert!(
                    ct_root
                        .verify_inclusion(
                            &events[seq as usize - 1],
                            seq - 1,
                            &InclusionProof::<Sha>::from_bytes(bad.concat())
                        )
                        .is_err()
                );
            }
        }
        for old in [1u64, n / 2 + 1, n] {
            if old > n {
                continue;
            }
            let root_old = db.audit_root_at(old).expect("root");
            let proof = db.consistency_proof(old, n).expect("proof");
            let theirs: Vec<tlog_tiles::Hash> = proof.iter().map(their).collect();
            tlog_tiles::check_tree(&theirs, n, their(&root_n), old, their(&root_old))
                .expect("tlog_tiles accepts our consistency proof");
            if old < n {
                let ct_old = RootHash::<Sha>::new(root_old.into(), old);
                let ct_proof =
                    ConsistencyProof::<Sha>::try_from_bytes(proof.concat()).expect("proof bytes");
                ct_root
                    .verify_consistency(&ct_old, &ct_proof)
                    .expect("ct-merkle accepts our consistency proof");
                let wrong_old = their(&audit::leaf_hash(&root_old));
                assert!(
                    tlog_tiles::check_tree(&theirs, n, their(&root_n), old, wrong_old).is_err()
                );
            }
        }
    }
}
