//! The `[[audit.sinks]]` entry `kind = "checkpoint"` of `heliosdb.toml` (`docs/CONFIG.md`):
//! the checkpoint sink's own configuration, which `heliosdb-config` deserializes as it is,
//! checks with [`CheckpointConfig::validate`] and turns into the running sink with
//! [`CheckpointConfig::build`].

use crate::{CheckpointFiles, CheckpointSink, SignerKey};
use heliosdb_engine::ranged;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// `kind = "checkpoint"`: exactly one of `key` and `key_env` names the signing key, and
/// exactly one of `path` and `dir` where the checkpoints go.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointConfig {
    /// The private key file (`heliosdb keygen`); relative to the configuration file's
    /// directory. Empty when `key_env` is used.
    #[serde(default)]
    pub key: String,
    /// An environment variable holding the private key text instead of a file.
    #[serde(default)]
    pub key_env: String,
    /// The file checkpoints are appended to; relative to the configuration file's
    /// directory. Exactly one of `path` and `dir`.
    #[serde(default)]
    pub path: String,
    /// A directory that gets one file per checkpoint, `<size, 20 digits>.checkpoint`,
    /// each written atomically; relative to the configuration file's directory.
    #[serde(default)]
    pub dir: String,
    /// Sign after this many new events.
    #[serde(default = "default_every_events", deserialize_with = "every_events")]
    pub every_events: u64,
    /// Sign at least this often, in seconds, while events are waiting.
    #[serde(default = "default_every_seconds", deserialize_with = "every_seconds")]
    pub every_seconds: u64,
}

fn default_every_events() -> u64 {
    1000
}

fn default_every_seconds() -> u64 {
    60
}

ranged! {
    every_events: 1, 1_000_000_000, "a number of events";
    every_seconds: 1, 86_400, "a number of seconds";
}

/// A `checkpoint` entry that cannot work: the key at fault, relative to the entry
/// (`key`, `key_env`; none for a conflict between keys), and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointConfigError {
    /// The key, relative to the sink's entry, when one is at fault.
    pub key: Option<&'static str>,
    /// What is wrong.
    pub message: String,
}

impl CheckpointConfig {
    /// Checks the entry on its own (no file is touched).
    pub fn validate(&self) -> Result<(), CheckpointConfigError> {
        let conflict = |message: &str| CheckpointConfigError {
            key: None,
            message: message.to_owned(),
        };
        if self.path.trim().is_empty() == self.dir.trim().is_empty() {
            return Err(conflict(
                "a checkpoint sink needs exactly one of `path` (a file the checkpoints are appended to) and `dir` (a directory with one file per checkpoint)",
            ));
        }
        if self.key.trim().is_empty() == self.key_env.trim().is_empty() {
            return Err(conflict(
                "a checkpoint sink needs exactly one of `key` (a private key file from `heliosdb keygen`) and `key_env` (a variable holding the key)",
            ));
        }
        Ok(())
    }

    /// Where the checkpoints go, resolved by `resolve` (relative to the configuration
    /// file): a directory or a file. The signing commands check the ledger against the
    /// last checkpoint there.
    pub fn place(&self, resolve: impl Fn(&str) -> PathBuf) -> Option<CheckpointFiles> {
        if !self.dir.trim().is_empty() {
            Some(CheckpointFiles::Dir(resolve(&self.dir)))
        } else if !self.path.trim().is_empty() {
            Some(CheckpointFiles::File(resolve(&self.path)))
        } else {
            None
        }
    }

    /// The running sink: reads the signing key (the file `key`, resolved by `resolve`, or
    /// the variable `key_env`).
    pub fn build(
        &self,
        resolve: impl Fn(&str) -> PathBuf,
    ) -> Result<CheckpointSink, CheckpointConfigError> {
        let key = if self.key_env.trim().is_empty() {
            SignerKey::from_file(resolve(&self.key)).map_err(|e| CheckpointConfigError {
                key: Some("key"),
                message: e.to_string(),
            })?
        } else {
            let name = self.key_env.trim();
            let text = std::env::var(name).map_err(|_| CheckpointConfigError {
                key: Some("key_env"),
                message: format!("environment variable {name} is not set"),
            })?;
            SignerKey::parse(&text).map_err(|e| CheckpointConfigError {
                key: Some("key_env"),
                message: format!("{name}: {e}"),
            })?
        };
        let every = Duration::from_secs(self.every_seconds);
        Ok(if self.dir.trim().is_empty() {
            CheckpointSink::new(key, resolve(&self.path), self.every_events, every)
        } else {
            CheckpointSink::in_dir(key, resolve(&self.dir), self.every_events, every)
        })
    }
}
