//! Encryption at rest for the embedded store: a redb storage backend that seals every
//! 4 KiB block of the database file with AES-256-GCM-SIV under a fresh random nonce per
//! write, the block's index and write counter bound in as associated data (so a block
//! cannot be moved, swapped or rolled back to another position unnoticed).
//!
//! redb writes whole pages at page-aligned offsets, with one exception: its 320-byte header
//! at offset 0, which it rewrites in place at every commit and protects against a torn write
//! by its two checksummed slots. A sealed block does not tear gracefully (a half-written one
//! fails to authenticate), so block 0 has two physical copies written alternately: a torn
//! write leaves the previous copy, exactly as if the write had never reached the disk.
//! Every other block is written only while no commit refers to it (copy-on-write), and
//! carries as its counter the header counter its commit will write (one past the latest).
//! After a power cut, redb may read a torn block of the unfinished transaction while it
//! recovers, and expects to find garbage there that its checksums reject, as in a plain
//! file. So a block that does not authenticate and whose counter (stored at both ends of
//! its slot, so that a slot torn across sectors still shows one) is past the header that
//! survived reads as zeros; any other block that does not authenticate
//! (changed, or damaged at rest) is an error, so redb never sees content nobody sealed.
//! The one torn write this cannot tell from a change is a slot spread over three sectors
//! (about 1% of slots) of which only the middle one reached the disk.
//!
//! Written here rather than taken from a crate: redb has no encryption, and the crates that
//! encrypt files (age, streaming AEAD) are sequential, not random-access by block.
//!
//! Layout of the file: a 64-byte header (magic, version, block size, the key's check
//! value), then slots of `12 + 8 + 4096 + 16 + 8` bytes: nonce, write counter, sealed
//! block, tag, the counter again. Slots 0 and 1 are block 0's two copies; slot `i + 1` is block `i` for `i >= 1`. A
//! slot of zeros is a block never written, which reads as zeros (as redb expects of space
//! that `set_len` added).

use std::io;
use std::ops::Bound;
use std::sync::Mutex;

use aes_gcm_siv::aead::{AeadInPlace, KeyInit};
use aes_gcm_siv::{Aes256GcmSiv, Nonce, Tag};
use rand::RngCore;
use redb::{BackendError, StorageBackend};

/// Logical bytes per sealed block (redb's default page size).
pub const BLOCK: usize = 4096;
const NONCE: usize = 12;
const COUNTER: usize = 8;
const TAG: usize = 16;
/// The slot ends with the counter again, so that a slot torn across sectors still shows it.
const SLOT: usize = NONCE + COUNTER + BLOCK + TAG + COUNTER;
const FILE_HEADER: usize = 64;
const MAGIC: &[u8; 8] = b"AISLEENC";
const VERSION: u32 = 1;

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

/// A data key's check value: the first 16 bytes of the seal of 32 zeros under a fixed nonce,
/// so a wrong key is refused at open rather than as a stream of failed blocks.
fn check_value(cipher: &Aes256GcmSiv) -> [u8; 16] {
    let mut zeros = [0u8; 32];
    let tag = cipher
        .encrypt_in_place_detached(
            Nonce::from_slice(&[0u8; NONCE]),
            b"aisle key check",
            &mut zeros,
        )
        .expect("sealing 32 bytes cannot fail");
    let mut out = [0u8; 16];
    out.copy_from_slice(&tag);
    out
}

/// Which copy of block 0 is current, and its counter; and which copy the last sync made
/// durable, which a later write must never overwrite before the next sync.
#[derive(Debug, Default, Clone, Copy)]
struct Head {
    slot: u64,
    counter: u64,
    durable: u64,
}

/// What the head lock guards: block 0's current copy, and its plaintext once read or written
/// (redb patches its header at every commit, which would otherwise read and open block 0
/// each time).
#[derive(Default)]
struct HeadState {
    head: Head,
    plain: Option<Box<[u8; BLOCK]>>,
}

/// The sealing backend over another backend (a file, or the power-cut test's disk).
pub struct EncryptedBackend<B: StorageBackend> {
    inner: B,
    cipher: Aes256GcmSiv,
    /// Block 0's current copy and its plaintext; also serialises writes.
    head: Mutex<HeadState>,
    /// Block 0's counter when the store was opened: blocks sealed with a later counter
    /// belong to writes that may not have finished before a crash.
    opened_at: u64,
    /// Slots in the file: read once at open and kept by `set_len`, the only way the file's
    /// length changes, so that a block read costs no `len` call on the inner backend.
    slots: std::sync::atomic::AtomicU64,
}

impl<B: StorageBackend> std::fmt::Debug for EncryptedBackend<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptedBackend")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<B: StorageBackend> EncryptedBackend<B> {
    /// Seals `inner` with the 32-byte data key `key`. A new (empty) backend gets the file
    /// header; an existing one must carry this key's check value.
    pub fn open(inner: B, key: &[u8; 32]) -> io::Result<Self> {
        let cipher = Aes256GcmSiv::new_from_slice(key).map_err(|_| invalid("bad key length"))?;
        let check = check_value(&cipher);
        let len = inner.len()?;
        if len == 0 {
            let mut header = [0u8; FILE_HEADER];
            header[..8].copy_from_slice(MAGIC);
            header[8..12].copy_from_slice(&VERSION.to_le_bytes());
            header[12..16].copy_from_slice(&(BLOCK as u32).to_le_bytes());
            header[16..32].copy_from_slice(&check);
            inner.set_len(FILE_HEADER as u64)?;
            inner.write(0, &header)?;
            inner.sync_data()?;
        } else {
            let mut header = [0u8; FILE_HEADER];
            if len < FILE_HEADER as u64 {
                return Err(invalid(
                    "the store file is too short to be an encrypted aisle store",
                ));
            }
            inner.read(0, &mut header)?;
            if &header[..8] != MAGIC {
                return Err(invalid(
                    "the store file is not encrypted (or not an aisle store): open it without a key, or start a new data directory",
                ));
            }
            if header[16..32] != check {
                return Err(invalid(
                    "the encryption key does not match this store's key",
                ));
            }
        }
        let mut backend = EncryptedBackend {
            inner,
            cipher,
            head: Mutex::new(HeadState::default()),
            opened_at: 0,
            slots: std::sync::atomic::AtomicU64::new(0),
        };
        let slots = backend.inner.len()?.saturating_sub(FILE_HEADER as u64) / SLOT as u64;
        backend
            .slots
            .store(slots, std::sync::atomic::Ordering::Release);
        let head = backend.find_head()?;
        backend.opened_at = head.counter;
        backend.head.lock().unwrap_or_else(|p| p.into_inner()).head = head;
        Ok(backend)
    }

    fn slot_offset(slot: u64) -> u64 {
        FILE_HEADER as u64 + slot * SLOT as u64
    }

    fn slots(&self) -> io::Result<u64> {
        Ok(self.slots.load(std::sync::atomic::Ordering::Acquire))
    }

    /// Opens slot `slot` as block `block`: its counter and plaintext, `None` when never
    /// written (all zeros), an error when it does not authenticate.
    fn unseal(&self, slot: u64, block: u64) -> io::Result<Option<(u64, Box<[u8; BLOCK]>)>> {
        let mut raw = vec![0u8; SLOT];
        self.inner.read(Self::slot_offset(slot), &mut raw)?;
        Ok(self.open_slot(&mut raw, block)?.map(|(counter, body)| {
            let mut out = Box::new([0u8; BLOCK]);
            out.copy_from_slice(body);
            (counter, out)
        }))
    }

    /// Opens the slot `raw` (read from the file) as block `block` in place: its counter and
    /// plaintext, `None` when never written, an error when it does not authenticate (of
    /// kind `Interrupted` when torn by a crash; see the module's notes).
    fn open_slot<'r>(&self, raw: &'r mut [u8], block: u64) -> io::Result<Option<(u64, &'r [u8])>> {
        if raw.iter().all(|&b| b == 0) {
            return Ok(None);
        }
        let last = u64::from_le_bytes(raw[SLOT - COUNTER..].try_into().expect("8 bytes"));
        let (nonce, rest) = raw.split_at_mut(NONCE);
        let (counter, rest) = rest.split_at_mut(COUNTER);
        let (body, rest) = rest.split_at_mut(BLOCK);
        let tag = &rest[..TAG];
        let counter = u64::from_le_bytes(counter.try_into().expect("8 bytes"));
        let aad = associated(block, counter);
        if self
            .cipher
            .decrypt_in_place_detached(Nonce::from_slice(nonce), &aad, body, Tag::from_slice(tag))
            .is_err()
        {
            if counter.max(last) > self.opened_at {
                return Err(io::Error::new(io::ErrorKind::Interrupted, "torn"));
            }
            return Err(invalid(format!(
                "block {block} of the store does not authenticate: the file was damaged or changed"
            )));
        }
        Ok(Some((counter, body)))
    }

    /// Reads the whole blocks `first..` (`first >= 1`) into `out` (a multiple of [`BLOCK`]
    /// bytes): their slots are consecutive, so one read of the inner backend fetches them,
    /// and each opens in place and is copied once.
    fn read_run(&self, first: u64, out: &mut [u8]) -> io::Result<()> {
        let blocks = out.len() / BLOCK;
        if first + 1 + blocks as u64 > self.slots()? {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "read past the end of the store",
            ));
        }
        let mut raw = vec![0u8; blocks * SLOT];
        self.inner.read(Self::slot_offset(first + 1), &mut raw)?;
        for (i, (slot, plain)) in raw
            .chunks_exact_mut(SLOT)
            .zip(out.chunks_exact_mut(BLOCK))
            .enumerate()
        {
            match self.open_slot(slot, first + i as u64) {
                Ok(Some((_, body))) => plain.copy_from_slice(body),
                Ok(None) => plain.fill(0),
                // Torn by a crash before its commit's header: garbage for redb's checksums.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => plain.fill(0),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn seal(&self, slot: u64, block: u64, counter: u64, plain: &[u8]) -> io::Result<()> {
        let mut raw = vec![0u8; SLOT];
        self.seal_into(&mut raw, block, counter, plain)?;
        self.inner.write(Self::slot_offset(slot), &raw)
    }

    /// Seals `plain` (one block) as block `block` into the slot-sized `raw`.
    fn seal_into(&self, raw: &mut [u8], block: u64, counter: u64, plain: &[u8]) -> io::Result<()> {
        let mut nonce = [0u8; NONCE];
        rand::rng().fill_bytes(&mut nonce);
        raw[..NONCE].copy_from_slice(&nonce);
        raw[NONCE..NONCE + COUNTER].copy_from_slice(&counter.to_le_bytes());
        let body = &mut raw[NONCE + COUNTER..NONCE + COUNTER + BLOCK];
        body.copy_from_slice(plain);
        let tag = self
            .cipher
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), &associated(block, counter), body)
            .map_err(|_| invalid("sealing a block failed"))?;
        raw[NONCE + COUNTER + BLOCK..NONCE + COUNTER + BLOCK + TAG].copy_from_slice(&tag);
        raw[SLOT - COUNTER..].copy_from_slice(&counter.to_le_bytes());
        Ok(())
    }

    /// Block 0's current copy: the one of the two that authenticates with the higher
    /// counter (a torn copy does not authenticate and is passed over).
    fn find_head(&self) -> io::Result<Head> {
        let mut best = Head::default();
        let slots = self.slots()?;
        for slot in 0..2u64.min(slots) {
            if let Ok(Some((counter, _))) = self.unseal(slot, 0)
                && counter >= best.counter
            {
                best = Head {
                    slot,
                    counter,
                    durable: slot,
                };
            }
        }
        Ok(best)
    }

    /// Plaintext of `block`: zeros where never written, and where torn by a crash (see the
    /// module's notes).
    fn read_block(&self, block: u64, head: Head) -> io::Result<Box<[u8; BLOCK]>> {
        let slot = if block == 0 { head.slot } else { block + 1 };
        if slot >= self.slots()? {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "read past the end of the store",
            ));
        }
        match self.unseal(slot, block) {
            Ok(Some((_, plain))) => Ok(plain),
            Ok(None) => Ok(Box::new([0u8; BLOCK])),
            // Torn by a crash before its commit's header: garbage for redb's checksums.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(Box::new([0u8; BLOCK])),
            Err(e) => Err(e),
        }
    }

    fn write_head(&self, plain: &[u8; BLOCK], head: &mut Head) -> io::Result<()> {
        // The copy the last sync left is kept; the other one takes every write until the
        // next sync (a torn one then falls back to the durable copy).
        let target = if head.slot == head.durable {
            1 - head.durable
        } else {
            head.slot
        };
        let counter = head.counter + 1;
        self.seal(target, 0, counter, plain)?;
        head.slot = target;
        head.counter = counter;
        Ok(())
    }

    /// Seals the whole blocks `data` (a multiple of [`BLOCK`] bytes) from block `first >= 1`
    /// on: their slots are consecutive, so they go to the inner backend in one write.
    fn write_run(&self, first: u64, data: &[u8], head: &Head) -> io::Result<()> {
        let blocks = data.len() / BLOCK;
        let mut raw = vec![0u8; blocks * SLOT];
        for (i, (plain, slot)) in data
            .chunks_exact(BLOCK)
            .zip(raw.chunks_exact_mut(SLOT))
            .enumerate()
        {
            self.seal_into(slot, first + i as u64, head.counter + 1, plain)?;
        }
        self.inner.write(Self::slot_offset(first + 1), &raw)
    }
}

/// Associated data of a block: its index and write counter.
fn associated(block: u64, counter: u64) -> [u8; 16] {
    let mut aad = [0u8; 16];
    aad[..8].copy_from_slice(&block.to_le_bytes());
    aad[8..].copy_from_slice(&counter.to_le_bytes());
    aad
}

impl<B: StorageBackend> StorageBackend for EncryptedBackend<B> {
    fn len(&self) -> io::Result<u64> {
        // Logical blocks: every slot but block 0's second copy.
        Ok(self.slots()?.saturating_sub(1) * BLOCK as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let (head, plain0) = {
            let state = self.head.lock().unwrap_or_else(|p| p.into_inner());
            let plain0 = (offset < BLOCK as u64)
                .then(|| state.plain.clone())
                .flatten();
            (state.head, plain0)
        };
        let mut done = 0usize;
        while done < out.len() {
            let at = offset + done as u64;
            let block = at / BLOCK as u64;
            let within = (at % BLOCK as u64) as usize;
            let take = (BLOCK - within).min(out.len() - done);
            if block > 0 && within == 0 && take == BLOCK {
                // Whole blocks (redb reads whole pages): straight into `out`.
                let whole = (out.len() - done) / BLOCK * BLOCK;
                self.read_run(block, &mut out[done..done + whole])?;
                done += whole;
                continue;
            }
            let plain = match (block, &plain0) {
                (0, Some(p)) => p.clone(),
                _ => self.read_block(block, head)?,
            };
            out[done..done + take].copy_from_slice(&plain[within..within + take]);
            done += take;
        }
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        if !len.is_multiple_of(BLOCK as u64) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "an encrypted store grows by whole {BLOCK}-byte blocks (asked for {len} bytes)"
                ),
            ));
        }
        let blocks = len / BLOCK as u64;
        // Block 0 always keeps both copies.
        let slots = if blocks == 0 { 0 } else { blocks + 1 };
        self.inner.set_len(Self::slot_offset(slots))?;
        self.slots
            .store(slots, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut state = self.head.lock().unwrap_or_else(|p| p.into_inner());
        self.inner.sync_data()?;
        state.head.durable = state.head.slot;
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut state = self.head.lock().unwrap_or_else(|p| p.into_inner());
        let state = &mut *state;
        let mut done = 0usize;
        while done < data.len() {
            let at = offset + done as u64;
            let block = at / BLOCK as u64;
            let within = (at % BLOCK as u64) as usize;
            let take = (BLOCK - within).min(data.len() - done);
            if block == 0 {
                // The header block: patched (redb rewrites its first bytes at each commit)
                // from the plaintext kept since it was last read or written.
                let mut plain = match state.plain.take() {
                    Some(plain) => plain,
                    None if take == BLOCK => Box::new([0u8; BLOCK]),
                    None => self.read_block(0, state.head)?,
                };
                plain[within..within + take].copy_from_slice(&data[done..done + take]);
                self.write_head(&plain, &mut state.head)?;
                state.plain = Some(plain);
                done += take;
            } else if within == 0 && take == BLOCK {
                // A run of whole blocks, sealed and written at once.
                let whole = (data.len() - done) / BLOCK * BLOCK;
                self.write_run(block, &data[done..done + whole], &state.head)?;
                done += whole;
            } else {
                let mut plain = self.read_block(block, state.head)?;
                plain[within..within + take].copy_from_slice(&data[done..done + take]);
                self.write_run(block, &plain[..], &state.head)?;
                done += take;
            }
        }
        Ok(())
    }

    fn close(&self) -> io::Result<()> {
        self.inner.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.inner.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.query_lock_range(start, end)
    }
}
