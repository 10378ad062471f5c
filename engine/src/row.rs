//! Query results as Rust values: [`Rows`], one [`Row`] at a time, [`FromValue`] for a
//! column and [`FromRow`] for a whole row, with errors that name the column.
//!
//! ```
//! use heliosdb_engine::{FromRow, Row, Rows, Value};
//!
//! struct Patient {
//!     id: i64,
//!     name: String,
//!     ward: Option<String>,
//! }
//!
//! impl FromRow for Patient {
//!     fn from_row(row: &Row<'_>) -> heliosdb_engine::Result<Self> {
//!         Ok(Patient { id: row.get("id")?, name: row.get("name")?, ward: row.get("ward")? })
//!     }
//! }
//!
//! let rows = Rows {
//!     columns: vec!["id".into(), "name".into(), "ward".into()],
//!     rows: vec![vec![Value::I64(1), Value::Str("Ada".into()), Value::Null]],
//! };
//! let patients: Vec<Patient> = rows.map()?;
//! assert_eq!((patients[0].id, patients[0].name.as_str(), patients[0].ward.as_deref()), (1, "Ada", None));
//! let (id, name): (i64, String) = rows.row(0).expect("one row").to()?;
//! assert_eq!((id, name.as_str()), (1, "Ada"));
//! # Ok::<(), heliosdb_engine::Error>(())
//! ```

use crate::chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use crate::error::{Error, Result};
use gluesql_core::data::Value;
use rust_decimal::Decimal;

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

    /// Row `index`, or `None` past the last.
    pub fn row(&self, index: usize) -> Option<Row<'_>> {
        self.rows.get(index).map(|values| Row {
            columns: &self.columns,
            values,
        })
    }

    /// The rows in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Row<'_>> {
        self.rows.iter().map(|values| Row {
            columns: &self.columns,
            values,
        })
    }

    /// Every row converted with [`FromRow`].
    pub fn map<T: FromRow>(&self) -> Result<Vec<T>> {
        self.iter().map(|row| T::from_row(&row)).collect()
    }

    /// The value at `row`, `column` (an index or a label) converted to `T`.
    ///
    /// ```
    /// # use heliosdb_engine::{Rows, Value};
    /// let rows = Rows { columns: vec!["n".into()], rows: vec![vec![Value::I64(7)]] };
    /// assert_eq!(rows.get::<i64>(0, "n").unwrap(), 7);
    /// assert_eq!(rows.get::<i64>(0, 0).unwrap(), 7);
    /// assert!(rows.get::<String>(0, "n").unwrap_err().to_string().contains("\"n\""));
    /// ```
    pub fn get<T: FromValue>(&self, row: usize, column: impl ColumnIndex) -> Result<T> {
        self.row(row)
            .ok_or_else(|| Error::NoSuchRow {
                row,
                rows: self.rows.len(),
            })?
            .get(column)
    }
}

impl<'a> IntoIterator for &'a Rows {
    type Item = Row<'a>;
    type IntoIter = Box<dyn ExactSizeIterator<Item = Row<'a>> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

/// One row of [`Rows`]: its values, read by column index or label.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Row<'a> {
    columns: &'a [String],
    values: &'a [Value],
}

impl<'a> Row<'a> {
    /// The value of `column` (an index or a label) converted to `T`; an error names the
    /// column when it does not exist or holds a value `T` cannot take.
    pub fn get<T: FromValue>(&self, column: impl ColumnIndex) -> Result<T> {
        let index = column.position(self.columns)?;
        let value = &self.values[index];
        T::from_value(value).ok_or_else(|| Error::ColumnType {
            column: self.label(index),
            expected: T::SQL_TYPE,
            found: type_name(value),
        })
    }

    /// The stored value of `column`, unconverted.
    pub fn get_ref(&self, column: impl ColumnIndex) -> Result<&'a Value> {
        let index = column.position(self.columns)?;
        Ok(&self.values[index])
    }

    /// The whole row converted with [`FromRow`] (a tuple, a struct of yours).
    pub fn to<T: FromRow>(&self) -> Result<T> {
        T::from_row(self)
    }

    /// Number of columns.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True for a row of no column.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Column labels, in order.
    pub fn columns(&self) -> &'a [String] {
        self.columns
    }

    /// Values, in column order.
    pub fn values(&self) -> &'a [Value] {
        self.values
    }

    fn label(&self, index: usize) -> String {
        self.columns
            .get(index)
            .map_or_else(|| format!("#{index}"), |name| name.clone())
    }
}

/// What names a column: its 0-based index (`usize`) or its label (`&str`, `String`).
pub trait ColumnIndex {
    /// The column's position among `columns`, or an error naming it.
    fn position(&self, columns: &[String]) -> Result<usize>;
}

impl ColumnIndex for usize {
    fn position(&self, columns: &[String]) -> Result<usize> {
        if *self < columns.len() {
            Ok(*self)
        } else {
            Err(Error::NoSuchColumn {
                column: format!("#{self}"),
                columns: columns.to_vec(),
            })
        }
    }
}

impl ColumnIndex for &str {
    fn position(&self, columns: &[String]) -> Result<usize> {
        columns
            .iter()
            .position(|c| c == self)
            .or_else(|| columns.iter().position(|c| c.eq_ignore_ascii_case(self)))
            .ok_or_else(|| Error::NoSuchColumn {
                column: (*self).to_owned(),
                columns: columns.to_vec(),
            })
    }
}

impl ColumnIndex for String {
    fn position(&self, columns: &[String]) -> Result<usize> {
        self.as_str().position(columns)
    }
}

impl<T: ColumnIndex + ?Sized> ColumnIndex for &T
where
    T: ColumnIndex,
{
    fn position(&self, columns: &[String]) -> Result<usize> {
        (**self).position(columns)
    }
}

/// The SQL type of a stored value, for messages.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "NULL",
        Value::Bool(_) => "BOOLEAN",
        Value::I8(_) | Value::I16(_) | Value::I32(_) | Value::I64(_) | Value::I128(_) => "INTEGER",
        Value::U8(_) | Value::U16(_) | Value::U32(_) | Value::U64(_) | Value::U128(_) => {
            "unsigned INTEGER"
        }
        Value::F32(_) | Value::F64(_) => "REAL",
        Value::Decimal(_) => "DECIMAL",
        Value::Str(_) => "TEXT",
        Value::Bytea(_) => "BLOB",
        Value::Inet(_) => "INET",
        Value::Date(_) => "DATE",
        Value::Timestamp(_) => "TIMESTAMP",
        Value::Time(_) => "TIME",
        Value::Interval(_) => "INTERVAL",
        Value::Uuid(_) => "UUID",
        Value::Map(_) => "MAP",
        Value::List(_) => "LIST",
        Value::Point(_) => "POINT",
    }
}

/// Conversion from a SQL value to a Rust type, for [`Row::get`] and [`Rows::get`].
///
/// Integers convert between widths when the value fits (an `INTEGER` 300 is no `u8`);
/// `f64` takes integers too; `Option<T>` takes `NULL` as `None`.
pub trait FromValue: Sized {
    /// What the type takes, for messages ("an integer that fits i32", "TEXT").
    const SQL_TYPE: &'static str;

    /// The converted value, or `None` if the value has another type or does not fit.
    fn from_value(value: &Value) -> Option<Self>;
}

fn integer(value: &Value) -> Option<i128> {
    Some(match value {
        Value::I8(v) => i128::from(*v),
        Value::I16(v) => i128::from(*v),
        Value::I32(v) => i128::from(*v),
        Value::I64(v) => i128::from(*v),
        Value::I128(v) => *v,
        Value::U8(v) => i128::from(*v),
        Value::U16(v) => i128::from(*v),
        Value::U32(v) => i128::from(*v),
        Value::U64(v) => i128::from(*v),
        Value::U128(v) => i128::try_from(*v).ok()?,
        _ => return None,
    })
}

macro_rules! integer_from_value {
    ($($ty:ty => $what:literal),* $(,)?) => {
        $(
            impl FromValue for $ty {
                const SQL_TYPE: &'static str = $what;

                fn from_value(value: &Value) -> Option<Self> {
                    integer(value).and_then(|v| <$ty>::try_from(v).ok())
                }
            }
        )*
    };
}

integer_from_value!(
    i8 => "an INTEGER that fits i8",
    i16 => "an INTEGER that fits i16",
    i32 => "an INTEGER that fits i32",
    i64 => "an INTEGER that fits i64",
    i128 => "an INTEGER",
    isize => "an INTEGER that fits isize",
    u8 => "an INTEGER that fits u8",
    u16 => "an INTEGER that fits u16",
    u32 => "an INTEGER that fits u32",
    u64 => "an INTEGER that fits u64",
    usize => "an INTEGER that fits usize",
);

impl FromValue for f64 {
    const SQL_TYPE: &'static str = "a REAL or INTEGER";

    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::F32(v) => Some(f64::from(*v)),
            Value::F64(v) => Some(*v),
            // Integers beyond 2^53 lose precision, as in SQLite's REAL affinity.
            other => integer(other).map(|v| v as f64),
        }
    }
}

impl FromValue for f32 {
    const SQL_TYPE: &'static str = "a REAL";

    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::F32(v) => Some(*v),
            // The nearest f32; REAL columns hold f64.
            Value::F64(v) => Some(*v as f32),
            _ => None,
        }
    }
}

impl FromValue for bool {
    const SQL_TYPE: &'static str = "a BOOLEAN";

    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Bool(v) => Some(*v),
            _ => None,
        }
    }
}

impl FromValue for String {
    const SQL_TYPE: &'static str = "TEXT";

    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Str(v) => Some(v.clone()),
            _ => None,
        }
    }
}

impl FromValue for Vec<u8> {
    const SQL_TYPE: &'static str = "a BLOB";

    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Bytea(v) => Some(v.clone()),
            _ => None,
        }
    }
}

impl FromValue for Decimal {
    const SQL_TYPE: &'static str = "a DECIMAL or INTEGER";

    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Decimal(v) => Some(*v),
            other => integer(other)
                .and_then(|v| i64::try_from(v).ok())
                .map(Decimal::from),
        }
    }
}

impl FromValue for Value {
    const SQL_TYPE: &'static str = "any value";

    fn from_value(value: &Value) -> Option<Self> {
        Some(value.clone())
    }
}

impl FromValue for NaiveDateTime {
    const SQL_TYPE: &'static str = "a TIMESTAMP";

    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Timestamp(v) => Some(*v),
            _ => None,
        }
    }
}

impl FromValue for DateTime<Utc> {
    const SQL_TYPE: &'static str = "a TIMESTAMP (UTC)";

    fn from_value(value: &Value) -> Option<Self> {
        NaiveDateTime::from_value(value).map(|v| v.and_utc())
    }
}

impl FromValue for NaiveDate {
    const SQL_TYPE: &'static str = "a DATE";

    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Date(v) => Some(*v),
            _ => None,
        }
    }
}

impl FromValue for NaiveTime {
    const SQL_TYPE: &'static str = "a TIME";

    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Time(v) => Some(*v),
            _ => None,
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    const SQL_TYPE: &'static str = T::SQL_TYPE;

    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Null => Some(None),
            other => T::from_value(other).map(Some),
        }
    }
}

/// Conversion of a whole row: tuples take the columns in order (a row with fewer columns
/// is an error naming the missing one; extra columns are ignored, as rusqlite does not
/// check them either); implement it for your own structs with [`Row::get`] (see the
/// module example).
pub trait FromRow: Sized {
    /// The converted row.
    fn from_row(row: &Row<'_>) -> Result<Self>;
}

impl FromRow for Vec<Value> {
    fn from_row(row: &Row<'_>) -> Result<Self> {
        Ok(row.values.to_vec())
    }
}

macro_rules! tuple_from_row {
    ($($name:ident : $index:tt),+) => {
        impl<$($name: FromValue),+> FromRow for ($($name,)+) {
            fn from_row(row: &Row<'_>) -> Result<Self> {
                Ok(($(row.get::<$name>($index)?,)+))
            }
        }
    };
}

tuple_from_row!(A: 0);
tuple_from_row!(A: 0, B: 1);
tuple_from_row!(A: 0, B: 1, C: 2);
tuple_from_row!(A: 0, B: 1, C: 2, D: 3);
tuple_from_row!(A: 0, B: 1, C: 2, D: 3, E: 4);
tuple_from_row!(A: 0, B: 1, C: 2, D: 3, E: 4, F: 5);
tuple_from_row!(A: 0, B: 1, C: 2, D: 3, E: 4, F: 5, G: 6);
tuple_from_row!(A: 0, B: 1, C: 2, D: 3, E: 4, F: 5, G: 6, H: 7);

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn rows() -> Rows {
        Rows {
            columns: vec!["id".into(), "Name".into(), "score".into(), "blob".into()],
            rows: vec![
                vec![
                    Value::I64(300),
                    Value::Str("Ada".into()),
                    Value::F64(1.5),
                    Value::Bytea(vec![1, 2]),
                ],
                vec![Value::I64(-1), Value::Null, Value::I64(2), Value::Null],
            ],
        }
    }

    #[test]
    fn columns_by_index_and_name_convert_within_range() {
        let rows = rows();
        let first = rows.row(0).unwrap();
        assert_eq!(first.get::<i64>(0).unwrap(), 300);
        assert_eq!(first.get::<i16>("id").unwrap(), 300);
        assert_eq!(first.get::<u32>("id").unwrap(), 300);
        assert_eq!(
            first.get::<String>("name").unwrap(),
            "Ada",
            "labels match case-insensitively"
        );
        assert_eq!(first.get::<f64>("score").unwrap(), 1.5);
        assert_eq!(first.get::<Vec<u8>>("blob").unwrap(), [1, 2]);
        let second = rows.row(1).unwrap();
        assert_eq!(second.get::<f64>("score").unwrap(), 2.0);
        assert_eq!(second.get::<Option<String>>("Name").unwrap(), None);
        assert_eq!(second.get::<Decimal>(2).unwrap(), Decimal::from(2));
    }

    #[test]
    fn errors_name_the_column_and_the_types() {
        let rows = rows();
        let first = rows.row(0).unwrap();
        let error = first.get::<u8>("id").unwrap_err();
        assert!(matches!(error, Error::ColumnType { .. }), "{error:?}");
        let message = error.to_string();
        assert!(
            message.contains("\"id\"") && message.contains("u8") && message.contains("INTEGER"),
            "{message}"
        );
        let message = first.get::<i64>("nope").unwrap_err().to_string();
        assert!(
            message.contains("\"nope\"") && message.contains("id, Name, score, blob"),
            "{message}"
        );
        let message = first.get::<i64>(9).unwrap_err().to_string();
        assert!(message.contains("#9"), "{message}");
        let message = rows
            .row(1)
            .unwrap()
            .get::<String>("Name")
            .unwrap_err()
            .to_string();
        assert!(message.contains("NULL"), "{message}");
        let message = rows.get::<i64>(5, "id").unwrap_err().to_string();
        assert!(
            message.contains("row 5") && message.contains("2 rows"),
            "{message}"
        );
    }

    #[test]
    fn tuples_and_iteration() {
        let rows = rows();
        let pairs: Vec<(i64, Option<String>)> = rows.map().unwrap();
        assert_eq!(pairs, [(300, Some("Ada".to_owned())), (-1, None)]);
        let ids: Vec<i64> = rows.iter().map(|row| row.get(0).unwrap()).collect();
        assert_eq!(ids, [300, -1]);
        assert_eq!((&rows).into_iter().len(), 2);
        let too_wide = rows
            .row(0)
            .unwrap()
            .to::<(i64, String, f64, Vec<u8>, i64)>();
        assert!(too_wide.unwrap_err().to_string().contains("#4"));
    }
}
