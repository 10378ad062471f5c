//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rand::Rng;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
