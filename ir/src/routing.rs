//! Route priority: the one definition of which route wins, shared by the router (which sorts its
//! tables with it) and the checker (which reports ties and shadowed routes with it), so the two
//! can never disagree.
//!
//! Within a site, routes are tried in this order (documented in `docs/language.md`):
//!
//! 1. exact paths (`route = /healthz`);
//! 2. regex paths (`route ~ "..."`), in the order they are written (routes that repeat a regex
//!    are tried together, at the place of its first appearance);
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
    /// Prefix routes: the longest prefix first. Regex routes: the position of the first route
    /// with the same pattern, so regexes keep file order and routes that share a pattern stay
    /// together. Exact routes: 0 (two different exact paths never match one request).
    group: (Reverse<usize>, usize),
    conditions: Reverse<usize>,
    index: usize,
}

impl Rank {
    /// Equal priority: everything but the position in the file is the same.
    pub fn ties_with(&self, other: &Rank) -> bool {
        self.class == other.class
            && self.group == other.group
            && self.conditions == other.conditions
    }
}

/// Number of conditions a route has besides its path.
pub fn condition_count(route: &Route) -> usize {
    usize::from(!route.methods.is_empty())
        + route.headers.len()
        + route.query.len()
        + route.client_cert.len()
}

/// The rank of every route of a site, in file order: `ranks(routes)[i]` is the rank of
/// `routes[i]`.
pub fn ranks(routes: &[Route]) -> Vec<Rank> {
    let mut first_of_regex: std::collections::HashMap<&str, usize> =
        std::collections::HashMap::new();
    routes
        .iter()
        .enumerate()
        .map(|(index, route)| {
            let (class, group) = match &route.path {
                PathMatch::Exact(_) => (0, (Reverse(0), 0)),
                PathMatch::Regex(r) => {
                    let first = *first_of_regex.entry(r.as_str()).or_insert(index);
                    (1, (Reverse(0), first))
                }
                PathMatch::Prefix(p) => (2, (Reverse(p.len()), 0)),
            };
            Rank {
                class,
                group,
                conditions: Reverse(condition_count(route)),
                index,
            }
        })
        .collect()
}

/// Indices of `routes` in the order the router tries them.
pub fn match_order(routes: &[Route]) -> Vec<usize> {
    let ranks = ranks(routes);
    let mut order: Vec<usize> = (0..routes.len()).collect();
    order.sort_by_key(|&i| ranks[i]);
    order
}

/// True when no request can satisfy the conditions of both routes (their paths aside):
/// disjoint method sets, or the same header/query field (its first occurrence, which is what
/// the router reads) required to hold values that exclude each other — two different values,
/// a value that does not begin with a required prefix or does not contain a required substring,
/// or two prefixes neither of which begins the other.
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
                same_name && ops_disjoint(&x.op, &y.op)
            })
        })
    };
    // A certificate has one common name but may have several DNS names: only `cn` values
    // exclude each other.
    let cn = |r: &Route| -> Vec<crate::FieldCond> {
        (r.client_cert.iter())
            .filter(|c| c.name == "cn")
            .cloned()
            .collect()
    };
    fields_disjoint(&a.headers, &b.headers, true)
        || fields_disjoint(&a.query, &b.query, false)
        || (!a.client_cert.is_empty()
            && !b.client_cert.is_empty()
            && fields_disjoint(&cn(a), &cn(b), false))
}

/// True when no single value satisfies both tests.
fn ops_disjoint(x: &MatchOp, y: &MatchOp) -> bool {
    use MatchOp::*;
    match (x, y) {
        (Equals(u), Equals(v)) => u != v,
        (Equals(u), Prefix(p)) | (Prefix(p), Equals(u)) => !u.starts_with(p.as_str()),
        (Equals(u), Contains(c)) | (Contains(c), Equals(u)) => !u.contains(c.as_str()),
        (Prefix(p), Prefix(q)) => !p.starts_with(q.as_str()) && !q.starts_with(p.as_str()),
        _ => false,
    }
}

/// True when the two routes have equal priority and some request could match both: the
/// checker reports this as an error. `a` and `b` are routes of the same site.
pub fn is_tie(a: &Route, b: &Route) -> bool {
    a.path == b.path && condition_count(a) == condition_count(b) && !conditions_disjoint(a, b)
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
        && a.client_cert.iter().all(|x| {
            implied(x, &b.client_cert, false)
                || (x.name == "certificate" && !b.client_cert.is_empty())
        })
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

/// One piece of a `rewrite` replacement, as parsed by [`parse_replacement`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplacementPart {
    /// Bytes `start..end` of the replacement, copied as they are.
    Literal { start: usize, end: usize },
    /// `$1`..`$9` at byte `start`: the text of a capture group (empty when the group did not
    /// take part in the match).
    Group { group: u8, start: usize },
    /// `{path}`: the request path before the rewrite.
    Path,
    /// `{query}`: the request query before the rewrite, without the `?`.
    Query,
}

/// A replacement that cannot be parsed: the byte range of the offending piece and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplacementError {
    pub start: usize,
    pub end: usize,
    pub message: String,
}

/// Parses the replacement of a `rewrite`: `$1`..`$9` name capture groups, `$$` is a dollar
/// sign, `{path}` and `{query}` are the request's path and query; anything else is literal.
/// The result must start with `/`, a group or `{path}`, so it is a path. Shared by the router
/// (which expands it) and the checker (which reports a mistake with its span), so the two
/// read it the same way. Group numbers are checked against the pattern by the caller, with
/// [`max_group`].
pub fn parse_replacement(s: &str) -> Result<Vec<ReplacementPart>, ReplacementError> {
    let b = s.as_bytes();
    let mut parts = Vec::new();
    let mut lit = 0;
    let mut i = 0;
    let flush = |parts: &mut Vec<ReplacementPart>, start: usize, end: usize| {
        if start < end {
            // Adjacent literals merge, so `$$` does not cut a literal in three.
            if let Some(ReplacementPart::Literal { end: e, .. }) = parts.last_mut() {
                if *e == start {
                    *e = end;
                    return;
                }
            }
            parts.push(ReplacementPart::Literal { start, end });
        }
    };
    while i < b.len() {
        match b[i] {
            b'$' => {
                flush(&mut parts, lit, i);
                match b.get(i + 1) {
                    Some(d @ b'1'..=b'9') => parts.push(ReplacementPart::Group {
                        group: d - b'0',
                        start: i,
                    }),
                    Some(b'$') => parts.push(ReplacementPart::Literal {
                        start: i + 1,
                        end: i + 2,
                    }),
                    other => {
                        let end = i + other.map_or(1, |_| 2);
                        return Err(ReplacementError {
                            start: i,
                            end: end.min(b.len()),
                            message: "`$` must be followed by a group number from 1 to 9 (or be written `$$` for a dollar sign)".into(),
                        });
                    }
                }
                i += 2;
                lit = i;
            }
            b'{' => {
                let name_len = b[i + 1..]
                    .iter()
                    .take_while(|c| c.is_ascii_lowercase() || **c == b'_')
                    .count();
                if name_len > 0 && b.get(i + 1 + name_len) == Some(&b'}') {
                    let end = i + name_len + 2;
                    let part = match &s[i + 1..end - 1] {
                        "path" => ReplacementPart::Path,
                        "query" => ReplacementPart::Query,
                        other => {
                            return Err(ReplacementError {
                                start: i,
                                end,
                                message: format!(
                                    "unknown placeholder `{{{other}}}`: a rewrite knows `{{path}}` and `{{query}}`"
                                ),
                            })
                        }
                    };
                    flush(&mut parts, lit, i);
                    parts.push(part);
                    i = end;
                    lit = i;
                } else {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    flush(&mut parts, lit, b.len());
    let starts_a_path = match parts.first() {
        Some(ReplacementPart::Literal { start, .. }) => b[*start] == b'/',
        Some(ReplacementPart::Group { .. } | ReplacementPart::Path) => true,
        Some(ReplacementPart::Query) | None => false,
    };
    if !starts_a_path {
        return Err(ReplacementError {
            start: 0,
            end: b.len(),
            message: "the replacement must be a path: start it with `/`, `{path}` or a group such as `$1`".into(),
        });
    }
    Ok(parts)
}

/// The highest group number a parsed replacement refers to, with the byte offset of its first
/// use.
pub fn max_group(parts: &[ReplacementPart]) -> Option<(u8, usize)> {
    parts
        .iter()
        .filter_map(|p| match p {
            ReplacementPart::Group { group, start } => Some((*group, *start)),
            _ => None,
        })
        .max_by_key(|(g, start)| (*g, std::cmp::Reverse(*start)))
}

/// For a regex anchored at the start (`^...`), the literals every match must begin with;
/// `None` when there is no such finite, non-empty set. The router indexes anchored regex routes
/// by these literals and the checker uses them to find which routes a regex can shadow, so both
/// call this one function.
pub fn anchored_prefixes(pattern: &str) -> Option<Vec<Vec<u8>>> {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    use regex_syntax::hir::Look;
    let hir = regex_syntax::parse(pattern).ok()?;
    if !hir.properties().look_set_prefix().contains(Look::Start) {
        return None;
    }
    let seq = Extractor::new().kind(ExtractKind::Prefix).extract(&hir);
    let lits = seq.literals()?;
    if lits.is_empty() || lits.iter().any(|l| l.as_bytes().is_empty()) {
        return None;
    }
    Some(lits.iter().map(|l| l.as_bytes().to_vec()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Action, FieldCond, Loc};

    fn route(path: PathMatch, methods: &[&str]) -> Route {
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
    fn regexes_keep_file_order_whatever_their_conditions() {
        let routes = vec![
            route(PathMatch::Regex("^/a".into()), &[]),
            route(PathMatch::Regex("^/a/b".into()), &["GET"]),
            route(PathMatch::Regex("^/a".into()), &["GET"]),
            route(PathMatch::Exact("/a".into()), &[]),
        ];
        // The second route has more conditions but a different pattern: it stays after the
        // first. The third repeats the first pattern with more conditions: it goes before it.
        assert_eq!(match_order(&routes), vec![3, 2, 0, 1]);
    }

    #[test]
    fn replacements_parse_into_literals_groups_and_placeholders() {
        use ReplacementPart::*;
        let lit = |start, end| Literal { start, end };
        let g = |group, start| Group { group, start };
        let ok: &[(&str, &[ReplacementPart])] = &[
            ("/new/$1", &[lit(0, 5), g(1, 5)]),
            ("$2/x", &[g(2, 0), lit(2, 4)]),
            ("{path}", &[Path]),
            (
                "/a?{query}&b=$9",
                &[lit(0, 3), Query, lit(10, 13), g(9, 13)],
            ),
            ("/cost$$5", &[lit(0, 5), lit(6, 8)]),
            ("/{x", &[lit(0, 3)]),
            ("/{}/{Path}", &[lit(0, 10)]),
        ];
        for (text, want) in ok {
            assert_eq!(parse_replacement(text).as_deref(), Ok(*want), "{text}");
        }
        // (replacement, offending range)
        let bad: &[(&str, usize, usize)] = &[
            ("/a/$0", 3, 5),
            ("/a/$x", 3, 5),
            ("/a/$", 3, 4),
            ("/{host}/x", 1, 7),
            ("new/$1", 0, 6),
            ("{query}", 0, 7),
            ("", 0, 0),
        ];
        for (text, start, end) in bad {
            let e = parse_replacement(text).unwrap_err();
            assert_eq!((e.start, e.end), (*start, *end), "{text}: {}", e.message);
        }
        let parts = parse_replacement("/$2/$7/$7").unwrap();
        assert_eq!(max_group(&parts), Some((7, 4)));
        assert_eq!(max_group(&parse_replacement("/x").unwrap()), None);
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
    fn field_tests_that_exclude_each_other() {
        use MatchOp::*;
        let s = |x: &str| x.to_string();
        // (first test, second test, disjoint)
        let table = [
            (Equals(s("a")), Equals(s("a")), false),
            (Equals(s("a")), Equals(s("b")), true),
            (Equals(s("abc")), Prefix(s("ab")), false),
            (Prefix(s("ab")), Equals(s("b")), true),
            (Equals(s("xabc")), Contains(s("ab")), false),
            (Contains(s("z")), Equals(s("abc")), true),
            (Prefix(s("/a")), Prefix(s("/ab")), false),
            (Prefix(s("/a")), Prefix(s("/b")), true),
            (Contains(s("a")), Contains(s("b")), false),
            (Regex(s("^a$")), Equals(s("b")), false),
            (Present, Equals(s("b")), false),
        ];
        for (x, y, want) in table {
            assert_eq!(ops_disjoint(&x, &y), want, "{x:?} {y:?}");
            assert_eq!(ops_disjoint(&y, &x), want, "{y:?} {x:?}");
        }
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
