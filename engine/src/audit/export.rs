//! JSON Lines export of the ledger, and verification of an export with nothing but the file.
//!
//! Each line is one event with every field of [`AuditEvent`], its `leaf` and `chain` hashes
//! in hex, and — on the first line only — `prev_chain`, the chain hash just before it
//! (genesis for seq 1). From that anchor, [`verify_export`] rebuilds each event's canonical
//! bytes from the JSON fields and recomputes every leaf and link. The line layout is
//! documented in `docs/FORMAT.md` §5.
//!
//! An export that starts at seq 1 is anchored to the database id alone; an export of a
//! sub-range is anchored to its first line's `prev_chain`, which only a copy of the earlier
//! ledger (or a checkpoint) can vouch for. Neither detects lines cut from the *end*.

use super::event::AuditEvent;
use super::ledger::{
    DATABASE_ID_KEY, Hash, KS_AUDIT, Record, chain_hash, genesis, leaf_hash, record_key,
    split_record,
};
use super::verify::ProblemKind;
use crate::backend::{Direction, Snapshot, StorageBackend, StorageError};
use crate::catalog::{KS_CATALOG, corrupt};
use crate::classify::EventClass;
use crate::codec::DecodeError;
use crate::error::{Error, Result, hex};
use gluesql_core::chrono::DateTime;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, Write};
use std::ops::Bound;

/// One line of a JSON Lines export: an event, every field, plus its hashes. Fields are
/// written in declaration order; unknown fields are rejected when reading, and every field
/// but `prev_chain` must be present.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportLine {
    /// Position in the ledger.
    pub seq: u64,
    /// Microseconds since the Unix epoch, UTC.
    pub timestamp_us: i64,
    /// The same instant as RFC 3339 UTC text with microseconds
    /// (`2024-05-01T08:00:00.123456Z`); `null` when out of the representable range. Not
    /// hashed: checked against `timestamp_us`.
    #[serde(deserialize_with = "required")]
    pub timestamp: Option<String>,
    /// Database id, 32 hex digits.
    pub database_id: String,
    /// Session id.
    pub session_id: u64,
    /// User.
    pub user: String,
    /// Client address.
    pub client_addr: String,
    /// Application name.
    pub application: String,
    /// Database name.
    pub database: String,
    /// Event class: `DDL`, `DML`, `SELECT`, `TXN`, `AUTH`, `SYSTEM` or `APP`.
    pub class: String,
    /// Operation (`INSERT`, `CREATE_TABLE`, ...).
    pub operation: String,
    /// Tables concerned.
    pub targets: Vec<String>,
    /// Statement text (possibly truncated).
    pub query: String,
    /// Whether `query` was cut.
    pub query_truncated: bool,
    /// Bound parameters as text.
    pub params: Vec<String>,
    /// Affected or returned rows.
    pub rows: u64,
    /// Whether the action succeeded.
    pub success: bool,
    /// The error, or `null`.
    #[serde(deserialize_with = "required")]
    pub error: Option<String>,
    /// Duration in microseconds.
    pub duration_us: u64,
    /// Custom fields.
    pub custom: BTreeMap<String, String>,
    /// First line only: the chain hash before this event, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_chain: Option<String>,
    /// `SHA-256(0x00 || canonical)`, hex.
    pub leaf: String,
    /// The chain hash after this event, hex.
    pub chain: String,
}

/// Makes an `Option` field mandatory: present, possibly `null`.
fn required<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<String>, D::Error> {
    Option::<String>::deserialize(d)
}

/// `timestamp_us` as RFC 3339 UTC with exactly six fractional digits, or `None` when out of
/// chrono's range.
pub fn rfc3339_micros(timestamp_us: i64) -> Option<String> {
    DateTime::from_timestamp_micros(timestamp_us)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
}

impl ExportLine {
    /// The line for `event` whose canonical bytes hash to `leaf` and whose chain hash is
    /// `chain`; `prev_chain` only for the first line.
    pub fn new(event: AuditEvent, leaf: &Hash, chain: &Hash, prev_chain: Option<&Hash>) -> Self {
        ExportLine {
            seq: event.seq,
            timestamp_us: event.timestamp_us,
            timestamp: rfc3339_micros(event.timestamp_us),
            database_id: hex(&event.database_id),
            session_id: event.session_id,
            user: event.user,
            client_addr: event.client_addr,
            application: event.application,
            database: event.database,
            class: event.class.as_str().to_owned(),
            operation: event.operation,
            targets: event.targets,
            query: event.query,
            query_truncated: event.query_truncated,
            params: event.params,
            rows: event.rows,
            success: event.success,
            error: event.error,
            duration_us: event.duration_us,
            custom: event.custom,
            prev_chain: prev_chain.map(|h| hex(h)),
            leaf: hex(leaf),
            chain: hex(chain),
        }
    }

    /// Rebuilds the event from the fields. Fails (with a message) on a bad class name,
    /// database id or `timestamp` text that disagrees with `timestamp_us`.
    pub fn event(&self) -> std::result::Result<AuditEvent, String> {
        // Exactly as written by `export`: the canonical text is upper-case.
        let class = EventClass::ALL
            .into_iter()
            .find(|c| c.as_str() == self.class)
            .ok_or_else(|| format!("unknown class {:?}", self.class))?;
        let database_id = parse_hex::<16>(&self.database_id)
            .ok_or_else(|| "database_id is not 32 hex digits".to_owned())?;
        if self.timestamp != rfc3339_micros(self.timestamp_us) {
            return Err(format!(
                "timestamp {:?} does not match timestamp_us {}",
                self.timestamp, self.timestamp_us
            ));
        }
        Ok(AuditEvent {
            seq: self.seq,
            timestamp_us: self.timestamp_us,
            database_id,
            session_id: self.session_id,
            user: self.user.clone(),
            client_addr: self.client_addr.clone(),
            application: self.application.clone(),
            database: self.database.clone(),
            class,
            operation: self.operation.clone(),
            targets: self.targets.clone(),
            query: self.query.clone(),
            query_truncated: self.query_truncated,
            params: self.params.clone(),
            rows: self.rows,
            success: self.success,
            error: self.error.clone(),
            duration_us: self.duration_us,
            custom: self.custom.clone(),
        })
    }
}

/// Parses exactly `2 * N` lower- or upper-case hex digits.
pub fn parse_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let digits = text.as_bytes();
    if digits.len() != 2 * N {
        return None;
    }
    let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

fn io_error(error: impl Into<std::io::Error>) -> Error {
    Error::Storage(StorageError::Io(error.into()))
}

/// Writes the events with `from <= seq <= to` (each bound optional) to `out` as JSON Lines,
/// in seq order, over one snapshot; returns how many were written. The first line carries
/// `prev_chain`. The stored bytes are exported as they are — run [`verify`](super::verify())
/// to check them; an undecodable record fails the export with [`Error::Corrupt`].
pub fn export(
    backend: &dyn StorageBackend,
    from: Option<u64>,
    to: Option<u64>,
    out: &mut dyn Write,
) -> Result<u64> {
    if !backend.keyspaces()?.iter().any(|k| k == KS_AUDIT) {
        return Ok(0);
    }
    let snapshot = backend.snapshot()?;
    let lower = from.unwrap_or(1).max(1);
    if to.is_some_and(|to| to < lower) {
        return Ok(0);
    }
    let lower_key = record_key(lower);
    let upper_key = to.map(record_key);
    let upper = match &upper_key {
        Some(key) => Bound::Included(key.as_slice()),
        None => Bound::Unbounded,
    };
    let records = snapshot.range(
        KS_AUDIT,
        Bound::Included(lower_key.as_slice()),
        upper,
        Direction::Forward,
    )?;
    let mut written = 0u64;
    let mut line = Vec::with_capacity(1024);
    for item in records {
        let (key, value) = item?;
        let bad = |e: DecodeError| corrupt(KS_AUDIT, "audit record", &key, e);
        let (canonical, chain) = split_record(&value).map_err(bad)?;
        let event = AuditEvent::from_canonical(canonical).map_err(bad)?;
        let prev = if written == 0 {
            Some(chain_before(&*snapshot, event.seq)?)
        } else {
            None
        };
        let leaf = leaf_hash(canonical);
        line.clear();
        serde_json::to_writer(
            &mut line,
            &ExportLine::new(event, &leaf, &chain, prev.as_ref()),
        )
        .map_err(io_error)?;
        line.push(b'\n');
        out.write_all(&line).map_err(io_error)?;
        written += 1;
    }
    out.flush().map_err(io_error)?;
    Ok(written)
}

/// The chain hash before `seq`: genesis of the stored database id for seq 1, else the
/// stored chain of `seq - 1`.
pub(crate) fn chain_before(snapshot: &dyn Snapshot, seq: u64) -> Result<Hash> {
    if seq <= 1 {
        let bytes = snapshot
            .get(KS_CATALOG, DATABASE_ID_KEY)?
            .unwrap_or_default();
        let id = <[u8; 16]>::try_from(bytes.as_slice()).map_err(|_| {
            corrupt(
                KS_CATALOG,
                "database id",
                DATABASE_ID_KEY,
                DecodeError {
                    what: "database id missing or not 16 bytes",
                    offset: 0,
                },
            )
        })?;
        return Ok(genesis(&id));
    }
    if let Some(anchor) = super::prune::load_anchor(snapshot)?
        && anchor.first_kept == seq
    {
        return Ok(anchor.chain_before);
    }
    let key = record_key(seq - 1);
    let value = snapshot.get(KS_AUDIT, &key)?.ok_or_else(|| {
        corrupt(
            KS_AUDIT,
            "audit record",
            &key,
            DecodeError {
                what: "the event before the export range is missing (run verify)",
                offset: 0,
            },
        )
    })?;
    let (_, chain) =
        split_record(&value).map_err(|e| corrupt(KS_AUDIT, "audit record", &key, e))?;
    Ok(chain)
}

/// The last `n` sealed records, oldest first (for `heliosdb audit tail`). Reads one
/// snapshot; an undecodable record fails with [`Error::Corrupt`].
pub fn tail(backend: &dyn StorageBackend, n: usize) -> Result<Vec<Record>> {
    if n == 0 || !backend.keyspaces()?.iter().any(|k| k == KS_AUDIT) {
        return Ok(Vec::new());
    }
    let snapshot = backend.snapshot()?;
    let records = snapshot.range(
        KS_AUDIT,
        Bound::Unbounded,
        Bound::Unbounded,
        Direction::Reverse,
    )?;
    let mut out = Vec::with_capacity(n.min(1024));
    for item in records.take(n) {
        let (key, value) = item?;
        out.push(super::ledger::decode_record(&key, &value)?);
    }
    out.reverse();
    Ok(out)
}

/// The first problem in an export: on which line (1-based), at which seq, and what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExportProblem {
    /// Line number, from 1.
    pub line: u64,
    /// The seq concerned: the line's own seq, or for [`ProblemKind::Gap`] the missing one;
    /// `None` when the line could not be read at all.
    pub seq: Option<u64>,
    /// What is wrong.
    #[serde(flatten)]
    pub kind: ProblemKind,
}

impl fmt::Display for ExportProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.seq {
            Some(seq) => write!(f, "line {}, seq {seq}: {}", self.line, self.kind),
            None => write!(f, "line {}: {}", self.line, self.kind),
        }
    }
}

/// The outcome of [`verify_export`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportReport {
    /// Lines whose every check passed.
    pub lines_checked: u64,
    /// Seq of the first line, when it could be read.
    pub first_seq: Option<u64>,
    /// Seq of the last line that passed.
    pub last_seq: Option<u64>,
    /// Chain hash after the last line that passed: compare it with a checkpoint or the
    /// database's head to detect lines cut from the end.
    pub last_chain: Option<Hash>,
    /// The first problem, or `None` when every line checked out.
    pub problem: Option<ExportProblem>,
}

impl ExportReport {
    /// True when no problem was found.
    pub fn is_intact(&self) -> bool {
        self.problem.is_none()
    }
}

impl fmt::Display for ExportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "lines checked: {}", self.lines_checked)?;
        match (self.first_seq, self.last_seq) {
            (Some(first), Some(last)) => writeln!(f, "seqs: {first}..={last}")?,
            _ => writeln!(f, "seqs: none")?,
        }
        if let Some(chain) = &self.last_chain {
            writeln!(f, "last chain: {}", hex(chain))?;
        }
        match &self.problem {
            None => writeln!(f, "intact"),
            Some(problem) => writeln!(f, "TAMPERED: {problem}"),
        }
    }
}

/// JSON shape: `{"intact":..,"lines_checked":..,"first_seq":..,"last_seq":..,
/// "last_chain":"hex"|null,"problem":{"line":..,"seq":..,"kind":..,"detail":..,
/// "message":".."}|null}`.
impl Serialize for ExportReport {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        #[derive(Serialize)]
        struct ProblemJson<'a> {
            #[serde(flatten)]
            problem: &'a ExportProblem,
            message: String,
        }
        let mut s = serializer.serialize_struct("ExportReport", 6)?;
        s.serialize_field("intact", &self.is_intact())?;
        s.serialize_field("lines_checked", &self.lines_checked)?;
        s.serialize_field("first_seq", &self.first_seq)?;
        s.serialize_field("last_seq", &self.last_seq)?;
        s.serialize_field("last_chain", &self.last_chain.as_ref().map(|c| hex(c)))?;
        s.serialize_field(
            "problem",
            &self.problem.as_ref().map(|problem| ProblemJson {
                problem,
                message: problem.to_string(),
            }),
        )?;
        s.end()
    }
}

/// Verifies a JSON Lines export read from `input`, line by line, in constant memory.
///
/// The first line's `prev_chain` anchors the chain (and must be the genesis of the line's
/// database id when the first seq is 1). Every line must parse into exactly the export
/// fields; its event is rebuilt, re-encoded and re-hashed; seqs must be dense and the
/// database id the same on every line. Stops at the first problem. `Err` only for an I/O
/// error while reading.
pub fn verify_export(mut input: impl BufRead) -> Result<ExportReport> {
    let mut report = ExportReport {
        lines_checked: 0,
        first_seq: None,
        last_seq: None,
        last_chain: None,
        problem: None,
    };
    let mut database_id: Option<[u8; 16]> = None;
    let mut buf = Vec::with_capacity(1024);
    let mut line_no = 0u64;
    loop {
        buf.clear();
        if input.read_until(b'\n', &mut buf).map_err(io_error)? == 0 {
            return Ok(report);
        }
        line_no += 1;
        let text = buf.strip_suffix(b"\n").unwrap_or(&buf);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        if let Err(problem) = check_line(text, line_no, &mut report, &mut database_id) {
            report.problem = Some(problem);
            return Ok(report);
        }
    }
}

/// Checks one line against the state so far; on success advances `report`.
fn check_line(
    text: &[u8],
    line: u64,
    report: &mut ExportReport,
    database_id: &mut Option<[u8; 16]>,
) -> std::result::Result<(), ExportProblem> {
    let problem = |seq: Option<u64>, kind: ProblemKind| ExportProblem { line, seq, kind };
    let record: ExportLine = serde_json::from_slice(text)
        .map_err(|e| problem(None, ProblemKind::Json(e.to_string())))?;
    let seq = record.seq;
    let at = |kind: ProblemKind| problem(Some(seq), kind);
    let json = |why: &str| at(ProblemKind::Json(why.to_owned()));

    let event = record.event().map_err(|why| json(&why))?;
    let prev = match (report.last_chain, &record.prev_chain) {
        (None, Some(prev)) => {
            parse_hex::<32>(prev).ok_or_else(|| json("prev_chain is not 64 hex digits"))?
        }
        (None, None) => return Err(json("the first line has no prev_chain")),
        (Some(_), Some(_)) => return Err(json("prev_chain is only allowed on the first line")),
        (Some(last), None) => last,
    };
    match *database_id {
        None => *database_id = Some(event.database_id),
        Some(id) if id != event.database_id => return Err(at(ProblemKind::ForeignDatabase)),
        Some(_) => {}
    }
    match report.last_seq {
        None if seq == 0 => {
            return Err(at(ProblemKind::Undecodable(
                "seq 0 (seqs start at 1)".to_owned(),
            )));
        }
        None => {}
        Some(last) => {
            let expected = last.saturating_add(1);
            if seq > expected {
                return Err(problem(Some(expected), ProblemKind::Gap { expected }));
            }
            if seq < expected {
                return Err(at(ProblemKind::Duplicate));
            }
        }
    }
    if seq == 1 {
        let genesis = genesis(&event.database_id);
        if prev != genesis {
            return Err(at(ProblemKind::ChainMismatch {
                expected_hex: hex(&genesis),
                stored_hex: hex(&prev),
            }));
        }
    }
    let stored_chain =
        parse_hex::<32>(&record.chain).ok_or_else(|| json("chain is not 64 hex digits"))?;
    let stored_leaf =
        parse_hex::<32>(&record.leaf).ok_or_else(|| json("leaf is not 64 hex digits"))?;
    let leaf = leaf_hash(&event.canonical());
    let chain = chain_hash(&prev, &leaf);
    if chain != stored_chain {
        return Err(at(ProblemKind::ChainMismatch {
            expected_hex: hex(&chain),
            stored_hex: hex(&stored_chain),
        }));
    }
    if leaf != stored_leaf {
        return Err(at(ProblemKind::LeafMismatch {
            expected_hex: hex(&leaf),
            stored_hex: hex(&stored_leaf),
        }));
    }
    report.lines_checked += 1;
    report.first_seq.get_or_insert(seq);
    report.last_seq = Some(seq);
    report.last_chain = Some(chain);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64) -> AuditEvent {
        AuditEvent {
            seq,
            timestamp_us: 1_714_550_400_000_001,
            database_id: [7; 16],
            user: "ana".into(),
            class: EventClass::Dml,
            operation: "INSERT".into(),
            ..AuditEvent::default()
        }
    }

    /// An export of `n` events from seq 1, built without a database.
    fn export_text(n: u64) -> String {
        let mut chain = genesis(&[7; 16]);
        let mut text = String::new();
        for seq in 1..=n {
            let e = event(seq);
            let leaf = leaf_hash(&e.canonical());
            let prev = chain;
            chain = chain_hash(&prev, &leaf);
            let line = ExportLine::new(e, &leaf, &chain, (seq == 1).then_some(&prev));
            text.push_str(&serde_json::to_string(&line).expect("json"));
            text.push('\n');
        }
        text
    }

    #[test]
    fn timestamps_have_microseconds() {
        assert_eq!(
            rfc3339_micros(1_714_550_400_000_001).as_deref(),
            Some("2024-05-01T08:00:00.000001Z")
        );
        assert_eq!(
            rfc3339_micros(0).as_deref(),
            Some("1970-01-01T00:00:00.000000Z")
        );
        assert_eq!(rfc3339_micros(i64::MAX), None);
    }

    #[test]
    fn hex_parsing() {
        assert_eq!(parse_hex::<2>("0aFf"), Some([0x0a, 0xff]));
        assert_eq!(parse_hex::<2>("0aF"), None);
        assert_eq!(parse_hex::<1>("g0"), None);
        assert_eq!(parse_hex::<1>("+1"), None);
    }

    #[test]
    fn a_clean_export_verifies() {
        let report = verify_export(export_text(5).as_bytes()).expect("read");
        assert!(report.is_intact(), "{report}");
        assert_eq!(report.lines_checked, 5);
        assert_eq!((report.first_seq, report.last_seq), (Some(1), Some(5)));
    }

    #[test]
    fn missing_unknown_and_malformed_fields_are_rejected() {
        let text = export_text(2);
        let first = text.lines().next().expect("line");
        for (from, to) in [
            (",\"error\":null", ""),
            (",\"timestamp\":\"2024-05-01T08:00:00.000001Z\"", ""),
            ("\"rows\":0", "\"rows\":0,\"extra\":1"),
            ("\"rows\":0", "\"rows\":-1"),
            ("\"class\":\"DML\"", "\"class\":\"dml\""),
            ("2024-05-01T08:00:00.000001Z", "2024-05-01T08:00:00.000002Z"),
        ] {
            assert!(first.contains(from), "{from}");
            let edited = first.replacen(from, to, 1);
            let report = verify_export(edited.as_bytes()).expect("read");
            let problem = report.problem.expect("problem");
            assert_eq!(problem.line, 1);
            assert!(matches!(problem.kind, ProblemKind::Json(_)), "{problem}");
        }
        let report = verify_export("{not json\n".as_bytes()).expect("read");
        assert_eq!(report.problem.map(|p| (p.line, p.seq)), Some((1, None)));
    }

    #[test]
    fn leaf_edited_alone_is_a_leaf_mismatch() {
        let text = export_text(3);
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let mut line: ExportLine = serde_json::from_str(&lines[1]).expect("json");
        line.leaf = "00".repeat(32);
        lines[1] = serde_json::to_string(&line).expect("json");
        let report = verify_export(lines.join("\n").as_bytes()).expect("read");
        let problem = report.problem.expect("problem");
        assert_eq!((problem.line, problem.seq), (2, Some(2)));
        assert!(matches!(problem.kind, ProblemKind::LeafMismatch { .. }));
    }
}
