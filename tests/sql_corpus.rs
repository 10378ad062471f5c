//! The SQL corpus: one file per construct in `tests/sql/*.sql`, its expected output beside
//! it in `*.out`, run statement by statement through a session on every backend. Both
//! backends must produce exactly the expected output.
//!
//! After an intended change, regenerate the expectations with
//! `UPDATE_EXPECT=1 cargo test --test sql_corpus` and review the diff.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use heliosdb_lite::{Database, Output, SessionInfo};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Splits a corpus file into statements: a statement ends with a line ending in `;`.
/// Lines starting with `--` outside a statement are comments.
fn statements(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with("--")) {
            continue;
        }
        if !current.is_empty() {
            current.push('\n');
        }
        current.push_str(line);
        if trimmed.ends_with(';') {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.trim().is_empty() {
        out.push(current);
    }
    out
}

fn render(db: &Database, text: &str) -> String {
    let mut session = db.session(SessionInfo::new("corpus"));
    let mut out = String::new();
    for statement in statements(text) {
        writeln!(out, "> {statement}").unwrap();
        match session.execute(&statement, &[]) {
            Ok(outputs) => {
                for output in outputs {
                    match output {
                        Output::Rows(rows) => {
                            writeln!(out, "columns: {}", rows.columns.join(" | ")).unwrap();
                            for row in rows.rows {
                                let cells: Vec<String> =
                                    row.iter().map(|v| format!("{v:?}")).collect();
                                writeln!(out, "row: {}", cells.join(" | ")).unwrap();
                            }
                        }
                        Output::Affected { statement, count } => {
                            writeln!(out, "affected: {statement} {count}").unwrap();
                        }
                        Output::Done { statement } => {
                            writeln!(out, "done: {statement}").unwrap();
                        }
                        other => writeln!(out, "{other:?}").unwrap(),
                    }
                }
            }
            Err(error) => writeln!(out, "error({}): {error}", error.kind()).unwrap(),
        }
    }
    out
}

fn corpus_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sql");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no corpus files in {}", dir.display());
    files
}

fn run_corpus(open: impl Fn() -> (Database, Option<tempfile::TempDir>), backend: &str) {
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let mut failures = Vec::new();
    for file in corpus_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        let (db, _dir) = open();
        let actual = render(&db, &text);
        let expected_path = file.with_extension("out");
        if update {
            std::fs::write(&expected_path, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if actual != expected {
            failures.push(format!(
                "{} on {backend}: output differs from {}\n--- expected\n{expected}\n--- actual\n{actual}",
                file.display(),
                expected_path.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn corpus_on_memory() {
    run_corpus(|| (Database::in_memory().unwrap(), None), "memory");
}

#[test]
fn corpus_on_fjall() {
    run_corpus(
        || {
            let dir = tempfile::tempdir().unwrap();
            (Database::open(dir.path().join("db")).unwrap(), Some(dir))
        },
        "fjall",
    );
}
