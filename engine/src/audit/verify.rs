//! Verification of the stored ledger: every record re-hashed from its canonical bytes, the
//! chain recomputed from genesis, and the head compared with the last recomputed link.
//!
//! [`verify`] streams the `audit` keyspace once, in seq order, over one snapshot, in constant
//! memory. It trusts nothing it reads: the stored chain hash of each record is only compared
//! with the recomputed one, never used to continue the chain. It stops at the first problem
//! and names the seq, so "where did the tampering start" has an exact answer.
//!
//! ```
//! # use heliosdb_engine::audit::{ProblemKind, VerifyReport, Problem};
//! let report = VerifyReport {
//!     events_checked: 6,
//!     head: None,
//!     last_seq: 6,
//!     problem: Some(Problem { seq: 7, kind: ProblemKind::Gap { expected: 7 } }),
//!     pruned_through: 0,
//! };
//! assert!(!report.is_intact());
//! assert_eq!(report.problem.unwrap().to_string(), "seq 7: event 7 is missing (the next stored event has a higher seq)");
//! ```

use super::event::{CANONICAL_MAGIC, CANONICAL_VERSION};
use super::ledger::{
    DATABASE_ID_KEY, HEAD_KEY, Hash, Head, KS_AUDIT, KS_AUDIT_INDEX, chain_hash, decode_record,
    genesis, index_entries, leaf_hash, record_key, seq_as_i64, split_record,
};
use super::{ledger, prune};
use crate::backend::{Direction, KeyValue, KvIter, Snapshot, StorageBackend};
use crate::catalog::KS_CATALOG;
use crate::codec::{DecodeError, Reader};
use crate::codec::{decode_key, encode_key};
use crate::error::{Error, Result, hex};
use gluesql_core::data::Key;
use serde::Serialize;
use serde::ser::{SerializeStruct, Serializer};
use sha2::{Digest, Sha256};
use std::fmt;
use std::ops::Bound;
use std::sync::mpsc;

/// Byte offset of the seq (u64 BE) inside canonical event bytes.
pub const SEQ_OFFSET: usize = 5;
/// Byte offset of the database id (16 bytes) inside canonical event bytes.
pub const DATABASE_ID_OFFSET: usize = 21;
/// Length of the fixed-width prefix of canonical event bytes (magic, version, seq,
/// timestamp, database id, session id).
pub const FIXED_PREFIX_LEN: usize = 45;

/// What is wrong at the first bad event (of the ledger or of an export).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProblemKind {
    /// The stored record (or its key) is not a well-formed audit record.
    Undecodable(String),
    /// The seq in the storage key differs from the seq inside the event.
    SeqMismatch {
        /// Seq taken from the storage key.
        key_seq: u64,
        /// Seq inside the canonical event bytes.
        event_seq: u64,
    },
    /// An event is missing: the next stored event has a higher seq than `expected`.
    Gap {
        /// The missing seq.
        expected: u64,
    },
    /// An event repeats an earlier seq or comes out of order.
    Duplicate,
    /// The event names another database than the one it is stored in (or the first line
    /// of the export).
    ForeignDatabase,
    /// The chain hash recomputed from the canonical bytes and the previous link differs
    /// from the stored one: this event or one before it was changed, removed or inserted.
    ChainMismatch {
        /// The recomputed chain hash, hex.
        expected_hex: String,
        /// The stored chain hash, hex.
        stored_hex: String,
    },
    /// The ledger head (`catalog` `audit/head`) is missing, undecodable, or does not match
    /// the last recomputed link.
    HeadMismatch {
        /// Seq recorded in the head; `None` when the head is missing or undecodable.
        head_seq: Option<u64>,
        /// Chain hash recorded in the head, hex; `None` when missing or undecodable.
        head_chain_hex: Option<String>,
        /// Seq of the last event actually stored.
        last_seq: u64,
        /// Chain hash recomputed through the last event, hex.
        last_chain_hex: String,
    },
    /// Exports only: a line's `leaf` differs from the hash of its fields (while its `chain`
    /// matches): the line's fields and leaf were edited apart.
    LeafMismatch {
        /// The recomputed leaf hash, hex.
        expected_hex: String,
        /// The leaf written in the line, hex.
        stored_hex: String,
    },
    /// Exports only: the line is not JSON, or not a well-formed export record (unknown or
    /// missing field, wrong type, bad hex, `timestamp` disagreeing with `timestamp_us`).
    Json(String),
    /// The `__audit_log` index entries (`audit_idx`) disagree with the events: an entry is
    /// missing (the event would be hidden from indexed queries), points at no event, or
    /// holds another value than the event.
    IndexMismatch {
        /// The index concerned.
        index: String,
        /// What is wrong.
        detail: String,
    },
    /// The prune anchor (where the kept ledger starts after pruning) is undecodable, or no
    /// `PRUNE` event in the chain states it: the start of the ledger was cut without
    /// pruning.
    PruneAnchor(String),
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProblemKind::Undecodable(why) => write!(f, "record cannot be decoded: {why}"),
            ProblemKind::SeqMismatch { key_seq, event_seq } => write!(
                f,
                "record stored under seq {key_seq} holds event seq {event_seq} (moved or swapped)"
            ),
            ProblemKind::Gap { expected } => write!(
                f,
                "event {expected} is missing (the next stored event has a higher seq)"
            ),
            ProblemKind::Duplicate => write!(f, "seq repeats an earlier event or is out of order"),
            ProblemKind::ForeignDatabase => {
                write!(f, "event belongs to another database (database id differs)")
            }
            ProblemKind::ChainMismatch {
                expected_hex,
                stored_hex,
            } => write!(
                f,
                "chain hash mismatch: recomputed {expected_hex}, stored {stored_hex} \
                 (this event or the one before it was altered, removed or inserted)"
            ),
            ProblemKind::HeadMismatch {
                head_seq,
                head_chain_hex,
                last_seq,
                last_chain_hex,
            } => match (head_seq, head_chain_hex) {
                (Some(seq), Some(chain)) => write!(
                    f,
                    "ledger head (seq {seq}, chain {chain}) does not match the last event \
                     (seq {last_seq}, chain {last_chain_hex})"
                ),
                _ => write!(
                    f,
                    "ledger head is missing or undecodable; the last event is seq {last_seq}, \
                     chain {last_chain_hex}"
                ),
            },
            ProblemKind::LeafMismatch {
                expected_hex,
                stored_hex,
            } => write!(
                f,
                "leaf hash mismatch: recomputed {expected_hex}, written {stored_hex}"
            ),
            ProblemKind::Json(why) => write!(f, "not a valid export line: {why}"),
            ProblemKind::IndexMismatch { index, detail } => {
                write!(f, "index {index} disagrees with the events: {detail}")
            }
            ProblemKind::PruneAnchor(why) => write!(f, "prune anchor: {why}"),
        }
    }
}

/// The first problem found: at which seq, and what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The seq where verification failed. For [`ProblemKind::Gap`] the missing seq; for
    /// [`ProblemKind::HeadMismatch`] the first seq where head and events disagree.
    pub seq: u64,
    /// What is wrong.
    #[serde(flatten)]
    pub kind: ProblemKind,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seq {}: {}", self.seq, self.kind)
    }
}

/// The outcome of [`verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// Events whose every check passed (all of them when intact).
    pub events_checked: u64,
    /// The stored ledger head, when present and decodable.
    pub head: Option<Head>,
    /// Seq of the last event that passed every check (0 when none did).
    pub last_seq: u64,
    /// The first problem, or `None` when the ledger is intact.
    pub problem: Option<Problem>,
    /// The last seq removed by pruning (0 when the ledger was never pruned): checking
    /// started after it, from the prune anchor.
    pub pruned_through: u64,
}

impl VerifyReport {
    /// True when no problem was found.
    pub fn is_intact(&self) -> bool {
        self.problem.is_none()
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "events checked: {}", self.events_checked)?;
        if self.pruned_through > 0 {
            writeln!(
                f,
                "pruned: events 1..={} (checked from the prune anchor)",
                self.pruned_through
            )?;
        }
        match &self.head {
            Some(head) => writeln!(f, "head: seq {}, chain {}", head.seq, hex(&head.chain))?,
            None => writeln!(f, "head: none")?,
        }
        match &self.problem {
            None => writeln!(f, "intact"),
            Some(problem) => writeln!(f, "TAMPERED: {problem}"),
        }
    }
}

/// JSON shape: `{"intact":true,"events_checked":..,"last_seq":..,
/// "head":{"seq":..,"chain":"hex"}|null,"problem":{"seq":..,"kind":..,"detail":..,
/// "message":".."}|null}`.
impl Serialize for VerifyReport {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("VerifyReport", 6)?;
        s.serialize_field("intact", &self.is_intact())?;
        s.serialize_field("events_checked", &self.events_checked)?;
        s.serialize_field("last_seq", &self.last_seq)?;
        s.serialize_field("pruned_through", &self.pruned_through)?;
        s.serialize_field("head", &self.head.as_ref().map(HeadJson::from))?;
        s.serialize_field("problem", &self.problem.as_ref().map(ProblemJson::from))?;
        s.end()
    }
}

#[derive(Serialize)]
struct HeadJson {
    seq: u64,
    chain: String,
}

impl From<&Head> for HeadJson {
    fn from(head: &Head) -> Self {
        HeadJson {
            seq: head.seq,
            chain: hex(&head.chain),
        }
    }
}

#[derive(Serialize)]
struct ProblemJson<'a> {
    #[serde(flatten)]
    problem: &'a Problem,
    message: String,
}

impl<'a> From<&'a Problem> for ProblemJson<'a> {
    fn from(problem: &'a Problem) -> Self {
        ProblemJson {
            problem,
            message: problem.to_string(),
        }
    }
}

/// How [`verify_with`] spreads its work, and what it checks beyond the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifyOptions {
    /// Also check that the `__audit_log` indexes hold exactly one entry per event and
    /// index, with the event's value (default true). Costs a second pass over the events
    /// and one over the index entries; on a mismatch a slower pass names the first seq
    /// concerned.
    pub check_indexes: bool,
    /// Threads that check and leaf-hash records while the calling thread reads the ledger
    /// and follows the chain. Default 0: everything on the calling thread. Leaf hashes are
    /// independent of each other, so they parallelize; the chain itself is sequential, and
    /// beyond about three hash threads the calling thread (reading, plus two of the seven
    /// or eight SHA-256 blocks of a typical event) is the bottleneck. Worth it only with
    /// idle cores: on a busy or two-core machine the extra thread can make it slower.
    pub hash_threads: usize,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self {
            check_indexes: true,
            hash_threads: 0,
        }
    }
}

/// Records handed to a hash thread at once. Memory in flight is bounded by
/// `2 * hash_threads` chunks whatever the ledger size.
const CHUNK: usize = 512;

/// Verifies the whole ledger of the database stored in `backend`, over one snapshot, on
/// the calling thread.
///
/// Returns `Ok` with a report in every case where the stored data could be read, intact or
/// not; `Err` only when the backend itself fails. Memory use is constant in the number of
/// events.
pub fn verify(backend: &dyn StorageBackend) -> Result<VerifyReport> {
    verify_with(backend, VerifyOptions::default())
}

/// [`verify`] with explicit options.
pub fn verify_with(backend: &dyn StorageBackend, options: VerifyOptions) -> Result<VerifyReport> {
    let keyspaces = backend.keyspaces()?;
    let has = |name: &str| keyspaces.iter().any(|k| k == name);
    let (has_catalog, has_audit) = (has(KS_CATALOG), has(KS_AUDIT));
    let snapshot = backend.snapshot()?;

    let (database_id, stored_head) = if has_catalog {
        let id = snapshot
            .get(KS_CATALOG, DATABASE_ID_KEY)?
            .and_then(|bytes| <[u8; 16]>::try_from(bytes.as_slice()).ok());
        let head = snapshot.get(KS_CATALOG, HEAD_KEY)?;
        (id, head)
    } else {
        (None, None)
    };
    // `None`: no head stored; `Some(None)`: stored but undecodable.
    let stored_head: Option<Option<Head>> = stored_head.map(|bytes| Head::decode(&bytes).ok());
    let mut report = VerifyReport {
        events_checked: 0,
        head: stored_head.flatten(),
        last_seq: 0,
        problem: None,
        pruned_through: 0,
    };
    let mut chain: Option<Hash> = database_id.as_ref().map(genesis);
    let anchor = if has_catalog {
        match prune::load_anchor(&*snapshot) {
            Ok(anchor) => anchor,
            Err(error) => {
                report.problem = Some(Problem {
                    seq: 1,
                    kind: ProblemKind::PruneAnchor(error.to_string()),
                });
                return Ok(report);
            }
        }
    } else {
        None
    };
    if let Some(anchor) = &anchor {
        // Checking starts where the kept ledger starts.
        report.pruned_through = anchor.first_kept - 1;
        report.last_seq = anchor.first_kept - 1;
        if database_id.is_some() {
            chain = Some(anchor.chain_before);
        }
    }

    if has_audit {
        let records = snapshot.range(
            KS_AUDIT,
            Bound::Unbounded,
            Bound::Unbounded,
            Direction::Forward,
        )?;
        scan(records, options.hash_threads, |key, value, leaf| {
            let expected = report.last_seq.saturating_add(1);
            match check_record(
                key,
                value,
                leaf,
                expected,
                database_id.as_ref(),
                chain.as_ref(),
            ) {
                Ok(next) => {
                    chain = Some(next);
                    report.events_checked += 1;
                    report.last_seq = expected;
                    true
                }
                Err(problem) => {
                    report.problem = Some(problem);
                    false
                }
            }
        })?;
        if report.problem.is_some() {
            return Ok(report);
        }
    }

    report.problem = check_head(stored_head, report.last_seq, chain);
    if report.problem.is_none()
        && let Some(anchor) = &anchor
    {
        report.problem = check_anchor(snapshot.as_ref(), anchor)?;
    }
    if report.problem.is_none() && options.check_indexes && has_audit {
        report.problem = check_indexes(snapshot.as_ref(), has(KS_AUDIT_INDEX))?;
    }
    Ok(report)
}

/// The newest `PRUNE` event must state the anchor: a start cut off without pruning (or a
/// forged anchor) has no such event in the chain.
fn check_anchor(snapshot: &dyn Snapshot, anchor: &prune::PruneAnchor) -> Result<Option<Problem>> {
    let problem = |why: String| {
        Some(Problem {
            seq: anchor.first_kept,
            kind: ProblemKind::PruneAnchor(why),
        })
    };
    let Some(seq) = prune::newest_prune_event(snapshot)? else {
        return Ok(problem(format!(
            "the ledger starts at seq {} but no PRUNE event records a prune",
            anchor.first_kept
        )));
    };
    let key = record_key(seq);
    let Some(value) = snapshot.get(KS_AUDIT, &key)? else {
        return Ok(problem(format!("the PRUNE event {seq} is missing")));
    };
    let record = match ledger::decode_record(&key, &value) {
        Ok(record) => record,
        Err(error) => return Ok(problem(format!("the PRUNE event {seq}: {error}"))),
    };
    let stated: Vec<(String, String)> = prune::anchor_fields(anchor).into();
    let agrees = record.event.operation == prune::PRUNE_OPERATION
        && stated
            .iter()
            .all(|(field, value)| record.event.custom.get(field) == Some(value));
    Ok(if agrees {
        None
    } else {
        problem(format!(
            "the stored anchor (first kept {}) differs from the one the newest PRUNE event {seq} states",
            anchor.first_kept
        ))
    })
}

/// An order-independent digest of a set of index entries: their count and the wrapping sum
/// of the first 16 bytes of each entry's SHA-256.
#[derive(Default, PartialEq, Eq)]
struct EntryDigest {
    count: u64,
    sum: u128,
}

impl EntryDigest {
    fn add(&mut self, entry: &[u8]) {
        let hash = Sha256::digest(entry);
        let mut first = [0u8; 16];
        first.copy_from_slice(&hash[..16]);
        self.count += 1;
        self.sum = self.sum.wrapping_add(u128::from_be_bytes(first));
    }
}

/// Every entry of a keyspace, in key order.
fn all_of<'s>(snapshot: &'s dyn Snapshot, keyspace: &str) -> Result<KvIter<'s>> {
    Ok(snapshot.range(
        keyspace,
        Bound::Unbounded,
        Bound::Unbounded,
        Direction::Forward,
    )?)
}

/// The entries the events of a (chain-verified) ledger call for, by seq.
fn expected_entries(
    snapshot: &dyn Snapshot,
    mut each: impl FnMut(u64, Vec<(&'static str, Vec<u8>)>) -> bool,
) -> Result<()> {
    for item in all_of(snapshot, KS_AUDIT)? {
        let (key, value) = item?;
        let record = decode_record(&key, &value)?;
        let seq = record.event.seq;
        let pk = encode_key(&Key::I64(seq_as_i64(seq)?));
        if !each(seq, index_entries(&record.event, &pk)?) {
            break;
        }
    }
    Ok(())
}

/// Checks `audit_idx` against the events. A digest comparison decides; only on a
/// mismatch are entries looked up one by one to name the first seq concerned.
fn check_indexes(snapshot: &dyn Snapshot, has_index: bool) -> Result<Option<Problem>> {
    let mut expected = EntryDigest::default();
    expected_entries(snapshot, |_, entries| {
        for (_, entry) in &entries {
            expected.add(entry);
        }
        true
    })?;
    let mut actual = EntryDigest::default();
    let mut malformed: Option<Problem> = None;
    if has_index {
        for item in all_of(snapshot, KS_AUDIT_INDEX)? {
            let (key, value) = item?;
            if malformed.is_none() && !key.ends_with(&value) {
                malformed = Some(Problem {
                    seq: entry_seq(&value).unwrap_or(0),
                    kind: ProblemKind::IndexMismatch {
                        index: index_name(&key),
                        detail: "an entry's value is not the key it ends with".to_owned(),
                    },
                });
            }
            actual.add(&key);
        }
    }
    if malformed.is_some() {
        return Ok(malformed);
    }
    if actual == expected {
        return Ok(None);
    }
    locate_index_problem(snapshot).map(Some)
}

/// The seq an index entry's value (an encoded `I64` key) points at.
fn entry_seq(value: &[u8]) -> Option<u64> {
    match decode_key(value).ok()? {
        Key::I64(seq) => u64::try_from(seq).ok(),
        _ => None,
    }
}

/// The index name inside an `audit_idx` key (table id, name length, name, ...).
fn index_name(key: &[u8]) -> String {
    let len = key
        .get(8..10)
        .map_or(0, |b| usize::from(u16::from_be_bytes([b[0], b[1]])));
    key.get(10..10 + len)
        .map(|name| String::from_utf8_lossy(name).into_owned())
        .unwrap_or_else(|| "(unreadable)".to_owned())
}

/// Names the first seq whose index entries are wrong: one missing for an event, or one
/// present that no event calls for.
fn locate_index_problem(snapshot: &dyn Snapshot) -> Result<Problem> {
    let mut first: Option<Problem> = None;
    let mut found_missing = Ok(());
    expected_entries(snapshot, |seq, entries| {
        for (index, entry) in entries {
            match snapshot.get(KS_AUDIT_INDEX, &entry) {
                Ok(Some(_)) => {}
                Ok(None) => {
                    first = Some(Problem {
                        seq,
                        kind: ProblemKind::IndexMismatch {
                            index: index.to_owned(),
                            detail:
                                "the event's entry is missing: indexed queries would not find it"
                                    .to_owned(),
                        },
                    });
                    return false;
                }
                Err(e) => {
                    found_missing = Err(e);
                    return false;
                }
            }
        }
        true
    })?;
    found_missing?;
    for item in all_of(snapshot, KS_AUDIT_INDEX)? {
        let (key, value) = item?;
        let seq = entry_seq(&value);
        let genuine = match seq {
            Some(seq) => match snapshot.get(KS_AUDIT, &record_key(seq))? {
                Some(record) => {
                    let record = decode_record(&record_key(seq), &record)?;
                    index_entries(&record.event, &value)?
                        .iter()
                        .any(|(_, entry)| *entry == key)
                }
                None => false,
            },
            None => false,
        };
        if !genuine {
            let seq = seq.unwrap_or(0);
            if first.as_ref().is_none_or(|p| seq < p.seq) {
                first = Some(Problem {
                    seq,
                    kind: ProblemKind::IndexMismatch {
                        index: index_name(&key),
                        detail: "an entry matches no event (added or altered)".to_owned(),
                    },
                });
            }
        }
    }
    Ok(first.unwrap_or(Problem {
        seq: 0,
        kind: ProblemKind::IndexMismatch {
            index: "audit_idx".to_owned(),
            detail: "the entries differ from what the events call for".to_owned(),
        },
    }))
}

/// What a hash thread computes for one stored value: the structure check and the leaf hash.
type Leaf = Result<Hash, DecodeError>;

fn leaf_of(value: &[u8]) -> Leaf {
    let (canonical, _) = split_record(value)?;
    check_canonical(canonical)?;
    Ok(leaf_hash(canonical))
}

/// Feeds every record, in order, with its [`Leaf`], to `each` until it returns false.
/// With `threads > 0`, chunks of records go round-robin to that many hash threads and
/// come back in the same order; at most two chunks per thread are in flight.
fn scan(
    records: KvIter<'_>,
    threads: usize,
    mut each: impl FnMut(&[u8], &[u8], Leaf) -> bool,
) -> Result<()> {
    if threads == 0 {
        for item in records {
            let (key, value) = item?;
            let leaf = leaf_of(&value);
            if !each(&key, &value, leaf) {
                break;
            }
        }
        return Ok(());
    }
    std::thread::scope(|scope| {
        let mut inputs = Vec::with_capacity(threads);
        let mut outputs = Vec::with_capacity(threads);
        for _ in 0..threads {
            let (input, chunks) = mpsc::sync_channel::<Vec<KeyValue>>(2);
            // Unbounded, so a hash thread never waits for the reader: the in-flight limit
            // below bounds it.
            let (output, done) = mpsc::channel::<(Vec<KeyValue>, Vec<Leaf>)>();
            scope.spawn(move || {
                for chunk in chunks {
                    let leaves = chunk.iter().map(|(_, value)| leaf_of(value)).collect();
                    if output.send((chunk, leaves)).is_err() {
                        return;
                    }
                }
            });
            inputs.push(input);
            outputs.push(done);
        }
        let stopped = || Error::Internal("a verify hash thread stopped".to_owned());
        let (mut sent, mut received) = (0usize, 0usize);
        let mut records = records.fuse();
        loop {
            let mut chunk = Vec::with_capacity(CHUNK);
            for item in records.by_ref().take(CHUNK) {
                chunk.push(item?);
            }
            let end = chunk.len() < CHUNK;
            if !chunk.is_empty() {
                inputs[sent % threads].send(chunk).map_err(|_| stopped())?;
                sent += 1;
            }
            while sent - received >= 2 * threads || (end && received < sent) {
                let (chunk, leaves) = outputs[received % threads].recv().map_err(|_| stopped())?;
                received += 1;
                for ((key, value), leaf) in chunk.iter().zip(leaves) {
                    if !each(key, value, leaf) {
                        return Ok(());
                    }
                }
            }
            if end {
                return Ok(());
            }
        }
    })
}

/// Checks one stored record against the expected seq, the database id and the previous
/// link, given its [`Leaf`]; returns the recomputed chain hash.
fn check_record(
    key: &[u8],
    value: &[u8],
    leaf: Leaf,
    expected: u64,
    database_id: Option<&[u8; 16]>,
    prev: Option<&Hash>,
) -> Result<Hash, Problem> {
    let at = |seq: u64, kind: ProblemKind| Problem { seq, kind };
    let key_seq = match <[u8; 8]>::try_from(key) {
        Ok(bytes) => u64::from_be_bytes(bytes),
        Err(_) => {
            return Err(at(
                expected,
                ProblemKind::Undecodable(format!(
                    "record key of {} bytes (expected 8: the seq, u64 big-endian)",
                    key.len()
                )),
            ));
        }
    };
    if key_seq == 0 {
        return Err(at(
            0,
            ProblemKind::Undecodable("record key is seq 0 (seqs start at 1)".to_owned()),
        ));
    }
    if key_seq > expected {
        return Err(at(expected, ProblemKind::Gap { expected }));
    }
    if key_seq < expected {
        return Err(at(key_seq, ProblemKind::Duplicate));
    }
    let undecodable = |e: DecodeError| at(key_seq, ProblemKind::Undecodable(e.to_string()));
    let leaf = leaf.map_err(undecodable)?;
    let (canonical, stored_chain) = split_record(value).map_err(undecodable)?;
    let event_seq = read_u64(canonical, SEQ_OFFSET);
    if event_seq != key_seq {
        return Err(at(key_seq, ProblemKind::SeqMismatch { key_seq, event_seq }));
    }
    let (Some(database_id), Some(prev)) = (database_id, prev) else {
        return Err(at(key_seq, ProblemKind::ForeignDatabase));
    };
    // Fixed-size arrays compare inline; slices would call `memcmp`.
    let mut event_id = [0u8; 16];
    event_id.copy_from_slice(&canonical[DATABASE_ID_OFFSET..DATABASE_ID_OFFSET + 16]);
    if event_id != *database_id {
        return Err(at(key_seq, ProblemKind::ForeignDatabase));
    }
    let chain = chain_hash(prev, &leaf);
    if chain != stored_chain {
        return Err(at(
            key_seq,
            ProblemKind::ChainMismatch {
                expected_hex: hex(&chain),
                stored_hex: hex(&stored_chain),
            },
        ));
    }
    Ok(chain)
}

/// Compares the stored head with the last recomputed link (`None` when there is no stored
/// database id to start the chain from: then no head can match).
fn check_head(
    stored: Option<Option<Head>>,
    last_seq: u64,
    last_chain: Option<Hash>,
) -> Option<Problem> {
    let last_chain_hex = last_chain.as_ref().map(|c| hex(c)).unwrap_or_default();
    let mismatch = |seq: u64, head: Option<Head>| Problem {
        seq,
        kind: ProblemKind::HeadMismatch {
            head_seq: head.map(|h| h.seq),
            head_chain_hex: head.map(|h| hex(&h.chain)),
            last_seq,
            last_chain_hex: last_chain_hex.clone(),
        },
    };
    match stored {
        // A database whose ledger is still empty has no head yet.
        None if last_seq == 0 => None,
        None | Some(None) => Some(mismatch(last_seq, None)),
        Some(Some(head)) => {
            if head.seq > last_seq {
                Some(mismatch(last_seq + 1, Some(head)))
            } else if head.seq < last_seq {
                Some(mismatch(head.seq + 1, Some(head)))
            } else if Some(head.chain) != last_chain {
                Some(mismatch(last_seq, Some(head)))
            } else {
                None
            }
        }
    }
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_be_bytes(b)
}

/// Skips a u32-counted list of texts, checking each.
fn texts(w: &mut Reader<'_>) -> Result<(), DecodeError> {
    for _ in 0..w.count(4)? {
        w.text()?;
    }
    Ok(())
}

/// Checks that `bytes` is exactly what [`AuditEvent::canonical`] produces for some event —
/// the same rules as [`AuditEvent::from_canonical`] — without allocating.
///
/// [`AuditEvent::canonical`]: super::AuditEvent::canonical
/// [`AuditEvent::from_canonical`]: super::AuditEvent::from_canonical
pub fn check_canonical(bytes: &[u8]) -> Result<(), DecodeError> {
    let mut w = Reader::new(bytes);
    let mut magic = [0u8; 4];
    magic.copy_from_slice(w.take(4)?);
    if magic != *CANONICAL_MAGIC {
        return Err(w.err_at(0, "not an audit event (bad magic)"));
    }
    if w.u8()? != CANONICAL_VERSION {
        return Err(w.err_at(4, "unknown audit event version"));
    }
    // seq, timestamp, database id, session id.
    w.take(FIXED_PREFIX_LEN - 5)?;
    for _ in 0..4 {
        w.text()?; // user, client address, application, database name
    }
    let class_at = w.pos;
    if !(1..=7).contains(&w.u8()?) {
        return Err(w.err_at(class_at, "unknown event class"));
    }
    w.text()?; // operation
    texts(&mut w)?; // targets
    w.text()?; // query
    w.flag()?; // query truncated
    texts(&mut w)?; // params
    w.take(8)?; // rows
    w.flag()?; // success
    if w.flag()? {
        w.text()?; // error
    }
    w.take(8)?; // duration
    let count = w.u32()?;
    let mut last: Option<&[u8]> = None;
    for _ in 0..count {
        let at = w.pos;
        let key = w.text()?;
        w.text()?;
        // Byte order of UTF-8 is code point order: the same order as `String`'s `Ord`.
        if last.is_some_and(|last| last >= key) {
            return Err(w.err_at(at, "custom keys not strictly sorted"));
        }
        last = Some(key);
    }
    if w.pos != bytes.len() {
        return Err(w.err("trailing bytes after audit event"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditEvent;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// The shared sample, with a non-ASCII error and two custom fields.
    fn sample() -> AuditEvent {
        AuditEvent {
            error: Some("ö".into()),
            custom: BTreeMap::from([("a".into(), "1".into()), ("ward".into(), "x".into())]),
            ..crate::audit::event::tests::sample()
        }
    }

    #[test]
    fn fixed_offsets_match_the_encoding() {
        let bytes = sample().canonical();
        assert_eq!(read_u64(&bytes, SEQ_OFFSET), 7);
        assert_eq!(
            &bytes[DATABASE_ID_OFFSET..DATABASE_ID_OFFSET + 16],
            &[0xAB; 16]
        );
        assert_eq!(read_u64(&bytes, FIXED_PREFIX_LEN - 8), 3);
        assert_eq!(
            &bytes[FIXED_PREFIX_LEN..FIXED_PREFIX_LEN + 4],
            &8u32.to_be_bytes()
        );
    }

    #[test]
    fn the_walker_accepts_exactly_what_the_decoder_accepts() {
        let bytes = sample().canonical();
        assert!(check_canonical(&bytes).is_ok());
        for cut in 0..bytes.len() {
            assert!(check_canonical(&bytes[..cut]).is_err(), "cut {cut}");
        }
        for i in 0..bytes.len() {
            for delta in [1u8, 0x80, 0xFF] {
                let mut changed = bytes.clone();
                changed[i] = changed[i].wrapping_add(delta);
                assert_eq!(
                    check_canonical(&changed).is_ok(),
                    AuditEvent::from_canonical(&changed).is_ok(),
                    "byte {i} + {delta}"
                );
            }
        }
    }

    proptest! {
        #[test]
        fn the_walker_agrees_with_the_decoder_on_any_bytes(
            prefix in 0usize..120,
            noise in proptest::collection::vec(any::<u8>(), 0..60),
        ) {
            let mut bytes = sample().canonical();
            let at = prefix.min(bytes.len());
            bytes.truncate(at);
            bytes.extend(noise);
            prop_assert_eq!(
                check_canonical(&bytes).is_ok(),
                AuditEvent::from_canonical(&bytes).is_ok()
            );
        }
    }

    #[test]
    fn problems_name_the_seq() {
        let problem = Problem {
            seq: 7,
            kind: ProblemKind::SeqMismatch {
                key_seq: 7,
                event_seq: 8,
            },
        };
        assert_eq!(
            problem.to_string(),
            "seq 7: record stored under seq 7 holds event seq 8 (moved or swapped)"
        );
        let json = serde_json::to_value(&problem).expect("json");
        assert_eq!(
            json,
            serde_json::json!({"seq": 7, "kind": "seq_mismatch", "detail": {"key_seq": 7, "event_seq": 8}})
        );
        let json = serde_json::to_value(Problem {
            seq: 3,
            kind: ProblemKind::Duplicate,
        })
        .expect("json");
        assert_eq!(json, serde_json::json!({"seq": 3, "kind": "duplicate"}));
    }

    #[test]
    fn head_rules() {
        let chain = [5u8; 32];
        let head = |seq| Some(Some(Head { seq, chain }));
        assert_eq!(check_head(None, 0, Some(chain)), None);
        assert_eq!(check_head(head(4), 4, Some(chain)), None);
        assert_eq!(check_head(head(6), 4, Some(chain)).map(|p| p.seq), Some(5));
        assert_eq!(check_head(head(2), 4, Some(chain)).map(|p| p.seq), Some(3));
        assert_eq!(
            check_head(head(4), 4, Some([0; 32])).map(|p| p.seq),
            Some(4)
        );
        assert_eq!(check_head(None, 4, Some(chain)).map(|p| p.seq), Some(4));
        assert_eq!(
            check_head(Some(None), 4, Some(chain)).map(|p| p.seq),
            Some(4)
        );
    }
}
