//! Ed25519 keys in the C2SP signed-note text forms.
//!
//! * verifier (public) key: `<name>+<key id, 8 hex digits>+<base64(0x01 ‖ public key)>`
//! * signer (private) key: `PRIVATE+KEY+<name>+<key id>+<base64(0x01 ‖ 32-byte seed)>`
//!
//! with `key id = SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key)[0..4]`, big-endian — the forms
//! the Go `sumdb/note` package and other signed-note implementations read.

use crate::CheckpointError;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::Path;

/// The signature-type byte of Ed25519 in signed notes.
pub const ALG_ED25519: u8 = 0x01;

fn bad(what: impl Into<String>) -> CheckpointError {
    CheckpointError::Key { what: what.into() }
}

/// Whether `name` can name a key: non-empty, no whitespace, no `+`.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// `SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key)[0..4]` as a big-endian number.
pub fn key_id(name: &str, public: &VerifyingKey) -> u32 {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update(b"\n");
    hasher.update([ALG_ED25519]);
    hasher.update(public.as_bytes());
    let digest = hasher.finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// Decodes `base64(0x01 ‖ 32 bytes)`.
fn decode_key_bytes(text: &str) -> Result<[u8; 32], CheckpointError> {
    let bytes = BASE64
        .decode(text)
        .map_err(|e| bad(format!("the key data is not base64: {e}")))?;
    match bytes.split_first() {
        Some((&ALG_ED25519, key)) => <[u8; 32]>::try_from(key).map_err(|_| {
            bad(format!(
                "an Ed25519 key is 32 bytes, this one {}",
                key.len()
            ))
        }),
        Some((alg, _)) => Err(bad(format!(
            "signature type {alg:#04x} is not Ed25519 (0x01)"
        ))),
        None => Err(bad("the key data is empty")),
    }
}

fn parse_id(hex: &str) -> Result<u32, CheckpointError> {
    if hex.len() != 8 {
        return Err(bad("the key id must be 8 hex digits"));
    }
    u32::from_str_radix(hex, 16).map_err(|_| bad("the key id must be 8 hex digits"))
}

/// Parses the first non-empty line of the key file at `path`; errors name the file.
fn read_key_file<K>(
    path: &Path,
    parse: impl FnOnce(&str) -> Result<K, CheckpointError>,
) -> Result<K, CheckpointError> {
    let text = std::fs::read_to_string(path).map_err(|source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(text.lines().find(|l| !l.trim().is_empty()).unwrap_or("")).map_err(|e| e.in_file(path))
}

/// A public key that checks signatures.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    id: u32,
    key: VerifyingKey,
}

impl fmt::Debug for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifierKey({self})")
    }
}

impl VerifierKey {
    /// Parses `<name>+<id>+<base64>`; the id must match the name and key.
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        let text = text.trim();
        let mut parts = text.splitn(3, '+');
        let (Some(name), Some(id), Some(data)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad(
                "a verifier key has the form <name>+<key id>+<base64 key>",
            ));
        };
        if !is_valid_name(name) {
            return Err(bad(format!("invalid key name {name:?}")));
        }
        let id = parse_id(id)?;
        let key = VerifyingKey::from_bytes(&decode_key_bytes(data)?)
            .map_err(|e| bad(format!("not an Ed25519 public key: {e}")))?;
        if key_id(name, &key) != id {
            return Err(bad("the key id does not match the name and key"));
        }
        Ok(Self {
            name: name.to_owned(),
            id,
            key,
        })
    }

    /// Reads a verifier key file (its first non-empty line).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, CheckpointError> {
        read_key_file(path.as_ref(), Self::parse)
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Checks an Ed25519 signature over `message` (strict: no malleable or weak-key forms).
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        self.key
            .verify_strict(message, &Signature::from_bytes(signature))
            .is_ok()
    }
}

impl fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut data = vec![ALG_ED25519];
        data.extend(self.key.as_bytes());
        write!(f, "{}+{:08x}+{}", self.name, self.id, BASE64.encode(data))
    }
}

/// A private key that signs checkpoints. Its `Debug` output hides the key.
#[derive(Clone)]
pub struct SignerKey {
    name: String,
    id: u32,
    key: SigningKey,
}

impl fmt::Debug for SignerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignerKey({}+{:08x}+…)", self.name, self.id)
    }
}

impl SignerKey {
    /// A new key named `name`, from the operating system's random source.
    pub fn generate(name: &str) -> Result<Self, CheckpointError> {
        if !is_valid_name(name) {
            return Err(bad(format!(
                "invalid key name {name:?}: use a non-empty name without spaces or '+'"
            )));
        }
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)
            .map_err(|e| bad(format!("no randomness from the operating system: {e}")))?;
        Ok(Self::from_seed(name, seed))
    }

    fn from_seed(name: &str, seed: [u8; 32]) -> Self {
        let key = SigningKey::from_bytes(&seed);
        Self {
            name: name.to_owned(),
            id: key_id(name, &key.verifying_key()),
            key,
        }
    }

    /// Parses `PRIVATE+KEY+<name>+<id>+<base64>`; the id must match.
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        let text = text.trim();
        let rest = text
            .strip_prefix("PRIVATE+KEY+")
            .ok_or_else(|| bad("a signer key starts with PRIVATE+KEY+"))?;
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(id), Some(data)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad(
                "a signer key has the form PRIVATE+KEY+<name>+<key id>+<base64 key>",
            ));
        };
        if !is_valid_name(name) {
            return Err(bad(format!("invalid key name {name:?}")));
        }
        let id = parse_id(id)?;
        let key = Self::from_seed(name, decode_key_bytes(data)?);
        if key.id != id {
            return Err(bad("the key id does not match the name and key"));
        }
        Ok(key)
    }

    /// Reads a signer key file (its first non-empty line).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, CheckpointError> {
        read_key_file(path.as_ref(), Self::parse)
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The matching verifier key.
    pub fn verifier(&self) -> VerifierKey {
        VerifierKey {
            name: self.name.clone(),
            id: self.id,
            key: self.key.verifying_key(),
        }
    }

    /// The private key in its text form (`PRIVATE+KEY+...`): keep it secret.
    pub fn to_private_text(&self) -> String {
        let mut data = vec![ALG_ED25519];
        data.extend(self.key.to_bytes());
        format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            self.id,
            BASE64.encode(data)
        )
    }

    /// An Ed25519 signature over `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }

    /// Writes the private key to `<prefix>.key` (created new, mode 0600 on Unix) and the
    /// verifier key to `<prefix>.pub`; returns both paths. Refuses to overwrite.
    pub fn write_files(
        &self,
        prefix: impl AsRef<Path>,
    ) -> Result<(std::path::PathBuf, std::path::PathBuf), CheckpointError> {
        use std::io::Write;
        let prefix = prefix.as_ref();
        let with = |ext: &str| {
            let mut name = prefix.as_os_str().to_owned();
            name.push(ext);
            std::path::PathBuf::from(name)
        };
        let (private, public) = (with(".key"), with(".pub"));
        if let Some(parent) = private.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| CheckpointError::Io {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| CheckpointError::Io { path, source }
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&private).map_err(io(&private))?;
        writeln!(file, "{}", self.to_private_text())
            .and_then(|()| file.sync_all())
            .map_err(io(&private))?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&public)
            .map_err(io(&public))?;
        writeln!(file, "{}", self.verifier())
            .and_then(|()| file.sync_all())
            .map_err(io(&public))?;
        Ok((private, public))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_ids_are_checked() {
        let key = SignerKey::from_seed("heliosdb-test", [7; 32]);
        let again = SignerKey::parse(&key.to_private_text()).expect("parses");
        assert_eq!(again.to_private_text(), key.to_private_text());
        let verifier = VerifierKey::parse(&key.verifier().to_string()).expect("parses");
        assert_eq!(verifier, key.verifier());
        let signature = key.sign(b"hello\n");
        assert!(verifier.verify(b"hello\n", &signature));
        assert!(!verifier.verify(b"hello!\n", &signature));

        let text = key.verifier().to_string();
        let (name, rest) = text.split_once('+').expect("form");
        for bad in [
            format!("other+{rest}"),
            format!("{name}+00000000+{}", rest.split_once('+').expect("form").1),
            format!("{name}+{rest}x"),
            "no-plus".to_owned(),
            format!("bad name+{rest}"),
        ] {
            assert!(VerifierKey::parse(&bad).is_err(), "{bad}");
        }
        assert!(
            SignerKey::parse(&text).is_err(),
            "a public key is not a signer key"
        );
        assert!(SignerKey::generate("has space").is_err());
        assert_ne!(
            SignerKey::generate("a").expect("key").to_private_text(),
            SignerKey::generate("a").expect("key").to_private_text()
        );
    }
}
