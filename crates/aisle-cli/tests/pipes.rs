//! A command-line tool ends quietly when the program reading its output goes away
//! (`aisle stats --json | head`): no panic, no backtrace (issue 13).

use std::process::{Command, Stdio};

#[test]
fn a_closed_stdout_ends_the_program_without_a_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    let imported = Command::new(env!("CARGO_BIN_EXE_aisle"))
        .args(["import", "--format", "instacart", "--data-dir"])
        .arg(&store)
        .arg(aisle_testkit::bundled_sample())
        .output()
        .expect("run aisle import");
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_aisle"))
        .args(["stats", "--json", "--data-dir"])
        .arg(&store)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run aisle stats");
    // The reader goes away before a byte is written: every write now fails.
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert!(
            output.status.success() || output.status.signal() == Some(13),
            "ended with {:?}: {stderr}",
            output.status
        );
    }
}
