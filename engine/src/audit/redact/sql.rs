//! Finding the literals and parameters a statement gives redacted columns, on the parsed
//! statement.
//!
//! A literal is redacted when it is assigned to a redacted column (`INSERT` by column
//! position, `UPDATE ... SET`, `ON CONFLICT DO UPDATE SET`) or compared with an expression
//! that names one (`=`, `<>`, `<`, `LIKE`, `IN (...)`, `BETWEEN`, `IS DISTINCT FROM`,
//! `ANY`/`ALL`, `CASE col WHEN ...`), anywhere in the statement, subqueries included.
//! Every literal of such an assignment or comparison is taken, on both sides: the walk
//! errs on the side of hiding too much. `TRUE`, `FALSE` and `NULL` are never personal
//! data and stay.
//!
//! [`mark`] replaces each such literal by a numbered marker and returns the slots; the
//! caller computes a token per slot and [`fill`] puts the tokens in as string literals.

use sqlparser::ast::{
    AssignmentTarget, Expr, Insert, ObjectName, OnConflictAction, OnInsert, Query, SetExpr,
    Statement, Value, visit_expressions_mut,
};
use std::ops::ControlFlow;

/// Prefix of the markers [`mark`] leaves in place of literals. It cannot come out of the
/// parser: placeholders are numbered `$N` before a statement gets here.
const MARKER: &str = "\u{1}redact:";

/// What a slot holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SlotSource {
    /// A literal, replaced in the statement by the marker with this number.
    Literal(usize),
    /// A bound parameter, 0-based (`$1` is 0).
    Param(usize),
}

/// One value to redact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Slot {
    /// Where the value is.
    pub source: SlotSource,
    /// The literal's text (a string's content, a number's digits); empty for parameters,
    /// whose values the caller has.
    pub value: String,
    /// Index of the redacted column in the policy's list, when the column is known
    /// (`None`: an `INSERT` whose columns could not be told apart).
    pub column: Option<usize>,
    /// The `INSERT` row the value is in, counting from 0.
    pub row: Option<usize>,
}

/// A statement with its redacted literals replaced by markers.
#[derive(Debug)]
pub(crate) struct Marked {
    /// The statement, with markers.
    pub statement: Statement,
    /// The values found, in the order found.
    pub slots: Vec<Slot>,
}

/// Finds the values `statement` gives `columns`. `table_columns` names a table's columns
/// in order, for an `INSERT` without a column list; when it cannot, every literal of the
/// inserted rows is redacted.
pub(crate) fn mark(
    statement: &Statement,
    columns: &[String],
    table_columns: &dyn Fn(&str) -> Option<Vec<String>>,
) -> Marked {
    let mut marker = Marker {
        columns,
        slots: Vec::new(),
        literals: 0,
    };
    let mut statement = statement.clone();
    match &mut statement {
        Statement::Insert(insert) => marker.insert(insert, table_columns),
        Statement::Update { assignments, .. } => {
            for assignment in assignments {
                marker.assignment(&assignment.target, &mut assignment.value);
            }
        }
        _ => {}
    }
    let _ = visit_expressions_mut(&mut statement, |expr| {
        marker.comparison(expr);
        ControlFlow::<()>::Continue(())
    });
    Marked {
        statement,
        slots: marker.slots,
    }
}

/// Puts `tokens[n]` (as a single-quoted string) where [`mark`] left marker `n`.
pub(crate) fn fill(statement: &mut Statement, tokens: &[String]) {
    let _ = visit_expressions_mut(statement, |expr| {
        if let Expr::Value(Value::Placeholder(name)) = expr
            && let Some(number) = name.strip_prefix(MARKER)
            && let Ok(number) = number.parse::<usize>()
        {
            let token = tokens
                .get(number)
                .cloned()
                .unwrap_or_else(|| "?".to_owned());
            *expr = Expr::Value(Value::SingleQuotedString(token));
        }
        ControlFlow::<()>::Continue(())
    });
}

struct Marker<'a> {
    columns: &'a [String],
    slots: Vec<Slot>,
    literals: usize,
}

impl Marker<'_> {
    /// Index of `name` among the redacted columns.
    fn column(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(name))
    }

    /// The first redacted column `expr` names, anywhere inside it.
    fn named_in(&self, expr: &mut Expr) -> Option<usize> {
        let mut found = None;
        let _ = visit_expressions_mut(expr, |e| {
            let name = match e {
                Expr::Identifier(ident) => Some(&ident.value),
                Expr::CompoundIdentifier(parts) => parts.last().map(|p| &p.value),
                _ => None,
            };
            if let Some(index) = name.and_then(|n| self.column(n)) {
                found = Some(index);
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        });
        found
    }

    /// Replaces every literal in `expr` by a marker, and notes every parameter, for
    /// `column` in `row`.
    fn take_all(&mut self, expr: &mut Expr, column: Option<usize>, row: Option<usize>) {
        let _ = visit_expressions_mut(expr, |e| {
            match e {
                Expr::Value(Value::Placeholder(name)) => {
                    if let Some(index) = name
                        .strip_prefix('$')
                        .and_then(|n| n.parse::<usize>().ok())
                        .and_then(|n| n.checked_sub(1))
                    {
                        self.slots.push(Slot {
                            source: SlotSource::Param(index),
                            value: String::new(),
                            column,
                            row,
                        });
                    }
                }
                Expr::Value(value) => {
                    if let Some(text) = literal_text(value) {
                        self.push_literal(e, text, column, row);
                    }
                }
                Expr::TypedString { value, .. } => {
                    let text = value.clone();
                    self.push_literal(e, text, column, row);
                }
                _ => {}
            }
            ControlFlow::<()>::Continue(())
        });
    }

    fn push_literal(
        &mut self,
        expr: &mut Expr,
        value: String,
        column: Option<usize>,
        row: Option<usize>,
    ) {
        let number = self.literals;
        self.literals += 1;
        *expr = Expr::Value(Value::Placeholder(format!("{MARKER}{number}")));
        self.slots.push(Slot {
            source: SlotSource::Literal(number),
            value,
            column,
            row,
        });
    }

    fn assignment(&mut self, target: &AssignmentTarget, value: &mut Expr) {
        let names: Vec<&ObjectName> = match target {
            AssignmentTarget::ColumnName(name) => vec![name],
            AssignmentTarget::Tuple(names) => names.iter().collect(),
        };
        let column = names
            .iter()
            .filter_map(|name| name.0.last())
            .find_map(|ident| self.column(&ident.value));
        if column.is_some() {
            self.take_all(value, column, None);
        }
    }

    fn insert(&mut self, insert: &mut Insert, table_columns: &dyn Fn(&str) -> Option<Vec<String>>) {
        let names: Option<Vec<String>> = if insert.columns.is_empty() {
            insert
                .table_name
                .0
                .last()
                .and_then(|table| table_columns(&table.value))
        } else {
            Some(insert.columns.iter().map(|c| c.value.clone()).collect())
        };
        if let Some(source) = insert.source.as_deref_mut() {
            self.insert_source(source, names.as_deref());
        }
        match &mut insert.on {
            Some(OnInsert::DuplicateKeyUpdate(assignments)) => {
                for assignment in assignments {
                    self.assignment(&assignment.target, &mut assignment.value);
                }
            }
            Some(OnInsert::OnConflict(conflict)) => {
                if let OnConflictAction::DoUpdate(update) = &mut conflict.action {
                    for assignment in &mut update.assignments {
                        self.assignment(&assignment.target, &mut assignment.value);
                    }
                }
            }
            _ => {}
        }
    }

    /// The inserted rows: by position when the columns are known and the rows are
    /// `VALUES`; otherwise every literal, when any redacted column may be written.
    fn insert_source(&mut self, source: &mut Query, names: Option<&[String]>) {
        let redacted: Option<Vec<Option<usize>>> =
            names.map(|names| names.iter().map(|n| self.column(n)).collect());
        if let Some(redacted) = &redacted
            && redacted.iter().all(Option::is_none)
        {
            return;
        }
        match (source.body.as_mut(), redacted) {
            (SetExpr::Values(values), Some(redacted)) => {
                for (row, exprs) in values.rows.iter_mut().enumerate() {
                    for (position, expr) in exprs.iter_mut().enumerate() {
                        // A row longer than the column list is an error the executor
                        // reports; its extra values are hidden all the same.
                        let column = redacted.get(position).copied().unwrap_or(Some(0));
                        if column.is_some() {
                            self.take_all(expr, column, Some(row));
                        }
                    }
                }
            }
            (SetExpr::Values(values), None) => {
                for (row, exprs) in values.rows.iter_mut().enumerate() {
                    for expr in exprs {
                        self.take_all(expr, None, Some(row));
                    }
                }
            }
            _ => {
                let _ = visit_expressions_mut(source, |expr| {
                    self.take_all(expr, None, None);
                    ControlFlow::<()>::Continue(())
                });
            }
        }
    }

    /// A comparison naming a redacted column: every literal in it is taken.
    fn comparison(&mut self, expr: &mut Expr) {
        let parts: Vec<&mut Expr> = match expr {
            Expr::BinaryOp { left, op, right } if is_comparison(op) => {
                vec![left.as_mut(), right.as_mut()]
            }
            Expr::AnyOp { left, right, .. } | Expr::AllOp { left, right, .. } => {
                vec![left.as_mut(), right.as_mut()]
            }
            Expr::IsDistinctFrom(left, right) | Expr::IsNotDistinctFrom(left, right) => {
                vec![left.as_mut(), right.as_mut()]
            }
            Expr::InList { expr, list, .. } => {
                let mut parts = vec![expr.as_mut()];
                parts.extend(list.iter_mut());
                parts
            }
            Expr::Between {
                expr, low, high, ..
            } => vec![expr.as_mut(), low.as_mut(), high.as_mut()],
            Expr::Like { expr, pattern, .. }
            | Expr::ILike { expr, pattern, .. }
            | Expr::SimilarTo { expr, pattern, .. }
            | Expr::RLike { expr, pattern, .. } => vec![expr.as_mut(), pattern.as_mut()],
            Expr::Case {
                operand: Some(operand),
                conditions,
                ..
            } => {
                let mut parts = vec![operand.as_mut()];
                parts.extend(conditions.iter_mut());
                parts
            }
            _ => return,
        };
        let mut column = None;
        let mut parts = parts;
        for part in &mut parts {
            if let Some(found) = self.named_in(part) {
                column = Some(found);
                break;
            }
        }
        if column.is_none() {
            return;
        }
        for part in parts {
            self.take_all(part, column, None);
        }
    }
}

fn is_comparison(op: &sqlparser::ast::BinaryOperator) -> bool {
    use sqlparser::ast::BinaryOperator as Op;
    matches!(
        op,
        Op::Eq | Op::NotEq | Op::Lt | Op::LtEq | Op::Gt | Op::GtEq | Op::Spaceship
    )
}

/// The text of a literal that may carry personal data: a string's content, a number's
/// digits. `TRUE`, `FALSE`, `NULL` and placeholders are not.
fn literal_text(value: &Value) -> Option<String> {
    match value {
        Value::Boolean(_) | Value::Null | Value::Placeholder(_) => None,
        Value::Number(number, _) => Some(number.to_string()),
        Value::SingleQuotedString(s)
        | Value::DoubleQuotedString(s)
        | Value::TripleSingleQuotedString(s)
        | Value::TripleDoubleQuotedString(s)
        | Value::EscapedStringLiteral(s)
        | Value::UnicodeStringLiteral(s)
        | Value::NationalStringLiteral(s)
        | Value::HexStringLiteral(s)
        | Value::SingleQuotedByteStringLiteral(s)
        | Value::DoubleQuotedByteStringLiteral(s) => Some(s.clone()),
        Value::DollarQuotedString(s) => Some(s.value.clone()),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn marked(sql: &str, columns: &[&str]) -> (String, Vec<Slot>) {
        let statement = crate::dialect::parse(sql).unwrap().remove(0);
        let columns: Vec<String> = columns.iter().map(|c| (*c).to_owned()).collect();
        let no_table = |_: &str| None;
        let mut marked = mark(&statement, &columns, &no_table);
        let tokens: Vec<String> = (0..marked.slots.len()).map(|n| format!("T{n}")).collect();
        fill(&mut marked.statement, &tokens);
        (marked.statement.to_string(), marked.slots)
    }

    #[test]
    fn insert_by_position() {
        let (text, slots) = marked(
            "INSERT INTO p (id, email, age) VALUES (1, 'a@x', 30), (2, 'b@x', 40)",
            &["email"],
        );
        assert_eq!(
            text,
            "INSERT INTO p (id, email, age) VALUES (1, 'T0', 30), (2, 'T1', 40)"
        );
        assert_eq!(slots[1].value, "b@x");
        assert_eq!(slots[1].row, Some(1));
    }

    #[test]
    fn insert_without_columns_hides_every_value() {
        let (text, _) = marked("INSERT INTO p VALUES (1, 'a@x')", &["email"]);
        assert_eq!(text, "INSERT INTO p VALUES ('T0', 'T1')");
    }

    #[test]
    fn update_set_and_where() {
        let (text, slots) = marked(
            "UPDATE p SET email = 'new@x', age = 3 WHERE p.email = 'old@x' OR lower(email) IN ('c', 'd')",
            &["email"],
        );
        assert_eq!(
            text,
            "UPDATE p SET email = 'T0', age = 3 WHERE p.email = 'T1' OR lower(email) IN ('T2', 'T3')"
        );
        assert_eq!(slots.len(), 4);
    }

    #[test]
    fn parameters_are_noted() {
        let (text, slots) = marked("SELECT * FROM p WHERE email = ? AND id = ?", &["email"]);
        assert_eq!(text, "SELECT * FROM p WHERE email = $1 AND id = $2");
        assert_eq!(slots.len(), 1);
        assert_eq!(slots[0].source, SlotSource::Param(0));
    }

    #[test]
    fn unrelated_literals_stay() {
        let (text, slots) = marked("SELECT 'x' FROM p WHERE id = 7 AND ok = TRUE", &["email"]);
        assert_eq!(text, "SELECT 'x' FROM p WHERE id = 7 AND ok = true");
        assert!(slots.is_empty());
    }
}
