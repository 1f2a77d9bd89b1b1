//! The router's tables (hash of exact paths, byte trie of prefixes, regexes indexed by their
//! literal prefix, host tables) answer exactly like the plain definition: try the site's routes
//! one by one in `bext_ir::routing::match_order`. Random configurations over a small alphabet
//! make routes overlap a lot; a seeded generator keeps every run the same.

use bext_http1::{Header, Span};
use bext_ir::routing::{host_matches, host_rank, match_order};
use bext_ir::{Action, Config, FieldCond, HostPattern, Loc, MatchOp, PathMatch, Route, Site};
use bext_router::Router;
use bext_stage::{Headers, RequestView, RouteId, RouteResult, RouteStage};
use regex_automata::meta::Regex;
use std::collections::HashMap;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

const SEGMENTS: &[&str] = &["a", "b", "ab", "A", "1"];
const REGEXES: &[&str] = &[
    "^/a",
    "^/a/b$",
    "^/(a|b)/",
    "b$",
    "a",
    "^/ab?/[ab1]+$",
    "(?i)^/a/",
    "^/[0-9]",
    "^/a|^/b/1",
];
const HOSTS: &[&str] = &["x.test", "a.x.test", "b.a.x.test", "y.test", "X.TEST"];

fn path(rng: &mut Rng) -> String {
    let depth = 1 + rng.below(3);
    let mut p = String::new();
    for _ in 0..depth {
        p.push('/');
        let segment = *rng.pick(SEGMENTS);
        p.push_str(segment);
    }
    if rng.below(4) == 0 {
        p.push('/');
    }
    p
}

fn route(rng: &mut Rng) -> Route {
    let path_match = match rng.below(3) {
        0 => PathMatch::Exact(path(rng)),
        1 => {
            let mut p = path(rng);
            if rng.below(3) == 0 {
                p = "/".into();
            } else if !p.ends_with('/') && rng.below(2) == 0 {
                p.push('/');
            }
            PathMatch::Prefix(p)
        }
        _ => PathMatch::Regex(rng.pick(REGEXES).to_string()),
    };
    let methods = match rng.below(5) {
        0 => vec!["GET".to_string()],
        1 => vec!["POST".to_string()],
        2 => vec!["GET".to_string(), "POST".to_string()],
        _ => vec![],
    };
    let headers = match rng.below(5) {
        0 => vec![FieldCond {
            name: "x-v".into(),
            op: MatchOp::Equals(rng.pick(&["1", "2"][..]).to_string()),
        }],
        1 => vec![FieldCond {
            name: "X-V".into(),
            op: MatchOp::Present,
        }],
        _ => vec![],
    };
    let mut route = Route::new(
        path_match,
        Action::Respond {
            status: 200,
            body: String::new(),
            content_type: None,
        },
        Loc::default(),
    );
    route.methods = methods;
    route.headers = headers;
    route
}

fn config(rng: &mut Rng) -> Config {
    let host_sets: &[&[HostPattern]] = &[
        &[HostPattern::Exact("x.test".into())],
        &[HostPattern::Wildcard("x.test".into())],
        &[HostPattern::Wildcard("a.x.test".into())],
        &[],
    ];
    let sites = (0..1 + rng.below(3))
        .map(|i| Site {
            hosts: host_sets[(i + rng.below(2)) % host_sets.len()].to_vec(),
            routes: (0..1 + rng.below(12)).map(|_| route(rng)).collect(),
            paths: Default::default(),
            redirect_https: None,
            hsts: None,
            at: Loc::default(),
        })
        .collect::<Vec<_>>();
    // One site per host pattern, as the checker demands (E0307).
    let mut seen: Vec<HostPattern> = vec![];
    let sites = sites
        .into_iter()
        .filter(|s| {
            let hosts = if s.hosts.is_empty() {
                vec![HostPattern::Any]
            } else {
                s.hosts.clone()
            };
            let fresh = hosts.iter().all(|h| !seen.contains(h));
            seen.extend(hosts);
            fresh
        })
        .collect();
    Config {
        sites,
        ..Config::default()
    }
}

/// The definition: the best host pattern's site, then its routes one by one in match order.
fn reference(
    regexes: &HashMap<&str, Regex>,
    c: &Config,
    method: &str,
    host: &str,
    target: &str,
    x_v: Option<&str>,
) -> RouteResult {
    let host = host.to_ascii_lowercase();
    let site = c
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
        .filter(|(_, h)| host_matches(h, &host))
        .min_by_key(|(si, h)| (host_rank(h), *si))
        .map(|(si, _)| si);
    let Some(si) = site else {
        return RouteResult::NotFound;
    };
    let before: usize = c.sites[..si].iter().map(|s| s.routes.len()).sum();
    let routes = &c.sites[si].routes;
    let mut wrong_method = false;
    for i in match_order(routes) {
        let r = &routes[i];
        let path_ok = match &r.path {
            _ if target == "*" => r.path == PathMatch::Prefix("/".into()),
            PathMatch::Exact(e) => e == target,
            PathMatch::Prefix(p) => target.starts_with(p.as_str()),
            PathMatch::Regex(re) => regexes[re.as_str()].is_match(target),
        };
        let headers_ok = r.headers.iter().all(|f| match (&f.op, x_v) {
            (MatchOp::Equals(v), Some(x)) => v == x,
            (MatchOp::Present, Some(_)) => true,
            _ => false,
        });
        if !path_ok || !headers_ok {
            continue;
        }
        if r.methods.is_empty() || r.methods.iter().any(|m| m == method) {
            return RouteResult::Matched(RouteId((before + i) as u32));
        }
        wrong_method = true;
    }
    if wrong_method {
        RouteResult::MethodNotAllowed
    } else {
        RouteResult::NotFound
    }
}

fn routed(r: &Router, method: &str, host: &str, target: &str, x_v: Option<&str>) -> RouteResult {
    let mut buf = Vec::new();
    let mut list = Vec::new();
    if let Some(v) = x_v {
        buf.extend_from_slice(b"x-v");
        buf.extend_from_slice(v.as_bytes());
        list.push(Header {
            name: Span { start: 0, end: 3 },
            value: Span {
                start: 3,
                end: buf.len() as u32,
            },
        });
    }
    r.route(&RequestView {
        method: None,
        method_bytes: method.as_bytes(),
        host: host.as_bytes(),
        path: target.as_bytes(),
        query: None,
        headers: Headers::new(&buf, &list),
        client: "127.0.0.1:1".parse().expect("address"),
        tls: false,
        client_cert: None,
    })
}

#[test]
fn the_tables_answer_like_the_definition() {
    let regexes: HashMap<&str, Regex> = REGEXES
        .iter()
        .map(|r| (*r, Regex::new(r).expect("regex")))
        .collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut checked = 0;
    let mut found = 0;
    for round in 0..400 {
        let c = config(&mut rng);
        let router = Router::compile(&c).expect("compiles");
        for _ in 0..40 {
            let method = *rng.pick(&["GET", "POST", "PUT"]);
            let host = *rng.pick(HOSTS);
            let target = if rng.below(20) == 0 {
                "*".to_string()
            } else {
                path(&mut rng)
            };
            let x_v = *rng.pick(&[None, Some("1"), Some("2")]);
            let want = reference(&regexes, &c, method, host, &target, x_v);
            let got = routed(&router, method, host, &target, x_v);
            assert_eq!(
                got, want,
                "round {round}: {method} {host} {target} x-v={x_v:?}\n{c:#?}"
            );
            checked += 1;
            found += usize::from(matches!(got, RouteResult::Matched(_)));
        }
    }
    // The generator must exercise both outcomes, or the comparison proves little.
    assert!(
        found > checked / 4 && found < checked * 9 / 10,
        "{found} of {checked}"
    );
}
