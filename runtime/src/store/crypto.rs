//! The master key and the AEAD that seals values at rest.
//!
//! A [`MasterKey`] is a keyring: the current key, which seals every new
//! value, and any retired keys, which only open values sealed before a
//! rotation. Why a keyring: nodes sharing one database cannot all switch
//! keys at the same instant. During a rotation every node runs with the new
//! key current and the old one retired (so it reads both and writes the new
//! one), `airlock secrets rotate-key` re-seals what is left, and only then is
//! the old key removed. Several keys are given as one text: base64 keys
//! separated by whitespace or commas, the current one first.
//!
//! [`seal`] and [`open`] are deliberately small and storage-agnostic: the
//! secret store uses them with [`secret_aad`], and connected-account
//! credentials will use them with their own associated data.

use std::fmt;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Length of a master key, in bytes (AES-256).
pub const KEY_LEN: usize = 32;
/// Length of an AES-GCM nonce, in bytes (96 bits).
pub const NONCE_LEN: usize = 12;

/// Environment variable holding the master key as standard base64.
pub const MASTER_KEY_ENV: &str = "AIRLOCK_MASTER_KEY";
/// Environment variable naming a file that holds the master key.
pub const MASTER_KEY_FILE_ENV: &str = "AIRLOCK_MASTER_KEY_FILE";

/// Domain separation for key ids, so an id is never the hash of anything else.
const KEY_ID_DOMAIN: &[u8] = b"airlock:master-key-id:v1\0";
/// Domain separation for the associated data of stored secrets.
const SECRET_AAD_DOMAIN: &[u8] = b"airlock:secret:v1\0";
/// Domain separation for the associated data of connected accounts' credentials.
const ACCOUNT_AAD_DOMAIN: &[u8] = b"airlock:account:v1\0";

/// Why a master key could not be obtained. Never contains key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "no master key: Airlock encrypts secrets at rest and will not store or read them without \
         one. Create a key with `airlock keygen` and set AIRLOCK_MASTER_KEY to it (or put it in a \
         file named by AIRLOCK_MASTER_KEY_FILE / --master-key-file)"
    )]
    Missing,
    #[error("the master key from {source_name} is not valid standard base64 ({reason})")]
    NotBase64 { source_name: String, reason: String },
    #[error(
        "the master key from {source_name} decodes to {len} bytes, but a master key must be \
         exactly {KEY_LEN} bytes (44 base64 characters); create one with `airlock keygen`"
    )]
    WrongLength { source_name: String, len: usize },
    #[error("cannot read the master key file {}: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the operating system's random number generator failed: {0}")]
    Rng(String),
}

/// Why sealing or opening failed. Never contains plaintext or key material.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error(
        "the master key (id {current}) is not the key this value was encrypted with (id {stored})"
    )]
    KeyMismatch { current: String, stored: String },
    #[error(
        "decryption failed: the ciphertext was altered or does not belong to this record \
         (AES-GCM authentication failed)"
    )]
    Decrypt,
    #[error("encryption failed")]
    Encrypt,
    #[error("the stored nonce is {0} bytes, expected {NONCE_LEN}")]
    BadNonce(usize),
    #[error("the operating system's random number generator failed: {0}")]
    Rng(String),
}

/// The 32-byte key that every value at rest is encrypted under.
///
/// The bytes are zeroed when the key is dropped, and `Debug` shows only the
/// key's [id](MasterKey::id).
pub struct MasterKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
    id: String,
    /// Keys that open older values but seal nothing; see the module docs.
    retired: Vec<MasterKey>,
}

impl MasterKey {
    /// A key from raw bytes.
    pub fn from_bytes(bytes: Zeroizing<[u8; KEY_LEN]>) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(KEY_ID_DOMAIN);
        hasher.update(bytes.as_slice());
        let digest = hasher.finalize();
        let id = hex::encode(&digest[..8]);
        Self {
            bytes,
            id,
            retired: Vec::new(),
        }
    }

    /// This key as the current one, with `retired` keys that only open
    /// values (duplicates of the current key are dropped).
    pub fn with_retired(mut self, retired: Vec<MasterKey>) -> Self {
        for key in retired {
            if key.id != self.id && !self.retired.iter().any(|k| k.id == key.id) {
                self.retired.push(key.without_retired());
            }
        }
        self
    }

    fn without_retired(mut self) -> Self {
        self.retired.clear();
        self
    }

    /// The ids of every key of the ring, the current one first.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.id.as_str()).chain(self.retired.iter().map(|k| k.id.as_str()))
    }

    /// The key of the ring with `id`, current or retired.
    fn by_id(&self, id: &str) -> Option<&MasterKey> {
        if self.id == id {
            return Some(self);
        }
        self.retired.iter().find(|k| k.id == id)
    }

    /// Parses one or more keys (see the module docs): the first is current.
    pub fn ring_from_text(text: &str, source_name: &str) -> Result<Self, KeyError> {
        let mut keys = text
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|part| !part.is_empty())
            .enumerate()
            .map(|(i, part)| {
                let source = if i == 0 {
                    source_name.to_owned()
                } else {
                    format!("{source_name} (key {})", i + 1)
                };
                Self::from_base64(part, &source)
            });
        let current = match keys.next() {
            Some(key) => key?,
            None => {
                return Err(KeyError::NotBase64 {
                    source_name: source_name.to_owned(),
                    reason: "it is empty".into(),
                });
            }
        };
        let retired = keys.collect::<Result<Vec<_>, _>>()?;
        Ok(current.with_retired(retired))
    }

    /// A fresh random key from the operating system's RNG.
    pub fn generate() -> Result<Self, KeyError> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        getrandom::fill(bytes.as_mut_slice()).map_err(|e| KeyError::Rng(e.to_string()))?;
        Ok(Self::from_bytes(bytes))
    }

    /// Parses standard base64 of exactly 32 bytes; surrounding whitespace is
    /// ignored. `source_name` says where the text came from, for errors.
    pub fn from_base64(text: &str, source_name: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(KeyError::NotBase64 {
                source_name: source_name.to_owned(),
                reason: "it is empty".into(),
            });
        }
        let decoded = Zeroizing::new(STANDARD.decode(text).map_err(|e| KeyError::NotBase64 {
            source_name: source_name.to_owned(),
            reason: describe_base64_error(&e),
        })?);
        if decoded.len() != KEY_LEN {
            return Err(KeyError::WrongLength {
                source_name: source_name.to_owned(),
                len: decoded.len(),
            });
        }
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        bytes.copy_from_slice(&decoded);
        Ok(Self::from_bytes(bytes))
    }

    /// Reads a key file holding the base64 text.
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        let text =
            Zeroizing::new(
                std::fs::read_to_string(path).map_err(|source| KeyError::File {
                    path: path.to_owned(),
                    source,
                })?,
            );
        Self::ring_from_text(&text, &format!("file {}", path.display()))
    }

    /// The operator's key: from `file` when given (the `--master-key-file`
    /// flag or `AIRLOCK_MASTER_KEY_FILE`), otherwise from `AIRLOCK_MASTER_KEY`.
    /// An empty variable counts as unset. No key at all is [`KeyError::Missing`].
    pub fn from_env_or_file(file: Option<&Path>) -> Result<Self, KeyError> {
        let env = std::env::var(MASTER_KEY_ENV).ok().map(Zeroizing::new);
        Self::resolve(env.as_deref().map(String::as_str), file)
    }

    /// [`from_env_or_file`](Self::from_env_or_file) with the variable's value
    /// passed in (for tests and other callers that read configuration elsewhere).
    pub fn resolve(env_value: Option<&str>, file: Option<&Path>) -> Result<Self, KeyError> {
        if let Some(path) = file {
            return Self::from_file(path);
        }
        match env_value {
            Some(text) if !text.trim().is_empty() => Self::ring_from_text(text, MASTER_KEY_ENV),
            _ => Err(KeyError::Missing),
        }
    }

    /// The key as standard base64 (44 characters), for `airlock keygen`.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.bytes.as_slice()))
    }

    /// A short, stable identifier of this key: the first 16 hex characters of
    /// SHA-256 over a domain-separation string and the key. Safe to store and
    /// show; it lets a wrong key be reported as such.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(self.bytes.as_slice()))
    }
}

impl Clone for MasterKey {
    fn clone(&self) -> Self {
        Self {
            bytes: self.bytes.clone(),
            id: self.id.clone(),
            retired: self.retired.clone(),
        }
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let retired: Vec<&str> = self.retired.iter().map(|k| k.id.as_str()).collect();
        f.debug_struct("MasterKey")
            .field("id", &self.id)
            .field("retired", &retired)
            .finish_non_exhaustive()
    }
}

/// A value sealed under a master key: what is stored at rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// [`MasterKey::id`] of the key that sealed it.
    pub key_id: String,
    /// The random 96-bit nonce used for this encryption.
    pub nonce: [u8; NONCE_LEN],
    /// AES-256-GCM ciphertext with its 16-byte tag appended.
    pub ciphertext: Vec<u8>,
}

impl Sealed {
    /// Rebuilds a sealed value from stored columns, checking the nonce length.
    pub fn from_parts(
        key_id: String,
        nonce: &[u8],
        ciphertext: Vec<u8>,
    ) -> Result<Self, CryptoError> {
        let nonce: [u8; NONCE_LEN] = nonce
            .try_into()
            .map_err(|_| CryptoError::BadNonce(nonce.len()))?;
        Ok(Self {
            key_id,
            nonce,
            ciphertext,
        })
    }
}

/// Encrypts `plaintext` under `key` with a fresh random nonce, binding `aad`.
pub fn seal(key: &MasterKey, aad: &[u8], plaintext: &[u8]) -> Result<Sealed, CryptoError> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(|e| CryptoError::Rng(e.to_string()))?;
    let ciphertext = key
        .cipher()
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| CryptoError::Encrypt)?;
    Ok(Sealed {
        key_id: key.id().to_owned(),
        nonce,
        ciphertext,
    })
}

/// Decrypts a sealed value with the key of the ring that sealed it. A value
/// sealed under a key the ring lacks fails with [`CryptoError::KeyMismatch`]
/// before any decryption is attempted; a tampered ciphertext or different
/// `aad` fails with [`CryptoError::Decrypt`].
pub fn open(
    ring: &MasterKey,
    aad: &[u8],
    sealed: &Sealed,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let Some(key) = ring.by_id(&sealed.key_id) else {
        return Err(CryptoError::KeyMismatch {
            current: ring.id().to_owned(),
            stored: sealed.key_id.clone(),
        });
    };
    key.cipher()
        .decrypt(
            Nonce::from_slice(&sealed.nonce),
            Payload {
                msg: &sealed.ciphertext,
                aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| CryptoError::Decrypt)
}

/// Associated data binding a stored secret to its project and name, so a
/// ciphertext copied to another row does not decrypt. Names never contain NUL
/// (they are validated), so the encoding is unambiguous.
pub fn secret_aad(project: &str, name: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(SECRET_AAD_DOMAIN.len() + project.len() + 1 + name.len());
    aad.extend_from_slice(SECRET_AAD_DOMAIN);
    aad.extend_from_slice(project.as_bytes());
    aad.push(0);
    aad.extend_from_slice(name.as_bytes());
    aad
}

/// Associated data binding an account's sealed credentials to its project and
/// account id, so a ciphertext copied to another account (or project, or a
/// secret row) does not decrypt. Project names and account ids never contain
/// NUL, so the encoding is unambiguous.
pub fn account_aad(project: &str, account_id: &str) -> Vec<u8> {
    let mut aad =
        Vec::with_capacity(ACCOUNT_AAD_DOMAIN.len() + project.len() + 1 + account_id.len());
    aad.extend_from_slice(ACCOUNT_AAD_DOMAIN);
    aad.extend_from_slice(project.as_bytes());
    aad.push(0);
    aad.extend_from_slice(account_id.as_bytes());
    aad
}

/// Describes a base64 error without echoing the offending character (which
/// would be a piece of the key).
fn describe_base64_error(e: &base64::DecodeError) -> String {
    match e {
        base64::DecodeError::InvalidByte(offset, _) => {
            format!("invalid character at offset {offset}")
        }
        base64::DecodeError::InvalidLength(len) => {
            format!("{len} base64 characters is not a valid length")
        }
        base64::DecodeError::InvalidLastSymbol(offset, _) => {
            format!("invalid last character at offset {offset}")
        }
        base64::DecodeError::InvalidPadding => "invalid padding".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> MasterKey {
        MasterKey::from_bytes(Zeroizing::new([byte; KEY_LEN]))
    }

    #[test]
    fn seal_open_round_trip_with_fresh_nonces() {
        let k = key(7);
        let a = seal(&k, b"aad", b"hello world").unwrap();
        let b = seal(&k, b"aad", b"hello world").unwrap();
        assert_ne!(a.nonce, b.nonce, "every seal uses a fresh nonce");
        assert_ne!(a.ciphertext, b.ciphertext);
        assert_eq!(a.key_id, k.id());
        assert_eq!(open(&k, b"aad", &a).unwrap().as_slice(), b"hello world");
    }

    #[test]
    fn open_rejects_other_aad_tamper_and_other_key() {
        let k = key(7);
        let sealed = seal(&k, b"aad-1", b"value").unwrap();
        assert!(matches!(
            open(&k, b"aad-2", &sealed),
            Err(CryptoError::Decrypt)
        ));
        let mut tampered = sealed.clone();
        tampered.ciphertext[0] ^= 1;
        assert!(matches!(
            open(&k, b"aad-1", &tampered),
            Err(CryptoError::Decrypt)
        ));
        let other = key(8);
        let err = open(&other, b"aad-1", &sealed).unwrap_err();
        assert!(matches!(err, CryptoError::KeyMismatch { .. }));
        let msg = err.to_string();
        assert!(msg.contains(other.id()) && msg.contains(k.id()), "{msg}");
    }

    #[test]
    fn a_ring_opens_what_any_of_its_keys_sealed_and_seals_with_the_first() {
        let (old, new) = (key(1), key(2));
        let by_old = seal(&old, b"a", b"v1").unwrap();
        let text = format!("{}, {}", *new.to_base64(), *old.to_base64());
        let ring = MasterKey::ring_from_text(&text, "test").unwrap();
        assert_eq!(ring.id(), new.id());
        assert_eq!(ring.ids().collect::<Vec<_>>(), [new.id(), old.id()]);
        assert_eq!(open(&ring, b"a", &by_old).unwrap().as_slice(), b"v1");
        assert_eq!(seal(&ring, b"a", b"v2").unwrap().key_id, new.id());
        // A ring without the sealing key names both.
        let err = open(&key(3), b"a", &by_old).unwrap_err().to_string();
        assert!(err.contains(old.id()), "{err}");
    }

    #[test]
    fn key_ids_are_short_stable_and_distinct() {
        assert_eq!(key(1).id(), key(1).id());
        assert_ne!(key(1).id(), key(2).id());
        assert_eq!(key(1).id().len(), 16);
    }

    #[test]
    fn base64_parsing_checks_encoding_and_length() {
        let k = MasterKey::generate().unwrap();
        let text = k.to_base64();
        assert_eq!(text.len(), 44);
        let parsed = MasterKey::from_base64(&format!("  {}\n", *text), "test").unwrap();
        assert_eq!(parsed.id(), k.id());

        let err = MasterKey::from_base64("not base64 at all!", "test").unwrap_err();
        assert!(matches!(err, KeyError::NotBase64 { .. }), "{err}");
        assert!(err.to_string().contains("base64"));

        let err = MasterKey::from_base64(&STANDARD.encode([1u8; 16]), "test").unwrap_err();
        assert!(
            matches!(err, KeyError::WrongLength { len: 16, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("exactly 32 bytes"));
    }

    #[test]
    fn debug_and_errors_do_not_show_key_material() {
        let k = key(0xAB);
        let b64 = k.to_base64();
        let debug = format!("{k:?}");
        assert!(
            !debug.contains(b64.as_str()) && !debug.contains("171"),
            "{debug}"
        );
        assert!(debug.contains(k.id()));
        // A key with one bad character: the error names the offset, not the character.
        let mut bad = b64.to_string();
        bad.replace_range(3..4, "%");
        let err = MasterKey::from_base64(&bad, "test")
            .unwrap_err()
            .to_string();
        assert!(!err.contains('%') && !err.contains(&bad[..10]), "{err}");
    }

    #[test]
    fn missing_key_says_how_to_make_one() {
        let err = MasterKey::resolve(None, None).unwrap_err().to_string();
        assert!(err.contains("airlock keygen"), "{err}");
        assert!(err.contains("AIRLOCK_MASTER_KEY"), "{err}");
        let err = MasterKey::resolve(Some("  "), None).unwrap_err();
        assert!(matches!(err, KeyError::Missing));
    }

    #[test]
    fn key_file_wins_and_ignores_whitespace() {
        let dir = tempfile::tempdir().unwrap();
        let k = MasterKey::generate().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, format!("\n{}\n\n", *k.to_base64())).unwrap();
        let other = key(3).to_base64();
        let loaded = MasterKey::resolve(Some(&other), Some(&path)).unwrap();
        assert_eq!(loaded.id(), k.id());
        let err = MasterKey::resolve(None, Some(&dir.path().join("absent"))).unwrap_err();
        assert!(matches!(err, KeyError::File { .. }));
    }
}
