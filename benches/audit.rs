//! What the audit trail costs, measured with criterion.
//!
//! * `dml_latency/{insert,update,delete}/{audit_off,audit_on}`: one single-row statement
//!   with bound parameters, on fjall with group durability, in a database that records
//!   nothing and in one that records every statement. Compare each pair: the target is
//!   audit-on / audit-off ≤ 1.10.
//! * `verify/events`: recomputing the hash chain of a ledger of ~300-byte events on one
//!   core, in events per second (target ≥ 2.5 M/s); `verify/events_all_cores` with the
//!   engine's default hash threads.
//!
//! Opening a database that holds 1,000,000 events is too slow to sample here; the
//! `bench` example measures it (see `docs/BENCHMARKS.md`).
//!
//! ```text
//! cargo bench --bench audit                 # ~40 s
//! cargo bench --bench audit -- --quick      # a rough pass
//! HELIOSDB_BENCH_VERIFY_EVENTS=1000000 cargo bench --bench audit -- verify
//! ```
#![allow(
    clippy::expect_used,
    reason = "a benchmark whose workload fails must stop at once"
)]

mod support;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;
use support::{DEFAULT_ITEM_ROWS, Dml, DmlTarget, RENEW_EVERY};

/// Ledger size of the `verify` group unless `HELIOSDB_BENCH_VERIFY_EVENTS` says otherwise.
const VERIFY_EVENTS: u64 = 200_000;

fn dml_latency(c: &mut Criterion) {
    let mut targets = [false, true].map(|audited| {
        DmlTarget::new(audited, DEFAULT_ITEM_ROWS, Some(RENEW_EVERY)).expect("prepare database")
    });
    let mut group = c.benchmark_group("dml_latency");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for op in Dml::ALL {
        // Off and on back to back for each statement, so the pair sees the same machine.
        for target in &mut targets {
            let id = format!("{}/{}", op.name(), target.label());
            group.bench_function(id, |b| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| target.run_once(op).expect("statement"))
                        .sum()
                });
            });
        }
    }
    group.finish();
    for target in &targets {
        target
            .check()
            .expect("audit off records nothing, audit on verifies");
    }
}

fn verify(c: &mut Criterion) {
    let events = std::env::var("HELIOSDB_BENCH_VERIFY_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(VERIFY_EVENTS);
    let dir = tempfile::tempdir().expect("temp dir");
    let db = support::open(dir.path(), true).expect("open");
    support::build_ledger(&db, events).expect("build ledger");
    let mut group = c.benchmark_group("verify");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(events));
    // The target is stated for one core: every check and hash on the calling thread.
    group.bench_function("events", |b| {
        b.iter(|| black_box(support::verify(&db, events, Some(0)).expect("verify")));
    });
    // The engine's default spreads leaf hashing over the spare cores.
    group.bench_function("events_all_cores", |b| {
        b.iter(|| black_box(support::verify(&db, events, None).expect("verify")));
    });
    group.finish();
}

criterion_group!(benches, dml_latency, verify);
criterion_main!(benches);
