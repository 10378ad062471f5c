//! `__audit_log`: the ledger as a read-only table that plain SQL can query.

use super::ledger::{AUDIT_INDEXES, Record};
use crate::error::hex;
use gluesql_core::ast::{ColumnDef, ColumnUniqueOption, DataType, Expr};
use gluesql_core::data::{Schema, SchemaIndex, SchemaIndexOrd, Value};

/// Name of the system table.
pub const AUDIT_TABLE: &str = "__audit_log";

/// True when `name` names the audit table (case-insensitively).
pub fn is_audit_table(name: &str) -> bool {
    name.eq_ignore_ascii_case(AUDIT_TABLE)
}

/// True when `name` names a read-only system table: `__audit_log` or
/// `__audit_checkpoints`.
pub fn is_system_table(name: &str) -> bool {
    is_audit_table(name) || super::checkpoints::is_checkpoint_table(name)
}

/// `(column, type, nullable)` of `__audit_log`, in order.
pub const COLUMNS: [(&str, DataType, bool); 18] = [
    ("id", DataType::Int, false),
    ("timestamp", DataType::Timestamp, false),
    ("session_id", DataType::Int, false),
    ("user", DataType::Text, false),
    ("client_addr", DataType::Text, false),
    ("application", DataType::Text, false),
    ("database", DataType::Text, false),
    ("class", DataType::Text, false),
    ("operation", DataType::Text, false),
    ("target", DataType::Text, false),
    ("query", DataType::Text, false),
    ("params", DataType::Text, false),
    ("affected_rows", DataType::Int, false),
    ("success", DataType::Boolean, false),
    ("error", DataType::Text, true),
    ("duration_us", DataType::Int, false),
    ("custom", DataType::Text, false),
    ("checksum", DataType::Text, false),
];

pub use super::event::timestamp;

/// The schema GlueSQL sees for `__audit_log`, with its storage-maintained indexes.
pub fn schema() -> Schema {
    let column_defs = COLUMNS
        .iter()
        .map(|(name, data_type, nullable)| ColumnDef {
            name: (*name).to_owned(),
            data_type: data_type.clone(),
            nullable: *nullable,
            default: None,
            unique: (*name == "id").then_some(ColumnUniqueOption { is_primary: true }),
            comment: None,
        })
        .collect();
    let indexes = AUDIT_INDEXES
        .iter()
        .map(|(column, index)| SchemaIndex {
            name: (*index).to_owned(),
            expr: Expr::Identifier((*column).to_owned()),
            order: SchemaIndexOrd::Both,
            created: timestamp(0),
        })
        .collect();
    Schema {
        table_name: AUDIT_TABLE.to_owned(),
        column_defs: Some(column_defs),
        indexes,
        engine: None,
        foreign_keys: Vec::new(),
        comment: Some("HeliosDB-Lite audit trail (read-only)".to_owned()),
    }
}

/// A record as a `__audit_log` row, in [`COLUMNS`] order.
pub fn row(record: &Record) -> Vec<Value> {
    row_masked(record, None)
}

/// A record as a `__audit_log` row with only the columns `needed` marks (by position in
/// [`COLUMNS`]; all when `None`); the others are NULL. A query that names a few columns
/// skips building the rest (the JSON of parameters and custom fields, the hex checksum).
pub fn row_masked(record: &Record, needed: Option<&[bool]>) -> Vec<Value> {
    let e = &record.event;
    let int = |v: u64| Value::I64(i64::try_from(v).unwrap_or(i64::MAX));
    let wanted = |column: usize| needed.is_none_or(|n| n.get(column).copied().unwrap_or(true));
    let mut row = Vec::with_capacity(COLUMNS.len());
    for column in 0..COLUMNS.len() {
        if !wanted(column) {
            row.push(Value::Null);
            continue;
        }
        row.push(match column {
            0 => int(e.seq),
            1 => Value::Timestamp(timestamp(e.timestamp_us)),
            2 => int(e.session_id),
            3 => Value::Str(e.user.clone()),
            4 => Value::Str(e.client_addr.clone()),
            5 => Value::Str(e.application.clone()),
            6 => Value::Str(e.database.clone()),
            7 => Value::Str(e.class.as_str().to_owned()),
            8 => Value::Str(e.operation.clone()),
            9 => Value::Str(e.targets.join(",")),
            10 => Value::Str(e.query.clone()),
            // A list of strings and a map of strings always serialize.
            11 => Value::Str(serde_json::to_string(&e.params).unwrap_or_default()),
            12 => int(e.rows),
            13 => Value::Bool(e.success),
            14 => e.error.clone().map_or(Value::Null, Value::Str),
            15 => int(e.duration_us),
            16 => Value::Str(serde_json::to_string(&e.custom).unwrap_or_default()),
            _ => Value::Str(hex(&record.chain)),
        });
    }
    row
}
