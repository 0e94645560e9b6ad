//! The `aisle` command line as a library: the subcommands (`commands`), the warnings about
//! the environment and the shared output helpers, so the benchmarks (`aisle-bench`) reuse
//! the same argument handling and formatting without living in the product binary.

pub mod commands;
pub mod environment;
pub mod output;

/// The exit status of a command's `result`; an error is printed with its causes first.
pub fn exit_code(result: anyhow::Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            for cause in error.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}
