//! The Rust API as rusqlite users expect it, on a real database: rows by index and by
//! name, typed conversions with errors that name the column, `FromRow` for tuples and
//! structs, `query_row`/`query_opt`/`query_as`, the `Transaction` guard that rolls back on
//! drop, and `execute_batch`, which runs and records every statement as written.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use heliosdb_lite::chrono::{NaiveDate, NaiveDateTime};
use heliosdb_lite::{Database, Error, FromRow, Row, Session, SessionInfo, Value, params};

fn session() -> (Database, Session) {
    let db = Database::in_memory().expect("open");
    let s = db.session(SessionInfo::new("api"));
    (db, s)
}

#[derive(Debug, PartialEq)]
struct Patient {
    id: i64,
    name: String,
    ward: Option<String>,
}

impl FromRow for Patient {
    fn from_row(row: &Row<'_>) -> heliosdb_lite::Result<Self> {
        Ok(Patient {
            id: row.get("id")?,
            name: row.get("name")?,
            ward: row.get("ward")?,
        })
    }
}

fn with_patients(s: &mut Session) {
    s.execute_batch(
        "CREATE TABLE patient (id INTEGER PRIMARY KEY, name TEXT NOT NULL, ward TEXT);
         INSERT INTO patient VALUES (1, 'Ada', 'cardiology');
         INSERT INTO patient VALUES (2, 'Grace', NULL);",
    )
    .expect("script");
}

#[test]
fn rows_map_to_structs_and_tuples() {
    let (_db, mut s) = session();
    with_patients(&mut s);
    let all: Vec<Patient> = s
        .query_as("SELECT id, name, ward FROM patient ORDER BY id", &[])
        .unwrap();
    assert_eq!(
        all,
        [
            Patient {
                id: 1,
                name: "Ada".into(),
                ward: Some("cardiology".into())
            },
            Patient {
                id: 2,
                name: "Grace".into(),
                ward: None
            },
        ]
    );
    let (name, ward): (String, Option<String>) = s
        .query_row("SELECT name, ward FROM patient WHERE id = $1", &params![2])
        .unwrap();
    assert_eq!((name.as_str(), ward), ("Grace", None));
    let none: Option<(i64,)> = s
        .query_opt("SELECT id FROM patient WHERE id = 99", &[])
        .unwrap();
    assert_eq!(none, None);
    assert!(matches!(
        s.query_row::<(i64,)>("SELECT id FROM patient WHERE id = 99", &[]),
        Err(Error::NoRows)
    ));
    // Row by row, by index and by name.
    let rows = s
        .query("SELECT id, name FROM patient ORDER BY id", &[])
        .unwrap();
    let names: Vec<String> = rows.iter().map(|row| row.get(1).unwrap()).collect();
    assert_eq!(names, ["Ada", "Grace"]);
    for row in &rows {
        let id: i32 = row.get("id").unwrap();
        assert!(id == 1 || id == 2);
    }
}

#[test]
fn conversions_cover_the_widths_and_types_and_errors_name_the_column() {
    let (_db, mut s) = session();
    s.execute_batch(
        "CREATE TABLE v (i INTEGER, big INTEGER, r REAL, t TEXT, b BOOLEAN, d DATE, ts TIMESTAMP, dec DECIMAL, raw BYTEA);
         INSERT INTO v VALUES (300, 9223372036854775807, 2.5, 'x', TRUE, DATE '2024-02-29', TIMESTAMP '2024-02-29 12:30:00', 12.5, X'0102');",
    )
    .unwrap();
    let rows = s.query("SELECT * FROM v", &[]).unwrap();
    let row = rows.row(0).unwrap();
    assert_eq!(row.get::<i16>("i").unwrap(), 300);
    assert_eq!(row.get::<u64>("i").unwrap(), 300);
    assert_eq!(row.get::<i64>("big").unwrap(), i64::MAX);
    assert_eq!(row.get::<f64>("r").unwrap(), 2.5);
    assert_eq!(row.get::<f64>("i").unwrap(), 300.0);
    assert!(row.get::<bool>("b").unwrap());
    assert_eq!(
        row.get::<NaiveDate>("d").unwrap(),
        NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()
    );
    assert_eq!(
        row.get::<NaiveDateTime>("ts").unwrap().to_string(),
        "2024-02-29 12:30:00"
    );
    assert_eq!(
        row.get::<heliosdb_lite::engine::Value>("t").unwrap(),
        Value::Str("x".into())
    );
    assert_eq!(row.get::<Vec<u8>>("raw").unwrap(), [1, 2]);
    assert_eq!(
        row.get::<heliosdb_lite::Decimal>("dec")
            .unwrap()
            .to_string(),
        "12.5"
    );

    // Out of range, wrong type, missing column: typed errors that say which.
    let error = row.get::<u8>("i").unwrap_err();
    assert!(
        matches!(error, Error::ColumnType { ref column, .. } if column == "i"),
        "{error:?}"
    );
    assert!(error.to_string().contains("u8"), "{error}");
    let error = row.get::<i32>("big").unwrap_err().to_string();
    assert!(
        error.contains("\"big\"") && error.contains("i32"),
        "{error}"
    );
    let error = row.get::<String>("i").unwrap_err().to_string();
    assert!(
        error.contains("INTEGER") && error.contains("TEXT"),
        "{error}"
    );
    let error = row.get::<i64>("missing").unwrap_err();
    assert!(matches!(error, Error::NoSuchColumn { .. }), "{error:?}");
    assert!(error.to_string().contains("missing"));
    assert!(error.is_user_error());
}

#[test]
fn a_dropped_transaction_rolls_back_and_a_committed_one_stays() {
    let (db, mut s) = session();
    with_patients(&mut s);
    {
        let mut tx = s.transaction().unwrap();
        tx.execute("DELETE FROM patient", &[]).unwrap();
        assert_eq!(
            tx.query_row::<(i64,)>("SELECT COUNT(*) FROM patient", &[])
                .unwrap(),
            (0,)
        );
        // Dropped without commit: an early return, a `?`, a panic.
    }
    assert!(!s.in_transaction());
    assert_eq!(
        s.query_row::<(i64,)>("SELECT COUNT(*) FROM patient", &[])
            .unwrap(),
        (2,)
    );
    let mut tx = s.transaction().unwrap();
    tx.execute("INSERT INTO patient VALUES (3, 'Edsger', NULL)", &[])
        .unwrap();
    tx.commit().unwrap();
    let mut tx = s.transaction().unwrap();
    tx.execute("INSERT INTO patient VALUES (4, 'Barbara', NULL)", &[])
        .unwrap();
    tx.rollback().unwrap();
    let ids: Vec<(i64,)> = s
        .query_as("SELECT id FROM patient ORDER BY id", &[])
        .unwrap();
    assert_eq!(ids, [(1,), (2,), (3,)]);
    // The statements and the rollbacks are on record.
    let mut auditor = db.session(SessionInfo::new("auditor"));
    let ops: Vec<(String,)> = auditor
        .query_as(
            "SELECT operation FROM __audit_log WHERE user = 'api' AND class = 'TXN' ORDER BY id",
            &[],
        )
        .unwrap();
    let ops: Vec<&str> = ops.iter().map(|(op,)| op.as_str()).collect();
    assert_eq!(
        ops,
        ["BEGIN", "ROLLBACK", "BEGIN", "COMMIT", "BEGIN", "ROLLBACK"]
    );
}

#[test]
fn execute_batch_records_every_statement_as_written() {
    let (db, mut s) = session();
    let script = "CREATE TABLE ward (\n  id INTEGER PRIMARY KEY AUTOINCREMENT,\n  name TEXT\n);\n\
                  INSERT INTO ward (name) VALUES ('a;b');\n\
                  -- a comment between statements\n\
                  INSERT INTO ward (name) VALUES ('c');";
    let outputs = s.execute_batch(script).unwrap();
    assert_eq!(outputs.len(), 3);
    let mut auditor = db.session(SessionInfo::new("auditor"));
    let queries: Vec<(String,)> = auditor
        .query_as(
            "SELECT query FROM __audit_log WHERE user = 'api' ORDER BY id",
            &[],
        )
        .unwrap();
    let queries: Vec<&str> = queries.iter().map(|(q,)| q.as_str()).collect();
    assert_eq!(
        queries,
        [
            "CREATE TABLE ward (\n  id INTEGER PRIMARY KEY AUTOINCREMENT,\n  name TEXT\n)",
            "INSERT INTO ward (name) VALUES ('a;b')",
            "-- a comment between statements\nINSERT INTO ward (name) VALUES ('c')",
        ]
    );
    // A syntax error stops the script, is returned, and is recorded like any failure.
    let error = s
        .execute_batch("INSERT INTO ward (name) VALUES ('d'); SELEC oops; INSERT INTO ward (name) VALUES ('e')")
        .unwrap_err();
    assert!(matches!(error, Error::Sql(_)), "{error:?}");
    let names: Vec<(String,)> = s
        .query_as("SELECT name FROM ward ORDER BY id", &[])
        .unwrap();
    let names: Vec<&str> = names.iter().map(|(n,)| n.as_str()).collect();
    assert_eq!(names, ["a;b", "c", "d"]);
    let failed: Vec<(String, bool)> = auditor
        .query_as(
            "SELECT operation, success FROM __audit_log WHERE query = 'SELEC oops'",
            &[],
        )
        .unwrap();
    assert_eq!(failed, [("INVALID".to_owned(), false)]);
}
