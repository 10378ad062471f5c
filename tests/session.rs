//! The `Database` / `Session` API on every backend: transactions, isolation, concurrency,
//! bound parameters and the errors users see for bad input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use heliosdb_lite::engine::{Durability, StorageBackend, WriteBatch};
use heliosdb_lite::{
    Database, DurabilityMode, Error, FjallBackend, MemoryBackend, Output, SessionInfo, Value,
    params,
};
use std::sync::Arc;
use std::time::Duration;

/// Opens a fresh database on the backend under test and hands out its raw backend, so
/// tests can bypass SQL.
trait Harness {
    fn open() -> (Database, Arc<dyn StorageBackend>, Option<tempfile::TempDir>);
}

struct Memory;
impl Harness for Memory {
    fn open() -> (Database, Arc<dyn StorageBackend>, Option<tempfile::TempDir>) {
        let backend: Arc<dyn StorageBackend> = Arc::new(MemoryBackend::new());
        let db = Database::builder()
            .backend(Arc::clone(&backend))
            .busy_timeout(Duration::from_millis(200))
            .open()
            .expect("open memory");
        (db, backend, None)
    }
}

struct Fjall;
impl Harness for Fjall {
    fn open() -> (Database, Arc<dyn StorageBackend>, Option<tempfile::TempDir>) {
        let dir = tempfile::tempdir().expect("temp dir");
        let backend: Arc<dyn StorageBackend> =
            Arc::new(FjallBackend::open(dir.path()).expect("open fjall"));
        let db = Database::builder()
            .backend(Arc::clone(&backend))
            .busy_timeout(Duration::from_millis(200))
            .open()
            .expect("open fjall db");
        (db, backend, Some(dir))
    }
}

fn count(db: &Database, table: &str) -> i64 {
    let mut s = db.session(SessionInfo::new("counter"));
    s.query(&format!("SELECT COUNT(*) AS n FROM {table}"), &[])
        .expect("count")
        .get::<i64>(0, "n")
        .expect("n")
}

fn setup(db: &Database) {
    let mut s = db.session(SessionInfo::new("setup"));
    s.execute(
        "CREATE TABLE account (id INTEGER PRIMARY KEY, owner TEXT NOT NULL, balance INTEGER, \
         email TEXT UNIQUE)",
        &[],
    )
    .expect("create");
    s.execute(
        "INSERT INTO account VALUES (1, 'ann', 100, 'ann@x'), (2, 'bob', 50, 'bob@x')",
        &[],
    )
    .expect("insert");
}

fn bound_parameters_are_values_not_sql<H: Harness>() {
    let (db, _, _dir) = H::open();
    setup(&db);
    let mut s = db.session(SessionInfo::new("alice"));
    let out = s
        .execute(
            "INSERT INTO account VALUES ($1, $2, $3, $4)",
            &params![3, "x'); DROP TABLE account; --", 7, None::<String>],
        )
        .expect("insert with params");
    assert_eq!(out[0].affected(), Some(1));
    let rows = s
        .query("SELECT owner FROM account WHERE id = $1", &params![3])
        .expect("select");
    assert_eq!(
        rows.get::<String>(0, "owner").expect("owner"),
        "x'); DROP TABLE account; --"
    );
    assert_eq!(count(&db, "account"), 3);

    // Parameters take the column's type as the same literal would.
    s.execute(
        "CREATE TABLE typed (i INTEGER, d DECIMAL, f FLOAT, day DATE, b BOOLEAN, t TEXT)",
        &[],
    )
    .expect("create typed");
    let day = heliosdb_lite::chrono::NaiveDate::from_ymd_opt(2024, 5, 1).expect("date");
    s.execute(
        "INSERT INTO typed VALUES ($1, $2, $3, $4, $5, $6), ($1, $2, $3, $7, $5, NULL)",
        &params![-5, 99, 1.5_f32, "2024-05-01", true, "$2", day],
    )
    .expect("typed insert");
    let rows = s
        .query(
            "SELECT i, d, f, day, b, t FROM typed WHERE i = $1",
            &params![-5],
        )
        .expect("typed select");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows.get::<i64>(0, "i").expect("i"), -5);
    assert_eq!(rows.get::<f64>(0, "f").expect("f"), 1.5);
    assert_eq!(rows.get::<String>(0, "t").expect("t"), "$2");
    assert_eq!(rows.value(0, "day"), rows.value(1, "day"));
    assert_eq!(rows.value(0, "day"), Some(&Value::Date(day)));
    assert_eq!(
        rows.get::<heliosdb_lite::chrono::NaiveDate>(0, "day")
            .expect("date"),
        day
    );
    assert!(
        rows.get::<heliosdb_lite::chrono::NaiveDateTime>(0, "day")
            .is_err()
    );
}

fn explicit_transaction_commit_and_rollback<H: Harness>() {
    let (db, _, _dir) = H::open();
    setup(&db);
    let mut writer = db.session(SessionInfo::new("writer"));
    let mut reader = db.session(SessionInfo::new("reader"));

    writer.execute("BEGIN", &[]).expect("begin");
    assert!(writer.in_transaction());
    writer
        .execute("INSERT INTO account VALUES (3, 'cy', 1, NULL)", &[])
        .expect("insert");
    writer
        .execute(
            "UPDATE account SET balance = balance - 10 WHERE id = 1",
            &[],
        )
        .expect("update");
    // The writer sees its own writes; nobody else does until COMMIT.
    assert_eq!(
        writer
            .query("SELECT COUNT(*) AS n FROM account", &[])
            .expect("own view")
            .get::<i64>(0, "n")
            .expect("n"),
        3
    );
    assert_eq!(
        reader
            .query("SELECT COUNT(*) AS n FROM account", &[])
            .expect("other view")
            .get::<i64>(0, "n")
            .expect("n"),
        2
    );
    writer.execute("ROLLBACK", &[]).expect("rollback");
    assert_eq!(count(&db, "account"), 2);
    let balance = reader
        .query("SELECT balance FROM account WHERE id = 1", &[])
        .expect("balance")
        .get::<i64>(0, "balance")
        .expect("int");
    assert_eq!(balance, 100, "rolled-back update must be gone");

    writer
        .execute(
            "BEGIN; INSERT INTO account VALUES (3, 'cy', 1, NULL); COMMIT",
            &[],
        )
        .expect("commit");
    assert_eq!(count(&db, "account"), 3);
}

fn failed_statement_inside_transaction_is_undone_alone<H: Harness>() {
    let (db, _, _dir) = H::open();
    setup(&db);
    let mut s = db.session(SessionInfo::new("s"));
    s.execute("BEGIN", &[]).expect("begin");
    s.execute("INSERT INTO account VALUES (3, 'cy', 1, NULL)", &[])
        .expect("first insert");
    // Row 4 is fine, row 1 collides: the whole statement is undone, row 3 stays.
    let err = s
        .execute(
            "INSERT INTO account VALUES (4, 'dee', 1, NULL), (1, 'dup', 1, NULL)",
            &[],
        )
        .expect_err("duplicate key");
    assert!(matches!(err, Error::Constraint(_)), "{err:?}");
    assert!(s.in_transaction());
    s.execute("COMMIT", &[]).expect("commit");
    let rows = s
        .query("SELECT id FROM account ORDER BY id", &[])
        .expect("ids");
    let ids: Vec<i64> = (0..rows.len())
        .map(|i| rows.get::<i64>(i, "id").expect("id"))
        .collect();
    assert_eq!(ids, vec![1, 2, 3]);
}

fn dropping_a_session_rolls_back<H: Harness>() {
    let (db, _, _dir) = H::open();
    setup(&db);
    {
        let mut s = db.session(SessionInfo::new("s"));
        s.execute("BEGIN; DELETE FROM account", &[])
            .expect("delete");
    }
    assert_eq!(count(&db, "account"), 2);
    // The write lock was released with the session.
    let mut s = db.session(SessionInfo::new("t"));
    s.execute("DELETE FROM account WHERE id = 2", &[])
        .expect("delete after drop");
    assert_eq!(count(&db, "account"), 1);
}

fn concurrent_sessions_on_many_threads<H: Harness>() {
    let (db, _, _dir) = H::open();
    {
        let mut s = db.session(SessionInfo::new("setup"));
        s.execute(
            "CREATE TABLE hits (id INTEGER PRIMARY KEY, worker INTEGER)",
            &[],
        )
        .expect("create");
        s.execute(
            "CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER)",
            &[],
        )
        .expect("create");
        s.execute("INSERT INTO counter VALUES (1, 0)", &[])
            .expect("seed");
    }
    let threads: Vec<_> = (0..4)
        .map(|worker| {
            let db = db.clone();
            std::thread::spawn(move || {
                let mut s = db.session(SessionInfo::new(format!("worker-{worker}")));
                for i in 0..25 {
                    s.execute(
                        "INSERT INTO hits VALUES ($1, $2)",
                        &params![worker * 1000 + i, worker],
                    )
                    .expect("insert");
                    // Read-modify-write in one autocommit statement: never loses an update.
                    s.execute("UPDATE counter SET n = n + 1 WHERE id = 1", &[])
                        .expect("update");
                    let _ = s
                        .query("SELECT COUNT(*) FROM hits", &[])
                        .expect("concurrent read");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    assert_eq!(count(&db, "hits"), 100);
    let mut s = db.session(SessionInfo::new("check"));
    let n = s
        .query("SELECT n FROM counter WHERE id = 1", &[])
        .expect("counter")
        .get::<i64>(0, "n")
        .expect("n");
    assert_eq!(n, 100, "lost updates");
}

fn conflicting_transactions_fail_instead_of_losing_updates<H: Harness>() {
    let (db, _, _dir) = H::open();
    setup(&db);
    let mut a = db.session(SessionInfo::new("a"));
    let mut b = db.session(SessionInfo::new("b"));
    a.execute("BEGIN", &[]).expect("a begin");
    let _ = a
        .query("SELECT balance FROM account WHERE id = 1", &[])
        .expect("a reads");
    // b commits after a took its snapshot.
    b.execute("UPDATE account SET balance = 0 WHERE id = 1", &[])
        .expect("b writes");
    let err = a
        .execute("UPDATE account SET balance = 999 WHERE id = 1", &[])
        .expect_err("a must not overwrite b blindly");
    assert!(matches!(err, Error::Conflict), "{err:?}");
    a.execute("ROLLBACK", &[]).expect("rollback");

    // A writer blocked by an open write transaction times out with Busy.
    a.execute("BEGIN; UPDATE account SET balance = 1 WHERE id = 2", &[])
        .expect("a holds the lock");
    let err = b
        .execute("UPDATE account SET balance = 2 WHERE id = 2", &[])
        .expect_err("busy");
    assert!(matches!(err, Error::Busy { .. }), "{err:?}");
    a.execute("COMMIT", &[]).expect("commit");
    b.execute("UPDATE account SET balance = 2 WHERE id = 2", &[])
        .expect("free again");
}

fn bad_input_gets_typed_errors_and_writes_nothing<H: Harness>() {
    let (db, _, _dir) = H::open();
    setup(&db);
    let mut s = db.session(SessionInfo::new("s"));
    let cases: &[(&str, &str)] = &[
        ("SELEC * FROM account", "sql"),
        ("SELECT * FROM nowhere", "sql"),
        (
            "INSERT INTO account VALUES ('not a number', 'x', 1, NULL)",
            "sql",
        ),
        (
            "INSERT INTO account VALUES (1, 'dup', 1, NULL)",
            "constraint",
        ),
        (
            "INSERT INTO account VALUES (9, 'dup', 1, 'ann@x')",
            "constraint",
        ),
        (
            "INSERT INTO account VALUES (9, NULL, 1, NULL)",
            "constraint",
        ),
        ("COMMIT; BEGIN; BEGIN", "transaction"),
    ];
    for (sql, kind) in cases {
        let err = s.execute(sql, &[]).expect_err(sql);
        assert_eq!(err.kind(), *kind, "{sql}: {err}");
        assert!(!err.to_string().is_empty());
        let _ = s.execute("ROLLBACK", &[]);
    }
    let err = s
        .execute("SELECT * FROM nowhere", &[])
        .expect_err("unknown table");
    assert!(err.to_string().contains("nowhere"), "{err}");
    assert_eq!(count(&db, "account"), 2);
}

fn corrupt_rows_are_reported_not_panicked<H: Harness>() {
    let (db, backend, _dir) = H::open();
    setup(&db);
    // Overwrite every stored row with garbage, bypassing SQL.
    let snapshot = backend.snapshot().expect("snapshot");
    let keys: Vec<Vec<u8>> = snapshot
        .prefix("rows", &[], heliosdb_lite::engine::Direction::Forward)
        .expect("scan")
        .map(|kv| kv.expect("kv").0)
        .collect();
    assert!(!keys.is_empty());
    let mut batch = WriteBatch::new();
    for key in keys {
        batch.put("rows", key, vec![0xEE, 0x01]);
    }
    backend.commit(&batch, Durability::Sync).expect("tamper");
    let mut s = db.session(SessionInfo::new("s"));
    let err = s
        .query("SELECT * FROM account", &[])
        .expect_err("corrupt row");
    assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("rows"), "{err}");
}

fn secondary_indexes_are_used_and_maintained<H: Harness>() {
    let (db, _, _dir) = H::open();
    let mut s = db.session(SessionInfo::new("s"));
    s.execute(
        "CREATE TABLE reading (id INTEGER PRIMARY KEY, sensor TEXT, value FLOAT)",
        &[],
    )
    .expect("create");
    s.execute("CREATE INDEX reading_sensor ON reading (sensor)", &[])
        .expect("index");
    for i in 0..50 {
        s.execute(
            "INSERT INTO reading VALUES ($1, $2, $3)",
            &params![i, format!("s{}", i % 5), f64::from(i) / 2.0],
        )
        .expect("insert");
    }
    s.execute("UPDATE reading SET sensor = 'moved' WHERE id < 10", &[])
        .expect("update");
    s.execute("DELETE FROM reading WHERE id >= 45", &[])
        .expect("delete");
    let n = |s: &mut heliosdb_lite::Session, sensor: &str| {
        s.query(
            "SELECT COUNT(*) AS n FROM reading WHERE sensor = $1",
            &params![sensor.to_owned()],
        )
        .expect("count")
        .get::<i64>(0, "n")
        .expect("n")
    };
    assert_eq!(n(&mut s, "moved"), 10);
    assert_eq!(n(&mut s, "s0"), 7); // 10..45 step 5 -> 10,15,...,40
    assert_eq!(n(&mut s, "nope"), 0);
    let rows = s
        .query(
            "SELECT id FROM reading WHERE sensor = 's1' ORDER BY id DESC",
            &[],
        )
        .expect("ordered");
    assert_eq!(rows.get::<i64>(0, "id").expect("id"), 41);
    let out = s.execute("DROP TABLE reading", &[]).expect("drop");
    assert!(matches!(out[0], Output::Affected { .. }));
}

/// One `#[test]` per check and backend.
macro_rules! suites {
    ($($test:ident),* $(,)?) => {
        mod memory {
            $( #[test] fn $test() { super::$test::<super::Memory>(); } )*
        }
        mod fjall {
            $( #[test] fn $test() { super::$test::<super::Fjall>(); } )*
        }
    };
}

suites!(
    bound_parameters_are_values_not_sql,
    explicit_transaction_commit_and_rollback,
    failed_statement_inside_transaction_is_undone_alone,
    dropping_a_session_rolls_back,
    concurrent_sessions_on_many_threads,
    conflicting_transactions_fail_instead_of_losing_updates,
    bad_input_gets_typed_errors_and_writes_nothing,
    corrupt_rows_are_reported_not_panicked,
    secondary_indexes_are_used_and_maintained,
);

#[test]
fn fjall_data_survives_reopen_and_second_open_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    {
        let db = Database::builder()
            .path(dir.path())
            .durability(DurabilityMode::Sync)
            .open()
            .expect("open");
        setup(&db);
        let err = Database::open(dir.path()).expect_err("second open");
        assert!(
            err.to_string().contains(&dir.path().display().to_string()),
            "{err}"
        );
    }
    let db = Database::open(dir.path()).expect("reopen");
    assert_eq!(count(&db, "account"), 2);
    let mut s = db.session(SessionInfo::new("s"));
    let rows = s
        .query("SELECT owner FROM account WHERE id = 2", &[])
        .expect("select");
    assert_eq!(rows.value(0, "owner"), Some(&Value::Str("bob".into())));
}

#[test]
fn opening_a_file_or_unwritable_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"not a database").expect("write");
    let err = Database::open(&file).expect_err("file is not a database");
    assert!(err.to_string().contains("plain-file"), "{err}");
}
