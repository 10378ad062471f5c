//! Reads a single-table SELECT for what the store's next scan may skip (see the store's
//! `hint` module): its `column op constant` conjuncts, and whether an
//! `ORDER BY <primary key> LIMIT n` over nothing but those lets the scan stop early.

use super::keyed::{constant, split_and};
use super::table_name;
use crate::audit::table as audit_table;
use crate::error::Result;
use crate::store::{ScanHint, SqlStore};
use gluesql_core::ast::{DataType, IndexOperator};
use gluesql_core::data::{Schema, Value};
use gluesql_core::sqlparser::ast::{
    BinaryOperator, Expr as SqlExpr, GroupByExpr, Query, SelectItem, SetExpr,
    Statement as SqlStatement, TableFactor, Value as SqlValue, Visit, Visitor,
};
use gluesql_core::translate::ParamLiteral;
use std::cmp::Ordering;
use std::ops::ControlFlow;

/// Hands the store a hint for `statement` when it is a SELECT from one table. Returns
/// whether one was set.
pub(super) fn hint(
    store: &SqlStore,
    statement: &SqlStatement,
    params: &[ParamLiteral],
) -> Result<bool> {
    let SqlStatement::Query(query) = statement else {
        return Ok(false);
    };
    if query.with.is_some() || has_nested_query(statement) {
        return Ok(false);
    }
    let SetExpr::Select(select) = query.body.as_ref() else {
        return Ok(false);
    };
    let [from] = select.from.as_slice() else {
        return Ok(false);
    };
    let TableFactor::Table {
        name, alias, args, ..
    } = &from.relation
    else {
        return Ok(false);
    };
    if !from.joins.is_empty() || args.is_some() {
        return Ok(false);
    }
    let Ok(table) = table_name(name) else {
        return Ok(false);
    };
    let schema = if audit_table::is_audit_table(&table) {
        audit_table::schema()
    } else {
        match store.table_record(&table)? {
            Some(record) => record.schema.clone(),
            None => return Ok(false),
        }
    };
    let qualifier = alias
        .as_ref()
        .map_or(table.as_str(), |a| a.name.value.as_str());

    let mut comparisons = Vec::new();
    let mut exact = true;
    if let Some(selection) = &select.selection {
        let mut conjuncts = Vec::new();
        split_and(selection, &mut conjuncts);
        for conjunct in conjuncts {
            match comparison(&schema, qualifier, conjunct, params) {
                Some(found) => comparisons.push(found),
                None => exact = false,
            }
        }
    }
    let first = if exact {
        first_rows(&schema, qualifier, query, params)
    } else {
        None
    };
    let columns = referenced_columns(query);
    if comparisons.is_empty() && first.is_none() && columns.is_none() {
        return Ok(false);
    }
    let plain = select.distinct.is_none()
        && select.having.is_none()
        && matches!(&select.group_by, GroupByExpr::Expressions(e, m) if e.is_empty() && m.is_empty())
        && !select.projection.iter().any(has_function);
    store.hint_next_scan(
        &table,
        ScanHint {
            comparisons,
            first: first.filter(|_| plain),
            columns,
        },
    );
    Ok(true)
}

/// `column op constant` (either way round) on a column of `schema`, with the constant
/// converted exactly to the column's type.
fn comparison(
    schema: &Schema,
    qualifier: &str,
    expr: &SqlExpr,
    params: &[ParamLiteral],
) -> Option<(String, IndexOperator, Value)> {
    let SqlExpr::BinaryOp { left, op, right } = expr else {
        return None;
    };
    let op = match op {
        BinaryOperator::Eq => IndexOperator::Eq,
        BinaryOperator::Gt => IndexOperator::Gt,
        BinaryOperator::GtEq => IndexOperator::GtEq,
        BinaryOperator::Lt => IndexOperator::Lt,
        BinaryOperator::LtEq => IndexOperator::LtEq,
        _ => return None,
    };
    let (column, value, op) = match (column_of(left, qualifier), value_of(right, params)) {
        (Some(column), Some(value)) => (column, value, op),
        _ => (
            column_of(right, qualifier)?,
            value_of(left, params)?,
            flip(op),
        ),
    };
    let data_type = &schema
        .column_defs
        .as_ref()?
        .iter()
        .find(|c| c.name == column)?
        .data_type;
    Some((column, op, exact_cast(value, data_type)?))
}

fn flip(op: IndexOperator) -> IndexOperator {
    match op {
        IndexOperator::Eq => IndexOperator::Eq,
        IndexOperator::Gt => IndexOperator::Lt,
        IndexOperator::GtEq => IndexOperator::LtEq,
        IndexOperator::Lt => IndexOperator::Gt,
        IndexOperator::LtEq => IndexOperator::GtEq,
    }
}

fn column_of(expr: &SqlExpr, qualifier: &str) -> Option<String> {
    match expr {
        SqlExpr::Identifier(ident) => Some(ident.value.clone()),
        SqlExpr::CompoundIdentifier(parts) => match parts.as_slice() {
            [table, column] if table.value == qualifier => Some(column.value.clone()),
            _ => None,
        },
        SqlExpr::Nested(inner) => column_of(inner, qualifier),
        _ => None,
    }
}

/// A literal or a bound `$n` parameter.
fn value_of(expr: &SqlExpr, params: &[ParamLiteral]) -> Option<Value> {
    if let SqlExpr::Value(SqlValue::Placeholder(name)) = expr {
        let index = name
            .strip_prefix('$')?
            .parse::<usize>()
            .ok()?
            .checked_sub(1)?;
        return match params.get(index)?.clone().into_expr() {
            gluesql_core::ast::Expr::Value(value) => Some(value),
            _ => None,
        };
    }
    constant(expr)
}

/// `value` in the column's type, only when the conversion loses nothing (so comparing the
/// converted value gives the answer GlueSQL gives for the original).
fn exact_cast(value: Value, data_type: &DataType) -> Option<Value> {
    if matches!(value, Value::Null) {
        return None;
    }
    let cast = value.cast(data_type).ok()?;
    (cast.evaluate_cmp(&value) == Some(Ordering::Equal)).then_some(cast)
}

/// For `ORDER BY <primary key> [ASC|DESC] LIMIT n [OFFSET m]`: `(descending, n + m)`.
fn first_rows(
    schema: &Schema,
    qualifier: &str,
    query: &Query,
    params: &[ParamLiteral],
) -> Option<(bool, usize)> {
    let limit = count(query.limit.as_ref()?, params)?;
    let offset = match &query.offset {
        Some(offset) => count(&offset.value, params)?,
        None => 0,
    };
    if query.fetch.is_some() || !query.limit_by.is_empty() {
        return None;
    }
    let [order] = query.order_by.as_ref()?.exprs.as_slice() else {
        return None;
    };
    if order.with_fill.is_some() || order.nulls_first.is_some() {
        return None;
    }
    let column = column_of(&order.expr, qualifier)?;
    let mut primary = schema
        .column_defs
        .iter()
        .flatten()
        .filter(|c| c.unique.is_some_and(|u| u.is_primary));
    let key = primary.next()?;
    if key.name != column || primary.next().is_some() {
        return None;
    }
    Some((order.asc == Some(false), limit.checked_add(offset)?))
}

fn count(expr: &SqlExpr, params: &[ParamLiteral]) -> Option<usize> {
    match value_of(expr, params)? {
        Value::I64(n) => usize::try_from(n).ok(),
        _ => None,
    }
}

fn has_function(item: &SelectItem) -> bool {
    struct Finder;
    impl Visitor for Finder {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &SqlExpr) -> ControlFlow<()> {
            match expr {
                SqlExpr::Function(_) => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            }
        }
    }
    item.visit(&mut Finder).is_break()
}

/// True when the statement holds a query inside its query (a subquery scans tables too).
fn has_nested_query(statement: &SqlStatement) -> bool {
    struct Finder {
        queries: usize,
    }
    impl Visitor for Finder {
        type Break = ();
        fn pre_visit_query(&mut self, _query: &Query) -> ControlFlow<()> {
            self.queries += 1;
            if self.queries > 1 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        }
    }
    statement.visit(&mut Finder { queries: 0 }).is_break()
}

/// The column names the query mentions anywhere, or `None` when it selects `*` (or
/// `t.*`) and so needs every column.
fn referenced_columns(query: &Query) -> Option<Vec<String>> {
    struct Collector {
        names: Vec<String>,
        wildcard: bool,
    }
    impl Visitor for Collector {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &SqlExpr) -> ControlFlow<()> {
            match expr {
                SqlExpr::Identifier(ident) => self.names.push(ident.value.clone()),
                SqlExpr::CompoundIdentifier(parts) => {
                    if let Some(last) = parts.last() {
                        self.names.push(last.value.clone());
                    }
                }
                _ => {}
            }
            ControlFlow::Continue(())
        }
    }
    let SetExpr::Select(select) = query.body.as_ref() else {
        return None;
    };
    let mut collector = Collector {
        names: Vec::new(),
        wildcard: false,
    };
    for item in &select.projection {
        if matches!(
            item,
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
        ) {
            collector.wildcard = true;
        }
    }
    if collector.wildcard {
        return None;
    }
    let _ = query.visit(&mut collector);
    Some(collector.names)
}
