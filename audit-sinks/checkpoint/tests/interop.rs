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

/// `hash` with one bit of byte `at` flipped.
fn flipped(hash: &Hash, at: usize) -> Hash {
    let mut changed = *hash;
    changed[at % 32] ^= 0x01;
    changed
}

#[test]
fn our_signed_checkpoints_are_verified_by_signed_note_then_parsed_by_tlog_tiles() {
    let db = database(9);
    let key = SignerKey::generate("heliosdb-interop").expect("key");
    let (size, root) = db.audit_root();
    let checkpoint = Checkpoint::new(&db.database_id(), size, root);
    let signed = checkpoint.sign(&key).expect("sign").to_string();
    let verifiers = || {
        VerifierList::new(vec![Box::new(
            StandardVerifier::new(&key.verifier().to_string()).expect("our vkey"),
        )])
    };
    let note = TheirNote::from_bytes(signed.as_bytes()).expect("they parse our note");
    let (verified, unverified) = note.verify(&verifiers()).expect("they accept it");
    assert_eq!((verified.len(), unverified.len()), (1, 0));
    let theirs = tlog_tiles::Checkpoint::from_bytes(note.text()).expect("tlog_tiles parses it");
    assert_eq!(theirs.origin(), checkpoint.origin);
    assert_eq!(theirs.size(), size);
    assert_eq!(theirs.hash().0, root);
    assert_eq!(theirs.to_bytes(), checkpoint.body().as_bytes());

    // Tampered notes: another root, another origin, a changed signature byte.
    let root_line = checkpoint
        .body()
        .lines()
        .nth(2)
        .expect("root line")
        .to_owned();
    let other_root = Checkpoint::new(&db.database_id(), size, flipped(&root, 0)).body();
    let other_root_line = other_root.lines().nth(2).expect("root line");
    let signature_line = signed.lines().last().expect("signature line").to_owned();
    let mut signature: Vec<char> = signature_line.chars().collect();
    let at = signature.len() - 5;
    signature[at] = if signature[at] == 'A' { 'B' } else { 'A' };
    let signature: String = signature.into_iter().collect();
    for tampered in [
        signed.replacen(&root_line, other_root_line, 1),
        signed.replacen("heliosdb/", "heliosdb/0", 1),
        signed.replacen(&signature_line, &signature, 1),
    ] {
        assert_ne!(tampered, signed);
        let rejected = TheirNote::from_bytes(tampered.as_bytes())
            .map_err(|e| e.to_string())
            .and_then(|n| {
                n.verify(&verifiers())
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            });
        assert!(rejected.is_err(), "signed_note accepted {tampered:?}");
        assert!(Checkpoint::open(&tampered, &key.verifier()).is_err());
    }
}

#[test]
fn changed_proofs_are_rejected_by_tlog_tiles_and_ct_merkle() {
    use ct_merkle::{ConsistencyProof, InclusionProof, RootHash};
    type Sha = sha2_v011::Sha256;
    let db = database(40);
    let events = canonical_events(&db);
    let (size, root) = db.audit_root();
    let their = |h: &Hash| tlog_tiles::Hash(*h);
    let ct_root = RootHash::<Sha>::new(root.into(), size);

    // Inclusion: every path hash in turn gets one bit flipped.
    let seq = 13u64;
    let leaf = audit::leaf_hash(&events[seq as usize - 1]);
    let proof = db.inclusion_proof(seq, size).expect("proof");
    assert!(proof.len() > 2);
    for i in 0..proof.len() {
        let mut changed = proof.clone();
        changed[i] = flipped(&proof[i], i);
        let theirs: Vec<tlog_tiles::Hash> = changed.iter().map(their).collect();
        assert!(
            tlog_tiles::check_record(&theirs, size, their(&root), seq - 1, their(&leaf)).is_err(),
            "tlog_tiles accepted an inclusion proof with hash {i} changed"
        );
        assert!(
            ct_root
                .verify_inclusion(
                    &events[seq as usize - 1],
                    seq - 1,
                    &InclusionProof::<Sha>::from_bytes(changed.concat())
                )
                .is_err()
        );
    }
    // Consistency: every proof hash in turn gets one bit flipped, and a hash dropped.
    for old in [3u64, 16, 21] {
        let root_old = db.audit_root_at(old).expect("root");
        let proof = db.consistency_proof(old, size).expect("proof");
        let ct_old = RootHash::<Sha>::new(root_old.into(), old);
        let mut variants: Vec<Vec<Hash>> = (0..proof.len())
            .map(|i| {
                let mut changed = proof.clone();
                changed[i] = flipped(&proof[i], i + 7);
                changed
            })
            .collect();
        variants.push(proof[..proof.len() - 1].to_vec());
        for changed in variants {
            let theirs: Vec<tlog_tiles::Hash> = changed.iter().map(their).collect();
            assert!(
                tlog_tiles::check_tree(&theirs, size, their(&root), old, their(&root_old)).is_err(),
                "tlog_tiles accepted a changed consistency proof from {old}"
            );
            let rejected = ConsistencyProof::<Sha>::try_from_bytes(changed.concat())
                .map_err(|_| ())
                .and_then(|p| ct_root.verify_consistency(&ct_old, &p).map_err(|_| ()));
            assert!(
                rejected.is_err(),
                "ct-merkle accepted a changed consistency proof from {old}"
            );
        }
    }
}
