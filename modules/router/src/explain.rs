//! Why a request takes the route it takes: the site its host selects, then every route of that
//! site in the order the router tries them, each with the first reason it does not take the
//! request, up to the winner (`bext explain`).
//!
//! This is the plain definition of routing — try the site's routes one by one in
//! [`bext_ir::routing::match_order`] — written to report, not to be fast: it compiles the
//! regexes it needs on each call. Its answer is the router's ([`Router`](crate::Router)'s
//! tables are tested against the same definition in `tests/reference.rs`, and this function
//! against the router on every request of `tests/priority.rs`).

use crate::{query_param, Matcher, RouterError};
use bext_ir::routing::{host_matches, host_rank, match_order};
use bext_ir::{Config, FieldCond, HostPattern, MatchOp, PathMatch, Route};
use bext_stage::{RequestView, RouteId, RouteResult};

/// How the site was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteChoice {
    /// Index into `config.sites`.
    pub index: usize,
    /// The host pattern that selected it (`a.test`, `*.a.test`, `*`).
    pub pattern: String,
    /// `exact`, `wildcard` or `default`.
    pub kind: &'static str,
}

/// Why a route did not take the request (or that it did).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// It takes the request.
    Matched,
    /// The path does not match.
    Path,
    /// An asterisk-form target (`OPTIONS *`) is only taken by the catch-all `/*`.
    Asterisk,
    /// A `client_cert` condition fails: the request came without a verified client
    /// certificate, or the certificate's names do not match.
    ClientCert { missing: bool },
    /// A header condition fails: the field (missing, or its first value does not match).
    Header { name: String, missing: bool },
    /// A query condition fails.
    Query { name: String, missing: bool },
    /// Everything matched but the method; the methods it takes.
    Method { allowed: Vec<String> },
}

/// One route tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tried {
    /// Index into the site's routes (file order).
    pub route: usize,
    /// Flat index over every site's routes (the router's [`RouteId`]).
    pub id: RouteId,
    pub verdict: Verdict,
}

/// The whole reasoning for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// `None`: no site serves the host (and there is no default site).
    pub site: Option<SiteChoice>,
    /// The site's routes in the order they were tried, up to and including the winner.
    pub tried: Vec<Tried>,
    /// What the router answers.
    pub result: RouteResult,
}

/// Explain how `config`'s router routes `req` (the same view the engine hands the router: the
/// path in normal form without `;parameters`, the host without port).
pub fn explain(config: &Config, req: &RequestView<'_>) -> Result<Explanation, RouterError> {
    let host = String::from_utf8_lossy(req.host).to_ascii_lowercase();
    let site = config
        .sites
        .iter()
        .enumerate()
        .flat_map(|(si, s)| {
            let hosts = if s.hosts.is_empty() {
                vec![HostPattern::Any]
            } else {
                s.hosts.clone()
            };
            hosts.into_iter().map(move |h| (si, h))
        })
        // The router looks names longer than a DNS name up nowhere but the default site.
        .filter(|(_, h)| {
            (host.len() <= crate::MAX_HOST || *h == HostPattern::Any) && host_matches(h, &host)
        })
        .min_by_key(|(si, h)| (host_rank(h), *si));
    let Some((si, pattern)) = site else {
        return Ok(Explanation {
            site: None,
            tried: vec![],
            result: RouteResult::NotFound,
        });
    };
    let (pattern, kind) = match &pattern {
        HostPattern::Exact(n) => (n.clone(), "exact"),
        HostPattern::Wildcard(s) => (format!("*.{s}"), "wildcard"),
        HostPattern::Any => ("*".to_string(), "default"),
    };
    let before: usize = config.sites[..si].iter().map(|s| s.routes.len()).sum();
    let routes = &config.sites[si].routes;
    let mut tried = Vec::new();
    let mut wrong_method = false;
    let mut result = RouteResult::NotFound;
    for i in match_order(routes) {
        let id = RouteId((before + i) as u32);
        let verdict = verdict(&routes[i], req)?;
        let matched = verdict == Verdict::Matched;
        wrong_method |= matches!(verdict, Verdict::Method { .. });
        tried.push(Tried {
            route: i,
            id,
            verdict,
        });
        if matched {
            result = RouteResult::Matched(id);
            break;
        }
    }
    if result == RouteResult::NotFound && wrong_method {
        result = RouteResult::MethodNotAllowed;
    }
    Ok(Explanation {
        site: Some(SiteChoice {
            index: si,
            pattern,
            kind,
        }),
        tried,
        result,
    })
}

/// The first reason `r` does not take `req`, in the router's order of checks: path, client
/// certificate, headers, query, method.
fn verdict(r: &Route, req: &RequestView<'_>) -> Result<Verdict, RouterError> {
    if req.path == b"*" {
        if r.path != PathMatch::Prefix("/".into()) {
            return Ok(Verdict::Asterisk);
        }
    } else {
        let path_ok = match &r.path {
            PathMatch::Exact(e) => req.path == e.as_bytes(),
            PathMatch::Prefix(p) => req.path.starts_with(p.as_bytes()),
            PathMatch::Regex(re) => Matcher::compile(re, &r.at)?.is_match(req.path),
        };
        if !path_ok {
            return Ok(Verdict::Path);
        }
    }
    if !r.client_cert.is_empty() {
        let Some(cert) = req.client_cert else {
            return Ok(Verdict::ClientCert { missing: true });
        };
        for f in &r.client_cert {
            let names: Vec<&[u8]> = match f.name.as_str() {
                "cn" => cert.common_name.iter().map(|n| n.as_bytes()).collect(),
                "dns" => cert.dns_names.iter().map(|n| n.as_bytes()).collect(),
                _ => continue,
            };
            let mut held = false;
            for n in names {
                held |= fails(f, Some(n), r)?.is_none();
            }
            if !held {
                return Ok(Verdict::ClientCert { missing: false });
            }
        }
    }
    for f in &r.headers {
        let v = req.headers.get(f.name.as_bytes());
        if let Some(missing) = fails(f, v, r)? {
            return Ok(Verdict::Header {
                name: f.name.clone(),
                missing,
            });
        }
    }
    for f in &r.query {
        let v = req.query.and_then(|q| query_param(q, f.name.as_bytes()));
        if let Some(missing) = fails(f, v, r)? {
            return Ok(Verdict::Query {
                name: f.name.clone(),
                missing,
            });
        }
    }
    let method_ok = r.methods.is_empty()
        || (r.methods.iter()).any(|m| m.to_ascii_uppercase().as_bytes() == req.method_bytes);
    Ok(if method_ok {
        Verdict::Matched
    } else {
        Verdict::Method {
            allowed: r.methods.iter().map(|m| m.to_ascii_uppercase()).collect(),
        }
    })
}

/// `Some(missing)` when condition `f` fails on value `v`.
fn fails(f: &FieldCond, v: Option<&[u8]>, r: &Route) -> Result<Option<bool>, RouterError> {
    let Some(v) = v else {
        return Ok(Some(true));
    };
    let ok = match &f.op {
        MatchOp::Equals(x) => v == x.as_bytes(),
        MatchOp::Prefix(x) => v.starts_with(x.as_bytes()),
        MatchOp::Contains(x) => x.is_empty() || v.windows(x.len()).any(|w| w == x.as_bytes()),
        MatchOp::Regex(re) => Matcher::compile(re, &r.at)?.is_match(v),
        MatchOp::Present => true,
        MatchOp::InCidr(_) => {
            // The router refuses this at compile time; so does this.
            return Err(RouterError {
                message: "a CIDR match applies to `client_ip` only, not to a route field".into(),
                at: r.at.clone(),
            });
        }
    };
    Ok((!ok).then_some(false))
}

/// A condition as written (`header X-V = "1"`), for reports.
pub fn describe_condition(kind: &str, f: &FieldCond) -> String {
    let op = match &f.op {
        MatchOp::Equals(v) => format!("= {v:?}"),
        MatchOp::Prefix(v) => format!("starts_with {v:?}"),
        MatchOp::Contains(v) => format!("contains {v:?}"),
        MatchOp::Regex(v) => format!("~ '{v}'"),
        MatchOp::InCidr(v) => format!("in {}", v.join(" ")),
        MatchOp::Present => "present".into(),
    };
    format!("{kind} {} {op}", f.name)
}
