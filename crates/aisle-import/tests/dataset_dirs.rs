//! Regression, issue 13: every dataset adapter takes the dataset's directory or its main file,
//! as `aisle import --help` says, and a directory without the file is an error naming the
//! directory and the file names looked for.

use std::path::{Path, PathBuf};

use aisle_import::{Adapter, ImportOptions, ImportReport, Source, import};
use aisle_store::{MemStore, ReadStore, StoreCounts};
use aisle_testkit::{bundled_sample, shared_dataset};

fn try_import(adapter: Adapter, path: &Path) -> (MemStore, aisle_import::Result<ImportReport>) {
    let store = MemStore::new();
    let options = ImportOptions {
        strict: true,
        ..ImportOptions::default()
    };
    let report = import(
        &store,
        &Source::Adapter(adapter),
        &[path.to_path_buf()],
        &options,
    );
    (store, report)
}

/// Imports `path` strictly; returns the store's counts and the files the import read.
fn counts(adapter: Adapter, path: &Path) -> (StoreCounts, Vec<PathBuf>) {
    let (store, report) = try_import(adapter, path);
    let report = report.unwrap_or_else(|e| panic!("{} imports: {e}", path.display()));
    (store.counts().expect("counts"), report.files)
}

/// Imports the directory and the file and checks both give `expected` (events, users, items).
fn dir_and_file_agree(adapter: Adapter, dir: &Path, file: &Path, expected: (usize, usize, usize)) {
    for path in [dir, file] {
        let (c, files) = counts(adapter, path);
        assert_eq!(
            (c.events, c.users, c.items),
            expected,
            "{adapter:?} from {}",
            path.display()
        );
        assert!(
            files.iter().any(|f| f == file),
            "{adapter:?} from {} read {files:?}",
            path.display()
        );
    }
}

/// Imports `dir` and checks it fails, naming the directory and every one of `looked_for`,
/// and that nothing was written.
fn refuses(adapter: Adapter, dir: &Path, looked_for: &[&str]) -> String {
    let (store, report) = try_import(adapter, dir);
    let message = report
        .expect_err("a directory without the dataset's file is refused")
        .to_string();
    assert!(
        message.contains(&dir.display().to_string()),
        "{adapter:?}: names the directory: {message}"
    );
    for name in looked_for {
        assert!(
            message.contains(name),
            "{adapter:?}: names {name}: {message}"
        );
    }
    assert!(
        !message.contains("Is a directory"),
        "{adapter:?}: {message}"
    );
    let c = store.counts().expect("counts");
    assert_eq!((c.events, c.users, c.items), (0, 0, 0), "{adapter:?}");
    message
}

/// A scratch directory holding copies of `files` from `from`.
fn copies(from: &Path, files: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for f in files {
        std::fs::copy(from.join(f), dir.path().join(f)).expect("copy");
    }
    dir
}

#[test]
fn instacart_directory_or_order_lines_file() {
    let dir = bundled_sample();
    dir_and_file_agree(
        Adapter::Instacart,
        &dir,
        &dir.join("orders_products_sample.csv.gz"),
        (300_000, 593, 49_688),
    );
}

#[test]
fn cdnow_directory_is_its_master_file() {
    let Some(dir) = shared_dataset("cdnow") else {
        return;
    };
    dir_and_file_agree(
        Adapter::Cdnow,
        &dir,
        &dir.join("CDNOW_master.txt"),
        (69_659, 23_570, 0),
    );
    // A directory with the 1/10 sample only stands for the sample.
    let sample_only = copies(&dir, &["CDNOW_sample.txt"]);
    dir_and_file_agree(
        Adapter::Cdnow,
        sample_only.path(),
        &sample_only.path().join("CDNOW_sample.txt"),
        (6_919, 2_357, 0),
    );
}

#[test]
fn groceries_directory_or_file() {
    let Some(dir) = shared_dataset("groceries") else {
        return;
    };
    dir_and_file_agree(
        Adapter::Groceries,
        &dir,
        &dir.join("groceries.csv"),
        (43_367, 9_835, 169),
    );
}

#[test]
fn s3rec_directory_of_one_dataset_or_its_file() {
    let Some(shared) = shared_dataset("amazon-seq-s3rec") else {
        return;
    };
    let dir = copies(&shared, &["Beauty.txt", "Beauty_item2attributes.json"]);
    dir_and_file_agree(
        Adapter::S3Rec,
        dir.path(),
        &dir.path().join("Beauty.txt"),
        (198_502, 22_363, 12_101),
    );
    // The attributes beside the file are read in both cases.
    let (store, report) = try_import(Adapter::S3Rec, dir.path());
    report.expect("imports");
    let item4 = store
        .item(store.item_id("4").expect("lookup").expect("item 4"))
        .expect("get")
        .expect("record");
    assert_eq!(
        item4.attributes.get("attributes").map(String::as_str),
        Some("1 2 3")
    );
}

#[test]
fn s3rec_directory_of_several_datasets_names_them() {
    let Some(dir) = shared_dataset("amazon-seq-s3rec") else {
        return;
    };
    let message = refuses(
        Adapter::S3Rec,
        &dir,
        &["Beauty.txt", "Sports_and_Outdoors.txt"],
    );
    assert!(message.contains("several"), "{message}");
}

#[test]
fn yoochoose_directory_is_train_full_and_test() {
    let Some(dir) = shared_dataset("yoochoose-100k") else {
        return;
    };
    let train = dir.join("yoochoose-clicks-100k_train_full.txt");
    let test = dir.join("yoochoose-clicks-100k_test.txt");
    let (c, files) = counts(Adapter::Yoochoose, &dir);
    // 70,278 + 13,568 clicks; the test day's sessions are not in train_full.
    assert_eq!((c.events, c.users), (83_846, 17_794 + 3_416));
    assert!(files.contains(&train) && files.contains(&test), "{files:?}");
    let (c, _) = counts(Adapter::Yoochoose, &train);
    assert_eq!((c.events, c.users, c.items), (70_278, 17_794, 2_933));
}

#[test]
fn movielens_directory_or_inter_file() {
    let Some(dir) = shared_dataset("movielens-100k") else {
        return;
    };
    dir_and_file_agree(
        Adapter::MovieLens,
        &dir,
        &dir.join("ml-100k.inter"),
        (100_000, 943, 1_682),
    );
}

#[test]
fn a_directory_without_the_dataset_file_is_refused_by_name() {
    let empty = tempfile::tempdir().expect("tempdir");
    // Something else is in it, which no adapter reads.
    std::fs::write(empty.path().join("README.md"), "not a dataset\n").expect("write");
    let dir = empty.path();
    refuses(
        Adapter::Cdnow,
        dir,
        &["CDNOW_master.txt", "CDNOW_sample.txt"],
    );
    refuses(Adapter::Groceries, dir, &["groceries.csv"]);
    refuses(
        Adapter::S3Rec,
        dir,
        &["_item2attributes.json", "Beauty.txt"],
    );
    refuses(Adapter::Yoochoose, dir, &["_train_full.txt", "_test.txt"]);
    refuses(Adapter::MovieLens, dir, &["*.inter"]);
    refuses(
        Adapter::Instacart,
        dir,
        &["orders_products_sample.csv.gz", "order_lines.csv"],
    );
}
