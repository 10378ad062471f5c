//! The audit commands of the `heliosdb` binary, run as a child process: `verify`,
//! `audit tail`, `audit export` and `verify-export`, their output and exit codes, on clean
//! and tampered data, and on the demo's database.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use heliosdb_lite::engine::audit::AuditEvent;
use heliosdb_lite::engine::{Durability, WriteBatch};
use heliosdb_lite::{FjallBackend, StorageBackend};
use std::path::Path;

mod common;

use common::{assert_exit, heliosdb, path, stderr, stdout};

/// A database with 8 audit events: DDL, DML, a query, a failed statement, a transaction.
fn database(dir: &Path) -> String {
    let db = dir.join("db");
    let output = heliosdb(&[
        "--db",
        path(&db),
        "--user",
        "ana",
        "sql",
        "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT); \
         INSERT INTO t VALUES (1, 'a'), (2, 'b'); \
         UPDATE t SET name = 'c' WHERE id = 2; \
         SELECT * FROM t; \
         BEGIN; INSERT INTO t VALUES (3, 'd'); COMMIT",
    ]);
    assert_exit(&output, 0);
    let output = heliosdb(&["--db", path(&db), "sql", "INSERT INTO t VALUES (1, 'dup')"]);
    assert_exit(&output, 1);
    path(&db).to_owned()
}

/// Changes the user of event `seq` in the stored bytes, keeping its chain hash.
fn tamper(db: &str, seq: u64) {
    let backend = FjallBackend::open(db).expect("open raw");
    let key = seq.to_be_bytes();
    let value = backend
        .snapshot()
        .expect("snapshot")
        .get("audit", &key)
        .expect("read")
        .expect("present");
    let (canonical, chain) = value.split_at(value.len() - 32);
    let mut event = AuditEvent::from_canonical(canonical).expect("decode");
    event.user = "mallory".to_owned();
    let mut forged = event.canonical();
    forged.extend(chain);
    let mut batch = WriteBatch::new();
    batch.put("audit", key, forged);
    backend.commit(&batch, Durability::Sync).expect("write");
}

#[test]
fn verify_reports_intact_and_tampered_ledgers() {
    let dir = tempfile::tempdir().expect("dir");
    let db = database(dir.path());

    let output = heliosdb(&["--db", &db, "verify"]);
    assert_exit(&output, 0);
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "events checked: 8");
    assert!(lines[1].starts_with("head: seq 8, chain "), "{text}");
    assert_eq!(lines[1].len(), "head: seq 8, chain ".len() + 64);
    assert_eq!(lines[2], "intact");
    assert_eq!(stderr(&output), "");

    let output = heliosdb(&["--db", &db, "verify", "--json"]);
    assert_exit(&output, 0);
    let json: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("json");
    assert_eq!(json["intact"], true);
    assert_eq!(json["events_checked"], 8);
    assert_eq!(json["head"]["seq"], 8);

    // Verifying does not add to the trail.
    let output = heliosdb(&["--db", &db, "verify"]);
    assert!(stdout(&output).starts_with("events checked: 8\n"));

    tamper(&db, 3);
    let output = heliosdb(&["--db", &db, "verify"]);
    assert_exit(&output, 1);
    let text = stdout(&output);
    assert!(text.starts_with("events checked: 2\n"), "{text}");
    assert!(
        text.contains("TAMPERED: seq 3: chain hash mismatch: recomputed "),
        "{text}"
    );
    assert!(
        stderr(&output).starts_with("error: audit ledger is not intact: seq 3: "),
        "{}",
        stderr(&output)
    );

    let output = heliosdb(&["--db", &db, "verify", "--json"]);
    assert_exit(&output, 1);
    let json: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("json");
    assert_eq!(json["intact"], false);
    assert_eq!(json["problem"]["seq"], 3);
    assert_eq!(json["problem"]["kind"], "chain_mismatch");
    assert!(json["problem"]["message"].as_str().is_some());
}

#[test]
fn verify_needs_an_existing_database() {
    assert_exit(&heliosdb(&["verify"]), 2);
    let dir = tempfile::tempdir().expect("dir");
    let missing = dir.path().join("missing");
    let output = heliosdb(&["--db", path(&missing), "verify"]);
    assert_exit(&output, 2);
    assert!(stderr(&output).starts_with("error: no database at "));
    assert!(!missing.exists(), "verify must not create a database");
    assert_exit(&heliosdb(&["audit", "tail"]), 2);
}

#[test]
fn audit_tail_prints_the_last_events_as_a_table() {
    let dir = tempfile::tempdir().expect("dir");
    let db = database(dir.path());
    let output = heliosdb(&["--db", &db, "audit", "tail", "-n", "3"]);
    assert_exit(&output, 0);
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    let header: Vec<&str> = lines[0].split('|').map(str::trim).collect();
    assert_eq!(
        header,
        [
            "id",
            "timestamp",
            "user",
            "operation",
            "target",
            "success",
            "rows",
            "query"
        ]
    );
    assert!(lines[1].starts_with("----+"));
    let ids: Vec<&str> = lines[2..5]
        .iter()
        .map(|l| l.split('|').next().unwrap().trim())
        .collect();
    assert_eq!(ids, ["6", "7", "8"]);
    assert!(lines[4].contains("| FALSE "), "{text}");
    assert!(
        lines[4].contains("INSERT INTO t VALUES (1, 'dup')"),
        "{text}"
    );
    assert_eq!(lines[5], "(3 rows)");

    let output = heliosdb(&["--db", &db, "audit", "tail"]);
    assert_exit(&output, 0);
    assert!(stdout(&output).ends_with("(8 rows)\n"));
}

#[test]
fn export_and_verify_export() {
    let dir = tempfile::tempdir().expect("dir");
    let db = database(dir.path());

    let output = heliosdb(&["--db", &db, "audit", "export", "--format", "jsonl"]);
    assert_exit(&output, 0);
    let text = stdout(&output);
    assert_eq!(text.lines().count(), 8);
    let first: serde_json::Value =
        serde_json::from_str(text.lines().next().unwrap()).expect("json");
    assert_eq!(first["seq"], 1);
    assert_eq!(first["user"], "ana");
    assert!(first["prev_chain"].is_string());

    let file = dir.path().join("audit.jsonl");
    let output = heliosdb(&[
        "--db",
        &db,
        "audit",
        "export",
        "--format",
        "jsonl",
        "--out",
        path(&file),
    ]);
    assert_exit(&output, 0);
    assert_eq!(
        stdout(&output),
        format!("8 events written to {}\n", path(&file))
    );
    assert_eq!(std::fs::read_to_string(&file).expect("read"), text);

    let output = heliosdb(&["verify-export", path(&file)]);
    assert_exit(&output, 0);
    let report = stdout(&output);
    assert!(
        report.starts_with("lines checked: 8\nseqs: 1..=8\n"),
        "{report}"
    );
    assert!(report.ends_with("intact\n"), "{report}");

    // A sub-range verifies on its own.
    let part = dir.path().join("part.jsonl");
    let output = heliosdb(&[
        "--db",
        &db,
        "audit",
        "export",
        "--from",
        "3",
        "--to",
        "5",
        "--out",
        path(&part),
    ]);
    assert_exit(&output, 0);
    let output = heliosdb(&["verify-export", path(&part), "--json"]);
    assert_exit(&output, 0);
    let json: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("json");
    assert_eq!(json["lines_checked"], 3);
    assert_eq!(json["first_seq"], 3);
    assert_eq!(json["last_seq"], 5);

    // Line 4 edited: exit 1, the line and seq named.
    let edited: String = text
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let line = if i == 3 {
                line.replacen("\"user\":\"ana\"", "\"user\":\"bob\"", 1)
            } else {
                line.to_owned()
            };
            line + "\n"
        })
        .collect();
    assert_ne!(edited, text);
    std::fs::write(&file, &edited).expect("write");
    let output = heliosdb(&["verify-export", path(&file)]);
    assert_exit(&output, 1);
    assert!(
        stdout(&output).contains("TAMPERED: line 4, seq 4: chain hash mismatch"),
        "{}",
        stdout(&output)
    );
    assert!(stderr(&output).starts_with("error: audit export "));
    let output = heliosdb(&["verify-export", path(&file), "--json"]);
    assert_exit(&output, 1);
    let json: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("json");
    assert_eq!(json["problem"]["line"], 4);
    assert_eq!(json["problem"]["seq"], 4);

    // No database involved; a missing file is an I/O error; --db is refused.
    assert_exit(
        &heliosdb(&["verify-export", path(&dir.path().join("nope.jsonl"))]),
        2,
    );
    assert_exit(&heliosdb(&["--db", &db, "verify-export", path(&file)]), 2);
    assert_exit(
        &heliosdb(&["--db", &db, "audit", "export", "--format", "csv"]),
        2,
    );
}

#[test]
fn the_demo_database_verifies() {
    let dir = tempfile::tempdir().expect("dir");
    let demo = dir.path().join("demo");
    assert_exit(&heliosdb(&["demo", "--dir", path(&demo)]), 0);
    let clinic = demo.join("clinic");
    let output = heliosdb(&["--db", path(&clinic), "verify"]);
    assert_exit(&output, 0);
    assert!(stdout(&output).ends_with("intact\n"), "{}", stdout(&output));

    let file = dir.path().join("clinic.jsonl");
    assert_exit(
        &heliosdb(&[
            "--db",
            path(&clinic),
            "audit",
            "export",
            "--out",
            path(&file),
        ]),
        0,
    );
    assert_exit(&heliosdb(&["verify-export", path(&file)]), 0);
}

/// Session ids are unique for the life of the database: two runs of the command (two
/// processes, two opens) record different sessions, later ones with larger ids.
#[test]
fn every_run_of_the_command_is_a_session_of_its_own() {
    let dir = tempfile::tempdir().expect("dir");
    let db = common::path(dir.path());
    for _ in 0..3 {
        let out = common::heliosdb(&[
            "--db",
            db,
            "sql",
            "CREATE TABLE IF NOT EXISTS t (a INTEGER)",
        ]);
        common::assert_exit(&out, 0);
    }
    let out = common::heliosdb(&[
        "--db",
        db,
        "sql",
        "--json",
        "SELECT session_id FROM __audit_log WHERE query LIKE 'CREATE TABLE%' ORDER BY id",
    ]);
    common::assert_exit(&out, 0);
    let value: serde_json::Value =
        serde_json::from_str(common::stdout(&out).lines().last().expect("a line")).expect("json");
    let ids: Vec<u64> = value["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| row[0].as_u64().expect("an id"))
        .collect();
    assert_eq!(ids.len(), 3, "{value}");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
}

/// Within one open, across a reserved block's end, and after a reopen, ids only grow.
#[test]
fn session_ids_only_grow_across_blocks_and_reopens() {
    let dir = tempfile::tempdir().expect("dir");
    let mut last = 0;
    for _ in 0..2 {
        let db = heliosdb_lite::Database::open(dir.path()).expect("open");
        for _ in 0..1500 {
            let id = db.session(heliosdb_lite::SessionInfo::new("u")).id();
            assert!(id > last, "{id} after {last}");
            last = id;
        }
    }
}
