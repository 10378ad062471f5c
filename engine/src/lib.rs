//! HeliosDB-Lite engine: the storage abstraction, the SQL adapter over GlueSQL, and the
//! `Database` / `Session` API.
//!
//! Most users depend on the `heliosdb-lite` crate, which wires the default backends.
#![deny(unsafe_code)]

pub mod audit;
pub mod backend;
pub mod catalog;
pub mod classify;
pub mod codec;
mod commit;
#[cfg(feature = "conformance")]
pub mod conformance;
mod database;
mod dialect;
mod error;
mod output;
pub mod refused;
mod row;
pub mod script;
mod session;
pub mod settings;
mod store;
mod transaction;

pub use audit::AppEvent;
pub use backend::{
    BatchOp, Direction, Durability, KvIter, Snapshot, StorageBackend, StorageError, WriteBatch,
};
pub use database::{Database, DatabaseOptions, DurabilityMode, RetentionOptions, RetentionRun};
pub use error::{CorruptSource, Error, Result};
pub use gluesql_core::chrono;
pub use gluesql_core::data::Value;
pub use row::{ColumnIndex, FromRow, FromValue, Row, Rows, type_name};
/// The decimal type of `DECIMAL` values ([`Value::Decimal`]).
pub use rust_decimal::Decimal;
pub use session::{Output, Param, Prepared, Session, SessionInfo};
pub use store::SqlStore;
pub use transaction::Transaction;
