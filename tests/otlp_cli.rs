//! The OTLP sink as an operator runs it: configured in `heliosdb.toml`, the `heliosdb`
//! binary run as a child process, against the real OTLP receiver of the sink's own tests
//! (`audit-sinks/otlp/tests/support/receiver.rs`).
//!
//! - With `kind = "otlp"` and no endpoint, the endpoint and headers come from
//!   `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_HEADERS` in the process's own
//!   environment.
//! - `protocol = "grpc"` from the file exports over OTLP/gRPC end to end.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[allow(dead_code)]
#[path = "../audit-sinks/otlp/tests/support/receiver.rs"]
mod receiver;

use receiver::{Receiver, Wire};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

/// Runs `heliosdb --db DIR ARGS` with `env` set and every other OTLP variable removed.
fn heliosdb(db: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_heliosdb"));
    command.arg("--db").arg(db).args(args);
    for (name, _) in std::env::vars() {
        if name.starts_with("OTEL_") || name.starts_with("HELIOSDB_") {
            command.env_remove(name);
        }
    }
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().expect("run heliosdb");
    assert!(
        output.status.success(),
        "heliosdb {args:?} failed: {}",
        common::stderr(&output)
    );
    output
}

/// The seqs of the event records the receiver holds.
fn seqs(receiver: &Receiver) -> BTreeSet<u64> {
    receiver.seen(|seen| {
        seen.records
            .iter()
            .filter_map(|r| r["seq"].as_u64())
            .filter(|seq| *seq > 0)
            .collect()
    })
}

#[test]
fn the_endpoint_and_headers_come_from_the_environment() {
    let dir = tempfile::tempdir().expect("dir");
    let receiver = Receiver::start(Wire::Http, &dir.path().join("received.jsonl"));
    let db = dir.path().join("db");
    std::fs::create_dir(&db).expect("db dir");
    std::fs::write(
        db.join("heliosdb.toml"),
        "[[audit.sinks]]\nkind = \"otlp\"\nlinger_ms = 0\n",
    )
    .expect("config");
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            "authorization=Bearer%20from-env,x-tenant=acme".to_owned(),
        ),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    heliosdb(
        &db,
        &[
            "sql",
            "CREATE TABLE t (id INTEGER PRIMARY KEY); INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)",
        ],
        &env,
    );
    let shown = common::stdout(&heliosdb(&db, &["audit", "sinks", "--wait", "30"], &env));
    assert!(shown.contains("otlp: delivered"), "{shown}");
    assert!(shown.contains("(lag 0)"), "{shown}");
    let head: u64 = shown
        .split_whitespace()
        .skip_while(|w| *w != "of")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no head in {shown:?}"));
    assert!(head >= 3, "{shown}");
    assert_eq!(seqs(&receiver), (1..=head).collect());
    receiver.seen(|seen| {
        assert_eq!(seen.last_headers["authorization"], "Bearer from-env");
        assert_eq!(seen.last_headers["x-tenant"], "acme");
    });
    // The cursor is the default `otlp.cursor` beside the configuration file.
    let cursor = std::fs::read_to_string(db.join("otlp.cursor")).expect("cursor");
    assert!(cursor.contains(&format!("\"seq\":{head}")), "{cursor}");
}

#[test]
fn a_grpc_sink_configured_in_heliosdb_toml() {
    let dir = tempfile::tempdir().expect("dir");
    let receiver = Receiver::start(Wire::Grpc, &dir.path().join("received.jsonl"));
    let db = dir.path().join("db");
    std::fs::create_dir(&db).expect("db dir");
    std::fs::write(
        db.join("heliosdb.toml"),
        format!(
            "[[audit.sinks]]\nkind = \"otlp\"\nprotocol = \"grpc\"\nendpoint = \"{}\"\ncompression = \"gzip\"\nheaders = {{ x-tenant = \"plant-7\" }}\nservice_name = \"line-3\"\ncursor = \"state/grpc.cursor\"\nlinger_ms = 0\n",
            receiver.endpoint()
        ),
    )
    .expect("config");
    // The file wins over the environment.
    let env = [("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")];
    heliosdb(
        &db,
        &[
            "sql",
            "CREATE TABLE t (id INTEGER PRIMARY KEY); INSERT INTO t VALUES (1)",
        ],
        &env,
    );
    let shown = common::stdout(&heliosdb(&db, &["audit", "sinks", "--wait", "30"], &env));
    assert!(shown.contains("(lag 0)"), "{shown}");
    let received = seqs(&receiver);
    assert!(received.len() >= 2, "{received:?}");
    assert_eq!(
        received,
        (1..=*received.last().expect("one")).collect::<BTreeSet<_>>()
    );
    receiver.seen(|seen| {
        assert!(seen.records.iter().all(|r| r["wire"] == "Grpc"));
        assert!(
            seen.records
                .iter()
                .all(|r| r["resource"]["service.name"] == "line-3")
        );
        assert_eq!(seen.gzip_calls, seen.calls);
        assert_eq!(seen.last_headers["x-tenant"], "plant-7");
    });
    assert!(db.join("state/grpc.cursor").exists());
}
