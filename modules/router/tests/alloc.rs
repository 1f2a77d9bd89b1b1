//! Router lookup (site, route, conditions — regex paths and regex conditions included) and
//! `rewrite` allocate nothing per request: a counting global allocator proves it.
//!
//! Each request is routed once before counting: the first search of a regex builds its
//! per-thread search cache (and the lazy DFA its states for that input), which is the one-time
//! cost the compiled-vs-scratch split allows. After that, lookups must not allocate at all.

use bext_http1::{Header, Span};
use bext_router::{Rewrites, Router};
use bext_stage::{Headers, RequestView, RouteResult, RouteStage};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    /// Allocations made by this thread: the test harness's own threads may allocate while a
    /// test runs, and must not be counted against the code under test.
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: a thread being torn down may still free or allocate.
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

fn allocs() -> u64 {
    ALLOCS.with(Cell::get)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count();
        // SAFETY: forwards the caller's layout to the system allocator unchanged.
        unsafe { System.alloc(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: `p` came from this allocator with layout `l`; the caller upholds the rest.
        unsafe { System.realloc(p, l, new_size) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: `p` came from `System.alloc` with this layout.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

const CONFIG: &str = r#"
listen :8080
upstream app { server 127.0.0.1:9000 }
site example.com www.example.com {
    route = /healthz { method GET HEAD; respond 200 "ok" }
    route ~ '^/user/([0-9]+)$' { header x-beta = "1"; proxy app }
    route ~ '^/user/([0-9]+)$' { proxy app }
    route ~ 'legacy' { rewrite '^/(.*)/legacy/(.*)$' "/v2/$1/$2"; proxy app }
    route /api/* { query v ~ '^[0-9]+$'; header user-agent ~ '(?i)bot'; proxy app }
    route /api/* { method GET; proxy app }
    route /* { proxy app }
}
site *.example.com { route /* { header cookie contains "beta=1"; proxy app }; route /* { proxy app } }
site * { route /static/* { method GET; proxy app } }
"#;

/// (method, host, target, headers, found)
type Request = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    RouteResult,
);

fn matched(flat: u32) -> RouteResult {
    RouteResult::Matched(bext_router::RouteId(flat))
}

#[test]
fn lookups_and_rewrites_allocate_nothing_per_request() {
    let compiled = bext_dsl::compile_str("alloc.bext", CONFIG).expect("valid");
    let router = Router::compile(&compiled.config).expect("router");
    let rewrites = Rewrites::compile(&compiled.config).expect("rewrites");
    let requests: &[Request] = &[
        ("GET", "example.com", "/healthz", &[], matched(0)),
        (
            "GET",
            "EXAMPLE.com",
            "/user/42",
            &[("X-Beta", "1")],
            matched(1),
        ),
        ("GET", "www.example.com", "/user/42", &[], matched(2)),
        ("GET", "example.com", "/a/legacy/b", &[], matched(3)),
        (
            "GET",
            "example.com",
            "/api/x?a=1&v=12",
            &[("accept", "*/*"), ("user-agent", "GoogleBot")],
            matched(4),
        ),
        ("GET", "example.com", "/api/x?v=x", &[], matched(5)),
        ("POST", "example.com", "/api/x", &[], matched(6)),
        (
            "GET",
            "a.example.com",
            "/",
            &[("cookie", "a=1; beta=1")],
            matched(7),
        ),
        ("GET", "a.b.example.com", "/", &[], matched(8)),
        ("GET", "other.org", "/static/app.js", &[], matched(9)),
        (
            "POST",
            "other.org",
            "/static/app.js",
            &[],
            RouteResult::MethodNotAllowed,
        ),
        ("GET", "other.org", "/nothing", &[], RouteResult::NotFound),
        ("OPTIONS", "example.com", "*", &[], matched(6)),
    ];
    // The request heads, built before counting.
    let heads: Vec<(Vec<u8>, Vec<Header>)> = requests
        .iter()
        .map(|(_, _, _, headers, _)| {
            let mut buf = Vec::new();
            let mut list = Vec::new();
            for (n, v) in *headers {
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
            (buf, list)
        })
        .collect();
    let client = "127.0.0.1:1".parse().expect("address");
    let route_all = || -> Vec<RouteResult> {
        requests
            .iter()
            .zip(&heads)
            .map(|((method, host, target, _, _), (buf, list))| {
                let (path, query) = match target.split_once('?') {
                    Some((p, q)) => (p, Some(q.as_bytes())),
                    None => (*target, None),
                };
                router.route(&RequestView {
                    method: None,
                    method_bytes: method.as_bytes(),
                    host: host.as_bytes(),
                    path: path.as_bytes(),
                    query,
                    headers: Headers::new(buf, list),
                    client,
                    tls: false,
                    client_cert: None,
                })
            })
            .collect()
    };
    let want: Vec<RouteResult> = requests.iter().map(|r| r.4).collect();
    assert_eq!(route_all(), want, "warm-up answers");

    let probe = allocs();
    drop(std::hint::black_box(vec![0u8; 8]));
    assert!(allocs() > probe, "the counting allocator is in place");

    let mut results = Vec::with_capacity(requests.len());
    let before = allocs();
    for _ in 0..1_000 {
        results.clear();
        for ((method, host, target, _, _), (buf, list)) in requests.iter().zip(&heads) {
            let (path, query) = match target.split_once('?') {
                Some((p, q)) => (p, Some(q.as_bytes())),
                None => (*target, None),
            };
            results.push(router.route(&RequestView {
                method: None,
                method_bytes: method.as_bytes(),
                host: host.as_bytes(),
                path: path.as_bytes(),
                query,
                headers: Headers::new(buf, list),
                client,
                tls: false,
                client_cert: None,
            }));
        }
    }
    let lookups = allocs() - before;
    assert_eq!(results, want);
    assert_eq!(lookups, 0, "allocations in 13,000 lookups");

    // A rewrite with a per-core scratch and an output buffer that already has room.
    let mut scratch = rewrites.scratch();
    let mut out = Vec::with_capacity(256);
    let legacy = bext_router::RouteId(3);
    assert!(rewrites.apply(legacy, &mut scratch, b"/a/legacy/b", Some(b"x=1"), &mut out));
    assert_eq!(out, b"/v2/a/b?x=1");
    let before = allocs();
    for _ in 0..1_000 {
        out.clear();
        assert!(rewrites.apply(legacy, &mut scratch, b"/a/legacy/b", Some(b"x=1"), &mut out));
        assert!(!rewrites.apply(legacy, &mut scratch, b"/a/other", None, &mut out));
    }
    let rewriting = allocs() - before;
    assert_eq!(out, b"/v2/a/b?x=1");
    assert_eq!(rewriting, 0, "allocations in 2,000 rewrites");
}
