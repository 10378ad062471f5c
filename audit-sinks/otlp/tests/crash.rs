//! The OTLP sink across crashes: a child process writes on fjall with the sink exporting
//! to a real receiver (slow answers, small requests, so a kill often lands mid-export)
//! and is killed with SIGKILL at random moments. After every kill the database reopens in
//! this process, the sink resumes after its cursor, and the receiver ends with every
//! event of the ledger, in seq order, with the ledger's attributes. Rounds alternate
//! between OTLP/HTTP and OTLP/gRPC.
//!
//! The child is this same test binary, re-run with `OTLP_CHILD_DIR` set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use heliosdb_backend_fjall::FjallBackend;
use heliosdb_engine::{Database, DatabaseOptions, SessionInfo};
use heliosdb_otlp::{OtlpOptions, OtlpSink, Protocol};
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::receiver::{Receiver, Wire};

const CHILD_ENV: &str = "OTLP_CHILD_DIR";
const ENDPOINT_ENV: &str = "OTLP_CHILD_ENDPOINT";
const PROTOCOL_ENV: &str = "OTLP_CHILD_PROTOCOL";
const ROUNDS: usize = 6;

fn open(dir: &Path, endpoint: &str, protocol: Protocol) -> Database {
    let backend = FjallBackend::open(dir.join("db")).expect("open fjall");
    let options = DatabaseOptions {
        sink_batch_size: 16,
        ..DatabaseOptions::default()
    };
    let db = Database::with_backend(Arc::new(backend), options).expect("open");
    let sink = OtlpOptions::new(dir.join("otlp.cursor"))
        .endpoint(endpoint)
        .protocol(protocol)
        .batch_size(4)
        .timeout(Duration::from_secs(5))
        .resolve_with(|_| None)
        .expect("options");
    db.attach_sink(Box::new(OtlpSink::from_resolved(sink)))
        .expect("attach");
    db
}

fn protocol(name: &str) -> Protocol {
    Protocol::parse(name).expect("protocol")
}

/// Runs in the child: insert forever, printing `ack <n>` after each insert returned.
#[test]
fn otlp_child_workload() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return; // Only meaningful as the child of `the_export_survives_kill_nine`.
    };
    let endpoint = std::env::var(ENDPOINT_ENV).expect("endpoint");
    let db = open(
        Path::new(&dir),
        &endpoint,
        protocol(&std::env::var(PROTOCOL_ENV).expect("protocol")),
    );
    let mut s = db.session(SessionInfo::new("crash-child").application("crash"));
    s.execute(
        "CREATE TABLE IF NOT EXISTS readings (id INTEGER PRIMARY KEY AUTOINCREMENT, value TEXT)",
        &[],
    )
    .expect("create");
    for n in 0u64.. {
        s.execute(
            &format!("INSERT INTO readings (value) VALUES ('reading {n}')"),
            &[],
        )
        .expect("insert");
        println!("ack {n}");
    }
}

/// Runs the child until it printed `kill_after` acks (plus a random moment), then kills it.
fn run_and_kill(dir: &Path, endpoint: &str, protocol: Protocol, kill_after: usize) -> usize {
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "otlp_child_workload",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir)
        .env(ENDPOINT_ENV, endpoint)
        .env(PROTOCOL_ENV, protocol.as_str())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("stdout");
    let deadline = Instant::now() + support::DEADLINE;
    let mut acked = 0;
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if line.contains("ack ") {
            acked += 1;
            if acked >= kill_after || Instant::now() > deadline {
                break;
            }
        }
    }
    // A pseudo-random extra moment lands the kill anywhere in the next operation.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    std::thread::sleep(Duration::from_micros(u64::from(nanos % 5000)));
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    acked
}

#[test]
fn the_export_survives_kill_nine() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let jsonl = support::receiver::jsonl_path(dir.path());
    let mut http = Receiver::start(Wire::Http, &jsonl);
    let mut grpc = Receiver::start(Wire::Grpc, &jsonl);
    for receiver in [&http, &grpc] {
        // Slow answers keep requests in flight when the kill lands.
        receiver.faults(|f| f.delay = Duration::from_millis(3));
    }
    for round in 0..ROUNDS {
        let (receiver, protocol) = if round % 2 == 0 {
            (&mut http, Protocol::HttpProtobuf)
        } else {
            (&mut grpc, Protocol::Grpc)
        };
        let kill_after = 10 + (round * 37) % 60;
        let acked = run_and_kill(dir.path(), &receiver.endpoint(), protocol, kill_after);
        assert!(acked > 0, "round {round}: the child wrote nothing");
        let db = open(dir.path(), &receiver.endpoint(), protocol);
        support::wait_caught_up(&db);
        drop(db);
    }
    // Both receivers together hold the whole trail.
    let db = open(dir.path(), &http.endpoint(), Protocol::HttpProtobuf);
    support::wait_caught_up(&db);
    let ledger = support::ledger(&db);
    drop(db);
    let mut records = Vec::new();
    let text = std::fs::read_to_string(&jsonl).expect("receiver jsonl");
    for line in text.lines() {
        records.push(serde_json::from_str::<serde_json::Value>(line).expect("line"));
    }
    assert!(ledger.len() > ROUNDS * 10);
    support::check_received(&records, &ledger, &HashSet::new());
    let duplicates = records.len() - ledger.len();
    println!(
        "{} events, {} records received ({duplicates} duplicates)",
        ledger.len(),
        records.len()
    );
}
