//! `bext-bench`: the same commands as `bext bench`, in a binary that builds without the engine,
//! so the harness can run its floors and peers on its own.
#![forbid(unsafe_code)]

use clap::Parser;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "bext-bench",
    about = "bext's load generator, floors and benchmark tables"
)]
struct Cli {
    #[command(subcommand)]
    cmd: bext_bench::cli::BenchCmd,
}

fn main() -> ExitCode {
    bext_bench::cli::main(Cli::parse().cmd)
}
