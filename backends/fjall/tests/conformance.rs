//! The shared backend conformance checks, on fjall, plus what only a disk backend owes:
//! reopening, exclusive open and clear errors for bad paths.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use heliosdb_backend_fjall::FjallBackend;
use heliosdb_engine::backend::{Durability, StorageBackend, StorageError, WriteBatch};
use std::ops::Deref;

/// A backend in a temporary directory that lives as long as the backend.
struct TempBackend {
    backend: FjallBackend,
    _dir: tempfile::TempDir,
}

impl Deref for TempBackend {
    type Target = FjallBackend;
    fn deref(&self) -> &FjallBackend {
        &self.backend
    }
}

fn temp_backend() -> TempBackend {
    let dir = tempfile::tempdir().expect("temp dir");
    TempBackend {
        backend: FjallBackend::open(dir.path()).expect("open"),
        _dir: dir,
    }
}

heliosdb_engine::backend_conformance_tests!(temp_backend());

fn write(backend: &FjallBackend, key: &[u8], durability: Durability) {
    let mut batch = WriteBatch::new();
    batch.put("ks", key.to_vec(), b"value".to_vec());
    backend.commit(batch, durability).expect("commit");
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
