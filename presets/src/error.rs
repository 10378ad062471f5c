//! Configuration errors: each names where the bad setting came from (file and line, an
//! environment variable or a preset) and the key, and suggests the nearest valid key or
//! value for a typo.

use std::path::PathBuf;

/// Everything that can be wrong with a configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A setting in a file or preset is unknown, of the wrong type or out of range.
    #[error("{origin}:{line}:{column}: {key}: {message}")]
    Invalid {
        /// The file (or `preset <name>`).
        origin: String,
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        column: usize,
        /// Dotted path of the key (`audit.log_select`), as far as it could be told.
        key: String,
        /// What is wrong, with the allowed values and a suggestion where there is one.
        message: String,
    },
    /// An environment override is unknown or its value is invalid.
    #[error("environment variable {var}: {message}")]
    Env {
        /// The variable (`HELIOSDB_AUDIT__LOG_SELECT`).
        var: String,
        /// What is wrong.
        message: String,
    },
    /// A sink cannot be built (its key cannot be read, ...).
    #[error("{key}: {message}")]
    Sink {
        /// The setting (`audit.sinks[1].key`).
        key: String,
        /// What went wrong.
        message: String,
    },
    /// Settings that are valid alone contradict each other.
    #[error("{message}")]
    Conflict {
        /// Which keys, where they were set, and how to resolve it.
        message: String,
    },
}

impl From<ConfigError> for heliosdb_engine::Error {
    fn from(error: ConfigError) -> Self {
        heliosdb_engine::Error::Config(Box::new(error))
    }
}

/// The nearest of `candidates` to `word`, if close enough to be a likely typo.
pub(crate) fn nearest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), *c))
        .filter(|(distance, c)| *distance <= (c.len() / 3).max(2))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

/// Rewrites serde's "unknown field/variant" messages as "unknown key/value" with a
/// suggestion; other messages pass through. Returns the message and, for an unknown key,
/// the key itself.
pub(crate) fn explain(message: &str) -> (String, Option<String>) {
    let (what, kind) = if message.starts_with("unknown field") {
        ("key", true)
    } else if message.starts_with("unknown variant") {
        ("value", false)
    } else {
        return (message.to_owned(), None);
    };
    // serde quotes the offender and then each expected name in backticks.
    let quoted: Vec<&str> = message.split('`').skip(1).step_by(2).collect();
    let Some((offender, expected)) = quoted.split_first() else {
        return (message.to_owned(), None);
    };
    let mut text = format!("unknown {what} `{offender}`");
    match nearest(offender, expected) {
        Some(suggestion) => text.push_str(&format!("; did you mean `{suggestion}`?")),
        None if expected.is_empty() => {}
        None => {
            let list: Vec<String> = expected.iter().map(|e| format!("`{e}`")).collect();
            text.push_str(&format!("; expected one of {}", list.join(", ")));
        }
    }
    (text, kind.then(|| (*offender).to_owned()))
}

/// Line and column (1-based, column in characters) of byte `offset` in `text`.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

/// The dotted key path at byte `offset`: the nearest table header above it plus the key
/// written on its line (for a header line, the header alone).
pub(crate) fn key_path_at(text: &str, offset: usize, unknown: Option<&str>) -> String {
    let (line_no, _) = line_column(text, offset);
    let lines: Vec<&str> = text.lines().collect();
    let header_of = |line: &str| {
        let t = line.trim();
        t.starts_with('[').then(|| {
            t.trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned()
        })
    };
    let current = lines.get(line_no.saturating_sub(1)).copied().unwrap_or("");
    if let Some(header) = header_of(current) {
        return match unknown {
            // `[audit.capture_metdata]`: the header itself names the bad table.
            Some(key) if header.rsplit('.').next() != Some(key) => format!("{header}.{key}"),
            _ => header,
        };
    }
    let table = lines[..line_no.saturating_sub(1).min(lines.len())]
        .iter()
        .rev()
        .find_map(|l| header_of(l))
        .unwrap_or_default();
    let key = match unknown {
        Some(key) => key.to_owned(),
        None => current
            .split('=')
            .next()
            .unwrap_or_default()
            .trim()
            .trim_matches('"')
            .to_owned(),
    };
    match (table.is_empty(), key.is_empty()) {
        (true, _) => key,
        (false, true) => table,
        (false, false) => format!("{table}.{key}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_nearest_key() {
        let (message, key) = explain(
            "unknown field `log_selct`, expected one of `log_ddl`, `log_dml`, `log_select`",
        );
        assert_eq!(
            message,
            "unknown key `log_selct`; did you mean `log_select`?"
        );
        assert_eq!(key.as_deref(), Some("log_selct"));
        let (message, _) = explain("unknown variant `synk`, expected `sync` or `group`");
        assert_eq!(message, "unknown value `synk`; did you mean `sync`?");
        let (message, _) = explain("unknown field `zzz`, expected `path`");
        assert_eq!(message, "unknown key `zzz`; expected one of `path`");
        assert_eq!(explain("invalid type").0, "invalid type");
    }

    #[test]
    fn locates_lines_columns_and_keys() {
        let text = "[database]\ncache_mb = 0\n\n[audit]\n  log_selct = true\n";
        let offset = text.find("log_selct").expect("present");
        assert_eq!(line_column(text, offset), (5, 3));
        assert_eq!(
            key_path_at(text, offset, Some("log_selct")),
            "audit.log_selct"
        );
        let offset = text.find('0').expect("present");
        assert_eq!(key_path_at(text, offset, None), "database.cache_mb");
        assert_eq!(line_column("é\nx", 3), (2, 1));
    }
}
