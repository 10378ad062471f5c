//! Follower sinks through the public `AuditSink` trait, as a user would write one: every
//! event in order whatever the sink does — fail, stall, start late — and commits never
//! wait for it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use heliosdb_lite::engine::audit;
use heliosdb_lite::{AuditSink, Database, SealedEvent, SinkContext, SinkError};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a test sink has accepted: (seq, chain hash).
type Accepted = Arc<Mutex<Vec<(u64, [u8; 32])>>>;

/// Fails its first `failures` deliveries, then accepts; optionally waits for a go-ahead
/// before each delivery.
struct TestSink {
    accepted: Accepted,
    failures: u32,
    gate: Option<mpsc::Receiver<()>>,
    start_after: Option<u64>,
}

impl TestSink {
    fn new(accepted: &Accepted) -> Self {
        TestSink {
            accepted: Arc::clone(accepted),
            failures: 0,
            gate: None,
            start_after: None,
        }
    }
}

impl AuditSink for TestSink {
    fn name(&self) -> &str {
        "test"
    }

    fn resume_after(&mut self, _context: &SinkContext) -> Result<u64, SinkError> {
        Ok(self.start_after.unwrap_or(0))
    }

    fn deliver(&mut self, _prev: &[u8; 32], events: &[SealedEvent]) -> Result<(), SinkError> {
        if let Some(gate) = &self.gate {
            gate.recv().map_err(|_| "gate closed")?;
        }
        if self.failures > 0 {
            self.failures -= 1;
            return Err("receiver unavailable".into());
        }
        self.accepted
            .lock()
            .unwrap()
            .extend(events.iter().map(|e| (e.event.seq, e.chain)));
        Ok(())
    }
}

fn ledger(db: &Database) -> Vec<(u64, [u8; 32])> {
    audit::tail(db.backend(), usize::MAX)
        .expect("ledger")
        .into_iter()
        .map(|r| (r.event.seq, r.chain))
        .collect()
}

fn wait_for(db: &Database, what: &str, done: impl Fn(&Database) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done(db) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {:?}",
            db.sink_status()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_failing_sink_is_retried_until_it_has_everything_in_order() {
    let accepted = Accepted::default();
    let db = Database::builder()
        .sink(TestSink {
            failures: 3,
            ..TestSink::new(&accepted)
        })
        .in_memory()
        .open()
        .expect("open");
    common::insert_rows(&db, 20);
    wait_for(&db, "an error to be reported", |db| {
        db.sink_status()[0].last_error.is_some() || db.sink_status()[0].lag() == 0
    });
    wait_for(&db, "catch-up", |db| db.sink_status()[0].lag() == 0);
    let status = db.sink_status().remove(0);
    assert_eq!(
        status.last_error, None,
        "cleared by the successful delivery"
    );
    assert_eq!(*accepted.lock().unwrap(), ledger(&db));
}

#[test]
fn a_stalled_sink_does_not_hold_commits_and_catches_up_later() {
    let accepted = Accepted::default();
    let (go, gate) = mpsc::channel();
    let db = Database::builder()
        .sink(TestSink {
            gate: Some(gate),
            ..TestSink::new(&accepted)
        })
        .in_memory()
        .open()
        .expect("open");
    // The sink is stuck in its first delivery: every commit still completes.
    common::insert_rows(&db, 200);
    let head = db.audit_head().seq;
    assert!(head > 200);
    assert!(accepted.lock().unwrap().is_empty());
    assert!(db.sink_status()[0].lag() > 0);
    // Released, it receives the backlog from the ledger.
    std::thread::spawn(move || while go.send(()).is_ok() {});
    wait_for(&db, "catch-up", |db| db.sink_status()[0].lag() == 0);
    assert_eq!(*accepted.lock().unwrap(), ledger(&db));
}

#[test]
fn a_sink_resumes_where_it_says_and_drains_on_close() {
    let accepted = Accepted::default();
    let dir = tempfile::tempdir().expect("dir");
    {
        let db = Database::open(dir.path()).expect("open");
        common::insert_rows(&db, 10);
    }
    let db = Database::builder()
        .sink(TestSink {
            start_after: Some(5),
            ..TestSink::new(&accepted)
        })
        .path(dir.path())
        .open()
        .expect("reopen");
    common::insert_rows(&db, 3);
    let expected: Vec<_> = ledger(&db)
        .into_iter()
        .filter(|(seq, _)| *seq > 5)
        .collect();
    // Closing the database lets the sink take everything sealed before it stops.
    drop(db);
    assert_eq!(*accepted.lock().unwrap(), expected);
}

/// A rotating `jsonl-file` sink: several files, each verifying on its own, together
/// holding every event once, in order, across a restart.
#[test]
fn a_rotating_jsonl_sink_writes_files_that_each_verify() {
    let dir = tempfile::tempdir().expect("dir");
    let trail = dir.path().join("trail");
    let db_dir = dir.path().join("db");
    let attach = |db: &Database| {
        db.attach_sink(Box::new(heliosdb_lite::JsonlFileSink::rotating(
            &trail, 4096,
        )))
        .expect("attach");
    };
    {
        let db = Database::open(&db_dir).expect("open");
        attach(&db);
        common::insert_rows(&db, 30);
    }
    {
        let db = Database::open(&db_dir).expect("reopen");
        attach(&db);
        common::insert_rows(&db, 30);
    }
    let db = Database::open(&db_dir).expect("reopen");
    let head = db.audit_head().seq;
    let mut names: Vec<_> = std::fs::read_dir(&trail)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .collect();
    names.sort();
    assert!(names.len() >= 3, "{names:?}");
    let mut seqs = Vec::new();
    let mut last_chain: Option<String> = None;
    for name in &names {
        let bytes = std::fs::read(trail.join(name)).expect("file");
        let report = audit::verify_export(&bytes[..]).expect("verify");
        assert!(report.is_intact(), "{name}: {report:?}");
        let first: u64 = name["audit-".len()..name.len() - ".jsonl".len()]
            .parse()
            .expect("seq");
        assert_eq!(report.first_seq, Some(first), "{name}");
        for (i, line) in bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .enumerate()
        {
            let line: serde_json::Value = serde_json::from_slice(line).expect("json");
            if i == 0
                && let Some(previous) = &last_chain
            {
                // Each file starts where the one before it ended.
                assert_eq!(
                    line["prev_chain"].as_str(),
                    Some(previous.as_str()),
                    "{name}"
                );
            }
            seqs.push(line["seq"].as_u64().expect("seq"));
            last_chain = line["chain"].as_str().map(str::to_owned);
        }
    }
    assert_eq!(
        seqs,
        (1..=head).collect::<Vec<_>>(),
        "every event once, in order"
    );
}

/// The built-in follower sinks pass the sink suite: every event up to the head, a restart
/// resumes after what the sink holds durably, and the status reports the lag.
mod suite {
    use heliosdb_lite::checkpoint::{Checkpoint, CheckpointFiles, CheckpointSink, SignerKey};
    use heliosdb_lite::{JsonlFileSink, MemoryBackend, StorageBackend};
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Duration;

    fn memory() -> Arc<dyn StorageBackend> {
        Arc::new(MemoryBackend::new())
    }

    /// The seq of the jsonl file's last complete line (0 without one).
    fn jsonl_position(dir: &Path) -> u64 {
        let text = std::fs::read_to_string(dir.join("audit.jsonl")).unwrap_or_default();
        text.lines()
            .rev()
            .find(|line| line.ends_with('}'))
            .map_or(0, |line| {
                let value: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
                value["seq"].as_u64().expect("a seq")
            })
    }

    /// The size of the last checkpoint in the sink's file (0 without one).
    fn checkpoint_position(dir: &Path) -> u64 {
        CheckpointFiles::at(dir.join("checkpoints"))
            .read_notes()
            .expect("notes")
            .last()
            .map_or(0, |(_, note)| {
                Checkpoint::parse_body(note.text())
                    .expect("a checkpoint")
                    .size
            })
    }

    /// The sink's key, made once per directory, so a restarted sink signs with the same.
    fn checkpoint_sink(dir: &Path) -> Box<dyn heliosdb_lite::AuditSink> {
        let private = dir.join("suite.key");
        if !private.exists() {
            SignerKey::generate("suite")
                .expect("key")
                .write_files(dir.join("suite"))
                .expect("key files");
        }
        let key = SignerKey::from_file(&private).expect("key");
        Box::new(CheckpointSink::new(
            key,
            dir.join("checkpoints"),
            5,
            Duration::from_millis(10),
        ))
    }

    heliosdb_lite::engine::sink_suite!(
        jsonl,
        memory,
        |dir| Box::new(JsonlFileSink::new(dir.join("audit.jsonl"))),
        jsonl_position
    );

    heliosdb_lite::engine::sink_suite!(checkpoint, memory, checkpoint_sink, checkpoint_position);
}
