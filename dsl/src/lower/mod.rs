//! Checks and lowering: from directives (with spans) to the IR, reporting every mistake.
//!
//! Each block kind has a table of the directives it accepts ([`CONTEXTS`]). A directive is
//! checked argument by argument through `Args`, which reports a missing, extra or ill-typed
//! argument at its own span and keeps going, so one run reports every mistake. What can be
//! lowered is lowered even when something else is wrong; the caller discards the IR if any
//! error was reported.
//!
//! Cross-references (upstream and WAF names), duplicate names, listener ports and the route
//! table are checked after every item is lowered, with the spans kept in [`Spans`].
//!
//! One file per block, each with the diagnostics of what it lowers:
//!
//! ```text
//! mod.rs          the lowering state, the directive tables, the top level
//! args.rs         the argument cursor; numbers, sizes, durations, keywords, statuses
//! values.rs       values several blocks share: paths, header names, addresses, CIDRs, regexes
//! global.rs       global { workers admin pid_file limits timeouts access_log trusted_proxies metrics
//!                 tracing }
//! listen.rs       listen ADDR [tls { cert ... }] [http3 { ... }]
//! upstream.rs     upstream NAME { server balance keepalive health eject retry timeouts ... }
//! waf.rs          waf NAME { ruleset rule inspect_body }, and rule conditions
//! site.rs         site HOST... { route merge_slashes escaped_slashes }
//! route.rs        route PATH { matching, one action, path and header edits, plugins }
//! cache.rs        cache { ttl max stale_while_revalidate } in a route
//! compress.rs     compress ENCODING... { level min_size types } in a route
//! rate_limit.rs   rate_limit RATE [per KEY | global] [burst N] in a route
//! cross_check.rs  checks across blocks, after every block is lowered
//! ```

mod args;
mod cache;
mod compress;
mod cross_check;
mod global;
mod listen;
mod rate_limit;
mod route;
mod site;
mod upstream;
mod values;
mod waf;

pub use site::MAX_ROUTES_PER_SITE;
pub use values::MAX_REGEXES;
pub use waf::RULESETS;

use crate::ast::Directive;
use crate::diag::{self, suggest, Diags, Sources, Span};
use bext_ir::{Config, Loc};
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
            "metrics",
            "tracing",
        ],
    ),
    ("tracing", &["sample", "parent", "otlp", "service"]),
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
    (
        "tls",
        &["cert", "alpn", "client_auth", "tickets", "session_cache"],
    ),
    ("client_auth", &["ca", "required", "optional"]),
    (
        "http3",
        &[
            "max_streams",
            "stream_window",
            "connection_window",
            "idle_timeout",
            "early_data",
        ],
    ),
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
    (
        "waf",
        &[
            "ruleset",
            "rule",
            "inspect_body",
            "body_limit",
            "import",
            "mode",
            "past_limit",
        ],
    ),
    (
        "site",
        &[
            "route",
            "merge_slashes",
            "escaped_slashes",
            "redirect",
            "hsts",
        ],
    ),
    (
        "route",
        &[
            "method",
            "header",
            "query",
            "client_cert",
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
    (
        "cache",
        &[
            "ttl",
            "max",
            "stale_while_revalidate",
            "key",
            "bypass",
            "ignore_query",
            "store_errors",
            "store_set_cookie",
        ],
    ),
    ("compress", &["level", "min_size", "types"]),
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
    /// The `redirect https` lines, in site order.
    pub https_redirects: Vec<Span>,
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
        if let Some(&first) = seen.get(&d.name) {
            self.given_twice(d.name_span, &d.name, first);
            return false;
        }
        seen.insert(d.name.clone(), d.name_span);
        true
    }

    /// E0103: `what`, which may be given once, is given again at `span`.
    fn given_twice(&mut self, span: Span, what: &str, first: Span) {
        self.emit(
            diag::error("E0103", span, format!("`{what}` is given more than once"))
                .label(first, "first given here")
                .help("keep one of them"),
        );
    }

    /// `kind` `name` is defined again at `span`: E0301 for an upstream, E0302 for a WAF or a
    /// rule.
    fn defined_twice(
        &mut self,
        code: &'static str,
        kind: &str,
        name: &str,
        span: Span,
        first: Span,
    ) {
        self.emit(
            diag::error(code, span, format!("{kind} `{name}` is defined twice"))
                .label(first, "first defined here"),
        );
    }

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
