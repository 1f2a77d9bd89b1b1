//! `bext explain FILE 'GET https://host/path?q' [-H 'Name: value']…`: what bext would do with
//! one request, without serving it — the site its host selects, the routes tried in the
//! router's order and why each did not take it, the route chosen (with its place in the file),
//! the stages that run on it in their order, and how the upstream is picked.
//!
//! The path goes through the engine's normal form first (`bext_http1::normalize_path` with the
//! site's options, then `route_view`), and the reasoning is `bext_router::explain`, checked
//! against the compiled router on every request here (and on the router's priority table in its
//! tests): an explanation that disagreed with the router would be refused, never printed.

use bext_http1::{Header, Span};
use bext_ir as ir;
use bext_router::explain::{describe_condition, Explanation, Verdict};
use bext_stage::{Headers, RequestView, RouteResult, RouteStage};
use serde_json::{json, Value};

/// The request to explain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// `http` or `https` when the target was absolute.
    pub scheme: Option<String>,
    /// Lower case, without port; from the absolute target, else from `Host`.
    pub host: String,
    /// As sent (before the normal form).
    pub path: String,
    pub query: Option<String>,
    /// Header fields as given (`Host` included when given).
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// `METHOD TARGET` (`GET https://a.test/x?q=1`, or `GET /x` with a `Host` field) and
    /// `Name: value` fields.
    pub fn parse(line: &str, fields: &[String]) -> Result<Request, String> {
        let mut words = line.split_whitespace();
        let (Some(method), Some(target), None) = (words.next(), words.next(), words.next()) else {
            return Err(format!(
                "`{line}`: write the request as `METHOD TARGET`, such as `GET https://example.com/path?q`"
            ));
        };
        if !method
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        {
            return Err(format!("`{method}` is not a method"));
        }
        let mut headers = Vec::new();
        for f in fields {
            let Some((n, v)) = f.split_once(':') else {
                return Err(format!("`{f}`: write a header as `Name: value`"));
            };
            let n = n.trim();
            if n.is_empty() || n.bytes().any(|b| b.is_ascii_whitespace()) {
                return Err(format!("`{f}`: not a header name"));
            }
            headers.push((n.to_string(), v.trim().to_string()));
        }
        let (scheme, authority, rest) = match target.split_once("://") {
            Some((scheme, after)) => {
                let scheme = scheme.to_ascii_lowercase();
                if scheme != "http" && scheme != "https" {
                    return Err(format!("`{target}`: only http and https targets"));
                }
                let cut = after.find(['/', '?']).unwrap_or(after.len());
                (Some(scheme), Some(&after[..cut]), &after[cut..])
            }
            None if target.starts_with('/') || target == "*" => (None, None, target),
            None => {
                return Err(format!(
                    "`{target}`: the target is an absolute URL (`https://host/path`) or a path"
                ))
            }
        };
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q.to_string())),
            None => (rest, None),
        };
        let path = if path.is_empty() { "/" } else { path };
        let host_field = (headers.iter())
            .find(|(n, _)| n.eq_ignore_ascii_case("host"))
            .map(|(_, v)| v.as_str());
        // An absolute target's authority wins over Host, as in the engine.
        let host = authority.or(host_field).unwrap_or("");
        let host = strip_port(host).to_ascii_lowercase();
        Ok(Request {
            method: method.to_string(),
            scheme,
            host,
            path: path.to_string(),
            query,
            headers,
        })
    }
}

fn strip_port(h: &str) -> &str {
    if let Some(rest) = h.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match h.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => h,
    }
}

/// One step of the route's pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The phase (`request filters`, `handler` ...), as in `docs/architecture.md`.
    pub phase: &'static str,
    pub what: String,
    pub at: Option<ir::Loc>,
}

/// What bext would do with the request.
#[derive(Debug)]
pub struct Report {
    pub request: Request,
    /// The path the router sees (normal form, without `;parameters`).
    pub routed_path: String,
    /// The path was refused before routing (400): why.
    pub refused: Option<String>,
    pub explanation: Option<Explanation>,
    /// Per route tried: (label, place, verdict text).
    pub tried: Vec<(String, ir::Loc, String, bool)>,
    /// The chosen route (site index, route index in the site).
    pub chosen: Option<(usize, usize)>,
    pub status: Option<u16>,
    pub steps: Vec<Step>,
    pub upstream: Option<Value>,
    /// Directives of the configuration this engine does not run (`bext run` would refuse it).
    pub unsupported: Vec<String>,
}

/// Explain `req` against `config`.
pub fn explain(config: &ir::Config, req: Request) -> Result<Report, String> {
    let router = bext_router::Router::compile(config).map_err(|e| e.to_string())?;
    let paths = bext_engine::origin::SitePaths::compile(config);
    let opts = paths.options(|| router.site(req.host.as_bytes()));
    let mut report = Report {
        routed_path: String::new(),
        refused: None,
        explanation: None,
        tried: vec![],
        chosen: None,
        status: None,
        steps: vec![],
        upstream: None,
        unsupported: crate::unsupported_features(config)
            .iter()
            .map(|u| u.to_string())
            .collect(),
        request: req,
    };
    let req = &report.request;
    let normal = match bext_http1::normalize_path(req.path.as_bytes(), &opts) {
        Ok(p) => p.into_owned(),
        Err(e) => {
            report.refused = Some(format!("{e:?}"));
            report.status = Some(400);
            return Ok(report);
        }
    };
    let routed = bext_http1::route_view(&normal, &opts).into_owned();
    report.routed_path = String::from_utf8_lossy(&routed).into_owned();
    let mut buf = Vec::new();
    let mut list = Vec::new();
    for (n, v) in &req.headers {
        let ns = buf.len() as u32;
        buf.extend_from_slice(n.as_bytes());
        let ne = buf.len() as u32;
        buf.extend_from_slice(v.as_bytes());
        list.push(Header {
            name: Span { start: ns, end: ne },
            value: Span {
                start: ne,
                end: buf.len() as u32,
            },
        });
    }
    let view = RequestView {
        method: None,
        method_bytes: req.method.as_bytes(),
        host: req.host.as_bytes(),
        path: &routed,
        query: req.query.as_deref().map(str::as_bytes),
        headers: Headers::new(&buf, &list),
        client: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        tls: req.scheme.as_deref() == Some("https"),
        client_cert: None,
    };
    let e = bext_router::explain::explain(config, &view).map_err(|e| e.to_string())?;
    let routed_by_router = router.route(&view);
    if e.result != routed_by_router {
        return Err(format!(
            "internal error: the explanation ({:?}) disagrees with the router ({routed_by_router:?}); please report it",
            e.result
        ));
    }
    if let Some(site) = &e.site {
        let s = &config.sites[site.index];
        for t in &e.tried {
            let r = &s.routes[t.route];
            let label = bext_engine::metrics::route_label(r);
            let why = verdict_text(r, &t.verdict);
            report
                .tried
                .push((label, r.at.clone(), why, t.verdict == Verdict::Matched));
        }
    }
    match e.result {
        RouteResult::Matched(_) => {
            let (si, t) = match (&e.site, e.tried.last()) {
                (Some(s), Some(t)) => (s.index, t.route),
                _ => return Err("internal error: a match without a route".into()),
            };
            report.chosen = Some((si, t));
            let r = &config.sites[si].routes[t];
            report.steps = steps(config, r);
            if let ir::Action::Proxy { upstream } = &r.action {
                report.upstream = config
                    .upstreams
                    .iter()
                    .find(|u| &u.name == upstream)
                    .map(upstream_policy);
            }
        }
        RouteResult::NotFound => report.status = Some(404),
        RouteResult::MethodNotAllowed => report.status = Some(405),
    }
    report.explanation = Some(e);
    Ok(report)
}

fn verdict_text(r: &ir::Route, v: &Verdict) -> String {
    match v {
        Verdict::Matched => "matches".into(),
        Verdict::Path => match &r.path {
            ir::PathMatch::Exact(p) => format!("the path is not `{p}`"),
            ir::PathMatch::Prefix(p) => format!("the path does not start with `{p}`"),
            ir::PathMatch::Regex(re) => format!("the path does not match `{re}`"),
        },
        Verdict::Asterisk => "an asterisk-form target (`*`) is taken by `/*` only".into(),
        Verdict::ClientCert { missing: true } => {
            "it needs a verified client certificate (`client_cert …`), and the request is explained as one without".into()
        }
        Verdict::ClientCert { missing: false } => {
            "the client certificate's names do not match its `client_cert` conditions".into()
        }
        Verdict::Header { name, missing } | Verdict::Query { name, missing } => {
            let (kind, conds) = match v {
                Verdict::Header { .. } => ("header", &r.headers),
                _ => ("query", &r.query),
            };
            let cond = (conds.iter())
                .find(|c| &c.name == name)
                .map(|c| describe_condition(kind, c))
                .unwrap_or_else(|| format!("{kind} {name}"));
            if *missing {
                format!("`{cond}`: the request has no {kind} `{name}`")
            } else {
                format!("`{cond}` does not hold")
            }
        }
        Verdict::Method { allowed } => format!(
            "path and conditions match, but the method is not one of {}",
            allowed.join(", ")
        ),
    }
}

/// The steps that run on route `r`, phase by phase, in the order the compiler fixes them
/// (`bext::compile_carrying`: rate limits, then the WAF, then compression; built-in steps at
/// their place in their phase).
pub fn steps(config: &ir::Config, r: &ir::Route) -> Vec<Step> {
    let mut out = Vec::new();
    let mut step = |phase: &'static str, what: String, at: Option<&ir::Loc>| {
        out.push(Step {
            phase,
            what,
            at: at.cloned(),
        })
    };
    if let Some(l) = &r.rate_limit {
        let key = match &l.key {
            ir::RateKey::ClientIp => "per client_ip".to_string(),
            ir::RateKey::Header(h) => format!("per header {h}"),
            ir::RateKey::Global => "global".to_string(),
        };
        step(
            "request filters",
            format!(
                "rate_limit {} per {} {key} burst {} (429 with Retry-After over it)",
                l.requests,
                duration(l.per_ms),
                l.burst
            ),
            Some(&l.at),
        );
    }
    if let Some(w) = &r.waf {
        let body = config
            .wafs
            .iter()
            .find(|x| x.name == w.name)
            .is_some_and(|x| x.inspect_body_bytes.is_some());
        let exclude = if r.waf_exclude.is_empty() {
            String::new()
        } else {
            let ids: Vec<String> = r.waf_exclude.iter().map(u32::to_string).collect();
            format!(" excluding rules {}", ids.join(" "))
        };
        step(
            "request filters",
            format!("waf {} (request head){exclude}", w.name),
            Some(&w.at),
        );
        if body {
            step(
                "request body filters",
                format!("waf {} (request body, read whole first)", w.name),
                Some(&w.at),
            );
        }
    }
    for p in &r.plugins {
        step("request filters", format!("plugin {}", p.path), Some(&p.at));
    }
    if let Some(rw) = &r.rewrite {
        step(
            "handler",
            format!("rewrite '{}' to \"{}\"", rw.pattern, rw.replacement),
            Some(&rw.at),
        );
    }
    let proxied = matches!(r.action, ir::Action::Proxy { .. });
    if proxied {
        if let Some(p) = &r.strip_prefix {
            step("handler", format!("strip_prefix {p}"), None);
        }
        for op in &r.request_headers {
            step("handler", format!("request_header {}", header_op(op)), None);
        }
    }
    if let Some(c) = &r.cache {
        step(
            "handler",
            format!(
                "cache lookup (ttl {}): a fresh hit is answered here, a miss goes on to the proxy and may be stored",
                duration(c.ttl_ms)
            ),
            Some(&c.at),
        );
    }
    let handler = match &r.action {
        ir::Action::Proxy { upstream } => {
            let buffering = if r.request_buffering {
                ", request body read whole first"
            } else {
                ""
            };
            format!("proxy {upstream}{buffering}")
        }
        ir::Action::Respond { status, body, .. } => {
            format!("respond {status} ({} byte body)", body.len())
        }
        ir::Action::Redirect { status, location } => format!("redirect {status} \"{location}\""),
        ir::Action::Static { root, .. } => format!("static \"{root}\""),
    };
    step("handler", handler, Some(&r.at));
    for op in &r.response_headers {
        step(
            "response head filters",
            format!("response_header {}", header_op(op)),
            None,
        );
    }
    if let Some(c) = &r.compress {
        let enc: Vec<&str> = c.encodings.iter().map(|e| e.token()).collect();
        step(
            "response head filters",
            format!(
                "compress {} (responses of {} bytes or more; types {})",
                enc.join(" "),
                c.min_size,
                c.types.join(" ")
            ),
            Some(&c.at),
        );
        step(
            "response body filters",
            format!("compress {}", enc.join(" ")),
            Some(&c.at),
        );
    }
    if let Some(log) = &config.global.access_log {
        let target = match &log.target {
            ir::LogTarget::Stdout => "stdout".to_string(),
            ir::LogTarget::Stderr => "stderr".to_string(),
            ir::LogTarget::File(f) => format!("\"{f}\""),
        };
        step("log", format!("access_log {target}"), Some(&log.at));
    }
    out
}

fn header_op(op: &ir::HeaderOp) -> String {
    match op {
        ir::HeaderOp::Set { name, value } => format!("set {name} {value:?}"),
        ir::HeaderOp::Add { name, value } => format!("add {name} {value:?}"),
        ir::HeaderOp::Remove { name } => format!("remove {name}"),
    }
}

fn duration(ms: u64) -> String {
    match ms {
        m if m % 86_400_000 == 0 && m > 0 => format!("{}d", m / 86_400_000),
        m if m % 3_600_000 == 0 && m > 0 => format!("{}h", m / 3_600_000),
        m if m % 60_000 == 0 && m > 0 => format!("{}m", m / 60_000),
        m if m % 1000 == 0 && m > 0 => format!("{}s", m / 1000),
        m => format!("{m}ms"),
    }
}

/// How the upstream picks a server, as JSON (also the source of the text form).
fn upstream_policy(u: &ir::Upstream) -> Value {
    let balance = match &u.balance {
        ir::Balance::RoundRobin => "round_robin: smooth weighted round robin, per core".into(),
        ir::Balance::LeastConn => {
            "least_conn: the server with the fewest requests in flight on this core (weighted)"
                .into()
        }
        ir::Balance::P2c => {
            "p2c: the better of two random servers by latency (EWMA) and load".into()
        }
        ir::Balance::Random => "random: weighted random".into(),
        ir::Balance::Hash(k) => {
            let key = match k {
                ir::HashKey::ClientIp => "the client address".to_string(),
                ir::HashKey::Header(h) => format!("header {h}"),
                ir::HashKey::Cookie(c) => format!("cookie {c}"),
            };
            format!("hash: consistent hashing on {key}")
        }
    };
    let servers: Vec<Value> = (u.servers.iter())
        .map(|s| json!({"addr": s.addr, "weight": s.weight, "backup": s.backup}))
        .collect();
    let retry = u.retry.as_ref().map(|r| {
        let on: Vec<String> = (r.on.iter())
            .map(|o| match o {
                ir::RetryOn::ConnectError => "connect_error".to_string(),
                ir::RetryOn::Timeout => "timeout".to_string(),
                ir::RetryOn::Status(s) => s.to_string(),
            })
            .collect();
        format!(
            "{} more attempt(s) on {}, within a budget of {}% of recent requests",
            r.attempts,
            on.join(" "),
            r.budget_percent
        )
    });
    let eject = u.passive.as_ref().map(|p| {
        format!(
            "after {} consecutive failures, for {} doubling up to {}",
            p.consecutive_failures,
            duration(p.base_ejection_ms),
            duration(p.max_ejection_ms)
        )
    });
    let health = u.health.as_ref().map(|h| {
        let kind = match &h.kind {
            ir::HealthKind::Tcp => "tcp".to_string(),
            ir::HealthKind::Http { path } => format!("http GET {path}"),
        };
        format!(
            "{kind} every {}, down after {} failures, up after {} successes",
            duration(h.interval_ms),
            h.unhealthy,
            h.healthy
        )
    });
    json!({
        "name": u.name,
        "at": u.at.to_string(),
        "balance": balance,
        "servers": servers,
        "retry": retry.unwrap_or_else(|| "off".into()),
        "eject": eject.unwrap_or_else(|| "off".into()),
        "health": health.unwrap_or_else(|| "none (every server up)".into()),
        "max_connections": u.max_connections,
        "max_pending": u.max_pending,
    })
}

impl Report {
    /// The report as JSON (`--format json`).
    pub fn to_json(&self, config: &ir::Config) -> Value {
        let r = &self.request;
        let site = self
            .explanation
            .as_ref()
            .and_then(|e| e.site.as_ref())
            .map(|s| {
                json!({
                    "index": s.index,
                    "hosts": crate::explain::site_hosts(&config.sites[s.index]),
                    "matched_by": s.pattern,
                    "kind": s.kind,
                    "at": config.sites[s.index].at.to_string(),
                })
            });
        let tried: Vec<Value> = (self.tried.iter())
            .map(|(label, at, why, matched)| {
                json!({"route": label, "at": at.to_string(), "matched": matched, "reason": why})
            })
            .collect();
        let chosen = self.chosen.map(|(si, ri)| {
            let route = &config.sites[si].routes[ri];
            json!({
                "route": bext_engine::metrics::route_label(route),
                "at": route.at.to_string(),
                "file": route.at.file,
                "line": route.at.line,
                "col": route.at.col,
            })
        });
        let steps: Vec<Value> = (self.steps.iter())
            .map(|s| {
                json!({"phase": s.phase, "step": s.what, "at": s.at.as_ref().map(ToString::to_string)})
            })
            .collect();
        json!({
            "request": {
                "method": r.method,
                "scheme": r.scheme,
                "host": r.host,
                "path": r.path,
                "query": r.query,
                "routed_path": self.routed_path,
            },
            "refused": self.refused,
            "site": site,
            "tried": tried,
            "route": chosen,
            "status": self.status,
            "stages": steps,
            "upstream": self.upstream,
            "unsupported": self.unsupported,
        })
    }

    /// The report as text for a person; `source` gives a file's line for the chosen route.
    pub fn to_text(
        &self,
        config: &ir::Config,
        source: &dyn Fn(&ir::Loc) -> Option<String>,
    ) -> String {
        use std::fmt::Write as _;
        let mut o = String::new();
        let r = &self.request;
        let q = r.query.as_ref().map_or(String::new(), |q| format!("?{q}"));
        let _ = writeln!(o, "request: {} {}{q} host {:?}", r.method, r.path, r.host);
        if let Some(why) = &self.refused {
            let _ = writeln!(o, "refused before routing: 400 bad-request (path: {why})");
            return o;
        }
        if self.routed_path != r.path {
            let _ = writeln!(o, "routed on the path {}", self.routed_path);
        }
        match self.explanation.as_ref().and_then(|e| e.site.as_ref()) {
            Some(s) => {
                let site = &config.sites[s.index];
                let _ = writeln!(
                    o,
                    "site: {} at {} ({} match on `{}`)",
                    site_hosts(site),
                    site.at,
                    s.kind,
                    s.pattern
                );
            }
            None => {
                let _ = writeln!(
                    o,
                    "site: none serves this host and there is no default site"
                );
            }
        }
        if !self.tried.is_empty() {
            let _ = writeln!(o, "routes tried, in the router's order:");
            for (label, at, why, matched) in &self.tried {
                let mark = if *matched { "✓" } else { "✗" };
                let _ = writeln!(o, "  {mark} {label}  ({at}): {why}");
            }
        }
        match (self.chosen, self.status) {
            (Some((si, ri)), _) => {
                let route = &config.sites[si].routes[ri];
                let _ = writeln!(
                    o,
                    "route: {} at {}",
                    bext_engine::metrics::route_label(route),
                    route.at
                );
                if let Some(line) = source(&route.at) {
                    let _ = writeln!(o, "  {:>5} | {}", route.at.line, line.trim_end());
                }
            }
            (None, Some(404)) => {
                let _ = writeln!(o, "answer: 404 route-not-found");
            }
            (None, Some(405)) => {
                let _ = writeln!(
                    o,
                    "answer: 405 method-not-allowed (a route takes the path, not the method)"
                );
            }
            _ => {}
        }
        if !self.steps.is_empty() {
            let _ = writeln!(o, "stages, in order:");
            for (i, s) in self.steps.iter().enumerate() {
                let at = s.at.as_ref().map_or(String::new(), |a| format!("  ({a})"));
                let _ = writeln!(o, "  {}. [{}] {}{at}", i + 1, s.phase, s.what);
            }
        }
        if let Some(u) = &self.upstream {
            let _ = writeln!(
                o,
                "upstream {} ({}):",
                u["name"].as_str().unwrap_or(""),
                u["at"].as_str().unwrap_or("")
            );
            let _ = writeln!(o, "  pick: {}", u["balance"].as_str().unwrap_or(""));
            for s in u["servers"].as_array().into_iter().flatten() {
                let backup = if s["backup"] == true { " backup" } else { "" };
                let _ = writeln!(
                    o,
                    "  server {} weight {}{backup}",
                    s["addr"].as_str().unwrap_or(""),
                    s["weight"]
                );
            }
            for k in ["retry", "eject", "health"] {
                let _ = writeln!(o, "  {k}: {}", u[k].as_str().unwrap_or(""));
            }
        }
        if !self.unsupported.is_empty() {
            let _ = writeln!(o, "note: `bext run` refuses this configuration (E0501):");
            for u in &self.unsupported {
                let _ = writeln!(o, "  {u}");
            }
        }
        o
    }
}

/// A site's names as written.
pub fn site_hosts(s: &ir::Site) -> String {
    bext_engine::metrics::site_label(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_from_a_line_and_fields() {
        let r = Request::parse("GET https://A.Test:8443/x/../y?q=1", &[]).unwrap();
        assert_eq!(
            (r.method.as_str(), r.scheme.as_deref(), r.host.as_str()),
            ("GET", Some("https"), "a.test")
        );
        assert_eq!(
            (r.path.as_str(), r.query.as_deref()),
            ("/x/../y", Some("q=1"))
        );
        let r = Request::parse("POST /p", &["Host: b.test:80".into(), "X-V: 1".into()]).unwrap();
        assert_eq!(r.host, "b.test");
        assert_eq!(r.headers[1], ("X-V".into(), "1".into()));
        let r = Request::parse("GET http://[::1]:8080", &[]).unwrap();
        assert_eq!((r.host.as_str(), r.path.as_str()), ("::1", "/"));
        for bad in ["GET", "GET a b", "GET ftp://x/", "GET x/y", "G(T /"] {
            assert!(Request::parse(bad, &[]).is_err(), "{bad}");
        }
        assert!(Request::parse("GET /", &["nocolon".into()]).is_err());
    }
}
