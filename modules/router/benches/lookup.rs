//! Router lookup time against the size of the route table.
//!
//! One site with N routes (N = 10, 1,000, 10,000): 60% prefix routes `/pI/*`, 20% exact routes
//! `= /eI`, 20% regex routes `~ '^/rI/[0-9]+$'`, plus a host table with exact and wildcard names.
//! Each group looks up one kind of request in the middle of the table: an exact path, a path
//! under a prefix, a regex path, and a path no route takes (404). Exact and prefix lookups walk a
//! hash table and a byte trie, and anchored regexes are indexed by their literal prefix, so the
//! time should not grow with N.
//!
//! ```text
//! cargo bench -p bext-router --bench lookup -- --warm-up-time 1 --measurement-time 3
//! ```

use bext_router::Router;
use bext_stage::{Headers, RequestView, RouteResult, RouteStage};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use std::fmt::Write as _;
use std::hint::black_box;

const SIZES: [usize; 3] = [10, 1_000, 10_000];

fn config(n: usize) -> String {
    let mut s = String::from("listen :8080\n");
    for i in 0..20 {
        let _ = writeln!(s, "site h{i}.example.com {{ route /* {{ respond 200 }} }}");
    }
    s.push_str("site *.wild.example.com { route /* { respond 200 } }\n");
    s.push_str("site bench.example.com {\n");
    for i in 0..n {
        let _ = match i % 10 {
            0..=5 => writeln!(s, "    route /p{i}/* {{ respond 200 }}"),
            6 | 7 => writeln!(s, "    route = /e{i} {{ respond 200 }}"),
            _ => writeln!(s, "    route ~ '^/r{i}/[0-9]+$' {{ respond 200 }}"),
        };
    }
    s.push_str("}\n");
    s
}

/// The route index nearest the middle of an `n`-route table with `i % 10 == residue`.
fn middle(n: usize, residue: usize) -> usize {
    n / 2 / 10 * 10 + residue
}

/// (group name, request path for a table of N routes, whether a route takes it)
type Case = (&'static str, fn(usize) -> String, bool);

fn lookup(c: &mut Criterion) {
    let cases: [Case; 4] = [
        ("exact", |n| format!("/e{}", middle(n, 6)), true),
        ("prefix", |n| format!("/p{}/a/b/c.html", middle(n, 0)), true),
        ("regex", |n| format!("/r{}/12345", middle(n, 8)), true),
        ("not_found", |_| "/nothing/here".to_string(), false),
    ];
    let routers: Vec<(usize, Router)> = SIZES
        .iter()
        .map(|&n| {
            let compiled = bext_dsl::compile_str("bench.bext", &config(n))
                .unwrap_or_else(|f| panic!("{}", f.render_human()));
            (n, Router::compile(&compiled.config).expect("router"))
        })
        .collect();
    for (name, target, found) in cases {
        let mut g = c.benchmark_group(format!("lookup/{name}"));
        for (n, router) in &routers {
            let path = target(*n);
            let view = RequestView {
                method: None,
                method_bytes: b"GET",
                host: b"bench.example.com",
                path: path.as_bytes(),
                query: None,
                headers: Headers::new(b"", &[]),
                client: "127.0.0.1:1".parse().expect("address"),
                tls: false,
                client_cert: None,
            };
            assert_eq!(
                matches!(router.route(&view), RouteResult::Matched(_)),
                found,
                "{name} {path}"
            );
            g.bench_with_input(BenchmarkId::from_parameter(n), &view, |b, v| {
                b.iter(|| router.route(black_box(v)))
            });
        }
        g.finish();
    }
}

criterion_group!(benches, lookup);
criterion_main!(benches);
