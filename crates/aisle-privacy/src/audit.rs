//! The audit log: one JSON line per audited action (forgets, exports, privacy releases, key
//! operations, admin calls), each carrying the SHA-256 of the line before it, so that
//! changing, removing or reordering any line breaks the chain from there on.
//!
//! A chain cannot show that its *last* lines were cut off: `aisle audit verify` prints the
//! head hash, and an operator who keeps it elsewhere can check that the log still reaches it.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// The hash before the first line.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audited action.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Position in the log, from 1.
    pub seq: u64,
    /// When (ms since the epoch).
    pub at_ms: i64,
    /// Who: a role, `cli`, or `system`.
    pub actor: String,
    /// What, e.g. `forget`, `dp_release`, `export`, `retrain`.
    pub action: String,
    /// Its details.
    pub detail: serde_json::Value,
    /// The hash of the line before.
    pub prev: String,
    /// SHA-256 of `prev` and this record without `hash`.
    pub hash: String,
}

#[derive(Serialize)]
struct Unsealed<'a> {
    seq: u64,
    at_ms: i64,
    actor: &'a str,
    action: &'a str,
    detail: &'a serde_json::Value,
    prev: &'a str,
}

fn seal(r: &Record) -> Result<String> {
    let body = serde_json::to_vec(&Unsealed {
        seq: r.seq,
        at_ms: r.at_ms,
        actor: &r.actor,
        action: &r.action,
        detail: &r.detail,
        prev: &r.prev,
    })?;
    let mut h = Sha256::new();
    h.update(r.prev.as_bytes());
    h.update(&body);
    Ok(hex(&h.finalize()))
}

/// A fingerprint of an identifier for the log (128 bits of its SHA-256), so that the log
/// can confirm an id was forgotten without listing ids. Ids from a small space (counters)
/// can be found by hashing every candidate: pseudonymous ids avoid that.
pub fn fingerprint(id: &str) -> String {
    hex(&Sha256::digest(id.as_bytes())[..16])
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The audit log, open for appending.
pub struct AuditLog {
    path: PathBuf,
    file: fs_err::File,
    seq: u64,
    head: String,
}

impl AuditLog {
    /// Opens (or creates) the log, checking the whole chain first: a damaged log is an
    /// error, not something to append to. A torn last line (a crash mid-append) is cut off.
    pub fn open(path: &Path) -> Result<AuditLog> {
        let (seq, head) = if path.exists() {
            let bytes = fs_err::read(path)?;
            if !bytes.is_empty() && !bytes.ends_with(b"\n") {
                let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                aisle_core::fs::write_atomic(path, &bytes[..keep])?;
            }
            let v = verify(path)?;
            (v.records, v.head)
        } else {
            (0, GENESIS.to_string())
        };
        let file = crate::open_for_append(path)?;
        Ok(AuditLog {
            path: path.to_path_buf(),
            file,
            seq,
            head,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record and fsyncs it.
    pub fn append(
        &mut self,
        at_ms: i64,
        actor: &str,
        action: &str,
        detail: serde_json::Value,
    ) -> Result<Record> {
        let mut r = Record {
            seq: self.seq + 1,
            at_ms,
            actor: actor.to_string(),
            action: action.to_string(),
            detail,
            prev: self.head.clone(),
            hash: String::new(),
        };
        r.hash = seal(&r)?;
        let mut line = serde_json::to_vec(&r)?;
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.file.sync_data()?;
        self.seq = r.seq;
        self.head = r.hash.clone();
        Ok(r)
    }
}

/// What `verify` found in an intact log.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Verified {
    /// Records in the log.
    pub records: u64,
    /// The hash of the last one ([`GENESIS`] for an empty log).
    pub head: String,
}

/// Checks every line's hash and link; the first broken one is an error naming its line.
pub fn verify(path: &Path) -> Result<Verified> {
    let text = fs_err::read_to_string(path)?;
    let mut head = GENESIS.to_string();
    let mut seq = 0;
    for (i, line) in text.lines().enumerate() {
        let broken = |message: String| Error::Corrupt {
            path: path.to_path_buf(),
            line: i + 1,
            message,
        };
        let r: Record =
            serde_json::from_str(line).map_err(|e| broken(format!("not an audit record ({e})")))?;
        if r.seq != seq + 1 {
            return Err(broken(format!(
                "record {} where {} was due: a line was removed or moved",
                r.seq,
                seq + 1
            )));
        }
        if r.prev != head {
            return Err(broken(
                "its link does not match the line before: a line was changed, removed or moved"
                    .into(),
            ));
        }
        if seal(&r)? != r.hash {
            return Err(broken(
                "its hash does not match its content: it was changed".into(),
            ));
        }
        seq = r.seq;
        head = r.hash;
    }
    Ok(Verified { records: seq, head })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_intact_log_verifies_and_any_changed_line_is_found() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("audit.jsonl");
        let mut log = AuditLog::open(&path).expect("open");
        for i in 0..5 {
            log.append(
                1000 + i,
                "admin",
                "forget",
                json!({ "user": format!("u{i}") }),
            )
            .expect("append");
        }
        drop(log);
        let v = verify(&path).expect("intact");
        assert_eq!(v.records, 5);
        // Reopening continues the chain.
        let mut log = AuditLog::open(&path).expect("reopen");
        log.append(2000, "cli", "export", json!({}))
            .expect("append");
        assert_eq!(verify(&path).expect("intact").records, 6);

        let text = fs_err::read_to_string(&path).expect("read");
        let tampered = text.replacen("\"u2\"", "\"u9\"", 1);
        assert_ne!(tampered, text);
        fs_err::write(&path, &tampered).expect("write");
        match verify(&path) {
            Err(Error::Corrupt { line: 3, .. }) => {}
            other => panic!("the changed third line was not found: {other:?}"),
        }
        // A removed line breaks the sequence.
        let removed: Vec<&str> = text
            .lines()
            .enumerate()
            .filter(|(i, _)| *i != 1)
            .map(|(_, l)| l)
            .collect();
        fs_err::write(&path, removed.join("\n") + "\n").expect("write");
        assert!(matches!(verify(&path), Err(Error::Corrupt { line: 2, .. })));
    }
}
