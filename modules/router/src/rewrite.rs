//! `rewrite PATTERN "REPLACEMENT"`: a route's regex rewrite of the request path.
//!
//! Compiled state and scratch are split the way regex-automata splits `Regex` and `Cache`: a
//! [`CompiledRewrite`] (or the table of a whole configuration, [`Rewrites`]) is immutable and
//! shared by every core; the search state a regex needs lives in a [`RewriteScratch`]
//! ([`RewritesScratch`]) that each core owns and passes by `&mut`, so applying a rewrite takes
//! no lock and allocates nothing but the growth of the output buffer.
//!
//! When the pattern matches the path, the replacement becomes the new request target: `$1`..`$9`
//! are capture groups (empty when a group did not take part in the match), `{path}` and
//! `{query}` the path and query before the rewrite. When the replacement has no `?` of its own,
//! the request's query (if any) is kept: `?` and the query are appended. The replacement is
//! parsed by [`bext_ir::routing::parse_replacement`], the same function the checker uses.

use crate::{compile_regex, RouteId, RouterError};
use bext_ir::routing::{max_group, parse_replacement, ReplacementPart};
use bext_ir::{Config, Rewrite};
use regex_automata::meta::{Cache, Regex};
use regex_automata::util::captures::Captures;
use regex_automata::Input;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Identity of a compiled rewrite (or table), so a scratch built for another one is noticed.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// One compiled `rewrite`.
#[derive(Debug)]
pub struct CompiledRewrite {
    id: u64,
    regex: Regex,
    /// The replacement text; `Literal` parts index into it.
    text: Box<[u8]>,
    parts: Box<[ReplacementPart]>,
    /// The replacement writes its own query: the request's is not appended.
    own_query: bool,
}

/// Per-core search state of one [`CompiledRewrite`].
#[derive(Debug)]
pub struct RewriteScratch {
    owner: u64,
    cache: Cache,
    caps: Captures,
}

impl CompiledRewrite {
    /// Compiles `rw`; fails when the pattern does not compile or the replacement is invalid
    /// (including a group number beyond the pattern's groups).
    pub fn compile(rw: &Rewrite) -> Result<CompiledRewrite, RouterError> {
        let err = |message: String| RouterError {
            message,
            at: rw.at.clone(),
        };
        let regex = compile_regex(&rw.pattern, &rw.at)?;
        let parts = parse_replacement(&rw.replacement)
            .map_err(|e| err(format!("invalid rewrite replacement: {}", e.message)))?;
        // Group 0 is the whole match; `group_len` counts it.
        let groups = regex
            .group_info()
            .group_len(regex_automata::PatternID::ZERO)
            .saturating_sub(1);
        if let Some((g, _)) = max_group(&parts) {
            if usize::from(g) > groups {
                return Err(err(format!(
                    "the replacement uses `${g}` but `{}` has {groups} capture group{}",
                    rw.pattern,
                    if groups == 1 { "" } else { "s" }
                )));
            }
        }
        let text: Box<[u8]> = rw.replacement.as_bytes().into();
        let own_query = parts.iter().any(|p| match *p {
            ReplacementPart::Literal { start, end } => text[start..end].contains(&b'?'),
            _ => false,
        });
        Ok(CompiledRewrite {
            id: next_id(),
            regex,
            text,
            parts: parts.into_boxed_slice(),
            own_query,
        })
    }

    /// A scratch for this rewrite, to keep per core and pass to [`CompiledRewrite::apply`].
    pub fn scratch(&self) -> RewriteScratch {
        RewriteScratch {
            owner: self.id,
            cache: self.regex.create_cache(),
            caps: self.regex.create_captures(),
        }
    }

    /// Rewrites `path` (and `query`, without its `?`) into `out`, which receives the new
    /// request target (path, then `?query` when there is one). Returns false, leaving `out`
    /// untouched, when the pattern does not match: the request keeps its target. `out` is
    /// appended to, not cleared. A scratch made for another rewrite is rebuilt first (which
    /// allocates); with its own scratch the call allocates nothing but `out`'s growth.
    pub fn apply(
        &self,
        scratch: &mut RewriteScratch,
        path: &[u8],
        query: Option<&[u8]>,
        out: &mut Vec<u8>,
    ) -> bool {
        if scratch.owner != self.id {
            *scratch = self.scratch();
        }
        self.regex
            .search_captures_with(&mut scratch.cache, &Input::new(path), &mut scratch.caps);
        if !scratch.caps.is_match() {
            return false;
        }
        for part in self.parts.iter() {
            match *part {
                ReplacementPart::Literal { start, end } => {
                    out.extend_from_slice(&self.text[start..end])
                }
                ReplacementPart::Group { group, .. } => {
                    if let Some(span) = scratch.caps.get_group(usize::from(group)) {
                        out.extend_from_slice(&path[span.range()]);
                    }
                }
                ReplacementPart::Path => out.extend_from_slice(path),
                ReplacementPart::Query => out.extend_from_slice(query.unwrap_or_default()),
            }
        }
        if let (false, Some(q)) = (self.own_query, query) {
            out.push(b'?');
            out.extend_from_slice(q);
        }
        true
    }
}

/// The rewrites of every route of a configuration, by [`RouteId`] (the id the router returns).
#[derive(Debug, Default)]
pub struct Rewrites {
    id: u64,
    by_route: Vec<Option<CompiledRewrite>>,
}

/// Per-core search state of every rewrite of one [`Rewrites`] table.
#[derive(Debug, Default)]
pub struct RewritesScratch {
    owner: u64,
    by_route: Vec<Option<RewriteScratch>>,
}

impl Rewrites {
    /// Compiles the `rewrite` of every route of `config`.
    pub fn compile(config: &Config) -> Result<Rewrites, RouterError> {
        let by_route = config
            .sites
            .iter()
            .flat_map(|s| s.routes.iter())
            .map(|r| r.rewrite.as_ref().map(CompiledRewrite::compile).transpose())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Rewrites {
            id: next_id(),
            by_route,
        })
    }

    /// The rewrite of `route`, if it has one.
    pub fn get(&self, route: RouteId) -> Option<&CompiledRewrite> {
        self.by_route.get(route.0 as usize)?.as_ref()
    }

    /// A scratch for every rewrite of this table, to keep per core.
    pub fn scratch(&self) -> RewritesScratch {
        RewritesScratch {
            owner: self.id,
            by_route: self
                .by_route
                .iter()
                .map(|r| r.as_ref().map(CompiledRewrite::scratch))
                .collect(),
        }
    }

    /// Applies the rewrite of `route` as [`CompiledRewrite::apply`] does; false when the route
    /// has no rewrite or its pattern does not match. A scratch from another table (an older
    /// configuration after a reload) is rebuilt first, once.
    pub fn apply(
        &self,
        route: RouteId,
        scratch: &mut RewritesScratch,
        path: &[u8],
        query: Option<&[u8]>,
        out: &mut Vec<u8>,
    ) -> bool {
        let Some(rw) = self.get(route) else {
            return false;
        };
        if scratch.owner != self.id {
            *scratch = self.scratch();
        }
        match scratch.by_route.get_mut(route.0 as usize) {
            Some(Some(s)) => rw.apply(s, path, query, out),
            // Unreachable with the scratch rebuilt above; a fresh one keeps it correct anyway.
            _ => rw.apply(&mut rw.scratch(), path, query, out),
        }
    }
}

/// The rewrite of one route as the engine applies it: the configuration's shared table and the
/// route's id. Each core keeps the regex scratch in a thread-local (one engine worker per
/// thread), so applying a rewrite takes no lock; the last two tables a core used keep their
/// scratch, so requests finishing on the previous configuration during a reload do not rebuild
/// it for every request.
#[derive(Debug)]
pub struct RouteRewrite {
    table: Arc<Rewrites>,
    route: RouteId,
}

thread_local! {
    static SCRATCH: RefCell<[RewritesScratch; 2]> = RefCell::new(Default::default());
}

impl Rewrites {
    /// The engine's handle on the rewrite of `route`, if it has one.
    pub fn for_route(self: &Arc<Self>, route: RouteId) -> Option<RouteRewrite> {
        self.get(route)?;
        Some(RouteRewrite {
            table: Arc::clone(self),
            route,
        })
    }
}

impl bext_stage::TargetRewrite for RouteRewrite {
    fn rewrite(&self, path: &[u8], query: Option<&[u8]>, out: &mut Vec<u8>) -> bool {
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut pair) => {
                // Slot 0 is this core's current table, slot 1 the one before. A request on the
                // other table swaps them; on a third table the older one is rebuilt (once).
                if pair[0].owner != self.table.id {
                    pair.swap(0, 1);
                }
                self.table.apply(self.route, &mut pair[0], path, query, out)
            }
            // Not reentrant in practice; a fresh scratch keeps it correct if it ever is.
            Err(_) => self
                .table
                .apply(self.route, &mut self.table.scratch(), path, query, out),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bext_ir::Loc;

    fn rw(pattern: &str, replacement: &str) -> Rewrite {
        Rewrite {
            pattern: pattern.into(),
            replacement: replacement.into(),
            at: Loc::default(),
        }
    }

    #[test]
    fn rewrites_expand_groups_and_placeholders() {
        // (pattern, replacement, request target, new target or None when it does not match)
        let table: &[(&str, &str, &str, Option<&str>)] = &[
            ("^/old/(.*)$", "/new/$1", "/old/a/b", Some("/new/a/b")),
            ("^/old/(.*)$", "/new/$1", "/old/a?x=1", Some("/new/a?x=1")),
            ("^/old/(.*)$", "/new/$1", "/other", None),
            (
                "^/u/([0-9]+)/(\\w+)$",
                "/users/$2/$1",
                "/u/42/edit",
                Some("/users/edit/42"),
            ),
            ("^/u/([0-9]+)/(\\w+)$", "/users/$2/$1", "/u/x/edit", None),
            // Unanchored: the whole target is still replaced, not only the matched part.
            ("v1", "/v2{path}", "/api/v1/x", Some("/v2/api/v1/x")),
            // A replacement with its own `?` decides the query.
            ("^/s$", "/search?q={query}", "/s?a=1", Some("/search?q=a=1")),
            ("^/s$", "/search?", "/s?a=1", Some("/search?")),
            ("^/s$", "/search?fixed=1", "/s", Some("/search?fixed=1")),
            ("^/s$", "/search", "/s?", Some("/search?")),
            // An optional group that did not take part is empty.
            ("^/a(/b)?(/c)$", "/x$1$2", "/a/c", Some("/x/c")),
            ("^/a(/b)?(/c)$", "/x$1$2", "/a/b/c", Some("/x/b/c")),
            // `$$` is a dollar sign; braces that are not a placeholder are text.
            ("^/p/(.+)$", "/price$$$1/{x", "/p/5", Some("/price$5/{x")),
            ("^/(?P<name>[a-z]+)$", "/n/$1", "/abc", Some("/n/abc")),
            ("(?i)^/CASE/(.*)", "/case/$1", "/case/X", Some("/case/X")),
            ("^/(.*)$", "$1", "/a", Some("a")),
        ];
        for (pattern, replacement, target, want) in table {
            let c = CompiledRewrite::compile(&rw(pattern, replacement)).unwrap();
            let mut s = c.scratch();
            let (path, query) = match target.split_once('?') {
                Some((p, q)) => (p, Some(q.as_bytes())),
                None => (*target, None),
            };
            let mut out = b"keep:".to_vec();
            let hit = c.apply(&mut s, path.as_bytes(), query, &mut out);
            let got = hit.then(|| String::from_utf8(out[5..].to_vec()).unwrap());
            assert_eq!(got.as_deref(), *want, "{pattern} {replacement} {target}");
            if !hit {
                assert_eq!(out, b"keep:", "out is untouched on no match");
            }
        }
    }

    #[test]
    fn invalid_rewrites_are_refused_with_a_reason() {
        let table: &[(&str, &str, &str)] = &[
            (
                "^/a/(.*)$",
                "/b/$2",
                "uses `$2` but `^/a/(.*)$` has 1 capture group",
            ),
            ("^/a$", "/b/$1", "has 0 capture groups"),
            ("^/(a)(?:b)$", "/$2", "has 1 capture group"),
            ("^/a$", "/b/$0", "`$` must be followed by a group number"),
            ("^/a$", "/{host}", "unknown placeholder `{host}`"),
            ("^/a$", "b", "must be a path"),
            ("(", "/b", "invalid regular expression"),
        ];
        for (pattern, replacement, want) in table {
            let e = CompiledRewrite::compile(&rw(pattern, replacement)).unwrap_err();
            assert!(e.message.contains(want), "{pattern} {replacement}: {e}");
        }
        assert!(CompiledRewrite::compile(&rw("^/(a)(b)(c)(d)(e)(f)(g)(h)(i)$", "/$9")).is_ok());
    }

    #[test]
    fn a_scratch_from_another_rewrite_is_rebuilt() {
        let a = CompiledRewrite::compile(&rw("^/a/(x)$", "/A$1")).unwrap();
        let b = CompiledRewrite::compile(&rw("^/b/(.)(.)$", "/B$2$1")).unwrap();
        let mut s = a.scratch();
        let mut out = vec![];
        assert!(b.apply(&mut s, b"/b/12", None, &mut out));
        assert!(a.apply(&mut s, b"/a/x", None, &mut out));
        assert_eq!(out, b"/B21/Ax");
    }

    #[test]
    fn the_table_finds_rewrites_by_route_id() {
        let src = bext_ir::Config {
            sites: vec![bext_ir::Site {
                hosts: vec![],
                routes: vec![
                    crate::tests::route(bext_ir::PathMatch::Prefix("/".into()), &[]),
                    {
                        let mut r =
                            crate::tests::route(bext_ir::PathMatch::Prefix("/o/".into()), &[]);
                        r.rewrite = Some(rw("^/o/(.*)$", "/n/$1"));
                        r
                    },
                ],
                paths: Default::default(),
                redirect_https: None,
                hsts: None,
                at: Loc::default(),
            }],
            ..Config::default()
        };
        let t = Rewrites::compile(&src).unwrap();
        let mut s = RewritesScratch::default();
        let mut out = vec![];
        assert!(!t.apply(RouteId(0), &mut s, b"/o/x", None, &mut out));
        assert!(t.apply(RouteId(1), &mut s, b"/o/x", Some(b"a"), &mut out));
        assert!(!t.apply(RouteId(7), &mut s, b"/o/x", None, &mut out));
        assert_eq!(out, b"/n/x?a");
        assert!(t.get(RouteId(1)).is_some() && t.get(RouteId(0)).is_none());
    }
}
