//! The audit commands: `verify`, `audit tail`, `audit export`, `verify-export`, and the
//! personal-data commands `audit subject`, `audit token` and `audit forget-subject`.
//!
//! They read the stored ledger straight from the backend, without opening a SQL session:
//! looking at the trail does not add to it, and a database whose head was tampered with
//! still opens for verification.

use crate::table::Table;
use anyhow::{Context, bail};
use heliosdb_lite::engine::audit::{self, ExportReport, Record};
use heliosdb_lite::engine::refused::REFUSED_COMMIT_RECORD;
use heliosdb_lite::{FjallBackend, Rows, StorageBackend, Value};
use serde::Serialize;
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::Path;

use crate::failure::Tampered;

/// Longest query text `audit tail` shows, in characters; `audit export` has it all.
const TAIL_QUERY_CHARS: usize = 80;

/// Opens the backend of the existing database at `path`, refusing to create one. A commit
/// refused earlier is settled first, as every open of the database does (it may have
/// reached the disk after it was reported failed, and must not be read as if it stood):
/// the database is opened once, which undoes it and records a `REFUSED_COMMIT` event.
fn open_backend(path: &Path) -> anyhow::Result<FjallBackend> {
    let exists = std::fs::read_dir(path)
        .map(|mut entries| entries.next().is_some())
        .unwrap_or(false);
    if !exists {
        bail!("no database at {}", path.display());
    }
    let backend = FjallBackend::open(path)?;
    if backend.side_record(REFUSED_COMMIT_RECORD)?.is_none() {
        return Ok(backend);
    }
    drop(backend);
    drop(heliosdb_lite::Database::builder().path(path).open()?);
    Ok(FjallBackend::open(path)?)
}

/// `heliosdb --db PATH verify [--json] [--pubkey KEY [--checkpoint FILE|DIR]]`: without
/// `--checkpoint`, the checkpoints stored in `__audit_checkpoints` signed by the key.
pub fn verify(
    path: &Path,
    json: bool,
    pubkey: Option<&Path>,
    checkpoints: Option<&Path>,
    mut out: impl Write,
) -> anyhow::Result<()> {
    let backend = open_backend(path)?;
    let report = audit::verify(&backend)
        .with_context(|| format!("cannot verify the audit ledger at {}", path.display()))?;
    if let (Some(pubkey), true) = (pubkey, report.is_intact()) {
        return crate::checkpoint_cmd::check_ledger(
            &backend,
            &report,
            pubkey,
            checkpoints,
            json,
            out,
        );
    }
    print_report(&mut out, json, &report)?;
    match &report.problem {
        None => Ok(()),
        Some(problem) => Err(Tampered(format!("audit ledger is not intact: {problem}")).into()),
    }
}

/// `heliosdb verify-export FILE [--json] [--pubkey KEY --checkpoint FILE]`; `-` reads
/// standard input.
pub fn verify_export(
    file: &Path,
    json: bool,
    checkpoints: Option<(&Path, &Path)>,
    mut out: impl Write,
) -> anyhow::Result<()> {
    let text = if file == Path::new("-") {
        let mut text = Vec::new();
        io::Read::read_to_end(&mut io::stdin().lock(), &mut text)
            .context("cannot read standard input")?;
        text
    } else {
        std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?
    };
    let report: ExportReport = audit::verify_export(BufReader::new(text.as_slice()))
        .with_context(|| format!("cannot read {}", file.display()))?;
    if let (Some((pubkey, checkpoint_file)), true) = (checkpoints, report.is_intact()) {
        return crate::checkpoint_cmd::check_export(
            &text,
            &report,
            pubkey,
            checkpoint_file,
            json,
            out,
        );
    }
    print_report(&mut out, json, &report)?;
    match &report.problem {
        None => Ok(()),
        Some(problem) => Err(Tampered(format!(
            "audit export {} is not intact: {problem}",
            file.display()
        ))
        .into()),
    }
}

/// Prints a report as text, or as one JSON line.
fn print_report(
    out: &mut impl Write,
    json: bool,
    report: &(impl fmt::Display + Serialize),
) -> anyhow::Result<()> {
    if json {
        serde_json::to_writer(&mut *out, report)?;
        writeln!(out)?;
    } else {
        write!(out, "{report}")?;
    }
    out.flush()?;
    Ok(())
}

/// `heliosdb --db PATH audit tail [-n N]`.
pub fn tail(path: &Path, count: usize, mut out: impl Write) -> anyhow::Result<()> {
    let backend = open_backend(path)?;
    let records = audit::tail(&backend, count)
        .with_context(|| format!("cannot read the audit ledger at {}", path.display()))?;
    write!(out, "{}", Table::new(&tail_rows(&records)))?;
    out.flush()?;
    Ok(())
}

/// The records as the rows `audit tail` prints.
fn tail_rows(records: &[Record]) -> Rows {
    let int = |v: u64| Value::I64(i64::try_from(v).unwrap_or(i64::MAX));
    Rows {
        columns: [
            "id",
            "timestamp",
            "user",
            "operation",
            "target",
            "success",
            "rows",
            "query",
        ]
        .map(str::to_owned)
        .to_vec(),
        rows: records
            .iter()
            .map(|record| {
                let e = &record.event;
                vec![
                    int(e.seq),
                    Value::Timestamp(audit::table::timestamp(e.timestamp_us)),
                    Value::Str(e.user.clone()),
                    Value::Str(e.operation.clone()),
                    Value::Str(e.targets.join(",")),
                    Value::Bool(e.success),
                    int(e.rows),
                    Value::Str(shorten(&e.query)),
                ]
            })
            .collect(),
    }
}

/// `text` cut to [`TAIL_QUERY_CHARS`] characters, marked with `…` when cut.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(TAIL_QUERY_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// `heliosdb --db PATH audit export [--from SEQ] [--to SEQ] [--out FILE]`: JSON Lines to
/// `out_file`, or to `stdout` without one.
pub fn export(
    path: &Path,
    from: Option<u64>,
    to: Option<u64>,
    out_file: Option<&Path>,
    stdout: impl Write,
) -> anyhow::Result<()> {
    let backend = open_backend(path)?;
    let read = |e| anyhow::Error::new(e).context(format!("cannot export from {}", path.display()));
    match out_file {
        None => {
            let mut out = BufWriter::new(stdout);
            audit::export(&backend, from, to, &mut out).map_err(read)?;
        }
        Some(file) => {
            let created =
                File::create(file).with_context(|| format!("cannot create {}", file.display()))?;
            let mut out = BufWriter::new(created);
            let n = audit::export(&backend, from, to, &mut out).map_err(read)?;
            out.into_inner()
                .map_err(io::IntoInnerError::into_error)
                .and_then(|file| file.sync_all())
                .with_context(|| format!("cannot write {}", file.display()))?;
            let mut stdout = stdout;
            writeln!(stdout, "{n} events written to {}", file.display())?;
        }
    }
    Ok(())
}

/// Formats of the subject access report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SubjectFormat {
    /// One JSON document: the subject's token and its events.
    Json,
    /// CSV with a header line, one event per line.
    Csv,
}

/// One event of the subject access report.
#[derive(Debug, Serialize)]
struct SubjectRow {
    seq: u64,
    timestamp: String,
    user: String,
    application: String,
    class: &'static str,
    operation: String,
    targets: Vec<String>,
    success: bool,
    rows: u64,
    query: String,
    params: Vec<String>,
    error: Option<String>,
    custom: std::collections::BTreeMap<String, String>,
}

impl From<audit::AuditEvent> for SubjectRow {
    fn from(e: audit::AuditEvent) -> Self {
        SubjectRow {
            seq: e.seq,
            timestamp: audit::export::rfc3339_micros(e.timestamp_us).unwrap_or_default(),
            user: e.user,
            application: e.application,
            class: e.class.as_str(),
            operation: e.operation,
            targets: e.targets,
            success: e.success,
            rows: e.rows,
            query: e.query,
            params: e.params,
            error: e.error,
            custom: e.custom,
        }
    }
}

/// `heliosdb --db PATH audit subject ID [--format json|csv]`: every recorded event that
/// touched the data subject `id` (GDPR Art. 15), with values still encrypted for it shown
/// in clear. The lookup is itself recorded (a SYSTEM `SUBJECT_ACCESS` event by `by`); the
/// database is opened read-only.
pub fn subject(
    path: &Path,
    id: &str,
    by: &str,
    format: SubjectFormat,
    mut out: impl Write,
) -> anyhow::Result<()> {
    drop(open_backend(path)?);
    let db = heliosdb_lite::Database::builder()
        .path(path)
        .read_only()
        .open()?;
    let context = || format!("cannot read the audit ledger at {}", path.display());
    let (_, events) = audit::redact::subject_access(&db, id, by).with_context(context)?;
    let token = audit::redact::subject_token(db.backend(), id).with_context(context)?;
    let rows: Vec<SubjectRow> = events.into_iter().map(SubjectRow::from).collect();
    match format {
        SubjectFormat::Json => {
            #[derive(Serialize)]
            struct Report<'a> {
                subject_token: Option<&'a str>,
                events: &'a [SubjectRow],
            }
            serde_json::to_writer_pretty(
                &mut out,
                &Report {
                    subject_token: token.as_deref(),
                    events: &rows,
                },
            )?;
            writeln!(out)?;
        }
        SubjectFormat::Csv => {
            writeln!(
                out,
                "seq,timestamp,user,application,class,operation,targets,success,rows,query,params,error"
            )?;
            for row in &rows {
                let fields = [
                    row.seq.to_string(),
                    row.timestamp.clone(),
                    row.user.clone(),
                    row.application.clone(),
                    row.class.to_owned(),
                    row.operation.clone(),
                    row.targets.join(";"),
                    row.success.to_string(),
                    row.rows.to_string(),
                    row.query.clone(),
                    row.params.join(";"),
                    row.error.clone().unwrap_or_default(),
                ];
                let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
                writeln!(out, "{}", line.join(","))?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// A CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// `heliosdb --db PATH audit token VALUE`: the hash token the trail holds in place of
/// `VALUE` (`hmac:<hex>`), to search exports or `__audit_log` for it.
pub fn token(path: &Path, value: &str, mut out: impl Write) -> anyhow::Result<()> {
    let backend = open_backend(path)?;
    match audit::redact::subject_token(&backend, value)
        .with_context(|| format!("cannot read the redaction key at {}", path.display()))?
    {
        Some(token) => writeln!(out, "{token}")?,
        None => bail!(
            "no value was ever redacted in the database at {}",
            path.display()
        ),
    }
    out.flush()?;
    Ok(())
}

/// `heliosdb --db PATH audit forget-subject ID`: destroys the subject's key, so its
/// encrypted values cannot be read again, and erases values the application already
/// deleted from every file, journal included ([`heliosdb_lite::erase_subject`]); the
/// ledger still verifies.
pub fn forget_subject(
    open: impl FnMut() -> anyhow::Result<heliosdb_lite::Database>,
    id: &str,
    by: &str,
    mut out: impl Write,
) -> anyhow::Result<()> {
    let report = heliosdb_lite::erase_subject(open, id, by).context("cannot forget the subject")?;
    if report.key_destroyed {
        writeln!(
            out,
            "subject {} forgotten: its key is destroyed, its encrypted values can no longer be read (event {})",
            report.token, report.seq
        )?;
    } else {
        writeln!(
            out,
            "subject {} had no key: nothing was encrypted for it (recorded as event {})",
            report.token, report.seq
        )?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_queries_are_shortened_for_the_table() {
        assert_eq!(shorten("SELECT 1"), "SELECT 1");
        let long = "é".repeat(100);
        let short = shorten(&long);
        assert_eq!(short.chars().count(), TAIL_QUERY_CHARS + 1);
        assert!(short.ends_with('…'));
    }

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
