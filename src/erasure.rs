//! Erasing a data subject for good, journal included.

use crate::{Database, Error, StorageError};
use heliosdb_engine::audit::redact::{self, ForgetReport};

/// Erases the data subject `value` (GDPR Art. 17) from the database that `open` opens,
/// down to its files: [`redact::forget_subject`] destroys the subject's key, records the
/// erasure as a SYSTEM `FORGET_SUBJECT` event by `by` and reclaims every keyspace, so rows
/// the application already deleted leave the table files; then the database is closed and
/// its backend's erasure step runs ([`StorageBackend::erasure_after_close`]: on fjall the
/// write-ahead journal, which may still hold those deleted values, is sealed), and the
/// database is opened again and reclaimed, which deletes the sealed journal; the step then
/// checks that nothing it had to remove is left. The ledger still verifies afterwards.
///
/// [`StorageBackend::erasure_after_close`]: crate::StorageBackend::erasure_after_close
///
/// `open` is called twice and must open the same database each time. No other handle on
/// it may be open, in this process or another: the journal can be sealed only while the
/// database is closed (a [`StorageError::Locked`] error names the directory otherwise).
/// Delete the subject's rows before calling this; rows the application keeps are its own
/// to delete. `heliosdb audit forget-subject ID` runs this.
///
/// ```
/// # fn main() -> Result<(), heliosdb_lite::Error> {
/// use heliosdb_lite::{Database, SessionInfo, erase_subject, params};
/// let dir = tempfile::tempdir().expect("temp dir");
/// std::fs::write(
///     dir.path().join("heliosdb.toml"),
///     "[audit]\npreset = \"gdpr\"\nredact_columns = [\"email\"]\nredaction_mode = \"encrypt\"\n",
/// )
/// .expect("config");
/// {
///     let db = Database::open(dir.path())?;
///     let mut s = db.session(SessionInfo::new("app"));
///     s.execute("CREATE TABLE person (id INTEGER PRIMARY KEY, email TEXT)", &[])?;
///     s.execute("INSERT INTO person VALUES (1, $1)", &params!["ann@example.org"])?;
///     s.execute("DELETE FROM person WHERE email = $1", &params!["ann@example.org"])?;
/// } // every handle closed
/// let report = erase_subject(|| Database::open(dir.path()), "ann@example.org", "dpo")?;
/// assert!(report.key_destroyed);
/// # Ok(()) }
/// ```
pub fn erase_subject<E: From<Error>>(
    mut open: impl FnMut() -> Result<Database, E>,
    value: &str,
    by: &str,
) -> Result<ForgetReport, E> {
    let db = open()?;
    let report = redact::forget_subject(&db, value, by)?;
    let step = db.backend().erasure_after_close();
    drop(db);
    if let Some(mut step) = step {
        step.before_reopen().map_err(Error::from)?;
        let db = open()?;
        let keyspaces = db.backend().keyspaces().map_err(Error::from)?;
        let names: Vec<&str> = keyspaces.iter().map(String::as_str).collect();
        db.backend().reclaim(&names).map_err(Error::from)?;
        drop(db);
        step.check_after().map_err(|e| {
            Error::Storage(StorageError::Io(std::io::Error::other(format!(
                "the subject's key is destroyed, but {e}"
            ))))
        })?;
    }
    Ok(report)
}
