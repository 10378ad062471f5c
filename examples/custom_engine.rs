//! Compose your own engine: in-memory storage, an explicit audit policy and an audit sink
//! of your own (JSON lines on stderr). Run with `cargo run --example custom_engine`.

use heliosdb_lite::audit::{AuditPolicy, Hash};
use heliosdb_lite::{AuditSink, Database, SealedEvent, SessionInfo, SinkContext, SinkError};
use std::sync::{Arc, Mutex};

/// Writes each sealed event to stderr as one JSON object and keeps its seq.
pub struct StderrSink(pub Arc<Mutex<Vec<u64>>>);

impl AuditSink for StderrSink {
    fn name(&self) -> &str {
        "stderr"
    }
    fn resume_after(&mut self, _: &SinkContext) -> Result<u64, SinkError> {
        Ok(0) // Keeps nothing between runs: start from the first event.
    }
    fn deliver(&mut self, _prev: &Hash, events: &[SealedEvent]) -> Result<(), SinkError> {
        for sealed in events {
            let (e, chain) = (&sealed.event, sealed.chain.map(|b| format!("{b:02x}")));
            let line = serde_json::json!({"seq": e.seq, "user": e.user, "op": e.operation,
                "targets": e.targets, "ok": e.success, "chain": chain.concat()});
            eprintln!("{line}");
            self.0.lock().map_err(|_| "poisoned")?.push(e.seq);
        }
        Ok(())
    }
}

/// DDL and writes are audited; the `scratch` table and every SELECT are not.
const SCRIPT: &str = "CREATE TABLE dose (id INTEGER PRIMARY KEY, mg INTEGER);
    CREATE TABLE scratch (n INTEGER); INSERT INTO scratch VALUES (1);
    INSERT INTO dose VALUES (1, 20), (2, 40); SELECT * FROM dose";

/// Runs the example: the seqs the sink received, and the ledger's last seq.
pub fn run() -> anyhow::Result<(Vec<u64>, u64)> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let policy = AuditPolicy {
        log_select: false,
        exclude_tables: vec!["scratch".into()],
        ..AuditPolicy::default()
    };
    let builder = Database::builder().in_memory().audit_policy(policy);
    let db = builder.sink(StderrSink(Arc::clone(&seen))).open()?;
    let mut s = db.session(SessionInfo::new("operator").application("custom-engine"));
    s.execute(SCRIPT, &[])?;
    let last = db.audit_head().seq;
    anyhow::ensure!(db.verify()?.is_intact(), "the audit chain does not verify");
    drop((s, db)); // Closing drains the sink.
    let seen = seen.lock().map(|v| v.clone());
    Ok((seen.map_err(|_| anyhow::anyhow!("poisoned"))?, last))
}

fn main() -> anyhow::Result<()> {
    let (seen, last) = run()?;
    println!("sink: {} events; ledger: {last}", seen.len());
    Ok(())
}
