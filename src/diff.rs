//! What a reload from one configuration to another changes for routing (`bext reload --diff
//! OLD NEW`, and the `diff` of the admin endpoint's `POST /reload` answer): the routes added,
//! removed and changed, and, for a sample of request shapes derived from both route tables,
//! those whose destination changes.
//!
//! A route is identified by its site and its text, as in the metrics labels
//! (`bext_engine::metrics::RouteLabels`): `a.test` + `GET /api/*`. It is *changed* when its
//! configuration (action, conditions' values, stages, header operations ...) differs, places
//! in the file aside. Request shapes are made from every route of both files: one request the
//! route itself would take (a host of its site, its exact path or a path under its prefix or
//! the literal beginning of its regex, its first method, values for its conditions), and the
//! same without its conditions (what falls through when they do not hold). Each shape is
//! routed by both configurations (`bext_router::explain`, the router's own reasoning); a
//! shape's destination is the route that takes it and what it does (`proxy app`, `respond
//! 200`, ...), or 404/405.

use bext_ir as ir;
use bext_router::explain::explain;
use bext_stage::{Headers, RequestView, RouteResult};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// A request shape.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Shape {
    pub method: String,
    pub host: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} http://{}{}", self.method, self.host, self.path)?;
        if let Some(q) = &self.query {
            write!(f, "?{q}")?;
        }
        for (n, v) in &self.headers {
            write!(f, " [{n}: {v}]")?;
        }
        Ok(())
    }
}

/// Where a shape goes.
pub type Destination = String;

/// The routing difference between two configurations.
#[derive(Debug, Default)]
pub struct Diff {
    /// `site route` keys.
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    /// Request shapes whose destination changes: (shape, old, new).
    pub moved: Vec<(Shape, Destination, Destination)>,
    /// Shapes tried.
    pub sampled: usize,
}

/// `site route` → the route, for every route of `c`.
fn routes(c: &ir::Config) -> BTreeMap<String, &ir::Route> {
    let labels = bext_engine::metrics::RouteLabels::of_config(c);
    let all = c.sites.iter().flat_map(|s| &s.routes);
    (labels.iter().zip(all))
        .map(|(l, r)| (format!("{} {}", l.site, l.route), r))
        .collect()
}

/// The routing difference from `old` to `new`.
pub fn diff(old: &ir::Config, new: &ir::Config) -> Result<Diff, String> {
    let (a, b) = (routes(old), routes(new));
    let mut d = Diff {
        added: b.keys().filter(|k| !a.contains_key(*k)).cloned().collect(),
        removed: a.keys().filter(|k| !b.contains_key(*k)).cloned().collect(),
        changed: (a.iter())
            .filter(|(k, r)| b.get(*k).is_some_and(|n| n != *r))
            .map(|(k, _)| k.clone())
            .collect(),
        ..Diff::default()
    };
    let mut shapes = BTreeSet::new();
    for c in [old, new] {
        for site in &c.sites {
            for r in &site.routes {
                shapes.extend(shapes_of(site, r));
            }
        }
    }
    d.sampled = shapes.len();
    for s in shapes {
        let (x, y) = (destination(old, &s)?, destination(new, &s)?);
        if x != y {
            d.moved.push((s, x, y));
        }
    }
    Ok(d)
}

/// A host the site serves: its first exact name, a name under its first wildcard, or one no
/// other site names for the default site.
fn host_of(site: &ir::Site) -> String {
    match site.hosts.first() {
        Some(ir::HostPattern::Exact(n)) => n.clone(),
        Some(ir::HostPattern::Wildcard(s)) => format!("sample.{s}"),
        Some(ir::HostPattern::Any) | None => "default.invalid".into(),
    }
}

/// A value satisfying `op`, when one can be written down.
fn value_for(op: &ir::MatchOp) -> Option<String> {
    match op {
        ir::MatchOp::Equals(v) | ir::MatchOp::Prefix(v) | ir::MatchOp::Contains(v) => {
            Some(v.clone())
        }
        ir::MatchOp::Present => Some("1".into()),
        ir::MatchOp::Regex(_) | ir::MatchOp::InCidr(_) => None,
    }
}

/// The shapes route `r` of `site` contributes: one it takes, and the same without its
/// conditions.
fn shapes_of(site: &ir::Site, r: &ir::Route) -> Vec<Shape> {
    let path = match &r.path {
        ir::PathMatch::Exact(p) => p.clone(),
        ir::PathMatch::Prefix(p) if p.ends_with('/') => format!("{p}sample"),
        ir::PathMatch::Prefix(p) => p.clone(),
        ir::PathMatch::Regex(re) => (ir::routing::anchored_prefixes(re))
            .and_then(|lits| lits.into_iter().next())
            .map_or_else(|| "/".into(), |l| String::from_utf8_lossy(&l).into_owned()),
    };
    let path = if path.starts_with('/') {
        path
    } else {
        format!("/{path}")
    };
    let host = host_of(site);
    let method = r.methods.first().cloned().unwrap_or_else(|| "GET".into());
    let headers: Vec<(String, String)> = (r.headers.iter())
        .filter_map(|f| Some((f.name.clone(), value_for(&f.op)?)))
        .collect();
    let query: Vec<String> = (r.query.iter())
        .filter_map(|f| Some(format!("{}={}", f.name, value_for(&f.op)?)))
        .collect();
    let full = Shape {
        method: method.clone(),
        host: host.clone(),
        path: path.clone(),
        query: (!query.is_empty()).then(|| query.join("&")),
        headers,
    };
    let bare = Shape {
        method: "GET".into(),
        host,
        path,
        query: None,
        headers: vec![],
    };
    if full == bare {
        vec![full]
    } else {
        vec![full, bare]
    }
}

/// Where `s` goes under `c`: `site route → action`, or the status when no route takes it.
fn destination(c: &ir::Config, s: &Shape) -> Result<Destination, String> {
    let mut buf = Vec::new();
    let mut list = Vec::new();
    for (n, v) in &s.headers {
        let ns = buf.len() as u32;
        buf.extend_from_slice(n.as_bytes());
        let ne = buf.len() as u32;
        buf.extend_from_slice(v.as_bytes());
        list.push(bext_http1::Header {
            name: bext_http1::Span { start: ns, end: ne },
            value: bext_http1::Span {
                start: ne,
                end: buf.len() as u32,
            },
        });
    }
    let view = RequestView {
        method: None,
        method_bytes: s.method.as_bytes(),
        host: s.host.as_bytes(),
        path: s.path.as_bytes(),
        query: s.query.as_deref().map(str::as_bytes),
        headers: Headers::new(&buf, &list),
        client: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        tls: false,
        client_cert: None,
    };
    let e = explain(c, &view).map_err(|e| e.to_string())?;
    Ok(match e.result {
        RouteResult::Matched(id) => {
            let labels = bext_engine::metrics::RouteLabels::of_config(c);
            let r = c.sites.iter().flat_map(|s| &s.routes).nth(id.0 as usize);
            let l = &labels[id.0 as usize];
            let action = r.map_or(String::new(), |r| action(&r.action));
            format!("{} {} → {action}", l.site, l.route)
        }
        RouteResult::NotFound => "404 route-not-found".into(),
        RouteResult::MethodNotAllowed => "405 method-not-allowed".into(),
    })
}

fn action(a: &ir::Action) -> String {
    match a {
        ir::Action::Proxy { upstream } => format!("proxy {upstream}"),
        ir::Action::Respond { status, .. } => format!("respond {status}"),
        ir::Action::Redirect { status, location } => format!("redirect {status} {location}"),
        ir::Action::Static { root, .. } => format!("static {root}"),
    }
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
            && self.moved.is_empty()
    }

    pub fn to_json(&self) -> Value {
        let moved: Vec<Value> = (self.moved.iter())
            .map(|(s, a, b)| json!({"request": s.to_string(), "old": a, "new": b}))
            .collect();
        json!({
            "routes_added": self.added,
            "routes_removed": self.removed,
            "routes_changed": self.changed,
            "requests_sampled": self.sampled,
            "requests_moved": moved,
        })
    }

    pub fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let mut o = String::new();
        for (what, list) in [
            ("added", &self.added),
            ("removed", &self.removed),
            ("changed", &self.changed),
        ] {
            for k in list {
                let _ = writeln!(o, "route {what}: {k}");
            }
        }
        let _ = writeln!(
            o,
            "{} of {} sampled requests change destination",
            self.moved.len(),
            self.sampled
        );
        for (s, a, b) in &self.moved {
            let _ = writeln!(o, "  {s}\n    was: {a}\n    now: {b}");
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(src: &str) -> ir::Config {
        match bext_dsl::compile_str("t.bext", src) {
            Ok(c) => c.config,
            Err(f) => panic!("{}", f.render_human()),
        }
    }

    #[test]
    fn routes_added_removed_changed_and_requests_moved() {
        let old = config(
            "listen :8080
             upstream a { server 127.0.0.1:1 }
             upstream b { server 127.0.0.1:2 }
             site x.test {
                 route /api/* { proxy a }
                 route /old/* { respond 200 \"old\" }
                 route = /same { respond 200 \"s\" }
                 route /* { respond 404 \"no\" }
             }",
        );
        let new = config(
            "listen :8080
             upstream a { server 127.0.0.1:1 }
             upstream b { server 127.0.0.1:2 }
             site x.test {
                 route /api/* { proxy b }
                 route /api/v2/* {
                     header x-beta = \"1\"
                     proxy b
                 }
                 route = /same { respond 200 \"s\" }
                 route /* { respond 404 \"no\" }
             }",
        );
        let d = diff(&old, &new).unwrap();
        assert_eq!(d.added, ["x.test /api/v2/*"]);
        assert_eq!(d.removed, ["x.test /old/*"]);
        assert_eq!(d.changed, ["x.test /api/*"]);
        let moved: Vec<(String, &str, &str)> = (d.moved.iter())
            .map(|(s, a, b)| (s.to_string(), a.as_str(), b.as_str()))
            .collect();
        assert!(moved.contains(&(
            "GET http://x.test/api/sample".into(),
            "x.test /api/* → proxy a",
            "x.test /api/* → proxy b"
        )));
        assert!(moved.contains(&(
            "GET http://x.test/api/v2/sample [x-beta: 1]".into(),
            "x.test /api/* → proxy a",
            "x.test /api/v2/* → proxy b"
        )));
        assert!(moved.contains(&(
            "GET http://x.test/old/sample".into(),
            "x.test /old/* → respond 200",
            "x.test /* → respond 404"
        )));
        // /same goes where it went.
        assert!(!moved.iter().any(|m| m.0.contains("/same")));
        // Nothing changes between a configuration and itself.
        assert!(diff(&new, &new).unwrap().is_empty());
    }
}
