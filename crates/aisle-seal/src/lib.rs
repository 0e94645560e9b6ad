//! Whole-file encryption at rest: every file aisle writes beside its store (model files,
//! the search re-ranker, saved vectors, the search index's segment files) is sealed with
//! AES-256-GCM-SIV when its data directory is encrypted.
//!
//! Why whole files: these files are written once and read whole (a model is loaded into
//! memory, a tantivy segment is never modified after it is terminated), so they need none of
//! the random-access block scheme the store's file has (`aisle-store/src/encrypted.rs`).
//! Why GCM-SIV: a fresh random nonce per write, and should a nonce ever repeat, it leaks only
//! whether two files are equal instead of the key stream (nonce-misuse resistance).
//!
//! A sealed file is `MAGIC ‖ nonce ‖ ciphertext ‖ tag`, with the file's name as associated
//! data, so two sealed files cannot be swapped for each other unnoticed. Keys come from the
//! data directory's data key (`aisle_store::keys::key_for`), one per kind of file.

use std::borrow::Cow;
use std::io;
use std::path::Path;

use aes_gcm_siv::aead::{AeadInPlace, KeyInit};
use aes_gcm_siv::{Aes256GcmSiv, Nonce, Tag};
use rand::RngCore;

/// A 256-bit key.
pub type Key = [u8; 32];

/// The first bytes of a file sealed by [`seal_file`].
pub const MAGIC: &[u8; 8] = b"AISLESLD";
const NONCE: usize = 12;
const TAG: usize = 16;

/// Seals and opens byte strings under one key.
#[derive(Clone)]
pub struct Sealer(Aes256GcmSiv);

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<secret>)")
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

impl Sealer {
    /// A sealer under `key`.
    pub fn new(key: &Key) -> Sealer {
        Sealer(Aes256GcmSiv::new_from_slice(key).expect("a 32-byte key"))
    }

    /// `nonce ‖ ciphertext ‖ tag` of `plain`, with `label` bound in as associated data.
    pub fn seal(&self, label: &[u8], plain: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE];
        rand::rng().fill_bytes(&mut nonce);
        let mut out = Vec::with_capacity(NONCE + plain.len() + TAG);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plain);
        let tag = self
            .0
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), label, &mut out[NONCE..])
            .expect("AES-GCM-SIV seals any message shorter than 64 GiB");
        out.extend_from_slice(&tag);
        out
    }

    /// The plaintext of `sealed` (made by [`Sealer::seal`] with the same key and `label`);
    /// `None` when it does not authenticate (changed, or sealed under another key or label).
    pub fn open(&self, label: &[u8], mut sealed: Vec<u8>) -> Option<Vec<u8>> {
        if sealed.len() < NONCE + TAG {
            return None;
        }
        let tag_at = sealed.len() - TAG;
        let (head, tag) = sealed.split_at_mut(tag_at);
        let tag = Tag::clone_from_slice(tag);
        let (nonce, body) = head.split_at_mut(NONCE);
        self.0
            .decrypt_in_place_detached(Nonce::from_slice(nonce), label, body, &tag)
            .ok()?;
        sealed.truncate(tag_at);
        sealed.drain(..NONCE);
        Some(sealed)
    }
}

/// The associated data of a file: its name, so a data directory can move.
fn label(path: &Path) -> Vec<u8> {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned().into_bytes())
        .unwrap_or_default()
}

/// What to write to `path` for the content `bytes`: sealed under `key` when given, else
/// `bytes` as they are. (This crate does no I/O, so that the store, below every other crate,
/// can use it: callers write with `aisle_core::fs::write_atomic`.)
pub fn seal_file<'a>(path: &Path, bytes: &'a [u8], key: Option<&Key>) -> Cow<'a, [u8]> {
    match key {
        None => Cow::Borrowed(bytes),
        Some(key) => {
            let sealed = Sealer::new(key).seal(&label(path), bytes);
            let mut out = Vec::with_capacity(MAGIC.len() + sealed.len());
            out.extend_from_slice(MAGIC);
            out.extend_from_slice(&sealed);
            Cow::Owned(out)
        }
    }
}

/// Whether `bytes` (a file's content) were sealed by [`seal_file`].
pub fn is_sealed(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

/// The content of the file `path` whose bytes are `bytes` (as [`seal_file`] made them). A
/// sealed file needs its key and a plain one must be read without one: in an encrypted data
/// directory a plain file is one nobody sealed, and reading it would trust what anyone with
/// write access put there.
pub fn open_file(path: &Path, bytes: Vec<u8>, key: Option<&Key>) -> io::Result<Vec<u8>> {
    match (key, is_sealed(&bytes)) {
        (None, false) => Ok(bytes),
        (None, true) => Err(invalid(format!(
            "{} is encrypted: open its data directory with the master key (AISLE_MASTER_KEY, AISLE_MASTER_KEY_FILE or AISLE_PASSPHRASE)",
            path.display()
        ))),
        (Some(_), false) => Err(invalid(format!(
            "{} is not encrypted, but its data directory is: it was written without the key or copied in; write it again (e.g. retrain the model)",
            path.display()
        ))),
        (Some(key), true) => Sealer::new(key)
            .open(&label(path), bytes[MAGIC.len()..].to_vec())
            .ok_or_else(|| {
                invalid(format!(
                    "{} does not authenticate: it was changed, or sealed under another data directory's key",
                    path.display()
                ))
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"user-7f3a bought tea";

    fn holds(bytes: &[u8], needle: &[u8]) -> bool {
        bytes.windows(needle.len()).any(|w| w == needle)
    }

    fn write_file(path: &Path, bytes: &[u8], key: Option<&Key>) -> io::Result<()> {
        std::fs::write(path, seal_file(path, bytes, key))
    }

    fn read_file(path: &Path, key: Option<&Key>) -> io::Result<Vec<u8>> {
        open_file(path, std::fs::read(path)?, key)
    }

    #[test]
    fn a_sealed_file_holds_no_plaintext_and_reads_back_with_its_key_only() {
        let dir = tempfile::tempdir().expect("dir");
        let (plain, sealed) = (dir.path().join("plain.bin"), dir.path().join("a.model"));
        write_file(&plain, SECRET, None).expect("plain");
        write_file(&sealed, SECRET, Some(&[7; 32])).expect("sealed");
        assert!(holds(&std::fs::read(&plain).expect("read"), SECRET));
        assert!(!holds(&std::fs::read(&sealed).expect("read"), SECRET));
        assert_eq!(read_file(&sealed, Some(&[7; 32])).expect("open"), SECRET);
        assert_eq!(read_file(&plain, None).expect("read"), SECRET);

        let says = |path: &Path, key: Option<&Key>, text: &str| {
            let e = read_file(path, key).expect_err("refused");
            assert!(e.to_string().contains(text), "{e}");
        };
        says(&sealed, Some(&[8; 32]), "does not authenticate");
        says(&sealed, None, "is encrypted");
        says(&plain, Some(&[7; 32]), "is not encrypted");
        // Renamed, it no longer authenticates: the name is bound in.
        let moved = dir.path().join("b.model");
        std::fs::rename(&sealed, &moved).expect("rename");
        says(&moved, Some(&[7; 32]), "does not authenticate");
    }

    #[test]
    fn a_changed_byte_anywhere_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("x.bin");
        write_file(&path, SECRET, Some(&[1; 32])).expect("sealed");
        let bytes = std::fs::read(&path).expect("read");
        for at in MAGIC.len()..bytes.len() {
            let mut changed = bytes.clone();
            changed[at] ^= 1;
            std::fs::write(&path, &changed).expect("write");
            assert!(read_file(&path, Some(&[1; 32])).is_err(), "byte {at}");
        }
    }

    #[test]
    fn two_seals_of_the_same_bytes_differ() {
        let s = Sealer::new(&[3; 32]);
        assert_ne!(s.seal(b"l", SECRET), s.seal(b"l", SECRET));
        assert_eq!(s.open(b"l", s.seal(b"l", SECRET)).as_deref(), Some(SECRET));
        assert_eq!(s.open(b"m", s.seal(b"l", SECRET)), None);
    }
}
