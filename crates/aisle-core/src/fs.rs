//! Durable file replacement, shared by every crate that writes a file readers must never see
//! half-written (model files, rankers, saved vectors, reports).
//!
//! This lives in `aisle-core`, the bottom of the workspace, because every crate that writes
//! files already depends on it; a separate crate for two functions would cost more than it
//! isolates. It uses only `std` and `fs-err` (so errors name the file), and so keeps core free
//! of anything internal.

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Replaces `path` with `bytes` atomically and durably: a crash or power cut leaves either
/// the old file or the new one, never a mix.
///
/// Writes a temporary file in the same directory (so the rename never crosses file
/// systems), fsyncs it, renames it over `path`, then fsyncs the directory so the new name
/// itself survives a power cut. Creates the parent directory when it is missing. On any
/// error the temporary file is removed and `path` is untouched.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = parent_dir(path);
    fs_err::create_dir_all(&dir)?;
    let tmp = temp_path(path)?;
    let written = (|| {
        let mut file = fs_err::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs_err::rename(&tmp, path)
    })();
    if let Err(e) = written {
        // Best effort: the write already failed, and that error is the one to report.
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(&dir)
}

/// Makes the entries of directory `dir` durable (a file just created or renamed there):
/// without this a power cut may keep a file's synced contents but lose its name. Only Unix
/// can open a directory to sync it; elsewhere this does nothing.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    fs_err::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// The directory `path` lives in (`.` for a bare file name).
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A hidden name next to `path`, unique per process and call, so two writers (threads or
/// processes) never share a temporary file.
fn temp_path(path: &Path) -> io::Result<PathBuf> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} does not name a file", path.display()),
        )
    })?;
    let mut tmp = OsString::from(".");
    tmp.push(name);
    tmp.push(format!(
        ".{}.{}.tmp",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    Ok(parent_dir(path).join(tmp))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh empty directory under the system temp dir (core has no `tempfile`).
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("aisle-core-fs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the scratch dir");
        dir
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn replaces_the_content_and_leaves_no_temp_file() {
        let dir = scratch("replace");
        let path = dir.join("model.bin");
        write_atomic(&path, b"first").expect("first write");
        write_atomic(&path, b"second, longer").expect("second write");
        assert_eq!(std::fs::read(&path).expect("read"), b"second, longer");
        assert_eq!(entries(&dir), ["model.bin"]);
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn creates_a_missing_parent_directory() {
        let dir = scratch("parent");
        let path = dir.join("a/b/report.md");
        write_atomic(&path, b"# report\n").expect("write");
        assert_eq!(std::fs::read(&path).expect("read"), b"# report\n");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn a_failed_rename_removes_the_temp_file_and_keeps_the_target() {
        let dir = scratch("fail");
        // A non-empty directory cannot be replaced by a file: the rename fails.
        let path = dir.join("occupied");
        std::fs::create_dir_all(path.join("inside")).expect("occupy the name");
        let err = write_atomic(&path, b"never").expect_err("rename over a directory");
        assert!(err.to_string().contains("occupied"), "{err}");
        assert_eq!(entries(&dir), ["occupied"]);
        assert!(path.join("inside").is_dir());
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
