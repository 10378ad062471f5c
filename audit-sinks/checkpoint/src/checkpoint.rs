//! C2SP `tlog-checkpoint` bodies: `<origin>\n<tree size>\n<base64 root hash>\n`, signed as
//! a C2SP signed note. The origin of a HeliosDB-Lite ledger is `heliosdb/<database id>`
//! (32 lower-case hex digits).

use crate::CheckpointError;
use crate::key::{SignerKey, VerifierKey};
use crate::note::Note;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use heliosdb_engine::audit::StoredCheckpoint;

/// Prefix of the origin line of a HeliosDB-Lite checkpoint.
pub const ORIGIN_PREFIX: &str = "heliosdb/";

fn bad(what: impl Into<String>) -> CheckpointError {
    CheckpointError::Checkpoint { what: what.into() }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A tree head: which log, how many events, and the Merkle root over them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// `heliosdb/<database id hex>`.
    pub origin: String,
    /// Events covered: the first `size` events of the ledger.
    pub size: u64,
    /// RFC 6962 root over their leaves.
    pub root: [u8; 32],
}

impl Checkpoint {
    /// The checkpoint of the first `size` events of database `database_id`.
    pub fn new(database_id: &[u8; 16], size: u64, root: [u8; 32]) -> Self {
        Self {
            origin: format!("{ORIGIN_PREFIX}{}", hex(database_id)),
            size,
            root,
        }
    }

    /// The body text that is signed.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            BASE64.encode(self.root)
        )
    }

    /// Parses a body (extension lines after the root are allowed and ignored).
    pub fn parse_body(text: &str) -> Result<Self, CheckpointError> {
        if !text.ends_with('\n') {
            return Err(bad("the body must end with a newline"));
        }
        let mut lines = text.lines();
        let origin = lines.next().unwrap_or_default();
        if origin.is_empty() {
            return Err(bad("the origin line is empty"));
        }
        let size_text = lines.next().ok_or_else(|| bad("no tree size line"))?;
        let canonical_number = !size_text.is_empty()
            && size_text.bytes().all(|b| b.is_ascii_digit())
            && (size_text == "0" || !size_text.starts_with('0'));
        if !canonical_number {
            return Err(bad(format!(
                "tree size {size_text:?} is not a decimal number without leading zeros"
            )));
        }
        let size = size_text
            .parse()
            .map_err(|_| bad(format!("tree size {size_text} is too large")))?;
        let root_text = lines.next().ok_or_else(|| bad("no root hash line"))?;
        let root = BASE64
            .decode(root_text)
            .ok()
            .and_then(|r| <[u8; 32]>::try_from(r).ok())
            .ok_or_else(|| bad("the root hash is not 32 bytes of base64"))?;
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
        })
    }

    /// The database id in the origin, if it is a HeliosDB-Lite origin.
    pub fn database_id(&self) -> Option<[u8; 16]> {
        let hex = self.origin.strip_prefix(ORIGIN_PREFIX)?;
        if hex.len() != 32 {
            return None;
        }
        let mut id = [0u8; 16];
        for (i, byte) in id.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(id)
    }

    /// Signs the body as a note.
    pub fn sign(&self, key: &SignerKey) -> Result<Note, CheckpointError> {
        Note::sign(&self.body(), key)
    }

    /// The record `__audit_checkpoints` keeps of this checkpoint, signed by `key` as
    /// `note`, at `signed_at_us` (microseconds since the Unix epoch).
    pub fn to_stored(&self, key: &SignerKey, note: &Note, signed_at_us: i64) -> StoredCheckpoint {
        StoredCheckpoint {
            size: self.size,
            root: self.root,
            signed_at_us,
            origin: self.origin.clone(),
            key_name: key.name().to_owned(),
            key_id: format!("{:08x}", key.id()),
            note: note.to_string(),
        }
    }

    /// Parses a signed note, checks `key`'s signature and parses the checkpoint it signs.
    pub fn open(note: &str, key: &VerifierKey) -> Result<Self, CheckpointError> {
        let note = Note::parse(note)?;
        note.verify(key)?;
        Self::parse_body(note.text())
    }
}

/// Splits a file of signed notes (each followed by a blank line, as the checkpoint sink
/// and `heliosdb checkpoint` write them) into notes, in order.
pub fn parse_notes(text: &str) -> Result<Vec<Note>, CheckpointError> {
    let mut notes = Vec::new();
    let mut lines = text.split_inclusive('\n').peekable();
    loop {
        while lines.peek().is_some_and(|l| l.trim().is_empty()) {
            lines.next();
        }
        if lines.peek().is_none() {
            return Ok(notes);
        }
        let mut note = String::new();
        // The text, up to its blank line.
        for line in lines.by_ref() {
            note.push_str(line);
            if line == "\n" {
                break;
            }
        }
        // The signature lines.
        while let Some(line) = lines.peek() {
            if !line.starts_with('\u{2014}') {
                break;
            }
            note.push_str(line);
            lines.next();
        }
        notes.push(Note::parse(&note)?);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_round_trip_and_reject_malformed_text() {
        let checkpoint = Checkpoint::new(&[0xab; 16], 1234, [5; 32]);
        assert_eq!(
            checkpoint.body(),
            format!(
                "heliosdb/{}\n1234\n{}\n",
                "ab".repeat(16),
                BASE64.encode([5u8; 32])
            )
        );
        assert_eq!(
            Checkpoint::parse_body(&checkpoint.body()).expect("parses"),
            checkpoint
        );
        assert_eq!(checkpoint.database_id(), Some([0xab; 16]));
        let with_extension = format!("{}extension line\n", checkpoint.body());
        assert_eq!(
            Checkpoint::parse_body(&with_extension).expect("parses"),
            checkpoint
        );
        let root = BASE64.encode([5u8; 32]);
        for bad in [
            format!("o\n0123\n{root}\n"),
            format!("o\n12\n{root}"),
            format!("\n12\n{root}\n"),
            format!("o\n-1\n{root}\n"),
            "o\n12\nAAAA\n".to_owned(),
            "o\n12\n".to_owned(),
        ] {
            assert!(Checkpoint::parse_body(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn signed_checkpoints_open_only_with_their_key_and_text() {
        let key = SignerKey::generate("test-log").expect("key");
        let other = SignerKey::generate("test-log").expect("key");
        let checkpoint = Checkpoint::new(&[1; 16], 7, [2; 32]);
        let note = checkpoint.sign(&key).expect("signs").to_string();
        assert_eq!(
            Checkpoint::open(&note, &key.verifier()).expect("opens"),
            checkpoint
        );
        assert!(matches!(
            Checkpoint::open(&note, &other.verifier()),
            Err(CheckpointError::NotSigned { .. })
        ));
        let forged = note.replacen("\n7\n", "\n8\n", 1);
        assert!(matches!(
            Checkpoint::open(&forged, &key.verifier()),
            Err(CheckpointError::BadSignature { .. })
        ));
        let two = format!(
            "{note}\n{}\n",
            Checkpoint::new(&[1; 16], 9, [3; 32])
                .sign(&key)
                .expect("signs")
        );
        let notes = parse_notes(&two).expect("parses");
        assert_eq!(notes.len(), 2);
        assert_eq!(notes[0].to_string(), note);
    }
}
