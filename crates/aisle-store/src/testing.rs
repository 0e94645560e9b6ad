//! Test support, behind the `testing` feature: [`Knobs`] for
//! [`RedbStore::open_with_backend`](crate::RedbStore::open_with_backend), and [`PowerCutDisk`],
//! a fake disk for power-cut tests.
//!
//! # The disk model
//!
//! A real disk (and the OS page cache above it) keeps written data in a volatile cache until it
//! is synced. [`PowerCutDisk`] models exactly that and nothing more:
//!
//! - `write` and `set_len` change the *cache*, which every later read sees, and are logged as
//!   unsynced;
//! - `sync_data` makes everything written so far *durable*;
//! - a power cut, armed with [`PowerCutDisk::cut_after`] to fall on a chosen backend call,
//!   makes that call and every later one fail with an I/O error, so the store above sees the
//!   crash as it happens.
//!
//! What survives is either [`PowerCutDisk::durable_image`] (every unsynced change lost) or a
//! [`PowerCutDisk::torn_image`]: the durable image plus a chosen subset of the unsynced sectors
//! of 4 KiB, in any combination, as a disk that reorders its cached writes may leave it. A
//! sector is the unit of atomicity: it lands whole or not at all. A fresh disk built from the
//! image with [`PowerCutDisk::from_image`] is the machine after the reboot.
//!
//! A SIGKILL test cannot see any of this, since the OS page cache outlives the process.

use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::redb_store::{FLUSH_EVENTS, Tuning};

#[cfg(feature = "postgres")]
pub use crate::postgres::FreshDatabase;

/// What [`RedbStore::path`](crate::RedbStore::path) returns for a store opened over a backend.
pub const BACKEND_PATH: &str = "<storage backend>";

/// The unit a torn image keeps or loses: writes are split at multiples of this offset.
pub const SECTOR: u64 = 4096;

/// How a store opened by [`RedbStore::open_with_backend`](crate::RedbStore::open_with_backend)
/// writes. [`Knobs::default`] is what [`RedbStore::open`](crate::RedbStore::open) uses.
#[derive(Clone, Copy, Debug)]
pub struct Knobs {
    /// Sync every writer commit before it returns. Default `true`. `false` commits with redb's
    /// `Durability::None`, so `commit` acknowledges data that is still only in memory: the bug
    /// a power-cut test exists to catch, kept here so that the test can show it catches it.
    pub sync_commits: bool,
    /// Staged events a writer collects before it writes them into its open transaction.
    /// Default 262,144, the store's own threshold; smaller values let a test reach that flush
    /// with few events. Zero acts as one.
    pub flush_events: usize,
    /// Seal the disk with this data key ([`crate::encrypted::EncryptedBackend`]). Default none.
    pub encryption_key: Option<[u8; 32]>,
}

impl Default for Knobs {
    fn default() -> Self {
        Self {
            sync_commits: true,
            flush_events: FLUSH_EVENTS,
            encryption_key: None,
        }
    }
}

impl Knobs {
    pub(crate) fn tuning(self) -> Tuning {
        let defaults = Tuning::default();
        Tuning {
            durability: if self.sync_commits {
                defaults.durability
            } else {
                redb::Durability::None
            },
            flush_events: self.flush_events.max(1),
        }
    }
}

/// A change not yet synced.
enum Unsynced {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
}

#[derive(Default)]
struct DiskState {
    /// What reads see: the durable image with every unsynced change applied.
    cache: Vec<u8>,
    /// What a power cut leaves.
    durable: Vec<u8>,
    /// Changes since the last sync, in order.
    unsynced: Vec<Unsynced>,
    /// `write`, `set_len` and `sync_data` calls so far, failed ones included.
    calls: u64,
    /// Calls that succeed before the power is cut.
    cut_after: Option<u64>,
    cut: bool,
}

impl DiskState {
    /// Counts a changing call; false when the power is (now) off.
    fn admit(&mut self) -> bool {
        self.calls += 1;
        if self.cut_after.is_some_and(|after| self.calls > after) {
            self.cut = true;
        }
        !self.cut
    }
}

/// A disk with a volatile write cache and a power switch; see the [module docs](self). Clones
/// share one disk.
#[derive(Clone, Default)]
pub struct PowerCutDisk {
    state: Arc<Mutex<DiskState>>,
}

impl PowerCutDisk {
    /// An empty disk, powered on, with no cut armed.
    pub fn new() -> Self {
        Self::default()
    }

    /// A disk whose durable contents are `image`: the machine after a reboot.
    pub fn from_image(image: Vec<u8>) -> Self {
        let state = DiskState {
            cache: image.clone(),
            durable: image,
            ..DiskState::default()
        };
        Self {
            state: Arc::new(Mutex::new(state)),
        }
    }

    /// A storage backend on this disk, for
    /// [`RedbStore::open_with_backend`](crate::RedbStore::open_with_backend).
    pub fn backend(&self) -> impl redb::StorageBackend {
        PowerCutBackend { disk: self.clone() }
    }

    /// Arms the cut: the first `calls` changing calls (`write`, `set_len`, `sync_data`) since
    /// the disk was created succeed, and the power goes off at the one after.
    pub fn cut_after(&self, calls: u64) {
        self.lock().cut_after = Some(calls);
    }

    /// Cuts the power now.
    pub fn cut_now(&self) {
        self.lock().cut = true;
    }

    /// Whether the power is off.
    pub fn is_cut(&self) -> bool {
        self.lock().cut
    }

    /// Changing calls so far (the call the power went off at included).
    pub fn calls(&self) -> u64 {
        self.lock().calls
    }

    /// What a power cut now leaves: the state at the last sync.
    pub fn durable_image(&self) -> Vec<u8> {
        self.lock().durable.clone()
    }

    /// What a power cut now leaves on a disk that had already written some of its cache: the
    /// durable image with the unsynced changes replayed in order, each sector of each write (and
    /// each length change) kept where `keep` returns true.
    pub fn torn_image(&self, keep: &mut dyn FnMut() -> bool) -> Vec<u8> {
        let state = self.lock();
        let mut image = state.durable.clone();
        for change in &state.unsynced {
            match change {
                Unsynced::SetLen(len) => {
                    if keep() {
                        image.resize(to_usize(*len), 0);
                    }
                }
                Unsynced::Write { offset, data } => {
                    let mut start = *offset;
                    let end = offset + data.len() as u64;
                    while start < end {
                        let stop = ((start / SECTOR + 1) * SECTOR).min(end);
                        if keep() {
                            let piece = &data[to_usize(start - offset)..to_usize(stop - offset)];
                            write_at(&mut image, start, piece);
                        }
                        start = stop;
                    }
                }
            }
        }
        image
    }

    fn lock(&self) -> MutexGuard<'_, DiskState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for PowerCutDisk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("PowerCutDisk")
            .field("cache_len", &state.cache.len())
            .field("durable_len", &state.durable.len())
            .field("unsynced", &state.unsynced.len())
            .field("calls", &state.calls)
            .field("cut_after", &state.cut_after)
            .field("cut", &state.cut)
            .finish()
    }
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).expect("a test disk fits in memory")
}

/// Writes like a file does: past the end grows it, zero-filled.
fn write_at(image: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let start = to_usize(offset);
    let end = start + data.len();
    if image.len() < end {
        image.resize(end, 0);
    }
    image[start..end].copy_from_slice(data);
}

fn power_off() -> io::Error {
    io::Error::other("power cut")
}

#[derive(Debug)]
struct PowerCutBackend {
    disk: PowerCutDisk,
}

impl redb::StorageBackend for PowerCutBackend {
    fn len(&self) -> io::Result<u64> {
        let state = self.disk.lock();
        if state.cut {
            return Err(power_off());
        }
        Ok(state.cache.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let state = self.disk.lock();
        if state.cut {
            return Err(power_off());
        }
        let start = usize::try_from(offset).map_err(|_| past_end())?;
        let source = state
            .cache
            .get(start..start + out.len())
            .ok_or_else(past_end)?;
        out.copy_from_slice(source);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut state = self.disk.lock();
        if !state.admit() {
            return Err(power_off());
        }
        state.cache.resize(to_usize(len), 0);
        state.unsynced.push(Unsynced::SetLen(len));
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut state = self.disk.lock();
        if !state.admit() {
            return Err(power_off());
        }
        let DiskState {
            durable, unsynced, ..
        } = &mut *state;
        for change in unsynced.drain(..) {
            match change {
                Unsynced::SetLen(len) => durable.resize(to_usize(len), 0),
                Unsynced::Write { offset, data } => write_at(durable, offset, &data),
            }
        }
        debug_assert!(
            state.durable == state.cache,
            "a sync leaves nothing unsynced"
        );
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut state = self.disk.lock();
        if !state.admit() {
            return Err(power_off());
        }
        write_at(&mut state.cache, offset, data);
        state.unsynced.push(Unsynced::Write {
            offset,
            data: data.to_vec(),
        });
        Ok(())
    }
}

fn past_end() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "read past the end of the disk",
    )
}

#[cfg(test)]
mod tests {
    use redb::StorageBackend;

    use super::*;

    #[test]
    fn a_cut_keeps_what_was_synced_and_fails_every_later_call() {
        let disk = PowerCutDisk::new();
        let backend = disk.backend();
        backend.set_len(8).expect("set_len");
        backend.write(0, b"synced..").expect("write");
        backend.sync_data().expect("sync");
        backend.write(0, b"lost").expect("write");
        disk.cut_after(disk.calls() + 1);
        backend
            .write(4, b"lost")
            .expect("the armed call still succeeds");
        let mut out = [0; 8];
        backend.read(0, &mut out).expect("read");
        assert_eq!(&out, b"lostlost", "reads see the cache");
        assert!(backend.sync_data().is_err(), "the power is off");
        assert!(disk.is_cut());
        assert!(backend.read(0, &mut out).is_err(), "reads fail too");
        assert_eq!(disk.durable_image(), b"synced..");
        assert_eq!(disk.torn_image(&mut || true), b"lostlost");
        let rebooted = PowerCutDisk::from_image(disk.durable_image());
        rebooted.backend().read(0, &mut out).expect("read");
        assert_eq!(&out, b"synced..");
    }

    #[test]
    fn a_torn_image_keeps_whole_sectors() {
        let disk = PowerCutDisk::new();
        let backend = disk.backend();
        let data = vec![7u8; 3 * SECTOR as usize];
        backend.write(SECTOR / 2, &data).expect("write");
        let mut n = 0;
        let image = disk.torn_image(&mut || {
            n += 1;
            n == 2
        });
        // Pieces: [S/2, S), [S, 2S), [2S, 3S), [3S, 3.5S); only the second is kept.
        assert_eq!(image.len(), 2 * SECTOR as usize);
        assert!(image[..SECTOR as usize].iter().all(|&b| b == 0));
        assert!(image[SECTOR as usize..].iter().all(|&b| b == 7));
    }
}
