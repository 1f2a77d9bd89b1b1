//! Checks and lowering: from directives (with spans) to the IR, reporting every mistake.
//!
//! Each block kind has a table of the directives it accepts. A directive is checked argument by
//! argument through [`Args`], which reports a missing, extra or ill-typed argument at its own
//! span and keeps going, so one run reports every mistake. What can be lowered is lowered even
//! when something else is wrong; the caller discards the IR if any error was reported.
//!
//! Cross-references (upstream and WAF names), duplicate names, listener ports and the route
//! table are checked after every item is lowered, with the spans kept in [`Spans`].

use crate::ast::{Arg, ArgKind, Body, Directive};
use crate::diag::{self, suggest, Diags, Sources, Span};
use bext_ir::*;
use std::collections::HashMap;

/// Directive names accepted in each block kind, used for "unknown directive" and did-you-mean.
pub const CONTEXTS: &[(&str, &[&str])] = &[
    (
        "top level",
        &["global", "listen", "upstream", "waf", "site", "include"],
    ),
    (
        "global",
        &[
            "workers",
            "admin",
            "pid_file",
            "limits",
            "timeouts",
            "access_log",
            "trusted_proxies",
        ],
    ),
    (
        "limits",
        &[
            "header_bytes",
            "headers",
            "uri_bytes",
            "body",
            "connections",
            "keepalive_requests",
        ],
    ),
    ("global timeouts", &["header", "body", "idle", "drain"]),
    ("tls", &["cert"]),
    (
        "upstream",
        &[
            "server",
            "balance",
            "keepalive",
            "health",
            "eject",
            "retry",
            "timeouts",
            "max_connections",
            "max_pending",
        ],
    ),
    (
        "upstream timeouts",
        &["connect", "response", "idle", "tunnel"],
    ),
    ("waf", &["ruleset", "rule", "inspect_body"]),
    ("site", &["route", "merge_slashes", "escaped_slashes"]),
    (
        "route",
        &[
            "method",
            "header",
            "query",
            "proxy",
            "respond",
            "redirect",
            "static",
            "strip_prefix",
            "rewrite",
            "request_header",
            "response_header",
            "cache",
            "compress",
            "waf",
            "rate_limit",
            "plugin",
            "request_buffering",
        ],
    ),
    ("cache", &["ttl", "max", "stale_while_revalidate"]),
    ("compress", &["level", "min_size", "types"]),
];

/// Built-in WAF rule sets.
pub const RULESETS: &[&str] = &[
    "builtin/sqli",
    "builtin/xss",
    "builtin/traversal",
    "builtin/scanners",
];

fn names(ctx: &str) -> &'static [&'static str] {
    CONTEXTS
        .iter()
        .find(|(c, _)| *c == ctx)
        .map_or(&[], |(_, n)| n)
}

/// Spans kept beside the IR for the checks that run after lowering.
#[derive(Debug, Default)]
pub struct Spans {
    pub upstreams: Vec<Span>,
    pub wafs: Vec<Span>,
    pub listeners: Vec<Span>,
    /// Per site: the span of its host list, and per route its spans.
    pub sites: Vec<(Span, Vec<RouteSpans>)>,
    pub site_hosts: Vec<Vec<Span>>,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct RouteSpans {
    /// The `route` keyword.
    pub head: Span,
    /// The path pattern.
    pub path: Span,
    pub proxy: Option<Span>,
    pub waf: Option<Span>,
    pub redirect: Option<Span>,
}

pub struct Lower<'a> {
    pub sources: &'a Sources,
    pub diags: &'a mut Diags,
    pub config: Config,
    pub spans: Spans,
    /// Check the files the configuration names (the admin token file). Off for input that
    /// must not make the compiler read files (see [`crate::Options`]).
    pub read_files: bool,
    /// Diagnostics reported before the current directive: leftover arguments of a directive
    /// that already has an error are not reported again.
    mark: usize,
    /// Some reference may have been lost to an earlier error (an unknown top-level directive,
    /// an error inside a site): "never used" warnings would be follow-on noise.
    refs_uncertain: bool,
    /// A listener may have been lost to an earlier error: "no listener" would be noise.
    listen_uncertain: bool,
    /// Regular expressions compiled so far (route paths, rewrites, conditions).
    regexes: usize,
    /// The directive whose arguments are being checked, for help lines.
    current: String,
}

/// At most this many routes in one site (E0231).
pub const MAX_ROUTES_PER_SITE: usize = 10_000;
/// At most this many regular expressions in one configuration (E0232).
pub const MAX_REGEXES: usize = 1_000;

/// A cursor over a directive's arguments.
struct Args<'d> {
    d: &'d Directive,
    i: usize,
}

impl<'d> Args<'d> {
    fn new(d: &'d Directive) -> Args<'d> {
        Args { d, i: 0 }
    }
    fn next(&mut self) -> Option<&'d Arg> {
        let a = self.d.args.get(self.i);
        self.i += 1;
        a
    }
    fn peek(&self) -> Option<&'d Arg> {
        self.d.args.get(self.i)
    }
    /// Consumes the next argument if it is the word `w`.
    fn eat(&mut self, w: &str) -> bool {
        if self.peek().is_some_and(|a| a.is_word(w)) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    /// Where a missing argument would have been: just after the last one.
    fn end_span(&self) -> Span {
        let last = self.d.args.last().map_or(self.d.name_span, |a| a.span);
        Span::new(last.file, last.end, last.end + 1)
    }
}

impl<'a> Lower<'a> {
    pub fn new(sources: &'a Sources, diags: &'a mut Diags) -> Lower<'a> {
        Lower {
            sources,
            diags,
            mark: 0,
            refs_uncertain: false,
            listen_uncertain: false,
            regexes: 0,
            current: String::new(),
            config: Config::default(),
            spans: Spans::default(),
            read_files: true,
        }
    }

    fn emit(&mut self, b: diag::Builder) {
        self.diags.emit(self.sources, b);
    }

    fn loc(&self, s: Span) -> Loc {
        self.sources.loc(s)
    }

    // ---------------------------------------------------------------- argument helpers

    fn missing(&mut self, a: &Args<'_>, what: &str) {
        let b = diag::error(
            "E0104",
            a.end_span(),
            format!("`{}` needs {what}", a.d.name),
        )
        .label(a.d.name_span, "in this directive")
        .help_opt(usage_help(&a.d.name, what));
        self.emit(b);
    }

    /// The next argument, or E0104 naming `what` was expected.
    fn need<'d>(&mut self, a: &mut Args<'d>, what: &str) -> Option<&'d Arg> {
        match a.next() {
            Some(x) => Some(x),
            None => {
                self.missing(a, what);
                None
            }
        }
    }

    fn wrong(&mut self, arg: &Arg, what: &str) {
        let help = match &arg.kind {
            ArgKind::Str(t) if what.contains("name") => {
                Some(format!("names are bare words: write `{t}` without quotes"))
            }
            _ => usage_help(&self.current, what),
        };
        self.emit(
            diag::error(
                "E0201",
                arg.span,
                format!("expected {what}, found {}", arg.describe()),
            )
            .help_opt(help),
        );
    }

    /// Starts checking a directive.
    fn args<'d>(&mut self, d: &'d Directive) -> Args<'d> {
        self.mark = self.diags.list.len();
        self.current.clone_from(&d.name);
        Args::new(d)
    }

    /// Reports the first argument left over, unless the directive already has an error.
    fn done(&mut self, a: &mut Args<'_>) {
        if self.diags.list.len() > self.mark {
            return;
        }
        if let Some(x) = a.next() {
            let name = a.d.name.clone();
            let mut b = diag::error(
                "E0105",
                x.span,
                format!("unexpected argument {} to `{name}`", x.describe()),
            );
            if x.block().is_some() {
                b = diag::error("E0106", x.span, format!("`{name}` does not take a block"));
            }
            self.emit(b.help_opt(usage_help(&name, "")));
        }
    }

    /// A word or string (for names, paths, values).
    fn text<'d>(&mut self, a: &mut Args<'d>, what: &str) -> Option<&'d Arg> {
        let x = self.need(a, what)?;
        match x.kind {
            ArgKind::Word | ArgKind::Str(_) | ArgKind::Number => Some(x),
            _ => {
                self.wrong(x, what);
                None
            }
        }
    }

    fn word<'d>(&mut self, a: &mut Args<'d>, what: &str) -> Option<&'d Arg> {
        let x = self.need(a, what)?;
        match x.kind {
            ArgKind::Word => Some(x),
            _ => {
                self.wrong(x, what);
                None
            }
        }
    }

    fn block<'d>(&mut self, a: &mut Args<'d>) -> Option<&'d Body> {
        match a.next() {
            Some(x) => match &x.kind {
                ArgKind::Block(b) => Some(&b.body),
                _ => {
                    self.wrong(x, "a block `{ ... }`");
                    None
                }
            },
            None => {
                let b = diag::error(
                    "E0106",
                    a.end_span(),
                    format!("`{}` needs a block `{{ ... }}`", a.d.name),
                )
                .help_opt(usage_help(&a.d.name, "a block"));
                self.emit(b);
                None
            }
        }
    }

    fn parse_digits(&mut self, digits: &str, span: Span) -> Option<u64> {
        match digits.parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => {
                self.emit(
                    diag::error("E0204", span, "number too large")
                        .help("the largest number is 18446744073709551615 (2^64 - 1)"),
                );
                None
            }
        }
    }

    fn number(&mut self, x: &Arg, min: u64, max: u64) -> Option<u64> {
        let negative = x
            .raw
            .strip_prefix('-')
            .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()));
        if !matches!(x.kind, ArgKind::Number) && !negative {
            self.wrong(x, "a number");
            return None;
        }
        let n = x.raw.parse::<u64>().ok();
        match n {
            Some(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                let help = if negative {
                    "numbers are never negative here".to_string()
                } else if n.is_some_and(|n| n < min) {
                    format!("the smallest allowed value is {min}")
                } else {
                    format!("the largest allowed value is {max}")
                };
                self.emit(
                    diag::error(
                        "E0204",
                        x.span,
                        format!("`{}` is out of range: expected {min} to {max}", x.raw),
                    )
                    .help(help),
                );
                None
            }
        }
    }

    fn next_number(&mut self, a: &mut Args<'_>, min: u64, max: u64) -> Option<u64> {
        let x = self.need(a, "a number")?;
        self.number(x, min, max)
    }

    fn next_u32(&mut self, a: &mut Args<'_>, min: u32) -> Option<u32> {
        self.next_number(a, u64::from(min), u64::from(u32::MAX))
            .map(|n| n as u32)
    }

    fn size(&mut self, x: &Arg) -> Option<u64> {
        let split = x
            .raw
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(x.raw.len());
        let (digits, unit) = x.raw.split_at(split);
        match x.kind {
            ArgKind::Size => {}
            ArgKind::Number | ArgKind::Word | ArgKind::Duration if !digits.is_empty() => {
                let msg = if unit.is_empty() {
                    format!("size `{}` has no unit", x.raw)
                } else {
                    format!("unknown size unit `{unit}` in `{}`", x.raw)
                };
                self.emit(diag::error("E0202", x.span, msg).help(format!(
                    "sizes take a unit: b, kb, mb or gb (for example `{digits}kb`)"
                )));
                return None;
            }
            _ => {
                self.wrong(x, "a size such as `16kb`");
                return None;
            }
        }
        let n = self.parse_digits(digits, x.span)?;
        let mul: u64 = match unit {
            "b" => 1,
            "kb" => 1 << 10,
            "mb" => 1 << 20,
            _ => 1 << 30,
        };
        match n.checked_mul(mul) {
            Some(v) => Some(v),
            None => {
                self.emit(
                    diag::error("E0204", x.span, "size too large")
                        .help("the largest size is 17179869183gb (2^64 bytes)"),
                );
                None
            }
        }
    }

    fn next_size(&mut self, a: &mut Args<'_>) -> Option<u64> {
        let x = self.need(a, "a size such as `16kb`")?;
        self.size(x)
    }

    /// A duration in milliseconds.
    fn duration(&mut self, x: &Arg) -> Option<u64> {
        let split = x
            .raw
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(x.raw.len());
        let (digits, unit) = x.raw.split_at(split);
        match x.kind {
            ArgKind::Duration => {}
            ArgKind::Number | ArgKind::Word | ArgKind::Size if !digits.is_empty() => {
                let msg = if unit.is_empty() {
                    format!("duration `{}` has no unit", x.raw)
                } else {
                    format!("unknown duration unit `{unit}` in `{}`", x.raw)
                };
                self.emit(diag::error("E0203", x.span, msg).help(format!(
                    "durations take a unit: ms, s, m, h or d (for example `{digits}s`)"
                )));
                return None;
            }
            _ => {
                self.wrong(x, "a duration such as `2s`");
                return None;
            }
        }
        let n = self.parse_digits(digits, x.span)?;
        let mul: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            _ => 86_400_000,
        };
        match n.checked_mul(mul) {
            Some(v) => Some(v),
            None => {
                self.emit(
                    diag::error("E0204", x.span, "duration too large")
                        .help("the largest duration is 213503982d (2^64 milliseconds)"),
                );
                None
            }
        }
    }

    fn next_duration(&mut self, a: &mut Args<'_>) -> Option<u64> {
        let x = self.need(a, "a duration such as `2s`")?;
        self.duration(x)
    }

    fn percent(&mut self, x: &Arg) -> Option<u32> {
        if !matches!(x.kind, ArgKind::Percent) {
            self.wrong(x, "a percentage such as `20%`");
            return None;
        }
        let n = self.parse_digits(x.raw.trim_end_matches('%'), x.span)?;
        if n > 100 {
            self.emit(
                diag::error("E0213", x.span, "a percentage is at most 100%")
                    .help("write a percentage from 0% to 100%"),
            );
            return None;
        }
        Some(n as u32)
    }

    /// One of `choices`, or E0206 with a did-you-mean.
    fn keyword(&mut self, x: &Arg, what: &str, choices: &[&str]) -> Option<usize> {
        if let Some(i) = choices.iter().position(|c| x.is_word(c)) {
            return Some(i);
        }
        let help = suggest(x.text(), choices.iter().copied())
            .unwrap_or_else(|| format!("expected one of: {}", choices.join(", ")));
        self.emit(
            diag::error("E0206", x.span, format!("unknown {what} {}", x.describe())).help(help),
        );
        None
    }

    fn status(&mut self, x: &Arg, allowed: &[u16], what: &str) -> Option<u16> {
        let n = if matches!(x.kind, ArgKind::Number) {
            x.raw.parse::<u16>().ok()
        } else {
            None
        };
        match n {
            Some(n) if allowed.is_empty() && (100..=599).contains(&n) => Some(n),
            Some(n) if allowed.contains(&n) => Some(n),
            _ => {
                let help = if allowed.is_empty() {
                    "a status code is a number from 100 to 599".to_string()
                } else {
                    format!(
                        "{what} status codes are {}",
                        allowed
                            .iter()
                            .map(u16::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                self.emit(
                    diag::error(
                        "E0207",
                        x.span,
                        format!("invalid {what} status {}", x.describe()),
                    )
                    .help(help),
                );
                None
            }
        }
    }

    fn regex(&mut self, x: &Arg) -> Option<String> {
        let pattern = x.text().to_string();
        self.regexes += 1;
        if self.regexes == MAX_REGEXES + 1 {
            self.emit(
                diag::error(
                    "E0232",
                    x.span,
                    format!("more than {MAX_REGEXES} regular expressions in one configuration"),
                )
                .help("each regex costs memory and matching time on every request it may apply to: use prefix routes (`route /api/*`) and exact paths where a regex is not needed"),
            );
        }
        if self.regexes > MAX_REGEXES {
            return None;
        }
        match crate::routes::compile_regex(&pattern) {
            Ok(_) => Some(pattern),
            Err(e) => {
                let span = e.at.map_or(x.span, |(from, to)| x.span_of(from, to));
                let mut b = diag::error(
                    "E0208",
                    span,
                    format!("invalid regular expression: {}", e.message),
                );
                if span != x.span {
                    b = b.label(x.span, "in this pattern");
                }
                self.emit(b.help(e.help));
                None
            }
        }
    }

    /// E0230 when `x` (a value sent on the wire: `what`) holds a control character; a tab is
    /// allowed where `tab_ok` (inside header values, as HTTP allows). The caret points at the
    /// character, or at the escape that wrote it.
    fn no_control(&mut self, x: &Arg, what: &str, tab_ok: bool) -> bool {
        let bad = x
            .text()
            .char_indices()
            .find(|&(_, c)| c.is_control() && !(tab_ok && c == '\t'));
        let Some((i, c)) = bad else {
            return true;
        };
        let help = if c == '\n' || c == '\r' {
            "a line break would end the header line and let the value write headers of its own (response splitting): remove it"
        } else {
            "control characters are not allowed in HTTP header fields and request lines: remove it"
        };
        self.emit(
            diag::error(
                "E0230",
                x.span_of(i, i + c.len_utf8()),
                format!("{} in a {what}", crate::hints::control_name(c)),
            )
            .label(x.span, format!("in this {what}"))
            .help(help),
        );
        false
    }

    /// Checks the replacement `y` of a `rewrite` whose pattern `x` compiled, with the parser the
    /// router uses; false (after reporting E0216) when the router would refuse it.
    fn rewrite_replacement(&mut self, pattern: &str, x: &Arg, y: &Arg) -> bool {
        use bext_ir::routing::{max_group, parse_replacement};
        let text = y.text();
        // Point inside the string, at the piece at fault.
        let at = |start: usize, end: usize| y.span_of(start, end);
        let parts = match parse_replacement(text) {
            Ok(p) => p,
            Err(e) => {
                self.emit(diag::error("E0216", at(e.start, e.end), e.message).help(
                    "a replacement is a path with `$1`..`$9` for groups, `{path}` and `{query}`",
                ));
                return false;
            }
        };
        let groups = regex_syntax::parse(pattern)
            .map(|h| h.properties().explicit_captures_len())
            .unwrap_or(0);
        if let Some((g, start)) = max_group(&parts) {
            if usize::from(g) > groups {
                let plural = if groups == 1 { "" } else { "s" };
                self.emit(
                    diag::error(
                        "E0216",
                        at(start, start + 2),
                        format!("`${g}` refers to a capture group the pattern does not have"),
                    )
                    .label(
                        x.span,
                        format!("this pattern has {groups} capture group{plural}"),
                    )
                    .help("add a group in parentheses to the pattern, or use a lower number"),
                );
                return false;
            }
        }
        true
    }

    fn path(&mut self, x: &Arg) -> Option<String> {
        let p = x.text();
        if !p.starts_with('/') {
            self.emit(
                diag::error(
                    "E0210",
                    x.span,
                    format!("a path must start with `/`, found {}", x.describe()),
                )
                .help(format!("write `/{}`", p.trim_start_matches('/'))),
            );
            return None;
        }
        if !self.no_control(x, "path", false) {
            return None;
        }
        if p.chars().any(|c| c.is_whitespace()) {
            self.emit(
                diag::error("E0210", x.span, "a path cannot contain spaces")
                    .help("write a space in a path as `%20`"),
            );
            return None;
        }
        Some(p.to_string())
    }

    fn header_name(&mut self, x: &Arg) -> Option<String> {
        let n = x.text();
        let tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if n.is_empty() || !n.chars().all(tchar) {
            self.emit(
                diag::error(
                    "E0211",
                    x.span,
                    format!("invalid header name {}", x.describe()),
                )
                .help("header names are tokens: letters, digits and ! # $ % & ' * + - . ^ _ ` | ~"),
            );
            return None;
        }
        Some(n.to_string())
    }

    fn value(&mut self, a: &mut Args<'_>, what: &str) -> Option<String> {
        self.text(a, what).map(|x| x.text().to_string())
    }

    /// Checks `d` against the directives known in `ctx`; false (after reporting) if unknown.
    fn known(&mut self, ctx: &str, d: &Directive) -> bool {
        if names(ctx).contains(&d.name.as_str()) {
            return true;
        }
        let elsewhere: Vec<&str> = CONTEXTS
            .iter()
            .filter(|(_, n)| n.contains(&d.name.as_str()))
            .map(|(c, _)| *c)
            .collect();
        let b = if d.name == "include" {
            diag::error(
                "E0005",
                d.name_span,
                "`include` is only allowed at the top level",
            )
            .help("move the include out of this block")
        } else if !elsewhere.is_empty() {
            let help = match (d.name.as_str(), ctx) {
                ("server", "top level") => crate::hints::nginx("server").map(str::to_string),
                ("listen", _) => Some(
                    "`listen` belongs at the top level: every site is served on every listener"
                        .to_string(),
                ),
                _ => None,
            };
            diag::error(
                "E0102",
                d.name_span,
                format!("`{}` is not allowed in {}", d.name, describe_ctx(ctx)),
            )
            .help(help.unwrap_or_else(|| {
                format!("`{}` belongs in {}", d.name, describe_ctx(elsewhere[0]))
            }))
        } else {
            let nginx = crate::hints::nginx(&d.name).map(str::to_string);
            let help = nginx
                .or_else(|| suggest(&d.name, names(ctx).iter().copied()))
                .or_else(|| {
                    let all = CONTEXTS.iter().flat_map(|(_, n)| n.iter().copied());
                    suggest(&d.name, all)
                        .map(|s| format!("{s} (not allowed in {} though)", describe_ctx(ctx)))
                })
                .or_else(|| {
                    let mut known = names(ctx).to_vec();
                    known.sort_unstable();
                    Some(format!(
                        "{} accepts: {}",
                        describe_ctx(ctx),
                        known.join(", ")
                    ))
                });
            diag::error(
                "E0101",
                d.name_span,
                format!("unknown directive `{}` in {}", d.name, describe_ctx(ctx)),
            )
            .help_opt(help)
        };
        self.emit(b);
        false
    }

    /// Reports a second occurrence of a directive that may appear once.
    fn once(&mut self, seen: &mut HashMap<String, Span>, d: &Directive) -> bool {
        if let Some(first) = seen.get(&d.name) {
            let b = diag::error(
                "E0103",
                d.name_span,
                format!("`{}` is given more than once", d.name),
            )
            .label(*first, "first given here")
            .help("keep one of them");
            self.emit(b);
            return false;
        }
        seen.insert(d.name.clone(), d.name_span);
        true
    }

    // ---------------------------------------------------------------- top level

    /// Lowers the top-level directives (includes already expanded by the caller).
    pub fn top(&mut self, items: &[Directive]) {
        let mut seen = HashMap::new();
        for d in items {
            if !self.known("top level", d) {
                // A block may have been a site that used upstreams; a name close to `listen`
                // may have been the listener.
                self.refs_uncertain |= d.args.iter().any(|x| x.block().is_some());
                self.listen_uncertain |= diag::did_you_mean(&d.name, ["listen"]).is_some();
                continue;
            }
            match d.name.as_str() {
                "global" if self.once(&mut seen, d) => self.global(d),
                "listen" => {
                    let before = self.diags.list.len();
                    self.listen(d);
                    self.listen_uncertain |= self.diags.list[before..].iter().any(|x| x.is_error());
                }
                "upstream" => self.upstream(d),
                "waf" => self.waf(d),
                "site" => {
                    let before = self.diags.list.len();
                    self.site(d);
                    self.refs_uncertain |= self.diags.list[before..].iter().any(|x| x.is_error());
                }
                // Expanded by the loader; a leftover one names a file that failed to load.
                _ => {}
            }
        }
    }

    fn global(&mut self, d: &Directive) {
        let mut a = self.args(d);
        let Some(body) = self.block(&mut a) else {
            return;
        };
        self.done(&mut a);
        let mut seen = HashMap::new();
        for d in &body.items {
            if !self.known("global", d) || !self.once(&mut seen, d) {
                continue;
            }
            let mut a = self.args(d);
            match d.name.as_str() {
                "workers" => {
                    if a.eat("auto") {
                        self.config.global.workers = Workers::Auto;
                    } else if let Some(n) = self.next_number(&mut a, 1, 1024) {
                        self.config.global.workers = Workers::Count(n as u16);
                    }
                }
                "admin" => self.admin(&mut a),
                "pid_file" => self.config.global.pid_file = self.value(&mut a, "a file path"),
                "trusted_proxies" => {
                    let what = "an address or CIDR such as 10.0.0.0/8";
                    let mut list = vec![];
                    let mut next = self.need(&mut a, what);
                    while let Some(x) = next {
                        if let Some(c) = self.cidr(x) {
                            list.push(c);
                        }
                        next = a.next();
                    }
                    self.config.global.trusted_proxies = list;
                }
                "limits" => {
                    if let Some(b) = self.block(&mut a) {
                        self.limits(b);
                    }
                }
                "timeouts" => {
                    if let Some(b) = self.block(&mut a) {
                        self.global_timeouts(b);
                    }
                }
                _ => {
                    // access_log
                    if let Some(x) = self.text(&mut a, "stdout, stderr or a file path") {
                        let target = if x.is_word("stdout") {
                            LogTarget::Stdout
                        } else if x.is_word("stderr") {
                            LogTarget::Stderr
                        } else {
                            LogTarget::File(x.text().to_string())
                        };
                        let mut format = LogFormat::Json;
                        if let Some(f) = a.next() {
                            match self.keyword(f, "log format", &["json", "combined"]) {
                                Some(0) => format = LogFormat::Json,
                                Some(_) => format = LogFormat::Combined,
                                None => {}
                            }
                        }
                        self.config.global.access_log = Some(AccessLog {
                            target,
                            format,
                            at: self.loc(d.name_span),
                        });
                    }
                }
            }
            self.done(&mut a);
        }
    }

    /// `admin ADDR [token_file F]`: a loopback address or a unix socket path, and the file
    /// holding the bearer token callers must present.
    fn admin(&mut self, a: &mut Args<'_>) {
        if let Some(x) = self.text(a, "a loopback address or a unix socket path") {
            let t = x.text();
            if t.starts_with('/') {
                self.config.global.admin = Some(t.to_string());
            } else if let Some(addr) = self.socket_addr(x) {
                match addr.parse::<std::net::SocketAddr>() {
                    Ok(sa) if !sa.ip().is_loopback() => self.emit(
                        diag::error(
                            "E0601",
                            x.span,
                            format!("the admin endpoint cannot listen on `{addr}`: not a loopback address"),
                        )
                        .help("use a loopback address or a unix socket, such as `127.0.0.1:9901` or \"/run/bext/admin.sock\""),
                    ),
                    _ => self.config.global.admin = Some(addr),
                }
            }
        }
        if a.eat("token_file") {
            let Some(x) = self.text(a, "the path of the file holding the token") else {
                return;
            };
            let path = x.text().to_string();
            if self.read_files {
                if let Err(why) = bext_ir::read_admin_token(std::path::Path::new(&path)) {
                    self.emit(
                        diag::error(
                            "E0602",
                            x.span,
                            format!("admin token file `{path}` cannot be used: {why}"),
                        )
                        .help("write the token on one line in a file only its owner can read (`chmod 600`)"),
                    );
                }
            }
            self.config.global.admin_token_file = Some(path);
        }
    }

    fn limits(&mut self, body: &Body) {
        let mut seen = HashMap::new();
        for d in &body.items {
            if !self.known("limits", d) || !self.once(&mut seen, d) {
                continue;
            }
            let mut a = self.args(d);
            match d.name.as_str() {
                "headers" => {
                    if let Some(n) = self.next_number(&mut a, 1, 10_000) {
                        self.config.global.limits.headers = n as u32;
                    }
                }
                "connections" => {
                    if let Some(n) = self.next_number(&mut a, 1, 1_000_000) {
                        self.config.global.limits.connections = n as u32;
                    }
                }
                "keepalive_requests" => {
                    if let Some(n) = self.next_number(&mut a, 1, 1_000_000_000) {
                        self.config.global.limits.keepalive_requests = n as u32;
                    }
                }
                name => {
                    if let Some(n) = self.next_size(&mut a) {
                        let l = &mut self.config.global.limits;
                        match name {
                            "header_bytes" => l.header_bytes = n,
                            "uri_bytes" => l.uri_bytes = n,
                            _ => l.body_bytes = n,
                        }
                    }
                }
            }
            self.done(&mut a);
        }
    }

    fn global_timeouts(&mut self, body: &Body) {
        let mut seen = HashMap::new();
        for d in &body.items {
            if !self.known("global timeouts", d) || !self.once(&mut seen, d) {
                continue;
            }
            let mut a = self.args(d);
            if let Some(ms) = self.next_duration(&mut a) {
                let t = &mut self.config.global.timeouts;
                match d.name.as_str() {
                    "header" => t.header_ms = ms,
                    "body" => t.body_ms = ms,
                    "idle" => t.idle_ms = ms,
                    _ => t.drain_ms = ms,
                }
            }
            self.done(&mut a);
        }
    }

    /// `ip:port`, `[v6]:port` or `:port` (all addresses).
    fn socket_addr(&mut self, x: &Arg) -> Option<String> {
        let t = x.text();
        let full = if t.starts_with(':') {
            format!("0.0.0.0{t}")
        } else {
            t.to_string()
        };
        match full.parse::<std::net::SocketAddr>() {
            Ok(sa) => Some(sa.to_string()),
            Err(_) => {
                let (msg, help) = address_problem(t);
                self.emit(
                    diag::error(
                        "E0205",
                        x.span,
                        msg.unwrap_or_else(|| format!("invalid address {}", x.describe())),
                    )
                    .help(help.unwrap_or_else(|| {
                        "write ip:port, [ipv6]:port or :port, for example `0.0.0.0:8080`".into()
                    })),
                );
                None
            }
        }
    }

    fn listen(&mut self, d: &Directive) {
        let mut a = self.args(d);
        let Some(x) = self.text(&mut a, "an address such as `0.0.0.0:8080`") else {
            return;
        };
        let addr = self.socket_addr(x);
        let mut tls = None;
        let mut http3 = None;
        while let Some(x) = a.next() {
            if x.is_word("tls") {
                let at = self.loc(x.span);
                let mut certs = vec![];
                let mut written = false;
                if let Some(ArgKind::Block(b)) = a.peek().map(|y| &y.kind) {
                    a.next();
                    for c in &b.body.items {
                        if self.known("tls", c) {
                            written = true;
                            if let Some(pair) = self.cert(c) {
                                certs.push(pair);
                            }
                        }
                    }
                }
                if !written {
                    self.emit(
                        diag::error("E0306", x.span, "`tls` without a certificate")
                            .help("add `tls { cert \"site.pem\" key \"site.key\" }`"),
                    );
                }
                tls = Some(Tls { certs, at });
            } else if x.is_word("http3") {
                http3 = Some(x.span);
            } else {
                let help = if x.is_word("ssl") {
                    Some("bext writes TLS on the listener as `tls { cert \"site.pem\" key \"site.key\" }`".to_string())
                } else {
                    suggest(x.text(), ["tls", "http3"])
                };
                self.emit(
                    diag::error(
                        "E0105",
                        x.span,
                        format!("unexpected argument {} to `listen`", x.describe()),
                    )
                    .help(help.unwrap_or_else(|| {
                        "`listen` takes an address, then `tls { ... }` and `http3`".into()
                    })),
                );
            }
        }
        if let (Some(h), None) = (http3, &tls) {
            self.emit(diag::error("E0312", h, "`http3` needs `tls`").help(
                "HTTP/3 runs over QUIC, which always uses TLS: add `tls { cert ... key ... }`",
            ));
        }
        if let Some(addr) = addr {
            self.spans.listeners.push(x.span);
            self.config.listeners.push(Listener {
                addr,
                tls,
                http3: http3.is_some(),
                at: self.loc(d.name_span),
            });
        }
    }

    fn cert(&mut self, d: &Directive) -> Option<CertPair> {
        let mut a = self.args(d);
        let cert = self.value(&mut a, "a certificate file");
        let key = if a.eat("key") {
            self.value(&mut a, "a key file")
        } else {
            let b = diag::error("E0104", a.end_span(), "`cert` needs `key FILE`")
                .help("write `cert \"site.pem\" key \"site.key\"`");
            self.emit(b);
            None
        };
        let sni = if a.eat("sni") {
            self.text(&mut a, "a host name")
                .map(|x| x.text().to_ascii_lowercase())
        } else {
            None
        };
        self.done(&mut a);
        Some(CertPair {
            sni,
            cert: cert?,
            key: key?,
        })
    }

    // ---------------------------------------------------------------- upstream

    fn upstream(&mut self, d: &Directive) {
        let mut a = self.args(d);
        let Some(name) = self.word(&mut a, "an upstream name") else {
            return;
        };
        let Some(body) = self.block(&mut a) else {
            return;
        };
        self.done(&mut a);
        let at = self.loc(d.name_span);
        // Without `eject` and `retry` lines an upstream gets the defaults, located at its name.
        let mut u = Upstream {
            name: name.raw.clone(),
            servers: vec![],
            balance: Balance::RoundRobin,
            keepalive: 32,
            health: None,
            passive: Some(PassiveHealth {
                at: at.clone(),
                ..PassiveHealth::default()
            }),
            retry: Some(Retry {
                at: at.clone(),
                ..Retry::default()
            }),
            timeouts: UpstreamTimeouts::default(),
            max_connections: None,
            max_pending: None,
            at,
        };
        let mut seen = HashMap::new();
        for d in &body.items {
            if !self.known("upstream", d) {
                continue;
            }
            if d.name != "server" && !self.once(&mut seen, d) {
                continue;
            }
            let mut a = self.args(d);
            let at = self.loc(d.name_span);
            match d.name.as_str() {
                "server" => {
                    if let Some(s) = self.server(&mut a, at) {
                        u.servers.push(s);
                    }
                }
                "balance" => {
                    if let Some(b) = self.balance(&mut a) {
                        u.balance = b;
                    }
                }
                "keepalive" => {
                    if let Some(n) = self.next_number(&mut a, 0, 100_000) {
                        u.keepalive = n as u32;
                    }
                }
                "health" => u.health = self.health(&mut a, at),
                "eject" => u.passive = self.eject(&mut a, at),
                "retry" => u.retry = self.retry(&mut a, at),
                "timeouts" => {
                    if let Some(b) = self.block(&mut a) {
                        self.upstream_timeouts(b, &mut u.timeouts);
                    }
                }
                "max_connections" => u.max_connections = self.next_u32(&mut a, 1),
                _ => u.max_pending = self.next_u32(&mut a, 0),
            }
            self.done(&mut a);
        }
        if u.servers.is_empty() && !body.items.iter().any(|d| d.name == "server") {
            self.emit(
                diag::error(
                    "E0308",
                    name.span,
                    format!("upstream `{}` has no servers", u.name),
                )
                .help("add `server 127.0.0.1:9000`"),
            );
        }
        let declared = body.items.iter().filter(|d| d.name == "server").count();
        if !u.servers.is_empty()
            && u.servers.len() == declared
            && u.servers.iter().all(|s| s.backup)
        {
            self.emit(
                diag::error(
                    "E0314",
                    name.span,
                    format!("every server of upstream `{}` is a backup: no server takes traffic while all are up", u.name),
                )
                .help("backup servers take traffic only when every other server is down; remove `backup` from the servers that should serve"),
            );
        }
        self.spans.upstreams.push(name.span);
        self.config.upstreams.push(u);
    }

    fn server(&mut self, a: &mut Args<'_>, at: Loc) -> Option<Server> {
        let x = self.text(a, "a server address such as `127.0.0.1:9000`")?;
        let addr = self.host_port(x);
        let mut weight = 1;
        let mut backup = false;
        while let Some(y) = a.next() {
            if y.is_word("weight") {
                let Some(w) = self.need(a, "a number") else {
                    break;
                };
                let zero = matches!(w.kind, ArgKind::Number) && w.raw.parse() == Ok(0u64);
                match if zero {
                    Some(0)
                } else {
                    self.number(w, 1, 1000)
                } {
                    Some(0) => {
                        self.emit(
                            diag::error("E0313", w.span, "a server with weight 0 would never take a request")
                                .help("weights run from 1 to 1000; to take a server out of rotation, remove its line or comment it out"),
                        );
                    }
                    Some(n) => weight = n as u32,
                    None => {}
                }
            } else if y.is_word("backup") {
                backup = true;
            } else {
                let help = crate::hints::nginx_server_option(y.text())
                    .or_else(|| suggest(y.text(), ["weight", "backup"]))
                    .unwrap_or_else(|| {
                        "`server` takes an address, then `weight N` and `backup`".into()
                    });
                self.emit(
                    diag::error(
                        "E0105",
                        y.span,
                        format!("unexpected argument {} to `server`", y.describe()),
                    )
                    .help(help),
                );
                break;
            }
        }
        Some(Server {
            addr: addr?,
            weight,
            backup,
            at,
        })
    }

    fn host_port(&mut self, x: &Arg) -> Option<String> {
        let t = x.text();
        if t.parse::<std::net::SocketAddr>().is_ok() {
            return Some(t.to_string());
        }
        let ok = t.rsplit_once(':').is_some_and(|(host, port)| {
            port.parse::<u16>().is_ok_and(|p| p > 0) && valid_host(host)
        });
        if ok {
            Some(t.to_string())
        } else {
            let (msg, help) = address_problem(t);
            self.emit(
                diag::error(
                    "E0205",
                    x.span,
                    msg.unwrap_or_else(|| format!("invalid server address {}", x.describe())),
                )
                .help(help.unwrap_or_else(|| {
                    "write host:port, for example `127.0.0.1:9000` or `app.internal:8080`".into()
                })),
            );
            None
        }
    }

    fn balance(&mut self, a: &mut Args<'_>) -> Option<Balance> {
        let x = self.need(a, "a balance policy")?;
        let policies = ["round_robin", "least_conn", "p2c", "random", "hash"];
        Some(match self.keyword(x, "balance policy", &policies)? {
            0 => Balance::RoundRobin,
            1 => Balance::LeastConn,
            2 => Balance::P2c,
            3 => Balance::Random,
            _ => {
                let k = self.need(a, "a hash key: client_ip, header NAME or cookie NAME")?;
                Balance::Hash(
                    match self.keyword(k, "hash key", &["client_ip", "header", "cookie"])? {
                        0 => HashKey::ClientIp,
                        1 => {
                            let n = self.need(a, "a header name")?;
                            HashKey::Header(self.header_name(n)?.to_ascii_lowercase())
                        }
                        _ => HashKey::Cookie(self.value(a, "a cookie name")?),
                    },
                )
            }
        })
    }

    fn health(&mut self, a: &mut Args<'_>, at: Loc) -> Option<HealthCheck> {
        let x = self.need(a, "`http PATH` or `tcp`")?;
        let kind = match self.keyword(x, "health check kind", &["http", "tcp"])? {
            0 => {
                let p = self.need(a, "a path such as \"/healthz\"")?;
                HealthKind::Http {
                    path: self.path(p)?,
                }
            }
            _ => HealthKind::Tcp,
        };
        let mut h = HealthCheck {
            kind,
            interval_ms: 5_000,
            timeout_ms: 1_000,
            healthy: 2,
            unhealthy: 3,
            at,
        };
        let opts = ["every", "timeout", "healthy", "unhealthy"];
        let mut ok = true;
        while let Some(k) = a.next() {
            match self.keyword(k, "health check option", &opts) {
                Some(0) => h.interval_ms = self.next_duration(a).unwrap_or(h.interval_ms),
                Some(1) => h.timeout_ms = self.next_duration(a).unwrap_or(h.timeout_ms),
                Some(2) => h.healthy = self.next_u32(a, 1).unwrap_or(h.healthy),
                Some(3) => h.unhealthy = self.next_u32(a, 1).unwrap_or(h.unhealthy),
                _ => ok = false,
            }
        }
        ok.then_some(h)
    }

    /// `eject after N [for D] [max D]`, or `eject off`.
    fn eject(&mut self, a: &mut Args<'_>, at: Loc) -> Option<PassiveHealth> {
        let mut p = PassiveHealth {
            at,
            ..PassiveHealth::default()
        };
        if a.peek().is_none() {
            self.missing(a, "`after N` (consecutive failures) or `off`");
            return None;
        }
        if a.eat("off") {
            return None;
        }
        while let Some(k) = a.next() {
            match self.keyword(k, "eject option", &["after", "for", "max"]) {
                Some(0) => p.consecutive_failures = self.next_u32(a, 1)?,
                Some(1) => p.base_ejection_ms = self.next_duration(a)?,
                Some(2) => p.max_ejection_ms = self.next_duration(a)?,
                _ => return None,
            }
        }
        Some(p)
    }

    /// `retry N [on ...] [budget P%]`, or `retry off`.
    fn retry(&mut self, a: &mut Args<'_>, at: Loc) -> Option<Retry> {
        if a.eat("off") {
            return None;
        }
        let attempts = self.next_number(a, 0, 10)? as u32;
        let mut r = Retry {
            attempts,
            on: vec![],
            budget_percent: 20,
            at,
        };
        let mut ok = true;
        while let Some(k) = a.next() {
            if k.is_word("on") {
                while let Some(c) = a.peek() {
                    if c.is_word("budget") {
                        break;
                    }
                    a.next();
                    if matches!(c.kind, ArgKind::Number) {
                        match c.raw.parse::<u16>() {
                            Ok(s) if (500..=599).contains(&s) => r.on.push(RetryOn::Status(s)),
                            _ => {
                                ok = false;
                                self.emit(
                                    diag::error("E0207", c.span, format!("cannot retry on status {}", c.raw))
                                        .help("retries are allowed on 5xx statuses, connect_error and timeout"),
                                );
                            }
                        }
                    } else {
                        match self.keyword(c, "retry condition", &["connect_error", "timeout"]) {
                            Some(0) => r.on.push(RetryOn::ConnectError),
                            Some(_) => r.on.push(RetryOn::Timeout),
                            None => ok = false,
                        }
                    }
                }
            } else if k.is_word("budget") {
                let x = self.need(a, "a percentage such as `20%`")?;
                r.budget_percent = self.percent(x)?;
            } else {
                ok = false;
                let help = suggest(k.text(), ["on", "budget"]).unwrap_or_else(|| {
                    "write `retry 2 on connect_error 502 503 budget 20%`".into()
                });
                self.emit(
                    diag::error(
                        "E0105",
                        k.span,
                        format!("unexpected argument {} to `retry`", k.describe()),
                    )
                    .help(help),
                );
            }
        }
        if r.on.is_empty() {
            r.on.push(RetryOn::ConnectError);
        }
        ok.then_some(r)
    }

    fn upstream_timeouts(&mut self, body: &Body, t: &mut UpstreamTimeouts) {
        let mut seen = HashMap::new();
        for d in &body.items {
            if !self.known("upstream timeouts", d) || !self.once(&mut seen, d) {
                continue;
            }
            let mut a = self.args(d);
            if let Some(ms) = self.next_duration(&mut a) {
                match d.name.as_str() {
                    "connect" => t.connect_ms = ms,
                    "response" => t.response_ms = ms,
                    "idle" => t.idle_ms = ms,
                    _ => t.tunnel_ms = ms,
                }
            }
            self.done(&mut a);
        }
    }

    // ---------------------------------------------------------------- waf

    fn waf(&mut self, d: &Directive) {
        let mut a = self.args(d);
        let Some(name) = self.word(&mut a, "a WAF name") else {
            return;
        };
        let Some(body) = self.block(&mut a) else {
            return;
        };
        self.done(&mut a);
        let mut w = Waf {
            name: name.raw.clone(),
            rulesets: vec![],
            rules: vec![],
            inspect_body_bytes: None,
            at: self.loc(d.name_span),
        };
        let mut seen = HashMap::new();
        let mut rule_names: HashMap<String, Span> = HashMap::new();
        for d in &body.items {
            if !self.known("waf", d) {
                continue;
            }
            let mut a = self.args(d);
            match d.name.as_str() {
                "ruleset" => {
                    if a.peek().is_none() {
                        self.missing(&a, "a rule set such as `builtin/sqli`");
                    }
                    while let Some(x) = a.next() {
                        if let Some(i) = self.keyword(x, "rule set", RULESETS) {
                            w.rulesets.push(RULESETS[i].to_string());
                        }
                    }
                }
                "rule" => {
                    let Some(n) = self.word(&mut a, "a rule name") else {
                        continue;
                    };
                    if let Some(first) = rule_names.insert(n.raw.clone(), n.span) {
                        self.emit(
                            diag::error(
                                "E0302",
                                n.span,
                                format!("rule `{}` is defined twice", n.raw),
                            )
                            .label(first, "first defined here"),
                        );
                    }
                    if let Some(r) = self.rule(&mut a, n, self.loc(d.name_span)) {
                        w.rules.push(r);
                    }
                }
                _ => {
                    if self.once(&mut seen, d) {
                        w.inspect_body_bytes = self.next_size(&mut a);
                    }
                }
            }
            self.done(&mut a);
        }
        self.spans.wafs.push(name.span);
        self.config.wafs.push(w);
    }

    fn rule(&mut self, a: &mut Args<'_>, name: &Arg, at: Loc) -> Option<WafRule> {
        let w = self.need(a, "`when CONDITION => ACTION`")?;
        if !w.is_word("when") {
            self.wrong(w, "`when`");
            return None;
        }
        let start = a.i;
        let arrow = a.d.args[start..].iter().position(|x| x.is_word("=>"));
        let Some(arrow) = arrow.map(|p| p + start) else {
            self.missing(a, "`=> ACTION` (deny STATUS, allow or log)");
            a.i = a.d.args.len();
            return None;
        };
        let toks = &a.d.args[start..arrow];
        let mut cp = CondParser { toks, i: 0 };
        let when = self.cond_or(&mut cp, a);
        if when.is_some() && cp.i < toks.len() {
            let x = &toks[cp.i];
            self.emit(diag::error(
                "E0214",
                x.span,
                format!("expected `and`, `or` or `=>`, found {}", x.describe()),
            ));
        }
        a.i = arrow + 1;
        let act = self.need(a, "an action: deny STATUS, allow or log")?;
        let action = match self.keyword(act, "WAF action", &["deny", "allow", "log"])? {
            0 => {
                let s = match a.peek() {
                    Some(x) if matches!(x.kind, ArgKind::Number) => {
                        a.next();
                        self.status(x, &[], "deny")?
                    }
                    _ => 403,
                };
                WafAction::Deny { status: s }
            }
            1 => WafAction::Allow,
            _ => WafAction::Log,
        };
        Some(WafRule {
            name: name.raw.clone(),
            when: when?,
            action,
            at,
        })
    }

    fn cond_or(&mut self, p: &mut CondParser<'_>, a: &Args<'_>) -> Option<Condition> {
        let mut parts = vec![self.cond_and(p, a)?];
        while p.eat("or") {
            parts.push(self.cond_and(p, a)?);
        }
        Some(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Condition::Or(parts)
        })
    }

    fn cond_and(&mut self, p: &mut CondParser<'_>, a: &Args<'_>) -> Option<Condition> {
        let mut parts = vec![self.cond_unary(p, a)?];
        while p.eat("and") {
            parts.push(self.cond_unary(p, a)?);
        }
        Some(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Condition::And(parts)
        })
    }

    fn cond_need<'t>(
        &mut self,
        p: &mut CondParser<'t>,
        a: &Args<'_>,
        what: &str,
    ) -> Option<&'t Arg> {
        match p.next() {
            Some(x) => Some(x),
            None => {
                let span = p.toks.last().map_or(a.end_span(), |x| {
                    Span::new(x.span.file, x.span.end, x.span.end + 1)
                });
                self.emit(diag::error(
                    "E0214",
                    span,
                    format!("incomplete condition: expected {what}"),
                ));
                None
            }
        }
    }

    fn cond_unary(&mut self, p: &mut CondParser<'_>, a: &Args<'_>) -> Option<Condition> {
        if p.eat("not") {
            return Some(Condition::Not(Box::new(self.cond_unary(p, a)?)));
        }
        if p.peek().is_some_and(|x| x.raw == "(") {
            p.i += 1;
            let c = self.cond_or(p, a)?;
            let close = self.cond_need(p, a, "`)`")?;
            if close.raw != ")" {
                self.wrong(close, "`)`");
                return None;
            }
            return Some(c);
        }
        let s = self.cond_need(p, a, "a subject such as `path` or `header NAME`")?;
        let subjects = [
            "path",
            "query",
            "method",
            "host",
            "client_ip",
            "header",
            "arg",
            "cookie",
        ];
        let subject = match self.keyword(s, "condition subject", &subjects)? {
            0 => Subject::Path,
            1 => Subject::Query,
            2 => Subject::Method,
            3 => Subject::Host,
            4 => Subject::ClientIp,
            i => {
                let n = self.cond_need(p, a, "a name")?;
                match i {
                    5 => Subject::Header(self.header_name(n)?.to_ascii_lowercase()),
                    6 => Subject::QueryParam(n.text().to_string()),
                    _ => Subject::Cookie(n.text().to_string()),
                }
            }
        };
        let named = matches!(
            subject,
            Subject::Header(_) | Subject::QueryParam(_) | Subject::Cookie(_)
        );
        let op = self.cond_need(
            p,
            a,
            "an operator: =, ~, starts_with, contains, in or present",
        )?;
        let ops = ["=", "~", "starts_with", "contains", "in", "present"];
        let op = match self.keyword(op, "operator", &ops)? {
            0 => MatchOp::Equals(self.cond_need(p, a, "a value")?.text().to_string()),
            1 => {
                let x = self.cond_need(p, a, "a regular expression")?;
                MatchOp::Regex(self.regex(x)?)
            }
            2 => MatchOp::Prefix(self.cond_need(p, a, "a value")?.text().to_string()),
            3 => MatchOp::Contains(self.cond_need(p, a, "a value")?.text().to_string()),
            4 => {
                if subject != Subject::ClientIp {
                    self.emit(diag::error(
                        "E0214",
                        op.span,
                        "`in` applies to `client_ip` only",
                    ));
                    return None;
                }
                let mut cidrs = vec![];
                while let Some(x) = p.peek() {
                    if ["and", "or", ")"].contains(&x.raw.as_str())
                        && matches!(x.kind, ArgKind::Word | ArgKind::Paren)
                    {
                        break;
                    }
                    p.i += 1;
                    cidrs.push(self.cidr(x)?);
                }
                if cidrs.is_empty() {
                    self.cond_need(p, a, "a CIDR such as 10.0.0.0/8")?;
                }
                MatchOp::InCidr(cidrs)
            }
            _ => {
                if !named {
                    self.emit(diag::error(
                        "E0214",
                        op.span,
                        "`present` applies to `header`, `arg` and `cookie` only",
                    ));
                    return None;
                }
                MatchOp::Present
            }
        };
        Some(Condition::Match { subject, op })
    }

    fn cidr(&mut self, x: &Arg) -> Option<String> {
        let t = x.text();
        let ok = match t.split_once('/') {
            Some((ip, bits)) => match (ip.parse::<std::net::IpAddr>(), bits.parse::<u8>()) {
                (Ok(std::net::IpAddr::V4(_)), Ok(b)) => b <= 32,
                (Ok(std::net::IpAddr::V6(_)), Ok(b)) => b <= 128,
                _ => false,
            },
            None => t.parse::<std::net::IpAddr>().is_ok(),
        };
        if ok {
            Some(t.to_string())
        } else {
            self.emit(
                diag::error("E0212", x.span, format!("invalid CIDR {}", x.describe())).help(
                    "write an address with a prefix length, for example 10.0.0.0/8 or fd00::/8",
                ),
            );
            None
        }
    }

    // ---------------------------------------------------------------- site and routes

    fn site(&mut self, d: &Directive) {
        let mut hosts = vec![];
        let mut host_spans = vec![];
        let mut body = None;
        for x in &d.args {
            match &x.kind {
                ArgKind::Block(b) if body.is_none() => body = Some(&b.body),
                ArgKind::Block(_) => {
                    self.emit(diag::error("E0106", x.span, "`site` takes one block"))
                }
                _ if body.is_some() => {
                    self.emit(diag::error(
                        "E0105",
                        x.span,
                        "host names go before the block",
                    ));
                }
                ArgKind::Word | ArgKind::Str(_) => {
                    if let Some(h) = self.host_pattern(x) {
                        hosts.push(h);
                        host_spans.push(x.span);
                    }
                }
                _ => self.wrong(x, "a host name"),
            }
        }
        let Some(body) = body else {
            let a = Args::new(d);
            self.emit(
                diag::error("E0106", a.end_span(), "`site` needs a block `{ ... }`")
                    .help_opt(usage_help("site", "a block")),
            );
            return;
        };
        if hosts.is_empty() && d.args.len() == 1 {
            hosts.push(HostPattern::Any);
            host_spans.push(d.name_span);
        }
        let mut routes = vec![];
        let mut route_spans = vec![];
        let mut count = 0;
        let mut paths = PathPolicy::default();
        let mut seen = HashMap::new();
        for r in &body.items {
            if !self.known("site", r) {
                continue;
            }
            if r.name == "route" {
                count += 1;
                if count == MAX_ROUTES_PER_SITE + 1 {
                    self.emit(
                        diag::error(
                            "E0231",
                            r.name_span,
                            format!("more than {MAX_ROUTES_PER_SITE} routes in one site"),
                        )
                        .label(d.name_span, "in this site")
                        .help("group paths under prefix routes (`route /api/*`) or split the hosts into several sites"),
                    );
                }
                if count > MAX_ROUTES_PER_SITE {
                    continue;
                }
                if let Some((route, spans)) = self.route(r) {
                    routes.push(route);
                    route_spans.push(spans);
                }
                continue;
            }
            if !self.once(&mut seen, r) {
                continue;
            }
            let mut a = self.args(r);
            if r.name == "merge_slashes" {
                if let Some(x) = self.need(&mut a, "`on` or `off`") {
                    if let Some(i) = self.keyword(x, "merge_slashes setting", &["on", "off"]) {
                        paths.merge_slashes = i == 0;
                    }
                }
            } else if let Some(x) = self.need(&mut a, "`reject` or `keep`") {
                // escaped_slashes
                match self.keyword(x, "escaped_slashes action", &["reject", "keep"]) {
                    Some(0) => paths.escaped_slashes = EscapedSlashes::Reject,
                    Some(_) => paths.escaped_slashes = EscapedSlashes::Keep,
                    None => {}
                }
            }
            self.done(&mut a);
        }
        self.spans.sites.push((d.name_span, route_spans));
        self.spans.site_hosts.push(host_spans);
        self.config.sites.push(Site {
            hosts,
            routes,
            paths,
            at: self.loc(d.name_span),
        });
    }

    fn host_pattern(&mut self, x: &Arg) -> Option<HostPattern> {
        let t = x.text().to_ascii_lowercase();
        if t == "*" {
            return Some(HostPattern::Any);
        }
        if let Some(rest) = t.strip_prefix("*.") {
            if valid_host(rest) && !rest.contains('*') {
                return Some(HostPattern::Wildcard(rest.to_string()));
            }
        } else if valid_host(&t) {
            return Some(HostPattern::Exact(t));
        }
        let help = if t.contains(':') {
            "a site matches host names without a port; ports belong to `listen`"
        } else if t.contains('/') {
            "a site matches host names; paths belong to `route`"
        } else {
            "write a host name (`example.com`), a wildcard (`*.example.com`) or `*`"
        };
        self.emit(
            diag::error(
                "E0209",
                x.span,
                format!("invalid host name {}", x.describe()),
            )
            .help(help),
        );
        None
    }

    fn route(&mut self, d: &Directive) -> Option<(Route, RouteSpans)> {
        let mut a = self.args(d);
        let mut spans = RouteSpans {
            head: d.name_span,
            ..RouteSpans::default()
        };
        let first = self.need(&mut a, "a path: `/exact`, `/prefix/*` or `~ \"regex\"`")?;
        let path = if first.is_word("=") {
            let p = self.text(&mut a, "a path")?;
            spans.path = p.span;
            self.path(p).map(PathMatch::Exact)
        } else if first.is_word("~") {
            let p = self.need(&mut a, "a regular expression")?;
            spans.path = p.span;
            self.regex(p).map(PathMatch::Regex)
        } else if first.block().is_some() {
            self.missing(&a, "a path: `/exact`, `/prefix/*` or `~ \"regex\"`");
            a.i -= 1;
            None
        } else {
            spans.path = first.span;
            self.route_path(first)
        };
        let body = self.block(&mut a);
        self.done(&mut a);
        let body = body?;
        let mut route = Route::new(
            path.clone().unwrap_or(PathMatch::Prefix("/".into())),
            Action::Respond {
                status: 404,
                body: String::new(),
                content_type: None,
            },
            self.loc(d.name_span),
        );
        let mut action: Option<(Span, &str)> = None;
        // Where `strip_prefix` and `rewrite` are written, if they are.
        let mut path_edits: (Option<Span>, Option<Span>) = (None, None);
        let mut seen = HashMap::new();
        // A directive that is not recognised may be the action misspelt (`proxx app`): then
        // "no action" would only repeat the same mistake.
        let mut unknown = false;
        for d in &body.items {
            if !self.known("route", d) {
                unknown = true;
                continue;
            }
            let repeatable = [
                "header",
                "query",
                "request_header",
                "response_header",
                "plugin",
            ];
            if !repeatable.contains(&d.name.as_str()) && !self.once(&mut seen, d) {
                continue;
            }
            let is_action = ["proxy", "respond", "redirect", "static"].contains(&d.name.as_str());
            if is_action {
                if let Some((first, name)) = action {
                    self.emit(
                        diag::error("E0310", d.name_span, format!("a route has one action; `{}` follows `{name}`", d.name))
                            .label(first, "first action here")
                            .help("split the route, or keep one of `proxy`, `respond`, `redirect`, `static`"),
                    );
                    continue;
                }
                action = Some((d.name_span, names_of(&d.name)));
            }
            match d.name.as_str() {
                "strip_prefix" => path_edits.0 = Some(d.name_span),
                "rewrite" => path_edits.1 = Some(d.name_span),
                _ => {}
            }
            let mut a = self.args(d);
            self.route_directive(d, &mut a, &mut route, &mut spans);
            self.done(&mut a);
        }
        if let (Some(strip), Some(rewrite)) = path_edits {
            let (first, later) = if strip.start < rewrite.start {
                (strip, rewrite)
            } else {
                (rewrite, strip)
            };
            self.emit(
                diag::error(
                    "E0315",
                    later,
                    "a route may change its path with `strip_prefix` or with `rewrite`, not both",
                )
                .label(first, "the path is already changed here")
                .help("a rewrite can strip a prefix too: `rewrite '^/api(/.*)$' \"$1\"`"),
            );
        }
        if action.is_none() && !unknown {
            self.emit(
                diag::error("E0309", d.name_span, "this route has no action")
                    .help("add one of `proxy UPSTREAM`, `respond STATUS`, `redirect STATUS URL`, `static DIR`"),
            );
        }
        // A route with a mistake inside is kept (the IR is discarded anyway when there are
        // errors) so that references and the route table are still checked and reported.
        path.is_some().then_some((route, spans))
    }

    fn route_path(&mut self, x: &Arg) -> Option<PathMatch> {
        let p = self.path(x)?;
        let star = p.find('*');
        match star {
            None => Some(PathMatch::Exact(p)),
            Some(i) if i == p.len() - 1 => Some(PathMatch::Prefix(p[..i].to_string())),
            Some(_) => {
                self.emit(
                    diag::error("E0210", x.span, "`*` may only end a route path")
                        .help("use `/prefix/*` for everything under a prefix, or `~ \"regex\"` for patterns"),
                );
                None
            }
        }
    }

    fn route_directive(
        &mut self,
        d: &Directive,
        a: &mut Args<'_>,
        r: &mut Route,
        spans: &mut RouteSpans,
    ) {
        let at = self.loc(d.name_span);
        match d.name.as_str() {
            "method" => {
                if a.peek().is_none() {
                    self.missing(a, "at least one method such as GET");
                }
                while let Some(m) = a.next() {
                    let t = m.text();
                    let token = !t.is_empty()
                        && t.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c));
                    if !token || t.chars().any(|c| c.is_ascii_lowercase()) {
                        let help = token.then(|| {
                            format!(
                                "methods are case-sensitive: write `{}`",
                                t.to_ascii_uppercase()
                            )
                        });
                        self.emit(
                            diag::error(
                                "E0206",
                                m.span,
                                format!("invalid method {}", m.describe()),
                            )
                            .help_opt(help),
                        );
                    } else if !r.methods.iter().any(|x| x == t) {
                        r.methods.push(t.to_string());
                    }
                }
            }
            "header" | "query" => {
                let Some(n) = self.text(a, "a field name") else {
                    return;
                };
                let name = if d.name == "header" {
                    match self.header_name(n) {
                        Some(h) => h.to_ascii_lowercase(),
                        None => return,
                    }
                } else {
                    n.text().to_string()
                };
                let Some(op) = self.need(a, "an operator: =, ~, starts_with, contains or present")
                else {
                    return;
                };
                let ops = ["=", "~", "starts_with", "contains", "present"];
                let op = match self.keyword(op, "operator", &ops) {
                    Some(0) => self.value(a, "a value").map(MatchOp::Equals),
                    Some(1) => self
                        .need(a, "a regular expression")
                        .and_then(|x| self.regex(x))
                        .map(MatchOp::Regex),
                    Some(2) => self.value(a, "a value").map(MatchOp::Prefix),
                    Some(3) => self.value(a, "a value").map(MatchOp::Contains),
                    Some(_) => Some(MatchOp::Present),
                    None => None,
                };
                if let Some(op) = op {
                    let list = if d.name == "header" {
                        &mut r.headers
                    } else {
                        &mut r.query
                    };
                    list.push(FieldCond { name, op });
                }
            }
            "proxy" => {
                if let Some(x) = self.word(a, "an upstream name") {
                    spans.proxy = Some(x.span);
                    r.action = Action::Proxy {
                        upstream: x.raw.clone(),
                    };
                }
            }
            "respond" => {
                let Some(x) = self.need(a, "a status code") else {
                    return;
                };
                let Some(status) = self.status(x, &[], "response") else {
                    return;
                };
                let mut body = String::new();
                let mut content_type = None;
                if let Some(b) = a.peek() {
                    if matches!(b.kind, ArgKind::Str(_)) {
                        a.next();
                        body = b.text().to_string();
                    }
                }
                if a.eat("type") {
                    content_type = self
                        .text(a, "a content type such as text/plain")
                        .filter(|x| self.no_control(x, "content type", false))
                        .map(|x| x.text().to_string());
                }
                r.action = Action::Respond {
                    status,
                    body,
                    content_type,
                };
            }
            "redirect" => {
                let mut status = 302;
                if let Some(x) = a.peek() {
                    if matches!(x.kind, ArgKind::Number) {
                        a.next();
                        match self.status(x, &[301, 302, 303, 307, 308], "redirect") {
                            Some(s) => status = s,
                            None => return,
                        }
                    }
                }
                let location = self.text(a, "a location");
                if let Some(x) = location.filter(|x| self.no_control(x, "redirect location", false))
                {
                    spans.redirect = Some(x.span);
                    r.action = Action::Redirect {
                        status,
                        location: x.text().to_string(),
                    };
                }
            }
            "static" => {
                let Some(x) = self.text(a, "a directory") else {
                    return;
                };
                let root = x.text().to_string();
                // W0150: a warning, not an error: the directory may be made where bext will
                // run (deployed with the site), and `bext run` refuses a root it cannot open.
                let missing = match self.read_files.then(|| std::fs::metadata(&root)) {
                    None => None,
                    Some(Ok(m)) if m.is_dir() => None,
                    Some(Ok(_)) => Some("it is not a directory".to_string()),
                    Some(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                        Some("it does not exist".to_string())
                    }
                    Some(Err(e)) => Some(format!("it cannot be read: {e}")),
                };
                if let Some(why) = missing {
                    self.emit(
                        diag::warning(
                            "W0150",
                            x.span,
                            format!("static root `{root}` is not a directory on this machine: {why}"),
                        )
                        .help("create the directory (a relative path is taken from the directory bext runs in), or correct the path"),
                    );
                }
                let mut index = vec![];
                if a.eat("index") {
                    while let Some(x) = a.next() {
                        index.push(x.text().to_string());
                    }
                    if index.is_empty() {
                        self.missing(a, "at least one index file name");
                    }
                } else {
                    index.push("index.html".to_string());
                }
                r.action = Action::Static { root, index };
            }
            "strip_prefix" => {
                let Some(x) = self.text(a, "a path prefix such as /api") else {
                    return;
                };
                let Some(p) = self.path(x) else { return };
                let matched = match &r.path {
                    PathMatch::Exact(e) => Some(e.as_str()),
                    PathMatch::Prefix(q) => Some(q.as_str()),
                    PathMatch::Regex(_) => None,
                };
                if let Some(m) = matched {
                    if !m.starts_with(&p) {
                        self.emit(
                            diag::error("E0311", x.span, format!("`strip_prefix {p}` does not begin the paths this route matches"))
                                .label(spans.path, "this route matches these paths")
                                .help("strip a prefix of the route path"),
                        );
                        return;
                    }
                }
                r.strip_prefix = Some(p);
            }
            "rewrite" => {
                let Some(x) = self.need(a, "a regular expression") else {
                    return;
                };
                let pattern = self.regex(x);
                let Some(y) = self.text(a, "a replacement such as \"/new/$1\"") else {
                    return;
                };
                if !self.no_control(y, "rewrite replacement", false) {
                    return;
                }
                let replacement = y.text().to_string();
                if let Some(pattern) = pattern {
                    if self.rewrite_replacement(&pattern, x, y) {
                        r.rewrite = Some(Rewrite {
                            pattern,
                            replacement,
                            at,
                        });
                    }
                }
            }
            "request_header" | "response_header" => {
                let Some(op) = self.need(a, "set, add or remove") else {
                    return;
                };
                let Some(k) = self.keyword(op, "header operation", &["set", "add", "remove"])
                else {
                    return;
                };
                let Some(n) = self.text(a, "a header name") else {
                    return;
                };
                let Some(name) = self.header_name(n) else {
                    return;
                };
                let name = name.to_ascii_lowercase();
                let mut value = || {
                    let v = self.text(a, "a value")?;
                    self.no_control(v, "header value", true)
                        .then(|| v.text().to_string())
                };
                let op = match k {
                    0 => HeaderOp::Set {
                        name,
                        value: value().unwrap_or_default(),
                    },
                    1 => HeaderOp::Add {
                        name,
                        value: value().unwrap_or_default(),
                    },
                    _ => HeaderOp::Remove { name },
                };
                if d.name == "request_header" {
                    r.request_headers.push(op);
                } else {
                    r.response_headers.push(op);
                }
            }
            "cache" => {
                let Some(b) = self.block(a) else { return };
                r.cache = self.cache(b, at, d);
            }
            "compress" => r.compress = self.compress(a, at),
            "waf" => {
                if let Some(x) = self.word(a, "a WAF name") {
                    spans.waf = Some(x.span);
                    r.waf = Some(NamedRef {
                        name: x.raw.clone(),
                        at,
                    });
                }
            }
            "rate_limit" => r.rate_limit = self.rate_limit(a, at),
            "request_buffering" => {
                if let Some(x) = self.need(a, "`on` or `off`") {
                    if let Some(k) = self.keyword(x, "request_buffering value", &["on", "off"]) {
                        r.request_buffering = k == 0;
                    }
                }
            }
            _ => {
                // plugin
                let Some(path) = self.value(a, "a plugin file (.wasm)") else {
                    return;
                };
                let mut config = vec![];
                if let Some(ArgKind::Block(b)) = a.peek().map(|x| &x.kind) {
                    a.next();
                    for kv in &b.body.items {
                        let mut ka = self.args(kv);
                        if let Some(v) = self.value(&mut ka, "a value") {
                            config.push((kv.name.clone(), v));
                        }
                        self.done(&mut ka);
                    }
                }
                r.plugins.push(Plugin { path, config, at });
            }
        }
    }

    fn cache(&mut self, b: &Body, at: Loc, d: &Directive) -> Option<Cache> {
        let mut c = Cache {
            ttl_ms: 0,
            max_bytes: 64 << 20,
            stale_while_revalidate_ms: None,
            at,
        };
        let mut seen = HashMap::new();
        let mut ok = true;
        for d in &b.items {
            if !self.known("cache", d) || !self.once(&mut seen, d) {
                ok = false;
                continue;
            }
            let mut a = self.args(d);
            let v = match d.name.as_str() {
                "ttl" => self.next_duration(&mut a).map(|v| c.ttl_ms = v),
                "max" => self.next_size(&mut a).map(|v| c.max_bytes = v),
                _ => self
                    .next_duration(&mut a)
                    .map(|v| c.stale_while_revalidate_ms = Some(v)),
            };
            ok &= v.is_some();
            self.done(&mut a);
        }
        if !seen.contains_key("ttl") {
            self.emit(
                diag::error("E0104", d.name_span, "`cache` needs `ttl`")
                    .help("write `cache { ttl 10m }`"),
            );
            return None;
        }
        ok.then_some(c)
    }

    /// `compress ENCODING... [{ level ENCODING N; min_size SIZE; types TYPE... }]`.
    fn compress(&mut self, a: &mut Args<'_>, at: Loc) -> Option<Compress> {
        const WHAT: &str = "at least one encoding: zstd, br or gzip";
        let mut encodings = vec![];
        let mut block = None;
        let mut ok = true;
        while let Some(x) = a.next() {
            if let ArgKind::Block(b) = &x.kind {
                block = Some((&b.body, x.span));
                break;
            }
            match self.keyword(x, "encoding", &["zstd", "br", "gzip"]) {
                Some(i) => {
                    let e = [Encoding::Zstd, Encoding::Br, Encoding::Gzip][i];
                    if !encodings.contains(&e) {
                        encodings.push(e);
                    }
                }
                None => ok = false,
            }
        }
        match block {
            Some((_, span)) if encodings.is_empty() && ok => self.emit(
                diag::error(
                    "E0104",
                    span,
                    format!("`compress` needs {WHAT} before its block"),
                )
                .label(a.d.name_span, "in this directive")
                .help("write `compress zstd br gzip { ... }`"),
            ),
            None if encodings.is_empty() && ok => self.missing(a, WHAT),
            _ => {}
        }
        let mut c = Compress::with_defaults(encodings, at);
        if let Some((b, _)) = block {
            ok &= self.compress_block(b, &mut c);
        }
        (ok && !c.encodings.is_empty()).then_some(c)
    }

    fn compress_block(&mut self, b: &Body, c: &mut Compress) -> bool {
        let mut seen = HashMap::new();
        let mut levels: HashMap<Encoding, Span> = HashMap::new();
        let mut types_given = false;
        let mut ok = true;
        for d in &b.items {
            if !self.known("compress", d) || (d.name != "level" && !self.once(&mut seen, d)) {
                ok = false;
                continue;
            }
            let mut a = self.args(d);
            let v = match d.name.as_str() {
                "level" => self.compress_level(&mut a, d, c, &mut levels),
                "min_size" => self.next_size(&mut a).map(|v| c.min_size = v),
                _ => {
                    if !types_given {
                        c.types.clear();
                        types_given = true;
                    }
                    self.media_types(&mut a, &mut c.types)
                }
            };
            ok &= v.is_some();
            self.done(&mut a);
        }
        ok
    }

    /// `level ENCODING N`: E0251 for an encoding not offered, E0250 out of its range.
    fn compress_level(
        &mut self,
        a: &mut Args<'_>,
        d: &Directive,
        c: &mut Compress,
        levels: &mut HashMap<Encoding, Span>,
    ) -> Option<()> {
        let x = self.need(a, "an encoding: zstd, br or gzip")?;
        let i = self.keyword(x, "encoding", &["zstd", "br", "gzip"])?;
        let e = [Encoding::Zstd, Encoding::Br, Encoding::Gzip][i];
        let n = self.need(a, "a level")?;
        let level = self.number(n, 0, u64::MAX)?;
        if !c.encodings.contains(&e) {
            self.emit(
                diag::error(
                    "E0251",
                    x.span,
                    format!(
                        "a level for `{}`, which this `compress` does not offer",
                        e.token()
                    ),
                )
                .help(format!(
                    "add `{}` to the encodings after `compress`, or remove this line",
                    e.token()
                )),
            );
            return None;
        }
        if let Some(first) = levels.get(&e) {
            self.emit(
                diag::error(
                    "E0103",
                    d.name_span,
                    format!("`level {}` is given more than once", e.token()),
                )
                .label(*first, "first given here")
                .help("keep one of them"),
            );
            return None;
        }
        levels.insert(e, d.name_span);
        let range = e.levels();
        if !u32::try_from(level).is_ok_and(|l| range.contains(&l)) {
            self.emit(
                diag::error(
                    "E0250",
                    n.span,
                    format!("{} has no level {level}", e.token()),
                )
                .help(format!(
                    "{} levels go from {} to {}; the default is {}",
                    e.token(),
                    range.start(),
                    range.end(),
                    e.default_level()
                )),
            );
            return None;
        }
        c.levels.insert(e, level as u32);
        Some(())
    }

    /// `types TYPE...`: `type/subtype` or `type/*`, tokens (E0252), stored lower case.
    fn media_types(&mut self, a: &mut Args<'_>, out: &mut Vec<String>) -> Option<()> {
        if a.peek().is_none() {
            self.missing(a, "at least one media type such as `text/*`");
            return None;
        }
        let mut ok = true;
        while let Some(x) = a.next() {
            let t = x.text();
            let token = |s: &str| {
                !s.is_empty()
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
            };
            let valid = t.split_once('/').is_some_and(|(top, sub)| {
                token(top)
                    && !top.contains('*')
                    && (sub == "*" || (token(sub) && !sub.contains('*')))
            });
            if !valid || !matches!(x.kind, ArgKind::Word | ArgKind::Str(_)) {
                let help = if t.contains(';') {
                    "write the media type without parameters: types are matched without them"
                } else {
                    "write `type/subtype` (`application/json`) or `type/*` (`text/*`)"
                };
                self.emit(
                    diag::error(
                        "E0252",
                        x.span,
                        format!("invalid media type {}", x.describe()),
                    )
                    .help(help),
                );
                ok = false;
                continue;
            }
            let t = t.to_ascii_lowercase();
            if !out.contains(&t) {
                out.push(t);
            }
        }
        ok.then_some(())
    }

    fn rate_limit(&mut self, a: &mut Args<'_>, at: Loc) -> Option<RateLimit> {
        let x = self.need(a, "a rate such as `100/s`")?;
        let rate = x.text().split_once('/').and_then(|(n, u)| {
            let per = match u {
                "s" => 1_000,
                "m" => 60_000,
                "h" => 3_600_000,
                _ => return None,
            };
            // At most one request per microsecond (1,000,000/s): the limiter counts whole
            // microseconds between requests.
            n.parse::<u64>()
                .ok()
                .filter(|n| *n > 0 && *n <= per * 1_000)
                .map(|n| (n, per))
        });
        let Some((requests, per_ms)) = rate else {
            self.emit(
                diag::error("E0215", x.span, format!("invalid rate {}", x.describe()))
                    .help("write requests per second, minute or hour, at most 1000000/s: `100/s`, `600/m`, `5000/h`"),
            );
            return None;
        };
        let mut r = RateLimit {
            requests,
            per_ms,
            key: RateKey::ClientIp,
            burst: requests,
            at,
        };
        while let Some(k) = a.next() {
            match self.keyword(k, "rate_limit option", &["per", "global", "burst"])? {
                0 => {
                    let w = self.need(a, "client_ip or header NAME")?;
                    r.key = match self.keyword(w, "rate key", &["client_ip", "header"])? {
                        0 => RateKey::ClientIp,
                        _ => {
                            let n = self.need(a, "a header name")?;
                            RateKey::Header(self.header_name(n)?.to_ascii_lowercase())
                        }
                    };
                }
                1 => r.key = RateKey::Global,
                _ => r.burst = self.next_number(a, 1, u64::from(u32::MAX))?,
            }
        }
        Some(r)
    }

    // ---------------------------------------------------------------- cross checks

    /// Checks that need the whole configuration: names, references, ports, hosts.
    pub fn cross_check(&mut self) {
        let cfg = std::mem::take(&mut self.config);
        let spans = std::mem::take(&mut self.spans);
        // Duplicate names.
        let mut firsts: HashMap<&str, Span> = HashMap::new();
        for (u, s) in cfg.upstreams.iter().zip(&spans.upstreams) {
            if let Some(f) = firsts.insert(&u.name, *s) {
                firsts.insert(&u.name, f);
                self.emit(
                    diag::error(
                        "E0301",
                        *s,
                        format!("upstream `{}` is defined twice", u.name),
                    )
                    .label(f, "first defined here"),
                );
            }
        }
        let mut wfirst: HashMap<&str, Span> = HashMap::new();
        for (w, s) in cfg.wafs.iter().zip(&spans.wafs) {
            if let Some(f) = wfirst.insert(&w.name, *s) {
                wfirst.insert(&w.name, f);
                self.emit(
                    diag::error("E0302", *s, format!("waf `{}` is defined twice", w.name))
                        .label(f, "first defined here"),
                );
            }
        }
        // References.
        let mut used_up: HashMap<&str, bool> = HashMap::new();
        let mut used_waf: HashMap<&str, bool> = HashMap::new();
        for (site, (_, rspans)) in cfg.sites.iter().zip(&spans.sites) {
            for (r, rs) in site.routes.iter().zip(rspans) {
                if let (Action::Proxy { upstream }, Some(span)) = (&r.action, rs.proxy) {
                    if firsts.contains_key(upstream.as_str()) {
                        used_up.insert(upstream, true);
                    } else {
                        // A likely typo of a defined name: that upstream is not "unused" too.
                        let mut names: Vec<&str> = firsts.keys().copied().collect();
                        names.sort_unstable();
                        if let Some(m) = diag::did_you_mean(upstream, names.iter().copied()) {
                            used_up.insert(m, true);
                        }
                        let url = upstream.contains("://").then(|| {
                            "`proxy` takes the name of an upstream, not a URL: define `upstream app { server HOST:PORT }` and write `proxy app`".to_string()
                        });
                        let help = url
                            .or_else(|| suggest(upstream, names.iter().copied()))
                            .or_else(|| {
                                Some(if firsts.is_empty() {
                                    "define it with `upstream NAME { server HOST:PORT }`"
                                        .to_string()
                                } else {
                                    let mut k: Vec<&str> = firsts.keys().copied().collect();
                                    k.sort_unstable();
                                    format!("defined upstreams: {}", k.join(", "))
                                })
                            });
                        self.emit(
                            diag::error("E0303", span, format!("undefined upstream `{upstream}`"))
                                .help_opt(help),
                        );
                    }
                }
                if let (Some(w), Some(span)) = (&r.waf, rs.waf) {
                    if wfirst.contains_key(w.name.as_str()) {
                        used_waf.insert(&w.name, true);
                    } else {
                        let mut names: Vec<&str> = wfirst.keys().copied().collect();
                        names.sort_unstable();
                        if let Some(m) = diag::did_you_mean(&w.name, names.iter().copied()) {
                            used_waf.insert(m, true);
                        }
                        let help = suggest(&w.name, names.iter().copied()).or_else(|| {
                            Some("define it with `waf NAME { ruleset builtin/sqli }`".to_string())
                        });
                        self.emit(
                            diag::error("E0304", span, format!("undefined waf `{}`", w.name))
                                .help_opt(help),
                        );
                    }
                }
            }
        }
        // After a reference that did not resolve (or was lost to an error), "never used" may
        // be false: the broken reference may be the use.
        let uncertain = self.refs_uncertain
            || self
                .diags
                .list
                .iter()
                .any(|d| d.code == "E0303" || d.code == "E0304");
        for (u, s) in cfg.upstreams.iter().zip(&spans.upstreams) {
            if uncertain {
                break;
            }
            if !used_up.contains_key(u.name.as_str()) && firsts.get(u.name.as_str()) == Some(s) {
                self.emit(
                    diag::warning("W0101", *s, format!("upstream `{}` is never used", u.name))
                        .help("proxy to it from a route, or remove it"),
                );
            }
        }
        for (w, s) in cfg.wafs.iter().zip(&spans.wafs) {
            if uncertain {
                break;
            }
            if !used_waf.contains_key(w.name.as_str()) && wfirst.get(w.name.as_str()) == Some(s) {
                self.emit(
                    diag::warning("W0102", *s, format!("waf `{}` is never used", w.name))
                        .help("reference it from a route with `waf NAME`, or remove it"),
                );
            }
        }
        // Ports bound twice.
        let mut bound: Vec<(std::net::SocketAddr, Span)> = vec![];
        for (l, s) in cfg.listeners.iter().zip(&spans.listeners) {
            let Ok(sa) = l.addr.parse::<std::net::SocketAddr>() else {
                continue;
            };
            let clash = bound.iter().find(|(b, _)| {
                b.port() == sa.port()
                    && (b.ip() == sa.ip() || b.ip().is_unspecified() || sa.ip().is_unspecified())
            });
            if let Some((b, first)) = clash {
                self.emit(
                    diag::error(
                        "E0305",
                        *s,
                        format!("port {} is already bound by `listen {b}`", sa.port()),
                    )
                    .label(*first, "first bound here"),
                );
            } else {
                bound.push((sa, *s));
            }
        }
        // A host served by two sites.
        let mut hosts: HashMap<&HostPattern, (usize, Span)> = HashMap::new();
        for (k, (site, spans)) in cfg.sites.iter().zip(&spans.site_hosts).enumerate() {
            for (h, s) in site.hosts.iter().zip(spans) {
                if let Some((first_site, f)) = hosts.get(h) {
                    let name = match h {
                        HostPattern::Exact(x) => x.clone(),
                        HostPattern::Wildcard(x) => format!("*.{x}"),
                        HostPattern::Any => "*".into(),
                    };
                    let (msg, help) = if *first_site == k {
                        (
                            format!("host `{name}` is listed twice"),
                            "remove one of them",
                        )
                    } else {
                        (
                            format!("host `{name}` is served by two sites"),
                            "merge the routes into one site",
                        )
                    };
                    self.emit(
                        diag::error("E0307", *s, msg)
                            .label(*f, "first listed here")
                            .help(help),
                    );
                } else {
                    hosts.insert(h, (k, *s));
                }
            }
        }
        if cfg.listeners.is_empty() && !cfg.sites.is_empty() && !self.listen_uncertain {
            if let Some((s, _)) = spans.sites.first() {
                self.emit(
                    diag::warning(
                        "W0103",
                        *s,
                        "no `listen` directive: nothing will receive requests",
                    )
                    .help("add `listen 0.0.0.0:8080`"),
                );
            }
        }
        for (site, (_, rspans)) in cfg.sites.iter().zip(&spans.sites) {
            crate::routes::analyse(site, rspans, self.sources, self.diags);
        }
        self.config = cfg;
        self.spans = spans;
    }
}

fn names_of(n: &str) -> &'static str {
    ["proxy", "respond", "redirect", "static"]
        .into_iter()
        .find(|x| *x == n)
        .unwrap_or("action")
}

fn describe_ctx(ctx: &str) -> String {
    match ctx {
        "top level" => "the top level".to_string(),
        c => {
            let name = c.rsplit(' ').next().unwrap_or(c);
            let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
                "an"
            } else {
                "a"
            };
            format!("{article} `{name}` block")
        }
    }
}

/// The help line of a missing, extra or ill-typed argument of `directive` when `what` was
/// expected: how to write the value, or the directive's shape.
fn usage_help(directive: &str, what: &str) -> Option<String> {
    if what.contains("duration") {
        return Some("write a duration with its unit: `500ms`, `5s`, `10m`, `1h`".into());
    }
    if what.contains("size") {
        return Some("write a size with its unit: `512b`, `16kb`, `10mb`, `1gb`".into());
    }
    crate::hints::usage(directive).map(str::to_string)
}

/// A more precise message and help for an address that does not parse: a port out of range, a
/// bare port (`listen 80`), a URL (`http://app:80`).
fn address_problem(t: &str) -> (Option<String>, Option<String>) {
    if let Some(rest) = t.split_once("://").map(|(_, r)| r) {
        let hostport = rest.trim_end_matches('/');
        return (
            Some(format!("`{t}` is a URL, not an address")),
            Some(format!("write the address alone: `{hostport}`")),
        );
    }
    if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()) {
        return (
            None,
            Some(format!(
                "a port alone is written `:{t}` (every IPv4 address), or with an address: `0.0.0.0:{t}`"
            )),
        );
    }
    if let Some((_, port)) = t.rsplit_once(':') {
        if !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()) {
            if port.parse::<u32>().is_ok_and(|p| p > 65_535) || port.len() > 5 {
                return (
                    Some(format!("port {port} is out of range: expected 1 to 65535")),
                    Some("a port is a number from 1 to 65535".into()),
                );
            }
        } else if port.is_empty() || !t.contains(']') || t.ends_with(']') {
            return (
                None,
                Some("the port is missing or not a number: write host:port, for example `127.0.0.1:9000`".into()),
            );
        }
    } else {
        return (None, Some(format!("add a port: `{t}:80`")));
    }
    (None, None)
}

/// A DNS name or IP literal (no port).
fn valid_host(h: &str) -> bool {
    if h.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let h = h
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .map_or(h, |x| x);
    if h.parse::<std::net::Ipv6Addr>().is_ok() {
        return true;
    }
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

struct CondParser<'t> {
    toks: &'t [Arg],
    i: usize,
}

impl<'t> CondParser<'t> {
    fn peek(&self) -> Option<&'t Arg> {
        self.toks.get(self.i)
    }
    fn next(&mut self) -> Option<&'t Arg> {
        let t = self.toks.get(self.i);
        self.i += 1;
        t
    }
    fn eat(&mut self, w: &str) -> bool {
        if self.peek().is_some_and(|x| x.is_word(w)) {
            self.i += 1;
            true
        } else {
            false
        }
    }
}
