//! The attacks a hash chain alone cannot see — a cut tail, a rollback to an older copy of
//! the database, a rewrite with a recomputed chain (`audit_tamper.rs` shows `verify`
//! passing after each) — are caught against a signed checkpoint taken before the attack,
//! by the library and by `heliosdb verify --pubkey [--checkpoint]` and `verify-export`; a
//! checkpoint of another database is recognised; and no signer (`heliosdb checkpoint`,
//! `audit prove --key`, `audit sync`, the checkpoint sink, the library) signs a ledger
//! inconsistent with the newest stored checkpoint or the last one in its file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{
    assert_exit, assert_fails_with, heliosdb, heliosdb_on, path, sink_error, stderr, stdout,
};
use heliosdb_lite::checkpoint::{Checkpoint, CheckpointSink, SignerKey, Verdict, check};
use heliosdb_lite::engine::audit::{self, AuditEvent, Head, chain_hash, leaf_hash};
use heliosdb_lite::engine::backend::{Durability, StorageBackend, WriteBatch};
use heliosdb_lite::{Database, Error, FjallBackend, SessionInfo, params};
use std::path::{Path, PathBuf};
use std::time::Duration;

const KS_AUDIT: &str = "audit";
const KS_AUDIT_INDEX: &str = "audit_idx";
const KS_CATALOG: &str = "catalog";
const HEAD_KEY: &[u8] = b"audit/head";

fn write(dir: &Path, rows: std::ops::Range<i64>) {
    let db = Database::open(dir).expect("open");
    let mut s = db.session(SessionInfo::new("clerk"));
    s.execute(
        "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)",
        &[],
    )
    .expect("ddl");
    for id in rows {
        s.execute("INSERT INTO t VALUES ($1, 'x')", &params![id])
            .expect("insert");
    }
}

/// A checkpoint of the database's current tree head, signed and opened back.
fn take_checkpoint(dir: &Path, key: &SignerKey) -> Checkpoint {
    let db = Database::open(dir).expect("open");
    let (size, root) = db.audit_root();
    let note = Checkpoint::new(&db.database_id(), size, root)
        .sign(key)
        .expect("sign")
        .to_string();
    Checkpoint::open(&note, &key.verifier()).expect("opens")
}

fn compare(dir: &Path, checkpoint: &Checkpoint) -> (bool, Verdict) {
    let backend = FjallBackend::open(dir).expect("backend");
    let chain_intact = audit::verify(&backend).expect("verify").is_intact();
    let verdict = check(&backend, std::slice::from_ref(checkpoint))
        .expect("check")
        .remove(0);
    (chain_intact, verdict)
}

fn split(value: &[u8]) -> (AuditEvent, [u8; 32]) {
    let (canonical, chain) = value.split_at(value.len() - 32);
    (
        AuditEvent::from_canonical(canonical).expect("decodes"),
        chain.try_into().expect("32 bytes"),
    )
}

fn raw(backend: &FjallBackend, seq: u64) -> Vec<u8> {
    backend
        .snapshot()
        .expect("snapshot")
        .get(KS_AUDIT, &seq.to_be_bytes())
        .expect("read")
        .expect("present")
}

fn head(backend: &FjallBackend) -> Head {
    let bytes = backend
        .snapshot()
        .expect("snapshot")
        .get(KS_CATALOG, HEAD_KEY)
        .expect("read")
        .expect("head");
    Head::decode(&bytes).expect("decodes")
}

/// Deletes the last `n` events with their index entries and rewinds the head: the chain
/// stays intact.
fn cut_tail(dir: &Path, n: u64) {
    let backend = FjallBackend::open(dir).expect("backend");
    let last = head(&backend).seq;
    let (_, chain) = split(&raw(&backend, last - n));
    let mut batch = WriteBatch::new();
    for seq in last - n + 1..=last {
        let (event, _) = split(&raw(&backend, seq));
        for (_, key, _) in audit::audit_index_entries(&event).expect("entries") {
            batch.delete(KS_AUDIT_INDEX, key);
        }
        batch.delete(KS_AUDIT, seq.to_be_bytes());
    }
    batch.put(
        KS_CATALOG,
        HEAD_KEY,
        Head {
            seq: last - n,
            chain,
        }
        .encode(),
    );
    backend.commit(&batch, Durability::Sync).expect("write");
}

/// Changes the user of event `seq` and recomputes every later chain hash, the head and
/// the index entries: the chain stays intact.
fn rewrite_from(dir: &Path, seq: u64) {
    let backend = FjallBackend::open(dir).expect("backend");
    let last = head(&backend).seq;
    let (_, mut chain) = split(&raw(&backend, seq - 1));
    let mut batch = WriteBatch::new();
    for n in seq..=last {
        let (mut event, _) = split(&raw(&backend, n));
        if n == seq {
            for (_, key, _) in audit::audit_index_entries(&event).expect("entries") {
                batch.delete(KS_AUDIT_INDEX, key);
            }
            event.user = "mallory".to_owned();
            for (_, key, value) in audit::audit_index_entries(&event).expect("entries") {
                batch.put(KS_AUDIT_INDEX, key, value);
            }
        }
        chain = chain_hash(&chain, &leaf_hash(&event.canonical()));
        let mut value = event.canonical();
        value.extend(chain);
        batch.put(KS_AUDIT, n.to_be_bytes(), value);
    }
    batch.put(KS_CATALOG, HEAD_KEY, Head { seq: last, chain }.encode());
    backend.commit(&batch, Durability::Sync).expect("write");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

#[test]
fn a_cut_tail_is_caught_by_an_earlier_checkpoint() {
    let dir = tempfile::tempdir().expect("dir");
    let key = SignerKey::generate("test").expect("key");
    write(dir.path(), 0..20);
    let checkpoint = take_checkpoint(dir.path(), &key);
    assert_eq!(compare(dir.path(), &checkpoint), (true, Verdict::Matches));
    cut_tail(dir.path(), 3);
    let (chain_intact, verdict) = compare(dir.path(), &checkpoint);
    assert!(chain_intact, "the chain alone does not see it");
    assert_eq!(
        verdict,
        Verdict::Truncated {
            ledger_size: checkpoint.size - 3
        }
    );
}

#[test]
fn a_rewrite_with_a_recomputed_chain_is_caught() {
    let dir = tempfile::tempdir().expect("dir");
    let key = SignerKey::generate("test").expect("key");
    write(dir.path(), 0..20);
    let checkpoint = take_checkpoint(dir.path(), &key);
    rewrite_from(dir.path(), 7);
    let (chain_intact, verdict) = compare(dir.path(), &checkpoint);
    assert!(chain_intact, "the chain alone does not see it");
    assert_eq!(verdict, Verdict::RootMismatch);
    // A checkpoint taken before event 7 still matches: the attack is located.
    let early = Checkpoint {
        size: 6,
        root: {
            let copy = tempfile::tempdir().expect("dir");
            copy_dir(dir.path(), copy.path());
            Database::open(copy.path())
                .expect("open")
                .audit_root_at(6)
                .expect("root")
        },
        ..checkpoint
    };
    assert_eq!(verdict_of(dir.path(), &early), Verdict::Matches);
}

#[test]
fn a_rewrite_after_a_checkpoint_is_caught_only_by_a_later_one() {
    let dir = tempfile::tempdir().expect("dir");
    let key = SignerKey::generate("test").expect("key");
    write(dir.path(), 0..8);
    let early = take_checkpoint(dir.path(), &key);
    write(dir.path(), 8..20);
    let late = take_checkpoint(dir.path(), &key);
    // Rewrite an event after the early checkpoint's size: its first events are unchanged,
    // so it still matches; the later checkpoint covers the rewritten event and does not.
    rewrite_from(dir.path(), early.size + 3);
    assert_eq!(compare(dir.path(), &early), (true, Verdict::Matches));
    assert_eq!(compare(dir.path(), &late), (true, Verdict::RootMismatch));
}

fn verdict_of(dir: &Path, checkpoint: &Checkpoint) -> Verdict {
    compare(dir, checkpoint).1
}

#[test]
fn a_rollback_to_an_older_copy_is_caught_even_when_refilled() {
    let dir = tempfile::tempdir().expect("dir");
    let old = tempfile::tempdir().expect("dir");
    let key = SignerKey::generate("test").expect("key");
    write(dir.path(), 0..10);
    copy_dir(dir.path(), old.path());
    write(dir.path(), 10..20);
    let checkpoint = take_checkpoint(dir.path(), &key);
    // Restore the older copy in place.
    std::fs::remove_dir_all(dir.path()).expect("remove");
    copy_dir(old.path(), dir.path());
    let (chain_intact, verdict) = compare(dir.path(), &checkpoint);
    assert!(chain_intact);
    assert!(matches!(verdict, Verdict::Truncated { .. }), "{verdict:?}");
    // Writing new events past the checkpoint's size does not hide it.
    write(dir.path(), 100..130);
    let (chain_intact, verdict) = compare(dir.path(), &checkpoint);
    assert!(chain_intact);
    assert_eq!(verdict, Verdict::RootMismatch);
}

#[test]
fn the_command_line_refuses_and_reports() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("db");
    let keys = dir.path().join("keys/ward");
    let file = dir.path().join("checkpoints.txt");
    let output = heliosdb(&["keygen", "--name", "ward-7", "--out", path(&keys)]);
    assert_exit(&output, 0);
    let private = dir.path().join("keys/ward.key");
    let public = dir.path().join("keys/ward.pub");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&private)
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let output = heliosdb(&["keygen", "--name", "ward-7", "--out", path(&keys)]);
    assert_exit(&output, 2);
    assert!(stderr(&output).contains("exists"), "{}", stderr(&output));

    write(&db, 0..12);
    let sign = || {
        heliosdb(&[
            "--db",
            path(&db),
            "checkpoint",
            "--key",
            path(&private),
            "--out",
            path(&file),
        ])
    };
    assert_exit(&sign(), 0);
    write(&db, 12..15);
    assert_exit(&sign(), 0);
    let verify = || {
        heliosdb(&[
            "--db",
            path(&db),
            "verify",
            "--pubkey",
            path(&public),
            "--checkpoint",
            path(&file),
        ])
    };
    let output = verify();
    assert_exit(&output, 0);
    assert_eq!(stdout(&output).matches("the ledger matches it").count(), 2);

    // An export checked offline against the checkpoints: lines cut from its end show.
    let export = dir.path().join("export.jsonl");
    let output = heliosdb(&["--db", path(&db), "audit", "export", "--out", path(&export)]);
    assert_exit(&output, 0);
    let check_export = |export_file: &Path| {
        heliosdb(&[
            "verify-export",
            path(export_file),
            "--pubkey",
            path(&public),
            "--checkpoint",
            path(&file),
        ])
    };
    assert_exit(&check_export(&export), 0);
    let text = std::fs::read_to_string(&export).expect("export");
    let cut = dir.path().join("cut.jsonl");
    let kept: Vec<&str> = text.lines().collect();
    std::fs::write(&cut, format!("{}\n", kept[..kept.len() - 1].join("\n"))).expect("write");
    let output = check_export(&cut);
    assert_exit(&output, 1);
    assert!(stdout(&output).contains("intact"), "the chain alone passes");
    assert!(
        stderr(&output).contains("the export holds only"),
        "{}",
        stderr(&output)
    );

    // One event proved to an auditor, offline, with the public key alone.
    let proof = dir.path().join("event-3.tlog-proof");
    let output = heliosdb(&[
        "--db",
        path(&db),
        "audit",
        "prove",
        "3",
        "--checkpoint",
        path(&file),
        "--out",
        path(&proof),
    ]);
    assert_exit(&output, 0);
    let output = heliosdb(&["verify-proof", path(&proof), "--pubkey", path(&public)]);
    assert_exit(&output, 0);
    assert!(
        stdout(&output).starts_with("valid: event 3 (INSERT by clerk on t"),
        "{}",
        stdout(&output)
    );
    let text = std::fs::read_to_string(&proof).expect("proof");
    std::fs::write(&proof, text.replace("\nindex 2\n", "\nindex 3\n")).expect("write");
    let output = heliosdb(&["verify-proof", path(&proof), "--pubkey", path(&public)]);
    assert_exit(&output, 1);
    assert!(stderr(&output).contains("bad proof"), "{}", stderr(&output));

    cut_tail(&db, 2);
    let output = verify();
    assert_exit(&output, 1);
    assert!(
        stdout(&output).contains("intact"),
        "the chain itself looks fine"
    );
    assert!(
        stderr(&output).contains("does not match the checkpoint of size"),
        "{}",
        stderr(&output)
    );
    let output = sign();
    assert_exit(&output, 1);
    assert!(
        stderr(&output).contains("refusing to sign"),
        "{}",
        stderr(&output)
    );

    // A forged checkpoint file is refused too.
    let text = std::fs::read_to_string(&file).expect("read");
    let forged = dir.path().join("forged.txt");
    let size_line = text.lines().nth(1).expect("size line").to_owned();
    std::fs::write(
        &forged,
        text.replacen(&format!("\n{size_line}\n"), "\n5\n", 1),
    )
    .expect("write");
    let output = heliosdb(&[
        "--db",
        path(&db),
        "verify",
        "--pubkey",
        path(&public),
        "--checkpoint",
        path(&forged),
    ]);
    assert_exit(&output, 1);
    assert!(
        stderr(&output).contains("does not match the text"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn sync_batches_are_written_and_checked_by_the_command_line() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("db");
    let keys = dir.path().join("plant");
    assert_exit(
        &heliosdb(&["keygen", "--name", "plant-7", "--out", path(&keys)]),
        0,
    );
    let private = dir.path().join("plant.key");
    let public = dir.path().join("plant.pub");
    let receipt = dir.path().join("receipt.json");
    let sync = |after: u64, out: &Path| {
        heliosdb(&[
            "--db",
            path(&db),
            "audit",
            "sync",
            "--after",
            &after.to_string(),
            "--key",
            path(&private),
            "--out",
            path(out),
        ])
    };
    let check = |batch: &Path| {
        heliosdb(&[
            "verify-batch",
            path(batch),
            "--pubkey",
            path(&public),
            "--receipt",
            path(&receipt),
        ])
    };
    write(&db, 0..5);
    let first = dir.path().join("1.batch.gz");
    assert_exit(&sync(0, &first), 0);
    let output = check(&first);
    assert_exit(&output, 0);
    assert!(
        stdout(&output).starts_with("valid: 6 events"),
        "{}",
        stdout(&output)
    );
    let size = |text: &str| -> u64 {
        let value: serde_json::Value = serde_json::from_str(text).expect("receipt json");
        value["size"].as_u64().expect("size")
    };
    let after = size(&std::fs::read_to_string(&receipt).expect("receipt"));

    write(&db, 5..8);
    let second = dir.path().join("2.batch.gz");
    assert_exit(&sync(after, &second), 0);
    // The same batch twice, or the first again: refused, receipt unchanged.
    assert_exit(&check(&second), 0);
    let output = check(&second);
    assert_exit(&output, 1);
    assert!(
        stderr(&output).contains("does not continue"),
        "{}",
        stderr(&output)
    );
    assert_exit(&check(&first), 1);
    // A position past the ledger is refused by the writer.
    let output = sync(10_000, &dir.path().join("x.batch.gz"));
    assert_exit(&output, 1);
    assert!(
        stderr(&output).contains("past the end"),
        "{}",
        stderr(&output)
    );
}

/// Deletes every stored Merkle node: the database rebuilds its tree from the (rewritten)
/// records when it opens, so the stored tree agrees with them again.
fn drop_tree(dir: &Path) {
    let backend = FjallBackend::open(dir).expect("backend");
    let keys: Vec<Vec<u8>> = backend
        .snapshot()
        .expect("snapshot")
        .range(
            "audit_tree",
            std::ops::Bound::Unbounded,
            std::ops::Bound::Unbounded,
            heliosdb_lite::engine::backend::Direction::Forward,
        )
        .expect("range")
        .map(|entry| entry.expect("entry").0)
        .collect();
    let mut batch = WriteBatch::new();
    for key in keys {
        batch.delete("audit_tree", key);
    }
    backend.commit(&batch, Durability::Sync).expect("write");
}

/// A database directory and a key pair, for the command line.
struct Site {
    dir: tempfile::TempDir,
    db: PathBuf,
    private: PathBuf,
    public: PathBuf,
}

impl Site {
    fn new() -> Site {
        let dir = tempfile::tempdir().expect("dir");
        let (private, public) = SignerKey::generate("ward-7")
            .expect("key")
            .write_files(dir.path().join("ward"))
            .expect("key files");
        Site {
            db: dir.path().join("db"),
            dir,
            private,
            public,
        }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        heliosdb_on(&self.db, args)
    }

    /// `checkpoint --key KEY [--out PLACE]`.
    fn sign(&self, place: Option<&Path>) -> std::process::Output {
        let mut args = vec!["checkpoint", "--key", path(&self.private)];
        if let Some(place) = place {
            args.extend(["--out", path(place)]);
        }
        self.run(&args)
    }

    /// `verify --pubkey PUB [--checkpoint PLACE]`.
    fn verify(&self, place: Option<&Path>) -> std::process::Output {
        let mut args = vec!["verify", "--pubkey", path(&self.public)];
        if let Some(place) = place {
            args.extend(["--checkpoint", path(place)]);
        }
        self.run(&args)
    }

    /// `audit export --out NAME`, then `verify-export NAME --pubkey PUB [--checkpoint
    /// PLACE]` on it.
    fn export_and_verify(&self, name: &str, place: Option<&Path>) -> std::process::Output {
        let export = self.file(name);
        assert_exit(&self.run(&["audit", "export", "--out", path(&export)]), 0);
        let mut args = vec![
            "verify-export",
            path(&export),
            "--pubkey",
            path(&self.public),
        ];
        if let Some(place) = place {
            args.extend(["--checkpoint", path(place)]);
        }
        heliosdb(&args)
    }

    fn key(&self) -> SignerKey {
        SignerKey::from_file(&self.private).expect("key")
    }

    fn stored_size(&self) -> u64 {
        Database::open(&self.db)
            .expect("open")
            .latest_checkpoint()
            .expect("read")
            .expect("a stored checkpoint")
            .size
    }
}

/// Every way to sign refuses, naming the newest stored checkpoint's size, and nothing is
/// signed, stored or written.
fn every_signer_refuses(site: &Site, stored_size: u64) {
    let needle =
        format!("not consistent with the newest stored checkpoint, of {stored_size} events");
    // The library.
    {
        let db = Database::open(&site.db).expect("open");
        let (size, root) = db.audit_root();
        match db.checkpoint_root(size) {
            Err(Error::CheckpointInconsistent {
                stored_size: stored,
                size: asked,
                ..
            }) => assert_eq!((stored, asked), (stored_size, size)),
            other => panic!("expected a refusal, got {other:?}"),
        }
        let key = site.key();
        let checkpoint = Checkpoint::new(&db.database_id(), size, root);
        let note = checkpoint.sign(&key).expect("sign");
        let error = db
            .record_checkpoint(&checkpoint.to_stored(&key, &note, 0))
            .expect_err("refused");
        assert!(error.to_string().contains(&needle), "{error}");
        assert_eq!(
            db.latest_checkpoint().expect("read").expect("kept").size,
            stored_size
        );
    }
    // The command line: exit status 1, the reason, and no file written.
    let out = site.file("fresh.checkpoints");
    let proof = site.file("event-3.tlog-proof");
    let batch = site.file("all.batch.gz");
    let private = path(&site.private);
    for output in [
        site.sign(None),
        site.sign(Some(&out)),
        site.run(&[
            "audit",
            "prove",
            "3",
            "--key",
            private,
            "--out",
            path(&proof),
        ]),
        site.run(&["audit", "sync", "--key", private, "--out", path(&batch)]),
    ] {
        assert_fails_with(&output, 1, &[&needle]);
    }
    assert!(!out.exists() && !proof.exists() && !batch.exists());
    // The checkpoint sink: it reports the refusal and writes nothing.
    let sink_file = site.file("sink.checkpoints");
    let db = Database::open(&site.db).expect("open");
    db.attach_sink(Box::new(CheckpointSink::new(
        site.key(),
        &sink_file,
        1,
        Duration::from_secs(3600),
    )))
    .expect("attach");
    write_with(&db, 500..502);
    let error = sink_error(&db);
    assert!(error.contains(&needle), "{error}");
    drop(db);
    assert!(!sink_file.exists(), "the sink signed nothing");
    assert_eq!(site.stored_size(), stored_size);
}

fn write_with(db: &Database, rows: std::ops::Range<i64>) {
    let mut s = db.session(SessionInfo::new("clerk"));
    for id in rows {
        s.execute("INSERT INTO t VALUES ($1, 'y')", &params![id])
            .expect("insert");
    }
}

#[test]
fn no_signer_signs_after_a_rewrite_under_a_stored_checkpoint() {
    let site = Site::new();
    write(&site.db, 0..12);
    // The good path: sign, extend, check against the stored checkpoints.
    let output = site.sign(None);
    assert_exit(&output, 0);
    assert!(
        stdout(&output).contains("\n— ward-7 "),
        "{}",
        stdout(&output)
    );
    write(&site.db, 12..15);
    assert_exit(&site.sign(None), 0);
    let stored_size = site.stored_size();
    let output = site.verify(None);
    assert_exit(&output, 0);
    assert_eq!(stdout(&output).matches("the ledger matches it").count(), 2);

    // Rewrite event 5 with a recomputed chain, and let the database rebuild its Merkle
    // tree from the rewritten records: the chain and the tree agree with the records, only
    // the stored checkpoint's root does not.
    rewrite_from(&site.db, 5);
    drop_tree(&site.db);
    let output = site.verify(None);
    assert_fails_with(
        &output,
        1,
        &["does not match the checkpoint of size", "differs"],
    );
    assert!(stdout(&output).contains("intact"), "the chain alone passes");
    every_signer_refuses(&site, stored_size);
}

#[test]
fn no_signer_signs_after_the_ledger_was_rolled_back() {
    let site = Site::new();
    write(&site.db, 0..12);
    assert_exit(&site.sign(None), 0);
    let stored_size = site.stored_size();
    // The ledger rewound by four events (the stored checkpoints kept): nothing may be
    // signed, shorter or refilled.
    cut_tail(&site.db, 4);
    let output = site.sign(None);
    assert_fails_with(
        &output,
        1,
        &[&format!(
            "of {stored_size} events: the ledger holds only {} events",
            stored_size - 4
        )],
    );
    write(&site.db, 100..110);
    every_signer_refuses(&site, stored_size);
}

#[test]
fn verify_without_a_checkpoint_file_checks_the_stored_checkpoints() {
    let site = Site::new();
    write(&site.db, 0..6);
    let key = site.key();
    let name = format!("{}+{:08x}", key.name(), key.id());
    let output = site.verify(None);
    assert_fails_with(
        &output,
        1,
        &[&format!(
            "no checkpoint signed by {name} is stored in __audit_checkpoints; pass --checkpoint FILE"
        )],
    );
    assert_exit(&site.sign(None), 0);
    write(&site.db, 6..9);
    assert_exit(&site.sign(None), 0);
    // A checkpoint by another key is stored too: not this key's, so not checked.
    let other = site.dir.path().join("other");
    let (other_private, _) = SignerKey::generate("other")
        .expect("key")
        .write_files(&other)
        .expect("files");
    write(&site.db, 9..10);
    assert_exit(&site.run(&["checkpoint", "--key", path(&other_private)]), 0);
    let output = site.verify(None);
    assert_exit(&output, 0);
    assert_eq!(
        stdout(&output).matches("the ledger matches it").count(),
        2,
        "{}",
        stdout(&output)
    );
    assert!(stdout(&output).contains(&format!("key {name}")));
    let output = site.run(&["verify", "--json", "--pubkey", path(&site.public)]);
    assert_exit(&output, 0);
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("json");
    assert_eq!(report["intact"], true);
    assert_eq!(report["checkpoints"].as_array().expect("list").len(), 2);

    // A stored note changed in place: its signature no longer checks, and verify says so.
    let first = {
        let db = Database::open(&site.db).expect("open");
        db.checkpoints().expect("read").remove(0)
    };
    {
        let backend = FjallBackend::open(&site.db).expect("backend");
        let mut forged = first.clone();
        forged.note = first.note.replacen(
            &format!("\n{}\n", first.size),
            &format!("\n{}\n", first.size - 1),
            1,
        );
        let mut batch = WriteBatch::new();
        batch.put(
            "audit_checkpoints",
            first.size.to_be_bytes(),
            forged.encode(),
        );
        backend.commit(&batch, Durability::Sync).expect("write");
    }
    let output = site.verify(None);
    assert_fails_with(
        &output,
        1,
        &[
            &format!(
                "stored checkpoint of size {} in __audit_checkpoints",
                first.size
            ),
            "does not match the text",
        ],
    );

    // An export has no stored checkpoints: verify-export says --checkpoint is needed.
    let output = site.export_and_verify("export.jsonl", None);
    assert_fails_with(
        &output,
        2,
        &[
            "verify-export --pubkey needs --checkpoint FILE: an export carries no stored checkpoints",
        ],
    );
}

#[test]
fn the_command_line_catches_a_rollback_a_rewrite_and_a_foreign_checkpoint() {
    // A rollback to an older copy of the whole database directory: its stored checkpoints
    // roll back with it, the file kept outside does not.
    let site = Site::new();
    let file = site.file("checkpoints.txt");
    let old = site.file("old-copy");
    write(&site.db, 0..10);
    copy_dir(&site.db, &old);
    write(&site.db, 10..20);
    assert_exit(&site.sign(Some(&file)), 0);
    std::fs::remove_dir_all(&site.db).expect("remove");
    copy_dir(&old, &site.db);
    let output = site.verify(Some(&file));
    assert_fails_with(
        &output,
        1,
        &[
            "does not match the checkpoint of size",
            "its tail was cut or the database was rolled back",
        ],
    );
    assert!(stdout(&output).contains("intact"), "the chain alone passes");
    assert_fails_with(
        &site.sign(Some(&file)),
        1,
        &[
            "refusing to sign: the ledger is not consistent with the last checkpoint in",
            "its tail was cut or it was rolled back",
        ],
    );
    // Refilled past the checkpoint's size, it is still caught, and still refused.
    write(&site.db, 100..130);
    assert_fails_with(
        &site.verify(Some(&file)),
        1,
        &["the Merkle root of the stored events differs"],
    );
    assert_fails_with(&site.sign(Some(&file)), 1, &["changed or rewritten"]);
    // The sink that keeps its checkpoints in that file refuses too.
    {
        let db = Database::open(&site.db).expect("open");
        db.attach_sink(Box::new(CheckpointSink::new(
            site.key(),
            &file,
            1,
            Duration::from_secs(3600),
        )))
        .expect("attach");
        write_with(&db, 900..901);
        let error = sink_error(&db);
        assert!(
            error.contains(
                "refusing to sign: the ledger is not consistent with the last checkpoint"
            ),
            "{error}"
        );
    }

    // A rewrite with a recomputed chain, in the database and in an export of it.
    let site = Site::new();
    let file = site.file("checkpoints.txt");
    write(&site.db, 0..20);
    assert_exit(&site.sign(Some(&file)), 0);
    rewrite_from(&site.db, 7);
    let output = site.verify(Some(&file));
    assert_fails_with(
        &output,
        1,
        &["the Merkle root of the stored events differs"],
    );
    assert!(stdout(&output).contains("intact"), "the chain alone passes");
    assert_fails_with(
        &site.sign(Some(&file)),
        1,
        &[
            "refusing to sign: the ledger is not consistent with the last checkpoint in",
            "rewritten",
        ],
    );
    let output = site.export_and_verify("rewritten.jsonl", Some(&file));
    assert_fails_with(
        &output,
        1,
        &[
            "the export does not match the checkpoint of size",
            "the Merkle root of the stored events differs",
        ],
    );
    assert!(
        stdout(&output).contains("intact"),
        "the export's chain alone passes"
    );

    // A checkpoint of another database is named as such.
    let other = Site::new();
    write(&other.db, 0..3);
    let output = heliosdb_on(
        &other.db,
        &[
            "verify",
            "--pubkey",
            path(&site.public),
            "--checkpoint",
            path(&file),
        ],
    );
    assert_fails_with(&output, 1, &["it is a checkpoint of another database"]);
}

#[test]
fn proofs_come_from_the_stored_checkpoints_and_carry_the_event_line() {
    let site = Site::new();
    write(&site.db, 0..8);
    let proof = site.file("event-3.tlog-proof");
    let line_file = site.file("event-3.tlog-proof.json");
    let prove = |seq: &str, extra: &[&str], out: &Path| {
        let mut args = vec!["audit", "prove", seq];
        args.extend_from_slice(extra);
        args.extend(["--out", path(out)]);
        site.run(&args)
    };
    assert_fails_with(
        &prove("3", &[], &proof),
        2,
        &["no checkpoint stored in __audit_checkpoints covers seq 3"],
    );
    // Without a key option: the newest stored checkpoint that covers the event.
    assert_exit(&site.sign(None), 0);
    let output = prove("3", &[], &proof);
    assert_exit(&output, 0);
    assert!(
        stdout(&output).contains("(__audit_checkpoints)"),
        "{}",
        stdout(&output)
    );
    let exported = site.run(&["audit", "export", "--from", "3", "--to", "3"]);
    assert_exit(&exported, 0);
    let line = std::fs::read_to_string(&line_file).expect("the event line");
    assert_eq!(line, stdout(&exported), "the same line as `audit export`");
    let verify_proof = |extra: &[&str]| {
        let mut args = vec!["verify-proof", path(&proof), "--pubkey", path(&site.public)];
        args.extend_from_slice(extra);
        heliosdb(&args)
    };
    let output = verify_proof(&[]);
    assert_exit(&output, 0);
    assert!(
        stdout(&output).starts_with("valid: event 3 (INSERT by clerk"),
        "{}",
        stdout(&output)
    );
    assert!(stdout(&output).contains(line.trim()), "the line is printed");
    let output = verify_proof(&["--json"]);
    assert_exit(&output, 0);
    let value: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("json");
    assert_eq!(value["valid"], true);
    assert_eq!(value["event"]["seq"], 3);
    assert_eq!(value["event"]["user"], "clerk");

    // With --key: a fresh checkpoint, stored.
    let fresh = site.file("event-4.tlog-proof");
    write(&site.db, 8..9);
    let output = prove("4", &["--key", path(&site.private)], &fresh);
    assert_exit(&output, 0);
    assert_eq!(
        site.stored_size(),
        11,
        "CREATE, 9 INSERTs and the CREATE IF NOT EXISTS"
    );
    assert_exit(
        &heliosdb(&["verify-proof", path(&fresh), "--pubkey", path(&site.public)]),
        0,
    );

    // An event line that is not the proved event is refused: changed, or another event's.
    std::fs::write(&line_file, line.replace("\"clerk\"", "\"mallory\"")).expect("write");
    assert_fails_with(
        &verify_proof(&[]),
        1,
        &["the event line is not the proved event 3"],
    );
    let other_line = site.file("event-4.tlog-proof.json");
    assert_fails_with(
        &verify_proof(&["--event", path(&other_line)]),
        1,
        &["the event line is not the proved event 3"],
    );
    std::fs::remove_file(&line_file).expect("remove");
    assert_exit(&verify_proof(&[]), 0);
}

#[test]
fn checkpoint_without_out_checks_the_places_the_configuration_names() {
    // The checkpoint sink of heliosdb.toml writes outside the database directory; a
    // rollback of the whole directory takes the stored checkpoints back with it, but not
    // that place, and `checkpoint` without --out, `audit prove --key` and `audit sync` look
    // there too (the sink itself checks on its own thread, which may not have run before
    // a command signs).
    let site = Site::new();
    let old = site.file("old-copy");
    let place = site.file("checkpoints");
    std::fs::create_dir(&place).expect("checkpoint directory");
    let config = format!(
        "[[audit.sinks]]\nkind = \"checkpoint\"\nkey = \"{}\"\ndir = \"{}\"\nevery_events = 1000000\nevery_seconds = 86400\n",
        path(&site.private),
        path(&place)
    );
    write(&site.db, 0..10);
    copy_dir(&site.db, &old);
    write(&site.db, 10..20);
    std::fs::write(site.db.join("heliosdb.toml"), &config).expect("config");
    assert_exit(&site.sign(Some(&place)), 0);
    // The ledger extends the checkpoints there: the note is printed.
    let output = site.sign(None);
    assert_exit(&output, 0);
    assert!(stdout(&output).contains("heliosdb/"), "{}", stdout(&output));

    std::fs::remove_dir_all(&site.db).expect("remove");
    copy_dir(&old, &site.db);
    std::fs::write(site.db.join("heliosdb.toml"), &config).expect("config");
    let refused = [
        "refusing to sign: the ledger is not consistent with the last checkpoint in",
        path(&place),
        "its tail was cut or it was rolled back",
    ];
    assert_fails_with(&site.sign(None), 1, &refused);
    // The other commands that sign a fresh checkpoint look there too.
    let proof = site.file("e3.tlog-proof");
    let batch = site.file("batch.gz");
    let key = path(&site.private);
    let prove = ["audit", "prove", "3", "--key", key, "--out", path(&proof)];
    assert_fails_with(&site.run(&prove), 1, &refused);
    let sync = [
        "audit",
        "sync",
        "--after",
        "0",
        "--key",
        key,
        "--out",
        path(&batch),
    ];
    assert_fails_with(&site.run(&sync), 1, &refused);
    assert!(!proof.exists() && !batch.exists(), "nothing was written");
}
