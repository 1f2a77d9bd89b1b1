//! bext-router: the "route" phase. Compiles the sites and routes of a configuration into
//! lookup tables once, and answers each request without allocating.
//!
//! Sites are chosen by host: exact names through a hash table (the request host is lower-cased
//! into a stack buffer), then wildcards longest suffix first, then the default site. Inside a
//! site, routes are tried in the order defined by [`bext_ir::routing`] — the same order the
//! checker reasons about: exact paths (hash table), regex paths in file order, prefixes longest
//! first, and among equal paths the route with more conditions first.
//!
//! What a lookup costs does not grow with the number of exact and prefix routes: exact paths
//! are one hash probe, prefixes one walk down a byte trie (`trie.rs`) as deep as the path, and
//! regex routes anchored at the start (`^/u/...`) are indexed by their literal prefix in another
//! trie, so only the regexes that can match the path run; unanchored regexes run on every
//! lookup of their site. Regexes match with small dense DFAs where possible (no per-search
//! state), the meta regex otherwise. `benches/lookup.rs` measures 10 to 10,000 routes, and
//! `tests/reference.rs` checks the tables against trying routes one by one.
//!
//! `rewrite` lives in `rewrite.rs`: compiled once ([`Rewrites`]), applied with a per-core
//! scratch ([`RewritesScratch`]) after routing.
//!
//! The engine hands the router the path in normal form without `;parameters`
//! (`bext_http1::normalize_path`, `route_view`); query parameters are matched as sent (not
//! percent-decoded); header names are case-insensitive, values case-sensitive. When a route matches the path and conditions but
//! not the method, and no other route matches, the answer is 405 instead of 404.
#![forbid(unsafe_code)]

pub mod explain;
mod rewrite;
mod trie;

pub use rewrite::{CompiledRewrite, RewriteScratch, Rewrites, RewritesScratch};

use trie::Trie;

use bext_ir::{routing, Config, HostPattern, Loc, MatchOp, PathMatch};
pub use bext_stage::RouteId;
use bext_stage::{RequestView, RouteResult, RouteStage};
use regex_automata::meta::Regex;
use regex_automata::Input;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// The multiplicative hash of rustc's `FxHasher`, a word at a time. The router's hash tables
/// are keyed by names and paths from the configuration, never by request data, and a lookup
/// only probes a table that is fixed at compile time, so a keyed (DoS-resistant) hash buys
/// nothing here; SipHash was a fifth of the lookup time.
#[derive(Default, Clone, Copy)]
struct FxHasher(u64);

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        // The low bits of a product depend only on the low bits of its factors, and keys such
        // as `/e5006` and `/e5016` share their first bytes: without this rotation they would
        // share their bucket. The high bits are the well-mixed ones.
        self.0.rotate_left(26)
    }
}

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Why a routing table cannot be built.
pub type RouterError = bext_ir::ConfigError;

#[derive(Debug)]
enum ValueMatch {
    Equals(Vec<u8>),
    Prefix(Vec<u8>),
    Contains(Vec<u8>),
    Regex(Box<Matcher>),
    Present,
}

impl ValueMatch {
    fn compile(op: &MatchOp, at: &Loc) -> Result<ValueMatch, RouterError> {
        Ok(match op {
            MatchOp::Equals(v) => ValueMatch::Equals(v.as_bytes().to_vec()),
            MatchOp::Prefix(v) => ValueMatch::Prefix(v.as_bytes().to_vec()),
            MatchOp::Contains(v) => ValueMatch::Contains(v.as_bytes().to_vec()),
            MatchOp::Regex(r) => ValueMatch::Regex(Box::new(Matcher::compile(r, at)?)),
            MatchOp::Present => ValueMatch::Present,
            MatchOp::InCidr(_) => {
                return Err(RouterError {
                    message: "a CIDR match applies to `client_ip` only, not to a route field"
                        .into(),
                    at: at.clone(),
                })
            }
        })
    }

    fn matches(&self, v: &[u8]) -> bool {
        match self {
            ValueMatch::Equals(x) => v == x.as_slice(),
            ValueMatch::Prefix(x) => v.starts_with(x),
            ValueMatch::Contains(x) => {
                x.is_empty() || v.windows(x.len()).any(|w| w == x.as_slice())
            }
            ValueMatch::Regex(r) => r.is_match(v),
            ValueMatch::Present => true,
        }
    }
}

/// Compiles a route, condition or rewrite regex with the limits the checker uses (E0208), so a
/// configuration `bext check` accepts always compiles here.
fn compile_regex(pattern: &str, at: &Loc) -> Result<Regex, RouterError> {
    Regex::builder()
        .configure(
            Regex::config()
                .nfa_size_limit(Some(4 << 20))
                .hybrid_cache_capacity(1 << 20),
        )
        .build(pattern)
        .map_err(|e| RouterError {
            message: format!("invalid regular expression `{pattern}`: {e}"),
            at: at.clone(),
        })
}

/// Largest dense DFA a route or condition regex may build before it falls back to the meta
/// regex alone.
const DFA_LIMIT: usize = 256 << 10;

/// A yes/no regex for routes and conditions. Where the pattern allows a small dense DFA (most
/// route patterns do), matching is a walk over an immutable table: no search cache, so no
/// lock or allocation when several cores share the router, and fewer instructions than the
/// meta regex's machinery. The meta regex is kept for patterns whose DFA would be too large
/// and for inputs the DFA gives up on (a Unicode word boundary on non-ASCII text).
#[derive(Debug)]
struct Matcher {
    dfa: Option<regex_automata::dfa::dense::DFA<Vec<u32>>>,
    meta: Regex,
}

impl Matcher {
    fn compile(pattern: &str, at: &Loc) -> Result<Matcher, RouterError> {
        use regex_automata::dfa::dense;
        let meta = compile_regex(pattern, at)?;
        let dfa = dense::Builder::new()
            .configure(
                dense::Config::new()
                    .dfa_size_limit(Some(DFA_LIMIT))
                    .determinize_size_limit(Some(4 * DFA_LIMIT))
                    .unicode_word_boundary(true),
            )
            .build(pattern)
            .ok();
        Ok(Matcher { dfa, meta })
    }

    fn is_match(&self, haystack: &[u8]) -> bool {
        use regex_automata::dfa::Automaton;
        if let Some(dfa) = &self.dfa {
            let input = Input::new(haystack).earliest(true);
            if let Ok(found) = dfa.try_search_fwd(&input) {
                return found.is_some();
            }
        }
        self.meta.is_match(haystack)
    }
}

#[derive(Debug)]
struct Field {
    name: Vec<u8>,
    op: ValueMatch,
}

#[derive(Debug)]
struct Entry {
    id: RouteId,
    /// Upper-case method tokens; empty = any.
    methods: Vec<Vec<u8>>,
    headers: Vec<Field>,
    query: Vec<Field>,
    /// `client_cert` conditions: `name` is `certificate`, `cn` or `dns`.
    client_cert: Vec<Field>,
}

/// First value of query parameter `name` (no decoding).
fn query_param<'a>(query: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    query.split(|&b| b == b'&').find_map(|pair| {
        let (k, v) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        (k == name).then_some(v)
    })
}

enum Check {
    Match,
    /// Everything but the method matched.
    WrongMethod,
    No,
}

impl Entry {
    fn check(&self, req: &RequestView<'_>) -> Check {
        let (method, headers, query) = (req.method_bytes, &req.headers, req.query);
        if !self.client_cert.is_empty() {
            let Some(cert) = req.client_cert else {
                return Check::No;
            };
            for f in &self.client_cert {
                let ok = match f.name.as_slice() {
                    b"cn" => cert
                        .common_name
                        .as_deref()
                        .is_some_and(|cn| f.op.matches(cn.as_bytes())),
                    b"dns" => cert.dns_names.iter().any(|n| f.op.matches(n.as_bytes())),
                    _ => true,
                };
                if !ok {
                    return Check::No;
                }
            }
        }
        for f in &self.headers {
            match headers.get(&f.name) {
                Some(v) if f.op.matches(v) => {}
                _ => return Check::No,
            }
        }
        for f in &self.query {
            match query.and_then(|q| query_param(q, &f.name)) {
                Some(v) if f.op.matches(v) => {}
                _ => return Check::No,
            }
        }
        if self.methods.is_empty() || self.methods.iter().any(|m| m.as_slice() == method) {
            Check::Match
        } else {
            Check::WrongMethod
        }
    }
}

/// A regex route with the position it has among the site's regex routes in match order.
#[derive(Debug)]
struct RegexRoute {
    regex: Matcher,
    entry: Entry,
}

#[derive(Debug, Default)]
struct SiteTable {
    exact: FastMap<Vec<u8>, Vec<Entry>>,
    /// In match order (file order).
    regex: Vec<RegexRoute>,
    /// Regex routes anchored at the start with a finite set of literal prefixes (`^/u/[0-9]+`
    /// begins with `/u/`), indexed by those literals: such a regex is run only on paths that
    /// begin with one of them. Values are indices into `regex`.
    regex_by_literal: Trie<u32>,
    /// Indices into `regex` of the other regex routes, which are run on every path; ascending.
    regex_always: Vec<u32>,
    /// Keyed by prefix; for one prefix, entries in match order (more conditions first).
    prefix: Trie<Entry>,
}

impl SiteTable {
    fn add_regex(&mut self, pattern: &str, regex: Matcher, entry: Entry) {
        let i = self.regex.len() as u32;
        match routing::anchored_prefixes(pattern) {
            Some(lits) => {
                for l in lits {
                    self.regex_by_literal.push(&l, i);
                }
            }
            None => self.regex_always.push(i),
        }
        self.regex.push(RegexRoute { regex, entry });
    }

    fn route(&self, req: &RequestView<'_>) -> RouteResult {
        let mut wrong_method = false;
        let mut try_entry = |e: &Entry| match e.check(req) {
            Check::Match => Some(e.id),
            Check::WrongMethod => {
                wrong_method = true;
                None
            }
            Check::No => None,
        };
        // An asterisk-form target (`OPTIONS *`, RFC 9112 §3.2.4) names the server, not a
        // resource: only the site's catch-all route `/*` takes it.
        if req.path == b"*" {
            if let Some(id) = self.prefix.get(b"/").iter().find_map(&mut try_entry) {
                return RouteResult::Matched(id);
            }
            return if wrong_method {
                RouteResult::MethodNotAllowed
            } else {
                RouteResult::NotFound
            };
        }
        if let Some(list) = (!self.exact.is_empty())
            .then(|| self.exact.get(req.path))
            .flatten()
        {
            if let Some(id) = list.iter().find_map(&mut try_entry) {
                return RouteResult::Matched(id);
            }
        }
        if !self.regex.is_empty() {
            // The first regex route in match order that takes the request wins; candidates
            // come from two lists, so keep the best (lowest) index found so far.
            let mut best: Option<(u32, RouteId)> = None;
            let mut consider = |i: u32| {
                if best.is_some_and(|(b, _)| b < i) {
                    return;
                }
                let r = &self.regex[i as usize];
                if r.regex.is_match(req.path) {
                    if let Some(id) = try_entry(&r.entry) {
                        best = Some((i, id));
                    }
                }
            };
            for &i in &self.regex_always {
                consider(i);
            }
            if !self.regex_by_literal.is_empty() {
                let mut n = self.regex_by_literal.deepest(req.path);
                while let Some(node) = n {
                    for &i in self.regex_by_literal.values(node) {
                        consider(i);
                    }
                    n = self.regex_by_literal.shorter(node);
                }
            }
            if let Some((_, id)) = best {
                return RouteResult::Matched(id);
            }
        }
        let mut n = self.prefix.deepest(req.path);
        while let Some(node) = n {
            if let Some(id) = self.prefix.values(node).iter().find_map(&mut try_entry) {
                return RouteResult::Matched(id);
            }
            n = self.prefix.shorter(node);
        }
        if wrong_method {
            RouteResult::MethodNotAllowed
        } else {
            RouteResult::NotFound
        }
    }
}

/// The compiled router of one configuration.
#[derive(Debug, Default)]
pub struct Router {
    sites: Vec<SiteTable>,
    exact_hosts: FastMap<Vec<u8>, usize>,
    /// `.suffix` (with the leading dot), longest first.
    wildcards: Vec<(Vec<u8>, usize)>,
    default_site: Option<usize>,
}

/// Longest host name matched through the stack buffer (DNS names have at most 253 octets).
const MAX_HOST: usize = 256;

impl Router {
    pub fn compile(config: &Config) -> Result<Router, RouterError> {
        let mut r = Router::default();
        for (si, site) in config.sites.iter().enumerate() {
            let mut table = SiteTable::default();
            for ri in routing::match_order(&site.routes) {
                let route = &site.routes[ri];
                let entry = Entry {
                    id: RouteId(bext_stage::flat_route_index(config, si, ri)),
                    methods: route
                        .methods
                        .iter()
                        .map(|m| m.to_ascii_uppercase().into_bytes())
                        .collect(),
                    headers: route
                        .headers
                        .iter()
                        .map(|f| {
                            Ok(Field {
                                name: f.name.as_bytes().to_vec(),
                                op: ValueMatch::compile(&f.op, &route.at)?,
                            })
                        })
                        .collect::<Result<_, RouterError>>()?,
                    query: route
                        .query
                        .iter()
                        .map(|f| {
                            Ok(Field {
                                name: f.name.as_bytes().to_vec(),
                                op: ValueMatch::compile(&f.op, &route.at)?,
                            })
                        })
                        .collect::<Result<_, RouterError>>()?,
                    client_cert: route
                        .client_cert
                        .iter()
                        .map(|f| {
                            Ok(Field {
                                name: f.name.as_bytes().to_vec(),
                                op: ValueMatch::compile(&f.op, &route.at)?,
                            })
                        })
                        .collect::<Result<_, RouterError>>()?,
                };
                match &route.path {
                    PathMatch::Exact(p) => table
                        .exact
                        .entry(p.as_bytes().to_vec())
                        .or_default()
                        .push(entry),
                    PathMatch::Regex(re) => {
                        table.add_regex(re, Matcher::compile(re, &route.at)?, entry)
                    }
                    PathMatch::Prefix(p) => table.prefix.push(p.as_bytes(), entry),
                }
            }
            table.prefix.finish();
            table.regex_by_literal.finish();
            r.sites.push(table);
            let hosts: Vec<HostPattern> = if site.hosts.is_empty() {
                vec![HostPattern::Any]
            } else {
                site.hosts.clone()
            };
            for h in hosts {
                match h {
                    HostPattern::Exact(name) => {
                        r.exact_hosts
                            .entry(name.to_ascii_lowercase().into_bytes())
                            .or_insert(si);
                    }
                    HostPattern::Wildcard(suffix) => {
                        let mut s = b".".to_vec();
                        s.extend_from_slice(suffix.to_ascii_lowercase().as_bytes());
                        r.wildcards.push((s, si));
                    }
                    HostPattern::Any => {
                        r.default_site.get_or_insert(si);
                    }
                }
            }
        }
        // Stable: equal suffix lengths keep file order.
        r.wildcards.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
        Ok(r)
    }

    fn site_for(&self, host: &[u8]) -> Option<usize> {
        if self.exact_hosts.is_empty() && self.wildcards.is_empty() {
            return self.default_site;
        }
        let mut lower = [0u8; MAX_HOST];
        if host.len() <= MAX_HOST {
            let l = &mut lower[..host.len()];
            l.copy_from_slice(host);
            l.make_ascii_lowercase();
            // Hashing costs more than the whole lookup when there is nothing to find.
            if !self.exact_hosts.is_empty() {
                if let Some(&si) = self.exact_hosts.get(&l[..]) {
                    return Some(si);
                }
            }
            for (suffix, si) in &self.wildcards {
                if l.len() > suffix.len() && l.ends_with(suffix) {
                    return Some(*si);
                }
            }
        }
        self.default_site
    }
}

impl RouteStage for Router {
    fn route(&self, req: &RequestView<'_>) -> RouteResult {
        match self.site_for(req.host) {
            Some(si) => self.sites[si].route(req),
            None => RouteResult::NotFound,
        }
    }

    fn site(&self, host: &[u8]) -> Option<usize> {
        self.site_for(host)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use bext_http1::{Header, Span};
    use bext_ir::{Action, FieldCond, Route, Site};
    use bext_stage::Headers;

    pub(crate) fn route(path: PathMatch, methods: &[&str]) -> Route {
        let mut r = Route::new(
            path,
            Action::Respond {
                status: 200,
                body: String::new(),
                content_type: None,
            },
            Loc::default(),
        );
        r.methods = methods.iter().map(|m| m.to_string()).collect();
        r
    }

    fn config() -> Config {
        let mut with_header = route(PathMatch::Prefix("/api/".into()), &[]);
        with_header.headers.push(FieldCond {
            name: "X-Beta".into(),
            op: MatchOp::Equals("1".into()),
        });
        let mut with_query = route(PathMatch::Exact("/q".into()), &[]);
        with_query.query.push(FieldCond {
            name: "v".into(),
            op: MatchOp::Regex("^[0-9]+$".into()),
        });
        Config {
            sites: vec![
                Site {
                    hosts: vec![HostPattern::Exact("example.com".into())],
                    routes: vec![
                        route(PathMatch::Prefix("/".into()), &[]),             // 0
                        route(PathMatch::Prefix("/api/".into()), &[]),         // 1
                        route(PathMatch::Exact("/healthz".into()), &["GET"]),  // 2
                        route(PathMatch::Regex("^/user/[0-9]+$".into()), &[]), // 3
                        with_header,                                           // 4
                        with_query,                                            // 5
                    ],
                    paths: Default::default(),
                    redirect_https: None,
                    hsts: None,
                    at: Loc::default(),
                },
                Site {
                    hosts: vec![HostPattern::Wildcard("example.com".into())],
                    routes: vec![route(PathMatch::Prefix("/".into()), &[])], // 6
                    paths: Default::default(),
                    redirect_https: None,
                    hsts: None,
                    at: Loc::default(),
                },
                Site {
                    hosts: vec![],
                    routes: vec![route(PathMatch::Exact("/only".into()), &["POST"])], // 7
                    paths: Default::default(),
                    redirect_https: None,
                    hsts: None,
                    at: Loc::default(),
                },
            ],
            ..Config::default()
        }
    }

    /// Build a header list over a small buffer: "name: value" pairs joined.
    fn lookup(
        r: &Router,
        method: &str,
        host: &str,
        target: &str,
        headers: &[(&str, &str)],
    ) -> RouteResult {
        let mut buf = Vec::new();
        let mut list = Vec::new();
        for (n, v) in headers {
            let ns = buf.len() as u32;
            buf.extend_from_slice(n.as_bytes());
            let ne = buf.len() as u32;
            buf.extend_from_slice(v.as_bytes());
            let ve = buf.len() as u32;
            list.push(Header {
                name: Span { start: ns, end: ne },
                value: Span { start: ne, end: ve },
            });
        }
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q.as_bytes())),
            None => (target, None),
        };
        let view = RequestView {
            method: None,
            method_bytes: method.as_bytes(),
            host: host.as_bytes(),
            path: path.as_bytes(),
            query,
            headers: Headers::new(&buf, &list),
            client: "127.0.0.1:1".parse().unwrap(),
            tls: false,
            client_cert: None,
        };
        r.route(&view)
    }

    #[test]
    fn routes_follow_the_shared_priority() {
        use RouteResult::*;
        let r = Router::compile(&config()).unwrap();
        let m = |i| Matched(RouteId(i));
        type Case<'a> = (
            &'a str,
            &'a str,
            &'a str,
            &'a [(&'a str, &'a str)],
            RouteResult,
        );
        let table: &[Case] = &[
            ("GET", "example.com", "/", &[], m(0)),
            ("GET", "EXAMPLE.com", "/x", &[], m(0)),
            ("GET", "example.com", "/api/v1", &[], m(1)),
            ("GET", "example.com", "/api/v1", &[("x-beta", "1")], m(4)),
            ("GET", "example.com", "/api/v1", &[("x-beta", "2")], m(1)),
            ("GET", "example.com", "/healthz", &[], m(2)),
            ("POST", "example.com", "/healthz", &[], m(0)),
            ("GET", "example.com", "/user/42", &[], m(3)),
            ("GET", "example.com", "/user/4x", &[], m(0)),
            ("GET", "example.com", "/q?a=1&v=12", &[], m(5)),
            ("GET", "example.com", "/q?v=x", &[], m(0)),
            ("GET", "a.example.com", "/", &[], m(6)),
            ("GET", "a.b.EXAMPLE.COM", "/", &[], m(6)),
            ("GET", "other.org", "/only", &[], MethodNotAllowed),
            ("POST", "other.org", "/only", &[], m(7)),
            ("GET", "other.org", "/nothing", &[], NotFound),
            // Asterisk-form: only the site's catch-all `/*` takes `*`.
            ("OPTIONS", "example.com", "*", &[], m(0)),
            ("OPTIONS", "a.example.com", "*", &[], m(6)),
            ("OPTIONS", "other.org", "*", &[], NotFound),
        ];
        for (method, host, target, headers, want) in table {
            assert_eq!(
                lookup(&r, method, host, target, headers),
                *want,
                "{method} {host}{target}"
            );
        }
    }

    #[test]
    fn no_default_site_means_not_found_for_unknown_hosts() {
        let mut c = config();
        c.sites.pop();
        let r = Router::compile(&c).unwrap();
        assert_eq!(
            lookup(&r, "GET", "other.org", "/", &[]),
            RouteResult::NotFound
        );
        assert_eq!(
            lookup(&r, "GET", "example.com.evil", "/", &[]),
            RouteResult::NotFound
        );
    }

    #[test]
    fn invalid_regexes_are_reported_with_their_location() {
        let mut c = config();
        c.sites[0].routes[3].path = PathMatch::Regex("(".into());
        c.sites[0].routes[3].at = Loc {
            file: "a.bext".into(),
            line: 3,
            col: 5,
        };
        let e = Router::compile(&c).unwrap_err();
        assert_eq!(e.at.line, 3);
        assert!(
            e.to_string()
                .starts_with("a.bext:3:5: invalid regular expression `(`"),
            "{e}"
        );
    }

    #[test]
    fn matchers_use_a_dfa_where_small_and_fall_back_to_the_meta_regex() {
        // (pattern, has a DFA, haystack, matches)
        let table: &[(&str, bool, &str, bool)] = &[
            ("^/u/[0-9]+$", true, "/u/42", true),
            ("^/u/[0-9]+$", true, "/u/42/x", false),
            ("(?i)bot", true, "GoogleBOT/2.1", true),
            ("admin", true, "/x/admin", true),
            // A Unicode word boundary: the DFA gives up on non-ASCII text, the meta regex answers.
            (r"\bcafé\b", true, "/un café noir", true),
            (r"\bcafé\b", true, "/cafés", false),
            // Too large a DFA: the meta regex alone.
            (r"\w{40}[0-9]", false, &"é".repeat(40), false),
            (r"\w{40}[0-9]", false, &format!("{}7", "é".repeat(40)), true),
        ];
        for (pattern, has_dfa, hay, want) in table {
            let m = Matcher::compile(pattern, &Loc::default()).unwrap();
            assert_eq!(m.dfa.is_some(), *has_dfa, "{pattern}");
            assert_eq!(m.is_match(hay.as_bytes()), *want, "{pattern} on {hay}");
        }
    }

    #[test]
    fn query_parameters_are_found_by_exact_name() {
        let table: &[(&str, &str, Option<&str>)] = &[
            ("a=1&b=2", "b", Some("2")),
            ("a=1&b", "b", Some("")),
            ("ab=1", "a", None),
            ("", "a", None),
        ];
        for (q, name, want) in table {
            assert_eq!(
                query_param(q.as_bytes(), name.as_bytes()),
                want.map(str::as_bytes),
                "{q} {name}"
            );
        }
    }
}
