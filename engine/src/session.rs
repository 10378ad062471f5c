//! `Session`: who is connected, and the statements they run.

pub use crate::audit::AppEvent;
use crate::audit::{AuditEvent, CHECKPOINT_TABLE, ParamCapture, redact, table as audit_table};
use crate::classify::{Classification, EventClass, classify, writes_table};
use crate::dialect;
use crate::error::{Error, Result};
pub use crate::output::Output;
use crate::row::{FromRow, Rows};
use crate::store::SqlStore;
use bigdecimal::BigDecimal;
use gluesql_core::data::Value;
use gluesql_core::sqlparser::ast::Statement as SqlStatement;
use gluesql_core::translate::{IntoParamLiteral, ParamLiteral};
use sqlparser::ast::{
    Expr as SqlExpr, FunctionArguments, Ident, Value as SqlValue, visit_expressions_mut,
};
use std::collections::BTreeMap;
use std::fmt;
use std::ops::ControlFlow;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;

/// Who is connected and from where. Recorded with every statement the session runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionInfo {
    /// Authenticated user name.
    pub user: String,
    /// Application or service name.
    pub application: Option<String>,
    /// Client network address.
    pub client_addr: Option<String>,
    /// Application-defined fields (tenant, request id, device id, ...).
    pub custom: BTreeMap<String, String>,
}

impl SessionInfo {
    /// Session info for `user`.
    pub fn new(user: impl Into<String>) -> Self {
        Self {
            user: user.into(),
            ..Self::default()
        }
    }

    /// Sets the application name.
    #[must_use]
    pub fn application(mut self, application: impl Into<String>) -> Self {
        self.application = Some(application.into());
        self
    }

    /// Sets the client address.
    #[must_use]
    pub fn client_addr(mut self, client_addr: impl Into<String>) -> Self {
        self.client_addr = Some(client_addr.into());
        self
    }

    /// Adds a custom field.
    #[must_use]
    pub fn custom(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.custom.insert(key.into(), value.into());
        self
    }
}

/// A bound parameter value for `$1`/`?1`, `$2`/`?2`, ... and `?` placeholders. Build with
/// [`params!`] or `Param::from(value)`; parameters are passed as values, never spliced
/// into SQL text.
///
/// Numbers, strings, booleans and NULL bind exactly as the same literal written in SQL
/// would — `params![1]` fits an `INTEGER`, `DECIMAL` or `FLOAT` column and `"2024-05-01"` a
/// `DATE` column — but as a node of the parsed statement, never as SQL text. Other values
/// (dates, timestamps, bytes, UUIDs, ...) bind as typed values.
///
/// [`params!`]: crate::params
#[derive(Clone)]
pub struct Param(ParamLiteral);

impl<T: IntoParamLiteral> From<T> for Param {
    fn from(value: T) -> Self {
        Param(value.into_param_literal())
    }
}

impl Param {
    /// SQL NULL.
    pub fn null() -> Self {
        Param(ParamLiteral::null())
    }

    /// The SQL literal this parameter stands for, when it has one.
    fn sql_literal(&self) -> Option<SqlExpr> {
        let number = |text: String| {
            BigDecimal::from_str(&text)
                .ok()
                .map(|n| SqlExpr::Value(SqlValue::Number(n, false)))
        };
        match self.value() {
            Value::Null => Some(SqlExpr::Value(SqlValue::Null)),
            Value::Bool(b) => Some(SqlExpr::Value(SqlValue::Boolean(b))),
            Value::Str(s) => Some(SqlExpr::Value(SqlValue::SingleQuotedString(s))),
            Value::I8(v) => number(v.to_string()),
            Value::I16(v) => number(v.to_string()),
            Value::I32(v) => number(v.to_string()),
            Value::I64(v) => number(v.to_string()),
            Value::I128(v) => number(v.to_string()),
            Value::U8(v) => number(v.to_string()),
            Value::U16(v) => number(v.to_string()),
            Value::U32(v) => number(v.to_string()),
            Value::U64(v) => number(v.to_string()),
            Value::U128(v) => number(v.to_string()),
            Value::F32(v) if v.is_finite() => number(v.to_string()),
            Value::F64(v) if v.is_finite() => number(v.to_string()),
            Value::Decimal(v) => number(v.to_string()),
            _ => None,
        }
    }

    /// The parameter as a value.
    pub fn value(&self) -> Value {
        match self.0.clone().into_expr() {
            gluesql_core::ast::Expr::Value(value) => value,
            _ => Value::Null,
        }
    }
}

impl fmt::Debug for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Param({:?})", self.value())
    }
}

/// Builds an array of [`Param`]s from values of different types; pass it as `&params![...]`.
///
/// ```
/// let params = heliosdb_engine::params![1_i64, "alice", None::<i64>];
/// assert_eq!(params.len(), 3);
/// ```
#[macro_export]
macro_rules! params {
    ($($value:expr),* $(,)?) => {
        [$($crate::Param::from($value)),*]
    };
}

/// Replaces each `$n` placeholder whose parameter has a SQL literal form with that literal,
/// in the parsed statement, so it is typed exactly as the literal would be. Placeholders
/// left in place are bound by GlueSQL as typed values.
fn bind_literals(statement: &mut SqlStatement, params: &[Param]) {
    let _ = visit_expressions_mut(statement, |expr| {
        if let SqlExpr::Value(SqlValue::Placeholder(name)) = expr {
            let literal = name
                .strip_prefix('$')
                .and_then(|n| n.parse::<usize>().ok())
                .and_then(|n| n.checked_sub(1))
                .and_then(|index| params.get(index))
                .and_then(Param::sql_literal);
            if let Some(literal) = literal {
                *expr = literal;
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

/// True for statements that cannot write: they need no write lock.
fn is_read_only(statement: &SqlStatement) -> bool {
    matches!(
        statement,
        SqlStatement::Query(_)
            | SqlStatement::ShowTables { .. }
            | SqlStatement::ShowColumns { .. }
            | SqlStatement::ShowVariable { .. }
            | SqlStatement::ShowFunctions { .. }
            | SqlStatement::StartTransaction { .. }
            | SqlStatement::Commit { .. }
            | SqlStatement::Rollback { .. }
            | SqlStatement::Explain { .. }
    )
}

/// A connection to a [`Database`](crate::Database): runs SQL on behalf of one user.
///
/// Each statement outside `BEGIN ... COMMIT` is atomic on its own. Inside an explicit
/// transaction a failing statement is undone on its own and the transaction stays open;
/// `COMMIT` makes the rest durable at once, `ROLLBACK` (or dropping the session) discards it.
pub struct Session {
    store: SqlStore,
    info: SessionInfo,
    id: u64,
    /// The id the last successful INSERT generated or was given for an auto-increment
    /// column.
    last_insert_id: Option<i64>,
    /// Parsed statements by SQL text: an application running the same statements with new
    /// parameters parses each text once. Parsing depends on the text alone.
    parsed: std::collections::HashMap<String, Arc<Parsed>>,
    /// Clear values the current statement's event holds as redaction tokens: kept out of
    /// its error message too.
    redacted: Vec<String>,
}

/// What a statement's event keeps of its text and parameters ([`Session::capture`]).
struct Capture {
    text: String,
    params: Vec<String>,
    /// The clear values replaced by tokens.
    redacted: Vec<String>,
}

/// Distinct statement texts a session keeps parsed; the cache starts over beyond this.
const PARSE_CACHE_LIMIT: usize = 256;

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("info", &self.info)
            .field("in_transaction", &self.store.in_transaction())
            .finish()
    }
}

impl Session {
    pub(crate) fn new(mut store: SqlStore, info: SessionInfo, id: u64) -> Self {
        store.set_managed();
        Self {
            store,
            info,
            id,
            last_insert_id: None,
            parsed: std::collections::HashMap::new(),
            redacted: Vec::new(),
        }
    }

    /// This session's id, unique within the open database.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Who is connected.
    pub fn info(&self) -> &SessionInfo {
        &self.info
    }

    /// True inside `BEGIN ... COMMIT/ROLLBACK`.
    pub fn in_transaction(&self) -> bool {
        self.store.in_transaction()
    }

    /// The id the session's last successful INSERT generated (or was given) for a table's
    /// auto-increment column — `INTEGER PRIMARY KEY [AUTOINCREMENT]` or
    /// `GENERATED ... AS IDENTITY` — like SQLite's `last_insert_rowid()`, which SQL can
    /// also call. `None` before the first such INSERT. A statement that fails, or is
    /// undone by `ROLLBACK`, does not change it in SQL's sense: ids it took are handed
    /// out again.
    pub fn last_insert_id(&self) -> Option<i64> {
        self.last_insert_id
    }

    /// Rows this session's table scans have read so far. For tests that prove a statement
    /// reads only the rows it needs; not a stable interface.
    #[doc(hidden)]
    pub fn rows_scanned(&self) -> u64 {
        self.store.rows_scanned()
    }

    /// Rows this session's index scans have read so far (see
    /// [`rows_scanned`](Self::rows_scanned)).
    #[doc(hidden)]
    pub fn rows_read_by_index(&self) -> u64 {
        self.store.rows_read_by_index()
    }

    /// Runs one or more `;`-separated statements with their placeholders bound to `params`:
    /// `$1`, `?1` (the first parameter) or `?` (the next one, counting left to right),
    /// returning one [`Output`] per statement. Stops at the first failing statement and
    /// returns its error; statements before it keep their effect.
    ///
    /// Every statement — also a failing one — produces an audit event (as the database's
    /// [`AuditPolicy`](crate::audit::AuditPolicy) selects), sealed into `__audit_log` in the
    /// same atomic commit as the statement's data change. Inside `BEGIN ... COMMIT` the
    /// events become durable with the `COMMIT`; after `ROLLBACK` the data is gone but the
    /// statements and the rollback are still recorded.
    ///
    /// See the `heliosdb-lite` crate's documentation for a complete example.
    pub fn execute(&mut self, sql: &str, params: &[Param]) -> Result<Vec<Output>> {
        let started = Instant::now();
        let timestamp_us = now_micros();
        let statements = match self.parse_cached(sql) {
            Ok(statements) => statements,
            Err(error) => {
                self.record_invalid(sql, params, started, timestamp_us, &error);
                return Err(error);
            }
        };
        self.run_all(sql, &statements, params)
    }

    /// Runs a script of `;`-separated statements one by one, each with its own text as
    /// written ([`script::split`](crate::script::split)) — so each is recorded as typed,
    /// and a syntax error in one is recorded like any failed statement. Stops at the first
    /// failing statement and returns its error; the statements before it keep their
    /// effect. Returns every statement's outputs, in order. Takes no parameters, like
    /// rusqlite's `execute_batch`.
    ///
    /// ```no_run
    /// # fn run(session: &mut heliosdb_engine::Session) -> heliosdb_engine::Result<()> {
    /// session.execute_batch(
    ///     "CREATE TABLE ward (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT);
    ///      INSERT INTO ward (name) VALUES ('cardiology');
    ///      INSERT INTO ward (name) VALUES ('oncology');",
    /// )?;
    /// # Ok(()) }
    /// ```
    pub fn execute_batch(&mut self, script: &str) -> Result<Vec<Output>> {
        let mut outputs = Vec::new();
        for statement in crate::script::split(script) {
            outputs.extend(self.execute(statement.text, &[])?);
        }
        Ok(outputs)
    }

    /// The first row of a query converted with [`FromRow`] (a tuple, a struct of yours);
    /// [`Error::NoRows`] when there is none.
    pub fn query_row<T: FromRow>(&mut self, sql: &str, params: &[Param]) -> Result<T> {
        self.query_opt(sql, params)?.ok_or(Error::NoRows)
    }

    /// The first row of a query converted with [`FromRow`], or `None` when there is none.
    pub fn query_opt<T: FromRow>(&mut self, sql: &str, params: &[Param]) -> Result<Option<T>> {
        let rows = self.query(sql, params)?;
        rows.row(0).map(|row| T::from_row(&row)).transpose()
    }

    /// Every row of a query converted with [`FromRow`].
    pub fn query_as<T: FromRow>(&mut self, sql: &str, params: &[Param]) -> Result<Vec<T>> {
        self.query(sql, params)?.map()
    }

    /// Begins a transaction (`BEGIN`) and returns its guard: statements run through it
    /// (it derefs to the session), [`Transaction::commit`] commits, and dropping it
    /// without a commit rolls back.
    pub fn transaction(&mut self) -> Result<crate::Transaction<'_>> {
        self.execute("BEGIN", &[])?;
        Ok(crate::Transaction::new(self))
    }

    /// Parses `sql` once, for [`execute_prepared`](Self::execute_prepared) and
    /// [`query_prepared`](Self::query_prepared) to run many times with new parameters.
    /// A parse error is returned here (and recorded, as `execute` records it).
    pub fn prepare(&mut self, sql: &str) -> Result<Prepared> {
        let started = Instant::now();
        let timestamp_us = now_micros();
        match self.parse_cached(sql) {
            Ok(statements) => Ok(Prepared {
                sql: sql.into(),
                statements,
            }),
            Err(error) => {
                self.record_invalid(sql, &[], started, timestamp_us, &error);
                Err(error)
            }
        }
    }

    /// Runs a [`prepare`](Self::prepare)d statement with `params`, exactly as
    /// [`execute`](Self::execute) would run its text, without parsing it again.
    pub fn execute_prepared(
        &mut self,
        prepared: &Prepared,
        params: &[Param],
    ) -> Result<Vec<Output>> {
        self.run_all(&prepared.sql, &prepared.statements, params)
    }

    /// [`query`](Self::query) for a prepared statement.
    pub fn query_prepared(&mut self, prepared: &Prepared, params: &[Param]) -> Result<Rows> {
        last_rows(self.execute_prepared(prepared, params)?)
    }

    /// The parsed form of `sql`, from the session's cache when it ran before.
    fn parse_cached(&mut self, sql: &str) -> Result<Arc<Parsed>> {
        if let Some(statements) = self.parsed.get(sql) {
            return Ok(Arc::clone(statements));
        }
        let statements = Arc::new(Parsed::new(crate::dialect::parse(sql)?));
        if self.parsed.len() >= PARSE_CACHE_LIMIT {
            self.parsed.clear();
        }
        self.parsed.insert(sql.to_owned(), Arc::clone(&statements));
        Ok(statements)
    }

    fn record_invalid(
        &mut self,
        sql: &str,
        params: &[Param],
        started: Instant,
        timestamp_us: i64,
        error: &Error,
    ) {
        // Without a parsed statement `capture` only masks literals: it cannot fail.
        let captured = self.capture(None, sql, params).unwrap_or_else(|_| Capture {
            text: String::new(),
            params: Vec::new(),
            redacted: Vec::new(),
        });
        self.redacted = captured.redacted;
        let event = self.event(
            EventClass::System,
            "INVALID",
            Vec::new(),
            (captured.text, captured.params),
            timestamp_us,
        );
        self.record_outcome(event, started, Err(error), false);
    }

    fn run_all(&mut self, sql: &str, parsed: &Parsed, params: &[Param]) -> Result<Vec<Output>> {
        let single = parsed.statements.len() == 1;
        let mut outputs = Vec::with_capacity(parsed.statements.len());
        for (statement, classification) in parsed.statements.iter().zip(&parsed.classes) {
            let text = if single {
                sql.trim().to_owned()
            } else {
                statement.to_string()
            };
            // Each run binds its own parameters into its own copy.
            let mut statement = statement.clone();
            outputs.push(self.run(&mut statement, classification, &text, params)?);
        }
        Ok(outputs)
    }

    /// Runs statements and returns the rows of the last one, which must be a query.
    pub fn query(&mut self, sql: &str, params: &[Param]) -> Result<Rows> {
        last_rows(self.execute(sql, params)?)
    }

    /// Records that `user` logged in on this session (an AUTH `LOGIN` event) and makes it
    /// the session's user from now on.
    pub fn login(&mut self, user: impl Into<String>) -> Result<()> {
        self.info.user = user.into();
        self.record_app_event(
            EventClass::Auth,
            "LOGIN",
            Vec::new(),
            "",
            true,
            BTreeMap::new(),
        )
    }

    /// Records a rejected login attempt by `user` (an AUTH `LOGIN` event with
    /// `success = false` and `reason` as its error), whatever `log_auth` says: failures are
    /// always recorded. The session's user does not change.
    pub fn login_failed(&mut self, user: impl Into<String>, reason: &str) -> Result<()> {
        let mut event = self.event(
            EventClass::Auth,
            "LOGIN",
            Vec::new(),
            (String::new(), Vec::new()),
            now_micros(),
        );
        event.user = user.into();
        event.success = false;
        event.error = Some(reason.to_owned());
        self.push_app_event(event)
    }

    /// Records that the session's user logged out (an AUTH `LOGOUT` event).
    pub fn logout(&mut self) -> Result<()> {
        self.record_app_event(
            EventClass::Auth,
            "LOGOUT",
            Vec::new(),
            "",
            true,
            BTreeMap::new(),
        )
    }

    /// Records an application event (class APP): an electronic signature, a consent, an
    /// export, anything the application must be able to prove happened. Inside a
    /// transaction it commits with the transaction; otherwise at once.
    pub fn record_event(&mut self, event: AppEvent) -> Result<()> {
        let AppEvent {
            operation,
            targets,
            detail,
            success,
            custom,
        } = event;
        let operation = crate::audit::operation_name(&operation, "an application event")?;
        self.record_app_event(
            EventClass::App,
            &operation,
            targets,
            &detail,
            success,
            custom,
        )
    }

    fn record_app_event(
        &mut self,
        class: EventClass,
        operation: &str,
        targets: Vec<String>,
        detail: &str,
        success: bool,
        custom: BTreeMap<String, String>,
    ) -> Result<()> {
        let mut event = self.event(
            class,
            operation,
            targets,
            (detail.to_owned(), Vec::new()),
            now_micros(),
        );
        event.success = success;
        event.custom.extend(custom);
        self.push_app_event(event)
    }

    /// Records `event` (built by [`Session::event`]) if the policy keeps it: with the open
    /// transaction, else in its own commit.
    fn push_app_event(&mut self, event: AuditEvent) -> Result<()> {
        let shared = self.store.shared();
        if !shared.policy().records(&event) {
            return Ok(());
        }
        self.store.push_event(event);
        if self.store.in_transaction() {
            return Ok(());
        }
        self.store.end(true).map_err(|(error, _)| error)
    }

    /// The query text and parameters a statement's event keeps: parameters as the policy
    /// captures them, and the values of redacted columns replaced by tokens
    /// ([`redact`]). `statement` is the parsed `text`, `None` when it could not be parsed
    /// (then every literal is masked, and nothing can fail).
    fn capture(
        &self,
        statement: Option<&SqlStatement>,
        text: &str,
        params: &[Param],
    ) -> Result<Capture> {
        let shared = self.store.shared();
        let policy = shared.policy();
        let values: Vec<String> = params.iter().map(|p| String::from(&p.value())).collect();
        let masked = matches!(policy.params, ParamCapture::Redacted);
        if !policy.redaction.is_active() {
            let params = if masked {
                vec!["?".to_owned(); values.len()]
            } else {
                values
            };
            return Ok(Capture {
                text: text.to_owned(),
                params,
                redacted: Vec::new(),
            });
        }
        let table_columns = |table: &str| self.table_columns(table);
        let captured = redact::capture(
            shared.backend(),
            &policy.redaction,
            statement,
            text,
            values,
            masked,
            &table_columns,
        )?;
        Ok(Capture {
            text: captured.text,
            params: captured.params,
            redacted: captured.values,
        })
    }

    /// `error` as the event records it: without the statement's redacted values.
    fn error_text(&self, error: &Error) -> String {
        let text = error.to_string();
        if self.redacted.is_empty() {
            text
        } else {
            redact::scrub(&text, &self.redacted)
        }
    }

    /// The columns of committed table `table`, in order, when its schema names them.
    fn table_columns(&self, table: &str) -> Option<Vec<String>> {
        let snapshot = self.store.shared().backend().snapshot().ok()?;
        let key = crate::catalog::table_key(table);
        let bytes = snapshot.get(crate::catalog::KS_CATALOG, &key).ok()??;
        let record = crate::catalog::TableRecord::decode(&key, &bytes).ok()?;
        let columns = record.schema.column_defs?;
        Some(columns.into_iter().map(|c| c.name).collect())
    }

    /// A new, successful event with the session's metadata and `captured` query text
    /// (cut to the policy's length) and parameters (see [`Session::capture`]).
    fn event(
        &self,
        class: EventClass,
        operation: &str,
        targets: Vec<String>,
        captured: (String, Vec<String>),
        timestamp_us: i64,
    ) -> AuditEvent {
        let shared = self.store.shared();
        let policy = shared.policy();
        let (text, params) = captured;
        let (query, query_truncated) = policy.truncate(&text);
        let capture = policy.capture;
        let captured = |on: bool, value: &Option<String>| match (on, value) {
            (true, Some(value)) => value.clone(),
            _ => String::new(),
        };
        AuditEvent {
            seq: 0,
            timestamp_us,
            database_id: shared.database_id(),
            session_id: self.id,
            user: self.info.user.clone(),
            client_addr: captured(capture.client_addr, &self.info.client_addr),
            application: captured(capture.application, &self.info.application),
            database: if capture.database {
                shared.options().name.clone()
            } else {
                String::new()
            },
            class,
            operation: operation.to_owned(),
            targets,
            query,
            query_truncated,
            params,
            rows: 0,
            success: true,
            error: None,
            duration_us: 0,
            custom: if capture.custom {
                self.info.custom.clone()
            } else {
                BTreeMap::new()
            },
        }
    }

    /// Microseconds since `started`, or 0 when the policy does not capture durations.
    fn elapsed_us(&self, started: Instant) -> u64 {
        if self.store.shared().policy().capture.duration {
            u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX)
        } else {
            0
        }
    }

    /// Completes `event` with the outcome and queues it (if the policy records it, or
    /// `always`). Outside a transaction it is committed now, alone.
    fn record_outcome(
        &mut self,
        mut event: AuditEvent,
        started: Instant,
        outcome: std::result::Result<&Output, &Error>,
        always: bool,
    ) {
        event.duration_us = self.elapsed_us(started);
        match outcome {
            Ok(output) => event.rows = output_rows(output),
            Err(error) => {
                event.success = false;
                event.error = Some(self.error_text(error));
            }
        }
        if always || self.store.shared().policy().records(&event) {
            self.store.push_event(event);
        }
        if !self.store.in_transaction() {
            // Audit-only commit. If even that fails the database is poisoned and the
            // caller already holds the statement's error.
            let _ = self.store.end(false);
        }
    }

    fn run(
        &mut self,
        statement: &mut SqlStatement,
        classification: &Classification,
        text: &str,
        params: &[Param],
    ) -> Result<Output> {
        let started = Instant::now();
        let timestamp_us = now_micros();
        let (captured, refused) = match self.capture(Some(statement), text, params) {
            Ok(captured) => {
                self.redacted = captured.redacted;
                ((captured.text, captured.params), None)
            }
            // Fail closed: a statement whose personal data cannot be kept out of the trail
            // does not run, and its event holds no value.
            Err(error) => {
                self.redacted = Vec::new();
                (
                    (
                        format!("-- redacted: {}", classification.operation),
                        vec!["?".to_owned(); params.len()],
                    ),
                    Some(error),
                )
            }
        };
        let mut event = self.event(
            classification.class,
            classification.operation,
            classification.targets.clone(),
            captured,
            timestamp_us,
        );
        if let Some(error) = refused {
            self.record_outcome(event, started, Err(&error), true);
            return Err(error);
        }

        if let Some(table) = [audit_table::AUDIT_TABLE, CHECKPOINT_TABLE]
            .into_iter()
            .find(|table| writes_table(statement, table))
        {
            let error = Error::AuditLogReadOnly {
                table: table.to_owned(),
                operation: classification.operation.replace('_', " "),
            };
            // Attempts on the audit trail are always recorded, whatever the policy.
            self.record_outcome(event, started, Err(&error), true);
            return Err(error);
        }

        if self.store.shared().options().read_only && !is_read_only(statement) {
            let error = Error::ReadOnly(format!(
                "{} is not allowed",
                classification.operation.replace('_', " ")
            ));
            // A refused write is recorded like any failure.
            self.record_outcome(event, started, Err(&error), true);
            return Err(error);
        }

        match statement {
            SqlStatement::StartTransaction { .. } => {
                let result = self
                    .store
                    .begin_explicit()
                    .map(|()| Output::Done { statement: "BEGIN" });
                self.finish_statement(event, started, result)
            }
            SqlStatement::Commit { .. } | SqlStatement::Rollback { .. } => {
                let commit = matches!(statement, SqlStatement::Commit { .. });
                let output = Output::Done {
                    statement: if commit { "COMMIT" } else { "ROLLBACK" },
                };
                if !self.store.in_transaction() {
                    // Nothing to end: recorded, and a no-op as in GlueSQL.
                    return self.finish_statement(event, started, Ok(output));
                }
                event.duration_us = self.elapsed_us(started);
                let policy_records = self.store.shared().policy().records(&event);
                if policy_records {
                    self.store.push_event(event.clone());
                }
                match self.store.end(commit) {
                    Ok(()) => Ok(output),
                    Err((error, mut events)) => {
                        // Nothing was written. Record the statements and the failed end of
                        // the transaction on their own.
                        if policy_records {
                            events.pop();
                        }
                        event.success = false;
                        event.error = Some(error.to_string());
                        events.push(event);
                        for event in events {
                            self.store.push_event(event);
                        }
                        let _ = self.store.end(false);
                        Err(error)
                    }
                }
            }
            _ => {
                let in_transaction = self.store.in_transaction();
                let prepared = if in_transaction {
                    Ok(())
                } else {
                    // Writers lock before their snapshot, so the plan and the write see
                    // the same data; readers take a snapshot and never wait.
                    let locked = if is_read_only(statement) {
                        Ok(())
                    } else {
                        self.store.prepare_write()
                    };
                    locked.and_then(|()| self.store.begin_implicit())
                };
                if let Err(error) = prepared {
                    self.store.release_pending();
                    return self.finish_statement(event, started, Err(error));
                }
                let savepoint = if in_transaction {
                    self.store.savepoint()
                } else {
                    None
                };
                rewrite_user_identifier(statement);
                bind_literals(statement, params);
                let literals: Vec<ParamLiteral> = params.iter().map(|p| p.0.clone()).collect();
                let context = dialect::Context {
                    params: &literals,
                    now: micros_to_utc(timestamp_us),
                    last_insert_id: self.last_insert_id,
                };
                let result = match dialect::run(&mut self.store, statement, &context) {
                    Ok((output, effects)) => {
                        event.custom.extend(effects.upsert);
                        if effects.last_insert_id.is_some() {
                            self.last_insert_id = effects.last_insert_id;
                        }
                        Ok(output)
                    }
                    Err(error) => Err(error),
                };
                if let (Err(_), Some(savepoint)) = (&result, savepoint) {
                    self.store.restore(savepoint);
                }
                self.finish_statement(event, started, result)
            }
        }
    }

    /// Records the statement's event and, outside a transaction, commits the statement
    /// (its writes if it succeeded) together with the event.
    fn finish_statement(
        &mut self,
        mut event: AuditEvent,
        started: Instant,
        result: Result<Output>,
    ) -> Result<Output> {
        event.duration_us = self.elapsed_us(started);
        match &result {
            Ok(output) => event.rows = output_rows(output),
            Err(error) => {
                event.success = false;
                event.error = Some(self.error_text(error));
            }
        }
        let records = self.store.shared().policy().records(&event);
        if self.store.in_transaction() {
            if records {
                self.store.push_event(event);
            }
            return result;
        }
        if records {
            self.store.push_event(event.clone());
        }
        let commit = result.is_ok();
        match self.store.end(commit) {
            Ok(()) => result,
            Err((error, _)) => {
                // The statement's writes and its event were not written. Record the
                // failure on its own (this fails too if the database is poisoned).
                if records {
                    event.success = false;
                    event.error = Some(self.error_text(&error));
                    event.rows = 0;
                    self.store.push_event(event);
                    let _ = self.store.end(false);
                }
                Err(error)
            }
        }
    }
}

/// The rows of the last output, which must have some.
fn last_rows(mut outputs: Vec<Output>) -> Result<Rows> {
    match outputs.pop() {
        Some(Output::Rows(rows)) => Ok(rows),
        Some(_) => Err(Error::Unsupported(
            "query() needs a statement that returns rows; use execute()".to_owned(),
        )),
        None => Err(Error::Unsupported("no statement to run".to_owned())),
    }
}

/// A statement text parsed once by [`Session::prepare`], to run many times with new
/// parameters. Cheap to clone; usable with any session of the database.
#[derive(Clone)]
pub struct Prepared {
    sql: Arc<str>,
    statements: Arc<Parsed>,
}

/// A statement text parsed once, with each statement's classification (which depends on
/// the parsed form only, not on the parameters bound later).
struct Parsed {
    statements: Vec<SqlStatement>,
    classes: Vec<Classification>,
}

impl Parsed {
    fn new(statements: Vec<SqlStatement>) -> Parsed {
        let classes = statements.iter().map(classify).collect();
        Parsed {
            statements,
            classes,
        }
    }
}

impl Prepared {
    /// The statement text.
    pub fn sql(&self) -> &str {
        &self.sql
    }
}

impl fmt::Debug for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prepared").field("sql", &self.sql).finish()
    }
}

/// Rows an output affected or returned.
fn output_rows(output: &Output) -> u64 {
    match output {
        Output::Rows(rows) => u64::try_from(rows.len()).unwrap_or(u64::MAX),
        Output::Affected { count, .. } => *count,
        Output::Done { .. } => 0,
    }
}

fn now_micros() -> i64 {
    gluesql_core::chrono::Utc::now().timestamp_micros()
}

fn micros_to_utc(micros: i64) -> gluesql_core::chrono::DateTime<gluesql_core::chrono::Utc> {
    gluesql_core::chrono::DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

/// Turns a bare `user` (which the parser reads as the SQL `USER` function, unsupported by
/// GlueSQL) into the column reference the brief's queries mean: `WHERE user = 'alice'`.
fn rewrite_user_identifier(statement: &mut SqlStatement) {
    let _ = visit_expressions_mut(statement, |expr| {
        if let SqlExpr::Function(function) = expr {
            let bare = matches!(function.args, FunctionArguments::None);
            if bare
                && function.name.0.len() == 1
                && function.name.0[0].value.eq_ignore_ascii_case("user")
            {
                *expr = SqlExpr::Identifier(Ident::new(function.name.0[0].value.clone()));
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

impl Drop for Session {
    fn drop(&mut self) {
        // An open transaction is rolled back: its writes were never committed, but its
        // statements and the rollback are recorded.
        if self.store.in_transaction() {
            let event = self.event(
                EventClass::Txn,
                "ROLLBACK",
                Vec::new(),
                (
                    "-- implicit ROLLBACK: session closed inside a transaction".to_owned(),
                    Vec::new(),
                ),
                now_micros(),
            );
            if self.store.shared().policy().records(&event) {
                self.store.push_event(event);
            }
        }
        let _ = self.store.end(false);
    }
}
