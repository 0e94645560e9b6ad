//! What the CLI tests share: running the built `aisle` binary and reading its output.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

pub fn aisle(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aisle"))
        .args(args)
        .env_remove("AISLE_DATA_DIR")
        .output()
        .expect("run aisle")
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn dir_arg(path: &Path) -> String {
    path.display().to_string()
}
