//! `heliosdb config show`, `config check`, `presets` and `audit sinks`, and how the
//! command line finds its configuration.

use anyhow::Context;
use heliosdb_lite::config::FILE_NAME;
use heliosdb_lite::engine::audit::prune;
use heliosdb_lite::engine::audit::table::timestamp;
use heliosdb_lite::engine::catalog::KS_CATALOG;
use heliosdb_lite::{Config, Database, FjallBackend, Preset, StorageBackend, StorageError};
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

/// `heliosdb config show`: the resolved configuration; with `--db`, a legal hold placed on
/// that database (`heliosdb audit hold on`) is named under `legal_hold`, since it refuses
/// pruning whatever the key says.
pub fn show(config: &Config, db: Option<&Path>, mut out: impl Write) -> anyhow::Result<()> {
    let rendered = config.render();
    let note = db.map(placed_hold).transpose()?.flatten();
    for line in rendered.lines() {
        writeln!(out, "{line}")?;
        if let Some(note) = &note
            && line.starts_with("legal_hold = ")
        {
            writeln!(out, "{note}")?;
        }
    }
    Ok(())
}

/// The comment naming the legal hold placed on the database in `dir`, if there is one.
fn placed_hold(dir: &Path) -> anyhow::Result<Option<String>> {
    // Only a directory that already holds a database: opening creates one.
    if !dir.join("lock").is_file() {
        return Ok(None);
    }
    let backend = match FjallBackend::open(dir) {
        Ok(backend) => backend,
        Err(StorageError::Locked { .. }) => {
            return Ok(Some(
                "# (the database is open elsewhere: a legal hold placed on it is not shown)"
                    .to_owned(),
            ));
        }
        Err(error) => return Err(error).context(format!("reading {}", dir.display())),
    };
    // A directory without a catalog holds no hold.
    if !backend.keyspaces()?.iter().any(|k| k == KS_CATALOG) {
        return Ok(None);
    }
    let snapshot = backend.snapshot()?;
    let hold = prune::load_hold(&*snapshot)
        .with_context(|| format!("reading the legal hold of {}", dir.display()))?;
    Ok(hold.map(|hold| {
        format!(
            "# a legal hold is active since {} (heliosdb audit hold) by {}: {}",
            timestamp(hold.since_us).format("%Y-%m-%d %H:%M:%S UTC"),
            hold.by,
            hold.reason
        )
    }))
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
