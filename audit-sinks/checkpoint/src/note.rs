//! C2SP signed notes: a text ending in a newline, a blank line, then one signature line per
//! key: `— <key name> <base64(key id, 4 bytes BE ‖ Ed25519 signature, 64 bytes)>`.

use crate::CheckpointError;
use crate::key::{SignerKey, VerifierKey, is_valid_name};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// The em dash and space that start a signature line.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

fn bad(what: impl Into<String>) -> CheckpointError {
    CheckpointError::Note { what: what.into() }
}

/// One signature line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    /// The key's name.
    pub name: String,
    /// The key id.
    pub id: u32,
    /// The signature bytes after the key id (64 for Ed25519).
    pub signature: Vec<u8>,
}

/// A note: its text and its signatures (not yet checked).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    text: String,
    signatures: Vec<NoteSignature>,
}

impl Note {
    /// A note of `text` signed by `key`. `text` must end with a newline.
    pub fn sign(text: &str, key: &SignerKey) -> Result<Note, CheckpointError> {
        check_text(text)?;
        Ok(Note {
            text: text.to_owned(),
            signatures: vec![NoteSignature {
                name: key.name().to_owned(),
                id: key.id(),
                signature: key.sign(text.as_bytes()).to_vec(),
            }],
        })
    }

    /// Parses a note: the text is everything up to the last blank line, the rest are
    /// signature lines.
    pub fn parse(note: &str) -> Result<Note, CheckpointError> {
        let split = note
            .rfind("\n\n")
            .ok_or_else(|| bad("no blank line between the text and the signatures"))?;
        let text = &note[..=split];
        check_text(text)?;
        let block = &note[split + 2..];
        if !block.ends_with('\n') {
            return Err(bad("the last signature line does not end with a newline"));
        }
        let mut signatures = Vec::new();
        for line in block.lines() {
            let rest = line
                .strip_prefix(SIGNATURE_PREFIX)
                .ok_or_else(|| bad(format!("not a signature line: {line:?}")))?;
            let (name, data) = rest
                .split_once(' ')
                .ok_or_else(|| bad(format!("signature line without a key name: {line:?}")))?;
            if !is_valid_name(name) {
                return Err(bad(format!("invalid key name {name:?}")));
            }
            let bytes = BASE64
                .decode(data)
                .map_err(|e| bad(format!("signature is not base64: {e}")))?;
            if bytes.len() < 5 {
                return Err(bad("signature shorter than its key id"));
            }
            let (id, signature) = bytes.split_at(4);
            signatures.push(NoteSignature {
                name: name.to_owned(),
                id: u32::from_be_bytes([id[0], id[1], id[2], id[3]]),
                signature: signature.to_vec(),
            });
        }
        if signatures.is_empty() {
            return Err(bad("no signature"));
        }
        Ok(Note {
            text: text.to_owned(),
            signatures,
        })
    }

    /// The signed text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The signatures, unchecked.
    pub fn signatures(&self) -> &[NoteSignature] {
        &self.signatures
    }

    /// Checks that `key` signed the text: a signature line with the key's name and id must
    /// be present and valid.
    pub fn verify(&self, key: &VerifierKey) -> Result<(), CheckpointError> {
        let not_signed = || CheckpointError::NotSigned {
            key: format!("{}+{:08x}", key.name(), key.id()),
        };
        let ours = self
            .signatures
            .iter()
            .find(|s| s.name == key.name() && s.id == key.id())
            .ok_or_else(not_signed)?;
        let signature = <[u8; 64]>::try_from(ours.signature.as_slice()).map_err(|_| {
            CheckpointError::BadSignature {
                key: format!("{}+{:08x}", key.name(), key.id()),
            }
        })?;
        if key.verify(self.text.as_bytes(), &signature) {
            Ok(())
        } else {
            Err(CheckpointError::BadSignature {
                key: format!("{}+{:08x}", key.name(), key.id()),
            })
        }
    }
}

fn check_text(text: &str) -> Result<(), CheckpointError> {
    if !text.ends_with('\n') {
        return Err(bad("the text must end with a newline"));
    }
    if text.len() == 1 {
        return Err(bad("the text is empty"));
    }
    Ok(())
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}", self.text)?;
        for s in &self.signatures {
            let mut data = s.id.to_be_bytes().to_vec();
            data.extend(&s.signature);
            writeln!(f, "{SIGNATURE_PREFIX}{} {}", s.name, BASE64.encode(data))?;
        }
        Ok(())
    }
}
