//! `Printer`: writes statement results as text tables or JSON lines.

use crate::table::Table;
use heliosdb_lite::{Output, Value};
use serde::Serialize;
use std::io::{self, Write};

/// How results are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Aligned tables for rows, `INSERT 3` for changes, `CREATE TABLE` for the rest.
    Table,
    /// One JSON object per statement per line: `{"columns":[..],"rows":[[..]]}`,
    /// `{"statement":"INSERT","affected":3}` or `{"statement":"CREATE TABLE"}`.
    Json,
}

/// Prints one statement result after another to a writer.
pub struct Printer<W> {
    out: W,
    format: Format,
    /// Whether the previous result was a table; `None` before the first result. A table is
    /// set off from its neighbours by a blank line.
    previous_was_table: Option<bool>,
}

impl<W: Write> Printer<W> {
    /// A printer writing `format` to `out`.
    pub fn new(out: W, format: Format) -> Self {
        Self {
            out,
            format,
            previous_was_table: None,
        }
    }

    /// Prints one result and flushes, so output keeps pace with the statements run.
    pub fn print(&mut self, output: &Output) -> io::Result<()> {
        match self.format {
            Format::Table => self.print_text(output)?,
            Format::Json => {
                serde_json::to_writer(&mut self.out, &JsonOutput::from(output))?;
                writeln!(self.out)?;
            }
        }
        self.out.flush()
    }

    /// Ends a batch of results: a final table gets its trailing blank line, so whatever is
    /// printed next (the shell's prompt) stands apart.
    pub fn finish(&mut self) -> io::Result<()> {
        if self.previous_was_table == Some(true) {
            writeln!(self.out)?;
        }
        self.previous_was_table = None;
        self.out.flush()
    }

    fn print_text(&mut self, output: &Output) -> io::Result<()> {
        let is_table = matches!(output, Output::Rows(_));
        if let Some(previous_was_table) = self.previous_was_table
            && (previous_was_table || is_table)
        {
            writeln!(self.out)?;
        }
        match output {
            Output::Rows(rows) => write!(self.out, "{}", Table::new(rows))?,
            Output::Affected { statement, count } => writeln!(self.out, "{statement} {count}")?,
            Output::Done { statement } => writeln!(self.out, "{statement}")?,
            // `Output` may grow variants; show them rather than fail.
            other => writeln!(self.out, "{other:?}")?,
        }
        self.previous_was_table = Some(is_table);
        Ok(())
    }
}

/// One statement's result as a JSON object; fields serialize in declaration order.
#[derive(Serialize)]
#[serde(untagged)]
enum JsonOutput<'a> {
    Rows {
        columns: &'a [String],
        rows: Vec<Vec<serde_json::Value>>,
    },
    Affected {
        statement: &'a str,
        affected: u64,
    },
    Done {
        statement: &'a str,
    },
    Other {
        output: String,
    },
}

impl<'a> From<&'a Output> for JsonOutput<'a> {
    fn from(output: &'a Output) -> Self {
        match output {
            Output::Rows(rows) => JsonOutput::Rows {
                columns: &rows.columns,
                rows: rows
                    .rows
                    .iter()
                    .map(|row| row.iter().map(json_value).collect())
                    .collect(),
            },
            Output::Affected { statement, count } => JsonOutput::Affected {
                statement,
                affected: *count,
            },
            Output::Done { statement } => JsonOutput::Done { statement },
            other => JsonOutput::Other {
                output: format!("{other:?}"),
            },
        }
    }
}

/// A value as JSON: numbers as numbers, strings as strings, `NULL` as `null`, booleans as
/// booleans, maps and lists as objects and arrays; dates, times and timestamps as the same
/// text the table shows, bytes as hex.
pub fn json_value(value: &Value) -> serde_json::Value {
    match value {
        // GlueSQL's own conversion appends " UTC" to timestamps; keep the table's text.
        Value::Timestamp(_) => serde_json::Value::String(String::from(value)),
        other => serde_json::Value::try_from(other.clone())
            .unwrap_or_else(|_| serde_json::Value::String(String::from(other))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heliosdb_lite::Rows;

    fn printed(format: Format, outputs: &[Output]) -> String {
        let mut printer = Printer::new(Vec::new(), format);
        for output in outputs {
            printer.print(output).expect("writing to a Vec cannot fail");
        }
        String::from_utf8(printer.out).expect("printer writes UTF-8")
    }

    fn one_row() -> Output {
        Output::Rows(Rows {
            columns: vec!["n".to_owned(), "s".to_owned()],
            rows: vec![vec![Value::I64(1), Value::Null]],
        })
    }

    #[test]
    fn text_sets_tables_off_with_blank_lines() {
        let outputs = [
            Output::Done {
                statement: "CREATE TABLE",
            },
            Output::Affected {
                statement: "INSERT",
                count: 3,
            },
            one_row(),
            Output::Done { statement: "BEGIN" },
        ];
        assert_eq!(
            printed(Format::Table, &outputs),
            "CREATE TABLE\nINSERT 3\n\n n |  s\n---+------\n 1 | NULL\n(1 row)\n\nBEGIN\n"
        );
    }

    #[test]
    fn json_lines() {
        let outputs = [
            Output::Done {
                statement: "CREATE TABLE",
            },
            Output::Affected {
                statement: "INSERT",
                count: 3,
            },
            one_row(),
        ];
        assert_eq!(
            printed(Format::Json, &outputs),
            concat!(
                "{\"statement\":\"CREATE TABLE\"}\n",
                "{\"statement\":\"INSERT\",\"affected\":3}\n",
                "{\"columns\":[\"n\",\"s\"],\"rows\":[[1,null]]}\n",
            )
        );
    }

    #[test]
    fn json_values() {
        assert_eq!(json_value(&Value::Str("a".into())), serde_json::json!("a"));
        assert_eq!(json_value(&Value::F64(1.5)), serde_json::json!(1.5));
        assert_eq!(json_value(&Value::Bool(false)), serde_json::json!(false));
        assert_eq!(
            json_value(&Value::Bytea(vec![0xab, 1])),
            serde_json::json!("ab01")
        );
        assert_eq!(json_value(&Value::Null), serde_json::Value::Null);
    }
}
