//! The `heliosdb` binary, run as a child process: output formats, exit codes, the shell
//! driven through standard input, and the demo.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{assert_exit, heliosdb, heliosdb_with_input, path, stderr, stdout};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

#[test]
fn sql_prints_results_as_tables() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("db");
    let output = heliosdb(&[
        "--db",
        path(&db),
        "sql",
        "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, note TEXT); \
         INSERT INTO t VALUES (1, 'Ana', NULL), (20, 'Bartholomew', 'x'), (3, 'Chloe', 'y'); \
         SELECT * FROM t ORDER BY id",
    ]);
    assert_exit(&output, 0);
    insta::assert_snapshot!(stdout(&output), @r"
    CREATE TABLE
    INSERT 3

     id |    name     | note
    ----+-------------+------
      1 | Ana         | NULL
      3 | Chloe       | y
     20 | Bartholomew | x
    (3 rows)
    ");
    assert_eq!(stderr(&output), "");

    // The data is on disk: a second process sees it.
    let output = heliosdb(&["--db", path(&db), "sql", "SELECT COUNT(*) AS n FROM t"]);
    assert_exit(&output, 0);
    assert_eq!(stdout(&output), " n\n---\n 3\n(1 row)\n");
}

#[test]
fn sql_json_prints_one_object_per_statement() {
    let output = heliosdb(&[
        "sql",
        "--json",
        "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, born DATE, seen TIMESTAMP, \
         score FLOAT, ok BOOLEAN, raw BYTEA); \
         INSERT INTO t VALUES (1, 'Ana', '1990-07-21', '2025-03-01 08:00:00', 1.5, TRUE, X'ab01'), \
         (2, NULL, NULL, NULL, NULL, FALSE, NULL); \
         SELECT id, name, born, seen, score, ok, raw FROM t ORDER BY id",
    ]);
    assert_exit(&output, 0);
    let lines: Vec<serde_json::Value> = stdout(&output)
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect();
    assert_eq!(
        lines,
        [
            serde_json::json!({"statement": "CREATE TABLE"}),
            serde_json::json!({"statement": "INSERT", "affected": 2}),
            serde_json::json!({
                "columns": ["id", "name", "born", "seen", "score", "ok", "raw"],
                "rows": [
                    [1, "Ana", "1990-07-21", "2025-03-01 08:00:00", 1.5, true, "ab01"],
                    [2, null, null, null, null, false, null],
                ],
            }),
        ]
    );
}

#[test]
fn sql_reads_statements_from_stdin() {
    let output = heliosdb_with_input(&["sql", "-"], "SELECT 1 AS one;\nSELECT 'two' AS two;\n");
    assert_exit(&output, 0);
    assert_eq!(
        stdout(&output),
        " one\n-----\n   1\n(1 row)\n\n two\n-----\n two\n(1 row)\n"
    );
}

#[test]
fn session_options_are_accepted() {
    let output = heliosdb(&[
        "--user",
        "alice",
        "--app",
        "billing",
        "--client-addr",
        "10.1.2.3",
        "--set",
        "tenant=acme",
        "sql",
        "SELECT 1 AS one",
    ]);
    assert_exit(&output, 0);

    let output = heliosdb(&["--set", "no-equals-sign", "sql", "SELECT 1"]);
    assert_exit(&output, 2);
}

#[test]
fn bad_sql_exits_1_with_an_error_line() {
    let output = heliosdb(&["sql", "SELEC 1"]);
    assert_exit(&output, 1);
    assert_eq!(stdout(&output), "");
    let message = stderr(&output);
    assert!(
        message.starts_with("error: SQL syntax error: Expected: an SQL statement, found: SELEC"),
        "{message}"
    );
    assert_eq!(message.lines().count(), 1, "{message}");

    let output = heliosdb(&["sql", "SELECT * FROM missing"]);
    assert_exit(&output, 1);
    assert!(
        stderr(&output).starts_with("error: "),
        "{}",
        stderr(&output)
    );
}

#[test]
fn duplicate_primary_key_exits_1() {
    let output = heliosdb(&[
        "sql",
        "CREATE TABLE t (id INTEGER PRIMARY KEY); INSERT INTO t VALUES (1); INSERT INTO t VALUES (1)",
    ]);
    assert_exit(&output, 1);
    let stderr = stderr(&output);
    assert!(
        stderr.starts_with("error: statement 3 of 3: constraint violation: "),
        "{stderr}"
    );
    // The statements before the failing one ran and were reported.
    assert_eq!(stdout(&output), "CREATE TABLE\nINSERT 1\n");
}

#[test]
fn results_before_a_failing_statement_are_printed() {
    let output = heliosdb(&["sql", "SELECT 1 AS one; SELECT * FROM missing; SELECT 3"]);
    assert_exit(&output, 1);
    assert_eq!(stdout(&output), " one\n-----\n   1\n(1 row)\n");
    assert!(
        stderr(&output).starts_with("error: statement 2 of 3: "),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_regular_file_as_database_exits_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "hello").expect("write file");
    let output = heliosdb(&["--db", path(&file), "sql", "SELECT 1"]);
    assert_exit(&output, 2);
    assert!(
        stderr(&output).starts_with("error: "),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        std::fs::read_to_string(&file).expect("file is intact"),
        "hello"
    );
}

/// A shell holding the database at `db` open until its standard input is closed.
struct OpenShell {
    child: std::process::Child,
    input: std::process::ChildStdin,
    /// The shell's output, kept open: a closed pipe would end the shell (broken pipe).
    output: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
}

impl OpenShell {
    fn start(db: &Path) -> OpenShell {
        use std::io::{BufRead, BufReader};

        let mut child = Command::new(env!("CARGO_BIN_EXE_heliosdb"))
            .args(["--db", path(db), "shell"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start shell");
        let mut input = child.stdin.take().expect("stdin is piped");
        input
            .write_all(b"SELECT 'open' AS state;\n")
            .expect("write stdin");
        let mut output = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
        // The shell answered, so it has the database open.
        assert_eq!(output.next().expect("a line").expect("UTF-8"), " state");
        OpenShell {
            child,
            input,
            output,
        }
    }

    fn close(mut self) {
        drop(self.input);
        let rest: Vec<String> = self.output.by_ref().map(|l| l.expect("UTF-8")).collect();
        assert_eq!(rest, ["-------", " open", "(1 row)", ""]);
        assert!(self.child.wait().expect("shell exits").success());
    }
}

#[test]
fn a_database_open_elsewhere_exits_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("db");
    let shell = OpenShell::start(&db);
    let output = heliosdb(&["--db", path(&db), "sql", "SELECT 1"]);
    assert_exit(&output, 2);
    assert!(
        stderr(&output).contains("already open"),
        "{}",
        stderr(&output)
    );
    shell.close();
}

#[test]
fn usage_errors_exit_2() {
    assert_exit(&heliosdb(&["no-such-command"]), 2);
    assert_exit(&heliosdb(&["sql"]), 2);
    assert_exit(&heliosdb(&["--db", "x", "demo"]), 2);
}

#[test]
fn shell_reads_statements_from_stdin() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("db");
    let script = "\
CREATE TABLE t (id INTEGER PRIMARY KEY,
                name TEXT);
INSERT INTO t VALUES (1, 'a;b'),
                     (2, 'c');
SELECT * FROM missing;
.tables
.nonsense
SELECT name FROM t
ORDER BY id;
.quit
SELECT 'not reached';
";
    let output = heliosdb_with_input(&["--db", path(&db), "shell"], script);
    assert_exit(&output, 0);
    assert_eq!(
        stdout(&output),
        concat!(
            "CREATE TABLE\n",
            "INSERT 2\n",
            " table\n",
            "-------\n",
            " t\n",
            "(1 row)\n",
            "\n",
            " name\n",
            "------\n",
            " a;b\n",
            " c\n",
            "(2 rows)\n",
            "\n",
        )
    );
    let stderr = stderr(&output);
    let errors: Vec<&str> = stderr.lines().collect();
    assert_eq!(errors.len(), 2, "{stderr}");
    assert!(errors[0].starts_with("error: SQL error: "), "{stderr}");
    assert!(
        errors[1].starts_with("error: unknown command .nonsense"),
        "{stderr}"
    );

    // The history file lives in the database directory.
    assert!(db.join(".heliosdb_history").is_file());
}

#[test]
fn shell_ends_at_end_of_input_and_runs_an_unterminated_statement() {
    let output = heliosdb_with_input(&["shell"], "SELECT 1 AS one");
    assert_exit(&output, 0);
    assert_eq!(stdout(&output), " one\n-----\n   1\n(1 row)\n\n");
}

#[test]
fn shell_rolls_back_an_unfinished_transaction_and_says_so() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("db");
    let script = "CREATE TABLE t (id INTEGER PRIMARY KEY);\nBEGIN;\nINSERT INTO t VALUES (1);\n";
    let output = heliosdb_with_input(&["--db", path(&db), "shell"], script);
    assert_exit(&output, 0);
    assert!(
        stderr(&output).contains("open transaction was rolled back"),
        "{}",
        stderr(&output)
    );
    let count = heliosdb(&["--db", path(&db), "sql", "SELECT COUNT(*) AS n FROM t"]);
    assert_eq!(stdout(&count), " n\n---\n 0\n(1 row)\n");
}

#[test]
fn demo_runs_and_reruns_in_its_own_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let demo = dir.path().join("demo");
    let first = heliosdb(&["demo", "--dir", path(&demo)]);
    assert_exit(&first, 0);
    let text = stdout(&first);
    assert!(text.contains("constraint violation"), "{text}");
    assert!(
        text.contains("Close the database and open it again"),
        "{text}"
    );
    assert!(demo.join(".heliosdb-demo").is_file());
    insta::assert_snapshot!("demo", text.replace(path(&demo), "[DIR]"));

    // A second run replaces the first and prints the same story.
    let second = heliosdb(&["demo", "--dir", path(&demo)]);
    assert_exit(&second, 0);
    assert_eq!(stdout(&second), text);

    // But not while someone has the demo database open.
    let shell = OpenShell::start(&demo.join("clinic"));
    let third = heliosdb(&["demo", "--dir", path(&demo)]);
    assert_exit(&third, 2);
    assert!(
        stderr(&third).contains("already open"),
        "{}",
        stderr(&third)
    );
    shell.close();
    let count = heliosdb(&[
        "--db",
        path(&demo.join("clinic")),
        "sql",
        "SELECT COUNT(*) AS n FROM patients",
    ]);
    assert_exit(&count, 0);
    assert_eq!(stdout(&count), " n\n---\n 3\n(1 row)\n");
}

#[test]
fn demo_refuses_a_directory_it_did_not_create() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("precious.txt"), "keep me").expect("write file");
    let output = heliosdb(&["demo", "--dir", path(dir.path())]);
    assert_exit(&output, 2);
    assert!(stderr(&output).contains("refusing"), "{}", stderr(&output));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("precious.txt")).expect("file is intact"),
        "keep me"
    );

    // An empty existing directory is fine.
    let empty = tempfile::tempdir().expect("temp dir");
    assert_exit(&heliosdb(&["demo", "--dir", path(empty.path())]), 0);
}
