//! The audit commands: `verify`, `audit tail`, `audit export` and `verify-export`.
//!
//! They read the stored ledger straight from the backend, without opening a SQL session:
//! looking at the trail does not add to it, and a database whose head was tampered with
//! still opens for verification.

use crate::table::Table;
use anyhow::{Context, bail};
use heliosdb_lite::engine::audit::{self, ExportReport, Record};
use heliosdb_lite::{FjallBackend, Rows, Value};
use serde::Serialize;
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::Path;

/// Tampering was found: the command printed its report and exits with status 1.
#[derive(Debug)]
pub struct Tampered(pub String);

impl fmt::Display for Tampered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::error::Error for Tampered {}

/// Longest query text `audit tail` shows, in characters; `audit export` has it all.
const TAIL_QUERY_CHARS: usize = 80;

/// Opens the backend of the existing database at `path`, refusing to create one.
fn open_backend(path: &Path) -> anyhow::Result<FjallBackend> {
    let exists = std::fs::read_dir(path)
        .map(|mut entries| entries.next().is_some())
        .unwrap_or(false);
    if !exists {
        bail!("no database at {}", path.display());
    }
    Ok(FjallBackend::open(path)?)
}

/// `heliosdb --db PATH verify [--json] [--pubkey KEY --checkpoint FILE]`.
pub fn verify(
    path: &Path,
    json: bool,
    checkpoints: Option<(&Path, &Path)>,
    mut out: impl Write,
) -> anyhow::Result<()> {
    let backend = open_backend(path)?;
    let report = audit::verify(&backend)
        .with_context(|| format!("cannot verify the audit ledger at {}", path.display()))?;
    if let (Some((pubkey, file)), true) = (checkpoints, report.is_intact()) {
        return crate::checkpoint_cmd::check_ledger(&backend, &report, pubkey, file, json, out);
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
}
