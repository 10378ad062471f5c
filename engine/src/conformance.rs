//! Conformance checks every [`StorageBackend`] must pass, run by each backend crate through
//! [`backend_conformance_tests!`](crate::backend_conformance_tests).
//!
//! Each check takes a fresh, empty backend and panics on the first violation (they are test
//! code).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use crate::backend::{Direction, Durability, StorageBackend, StorageError, WriteBatch};
use std::ops::Bound;

fn collect(
    backend: &dyn StorageBackend,
    keyspace: &str,
    lower: Bound<&[u8]>,
    upper: Bound<&[u8]>,
    direction: Direction,
) -> Vec<Vec<u8>> {
    let snapshot = backend.snapshot().unwrap();
    snapshot
        .range(keyspace, lower, upper, direction)
        .unwrap()
        .map(|kv| kv.unwrap().0)
        .collect()
}

fn put_all(backend: &dyn StorageBackend, keyspace: &str, keys: &[&[u8]]) {
    let mut batch = WriteBatch::new();
    for key in keys {
        batch.put(keyspace, key.to_vec(), [b"v:", *key].concat());
    }
    backend.commit(&batch, Durability::Buffered).unwrap();
}

pub fn put_get_overwrite_delete(backend: &dyn StorageBackend) {
    backend.ensure_keyspace("ks").unwrap();
    put_all(backend, "ks", &[b"a", b"b"]);
    let snap = backend.snapshot().unwrap();
    assert_eq!(snap.get("ks", b"a").unwrap(), Some(b"v:a".to_vec()));
    assert_eq!(snap.get("ks", b"zz").unwrap(), None);

    let mut batch = WriteBatch::new();
    batch.put("ks", b"a".to_vec(), b"new".to_vec());
    batch.delete("ks", b"b".to_vec());
    batch.delete("ks", b"never-existed".to_vec());
    backend.commit(&batch, Durability::Sync).unwrap();
    let snap = backend.snapshot().unwrap();
    assert_eq!(snap.get("ks", b"a").unwrap(), Some(b"new".to_vec()));
    assert_eq!(snap.get("ks", b"b").unwrap(), None);
}

pub fn later_operation_on_same_key_wins(backend: &dyn StorageBackend) {
    backend.ensure_keyspace("ks").unwrap();
    let mut batch = WriteBatch::new();
    batch.put("ks", b"k".to_vec(), b"1".to_vec());
    batch.put("ks", b"k".to_vec(), b"2".to_vec());
    batch.put("ks", b"gone".to_vec(), b"x".to_vec());
    batch.delete("ks", b"gone".to_vec());
    backend.commit(&batch, Durability::Buffered).unwrap();
    let snap = backend.snapshot().unwrap();
    assert_eq!(snap.get("ks", b"k").unwrap(), Some(b"2".to_vec()));
    assert_eq!(snap.get("ks", b"gone").unwrap(), None);
}

pub fn ranges_honour_bounds_and_direction(backend: &dyn StorageBackend) {
    backend.ensure_keyspace("ks").unwrap();
    put_all(backend, "ks", &[b"a", b"b", b"c", b"d"]);
    let k = |keys: &[&[u8]]| keys.iter().map(|k| k.to_vec()).collect::<Vec<_>>();
    use Bound::{Excluded, Included, Unbounded};
    use Direction::{Forward, Reverse};
    let all = collect(backend, "ks", Unbounded, Unbounded, Forward);
    assert_eq!(all, k(&[b"a", b"b", b"c", b"d"]));
    assert_eq!(
        collect(backend, "ks", Unbounded, Unbounded, Reverse),
        k(&[b"d", b"c", b"b", b"a"])
    );
    assert_eq!(
        collect(backend, "ks", Included(b"b"), Included(b"c"), Forward),
        k(&[b"b", b"c"])
    );
    assert_eq!(
        collect(backend, "ks", Excluded(b"b"), Excluded(b"d"), Forward),
        k(&[b"c"])
    );
    assert_eq!(
        collect(backend, "ks", Excluded(b"a"), Unbounded, Reverse),
        k(&[b"d", b"c", b"b"])
    );
    assert_eq!(
        collect(backend, "ks", Unbounded, Excluded(b"c"), Reverse),
        k(&[b"b", b"a"])
    );
    // Empty and inverted ranges yield nothing rather than failing.
    assert!(collect(backend, "ks", Included(b"c"), Excluded(b"c"), Forward).is_empty());
    assert!(collect(backend, "ks", Included(b"d"), Included(b"a"), Forward).is_empty());
}

pub fn prefix_scans_include_ff_edges(backend: &dyn StorageBackend) {
    backend.ensure_keyspace("ks").unwrap();
    put_all(
        backend,
        "ks",
        &[
            b"p",
            b"p\x00",
            b"p\xff",
            b"p\xff\xff",
            b"q",
            b"\xff",
            b"\xff\x01",
        ],
    );
    let snap = backend.snapshot().unwrap();
    let scan = |prefix: &[u8], direction| {
        snap.prefix("ks", prefix, direction)
            .unwrap()
            .map(|kv| kv.unwrap().0)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        scan(b"p", Direction::Forward),
        vec![
            b"p".to_vec(),
            b"p\x00".to_vec(),
            b"p\xff".to_vec(),
            b"p\xff\xff".to_vec()
        ]
    );
    assert_eq!(
        scan(b"p\xff", Direction::Reverse),
        vec![b"p\xff\xff".to_vec(), b"p\xff".to_vec()]
    );
    assert_eq!(
        scan(b"\xff", Direction::Forward),
        vec![b"\xff".to_vec(), b"\xff\x01".to_vec()]
    );
    assert_eq!(scan(b"", Direction::Forward).len(), 7);
}

pub fn snapshots_are_isolated_from_later_commits(backend: &dyn StorageBackend) {
    backend.ensure_keyspace("ks").unwrap();
    put_all(backend, "ks", &[b"a"]);
    let before = backend.snapshot().unwrap();
    let mut batch = WriteBatch::new();
    batch.put("ks", b"b".to_vec(), b"x".to_vec());
    batch.delete("ks", b"a".to_vec());
    backend.commit(&batch, Durability::Buffered).unwrap();
    assert_eq!(before.get("ks", b"a").unwrap(), Some(b"v:a".to_vec()));
    assert_eq!(before.get("ks", b"b").unwrap(), None);
    let keys: Vec<_> = before
        .range("ks", Bound::Unbounded, Bound::Unbounded, Direction::Forward)
        .unwrap()
        .map(|kv| kv.unwrap().0)
        .collect();
    assert_eq!(keys, vec![b"a".to_vec()]);
    let after = backend.snapshot().unwrap();
    assert_eq!(after.get("ks", b"a").unwrap(), None);
    assert_eq!(after.get("ks", b"b").unwrap(), Some(b"x".to_vec()));
}

pub fn batches_are_atomic_across_keyspaces(backend: &dyn StorageBackend) {
    backend.ensure_keyspace("data").unwrap();
    backend.ensure_keyspace("audit").unwrap();
    let mut batch = WriteBatch::new();
    batch.put("data", b"row".to_vec(), b"1".to_vec());
    batch.put("audit", b"event".to_vec(), b"1".to_vec());
    backend.commit(&batch, Durability::Sync).unwrap();
    let snap = backend.snapshot().unwrap();
    assert!(snap.get("data", b"row").unwrap().is_some());
    assert!(snap.get("audit", b"event").unwrap().is_some());
}

pub fn failed_batches_apply_nothing(backend: &dyn StorageBackend) {
    backend.ensure_keyspace("ks").unwrap();
    let mut batch = WriteBatch::new();
    batch.put("ks", b"first".to_vec(), b"1".to_vec());
    batch.put("missing", b"k".to_vec(), b"1".to_vec());
    let err = backend.commit(&batch, Durability::Buffered).unwrap_err();
    assert!(
        matches!(err, StorageError::UnknownKeyspace { ref name } if name == "missing"),
        "{err:?}"
    );

    let mut batch = WriteBatch::new();
    batch.put("ks", b"second".to_vec(), b"1".to_vec());
    batch.put(
        "ks",
        vec![7u8; crate::backend::MAX_KEY_LEN + 1],
        b"1".to_vec(),
    );
    let err = backend.commit(&batch, Durability::Buffered).unwrap_err();
    assert!(matches!(err, StorageError::KeyTooLarge { .. }), "{err:?}");

    let mut batch = WriteBatch::new();
    batch.put("ks", Vec::new(), b"1".to_vec());
    assert!(backend.commit(&batch, Durability::Buffered).is_err());

    let snap = backend.snapshot().unwrap();
    assert_eq!(snap.get("ks", b"first").unwrap(), None);
    assert_eq!(snap.get("ks", b"second").unwrap(), None);
}

pub fn keyspaces_are_listed_and_validated(backend: &dyn StorageBackend) {
    backend.ensure_keyspace("beta").unwrap();
    backend.ensure_keyspace("alpha").unwrap();
    backend.ensure_keyspace("alpha").unwrap(); // idempotent
    let names = backend.keyspaces().unwrap();
    assert!(names.windows(2).all(|w| w[0] < w[1]), "{names:?}");
    assert!(names.contains(&"alpha".to_owned()) && names.contains(&"beta".to_owned()));
    for bad in ["", "has space", "slash/y", &"x".repeat(300)] {
        assert!(
            matches!(
                backend.ensure_keyspace(bad),
                Err(StorageError::InvalidKeyspaceName { .. })
            ),
            "{bad:?} accepted"
        );
    }
    let snap = backend.snapshot().unwrap();
    assert!(matches!(
        snap.get("nope", b"k"),
        Err(StorageError::UnknownKeyspace { .. })
    ));
}

pub fn persist_succeeds(backend: &dyn StorageBackend) {
    backend.ensure_keyspace("ks").unwrap();
    put_all(backend, "ks", &[b"a"]);
    backend.persist().unwrap();
}

pub fn side_records_round_trip(backend: &dyn StorageBackend) {
    assert_eq!(backend.side_record("refused-commit").unwrap(), None);
    backend.put_side_record("refused-commit", b"first").unwrap();
    backend
        .put_side_record("refused-commit", b"second")
        .unwrap();
    backend.put_side_record("other", b"x").unwrap();
    assert_eq!(
        backend.side_record("refused-commit").unwrap().as_deref(),
        Some(&b"second"[..])
    );
    backend.remove_side_record("refused-commit").unwrap();
    backend.remove_side_record("refused-commit").unwrap(); // absent: no error
    assert_eq!(backend.side_record("refused-commit").unwrap(), None);
    assert_eq!(
        backend.side_record("other").unwrap().as_deref(),
        Some(&b"x"[..])
    );
    for bad in ["", "Upper", "../escape", "a/b", &"x".repeat(65)] {
        assert!(
            backend.put_side_record(bad, b"x").is_err(),
            "{bad:?} accepted"
        );
        assert!(backend.side_record(bad).is_err(), "{bad:?} read");
    }
    // Side records are not keyspaces and stay out of every snapshot.
    assert!(!backend.keyspaces().unwrap().iter().any(|k| k == "other"));
}

/// Declares one `#[test]` per conformance check. `$make` is an expression that returns a
/// fresh backend (anything that derefs to a `StorageBackend`, kept alive for the test).
#[macro_export]
macro_rules! backend_conformance_tests {
    ($make:expr) => {
        $crate::backend_conformance_tests!(@each $make;
            put_get_overwrite_delete,
            later_operation_on_same_key_wins,
            ranges_honour_bounds_and_direction,
            prefix_scans_include_ff_edges,
            snapshots_are_isolated_from_later_commits,
            batches_are_atomic_across_keyspaces,
            failed_batches_apply_nothing,
            keyspaces_are_listed_and_validated,
            persist_succeeds,
            side_records_round_trip,
        );
    };
    (@each $make:expr; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                let backend = $make;
                $crate::conformance::$check(&*backend);
            }
        )*
    };
}
