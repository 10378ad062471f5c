//! The contracts every [`StorageBackend`] owes, run by each backend crate through
//! [`backend_suite!`](crate::backend_suite): storage conformance, GlueSQL's acceptance
//! suite, the audit contract and fail closed (and durability for a persistent backend).
//!
//! Each check takes a fresh, empty backend and panics on the first violation (they are test
//! code).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use crate::backend::{Direction, Durability, StorageBackend, StorageError, WriteBatch};
use std::ops::Bound;

fn collect(
    backend: &dyn StorageBackend,
    keyspace: &str,
    lower: Bound<&[u8]>,
    upper: Bound<&[u8]>,
    direction: Direction,
) -> Vec<Vec<u8>> {
    let snapshot = backend.snapshot().unwrap();
    snapshot
        .range(keyspace, lower, upper, direction)
        .unwrap()
        .map(|kv| kv.unwrap().0)
        .collect()
}

fn put_all(backend: &dyn StorageBackend, keyspace: &str, keys: &[&[u8]]) {
    let mut batch = WriteBatch::new();
    for key in keys {
        batch.put(keyspace, key.to_vec(), [b"v:", *key].concat());
    }
    backend.commit(&batch, Durability::Buffered).unwrap();
}

pub fn put_get_overwrite_delete(backend: &dyn StorageBackend) {
    backend.ensure_keyspace("ks").unwrap();
    put_all(backend, "ks", &[b"a", b"b"]);
    let snap = backend.snapshot().unwrap();
    assert_eq!(snap.get("ks", b"a").unwrap(), Some(b"v:a".to_vec()));
    assert_eq!(snap.get("ks", b"zz").unwrap(), None);

    let mut batch = WriteBatch::new();
    batch.put("ks", b"a".to_vec(), b"new".to_vec());
    batch.delete("ks", b"b".to_vec());
    batch.delete("ks", b"never-existed".to_vec());
    backend.commit(&batch, Durability::Sync).unwrap();
    let snap = backend.snapshot().unwrap();
    assert_eq!(snap.get("ks", b"a").unwrap(), Some(b"new".to_vec()));
    assert_eq!(snap.get("ks", b"b").unwrap(), None);
}

pub fn later_operation_on_same_key_wins(backend: &dyn StorageBackend) {
    backend.ensure_keyspace("ks").unwrap();
    let mut batch = WriteBatch::new();
    batch.put("ks", b"k".to_vec(), b"1".to_vec());
    batch.put("ks", b"k".to_vec(), b"2".to_vec());
    batch.put("ks", b"gone".to_vec(), b"x".to_vec());
    batch.delete("ks", b"gone".to_vec());
    backend.commit(&batch, Durability::Buffered).unwrap();
    let snap = backend.snapshot().unwrap();
    assert_eq!(snap.get("ks", b"k").unwrap(), Some(b"2".to_vec()));
    assert_eq!(snap.get("ks", b"gone").unwrap(), None);
}

pub fn ranges_honour_bounds_and_direction(backend: &dyn StorageBackend) {
    backend.ensure_keyspace("ks").unwrap();
    put_all(backend, "ks", &[b"a", b"b", b"c", b"d"]);
    let k = |keys: &[&[u8]]| keys.iter().map(|k| k.to_vec()).collect::<Vec<_>>();
    use Bound::{Excluded, Included, Unbounded};
    use Direction::{Forward, Reverse};
    let all = collect(backend, "ks", Unbounded, Unbounded, Forward);
    assert_eq!(all, k(&[b"a", b"b", b"c", b"d"]));
    assert_eq!(
        collect(backend, "ks", Unbounded, Unbounded, Reverse),
        k(&[b"d", b"c", b"b", b"a"])
    );
    assert_eq!(
        collect(backend, "ks", Included(b"b"), Included(b"c"), Forward),
        k(&[b"b", b"c"])
    );
    assert_eq!(
        collect(backend, "ks", Excluded(b"b"), Excluded(b"d"), Forward),
        k(&[b"c"])
    );
    assert_eq!(
        collect(backend, "ks", Excluded(b"a"), Unbounded, Reverse),
        k(&[b"d", b"c", b"b"])
    );
    assert_eq!(
        collect(backend, "ks", Unbounded, Excluded(b"c"), Reverse),
        k(&[b"b", b"a"])
    );
    // Empty and inverted ranges yield nothing rather than failing.
    assert!(collect(backend, "ks", Included(b"c"), Excluded(b"c"), Forward).is_empty());
    assert!(collect(backend, "ks", Included(b"d"), Included(b"a"), Forward).is_empty());
}

pub fn prefix_scans_include_ff_edges(backend: &dyn StorageBackend) {
    backend.ensure_keyspace("ks").unwrap();
    put_all(
        backend,
        "ks",
        &[
            b"p",
            b"p\x00",
            b"p\xff",
            b"p\xff\xff",
            b"q",
            b"\xff",
            b"\xff\x01",
        ],
    );
    let snap = backend.snapshot().unwrap();
    let scan = |prefix: &[u8], direction| {
        snap.prefix("ks", prefix, direction)
            .unwrap()
            .map(|kv| kv.unwrap().0)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        scan(b"p", Direction::Forward),
        vec![
            b"p".to_vec(),
            b"p\x00".to_vec(),
            b"p\xff".to_vec(),
            b"p\xff\xff".to_vec()
        ]
    );
    assert_eq!(
        scan(b"p\xff", Direction::Reverse),
        vec![b"p\xff\xff".to_vec(), b"p\xff".to_vec()]
    );
    assert_eq!(
        scan(b"\xff", Direction::Forward),
        vec![b"\xff".to_vec(), b"\xff\x01".to_vec()]
    );
    assert_eq!(scan(b"", Direction::Forward).len(), 7);
}

pub fn snapshots_are_isolated_from_later_commits(backend: &dyn StorageBackend) {
    backend.ensure_keyspace("ks").unwrap();
    put_all(backend, "ks", &[b"a"]);
    let before = backend.snapshot().unwrap();
    let mut batch = WriteBatch::new();
    batch.put("ks", b"b".to_vec(), b"x".to_vec());
    batch.delete("ks", b"a".to_vec());
    backend.commit(&batch, Durability::Buffered).unwrap();
    assert_eq!(before.get("ks", b"a").unwrap(), Some(b"v:a".to_vec()));
    assert_eq!(before.get("ks", b"b").unwrap(), None);
    let keys: Vec<_> = before
        .range("ks", Bound::Unbounded, Bound::Unbounded, Direction::Forward)
        .unwrap()
        .map(|kv| kv.unwrap().0)
        .collect();
    assert_eq!(keys, vec![b"a".to_vec()]);
    let after = backend.snapshot().unwrap();
    assert_eq!(after.get("ks", b"a").unwrap(), None);
    assert_eq!(after.get("ks", b"b").unwrap(), Some(b"x".to_vec()));
}

pub fn batches_are_atomic_across_keyspaces(backend: &dyn StorageBackend) {
    backend.ensure_keyspace("data").unwrap();
    backend.ensure_keyspace("audit").unwrap();
    let mut batch = WriteBatch::new();
    batch.put("data", b"row".to_vec(), b"1".to_vec());
    batch.put("audit", b"event".to_vec(), b"1".to_vec());
    backend.commit(&batch, Durability::Sync).unwrap();
    let snap = backend.snapshot().unwrap();
    assert!(snap.get("data", b"row").unwrap().is_some());
    assert!(snap.get("audit", b"event").unwrap().is_some());
}

pub fn failed_batches_apply_nothing(backend: &dyn StorageBackend) {
    backend.ensure_keyspace("ks").unwrap();
    let mut batch = WriteBatch::new();
    batch.put("ks", b"first".to_vec(), b"1".to_vec());
    batch.put("missing", b"k".to_vec(), b"1".to_vec());
    let err = backend.commit(&batch, Durability::Buffered).unwrap_err();
    assert!(
        matches!(err, StorageError::UnknownKeyspace { ref name } if name == "missing"),
        "{err:?}"
    );

    let mut batch = WriteBatch::new();
    batch.put("ks", b"second".to_vec(), b"1".to_vec());
    batch.put(
        "ks",
        vec![7u8; crate::backend::MAX_KEY_LEN + 1],
        b"1".to_vec(),
    );
    let err = backend.commit(&batch, Durability::Buffered).unwrap_err();
    assert!(matches!(err, StorageError::KeyTooLarge { .. }), "{err:?}");

    let mut batch = WriteBatch::new();
    batch.put("ks", Vec::new(), b"1".to_vec());
    assert!(backend.commit(&batch, Durability::Buffered).is_err());

    let snap = backend.snapshot().unwrap();
    assert_eq!(snap.get("ks", b"first").unwrap(), None);
    assert_eq!(snap.get("ks", b"second").unwrap(), None);
}

pub fn keyspaces_are_listed_and_validated(backend: &dyn StorageBackend) {
    backend.ensure_keyspace("beta").unwrap();
    backend.ensure_keyspace("alpha").unwrap();
    backend.ensure_keyspace("alpha").unwrap(); // idempotent
    let names = backend.keyspaces().unwrap();
    assert!(names.windows(2).all(|w| w[0] < w[1]), "{names:?}");
    assert!(names.contains(&"alpha".to_owned()) && names.contains(&"beta".to_owned()));
    for bad in ["", "has space", "slash/y", &"x".repeat(300)] {
        assert!(
            matches!(
                backend.ensure_keyspace(bad),
                Err(StorageError::InvalidKeyspaceName { .. })
            ),
            "{bad:?} accepted"
        );
    }
    let snap = backend.snapshot().unwrap();
    assert!(matches!(
        snap.get("nope", b"k"),
        Err(StorageError::UnknownKeyspace { .. })
    ));
}

pub fn persist_succeeds(backend: &dyn StorageBackend) {
    backend.ensure_keyspace("ks").unwrap();
    put_all(backend, "ks", &[b"a"]);
    backend.persist().unwrap();
}

pub fn side_records_round_trip(backend: &dyn StorageBackend) {
    assert_eq!(backend.side_record("refused-commit").unwrap(), None);
    backend.put_side_record("refused-commit", b"first").unwrap();
    backend
        .put_side_record("refused-commit", b"second")
        .unwrap();
    backend.put_side_record("other", b"x").unwrap();
    assert_eq!(
        backend.side_record("refused-commit").unwrap().as_deref(),
        Some(&b"second"[..])
    );
    backend.remove_side_record("refused-commit").unwrap();
    backend.remove_side_record("refused-commit").unwrap(); // absent: no error
    assert_eq!(backend.side_record("refused-commit").unwrap(), None);
    assert_eq!(
        backend.side_record("other").unwrap().as_deref(),
        Some(&b"x"[..])
    );
    for bad in ["", "Upper", "../escape", "a/b", &"x".repeat(65)] {
        assert!(
            backend.put_side_record(bad, b"x").is_err(),
            "{bad:?} accepted"
        );
        assert!(backend.side_record(bad).is_err(), "{bad:?} read");
    }
    // Side records are not keyspaces and stay out of every snapshot.
    assert!(!backend.keyspaces().unwrap().iter().any(|k| k == "other"));
}

/// Opens storage in a directory: a backend suite's way to get a fresh backend (a new
/// directory) and, for a persistent backend, the same one again (the same directory).
pub type Open = fn(&std::path::Path) -> std::sync::Arc<dyn StorageBackend>;

/// A database on `backend` with default options.
fn database(backend: std::sync::Arc<dyn StorageBackend>) -> crate::Database {
    crate::Database::with_backend(backend, crate::DatabaseOptions::default()).unwrap()
}

fn count(db: &crate::Database, sql: &str) -> i64 {
    db.session(crate::SessionInfo::new("suite"))
        .query_row::<(i64,)>(sql, &[])
        .unwrap()
        .0
}

/// The audit contract on this backend: statements become events sealed with their data,
/// a failed one is recorded, the trail verifies and cannot be changed through SQL.
pub fn audited_statements_seal_and_verify(open: Open, dir: &std::path::Path) {
    let db = database(open(dir));
    let mut s = db.session(crate::SessionInfo::new("suite"));
    s.execute_batch(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);
         INSERT INTO t VALUES (1, 'a');
         UPDATE t SET v = 'b' WHERE id = 1;
         DELETE FROM t WHERE id = 1;",
    )
    .unwrap();
    assert!(s.execute("INSERT INTO nope VALUES (1)", &[]).is_err());
    assert!(s.execute("DELETE FROM __audit_log", &[]).is_err());
    let report = db.verify().unwrap();
    assert!(report.is_intact(), "{:?}", report.problem);
    assert_eq!(report.events_checked, 6);
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM __audit_log WHERE success = false"
        ),
        2
    );
}

/// Fail closed on this backend: a commit reported failed but written anyway (torn) is
/// undone when the database is opened again, and the open records it.
pub fn a_torn_commit_is_undone_at_the_next_open(
    open: Open,
    dir: &std::path::Path,
    persistent: bool,
) {
    use crate::backend::fault::{Fault, FaultError, FaultKind, FaultPoint, FaultyBackend};
    use std::sync::Arc;
    let inner = open(dir);
    let faulty = Arc::new(FaultyBackend::new(Arc::clone(&inner)));
    let db = database(Arc::clone(&faulty) as Arc<dyn StorageBackend>);
    let mut s = db.session(crate::SessionInfo::new("suite"));
    s.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)", &[])
        .unwrap();
    faulty.arm(Fault {
        point: FaultPoint::Commit,
        nth: 0,
        kind: FaultKind::Tear,
        error: FaultError::NoSpace,
    });
    assert!(s.execute("INSERT INTO t VALUES (1)", &[]).is_err());
    assert!(db.is_poisoned());
    drop((s, db, faulty));
    let inner = if persistent {
        drop(inner);
        open(dir)
    } else {
        inner
    };
    let db = database(inner);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM t"), 0);
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM __audit_log WHERE operation = 'REFUSED_COMMIT'"
        ),
        1
    );
    assert!(db.verify().unwrap().is_intact());
}

/// Durability on a persistent backend: what was committed is there after a reopen,
/// audit trail included.
pub fn commits_survive_a_reopen(open: Open, dir: &std::path::Path) {
    {
        let db = database(open(dir));
        let mut s = db.session(crate::SessionInfo::new("suite"));
        s.execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY); INSERT INTO t VALUES (1); INSERT INTO t VALUES (2);",
        )
        .unwrap();
    }
    let db = database(open(dir));
    assert_eq!(count(&db, "SELECT COUNT(*) FROM t"), 2);
    assert!(db.verify().unwrap().is_intact());
}

/// `index/null.sql` of GlueSQL's suite expects `WHERE date >= DATE '2040-12-24'` and
/// `WHERE id > 2` to return rows whose column is NULL when an index serves the query. SQL
/// says a comparison with NULL is never true, and without an index GlueSQL itself returns
/// no NULL rows, so an index would change the answer. The suite runs the fixture with the
/// answer SQL (and the unindexed plan) gives (`docs/COMPATIBILITY.md`).
pub const NULL_FIXTURE_FIXES: &[(&str, &str)] = &[
    (
        "SELECT id, date, flag FROM NullIdx WHERE date >= DATE '2040-12-24';
-- @expect-index: idx_date >= DATE '2040-12-24'
-- @expect:
-- | id     | date | flag       |
-- | ------ | ---- | ---------- |
-- | NULL   | NULL | Bool(true) |
-- | I64(2) | NULL | NULL       |
-- | I64(4) | NULL | Bool(true) |
",
        "SELECT id, date, flag FROM NullIdx WHERE date >= DATE '2040-12-24';
-- @expect-index: idx_date >= DATE '2040-12-24'
-- @expect: count 0
",
    ),
    (
        "SELECT * FROM NullIdx WHERE id > 2;
-- @expect-index: idx_id > 2
-- @expect:
-- | id     | date             | flag        |
-- | ------ | ---------------- | ----------- |
-- | I64(3) | Date(1989-02-01) | Bool(false) |
-- | I64(4) | NULL             | Bool(true)  |
-- | NULL   | NULL             | Bool(true)  |
",
        "SELECT * FROM NullIdx WHERE id > 2;
-- @expect-index: idx_id > 2
-- @expect:
-- | id     | date             | flag        |
-- | ------ | ---------------- | ----------- |
-- | I64(3) | Date(1989-02-01) | Bool(false) |
-- | I64(4) | NULL             | Bool(true)  |
",
    ),
];

/// `index/null.sql` with [`NULL_FIXTURE_FIXES`] applied.
pub fn null_fixture() -> String {
    let mut source = gluesql_test_suite::fixture::source("index/null.sql").to_owned();
    for (published, corrected) in NULL_FIXTURE_FIXES {
        assert!(
            source.contains(published),
            "the published fixture changed; review NULL_FIXTURE_FIXES"
        );
        source = source.replacen(published, corrected, 1);
    }
    source
}

/// A GlueSQL storage over a database on a fresh backend, for GlueSQL's suite.
pub struct GlueSuite {
    glue: gluesql_core::prelude::Glue<crate::SqlStore>,
    _dir: tempfile::TempDir,
}

impl GlueSuite {
    /// A database on `open` in a new temporary directory.
    pub fn new(open: Open) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = database(open(dir.path()));
        GlueSuite {
            glue: gluesql_core::prelude::Glue::new(db.sql_store()),
            _dir: dir,
        }
    }

    /// The GlueSQL handle.
    pub fn glue(&mut self) -> &mut gluesql_core::prelude::Glue<crate::SqlStore> {
        &mut self.glue
    }
}

/// Makes a follower sink that keeps its durable state in a directory.
pub type MakeSink = fn(&std::path::Path) -> Box<dyn crate::audit::AuditSink>;

/// Reads the last seq a sink holds durably, from its directory.
pub type SinkPosition = fn(&std::path::Path) -> u64;

/// Waits (bounded) until every attached sink has taken the head; its status.
fn caught_up(db: &crate::Database) -> crate::audit::SinkStatus {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let status = db.sink_status().remove(0);
        if status.delivered_seq == db.audit_head().seq {
            return status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the sink did not catch up: {status:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Closes `db` (its sinks deliver what is left and close) and checks that what the sink
/// holds durably ends at the head.
fn close_at_head(db: crate::Database, position: SinkPosition, dir: &std::path::Path) {
    let head = db.audit_head().seq;
    drop(db);
    assert_eq!(position(dir), head);
}

fn write_events(db: &crate::Database, from: i64, n: i64) {
    let mut s = db.session(crate::SessionInfo::new("suite"));
    s.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY)", &[])
        .unwrap();
    for id in from..from + n {
        s.execute(&format!("INSERT INTO t VALUES ({id})"), &[])
            .unwrap();
    }
}

/// Delivery: a sink attached to a database takes every event up to the head, and what it
/// holds durably once closed ends there.
pub fn a_sink_takes_every_event(
    storage: std::sync::Arc<dyn StorageBackend>,
    make: MakeSink,
    position: SinkPosition,
    dir: &std::path::Path,
) {
    let db = database(storage);
    write_events(&db, 0, 5);
    db.attach_sink(make(dir)).unwrap();
    write_events(&db, 5, 20);
    let status = caught_up(&db);
    assert_eq!(status.lag(), 0);
    assert_eq!(status.last_error, None);
    close_at_head(db, position, dir);
}

/// Acknowledgement and restart: a new sink on the same directory resumes after what it
/// holds durably and takes what was written while it was away and after, up to the head.
pub fn a_restarted_sink_resumes_after_its_position(
    storage: std::sync::Arc<dyn StorageBackend>,
    make: MakeSink,
    position: SinkPosition,
    dir: &std::path::Path,
) {
    let db = database(std::sync::Arc::clone(&storage));
    db.attach_sink(make(dir)).unwrap();
    write_events(&db, 0, 10);
    caught_up(&db);
    drop(db);
    let held = position(dir);
    let db = database(std::sync::Arc::clone(&storage));
    write_events(&db, 10, 7); // while the sink is away
    db.attach_sink(make(dir)).unwrap();
    write_events(&db, 17, 3);
    let status = caught_up(&db);
    assert!(status.delivered_seq > held);
    close_at_head(db, position, dir);
}

/// Lag: the status tells how far behind the head the sink is, and is zero once caught up.
pub fn a_sink_reports_its_lag(
    storage: std::sync::Arc<dyn StorageBackend>,
    make: MakeSink,
    dir: &std::path::Path,
) {
    let db = database(storage);
    write_events(&db, 0, 30);
    db.attach_sink(make(dir)).unwrap();
    let first = db.sink_status().remove(0);
    assert_eq!(first.lag(), first.head_seq - first.delivered_seq);
    assert!(first.head_seq <= db.audit_head().seq);
    assert_eq!(caught_up(&db).lag(), 0);
}

/// Every contract a follower sink owes, as `#[test]`s in module `$name`: it takes every
/// event up to the head, a restarted sink resumes after what it holds durably (nothing
/// lost while it was away), and its status reports its lag. `$storage` makes the storage
/// for a test (`fn() -> Arc<dyn StorageBackend>`, shared across a restart), `$make` the
/// sink in a directory, `$position` reads the last seq the sink holds durably there.
///
/// ```ignore
/// heliosdb_engine::sink_suite!(my_sink, || Arc::new(MemoryBackend::new()), |dir| Box::new(MySink::new(dir)), |dir| MySink::last_seq(dir));
/// ```
#[macro_export]
macro_rules! sink_suite {
    ($name:ident, $storage:expr, $make:expr, $position:expr) => {
        mod $name {
            #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
            use super::*;

            fn storage() -> std::sync::Arc<dyn $crate::StorageBackend> {
                let storage: fn() -> std::sync::Arc<dyn $crate::StorageBackend> = $storage;
                storage()
            }

            const MAKE: $crate::conformance::MakeSink = $make;
            const POSITION: $crate::conformance::SinkPosition = $position;

            #[test]
            fn a_sink_takes_every_event() {
                let dir = $crate::conformance::tempfile::tempdir().unwrap();
                $crate::conformance::a_sink_takes_every_event(
                    storage(),
                    MAKE,
                    POSITION,
                    dir.path(),
                );
            }

            #[test]
            fn a_restarted_sink_resumes_after_its_position() {
                let dir = $crate::conformance::tempfile::tempdir().unwrap();
                $crate::conformance::a_restarted_sink_resumes_after_its_position(
                    storage(),
                    MAKE,
                    POSITION,
                    dir.path(),
                );
            }

            #[test]
            fn a_sink_reports_its_lag() {
                let dir = $crate::conformance::tempfile::tempdir().unwrap();
                $crate::conformance::a_sink_reports_its_lag(storage(), MAKE, dir.path());
            }
        }
    };
}

pub use gluesql_core::prelude::Glue;
pub use gluesql_test_suite;
pub use tempfile;

/// Every contract a [`StorageBackend`] owes, as `#[test]`s in module `$name`: the
/// storage conformance checks, GlueSQL's own acceptance suite through the engine's one
/// adapter, the audit contract (events sealed and verifiable, failures recorded) and fail
/// closed (a torn commit undone at the next open); with `persistent = true` also that
/// commits survive a reopen. `$open` is a `fn(&Path) -> Arc<dyn StorageBackend>`: a new
/// backend in a new directory, and for a persistent backend the same storage again when
/// given the same directory. A third-party backend runs it from its tests (feature
/// `conformance`):
///
/// ```ignore
/// heliosdb_engine::backend_suite!(my_store, |dir| std::sync::Arc::new(MyStore::open(dir).unwrap()), persistent = true);
/// ```
#[macro_export]
macro_rules! backend_suite {
    ($name:ident, $open:expr, persistent = $persistent:literal) => {
        mod $name {
            #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
            use super::*;
            use $crate::conformance::gluesql_test_suite::*;

            fn open(dir: &std::path::Path) -> std::sync::Arc<dyn $crate::StorageBackend> {
                let open: $crate::conformance::Open = $open;
                open(dir)
            }

            $crate::backend_suite!(@storage;
                put_get_overwrite_delete,
                later_operation_on_same_key_wins,
                ranges_honour_bounds_and_direction,
                prefix_scans_include_ff_edges,
                snapshots_are_isolated_from_later_commits,
                batches_are_atomic_across_keyspaces,
                failed_batches_apply_nothing,
                keyspaces_are_listed_and_validated,
                persist_succeeds,
                side_records_round_trip,
            );

            #[test]
            fn audited_statements_seal_and_verify() {
                let dir = $crate::conformance::tempfile::tempdir().unwrap();
                $crate::conformance::audited_statements_seal_and_verify(open, dir.path());
            }

            #[test]
            fn a_torn_commit_is_undone_at_the_next_open() {
                let dir = $crate::conformance::tempfile::tempdir().unwrap();
                $crate::conformance::a_torn_commit_is_undone_at_the_next_open(
                    open,
                    dir.path(),
                    $persistent,
                );
            }

            #[test]
            fn commits_survive_a_reopen() {
                if $persistent {
                    let dir = $crate::conformance::tempfile::tempdir().unwrap();
                    $crate::conformance::commits_survive_a_reopen(open, dir.path());
                }
            }

            /// GlueSQL's acceptance suite (`gluesql-test-suite` 0.20): every
            /// `generate_*_tests!` as published, `generate_index_tests!` case by case with
            /// `index/null.sql` corrected to SQL semantics.
            pub struct Suite($crate::conformance::GlueSuite);

            impl Tester<$crate::SqlStore> for Suite {
                fn new(_namespace: &str) -> Self {
                    Suite($crate::conformance::GlueSuite::new(open))
                }

                fn get_glue(&mut self) -> &mut $crate::conformance::Glue<$crate::SqlStore> {
                    self.0.glue()
                }
            }

            generate_store_tests!(test, Suite);
            generate_alter_table_tests!(test, Suite);
            generate_transaction_tests!(test, Suite);
            generate_alter_table_index_tests!(test, Suite);
            generate_transaction_alter_table_tests!(test, Suite);
            generate_transaction_index_tests!(test, Suite);
            generate_metadata_table_tests!(test, Suite);
            generate_metadata_index_tests!(test, Suite);
            generate_custom_function_tests!(test, Suite);
            declare_sql_case!(test, Suite, index::basic);
            declare_sql_case!(test, Suite, index::and);
            declare_sql_case!(test, Suite, index::nested);
            declare_sql_case!(test, Suite, index::expr);
            declare_sql_case!(test, Suite, index::value);
            declare_sql_case!(test, Suite, index::order_by);
            declare_sql_case!(test, Suite, index::order_by::multi);
            declare_sql_case!(test, Suite, index::showindexes);
            declare_sql_case!(test, Suite, dictionary_index);

            #[test]
            fn sql_index_null_with_sql_semantics() {
                let path = "index/null.sql";
                fixture::run_fixture(Suite::new(path), path, &$crate::conformance::null_fixture());
            }
        }
    };
    (@storage; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                let dir = $crate::conformance::tempfile::tempdir().unwrap();
                let backend = open(dir.path());
                $crate::conformance::$check(&*backend);
            }
        )*
    };
}
