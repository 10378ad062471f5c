//! The `jsonl-file` sink: appends every sealed event to a file as its export line (the
//! format of `heliosdb audit export`, `docs/FORMAT.md` §5), fsynced per batch.
//!
//! The file is its own cursor: on start the sink reads the seq of its last complete line
//! and asks for the events after it, so a crash between a write and the next start loses
//! nothing and duplicates nothing. A torn last line (a crash in the middle of a write) is
//! cut off before appending. The first line of the file carries `prev_chain`, so the
//! file alone verifies with `heliosdb verify-export`.

use super::export::ExportLine;
use super::ledger::Hash;
use super::sink::{AuditSink, SealedEvent, SinkContext, SinkError};
use crate::error::hex;
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
        }
    }

    /// The file written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the file, cuts a torn last line and returns the seq of the last line.
    fn open(&mut self) -> Result<u64, SinkError> {
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
        self.last_seq = cursor;
        self.file = Some(file);
        Ok(cursor)
    }

    fn context(&self, what: &str, error: impl std::fmt::Display) -> SinkError {
        format!("{}: {what}: {error}", self.path.display()).into()
    }
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
            let prev = (i == 0 && !self.has_lines).then_some(prev_chain);
            let line = ExportLine::new(sealed.event.clone(), &sealed.leaf, &sealed.chain, prev);
            serde_json::to_writer(&mut out, &line).map_err(|e| self.context("encode", e))?;
            out.push(b'\n');
        }
        let Some(file) = self.file.as_mut() else {
            return Err(self.context("deliver", "the file is not open"));
        };
        let written = file.write_all(&out).and_then(|()| file.sync_data());
        if let Err(error) = written {
            // A partial write leaves a torn line: drop the handle so the retry reopens
            // the file, finds the last complete line and cuts the rest.
            self.file = None;
            return Err(self.context("cannot write", error));
        }
        self.has_lines = true;
        if let Some(last) = events.last() {
            self.last_seq = last.event.seq;
        }
        Ok(())
    }
}
