//! The audit pipeline end to end, on both backends: what is recorded, with which metadata,
//! in the same commit as the data; `__audit_log` queried with plain SQL; write attempts on
//! it refused and recorded; policy filters; concurrent sessions without gaps.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[macro_use]
mod common;

use heliosdb_lite::engine::audit::{AuditPolicy, ParamCapture};
use heliosdb_lite::{AppEvent, Database, Error, Rows, SessionInfo, params};

fn open(kind: &str, policy: AuditPolicy) -> (Database, Option<tempfile::TempDir>) {
    let builder = Database::builder().audit_policy(policy);
    match kind {
        "memory" => (builder.in_memory().open().expect("memory"), None),
        _ => {
            let dir = tempfile::tempdir().expect("dir");
            (builder.path(dir.path()).open().expect("fjall"), Some(dir))
        }
    }
}

fn log(db: &Database, filter: &str) -> Rows {
    let mut s = db.session(SessionInfo::new("auditor"));
    s.query(
        &format!(
            "SELECT id, user, client_addr, application, class, operation, target, query, params, \
             affected_rows, success, error, custom, checksum FROM __audit_log {filter} ORDER BY id"
        ),
        &[],
    )
    .expect("read audit log")
}

fn column(rows: &Rows, name: &str) -> Vec<String> {
    (0..rows.len())
        .map(|i| match rows.value(i, name) {
            Some(heliosdb_lite::Value::Str(s)) => s.clone(),
            Some(v) => format!("{v:?}"),
            None => String::new(),
        })
        .collect()
}

fn clinic_session(db: &Database) -> heliosdb_lite::Session {
    db.session(
        SessionInfo::new("dr.smith")
            .application("clinic")
            .client_addr("10.0.0.7")
            .custom("ward", "cardiology"),
    )
}

fn every_statement_is_recorded_with_its_metadata(kind: &str) {
    let (db, _dir) = open(kind, AuditPolicy::default());
    let mut s = clinic_session(&db);
    s.execute(
        "CREATE TABLE vitals (id INTEGER PRIMARY KEY, patient INTEGER, hr INTEGER)",
        &[],
    )
    .expect("create");
    s.execute(
        "INSERT INTO vitals VALUES ($1, $2, $3), ($4, $2, $5)",
        &params![1, 42, 72, 2, 80],
    )
    .expect("insert");
    s.execute("UPDATE vitals SET hr = 75 WHERE id = 1", &[])
        .expect("update");
    let _ = s
        .query("SELECT * FROM vitals WHERE patient = 42", &[])
        .expect("select");
    s.execute("DELETE FROM vitals WHERE id = 2", &[])
        .expect("delete");

    let rows = log(&db, "WHERE user = 'dr.smith'");
    assert_eq!(
        column(&rows, "operation"),
        ["CREATE_TABLE", "INSERT", "UPDATE", "SELECT", "DELETE"]
    );
    assert_eq!(
        column(&rows, "class"),
        ["DDL", "DML", "DML", "SELECT", "DML"]
    );
    assert!(column(&rows, "target").iter().all(|t| t == "vitals"));
    let affected: Vec<i64> = (0..rows.len())
        .map(|i| rows.get::<i64>(i, "affected_rows").unwrap())
        .collect();
    assert_eq!(affected, [0, 2, 1, 2, 1]);
    assert_eq!(rows.get::<String>(1, "client_addr").unwrap(), "10.0.0.7");
    assert_eq!(rows.get::<String>(1, "application").unwrap(), "clinic");
    assert_eq!(
        rows.get::<String>(1, "query").unwrap(),
        "INSERT INTO vitals VALUES ($1, $2, $3), ($4, $2, $5)"
    );
    assert_eq!(
        rows.get::<String>(1, "params").unwrap(),
        r#"["1","42","72","2","80"]"#
    );
    assert_eq!(
        rows.get::<String>(1, "custom").unwrap(),
        r#"{"ward":"cardiology"}"#
    );
    let checksums = column(&rows, "checksum");
    assert!(checksums.iter().all(|c| c.len() == 64));
    // The head is one past the last row read: the read itself was recorded after it.
    assert_eq!(
        db.audit_head().seq,
        rows.get::<i64>(4, "id").unwrap() as u64 + 1
    );
}

fn failures_rollbacks_and_multi_statement_strings(kind: &str) {
    let (db, _dir) = open(kind, AuditPolicy::default());
    let mut s = clinic_session(&db);
    s.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)", &[])
        .expect("create");
    s.execute("INSERT INTO t VALUES (1)", &[]).expect("first");
    let _ = s.execute("INSERT INTO t VALUES (1)", &[]).expect_err("dup");
    let _ = s.execute("SELEC nonsense", &[]).expect_err("bad sql");
    let _ = s
        .execute("SELECT * FROM missing", &[])
        .expect_err("unknown table");
    s.execute("BEGIN; INSERT INTO t VALUES (5); ROLLBACK", &[])
        .expect("rolled back txn");
    s.execute(
        "  /* leading comment */ BEGIN; INSERT INTO t VALUES (6); COMMIT",
        &[],
    )
    .expect("committed txn");

    let rows = log(&db, "");
    assert_eq!(
        column(&rows, "operation"),
        [
            "CREATE_TABLE",
            "INSERT",
            "INSERT",
            "INVALID",
            "SELECT",
            "BEGIN",
            "INSERT",
            "ROLLBACK",
            "BEGIN",
            "INSERT",
            "COMMIT"
        ]
    );
    let success: Vec<bool> = (0..rows.len())
        .map(|i| rows.get::<bool>(i, "success").unwrap())
        .collect();
    assert_eq!(
        success,
        [
            true, true, false, false, false, true, true, true, true, true, true
        ]
    );
    let errors = column(&rows, "error");
    assert!(errors[2].contains("duplicate"), "{}", errors[2]);
    assert!(errors[3].to_lowercase().contains("selec"), "{}", errors[3]);
    assert!(errors[4].contains("missing"), "{}", errors[4]);
    // The rolled-back row is gone, its statement is not; the committed one is there.
    let mut s = db.session(SessionInfo::new("check"));
    let ids = s.query("SELECT id FROM t ORDER BY id", &[]).expect("ids");
    assert_eq!(ids.len(), 2);
    assert_eq!(ids.get::<i64>(1, "id").unwrap(), 6);
}

fn audit_log_is_read_only_and_attempts_are_recorded(kind: &str) {
    let (db, _dir) = open(kind, AuditPolicy::default());
    let mut s = clinic_session(&db);
    s.execute("CREATE TABLE t (id INTEGER)", &[])
        .expect("create");
    let before = db.audit_head().seq;
    for sql in [
        "INSERT INTO __audit_log (id) VALUES (999)",
        "UPDATE __audit_log SET user = 'nobody'",
        "DELETE FROM __audit_log",
        "DROP TABLE __audit_log",
        "ALTER TABLE __audit_log ADD COLUMN x INTEGER",
        "CREATE INDEX evil ON __audit_log (query)",
    ] {
        let err = s.execute(sql, &[]).expect_err(sql);
        assert!(
            matches!(err, Error::AuditLogReadOnly { .. }),
            "{sql}: {err:?}"
        );
        assert!(err.to_string().contains("read-only"), "{err}");
    }
    let rows = log(&db, &format!("WHERE id > {before}"));
    assert_eq!(rows.len(), 6, "every attempt is recorded");
    assert!((0..6).all(|i| !rows.get::<bool>(i, "success").unwrap()));
    // Complete: every event is there (the read itself is recorded after it).
    let all = log(&db, "");
    assert_eq!(all.len() as u64 + 1, db.audit_head().seq);
    // SHOW TABLES does not list the system table.
    let tables = s.query("SHOW TABLES", &[]).expect("show");
    assert_eq!(tables.len(), 1);
}

fn audit_log_answers_sql_with_indexes(kind: &str) {
    let (db, _dir) = open(kind, AuditPolicy::default());
    let mut a = clinic_session(&db);
    let mut b = db.session(SessionInfo::new("nurse").application("bedside"));
    a.execute("CREATE TABLE t (id INTEGER)", &[])
        .expect("create");
    for i in 0..10 {
        b.execute("INSERT INTO t VALUES ($1)", &params![i])
            .expect("insert");
    }
    let mut q = db.session(SessionInfo::new("auditor"));
    let by_user = q
        .query(
            "SELECT user, COUNT(*) AS n FROM __audit_log GROUP BY user ORDER BY user",
            &[],
        )
        .expect("group by");
    assert_eq!(column(&by_user, "user"), ["dr.smith", "nurse"]);
    assert_eq!(by_user.get::<i64>(1, "n").unwrap(), 10);
    let inserts = q
        .query(
            "SELECT id FROM __audit_log WHERE operation = 'INSERT' ORDER BY id DESC LIMIT 3",
            &[],
        )
        .expect("by operation");
    assert_eq!(inserts.len(), 3);
    let quoted = q
        .query(
            "SELECT COUNT(*) AS n FROM __audit_log WHERE \"user\" = 'nurse'",
            &[],
        )
        .expect("quoted user");
    assert_eq!(quoted.get::<i64>(0, "n").unwrap(), 10);
    let recent = q
        .query(
            "SELECT COUNT(*) AS n FROM __audit_log WHERE timestamp >= '2000-01-01 00:00:00'",
            &[],
        )
        .expect("by time");
    assert!(recent.get::<i64>(0, "n").unwrap() >= 11);
    let by_target = q
        .query(
            "SELECT COUNT(*) AS n FROM __audit_log WHERE target = 't'",
            &[],
        )
        .expect("by target");
    assert_eq!(by_target.get::<i64>(0, "n").unwrap(), 11);
    let one = q
        .query("SELECT operation FROM __audit_log WHERE id = 1", &[])
        .expect("by id");
    assert_eq!(one.get::<String>(0, "operation").unwrap(), "CREATE_TABLE");
}

fn policy_filters_and_redaction(kind: &str) {
    let policy = AuditPolicy {
        log_select: false,
        exclude_users: vec!["monitor".into()],
        exclude_tables: vec!["heartbeat".into()],
        max_query_length: 20,
        params: ParamCapture::Redacted,
        ..AuditPolicy::default()
    };
    let (db, _dir) = open(kind, policy);
    let mut s = clinic_session(&db);
    s.execute("CREATE TABLE heartbeat (id INTEGER)", &[])
        .expect("c1");
    s.execute("CREATE TABLE patient (id INTEGER, name TEXT)", &[])
        .expect("c2");
    s.execute("INSERT INTO heartbeat VALUES (1)", &[])
        .expect("hb");
    s.execute(
        "INSERT INTO patient VALUES ($1, $2)",
        &params![1, "Ada Lovelace"],
    )
    .expect("p");
    let _ = s.query("SELECT * FROM patient", &[]).expect("select");
    // Switched-off classes leave out successes only: a failed read is recorded.
    s.query("SELECT * FROM payroll", &[])
        .expect_err("no such table");
    let mut m = db.session(SessionInfo::new("monitor"));
    m.execute("INSERT INTO patient VALUES (2, 'x')", &[])
        .expect("m");
    m.query("SELECT * FROM payroll", &[])
        .expect_err("excluded users stay excluded, failures too");

    let rows = log(&db, "");
    assert_eq!(
        column(&rows, "operation"),
        ["CREATE_TABLE", "INSERT", "SELECT"]
    );
    assert_eq!(column(&rows, "target"), ["patient", "patient", "payroll"]);
    assert_eq!(
        column(&rows, "success"),
        ["Bool(true)", "Bool(true)", "Bool(false)"]
    );
    assert_eq!(rows.get::<String>(1, "params").unwrap(), r#"["?","?"]"#);
    assert_eq!(rows.get::<String>(1, "query").unwrap().chars().count(), 20);
}

fn app_and_auth_events(kind: &str) {
    let (db, _dir) = open(kind, AuditPolicy::default());
    let mut s = db.session(SessionInfo::new("anonymous").client_addr("10.1.1.1"));
    s.login("dr.jones").expect("login");
    s.execute("CREATE TABLE record (id INTEGER)", &[])
        .expect("create");
    s.execute("BEGIN; INSERT INTO record VALUES (1)", &[])
        .expect("insert");
    s.record_event(
        AppEvent::new("esign")
            .target("record")
            .detail("approved record 1: meaning=approval")
            .custom("meaning", "approval"),
    )
    .expect("sign");
    s.execute("COMMIT", &[]).expect("commit");
    s.logout().expect("logout");
    s.login_failed("mallory", "bad password")
        .expect("failed login");
    let err = s
        .record_event(AppEvent::new("  "))
        .expect_err("empty operation");
    assert!(matches!(err, Error::Unsupported(_)));

    let rows = log(&db, "");
    assert_eq!(
        column(&rows, "operation"),
        [
            "LOGIN",
            "CREATE_TABLE",
            "BEGIN",
            "INSERT",
            "ESIGN",
            "COMMIT",
            "LOGOUT",
            "LOGIN"
        ]
    );
    assert_eq!(
        column(&rows, "class"),
        ["AUTH", "DDL", "TXN", "DML", "APP", "TXN", "AUTH", "AUTH"]
    );
    let users = column(&rows, "user");
    assert!(users[..7].iter().all(|u| u == "dr.jones"));
    assert_eq!(users[7], "mallory", "the rejected login names who tried");
    assert_eq!(column(&rows, "success")[7], "Bool(false)");
    assert_eq!(rows.get::<String>(7, "error").unwrap(), "bad password");
    assert_eq!(
        rows.get::<String>(4, "custom").unwrap(),
        r#"{"meaning":"approval"}"#
    );
}

fn concurrent_sessions_give_a_dense_chain(kind: &str) {
    let (db, _dir) = open(kind, AuditPolicy::default());
    db.session(SessionInfo::new("setup"))
        .execute("CREATE TABLE c (id INTEGER PRIMARY KEY, w INTEGER)", &[])
        .expect("create");
    let threads: Vec<_> = (0..4)
        .map(|w| {
            let db = db.clone();
            std::thread::spawn(move || {
                let mut s = db.session(SessionInfo::new(format!("w{w}")));
                for i in 0..20 {
                    s.execute("INSERT INTO c VALUES ($1, $2)", &params![w * 100 + i, w])
                        .expect("insert");
                    let _ = s.query("SELECT COUNT(*) FROM c", &[]).expect("read");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    let rows = log(&db, "");
    let ids: Vec<i64> = (0..rows.len())
        .map(|i| rows.get::<i64>(i, "id").unwrap())
        .collect();
    assert_eq!(ids, (1..=161).collect::<Vec<_>>(), "gaps or duplicates");
    assert_eq!(
        db.audit_head().seq,
        162,
        "161 events plus the read of the log"
    );
    // The chain links every event to the one before it.
    let distinct: std::collections::BTreeSet<_> = column(&rows, "checksum").into_iter().collect();
    assert_eq!(distinct.len(), 161);
}

fn disabled_policy_records_nothing(kind: &str) {
    let (db, _dir) = open(kind, AuditPolicy::disabled());
    let mut s = clinic_session(&db);
    s.execute("CREATE TABLE t (id INTEGER); INSERT INTO t VALUES (1)", &[])
        .expect("work");
    assert_eq!(db.audit_head().seq, 0);
    // Attempts on the audit log are recorded even so.
    let _ = s
        .execute("DELETE FROM __audit_log", &[])
        .expect_err("read-only");
    assert_eq!(db.audit_head().seq, 1);
}

#[test]
fn head_survives_reopen_without_scanning() {
    let dir = tempfile::tempdir().expect("dir");
    let head = {
        let db = Database::open(dir.path()).expect("open");
        let mut s = db.session(SessionInfo::new("a"));
        s.execute("CREATE TABLE t (id INTEGER); INSERT INTO t VALUES (1)", &[])
            .expect("work");
        db.audit_head()
    };
    assert_eq!(head.seq, 2);
    let db = Database::open(dir.path()).expect("reopen");
    assert_eq!(db.audit_head(), head);
    let mut s = db.session(SessionInfo::new("b"));
    s.execute("INSERT INTO t VALUES (2)", &[]).expect("more");
    assert_eq!(db.audit_head().seq, 3);
}

on_both_backends!(
    every_statement_is_recorded_with_its_metadata,
    failures_rollbacks_and_multi_statement_strings,
    audit_log_is_read_only_and_attempts_are_recorded,
    audit_log_answers_sql_with_indexes,
    policy_filters_and_redaction,
    app_and_auth_events,
    concurrent_sessions_give_a_dense_chain,
    disabled_policy_records_nothing,
);

#[test]
fn audit_log_filters_are_planned_on_its_indexes() {
    let db = Database::in_memory().expect("db");
    let mut glue = gluesql_core::prelude::Glue::new(db.sql_store());
    for (sql, index) in [
        (
            "SELECT id FROM __audit_log WHERE \"user\" = 'a'",
            "__audit_log_user",
        ),
        (
            "SELECT id FROM __audit_log WHERE operation = 'INSERT'",
            "__audit_log_operation",
        ),
        (
            "SELECT id FROM __audit_log WHERE timestamp >= '2024-01-01 00:00:00'",
            "__audit_log_timestamp",
        ),
        (
            "SELECT id FROM __audit_log WHERE target = 'patients'",
            "__audit_log_target",
        ),
    ] {
        let plans = glue.plan(sql).expect("plan");
        let plan = format!("{:?}", plans[0]);
        assert!(plan.contains(index), "{sql} does not use {index}: {plan}");
    }
}
