//! Industrial IoT edge controller, FDA 21 CFR Part 11: operators change equipment
//! parameters under an electronic signature, the device runs offline for weeks, then ships
//! every audit event since its last sync to the plant's SCADA system as one compressed,
//! signed batch that SCADA verifies with the device's public key alone.
//!
//! Run with `cargo run --example industrial_iot [-- --dir DIR]`.

use anyhow::Context;
use heliosdb_lite::audit::PruneBefore;
use heliosdb_lite::checkpoint::{BatchReceipt, SignerKey, VerifierKey, verify_batch, write_batch};
use heliosdb_lite::{AppEvent, Config, Database, Error, SessionInfo, params};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The device's configuration, installed as `heliosdb.toml` in its working directory.
const CONFIG: &str = include_str!("heliosdb.toml");
/// The version of the control software, recorded with every event.
const APPLICATION: &str = "line-controller/2.4.1";
const DEVICE: &str = "line-3";

/// An operator with the PIN they sign with.
pub struct Operator {
    /// Login and signer id.
    pub id: &'static str,
    /// Printed name, as Part 11 §11.50 requires on a signed record.
    pub name: &'static str,
    pin: &'static str,
}

/// The operators of the line; in production the PINs are checked by the plant's identity
/// system, here by a table.
pub const OPERATORS: [Operator; 2] = [
    Operator {
        id: "op-ana",
        name: "Ana Ortiz",
        pin: "4711",
    },
    Operator {
        id: "op-ben",
        name: "Ben Okafor",
        pin: "0815",
    },
];

/// The edge controller: its database, opened from `heliosdb.toml`.
pub struct Device {
    dir: PathBuf,
    db: Database,
}

impl Device {
    /// Installs the configuration and a signing key on first start, then opens the
    /// database (the checkpoint sink starts with it).
    pub fn start(dir: &Path) -> anyhow::Result<Device> {
        let config_file = dir.join("heliosdb.toml");
        if !config_file.exists() {
            std::fs::create_dir_all(dir)?;
            std::fs::write(&config_file, CONFIG)?;
            SignerKey::generate(DEVICE)?.write_files(dir.join("keys").join(DEVICE))?;
        }
        let config = Config::from_file(&config_file)?;
        let db = Database::builder().config(&config).open()?;
        db.session(SessionInfo::new("commissioning").application(APPLICATION))
            .execute(
                "CREATE TABLE IF NOT EXISTS equipment_parameter (
                     id TEXT PRIMARY KEY, value FLOAT NOT NULL, unit TEXT NOT NULL)",
                &[],
            )?;
        Ok(Device {
            dir: dir.to_path_buf(),
            db,
        })
    }

    /// The database, for reports.
    pub fn db(&self) -> &Database {
        &self.db
    }

    /// Sets a parameter if the operator signs with the right PIN. The change and the
    /// signature (an APP event: who, printed name, meaning, what changed) commit together
    /// or not at all; a wrong PIN is recorded as a failed signature and changes nothing.
    pub fn change_parameter(
        &self,
        operator: &Operator,
        pin: &str,
        parameter: &str,
        value: f64,
        unit: &str,
        meaning: &str,
    ) -> anyhow::Result<bool> {
        let mut s = self.db.session(
            SessionInfo::new(operator.id)
                .application(APPLICATION)
                .custom("device", DEVICE),
        );
        let signature = AppEvent::new("E_SIGNATURE")
            .target("equipment_parameter")
            .custom("signer_id", operator.id)
            .custom("signer_name", operator.name)
            .custom("meaning", meaning)
            .custom("parameter", parameter);
        if pin != operator.pin {
            s.record_event(signature.detail("signature rejected: wrong PIN").failed())?;
            return Ok(false);
        }
        let mut tx = s.transaction()?;
        let current: Option<(f64,)> = tx.query_opt(
            "SELECT value FROM equipment_parameter WHERE id = $1",
            &params![parameter],
        )?;
        let before = match current {
            None => {
                tx.execute(
                    "INSERT INTO equipment_parameter VALUES ($1, $2, $3)",
                    &params![parameter, value, unit],
                )?;
                "unset".to_owned()
            }
            Some((current,)) => {
                tx.execute(
                    "UPDATE equipment_parameter SET value = $1, unit = $2 WHERE id = $3",
                    &params![value, unit, parameter],
                )?;
                format!("{current}")
            }
        };
        tx.record_event(
            signature
                .detail(format!("{parameter}: {before} -> {value} {unit}"))
                .custom("value", value.to_string()),
        )?;
        tx.commit()?;
        Ok(true)
    }

    /// The last position SCADA acknowledged: the newest `AUDIT_SYNC` event in the trail
    /// itself, so the sync history is as tamper-evident as everything else.
    pub fn synced_through(&self) -> anyhow::Result<u64> {
        let last: Option<(String,)> = self.db.session(SessionInfo::new("sync-agent")).query_opt(
            "SELECT custom FROM __audit_log WHERE operation = 'AUDIT_SYNC' AND success = TRUE
             ORDER BY id DESC LIMIT 1",
            &[],
        )?;
        let Some((custom,)) = last else {
            return Ok(0);
        };
        let custom: BTreeMap<String, String> = serde_json::from_str(&custom)?;
        custom
            .get("synced_through")
            .context("AUDIT_SYNC event without synced_through")?
            .parse()
            .context("synced_through is not a number")
    }

    /// Writes every event after the last acknowledged position as a signed batch into
    /// `outbox`; returns the file and what it holds.
    pub fn write_sync_batch(&self, outbox: &Path) -> anyhow::Result<(PathBuf, SyncRecord)> {
        let after = self.synced_through()?;
        let key = SignerKey::from_file(self.dir.join("keys").join(format!("{DEVICE}.key")))?;
        std::fs::create_dir_all(outbox)?;
        let file = outbox.join(format!("{DEVICE}-{after:08}.batch.gz"));
        let mut bytes = Vec::new();
        let summary = write_batch(&self.db, &key, after, &mut bytes)?;
        std::fs::write(&file, &bytes)?;
        let record = SyncRecord {
            after,
            size: summary.size,
            events: summary.events(),
            bytes: bytes.len() as u64,
        };
        Ok((file, record))
    }

    /// Records SCADA's acknowledgement: the next batch starts after `record.size`.
    pub fn acknowledge(&self, record: &SyncRecord) -> anyhow::Result<()> {
        self.db
            .session(SessionInfo::new("sync-agent").application(APPLICATION))
            .record_event(
                AppEvent::new("AUDIT_SYNC")
                    .detail(format!("{} events acknowledged by SCADA", record.events))
                    .custom("synced_through", record.size.to_string())
                    .custom("receiver", "scada.plant.local"),
            )?;
        Ok(())
    }
}

/// One batch shipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncRecord {
    /// Events SCADA had before.
    pub after: u64,
    /// Events SCADA has after it.
    pub size: u64,
    /// Events carried.
    pub events: u64,
    /// Compressed size of the batch.
    pub bytes: u64,
}

/// The SCADA side: it holds only the device's public key, a receipt per device (where the
/// last accepted batch ended) and the archive of accepted events.
pub struct Scada {
    key: VerifierKey,
    dir: PathBuf,
}

impl Scada {
    /// A receiver for the device whose verifier key is in `pubkey`.
    pub fn new(pubkey: &Path, dir: &Path) -> anyhow::Result<Scada> {
        std::fs::create_dir_all(dir)?;
        Ok(Scada {
            key: VerifierKey::from_file(pubkey)?,
            dir: dir.to_path_buf(),
        })
    }

    fn receipt_file(&self) -> PathBuf {
        self.dir.join(format!("{DEVICE}.receipt.json"))
    }

    /// Where the last accepted batch ended.
    pub fn receipt(&self) -> anyhow::Result<Option<BatchReceipt>> {
        let file = self.receipt_file();
        if !file.exists() {
            return Ok(None);
        }
        Ok(Some(serde_json::from_str(&std::fs::read_to_string(file)?)?))
    }

    /// Verifies a batch against the key and the receipt; on success appends its events
    /// to the archive, advances the receipt and returns the new position (the
    /// acknowledgement). A batch that fails changes nothing.
    pub fn receive(&self, batch: &Path) -> anyhow::Result<u64> {
        let previous = self.receipt()?;
        let file = std::fs::File::open(batch)?;
        let verified = verify_batch(std::io::BufReader::new(file), &self.key, previous.as_ref())
            .with_context(|| format!("batch {} rejected", batch.display()))?;
        let mut archive = String::new();
        for event in &verified.events {
            archive.push_str(&serde_json::to_string(event)?);
            archive.push('\n');
        }
        use std::io::Write as _;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.archive_file())?
            .write_all(archive.as_bytes())?;
        std::fs::write(
            self.receipt_file(),
            serde_json::to_string_pretty(&verified.receipt)?,
        )?;
        Ok(verified.receipt.size)
    }

    /// The accepted events, as export lines.
    pub fn archive_file(&self) -> PathBuf {
        self.dir.join(format!("{DEVICE}.audit.jsonl"))
    }
}

/// What the run shows.
#[derive(Debug)]
pub struct Report {
    /// Parameter changes made, each under a signature.
    pub parameter_changes: u64,
    /// Signatures refused (wrong PIN).
    pub rejected_signatures: u64,
    /// The attempt to delete audit events was refused.
    pub audit_delete_refused: bool,
    /// Pruning the trail was refused (lockdown).
    pub prune_refused: bool,
    /// The batches shipped.
    pub syncs: Vec<SyncRecord>,
    /// Events in SCADA's archive.
    pub scada_events: u64,
    /// Signed checkpoints the checkpoint sink wrote on the device.
    pub checkpoints_on_device: u64,
    /// The device's own verification.
    pub device_intact: bool,
}

/// Three weeks of operation with two maintenance-window syncs, in `dir`.
pub fn run(dir: &Path) -> anyhow::Result<Report> {
    let [ana, ben] = &OPERATORS;
    let mut report = Report {
        parameter_changes: 0,
        rejected_signatures: 0,
        audit_delete_refused: false,
        prune_refused: false,
        syncs: Vec::new(),
        scada_events: 0,
        checkpoints_on_device: 0,
        device_intact: false,
    };
    let pubkey = dir.join("device/keys").join(format!("{DEVICE}.pub"));
    let outbox = dir.join("device/outbox");
    for week in 1..=3 {
        // Each week the controller restarts (maintenance, power cycles): nothing is lost.
        let device = Device::start(&dir.join("device"))?;
        for shift in 0..6 {
            let (operator, pin) = if shift % 2 == 0 {
                (ana, ana.pin)
            } else {
                (ben, "9999")
            };
            let temperature = 180.0 + f64::from(week * 10 + shift);
            let sign = |operator: &Operator, pin: &str| {
                device.change_parameter(
                    operator,
                    pin,
                    "press-1/temperature",
                    temperature,
                    "degC",
                    "approved setpoint",
                )
            };
            if sign(operator, pin)? {
                report.parameter_changes += 1;
            } else {
                report.rejected_signatures += 1;
                // Ben signs again with the right PIN.
                if sign(ben, ben.pin)? {
                    report.parameter_changes += 1;
                }
            }
        }
        if week == 2 {
            report.audit_delete_refused = matches!(
                device
                    .db()
                    .session(SessionInfo::new("op-ben"))
                    .execute("DELETE FROM __audit_log", &[]),
                Err(Error::AuditLogReadOnly { .. })
            );
            report.prune_refused = matches!(
                device.db().prune_before(PruneBefore::Seq(10), false),
                Err(Error::RetentionRefused(_))
            );
        }
        if week >= 2 {
            // Maintenance window: the device is online for a while.
            // SCADA holds only the device's public key.
            let scada = Scada::new(&pubkey, &dir.join("scada"))?;
            let (batch, record) = device.write_sync_batch(&outbox)?;
            let acknowledged = scada.receive(&batch)?;
            anyhow::ensure!(
                acknowledged == record.size,
                "SCADA acknowledged {acknowledged}, sent {}",
                record.size
            );
            device.acknowledge(&record)?;
            report.syncs.push(record);
            report.scada_events = std::fs::read_to_string(scada.archive_file())?
                .lines()
                .count() as u64;
        }
        if week == 3 {
            report.device_intact = device.db().verify()?.is_intact();
        }
    }
    let checkpoints = std::fs::read_to_string(dir.join("device/checkpoints/line-3.checkpoints"))
        .unwrap_or_default();
    report.checkpoints_on_device = checkpoints.matches("\n\n").count() as u64;
    Ok(report)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let temp;
    let dir = match args.iter().position(|a| a == "--dir") {
        Some(i) => PathBuf::from(args.get(i + 1).context("--dir needs a directory")?),
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let report = run(&dir)?;
    println!("device {DEVICE}, working directory {}", dir.display());
    println!(
        "parameter changes under signature: {}, signatures rejected: {}",
        report.parameter_changes, report.rejected_signatures
    );
    println!(
        "lockdown: DELETE FROM __audit_log refused: {}, prune refused: {}",
        report.audit_delete_refused, report.prune_refused
    );
    for sync in &report.syncs {
        println!(
            "sync: events {}..={} ({} events, {} bytes gzip), verified by SCADA with the public key",
            sync.after + 1,
            sync.size,
            sync.events,
            sync.bytes
        );
    }
    println!(
        "SCADA archive: {} events; signed checkpoints on the device: {}; device trail intact: {}",
        report.scada_events, report.checkpoints_on_device, report.device_intact
    );
    Ok(())
}
