//! `Table`: query rows rendered as an aligned text table, psql style.

use heliosdb_lite::{Rows, Value};
use std::fmt;

/// Rows rendered as an aligned text table: a centred header, a separator, one line per row
/// and a `(N rows)` footer. Numeric columns are right-aligned, everything else left-aligned;
/// `NULL` prints as `NULL`, strings print without quotes.
///
/// ```text
///  id | name
/// ----+------
///   1 | Ana
/// (1 row)
/// ```
pub struct Table<'a> {
    rows: &'a Rows,
}

impl<'a> Table<'a> {
    /// A table over `rows`.
    pub fn new(rows: &'a Rows) -> Self {
        Self { rows }
    }
}

impl fmt::Display for Table<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cells: Vec<Vec<String>> = self
            .rows
            .rows
            .iter()
            .map(|row| row.iter().map(cell).collect())
            .collect();
        let columns = self.rows.columns.len();
        let mut widths: Vec<usize> = self.rows.columns.iter().map(|c| width(c)).collect();
        let mut numeric = vec![true; columns];
        for (row, texts) in self.rows.rows.iter().zip(&cells) {
            for (i, (value, text)) in row.iter().zip(texts).enumerate().take(columns) {
                widths[i] = widths[i].max(width(text));
                numeric[i] &= is_numeric(value) || matches!(value, Value::Null);
            }
        }

        let header: Vec<String> = self
            .rows
            .columns
            .iter()
            .zip(&widths)
            .map(|(label, &w)| centre(label, w))
            .collect();
        writeln!(f, " {}", header.join(" | ").trim_end())?;
        let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w + 2)).collect();
        writeln!(f, "{}", rule.join("+"))?;
        for texts in &cells {
            let line: Vec<String> = texts
                .iter()
                .zip(&widths)
                .zip(&numeric)
                .map(|((text, &w), &right)| pad(text, w, right))
                .collect();
            writeln!(f, " {}", line.join(" | ").trim_end())?;
        }
        match self.rows.len() {
            1 => writeln!(f, "(1 row)"),
            n => writeln!(f, "({n} rows)"),
        }
    }
}

/// A value as table text: strings unquoted, `NULL` for null, control characters escaped so
/// one row stays on one line.
pub fn cell(value: &Value) -> String {
    let text = String::from(value);
    if text.chars().any(char::is_control) {
        text.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect()
    } else {
        text
    }
}

fn is_numeric(value: &Value) -> bool {
    matches!(
        value,
        Value::I8(_)
            | Value::I16(_)
            | Value::I32(_)
            | Value::I64(_)
            | Value::I128(_)
            | Value::U8(_)
            | Value::U16(_)
            | Value::U32(_)
            | Value::U64(_)
            | Value::U128(_)
            | Value::F32(_)
            | Value::F64(_)
            | Value::Decimal(_)
    )
}

/// Display width, counted in characters (good enough without a Unicode width table).
fn width(text: &str) -> usize {
    text.chars().count()
}

fn pad(text: &str, width_: usize, right: bool) -> String {
    let fill = " ".repeat(width_.saturating_sub(width(text)));
    if right {
        format!("{fill}{text}")
    } else {
        format!("{text}{fill}")
    }
}

fn centre(text: &str, width_: usize) -> String {
    let spare = width_.saturating_sub(width(text));
    let left = spare / 2;
    format!("{}{text}{}", " ".repeat(left), " ".repeat(spare - left))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(columns: &[&str], rows: Vec<Vec<Value>>) -> Rows {
        Rows {
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            rows,
        }
    }

    #[test]
    fn aligns_numbers_right_and_text_left() {
        let rows = rows(
            &["id", "name", "note"],
            vec![
                vec![Value::I64(1), Value::Str("Ana".into()), Value::Null],
                vec![
                    Value::I64(100),
                    Value::Str("Bartholomew".into()),
                    Value::Str("x".into()),
                ],
            ],
        );
        assert_eq!(
            Table::new(&rows).to_string(),
            concat!(
                " id  |    name     | note\n",
                "-----+-------------+------\n",
                "   1 | Ana         | NULL\n",
                " 100 | Bartholomew | x\n",
                "(2 rows)\n",
            )
        );
    }

    #[test]
    fn empty_result_has_header_and_footer() {
        let rows = rows(&["n"], vec![]);
        assert_eq!(Table::new(&rows).to_string(), " n\n---\n(0 rows)\n");
    }

    #[test]
    fn one_row_is_singular() {
        let rows = rows(&["n"], vec![vec![Value::I64(7)]]);
        assert!(Table::new(&rows).to_string().ends_with("(1 row)\n"));
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(cell(&Value::Str("a\nb\tc".into())), "a\\nb\\tc");
        assert_eq!(cell(&Value::Bool(true)), "TRUE");
        assert_eq!(cell(&Value::Null), "NULL");
    }
}
