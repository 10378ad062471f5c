//! [`Output`]: what one statement produced, as sessions return it.

use crate::row::Rows;
use gluesql_core::ast::DataType;
use gluesql_core::data::Value;
use gluesql_core::executor::{Payload, PayloadVariable};

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

    pub(crate) fn from_payload(payload: Payload) -> Output {
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
