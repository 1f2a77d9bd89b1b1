//! The router's acceptance table: small configurations with overlapping routes, requests, and
//! the winner that `docs/language.md` ("Which route wins", `site`) says must take each one.
//!
//! Every configuration is compiled by the checker first (`bext check` must accept it, with
//! exactly the warnings listed), then by the router. In the sources, `=> NAME` stands for
//! `respond 200 "NAME"`, so the winner is named by its body; `404` and `405` are the answers
//! when no route takes the request. Lines without a `site` are wrapped in `site * { ... }`.
//!
//! A request is written `METHOD HOST TARGET [NAME:VALUE ...]`.

use bext_http1::{Header, Span};
use bext_ir::{Action, Config};
use bext_router::Router;
use bext_stage::{Headers, RequestView, RouteResult, RouteStage};

/// (what the case is about, configuration, warnings `bext check` reports, requests and winners)
type Case = (
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [(&'static str, &'static str)],
);

const CASES: &[Case] = &[
    // ---- hosts
    (
        "an exact host beats a wildcard, which beats the default site",
        "site a.example.com { route /* { => exact } }
         site *.example.com { route /* { => wild } }
         site * { route /* { => default } }",
        &[],
        &[
            ("GET a.example.com /", "exact"),
            ("GET A.Example.COM /", "exact"),
            ("GET b.example.com /", "wild"),
            ("GET x.y.example.com /", "wild"),
            ("GET example.com /", "default"),
            ("GET other.org /", "default"),
        ],
    ),
    (
        "the longer wildcard wins",
        "site *.example.com { route /* { => short } }
         site *.api.example.com { route /* { => long } }",
        &[],
        &[
            ("GET v1.api.example.com /", "long"),
            ("GET api.example.com /", "short"),
            ("GET www.example.com /", "short"),
        ],
    ),
    (
        "a wildcard needs a whole label before its suffix",
        "site *.example.com { route /* { => wild } }
         site * { route /* { => default } }",
        &[],
        &[
            ("GET badexample.com /", "default"),
            ("GET .example.com /", "default"),
            ("GET a.example.com.evil /", "default"),
        ],
    ),
    (
        "without a default site an unknown host is 404",
        "site a.test { route /* { => a } }",
        &[],
        &[("GET a.test /x", "a"), ("GET b.test /x", "404")],
    ),
    (
        "a site without names is the default site",
        "site a.test { route /* { => a } }
         site { route /* { => nameless } }",
        &[],
        &[("GET a.test /", "a"), ("GET z.test /", "nameless")],
    ),
    (
        "a site with several names serves each",
        "site a.test b.test { route /* { => ab } }
         site * { route /* { => default } }",
        &[],
        &[
            ("GET a.test /", "ab"),
            ("GET b.test /", "ab"),
            ("GET c.test /", "default"),
        ],
    ),
    (
        "routing never falls through to another site",
        "site a.test { route /only/* { => a } }
         site * { route /* { => default } }",
        &[],
        &[("GET a.test /only/x", "a"), ("GET a.test /other", "404")],
    ),
    (
        "each site has its own table",
        "site a.test { route = /x { => a-exact }; route /* { => a-root } }
         site b.test { route ~ '^/x' { => b-regex }; route /* { => b-root } }",
        &[],
        &[
            ("GET a.test /x", "a-exact"),
            ("GET a.test /xy", "a-root"),
            ("GET b.test /xy", "b-regex"),
            ("GET b.test /y", "b-root"),
        ],
    ),
    (
        "a wildcard site's routes follow the same order",
        "site *.shop.test {
             route /* { => root }
             route = /cart { => cart }
             route ~ '^/item/[0-9]+$' { => item }
         }",
        &[],
        &[
            ("GET eu.shop.test /cart", "cart"),
            ("GET eu.shop.test /item/7", "item"),
            ("GET eu.shop.test /item/x", "root"),
            ("GET shop.test /cart", "404"),
        ],
    ),
    // ---- exact and prefix paths
    (
        "an exact path beats a prefix",
        "route /a/* { => prefix }
         route = /a/x { => exact }",
        &[],
        &[
            ("GET x.test /a/x", "exact"),
            ("GET x.test /a/y", "prefix"),
            ("GET x.test /a", "404"),
        ],
    ),
    (
        "a bare path is exact",
        "route /healthz { => health }",
        &[],
        &[
            ("GET x.test /healthz", "health"),
            ("GET x.test /healthz/", "404"),
            ("GET x.test /healthzz", "404"),
        ],
    ),
    (
        "`/api*` also takes `/apis`, `/api/*` is longer",
        "route /api* { => star }
         route /api/* { => slash }",
        &[],
        &[
            ("GET x.test /apis", "star"),
            ("GET x.test /api", "star"),
            ("GET x.test /api/v1", "slash"),
            ("GET x.test /ap", "404"),
        ],
    ),
    (
        "the longest prefix wins",
        "route /* { => root }
         route /a/b/* { => ab }
         route /a/* { => a }",
        &[],
        &[
            ("GET x.test /a/b/c", "ab"),
            ("GET x.test /a/b", "a"),
            ("GET x.test /a/bc", "a"),
            ("GET x.test /b", "root"),
            ("GET x.test /", "root"),
        ],
    ),
    (
        "an exact `/` and the catch-all",
        "route /* { => root }
         route = / { => slash }",
        &[],
        &[("GET x.test /", "slash"), ("GET x.test /x", "root")],
    ),
    (
        "paths are compared as sent, without decoding",
        "route = /caf%C3%A9 { => encoded }",
        &[],
        &[
            ("GET x.test /caf%C3%A9", "encoded"),
            ("GET x.test /caf%c3%a9", "404"),
        ],
    ),
    (
        "the query is not part of the path",
        "route = /s { => s }
         route /s/* { => under }",
        &[],
        &[("GET x.test /s?x=/y", "s"), ("GET x.test /s/?a", "under")],
    ),
    // ---- regex paths
    (
        "a regex beats a prefix",
        "route /a/* { => prefix }
         route ~ '^/a/[0-9]+$' { => regex }",
        &[],
        &[
            ("GET x.test /a/12", "regex"),
            ("GET x.test /a/12/x", "prefix"),
            ("GET x.test /a/x", "prefix"),
        ],
    ),
    (
        "a regex beats even a longer prefix, which it then shadows",
        "route ~ '^/a/[0-9]+' { => regex }
         route /a/1/* { => prefix }",
        &["W0401"],
        &[("GET x.test /a/1/x", "regex"), ("GET x.test /a/b", "404")],
    ),
    (
        "an exact path beats a regex",
        "route ~ '^/x' { => regex }
         route = /x { => exact }",
        &[],
        &[("GET x.test /x", "exact"), ("GET x.test /xy", "regex")],
    ),
    (
        "regexes are tried in file order",
        "route ~ '^/a' { => first }
         route ~ '^/ab' { => second }",
        &[],
        &[("GET x.test /ab", "first"), ("GET x.test /a", "first")],
    ),
    (
        "regexes keep file order whatever their conditions",
        "route ~ '^/a' { => first }
         route ~ '^/ab' { method GET; => second }",
        &[],
        &[("GET x.test /ab", "first")],
    ),
    (
        "a repeated regex with more conditions is tried first, at the first one's place",
        "route ~ '^/a' { => plain }
         route ~ '^/b' { => b }
         route ~ '^/a' { method POST; => post }",
        &[],
        &[
            ("POST x.test /a", "post"),
            ("GET x.test /a", "plain"),
            ("POST x.test /b", "b"),
        ],
    ),
    (
        "an unanchored regex matches anywhere in the path",
        "route ~ 'admin' { => admin }
         route /* { => root }",
        &[],
        &[
            ("GET x.test /x/admin/y", "admin"),
            ("GET x.test /administrator", "admin"),
            ("GET x.test /x", "root"),
        ],
    ),
    (
        "file order holds between unanchored and anchored regexes",
        "route ~ 'x' { => unanchored }
         route ~ '^/x' { => anchored }
         route ~ '^/y' { => y }
         route ~ 'y$' { => ends }",
        &[],
        &[
            ("GET x.test /x", "unanchored"),
            ("GET x.test /y", "y"),
            ("GET x.test /ay", "ends"),
        ],
    ),
    (
        "file order holds between anchored and unanchored regexes",
        "route ~ '^/x' { => anchored }
         route ~ 'x' { => unanchored }",
        &[],
        &[
            ("GET x.test /x", "anchored"),
            ("GET x.test /ax", "unanchored"),
        ],
    ),
    (
        "regex alternatives and case-insensitive regexes",
        "route ~ '^/(a|b)/x' { => ab }
         route ~ '(?i)^/admin' { => admin }
         route /* { => root }",
        &[],
        &[
            ("GET x.test /b/x", "ab"),
            ("GET x.test /c/x", "root"),
            ("GET x.test /ADMIN/x", "admin"),
            ("GET x.test /aDmIn", "admin"),
        ],
    ),
    (
        "a regex whose conditions fail leaves the request to the prefixes",
        "route ~ '^/a' { method POST; => regex }
         route /* { => root }",
        &[],
        &[("GET x.test /a", "root"), ("POST x.test /a", "regex")],
    ),
    (
        "an exact route whose conditions fail leaves the request to the regexes",
        "route = /a { header x-a present; => exact }
         route ~ '^/a$' { => regex }",
        &[],
        &[("GET x.test /a x-a:1", "exact"), ("GET x.test /a", "regex")],
    ),
    // ---- methods
    (
        "a route with a method condition is tried before the same path without",
        "route /a/* { => any }
         route /a/* { method GET; => get }",
        &[],
        &[("GET x.test /a/x", "get"), ("POST x.test /a/x", "any")],
    ),
    (
        "a path that matches with the wrong method is 405",
        "route /a/* { method GET; => get }",
        &[],
        &[("POST x.test /a/x", "405"), ("GET x.test /b", "404")],
    ),
    (
        "disjoint method lists and a fallback",
        "route /orders/* { method GET HEAD; => reader }
         route /orders/* { method POST PUT DELETE; => writer }
         route /orders/* { => fallback }",
        &[],
        &[
            ("GET x.test /orders/1", "reader"),
            ("HEAD x.test /orders/1", "reader"),
            ("PUT x.test /orders/1", "writer"),
            ("PATCH x.test /orders/1", "fallback"),
        ],
    ),
    (
        "405 only when every condition but the method holds",
        "route /a/* { method GET; header x-a = \"1\"; => get }",
        &[],
        &[
            ("POST x.test /a/x x-a:1", "405"),
            ("POST x.test /a/x", "404"),
            ("GET x.test /a/x x-a:1", "get"),
        ],
    ),
    (
        "another route that takes the request beats 405",
        "route = /a { method GET; => get }
         route /* { => root }",
        &[],
        &[("POST x.test /a", "root"), ("GET x.test /a", "get")],
    ),
    (
        "methods are case-sensitive",
        "route /* { method GET; => get }",
        &[],
        &[("get x.test /", "405"), ("GET x.test /", "get")],
    ),
    (
        "405 collects every kind of path",
        "route = /x { method POST; => post }
         route ~ '^/x' { method PUT; => put }
         route /* { method GET; => get }",
        &[],
        &[
            ("DELETE x.test /x", "405"),
            ("GET x.test /x", "get"),
            ("POST x.test /x", "post"),
            ("PUT x.test /x", "put"),
        ],
    ),
    (
        "a regex route answers 405 too",
        "route ~ '^/r/' { method DELETE; => delete }",
        &[],
        &[("GET x.test /r/1", "405"), ("DELETE x.test /r/1", "delete")],
    ),
    // ---- headers
    (
        "a header condition: names ignore case, values do not",
        "route /* { header x-canary = \"1\"; => canary }
         route /* { => stable }",
        &[],
        &[
            ("GET x.test / x-canary:1", "canary"),
            ("GET x.test / X-Canary:1", "canary"),
            ("GET x.test / x-canary:2", "stable"),
            ("GET x.test /", "stable"),
        ],
    ),
    (
        "header values are case-sensitive",
        "route /* { header x-env = \"Prod\"; => prod }
         route /* { => other }",
        &[],
        &[
            ("GET x.test / x-env:Prod", "prod"),
            ("GET x.test / x-env:prod", "other"),
        ],
    ),
    (
        "a header condition looks at the first field of that name",
        "route /* { header x-a = \"1\"; => one }
         route /* { => other }",
        &[],
        &[
            ("GET x.test / x-a:2 x-a:1", "other"),
            ("GET x.test / x-a:1 x-a:2", "one"),
        ],
    ),
    (
        "present, starts_with, contains and regex header conditions",
        "route /p/* { header authorization present; => present }
         route /s/* { header accept starts_with \"text/\"; => text }
         route /c/* { header cookie contains \"beta=1\"; => beta }
         route /r/* { header user-agent ~ '(?i)bot'; => bot }
         route /* { => other }",
        &[],
        &[
            ("GET x.test /p/1 authorization:", "present"),
            ("GET x.test /p/1", "other"),
            ("GET x.test /s/1 accept:text/html", "text"),
            ("GET x.test /s/1 accept:application/json", "other"),
            ("GET x.test /c/1 cookie:a=1;beta=1", "beta"),
            ("GET x.test /r/1 user-agent:GoogleBOT", "bot"),
            ("GET x.test /r/1 user-agent:curl", "other"),
        ],
    ),
    (
        "more conditions first, and a route with none of them missing is 404",
        "route /* { header x-a present; => one }
         route /* { header x-a present; header x-b present; => two }",
        &[],
        &[
            ("GET x.test / x-a:1 x-b:1", "two"),
            ("GET x.test / x-a:1", "one"),
            ("GET x.test / x-b:1", "404"),
        ],
    ),
    (
        "a header required to equal different values makes routes disjoint",
        "route /* { header x-v = \"1\"; => v1 }
         route /* { header x-v = \"2\"; => v2 }",
        &[],
        &[
            ("GET x.test / x-v:1", "v1"),
            ("GET x.test / x-v:2", "v2"),
            ("GET x.test / x-v:3", "404"),
        ],
    ),
    (
        "header tests that exclude each other make routes disjoint",
        "route /* { header x-path starts_with \"/a\"; => a }
         route /* { header x-path starts_with \"/b\"; => b }
         route /* { header x-path = \"/c\"; => c }",
        &[],
        &[
            ("GET x.test / x-path:/a/1", "a"),
            ("GET x.test / x-path:/b", "b"),
            ("GET x.test / x-path:/c", "c"),
            ("GET x.test / x-path:/d", "404"),
        ],
    ),
    (
        "methods count as one condition, like a header",
        "route /* { method GET POST; header x-a present; => both }
         route /* { method GET; => get }
         route /* { => any }",
        &[],
        &[
            ("POST x.test / x-a:1", "both"),
            ("GET x.test / x-a:1", "both"),
            ("GET x.test /", "get"),
            ("POST x.test /", "any"),
        ],
    ),
    // ---- query
    (
        "a query condition on an exact route",
        "route = /s { query q = \"a\"; => qa }
         route = /s { => s }",
        &[],
        &[
            ("GET x.test /s?q=a", "qa"),
            ("GET x.test /s?x=1&q=a", "qa"),
            ("GET x.test /s?q=b", "s"),
            ("GET x.test /s", "s"),
        ],
    ),
    (
        "query present, with or without a value; names are exact",
        "route /* { query debug present; => debug }
         route /* { => plain }",
        &[],
        &[
            ("GET x.test /x?debug", "debug"),
            ("GET x.test /x?debug=0", "debug"),
            ("GET x.test /x?debugx=1", "plain"),
            ("GET x.test /x?DEBUG=1", "plain"),
        ],
    ),
    (
        "query values are compared as sent, first occurrence",
        "route /* { query q = \"a b\"; => spaced }
         route /* { query id ~ '^[0-9]+$'; header x present; => id }
         route /* { => plain }",
        &[],
        &[
            ("GET x.test /x?q=a%20b", "plain"),
            ("GET x.test /x?q=b&q=a%20b", "plain"),
            ("GET x.test /x?id=12 x:1", "id"),
            ("GET x.test /x?id=1x x:1", "plain"),
        ],
    ),
    // ---- mixed
    (
        "a longer prefix beats a shorter one with more conditions",
        "route /a/* { method GET; header x present; => a }
         route /a/b/* { => ab }",
        &[],
        &[
            ("GET x.test /a/b/c x:1", "ab"),
            ("GET x.test /a/c x:1", "a"),
        ],
    ),
    (
        "exact routes with conditions, most conditions first",
        "route = /e { => any }
         route = /e { method GET; => get }
         route = /e { method GET; header x present; => get-x }",
        &[],
        &[
            ("GET x.test /e x:1", "get-x"),
            ("GET x.test /e", "get"),
            ("POST x.test /e x:1", "any"),
        ],
    ),
    (
        "the example of docs/language.md",
        "route = /a { => exact }
         route ~ '^/a/[0-9]+$' { => num }
         route ~ '^/a/4' { method GET; => four }
         route /a/* { method GET HEAD; => a }
         route /* { method GET; => any }",
        &[],
        &[
            ("GET x.test /a", "exact"),
            ("POST x.test /a", "exact"),
            ("GET x.test /a/42", "num"),
            ("GET x.test /a/4x", "four"),
            ("GET x.test /a/x", "a"),
            ("POST x.test /a/4x", "405"),
            ("GET x.test /b", "any"),
            ("DELETE x.test /b", "405"),
        ],
    ),
    (
        "the fixed order ignores the order of lines",
        "route /* { => root }
         route /api/* { => api }
         route ~ '^/api/v[0-9]+/' { => versioned }
         route = /api/health { => health }
         route /api/* { method POST; => api-post }",
        &[],
        &[
            ("GET x.test /api/health", "health"),
            ("POST x.test /api/health", "health"),
            ("GET x.test /api/v2/users", "versioned"),
            ("POST x.test /api/users", "api-post"),
            ("GET x.test /api/users", "api"),
            ("GET x.test /index.html", "root"),
        ],
    ),
    // ---- asterisk-form
    (
        "`OPTIONS *` goes to the catch-all only",
        "route /* { => root }
         route = / { => slash }
         route ~ '.*' { => any-regex }",
        // The regex takes every path, so the checker warns about `/*`; `OPTIONS *` is no path.
        &["W0401"],
        &[("OPTIONS x.test *", "root"), ("GET x.test /x", "any-regex")],
    ),
    (
        "`OPTIONS *` without a catch-all is 404",
        "route /api/* { => api }
         route ~ '^.*$' { => regex }",
        &[],
        &[("OPTIONS x.test *", "404")],
    ),
    (
        "`OPTIONS *` and a catch-all limited to other methods is 405",
        "route /* { method GET; => get }",
        &[],
        &[("OPTIONS x.test *", "405")],
    ),
];

/// `=> NAME` → `respond 200 "NAME"`; wraps bare routes in `site * { ... }`.
fn expand(src: &str) -> String {
    let mut out = String::from("listen :8080\n");
    let body = if src.trim_start().starts_with("site") {
        src.to_string()
    } else {
        format!("site * {{\n{src}\n}}")
    };
    let mut rest = body.as_str();
    while let Some(i) = rest.find("=> ") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 3..];
        let end = after
            .find(|c: char| c.is_whitespace() || c == '}' || c == ';')
            .unwrap_or(after.len());
        out.push_str(&format!("respond 200 \"{}\"", &after[..end]));
        rest = &after[end..];
    }
    out.push_str(rest);
    out.push('\n');
    out
}

/// The body of the `respond` action of each route, by flat route index.
fn route_names(config: &Config) -> Vec<String> {
    config
        .sites
        .iter()
        .flat_map(|s| s.routes.iter())
        .map(|r| match &r.action {
            Action::Respond { body, .. } => body.clone(),
            other => panic!("not a named route: {other:?}"),
        })
        .collect()
}

/// Routes `request` (`METHOD HOST TARGET [NAME:VALUE ...]`) and names the answer.
fn answer(router: &Router, names: &[String], request: &str) -> String {
    let mut words = request.split_whitespace();
    let (Some(method), Some(host), Some(target)) = (words.next(), words.next(), words.next())
    else {
        panic!("bad request line in the table: {request}");
    };
    let mut buf = Vec::new();
    let mut list = Vec::new();
    for field in words {
        let (n, v) = field.split_once(':').expect("NAME:VALUE");
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
        client: "127.0.0.1:1".parse().expect("address"),
        tls: false,
        client_cert: None,
    };
    match router.route(&view) {
        RouteResult::Matched(id) => names[id.0 as usize].clone(),
        RouteResult::NotFound => "404".into(),
        RouteResult::MethodNotAllowed => "405".into(),
    }
}

#[test]
fn the_table_has_at_least_fifty_cases() {
    assert!(CASES.len() >= 50, "{} cases", CASES.len());
}

#[test]
fn the_router_picks_the_documented_winner() {
    let mut failures = vec![];
    for (about, src, warnings, requests) in CASES {
        let text = expand(src);
        let compiled = match bext_dsl::compile_str("case.bext", &text) {
            Ok(c) => c,
            Err(f) => {
                failures.push(format!(
                    "{about}: bext check refuses it\n{}",
                    f.render_human()
                ));
                continue;
            }
        };
        let got_warnings: Vec<&str> = compiled.warnings.iter().map(|d| d.code).collect();
        if got_warnings != *warnings {
            failures.push(format!(
                "{about}: warnings {got_warnings:?}, want {warnings:?}"
            ));
        }
        let router = Router::compile(&compiled.config).expect("the router compiles it");
        let names = route_names(&compiled.config);
        for (request, want) in *requests {
            let got = answer(&router, &names, request);
            if got != *want {
                failures.push(format!("{about}: `{request}` → {got}, want {want}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `bext explain` reasons with [`bext_router::explain::explain`]: on every request of the table
/// it must reach the router's answer, and its list of routes tried must end with the winner
/// (and only there with a match).
#[test]
fn explain_agrees_with_the_router_on_every_request() {
    use bext_router::explain::{explain, Verdict};
    let mut checked = 0;
    for (about, src, _, requests) in CASES {
        let Ok(compiled) = bext_dsl::compile_str("case.bext", &expand(src)) else {
            continue; // reported by the_router_picks_the_documented_winner
        };
        let config = &compiled.config;
        let router = Router::compile(config).expect("the router compiles it");
        for (request, _) in *requests {
            with_view(request, |view| {
                let routed = router.route(view);
                let e = explain(config, view).expect("explains");
                assert_eq!(e.result, routed, "{about}: `{request}`");
                let matches: Vec<_> = (e.tried.iter())
                    .filter(|t| t.verdict == Verdict::Matched)
                    .collect();
                match routed {
                    RouteResult::Matched(id) => {
                        assert_eq!(matches.len(), 1, "{about}: `{request}`");
                        assert_eq!(e.tried.last().map(|t| t.id), Some(id));
                    }
                    RouteResult::MethodNotAllowed => {
                        assert!(matches.is_empty());
                        assert!(e
                            .tried
                            .iter()
                            .any(|t| matches!(t.verdict, Verdict::Method { .. })));
                    }
                    RouteResult::NotFound => assert!(matches.is_empty()),
                }
            });
            checked += 1;
        }
    }
    assert!(checked >= 100, "{checked} requests");
}

/// The router's view of `request` (`METHOD HOST TARGET [NAME:VALUE ...]`).
fn with_view(request: &str, f: impl FnOnce(&RequestView<'_>)) {
    let mut words = request.split_whitespace();
    let (Some(method), Some(host), Some(target)) = (words.next(), words.next(), words.next())
    else {
        panic!("bad request line in the table: {request}");
    };
    let mut buf = Vec::new();
    let mut list = Vec::new();
    for field in words {
        let (n, v) = field.split_once(':').expect("NAME:VALUE");
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
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q.as_bytes())),
        None => (target, None),
    };
    f(&RequestView {
        method: None,
        method_bytes: method.as_bytes(),
        host: host.as_bytes(),
        path: path.as_bytes(),
        query,
        headers: Headers::new(&buf, &list),
        client: "127.0.0.1:1".parse().expect("address"),
        tls: false,
        client_cert: None,
    });
}
