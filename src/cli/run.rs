//! `bext run`, `bext proxy`, `bext respond`, `bext origin` (owned by the engine).
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct RunArgs {
    pub file: Option<PathBuf>,
}
#[derive(Args)]
pub struct ProxyArgs {}
#[derive(Args)]
pub struct RespondArgs {}
#[derive(Args)]
pub struct OriginArgs {}

pub fn run(_a: RunArgs) -> ExitCode {
    eprintln!("bext run: not built yet");
    ExitCode::from(2)
}
pub fn proxy(_a: ProxyArgs) -> ExitCode {
    ExitCode::from(2)
}
pub fn respond(_a: RespondArgs) -> ExitCode {
    ExitCode::from(2)
}
pub fn origin(_a: OriginArgs) -> ExitCode {
    ExitCode::from(2)
}
