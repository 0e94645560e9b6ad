//! `aisle`: search, recommendations and behaviour analytics for a shop, in one program.
//!
//! The binary is thin: it parses arguments, turns them into validated settings and calls the
//! engine crates. Every subcommand has `--help`.

use aisle_cli::{commands, environment};

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

fn main() -> ExitCode {
    quiet_on_closed_pipe();
    environment::warn_unknown(&commands::Cli::command(), std::env::vars_os());
    let cli = commands::Cli::parse();
    aisle_cli::exit_code(commands::run(cli))
}

/// Lets the process end quietly when the program reading its output goes away
/// (`aisle stats --json | head`), as command-line tools do, instead of panicking at the
/// next print. Rust ignores SIGPIPE at start-up, so every `println!` would then fail with
/// "Broken pipe"; restoring the default action ends the process the way `cat` ends.
#[cfg(unix)]
#[allow(unsafe_code)]
fn quiet_on_closed_pipe() {
    // SAFETY: called first thing in main, before any other thread exists; SIG_DFL is a
    // valid disposition for SIGPIPE and no handler runs Rust code.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(not(unix))]
fn quiet_on_closed_pipe() {}
