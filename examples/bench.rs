//! The audit trail's performance targets, measured in one run and printed as a table.
//!
//! ```text
//! cargo run --release --example bench                      # full run, a few minutes
//! cargo run --release --example bench -- --events 100000 --ops 2000 --no-sqlite
//! ```
//!
//! 1. Single-row INSERT / UPDATE / DELETE latency (median, p99) on fjall with group
//!    durability, audit off against audit on, interleaved in short chunks so drift of the
//!    machine hits both alike. Target: on / off ≤ 1.10.
//! 2. Verifying the hash chain of a ledger of `--events` events (~300 canonical bytes each),
//!    in events per second on one core. Target: ≥ 2.5 M/s.
//! 3. Opening that database after a clean close (median of `--opens`). Target: < 50 ms for
//!    1,000,000 events.
//! 4. The same statements on SQLite (rusqlite, bundled), without and with audit triggers
//!    writing an indexed audit table, for comparison.
//!
//! What each figure means and the figures measured are in `docs/BENCHMARKS.md`.

#[path = "../benches/support/mod.rs"]
mod support;

use anyhow::Context;
use clap::Parser;
use heliosdb_lite::engine::audit::VerifyOptions;
use heliosdb_lite::engine::audit::ledger::{self, KS_AUDIT, chain_hash, genesis, leaf_hash};
use heliosdb_lite::engine::backend::Direction;
use heliosdb_lite::{DatabaseOptions, DurabilityMode, FjallBackend};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{DEFAULT_ITEM_ROWS, Dml, DmlTarget, RENEW_EVERY};

/// Command-line options.
#[derive(Parser, Debug)]
#[command(about = "Measure the audit trail's cost: DML latency, verify throughput, open time")]
struct Args {
    /// Events in the ledger that verify and open are measured on.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Measured statements per kind (INSERT, UPDATE, DELETE) and per mode (audit off, on).
    #[arg(long, default_value_t = 10_000)]
    ops: usize,
    /// Rows kept in the table that UPDATE and DELETE touch (GlueSQL scans all of them).
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
    /// Skip the SQLite comparison.
    #[arg(long)]
    no_sqlite: bool,
    /// UPDATEs run on one table without starting over, to show how their latency grows
    /// with the versions left in fjall's memtable (0 skips it).
    #[arg(long, default_value_t = 8_000)]
    buildup: usize,
    /// Measure only this statement kind in the latency runs: insert, update or delete
    /// (handy under a profiler).
    #[arg(long, value_parser = ["insert", "update", "delete"])]
    only: Option<String>,
}

/// Statements run back to back in one mode before switching to the other.
const CHUNK: usize = 100;
/// Unmeasured statements per kind and mode before measuring.
const WARM_UP: usize = 500;
/// Records hashed in memory for the hash-only figure.
const HASH_ONLY_RECORDS: usize = 200_000;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if cfg!(debug_assertions) {
        println!("WARNING: debug build; figures are meaningless. Use `cargo run --release`.\n");
    }
    print_machine();

    let dml = heliosdb_dml(&args)?;
    print_dml(
        &format!(
            "(a) HeliosDB-Lite single-row DML on fjall, group commit every {} ms \
             ({} statements per cell, off/on interleaved in chunks of {CHUNK}; `item` holds {} \
             rows, fresh database every {RENEW_EVERY} UPDATE/DELETE)",
            support::GROUP_INTERVAL.as_millis(),
            args.ops,
            args.rows
        ),
        &dml,
        Some(1.10),
    );
    if args.buildup > 0 {
        version_buildup(&args)?;
    }

    let large = LargeLedger::prepare(&args)?;
    large.report(&args)?;

    if args.no_sqlite {
        println!("(d) SQLite comparison skipped (--no-sqlite).");
    } else {
        let sqlite = sqlite_dml(&args)?;
        print_dml(
            &format!(
                "(d) SQLite {} (rusqlite, WAL, synchronous=NORMAL), same statements, \
                 audit = AFTER triggers writing `audit_log` with 3 indexes",
                rusqlite::version()
            ),
            &sqlite,
            None,
        );
        print_comparison(&dml, &sqlite);
    }
    Ok(())
}

fn print_machine() {
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
}

/// Latencies of one statement kind in one mode.
#[derive(Clone, Debug)]
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
}

/// One row of a latency table: a statement kind, audit off and on.
#[derive(Clone, Debug)]
struct DmlRow {
    op: Dml,
    off: Stats,
    on: Stats,
}

fn ratio(on: Duration, off: Duration) -> f64 {
    on.as_secs_f64() / off.as_secs_f64().max(f64::MIN_POSITIVE)
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Runs `ops` statements of each kind in both modes, alternating chunks of [`CHUNK`] and
/// which mode goes first, so both see the same machine state. `run(mode, op)` runs one
/// statement in mode 0 (off) or 1 (on) and returns its latency.
fn interleaved(
    args: &Args,
    mut run: impl FnMut(usize, Dml) -> anyhow::Result<Duration>,
) -> anyhow::Result<Vec<DmlRow>> {
    let ops = args.ops;
    let mut table = Vec::new();
    let chosen = Dml::ALL
        .into_iter()
        .filter(|op| args.only.as_deref().is_none_or(|only| only == op.name()));
    for op in chosen {
        for mode in [0, 1] {
            for _ in 0..WARM_UP {
                run(mode, op)?;
            }
        }
        let mut samples = [Vec::with_capacity(ops), Vec::with_capacity(ops)];
        let mut round = 0usize;
        while samples[0].len() < ops {
            let n = CHUNK.min(ops - samples[0].len());
            let order = if round.is_multiple_of(2) {
                [0, 1]
            } else {
                [1, 0]
            };
            for mode in order {
                for _ in 0..n {
                    samples[mode].push(run(mode, op)?);
                }
            }
            round += 1;
        }
        let [mut off, mut on] = samples;
        table.push(DmlRow {
            op,
            off: Stats::of(&mut off),
            on: Stats::of(&mut on),
        });
    }
    Ok(table)
}

fn heliosdb_dml(args: &Args) -> anyhow::Result<Vec<DmlRow>> {
    let mut targets = [
        DmlTarget::new(false, args.rows, Some(RENEW_EVERY))?,
        DmlTarget::new(true, args.rows, Some(RENEW_EVERY))?,
    ];
    let table = interleaved(args, |mode, op| targets[mode].run_once(op))?;
    for target in &targets {
        target.check()?;
    }
    Ok(table)
}

/// UPDATE latency early and late in a long run on one database (audit off): the cost of
/// row versions piling up in the memtable under GlueSQL's full-table scans.
fn version_buildup(args: &Args) -> anyhow::Result<()> {
    let mut target = DmlTarget::new(false, args.rows, None)?;
    let mut samples = Vec::with_capacity(args.buildup);
    for _ in 0..args.buildup {
        samples.push(target.run_once(Dml::Update)?);
    }
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
    Ok(())
}

fn print_dml(title: &str, table: &[DmlRow], target: Option<f64>) {
    println!("{title}");
    println!(
        "  {:<9} {:>11} {:>11} {:>11} {:>11} {:>10} {:>9} {:>9} {:>9}{}",
        "statement",
        "off median",
        "off p99",
        "on median",
        "on p99",
        "on−off med",
        "ratio med",
        "ratio p99",
        "ratio avg",
        if target.is_some() { "   target" } else { "" }
    );
    for row in table {
        let median = ratio(row.on.median, row.off.median);
        let verdict = match target {
            Some(limit) if median <= limit => format!("   ≤ {limit:.2} met"),
            Some(limit) => format!("   ≤ {limit:.2} MISSED"),
            None => String::new(),
        };
        println!(
            "  {:<9} {:>9.1}µs {:>9.1}µs {:>9.1}µs {:>9.1}µs {:>8.1}µs {:>9.3} {:>9.3} {:>9.3}{verdict}",
            row.op.name().to_uppercase(),
            micros(row.off.median),
            micros(row.off.p99),
            micros(row.on.median),
            micros(row.on.p99),
            micros(row.on.median) - micros(row.off.median),
            median,
            ratio(row.on.p99, row.off.p99),
            ratio(row.on.mean, row.off.mean),
        );
    }
    println!();
}

fn print_comparison(helios: &[DmlRow], sqlite: &[DmlRow]) {
    println!("    audit overhead side by side (median on/off, and added µs)");
    for (h, s) in helios.iter().zip(sqlite) {
        println!(
            "    {:<9} HeliosDB-Lite {:>6.3} (+{:>5.1} µs)   SQLite+triggers {:>6.3} (+{:>5.1} µs)",
            h.op.name().to_uppercase(),
            ratio(h.on.median, h.off.median),
            micros(h.on.median) - micros(h.off.median),
            ratio(s.on.median, s.off.median),
            micros(s.on.median) - micros(s.off.median),
        );
    }
    println!();
}

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
        anyhow::ensure!(
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

    fn report(&self, args: &Args) -> anyhow::Result<()> {
        println!(
            "(b)+(c) database of {} events at {} ({:.0} MiB on disk)",
            args.events,
            self.dir.display(),
            dir_size(&self.dir) as f64 / (1024.0 * 1024.0)
        );
        match self.build {
            Some((events, took)) => println!(
                "  built: {events} events in {:.1} s ({:.0} events/s, 1,000 statements per transaction)",
                took.as_secs_f64(),
                events as f64 / took.as_secs_f64()
            ),
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
        let verdict = if open.median < Duration::from_millis(50) {
            "met"
        } else {
            "MISSED"
        };
        println!(
            "(c) Database::open: median {:.1} ms over {} opens (first {:.1} ms, slowest {:.1} ms), \
             audit_head().seq = {seq}; target < 50 ms for 1M events: {verdict}",
            micros(open.median) / 1e3,
            args.opens.max(1),
            micros(first) / 1e3,
            micros(*opens.last().unwrap_or(&first)) / 1e3,
        );
        println!(
            "    close (drop, fsync, stop group-commit thread): median {:.1} ms",
            micros(close.median) / 1e3
        );
        let (fjall, engine) = open_breakdown(&self.dir, args.opens.max(1))?;
        println!(
            "    of an open: FjallBackend::open {:.1} ms (journal replay, keyspaces), \
             engine::Database::with_backend {:.1} ms (catalog, ledger head, syncer) — medians",
            micros(fjall) / 1e3,
            micros(engine) / 1e3
        );
        anyhow::ensure!(
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
        println!(
            "(b) engine::audit::verify_with: {events} events, average canonical event {:.0} B \
             (+32 B chain hash stored)",
            parts.canonical_bytes as f64 / parts.records.max(1) as f64
        );
        println!(
            "    one core (hash_threads = 0): median {:.2} M events/s ({:.0} ms per pass), \
             best {:.2} M events/s, {} passes; target ≥ 2.5 M/s: {}",
            rate(pass.median) / 1e6,
            micros(pass.median) / 1e3,
            rate(best) / 1e6,
            args.verify_passes.max(1),
            if rate(pass.median) >= 2.5e6 {
                "met"
            } else {
                "MISSED"
            }
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
        Ok(())
    }
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

/// One SQLite database of the comparison, with or without audit triggers.
struct SqliteTarget {
    conn: rusqlite::Connection,
    rows: i64,
    next_insert: i64,
    next_update: i64,
    next_refill: i64,
}

const SQLITE_SCHEMA: &str = "
    PRAGMA journal_mode = WAL;
    PRAGMA synchronous = NORMAL;
    CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER NOT NULL);
    CREATE TABLE item_new (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER NOT NULL);
";

/// An audit table as SQLite users build one: triggers that copy each change, indexed on
/// time, operation and table (the ledger indexes timestamp, user, operation, target; a
/// trigger cannot see the user or the statement text).
const SQLITE_AUDIT: &str = "
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

impl SqliteTarget {
    fn new(path: &Path, audited: bool, rows: i64) -> anyhow::Result<Self> {
        let conn =
            rusqlite::Connection::open(path).with_context(|| format!("open {}", path.display()))?;
        conn.execute_batch(SQLITE_SCHEMA)?;
        if audited {
            conn.execute_batch(SQLITE_AUDIT)?;
        }
        conn.execute_batch("BEGIN")?;
        for id in 1..=rows {
            conn.execute(
                "INSERT INTO item VALUES (?1, ?2, ?3)",
                rusqlite::params![id, "widget", id],
            )?;
        }
        conn.execute_batch("COMMIT")?;
        Ok(Self {
            conn,
            rows,
            next_insert: 1,
            next_update: 0,
            next_refill: rows + 1,
        })
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
                self.conn
                    .prepare_cached("INSERT INTO item_new VALUES (?1, ?2, ?3)")?
                    .execute(rusqlite::params![id, "widget", 1])?;
            }
            Dml::Update => {
                let id = 1 + self.next_update % self.rows;
                self.next_update += 1;
                started = Instant::now();
                self.conn
                    .prepare_cached("UPDATE item SET qty = ?1 WHERE id = ?2")?
                    .execute(rusqlite::params![self.next_update, id])?;
            }
            Dml::Delete => {
                let id = self.next_refill;
                self.next_refill += 1;
                self.conn.execute(
                    "INSERT INTO item VALUES (?1, ?2, ?3)",
                    rusqlite::params![id, "widget", 1],
                )?;
                started = Instant::now();
                self.conn
                    .prepare_cached("DELETE FROM item WHERE id = ?1")?
                    .execute(rusqlite::params![id])?;
            }
        }
        Ok(started.elapsed())
    }
}

fn sqlite_dml(args: &Args) -> anyhow::Result<Vec<DmlRow>> {
    let dir = tempfile::tempdir()?;
    let mut targets = [
        SqliteTarget::new(&dir.path().join("off.sqlite"), false, args.rows)?,
        SqliteTarget::new(&dir.path().join("on.sqlite"), true, args.rows)?,
    ];
    interleaved(args, |mode, op| targets[mode].run_once(op))
}
