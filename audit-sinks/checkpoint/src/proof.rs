//! Offline proofs of one event: a C2SP `tlog-proof@v1` text — the event's canonical bytes
//! as the `extra` data, its leaf index, its RFC 6962 inclusion path and the signed
//! checkpoint it is proved against. An auditor checks it with nothing but the file and the
//! public key, and learns nothing about any other event.
//!
//! ```text
//! c2sp.org/tlog-proof@v1
//! extra <base64(canonical event)>
//! index <seq - 1>
//! <base64 sibling hash, leaf side first>
//! ...
//!
//! <signed checkpoint note>
//! ```

use crate::{Checkpoint, CheckpointError, Note, VerifierKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use heliosdb_engine::audit::{AuditEvent, Hash, leaf_hash, merkle};

/// First line of the format.
pub const PROOF_HEADER: &str = "c2sp.org/tlog-proof@v1";

fn bad(what: impl Into<String>) -> CheckpointError {
    CheckpointError::Proof { what: what.into() }
}

/// A proof that one event is in the ledger a signed checkpoint describes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventProof {
    /// The event's canonical bytes (`docs/FORMAT.md` §5.2).
    pub canonical: Vec<u8>,
    /// Leaf index: seq − 1.
    pub index: u64,
    /// The inclusion path, leaf side first.
    pub path: Vec<Hash>,
    /// The signed checkpoint, as signed.
    pub checkpoint: Note,
}

/// What a verified proof establishes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvedEvent {
    /// The event, decoded from the proved bytes.
    pub event: AuditEvent,
    /// The checkpoint it is included in.
    pub checkpoint: Checkpoint,
}

impl EventProof {
    /// The proof text.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{PROOF_HEADER}\nextra {}\nindex {}\n",
            BASE64.encode(&self.canonical),
            self.index
        );
        for hash in &self.path {
            out.push_str(&BASE64.encode(hash));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.checkpoint.to_string());
        out
    }

    /// Parses a proof text.
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        let (head, checkpoint) = text
            .split_once("\n\n")
            .ok_or_else(|| bad("no empty line before the checkpoint"))?;
        let mut lines = head.lines();
        if lines.next() != Some(PROOF_HEADER) {
            return Err(bad(format!("the first line must be {PROOF_HEADER}")));
        }
        let mut line = lines.next().ok_or_else(|| bad("no index line"))?;
        let canonical = match line.strip_prefix("extra ") {
            Some(data) => {
                let bytes = BASE64
                    .decode(data)
                    .map_err(|e| bad(format!("extra is not base64: {e}")))?;
                line = lines.next().ok_or_else(|| bad("no index line"))?;
                bytes
            }
            None => return Err(bad("no extra line: it carries the event being proved")),
        };
        let index_text = line
            .strip_prefix("index ")
            .ok_or_else(|| bad("expected the index line"))?;
        let canonical_number = !index_text.is_empty()
            && index_text.bytes().all(|b| b.is_ascii_digit())
            && (index_text == "0" || !index_text.starts_with('0'));
        let index = index_text
            .parse()
            .ok()
            .filter(|_| canonical_number)
            .ok_or_else(|| bad(format!("bad index {index_text:?}")))?;
        let path = lines
            .map(|l| {
                BASE64
                    .decode(l)
                    .ok()
                    .and_then(|h| <[u8; 32]>::try_from(h).ok())
                    .ok_or_else(|| bad(format!("proof line {l:?} is not a base64 SHA-256 hash")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            canonical,
            index,
            path,
            checkpoint: Note::parse(checkpoint)?,
        })
    }

    /// Checks the proof: the checkpoint is signed by `key`, the event decodes, belongs to
    /// the checkpoint's database, sits at `index`, and the inclusion path leads from its
    /// leaf hash to the signed root.
    pub fn verify(&self, key: &VerifierKey) -> Result<ProvedEvent, CheckpointError> {
        self.checkpoint.verify(key)?;
        let checkpoint = Checkpoint::parse_body(self.checkpoint.text())?;
        let event = AuditEvent::from_canonical(&self.canonical)
            .map_err(|e| bad(format!("the proved bytes are not an audit event: {e}")))?;
        if checkpoint.database_id() != Some(event.database_id) {
            return Err(bad(
                "the event belongs to another database than the checkpoint",
            ));
        }
        if event.seq != self.index + 1 {
            return Err(bad(format!(
                "the event is seq {} but the proof is for index {} (seq {})",
                event.seq,
                self.index,
                self.index + 1
            )));
        }
        let leaf = leaf_hash(&self.canonical);
        if !merkle::verify_inclusion(
            self.index,
            checkpoint.size,
            &leaf,
            &self.path,
            &checkpoint.root,
        ) {
            return Err(bad(format!(
                "the inclusion path does not lead to the root of the checkpoint of {} events",
                checkpoint.size
            )));
        }
        Ok(ProvedEvent { event, checkpoint })
    }
}
