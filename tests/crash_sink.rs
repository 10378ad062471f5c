//! The `jsonl-file` sink across crashes: a child process writes on fjall with the sink
//! configured in `heliosdb.toml` (small batches, so a kill often lands mid-write) and is
//! killed with SIGKILL at random moments. After every kill the database reopens, the sink
//! cuts a torn last line and catches up, and the file is one dense export of the whole
//! ledger: it verifies, starts at seq 1, ends at the head, and holds no duplicate.
//!
//! The same for a directory of rotated files (`JsonlFileSink::rotating`, small files so a
//! kill often lands at a rotation): every file verifies on its own, each file's
//! `prev_chain` is the last chain of the file before, and the files read in name order
//! hold every event once, in order, up to the head.
//!
//! The child is this same test binary, re-run with `SINK_CHILD_DIR` (or
//! `ROTATE_CHILD_DIR`) set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use heliosdb_lite::engine::audit;
use heliosdb_lite::{Database, SessionInfo, params};
use rand::Rng;
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "SINK_CHILD_DIR";
const KILLS: usize = 8;
const CONFIG: &str = "[audit]\nasync_buffer_size = 3\n\n[[audit.sinks]]\nkind = \"jsonl-file\"\npath = \"../trail.jsonl\"\n";

/// Runs in the child: insert forever, printing `ack <n>` after each insert returned.
#[test]
fn sink_child_workload() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return; // Only meaningful as the child of `the_sink_file_survives_kill_nine`.
    };
    insert_forever(&Database::open(&dir).expect("child open"), "sink-child");
}

/// The children's workload: insert forever, printing `ack <n>` after each insert returned.
fn insert_forever(db: &Database, user: &str) {
    let mut s = db.session(SessionInfo::new(user));
    s.execute(
        "CREATE TABLE IF NOT EXISTS readings (id INTEGER PRIMARY KEY AUTOINCREMENT, value TEXT)",
        &[],
    )
    .expect("create");
    for n in 0u64.. {
        s.execute(
            "INSERT INTO readings (value) VALUES (?)",
            &params![format!("reading {n} {}", "x".repeat(200))],
        )
        .expect("insert");
        println!("ack {n}");
    }
}

/// Runs `child` (this binary's test of that name, with `env` naming `db_dir`) and kills it
/// at a random moment after it acknowledged at least one insert.
fn kill_child_after_some_acks(child: &str, env: &str, db_dir: &std::path::Path, round: usize) {
    let mut acked = 0;
    common::run_child_and_kill(
        child,
        env,
        db_dir,
        rand::rng().random_range(1..80),
        |line| {
            let ack = common::tagged_number(line, "ack ").is_some();
            acked += usize::from(ack);
            ack
        },
    );
    assert!(acked > 0, "round {round}: the child wrote nothing");
}

/// Waits until the first sink of `db` has caught up with the head and reports no error.
fn wait_for_the_sink(db: &Database, round: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while db.sink_status()[0].lag() > 0 {
        assert!(
            Instant::now() < deadline,
            "round {round}: the sink did not catch up: {:?}",
            db.sink_status()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(db.sink_status()[0].last_error, None, "round {round}");
}

#[test]
fn the_sink_file_survives_kill_nine() {
    if std::env::var(CHILD_ENV).is_ok() || std::env::var(ROTATE_CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let db_dir = dir.path().join("db");
    std::fs::create_dir(&db_dir).expect("db dir");
    std::fs::write(db_dir.join("heliosdb.toml"), CONFIG).expect("config");
    let trail = dir.path().join("trail.jsonl");
    // Rounds whose kill left a torn last line (for the log: kills land anywhere).
    let mut torn = 0;
    for round in 0..KILLS {
        kill_child_after_some_acks("sink_child_workload", CHILD_ENV, &db_dir, round);
        if let Ok(bytes) = std::fs::read(&trail) {
            torn += usize::from(bytes.last().is_some_and(|b| *b != b'\n'));
        }
        let db = Database::open(&db_dir).expect("reopen after kill");
        wait_for_the_sink(&db, round);
        let head = db.audit_head();
        drop(db);

        let text = std::fs::read_to_string(&trail).expect("the sink file");
        let report = audit::verify_export(text.as_bytes()).expect("verify");
        assert!(report.is_intact(), "round {round}: {report:?}");
        assert_eq!(report.first_seq, Some(1), "round {round}");
        assert_eq!(report.last_seq, Some(head.seq), "round {round}");
        assert_eq!(report.last_chain, Some(head.chain), "round {round}");
        assert_eq!(
            text.lines().count() as u64,
            head.seq,
            "round {round}: no duplicates"
        );
    }
    println!("{torn} of {KILLS} kills left a torn line");
}

const ROTATE_CHILD_ENV: &str = "ROTATE_CHILD_DIR";
/// Bytes after which the rotating sink starts a new file: a few events per file.
const ROTATE_BYTES: u64 = 4096;

/// The rotated files' directory, beside the database directory.
fn rotated_dir(db_dir: &std::path::Path) -> std::path::PathBuf {
    db_dir.parent().expect("parent").join("trail")
}

fn open_rotating(db_dir: &std::path::Path) -> Database {
    let db = Database::open(db_dir).expect("open");
    db.attach_sink(Box::new(heliosdb_lite::JsonlFileSink::rotating(
        rotated_dir(db_dir),
        ROTATE_BYTES,
    )))
    .expect("attach");
    db
}

/// Runs in the child: insert forever with the rotating sink, printing `ack <n>`.
#[test]
fn rotate_child_workload() {
    let Ok(dir) = std::env::var(ROTATE_CHILD_ENV) else {
        return; // Only meaningful as the child of `the_rotated_files_survive_kill_nine`.
    };
    insert_forever(&open_rotating(std::path::Path::new(&dir)), "rotate-child");
}

#[test]
fn the_rotated_files_survive_kill_nine() {
    if std::env::var(CHILD_ENV).is_ok() || std::env::var(ROTATE_CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let db_dir = dir.path().join("db");
    std::fs::create_dir(&db_dir).expect("db dir");
    std::fs::write(
        db_dir.join("heliosdb.toml"),
        "[audit]\nasync_buffer_size = 3\n",
    )
    .expect("config");
    for round in 0..KILLS {
        kill_child_after_some_acks("rotate_child_workload", ROTATE_CHILD_ENV, &db_dir, round);
        let db = open_rotating(&db_dir);
        wait_for_the_sink(&db, round);
        let head = db.audit_head();
        drop(db);

        let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(rotated_dir(&db_dir))
            .expect("the rotated directory")
            .map(|entry| entry.expect("entry").path())
            .collect();
        files.sort();
        assert!(!files.is_empty());
        let mut seqs = Vec::new();
        let mut last_chain = None;
        for (i, file) in files.iter().enumerate() {
            let text = std::fs::read_to_string(file).expect("a rotated file");
            if text.is_empty() {
                // A kill right after a rotation created the newest file: it is filled
                // from its name's seq on the next event.
                assert_eq!(i + 1, files.len(), "round {round}: an empty older file");
                continue;
            }
            let report = audit::verify_export(text.as_bytes()).expect("verify");
            assert!(
                report.is_intact(),
                "round {round}: {}: {report:?}",
                file.display()
            );
            // Each file starts where the one before ended.
            let first: serde_json::Value =
                serde_json::from_str(text.lines().next().expect("a line")).expect("json");
            let prev = first["prev_chain"].as_str().expect("prev_chain").to_owned();
            if let Some(last) = &last_chain {
                assert_eq!(
                    &prev,
                    last,
                    "round {round}: {} does not link",
                    file.display()
                );
            }
            for line in text.lines() {
                let line: serde_json::Value = serde_json::from_str(line).expect("json");
                seqs.push(line["seq"].as_u64().expect("seq"));
                last_chain = Some(line["chain"].as_str().expect("chain").to_owned());
            }
        }
        assert_eq!(
            seqs,
            (1..=head.seq).collect::<Vec<_>>(),
            "round {round}: every event once, in order"
        );
        let head_chain: String = head.chain.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(last_chain, Some(head_chain), "round {round}");
        if round + 1 == KILLS {
            assert!(files.len() > 2, "the files rotated: {files:?}");
        }
    }
}
