//! Every SQL statement of the product brief's examples, run unmodified — SQLite-style
//! schemas, `?`/`?N` parameters, RETURNING, `datetime('now', ...)` — on both backends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use heliosdb_lite::{Database, Output, SessionInfo, Value, params};

const CUSTOMERS: &str = "
CREATE TABLE IF NOT EXISTS customers (
id INTEGER PRIMARY KEY AUTOINCREMENT,
name TEXT NOT NULL,
email TEXT UNIQUE NOT NULL,
tenant_id TEXT NOT NULL,
created_at INTEGER DEFAULT (strftime('%s', 'now'))
)
";

const CUSTOMERS_INDEX: &str = "
CREATE INDEX IF NOT EXISTS idx_customers_tenant
ON customers(tenant_id)
";

const PATIENTS: &str = "
CREATE TABLE IF NOT EXISTS patients (
id INTEGER PRIMARY KEY AUTOINCREMENT,
patient_id TEXT UNIQUE NOT NULL,
name TEXT NOT NULL,
date_of_birth DATE NOT NULL,
medical_record_number TEXT UNIQUE,
created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
)
";

const VITAL_SIGNS: &str = "
CREATE TABLE IF NOT EXISTS vital_signs (
id INTEGER PRIMARY KEY AUTOINCREMENT,
patient_id TEXT NOT NULL,
measurement_type TEXT NOT NULL, -- 'heart_rate', 'blood_pressure', 'glucose'
value REAL NOT NULL,
unit TEXT NOT NULL,
measured_at TIMESTAMP NOT NULL,
device_id TEXT NOT NULL,
synced_to_cloud BOOLEAN DEFAULT 0,
FOREIGN KEY (patient_id) REFERENCES patients(patient_id)
)
";

const VITALS_INDEX: &str = "
CREATE INDEX IF NOT EXISTS idx_vitals_patient_time
ON vital_signs(patient_id, measured_at DESC)
";

fn scenario(db: &Database) {
    let mut s = db.session(SessionInfo::new("app"));
    for ddl in [
        CUSTOMERS,
        CUSTOMERS_INDEX,
        PATIENTS,
        VITAL_SIGNS,
        VITALS_INDEX,
    ] {
        s.execute(ddl, &[]).unwrap();
        // Idempotent, as the brief's startup code expects.
        s.execute(ddl, &[]).unwrap();
    }

    // create_customer
    let rows = s
        .query(
            "INSERT INTO customers (name, email, tenant_id)
VALUES (?1, ?2, ?3)
RETURNING id, name, email, tenant_id, created_at",
            &params!["Ada", "ada@example.com", "t1"],
        )
        .unwrap();
    assert_eq!(rows.len(), 1);
    let id = rows.get::<i64>(0, "id").unwrap();
    assert_eq!(id, 1);
    assert_eq!(rows.get::<String>(0, "email").unwrap(), "ada@example.com");
    let created_at = rows.get::<i64>(0, "created_at").unwrap();
    let now = heliosdb_lite::chrono::Utc::now().timestamp();
    assert!(
        (now - created_at).abs() < 120,
        "created_at {created_at} vs now {now}"
    );
    assert_eq!(s.last_insert_id(), Some(1));
    // The email is UNIQUE.
    let duplicate = s.query(
        "INSERT INTO customers (name, email, tenant_id)
VALUES (?1, ?2, ?3)
RETURNING id, name, email, tenant_id, created_at",
        &params!["Eve", "ada@example.com", "t1"],
    );
    assert_eq!(duplicate.unwrap_err().kind(), "constraint");

    // update_customer: the id arrives as a string parameter.
    let out = s
        .execute(
            "UPDATE customers
SET name = ?1, email = ?2
WHERE id = ?3 AND tenant_id = ?4",
            &params!["Ada L.", "ada@lovelace.org", id.to_string(), "t1"],
        )
        .unwrap();
    assert_eq!(out[0].affected(), Some(1));

    // get_audit_events: the last 30 days of data changes.
    let events = s
        .query(
            "SELECT id, timestamp, session_id, user, operation, target, query,
affected_rows, success, error, checksum
FROM __audit_log
WHERE timestamp >= datetime('now', '-30 days')
AND operation IN ('INSERT', 'UPDATE', 'DELETE')
ORDER BY timestamp DESC
LIMIT 1000",
            &[],
        )
        .unwrap();
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(events.get::<String>(0, "operation").unwrap(), "UPDATE");
    let none = s
        .query(
            "SELECT id FROM __audit_log WHERE timestamp >= datetime('now', '+1 day')",
            &[],
        )
        .unwrap();
    assert!(none.is_empty());

    // record_vital_sign, with an ISO-8601 timestamp as Python's isoformat() writes it.
    let measured_at = heliosdb_lite::chrono::Utc::now()
        .naive_utc()
        .format("%Y-%m-%dT%H:%M:%S%.6f")
        .to_string();
    s.execute(
        "INSERT INTO patients (patient_id, name, date_of_birth) VALUES (?, ?, ?)",
        &params!["P-1", "Grace", "1906-12-09"],
    )
    .unwrap();
    let result = s
        .execute(
            "
INSERT INTO vital_signs (patient_id, measurement_type, value, unit, measured_at, device_id)
VALUES (?, ?, ?, ?, ?, ?)
RETURNING id
",
            &params![
                "P-1",
                "heart_rate",
                72.5,
                "bpm",
                measured_at.clone(),
                "dev-9"
            ],
        )
        .unwrap();
    let Output::Rows(rows) = &result[0] else {
        panic!("RETURNING gives rows: {result:?}")
    };
    assert_eq!(rows.rows[0][0], Value::I64(1));

    // get_patient_vitals
    let vitals = s
        .query(
            "
SELECT id, measurement_type, value, unit, measured_at, device_id
FROM vital_signs
WHERE patient_id = ?
AND measured_at >= ?
ORDER BY measured_at DESC
",
            &params!["P-1", "2000-01-01T00:00:00"],
        )
        .unwrap();
    assert_eq!(vitals.len(), 1);
    let flags = s
        .query("SELECT synced_to_cloud FROM vital_signs", &[])
        .unwrap();
    assert_eq!(flags.rows[0][0], Value::Bool(false));

    // update_patient
    let out = s
        .execute(
            "UPDATE patients SET name = ?, date_of_birth = ? WHERE patient_id = ?",
            &params!["Grace H.", "1906-12-09", "P-1"],
        )
        .unwrap();
    assert_eq!(out[0].affected(), Some(1));

    // delete_patient_data
    let vitals = s
        .execute(
            "DELETE FROM vital_signs WHERE patient_id = ?",
            &params!["P-1"],
        )
        .unwrap();
    assert_eq!(vitals[0].affected(), Some(1));
    let patients = s
        .execute("DELETE FROM patients WHERE patient_id = ?", &params!["P-1"])
        .unwrap();
    assert_eq!(patients[0].affected(), Some(1));

    // delete_customer
    s.execute(
        "DELETE FROM customers WHERE id = ?1",
        &params![id.to_string()],
    )
    .unwrap();

    // Compliance queries over the audit log.
    let integrity = s
        .query(
            "SELECT id, timestamp, checksum FROM __audit_log ORDER BY id ASC",
            &[],
        )
        .unwrap();
    assert!(integrity.len() > 10);
    let deletions = s
        .query(
            "SELECT timestamp, affected_rows
FROM __audit_log
WHERE query LIKE ?
AND operation = 'DELETE'
ORDER BY timestamp DESC
LIMIT 1",
            &params!["%patient_id%"],
        )
        .unwrap();
    assert_eq!(deletions.get::<i64>(0, "affected_rows").unwrap(), 1);
    let count = s
        .query(
            "SELECT COUNT(*) FROM __audit_log
WHERE query LIKE ? AND operation = 'DELETE'",
            &params!["%DELETE%"],
        )
        .unwrap();
    assert_eq!(count.rows[0][0], Value::I64(3));
    let start = "2000-01-01 00:00:00";
    let end = "2999-01-01 00:00:00";
    let window = s
        .query(
            "
SELECT id, timestamp, session_id, user, operation, target, query,
affected_rows, success, error, checksum
FROM __audit_log
WHERE timestamp >= ? AND timestamp <= ?
 AND target = ? ORDER BY timestamp ASC",
            &params![start, end, "customers"],
        )
        .unwrap();
    assert!(window.len() >= 5, "{window:?}");
    let accesses = s
        .query(
            "SELECT timestamp, operation, target, query, success
FROM __audit_log
WHERE query LIKE ?
AND operation IN ('SELECT', 'INSERT', 'UPDATE', 'DELETE')
ORDER BY timestamp DESC",
            &params!["%customers%"],
        )
        .unwrap();
    assert!(accesses.len() >= 4, "{accesses:?}");
    assert!(db.verify().unwrap().is_intact());
}

#[test]
fn brief_sql_on_memory() {
    scenario(&Database::in_memory().unwrap());
}

#[test]
fn brief_sql_on_fjall() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path().join("db")).unwrap();
    scenario(&db);
    drop(db);
    // The schema, sequences and unique constraints survive reopening.
    let db = Database::open(dir.path().join("db")).unwrap();
    let mut s = db.session(SessionInfo::new("app"));
    let rows = s
        .query(
            "INSERT INTO customers (name, email, tenant_id) VALUES (?1, ?2, ?3) RETURNING id",
            &params!["Bo", "bo@example.com", "t2"],
        )
        .unwrap();
    assert_eq!(rows.get::<i64>(0, "id").unwrap(), 2, "ids are never reused");
}
