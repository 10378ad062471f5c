//! `heliosdb keygen`, `heliosdb checkpoint`, `verify --pubkey --checkpoint`, proofs and
//! sync batches.

use crate::failure::Tampered;
use anyhow::Context;
use heliosdb_lite::Database;
use heliosdb_lite::checkpoint::{
    BatchError, BatchReceipt, Checkpoint, CheckpointError, CheckpointFiles, EventProof, Note,
    PublishError, Published, SignerKey, Verdict, VerifierKey, sign_and_publish, write_batch,
};
use heliosdb_lite::engine::audit::{ExportLine, StoredCheckpoint, VerifyReport, checkpoints};
use heliosdb_lite::engine::backend::StorageBackend;
use std::io::Write;
use std::path::{Path, PathBuf};

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

/// The checkpoints in `place` (a file, or a directory of checkpoint files) signed by
/// `key`, in order. A note that does not open with the key (forged, changed, or signed by
/// another key) is an error naming it and its file.
pub fn read_checkpoints(place: &Path, key: &VerifierKey) -> anyhow::Result<Vec<Checkpoint>> {
    read_notes(place)?
        .iter()
        .enumerate()
        .map(|(i, (file, note))| {
            note.verify(key)
                .and_then(|()| Checkpoint::parse_body(note.text()))
                .map_err(|e| {
                    Tampered(format!("checkpoint {} in {}: {e}", i + 1, file.display())).into()
                })
        })
        .collect()
}

/// Every signed note in `place`, a file or a directory of checkpoint files, which must
/// exist.
fn read_notes(place: &Path) -> anyhow::Result<Vec<(PathBuf, Note)>> {
    if !place.exists() {
        anyhow::bail!(
            "cannot read checkpoints from {}: no such file or directory",
            place.display()
        );
    }
    Ok(CheckpointFiles::at(place).read_notes()?)
}

/// `heliosdb --db PATH checkpoint --key KEY [--out FILE|DIR/]`: signs the current tree
/// head. The database first checks that it extends the newest checkpoint it stores (both
/// roots recomputed from the stored events); with `--out`, the last checkpoint of this
/// database in the file or directory must match the ledger too, or nothing is signed.
/// Without `--out` the same holds for every place in `configured` (the checkpoint sinks'
/// files and directories in `heliosdb.toml`) that exists, and the note is printed.
pub fn checkpoint(
    db: &Database,
    key: &Path,
    place: Option<&Path>,
    configured: &[CheckpointFiles],
    mut out: impl Write,
) -> anyhow::Result<()> {
    let key = SignerKey::from_file(key)?;
    let (size, _) = db.audit_root();
    anyhow::ensure!(size > 0, "nothing to checkpoint: the audit ledger is empty");
    let files = place.map(CheckpointFiles::at);
    match &files {
        Some(files) => extends_last_checkpoint_in(db, files, &key, size)?,
        None => extends_configured(db, configured, &key, size)?,
    }
    let published = publish(sign_and_publish(
        db.engine(),
        &key,
        size,
        None,
        files.as_ref(),
    ))?;
    let (Some(files), Some(written)) = (files, published.written) else {
        write!(out, "{}", published.note)?;
        return Ok(());
    };
    let how = match files {
        CheckpointFiles::File(_) => "appended to",
        CheckpointFiles::Dir(_) => "written to",
    };
    writeln!(
        out,
        "checkpoint of {size} events signed by {}+{:08x}, {how} {}",
        key.name(),
        key.id(),
        written.display()
    )?;
    Ok(())
}

/// The outcome of a signing, with the database's refusals as the database errors they
/// are (an inconsistent ledger is tampering: exit status 1).
fn publish(result: Result<Published, PublishError>) -> anyhow::Result<Published> {
    result.map_err(|error| match error {
        PublishError::Ledger(error) | PublishError::Store { source: error, .. } => error.into(),
        other => other.into(),
    })
}

/// [`extends_last_checkpoint_in`] for each of the `configured` places that exists.
fn extends_configured(
    db: &Database,
    configured: &[CheckpointFiles],
    key: &SignerKey,
    size: u64,
) -> anyhow::Result<()> {
    for files in configured.iter().filter(|f| f.path().exists()) {
        extends_last_checkpoint_in(db, files, key, size)?;
    }
    Ok(())
}

/// Refuses (as tampering) when the last checkpoint of this database signed by `key` in
/// `files` is not consistent with the ledger at `size` (its root recomputed from the
/// stored events); checkpoints of other databases or keys there are skipped.
fn extends_last_checkpoint_in(
    db: &Database,
    files: &CheckpointFiles,
    key: &SignerKey,
    size: u64,
) -> anyhow::Result<()> {
    if let Some(previous) = files.last_signed(&key.verifier(), &db.database_id())? {
        consistent_with(db, &previous, size).map_err(|why| {
            Tampered(format!(
                "refusing to sign: the ledger is not consistent with the last checkpoint in {} (size {}): {why}",
                files.path().display(),
                previous.size
            ))
        })?;
    }
    Ok(())
}

/// Whether the ledger still holds the first `previous.size` events `previous` signed,
/// unchanged (their root recomputed from the stored events), so that a checkpoint of
/// `size` events extends it.
fn consistent_with(db: &Database, previous: &Checkpoint, size: u64) -> Result<(), String> {
    if previous.size > size {
        return Err(format!(
            "it covers {} events, the ledger now holds {size}: its tail was cut or it was rolled back",
            previous.size
        ));
    }
    let root = db.checkpoint_root(previous.size).map_err(|e| match e {
        // The newest stored checkpoint is refused too: say what differs once.
        heliosdb_lite::Error::CheckpointInconsistent { why, .. } => why,
        other => other.to_string(),
    })?;
    if root == previous.root {
        Ok(())
    } else {
        Err("the root recomputed from the stored events differs: events it covers were changed or rewritten".to_owned())
    }
}

/// The file `audit prove` writes the event's export line to, beside proof `proof_file`:
/// the same name with `.json` added (`event-3.tlog-proof` → `event-3.tlog-proof.json`).
pub fn event_line_file(proof_file: &Path) -> PathBuf {
    let mut name = proof_file.as_os_str().to_owned();
    name.push(".json");
    PathBuf::from(name)
}

/// `heliosdb --db PATH audit prove SEQ [--key KEY | --checkpoint FILE|DIR] --out PROOF`:
/// a `tlog-proof@v1` for event `seq`, against a fresh checkpoint signed with `key` (and
/// stored), the newest checkpoint in `place` that covers it, or, with neither, the newest
/// checkpoint stored in `__audit_checkpoints` that covers it. The event's export line is
/// written beside the proof ([`event_line_file`]). Before signing with `key`, the ledger
/// is checked against the last checkpoint in each of the `configured` places, like
/// [`checkpoint`] does.
pub fn prove(
    db: &Database,
    seq: u64,
    (key, place): (Option<&Path>, Option<&Path>),
    configured: &[CheckpointFiles],
    proof_file: &Path,
    mut out: impl Write,
) -> anyhow::Result<()> {
    let origin = Checkpoint::new(&db.database_id(), 0, [0; 32]).origin;
    let (checkpoint, note, source) = match (key, place) {
        (Some(key), None) => {
            let key = SignerKey::from_file(key)?;
            let (size, _) = db.audit_root();
            anyhow::ensure!(size > 0, "nothing to prove: the audit ledger is empty");
            extends_configured(db, configured, &key, size)?;
            let published = publish(sign_and_publish(db.engine(), &key, size, None, None))?;
            (
                published.checkpoint,
                published.note,
                "a new checkpoint".to_owned(),
            )
        }
        (None, Some(place)) => {
            let mut newest: Option<(Checkpoint, Note)> = None;
            for (file, note) in read_notes(place)? {
                let checkpoint = Checkpoint::parse_body(note.text())
                    .with_context(|| format!("in {}", file.display()))?;
                let newer = newest
                    .as_ref()
                    .is_none_or(|(n, _)| n.size <= checkpoint.size);
                if checkpoint.origin == origin && checkpoint.size >= seq && newer {
                    newest = Some((checkpoint, note));
                }
            }
            let (checkpoint, note) = newest.with_context(|| {
                format!(
                    "no checkpoint of this database in {} covers seq {seq}",
                    place.display()
                )
            })?;
            (checkpoint, note, place.display().to_string())
        }
        (None, None) => {
            let stored = db
                .checkpoints()?
                .into_iter()
                .rev()
                .find(|c| c.size >= seq)
                .with_context(|| {
                    format!(
                        "no checkpoint stored in __audit_checkpoints covers seq {seq}: sign one with `heliosdb checkpoint`, or pass --key or --checkpoint"
                    )
                })?;
            let (checkpoint, note) =
                open_stored(&stored).map_err(|e| Tampered(format!("__audit_checkpoints: {e}")))?;
            (checkpoint, note, "__audit_checkpoints".to_owned())
        }
        (Some(_), Some(_)) => anyhow::bail!("give either --key or --checkpoint, not both"),
    };
    anyhow::ensure!(
        (1..=checkpoint.size).contains(&seq),
        "seq {seq} is outside the checkpoint's 1..={}",
        checkpoint.size
    );
    if checkpoint.size > db.audit_root().0 || db.audit_root_at(checkpoint.size)? != checkpoint.root
    {
        return Err(Tampered(format!(
            "the ledger does not match the checkpoint of size {} in {source}",
            checkpoint.size
        ))
        .into());
    }
    let proof = EventProof {
        canonical: event_bytes(db, seq)?,
        index: seq - 1,
        path: db.inclusion_proof(seq, checkpoint.size)?,
        checkpoint: note,
    };
    let mut line = Vec::new();
    heliosdb_lite::engine::audit::export(db.backend(), Some(seq), Some(seq), &mut line)
        .with_context(|| format!("cannot export event {seq}"))?;
    std::fs::write(proof_file, proof.to_text())
        .with_context(|| format!("cannot write {}", proof_file.display()))?;
    let line_file = event_line_file(proof_file);
    std::fs::write(&line_file, &line)
        .with_context(|| format!("cannot write {}", line_file.display()))?;
    writeln!(
        out,
        "proof of event {seq} in the checkpoint of {} events ({source}) written to {}, the event's export line to {}",
        checkpoint.size,
        proof_file.display(),
        line_file.display()
    )?;
    Ok(())
}

/// The checkpoint a stored note signs, after checking that it is the one the row says.
fn open_stored(stored: &StoredCheckpoint) -> Result<(Checkpoint, Note), CheckpointError> {
    let note = Note::parse(&stored.note)?;
    let checkpoint = Checkpoint::parse_body(note.text())?;
    if checkpoint.size != stored.size
        || checkpoint.root != stored.root
        || checkpoint.origin != stored.origin
    {
        return Err(CheckpointError::Checkpoint {
            what: format!(
                "the note stored for size {} signs another checkpoint (size {})",
                stored.size, checkpoint.size
            ),
        });
    }
    Ok((checkpoint, note))
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

/// `heliosdb verify-proof FILE --pubkey KEY [--event LINE] [--json]`. The event's export
/// line, from `--event` or else [`event_line_file`] when it exists, must be the proved
/// event (re-encoded, byte for byte); it is printed.
pub fn verify_proof(
    file: &Path,
    pubkey: &Path,
    event_line: Option<&Path>,
    json: bool,
    mut out: impl Write,
) -> anyhow::Result<()> {
    let key = VerifierKey::from_file(pubkey)?;
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let proof =
        EventProof::parse(&text).map_err(|e| Tampered(format!("{}: {e}", file.display())))?;
    let proved = proof
        .verify(&key)
        .map_err(|e| Tampered(format!("{}: {e}", file.display())))?;
    let line_file = match event_line {
        Some(path) => Some(path.to_path_buf()),
        None => Some(event_line_file(file)).filter(|p| p.exists()),
    };
    let line = match &line_file {
        Some(path) => Some(proved_line(path, &proof.canonical, proved.event.seq)?),
        None => None,
    };
    let event = &proved.event;
    if json {
        let mut value = serde_json::json!({
            "valid": true,
            "seq": event.seq,
            "checkpoint_size": proved.checkpoint.size,
            "origin": proved.checkpoint.origin,
            "user": event.user,
            "operation": event.operation,
            "targets": event.targets,
            "timestamp_us": event.timestamp_us,
            "success": event.success,
        });
        if let (Some((_, line)), Some(object)) = (&line, value.as_object_mut()) {
            object.insert("event".to_owned(), serde_json::to_value(line)?);
        }
        serde_json::to_writer(&mut out, &value)?;
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
        if let (Some((text, _)), Some(path)) = (&line, &line_file) {
            writeln!(out, "event line ({}, the proved event):", path.display())?;
            writeln!(out, "{text}")?;
        }
    }
    Ok(())
}

/// The export line in `path`, once it is shown to be the proved event: its fields
/// re-encoded must give exactly the proved canonical bytes.
fn proved_line(path: &Path, canonical: &[u8], seq: u64) -> anyhow::Result<(String, ExportLine)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let (Some(first), None) = (lines.next(), lines.next()) else {
        return Err(Tampered(format!(
            "{}: expected exactly one export line, of event {seq}",
            path.display()
        ))
        .into());
    };
    let line: ExportLine = serde_json::from_str(first)
        .map_err(|e| Tampered(format!("{}: not an export line: {e}", path.display())))?;
    let event = line
        .event()
        .map_err(|e| Tampered(format!("{}: {e}", path.display())))?;
    if event.canonical() != canonical {
        return Err(Tampered(format!(
            "{}: the event line is not the proved event {seq}: its fields differ from the proved bytes",
            path.display()
        ))
        .into());
    }
    Ok((first.to_owned(), line))
}

/// `heliosdb --db PATH audit sync --after N --key KEY --out FILE`. Before signing, the
/// ledger is checked against the last checkpoint in each of the `configured` places, like
/// [`checkpoint`] does.
pub fn sync(
    db: &Database,
    after: u64,
    key: &Path,
    configured: &[CheckpointFiles],
    file: &Path,
    mut out: impl Write,
) -> anyhow::Result<()> {
    let key = SignerKey::from_file(key)?;
    extends_configured(db, configured, &key, db.audit_root().0)?;
    let mut bytes = Vec::new();
    let summary = match write_batch(db, &key, after, &mut bytes) {
        Err(BatchError::Refused { what }) => return Err(Tampered(what).into()),
        Err(BatchError::Database(error)) => return Err(error.into()),
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

/// After an intact chain: compares the ledger with each checkpoint signed by the key in
/// `pubkey` — those in `place` (a file or a directory of checkpoint files), or without
/// it those stored in `__audit_checkpoints` — prints one line per checkpoint, and fails on
/// the first mismatch. Every root is recomputed from the stored events in one pass, so
/// checkpoints that all match are also consistent with each other. A stored note that
/// names the key but whose signature does not check is reported and fails the run.
pub fn check_ledger(
    backend: &dyn StorageBackend,
    report: &VerifyReport,
    pubkey: &Path,
    place: Option<&Path>,
    json: bool,
    out: impl Write,
) -> anyhow::Result<()> {
    let (key, checkpoints, refused) = match place {
        Some(place) => {
            let (key, checkpoints) = signed_checkpoints(pubkey, place)?;
            (key, checkpoints, Vec::new())
        }
        None => stored_checkpoints(backend, pubkey)?,
    };
    let verdicts = heliosdb_lite::checkpoint::check(backend, &checkpoints)
        .context("cannot read the ledger to compare with the checkpoints")?;
    report_verdicts(
        out,
        json,
        report,
        &checkpoints,
        &verdicts,
        &refused,
        "ledger",
        &format!(", key {}+{:08x}", key.name(), key.id()),
    )
}

/// The checkpoints stored in `__audit_checkpoints` signed by the key in `pubkey`, and a
/// message for each stored note that carries a signature of that key's name and id that
/// does not check (the note was changed or forged). Notes of other keys are skipped.
fn stored_checkpoints(
    backend: &dyn StorageBackend,
    pubkey: &Path,
) -> anyhow::Result<(VerifierKey, Vec<Checkpoint>, Vec<String>)> {
    let key = VerifierKey::from_file(pubkey)?;
    let stored = match backend.snapshot() {
        Ok(snapshot) => checkpoints::all(&*snapshot),
        Err(error) => Err(error.into()),
    }
    .context("cannot read the checkpoints stored in __audit_checkpoints")?;
    let mut signed = Vec::new();
    let mut refused = Vec::new();
    for row in &stored {
        let opened = Note::parse(&row.note).and_then(|note| {
            note.verify(&key)?;
            Checkpoint::parse_body(note.text())
        });
        match opened {
            Ok(checkpoint) => signed.push(checkpoint),
            Err(CheckpointError::NotSigned { .. }) => {}
            Err(error) => refused.push(format!(
                "stored checkpoint of size {} in __audit_checkpoints: {error}",
                row.size
            )),
        }
    }
    if signed.is_empty() && refused.is_empty() {
        return Err(Tampered(format!(
            "no checkpoint signed by {}+{:08x} is stored in __audit_checkpoints; pass --checkpoint FILE",
            key.name(),
            key.id()
        ))
        .into());
    }
    Ok((key, signed, refused))
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
    report_verdicts(
        out,
        json,
        report,
        &checkpoints,
        &verdicts,
        &[],
        "export",
        "",
    )
}

/// Prints a verify report followed by one verdict per checkpoint and one line per note
/// `refused` before comparison (or, with `json`, the report's JSON object with `intact`
/// covering all and a `checkpoints` list, plus `refused`), and fails on the first
/// refusal or mismatch. `subject` is what was checked: `ledger` or `export`.
#[allow(clippy::too_many_arguments)]
fn report_verdicts(
    mut out: impl Write,
    json: bool,
    report: &(impl std::fmt::Display + serde::Serialize),
    checkpoints: &[Checkpoint],
    verdicts: &[Verdict],
    refused: &[String],
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
                && verdicts.iter().all(Verdict::is_match)
                && refused.is_empty();
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
            if !refused.is_empty() {
                object.insert("refused".to_owned(), refused.into());
            }
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
        for line in refused {
            writeln!(out, "{line}")?;
        }
    }
    out.flush()?;
    if let Some(first) = refused.first() {
        return Err(Tampered(first.clone()).into());
    }
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
