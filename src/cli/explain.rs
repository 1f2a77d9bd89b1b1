//! `bext explain FILE 'METHOD TARGET' [-H 'Name: value']… [--format json]`: what bext would do
//! with one request (see `bext::explain`).
//!
//! Exit codes: 0 explained (whatever the answer: a route, 404, 405, 400), 1 the configuration
//! has errors (printed as `bext check` prints them), 2 usage or I/O errors.
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Text for a person.
    Text,
    /// One JSON document.
    Json,
}

#[derive(Args)]
pub struct ExplainArgs {
    /// The configuration file.
    pub file: PathBuf,
    /// The request: `METHOD TARGET`, the target an absolute URL (`https://host/path?q`) or a
    /// path (the host then comes from `-H 'Host: …'`).
    pub request: String,
    /// A request header, `Name: value`; repeatable.
    #[arg(short = 'H', long = "header")]
    pub headers: Vec<String>,
    /// How to print the explanation.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

pub fn explain(a: ExplainArgs) -> ExitCode {
    let request = match bext::explain::Request::parse(&a.request, &a.headers) {
        Ok(r) => r,
        Err(m) => {
            eprintln!("error: {m}");
            return ExitCode::from(2);
        }
    };
    let compiled = match bext_dsl::compile_file(&a.file) {
        Ok(c) => c,
        Err(f) => {
            eprint!("{}", f.render_human());
            let code = if matches!(f, bext_dsl::Failure::Io { .. }) {
                2
            } else {
                1
            };
            return ExitCode::from(code);
        }
    };
    let config = &compiled.config;
    let report = match bext::explain::explain(config, request) {
        Ok(r) => r,
        Err(m) => {
            eprintln!("error: {m}");
            return ExitCode::from(1);
        }
    };
    match a.format {
        Format::Json => println!("{:#}", report.to_json(config)),
        Format::Text => {
            let line_of = |at: &bext_ir::Loc| {
                let text = std::fs::read_to_string(&at.file).ok()?;
                let n = usize::try_from(at.line).ok()?.checked_sub(1)?;
                text.lines().nth(n).map(str::to_string)
            };
            print!("{}", report.to_text(config, &line_of));
        }
    }
    ExitCode::SUCCESS
}
