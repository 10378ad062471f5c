//! The configuration model: one serde struct per TOML table, defaults in one place
//! (the `Default` impls below), value checks in the deserializers so every error carries
//! the line and column of the bad value.

use crate::preset::Preset;
use serde::{Deserialize, Deserializer, Serialize, de};
use std::collections::BTreeMap;

/// A whole `heliosdb.toml`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConfigFile {
    /// `[database]`: where and how data is stored.
    pub database: DatabaseConfig,
    /// `[audit]`: what the audit trail records and where it goes.
    pub audit: AuditConfig,
}

/// When a commit becomes durable against power loss.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Every commit is fsynced before it returns.
    Sync,
    /// Commits are fsynced together every `group_commit_ms`.
    #[default]
    Group,
}

/// `[database]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// Database directory; empty for none (the caller or `--db` names it, or the database
    /// lives in memory). Relative to the configuration file's directory.
    pub path: String,
    /// Name recorded in every audit event's `database` field.
    pub name: String,
    /// `sync` or `group`.
    pub durability: Durability,
    /// Time between group fsyncs, in milliseconds (with `durability = "group"`).
    #[serde(deserialize_with = "group_commit_ms")]
    pub group_commit_ms: u64,
    /// How long a writer waits for another write transaction, in milliseconds.
    #[serde(deserialize_with = "busy_timeout_ms")]
    pub busy_timeout_ms: u64,
    /// Upper bound on the memory held by unflushed writes, in MiB; 0 for the backend's
    /// default. In memory: the most data the database holds.
    #[serde(deserialize_with = "memory_limit_mb")]
    pub memory_limit_mb: u64,
    /// Block cache of the on-disk backend, in MiB.
    #[serde(deserialize_with = "cache_mb")]
    pub cache_mb: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            path: String::new(),
            name: "main".to_owned(),
            durability: Durability::Group,
            group_commit_ms: 10,
            busy_timeout_ms: 5000,
            memory_limit_mb: 0,
            cache_mb: 32,
        }
    }
}

/// How `redact_columns` values are kept in the audit trail (see `docs/CONFIG.md`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RedactionMode {
    /// A keyed hash: searchable, not readable.
    #[default]
    Hash,
    /// Encrypted per subject; destroying the key erases the value.
    Encrypt,
}

/// `[audit]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// Master switch.
    pub enabled: bool,
    /// A compliance preset whose settings sit under this file's.
    pub preset: Preset,
    /// Record CREATE / DROP / ALTER.
    pub log_ddl: bool,
    /// Record INSERT / UPDATE / DELETE.
    pub log_dml: bool,
    /// Record SELECT and other queries.
    pub log_select: bool,
    /// Record BEGIN / COMMIT / ROLLBACK.
    pub log_transactions: bool,
    /// Record logins and logouts.
    pub log_auth: bool,
    /// Record application events.
    pub log_app: bool,
    /// When non-empty, only events on these tables (or on no table) are recorded.
    pub include_tables: Vec<String>,
    /// Events touching only these tables are not recorded.
    pub exclude_tables: Vec<String>,
    /// When non-empty, only these users' events are recorded.
    pub include_users: Vec<String>,
    /// These users' events are not recorded.
    pub exclude_users: Vec<String>,
    /// Longest statement text recorded, in characters.
    #[serde(deserialize_with = "max_query_length")]
    pub max_query_length: u64,
    /// Record each bound parameter as `?` instead of its value.
    pub redact_parameters: bool,
    /// Columns whose literal values and bound parameters are kept out of the trail in
    /// clear; the first is the subject column (`redaction_mode = "encrypt"`).
    pub redact_columns: Vec<String>,
    /// How `redact_columns` values are kept: keyed hash or per-subject encryption.
    pub redaction_mode: RedactionMode,
    /// Hash-chain every record; cannot be turned off.
    #[serde(deserialize_with = "checksums")]
    pub enable_checksums: bool,
    /// Most events handed to a sink in one delivery.
    #[serde(deserialize_with = "async_buffer_size")]
    pub async_buffer_size: u64,
    /// Days an event is kept; 0 keeps it forever (applied by retention).
    #[serde(deserialize_with = "retention_days")]
    pub retention_days: u64,
    /// Prune events older than `retention_days` automatically (applied by retention).
    pub auto_prune: bool,
    /// Seconds between automatic pruning runs while the database is open.
    #[serde(deserialize_with = "auto_prune_interval_seconds")]
    pub auto_prune_interval_seconds: u64,
    /// Refuse every prune (applied by retention).
    pub legal_hold: bool,
    /// Forbid pruning for the life of the database (applied by retention).
    pub audit_trail_lockdown: bool,
    /// Refuse a configuration without a `checkpoint` sink.
    pub require_checkpoints: bool,
    /// `[audit.capture_metadata]`: which session metadata each event carries.
    pub capture_metadata: CaptureMetadata,
    /// `[[audit.sinks]]`: where events go besides the local ledger.
    pub sinks: Vec<SinkConfig>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            preset: Preset::None,
            log_ddl: true,
            log_dml: true,
            log_select: true,
            log_transactions: true,
            log_auth: true,
            log_app: true,
            include_tables: Vec::new(),
            exclude_tables: Vec::new(),
            include_users: Vec::new(),
            exclude_users: Vec::new(),
            max_query_length: 4096,
            redact_parameters: false,
            redact_columns: Vec::new(),
            redaction_mode: RedactionMode::Hash,
            enable_checksums: true,
            async_buffer_size: 1024,
            retention_days: 0,
            auto_prune: false,
            auto_prune_interval_seconds: 3600,
            legal_hold: false,
            audit_trail_lockdown: false,
            require_checkpoints: false,
            capture_metadata: CaptureMetadata::default(),
            sinks: Vec::new(),
        }
    }
}

/// `[audit.capture_metadata]`: a field switched off is recorded empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaptureMetadata {
    /// The client address.
    pub capture_client_ip: bool,
    /// The application name.
    pub capture_application_name: bool,
    /// The database name.
    pub capture_database_name: bool,
    /// The statement's duration.
    pub capture_execution_time: bool,
    /// The session's custom fields.
    pub capture_custom_fields: bool,
}

impl Default for CaptureMetadata {
    fn default() -> Self {
        Self {
            capture_client_ip: true,
            capture_application_name: true,
            capture_database_name: true,
            capture_execution_time: true,
            capture_custom_fields: true,
        }
    }
}

/// One `[[audit.sinks]]` entry; `kind` picks the sink.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum SinkConfig {
    /// Every event appended to a JSON Lines file, fsynced per batch.
    /// Every event appended to a JSON Lines file (the sink's own configuration).
    JsonlFile(heliosdb_jsonl::JsonlFileConfig),
    /// Signed checkpoints of the ledger appended to a file.
    Checkpoint(heliosdb_checkpoint::CheckpointConfig),
    /// Every event exported to an OpenTelemetry (OTLP) receiver as a log record.
    Otlp(OtlpConfig),
}

/// `protocol` of an `otlp` sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OtlpProtocol {
    /// OTLP/HTTP with protobuf bodies.
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
    /// OTLP/gRPC.
    #[serde(rename = "grpc")]
    Grpc,
}

/// `compression` of an `otlp` sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OtlpCompression {
    /// None.
    None,
    /// gzip.
    Gzip,
}

/// `kind = "otlp"`. Unset `endpoint`, `protocol`, `headers`, `compression` and
/// `timeout_ms` come from the `OTEL_EXPORTER_OTLP_[LOGS_]*` environment variables, then
/// from the defaults (`docs/OTLP.md`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpConfig {
    /// The sink's name in `audit sinks` and errors.
    #[serde(default = "default_otlp_name")]
    pub name: String,
    /// Receiver URL (`http://collector:4318`); empty for the environment or localhost.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub endpoint: String,
    /// `http/protobuf` or `grpc`; unset for the environment or `http/protobuf`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<OtlpProtocol>,
    /// Request headers (gRPC metadata), e.g. an `authorization` token.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// `gzip` or `none`; unset for the environment or `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<OtlpCompression>,
    /// Longest an export request may take, in milliseconds; 0 for the environment or
    /// 10,000.
    #[serde(default, deserialize_with = "otlp_timeout_ms")]
    pub timeout_ms: u64,
    /// Most events per export request.
    #[serde(
        default = "default_otlp_batch_size",
        deserialize_with = "otlp_batch_size"
    )]
    pub batch_size: u64,
    /// How long a request of fewer than `batch_size` events may wait for more, in
    /// milliseconds (0 sends at once).
    #[serde(
        default = "default_otlp_linger_ms",
        deserialize_with = "otlp_linger_ms"
    )]
    pub linger_ms: u64,
    /// `service.name` of every record; empty for each event's application.
    #[serde(default)]
    pub service_name: String,
    /// The cursor file (last acknowledged seq), relative to the configuration file's
    /// directory.
    #[serde(default = "default_otlp_cursor")]
    pub cursor: String,
    /// Where permanently rejected records are kept; empty for `<cursor>.quarantine.jsonl`.
    #[serde(default)]
    pub quarantine: String,
    /// Rejections in a row, of a record sent alone, that quarantine it.
    #[serde(
        default = "default_otlp_reject_attempts",
        deserialize_with = "otlp_reject_attempts"
    )]
    pub reject_attempts: u64,
    /// A PEM file of certificate authorities trusted for `https://` endpoints instead of
    /// the public roots (relative to the configuration file's directory); empty for
    /// `OTEL_EXPORTER_OTLP_CERTIFICATE` or the public roots.
    #[serde(default)]
    pub ca_file: String,
    /// A PEM client certificate chain for mutual TLS; empty for
    /// `OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE` or none.
    #[serde(default)]
    pub client_cert_file: String,
    /// The PEM private key of `client_cert_file`; empty for
    /// `OTEL_EXPORTER_OTLP_CLIENT_KEY` or none.
    #[serde(default)]
    pub client_key_file: String,
}

impl OtlpConfig {
    /// An `otlp` sink with every default, exporting to `endpoint`.
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            name: default_otlp_name(),
            endpoint: endpoint.into(),
            protocol: None,
            headers: BTreeMap::new(),
            compression: None,
            timeout_ms: 0,
            batch_size: default_otlp_batch_size(),
            linger_ms: default_otlp_linger_ms(),
            service_name: String::new(),
            cursor: default_otlp_cursor(),
            quarantine: String::new(),
            ca_file: String::new(),
            client_cert_file: String::new(),
            client_key_file: String::new(),
            reject_attempts: default_otlp_reject_attempts(),
        }
    }
}

fn default_otlp_name() -> String {
    "otlp".to_owned()
}

fn default_otlp_batch_size() -> u64 {
    512
}

fn default_otlp_linger_ms() -> u64 {
    100
}

fn default_otlp_cursor() -> String {
    "otlp.cursor".to_owned()
}

fn default_otlp_reject_attempts() -> u64 {
    3
}

use heliosdb_engine::ranged;

/// Limits, in one place; `docs/CONFIG.md` quotes them.
pub mod limits {
    /// Most events per sink delivery.
    pub const MAX_BATCH: u64 = 1_000_000;
    /// Longest recorded statement text, in characters (1 MiB).
    pub const MAX_QUERY_LENGTH: u64 = 1 << 20;
    /// A hundred years.
    pub const MAX_RETENTION_DAYS: u64 = 36_500;
    /// 1 TiB, in MiB.
    pub const MAX_MEBIBYTES: u64 = 1 << 20;
}

ranged! {
    group_commit_ms: 1, 60_000, "a number of milliseconds";
    busy_timeout_ms: 0, 3_600_000, "a number of milliseconds";
    memory_limit_mb: 0, limits::MAX_MEBIBYTES, "a number of MiB";
    cache_mb: 1, limits::MAX_MEBIBYTES, "a number of MiB";
    max_query_length: 1, limits::MAX_QUERY_LENGTH, "a number of characters";
    async_buffer_size: 1, limits::MAX_BATCH, "a number of events";
    retention_days: 0, limits::MAX_RETENTION_DAYS, "a number of days (0 keeps events forever)";
    auto_prune_interval_seconds: 1, 31_536_000, "a number of seconds (1 to one year)";
    otlp_timeout_ms: 0, 600_000, "a number of milliseconds (0 for the environment or 10000)";
    otlp_batch_size: 1, 100_000, "a number of events";
    otlp_linger_ms: 0, 5_000, "a number of milliseconds";
    otlp_reject_attempts: 1, 100, "a number of attempts";
}

fn checksums<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    if bool::deserialize(d)? {
        Ok(true)
    } else {
        Err(de::Error::custom(
            "the audit trail is always hash-chained and cannot be turned off; \
             remove enable_checksums or set it to true",
        ))
    }
}
