//! The syntax tree: directives, arguments and blocks with byte spans, built from the pest parse.
//!
//! The tree keeps what the formatter needs (raw argument text, comments, layout hints) and what
//! the checker needs (classified arguments, decoded strings, spans). Decoding errors in strings
//! are reported here, so the checker only ever sees well-formed values.

use crate::diag::{self, Diags, FileId, Sources, Span};
use pest::iterators::Pair;
use pest::Parser as _;

#[derive(pest_derive::Parser)]
#[grammar = "bext.pest"]
struct Grammar;

/// A parsed file or block body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    pub items: Vec<Directive>,
    pub comments: Vec<Comment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    /// Including the `#`, without the line terminator.
    pub text: String,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub name: String,
    pub name_span: Span,
    pub args: Vec<Arg>,
    /// From the name to the end of the last argument.
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    pub kind: ArgKind,
    /// The source text (for blocks: empty).
    pub raw: String,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgKind {
    /// A bare word: a name, address, path, host, operator, CIDR, rate...
    Word,
    /// A quoted string, decoded. `raw` keeps the quotes.
    Str(String),
    /// Digits only.
    Number,
    /// Digits and a duration unit (`ms s m h d`).
    Duration,
    /// Digits and a size unit (`b kb mb gb`).
    Size,
    /// Digits and `%`.
    Percent,
    /// `(` or `)`.
    Paren,
    Block(Block),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub body: Body,
    /// The block was written on one line (the formatter keeps short blocks short).
    pub one_line: bool,
}

impl Arg {
    pub fn block(&self) -> Option<&Block> {
        match &self.kind {
            ArgKind::Block(b) => Some(b),
            _ => None,
        }
    }
    /// The text of a word or the decoded value of a string.
    pub fn text(&self) -> &str {
        match &self.kind {
            ArgKind::Str(s) => s,
            _ => &self.raw,
        }
    }
    /// The source span of bytes `from..to` of [`Arg::text`]: inside the quotes of a string,
    /// covering a whole escape (`\n`, `\u{..}`) when the range starts or ends in what it decodes
    /// to. A range at the end of the text points just before the closing quote.
    pub fn span_of(&self, from: usize, to: usize) -> Span {
        let s = self.span;
        let at = |a: usize, b: usize| Span::new(s.file, a, b.max(a + 1));
        match &self.kind {
            ArgKind::Str(_) if self.raw.starts_with('"') && self.raw.len() >= 2 => {
                let base = s.start + 1;
                let map = decoded_map(&self.raw[1..self.raw.len() - 1]);
                let inner_end = self.raw.len() - 2;
                let start = map
                    .iter()
                    .find(|(d, len, _, _)| d + len > from)
                    .map_or(inner_end, |m| m.2);
                let end = map
                    .iter()
                    .find(|(d, len, _, _)| d + len >= to.max(from + 1))
                    .map_or(inner_end, |m| m.3);
                at(base + start, base + end)
            }
            ArgKind::Str(_) => at(s.start + 1 + from, s.start + 1 + to),
            _ => at(s.start + from, s.start + to),
        }
    }
    pub fn is_word(&self, w: &str) -> bool {
        matches!(self.kind, ArgKind::Word) && self.raw == w
    }
    /// A short description for "expected X, found Y" messages.
    pub fn describe(&self) -> String {
        match &self.kind {
            ArgKind::Word => format!("`{}`", self.raw),
            ArgKind::Str(_) => format!("string {}", self.raw),
            ArgKind::Number => format!("number `{}`", self.raw),
            ArgKind::Duration => format!("duration `{}`", self.raw),
            ArgKind::Size => format!("size `{}`", self.raw),
            ArgKind::Percent => format!("percentage `{}`", self.raw),
            ArgKind::Paren => format!("`{}`", self.raw),
            ArgKind::Block(_) => "a block".to_string(),
        }
    }
}

/// For the inside of a double-quoted string: per decoded character, (decoded offset, decoded
/// length, source start, source end), offsets relative to the inside of the quotes. Escapes that
/// decode to nothing (reported as E0002) have length 0.
fn decoded_map(inner: &str) -> Vec<(usize, usize, usize, usize)> {
    let mut out = vec![];
    let mut decoded = 0;
    let mut chars = inner.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let (len, end) = if c != '\\' {
            (c.len_utf8(), i + c.len_utf8())
        } else {
            match chars.next() {
                None => (0, i + 1),
                Some((j, 'u')) if chars.peek().map(|(_, c)| *c) == Some('{') => {
                    let mut hex = String::new();
                    let mut end = j + 1;
                    for (k, h) in chars.by_ref() {
                        end = k + h.len_utf8();
                        if h == '}' {
                            break;
                        }
                        if h != '{' {
                            hex.push(h);
                        }
                    }
                    let ch = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32);
                    (ch.map_or(0, char::len_utf8), end)
                }
                Some((j, e)) => (
                    usize::from(matches!(e, '"' | '\\' | 'n' | 't' | 'r')),
                    j + e.len_utf8(),
                ),
            }
        };
        out.push((decoded, len, i, end));
        decoded += len;
    }
    out
}

/// Parses one source file, reporting syntax errors (E0001).
///
/// After a syntax error the top-level item that contains it is blanked out (its bytes become
/// spaces, so every offset stays valid) and the file is parsed again, so that one run reports
/// the syntax errors of several items and the rest of the file can still be checked. Returns
/// `None` only when nothing could be recovered.
pub fn parse(sources: &Sources, file: FileId, diags: &mut Diags) -> Option<Body> {
    let mut text = sources.get(file).text.clone();
    // Sixteen syntax errors are enough to act on; past that, stop rather than re-parse.
    for _ in 0..16 {
        match Grammar::parse(Rule::file, &text) {
            Ok(mut pairs) => {
                let file_pair = pairs.next()?;
                let mut b = Build {
                    sources,
                    file,
                    diags,
                };
                return Some(b.body(file_pair));
            }
            Err(e) => {
                let start = report_syntax_error(sources, file, &text, &e, diags);
                let (mut from, to) = top_level_item(&text, start);
                // A `{` on a line of its own belongs to the directive before it, which would
                // otherwise be reported again for lacking its block.
                if text[start..].starts_with('{') {
                    if let Some(prev) = text[..start].rfind(|c: char| !c.is_whitespace()) {
                        from = from.min(top_level_item(&text, prev).0);
                    }
                }
                if from >= to {
                    return None;
                }
                let next = blank(&text, from, to);
                if next == text {
                    // Nothing left to skip: the same error would come back.
                    return None;
                }
                text = next;
            }
        }
    }
    None
}

fn report_syntax_error(
    sources: &Sources,
    file: FileId,
    text: &str,
    e: &pest::error::Error<Rule>,
    diags: &mut Diags,
) -> usize {
    let (start, end) = match e.location {
        pest::error::InputLocation::Pos(p) => (p, p),
        pest::error::InputLocation::Span((s, e)) => (s, e),
    };
    let found = text[start..]
        .chars()
        .next()
        .map_or("end of file".to_string(), |c| match c {
            '\n' | '\r' => "end of line".to_string(),
            c => format!("`{c}`"),
        });
    let expected = match &e.variant {
        pest::error::ErrorVariant::ParsingError { positives, .. } => {
            let mut names: Vec<&str> = positives.iter().map(|r| rule_name(*r)).collect();
            names.sort_unstable();
            names.dedup();
            names.join(", ")
        }
        pest::error::ErrorVariant::CustomError { message } => message.clone(),
    };
    let end = end.max(start + text[start..].chars().next().map_or(0, char::len_utf8));
    let span = Span::new(file, start, end);
    let unclosed = unclosed_brace(text);
    // Where a directive should start: only blanks since a line start, `;` or `{`.
    let at_line_start = text[..start]
        .rsplit(['\n', ';', '{'])
        .next()
        .is_some_and(|t| t.chars().all(|c| c == ' ' || c == '\t'));
    let mut b = match (found.as_str(), unclosed) {
        ("end of file", Some(open)) => match left_open(text) {
            Some((open, before)) => {
                let (line, _) = sources.get(file).line_col(before);
                diag::error(
                    "E0001",
                    Span::new(file, open, open + 1),
                    "this block is not closed",
                )
                .label(
                    Span::new(file, before, before + 1),
                    "the indentation says the block ends before this line",
                )
                .help(format!("add the missing `}}` before line {line}"))
            }
            None => diag::error(
                "E0001",
                span,
                "unexpected end of file: a block is not closed",
            )
            .label(
                Span::new(file, open, open + 1),
                "this block is never closed",
            )
            .help("add the missing `}`"),
        },
        ("`{`", _) if at_line_start => {
            let previous = text[..start]
                .lines()
                .rev()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with('#'))
                .unwrap_or("route /x");
            diag::error(
                "E0001",
                span,
                "a block must open on the line of its directive",
            )
            .help(format!(
                "move this `{{` to the end of the previous line: `{previous} {{`"
            ))
        }
        ("`\"`" | "`'`", _) if !at_line_start => diag::error("E0001", span, "unterminated string")
            .help("close the string with a matching quote on the same line"),
        ("`}`", _) => {
            diag::error("E0001", span, "unexpected `}`").help("this `}` has no matching `{`")
        }
        (f, _) if at_line_start => diag::error(
            "E0001",
            span,
            format!("expected a directive name, found {f}"),
        )
        .help("a directive starts with a name such as `site`, `route` or `proxy`"),
        (f, _) => diag::error("E0001", span, format!("syntax error: unexpected {f}")),
    };
    if found == "end of line" && expected.is_empty() {
        b = diag::error("E0001", span, "unterminated string")
            .help("close the string with a matching quote on the same line");
    }
    diags.emit(sources, b);
    start
}

/// The byte range of the top-level item around `pos`: from the start of the line where it
/// begins to the end of the line where its braces close (or the end of the file).
fn top_level_item(text: &str, pos: usize) -> (usize, usize) {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut item_start = 0;
    let mut i = 0;
    let mut in_item = false;
    let mut end = text.len();
    while i < bytes.len() {
        let c = bytes[i];
        if i >= pos && depth == 0 && in_item && (c == b'\n' || c == b';') {
            end = i + 1;
            break;
        }
        match c {
            b'\n' | b';' if depth == 0 => in_item = false,
            b' ' | b'\t' | b'\r' | b'\n' | b';' => {}
            _ => {
                if depth == 0 && !in_item && i <= pos {
                    item_start = i;
                }
                in_item = true;
            }
        }
        match c {
            b'{' => depth += 1,
            // A stray `}` at the top level is an item of its own.
            b'}' if depth == 0 && i >= pos => {
                end = i + 1;
                break;
            }
            b'}' if depth == 0 => {}
            b'}' => depth -= 1,
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' | b'\'' => {
                let q = c;
                i += 1;
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != q {
                    if q == b'"' && bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                if i < bytes.len() && bytes[i] == b'\n' {
                    // An unterminated string ends at its line; the line break still counts.
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    // Braces cannot be trusted around a syntax error (a `}` may sit inside an unterminated
    // string): the next line that starts a directive in the first column also ends the item.
    let line_end = text[pos.min(text.len())..]
        .find('\n')
        .map_or(text.len(), |n| pos + n);
    let next_item = text[line_end..]
        .match_indices('\n')
        .map(|(n, _)| line_end + n + 1)
        .find(|&at| bytes.get(at).is_some_and(u8::is_ascii_alphabetic));
    if let Some(next) = next_item {
        end = end.min(next);
    }
    (
        item_start.min(pos),
        end.min(text.len()).max(pos.min(text.len())),
    )
}

/// `text` with the bytes in `from..to` replaced by spaces, line breaks kept.
fn blank(text: &str, from: usize, to: usize) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, c) in text.char_indices() {
        if i >= from && i < to && c != '\n' {
            out.extend(std::iter::repeat_n(' ', c.len_utf8()));
        } else {
            out.push(c);
        }
    }
    out
}

/// In a file whose braces do not balance, the `{` most likely left open and the line where its
/// `}` is missing: the first block whose body has a line (not a `}`) indented no deeper than the
/// line that opened it. Indentation is what a reader goes by, so it points at the block the
/// writer meant, where the braces alone would blame the outermost block and the end of the file.
fn left_open(text: &str) -> Option<(usize, usize)> {
    // (offset of `{`, indentation of its line)
    let mut stack: Vec<(usize, usize)> = vec![];
    let mut line_start = 0;
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let trimmed = body.trim_start_matches([' ', '\t']);
        let indent = body.len() - trimmed.len();
        if !trimmed.is_empty() && !trimmed.starts_with('#') && !trimmed.starts_with('}') {
            // Innermost first: the deepest block this line leaves.
            if let Some(&(open, _)) = stack.iter().rev().find(|(_, ind)| indent <= *ind) {
                return Some((open, line_start + indent));
            }
        }
        let mut chars = body.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' => stack.push((line_start + i, indent)),
                '}' => {
                    stack.pop();
                }
                '#' => break,
                '"' | '\'' => {
                    let mut escaped = false;
                    for (_, d) in chars.by_ref() {
                        if d == c && !escaped {
                            break;
                        }
                        escaped = c == '"' && d == '\\' && !escaped;
                    }
                }
                _ => {}
            }
        }
        line_start += line.len();
    }
    None
}

/// The byte offset of the innermost `{` that is never closed, skipping strings and comments.
fn unclosed_brace(text: &str) -> Option<usize> {
    let mut stack = vec![];
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '{' => stack.push(i),
            '}' => {
                stack.pop();
            }
            '#' => {
                for (_, c) in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '"' | '\'' => {
                let mut escaped = false;
                for (_, d) in chars.by_ref() {
                    if d == '\n' || (d == c && !escaped) {
                        break;
                    }
                    escaped = c == '"' && d == '\\' && !escaped;
                }
            }
            _ => {}
        }
    }
    stack.pop()
}

fn rule_name(r: Rule) -> &'static str {
    match r {
        Rule::name | Rule::directive => "a directive",
        Rule::block => "`{`",
        Rule::EOI => "end of file",
        Rule::string | Rule::str_inner => "a string",
        Rule::raw_string | Rule::raw_inner => "a string",
        Rule::word | Rule::number | Rule::duration | Rule::size | Rule::percent | Rule::paren => {
            "an argument"
        }
        _ => "",
    }
}

struct Build<'a> {
    sources: &'a Sources,
    file: FileId,
    diags: &'a mut Diags,
}

impl Build<'_> {
    fn span(&self, p: &Pair<'_, Rule>) -> Span {
        let s = p.as_span();
        Span::new(self.file, s.start(), s.end())
    }

    fn body(&mut self, p: Pair<'_, Rule>) -> Body {
        let mut body = Body {
            items: vec![],
            comments: vec![],
        };
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::directive => body.items.push(self.directive(c)),
                Rule::comment => body.comments.push(Comment {
                    text: c.as_str().trim_end().to_string(),
                    span: self.span(&c),
                }),
                _ => {}
            }
        }
        body
    }

    fn directive(&mut self, p: Pair<'_, Rule>) -> Directive {
        let span = self.span(&p);
        let mut inner = p.into_inner();
        let (name, name_span) = match inner.next() {
            Some(n) => (n.as_str().to_string(), self.span(&n)),
            None => (String::new(), span),
        };
        let args = inner.map(|a| self.arg(a)).collect();
        Directive {
            name,
            name_span,
            args,
            span,
        }
    }

    fn arg(&mut self, p: Pair<'_, Rule>) -> Arg {
        let span = self.span(&p);
        let raw = p.as_str().to_string();
        let kind = match p.as_rule() {
            Rule::block => {
                let one_line = !raw.contains('\n');
                return Arg {
                    kind: ArgKind::Block(Block {
                        body: self.body(p),
                        one_line,
                    }),
                    raw: String::new(),
                    span,
                };
            }
            Rule::string => ArgKind::Str(self.unescape(&raw, span.start)),
            // The grammar guarantees the quotes, so the slice is in range.
            Rule::raw_string => ArgKind::Str(raw[1..raw.len() - 1].to_string()),
            Rule::number => ArgKind::Number,
            Rule::duration => ArgKind::Duration,
            Rule::size => ArgKind::Size,
            Rule::percent => ArgKind::Percent,
            Rule::paren => ArgKind::Paren,
            _ => ArgKind::Word,
        };
        Arg { kind, raw, span }
    }

    /// Decodes a double-quoted string (with its quotes) that starts at byte `at`.
    fn unescape(&mut self, raw: &str, at: usize) -> String {
        // The grammar guarantees the quotes, so the slice is in range.
        let inner = &raw[1..raw.len() - 1];
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            let Some((_, e)) = chars.next() else { break };
            match e {
                '"' => out.push('"'),
                '\\' => out.push('\\'),
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                'u' => {
                    let mut hex = String::new();
                    let mut closed = false;
                    if chars.peek().map(|(_, c)| *c) == Some('{') {
                        chars.next();
                        for (_, h) in chars.by_ref() {
                            if h == '}' {
                                closed = true;
                                break;
                            }
                            hex.push(h);
                        }
                    }
                    let decoded = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32);
                    match decoded {
                        Some(ch) if closed && !hex.is_empty() && hex.len() <= 6 => out.push(ch),
                        _ => {
                            let s = Span::new(self.file, at + 1 + i, at + 1 + i + 2 + hex.len());
                            self.diags.emit(
                                self.sources,
                                diag::error("E0002", s, "invalid unicode escape")
                                    .help("write a code point as `\\u{1F600}`"),
                            );
                        }
                    }
                }
                other => {
                    let s = Span::new(self.file, at + 1 + i, at + 1 + i + 1 + other.len_utf8());
                    self.diags.emit(
                        self.sources,
                        diag::error("E0002", s, format!("unknown escape `\\{other}` in a string"))
                            .help("escapes are \\\" \\\\ \\n \\t \\r \\u{..}; for a regex use a single-quoted raw string: '^/u/\\d+$'"),
                    );
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(src: &str) -> Body {
        let mut s = Sources::default();
        let f = s.add("t".into(), src.into());
        let mut d = Diags::default();
        let b = parse(&s, f, &mut d);
        assert!(d.list.is_empty(), "{:?}", d.list);
        b.unwrap()
    }

    #[test]
    fn classifies_arguments() {
        let b = parse_ok("x 16kb 500ms 10m 20% 42 a:1 \"s\\n\" 'r\\d' ( ) { y }\n");
        let kinds: Vec<_> = b.items[0]
            .args
            .iter()
            .map(|a| match &a.kind {
                ArgKind::Word => "word",
                ArgKind::Str(_) => "str",
                ArgKind::Number => "num",
                ArgKind::Duration => "dur",
                ArgKind::Size => "size",
                ArgKind::Percent => "pct",
                ArgKind::Paren => "paren",
                ArgKind::Block(_) => "block",
            })
            .collect();
        assert_eq!(
            kinds,
            ["size", "dur", "dur", "pct", "num", "word", "str", "str", "paren", "paren", "block"]
        );
        assert_eq!(b.items[0].args[6].text(), "s\n");
        assert_eq!(b.items[0].args[7].text(), "r\\d");
    }

    #[test]
    fn spans_inside_strings_follow_escapes() {
        let b = parse_ok("x \"a\\nb\\u{1}c\" 'r(s'\n");
        let (s, r) = (&b.items[0].args[0], &b.items[0].args[1]);
        assert_eq!(s.text(), "a\nb\u{1}c");
        // `\n` (decoded byte 1) is source bytes 4..6; `\u{1}` (decoded 3) is 7..12.
        assert_eq!((s.span_of(1, 2).start, s.span_of(1, 2).end), (4, 6));
        assert_eq!((s.span_of(3, 4).start, s.span_of(3, 4).end), (7, 12));
        assert_eq!(s.span_of(4, 5).start, 12);
        assert_eq!(r.span_of(1, 2).start, r.span.start + 2);
    }

    #[test]
    fn separators_and_comments() {
        let b = parse_ok("# top\na 1; b 2 # trailing\n\nc { d; e }\n");
        assert_eq!(b.items.len(), 3);
        assert_eq!(b.comments.len(), 2);
    }
}
