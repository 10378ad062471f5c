//! The demo: a small clinic database, built and queried step by step while the output says
//! what happens.

use crate::table::{Table, cell};
use anyhow::{Context, bail};
use gluesql_core::ast::ToSql;
use gluesql_core::chrono::{NaiveDate, NaiveDateTime};
use heliosdb_lite::engine::audit;
use heliosdb_lite::{
    Config, Database, Error, Output, Param, Session, SessionInfo, StorageError, params,
};
use std::fs;
use std::io::{self, Write};
use std::path::Path;

/// Where the demo puts its database unless told otherwise.
pub const DEFAULT_DIR: &str = "./heliosdb-demo";

/// File that marks a directory as the demo's own, so a later run may empty it.
pub const MARKER: &str = ".heliosdb-demo";

/// The database's directory inside the demo directory.
const DATABASE: &str = "clinic";

const MARKER_TEXT: &str = "Created by `heliosdb demo`. The demo empties this directory \
                           each time it runs here.\n";

/// Runs the demo in `dir`, narrating to `out`.
///
/// `dir` is created if missing and emptied first if a previous demo left its marker there;
/// any other non-empty directory is refused, so the demo never deletes a user's files.
pub fn run(dir: &Path, out: impl Write) -> anyhow::Result<()> {
    prepare(dir)?;
    let path = dir.join(DATABASE);
    fs::create_dir_all(&path).with_context(|| format!("cannot create {}", path.display()))?;
    let config = path.join(heliosdb_lite::config::FILE_NAME);
    fs::write(&config, CONFIG).with_context(|| format!("cannot write {}", config.display()))?;
    Demo { out, step: 0 }.play(&path)
}

/// The clinic's `heliosdb.toml`, written next to its database, which picks it up.
const CONFIG: &str = r#"# The clinic runs under the HIPAA preset (see `heliosdb presets`).
[database]
name = "clinic"

[audit]
preset = "hipaa"

# A copy of every audit event outside the database, verifiable on its own.
[[audit.sinks]]
kind = "jsonl-file"
path = "../audit-trail.jsonl"
"#;

/// The sink file, relative to the database directory.
const TRAIL: &str = "../audit-trail.jsonl";

/// Makes `dir` an empty directory holding only the demo marker.
fn prepare(dir: &Path) -> anyhow::Result<()> {
    match fs::metadata(dir) {
        Ok(meta) if !meta.is_dir() => {
            bail!(
                "{} exists and is not a directory; choose another --dir",
                dir.display()
            )
        }
        Ok(_) if dir.join(MARKER).is_file() => {
            // Ours from an earlier run: empty it (the directory itself may be a symlink the
            // user set up, so keep it). Not while a process has the old database open,
            // though: its files would vanish under it.
            let previous = dir.join(DATABASE);
            if previous.is_dir()
                && let Err(error @ Error::Storage(StorageError::Locked { .. })) =
                    Database::open(&previous)
            {
                return Err(error).with_context(|| {
                    format!("cannot replace the previous demo in {}", dir.display())
                });
            }
            for entry in
                fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?
            {
                let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
                let path = entry.path();
                let removed = if entry.file_type()?.is_dir() {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                };
                removed.with_context(|| {
                    format!("cannot remove {} from the previous demo", path.display())
                })?;
            }
        }
        Ok(_) => {
            let mut entries =
                fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
            if entries.next().is_some() {
                bail!(
                    "{} is not empty and was not created by the demo (no {MARKER} file); \
                     refusing to touch it; choose another --dir",
                    dir.display()
                );
            }
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => {
            return Err(error).with_context(|| format!("cannot use {}", dir.display()));
        }
    }
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let marker = dir.join(MARKER);
    fs::write(&marker, MARKER_TEXT)
        .with_context(|| format!("cannot write {}", marker.display()))?;
    Ok(())
}

/// Patients: id, medical record number, name, birth date, ward.
const PATIENTS: [(i64, &str, &str, &str, &str); 3] = [
    (1, "MRN-1001", "Ana Souza", "1948-03-14", "cardiology"),
    (2, "MRN-1002", "Ben Okoro", "1975-11-02", "cardiology"),
    (3, "MRN-1003", "Chloe Martin", "1990-07-21", "oncology"),
];

/// Readings: id, patient, time, heart rate, temperature. The last one is a double entry.
const READINGS: [(i64, i64, &str, i64, f64); 5] = [
    (1, 1, "2025-03-01 08:00:00", 72, 36.8),
    (2, 2, "2025-03-01 08:05:00", 118, 38.9),
    (3, 3, "2025-03-01 08:10:00", 64, 36.5),
    (4, 2, "2025-03-01 12:00:00", 104, 38.2),
    (5, 2, "2025-03-01 12:00:00", 104, 38.2),
];

const INSERT_PATIENT: &str = "INSERT INTO patients VALUES ($1, $2, $3, $4, $5)";
const INSERT_READING: &str = "INSERT INTO vital_signs VALUES ($1, $2, $3, $4, $5)";

/// The narrator: runs statements and prints them with their results.
struct Demo<W> {
    out: W,
    step: usize,
}

impl<W: Write> Demo<W> {
    fn play(&mut self, path: &Path) -> anyhow::Result<()> {
        let db = Database::open(path)?;
        writeln!(
            self.out,
            "HeliosDB-Lite demo: a small clinic database in {}",
            path.display()
        )?;
        self.configuration(path)?;
        let mut doctor = db.session(
            SessionInfo::new("dr.chen")
                .application("ehr-web")
                .client_addr("10.0.0.12")
                .custom("ward", "cardiology"),
        );
        let mut nurse = db.session(
            SessionInfo::new("nurse.okafor")
                .application("bedside-monitor")
                .client_addr("10.0.3.7"),
        );
        writeln!(
            self.out,
            "\nTwo sessions, each carrying who is connected and from where:"
        )?;
        for session in [&doctor, &nurse] {
            let info = session.info();
            let custom: Vec<String> = info
                .custom
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let line = format!(
                "  session {}: user {:<13} app {:<16} from {:<10} {}",
                session.id(),
                info.user,
                info.application.as_deref().unwrap_or("-"),
                info.client_addr.as_deref().unwrap_or("-"),
                custom.join(" ")
            );
            writeln!(self.out, "{}", line.trim_end())?;
        }

        self.step("dr.chen creates the schema and an index")?;
        self.run(
            &mut doctor,
            concat!(
                "CREATE TABLE patients (id INTEGER PRIMARY KEY, mrn TEXT UNIQUE NOT NULL,\n",
                "  name TEXT NOT NULL, born DATE, ward TEXT)"
            ),
        )?;
        self.run(
            &mut doctor,
            concat!(
                "CREATE TABLE vital_signs (id INTEGER PRIMARY KEY, patient_id INTEGER NOT NULL,\n",
                "  taken_at TIMESTAMP NOT NULL, heart_rate INTEGER, temp_c FLOAT)"
            ),
        )?;
        self.run(
            &mut doctor,
            "CREATE INDEX vital_signs_patient ON vital_signs (patient_id)",
        )?;

        self.step("dr.chen admits three patients; values are bound to $1..$5, never spliced")?;
        self.statement(INSERT_PATIENT)?;
        for (id, mrn, name, born, ward) in PATIENTS {
            let values = params![id, mrn, name, date(born)?, ward];
            self.bound_row(&mut doctor, INSERT_PATIENT, &values)?;
        }

        self.step("nurse.okafor records five readings in one transaction")?;
        self.run(&mut nurse, "BEGIN")?;
        self.statement(INSERT_READING)?;
        for (id, patient, taken_at, heart_rate, temp_c) in READINGS {
            let values = params![id, patient, timestamp(taken_at)?, heart_rate, temp_c];
            self.bound_row(&mut nurse, INSERT_READING, &values)?;
        }
        self.run(&mut nurse, "COMMIT")?;

        self.step("nurse.okafor types a heart rate of 720 by mistake and rolls back")?;
        self.run(&mut nurse, "BEGIN")?;
        self.statement(INSERT_READING)?;
        let typo = params![
            6_i64,
            3_i64,
            timestamp("2025-03-01 12:10:00")?,
            720_i64,
            36.6
        ];
        self.bound_row(&mut nurse, INSERT_READING, &typo)?;
        self.run(&mut nurse, "SELECT COUNT(*) AS readings FROM vital_signs")?;
        self.run(&mut nurse, "ROLLBACK")?;
        self.run(&mut nurse, "SELECT COUNT(*) AS readings FROM vital_signs")?;

        self.step("dr.chen admits a patient under an MRN that is already taken")?;
        self.statement(INSERT_PATIENT)?;
        let duplicate = params![
            4_i64,
            "MRN-1002",
            "Dan Weiss",
            date("1960-01-30")?,
            "oncology"
        ];
        writeln!(self.out, "    ({})", literals(&duplicate))?;
        match doctor.execute(INSERT_PATIENT, &duplicate) {
            Err(error) if error.kind() == "constraint" => {
                writeln!(self.out, "    -- refused, nothing written: {error}")?;
            }
            Err(error) => return Err(error.into()),
            Ok(_) => bail!("the duplicate MRN was accepted: the UNIQUE constraint is not enforced"),
        }

        self.step("dr.chen moves Ben to the ICU; nurse.okafor deletes the double entry")?;
        let update = "UPDATE patients SET ward = $1 WHERE id = $2";
        self.bound(&mut doctor, update, &params!["icu", 2_i64])?;
        let delete = "DELETE FROM vital_signs WHERE id = $1";
        self.bound(&mut nurse, delete, &params![5_i64])?;

        self.step("Each patient's readings (a JOIN and aggregates)")?;
        self.run(
            &mut doctor,
            concat!(
                "SELECT p.name, p.ward, COUNT(*) AS readings, MAX(v.heart_rate) AS max_heart_rate,\n",
                "  MAX(v.temp_c) AS max_temp_c FROM patients p JOIN vital_signs v ON v.patient_id = p.id\n",
                "  GROUP BY p.name, p.ward ORDER BY max_temp_c DESC"
            ),
        )?;

        self.step("Close the database and open it again from disk")?;
        // Sessions hold the database open; all of them go before it is reopened.
        drop(doctor);
        drop(nurse);
        drop(db);
        let db = Database::open(path)?;
        let mut auditor = db.session(
            SessionInfo::new("auditor")
                .application("heliosdb-demo")
                .client_addr("local"),
        );
        self.run(
            &mut auditor,
            "SELECT id, mrn, name, born, ward FROM patients ORDER BY id",
        )?;
        self.run(&mut auditor, "SELECT COUNT(*) AS readings FROM vital_signs")?;

        self.step("The audit trail: every statement above, who ran it, and what it did")?;
        self.run(
            &mut auditor,
            concat!(
                "SELECT user, operation, COUNT(*) AS events, SUM(affected_rows) AS rows,\n",
                "  SUM(CASE WHEN success THEN 0 ELSE 1 END) AS failed\n",
                "  FROM __audit_log GROUP BY user, operation ORDER BY user, operation"
            ),
        )?;
        self.run(
            &mut auditor,
            concat!(
                "SELECT id, user, application, operation, target, success, error\n",
                "  FROM __audit_log WHERE success = FALSE"
            ),
        )?;
        writeln!(
            self.out,
            "  DELETE FROM __audit_log;  -- refused: the audit log is read-only"
        )?;
        if let Err(error) = auditor.execute("DELETE FROM __audit_log", &[]) {
            writeln!(self.out, "    -- {error}")?;
        }

        self.step("Verify the hash chain from the stored records")?;
        let report = db.verify()?;
        writeln!(
            self.out,
            "  {} events checked: {}",
            report.events_checked,
            if report.is_intact() {
                "intact".to_owned()
            } else {
                report
                    .problem
                    .as_ref()
                    .map_or_else(|| "damaged".to_owned(), ToString::to_string)
            }
        )?;

        self.sink_copy(&db, path)?;

        writeln!(
            self.out,
            "\nDone. The database stays in {}; look around with:\n  \
             cargo run --release -- --db {} shell",
            path.display(),
            path.display()
        )?;
        Ok(())
    }

    /// The first step: the configuration file and what it resolves to.
    fn configuration(&mut self, path: &Path) -> anyhow::Result<()> {
        self.step("The clinic's heliosdb.toml, found next to the database")?;
        for line in CONFIG.lines() {
            writeln!(self.out, "{}", format!("  {line}").trim_end())?;
        }
        let config = Config::discover(path)?.context("the demo's heliosdb.toml")?;
        writeln!(
            self.out,
            "  Resolved (`heliosdb --db {} config show` lists every key):",
            path.display()
        )?;
        let shown = config.render();
        for key in ["log_select", "redact_parameters", "retention_days"] {
            if let Some(line) = shown.lines().find(|l| l.starts_with(&format!("{key} = "))) {
                writeln!(self.out, "    {line}")?;
            }
        }
        Ok(())
    }

    /// The last step: the jsonl-file sink's copy of the trail, checked on its own.
    fn sink_copy(&mut self, db: &Database, path: &Path) -> anyhow::Result<()> {
        self.step("The sink's copy of the trail, verified without the database")?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while db.sink_status().iter().any(|s| s.lag() > 0) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let file = path.join(TRAIL);
        let text =
            fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
        let report = audit::verify_export(text.as_bytes())?;
        let head = db.audit_head();
        writeln!(
            self.out,
            "  {}: {} lines, seqs {}..={}, {}; its last chain hash {} the ledger head",
            TRAIL.trim_start_matches("../"),
            report.lines_checked,
            report.first_seq.unwrap_or(0),
            report.last_seq.unwrap_or(0),
            if report.is_intact() {
                "intact"
            } else {
                "DAMAGED"
            },
            if report.last_chain == Some(head.chain) {
                "matches"
            } else {
                "does not match"
            }
        )?;
        Ok(())
    }

    /// Starts the next numbered step.
    fn step(&mut self, title: &str) -> io::Result<()> {
        self.step += 1;
        writeln!(self.out, "\n{}. {title}", self.step)
    }

    /// Prints a statement's SQL.
    fn statement(&mut self, sql: &str) -> io::Result<()> {
        writeln!(self.out, "  {};", indent(sql))
    }

    /// Prints and runs a statement without parameters, then prints its result.
    fn run(&mut self, session: &mut Session, sql: &str) -> anyhow::Result<()> {
        let outputs = session
            .execute(sql, &[])
            .with_context(|| format!("demo step {}: {sql}", self.step))?;
        match outputs.as_slice() {
            [Output::Rows(rows)] => {
                if let ([column], [row]) = (rows.columns.as_slice(), rows.rows.as_slice())
                    && let [value] = row.as_slice()
                {
                    // A single value reads best inline: `-- readings = 5`.
                    let value = cell(value);
                    writeln!(self.out, "  {};  -- {column} = {value}", indent(sql))?;
                } else {
                    self.statement(sql)?;
                    for line in Table::new(rows).to_string().lines() {
                        writeln!(self.out, "    {line}")?;
                    }
                }
            }
            _ => {
                let summary: Vec<String> = outputs.iter().map(summary).collect();
                writeln!(self.out, "  {};  -- {}", indent(sql), summary.join(", "))?;
            }
        }
        Ok(())
    }

    /// Runs a statement with `values` bound; prints the statement, the values and the result
    /// on one line.
    fn bound(&mut self, session: &mut Session, sql: &str, values: &[Param]) -> anyhow::Result<()> {
        let summary = self.execute(session, sql, values)?;
        let values = literals(values);
        writeln!(self.out, "  {sql};  ({values})  -- {summary}")?;
        Ok(())
    }

    /// Runs a statement already printed with [`Demo::statement`], with `values` bound; prints
    /// the values and the result.
    fn bound_row(
        &mut self,
        session: &mut Session,
        sql: &str,
        values: &[Param],
    ) -> anyhow::Result<()> {
        let summary = self.execute(session, sql, values)?;
        writeln!(self.out, "    ({})  -- {summary}", literals(values))?;
        Ok(())
    }

    /// Runs a statement, returning a summary of its results.
    fn execute(
        &mut self,
        session: &mut Session,
        sql: &str,
        values: &[Param],
    ) -> anyhow::Result<String> {
        let outputs = session
            .execute(sql, values)
            .with_context(|| format!("demo step {}: {sql}", self.step))?;
        let summary: Vec<String> = outputs.iter().map(summary).collect();
        Ok(summary.join(", "))
    }
}

/// Bound values as SQL literals, comma-separated.
fn literals(values: &[Param]) -> String {
    let values: Vec<String> = values.iter().map(|p| p.value().to_sql()).collect();
    values.join(", ")
}

/// Multi-line SQL with its continuation lines indented like the first.
fn indent(sql: &str) -> String {
    sql.replace('\n', "\n  ")
}

/// A `DATE` parameter: parameters are typed values, and a string is not a date.
fn date(text: &str) -> anyhow::Result<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").with_context(|| format!("bad date {text:?}"))
}

/// A `TIMESTAMP` parameter.
fn timestamp(text: &str) -> anyhow::Result<NaiveDateTime> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
        .with_context(|| format!("bad timestamp {text:?}"))
}

/// A one-line summary of a result: `INSERT 1`, `COMMIT`, `3 rows`.
fn summary(output: &Output) -> String {
    match output {
        Output::Rows(rows) => format!("{} rows", rows.len()),
        Output::Affected { statement, count } => format!("{statement} {count}"),
        Output::Done { statement } => (*statement).to_owned(),
        other => format!("{other:?}"),
    }
}
