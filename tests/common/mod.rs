//! Helpers shared by the integration tests.
#![allow(
    dead_code,
    unused_macros,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use rand::Rng;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Defines each named test function `f(kind: &str)` twice: in module `memory` run with
/// `"memory"`, in module `fjall` with `"fjall"`.
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod memory {
            $( #[test] fn $test() { super::$test("memory"); } )*
        }
        mod fjall {
            $( #[test] fn $test() { super::$test("fjall"); } )*
        }
    };
}

/// Runs the `heliosdb` binary with `args` and `stdin` as standard input.
pub fn heliosdb_with_input(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_heliosdb"))
        .args(args)
        // The default user comes from $USER; pin it so output does not depend on who runs.
        .env("USER", "tester")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start heliosdb");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait for heliosdb")
}

/// Runs the `heliosdb` binary with `args` and empty standard input.
pub fn heliosdb(args: &[&str]) -> Output {
    heliosdb_with_input(args, "")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("stderr is UTF-8")
}

/// Asserts the exit code, showing both streams when it is not the expected one.
#[track_caller]
pub fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(output),
        stderr(output)
    );
}

/// A temporary path as the `&str` a command line takes.
pub fn path(dir: &Path) -> &str {
    dir.to_str().expect("temp paths are UTF-8")
}

/// Runs `test` of this same test binary as a child process with `env_key` set to `dir`,
/// feeds each line it prints to `on_line`, and kills it with SIGKILL a random moment
/// after `on_line` returned `true` for the `kills_after`-th time (or after a minute).
/// Lines already in the pipe when the child died are fed too: the work they report had
/// completed.
pub fn run_child_and_kill(
    test: &str,
    env_key: &str,
    dir: &Path,
    kills_after: usize,
    mut on_line: impl FnMut(&str) -> bool,
) {
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(&exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(env_key, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = 0;
    for line in lines.by_ref() {
        let line = line.expect("read child output");
        if on_line(&line) {
            seen += 1;
            if seen >= kills_after || Instant::now() > deadline {
                // A random extra delay lands the kill anywhere inside the next operation.
                let pause = rand::rng().random_range(0..3000);
                std::thread::sleep(Duration::from_micros(pause));
                break;
            }
        }
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    for line in lines {
        let Ok(line) = line else { break };
        on_line(&line);
    }
}

/// The number after the last `tag` in a line; the test harness may print its own text
/// before it.
pub fn tagged_number(line: &str, tag: &str) -> Option<i64> {
    let at = line.rfind(tag)?;
    line[at + tag.len()..].trim().parse().ok()
}

/// Creates table `t (id INTEGER PRIMARY KEY)` if missing and inserts `n` more rows, one
/// statement each (so `n` events plus the CREATE's), as user `writer`.
pub fn insert_rows(db: &heliosdb_lite::Database, n: i64) {
    let mut s = db.session(heliosdb_lite::SessionInfo::new("writer"));
    s.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY)", &[])
        .expect("ddl");
    let start: i64 = s
        .query("SELECT COUNT(*) AS n FROM t", &[])
        .expect("count")
        .get(0, "n")
        .expect("n");
    for id in start..start + n {
        s.execute("INSERT INTO t VALUES ($1)", &heliosdb_lite::params![id])
            .expect("insert");
    }
}

/// Runs `heliosdb --db DB ARGS...`.
pub fn heliosdb_on(db: &Path, args: &[&str]) -> Output {
    let mut all = vec!["--db", path(db)];
    all.extend_from_slice(args);
    heliosdb(&all)
}

/// Asserts the exit code and that standard error holds every one of `needles`.
#[track_caller]
pub fn assert_fails_with(output: &Output, code: i32, needles: &[&str]) {
    assert_exit(output, code);
    let err = stderr(output);
    for needle in needles {
        assert!(err.contains(needle), "expected {needle:?} in:\n{err}");
    }
}

/// The last error an attached sink reports, waiting up to a minute for one.
pub fn sink_error(db: &heliosdb_lite::Database) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(error) = db.sink_status().into_iter().find_map(|s| s.last_error) {
            return error;
        }
        assert!(
            Instant::now() < deadline,
            "no sink error: {:?}",
            db.sink_status()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Every file under `dir` whose bytes contain `needle`.
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).expect("read file");
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    found.push(path.display().to_string());
                }
            }
        }
    }
    found
}
