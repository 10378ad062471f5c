//! `Script`: SQL text split into statements and run one statement at a time, so the results
//! of the statements before a failing one are still printed.

use crate::printer::Printer;
use gluesql_core::sqlparser::dialect::PostgreSqlDialect;
use gluesql_core::sqlparser::parser::{Parser, ParserError};
use gluesql_core::sqlparser::tokenizer::{Token, Tokenizer};
use heliosdb_lite::Session;
use std::fmt;
use std::io::Write;

/// SQL text that is not valid SQL: the user's mistake (exit status 1).
#[derive(Debug)]
pub struct SyntaxError(ParserError);

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = match &self.0 {
            ParserError::TokenizerError(message) | ParserError::ParserError(message) => message,
            ParserError::RecursionLimitExceeded => "statement nested too deeply",
        };
        write!(f, "SQL syntax error: {message}")
    }
}

impl std::error::Error for SyntaxError {}

/// SQL text split into its statements.
#[derive(Debug)]
pub struct Script {
    /// Each statement's SQL text, without the separating `;`.
    statements: Vec<String>,
}

impl Script {
    /// Splits `sql` into statements. A syntax error anywhere fails the whole script before
    /// anything runs.
    pub fn parse(sql: &str) -> Result<Self, SyntaxError> {
        // The parser and dialect of `gluesql_core::parse_sql::parse`, called directly: that
        // wrapper keeps only the parser error's `Debug` text, spread over several lines.
        let parsed = Parser::parse_sql(&PostgreSqlDialect {}, sql).map_err(SyntaxError)?;
        let statements = if parsed.len() == 1 {
            // One statement: run the text as written rather than its re-rendering.
            vec![sql.trim().to_owned()]
        } else {
            parsed.iter().map(ToString::to_string).collect()
        };
        Ok(Self { statements })
    }

    /// Runs the statements in order on `session`, printing each result as soon as it is
    /// known. Stops at the first failing statement; the ones before it keep their effect.
    pub fn run<W: Write>(
        &self,
        session: &mut Session,
        printer: &mut Printer<W>,
    ) -> anyhow::Result<()> {
        let total = self.statements.len();
        for (index, statement) in self.statements.iter().enumerate() {
            let outputs = session.execute(statement, &[]).map_err(|error| {
                let error = anyhow::Error::new(error);
                if total > 1 {
                    error.context(format!("statement {} of {total}", index + 1))
                } else {
                    error
                }
            })?;
            for output in &outputs {
                printer.print(output)?;
            }
        }
        Ok(())
    }
}

/// True when `sql` ends with a `;` outside any string, identifier or comment: the shell has
/// read a complete input and runs it.
pub fn is_complete(sql: &str) -> bool {
    match Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize() {
        Ok(tokens) => tokens
            .iter()
            .rev()
            .find(|token| !matches!(token, Token::Whitespace(_)))
            .is_some_and(|token| *token == Token::SemiColon),
        // Input that ends inside a string, quoted name or comment continues on the next
        // line; any other tokenizer error is reported once a line ends with `;`.
        Err(error) if error.message.contains("Unterminated") || error.message.contains("EOF") => {
            false
        }
        Err(_) => sql.trim_end().ends_with(';'),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_statements() {
        let script = Script::parse("CREATE TABLE t (id INTEGER); INSERT INTO t VALUES (1);")
            .expect("valid SQL");
        assert_eq!(
            script.statements,
            ["CREATE TABLE t (id INTEGER)", "INSERT INTO t VALUES (1)"]
        );
    }

    #[test]
    fn one_statement_keeps_its_text() {
        let script = Script::parse("  select  1 ;  ").expect("valid SQL");
        assert_eq!(script.statements, ["select  1 ;"]);
    }

    #[test]
    fn empty_input_has_no_statement() {
        assert!(
            Script::parse("  ")
                .expect("empty is valid")
                .statements
                .is_empty()
        );
    }

    #[test]
    fn syntax_error_names_the_problem_on_one_line() {
        let error = Script::parse("SELEC 1").expect_err("invalid SQL");
        assert_eq!(
            error.to_string(),
            "SQL syntax error: Expected: an SQL statement, found: SELEC at Line: 1, Column: 1"
        );
    }

    #[test]
    fn completeness() {
        assert!(is_complete("SELECT 1;"));
        assert!(is_complete("SELECT 1; -- done\n"));
        assert!(!is_complete("SELECT 1"));
        assert!(!is_complete("SELECT ';"));
        assert!(!is_complete("SELECT 1 /* ; */"));
        assert!(is_complete("SELECT 'a;\nb';"));
        assert!(!is_complete("SELECT \"a;"));
        // Not an unfinished input, just an error: run it (and report it) at the `;`.
        assert!(is_complete("SELECT 1 ~~~ #;"));
    }
}
