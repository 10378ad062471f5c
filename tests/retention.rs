//! Retention: pruning the oldest events under a prune anchor keeps every kept event
//! verifiable (chain, proofs, old checkpoints), shrinks the files, survives kill -9, and is
//! refused under a legal hold or lockdown.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{assert_exit, heliosdb, insert_rows, path, stdout};
use heliosdb_lite::checkpoint::{
    Checkpoint, CheckpointSink, SignerKey, Verdict, check, parse_notes,
};
use heliosdb_lite::engine::audit::merkle;
use heliosdb_lite::engine::audit::{
    AuditEvent, EventClass, ProblemKind, PruneBefore, export, ledger, prune, verify_export,
};
use heliosdb_lite::engine::backend::{Durability, StorageBackend, WriteBatch};
use heliosdb_lite::{Database, Error, FjallBackend, RetentionOptions, SessionInfo, params};
use std::path::Path;
use std::time::Duration;

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| {
                    let meta = e.metadata().expect("metadata");
                    if meta.is_dir() {
                        dir_size(&e.path())
                    } else {
                        meta.len()
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn pruned_ledgers_still_verify_prove_and_export() {
    let db = Database::in_memory().unwrap();
    insert_rows(&db, 28); // CREATE, COUNT, 28 INSERTs: 30 events
    let (_, root_5) = (5, db.audit_root_at(5).unwrap());
    let report = db.prune_before(PruneBefore::Seq(11), false).unwrap();
    assert_eq!(
        (report.first_seq, report.pruned_through, report.events),
        (1, 10, 10)
    );
    assert_eq!(report.prune_events, vec![31]);

    let verified = db.verify().unwrap();
    assert!(verified.is_intact(), "{verified}");
    assert_eq!(verified.pruned_through, 10);
    assert_eq!(verified.events_checked, 21);

    let mut s = db.session(SessionInfo::new("auditor"));
    let rows = s
        .query(
            "SELECT MIN(id) AS first, COUNT(*) AS n FROM __audit_log",
            &[],
        )
        .unwrap();
    assert_eq!(rows.get::<i64>(0, "first").unwrap(), 11);
    assert_eq!(rows.get::<i64>(0, "n").unwrap(), 21);
    let prune_event = s
        .query(
            "SELECT class, user, custom FROM __audit_log WHERE operation = 'PRUNE'",
            &[],
        )
        .unwrap();
    assert_eq!(prune_event.get::<String>(0, "class").unwrap(), "SYSTEM");
    let custom: String = prune_event.get(0, "custom").unwrap();
    assert!(custom.contains(r#""pruned_through":"10""#), "{custom}");
    assert!(custom.contains(r#""anchor_first_kept":"11""#), "{custom}");

    // The tree still answers for sizes inside the pruned prefix and proves kept events.
    let (size, root) = db.audit_root();
    assert_eq!(db.audit_root_at(5).unwrap(), root_5);
    let proof = db.consistency_proof(5, size).unwrap();
    assert!(merkle::verify_consistency(5, size, &root_5, &root, &proof));
    let leaf = db
        .backend()
        .snapshot()
        .unwrap()
        .get(ledger::KS_AUDIT, &ledger::record_key(11))
        .unwrap()
        .map(|v| ledger::leaf_hash(ledger::split_record(&v).unwrap().0))
        .unwrap();
    let proof = db.inclusion_proof(11, size).unwrap();
    assert!(merkle::verify_inclusion(10, size, &leaf, &proof, &root));

    // An export starts from the anchor and verifies offline.
    let mut out = Vec::new();
    let written = export(db.backend(), None, None, &mut out).unwrap();
    assert_eq!(written, db.audit_head().seq - 10, "every kept event");
    let report = verify_export(&out[..]).unwrap();
    assert!(report.is_intact(), "{report:?}");

    // Pruning again goes on from the anchor.
    let again = db.prune_before(PruneBefore::Seq(21), false).unwrap();
    assert_eq!((again.first_seq, again.events), (11, 10));
    assert!(db.verify().unwrap().is_intact());
    assert_eq!(db.prune_anchor().unwrap().unwrap().first_kept, 21);
}

#[test]
fn pruning_stops_at_the_newest_checkpoint_and_old_checkpoints_still_verify() {
    let dir = tempfile::tempdir().unwrap();
    let key = SignerKey::generate("retention").unwrap();
    let file = dir.path().join("checkpoints.txt");
    let db_dir = dir.path().join("db");
    {
        let db = Database::open(&db_dir).unwrap();
        db.attach_sink(Box::new(CheckpointSink::new(
            key.clone(),
            &file,
            8,
            Duration::from_secs(3600),
        )))
        .unwrap();
        insert_rows(&db, 24); // 26 events: checkpoints at 8, 16, 24, then 26 on close
    }
    let db = Database::open(&db_dir).unwrap();
    let dry = db.prune_before(PruneBefore::Seq(22), true).unwrap();
    assert!(dry.dry_run);
    assert_eq!((dry.requested_through, dry.pruned_through), (21, 16));
    assert!(
        dry.limited_by.as_deref().unwrap().contains("16 events"),
        "{dry:?}"
    );
    assert_eq!(
        db.prune_anchor().unwrap(),
        None,
        "a dry run changes nothing"
    );

    let done = db.prune_before(PruneBefore::Seq(22), false).unwrap();
    assert_eq!(done.pruned_through, 16);
    assert!(db.verify().unwrap().is_intact());
    drop(db);

    // Every checkpoint signed before the prune still matches the pruned ledger.
    let text = std::fs::read_to_string(&file).unwrap();
    let list: Vec<Checkpoint> = parse_notes(&text)
        .unwrap()
        .iter()
        .map(|note| Checkpoint::open(&note.to_string(), &key.verifier()).unwrap())
        .collect();
    assert_eq!(
        list.iter().map(|c| c.size).collect::<Vec<_>>(),
        [8, 16, 24, 26]
    );
    let backend = FjallBackend::open(&db_dir).unwrap();
    let verdicts = check(&backend, &list).unwrap();
    assert!(verdicts.iter().all(Verdict::is_match), "{verdicts:?}");
}

#[test]
fn legal_hold_and_lockdown_refuse_every_prune() {
    let db = Database::in_memory().unwrap();
    insert_rows(&db, 5);
    db.set_legal_hold(Some("matter 2026-117"), "counsel")
        .unwrap();
    let error = db.prune_before(PruneBefore::Seq(3), false).unwrap_err();
    assert!(matches!(error, Error::RetentionRefused(_)), "{error}");
    assert!(error.to_string().contains("matter 2026-117"), "{error}");
    let hold = db.legal_hold().unwrap().unwrap();
    assert_eq!(
        (hold.reason.as_str(), hold.by.as_str()),
        ("matter 2026-117", "counsel")
    );
    db.set_legal_hold(None, "counsel").unwrap();
    assert_eq!(
        db.prune_before(PruneBefore::Seq(3), false).unwrap().events,
        2
    );

    let mut s = db.session(SessionInfo::new("auditor"));
    let ops = s
        .query(
            "SELECT operation FROM __audit_log WHERE class = 'SYSTEM' ORDER BY id",
            &[],
        )
        .unwrap();
    let ops: Vec<String> = (0..ops.len())
        .map(|i| ops.get(i, "operation").unwrap())
        .collect();
    assert_eq!(ops, ["LEGAL_HOLD_ON", "LEGAL_HOLD_OFF", "PRUNE"]);

    let locked = Database::builder()
        .in_memory()
        .retention(RetentionOptions {
            lockdown: true,
            ..RetentionOptions::default()
        })
        .open()
        .unwrap();
    insert_rows(&locked, 3);
    let error = locked.prune_before(PruneBefore::Seq(3), true).unwrap_err();
    assert!(error.to_string().contains("lockdown"), "{error}");
}

#[test]
fn the_cli_prunes_holds_and_refuses_under_lockdown() {
    let dir = tempfile::tempdir().unwrap();
    let db_dir = dir.path().join("db");
    {
        let db = Database::open(&db_dir).unwrap();
        insert_rows(&db, 10);
    }
    let db_path = path(&db_dir);
    let held = heliosdb(&[
        "--db", db_path, "--user", "counsel", "audit", "hold", "on", "--reason", "case 9",
    ]);
    assert_exit(&held, 0);
    assert!(
        stdout(&held).contains("legal hold: on"),
        "{}",
        stdout(&held)
    );
    let refused = heliosdb(&["--db", db_path, "audit", "prune", "--before-seq", "5"]);
    assert_exit(&refused, 1);
    assert_exit(&heliosdb(&["--db", db_path, "audit", "hold", "off"]), 0);
    let dry = heliosdb(&[
        "--db",
        db_path,
        "audit",
        "prune",
        "--before-seq",
        "5",
        "--dry-run",
    ]);
    assert_exit(&dry, 0);
    assert!(
        stdout(&dry).contains("would prune 4 events"),
        "{}",
        stdout(&dry)
    );
    let done = heliosdb(&["--db", db_path, "audit", "prune", "--older-than", "0s"]);
    assert_exit(&done, 0);
    assert!(stdout(&done).contains("pruned"), "{}", stdout(&done));
    assert_exit(&heliosdb(&["--db", db_path, "verify"]), 0);

    std::fs::write(
        db_dir.join("heliosdb.toml"),
        "[audit]\naudit_trail_lockdown = true\n",
    )
    .unwrap();
    let locked = heliosdb(&["--db", db_path, "audit", "prune", "--older-than", "0s"]);
    assert_exit(&locked, 1);
    assert!(
        String::from_utf8_lossy(&locked.stderr).contains("lockdown"),
        "{}",
        String::from_utf8_lossy(&locked.stderr)
    );
}

#[test]
fn pruning_returns_disk_space() {
    let dir = tempfile::tempdir().unwrap();
    let db_dir = dir.path().join("db");
    {
        let db = Database::open(&db_dir).unwrap();
        let mut s = db.session(SessionInfo::new("loader"));
        s.execute(
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)",
            &[],
        )
        .unwrap();
        // Each statement's text is long, so the audit trail dominates the files.
        let padding = "p".repeat(1500);
        for id in 0..4000_i64 {
            s.execute(
                &format!("INSERT INTO notes VALUES ($1, '{padding}') -- {id}"),
                &params![id],
            )
            .unwrap();
        }
        s.execute("DELETE FROM notes", &[]).unwrap();
        db.backend()
            .reclaim(&[ledger::KS_AUDIT, ledger::KS_AUDIT_INDEX, "rows"])
            .unwrap();
    }
    let before = dir_size(&db_dir);
    {
        let db = Database::open(&db_dir).unwrap();
        let head = db.audit_head().seq;
        let report = db.prune_before(PruneBefore::Seq(head - 10), false).unwrap();
        assert!(report.events > 3990, "{report:?}");
        assert!(db.verify().unwrap().is_intact());
    }
    let after = dir_size(&db_dir);
    assert!(
        after * 3 < before,
        "the directory went from {before} to {after} bytes"
    );
}

#[test]
fn automatic_pruning_applies_retention_days_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let db_dir = dir.path().join("db");
    drop(Database::open(&db_dir).unwrap());
    // Ten events recorded 40 days ago, sealed by hand, then today's.
    {
        let backend = FjallBackend::open(&db_dir).unwrap();
        let snapshot = backend.snapshot().unwrap();
        let id: [u8; 16] = snapshot
            .get("catalog", ledger::DATABASE_ID_KEY)
            .unwrap()
            .unwrap()
            .try_into()
            .unwrap();
        let head = ledger::load_head(&*snapshot, &id).unwrap();
        drop(snapshot);
        let long_ago = heliosdb_lite::chrono::Utc::now().timestamp_micros() - 40 * 86_400_000_000;
        let mut events: Vec<AuditEvent> = (0..10)
            .map(|i| AuditEvent {
                timestamp_us: long_ago + i,
                database_id: id,
                user: "old".into(),
                class: EventClass::App,
                operation: "OLD".into(),
                success: true,
                ..AuditEvent::default()
            })
            .collect();
        let mut batch = WriteBatch::new();
        ledger::seal(head, &mut events, &mut batch).unwrap();
        backend.commit(batch, Durability::Sync).unwrap();
    }
    {
        let db = Database::open(&db_dir).unwrap();
        insert_rows(&db, 3);
        assert_eq!(db.prune_anchor().unwrap(), None, "no retention configured");
    }
    std::fs::write(
        db_dir.join("heliosdb.toml"),
        "[audit]\nretention_days = 30\nauto_prune = true\n",
    )
    .unwrap();
    let db = Database::open(&db_dir).unwrap();
    let anchor = db.prune_anchor().unwrap().expect("pruned at open");
    assert_eq!(anchor.first_kept, 11);
    assert!(db.verify().unwrap().is_intact());
}

#[test]
fn a_start_cut_without_pruning_or_a_forged_anchor_is_detected() {
    let db = Database::in_memory().unwrap();
    insert_rows(&db, 10);
    db.prune_before(PruneBefore::Seq(4), false).unwrap();
    assert!(db.verify().unwrap().is_intact());
    // Move the anchor forward and delete what it now hides: no PRUNE event states it.
    let snapshot = db.backend().snapshot().unwrap();
    let mut anchor = prune::load_anchor(&*snapshot).unwrap().unwrap();
    let chain_of_5 = ledger::split_record(
        &snapshot
            .get(ledger::KS_AUDIT, &ledger::record_key(5))
            .unwrap()
            .unwrap(),
    )
    .unwrap()
    .1;
    drop(snapshot);
    anchor.first_kept = 6;
    anchor.chain_before = chain_of_5;
    anchor.frontier = db
        .backend()
        .snapshot()
        .map(|s| {
            heliosdb_lite::engine::audit::tree::frontier_at(&*s, 5, db.audit_root().0).unwrap()
        })
        .unwrap();
    let mut batch = WriteBatch::new();
    batch.put("catalog", prune::ANCHOR_KEY, anchor.encode());
    batch.delete(ledger::KS_AUDIT, ledger::record_key(4).to_vec());
    batch.delete(ledger::KS_AUDIT, ledger::record_key(5).to_vec());
    db.backend().commit(batch, Durability::Sync).unwrap();
    let report = heliosdb_lite::engine::audit::verify_with(
        db.backend(),
        heliosdb_lite::engine::audit::VerifyOptions {
            check_indexes: false,
            ..Default::default()
        },
    )
    .unwrap();
    let problem = report.problem.expect("detected");
    assert_eq!(problem.seq, 6);
    assert!(
        matches!(problem.kind, ProblemKind::PruneAnchor(_)),
        "{problem}"
    );
}

const CHILD_ENV: &str = "RETENTION_CHILD_DIR";

/// Runs in the child: writes and prunes forever, printing `ack <seq>` after each insert
/// returned and `pruned <first kept>` after each prune.
#[test]
fn retention_child_workload() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let db = Database::open(&dir).expect("child open");
    let mut s = db.session(SessionInfo::new("child"));
    s.execute(
        "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT)",
        &[],
    )
    .expect("create");
    for n in 0u64.. {
        s.execute("INSERT INTO t (v) VALUES (?)", &params![format!("v{n}")])
            .expect("insert");
        println!("ack {}", db.audit_head().seq);
        if n % 7 == 3 {
            let head = db.audit_head().seq;
            let report = db
                .prune_before(PruneBefore::Seq(head.saturating_sub(5).max(1)), false)
                .expect("prune");
            println!("pruned {}", report.pruned_through + 1);
        }
    }
}

#[test]
fn prunes_survive_kill_nine() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db_dir = dir.path().join("db");
    std::fs::create_dir(&db_dir).unwrap();
    // A checkpoint every 4 events: prunes stop at the newest checkpoint.
    let key = SignerKey::generate("crash").unwrap();
    key.write_files(dir.path().join("keys/crash")).unwrap();
    std::fs::write(
        db_dir.join("heliosdb.toml"),
        "[[audit.sinks]]\nkind = \"checkpoint\"\nkey = \"../keys/crash.key\"\npath = \"../checkpoints.txt\"\nevery_events = 4\n",
    )
    .unwrap();
    let mut rng = rand::rng();
    for round in 0..5 {
        let mut acked = 0i64;
        common::run_child_and_kill(
            "retention_child_workload",
            CHILD_ENV,
            &db_dir,
            rand::Rng::random_range(&mut rng, 5..60),
            |line| match common::tagged_number(line, "ack ") {
                Some(seq) => {
                    acked = acked.max(seq);
                    true
                }
                None => false,
            },
        );
        let db = Database::open(&db_dir).expect("reopen after kill");
        let report = db.verify().unwrap();
        assert!(report.is_intact(), "round {round}: {report}");
        // Every checkpoint signed so far still matches, pruned prefix or not.
        let text = std::fs::read_to_string(dir.path().join("checkpoints.txt")).unwrap_or_default();
        let list: Vec<Checkpoint> = parse_notes(&text)
            .unwrap()
            .iter()
            .map(|note| Checkpoint::open(&note.to_string(), &key.verifier()).unwrap())
            .collect();
        let verdicts = check(db.backend(), &list).unwrap();
        assert!(
            verdicts.iter().all(Verdict::is_match),
            "round {round}: {verdicts:?}"
        );
        assert!(
            db.audit_head().seq as i64 >= acked,
            "round {round}: acknowledged event {acked} lost (head {})",
            db.audit_head().seq
        );
    }
}
