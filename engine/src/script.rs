//! Scripts: SQL text with several statements, cut into the statements *as written*.
//!
//! The text is tokenized with the dialect the engine parses with, and cut at every `;`
//! that is a token (not one inside a string, a quoted name or a comment); each piece is
//! the original text between two cuts, trimmed, so a statement runs — and is recorded —
//! exactly as typed. [`Session::execute_batch`](crate::Session::execute_batch) runs
//! scripts this way.

use gluesql_core::sqlparser::dialect::{Dialect, PostgreSqlDialect, SQLiteDialect};
use gluesql_core::sqlparser::tokenizer::{Token, Tokenizer};

/// One statement of a script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Statement<'a> {
    /// The statement's text as written, trimmed, without its `;`.
    pub text: &'a str,
    /// The 1-based line it starts on.
    pub line: usize,
}

/// Cuts `script` into its statements (empty ones, like `;;`, are dropped). Text the
/// tokenizer cannot read (an unterminated string) is kept as one last statement, for the
/// parser to report.
///
/// ```
/// use heliosdb_engine::script::split;
/// let parts: Vec<&str> = split("CREATE TABLE t (a TEXT); INSERT INTO t VALUES ('x;y');\n-- done")
///     .iter()
///     .map(|s| s.text)
///     .collect();
/// assert_eq!(parts, ["CREATE TABLE t (a TEXT)", "INSERT INTO t VALUES ('x;y')", "-- done"]);
/// ```
pub fn split(script: &str) -> Vec<Statement<'_>> {
    let cuts = semicolons(&SQLiteDialect {}, script)
        .or_else(|| semicolons(&PostgreSqlDialect {}, script))
        .unwrap_or_default();
    let mut statements = Vec::new();
    let mut start = 0;
    for cut in cuts.into_iter().chain(std::iter::once(script.len())) {
        push(&mut statements, script, start, cut);
        start = (cut + 1).min(script.len());
    }
    statements
}

fn push<'a>(statements: &mut Vec<Statement<'a>>, script: &'a str, start: usize, end: usize) {
    let piece = &script[start..end];
    let text = piece.trim();
    if text.is_empty() {
        return;
    }
    let leading = piece.len() - piece.trim_start().len();
    let line = 1 + script[..start + leading].matches('\n').count();
    statements.push(Statement { text, line });
}

/// Byte offsets of the `;` tokens of `script`, or `None` when it does not tokenize.
fn semicolons(dialect: &dyn Dialect, script: &str) -> Option<Vec<usize>> {
    let tokens = Tokenizer::new(dialect, script)
        .tokenize_with_location()
        .ok()?;
    // The tokenizer counts lines from 1 at each '\n' and columns in characters from 1:
    // walk the text once, in step with the (ordered) tokens.
    let mut offsets = Vec::new();
    let mut chars = script.char_indices().peekable();
    let (mut line, mut column) = (1_u64, 1_u64);
    for token in tokens {
        if token.token != Token::SemiColon {
            continue;
        }
        let target = (token.location.line, token.location.column);
        while (line, column) < target {
            let (_, c) = chars.next()?;
            if c == '\n' {
                line += 1;
                column = 1;
            } else {
                column += 1;
            }
        }
        let &(offset, c) = chars.peek()?;
        if c != ';' {
            return None;
        }
        offsets.push(offset);
    }
    Some(offsets)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn texts(script: &str) -> Vec<&str> {
        split(script).iter().map(|s| s.text).collect()
    }

    #[test]
    fn cuts_only_at_statement_semicolons() {
        assert_eq!(
            texts("SELECT ';'; SELECT \"a;b\" FROM t; /* ; */ SELECT 1 -- ;\n; SELECT 2"),
            [
                "SELECT ';'",
                "SELECT \"a;b\" FROM t",
                "/* ; */ SELECT 1 -- ;",
                "SELECT 2"
            ]
        );
        assert_eq!(texts("  ;; ; "), Vec::<&str>::new());
        assert_eq!(texts("SELECT 1"), ["SELECT 1"]);
    }

    #[test]
    fn keeps_the_text_as_written() {
        let script = "CREATE TABLE t (\n  id INTEGER PRIMARY KEY AUTOINCREMENT,\n  n `weird name`\n);\nINSERT OR REPLACE INTO t VALUES (?1, ?);\nSELECT * FROM [t] LIMIT 1, 2;";
        let parts = split(script);
        assert_eq!(parts.len(), 3);
        assert!(parts[0].text.contains("AUTOINCREMENT"));
        assert_eq!(parts[1].text, "INSERT OR REPLACE INTO t VALUES (?1, ?)");
        assert_eq!(parts[1].line, 5);
        assert_eq!(parts[2].text, "SELECT * FROM [t] LIMIT 1, 2");
    }

    #[test]
    fn multibyte_text_and_untokenizable_tails() {
        assert_eq!(
            texts("SELECT '日本語'; SELECT 'ü';"),
            ["SELECT '日本語'", "SELECT 'ü'"]
        );
        assert_eq!(texts("SELECT 1; SELECT 'open"), ["SELECT 1; SELECT 'open"]);
    }

    proptest! {
        #[test]
        fn never_panics_and_every_piece_is_a_trimmed_slice(script in "[a-z ;'\"`\\[\\]\\-*/\n日é]{0,60}") {
            for statement in split(&script) {
                prop_assert!(!statement.text.is_empty());
                prop_assert_eq!(statement.text, statement.text.trim());
                prop_assert!(script.contains(statement.text));
            }
        }
    }
}
