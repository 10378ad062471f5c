//! Helpers shared by the OTLP sink tests: a database, a workload, waiting for the sink,
//! and the check every scenario ends with.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod receiver;
pub mod tls;

use heliosdb_backend_memory::MemoryBackend;
use heliosdb_engine::audit::sink::read_after;
use heliosdb_engine::audit::{EventClass, SealedEvent};
use heliosdb_engine::{AppEvent, Database, DatabaseOptions, SessionInfo};
use receiver::Receiver;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long any wait may take before a test fails (generous: CI machines are slow).
pub const DEADLINE: Duration = Duration::from_secs(60);

/// An in-memory database with sink deliveries of at most `batch` events.
pub fn memory_db(batch: usize) -> Database {
    let options = DatabaseOptions {
        sink_batch_size: batch,
        ..DatabaseOptions::default()
    };
    Database::with_backend(Arc::new(MemoryBackend::new()), options).expect("open")
}

/// Statements of every outcome: DDL, DML, SELECT, a failing statement, an application
/// event with custom fields; `rounds` inserts. Returns nothing: read the ledger after.
pub fn workload(db: &Database, rounds: usize) {
    let mut s = db.session(
        SessionInfo::new("alice")
            .application("billing")
            .client_addr("10.0.0.7:5000")
            .custom("tenant", "acme"),
    );
    s.execute(
        "CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT)",
        &[],
    )
    .expect("create");
    for i in 0..rounds {
        s.execute(&format!("INSERT INTO items VALUES ({i}, 'item {i}')"), &[])
            .expect("insert");
    }
    let _ = s.execute("SELECT * FROM no_such_table", &[]);
    s.record_event(
        AppEvent::new("ESIGN")
            .target("items")
            .detail("approved")
            .custom("reason", "review"),
    )
    .expect("app event");
}

/// Inserts more rows (for runs after the first).
pub fn more(db: &Database, from: usize, count: usize) {
    let mut s = db.session(SessionInfo::new("bob"));
    for i in from..from + count {
        s.execute(&format!("INSERT INTO items VALUES ({i}, 'more {i}')"), &[])
            .expect("insert");
    }
}

/// Every sealed event of the ledger.
pub fn ledger(db: &Database) -> Vec<SealedEvent> {
    read_after(db.backend(), 0, usize::MAX)
        .expect("read ledger")
        .1
}

/// Waits until every sink has accepted the whole ledger.
pub fn wait_caught_up(db: &Database) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let status = db.sink_status();
        if status.iter().all(|s| s.lag() == 0) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "sinks did not catch up: {status:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `check` holds.
pub fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The check every scenario ends with: the receiver holds every event of `ledger`
/// (duplicates allowed), first seen in seq order except for `late` (records retried
/// alone after a partial rejection arrive after the rest of their request), and each
/// record's attributes match the ledger.
pub fn check_received(records: &[Value], ledger: &[SealedEvent], late: &HashSet<u64>) {
    check_received_but(records, ledger, late, &HashSet::new());
}

/// [`check_received`], with the `quarantined` events absent.
pub fn check_received_but(
    records: &[Value],
    ledger: &[SealedEvent],
    late: &HashSet<u64>,
    quarantined: &HashSet<u64>,
) {
    let db_id = hex(&ledger[0].event.database_id);
    let mut first_seen = Vec::new();
    let mut seen = HashSet::new();
    for record in records {
        let event_id = record["event_id"].as_str().expect("event_id");
        let (id, seq) = event_id.split_once(':').expect("id:seq");
        assert_eq!(id, db_id, "{record}");
        let seq: u64 = seq.parse().expect("seq");
        assert_eq!(record["seq"], seq, "{record}");
        if seen.insert(seq) {
            first_seen.push(seq);
        }
        let sealed = &ledger[usize::try_from(seq - 1).expect("seq")];
        let event = &sealed.event;
        let attrs = &record["attributes"];
        assert_eq!(
            attrs["heliosdb.audit.chain_hash"],
            hex(&sealed.chain),
            "{record}"
        );
        assert_eq!(
            attrs["heliosdb.audit.leaf_hash"],
            hex(&sealed.leaf),
            "{record}"
        );
        assert_eq!(
            attrs["db.operation.name"],
            event.operation.as_str(),
            "{record}"
        );
        assert_eq!(attrs["db.system.name"], "heliosdb");
        // A string attribute present with the event's value, or absent when it is empty.
        let optional = |key: &str, value: &str| {
            if value.is_empty() {
                assert!(attrs.get(key).is_none(), "{key} should be absent: {record}");
            } else {
                assert_eq!(attrs[key], value, "{key}: {record}");
            }
        };
        optional("db.namespace", &event.database);
        optional(
            "db.collection.name",
            match event.targets.as_slice() {
                [one] => one,
                _ => "",
            },
        );
        optional("db.query.text", &event.query);
        optional("client.address", &event.client_addr);
        optional("user.name", &event.user);
        optional("enduser.id", &event.user);
        optional("heliosdb.audit.application", &event.application);
        assert_eq!(attrs["session.id"], event.session_id.to_string());
        assert_eq!(attrs["heliosdb.audit.affected_rows"], event.rows);
        assert_eq!(attrs["heliosdb.audit.duration_us"], event.duration_us);
        assert_eq!(attrs["heliosdb.audit.success"], event.success);
        optional("heliosdb.audit.error", event.error.as_deref().unwrap_or(""));
        assert_eq!(
            record["event_name"],
            format!("db.audit.{}", event.class.as_str().to_ascii_lowercase())
        );
        let time = u64::try_from(event.timestamp_us).expect("time") * 1000;
        assert_eq!(record["time_unix_nano"], time);
        // Observed = export time: never before the event.
        let observed = record["observed_time_unix_nano"]
            .as_u64()
            .expect("observed time");
        assert!(observed >= time, "observed before the event: {record}");
        // The resource: the application (no service_name configured) and the database.
        let resource = &record["resource"];
        let service = if event.application.is_empty() {
            "heliosdb"
        } else {
            event.application.as_str()
        };
        assert_eq!(resource["service.name"], service, "{record}");
        assert_eq!(resource["service.instance.id"], db_id.as_str(), "{record}");
        assert_eq!(record["scope"], "heliosdb.audit");
        // Severity and error kind, by the rule of docs/OTLP.md.
        let error_type = attrs.get("error.type").and_then(serde_json::Value::as_str);
        assert_eq!(
            error_type.is_some(),
            !event.success,
            "error.type iff failed: {record}"
        );
        assert_eq!(
            attrs
                .get("db.response.status_code")
                .and_then(serde_json::Value::as_str),
            error_type
        );
        let caller = |kind: &str| {
            [
                "sql",
                "param",
                "transaction",
                "unsupported",
                "constraint",
                "concurrency",
                "permission",
            ]
            .contains(&kind)
        };
        let (severity, text) = match error_type {
            None => (9, "INFO"),
            Some("_OTHER")
                if event.error.is_none()
                    || matches!(event.class, EventClass::Auth | EventClass::App) =>
            {
                (13, "WARN")
            }
            Some(kind) if caller(kind) => (13, "WARN"),
            Some(_) => (17, "ERROR"),
        };
        assert_eq!(record["severity_number"], severity, "{record}");
        assert_eq!(record["severity_text"], text, "{record}");
        for (key, value) in &event.custom {
            assert_eq!(
                attrs[format!("heliosdb.audit.custom.{key}")],
                value.as_str()
            );
        }
    }
    let all: Vec<u64> = (1..=ledger.len() as u64)
        .filter(|s| !quarantined.contains(s))
        .collect();
    let mut sorted = first_seen.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, all, "the receiver misses events");
    let in_order: Vec<u64> = first_seen
        .iter()
        .copied()
        .filter(|s| !late.contains(s))
        .collect();
    let mut expected = in_order.clone();
    expected.sort_unstable();
    assert_eq!(in_order, expected, "records arrived out of seq order");
}

/// The records a receiver holds.
pub fn records(receiver: &Receiver) -> Vec<Value> {
    receiver.seen(|seen| seen.records.clone())
}
