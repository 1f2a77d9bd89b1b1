//! The front end of the `.bext` configuration language.
//!
//! ```text
//! source ──pest (ast)──▶ directives with spans ──include──▶ one directive list
//!        ──lower──▶ IR + spans ──cross checks, route analysis──▶ diagnostics
//! ```
//!
//! [`compile_file`] and [`compile_str`] run the whole pipeline and return either the IR with
//! its warnings or a [`Failure`] holding every diagnostic (or the IO error of an unreadable
//! top-level file). [`format_str`] prints the canonical layout of one file. The grammar is in
//! `bext.pest`; the meaning of each directive is in `lower/` (a file per block) and
//! `docs/language.md`; every diagnostic code is listed in `docs/diagnostics.md`.
#![forbid(unsafe_code)]

pub mod ast;
pub mod diag;
pub mod fmt;
pub mod hints;
pub mod lower;
pub mod routes;

pub use diag::{Diagnostic, FileId, Label, Severity, Sources, Span};

use ast::{ArgKind, Directive};
use diag::Diags;
use std::path::{Path, PathBuf};

/// A configuration that compiled, with its warnings.
#[derive(Debug)]
pub struct Compiled {
    pub config: bext_ir::Config,
    pub warnings: Vec<Diagnostic>,
    /// The sources, to render the warnings.
    pub sources: Sources,
}

impl Compiled {
    /// The warnings, rendered like rustc.
    pub fn render_warnings(&self) -> String {
        self.warnings
            .iter()
            .map(|d| d.render_human(&self.sources))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Why a configuration did not compile.
#[derive(Debug)]
pub enum Failure {
    /// The top-level file could not be read.
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// At least one error; `diagnostics` holds every error and warning, in source order.
    Invalid {
        diagnostics: Vec<Diagnostic>,
        sources: Sources,
    },
}

impl Failure {
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            Failure::Io { .. } => &[],
            Failure::Invalid { diagnostics, .. } => diagnostics,
        }
    }

    /// Every diagnostic rendered like rustc, then a count line.
    pub fn render_human(&self) -> String {
        match self {
            Failure::Io { path, error } => {
                format!("error: cannot read {}: {error}\n", path.display())
            }
            Failure::Invalid {
                diagnostics,
                sources,
            } => render_human(diagnostics, sources),
        }
    }

    /// One JSON object per line.
    pub fn render_json(&self) -> String {
        match self {
            Failure::Io { path, error } => {
                let v = serde_json::json!({
                    "code": "E0000",
                    "severity": "error",
                    "file": path.display().to_string(),
                    "line": 0,
                    "column": 0,
                    "message": format!("cannot read file: {error}"),
                });
                format!("{v}\n")
            }
            Failure::Invalid { diagnostics, .. } => render_json(diagnostics),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render_human())
    }
}

impl std::error::Error for Failure {}

/// Renders diagnostics like rustc, followed by a summary line when there are errors.
pub fn render_human(diagnostics: &[Diagnostic], sources: &Sources) -> String {
    let mut out: Vec<String> = diagnostics
        .iter()
        .map(|d| d.render_human(sources))
        .collect();
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    if errors > 0 {
        out.push(format!(
            "error: configuration rejected: {errors} error{}, {warnings} warning{}\n",
            plural(errors),
            plural(warnings)
        ));
    }
    out.join("\n")
}

/// One JSON object per diagnostic, one per line.
pub fn render_json(diagnostics: &[Diagnostic]) -> String {
    diagnostics.iter().map(|d| d.render_json() + "\n").collect()
}

pub(crate) fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Compiles the file at `path` and everything it includes.
pub fn compile_file(path: &Path) -> Result<Compiled, Failure> {
    let text = std::fs::read_to_string(path).map_err(|error| Failure::Io {
        path: path.to_path_buf(),
        error,
    })?;
    compile_str(&path.display().to_string(), &text)
}

/// Compiles `src` as if read from a file named `name`; includes are resolved relative to the
/// directory of `name`.
pub fn compile_str(name: &str, src: &str) -> Result<Compiled, Failure> {
    compile_with(name, src, &Options::default())
}

/// How a compilation treats the world outside the source text.
#[derive(Debug, Clone)]
pub struct Options {
    /// Read `include`d files and check the files the configuration names (the admin token
    /// file). Off, every `include` is reported (E0003) and named files are not checked: for
    /// input that must not make the compiler read files, such as fuzzing.
    pub follow_includes: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            follow_includes: true,
        }
    }
}

/// [`compile_str`] with explicit [`Options`].
pub fn compile_with(name: &str, src: &str, opts: &Options) -> Result<Compiled, Failure> {
    let mut sources = Sources::default();
    let mut diags = Diags::default();
    let mut items = vec![];
    let id = sources.add(name.to_string(), src.to_string());
    let mut stack = vec![canonical(Path::new(name))];
    let mut ex = Expander {
        sources: &mut sources,
        diags: &mut diags,
        stack: &mut stack,
        out: &mut items,
        follow: opts.follow_includes,
    };
    ex.expand(id);
    let (config, mut list) = {
        let mut l = lower::Lower::new(&sources, &mut diags);
        l.read_files = opts.follow_includes;
        l.top(&items);
        // After a syntax error some items are missing: checks across items would report
        // references to them as undefined, so only the items themselves are checked.
        if !l.diags.list.iter().any(|d| d.code == "E0001") {
            l.cross_check();
        }
        let config = std::mem::take(&mut l.config);
        (config, std::mem::take(&mut diags.list))
    };
    list.sort_by_key(|d| (d.span.file, d.span.start));
    list.dedup();
    if list.iter().any(Diagnostic::is_error) {
        Err(Failure::Invalid {
            diagnostics: list,
            sources,
        })
    } else {
        Ok(Compiled {
            config,
            warnings: list,
            sources,
        })
    }
}

fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

struct Expander<'a> {
    sources: &'a mut Sources,
    diags: &'a mut Diags,
    stack: &'a mut Vec<PathBuf>,
    out: &'a mut Vec<Directive>,
    follow: bool,
}

impl Expander<'_> {
    /// Parses file `id` and appends its top-level directives to `out`, replacing each
    /// `include` by the directives of the included file.
    fn expand(&mut self, id: FileId) {
        let Some(body) = ast::parse(self.sources, id, self.diags) else {
            return;
        };
        let base = Path::new(&self.sources.get(id).name)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        for d in body.items {
            if d.name != "include" {
                self.out.push(d);
                continue;
            }
            let arg = match d.args.as_slice() {
                [a] if matches!(a.kind, ArgKind::Str(_) | ArgKind::Word) => a,
                _ => {
                    let span = d.args.first().map_or(d.name_span, |a| a.span);
                    self.error(
                        diag::error("E0003", span, "`include` takes one file name")
                            .help("write `include \"sites/example.bext\"`"),
                    );
                    continue;
                }
            };
            if !self.follow {
                self.error(diag::error(
                    "E0003",
                    arg.span,
                    "includes are disabled for this compilation",
                ));
                continue;
            }
            let rel = Path::new(arg.text());
            let path = if rel.is_absolute() {
                rel.to_path_buf()
            } else {
                base.join(rel)
            };
            let key = canonical(&path);
            if let Some(pos) = self.stack.iter().position(|p| *p == key) {
                let chain: Vec<String> = self.stack[pos..]
                    .iter()
                    .chain([&key])
                    .map(|p| {
                        p.file_name().map_or_else(
                            || p.display().to_string(),
                            |f| f.to_string_lossy().into_owned(),
                        )
                    })
                    .collect();
                self.error(
                    diag::error(
                        "E0004",
                        arg.span,
                        format!("include cycle: {}", chain.join(" -> ")),
                    )
                    .help("remove one of the includes"),
                );
                continue;
            }
            // Only regular files: a device such as /dev/zero would never end.
            let read = match std::fs::metadata(&path) {
                Ok(m) if !m.is_file() => Err(std::io::Error::other("not a regular file")),
                Ok(_) => std::fs::read_to_string(&path),
                Err(e) => Err(e),
            };
            match read {
                Ok(text) => {
                    let child = self.sources.add(path.display().to_string(), text);
                    self.stack.push(key);
                    self.expand(child);
                    self.stack.pop();
                }
                Err(e) => self.error(
                    diag::error(
                        "E0003",
                        arg.span,
                        format!("cannot read included file `{}`: {e}", path.display()),
                    )
                    .help("include paths are relative to the file that includes them"),
                ),
            }
        }
    }

    fn error(&mut self, b: diag::Builder) {
        self.diags.emit(self.sources, b);
    }
}

/// The canonical formatting of `src` (one file; includes are not followed).
pub fn format_str(name: &str, src: &str) -> Result<String, Failure> {
    let mut sources = Sources::default();
    let mut diags = Diags::default();
    let id = sources.add(name.to_string(), src.to_string());
    match ast::parse(&sources, id, &mut diags) {
        Some(body) if !diags.has_errors() => Ok(fmt::format(&body, src)),
        _ => Err(Failure::Invalid {
            diagnostics: diags.list,
            sources,
        }),
    }
}

/// A one-line summary of a configuration: `1 site, 4 routes, 2 upstreams, 1 listener`.
pub fn summary(c: &bext_ir::Config) -> String {
    let routes: usize = c.sites.iter().map(|s| s.routes.len()).sum();
    let n = |k: usize, w: &str| format!("{k} {w}{}", plural(k));
    format!(
        "{}, {}, {}, {}, {}",
        n(c.sites.len(), "site"),
        n(routes, "route"),
        n(c.upstreams.len(), "upstream"),
        n(c.wafs.len(), "waf"),
        n(c.listeners.len(), "listener")
    )
}
