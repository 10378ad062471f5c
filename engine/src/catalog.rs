//! Where tables, rows, indexes and functions live in the backend's keyspaces, and how the
//! catalog records are encoded. Documented in `docs/FORMAT.md`.
//!
//! | keyspace  | key                                                        | value              |
//! |-----------|------------------------------------------------------------|--------------------|
//! | `catalog` | `meta/format`                                              | u32 BE version     |
//! | `catalog` | `meta/next_table_id`                                       | u64 BE             |
//! | `catalog` | `table/<name>`                                             | table record       |
//! | `catalog` | `autokey/<table id u64 BE>`                                | u64 BE next key    |
//! | `catalog` | `sequence/<table id u64 BE>`                               | i64 BE last id     |
//! | `catalog` | `function/<name>`                                          | function record    |
//! | `rows`    | `<table id u64 BE><key>`                                   | encoded row        |
//! | `index`   | `<table id><name len u16 BE><name><value key><row key>`    | `<row key>`        |
//! | `index`   | `<table id><FF FF><name len u16 BE><name><value keys...>`  | `<row key>`        |
//!
//! Rows are keyed by a table id, not the table name, so renaming a table rewrites one
//! catalog record and no rows. The second `index` layout holds unique constraints over
//! several columns (`UNIQUE (a, b)`, `PRIMARY KEY (a, b)`, `CREATE UNIQUE INDEX`): the
//! name length `FF FF` cannot occur in the first layout, whose names are shorter.

use crate::backend::{Durability, StorageBackend, WriteBatch};
use crate::codec::{DecodeError, Reader, encode_key_into};
use crate::error::{CorruptSource, Error, Result, hex};
use gluesql_core::data::{CustomFunction, Key, Schema};
use serde::{Deserialize, Serialize};

/// Keyspace of catalog records.
pub const KS_CATALOG: &str = "catalog";
/// Keyspace of table rows.
pub const KS_ROWS: &str = "rows";
/// Keyspace of secondary-index entries.
pub const KS_INDEX: &str = "index";

/// On-disk format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

pub(crate) const FORMAT_KEY: &[u8] = b"meta/format";
pub(crate) const NEXT_TABLE_ID_KEY: &[u8] = b"meta/next_table_id";
/// The first session id no open of the database has handed out yet (u64 BE).
pub(crate) const NEXT_SESSION_ID_KEY: &[u8] = b"meta/next_session_id";
pub(crate) const TABLE_PREFIX: &[u8] = b"table/";
pub(crate) const FUNCTION_PREFIX: &[u8] = b"function/";
const AUTOKEY_PREFIX: &[u8] = b"autokey/";
const SEQUENCE_PREFIX: &[u8] = b"sequence/";

const RECORD_V1: u8 = 1;
/// A table record with [`TableExtras`].
const RECORD_V2: u8 = 2;

/// Creates the keyspaces and the format marker on first open; checks the format after.
pub(crate) fn initialize(backend: &dyn StorageBackend) -> Result<()> {
    for keyspace in [KS_CATALOG, KS_ROWS, KS_INDEX] {
        backend.ensure_keyspace(keyspace)?;
    }
    let snapshot = backend.snapshot()?;
    match snapshot.get(KS_CATALOG, FORMAT_KEY)? {
        None => {
            let mut batch = WriteBatch::new();
            batch.put(KS_CATALOG, FORMAT_KEY, FORMAT_VERSION.to_be_bytes());
            backend.commit(&batch, Durability::Sync)?;
            Ok(())
        }
        Some(bytes) => {
            let found = read_u64ish(&bytes, KS_CATALOG, FORMAT_KEY, "format marker")?;
            let found = u32::try_from(found).unwrap_or(u32::MAX);
            if found == FORMAT_VERSION {
                Ok(())
            } else {
                Err(Error::FormatVersion {
                    found,
                    supported: FORMAT_VERSION,
                })
            }
        }
    }
}

/// Reads a big-endian u32 or u64 counter.
pub(crate) fn read_u64ish(
    bytes: &[u8],
    keyspace: &'static str,
    key: &[u8],
    what: &'static str,
) -> Result<u64> {
    match bytes.len() {
        4 => {
            let mut b = [0u8; 4];
            b.copy_from_slice(bytes);
            Ok(u64::from(u32::from_be_bytes(b)))
        }
        8 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(bytes);
            Ok(u64::from_be_bytes(b))
        }
        _ => Err(corrupt(
            keyspace,
            what,
            key,
            DecodeError {
                what: "counter has the wrong length",
                offset: 0,
            },
        )),
    }
}

pub(crate) fn corrupt(
    keyspace: &'static str,
    what: &'static str,
    key: &[u8],
    source: impl Into<CorruptSource>,
) -> Error {
    Error::Corrupt {
        keyspace,
        what,
        key_hex: hex(key),
        source: source.into(),
    }
}

/// A table's catalog entry.
#[derive(Clone, Debug)]
pub(crate) struct TableRecord {
    /// Stable id; prefixes the table's rows and index entries.
    pub id: u64,
    /// Creation time, microseconds since the Unix epoch (UTC).
    pub created_micros: i64,
    /// GlueSQL's schema (columns, indexes, foreign keys, comment).
    pub schema: Schema,
    /// What the engine adds on top of GlueSQL's schema.
    pub extras: TableExtras,
}

/// Table features the engine implements itself, beyond GlueSQL's schema: generated ids,
/// defaults GlueSQL cannot evaluate, and unique constraints over several columns.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableExtras {
    /// The column whose omitted or NULL values take the next id of the table's sequence
    /// (`INTEGER PRIMARY KEY [AUTOINCREMENT]`, `GENERATED ... AS IDENTITY`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoincrement: Option<String>,
    /// `GENERATED ALWAYS AS IDENTITY`: the auto-increment column refuses explicit values.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub generated_always: bool,
    /// Defaults applied by the engine when an INSERT omits the column.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub defaults: Vec<ColumnDefault>,
    /// Unique constraints enforced by the engine.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uniques: Vec<UniqueConstraint>,
    /// Foreign keys of this table enforced by the engine (those GlueSQL cannot: to a
    /// UNIQUE column rather than the primary key).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub foreign_keys: Vec<ForeignKeyRef>,
    /// Tables that may hold engine-enforced foreign keys to this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub referenced_by: Vec<String>,
}

/// A single-column foreign key, `ON DELETE/UPDATE NO ACTION`: every non-NULL value of
/// `column` must exist in `parent.parent_column`, and a parent row still referenced
/// cannot be deleted or have that value changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForeignKeyRef {
    /// Constraint name.
    pub name: String,
    /// Referencing column of this table.
    pub column: String,
    /// Referenced table.
    pub parent: String,
    /// Referenced column: the parent's primary key or a UNIQUE column.
    pub parent_column: String,
}

impl TableExtras {
    /// True when there is nothing beyond GlueSQL's schema.
    pub fn is_empty(&self) -> bool {
        self.autoincrement.is_none()
            && self.defaults.is_empty()
            && self.uniques.is_empty()
            && self.foreign_keys.is_empty()
            && self.referenced_by.is_empty()
    }

    /// Every column these extras refer to.
    pub fn columns(&self) -> impl Iterator<Item = &str> {
        self.autoincrement
            .iter()
            .map(String::as_str)
            .chain(self.defaults.iter().map(|d| d.column.as_str()))
            .chain(
                self.uniques
                    .iter()
                    .flat_map(|u| u.columns.iter().map(String::as_str)),
            )
            .chain(self.foreign_keys.iter().map(|f| f.column.as_str()))
    }
}

/// A default the engine evaluates (SQL text, evaluated per inserted row).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnDefault {
    /// Column name.
    pub column: String,
    /// The default expression as SQL text.
    pub sql: String,
}

/// A unique constraint over one or more columns. Rows with a NULL in any of its columns
/// never conflict, as in SQLite and PostgreSQL.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UniqueConstraint {
    /// Constraint (or unique index) name.
    pub name: String,
    /// Columns, in order.
    pub columns: Vec<String>,
    /// True for the table's `PRIMARY KEY (a, b)`.
    #[serde(default)]
    pub primary: bool,
}

impl TableRecord {
    /// `[1][id u64 BE][created i64 BE][schema JSON]` without extras;
    /// `[2][id u64 BE][created i64 BE][schema length u32 BE][schema JSON][extras JSON]` with.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(128);
        out.push(if self.extras.is_empty() {
            RECORD_V1
        } else {
            RECORD_V2
        });
        out.extend(self.id.to_be_bytes());
        out.extend(self.created_micros.to_be_bytes());
        let schema = serde_json::to_vec(&self.schema)
            .map_err(|e| Error::Internal(format!("cannot encode schema: {e}")))?;
        if self.extras.is_empty() {
            out.extend(schema);
        } else {
            let len = u32::try_from(schema.len())
                .map_err(|_| Error::Internal("table schema over 4 GiB".to_owned()))?;
            out.extend(len.to_be_bytes());
            out.extend(schema);
            serde_json::to_writer(&mut out, &self.extras)
                .map_err(|e| Error::Internal(format!("cannot encode table extras: {e}")))?;
        }
        Ok(out)
    }

    pub fn decode(key: &[u8], bytes: &[u8]) -> Result<Self> {
        let bad = |what| {
            corrupt(
                KS_CATALOG,
                "table record",
                key,
                DecodeError { what, offset: 0 },
            )
        };
        let short = |e| corrupt(KS_CATALOG, "table record", key, e);
        let mut reader = Reader::new(bytes);
        let version = reader.u8().map_err(short)?;
        let id = reader.u64().map_err(short)?;
        let created = reader.u64().map_err(short)?;
        let (schema, extras) = match version {
            RECORD_V1 => (&bytes[reader.pos..], None),
            RECORD_V2 => {
                let len = usize::try_from(reader.u32().map_err(short)?).unwrap_or(usize::MAX);
                let schema = reader.take(len).map_err(short)?;
                (schema, Some(&bytes[reader.pos..]))
            }
            _ => return Err(bad("unknown table record version")),
        };
        let schema = serde_json::from_slice(schema)
            .map_err(|e| corrupt(KS_CATALOG, "table record", key, e))?;
        let extras = match extras {
            Some(json) => serde_json::from_slice(json)
                .map_err(|e| corrupt(KS_CATALOG, "table record", key, e))?,
            None => TableExtras::default(),
        };
        Ok(TableRecord {
            id,
            created_micros: i64::from_be_bytes(created.to_be_bytes()),
            schema,
            extras,
        })
    }
}

pub(crate) fn encode_function(function: &CustomFunction) -> Result<Vec<u8>> {
    let mut out = vec![RECORD_V1];
    serde_json::to_writer(&mut out, function)
        .map_err(|e| Error::Internal(format!("cannot encode function: {e}")))?;
    Ok(out)
}

pub(crate) fn decode_function(key: &[u8], bytes: &[u8]) -> Result<CustomFunction> {
    match bytes.split_first() {
        Some((&RECORD_V1, json)) => {
            serde_json::from_slice(json).map_err(|e| corrupt(KS_CATALOG, "function", key, e))
        }
        _ => Err(corrupt(
            KS_CATALOG,
            "function",
            key,
            DecodeError {
                what: "unknown function record version",
                offset: 0,
            },
        )),
    }
}

pub(crate) fn table_key(name: &str) -> Vec<u8> {
    [TABLE_PREFIX, name.as_bytes()].concat()
}

pub(crate) fn function_key(name: &str) -> Vec<u8> {
    [FUNCTION_PREFIX, name.as_bytes()].concat()
}

pub(crate) fn autokey_key(table_id: u64) -> Vec<u8> {
    [AUTOKEY_PREFIX, &table_id.to_be_bytes()].concat()
}

pub(crate) fn sequence_key(table_id: u64) -> Vec<u8> {
    [SEQUENCE_PREFIX, &table_id.to_be_bytes()].concat()
}

pub(crate) fn row_prefix(table_id: u64) -> [u8; 8] {
    table_id.to_be_bytes()
}

pub(crate) fn row_key(table_id: u64, key: &Key) -> Vec<u8> {
    let mut out = Vec::with_capacity(20);
    out.extend(table_id.to_be_bytes());
    encode_key_into(&mut out, key);
    out
}

/// Prefix of every entry of one index.
pub(crate) fn index_prefix(table_id: u64, index_name: &str) -> Vec<u8> {
    let name = index_name.as_bytes();
    let mut out = Vec::with_capacity(10 + name.len());
    out.extend(table_id.to_be_bytes());
    // Index names are SQL identifiers; clamp defensively (a name this long cannot be
    // stored as a key anyway and is refused when the batch is validated).
    out.extend(u16::try_from(name.len()).unwrap_or(u16::MAX).to_be_bytes());
    out.extend(name);
    out
}

/// Prefix of every entry of one engine-enforced unique constraint.
pub(crate) fn unique_prefix(table_id: u64, name: &str) -> Vec<u8> {
    let name = name.as_bytes();
    let mut out = Vec::with_capacity(12 + name.len());
    out.extend(table_id.to_be_bytes());
    out.extend([0xFF, 0xFF]);
    // Constraint names are SQL identifiers; a name this long cannot be stored as a key
    // anyway and is refused when the batch is validated.
    out.extend(u16::try_from(name.len()).unwrap_or(u16::MAX).to_be_bytes());
    out.extend(name);
    out
}
