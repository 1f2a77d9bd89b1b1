//! The command line: [`Cli`] is the whole definition (the docs test parses every command the
//! documentation shows with it), one file per command family.
pub mod bench;
pub mod check;
pub mod explain;
pub mod reload;
pub mod run;
pub mod version;
pub mod waf;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "bext",
    about = "bext: a thread-per-core edge reverse proxy",
    disable_version_flag = true,
    arg_required_else_help = true
)]
pub struct Cli {
    /// Print the version, the I/O drivers available here and what the engine runs (like
    /// `bext version`).
    #[arg(short = 'V', long)]
    pub version: bool,
    #[command(subcommand)]
    pub cmd: Option<Cmd>,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Check configurations and report every mistake.
    Check(check::CheckArgs),
    /// Print or check the canonical formatting of a configuration.
    Fmt(check::FmtArgs),
    /// Show what bext would do with one request: the site and route chosen (and why the
    /// routes tried before it did not match), the stages in order, the upstream pick policy.
    Explain(explain::ExplainArgs),
    /// Serve a configuration (without FILE, a demo: a proxy in front of a built-in origin).
    Run(run::RunArgs),
    /// Reverse-proxy one address to one or more upstream servers.
    Proxy(run::ProxyArgs),
    /// Answer every request with a fixed response.
    Respond(run::RespondArgs),
    /// A small built-in origin server for demos, tests and benchmarks.
    Origin(run::OriginArgs),
    /// Ask a running bext to reload its configuration (admin endpoint or SIGHUP).
    Reload(reload::ReloadArgs),
    /// Load generator and side-by-side benchmarks.
    Bench(bench::BenchArgs),
    /// Print the version, the I/O drivers available here and what the engine runs.
    Version,
    /// Web application firewall tools: `bext waf test REQUEST --config FILE --waf NAME`.
    Waf(waf::WafArgs),
}

/// Parse the command line and run the command; the exit code of the process.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // clap uses 0 for --help; usage errors are 2 like every other tool.
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let Some(cmd) = cli.cmd else {
        // `arg_required_else_help` leaves only `bext --version` here.
        return version::version();
    };
    if cli.version {
        return version::version();
    }
    match cmd {
        Cmd::Check(a) => check::check(a),
        Cmd::Fmt(a) => check::fmt(a),
        Cmd::Explain(a) => explain::explain(a),
        Cmd::Run(a) => run::run(a),
        Cmd::Proxy(a) => run::proxy(a),
        Cmd::Respond(a) => run::respond(a),
        Cmd::Origin(a) => run::origin(a),
        Cmd::Reload(a) => reload::reload(a),
        Cmd::Bench(a) => bench::bench(a),
        Cmd::Version => version::version(),
        Cmd::Waf(a) => waf::waf(a),
    }
}
