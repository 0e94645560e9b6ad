//! Keys for encryption at rest: a random 256-bit data key seals the store; a master key
//! wraps it, and only the wrapped form is on disk (`DATA_DIR/keys.json`). The master key
//! comes from the environment, from a key file that only its owner can read, or from a
//! passphrase stretched with Argon2id, as KMS-style envelope encryption does. Rotating the
//! master key rewraps the data key at once (the store's blocks do not change).

use std::path::{Path, PathBuf};

use aes_gcm_siv::aead::{AeadInPlace, KeyInit};
use aes_gcm_siv::{Aes256GcmSiv, Nonce, Tag};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The wrapped data key's file in the data directory.
pub const KEYS_FILE: &str = "keys.json";
/// A master key as 64 hex digits.
pub const MASTER_KEY_VAR: &str = "AISLE_MASTER_KEY";
/// A file holding the master key (64 hex digits), readable by its owner only (0600).
pub const MASTER_KEY_FILE_VAR: &str = "AISLE_MASTER_KEY_FILE";
/// A passphrase the master key is derived from (Argon2id).
pub const PASSPHRASE_VAR: &str = "AISLE_PASSPHRASE";

/// Argon2id's cost: OWASP's recommendation (19 MiB, two passes, one lane).
const ARGON_MEMORY_KIB: u32 = 19_456;
const ARGON_PASSES: u32 = 2;
const WRAP_AAD: &[u8] = b"aisle data key v1";

/// Where the master key comes from.
#[derive(Clone)]
pub enum MasterKey {
    /// 32 bytes as given (environment variable or key file).
    Raw([u8; 32]),
    /// A passphrase, stretched with Argon2id and the salt in `keys.json`.
    Passphrase(String),
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MasterKey::Raw(_) => "MasterKey::Raw(<secret>)",
            MasterKey::Passphrase(_) => "MasterKey::Passphrase(<secret>)",
        })
    }
}

fn setting(message: impl Into<String>) -> Error {
    Error::Encryption(message.into())
}

fn hex_decode(text: &str, what: &str) -> Result<Vec<u8>> {
    let text = text.trim();
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(setting(format!("{what} must be hex digits")));
    }
    Ok((0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("checked hex"))
        .collect())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn raw_key(text: &str, what: &str) -> Result<MasterKey> {
    let bytes = hex_decode(text, what)?;
    let key: [u8; 32] = bytes
        .try_into()
        .map_err(|_| setting(format!("{what} must be 64 hex digits (256 bits)")))?;
    Ok(MasterKey::Raw(key))
}

impl MasterKey {
    /// The master key the environment names, if any: `AISLE_MASTER_KEY`, then
    /// `AISLE_MASTER_KEY_FILE` (refused unless only its owner can read it), then
    /// `AISLE_PASSPHRASE`.
    pub fn from_env() -> Result<Option<MasterKey>> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// As [`MasterKey::from_env`], from any lookup (tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Option<MasterKey>> {
        if let Some(v) = get(MASTER_KEY_VAR) {
            return raw_key(&v, MASTER_KEY_VAR).map(Some);
        }
        if let Some(path) = get(MASTER_KEY_FILE_VAR) {
            let path = PathBuf::from(path);
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = fs_err::metadata(&path)?.permissions().mode();
                if mode & 0o077 != 0 {
                    return Err(setting(format!(
                        "{} can be read by others (mode {:o}): chmod 600 it",
                        path.display(),
                        mode & 0o777
                    )));
                }
            }
            let text = fs_err::read_to_string(&path)?;
            return raw_key(&text, &path.display().to_string()).map(Some);
        }
        if let Some(p) = get(PASSPHRASE_VAR) {
            if p.chars().count() < 12 {
                return Err(setting(format!(
                    "{PASSPHRASE_VAR} must be at least 12 characters"
                )));
            }
            return Ok(Some(MasterKey::Passphrase(p)));
        }
        Ok(None)
    }

    fn key_encryption_key(&self, file: &KeysFile) -> Result<[u8; 32]> {
        match self {
            MasterKey::Raw(k) => Ok(*k),
            MasterKey::Passphrase(p) => {
                let salt = hex_decode(&file.salt, "the key file's salt")?;
                let params =
                    argon2::Params::new(file.argon_memory_kib, file.argon_passes, 1, Some(32))
                        .map_err(|e| setting(format!("Argon2 settings in {KEYS_FILE}: {e}")))?;
                let argon = argon2::Argon2::new(
                    argon2::Algorithm::Argon2id,
                    argon2::Version::V0x13,
                    params,
                );
                let mut out = [0u8; 32];
                argon
                    .hash_password_into(p.as_bytes(), &salt, &mut out)
                    .map_err(|e| setting(format!("deriving the key from the passphrase: {e}")))?;
                Ok(out)
            }
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            MasterKey::Raw(_) => "raw",
            MasterKey::Passphrase(_) => "argon2id",
        }
    }
}

/// `keys.json`: the data key wrapped by the master key.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct KeysFile {
    version: u32,
    /// `raw` or `argon2id`: how the master key is obtained.
    master: String,
    salt: String,
    argon_memory_kib: u32,
    argon_passes: u32,
    /// Nonce, sealed data key and tag, in hex.
    wrapped: String,
}

fn wrap(kek: &[u8; 32], data_key: &[u8; 32]) -> String {
    let cipher = Aes256GcmSiv::new_from_slice(kek).expect("32-byte key");
    let mut nonce = [0u8; 12];
    rand::rng().fill_bytes(&mut nonce);
    let mut body = *data_key;
    let tag = cipher
        .encrypt_in_place_detached(Nonce::from_slice(&nonce), WRAP_AAD, &mut body)
        .expect("sealing 32 bytes cannot fail");
    hex(&[&nonce[..], &body[..], &tag[..]].concat())
}

fn unwrap(kek: &[u8; 32], wrapped: &str) -> Result<[u8; 32]> {
    let raw = hex_decode(wrapped, "the wrapped data key")?;
    if raw.len() != 12 + 32 + 16 {
        return Err(setting(format!(
            "{KEYS_FILE} is damaged: the wrapped key has the wrong length"
        )));
    }
    let cipher = Aes256GcmSiv::new_from_slice(kek).expect("32-byte key");
    let mut body = [0u8; 32];
    body.copy_from_slice(&raw[12..44]);
    cipher
        .decrypt_in_place_detached(
            Nonce::from_slice(&raw[..12]),
            WRAP_AAD,
            &mut body,
            Tag::from_slice(&raw[44..]),
        )
        .map_err(|_| {
            setting(
                "the master key does not open this data directory's key (wrong key or passphrase)",
            )
        })?;
    Ok(body)
}

fn write_keys(dir: &Path, file: &KeysFile) -> Result<()> {
    let text = serde_json::to_vec_pretty(file).map_err(|e| setting(e.to_string()))?;
    aisle_core::fs::write_atomic(&dir.join(KEYS_FILE), &text)?;
    Ok(())
}

fn read_keys(dir: &Path) -> Result<KeysFile> {
    let path = dir.join(KEYS_FILE);
    let text = fs_err::read(&path)?;
    serde_json::from_slice(&text).map_err(|e| setting(format!("{}: {e}", path.display())))
}

fn new_file(master: &MasterKey, data_key: &[u8; 32]) -> Result<KeysFile> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let mut file = KeysFile {
        version: 1,
        master: master.kind().into(),
        salt: hex(&salt),
        argon_memory_kib: ARGON_MEMORY_KIB,
        argon_passes: ARGON_PASSES,
        wrapped: String::new(),
    };
    let kek = master.key_encryption_key(&file)?;
    file.wrapped = wrap(&kek, data_key);
    Ok(file)
}

/// Whether `dir` holds an encrypted store's key file.
pub fn is_encrypted(dir: &Path) -> bool {
    dir.join(KEYS_FILE).is_file()
}

/// The data key of `dir`: unwrapped from `keys.json`, or made and wrapped when `create`
/// and there is none yet.
pub fn data_key(dir: &Path, master: &MasterKey, create: bool) -> Result<[u8; 32]> {
    if !is_encrypted(dir) {
        if !create {
            return Err(setting(format!(
                "{} has no {KEYS_FILE}: it is not encrypted",
                dir.display()
            )));
        }
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        write_keys(dir, &new_file(master, &key)?)?;
        return Ok(key);
    }
    let file = read_keys(dir)?;
    if file.master != master.kind() {
        return Err(setting(format!(
            "this data directory's key is opened with {} (set {}), not {}",
            if file.master == "raw" {
                "a master key"
            } else {
                "a passphrase"
            },
            if file.master == "raw" {
                MASTER_KEY_VAR
            } else {
                PASSPHRASE_VAR
            },
            if master.kind() == "raw" {
                "a master key"
            } else {
                "a passphrase"
            },
        )));
    }
    unwrap(&master.key_encryption_key(&file)?, &file.wrapped)
}

/// Rewraps the data key of `dir` under `new` (after checking that `old` opens it): the
/// old master key no longer opens the store, and no block of it is rewritten.
pub fn rotate(dir: &Path, old: &MasterKey, new: &MasterKey) -> Result<()> {
    let key = data_key(dir, old, false)?;
    write_keys(dir, &new_file(new, &key)?)
}

/// A key for one purpose (`"index"`, `"models"`), derived from the data key so that each
/// kind of file is sealed under a key of its own: SHA-256 of a label, the purpose and the
/// data key.
pub fn derived_key(data_key: &[u8; 32], purpose: &str) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"aisle derived key v1\0");
    h.update(purpose.as_bytes());
    h.update(b"\0");
    h.update(data_key);
    h.finalize().into()
}

/// The key for `purpose` in the data directory `dir`: none for a plain one; for an
/// encrypted one, derived from its data key, opened with the master key in the environment
/// (an error naming what to set when there is none).
pub fn key_for(dir: &Path, purpose: &str) -> Result<Option<[u8; 32]>> {
    Ok(keys_for(dir, [purpose])?.map(|[key]| key))
}

/// As [`key_for`], for several purposes from one opening of the data key (a passphrase
/// costs an Argon2id run each time).
pub fn keys_for<const N: usize>(dir: &Path, purposes: [&str; N]) -> Result<Option<[[u8; 32]; N]>> {
    if !is_encrypted(dir) {
        return Ok(None);
    }
    let master = MasterKey::from_env()?.ok_or_else(|| {
        setting(format!(
            "{} is encrypted: set {MASTER_KEY_VAR}, {MASTER_KEY_FILE_VAR} or {PASSPHRASE_VAR} to open it",
            dir.display()
        ))
    })?;
    let data_key = data_key(dir, &master, false)?;
    Ok(Some(
        purposes.map(|purpose| derived_key(&data_key, purpose)),
    ))
}
