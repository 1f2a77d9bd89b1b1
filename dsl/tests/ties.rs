//! `bext check` reports every tie (E0401) of a configuration, each at the later route's path
//! with a label on the earlier route it ties with — not only the first one, and not the routes
//! that merely look alike (disjoint conditions, fewer conditions).

use bext_dsl::compile_str;

const SRC: &str = r#"listen :8080
upstream app { server 127.0.0.1:9000 }
site a.test {
    route = /x { proxy app }
    route = /x { respond 200 }
    route /api/* { method GET; proxy app }
    route /api/* { method GET HEAD; proxy app }
    route /api/* { method POST; proxy app }
    route /api/* { proxy app }
    route ~ '^/u/[0-9]+$' { header x-v = "1"; proxy app }
    route ~ '^/u/[0-9]+$' { header x-v = "2"; proxy app }
    route ~ '^/u/[0-9]+$' { header X-V present; proxy app }
    route /* { proxy app }
    route /* { respond 404 }
    route /* { respond 410 }
}
site b.test {
    route /s/* { query q = "1"; proxy app }
    route /s/* { header x-a present; proxy app }
    route /t/* { query q = "1"; proxy app }
    route /t/* { query q = "2"; proxy app }
}
"#;

#[test]
fn every_tie_is_reported_with_the_route_it_ties_with() {
    let failure = compile_str("ties.bext", SRC).expect_err("ties are errors");
    let mut got: Vec<(&str, u32, u32, Vec<u32>)> = failure
        .diagnostics()
        .iter()
        .map(|d| {
            (
                d.code,
                d.line,
                d.col,
                d.labels.iter().map(|l| l.line).collect(),
            )
        })
        .collect();
    got.sort_by_key(|(_, line, col, _)| (*line, *col));
    // (code, line, column of the later route's path, line of the earlier route)
    let want: Vec<(&str, u32, u32, Vec<u32>)> = vec![
        // Same exact path, no conditions.
        ("E0401", 5, 13, vec![4]),
        // GET is in both method lists. POST (line 8) is disjoint; line 9 has fewer conditions.
        ("E0401", 7, 11, vec![6]),
        // `present` overlaps `= "1"`; lines 10 and 11 require different values.
        ("E0401", 12, 13, vec![10]),
        // A third identical route ties with the first, and is reported too.
        ("E0401", 14, 11, vec![13]),
        ("E0401", 15, 11, vec![13]),
        // One query and one header condition: equal counts, both can hold.
        ("E0401", 19, 11, vec![18]),
    ];
    assert_eq!(got, want);
}

#[test]
fn ties_are_reported_in_json_with_line_and_column() {
    let failure = compile_str("ties.bext", SRC).expect_err("ties are errors");
    let json = failure.render_json();
    let lines: Vec<&str> = json.lines().collect();
    assert_eq!(lines.len(), 6, "{json}");
    for line in lines {
        assert!(line.contains(r#""code":"E0401""#), "{line}");
        assert!(line.contains(r#""file":"ties.bext""#), "{line}");
    }
    assert!(json.contains(r#""line":19,"column":11"#), "{json}");
}

use bext_ir::{Action, FieldCond, Loc, MatchOp, PathMatch, Route, Site};

/// A route to `app` with these conditions.
fn route(
    path: PathMatch,
    methods: &[&str],
    headers: &[(&str, MatchOp)],
    query: &[(&str, MatchOp)],
) -> Route {
    let mut r = Route::new(
        path,
        Action::Proxy {
            upstream: "app".into(),
        },
        Loc::default(),
    );
    r.methods = methods.iter().map(|m| m.to_string()).collect();
    let conds = |cs: &[(&str, MatchOp)]| {
        cs.iter()
            .map(|(n, op)| FieldCond {
                name: n.to_string(),
                op: op.clone(),
            })
            .collect()
    };
    r.headers = conds(headers);
    r.query = conds(query);
    r
}

/// Runs the route-table analysis on `routes` as one site, returning the (earlier, later)
/// pairs reported as ties and the number of pairs compared.
fn analyse(routes: Vec<Route>) -> (Vec<(usize, usize)>, usize) {
    use bext_dsl::diag::Diags;
    let site = Site {
        hosts: vec![],
        routes,
        paths: Default::default(),
        redirect_https: None,
        hsts: None,
        at: Loc::default(),
    };
    // Spans that name each route by its index, so the reported pairs can be read back.
    let mut sources = bext_dsl::Sources::default();
    let file = sources.add("big.bext".into(), " ".repeat(site.routes.len() + 1));
    let spans: Vec<bext_dsl::lower::RouteSpans> = (0..site.routes.len())
        .map(|i| bext_dsl::lower::RouteSpans {
            path: bext_dsl::Span::new(file, i, i + 1),
            ..Default::default()
        })
        .collect();
    let mut diags = Diags::default();
    let stats = bext_dsl::routes::analyse(&site, &spans, &sources, &mut diags);
    let pairs = diags
        .list
        .iter()
        .filter(|d| d.code == "E0401")
        .map(|d| (d.labels[0].span.start, d.span.start))
        .collect();
    (pairs, stats.tie_comparisons)
}

/// The first earlier route each route ties with, comparing every pair.
fn brute_force(routes: &[Route]) -> Vec<(usize, usize)> {
    (0..routes.len())
        .filter_map(|b| {
            (0..b)
                .find(|&a| bext_ir::routing::is_tie(&routes[a], &routes[b]))
                .map(|a| (a, b))
        })
        .collect()
}

/// A site of 10,000 variants of one path, one per tenant header value, plus a few routes
/// that do not pin the tenant: the tie check completes, compares a number of pairs linear in
/// the routes (not 50 million), and finds the ties that are there.
#[test]
fn ten_thousand_variants_of_one_path_are_checked_in_linear_comparisons() {
    let api = || PathMatch::Prefix("/api/".into());
    let mut routes: Vec<Route> = (0..10_000)
        .map(|i| {
            route(
                api(),
                &[],
                &[("x-tenant", MatchOp::Equals(format!("t{i}")))],
                &[],
            )
        })
        .collect();
    // A route that does not pin the tenant ties with every tenant route, and is reported
    // once, against the first of them; a repeated tenant value ties with its first route.
    routes.push(route(api(), &[], &[("x-beta", MatchOp::Present)], &[]));
    routes.push(route(
        api(),
        &[],
        &[("X-Tenant", MatchOp::Equals("t7".into()))],
        &[],
    ));
    let n = routes.len();
    let (pairs, comparisons) = analyse(routes);
    assert_eq!(pairs, vec![(0, 10_000), (7, 10_001)]);
    assert!(
        comparisons < 4 * n,
        "{comparisons} comparisons for {n} routes"
    );
}

/// 10,000 distinct paths: no pair is even compared.
#[test]
fn ten_thousand_distinct_paths_compare_nothing() {
    let routes = (0..10_000)
        .map(|i| route(PathMatch::Prefix(format!("/p{i}/")), &[], &[], &[]))
        .collect();
    let (pairs, comparisons) = analyse(routes);
    assert!(pairs.is_empty());
    assert_eq!(comparisons, 0);
}

/// The bucketed tie check finds exactly the first tie of every route that comparing every
/// pair finds, on a mix of pinned values, open routes, methods and query conditions.
#[test]
fn bucketed_ties_equal_every_pair_compared() {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    let mut routes = vec![];
    for _ in 0..600 {
        let path = match next(3) {
            0 => PathMatch::Prefix("/a/".into()),
            1 => PathMatch::Prefix("/b/".into()),
            _ => PathMatch::Exact("/c".into()),
        };
        let mut headers = vec![];
        match next(5) {
            0 | 1 => headers.push(("x-t", MatchOp::Equals(next(6).to_string()))),
            2 => headers.push(("x-t", MatchOp::Present)),
            3 => headers.push(("X-T", MatchOp::Prefix(next(3).to_string()))),
            _ => {}
        }
        if next(4) == 0 {
            headers.push(("x-u", MatchOp::Equals(next(2).to_string())));
        }
        let mut query = vec![];
        if next(3) == 0 {
            query.push(("v", MatchOp::Equals(next(3).to_string())));
        }
        let methods: &[&str] = match next(4) {
            0 => &["GET"],
            1 => &["POST"],
            2 => &["GET", "HEAD"],
            _ => &[],
        };
        routes.push(route(path, methods, &headers, &query));
    }
    let want = brute_force(&routes);
    let (pairs, _) = analyse(routes);
    assert!(want.len() > 10, "{}", want.len());
    assert_eq!(pairs, want);
}

/// The whole check of a site at the route cap, 10,000 variants of one path, completes.
#[test]
fn a_site_of_ten_thousand_routes_compiles() {
    let mut src =
        String::from("listen :8080\nupstream app { server 127.0.0.1:9000 }\nsite a.test {\n");
    for i in 0..10_000 {
        src.push_str(&format!(
            "    route /api/* {{ header x-tenant = \"t{i}\"; proxy app }}\n"
        ));
    }
    src.push_str("}\n");
    let c = compile_str("big.bext", &src).expect("no ties");
    assert_eq!(c.config.sites[0].routes.len(), 10_000);
}
