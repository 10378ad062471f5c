//! `__audit_checkpoints`: the checkpoints a signer hands back are checked against the
//! ledger, kept in the database, queryable with SQL and never writable by it; sinks record
//! SYSTEM events through the same way back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{assert_exit, heliosdb, insert_rows, path, stdout};
use heliosdb_lite::checkpoint::{Checkpoint, CheckpointSink, Note, SignerKey};
use heliosdb_lite::engine::audit::{
    AuditSink, Hash, SealedEvent, SinkContext, SinkError, SinkRecorder, StoredCheckpoint,
};
use heliosdb_lite::{AppEvent, Database, Error, SessionInfo};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn stored(db: &Database, key: &SignerKey, size: u64, root: Hash) -> StoredCheckpoint {
    let checkpoint = Checkpoint::new(&db.database_id(), size, root);
    let note = checkpoint.sign(key).expect("sign");
    checkpoint.to_stored(key, &note, 1_700_000_000_000_000)
}

#[test]
fn the_sink_keeps_every_checkpoint_it_signs_in_the_table() {
    let dir = tempfile::tempdir().expect("dir");
    let key = SignerKey::generate("table-test").expect("key");
    let file = dir.path().join("checkpoints.txt");
    {
        let db = Database::open(dir.path().join("db")).expect("open");
        db.attach_sink(Box::new(CheckpointSink::new(
            key.clone(),
            &file,
            4,
            Duration::from_secs(3600),
        )))
        .expect("attach");
        insert_rows(&db, 8); // CREATE, COUNT and 8 INSERTs: 10 events
    }
    let db = Database::open(dir.path().join("db")).expect("reopen");
    let list = db.checkpoints().expect("checkpoints");
    let sizes: Vec<u64> = list.iter().map(|c| c.size).collect();
    assert_eq!(sizes, [4, 8, 10], "every 4 events, then on close");

    // Each stored note is the one in the file, signed by the key, with the ledger's root.
    let text = std::fs::read_to_string(&file).expect("file");
    for c in &list {
        assert!(
            text.contains(&c.note),
            "note of size {} is in the file",
            c.size
        );
        let opened = Checkpoint::open(&c.note, &key.verifier()).expect("verifies");
        assert_eq!((opened.size, opened.root), (c.size, c.root));
        assert_eq!(c.root, db.audit_root_at(c.size).expect("root"));
        assert_eq!(c.key_name, "table-test");
        assert_eq!(c.key_id, format!("{:08x}", key.id()));
    }

    // And SQL sees the same.
    let mut s = db.session(SessionInfo::new("auditor"));
    let rows = s
        .query(
            "SELECT size, root, key_name, origin FROM __audit_checkpoints WHERE size >= 8 ORDER BY size DESC",
            &[],
        )
        .expect("query");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows.get::<i64>(0, "size").expect("size"), 10);
    assert_eq!(rows.get::<i64>(1, "size").expect("size"), 8);
    let root: String = rows.get(0, "root").expect("root");
    assert_eq!(root, hex(&list[2].root));
    let origin: String = rows.get(0, "origin").expect("origin");
    assert_eq!(origin, format!("heliosdb/{}", hex(&db.database_id())));
    let latest = db.latest_checkpoint().expect("latest").expect("one");
    assert_eq!(latest.size, 10);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn sql_cannot_write_the_checkpoint_table_and_the_attempt_is_recorded() {
    let db = Database::in_memory().expect("open");
    insert_rows(&db, 2);
    let key = SignerKey::generate("k").expect("key");
    let (size, root) = db.audit_root();
    assert!(
        db.record_checkpoint(&stored(&db, &key, size, root))
            .expect("store")
    );
    let mut s = db.session(SessionInfo::new("mallory"));
    for statement in [
        "DELETE FROM __audit_checkpoints",
        "UPDATE __audit_checkpoints SET size = 1",
        "INSERT INTO __audit_checkpoints VALUES (1, 'r', NOW(), 'o', 'k', 'i', 'n')",
        "DROP TABLE __audit_checkpoints",
        "CREATE TABLE __audit_checkpoints (id INTEGER)",
    ] {
        let error = s.execute(statement, &[]).expect_err(statement);
        assert!(
            matches!(&error, Error::AuditLogReadOnly { table, .. } if table == "__audit_checkpoints"),
            "{statement}: {error}"
        );
        assert!(
            error
                .to_string()
                .contains("__audit_checkpoints is read-only")
        );
    }
    assert_eq!(db.checkpoints().expect("list").len(), 1, "still there");
    let mut auditor = db.session(SessionInfo::new("auditor"));
    let rows = auditor
        .query(
            "SELECT operation, success FROM __audit_log WHERE user = 'mallory'",
            &[],
        )
        .expect("query");
    assert_eq!(rows.len(), 5, "every attempt is in the log");
    for i in 0..rows.len() {
        assert!(!rows.get::<bool>(i, "success").expect("success"));
    }
}

#[test]
fn checkpoints_that_do_not_describe_the_ledger_are_refused() {
    let db = Database::in_memory().expect("open");
    insert_rows(&db, 5); // CREATE, COUNT and 5 INSERTs: 7 events
    let key = SignerKey::generate("k").expect("key");
    let root_4 = db.audit_root_at(4).expect("root");

    let mut wrong_root = stored(&db, &key, 4, root_4);
    wrong_root.root[0] ^= 1;
    let error = db.record_checkpoint(&wrong_root).expect_err("wrong root");
    assert!(matches!(error, Error::CheckpointRefused(_)), "{error}");
    assert!(error.to_string().contains("root"), "{error}");

    let beyond = stored(&db, &key, 8, root_4);
    let error = db
        .record_checkpoint(&beyond)
        .expect_err("beyond the ledger");
    assert!(error.to_string().contains("the ledger holds 7"), "{error}");

    let other = Database::in_memory().expect("other");
    insert_rows(&other, 5);
    let foreign = stored(&other, &key, 4, other.audit_root_at(4).expect("root"));
    let error = db.record_checkpoint(&foreign).expect_err("other database");
    assert!(error.to_string().contains("origin"), "{error}");
    assert!(db.checkpoints().expect("list").is_empty());

    // A good one is kept once; a second of the same size does not replace it.
    let good = stored(&db, &key, 4, root_4);
    assert!(db.record_checkpoint(&good).expect("good"));
    let other_key = SignerKey::generate("k2").expect("key");
    assert!(
        !db.record_checkpoint(&stored(&db, &other_key, 4, root_4))
            .expect("same size")
    );
    assert_eq!(db.checkpoints().expect("list"), [good]);
}

#[test]
fn the_checkpoint_command_stores_what_it_signs() {
    let dir = tempfile::tempdir().expect("dir");
    let db_dir = dir.path().join("db");
    {
        let db = Database::open(&db_dir).expect("open");
        insert_rows(&db, 3);
    }
    let prefix = dir.path().join("keys/ops");
    assert_exit(
        &heliosdb(&["keygen", "--name", "ops", "--out", path(&prefix)]),
        0,
    );
    let key_file = dir.path().join("keys/ops.key");
    let out = dir.path().join("cp.txt");
    assert_exit(
        &heliosdb(&[
            "--db",
            path(&db_dir),
            "checkpoint",
            "--key",
            path(&key_file),
            "--out",
            path(&out),
        ]),
        0,
    );
    let output = heliosdb(&[
        "--db",
        path(&db_dir),
        "sql",
        "SELECT size, key_name FROM __audit_checkpoints",
    ]);
    assert_exit(&output, 0);
    let text = stdout(&output);
    assert!(text.contains("ops"), "{text}");
    let db = Database::open(&db_dir).expect("reopen");
    let list = db.checkpoints().expect("list");
    assert_eq!(list.len(), 1);
    assert_eq!(
        std::fs::read_to_string(&out).expect("file").trim_end(),
        list[0].note.trim_end()
    );
    Note::parse(&list[0].note).expect("a signed note");
}

/// A user's sink that records a SYSTEM event for every event whose operation is `BAD`.
struct Flagger {
    recorder: Option<SinkRecorder>,
    flagged: Arc<Mutex<Vec<u64>>>,
}

impl AuditSink for Flagger {
    fn name(&self) -> &str {
        "flagger"
    }

    fn resume_after(&mut self, context: &SinkContext) -> Result<u64, SinkError> {
        self.recorder = Some(context.recorder.clone());
        Ok(0)
    }

    fn deliver(&mut self, _prev: &Hash, events: &[SealedEvent]) -> Result<(), SinkError> {
        let recorder = self.recorder.as_ref().ok_or("not started")?;
        for sealed in events.iter().filter(|e| e.event.operation == "BAD") {
            let mut event = AppEvent::new("sink_quarantine");
            event.targets = vec![format!("seq {}", sealed.event.seq)];
            event.detail = "flagged by the test sink".to_owned();
            event.success = false;
            let seq = recorder.record_system_event(event)?;
            self.flagged.lock().expect("lock").push(seq);
        }
        Ok(())
    }
}

#[test]
fn a_sink_records_system_events_through_its_recorder() {
    let db = Database::in_memory().expect("open");
    let flagged = Arc::new(Mutex::new(Vec::new()));
    db.attach_sink(Box::new(Flagger {
        recorder: None,
        flagged: Arc::clone(&flagged),
    }))
    .expect("attach");
    let mut s = db.session(SessionInfo::new("app"));
    s.record_event(AppEvent::new("good")).expect("event");
    s.record_event(AppEvent::new("bad")).expect("event");
    let deadline = Instant::now() + Duration::from_secs(30);
    while flagged.lock().expect("lock").is_empty() {
        assert!(Instant::now() < deadline, "the sink never recorded");
        std::thread::sleep(Duration::from_millis(10));
    }
    let seq = flagged.lock().expect("lock")[0];
    assert_eq!(seq, 3);
    let rows = s
        .query(
            "SELECT class, operation, user, target, success FROM __audit_log WHERE id = 3",
            &[],
        )
        .expect("query");
    assert_eq!(rows.get::<String>(0, "class").expect("class"), "SYSTEM");
    assert_eq!(
        rows.get::<String>(0, "operation").expect("op"),
        "SINK_QUARANTINE"
    );
    assert_eq!(rows.get::<String>(0, "user").expect("user"), "heliosdb");
    assert_eq!(rows.get::<String>(0, "target").expect("target"), "seq 2");
    assert!(!rows.get::<bool>(0, "success").expect("success"));
    assert!(db.verify().expect("verify").is_intact());
}
