//! INSERT: generated ids, engine-evaluated defaults, upserts (`INSERT OR IGNORE/REPLACE`,
//! `ON CONFLICT ... DO NOTHING / DO UPDATE`) and RETURNING.

use super::{Context, Effects, execute_glue, returning_rows, select_from, table_name, time};
use crate::catalog::TableRecord;
use crate::error::{Error, Result};
use crate::output::Output;
use crate::store::SqlStore;
use bigdecimal::BigDecimal;
use gluesql_core::ast::ColumnUniqueOption;
use gluesql_core::executor::Payload;
use gluesql_core::sqlparser::ast::{
    Assignment, AssignmentTarget, BinaryOperator, ConflictTarget, Expr as SqlExpr, Ident, Insert,
    ObjectName, OnConflictAction, OnInsert, SelectItem, SetExpr, SqliteOnConflict,
    Statement as SqlStatement, UnaryOperator, Value as SqlValue, Values, visit_expressions_mut,
};
use gluesql_core::sqlparser::dialect::SQLiteDialect;
use gluesql_core::sqlparser::parser::Parser;
use std::ops::ControlFlow;

/// What to do with a row that conflicts with a stored one.
enum Conflict {
    /// Fail the statement (plain INSERT, `OR ABORT`).
    Abort,
    /// Skip the row (`OR IGNORE`, `DO NOTHING`).
    Ignore(Option<ConflictTarget>),
    /// Delete the conflicting rows, then insert (`OR REPLACE`, `REPLACE INTO`).
    Replace,
    /// Update the conflicting row (`DO UPDATE SET ... [WHERE ...]`).
    Update {
        target: Option<ConflictTarget>,
        assignments: Vec<Assignment>,
        selection: Option<Box<SqlExpr>>,
    },
}

fn conflict_mode(insert: &mut Insert) -> Result<Conflict> {
    let or = insert.or.take();
    let ignore = std::mem::take(&mut insert.ignore);
    let replace = std::mem::take(&mut insert.replace_into);
    if insert.priority.is_some() || insert.insert_alias.is_some() || insert.table_alias.is_some() {
        return Err(Error::Unsupported(
            "INSERT priority, table alias and row alias are not supported".to_owned(),
        ));
    }
    match (or, insert.on.take()) {
        (Some(SqliteOnConflict::Fail | SqliteOnConflict::Rollback), _) => Err(Error::Unsupported(
            "INSERT OR FAIL / OR ROLLBACK: use a plain INSERT (each statement is atomic) inside BEGIN ... COMMIT"
                .to_owned(),
        )),
        (Some(_), Some(_)) => Err(Error::Unsupported(
            "INSERT OR ... cannot be combined with ON CONFLICT".to_owned(),
        )),
        (Some(SqliteOnConflict::Replace), None) => Ok(Conflict::Replace),
        (Some(SqliteOnConflict::Ignore), None) => Ok(Conflict::Ignore(None)),
        (Some(SqliteOnConflict::Abort), None) | (None, None) if !ignore && !replace => {
            Ok(Conflict::Abort)
        }
        (None, None) if replace => Ok(Conflict::Replace),
        (_, None) => Ok(Conflict::Ignore(None)),
        (None, Some(OnInsert::OnConflict(on))) => match on.action {
            OnConflictAction::DoNothing => Ok(Conflict::Ignore(on.conflict_target)),
            OnConflictAction::DoUpdate(update) => Ok(Conflict::Update {
                target: on.conflict_target,
                assignments: update.assignments,
                selection: update.selection.map(Box::new),
            }),
        },
        (None, Some(_)) => Err(Error::Unsupported(
            "ON DUPLICATE KEY UPDATE: write ON CONFLICT (column) DO UPDATE SET ...".to_owned(),
        )),
    }
}

/// The VALUES rows of an INSERT, if its source is a plain VALUES list.
fn values_of(insert: &mut Insert) -> Option<&mut Values> {
    let query = insert.source.as_mut()?;
    if query.with.is_some() || query.order_by.is_some() || query.limit.is_some() {
        return None;
    }
    match query.body.as_mut() {
        SetExpr::Values(values) => Some(values),
        _ => None,
    }
}

fn column_names(record: &TableRecord) -> Vec<String> {
    record
        .schema
        .column_defs
        .iter()
        .flatten()
        .map(|c| c.name.clone())
        .collect()
}

pub(super) fn run(
    store: &mut SqlStore,
    insert: &mut Insert,
    context: &Context<'_>,
    effects: &mut Effects,
) -> Result<Output> {
    let table = table_name(&insert.table_name)?;
    let mode = conflict_mode(insert)?;
    let returning = insert.returning.take();
    let Some(record) = store.table_record(&table)? else {
        // GlueSQL reports the missing table.
        time::fold(insert, context)?;
        return execute_glue(store, &SqlStatement::Insert(insert.clone()), context.params)
            .map(Output::from_payload);
    };

    if insert.columns.is_empty()
        && let Some(values) = values_of(insert)
    {
        let columns = column_names(&record);
        if !columns.is_empty() {
            if let Some(row) = values.rows.iter().find(|r| r.len() != columns.len()) {
                return Err(Error::Unsupported(format!(
                    "table {table} has {} columns but {} values were supplied",
                    columns.len(),
                    row.len()
                )));
            }
            insert.columns = columns.into_iter().map(Ident::new).collect();
        }
    }
    let mut bump_after = false;
    assign_ids(store, insert, &record, effects, &mut bump_after)?;
    add_defaults(insert, &record)?;
    time::fold(insert, context)?;
    let columns: Vec<String> = insert.columns.iter().map(|c| c.value.clone()).collect();
    if let Some(values) = values_of(insert) {
        for row in &mut values.rows {
            for (column, value) in columns.iter().zip(row.iter_mut()) {
                super::numeric_affinity(&record, column, value);
            }
        }
    }

    match mode {
        Conflict::Abort => {
            if returning.is_some() {
                store.start_capture(&table, false);
            }
            let payload = insert_rows(store, insert, context);
            let capture = store.take_capture();
            let payload = payload?;
            if bump_after {
                bump_sequence_to_max(store, &record, effects)?;
            }
            match (returning, capture) {
                (Some(items), Some(capture)) => {
                    returning_rows(store, &table, capture, &items, context)
                }
                _ => Ok(Output::from_payload(payload)),
            }
        }
        mode => {
            let output = upsert(store, insert, &record, mode, returning, context, effects)?;
            if bump_after {
                bump_sequence_to_max(store, &record, effects)?;
            }
            Ok(output)
        }
    }
}

/// Runs the INSERT with duplicate keys within it refused (GlueSQL alone would let the
/// later row overwrite the earlier one).
fn insert_rows(store: &mut SqlStore, insert: &Insert, context: &Context<'_>) -> Result<Payload> {
    store.set_inserting(true);
    let result = execute_glue(store, &SqlStatement::Insert(insert.clone()), context.params);
    store.set_inserting(false);
    result
}

/// `Some(None)` for NULL, `Some(Some(n))` for an integer literal (or a string holding
/// one, which the column would parse), `None` for anything else.
fn integer_literal(expr: &SqlExpr) -> Option<Option<i64>> {
    match expr {
        SqlExpr::Value(SqlValue::Null) => Some(None),
        SqlExpr::Value(SqlValue::Number(n, _)) => n.to_string().parse().ok().map(Some),
        SqlExpr::Value(SqlValue::SingleQuotedString(s)) => s.trim().parse().ok().map(Some),
        SqlExpr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => match expr.as_ref() {
            SqlExpr::Value(SqlValue::Number(n, _)) => format!("-{n}").parse().ok().map(Some),
            _ => None,
        },
        SqlExpr::Nested(inner) => integer_literal(inner),
        _ => None,
    }
}

/// Fills the auto-increment column of every VALUES row that omits it or gives NULL from
/// the table's sequence, and moves the sequence past ids given explicitly. The sequence
/// is written in the same transaction, so a failed or rolled-back INSERT hands its ids
/// out again, and a committed one never.
fn assign_ids(
    store: &mut SqlStore,
    insert: &mut Insert,
    record: &TableRecord,
    effects: &mut Effects,
    bump_after: &mut bool,
) -> Result<()> {
    let Some(auto) = record.extras.autoincrement.clone() else {
        return Ok(());
    };
    let table = record.schema.table_name.clone();
    let position = insert.columns.iter().position(|c| c.value == auto);
    let always = record.extras.generated_always;
    let start = store.sequence(record.id)?;
    let mut last = start;
    let next = |last: &mut i64| -> Result<i64> {
        *last = last.checked_add(1).ok_or_else(|| {
            Error::Unsupported(format!("table {table}: the id sequence is exhausted"))
        })?;
        Ok(*last)
    };
    let Some(values) = values_of(insert) else {
        if position.is_none() {
            return Err(Error::Unsupported(format!(
                "INSERT ... SELECT into {table}: list its id column {auto} in the column list and select a value for it"
            )));
        }
        if always {
            return Err(Error::Unsupported(format!(
                "column {auto} is GENERATED ALWAYS: omit it from the INSERT"
            )));
        }
        *bump_after = true;
        return Ok(());
    };
    for row in &mut values.rows {
        let id = match position {
            None => {
                let id = next(&mut last)?;
                row.push(SqlExpr::Value(SqlValue::Number(
                    BigDecimal::from(id),
                    false,
                )));
                id
            }
            Some(index) => {
                let Some(value) = row.get_mut(index) else {
                    continue; // GlueSQL reports the short row.
                };
                match integer_literal(value) {
                    Some(None) => {
                        let id = next(&mut last)?;
                        *value = SqlExpr::Value(SqlValue::Number(BigDecimal::from(id), false));
                        id
                    }
                    Some(Some(_)) if always => {
                        return Err(Error::Unsupported(format!(
                            "column {auto} is GENERATED ALWAYS: omit it from the INSERT"
                        )));
                    }
                    Some(Some(id)) => {
                        last = last.max(id);
                        id
                    }
                    None if always => {
                        return Err(Error::Unsupported(format!(
                            "column {auto} is GENERATED ALWAYS: omit it from the INSERT"
                        )));
                    }
                    None => {
                        // An expression: GlueSQL evaluates (or refuses) it, and the
                        // sequence moves past the stored maximum afterwards.
                        *bump_after = true;
                        continue;
                    }
                }
            }
        };
        effects.last_insert_id = Some(id);
    }
    if position.is_none() {
        insert.columns.push(Ident::new(auto));
    }
    if last != start {
        store.set_sequence(record.id, last)?;
    }
    Ok(())
}

/// After an INSERT whose ids were computed (`INSERT ... SELECT`, expressions), moves
/// the sequence past the largest stored id.
fn bump_sequence_to_max(
    store: &mut SqlStore,
    record: &TableRecord,
    effects: &mut Effects,
) -> Result<()> {
    let Some(auto) = &record.extras.autoincrement else {
        return Ok(());
    };
    let mut query = select_from(&record.schema.table_name)?;
    if let SetExpr::Select(select) = query.body.as_mut() {
        let sql = format!("MAX(\"{}\")", auto.replace('"', "\"\""));
        let expr = Parser::new(&SQLiteDialect {})
            .try_with_sql(&sql)
            .and_then(|mut p| p.parse_expr())
            .map_err(|e| Error::Internal(format!("cannot build MAX(): {e}")))?;
        select.projection = vec![SelectItem::UnnamedExpr(expr)];
    }
    let payload = execute_glue(store, &SqlStatement::Query(Box::new(query)), &[])?;
    if let Payload::Select { rows, .. } = payload
        && let Some(value) = rows.first().and_then(|r| r.first())
        && let Some(max) = <i64 as crate::FromValue>::from_value(value)
    {
        if max > store.sequence(record.id)? {
            store.set_sequence(record.id, max)?;
        }
        effects.last_insert_id = Some(max);
    }
    Ok(())
}

/// Adds the engine-evaluated defaults of the columns the INSERT omits.
fn add_defaults(insert: &mut Insert, record: &TableRecord) -> Result<()> {
    for default in &record.extras.defaults {
        if insert.columns.iter().any(|c| c.value == default.column) {
            continue;
        }
        let expr = Parser::new(&SQLiteDialect {})
            .try_with_sql(&default.sql)
            .and_then(|mut p| p.parse_expr())
            .map_err(|e| {
                Error::Internal(format!(
                    "stored default of column {} does not parse: {e}",
                    default.column
                ))
            })?;
        let Some(values) = values_of(insert) else {
            return Err(Error::Unsupported(format!(
                "INSERT ... SELECT into {}: list column {} (its default is evaluated per VALUES row)",
                record.schema.table_name, default.column
            )));
        };
        for row in &mut values.rows {
            row.push(expr.clone());
        }
        insert.columns.push(Ident::new(default.column.clone()));
    }
    Ok(())
}

/// The table's unique constraints, each as its column list: the primary key, UNIQUE
/// columns, and the engine's constraints.
fn constraints(record: &TableRecord) -> Vec<(Option<String>, Vec<String>)> {
    let mut out = Vec::new();
    for column in record.schema.column_defs.iter().flatten() {
        if let Some(ColumnUniqueOption { .. }) = &column.unique {
            out.push((None, vec![column.name.clone()]));
        }
    }
    for unique in &record.extras.uniques {
        out.push((Some(unique.name.clone()), unique.columns.clone()));
    }
    out
}

fn quoted(name: &str) -> Ident {
    Ident::with_quote('"', name)
}

/// `c1 = v1 AND c2 = v2 ...` for one row and constraint; `None` when a value is NULL (a
/// NULL never conflicts) or the INSERT does not give the column.
fn conflict_predicate(
    columns: &[String],
    insert_columns: &[Ident],
    row: &[SqlExpr],
) -> Option<SqlExpr> {
    let mut predicate: Option<SqlExpr> = None;
    for column in columns {
        let index = insert_columns.iter().position(|c| &c.value == column)?;
        let value = row.get(index)?;
        if matches!(value, SqlExpr::Value(SqlValue::Null)) {
            return None;
        }
        let equal = SqlExpr::BinaryOp {
            left: Box::new(SqlExpr::Identifier(quoted(column))),
            op: BinaryOperator::Eq,
            right: Box::new(value.clone()),
        };
        predicate = Some(match predicate {
            None => equal,
            Some(left) => SqlExpr::BinaryOp {
                left: Box::new(left),
                op: BinaryOperator::And,
                right: Box::new(equal),
            },
        });
    }
    predicate
}

fn parse_one(sql: &str) -> Result<SqlStatement> {
    Parser::parse_sql(&SQLiteDialect {}, sql)
        .map_err(|e| Error::Internal(format!("cannot build {sql:?}: {e}")))?
        .into_iter()
        .next()
        .ok_or_else(|| Error::Internal(format!("cannot build {sql:?}")))
}

/// Whether a row matches `predicate`. When one of its equalities is on a keyed column
/// (primary key, unique constraint, index) only the rows holding that value are read.
fn exists(
    store: &mut SqlStore,
    record: &TableRecord,
    predicate: &SqlExpr,
    context: &Context<'_>,
) -> Result<bool> {
    let table = &record.schema.table_name;
    let mut query = select_from(table)?;
    if let SetExpr::Select(select) = query.body.as_mut() {
        select.selection = Some(predicate.clone());
    }
    let mut conjuncts = Vec::new();
    super::keyed::split_and(predicate, &mut conjuncts);
    let restriction = if super::keyed::has_subquery(predicate) {
        None
    } else {
        conjuncts
            .into_iter()
            .find_map(|c| super::keyed::restriction_for(record, c))
    };
    let restricted = restriction.is_some();
    if let Some(restriction) = restriction {
        store.restrict_next_scan(table, restriction);
    }
    let payload = execute_glue(store, &SqlStatement::Query(Box::new(query)), context.params);
    if restricted {
        store.clear_restriction();
    }
    Ok(matches!(payload?, Payload::Select { rows, .. } if !rows.is_empty()))
}

/// Runs an UPDATE or DELETE the upsert built, reading only the rows its key points at.
fn keyed_glue(
    store: &mut SqlStore,
    statement: &SqlStatement,
    context: &Context<'_>,
) -> Result<Payload> {
    let restricted = super::keyed::restrict(store, statement)?;
    let result = execute_glue(store, statement, context.params);
    if restricted {
        store.clear_restriction();
    }
    result
}

fn affected(payload: &Payload) -> u64 {
    match payload {
        Payload::Insert(n) | Payload::Update(n) | Payload::Delete(n) => {
            u64::try_from(*n).unwrap_or(u64::MAX)
        }
        _ => 0,
    }
}

/// Replaces `excluded.col` with the row's value for `col` and drops a `table.` qualifier.
fn bind_excluded<V: gluesql_core::sqlparser::ast::VisitMut>(
    node: &mut V,
    table: &str,
    insert_columns: &[Ident],
    row: &[SqlExpr],
) {
    let _ = visit_expressions_mut(node, |expr| {
        if let SqlExpr::CompoundIdentifier(parts) = expr
            && let [qualifier, column] = parts.as_slice()
        {
            if qualifier.value.eq_ignore_ascii_case("excluded") {
                let value = insert_columns
                    .iter()
                    .position(|c| c.value == column.value)
                    .and_then(|i| row.get(i))
                    .cloned()
                    .unwrap_or(SqlExpr::Value(SqlValue::Null));
                *expr = value;
            } else if qualifier.value == table {
                *expr = SqlExpr::Identifier(column.clone());
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

#[allow(clippy::too_many_arguments)]
fn upsert(
    store: &mut SqlStore,
    insert: &mut Insert,
    record: &TableRecord,
    mode: Conflict,
    returning: Option<Vec<SelectItem>>,
    context: &Context<'_>,
    effects: &mut Effects,
) -> Result<Output> {
    let table = record.schema.table_name.clone();
    let all = constraints(record);
    let target = match &mode {
        Conflict::Ignore(target) | Conflict::Update { target, .. } => target.clone(),
        _ => None,
    };
    let candidates: Vec<Vec<String>> = match target {
        None => all.into_iter().map(|(_, columns)| columns).collect(),
        Some(ConflictTarget::Columns(columns)) => {
            let wanted: std::collections::BTreeSet<&str> =
                columns.iter().map(|c| c.value.as_str()).collect();
            let found = all.into_iter().find(|(_, cols)| {
                cols.iter()
                    .map(String::as_str)
                    .collect::<std::collections::BTreeSet<_>>()
                    == wanted
            });
            match found {
                Some((_, cols)) => vec![cols],
                None => {
                    return Err(Error::Unsupported(format!(
                        "ON CONFLICT ({}): no PRIMARY KEY or UNIQUE constraint of {table} has exactly these columns",
                        columns
                            .iter()
                            .map(|c| c.value.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
            }
        }
        Some(ConflictTarget::OnConstraint(name)) => {
            let name = name.to_string();
            match all
                .into_iter()
                .find(|(n, _)| n.as_deref() == Some(name.as_str()))
            {
                Some((_, cols)) => vec![cols],
                None => {
                    return Err(Error::Unsupported(format!(
                        "ON CONFLICT ON CONSTRAINT {name}: {table} has no such constraint"
                    )));
                }
            }
        }
    };
    let Some(values) = values_of(insert) else {
        return Err(Error::Unsupported(
            "INSERT ... SELECT with OR IGNORE / OR REPLACE / ON CONFLICT: use VALUES".to_owned(),
        ));
    };
    let rows = std::mem::take(&mut values.rows);
    let columns = insert.columns.clone();
    if returning.is_some() {
        store.start_capture(&table, false);
    }
    let result = (|| -> Result<(u64, u64, u64, u64)> {
        let (mut inserted, mut updated, mut ignored, mut replaced) = (0u64, 0u64, 0u64, 0u64);
        for row in rows {
            let mut conflicting = Vec::new();
            for constraint in &candidates {
                if let Some(predicate) = conflict_predicate(constraint, &columns, &row)
                    && exists(store, record, &predicate, context)?
                {
                    conflicting.push(predicate);
                }
            }
            match &mode {
                Conflict::Ignore(_) if !conflicting.is_empty() => {
                    ignored += 1;
                    continue;
                }
                Conflict::Update {
                    assignments,
                    selection,
                    ..
                } if !conflicting.is_empty() => {
                    let mut statement = parse_one(&format!(
                        "UPDATE \"{}\" SET x = 1",
                        table.replace('"', "\"\"")
                    ))?;
                    if let SqlStatement::Update {
                        assignments: target_assignments,
                        selection: target_selection,
                        ..
                    } = &mut statement
                    {
                        *target_assignments = assignments.clone();
                        for assignment in target_assignments.iter_mut() {
                            if let AssignmentTarget::ColumnName(ObjectName(parts)) =
                                &mut assignment.target
                                && parts.len() > 1
                                && let Some(last) = parts.pop()
                            {
                                *parts = vec![last];
                            }
                        }
                        let mut predicate = conflicting.swap_remove(0);
                        if let Some(extra) = selection {
                            predicate = SqlExpr::BinaryOp {
                                left: Box::new(predicate),
                                op: BinaryOperator::And,
                                right: Box::new(SqlExpr::Nested(extra.clone())),
                            };
                        }
                        *target_selection = Some(predicate);
                    }
                    bind_excluded(&mut statement, &table, &columns, &row);
                    time::fold(&mut statement, context)?;
                    updated += affected(&keyed_glue(store, &statement, context)?);
                    continue;
                }
                Conflict::Replace => {
                    for predicate in conflicting {
                        let mut statement =
                            parse_one(&format!("DELETE FROM \"{}\"", table.replace('"', "\"\"")))?;
                        if let SqlStatement::Delete(delete) = &mut statement {
                            delete.selection = Some(predicate);
                        }
                        replaced += affected(&keyed_glue(store, &statement, context)?);
                    }
                }
                _ => {}
            }
            let mut single = insert.clone();
            if let Some(values) = values_of(&mut single) {
                values.rows = vec![row];
            }
            inserted += affected(&insert_rows(store, &single, context)?);
        }
        Ok((inserted, updated, ignored, replaced))
    })();
    let capture = store.take_capture();
    let (inserted, updated, ignored, replaced) = result?;
    for (key, count) in [
        ("rows_inserted", inserted),
        ("rows_updated", updated),
        ("rows_ignored", ignored),
        ("rows_replaced", replaced),
    ] {
        effects.upsert.insert(key.to_owned(), count.to_string());
    }
    match (returning, capture) {
        (Some(items), Some(capture)) => returning_rows(store, &table, capture, &items, context),
        _ => Ok(Output::Affected {
            statement: "INSERT",
            count: inserted.saturating_add(updated),
        }),
    }
}
