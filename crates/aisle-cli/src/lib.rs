//! The `aisle` command line as a library: the subcommands (`commands`), the warnings about
//! the environment and the shared output helpers, so the benchmarks (`aisle-bench`) reuse
//! the same argument handling and formatting without living in the product binary.

pub mod commands;
pub mod environment;
pub mod output;
