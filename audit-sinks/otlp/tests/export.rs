//! The OTLP sink against a real OTLP receiver (`support/receiver.rs`), over OTLP/HTTP and
//! OTLP/gRPC: healthy, gzip and headers, receiver down then back, UNAVAILABLE with
//! Retry-After, slow answers past the timeout, partial success and quarantine. Every
//! scenario ends with the receiver holding every event, in seq order, with the ledger's
//! attributes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use heliosdb_engine::Database;
use heliosdb_engine::audit::SinkStatus;
use heliosdb_otlp::{Compression, OtlpOptions, OtlpSink, Protocol, QUARANTINE_OPERATION};
use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;
use support::receiver::{Answered, Receiver, Wire};
use support::*;

fn options(wire: Wire, endpoint: &str, dir: &Path) -> OtlpOptions {
    OtlpOptions::new(dir.join("state/otlp.cursor"))
        .endpoint(endpoint)
        .protocol(match wire {
            Wire::Http => Protocol::HttpProtobuf,
            Wire::Grpc => Protocol::Grpc,
        })
        .batch_size(7)
        .timeout(Duration::from_secs(5))
}

/// Attaches a sink built from `options` only (no environment).
fn attach(db: &Database, options: &OtlpOptions) {
    let resolved = options.resolve_with(|_| None).expect("options");
    db.attach_sink(Box::new(OtlpSink::from_resolved(resolved)))
        .expect("attach");
}

fn status(db: &Database) -> SinkStatus {
    db.sink_status().into_iter().next().expect("one sink")
}

fn cursor_seq(dir: &Path) -> u64 {
    let Ok(text) = std::fs::read_to_string(dir.join("state/otlp.cursor")) else {
        return 0;
    };
    let state: serde_json::Value = serde_json::from_str(&text).expect("json");
    state["seq"].as_u64().expect("seq")
}

fn healthy(wire: Wire) {
    let dir = tempfile::tempdir().expect("dir");
    let receiver = Receiver::start(wire, &support::receiver::jsonl_path(dir.path()));
    let db = memory_db(50);
    attach(&db, &options(wire, &receiver.endpoint(), dir.path()));
    workload(&db, 40);
    wait_caught_up(&db);
    let ledger = ledger(&db);
    check_received(&records(&receiver), &ledger, &HashSet::new());
    // The cursor file follows once the sink is idle.
    wait_for("the cursor file", || {
        cursor_seq(dir.path()) == ledger.len() as u64
    });
    assert_eq!(status(&db).last_error, None);
    // The receiver's JSONL file holds the same records.
    let lines = std::fs::read_to_string(support::receiver::jsonl_path(dir.path())).expect("jsonl");
    let from_file: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).expect("line"))
        .collect();
    check_received(&from_file, &ledger, &HashSet::new());
}

#[test]
fn healthy_http() {
    healthy(Wire::Http);
}

#[test]
fn healthy_grpc() {
    healthy(Wire::Grpc);
}

fn gzip_and_headers(wire: Wire) {
    let dir = tempfile::tempdir().expect("dir");
    let receiver = Receiver::start(wire, &support::receiver::jsonl_path(dir.path()));
    let db = memory_db(50);
    attach(
        &db,
        &options(wire, &receiver.endpoint(), dir.path())
            .compression(Compression::Gzip)
            .header("Authorization", "Bearer t0ken")
            .header("x-tenant", "acme"),
    );
    workload(&db, 10);
    wait_caught_up(&db);
    check_received(&records(&receiver), &ledger(&db), &HashSet::new());
    receiver.seen(|seen| {
        assert!(seen.calls > 0);
        assert_eq!(seen.gzip_calls, seen.calls, "every request is compressed");
        assert_eq!(seen.last_headers["authorization"], "Bearer t0ken");
        assert_eq!(seen.last_headers["x-tenant"], "acme");
    });
}

#[test]
fn gzip_and_headers_http() {
    gzip_and_headers(Wire::Http);
}

#[test]
fn gzip_and_headers_grpc() {
    gzip_and_headers(Wire::Grpc);
}

fn down_then_back(wire: Wire) {
    let dir = tempfile::tempdir().expect("dir");
    let jsonl = support::receiver::jsonl_path(dir.path());
    // Down from the start: the port is known, nothing listens on it.
    let down = Receiver::start(wire, &jsonl).stop();
    let db = memory_db(50);
    let endpoint = format!("http://{}", down_addr(&down));
    attach(&db, &options(wire, &endpoint, dir.path()));
    workload(&db, 20);
    wait_for("a delivery error", || {
        let s = status(&db);
        s.last_error.is_some() && s.lag() > 0 && s.oldest_pending_us.is_some()
    });
    assert_eq!(status(&db).delivered_seq, 0);
    assert_eq!(cursor_seq(dir.path()), 0, "nothing acknowledged, no cursor");
    let written = ledger(&db).len() as u64;
    // Back: everything arrives, observed (exported) after the receiver came back, so
    // after the events' own time.
    let back_ns = now_ns();
    let receiver = down.restart();
    wait_caught_up(&db);
    assert_eq!(status(&db).oldest_pending_us, None);
    for record in records(&receiver) {
        if record["seq"].as_u64().expect("seq") <= written {
            let time = record["time_unix_nano"].as_u64().expect("time");
            let observed = record["observed_time_unix_nano"]
                .as_u64()
                .expect("observed");
            assert!(time < back_ns, "{record}");
            assert!(observed >= back_ns, "observed is the export time: {record}");
        }
    }
    // Down again in the middle of a stream, then back once more.
    let down = receiver.stop();
    more(&db, 1000, 15);
    wait_for("a delivery error", || status(&db).last_error.is_some());
    let receiver = down.restart();
    wait_caught_up(&db);
    check_received(&records(&receiver), &ledger(&db), &HashSet::new());
}

fn now_ns() -> u64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock");
    u64::try_from(since.as_nanos()).expect("nanos")
}

fn down_addr(down: &support::receiver::StoppedReceiver) -> std::net::SocketAddr {
    down.addr()
}

#[test]
fn receiver_down_then_back_http() {
    down_then_back(Wire::Http);
}

#[test]
fn receiver_down_then_back_grpc() {
    down_then_back(Wire::Grpc);
}

fn unavailable_with_retry_after(wire: Wire) {
    let dir = tempfile::tempdir().expect("dir");
    let receiver = Receiver::start(wire, &support::receiver::jsonl_path(dir.path()));
    receiver.faults(|f| {
        f.unavailable = 3;
        f.retry_after = Some(Duration::from_secs(1));
    });
    let db = memory_db(50);
    attach(&db, &options(wire, &receiver.endpoint(), dir.path()));
    workload(&db, 12);
    wait_caught_up(&db);
    check_received(&records(&receiver), &ledger(&db), &HashSet::new());
    // The pause the receiver asked for is a floor: after each of the three refusals the
    // next call came at least a second later.
    let requests = receiver.seen(|s| s.requests.clone());
    let refused: Vec<usize> = requests
        .iter()
        .enumerate()
        .filter(|(_, r)| r.answer == Answered::Unavailable)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(refused.len(), 3, "{requests:?}");
    for i in refused {
        let next = requests.get(i + 1).expect("a call after each refusal");
        let waited = next.at - requests[i].at;
        assert!(
            waited >= Duration::from_secs(1),
            "call {} came {waited:?} after a Retry-After of 1 s",
            i + 1
        );
    }
}

#[test]
fn unavailable_with_retry_after_http() {
    unavailable_with_retry_after(Wire::Http);
}

#[test]
fn unavailable_with_retry_after_grpc() {
    unavailable_with_retry_after(Wire::Grpc);
}

fn slow_answers(wire: Wire) {
    let dir = tempfile::tempdir().expect("dir");
    let receiver = Receiver::start(wire, &support::receiver::jsonl_path(dir.path()));
    // Answers later than the sink waits: the receiver keeps what the sink times out on,
    // the sink sends it again (duplicates, de-duplicated by event_id).
    receiver.faults(|f| f.delay = Duration::from_millis(900));
    let db = memory_db(50);
    attach(
        &db,
        &options(wire, &receiver.endpoint(), dir.path()).timeout(Duration::from_millis(300)),
    );
    workload(&db, 5);
    wait_for("a timed-out request", || {
        status(&db).last_error.is_some() && receiver.seen(|s| s.calls) >= 2
    });
    receiver.faults(|f| f.delay = Duration::ZERO);
    wait_caught_up(&db);
    check_received(&records(&receiver), &ledger(&db), &HashSet::new());
}

#[test]
fn slow_answers_http() {
    slow_answers(Wire::Http);
}

#[test]
fn slow_answers_grpc() {
    slow_answers(Wire::Grpc);
}

fn partial_success(wire: Wire) {
    let dir = tempfile::tempdir().expect("dir");
    let receiver = Receiver::start(wire, &support::receiver::jsonl_path(dir.path()));
    // Seq 5 is refused twice (then accepted when sent alone); seq 9 always.
    receiver.faults(|f| {
        f.reject.insert(5, 2);
        f.reject.insert(9, u32::MAX);
    });
    let db = memory_db(50);
    attach(&db, &options(wire, &receiver.endpoint(), dir.path()));
    workload(&db, 20);
    // The quarantine adds a SYSTEM event; wait for it to be exported too.
    wait_for("the quarantine event", || {
        ledger(&db)
            .iter()
            .any(|e| e.event.operation == QUARANTINE_OPERATION)
    });
    wait_caught_up(&db);
    let ledger = ledger(&db);
    let records = records(&receiver);
    // 5 and 9 were retried alone after the rest of their request (seq 1-7, 8-14).
    let late: HashSet<u64> = [5, 6, 7, 9, 10, 11, 12, 13, 14].into();
    check_received_but(&records, &ledger, &late, &[9].into());

    let quarantine = std::fs::read_to_string(dir.path().join("state/otlp.cursor.quarantine.jsonl"))
        .expect("quarantine file");
    let lines: Vec<serde_json::Value> = quarantine
        .lines()
        .map(|l| serde_json::from_str(l).expect("line"))
        .collect();
    assert_eq!(lines.len(), 1, "{quarantine}");
    assert_eq!(lines[0]["event"]["seq"], 9);
    assert!(
        lines[0]["reason"]
            .as_str()
            .expect("reason")
            .contains("rejected")
    );

    let system: Vec<_> = ledger
        .iter()
        .filter(|e| e.event.operation == QUARANTINE_OPERATION)
        .collect();
    assert_eq!(system.len(), 1);
    assert_eq!(system[0].event.custom["quarantined_seq"], "9");
    assert_eq!(system[0].event.user, "heliosdb");
    assert!(
        records
            .iter()
            .any(|r| r["seq"] == system[0].event.seq && r["event_name"] == "db.audit.system"),
        "the quarantine event itself is exported"
    );
}

#[test]
fn partial_success_http() {
    partial_success(Wire::Http);
}

#[test]
fn partial_success_grpc() {
    partial_success(Wire::Grpc);
}

#[test]
fn linger_fills_larger_requests() {
    let dir = tempfile::tempdir().expect("dir");
    let receiver = Receiver::start(Wire::Http, &support::receiver::jsonl_path(dir.path()));
    let db = memory_db(1000);
    attach(
        &db,
        &options(Wire::Http, &receiver.endpoint(), dir.path())
            .batch_size(1000)
            .linger(Duration::from_millis(300)),
    );
    workload(&db, 30);
    wait_caught_up(&db);
    let ledger = ledger(&db);
    check_received(&records(&receiver), &ledger, &HashSet::new());
    // Lingering sends far fewer requests than events (without it: one per commit).
    assert!(receiver.seen(|s| s.calls) < ledger.len() as u64 / 2);
    // Closing delivers what the linger still holds.
    more(&db, 500, 3);
    drop(db);
    assert_eq!(cursor_seq(dir.path()), ledger.len() as u64 + 3);
}

/// `https://` endpoints speak TLS: against a plain-HTTP receiver the handshake fails and
/// the sink retries (it never falls back to plain text).
fn https_needs_tls(wire: Wire) {
    let dir = tempfile::tempdir().expect("dir");
    let receiver = Receiver::start(wire, &support::receiver::jsonl_path(dir.path()));
    let db = memory_db(50);
    let endpoint = format!("https://{}", receiver.addr);
    attach(&db, &options(wire, &endpoint, dir.path()));
    workload(&db, 2);
    wait_for("a TLS error", || status(&db).last_error.is_some());
    assert_eq!(status(&db).delivered_seq, 0);
    assert_eq!(receiver.seen(|s| s.accepted), 0);
}

#[test]
fn https_needs_tls_http() {
    https_needs_tls(Wire::Http);
}

#[test]
fn https_needs_tls_grpc() {
    https_needs_tls(Wire::Grpc);
}

/// Checkpoints signed by the checkpoint sink are exported too, as `db.audit.checkpoint`
/// records carrying the signed note, including the one signed on close; after a restart
/// none is sent twice.
fn checkpoints(wire: Wire) {
    use heliosdb_checkpoint::{Checkpoint, CheckpointSink, SignerKey};
    let dir = tempfile::tempdir().expect("dir");
    let receiver = Receiver::start(wire, &support::receiver::jsonl_path(dir.path()));
    let key = SignerKey::generate("siem-test").expect("key");
    let db_dir = dir.path().join("db");
    let open = || {
        let backend = heliosdb_backend_fjall::FjallBackend::open(&db_dir).expect("backend");
        Database::with_backend(std::sync::Arc::new(backend), Default::default()).expect("open")
    };
    let checkpoint_records = |receiver: &Receiver| -> Vec<serde_json::Value> {
        records(receiver)
            .into_iter()
            .filter(|r| r["event_name"] == "db.audit.checkpoint")
            .collect()
    };
    let stored = {
        let db = open();
        // The signer first: it closes first, so its last checkpoint is stored before the
        // exporter closes.
        db.attach_sink(Box::new(CheckpointSink::new(
            key.clone(),
            dir.path().join("checkpoints.txt"),
            10,
            Duration::from_secs(3600),
        )))
        .expect("attach signer");
        attach(&db, &options(wire, &receiver.endpoint(), dir.path()));
        workload(&db, 25);
        wait_caught_up(&db);
        db.checkpoints().expect("stored")
    };
    let db = open();
    let all = db.checkpoints().expect("stored");
    assert!(all.len() > stored.len(), "one more on close");
    let got = checkpoint_records(&receiver);
    let sizes: Vec<u64> = got
        .iter()
        .map(|r| {
            r["attributes"]["heliosdb.checkpoint.size"]
                .as_u64()
                .expect("size")
        })
        .collect();
    let expected: Vec<u64> = all.iter().map(|c| c.size).collect();
    assert_eq!(sizes, expected);
    for (record, checkpoint) in got.iter().zip(&all) {
        let note = record["body"].as_str().expect("note");
        assert_eq!(note, checkpoint.note);
        let opened = Checkpoint::open(note, &key.verifier()).expect("verifies off-box");
        assert_eq!(opened.root, checkpoint.root);
        assert_eq!(record["severity_text"], "INFO");
    }
    // Restarted with the exporter alone: nothing is sent again.
    attach(&db, &options(wire, &receiver.endpoint(), dir.path()));
    wait_caught_up(&db);
    drop(db);
    assert_eq!(checkpoint_records(&receiver).len(), expected.len());
}

#[test]
fn checkpoints_http() {
    checkpoints(Wire::Http);
}

#[test]
fn checkpoints_grpc() {
    checkpoints(Wire::Grpc);
}

/// Closing the database stores the cursor; a sink reopened on the same database resumes at
/// cursor + 1: the second run sends no record the first one had acknowledged.
fn resumes_after_the_cursor(wire: Wire) {
    let dir = tempfile::tempdir().expect("dir");
    let receiver = Receiver::start(wire, &support::receiver::jsonl_path(dir.path()));
    let db_dir = dir.path().join("db");
    let open = || {
        let backend = heliosdb_backend_fjall::FjallBackend::open(&db_dir).expect("backend");
        let db =
            Database::with_backend(std::sync::Arc::new(backend), Default::default()).expect("open");
        // No linger: the last events are sent on close, not waited for.
        attach(
            &db,
            &options(wire, &receiver.endpoint(), dir.path()).linger(Duration::ZERO),
        );
        db
    };
    let first_head = {
        let db = open();
        workload(&db, 20);
        wait_caught_up(&db);
        ledger(&db).len() as u64
    };
    assert_eq!(
        cursor_seq(dir.path()),
        first_head,
        "closing the database stores the cursor"
    );
    let before = receiver.seen(|s| s.records.len());
    let db = open();
    more(&db, 1000, 12);
    wait_caught_up(&db);
    let ledger = ledger(&db);
    drop(db);
    let records = records(&receiver);
    let second: Vec<u64> = records[before..]
        .iter()
        .map(|r| r["seq"].as_u64().expect("seq"))
        .collect();
    assert!(
        second.iter().all(|seq| *seq > first_head),
        "the second run sent records at or before the cursor {first_head}: {second:?}"
    );
    let mut unique = second.clone();
    unique.dedup();
    assert_eq!(
        unique,
        (first_head + 1..=ledger.len() as u64).collect::<Vec<_>>()
    );
    check_received(&records, &ledger, &HashSet::new());
    assert_eq!(cursor_seq(dir.path()), ledger.len() as u64);
}

#[test]
fn resumes_after_the_cursor_http() {
    resumes_after_the_cursor(Wire::Http);
}

#[test]
fn resumes_after_the_cursor_grpc() {
    resumes_after_the_cursor(Wire::Grpc);
}

/// While the receiver refuses every request the cursor file stays where it was, however
/// long (several cursor intervals of retries), and the follower reports no progress.
fn cursor_holds_while_the_receiver_fails(wire: Wire) {
    let dir = tempfile::tempdir().expect("dir");
    let receiver = Receiver::start(wire, &support::receiver::jsonl_path(dir.path()));
    let db = memory_db(50);
    attach(&db, &options(wire, &receiver.endpoint(), dir.path()));
    workload(&db, 10);
    wait_caught_up(&db);
    let head = ledger(&db).len() as u64;
    wait_for("the cursor file", || cursor_seq(dir.path()) == head);
    receiver.faults(|f| f.unavailable = u32::MAX);
    let calls = receiver.seen(|s| s.calls);
    more(&db, 1000, 10);
    // Eight refused calls take at least 3 s of back-off: past CURSOR_INTERVAL.
    wait_for("eight refused calls", || {
        receiver.seen(|s| s.calls) >= calls + 8
    });
    assert_eq!(
        cursor_seq(dir.path()),
        head,
        "the cursor moved while refused"
    );
    assert_eq!(status(&db).delivered_seq, head);
    assert!(status(&db).last_error.is_some());
    receiver.faults(|f| f.unavailable = 0);
    wait_caught_up(&db);
    let ledger = ledger(&db);
    wait_for("the cursor file", || {
        cursor_seq(dir.path()) == ledger.len() as u64
    });
    check_received(&records(&receiver), &ledger, &HashSet::new());
}

#[test]
fn cursor_holds_while_the_receiver_fails_http() {
    cursor_holds_while_the_receiver_fails(Wire::Http);
}

#[test]
fn cursor_holds_while_the_receiver_fails_grpc() {
    cursor_holds_while_the_receiver_fails(Wire::Grpc);
}

/// A record the receiver keeps rejecting is sent alone again after the follower's
/// back-off (pauses growing from 25-50 ms), not in a tight loop; until it is settled the
/// cursor file stays before it. Once the receiver takes it, everything moves on.
fn cursor_holds_before_an_unsettled_rejection(wire: Wire) {
    let dir = tempfile::tempdir().expect("dir");
    let receiver = Receiver::start(wire, &support::receiver::jsonl_path(dir.path()));
    receiver.faults(|f| {
        f.reject.insert(5, u32::MAX);
    });
    let db = memory_db(50);
    attach(
        &db,
        &options(wire, &receiver.endpoint(), dir.path()).reject_attempts(1000),
    );
    workload(&db, 20);
    let alone = |receiver: &Receiver| -> Vec<std::time::Instant> {
        receiver.seen(|s| {
            s.requests
                .iter()
                .filter(|r| r.seqs == [5])
                .map(|r| r.at)
                .collect()
        })
    };
    wait_for("six single sends of seq 5", || alone(&receiver).len() >= 6);
    let cursor = cursor_seq(dir.path());
    assert!(
        cursor < 5,
        "the cursor passed the unsettled seq 5: {cursor}"
    );
    let s = status(&db);
    assert!(s.delivered_seq < 5, "{s:?}");
    let error = s.last_error.expect("the rejection is shown");
    assert!(error.contains("seq 5"), "{error}");
    // The k-th pause is at least half of 50 ms × 2^k.
    let at = alone(&receiver);
    for (k, pair) in at.windows(2).take(5).enumerate() {
        let gap = pair[1] - pair[0];
        let least = Duration::from_millis(25) * 2u32.pow(u32::try_from(k).expect("k"));
        assert!(
            gap >= least,
            "send {k} of seq 5 came after {gap:?}, not {least:?}"
        );
    }
    receiver.faults(|f| {
        f.reject.remove(&5);
    });
    wait_caught_up(&db);
    let ledger = ledger(&db);
    wait_for("the cursor file", || {
        cursor_seq(dir.path()) == ledger.len() as u64
    });
    check_received(&records(&receiver), &ledger, &[5, 6, 7].into());
    assert!(
        !dir.path()
            .join("state/otlp.cursor.quarantine.jsonl")
            .exists(),
        "nothing is quarantined"
    );
}

#[test]
fn cursor_holds_before_an_unsettled_rejection_http() {
    cursor_holds_before_an_unsettled_rejection(Wire::Http);
}

#[test]
fn cursor_holds_before_an_unsettled_rejection_grpc() {
    cursor_holds_before_an_unsettled_rejection(Wire::Grpc);
}

/// A receiver that refuses requests above 3 records (HTTP 413, gRPC RESOURCE_EXHAUSTED)
/// gets smaller ones: the sink halves its requests until they pass, instead of sending
/// the same one forever; nothing is quarantined and the records arrive in order.
fn too_large_requests_are_split(wire: Wire) {
    let dir = tempfile::tempdir().expect("dir");
    let receiver = Receiver::start(wire, &support::receiver::jsonl_path(dir.path()));
    receiver.faults(|f| f.max_records = Some(3));
    let db = memory_db(50);
    attach(
        &db,
        &options(wire, &receiver.endpoint(), dir.path()).batch_size(16),
    );
    workload(&db, 30);
    wait_caught_up(&db);
    let ledger = ledger(&db);
    check_received(&records(&receiver), &ledger, &HashSet::new());
    let requests = receiver.seen(|s| s.requests.clone());
    assert!(
        requests.iter().any(|r| r.answer == Answered::TooLarge),
        "the receiver refused large requests"
    );
    for request in &requests {
        if let Answered::Ok { .. } = request.answer {
            assert!(request.seqs.len() <= 3, "{request:?}");
        }
    }
    assert_eq!(status(&db).last_error, None);
    assert!(
        !dir.path()
            .join("state/otlp.cursor.quarantine.jsonl")
            .exists()
    );
}

#[test]
fn too_large_requests_are_split_http() {
    too_large_requests_are_split(Wire::Http);
}

#[test]
fn too_large_requests_are_split_grpc() {
    too_large_requests_are_split(Wire::Grpc);
}

/// Severities end to end: a constraint violation and a refused login are WARN, a
/// statement that fails on corrupt storage (an engine error) is ERROR, with their
/// `error.type`; every record's attributes match the ledger.
fn severities(wire: Wire) {
    use heliosdb_engine::{Direction, Durability, SessionInfo, WriteBatch};
    let dir = tempfile::tempdir().expect("dir");
    let receiver = Receiver::start(wire, &support::receiver::jsonl_path(dir.path()));
    let db = memory_db(50);
    attach(&db, &options(wire, &receiver.endpoint(), dir.path()));
    let mut s = db.session(
        SessionInfo::new("carol")
            .application("ops")
            .client_addr("192.0.2.1:1234"),
    );
    s.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)", &[])
        .expect("create");
    s.execute("INSERT INTO t VALUES (1, 'a')", &[])
        .expect("insert");
    s.execute("INSERT INTO t VALUES (1, 'again')", &[])
        .expect_err("duplicate key");
    s.login_failed("mallory", "wrong password")
        .expect("login failure");
    // Garbage in every stored row, bypassing SQL: the next read fails in the engine.
    let backend = db.backend();
    let keys: Vec<Vec<u8>> = backend
        .snapshot()
        .expect("snapshot")
        .prefix("rows", &[], Direction::Forward)
        .expect("scan")
        .map(|kv| kv.expect("kv").0)
        .collect();
    let mut batch = WriteBatch::new();
    for key in keys {
        batch.put("rows", key, vec![0xEE, 0x01]);
    }
    backend.commit(&batch, Durability::Sync).expect("tamper");
    s.query("SELECT * FROM t", &[]).expect_err("corrupt row");
    wait_caught_up(&db);
    let ledger = ledger(&db);
    let records = records(&receiver);
    check_received(&records, &ledger, &HashSet::new());
    let find = |operation: &str| {
        records
            .iter()
            .find(|r| {
                r["attributes"]["db.operation.name"] == operation
                    && r["attributes"]["heliosdb.audit.success"] == false
            })
            .unwrap_or_else(|| panic!("no failed {operation} record"))
            .clone()
    };
    let insert = find("INSERT");
    assert_eq!(insert["severity_text"], "WARN", "{insert}");
    assert_eq!(insert["attributes"]["error.type"], "constraint");
    let login = find("LOGIN");
    assert_eq!(login["severity_text"], "WARN", "{login}");
    assert_eq!(login["attributes"]["user.name"], "mallory");
    let select = find("SELECT");
    assert_eq!(select["severity_number"], 17, "{select}");
    assert_eq!(select["severity_text"], "ERROR");
    assert_eq!(select["attributes"]["error.type"], "storage");
    assert_eq!(select["attributes"]["db.collection.name"], "t");
    assert_eq!(select["attributes"]["client.address"], "192.0.2.1:1234");
    assert_eq!(select["resource"]["service.name"], "ops");
}

#[test]
fn severities_http() {
    severities(Wire::Http);
}

#[test]
fn severities_grpc() {
    severities(Wire::Grpc);
}

/// Under constant load the sink is never idle: a checkpoint signed while commits keep
/// coming is exported while they still come, not once they stop.
fn checkpoints_under_load(wire: Wire) {
    use heliosdb_checkpoint::{CheckpointSink, SignerKey};
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().expect("dir");
    let receiver = Receiver::start(wire, &support::receiver::jsonl_path(dir.path()));
    let key = SignerKey::generate("load-test").expect("key");
    let db = std::sync::Arc::new(memory_db(50));
    db.attach_sink(Box::new(CheckpointSink::new(
        key,
        dir.path().join("checkpoints.txt"),
        20,
        Duration::from_secs(3600),
    )))
    .expect("attach signer");
    attach(&db, &options(wire, &receiver.endpoint(), dir.path()));
    workload(&db, 1);
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, stop) = (std::sync::Arc::clone(&db), std::sync::Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut s = db.session(heliosdb_engine::SessionInfo::new("load"));
            let mut i = 10_000;
            while !stop.load(Ordering::Acquire) {
                s.execute(&format!("INSERT INTO items VALUES ({i}, 'load')"), &[])
                    .expect("insert");
                i += 1;
            }
            i - 10_000
        })
    };
    wait_for("a checkpoint record while writing", || {
        receiver.seen(|s| {
            s.records
                .iter()
                .any(|r| r["event_name"] == "db.audit.checkpoint")
        })
    });
    assert!(!writer.is_finished(), "the writer is still writing");
    stop.store(true, Ordering::Release);
    let written = writer.join().expect("writer");
    assert!(written > 0);
}

#[test]
fn checkpoints_under_load_http() {
    checkpoints_under_load(Wire::Http);
}

#[test]
fn checkpoints_under_load_grpc() {
    checkpoints_under_load(Wire::Grpc);
}

/// TLS with a private CA, over HTTP and gRPC, against a receiver that requires a client
/// certificate: without the CA the handshake fails (the public roots do not know it) and
/// the error says so; with the CA but no client certificate the receiver refuses; with
/// both, every event arrives.
fn tls_with_a_private_ca(wire: Wire) {
    use support::tls::TestPki;
    let dir = tempfile::tempdir().expect("dir");
    let pki = TestPki::generate();
    let files = pki.write(dir.path());
    let receiver = Receiver::start_tls(
        wire,
        &support::receiver::jsonl_path(dir.path()),
        pki.server_tls(),
    );
    assert!(receiver.endpoint().starts_with("https://"));
    let refused = |options: OtlpOptions, what: &str| {
        let db = memory_db(50);
        attach(&db, &options);
        workload(&db, 2);
        wait_for(what, || status(&db).last_error.is_some());
        let s = status(&db);
        assert_eq!(s.delivered_seq, 0, "{s:?}");
        assert_eq!(receiver.seen(|s| s.accepted), 0);
        s.last_error.expect("error")
    };
    let error = refused(
        options(wire, &receiver.endpoint(), &dir.path().join("no-ca")),
        "a certificate error",
    );
    assert!(
        error.contains("invalid peer certificate: UnknownIssuer"),
        "{error}"
    );
    refused(
        options(
            wire,
            &receiver.endpoint(),
            &dir.path().join("no-client-cert"),
        )
        .ca_file(&files.ca),
        "a refused handshake",
    );
    let db = memory_db(50);
    attach(
        &db,
        &options(wire, &receiver.endpoint(), &dir.path().join("mutual"))
            .ca_file(&files.ca)
            .client_certificate(&files.client_cert, &files.client_key),
    );
    workload(&db, 10);
    wait_caught_up(&db);
    check_received(&records(&receiver), &ledger(&db), &HashSet::new());
    assert_eq!(status(&db).last_error, None);
}

#[test]
fn tls_with_a_private_ca_http() {
    tls_with_a_private_ca(Wire::Http);
}

#[test]
fn tls_with_a_private_ca_grpc() {
    tls_with_a_private_ca(Wire::Grpc);
}
