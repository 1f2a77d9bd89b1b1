//! `rewrite` end to end: the target an upstream receives, for a table of routes and requests
//! (captures, placeholders, the query kept or replaced, no match), on a keep-alive connection,
//! and across a reload that changes the rewrite.

mod common;
use bext_ir as ir;
use common::*;
use std::io::{BufReader, Write};

/// An upstream that answers every request with its request line as the body.
fn echo_target() -> std::net::SocketAddr {
    upstream(|mut s| loop {
        let head = read_head(&mut s);
        let Some(line) = head.lines().next().filter(|l| !l.is_empty()) else {
            return;
        };
        let body = line.to_string();
        let resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if s.write_all(resp.as_bytes()).is_err() {
            return;
        }
    })
}

fn rewrite_route(path: ir::PathMatch, pattern: &str, replacement: &str) -> ir::Route {
    let mut r = route(
        path,
        ir::Action::Proxy {
            upstream: "backend".into(),
        },
    );
    r.rewrite = Some(ir::Rewrite {
        pattern: pattern.into(),
        replacement: replacement.into(),
        at: loc(),
    });
    r
}

fn config(up: std::net::SocketAddr, routes: Vec<ir::Route>) -> ir::Config {
    let mut c = proxy_to(up);
    c.sites[0].routes = routes;
    c
}

fn routes_v1() -> Vec<ir::Route> {
    vec![
        rewrite_route(
            ir::PathMatch::Prefix("/old/".into()),
            "^/old/(.*)$",
            "/new/$1",
        ),
        rewrite_route(
            ir::PathMatch::Prefix("/u/".into()),
            r"^/u/([0-9]+)/(\w+)$",
            "/users/$2/$1",
        ),
        rewrite_route(ir::PathMatch::Prefix("/api/".into()), "v1", "/v2{path}"),
        rewrite_route(
            ir::PathMatch::Exact("/s".into()),
            "^/s$",
            "/search?q={query}",
        ),
        route(
            ir::PathMatch::Prefix("/".into()),
            ir::Action::Proxy {
                upstream: "backend".into(),
            },
        ),
    ]
}

fn forwarded(r: &mut BufReader<std::net::TcpStream>, target: &str) -> String {
    r.get_mut()
        .write_all(format!("GET {target} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes())
        .unwrap();
    let resp = read_response(r, false);
    assert_eq!(resp.status, 200, "{target}");
    resp.text()
}

#[test]
fn upstreams_receive_the_rewritten_target() {
    let up = echo_target();
    let srv = start(config(up, routes_v1()));
    // (request target, request line the upstream receives)
    let table = [
        ("/old/a/b", "GET /new/a/b HTTP/1.1"),
        ("/old/a/b?x=1", "GET /new/a/b?x=1 HTTP/1.1"),
        ("/u/42/edit", "GET /users/edit/42 HTTP/1.1"),
        ("/u/42/edit?t=2", "GET /users/edit/42?t=2 HTTP/1.1"),
        // The pattern does not match: the target is forwarded unchanged.
        ("/u/x/edit", "GET /u/x/edit HTTP/1.1"),
        ("/api/v1/x", "GET /v2/api/v1/x HTTP/1.1"),
        ("/api/other", "GET /api/other HTTP/1.1"),
        ("/s?a=1", "GET /search?q=a=1 HTTP/1.1"),
        ("/s", "GET /search?q= HTTP/1.1"),
        ("/plain?k=v", "GET /plain?k=v HTTP/1.1"),
    ];
    // One keep-alive connection for the whole table: each rewrite uses the core's scratch.
    let mut r = BufReader::new(connect(addr(&srv)));
    for (target, want) in table {
        assert_eq!(forwarded(&mut r, target), want, "{target}");
    }
    srv.shutdown();
}

#[test]
fn a_reload_changes_the_rewrite() {
    let up = echo_target();
    let srv = start(config(up, routes_v1()));
    let mut r = BufReader::new(connect(addr(&srv)));
    assert_eq!(forwarded(&mut r, "/old/a"), "GET /new/a HTTP/1.1");
    let mut routes = routes_v1();
    routes[0] = rewrite_route(
        ir::PathMatch::Prefix("/old/".into()),
        "^/old/(.*)$",
        "/v3/$1",
    );
    srv.reload(&config(up, routes)).expect("reload");
    assert_eq!(forwarded(&mut r, "/old/a"), "GET /v3/a HTTP/1.1");
    srv.shutdown();
}

#[test]
fn bext_check_and_run_accept_a_rewrite() {
    let src = "listen 127.0.0.1:0\nupstream backend { server 127.0.0.1:9 }\n\
               site * {\n  route /old/* {\n    rewrite '^/old/(.*)$' \"/new/$1\"\n    proxy backend\n  }\n}\n";
    let compiled = match bext_dsl::compile_str("rewrite.bext", src) {
        Ok(c) => c,
        Err(_) => panic!("the configuration compiles"),
    };
    assert!(bext::unsupported_features(&compiled.config).is_empty());
    let srv = start(compiled.config);
    srv.shutdown();
}
