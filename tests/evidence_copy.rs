//! A database directory as an auditor receives it: read-only (a read-only bind mount as
//! root, which CI is; a write-protected tree otherwise). The reading commands work on it
//! and nothing in it is created or changed; the others say plainly why they cannot and how
//! to work on a copy (`--copy-to`). Also: a deleted lock file, and storage errors that read
//! as sentences, not Rust debug output.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{assert_exit, heliosdb, path, stderr, stdout};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The database directory, made read-only: a read-only bind mount of it (as root, whom
/// file modes do not stop), or the tree's write bits removed. Undone on drop.
struct ReadOnlyTree {
    mount: Option<tempfile::TempDir>,
    original: std::path::PathBuf,
}

impl ReadOnlyTree {
    fn of(dir: &Path) -> ReadOnlyTree {
        if is_root() {
            let mount = tempfile::tempdir().expect("mount point");
            let bind = |args: &[&str]| {
                let status = Command::new("mount").args(args).status().expect("mount");
                assert!(status.success(), "mount {args:?}");
            };
            bind(&["--bind", path(dir), path(mount.path())]);
            bind(&["-o", "remount,ro,bind", path(mount.path())]);
            ReadOnlyTree {
                mount: Some(mount),
                original: dir.to_path_buf(),
            }
        } else {
            let status = Command::new("chmod")
                .args(["-R", "a-w", path(dir)])
                .status()
                .expect("chmod");
            assert!(status.success());
            ReadOnlyTree {
                mount: None,
                original: dir.to_path_buf(),
            }
        }
    }

    fn path(&self) -> &Path {
        self.mount.as_ref().map_or(&self.original, |m| m.path())
    }
}

impl Drop for ReadOnlyTree {
    fn drop(&mut self) {
        match &self.mount {
            Some(mount) => {
                let _ = Command::new("umount").arg(mount.path()).status();
            }
            None => {
                let _ = Command::new("chmod")
                    .args(["-R", "u+w", path(&self.original)])
                    .status();
            }
        }
    }
}

/// Every file under `dir` with its size and modification time.
fn listing(dir: &Path) -> BTreeMap<String, (u64, std::time::SystemTime)> {
    let mut found = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(next) = stack.pop() {
        for entry in std::fs::read_dir(&next).expect("read dir") {
            let entry = entry.expect("entry");
            let meta = entry.metadata().expect("metadata");
            if meta.is_dir() {
                stack.push(entry.path());
            }
            let name = entry
                .path()
                .strip_prefix(dir)
                .unwrap()
                .display()
                .to_string();
            found.insert(name, (meta.len(), meta.modified().expect("mtime")));
        }
    }
    found
}

fn a_database() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("dir");
    let created = heliosdb(&[
        "--db",
        path(dir.path()),
        "sql",
        "CREATE TABLE patient (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO patient VALUES (1, 'Ada'), (2, 'Grace')",
    ]);
    assert_exit(&created, 0);
    dir
}

/// No Rust debug output in what a user reads.
#[track_caller]
fn assert_sentence(text: &str) {
    for debug in [
        "Os {",
        "kind:",
        "FjallError",
        "LsmTreeError",
        "Some(",
        "code: ",
    ] {
        assert!(!text.contains(debug), "debug output in: {text}");
    }
}

#[test]
fn reading_commands_work_on_a_read_only_tree_and_change_nothing() {
    let dir = a_database();
    let tree = ReadOnlyTree::of(dir.path());
    let db = path(tree.path());
    let before = listing(tree.path());

    let verify = heliosdb(&["--db", db, "verify"]);
    assert_exit(&verify, 0);
    assert!(stdout(&verify).contains("intact"), "{}", stdout(&verify));
    assert!(
        stderr(&verify).contains("is read-only; reading a temporary copy"),
        "{}",
        stderr(&verify)
    );

    let tail = heliosdb(&["--db", db, "audit", "tail", "-n", "5"]);
    assert_exit(&tail, 0);
    assert!(stdout(&tail).contains("INSERT"), "{}", stdout(&tail));

    let out = tempfile::tempdir().expect("out");
    let export_file = out.path().join("audit.jsonl");
    let export = heliosdb(&[
        "--db",
        db,
        "audit",
        "export",
        "--format",
        "jsonl",
        "--out",
        path(&export_file),
    ]);
    assert_exit(&export, 0);
    let checked = heliosdb(&["verify-export", path(&export_file)]);
    assert_exit(&checked, 0);

    let json = heliosdb(&["--db", db, "verify", "--json"]);
    assert_exit(&json, 0);
    let report: serde_json::Value = serde_json::from_str(&stdout(&json)).expect("json");
    assert_eq!(report["intact"], serde_json::Value::Bool(true), "{report}");

    assert_eq!(listing(tree.path()), before, "the read-only tree changed");
    // No temporary copy is left behind.
    let leftovers = std::fs::read_dir(std::env::temp_dir())
        .expect("temp dir")
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("heliosdb-copy-{}-", std::process::id()))
        })
        .count();
    assert_eq!(leftovers, 0);
}

#[test]
fn writing_commands_say_why_and_copy_to_runs_them_on_a_copy() {
    let dir = a_database();
    let tree = ReadOnlyTree::of(dir.path());
    let db = path(tree.path());

    let refused = heliosdb(&["--db", db, "sql", "SELECT name FROM patient"]);
    assert_exit(&refused, 2);
    let message = stderr(&refused);
    assert!(message.contains("the directory is read-only"), "{message}");
    assert!(message.contains("--copy-to DIR"), "{message}");
    assert!(
        message.contains(db),
        "the message names the path: {message}"
    );
    assert_sentence(&message);

    let copy = tempfile::tempdir().expect("copy");
    let copied = heliosdb(&[
        "--db",
        db,
        "--copy-to",
        path(copy.path()),
        "sql",
        "SELECT name FROM patient ORDER BY id",
    ]);
    assert_exit(&copied, 0);
    assert!(stdout(&copied).contains("Grace"), "{}", stdout(&copied));
    assert!(stderr(&copied).contains("the command runs on the copy"));
    // The copy is a database of its own, kept.
    let again = heliosdb(&["--db", path(copy.path()), "verify"]);
    assert_exit(&again, 0);

    // A non-empty target is refused.
    let busy = heliosdb(&["--db", db, "--copy-to", path(copy.path()), "verify"]);
    assert_exit(&busy, 2);
    assert!(stderr(&busy).contains("not empty"), "{}", stderr(&busy));
}

#[test]
fn a_deleted_lock_file_does_not_stop_the_database() {
    let dir = a_database();
    std::fs::remove_file(dir.path().join("lock")).expect("rm lock");
    let select = heliosdb(&[
        "--db",
        path(dir.path()),
        "sql",
        "SELECT COUNT(*) FROM patient",
    ]);
    assert_exit(&select, 0);
    let verify = heliosdb(&["--db", path(dir.path()), "verify"]);
    assert_exit(&verify, 0);
}

#[test]
fn storage_errors_are_sentences_naming_the_path() {
    // A damaged store.
    let dir = a_database();
    std::fs::write(dir.path().join("version"), b"junk").expect("damage");
    for args in [
        vec!["--db", path(dir.path()), "sql", "SELECT 1"],
        vec!["--db", path(dir.path()), "verify"],
        vec!["--db", path(dir.path()), "audit", "tail"],
    ] {
        let out = heliosdb(&args);
        assert_exit(&out, 2);
        let message = stderr(&out);
        assert!(message.contains(path(dir.path())), "{message}");
        assert_sentence(&message);
    }
    // A file where the database directory should be.
    let file = tempfile::NamedTempFile::new().expect("file");
    let out = heliosdb(&["--db", path(file.path()), "sql", "SELECT 1"]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("is not a directory"),
        "{}",
        stderr(&out)
    );
    assert_sentence(&stderr(&out));
}
