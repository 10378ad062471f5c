//! A database opened read-only: reads work and are audited; every write, prune, legal hold
//! and erasure is refused with `Error::ReadOnly`, and refused statements are recorded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use heliosdb_lite::engine::audit::prune::PruneBefore;
use heliosdb_lite::engine::audit::redact;
use heliosdb_lite::{Database, Error, SessionInfo, params};

#[test]
fn reads_work_and_every_write_is_refused_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Database::open(dir.path()).unwrap();
        let mut s = db.session(SessionInfo::new("service"));
        s.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)", &[])
            .unwrap();
        s.execute("INSERT INTO t VALUES (1, 'a'), (2, 'b')", &[])
            .unwrap();
    }
    let db = Database::builder()
        .path(dir.path())
        .read_only()
        .open()
        .unwrap();
    let before = db.audit_head().seq;
    let mut s = db.session(SessionInfo::new("auditor"));
    let rows = s.query("SELECT id FROM t ORDER BY id", &[]).unwrap();
    assert_eq!(rows.len(), 2);
    s.execute("BEGIN", &[]).unwrap();
    s.query("SELECT COUNT(*) FROM __audit_log", &[]).unwrap();
    s.execute("COMMIT", &[]).unwrap();

    for sql in [
        "INSERT INTO t VALUES (3, 'c')",
        "UPDATE t SET v = 'x'",
        "DELETE FROM t",
        "CREATE TABLE u (id INTEGER)",
        "DROP TABLE t",
        "CREATE INDEX t_v ON t (v)",
    ] {
        match s.execute(sql, &[]) {
            Err(Error::ReadOnly(message)) => assert!(message.contains("not allowed"), "{message}"),
            other => panic!("{sql}: expected a read-only refusal, got {other:?}"),
        }
    }
    assert!(matches!(
        s.execute("INSERT INTO t VALUES ($1, $2)", &params![9, "z"]),
        Err(Error::ReadOnly(_))
    ));
    assert!(matches!(
        db.prune_before(PruneBefore::Seq(2), false),
        Err(Error::ReadOnly(_))
    ));
    assert!(
        db.prune_before(PruneBefore::Seq(2), true).is_ok(),
        "a dry run only reads"
    );
    assert!(matches!(
        db.set_legal_hold(Some("case 1"), "auditor"),
        Err(Error::ReadOnly(_))
    ));
    assert!(matches!(
        redact::forget_subject(&db, "someone", "auditor"),
        Err(Error::ReadOnly(_))
    ));

    // Nothing changed; the reads and the refused attempts are on record.
    let rows = s.query("SELECT id, v FROM t ORDER BY id", &[]).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows.get::<String>(0, "v").unwrap(), "a");
    let log = s
        .query(
            "SELECT operation, success, error FROM __audit_log WHERE id > $1 AND user = 'auditor' ORDER BY id",
            &params![before as i64],
        )
        .unwrap();
    let refused: Vec<String> = (0..log.len())
        .filter(|&i| !log.get::<bool>(i, "success").unwrap())
        .map(|i| log.get::<String>(i, "operation").unwrap())
        .collect();
    assert_eq!(
        refused,
        [
            "INSERT",
            "UPDATE",
            "DELETE",
            "CREATE_TABLE",
            "DROP_TABLE",
            "CREATE_INDEX",
            "INSERT"
        ]
    );
    assert!(
        log.get::<String>(log.len() - 2, "error")
            .unwrap()
            .contains("read-only")
    );
    assert!(db.verify().unwrap().is_intact());
}

#[test]
fn a_missing_database_is_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    match Database::builder().path(&missing).read_only().open() {
        Err(Error::ReadOnly(message)) => assert!(message.contains("no database"), "{message}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(!missing.exists());
}
