//! The SQL that applications write, on top of GlueSQL: the SQLite-flavoured parser, and a
//! rewrite layer over the parsed statement that adds what GlueSQL 0.20 lacks —
//! generated ids, `RETURNING`, upserts, engine-evaluated defaults, SQLite's date and time
//! functions, more column types, unique constraints over several columns.
//!
//! Every construct either works or is refused with [`Error::Unsupported`]: nothing the
//! parser accepts is silently ignored. `docs/COMPATIBILITY.md` lists each one.

mod ddl;
mod hint;
mod insert;
mod keyed;
mod sqlite_time;
mod time;

use crate::error::{Error, Result};
use crate::output::Output;
use crate::store::SqlStore;
use gluesql_core::chrono::{DateTime, Utc};
use gluesql_core::error::Error as GlueError;
use gluesql_core::executor::{Payload, execute};
use gluesql_core::sqlparser::ast::{
    Expr as SqlExpr, Ident, ObjectName, Query, SelectItem, SetExpr, Statement as SqlStatement,
    TableFactor, Value as SqlValue, visit_expressions_mut,
};
use gluesql_core::sqlparser::dialect::{PostgreSqlDialect, SQLiteDialect};
use gluesql_core::sqlparser::parser::Parser;
use gluesql_core::store::Planner;
use gluesql_core::translate::{ParamLiteral, translate_with_params};
use std::collections::BTreeMap;
use std::ops::ControlFlow;

/// Parses `sql` the way an application moving from SQLite writes it: SQLite's dialect
/// (`INSERT OR REPLACE`, `REPLACE INTO`, `AUTOINCREMENT`, `LIMIT m, n`, `?` and `?N`
/// placeholders), falling back to PostgreSQL's (GlueSQL's own) for what only it parses.
/// Placeholders come back as `$N`.
pub(crate) fn parse(sql: &str) -> Result<Vec<SqlStatement>> {
    let parsed = Parser::parse_sql(&SQLiteDialect {}, sql).or_else(|sqlite_error| {
        Parser::parse_sql(&PostgreSqlDialect {}, sql).map_err(|_| sqlite_error)
    });
    let mut statements =
        parsed.map_err(|e| Error::Sql(Box::new(GlueError::Parser(e.to_string()))))?;
    for statement in &mut statements {
        number_placeholders(statement)?;
    }
    Ok(statements)
}

/// Rewrites `?` (numbered left to right, after the highest number seen so far, as SQLite
/// does) and `?N` to `$N`; refuses named parameters.
fn number_placeholders(statement: &mut SqlStatement) -> Result<()> {
    let mut highest = 0usize;
    let flow = visit_expressions_mut(statement, |expr| {
        if let SqlExpr::Value(SqlValue::Placeholder(name)) = expr {
            let number = if name == "?" {
                highest += 1;
                highest
            } else if let Some(digits) = name.strip_prefix('?').or_else(|| name.strip_prefix('$'))
                && let Ok(n) = digits.parse::<usize>()
                && n > 0
            {
                highest = highest.max(n);
                n
            } else {
                return ControlFlow::Break(Error::Unsupported(format!(
                    "parameter {name}: named parameters are not supported; use $1, ?1 or ?"
                )));
            };
            *name = format!("${number}");
        }
        ControlFlow::Continue(())
    });
    match flow {
        ControlFlow::Break(error) => Err(error),
        ControlFlow::Continue(()) => Ok(()),
    }
}

/// What a statement's execution adds to its audit event and session.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    /// Row counts of an upsert, recorded in the audit event's custom fields.
    pub upsert: BTreeMap<String, String>,
    /// The id the statement generated (or was given) for an auto-increment column.
    pub last_insert_id: Option<i64>,
}

/// Per-statement inputs of the rewrite.
pub(crate) struct Context<'a> {
    /// Parameters still left as placeholders, bound by GlueSQL.
    pub params: &'a [ParamLiteral],
    /// The statement's time: every `'now'` in it is this instant, as in SQLite.
    pub now: DateTime<Utc>,
    /// The session's last generated id, for `last_insert_rowid()`.
    pub last_insert_id: Option<i64>,
}

/// Runs one statement (not a transaction command) inside the store's open transaction.
pub(crate) fn run(
    store: &mut SqlStore,
    statement: &mut SqlStatement,
    context: &Context<'_>,
) -> Result<(Output, Effects)> {
    let mut effects = Effects::default();
    refuse_ignored_clauses(statement)?;
    like_as_regex(statement)?;
    // SQLite's functions fold once, before anything reads literals. Not in CREATE TABLE
    // or ALTER TABLE, whose defaults are checked (and evaluated per row) first, nor in
    // INSERT, which folds after adding defaults.
    if !matches!(
        statement,
        SqlStatement::CreateTable(_) | SqlStatement::AlterTable { .. } | SqlStatement::Insert(_)
    ) {
        if let SqlStatement::Query(query) = statement
            && let SetExpr::Select(select) = query.body.as_mut()
        {
            time::keep_labels(&mut select.projection);
        }
        time::fold(statement, context)?;
    }
    if matches!(
        statement,
        SqlStatement::Query(_) | SqlStatement::Update { .. } | SqlStatement::Delete(_)
    ) {
        comparison_affinity(store, statement)?;
    }
    if let SqlStatement::Update {
        table, assignments, ..
    } = statement
        && let TableFactor::Table { name, .. } = &table.relation
        && let Ok(name) = table_name(name)
        && let Some(record) = store.table_record(&name)?
    {
        for assignment in assignments.iter_mut() {
            if let gluesql_core::sqlparser::ast::AssignmentTarget::ColumnName(column) =
                &assignment.target
                && let Some(column) = column.0.last()
            {
                numeric_affinity(&record, &column.value, &mut assignment.value);
            }
        }
    }
    let restricted = if matches!(
        statement,
        SqlStatement::Update { .. } | SqlStatement::Delete(_)
    ) {
        keyed::restrict(store, statement)?
    } else {
        false
    };
    let hinted = if matches!(statement, SqlStatement::Query(_)) {
        hint::hint(store, statement, context.params)?
    } else {
        false
    };
    let output = run_statement(store, statement, context, &mut effects);
    if restricted {
        store.clear_restriction();
    }
    if hinted {
        store.clear_hint();
    }
    Ok((output?, effects))
}

fn run_statement(
    store: &mut SqlStore,
    statement: &mut SqlStatement,
    context: &Context<'_>,
    effects: &mut Effects,
) -> Result<Output> {
    Ok(match statement {
        SqlStatement::CreateTable(create) => ddl::create_table(store, create, context)?,
        SqlStatement::CreateIndex(create) => ddl::create_index(store, create, context)?,
        SqlStatement::AlterTable { .. } => {
            ddl::check_alter(store, statement)?;
            time::fold(statement, context)?;
            run_plain(store, statement, context)?
        }
        SqlStatement::Insert(insert) => insert::run(store, insert, context, effects)?,
        SqlStatement::Update {
            table, returning, ..
        } if returning.is_some() => {
            let items = returning.take().unwrap_or_default();
            let name = match &table.relation {
                TableFactor::Table { name, .. } if table.joins.is_empty() => table_name(name)?,
                _ => {
                    return Err(Error::Unsupported(
                        "UPDATE ... RETURNING needs a single table".to_owned(),
                    ));
                }
            };
            with_returning(store, statement, &name, false, &items, context)?
        }
        SqlStatement::Delete(delete) if delete.returning.is_some() => {
            let items = delete.returning.take().unwrap_or_default();
            let name = match delete_tables(delete) {
                [name] => table_name(name)?,
                _ => {
                    return Err(Error::Unsupported(
                        "DELETE ... RETURNING needs a single table".to_owned(),
                    ));
                }
            };
            with_returning(store, statement, &name, true, &items, context)?
        }
        _ => run_plain(store, statement, context)?,
    })
}

/// The one table a DELETE removes from, if it names exactly one without joins.
fn delete_tables(delete: &gluesql_core::sqlparser::ast::Delete) -> &[ObjectName] {
    use gluesql_core::sqlparser::ast::FromTable;
    let from = match &delete.from {
        FromTable::WithFromKeyword(from) | FromTable::WithoutKeyword(from) => from,
    };
    match from.as_slice() {
        [single] if single.joins.is_empty() => match &single.relation {
            TableFactor::Table { name, .. } => std::slice::from_ref(name),
            _ => &[],
        },
        _ => &[],
    }
}

/// A statement GlueSQL runs as it is (SQLite's functions already folded by [`run`]).
fn run_plain(
    store: &mut SqlStore,
    statement: &SqlStatement,
    context: &Context<'_>,
) -> Result<Output> {
    execute_glue(store, statement, context.params).map(Output::from_payload)
}

/// Translates, plans and executes one statement with GlueSQL.
pub(crate) fn execute_glue(
    store: &mut SqlStore,
    statement: &SqlStatement,
    params: &[ParamLiteral],
) -> Result<Payload> {
    translate_with_params(statement, params)
        .and_then(|translated| store.plan(translated.into()))
        .and_then(|plan| execute(store, &plan))
        .map_err(|error| store.convert_error(error))
}

/// Runs a data change that has a RETURNING list: the rows it writes (or, for DELETE,
/// removes) are captured, then RETURNING's items are evaluated over exactly those rows.
fn with_returning(
    store: &mut SqlStore,
    statement: &SqlStatement,
    table: &str,
    deletes: bool,
    items: &[SelectItem],
    context: &Context<'_>,
) -> Result<Output> {
    store.start_capture(table, deletes);
    let executed = execute_glue(store, statement, context.params);
    let capture = store.take_capture();
    executed?;
    let capture = capture.ok_or_else(|| Error::Internal("RETURNING capture lost".to_owned()))?;
    returning_rows(store, table, capture, items, context)
}

/// Evaluates RETURNING's `items` over the captured rows, as `SELECT items FROM table`.
pub(crate) fn returning_rows(
    store: &mut SqlStore,
    table: &str,
    capture: crate::store::Capture,
    items: &[SelectItem],
    context: &Context<'_>,
) -> Result<Output> {
    let mut query = select_from(table)?;
    if let SetExpr::Select(select) = query.body.as_mut() {
        select.projection = items.to_vec();
        time::keep_labels(&mut select.projection);
    }
    let mut statement = SqlStatement::Query(Box::new(query));
    time::fold(&mut statement, context)?;
    store.set_returning(capture);
    let result = execute_glue(store, &statement, context.params);
    store.clear_returning();
    result.map(Output::from_payload)
}

/// `x [NOT] LIKE 'pattern' [ESCAPE 'c']` (and ILIKE) with a constant pattern, as a
/// regular-expression match anchored at both ends in which `%` also matches line breaks.
/// GlueSQL's own LIKE lets `%` stop at a line break (so multi-line query text in
/// `__audit_log` never matched `'%customers%'`) and has no ESCAPE.
fn like_as_regex(statement: &mut SqlStatement) -> Result<()> {
    use gluesql_core::sqlparser::ast::BinaryOperator;
    let flow = visit_expressions_mut(statement, |expr| {
        let (negated, insensitive, target, pattern, escape) = match expr {
            SqlExpr::Like {
                negated,
                any: false,
                expr: target,
                pattern,
                escape_char,
            } => (*negated, false, target, pattern, escape_char),
            SqlExpr::ILike {
                negated,
                any: false,
                expr: target,
                pattern,
                escape_char,
            } => (*negated, true, target, pattern, escape_char),
            _ => return ControlFlow::Continue(()),
        };
        let SqlExpr::Value(SqlValue::SingleQuotedString(text)) = pattern.as_ref() else {
            if escape.is_some() {
                return ControlFlow::Break(Error::Unsupported(
                    "LIKE ... ESCAPE needs a constant pattern".to_owned(),
                ));
            }
            return ControlFlow::Continue(());
        };
        let escape = match escape.as_deref().map(|e| {
            let mut chars = e.chars();
            (chars.next(), chars.next())
        }) {
            None => None,
            Some((Some(c), None)) => Some(c),
            Some(_) => {
                return ControlFlow::Break(Error::Unsupported(
                    "LIKE ... ESCAPE takes a single character".to_owned(),
                ));
            }
        };
        let mut regex = String::with_capacity(text.len() + 8);
        regex.push_str("(?s)^");
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            let literal = if Some(c) == escape {
                match chars.next() {
                    Some(next) => next,
                    None => {
                        return ControlFlow::Break(Error::Unsupported(
                            "LIKE pattern ends with its ESCAPE character".to_owned(),
                        ));
                    }
                }
            } else if c == '%' {
                regex.push_str(".*");
                continue;
            } else if c == '_' {
                regex.push('.');
                continue;
            } else {
                c
            };
            if "\\.+*?()|[]{}^$#&-~".contains(literal) {
                regex.push('\\');
            }
            regex.push(literal);
        }
        regex.push('$');
        let op = match (negated, insensitive) {
            (false, false) => BinaryOperator::PGRegexMatch,
            (true, false) => BinaryOperator::PGRegexNotMatch,
            (false, true) => BinaryOperator::PGRegexIMatch,
            (true, true) => BinaryOperator::PGRegexNotIMatch,
        };
        let left = std::mem::replace(target.as_mut(), SqlExpr::Value(SqlValue::Null));
        *expr = SqlExpr::BinaryOp {
            left: Box::new(left),
            op,
            right: Box::new(SqlExpr::Value(SqlValue::SingleQuotedString(regex))),
        };
        ControlFlow::Continue(())
    });
    match flow {
        ControlFlow::Break(error) => Err(error),
        ControlFlow::Continue(()) => Ok(()),
    }
}

/// SQLite's comparison affinity: in `col = '42'` (also `<>`, `<`, `<=`, `>`, `>=`,
/// `IN (...)` and `BETWEEN`) against an integer, float or decimal column of a table the
/// statement reads, a string literal holding a number is compared as that number — as
/// SQLite does, and as applications binding ids as strings expect.
fn comparison_affinity(store: &SqlStore, statement: &mut SqlStatement) -> Result<()> {
    use gluesql_core::sqlparser::ast::{BinaryOperator, visit_relations};
    let mut names = Vec::new();
    let _ = visit_relations(statement, |name| {
        names.push(name.clone());
        ControlFlow::<()>::Continue(())
    });
    let mut records = Vec::new();
    for name in names {
        if let Ok(name) = table_name(&name)
            && !records
                .iter()
                .any(|r: &std::sync::Arc<crate::catalog::TableRecord>| r.schema.table_name == name)
            && let Some(record) = store.table_record(&name)?
        {
            records.push(record);
        }
    }
    if records.is_empty() {
        return Ok(());
    }
    // The one table that has the column, if exactly one does.
    let owner = |column: &str| {
        let mut having = records.iter().filter(|r| {
            r.schema
                .column_defs
                .iter()
                .flatten()
                .any(|c| c.name == column)
        });
        match (having.next(), having.next()) {
            (Some(record), None) => Some(record),
            _ => None,
        }
    };
    let column_of = |expr: &SqlExpr| match expr {
        SqlExpr::Identifier(ident) => Some(ident.value.clone()),
        SqlExpr::CompoundIdentifier(parts) => parts.last().map(|p| p.value.clone()),
        _ => None,
    };
    let _ = visit_expressions_mut(statement, |expr| {
        match expr {
            SqlExpr::BinaryOp {
                left,
                op:
                    BinaryOperator::Eq
                    | BinaryOperator::NotEq
                    | BinaryOperator::Lt
                    | BinaryOperator::LtEq
                    | BinaryOperator::Gt
                    | BinaryOperator::GtEq,
                right,
            } => {
                if let Some(column) = column_of(left)
                    && let Some(record) = owner(&column)
                {
                    numeric_affinity(record, &column, right);
                } else if let Some(column) = column_of(right)
                    && let Some(record) = owner(&column)
                {
                    numeric_affinity(record, &column, left);
                }
            }
            SqlExpr::InList { expr, list, .. } => {
                if let Some(column) = column_of(expr)
                    && let Some(record) = owner(&column)
                {
                    for item in list {
                        numeric_affinity(record, &column, item);
                    }
                }
            }
            SqlExpr::Between {
                expr, low, high, ..
            } => {
                if let Some(column) = column_of(expr)
                    && let Some(record) = owner(&column)
                {
                    numeric_affinity(record, &column, low);
                    numeric_affinity(record, &column, high);
                }
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    Ok(())
}

/// SQLite's numeric affinity for a value about to be stored: a string literal holding a
/// number, written to an integer, float or decimal column, becomes that number
/// (`'1715953510'` into an INTEGER column, as `strftime('%s', 'now')` produces it).
/// Anything else is left for GlueSQL to accept or refuse.
pub(crate) fn numeric_affinity(
    record: &crate::catalog::TableRecord,
    column: &str,
    value: &mut SqlExpr,
) {
    use gluesql_core::ast::DataType;
    // `DEFAULT (strftime(...))` arrives in parentheses.
    while let SqlExpr::Nested(inner) = value {
        if !matches!(inner.as_ref(), SqlExpr::Value(_) | SqlExpr::Nested(_)) {
            return;
        }
        *value = std::mem::replace(inner.as_mut(), SqlExpr::Value(SqlValue::Null));
    }
    let SqlExpr::Value(SqlValue::SingleQuotedString(text)) = value else {
        return;
    };
    let Some(data_type) = record
        .schema
        .column_defs
        .iter()
        .flatten()
        .find(|c| c.name == column)
        .map(|c| &c.data_type)
    else {
        return;
    };
    let integer = matches!(
        data_type,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int
            | DataType::Int128
            | DataType::Uint8
            | DataType::Uint16
            | DataType::Uint32
            | DataType::Uint64
            | DataType::Uint128
    );
    let real = matches!(
        data_type,
        DataType::Float32 | DataType::Float | DataType::Decimal
    );
    let trimmed = text.trim();
    let numeric = if integer {
        trimmed.parse::<i128>().is_ok()
    } else if real {
        trimmed.parse::<f64>().is_ok_and(f64::is_finite)
            && trimmed
                .bytes()
                .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'-' | b'+' | b'e' | b'E'))
    } else {
        false
    };
    if numeric
        && let Ok(number) = trimmed
            .trim_start_matches('+')
            .parse::<bigdecimal::BigDecimal>()
    {
        *value = SqlExpr::Value(SqlValue::Number(number, false));
    }
}

/// `SELECT * FROM <table>`, to fill in.
pub(crate) fn select_from(table: &str) -> Result<Query> {
    let parsed = Parser::parse_sql(&SQLiteDialect {}, "SELECT * FROM t")
        .map_err(|e| Error::Internal(format!("cannot build a query: {e}")))?;
    let Some(SqlStatement::Query(mut query)) = parsed.into_iter().next() else {
        return Err(Error::Internal("cannot build a query".to_owned()));
    };
    if let SetExpr::Select(select) = query.body.as_mut()
        && let Some(from) = select.from.first_mut()
        && let TableFactor::Table { name, .. } = &mut from.relation
    {
        *name = ObjectName(vec![Ident::with_quote('"', table)]);
    }
    Ok(*query)
}

/// The single-part name of a table.
pub(crate) fn table_name(name: &ObjectName) -> Result<String> {
    match name.0.as_slice() {
        [ident] => Ok(ident.value.clone()),
        _ => Err(Error::Unsupported(format!(
            "table name {name}: schema-qualified names are not supported"
        ))),
    }
}

/// Refuses query clauses that the parser accepts but GlueSQL would silently ignore
/// (`SELECT TOP n`, `QUALIFY`, `LIMIT ... BY`, ...), anywhere in the statement.
pub(crate) fn refuse_ignored_clauses(statement: &SqlStatement) -> Result<()> {
    use gluesql_core::sqlparser::ast::{Visit, Visitor};
    struct Guard;
    impl Visitor for Guard {
        type Break = Error;
        fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<Error> {
            let ignored = if !query.limit_by.is_empty() {
                Some("LIMIT ... BY")
            } else if query.for_clause.is_some() {
                Some("FOR XML/JSON/BROWSE")
            } else if query.settings.is_some() {
                Some("SETTINGS")
            } else if query.format_clause.is_some() {
                Some("FORMAT")
            } else if let SetExpr::Select(select) = query.body.as_ref() {
                if select.top.is_some() {
                    Some("SELECT TOP (use LIMIT)")
                } else if select.qualify.is_some() {
                    Some("QUALIFY")
                } else if select.prewhere.is_some() {
                    Some("PREWHERE")
                } else if !select.lateral_views.is_empty() {
                    Some("LATERAL VIEW")
                } else if !select.cluster_by.is_empty()
                    || !select.distribute_by.is_empty()
                    || !select.sort_by.is_empty()
                {
                    Some("CLUSTER/DISTRIBUTE/SORT BY")
                } else if select.connect_by.is_some() {
                    Some("CONNECT BY")
                } else {
                    None
                }
            } else {
                None
            };
            match ignored {
                Some(clause) => {
                    ControlFlow::Break(Error::Unsupported(format!("{clause} is not supported")))
                }
                None => ControlFlow::Continue(()),
            }
        }
    }
    match statement.visit(&mut Guard) {
        ControlFlow::Break(error) => Err(error),
        ControlFlow::Continue(()) => Ok(()),
    }
}
