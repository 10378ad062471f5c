//! `heliosdb config show`: the resolved configuration as TOML, each value commented with
//! where it came from.

use crate::{Config, Source};
use std::fmt::Write;
use toml::{Table, Value};

/// Column where source comments start.
const COMMENT_COLUMN: usize = 40;

fn line(out: &mut String, text: &str, comment: &str) {
    let pad = COMMENT_COLUMN.saturating_sub(text.chars().count()).max(1);
    // Writing into a String cannot fail.
    let _ = writeln!(out, "{text}{:pad$}# {comment}", "");
}

fn comment_for(config: &Config, path: &str) -> String {
    config.source(path).to_string()
}

fn is_table_array(value: &Value) -> bool {
    matches!(value, Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_table))
}

fn render_table(out: &mut String, config: &Config, path: &str, table: &Table) {
    let _ = writeln!(out, "\n[{path}]");
    for (key, value) in table {
        if value.is_table() || is_table_array(value) {
            continue;
        }
        line(
            out,
            &format!("{key} = {value}"),
            &comment_for(config, &format!("{path}.{key}")),
        );
    }
    for (key, value) in table {
        if let Value::Table(inner) = value {
            render_table(out, config, &format!("{path}.{key}"), inner);
        }
    }
    for (key, value) in table {
        if !is_table_array(value) {
            continue;
        }
        let array_path = format!("{path}.{key}");
        let comment = comment_for(config, &array_path);
        if let Value::Array(items) = value {
            for item in items.iter().filter_map(Value::as_table) {
                out.push('\n');
                line(out, &format!("[[{array_path}]]"), &comment);
                for (field, field_value) in item {
                    let _ = writeln!(out, "{field} = {field_value}");
                }
            }
        }
    }
}

pub(crate) fn render(config: &Config) -> String {
    let mut out = String::new();
    let preset = config.settings.audit.preset;
    let mut layers = vec!["defaults".to_owned()];
    if preset != crate::Preset::None {
        layers.push(format!("preset {preset}"));
    }
    if let Some(file) = config
        .sources
        .values()
        .find(|s| matches!(s, Source::File(_)))
    {
        layers.push(file.to_string());
    } else if let Some(file) = config.file() {
        layers.push(format!("file {}", file.display()));
    }
    if config
        .sources
        .values()
        .any(|source| matches!(source, Source::Env(_)))
    {
        layers.push("environment".to_owned());
    }
    let _ = writeln!(
        out,
        "# Resolved configuration ({}; later wins).",
        layers.join(" < ")
    );
    let _ = writeln!(
        out,
        "# The comment after each value says where it came from."
    );
    match Table::try_from(&config.settings) {
        Ok(table) => {
            for (key, value) in &table {
                if let Value::Table(inner) = value {
                    render_table(&mut out, config, key, inner);
                }
            }
        }
        Err(error) => {
            let _ = writeln!(out, "# cannot render: {error}");
        }
    }
    out
}
