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

fn holds(dir: &Path, text: &str) -> bool {
    fs_err::read_dir(dir).expect("dir").any(|e| {
        let p = e.expect("entry").path();
        p.is_file()
            && fs_err::read(&p)
                .expect("read")
                .windows(text.len())
                .any(|w| w == text.as_bytes())
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
    assert!(
        !holds(&sealed, TITLE),
        "a product title is readable in the encrypted data directory"
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
