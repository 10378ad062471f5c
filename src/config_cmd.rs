//! `heliosdb config show`, `config check`, `presets` and `audit sinks`, and how the
//! command line finds its configuration.

use anyhow::Context;
use heliosdb_lite::config::FILE_NAME;
use heliosdb_lite::{Config, Database, Preset};
use std::fmt;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// A configuration file that `config check` found invalid (exit status 1).
#[derive(Debug)]
pub struct InvalidConfig(pub String);

impl fmt::Display for InvalidConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidConfig {}

/// The configuration for this run: `--config FILE`; else `DB/heliosdb.toml` when present;
/// else the defaults. The `HELIOSDB_*` environment applies on top in every case.
pub fn resolve(config: Option<&Path>, db: Option<&Path>) -> anyhow::Result<Config> {
    if let Some(file) = config {
        return Ok(Config::from_file(file)?);
    }
    if let Some(dir) = db
        && let Some(config) = Config::discover(dir)
            .with_context(|| format!("using {}", dir.join(FILE_NAME).display()))?
    {
        return Ok(config);
    }
    Ok(Config::from_env()?)
}

/// `heliosdb config check FILE`.
pub fn check(file: &Path, mut out: impl Write) -> anyhow::Result<()> {
    match Config::load(Some(file), &[]) {
        Ok(config) => {
            let preset = config.settings.audit.preset;
            writeln!(
                out,
                "{}: valid{}",
                file.display(),
                match preset {
                    Preset::None => String::new(),
                    preset => format!(" (preset {preset})"),
                }
            )?;
            Ok(())
        }
        Err(error) => Err(InvalidConfig(error.to_string()).into()),
    }
}

/// `heliosdb presets`.
pub fn presets(mut out: impl Write) -> anyhow::Result<()> {
    let width = Preset::ALL
        .iter()
        .map(|p| p.name().len())
        .max()
        .unwrap_or(0);
    for preset in Preset::ALL {
        writeln!(out, "{:width$}  {}", preset.name(), preset.purpose())?;
    }
    writeln!(
        out,
        "\nSelect one with `[audit] preset = \"NAME\"` in heliosdb.toml; `heliosdb config show` shows what it sets."
    )?;
    Ok(())
}

/// `heliosdb audit sinks`: waits up to `wait_secs` for every sink to catch up with the
/// ledger, then prints where each stands.
pub fn sinks(db: &Database, wait_secs: u64, mut out: impl Write) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(wait_secs);
    let mut status = db.sink_status();
    while status.iter().any(|s| s.lag() > 0) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        status = db.sink_status();
    }
    if status.is_empty() {
        writeln!(
            out,
            "no sinks configured (see [[audit.sinks]] in docs/CONFIG.md)"
        )?;
        return Ok(());
    }
    for sink in &status {
        // Lag in events, and in time from the oldest event still waiting.
        let lag = match sink.lag() {
            0 => "lag 0".to_owned(),
            events => format!(
                "lag {events} events, {:.1} s",
                sink.lag_time().as_secs_f64()
            ),
        };
        writeln!(
            out,
            "{}: delivered {} of {} ({lag}){}",
            sink.name,
            sink.delivered_seq,
            sink.head_seq,
            sink.last_error
                .as_deref()
                .map(|e| format!("; last error: {e}"))
                .unwrap_or_default()
        )?;
    }
    Ok(())
}
