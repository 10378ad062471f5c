//! [`Transaction`]: a guard for `BEGIN … COMMIT` that rolls back when dropped.

use crate::error::Result;
use crate::session::Session;

/// An open transaction of a [`Session`], from [`Session::transaction`]. Statements run
/// through it (it derefs to the session); [`commit`](Self::commit) makes them one atomic
/// commit with their audit events; [`rollback`](Self::rollback), or dropping the guard
/// without a commit (an early `?` return, a panic), undoes them — the statements and the
/// rollback are still recorded.
///
/// ```no_run
/// # fn run(session: &mut heliosdb_engine::Session) -> heliosdb_engine::Result<()> {
/// let mut tx = session.transaction()?;
/// tx.execute("UPDATE account SET balance = balance - 10 WHERE id = 1", &[])?;
/// tx.execute("UPDATE account SET balance = balance + 10 WHERE id = 2", &[])?;
/// tx.commit()?; // without this line, the guard's drop rolls both back
/// # Ok(()) }
/// ```
#[must_use = "a transaction that is dropped without commit() rolls back"]
pub struct Transaction<'s> {
    session: &'s mut Session,
}

impl<'s> Transaction<'s> {
    pub(crate) fn new(session: &'s mut Session) -> Self {
        Self { session }
    }

    /// Commits. On an error (a conflict, a failed write) the transaction is rolled back.
    pub fn commit(self) -> Result<()> {
        self.session.execute("COMMIT", &[]).map(drop)
    }

    /// Rolls back.
    pub fn rollback(self) -> Result<()> {
        self.session.execute("ROLLBACK", &[]).map(drop)
    }
}

impl std::ops::Deref for Transaction<'_> {
    type Target = Session;

    fn deref(&self) -> &Session {
        self.session
    }
}

impl std::ops::DerefMut for Transaction<'_> {
    fn deref_mut(&mut self) -> &mut Session {
        self.session
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        // Committed, rolled back, or ended by a COMMIT/ROLLBACK run through the guard:
        // nothing left to undo. A failed rollback leaves the session's own rollback on
        // drop as the last resort; there is no caller to tell.
        if self.session.in_transaction() {
            let _ = self.session.execute("ROLLBACK", &[]);
        }
    }
}
