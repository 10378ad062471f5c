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
    assert!(
        common::stderr(&refused)
            .contains("a legal hold is placed (case 9, by counsel): pruning is suspended"),
        "{}",
        common::stderr(&refused)
    );
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

/// Seals `n` APP events recorded `days` days ago at the head of the closed database in
/// `db_dir`, as a device whose trail goes back that far would hold.
fn seal_old_events(db_dir: &Path, days: i64, n: i64) {
    let backend = FjallBackend::open(db_dir).unwrap();
    let snapshot = backend.snapshot().unwrap();
    let id: [u8; 16] = snapshot
        .get("catalog", ledger::DATABASE_ID_KEY)
        .unwrap()
        .unwrap()
        .try_into()
        .unwrap();
    let head = ledger::load_head(&*snapshot, &id).unwrap();
    drop(snapshot);
    let long_ago = heliosdb_lite::chrono::Utc::now().timestamp_micros() - days * 86_400_000_000;
    let mut events: Vec<AuditEvent> = (0..n)
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
    backend.commit(&batch, Durability::Sync).unwrap();
}

#[test]
fn automatic_pruning_applies_retention_days_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let db_dir = dir.path().join("db");
    drop(Database::open(&db_dir).unwrap());
    // Ten events recorded 40 days ago, sealed by hand, then today's.
    seal_old_events(&db_dir, 40, 10);
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
    db.backend().commit(&batch, Durability::Sync).unwrap();
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

/// The file beside the database directory the parent writes each round's seed to.
fn seed_file(db_dir: &Path) -> std::path::PathBuf {
    db_dir.with_file_name("child-seed")
}

/// Runs in the child: first prunes all it may (so a round under a legal hold always
/// reports its refusal), then writes and prunes before random seqs at random points
/// (seeded by the parent) until killed. Prints `ack <seq>` after each insert returned,
/// `pruned <first kept>` after each prune that removed events and `refused` after each
/// prune refused.
#[test]
fn retention_child_workload() {
    use rand::{Rng, SeedableRng};
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let seed: u64 = std::fs::read_to_string(seed_file(Path::new(&dir)))
        .expect("seed")
        .trim()
        .parse()
        .expect("seed number");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let db = Database::open(&dir).expect("child open");
    let mut s = db.session(SessionInfo::new("child"));
    s.execute(
        "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT)",
        &[],
    )
    .expect("create");
    // Prunes before a random seq, or everything allowed when `all`.
    let prune = |rng: &mut rand::rngs::StdRng, all: bool| {
        let first = db
            .prune_anchor()
            .expect("anchor")
            .map_or(1, |a| a.first_kept);
        let head = db.audit_head().seq;
        let target = if all {
            head + 1
        } else {
            rng.random_range(first..=head + 1)
        };
        match db.prune_before(PruneBefore::Seq(target), false) {
            Ok(report) if report.events > 0 => println!("pruned {}", report.pruned_through + 1),
            Ok(_) => println!("nothing to prune"),
            Err(Error::RetentionRefused(_)) => println!("refused"),
            Err(error) => panic!("prune: {error}"),
        }
    };
    prune(&mut rng, true);
    for n in 0u64.. {
        s.execute("INSERT INTO t (v) VALUES (?)", &params![format!("v{n}")])
            .expect("insert");
        println!("ack {}", db.audit_head().seq);
        if rng.random_range(0..5) == 0 {
            prune(&mut rng, false);
        }
    }
}

#[test]
fn prunes_survive_kill_nine() {
    use rand::{Rng, SeedableRng};
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let seed: u64 = std::env::var("RETENTION_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    eprintln!("prunes_survive_kill_nine: RETENTION_SEED={seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
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
    let mut acked: Vec<u64> = Vec::new();
    let mut first_kept = 1u64;
    let mut any_pruned = false;
    for round in 0..6 {
        // Rounds 2 and 3 run under a legal hold, placed and lifted between kills.
        let held = (2..4).contains(&round);
        std::fs::write(seed_file(&db_dir), rng.random::<u64>().to_string()).unwrap();
        let (mut pruned, mut refused) = (Vec::new(), 0);
        common::run_child_and_kill(
            "retention_child_workload",
            CHILD_ENV,
            &db_dir,
            rng.random_range(5..30),
            |line| {
                if let Some(kept) = common::tagged_number(line, "pruned ") {
                    pruned.push(kept as u64);
                } else if line.ends_with("refused") {
                    refused += 1;
                }
                match common::tagged_number(line, "ack ") {
                    Some(seq) => {
                        acked.push(seq as u64);
                        true
                    }
                    None => false,
                }
            },
        );
        let context = format!("seed {seed}, round {round}");
        let db = Database::open(&db_dir).expect("reopen after kill");
        let report = db.verify().unwrap();
        assert!(report.is_intact(), "{context}: {report}");
        if held {
            assert!(pruned.is_empty(), "{context}: pruned under a legal hold");
            assert!(refused > 0, "{context}: the first prune was not refused");
        } else {
            assert_eq!(refused, 0, "{context}: refused without a hold");
        }
        any_pruned |= !pruned.is_empty();
        let anchor = db.prune_anchor().unwrap();
        if any_pruned {
            assert!(
                anchor.is_some(),
                "{context}: a prune was reported, no anchor"
            );
        }
        let now_kept = anchor.as_ref().map_or(1, |a| a.first_kept);
        assert!(
            now_kept >= first_kept,
            "{context}: the anchor moved back from {first_kept} to {now_kept}"
        );
        if let Some(&reported) = pruned.iter().max() {
            assert!(
                now_kept >= reported,
                "{context}: a reported prune to {reported} was lost (anchor {now_kept})"
            );
        }
        first_kept = now_kept;
        // Only events under a signed checkpoint were pruned.
        let newest = db.latest_checkpoint().unwrap().map_or(0, |c| c.size);
        assert!(
            first_kept - 1 <= newest,
            "{context}: pruned through {} past the newest checkpoint {newest}",
            first_kept - 1
        );
        // Every acknowledged event after the anchor is still there.
        let snapshot = db.backend().snapshot().unwrap();
        for &seq in acked.iter().filter(|&&seq| seq >= first_kept) {
            assert!(
                snapshot
                    .get(ledger::KS_AUDIT, &ledger::record_key(seq))
                    .unwrap()
                    .is_some(),
                "{context}: acknowledged event {seq} after the anchor {first_kept} is lost"
            );
        }
        drop(snapshot);
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
            "{context}: {verdicts:?}"
        );
        // Place the hold before round 2, lift it before round 4.
        if round == 1 {
            db.set_legal_hold(Some("crash case"), "counsel").unwrap();
        } else if round == 3 {
            db.set_legal_hold(None, "counsel").unwrap();
        }
    }
    assert!(any_pruned, "seed {seed}: no prune ever happened");
}

#[test]
fn pruning_goes_chunk_by_chunk_each_with_its_anchor() {
    let db = Database::in_memory().unwrap();
    insert_rows(&db, 23); // 25 events
    let dry = db.prune_in_chunks(PruneBefore::Seq(21), true, 7).unwrap();
    assert_eq!((dry.pruned_through, dry.events), (20, 20));
    assert!(dry.prune_events.is_empty());
    let report = db.prune_in_chunks(PruneBefore::Seq(21), false, 7).unwrap();
    assert_eq!(
        (report.first_seq, report.pruned_through, report.events),
        (1, 20, 20)
    );
    assert_eq!(
        report.prune_events,
        vec![26, 27, 28],
        "one PRUNE event per chunk"
    );
    let anchor = db.prune_anchor().unwrap().unwrap();
    assert_eq!(anchor.first_kept, 21);
    assert_eq!(anchor.frontier.root(), db.audit_root_at(20).unwrap());
    let verified = db.verify().unwrap();
    assert!(verified.is_intact(), "{verified}");
    assert_eq!(verified.pruned_through, 20);

    let mut s = db.session(SessionInfo::new("auditor"));
    let rows = s
        .query(
            "SELECT custom FROM __audit_log WHERE operation = 'PRUNE' ORDER BY id",
            &[],
        )
        .unwrap();
    let ranges: Vec<String> = (0..rows.len())
        .map(|i| {
            let custom: serde_json::Value =
                serde_json::from_str(&rows.get::<String>(i, "custom").unwrap()).unwrap();
            format!(
                "{}..={} kept {}",
                custom["pruned_from"].as_str().unwrap(),
                custom["pruned_through"].as_str().unwrap(),
                custom["anchor_first_kept"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        ranges,
        ["1..=7 kept 8", "8..=14 kept 15", "15..=20 kept 21"]
    );
}

/// A database directory whose heliosdb.toml attaches a checkpoint sink (signing every
/// `every` events) and a jsonl-file sink.
fn with_sinks(dir: &Path, every: u64) -> std::path::PathBuf {
    let db_dir = dir.join("db");
    std::fs::create_dir(&db_dir).unwrap();
    let key = SignerKey::generate("prune").unwrap();
    key.write_files(dir.join("keys/prune")).unwrap();
    std::fs::write(
        db_dir.join("heliosdb.toml"),
        format!(
            "[[audit.sinks]]\nkind = \"checkpoint\"\nkey = \"../keys/prune.key\"\npath = \"../checkpoints.txt\"\nevery_events = {every}\nevery_seconds = 86400\n\n[[audit.sinks]]\nkind = \"jsonl-file\"\npath = \"../audit.jsonl\"\n"
        ),
    )
    .unwrap();
    db_dir
}

#[test]
fn the_cli_prunes_up_to_the_newest_checkpoint_with_sinks_attached() {
    let dir = tempfile::tempdir().unwrap();
    let db_dir = with_sinks(dir.path(), 5);
    let db_path = path(&db_dir);
    let mut script = String::from("CREATE TABLE t (id INTEGER PRIMARY KEY);");
    for id in 0..11 {
        script.push_str(&format!(" INSERT INTO t VALUES ({id});"));
    }
    assert_exit(&heliosdb(&["--db", db_path, "sql", &script]), 0);
    // Checkpoints at 5 and 10, then one at the head when the database closed.
    let newest = {
        let db = Database::open(&db_dir).unwrap();
        db.latest_checkpoint().unwrap().unwrap().size
    };
    assert!(newest >= 12, "newest checkpoint {newest}");

    let dry = heliosdb(&[
        "--db",
        db_path,
        "audit",
        "prune",
        "--older-than",
        "0s",
        "--dry-run",
    ]);
    assert_exit(&dry, 0);
    let expected = format!("{newest} events: seq 1..={newest}");
    assert!(
        stdout(&dry).contains(&format!("would prune {expected}")),
        "{}",
        stdout(&dry)
    );
    let done = heliosdb(&["--db", db_path, "audit", "prune", "--older-than", "0s"]);
    assert_exit(&done, 0);
    assert!(
        stdout(&done).contains(&format!("pruned {expected}")),
        "{}",
        stdout(&done)
    );
    let db = Database::open(&db_dir).unwrap();
    assert_eq!(db.prune_anchor().unwrap().unwrap().first_kept, newest + 1);
    assert!(db.verify().unwrap().is_intact());
}

#[test]
fn an_attached_checkpoint_sink_without_a_checkpoint_yet_prunes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let key = SignerKey::generate("none-yet").unwrap();
    let db = Database::open(dir.path().join("db")).unwrap();
    db.attach_sink(Box::new(CheckpointSink::new(
        key,
        dir.path().join("checkpoints.txt"),
        1000,
        Duration::from_secs(3600),
    )))
    .unwrap();
    insert_rows(&db, 10);
    assert_eq!(db.checkpoints().unwrap(), Vec::new());
    for dry_run in [true, false] {
        let report = db.prune_before(PruneBefore::Seq(11), dry_run).unwrap();
        assert_eq!(report.events, 0, "{report:?}");
        let why = report.limited_by.unwrap();
        assert!(
            why.contains("no signed checkpoint is stored yet (a checkpoint sink is attached)"),
            "{why}"
        );
    }
    assert_eq!(db.prune_anchor().unwrap(), None);
}

#[test]
fn require_checkpoints_prunes_nothing_before_the_first_checkpoint() {
    let db = Database::builder()
        .in_memory()
        .retention(RetentionOptions {
            require_checkpoints: true,
            ..RetentionOptions::default()
        })
        .open()
        .unwrap();
    insert_rows(&db, 10);
    let report = db.prune_before(PruneBefore::Seq(11), false).unwrap();
    assert_eq!(report.events, 0, "{report:?}");
    assert!(
        report
            .limited_by
            .as_deref()
            .unwrap()
            .contains("audit.require_checkpoints = true"),
        "{report:?}"
    );
    assert_eq!(db.prune_anchor().unwrap(), None);
}

#[test]
fn a_legal_hold_in_the_configuration_refuses_api_and_cli_prunes() {
    let dir = tempfile::tempdir().unwrap();
    let db_dir = dir.path().join("db");
    {
        let db = Database::open(&db_dir).unwrap();
        insert_rows(&db, 5);
    }
    std::fs::write(db_dir.join("heliosdb.toml"), "[audit]\nlegal_hold = true\n").unwrap();
    let message = "audit.legal_hold = true in the configuration: pruning is suspended";
    {
        let db = Database::open(&db_dir).unwrap();
        let error = db.prune_before(PruneBefore::Seq(3), false).unwrap_err();
        assert!(matches!(error, Error::RetentionRefused(_)), "{error}");
        assert!(error.to_string().contains(message), "{error}");
        let error = db.prune_before(PruneBefore::Seq(3), true).unwrap_err();
        assert!(error.to_string().contains(message), "{error}");
    }
    let refused = heliosdb(&["--db", path(&db_dir), "audit", "prune", "--before-seq", "3"]);
    assert_exit(&refused, 1);
    assert!(
        common::stderr(&refused).contains(message),
        "{}",
        common::stderr(&refused)
    );
    let shown = heliosdb(&["--db", path(&db_dir), "config", "show"]);
    assert_exit(&shown, 0);
    assert!(
        stdout(&shown).contains("legal_hold = true"),
        "{}",
        stdout(&shown)
    );
    assert_eq!(
        Database::open(&db_dir).unwrap().prune_anchor().unwrap(),
        None
    );
}

#[test]
fn config_show_names_a_legal_hold_placed_on_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let db_dir = dir.path().join("db");
    {
        let db = Database::open(&db_dir).unwrap();
        insert_rows(&db, 2);
    }
    let shown = heliosdb(&["--db", path(&db_dir), "config", "show"]);
    assert_exit(&shown, 0);
    assert!(
        !stdout(&shown).contains("legal hold is active"),
        "{}",
        stdout(&shown)
    );
    assert_exit(
        &heliosdb(&[
            "--db",
            path(&db_dir),
            "--user",
            "counsel",
            "audit",
            "hold",
            "on",
            "--reason",
            "matter 77",
        ]),
        0,
    );
    let shown = heliosdb(&["--db", path(&db_dir), "config", "show"]);
    assert_exit(&shown, 0);
    let text = stdout(&shown);
    let line = text
        .lines()
        .skip_while(|l| !l.starts_with("legal_hold = false"))
        .nth(1)
        .unwrap_or_default();
    assert!(
        line.starts_with("# a legal hold is active since ")
            && line.ends_with("by counsel: matter 77"),
        "{text}"
    );
}

#[test]
fn soc2_devices_that_opt_in_prune_after_90_days() {
    let dir = tempfile::tempdir().unwrap();
    let db_dir = dir.path().join("db");
    drop(Database::open(&db_dir).unwrap());
    seal_old_events(&db_dir, 120, 6); // seqs 1..=6: past 90 days
    seal_old_events(&db_dir, 80, 4); // seqs 7..=10: inside 90 days
    std::fs::write(
        db_dir.join("heliosdb.toml"),
        "[audit]\npreset = \"soc2\"\nauto_prune = true\n",
    )
    .unwrap();
    let db = Database::open(&db_dir).unwrap();
    assert_eq!(db.options().retention.retention_days, 90);
    let anchor = db.prune_anchor().unwrap().expect("pruned at open");
    assert_eq!(
        anchor.first_kept, 7,
        "events older than 90 days go, newer stay"
    );
    assert!(db.verify().unwrap().is_intact());
    let mut s = db.session(SessionInfo::new("auditor"));
    let rows = s
        .query(
            "SELECT COUNT(*) AS n FROM __audit_log WHERE operation = 'OLD'",
            &[],
        )
        .unwrap();
    assert_eq!(rows.get::<i64>(0, "n").unwrap(), 4);
}

#[test]
fn automatic_pruning_runs_while_the_database_stays_open() {
    let dir = tempfile::tempdir().unwrap();
    let db_dir = dir.path().join("db");
    drop(Database::open(&db_dir).unwrap());
    seal_old_events(&db_dir, 40, 5); // seqs 1..=5
    {
        let db = Database::open(&db_dir).unwrap();
        db.set_legal_hold(Some("matter 5"), "counsel").unwrap(); // seq 6
    }
    let db = Database::builder()
        .path(&db_dir)
        .retention(RetentionOptions {
            retention_days: 30,
            auto_prune: true,
            auto_prune_interval: Duration::from_millis(50),
            ..RetentionOptions::default()
        })
        .open()
        .unwrap();
    // Under the hold, the run at open and the periodic runs skip, and say so.
    let status = db.retention_status().expect("the run at open");
    assert!(
        status.skipped.as_deref().unwrap().contains("matter 5"),
        "{status:?}"
    );
    assert_eq!(db.prune_anchor().unwrap(), None);
    let mut s = db.session(SessionInfo::new("auditor"));
    let skipped = s
        .query(
            "SELECT query FROM __audit_log WHERE operation = 'AUTO_PRUNE_SKIPPED'",
            &[],
        )
        .unwrap();
    assert_eq!(skipped.len(), 1, "recorded once, not on every run");
    assert!(
        skipped
            .get::<String>(0, "query")
            .unwrap()
            .contains("legal hold")
    );

    db.set_legal_hold(None, "counsel").unwrap();
    // The next periodic run prunes, and its status replaces the skip.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while db.prune_anchor().unwrap().is_none() || db.retention_status().unwrap().skipped.is_some() {
        assert!(std::time::Instant::now() < deadline, "no periodic prune");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(db.prune_anchor().unwrap().unwrap().first_kept, 6);
    assert!(db.verify().unwrap().is_intact());
    assert_eq!(db.retention_status().unwrap().error, None);
}

/// A sink that can never say where it stands: its destination is unreadable.
struct Unreadable;

impl heliosdb_lite::AuditSink for Unreadable {
    fn name(&self) -> &str {
        "unreadable"
    }

    fn resume_after(
        &mut self,
        _context: &heliosdb_lite::SinkContext,
    ) -> Result<u64, heliosdb_lite::SinkError> {
        Err("its destination cannot be read".into())
    }

    fn deliver(
        &mut self,
        _prev: &[u8; 32],
        _events: &[heliosdb_lite::SealedEvent],
    ) -> Result<(), heliosdb_lite::SinkError> {
        Ok(())
    }
}

#[test]
fn a_sink_that_failed_to_start_stops_the_prune_and_is_named() {
    let db = Database::in_memory().unwrap();
    db.attach_sink(Box::new(Unreadable)).unwrap();
    insert_rows(&db, 10);
    let report = db.prune_before(PruneBefore::Seq(11), false).unwrap();
    assert_eq!(report.events, 0, "{report:?}");
    let why = report.limited_by.unwrap();
    // Named at once with its error, not after waiting out the patience for sinks.
    assert!(
        why.contains(
            "audit sink unreadable has not said where it stands (last error: resume: its destination cannot be read)"
        ),
        "{why}"
    );
    assert_eq!(db.prune_anchor().unwrap(), None);
}
