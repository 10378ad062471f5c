//! `__audit_log`: the ledger as a read-only table that plain SQL can query.

use super::ledger::{AUDIT_INDEXES, Record};
use crate::error::hex;
use gluesql_core::ast::{ColumnDef, ColumnUniqueOption, DataType, Expr};
use gluesql_core::chrono::{DateTime, NaiveDateTime};
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

/// Microseconds since the epoch as a UTC timestamp (clamped to chrono's range).
pub fn timestamp(micros: i64) -> NaiveDateTime {
    DateTime::from_timestamp_micros(micros)
        .unwrap_or_default()
        .naive_utc()
}

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
    let e = &record.event;
    let int = |v: u64| Value::I64(i64::try_from(v).unwrap_or(i64::MAX));
    vec![
        int(e.seq),
        Value::Timestamp(timestamp(e.timestamp_us)),
        int(e.session_id),
        Value::Str(e.user.clone()),
        Value::Str(e.client_addr.clone()),
        Value::Str(e.application.clone()),
        Value::Str(e.database.clone()),
        Value::Str(e.class.as_str().to_owned()),
        Value::Str(e.operation.clone()),
        Value::Str(e.targets.join(",")),
        Value::Str(e.query.clone()),
        Value::Str(serde_json::Value::from(e.params.clone()).to_string()),
        int(e.rows),
        Value::Bool(e.success),
        e.error.clone().map_or(Value::Null, Value::Str),
        int(e.duration_us),
        Value::Str(
            serde_json::Value::Object(
                e.custom
                    .iter()
                    .map(|(k, v)| (k.clone(), serde_json::Value::from(v.clone())))
                    .collect(),
            )
            .to_string(),
        ),
        Value::Str(hex(&record.chain)),
    ]
}
