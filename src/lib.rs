//! # HeliosDB-Lite
//!
//! An embedded SQL database whose audit trail is part of the engine. This crate is the
//! front door: it re-exports the engine's API and wires the default storage backends —
//! [fjall](https://crates.io/crates/fjall) on disk, or memory.
//!
//! ```
//! # fn main() -> Result<(), heliosdb_lite::Error> {
//! use heliosdb_lite::{Database, SessionInfo, params};
//!
//! let db = Database::in_memory()?; // or Database::open("./data")?
//! let mut session = db.session(SessionInfo::new("alice").application("billing"));
//! session.execute("CREATE TABLE invoice (id INTEGER PRIMARY KEY, total DECIMAL)", &[])?;
//! session.execute("INSERT INTO invoice VALUES ($1, $2)", &params![1, 99_i64])?;
//! let rows = session.query("SELECT id, total FROM invoice", &[])?;
//! assert_eq!(rows.len(), 1);
//! assert_eq!(rows.get::<i64>(0, "id")?, 1);
//! # Ok(()) }
//! ```
#![deny(unsafe_code)]

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use heliosdb_backend_fjall::{FjallBackend, FjallOptions};
pub use heliosdb_backend_memory::MemoryBackend;
pub use heliosdb_config::{Config, ConfigError, Preset};
pub use heliosdb_engine::audit::{
    AuditSink, SealedEvent, SinkContext, SinkError, SinkRecorder, SinkStatus, StoredCheckpoint,
};
pub use heliosdb_engine::{
    AppEvent, ColumnIndex, DatabaseOptions, Decimal, DurabilityMode, Error, FromRow, FromValue,
    Output, Param, Prepared, Result, RetentionOptions, RetentionRun, Row, Rows, Session,
    SessionInfo, SqlStore, StorageBackend, StorageError, Transaction, Value, params, script,
};
pub use heliosdb_jsonl::{JsonlFileConfig, JsonlFileSink};

/// The audit trail as applications and reporters use it: the event model, policies, what
/// `verify` reports, retention, exports, and the personal-data functions. Everything here
/// is also reachable under [`engine`], which holds the engine's internals too.
pub mod audit {
    pub use heliosdb_engine::audit::export::rfc3339_micros;
    pub use heliosdb_engine::audit::redact::{
        self, ForgetReport, forget_subject, subject_access, subject_events, subject_token,
    };
    pub use heliosdb_engine::audit::table::is_system_table;
    pub use heliosdb_engine::audit::{
        AUDIT_TABLE, AuditEvent, AuditPolicy, CHECKPOINT_TABLE, EventClass, ExportLine,
        ExportProblem, ExportReport, Hash, LegalHold, MetadataCapture, ParamCapture, Problem,
        ProblemKind, PruneAnchor, PruneBefore, PruneReport, Record, Redaction, RedactionMode,
        VerifyOptions, VerifyReport, export, tail, verify_export,
    };
}

mod erasure;
pub use erasure::erase_subject;

/// Date and time types for binding `DATE`, `TIMESTAMP` and `TIME` parameters.
pub use heliosdb_engine::chrono;

/// The engine crate, for backend authors and advanced use.
pub use heliosdb_engine as engine;

/// The configuration crate: `heliosdb.toml`, presets, resolution.
pub use heliosdb_config as config;

/// Signed checkpoints: Ed25519 keys, C2SP signed notes, checking a ledger against them.
pub use heliosdb_checkpoint as checkpoint;

/// An open database. Cheap to clone, `Send + Sync`; clones share the same storage.
///
/// Dereferences to [`engine::Database`] for everything beyond opening: sessions,
/// persistence, the backend.
#[derive(Clone, Debug)]
pub struct Database {
    inner: heliosdb_engine::Database,
}

impl Deref for Database {
    type Target = heliosdb_engine::Database;

    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl Database {
    /// Opens (creating if missing) a durable database in directory `path`, on fjall. When
    /// `path/heliosdb.toml` exists it is applied (with its preset and `HELIOSDB_*`
    /// environment overrides, see [`Config::from_file`]); otherwise the defaults.
    pub fn open(path: impl AsRef<Path>) -> Result<Database> {
        let path = path.as_ref();
        let builder = match Config::discover(path)? {
            Some(config) => Database::builder().config(&config),
            None => Database::builder(),
        };
        builder.path(path).open()
    }

    /// Opens the database a resolved configuration describes: on fjall in
    /// `database.path`, or in memory when that is empty.
    ///
    /// ```
    /// # fn main() -> Result<(), heliosdb_lite::Error> {
    /// use heliosdb_lite::{Config, Database};
    /// let config = Config::from_toml("[audit]\npreset = \"hipaa\"\n")?;
    /// let db = Database::open_with_config(&config)?;
    /// assert!(db.options().audit.log_select);
    /// # Ok(()) }
    /// ```
    pub fn open_with_config(config: &Config) -> Result<Database> {
        let builder = Database::builder().config(config);
        match config.database_path() {
            Some(_) => builder.open(),
            None => builder.in_memory().open(),
        }
    }

    /// A fresh in-memory database: nothing survives the process.
    pub fn in_memory() -> Result<Database> {
        Database::builder().in_memory().open()
    }

    /// Options beyond the defaults.
    ///
    /// ```
    /// # fn main() -> Result<(), heliosdb_lite::Error> {
    /// use heliosdb_lite::{Database, DurabilityMode};
    /// let dir = tempfile::tempdir().expect("temp dir");
    /// let db = Database::builder()
    ///     .path(dir.path())
    ///     .durability(DurabilityMode::Sync)
    ///     .open()?;
    /// # drop(db); Ok(()) }
    /// ```
    pub fn builder() -> DatabaseBuilder {
        DatabaseBuilder::default()
    }

    /// The engine-level handle.
    pub fn engine(&self) -> &heliosdb_engine::Database {
        &self.inner
    }
}

impl From<heliosdb_engine::Database> for Database {
    fn from(inner: heliosdb_engine::Database) -> Self {
        Database { inner }
    }
}

#[derive(Clone, Default)]
enum BackendChoice {
    #[default]
    Unset,
    Fjall(PathBuf),
    Memory,
    Custom(Arc<dyn StorageBackend>),
}

/// Builds a [`Database`]: which backend, where, how durable, which sinks.
#[derive(Default)]
pub struct DatabaseBuilder {
    backend: BackendChoice,
    options: DatabaseOptions,
    fjall: FjallOptions,
    memory_limit_bytes: Option<u64>,
    sinks: Vec<Box<dyn AuditSink>>,
    /// A configuration that could not be applied; `open` reports it.
    error: Option<Error>,
}

impl std::fmt::Debug for DatabaseBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backend = match &self.backend {
            BackendChoice::Unset => "unset".to_owned(),
            BackendChoice::Fjall(path) => format!("fjall at {}", path.display()),
            BackendChoice::Memory => "memory".to_owned(),
            BackendChoice::Custom(b) => format!("custom ({})", b.kind()),
        };
        let sinks: Vec<&str> = self.sinks.iter().map(|s| s.name()).collect();
        f.debug_struct("DatabaseBuilder")
            .field("backend", &backend)
            .field("options", &self.options)
            .field("fjall", &self.fjall)
            .field("memory_limit_bytes", &self.memory_limit_bytes)
            .field("sinks", &sinks)
            .finish()
    }
}

impl DatabaseBuilder {
    /// Durable storage (fjall) in directory `path`, created if missing.
    #[must_use]
    pub fn path(mut self, path: impl AsRef<Path>) -> Self {
        self.backend = BackendChoice::Fjall(path.as_ref().to_path_buf());
        self
    }

    /// In-memory storage.
    #[must_use]
    pub fn in_memory(mut self) -> Self {
        self.backend = BackendChoice::Memory;
        self
    }

    /// Any other [`StorageBackend`].
    #[must_use]
    pub fn backend(mut self, backend: Arc<dyn StorageBackend>) -> Self {
        self.backend = BackendChoice::Custom(backend);
        self
    }

    /// When commits become durable; default [`DurabilityMode::Group`] every 10 ms.
    #[must_use]
    pub fn durability(mut self, durability: DurabilityMode) -> Self {
        self.options.durability = durability;
        self
    }

    /// How long a writer waits for another write transaction; default 5 s.
    #[must_use]
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.options.busy_timeout = timeout;
        self
    }

    /// What the audit trail records; default: every statement, transaction, login and
    /// application event.
    #[must_use]
    pub fn audit_policy(mut self, policy: heliosdb_engine::audit::AuditPolicy) -> Self {
        self.options.audit = policy;
        self
    }

    /// Retention of the audit trail: `retention_days`, `auto_prune`, legal hold, lockdown.
    #[must_use]
    pub fn retention(mut self, retention: RetentionOptions) -> Self {
        self.options.retention = retention;
        self
    }

    /// Opens an existing database for reading only: statements that would write data or
    /// schema fail with [`Error::ReadOnly`] (and are recorded), as do pruning, legal holds
    /// and subject erasure; automatic pruning does not run. Reads are audited as the
    /// policy says — a reporter's access is on record. A missing database directory is an
    /// error, not created.
    #[must_use]
    pub fn read_only(mut self) -> Self {
        self.options.read_only = true;
        self
    }

    /// Name recorded in session metadata; default `main`.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.options.name = name.into();
        self
    }

    /// Applies a resolved configuration: options, storage tuning, sinks, and
    /// `database.path` unless a backend was already chosen. Calls after this one override
    /// it.
    #[must_use]
    pub fn config(mut self, config: &Config) -> Self {
        let read_only = self.options.read_only;
        self.options = config.database_options();
        self.options.read_only = read_only;
        self.fjall.cache_size_bytes = Some(config.cache_bytes());
        self.fjall.max_memtable_bytes = config.memory_limit_bytes();
        self.memory_limit_bytes = config.memory_limit_bytes();
        match config.build_sinks() {
            Ok(sinks) => self.sinks.extend(sinks),
            Err(error) => self.error = Some(error.into()),
        }
        if let (BackendChoice::Unset, Some(path)) = (&self.backend, config.database_path()) {
            self.backend = BackendChoice::Fjall(path);
        }
        self
    }

    /// Adds a follower sink: it receives every sealed event on its own thread (see
    /// [`AuditSink`]).
    #[must_use]
    pub fn sink(mut self, sink: impl AuditSink + 'static) -> Self {
        self.sinks.push(Box::new(sink));
        self
    }

    /// Tuning of the on-disk backend.
    #[must_use]
    pub fn fjall_options(mut self, options: FjallOptions) -> Self {
        self.fjall = options;
        self
    }

    /// Opens the database.
    pub fn open(self) -> Result<Database> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let backend: Arc<dyn StorageBackend> = match self.backend {
            BackendChoice::Unset => {
                return Err(Error::Unsupported(
                    "no storage chosen: call .path(dir), .in_memory() or .backend(b)".to_owned(),
                ));
            }
            BackendChoice::Fjall(path) => {
                let empty = std::fs::read_dir(&path).map_or(true, |mut d| d.next().is_none());
                if self.options.read_only && empty {
                    return Err(Error::ReadOnly(format!(
                        "there is no database at {} to open read-only",
                        path.display()
                    )));
                }
                Arc::new(FjallBackend::open_with(&path, self.fjall)?)
            }
            BackendChoice::Memory => Arc::new(match self.memory_limit_bytes {
                Some(limit) => MemoryBackend::with_limit(limit),
                None => MemoryBackend::new(),
            }),
            BackendChoice::Custom(backend) => backend,
        };
        let db = heliosdb_engine::Database::with_backend(backend, self.options)?;
        for sink in self.sinks {
            db.attach_sink(sink)?;
        }
        // `audit.auto_prune`: events past `retention_days` go when the database opens, then
        // every `auto_prune_interval_seconds` while it stays open.
        db.apply_retention()?;
        db.start_retention()?;
        Ok(Database::from(db))
    }
}
