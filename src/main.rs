//! `heliosdb`: the HeliosDB-Lite command line — run SQL, open a shell, run the demo, and
//! check or read the audit trail.
//!
//! Exit status: 0 on success, 1 when the SQL or the data is at fault (syntax error,
//! constraint violation, ...) or when `verify` / `verify-export` finds tampering, 2 for
//! usage, I/O and storage errors. Errors go to standard error as
//! `error: <message>: <cause>: ...`.

mod audit_cmd;
mod checkpoint_cmd;
mod config_cmd;
mod copy;
mod demo;
mod failure;
mod printer;
mod retention_cmd;
mod script;
mod shell;
mod table;

use anyhow::Context;
use clap::error::ErrorKind;
use clap::{CommandFactory, Parser, Subcommand};
use heliosdb_lite::checkpoint::CheckpointFiles;
use heliosdb_lite::{Database, SessionInfo};
use printer::{Format, Printer};
use script::Script;
use shell::Shell;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// HeliosDB-Lite: an embedded SQL database with the audit trail built into the engine.
#[derive(Debug, Parser)]
#[command(name = "heliosdb", version, about, long_about = None)]
struct Cli {
    /// Database directory, created if missing. Without it the database lives in memory and
    /// nothing is saved (unless the configuration's `database.path` names one).
    #[arg(long, global = true, value_name = "PATH")]
    db: Option<PathBuf>,

    /// Copy the database at --db to DIR (new or empty) first and run the command on the
    /// copy, e.g. for an evidence copy on read-only media. `verify` and the reading `audit`
    /// commands do this by themselves, in a temporary directory, when --db is read-only.
    #[arg(long, global = true, value_name = "DIR", requires = "db")]
    copy_to: Option<PathBuf>,

    /// Configuration file [default: PATH/heliosdb.toml when --db PATH holds one]. See
    /// docs/CONFIG.md; `HELIOSDB_<TABLE>__<KEY>` environment variables override it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    /// User name the session runs as [default: $USER, else "heliosdb"].
    #[arg(long, global = true, value_name = "NAME")]
    user: Option<String>,

    /// Application name recorded with the session.
    #[arg(
        long,
        global = true,
        value_name = "NAME",
        default_value = "heliosdb-cli"
    )]
    app: String,

    /// Client address recorded with the session.
    #[arg(long, global = true, value_name = "ADDR", default_value = "local")]
    client_addr: String,

    /// A custom session field, e.g. `--set tenant=acme`; repeat for more.
    #[arg(long = "set", global = true, value_name = "KEY=VALUE", value_parser = key_value)]
    custom: Vec<(String, String)>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run `;`-separated SQL statements and print each result.
    Sql {
        /// The SQL text, or `-` to read it from standard input.
        sql: String,
        /// Print one JSON object per statement per line instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// An interactive SQL prompt (the default command).
    Shell,
    /// Build a small clinic database and show, step by step, what the engine does.
    ///
    /// The demo runs its own sessions: it ignores --user, --app, --client-addr and --set.
    Demo {
        /// Directory for the demo database. A previous demo there is replaced; any other
        /// non-empty directory is refused.
        #[arg(long, value_name = "DIR", default_value = demo::DEFAULT_DIR)]
        dir: PathBuf,
    },
    /// Check the audit ledger of the database at --db: recompute every hash from the stored
    /// events and compare with the stored chain and head. Exit status 1 on tampering.
    Verify {
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
        /// Also check the ledger against the checkpoints signed by this verifier key (from
        /// `keygen`): those in --checkpoint, or without it those stored in
        /// `__audit_checkpoints`. Checkpoints kept outside the database catch a cut tail, a
        /// rollback to an older copy and a rewrite with a recomputed chain.
        #[arg(long, value_name = "KEYFILE")]
        pubkey: Option<PathBuf>,
        /// File of signed checkpoints (written by `checkpoint --out` or the checkpoint
        /// sink), or a directory of checkpoint files.
        #[arg(long, value_name = "FILE|DIR", requires = "pubkey")]
        checkpoint: Option<PathBuf>,
    },
    /// Create an Ed25519 key pair for signing checkpoints: PREFIX.key (private, mode 0600)
    /// and PREFIX.pub (the verifier key, in the C2SP signed-note form).
    Keygen {
        /// Key name, written into every signature (e.g. the device or service name).
        #[arg(long, value_name = "NAME")]
        name: String,
        /// Path prefix of the two files.
        #[arg(long, value_name = "PREFIX")]
        out: PathBuf,
    },
    /// Sign a checkpoint of the database at --db: its size and Merkle root, as a C2SP
    /// signed note, also stored in `__audit_checkpoints`. Exit status 1 when the ledger is
    /// not consistent with the newest stored checkpoint or the last checkpoint in --out.
    Checkpoint {
        /// The private key file (from `keygen`). The database never stores it.
        #[arg(long, value_name = "KEYFILE")]
        key: PathBuf,
        /// Append the checkpoint to FILE, or write it as its own file into directory DIR
        /// (an existing directory, or a path ending with `/`), after checking the ledger
        /// against the last checkpoint there, instead of printing it. Without it the note
        /// is printed, after checking the ledger against the last checkpoint in each file
        /// or directory the configuration's checkpoint sinks write to.
        #[arg(long, value_name = "FILE|DIR")]
        out: Option<PathBuf>,
    },
    /// Read the audit trail of the database at --db.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Check an audit export file offline, without the database. Exit status 1 on
    /// tampering. Lines cut from the end of the file cannot be detected this way.
    VerifyExport {
        /// The export (`audit export --format jsonl`), or `-` for standard input.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
        /// Also check the export (which must start at seq 1) against the signed
        /// checkpoints in --checkpoint, with this verifier key: lines cut from the end, or
        /// a file rewritten with a recomputed chain, no longer pass. Needs --checkpoint:
        /// an export carries no stored checkpoints.
        #[arg(long, value_name = "KEYFILE")]
        pubkey: Option<PathBuf>,
        /// File of signed checkpoints, or a directory of checkpoint files.
        #[arg(long, value_name = "FILE|DIR", requires = "pubkey")]
        checkpoint: Option<PathBuf>,
    },
    /// Check a proof written by `audit prove`, offline: the checkpoint's signature, the
    /// event, and its inclusion path to the signed root. Exit status 1 when it fails.
    VerifyProof {
        /// The proof file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The verifier key of the checkpoint's signer.
        #[arg(long, value_name = "KEYFILE")]
        pubkey: PathBuf,
        /// The event's export line (written by `audit prove` as FILE.json, which is read
        /// when present): it must be the proved event, and is printed.
        #[arg(long, value_name = "LINE_FILE")]
        event: Option<PathBuf>,
        /// Print the result as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Check a batch written by `audit sync`, offline, with the signer's public key: the
    /// signature, every event, and that it continues the batch recorded in `--receipt`
    /// (which is then advanced). Exit status 1 when it fails.
    VerifyBatch {
        /// The batch file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The verifier key of the device's signer.
        #[arg(long, value_name = "KEYFILE")]
        pubkey: PathBuf,
        /// Where the position after the last accepted batch of this device is kept (JSON);
        /// created by the first batch, advanced by each accepted one.
        #[arg(long, value_name = "FILE")]
        receipt: Option<PathBuf>,
    },
    /// Show or check the configuration (heliosdb.toml, presets, environment).
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// List the compliance presets, each with its purpose.
    Presets,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the resolved configuration, each value commented with its source (default,
    /// preset, file or environment).
    Show,
    /// Validate a configuration file (with its preset; the environment is not read).
    /// Exit status 0 when valid, 1 when not.
    Check {
        /// The file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Show the last events as a table (queries shortened; `export` has them in full).
    Tail {
        /// How many events.
        #[arg(short = 'n', value_name = "N", default_value_t = 10)]
        count: usize,
    },
    /// Write events with every field and their hashes, in seq order, verifiable offline
    /// with `verify-export`.
    Export {
        /// Output format.
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
        /// First seq to export [default: 1].
        #[arg(long, value_name = "SEQ")]
        from: Option<u64>,
        /// Last seq to export [default: the last event].
        #[arg(long, value_name = "SEQ")]
        to: Option<u64>,
        /// Write to FILE instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Write a proof that event SEQ is in a signed checkpoint (C2SP tlog-proof@v1, with
    /// the event itself), checkable offline with `verify-proof` and the public key, and
    /// the event's export line beside it (FILE.json).
    Prove {
        /// The event's seq.
        seq: u64,
        /// Sign a fresh checkpoint of the whole ledger with this private key (also
        /// stored)... [default: the newest checkpoint stored in `__audit_checkpoints`
        /// that covers SEQ]
        #[arg(long, value_name = "KEYFILE", conflicts_with = "checkpoint")]
        key: Option<PathBuf>,
        /// ...or prove against the newest checkpoint in FILE (or directory DIR) that
        /// covers SEQ.
        #[arg(long, value_name = "FILE|DIR")]
        checkpoint: Option<PathBuf>,
        /// Where to write the proof (`.tlog-proof`); the event's export line goes to
        /// FILE.json.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Write every event after seq AFTER as one gzip-compressed batch with a freshly
    /// signed checkpoint, for a receiver that checks it with `verify-batch` and the
    /// public key alone (docs/FORMAT.md §8).
    Sync {
        /// The number of events the receiver already has (the `size` of its receipt).
        #[arg(long, value_name = "SEQ", default_value_t = 0)]
        after: u64,
        /// The private key that signs the batch's checkpoint.
        #[arg(long, value_name = "KEYFILE")]
        key: PathBuf,
        /// Where to write the batch.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Remove the oldest events (never past the newest signed checkpoint or what a sink
    /// has not taken), keeping an anchor so `verify` still checks everything kept.
    /// Refused under a legal hold or lockdown. Recorded as a SYSTEM PRUNE event.
    Prune {
        /// Prune events older than this: a number and a unit (s, m, h, d, w), e.g. 90d.
        #[arg(
            long,
            value_name = "AGE",
            value_parser = retention_cmd::parse_age,
            conflicts_with = "before_seq",
            required_unless_present = "before_seq"
        )]
        older_than: Option<i64>,
        /// Prune every event with a lower seq.
        #[arg(long, value_name = "SEQ")]
        before_seq: Option<u64>,
        /// Show what would be pruned; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Show, place (`on --reason TEXT`) or release (`off`) a legal hold: while one is
    /// placed every prune is refused. Placing and releasing are audited.
    Hold {
        /// `on` or `off`; omit to show the current state.
        #[arg(value_parser = ["on", "off"])]
        state: Option<String>,
        /// Why the hold is placed (a case or matter reference); required with `on`.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// Open the database with its configured sinks, let them catch up, and show where each
    /// stands: delivered seq, lag and last error.
    ///
    /// The sinks shown are this command's own: it starts its own exporter for each
    /// `[[audit.sinks]]` entry of the configuration it reads (with the
    /// `OTEL_EXPORTER_OTLP_*` variables of its own environment), each resuming from the
    /// sink's cursor, so it exports what is waiting. It does not show the exporter inside
    /// an application that has the database open: an embedded fjall database is open in
    /// one process at a time; an application shows its own sinks' lag with
    /// `Database::sink_status()`.
    Sinks {
        /// How long to wait for the sinks to catch up, in seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = 10)]
        wait: u64,
    },
    /// List every recorded event that touched a data subject (GDPR Art. 15 subject access),
    /// found by the hash or encrypted tokens of its value; values still encrypted for it
    /// are shown in clear.
    Subject {
        /// The subject's id: the value of the subject column (the first of
        /// `audit.redact_columns`), or any redacted value in `hash` mode.
        id: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = audit_cmd::SubjectFormat::Json)]
        format: audit_cmd::SubjectFormat,
    },
    /// Print the hash token (`hmac:<hex>`) the trail holds in place of a redacted value.
    Token {
        /// The value.
        value: String,
    },
    /// Erase a data subject (GDPR Art. 17): destroy its key so its encrypted values can
    /// never be read again. The ledger still verifies; the erasure is itself recorded.
    ForgetSubject {
        /// The subject's id: the value of the subject column.
        id: String,
    },
}

/// Export formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum ExportFormat {
    /// JSON Lines: one event per line.
    Jsonl,
}

/// Parses `KEY=VALUE`.
fn key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!("expected KEY=VALUE, got {text:?}")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run_where_readable(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of our output went away (`| head`): nothing left to tell anyone.
        Err(error) if failure::is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            let _ = writeln!(io::stderr(), "error: {}", failure::describe(&error));
            ExitCode::from(failure::exit_code(&error))
        }
    }
}

/// Runs the command on --db, or on a copy of it: the one --copy-to makes, or, for a
/// command that only reads, a temporary one when --db cannot be written (see [`copy`]).
fn run_where_readable(mut cli: Cli) -> anyhow::Result<()> {
    if let (Some(from), Some(to)) = (&cli.db, &cli.copy_to) {
        copy::copy_database(from, to)?;
        eprintln!(
            "note: copied the database at {} to {}; the command runs on the copy",
            from.display(),
            to.display()
        );
        cli.db = Some(to.clone());
        return run(&cli);
    }
    match run(&cli) {
        Err(error) if copy::is_read_only_directory(&error) && only_reads(&cli) => {
            let Some(from) = cli.db.clone() else {
                return Err(error);
            };
            let copy = copy::TemporaryCopy::of(&from)?;
            eprintln!(
                "note: {} is read-only; reading a temporary copy ({}), deleted afterwards; nothing in {} is changed",
                from.display(),
                copy.path().display(),
                from.display()
            );
            cli.db = Some(copy.path().to_path_buf());
            run(&cli)
        }
        other => other,
    }
}

/// True for the commands that only read the database.
fn only_reads(cli: &Cli) -> bool {
    matches!(
        &cli.command,
        Some(
            Command::Verify { .. }
                | Command::Audit {
                    command: AuditCommand::Tail { .. }
                        | AuditCommand::Export { .. }
                        | AuditCommand::Token { .. }
                        | AuditCommand::Subject { .. }
                }
        )
    )
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    match &cli.command {
        Some(Command::Verify {
            json,
            pubkey,
            checkpoint,
        }) => audit_cmd::verify(
            required_db(cli, "verify"),
            *json,
            pubkey.as_deref(),
            checkpoint.as_deref(),
            io::stdout().lock(),
        ),
        Some(Command::VerifyProof {
            file,
            pubkey,
            event,
            json,
        }) => {
            checkpoint_cmd::verify_proof(file, pubkey, event.as_deref(), *json, io::stdout().lock())
        }
        Some(Command::VerifyBatch {
            file,
            pubkey,
            receipt,
        }) => checkpoint_cmd::verify_batch(file, pubkey, receipt.as_deref(), io::stdout().lock()),
        Some(Command::Keygen { name, out }) => {
            checkpoint_cmd::keygen(name, out, io::stdout().lock())
        }
        Some(Command::Checkpoint { key, out }) => {
            required_db(cli, "checkpoint");
            let db = open(cli)?;
            let configured = configured_checkpoints(cli)?;
            checkpoint_cmd::checkpoint(&db, key, out.as_deref(), &configured, io::stdout().lock())
        }
        Some(Command::Audit { command }) => {
            let path = required_db(cli, "audit");
            match command {
                AuditCommand::Prove {
                    seq,
                    key,
                    checkpoint,
                    out,
                } => {
                    let db = open(cli)?;
                    checkpoint_cmd::prove(
                        &db,
                        *seq,
                        (key.as_deref(), checkpoint.as_deref()),
                        &configured_checkpoints(cli)?,
                        out,
                        io::stdout().lock(),
                    )
                }
                AuditCommand::Sync { after, key, out } => {
                    let db = open(cli)?;
                    let configured = configured_checkpoints(cli)?;
                    checkpoint_cmd::sync(&db, *after, key, &configured, out, io::stdout().lock())
                }
                AuditCommand::Prune {
                    older_than,
                    before_seq,
                    dry_run,
                } => {
                    let db = open(cli)?;
                    retention_cmd::prune(
                        &db,
                        *older_than,
                        *before_seq,
                        *dry_run,
                        io::stdout().lock(),
                    )
                }
                AuditCommand::Hold { state, reason } => {
                    let db = open(cli)?;
                    let by = session_info(cli).user;
                    retention_cmd::hold(
                        &db,
                        state.as_deref().map(|s| s == "on"),
                        reason.as_deref(),
                        &by,
                        io::stdout().lock(),
                    )
                }
                AuditCommand::Sinks { wait } => {
                    let db = open(cli)?;
                    config_cmd::sinks(&db, *wait, io::stdout().lock())
                }
                AuditCommand::Tail { count } => audit_cmd::tail(path, *count, io::stdout().lock()),
                AuditCommand::Subject { id, format } => {
                    let by = session_info(cli).user;
                    audit_cmd::subject(path, id, &by, *format, io::stdout().lock())
                }
                AuditCommand::Token { value } => audit_cmd::token(path, value, io::stdout().lock()),
                AuditCommand::ForgetSubject { id } => {
                    let by = session_info(cli).user;
                    audit_cmd::forget_subject(|| open(cli), id, &by, io::stdout().lock())
                }
                AuditCommand::Export {
                    format: ExportFormat::Jsonl,
                    from,
                    to,
                    out,
                } => audit_cmd::export(path, *from, *to, out.as_deref(), io::stdout().lock()),
            }
        }
        Some(Command::VerifyExport {
            file,
            json,
            pubkey,
            checkpoint,
        }) => {
            if cli.db.is_some() {
                Cli::command()
                    .error(
                        ErrorKind::ArgumentConflict,
                        "verify-export reads only the export file; it takes no --db",
                    )
                    .exit();
            }
            if pubkey.is_some() && checkpoint.is_none() {
                Cli::command()
                    .error(
                        ErrorKind::MissingRequiredArgument,
                        "verify-export --pubkey needs --checkpoint FILE: an export carries no stored checkpoints (only `verify --db` reads those)",
                    )
                    .exit();
            }
            audit_cmd::verify_export(
                file,
                *json,
                pubkey.as_deref().zip(checkpoint.as_deref()),
                io::stdout().lock(),
            )
        }
        Some(Command::Config {
            command: ConfigCommand::Show,
        }) => {
            let config = config_cmd::resolve(cli.config.as_deref(), cli.db.as_deref())?;
            config_cmd::show(&config, cli.db.as_deref(), io::stdout().lock())
        }
        Some(Command::Config {
            command: ConfigCommand::Check { file },
        }) => config_cmd::check(file, io::stdout().lock()),
        Some(Command::Presets) => config_cmd::presets(io::stdout().lock()),
        Some(Command::Demo { dir }) => {
            if cli.db.is_some() {
                Cli::command()
                    .error(
                        ErrorKind::ArgumentConflict,
                        "demo takes its directory from --dir, not --db",
                    )
                    .exit();
            }
            demo::run(dir, io::stdout().lock())
        }
        Some(Command::Sql { sql, json }) => {
            let sql = if sql == "-" {
                let mut text = String::new();
                io::stdin()
                    .read_to_string(&mut text)
                    .context("cannot read SQL from standard input")?;
                text
            } else {
                sql.clone()
            };
            // Parse before opening: a typo needs no database.
            let script = Script::parse(&sql)?;
            let db = open(cli)?;
            let mut session = db.session(session_info(cli));
            let format = if *json { Format::Json } else { Format::Table };
            script.run(&mut session, &mut Printer::new(io::stdout().lock(), format))
        }
        Some(Command::Shell) | None => {
            let db = open(cli)?;
            let session = db.session(session_info(cli));
            let (history, location) = match db.backend().location() {
                Some(path) => (
                    Some(path.join(shell::HISTORY_FILE)),
                    path.display().to_string(),
                ),
                None => (None, "an in-memory database".to_owned()),
            };
            Shell::new(session, history, location).run()
        }
    }
}

/// The --db path, or a usage error (exit status 2): `command` needs a stored database.
fn required_db<'a>(cli: &'a Cli, command: &str) -> &'a Path {
    match &cli.db {
        Some(path) => path,
        None => Cli::command()
            .error(
                ErrorKind::MissingRequiredArgument,
                format!("{command} needs the database: --db PATH"),
            )
            .exit(),
    }
}

/// Opens the database the command line and configuration name: at --db, else at the
/// configuration's `database.path`, else in memory; with the configuration's options and
/// sinks.
fn open(cli: &Cli) -> anyhow::Result<Database> {
    let config = config_cmd::resolve(cli.config.as_deref(), cli.db.as_deref())?;
    let builder = Database::builder().config(&config);
    let db = match &cli.db {
        Some(path) => builder.path(path).open(),
        None if config.database_path().is_some() => builder.open(),
        None => builder.in_memory().open(),
    };
    Ok(db?)
}

/// The files and directories the configuration's checkpoint sinks write to: the signing
/// commands check the ledger against the last checkpoint there before they sign.
fn configured_checkpoints(cli: &Cli) -> anyhow::Result<Vec<CheckpointFiles>> {
    let config = config_cmd::resolve(cli.config.as_deref(), cli.db.as_deref())?;
    Ok(config
        .checkpoint_places()
        .into_iter()
        .map(|(place, dir)| match dir {
            true => CheckpointFiles::Dir(place),
            false => CheckpointFiles::File(place),
        })
        .collect())
}

/// Who the session runs as, from the global options.
fn session_info(cli: &Cli) -> SessionInfo {
    let user = cli
        .user
        .clone()
        .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "heliosdb".to_owned());
    cli.custom.iter().fold(
        SessionInfo::new(user)
            .application(&cli.app)
            .client_addr(&cli.client_addr),
        |info, (key, value)| info.custom(key, value),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn key_value_pairs() {
        assert_eq!(
            key_value("tenant=acme=1"),
            Ok(("tenant".to_owned(), "acme=1".to_owned()))
        );
        assert!(key_value("novalue").is_err());
        assert!(key_value("=x").is_err());
    }
}
