//! UPDATE and DELETE that touch only the rows they can match. GlueSQL 0.20 executes both by
//! scanning the whole table and filtering with the WHERE. When the WHERE requires
//! `column = constant` on the primary key, an indexed column or a single-column unique
//! constraint, the store's next scan of the table is narrowed to the rows holding that value
//! (an O(log n) lookup); GlueSQL still applies the whole WHERE to them, so the result cannot
//! change.

use super::table_name;
use crate::catalog::TableRecord;
use crate::error::Result;
use crate::store::{Restriction, SqlStore};
use gluesql_core::ast::{ColumnUniqueOption, Expr as GlueExpr};
use gluesql_core::data::{Key, Value};
use gluesql_core::sqlparser::ast::{
    BinaryOperator, Expr as SqlExpr, Statement as SqlStatement, TableFactor, Value as SqlValue,
    Visit, Visitor,
};
use std::ops::ControlFlow;

/// Narrows the next scan for `statement` if it is an UPDATE or DELETE that allows it.
/// Returns whether a restriction was set.
pub(super) fn restrict(store: &SqlStore, statement: &SqlStatement) -> Result<bool> {
    let (name, selection) = match statement {
        SqlStatement::Update {
            table,
            selection: Some(selection),
            from: None,
            ..
        } if table.joins.is_empty() => match &table.relation {
            TableFactor::Table { name, .. } => (name, selection),
            _ => return Ok(false),
        },
        SqlStatement::Delete(delete) => match (
            super::delete_tables(delete),
            &delete.selection,
            &delete.using,
        ) {
            ([name], Some(selection), None) => (name, selection),
            _ => return Ok(false),
        },
        _ => return Ok(false),
    };
    // A subquery could scan the same table and must see all of it.
    if has_subquery(selection) {
        return Ok(false);
    }
    let Ok(table) = table_name(name) else {
        return Ok(false);
    };
    let Some(record) = store.table_record(&table)? else {
        return Ok(false);
    };
    let mut conjuncts = Vec::new();
    split_and(selection, &mut conjuncts);
    for conjunct in conjuncts {
        if let Some(restriction) = restriction_for(&record, conjunct) {
            store.restrict_next_scan(&table, restriction);
            return Ok(true);
        }
    }
    Ok(false)
}

pub(super) fn has_subquery(expr: &SqlExpr) -> bool {
    struct Finder;
    impl Visitor for Finder {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &SqlExpr) -> ControlFlow<()> {
            match expr {
                SqlExpr::Subquery(_) | SqlExpr::InSubquery { .. } | SqlExpr::Exists { .. } => {
                    ControlFlow::Break(())
                }
                _ => ControlFlow::Continue(()),
            }
        }
    }
    expr.visit(&mut Finder).is_break()
}

pub(super) fn split_and<'e>(expr: &'e SqlExpr, out: &mut Vec<&'e SqlExpr>) {
    match expr {
        SqlExpr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            split_and(left, out);
            split_and(right, out);
        }
        SqlExpr::Nested(inner) => split_and(inner, out),
        other => out.push(other),
    }
}

/// A constant as a value: numbers, strings and booleans.
pub(super) fn constant(expr: &SqlExpr) -> Option<Value> {
    match expr {
        SqlExpr::Value(SqlValue::Number(n, _)) => {
            let text = n.to_string();
            text.parse::<i64>()
                .map(Value::I64)
                .ok()
                .or_else(|| text.parse::<f64>().ok().map(Value::F64))
        }
        SqlExpr::Value(SqlValue::SingleQuotedString(s)) => Some(Value::Str(s.clone())),
        SqlExpr::Value(SqlValue::Boolean(b)) => Some(Value::Bool(*b)),
        SqlExpr::UnaryOp {
            op: gluesql_core::sqlparser::ast::UnaryOperator::Minus,
            expr,
        } => match constant(expr)? {
            Value::I64(v) => v.checked_neg().map(Value::I64),
            Value::F64(v) => Some(Value::F64(-v)),
            _ => None,
        },
        SqlExpr::Nested(inner) => constant(inner),
        _ => None,
    }
}

fn column_of(expr: &SqlExpr, table: &str) -> Option<String> {
    match expr {
        SqlExpr::Identifier(ident) => Some(ident.value.clone()),
        SqlExpr::CompoundIdentifier(parts) => match parts.as_slice() {
            [qualifier, column] if qualifier.value == table => Some(column.value.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// The restriction `column = constant` allows, if the column is keyed.
pub(super) fn restriction_for(record: &TableRecord, conjunct: &SqlExpr) -> Option<Restriction> {
    let SqlExpr::BinaryOp {
        left,
        op: BinaryOperator::Eq,
        right,
    } = conjunct
    else {
        return None;
    };
    let table = &record.schema.table_name;
    let (column, value) = match (column_of(left, table), constant(right)) {
        (Some(column), Some(value)) => (column, value),
        _ => (column_of(right, table)?, constant(left)?),
    };
    let column_def = record
        .schema
        .column_defs
        .iter()
        .flatten()
        .find(|c| c.name == column)?;
    if column_def.unique == Some(ColumnUniqueOption { is_primary: true }) {
        // A value that does not fit the key's type matches no row: GlueSQL reports the
        // type error (or no match) itself from a full scan.
        let key = value
            .cast(&column_def.data_type)
            .ok()
            .and_then(|v| Key::try_from(v).ok())?;
        return Some(Restriction::Keys(vec![key]));
    }
    if let Some(unique) = record
        .extras
        .uniques
        .iter()
        .find(|u| u.columns.len() == 1 && u.columns[0] == column)
    {
        value.cast(&column_def.data_type).ok()?;
        return Some(Restriction::Unique {
            constraint: unique.name.clone(),
            value,
        });
    }
    let index = record
        .schema
        .indexes
        .iter()
        .find(|i| matches!(&i.expr, GlueExpr::Identifier(name) if *name == column))?;
    value.cast(&column_def.data_type).ok()?;
    Some(Restriction::Index {
        index: index.name.clone(),
        value,
    })
}
