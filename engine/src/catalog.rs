//! Where tables, rows, indexes and functions live in the backend's keyspaces, and how the
//! catalog records are encoded. Documented in `docs/FORMAT.md`.
//!
//! | keyspace  | key                                                        | value              |
//! |-----------|------------------------------------------------------------|--------------------|
//! | `catalog` | `meta/format`                                              | u32 BE version     |
//! | `catalog` | `meta/next_table_id`                                       | u64 BE             |
//! | `catalog` | `table/<name>`                                             | table record       |
//! | `catalog` | `autokey/<table id u64 BE>`                                | u64 BE next key    |
//! | `catalog` | `function/<name>`                                          | function record    |
//! | `rows`    | `<table id u64 BE><key>`                                   | encoded row        |
//! | `index`   | `<table id><name len u16 BE><name><value key><row key>`    | `<row key>`        |
//!
//! Rows are keyed by a table id, not the table name, so renaming a table rewrites one
//! catalog record and no rows.

use crate::backend::{Durability, StorageBackend, WriteBatch};
use crate::codec::{DecodeError, encode_key_into};
use crate::error::{CorruptSource, Error, Result, hex};
use gluesql_core::data::{CustomFunction, Key, Schema};

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
pub(crate) const TABLE_PREFIX: &[u8] = b"table/";
pub(crate) const FUNCTION_PREFIX: &[u8] = b"function/";
const AUTOKEY_PREFIX: &[u8] = b"autokey/";

const RECORD_V1: u8 = 1;

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
            backend.commit(batch, Durability::Sync)?;
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
}

impl TableRecord {
    /// `[1][id u64 BE][created i64 BE][schema JSON]`
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(128);
        out.push(RECORD_V1);
        out.extend(self.id.to_be_bytes());
        out.extend(self.created_micros.to_be_bytes());
        serde_json::to_writer(&mut out, &self.schema)
            .map_err(|e| Error::Internal(format!("cannot encode schema: {e}")))?;
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
        if bytes.len() < 17 {
            return Err(bad("table record too short"));
        }
        if bytes[0] != RECORD_V1 {
            return Err(bad("unknown table record version"));
        }
        let mut id = [0u8; 8];
        id.copy_from_slice(&bytes[1..9]);
        let mut created = [0u8; 8];
        created.copy_from_slice(&bytes[9..17]);
        let schema = serde_json::from_slice(&bytes[17..])
            .map_err(|e| corrupt(KS_CATALOG, "table record", key, e))?;
        Ok(TableRecord {
            id: u64::from_be_bytes(id),
            created_micros: i64::from_be_bytes(created),
            schema,
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
