//! Helpers for configuration structs that the engine's components own and
//! `heliosdb.toml` holds: numbers checked against a range when they are read, so a TOML
//! error names the file, the line and the key, and says what is allowed.

use serde::{Deserialize, Deserializer, de};
use std::fmt;

/// An inclusive range of allowed values, named for messages ("a number of events from 1
/// to 1000").
#[derive(Clone, Copy, Debug)]
pub struct Range {
    /// Smallest allowed value.
    pub min: u64,
    /// Largest allowed value.
    pub max: u64,
    /// What the number is ("a number of events").
    pub what: &'static str,
}

impl de::Expected for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} from {} to {}", self.what, self.min, self.max)
    }
}

/// Reads a number and refuses one outside `range`.
pub fn in_range<'de, D: Deserializer<'de>>(d: D, range: &Range) -> Result<u64, D::Error> {
    let value = i64::deserialize(d)?;
    match u64::try_from(value) {
        Ok(v) if (range.min..=range.max).contains(&v) => Ok(v),
        _ => Err(de::Error::invalid_value(
            de::Unexpected::Signed(value),
            range,
        )),
    }
}

/// Declares `fn name(deserializer) -> Result<u64, _>` for each `name: min, max, what;`,
/// for `#[serde(deserialize_with = "name")]`.
#[macro_export]
macro_rules! ranged {
    ($($name:ident: $min:expr, $max:expr, $what:expr;)*) => {$(
        fn $name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
            $crate::settings::in_range(
                d,
                &$crate::settings::Range { min: $min, max: $max, what: $what },
            )
        }
    )*};
}
