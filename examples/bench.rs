//! The audit trail's performance targets, measured in one run and printed as a table.
//!
//! ```text
//! cargo run --release --example bench                      # full run, ~8 minutes
//! cargo run --release --example bench -- --events 100000 --query-events 100000 --ops 2000
//! cargo run --release --example bench -- --json /tmp/bench.json   # also every figure as JSON
//! ```
//!
//! (a) Single-row INSERT / UPDATE / DELETE latency (median, p99, mean): HeliosDB-Lite on
//!     fjall (audit off, on, on with a `jsonl-file` sink) and in memory (off, on); SQLite
//!     (rusqlite, bundled, WAL) with `synchronous=NORMAL` and `FULL`, each without audit,
//!     with audit triggers, and with an application-side SHA-256 hash chain. All of them
//!     interleaved in short chunks so drift of the machine hits every one alike. Targets:
//!     audit on / off ≤ 1.10; audited HeliosDB-Lite ≥ SQLite with triggers (NORMAL).
//! (a'') SELECT by primary key, HeliosDB-Lite with `log_select` off and on, and SQLite.
//! (b) Verifying the hash chain of a ledger of `--events` events, in events per second on
//!     one core, and as a fraction of this CPU's SHA-256 limit. Target: ≥ 0.6.
//! (c) Opening that database after a clean close.
//! (e) Bulk load: `--bulk-rows` rows in one transaction, rows per second.
//! (f) Four audit queries over `--query-events` synthetic events (90 days, 20 users, 50
//!     tables, 5 operations, 1 % failures), against SQLite with the same data and indexes.
//!     Target: ≤ 5 ms each. (g) On-disk bytes per event. Target: ≤ 200 B.
//! (h) UPDATE / DELETE by key against INSERT with `--large-rows` rows in the table.
//!     Target: ≤ 3×.
//! (i) Peak RSS with audit on and off (the example re-runs itself as a child).
//!
//! What each figure means and the figures measured are in `docs/BENCHMARKS.md`.

#[path = "../benches/support/mod.rs"]
mod support;

use anyhow::{Context, bail, ensure};
use clap::Parser;
use heliosdb_lite::chrono::{DateTime, NaiveDateTime};
use heliosdb_lite::engine::audit::ledger::{
    self, DATABASE_ID_KEY, Hash, KS_AUDIT, chain_hash, genesis, leaf_hash,
};
use heliosdb_lite::engine::audit::{AuditEvent, AuditPolicy, EventClass, VerifyOptions};
use heliosdb_lite::engine::backend::{Direction, Durability, WriteBatch};
use heliosdb_lite::engine::catalog::KS_CATALOG;
use heliosdb_lite::{
    DatabaseOptions, DurabilityMode, FjallBackend, FromValue, Param, Rows, Session, SessionInfo,
    StorageBackend, Value, params,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{CHECKPOINT_EVERY, DEFAULT_ITEM_ROWS, Dml, DmlTarget, RENEW_EVERY, Setup};

/// Command-line options.
#[derive(Parser, Debug)]
#[command(
    about = "Measure the audit trail's cost: DML latency, verify throughput, open time, \
                   audit queries, storage, memory"
)]
struct Args {
    /// Events in the ledger that verify and open are measured on.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Measured statements per kind (INSERT, UPDATE, DELETE, SELECT) and per database.
    #[arg(long, default_value_t = 10_000)]
    ops: usize,
    /// Rows kept in the table that UPDATE, DELETE and SELECT touch.
    #[arg(long, default_value_t = DEFAULT_ITEM_ROWS)]
    rows: i64,
    /// Opens of the large database to time.
    #[arg(long, default_value_t = 5)]
    opens: usize,
    /// Verification passes over the large ledger.
    #[arg(long, default_value_t = 3)]
    verify_passes: usize,
    /// Keep the large database in this directory, and reuse it on the next run (it is
    /// topped up to `--events`). A temporary directory otherwise.
    #[arg(long)]
    ledger_dir: Option<PathBuf>,
    /// Skip the SQLite peers of the latency, bulk-load and large-table figures (the audit
    /// queries always run on SQLite too: the two engines' results are cross-checked).
    #[arg(long)]
    no_sqlite: bool,
    /// UPDATEs run on one table without starting over, to show whether their latency
    /// grows with the versions left in fjall's memtable (0 skips it).
    #[arg(long, default_value_t = 8_000)]
    buildup: usize,
    /// Measure only this statement kind in the DML latency run: insert, update or delete
    /// (handy under a profiler).
    #[arg(long, value_parser = ["insert", "update", "delete"])]
    only: Option<String>,
    /// Write every figure printed to this file as one JSON document.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Rows loaded in one transaction by the bulk-load figure (0 skips it).
    #[arg(long, default_value_t = 100_000)]
    bulk_rows: i64,
    /// Synthetic events the audit queries run on.
    #[arg(long, default_value_t = 1_000_000)]
    query_events: u64,
    /// Keep the audit-query databases in this directory and reuse them on the next run
    /// with the same `--query-events` (handy under a profiler). A temporary directory
    /// otherwise.
    #[arg(long)]
    query_dir: Option<PathBuf>,
    /// Measured runs of each audit query (fewer when `--query-budget` runs out first).
    #[arg(long, default_value_t = 50)]
    query_runs: usize,
    /// Seconds one audit query may take in all, over its runs, on each engine.
    #[arg(long, default_value_t = 20)]
    query_budget: u64,
    /// Skip the audit queries and the on-disk size.
    #[arg(long)]
    skip_queries: bool,
    /// Rows in the table of the large-table UPDATE/DELETE figure (0 skips it).
    #[arg(long, default_value_t = 1_000_000)]
    large_rows: i64,
    /// Measured statements per kind and database in the large-table figure.
    #[arg(long, default_value_t = 2_000)]
    large_ops: usize,
    /// Rows in the large table of the UNIQUE-column INSERT figure, against 1,000 (0 skips
    /// it).
    #[arg(long, default_value_t = 1_000_000)]
    unique_rows: i64,
    /// Measured INSERTs per table size in the UNIQUE-column figure.
    #[arg(long, default_value_t = 2_000)]
    unique_ops: usize,
    /// Skip the peak-RSS comparison.
    #[arg(long)]
    skip_rss: bool,
    /// Internal: run the peak-RSS workload with audit on or off and print VmHWM.
    #[arg(long, hide = true, value_parser = ["on", "off"])]
    rss_probe: Option<String>,
}

/// Statements run back to back on one database before switching to the next.
const CHUNK: usize = 100;
/// Unmeasured statements per kind and database before measuring.
const WARM_UP: usize = 500;
/// Records hashed in memory for the hash-only figure.
const HASH_ONLY_RECORDS: usize = 200_000;
/// Bytes hashed per pass when measuring this CPU's SHA-256 throughput.
const SHA_BUFFER_BYTES: usize = 128 << 20;
/// Tables larger than this are not rebuilt every [`RENEW_EVERY`] statements: the keyed
/// UPDATE/DELETE path reads only the matching row, and reloading takes long.
const RENEW_MAX_ROWS: i64 = 10_000;
/// Statements of the peak-RSS workload.
const RSS_INSERTS: usize = 50_000;
const RSS_UPDATES: usize = 10_000;
/// The user whose session runs the measured statements.
const USER: &str = "nurse.jackson";

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(mode) = &args.rss_probe {
        return rss_probe(mode == "on");
    }
    if cfg!(debug_assertions) {
        println!("WARNING: debug build; figures are meaningless. Use `cargo run --release`.\n");
    }
    let started = Instant::now();
    let mut report = Report {
        machine: machine(),
        ..Report::default()
    };

    let dml = dml_scenario(&args, &mut report)?;
    sinks_scenario(&args, &mut report)?;
    select_scenario(&args, &mut report)?;
    if args.buildup > 0 {
        version_buildup(&args, &mut report)?;
    }

    let large = LargeLedger::prepare(&args)?;
    large.report(&args, &mut report)?;

    if args.bulk_rows > 0 {
        bulk_load(&args, &mut report)?;
    }
    if !args.skip_queries {
        audit_queries(&args, &mut report)?;
    }
    large_table(&args, &dml, &mut report)?;
    if args.unique_rows > 0 {
        unique_inserts(&args, &mut report)?;
    }
    if !args.skip_rss {
        peak_rss(&mut report)?;
    }

    report.print_targets();
    println!(
        "whole run: {:.0} s",
        started.elapsed().as_secs_f64().round()
    );
    if let Some(path) = &args.json {
        report.write(path, &args, started.elapsed())?;
        println!("JSON written to {}", path.display());
    }
    Ok(())
}

// ----------------------------------------------------------------------------------------
// Report: what is printed, also kept for `--json`.

/// One target of the issue and its verdict.
struct Verdict {
    target: String,
    measured: String,
    value: f64,
    met: bool,
}

#[derive(Default)]
struct Report {
    machine: serde_json::Value,
    results: Vec<serde_json::Value>,
    verdicts: Vec<Verdict>,
}

impl Report {
    /// Keeps one figure (a JSON object) under `scenario`.
    fn add(&mut self, scenario: &str, mut fields: serde_json::Value) {
        if let Some(object) = fields.as_object_mut() {
            object.insert("scenario".to_owned(), scenario.into());
        }
        self.results.push(fields);
    }

    fn verdict(
        &mut self,
        target: impl Into<String>,
        measured: impl Into<String>,
        value: f64,
        met: bool,
    ) {
        self.verdicts.push(Verdict {
            target: target.into(),
            measured: measured.into(),
            value,
            met,
        });
    }

    fn print_targets(&self) {
        println!("Targets");
        for v in &self.verdicts {
            println!(
                "  {:<62} {:<40} {}",
                v.target,
                v.measured,
                if v.met { "met" } else { "MISSED" }
            );
        }
        println!();
    }

    fn write(&self, path: &Path, args: &Args, took: Duration) -> anyhow::Result<()> {
        let verdicts: Vec<serde_json::Value> = self
            .verdicts
            .iter()
            .map(|v| {
                json!({"target": v.target, "measured": v.measured, "value": v.value, "met": v.met})
            })
            .collect();
        let document = json!({
            "machine": self.machine,
            "args": format!("{args:?}"),
            "sqlite_version": rusqlite::version(),
            "run_seconds": took.as_secs_f64(),
            "results": self.results,
            "targets": verdicts,
        });
        let file =
            std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?;
        serde_json::to_writer_pretty(std::io::BufWriter::new(file), &document)?;
        Ok(())
    }
}

fn machine() -> serde_json::Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let sha_ni = cpuinfo.split_whitespace().any(|flag| flag == "sha_ni");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    println!(
        "machine: {cores} cores, {model}, SHA extensions: {}, load average at start: {}\n",
        if sha_ni { "yes" } else { "no" },
        load.join(" ")
    );
    json!({"cores": cores, "cpu": model, "sha_ni": sha_ni, "load_average": load.join(" ")})
}

// ----------------------------------------------------------------------------------------
// Latency statistics and the interleaved runner.

/// Latencies of one statement kind on one database.
#[derive(Clone, Debug, Default)]
struct Stats {
    median: Duration,
    p99: Duration,
    mean: Duration,
}

impl Stats {
    fn of(samples: &mut [Duration]) -> Stats {
        samples.sort_unstable();
        let at = |q: f64| {
            let last = samples.len().saturating_sub(1);
            // Nearest-rank quantile; the index is within 0..=last by construction.
            let index = ((last as f64) * q).round() as usize;
            samples.get(index.min(last)).copied().unwrap_or_default()
        };
        let total: Duration = samples.iter().sum();
        Stats {
            median: at(0.5),
            p99: at(0.99),
            mean: total / u32::try_from(samples.len().max(1)).unwrap_or(u32::MAX),
        }
    }

    /// Statements per second on one thread: 1 / mean latency.
    fn per_second(&self) -> f64 {
        1.0 / self.mean.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    fn json(&self) -> serde_json::Value {
        json!({
            "median_us": micros(self.median),
            "p99_us": micros(self.p99),
            "mean_us": micros(self.mean),
            "per_second": self.per_second(),
        })
    }
}

fn ratio(on: Duration, off: Duration) -> f64 {
    on.as_secs_f64() / off.as_secs_f64().max(f64::MIN_POSITIVE)
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// What a latency run measures on: a HeliosDB-Lite or a SQLite database.
enum Subject {
    Helios(Box<DmlTarget>),
    Sqlite(Box<SqliteTarget>),
}

impl Subject {
    fn run_once(&mut self, op: Dml) -> anyhow::Result<Duration> {
        match self {
            Subject::Helios(target) => target.run_once(op),
            Subject::Sqlite(target) => target.run_once(op),
        }
    }

    fn check(&self) -> anyhow::Result<()> {
        match self {
            Subject::Helios(target) => target.check(),
            Subject::Sqlite(target) => target.check(),
        }
    }
}

/// One database of a latency run, how it is reported, and which other it is compared to.
struct Mode {
    engine: &'static str,
    variant: String,
    baseline: Option<usize>,
    subject: Subject,
}

impl Mode {
    fn helios(
        variant: &str,
        baseline: Option<usize>,
        setup: Setup,
        rows: i64,
    ) -> anyhow::Result<Mode> {
        let renew = (rows <= RENEW_MAX_ROWS).then_some(RENEW_EVERY);
        Ok(Mode {
            engine: "HeliosDB-Lite",
            variant: variant.to_owned(),
            baseline,
            subject: Subject::Helios(Box::new(DmlTarget::with_setup(setup, rows, renew)?)),
        })
    }

    fn sqlite(
        dir: &Path,
        variant: &str,
        baseline: Option<usize>,
        sync: SqliteSync,
        audit: SqliteAudit,
        rows: i64,
    ) -> anyhow::Result<Mode> {
        let path = dir.join(format!("{}.sqlite", variant.replace([' ', ',', '-'], "_")));
        Ok(Mode {
            engine: "SQLite",
            variant: variant.to_owned(),
            baseline,
            subject: Subject::Sqlite(Box::new(SqliteTarget::new(&path, sync, audit, rows)?)),
        })
    }

    fn label(&self) -> String {
        format!("{} {}", self.engine, self.variant)
    }
}

/// The latencies of one statement kind, one [`Stats`] per mode.
struct Cell {
    op: Dml,
    stats: Vec<Stats>,
}

impl Cell {
    fn of(table: &[Cell], op: Dml) -> Option<&Cell> {
        table.iter().find(|c| c.op == op)
    }
}

/// Runs `ops` statements of each kind on every mode, in chunks of [`CHUNK`], rotating which
/// mode goes first, so every mode sees the same machine state. Checks every mode after.
fn interleaved(ops: usize, kinds: &[Dml], modes: &mut [Mode]) -> anyhow::Result<Vec<Cell>> {
    let count = modes.len();
    let mut table = Vec::new();
    for &op in kinds {
        for mode in modes.iter_mut() {
            for _ in 0..WARM_UP {
                mode.subject.run_once(op)?;
            }
        }
        let mut samples: Vec<Vec<Duration>> = (0..count).map(|_| Vec::with_capacity(ops)).collect();
        let mut done = 0;
        let mut round = 0;
        while done < ops {
            let n = CHUNK.min(ops - done);
            for k in 0..count {
                let m = (round + k) % count;
                for _ in 0..n {
                    let took = modes[m].subject.run_once(op)?;
                    samples[m].push(took);
                }
            }
            done += n;
            round += 1;
        }
        table.push(Cell {
            op,
            stats: samples.iter_mut().map(|s| Stats::of(s)).collect(),
        });
    }
    for mode in modes.iter() {
        mode.subject
            .check()
            .with_context(|| format!("checking {}", mode.label()))?;
    }
    Ok(table)
}

/// Prints a latency table (one block per statement kind) and keeps it for the JSON.
fn print_latency(title: &str, scenario: &str, modes: &[Mode], table: &[Cell], report: &mut Report) {
    println!("{title}");
    println!(
        "  {:<50} {:>9} {:>9} {:>9} {:>9}   {:>8} {:>6} {:>6} {:>8}",
        "", "median", "p99", "mean", "stmts/s", "vs base:", "median", "p99", "+median"
    );
    for cell in table {
        println!("  {}", cell.op.name().to_uppercase());
        for (i, (mode, stats)) in modes.iter().zip(&cell.stats).enumerate() {
            let base = mode
                .baseline
                .and_then(|b| cell.stats.get(b).map(|s| (b, s)));
            let comparison = match base {
                Some((_, b)) => format!(
                    "{:>8} {:>6.3} {:>6.3} {:>+6.1}µs",
                    "",
                    ratio(stats.median, b.median),
                    ratio(stats.p99, b.p99),
                    micros(stats.median) - micros(b.median)
                ),
                None => String::new(),
            };
            println!(
                "  {:>2} {:<47} {:>7.1}µs {:>7.1}µs {:>7.1}µs {:>9.0}   {comparison}",
                i,
                mode.label(),
                micros(stats.median),
                micros(stats.p99),
                micros(stats.mean),
                stats.per_second(),
            );
            let mut fields = stats.json();
            if let Some(object) = fields.as_object_mut() {
                object.insert("statement".into(), cell.op.name().into());
                object.insert("engine".into(), mode.engine.into());
                object.insert("variant".into(), mode.variant.clone().into());
                if let Some((b, base)) = base {
                    object.insert("baseline".into(), modes[b].label().into());
                    object.insert(
                        "ratio_median".into(),
                        ratio(stats.median, base.median).into(),
                    );
                    object.insert("ratio_p99".into(), ratio(stats.p99, base.p99).into());
                    object.insert("ratio_mean".into(), ratio(stats.mean, base.mean).into());
                    object.insert(
                        "added_median_us".into(),
                        (micros(stats.median) - micros(base.median)).into(),
                    );
                }
            }
            report.add(scenario, fields);
        }
    }
    println!("  (vs base: ratio to the line given as the mode's baseline; stmts/s = 1 / mean)");
    println!();
}

// ----------------------------------------------------------------------------------------
// (a) Single-row DML.

/// Mode indexes of the DML scenario.
const H_OFF: usize = 0;
const H_ON: usize = 1;
const M_OFF: usize = 2;
const M_ON: usize = 3;
const S_NORMAL: usize = 4;
const S_NORMAL_TRIGGERS: usize = 5;
const S_NORMAL_CHAIN: usize = 6;

fn dml_scenario(args: &Args, report: &mut Report) -> anyhow::Result<Vec<Cell>> {
    let sqlite_dir = tempfile::tempdir()?;
    let rows = args.rows;
    let mut modes = vec![
        Mode::helios("fjall, audit off", None, Setup::fjall(false), rows)?,
        Mode::helios("fjall, audit on", Some(H_OFF), Setup::fjall(true), rows)?,
        Mode::helios(
            "memory, audit off",
            None,
            Setup {
                in_memory: true,
                ..Setup::fjall(false)
            },
            rows,
        )?,
        Mode::helios(
            "memory, audit on",
            Some(M_OFF),
            Setup {
                in_memory: true,
                ..Setup::fjall(true)
            },
            rows,
        )?,
    ];
    if !args.no_sqlite {
        let dir = sqlite_dir.path();
        for (sync, base) in [
            (SqliteSync::Normal, S_NORMAL),
            (SqliteSync::Full, S_NORMAL + 3),
        ] {
            let name = sync.name();
            modes.push(Mode::sqlite(
                dir,
                &format!("{name}, no audit"),
                None,
                sync,
                SqliteAudit::None,
                rows,
            )?);
            modes.push(Mode::sqlite(
                dir,
                &format!("{name}, audit triggers"),
                Some(base),
                sync,
                SqliteAudit::Triggers,
                rows,
            )?);
            modes.push(Mode::sqlite(
                dir,
                &format!("{name}, app SHA-256 chain"),
                Some(base),
                sync,
                SqliteAudit::Chain,
                rows,
            )?);
        }
    }
    let kinds: Vec<Dml> = Dml::ALL
        .into_iter()
        .filter(|op| args.only.as_deref().is_none_or(|only| only == op.name()))
        .collect();
    let table = interleaved(args.ops, &kinds, &mut modes)?;
    print_latency(
        &format!(
            "(a) single-row DML, {} statements per kind and database after {WARM_UP} unmeasured, \
             all databases interleaved in chunks of {CHUNK}; `item` holds {rows} rows{}. \
             HeliosDB-Lite: group commit every {} ms. SQLite {} (rusqlite, WAL, statement cache)",
            args.ops,
            if rows <= RENEW_MAX_ROWS {
                format!(", HeliosDB-Lite starts over every {RENEW_EVERY} UPDATE/DELETE")
            } else {
                String::new()
            },
            support::GROUP_INTERVAL.as_millis(),
            rusqlite::version(),
        ),
        "single_row_dml",
        &modes,
        &table,
        report,
    );

    for cell in &table {
        let op = cell.op.name().to_uppercase();
        let (Some(off), Some(on)) = (cell.stats.get(H_OFF), cell.stats.get(H_ON)) else {
            continue;
        };
        let r = ratio(on.median, off.median);
        println!(
            "    {op:<7} audit on/off (median): fjall {r:.3}, memory {:.3}",
            cell.stats
                .get(M_ON)
                .zip(cell.stats.get(M_OFF))
                .map_or(f64::NAN, |(a, b)| ratio(a.median, b.median)),
        );
        report.verdict(
            format!("audit on/off latency ≤ 1.10, {op} (fjall, median)"),
            format!(
                "{r:.3} ({:.1} → {:.1} µs)",
                micros(off.median),
                micros(on.median)
            ),
            r,
            r <= 1.10,
        );
        if let (Some(triggers), Some(chain), Some(plain)) = (
            cell.stats.get(S_NORMAL_TRIGGERS),
            cell.stats.get(S_NORMAL_CHAIN),
            cell.stats.get(S_NORMAL),
        ) {
            let x = on.per_second() / triggers.per_second();
            println!(
                "    {op:<7} audited HeliosDB-Lite {:.0}/s vs SQLite NORMAL: + triggers {:.0}/s \
                 ({x:.2}×), + app chain {:.0}/s, no audit {:.0}/s",
                on.per_second(),
                triggers.per_second(),
                chain.per_second(),
                plain.per_second(),
            );
            report.verdict(
                format!("audited {op} throughput ≥ SQLite + triggers (NORMAL)"),
                format!(
                    "{:.0}/s vs {:.0}/s = {x:.2}×",
                    on.per_second(),
                    triggers.per_second()
                ),
                x,
                x >= 1.0,
            );
        }
    }
    if let Some((update, delete)) = update_delete_ratios(&table, H_ON) {
        println!(
            "    UPDATE / INSERT {update:.2}×, DELETE / INSERT {delete:.2}× (fjall, audit on, \
             medians, {rows} rows)"
        );
    }
    println!();
    Ok(table)
}

/// UPDATE and DELETE median ÷ INSERT median of one mode.
fn update_delete_ratios(table: &[Cell], mode: usize) -> Option<(f64, f64)> {
    let median = |op| {
        Cell::of(table, op)
            .and_then(|c| c.stats.get(mode))
            .map(|s| s.median)
    };
    let insert = median(Dml::Insert)?;
    Some((
        ratio(median(Dml::Update)?, insert),
        ratio(median(Dml::Delete)?, insert),
    ))
}

// ----------------------------------------------------------------------------------------
// (a'') SELECT by primary key.

/// Audit on without sinks, with the `jsonl-file` sink, and with all three sinks, in a run
/// of their own: the sinks' threads work while the statements run, and on two cores they
/// would slow every other database of the main run too.
fn sinks_scenario(args: &Args, report: &mut Report) -> anyhow::Result<()> {
    let rows = args.rows;
    let mut modes = vec![
        Mode::helios("fjall, audit on", None, Setup::fjall(true), rows)?,
        Mode::helios(
            "fjall, audit on + jsonl-file sink",
            Some(0),
            Setup {
                jsonl_sink: true,
                ..Setup::fjall(true)
            },
            rows,
        )?,
        Mode::helios(
            "fjall, audit on + jsonl, checkpoint, OTLP",
            Some(0),
            Setup {
                all_sinks: true,
                ..Setup::fjall(true)
            },
            rows,
        )?,
    ];
    let table = interleaved(args.ops, &Dml::ALL, &mut modes)?;
    print_latency(
        &format!(
            "(a-s) sinks: audit on alone, with the jsonl-file sink, and with all three sinks \
             (jsonl-file; checkpoint signing every {CHECKPOINT_EVERY} events; OTLP/HTTP to a \
             receiver on loopback), {} statements per kind, interleaved; every sink caught up \
             at the end (checked)",
            args.ops
        ),
        "sinks_dml",
        &modes,
        &table,
        report,
    );
    Ok(())
}

fn select_scenario(args: &Args, report: &mut Report) -> anyhow::Result<()> {
    let sqlite_dir = tempfile::tempdir()?;
    let rows = args.rows;
    let log_select = |on| Setup {
        policy: AuditPolicy {
            log_select: on,
            ..AuditPolicy::default()
        },
        in_memory: false,
        jsonl_sink: false,
        all_sinks: false,
    };
    let mut modes = vec![
        Mode::helios("fjall, audit off", None, Setup::fjall(false), rows)?,
        Mode::helios(
            "fjall, audit on, log_select off",
            Some(0),
            log_select(false),
            rows,
        )?,
        Mode::helios(
            "fjall, audit on, log_select on",
            Some(1),
            log_select(true),
            rows,
        )?,
    ];
    if !args.no_sqlite {
        modes.push(Mode::sqlite(
            sqlite_dir.path(),
            "NORMAL, no audit",
            None,
            SqliteSync::Normal,
            SqliteAudit::None,
            rows,
        )?);
    }
    let table = interleaved(args.ops, &[Dml::Select], &mut modes)?;
    print_latency(
        &format!(
            "(a'') SELECT id, name, qty FROM item WHERE id = $1 ({rows} rows), {} statements per \
             database, interleaved",
            args.ops
        ),
        "select_by_key",
        &modes,
        &table,
        report,
    );
    Ok(())
}

/// UPDATE latency early and late in a long run on one database (audit off): whether row
/// versions piling up in the memtable slow UPDATE down.
fn version_buildup(args: &Args, report: &mut Report) -> anyhow::Result<()> {
    let mut target = DmlTarget::new(false, args.rows, None)?;
    let mut samples = Vec::with_capacity(args.buildup);
    for _ in 0..args.buildup {
        samples.push(target.run_once(Dml::Update)?);
    }
    target.check()?;
    let window = (args.buildup / 10).max(1);
    let first = Stats::of(&mut samples[..window].to_vec()).median;
    let last = Stats::of(&mut samples[args.buildup - window..].to_vec()).median;
    println!(
        "(a') without starting over (audit off, {} rows): UPDATE median {:.1} µs over statements \
         1-{window}, {:.1} µs over the last {window} of {}",
        args.rows,
        micros(first),
        micros(last),
        args.buildup
    );
    println!();
    report.add(
        "update_buildup",
        json!({"rows": args.rows, "statements": args.buildup, "window": window,
               "first_median_us": micros(first), "last_median_us": micros(last)}),
    );
    Ok(())
}

// ----------------------------------------------------------------------------------------
// (b) + (c): verify and open on a large ledger.

/// The large database of (b) and (c).
struct LargeLedger {
    dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    build: Option<(u64, Duration)>,
}

impl LargeLedger {
    /// Builds (or tops up) a ledger of `args.events` events, then closes the database.
    fn prepare(args: &Args) -> anyhow::Result<Self> {
        let (dir, temp) = match &args.ledger_dir {
            Some(dir) => (dir.clone(), None),
            None => {
                let temp = tempfile::tempdir()?;
                (temp.path().to_path_buf(), Some(temp))
            }
        };
        let db = support::open(&dir, true)?;
        let before = db.audit_head().seq;
        ensure!(
            before <= args.events,
            "{} already holds {before} events, more than --events {}",
            dir.display(),
            args.events
        );
        let started = Instant::now();
        let head = support::build_ledger(&db, args.events)?;
        let build = (head.seq > before).then(|| (head.seq - before, started.elapsed()));
        // Clean close: the group-commit thread stops and everything is fsynced.
        drop(db);
        Ok(Self {
            dir,
            _temp: temp,
            build,
        })
    }

    fn report(&self, args: &Args, report: &mut Report) -> anyhow::Result<()> {
        println!(
            "(b)+(c) database of {} events at {} ({:.0} MiB on disk)",
            args.events,
            self.dir.display(),
            dir_size(&self.dir) as f64 / (1024.0 * 1024.0)
        );
        match self.build {
            Some((events, took)) => {
                println!(
                    "  built: {events} events in {:.1} s ({:.0} events/s, 1,000 statements per \
                     transaction)",
                    took.as_secs_f64(),
                    events as f64 / took.as_secs_f64()
                );
                report.add(
                    "ledger_build",
                    json!({"events": events, "seconds": took.as_secs_f64(),
                           "events_per_second": events as f64 / took.as_secs_f64()}),
                );
            }
            None => println!("  reused as it was"),
        }

        // (c) open after a clean close.
        let mut opens = Vec::with_capacity(args.opens);
        let mut closes = Vec::with_capacity(args.opens);
        let mut seq = 0;
        for _ in 0..args.opens.max(1) {
            let started = Instant::now();
            let db = support::open(&self.dir, true)?;
            opens.push(started.elapsed());
            seq = db.audit_head().seq;
            let started = Instant::now();
            drop(db);
            closes.push(started.elapsed());
        }
        let first = opens.first().copied().unwrap_or_default();
        let open = Stats::of(&mut opens);
        let close = Stats::of(&mut closes);
        println!(
            "(c) Database::open: median {:.1} ms over {} opens (first {:.1} ms, slowest {:.1} ms), \
             audit_head().seq = {seq}",
            millis(open.median),
            args.opens.max(1),
            millis(first),
            millis(*opens.last().unwrap_or(&first)),
        );
        println!(
            "    close (drop, fsync, stop group-commit thread): median {:.1} ms",
            millis(close.median)
        );
        let (fjall, engine) = open_breakdown(&self.dir, args.opens.max(1))?;
        println!(
            "    of an open: FjallBackend::open {:.1} ms (journal replay, keyspaces), \
             engine::Database::with_backend {:.1} ms (catalog, ledger head, syncer) — medians",
            millis(fjall),
            millis(engine)
        );
        report.add(
            "open",
            json!({"events": seq, "median_ms": millis(open.median), "first_ms": millis(first),
                   "close_median_ms": millis(close.median), "fjall_open_ms": millis(fjall),
                   "engine_open_ms": millis(engine)}),
        );
        ensure!(
            seq == args.events,
            "expected {} events, head says {seq}",
            args.events
        );

        // (b) verify, on the calling thread only.
        let db = support::open(&self.dir, true)?;
        let mut one_core = Vec::new();
        let mut all_cores = Vec::new();
        let mut events = 0;
        // Alternate the two settings so both see the same page-cache state.
        for _ in 0..args.verify_passes.max(1) {
            let started = Instant::now();
            events = support::verify(&db, args.events, Some(0))?;
            one_core.push(started.elapsed());
            let started = Instant::now();
            support::verify(&db, args.events, None)?;
            all_cores.push(started.elapsed());
        }
        let best = one_core.iter().min().copied().unwrap_or_default();
        let pass = Stats::of(&mut one_core);
        let threaded = Stats::of(&mut all_cores);
        let rate = |d: Duration| events as f64 / d.as_secs_f64();
        let parts = breakdown(&db)?;
        let canonical = parts.canonical_bytes as f64 / parts.records.max(1) as f64;
        let sha = sha256_throughput();
        // Verify hashes, per event, 0x00 || canonical bytes (leaf) and prev || leaf (chain).
        let limit = sha / (canonical + 1.0 + 64.0);
        let fraction = rate(pass.median) / limit;
        println!(
            "(b) engine::audit::verify_with: {events} events, average canonical event {canonical:.0} B \
             (+32 B chain hash stored)"
        );
        println!(
            "    one core (hash_threads = 0): median {:.2} M events/s ({:.0} ms per pass), \
             best {:.2} M events/s, {} passes",
            rate(pass.median) / 1e6,
            millis(pass.median),
            rate(best) / 1e6,
            args.verify_passes.max(1),
        );
        println!(
            "    this core's SHA-256: {:.0} MB/s (sha2 over a {} MiB buffer, best of 3) → limit \
             {:.2} M events/s = SHA-256 bytes/s ÷ ({canonical:.0} + 1 + 64) B; verify reaches \
             {fraction:.2} of it (target ≥ 0.6)",
            sha / 1e6,
            SHA_BUFFER_BYTES >> 20,
            limit / 1e6,
        );
        println!(
            "    engine default ({} hash threads + the caller): median {:.2} M events/s",
            VerifyOptions::default().hash_threads,
            rate(threaded.median) / 1e6,
        );
        println!(
            "    where the time goes: storage scan alone {:.2} M records/s; SHA-256 leaf+chain \
             alone (in memory) {:.2} M events/s",
            parts.scan_rate / 1e6,
            parts.hash_rate / 1e6
        );
        println!();
        report.add(
            "verify",
            json!({"events": events, "canonical_bytes_avg": canonical,
                   "one_core_events_per_second": rate(pass.median),
                   "one_core_best_events_per_second": rate(best),
                   "one_core_median_ms": millis(pass.median),
                   "default_threads_events_per_second": rate(threaded.median),
                   "sha256_bytes_per_second": sha, "sha256_limit_events_per_second": limit,
                   "fraction_of_sha256_limit": fraction,
                   "scan_records_per_second": parts.scan_rate,
                   "hash_only_events_per_second": parts.hash_rate}),
        );
        report.verdict(
            "verify ≥ 0.6 of the SHA-256 limit (one core)",
            format!(
                "{fraction:.2} ({:.2} of {:.2} M events/s)",
                rate(pass.median) / 1e6,
                limit / 1e6
            ),
            fraction,
            fraction >= 0.6,
        );
        Ok(())
    }
}

/// Bytes per second SHA-256 (`sha2`, through the engine's `leaf_hash`) runs at on one core.
fn sha256_throughput() -> f64 {
    let buffer: Vec<u8> = (0..SHA_BUFFER_BYTES)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        std::hint::black_box(leaf_hash(std::hint::black_box(&buffer)));
        best = best.min(started.elapsed());
    }
    (buffer.len() + 1) as f64 / best.as_secs_f64()
}

/// Medians of the two halves of an open: the fjall backend, then the engine over it.
fn open_breakdown(dir: &Path, tries: usize) -> anyhow::Result<(Duration, Duration)> {
    let mut fjall = Vec::with_capacity(tries);
    let mut engine = Vec::with_capacity(tries);
    for _ in 0..tries {
        let started = Instant::now();
        let backend = FjallBackend::open(dir)?;
        fjall.push(started.elapsed());
        let options = DatabaseOptions {
            durability: DurabilityMode::Group {
                interval: support::GROUP_INTERVAL,
            },
            ..DatabaseOptions::default()
        };
        let started = Instant::now();
        let db = heliosdb_lite::engine::Database::with_backend(Arc::new(backend), options)?;
        engine.push(started.elapsed());
        drop(db);
    }
    Ok((Stats::of(&mut fjall).median, Stats::of(&mut engine).median))
}

/// The two halves of verification, timed apart.
struct Breakdown {
    records: u64,
    canonical_bytes: u64,
    /// Records per second scanned out of storage (copied, as `verify` gets them).
    scan_rate: f64,
    /// Events per second through leaf and chain hashing, records already in memory.
    hash_rate: f64,
}

fn breakdown(db: &heliosdb_lite::Database) -> anyhow::Result<Breakdown> {
    let snapshot = db.backend().snapshot()?;
    let started = Instant::now();
    let mut records = 0u64;
    let mut canonical_bytes = 0u64;
    let mut kept = Vec::with_capacity(HASH_ONLY_RECORDS);
    for entry in snapshot.range(
        KS_AUDIT,
        Bound::Unbounded,
        Bound::Unbounded,
        Direction::Forward,
    )? {
        let (_, value) = entry?;
        canonical_bytes += u64::try_from(value.len().saturating_sub(32))?;
        records += 1;
        if kept.len() < HASH_ONLY_RECORDS {
            kept.push(value);
        }
    }
    let scan_rate = records as f64 / started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut chain = genesis(&db.database_id());
    for value in &kept {
        let (canonical, _) = ledger::split_record(value)?;
        chain = chain_hash(&chain, &leaf_hash(canonical));
    }
    std::hint::black_box(chain);
    let hash_rate = kept.len() as f64 / started.elapsed().as_secs_f64();
    Ok(Breakdown {
        records,
        canonical_bytes,
        scan_rate,
        hash_rate,
    })
}

fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => dir_size(&entry.path()),
            Ok(_) => entry.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

/// Sizes of the top-level entries of `dir`, largest first.
fn dir_breakdown(dir: &Path) -> Vec<(String, u64)> {
    let mut parts: Vec<(String, u64)> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| {
                    let size = match entry.file_type() {
                        Ok(kind) if kind.is_dir() => dir_size(&entry.path()),
                        _ => entry.metadata().map_or(0, |m| m.len()),
                    };
                    (entry.file_name().to_string_lossy().into_owned(), size)
                })
                .collect()
        })
        .unwrap_or_default();
    parts.sort_by_key(|part| std::cmp::Reverse(part.1));
    parts
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

// ----------------------------------------------------------------------------------------
// (e) Bulk load.

fn bulk_load(args: &Args, report: &mut Report) -> anyhow::Result<()> {
    const REPEATS: usize = 3;
    let rows = args.bulk_rows;
    let mut names: Vec<(&str, &str)> = vec![
        ("HeliosDB-Lite", "fjall, audit off"),
        ("HeliosDB-Lite", "fjall, audit on"),
    ];
    if !args.no_sqlite {
        names.extend([
            ("SQLite", "NORMAL, no audit"),
            ("SQLite", "NORMAL, audit triggers"),
            ("SQLite", "NORMAL, app SHA-256 chain"),
        ]);
    }
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); names.len()];
    for repeat in 0..REPEATS {
        for k in 0..names.len() {
            let m = (repeat + k) % names.len();
            let dir = tempfile::tempdir()?;
            let took = match m {
                0 | 1 => bulk_helios(dir.path(), m == 1, rows)?,
                2 => bulk_sqlite(dir.path(), SqliteAudit::None, rows)?,
                3 => bulk_sqlite(dir.path(), SqliteAudit::Triggers, rows)?,
                _ => bulk_sqlite(dir.path(), SqliteAudit::Chain, rows)?,
            };
            times[m].push(took);
        }
    }
    println!(
        "(e) bulk load: {rows} single-row INSERTs (bound values) in one transaction, COMMIT \
         included; median of {REPEATS}, fresh database each"
    );
    let rates: Vec<f64> = times
        .iter_mut()
        .map(|t| rows as f64 / Stats::of(t).median.as_secs_f64())
        .collect();
    for ((engine, variant), rate) in names.iter().zip(&rates) {
        println!(
            "    {engine:<13} {variant:<28} {:>9.0} rows/s ({:.2} s)",
            rate,
            rows as f64 / rate
        );
        report.add(
            "bulk_load",
            json!({"engine": engine, "variant": variant, "rows": rows, "rows_per_second": rate,
                   "seconds": rows as f64 / rate}),
        );
    }
    if let [off, on, ..] = rates[..] {
        println!(
            "    HeliosDB-Lite audit on / off: {:.2} of the rate",
            on / off
        );
    }
    if let [_, on, _, triggers, ..] = rates[..] {
        println!(
            "    audited HeliosDB-Lite / SQLite + triggers: {:.2}×",
            on / triggers
        );
    }
    println!();
    Ok(())
}

fn bulk_helios(dir: &Path, audited: bool, rows: i64) -> anyhow::Result<Duration> {
    let db = support::open(dir, audited)?;
    let mut session = support::session(&db);
    session.execute(support::CREATE_ITEMS, &[])?;
    let insert = session.prepare(support::INSERT_ITEM)?;
    let started = Instant::now();
    session.execute("BEGIN", &[])?;
    for id in 1..=rows {
        session.execute_prepared(&insert, &params![id, "widget", id])?;
    }
    session.execute("COMMIT", &[])?;
    let took = started.elapsed();
    let expected = if audited { 2 + u64::try_from(rows)? } else { 0 };
    ensure!(
        db.audit_head().seq >= expected,
        "bulk load: {} events, expected {expected}",
        db.audit_head().seq
    );
    Ok(took)
}

fn bulk_sqlite(dir: &Path, audit: SqliteAudit, rows: i64) -> anyhow::Result<Duration> {
    let mut target = SqliteTarget::new(&dir.join("bulk.sqlite"), SqliteSync::Normal, audit, 0)?;
    let started = Instant::now();
    target.conn.execute_batch("BEGIN")?;
    for id in 1..=rows {
        target
            .conn
            .prepare_cached("INSERT INTO item_new VALUES (?1, ?2, ?3)")?
            .execute(rusqlite::params![id, "widget", id])?;
        if audit == SqliteAudit::Chain {
            target.chain_record("INSERT", "item_new", id, &format!("[{id},\"widget\",{id}]"))?;
        }
    }
    target.conn.execute_batch("COMMIT")?;
    let took = started.elapsed();
    target.check()?;
    Ok(took)
}

// ----------------------------------------------------------------------------------------
// (f) + (g): audit queries over synthetic events, and bytes per event.

const DAY_US: i64 = 86_400_000_000;
const HOUR_US: i64 = 3_600_000_000;
const QUERY_DAYS: i64 = 90;
const QUERY_USERS: usize = 20;
const QUERY_TABLES: usize = 50;
/// Events sealed (and rows inserted into SQLite) per commit while building.
const BUILD_BATCH: usize = 10_000;
/// Operations of the synthetic events, their classes and weights (percent).
const OPERATIONS: [(&str, EventClass, u32); 5] = [
    ("SELECT", EventClass::Select, 40),
    ("INSERT", EventClass::Dml, 25),
    ("UPDATE", EventClass::Dml, 20),
    ("DELETE", EventClass::Dml, 10),
    ("ALTER_TABLE", EventClass::Ddl, 5),
];

/// The synthetic history: where it lies in time.
struct History {
    events: u64,
    start_us: i64,
    end_us: i64,
}

impl History {
    fn step_us(&self) -> i64 {
        (self.end_us - self.start_us) / i64::try_from(self.events.max(1)).unwrap_or(i64::MAX)
    }

    /// Event `i` (0-based), not yet sealed. Timestamps grow with `i`, as in a real ledger.
    fn event(&self, i: u64, rng: &mut StdRng, database_id: [u8; 16]) -> AuditEvent {
        let step = self.step_us().max(1);
        let timestamp_us =
            self.start_us + i64::try_from(i).unwrap_or(i64::MAX) * step + rng.random_range(0..step);
        let user = rng.random_range(0..QUERY_USERS);
        let table = format!("table_{:02}", rng.random_range(0..QUERY_TABLES));
        let mut pick = rng.random_range(0..100);
        let mut operation = OPERATIONS[0];
        for candidate in OPERATIONS {
            if pick < candidate.2 {
                operation = candidate;
                break;
            }
            pick -= candidate.2;
        }
        let (name, class, _) = operation;
        let id = rng.random_range(1..1_000_000_i64);
        let (query, params) = match name {
            "SELECT" => (
                format!("SELECT * FROM {table} WHERE id = $1"),
                vec![id.to_string()],
            ),
            "INSERT" => (
                format!("INSERT INTO {table} (id, status, amount) VALUES ($1, $2, $3)"),
                vec![id.to_string(), "'open'".to_owned(), (id % 977).to_string()],
            ),
            "UPDATE" => (
                format!("UPDATE {table} SET status = $1 WHERE id = $2"),
                vec!["'closed'".to_owned(), id.to_string()],
            ),
            "DELETE" => (
                format!("DELETE FROM {table} WHERE id = $1"),
                vec![id.to_string()],
            ),
            _ => (
                format!("ALTER TABLE {table} ADD COLUMN note_{id} TEXT"),
                Vec::new(),
            ),
        };
        let success = rng.random_range(0..100) != 0;
        AuditEvent {
            seq: 0,
            timestamp_us,
            database_id,
            session_id: 1 + i / 500,
            user: format!("user_{user:02}"),
            client_addr: format!("10.0.{user}.{}", 10 + i % 7),
            application: "ward".to_owned(),
            database: "main".to_owned(),
            class,
            operation: name.to_owned(),
            targets: vec![table],
            query,
            query_truncated: false,
            params,
            rows: u64::from(success),
            success,
            error: (!success).then(|| "constraint violation".to_owned()),
            duration_us: rng.random_range(20..800),
            custom: BTreeMap::new(),
        }
    }
}

const SQLITE_AUDIT_LOG: &str = "
    PRAGMA journal_mode = WAL;
    PRAGMA synchronous = NORMAL;
    CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY, timestamp INTEGER NOT NULL, session_id INTEGER NOT NULL,
        user TEXT NOT NULL, client_addr TEXT NOT NULL, application TEXT NOT NULL,
        database TEXT NOT NULL, class TEXT NOT NULL, operation TEXT NOT NULL,
        target TEXT NOT NULL, query TEXT NOT NULL, params TEXT NOT NULL,
        affected_rows INTEGER NOT NULL, success INTEGER NOT NULL, error TEXT,
        duration_us INTEGER NOT NULL, custom TEXT NOT NULL, checksum BLOB NOT NULL);
    CREATE INDEX audit_log_timestamp ON audit_log (timestamp);
    CREATE INDEX audit_log_user ON audit_log (user);
    CREATE INDEX audit_log_operation ON audit_log (operation);
    CREATE INDEX audit_log_target ON audit_log (target);
";

/// The four audit queries: HeliosDB-Lite text, SQLite text.
const QUERIES: [(&str, &str, &str); 4] = [
    (
        "q1 COUNT(*) in a 1-hour range",
        "SELECT COUNT(*) FROM __audit_log WHERE timestamp >= $1 AND timestamp < $2",
        "SELECT COUNT(*) FROM audit_log WHERE timestamp >= ?1 AND timestamp < ?2",
    ),
    (
        "q2 last 100 events of one user",
        "SELECT * FROM __audit_log WHERE user = $1 ORDER BY id DESC LIMIT 100",
        "SELECT * FROM audit_log WHERE user = ?1 ORDER BY id DESC LIMIT 100",
    ),
    (
        "q3 count by operation, one day",
        "SELECT operation, COUNT(*) FROM __audit_log WHERE timestamp >= $1 AND timestamp < $2 \
         GROUP BY operation",
        "SELECT operation, COUNT(*) FROM audit_log WHERE timestamp >= ?1 AND timestamp < ?2 \
         GROUP BY operation",
    ),
    (
        "q4 failures, last 7 days, one table",
        "SELECT * FROM __audit_log WHERE target = $1 AND success = FALSE AND timestamp >= $2",
        "SELECT * FROM audit_log WHERE target = ?1 AND success = 0 AND timestamp >= ?2",
    ),
];

/// Parameters of one run of a query: text or microseconds.
#[derive(Clone, Debug)]
enum QueryParam {
    Text(String),
    Micros(i64),
}

fn naive(micros: i64) -> NaiveDateTime {
    DateTime::from_timestamp_micros(micros)
        .unwrap_or_default()
        .naive_utc()
}

fn audit_queries(args: &Args, report: &mut Report) -> anyhow::Result<()> {
    let n = args.query_events;
    let temp = tempfile::tempdir()?;
    let dir = args.query_dir.as_deref().unwrap_or(temp.path());
    let db_dir = dir.join("heliosdb");
    let sqlite_path = dir.join("audit.sqlite");
    // The history's end, kept beside reused databases so their queries ask the same.
    let end_file = dir.join(format!("history-end-{n}"));
    let reused = args.query_dir.is_some()
        && sqlite_path.exists()
        && std::fs::read_to_string(&end_file).is_ok();
    let end_us = if reused {
        std::fs::read_to_string(&end_file)?.trim().parse::<i64>()?
    } else {
        if db_dir.exists() {
            std::fs::remove_dir_all(&db_dir)?;
        }
        if sqlite_path.exists() {
            std::fs::remove_file(&sqlite_path)?;
        }
        let now = heliosdb_lite::chrono::Utc::now().timestamp_micros();
        now - now % HOUR_US - HOUR_US
    };
    let history = History {
        events: n,
        end_us,
        start_us: end_us - QUERY_DAYS * DAY_US,
    };
    if !reused {
        // Catalog and database id first, as any database has them.
        drop(
            heliosdb_lite::Database::builder()
                .path(&db_dir)
                .audit_policy(AuditPolicy::disabled())
                .open()?,
        );
    }

    // Build: the same events sealed into the ledger and inserted into SQLite.
    let (build_helios, build_sqlite) = if reused {
        (Duration::ZERO, Duration::ZERO)
    } else {
        let backend = FjallBackend::open(&db_dir)?;
        let snapshot = backend.snapshot()?;
        let id = snapshot
            .get(KS_CATALOG, DATABASE_ID_KEY)?
            .context("no database id in the catalog")?;
        let database_id = <[u8; 16]>::try_from(id.as_slice()).context("database id length")?;
        let mut head = ledger::load_head(&*snapshot, &database_id)?;
        drop(snapshot);
        ensure!(head.seq == 0, "the fresh database already holds events");
        let mut conn = rusqlite::Connection::open(&sqlite_path)?;
        conn.execute_batch(SQLITE_AUDIT_LOG)?;
        let mut rng = StdRng::seed_from_u64(0x5eed);
        let mut chain = genesis(&database_id);
        let (mut in_helios, mut in_sqlite) = (Duration::ZERO, Duration::ZERO);
        let mut next = 0u64;
        while next < n {
            let count = (n - next).min(BUILD_BATCH as u64);
            let mut events: Vec<AuditEvent> = (next..next + count)
                .map(|i| history.event(i, &mut rng, database_id))
                .collect();
            next += count;
            let started = Instant::now();
            let mut batch = WriteBatch::new();
            head = ledger::seal(head, &mut events, &mut batch)?;
            backend.commit(&batch, Durability::Buffered)?;
            in_helios += started.elapsed();
            let started = Instant::now();
            let txn = conn.transaction()?;
            {
                let mut insert = txn.prepare_cached(
                    "INSERT INTO audit_log VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, \
                     ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
                )?;
                for e in &events {
                    chain = chain_hash(&chain, &leaf_hash(&e.canonical()));
                    insert.execute(rusqlite::params![
                        i64::try_from(e.seq)?,
                        e.timestamp_us,
                        i64::try_from(e.session_id)?,
                        e.user,
                        e.client_addr,
                        e.application,
                        e.database,
                        e.class.as_str(),
                        e.operation,
                        e.targets.join(","),
                        e.query,
                        serde_json::Value::from(e.params.clone()).to_string(),
                        i64::try_from(e.rows)?,
                        e.success,
                        e.error,
                        i64::try_from(e.duration_us)?,
                        "{}",
                        &chain[..],
                    ])?;
                }
            }
            txn.commit()?;
            in_sqlite += started.elapsed();
        }
        ensure!(
            chain == head.chain,
            "SQLite's chain differs from the ledger's"
        );
        let started = Instant::now();
        backend.persist()?;
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
        drop(conn);
        drop(backend);
        if args.query_dir.is_some() {
            std::fs::write(&end_file, end_us.to_string())?;
        }
        (in_helios, in_sqlite + started.elapsed())
    };
    // First open: the engine builds the Merkle tree of the events sealed behind its back.
    let started = Instant::now();
    let db = support::open(&db_dir, true)?;
    let first_open = started.elapsed();
    // A reused database also holds the audited queries of earlier runs.
    ensure!(
        db.audit_head().seq == n || (reused && db.audit_head().seq > n),
        "the ledger holds {} events",
        db.audit_head().seq
    );
    let started = Instant::now();
    drop(db);
    let first_close = started.elapsed();
    println!(
        "(f) audit queries over {n} synthetic events ({QUERY_DAYS} days, {QUERY_USERS} users, \
         {QUERY_TABLES} tables, 5 operations, 1 % failures)"
    );
    println!(
        "    built: HeliosDB-Lite ledger::seal + commit {:.1} s ({:.0} events/s, {BUILD_BATCH} \
         per batch), first open {:.1} s (Merkle tree catch-up), close {:.1} s; SQLite {:.1} s \
         ({:.0} rows/s, 4 indexes)",
        in_secs(build_helios),
        n as f64 / in_secs(build_helios),
        in_secs(first_open),
        in_secs(first_close),
        in_secs(build_sqlite),
        n as f64 / in_secs(build_sqlite),
    );
    report.add(
        "audit_query_build",
        json!({"events": n, "helios_seal_commit_s": in_secs(build_helios),
               "helios_first_open_s": in_secs(first_open), "helios_first_close_s": in_secs(first_close),
               "sqlite_insert_s": in_secs(build_sqlite)}),
    );

    bytes_per_event(&db_dir, &sqlite_path, n, report)?;

    // The queries.
    let db = support::open(&db_dir, true)?;
    let mut session = db.session(SessionInfo::new("auditor").application("bench"));
    let conn = rusqlite::Connection::open(&sqlite_path)?;
    let mut rng = StdRng::seed_from_u64(7);
    let runs = args.query_runs.max(1);
    let budget = Duration::from_secs(args.query_budget);
    println!(
        "    {:<38} {:>10} {:>10} {:>10} {:>10} {:>5}  {:>22}",
        "query (runs)", "median", "p99", "SQLite med", "SQLite p99", "", "rows read per run"
    );
    for (q, (name, helios_sql, sqlite_sql)) in QUERIES.iter().enumerate() {
        let plan = sqlite_plan(&conn, sqlite_sql)?;
        let params: Vec<Vec<QueryParam>> = (0..=runs)
            .map(|_| query_params(q, &history, &mut rng))
            .collect();
        let mut helios = Vec::new();
        let mut sqlite = Vec::new();
        let mut touched = Vec::new();
        let mut results = Vec::new();
        let started = Instant::now();
        for (run, p) in params.iter().enumerate() {
            // Alternate which engine goes first.
            let (h, s) = if run % 2 == 0 {
                let h = run_helios(&mut session, helios_sql, p)?;
                (h, run_sqlite(&conn, sqlite_sql, p)?)
            } else {
                let s = run_sqlite(&conn, sqlite_sql, p)?;
                (run_helios(&mut session, helios_sql, p)?, s)
            };
            ensure!(
                h.result == s.result,
                "{name}: HeliosDB-Lite and SQLite disagree for {p:?}: {:?} vs {:?}",
                h.result,
                s.result
            );
            // The first run is a warm-up.
            if run > 0 {
                helios.push(h.took);
                sqlite.push(s.took);
                touched.push(h.touched);
                results.push(h.result.len());
            }
            if started.elapsed() > budget && helios.len() >= 3 {
                break;
            }
        }
        let measured = helios.len();
        let h = Stats::of(&mut helios);
        let s = Stats::of(&mut sqlite);
        touched.sort_unstable();
        let (scanned, by_index) = touched.get(touched.len() / 2).copied().unwrap_or_default();
        results.sort_unstable();
        let result_rows = results.get(results.len() / 2).copied().unwrap_or_default();
        println!(
            "    {:<38} {:>8.2}ms {:>8.2}ms {:>8.3}ms {:>8.3}ms {:>5}  {:>9} scanned, {:>9} by index",
            format!("{name} ({measured})"),
            millis(h.median),
            millis(h.p99),
            millis(s.median),
            millis(s.p99),
            if h.median <= Duration::from_millis(5) {
                "met"
            } else {
                "MISSED"
            },
            scanned,
            by_index,
        );
        println!("        SQLite plan: {plan}; result rows (median): {result_rows}");
        report.add(
            "audit_query",
            json!({"query": name, "events": n, "runs": measured,
                   "helios": h.json(), "sqlite": s.json(),
                   "helios_rows_scanned_median": scanned, "helios_rows_by_index_median": by_index,
                   "result_rows_median": result_rows, "sqlite_plan": plan}),
        );
        report.verdict(
            format!("{} ≤ 5 ms at {n} events (median)", &name[..2]),
            format!(
                "{:.2} ms (p99 {:.2}; SQLite {:.3} ms)",
                millis(h.median),
                millis(h.p99),
                millis(s.median)
            ),
            millis(h.median),
            h.median <= Duration::from_millis(5),
        );
    }
    println!(
        "    (rows read: handed to GlueSQL by table scans and by index scans, counted by the \
         session; median over the runs)"
    );
    println!();
    drop(session);
    drop(db);
    Ok(())
}

fn in_secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Parameters of one run of query `q`.
fn query_params(q: usize, history: &History, rng: &mut StdRng) -> Vec<QueryParam> {
    match q {
        0 => {
            let from = history.start_us + rng.random_range(0..(QUERY_DAYS * 24 - 1)) * HOUR_US;
            vec![QueryParam::Micros(from), QueryParam::Micros(from + HOUR_US)]
        }
        1 => vec![QueryParam::Text(format!(
            "user_{:02}",
            rng.random_range(0..QUERY_USERS)
        ))],
        2 => {
            let from = history.start_us + rng.random_range(0..QUERY_DAYS) * DAY_US;
            vec![QueryParam::Micros(from), QueryParam::Micros(from + DAY_US)]
        }
        _ => vec![
            QueryParam::Text(format!("table_{:02}", rng.random_range(0..QUERY_TABLES))),
            QueryParam::Micros(history.end_us - 7 * DAY_US),
        ],
    }
}

/// One run of a query: time, a normalized result to compare engines, rows read.
struct QueryRun {
    took: Duration,
    result: Vec<String>,
    touched: (u64, u64),
}

fn run_helios(session: &mut Session, sql: &str, params: &[QueryParam]) -> anyhow::Result<QueryRun> {
    let bound: Vec<Param> = params
        .iter()
        .map(|p| match p {
            QueryParam::Text(s) => Param::from(s.clone()),
            QueryParam::Micros(us) => Param::from(naive(*us)),
        })
        .collect();
    let before = (session.rows_scanned(), session.rows_read_by_index());
    let started = Instant::now();
    let rows = session.query(sql, &bound)?;
    let took = started.elapsed();
    let touched = (
        session.rows_scanned() - before.0,
        session.rows_read_by_index() - before.1,
    );
    Ok(QueryRun {
        took,
        result: normalize_helios(&rows),
        touched,
    })
}

fn normalize_helios(rows: &Rows) -> Vec<String> {
    let text = |v: &Value| match v {
        Value::Str(s) => s.clone(),
        other => i64::from_value(other).map_or_else(|| format!("{other:?}"), |n| n.to_string()),
    };
    let mut out: Vec<String> = match rows.column_index("id") {
        // Whole events: their ids.
        Some(id) => rows
            .rows
            .iter()
            .filter_map(|r| r.get(id).map(text))
            .collect(),
        None => rows
            .rows
            .iter()
            .map(|r| r.iter().map(text).collect::<Vec<_>>().join("="))
            .collect(),
    };
    out.sort();
    out
}

fn run_sqlite(
    conn: &rusqlite::Connection,
    sql: &str,
    params: &[QueryParam],
) -> anyhow::Result<QueryRun> {
    let bound: Vec<rusqlite::types::Value> = params
        .iter()
        .map(|p| match p {
            QueryParam::Text(s) => rusqlite::types::Value::Text(s.clone()),
            QueryParam::Micros(us) => rusqlite::types::Value::Integer(*us),
        })
        .collect();
    let started = Instant::now();
    let mut statement = conn.prepare_cached(sql)?;
    let columns = statement.column_count();
    let names: Vec<String> = statement.column_names().map(str::to_owned).collect();
    let mut rows = statement.query(rusqlite::params_from_iter(bound))?;
    let mut table: Vec<Vec<rusqlite::types::Value>> = Vec::new();
    while let Some(row) = rows.next()? {
        let mut values = Vec::with_capacity(columns);
        for i in 0..columns {
            values.push(row.get::<_, rusqlite::types::Value>(i)?);
        }
        table.push(values);
    }
    let took = started.elapsed();
    let text = |v: &rusqlite::types::Value| match v {
        rusqlite::types::Value::Integer(n) => n.to_string(),
        rusqlite::types::Value::Text(s) => s.clone(),
        other => format!("{other:?}"),
    };
    let id = names.iter().position(|n| n == "id");
    let mut result: Vec<String> = match id {
        Some(id) => table.iter().filter_map(|r| r.get(id).map(text)).collect(),
        None => table
            .iter()
            .map(|r| r.iter().map(text).collect::<Vec<_>>().join("="))
            .collect(),
    };
    result.sort();
    Ok(QueryRun {
        took,
        result,
        touched: (0, 0),
    })
}

/// SQLite's plan for `sql`, one line.
fn sqlite_plan(conn: &rusqlite::Connection, sql: &str) -> anyhow::Result<String> {
    let mut statement = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
    let count = statement.parameter_count();
    let nulls = vec![rusqlite::types::Value::Null; count];
    let details: Vec<String> = statement
        .query_map(rusqlite::params_from_iter(nulls), |row| {
            row.get::<_, String>(3)
        })?
        .collect::<Result<_, _>>()?;
    Ok(details.join("; "))
}

/// (g) Directory size per event after a clean close and after fjall has been left idle,
/// against the SQLite file with the same data and indexes.
fn bytes_per_event(
    db_dir: &Path,
    sqlite_path: &Path,
    n: u64,
    report: &mut Report,
) -> anyhow::Result<()> {
    let closed = dir_size(db_dir);
    let closed_parts = dir_breakdown(db_dir);
    // Reopen the bare backend and leave it idle until the directory stops changing (fjall
    // flushes and compacts in the background), then close it again.
    let started = Instant::now();
    let backend = FjallBackend::open(db_dir)?;
    let mut last = dir_size(db_dir);
    let mut stable = 0;
    while stable < 5 && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_secs(1));
        let size = dir_size(db_dir);
        stable = if size == last { stable + 1 } else { 0 };
        last = size;
    }
    let idle = started.elapsed();
    // What each keyspace holds, before compression and the LSM's own overhead.
    let snapshot = backend.snapshot()?;
    let mut logical = Vec::new();
    for keyspace in backend.keyspaces()? {
        let mut bytes = 0u64;
        for entry in snapshot.range(
            &keyspace,
            Bound::Unbounded,
            Bound::Unbounded,
            Direction::Forward,
        )? {
            let (key, value) = entry?;
            bytes += u64::try_from(key.len() + value.len())?;
        }
        logical.push((keyspace, bytes));
    }
    drop(snapshot);
    drop(backend);
    let settled = dir_size(db_dir);
    let sqlite = std::fs::metadata(sqlite_path)?.len()
        + ["-wal", "-shm"]
            .iter()
            .filter_map(|suffix| {
                let mut p = sqlite_path.as_os_str().to_owned();
                p.push(suffix);
                std::fs::metadata(PathBuf::from(p)).ok().map(|m| m.len())
            })
            .sum::<u64>();
    let per = |bytes: u64| bytes as f64 / n.max(1) as f64;
    let parts: Vec<String> = closed_parts
        .iter()
        .take(6)
        .map(|(name, size)| format!("{name} {:.1} MiB", mib(*size)))
        .collect();
    println!(
        "(g) on disk, {n} events with their 4 indexes and Merkle tree: HeliosDB-Lite {:.0} B/event \
         after a clean close ({:.0} MiB: {}), {:.0} B/event after {:.0} s open and idle; SQLite \
         {:.0} B/event ({:.0} MiB, same columns and 4 indexes, after a WAL checkpoint)",
        per(closed),
        mib(closed),
        parts.join(", "),
        per(settled),
        idle.as_secs_f64(),
        per(sqlite),
        mib(sqlite),
    );
    let logical_text: Vec<String> = logical
        .iter()
        .filter(|(_, bytes)| *bytes > 0)
        .map(|(name, bytes)| format!("{name} {:.0} B", per(*bytes)))
        .collect();
    println!(
        "    logical bytes per event (keys + values, before compression and LSM overhead): {}",
        logical_text.join(", ")
    );
    report.add(
        "bytes_per_event",
        json!({"events": n, "helios_closed_bytes": closed, "helios_closed_per_event": per(closed),
               "helios_settled_bytes": settled, "helios_settled_per_event": per(settled),
               "helios_idle_seconds": idle.as_secs_f64(),
               "helios_parts": closed_parts.iter().map(|(k, v)| json!({"entry": k, "bytes": v})).collect::<Vec<_>>(),
               "logical_per_event": logical.iter().map(|(k, v)| json!({"keyspace": k, "bytes_per_event": per(*v)})).collect::<Vec<_>>(),
               "sqlite_bytes": sqlite, "sqlite_per_event": per(sqlite)}),
    );
    let best = per(closed).min(per(settled));
    report.verdict(
        format!("on-disk ≤ 200 B/event incl. indexes ({n} events)"),
        format!(
            "{:.0} B closed, {:.0} B settled (SQLite {:.0} B)",
            per(closed),
            per(settled),
            per(sqlite)
        ),
        best,
        best <= 200.0,
    );
    Ok(())
}

// ----------------------------------------------------------------------------------------
// (h) UPDATE / DELETE against INSERT on a large table.

fn large_table(args: &Args, dml: &[Cell], report: &mut Report) -> anyhow::Result<()> {
    if args.large_rows <= 0 {
        // The main DML run is the only figure; say what it gives.
        if let Some((update, delete)) = update_delete_ratios(dml, H_ON) {
            let worst = update.max(delete);
            report.verdict(
                format!("UPDATE/DELETE ≤ 3× INSERT at {} rows (audit on)", args.rows),
                format!("UPDATE {update:.2}×, DELETE {delete:.2}×"),
                worst,
                worst <= 3.0,
            );
        }
        return Ok(());
    }
    let rows = args.large_rows;
    let started = Instant::now();
    let sqlite_dir = tempfile::tempdir()?;
    let mut modes = vec![
        Mode::helios("fjall, audit off", None, Setup::fjall(false), rows)?,
        Mode::helios("fjall, audit on", Some(0), Setup::fjall(true), rows)?,
    ];
    if !args.no_sqlite {
        modes.push(Mode::sqlite(
            sqlite_dir.path(),
            "NORMAL, no audit",
            None,
            SqliteSync::Normal,
            SqliteAudit::None,
            rows,
        )?);
        modes.push(Mode::sqlite(
            sqlite_dir.path(),
            "NORMAL, audit triggers",
            Some(2),
            SqliteSync::Normal,
            SqliteAudit::Triggers,
            rows,
        )?);
    }
    let load = started.elapsed();
    let table = interleaved(args.large_ops, &Dml::ALL, &mut modes)?;
    print_latency(
        &format!(
            "(h) large table: `item` holds {rows} rows (loaded in {:.0} s, 100,000 rows per \
             statement), {} statements per kind and database, interleaved, no restarts",
            load.as_secs_f64(),
            args.large_ops
        ),
        "large_table_dml",
        &modes,
        &table,
        report,
    );
    for (m, mode) in modes.iter().enumerate() {
        if let Some((update, delete)) = update_delete_ratios(&table, m) {
            println!(
                "    {:<47} UPDATE / INSERT {update:.2}×, DELETE / INSERT {delete:.2}× (medians)",
                mode.label()
            );
            report.add(
                "large_table_ratios",
                json!({"engine": mode.engine, "variant": mode.variant, "rows": rows,
                       "update_over_insert": update, "delete_over_insert": delete}),
            );
            if m == 1 {
                let worst = update.max(delete);
                report.verdict(
                    format!("UPDATE/DELETE ≤ 3× INSERT at {rows} rows (audit on)"),
                    format!("UPDATE {update:.2}×, DELETE {delete:.2}×"),
                    worst,
                    worst <= 3.0,
                );
            }
        }
    }
    println!();
    Ok(())
}

// ----------------------------------------------------------------------------------------
// (j) INSERT into a table with a UNIQUE column, small and large.

/// Rows of the small table of the UNIQUE-column figure.
const UNIQUE_SMALL: i64 = 1_000;

/// One `person` table (`email TEXT UNIQUE`) on fjall with the default audit policy,
/// loaded with `rows` rows, and the next id to insert.
struct UniqueTable {
    _dir: tempfile::TempDir,
    session: Session,
    next: i64,
    samples: Vec<Duration>,
}

impl UniqueTable {
    fn new(rows: i64) -> anyhow::Result<UniqueTable> {
        let dir = tempfile::tempdir()?;
        let db = heliosdb_lite::Database::open(dir.path())?;
        let mut session = db.session(SessionInfo::new("bench").application("unique"));
        session.execute(
            "CREATE TABLE person (id INTEGER PRIMARY KEY, email TEXT UNIQUE, name TEXT)",
            &[],
        )?;
        let mut loaded = 0;
        while loaded < rows {
            let n = (rows - loaded).min(100_000);
            session.execute(
                "INSERT INTO person (id, email, name) SELECT N + $1, \
                 CONCAT('user', CAST(N + $1 AS TEXT), '@example.com'), 'loaded' FROM SERIES($2)",
                &params![loaded, n],
            )?;
            loaded += n;
        }
        Ok(UniqueTable {
            _dir: dir,
            session,
            next: rows + 1,
            samples: Vec::new(),
        })
    }

    /// Times one single-row INSERT with a new e-mail address.
    fn insert(&mut self) -> anyhow::Result<()> {
        let id = self.next;
        self.next += 1;
        let email = format!("user{id}@example.com");
        let started = Instant::now();
        self.session.execute(
            "INSERT INTO person VALUES ($1, $2, $3)",
            &params![id, email, "new"],
        )?;
        self.samples.push(started.elapsed());
        Ok(())
    }
}

/// Whether the uniqueness check goes through an index: single-row INSERT latency into a
/// table with a UNIQUE column at 1,000 rows and at `--unique-rows`, interleaved in chunks.
fn unique_inserts(args: &Args, report: &mut Report) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut tables = [
        UniqueTable::new(UNIQUE_SMALL)?,
        UniqueTable::new(args.unique_rows)?,
    ];
    let load = started.elapsed();
    for table in &mut tables {
        for _ in 0..WARM_UP {
            table.insert()?;
        }
        table.samples.clear();
    }
    let mut done = 0;
    while done < args.unique_ops {
        let n = CHUNK.min(args.unique_ops - done);
        for table in &mut tables {
            for _ in 0..n {
                table.insert()?;
            }
        }
        done += n;
    }
    let [small, large] = tables.map(|mut t| Stats::of(&mut t.samples));
    let growth = ratio(large.median, small.median);
    println!(
        "(j) UNIQUE column: single-row INSERT into `person (id INTEGER PRIMARY KEY, email TEXT \
         UNIQUE, name TEXT)`, fjall, audit on, {} per size, interleaved (loaded in {:.0} s)",
        args.unique_ops,
        load.as_secs_f64()
    );
    for (rows, stats) in [(UNIQUE_SMALL, &small), (args.unique_rows, &large)] {
        println!(
            "    {rows:>9} rows: median {:.1} µs, p99 {:.1} µs, mean {:.1} µs",
            micros(stats.median),
            micros(stats.p99),
            micros(stats.mean)
        );
        report.add(
            "unique_insert",
            json!({"rows": rows, "latency": stats.json()}),
        );
    }
    println!(
        "    {} rows / {UNIQUE_SMALL} rows: {growth:.2}× (medians)\n",
        args.unique_rows
    );
    report.verdict(
        format!(
            "UNIQUE check through an index: INSERT flat from {UNIQUE_SMALL} to {} rows (≤ 1.5×)",
            args.unique_rows
        ),
        format!(
            "{:.1} vs {:.1} µs: {growth:.2}×",
            micros(large.median),
            micros(small.median)
        ),
        growth,
        growth <= 1.5,
    );
    Ok(())
}

// ----------------------------------------------------------------------------------------
// (i) Peak RSS.

/// The child's side: a fixed workload, then VmHWM.
fn rss_probe(audited: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut target = DmlTarget::new(audited, DEFAULT_ITEM_ROWS, None)?;
    for _ in 0..RSS_INSERTS {
        target.run_once(Dml::Insert)?;
    }
    for _ in 0..RSS_UPDATES {
        target.run_once(Dml::Update)?;
    }
    let status = std::fs::read_to_string("/proc/self/status")?;
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .context("no VmHWM in /proc/self/status")?;
    let took = started.elapsed();
    target.check()?;
    println!("rss-probe VmHWM_kB={hwm} elapsed_ms={:.0}", millis(took));
    Ok(())
}

fn peak_rss(report: &mut Report) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let mut peaks = [Vec::new(), Vec::new()];
    for (round, audited) in [false, true, true, false].into_iter().enumerate() {
        let output = std::process::Command::new(&exe)
            .args(["--rss-probe", if audited { "on" } else { "off" }])
            .output()
            .with_context(|| format!("run {}", exe.display()))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        ensure!(
            output.status.success(),
            "rss probe {round} failed: {stdout} {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let kb = stdout
            .split_whitespace()
            .find_map(|w| w.strip_prefix("VmHWM_kB="))
            .and_then(|v| v.parse::<u64>().ok())
            .with_context(|| format!("rss probe printed {stdout:?}"))?;
        peaks[usize::from(audited)].push(kb);
    }
    let median = |v: &mut Vec<u64>| {
        v.sort_unstable();
        v.get(v.len() / 2).copied().unwrap_or_default()
    };
    let [mut off, mut on] = peaks;
    let (off_all, on_all) = (off.clone(), on.clone());
    let (off, on) = (median(&mut off), median(&mut on));
    let r = on as f64 / off.max(1) as f64;
    println!(
        "(i) peak RSS (VmHWM) of a child process running {RSS_INSERTS} INSERTs + {RSS_UPDATES} \
         UPDATEs on fjall: audit off {:.1} MiB, audit on {:.1} MiB, on/off {r:.2} (two runs \
         each, the larger: off {off_all:?} kB, on {on_all:?} kB)",
        off as f64 / 1024.0,
        on as f64 / 1024.0,
    );
    println!();
    report.add(
        "peak_rss",
        json!({"inserts": RSS_INSERTS, "updates": RSS_UPDATES, "off_kb": off, "on_kb": on,
               "ratio": r, "off_runs_kb": off_all, "on_runs_kb": on_all}),
    );
    report.verdict(
        "peak RSS audit on vs off (reported; no limit set)",
        format!(
            "{:.1} vs {:.1} MiB = {r:.2}",
            on as f64 / 1024.0,
            off as f64 / 1024.0
        ),
        r,
        true,
    );
    Ok(())
}

// ----------------------------------------------------------------------------------------
// SQLite peers.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SqliteSync {
    Normal,
    Full,
}

impl SqliteSync {
    fn name(self) -> &'static str {
        match self {
            SqliteSync::Normal => "NORMAL",
            SqliteSync::Full => "FULL",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SqliteAudit {
    /// No audit trail.
    None,
    /// AFTER triggers writing `audit_log`.
    Triggers,
    /// The application writes `audit_chain` rows, each hash-chained to the previous one,
    /// in the statement's transaction.
    Chain,
}

/// One SQLite database of the comparison.
struct SqliteTarget {
    conn: rusqlite::Connection,
    audit: SqliteAudit,
    rows: i64,
    next_insert: i64,
    next_update: i64,
    next_refill: i64,
    next_select: i64,
    /// Chain hash of the last `audit_chain` row.
    chain: Hash,
}

const SQLITE_SCHEMA: &str = "
    PRAGMA journal_mode = WAL;
    CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER NOT NULL);
    CREATE TABLE item_new (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER NOT NULL);
";

/// An audit table as SQLite users build one: triggers that copy each change, indexed on
/// time, operation and table (the ledger indexes timestamp, user, operation, target; a
/// trigger cannot see the user or the statement text).
const SQLITE_TRIGGERS: &str = "
    CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY, ts TEXT NOT NULL, operation TEXT NOT NULL,
        target TEXT NOT NULL, row_id INTEGER, old_values TEXT, new_values TEXT);
    CREATE INDEX audit_log_ts ON audit_log (ts);
    CREATE INDEX audit_log_operation ON audit_log (operation);
    CREATE INDEX audit_log_target ON audit_log (target);
    CREATE TRIGGER item_new_insert AFTER INSERT ON item_new BEGIN
        INSERT INTO audit_log (ts, operation, target, row_id, new_values)
        VALUES (strftime('%Y-%m-%dT%H:%M:%f', 'now'), 'INSERT', 'item_new', NEW.id,
                json_object('id', NEW.id, 'name', NEW.name, 'qty', NEW.qty));
    END;
    CREATE TRIGGER item_insert AFTER INSERT ON item BEGIN
        INSERT INTO audit_log (ts, operation, target, row_id, new_values)
        VALUES (strftime('%Y-%m-%dT%H:%M:%f', 'now'), 'INSERT', 'item', NEW.id,
                json_object('id', NEW.id, 'name', NEW.name, 'qty', NEW.qty));
    END;
    CREATE TRIGGER item_update AFTER UPDATE ON item BEGIN
        INSERT INTO audit_log (ts, operation, target, row_id, old_values, new_values)
        VALUES (strftime('%Y-%m-%dT%H:%M:%f', 'now'), 'UPDATE', 'item', NEW.id,
                json_object('id', OLD.id, 'name', OLD.name, 'qty', OLD.qty),
                json_object('id', NEW.id, 'name', NEW.name, 'qty', NEW.qty));
    END;
    CREATE TRIGGER item_delete AFTER DELETE ON item BEGIN
        INSERT INTO audit_log (ts, operation, target, row_id, old_values)
        VALUES (strftime('%Y-%m-%dT%H:%M:%f', 'now'), 'DELETE', 'item', OLD.id,
                json_object('id', OLD.id, 'name', OLD.name, 'qty', OLD.qty));
    END;
";

/// The application-side hash chain: who, what, the statement and its values, and
/// `chain = SHA-256(previous chain || row text)`, indexed like the ledger.
const SQLITE_CHAIN: &str = "
    CREATE TABLE audit_chain (
        id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, user TEXT NOT NULL,
        operation TEXT NOT NULL, target TEXT NOT NULL, row_id INTEGER NOT NULL,
        row_text TEXT NOT NULL, chain BLOB NOT NULL);
    CREATE INDEX audit_chain_ts ON audit_chain (ts);
    CREATE INDEX audit_chain_user ON audit_chain (user);
    CREATE INDEX audit_chain_operation ON audit_chain (operation);
    CREATE INDEX audit_chain_target ON audit_chain (target);
";

/// `SHA-256(previous || text)`, as the application computes it. The example cannot name
/// `sha2` (not one of its dependencies); the engine's public `leaf_hash` is `sha2`'s
/// SHA-256 over `0x00 || bytes`, one byte more.
fn app_chain(previous: &Hash, text: &str) -> Hash {
    let mut bytes = Vec::with_capacity(32 + text.len());
    bytes.extend_from_slice(previous);
    bytes.extend_from_slice(text.as_bytes());
    leaf_hash(&bytes)
}

impl SqliteTarget {
    fn new(path: &Path, sync: SqliteSync, audit: SqliteAudit, rows: i64) -> anyhow::Result<Self> {
        let conn =
            rusqlite::Connection::open(path).with_context(|| format!("open {}", path.display()))?;
        conn.execute_batch(SQLITE_SCHEMA)?;
        conn.execute_batch(&format!("PRAGMA synchronous = {};", sync.name()))?;
        match audit {
            SqliteAudit::None => {}
            SqliteAudit::Triggers => conn.execute_batch(SQLITE_TRIGGERS)?,
            SqliteAudit::Chain => conn.execute_batch(SQLITE_CHAIN)?,
        }
        conn.execute_batch("BEGIN")?;
        for id in 1..=rows {
            conn.prepare_cached("INSERT INTO item VALUES (?1, ?2, ?3)")?
                .execute(rusqlite::params![id, "widget", id])?;
        }
        conn.execute_batch("COMMIT")?;
        Ok(Self {
            conn,
            audit,
            rows,
            next_insert: 1,
            next_update: 0,
            next_refill: rows + 1,
            next_select: 0,
            chain: [0u8; 32],
        })
    }

    /// Writes the `audit_chain` row of one change (inside the caller's transaction).
    fn chain_record(
        &mut self,
        operation: &str,
        target: &str,
        row_id: i64,
        values: &str,
    ) -> anyhow::Result<()> {
        let ts = heliosdb_lite::chrono::Utc::now().timestamp_micros();
        let text = format!("{ts}|{USER}|{operation}|{target}|{row_id}|{values}");
        self.chain = app_chain(&self.chain, &text);
        self.conn
            .prepare_cached(
                "INSERT INTO audit_chain (ts, user, operation, target, row_id, row_text, chain) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(rusqlite::params![
                ts,
                USER,
                operation,
                target,
                row_id,
                text,
                &self.chain[..]
            ])?;
        Ok(())
    }

    /// Runs `sql` with `values` as one transaction, with its `audit_chain` row when the
    /// chain is on.
    fn change(
        &mut self,
        sql: &str,
        values: [i64; 2],
        operation: &str,
        target: &str,
        row_id: i64,
    ) -> anyhow::Result<()> {
        let chained = self.audit == SqliteAudit::Chain;
        if chained {
            self.conn.prepare_cached("BEGIN")?.execute([])?;
        }
        let changed = match operation {
            "DELETE" => self.conn.prepare_cached(sql)?.execute([values[0]])?,
            "UPDATE" => self.conn.prepare_cached(sql)?.execute(values)?,
            _ => self
                .conn
                .prepare_cached(sql)?
                .execute(rusqlite::params![values[0], "widget", values[1]])?,
        };
        ensure!(changed == 1, "{sql} changed {changed} rows");
        if chained {
            let text = match operation {
                "DELETE" => format!("[{}]", values[0]),
                _ => format!("[{},{}]", values[0], values[1]),
            };
            self.chain_record(operation, target, row_id, &text)?;
            self.conn.prepare_cached("COMMIT")?.execute([])?;
        }
        Ok(())
    }

    /// Like [`DmlTarget::run_once`]. Statements come from rusqlite's statement cache, as a
    /// session reuses its parse of a statement text it ran before.
    fn run_once(&mut self, op: Dml) -> anyhow::Result<Duration> {
        let started;
        match op {
            Dml::Insert => {
                let id = self.next_insert;
                self.next_insert += 1;
                started = Instant::now();
                self.change(
                    "INSERT INTO item_new VALUES (?1, ?2, ?3)",
                    [id, 1],
                    "INSERT",
                    "item_new",
                    id,
                )?;
            }
            Dml::Update => {
                let id = 1 + self.next_update % self.rows;
                self.next_update += 1;
                started = Instant::now();
                self.change(
                    "UPDATE item SET qty = ?1 WHERE id = ?2",
                    [self.next_update, id],
                    "UPDATE",
                    "item",
                    id,
                )?;
            }
            Dml::Delete => {
                let id = self.next_refill;
                self.next_refill += 1;
                self.change(
                    "INSERT INTO item VALUES (?1, ?2, ?3)",
                    [id, 1],
                    "INSERT",
                    "item",
                    id,
                )?;
                started = Instant::now();
                self.change(
                    "DELETE FROM item WHERE id = ?1",
                    [id, 0],
                    "DELETE",
                    "item",
                    id,
                )?;
            }
            Dml::Select => {
                let id = 1 + self.next_select % self.rows;
                self.next_select += 1;
                started = Instant::now();
                let row: (i64, String, i64) = self
                    .conn
                    .prepare_cached("SELECT id, name, qty FROM item WHERE id = ?1")?
                    .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                std::hint::black_box(row);
            }
        }
        Ok(started.elapsed())
    }

    /// The audit table holds rows when it should; the application chain recomputes.
    fn check(&self) -> anyhow::Result<()> {
        match self.audit {
            SqliteAudit::None => Ok(()),
            SqliteAudit::Triggers => {
                let count: i64 =
                    self.conn
                        .query_row("SELECT COUNT(*) FROM audit_log", [], |r| r.get(0))?;
                ensure!(count > 0, "the audit triggers wrote nothing");
                Ok(())
            }
            SqliteAudit::Chain => {
                let mut statement = self
                    .conn
                    .prepare("SELECT row_text, chain FROM audit_chain ORDER BY id")?;
                let mut rows = statement.query([])?;
                let mut chain = [0u8; 32];
                let mut count = 0u64;
                while let Some(row) = rows.next()? {
                    let text: String = row.get(0)?;
                    let stored: Vec<u8> = row.get(1)?;
                    chain = app_chain(&chain, &text);
                    if stored != chain {
                        bail!("audit_chain row {count} does not chain");
                    }
                    count += 1;
                }
                ensure!(
                    count > 0 && chain == self.chain,
                    "the application chain is incomplete"
                );
                Ok(())
            }
        }
    }
}
