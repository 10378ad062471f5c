//! Tampering with the stored ledger and with its JSON Lines export, on both backends: every
//! attack `verify` / `verify_export` must catch is caught at the exact seq (and line), and
//! the attacks that need checkpoints are shown to pass unnoticed, as documented in
//! `docs/THREAT-MODEL.md`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[macro_use]
mod common;

use heliosdb_lite::engine::audit::{
    self, AuditEvent, ExportLine, Head, ProblemKind, VerifyOptions, VerifyReport, chain_hash,
    leaf_hash,
};
use heliosdb_lite::engine::{Durability, WriteBatch};
use heliosdb_lite::{
    AppEvent, Database, FjallBackend, MemoryBackend, SessionInfo, StorageBackend, params,
};
use std::sync::Arc;

const KS_AUDIT: &str = "audit";
const KS_AUDIT_INDEX: &str = "audit_idx";
const KS_CATALOG: &str = "catalog";
const HEAD_KEY: &[u8] = b"audit/head";

/// A fresh database on `kind`, with a handle on its raw backend.
struct Fixture {
    db: Database,
    backend: Arc<dyn StorageBackend>,
    _dir: Option<tempfile::TempDir>,
}

fn fresh(kind: &str) -> Fixture {
    let (backend, dir): (Arc<dyn StorageBackend>, _) = match kind {
        "memory" => (Arc::new(MemoryBackend::new()), None),
        _ => {
            let dir = tempfile::tempdir().expect("dir");
            (
                Arc::new(FjallBackend::open(dir.path()).expect("fjall")),
                Some(dir),
            )
        }
    };
    let db = Database::builder()
        .backend(Arc::clone(&backend))
        .open()
        .expect("open");
    Fixture {
        db,
        backend,
        _dir: dir,
    }
}

/// DDL, DML with parameters, a query, a failing statement, a committed and a rolled-back
/// transaction and an application event: 20+ events.
fn workload(db: &Database) {
    let mut s = db.session(
        SessionInfo::new("dr.smith")
            .application("clinic")
            .client_addr("10.0.0.7")
            .custom("ward", "cardiology"),
    );
    s.execute(
        "CREATE TABLE vitals (id INTEGER PRIMARY KEY, patient INTEGER, hr INTEGER)",
        &[],
    )
    .expect("create");
    for id in 1..=8 {
        s.execute(
            "INSERT INTO vitals VALUES ($1, $2, $3)",
            &params![id, 40 + id % 3, 60 + id],
        )
        .expect("insert");
    }
    s.execute("UPDATE vitals SET hr = 75 WHERE id = 1", &[])
        .expect("update");
    s.execute("UPDATE vitals SET hr = hr + 1 WHERE patient = 41", &[])
        .expect("update");
    let _ = s
        .query("SELECT * FROM vitals WHERE patient = $1", &params![42])
        .expect("select");
    let _ = s
        .execute("INSERT INTO vitals VALUES (1, 1, 1)", &[])
        .expect_err("duplicate key");
    let _ = s
        .execute("SELECT * FROM missing", &[])
        .expect_err("no table");
    s.execute(
        "BEGIN; INSERT INTO vitals VALUES (20, 1, 90); UPDATE vitals SET hr = 91 WHERE id = 20; COMMIT",
        &[],
    )
    .expect("txn");
    s.execute("BEGIN; DELETE FROM vitals WHERE id = 2; ROLLBACK", &[])
        .expect("rolled back");
    s.record_event(
        AppEvent::new("esign")
            .target("vitals")
            .detail("Signed chart of patient 42 — «ok»")
            .custom("reason", "discharge"),
    )
    .expect("app event");
    s.execute("DELETE FROM vitals WHERE id = 3", &[])
        .expect("delete");
    assert!(
        db.audit_head().seq >= 20,
        "workload made {} events",
        db.audit_head().seq
    );
}

/// Verifies with and without hash threads; both must agree.
fn verify(f: &Fixture) -> VerifyReport {
    let inline = audit::verify_with(
        f.backend.as_ref(),
        VerifyOptions {
            hash_threads: 0,
            ..VerifyOptions::default()
        },
    )
    .expect("verify reads the backend");
    let threaded = audit::verify_with(
        f.backend.as_ref(),
        VerifyOptions {
            hash_threads: 3,
            ..VerifyOptions::default()
        },
    )
    .expect("verify reads the backend");
    assert_eq!(inline, threaded);
    inline
}

fn commit(f: &Fixture, batch: WriteBatch) {
    f.backend
        .commit(&batch, Durability::Sync)
        .expect("raw write");
}

fn raw(f: &Fixture, seq: u64) -> Vec<u8> {
    f.backend
        .snapshot()
        .expect("snapshot")
        .get(KS_AUDIT, &seq.to_be_bytes())
        .expect("read")
        .expect("record present")
}

/// Splits a stored record into its event and chain hash.
fn split(value: &[u8]) -> (AuditEvent, [u8; 32]) {
    let (canonical, chain) = value.split_at(value.len() - 32);
    (
        AuditEvent::from_canonical(canonical).expect("decodes"),
        chain.try_into().expect("32 bytes"),
    )
}

fn record(event: &AuditEvent, chain: &[u8; 32]) -> Vec<u8> {
    let mut value = event.canonical();
    value.extend(chain);
    value
}

fn stored_head(f: &Fixture) -> Head {
    let bytes = f
        .backend
        .snapshot()
        .expect("snapshot")
        .get(KS_CATALOG, HEAD_KEY)
        .expect("read")
        .expect("head");
    Head::decode(&bytes).expect("head decodes")
}

/// The problem's seq and kind, failing if the report is intact.
fn problem(report: &VerifyReport) -> (u64, ProblemKind) {
    let problem = report
        .problem
        .clone()
        .unwrap_or_else(|| panic!("tampering not detected: {report}"));
    (problem.seq, problem.kind)
}

fn intact_after_workload(kind: &str) -> Fixture {
    let f = fresh(kind);
    let empty = verify(&f);
    assert!(empty.is_intact(), "{empty}");
    assert_eq!((empty.events_checked, empty.head), (0, None));
    workload(&f.db);
    let report = verify(&f);
    assert!(report.is_intact(), "{report}");
    let head = f.db.audit_head();
    assert_eq!(report.events_checked, head.seq);
    assert_eq!(report.last_seq, head.seq);
    assert_eq!(report.head, Some(head));
    f
}

fn clean_ledger_verifies(kind: &str) {
    let f = intact_after_workload(kind);
    let json = serde_json::to_value(verify(&f)).expect("json");
    assert_eq!(json["intact"], true);
    assert_eq!(json["problem"], serde_json::Value::Null);
    assert_eq!(json["head"]["seq"], f.db.audit_head().seq);
}

fn modified_field_is_a_chain_mismatch_at_its_seq(kind: &str) {
    let f = intact_after_workload(kind);
    let (mut event, chain) = split(&raw(&f, 7));
    event.user = "mallory".to_owned();
    let mut batch = WriteBatch::new();
    batch.put(KS_AUDIT, 7u64.to_be_bytes(), record(&event, &chain));
    commit(&f, batch);
    let report = verify(&f);
    assert!(
        matches!(problem(&report), (7, ProblemKind::ChainMismatch { .. })),
        "{report}"
    );
    assert_eq!(report.events_checked, 6);
    assert!(
        report
            .to_string()
            .contains("TAMPERED: seq 7: chain hash mismatch"),
        "{report}"
    );
}

fn deleted_event_is_a_gap(kind: &str) {
    let f = intact_after_workload(kind);
    let mut batch = WriteBatch::new();
    batch.delete(KS_AUDIT, 7u64.to_be_bytes());
    commit(&f, batch);
    let report = verify(&f);
    assert_eq!(problem(&report), (7, ProblemKind::Gap { expected: 7 }));
}

fn forged_event_with_its_own_chain_breaks_the_next_link(kind: &str) {
    let f = intact_after_workload(kind);
    let (_, chain_6) = split(&raw(&f, 6));
    let (mut event, _) = split(&raw(&f, 7));
    event.user = "mallory".to_owned();
    event.query = "SELECT 1".to_owned();
    let forged_chain = chain_hash(&chain_6, &leaf_hash(&event.canonical()));
    let mut batch = WriteBatch::new();
    batch.put(KS_AUDIT, 7u64.to_be_bytes(), record(&event, &forged_chain));
    commit(&f, batch);
    let report = verify(&f);
    assert!(
        matches!(problem(&report), (8, ProblemKind::ChainMismatch { .. })),
        "{report}"
    );
    assert_eq!(report.events_checked, 7);
}

fn swapped_events_are_caught_at_the_first(kind: &str) {
    let f = intact_after_workload(kind);
    let (seven, eight) = (raw(&f, 7), raw(&f, 8));
    let mut batch = WriteBatch::new();
    batch.put(KS_AUDIT, 7u64.to_be_bytes(), eight);
    batch.put(KS_AUDIT, 8u64.to_be_bytes(), seven);
    commit(&f, batch);
    let report = verify(&f);
    assert_eq!(
        problem(&report),
        (
            7,
            ProblemKind::SeqMismatch {
                key_seq: 7,
                event_seq: 8
            }
        )
    );

    // Renumbering the swapped events does not help: the links no longer fit.
    let f = intact_after_workload(kind);
    let (mut seven, chain_7) = split(&raw(&f, 7));
    let (mut eight, chain_8) = split(&raw(&f, 8));
    (seven.seq, eight.seq) = (8, 7);
    let mut batch = WriteBatch::new();
    batch.put(KS_AUDIT, 7u64.to_be_bytes(), record(&eight, &chain_7));
    batch.put(KS_AUDIT, 8u64.to_be_bytes(), record(&seven, &chain_8));
    commit(&f, batch);
    assert!(matches!(
        problem(&verify(&f)),
        (7, ProblemKind::ChainMismatch { .. })
    ));
}

fn changed_head_is_a_head_mismatch(kind: &str) {
    let f = intact_after_workload(kind);
    let head = stored_head(&f);
    let last = head.seq;

    let mut other = head;
    other.chain[0] ^= 1;
    let mut batch = WriteBatch::new();
    batch.put(KS_CATALOG, HEAD_KEY, other.encode());
    commit(&f, batch);
    let (seq, kind_) = problem(&verify(&f));
    assert_eq!(seq, last);
    assert!(matches!(kind_, ProblemKind::HeadMismatch { head_seq: Some(s), .. } if s == last));

    // A head claiming fewer events than are stored.
    let mut batch = WriteBatch::new();
    batch.put(
        KS_CATALOG,
        HEAD_KEY,
        Head {
            seq: last - 3,
            chain: head.chain,
        }
        .encode(),
    );
    commit(&f, batch);
    assert!(matches!(problem(&verify(&f)), (s, ProblemKind::HeadMismatch { .. }) if s == last - 2));

    // A head vouching for events that are gone (the tail deleted, the head left alone).
    let mut batch = WriteBatch::new();
    batch.put(KS_CATALOG, HEAD_KEY, head.encode());
    batch.delete(KS_AUDIT, last.to_be_bytes());
    commit(&f, batch);
    assert!(matches!(problem(&verify(&f)), (s, ProblemKind::HeadMismatch { .. }) if s == last));

    // No head at all, or garbage.
    let mut batch = WriteBatch::new();
    batch.delete(KS_CATALOG, HEAD_KEY);
    commit(&f, batch);
    assert!(matches!(
        problem(&verify(&f)).1,
        ProblemKind::HeadMismatch { head_seq: None, .. }
    ));
    let mut batch = WriteBatch::new();
    batch.put(KS_CATALOG, HEAD_KEY, b"short".to_vec());
    commit(&f, batch);
    assert!(matches!(
        problem(&verify(&f)).1,
        ProblemKind::HeadMismatch { head_seq: None, .. }
    ));
}

fn undecodable_and_foreign_records(kind: &str) {
    let f = intact_after_workload(kind);
    let mut value = raw(&f, 5);
    value[0] = b'X';
    let mut batch = WriteBatch::new();
    batch.put(KS_AUDIT, 5u64.to_be_bytes(), value);
    commit(&f, batch);
    assert!(matches!(
        problem(&verify(&f)),
        (5, ProblemKind::Undecodable(_))
    ));

    let f = intact_after_workload(kind);
    let (_, chain_3) = split(&raw(&f, 3));
    let (mut event, _) = split(&raw(&f, 4));
    event.database_id = [9; 16];
    let chain = chain_hash(&chain_3, &leaf_hash(&event.canonical()));
    let mut batch = WriteBatch::new();
    batch.put(KS_AUDIT, 4u64.to_be_bytes(), record(&event, &chain));
    commit(&f, batch);
    assert_eq!(problem(&verify(&f)), (4, ProblemKind::ForeignDatabase));

    // An extra key between two records.
    let f = intact_after_workload(kind);
    let mut key = 4u64.to_be_bytes().to_vec();
    key.push(0);
    let mut batch = WriteBatch::new();
    batch.put(KS_AUDIT, key, raw(&f, 4));
    commit(&f, batch);
    assert!(matches!(
        problem(&verify(&f)),
        (5, ProblemKind::Undecodable(_))
    ));
}

/// What `verify` cannot see without a checkpoint held elsewhere (docs/THREAT-MODEL.md):
/// the tail cut together with the head and its index entries, and a full rewrite whose
/// chain and index entries the attacker recomputed. A sloppier attacker who leaves the
/// index entries behind is caught by the index check.
fn tail_truncation_and_full_rewrite_pass_unnoticed(kind: &str) {
    let truncate = |f: &Fixture, with_indexes: bool| {
        let last = stored_head(f).seq;
        let (_, chain_before) = split(&raw(f, last - 2));
        let mut batch = WriteBatch::new();
        for seq in last - 1..=last {
            batch.delete(KS_AUDIT, seq.to_be_bytes());
            if with_indexes {
                let (event, _) = split(&raw(f, seq));
                for (_, key, _) in audit::audit_index_entries(&event).expect("entries") {
                    batch.delete(KS_AUDIT_INDEX, key);
                }
            }
        }
        batch.put(
            KS_CATALOG,
            HEAD_KEY,
            Head {
                seq: last - 2,
                chain: chain_before,
            }
            .encode(),
        );
        commit(f, batch);
        last
    };
    let f = intact_after_workload(kind);
    let last = truncate(&f, true);
    let report = verify(&f);
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.last_seq, last - 2);

    let f = intact_after_workload(kind);
    let last = truncate(&f, false);
    assert!(matches!(
        problem(&verify(&f)),
        (seq, ProblemKind::IndexMismatch { .. }) if seq == last - 1
    ));

    let rewrite = |f: &Fixture, with_indexes: bool| {
        let last = stored_head(f).seq;
        let (_, mut chain) = split(&raw(f, 6));
        let mut batch = WriteBatch::new();
        for seq in 7..=last {
            let (mut event, _) = split(&raw(f, seq));
            if seq == 7 {
                if with_indexes {
                    for (_, key, _) in audit::audit_index_entries(&event).expect("entries") {
                        batch.delete(KS_AUDIT_INDEX, key);
                    }
                }
                event.user = "mallory".to_owned();
                if with_indexes {
                    for (_, key, value) in audit::audit_index_entries(&event).expect("entries") {
                        batch.put(KS_AUDIT_INDEX, key, value);
                    }
                }
            }
            chain = chain_hash(&chain, &leaf_hash(&event.canonical()));
            batch.put(KS_AUDIT, seq.to_be_bytes(), record(&event, &chain));
        }
        batch.put(KS_CATALOG, HEAD_KEY, Head { seq: last, chain }.encode());
        commit(f, batch);
    };
    let f = intact_after_workload(kind);
    rewrite(&f, true);
    assert!(verify(&f).is_intact());

    let f = intact_after_workload(kind);
    rewrite(&f, false);
    assert!(matches!(
        problem(&verify(&f)),
        (7, ProblemKind::IndexMismatch { .. })
    ));
}

/// The `__audit_log` indexes are checked too: deleting, adding or altering an index
/// entry — to hide an event from indexed queries, or to make one appear — is caught at
/// the event concerned.
fn tampered_index_entries_are_caught_at_their_seq(kind: &str) {
    let entries = |f: &Fixture, seq: u64| {
        let (event, _) = split(&raw(f, seq));
        audit::audit_index_entries(&event).expect("entries")
    };
    // Hide event 9 from queries by user.
    let f = intact_after_workload(kind);
    let (index, key, _) = entries(&f, 9).remove(1);
    assert_eq!(index, "__audit_log_user");
    let mut batch = WriteBatch::new();
    batch.delete(KS_AUDIT_INDEX, key);
    commit(&f, batch);
    assert!(matches!(
        problem(&verify(&f)),
        (9, ProblemKind::IndexMismatch { index, .. }) if index == "__audit_log_user"
    ));
    // Make event 5 appear under another user.
    let f = intact_after_workload(kind);
    let (mut event, _) = split(&raw(&f, 5));
    event.user = "mallory".to_owned();
    let (_, key, value) = audit::audit_index_entries(&event)
        .expect("entries")
        .remove(1);
    let mut batch = WriteBatch::new();
    batch.put(KS_AUDIT_INDEX, key, value);
    commit(&f, batch);
    assert!(matches!(
        problem(&verify(&f)),
        (5, ProblemKind::IndexMismatch { .. })
    ));
    // Point an entry of event 12 at event 3.
    let f = intact_after_workload(kind);
    let (_, key, _) = entries(&f, 12).remove(2);
    let (_, _, other) = entries(&f, 3).remove(2);
    let mut batch = WriteBatch::new();
    batch.put(KS_AUDIT_INDEX, key, other);
    commit(&f, batch);
    assert!(matches!(
        problem(&verify(&f)).1,
        ProblemKind::IndexMismatch { .. }
    ));
    // Checking indexes can be switched off (the chain alone is still verified).
    let report = audit::verify_with(
        f.backend.as_ref(),
        VerifyOptions {
            check_indexes: false,
            ..VerifyOptions::default()
        },
    )
    .expect("verify");
    assert!(report.is_intact());
}

// ---------------------------------------------------------------------------------------
// Exports
// ---------------------------------------------------------------------------------------

fn export(f: &Fixture, from: Option<u64>, to: Option<u64>) -> Vec<String> {
    let mut out = Vec::new();
    let n = audit::export(f.backend.as_ref(), from, to, &mut out).expect("export");
    let text = String::from_utf8(out).expect("UTF-8");
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    assert_eq!(lines.len() as u64, n);
    lines
}

fn verify_lines(lines: &[String]) -> audit::ExportReport {
    let mut text = lines.join("\n");
    text.push('\n');
    audit::verify_export(text.as_bytes()).expect("read")
}

/// `(line, seq, kind)` of the first problem.
fn export_problem(lines: &[String]) -> (u64, Option<u64>, ProblemKind) {
    let report = verify_lines(lines);
    let problem = report
        .problem
        .unwrap_or_else(|| panic!("tampering not detected in the export"));
    (problem.line, problem.seq, problem.kind)
}

fn edit(line: &str, change: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut value: serde_json::Value = serde_json::from_str(line).expect("json");
    change(&mut value);
    serde_json::to_string(&value).expect("json")
}

fn exports_verify_offline(kind: &str) {
    let f = intact_after_workload(kind);
    let head = f.db.audit_head();
    let lines = export(&f, None, None);
    assert_eq!(lines.len() as u64, head.seq);
    let report = verify_lines(&lines);
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.lines_checked, head.seq);
    assert_eq!(
        (report.first_seq, report.last_seq),
        (Some(1), Some(head.seq))
    );
    assert_eq!(report.last_chain, Some(head.chain));

    // Every field is present, by name and in order; prev_chain only on the first line.
    let mut at = 0;
    let names: Vec<&str> = [
        "seq",
        "timestamp_us",
        "timestamp",
        "database_id",
        "session_id",
        "user",
        "client_addr",
        "application",
        "database",
        "class",
        "operation",
        "targets",
        "query",
        "query_truncated",
        "params",
        "rows",
        "success",
        "error",
        "duration_us",
        "custom",
        "prev_chain",
        "leaf",
        "chain",
    ]
    .into_iter()
    .filter(|name| {
        let found = lines[0][at..].find(&format!("\"{name}\":"));
        at += found.map_or(0, |i| i + 1);
        found.is_none()
    })
    .collect();
    assert!(
        names.is_empty(),
        "missing or out of order: {names:?} in {}",
        lines[0]
    );
    let second: serde_json::Value = serde_json::from_str(&lines[1]).expect("json");
    assert!(second.get("prev_chain").is_none());
    let line: ExportLine = serde_json::from_str(&lines[1]).expect("line");
    assert_eq!(line.user, "dr.smith");
    assert_eq!(
        line.custom.get("ward").map(String::as_str),
        Some("cardiology")
    );
    assert!(
        line.timestamp
            .as_deref()
            .is_some_and(|t| t.ends_with('Z') && t.len() == 27),
        "{:?}",
        line.timestamp
    );

    // A sub-range verifies on its own, anchored on the chain of the event before it.
    let part = export(&f, Some(5), Some(12));
    assert_eq!(part.len(), 8);
    let report = verify_lines(&part);
    assert!(report.is_intact(), "{report}");
    assert_eq!((report.first_seq, report.last_seq), (Some(5), Some(12)));
    let four: ExportLine = serde_json::from_str(&lines[3]).expect("line");
    let five: ExportLine = serde_json::from_str(&part[0]).expect("line");
    assert_eq!(five.prev_chain, Some(four.chain));
    assert_eq!(export(&f, Some(head.seq + 1), None).len(), 0);
    assert_eq!(export(&f, Some(9), Some(3)).len(), 0);

    // Cutting lines from the end is NOT detected by the export alone: the shorter export
    // is a valid export of a shorter ledger. Only a head or checkpoint kept elsewhere
    // (compare `last_chain`) shows it.
    let cut = &lines[..lines.len() - 3];
    let report = verify_lines(cut);
    assert!(report.is_intact(), "{report}");
    assert_ne!(report.last_chain, Some(head.chain));
}

fn export_attacks_are_caught_at_the_exact_line(kind: &str) {
    let f = intact_after_workload(kind);
    let lines = export(&f, None, None);
    let last = lines.len();

    // (a) one field of seq 7 changed.
    let mut a = lines.clone();
    a[6] = edit(&a[6], |v| v["user"] = "mallory".into());
    assert!(matches!(
        export_problem(&a),
        (7, Some(7), ProblemKind::ChainMismatch { .. })
    ));

    // (b) seq 7 deleted.
    let mut b = lines.clone();
    b.remove(6);
    assert_eq!(
        export_problem(&b),
        (7, Some(7), ProblemKind::Gap { expected: 7 })
    );

    // (c) seq 7 forged with its own leaf and chain: the next line's link breaks.
    let mut c = lines.clone();
    let six: ExportLine = serde_json::from_str(&c[5]).expect("line");
    let mut seven: ExportLine = serde_json::from_str(&c[6]).expect("line");
    seven.user = "mallory".to_owned();
    let leaf = leaf_hash(&seven.event().expect("event").canonical());
    let prev = audit::export::parse_hex::<32>(&six.chain).expect("hex");
    seven.leaf = hex(&leaf);
    seven.chain = hex(&chain_hash(&prev, &leaf));
    c[6] = serde_json::to_string(&seven).expect("json");
    assert!(matches!(
        export_problem(&c),
        (8, Some(8), ProblemKind::ChainMismatch { .. })
    ));

    // (d) seq 7 and 8 swapped.
    let mut d = lines.clone();
    d.swap(6, 7);
    assert_eq!(
        export_problem(&d),
        (7, Some(7), ProblemKind::Gap { expected: 7 })
    );

    // (e) the anchor or the final link changed.
    let mut e = lines.clone();
    e[0] = edit(&e[0], |v| v["prev_chain"] = "00".repeat(32).into());
    assert!(matches!(
        export_problem(&e),
        (1, Some(1), ProblemKind::ChainMismatch { .. })
    ));
    let mut e = lines.clone();
    e[last - 1] = edit(&e[last - 1], |v| v["chain"] = "11".repeat(32).into());
    assert!(matches!(
        export_problem(&e),
        (l, Some(s), ProblemKind::ChainMismatch { .. }) if l == last as u64 && s == last as u64
    ));

    // Lines from another database, and garbage.
    let mut g = lines.clone();
    g[9] = edit(&g[9], |v| v["database_id"] = "ab".repeat(16).into());
    assert_eq!(
        export_problem(&g),
        (10, Some(10), ProblemKind::ForeignDatabase)
    );
    let mut g = lines.clone();
    g[3] = "{\"seq\": 4".to_owned();
    assert!(matches!(
        export_problem(&g),
        (4, None, ProblemKind::Json(_))
    ));
    let mut g = lines.clone();
    g.insert(4, g[3].clone());
    assert_eq!(export_problem(&g), (5, Some(4), ProblemKind::Duplicate));
}

/// The DB-side attacks show up in an export of the tampered database too.
fn tampered_database_exports_a_failing_file(kind: &str) {
    let f = intact_after_workload(kind);
    let (mut event, chain) = split(&raw(&f, 7));
    event.rows += 1;
    let mut batch = WriteBatch::new();
    batch.put(KS_AUDIT, 7u64.to_be_bytes(), record(&event, &chain));
    commit(&f, batch);
    let lines = export(&f, None, None);
    assert!(matches!(
        export_problem(&lines),
        (7, Some(7), ProblemKind::ChainMismatch { .. })
    ));
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Problems deep in a ledger of many chunks are found at the same seq however many hash
/// threads share the work.
fn large_ledgers_are_checked_in_order(kind: &str) {
    let f = fresh(kind);
    fill_ledger(&f, 5_000);
    assert!(verify(&f).is_intact());
    let (_, chain) = split(&raw(&f, 3_001));
    let (mut event, _) = split(&raw(&f, 3_000));
    event.rows = 99;
    let mut batch = WriteBatch::new();
    batch.put(KS_AUDIT, 3_000u64.to_be_bytes(), record(&event, &chain));
    commit(&f, batch);
    for threads in [0, 1, 2, 3, 7] {
        let report = audit::verify_with(
            f.backend.as_ref(),
            VerifyOptions {
                hash_threads: threads,
                ..VerifyOptions::default()
            },
        )
        .expect("verify");
        assert!(
            matches!(problem(&report), (3_000, ProblemKind::ChainMismatch { .. })),
            "{threads} threads: {report}"
        );
        assert_eq!(report.events_checked, 2_999);
    }
}

on_both_backends!(
    tampered_index_entries_are_caught_at_their_seq,
    large_ledgers_are_checked_in_order,
    clean_ledger_verifies,
    modified_field_is_a_chain_mismatch_at_its_seq,
    deleted_event_is_a_gap,
    forged_event_with_its_own_chain_breaks_the_next_link,
    swapped_events_are_caught_at_the_first,
    changed_head_is_a_head_mismatch,
    undecodable_and_foreign_records,
    tail_truncation_and_full_rewrite_pass_unnoticed,
    exports_verify_offline,
    export_attacks_are_caught_at_the_exact_line,
    tampered_database_exports_a_failing_file,
);

// ---------------------------------------------------------------------------------------
// Throughput (run with `cargo test --release --test audit_tamper -- --ignored --nocapture`)
// ---------------------------------------------------------------------------------------

/// Writes `n` sealed events of about 300 canonical bytes straight into the ledger.
fn fill_ledger(f: &Fixture, n: u64) {
    let database_id = f.db.database_id();
    let mut chain = audit::genesis(&database_id);
    let mut batch = WriteBatch::new();
    let mut event = AuditEvent {
        timestamp_us: 1_714_550_400_000_000,
        database_id,
        session_id: 1,
        user: "dr.smith".into(),
        client_addr: "10.0.0.7".into(),
        application: "clinic".into(),
        database: "main".into(),
        class: audit::EventClass::Dml,
        operation: "INSERT".into(),
        targets: vec!["vital_signs".into()],
        query: "INSERT INTO vital_signs (id, patient, heart_rate, systolic, diastolic) \
                VALUES ($1, $2, $3, $4, $5)"
            .into(),
        params: vec![
            "1".into(),
            "42".into(),
            "72".into(),
            "120".into(),
            "80".into(),
        ],
        rows: 1,
        success: true,
        duration_us: 42,
        custom: [("ward".to_owned(), "cardiology".to_owned())].into(),
        ..AuditEvent::default()
    };
    for seq in 1..=n {
        event.seq = seq;
        event.timestamp_us += 1;
        let canonical = event.canonical();
        chain = chain_hash(&chain, &leaf_hash(&canonical));
        let mut value = canonical;
        value.extend(chain);
        batch.put(KS_AUDIT, seq.to_be_bytes(), value);
        for (_, key, value) in audit::audit_index_entries(&event).expect("index entries") {
            batch.put(KS_AUDIT_INDEX, key, value);
        }
        if seq.is_multiple_of(20_000) || seq == n {
            if seq == n {
                batch.put(KS_CATALOG, HEAD_KEY, Head { seq, chain }.encode());
            }
            commit(f, std::mem::take(&mut batch));
        }
    }
}

fn measure(kind: &str) {
    let n = 1_000_000;
    let f = fresh(kind);
    fill_ledger(&f, n);
    let size = split(&raw(&f, 1)).0.canonical().len();
    let rounds: u32 = std::env::var("VERIFY_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    for threads in [0, 1] {
        let options = VerifyOptions {
            hash_threads: threads,
            check_indexes: false,
        };
        // The first round warms the caches; the best of the others counts.
        let _ = audit::verify_with(f.backend.as_ref(), options).expect("verify");
        let mut best = f64::MAX;
        for _ in 0..rounds {
            let start = std::time::Instant::now();
            let report = audit::verify_with(f.backend.as_ref(), options).expect("verify");
            best = best.min(start.elapsed().as_secs_f64());
            assert!(report.is_intact(), "{report}");
            assert_eq!(report.events_checked, n);
        }
        println!(
            "{kind}, {threads} hash threads: {n} events of {size} canonical bytes in {best:.3} s \
             = {:.2} M events/s",
            n as f64 / best / 1e6
        );
    }
}

#[test]
#[ignore = "timing; run in release mode"]
fn verify_throughput_memory() {
    measure("memory");
}

#[test]
#[ignore = "timing; run in release mode"]
fn verify_throughput_fjall() {
    measure("fjall");
}

/// Leaves a fjall database with 1M sealed events at `$HELIOSDB_BENCH_DB`, for timing the
/// CLI: `time heliosdb --db $HELIOSDB_BENCH_DB verify`.
#[test]
#[ignore = "writes a benchmark database; set HELIOSDB_BENCH_DB"]
fn build_million_event_database() {
    let Some(path) = std::env::var_os("HELIOSDB_BENCH_DB") else {
        return;
    };
    let backend: Arc<dyn StorageBackend> = Arc::new(FjallBackend::open(&path).expect("fjall"));
    let db = Database::builder()
        .backend(Arc::clone(&backend))
        .open()
        .expect("open");
    let f = Fixture {
        db,
        backend,
        _dir: None,
    };
    fill_ledger(&f, 1_000_000);
    f.db.persist().expect("persist");
}
