//! GDPR compliance reporter over several service databases: the right of access (Art. 15),
//! the verification of an erasure (Art. 17) and the record of processing (Art. 30), with
//! each service's audit chain verified. Run with
//! `cargo run --example gdpr_reporter [-- --dir DIR] [--json]`.
//!
//! First three services (`accounts`, `orders`, `support`), each its own database with the
//! `gdpr` preset, process the personal data of three customers through parameterised
//! statements, and one customer is erased everywhere. Then the reporter opens each service
//! and answers from its audit trail. It only reads — SELECT statements and library reads
//! (`verify`, `subject_access`) — and its SELECTs and subject lookups are recorded in each
//! service's trail like any other access to personal data.

use anyhow::{Context, bail};
use heliosdb_lite::audit::{AuditEvent, EventClass, ParamCapture, RedactionMode};
use heliosdb_lite::audit::{is_system_table, redact, rfc3339_micros};
use heliosdb_lite::{Config, Database, Rows, Session, SessionInfo, params};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// The configuration every service is opened with, installed as `<service>/heliosdb.toml`.
const CONFIG: &str = include_str!("heliosdb.toml");

/// The user and application the reporter's reads are recorded under.
pub const REPORTER: &str = "gdpr-reporter";
/// The subject whose access request the example answers.
pub const ALICE: &str = "alice@example.com";
/// A customer who stays.
pub const BOB: &str = "bob@example.com";
/// The customer who exercises the right to erasure.
pub const CAROL: &str = "carol@example.com";

/// The data subjects: e-mail (the subject id), name, phone, address.
pub const CUSTOMERS: [[&str; 4]; 3] = [
    [ALICE, "Alice Adams", "+49 30 5550101", "Linden 1, Berlin"],
    [BOB, "Bob Brown", "+33 1 5550202", "Rivoli 12, Paris"],
    [CAROL, "Carol Clark", "+34 91 5550303", "Gran Via 3, Madrid"],
];

/// A simulated service: its directory, who it acts as, its table, and what it does.
pub struct Service {
    /// Directory and database name.
    pub name: &'static str,
    /// The user its statements are recorded under.
    pub user: &'static str,
    /// The application its statements are recorded under.
    pub application: &'static str,
    /// Its one table of personal data.
    pub table: &'static str,
    workload: fn(&mut Session) -> heliosdb_lite::Result<()>,
}

/// The services of the simulation.
pub const SERVICES: [Service; 3] = [
    Service {
        name: "accounts",
        user: "accounts-api",
        application: "accounts",
        table: "customer",
        workload: accounts,
    },
    Service {
        name: "orders",
        user: "checkout",
        application: "orders",
        table: "purchase",
        workload: orders,
    },
    Service {
        name: "support",
        user: "agent.kim",
        application: "helpdesk",
        table: "ticket",
        workload: support,
    },
];

/// Every customer signs up and signs in; Alice changes her phone number.
fn accounts(s: &mut Session) -> heliosdb_lite::Result<()> {
    s.execute(
        "CREATE TABLE customer (email TEXT PRIMARY KEY, name TEXT, phone TEXT, since DATE)",
        &[],
    )?;
    for [email, name, phone, _] in CUSTOMERS {
        s.execute(
            "INSERT INTO customer VALUES ($1, $2, $3, DATE '2024-05-01')",
            &params![email, name, phone],
        )?;
        s.query(
            "SELECT name FROM customer WHERE email = $1",
            &params![email],
        )?;
    }
    let update = "UPDATE customer SET phone = $1 WHERE email = $2";
    s.execute(update, &params!["+49 30 5550199", ALICE])?;
    Ok(())
}

/// Four orders, two of them Alice's; Alice looks at her order history.
fn orders(s: &mut Session) -> heliosdb_lite::Result<()> {
    s.execute(
        "CREATE TABLE purchase (id INTEGER PRIMARY KEY, email TEXT, item TEXT, \
         amount INTEGER, ship_to TEXT)",
        &[],
    )?;
    let orders = [
        (0, "kettle", 39),
        (1, "lamp", 25),
        (0, "teapot", 18),
        (2, "desk", 240),
    ];
    for (id, (customer, item, amount)) in (1..).zip(orders) {
        let [email, _, _, address] = CUSTOMERS[customer];
        s.execute(
            "INSERT INTO purchase VALUES ($1, $2, $3, $4, $5)",
            &params![id, email, item, amount, address],
        )?;
    }
    let history = "SELECT id, item, amount FROM purchase WHERE email = $1";
    s.query(history, &params![ALICE])?;
    Ok(())
}

/// One ticket per customer; Alice's is answered and closed.
fn support(s: &mut Session) -> heliosdb_lite::Result<()> {
    s.execute(
        "CREATE TABLE ticket (id INTEGER PRIMARY KEY, email TEXT, body TEXT, status TEXT)",
        &[],
    )?;
    let bodies = ["My kettle leaks", "Where is my lamp?", "Close my account"];
    for (id, ([email, ..], body)) in (1..).zip(CUSTOMERS.into_iter().zip(bodies)) {
        s.execute(
            "INSERT INTO ticket VALUES ($1, $2, $3, 'open')",
            &params![id, email, body],
        )?;
    }
    s.execute(
        "UPDATE ticket SET body = $1, status = 'closed' WHERE id = $2 AND email = $3",
        &params!["My kettle leaks. Replacement sent.", 1, ALICE],
    )?;
    Ok(())
}

/// Opens the service whose `heliosdb.toml` is in `dir` — `read_only` for the reporter, so
/// the engine refuses any write. The database is named after the directory, so each event
/// records the service it belongs to.
pub fn open(dir: &Path, read_only: bool) -> anyhow::Result<(Config, Database)> {
    let config = Config::from_file(dir.join("heliosdb.toml"))?;
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("main");
    let builder = Database::builder().config(&config).name(name);
    let builder = if read_only {
        builder.read_only()
    } else {
        builder
    };
    let db = builder.open();
    let db = db.with_context(|| format!("cannot open {}", dir.display()))?;
    Ok((config, db))
}

/// Creates the services under `root` (`root/<service>/heliosdb.toml`, the database in
/// `root/<service>/data`), runs their workloads and closes them.
pub fn simulate(root: &Path) -> anyhow::Result<()> {
    for service in &SERVICES {
        let dir = root.join(service.name);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("heliosdb.toml"), CONFIG)?;
        let (_, db) = open(&dir, false)?;
        let info = SessionInfo::new(service.user).application(service.application);
        (service.workload)(&mut db.session(info))
            .with_context(|| format!("service {}", service.name))?;
    }
    Ok(())
}

/// Erases the data subject `email` in the named services the way the engine implements
/// it: the subject's rows are deleted, then `erase_subject` destroys its key, so its
/// personal data in the audit trail can no longer be read, and clears the deleted rows
/// from every file of the database, journal included.
pub fn erase(root: &Path, email: &str, services: &[&str]) -> anyhow::Result<()> {
    for service in SERVICES.iter().filter(|s| services.contains(&s.name)) {
        let dir = root.join(service.name);
        {
            let (_, db) = open(&dir, false)?;
            let mut session = db.session(SessionInfo::new("privacy-team").application("erasure"));
            let delete = format!("DELETE FROM {} WHERE email = $1", service.table);
            session.execute(&delete, &params![email])?;
        } // the erasure needs every handle closed: it seals the journal between two opens
        heliosdb_lite::erase_subject(
            || open(&dir, false).map(|(_, db)| db),
            email,
            "privacy-team",
        )?;
    }
    Ok(())
}

/// Simulates the services in `workdir/services`, erases [`CAROL`] everywhere, then
/// reports on [`ALICE`]'s access request and [`CAROL`]'s erasure.
pub fn run(workdir: &Path) -> anyhow::Result<Report> {
    let root = workdir.join("services");
    if root
        .read_dir()
        .is_ok_and(|mut entries| entries.next().is_some())
    {
        bail!("{} is not empty: give an empty --dir", root.display());
    }
    simulate(&root)?;
    erase(&root, CAROL, &SERVICES.map(|s| s.name))?;
    report(&root, ALICE, CAROL)
}

/// The report over every service.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The subject of the access request.
    pub subject: String,
    /// The subject whose erasure is verified.
    pub erased: String,
    /// One report per service, by name.
    pub services: Vec<ServiceReport>,
}

/// What the reporter found in one service.
#[derive(Debug, Serialize)]
pub struct ServiceReport {
    /// The service (its directory name).
    pub service: String,
    /// The audit chain's verification (`Database::verify`).
    pub chain: Chain,
    /// Art. 15: the access subject's events and the data held about it.
    pub access: Access,
    /// Art. 17: the erasure check.
    pub erasure: Erasure,
    /// Art. 30: the record of processing.
    pub record: ProcessingRecord,
    /// The reporter's own statements as this service recorded them: `(seq, class, table)`.
    pub own_reads: Vec<(i64, String, String)>,
}

/// Outcome of `Database::verify`.
#[derive(Debug, Serialize)]
pub struct Chain {
    /// No problem found.
    pub intact: bool,
    /// Events that passed every check.
    pub events_checked: u64,
    /// The first problem, with its seq.
    pub problem: Option<String>,
}

/// One event touching a data subject.
#[derive(Debug, Serialize)]
pub struct SubjectEvent {
    /// Ledger position.
    pub seq: u64,
    /// When (RFC 3339, UTC).
    pub timestamp: String,
    /// Who acted: `user (application)`.
    pub by: String,
    /// The category: the engine's class, operation and tables (`DML INSERT customer`).
    pub category: String,
    /// Whether it succeeded.
    pub success: bool,
    /// The statement's parameters; the subject's own values in clear while its key exists.
    pub params: Vec<String>,
}

/// Art. 15 in one service.
#[derive(Debug, Serialize)]
pub struct Access {
    /// Every event touching the subject, oldest first.
    pub events: Vec<SubjectEvent>,
    /// Event counts by category.
    pub categories: BTreeMap<String, usize>,
    /// A copy of the rows held about the subject now (Art. 15(3)): table, `column=value`s.
    pub held: Vec<(String, Vec<String>)>,
}

/// Art. 17 in one service.
#[derive(Debug, Serialize)]
pub struct Erasure {
    /// Events touching the subject up to its erasure (all of them if it was not erased).
    pub events: usize,
    /// Successful DELETEs of the subject's rows among them.
    pub deletes: usize,
    /// Rows still holding the subject, by query.
    pub rows_left: usize,
    /// Seq of the `FORGET_SUBJECT` event that destroyed the subject's key.
    pub forgotten_at: Option<u64>,
    /// Events up to the erasure whose personal data still reads in clear.
    pub readable: usize,
    /// Nothing of the subject is left — no rows, nothing readable — and, if the service
    /// held anything, the deletion and the key's destruction are on record.
    pub passed: bool,
}

/// Art. 30 for one service.
#[derive(Debug, Serialize)]
pub struct ProcessingRecord {
    /// The tables of personal data, with who processed them and how.
    pub tables: Vec<TableRecord>,
    /// `audit.retention_days` in force.
    pub retention_days: u64,
    /// The configuration layer that set it (`preset gdpr`, `file ...`).
    pub retention_source: String,
    /// Whether events past the retention period are pruned when the database opens.
    pub auto_prune: bool,
    /// Redaction of personal data in the trail: `off`, `hash` or `encrypt`.
    pub redaction: String,
    /// The columns redacted (`audit.redact_columns`); the first names the data subject.
    pub redacted_columns: Vec<String>,
    /// Whether other parameters are recorded as given (else as `?`).
    pub parameters_recorded: bool,
}

/// One table of personal data: its columns from the catalog, its processing from the trail.
#[derive(Debug, Serialize)]
pub struct TableRecord {
    /// The table.
    pub table: String,
    /// Its personal-data columns (those in `audit.redact_columns`).
    pub columns: Vec<String>,
    /// `user (application)` of everyone who read or wrote it successfully.
    pub processors: BTreeSet<String>,
    /// Successful operations on it, with counts.
    pub operations: BTreeMap<String, i64>,
}

/// Reports on every service under `root` (each directory holding a `heliosdb.toml`): the
/// access request of `subject`, the erasure of `erased`, the record of processing.
pub fn report(root: &Path, subject: &str, erased: &str) -> anyhow::Result<Report> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .with_context(|| format!("cannot list {}", root.display()))?
        .filter_map(|entry| Some(entry.ok()?.path()))
        .filter(|dir| dir.join("heliosdb.toml").is_file())
        .collect();
    dirs.sort();
    let services = dirs.iter().map(|dir| report_service(dir, subject, erased));
    Ok(Report {
        subject: subject.to_owned(),
        erased: erased.to_owned(),
        services: services.collect::<anyhow::Result<_>>()?,
    })
}

fn report_service(dir: &Path, subject: &str, erased: &str) -> anyhow::Result<ServiceReport> {
    let (config, db) = open(dir, true)?;
    let chain = match db.verify() {
        Ok(report) => Chain {
            intact: report.is_intact(),
            events_checked: report.events_checked,
            problem: report.problem.map(|p| p.to_string()),
        },
        Err(error) => Chain {
            intact: false,
            events_checked: 0,
            problem: Some(error.to_string()),
        },
    };
    let mut session = db.session(SessionInfo::new(REPORTER).application(REPORTER));
    let tables = personal_tables(&db, &mut session)?;
    let access = access(&db, &mut session, &tables, subject)?;
    let erasure = erasure(&db, &mut session, &tables, erased)?;
    let record = processing_record(&config, &db, &mut session, tables)?;
    let mine = "SELECT id, class, target FROM __audit_log WHERE \"user\" = $1";
    let own_reads = session.query_as(mine, &params![REPORTER])?;
    Ok(ServiceReport {
        service: db.options().name.clone(),
        chain,
        access,
        erasure,
        record,
        own_reads,
    })
}

/// The tables with a column of `audit.redact_columns`, from the catalog.
fn personal_tables(db: &Database, s: &mut Session) -> anyhow::Result<Vec<TableRecord>> {
    let redacted = &db.options().audit.redaction.columns;
    let columns: Vec<(String, String)> = s.query_as(
        "SELECT TABLE_NAME, COLUMN_NAME FROM GLUE_TABLE_COLUMNS",
        &[],
    )?;
    let mut tables: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (table, column) in columns {
        if !is_system_table(&table) && redacted.iter().any(|c| c.eq_ignore_ascii_case(&column)) {
            tables.entry(table).or_default().push(column);
        }
    }
    let tables = tables.into_iter().map(|(table, columns)| TableRecord {
        table,
        columns,
        processors: BTreeSet::new(),
        operations: BTreeMap::new(),
    });
    Ok(tables.collect())
}

/// The rows whose subject column (the first of `audit.redact_columns`) is `subject`, in
/// every table that has it: one SELECT per table, itself recorded as an access to the
/// subject's data.
fn subject_rows(
    db: &Database,
    s: &mut Session,
    tables: &[TableRecord],
    subject: &str,
) -> anyhow::Result<Vec<(String, Rows)>> {
    let Some(column) = db.options().audit.redaction.columns.first() else {
        return Ok(Vec::new());
    };
    let holding = tables.iter().filter(|t| t.columns.contains(column));
    holding
        .map(|t| {
            let sql = format!("SELECT * FROM {} WHERE {column} = $1", t.table);
            Ok((t.table.clone(), s.query(&sql, &params![subject])?))
        })
        .collect()
}

/// Art. 15: the subject's events by the engine's subject lookup — itself recorded, as a
/// SYSTEM `SUBJECT_ACCESS` event naming the subject by its token and the reporter as who
/// asked — then a copy of the rows held about it.
fn access(
    db: &Database,
    s: &mut Session,
    tables: &[TableRecord],
    subject: &str,
) -> anyhow::Result<Access> {
    let (_, events) = redact::subject_access(db, subject, REPORTER)?;
    let events: Vec<SubjectEvent> = events
        .into_iter()
        .map(|e| SubjectEvent {
            seq: e.seq,
            timestamp: rfc3339_micros(e.timestamp_us).unwrap_or_default(),
            by: format!("{} ({})", e.user, e.application),
            category: format!(
                "{} {} {}",
                e.class.as_str(),
                e.operation,
                e.targets.join(",")
            ),
            success: e.success,
            params: e.params,
        })
        .collect();
    let mut categories = BTreeMap::new();
    for e in &events {
        *categories.entry(e.category.clone()).or_default() += 1;
    }
    let mut held = Vec::new();
    for (table, rows) in subject_rows(db, s, tables, subject)? {
        for row in &rows.rows {
            let values = rows.columns.iter().zip(row);
            let values = values.map(|(c, v)| format!("{c}={}", String::from(v)));
            held.push((table.clone(), values.collect()));
        }
    }
    Ok(Access {
        events,
        categories,
        held,
    })
}

/// Art. 17: the subject's events up to its erasure, read before the query for rows left —
/// that query names the subject again, after the erasure.
fn erasure(
    db: &Database,
    s: &mut Session,
    tables: &[TableRecord],
    subject: &str,
) -> anyhow::Result<Erasure> {
    let events = redact::subject_events(db.backend(), subject)?;
    let forgotten_at = events
        .iter()
        .rev()
        .find(|e| e.class == EventClass::System && e.operation == redact::FORGET_OPERATION)
        .map(|e| e.seq);
    let before: Vec<&AuditEvent> = events
        .iter()
        .filter(|e| forgotten_at.is_none_or(|seq| e.seq < seq))
        .collect();
    let deletes = before
        .iter()
        .filter(|e| e.class == EventClass::Dml && e.operation == "DELETE")
        .filter(|e| e.success && e.rows > 0)
        .count();
    // `subject_events` shows the subject's values in clear while its key exists.
    let in_clear = |e: &&&AuditEvent| {
        e.query.contains(subject) || e.params.iter().any(|p| p.contains(subject))
    };
    let readable = before.iter().filter(in_clear).count();
    let rows = subject_rows(db, s, tables, subject)?;
    let rows_left = rows.iter().map(|(_, rows)| rows.len()).sum();
    let on_record = before.is_empty() || (deletes > 0 && forgotten_at.is_some());
    Ok(Erasure {
        events: before.len(),
        deletes,
        rows_left,
        forgotten_at,
        readable,
        passed: rows_left == 0 && readable == 0 && on_record,
    })
}

/// Art. 30: who read or wrote each table of personal data and how (SQL over
/// `__audit_log`), and the retention and redaction in force (the configuration).
fn processing_record(
    config: &Config,
    db: &Database,
    s: &mut Session,
    mut tables: Vec<TableRecord>,
) -> anyhow::Result<ProcessingRecord> {
    let rows = s.query(
        "SELECT target, \"user\" AS who, application, operation, COUNT(*) AS n \
         FROM __audit_log WHERE class IN ('DML', 'SELECT') AND success = true \
         GROUP BY target, \"user\", application, operation",
        &[],
    )?;
    for row in &rows {
        let target: String = row.get("target")?;
        let by = format!(
            "{} ({})",
            row.get::<String>("who")?,
            row.get::<String>("application")?
        );
        let operation: String = row.get("operation")?;
        let touched = |t: &&mut TableRecord| target.split(',').any(|name| name == t.table);
        for table in tables.iter_mut().filter(touched) {
            table.processors.insert(by.clone());
            *table.operations.entry(operation.clone()).or_default() += row.get::<i64>("n")?;
        }
    }
    let options = db.options();
    let redaction = &options.audit.redaction;
    Ok(ProcessingRecord {
        tables,
        retention_days: options.retention.retention_days,
        retention_source: config.source("audit.retention_days").to_string(),
        auto_prune: options.retention.auto_prune,
        redaction: match (redaction.is_active(), redaction.mode) {
            (false, _) => "off",
            (true, RedactionMode::Hash) => "hash",
            (true, RedactionMode::Encrypt) => "encrypt per data subject",
        }
        .to_owned(),
        redacted_columns: redaction.columns.clone(),
        parameters_recorded: options.audit.params == ParamCapture::Values,
    })
}

/// `items` joined with `, `.
fn list<T: fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    let items: Vec<String> = items.into_iter().map(|i| i.to_string()).collect();
    items.join(", ")
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let services = list(self.services.iter().map(|s| &s.service));
        writeln!(
            f,
            "GDPR report over {} services: {services}",
            self.services.len()
        )?;
        writeln!(
            f,
            "The reporter only reads: SELECTs and library reads (verify, subject_access)."
        )?;
        writeln!(f, "\nAudit chains (Database::verify)")?;
        for s in &self.services {
            match &s.chain.problem {
                None => writeln!(
                    f,
                    "  {}: intact, {} events",
                    s.service, s.chain.events_checked
                )?,
                Some(problem) => writeln!(f, "  {}: NOT INTACT: {problem}", s.service)?,
            }
        }
        writeln!(f, "\nArt. 15 right of access: {}", self.subject)?;
        for s in &self.services {
            writeln!(f, "  {}: {} events", s.service, s.access.events.len())?;
            for (category, n) in &s.access.categories {
                writeln!(f, "    {n} x {category}")?;
            }
            for e in &s.access.events {
                let ok = if e.success { "ok" } else { "FAILED" };
                let (seq, at, by, what) = (e.seq, &e.timestamp, &e.by, &e.category);
                writeln!(f, "    #{seq} {at} {by}: {what} {ok} {:?}", e.params)?;
            }
            for (table, values) in &s.access.held {
                writeln!(f, "    held now in {table}: {}", list(values))?;
            }
        }
        let verdict = |passed: bool| if passed { "PASSED" } else { "FAILED" };
        let erased = self.services.iter().all(|s| s.erasure.passed);
        writeln!(
            f,
            "\nArt. 17 right to erasure: {} {}",
            self.erased,
            verdict(erased)
        )?;
        for s in &self.services {
            let e = &s.erasure;
            let key = e
                .forgotten_at
                .map_or("key NOT forgotten".to_owned(), |seq| {
                    format!("key forgotten (#{seq})")
                });
            writeln!(
                f,
                "  {}: {}: {} DELETE logged, {} rows left, {key}, {} of {} events readable",
                s.service,
                verdict(e.passed),
                e.deletes,
                e.rows_left,
                e.readable,
                e.events
            )?;
        }
        writeln!(f, "\nArt. 30 record of processing")?;
        for s in &self.services {
            let r = &s.record;
            let prune = if r.auto_prune { "on" } else { "off" };
            let params = if r.parameters_recorded {
                "as given"
            } else {
                "as ?"
            };
            writeln!(
                f,
                "  {}: retention {} days ({}), auto-prune {prune}; redaction {} of {}; \
                 other parameters {params}",
                s.service,
                r.retention_days,
                r.retention_source,
                r.redaction,
                list(&r.redacted_columns)
            )?;
            for t in &r.tables {
                writeln!(f, "    {} ({})", t.table, list(&t.columns))?;
                writeln!(f, "      by: {}", list(&t.processors))?;
                let ops = t.operations.iter().map(|(op, n)| format!("{op} {n}"));
                writeln!(f, "      operations: {}", list(ops))?;
            }
        }
        writeln!(
            f,
            "\nThe reporter's own statements, on record in each service"
        )?;
        for s in &self.services {
            let reads = s.own_reads.iter();
            let kind = if reads.clone().all(|(_, class, _)| class == "SELECT") {
                "all SELECT"
            } else {
                "NOT ONLY READS"
            };
            let reads = reads.map(|(seq, class, table)| format!("#{seq} {class} {table}"));
            writeln!(f, "  {}: {kind}: {}", s.service, list(reads))?;
        }
        Ok(())
    }
}

fn main() -> anyhow::Result<()> {
    let (mut dir, mut json) = (None, false);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--dir" => dir = Some(PathBuf::from(args.next().context("--dir needs a path")?)),
            "--json" => json = true,
            other => bail!("unknown argument {other}; usage: gdpr_reporter [--dir DIR] [--json]"),
        }
    }
    let temp = tempfile::tempdir()?;
    let report = run(dir.as_deref().unwrap_or(temp.path()))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    Ok(())
}
