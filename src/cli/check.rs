//! `bext check` and `bext fmt` (owned by the language front end).
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct CheckArgs {
    pub file: PathBuf,
}

#[derive(Args)]
pub struct FmtArgs {
    pub file: PathBuf,
}

pub fn check(_a: CheckArgs) -> ExitCode {
    eprintln!("bext check: not built yet");
    ExitCode::from(2)
}

pub fn fmt(_a: FmtArgs) -> ExitCode {
    eprintln!("bext fmt: not built yet");
    ExitCode::from(2)
}
