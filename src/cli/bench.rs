//! `bext bench ...`: the load generator, idle-connection meter, floors, origin and result
//! tables of the `bext-bench` crate.
use clap::Args;
use std::process::ExitCode;

#[derive(Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub cmd: bext_bench::cli::BenchCmd,
}

pub fn bench(a: BenchArgs) -> ExitCode {
    bext_bench::cli::main(a.cmd)
}
