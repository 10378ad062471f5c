//! The backend suite (`heliosdb_engine::backend_suite!`) on fjall — storage conformance,
//! GlueSQL's acceptance suite, the audit, fail-closed and durability contracts — plus what
//! only a disk backend owes: reopening, exclusive open and clear errors for bad paths.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use heliosdb_backend_fjall::FjallBackend;
use heliosdb_engine::backend::{Durability, StorageBackend, StorageError, WriteBatch};

heliosdb_engine::backend_suite!(
    fjall,
    |dir| std::sync::Arc::new(FjallBackend::open(dir).expect("open fjall")),
    persistent = true
);

fn write(backend: &FjallBackend, key: &[u8], durability: Durability) {
    let mut batch = WriteBatch::new();
    batch.put("ks", key.to_vec(), b"value".to_vec());
    backend.commit(&batch, durability).expect("commit");
}

#[test]
fn data_and_keyspaces_survive_reopen() {
    let dir = tempfile::tempdir().expect("dir");
    {
        let backend = FjallBackend::open(dir.path()).expect("open");
        backend.ensure_keyspace("ks").expect("keyspace");
        backend.ensure_keyspace("other").expect("keyspace");
        write(&backend, b"buffered", Durability::Buffered);
        write(&backend, b"synced", Durability::Sync);
    }
    let backend = FjallBackend::open(dir.path()).expect("reopen");
    let names = backend.keyspaces().expect("list");
    assert!(names.contains(&"ks".to_owned()) && names.contains(&"other".to_owned()));
    let snap = backend.snapshot().expect("snapshot");
    assert!(snap.get("ks", b"buffered").expect("get").is_some());
    assert!(snap.get("ks", b"synced").expect("get").is_some());
}

#[test]
fn second_open_is_locked_and_names_the_path() {
    let dir = tempfile::tempdir().expect("dir");
    let _first = FjallBackend::open(dir.path()).expect("open");
    let err = FjallBackend::open(dir.path()).expect_err("second open must fail");
    assert!(matches!(err, StorageError::Locked { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&dir.path().display().to_string()),
        "{err}"
    );
}

#[test]
fn a_regular_file_is_not_a_database() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("data.db");
    std::fs::write(&file, b"hello").expect("write");
    let err = FjallBackend::open(&file).expect_err("file");
    assert!(matches!(err, StorageError::Open { .. }), "{err:?}");
    assert!(err.to_string().contains("data.db"), "{err}");
    assert!(err.to_string().contains("not a directory"), "{err}");
}

#[test]
fn missing_parent_directories_are_created() {
    let dir = tempfile::tempdir().expect("dir");
    let nested = dir.path().join("a/b/c");
    let backend = FjallBackend::open(&nested).expect("open nested");
    assert_eq!(backend.location().as_deref(), Some(nested.as_path()));
}

#[test]
fn a_deleted_lock_file_is_recreated_at_open() {
    let dir = tempfile::tempdir().expect("dir");
    {
        let backend = FjallBackend::open(dir.path()).expect("open");
        backend.ensure_keyspace("ks").expect("keyspace");
        write(&backend, b"kept", Durability::Sync);
    }
    std::fs::remove_file(dir.path().join("lock")).expect("rm lock");
    let backend = FjallBackend::open(dir.path()).expect("reopen without the lock file");
    let snap = backend.snapshot().expect("snapshot");
    assert!(snap.get("ks", b"kept").expect("get").is_some());
    drop(snap);
    // The recreated file locks again.
    let err = FjallBackend::open(dir.path()).expect_err("second open");
    assert!(matches!(err, StorageError::Locked { .. }), "{err}");
}

#[test]
fn side_records_survive_reopen_beside_a_reserve() {
    let dir = tempfile::tempdir().expect("dir");
    {
        let backend = FjallBackend::open(dir.path()).expect("open");
        backend
            .put_side_record("refused-commit", b"undo")
            .expect("put");
    }
    let reserve = dir.path().join(heliosdb_backend_fjall::RESERVE_FILE);
    let len = std::fs::metadata(&reserve).expect("reserve").len();
    assert_eq!(len, heliosdb_backend_fjall::RESERVE_BYTES as u64);
    let backend = FjallBackend::open(dir.path()).expect("reopen");
    assert_eq!(
        backend
            .side_record("refused-commit")
            .expect("read")
            .as_deref(),
        Some(&b"undo"[..])
    );
    assert!(dir.path().join("heliosdb.refused-commit").exists());
    backend
        .remove_side_record("refused-commit")
        .expect("remove");
    assert!(!dir.path().join("heliosdb.refused-commit").exists());
}

#[test]
fn open_errors_are_sentences_not_debug_output() {
    let dir = tempfile::tempdir().expect("dir");
    drop(FjallBackend::open(dir.path()).expect("create"));
    // A damaged version marker: the store refuses to open it.
    std::fs::write(dir.path().join("version"), b"garbage").expect("damage");
    let err = FjallBackend::open(dir.path()).expect_err("damaged store");
    let message = err.to_string();
    assert!(
        message.contains(&dir.path().display().to_string()),
        "{message}"
    );
    for debug in ["FjallError", "Os {", "kind:", "Some(", "LsmTreeError"] {
        assert!(!message.contains(debug), "{message}");
    }
}
