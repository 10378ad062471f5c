//! `Session`: who is connected, and the statements they run.

use crate::error::{Error, Result};
use crate::store::SqlStore;
use bigdecimal::BigDecimal;
use gluesql_core::ast::DataType;
use gluesql_core::data::Value;
use gluesql_core::error::Error as GlueError;
use gluesql_core::executor::{Payload, PayloadVariable, execute};
use gluesql_core::sqlparser::ast::Statement as SqlStatement;
use gluesql_core::sqlparser::dialect::PostgreSqlDialect;
use gluesql_core::sqlparser::parser::Parser;
use gluesql_core::store::Planner;
use gluesql_core::translate::{IntoParamLiteral, ParamLiteral, translate_with_params};
use sqlparser::ast::{Expr as SqlExpr, Value as SqlValue, visit_expressions_mut};
use std::collections::BTreeMap;
use std::fmt;
use std::ops::ControlFlow;
use std::str::FromStr;

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

/// A bound parameter value for `$1`, `$2`, ... placeholders. Build with [`params!`] or
/// `Param::from(value)`; parameters are passed as values, never spliced into SQL text.
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

/// Rows returned by a query.
#[derive(Clone, Debug, PartialEq)]
pub struct Rows {
    /// Column labels, in order.
    pub columns: Vec<String>,
    /// One vector of values per row, in column order.
    pub rows: Vec<Vec<Value>>,
}

impl Rows {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when there is no row.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Position of a column by label.
    pub fn column_index(&self, column: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == column)
    }

    /// The value at `row`, `column`, or `None` if either is out of range.
    pub fn value(&self, row: usize, column: &str) -> Option<&Value> {
        let index = self.column_index(column)?;
        self.rows.get(row)?.get(index)
    }

    /// The value at `row`, `column` converted to `T`.
    ///
    /// ```
    /// # use heliosdb_engine::{Rows, Value};
    /// let rows = Rows { columns: vec!["n".into()], rows: vec![vec![Value::I64(7)]] };
    /// assert_eq!(rows.get::<i64>(0, "n").unwrap(), 7);
    /// ```
    pub fn get<T: FromValue>(&self, row: usize, column: &str) -> Result<T> {
        let value = self.value(row, column).ok_or_else(|| {
            Error::Unsupported(format!("no value at row {row}, column {column:?}"))
        })?;
        T::from_value(value).ok_or_else(|| {
            Error::Unsupported(format!(
                "value {value:?} at row {row}, column {column:?} is not a {}",
                std::any::type_name::<T>()
            ))
        })
    }
}

/// Conversion from a SQL value to a Rust type, for [`Rows::get`].
pub trait FromValue: Sized {
    /// The converted value, or `None` if the value has another type.
    fn from_value(value: &Value) -> Option<Self>;
}

impl FromValue for i64 {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::I8(v) => Some(i64::from(*v)),
            Value::I16(v) => Some(i64::from(*v)),
            Value::I32(v) => Some(i64::from(*v)),
            Value::I64(v) => Some(*v),
            Value::U8(v) => Some(i64::from(*v)),
            Value::U16(v) => Some(i64::from(*v)),
            Value::U32(v) => Some(i64::from(*v)),
            Value::U64(v) => i64::try_from(*v).ok(),
            _ => None,
        }
    }
}

impl FromValue for f64 {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::F32(v) => Some(f64::from(*v)),
            Value::F64(v) => Some(*v),
            other => i64::from_value(other).map(|v| v as f64),
        }
    }
}

impl FromValue for bool {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Bool(v) => Some(*v),
            _ => None,
        }
    }
}

impl FromValue for String {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Str(v) => Some(v.clone()),
            _ => None,
        }
    }
}

impl FromValue for Value {
    fn from_value(value: &Value) -> Option<Self> {
        Some(value.clone())
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Null => Some(None),
            other => T::from_value(other).map(Some),
        }
    }
}

/// What one statement produced.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Output {
    /// A query's rows.
    Rows(Rows),
    /// A data change and how many rows it touched (`INSERT`, `UPDATE`, `DELETE`,
    /// `DROP TABLE` counts tables).
    Affected {
        /// Statement kind, e.g. `"INSERT"`.
        statement: &'static str,
        /// Rows (or tables) affected.
        count: u64,
    },
    /// A statement that returns nothing (`CREATE TABLE`, `BEGIN`, ...).
    Done {
        /// Statement kind, e.g. `"CREATE TABLE"`.
        statement: &'static str,
    },
}

impl Output {
    /// The rows, if this output has any.
    pub fn rows(&self) -> Option<&Rows> {
        match self {
            Output::Rows(rows) => Some(rows),
            _ => None,
        }
    }

    /// Affected-row count for data changes, `None` otherwise.
    pub fn affected(&self) -> Option<u64> {
        match self {
            Output::Affected { count, .. } => Some(*count),
            _ => None,
        }
    }

    fn from_payload(payload: Payload) -> Output {
        let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        match payload {
            Payload::Select { labels, rows } => Output::Rows(Rows {
                columns: labels,
                rows,
            }),
            Payload::SelectMap(maps) => {
                // Schemaless rows: the union of their keys becomes the columns.
                let mut columns: Vec<String> = Vec::new();
                for map in &maps {
                    for key in map.keys() {
                        if !columns.contains(key) {
                            columns.push(key.clone());
                        }
                    }
                }
                let rows = maps
                    .into_iter()
                    .map(|mut map| {
                        columns
                            .iter()
                            .map(|c| map.remove(c).unwrap_or(Value::Null))
                            .collect()
                    })
                    .collect();
                Output::Rows(Rows { columns, rows })
            }
            Payload::ShowColumns(columns) => Output::Rows(Rows {
                columns: vec!["field".to_owned(), "type".to_owned()],
                rows: columns
                    .into_iter()
                    .map(|(name, data_type): (String, DataType)| {
                        vec![Value::Str(name), Value::Str(data_type.to_string())]
                    })
                    .collect(),
            }),
            Payload::ShowVariable(variable) => {
                let (column, values) = match variable {
                    PayloadVariable::Tables(names) => ("table", names),
                    PayloadVariable::Functions(names) => ("function", names),
                    PayloadVariable::Version(version) => ("version", vec![version]),
                };
                Output::Rows(Rows {
                    columns: vec![column.to_owned()],
                    rows: values.into_iter().map(|v| vec![Value::Str(v)]).collect(),
                })
            }
            Payload::Insert(n) => Output::Affected {
                statement: "INSERT",
                count: count(n),
            },
            Payload::Update(n) => Output::Affected {
                statement: "UPDATE",
                count: count(n),
            },
            Payload::Delete(n) => Output::Affected {
                statement: "DELETE",
                count: count(n),
            },
            Payload::DropTable(n) => Output::Affected {
                statement: "DROP TABLE",
                count: count(n),
            },
            Payload::Create => Output::Done {
                statement: "CREATE TABLE",
            },
            Payload::DropFunction => Output::Done {
                statement: "DROP FUNCTION",
            },
            Payload::AlterTable => Output::Done {
                statement: "ALTER TABLE",
            },
            Payload::CreateIndex => Output::Done {
                statement: "CREATE INDEX",
            },
            Payload::DropIndex => Output::Done {
                statement: "DROP INDEX",
            },
            Payload::StartTransaction => Output::Done { statement: "BEGIN" },
            Payload::Commit => Output::Done {
                statement: "COMMIT",
            },
            Payload::Rollback => Output::Done {
                statement: "ROLLBACK",
            },
        }
    }
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
}

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
    pub(crate) fn new(store: SqlStore, info: SessionInfo, id: u64) -> Self {
        Self { store, info, id }
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

    /// Runs one or more `;`-separated statements with `$1, $2, ...` bound to `params`,
    /// returning one [`Output`] per statement. Stops at the first failing statement and
    /// returns its error; statements before it keep their effect.
    ///
    /// See the `heliosdb-lite` crate's documentation for a complete example.
    pub fn execute(&mut self, sql: &str, params: &[Param]) -> Result<Vec<Output>> {
        // GlueSQL's dialect, parsed here rather than through `gluesql_core::parse_sql`, whose
        // errors carry the parser's multi-line `Debug` text instead of its message.
        let mut statements = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .map_err(|e| Error::Sql(Box::new(GlueError::Parser(e.to_string()))))?;
        let literals: Vec<ParamLiteral> = params.iter().map(|p| p.0.clone()).collect();
        let mut outputs = Vec::with_capacity(statements.len());
        for statement in &mut statements {
            bind_literals(statement, params);
            outputs.push(self.run(statement, &literals)?);
        }
        Ok(outputs)
    }

    /// Runs statements and returns the rows of the last one, which must be a query.
    pub fn query(&mut self, sql: &str, params: &[Param]) -> Result<Rows> {
        match self.execute(sql, params)?.pop() {
            Some(Output::Rows(rows)) => Ok(rows),
            Some(_) => Err(Error::Unsupported(
                "query() needs a statement that returns rows; use execute()".to_owned(),
            )),
            None => Err(Error::Unsupported("no statement to run".to_owned())),
        }
    }

    fn run(&mut self, statement: &SqlStatement, params: &[ParamLiteral]) -> Result<Output> {
        let in_transaction = self.store.in_transaction();
        if !in_transaction && !is_read_only(statement) {
            // Lock before planning, so the plan and the write see the same data.
            self.store.prepare_write()?;
        }
        let savepoint = if in_transaction {
            self.store.savepoint()
        } else {
            None
        };
        let result = translate_with_params(statement, params)
            .and_then(|translated| self.store.plan(translated.into()))
            .and_then(|plan| execute(&mut self.store, &plan));
        self.store.release_pending();
        match result {
            Ok(payload) => Ok(Output::from_payload(payload)),
            Err(error) => {
                let error = self.store.convert_error(error);
                if let Some(savepoint) = savepoint {
                    self.store.restore(savepoint);
                }
                Err(error)
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // An open transaction is rolled back: its writes were never committed.
        let _ = gluesql_core::store::Transaction::rollback(&mut self.store);
    }
}
