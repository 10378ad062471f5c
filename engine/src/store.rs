//! `SqlStore`: GlueSQL's storage traits implemented once, over any [`StorageBackend`].
//!
//! Every statement runs inside a transaction: GlueSQL calls `begin(true)` around each
//! statement and `begin(false)` for `BEGIN`. A transaction reads a consistent snapshot
//! merged with its own uncommitted writes (the *overlay*) and commits the overlay as one
//! atomic [`WriteBatch`]. Rollback discards the overlay. Uncommitted writes are therefore
//! invisible to other sessions and cannot survive a crash.
//!
//! Writers are serialized by the database's write lock. An autocommit write statement takes
//! the lock before its snapshot (see [`SqlStore::prepare_write`]), so it never conflicts. An
//! explicit transaction takes the lock at its first write; if another session committed
//! after the transaction's snapshot, the write fails with [`Error::Conflict`] (snapshot
//! isolation, first committer wins).
//!
//! [`StorageBackend`]: crate::backend::StorageBackend

use crate::audit::{AuditEvent, checkpoints, ledger, table as audit_table};
use crate::backend::{Direction, KvIter, Snapshot, StorageError, WriteBatch, prefix_successor};
use crate::catalog::{
    self, FUNCTION_PREFIX, ForeignKeyRef, KS_CATALOG, KS_INDEX, KS_ROWS, NEXT_TABLE_ID_KEY,
    TABLE_PREFIX, TableExtras, TableRecord, UniqueConstraint, corrupt,
};
use crate::codec::{self, decode_key, decode_key_prefix, decode_row, encode_key, encode_row};
use crate::commit::{Core, WriterGuard};
use crate::error::{Error, Result};
use gluesql_core::ast::{ColumnDef, DataType, Expr, IndexOperator, OrderByExpr};
use gluesql_core::chrono::{DateTime, NaiveDateTime, Utc};
use gluesql_core::data::{CustomFunction as StructCustomFunction, Key, Schema, SchemaIndex};
use gluesql_core::data::{SchemaIndexOrd, Value};
use gluesql_core::error::{AlterTableError, Error as GlueError, IndexError, ValidateError};
use gluesql_core::executor::{RowContext, evaluate_stateless};
use gluesql_core::plan::{ExprPlan, plan_scalar_expr};
use gluesql_core::store::{
    AlterTable, CustomFunction, CustomFunctionMut, Index, IndexMut, MetaIter, Metadata, Planner,
    RowIter, Store, StoreMut, Transaction,
};
use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::iter::Peekable;
use std::ops::Bound;
use std::sync::Arc;

mod hint;

pub(crate) use hint::ScanHint;

/// The keyspaces the SQL layer writes; the overlay is ordered by `(space, key)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Space {
    Catalog,
    Rows,
    Index,
    Audit,
    AuditIndex,
}

impl Space {
    fn name(self) -> &'static str {
        match self {
            Space::Catalog => KS_CATALOG,
            Space::Rows => KS_ROWS,
            Space::Index => KS_INDEX,
            Space::Audit => ledger::KS_AUDIT,
            Space::AuditIndex => ledger::KS_AUDIT_INDEX,
        }
    }
}

/// Uncommitted writes: `None` marks a delete. A persistent map, so a statement savepoint
/// is an O(1) clone.
type Overlay = im::OrdMap<(Space, Vec<u8>), Option<Vec<u8>>>;

/// Overlay entries of one scanned range, in scan order.
type PendingWrites = std::vec::IntoIter<(Vec<u8>, Option<Vec<u8>>)>;

/// Decoded rows of a table scan: primary key and values.
type Rows<'v> = Box<dyn Iterator<Item = Result<(Key, Vec<Value>)>> + 'v>;

struct Txn {
    snapshot: Box<dyn Snapshot>,
    /// Table records as the snapshot holds them, read once per transaction (the snapshot
    /// never changes; the transaction's own catalog writes are in the overlay).
    seen: SeenTables,
    overlay: Overlay,
    explicit: bool,
    writer: Option<WriterGuard>,
    base_version: u64,
}

/// A consistent read view: a snapshot, plus the transaction's own writes if any.
#[derive(Clone, Copy)]
struct View<'a> {
    snapshot: &'a dyn Snapshot,
    overlay: Option<&'a Overlay>,
    records: &'a RecordCache,
    /// The transaction's snapshot reads of table records, when there is a transaction.
    seen: Option<&'a SeenTables>,
}

/// Decoded table records by catalog key, with the bytes they were decoded from: a
/// record is reused only while its stored bytes are unchanged, so the cache can never
/// serve a stale schema. It saves the JSON decode every statement would otherwise repeat.
/// The table records a transaction has read, by catalog key (`None`: no such table).
type SeenTables = RefCell<HashMap<Vec<u8>, Option<Arc<TableRecord>>>>;

type RecordCache = RefCell<HashMap<Vec<u8>, (Vec<u8>, Arc<TableRecord>)>>;

/// Records kept at most; the cache starts over beyond this.
const RECORD_CACHE_LIMIT: usize = 256;

impl<'a> View<'a> {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some(hit) = self.overlay.and_then(|o| o.get(&(space, key.to_vec()))) {
            return Ok(hit.clone());
        }
        Ok(self.snapshot.get(space.name(), key)?)
    }

    fn scan(
        &self,
        space: Space,
        lower: Bound<Vec<u8>>,
        upper: Bound<Vec<u8>>,
        direction: Direction,
    ) -> Result<MergeIter<'a>> {
        let base = self.snapshot.range(
            space.name(),
            as_slice_bound(&lower),
            as_slice_bound(&upper),
            direction,
        )?;
        let mut pending: Vec<(Vec<u8>, Option<Vec<u8>>)> = match self.overlay {
            None => Vec::new(),
            Some(overlay) => {
                let lo = match &lower {
                    Bound::Included(k) => Bound::Included((space, k.clone())),
                    Bound::Excluded(k) => Bound::Excluded((space, k.clone())),
                    Bound::Unbounded => Bound::Included((space, Vec::new())),
                };
                let hi = match &upper {
                    Bound::Included(k) => Bound::Included((space, k.clone())),
                    Bound::Excluded(k) => Bound::Excluded((space, k.clone())),
                    Bound::Unbounded => Bound::Unbounded,
                };
                overlay
                    .range((lo, hi))
                    .take_while(|((s, _), _)| *s == space)
                    .map(|((_, k), v)| (k.clone(), v.clone()))
                    .collect()
            }
        };
        if direction == Direction::Reverse {
            pending.reverse();
        }
        Ok(MergeIter {
            base: base.peekable(),
            overlay: pending.into_iter().peekable(),
            reverse: direction == Direction::Reverse,
        })
    }

    fn scan_prefix(
        &self,
        space: Space,
        prefix: &[u8],
        direction: Direction,
    ) -> Result<MergeIter<'a>> {
        let upper = match prefix_successor(prefix) {
            Some(end) => Bound::Excluded(end),
            None => Bound::Unbounded,
        };
        self.scan(space, Bound::Included(prefix.to_vec()), upper, direction)
    }

    fn table(&self, name: &str) -> Result<Option<Arc<TableRecord>>> {
        let key = catalog::table_key(name);
        if let Some(hit) = self
            .overlay
            .and_then(|o| o.get(&(Space::Catalog, key.clone())))
        {
            // The transaction's own write.
            return match hit {
                Some(bytes) => self.decode_table(key, bytes.clone()).map(Some),
                None => Ok(None),
            };
        }
        if let Some(seen) = self.seen
            && let Some(record) = seen.borrow().get(&key)
        {
            return Ok(record.clone());
        }
        let record = match self.snapshot.get(Space::Catalog.name(), &key)? {
            Some(bytes) => Some(self.decode_table(key.clone(), bytes)?),
            None => None,
        };
        if let Some(seen) = self.seen {
            seen.borrow_mut().insert(key, record.clone());
        }
        Ok(record)
    }

    /// Decodes a table record, reusing the decoded form of identical bytes.
    fn decode_table(&self, key: Vec<u8>, bytes: Vec<u8>) -> Result<Arc<TableRecord>> {
        if let Some((cached, record)) = self.records.borrow().get(&key)
            && *cached == bytes
        {
            return Ok(record.clone());
        }
        let record = Arc::new(TableRecord::decode(&key, &bytes)?);
        let mut records = self.records.borrow_mut();
        if records.len() >= RECORD_CACHE_LIMIT {
            records.clear();
        }
        records.insert(key, (bytes, record.clone()));
        Ok(record)
    }

    /// A table's record, or a stand-in record for `__audit_log`.
    fn table_or_audit(&self, name: &str) -> Result<Option<Arc<TableRecord>>> {
        if audit_table::is_audit_table(name) {
            return Ok(Some(Arc::new(TableRecord {
                id: ledger::AUDIT_TABLE_ID,
                created_micros: 0,
                schema: audit_table::schema(),
                extras: TableExtras::default(),
            })));
        }
        self.table(name)
    }

    fn tables(&self) -> Result<Vec<TableRecord>> {
        self.scan_prefix(Space::Catalog, TABLE_PREFIX, Direction::Forward)?
            .map(|entry| {
                let (key, value) = entry?;
                TableRecord::decode(&key, &value)
            })
            .collect()
    }

    fn row(&self, table_id: u64, key: &Key) -> Result<Option<Vec<Value>>> {
        let row_key = catalog::row_key(table_id, key);
        self.get(Space::Rows, &row_key)?
            .map(|bytes| decode_row(&bytes).map_err(|e| corrupt(KS_ROWS, "row", &row_key, e)))
            .transpose()
    }

    /// A row of a table or of `__audit_log` (`AUDIT_TABLE_ID`).
    fn row_by_key(&self, table_id: u64, key: &Key) -> Result<Option<Vec<Value>>> {
        if table_id != ledger::AUDIT_TABLE_ID {
            return self.row(table_id, key);
        }
        let Key::I64(seq) = key else {
            return Ok(None);
        };
        let Ok(seq) = u64::try_from(*seq) else {
            return Ok(None);
        };
        let record_key = ledger::record_key(seq);
        self.get(Space::Audit, &record_key)?
            .map(|value| ledger::decode_record(&record_key, &value).map(|r| audit_table::row(&r)))
            .transpose()
    }

    /// The `__audit_checkpoints` row of the checkpoint of `key` events.
    fn checkpoint_row(&self, key: &Key) -> Result<Option<Vec<Value>>> {
        let Key::I64(size) = key else {
            return Ok(None);
        };
        let Ok(size) = u64::try_from(*size) else {
            return Ok(None);
        };
        Ok(checkpoints::get(self.snapshot, size)?.map(|c| c.row()))
    }

    /// Every `__audit_checkpoints` row, by size (a few per thousand events: read whole).
    fn checkpoint_rows(&self) -> Result<Vec<(Key, Vec<Value>)>> {
        checkpoints::all(self.snapshot)?
            .into_iter()
            .map(|c| Ok((Key::I64(ledger::seq_as_i64(c.size)?), c.row())))
            .collect()
    }

    /// Every `__audit_log` row, in seq order.
    fn audit_rows(self) -> Result<impl Iterator<Item = Result<(Key, Vec<Value>)>> + 'a> {
        self.audit_rows_in(
            Bound::Unbounded,
            Bound::Unbounded,
            Direction::Forward,
            hint::AuditRows::default(),
        )
    }

    /// The `__audit_log` rows whose record keys are within the bounds.
    fn audit_rows_in(
        self,
        lower: Bound<Vec<u8>>,
        upper: Bound<Vec<u8>>,
        direction: Direction,
        build: hint::AuditRows,
    ) -> Result<impl Iterator<Item = Result<(Key, Vec<Value>)>> + 'a> {
        Ok(self
            .scan(Space::Audit, lower, upper, direction)?
            .filter_map(move |entry| {
                let built = (|| {
                    let (key, value) = entry?;
                    let record = ledger::decode_record(&key, &value)?;
                    let seq = ledger::seq_as_i64(record.event.seq)?;
                    Ok(build.build(&record).map(|row| (Key::I64(seq), row)))
                })();
                built.transpose()
            }))
    }

    /// The record of `__audit_log` row `key`, built as `build` says (`Ok(None)` when it
    /// is missing, `Ok(Some(None))` when it fails the hint's comparisons).
    fn audit_row_by_key(
        &self,
        key: &Key,
        build: &hint::AuditRows,
    ) -> Result<Option<Option<Vec<Value>>>> {
        let Key::I64(seq) = key else {
            return Ok(None);
        };
        let Ok(seq) = u64::try_from(*seq) else {
            return Ok(None);
        };
        let record_key = ledger::record_key(seq);
        self.get(Space::Audit, &record_key)?
            .map(|value| ledger::decode_record(&record_key, &value).map(|r| build.build(&r)))
            .transpose()
    }

    fn rows(self, table_id: u64) -> Result<impl Iterator<Item = Result<(Key, Vec<Value>)>> + 'a> {
        let prefix = catalog::row_prefix(table_id);
        Ok(self
            .scan_prefix(Space::Rows, &prefix, Direction::Forward)?
            .map(|entry| {
                let (key, value) = entry?;
                decode_row_entry(&key, &value)
            }))
    }
}

fn decode_row_entry(key: &[u8], value: &[u8]) -> Result<(Key, Vec<Value>)> {
    let pk = decode_key(key.get(8..).unwrap_or_default())
        .map_err(|e| corrupt(KS_ROWS, "row key", key, e))?;
    let values = decode_row(value).map_err(|e| corrupt(KS_ROWS, "row", key, e))?;
    Ok((pk, values))
}

fn as_slice_bound(bound: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match bound {
        Bound::Included(k) => Bound::Included(k.as_slice()),
        Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// Merges a snapshot scan with the overlay's entries in the same range; the overlay wins on
/// equal keys and its deletes hide snapshot entries.
struct MergeIter<'a> {
    base: Peekable<KvIter<'a>>,
    overlay: Peekable<PendingWrites>,
    reverse: bool,
}

enum Next {
    Base,
    Overlay,
    Shadowed,
}

impl Iterator for MergeIter<'_> {
    type Item = Result<(Vec<u8>, Vec<u8>), StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let next = match (self.base.peek(), self.overlay.peek()) {
                (None, None) => return None,
                (Some(Err(_)), _) | (Some(Ok(_)), None) => Next::Base,
                (None, Some(_)) => Next::Overlay,
                (Some(Ok((base_key, _))), Some((over_key, _))) => {
                    match (base_key.cmp(over_key), self.reverse) {
                        (Ordering::Equal, _) => Next::Shadowed,
                        (Ordering::Less, false) | (Ordering::Greater, true) => Next::Base,
                        _ => Next::Overlay,
                    }
                }
            };
            match next {
                Next::Base => return self.base.next(),
                Next::Shadowed => {
                    self.base.next();
                }
                Next::Overlay => {}
            }
            if let Some((key, Some(value))) = self.overlay.next() {
                return Some(Ok((key, value)));
            }
        }
    }
}

/// How one index maps a row to its entry.
struct IndexSpec {
    prefix: Vec<u8>,
    expr: ExprPlan,
}

fn index_specs(record: &TableRecord) -> Vec<IndexSpec> {
    record
        .schema
        .indexes
        .iter()
        .map(|index| IndexSpec {
            prefix: catalog::index_prefix(record.id, &index.name),
            expr: plan_scalar_expr(index.expr.clone()),
        })
        .collect()
}

fn column_names(schema: &Schema) -> Vec<String> {
    schema
        .column_defs
        .iter()
        .flatten()
        .map(|c| c.name.clone())
        .collect()
}

fn index_entry_key(
    table: &str,
    spec: &IndexSpec,
    columns: &[String],
    values: &[Value],
    pk: &[u8],
) -> Result<Vec<u8>> {
    let context = RowContext::RefVecData { columns, values };
    let value: Value = evaluate_stateless(Some(context), &spec.expr)
        .and_then(Value::try_from)
        .map_err(Error::from_glue)?;
    let key = codec::value_to_key(&value).map_err(|source| Error::Unkeyable {
        table: table.to_owned(),
        source,
    })?;
    let mut entry = spec.prefix.clone();
    codec::encode_key_into(&mut entry, &key);
    entry.extend_from_slice(pk);
    Ok(entry)
}

/// The value of `column` in a row.
fn value_of<'v>(columns: &[String], values: &'v [Value], column: &str) -> Option<&'v Value> {
    columns
        .iter()
        .position(|c| c == column)
        .and_then(|i| values.get(i))
}

/// The entry of `values` in a unique constraint, or `None` when one of its columns is
/// NULL (NULLs never conflict).
fn unique_entry_key(
    record: &TableRecord,
    unique: &UniqueConstraint,
    columns: &[String],
    values: &[Value],
) -> Result<Option<Vec<u8>>> {
    let mut entry = catalog::unique_prefix(record.id, &unique.name);
    for column in &unique.columns {
        let value = columns
            .iter()
            .position(|c| c == column)
            .and_then(|i| values.get(i))
            .ok_or_else(|| {
                Error::Internal(format!(
                    "unique constraint {} names unknown column {column}",
                    unique.name
                ))
            })?;
        if matches!(value, Value::Null) {
            return Ok(None);
        }
        let key = codec::value_to_key(value).map_err(|source| Error::Unkeyable {
            table: record.schema.table_name.clone(),
            source,
        })?;
        codec::encode_key_into(&mut entry, &key);
    }
    Ok(Some(entry))
}

fn unique_violation(unique: &UniqueConstraint, columns: &[String], values: &[Value]) -> Error {
    let shown: Vec<String> = unique
        .columns
        .iter()
        .filter_map(|c| columns.iter().position(|n| n == c))
        .filter_map(|i| values.get(i))
        .map(String::from)
        .collect();
    let columns = match (unique.primary, unique.columns.as_slice()) {
        (false, [single]) => single.clone(),
        (false, several) => format!("({})", several.join(", ")),
        (true, several) => format!("PRIMARY KEY ({})", several.join(", ")),
    };
    Error::Constraint(Box::new(
        ValidateError::DuplicateEntryOnUniqueField(Value::Str(shown.join(", ")), columns).into(),
    ))
}

fn now_micros() -> i64 {
    Utc::now().timestamp_micros()
}

fn micros_to_naive(micros: i64) -> NaiveDateTime {
    DateTime::from_timestamp_micros(micros)
        .unwrap_or_default()
        .naive_utc()
}

/// GlueSQL storage over a HeliosDB database. Obtained from
/// [`Database::sql_store`](crate::Database::sql_store); sessions use one internally.
pub struct SqlStore {
    shared: Arc<Core>,
    /// Keeps the database (its threads) open as long as the store is: a session may
    /// outlive every `Database` handle.
    _owner: Arc<dyn Send + Sync>,
    txn: Option<Txn>,
    /// The write lock, taken before the next autocommit statement's snapshot.
    pending_writer: Option<WriterGuard>,
    functions: BTreeMap<String, StructCustomFunction>,
    /// Database version the function cache was loaded at; `None` forces a reload.
    functions_version: Option<u64>,
    /// Our typed error behind the last `StorageMsg` handed to GlueSQL, so it round-trips.
    error: RefCell<Option<Error>>,
    /// When true (sessions), the session decides when a statement commits: autocommit
    /// statements run in an implicit transaction that GlueSQL does not commit, so their
    /// audit events can join the same batch.
    managed: bool,
    /// Audit events waiting for the end of the transaction.
    events: Vec<AuditEvent>,
    /// Rows the running statement writes (or deletes) in one table, kept for RETURNING.
    capture: Option<Capture>,
    /// While set, scans of its table see only these rows: RETURNING's projection.
    returning: Option<Capture>,
    /// True while a plain INSERT runs: two rows with the same primary key in one
    /// statement are a violation rather than an overwrite.
    inserting: bool,
    /// Decoded table records (see [`RecordCache`]).
    records: RecordCache,
    /// Narrows the next scan of one table to the rows that can match (see
    /// [`SqlStore::restrict_next_scan`]); taken by that scan.
    restriction: RefCell<Option<(String, Restriction)>>,
    /// What the running SELECT's WHERE and LIMIT allow the next scan of one table to
    /// skip (see [`SqlStore::hint_next_scan`]); taken by that scan.
    hint: RefCell<Option<(String, ScanHint)>>,
    /// Rows handed to GlueSQL by table scans, for tests that prove a plan.
    scanned: std::cell::Cell<u64>,
    /// Rows handed to GlueSQL by index scans.
    indexed: std::cell::Cell<u64>,
}

/// Where the only rows that can satisfy a statement's WHERE are.
#[derive(Clone, Debug)]
pub(crate) enum Restriction {
    /// Primary-key values.
    Keys(Vec<Key>),
    /// `column = value` on a column with a single-column index.
    Index { index: String, value: Value },
    /// `column = value` on a column with a single-column unique constraint.
    Unique { constraint: String, value: Value },
}

/// Rows of one table, with their keys, in the order they were written.
#[derive(Debug, Default)]
pub(crate) struct Capture {
    pub table: String,
    pub rows: Vec<(Key, Vec<Value>)>,
    /// Capture rows as they were before a delete (DELETE ... RETURNING) rather than rows
    /// written.
    pub deletes: bool,
}

impl SqlStore {
    pub(crate) fn new(shared: Arc<Core>, owner: Arc<dyn Send + Sync>) -> Self {
        Self {
            shared,
            _owner: owner,
            txn: None,
            pending_writer: None,
            functions: BTreeMap::new(),
            functions_version: None,
            error: RefCell::new(None),
            managed: false,
            events: Vec::new(),
            capture: None,
            returning: None,
            inserting: false,
            records: RefCell::new(HashMap::new()),
            restriction: RefCell::new(None),
            hint: RefCell::new(None),
            scanned: std::cell::Cell::new(0),
            indexed: std::cell::Cell::new(0),
        }
    }

    /// Makes the next scan of `table` return only the rows `restriction` points at, instead
    /// of every row. GlueSQL still applies the statement's whole WHERE to them, so this is
    /// correct whenever every matching row is among them. The first scan of the table
    /// takes the restriction; later scans (uniqueness checks, ...) see the whole table.
    pub(crate) fn restrict_next_scan(&self, table: &str, restriction: Restriction) {
        *self.restriction.borrow_mut() = Some((table.to_owned(), restriction));
    }

    /// Drops a restriction no scan took.
    pub(crate) fn clear_restriction(&self) {
        self.restriction.borrow_mut().take();
    }

    /// Lets the next scan of `table` skip rows `hint` shows cannot be in the result (see
    /// the `hint` module). The first scan of the table takes it.
    pub(crate) fn hint_next_scan(&self, table: &str, hint: ScanHint) {
        *self.hint.borrow_mut() = Some((table.to_owned(), hint));
    }

    /// Drops a hint no scan took.
    pub(crate) fn clear_hint(&self) {
        self.hint.borrow_mut().take();
    }

    /// Takes the hint if it is for `table`.
    fn take_hint(&self, table: &str) -> Option<ScanHint> {
        let mut slot = self.hint.borrow_mut();
        match slot.as_ref() {
            Some((hinted, _)) if hinted == table => slot.take().map(|(_, hint)| hint),
            _ => None,
        }
    }

    /// A table's rows as a hint allows: within the primary-key range its comparisons
    /// give, and with a limit, in key order up to the rows it needs.
    fn hinted_rows<'v>(view: View<'v>, record: &TableRecord, hint: &ScanHint) -> Result<Rows<'v>> {
        let columns = column_refs(&record.schema);
        let primary = primary_key_column(&record.schema);
        let prefix = catalog::row_prefix(record.id);
        let whole = (
            Bound::Included(prefix.to_vec()),
            prefix_successor(&prefix).map_or(Bound::Unbounded, Bound::Excluded),
        );
        let range = match primary {
            Some(pk) => hint::byte_range(&prefix, hint.key_range(pk), whole.1.clone()),
            None => whole,
        };
        if hint::is_empty(&range) {
            return Ok(Box::new(std::iter::empty()));
        }
        let first = hint.first.filter(|_| primary.is_some());
        let direction = match first {
            Some((true, _)) => Direction::Reverse,
            _ => Direction::Forward,
        };
        let rows = view
            .scan(Space::Rows, range.0, range.1, direction)?
            .map(|entry| {
                let (key, value) = entry?;
                decode_row_entry(&key, &value)
            });
        Ok(match hint.checks(&columns) {
            Some(checks) => Box::new(hint::satisfying(rows, checks, first.map(|f| f.1))),
            None => Box::new(rows),
        })
    }

    /// `__audit_log` rows as a hint allows (its primary key is the seq).
    fn hinted_audit_rows<'v>(view: View<'v>, hint: &ScanHint) -> Result<Rows<'v>> {
        let Some((lower, upper)) = seq_range(hint.key_range("id")) else {
            return Ok(Box::new(std::iter::empty()));
        };
        let direction = match hint.first {
            Some((true, _)) => Direction::Reverse,
            _ => Direction::Forward,
        };
        let rows = view.audit_rows_in(lower, upper, direction, hint::AuditRows::new(Some(hint)))?;
        let columns: Vec<&str> = audit_table::COLUMNS
            .iter()
            .map(|(name, ..)| *name)
            .collect();
        Ok(match hint.checks(&columns) {
            Some(checks) => Box::new(hint::satisfying(rows, checks, hint.first.map(|f| f.1))),
            None => Box::new(rows),
        })
    }

    /// Rows table scans have handed to GlueSQL so far.
    pub(crate) fn rows_scanned(&self) -> u64 {
        self.scanned.get()
    }

    /// Rows index scans have handed to GlueSQL so far.
    pub(crate) fn rows_read_by_index(&self) -> u64 {
        self.indexed.get()
    }

    /// The rows a restriction points at, in key order.
    fn restricted_rows(
        view: View<'_>,
        record: &TableRecord,
        restriction: &Restriction,
    ) -> Result<Vec<(Key, Vec<Value>)>> {
        let mut rows = Vec::new();
        match restriction {
            Restriction::Keys(keys) => {
                for key in keys {
                    if let Some(values) = view.row(record.id, key)? {
                        rows.push((key.clone(), values));
                    }
                }
            }
            Restriction::Index { index, value } => {
                for row in Self::index_scan(
                    view,
                    record,
                    index,
                    None,
                    Some((&IndexOperator::Eq, value.clone())),
                    None,
                )? {
                    rows.push(row?);
                }
            }
            Restriction::Unique { constraint, value } => {
                let Some(unique) = record.extras.uniques.iter().find(|u| u.name == *constraint)
                else {
                    return Err(Error::Internal(format!(
                        "no unique constraint {constraint}"
                    )));
                };
                let columns = column_names(&record.schema);
                let mut probe = vec![Value::Null; columns.len()];
                if let (Some(column), [only]) = (unique.columns.first(), unique.columns.as_slice())
                    && let Some(i) = columns.iter().position(|c| c == only)
                {
                    let data_type = record
                        .schema
                        .column_defs
                        .iter()
                        .flatten()
                        .find(|c| c.name == *column)
                        .map(|c| c.data_type.clone());
                    probe[i] = match data_type {
                        Some(data_type) => value.cast(&data_type).map_err(Error::from_glue)?,
                        None => value.clone(),
                    };
                }
                if let Some(entry) = unique_entry_key(record, unique, &columns, &probe)?
                    && let Some(pk) = view.get(Space::Index, &entry)?
                {
                    let key = decode_key(&pk)
                        .map_err(|e| corrupt(KS_INDEX, "unique entry", &entry, e))?;
                    if let Some(values) = view.row(record.id, &key)? {
                        rows.push((key, values));
                    }
                }
            }
        }
        Ok(rows)
    }

    /// Starts collecting the rows the next data change writes in `table` (or, with
    /// `deletes`, the rows it deletes).
    pub(crate) fn start_capture(&mut self, table: &str, deletes: bool) {
        self.capture = Some(Capture {
            table: table.to_owned(),
            rows: Vec::new(),
            deletes,
        });
    }

    /// Stops collecting and returns what was collected.
    pub(crate) fn take_capture(&mut self) -> Option<Capture> {
        self.capture.take()
    }

    /// Makes scans of the capture's table return only its rows, until
    /// [`clear_returning`](Self::clear_returning).
    pub(crate) fn set_returning(&mut self, capture: Capture) {
        self.returning = Some(capture);
    }

    pub(crate) fn clear_returning(&mut self) {
        self.returning = None;
    }

    /// Marks the start or end of a plain INSERT (see the `inserting` field).
    pub(crate) fn set_inserting(&mut self, inserting: bool) {
        self.inserting = inserting;
    }

    /// A table's schema and extras, as the running transaction sees them.
    pub(crate) fn table_record(&self, name: &str) -> Result<Option<Arc<TableRecord>>> {
        self.table(name)
    }

    /// Replaces a table's extras. New unique constraints are checked against the rows
    /// already stored and their entries built; dropped ones have their entries removed.
    pub(crate) fn set_extras(&mut self, table_name: &str, extras: TableExtras) -> Result<()> {
        refuse_audit_write(&[table_name], "CREATE/ALTER TABLE")?;
        let mut record = self.require_table(table_name)?;
        let old = std::mem::replace(&mut record.extras, extras);
        for unique in &old.uniques {
            if !record.extras.uniques.contains(unique) {
                self.delete_prefix(
                    Space::Index,
                    &catalog::unique_prefix(record.id, &unique.name),
                )?;
            }
        }
        let columns = column_names(&record.schema);
        let added: Vec<UniqueConstraint> = record
            .extras
            .uniques
            .iter()
            .filter(|u| !old.uniques.contains(u))
            .cloned()
            .collect();
        for unique in &added {
            let rows = self.with_view(|view| view.rows(record.id)?.collect::<Result<Vec<_>>>())?;
            for (key, values) in rows {
                let Some(entry) = unique_entry_key(&record, unique, &columns, &values)? else {
                    continue;
                };
                if self
                    .with_view(|view| view.get(Space::Index, &entry))?
                    .is_some()
                {
                    return Err(unique_violation(unique, &columns, &values));
                }
                self.put(Space::Index, entry, encode_key(&key))?;
            }
        }
        self.put_table(table_name, &record)
    }

    /// The last id the table's sequence handed out (0 if none).
    pub(crate) fn sequence(&self, table_id: u64) -> Result<i64> {
        let key = catalog::sequence_key(table_id);
        match self.with_view(|view| view.get(Space::Catalog, &key))? {
            Some(bytes) => {
                let value = catalog::read_u64ish(&bytes, KS_CATALOG, &key, "sequence")?;
                Ok(i64::from_be_bytes(value.to_be_bytes()))
            }
            None => Ok(0),
        }
    }

    /// Records that ids up to `last` are taken, so the sequence never hands them out.
    pub(crate) fn set_sequence(&mut self, table_id: u64, last: i64) -> Result<()> {
        self.put(
            Space::Catalog,
            catalog::sequence_key(table_id),
            last.to_be_bytes().to_vec(),
        )
    }

    /// Puts the session in charge of commits (see the `managed` field).
    pub(crate) fn set_managed(&mut self) {
        self.managed = true;
    }

    pub(crate) fn shared(&self) -> &Core {
        &self.shared
    }

    /// Starts an implicit transaction for one statement, if none is open.
    pub(crate) fn begin_implicit(&mut self) -> Result<()> {
        if self.txn.is_none() {
            self.start(false)?;
        }
        Ok(())
    }

    /// Starts `BEGIN ... COMMIT`.
    pub(crate) fn begin_explicit(&mut self) -> Result<()> {
        match &self.txn {
            Some(txn) if txn.explicit => Err(Error::Transaction(
                "a transaction is already in progress; COMMIT or ROLLBACK it first".to_owned(),
            )),
            _ => {
                self.txn = None;
                self.pending_writer = None;
                self.start(true)
            }
        }
    }

    /// Queues an audit event; it is sealed with the transaction's commit or rollback.
    pub(crate) fn push_event(&mut self, event: AuditEvent) {
        self.events.push(event);
    }

    /// Ends the current transaction. `commit` applies its writes; either way the queued
    /// audit events are sealed, in the same batch as the writes. On failure nothing was
    /// written and the events are handed back so the caller can record the failure.
    pub(crate) fn end(&mut self, commit: bool) -> Result<(), (Error, Vec<AuditEvent>)> {
        let events = std::mem::take(&mut self.events);
        self.finish_with(commit, events)
    }

    /// Takes the write lock now, so the next autocommit statement snapshots after every
    /// other writer and cannot conflict. Released when that statement commits or fails.
    pub(crate) fn prepare_write(&mut self) -> Result<()> {
        if self.txn.is_none() && self.pending_writer.is_none() {
            self.pending_writer = Some(self.shared.lock_writer()?);
        }
        Ok(())
    }

    /// Drops a write lock taken by [`prepare_write`](Self::prepare_write) but not used.
    pub(crate) fn release_pending(&mut self) {
        self.pending_writer = None;
    }

    /// True inside `BEGIN ... COMMIT/ROLLBACK`.
    pub fn in_transaction(&self) -> bool {
        self.txn.as_ref().is_some_and(|t| t.explicit)
    }

    /// A copy of the transaction's writes, to restore if the next statement fails.
    pub(crate) fn savepoint(&self) -> Option<Overlay> {
        self.txn.as_ref().map(|t| t.overlay.clone())
    }

    /// Undoes a failed statement's writes inside an explicit transaction.
    pub(crate) fn restore(&mut self, savepoint: Overlay) {
        if let Some(txn) = self.txn.as_mut() {
            txn.overlay = savepoint;
            self.functions_version = None;
        }
    }

    /// Takes the typed error that explains the last `StorageMsg` returned to GlueSQL.
    pub(crate) fn take_error(&self) -> Option<Error> {
        self.error.borrow_mut().take()
    }

    /// Converts a GlueSQL error, recovering our typed error where we raised it.
    pub(crate) fn convert_error(&self, error: GlueError) -> Error {
        match (&error, self.take_error()) {
            (GlueError::StorageMsg(_), Some(ours)) => ours,
            _ => Error::from_glue(error),
        }
    }

    fn fail(&self, error: Error) -> GlueError {
        // GlueSQL's own errors pass through as they are; ours are carried beside a message.
        let error = match error {
            Error::Sql(glue) | Error::Constraint(glue) => return *glue,
            other => other,
        };
        let message = error.to_string();
        *self.error.borrow_mut() = Some(error);
        GlueError::StorageMsg(message)
    }

    /// Runs `f` on the current read view: the transaction's, or a fresh snapshot.
    fn with_view<R>(&self, f: impl FnOnce(View<'_>) -> Result<R>) -> Result<R> {
        match &self.txn {
            Some(txn) => f(View {
                snapshot: &*txn.snapshot,
                overlay: Some(&txn.overlay),
                records: &self.records,
                seen: Some(&txn.seen),
            }),
            None => {
                let snapshot = self.shared.backend().snapshot()?;
                f(View {
                    snapshot: &*snapshot,
                    overlay: None,
                    records: &self.records,
                    seen: None,
                })
            }
        }
    }

    fn read<R>(&self, f: impl FnOnce(View<'_>) -> Result<R>) -> gluesql_core::error::Result<R> {
        self.with_view(f).map_err(|e| self.fail(e))
    }

    fn start(&mut self, explicit: bool) -> Result<()> {
        let writer = self.pending_writer.take();
        let base_version = self.shared.version();
        let snapshot = self.shared.backend().snapshot()?;
        self.txn = Some(Txn {
            snapshot,
            seen: RefCell::new(HashMap::new()),
            overlay: Overlay::new(),
            explicit,
            writer,
            base_version,
        });
        if self.functions_version != Some(base_version) {
            self.reload_functions()?;
            self.functions_version = Some(base_version);
        }
        Ok(())
    }

    fn reload_functions(&mut self) -> Result<()> {
        let functions = self.with_view(|view| {
            view.scan_prefix(Space::Catalog, FUNCTION_PREFIX, Direction::Forward)?
                .map(|entry| {
                    let (key, value) = entry?;
                    let function = catalog::decode_function(&key, &value)?;
                    Ok((function.func_name.to_uppercase(), function))
                })
                .collect::<Result<BTreeMap<_, _>>>()
        })?;
        self.functions = functions;
        Ok(())
    }

    fn finish(&mut self, commit: bool) -> Result<()> {
        let events = std::mem::take(&mut self.events);
        self.finish_with(commit, events).map_err(|(error, _)| error)
    }

    fn finish_with(
        &mut self,
        commit: bool,
        mut events: Vec<AuditEvent>,
    ) -> Result<(), (Error, Vec<AuditEvent>)> {
        self.pending_writer = None;
        let txn = self.txn.take();
        let mut batch = WriteBatch::new();
        let mut writer = None;
        if let Some(txn) = txn {
            if commit && txn.writer.is_some() && !txn.overlay.is_empty() {
                for ((space, key), value) in txn.overlay.iter() {
                    match value {
                        Some(value) => batch.put(space.name(), key.clone(), value.clone()),
                        None => batch.delete(space.name(), key.clone()),
                    }
                }
                writer = txn.writer;
            } else if !commit {
                self.functions_version = None;
            }
        }
        if batch.is_empty() && events.is_empty() {
            return Ok(());
        }
        let result = self.shared.commit(writer.as_ref(), batch, &mut events);
        result.map_err(|error| {
            self.functions_version = None;
            (error, events)
        })
    }

    /// The transaction, holding the write lock.
    fn writable(&mut self) -> Result<&mut Txn> {
        let shared = &self.shared;
        let txn = self
            .txn
            .as_mut()
            .ok_or_else(|| Error::Internal("write outside a transaction".to_owned()))?;
        if txn.writer.is_none() {
            let guard = shared.lock_writer()?;
            if shared.version() != txn.base_version {
                return Err(Error::Conflict);
            }
            txn.writer = Some(guard);
        }
        Ok(txn)
    }

    fn put(&mut self, space: Space, key: Vec<u8>, value: Vec<u8>) -> Result<()> {
        self.writable()?.overlay.insert((space, key), Some(value));
        Ok(())
    }

    fn delete(&mut self, space: Space, key: Vec<u8>) -> Result<()> {
        self.writable()?.overlay.insert((space, key), None);
        Ok(())
    }

    fn table(&self, name: &str) -> Result<Option<Arc<TableRecord>>> {
        self.with_view(|view| view.table(name))
    }

    /// An owned copy of the table an index statement names, to change.
    fn index_table(&self, name: &str) -> Result<TableRecord> {
        self.table(name)?
            .map(Arc::unwrap_or_clone)
            .ok_or_else(|| Error::Sql(Box::new(IndexError::TableNotFound(name.to_owned()).into())))
    }

    fn require_table(&self, name: &str) -> Result<TableRecord> {
        self.table(name)?.map(Arc::unwrap_or_clone).ok_or_else(|| {
            Error::Sql(Box::new(
                AlterTableError::TableNotFound(name.to_owned()).into(),
            ))
        })
    }

    fn put_table(&mut self, name: &str, record: &TableRecord) -> Result<()> {
        self.put(Space::Catalog, catalog::table_key(name), record.encode()?)
    }

    fn next_counter(&mut self, key: &[u8], first: u64) -> Result<u64> {
        let current = self.with_view(|view| view.get(Space::Catalog, key))?;
        let next = match current {
            Some(bytes) => catalog::read_u64ish(&bytes, KS_CATALOG, key, "counter")?,
            None => first,
        };
        let after = next
            .checked_add(1)
            .ok_or_else(|| Error::Internal("counter overflow".to_owned()))?;
        self.put(Space::Catalog, key.to_vec(), after.to_be_bytes().to_vec())?;
        Ok(next)
    }

    /// Writes one row and keeps every index in step: entries of the old row (if any) are
    /// removed, entries of the new row added, all in the same transaction. Unique
    /// constraints are checked against the other rows before anything is written.
    fn write_row(
        &mut self,
        record: &TableRecord,
        specs: &[IndexSpec],
        columns: &[String],
        key: &Key,
        values: &[Value],
    ) -> Result<()> {
        let pk = encode_key(key);
        let row_key = [&record.id.to_be_bytes()[..], &pk].concat();
        for foreign_key in &record.extras.foreign_keys {
            self.check_parent_exists(record, foreign_key, columns, values)?;
        }
        if !record.extras.referenced_by.is_empty()
            && let Some(old) = self.with_view(|view| view.row(record.id, key))?
        {
            self.check_unreferenced(record, columns, &old, Some(values))?;
        }
        if !specs.is_empty() || !record.extras.uniques.is_empty() {
            self.remove_index_entries(record, specs, columns, key, &pk)?;
            for spec in specs {
                let entry = index_entry_key(&record.schema.table_name, spec, columns, values, &pk)?;
                self.put(Space::Index, entry, pk.clone())?;
            }
            for unique in &record.extras.uniques {
                let Some(entry) = unique_entry_key(record, unique, columns, values)? else {
                    continue;
                };
                let holder = self.with_view(|view| view.get(Space::Index, &entry))?;
                if holder.is_some_and(|holder| holder != pk) {
                    return Err(unique_violation(unique, columns, values));
                }
                self.put(Space::Index, entry, pk.clone())?;
            }
        }
        if let Some(capture) = self.capture.as_mut()
            && !capture.deletes
            && capture.table == record.schema.table_name
        {
            capture.rows.push((key.clone(), values.to_vec()));
        }
        self.put(Space::Rows, row_key, encode_row(values))
    }

    /// A foreign key's value must exist in the parent table (NULL references nothing).
    fn check_parent_exists(
        &self,
        record: &TableRecord,
        foreign_key: &ForeignKeyRef,
        columns: &[String],
        values: &[Value],
    ) -> Result<()> {
        let Some(value) = value_of(columns, values, &foreign_key.column) else {
            return Ok(());
        };
        if matches!(value, Value::Null) {
            return Ok(());
        }
        let missing = || {
            Error::Constraint(Box::new(
                gluesql_core::executor::InsertError::CannotFindReferencedValue {
                    table_name: foreign_key.parent.clone(),
                    column_name: foreign_key.parent_column.clone(),
                    referenced_value: String::from(value),
                }
                .into(),
            ))
        };
        let parent = if foreign_key.parent == record.schema.table_name {
            Arc::new(record.clone())
        } else {
            match self.table(&foreign_key.parent)? {
                Some(parent) => parent,
                None => return Err(missing()),
            }
        };
        let unique = parent
            .extras
            .uniques
            .iter()
            .find(|u| u.columns == [foreign_key.parent_column.clone()]);
        let found = match unique {
            Some(unique) => {
                let parent_columns = column_names(&parent.schema);
                let mut probe = vec![Value::Null; parent_columns.len()];
                if let Some(i) = parent_columns
                    .iter()
                    .position(|c| *c == foreign_key.parent_column)
                {
                    probe[i] = value.clone();
                }
                match unique_entry_key(&parent, unique, &parent_columns, &probe)? {
                    Some(entry) => self
                        .with_view(|view| view.get(Space::Index, &entry))?
                        .is_some(),
                    None => false,
                }
            }
            None => {
                // The parent's primary key.
                let key = codec::value_to_key(value).map_err(|source| Error::Unkeyable {
                    table: parent.schema.table_name.clone(),
                    source,
                })?;
                self.with_view(|view| view.row(parent.id, &key))?.is_some()
            }
        };
        if found { Ok(()) } else { Err(missing()) }
    }

    /// A parent row's referenced values may not disappear (delete, or update to another
    /// value: `new`) while a child row still refers to them.
    fn check_unreferenced(
        &self,
        record: &TableRecord,
        columns: &[String],
        old: &[Value],
        new: Option<&[Value]>,
    ) -> Result<()> {
        for child_name in &record.extras.referenced_by {
            let child = if *child_name == record.schema.table_name {
                Some(Arc::new(record.clone()))
            } else {
                self.table(child_name)?
            };
            let Some(child) = child else { continue };
            for foreign_key in &child.extras.foreign_keys {
                if foreign_key.parent != record.schema.table_name {
                    continue;
                }
                let Some(value) = value_of(columns, old, &foreign_key.parent_column) else {
                    continue;
                };
                if matches!(value, Value::Null)
                    || new.and_then(|n| value_of(columns, n, &foreign_key.parent_column))
                        == Some(value)
                {
                    continue;
                }
                let child_columns = column_names(&child.schema);
                let Some(at) = child_columns.iter().position(|c| *c == foreign_key.column) else {
                    continue;
                };
                let referenced = self.with_view(|view| {
                    for row in view.rows(child.id)? {
                        let (_, values) = row?;
                        if values.get(at) == Some(value) {
                            return Ok(true);
                        }
                    }
                    Ok(false)
                })?;
                if referenced {
                    return Err(Error::Constraint(Box::new(
                        gluesql_core::executor::DeleteError::ReferencingColumnExists(format!(
                            "{child_name}.{} still refers to {}.{} = {}",
                            foreign_key.column,
                            record.schema.table_name,
                            foreign_key.parent_column,
                            String::from(value)
                        ))
                        .into(),
                    )));
                }
            }
        }
        Ok(())
    }

    fn remove_index_entries(
        &mut self,
        record: &TableRecord,
        specs: &[IndexSpec],
        columns: &[String],
        key: &Key,
        pk: &[u8],
    ) -> Result<()> {
        let Some(old) = self.with_view(|view| view.row(record.id, key))? else {
            return Ok(());
        };
        for spec in specs {
            let entry = index_entry_key(&record.schema.table_name, spec, columns, &old, pk)?;
            self.delete(Space::Index, entry)?;
        }
        for unique in &record.extras.uniques {
            if let Some(entry) = unique_entry_key(record, unique, columns, &old)? {
                self.delete(Space::Index, entry)?;
            }
        }
        Ok(())
    }

    fn delete_prefix(&mut self, space: Space, prefix: &[u8]) -> Result<()> {
        let keys = self.with_view(|view| {
            view.scan_prefix(space, prefix, Direction::Forward)?
                .map(|entry| entry.map(|(key, _)| key).map_err(Error::from))
                .collect::<Result<Vec<_>>>()
        })?;
        for key in keys {
            self.delete(space, key)?;
        }
        Ok(())
    }

    /// Builds the entries of `index` for every existing row.
    fn build_index(&mut self, record: &TableRecord, index: &SchemaIndex) -> Result<()> {
        let spec = IndexSpec {
            prefix: catalog::index_prefix(record.id, &index.name),
            expr: plan_scalar_expr(index.expr.clone()),
        };
        let columns = column_names(&record.schema);
        let entries = self.with_view(|view| {
            view.rows(record.id)?
                .map(|row| {
                    let (key, values) = row?;
                    let pk = encode_key(&key);
                    let entry =
                        index_entry_key(&record.schema.table_name, &spec, &columns, &values, &pk)?;
                    Ok((entry, pk))
                })
                .collect::<Result<Vec<_>>>()
        })?;
        for (entry, pk) in entries {
            self.put(Space::Index, entry, pk)?;
        }
        Ok(())
    }

    fn do_insert_schema(&mut self, schema: &Schema) -> Result<()> {
        refuse_audit_write(&[schema.table_name.as_str()], "CREATE/ALTER TABLE")?;
        match self.table(&schema.table_name)?.map(Arc::unwrap_or_clone) {
            Some(mut record) => {
                // Keep index entries in step with the schema's list of indexes.
                let old = std::mem::replace(&mut record.schema, schema.clone());
                for index in &old.indexes {
                    if !schema.indexes.iter().any(|i| i.name == index.name) {
                        self.delete_prefix(
                            Space::Index,
                            &catalog::index_prefix(record.id, &index.name),
                        )?;
                    }
                }
                self.put_table(&schema.table_name, &record)?;
                for index in &schema.indexes {
                    if !old.indexes.iter().any(|i| i.name == index.name) {
                        self.build_index(&record, index)?;
                    }
                }
                Ok(())
            }
            None => {
                let id = self.next_counter(NEXT_TABLE_ID_KEY, 1)?;
                let record = TableRecord {
                    id,
                    created_micros: now_micros(),
                    schema: schema.clone(),
                    extras: TableExtras::default(),
                };
                self.put_table(&schema.table_name, &record)
            }
        }
    }

    fn do_delete_schema(&mut self, table_name: &str) -> Result<()> {
        refuse_audit_write(&[table_name], "DROP TABLE")?;
        let Some(record) = self.table(table_name)? else {
            return Ok(());
        };
        for child_name in &record.extras.referenced_by {
            if child_name == table_name {
                continue;
            }
            if let Some(child) = self.table(child_name)?
                && child
                    .extras
                    .foreign_keys
                    .iter()
                    .any(|f| f.parent == table_name)
            {
                return Err(Error::Constraint(Box::new(
                    gluesql_core::executor::DeleteError::ReferencingColumnExists(format!(
                        "table {child_name} has a foreign key to {table_name}; drop {child_name} first"
                    ))
                    .into(),
                )));
            }
        }
        self.delete_prefix(Space::Rows, &catalog::row_prefix(record.id))?;
        self.delete_prefix(Space::Index, &catalog::row_prefix(record.id))?;
        self.delete(Space::Catalog, catalog::autokey_key(record.id))?;
        self.delete(Space::Catalog, catalog::sequence_key(record.id))?;
        self.delete(Space::Catalog, catalog::table_key(table_name))
    }

    fn do_append(&mut self, table_name: &str, rows: Vec<Vec<Value>>) -> Result<()> {
        refuse_audit_write(&[table_name], "INSERT")?;
        let record = self.require_table(table_name)?;
        let specs = index_specs(&record);
        let columns = column_names(&record.schema);
        let counter = catalog::autokey_key(record.id);
        let first = self.next_counter(&counter, 1)?;
        let count = u64::try_from(rows.len()).unwrap_or(u64::MAX);
        if count > 1 {
            let after = first.saturating_add(count);
            self.put(Space::Catalog, counter, after.to_be_bytes().to_vec())?;
        }
        for (offset, values) in (0u64..).zip(rows) {
            let id = i64::try_from(first + offset)
                .map_err(|_| Error::Internal("row key space exhausted".to_owned()))?;
            self.write_row(&record, &specs, &columns, &Key::I64(id), &values)?;
        }
        Ok(())
    }

    fn do_insert(&mut self, table_name: &str, rows: Vec<(Key, Vec<Value>)>) -> Result<()> {
        refuse_audit_write(&[table_name], "INSERT/UPDATE")?;
        let record = self.require_table(table_name)?;
        let specs = index_specs(&record);
        let columns = column_names(&record.schema);
        if self.inserting {
            // GlueSQL checks new keys against stored rows only; two new rows with one key
            // would otherwise overwrite each other.
            let mut seen = std::collections::HashSet::with_capacity(rows.len());
            for (key, _) in &rows {
                if !seen.insert(encode_key(key)) {
                    return Err(Error::Constraint(Box::new(
                        ValidateError::DuplicateEntryOnPrimaryKeyField(key.clone()).into(),
                    )));
                }
            }
        }
        for (key, values) in rows {
            self.write_row(&record, &specs, &columns, &key, &values)?;
        }
        Ok(())
    }

    fn do_delete(&mut self, table_name: &str, keys: Vec<Key>) -> Result<()> {
        refuse_audit_write(&[table_name], "DELETE")?;
        let record = self.require_table(table_name)?;
        let specs = index_specs(&record);
        let columns = column_names(&record.schema);
        for key in keys {
            let pk = encode_key(&key);
            if !record.extras.referenced_by.is_empty()
                && let Some(old) = self.with_view(|view| view.row(record.id, &key))?
            {
                self.check_unreferenced(&record, &columns, &old, None)?;
            }
            if let Some(capture) = self.capture.as_ref()
                && capture.deletes
                && capture.table == table_name
                && let Some(old) = self.with_view(|view| view.row(record.id, &key))?
                && let Some(capture) = self.capture.as_mut()
            {
                capture.rows.push((key.clone(), old));
            }
            self.remove_index_entries(&record, &specs, &columns, &key, &pk)?;
            self.delete(Space::Rows, catalog::row_key(record.id, &key))?;
        }
        Ok(())
    }

    fn do_rename_table(&mut self, old: &str, new: &str) -> Result<()> {
        refuse_audit_write(&[old, new], "ALTER TABLE RENAME")?;
        let mut record = self.require_table(old)?;
        if !record.extras.foreign_keys.is_empty() || !record.extras.referenced_by.is_empty() {
            return Err(Error::Unsupported(format!(
                "ALTER TABLE {old} RENAME: the table takes part in a foreign key; recreate it instead"
            )));
        }
        new.clone_into(&mut record.schema.table_name);
        self.put_table(new, &record)?;
        self.delete(Space::Catalog, catalog::table_key(old))
    }

    fn do_create_index(
        &mut self,
        table_name: &str,
        index_name: &str,
        column: &OrderByExpr,
    ) -> Result<()> {
        refuse_audit_write(&[table_name], "CREATE INDEX")?;
        let mut record = self.index_table(table_name)?;
        if record.schema.indexes.iter().any(|i| i.name == index_name) {
            return Err(Error::Sql(Box::new(
                IndexError::IndexNameAlreadyExists(index_name.to_owned()).into(),
            )));
        }
        let index = SchemaIndex {
            name: index_name.to_owned(),
            expr: column.expr.clone(),
            order: match column.asc {
                Some(true) => SchemaIndexOrd::Asc,
                Some(false) => SchemaIndexOrd::Desc,
                None => SchemaIndexOrd::Both,
            },
            created: Utc::now().naive_utc(),
        };
        self.build_index(&record, &index)?;
        record.schema.indexes.push(index);
        self.put_table(table_name, &record)
    }

    fn do_drop_index(&mut self, table_name: &str, index_name: &str) -> Result<()> {
        refuse_audit_write(&[table_name], "DROP INDEX")?;
        let mut record = self.index_table(table_name)?;
        let before = record.schema.indexes.len();
        record.schema.indexes.retain(|i| i.name != index_name);
        if record.extras.uniques.iter().any(|u| u.name == index_name) {
            // A unique index: its constraint goes with it.
            record.extras.uniques.retain(|u| u.name != index_name);
            self.delete_prefix(Space::Index, &catalog::unique_prefix(record.id, index_name))?;
        }
        if record.schema.indexes.len() == before {
            return Err(Error::Sql(Box::new(
                IndexError::IndexNameDoesNotExist(index_name.to_owned()).into(),
            )));
        }
        self.delete_prefix(Space::Index, &catalog::index_prefix(record.id, index_name))?;
        self.put_table(table_name, &record)
    }

    fn index_scan<'v>(
        view: View<'v>,
        record: &TableRecord,
        index_name: &str,
        asc: Option<bool>,
        cmp: Option<(&IndexOperator, Value)>,
        hint: Option<&ScanHint>,
    ) -> Result<Rows<'v>> {
        let index = record
            .schema
            .indexes
            .iter()
            .find(|i| i.name == index_name)
            .ok_or_else(|| {
                Error::Sql(Box::new(
                    IndexError::IndexNameDoesNotExist(index_name.to_owned()).into(),
                ))
            })?;
        let prefix = catalog::index_prefix(record.id, index_name);
        let column = match &index.expr {
            Expr::Identifier(column) => Some(column.as_str()),
            _ => None,
        };
        // Rows failing a comparison of the hint are dropped here. With a hint's limit and
        // an equality on the column, entries come in primary-key order: read them in the
        // query's order and stop when enough match.
        let checks = hint.and_then(|hint| hint.checks(&column_refs(&record.schema)));
        let first = match (hint, column) {
            (Some(hint), Some(column))
                if asc.is_none()
                    && hint.has_equality(column)
                    && checks.is_some()
                    && (primary_key_column(&record.schema).is_some()
                        || record.id == ledger::AUDIT_TABLE_ID) =>
            {
                hint.first
            }
            _ => None,
        };
        let direction = match (first, asc) {
            (Some((true, _)), _) | (None, Some(false)) => Direction::Reverse,
            _ => Direction::Forward,
        };
        let whole_upper = prefix_successor(&prefix).map_or(Bound::Unbounded, Bound::Excluded);
        let whole = (Bound::Included(prefix.clone()), whole_upper.clone());
        // An exact key range needs the comparison value in the column's own type; for an
        // expression index (or a value that does not cast) scan the index in order and
        // compare each entry instead.
        let mut nulls = prefix.clone();
        codec::encode_key_into(&mut nulls, &Key::None);
        let nulls_end = prefix_successor(&nulls).map_or(Bound::Unbounded, Bound::Excluded);
        let mut filter: Option<(IndexOperator, Value)> = None;
        let (lower, upper) = match cmp {
            None => whole,
            // GlueSQL plans `IS NULL` as `= NULL` and `IS NOT NULL` as `< NULL`: NULL acts
            // as the greatest value here, as in its key order.
            Some((op, Value::Null)) => match op {
                IndexOperator::Eq | IndexOperator::GtEq => (Bound::Included(nulls), nulls_end),
                IndexOperator::Lt => (whole.0, Bound::Excluded(nulls)),
                IndexOperator::LtEq => whole,
                IndexOperator::Gt => return Ok(Box::new(std::iter::empty())),
            },
            Some((op, value)) => match column_type(&record.schema, &index.expr)
                .and_then(|data_type| value.cast(data_type).ok())
                .and_then(|value| codec::value_to_key(&value).ok())
            {
                Some(key) => {
                    let mut at = prefix.clone();
                    codec::encode_key_into(&mut at, &key);
                    let after = prefix_successor(&at).map_or(Bound::Unbounded, Bound::Excluded);
                    // A comparison with a value is never true for NULL (SQL three-valued
                    // logic), so `>` and `>=` stop before the NULL entries.
                    match op {
                        IndexOperator::Eq => (Bound::Included(at), after),
                        IndexOperator::Gt => (
                            match after {
                                Bound::Excluded(k) => Bound::Included(k),
                                other => other,
                            },
                            Bound::Excluded(nulls),
                        ),
                        IndexOperator::GtEq => (Bound::Included(at), Bound::Excluded(nulls)),
                        IndexOperator::Lt => (whole.0, Bound::Excluded(at)),
                        IndexOperator::LtEq => (whole.0, after),
                    }
                }
                None => {
                    filter = Some((op.clone(), value));
                    whole
                }
            },
        };
        // Every comparison of the hint on this column bounds the range, not only the one
        // GlueSQL chose.
        let (lower, upper) = match (hint, column) {
            (Some(hint), Some(column)) => {
                let range = hint::byte_range(&prefix, hint.key_range(column), whole_upper.clone());
                let range = hint::intersect((lower, upper), range);
                if hint::is_empty(&range) {
                    return Ok(Box::new(std::iter::empty()));
                }
                range
            }
            _ => (lower, upper),
        };
        let table_id = record.id;
        let audit_rows = hint::AuditRows::new(hint);
        let prefix_len = prefix.len();
        let space = if table_id == ledger::AUDIT_TABLE_ID {
            Space::AuditIndex
        } else {
            Space::Index
        };
        let entries = view.scan(space, lower, upper, direction)?;
        let rows = entries.filter_map(move |entry| {
            let result = (|| {
                let (entry_key, pk) = entry?;
                if let Some((op, target)) = &filter {
                    let value_bytes = entry_key.get(prefix_len..).unwrap_or_default();
                    let (indexed, _) = decode_key_prefix(value_bytes)
                        .map_err(|e| corrupt(KS_INDEX, "index entry", &entry_key, e))?;
                    if !matches_filter(&Value::from(indexed), op, target) {
                        return Ok(None);
                    }
                }
                let key =
                    decode_key(&pk).map_err(|e| corrupt(KS_INDEX, "index entry", &entry_key, e))?;
                let row = if table_id == ledger::AUDIT_TABLE_ID {
                    match view.audit_row_by_key(&key, &audit_rows)? {
                        Some(None) => return Ok(None),
                        Some(Some(row)) => Some(row),
                        None => None,
                    }
                } else {
                    view.row_by_key(table_id, &key)?
                };
                let row = row.ok_or_else(|| {
                    corrupt(
                        KS_INDEX,
                        "index entry",
                        &entry_key,
                        codec::DecodeError {
                            what: "index entry points to a missing row",
                            offset: 0,
                        },
                    )
                })?;
                Ok(Some((key, row)))
            })();
            result.transpose()
        });
        Ok(match checks {
            Some(checks) => Box::new(hint::satisfying(rows, checks, first.map(|f| f.1))),
            None => Box::new(rows),
        })
    }
}

/// Refuses any change to `__audit_log` and `__audit_checkpoints`: the ledger is written
/// only by sealing events, checkpoints only by [`Database::record_checkpoint`].
///
/// [`Database::record_checkpoint`]: crate::Database::record_checkpoint
fn refuse_audit_write(tables: &[&str], operation: &str) -> Result<()> {
    if let Some(table) = tables.iter().find(|t| audit_table::is_system_table(t)) {
        return Err(Error::AuditLogReadOnly {
            table: (*table).to_owned(),
            operation: operation.to_owned(),
        });
    }
    Ok(())
}

fn column_type<'s>(schema: &'s Schema, expr: &Expr) -> Option<&'s DataType> {
    let Expr::Identifier(name) = expr else {
        return None;
    };
    schema
        .column_defs
        .as_ref()?
        .iter()
        .find(|ColumnDef { name: n, .. }| n == name)
        .map(|c| &c.data_type)
}

fn matches_filter(value: &Value, op: &IndexOperator, target: &Value) -> bool {
    if matches!(value, Value::Null) {
        return false;
    }
    let Some(ordering) = value.evaluate_cmp(target) else {
        return false;
    };
    match op {
        IndexOperator::Eq => ordering == Ordering::Equal,
        IndexOperator::Gt => ordering == Ordering::Greater,
        IndexOperator::GtEq => ordering != Ordering::Less,
        IndexOperator::Lt => ordering == Ordering::Less,
        IndexOperator::LtEq => ordering != Ordering::Greater,
    }
}

/// Column names of a schema, in order, borrowed.
fn column_refs(schema: &Schema) -> Vec<&str> {
    schema
        .column_defs
        .iter()
        .flatten()
        .map(|c| c.name.as_str())
        .collect()
}

/// The table's primary-key column, when it has exactly one.
fn primary_key_column(schema: &Schema) -> Option<&str> {
    let mut keys = schema
        .column_defs
        .iter()
        .flatten()
        .filter(|c| c.unique.is_some_and(|u| u.is_primary));
    let key = keys.next()?;
    keys.next().is_none().then_some(key.name.as_str())
}

/// `__audit_log` key bounds (on `id`) as ledger record-key bounds; `None` when nothing
/// can match.
fn seq_range((lower, upper): (Bound<Key>, Bound<Key>)) -> Option<hint::ByteRange> {
    // Seqs start at 1; ids below that match nothing, and non-integer keys are left to
    // GlueSQL.
    let lower = match lower {
        Bound::Included(Key::I64(v)) => {
            Bound::Included(ledger::record_key(v.max(0) as u64).to_vec())
        }
        Bound::Excluded(Key::I64(v)) if v < 0 => Bound::Unbounded,
        Bound::Excluded(Key::I64(v)) => Bound::Excluded(ledger::record_key(v as u64).to_vec()),
        _ => Bound::Unbounded,
    };
    let upper = match upper {
        Bound::Included(Key::I64(v)) | Bound::Excluded(Key::I64(v)) if v < 0 => return None,
        Bound::Included(Key::I64(v)) => Bound::Included(ledger::record_key(v as u64).to_vec()),
        Bound::Excluded(Key::I64(v)) => Bound::Excluded(ledger::record_key(v as u64).to_vec()),
        _ => Bound::Unbounded,
    };
    let range = (lower, upper);
    (!hint::is_empty(&range)).then_some(range)
}

type GlueResult<T> = gluesql_core::error::Result<T>;

impl Store for SqlStore {
    fn fetch_schema(&self, table_name: &str) -> GlueResult<Option<Schema>> {
        if audit_table::is_audit_table(table_name) {
            return Ok(Some(audit_table::schema()));
        }
        if checkpoints::is_checkpoint_table(table_name) {
            return Ok(Some(checkpoints::schema()));
        }
        self.read(|view| Ok(view.table(table_name)?.map(|r| r.schema.clone())))
    }

    fn fetch_all_schemas(&self) -> GlueResult<Vec<Schema>> {
        self.read(|view| Ok(view.tables()?.into_iter().map(|r| r.schema).collect()))
    }

    fn fetch_data(&self, table_name: &str, key: &Key) -> GlueResult<Option<Vec<Value>>> {
        if let Some(returning) = &self.returning
            && returning.table == table_name
        {
            return Ok(returning
                .rows
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, row)| row.clone()));
        }
        if audit_table::is_audit_table(table_name) {
            return self.read(|view| view.row_by_key(ledger::AUDIT_TABLE_ID, key));
        }
        if checkpoints::is_checkpoint_table(table_name) {
            return self.read(|view| view.checkpoint_row(key));
        }
        self.read(|view| match view.table(table_name)? {
            Some(record) => view.row(record.id, key),
            None => Ok(None),
        })
    }

    fn scan_data<'a>(&'a self, table_name: &str) -> GlueResult<RowIter<'a>> {
        let glue = |e: Error| self.fail(e);
        let scanned = &self.scanned;
        let count = move |row: &GlueResult<(Key, Vec<Value>)>| {
            if row.is_ok() {
                scanned.set(scanned.get() + 1);
            }
        };
        if let Some(returning) = &self.returning
            && returning.table == table_name
        {
            return Ok(Box::new(returning.rows.iter().cloned().map(Ok)));
        }
        let hint = self.take_hint(table_name);
        if checkpoints::is_checkpoint_table(table_name) {
            let rows = self.read(|view| view.checkpoint_rows())?;
            return Ok(Box::new(rows.into_iter().map(Ok).inspect(count)));
        }
        if audit_table::is_audit_table(table_name) {
            return match &self.txn {
                Some(txn) => {
                    let view = View {
                        snapshot: &*txn.snapshot,
                        overlay: None,
                        records: &self.records,
                        seen: Some(&txn.seen),
                    };
                    let rows: Rows<'_> = match &hint {
                        Some(hint) => Self::hinted_audit_rows(view, hint).map_err(glue)?,
                        None => Box::new(view.audit_rows().map_err(glue)?),
                    };
                    Ok(Box::new(
                        rows.map(move |row| row.map_err(|e| self.fail(e)))
                            .inspect(count),
                    ))
                }
                None => {
                    let rows = self
                        .with_view(|view| match &hint {
                            Some(hint) => Self::hinted_audit_rows(view, hint)?.collect(),
                            None => view.audit_rows()?.collect::<Result<Vec<_>>>(),
                        })
                        .map_err(glue)?;
                    Ok(Box::new(rows.into_iter().map(Ok)))
                }
            };
        }
        let restriction = {
            let mut slot = self.restriction.borrow_mut();
            match slot.as_ref() {
                Some((table, _)) if table == table_name => slot.take().map(|(_, r)| r),
                _ => None,
            }
        };
        match &self.txn {
            Some(txn) => {
                let view = View {
                    snapshot: &*txn.snapshot,
                    overlay: Some(&txn.overlay),
                    records: &self.records,
                    seen: Some(&txn.seen),
                };
                let Some(record) = view.table(table_name).map_err(glue)? else {
                    return Ok(Box::new(std::iter::empty()));
                };
                if let Some(restriction) = restriction {
                    let rows = Self::restricted_rows(view, &record, &restriction).map_err(glue)?;
                    return Ok(Box::new(rows.into_iter().map(Ok).inspect(count)));
                }
                if let Some(hint) = &hint {
                    let rows = Self::hinted_rows(view, &record, hint).map_err(glue)?;
                    return Ok(Box::new(
                        rows.map(move |row| row.map_err(|e| self.fail(e)))
                            .inspect(count),
                    ));
                }
                let rows = view.rows(record.id).map_err(glue)?;
                Ok(Box::new(
                    rows.map(move |row| row.map_err(|e| self.fail(e)))
                        .inspect(count),
                ))
            }
            None => {
                let rows = self
                    .with_view(|view| match (view.table(table_name)?, &hint) {
                        (Some(record), Some(hint)) => {
                            Self::hinted_rows(view, &record, hint)?.collect()
                        }
                        (Some(record), None) => view.rows(record.id)?.collect::<Result<Vec<_>>>(),
                        (None, _) => Ok(Vec::new()),
                    })
                    .map_err(glue)?;
                Ok(Box::new(rows.into_iter().map(Ok)))
            }
        }
    }
}

impl Index for SqlStore {
    fn scan_indexed_data<'a>(
        &'a self,
        table_name: &str,
        index_name: &str,
        asc: Option<bool>,
        cmp_value: Option<(&IndexOperator, Value)>,
    ) -> GlueResult<RowIter<'a>> {
        let glue = |e: Error| self.fail(e);
        let hint = self.take_hint(table_name);
        let missing = || {
            Error::Sql(Box::new(
                IndexError::ConflictTableNotFound(table_name.to_owned()).into(),
            ))
        };
        match &self.txn {
            Some(txn) => {
                let view = View {
                    snapshot: &*txn.snapshot,
                    overlay: Some(&txn.overlay),
                    records: &self.records,
                    seen: Some(&txn.seen),
                };
                let record = view
                    .table_or_audit(table_name)
                    .map_err(glue)?
                    .ok_or_else(missing)
                    .map_err(glue)?;
                let rows =
                    Self::index_scan(view, &record, index_name, asc, cmp_value, hint.as_ref())
                        .map_err(glue)?;
                let indexed = &self.indexed;
                Ok(Box::new(
                    rows.map(move |row| row.map_err(|e| self.fail(e)))
                        .inspect(move |row| {
                            if row.is_ok() {
                                indexed.set(indexed.get() + 1);
                            }
                        }),
                ))
            }
            None => {
                let rows = self
                    .with_view(|view| {
                        let record = view.table_or_audit(table_name)?.ok_or_else(missing)?;
                        Self::index_scan(view, &record, index_name, asc, cmp_value, hint.as_ref())?
                            .collect::<Result<Vec<_>>>()
                    })
                    .map_err(glue)?;
                Ok(Box::new(rows.into_iter().map(Ok)))
            }
        }
    }
}

impl Metadata for SqlStore {
    fn scan_table_meta(&self) -> GlueResult<MetaIter> {
        let metas = self.read(|view| {
            Ok(view
                .tables()?
                .into_iter()
                .map(|record| {
                    let created = Value::Timestamp(micros_to_naive(record.created_micros));
                    Ok((
                        record.schema.table_name,
                        BTreeMap::from([("CREATED".to_owned(), created)]),
                    ))
                })
                .collect::<Vec<_>>())
        })?;
        Ok(Box::new(metas.into_iter()))
    }
}

impl CustomFunction for SqlStore {
    fn fetch_function<'a>(
        &'a self,
        func_name: &str,
    ) -> GlueResult<Option<&'a StructCustomFunction>> {
        // Function names are case-insensitive, as in GlueSQL's own storages.
        Ok(self.functions.get(&func_name.to_uppercase()))
    }

    fn fetch_all_functions(&self) -> GlueResult<Vec<&StructCustomFunction>> {
        Ok(self.functions.values().collect())
    }
}

impl CustomFunctionMut for SqlStore {
    fn insert_function(&mut self, func: StructCustomFunction) -> GlueResult<()> {
        let name = func.func_name.to_uppercase();
        let result = catalog::encode_function(&func)
            .and_then(|bytes| self.put(Space::Catalog, catalog::function_key(&name), bytes));
        result.map_err(|e| self.fail(e))?;
        self.functions.insert(name, func);
        Ok(())
    }

    fn delete_function(&mut self, func_name: &str) -> GlueResult<()> {
        let name = func_name.to_uppercase();
        self.delete(Space::Catalog, catalog::function_key(&name))
            .map_err(|e| self.fail(e))?;
        self.functions.remove(&name);
        Ok(())
    }
}

impl StoreMut for SqlStore {
    fn insert_schema(&mut self, schema: &Schema) -> GlueResult<()> {
        self.do_insert_schema(schema).map_err(|e| self.fail(e))
    }

    fn delete_schema(&mut self, table_name: &str) -> GlueResult<()> {
        self.do_delete_schema(table_name).map_err(|e| self.fail(e))
    }

    fn append_data(&mut self, table_name: &str, rows: Vec<Vec<Value>>) -> GlueResult<()> {
        self.do_append(table_name, rows).map_err(|e| self.fail(e))
    }

    fn insert_data(&mut self, table_name: &str, rows: Vec<(Key, Vec<Value>)>) -> GlueResult<()> {
        self.do_insert(table_name, rows).map_err(|e| self.fail(e))
    }

    fn delete_data(&mut self, table_name: &str, keys: Vec<Key>) -> GlueResult<()> {
        self.do_delete(table_name, keys).map_err(|e| self.fail(e))
    }
}

impl IndexMut for SqlStore {
    fn create_index(
        &mut self,
        table_name: &str,
        index_name: &str,
        column: &OrderByExpr,
    ) -> GlueResult<()> {
        self.do_create_index(table_name, index_name, column)
            .map_err(|e| self.fail(e))
    }

    fn drop_index(&mut self, table_name: &str, index_name: &str) -> GlueResult<()> {
        self.do_drop_index(table_name, index_name)
            .map_err(|e| self.fail(e))
    }
}

impl AlterTable for SqlStore {
    fn rename_schema(&mut self, table_name: &str, new_table_name: &str) -> GlueResult<()> {
        self.do_rename_table(table_name, new_table_name)
            .map_err(|e| self.fail(e))
    }
}

impl Transaction for SqlStore {
    fn begin(&mut self, autocommit: bool) -> GlueResult<bool> {
        match (&self.txn, autocommit) {
            (Some(txn), true) if txn.explicit => Ok(false),
            // A session opened this statement's implicit transaction and will end it.
            (Some(_), true) if self.managed => Ok(false),
            (None, true) if self.managed => {
                self.start(false).map_err(|e| self.fail(e))?;
                Ok(false)
            }
            (Some(txn), false) if txn.explicit => Err(self.fail(Error::Transaction(
                "a transaction is already in progress; COMMIT or ROLLBACK it first".to_owned(),
            ))),
            _ => {
                self.start(!autocommit).map_err(|e| self.fail(e))?;
                Ok(autocommit)
            }
        }
    }

    fn rollback(&mut self) -> GlueResult<()> {
        self.finish(false).map_err(|e| self.fail(e))
    }

    fn commit(&mut self) -> GlueResult<()> {
        self.finish(true).map_err(|e| self.fail(e))
    }
}

impl Planner for SqlStore {
    fn plan(
        &self,
        statement: gluesql_core::plan::StatementPlan,
    ) -> GlueResult<gluesql_core::plan::StatementPlan> {
        use gluesql_core::planner::{
            fetch_schema_map, plan_aggregate, plan_hash_join, plan_index, plan_primary_key,
            plan_schemaless, validate,
        };
        let schema_map = fetch_schema_map(self, &statement)?;
        validate(&schema_map, &statement)?;
        let statement = plan_schemaless(&schema_map, statement)?;
        let statement = plan_primary_key(&schema_map, statement);
        let statement = plan_index(&schema_map, statement);
        let statement = plan_hash_join(&schema_map, statement);
        Ok(plan_aggregate(statement))
    }
}
