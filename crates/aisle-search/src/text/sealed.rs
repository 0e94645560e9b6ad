//! The search index encrypted at rest: a tantivy `Directory` that seals every file with
//! AES-256-GCM-SIV (fresh random nonce, the file's name as associated data, so files cannot
//! be swapped) over the on-disk directory, and opens a file whole into memory to read it.
//!
//! Tantivy's files are write-once (a segment file is written, terminated, then only read),
//! so sealing whole files needs no block scheme like the store's. The cost is that a read
//! file lives decrypted in memory instead of being mapped: fine for a shop's catalogue
//! (the bundled 49,688 products index to a few tens of MB).

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tantivy::directory::error::{DeleteError, LockError, OpenReadError, OpenWriteError};
use tantivy::directory::{
    AntiCallToken, Directory, DirectoryLock, FileHandle, FileSlice, Lock, MmapDirectory,
    TerminatingWrite, WatchCallback, WatchHandle, WritePtr,
};

/// Seals and opens whole index files, the file's path in the index as associated data.
#[derive(Clone)]
struct Sealer(Arc<aisle_seal::Sealer>);

impl Sealer {
    fn seal(&self, path: &Path, plain: &[u8]) -> Vec<u8> {
        self.0.seal(path.to_string_lossy().as_bytes(), plain)
    }

    fn open(&self, path: &Path, sealed: Vec<u8>) -> io::Result<Vec<u8>> {
        self.0
            .open(path.to_string_lossy().as_bytes(), sealed)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{}: the index file does not authenticate (changed, or sealed under another key): rebuild the index with aisle index",
                        path.display()
                    ),
                )
            })
    }
}

/// The encrypting directory over a directory on disk.
#[derive(Clone)]
pub struct SealedDirectory {
    inner: MmapDirectory,
    sealer: Sealer,
}

impl std::fmt::Debug for SealedDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealedDirectory")
    }
}

impl SealedDirectory {
    /// The directory at `path`, sealed under the 32-byte `key`.
    pub fn open(path: &Path, key: &[u8; 32]) -> tantivy::Result<SealedDirectory> {
        let inner = MmapDirectory::open(path).map_err(tantivy::TantivyError::from)?;
        Ok(SealedDirectory {
            inner,
            sealer: Sealer(Arc::new(aisle_seal::Sealer::new(key))),
        })
    }

    fn read_whole(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        let slice = self.inner.open_read(path)?;
        let bytes = slice
            .read_bytes()
            .map_err(|e| OpenReadError::wrap_io_error(e, path.to_path_buf()))?;
        self.sealer
            .open(path, bytes.as_slice().to_vec())
            .map_err(|e| OpenReadError::wrap_io_error(e, path.to_path_buf()))
    }
}

/// Collects a file's bytes and seals them into the directory when tantivy terminates it.
struct SealingWriter {
    dir: SealedDirectory,
    path: PathBuf,
    buffer: Vec<u8>,
}

impl Write for SealingWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl TerminatingWrite for SealingWriter {
    fn terminate_ref(&mut self, _: AntiCallToken) -> io::Result<()> {
        let sealed = self.dir.sealer.seal(&self.path, &self.buffer);
        self.dir.inner.atomic_write(&self.path, &sealed)
    }
}

impl Directory for SealedDirectory {
    fn get_file_handle(&self, path: &Path) -> Result<Arc<dyn FileHandle>, OpenReadError> {
        Ok(Arc::new(FileSlice::from(self.read_whole(path)?)))
    }

    fn delete(&self, path: &Path) -> Result<(), DeleteError> {
        self.inner.delete(path)
    }

    fn exists(&self, path: &Path) -> Result<bool, OpenReadError> {
        self.inner.exists(path)
    }

    fn open_write(&self, path: &Path) -> Result<WritePtr, OpenWriteError> {
        let exists = self
            .inner
            .exists(path)
            .map_err(|e| OpenWriteError::IoError {
                io_error: Arc::new(io::Error::other(e.to_string())),
                filepath: path.to_path_buf(),
            })?;
        if exists {
            return Err(OpenWriteError::FileAlreadyExists(path.to_path_buf()));
        }
        Ok(io::BufWriter::new(Box::new(SealingWriter {
            dir: self.clone(),
            path: path.to_path_buf(),
            buffer: Vec::new(),
        })))
    }

    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        let sealed = self.inner.atomic_read(path)?;
        self.sealer
            .open(path, sealed)
            .map_err(|e| OpenReadError::wrap_io_error(e, path.to_path_buf()))
    }

    fn atomic_write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        self.inner.atomic_write(path, &self.sealer.seal(path, data))
    }

    fn sync_directory(&self) -> io::Result<()> {
        self.inner.sync_directory()
    }

    fn acquire_lock(&self, lock: &Lock) -> Result<DirectoryLock, LockError> {
        self.inner.acquire_lock(lock)
    }

    fn watch(&self, watch_callback: WatchCallback) -> tantivy::Result<WatchHandle> {
        self.inner.watch(watch_callback)
    }
}
