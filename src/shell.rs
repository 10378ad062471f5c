//! `Shell`: the interactive SQL prompt.

use crate::failure;
use crate::printer::{Format, Printer};
use crate::script::{self, Script};
use heliosdb_lite::Session;
use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;

/// File name of the shell's history, kept in the database directory.
pub const HISTORY_FILE: &str = ".heliosdb_history";

const PROMPT: &str = "heliosdb> ";
const CONTINUATION: &str = "     ...> ";

const HELP: &str = "\
Enter SQL statements ending with ';' (they may span lines).
  .tables   list tables (SHOW TABLES)
  .help     this help
  .quit     leave the shell (also .exit or Ctrl-D)
Ctrl-C discards the statement being typed.";

/// An interactive SQL prompt on one session. Reads statements until `;` ends them, prints
/// results as tables, and reports errors without leaving.
pub struct Shell {
    session: Session,
    /// Where history is loaded from and saved to; `None` keeps none (in-memory database).
    history: Option<PathBuf>,
    /// A description of the database for the greeting, e.g. `./data`.
    location: String,
}

/// What the shell does after a line.
enum Next {
    Continue,
    Quit,
}

impl Shell {
    /// A shell on `session`; `history` is the history file, if any.
    pub fn new(session: Session, history: Option<PathBuf>, location: String) -> Self {
        Self {
            session,
            history,
            location,
        }
    }

    /// Runs the prompt until `.quit`, `.exit` or end of input. When standard input is not a
    /// terminal, lines are read from it without prompts, so a script can be piped in.
    pub fn run(mut self) -> anyhow::Result<()> {
        let mut editor = DefaultEditor::new()?;
        if let Some(path) = &self.history {
            // A missing or unreadable history file only means no history.
            let _ = editor.load_history(path);
        }
        if io::stdin().is_terminal() {
            writeln!(
                io::stdout(),
                "HeliosDB-Lite shell on {} as {}. End statements with ';', .help for help.",
                self.location,
                self.session.info().user
            )?;
        }
        let mut buffer = String::new();
        loop {
            let prompt = if buffer.is_empty() {
                PROMPT
            } else {
                CONTINUATION
            };
            match editor.readline(prompt) {
                Ok(line) => {
                    if buffer.is_empty() {
                        let trimmed = line.trim();
                        if trimmed.is_empty() {
                            continue;
                        }
                        if trimmed.starts_with('.') {
                            let _ = editor.add_history_entry(trimmed);
                            match self.command(trimmed)? {
                                Next::Continue => continue,
                                Next::Quit => break,
                            }
                        }
                    }
                    buffer.push_str(&line);
                    buffer.push('\n');
                    if script::is_complete(&buffer) {
                        let _ = editor.add_history_entry(buffer.trim());
                        self.execute(&buffer)?;
                        buffer.clear();
                    }
                }
                Err(ReadlineError::Interrupted) => buffer.clear(),
                Err(ReadlineError::Eof) => {
                    // Piped input may end without a final ';': run what was read.
                    if !buffer.trim().is_empty() {
                        self.execute(&buffer)?;
                    }
                    break;
                }
                Err(error) => return Err(error.into()),
            }
        }
        if self.session.in_transaction() {
            let _ = writeln!(
                io::stderr(),
                "note: the open transaction was rolled back (it had no COMMIT)"
            );
        }
        if let Some(path) = &self.history {
            // History is a convenience; failing to save it must not fail the session.
            let _ = editor.save_history(path);
        }
        Ok(())
    }

    /// Runs a dot command.
    fn command(&mut self, line: &str) -> anyhow::Result<Next> {
        match line.split_whitespace().next().unwrap_or_default() {
            ".quit" | ".exit" => return Ok(Next::Quit),
            ".tables" => self.execute("SHOW TABLES")?,
            ".help" => writeln!(io::stdout(), "{HELP}")?,
            other => {
                let _ = writeln!(
                    io::stderr(),
                    "error: unknown command {other}; .help lists the commands"
                );
            }
        }
        Ok(Next::Continue)
    }

    /// Runs the statements in `sql`, printing results; an SQL or storage error is printed
    /// and the shell goes on. Only a failure to write the results is returned.
    fn execute(&mut self, sql: &str) -> anyhow::Result<()> {
        // A printer per input: spacing between results applies within one input only.
        let mut printer = Printer::new(io::stdout(), Format::Table);
        let result = Script::parse(sql)
            .map_err(anyhow::Error::new)
            .and_then(|script| script.run(&mut self.session, &mut printer));
        printer.finish()?;
        match result {
            Err(error) if error.is::<io::Error>() => Err(error),
            Err(error) => {
                let _ = writeln!(io::stderr(), "error: {}", failure::describe(&error));
                Ok(())
            }
            Ok(()) => Ok(()),
        }
    }
}
