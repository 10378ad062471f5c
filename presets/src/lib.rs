//! # heliosdb-config
//!
//! `heliosdb.toml`: the configuration of a HeliosDB-Lite database, its compliance presets
//! (SOC 2, HIPAA, GDPR, PCI DSS, FDA 21 CFR Part 11) and the resolution of both into the
//! engine's options, with the source of every value.
//!
//! A value comes from, lowest to highest precedence: the built-in **default**, the
//! **preset** named by `audit.preset`, the **file**, and **environment** variables
//! `HELIOSDB_<TABLE>__<KEY>` (`HELIOSDB_AUDIT__LOG_SELECT=false`,
//! `HELIOSDB_AUDIT__CAPTURE_METADATA__CAPTURE_CLIENT_IP=false`). Tables merge key by key;
//! a key's value — a list included — replaces the value below it whole. Every key is
//! documented in `docs/CONFIG.md`.
//!
//! ```
//! use heliosdb_config::Config;
//! let config = Config::from_toml("[audit]\npreset = \"hipaa\"\nlog_dml = true\n")?;
//! assert!(config.settings.audit.log_select); // from the preset
//! assert_eq!(config.settings.audit.retention_days, 2555);
//! let error = Config::from_toml("[audit]\nlog_selct = true\n").unwrap_err();
//! assert!(error.to_string().contains("did you mean `log_select`?"));
//! # Ok::<(), heliosdb_config::ConfigError>(())
//! ```
#![deny(unsafe_code)]

mod error;
mod model;
mod preset;
mod show;

pub use error::ConfigError;
pub use heliosdb_checkpoint::CheckpointConfig;
pub use heliosdb_jsonl::JsonlFileConfig;
pub use model::{
    AuditConfig, CaptureMetadata, ConfigFile, DatabaseConfig, Durability, OtlpCompression,
    OtlpConfig, OtlpProtocol, RedactionMode, SinkConfig, limits,
};
pub use preset::Preset;

use heliosdb_engine::audit::{AuditPolicy, AuditSink, MetadataCapture, ParamCapture, Redaction};
use heliosdb_engine::{DatabaseOptions, DurabilityMode, RetentionOptions};
#[cfg(feature = "otlp")]
use heliosdb_otlp::{Compression, OtlpOptions, OtlpSink, Protocol};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Table;

/// The file looked for next to a database: `<database directory>/heliosdb.toml`.
pub const FILE_NAME: &str = "heliosdb.toml";

/// Prefix of environment overrides.
pub const ENV_PREFIX: &str = "HELIOSDB_";

/// Where a resolved value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The built-in default.
    Default,
    /// A preset.
    Preset(Preset),
    /// The configuration file.
    File(PathBuf),
    /// An environment variable.
    Env(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::Preset(preset) => write!(f, "preset {preset}"),
            Source::File(path) => write!(f, "file {}", path.display()),
            Source::Env(var) => write!(f, "env {var}"),
        }
    }
}

/// A resolved configuration: the settings, and where each came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The resolved settings.
    pub settings: ConfigFile,
    sources: BTreeMap<String, Source>,
    /// Directory that relative paths are taken from: the file's, else the working one.
    base_dir: PathBuf,
    file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            settings: ConfigFile::default(),
            sources: BTreeMap::new(),
            base_dir: PathBuf::new(),
            file: None,
        }
    }
}

/// One layer of settings: its source, its raw table and, for messages, its text.
struct Layer {
    source: Source,
    table: Table,
}

/// Parses and checks one TOML text as a whole `heliosdb.toml` (so every unknown key, bad
/// type and out-of-range value is reported with its line), then returns its raw table.
fn parse_layer(text: &str, origin: &str) -> Result<Table, ConfigError> {
    let located = |error: toml::de::Error| {
        let (message, unknown) = error::explain(error.message());
        let offset = error.span().map_or(0, |span| span.start);
        let (line, column) = error::line_column(text, offset);
        ConfigError::Invalid {
            origin: origin.to_owned(),
            line,
            column,
            key: error::key_path_at(text, offset, unknown.as_deref()),
            message,
        }
    };
    toml::from_str::<ConfigFile>(text).map_err(located)?;
    toml::from_str::<Table>(text).map_err(located)
}

/// `HELIOSDB_AUDIT__LOG_SELECT` → `["audit", "log_select"]`; `None` for variables that
/// are not overrides (no `__`).
fn env_path(var: &str) -> Option<Vec<String>> {
    let rest = var.strip_prefix(ENV_PREFIX)?;
    rest.contains("__")
        .then(|| rest.split("__").map(str::to_ascii_lowercase).collect())
}

/// The environment layers, one per variable, each checked on its own so an error names it.
fn env_layers(env: &[(String, String)]) -> Result<Vec<Layer>, ConfigError> {
    let mut layers = Vec::new();
    for (var, raw) in env {
        let Some(path) = env_path(var) else { continue };
        // A TOML value (`true`, `30`, `["a", "b"]`, `"text"`), else the text itself.
        let value = toml::from_str::<Table>(&format!("v = {raw}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(raw.clone()));
        let mut node = value;
        for key in path.iter().rev() {
            node = toml::Value::Table(Table::from_iter([(key.clone(), node)]));
        }
        let toml::Value::Table(table) = node else {
            continue;
        };
        toml::Value::Table(table.clone())
            .try_into::<ConfigFile>()
            .map_err(|error| ConfigError::Env {
                var: var.clone(),
                message: format!("{}: {}", path.join("."), error::explain(error.message()).0),
            })?;
        layers.push(Layer {
            source: Source::Env(var.clone()),
            table,
        });
    }
    Ok(layers)
}

fn merge(base: &mut Table, over: &Table) {
    for (key, value) in over {
        match (base.get_mut(key), value) {
            (Some(toml::Value::Table(below)), toml::Value::Table(above)) => merge(below, above),
            _ => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Marks every leaf of `table` (a list is one leaf) as coming from `source`.
fn mark(table: &Table, prefix: &str, source: &Source, sources: &mut BTreeMap<String, Source>) {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(inner) => mark(inner, &path, source, sources),
            _ => {
                sources.insert(path, source.clone());
            }
        }
    }
}

impl Config {
    /// Loads `path`, with the preset it names and the process's `HELIOSDB_*` environment
    /// overrides.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        Config::load(Some(path.as_ref()), &process_env())
    }

    /// Defaults, then the process's `HELIOSDB_*` environment overrides (and the preset
    /// they name): for containers without a file.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::load(None, &process_env())
    }

    /// Parses `text` as a `heliosdb.toml`, with its preset; no environment overrides.
    /// Relative paths are taken from the working directory.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        Config::resolve(Some((text, Source::File(PathBuf::from("<string>")))), &[])
    }

    /// `<dir>/heliosdb.toml` loaded as by [`Config::from_file`], or `None` when there is
    /// no such file.
    pub fn discover(dir: impl AsRef<Path>) -> Result<Option<Config>, ConfigError> {
        let path = dir.as_ref().join(FILE_NAME);
        if path.is_file() {
            Config::from_file(path).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Loads an optional file and the given environment (name, value) pairs; only
    /// `HELIOSDB_*` variables with a `__` are read.
    pub fn load(file: Option<&Path>, env: &[(String, String)]) -> Result<Config, ConfigError> {
        let text = match file {
            Some(path) => {
                Some(
                    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                        path: path.to_path_buf(),
                        source,
                    })?,
                )
            }
            None => None,
        };
        let mut config = Config::resolve(
            text.as_deref()
                .zip(file)
                .map(|(text, path)| (text, Source::File(path.to_path_buf()))),
            env,
        )?;
        if let Some(path) = file {
            config.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
            config.file = Some(path.to_path_buf());
        }
        Ok(config)
    }

    fn resolve(
        file: Option<(&str, Source)>,
        env: &[(String, String)],
    ) -> Result<Config, ConfigError> {
        let file_layer = match &file {
            Some((text, source)) => {
                let origin = match source {
                    Source::File(path) => path.display().to_string(),
                    other => other.to_string(),
                };
                Some(Layer {
                    table: parse_layer(text, &origin)?,
                    source: source.clone(),
                })
            }
            None => None,
        };
        let env_layers = env_layers(env)?;
        // The preset is named by the file or the environment, the environment winning.
        let mut named = Table::new();
        for layer in file_layer.iter().chain(&env_layers) {
            merge(&mut named, &layer.table);
        }
        let preset: Preset = toml::Value::Table(named)
            .try_into::<ConfigFile>()
            .map(|c| c.audit.preset)
            .unwrap_or_default();
        let preset_layer = match preset {
            Preset::None => None,
            preset => {
                let origin = format!("preset {preset} (presets/{})", preset.file_name());
                let table = parse_layer(preset.source(), &origin)?;
                let names_preset = table
                    .get("audit")
                    .and_then(toml::Value::as_table)
                    .is_some_and(|audit| audit.contains_key("preset"));
                if names_preset {
                    return Err(ConfigError::Conflict {
                        message: format!("{origin}: a preset cannot name another preset"),
                    });
                }
                Some(Layer {
                    table,
                    source: Source::Preset(preset),
                })
            }
        };

        let mut merged =
            Table::try_from(ConfigFile::default()).map_err(|e| ConfigError::Conflict {
                message: format!("the built-in defaults do not serialize: {e}"),
            })?;
        let mut sources = BTreeMap::new();
        for layer in preset_layer.iter().chain(&file_layer).chain(&env_layers) {
            merge(&mut merged, &layer.table);
            mark(&layer.table, "", &layer.source, &mut sources);
        }
        let settings: ConfigFile =
            toml::Value::Table(merged)
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Conflict {
                    message: format!("the merged configuration is invalid: {}", e.message()),
                })?;
        let config = Config {
            settings,
            sources,
            base_dir: PathBuf::new(),
            file: None,
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks that settings valid alone agree with each other.
    fn validate(&self) -> Result<(), ConfigError> {
        let audit = &self.settings.audit;
        let set_by = |key: &str| self.source(key).to_string();
        if audit.audit_trail_lockdown && audit.auto_prune {
            return Err(ConfigError::Conflict {
                message: format!(
                    "audit.audit_trail_lockdown = true ({}) forbids pruning, but audit.auto_prune = true ({}); set one of them to false",
                    set_by("audit.audit_trail_lockdown"),
                    set_by("audit.auto_prune")
                ),
            });
        }
        if audit.auto_prune && audit.retention_days == 0 {
            return Err(ConfigError::Conflict {
                message: format!(
                    "audit.auto_prune = true ({}) needs audit.retention_days above 0 ({} keeps events forever)",
                    set_by("audit.auto_prune"),
                    set_by("audit.retention_days")
                ),
            });
        }
        for (i, sink) in audit.sinks.iter().enumerate() {
            let conflict = |message: &str| ConfigError::Conflict {
                message: format!("audit.sinks[{i}] ({}): {message}", set_by("audit.sinks")),
            };
            match sink {
                SinkConfig::JsonlFile(file) => {
                    if let Err(error) = file.validate() {
                        return Err(conflict(&error.message));
                    }
                }
                SinkConfig::Checkpoint(c) => {
                    if let Err(error) = c.validate() {
                        return Err(conflict(&error.message));
                    }
                }
                SinkConfig::Otlp(otlp) if otlp.cursor.trim().is_empty() => {
                    return Err(conflict("an otlp sink needs a `cursor` file path"));
                }
                SinkConfig::Otlp(otlp) => {
                    let same = audit.sinks[..i].iter().find_map(|other| match other {
                        SinkConfig::Otlp(o) if o.name == otlp.name || o.cursor == otlp.cursor => {
                            Some(o)
                        }
                        _ => None,
                    });
                    if same.is_some() {
                        return Err(conflict(
                            "two otlp sinks share a `name` or a `cursor` file; give each its own",
                        ));
                    }
                }
            }
        }
        if audit.require_checkpoints
            && !audit
                .sinks
                .iter()
                .any(|s| matches!(s, SinkConfig::Checkpoint(_)))
        {
            return Err(ConfigError::Conflict {
                message: format!(
                    "audit.require_checkpoints = true ({}) needs a [[audit.sinks]] entry with kind = \"checkpoint\" (create a key with `heliosdb keygen`)",
                    set_by("audit.require_checkpoints")
                ),
            });
        }
        Ok(())
    }

    /// Where the value at dotted `path` (`audit.log_select`) came from.
    pub fn source(&self, path: &str) -> Source {
        self.sources.get(path).cloned().unwrap_or(Source::Default)
    }

    /// The file this configuration was loaded from, if any.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// `path` as written in the configuration, taken from the file's directory when
    /// relative.
    pub fn resolve_path(&self, path: &str) -> PathBuf {
        let path = Path::new(path);
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }

    /// `database.path`, resolved; `None` when empty.
    pub fn database_path(&self) -> Option<PathBuf> {
        let path = self.settings.database.path.trim();
        (!path.is_empty()).then(|| self.resolve_path(path))
    }

    /// The audit policy: `[audit]` filters, capture and redaction.
    pub fn audit_policy(&self) -> AuditPolicy {
        let audit = &self.settings.audit;
        let capture = &audit.capture_metadata;
        AuditPolicy {
            enabled: audit.enabled,
            log_ddl: audit.log_ddl,
            log_dml: audit.log_dml,
            log_select: audit.log_select,
            log_transactions: audit.log_transactions,
            log_auth: audit.log_auth,
            log_app: audit.log_app,
            include_tables: audit.include_tables.clone(),
            exclude_tables: audit.exclude_tables.clone(),
            include_users: audit.include_users.clone(),
            exclude_users: audit.exclude_users.clone(),
            max_query_length: usize::try_from(audit.max_query_length).unwrap_or(usize::MAX),
            params: if audit.redact_parameters {
                ParamCapture::Redacted
            } else {
                ParamCapture::Values
            },
            capture: MetadataCapture {
                client_addr: capture.capture_client_ip,
                application: capture.capture_application_name,
                database: capture.capture_database_name,
                duration: capture.capture_execution_time,
                custom: capture.capture_custom_fields,
            },
            redaction: Redaction {
                columns: audit.redact_columns.clone(),
                mode: match audit.redaction_mode {
                    RedactionMode::Hash => heliosdb_engine::audit::RedactionMode::Hash,
                    RedactionMode::Encrypt => heliosdb_engine::audit::RedactionMode::Encrypt,
                },
            },
        }
    }

    /// The engine options: durability, timeouts, name, audit policy, sink batch size,
    /// retention.
    pub fn database_options(&self) -> DatabaseOptions {
        let database = &self.settings.database;
        DatabaseOptions {
            durability: match database.durability {
                Durability::Sync => DurabilityMode::Sync,
                Durability::Group => DurabilityMode::Group {
                    interval: Duration::from_millis(database.group_commit_ms),
                },
            },
            busy_timeout: Duration::from_millis(database.busy_timeout_ms),
            name: database.name.clone(),
            audit: self.audit_policy(),
            sink_batch_size: usize::try_from(self.settings.audit.async_buffer_size)
                .unwrap_or(usize::MAX),
            retention: self.retention_options(),
            // Read-only is how a program opens someone else's database, not a setting of
            // the database: `DatabaseBuilder::read_only`.
            read_only: false,
        }
    }

    /// Retention: `retention_days`, `auto_prune`, `auto_prune_interval_seconds`,
    /// `legal_hold`, `audit_trail_lockdown`, `require_checkpoints`.
    pub fn retention_options(&self) -> RetentionOptions {
        let audit = &self.settings.audit;
        RetentionOptions {
            retention_days: audit.retention_days,
            auto_prune: audit.auto_prune,
            auto_prune_interval: std::time::Duration::from_secs(audit.auto_prune_interval_seconds),
            legal_hold: audit.legal_hold,
            lockdown: audit.audit_trail_lockdown,
            require_checkpoints: audit.require_checkpoints,
        }
    }

    /// The on-disk block cache, in bytes.
    pub fn cache_bytes(&self) -> u64 {
        self.settings.database.cache_mb.saturating_mul(1 << 20)
    }

    /// The write-memory limit in bytes; `None` for the backend's default.
    pub fn memory_limit_bytes(&self) -> Option<u64> {
        match self.settings.database.memory_limit_mb {
            0 => None,
            mb => Some(mb.saturating_mul(1 << 20)),
        }
    }

    /// Where the configured checkpoint sinks keep their checkpoints: each one's `path`
    /// (a file) or `dir` (a directory), resolved against the configuration file's
    /// directory, with `true` for a directory.
    pub fn checkpoint_places(&self) -> Vec<(PathBuf, bool)> {
        self.settings
            .audit
            .sinks
            .iter()
            .filter_map(|sink| match sink {
                SinkConfig::Checkpoint(c) => match c.place(|path| self.resolve_path(path))? {
                    heliosdb_checkpoint::CheckpointFiles::Dir(dir) => Some((dir, true)),
                    heliosdb_checkpoint::CheckpointFiles::File(file) => Some((file, false)),
                },
                _ => None,
            })
            .collect()
    }

    /// The follower sinks `[[audit.sinks]]` lists, ready to attach. Fails when a
    /// checkpoint sink's key cannot be read.
    pub fn build_sinks(&self) -> Result<Vec<Box<dyn AuditSink>>, ConfigError> {
        let mut sinks: Vec<Box<dyn AuditSink>> = Vec::new();
        for (i, sink) in self.settings.audit.sinks.iter().enumerate() {
            match sink {
                SinkConfig::JsonlFile(file) => {
                    sinks.push(Box::new(file.build(|path| self.resolve_path(path))));
                }
                SinkConfig::Checkpoint(c) => {
                    let sink =
                        c.build(|path| self.resolve_path(path))
                            .map_err(|e| ConfigError::Sink {
                                key: match e.key {
                                    Some(key) => format!("audit.sinks[{i}].{key}"),
                                    None => format!("audit.sinks[{i}]"),
                                },
                                message: e.message,
                            })?;
                    sinks.push(Box::new(sink));
                }
                #[cfg(not(feature = "otlp"))]
                SinkConfig::Otlp(_) => {
                    return Err(ConfigError::Sink {
                        key: format!("audit.sinks[{i}].kind"),
                        message: "this build has no OTLP sink: build heliosdb-lite with the `otlp` feature (and `otlp-grpc`, `otlp-tls` for gRPC and https endpoints)".to_owned(),
                    });
                }
                #[cfg(feature = "otlp")]
                SinkConfig::Otlp(otlp) => {
                    let sink = OtlpSink::new(self.otlp_options(otlp)).map_err(|e| match e {
                        // A setting of the file: name it in full. A variable names itself.
                        heliosdb_otlp::OtlpError::Config { key, message }
                            if !key.starts_with("OTEL_") =>
                        {
                            ConfigError::Sink {
                                key: format!("audit.sinks[{i}].{key}"),
                                message,
                            }
                        }
                        other => ConfigError::Sink {
                            key: format!("audit.sinks[{i}]"),
                            message: other.to_string(),
                        },
                    })?;
                    sinks.push(Box::new(sink));
                }
            }
        }
        Ok(sinks)
    }

    #[cfg(feature = "otlp")]
    /// The options of an `otlp` sink entry (its unset values still to be filled from
    /// the `OTEL_EXPORTER_OTLP_*` environment).
    pub fn otlp_options(&self, otlp: &OtlpConfig) -> OtlpOptions {
        let mut options = OtlpOptions::new(self.resolve_path(otlp.cursor.trim()))
            .name(otlp.name.clone())
            .batch_size(usize::try_from(otlp.batch_size).unwrap_or(usize::MAX))
            .linger(Duration::from_millis(otlp.linger_ms))
            .service_name(otlp.service_name.clone())
            .reject_attempts(u32::try_from(otlp.reject_attempts).unwrap_or(u32::MAX));
        options.headers = otlp.headers.clone();
        if !otlp.endpoint.trim().is_empty() {
            options = options.endpoint(otlp.endpoint.trim());
        }
        if let Some(protocol) = otlp.protocol {
            options = options.protocol(match protocol {
                OtlpProtocol::HttpProtobuf => Protocol::HttpProtobuf,
                OtlpProtocol::Grpc => Protocol::Grpc,
            });
        }
        if let Some(compression) = otlp.compression {
            options = options.compression(match compression {
                OtlpCompression::None => Compression::None,
                OtlpCompression::Gzip => Compression::Gzip,
            });
        }
        if otlp.timeout_ms > 0 {
            options = options.timeout(Duration::from_millis(otlp.timeout_ms));
        }
        if !otlp.quarantine.trim().is_empty() {
            options = options.quarantine_path(self.resolve_path(otlp.quarantine.trim()));
        }
        let file = |path: &str| (!path.trim().is_empty()).then(|| self.resolve_path(path.trim()));
        options.ca_file = file(&otlp.ca_file);
        options.client_cert_file = file(&otlp.client_cert_file);
        options.client_key_file = file(&otlp.client_key_file);
        options
    }

    /// The resolved configuration as TOML, each value commented with its source (what
    /// `heliosdb config show` prints). The text is itself a valid `heliosdb.toml`.
    pub fn render(&self) -> String {
        show::render(self)
    }
}

/// The process's `HELIOSDB_*` variables.
fn process_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect()
}
