//! `bext check` and `bext fmt`: the command-line face of the language front end (`bext-dsl`).
//!
//! Exit codes: 0 clean (warnings allowed), 1 the configuration has errors (or, for
//! `fmt --check`, is not formatted), 2 usage or IO errors.
use clap::{Args, ValueEnum};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// rustc-like text on stderr.
    Human,
    /// One JSON object per diagnostic per line, on stdout.
    Json,
}

#[derive(Args)]
pub struct CheckArgs {
    /// The configuration file.
    pub file: PathBuf,
    /// How to print diagnostics.
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,
    /// Print the compiled configuration (IR) as JSON on stdout.
    #[arg(long)]
    pub dump: bool,
    /// Check the language only: accept valid directives this engine does not run yet (which
    /// `bext check` otherwise reports as E0501 and `bext run` refuses).
    #[arg(long)]
    pub language_only: bool,
}

#[derive(Args)]
pub struct FmtArgs {
    /// The configuration file (only this file; includes are formatted on their own).
    pub file: PathBuf,
    /// Print nothing; exit 1 if the file is not formatted.
    #[arg(long, conflicts_with = "write")]
    pub check: bool,
    /// Rewrite the file in place.
    #[arg(long, short = 'w')]
    pub write: bool,
}

pub fn check(a: CheckArgs) -> ExitCode {
    let name = a.file.display().to_string();
    match bext_dsl::compile_file(&a.file) {
        Ok(c) => {
            let refused = bext::unsupported_features(&c.config);
            if !refused.is_empty() && !a.language_only {
                return not_implemented(&a, &c, &refused);
            }
            match a.format {
                Format::Human => {
                    if !c.warnings.is_empty() {
                        eprint!("{}", c.render_warnings());
                        eprintln!();
                    }
                }
                Format::Json => print!("{}", bext_dsl::render_json(&c.warnings)),
            }
            if a.dump {
                match serde_json::to_string_pretty(&c.config) {
                    Ok(j) => println!("{j}"),
                    Err(e) => {
                        eprintln!("error: cannot serialise the configuration: {e}");
                        return ExitCode::from(2);
                    }
                }
            }
            let warn = match c.warnings.len() {
                0 => String::new(),
                1 => " (1 warning)".to_string(),
                n => format!(" ({n} warnings)"),
            };
            let line = format!("ok: {name}: {}{warn}", bext_dsl::summary(&c.config));
            // With --dump or --format json, stdout carries data only.
            if a.dump || a.format == Format::Json {
                eprintln!("{line}");
            } else {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(f @ bext_dsl::Failure::Io { .. }) => {
            match a.format {
                Format::Human => eprint!("{}", f.render_human()),
                Format::Json => print!("{}", f.render_json()),
            }
            ExitCode::from(2)
        }
        Err(f) => {
            match a.format {
                Format::Human => eprint!("{}", f.render_human()),
                Format::Json => print!("{}", f.render_json()),
            }
            ExitCode::from(1)
        }
    }
}

/// A valid configuration that uses directives the engine does not run: an error (E0501) for
/// each, with the warnings, rendered like any other diagnostics; exit 1.
fn not_implemented(
    a: &CheckArgs,
    c: &bext_dsl::Compiled,
    refused: &[bext::Unsupported],
) -> ExitCode {
    let mut diags = c.warnings.clone();
    // A refusal without a place in the sources (none today) is still reported, plainly.
    let mut plain = Vec::new();
    for u in refused {
        match bext_dsl::diag::not_implemented(&c.sources, &u.directive, &u.at) {
            Some(d) => diags.push(d),
            None => plain.push(u),
        }
    }
    match a.format {
        Format::Human => {
            for u in &plain {
                eprintln!("{u}");
            }
            if !diags.iter().any(|d| d.is_error()) {
                eprintln!("error: configuration rejected: {} error(s)", plain.len());
            } else {
                eprint!("{}", bext_dsl::render_human(&diags, &c.sources));
            }
        }
        Format::Json => {
            print!("{}", bext_dsl::render_json(&diags));
            for u in &plain {
                let v = serde_json::json!({
                    "code": "E0501",
                    "severity": "error",
                    "file": u.at.file,
                    "line": u.at.line,
                    "column": u.at.col,
                    "message": format!("`{}` is not implemented by this version of bext's engine", u.directive),
                });
                println!("{v}");
            }
        }
    }
    ExitCode::from(1)
}

pub fn fmt(a: FmtArgs) -> ExitCode {
    let src = match std::fs::read_to_string(&a.file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", a.file.display());
            return ExitCode::from(2);
        }
    };
    let formatted = match bext_dsl::format_str(&a.file.display().to_string(), &src) {
        Ok(f) => f,
        Err(f) => {
            eprint!("{}", f.render_human());
            return ExitCode::from(1);
        }
    };
    if a.check {
        if formatted == src {
            return ExitCode::SUCCESS;
        }
        eprintln!(
            "{}: not formatted (run `bext fmt -w {}`)",
            a.file.display(),
            a.file.display()
        );
        return ExitCode::from(1);
    }
    if a.write {
        if formatted != src {
            if let Err(e) = std::fs::write(&a.file, &formatted) {
                eprintln!("error: cannot write {}: {e}", a.file.display());
                return ExitCode::from(2);
            }
        }
        return ExitCode::SUCCESS;
    }
    let mut out = std::io::stdout().lock();
    if out.write_all(formatted.as_bytes()).is_err() {
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}
