//! Per-user keys (crypto-shredding): in an encrypted store, the text a shopper typed into an
//! event (a search's query and the results it showed) is sealed under a key of that shopper's
//! own, and forgetting the shopper destroys the key. A copy of the store file taken before
//! the forget (a backup, a snapshot, a page redb has freed but not yet overwritten) then
//! holds that text under a key that no longer exists anywhere.
//!
//! The keys live in a file of their own, `user-keys.bin` beside the store, and not in a table
//! of the store: a table would be in every copy of the store file, with the key beside the
//! text it opens. For the same reason that file is rewritten whole when a key is destroyed,
//! and a backup of the data directory should leave it out (or expire its copies within the
//! forget deadline): a copy of this file from before a forget still opens that user's text.
//!
//! The shopper's id goes the same way. The store looks users up by a keyed hash of their id
//! ([`UserNames`]), and their record, the only place the id itself is kept, is sealed under
//! their key ([`Keyring::seal_user`]): after a forget, a copy of the store holds a hash that
//! only confirms a guessed id, and no readable id.
//!
//! Layout: `MAGIC`, then 64-byte records, each the seal of `user (u32, LE) ‖ key (32 bytes)`
//! under a key derived from the data key ([`crate::keys::derived_key`], purpose
//! `user-keys`). New keys are appended and synced before the store commit whose events they
//! seal; a record torn by a crash is the last one and is dropped at open (its commit never
//! happened).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rand::RngCore;
use rustc_hash::FxHashMap;

use crate::{Error, Result};

/// The key file in the data directory.
pub const USER_KEYS_FILE: &str = "user-keys.bin";
const MAGIC: &[u8; 8] = b"AISLEUK1";
const RECORD: usize = 12 + 4 + 32 + 16;
const LABEL: &[u8] = b"aisle user key v1";
/// Keys made ahead for the next dense ids when a user without one needs one: new users come
/// in id order, so one sync of the file covers this many of them instead of one each.
const AHEAD: u32 = 256;

/// A user's key.
pub type UserKey = [u8; 32];

struct State {
    keys: FxHashMap<u32, UserKey>,
    /// Made since the last [`Keyring::persist`]: not yet on disk.
    pending: Vec<u32>,
}

/// The per-user keys of one encrypted store.
pub struct Keyring {
    path: PathBuf,
    sealer: aisle_seal::Sealer,
    state: Mutex<State>,
    /// Set when the store also looks users up by keyed names and seals their records
    /// ([`Keyring::with_names`]).
    names: Option<UserNames>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn damaged(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::Encryption(format!("{}: {reason}", path.display()))
}

impl Keyring {
    /// Opens (or creates) the key file in `dir`, sealed under `key`.
    pub fn open(dir: &Path, key: &aisle_seal::Key) -> Result<Keyring> {
        let path = dir.join(USER_KEYS_FILE);
        let sealer = aisle_seal::Sealer::new(key);
        let mut keys = FxHashMap::default();
        if !path.exists() {
            aisle_core::fs::write_atomic(&path, MAGIC)?;
        } else {
            let bytes = fs_err::read(&path)?;
            if !bytes.starts_with(MAGIC) {
                return Err(damaged(&path, "not an aisle user key file"));
            }
            let records: Vec<&[u8]> = bytes[MAGIC.len()..].chunks(RECORD).collect();
            let mut whole = 0;
            for (i, record) in records.iter().enumerate() {
                let last = i + 1 == records.len();
                let opened = (record.len() == RECORD)
                    .then(|| sealer.open(LABEL, record.to_vec()))
                    .flatten();
                match opened {
                    Some(plain) => {
                        let user = u32::from_le_bytes(plain[..4].try_into().expect("4 bytes"));
                        keys.insert(user, plain[4..].try_into().expect("32 bytes"));
                        whole += 1;
                    }
                    // Torn by a crash while it was appended: its commit never happened.
                    None if last => {}
                    None => {
                        return Err(damaged(
                            &path,
                            format!(
                                "user key record {i} does not authenticate: the file was changed or sealed under another key"
                            ),
                        ));
                    }
                }
            }
            let keep = MAGIC.len() + whole * RECORD;
            if keep < bytes.len() {
                let file = fs_err::OpenOptions::new().write(true).open(&path)?;
                file.set_len(keep as u64)?;
                file.sync_all()?;
            }
        }
        Ok(Keyring {
            path,
            sealer,
            state: Mutex::new(State {
                keys,
                pending: Vec::new(),
            }),
            names: None,
        })
    }

    /// The keyring of a store that looks users up by the names `names` gives their ids and
    /// seals their records under their keys.
    pub fn with_names(mut self, names: UserNames) -> Keyring {
        self.names = Some(names);
        self
    }

    /// Whether user records are sealed (and users looked up by keyed names).
    pub fn seals_users(&self) -> bool {
        self.names.is_some()
    }

    /// `user`'s entry of the key file: their id and `key`, sealed under the file's key.
    fn seal_record(&self, user: u32, key: &UserKey) -> Vec<u8> {
        let mut plain = [0u8; 36];
        plain[..4].copy_from_slice(&user.to_le_bytes());
        plain[4..].copy_from_slice(key);
        self.sealer.seal(LABEL, &plain)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The key of `user`, if they have one.
    pub fn key(&self, user: u32) -> Option<UserKey> {
        self.state().keys.get(&user).copied()
    }

    /// The key of `user`, made when they have none (with keys for the next [`AHEAD`] ids
    /// that have none either, which is harmless: ids are never reused); a new key is on
    /// disk after the next [`Keyring::persist`], which must come before anything sealed
    /// under it is committed.
    pub fn key_or_create(&self, user: u32) -> UserKey {
        let mut state = self.state();
        if let Some(key) = state.keys.get(&user) {
            return *key;
        }
        let state = &mut *state;
        for id in user..user.saturating_add(AHEAD) {
            if let std::collections::hash_map::Entry::Vacant(slot) = state.keys.entry(id) {
                let mut key = [0u8; 32];
                rand::rng().fill_bytes(&mut key);
                slot.insert(key);
                state.pending.push(id);
            }
        }
        state.keys[&user]
    }

    /// Appends the keys made since the last call and syncs them.
    pub fn persist(&self) -> Result<()> {
        let mut state = self.state();
        if state.pending.is_empty() {
            return Ok(());
        }
        let mut out = Vec::with_capacity(state.pending.len() * RECORD);
        for user in &state.pending {
            out.extend_from_slice(&self.seal_record(*user, &state.keys[user]));
        }
        let mut file = fs_err::OpenOptions::new().append(true).open(&self.path)?;
        file.write_all(&out)?;
        file.sync_data()?;
        state.pending.clear();
        Ok(())
    }

    /// Destroys the keys of `users`: the file is rewritten without them (atomically, so a
    /// crash leaves the old file or the new one) and the old file is unlinked. Returns how
    /// many keys were destroyed.
    pub fn shred(&self, users: &[u32]) -> Result<usize> {
        let mut state = self.state();
        let before = state.keys.len();
        for user in users {
            state.keys.remove(user);
        }
        state.pending.retain(|u| !users.contains(u));
        let destroyed = before - state.keys.len();
        if destroyed == 0 {
            return Ok(0);
        }
        let mut out = Vec::with_capacity(MAGIC.len() + state.keys.len() * RECORD);
        out.extend_from_slice(MAGIC);
        let pending: rustc_hash::FxHashSet<u32> = state.pending.iter().copied().collect();
        let mut users: Vec<u32> = state
            .keys
            .keys()
            .copied()
            .filter(|u| !pending.contains(u))
            .collect();
        users.sort_unstable();
        for user in users {
            out.extend_from_slice(&self.seal_record(user, &state.keys[&user]));
        }
        aisle_core::fs::write_atomic(&self.path, &out)?;
        Ok(destroyed)
    }

    /// How many users have a key.
    pub fn len(&self) -> usize {
        self.state().keys.len()
    }

    /// Whether no user has a key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// A user record sealed under the user's key (made when they have none), with their
    /// dense id as associated data.
    pub fn seal_user(&self, user: u32, record: &[u8]) -> Vec<u8> {
        aisle_seal::Sealer::new(&self.key_or_create(user)).seal(&user.to_le_bytes(), record)
    }

    /// The record of `user` sealed by [`Keyring::seal_user`]; `None` when their key was
    /// destroyed (they were forgotten), an error when it does not authenticate.
    pub fn open_user(&self, user: u32, sealed: &[u8]) -> Result<Option<Vec<u8>>> {
        let Some(key) = self.key(user) else {
            return Ok(None);
        };
        aisle_seal::Sealer::new(&key)
            .open(&user.to_le_bytes(), sealed.to_vec())
            .map(Some)
            .ok_or_else(|| Error::Corrupt {
                table: "users",
                reason: format!("the record of user {user} does not authenticate"),
            })
    }
}

/// How many keys the key file in `dir` holds, from its length (without the master key, and
/// without writing); `None` when there is no key file.
pub fn records(dir: &Path) -> Result<Option<usize>> {
    let path = dir.join(USER_KEYS_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let len = fs_err::metadata(&path)?.len() as usize;
    Ok(Some(len.saturating_sub(MAGIC.len()) / RECORD))
}

/// The name a user is looked up by in a store with keyed names: 128 bits of HMAC-SHA256 of
/// their id, under a key derived from the data key (purpose `user-ids`), in hex. An id
/// never starts with NUL, so a name never equals a forgotten user's tombstone.
#[derive(Clone)]
pub struct UserNames(hmac::Hmac<sha2::Sha256>);

impl std::fmt::Debug for UserNames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UserNames(<secret>)")
    }
}

impl UserNames {
    /// Names keyed by `key`.
    pub fn new(key: &[u8; 32]) -> UserNames {
        use hmac::Mac;
        UserNames(hmac::Hmac::new_from_slice(key).expect("HMAC takes a key of any length"))
    }

    /// The name of the user with the id `external`.
    pub fn name(&self, external: &str) -> String {
        use hmac::Mac;
        let mut mac = self.0.clone();
        mac.update(external.as_bytes());
        let tag = mac.finalize().into_bytes();
        let mut out = String::with_capacity(33);
        out.push('h');
        for b in &tag[..16] {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }
}

/// What `external` is looked up by in a store with `keyring`: itself, or its keyed name
/// when the keyring has names.
pub(crate) fn user_key<'a>(
    keyring: Option<&Keyring>,
    external: &'a str,
) -> std::borrow::Cow<'a, str> {
    match keyring.and_then(|k| k.names.as_ref()) {
        Some(names) => std::borrow::Cow::Owned(names.name(external)),
        None => std::borrow::Cow::Borrowed(external),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_survive_a_reopen_a_torn_record_is_dropped_and_shredded_keys_are_gone() {
        let dir = tempfile::tempdir().expect("dir");
        let ring = Keyring::open(dir.path(), &[5; 32]).expect("open");
        // Three users, each in a window of ids of their own: three windows of keys.
        let (x, y, z) = (0, AHEAD, 2 * AHEAD);
        let (a, b) = (ring.key_or_create(x), ring.key_or_create(y));
        assert_eq!(ring.key_or_create(x), a, "a user keeps their key");
        assert!(ring.key(x + 1).is_some(), "the next ids got keys ahead");
        ring.persist().expect("persist");
        let c = ring.key_or_create(z);
        ring.persist().expect("persist");
        let path = dir.path().join(USER_KEYS_FILE);
        let bytes = fs_err::read(&path).expect("read");
        assert_eq!(bytes.len(), MAGIC.len() + 3 * AHEAD as usize * RECORD);
        assert!(
            !bytes.windows(32).any(|w| w == a || w == b || w == c),
            "a key is readable in the file"
        );

        // A crash halfway through an append leaves a partial record: dropped at open.
        let mut torn = bytes.clone();
        torn.extend_from_slice(&[0xAB; 20]);
        fs_err::write(&path, &torn).expect("write");
        let ring = Keyring::open(dir.path(), &[5; 32]).expect("reopen");
        assert_eq!(
            (ring.key(x), ring.key(y), ring.key(z)),
            (Some(a), Some(b), Some(c))
        );
        assert_eq!(
            fs_err::read(&path).expect("read"),
            bytes,
            "the torn tail is cut"
        );

        // A changed record that is not the last is an error, never a key.
        let mut changed = bytes.clone();
        changed[MAGIC.len() + 5] ^= 1;
        fs_err::write(&path, &changed).expect("write");
        let e = Keyring::open(dir.path(), &[5; 32]).expect_err("changed");
        assert!(e.to_string().contains("does not authenticate"), "{e}");
        fs_err::write(&path, &bytes).expect("restore");
        assert!(
            Keyring::open(dir.path(), &[6; 32]).is_err(),
            "another key opens it"
        );

        let ring = Keyring::open(dir.path(), &[5; 32]).expect("reopen");
        assert_eq!(ring.shred(&[y, 10 * AHEAD]).expect("shred"), 1);
        assert_eq!(ring.key(y), None);
        let ring = Keyring::open(dir.path(), &[5; 32]).expect("reopen");
        assert_eq!(
            (ring.key(x), ring.key(y), ring.key(z)),
            (Some(a), None, Some(c))
        );
        assert_eq!(ring.len(), 3 * AHEAD as usize - 1);
        // Asked for again, a destroyed key comes back as a new one: what was sealed under
        // the old one stays unreadable.
        assert_ne!(ring.key_or_create(y), b);
    }
}
