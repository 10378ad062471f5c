//! SQLite's date and time functions in statements: calls on constant arguments are folded
//! into literals (every `'now'` in a statement is the same instant), calls on a column
//! become GlueSQL's `FORMAT`, and `last_insert_rowid()` becomes the session's last id.

use super::Context;
use super::sqlite_time::{self as sqltime, TimeArg, TimeFunction, TimeValue};
use crate::error::{Error, Result};
use bigdecimal::BigDecimal;
use gluesql_core::sqlparser::ast::{
    Expr as SqlExpr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentList,
    FunctionArguments, Ident, ObjectName, UnaryOperator, Value as SqlValue, VisitMut,
    visit_expressions_mut,
};
use std::ops::ControlFlow;
use std::str::FromStr;

/// What an engine-evaluated function call is.
enum EngineFunction {
    Time(TimeFunction),
    CurrentDate,
    CurrentTime,
    LastInsertId,
}

fn engine_function(function: &Function) -> Option<EngineFunction> {
    let [name] = function.name.0.as_slice() else {
        return None;
    };
    let name = name.value.as_str();
    if let Some(time) = TimeFunction::from_name(name) {
        return Some(EngineFunction::Time(time));
    }
    let bare = matches!(function.args, FunctionArguments::None)
        || matches!(&function.args, FunctionArguments::List(list) if list.args.is_empty());
    if !bare {
        return None;
    }
    if name.eq_ignore_ascii_case("current_date") {
        Some(EngineFunction::CurrentDate)
    } else if name.eq_ignore_ascii_case("current_time") {
        Some(EngineFunction::CurrentTime)
    } else if name.eq_ignore_ascii_case("last_insert_rowid")
        || name.eq_ignore_ascii_case("last_insert_id")
    {
        Some(EngineFunction::LastInsertId)
    } else {
        None
    }
}

/// True for a call the engine evaluates rather than GlueSQL.
pub(super) fn is_engine_function(expr: &SqlExpr) -> bool {
    matches!(expr, SqlExpr::Function(f) if engine_function(f).is_some())
}

/// Keeps the label of a projected expression that calls an engine-evaluated function as
/// written (`SELECT date('now')` is labelled `date('now')`, not by its folded value).
pub(super) fn keep_labels(items: &mut [gluesql_core::sqlparser::ast::SelectItem]) {
    use gluesql_core::sqlparser::ast::{SelectItem, visit_expressions};
    for item in items {
        if let SelectItem::UnnamedExpr(expr) = item {
            let calls = visit_expressions(expr, |e| {
                if is_engine_function(e) {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            });
            if calls.is_break() {
                let alias = Ident::new(expr.to_string());
                *item = SelectItem::ExprWithAlias {
                    expr: expr.clone(),
                    alias,
                };
            }
        }
    }
}

/// Folds every engine-evaluated call in `node`.
pub(super) fn fold<V: VisitMut>(node: &mut V, context: &Context<'_>) -> Result<()> {
    let flow = visit_expressions_mut(node, |expr| {
        let SqlExpr::Function(function) = expr else {
            return ControlFlow::Continue(());
        };
        let Some(kind) = engine_function(function) else {
            return ControlFlow::Continue(());
        };
        match rewrite(function, kind, context) {
            Ok(Some(replacement)) => {
                *expr = replacement;
                ControlFlow::Continue(())
            }
            Ok(None) => ControlFlow::Continue(()),
            Err(error) => ControlFlow::Break(error),
        }
    });
    match flow {
        ControlFlow::Break(error) => Err(error),
        ControlFlow::Continue(()) => Ok(()),
    }
}

/// The replacement of one call: a literal, or `None` when `function` was rewritten in
/// place into GlueSQL's `FORMAT`.
fn rewrite(
    function: &mut Function,
    kind: EngineFunction,
    context: &Context<'_>,
) -> Result<Option<SqlExpr>> {
    let time_function = match kind {
        EngineFunction::Time(time) => time,
        EngineFunction::CurrentDate => TimeFunction::Date,
        EngineFunction::CurrentTime => TimeFunction::Time,
        EngineFunction::LastInsertId => {
            return Ok(Some(match context.last_insert_id {
                Some(id) => number(BigDecimal::from(id)),
                None => SqlExpr::Value(SqlValue::Null),
            }));
        }
    };
    let name = function.name.to_string().to_lowercase();
    let args: Vec<SqlExpr> = match &function.args {
        FunctionArguments::None => Vec::new(),
        FunctionArguments::List(list) => list
            .args
            .iter()
            .map(|arg| match arg {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(expr)) => Ok(expr.clone()),
                other => Err(Error::Unsupported(format!(
                    "{name}(): argument {other} is not supported"
                ))),
            })
            .collect::<Result<_>>()?,
        FunctionArguments::Subquery(_) => {
            return Err(Error::Unsupported(format!(
                "{name}(): a subquery argument is not supported"
            )));
        }
    };
    let constants: Option<Vec<TimeArg>> = args.iter().map(constant).collect();
    if let Some(constants) = constants {
        let value = sqltime::evaluate(time_function, &constants, context.now)
            .map_err(|e| Error::Unsupported(e.to_string()))?;
        return Ok(Some(literal(value)?));
    }
    let args: Vec<&SqlExpr> = args.iter().collect();
    to_format(function, time_function, &args, &name)?;
    Ok(None)
}

/// A constant argument as a time argument; `None` for anything else (a column, ...).
fn constant(expr: &SqlExpr) -> Option<TimeArg> {
    match expr {
        SqlExpr::Value(SqlValue::Null) => Some(TimeArg::Null),
        SqlExpr::Value(SqlValue::SingleQuotedString(s)) => Some(TimeArg::Text(s.clone())),
        SqlExpr::Value(SqlValue::Number(n, _)) => Some(number_arg(n, false)),
        SqlExpr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => match expr.as_ref() {
            SqlExpr::Value(SqlValue::Number(n, _)) => Some(number_arg(n, true)),
            _ => None,
        },
        SqlExpr::Nested(inner) => constant(inner),
        _ => None,
    }
}

fn number_arg(n: &BigDecimal, negative: bool) -> TimeArg {
    let text = if negative {
        format!("-{n}")
    } else {
        n.to_string()
    };
    match text.parse::<i64>() {
        Ok(i) => TimeArg::Integer(i),
        Err(_) => TimeArg::Real(text.parse::<f64>().unwrap_or(f64::NAN)),
    }
}

fn number(n: BigDecimal) -> SqlExpr {
    SqlExpr::Value(SqlValue::Number(n, false))
}

fn literal(value: TimeValue) -> Result<SqlExpr> {
    Ok(match value {
        TimeValue::Null => SqlExpr::Value(SqlValue::Null),
        TimeValue::Text(text) => SqlExpr::Value(SqlValue::SingleQuotedString(text)),
        TimeValue::Integer(i) => number(BigDecimal::from(i)),
        TimeValue::Real(r) => {
            // Keep a decimal point, so the literal stays a FLOAT (`2451545.0`, not an
            // integer).
            let mut text = r.to_string();
            if !text.contains(['.', 'e', 'E']) {
                text.push_str(".0");
            }
            number(BigDecimal::from_str(&text).map_err(|_| {
                Error::Unsupported(format!("date/time result {r} is not a finite number"))
            })?)
        }
    })
}

/// `date(col)`, `time(col)`, `datetime(col)` and `strftime(fmt, col)` without modifiers,
/// as GlueSQL's `FORMAT(col, chrono format)`; the column must be a DATE, TIME or
/// TIMESTAMP.
fn to_format(
    function: &mut Function,
    time_function: TimeFunction,
    args: &[&SqlExpr],
    name: &str,
) -> Result<()> {
    let unsupported = || {
        Error::Unsupported(format!(
            "{name}() on a column takes no modifiers (and strftime a constant format); \
             constant arguments fold to literals, e.g. {name}('now', '-30 days')"
        ))
    };
    let (format, value) = match (time_function, args) {
        (TimeFunction::Date, [value]) => ("%Y-%m-%d".to_owned(), *value),
        (TimeFunction::Time, [value]) => ("%H:%M:%S".to_owned(), *value),
        (TimeFunction::DateTime, [value]) => ("%Y-%m-%d %H:%M:%S".to_owned(), *value),
        (TimeFunction::Strftime, [SqlExpr::Value(SqlValue::SingleQuotedString(f)), value]) => {
            (chrono_format(f.as_str(), name)?, *value)
        }
        _ => return Err(unsupported()),
    };
    let value = value.clone();
    function.name = ObjectName(vec![Ident::new("FORMAT")]);
    function.args = FunctionArguments::List(FunctionArgumentList {
        duplicate_treatment: None,
        args: vec![
            FunctionArg::Unnamed(FunctionArgExpr::Expr(value)),
            FunctionArg::Unnamed(FunctionArgExpr::Expr(SqlExpr::Value(
                SqlValue::SingleQuotedString(format),
            ))),
        ],
        clauses: Vec::new(),
    });
    Ok(())
}

/// SQLite's strftime format as chrono's.
fn chrono_format(format: &str, name: &str) -> Result<String> {
    let mut out = String::with_capacity(format.len() + 4);
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('f') => out.push_str("%S%.3f"),
            Some(
                spec @ ('d' | 'e' | 'F' | 'H' | 'I' | 'j' | 'k' | 'l' | 'm' | 'M' | 'p' | 'P' | 'R'
                | 's' | 'S' | 'T' | 'u' | 'w' | 'W' | 'Y' | 'G' | 'g' | 'U' | 'V' | '%'),
            ) => {
                out.push('%');
                out.push(spec);
            }
            other => {
                return Err(Error::Unsupported(format!(
                    "{name}(): format %{} is not supported on a column",
                    other.map(String::from).unwrap_or_default()
                )));
            }
        }
    }
    Ok(out)
}
