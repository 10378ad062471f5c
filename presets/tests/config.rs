//! Loading, validation, precedence and rendering of `heliosdb.toml`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use heliosdb_config::{Config, ConfigError, Preset, Source};
use std::path::PathBuf;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The error for `text`, as (line, column, key, message).
fn invalid(text: &str) -> (usize, usize, String, String) {
    match Config::from_toml(text) {
        Err(ConfigError::Invalid {
            line,
            column,
            key,
            message,
            ..
        }) => (line, column, key, message),
        other => panic!("expected an invalid-config error for {text:?}, got {other:?}"),
    }
}

/// The smallest file using `preset`: FDA Part 11 requires a checkpoint sink.
fn preset_file(preset: Preset) -> String {
    let mut text = format!("[audit]\npreset = \"{preset}\"\n");
    if preset == Preset::FdaPart11 {
        text.push_str(
            "[[audit.sinks]]\nkind = \"checkpoint\"\nkey = \"device.key\"\npath = \"checkpoints.txt\"\n",
        );
    }
    text
}

#[test]
fn every_preset_loads_and_its_snapshot_is_reviewed() {
    for preset in Preset::ALL {
        let config = Config::from_toml(&preset_file(preset))
            .unwrap_or_else(|e| panic!("preset {preset}: {e}"));
        assert_eq!(config.settings.audit.preset, preset);
        insta::assert_snapshot!(format!("preset_{}", preset.name()), config.render());
    }
    insta::assert_snapshot!("defaults", Config::default().render());
}

#[test]
fn presets_set_what_their_controls_require() {
    let load = |preset: Preset| {
        Config::from_toml(&preset_file(preset))
            .expect("preset loads")
            .settings
            .audit
    };
    let hipaa = load(Preset::Hipaa);
    assert!(hipaa.log_select, "HIPAA logs reads");
    assert_eq!(hipaa.retention_days, 2555);
    let soc2 = load(Preset::Soc2);
    assert_eq!(soc2.retention_days, 90);
    let pci = load(Preset::PciDss);
    assert_eq!(pci.retention_days, 365);
    assert!(pci.redact_parameters && pci.log_select);
    let gdpr = load(Preset::Gdpr);
    assert!(gdpr.redact_parameters && !gdpr.capture_metadata.capture_client_ip);
    let fda = load(Preset::FdaPart11);
    assert!(fda.audit_trail_lockdown && !fda.auto_prune && fda.retention_days == 0);
    assert!(fda.log_select && fda.log_ddl && fda.log_dml && !fda.redact_parameters);
}

#[test]
fn preset_files_cite_their_controls() {
    let citations = [
        (Preset::Soc2, &["CC7.2", "CC6.1"][..]),
        (Preset::Hipaa, &["§164.312(b)", "§164.316(b)(2)(i)"][..]),
        (Preset::Gdpr, &["Art. 30", "Art. 17", "Art. 5(1)(e)"][..]),
        (Preset::PciDss, &["10.2", "10.5", "10.3"][..]),
        (Preset::FdaPart11, &["11.10(e)"][..]),
    ];
    for (preset, cites) in citations {
        for cite in cites {
            assert!(
                preset.source().contains(cite),
                "{} should cite {cite}",
                preset.file_name()
            );
        }
    }
}

#[test]
fn unknown_keys_point_to_file_line_and_suggest() {
    let (line, column, key, message) = invalid("[audit]\npreset = \"hipaa\"\n  log_selct = true\n");
    assert_eq!((line, column), (3, 3));
    assert_eq!(key, "audit.log_selct");
    assert_eq!(
        message,
        "unknown key `log_selct`; did you mean `log_select`?"
    );

    let (line, _, key, message) = invalid("[database]\n[audit.capture_metdata]\nx = 1\n");
    assert_eq!(line, 2);
    assert_eq!(key, "audit.capture_metdata");
    assert!(
        message.contains("did you mean `capture_metadata`?"),
        "{message}"
    );

    let (_, _, key, message) = invalid("[audit.capture_metadata]\ncapture_ip = false\n");
    assert_eq!(key, "audit.capture_metadata.capture_ip");
    assert!(message.contains("`capture_client_ip`"), "{message}");

    let (_, _, _, message) = invalid("[audit]\nzzzzzzzzzz = 1\n");
    assert!(
        message.starts_with("unknown key `zzzzzzzzzz`; expected one of `enabled`"),
        "{message}"
    );

    let (_, _, _, message) = invalid("[[audit.sinks]]\nkind = \"jsonl-file\"\npth = \"x\"\n");
    assert!(message.contains("did you mean `path`?"), "{message}");

    // The file name is in the message.
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("heliosdb.toml");
    std::fs::write(&file, "[audit]\nlog_selct = true\n").expect("write");
    let error = Config::load(Some(&file), &[])
        .expect_err("invalid")
        .to_string();
    assert_eq!(
        error,
        format!(
            "{}:2:1: audit.log_selct: unknown key `log_selct`; did you mean `log_select`?",
            file.display()
        )
    );
    let missing = Config::load(Some(&dir.path().join("nope.toml")), &[]).expect_err("missing");
    assert!(matches!(missing, ConfigError::Read { .. }), "{missing}");
}

#[test]
fn invalid_values_state_the_allowed_range() {
    let cases = [
        (
            "[audit]\nretention_days = -5\n",
            "audit.retention_days",
            "from 0 to 36500",
        ),
        (
            "[audit]\nmax_query_length = 0\n",
            "audit.max_query_length",
            "from 1 to 1048576",
        ),
        (
            "[audit]\nasync_buffer_size = 0\n",
            "audit.async_buffer_size",
            "from 1 to 1000000",
        ),
        (
            "[database]\ngroup_commit_ms = 0\n",
            "database.group_commit_ms",
            "from 1 to 60000",
        ),
        (
            "[database]\ncache_mb = 0\n",
            "database.cache_mb",
            "from 1 to 1048576",
        ),
        (
            "[audit]\nauto_prune_interval_seconds = 0\n",
            "audit.auto_prune_interval_seconds",
            "from 1 to 31536000",
        ),
        (
            "[database]\nmemory_limit_mb = -1\n",
            "database.memory_limit_mb",
            "from 0 to",
        ),
        (
            "[database]\nbusy_timeout_ms = 99999999\n",
            "database.busy_timeout_ms",
            "from 0 to 3600000",
        ),
        (
            "[database]\ndurability = \"synk\"\n",
            "database.durability",
            "did you mean `sync`?",
        ),
        (
            "[audit]\npreset = \"hipa\"\n",
            "audit.preset",
            "did you mean `hipaa`?",
        ),
        (
            "[audit]\npreset = \"iso27001\"\n",
            "audit.preset",
            "expected one of `none`, `soc2`",
        ),
        (
            "[audit]\nredaction_mode = \"rot13\"\n",
            "audit.redaction_mode",
            "`hash`",
        ),
        (
            "[audit]\nlog_select = \"yes\"\n",
            "audit.log_select",
            "expected a boolean",
        ),
        (
            "[audit]\nexclude_tables = \"cache\"\n",
            "audit.exclude_tables",
            "expected a sequence",
        ),
        (
            "[audit]\nenable_checksums = false\n",
            "audit.enable_checksums",
            "cannot be turned off",
        ),
        (
            "[[audit.sinks]]\nkind = \"otlpp\"\n",
            "audit.sinks.kind",
            "did you mean `otlp`?",
        ),
    ];
    for (text, expected_key, expected) in cases {
        let (line, _, key, message) = invalid(text);
        assert_eq!(line, 2, "{text:?}");
        assert_eq!(key, expected_key, "{text:?}");
        assert!(message.contains(expected), "{text:?}: {message}");
    }
    let (line, column, _, _) = invalid("[audit\n");
    assert_eq!((line, column), (1, 7));
}

#[test]
fn conflicting_settings_are_refused_with_their_sources() {
    let error = Config::from_toml(
        "[audit]\npreset = \"fda-part11\"\nauto_prune = true\nretention_days = 30\n",
    )
    .expect_err("lockdown forbids pruning")
    .to_string();
    assert!(
        error.contains("audit_trail_lockdown = true (preset fda-part11)"),
        "{error}"
    );
    assert!(
        error.contains("audit.auto_prune = true (file <string>)"),
        "{error}"
    );
    let error = Config::from_toml("[audit]\nauto_prune = true\n")
        .expect_err("nothing to prune")
        .to_string();
    assert!(
        error.contains("needs audit.retention_days above 0"),
        "{error}"
    );
    let error = Config::from_toml("[[audit.sinks]]\nkind = \"jsonl-file\"\npath = \" \"\n")
        .expect_err("no path")
        .to_string();
    assert!(
        error.contains("audit.sinks[0] (file <string>): a jsonl-file sink needs a file `path`"),
        "{error}"
    );
    let missing = invalid("[[audit.sinks]]\nkind = \"jsonl-file\"\n").3;
    assert!(missing.contains("missing field `path`"), "{missing}");
    for keys in ["", "key = \"a\"\nkey_env = \"B\"\n"] {
        let error = Config::from_toml(&format!(
            "[[audit.sinks]]\nkind = \"checkpoint\"\npath = \"c\"\n{keys}"
        ))
        .expect_err("one key source")
        .to_string();
        assert!(error.contains("exactly one of `key`"), "{error}");
    }
    for places in ["", "path = \"c\"\ndir = \"d\"\n"] {
        let error = Config::from_toml(&format!(
            "[[audit.sinks]]\nkind = \"checkpoint\"\nkey = \"k\"\n{places}"
        ))
        .expect_err("one place")
        .to_string();
        assert!(
            error.contains(
                "audit.sinks[0] (file <string>): a checkpoint sink needs exactly one of `path`"
            ),
            "{error}"
        );
    }
    let config =
        Config::from_toml("[[audit.sinks]]\nkind = \"checkpoint\"\nkey = \"k\"\ndir = \"cps\"\n")
            .expect("a directory alone is valid");
    assert!(matches!(
        &config.settings.audit.sinks[0],
        heliosdb_config::SinkConfig::Checkpoint(c) if c.dir == "cps" && c.path.is_empty()
    ));
    let error = Config::from_toml("[audit]\npreset = \"fda-part11\"\n")
        .expect_err("FDA needs checkpoints")
        .to_string();
    assert!(
        error.contains("audit.require_checkpoints = true (preset fda-part11) needs a [[audit.sinks]] entry with kind = \"checkpoint\""),
        "{error}"
    );
}

#[test]
fn the_file_overrides_the_preset_and_lists_replace_whole() {
    let config = Config::from_toml(
        "[audit]\npreset = \"hipaa\"\nlog_select = false\nretention_days = 3000\nexclude_users = [\"probe\"]\n",
    )
    .expect("valid");
    let audit = &config.settings.audit;
    assert!(!audit.log_select);
    assert_eq!(audit.retention_days, 3000);
    assert!(audit.redact_parameters, "kept from the preset");
    assert_eq!(audit.exclude_users, ["probe"]);
    let file = Source::File(PathBuf::from("<string>"));
    assert_eq!(config.source("audit.log_select"), file);
    assert_eq!(
        config.source("audit.redact_parameters"),
        Source::Preset(Preset::Hipaa)
    );
    assert_eq!(config.source("database.cache_mb"), Source::Default);
    assert_eq!(
        config.source("audit.capture_metadata.capture_client_ip"),
        Source::Preset(Preset::Hipaa)
    );
}

#[test]
fn environment_overrides_the_file_and_names_its_variable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("heliosdb.toml");
    std::fs::write(
        &file,
        "[audit]\nlog_select = true\nexclude_tables = [\"a\"]\n",
    )
    .expect("write");
    let config = Config::load(
        Some(&file),
        &env(&[
            ("HELIOSDB_AUDIT__LOG_SELECT", "false"),
            ("HELIOSDB_AUDIT__EXCLUDE_TABLES", "[\"cache\", \"tmp\"]"),
            (
                "HELIOSDB_AUDIT__CAPTURE_METADATA__CAPTURE_CLIENT_IP",
                "false",
            ),
            ("HELIOSDB_DATABASE__NAME", "edge-7"),
            ("HELIOSDB_AUDIT__PRESET", "gdpr"),
            ("HELIOSDB_UNRELATED", "ignored: no double underscore"),
            ("PATH", "/usr/bin"),
        ]),
    )
    .expect("valid");
    let audit = &config.settings.audit;
    assert!(!audit.log_select);
    assert_eq!(audit.exclude_tables, ["cache", "tmp"]);
    assert!(!audit.capture_metadata.capture_client_ip);
    assert_eq!(config.settings.database.name, "edge-7");
    assert_eq!(
        audit.preset,
        Preset::Gdpr,
        "the environment can pick the preset"
    );
    assert_eq!(
        audit.redaction_mode,
        heliosdb_config::RedactionMode::Encrypt
    );
    assert_eq!(
        config.source("audit.log_select"),
        Source::Env("HELIOSDB_AUDIT__LOG_SELECT".to_owned())
    );
    assert_eq!(
        config.source("audit.retention_days"),
        Source::Preset(Preset::Gdpr)
    );
    assert_eq!(config.file(), Some(file.as_path()));

    for (var, value, expected) in [
        (
            "HELIOSDB_AUDIT__LOG_SELCT",
            "true",
            "did you mean `log_select`?",
        ),
        ("HELIOSDB_AUDIT__LOG_SELECT", "1", "expected a boolean"),
        ("HELIOSDB_AUDIT__MAX_QUERY_LENGTH", "0", "from 1 to 1048576"),
        ("HELIOSDB_AUDT__LOG_SELECT", "true", "did you mean `audit`?"),
    ] {
        let error = Config::load(None, &env(&[(var, value)])).expect_err("invalid");
        let text = error.to_string();
        assert!(
            text.starts_with(&format!("environment variable {var}: ")),
            "{text}"
        );
        assert!(text.contains(expected), "{text}");
    }
}

#[test]
fn relative_paths_are_taken_from_the_files_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("heliosdb.toml");
    std::fs::write(
        &file,
        "[database]\npath = \"data\"\n[[audit.sinks]]\nkind = \"jsonl-file\"\npath = \"/abs/trail.jsonl\"\n",
    )
    .expect("write");
    let config = Config::load(Some(&file), &[]).expect("valid");
    assert_eq!(config.database_path(), Some(dir.path().join("data")));
    assert_eq!(config.resolve_path("x.jsonl"), dir.path().join("x.jsonl"));
    assert_eq!(config.build_sinks().expect("sinks").len(), 1);
    assert_eq!(Config::default().database_path(), None);
    assert_eq!(Config::discover(dir.path()).expect("valid"), Some(config));
    let empty = tempfile::tempdir().expect("temp dir");
    assert_eq!(Config::discover(empty.path()).expect("nothing"), None);
}

#[test]
fn the_rendered_configuration_is_itself_a_valid_file() {
    let config = Config::from_toml(
        "[audit]\npreset = \"pci-dss\"\n[[audit.sinks]]\nkind = \"jsonl-file\"\npath = \"t.jsonl\"\n",
    )
    .expect("valid");
    let again = Config::from_toml(&config.render()).expect("the rendering parses");
    assert_eq!(again.settings, config.settings);
}

#[test]
fn every_key_is_documented() {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/CONFIG.md"))
        .expect("docs/CONFIG.md");
    let mut config = Config::default();
    config
        .settings
        .audit
        .sinks
        .push(heliosdb_config::SinkConfig::JsonlFile(
            heliosdb_config::JsonlFileConfig {
                path: "x".to_owned(),
                rotate_mb: 0,
            },
        ));
    config
        .settings
        .audit
        .sinks
        .push(heliosdb_config::SinkConfig::Checkpoint(
            heliosdb_config::CheckpointConfig {
                key: "k".to_owned(),
                key_env: String::new(),
                path: "c".to_owned(),
                dir: String::new(),
                every_events: 1,
                every_seconds: 1,
            },
        ));
    let mut otlp = heliosdb_config::OtlpConfig::new("http://collector:4318");
    otlp.protocol = Some(heliosdb_config::OtlpProtocol::Grpc);
    otlp.compression = Some(heliosdb_config::OtlpCompression::Gzip);
    otlp.headers
        .insert("authorization".to_owned(), "Bearer x".to_owned());
    config
        .settings
        .audit
        .sinks
        .push(heliosdb_config::SinkConfig::Otlp(otlp));
    let table = toml::Table::try_from(&config.settings).expect("serializes");
    let mut missing = Vec::new();
    let mut stack: Vec<(String, &toml::Table)> = vec![(String::new(), &table)];
    while let Some((prefix, table)) = stack.pop() {
        for (key, value) in table {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            match value {
                toml::Value::Table(inner) => stack.push((path, inner)),
                toml::Value::Array(items)
                    if items.iter().all(toml::Value::is_table) && !items.is_empty() =>
                {
                    for item in items.iter().filter_map(toml::Value::as_table) {
                        stack.push((path.clone(), item));
                    }
                }
                _ => {
                    if !docs.contains(&format!("`{key}`")) {
                        missing.push(path);
                    }
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "keys missing from docs/CONFIG.md: {missing:?}"
    );
}

#[cfg(feature = "otlp")]
#[test]
fn an_otlp_sink_is_configured_built_and_shown() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("heliosdb.toml");
    std::fs::write(
        &file,
        r#"[[audit.sinks]]
kind = "otlp"
endpoint = "http://collector:4318"
protocol = "grpc"
compression = "gzip"
headers = { authorization = "Bearer s3cr3t" }
timeout_ms = 2500
batch_size = 100
linger_ms = 50
service_name = "line-3"
cursor = "state/otlp.cursor"
"#,
    )
    .expect("write");
    let config = Config::load(Some(&file), &[]).expect("valid");
    let heliosdb_config::SinkConfig::Otlp(otlp) = &config.settings.audit.sinks[0] else {
        panic!("an otlp sink");
    };
    let options = config
        .otlp_options(otlp)
        .resolve_with(|name| {
            (name == "OTEL_EXPORTER_OTLP_ENDPOINT").then(|| "http://env:1".to_owned())
        })
        .expect("options");
    assert_eq!(options.endpoint, "http://collector:4318");
    assert_eq!(options.protocol, heliosdb_otlp::Protocol::Grpc);
    assert_eq!(options.compression, heliosdb_otlp::Compression::Gzip);
    assert_eq!(options.headers["authorization"], "Bearer s3cr3t");
    assert_eq!(options.timeout, std::time::Duration::from_millis(2500));
    assert_eq!(options.batch_size, 100);
    assert_eq!(options.cursor_path, dir.path().join("state/otlp.cursor"));
    assert_eq!(
        options.quarantine_path,
        dir.path().join("state/otlp.cursor.quarantine.jsonl")
    );
    assert_eq!(config.build_sinks().expect("sinks").len(), 1);
    // `config show` renders it, and the rendering is itself a valid file.
    let shown = config.render();
    assert!(shown.contains("kind = \"otlp\""), "{shown}");
    assert!(shown.contains("protocol = \"grpc\""), "{shown}");
    let again = Config::from_toml(&shown).expect("the rendering parses");
    assert_eq!(again.settings, config.settings);
}

/// A build without the `otlp` feature reads an `otlp` sink entry (`config check` works)
/// but refuses to build it, naming the feature.
#[cfg(not(feature = "otlp"))]
#[test]
fn without_the_otlp_feature_an_otlp_sink_is_refused_naming_it() {
    let config = Config::from_toml(
        "[[audit.sinks]]\nkind = \"otlp\"\nendpoint = \"http://collector:4318\"\n",
    )
    .expect("an otlp entry parses");
    let error = config
        .build_sinks()
        .map(|_| ())
        .expect_err("no otlp in this build");
    let message = error.to_string();
    assert!(message.starts_with("audit.sinks[0].kind:"), "{message}");
    assert!(message.contains("`otlp` feature"), "{message}");
}

#[cfg(feature = "otlp")]
#[test]
fn otlp_sink_settings_are_checked() {
    for (text, expected) in [
        ("batch_size = 0\n", "a number of events from 1 to 100000"),
        ("linger_ms = 9000\n", "from 0 to 5000"),
        ("protocol = \"grcp\"\n", "did you mean `grpc`?"),
        ("compression = \"zstd\"\n", "expected one of `none`, `gzip`"),
        ("endpoitn = \"http://x\"\n", "did you mean `endpoint`?"),
    ] {
        let toml = format!("[[audit.sinks]]\nkind = \"otlp\"\n{text}");
        let error = Config::from_toml(&toml).expect_err("invalid").to_string();
        assert!(error.contains(expected), "{text:?}: {error}");
    }
    let two = "[[audit.sinks]]\nkind = \"otlp\"\n[[audit.sinks]]\nkind = \"otlp\"\n";
    let error = Config::from_toml(two).expect_err("conflict").to_string();
    assert!(error.contains("share a `name` or a `cursor`"), "{error}");
    let https_less = "[[audit.sinks]]\nkind = \"otlp\"\nendpoint = \"collector:4318\"\n";
    let config = Config::from_toml(https_less).expect("valid alone");
    let error = config.build_sinks().map(|_| ()).expect_err("bad endpoint");
    assert!(
        error.to_string().starts_with("audit.sinks[0].endpoint:"),
        "{error}"
    );
    // TLS files are read and checked when the sink is built; errors name the key.
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("not-a-cert.pem"), "hello").expect("write");
    for (text, expected) in [
        ("ca_file = \"missing.pem\"\n", "audit.sinks[0].ca_file: "),
        ("ca_file = \"not-a-cert.pem\"\n", "no PEM certificate"),
        (
            "client_cert_file = \"not-a-cert.pem\"\n",
            "audit.sinks[0].client_cert_file: a client certificate needs its private key",
        ),
    ] {
        let file = dir.path().join("heliosdb.toml");
        std::fs::write(
            &file,
            format!(
                "[[audit.sinks]]\nkind = \"otlp\"\nendpoint = \"https://collector:4318\"\n{text}"
            ),
        )
        .expect("write");
        let config = Config::load(Some(&file), &[]).expect("valid alone");
        let error = config.build_sinks().map(|_| ()).expect_err("bad TLS file");
        assert!(error.to_string().contains(expected), "{text:?}: {error}");
    }
}
