//! HIPAA edge device: a remote patient monitoring tablet that runs offline. Clinicians
//! record and read vital signs; the engine audits every read and change of PHI, keeps the
//! patients' identifiers in the trail only as keyed-hash tokens, and the device answers a
//! compliance review with a per-patient accounting, an integrity check and a signed bundle
//! of its whole trail that the reviewer checks with the device's public key alone.
//!
//! Blocking API only, no async runtime. Run with
//! `cargo run --example hipaa_edge [-- --dir DIR]`.

use anyhow::{Context, bail};
use heliosdb_lite::audit::{AuditEvent, redact, rfc3339_micros};
use heliosdb_lite::checkpoint::{SignerKey, VerifierKey, verify_batch, write_batch};
use heliosdb_lite::{AppEvent, Config, Database, Error, Param, Rows, Session, SessionInfo, params};
use std::fmt;
use std::path::{Path, PathBuf};

/// The device's configuration, installed as `heliosdb.toml` in its working directory.
const CONFIG: &str = include_str!("heliosdb.toml");
/// The monitoring app, recorded with every event.
pub const APPLICATION: &str = "rpm-app/3.2";
/// The device: the `device_id` custom field of every event, and the name of its key.
pub const DEVICE: &str = "rpm-tab-0042";
/// The tables holding PHI.
pub const PHI_TABLES: [&str; 2] = ["patients", "vital_signs"];

/// The attending physician: on every patient's care team.
pub const DR_PATEL: &str = "dr.patel";
/// A nurse caring for Maria Garcia.
pub const RN_LEE: &str = "rn.lee";
/// A nurse caring for James Chen, not for Maria Garcia.
pub const RN_KOWALSKI: &str = "rn.kowalski";

/// A monitored patient.
pub struct Patient {
    /// Patient id (the subject column of `redact_columns`).
    pub id: &'static str,
    /// Name.
    pub name: &'static str,
    /// Date of birth.
    pub date_of_birth: &'static str,
    /// The clinicians allowed to see and change the patient's record.
    pub care_team: &'static [&'static str],
}

/// The patients on the device; the report is the accounting of the first.
pub const PATIENTS: [Patient; 3] = [
    Patient {
        id: "P-1001",
        name: "Maria Garcia",
        date_of_birth: "1957-03-14",
        care_team: &[DR_PATEL, RN_LEE],
    },
    Patient {
        id: "P-1002",
        name: "James Chen",
        date_of_birth: "1949-11-02",
        care_team: &[DR_PATEL, RN_KOWALSKI],
    },
    Patient {
        id: "P-1003",
        name: "Aisha Okoye",
        date_of_birth: "1962-07-30",
        care_team: &[DR_PATEL],
    },
];

/// Maria Garcia's name after the nurse updates it.
pub const NEW_NAME: &str = "Maria Garcia-Lopez";
/// James Chen's date of birth after the physician corrects it.
pub const CORRECTED_BIRTH_DATE: &str = "1949-11-20";
/// "Recent" vitals: measured since this time.
const SINCE: &str = "2025-03-10 00:00:00";

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS patients (
        patient_id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        date_of_birth DATE NOT NULL
    );
    CREATE TABLE IF NOT EXISTS vital_signs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        patient_id TEXT NOT NULL REFERENCES patients(patient_id),
        kind TEXT NOT NULL,
        value FLOAT NOT NULL,
        unit TEXT NOT NULL,
        measured_at TIMESTAMP NOT NULL,
        device_id TEXT NOT NULL
    )";

/// Every identifier the workload gives the database, with what it is: none may be in the
/// trail in clear.
pub fn identifiers() -> Vec<(&'static str, &'static str)> {
    let mut all: Vec<_> = PATIENTS
        .iter()
        .flat_map(|p| {
            [
                ("patient id", p.id),
                ("name", p.name),
                ("date of birth", p.date_of_birth),
            ]
        })
        .collect();
    all.extend([("name", NEW_NAME), ("date of birth", CORRECTED_BIRTH_DATE)]);
    all
}

/// The tablet: its directory and database, opened from `heliosdb.toml`.
pub struct Device {
    dir: PathBuf,
    db: Database,
}

impl Device {
    /// Installs the configuration and the device's signing key on first start, then opens
    /// the database (the checkpoint sink starts with it) and creates the schema.
    pub fn start(dir: &Path) -> anyhow::Result<Device> {
        let config_file = dir.join("heliosdb.toml");
        if !config_file.exists() {
            std::fs::create_dir_all(dir)?;
            std::fs::write(&config_file, CONFIG)?;
            SignerKey::generate(DEVICE)?.write_files(dir.join("keys").join(DEVICE))?;
        }
        let config = Config::from_file(&config_file)?;
        let db = Database::builder().config(&config).open()?;
        session(&db, "rpm-setup").execute(SCHEMA, &[])?;
        Ok(Device {
            dir: dir.to_path_buf(),
            db,
        })
    }

    /// The database.
    pub fn db(&self) -> &Database {
        &self.db
    }

    /// A clinician signs in on the tablet (an AUTH `LOGIN` event).
    pub fn sign_in(&self, user: &'static str) -> anyhow::Result<Shift> {
        let mut session = session(&self.db, user);
        session.login(user)?;
        Ok(Shift {
            db: self.db.clone(),
            user,
            session,
        })
    }

    /// The accounting of one patient (§164.528, §164.312(b)): every event touching the
    /// patient, found by the engine's subject lookup over hash tokens. A library read: it
    /// adds nothing to the trail.
    pub fn accounting(&self, patient_id: &str) -> anyhow::Result<Accounting> {
        let events = redact::subject_events(self.db.backend(), patient_id)?;
        Ok(Accounting {
            patient: patient_id.to_owned(),
            token: token(&self.db, patient_id)?,
            events: events.iter().map(Access::from).collect(),
        })
    }

    /// SELECT events recorded on a PHI table, by the engine's class and target columns.
    pub fn phi_select_events(&self) -> anyhow::Result<u64> {
        let rows = session(&self.db, "compliance")
            .query("SELECT target FROM __audit_log WHERE class = 'SELECT'", &[])?;
        let mut count = 0;
        for row in &rows {
            let target: String = row.get("target")?;
            count += u64::from(target.split(',').any(|t| PHI_TABLES.contains(&t)));
        }
        Ok(count)
    }

    /// Reads every event's statement text, parameters, custom fields and error whole (with
    /// SQL over `__audit_log`) and looks for each identifier in Rust — a `LIKE` with the
    /// identifier would itself put it into the trail. Returns the events read and every
    /// `(seq, kind of identifier)` found in clear.
    pub fn identifiers_in_clear(&self) -> anyhow::Result<(u64, Vec<(i64, &'static str)>)> {
        let rows = session(&self.db, "compliance").query(
            "SELECT id, query, params, custom, error FROM __audit_log",
            &[],
        )?;
        let identifiers = identifiers();
        let mut found = Vec::new();
        for row in &rows {
            let text = ["query", "params", "custom", "error"]
                .iter()
                .map(|column| row.get_ref(column).map(String::from))
                .collect::<heliosdb_lite::Result<Vec<String>>>()?;
            for (kind, value) in &identifiers {
                if text.iter().any(|t| t.contains(value)) {
                    found.push((row.get("id")?, *kind));
                }
            }
        }
        Ok((rows.len() as u64, found))
    }

    /// Writes the whole trail as a signed bundle into `outbox`, beside a copy of the
    /// device's public key: what the compliance reviewer is handed.
    pub fn write_bundle(&self, outbox: &Path) -> anyhow::Result<Bundle> {
        let keys = self.dir.join("keys");
        let key = SignerKey::from_file(keys.join(format!("{DEVICE}.key")))?;
        std::fs::create_dir_all(outbox)?;
        let file = outbox.join(format!("{DEVICE}.audit.batch.gz"));
        let mut bytes = Vec::new();
        let summary = write_batch(&self.db, &key, 0, &mut bytes)?;
        std::fs::write(&file, &bytes)?;
        let pubkey = outbox.join(format!("{DEVICE}.pub"));
        std::fs::copy(keys.join(format!("{DEVICE}.pub")), &pubkey)?;
        Ok(Bundle {
            file,
            pubkey,
            events: summary.events(),
            bytes: bytes.len() as u64,
        })
    }
}

/// A session of the app on this device for `user`.
fn session(db: &Database, user: &str) -> Session {
    db.session(
        SessionInfo::new(user)
            .application(APPLICATION)
            .custom("device_id", DEVICE),
    )
}

/// The hash token the trail holds in place of `patient_id`, from the engine.
fn token(db: &Database, patient_id: &str) -> anyhow::Result<String> {
    redact::subject_token(db.backend(), patient_id)?
        .context("nothing was redacted yet: the database has no redaction key")
}

/// A clinician signed in on the tablet. Every action on a patient's record is first
/// checked against the patient's care team.
pub struct Shift {
    db: Database,
    user: &'static str,
    session: Session,
}

impl Shift {
    /// Whether the clinician is on the patient's care team. A refusal is recorded as a
    /// failed APP event `ACCESS_DENIED` that names the patient by its hash token only, so
    /// it belongs to the patient's accounting without putting the id in the trail.
    fn authorize(&mut self, patient_id: &str, table: &str, action: &str) -> anyhow::Result<bool> {
        let on_team = |p: &Patient| p.id == patient_id && p.care_team.contains(&self.user);
        if PATIENTS.iter().any(on_team) {
            return Ok(true);
        }
        let denied = AppEvent::new("ACCESS_DENIED")
            .target(table)
            .detail(format!("{action}: not on the patient's care team"))
            .custom("patient", token(&self.db, patient_id)?)
            .failed();
        self.session.record_event(denied)?;
        Ok(false)
    }

    /// Enrolls a patient; false if refused.
    pub fn enroll(&mut self, patient: &Patient) -> anyhow::Result<bool> {
        if !self.authorize(patient.id, "patients", "enroll")? {
            return Ok(false);
        }
        self.session.execute(
            "INSERT INTO patients (patient_id, name, date_of_birth) VALUES ($1, $2, $3)",
            &params![patient.id, patient.name, patient.date_of_birth],
        )?;
        Ok(true)
    }

    /// Records one measurement; `None` is a sensor that returned no value, which the
    /// schema refuses (recorded as a failed INSERT). False if refused.
    pub fn record_vital(
        &mut self,
        patient_id: &str,
        kind: &str,
        value: Option<f64>,
        unit: &str,
        measured_at: &str,
    ) -> anyhow::Result<bool> {
        if !self.authorize(patient_id, "vital_signs", "record vital sign")? {
            return Ok(false);
        }
        let value = value.map_or_else(Param::null, Param::from);
        let inserted = self.session.execute(
            "INSERT INTO vital_signs (patient_id, kind, value, unit, measured_at, device_id) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                patient_id.into(),
                kind.into(),
                value,
                unit.into(),
                measured_at.into(),
                DEVICE.into(),
            ],
        );
        match inserted {
            Ok(_) => Ok(true),
            Err(Error::Constraint(_)) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    /// The patient's vitals measured since [`SINCE`], newest first; `None` if refused.
    pub fn recent_vitals(&mut self, patient_id: &str) -> anyhow::Result<Option<Rows>> {
        if !self.authorize(patient_id, "vital_signs", "read vital signs")? {
            return Ok(None);
        }
        let rows = self.session.query(
            "SELECT kind, value, unit, measured_at FROM vital_signs \
             WHERE patient_id = $1 AND measured_at >= $2 ORDER BY measured_at DESC",
            &params![patient_id, SINCE],
        )?;
        Ok(Some(rows))
    }

    /// The patient's name and date of birth; `None` if refused.
    pub fn demographics(&mut self, patient_id: &str) -> anyhow::Result<Option<Rows>> {
        if !self.authorize(patient_id, "patients", "read demographics")? {
            return Ok(None);
        }
        let rows = self.session.query(
            "SELECT name, date_of_birth FROM patients WHERE patient_id = $1",
            &params![patient_id],
        )?;
        Ok(Some(rows))
    }

    /// Changes one column of the patient's record (`name` or `date_of_birth`); false if
    /// refused.
    pub fn update_patient(
        &mut self,
        patient_id: &str,
        column: &str,
        value: &str,
    ) -> anyhow::Result<bool> {
        if !["name", "date_of_birth"].contains(&column) {
            bail!("{column} is not a column a clinician may change");
        }
        if !self.authorize(patient_id, "patients", "update patient")? {
            return Ok(false);
        }
        let sql = format!("UPDATE patients SET {column} = $1 WHERE patient_id = $2");
        self.session.execute(&sql, &params![value, patient_id])?;
        Ok(true)
    }

    /// Signs out (an AUTH `LOGOUT` event).
    pub fn sign_out(mut self) -> anyhow::Result<()> {
        self.session.logout()?;
        Ok(())
    }
}

/// What the workload did, to compare with what the trail holds.
#[derive(Debug, Default)]
pub struct Workload {
    /// SELECTs of PHI the app ran.
    pub phi_reads: u64,
    /// Actions refused by the care-team check.
    pub denied: u64,
    /// Measurements stored, and refused by the schema.
    pub vitals: (u64, u64),
}

/// A measurement: kind, value (`None`: the sensor returned none), unit, time of day.
type Reading = (&'static str, Option<f64>, &'static str, &'static str);

/// One morning on the ward: enrollment, measurements (one with a sensor dropout), reads of
/// recent vitals and demographics, a nurse trying to read a patient not in her care, and
/// two corrections of patient records.
pub fn ward_morning(device: &Device) -> anyhow::Result<Workload> {
    let [maria, james, aisha] = &PATIENTS;
    let mut done = Workload::default();
    let mut patel = device.sign_in(DR_PATEL)?;
    let mut lee = device.sign_in(RN_LEE)?;
    let mut kowalski = device.sign_in(RN_KOWALSKI)?;
    for patient in &PATIENTS {
        patel.enroll(patient)?;
    }
    let mut record = |shift: &mut Shift, patient: &Patient, readings: &[Reading]| {
        for &(kind, value, unit, at) in readings {
            let at = format!("2025-03-10 {at}:00");
            if shift.record_vital(patient.id, kind, value, unit, &at)? {
                done.vitals.0 += 1;
            } else {
                done.vitals.1 += 1;
            }
        }
        anyhow::Ok(())
    };
    record(
        &mut lee,
        maria,
        &[
            ("heart_rate", Some(72.0), "bpm", "08:00"),
            ("bp_systolic", Some(128.0), "mmHg", "08:01"),
            ("bp_diastolic", Some(82.0), "mmHg", "08:01"),
            ("glucose", Some(141.0), "mg/dL", "08:05"),
            // The glucose meter drops out: no value.
            ("glucose", None, "mg/dL", "08:20"),
        ],
    )?;
    record(
        &mut kowalski,
        james,
        &[
            ("heart_rate", Some(88.0), "bpm", "08:10"),
            ("glucose", Some(162.0), "mg/dL", "08:12"),
        ],
    )?;
    record(
        &mut patel,
        aisha,
        &[("heart_rate", Some(65.0), "bpm", "08:30")],
    )?;
    let reads = [
        lee.recent_vitals(maria.id)?,
        patel.recent_vitals(maria.id)?,
        patel.demographics(maria.id)?,
        kowalski.recent_vitals(james.id)?,
        kowalski.recent_vitals(maria.id)?,
    ];
    done.phi_reads = reads.iter().flatten().count() as u64;
    done.denied = reads.iter().filter(|r| r.is_none()).count() as u64;
    lee.update_patient(maria.id, "name", NEW_NAME)?;
    patel.update_patient(james.id, "date_of_birth", CORRECTED_BIRTH_DATE)?;
    for shift in [patel, lee, kowalski] {
        shift.sign_out()?;
    }
    Ok(done)
}

/// One line of a patient's accounting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    /// Ledger position.
    pub seq: u64,
    /// When (RFC 3339, UTC).
    pub when: String,
    /// Who.
    pub user: String,
    /// With which application.
    pub application: String,
    /// On which device (the `device_id` custom field).
    pub device: String,
    /// The engine's class: `DML`, `SELECT`, `APP`, ...
    pub class: String,
    /// The operation: `INSERT`, `SELECT`, `UPDATE`, `ACCESS_DENIED`, ...
    pub operation: String,
    /// The tables.
    pub table: String,
    /// Rows written or returned.
    pub rows: u64,
    /// Whether it succeeded.
    pub success: bool,
}

impl From<&AuditEvent> for Access {
    fn from(e: &AuditEvent) -> Self {
        Access {
            seq: e.seq,
            when: rfc3339_micros(e.timestamp_us).unwrap_or_default(),
            user: e.user.clone(),
            application: e.application.clone(),
            device: e.custom.get("device_id").cloned().unwrap_or_default(),
            class: e.class.as_str().to_owned(),
            operation: e.operation.clone(),
            table: e.targets.join(","),
            rows: e.rows,
            success: e.success,
        }
    }
}

/// A patient's accounting.
#[derive(Debug)]
pub struct Accounting {
    /// The patient id.
    pub patient: String,
    /// Its hash token: what the trail holds in its place, handed to the reviewer.
    pub token: String,
    /// Every event touching the patient, oldest first.
    pub events: Vec<Access>,
}

/// The bundle handed to the compliance reviewer.
#[derive(Debug)]
pub struct Bundle {
    /// The signed batch (gzip JSON Lines, `docs/FORMAT.md` §8).
    pub file: PathBuf,
    /// The device's public key, beside it.
    pub pubkey: PathBuf,
    /// Events carried: the whole trail.
    pub events: u64,
    /// Compressed size.
    pub bytes: u64,
}

/// What the reviewer established from the bundle with the public key alone.
#[derive(Debug)]
pub struct Review {
    /// The key the checkpoint is signed with.
    pub signed_by: String,
    /// The database the bundle comes from (`heliosdb/<id>`).
    pub origin: String,
    /// Events verified.
    pub events: u64,
    /// The patient's accounting, from the bundle.
    pub accounting: Vec<Access>,
}

/// The reviewer's side: checks the bundle with the device's public key only — signature,
/// every event re-hashed, the chain, the Merkle root — then lists the events that carry
/// the patient's hash token (in the statement, a parameter or a custom field), which is
/// what the engine's subject lookup matches on the device.
pub fn review(bundle: &Path, pubkey: &Path, token: &str) -> anyhow::Result<Review> {
    let key = VerifierKey::from_file(pubkey)?;
    let file = std::fs::File::open(bundle)?;
    let verified = verify_batch(std::io::BufReader::new(file), &key, None)
        .with_context(|| format!("bundle {} rejected", bundle.display()))?;
    let mut accounting = Vec::new();
    for line in &verified.events {
        let event = line.event().map_err(anyhow::Error::msg)?;
        let carries = event.query.contains(token)
            || event.params.iter().any(|p| p == token)
            || event.custom.values().any(|v| v == token);
        if carries {
            accounting.push(Access::from(&event));
        }
    }
    Ok(Review {
        signed_by: key.name().to_owned(),
        origin: verified.checkpoint.origin,
        events: verified.events.len() as u64,
        accounting,
    })
}

/// What the run shows.
#[derive(Debug)]
pub struct Report {
    /// The working directory.
    pub dir: PathBuf,
    /// What the workload did.
    pub workload: Workload,
    /// SELECT events on PHI tables in the trail.
    pub phi_select_events: u64,
    /// The accounting of the first patient.
    pub patient: Accounting,
    /// The other patients' accountings.
    pub others: Vec<Accounting>,
    /// Events searched for identifiers in clear.
    pub events_searched: u64,
    /// `(seq, kind)` of every identifier found in clear.
    pub identifiers_in_clear: Vec<(i64, &'static str)>,
    /// `audit.retention_days` in force.
    pub retention_days: u64,
    /// The device's `db.verify()`: events checked, and the first problem.
    pub verify: (u64, Option<String>),
    /// The bundle handed over.
    pub bundle: Bundle,
    /// The reviewer's check of it.
    pub review: Review,
}

/// A morning on the ward in `dir/device`, then the compliance review: the first patient's
/// accounting, the identifier check, `verify`, and the bundle in `dir/handover` checked
/// as the reviewer would.
pub fn run(dir: &Path) -> anyhow::Result<Report> {
    if dir.join("device").exists() {
        bail!(
            "{} already holds a device: give an empty --dir",
            dir.display()
        );
    }
    let device = Device::start(&dir.join("device"))?;
    let workload = ward_morning(&device)?;
    let [patient, others @ ..] = &PATIENTS;
    let patient = device.accounting(patient.id)?;
    let others = others.iter().map(|p| device.accounting(p.id));
    let others = others.collect::<anyhow::Result<_>>()?;
    let phi_select_events = device.phi_select_events()?;
    let (events_searched, identifiers_in_clear) = device.identifiers_in_clear()?;
    let verify = device.db().verify()?;
    let bundle = device.write_bundle(&dir.join("handover"))?;
    let review = review(&bundle.file, &bundle.pubkey, &patient.token)?;
    Ok(Report {
        dir: dir.to_path_buf(),
        workload,
        phi_select_events,
        patient,
        others,
        events_searched,
        identifiers_in_clear,
        retention_days: device.db().options().retention.retention_days,
        verify: (verify.events_checked, verify.problem.map(|p| p.to_string())),
        bundle,
        review,
    })
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (w, p) = (&self.workload, &self.patient);
        writeln!(
            f,
            "device {DEVICE} ({APPLICATION}), offline, working directory {}",
            self.dir.display()
        )?;
        writeln!(
            f,
            "ward morning: {} vitals stored, {} refused by the schema, {} reads of PHI, \
             {} action refused (not on the care team)",
            w.vitals.0, w.vitals.1, w.phi_reads, w.denied
        )?;
        writeln!(
            f,
            "\n§164.312(b) audit controls: {} SELECTs of PHI run, {} SELECT events on PHI \
             tables in the trail; kept {} days",
            w.phi_reads, self.phi_select_events, self.retention_days
        )?;
        writeln!(
            f,
            "\n§164.528 accounting for patient {} (in the trail as {}...): {} events",
            p.patient,
            p.token.get(..17).unwrap_or(&p.token),
            p.events.len()
        )?;
        writeln!(
            f,
            "  {:>4}  {:<27}  {:<12} {:<12} {:<13} {:<7} {:<14} {:<12} {:>4}  result",
            "seq", "when", "who", "application", "device", "class", "operation", "table", "rows"
        )?;
        for a in &p.events {
            writeln!(
                f,
                "  {:>4}  {:<27}  {:<12} {:<12} {:<13} {:<7} {:<14} {:<12} {:>4}  {}",
                a.seq,
                a.when,
                a.user,
                a.application,
                a.device,
                a.class,
                a.operation,
                a.table,
                a.rows,
                if a.success { "ok" } else { "FAILED" }
            )?;
        }
        for other in &self.others {
            let shared = other
                .events
                .iter()
                .filter(|e| p.events.iter().any(|a| a.seq == e.seq))
                .count();
            writeln!(
                f,
                "  patient {}: {} events, {shared} of them in {}'s accounting",
                other.patient,
                other.events.len(),
                p.patient
            )?;
        }
        let clear = if self.identifiers_in_clear.is_empty() {
            "none".to_owned()
        } else {
            let found = self.identifiers_in_clear.iter();
            let found: Vec<String> = found.map(|(seq, kind)| format!("#{seq} {kind}")).collect();
            found.join(", ")
        };
        writeln!(
            f,
            "\n§164.514(b) identifiers in clear in the trail ({} events read whole): {clear}",
            self.events_searched
        )?;
        let (checked, problem) = &self.verify;
        match problem {
            None => writeln!(
                f,
                "§164.312(c)(1) integrity: db.verify(): intact, {checked} events"
            )?,
            Some(problem) => writeln!(f, "§164.312(c)(1) integrity: NOT INTACT: {problem}")?,
        }
        let (b, r) = (&self.bundle, &self.review);
        writeln!(
            f,
            "\nbundle for the reviewer: {} ({} events, {} bytes gzip) and {}",
            b.file.display(),
            b.events,
            b.bytes,
            b.pubkey.display()
        )?;
        let same = if r.accounting == p.events {
            "identical to the device's"
        } else {
            "DIFFERENT from the device's"
        };
        writeln!(
            f,
            "reviewer: {} events verified with the public key of {} alone ({}); \
             accounting for {} from the bundle: {} events, {same}",
            r.events,
            r.signed_by,
            r.origin,
            p.patient,
            r.accounting.len()
        )
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let temp = tempfile::tempdir()?;
    let dir = match args.iter().position(|a| a == "--dir") {
        Some(i) => PathBuf::from(args.get(i + 1).context("--dir needs a directory")?),
        None => temp.path().to_path_buf(),
    };
    print!("{}", run(&dir)?);
    Ok(())
}
