//! Event proofs (C2SP tlog-proof@v1): written for every event, they verify with the
//! public key alone; any change to the event, the index, the path, the checkpoint or the
//! key makes them fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use heliosdb_checkpoint::{Checkpoint, EventProof, SignerKey};
use heliosdb_engine::audit;
use heliosdb_engine::{Database, DatabaseOptions, Param, SessionInfo};
use std::sync::Arc;

fn database() -> Database {
    let db = Database::with_backend(
        Arc::new(heliosdb_backend_memory::MemoryBackend::new()),
        DatabaseOptions::default(),
    )
    .expect("open");
    let mut s = db.session(SessionInfo::new("prover"));
    s.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)", &[])
        .expect("ddl");
    for id in 0..12 {
        s.execute("INSERT INTO t VALUES ($1)", &[Param::from(id)])
            .expect("insert");
    }
    db
}

fn proof_of(db: &Database, key: &SignerKey, seq: u64) -> EventProof {
    let (size, root) = db.audit_root();
    let note = Checkpoint::new(&db.database_id(), size, root)
        .sign(key)
        .expect("sign");
    let record = audit::tail(db.backend(), usize::MAX)
        .expect("ledger")
        .into_iter()
        .find(|r| r.event.seq == seq)
        .expect("event");
    EventProof {
        canonical: record.event.canonical(),
        index: seq - 1,
        path: db.inclusion_proof(seq, size).expect("path"),
        checkpoint: note,
    }
}

#[test]
fn every_event_is_provable_and_tampering_fails() {
    let db = database();
    let key = SignerKey::generate("prover").expect("key");
    let other = SignerKey::generate("prover").expect("key");
    let size = db.audit_root().0;
    for seq in 1..=size {
        let text = proof_of(&db, &key, seq).to_text();
        assert!(text.starts_with("c2sp.org/tlog-proof@v1\nextra "));
        let proof = EventProof::parse(&text).expect("parses");
        let proved = proof.verify(&key.verifier()).expect("verifies");
        assert_eq!(proved.event.seq, seq);
        assert_eq!(proved.checkpoint.size, size);
        assert!(proof.verify(&other.verifier()).is_err(), "another key");
    }
    let proof = proof_of(&db, &key, 5);
    let mut event = audit::AuditEvent::from_canonical(&proof.canonical).expect("event");
    event.user = "mallory".to_owned();
    let changed_event = EventProof {
        canonical: event.canonical(),
        ..proof.clone()
    };
    assert!(changed_event.verify(&key.verifier()).is_err());
    let wrong_index = EventProof {
        index: 5,
        ..proof.clone()
    };
    assert!(wrong_index.verify(&key.verifier()).is_err());
    let mut bad_path = proof.clone();
    bad_path.path[0][0] ^= 1;
    assert!(bad_path.verify(&key.verifier()).is_err());
    let text = proof.to_text();
    let root_line = BASE64.encode(db.audit_root().1);
    let forged = text.replace(&root_line, &BASE64.encode([0u8; 32]));
    assert!(
        EventProof::parse(&forged)
            .expect("parses")
            .verify(&key.verifier())
            .is_err()
    );
    for garbage in [
        "",
        "c2sp.org/tlog-proof@v1\n\n",
        "not a proof\nindex 1\n\nx\n",
    ] {
        assert!(EventProof::parse(garbage).is_err(), "{garbage:?}");
    }
}
