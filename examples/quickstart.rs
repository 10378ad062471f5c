//! The smallest useful program: open a durable database, write, read.
//!
//! Run with `cargo run --example quickstart`.

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
    session.execute(
        "INSERT INTO patient VALUES ($1, $2, $3)",
        &params![1, "Ada Lovelace", "1815-12-10"],
    )?;
    let rows = session.query("SELECT id, name, born FROM patient", &[])?;
    for i in 0..rows.len() {
        println!(
            "{} {} {:?}",
            rows.get::<i64>(i, "id")?,
            rows.get::<String>(i, "name")?,
            rows.value(i, "born")
        );
    }
    Ok(())
}
