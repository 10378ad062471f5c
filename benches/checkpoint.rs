//! Checkpoint and proof costs at 1,000,000 events, measured with criterion.
//!
//! * `checkpoint/sign`: signing a checkpoint body (Ed25519, C2SP signed note). Target
//!   ≤ 100 µs.
//! * `checkpoint/root`: the Merkle root at the current size from the frontier, O(log n).
//! * `proof/inclusion_generate` and `proof/inclusion_verify`: an RFC 9162 inclusion proof
//!   for a random event of the 1,000,000-event ledger, built from stored nodes, and its
//!   check. Target ≤ 1 ms each.
//! * `proof/consistency_generate`: a consistency proof between two random sizes.
//!
//! ```text
//! cargo bench --bench checkpoint
//! HELIOSDB_BENCH_TREE_EVENTS=100000 cargo bench --bench checkpoint -- --quick
//! ```
//!
//! The ledger is built directly on an in-memory backend with `ledger::seal` and
//! `tree::append` (synthetic events of ~200 canonical bytes), then opened as a database.
#![allow(
    clippy::expect_used,
    reason = "a benchmark whose setup fails must stop at once"
)]

use criterion::{Criterion, criterion_group, criterion_main};
use heliosdb_lite::checkpoint::{Checkpoint, SignerKey};
use heliosdb_lite::engine::Database;
use heliosdb_lite::engine::audit::merkle::{self, Frontier};
use heliosdb_lite::engine::audit::{AuditEvent, EventClass, ledger, tree};
use heliosdb_lite::engine::backend::{Durability, StorageBackend, WriteBatch};
use heliosdb_lite::{DatabaseOptions, MemoryBackend};
use rand::Rng;
use std::hint::black_box;
use std::sync::Arc;

fn events() -> u64 {
    std::env::var("HELIOSDB_BENCH_TREE_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

/// A database whose ledger holds `n` synthetic events.
fn ledger_of(n: u64) -> Database {
    let backend: Arc<dyn StorageBackend> = Arc::new(MemoryBackend::new());
    // Create the catalog and the database id, then seal events straight into the backend.
    let database_id = Database::with_backend(Arc::clone(&backend), DatabaseOptions::default())
        .expect("create")
        .database_id();
    let mut head =
        ledger::load_head(&*backend.snapshot().expect("snapshot"), &database_id).expect("head");
    let mut frontier = Frontier::new();
    let mut seq = 0;
    while seq < n {
        let count = (n - seq).min(10_000);
        let mut batch_events: Vec<AuditEvent> = (0..count)
            .map(|i| AuditEvent {
                timestamp_us: 1_700_000_000_000_000 + (seq + i) as i64,
                database_id,
                session_id: 1,
                user: format!("user{}", (seq + i) % 20),
                class: EventClass::Dml,
                operation: "INSERT".to_owned(),
                targets: vec![format!("table{}", (seq + i) % 50)],
                query: "INSERT INTO readings VALUES ($1, $2, $3)".to_owned(),
                params: vec!["1".to_owned(), "2".to_owned(), "3".to_owned()],
                rows: 1,
                success: true,
                ..AuditEvent::default()
            })
            .collect();
        let mut batch = WriteBatch::new();
        head = ledger::seal(head, &mut batch_events, &mut batch).expect("seal");
        let leaves = batch_events
            .iter()
            .map(|e| heliosdb_lite::engine::audit::leaf_hash(&e.canonical()));
        tree::append(&mut frontier, leaves, &mut batch);
        backend
            .commit(&batch, Durability::Buffered)
            .expect("commit");
        seq += count;
    }
    Database::with_backend(backend, DatabaseOptions::default()).expect("open")
}

fn checkpoints(c: &mut Criterion) {
    let n = events();
    let db = ledger_of(n);
    let (size, root) = db.audit_root();
    assert_eq!(size, n);
    let key = SignerKey::generate("bench").expect("key");
    let checkpoint = Checkpoint::new(&db.database_id(), size, root);

    let mut group = c.benchmark_group("checkpoint");
    group.bench_function("sign", |b| b.iter(|| black_box(checkpoint.sign(&key))));
    group.bench_function("root", |b| b.iter(|| black_box(db.audit_root())));
    group.finish();

    let mut rng = rand::rng();
    let mut group = c.benchmark_group("proof");
    group.bench_function("inclusion_generate", |b| {
        b.iter(|| {
            let seq = rng.random_range(1..=size);
            black_box(db.inclusion_proof(seq, size).expect("proof"))
        });
    });
    let seq = size / 3 + 1;
    let path = db.inclusion_proof(seq, size).expect("proof");
    let snapshot = db.backend().snapshot().expect("snapshot");
    let leaf = merkle::NodeSource::node(
        &mut tree::StoredNodes::new(&*snapshot),
        merkle::NodeId {
            level: 0,
            index: seq - 1,
        },
    )
    .expect("leaf");
    group.bench_function("inclusion_verify", |b| {
        b.iter(|| {
            assert!(merkle::verify_inclusion(seq - 1, size, &leaf, &path, &root));
        });
    });
    group.bench_function("consistency_generate", |b| {
        b.iter(|| {
            let old = rng.random_range(1..=size);
            black_box(db.consistency_proof(old, size).expect("proof"))
        });
    });
    group.finish();
}

criterion_group!(benches, checkpoints);
criterion_main!(benches);
