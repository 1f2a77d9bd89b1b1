//! Diagnostics: what the front end tells an operator, and how it is rendered.
//!
//! Every diagnostic has a stable code (documented in `docs/diagnostics.md`), a severity, a
//! message, a primary span, optional secondary labels and an optional help line. Spans are byte
//! ranges into a [`Sources`] entry; [`Diagnostic::file`], [`Diagnostic::line`] and
//! [`Diagnostic::col`] are resolved when the diagnostic is created so that callers never need
//! the sources to know where a problem is, only to draw it.

use serde::Serialize;
use std::fmt::Write as _;

/// Index of a file in [`Sources`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
pub struct FileId(pub u32);

/// A byte range in one source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct Span {
    pub file: FileId,
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(file: FileId, start: usize, end: usize) -> Span {
        Span { file, start, end }
    }
    /// The one-byte span just after this one: where something missing would have been.
    pub fn after(self) -> Span {
        Span::new(self.file, self.end, self.end + 1)
    }
    /// The smallest span covering both (same file assumed).
    pub fn to(self, other: Span) -> Span {
        Span {
            file: self.file,
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

/// One loaded source file.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The name as given (the top-level path, or an include path joined to its includer's dir).
    pub name: String,
    pub text: String,
    line_starts: Vec<usize>,
}

impl SourceFile {
    pub fn new(name: String, text: String) -> SourceFile {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        SourceFile {
            name,
            text,
            line_starts,
        }
    }

    /// 1-based line and column (in characters) of byte offset `pos`.
    pub fn line_col(&self, pos: usize) -> (u32, u32) {
        let pos = pos.min(self.text.len());
        let line = match self.line_starts.binary_search(&pos) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.line_starts[line];
        let col = self
            .text
            .get(start..pos)
            .map_or(pos - start, |s| s.chars().count());
        (line as u32 + 1, col as u32 + 1)
    }

    /// The text of 1-based line `line`, without its line terminator.
    pub fn line_text(&self, line: u32) -> &str {
        let i = (line as usize).saturating_sub(1);
        let start = self.line_starts.get(i).copied().unwrap_or(self.text.len());
        let end = self
            .line_starts
            .get(i + 1)
            .copied()
            .unwrap_or(self.text.len());
        self.text
            .get(start..end)
            .unwrap_or("")
            .trim_end_matches(['\n', '\r'])
    }
}

/// Every source file read during one compilation.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    files: Vec<SourceFile>,
}

impl Sources {
    pub fn add(&mut self, name: String, text: String) -> FileId {
        self.files.push(SourceFile::new(name, text));
        FileId(self.files.len() as u32 - 1)
    }
    pub fn get(&self, id: FileId) -> &SourceFile {
        // Ids are only made by `add` on this value, so they are in range.
        &self.files[id.0 as usize]
    }
    pub fn files(&self) -> &[SourceFile] {
        &self.files
    }
    /// The span of the directive word at `loc` (a location made by [`Sources::loc`]), when its
    /// file is one of these sources.
    pub fn span_at(&self, loc: &bext_ir::Loc) -> Option<Span> {
        let (i, f) = self
            .files
            .iter()
            .enumerate()
            .find(|(_, f)| f.name == loc.file)?;
        let line_start = *f.line_starts.get((loc.line as usize).checked_sub(1)?)?;
        let line = f.line_text(loc.line);
        let byte = line
            .char_indices()
            .nth((loc.col as usize).saturating_sub(1))
            .map_or(line.len(), |(b, _)| b);
        let word = line[byte..]
            .find(|c: char| c.is_whitespace() || c == ';' || c == '{' || c == '}')
            .unwrap_or(line.len() - byte);
        let start = line_start + byte;
        Some(Span::new(FileId(i as u32), start, start + word.max(1)))
    }

    /// The IR location of a span's start.
    pub fn loc(&self, span: Span) -> bext_ir::Loc {
        let f = self.get(span.file);
        let (line, col) = f.line_col(span.start);
        bext_ir::Loc {
            file: f.name.clone(),
            line,
            col,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// A secondary span with its own short message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Label {
    pub span: Span,
    pub file: String,
    pub line: u32,
    pub col: u32,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Stable code such as `E0101`; `W` codes are warnings.
    pub code: &'static str,
    pub severity: Severity,
    pub message: String,
    /// Primary span.
    pub span: Span,
    pub file: String,
    /// 1-based.
    pub line: u32,
    /// 1-based, in characters.
    pub col: u32,
    pub labels: Vec<Label>,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// rustc-style text: header, location, the source line with carets, labels, help.
    pub fn render_human(&self, sources: &Sources) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{}[{}]: {}",
            self.severity.as_str(),
            self.code,
            printable(&self.message)
        );
        let gutter = self
            .labels
            .iter()
            .map(|l| l.line)
            .chain([self.line])
            .max()
            .unwrap_or(1)
            .to_string()
            .len();
        let pad = " ".repeat(gutter);
        let _ = writeln!(out, "{pad}--> {}:{}:{}", self.file, self.line, self.col);
        let _ = writeln!(out, "{pad} |");
        let mut snippets = vec![(self.span, self.line, self.col, "^", None)];
        for l in &self.labels {
            snippets.push((l.span, l.line, l.col, "-", Some(l)));
        }
        // In source order within the primary file, like rustc; other files after it.
        snippets.sort_by_key(|(span, line, col, _, _)| {
            (span.file != self.span.file, span.file, *line, *col)
        });
        let mut drawn: Option<(FileId, u32)> = None;
        for (span, line, col, mark, label) in snippets {
            if (span.file.0 as usize) >= sources.files().len() {
                continue;
            }
            let f = sources.get(span.file);
            if let Some(l) = label {
                if l.file != self.file {
                    let _ = writeln!(out, "{pad}::: {}:{}:{}", l.file, l.line, l.col);
                }
            }
            let text = f.line_text(line);
            let (end_line, end_col) = f.line_col(span.end);
            let width = if end_line == line && end_col > col {
                (end_col - col) as usize
            } else if end_line == line {
                1
            } else {
                text.chars().count().saturating_sub(col as usize - 1).max(1)
            };
            // Marks on one line share one copy of it.
            if drawn != Some((span.file, line)) {
                let _ = writeln!(out, "{:>gutter$} | {}", line, printable(text));
                drawn = Some((span.file, line));
            }
            let msg = printable(label.map(|l| l.message.as_str()).unwrap_or(""));
            let _ = writeln!(
                out,
                "{pad} | {}{}{}{}",
                " ".repeat(col as usize - 1),
                mark.repeat(width),
                if msg.is_empty() { "" } else { " " },
                msg
            );
        }
        if let Some(h) = &self.help {
            let _ = writeln!(out, "{pad} = help: {}", printable(h));
        }
        out
    }

    /// One JSON object, without a trailing newline.
    pub fn render_json(&self) -> String {
        #[derive(Serialize)]
        struct J<'a> {
            code: &'a str,
            severity: Severity,
            file: &'a str,
            line: u32,
            column: u32,
            start: usize,
            end: usize,
            message: &'a str,
            labels: Vec<JL<'a>>,
            help: Option<&'a str>,
        }
        #[derive(Serialize)]
        struct JL<'a> {
            file: &'a str,
            line: u32,
            column: u32,
            message: &'a str,
        }
        let j = J {
            code: self.code,
            severity: self.severity,
            file: &self.file,
            line: self.line,
            column: self.col,
            start: self.span.start,
            end: self.span.end,
            message: &self.message,
            labels: self
                .labels
                .iter()
                .map(|l| JL {
                    file: &l.file,
                    line: l.line,
                    column: l.col,
                    message: &l.message,
                })
                .collect(),
            help: self.help.as_deref(),
        };
        // Serialising plain strings and integers cannot fail.
        serde_json::to_string(&j).unwrap_or_default()
    }
}

/// `s` with each control character shown as one replacement character (a tab as a space), so
/// that a configuration cannot send terminal escapes through `bext check` and carets stay
/// under the characters they point at.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\t' => ' ',
            c if c.is_control() => '\u{FFFD}',
            c => c,
        })
        .collect()
}

/// Collects diagnostics while a compilation runs.
#[derive(Debug, Default)]
pub struct Diags {
    pub list: Vec<Diagnostic>,
}

/// A diagnostic under construction; pushed by [`Diags::emit`].
pub struct Builder {
    code: &'static str,
    severity: Severity,
    message: String,
    span: Span,
    labels: Vec<(Span, String)>,
    help: Option<String>,
}

impl Builder {
    pub fn label(mut self, span: Span, msg: impl Into<String>) -> Builder {
        self.labels.push((span, msg.into()));
        self
    }
    pub fn help(mut self, h: impl Into<String>) -> Builder {
        self.help = Some(h.into());
        self
    }
    pub fn help_opt(mut self, h: Option<String>) -> Builder {
        self.help = h;
        self
    }
}

pub fn error(code: &'static str, span: Span, message: impl Into<String>) -> Builder {
    Builder {
        code,
        severity: Severity::Error,
        message: message.into(),
        span,
        labels: vec![],
        help: None,
    }
}

pub fn warning(code: &'static str, span: Span, message: impl Into<String>) -> Builder {
    Builder {
        severity: Severity::Warning,
        ..error(code, span, message)
    }
}

impl Builder {
    /// The finished diagnostic, its spans resolved to files, lines and columns in `sources`.
    pub fn build(self, sources: &Sources) -> Diagnostic {
        let resolve = |span: Span| {
            let f = sources.get(span.file);
            let (line, col) = f.line_col(span.start);
            (f.name.clone(), line, col)
        };
        let (file, line, col) = resolve(self.span);
        let labels = self
            .labels
            .into_iter()
            .map(|(span, message)| {
                let (file, line, col) = resolve(span);
                Label {
                    span,
                    file,
                    line,
                    col,
                    message,
                }
            })
            .collect();
        Diagnostic {
            code: self.code,
            severity: self.severity,
            message: self.message,
            span: self.span,
            file,
            line,
            col,
            labels,
            help: self.help,
        }
    }
}

impl Diags {
    pub fn emit(&mut self, sources: &Sources, b: Builder) {
        self.list.push(b.build(sources));
    }
    pub fn has_errors(&self) -> bool {
        self.list.iter().any(Diagnostic::is_error)
    }
}

/// E0501: a directive that is valid but that the engine of this version does not run. `bext
/// check` reports it like any other error, and `bext run` refuses to start: a configured
/// feature is never silently ignored. `None` when `loc` is not in `sources`.
pub fn not_implemented(
    sources: &Sources,
    directive: &str,
    loc: &bext_ir::Loc,
) -> Option<Diagnostic> {
    let span = sources.span_at(loc)?;
    let span = word_in_directive(sources, span, directive).unwrap_or(span);
    let b = error(
        "E0501",
        span,
        format!("`{directive}` is not implemented by this version of bext's engine"),
    )
    .help("remove it, or run a version of bext that implements it; `bext run` refuses this configuration");
    Some(b.build(sources))
}

/// The span of the first word `directive` (its first word, `static` of `static FILES`) in the
/// directive that starts at `at`, its arguments and blocks included; strings and comments are
/// skipped. The IR keeps the place of a directive, not of each flag (`http3` on a `listen`, the
/// `static` action of a `route`): this finds the word itself.
fn word_in_directive(sources: &Sources, at: Span, directive: &str) -> Option<Span> {
    let word = directive.split_whitespace().next()?;
    let text = &sources.get(at.file).text;
    let bytes = text.as_bytes();
    // A word, not a piece of a path or a name: white space or a separator on both sides.
    let boundary = |i: Option<usize>| {
        i.and_then(|i| bytes.get(i))
            .is_none_or(|c| c.is_ascii_whitespace() || b"{};,".contains(c))
    };
    let mut depth = 0usize;
    let mut i = at.start;
    while i < bytes.len() {
        match bytes[i] {
            b'{' => depth += 1,
            b'}' if depth == 0 => return None,
            // A flag may follow a block on the same line (`listen :443 tls { ... } http3`).
            b'}' => depth -= 1,
            b'\n' | b';' if depth == 0 => return None,
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            q @ (b'"' | b'\'') => {
                i += 1;
                while i < bytes.len() && bytes[i] != q && bytes[i] != b'\n' {
                    i += usize::from(q == b'"' && bytes[i] == b'\\') + 1;
                }
            }
            _ if text[i..].starts_with(word)
                && boundary(i.checked_sub(1))
                && boundary(Some(i + word.len())) =>
            {
                return Some(Span::new(at.file, i, i + word.len()));
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Edit distance with adjacent transpositions (optimal string alignment), for did-you-mean
/// suggestions over short names: `stie` is one edit from `site`, as a typist would count it.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows: two back for transpositions.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 0..a.len() {
        cur[0] = i + 1;
        for j in 0..b.len() {
            let sub = prev[j] + usize::from(a[i] != b[j]);
            let mut d = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
            if i > 0 && j > 0 && a[i] == b[j - 1] && a[i - 1] == b[j] {
                d = d.min(before[j - 1] + 1);
            }
            cur[j + 1] = d;
        }
        std::mem::swap(&mut before, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The closest candidate to `word`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `help: did you mean `x`?` text, when there is a close candidate.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    did_you_mean(word, candidates).map(|c| format!("did you mean `{c}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distances() {
        for (a, b, d) in [
            ("proxy", "proxy", 0),
            ("prxy", "proxy", 1),
            ("", "ab", 2),
            ("kitten", "sitting", 3),
            ("stie", "site", 1),
            ("lsiten", "listen", 1),
        ] {
            assert_eq!(edit_distance(a, b), d, "{a} {b}");
        }
        assert_eq!(
            did_you_mean("upstrem", ["upstream", "site"]),
            Some("upstream")
        );
        assert_eq!(did_you_mean("zzz", ["upstream", "site"]), None);
    }

    #[test]
    fn line_col_counts_characters() {
        let f = SourceFile::new("a".into(), "ab\né x\n".into());
        assert_eq!(f.line_col(0), (1, 1));
        assert_eq!(f.line_col(3), (2, 1));
        assert_eq!(f.line_col(6), (2, 3));
        assert_eq!(f.line_text(2), "é x");
    }
}
