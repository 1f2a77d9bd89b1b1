//! Route priority: the one definition of which route wins, shared by the router (which sorts its
//! tables with it) and the checker (which reports ties and shadowed routes with it), so the two
//! can never disagree.
//!
//! Within a site, routes are tried in this order (documented in `docs/language.md`):
//!
//! 1. exact paths (`route = /healthz`);
//! 2. regex paths (`route ~ "..."`), in the order they are written;
//! 3. prefix paths (`route /api/*`), the longest prefix first.
//!
//! Among routes of the same class and the same path pattern, a route with more conditions
//! (methods, headers, query) is tried first. Two routes with the same class, the same pattern
//! and the same number of conditions that could both match one request are a *tie*: the
//! checker rejects it, because no order between them would be obvious to a reader.
//!
//! Sites are chosen before routes: an exact host name beats a wildcard (`*.example.com`, the
//! longest suffix first), which beats the default site (`*` or no name).

use crate::{HostPattern, MatchOp, PathMatch, Route};
use std::cmp::Reverse;

/// Sort key of a route inside its site: smaller is tried first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rank {
    class: u8,
    prefix_len: Reverse<usize>,
    conditions: Reverse<usize>,
    index: usize,
}

impl Rank {
    /// Equal priority: everything but the position in the file is the same.
    pub fn ties_with(&self, other: &Rank) -> bool {
        self.class == other.class
            && self.prefix_len == other.prefix_len
            && self.conditions == other.conditions
    }
}

/// Number of conditions a route has besides its path.
pub fn condition_count(route: &Route) -> usize {
    usize::from(!route.methods.is_empty()) + route.headers.len() + route.query.len()
}

/// The rank of `route`, the `index`-th route of its site.
pub fn rank(route: &Route, index: usize) -> Rank {
    let (class, prefix_len) = match &route.path {
        PathMatch::Exact(_) => (0, 0),
        // Regexes keep file order: `index` decides among them.
        PathMatch::Regex(_) => (1, 0),
        PathMatch::Prefix(p) => (2, p.len()),
    };
    Rank {
        class,
        prefix_len: Reverse(prefix_len),
        conditions: Reverse(condition_count(route)),
        index,
    }
}

/// Indices of `routes` in the order the router tries them.
pub fn match_order(routes: &[Route]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..routes.len()).collect();
    order.sort_by_key(|&i| rank(&routes[i], i));
    order
}

/// True when no request can satisfy the conditions of both routes (their paths aside):
/// disjoint method sets, or the same header/query field required to equal different values.
pub fn conditions_disjoint(a: &Route, b: &Route) -> bool {
    if !a.methods.is_empty()
        && !b.methods.is_empty()
        && !a.methods.iter().any(|m| b.methods.contains(m))
    {
        return true;
    }
    let fields_disjoint = |xs: &[crate::FieldCond], ys: &[crate::FieldCond], fold: bool| {
        xs.iter().any(|x| {
            ys.iter().any(|y| {
                let same_name = if fold {
                    x.name.eq_ignore_ascii_case(&y.name)
                } else {
                    x.name == y.name
                };
                same_name
                    && matches!((&x.op, &y.op), (MatchOp::Equals(u), MatchOp::Equals(v)) if u != v)
            })
        })
    };
    fields_disjoint(&a.headers, &b.headers, true) || fields_disjoint(&a.query, &b.query, false)
}

/// True when the two routes have equal priority and some request could match both: the
/// checker reports this as an error. `a` and `b` are routes of the same site.
pub fn is_tie(a: &Route, b: &Route) -> bool {
    let same_pattern = a.path == b.path;
    same_pattern && rank(a, 0).ties_with(&rank(b, 0)) && !conditions_disjoint(a, b)
}

/// True when every request that satisfies the conditions of `b` also satisfies those of `a`
/// (paths aside): `a` asks for nothing that `b` does not already guarantee. Used by the checker
/// to decide that an earlier route leaves nothing for a later one.
pub fn conditions_cover(a: &Route, b: &Route) -> bool {
    let methods = a.methods.is_empty()
        || (!b.methods.is_empty() && b.methods.iter().all(|m| a.methods.contains(m)));
    // A condition of `a` is guaranteed by `b` when `b` has the same test on the same field, or
    // when `a` only asks for presence and `b` tests the field's value in any way.
    let implied = |x: &crate::FieldCond, ys: &[crate::FieldCond], fold: bool| {
        ys.iter().any(|y| {
            let same_name = if fold {
                x.name.eq_ignore_ascii_case(&y.name)
            } else {
                x.name == y.name
            };
            same_name && (x.op == y.op || x.op == MatchOp::Present)
        })
    };
    methods
        && a.headers.iter().all(|x| implied(x, &b.headers, true))
        && a.query.iter().all(|x| implied(x, &b.query, false))
}

/// Sort key of a site's host pattern: smaller is tried first.
pub fn host_rank(pattern: &HostPattern) -> (u8, Reverse<usize>) {
    match pattern {
        HostPattern::Exact(_) => (0, Reverse(0)),
        HostPattern::Wildcard(suffix) => (1, Reverse(suffix.len())),
        HostPattern::Any => (2, Reverse(0)),
    }
}

/// Does `host` (lower case, no port) match `pattern`?
pub fn host_matches(pattern: &HostPattern, host: &str) -> bool {
    match pattern {
        HostPattern::Exact(h) => h == host,
        HostPattern::Wildcard(suffix) => {
            host.len() > suffix.len() + 1
                && host.ends_with(suffix.as_str())
                && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
        }
        HostPattern::Any => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Action, FieldCond, Loc};

    fn route(path: PathMatch, methods: &[&str]) -> Route {
        Route {
            path,
            methods: methods.iter().map(|m| m.to_string()).collect(),
            headers: vec![],
            query: vec![],
            strip_prefix: None,
            rewrite: None,
            request_headers: vec![],
            response_headers: vec![],
            cache: None,
            compress: None,
            waf: None,
            rate_limit: None,
            plugins: vec![],
            action: Action::Respond {
                status: 200,
                body: String::new(),
                content_type: None,
            },
            at: Loc::default(),
        }
    }

    #[test]
    fn order_is_exact_then_regex_in_file_order_then_longest_prefix() {
        let routes = vec![
            route(PathMatch::Prefix("/".into()), &[]),
            route(PathMatch::Regex("b".into()), &[]),
            route(PathMatch::Prefix("/api/".into()), &[]),
            route(PathMatch::Exact("/x".into()), &[]),
            route(PathMatch::Regex("a".into()), &[]),
            route(PathMatch::Prefix("/api/".into()), &["GET"]),
        ];
        assert_eq!(match_order(&routes), vec![3, 1, 4, 5, 2, 0]);
    }

    #[test]
    fn ties_need_same_pattern_same_rank_and_overlapping_conditions() {
        let get = route(PathMatch::Prefix("/a/".into()), &["GET"]);
        let post = route(PathMatch::Prefix("/a/".into()), &["POST"]);
        let get_too = route(PathMatch::Prefix("/a/".into()), &["GET", "HEAD"]);
        let other = route(PathMatch::Prefix("/b/".into()), &["GET"]);
        assert!(!is_tie(&get, &post));
        assert!(is_tie(&get, &get_too));
        assert!(!is_tie(&get, &other));
        let mut h1 = route(PathMatch::Exact("/".into()), &[]);
        h1.headers.push(FieldCond {
            name: "X-A".into(),
            op: MatchOp::Equals("1".into()),
        });
        let mut h2 = h1.clone();
        h2.headers[0] = FieldCond {
            name: "x-a".into(),
            op: MatchOp::Equals("2".into()),
        };
        assert!(!is_tie(&h1, &h2));
        assert!(is_tie(&h1, &h1.clone()));
    }

    #[test]
    fn cover_means_fewer_or_equal_demands() {
        let any = route(PathMatch::Prefix("/".into()), &[]);
        let get = route(PathMatch::Prefix("/".into()), &["GET"]);
        let get_post = route(PathMatch::Prefix("/".into()), &["GET", "POST"]);
        assert!(conditions_cover(&any, &get));
        assert!(!conditions_cover(&get, &any));
        assert!(conditions_cover(&get_post, &get));
        assert!(!conditions_cover(&get, &get_post));
        let mut present = any.clone();
        present.headers.push(FieldCond {
            name: "x-a".into(),
            op: MatchOp::Present,
        });
        let mut equals = any.clone();
        equals.headers.push(FieldCond {
            name: "X-A".into(),
            op: MatchOp::Equals("1".into()),
        });
        assert!(conditions_cover(&present, &equals));
        assert!(!conditions_cover(&equals, &present));
        assert!(!conditions_cover(&present, &any));
    }

    #[test]
    fn wildcard_hosts_need_one_more_label() {
        let w = HostPattern::Wildcard("example.com".into());
        assert!(host_matches(&w, "a.example.com"));
        assert!(host_matches(&w, "a.b.example.com"));
        assert!(!host_matches(&w, "example.com"));
        assert!(!host_matches(&w, "badexample.com"));
        assert!(host_rank(&HostPattern::Exact("x".into())) < host_rank(&w));
        assert!(host_rank(&w) < host_rank(&HostPattern::Any));
    }
}
