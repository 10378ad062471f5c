//! Signed sync batches: every audit event after a position, shipped off a device as one
//! gzip-compressed file that anyone holding the verifier key can check.
//!
//! A batch is gzip-compressed JSON Lines. The first line is a header:
//!
//! ```text
//! {"format":"heliosdb-sync-batch/v1","after":N,"size":M,
//!  "frontier":["<hex>",...],"checkpoint":"<signed note>"}
//! ```
//!
//! followed by the export lines of events `N+1 ..= M` (`docs/FORMAT.md` §5.5; the batch format is §8). `checkpoint`
//! is a C2SP signed note over the ledger's Merkle root at size `M`; `frontier` holds the
//! roots of the complete subtrees covering the first `N` events. The receiver re-encodes
//! and re-hashes every event, checks the chain, pushes the leaves onto the frontier and
//! compares the resulting root with the signed one: the events are then exactly leaves
//! `N+1 ..= M` of the tree the device signed. Given the receipt of the previous batch, it
//! also checks that the frontier reproduces the previously signed root and that the chain
//! continues where that batch ended — batch after batch, nothing can be dropped, replayed
//! or reordered unnoticed.

use crate::{Checkpoint, CheckpointError, PublishError, SignerKey, VerifierKey};
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use heliosdb_engine::Database;
use heliosdb_engine::audit::export::{self, ExportLine, parse_hex};
use heliosdb_engine::audit::merkle::Frontier;
use heliosdb_engine::audit::{Hash, tree};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Read, Write};

/// The `format` of the header line.
pub const BATCH_FORMAT: &str = "heliosdb-sync-batch/v1";

/// What can be wrong when writing or checking a batch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// Reading or writing the batch failed.
    #[error("batch I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The database could not be read.
    #[error(transparent)]
    Database(#[from] heliosdb_engine::Error),
    /// The key, or the signed checkpoint in the batch, is bad or not signed by the key.
    #[error("batch checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    /// The batch is not a well-formed batch.
    #[error("malformed batch: {what}")]
    Malformed {
        /// What is wrong.
        what: String,
    },
    /// The events do not match the signed checkpoint, or one was changed.
    #[error("tampered batch{}: {what}", seq.map(|s| format!(" at seq {s}")).unwrap_or_default())]
    Tampered {
        /// The event concerned, when known.
        seq: Option<u64>,
        /// What does not match.
        what: String,
    },
    /// The batch does not start where the previous one ended.
    #[error("the batch does not continue the previous one: {what}")]
    NotContinuous {
        /// What differs.
        what: String,
    },
    /// The writer refuses to sign: asked for a position past the ledger, or the ledger
    /// does not match what was signed or recomputed.
    #[error("refusing to write a batch: {what}")]
    Refused {
        /// Why.
        what: String,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    format: String,
    after: u64,
    size: u64,
    frontier: Vec<String>,
    checkpoint: String,
}

/// What a receiver keeps between batches: where the last verified batch ended. Stored as
/// JSON by the receiver; pass it to the next [`verify_batch`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchReceipt {
    /// `heliosdb/<database id>`.
    pub origin: String,
    /// Events covered so far: the signed size of the last batch.
    pub size: u64,
    /// The signed Merkle root at `size`, hex.
    pub root: String,
    /// The chain hash after event `size`, hex; `None` until a batch carried events.
    pub last_chain: Option<String>,
}

/// A batch whose every check passed.
#[derive(Clone, Debug)]
pub struct VerifiedBatch {
    /// The position after this batch, to keep for the next one.
    pub receipt: BatchReceipt,
    /// The first event carried is `after + 1`.
    pub after: u64,
    /// The signed checkpoint at the end of the batch.
    pub checkpoint: Checkpoint,
    /// The events, in seq order.
    pub events: Vec<ExportLine>,
}

/// What [`write_batch`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchSummary {
    /// Events before the batch.
    pub after: u64,
    /// Events covered once the batch is applied: its last seq.
    pub size: u64,
    /// The checkpoint signed at `size` (also stored in `__audit_checkpoints`).
    pub checkpoint: Checkpoint,
}

impl BatchSummary {
    /// Events carried.
    pub fn events(&self) -> u64 {
        self.size - self.after
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn malformed(what: impl Into<String>) -> BatchError {
    BatchError::Malformed { what: what.into() }
}

/// Writes every event after seq `after` of `db`, up to the current end of its ledger, as a
/// signed batch to `out`; returns what was written.
///
/// Nothing stored is trusted blindly: the frontier at `after` must reproduce the root of the
/// checkpoint stored at that size (or, without one, the root recomputed from the first
/// `after` events), the exported events are re-verified (chain and leaves), and their
/// leaves must extend that frontier to the stored root. Only then is the root signed with
/// `key` and the checkpoint recorded in `__audit_checkpoints` — the anchor of the next
/// batch.
pub fn write_batch(
    db: &Database,
    key: &SignerKey,
    after: u64,
    out: impl Write,
) -> Result<BatchSummary, BatchError> {
    let (size, stored_root) = db.audit_root();
    if size == 0 {
        return Err(BatchError::Refused {
            what: "the audit ledger is empty".to_owned(),
        });
    }
    if after > size {
        return Err(BatchError::Refused {
            what: format!("position {after} is past the end of the ledger ({size} events)"),
        });
    }
    let start = db.audit_frontier_at(after)?;
    if after > 0 {
        let signed = db.checkpoints()?.into_iter().find(|c| c.size == after);
        let expected = match signed {
            Some(checkpoint) => Some(checkpoint.root),
            None => tree::roots_from_records(db.backend(), &[after])?
                .first()
                .copied()
                .flatten(),
        };
        if expected != Some(start.root()) {
            return Err(BatchError::Refused {
                what: format!(
                    "the stored Merkle tree at {after} events does not match what was signed or recomputed (run verify)"
                ),
            });
        }
    }
    let mut lines = Vec::new();
    let exported = export::export(db.backend(), Some(after + 1), Some(size), &mut lines)?;
    let mut frontier = start.clone();
    if exported > 0 {
        let report = export::verify_export(lines.as_slice())?;
        if let Some(problem) = report.problem {
            return Err(BatchError::Refused {
                what: format!("the ledger does not verify: {problem}"),
            });
        }
        push_leaves(&mut frontier, &parse_lines(&lines)?)?;
    }
    if frontier.size() != size || frontier.root() != stored_root {
        return Err(BatchError::Refused {
            what: format!(
                "the events after {after} do not extend the stored Merkle tree to its root at {size} (run verify)"
            ),
        });
    }
    // The database checks that a checkpoint of this size extends the newest one it stores,
    // recomputing both roots from its records, before anything is signed.
    let (checkpoint, note) = match crate::sign_and_publish(
        db,
        key,
        size,
        Some(frontier.root()),
        None,
    ) {
        Ok(published) => (published.checkpoint, published.note),
        Err(PublishError::RootMismatch { .. }) => {
            return Err(BatchError::Refused {
                what: format!(
                    "the exported events do not hash to the ledger's root at {size} (run verify)"
                ),
            });
        }
        Err(PublishError::Ledger(error) | PublishError::Store { source: error, .. }) => {
            return Err(BatchError::Database(error));
        }
        Err(PublishError::Checkpoint(error)) => return Err(BatchError::Checkpoint(error)),
        Err(other) => {
            return Err(BatchError::Database(heliosdb_engine::Error::Internal(
                other.to_string(),
            )));
        }
    };

    let header = Header {
        format: BATCH_FORMAT.to_owned(),
        after,
        size,
        frontier: start.roots().iter().map(|r| hex(r)).collect(),
        checkpoint: note.to_string(),
    };
    let mut gz = GzEncoder::new(out, Compression::default());
    serde_json::to_writer(&mut gz, &header).map_err(std::io::Error::from)?;
    gz.write_all(b"\n")?;
    gz.write_all(&lines)?;
    gz.finish()?.flush()?;
    Ok(BatchSummary {
        after,
        size,
        checkpoint,
    })
}

/// The export lines of `lines` (JSON Lines), parsed.
fn parse_lines(lines: &[u8]) -> Result<Vec<ExportLine>, BatchError> {
    lines
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).map_err(|e| malformed(format!("export line: {e}"))))
        .collect()
}

/// Pushes the leaf of every line onto `frontier`.
fn push_leaves(frontier: &mut Frontier, lines: &[ExportLine]) -> Result<(), BatchError> {
    for line in lines {
        let leaf = parse_hex::<32>(&line.leaf).ok_or_else(|| malformed("leaf is not hex"))?;
        frontier.push(leaf, |_, _| {});
    }
    Ok(())
}

/// Checks a batch read from `input` with the verifier key alone; `previous` is the receipt
/// of the batch before it (`None` for the first batch of a device, which must start at 0,
/// or to check a batch on its own).
///
/// Checks, in order: the header; the checkpoint's signature; that the batch continues
/// `previous` (same origin, starts at its size, frontier reproduces its signed root, chain
/// continues its last chain); every event line (re-encoded and re-hashed, dense seqs, chain
/// links, one database); and that the leaves extend the frontier to the signed root.
pub fn verify_batch(
    input: impl Read,
    key: &VerifierKey,
    previous: Option<&BatchReceipt>,
) -> Result<VerifiedBatch, BatchError> {
    let mut reader = BufReader::new(GzDecoder::new(input));
    let mut first = Vec::new();
    reader
        .read_until(b'\n', &mut first)
        .map_err(|e| malformed(format!("not a gzip batch: {e}")))?;
    let header: Header =
        serde_json::from_slice(&first).map_err(|e| malformed(format!("header: {e}")))?;
    if header.format != BATCH_FORMAT {
        return Err(malformed(format!(
            "format {:?}, expected {BATCH_FORMAT:?}",
            header.format
        )));
    }
    let checkpoint = Checkpoint::open(&header.checkpoint, key)?;
    if checkpoint.size != header.size || header.after > header.size {
        return Err(malformed(format!(
            "header covers {}..{} but the signed checkpoint is of size {}",
            header.after, header.size, checkpoint.size
        )));
    }
    let roots = header
        .frontier
        .iter()
        .map(|r| parse_hex::<32>(r).ok_or_else(|| malformed("frontier hash is not hex")))
        .collect::<Result<Vec<Hash>, _>>()?;
    let mut frontier = Frontier::from_parts(header.after, roots)
        .ok_or_else(|| malformed("the frontier does not fit the position"))?;
    if let Some(previous) = previous {
        check_continues(previous, &header, &checkpoint, &frontier)?;
    } else if header.after != 0 {
        return Err(BatchError::NotContinuous {
            what: format!(
                "it starts after event {} but no previous receipt was given",
                header.after
            ),
        });
    }

    let mut lines = Vec::new();
    reader
        .read_to_end(&mut lines)
        .map_err(|e| malformed(format!("corrupt gzip stream: {e}")))?;
    let report = export::verify_export(lines.as_slice())?;
    if let Some(problem) = report.problem {
        return Err(BatchError::Tampered {
            seq: problem.seq,
            what: problem.to_string(),
        });
    }
    let expected_first = header.after + 1;
    if report.lines_checked != header.size - header.after
        || (report.lines_checked > 0 && report.first_seq != Some(expected_first))
    {
        return Err(BatchError::Tampered {
            seq: report.first_seq,
            what: format!(
                "the batch carries {} events from seq {:?}; the header promises {}..={}",
                report.lines_checked, report.first_seq, expected_first, header.size
            ),
        });
    }
    let events = parse_lines(&lines)?;
    if let (Some(previous), Some(first)) = (previous, events.first())
        && previous.last_chain.is_some()
        && first.prev_chain != previous.last_chain
    {
        return Err(BatchError::NotContinuous {
            what: format!(
                "seq {} does not chain onto the last event of the previous batch",
                first.seq
            ),
        });
    }
    if let Some(line) = events.iter().find(|l| origin_of(l) != checkpoint.origin) {
        return Err(BatchError::Tampered {
            seq: Some(line.seq),
            what: "the event belongs to another database than the checkpoint".to_owned(),
        });
    }
    push_leaves(&mut frontier, &events)?;
    let last_chain = events.last().map(|e| e.chain.clone());
    if frontier.root() != checkpoint.root {
        return Err(BatchError::Tampered {
            seq: None,
            what: format!(
                "the events do not hash to the signed Merkle root at size {}",
                checkpoint.size
            ),
        });
    }
    let receipt = BatchReceipt {
        origin: checkpoint.origin.clone(),
        size: checkpoint.size,
        root: hex(&checkpoint.root),
        last_chain: last_chain.or_else(|| previous.and_then(|p| p.last_chain.clone())),
    };
    Ok(VerifiedBatch {
        receipt,
        after: header.after,
        checkpoint,
        events,
    })
}

fn origin_of(line: &ExportLine) -> String {
    format!("{}{}", crate::ORIGIN_PREFIX, line.database_id)
}

fn check_continues(
    previous: &BatchReceipt,
    header: &Header,
    checkpoint: &Checkpoint,
    frontier: &Frontier,
) -> Result<(), BatchError> {
    let differs = |what: String| Err(BatchError::NotContinuous { what });
    if previous.origin != checkpoint.origin {
        return differs(format!(
            "it is signed for {}, the previous batch for {}",
            checkpoint.origin, previous.origin
        ));
    }
    if header.after != previous.size {
        return differs(format!(
            "it starts after event {}, the previous batch ended at {}",
            header.after, previous.size
        ));
    }
    if hex(&frontier.root()) != previous.root {
        return differs(
            "its frontier does not reproduce the previously signed root: the ledger was rewritten"
                .to_owned(),
        );
    }
    Ok(())
}
