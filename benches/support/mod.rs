//! Workloads shared by `benches/audit.rs` (criterion) and `examples/bench.rs` (the one-shot
//! report): the tables and statements measured, how a database is opened for a run, how a
//! large ledger is built quickly, and how its hash chain is verified.
//!
//! Both targets include this file (`mod support;` / `#[path]`), so the figures they print
//! describe the same work. Every item is used by both, except [`Dml::Select`], which only
//! the example measures.

use anyhow::{Context, bail, ensure};
use heliosdb_lite::engine::audit::{self, AuditPolicy, Head};
use heliosdb_lite::{
    Database, DurabilityMode, FjallBackend, JsonlFileSink, MemoryBackend, Session, SessionInfo,
    StorageBackend, params,
};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Group-commit interval of every measured database (the engine's default).
pub const GROUP_INTERVAL: Duration = Duration::from_millis(10);

/// Tables of the single-row DML latency runs: `item` keeps a fixed number of rows (its size
/// is part of the figure for UPDATE, DELETE and SELECT by key); `item_new` only grows, by
/// the INSERT run.
pub const CREATE_ITEMS: &str = "CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER NOT NULL); \
     CREATE TABLE item_new (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER NOT NULL)";
/// The measured single-row INSERT, all values bound.
pub const INSERT_ITEM: &str = "INSERT INTO item_new VALUES ($1, $2, $3)";
/// Puts a row back into `item` (not measured: it feeds the DELETE run).
pub const REFILL_ITEM: &str = "INSERT INTO item VALUES ($1, $2, $3)";
/// The measured single-row UPDATE, by primary key.
pub const UPDATE_ITEM: &str = "UPDATE item SET qty = $1 WHERE id = $2";
/// The measured single-row DELETE, by primary key.
pub const DELETE_ITEM: &str = "DELETE FROM item WHERE id = $1";
/// The measured SELECT of one row by primary key.
pub const SELECT_ITEM: &str = "SELECT id, name, qty FROM item WHERE id = $1";

/// Rows kept in `item` unless told otherwise.
pub const DEFAULT_ITEM_ROWS: i64 = 100;

/// Fills `item` with rows `$1 + 1 ..= $1 + $2`, in one statement.
const FILL_ITEMS: &str =
    "INSERT INTO item (id, name, qty) SELECT N + $1, 'widget', N + $1 FROM SERIES($2)";
/// Rows of `item` written per statement (and transaction) while a database is filled.
const FILL_ROWS_PER_TXN: i64 = 100_000;

/// UPDATE and DELETE statements after which a [`DmlTarget`] starts over on a fresh
/// database, so every run measures the same table state (fjall keeps every version of a
/// row in the memtable until it is flushed).
pub const RENEW_EVERY: u64 = 2_000;

/// Table the ledger-building workload writes.
pub const CREATE_VITALS: &str = "CREATE TABLE vital_signs (id INTEGER PRIMARY KEY, \
     patient_id INTEGER NOT NULL, heart_rate_bpm INTEGER, systolic_mmhg INTEGER, \
     diastolic_mmhg INTEGER)";
/// The ledger-building statement. Its text, bound values and the session metadata make a
/// canonical event of about 300 bytes, the size the verify target is stated for.
pub const INSERT_VITALS: &str = "INSERT INTO vital_signs (id, patient_id, heart_rate_bpm, \
     systolic_mmhg, diastolic_mmhg) VALUES ($1, $2, $3, $4, $5)";

/// Statements per explicit transaction while building a ledger. Each statement is one
/// event; `BEGIN` and `COMMIT` add two more.
const STATEMENTS_PER_TXN: u64 = 1_000;

/// Opens (creating if missing) a fjall database in `dir` with group durability, auditing
/// everything when `audited`, nothing otherwise.
pub fn open(dir: &Path, audited: bool) -> anyhow::Result<Database> {
    Database::builder()
        .path(dir)
        .durability(DurabilityMode::Group {
            interval: GROUP_INTERVAL,
        })
        .audit_policy(policy(audited))
        .open()
        .with_context(|| format!("open {}", dir.display()))
}

/// Everything recorded, or nothing.
fn policy(audited: bool) -> AuditPolicy {
    if audited {
        AuditPolicy::default()
    } else {
        AuditPolicy::disabled()
    }
}

/// A session with realistic metadata (it is part of every event's canonical bytes).
pub fn session(db: &Database) -> Session {
    db.session(
        SessionInfo::new("nurse.jackson")
            .application("ward")
            .client_addr("10.1.2.3"),
    )
}

/// Creates `item` and `item_new`, and fills `item` with rows `1..=rows`, up to
/// [`FILL_ROWS_PER_TXN`] rows per statement (one transaction each).
pub fn prepare_items(session: &mut Session, rows: i64) -> anyhow::Result<()> {
    session.execute(CREATE_ITEMS, &[])?;
    let mut done = 0;
    while done < rows {
        let count = (rows - done).min(FILL_ROWS_PER_TXN);
        session.execute(FILL_ITEMS, &params![done, count])?;
        done += count;
    }
    Ok(())
}

/// How a [`DmlTarget`]'s database is set up.
#[derive(Clone, Debug)]
pub struct Setup {
    /// What the audit trail records.
    pub policy: AuditPolicy,
    /// The memory backend instead of fjall.
    pub in_memory: bool,
    /// Attach a `jsonl-file` follower sink writing every event to a file.
    pub jsonl_sink: bool,
    /// Also attach a checkpoint sink (signing every [`CHECKPOINT_EVERY`] events) and an
    /// OTLP/HTTP sink exporting to a receiver on loopback ([`otlp_receiver`]).
    pub all_sinks: bool,
}

/// Events between two checkpoints of the all-sinks setup.
pub const CHECKPOINT_EVERY: u64 = 1_000;

/// The address of an OTLP/HTTP receiver on loopback, started once per process: it reads
/// each request and answers `200 OK` with an empty `ExportLogsServiceResponse` (a full
/// success), on keep-alive connections, one thread per connection.
pub fn otlp_receiver() -> anyhow::Result<std::net::SocketAddr> {
    use std::io::{BufRead, BufReader, Read, Write};
    static ADDR: std::sync::OnceLock<std::net::SocketAddr> = std::sync::OnceLock::new();
    if let Some(addr) = ADDR.get() {
        return Ok(*addr);
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let serve = |stream: std::net::TcpStream| -> std::io::Result<()> {
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut writer = stream;
        loop {
            let mut length = 0usize;
            let mut line = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line)? == 0 {
                    return Ok(());
                }
                let header = line.trim_end();
                if header.is_empty() {
                    break;
                }
                if let Some((name, value)) = header.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body)?;
            writer.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n",
            )?;
        }
    };
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || serve(stream));
        }
    });
    Ok(*ADDR.get_or_init(|| addr))
}

impl Setup {
    /// fjall, no sink, auditing everything when `audited`, nothing otherwise.
    pub fn fjall(audited: bool) -> Setup {
        Setup {
            policy: policy(audited),
            in_memory: false,
            jsonl_sink: false,
            all_sinks: false,
        }
    }
}

/// One database of a DML latency run, with its session and id counters.
pub struct DmlTarget {
    setup: Setup,
    session: Session,
    db: Database,
    rows: i64,
    renew_every: Option<u64>,
    scans: u64,
    /// Events the policy records for the statements run so far.
    expected_events: u64,
    next_insert: i64,
    next_update: i64,
    next_refill: i64,
    next_select: i64,
    dir: tempfile::TempDir,
}

/// A statement kind measured by the latency runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dml {
    /// [`INSERT_ITEM`].
    Insert,
    /// [`UPDATE_ITEM`].
    Update,
    /// [`DELETE_ITEM`] (each deleted row is put back first, unmeasured).
    Delete,
    /// [`SELECT_ITEM`] (not in [`Dml::ALL`]: criterion does not measure it).
    #[allow(dead_code, reason = "measured by the bench example only")]
    Select,
}

impl Dml {
    /// The three data changes, in the order they are reported.
    pub const ALL: [Dml; 3] = [Dml::Insert, Dml::Update, Dml::Delete];

    /// Lower-case name, as in the benchmark ids.
    pub fn name(self) -> &'static str {
        match self {
            Dml::Insert => "insert",
            Dml::Update => "update",
            Dml::Delete => "delete",
            Dml::Select => "select",
        }
    }
}

impl DmlTarget {
    /// A fresh fjall database in a temporary directory, `item` holding `rows` rows. With
    /// `renew_every`, it starts over on a fresh database after that many UPDATE and DELETE
    /// statements (see [`RENEW_EVERY`]).
    pub fn new(audited: bool, rows: i64, renew_every: Option<u64>) -> anyhow::Result<Self> {
        Self::with_setup(Setup::fjall(audited), rows, renew_every)
    }

    /// Like [`DmlTarget::new`], set up as `setup` says. `item` is filled with the audit
    /// trail disabled, on the same backend, so a large table loads fast and the ledger
    /// holds exactly the measured statements' events.
    pub fn with_setup(setup: Setup, rows: i64, renew_every: Option<u64>) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let backend: Arc<dyn StorageBackend> = if setup.in_memory {
            Arc::new(MemoryBackend::new())
        } else {
            Arc::new(FjallBackend::open(dir.path().join("db"))?)
        };
        let durability = DurabilityMode::Group {
            interval: GROUP_INTERVAL,
        };
        {
            let fill = Database::builder()
                .backend(Arc::clone(&backend))
                .durability(durability)
                .audit_policy(AuditPolicy::disabled())
                .open()?;
            prepare_items(&mut session(&fill), rows)?;
        }
        let mut builder = Database::builder()
            .backend(backend)
            .durability(durability)
            .audit_policy(setup.policy.clone());
        if setup.jsonl_sink || setup.all_sinks {
            builder = builder.sink(JsonlFileSink::new(dir.path().join("audit.jsonl")));
        }
        if setup.all_sinks {
            let key = heliosdb_lite::checkpoint::SignerKey::generate("bench")?;
            builder = builder.sink(heliosdb_lite::checkpoint::CheckpointSink::new(
                key,
                dir.path().join("checkpoints"),
                CHECKPOINT_EVERY,
                Duration::from_secs(3600),
            ));
            let otlp = heliosdb_otlp::OtlpOptions::new(dir.path().join("otlp.cursor"))
                .endpoint(format!("http://{}", otlp_receiver()?));
            builder = builder.sink(heliosdb_otlp::OtlpSink::new(otlp)?);
        }
        let db = builder.open()?;
        Ok(Self {
            setup,
            session: session(&db),
            db,
            rows,
            renew_every,
            scans: 0,
            expected_events: 0,
            next_insert: 1,
            next_update: 0,
            // Refilled rows get ids above the fixed ones, so `item` stays at `rows` rows
            // between DELETE runs.
            next_refill: rows + 1,
            next_select: 0,
            dir,
        })
    }

    /// Before an UPDATE or DELETE: starts over on a fresh database when due (after
    /// checking the old one).
    fn renew_if_due(&mut self) -> anyhow::Result<()> {
        self.scans += 1;
        if self.renew_every.is_some_and(|every| self.scans > every) {
            self.check()?;
            *self = DmlTarget::with_setup(self.setup.clone(), self.rows, self.renew_every)?;
            self.scans = 1;
        }
        Ok(())
    }

    /// `audit_on` or `audit_off`.
    pub fn label(&self) -> &'static str {
        if self.setup.policy.enabled {
            "audit_on"
        } else {
            "audit_off"
        }
    }

    /// Checks that the run did what it claims: the ledger holds exactly the events the
    /// policy records for the statements run (none with audit off) and verifies; with a
    /// sink, the sink caught up and its file holds one line per event.
    pub fn check(&self) -> anyhow::Result<()> {
        let seq = self.db.audit_head().seq;
        if seq != self.expected_events {
            bail!(
                "{}: the ledger holds {seq} events, expected {}",
                self.label(),
                self.expected_events
            );
        }
        verify(&self.db, seq, None)?;
        if self.setup.jsonl_sink || self.setup.all_sinks {
            let started = Instant::now();
            while self.db.sink_status().iter().any(|s| s.lag() > 0) {
                ensure!(
                    started.elapsed() < Duration::from_secs(30),
                    "the sinks did not catch up: {:?}",
                    self.db.sink_status()
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            let file = std::fs::read(self.dir.path().join("audit.jsonl"))?;
            let lines = file.iter().filter(|b| **b == b'\n').count();
            ensure!(
                u64::try_from(lines)? == seq,
                "the jsonl-file sink wrote {lines} lines for {seq} events"
            );
        }
        Ok(())
    }

    /// Counts the event the policy records for a statement of `op`.
    fn expect_event(&mut self, op: Dml) {
        let policy = &self.setup.policy;
        let recorded = match op {
            Dml::Select => policy.log_select,
            _ => policy.log_dml,
        };
        if policy.enabled && recorded {
            self.expected_events += 1;
        }
    }

    /// Runs one `op` statement and returns how long `Session::execute` took. Setup work
    /// (the row a DELETE removes) is done before the clock starts.
    pub fn run_once(&mut self, op: Dml) -> anyhow::Result<Duration> {
        let started;
        match op {
            Dml::Insert => {
                let id = self.next_insert;
                self.next_insert += 1;
                started = Instant::now();
                self.session
                    .execute(INSERT_ITEM, &params![id, "widget", 1_i64])?;
            }
            Dml::Update => {
                self.renew_if_due()?;
                let id = 1 + self.next_update % self.rows;
                self.next_update += 1;
                started = Instant::now();
                self.session
                    .execute(UPDATE_ITEM, &params![self.next_update, id])?;
            }
            Dml::Delete => {
                self.renew_if_due()?;
                let id = self.next_refill;
                self.next_refill += 1;
                self.session
                    .execute(REFILL_ITEM, &params![id, "widget", 1_i64])?;
                self.expect_event(Dml::Insert);
                started = Instant::now();
                self.session.execute(DELETE_ITEM, &params![id])?;
            }
            Dml::Select => {
                let id = 1 + self.next_select % self.rows;
                self.next_select += 1;
                started = Instant::now();
                let rows = self.session.query(SELECT_ITEM, &params![id])?;
                ensure!(
                    rows.len() == 1,
                    "SELECT by key returned {} rows",
                    rows.len()
                );
            }
        }
        let took = started.elapsed();
        self.expect_event(op);
        Ok(took)
    }
}
/// Runs the ledger-building statement for row `id`.
pub fn insert_vitals(session: &mut Session, id: u64) -> anyhow::Result<()> {
    let id = i64::try_from(id)?;
    session.execute(
        INSERT_VITALS,
        &params![id, id % 500, 60 + id % 40, 110 + id % 30, 70 + id % 20],
    )?;
    Ok(())
}

/// Appends statements to an audited database until its ledger holds `events` events,
/// batching many statements per transaction (one event each). Returns the head.
pub fn build_ledger(db: &Database, events: u64) -> anyhow::Result<Head> {
    let mut session = session(db);
    if db.audit_head().seq == 0 {
        session.execute(CREATE_VITALS, &[])?;
    }
    // Continue after the rows an earlier, interrupted build left.
    let mut next_id = db.audit_head().seq + 1;
    loop {
        let have = db.audit_head().seq;
        if have >= events {
            break;
        }
        let missing = events - have;
        if missing < 3 {
            // Too few for BEGIN + statement + COMMIT: autocommit, one event each.
            insert_vitals(&mut session, next_id)?;
            next_id += 1;
            continue;
        }
        let statements = (missing - 2).min(STATEMENTS_PER_TXN);
        session.execute("BEGIN", &[])?;
        for _ in 0..statements {
            insert_vitals(&mut session, next_id)?;
            next_id += 1;
        }
        session.execute("COMMIT", &[])?;
    }
    Ok(db.audit_head())
}

/// Verifies the whole ledger with the engine's verifier ([`audit::verify_with`]: every
/// record re-hashed, the chain recomputed from genesis, the head compared) and returns the
/// number of events checked. `hash_threads`: helper threads for leaf hashing (0 = all on
/// the calling thread, one core); `None` takes the engine's default. Fails unless the
/// ledger is intact and holds at least `expected` events.
pub fn verify(db: &Database, expected: u64, hash_threads: Option<usize>) -> anyhow::Result<u64> {
    // The chain alone: the target is stated for it. (`heliosdb verify` also checks the
    // `__audit_log` index entries, a second pass.)
    let mut options = audit::VerifyOptions {
        check_indexes: false,
        ..audit::VerifyOptions::default()
    };
    if let Some(threads) = hash_threads {
        options.hash_threads = threads;
    }
    let report = audit::verify_with(db.backend(), options)?;
    if let Some(problem) = &report.problem {
        bail!("ledger not intact: {problem}");
    }
    if report.events_checked < expected {
        bail!(
            "verified {} events, expected {expected}",
            report.events_checked
        );
    }
    Ok(report.events_checked)
}
