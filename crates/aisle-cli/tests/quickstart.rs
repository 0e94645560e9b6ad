//! Regression, issue 13: `aisle quickstart` clears only a data directory it made itself.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{aisle, dir_arg, stderr, stdout};

const MARKER: &str = ".aisle-quickstart";

/// Every file under `dir` with its bytes.
fn contents(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let bytes = std::fs::read(&path).expect("read");
                out.insert(path, bytes);
            }
        }
    }
    out
}

#[test]
fn quickstart_leaves_a_store_made_by_import_untouched() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = tmp.path().join("store");
    let data = dir_arg(&store);
    let csv = tmp.path().join("events.csv");
    std::fs::write(
        &csv,
        "user,item,event,ts\nu1,i1,view,1000\nu2,i1,purchase,2000\n",
    )
    .expect("write");
    let out = aisle(&[
        "import",
        "--data-dir",
        &data,
        "--format",
        "csv",
        &dir_arg(&csv),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let before = contents(&store);
    assert!(!before.is_empty(), "import wrote a store");

    let out = aisle(&["quickstart", "--no-serve", "--data-dir", &data]);
    assert!(
        !out.status.success(),
        "quickstart refuses: {}",
        stdout(&out)
    );
    let message = stderr(&out);
    assert!(message.contains(&data), "names the directory: {message}");
    assert!(
        message.contains("--data-dir") && message.contains("remove"),
        "says what to do: {message}"
    );
    assert!(
        contents(&store) == before,
        "the store's files are unchanged: {message}"
    );
    assert!(!store.join(MARKER).exists());

    let stats = aisle(&["stats", "--data-dir", &data, "--json"]);
    assert!(stats.status.success(), "{}", stderr(&stats));
    let stats: serde_json::Value = serde_json::from_slice(&stats.stdout).expect("JSON");
    assert_eq!(
        (stats["users"].as_u64(), stats["events"].as_u64()),
        (Some(2), Some(2))
    );

    // Any other file makes a directory someone else's too.
    let other = tmp.path().join("notes");
    std::fs::create_dir(&other).expect("mkdir");
    std::fs::write(other.join("todo.txt"), "keep me\n").expect("write");
    let out = aisle(&["quickstart", "--no-serve", "--data-dir", &dir_arg(&other)]);
    assert!(!out.status.success());
    assert_eq!(
        std::fs::read_to_string(other.join("todo.txt")).expect("read"),
        "keep me\n"
    );
}

#[test]
fn quickstart_marks_a_fresh_directory_before_writing_to_it() {
    // A sample that is not there fails the import quickly, after the directory was made.
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("qs");
    let empty_sample = tmp.path().join("no-sample");
    std::fs::create_dir(&empty_sample).expect("mkdir");
    let out = aisle(&[
        "quickstart",
        "--no-serve",
        "--data-dir",
        &dir_arg(&dir),
        "--sample",
        &dir_arg(&empty_sample),
    ]);
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(
        dir.join(MARKER).is_file(),
        "marked, so a rerun may clear it: {}",
        stderr(&out)
    );
}

/// One full run (about 20 s on 2 cores); cli.rs runs quickstart twice on one directory.
#[test]
fn quickstart_clears_a_directory_it_made() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("qs");
    std::fs::create_dir_all(dir.join("eval")).expect("mkdir");
    std::fs::write(dir.join(MARKER), "").expect("write");
    // What an earlier run may leave: a store (here one that cannot be opened), other files.
    std::fs::write(dir.join("aisle.redb"), "not a store").expect("write");
    std::fs::write(dir.join("eval").join("old.json"), "{}").expect("write");
    let out = aisle(&["quickstart", "--no-serve", "--data-dir", &dir_arg(&dir)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("300,000 events added, 0 already stored"),
        "{}",
        stdout(&out)
    );
    assert!(
        !dir.join("eval").join("old.json").exists(),
        "old files are gone"
    );
    assert!(dir.join("eval").join("leaderboard.json").is_file());
    assert!(dir.join(MARKER).is_file(), "the directory is still marked");
}
