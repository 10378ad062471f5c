//! The smallest useful program: open a durable database, write, read.
//!
//! Run with `cargo run --example quickstart`.

use heliosdb_lite::chrono::NaiveDate;
use heliosdb_lite::{Database, SessionInfo, params};

fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let db = Database::open(dir.path())?;
    let mut session = db.session(
        SessionInfo::new("dr.smith")
            .application("clinic-app")
            .client_addr("10.0.0.7"),
    );

    session.execute(
        "CREATE TABLE patient (id INTEGER PRIMARY KEY, name TEXT NOT NULL, born DATE)",
        &[],
    )?;
    // Parameters are typed values: a DATE column takes a date, not a string.
    let born = NaiveDate::from_ymd_opt(1815, 12, 10).ok_or_else(|| anyhow::anyhow!("bad date"))?;
    session.execute(
        "INSERT INTO patient VALUES ($1, $2, $3)",
        &params![1, "Ada Lovelace", born],
    )?;
    let rows = session.query("SELECT id, name, born FROM patient", &[])?;
    for row in &rows {
        let id: i64 = row.get("id")?;
        let name: String = row.get("name")?;
        println!("{id} {name} {:?}", row.get_ref("born").ok());
    }
    Ok(())
}
