//! The `bext` command: CLI, signals and wiring. The work lives in the workspace crates.
#![forbid(unsafe_code)]

use std::process::ExitCode;

mod cli;

fn main() -> ExitCode {
    cli::main()
}
