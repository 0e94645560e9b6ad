//! Item vectors on disk, so a restart does not re-embed the catalogue.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{Error, Result, VectorIndex};

/// Bumped when the file layout changes.
const FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
struct SavedVectors {
    format: u32,
    fingerprint: String,
    index: VectorIndex,
}

/// Writes the vectors and the fingerprint of what made them atomically
/// ([`aisle_core::fs::write_atomic`]: a crash leaves the old file or the new one, never half
/// of one), sealed under `key` in an encrypted data directory ([`aisle_seal`]).
pub fn save_vectors(
    path: &Path,
    fingerprint: &str,
    index: &VectorIndex,
    key: Option<&aisle_seal::Key>,
) -> Result<()> {
    let saved = SavedVectors {
        format: FORMAT,
        fingerprint: fingerprint.to_string(),
        index: index.clone(),
    };
    let bytes = postcard::to_allocvec(&saved).map_err(|e| Error::Corrupt {
        path: path.to_path_buf(),
        message: format!("cannot encode the vectors: {e}"),
    })?;
    aisle_core::fs::write_atomic(path, &aisle_seal::seal_file(path, &bytes, key))?;
    Ok(())
}

/// Reads saved vectors; `None` when there are none or they were made by another model or
/// with other settings (`fingerprint` differs), which means: embed again. A sealed file needs
/// its `key` (an error otherwise, as is one that does not authenticate).
pub fn load_vectors(
    path: &Path,
    fingerprint: &str,
    key: Option<&aisle_seal::Key>,
) -> Result<Option<VectorIndex>> {
    if !path.is_file() {
        return Ok(None);
    }
    let bytes = aisle_seal::open_file(path, fs_err::read(path)?, key)?;
    let saved: SavedVectors = match postcard::from_bytes(&bytes) {
        Ok(saved) => saved,
        Err(_) => return Ok(None),
    };
    Ok((saved.format == FORMAT && saved.fingerprint == fingerprint).then_some(saved.index))
}
