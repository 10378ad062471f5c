//! The SQL dialect through the session API: placeholders, generated ids across sessions and
//! transactions, and what upserts and RETURNING record in the audit trail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use heliosdb_lite::{Database, SessionInfo, Value, params};
use std::collections::BTreeSet;
use std::sync::Arc;

#[test]
fn sqlite_and_postgres_placeholders_bind_by_number() {
    let db = Database::in_memory().unwrap();
    let mut s = db.session(SessionInfo::new("app"));
    s.execute("CREATE TABLE t (a INTEGER, b TEXT, c TEXT)", &[])
        .unwrap();
    // `?` counts left to right; `?N` and `$N` name a parameter.
    s.execute("INSERT INTO t VALUES (?, ?, ?)", &params![1, "x", "y"])
        .unwrap();
    s.execute("INSERT INTO t VALUES (?2, ?1, ?1)", &params!["p", 2])
        .unwrap();
    s.execute("INSERT INTO t VALUES ($1, $2, ?2)", &params![3, "q"])
        .unwrap();
    let rows = s.query("SELECT a, b, c FROM t ORDER BY a", &[]).unwrap();
    assert_eq!(
        rows.rows,
        vec![
            vec![
                Value::I64(1),
                Value::Str("x".into()),
                Value::Str("y".into())
            ],
            vec![
                Value::I64(2),
                Value::Str("p".into()),
                Value::Str("p".into())
            ],
            vec![
                Value::I64(3),
                Value::Str("q".into()),
                Value::Str("q".into())
            ],
        ]
    );
    let err = s
        .execute("SELECT * FROM t WHERE a = :a", &params![1])
        .unwrap_err();
    assert_eq!(err.kind(), "unsupported", "{err}");
    assert!(err.to_string().contains(":a"), "{err}");
}

#[test]
fn last_insert_id_follows_generated_ids_and_failed_statements_do_not_consume_them() {
    let db = Database::in_memory().unwrap();
    let mut s = db.session(SessionInfo::new("app"));
    assert_eq!(s.last_insert_id(), None);
    s.execute(
        "CREATE TABLE c (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE)",
        &[],
    )
    .unwrap();
    s.execute("INSERT INTO c (name) VALUES ('a'), ('b')", &[])
        .unwrap();
    assert_eq!(s.last_insert_id(), Some(2));
    let failed = s.execute("INSERT INTO c (name) VALUES ('a')", &[]);
    assert_eq!(failed.unwrap_err().kind(), "constraint");
    assert_eq!(s.last_insert_id(), Some(2));
    // Rolled back ids are handed out again: nothing with them was ever committed.
    s.execute("BEGIN", &[]).unwrap();
    s.execute("INSERT INTO c (name) VALUES ('c')", &[]).unwrap();
    assert_eq!(s.last_insert_id(), Some(3));
    s.execute("ROLLBACK", &[]).unwrap();
    s.execute("INSERT INTO c (name) VALUES ('d')", &[]).unwrap();
    assert_eq!(s.last_insert_id(), Some(3));
    let rows = s.query("SELECT last_insert_rowid() AS id", &[]).unwrap();
    assert_eq!(rows.get::<i64>(0, "id").unwrap(), 3);
    // Inside a transaction a failed statement is undone alone, ids included.
    s.execute("BEGIN", &[]).unwrap();
    s.execute("INSERT INTO c (name) VALUES ('e')", &[]).unwrap();
    assert!(s.execute("INSERT INTO c (name) VALUES ('e')", &[]).is_err());
    s.execute("INSERT INTO c (name) VALUES ('f')", &[]).unwrap();
    s.execute("COMMIT", &[]).unwrap();
    let ids = s.query("SELECT id FROM c ORDER BY id", &[]).unwrap();
    let ids: Vec<i64> = (0..ids.len()).map(|i| ids.get(i, "id").unwrap()).collect();
    assert_eq!(ids, vec![1, 2, 3, 4, 5]);
}

#[test]
fn concurrent_sessions_never_share_an_id() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Database::open(dir.path().join("db")).unwrap());
    db.session(SessionInfo::new("setup"))
        .execute(
            "CREATE TABLE ev (id INTEGER PRIMARY KEY AUTOINCREMENT, who TEXT)",
            &[],
        )
        .unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let db = Arc::clone(&db);
            std::thread::spawn(move || {
                let mut s = db.session(SessionInfo::new(format!("w{t}")));
                let mut ids = Vec::new();
                for _ in 0..50 {
                    let rows = loop {
                        match s.query(
                            "INSERT INTO ev (who) VALUES (?) RETURNING id",
                            &params![format!("w{t}")],
                        ) {
                            Ok(rows) => break rows,
                            Err(e) if e.kind() == "busy" => continue,
                            Err(e) => panic!("{e}"),
                        }
                    };
                    ids.push(rows.get::<i64>(0, "id").unwrap());
                }
                ids
            })
        })
        .collect();
    let mut all = BTreeSet::new();
    for thread in threads {
        for id in thread.join().unwrap() {
            assert!(all.insert(id), "id {id} handed out twice");
        }
    }
    assert_eq!(all.len(), 200);
    assert_eq!(all.iter().copied().max(), Some(200));
}

#[test]
fn upserts_and_returning_are_audited_with_their_counts() {
    let db = Database::in_memory().unwrap();
    let mut s = db.session(SessionInfo::new("app"));
    s.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER)", &[])
        .unwrap();
    s.execute("INSERT INTO kv VALUES ('a', 1)", &[]).unwrap();
    let out = s
        .execute(
            "INSERT INTO kv VALUES ('a', 5), ('b', 6), ('a', 7) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
            &[],
        )
        .unwrap();
    assert_eq!(out[0].affected(), Some(3));
    s.execute("INSERT OR IGNORE INTO kv VALUES ('a', 0), ('c', 1)", &[])
        .unwrap();
    let rows = s
        .query(
            "SELECT operation, affected_rows, custom FROM __audit_log WHERE target = 'kv' AND operation = 'INSERT' ORDER BY id",
            &[],
        )
        .unwrap();
    assert_eq!(rows.len(), 3);
    let custom: String = rows.get(1, "custom").unwrap();
    assert!(custom.contains("\"rows_inserted\":\"1\""), "{custom}");
    assert!(custom.contains("\"rows_updated\":\"2\""), "{custom}");
    assert_eq!(rows.get::<i64>(1, "affected_rows").unwrap(), 3);
    let custom: String = rows.get(2, "custom").unwrap();
    assert!(custom.contains("\"rows_ignored\":\"1\""), "{custom}");
    assert_eq!(rows.get::<i64>(2, "affected_rows").unwrap(), 1);

    // RETURNING: the event records the statement and the rows it changed.
    let deleted = s
        .query("DELETE FROM kv WHERE v > 1 RETURNING k", &[])
        .unwrap();
    assert_eq!(deleted.len(), 2);
    let event = s
        .query(
            "SELECT operation, affected_rows, query FROM __audit_log WHERE operation = 'DELETE'",
            &[],
        )
        .unwrap();
    assert_eq!(event.get::<i64>(0, "affected_rows").unwrap(), 2);
    assert!(
        event
            .get::<String>(0, "query")
            .unwrap()
            .contains("RETURNING")
    );
    assert!(db.verify().unwrap().is_intact());
}

#[test]
fn now_is_one_instant_per_statement_and_folds_against_the_audit_log() {
    let db = Database::in_memory().unwrap();
    let mut s = db.session(SessionInfo::new("app"));
    let rows = s
        .query(
            "SELECT datetime('now') = datetime('now') AS same, julianday('now') - julianday('now', '-1 day') AS one",
            &[],
        )
        .unwrap();
    assert_eq!(rows.rows[0][0], Value::Bool(true));
    let one = rows.get::<f64>(0, "one").unwrap();
    assert!((one - 1.0).abs() < 1e-6, "{one}");
    let label = s.query("SELECT date('2024-05-17')", &[]).unwrap();
    assert_eq!(label.columns, vec!["date('2024-05-17')".to_owned()]);
    s.execute("CREATE TABLE t (a INTEGER)", &[]).unwrap();
    let recent = s
        .query(
            "SELECT COUNT(*) AS n FROM __audit_log WHERE timestamp >= datetime('now', '-1 minute') AND timestamp <= datetime('now', '+1 minute')",
            &[],
        )
        .unwrap();
    assert!(recent.get::<i64>(0, "n").unwrap() >= 2);
}

#[test]
fn keyed_update_and_delete_read_only_the_rows_they_can_match() {
    let db = Database::in_memory().unwrap();
    let mut s = db.session(SessionInfo::new("app"));
    s.execute(
        "CREATE TABLE acct (id INTEGER PRIMARY KEY, email TEXT UNIQUE, tenant TEXT, name TEXT)",
        &[],
    )
    .unwrap();
    s.execute("CREATE INDEX acct_tenant ON acct (tenant)", &[])
        .unwrap();
    s.execute("BEGIN", &[]).unwrap();
    for i in 0..500 {
        s.execute(
            "INSERT INTO acct VALUES (?, ?, ?, 'n')",
            &params![i, format!("e{i}"), format!("t{}", i % 10)],
        )
        .unwrap();
    }
    s.execute("COMMIT", &[]).unwrap();
    let scanned = |s: &mut heliosdb_lite::Session, sql: &str| {
        let before = s.rows_scanned();
        let out = s.execute(sql, &[]).unwrap();
        (s.rows_scanned() - before, out[0].affected().unwrap())
    };
    assert_eq!(
        scanned(&mut s, "UPDATE acct SET name = 'x' WHERE id = 250"),
        (1, 1)
    );
    assert_eq!(
        scanned(
            &mut s,
            "UPDATE acct SET name = 'y' WHERE 251 = id AND name = 'n'"
        ),
        (1, 1)
    );
    assert_eq!(
        scanned(
            &mut s,
            "UPDATE acct SET name = 'z' WHERE id = 252 AND name = 'nope'"
        ),
        (1, 0)
    );
    assert_eq!(
        scanned(&mut s, "DELETE FROM acct WHERE email = 'e10'"),
        (1, 1)
    );
    assert_eq!(scanned(&mut s, "DELETE FROM acct WHERE id = '11'"), (1, 1));
    assert_eq!(
        scanned(&mut s, "UPDATE acct SET name = 't' WHERE tenant = 't3'"),
        (50, 50)
    );
    assert_eq!(
        scanned(&mut s, "DELETE FROM acct WHERE id = 100000"),
        (0, 0)
    );
    // Without a keyed equality the whole table is read, as before.
    assert_eq!(
        scanned(&mut s, "UPDATE acct SET name = 'w' WHERE name = 'x'"),
        (498, 1)
    );
    assert_eq!(
        scanned(&mut s, "UPDATE acct SET name = 'v' WHERE id = 1 OR id = 2"),
        (498, 2)
    );
    // A subquery on the same table still sees every row.
    let (_, n) = scanned(
        &mut s,
        "DELETE FROM acct WHERE id = 20 AND email IN (SELECT email FROM acct WHERE tenant = 't0')",
    );
    assert_eq!(n, 1);
    let rows = s.query("SELECT COUNT(*) AS n FROM acct", &[]).unwrap();
    assert_eq!(rows.get::<i64>(0, "n").unwrap(), 497);
    assert!(db.verify().unwrap().is_intact());
}

#[test]
fn a_cached_parse_binds_new_parameters_every_time() {
    let db = Database::in_memory().unwrap();
    let mut s = db.session(SessionInfo::new("app"));
    s.execute(
        "CREATE TABLE p (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT)",
        &[],
    )
    .unwrap();
    for v in ["a", "b", "c"] {
        s.execute("INSERT INTO p (v) VALUES (?)", &params![v])
            .unwrap();
    }
    let rows = s
        .query("SELECT v FROM p WHERE id = ?", &params![2])
        .unwrap();
    assert_eq!(rows.get::<String>(0, "v").unwrap(), "b");
    let rows = s
        .query("SELECT v FROM p WHERE id = ?", &params![3])
        .unwrap();
    assert_eq!(rows.get::<String>(0, "v").unwrap(), "c");
    // Each execution is audited with its own parameters.
    let params_seen = s
        .query(
            "SELECT params FROM __audit_log WHERE operation = 'INSERT' ORDER BY id",
            &[],
        )
        .unwrap();
    let seen: Vec<String> = (0..3)
        .map(|i| params_seen.get(i, "params").unwrap())
        .collect();
    assert_eq!(seen, vec!["[\"a\"]", "[\"b\"]", "[\"c\"]"]);
}

#[test]
fn prepared_statements_run_many_times_with_new_parameters() {
    let db = Database::in_memory().unwrap();
    let mut s = db.session(SessionInfo::new("app"));
    s.execute(
        "CREATE TABLE m (id INTEGER PRIMARY KEY AUTOINCREMENT, v INTEGER)",
        &[],
    )
    .unwrap();
    let insert = s
        .prepare("INSERT INTO m (v) VALUES (?) RETURNING id")
        .unwrap();
    assert_eq!(insert.sql(), "INSERT INTO m (v) VALUES (?) RETURNING id");
    let ids: Vec<i64> = (10..15)
        .map(|v| {
            s.query_prepared(&insert, &params![v])
                .unwrap()
                .get(0, "id")
                .unwrap()
        })
        .collect();
    assert_eq!(ids, vec![1, 2, 3, 4, 5]);
    // A prepared statement belongs to no session in particular.
    let mut other = db.session(SessionInfo::new("other"));
    let select = other.prepare("SELECT v FROM m WHERE id = ?1").unwrap();
    let rows = other.query_prepared(&select, &params![3]).unwrap();
    assert_eq!(rows.get::<i64>(0, "v").unwrap(), 12);
    other.execute_prepared(&insert, &params![99]).unwrap();
    assert_eq!(other.last_insert_id(), Some(6));
    // Parse errors come from prepare, and are audited like any invalid statement.
    let err = s.prepare("SELEC 1").unwrap_err();
    assert_eq!(err.kind(), "sql");
    let invalid = s
        .query(
            "SELECT COUNT(*) AS n FROM __audit_log WHERE operation = 'INVALID'",
            &[],
        )
        .unwrap();
    assert_eq!(invalid.get::<i64>(0, "n").unwrap(), 1);
    let inserts = s
        .query(
            "SELECT COUNT(*) AS n FROM __audit_log WHERE operation = 'INSERT' AND success = TRUE",
            &[],
        )
        .unwrap();
    assert_eq!(inserts.get::<i64>(0, "n").unwrap(), 6);
}

#[test]
fn upserts_find_conflicts_through_keys_not_table_scans() {
    let db = Database::in_memory().unwrap();
    let mut s = db.session(SessionInfo::new("app"));
    s.execute(
        "CREATE TABLE u (id INTEGER PRIMARY KEY AUTOINCREMENT, email TEXT UNIQUE, n INTEGER)",
        &[],
    )
    .unwrap();
    s.execute("BEGIN", &[]).unwrap();
    for i in 0..300 {
        s.execute(
            "INSERT INTO u (email, n) VALUES (?, 0)",
            &params![format!("e{i}")],
        )
        .unwrap();
    }
    s.execute("COMMIT", &[]).unwrap();
    let before = s.rows_scanned();
    s.execute(
        "INSERT INTO u (email, n) VALUES ('e7', 1), ('new', 1) ON CONFLICT (email) DO UPDATE SET n = n + 1",
        &[],
    )
    .unwrap();
    // One row read to find e7's conflict and one to update it; none for the new row.
    assert!(
        s.rows_scanned() - before <= 2,
        "{}",
        s.rows_scanned() - before
    );
    let rows = s
        .query(
            "SELECT email, n FROM u WHERE email IN ('e7', 'new') ORDER BY email",
            &[],
        )
        .unwrap();
    assert_eq!(
        rows.rows,
        vec![
            vec![Value::Str("e7".into()), Value::I64(1)],
            vec![Value::Str("new".into()), Value::I64(1)],
        ]
    );
}

#[test]
fn audit_queries_read_through_the_audit_indexes() {
    let db = Database::in_memory().unwrap();
    let mut setup = db.session(SessionInfo::new("setup"));
    setup
        .execute("CREATE TABLE a (id INTEGER PRIMARY KEY, v INTEGER)", &[])
        .unwrap();
    setup
        .execute("CREATE TABLE b (id INTEGER PRIMARY KEY, v INTEGER)", &[])
        .unwrap();
    for (n, user) in ["u1", "u2", "u3", "u4"].into_iter().enumerate() {
        let mut s = db.session(SessionInfo::new(user));
        for i in 0..50_i64 {
            let table = if i % 5 == 0 { "b" } else { "a" };
            let id = n as i64 * 1000 + i;
            s.execute(&format!("INSERT INTO {table} VALUES (?, 1)"), &params![id])
                .unwrap();
        }
    }
    let mut s = db.session(SessionInfo::new("auditor"));
    let total = s
        .query("SELECT COUNT(*) AS n FROM __audit_log", &[])
        .unwrap()
        .get::<i64>(0, "n")
        .unwrap();
    assert!(total > 200);
    for (sql, expected) in [
        (
            "SELECT COUNT(*) AS n FROM __audit_log WHERE user = 'u2'",
            50,
        ),
        (
            "SELECT COUNT(*) AS n FROM __audit_log WHERE target = 'b'",
            41, // 40 inserts and the CREATE TABLE
        ),
        (
            "SELECT COUNT(*) AS n FROM __audit_log WHERE operation = 'CREATE_TABLE'",
            2,
        ),
        (
            "SELECT COUNT(*) AS n FROM __audit_log WHERE timestamp >= datetime('now', '+1 hour')",
            0,
        ),
    ] {
        let (full, indexed) = (s.rows_scanned(), s.rows_read_by_index());
        let n = s.query(sql, &[]).unwrap().get::<i64>(0, "n").unwrap();
        assert_eq!(n, expected, "{sql}");
        assert_eq!(s.rows_scanned() - full, 0, "{sql} scanned the whole log");
        assert_eq!(s.rows_read_by_index() - indexed, expected as u64, "{sql}");
    }
}
