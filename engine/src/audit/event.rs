//! The audit event and its canonical byte encoding (documented in `docs/FORMAT.md` §5).
//!
//! The canonical encoding is what gets hashed: versioned, fixed field order, every variable
//! field length-prefixed, so two different events never encode to the same bytes and an
//! independent implementation can recompute every hash from the documented rules.

use crate::classify::EventClass;
use crate::codec::{DecodeError, Reader};
use std::collections::BTreeMap;

/// Magic bytes that start every canonical event encoding.
pub const CANONICAL_MAGIC: &[u8; 4] = b"HDBA";
/// Version of the canonical encoding.
pub const CANONICAL_VERSION: u8 = 1;

/// One audited action: a statement, a transaction boundary, a login, an application event.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AuditEvent {
    /// Position in the ledger, dense from 1, in commit order. Assigned when sealed.
    pub seq: u64,
    /// When the action started: microseconds since the Unix epoch, UTC.
    pub timestamp_us: i64,
    /// Random id of the database, fixed at creation.
    pub database_id: [u8; 16],
    /// Session that acted, unique within one open of the database.
    pub session_id: u64,
    /// Authenticated user.
    pub user: String,
    /// Client network address.
    pub client_addr: String,
    /// Application or service name.
    pub application: String,
    /// Database name from the options.
    pub database: String,
    /// DDL, DML, SELECT, TXN, AUTH, SYSTEM or APP.
    pub class: EventClass,
    /// Upper-case operation (`CREATE_TABLE`, `INSERT`, `LOGIN`, ...).
    pub operation: String,
    /// Tables read or written, in first-seen order.
    pub targets: Vec<String>,
    /// Statement text, cut to the policy's `max_query_length` characters.
    pub query: String,
    /// True when `query` was cut.
    pub query_truncated: bool,
    /// Bound parameter values as text, or `?` for each where the policy redacts them.
    pub params: Vec<String>,
    /// Rows inserted, updated or deleted; rows returned for queries.
    pub rows: u64,
    /// Whether the action succeeded.
    pub success: bool,
    /// The error, when it failed.
    pub error: Option<String>,
    /// Time taken, in microseconds.
    pub duration_us: u64,
    /// Application-defined fields, sorted by key.
    pub custom: BTreeMap<String, String>,
}

fn class_code(class: EventClass) -> u8 {
    match class {
        EventClass::Ddl => 1,
        EventClass::Dml => 2,
        EventClass::Select => 3,
        EventClass::Txn => 4,
        EventClass::Auth => 5,
        EventClass::System => 6,
        EventClass::App => 7,
    }
}

fn class_from_code(code: u8) -> Option<EventClass> {
    Some(match code {
        1 => EventClass::Ddl,
        2 => EventClass::Dml,
        3 => EventClass::Select,
        4 => EventClass::Txn,
        5 => EventClass::Auth,
        6 => EventClass::System,
        7 => EventClass::App,
        _ => return None,
    })
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Strings longer than 4 GiB cannot occur: queries are truncated and every other field
    // comes from bounded metadata; saturate rather than wrap if one ever did.
    out.extend(u32::try_from(s.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend(s.as_bytes());
}

fn put_list(out: &mut Vec<u8>, items: &[String]) {
    out.extend(u32::try_from(items.len()).unwrap_or(u32::MAX).to_be_bytes());
    for item in items {
        put_str(out, item);
    }
}

impl AuditEvent {
    /// The canonical bytes of this event (format in `docs/FORMAT.md` §5).
    pub fn canonical(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(160 + self.query.len());
        out.extend(CANONICAL_MAGIC);
        out.push(CANONICAL_VERSION);
        out.extend(self.seq.to_be_bytes());
        out.extend(self.timestamp_us.to_be_bytes());
        out.extend(self.database_id);
        out.extend(self.session_id.to_be_bytes());
        put_str(&mut out, &self.user);
        put_str(&mut out, &self.client_addr);
        put_str(&mut out, &self.application);
        put_str(&mut out, &self.database);
        out.push(class_code(self.class));
        put_str(&mut out, &self.operation);
        put_list(&mut out, &self.targets);
        put_str(&mut out, &self.query);
        out.push(u8::from(self.query_truncated));
        put_list(&mut out, &self.params);
        out.extend(self.rows.to_be_bytes());
        out.push(u8::from(self.success));
        match &self.error {
            None => out.push(0),
            Some(error) => {
                out.push(1);
                put_str(&mut out, error);
            }
        }
        out.extend(self.duration_us.to_be_bytes());
        out.extend(
            u32::try_from(self.custom.len())
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        );
        for (key, value) in &self.custom {
            put_str(&mut out, key);
            put_str(&mut out, value);
        }
        out
    }

    /// Parses canonical bytes back into an event. Rejects anything [`canonical`] would not
    /// produce (bad magic or version, truncation, trailing bytes, unsorted custom keys).
    ///
    /// [`canonical`]: AuditEvent::canonical
    pub fn from_canonical(bytes: &[u8]) -> Result<AuditEvent, DecodeError> {
        let mut r = Reader::new(bytes);
        if r.take(4)? != CANONICAL_MAGIC {
            return Err(r.err_at(0, "not an audit event (bad magic)"));
        }
        if r.u8()? != CANONICAL_VERSION {
            return Err(r.err_at(4, "unknown audit event version"));
        }
        let seq = r.u64()?;
        let timestamp_us = r.u64()? as i64;
        let mut database_id = [0u8; 16];
        database_id.copy_from_slice(r.take(16)?);
        let session_id = r.u64()?;
        let user = string(&mut r)?;
        let client_addr = string(&mut r)?;
        let application = string(&mut r)?;
        let database = string(&mut r)?;
        let class_at = r.pos;
        let class =
            class_from_code(r.u8()?).ok_or_else(|| r.err_at(class_at, "unknown event class"))?;
        let operation = string(&mut r)?;
        let targets = list(&mut r)?;
        let query = string(&mut r)?;
        let query_truncated = r.flag()?;
        let params = list(&mut r)?;
        let rows = r.u64()?;
        let success = r.flag()?;
        let error = if r.flag()? {
            Some(string(&mut r)?)
        } else {
            None
        };
        let duration_us = r.u64()?;
        let count = r.u32()?;
        let mut custom = BTreeMap::new();
        let mut last: Option<String> = None;
        for _ in 0..count {
            let at = r.pos;
            let key = string(&mut r)?;
            let value = string(&mut r)?;
            if last.as_ref().is_some_and(|last| *last >= key) {
                return Err(r.err_at(at, "custom keys not strictly sorted"));
            }
            last = Some(key.clone());
            custom.insert(key, value);
        }
        if r.pos != bytes.len() {
            return Err(r.err("trailing bytes after audit event"));
        }
        Ok(AuditEvent {
            seq,
            timestamp_us,
            database_id,
            session_id,
            user,
            client_addr,
            application,
            database,
            class,
            operation,
            targets,
            query,
            query_truncated,
            params,
            rows,
            success,
            error,
            duration_us,
            custom,
        })
    }
}

fn string(r: &mut Reader<'_>) -> Result<String, DecodeError> {
    let text = r.text()?;
    // `text` checked the bytes are UTF-8.
    Ok(String::from_utf8_lossy(text).into_owned())
}

fn list(r: &mut Reader<'_>) -> Result<Vec<String>, DecodeError> {
    let count = r.count(4)?;
    (0..count).map(|_| string(r)).collect()
}

/// An application-level audit event, for [`Session::record_event`](crate::Session::record_event).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppEvent {
    /// Operation name, stored upper-case (`ESIGN`, `CONSENT_GRANTED`, `EXPORT`, ...).
    pub operation: String,
    /// Tables or records the event concerns.
    pub targets: Vec<String>,
    /// Free text, stored in the `query` column (cut to `max_query_length`).
    pub detail: String,
    /// Whether the action succeeded.
    pub success: bool,
    /// Extra fields, merged over the session's custom fields.
    pub custom: BTreeMap<String, String>,
}

impl AppEvent {
    /// A successful event named `operation`.
    pub fn new(operation: impl Into<String>) -> Self {
        Self {
            operation: operation.into(),
            success: true,
            ..Self::default()
        }
    }

    /// Sets the detail text.
    #[must_use]
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    /// Adds a target.
    #[must_use]
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.targets.push(target.into());
        self
    }

    /// Adds a custom field.
    #[must_use]
    pub fn custom(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.custom.insert(key.into(), value.into());
        self
    }

    /// Marks the event as a failed action.
    #[must_use]
    pub fn failed(mut self) -> Self {
        self.success = false;
        self
    }
}

/// An event's operation as stored: trimmed, upper-case; refused when empty (`what` names
/// the kind of event in the message).
pub(crate) fn operation_name(operation: &str, what: &str) -> crate::error::Result<String> {
    let operation = operation.trim().to_uppercase();
    if operation.is_empty() {
        return Err(crate::error::Error::Unsupported(format!(
            "{what} needs an operation name"
        )));
    }
    Ok(operation)
}

/// Microseconds since the epoch as a UTC timestamp (clamped to chrono's range).
pub fn timestamp(micros: i64) -> crate::chrono::NaiveDateTime {
    crate::chrono::DateTime::from_timestamp_micros(micros)
        .unwrap_or_default()
        .naive_utc()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An event with every field set, shared by the audit unit tests.
    pub(crate) fn sample() -> AuditEvent {
        AuditEvent {
            seq: 7,
            timestamp_us: 1_700_000_000_123_456,
            database_id: [0xAB; 16],
            session_id: 3,
            user: "dr.smith".into(),
            client_addr: "10.0.0.7".into(),
            application: "clinic".into(),
            database: "main".into(),
            class: EventClass::Dml,
            operation: "INSERT".into(),
            targets: vec!["vital_signs".into()],
            query: "INSERT INTO vital_signs VALUES ($1, $2)".into(),
            query_truncated: false,
            params: vec!["1".into(), "72".into()],
            rows: 1,
            success: true,
            error: None,
            duration_us: 42,
            custom: BTreeMap::from([("ward".into(), "cardiology".into())]),
        }
    }

    #[test]
    fn canonical_round_trips_and_rejects_garbage() {
        let event = sample();
        let bytes = event.canonical();
        assert_eq!(AuditEvent::from_canonical(&bytes).expect("decode"), event);
        for cut in 0..bytes.len() {
            assert!(
                AuditEvent::from_canonical(&bytes[..cut]).is_err(),
                "cut {cut}"
            );
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(AuditEvent::from_canonical(&extra).is_err());
    }

    fn arb_event() -> impl Strategy<Value = AuditEvent> {
        let text = || ".{0,12}";
        (
            (any::<u64>(), any::<i64>(), any::<[u8; 16]>(), any::<u64>()),
            (text(), text(), text(), text(), 0u8..7, text()),
            (
                proptest::collection::vec(text(), 0..3),
                text(),
                any::<bool>(),
                proptest::collection::vec(text(), 0..3),
            ),
            (
                any::<u64>(),
                any::<bool>(),
                proptest::option::of(text()),
                any::<u64>(),
                proptest::collection::btree_map(text(), text(), 0..3),
            ),
        )
            .prop_map(|(a, b, c, d)| AuditEvent {
                seq: a.0,
                timestamp_us: a.1,
                database_id: a.2,
                session_id: a.3,
                user: b.0,
                client_addr: b.1,
                application: b.2,
                database: b.3,
                class: class_from_code(b.4 + 1).unwrap_or(EventClass::System),
                operation: b.5,
                targets: c.0,
                query: c.1,
                query_truncated: c.2,
                params: c.3,
                rows: d.0,
                success: d.1,
                error: d.2,
                duration_us: d.3,
                custom: d.4,
            })
    }

    proptest! {
        #[test]
        fn encoding_round_trips(event in arb_event()) {
            prop_assert_eq!(AuditEvent::from_canonical(&event.canonical()).expect("decode"), event);
        }

        #[test]
        fn different_events_encode_differently(a in arb_event(), b in arb_event()) {
            prop_assume!(a != b);
            prop_assert_ne!(a.canonical(), b.canonical());
        }

        #[test]
        fn moving_text_between_fields_changes_the_bytes(x in ".{0,8}", y in ".{0,8}") {
            let mut a = sample();
            a.user = format!("{x}{y}");
            a.client_addr = String::new();
            let mut b = sample();
            b.user = x.clone();
            b.client_addr = y.clone();
            prop_assume!(!y.is_empty());
            prop_assert_ne!(a.canonical(), b.canonical());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = AuditEvent::from_canonical(&bytes);
        }
    }
}
