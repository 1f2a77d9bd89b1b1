//! Route-table analysis of one site: ties, shadowed routes and redirect loops.
//!
//! The order in which the router tries routes is defined once, in [`bext_ir::routing`]; this
//! module only asks questions of it. The facts it relies on:
//!
//! * exact routes come first, so nothing shadows an exact route except an identical one (a tie);
//! * a longer prefix comes before a shorter one and, for one prefix, more conditions come first,
//!   so an earlier prefix route never covers a later one unless they tie;
//! * every regex route comes before every prefix route. A regex whose only assertions look
//!   backwards (`^`, none at the end such as `$` or `\b`) and that matches the literal prefix
//!   `P` matches every path that starts with `P`, because the match found inside `P` is still a
//!   match when more characters follow. Such a regex, with conditions that the prefix route's
//!   conditions imply, leaves nothing for the prefix route: it is shadowed.

use crate::diag::{self, Diags, Sources};
use crate::lower::RouteSpans;
use bext_ir::routing::{conditions_cover, is_tie, match_order, ranks};
use bext_ir::{Action, PathMatch, Site};
use regex_automata::meta::Regex;
use regex_automata::{Input, PatternSet};
use regex_syntax::hir::Look;
use std::collections::HashMap;

/// The compiled-size limit of one regex (its NFA), shared with the router.
pub const REGEX_SIZE_LIMIT: usize = 4 << 20;

/// Why a regex does not compile: the regex engine's reason and, for a syntax error, the byte
/// range of the pattern at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegexError {
    pub message: String,
    /// Byte range in the pattern.
    pub at: Option<(usize, usize)>,
    /// What to do about it.
    pub help: String,
}

/// Compiles a regex the way the router will, with a size limit so a pathological pattern is a
/// diagnostic, not an allocation storm.
pub fn compile_regex(pattern: &str) -> Result<Regex, RegexError> {
    compile_many(&[pattern])
}

fn compile_many(patterns: &[&str]) -> Result<Regex, RegexError> {
    Regex::builder()
        .configure(
            Regex::config()
                .nfa_size_limit(Some(REGEX_SIZE_LIMIT))
                .hybrid_cache_capacity(1 << 20),
        )
        .build_many(patterns)
        .map_err(|e| regex_error(&e))
}

fn regex_error(e: &regex_automata::meta::BuildError) -> RegexError {
    if let Some(limit) = e.size_limit() {
        return RegexError {
            message: format!(
                "the compiled pattern would be larger than the limit of {} MiB",
                limit >> 20
            ),
            at: None,
            help: "simplify the pattern: counted repetitions such as `{1000}` and Unicode classes \
                   such as `\\w` grow it (`[0-9a-zA-Z_]` is much smaller than `\\w`)"
                .into(),
        };
    }
    let (message, at) = match e.syntax_error() {
        Some(regex_syntax::Error::Parse(p)) => (
            p.kind().to_string(),
            Some((p.span().start.offset, p.span().end.offset)),
        ),
        Some(regex_syntax::Error::Translate(t)) => (
            t.kind().to_string(),
            Some((t.span().start.offset, t.span().end.offset)),
        ),
        Some(other) => (other.to_string(), None),
        None => (e.to_string(), None),
    };
    let help = match message.as_str() {
        "unclosed group" => "add the missing `)`, or write `\\(` for a literal parenthesis",
        "unopened group" => "remove this `)`, or write `\\)` for a literal parenthesis",
        "unclosed character class" => {
            "add the missing `]`, or write `\\[` for a literal bracket"
        }
        "repetition operator missing expression" => {
            "`*`, `+` and `?` repeat what comes before them: write `\\+` (or `\\*`, `\\?`) for the character itself"
        }
        m if m.contains("look-around") || m.contains("backreferences") => {
            "the regex engine runs in linear time and has no look-around or backreferences: \
             use route conditions or several routes instead"
        }
        m if m.contains("escape") => {
            "write a backslash before a special character only (`\\.` `\\+` `\\(` ...), in a single-quoted string"
        }
        _ => "patterns use the syntax of the Rust `regex` crate; write them in single quotes, \
              where a backslash is just a backslash: '^/u/\\d+$'",
    };
    RegexError {
        message,
        at,
        help: help.to_string(),
    }
}

/// Does a match of `pattern` on some string survive appending characters to that string?
fn extends_to_suffixes(pattern: &str) -> bool {
    let Ok(hir) = regex_syntax::parse(pattern) else {
        return false;
    };
    let mut looks = hir.properties().look_set();
    looks = looks.remove(Look::Start).remove(Look::StartLF);
    looks.is_empty()
}

fn path_matches(path: &PathMatch, target: &str, regexes: &HashMap<usize, Regex>, i: usize) -> bool {
    match path {
        PathMatch::Exact(e) => e == target,
        PathMatch::Prefix(p) => target.starts_with(p.as_str()),
        PathMatch::Regex(_) => regexes.get(&i).is_some_and(|r| r.is_match(target)),
    }
}

/// What the analysis of a site cost, for tests that keep it near-linear.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Pairs of routes compared for a tie.
    pub tie_comparisons: usize,
}

/// The value a route requires of `field` (a header name in lower case, or `?name` for a query
/// parameter) with `=`, if it has exactly one condition on that field and it is `=`.
fn required_value<'r>(r: &'r bext_ir::Route, field: &str) -> Option<&'r str> {
    let mut conds = r
        .headers
        .iter()
        .filter(|c| c.name.eq_ignore_ascii_case(field))
        .chain(
            r.query
                .iter()
                .filter(|c| field.strip_prefix('?') == Some(c.name.as_str())),
        );
    match (conds.next(), conds.next()) {
        (
            Some(bext_ir::FieldCond {
                op: bext_ir::MatchOp::Equals(v),
                ..
            }),
            None,
        ) => Some(v),
        _ => None,
    }
}

/// For each route of `bucket` (routes with one pattern and one condition count, in file
/// order), the first earlier route of the bucket it ties with.
///
/// Comparing every pair is quadratic, and a site with thousands of variants of one path (one
/// route per tenant header value, say) would take seconds. Routes that require two different
/// values of one field with `=` never tie, so the field that most routes of the bucket require
/// with `=` splits it: a route is compared with the earlier routes that require the same value,
/// and with the earlier routes that do not pin that field ("open" routes), which may tie with
/// anything. The result is the same as comparing every pair; the work is linear when most routes
/// pin a value.
fn first_ties(
    routes: &[bext_ir::Route],
    bucket: &[usize],
    stats: &mut Stats,
) -> Vec<(usize, usize)> {
    let mut votes: HashMap<String, usize> = HashMap::new();
    for &i in bucket {
        let r = &routes[i];
        let fields = r
            .headers
            .iter()
            .map(|c| c.name.to_ascii_lowercase())
            .chain(r.query.iter().map(|c| format!("?{}", c.name)));
        for f in fields {
            if required_value(r, &f).is_some() {
                *votes.entry(f).or_default() += 1;
            }
        }
    }
    let field = votes
        .into_iter()
        .max_by(|(fa, a), (fb, b)| a.cmp(b).then_with(|| fb.cmp(fa)))
        .map(|(f, _)| f);
    let mut by_value: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut open: Vec<usize> = vec![];
    let mut out = vec![];
    for &b in bucket {
        let value = field.as_deref().and_then(|f| required_value(&routes[b], f));
        let same: &[usize] = value
            .and_then(|v| by_value.get(v))
            .map_or(&[], Vec::as_slice);
        // Earlier candidates in file order: a value's list and the open list, merged.
        let candidates: Vec<usize> = match value {
            Some(_) => {
                let mut c: Vec<usize> = same.iter().chain(open.iter()).copied().collect();
                c.sort_unstable();
                c
            }
            // An open route may tie with any earlier route.
            None => {
                let mut c: Vec<usize> = by_value
                    .values()
                    .flatten()
                    .chain(open.iter())
                    .copied()
                    .collect();
                c.sort_unstable();
                c
            }
        };
        let hit = candidates.into_iter().find(|&a| {
            stats.tie_comparisons += 1;
            is_tie(&routes[a], &routes[b])
        });
        if let Some(a) = hit {
            out.push((a, b));
        }
        match value {
            Some(v) => by_value.entry(v).or_default().push(b),
            None => open.push(b),
        }
    }
    out
}

/// Reports ties (E0401), shadowed routes (W0401) and redirect loops (E0402) in `site`.
pub fn analyse(site: &Site, spans: &[RouteSpans], sources: &Sources, diags: &mut Diags) -> Stats {
    let mut stats = Stats::default();
    let routes = &site.routes;
    if routes.len() != spans.len() {
        return stats;
    }
    // Ties: only routes with the same pattern and the same number of conditions can tie, so
    // group by both first.
    let mut groups: HashMap<(&PathMatch, usize), Vec<usize>> = HashMap::new();
    for (i, r) in routes.iter().enumerate() {
        groups
            .entry((&r.path, bext_ir::routing::condition_count(r)))
            .or_default()
            .push(i);
    }
    let mut tied = vec![false; routes.len()];
    let mut group_list: Vec<&Vec<usize>> = groups.values().filter(|g| g.len() > 1).collect();
    group_list.sort_unstable();
    let mut pairs: Vec<(usize, usize)> = group_list
        .into_iter()
        .flat_map(|g| first_ties(routes, g, &mut stats))
        .collect();
    pairs.sort_unstable_by_key(|&(_, b)| b);
    for (a, b) in pairs {
        tied[b] = true;
        let same = routes[a] == routes[b]
            || routes[a].path == routes[b].path
                && bext_ir::routing::condition_count(&routes[a]) == 0;
        let msg = if same {
            "this route has the same path and conditions as an earlier one"
        } else {
            "this route has the same priority as an earlier one and both can match one request"
        };
        diags.emit(
            sources,
            diag::error("E0401", spans[b].path, msg)
                .label(spans[a].path, "the earlier route")
                .help(
                    "make their conditions disjoint (for example different methods), or merge them",
                ),
        );
    }

    // Regex routes that shadow prefix routes.
    let mut regexes: HashMap<usize, Regex> = HashMap::new();
    let order = match_order(routes);
    let ranks = ranks(routes);
    let regex_idx: Vec<usize> = order
        .iter()
        .copied()
        .filter(|&i| matches!(routes[i].path, PathMatch::Regex(_)))
        .collect();
    for &i in &regex_idx {
        if let PathMatch::Regex(p) = &routes[i].path {
            if let Ok(r) = compile_regex(p) {
                regexes.insert(i, r);
            }
        }
    }
    // Only regexes whose matches survive appended characters can cover a prefix. To avoid
    // testing every such regex against every prefix route, regexes anchored at the start are
    // indexed by their literal prefixes: `^/api/v[0-9]` can only match a string that starts
    // with `/api/v`, so it is tried only on prefix routes whose path starts with that.
    let mut by_literal: HashMap<Vec<u8>, Vec<usize>> = HashMap::new();
    let mut general: Vec<usize> = vec![];
    for &i in &regex_idx {
        let PathMatch::Regex(p) = &routes[i].path else {
            continue;
        };
        if !regexes.contains_key(&i) || !extends_to_suffixes(p) {
            continue;
        }
        match bext_ir::routing::anchored_prefixes(p) {
            Some(lits) => {
                for l in lits {
                    by_literal.entry(l).or_default().push(i);
                }
            }
            None => general.push(i),
        }
    }
    let general_set = if general.is_empty() {
        None
    } else {
        let pats: Vec<&str> = general
            .iter()
            .filter_map(|&i| match &routes[i].path {
                PathMatch::Regex(p) => Some(p.as_str()),
                _ => None,
            })
            .collect();
        compile_many(&pats).ok()
    };
    if !by_literal.is_empty() || general_set.is_some() {
        let mut set = general_set
            .as_ref()
            .map(|r| PatternSet::new(r.pattern_len()));
        for (b, r) in routes.iter().enumerate() {
            let PathMatch::Prefix(p) = &r.path else {
                continue;
            };
            if tied[b] {
                continue;
            }
            let bytes = p.as_bytes();
            let mut candidates: Vec<usize> = (0..=bytes.len())
                .filter_map(|k| by_literal.get(&bytes[..k]))
                .flatten()
                .copied()
                .filter(|a| regexes.get(a).is_some_and(|re| re.is_match(p.as_str())))
                .collect();
            if let (Some(re), Some(set)) = (&general_set, set.as_mut()) {
                set.clear();
                re.which_overlapping_matches(&Input::new(p.as_str()), set);
                candidates.extend(set.iter().map(|pid| general[pid.as_usize()]));
            }
            // The first regex in match order wins: report that one.
            let by = candidates
                .into_iter()
                .filter(|&a| conditions_cover(&routes[a], r))
                .min_by_key(|&a| ranks[a]);
            if let Some(a) = by {
                diags.emit(
                    sources,
                    diag::warning(
                        "W0401",
                        spans[b].path,
                        format!("this route never matches: every path under `{p}*` is taken by an earlier regex route"),
                    )
                    .label(spans[a].path, "this regex is tried first and matches them all")
                    .help("regex routes are tried before prefix routes; anchor the regex with `$` or narrow it"),
                );
            }
        }
    }

    // Redirects that send a request back to the route that redirected it.
    for (i, r) in routes.iter().enumerate() {
        let Action::Redirect { location, status } = &r.action else {
            continue;
        };
        // Clients follow 301/302/303 with GET: a route limited to other methods does not see
        // the redirected request.
        if matches!(status, 301..=303)
            && !r.methods.is_empty()
            && !r.methods.iter().any(|m| m == "GET")
        {
            continue;
        }
        let Some(span) = spans[i].redirect else {
            continue;
        };
        if !location.starts_with('/') || location.starts_with("//") {
            continue;
        }
        let sample = match &r.path {
            PathMatch::Exact(e) => e.clone(),
            PathMatch::Prefix(p) => format!("{p}x"),
            PathMatch::Regex(_) if location.contains("{path}") => continue,
            PathMatch::Regex(_) => String::new(),
        };
        let target = location.replace("{path}", &sample).replace("{query}", "");
        if target.contains('{') || target.contains('$') {
            continue;
        }
        let target = target.split(['?', '#']).next().unwrap_or("");
        // Only when this route matches the target can it loop; then no route tried before it
        // may take the request. Checking in that order keeps the analysis linear in practice.
        if !path_matches(&r.path, target, &regexes, i) {
            continue;
        }
        let taken_earlier = order.iter().copied().take_while(|&o| o != i).any(|o| {
            path_matches(&routes[o].path, target, &regexes, o) && conditions_cover(&routes[o], r)
        });
        if !taken_earlier {
            diags.emit(
                sources,
                diag::error(
                    "E0402",
                    span,
                    format!("this redirect loops: `{target}` is served by the same route"),
                )
                .label(spans[i].path, "this route matches the new location again")
                .help("redirect to a path outside this route, or narrow the route"),
            );
        }
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_stable_regexes() {
        for (p, wide) in [
            ("^/api", true),
            ("/api", true),
            ("(?m)^/x", true),
            ("^/api$", false),
            ("^/api\\b", false),
            ("^/a\\z", false),
        ] {
            assert_eq!(extends_to_suffixes(p), wide, "{p}");
        }
    }

    #[test]
    fn anchored_literal_prefixes() {
        let lit = |p: &str| {
            bext_ir::routing::anchored_prefixes(p).map(|v| {
                v.into_iter()
                    .map(|b| String::from_utf8(b).expect("utf-8"))
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(lit("^/api/v."), Some(vec!["/api/v".to_string()]));
        assert_eq!(
            lit("^/(a|b)/x"),
            Some(vec!["/a/x".to_string(), "/b/x".to_string()])
        );
        assert_eq!(lit("/api"), None);
        assert_eq!(lit("^.*x"), None);
    }

    #[test]
    fn regex_errors_carry_the_reason_and_where() {
        let e = compile_regex("^/a(b").expect_err("unclosed");
        assert_eq!(e.message, "unclosed group");
        assert_eq!(e.at, Some((3, 4)));
        let e = compile_regex("^/a/+x[").expect_err("unclosed class");
        assert_eq!(e.message, "unclosed character class");
        assert_eq!(e.at, Some((6, 7)));
        let e = compile_regex("a{1000}{1000}").expect_err("too big");
        assert!(e.message.contains("limit of 4 MiB"), "{}", e.message);
        assert!(compile_regex("^/u/[0-9]+$").is_ok());
    }
}
