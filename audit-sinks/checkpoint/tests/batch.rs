//! Signed sync batches: a sequence of batches verifies with the public key alone, each
//! continuing the last; a changed, dropped, replayed or skipped batch, a forged frontier or
//! another key is refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use heliosdb_checkpoint::{
    BatchError, BatchReceipt, SignerKey, VerifiedBatch, verify_batch, write_batch,
};
use heliosdb_engine::{Database, DatabaseOptions, Param, SessionInfo};
use proptest::prelude::*;
use std::io::{Read, Write};
use std::sync::Arc;

fn database() -> Database {
    let db = Database::with_backend(
        Arc::new(heliosdb_backend_memory::MemoryBackend::new()),
        DatabaseOptions::default(),
    )
    .expect("open");
    db.session(SessionInfo::new("operator"))
        .execute(
            "CREATE TABLE setpoint (id INTEGER PRIMARY KEY, value FLOAT)",
            &[],
        )
        .expect("ddl");
    db
}

fn write_events(db: &Database, n: i64) {
    let mut s = db.session(SessionInfo::new("operator"));
    let rows = s
        .query("SELECT COUNT(*) AS n FROM setpoint", &[])
        .expect("count");
    let first = rows.get::<i64>(0, "n").expect("count");
    for id in first..first + n {
        s.execute(
            "INSERT INTO setpoint VALUES ($1, $2)",
            &[Param::from(id), Param::from(20.5)],
        )
        .expect("insert");
    }
}

fn batch(db: &Database, key: &SignerKey, after: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let summary = write_batch(db, key, after, &mut out).expect("write batch");
    assert_eq!(summary.after, after);
    assert_eq!(summary.size, db.audit_root().0);
    out
}

fn verify(
    bytes: &[u8],
    key: &SignerKey,
    previous: Option<&BatchReceipt>,
) -> Result<VerifiedBatch, BatchError> {
    verify_batch(bytes, &key.verifier(), previous)
}

/// Decompresses, lets `edit` change the text, recompresses.
fn edited(bytes: &[u8], edit: impl FnOnce(String) -> String) -> Vec<u8> {
    let mut text = String::new();
    GzDecoder::new(bytes).read_to_string(&mut text).unwrap();
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(edit(text).as_bytes()).unwrap();
    gz.finish().unwrap()
}

#[test]
fn batches_chain_and_verify_with_the_public_key_alone() {
    let db = database();
    let key = SignerKey::generate("plant-7").unwrap();
    write_events(&db, 5);
    let first = verify(&batch(&db, &key, 0), &key, None).expect("first batch");
    assert_eq!(first.after, 0);
    assert_eq!(first.events.len() as u64, first.receipt.size);
    assert_eq!(first.events[0].seq, 1);
    assert_eq!(first.events.last().unwrap().operation, "INSERT");
    // The signed checkpoint is kept in the database, the anchor of the next batch.
    assert_eq!(
        db.latest_checkpoint().unwrap().unwrap().size,
        first.receipt.size
    );

    write_events(&db, 3);
    let second = verify(
        &batch(&db, &key, first.receipt.size),
        &key,
        Some(&first.receipt),
    )
    .expect("second batch");
    assert_eq!(second.after, first.receipt.size);
    assert_eq!(second.events[0].seq, first.receipt.size + 1);
    assert_eq!(second.receipt.size, db.audit_root().0);

    // Nothing new: an empty batch still carries a signed checkpoint and verifies.
    let empty = verify(
        &batch(&db, &key, second.receipt.size),
        &key,
        Some(&second.receipt),
    )
    .expect("empty batch");
    assert!(empty.events.is_empty());
    assert_eq!(empty.receipt, second.receipt);
}

#[test]
fn a_changed_event_is_found_at_its_seq() {
    let db = database();
    let key = SignerKey::generate("plant-7").unwrap();
    write_events(&db, 4);
    let bytes = batch(&db, &key, 0);
    let forged = edited(&bytes, |t| {
        t.replacen("\"user\":\"operator\"", "\"user\":\"nobody\"", 2)
    });
    match verify(&forged, &key, None) {
        // Seq 1 is the CREATE TABLE by operator: the first replaced user.
        Err(BatchError::Tampered { seq: Some(1), .. }) => {}
        other => panic!("expected tampering at seq 1, got {other:?}"),
    }
}

#[test]
fn a_dropped_event_or_cut_tail_is_refused() {
    let db = database();
    let key = SignerKey::generate("plant-7").unwrap();
    write_events(&db, 4);
    let bytes = batch(&db, &key, 0);
    let cut_tail = edited(&bytes, |t| {
        let mut lines: Vec<&str> = t.lines().collect();
        lines.pop();
        lines.join("\n") + "\n"
    });
    assert!(matches!(
        verify(&cut_tail, &key, None),
        Err(BatchError::Tampered { .. })
    ));
    let dropped = edited(&bytes, |t| {
        let mut lines: Vec<&str> = t.lines().collect();
        lines.remove(3);
        lines.join("\n") + "\n"
    });
    assert!(matches!(
        verify(&dropped, &key, None),
        Err(BatchError::Tampered { .. })
    ));
}

#[test]
fn replayed_skipped_or_foreign_batches_do_not_continue() {
    let db = database();
    let key = SignerKey::generate("plant-7").unwrap();
    write_events(&db, 2);
    let b1 = batch(&db, &key, 0);
    let r1 = verify(&b1, &key, None).unwrap().receipt;
    write_events(&db, 2);
    let b2 = batch(&db, &key, r1.size);
    let r2 = verify(&b2, &key, Some(&r1)).unwrap().receipt;
    write_events(&db, 2);
    let b3 = batch(&db, &key, r2.size);

    // Replaying batch 2 after itself, or skipping it.
    assert!(matches!(
        verify(&b2, &key, Some(&r2)),
        Err(BatchError::NotContinuous { .. })
    ));
    assert!(matches!(
        verify(&b3, &key, Some(&r1)),
        Err(BatchError::NotContinuous { .. })
    ));
    // A later batch cannot be taken on its own as a first one.
    assert!(matches!(
        verify(&b3, &key, None),
        Err(BatchError::NotContinuous { .. })
    ));
    // Another device's batch after ours.
    let other = database();
    write_events(&other, 1);
    let foreign = batch(&other, &key, 0);
    assert!(verify(&foreign, &key, None).is_ok());
    let stretched = BatchReceipt {
        size: 0,
        ..r2.clone()
    };
    assert!(matches!(
        verify(&foreign, &key, Some(&stretched)),
        Err(BatchError::NotContinuous { .. })
    ));
}

#[test]
fn a_forged_frontier_or_another_key_is_refused() {
    let db = database();
    let key = SignerKey::generate("plant-7").unwrap();
    write_events(&db, 3);
    let r1 = verify(&batch(&db, &key, 0), &key, None).unwrap().receipt;
    write_events(&db, 3);
    let b2 = batch(&db, &key, r1.size);
    let forged = edited(&b2, |t| {
        let at = t.find("\"frontier\":[\"").unwrap() + 13;
        let mut t = t.into_bytes();
        t[at] = if t[at] == b'0' { b'1' } else { b'0' };
        String::from_utf8(t).unwrap()
    });
    assert!(matches!(
        verify(&forged, &key, Some(&r1)),
        Err(BatchError::NotContinuous { .. })
    ));
    let stranger = SignerKey::generate("plant-7").unwrap();
    assert!(matches!(
        verify(&b2, &stranger, Some(&r1)),
        Err(BatchError::Checkpoint(_))
    ));
    assert!(matches!(
        verify_batch(&b"not a batch"[..], &key.verifier(), None),
        Err(BatchError::Malformed { .. })
    ));
}

#[test]
fn the_writer_refuses_positions_past_the_ledger() {
    let db = database();
    let key = SignerKey::generate("plant-7").unwrap();
    let size = db.audit_root().0;
    assert!(matches!(
        write_batch(&db, &key, size + 1, Vec::new()),
        Err(BatchError::Refused { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]
    /// Any split of a ledger into batches verifies batch after batch, and the events
    /// received are exactly the ledger's, once each, in order.
    #[test]
    fn any_split_into_batches_verifies(writes in proptest::collection::vec(0i64..5, 1..5)) {
        let db = database();
        let key = SignerKey::generate("plant-7").unwrap();
        let mut receipt: Option<BatchReceipt> = None;
        let mut received = Vec::new();
        for n in writes {
            write_events(&db, n);
            let after = receipt.as_ref().map_or(0, |r| r.size);
            let verified = verify(&batch(&db, &key, after), &key, receipt.as_ref()).unwrap();
            received.extend(verified.events.iter().map(|e| e.seq));
            receipt = Some(verified.receipt);
        }
        let size = db.audit_root().0;
        prop_assert_eq!(received, (1..=size).collect::<Vec<_>>());
    }
}

#[test]
fn the_writer_refuses_to_sign_a_changed_ledger() {
    use heliosdb_engine::audit::AuditEvent;
    use heliosdb_engine::backend::{Durability, WriteBatch};
    let db = database();
    let key = SignerKey::generate("plant-7").unwrap();
    write_events(&db, 2);
    let anchor = verify(&batch(&db, &key, 0), &key, None).unwrap().receipt;
    write_events(&db, 2);
    // Someone with write access changes the user of the next event in place.
    let seq = anchor.size + 1;
    let key_bytes = seq.to_be_bytes();
    let stored = db
        .backend()
        .snapshot()
        .unwrap()
        .get("audit", &key_bytes)
        .unwrap()
        .unwrap();
    let (canonical, chain) = stored.split_at(stored.len() - 32);
    let mut event = AuditEvent::from_canonical(canonical).unwrap();
    event.user = "mallory".to_owned();
    let mut value = event.canonical();
    value.extend_from_slice(chain);
    let mut write = WriteBatch::new();
    write.put("audit", key_bytes, value);
    db.backend().commit(&write, Durability::Sync).unwrap();
    match write_batch(&db, &key, anchor.size, Vec::new()) {
        Err(BatchError::Refused { what }) => assert!(what.contains("does not verify"), "{what}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}
