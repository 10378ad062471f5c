//! Personal data in the audit trail: values of `redact_columns` never reach the ledger in
//! clear (raw bytes of every file checked), hash tokens find a subject's events, encrypted
//! values read back while the subject's key exists and are gone for good after
//! `forget-subject` — with `verify` intact throughout — and the subject access report, from
//! the API and the command line.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use heliosdb_lite::engine::audit::{
    self, AuditEvent, AuditPolicy, ParamCapture, Redaction, RedactionMode, redact,
};
use heliosdb_lite::{Database, DurabilityMode, FjallBackend, SessionInfo, StorageBackend, params};
use proptest::prelude::*;
use std::path::Path;

mod common;

use common::{assert_exit, files_containing, heliosdb, path, stdout};

fn policy(columns: &[&str], mode: RedactionMode) -> AuditPolicy {
    AuditPolicy {
        redaction: Redaction {
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            mode,
        },
        ..AuditPolicy::default()
    }
}

fn open(dir: &Path, policy: AuditPolicy) -> Database {
    Database::builder()
        .path(dir)
        .durability(DurabilityMode::Sync)
        .audit_policy(policy)
        .open()
        .expect("open")
}

fn all_events(backend: &dyn StorageBackend) -> Vec<AuditEvent> {
    audit::tail(backend, usize::MAX)
        .expect("read ledger")
        .into_iter()
        .map(|r| r.event)
        .collect()
}

fn text_of(event: &AuditEvent) -> String {
    format!(
        "{} {} {}",
        event.query,
        event.params.join(" "),
        event.error.clone().unwrap_or_default()
    )
}

const SCHEMA: &str = "CREATE TABLE p (id INTEGER PRIMARY KEY, name TEXT, email TEXT)";

#[test]
fn hash_mode_keeps_no_clear_value_in_any_file_and_tokens_find_the_subject() {
    let dir = tempfile::tempdir().expect("dir");
    let secrets = [
        "where-secret@example.com",
        "param-secret@example.com",
        "in-secret@example.com",
        "invalid-secret@example.com",
    ];
    {
        let db = open(dir.path(), policy(&["email"], RedactionMode::Hash));
        let mut s = db.session(SessionInfo::new("ana"));
        s.execute(SCHEMA, &[]).unwrap();
        s.query(
            "SELECT * FROM p WHERE email = 'where-secret@example.com'",
            &[],
        )
        .unwrap();
        s.execute(
            "DELETE FROM p WHERE email = ?",
            &params!["param-secret@example.com"],
        )
        .unwrap();
        s.execute(
            "UPDATE p SET name = 'n' WHERE id = 1 OR email IN ('in-secret@example.com', 'x')",
            &[],
        )
        .unwrap();
        s.execute(
            "SELEC * FROM p WHERE email = 'invalid-secret@example.com'",
            &[],
        )
        .unwrap_err();
        s.query(
            "SELECT * FROM p WHERE email = 'where-secret@example.com'",
            &[],
        )
        .unwrap();

        let events = all_events(db.backend());
        for secret in secrets {
            assert!(
                !events.iter().any(|e| text_of(e).contains(secret)),
                "{secret} is in the trail"
            );
        }
        // The token of a value finds exactly the events that used it.
        let token = redact::subject_token(db.backend(), "where-secret@example.com")
            .unwrap()
            .expect("a key exists");
        assert!(token.starts_with("hmac:") && token.len() == 5 + 64);
        let found = redact::subject_events(db.backend(), "where-secret@example.com").unwrap();
        assert_eq!(found.len(), 2);
        assert!(found.iter().all(|e| e.query.contains(&token)));
        let by_param = redact::subject_events(db.backend(), "param-secret@example.com").unwrap();
        assert_eq!(by_param.len(), 1);
        assert_eq!(by_param[0].operation, "DELETE");
        assert_eq!(
            by_param[0].params,
            vec![
                redact::subject_token(db.backend(), "param-secret@example.com")
                    .unwrap()
                    .unwrap()
            ]
        );
        assert!(db.verify().unwrap().is_intact());
    }
    for secret in secrets {
        assert_eq!(
            files_containing(dir.path(), secret.as_bytes()),
            Vec::<String>::new(),
            "{secret} is on disk"
        );
    }
}

/// With `redact_parameters`, a parameter in a redacted column's place is still recorded as
/// its token — so the subject's events can be found — and every other one as `?`.
#[test]
fn masked_parameters_keep_tokens_for_redacted_columns_only() {
    let dir = tempfile::tempdir().expect("dir");
    let db = open(
        dir.path(),
        AuditPolicy {
            params: ParamCapture::Redacted,
            ..policy(&["email"], RedactionMode::Hash)
        },
    );
    let mut s = db.session(SessionInfo::new("ana"));
    s.execute(SCHEMA, &[]).unwrap();
    s.execute(
        "DELETE FROM p WHERE email = $1 OR name = $2",
        &params!["a@x", "Ana"],
    )
    .unwrap();
    let last = all_events(db.backend()).pop().unwrap();
    let token = redact::subject_token(db.backend(), "a@x").unwrap().unwrap();
    assert_eq!(last.params, vec![token, "?".to_owned()]);
    let found = redact::subject_events(db.backend(), "a@x").unwrap();
    assert_eq!(found.last().unwrap().seq, last.seq);
}

#[test]
fn insert_values_are_redacted_by_position_and_schema() {
    let db = Database::builder()
        .in_memory()
        .audit_policy(policy(&["email"], RedactionMode::Hash))
        .open()
        .unwrap();
    let mut s = db.session(SessionInfo::new("ana"));
    s.execute(SCHEMA, &[]).unwrap();
    s.execute(
        "INSERT INTO p (id, email, name) VALUES (1, 'one@x', 'Ann')",
        &[],
    )
    .unwrap();
    s.execute("INSERT INTO p VALUES (2, 'Bob', 'two@x')", &[])
        .unwrap();
    let events = all_events(db.backend());
    let inserts: Vec<&AuditEvent> = events.iter().filter(|e| e.operation == "INSERT").collect();
    assert_eq!(inserts.len(), 2);
    assert!(
        inserts[0].query.contains("(1, 'hmac:"),
        "{}",
        inserts[0].query
    );
    assert!(
        inserts[0].query.ends_with(", 'Ann')"),
        "{}",
        inserts[0].query
    );
    // Without a column list the table's schema gives the positions.
    assert!(
        inserts[1]
            .query
            .starts_with("INSERT INTO p VALUES (2, 'Bob', 'hmac:")
    );
    assert!(!inserts[1].query.contains("two@x"));
    // The data itself is stored as given.
    let rows = s.query("SELECT email FROM p ORDER BY id", &[]).unwrap();
    assert_eq!(rows.get::<String>(1, "email").unwrap(), "two@x");
}

/// The bytes of subject `id`'s key, read straight from the subject key file.
fn subject_key_bytes(backend: &dyn StorageBackend, dir: &Path, id: &str) -> Vec<u8> {
    let token = redact::subject_token(backend, id).unwrap().unwrap();
    let hex = token.strip_prefix("hmac:").unwrap();
    let subject = audit::export::parse_hex::<32>(hex).unwrap();
    let file = std::fs::read(dir.join(redact::SUBJECT_KEYS_FILE)).unwrap();
    let entries = file
        .strip_prefix(redact::SUBJECT_KEYS_MAGIC.as_slice())
        .unwrap();
    entries
        .chunks_exact(64)
        .find(|entry| entry[..32] == subject)
        .map(|entry| entry[32..].to_vec())
        .expect("the subject has a key")
}

#[test]
fn encrypt_mode_reads_back_until_the_subject_is_forgotten() {
    let dir = tempfile::tempdir().expect("dir");
    let ann_key;
    {
        let db = open(
            dir.path(),
            policy(&["patient_id", "email"], RedactionMode::Encrypt),
        );
        let mut s = db.session(SessionInfo::new("clinician"));
        s.execute(
            "CREATE TABLE p (patient_id TEXT PRIMARY KEY, email TEXT, note TEXT)",
            &[],
        )
        .unwrap();
        // Values only ever used in WHERE (and a SET that matches no row): the trail is
        // the only place they could be kept.
        s.query("SELECT * FROM p WHERE patient_id = 'P-1001'", &[])
            .unwrap();
        s.execute(
            "UPDATE p SET email = 'ann-new@example.com' WHERE patient_id = 'P-1001'",
            &[],
        )
        .unwrap();
        s.execute("DELETE FROM p WHERE patient_id = $1", &params!["P-2002"])
            .unwrap();

        let events = all_events(db.backend());
        assert!(
            events
                .iter()
                .all(|e| !text_of(e).contains("P-1001")
                    && !text_of(e).contains("ann-new@example.com"))
        );
        let update = events.iter().find(|e| e.operation == "UPDATE").unwrap();
        assert!(update.query.contains("'enc:"), "{}", update.query);

        // Read back while the key exists.
        let ann = redact::subject_events(db.backend(), "P-1001").unwrap();
        assert_eq!(
            ann.iter().map(|e| e.operation.as_str()).collect::<Vec<_>>(),
            ["SELECT", "UPDATE"]
        );
        assert_eq!(
            ann[1].query,
            "UPDATE p SET email = 'ann-new@example.com' WHERE patient_id = 'P-1001'"
        );
        assert_eq!(
            redact::reveal(db.backend(), &update.query, true).unwrap(),
            ann[1].query
        );
        let bob = redact::subject_events(db.backend(), "P-2002").unwrap();
        assert_eq!(bob.len(), 1);
        assert_eq!(bob[0].params, vec!["P-2002".to_owned()]);

        ann_key = subject_key_bytes(db.backend(), dir.path(), "P-1001");
        let report = redact::forget_subject(&db, "P-1001", "dpo").unwrap();
        assert!(report.key_destroyed);
        assert!(report.token.starts_with("hmac:"));

        // The values stay sealed; the hashes still verify; the erasure is recorded
        // without the id.
        assert_eq!(
            redact::reveal(db.backend(), &update.query, true).unwrap(),
            update.query
        );
        let after = redact::subject_events(db.backend(), "P-1001").unwrap();
        assert_eq!(after.len(), 3, "the two events and the erasure");
        assert!(after.iter().all(|e| !text_of(e).contains("ann-new")));
        let forget = after.last().unwrap();
        assert_eq!(forget.operation, redact::FORGET_OPERATION);
        assert_eq!(forget.custom.get("subject"), Some(&report.token));
        assert!(!format!("{forget:?}").contains("P-1001"));
        // Another subject is untouched.
        let bob = redact::subject_events(db.backend(), "P-2002").unwrap();
        assert_eq!(bob[0].params, vec!["P-2002".to_owned()]);
        assert!(db.verify().unwrap().is_intact());
        // Forgetting again destroys nothing more.
        assert!(
            !redact::forget_subject(&db, "P-1001", "dpo")
                .unwrap()
                .key_destroyed
        );
        // A later statement naming the erased subject (checking the erasure, say) gets
        // no new key: its value is kept as a pseudonym, never readable.
        let mut s = db.session(SessionInfo::new("dpo"));
        s.query(
            "SELECT COUNT(*) FROM p WHERE patient_id = $1",
            &params!["P-1001"],
        )
        .unwrap();
        let check = all_events(db.backend()).pop().unwrap();
        assert_eq!(check.params, vec![report.token.clone()]);
        assert!(
            redact::subject_events(db.backend(), "P-1001")
                .unwrap()
                .iter()
                .all(|e| !text_of(e).contains("P-1001") && !text_of(e).contains("ann-new"))
        );
    }
    assert_eq!(ann_key.len(), 32);
    assert_eq!(
        files_containing(dir.path(), &ann_key),
        Vec::<String>::new(),
        "the destroyed key is still on disk"
    );
    for secret in ["P-1001", "ann-new@example.com"] {
        assert_eq!(
            files_containing(dir.path(), secret.as_bytes()),
            Vec::<String>::new(),
            "{secret} is on disk"
        );
    }
    let backend = FjallBackend::open(dir.path()).unwrap();
    assert!(audit::verify(&backend).unwrap().is_intact());
}

#[test]
fn subject_report_lists_exactly_the_subjects_events() {
    let db = Database::builder()
        .in_memory()
        .audit_policy(policy(&["patient_id", "email"], RedactionMode::Encrypt))
        .open()
        .unwrap();
    let mut s = db.session(SessionInfo::new("ana"));
    s.execute(
        "CREATE TABLE p (patient_id TEXT PRIMARY KEY, email TEXT)",
        &[],
    )
    .unwrap();
    s.execute(
        "INSERT INTO p (patient_id, email) VALUES ('A', 'a@x'), ('B', 'b@x')",
        &[],
    )
    .unwrap();
    s.query("SELECT * FROM p WHERE patient_id = 'A'", &[])
        .unwrap();
    s.query("SELECT * FROM p WHERE patient_id = 'B'", &[])
        .unwrap();
    s.execute("UPDATE p SET email = 'a2@x' WHERE patient_id = 'A'", &[])
        .unwrap();
    s.query("SELECT * FROM p", &[]).unwrap();
    let seqs = |id: &str| -> Vec<u64> {
        redact::subject_events(db.backend(), id)
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect()
    };
    // Events: 1 CREATE, 2 INSERT, 3 SELECT A, 4 SELECT B, 5 UPDATE A, 6 SELECT.
    assert_eq!(seqs("A"), [2, 3, 5]);
    assert_eq!(seqs("B"), [2, 4]);
    assert_eq!(seqs("C"), Vec::<u64>::new());
    // The row's other values are the row subject's: A's report shows a@x, not b@x.
    let insert = &redact::subject_events(db.backend(), "A").unwrap()[0];
    assert!(insert.query.contains("'a@x'"), "{}", insert.query);
    assert!(!insert.query.contains("'b@x'"), "{}", insert.query);
}

#[test]
fn command_line_subject_report_and_forget_subject() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("db");
    std::fs::create_dir(&db).unwrap();
    std::fs::write(
        db.join("heliosdb.toml"),
        "[audit]\nredact_columns = [\"patient_id\"]\nredaction_mode = \"encrypt\"\n",
    )
    .unwrap();
    let output = heliosdb(&[
        "--db",
        path(&db),
        "sql",
        "CREATE TABLE p (patient_id TEXT, note TEXT); \
         SELECT * FROM p WHERE patient_id = 'P-7'; \
         SELECT * FROM p WHERE patient_id = 'P-8'",
    ]);
    assert_exit(&output, 0);

    let output = heliosdb(&["--db", path(&db), "audit", "subject", "P-7"]);
    assert_exit(&output, 0);
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    let events = report["events"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0]["query"],
        "SELECT * FROM p WHERE patient_id = 'P-7'"
    );
    assert!(
        report["subject_token"]
            .as_str()
            .unwrap()
            .starts_with("hmac:")
    );

    let output = heliosdb(&[
        "--db",
        path(&db),
        "audit",
        "subject",
        "P-7",
        "--format",
        "csv",
    ]);
    assert_exit(&output, 0);
    let csv = stdout(&output);
    let lines: Vec<&str> = csv.lines().collect();
    // The statement, then the first lookup itself: a SUBJECT_ACCESS event naming the
    // subject by its token and who asked, never by the id.
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[0].starts_with("seq,timestamp,user"));
    assert!(lines[1].starts_with("2,"), "{csv}");
    assert!(lines[1].contains("'P-7'"), "{csv}");
    assert!(lines[2].contains(",SYSTEM,SUBJECT_ACCESS,"), "{csv}");
    assert!(!lines[2].contains("P-7"), "{csv}");

    let output = heliosdb(&["--db", path(&db), "audit", "token", "P-7"]);
    assert_exit(&output, 0);
    let token = stdout(&output).trim().to_owned();
    assert_eq!(report["subject_token"], token.as_str());

    let output = forget_subject_as_dpo(&db, "P-7");
    assert_exit(&output, 0);
    assert!(stdout(&output).contains("forgotten"), "{}", stdout(&output));

    let output = heliosdb(&["--db", path(&db), "audit", "subject", "P-7"]);
    assert_exit(&output, 0);
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    let events = report["events"].as_array().unwrap();
    let operations: Vec<&str> = events
        .iter()
        .map(|e| e["operation"].as_str().unwrap())
        .collect();
    assert_eq!(
        operations,
        [
            "SELECT",
            "SUBJECT_ACCESS",
            "SUBJECT_ACCESS",
            "FORGET_SUBJECT"
        ],
        "the SELECT, the two earlier lookups and the erasure"
    );
    assert!(events[0]["query"].as_str().unwrap().contains("'enc:"));
    assert_eq!(events[3]["custom"]["by"], "dpo");
    assert_eq!(events[1]["custom"]["subject"], token.as_str());
    // The other subject still reads.
    let output = heliosdb(&["--db", path(&db), "audit", "subject", "P-8"]);
    assert!(stdout(&output).contains("patient_id = 'P-8'"));

    let output = heliosdb(&["--db", path(&db), "verify"]);
    assert_exit(&output, 0);
    assert_eq!(
        files_containing(&db, b"P-7"),
        Vec::<String>::new(),
        "P-7 is on disk"
    );
}

/// Where a statement can give a redacted column a value.
fn redacted_statement() -> impl Strategy<Value = (String, String)> {
    let column = prop::sample::select(vec![
        "email",
        "EMAIL",
        "p.email",
        "lower(email)",
        "\"email\"",
    ]);
    let secret = "[a-z0-9]{6,12}".prop_map(|s| format!("sec{s}"));
    let template = prop::sample::select(vec![
        "SELECT * FROM p WHERE {c} = '{s}'",
        "SELECT * FROM p WHERE '{s}' = {c}",
        "SELECT * FROM p WHERE id = 1 AND ({c} LIKE '{s}%' OR {c} IN ('a', '{s}'))",
        "SELECT * FROM p WHERE {c} BETWEEN '{s}' AND 'zz'",
        "SELECT * FROM p WHERE NOT {c} <> '{s}'",
        "UPDATE p SET email = '{s}' WHERE id = 2",
        "UPDATE p SET name = 'n' WHERE {c} >= '{s}'",
        "INSERT INTO p (id, email) VALUES (7, '{s}')",
        "INSERT INTO p VALUES (8, 'n', '{s}')",
        "DELETE FROM p WHERE id IN (SELECT id FROM p WHERE {c} = '{s}')",
        "SELECT CASE email WHEN '{s}' THEN 1 ELSE 0 END FROM p",
        "SELECT * FROM p AS q JOIN p ON q.id = p.id AND {c} = '{s}'",
        "SELECT * FROM p WHERE {c} = '{s}' GROUP BY id HAVING {c} <> '{s}'",
        "SELEC * FROM p WHERE {c} = '{s}'",
        "SELECT * FROM p WHERE {c} = '{s}",
    ]);
    (template, column, secret).prop_map(|(t, c, s)| (t.replace("{c}", c).replace("{s}", &s), s))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Whatever the statement, the value given to a redacted column is not in the trail:
    /// not in the query text, a parameter or the error.
    #[test]
    fn a_redacted_columns_value_never_reaches_the_trail(
        (sql, secret) in redacted_statement(),
        encrypt in any::<bool>(),
    ) {
        let mode = if encrypt { RedactionMode::Encrypt } else { RedactionMode::Hash };
        let db = Database::builder().in_memory().audit_policy(policy(&["email"], mode)).open().unwrap();
        let mut s = db.session(SessionInfo::new("t"));
        s.execute(SCHEMA, &[]).unwrap();
        let _ = s.execute(&sql, &[]);
        let last = all_events(db.backend()).pop().unwrap();
        prop_assert!(!text_of(&last).contains(&secret), "{sql} -> {last:?}");
    }

    /// Arbitrary text never makes capture panic, and a quoted literal in text that does
    /// not parse is never kept.
    #[test]
    fn arbitrary_text_never_panics(sql in "[ -~]{0,80}") {
        let db = Database::builder().in_memory().audit_policy(policy(&["email", "id"], RedactionMode::Encrypt)).open().unwrap();
        let mut s = db.session(SessionInfo::new("t"));
        s.execute(SCHEMA, &[]).unwrap();
        let _ = s.execute(&sql, &params!["p1", 2]);
    }
}

#[test]
fn forget_subject_erases_a_deleted_row_from_every_file() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("db");
    std::fs::create_dir(&db).unwrap();
    std::fs::write(
        db.join("heliosdb.toml"),
        "[audit]\nredact_columns = [\"email\"]\nredaction_mode = \"encrypt\"\n",
    )
    .unwrap();
    let sql = |text: &str| {
        let output = heliosdb(&["--db", path(&db), "sql", text]);
        assert_exit(&output, 0);
        stdout(&output)
    };
    sql("CREATE TABLE users (email TEXT, name TEXT); \
         INSERT INTO users VALUES ('alice@example.org', 'Alice'); \
         INSERT INTO users VALUES ('bob@example.org', 'Bob')");
    // The application deletes the subject's row, then asks for the erasure.
    sql("DELETE FROM users WHERE name = 'Alice'");
    assert_ne!(
        files_containing(&db, b"alice@example.org"),
        Vec::<String>::new(),
        "before the erasure the deleted value is still in some file (a journal)"
    );

    let output = forget_subject_as_dpo(&db, "alice@example.org");
    assert_exit(&output, 0);
    assert!(stdout(&output).contains("forgotten"), "{}", stdout(&output));

    assert_eq!(
        files_containing(&db, b"alice@example.org"),
        Vec::<String>::new(),
        "the erased value is still on disk"
    );
    assert_exit(&heliosdb(&["--db", path(&db), "verify"]), 0);
    // The rest of the table is intact and the database keeps working.
    let rows =
        sql("SELECT email FROM users; INSERT INTO users VALUES ('carol@example.org', 'Carol')");
    assert!(rows.contains("bob@example.org"), "{rows}");
    assert!(!rows.contains("alice"), "{rows}");
    assert_exit(&heliosdb(&["--db", path(&db), "verify"]), 0);
    assert_eq!(
        files_containing(&db, b"alice@example.org"),
        Vec::<String>::new()
    );
}

#[test]
fn erase_subject_from_the_api_leaves_no_file_with_the_value() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(
        dir.path().join("heliosdb.toml"),
        "[audit]\nredact_columns = [\"email\"]\nredaction_mode = \"encrypt\"\n",
    )
    .unwrap();
    {
        let db = Database::open(dir.path()).unwrap();
        let mut s = db.session(SessionInfo::new("app"));
        s.execute(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)",
            &[],
        )
        .unwrap();
        s.execute(
            "INSERT INTO users VALUES (1, $1)",
            &params!["dora@example.org"],
        )
        .unwrap();
        s.execute(
            "INSERT INTO users VALUES (2, $1)",
            &params!["ed@example.org"],
        )
        .unwrap();
        s.execute("DELETE FROM users WHERE id = 1", &[]).unwrap();
    }
    assert_ne!(
        files_containing(dir.path(), b"dora@example.org"),
        Vec::<String>::new(),
        "before the erasure the deleted value is still in some file"
    );

    // With a handle still open the journal cannot be sealed: a clear error, and the
    // erasure can be run again once the handle is gone.
    let held = Database::open(dir.path()).unwrap();
    let mut opens = 0;
    let open_again = || {
        opens += 1;
        if opens == 1 {
            Ok(held.clone())
        } else {
            Database::open(dir.path())
        }
    };
    let error = heliosdb_lite::erase_subject(open_again, "dora@example.org", "dpo")
        .expect_err("the journal of an open database cannot be sealed");
    assert!(error.to_string().contains("is already open"), "{error}");
    drop(held);

    let report =
        heliosdb_lite::erase_subject(|| Database::open(dir.path()), "dora@example.org", "dpo")
            .unwrap();
    assert!(
        !report.key_destroyed,
        "the first run destroyed the key already"
    );
    assert_eq!(
        files_containing(dir.path(), b"dora@example.org"),
        Vec::<String>::new(),
        "the erased value is still on disk"
    );
    let db = Database::open(dir.path()).unwrap();
    assert!(db.verify().unwrap().is_intact());
    let rows = db
        .session(SessionInfo::new("app"))
        .query("SELECT email FROM users", &[])
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows.get::<String>(0, "email").unwrap(), "ed@example.org");
}

/// `heliosdb --db DB --user dpo audit forget-subject ID`.
fn forget_subject_as_dpo(db: &Path, id: &str) -> std::process::Output {
    heliosdb(&[
        "--db",
        path(db),
        "--user",
        "dpo",
        "audit",
        "forget-subject",
        id,
    ])
}
