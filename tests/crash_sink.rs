//! The `jsonl-file` sink across crashes: a child process writes on fjall with the sink
//! configured in `heliosdb.toml` (small batches, so a kill often lands mid-write) and is
//! killed with SIGKILL at random moments. After every kill the database reopens, the sink
//! cuts a torn last line and catches up, and the file is one dense export of the whole
//! ledger: it verifies, starts at seq 1, ends at the head, and holds no duplicate.
//!
//! The child is this same test binary, re-run with `SINK_CHILD_DIR` set.
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
    let db = Database::open(&dir).expect("child open");
    let mut s = db.session(SessionInfo::new("sink-child"));
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

#[test]
fn the_sink_file_survives_kill_nine() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let db_dir = dir.path().join("db");
    std::fs::create_dir(&db_dir).expect("db dir");
    std::fs::write(db_dir.join("heliosdb.toml"), CONFIG).expect("config");
    let trail = dir.path().join("trail.jsonl");
    let mut rng = rand::rng();
    // Rounds whose kill left a torn last line (for the log: kills land anywhere).
    let mut torn = 0;
    for round in 0..KILLS {
        let mut acked = 0;
        common::run_child_and_kill(
            "sink_child_workload",
            CHILD_ENV,
            &db_dir,
            rng.random_range(1..80),
            |line| {
                let ack = common::tagged_number(line, "ack ").is_some();
                acked += usize::from(ack);
                ack
            },
        );
        assert!(acked > 0, "round {round}: the child wrote nothing");

        if let Ok(bytes) = std::fs::read(&trail) {
            torn += usize::from(bytes.last().is_some_and(|b| *b != b'\n'));
        }
        let db = Database::open(&db_dir).expect("reopen after kill");
        let deadline = Instant::now() + Duration::from_secs(30);
        while db.sink_status()[0].lag() > 0 {
            assert!(
                Instant::now() < deadline,
                "round {round}: the sink did not catch up: {:?}",
                db.sink_status()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let status = db.sink_status().remove(0);
        assert_eq!(status.last_error, None, "round {round}");
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
