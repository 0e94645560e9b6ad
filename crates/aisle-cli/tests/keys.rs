//! Encryption at rest from the command line: an import under a master key leaves no
//! readable product title on disk, every command needs the key, and `aisle keys rotate`
//! moves the data directory to a new key (audited).

use std::path::Path;
use std::process::{Command, Output};

const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const NEW_KEY: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";
/// The first product of the bundled sample's catalogue.
const TITLE: &str = "Chocolate Sandwich Cookies";

fn aisle(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_aisle"));
    c.args(args)
        .env_remove("AISLE_MASTER_KEY")
        .env_remove("AISLE_MASTER_KEY_FILE")
        .env_remove("AISLE_PASSPHRASE");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run aisle")
}

/// Whether any file under `dir`, at any depth, holds `text` (case-insensitively).
fn holds(dir: &Path, text: &str) -> bool {
    let needle = text.to_lowercase();
    fs_err::read_dir(dir).expect("dir").any(|e| {
        let p = e.expect("entry").path();
        if p.is_dir() {
            return holds(&p, text);
        }
        let bytes = fs_err::read(&p).expect("read").to_ascii_lowercase();
        bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
    })
}

#[test]
fn an_encrypted_data_directory_needs_its_key_and_rotates_to_a_new_one() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let sample = aisle_testkit::bundled_sample();
    let sample = sample.to_str().expect("path");
    let plain = tmp.path().join("plain");
    let sealed = tmp.path().join("sealed");
    let (p, s) = (
        plain.to_str().expect("path"),
        sealed.to_str().expect("path"),
    );
    let out = aisle(
        &["import", "--format", "instacart", "--data-dir", p, sample],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        holds(&plain, TITLE),
        "the check finds the title in a plain store"
    );
    let out = aisle(
        &["import", "--format", "instacart", "--data-dir", s, sample],
        &[("AISLE_MASTER_KEY", KEY)],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The search index and a model trained there are sealed too.
    for args in [
        &["index", "--no-encoder", "--data-dir", s][..],
        &["train", "--model", "tfidf", "--data-dir", s][..],
    ] {
        let out = aisle(args, &[("AISLE_MASTER_KEY", KEY)]);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for args in [
        &["index", "--no-encoder", "--data-dir", p][..],
        &["train", "--model", "tfidf", "--data-dir", p][..],
    ] {
        assert!(aisle(args, &[]).status.success(), "{args:?}");
    }
    // Model files are sealed in the encrypted directory, plain in the other; the sealed one
    // serves with the key and is refused without it.
    let model_file = |dir: &Path| fs_err::read(dir.join("models/tfidf.model")).expect("model");
    assert!(model_file(&plain).starts_with(b"AISLEMDL"));
    assert!(
        aisle_seal::is_sealed(&model_file(&sealed)),
        "the model file is not sealed"
    );
    let similar = [
        "recommend",
        "--model",
        "tfidf",
        "--similar",
        "1",
        "--data-dir",
        s,
    ];
    let served = aisle(&similar, &[("AISLE_MASTER_KEY", KEY)]);
    assert!(
        served.status.success(),
        "{}",
        String::from_utf8_lossy(&served.stderr)
    );
    let refused = aisle(&similar, &[]);
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("is encrypted"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    // A plain index's files are readable (its meta.json names its settings and fields); a
    // sealed one's are not, nor is a title or a word of one anywhere in the directory.
    assert!(
        holds(&plain.join("search"), "docstore_compression"),
        "the check reads a plain index"
    );
    assert!(
        !holds(&sealed, "docstore_compression"),
        "the index's metadata is readable"
    );
    assert!(
        !holds(&sealed, TITLE),
        "a product title is readable in the encrypted data directory"
    );
    assert!(
        !holds(&sealed, "sandwich"),
        "a word of a title is readable in the encrypted data directory"
    );
    let found = aisle(
        &[
            "search",
            "--no-encoder",
            "--data-dir",
            s,
            "chocolate sandwich cookies",
        ],
        &[("AISLE_MASTER_KEY", KEY)],
    );
    assert!(
        found.status.success(),
        "{}",
        String::from_utf8_lossy(&found.stderr)
    );
    assert!(
        String::from_utf8_lossy(&found.stdout).contains(TITLE),
        "{}",
        String::from_utf8_lossy(&found.stdout)
    );

    let stats = aisle(
        &["stats", "--json", "--data-dir", s],
        &[("AISLE_MASTER_KEY", KEY)],
    );
    assert!(
        stats.status.success(),
        "{}",
        String::from_utf8_lossy(&stats.stderr)
    );
    assert!(String::from_utf8_lossy(&stats.stdout).contains("49688"));
    let status = aisle(
        &["keys", "status", "--data-dir", s],
        &[("AISLE_MASTER_KEY", KEY)],
    );
    let said = String::from_utf8_lossy(&status.stdout);
    assert!(
        said.contains("the master key in this environment opens it")
            && said.contains("per-user keys"),
        "{said}"
    );
    // Every shopper of the sample has a key (made in windows of 256 ids).
    let held: usize = said
        .lines()
        .find_map(|l| l.split(": ").nth(1)?.split(' ').next()?.parse().ok())
        .expect("a count of keys");
    assert!(held >= 593, "{said}");
    let refused = aisle(&["stats", "--data-dir", s], &[]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("is encrypted"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    let rotated = aisle(
        &["keys", "rotate", "--data-dir", s],
        &[("AISLE_MASTER_KEY", KEY), ("AISLE_NEW_MASTER_KEY", NEW_KEY)],
    );
    assert!(
        rotated.status.success(),
        "{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    assert!(
        !aisle(&["stats", "--data-dir", s], &[("AISLE_MASTER_KEY", KEY)])
            .status
            .success(),
        "the old key still opens it"
    );
    assert!(
        aisle(
            &["stats", "--data-dir", s],
            &[("AISLE_MASTER_KEY", NEW_KEY)]
        )
        .status
        .success()
    );
    let verified = aisle(&["audit", "verify", "--data-dir", s], &[]);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    assert!(String::from_utf8_lossy(&verified.stdout).contains("intact, 1 records"));
}
