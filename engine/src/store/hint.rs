//! Scan hints: what a single-table SELECT tells the store about the rows it can use.
//!
//! GlueSQL 0.20 narrows an index scan by one comparison of its WHERE (`timestamp >= $1`
//! reads the index from `$1` to the end, whatever `AND timestamp < $2` says), never uses
//! a range of the primary key, and sorts and limits only after reading every row it was
//! given. The dialect layer (`dialect::hint`) reads the statement before GlueSQL runs it
//! and hands the store a [`ScanHint`]: every `column op constant` conjunct of the WHERE,
//! and, for `ORDER BY <primary key> [DESC] LIMIT n` over nothing but such conjuncts, the
//! number of matching rows that is enough. The next scan of the table then:
//!
//! - bounds an index scan by every comparison on the index's column (both ends of a range);
//! - bounds a table scan by every comparison on the primary key;
//! - drops the rows that fail one of the comparisons (each is a conjunct of the WHERE,
//!   so GlueSQL would drop them too) before GlueSQL evaluates anything;
//! - with a limit, reads in key order and stops after `n` rows — for a table scan, and
//!   for an index scan on an equality (whose entries are in key order).
//!
//! GlueSQL still applies the whole WHERE, ORDER BY and LIMIT to what the scan returns, so a
//! hint can only make a scan return fewer rows that cannot be in the result.

use super::{IndexOperator, Key, Result, Value, matches_filter};
use crate::audit::ledger::Record;
use crate::audit::table as audit_table;
use crate::codec;
use std::cmp::Ordering;
use std::ops::Bound;

/// A check of one column of a row: `(column position, op, value)`.
pub(crate) type Check = (usize, IndexOperator, Value);

/// A range of stored keys.
pub(crate) type ByteRange = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// See the module documentation.
#[derive(Clone, Debug, Default)]
pub(crate) struct ScanHint {
    /// `column op value` conjuncts of the WHERE; each value is already of the column's
    /// type (a comparison whose constant does not convert exactly is left out).
    pub comparisons: Vec<(String, IndexOperator, Value)>,
    /// Set when the WHERE is those comparisons alone and the query is `ORDER BY <primary
    /// key> [ASC|DESC] LIMIT n [OFFSET m]` without grouping, aggregates or DISTINCT:
    /// `(descending, n + m)`.
    pub first: Option<(bool, usize)>,
    /// The column names the query mentions; `None` when it needs every column (`*`).
    /// Rows may hold NULL in the columns it does not mention.
    pub columns: Option<Vec<String>>,
}

impl ScanHint {
    /// The comparisons on `column`, as key bounds `(lower, upper)`; `None` when they
    /// cannot all be turned into keys.
    pub(crate) fn key_range(&self, column: &str) -> (Bound<Key>, Bound<Key>) {
        let mut lower = Bound::Unbounded;
        let mut upper = Bound::Unbounded;
        for (name, op, value) in &self.comparisons {
            if name != column {
                continue;
            }
            let Ok(key) = codec::value_to_key(value) else {
                continue;
            };
            match op {
                IndexOperator::Eq => {
                    lower = tighter_lower(lower, Bound::Included(key.clone()));
                    upper = tighter_upper(upper, Bound::Included(key));
                }
                IndexOperator::Gt => lower = tighter_lower(lower, Bound::Excluded(key)),
                IndexOperator::GtEq => lower = tighter_lower(lower, Bound::Included(key)),
                IndexOperator::Lt => upper = tighter_upper(upper, Bound::Excluded(key)),
                IndexOperator::LtEq => upper = tighter_upper(upper, Bound::Included(key)),
            }
        }
        (lower, upper)
    }

    /// Which of `columns` the query needs (all when the hint cannot tell).
    pub(crate) fn needed(&self, columns: &[&str]) -> Option<Vec<bool>> {
        let mentioned = self.columns.as_ref()?;
        Some(
            columns
                .iter()
                .map(|c| mentioned.iter().any(|m| m.eq_ignore_ascii_case(c)))
                .collect(),
        )
    }

    /// True when the hint has an equality on `column`.
    pub(crate) fn has_equality(&self, column: &str) -> bool {
        self.comparisons
            .iter()
            .any(|(name, op, _)| name == column && *op == IndexOperator::Eq)
    }

    /// The comparisons as `(column position, op, value)` for `columns`; `None` when one
    /// names a column not among them.
    pub(crate) fn checks(&self, columns: &[&str]) -> Option<Vec<Check>> {
        self.comparisons
            .iter()
            .map(|(name, op, value)| {
                let at = columns.iter().position(|c| c == name)?;
                Some((at, op.clone(), value.clone()))
            })
            .collect()
    }
}

/// How `__audit_log` rows are built under a hint: only the columns the query mentions,
/// and only after the columns its comparisons test let the record through.
#[derive(Clone, Debug, Default)]
pub(crate) struct AuditRows {
    needed: Option<Vec<bool>>,
    probe: Option<(Vec<bool>, Vec<Check>)>,
}

impl AuditRows {
    pub(crate) fn new(hint: Option<&ScanHint>) -> Self {
        let Some(hint) = hint else {
            return Self::default();
        };
        let columns: Vec<&str> = audit_table::COLUMNS
            .iter()
            .map(|(name, ..)| *name)
            .collect();
        let probe = hint
            .checks(&columns)
            .filter(|c| !c.is_empty())
            .map(|checks| {
                let mut mask = vec![false; columns.len()];
                for (at, ..) in &checks {
                    mask[*at] = true;
                }
                (mask, checks)
            });
        Self {
            needed: hint.needed(&columns),
            probe,
        }
    }

    /// The row of `record`, or `None` when it fails a comparison.
    pub(crate) fn build(&self, record: &Record) -> Option<Vec<Value>> {
        if let Some((mask, checks)) = &self.probe
            && !satisfies(&audit_table::row_masked(record, Some(mask)), checks)
        {
            return None;
        }
        Some(audit_table::row_masked(record, self.needed.as_deref()))
    }
}

/// True when `values` satisfies every check (a NULL satisfies none).
pub(crate) fn satisfies(values: &[Value], checks: &[Check]) -> bool {
    checks.iter().all(|(at, op, target)| {
        values
            .get(*at)
            .is_some_and(|value| matches_filter(value, op, target))
    })
}

/// Keeps the rows that satisfy every check — the others fail a conjunct of the WHERE and
/// GlueSQL would drop them — and ends after `want` of them when set.
pub(crate) fn satisfying<'a, I>(
    rows: I,
    checks: Vec<Check>,
    want: Option<usize>,
) -> impl Iterator<Item = Result<(Key, Vec<Value>)>> + 'a
where
    I: Iterator<Item = Result<(Key, Vec<Value>)>> + 'a,
{
    rows.filter(move |row| match row {
        Ok((_, values)) => satisfies(values, &checks),
        Err(_) => true,
    })
    .take(want.unwrap_or(usize::MAX))
}

fn tighter_lower(a: Bound<Key>, b: Bound<Key>) -> Bound<Key> {
    match (&a, &b) {
        (Bound::Unbounded, _) => b,
        (_, Bound::Unbounded) => a,
        (Bound::Included(x) | Bound::Excluded(x), Bound::Included(y) | Bound::Excluded(y)) => {
            match x.cmp(y) {
                Ordering::Less => b,
                Ordering::Greater => a,
                Ordering::Equal if matches!(b, Bound::Excluded(_)) => b,
                Ordering::Equal => a,
            }
        }
    }
}

fn tighter_upper(a: Bound<Key>, b: Bound<Key>) -> Bound<Key> {
    match (&a, &b) {
        (Bound::Unbounded, _) => b,
        (_, Bound::Unbounded) => a,
        (Bound::Included(x) | Bound::Excluded(x), Bound::Included(y) | Bound::Excluded(y)) => {
            match x.cmp(y) {
                Ordering::Less => a,
                Ordering::Greater => b,
                Ordering::Equal if matches!(b, Bound::Excluded(_)) => b,
                Ordering::Equal => a,
            }
        }
    }
}

/// Encodes key bounds under `prefix` (order-preserving key encoding, `docs/FORMAT.md` §4).
/// An upper bound `Included(k)` covers every entry that starts with `prefix + k` (index
/// entries continue with the primary key).
pub(crate) fn byte_range(
    prefix: &[u8],
    (lower, upper): (Bound<Key>, Bound<Key>),
    whole_upper: Bound<Vec<u8>>,
) -> ByteRange {
    let at = |key: &Key| {
        let mut bytes = prefix.to_vec();
        codec::encode_key_into(&mut bytes, key);
        bytes
    };
    let after = |key: &Key| {
        crate::backend::prefix_successor(&at(key)).map_or(Bound::Unbounded, Bound::Excluded)
    };
    let lower = match &lower {
        Bound::Unbounded => Bound::Included(prefix.to_vec()),
        Bound::Included(key) => Bound::Included(at(key)),
        Bound::Excluded(key) => match after(key) {
            Bound::Excluded(bytes) => Bound::Included(bytes),
            _ => Bound::Excluded(at(key)),
        },
    };
    let upper = match &upper {
        Bound::Unbounded => whole_upper,
        Bound::Included(key) => after(key),
        Bound::Excluded(key) => Bound::Excluded(at(key)),
    };
    (lower, upper)
}

/// `a ∩ b` for byte ranges.
pub(crate) fn intersect(a: ByteRange, b: ByteRange) -> ByteRange {
    let lower = match (a.0, b.0) {
        (Bound::Unbounded, x) | (x, Bound::Unbounded) => x,
        (x, y) => {
            let (xb, yb) = (bound_bytes(&x), bound_bytes(&y));
            match xb.cmp(yb) {
                Ordering::Less => y,
                Ordering::Greater => x,
                Ordering::Equal if matches!(y, Bound::Excluded(_)) => y,
                Ordering::Equal => x,
            }
        }
    };
    let upper = match (a.1, b.1) {
        (Bound::Unbounded, x) | (x, Bound::Unbounded) => x,
        (x, y) => {
            let (xb, yb) = (bound_bytes(&x), bound_bytes(&y));
            match xb.cmp(yb) {
                Ordering::Less => x,
                Ordering::Greater => y,
                Ordering::Equal if matches!(y, Bound::Excluded(_)) => y,
                Ordering::Equal => x,
            }
        }
    };
    (lower, upper)
}

fn bound_bytes(bound: &Bound<Vec<u8>>) -> &[u8] {
    match bound {
        Bound::Included(b) | Bound::Excluded(b) => b,
        Bound::Unbounded => &[],
    }
}

/// True when the range holds nothing.
pub(crate) fn is_empty(range: &ByteRange) -> bool {
    match range {
        (Bound::Included(lo), Bound::Excluded(hi))
        | (Bound::Excluded(lo), Bound::Excluded(hi))
        | (Bound::Excluded(lo), Bound::Included(hi)) => lo >= hi,
        (Bound::Included(lo), Bound::Included(hi)) => lo > hi,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn op(code: u8) -> IndexOperator {
        match code % 5 {
            0 => IndexOperator::Eq,
            1 => IndexOperator::Gt,
            2 => IndexOperator::GtEq,
            3 => IndexOperator::Lt,
            _ => IndexOperator::LtEq,
        }
    }

    fn holds(v: i64, op: &IndexOperator, c: i64) -> bool {
        match op {
            IndexOperator::Eq => v == c,
            IndexOperator::Gt => v > c,
            IndexOperator::GtEq => v >= c,
            IndexOperator::Lt => v < c,
            IndexOperator::LtEq => v <= c,
        }
    }

    fn contains(range: &ByteRange, bytes: &[u8]) -> bool {
        let above = match &range.0 {
            Bound::Included(lo) => bytes >= lo.as_slice(),
            Bound::Excluded(lo) => bytes > lo.as_slice(),
            Bound::Unbounded => true,
        };
        let below = match &range.1 {
            Bound::Included(hi) => bytes <= hi.as_slice(),
            Bound::Excluded(hi) => bytes < hi.as_slice(),
            Bound::Unbounded => true,
        };
        above && below
    }

    proptest! {
        /// An entry `prefix + key(v) + pk` is in the byte range exactly when `v`
        /// satisfies every comparison: the range loses no matching entry and keeps no
        /// other.
        #[test]
        fn byte_ranges_hold_exactly_the_matching_entries(
            comparisons in proptest::collection::vec((any::<u8>(), -20i64..20), 0..4),
            v in -25i64..25,
            pk in any::<i64>(),
        ) {
            let hint = ScanHint {
                comparisons: comparisons
                    .iter()
                    .map(|(o, c)| ("c".to_owned(), op(*o), Value::I64(*c)))
                    .collect(),
                first: None,
                columns: None,
            };
            let prefix = b"\x00\x01idx".to_vec();
            let whole = crate::backend::prefix_successor(&prefix)
                .map_or(Bound::Unbounded, Bound::Excluded);
            let range = byte_range(&prefix, hint.key_range("c"), whole.clone());
            let mut entry = prefix.clone();
            codec::encode_key_into(&mut entry, &Key::I64(v));
            codec::encode_key_into(&mut entry, &Key::I64(pk));
            let expected = comparisons.iter().all(|(o, c)| holds(v, &op(*o), *c));
            prop_assert_eq!(contains(&range, &entry), expected);
            // Intersecting with the whole index changes nothing.
            let narrowed = intersect(range.clone(), (Bound::Included(prefix.clone()), whole));
            prop_assert_eq!(contains(&narrowed, &entry), expected);
            if is_empty(&range) {
                prop_assert!(!expected);
            }
        }
    }
}
