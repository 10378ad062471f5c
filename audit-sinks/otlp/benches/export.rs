//! OTLP export costs, measured with criterion against the loopback receiver of the tests
//! (`tests/support/receiver.rs`, decoding every request; counting only).
//!
//! * `export/sustained_http`, `export/sustained_grpc`: a fresh sink catching up with a
//!   20,000-event ledger (fjall, on disk) — throughput in events/s. Target ≥ 50,000/s.
//! * `commit/sink_off`, `commit/sink_on_receiver_up`, `commit/sink_on_receiver_down`: one
//!   autocommit INSERT (fjall, group commit) with no sink, with an OTLP sink exporting to a
//!   live receiver, and with one whose receiver is down (retrying in the background).
//!   `commit/sink_off_again` repeats the first at the end, to show the drift of the
//!   machine and the disk over the run. Target: on/off ≤ 1.05.
//!
//! After the measurements the bench prints the two target figures on their own lines
//! (`target: ...`): the sustained export rate of each transport, and the commit latency
//! ratios sink-on/sink-off with the receiver up and down (means over every timed
//! iteration, warm-up included).
//!
//! ```text
//! cargo bench -p heliosdb-otlp --bench export
//! ```
//!
//! A quick check that it builds and runs (figures meaningless): `cargo test -p
//! heliosdb-otlp --bench export` (one iteration each), or `cargo bench -p heliosdb-otlp
//! --bench export -- --quick`; `HELIOSDB_BENCH_EVENTS` sets the ledger size (default
//! 20,000).
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "a benchmark whose setup fails must stop at once"
)]

#[path = "../tests/support/receiver.rs"]
#[allow(dead_code)]
mod receiver;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use heliosdb_backend_fjall::FjallBackend;
use heliosdb_engine::{Database, DatabaseOptions, SessionInfo};
use heliosdb_otlp::{OtlpOptions, OtlpSink, Protocol};
use receiver::{Receiver, Wire};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The sustained benchmark's ledger size: `HELIOSDB_BENCH_EVENTS`, default 20,000.
fn ledger_events() -> u64 {
    std::env::var("HELIOSDB_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

/// Per benchmark: iterations (events, for the sustained ones) and the time they took.
static TOTALS: Mutex<BTreeMap<&'static str, (u64, Duration)>> = Mutex::new(BTreeMap::new());

fn record(name: &'static str, count: u64, took: Duration) {
    let mut totals = TOTALS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let entry = totals.entry(name).or_default();
    entry.0 += count;
    entry.1 += took;
}

/// The commit benchmarks' linger: `HELIOSDB_BENCH_LINGER_MS`, default 100 ms.
fn linger() -> Duration {
    let ms = std::env::var("HELIOSDB_BENCH_LINGER_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    Duration::from_millis(ms)
}

fn open(dir: &Path) -> Database {
    let backend = FjallBackend::open(dir).expect("fjall");
    Database::with_backend(Arc::new(backend), DatabaseOptions::default()).expect("open")
}

fn sink(cursor: &Path, endpoint: &str, protocol: Protocol) -> OtlpSink {
    let options = OtlpOptions::new(cursor)
        .endpoint(endpoint)
        .protocol(protocol)
        .resolve_with(|_| None)
        .expect("options");
    OtlpSink::from_resolved(options)
}

/// A database holding about `ledger_events()` events (one transaction of inserts).
fn filled(dir: &Path) -> Database {
    let db = open(dir);
    let mut s = db.session(SessionInfo::new("bench").application("bench"));
    s.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)", &[])
        .expect("create");
    s.execute("BEGIN", &[]).expect("begin");
    for i in 0..ledger_events() {
        s.execute(&format!("INSERT INTO t VALUES ({i}, 'value {i}')"), &[])
            .expect("insert");
    }
    s.execute("COMMIT", &[]).expect("commit");
    db
}

fn sustained(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("dir");
    let db = filled(&dir.path().join("db"));
    let head = db.audit_head().seq;
    let mut group = c.benchmark_group("export");
    group.sample_size(10);
    group.throughput(Throughput::Elements(head));
    for (name, wire, protocol) in [
        ("sustained_http", Wire::Http, Protocol::HttpProtobuf),
        ("sustained_grpc", Wire::Grpc, Protocol::Grpc),
    ] {
        let receiver = Receiver::start(wire, &dir.path().join("unused.jsonl"));
        receiver.faults(|f| f.count_only = true);
        let mut run = 0u64;
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    run += 1;
                    let cursor = dir.path().join(format!("{name}-{run}.cursor"));
                    let before = receiver.seen(|s| s.accepted);
                    let start = Instant::now();
                    db.attach_sink(Box::new(sink(&cursor, &receiver.endpoint(), protocol)))
                        .expect("attach");
                    while receiver.seen(|s| s.accepted) < before + head {
                        std::thread::sleep(Duration::from_micros(200));
                    }
                    total += start.elapsed();
                }
                record(name, iters * head, total);
                total
            });
        });
    }
    group.finish();
}

fn commit(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("dir");
    let up = Receiver::start(Wire::Http, &dir.path().join("unused.jsonl"));
    up.faults(|f| f.count_only = true);
    let down = receiver::closed_port();
    let mut group = c.benchmark_group("commit");
    for (name, endpoint) in [
        ("sink_off", None),
        ("sink_on_receiver_up", Some(up.endpoint())),
        ("sink_on_receiver_down", Some(format!("http://{down}"))),
        // The first variant again: how much of the spread is the order they run in.
        ("sink_off_again", None),
    ] {
        let db = open(&dir.path().join(name));
        if let Some(endpoint) = endpoint {
            let cursor = dir.path().join(format!("{name}.cursor"));
            let options = OtlpOptions::new(cursor)
                .endpoint(endpoint)
                .linger(linger())
                .resolve_with(|_| None)
                .expect("options");
            db.attach_sink(Box::new(OtlpSink::from_resolved(options)))
                .expect("attach");
        }
        let mut s = db.session(SessionInfo::new("bench"));
        s.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)", &[])
            .expect("create");
        let mut i = 0u64;
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    i += 1;
                    s.execute(&format!("INSERT INTO t VALUES ({i}, 'value {i}')"), &[])
                        .expect("insert");
                }
                let took = start.elapsed();
                record(name, iters, took);
                took
            });
        });
    }
    group.finish();
}

/// Prints the target figures from what the benchmarks above measured.
fn targets(_: &mut Criterion) {
    let totals = TOTALS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let mean = |name: &str| {
        totals
            .get(name)
            .filter(|(n, _)| *n > 0)
            .map(|(n, took)| took.as_secs_f64() / *n as f64)
    };
    println!();
    for (name, transport) in [
        ("sustained_http", "OTLP/HTTP"),
        ("sustained_grpc", "OTLP/gRPC"),
    ] {
        if let Some(per_event) = mean(name).filter(|m| *m > 0.0) {
            println!(
                "target: sustained export, {transport}, loopback receiver: {:.0} events/s (target >= 50000)",
                1.0 / per_event
            );
        }
    }
    if let Some(off) = mean("sink_off").filter(|m| *m > 0.0) {
        for (name, what) in [
            ("sink_on_receiver_up", "receiver up"),
            ("sink_on_receiver_down", "receiver down"),
        ] {
            if let Some(on) = mean(name) {
                println!(
                    "target: commit latency ratio, OTLP sink on ({what}) / off: {:.3} (target <= 1.05; {:.1} us vs {:.1} us)",
                    on / off,
                    on * 1e6,
                    off * 1e6
                );
            }
        }
        if let Some(again) = mean("sink_off_again") {
            println!(
                "drift: sink off at the end / at the start: {:.3} (the noise floor of the ratios above)",
                again / off
            );
        }
    }
}

criterion_group!(benches, sustained, commit, targets);
criterion_main!(benches);
