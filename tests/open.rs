//! Opening databases: exclusive access across processes, clear errors for bad paths, and
//! the thread-safety the API promises.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use heliosdb_lite::{Database, Error, StorageError};
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

const HOLDER_ENV: &str = "OPEN_TEST_HOLD_DIR";

/// Child side of `a_second_process_gets_a_locked_error`: hold the database open until
/// stdin closes.
#[test]
fn hold_database_open() {
    let Ok(dir) = std::env::var(HOLDER_ENV) else {
        return;
    };
    let _db = Database::open(&dir).expect("holder open");
    println!("ready");
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
}

#[test]
fn a_second_process_gets_a_locked_error() {
    if std::env::var(HOLDER_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let mut holder = Command::new(std::env::current_exe().expect("exe"))
        .args([
            "--exact",
            "hold_database_open",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HOLDER_ENV, dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn holder");
    let stdout = holder.stdout.take().expect("stdout");
    let ready = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.trim_end().ends_with("ready"));
    assert!(ready, "holder never opened the database");

    let err = Database::open(dir.path()).expect_err("database is held by another process");
    assert!(
        matches!(err, Error::Storage(StorageError::Locked { .. })),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&dir.path().display().to_string()),
        "{err}"
    );

    drop(holder.stdin.take()); // lets the holder exit
    holder.wait().expect("holder exits");
    Database::open(dir.path()).expect("free after the holder exits");
}

#[test]
fn an_unwritable_directory_is_a_clear_error() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("dir");
    let locked = dir.path().join("readonly");
    std::fs::create_dir(&locked).expect("mkdir");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).expect("chmod");
    if std::fs::write(locked.join("probe"), b"x").is_ok() {
        // Running as root: permissions do not apply, nothing to check here.
        return;
    }
    let err = Database::open(locked.join("db")).expect_err("cannot create inside read-only dir");
    assert!(err.to_string().contains("readonly"), "{err}");
}

#[test]
fn database_is_clone_send_sync_and_sessions_are_send() {
    fn clone_send_sync<T: Clone + Send + Sync>() {}
    fn send<T: Send>() {}
    clone_send_sync::<Database>();
    send::<heliosdb_lite::Session>();
}

/// Closing a database that has just taken a large write and opening it again at once
/// works: the open waits for this process's own closed handle to let go of the lock
/// (fjall holds it until its background flushes stop).
#[test]
fn reopen_right_after_a_large_write_and_close() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..3 {
        let db = heliosdb_lite::Database::open(dir.path()).unwrap();
        let mut s = db.session(heliosdb_lite::SessionInfo::new("t"));
        s.execute(
            "CREATE TABLE IF NOT EXISTS big (id INTEGER PRIMARY KEY, pad TEXT)",
            &[],
        )
        .unwrap();
        s.execute("BEGIN", &[]).unwrap();
        let pad = "p".repeat(1000);
        for i in 0..3000 {
            s.execute(
                "INSERT INTO big VALUES (?, ?)",
                &heliosdb_lite::params![round * 10_000 + i, pad.clone()],
            )
            .unwrap();
        }
        s.execute("COMMIT", &[]).unwrap();
        drop(s);
        drop(db);
    }
    let db = heliosdb_lite::Database::open(dir.path()).unwrap();
    let rows = db
        .session(heliosdb_lite::SessionInfo::new("t"))
        .query("SELECT COUNT(*) AS n FROM big", &[])
        .unwrap();
    assert_eq!(rows.get::<i64>(0, "n").unwrap(), 9000);
}
