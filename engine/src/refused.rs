//! Refused commits: what makes a failed commit stay failed.
//!
//! When a backend commit fails ambiguously (an I/O error, a failed fsync: anything but a
//! [clean refusal](StorageError::is_clean_refusal)), part of the batch may already be on
//! the disk and the rest may follow later: fjall's journal, dropped after the disk frees
//! up, completes the half-written record, and the next open replays it. The caller was
//! told the statement failed, so that must never happen.
//!
//! So right after such a failure, before anything else is written, the engine keeps a
//! [`RefusedCommit`] as a side record ([`StorageBackend::put_side_record`], outside the
//! journal): the value every key of the batch had before it (read from a snapshot: a
//! failed commit is never visible), and one key the batch changes with the value it
//! would give it (the probe). The next open ([`recover`]) reads the probe: if it holds
//! the batch's value, the batch became durable after all and the before-values are
//! written back in one synced commit; if it holds the old value, nothing landed. Either
//! way the record is then removed and the open records a SYSTEM `REFUSED_COMMIT` event
//! saying what was found. Backends commit atomically, so the probe speaks for the batch.
//!
//! Format of the record (all integers big-endian): [`MAGIC`]; the error message (u32
//! length + UTF-8); the probe (keyspace, key, value); the count of keys (u32), then per key
//! its keyspace (u16 length + bytes), key (u32 length + bytes) and before-value (a byte, 0
//! for absent or 1, then u32 length + bytes); last, the SHA-256 of everything before.

use crate::backend::{BatchOp, Durability, Snapshot, StorageBackend, StorageError, WriteBatch};
use crate::codec::DecodeError;
use crate::error::{CorruptSource, Error, Result};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Name of the side record.
pub const REFUSED_COMMIT_RECORD: &str = "refused-commit";

/// First bytes of the record.
pub const MAGIC: &[u8; 8] = b"HDBRFSD1";

/// The SYSTEM event's operation.
pub const REFUSED_COMMIT_OPERATION: &str = "REFUSED_COMMIT";

type Entry = (String, Vec<u8>, Option<Vec<u8>>);

/// What a refused commit would have changed, and how to undo it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefusedCommit {
    /// The error the commit reported.
    pub error: String,
    /// One key the batch changes, with the value the batch gives it.
    probe: Entry,
    /// Every key the batch writes, with its value before.
    before: Vec<Entry>,
}

impl RefusedCommit {
    /// The record for `batch`, which failed with `error`, read against `snapshot` (the
    /// state without the batch). `None` when the batch changes nothing.
    pub fn capture(
        batch: &WriteBatch,
        error: &str,
        snapshot: &dyn Snapshot,
    ) -> Result<Option<Self>> {
        // Later operations on a key win: the batch's effect is its last value per key.
        let mut after: BTreeMap<(&str, &[u8]), Option<&[u8]>> = BTreeMap::new();
        for op in batch.ops() {
            match op {
                BatchOp::Put {
                    keyspace,
                    key,
                    value,
                } => after.insert((keyspace, key), Some(value)),
                BatchOp::Delete { keyspace, key } => after.insert((keyspace, key), None),
            };
        }
        let mut probe = None;
        let mut before = Vec::with_capacity(after.len());
        for ((keyspace, key), value) in after {
            let old = read(snapshot, keyspace, key)?;
            if probe.is_none() && old.as_deref() != value {
                probe = Some((keyspace.to_owned(), key.to_vec(), value.map(<[u8]>::to_vec)));
            }
            before.push((keyspace.to_owned(), key.to_vec(), old));
        }
        Ok(probe.map(|probe| RefusedCommit {
            error: error.to_owned(),
            probe,
            before,
        }))
    }

    /// Keys the undo restores.
    pub fn keys(&self) -> usize {
        self.before.len()
    }

    /// The record's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        put_bytes32(&mut out, self.error.as_bytes());
        put_entry(&mut out, &self.probe);
        // Entries are bounded by the batch, which the backend's limits bound far below
        // u32::MAX keys; saturate rather than wrap regardless.
        out.extend_from_slice(
            &u32::try_from(self.before.len())
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        );
        for entry in &self.before {
            put_entry(&mut out, entry);
        }
        let digest = Sha256::digest(&out);
        out.extend_from_slice(&digest);
        out
    }

    /// Parses a record written by [`RefusedCommit::encode`].
    pub fn decode(bytes: &[u8]) -> std::result::Result<Self, DecodeError> {
        let bad = |what: &'static str, offset: usize| DecodeError { what, offset };
        if bytes.len() < MAGIC.len() + 32 || !bytes.starts_with(MAGIC) {
            return Err(bad("not a refused-commit record", 0));
        }
        let (body, digest) = bytes.split_at(bytes.len() - 32);
        if Sha256::digest(body).as_slice() != digest {
            return Err(bad(
                "the refused-commit record's checksum does not match",
                body.len(),
            ));
        }
        let mut reader = Cursor {
            bytes: body,
            at: MAGIC.len(),
        };
        let error = String::from_utf8(reader.bytes32()?.to_vec())
            .map_err(|_| bad("the error message is not UTF-8", MAGIC.len()))?;
        let probe = reader.entry()?;
        let count = reader.u32()?;
        let mut before = Vec::new();
        for _ in 0..count {
            before.push(reader.entry()?);
        }
        if reader.at != body.len() {
            return Err(bad("bytes after the last key", reader.at));
        }
        Ok(RefusedCommit {
            error,
            probe,
            before,
        })
    }

    /// The batch that writes every before-value back.
    fn undo(&self) -> WriteBatch {
        let mut batch = WriteBatch::new();
        for (keyspace, key, value) in &self.before {
            match value {
                Some(value) => batch.put(keyspace, key.clone(), value.clone()),
                None => batch.delete(keyspace, key.clone()),
            }
        }
        batch
    }
}

/// A failed [`commit_or_keep`].
#[derive(Debug)]
pub(crate) struct CommitFailure {
    /// For the caller.
    pub error: Error,
    /// True when the failure was ambiguous: the database must write nothing more.
    pub poisons: bool,
}

/// Commits `batch`; after an ambiguous failure keeps its [`RefusedCommit`] (read against
/// a snapshot, which a failed commit never changes) before anything else is written, so
/// that the next open undoes the batch should it reach the disk after all. The error says
/// so when even the record could not be kept.
pub(crate) fn commit_or_keep(
    backend: &dyn StorageBackend,
    batch: &WriteBatch,
    durability: Durability,
) -> std::result::Result<(), CommitFailure> {
    let error = match backend.commit(batch, durability) {
        Ok(()) => return Ok(()),
        Err(error) if error.is_clean_refusal() => {
            return Err(CommitFailure {
                poisons: matches!(error, StorageError::Poisoned),
                error: error.into(),
            });
        }
        Err(error) => error,
    };
    let message = error.to_string();
    let kept = backend
        .snapshot()
        .map_err(Error::from)
        .and_then(|snapshot| RefusedCommit::capture(batch, &message, &*snapshot))
        .and_then(|record| match record {
            Some(record) => backend
                .put_side_record(REFUSED_COMMIT_RECORD, &record.encode())
                .map_err(Error::from),
            None => Ok(()),
        });
    Err(CommitFailure {
        error: match kept {
            Ok(()) => Error::Storage(error),
            Err(why) => Error::RefusalNotKept {
                source: error,
                why: why.to_string(),
            },
        },
        poisons: true,
    })
}

/// What the open found of a refused commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovered {
    /// The error the commit had reported.
    pub error: String,
    /// True when the batch had become durable and was undone.
    pub undone: bool,
    /// Keys written back (0 when nothing had landed).
    pub keys: usize,
}

impl Recovered {
    /// The SYSTEM event's detail.
    pub fn detail(&self) -> String {
        if self.undone {
            format!(
                "a commit that failed with \"{}\" had reached the disk after all; undone at open ({} keys restored)",
                self.error, self.keys
            )
        } else {
            format!(
                "a commit that failed with \"{}\" had not reached the disk; nothing to undo",
                self.error
            )
        }
    }
}

/// Finds a refused commit left by an earlier open and undoes it if it became durable.
/// A database opened `read_only` undoes nothing: a refused commit that landed is an
/// error there (open it once read-write), one that did not is left for that open too.
pub fn recover(backend: &dyn StorageBackend, read_only: bool) -> Result<Option<Recovered>> {
    let Some(bytes) = backend.side_record(REFUSED_COMMIT_RECORD)? else {
        return Ok(None);
    };
    let refused = RefusedCommit::decode(&bytes).map_err(|source| Error::Corrupt {
        keyspace: "(side records)",
        what: "refused-commit record",
        key_hex: crate::error::hex(REFUSED_COMMIT_RECORD.as_bytes()),
        source: CorruptSource::Decode(source),
    })?;
    let snapshot = backend.snapshot()?;
    let (keyspace, key, after) = &refused.probe;
    let now = read(&*snapshot, keyspace, key)?;
    let before = refused
        .before
        .iter()
        .find(|(k, key2, _)| k == keyspace && key2 == key)
        .and_then(|(_, _, value)| value.clone());
    drop(snapshot);
    let landed = if now == *after {
        true
    } else if now == before {
        false
    } else {
        return Err(Error::Integrity(format!(
            "a commit refused earlier (\"{}\") left a key in keyspace {keyspace:?} that holds neither its value before nor the refused one; the database was changed outside this engine",
            refused.error
        )));
    };
    if read_only {
        if landed {
            return Err(Error::ReadOnly(format!(
                "a commit that failed with \"{}\" reached the disk after all and must be undone before the data can be read; open the database once read-write (or a copy of it) to undo it",
                refused.error
            )));
        }
        return Ok(None);
    }
    if landed {
        backend.commit(&refused.undo(), Durability::Sync)?;
    }
    backend.remove_side_record(REFUSED_COMMIT_RECORD)?;
    Ok(Some(Recovered {
        error: refused.error.clone(),
        undone: landed,
        keys: if landed { refused.keys() } else { 0 },
    }))
}

fn read(snapshot: &dyn Snapshot, keyspace: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
    match snapshot.get(keyspace, key) {
        Ok(value) => Ok(value),
        // A keyspace the batch names but storage lacks holds nothing yet.
        Err(StorageError::UnknownKeyspace { .. }) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

fn put_bytes32(out: &mut Vec<u8>, bytes: &[u8]) {
    // Keys and values are bounded by MAX_VALUE_LEN (1 GiB), below u32::MAX.
    out.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn put_entry(out: &mut Vec<u8>, (keyspace, key, value): &Entry) {
    // Keyspace names are at most 64 bytes (validate_keyspace_name).
    out.extend_from_slice(
        &u16::try_from(keyspace.len())
            .unwrap_or(u16::MAX)
            .to_be_bytes(),
    );
    out.extend_from_slice(keyspace.as_bytes());
    put_bytes32(out, key);
    match value {
        Some(value) => {
            out.push(1);
            put_bytes32(out, value);
        }
        None => out.push(0),
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], DecodeError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len());
        let end = end.ok_or(DecodeError {
            what: "the refused-commit record ends early",
            offset: self.at,
        })?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn u32(&mut self) -> std::result::Result<u32, DecodeError> {
        let bytes = self.take(4)?;
        Ok(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    fn bytes32(&mut self) -> std::result::Result<&'a [u8], DecodeError> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    fn entry(&mut self) -> std::result::Result<Entry, DecodeError> {
        let at = self.at;
        let len = self.take(2)?;
        let len = u16::from_be_bytes([len[0], len[1]]) as usize;
        let keyspace = std::str::from_utf8(self.take(len)?)
            .map_err(|_| DecodeError {
                what: "a keyspace name is not UTF-8",
                offset: at,
            })?
            .to_owned();
        let key = self.bytes32()?.to_vec();
        let value = match self.take(1)?[0] {
            0 => None,
            1 => Some(self.bytes32()?.to_vec()),
            _ => {
                return Err(DecodeError {
                    what: "a value tag is neither 0 nor 1",
                    offset: self.at - 1,
                });
            }
        };
        Ok((keyspace, key, value))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_record_round_trips_and_rejects_every_flipped_byte() {
        let refused = RefusedCommit {
            error: "I/O error: No space left on device (os error 28)".to_owned(),
            probe: ("rows".to_owned(), b"k1".to_vec(), Some(b"new".to_vec())),
            before: vec![
                ("rows".to_owned(), b"k1".to_vec(), None),
                ("audit".to_owned(), b"head".to_vec(), Some(b"old".to_vec())),
            ],
        };
        let bytes = refused.encode();
        assert_eq!(RefusedCommit::decode(&bytes).unwrap(), refused);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            assert!(RefusedCommit::decode(&bad).is_err(), "byte {i}");
        }
        assert!(RefusedCommit::decode(&bytes[..bytes.len() - 1]).is_err());
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = RefusedCommit::decode(&bytes);
            let mut with_magic = MAGIC.to_vec();
            with_magic.extend_from_slice(&bytes);
            let _ = RefusedCommit::decode(&with_magic);
        }
    }
}
