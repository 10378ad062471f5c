//! The command line and `heliosdb.toml`: `config show`, `config check`, `presets`,
//! `--config`, the file found next to `--db`, environment overrides and `audit sinks`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{assert_exit, heliosdb, path, stderr, stdout};
use std::process::Command;

fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let file = dir.join(name);
    std::fs::write(&file, text).expect("write");
    file
}

#[test]
fn presets_lists_each_with_its_purpose() {
    let output = heliosdb(&["presets"]);
    assert_exit(&output, 0);
    let text = stdout(&output);
    for (name, purpose) in [
        ("soc2", "CC7.2"),
        ("hipaa", "§164.312(b)"),
        ("gdpr", "Art. 30"),
        ("pci-dss", "10.2"),
        ("fda-part11", "11.10(e)"),
    ] {
        let line = text
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} listed in:\n{text}"));
        assert!(line.contains(purpose), "{line}");
    }
}

#[test]
fn config_check_exits_0_or_1_with_the_place_of_the_error() {
    let dir = tempfile::tempdir().expect("dir");
    let good = write(dir.path(), "good.toml", "[audit]\npreset = \"hipaa\"\n");
    let output = heliosdb(&["config", "check", path(&good)]);
    assert_exit(&output, 0);
    assert_eq!(
        stdout(&output),
        format!("{}: valid (preset hipaa)\n", good.display())
    );

    let bad = write(
        dir.path(),
        "bad.toml",
        "[audit]\npreset = \"hipaa\"\nlog_selct = true\n",
    );
    let output = heliosdb(&["config", "check", path(&bad)]);
    assert_exit(&output, 1);
    assert_eq!(
        stderr(&output),
        format!(
            "error: {}:3:1: audit.log_selct: unknown key `log_selct`; did you mean `log_select`?\n",
            bad.display()
        )
    );
    let output = heliosdb(&["config", "check", path(&dir.path().join("missing.toml"))]);
    assert_exit(&output, 1);
    assert!(
        stderr(&output).contains("cannot read configuration file"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn config_show_names_the_source_of_every_value() {
    let dir = tempfile::tempdir().expect("dir");
    let file = write(
        dir.path(),
        "heliosdb.toml",
        "[audit]\npreset = \"pci-dss\"\nmax_query_length = 100\n",
    );
    let output = Command::new(env!("CARGO_BIN_EXE_heliosdb"))
        .args(["config", "show", "--config", path(&file)])
        .env("HELIOSDB_AUDIT__LOG_DDL", "false")
        .output()
        .expect("run");
    assert_exit(&output, 0);
    let text = stdout(&output);
    let line = |key: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("{key} in:\n{text}"))
            .to_owned()
    };
    assert!(line("max_query_length").ends_with(&format!("# file {}", file.display())));
    assert!(line("log_ddl").ends_with("# env HELIOSDB_AUDIT__LOG_DDL"));
    assert!(line("log_ddl").starts_with("log_ddl = false"));
    assert!(line("retention_days").ends_with("# preset pci-dss"));
    assert!(line("cache_mb").ends_with("# default"));

    // A bad override is an error naming the variable (exit 2: not a `config check`).
    let output = Command::new(env!("CARGO_BIN_EXE_heliosdb"))
        .args(["config", "show"])
        .env("HELIOSDB_AUDIT__LOG_DDL", "maybe")
        .output()
        .expect("run");
    assert_exit(&output, 2);
    assert!(
        stderr(&output).contains("environment variable HELIOSDB_AUDIT__LOG_DDL"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn the_config_changes_what_commands_record() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("db");
    let file = write(
        dir.path(),
        "edge.toml",
        "[database]\npath = \"db\"\n[audit]\nexclude_tables = [\"cache\"]\n[[audit.sinks]]\nkind = \"jsonl-file\"\npath = \"trail.jsonl\"\n",
    );
    // database.path places the database; the sink writes next to the file.
    let output = heliosdb(&[
        "--config",
        path(&file),
        "sql",
        "CREATE TABLE cache (k INTEGER); INSERT INTO cache VALUES (1); CREATE TABLE t (a INTEGER)",
    ]);
    assert_exit(&output, 0);
    assert!(db.is_dir());
    let trail = std::fs::read_to_string(dir.path().join("trail.jsonl")).expect("sink file");
    assert_eq!(trail.lines().count(), 1, "only CREATE TABLE t:\n{trail}");
    assert!(trail.contains("CREATE TABLE t"));
    let output = heliosdb(&["verify-export", path(&dir.path().join("trail.jsonl"))]);
    assert_exit(&output, 0);

    // A heliosdb.toml inside --db is used without --config.
    write(&db, "heliosdb.toml", "[audit]\nlog_select = false\n");
    let output = heliosdb(&["--db", path(&db), "sql", "SELECT a FROM t"]);
    assert_exit(&output, 0);
    let output = heliosdb(&["--db", path(&db), "audit", "tail", "-n", "1"]);
    assert_exit(&output, 0);
    assert!(
        !stdout(&output).contains("SELECT a FROM t"),
        "{}",
        stdout(&output)
    );
    // ... and a broken one stops the command with its line.
    write(&db, "heliosdb.toml", "[audit]\nlog_select = nope\n");
    let output = heliosdb(&["--db", path(&db), "sql", "SELECT a FROM t"]);
    assert_exit(&output, 2);
    assert!(
        stderr(&output).contains("heliosdb.toml:2:"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn audit_sinks_reports_delivery() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("db");
    let output = heliosdb(&["--db", path(&db), "sql", "CREATE TABLE t (a INTEGER)"]);
    assert_exit(&output, 0);
    let output = heliosdb(&["--db", path(&db), "audit", "sinks"]);
    assert_exit(&output, 0);
    assert!(stdout(&output).starts_with("no sinks configured"));
    // A sink added later catches up with the whole ledger.
    write(
        &db,
        "heliosdb.toml",
        "[[audit.sinks]]\nkind = \"jsonl-file\"\npath = \"../trail.jsonl\"\n",
    );
    let output = heliosdb(&["--db", path(&db), "audit", "sinks"]);
    assert_exit(&output, 0);
    let text = stdout(&output);
    assert!(text.contains("delivered 1 of 1 (lag 0)"), "{text}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("trail.jsonl"))
            .expect("sink file")
            .lines()
            .count(),
        1
    );
}

/// A minimal OTLP/HTTP receiver: answers every request 200 with an empty body (a full
/// success) and counts the requests. The real receiver with failure injection is in
/// `audit-sinks/otlp/tests`.
fn accept_all_otlp() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let requests = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = std::sync::Arc::clone(&requests);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let counter = std::sync::Arc::clone(&counter);
            std::thread::spawn(move || {
                let mut writer = stream.try_clone().expect("clone");
                let mut reader = BufReader::new(stream);
                loop {
                    let mut length = 0;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let header = line.trim_end().to_ascii_lowercase();
                        if let Some(value) = header.strip_prefix("content-length:") {
                            length = value.trim().parse().expect("length");
                        }
                        if header.is_empty() {
                            break;
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).expect("body");
                    counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    writer
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .expect("answer");
                }
            });
        }
    });
    (addr, requests)
}

#[test]
fn audit_sinks_reports_otlp_export_and_its_lag() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("db");
    let output = heliosdb(&["--db", path(&db), "sql", "CREATE TABLE t (a INTEGER)"]);
    assert_exit(&output, 0);
    // The receiver is down: the event waits, `audit sinks` shows the lag and the error.
    let down = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let config = |addr: std::net::SocketAddr| {
        format!(
            "[[audit.sinks]]\nkind = \"otlp\"\nendpoint = \"http://{addr}\"\ncursor = \"../otlp.cursor\"\ntimeout_ms = 1000\n"
        )
    };
    write(&db, "heliosdb.toml", &config(down));
    let output = heliosdb(&["--db", path(&db), "audit", "sinks", "--wait", "1"]);
    assert_exit(&output, 0);
    let text = stdout(&output);
    assert!(
        text.starts_with("otlp: delivered 0 of 1 (lag 1 events, "),
        "{text}"
    );
    assert!(
        text.contains("last error: deliver: export to http://"),
        "{text}"
    );
    // Up: the sink catches up; the cursor file records it.
    let (addr, requests) = accept_all_otlp();
    write(&db, "heliosdb.toml", &config(addr));
    let output = heliosdb(&["--db", path(&db), "audit", "sinks"]);
    assert_exit(&output, 0);
    let text = stdout(&output);
    assert!(text.contains("otlp: delivered 1 of 1 (lag 0)"), "{text}");
    assert!(requests.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    let cursor = std::fs::read_to_string(dir.path().join("otlp.cursor")).expect("cursor");
    assert!(cursor.contains("\"seq\":1"), "{cursor}");
}
