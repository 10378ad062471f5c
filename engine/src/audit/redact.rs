//! Personal data in the audit trail: redaction of the values given to
//! [`Redaction::columns`](super::Redaction), the subject access report, and erasure by
//! destroying a subject's key (crypto-shredding).
//!
//! Events are sealed with the tokens in place of the values, so the hash chain covers
//! the tokens and stays intact whatever happens to the keys later:
//!
//! - [`RedactionMode::Hash`]: `hmac:<hex>`, the HMAC-SHA-256 of the value's text under the
//!   database's redaction key. [`subject_token`] computes the token of a value again, so
//!   an auditor finds a subject's events without seeing any value.
//! - [`RedactionMode::Encrypt`]: `enc:<subject hex>:<base64 nonce || ciphertext>`, the
//!   value encrypted with ChaCha20-Poly1305 under the data subject's own key; `<subject
//!   hex>` is the HMAC of the subject. [`reveal`] decrypts while the key exists;
//!   [`forget_subject`] destroys it, and the value is gone for good.
//!
//! **The subject** of a value is: for the first redacted column (the *subject column*),
//! the value itself; for another redacted column, the subject-column value of the same
//! `INSERT` row, else the first subject-column value of the statement, else the value
//! itself. A value's text is a string's content or a number's digits (`42` and `'42'`
//! have one token).
//!
//! The HMAC key lives in its own keyspace, [`KS_AUDIT_KEYS`]; the subject keys in the file
//! [`SUBJECT_KEYS_FILE`] of the database directory, so a destroyed key is in no file
//! afterwards (`docs/FORMAT.md`).
//!
//! ```
//! use heliosdb_engine::DatabaseOptions;
//! use heliosdb_engine::audit::{AuditPolicy, Redaction, RedactionMode};
//! let options = DatabaseOptions {
//!     audit: AuditPolicy {
//!         redaction: Redaction {
//!             columns: vec!["email".into()],
//!             mode: RedactionMode::Hash,
//!         },
//!         ..AuditPolicy::default()
//!     },
//!     ..DatabaseOptions::default()
//! };
//! assert!(options.audit.redaction.is_active());
//! ```

mod keys;
mod sql;

pub use keys::{KS_AUDIT_KEYS, SUBJECT_KEYS_FILE, SUBJECT_KEYS_MAGIC};

use super::AppEvent;
use super::ledger::{KS_AUDIT, decode_record};
use super::{AuditEvent, Redaction, RedactionMode};
use crate::backend::{Direction, StorageBackend};
use crate::error::{Error, Result, hex};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sqlparser::ast::Statement;
use std::collections::HashMap;
use std::ops::Bound;

/// Prefix of a hash token.
pub const HASH_PREFIX: &str = "hmac:";

/// Prefix of an encrypted token.
pub const ENCRYPTED_PREFIX: &str = "enc:";

/// The operation of the SYSTEM event [`forget_subject`] records.
pub const FORGET_OPERATION: &str = "FORGET_SUBJECT";

/// Operation of the SYSTEM event [`subject_access`] records.
pub const ACCESS_OPERATION: &str = "SUBJECT_ACCESS";

/// Text recorded for a statement that could not be read, when redaction is on.
const UNREADABLE: &str = "-- redacted: the statement could not be read";

/// What the trail keeps of one statement: its text and parameters, redacted.
pub(crate) struct Captured {
    /// The query text.
    pub text: String,
    /// The parameters as text.
    pub params: Vec<String>,
    /// The clear values replaced, to keep out of the event's error message too
    /// ([`scrub`]).
    pub values: Vec<String>,
}

/// `text` (an error message) with every occurrence of one of `values` replaced by `?`:
/// an error quoting a redacted value must not carry it into the trail.
pub(crate) fn scrub(text: &str, values: &[String]) -> String {
    let mut text = text.to_owned();
    let mut values: Vec<&String> = values.iter().filter(|v| !v.is_empty()).collect();
    // Longer values first, so a value inside another does not leave the rest behind.
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    for value in values {
        if text.contains(value.as_str()) {
            text = text.replace(value.as_str(), "?");
        }
    }
    text
}

/// Redacts `text` (the statement `statement`, when it could be parsed) and `params` (as
/// text) for `redaction`. A parameter in the place of a redacted column becomes its token;
/// with `masked` (`redact_parameters`) every other parameter is recorded as `?`. Creates
/// the redaction keys it needs. `table_columns` names a table's columns, for an `INSERT`
/// without a column list.
pub(crate) fn capture(
    backend: &dyn StorageBackend,
    redaction: &Redaction,
    statement: Option<&Statement>,
    text: &str,
    params: Vec<String>,
    masked: bool,
    table_columns: &dyn Fn(&str) -> Option<Vec<String>>,
) -> Result<Captured> {
    let Some(statement) = statement else {
        // Which parameter belongs to which column is unknown too: none is kept.
        let (text, mut values) = mask_literals(text);
        let count = params.len();
        values.extend(params);
        return Ok(Captured {
            text,
            params: vec!["?".to_owned(); count],
            values,
        });
    };
    let mut marked = sql::mark(statement, &redaction.columns, table_columns);
    let shown = |params: Vec<String>| -> Vec<String> {
        if masked {
            vec!["?".to_owned(); params.len()]
        } else {
            params
        }
    };
    if marked.slots.is_empty() {
        return Ok(Captured {
            text: text.to_owned(),
            params: shown(params),
            values: Vec::new(),
        });
    }
    // The clear text of every slot; `None` for a parameter the statement does not bind.
    let values: Vec<Option<String>> = marked
        .slots
        .iter()
        .map(|slot| match slot.source {
            sql::SlotSource::Literal(_) => Some(slot.value.clone()),
            sql::SlotSource::Param(index) => params.get(index).cloned(),
        })
        .collect();
    let hmac_key = keys::hmac_key_or_create(backend)?;
    let mut literal_tokens = Vec::new();
    let mut tokens: Vec<Option<String>> = vec![None; params.len()];
    for (index, slot) in marked.slots.iter().enumerate() {
        let Some(value) = &values[index] else {
            continue;
        };
        let token = match redaction.mode {
            RedactionMode::Hash => hash_token(&hmac_key, value),
            RedactionMode::Encrypt => {
                let subject = subject_of(&marked.slots, &values, index).unwrap_or(value);
                let subject_id = keys::hmac(&hmac_key, subject);
                match keys::subject_key_or_create(backend, &subject_id)? {
                    Some(key) => {
                        let sealed = keys::encrypt(&key, &subject_id, value)?;
                        format!(
                            "{ENCRYPTED_PREFIX}{}:{}",
                            hex(&subject_id),
                            BASE64.encode(sealed)
                        )
                    }
                    // A forgotten subject stays unreadable: a pseudonym, not a new key.
                    None => hash_token(&hmac_key, value),
                }
            }
        };
        match slot.source {
            sql::SlotSource::Literal(number) => {
                if literal_tokens.len() <= number {
                    literal_tokens.resize(number + 1, String::new());
                }
                literal_tokens[number] = token;
            }
            sql::SlotSource::Param(index) => {
                if let Some(param) = tokens.get_mut(index) {
                    *param = Some(token);
                }
            }
        }
    }
    let text = if literal_tokens.is_empty() {
        text.to_owned()
    } else {
        sql::fill(&mut marked.statement, &literal_tokens);
        marked.statement.to_string()
    };
    let params = params
        .into_iter()
        .zip(tokens)
        .map(|(param, token)| match token {
            Some(token) => token,
            None if masked => "?".to_owned(),
            None => param,
        })
        .collect();
    Ok(Captured {
        text,
        params,
        values: values.into_iter().flatten().collect(),
    })
}

/// The subject of slot `index` (see the module documentation), when it is another slot's
/// value.
fn subject_of<'a>(
    slots: &[sql::Slot],
    values: &'a [Option<String>],
    index: usize,
) -> Option<&'a String> {
    let slot = slots.get(index)?;
    if slot.column == Some(0) {
        return values.get(index)?.as_ref();
    }
    let is_subject = |j: &usize| slots[*j].column == Some(0) && values[*j].is_some();
    let same_row = slot.row.and_then(|row| {
        (0..slots.len())
            .filter(is_subject)
            .find(|j| slots[*j].row == Some(row))
    });
    let first = same_row.or_else(|| (0..slots.len()).find(is_subject))?;
    values[first].as_ref()
}

fn hash_token(key: &[u8; 32], value: &str) -> String {
    format!("{HASH_PREFIX}{}", hex(&keys::hmac(key, value)))
}

/// `text` with every string and number literal replaced by `'?'`, for a statement that
/// could not be parsed (so which literal belongs to which column is unknown), and the
/// values replaced. Text that cannot even be split into tokens is not kept at all.
fn mask_literals(text: &str) -> (String, Vec<String>) {
    use sqlparser::tokenizer::{Token, Tokenizer};
    let dialect = sqlparser::dialect::SQLiteDialect {};
    let Ok(tokens) = Tokenizer::new(&dialect, text).tokenize() else {
        // Whatever follows an opening quote may be a value; error messages quoting any of
        // it are cut at the same place.
        let values = text.split(['\'', '"']).skip(1).map(str::to_owned).collect();
        return (UNREADABLE.to_owned(), values);
    };
    let mut out = String::with_capacity(text.len());
    let mut values = Vec::new();
    for token in tokens {
        match token {
            Token::Number(value, _)
            | Token::SingleQuotedString(value)
            | Token::DoubleQuotedString(value)
            | Token::TripleSingleQuotedString(value)
            | Token::TripleDoubleQuotedString(value)
            | Token::SingleQuotedByteStringLiteral(value)
            | Token::DoubleQuotedByteStringLiteral(value)
            | Token::NationalStringLiteral(value)
            | Token::EscapedStringLiteral(value)
            | Token::UnicodeStringLiteral(value)
            | Token::HexStringLiteral(value) => {
                out.push_str("'?'");
                values.push(value);
            }
            Token::DollarQuotedString(value) => {
                out.push_str("'?'");
                values.push(value.value);
            }
            // Comments may hold anything: dropped.
            Token::Whitespace(sqlparser::tokenizer::Whitespace::SingleLineComment { .. })
            | Token::Whitespace(sqlparser::tokenizer::Whitespace::MultiLineComment(_)) => {
                out.push(' ');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    (out, values)
}

/// The hash token (`hmac:<hex>`) of `value`: what the trail holds in place of it in
/// [`RedactionMode::Hash`], and the `<hex>` naming it as a subject in
/// [`RedactionMode::Encrypt`]. `None` when nothing was ever redacted in this database (it
/// has no redaction key yet).
pub fn subject_token(backend: &dyn StorageBackend, value: &str) -> Result<Option<String>> {
    Ok(keys::hmac_key(backend)?.map(|key| hash_token(&key, value)))
}

/// `text` with every encrypted token whose subject key still exists replaced by the clear
/// value; other tokens stay. With `sql`, the value is written for inside a quoted SQL
/// string (`'` doubled), as in query text.
pub fn reveal(backend: &dyn StorageBackend, text: &str, sql: bool) -> Result<String> {
    let mut cache = HashMap::new();
    reveal_with(backend, text, sql, None, &mut cache)
}

/// [`reveal`], for the tokens of subject `only` alone when given.
fn reveal_with(
    backend: &dyn StorageBackend,
    text: &str,
    sql: bool,
    only: Option<&[u8; 32]>,
    cache: &mut HashMap<[u8; 32], Option<[u8; 32]>>,
) -> Result<String> {
    if !text.contains(ENCRYPTED_PREFIX) {
        return Ok(text.to_owned());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(ENCRYPTED_PREFIX) {
        out.push_str(&rest[..at]);
        let token = &rest[at..];
        match parse_encrypted(token) {
            Some((subject, _, len)) if only.is_some_and(|only| *only != subject) => {
                out.push_str(&token[..len]);
                rest = &token[len..];
            }
            Some((subject, sealed, len)) => {
                let key = match cache.get(&subject) {
                    Some(key) => *key,
                    None => {
                        let key = keys::subject_key(backend, &subject)?;
                        cache.insert(subject, key);
                        key
                    }
                };
                match key.and_then(|key| keys::decrypt(&key, &subject, &sealed)) {
                    Some(clear) if sql => out.push_str(&clear.replace('\'', "''")),
                    Some(clear) => out.push_str(&clear),
                    None => out.push_str(&token[..len]),
                }
                rest = &token[len..];
            }
            None => {
                out.push_str(ENCRYPTED_PREFIX);
                rest = &token[ENCRYPTED_PREFIX.len()..];
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Parses `enc:<64 hex>:<base64>` at the start of `text`: the subject id, the sealed
/// bytes and the token's length.
fn parse_encrypted(text: &str) -> Option<([u8; 32], Vec<u8>, usize)> {
    let body = text.strip_prefix(ENCRYPTED_PREFIX)?;
    let subject = super::export::parse_hex::<32>(body.get(..64)?)?;
    let encoded = body.get(64..)?.strip_prefix(':')?;
    let end = encoded
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '='))
        .unwrap_or(encoded.len());
    let sealed = BASE64.decode(&encoded[..end]).ok()?;
    Some((subject, sealed, ENCRYPTED_PREFIX.len() + 64 + 1 + end))
}

/// Whether `event` touches the subject whose hash token is `token` (`hmac:<hex>`) or
/// whose value is `value`: the token, or an encrypted token of the subject, in its query
/// text or a parameter, or the value or token as a custom field's value.
fn touches(event: &AuditEvent, value: &str, token: Option<&str>) -> bool {
    let custom = event
        .custom
        .values()
        .any(|v| v == value || Some(v.as_str()) == token);
    let Some(token) = token else {
        return custom;
    };
    let hex = token.strip_prefix(HASH_PREFIX).unwrap_or(token);
    let encrypted = format!("{ENCRYPTED_PREFIX}{hex}:");
    let holds = |text: &str| text.contains(token) || text.contains(&encrypted);
    custom || holds(&event.query) || event.params.iter().any(|p| holds(p))
}

/// Every recorded event touching the data subject `value`, oldest first, for a subject
/// access request (GDPR Art. 15): events holding its hash token or an encrypted token of
/// it in the query text or a parameter, or naming it (or its token) in a custom field.
/// The subject's own encrypted values are shown in clear while its key exists
/// ([`reveal`]); other subjects' values in the same events stay tokens. Reads one
/// snapshot of the ledger, without adding to it.
pub fn subject_events(backend: &dyn StorageBackend, value: &str) -> Result<Vec<AuditEvent>> {
    if !backend.keyspaces()?.iter().any(|k| k == KS_AUDIT) {
        return Ok(Vec::new());
    }
    let token = subject_token(backend, value)?;
    // Only this subject's values are shown in clear: the report goes to the subject, and
    // a statement may hold other subjects' values too.
    let subject = token
        .as_deref()
        .and_then(|t| t.strip_prefix(HASH_PREFIX))
        .and_then(super::export::parse_hex::<32>);
    let snapshot = backend.snapshot()?;
    let records = snapshot.range(
        KS_AUDIT,
        Bound::Unbounded,
        Bound::Unbounded,
        Direction::Forward,
    )?;
    let mut cache = HashMap::new();
    let mut out = Vec::new();
    for item in records {
        let (key, bytes) = item?;
        let mut event = decode_record(&key, &bytes)?.event;
        if !touches(&event, value, token.as_deref()) {
            continue;
        }
        if let Some(subject) = &subject {
            event.query = reveal_with(backend, &event.query, true, Some(subject), &mut cache)?;
            for param in &mut event.params {
                *param = reveal_with(backend, param, false, Some(subject), &mut cache)?;
            }
        }
        out.push(event);
    }
    Ok(out)
}

/// [`subject_events`], on the record: a SYSTEM `SUBJECT_ACCESS` event is committed first,
/// naming the subject by its hash token only (custom fields `subject` and `by`), so a
/// report that shows a subject's values in clear is itself in the trail — and in the
/// subject's later reports. Returns that event's seq and the subject's events before it.
/// Allowed on a read-only database: it adds to the trail, not to the data.
pub fn subject_access(
    db: &crate::Database,
    value: &str,
    by: &str,
) -> Result<(u64, Vec<AuditEvent>)> {
    let backend = db.backend();
    let token = hash_token(&keys::hmac_key_or_create(backend)?, value);
    let seq = db.record_system_event(
        AppEvent::new(ACCESS_OPERATION)
            .target(super::AUDIT_TABLE)
            .detail("subject access: every event about the subject, its values shown in clear")
            .custom("subject", token)
            .custom("by", by),
    )?;
    let mut events = subject_events(backend, value)?;
    events.retain(|e| e.seq < seq);
    Ok((seq, events))
}

/// What [`forget_subject`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForgetReport {
    /// The subject's hash token, recorded in the `FORGET_SUBJECT` event in place of the id.
    pub token: String,
    /// Whether the subject had a key (some value was encrypted for it) that is now gone.
    pub key_destroyed: bool,
    /// Seq of the `FORGET_SUBJECT` event.
    pub seq: u64,
}

/// Erases the data subject `value` from the audit trail (GDPR Art. 17) by destroying its
/// key: every value encrypted for it ([`RedactionMode::Encrypt`]) can no longer be
/// decrypted, while every hash of the ledger still verifies — the chain covers the
/// ciphertext. The key file is rewritten without the key (fsynced, renamed over the old
/// one; in memory the keyspace entry is deleted), then the erasure is recorded as a SYSTEM
/// `FORGET_SUBJECT` event naming the subject by its hash token only (custom fields
/// `subject` and `by`).
///
/// Then every keyspace is reclaimed ([`StorageBackend::reclaim`]): rows the application
/// has already deleted — the subject's own record in a user table — leave the table files
/// too. A deleted value can still sit in the backend's write-ahead journal until that is
/// retired; `heliosdb_lite::erase_subject` (which `heliosdb audit forget-subject` runs)
/// calls this, then finishes the erasure by closing the database, sealing the journal
/// (`FjallBackend::seal_journal`) and reclaiming again after reopening
/// (`docs/THREAT-MODEL.md`, *Right to erasure*).
///
/// Values the trail holds as hash tokens ([`RedactionMode::Hash`]) are pseudonyms: they
/// stay, and stay searchable. Rows the application has not deleted are its own to delete.
///
/// [`StorageBackend::reclaim`]: crate::backend::StorageBackend::reclaim
pub fn forget_subject(db: &crate::Database, value: &str, by: &str) -> Result<ForgetReport> {
    db.refuse_if_read_only("erasing a data subject")?;
    if value.is_empty() {
        return Err(Error::Unsupported(
            "forget-subject needs the subject's id (the value of the subject column)".to_owned(),
        ));
    }
    let backend = db.backend();
    let hmac_key = keys::hmac_key_or_create(backend)?;
    let subject = keys::hmac(&hmac_key, value);
    let token = format!("{HASH_PREFIX}{}", hex(&subject));
    let key_destroyed = keys::destroy_subject_key(backend, &subject)?;
    let detail = if key_destroyed {
        "subject key destroyed: the subject's encrypted values can no longer be read"
    } else {
        "no subject key: nothing was encrypted for this subject"
    };
    let seq = db.record_system_event(
        AppEvent::new(FORGET_OPERATION)
            .target(super::AUDIT_TABLE)
            .detail(detail)
            .custom("subject", token.clone())
            .custom("by", by),
    )?;
    // Every keyspace: the key (in memory it is kept in one), and the rows of user tables
    // the application deleted before asking for the erasure.
    let keyspaces = backend.keyspaces()?;
    let names: Vec<&str> = keyspaces.iter().map(String::as_str).collect();
    backend.reclaim(&names)?;
    Ok(ForgetReport {
        token,
        key_destroyed,
        seq,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn unparsed_text_keeps_no_literal() {
        let (text, values) = mask_literals("SELEC * FROM p WHERE email = 'a@x' AND n = 42 -- bob");
        assert_eq!(text, "SELEC * FROM p WHERE email = '?' AND n = '?'  ");
        assert_eq!(values, ["a@x", "42"]);
        let (text, values) = mask_literals("SELECT 'unterminated");
        assert_eq!(text, UNREADABLE);
        assert_eq!(values, ["unterminated"]);
    }

    #[test]
    fn errors_are_scrubbed_longest_value_first() {
        assert_eq!(
            scrub(
                "cannot parse 'ab@x' near 'ab'",
                &["ab".into(), "ab@x".into(), String::new()]
            ),
            "cannot parse '?' near '?'"
        );
    }

    #[test]
    fn encrypted_tokens_parse() {
        let token = format!("enc:{}:AAAA rest", "ab".repeat(32));
        let (subject, sealed, len) = parse_encrypted(&token).unwrap();
        assert_eq!(subject, [0xab; 32]);
        assert_eq!(sealed, vec![0, 0, 0]);
        assert_eq!(&token[len..], " rest");
        assert!(parse_encrypted("enc:zz").is_none());
    }
}
