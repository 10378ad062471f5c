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
#[cfg(feature = "conformance")]
pub mod conformance;
mod database;
mod dialect;
mod error;
pub mod refused;
mod session;
mod store;

pub use backend::{
    BatchOp, Direction, Durability, KvIter, Snapshot, StorageBackend, StorageError, WriteBatch,
};
pub use database::{Database, DatabaseOptions, DurabilityMode, RetentionOptions, RetentionRun};
pub use error::{CorruptSource, Error, Result};
pub use gluesql_core::chrono;
pub use gluesql_core::data::Value;
pub use session::{AppEvent, FromValue, Output, Param, Prepared, Rows, Session, SessionInfo};
pub use store::SqlStore;
