//! Forensic investigation from the audit trail. An online shop's database is seeded with a
//! day's normal work and an insider incident; then, for a time window (and optionally one
//! table), the investigation reconstructs the timeline with plain SQL over `__audit_log`,
//! flags anomalies, and counts the rows each user changed in each table. It concludes
//! nothing when the trail does not verify.
//!
//! Run with `cargo run --example forensic [-- --dir DIR --table NAME --utc-offset HOURS]`.

use anyhow::{Context, bail, ensure};
use clap::Parser as _;
use heliosdb_lite::chrono::{DateTime, FixedOffset, NaiveTime, Offset, TimeDelta, Timelike, Utc};
use heliosdb_lite::{Config, Database, FromRow, Row, Session, SessionInfo, params};
use sqlparser::ast::{Delete, Statement};
use sqlparser::dialect::{PostgreSqlDialect, SQLiteDialect};
use sqlparser::parser::Parser;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// The example's configuration, installed as `heliosdb.toml` in the working directory.
const CONFIG: &str = include_str!("heliosdb.toml");

/// Customers and orders in the shop before the window opens.
const CUSTOMERS: i64 = 150;
const ORDERS: i64 = 240;

/// One step of the insider's session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// A login with a wrong password, recorded by the application as a failed event.
    FailedLogin,
    /// A successful login.
    Login,
    /// A statement the database refuses.
    Attempt(&'static str),
    /// A statement that succeeds.
    Run(&'static str),
}

/// What the insider does, in order: guesses a password, tries to erase or rewrite the audit
/// trail and to reach a table that is not there, then changes the schema and destroys data.
pub const INSIDER: [Action; 14] = [
    Action::FailedLogin,
    Action::FailedLogin,
    Action::FailedLogin,
    Action::Login,
    Action::Attempt("DELETE FROM __audit_log"),
    Action::Attempt("UPDATE __audit_log SET user = 'bob'"),
    Action::Attempt("INSERT INTO payroll VALUES (1, 'mallory', 999999)"),
    Action::Attempt("TRUNCATE TABLE orders"),
    Action::Run("ALTER TABLE customers ADD COLUMN note TEXT"),
    Action::Run("DELETE FROM coupons"),
    Action::Run("DROP TABLE coupons"),
    Action::Run("UPDATE customers SET tier = 'free'"),
    Action::Run("DELETE FROM customers WHERE id > 20"),
    Action::Run("DELETE FROM orders"),
];

/// The insider's user name.
pub const INSIDER_USER: &str = "mallory";

/// What [`seed`] did: the window around the day's work, and the seq each insider action
/// got in the ledger.
#[derive(Clone, Debug)]
pub struct Seeded {
    /// From just after the schema was set up to just after the incident.
    pub window: (DateTime<Utc>, DateTime<Utc>),
    /// Each [`INSIDER`] action with the seq of its audit event.
    pub insider: Vec<(Action, u64)>,
}

impl Seeded {
    /// The seq of the first occurrence of `action`.
    pub fn seq(&self, action: Action) -> Option<u64> {
        self.insider
            .iter()
            .find(|(a, _)| *a == action)
            .map(|(_, s)| *s)
    }
}

/// What is investigated: events with `from <= timestamp < to`, and when `table` is set only
/// those whose targets include it.
#[derive(Clone, Debug)]
pub struct Scope {
    /// Start of the window (inclusive).
    pub from: DateTime<Utc>,
    /// End of the window (exclusive).
    pub to: DateTime<Utc>,
    /// The one table to look at; every table when `None`.
    pub table: Option<String>,
}

impl Scope {
    /// True when `event` concerns the scope's table (any event when there is none).
    pub fn includes(&self, event: &Event) -> bool {
        self.table
            .as_ref()
            .is_none_or(|t| event.targets.contains(t))
    }
}

/// Working hours in a fixed UTC offset; DDL outside them is flagged.
#[derive(Clone, Copy, Debug)]
pub struct BusinessHours {
    /// Local start of the working day (inclusive).
    pub start: NaiveTime,
    /// Local end of the working day (exclusive); before `start` for a day that spans midnight.
    pub end: NaiveTime,
    /// The offset local time is taken in.
    pub utc_offset: FixedOffset,
}

impl BusinessHours {
    /// 08:00–18:00 at `utc_offset`.
    pub fn office(utc_offset: FixedOffset) -> Self {
        BusinessHours {
            start: NaiveTime::MIN + TimeDelta::hours(8),
            end: NaiveTime::MIN + TimeDelta::hours(18),
            utc_offset,
        }
    }

    /// 08:00–18:00 in the UTC offset where the current hour is `hour`. Audit timestamps
    /// are real, so this is how the example (and its test) places the incident it seeds
    /// right now at night — `office_where_now_is(3)` — or in the middle of a working day.
    pub fn office_where_now_is(hour: u32) -> Self {
        let now = i64::from(Utc::now().hour());
        let hours = (i64::from(hour) - now).rem_euclid(24);
        // Within -11..=12 hours, so always a valid offset.
        let hours = if hours > 12 { hours - 24 } else { hours };
        let offset = i32::try_from(hours * 3600)
            .ok()
            .and_then(FixedOffset::east_opt);
        Self::office(offset.unwrap_or(Utc.fix()))
    }

    /// `time` in this offset.
    pub fn local(&self, time: DateTime<Utc>) -> DateTime<FixedOffset> {
        time.with_timezone(&self.utc_offset)
    }

    /// True when `time` falls within working hours.
    pub fn contains(&self, time: DateTime<Utc>) -> bool {
        let t = self.local(time).time();
        if self.start <= self.end {
            self.start <= t && t < self.end
        } else {
            self.start <= t || t < self.end
        }
    }
}

impl fmt::Display for BusinessHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hm = "%H:%M";
        write!(
            f,
            "{}-{} at UTC{}",
            self.start.format(hm),
            self.end.format(hm),
            self.utc_offset
        )
    }
}

/// The thresholds of the anomaly rules.
#[derive(Clone, Debug)]
pub struct Rules {
    /// A DELETE or UPDATE changing more rows than this in one statement is a mass change.
    pub mass_rows: u64,
    /// This many failed events by one user ...
    pub burst_failures: usize,
    /// ... within this long are a burst of failures.
    pub burst_window: TimeDelta,
    /// DDL outside these hours is flagged.
    pub business_hours: BusinessHours,
}

impl Default for Rules {
    /// More than 100 rows; 5 failures within a minute; 08:00–18:00 UTC.
    fn default() -> Self {
        Rules {
            mass_rows: 100,
            burst_failures: 5,
            burst_window: TimeDelta::minutes(1),
            business_hours: BusinessHours::office(Utc.fix()),
        }
    }
}

/// One `__audit_log` row as the investigation reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Ledger seq (`id`).
    pub seq: u64,
    /// When it happened.
    pub time: DateTime<Utc>,
    /// The session it happened in.
    pub session: u64,
    /// Who.
    pub user: String,
    /// The engine's class: DDL, DML, SELECT, TXN, AUTH, SYSTEM, APP.
    pub class: String,
    /// The engine's operation name: INSERT, DROP_TABLE, LOGIN, ...
    pub operation: String,
    /// Tables touched, the one written first.
    pub targets: Vec<String>,
    /// Statement text as recorded.
    pub query: String,
    /// Rows affected by DML (for DDL, objects: DROP TABLE counts tables).
    pub rows: u64,
    /// Whether it succeeded.
    pub success: bool,
}

/// The kinds of anomaly the investigation flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Anomaly {
    /// A DELETE or UPDATE changed more than [`Rules::mass_rows`] rows.
    MassChange,
    /// A DELETE or UPDATE (run or only attempted) without a WHERE clause.
    NoWhereClause,
    /// [`Rules::burst_failures`] failures by one user within [`Rules::burst_window`].
    FailureBurst,
    /// DDL (run or only attempted) outside [`Rules::business_hours`].
    OffHoursDdl,
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Anomaly::MassChange => "MASS CHANGE",
            Anomaly::NoWhereClause => "NO WHERE",
            Anomaly::FailureBurst => "FAILURE BURST",
            Anomaly::OffHoursDdl => "OFF-HOURS DDL",
        })
    }
}

/// One flagged anomaly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// What was found.
    pub anomaly: Anomaly,
    /// Who did it.
    pub user: String,
    /// The tables concerned.
    pub tables: Vec<String>,
    /// The events that show it, in order.
    pub seqs: Vec<u64>,
    /// One line of explanation.
    pub detail: String,
}

/// Rows changed by committed statements.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RowCounts {
    /// Rows inserted.
    pub inserted: u64,
    /// Rows updated.
    pub updated: u64,
    /// Rows deleted.
    pub deleted: u64,
}

impl RowCounts {
    fn add(&mut self, operation: &str, rows: u64) {
        match operation {
            "INSERT" => self.inserted += rows,
            "UPDATE" => self.updated += rows,
            "DELETE" => self.deleted += rows,
            _ => {}
        }
    }
}

/// What the investigation concluded from a verified trail.
#[derive(Clone, Debug)]
pub struct Investigation {
    /// What was looked at.
    pub scope: Scope,
    /// With which thresholds.
    pub rules: Rules,
    /// Events the verification checked (the whole ledger, not only the window).
    pub events_verified: u64,
    /// Every event in scope, in ledger order.
    pub timeline: Vec<Event>,
    /// Anomalies, by first seq.
    pub findings: Vec<Finding>,
    /// Statements in the window recorded inside a transaction that was rolled back: their
    /// rows are not counted.
    pub rolled_back: BTreeSet<u64>,
    /// DELETE and UPDATE events whose recorded text does not parse (cut by
    /// `max_query_length`, say): the WHERE rule could not be checked on them.
    pub unparsed: Vec<u64>,
    /// Rows changed per user.
    pub by_user: BTreeMap<String, RowCounts>,
    /// Rows changed per table.
    pub by_table: BTreeMap<String, RowCounts>,
}

/// The outcome of an investigation.
#[derive(Clone, Debug)]
pub enum Report {
    /// The audit trail failed verification at `seq`: nothing in it can be trusted, so there
    /// are no findings.
    Refused {
        /// The first seq that failed.
        seq: u64,
        /// What is wrong there.
        problem: String,
    },
    /// The trail verified and was investigated.
    Investigated(Box<Investigation>),
}

/// The result of [`run`]: what was seeded and what the investigation found.
#[derive(Clone, Debug)]
pub struct Demo {
    /// The seeded incident.
    pub seeded: Seeded,
    /// The investigation of its window.
    pub report: Report,
}

/// Seeds a database in `workdir` with a day's work and an incident, then investigates the
/// day's window (limited to `table` when given).
pub fn run(workdir: &Path, table: Option<&str>, rules: &Rules) -> anyhow::Result<Demo> {
    let seeded = seed(workdir)?;
    let (from, to) = seeded.window;
    let table = table.map(str::to_owned);
    let report = run_investigation(workdir, &Scope { from, to, table }, rules)?;
    Ok(Demo { seeded, report })
}

/// Opens the database `workdir/heliosdb.toml` names; `read_only` for the investigation,
/// which must not change the evidence.
fn open(workdir: &Path, read_only: bool) -> anyhow::Result<Database> {
    let config = Config::from_file(workdir.join("heliosdb.toml"))?;
    let builder = Database::builder().config(&config);
    let builder = if read_only {
        builder.read_only()
    } else {
        builder
    };
    Ok(builder.open()?)
}

/// A session of `user` from `application` at `addr`.
fn session(db: &Database, user: &str, application: &str, addr: &str) -> Session {
    db.session(
        SessionInfo::new(user)
            .application(application)
            .client_addr(addr),
    )
}

/// A session of `user`, logged in.
fn login(db: &Database, user: &str, application: &str, addr: &str) -> anyhow::Result<Session> {
    let mut session = session(db, user, application, addr);
    session.login(user)?;
    Ok(session)
}

/// Runs `sql`, which must fail: the failure is what the trail is meant to show.
fn attempt(session: &mut Session, sql: &str) -> anyhow::Result<()> {
    match session.execute(sql, &[]) {
        Ok(_) => bail!("{sql:?} was expected to fail"),
        Err(_) => Ok(()),
    }
}

/// A failed password check: the application checks passwords, the engine records the
/// rejected login (a failed AUTH `LOGIN` event naming who tried).
fn failed_login(session: &mut Session) -> anyhow::Result<()> {
    let user = session.info().user.clone();
    session.login_failed(user, "wrong password")?;
    Ok(())
}

/// A point in time strictly between the events recorded before and after it.
fn instant() -> DateTime<Utc> {
    let pause = std::time::Duration::from_millis(2);
    std::thread::sleep(pause);
    let now = Utc::now();
    std::thread::sleep(pause);
    now
}

/// Creates the shop's database in `workdir` (which must not hold one yet) and records a day
/// in it: the schema and stock before the window, then normal work by three users and the
/// insider's session.
pub fn seed(workdir: &Path) -> anyhow::Result<Seeded> {
    let data = workdir.join("data");
    ensure!(
        !data.exists(),
        "{} holds a database already",
        data.display()
    );
    std::fs::create_dir_all(workdir)?;
    let config = workdir.join("heliosdb.toml");
    std::fs::write(&config, CONFIG).with_context(|| format!("writing {}", config.display()))?;
    let db = open(workdir, false)?;

    let mut dba = login(&db, "dba", "migrations", "10.0.0.2")?;
    dba.execute(
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, email TEXT, tier TEXT);
         CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, total DECIMAL, status TEXT);
         CREATE TABLE coupons (code TEXT PRIMARY KEY, percent INTEGER);
         INSERT INTO coupons VALUES ('WELCOME', 10), ('SPRING', 15), ('VIP', 20), ('STAFF', 30)",
        &[],
    )?;
    let values = |n: i64, row: fn(i64) -> String| (1..=n).map(row).collect::<Vec<_>>().join(", ");
    let customers = values(CUSTOMERS, |id| {
        format!("({id}, 'customer {id}', 'c{id}@example.com', 'gold')")
    });
    dba.execute(&format!("INSERT INTO customers VALUES {customers}"), &[])?;
    // Every sixth order is paid and waiting to ship.
    let orders = values(ORDERS, |id| {
        let (customer, status) = (
            id % CUSTOMERS + 1,
            if id % 6 == 0 { "paid" } else { "shipped" },
        );
        format!("({id}, {customer}, {}, '{status}')", 10 + id % 90)
    });
    dba.execute(&format!("INSERT INTO orders VALUES {orders}"), &[])?;
    drop(dba);
    let from = instant();

    // alice, the storefront service: five new orders, three of them paid.
    let mut alice = login(&db, "alice", "shop-api", "10.0.0.11")?;
    for id in ORDERS + 1..=ORDERS + 5 {
        let sql = "INSERT INTO orders VALUES ($1, $2, 49.90, 'new')";
        alice.execute(sql, &params![id, id % CUSTOMERS + 1])?;
    }
    for id in ORDERS + 1..=ORDERS + 3 {
        let sql = "UPDATE orders SET status = 'paid' WHERE id = $1";
        alice.execute(sql, &params![id])?;
    }
    // bob, support: fixes an e-mail (after a typo), ships the paid orders, cancels two
    // orders, and rolls back the cancellation of a third.
    let mut bob = login(&db, "bob", "support-desk", "10.0.0.12")?;
    attempt(
        &mut bob,
        "UPDATE custmers SET email = 'ada@example.com' WHERE id = 7",
    )?;
    for sql in [
        "UPDATE customers SET email = 'ada@example.com' WHERE id = 7",
        "UPDATE orders SET status = 'shipped' WHERE status = 'paid'",
        "DELETE FROM orders WHERE id IN (244, 245)",
        "BEGIN; DELETE FROM orders WHERE id = 7; ROLLBACK",
    ] {
        bob.execute(sql, &[])?;
    }
    // carol, an analyst: one mistyped password, then reads (not recorded under SOC 2).
    let mut carol = session(&db, "carol", "bi", "10.0.0.13");
    failed_login(&mut carol)?;
    carol.login("carol")?;
    carol.query(
        "SELECT status, COUNT(*) AS n FROM orders GROUP BY status",
        &[],
    )?;

    let mut mallory = session(&db, INSIDER_USER, "admin-console", "203.0.113.9");
    let mut insider = Vec::with_capacity(INSIDER.len());
    for action in INSIDER {
        match action {
            Action::FailedLogin => failed_login(&mut mallory)?,
            Action::Login => mallory.login(INSIDER_USER)?,
            Action::Attempt(sql) => attempt(&mut mallory, sql)?,
            Action::Run(sql) => {
                mallory.execute(sql, &[])?;
            }
        }
        insider.push((action, db.audit_head().seq));
    }
    let to = instant();
    Ok(Seeded {
        window: (from, to),
        insider,
    })
}

/// The events in scope, and every transaction boundary in the window (to tell which
/// statements were rolled back), in ledger order: plain SQL on `__audit_log`. The target
/// column holds every table a statement touched, joined by commas, so `LIKE` narrows the
/// rows and [`Scope::includes`] then matches the exact name.
const EVENTS_SQL: &str = "SELECT id, timestamp, session_id, user, class, operation, target,
        query, affected_rows, success
    FROM __audit_log
    WHERE timestamp >= $1 AND timestamp < $2 AND (target LIKE $3 OR class = 'TXN')
    ORDER BY id";

fn events(db: &Database, scope: &Scope) -> anyhow::Result<Vec<Event>> {
    let mut session = db.session(SessionInfo::new("investigator").application("forensic"));
    let pattern = scope
        .table
        .as_ref()
        .map_or("%".into(), |t| format!("%{t}%"));
    let p = params![scope.from.naive_utc(), scope.to.naive_utc(), pattern];
    Ok(session.query_as(EVENTS_SQL, &p)?)
}

impl FromRow for Event {
    fn from_row(row: &Row<'_>) -> heliosdb_lite::Result<Self> {
        let target: String = row.get("target")?;
        Ok(Event {
            seq: row.get("id")?,
            time: row.get("timestamp")?,
            session: row.get("session_id")?,
            user: row.get("user")?,
            class: row.get("class")?,
            operation: row.get("operation")?,
            targets: target
                .split(',')
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect(),
            query: row.get("query")?,
            rows: row.get("affected_rows")?,
            success: row.get("success")?,
        })
    }
}

/// Opens the database in `workdir` (set up by [`seed`]), verifies its whole audit trail and,
/// only if it is intact, investigates `scope`.
pub fn run_investigation(workdir: &Path, scope: &Scope, rules: &Rules) -> anyhow::Result<Report> {
    let db = open(workdir, true)?;
    let verification = db.verify()?;
    if let Some(problem) = verification.problem {
        let (seq, problem) = (problem.seq, problem.kind.to_string());
        return Ok(Report::Refused { seq, problem });
    }
    let events = events(&db, scope)?;
    let rolled_back = rolled_back(&events);
    let timeline: Vec<Event> = events.into_iter().filter(|e| scope.includes(e)).collect();
    let (mut findings, unparsed) = statement_findings(&timeline, &rolled_back, rules);
    findings.extend(failure_bursts(&timeline, rules));
    findings.sort_by(|a, b| (a.seqs.first(), a.anomaly).cmp(&(b.seqs.first(), b.anomaly)));
    let (mut by_user, mut by_table) = (BTreeMap::new(), BTreeMap::new());
    let committed = timeline
        .iter()
        .filter(|e| e.success && !rolled_back.contains(&e.seq));
    for e in committed.filter(|e| e.class == "DML") {
        // The engine lists the table a statement writes first, then those it only reads.
        let Some(table) = e.targets.first() else {
            continue;
        };
        for counts in [by_user.entry(e.user.clone()), by_table.entry(table.clone())] {
            counts
                .or_insert_with(RowCounts::default)
                .add(&e.operation, e.rows);
        }
    }
    Ok(Report::Investigated(Box::new(Investigation {
        scope: scope.clone(),
        rules: rules.clone(),
        events_verified: verification.events_checked,
        timeline,
        findings,
        rolled_back,
        unparsed,
        by_user,
        by_table,
    })))
}

/// Seqs of statements recorded inside a transaction that ended in ROLLBACK. A transaction's
/// events are sealed together when it ends, so they follow its BEGIN in the ledger.
fn rolled_back(events: &[Event]) -> BTreeSet<u64> {
    let (mut open, mut undone) = (BTreeMap::<u64, Vec<u64>>::new(), BTreeSet::new());
    for e in events {
        match (e.class.as_str(), e.operation.as_str()) {
            ("TXN", "BEGIN") => {
                open.insert(e.session, Vec::new());
            }
            ("TXN", "COMMIT") => {
                open.remove(&e.session);
            }
            ("TXN", "ROLLBACK") => undone.extend(open.remove(&e.session).unwrap_or_default()),
            _ => {
                if let Some(txn) = open.get_mut(&e.session) {
                    txn.push(e.seq);
                }
            }
        }
    }
    undone
}

/// The rules about one event: mass changes, DELETE/UPDATE without WHERE, DDL out of
/// hours. Also returns the DELETE/UPDATE events whose text does not parse.
fn statement_findings(
    events: &[Event],
    rolled_back: &BTreeSet<u64>,
    rules: &Rules,
) -> (Vec<Finding>, Vec<u64>) {
    let (mut findings, mut unparsed) = (Vec::new(), Vec::new());
    let mut flag = |e: &Event, anomaly, detail: String| {
        let (user, tables, seqs) = (e.user.clone(), e.targets.clone(), vec![e.seq]);
        findings.push(Finding {
            anomaly,
            user,
            tables,
            seqs,
            detail,
        });
    };
    let outcome = |e: &Event| if e.success { "" } else { " (failed)" };
    for e in events {
        let table = e.targets.first().map_or("?", String::as_str);
        if e.class == "DML" && matches!(e.operation.as_str(), "DELETE" | "UPDATE") {
            let committed = e.success && !rolled_back.contains(&e.seq);
            if committed && e.rows > rules.mass_rows {
                let detail = format!("{} of {} rows of {table} at once", e.operation, e.rows);
                flag(e, Anomaly::MassChange, detail);
            }
            match has_where(&e.query) {
                Some(true) => {}
                Some(false) => {
                    let detail = format!("{} on every row of {table}{}", e.operation, outcome(e));
                    flag(e, Anomaly::NoWhereClause, detail);
                }
                None => unparsed.push(e.seq),
            }
        }
        if e.class == "DDL" && !rules.business_hours.contains(e.time) {
            let at = rules.business_hours.local(e.time).format("%H:%M");
            let detail = format!("{} {table} at {at} local{}", e.operation, outcome(e));
            flag(e, Anomaly::OffHoursDdl, detail);
        }
    }
    (findings, unparsed)
}

/// Whether a recorded DELETE or UPDATE has a WHERE clause, read from its parsed text;
/// `None` when the text does not parse as one such statement. Parsed like the engine
/// parses: SQLite's dialect first, then PostgreSQL's.
fn has_where(sql: &str) -> Option<bool> {
    let statements = Parser::parse_sql(&SQLiteDialect {}, sql)
        .or_else(|_| Parser::parse_sql(&PostgreSqlDialect {}, sql))
        .ok()?;
    match statements.as_slice() {
        [Statement::Delete(Delete { selection, .. }) | Statement::Update { selection, .. }] => {
            Some(selection.is_some())
        }
        _ => None,
    }
}

/// Runs of at least `burst_failures` failed events by one user, each run of that many
/// within `burst_window`; overlapping runs are one burst.
fn failure_bursts(events: &[Event], rules: &Rules) -> Vec<Finding> {
    let mut failures = BTreeMap::<&str, Vec<&Event>>::new();
    for e in events.iter().filter(|e| !e.success) {
        failures.entry(&e.user).or_default().push(e);
    }
    let n = rules.burst_failures.max(1);
    let mut findings = Vec::new();
    for (user, failed) in failures {
        let mut bursts: Vec<(usize, usize)> = Vec::new();
        for end in n - 1..failed.len() {
            let start = end + 1 - n;
            if failed[end].time - failed[start].time > rules.burst_window {
                continue;
            }
            match bursts.last_mut() {
                Some(last) if start <= last.1 => last.1 = end,
                _ => bursts.push((start, end)),
            }
        }
        for (start, end) in bursts {
            let burst = &failed[start..=end];
            let mut tables: Vec<String> = Vec::new();
            for t in burst.iter().flat_map(|e| &e.targets) {
                if !tables.contains(t) {
                    tables.push(t.clone());
                }
            }
            let ms = (burst[burst.len() - 1].time - burst[0].time).num_milliseconds();
            let (count, window) = (burst.len(), rules.burst_window.num_seconds());
            findings.push(Finding {
                anomaly: Anomaly::FailureBurst,
                user: user.to_owned(),
                tables,
                seqs: burst.iter().map(|e| e.seq).collect(),
                detail: format!("{count} failures in {ms} ms (rule: {n} within {window} s)"),
            });
        }
    }
    findings
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Report::Refused { seq, problem } => {
                writeln!(f, "AUDIT TRAIL VERIFICATION FAILED at seq {seq}: {problem}")?;
                writeln!(
                    f,
                    "No findings: a trail that does not verify proves nothing."
                )
            }
            Report::Investigated(investigation) => investigation.fmt(f),
        }
    }
}

impl fmt::Display for Investigation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (scope, hours) = (&self.scope, &self.rules.business_hours);
        let table = scope.table.as_deref().unwrap_or("all tables");
        let local = |t: DateTime<Utc>| hours.local(t).format("%Y-%m-%d %H:%M:%S%.3f").to_string();
        writeln!(
            f,
            "Window {} .. {} (UTC{}), {table}",
            local(scope.from),
            local(scope.to),
            hours.utc_offset
        )?;
        writeln!(
            f,
            "Audit trail verified: {} events, chain intact.",
            self.events_verified
        )?;
        writeln!(f, "\nTimeline ({} events):", self.timeline.len())?;
        for e in &self.timeline {
            let flags: Vec<String> = self
                .findings
                .iter()
                .filter(|x| x.seqs.contains(&e.seq))
                .map(|x| x.anomaly.to_string())
                .collect();
            let result = match (e.success, self.rolled_back.contains(&e.seq)) {
                (false, _) => "FAILED",
                (true, true) => "rolled back",
                (true, false) => "ok",
            };
            let flags = if flags.is_empty() {
                String::new()
            } else {
                format!("<- {}", flags.join(", "))
            };
            // Rows are rows only for DML (DROP TABLE counts tables).
            let rows = if e.class == "DML" {
                e.rows.to_string()
            } else {
                String::new()
            };
            let line = format!(
                "  {:>4} {} {:<8} {:<6} {:<13} {:<12} {:>4} {:<11} {flags}",
                e.seq,
                hours.local(e.time).format("%H:%M:%S%.3f"),
                e.user,
                e.class,
                e.operation,
                e.targets.join(","),
                rows,
                result,
            );
            writeln!(f, "{}", line.trim_end())?;
        }
        writeln!(f, "\nFindings ({}):", self.findings.len())?;
        for x in &self.findings {
            let seqs: Vec<String> = x.seqs.iter().map(u64::to_string).collect();
            writeln!(
                f,
                "  {:<13} {:<8} seq {:<22} {}",
                x.anomaly,
                x.user,
                seqs.join(","),
                x.detail
            )?;
        }
        if !self.unparsed.is_empty() {
            writeln!(
                f,
                "  WHERE not checked (text does not parse): seqs {:?}",
                self.unparsed
            )?;
        }
        writeln!(
            f,
            "\nRows changed (committed):      inserted  updated  deleted"
        )?;
        for (label, map) in [("user", &self.by_user), ("table", &self.by_table)] {
            for (name, c) in map {
                writeln!(
                    f,
                    "  {label:<5} {name:<22} {:>8} {:>8} {:>8}",
                    c.inserted, c.updated, c.deleted
                )?;
            }
        }
        Ok(())
    }
}

/// Seeds a shop database with an insider incident and investigates it.
#[derive(clap::Parser)]
struct Args {
    /// Working directory (must not hold a database yet); a temporary one by default.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Investigate only this table.
    #[arg(long)]
    table: Option<String>,
    /// UTC offset in hours of the business hours 08:00-18:00; by default one where it is
    /// night now, so the incident the example seeds happens after hours.
    #[arg(long, allow_hyphen_values = true)]
    utc_offset: Option<i32>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let temp;
    let workdir = match args.dir {
        Some(dir) => dir,
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let business_hours = match args.utc_offset {
        Some(hours) => BusinessHours::office(
            FixedOffset::east_opt(hours * 3600).context("--utc-offset: hours from -23 to 23")?,
        ),
        None => BusinessHours::office_where_now_is(3),
    };
    let rules = Rules {
        business_hours,
        ..Rules::default()
    };
    println!(
        "Business hours {business_hours}; working directory {}\n",
        workdir.display()
    );
    let demo = run(&workdir, args.table.as_deref(), &rules)?;
    print!("{}", demo.report);
    Ok(())
}
