//! `heliosdb keygen`, `heliosdb checkpoint`, `verify --pubkey --checkpoint`, proofs and
//! sync batches.

use crate::audit_cmd::Tampered;
use anyhow::Context;
use heliosdb_lite::Database;
use heliosdb_lite::checkpoint::{
    BatchError, BatchReceipt, Checkpoint, EventProof, Note, SignerKey, Verdict, VerifierKey,
    parse_notes, write_batch,
};
use heliosdb_lite::engine::audit::{VerifyReport, merkle};
use heliosdb_lite::engine::backend::StorageBackend;
use std::io::Write;
use std::path::Path;

/// `heliosdb keygen --name NAME --out PREFIX`.
pub fn keygen(name: &str, prefix: &Path, mut out: impl Write) -> anyhow::Result<()> {
    let key = SignerKey::generate(name)?;
    let (private, public) = key.write_files(prefix)?;
    writeln!(
        out,
        "private key: {} (mode 0600; keep it off the database's disk)",
        private.display()
    )?;
    writeln!(out, "public key:  {}", public.display())?;
    writeln!(out, "{}", key.verifier())?;
    Ok(())
}

/// The checkpoints in `file` signed by `key`, in file order. A note that does not open
/// with the key (forged, changed, or signed by another key) is an error naming it.
pub fn read_checkpoints(file: &Path, key: &VerifierKey) -> anyhow::Result<Vec<Checkpoint>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read checkpoints from {}", file.display()))?;
    let notes = parse_notes(&text).with_context(|| format!("in {}", file.display()))?;
    notes
        .iter()
        .enumerate()
        .map(|(i, note)| {
            note.verify(key)
                .and_then(|()| Checkpoint::parse_body(note.text()))
                .map_err(|e| {
                    Tampered(format!("checkpoint {} in {}: {e}", i + 1, file.display())).into()
                })
        })
        .collect()
}

/// `heliosdb --db PATH checkpoint --key KEY [--out FILE]`: signs the current tree head.
/// With `--out`, the file's last checkpoint must be consistent with the ledger (proved
/// with a consistency proof) or nothing is signed.
pub fn checkpoint(
    db: &Database,
    key: &Path,
    file: Option<&Path>,
    mut out: impl Write,
) -> anyhow::Result<()> {
    let key = SignerKey::from_file(key)?;
    let checkpoint = current_head(db)?;
    let size = checkpoint.size;
    let note = checkpoint.sign(&key)?;
    let signed_at = heliosdb_lite::engine::chrono::Utc::now().timestamp_micros();
    let Some(file) = file else {
        db.record_checkpoint(&checkpoint.to_stored(&key, &note, signed_at))?;
        write!(out, "{note}")?;
        return Ok(());
    };
    if file.exists() {
        let ours = read_checkpoints(file, &key.verifier())?;
        if let Some(previous) = ours.iter().rev().find(|c| c.origin == checkpoint.origin) {
            consistent_with(db, previous, &checkpoint).map_err(|why| {
                Tampered(format!(
                    "refusing to sign: the ledger is not consistent with the last checkpoint in {} (size {}): {why}",
                    file.display(),
                    previous.size
                ))
            })?;
        }
    }
    db.record_checkpoint(&checkpoint.to_stored(&key, &note, signed_at))?;
    let note = note.to_string();
    let mut handle = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .with_context(|| format!("cannot open {}", file.display()))?;
    handle
        .write_all(format!("{note}\n").as_bytes())
        .and_then(|()| handle.sync_all())
        .with_context(|| format!("cannot write {}", file.display()))?;
    writeln!(
        out,
        "checkpoint of {size} events signed by {}+{:08x}, appended to {}",
        key.name(),
        key.id(),
        file.display()
    )?;
    Ok(())
}

/// The current tree head, after checking that the stored events themselves hash to it:
/// a stored tree alone is never signed.
fn current_head(db: &Database) -> anyhow::Result<Checkpoint> {
    let (size, root) = db.audit_root();
    anyhow::ensure!(size > 0, "nothing to checkpoint: the audit ledger is empty");
    let from_records =
        heliosdb_lite::engine::audit::tree::roots_from_records(db.backend(), &[size])
            .context("cannot read the audit ledger")?;
    if from_records.first().copied().flatten() != Some(root) {
        return Err(Tampered(
            "refusing to sign: the stored Merkle tree does not match the stored events (run verify)"
                .to_owned(),
        )
        .into());
    }
    Ok(Checkpoint::new(&db.database_id(), size, root))
}

/// `heliosdb --db PATH audit prove SEQ (--key KEY | --checkpoint FILE) --out PROOF`:
/// a `tlog-proof@v1` for event `seq`, against a fresh checkpoint signed with `key` or the
/// newest checkpoint in `file` that covers it.
pub fn prove(
    db: &Database,
    seq: u64,
    key: Option<&Path>,
    checkpoints: Option<&Path>,
    proof_file: &Path,
    mut out: impl Write,
) -> anyhow::Result<()> {
    let (checkpoint, note) = match (key, checkpoints) {
        (Some(key), None) => {
            let key = SignerKey::from_file(key)?;
            let checkpoint = current_head(db)?;
            let note = checkpoint.sign(&key)?;
            (checkpoint, note)
        }
        (None, Some(file)) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read checkpoints from {}", file.display()))?;
            let origin = Checkpoint::new(&db.database_id(), 0, [0; 32]).origin;
            let mut newest: Option<(Checkpoint, Note)> = None;
            for note in parse_notes(&text).with_context(|| format!("in {}", file.display()))? {
                let checkpoint = Checkpoint::parse_body(note.text())?;
                if checkpoint.origin == origin && checkpoint.size >= seq {
                    newest = Some((checkpoint, note));
                }
            }
            let (checkpoint, note) = newest.with_context(|| {
                format!(
                    "no checkpoint of this database in {} covers seq {seq}",
                    file.display()
                )
            })?;
            if db.audit_root_at(checkpoint.size)? != checkpoint.root {
                return Err(Tampered(format!(
                    "the ledger does not match the checkpoint of size {} in {}",
                    checkpoint.size,
                    file.display()
                ))
                .into());
            }
            (checkpoint, note)
        }
        _ => anyhow::bail!("give either --key or --checkpoint"),
    };
    anyhow::ensure!(
        (1..=checkpoint.size).contains(&seq),
        "seq {seq} is outside the checkpoint's 1..={}",
        checkpoint.size
    );
    let proof = EventProof {
        canonical: event_bytes(db, seq)?,
        index: seq - 1,
        path: db.inclusion_proof(seq, checkpoint.size)?,
        checkpoint: note,
    };
    std::fs::write(proof_file, proof.to_text())
        .with_context(|| format!("cannot write {}", proof_file.display()))?;
    writeln!(
        out,
        "proof of event {seq} in the checkpoint of {} events written to {}",
        checkpoint.size,
        proof_file.display()
    )?;
    Ok(())
}

/// The stored canonical bytes of event `seq`.
fn event_bytes(db: &Database, seq: u64) -> anyhow::Result<Vec<u8>> {
    use heliosdb_lite::engine::audit::ledger::{KS_AUDIT, record_key, split_record};
    let value = db
        .backend()
        .snapshot()?
        .get(KS_AUDIT, &record_key(seq))?
        .with_context(|| format!("event {seq} is not in the ledger"))?;
    let (canonical, _) = split_record(&value).map_err(|e| anyhow::anyhow!("event {seq}: {e}"))?;
    Ok(canonical.to_vec())
}

/// `heliosdb verify-proof FILE --pubkey KEY [--json]`.
pub fn verify_proof(
    file: &Path,
    pubkey: &Path,
    json: bool,
    mut out: impl Write,
) -> anyhow::Result<()> {
    let key = VerifierKey::from_file(pubkey)?;
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let proved = EventProof::parse(&text)
        .and_then(|proof| proof.verify(&key))
        .map_err(|e| Tampered(format!("{}: {e}", file.display())))?;
    let event = &proved.event;
    if json {
        serde_json::to_writer(
            &mut out,
            &serde_json::json!({
                "valid": true,
                "seq": event.seq,
                "checkpoint_size": proved.checkpoint.size,
                "origin": proved.checkpoint.origin,
                "user": event.user,
                "operation": event.operation,
                "targets": event.targets,
                "timestamp_us": event.timestamp_us,
                "success": event.success,
            }),
        )?;
        writeln!(out)?;
    } else {
        let targets = if event.targets.is_empty() {
            "-".to_owned()
        } else {
            event.targets.join(", ")
        };
        writeln!(
            out,
            "valid: event {} ({} by {} on {targets}, {}) is in the checkpoint of {} events of {}, signed by {}+{:08x}",
            event.seq,
            event.operation,
            event.user,
            if event.success { "succeeded" } else { "failed" },
            proved.checkpoint.size,
            proved.checkpoint.origin,
            key.name(),
            key.id()
        )?;
    }
    Ok(())
}

/// `heliosdb --db PATH audit sync --after N --key KEY --out FILE`.
pub fn sync(
    db: &Database,
    after: u64,
    key: &Path,
    file: &Path,
    mut out: impl Write,
) -> anyhow::Result<()> {
    let key = SignerKey::from_file(key)?;
    let mut bytes = Vec::new();
    let summary = match write_batch(db, &key, after, &mut bytes) {
        Err(BatchError::Refused { what }) => return Err(Tampered(what).into()),
        other => other?,
    };
    std::fs::write(file, &bytes).with_context(|| format!("cannot write {}", file.display()))?;
    writeln!(
        out,
        "batch of {} events (seqs {}..={}) with a checkpoint of {} events signed by {}+{:08x}, {} bytes, written to {}",
        summary.events(),
        summary.after + 1,
        summary.size,
        summary.size,
        key.name(),
        key.id(),
        bytes.len(),
        file.display()
    )?;
    Ok(())
}

/// `heliosdb verify-batch FILE --pubkey KEY [--receipt FILE]`.
pub fn verify_batch(
    file: &Path,
    pubkey: &Path,
    receipt: Option<&Path>,
    mut out: impl Write,
) -> anyhow::Result<()> {
    let key = VerifierKey::from_file(pubkey)?;
    let previous: Option<BatchReceipt> = match receipt {
        Some(path) if path.exists() => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Some(
                serde_json::from_str(&text)
                    .with_context(|| format!("{} is not a batch receipt", path.display()))?,
            )
        }
        _ => None,
    };
    let input =
        std::fs::File::open(file).with_context(|| format!("cannot read {}", file.display()))?;
    let verified = heliosdb_lite::checkpoint::verify_batch(
        std::io::BufReader::new(input),
        &key,
        previous.as_ref(),
    )
    .map_err(|e| Tampered(format!("{}: {e}", file.display())))?;
    if let Some(path) = receipt {
        let text = serde_json::to_string_pretty(&verified.receipt)?;
        write_durably(path, text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    writeln!(
        out,
        "valid: {} events (seqs {}..={}) of {}, checkpoint of {} events signed by {}+{:08x}",
        verified.events.len(),
        verified.after + 1,
        verified.receipt.size,
        verified.receipt.origin,
        verified.receipt.size,
        key.name(),
        key.id()
    )?;
    Ok(())
}

/// Replaces `path` with `bytes`: a temporary file, fsync, rename.
fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Whether `next` extends `previous` on this ledger.
fn consistent_with(db: &Database, previous: &Checkpoint, next: &Checkpoint) -> Result<(), String> {
    if previous.size > next.size {
        return Err(format!(
            "it covers {} events, the ledger now holds {}: truncated or rolled back",
            previous.size, next.size
        ));
    }
    let proof = db
        .consistency_proof(previous.size, next.size)
        .map_err(|e| e.to_string())?;
    if merkle::verify_consistency(previous.size, next.size, &previous.root, &next.root, &proof) {
        Ok(())
    } else {
        Err("the events it covers were changed or rewritten".to_owned())
    }
}

/// The verifier key in `pubkey` and the checkpoints in `file` it signed; at least one.
fn signed_checkpoints(
    pubkey: &Path,
    file: &Path,
) -> anyhow::Result<(VerifierKey, Vec<Checkpoint>)> {
    let key = VerifierKey::from_file(pubkey)?;
    let checkpoints = read_checkpoints(file, &key)?;
    anyhow::ensure!(
        !checkpoints.is_empty(),
        "{} holds no checkpoint",
        file.display()
    );
    Ok((key, checkpoints))
}

/// After an intact chain: compares the ledger with each checkpoint in `file` signed by
/// the key in `pubkey`, prints one line per checkpoint, and fails on the first mismatch.
pub fn check_ledger(
    backend: &dyn StorageBackend,
    report: &VerifyReport,
    pubkey: &Path,
    file: &Path,
    json: bool,
    out: impl Write,
) -> anyhow::Result<()> {
    let (key, checkpoints) = signed_checkpoints(pubkey, file)?;
    let verdicts = heliosdb_lite::checkpoint::check(backend, &checkpoints)
        .context("cannot read the ledger to compare with the checkpoints")?;
    report_verdicts(
        out,
        json,
        report,
        &checkpoints,
        &verdicts,
        "ledger",
        &format!(", key {}+{:08x}", key.name(), key.id()),
    )
}

/// After an intact export: compares it with each checkpoint in `file` signed by the key in
/// `pubkey`, recomputing the Merkle root of its first `size` lines from their leaf hashes.
pub fn check_export(
    export: &[u8],
    report: &heliosdb_lite::engine::audit::ExportReport,
    pubkey: &Path,
    file: &Path,
    json: bool,
    out: impl Write,
) -> anyhow::Result<()> {
    use heliosdb_lite::engine::audit::{ExportLine, merkle::Frontier};
    let (_, checkpoints) = signed_checkpoints(pubkey, file)?;
    anyhow::ensure!(
        report.first_seq == Some(1),
        "checking an export against checkpoints needs an export that starts at seq 1"
    );
    let mut frontier = Frontier::new();
    let mut roots = std::collections::BTreeMap::new();
    let wanted: std::collections::BTreeSet<u64> = checkpoints.iter().map(|c| c.size).collect();
    let mut database_id = None;
    for line in export.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        // The export verified: every line parses and its leaf was recomputed.
        let line: ExportLine = serde_json::from_slice(line)?;
        database_id.get_or_insert(line.database_id.clone());
        let leaf = heliosdb_lite::engine::audit::export::parse_hex::<32>(&line.leaf)
            .context("leaf hash")?;
        frontier.push(leaf, |_, _| {});
        if wanted.contains(&frontier.size()) {
            roots.insert(frontier.size(), frontier.root());
        }
    }
    let verdicts: Vec<Verdict> = checkpoints
        .iter()
        .map(|c| {
            let origin_id = c
                .origin
                .strip_prefix(heliosdb_lite::checkpoint::ORIGIN_PREFIX);
            if origin_id != database_id.as_deref() {
                Verdict::ForeignDatabase
            } else {
                match roots.get(&c.size) {
                    Some(root) if *root == c.root => Verdict::Matches,
                    Some(_) => Verdict::RootMismatch,
                    None => Verdict::Truncated {
                        ledger_size: frontier.size(),
                    },
                }
            }
        })
        .collect();
    report_verdicts(out, json, report, &checkpoints, &verdicts, "export", "")
}

/// Prints a verify report followed by one verdict per checkpoint (or, with `json`, the
/// report's JSON object with `intact` covering both and a `checkpoints` list), and fails on
/// the first mismatch. `subject` is what was checked: `ledger` or `export`.
fn report_verdicts(
    mut out: impl Write,
    json: bool,
    report: &(impl std::fmt::Display + serde::Serialize),
    checkpoints: &[Checkpoint],
    verdicts: &[Verdict],
    subject: &str,
    key_note: &str,
) -> anyhow::Result<()> {
    let say = |verdict: &Verdict| {
        verdict
            .to_string()
            .replace("the ledger", &format!("the {subject}"))
    };
    if json {
        let mut value = serde_json::to_value(report)?;
        if let Some(object) = value.as_object_mut() {
            let intact = object.get("intact").and_then(serde_json::Value::as_bool) == Some(true)
                && verdicts.iter().all(Verdict::is_match);
            object.insert("intact".to_owned(), intact.into());
            let list: Vec<serde_json::Value> = checkpoints
                .iter()
                .zip(verdicts)
                .map(|(c, v)| {
                    serde_json::json!({
                        "size": c.size,
                        "matches": v.is_match(),
                        "message": say(v),
                    })
                })
                .collect();
            object.insert("checkpoints".to_owned(), list.into());
        }
        serde_json::to_writer(&mut out, &value)?;
        writeln!(out)?;
    } else {
        write!(out, "{report}")?;
        for (i, (checkpoint, verdict)) in checkpoints.iter().zip(verdicts).enumerate() {
            writeln!(
                out,
                "checkpoint {} (size {}{key_note}): {}",
                i + 1,
                checkpoint.size,
                say(verdict)
            )?;
        }
    }
    out.flush()?;
    match checkpoints
        .iter()
        .zip(verdicts)
        .find(|(_, v)| !v.is_match())
    {
        None => Ok(()),
        Some((checkpoint, verdict)) => Err(Tampered(format!(
            "the {subject} does not match the checkpoint of size {}: {}",
            checkpoint.size,
            say(verdict)
        ))
        .into()),
    }
}
