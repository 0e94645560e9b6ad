//! `aisle`: search, recommendations and behaviour analytics for a shop, in one program.
//!
//! The binary is thin: it parses arguments, turns them into validated settings and calls the
//! engine crates. Every subcommand has `--help`.

mod commands;
mod output;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = commands::Cli::parse();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            for cause in error.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}
