//! `bext check` and `bext fmt`: the command-line face of the language front end (`bext-dsl`),
//! and the diagnostics of what the engine refuses beyond the language, which `bext run` prints
//! the same way when it refuses to start.
//!
//! Exit codes: 0 clean (warnings allowed), 1 the configuration has errors (or, for
//! `fmt --check`, is not formatted), 2 usage or IO errors. With several files, the worst.
use bext_dsl::diag::Diagnostic;
use clap::{Args, ValueEnum};
use std::io::{Read as _, Write as _};
use std::net::ToSocketAddrs;
use std::path::{Path, PathBuf};
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
    /// The configuration files, each checked on its own; `-` reads one from standard input
    /// (its includes are then found from the current directory).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// How to print diagnostics.
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,
    /// Print the compiled configuration (IR) as JSON on stdout.
    #[arg(long)]
    pub dump: bool,
    /// Check the language only: accept valid directives this engine does not run yet (which
    /// `bext check` otherwise reports as E0501 and `bext run` refuses), and leave out what
    /// depends on this machine (W0150 static roots, W0503 server names).
    #[arg(long)]
    pub language_only: bool,
}

#[derive(Args)]
pub struct FmtArgs {
    /// The configuration file (only this file; includes are formatted on their own).
    pub file: PathBuf,
    /// Print no formatted text; exit 1, naming the file on stderr, if it is not formatted.
    #[arg(long, conflicts_with = "write")]
    pub check: bool,
    /// Rewrite the file in place.
    #[arg(long, short = 'w')]
    pub write: bool,
}

pub fn check(a: CheckArgs) -> ExitCode {
    let worst = a.files.iter().map(|f| check_one(&a, f)).max().unwrap_or(0);
    ExitCode::from(worst)
}

/// The name standard input goes by in diagnostics.
const STDIN: &str = "<stdin>";

fn compile(file: &Path) -> Result<bext_dsl::Compiled, bext_dsl::Failure> {
    if file != Path::new("-") {
        return bext_dsl::compile_file(file);
    }
    let mut text = String::new();
    match std::io::stdin().read_to_string(&mut text) {
        Ok(_) => bext_dsl::compile_str(STDIN, &text),
        Err(error) => Err(bext_dsl::Failure::Io {
            path: PathBuf::from(STDIN),
            error,
        }),
    }
}

/// Check one file; its exit code.
fn check_one(a: &CheckArgs, file: &Path) -> u8 {
    let name = if file == Path::new("-") {
        STDIN.to_string()
    } else {
        file.display().to_string()
    };
    match compile(file) {
        Ok(mut c) => {
            if a.language_only {
                c.warnings.retain(|w| w.code != "W0150");
            } else {
                // Plugins are loaded as `bext run` will load them, whether or not the engine
                // runs them yet: their own mistakes are reported with the rest.
                c.warnings.extend(plugin_loads(&c));
                let refused = bext::unsupported_features(&c.config);
                if !refused.is_empty() {
                    return not_implemented(a.format, &c, &refused);
                }
                let imports = crs_imports(&c);
                if imports.iter().any(|d| d.code.starts_with('E')) {
                    c.warnings.extend(imports);
                    print_diagnostics(a.format, &c.warnings, &c.sources);
                    return 1;
                }
                c.warnings.extend(imports);
                if c.warnings.iter().any(|d| d.is_error()) {
                    print_diagnostics(a.format, &c.warnings, &c.sources);
                    return 1;
                }
                let unresolved = unresolved_servers(&c);
                if unresolved.is_empty() {
                    // What the engine's own compilation refuses (it stops at the first).
                    if let Err(e) = bext::compile(&c.config, 1) {
                        match refusal(&c.sources, &e) {
                            Some(diags) => {
                                c.warnings.extend(diags);
                                print_diagnostics(a.format, &c.warnings, &c.sources);
                            }
                            None => eprintln!("{e}"),
                        }
                        return 1;
                    }
                }
                c.warnings.extend(unresolved);
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
                        return 2;
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
            0
        }
        Err(f) => {
            match a.format {
                Format::Human => eprint!("{}", f.render_human()),
                Format::Json => print!("{}", f.render_json()),
            }
            if matches!(f, bext_dsl::Failure::Io { .. }) {
                2
            } else {
                1
            }
        }
    }
}

fn print_diagnostics(format: Format, diags: &[Diagnostic], sources: &bext_dsl::diag::Sources) {
    match format {
        Format::Human => eprint!("{}", bext_dsl::render_human(diags, sources)),
        Format::Json => print!("{}", bext_dsl::render_json(diags)),
    }
}

/// Upstream servers whose host name does not resolve here (W0503): `bext run` resolves them at
/// start and refuses one that does not resolve, but a name may resolve where bext runs and not
/// where it is checked, so this is a warning.
fn unresolved_servers(c: &bext_dsl::Compiled) -> Vec<Diagnostic> {
    let mut found = bext_dsl::diag::Diags::default();
    for s in c.config.upstreams.iter().flat_map(|u| &u.servers) {
        let resolves = s
            .addr
            .to_socket_addrs()
            .is_ok_and(|mut addrs| addrs.next().is_some());
        let Some(span) = c.sources.span_at(&s.at).filter(|_| !resolves) else {
            continue;
        };
        found.emit(
            &c.sources,
            bext_dsl::diag::warning(
                "W0503",
                span,
                format!("upstream server `{}` does not resolve here", s.addr),
            )
            .help("`bext run` resolves server names at start and refuses one that does not resolve; check the name, or check the file where bext will run"),
        );
    }
    found.list
}

/// The codes of `bext_plugins::LoadErrorKind`, in its order (a test keeps them equal).
const PLUGIN_CODES: [&str; 5] = ["E0801", "E0802", "E0803", "E0804", "E0805"];

/// Each `plugin` of each route loaded as `bext run` loads it (read, compiled, its imports
/// checked, started once with its configuration): E0801 to E0805 at the directive.
fn plugin_loads(c: &bext_dsl::Compiled) -> Vec<Diagnostic> {
    plugin_diagnostics(&c.config, &c.sources)
}

/// [`plugin_loads`] of a configuration and its sources (`bext run` reports them too).
pub fn plugin_diagnostics(
    config: &bext_ir::Config,
    sources: &bext_dsl::diag::Sources,
) -> Vec<Diagnostic> {
    let mut found = bext_dsl::diag::Diags::default();
    for p in config
        .sites
        .iter()
        .flat_map(|s| &s.routes)
        .flat_map(|r| &r.plugins)
    {
        let Some(span) = sources.span_at(&p.at) else {
            continue;
        };
        let Err(e) = bext_plugins::load(p) else {
            continue;
        };
        let code = PLUGIN_CODES[e.kind as usize];
        let help = match e.kind {
            bext_plugins::LoadErrorKind::Missing => {
                "a relative path is read from the configuration file's folder"
            }
            bext_plugins::LoadErrorKind::NotProxyWasm => {
                "build the plugin with a proxy-wasm SDK (Rust: the `proxy-wasm` crate, a cdylib for wasm32-wasip1)"
            }
            bext_plugins::LoadErrorKind::MissingImports => {
                "bext provides the proxy-wasm 0.2.1 and 0.2.0 host functions and WASI preview-1 clocks, random, environ, args and fd_write (docs/plugins.md)"
            }
            bext_plugins::LoadErrorKind::Settings => {
                "the block takes `config`, `on_error fail|skip`, `budget DURATION`, `memory SIZE`, or keys for a JSON configuration"
            }
            bext_plugins::LoadErrorKind::Start => {
                "the plugin's own log lines, above, say why it refused to start"
            }
        };
        found.emit(
            sources,
            bext_dsl::diag::error(code, span, e.message).help(help),
        );
    }
    found.list
}

/// Each `import crs` of a `waf` block, imported as `bext run` will: a rule folder that cannot
/// be read is E0503; each rule using a construct bext cannot run is E0504 with the rule id and
/// the reason, or W0504 when the import says `skip_unsupported` (the rule is left out).
fn crs_imports(c: &bext_dsl::Compiled) -> Vec<Diagnostic> {
    let mut found = bext_dsl::diag::Diags::default();
    for w in &c.config.wafs {
        let Some(crs) = &w.crs else { continue };
        let Some(span) = c.sources.span_at(&crs.at) else {
            continue;
        };
        let list = match bext_waf::stage::build(w) {
            Ok(b) => b.unsupported,
            Err(bext_waf::stage::BuildError::Unsupported(list)) => list,
            Err(e) => {
                found.emit(
                    &c.sources,
                    bext_dsl::diag::error("E0503", span, format!("cannot import CRS: {e}"))
                        .help("point `import crs` at an installed CRS v4 `rules/` folder (its `*.conf` and `*.data` files)"),
                );
                continue;
            }
        };
        for u in list {
            let msg = format!("rule {} ({}): {}", u.rule_id, u.file, u.reason);
            let b = if crs.skip_unsupported {
                bext_dsl::diag::warning("W0504", span, format!("{msg}; left out"))
            } else {
                bext_dsl::diag::error("E0504", span, format!("{msg}; bext cannot run it")).help(
                    format!(
                    "add `skip_unsupported` to the import to leave such rules out, or `exclude {}`",
                    u.rule_id
                ),
                )
            };
            found.emit(&c.sources, b);
        }
    }
    found.list
}

/// A configuration refused by `bext::start` (or `bext::compile`) as diagnostics over its
/// sources, rendered like `bext check`'s: E0501 for each directive the engine does not run,
/// E0502 for what the engine's compilation refused. `None` for other start errors (binding,
/// driver, pid file) and for a refusal without a place in the sources (shown as text).
pub fn refusal(sources: &bext_dsl::diag::Sources, e: &bext::StartError) -> Option<Vec<Diagnostic>> {
    match e {
        bext::StartError::Unsupported(list) => list
            .iter()
            .map(|u| bext_dsl::diag::not_implemented(sources, &u.directive, &u.at))
            .collect(),
        bext::StartError::Compile(bext_ir::ConfigError { message, at }) => {
            let span = sources.span_at(at)?;
            let mut d = bext_dsl::diag::Diags::default();
            d.emit(
                sources,
                bext_dsl::diag::error("E0502", span, message.clone())
                    .help("the language accepts this, but the engine cannot run it as written"),
            );
            Some(d.list)
        }
        bext::StartError::Tls(list) => {
            let mut d = bext_dsl::diag::Diags::default();
            for e in list {
                let span = sources.span_at(&e.at)?;
                let code = TLS_CODES
                    .iter()
                    .find(|c| **c == e.code.as_str())
                    .copied()
                    .unwrap_or("E0702");
                let mut b = bext_dsl::diag::error(code, span, e.message.clone());
                if let Some(help) = &e.help {
                    b = b.help(help.clone());
                }
                d.emit(sources, b);
            }
            Some(d.list)
        }
        _ => None,
    }
}

/// What `bext check` reports about the files of a `tls` block, from `bext-tls` (docs/tls.md):
/// missing file, bad certificate, bad key, key not matching, expired, not yet valid, server
/// name not covered, server name given twice, bad OCSP response, bad client CA, bad ALPN
/// protocol, ticket keys not made; an upstream server's CA file or trust store unusable, or
/// its name not one TLS can verify.
const TLS_CODES: [&str; 14] = [
    "E0701", "E0702", "E0703", "E0704", "E0705", "E0706", "E0707", "E0708", "E0709", "E0710",
    "E0711", "E0712", "E0713", "E0714",
];

/// A valid configuration that uses directives the engine does not run: an error (E0501) for
/// each, with the warnings, rendered like any other diagnostics; exit 1.
fn not_implemented(format: Format, c: &bext_dsl::Compiled, refused: &[bext::Unsupported]) -> u8 {
    let mut diags = c.warnings.clone();
    // A refusal without a place in the sources (none today) is still reported, plainly.
    let mut plain = Vec::new();
    for u in refused {
        match bext_dsl::diag::not_implemented(&c.sources, &u.directive, &u.at) {
            Some(d) => diags.push(d),
            None => plain.push(u),
        }
    }
    // In file order with the warnings, like every other diagnostic.
    diags.sort_by_key(|d| (d.span.file, d.span.start));
    match format {
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
    1
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

#[cfg(test)]
mod tests {
    #[test]
    fn tls_codes_are_those_of_bext_tls() {
        let codes: Vec<&str> = bext_tls::Code::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(codes, super::TLS_CODES);
    }

    #[test]
    fn plugin_codes_are_those_of_bext_plugins() {
        use bext_plugins::LoadErrorKind as K;
        for k in [
            K::Missing,
            K::NotProxyWasm,
            K::MissingImports,
            K::Settings,
            K::Start,
        ] {
            assert_eq!(super::PLUGIN_CODES[k as usize], k.code());
        }
    }
}
