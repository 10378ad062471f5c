//! The attacks a hash chain alone cannot see — a cut tail, a rollback to an older copy of
//! the database, a rewrite with a recomputed chain (`audit_tamper.rs` shows `verify`
//! passing after each) — are caught against a signed checkpoint taken before the attack,
//! by the library and by `heliosdb verify --pubkey --checkpoint`, and `heliosdb checkpoint`
//! refuses to sign a ledger inconsistent with its last checkpoint.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{assert_exit, heliosdb, path, stderr, stdout};
use heliosdb_lite::checkpoint::{Checkpoint, SignerKey, Verdict, check};
use heliosdb_lite::engine::audit::{self, AuditEvent, Head, chain_hash, leaf_hash};
use heliosdb_lite::engine::backend::{Durability, StorageBackend, WriteBatch};
use heliosdb_lite::{Database, FjallBackend, SessionInfo, params};
use std::path::Path;

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
    backend.commit(batch, Durability::Sync).expect("write");
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
    backend.commit(batch, Durability::Sync).expect("write");
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
