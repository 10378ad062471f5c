//! The `checkpoint` sink configured in `heliosdb.toml`: it signs every N events, after T
//! seconds while events wait, and on close; its checkpoints verify against the ledger and
//! extend each other across restarts; after the ledger is cut behind the engine's back it
//! refuses to sign; the key can come from the environment; with `dir` it writes one file
//! per checkpoint, which every command that reads checkpoints accepts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{assert_exit, heliosdb, heliosdb_on, path, sink_error, stderr, stdout};
use heliosdb_lite::checkpoint::{Checkpoint, SignerKey, Verdict, check, parse_notes};
use heliosdb_lite::engine::audit::Head;
use heliosdb_lite::engine::backend::{Durability, StorageBackend, WriteBatch};
use heliosdb_lite::{Database, FjallBackend, SessionInfo, params};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn setup(every_events: u64, every_seconds: u64) -> (tempfile::TempDir, SignerKey) {
    let dir = tempfile::tempdir().expect("dir");
    let key = SignerKey::generate("sink-test").expect("key");
    key.write_files(dir.path().join("keys/device"))
        .expect("key files");
    std::fs::create_dir(dir.path().join("db")).expect("db dir");
    std::fs::write(
        dir.path().join("db/heliosdb.toml"),
        format!(
            "[[audit.sinks]]\nkind = \"checkpoint\"\nkey = \"../keys/device.key\"\npath = \"../checkpoints.txt\"\nevery_events = {every_events}\nevery_seconds = {every_seconds}\n"
        ),
    )
    .expect("config");
    (dir, key)
}

fn insert(db: &Database, ids: std::ops::Range<i64>) {
    let mut s = db.session(SessionInfo::new("line"));
    s.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY)", &[])
        .expect("ddl");
    for id in ids {
        s.execute("INSERT INTO t VALUES ($1)", &params![id])
            .expect("insert");
    }
}

fn checkpoints(dir: &Path, key: &SignerKey) -> Vec<Checkpoint> {
    let text = std::fs::read_to_string(dir.join("checkpoints.txt")).unwrap_or_default();
    parse_notes(&text)
        .expect("notes")
        .iter()
        .map(|note| {
            note.verify(&key.verifier()).expect("signed by the key");
            Checkpoint::parse_body(note.text()).expect("checkpoint")
        })
        .collect()
}

fn all_match(db_dir: &Path, list: &[Checkpoint]) {
    let backend = FjallBackend::open(db_dir).expect("backend");
    let verdicts = check(&backend, list).expect("check");
    assert!(verdicts.iter().all(Verdict::is_match), "{verdicts:?}");
}

#[test]
fn signs_every_n_events_and_on_close_and_extends_across_restarts() {
    let (dir, key) = setup(5, 3600);
    let db_dir = dir.path().join("db");
    {
        let db = Database::open(&db_dir).expect("open");
        insert(&db, 0..11); // CREATE + 11 INSERTs: 12 events
        assert_eq!(db.audit_head().seq, 12);
    }
    let first = checkpoints(dir.path(), &key);
    let sizes: Vec<u64> = first.iter().map(|c| c.size).collect();
    assert_eq!(sizes, [5, 10, 12], "every 5 events, then on close");
    all_match(&db_dir, &first);

    {
        let db = Database::open(&db_dir).expect("reopen");
        insert(&db, 11..14);
    }
    let second = checkpoints(dir.path(), &key);
    assert_eq!(second.len(), 4);
    assert_eq!(
        second[3].size, 16,
        "CREATE TABLE IF NOT EXISTS and 3 INSERTs"
    );
    all_match(&db_dir, &second);
}

#[test]
fn signs_after_every_seconds_while_events_wait() {
    let (dir, key) = setup(1000, 1);
    let db = Database::open(dir.path().join("db")).expect("open");
    insert(&db, 0..2);
    let deadline = Instant::now() + Duration::from_secs(20);
    while checkpoints(dir.path(), &key).is_empty() {
        assert!(
            Instant::now() < deadline,
            "no timed checkpoint: {:?}",
            db.sink_status()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(checkpoints(dir.path(), &key)[0].size, 3);
}

#[test]
fn refuses_to_sign_after_the_ledger_was_cut() {
    let (dir, key) = setup(4, 3600);
    let db_dir = dir.path().join("db");
    {
        let db = Database::open(&db_dir).expect("open");
        insert(&db, 0..9);
    }
    let before = checkpoints(dir.path(), &key);
    assert_eq!(before.last().expect("some").size, 10);
    // Cut the last three events behind the engine's back (the chain stays intact).
    {
        let backend = FjallBackend::open(&db_dir).expect("backend");
        let snapshot = backend.snapshot().expect("snapshot");
        let value = snapshot
            .get("audit", &7u64.to_be_bytes())
            .expect("read")
            .expect("record 7");
        let chain: [u8; 32] = value[value.len() - 32..].try_into().expect("hash");
        let mut batch = WriteBatch::new();
        for seq in 8..=10u64 {
            batch.delete("audit", seq.to_be_bytes());
        }
        batch.put(
            "catalog",
            b"audit/head".to_vec(),
            Head { seq: 7, chain }.encode(),
        );
        backend.commit(&batch, Durability::Sync).expect("cut");
    }
    let db = Database::open(&db_dir).expect("reopen");
    insert(&db, 100..110);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        let status = db.sink_status().remove(0);
        if status.last_error.is_some() {
            break status;
        }
        assert!(Instant::now() < deadline, "no refusal reported");
        std::thread::sleep(Duration::from_millis(10));
    };
    let error = status.last_error.expect("refusal");
    assert!(error.contains("refusing to sign"), "{error}");
    drop(db);
    assert_eq!(
        checkpoints(dir.path(), &key),
        before,
        "nothing more was signed"
    );
}

#[test]
fn the_key_can_come_from_the_environment() {
    let dir = tempfile::tempdir().expect("dir");
    let key = SignerKey::generate("env-key").expect("key");
    let config = dir.path().join("heliosdb.toml");
    std::fs::write(
        &config,
        "[database]\npath = \"db\"\n[[audit.sinks]]\nkind = \"checkpoint\"\nkey_env = \"LINE_SIGNING_KEY\"\npath = \"checkpoints.txt\"\nevery_events = 1\n",
    )
    .expect("config");
    let run = |with_key: bool| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_heliosdb"));
        command.args([
            "--config",
            path(&config),
            "sql",
            "CREATE TABLE IF NOT EXISTS t (a INTEGER)",
        ]);
        if with_key {
            command.env("LINE_SIGNING_KEY", key.to_private_text());
        } else {
            command.env_remove("LINE_SIGNING_KEY");
        }
        command.output().expect("run")
    };
    let output = run(false);
    assert_exit(&output, 2);
    assert!(
        stderr(&output)
            .contains("audit.sinks[0].key_env: environment variable LINE_SIGNING_KEY is not set"),
        "{}",
        stderr(&output)
    );
    assert_exit(&run(true), 0);
    // Relative to the configuration file; signed at the one event and at close.
    let list = checkpoints(dir.path(), &key);
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0].size, 1);
}

#[test]
fn a_directory_gets_one_file_per_checkpoint_and_every_reader_takes_it() {
    let dir = tempfile::tempdir().expect("dir");
    let key = SignerKey::generate("sink-test").expect("key");
    let (private, public) = key
        .write_files(dir.path().join("keys/device"))
        .expect("key files");
    let db_dir = dir.path().join("db");
    std::fs::create_dir(&db_dir).expect("db dir");
    std::fs::write(
        db_dir.join("heliosdb.toml"),
        "[[audit.sinks]]\nkind = \"checkpoint\"\nkey = \"../keys/device.key\"\ndir = \"../cps\"\nevery_events = 5\nevery_seconds = 3600\n",
    )
    .expect("config");
    let cps = dir.path().join("cps");
    let names = || -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&cps)
            .expect("the directory")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    {
        let db = Database::open(&db_dir).expect("open");
        insert(&db, 0..11); // 12 events
    }
    assert_eq!(
        names(),
        [
            "00000000000000000005.checkpoint",
            "00000000000000000010.checkpoint",
            "00000000000000000012.checkpoint"
        ],
        "one whole file per checkpoint, no temporary file left"
    );
    let text = std::fs::read_to_string(cps.join("00000000000000000010.checkpoint")).expect("file");
    let notes = parse_notes(&text).expect("notes");
    assert_eq!(notes.len(), 1);
    notes[0].verify(&key.verifier()).expect("signed");
    assert_eq!(
        Checkpoint::parse_body(notes[0].text()).expect("body").size,
        10
    );

    // Across a restart the sink resumes from the directory's last checkpoint.
    {
        let db = Database::open(&db_dir).expect("reopen");
        insert(&db, 11..13);
    }
    assert_eq!(
        names().last().map(String::as_str),
        Some("00000000000000000015.checkpoint")
    );

    // Every reader takes the directory.
    let output = heliosdb_on(
        &db_dir,
        &[
            "verify",
            "--pubkey",
            path(&public),
            "--checkpoint",
            path(&cps),
        ],
    );
    assert_exit(&output, 0);
    assert_eq!(stdout(&output).matches("the ledger matches it").count(), 4);
    let output = heliosdb_on(
        &db_dir,
        &["checkpoint", "--key", path(&private), "--out", path(&cps)],
    );
    assert_exit(&output, 0);
    assert!(
        stdout(&output).contains("written to"),
        "{}",
        stdout(&output)
    );
    let proof = dir.path().join("e2.tlog-proof");
    let output = heliosdb_on(
        &db_dir,
        &[
            "audit",
            "prove",
            "2",
            "--checkpoint",
            path(&cps),
            "--out",
            path(&proof),
        ],
    );
    assert_exit(&output, 0);
    assert_exit(
        &heliosdb(&["verify-proof", path(&proof), "--pubkey", path(&public)]),
        0,
    );
    let export = dir.path().join("export.jsonl");
    assert_exit(
        &heliosdb_on(&db_dir, &["audit", "export", "--out", path(&export)]),
        0,
    );
    let output = heliosdb(&[
        "verify-export",
        path(&export),
        "--pubkey",
        path(&public),
        "--checkpoint",
        path(&cps),
    ]);
    assert_exit(&output, 0);
    // `--out DIR/` creates the directory.
    let fresh = format!("{}/", dir.path().join("fresh").display());
    assert_exit(
        &heliosdb_on(
            &db_dir,
            &["checkpoint", "--key", path(&private), "--out", &fresh],
        ),
        0,
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("fresh"))
            .expect("made")
            .count(),
        1
    );

    // The sink's own resume check reads the directory: after a cut it refuses.
    let last = names().len();
    {
        let backend = FjallBackend::open(&db_dir).expect("backend");
        let value = backend
            .snapshot()
            .expect("snapshot")
            .get("audit", &3u64.to_be_bytes())
            .expect("read")
            .expect("record 3");
        let chain: [u8; 32] = value[value.len() - 32..].try_into().expect("hash");
        let mut batch = WriteBatch::new();
        for seq in 4..=20u64 {
            batch.delete("audit", seq.to_be_bytes());
        }
        batch.put(
            "catalog",
            b"audit/head".to_vec(),
            Head { seq: 3, chain }.encode(),
        );
        backend.commit(&batch, Durability::Sync).expect("cut");
    }
    let db = Database::open(&db_dir).expect("reopen");
    let error = sink_error(&db);
    assert!(error.contains("refusing to sign"), "{error}");
    assert!(error.contains("cps (size 15)"), "{error}");
    drop(db);
    assert_eq!(names().len(), last, "nothing more was signed");
}
