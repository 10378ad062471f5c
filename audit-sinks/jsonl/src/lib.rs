//! # heliosdb-jsonl
//!
//! The `jsonl-file` sink: appends every sealed event to a file as its export line (the
//! format of `heliosdb audit export`, `docs/FORMAT.md` §5), fsynced per batch.
//!
//! The file is its own cursor: on start the sink reads the seq of its last complete line
//! and asks for the events after it, so a crash between a write and the next start loses
//! nothing and duplicates nothing. A torn last line (a crash in the middle of a write) is
//! cut off before appending. The first line of the file carries `prev_chain`, so the
//! file alone verifies with `heliosdb verify-export`.
//!
//! [`JsonlFileSink::rotating`] writes a directory of files instead, starting a new one
//! (`audit-<first seq, 20 digits>.jsonl`) once the current one holds `max_bytes`; each
//! file's first line carries the chain before it (the last `chain` of the file before),
//! so every file verifies on its own and the files link up in name order.

#![deny(unsafe_code)]

use heliosdb_engine::audit::{AuditSink, ExportLine, Hash, SealedEvent, SinkContext, SinkError};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A follower sink writing JSON Lines to one file. See the module documentation.
#[derive(Debug)]
pub struct JsonlFileSink {
    name: String,
    path: PathBuf,
    file: Option<File>,
    /// Whether the file holds at least one line (the first line carries `prev_chain`).
    has_lines: bool,
    /// The followed database's id, hex; set by `resume_after`.
    database_id: String,
    /// Seq of the file's last line.
    last_seq: u64,
    /// For a directory of rotated files: the directory and the size that starts a new file.
    rotation: Option<(PathBuf, u64)>,
    /// Bytes in the current file.
    size: u64,
}

/// Bytes read per step when looking for the last line from the end of the file.
const TAIL_CHUNK: u64 = 64 * 1024;

impl JsonlFileSink {
    /// A sink appending to `path` (created with its parent directories if missing).
    pub fn new(path: impl AsRef<Path>) -> Self {
        let path = path.as_ref().to_path_buf();
        Self {
            name: format!("jsonl-file:{}", path.display()),
            path,
            file: None,
            has_lines: false,
            database_id: String::new(),
            last_seq: 0,
            rotation: None,
            size: 0,
        }
    }

    /// A sink writing files `audit-<first seq>.jsonl` in directory `dir` (created if
    /// missing), starting a new file once the current one holds `max_bytes` or more.
    pub fn rotating(dir: impl AsRef<Path>, max_bytes: u64) -> Self {
        let dir = dir.as_ref().to_path_buf();
        let mut sink = Self::new(dir.join(rotated_name(1)));
        sink.name = format!("jsonl-file:{}/", dir.display());
        sink.rotation = Some((dir, max_bytes.max(1)));
        sink
    }

    /// The newest rotated file in the directory, if any.
    fn newest(dir: &Path) -> std::io::Result<Option<PathBuf>> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut names = Vec::new();
        for entry in entries {
            let name = entry?.file_name();
            let Some(name) = name.to_str() else { continue };
            let first = name
                .strip_prefix("audit-")
                .and_then(|n| n.strip_suffix(".jsonl"))
                .filter(|n| n.len() == 20)
                .and_then(|n| n.parse::<u64>().ok());
            if first.is_some() {
                names.push(name.to_owned());
            }
        }
        Ok(names.into_iter().max().map(|name| dir.join(name)))
    }

    /// The file written (for a rotating sink, the current one).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the file (for a rotating sink, the newest one), cuts a torn last line and
    /// returns the seq of the last line.
    fn open(&mut self) -> Result<u64, SinkError> {
        if let Some((dir, _)) = &self.rotation {
            let dir = dir.clone();
            match Self::newest(&dir).map_err(|e| self.context("cannot list", e))? {
                Some(path) => self.path = path,
                None => {
                    // Nothing written yet: the first delivery starts the first file.
                    self.file = None;
                    self.has_lines = false;
                    self.size = 0;
                    return Ok(self.last_seq);
                }
            }
        }
        if let Some(parent) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| self.context("cannot create the directory", e))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.path)
            .map_err(|e| self.context("cannot open", e))?;
        let (line, keep) = last_line(&mut file).map_err(|e| self.context("cannot read", e))?;
        let cursor = match line {
            None => 0,
            Some(line) => {
                let line: ExportLine = serde_json::from_slice(&line)
                    .map_err(|e| self.context("the last line is not an export line", e))?;
                if line.database_id != self.database_id {
                    return Err(self.context(
                        "refusing to append",
                        format!(
                            "the file holds the audit trail of database {}, not of this database ({})",
                            line.database_id, self.database_id
                        ),
                    ));
                }
                line.seq
            }
        };
        // Cut a torn last line left by a crash in the middle of a write.
        let len = file
            .metadata()
            .map_err(|e| self.context("cannot read", e))?
            .len();
        if len != keep {
            file.set_len(keep)
                .and_then(|()| file.sync_data())
                .map_err(|e| self.context("cannot cut a torn last line", e))?;
        }
        file.seek(SeekFrom::End(0))
            .map_err(|e| self.context("cannot seek", e))?;
        self.has_lines = keep > 0;
        // An empty newest rotated file (a crash right after creating it) starts after the
        // file before it, whose last seq its name tells.
        let cursor = match (&self.rotation, keep) {
            (Some(_), 0) => first_seq_of(&self.path).map_or(cursor, |first| first - 1),
            _ => cursor,
        };
        self.last_seq = cursor;
        self.size = keep;
        self.file = Some(file);
        Ok(cursor)
    }

    fn context(&self, what: &str, error: impl std::fmt::Display) -> SinkError {
        format!("{}: {what}: {error}", self.path.display()).into()
    }
}

/// `audit-<first seq, 20 digits>.jsonl`.
fn rotated_name(first_seq: u64) -> String {
    format!("audit-{first_seq:020}.jsonl")
}

/// The first seq a rotated file's name gives.
fn first_seq_of(path: &Path) -> Option<u64> {
    path.file_name()?
        .to_str()?
        .strip_prefix("audit-")?
        .strip_suffix(".jsonl")?
        .parse()
        .ok()
        .filter(|first| *first > 0)
}

/// The last complete line of `file` (without its newline) and the length of the file up
/// to and including that line's newline; `None` when there is no complete line.
fn last_line(file: &mut File) -> std::io::Result<(Option<Vec<u8>>, u64)> {
    let len = file.seek(SeekFrom::End(0))?;
    // Bytes from `start` to `len`, grown backwards until they hold a full last line.
    let mut start = len;
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let complete_end = tail.iter().rposition(|&b| b == b'\n');
        if let Some(end) = complete_end {
            if let Some(begin) = tail[..end].iter().rposition(|&b| b == b'\n') {
                let line = tail[begin + 1..end].to_vec();
                return Ok((Some(line), start + end as u64 + 1));
            }
            if start == 0 {
                return Ok((Some(tail[..end].to_vec()), end as u64 + 1));
            }
        } else if start == 0 {
            return Ok((None, 0));
        }
        let step = TAIL_CHUNK.min(start);
        start -= step;
        file.seek(SeekFrom::Start(start))?;
        // `step` is at most TAIL_CHUNK, so it fits in usize.
        let mut chunk = vec![0u8; step as usize];
        file.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&tail);
        tail = chunk;
    }
}

impl AuditSink for JsonlFileSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn resume_after(&mut self, context: &SinkContext) -> Result<u64, SinkError> {
        self.database_id = hex(&context.database_id);
        self.open()
    }

    fn deliver(&mut self, prev_chain: &Hash, events: &[SealedEvent]) -> Result<(), SinkError> {
        if self.file.is_none() {
            self.open()?;
        }
        // After a reopen the file may already hold some of these events.
        let skip = events
            .iter()
            .take_while(|e| e.event.seq <= self.last_seq)
            .count();
        if let Some(next) = events.get(skip)
            && self.has_lines
            && next.event.seq != self.last_seq + 1
        {
            return Err(self.context(
                "refusing to append",
                format!(
                    "the file ends at seq {} but the next event is seq {}: it was changed by someone else",
                    self.last_seq, next.event.seq
                ),
            ));
        }
        let mut out = Vec::with_capacity(events.len() * 512);
        for (i, sealed) in events.iter().enumerate().skip(skip) {
            let full = self
                .rotation
                .as_ref()
                .is_some_and(|(_, max)| self.size + out.len() as u64 >= *max);
            if self.rotation.is_some() && (self.file.is_none() || full) {
                self.write_out(&mut out, events.get(..i).and_then(<[_]>::last))?;
                self.start_file(sealed.event.seq)?;
            }
            let before = match i.checked_sub(1).and_then(|j| events.get(j)) {
                Some(previous) => &previous.chain,
                None => prev_chain,
            };
            let prev = (out.is_empty() && !self.has_lines).then_some(before);
            let line = ExportLine::new(sealed.event.clone(), &sealed.leaf, &sealed.chain, prev);
            serde_json::to_writer(&mut out, &line).map_err(|e| self.context("encode", e))?;
            out.push(b'\n');
        }
        self.write_out(&mut out, events.last())
    }
}

impl JsonlFileSink {
    /// Appends `out` to the current file and fsyncs it; `last` is the last event in it.
    fn write_out(
        &mut self,
        out: &mut Vec<u8>,
        last: Option<&SealedEvent>,
    ) -> Result<(), SinkError> {
        if out.is_empty() {
            return Ok(());
        }
        let Some(file) = self.file.as_mut() else {
            return Err(self.context("deliver", "the file is not open"));
        };
        let written = file.write_all(out).and_then(|()| file.sync_data());
        if let Err(error) = written {
            // A partial write leaves a torn line: drop the handle so the retry reopens
            // the file, finds the last complete line and cuts the rest.
            self.file = None;
            return Err(self.context("cannot write", error));
        }
        self.size += out.len() as u64;
        out.clear();
        self.has_lines = true;
        if let Some(last) = last {
            self.last_seq = last.event.seq;
        }
        Ok(())
    }

    /// Starts rotated file `audit-<first_seq>.jsonl` and makes the directory entry durable.
    fn start_file(&mut self, first_seq: u64) -> Result<(), SinkError> {
        let Some((dir, _)) = &self.rotation else {
            return Ok(());
        };
        let dir = dir.clone();
        std::fs::create_dir_all(&dir)
            .map_err(|e| self.context("cannot create the directory", e))?;
        self.path = dir.join(rotated_name(first_seq));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&self.path)
            .map_err(|e| self.context("cannot create", e))?;
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| self.context("cannot sync the directory", e))?;
        self.file = Some(file);
        self.has_lines = false;
        self.size = 0;
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// The `[[audit.sinks]]` entry `kind = "jsonl-file"` of `heliosdb.toml` (`docs/CONFIG.md`):
/// the sink's own configuration, which `heliosdb-config` deserializes as it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonlFileConfig {
    /// The file (or with `rotate_mb`, the directory); relative to the configuration
    /// file's directory.
    pub path: String,
    /// When above 0, `path` is a directory of files `audit-<first seq>.jsonl`, a new one
    /// started once the current one holds this many MiB.
    #[serde(default)]
    pub rotate_mb: u64,
}

/// A `jsonl-file` entry that cannot work: the key at fault, relative to the entry
/// (`path`), and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonlConfigError {
    /// The key, relative to the sink's entry.
    pub key: &'static str,
    /// What is wrong.
    pub message: String,
}

impl JsonlFileConfig {
    /// Checks the entry on its own (no file is touched).
    pub fn validate(&self) -> Result<(), JsonlConfigError> {
        if self.path.trim().is_empty() {
            return Err(JsonlConfigError {
                key: "path",
                message: "a jsonl-file sink needs a file `path`".to_owned(),
            });
        }
        Ok(())
    }

    /// The sink, its `path` resolved by `resolve` (relative to the configuration file).
    pub fn build(&self, resolve: impl Fn(&str) -> PathBuf) -> JsonlFileSink {
        let path = resolve(self.path.trim());
        match self.rotate_mb {
            0 => JsonlFileSink::new(path),
            mb => JsonlFileSink::rotating(path, mb.saturating_mul(1 << 20)),
        }
    }
}
