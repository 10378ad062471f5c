//! A real full disk: a 16 MiB tmpfs mounted for the test (as root, which CI is; elsewhere
//! the tests print why they skip). Rows are inserted one at a time until the disk is full;
//! then space is freed while the database is still open, a few more statements are tried,
//! and the database is closed cleanly. fjall's journal, dropped with space available,
//! completes what the failed commit had half written — so without the engine's refused
//! commit record the refused row would come back. After reopening: exactly the
//! acknowledged rows, an intact ledger, and a `REFUSED_COMMIT` event. Through the library
//! (both durability modes, with a jsonl-file sink on the same disk) and through the
//! `heliosdb` shell.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use heliosdb_lite::engine::audit;
use heliosdb_lite::{Database, DurabilityMode, Error, JsonlFileSink, SessionInfo, params};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A tmpfs mounted on a temporary directory, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `None` (with the reason printed) where this process may not mount.
    fn mount(megabytes: u32) -> Option<Tmpfs> {
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        if !root {
            println!("skipped: mounting a tmpfs needs root (CI runs as root)");
            return None;
        }
        let dir = tempfile::tempdir().expect("mount point");
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={megabytes}m"),
                "heliosdb-test",
            ])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(status.success(), "root could not mount a tmpfs");
        Some(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Fills the disk but `leave` bytes with a file; returns its path.
fn fill(dir: &Path, leave: u64) -> PathBuf {
    let filler = dir.join("filler");
    let mut file = std::fs::File::create(&filler).expect("filler");
    let chunk = vec![0x5a_u8; 64 * 1024];
    loop {
        let free = free_bytes(dir);
        if free <= leave {
            break;
        }
        let n = usize::try_from((free - leave).min(chunk.len() as u64)).expect("small");
        if file.write_all(&chunk[..n]).is_err() {
            break;
        }
    }
    file.sync_all().ok();
    filler
}

fn free_bytes(dir: &Path) -> u64 {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(dir)
        .output()
        .expect("df");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .expect("df output")
}

fn big_value(id: i64) -> String {
    format!("{id:08}-{}", "x".repeat(2000))
}

fn ids(db: &Database) -> Vec<i64> {
    db.session(SessionInfo::new("checker"))
        .query("SELECT id FROM t ORDER BY id", &[])
        .expect("select")
        .rows
        .iter()
        .map(|row| match row[0] {
            heliosdb_lite::Value::I64(id) => id,
            ref other => panic!("{other:?}"),
        })
        .collect()
}

fn library(durability: DurabilityMode) {
    let Some(disk) = Tmpfs::mount(16) else {
        return;
    };
    let db_dir = disk.path().join("db");
    let jsonl = disk.path().join("audit.jsonl");
    let open = || {
        Database::builder()
            .path(&db_dir)
            .durability(durability)
            .sink(JsonlFileSink::new(&jsonl))
            .open()
            .expect("open")
    };
    let db = open();
    let mut s = db.session(SessionInfo::new("writer"));
    s.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)", &[])
        .expect("create");
    let filler = fill(disk.path(), 256 * 1024);
    let mut acknowledged = Vec::new();
    let mut failure = None;
    for id in 1..100_000_i64 {
        match s.execute("INSERT INTO t VALUES ($1, $2)", &params![id, big_value(id)]) {
            Ok(_) => acknowledged.push(id),
            Err(error) => {
                failure = Some(error);
                break;
            }
        }
    }
    let failure = failure.expect("the disk never filled");
    assert!(
        failure.to_string().contains("No space left on device"),
        "{failure}"
    );
    assert!(db.is_poisoned());
    // Space comes back while the database is still open: nothing more is written.
    std::fs::remove_file(&filler).expect("free space");
    for id in [900_001_i64, 900_002] {
        let error = s
            .execute("INSERT INTO t VALUES ($1, 'after')", &params![id])
            .expect_err("a poisoned database writes nothing");
        assert!(
            matches!(error, Error::Storage(heliosdb_lite::StorageError::Poisoned)),
            "{error:?}"
        );
    }
    drop(s);
    drop(db); // a clean close: the journal is flushed now that there is space

    let db = open();
    assert_eq!(ids(&db), acknowledged, "{durability:?}: rows after reopen");
    let report = db.verify().expect("verify");
    assert!(report.is_intact(), "{:?}", report.problem);
    let seq_before_select = db.audit_head().seq;
    let event = audit::tail(db.backend(), usize::MAX)
        .expect("tail")
        .into_iter()
        .map(|r| r.event)
        .find(|e| e.operation == "REFUSED_COMMIT")
        .expect("a REFUSED_COMMIT event");
    assert!(event.query.contains("No space left on device"), "{event:?}");
    // The sink resumes: its file verifies and ends where the ledger does.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let status = db.sink_status();
        if status.iter().all(|s| s.delivered_seq >= seq_before_select) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "sink stuck: {status:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let file = std::fs::File::open(&jsonl).expect("jsonl");
    let export = audit::verify_export(BufReader::new(file)).expect("read export");
    assert!(export.is_intact(), "{:?}", export.problem);
    assert!(export.last_seq >= Some(seq_before_select));
}

#[test]
fn library_sync_refused_rows_stay_refused_after_space_frees() {
    library(DurabilityMode::Sync);
}

#[test]
fn library_group_refused_rows_stay_refused_after_space_frees() {
    library(DurabilityMode::Group {
        interval: Duration::from_millis(10),
    });
}

/// One line from either stream of the shell.
enum Line {
    Out(String),
    Err(String),
}

fn shell(durability: &str) {
    let Some(disk) = Tmpfs::mount(16) else {
        return;
    };
    let db = disk.path().join("db");
    let db_arg = db.to_str().expect("utf-8");
    let created = common::heliosdb(&[
        "--db",
        db_arg,
        "sql",
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)",
    ]);
    common::assert_exit(&created, 0);
    let filler = fill(disk.path(), 256 * 1024);
    let mut child = Command::new(env!("CARGO_BIN_EXE_heliosdb"))
        .args(["--db", db_arg, "shell"])
        .env("HELIOSDB_DATABASE__DURABILITY", durability)
        .env("USER", "tester")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the shell");
    let (lines, received) = mpsc::channel();
    let out = child.stdout.take().expect("stdout");
    let err = child.stderr.take().expect("stderr");
    let to_out = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = to_out.send(Line::Out(line));
        }
    });
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = lines.send(Line::Err(line));
        }
    });
    let mut stdin = child.stdin.take().expect("stdin");
    let mut send = |sql: String| -> Line {
        writeln!(stdin, "{sql}").expect("write to the shell");
        stdin.flush().expect("flush");
        received
            .recv_timeout(Duration::from_secs(30))
            .expect("the shell answers")
    };
    let mut acknowledged = Vec::new();
    let mut failed = None;
    for id in 1..100_000_i64 {
        match send(format!("INSERT INTO t VALUES ({id}, '{}');", big_value(id))) {
            Line::Out(line) => {
                assert_eq!(line, "INSERT 1");
                acknowledged.push(id);
            }
            Line::Err(line) => {
                failed = Some(line);
                break;
            }
        }
    }
    let failed = failed.expect("the disk never filled");
    assert!(failed.contains("No space left on device"), "{failed}");
    std::fs::remove_file(&filler).expect("free space");
    for id in [900_001, 900_002] {
        match send(format!("INSERT INTO t VALUES ({id}, 'after');")) {
            Line::Err(line) => assert!(line.contains("poisoned"), "{line}"),
            Line::Out(line) => panic!("a poisoned database took a row: {line}"),
        }
    }
    drop(stdin); // end of input: the shell closes the database cleanly
    child.wait().expect("shell exits");

    let count = common::heliosdb(&[
        "--db",
        db_arg,
        "sql",
        "--json",
        "SELECT COUNT(*) AS n FROM t",
    ]);
    common::assert_exit(&count, 0);
    let expected = format!("[[{}]]", acknowledged.len());
    assert!(
        common::stdout(&count).contains(&expected),
        "{durability}: {} for {} acknowledged",
        common::stdout(&count),
        acknowledged.len()
    );
    let verify = common::heliosdb(&["--db", db_arg, "verify"]);
    common::assert_exit(&verify, 0);
    let tail = common::heliosdb(&["--db", db_arg, "audit", "tail", "-n", "5"]);
    assert!(
        common::stdout(&tail).contains("REFUSED_COMMIT"),
        "{}",
        common::stdout(&tail)
    );
}

#[test]
fn shell_group_refused_rows_stay_refused_after_space_frees() {
    shell("group");
}

#[test]
fn shell_sync_refused_rows_stay_refused_after_space_frees() {
    shell("sync");
}
