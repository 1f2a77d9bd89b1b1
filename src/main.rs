//! The `bext` command: CLI, signals and wiring. The work lives in the workspace crates.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod cli;

#[derive(Parser)]
#[command(
    name = "bext",
    version,
    about = "bext: a thread-per-core edge reverse proxy"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Check a configuration and report every mistake.
    Check(cli::check::CheckArgs),
    /// Print or check the canonical formatting of a configuration.
    Fmt(cli::check::FmtArgs),
    /// Serve a configuration (the embedded demo configuration when no FILE is given).
    Run(cli::run::RunArgs),
    /// Reverse-proxy one address to one or more upstream servers.
    Proxy(cli::run::ProxyArgs),
    /// Answer every request with a fixed response.
    Respond(cli::run::RespondArgs),
    /// A small built-in origin server for demos, tests and benchmarks.
    Origin(cli::run::OriginArgs),
    /// Ask a running bext to reload its configuration (admin endpoint or SIGHUP).
    Reload(cli::reload::ReloadArgs),
    /// Load generator and side-by-side benchmarks.
    Bench(cli::bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // clap uses 0 for --help/--version; usage errors are 2 like every other tool.
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.cmd {
        Cmd::Check(a) => cli::check::check(a),
        Cmd::Fmt(a) => cli::check::fmt(a),
        Cmd::Run(a) => cli::run::run(a),
        Cmd::Proxy(a) => cli::run::proxy(a),
        Cmd::Respond(a) => cli::run::respond(a),
        Cmd::Origin(a) => cli::run::origin(a),
        Cmd::Reload(a) => cli::reload::reload(a),
        Cmd::Bench(a) => cli::bench::bench(a),
    }
}
