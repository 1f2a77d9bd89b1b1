//! `bext bench` (owned by the benchmark harness).
use clap::Args;
use std::process::ExitCode;

#[derive(Args)]
pub struct BenchArgs {}

pub fn bench(_a: BenchArgs) -> ExitCode {
    eprintln!("bext bench: not built yet");
    ExitCode::from(2)
}
