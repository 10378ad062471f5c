//! How a failed command is reported: one `error:` line with the causes, and an exit status
//! that tells the user's mistakes from the machine's.

use crate::config_cmd::InvalidConfig;
use crate::script::SyntaxError;
use std::fmt;
use std::io;

/// Exit status when the statement or data is at fault (bad SQL, constraint violation), or
/// when verification finds tampering.
pub const USER_ERROR: u8 = 1;
/// Exit status for usage, I/O and storage errors (clap uses 2 for usage errors too).
pub const SYSTEM_ERROR: u8 = 2;

/// The error's message followed by its causes, `: `-separated, on one line. A cause whose text is already
/// part of the message (errors that print their source inline) is not repeated.
pub fn describe(error: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in error.chain() {
        // Some causes carry `{:#?}` output; an error stays on one line.
        let text = cause
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if text.is_empty() || message.contains(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message
}

/// Tampering was found: the command printed its report and exits with status 1.
#[derive(Debug)]
pub struct Tampered(pub String);

impl fmt::Display for Tampered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::error::Error for Tampered {}

/// [`USER_ERROR`] for a syntax error, for tampering found by verification or by a signer
/// (a checkpoint refused as inconsistent with a stored one), for a file
/// `config check` finds invalid, or when the
/// first database error in the chain is about the caller's statement or data,
/// [`SYSTEM_ERROR`] otherwise.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    let user = error.chain().any(|cause| {
        cause.is::<SyntaxError>() || cause.is::<Tampered>() || cause.is::<InvalidConfig>()
    }) || error
        .chain()
        .find_map(|cause| cause.downcast_ref::<heliosdb_lite::Error>())
        .is_some_and(|e| {
            // A refusal to sign a ledger inconsistent with a stored checkpoint is tampering.
            e.is_user_error() || matches!(e, heliosdb_lite::Error::CheckpointInconsistent { .. })
        });
    if user { USER_ERROR } else { SYSTEM_ERROR }
}

/// True when writing to standard output failed because the reader went away (`| head`):
/// not worth an error message.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn describe_skips_causes_already_in_the_message() {
        let inner = io::Error::other("disk on fire");
        let outer = io::Error::other(Wrapped(inner));
        let error = anyhow::Error::new(outer).context("statement 2 of 3");
        assert_eq!(describe(&error), "statement 2 of 3: wrapped: disk on fire");
    }

    /// An error that prints its source inline and also returns it from `source()`, as many
    /// `thiserror` errors do.
    #[derive(Debug)]
    struct Wrapped(io::Error);

    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "wrapped: {}", self.0)
        }
    }

    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn user_errors_exit_1() {
        let syntax = crate::script::Script::parse("SELEC 1").expect_err("invalid SQL");
        let error = anyhow::Error::new(syntax).context("statement 1 of 2");
        assert_eq!(exit_code(&error), USER_ERROR);
        let conflict = anyhow::Error::new(heliosdb_lite::Error::Conflict);
        assert_eq!(exit_code(&conflict), USER_ERROR);
    }

    #[test]
    fn io_errors_are_system_errors() {
        let error = Err::<(), _>(io::Error::new(io::ErrorKind::BrokenPipe, "pipe"))
            .context("writing results")
            .expect_err("an error");
        assert_eq!(exit_code(&error), SYSTEM_ERROR);
        assert!(is_broken_pipe(&error));
        assert_eq!(describe(&error), "writing results: pipe");
    }
}
