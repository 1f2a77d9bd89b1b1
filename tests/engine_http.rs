//! The HTTP/1.1 server side of the engine, over real sockets: keep-alive, pipelining, bodies,
//! 100-continue, HEAD, HTTP/1.0, limits and their statuses, routing errors as problem+json.

mod common;
use common::*;
use std::io::{BufReader, Write};

fn three_routes() -> bext::Server {
    start(site(vec![
        route(bext_ir::PathMatch::Exact("/a".into()), respond(200, "a")),
        route(bext_ir::PathMatch::Exact("/b".into()), respond(201, "bb")),
        route(bext_ir::PathMatch::Exact("/c".into()), respond(202, "ccc")),
        route(
            bext_ir::PathMatch::Exact("/go".into()),
            bext_ir::Action::Redirect {
                status: 308,
                location: "https://{host}/new{path}?{query}".into(),
            },
        ),
    ]))
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let srv = three_routes();
    let mut s = connect(addr(&srv));
    let mut r = BufReader::new(s.try_clone().unwrap());
    for (path, status, body) in [
        ("/a", 200, "a"),
        ("/b", 201, "bb"),
        ("/c", 202, "ccc"),
        ("/a", 200, "a"),
    ] {
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let resp = read_response(&mut r, false);
        assert_eq!((resp.status, resp.text().as_str()), (status, body));
        assert_eq!(resp.header("connection"), None);
    }
    srv.shutdown();
}

#[test]
fn an_independent_client_reuses_its_connection() {
    let srv = three_routes();
    let agent = ureq::AgentBuilder::new().build();
    for _ in 0..5 {
        let resp = agent
            .get(&format!("http://{}/b", addr(&srv)))
            .call()
            .expect("201 is a success");
        assert_eq!(resp.status(), 201);
        assert_eq!(resp.into_string().unwrap(), "bb");
    }
    srv.shutdown();
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let srv = three_routes();
    let mut s = connect(addr(&srv));
    s.write_all(
        b"GET /c HTTP/1.1\r\nHost: x\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyzGET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let got: Vec<String> = (0..4)
        .map(|_| read_response(&mut r, false).text())
        .collect();
    assert_eq!(got, ["ccc", "a", "bb", "ccc"]);
    assert!(closed(&mut r), "Connection: close ends the connection");
    srv.shutdown();
}

#[test]
fn head_gets_the_length_and_no_body() {
    let srv = three_routes();
    let mut s = connect(addr(&srv));
    s.write_all(b"HEAD /c HTTP/1.1\r\nHost: x\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut r = BufReader::new(s);
    let head = read_response(&mut r, true);
    assert_eq!(
        (head.status, head.header("content-length")),
        (202, Some("3"))
    );
    // If HEAD had carried a body, the next response would not parse.
    assert_eq!(read_response(&mut r, false).text(), "a");
    srv.shutdown();
}

#[test]
fn http10_clients_get_one_response_then_close_unless_keep_alive() {
    let srv = three_routes();
    let (resp, mut r) = exchange(addr(&srv), b"GET /a HTTP/1.0\r\n\r\n");
    assert_eq!(resp.text(), "a");
    assert!(closed(&mut r));
    let (resp, mut r) = exchange(
        addr(&srv),
        b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    );
    assert_eq!(resp.header("connection"), Some("keep-alive"));
    r.get_mut().write_all(b"GET /b HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut r, false).text(), "bb");
    assert!(closed(&mut r));
    srv.shutdown();
}

#[test]
fn request_bodies_are_consumed_chunked_or_not() {
    let srv = three_routes();
    let mut s = connect(addr(&srv));
    s.write_all(b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\nTrailer: t\r\n\r\n")
        .unwrap();
    s.write_all(b"PUT /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n12345")
        .unwrap();
    let mut r = BufReader::new(s);
    assert_eq!(read_response(&mut r, false).text(), "a");
    assert_eq!(read_response(&mut r, false).text(), "bb");
    srv.shutdown();
}

#[test]
fn expect_continue_is_answered_before_the_body_is_read() {
    let o = origin(1);
    let srv = start(proxy_to(addr(&o)));
    let mut s = connect(addr(&srv));
    s.write_all(
        b"POST /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
    )
    .unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let interim = read_response(&mut r, false);
    assert_eq!(interim.status, 100);
    s.write_all(b"hello").unwrap();
    let resp = read_response(&mut r, false);
    assert_eq!((resp.status, resp.text().as_str()), (200, "hello"));
    srv.shutdown();
    o.shutdown();
}

#[test]
fn redirects_fill_their_location_template() {
    let srv = three_routes();
    let (resp, _) = exchange(
        addr(&srv),
        b"GET /go?x=1 HTTP/1.1\r\nHost: Example.com:8080\r\n\r\n",
    );
    assert_eq!(resp.status, 308);
    assert_eq!(
        resp.header("location"),
        Some("https://Example.com/new/go?x=1")
    );
    srv.shutdown();
}

#[test]
fn routing_errors_are_problem_documents() {
    let mut only_post = route(bext_ir::PathMatch::Exact("/p".into()), respond(200, "p"));
    only_post.methods = vec!["POST".into()];
    let mut config = site(vec![only_post]);
    // The client's request id is kept (and named in the problem) only from a trusted proxy.
    config.global.trusted_proxies = vec!["127.0.0.1".into()];
    let srv = start(config);
    let table: &[(&[u8], u16, &str)] = &[
        (
            b"GET /nope HTTP/1.1\r\nHost: x\r\nX-Request-Id: abc-1\r\n\r\n",
            404,
            "route-not-found",
        ),
        (
            b"GET /p HTTP/1.1\r\nHost: x\r\nX-Request-Id: abc-1\r\n\r\n",
            405,
            "method-not-allowed",
        ),
    ];
    let connect: &[u8] =
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nX-Request-Id: abc-1\r\n\r\n";
    let table = [table, &[(connect, 501, "not-implemented")]].concat();
    for (req, status, slug) in &table {
        let (resp, _) = exchange(addr(&srv), req);
        assert_eq!(resp.status, *status);
        assert_eq!(
            resp.header("content-type"),
            Some("application/problem+json")
        );
        let want = format!(
            "{{\"type\":\"https://bext.dev/problems/{slug}\",\"title\":\"{}\",\"status\":{status},\"instance\":\"urn:bext:request:abc-1\"}}\n",
            bext_engine_title(slug)
        );
        assert_eq!(resp.text(), want);
    }
    srv.shutdown();
}

fn bext_engine_title(slug: &str) -> &'static str {
    match slug {
        "route-not-found" => "Route not found",
        "method-not-allowed" => "Method not allowed",
        "not-implemented" => "Not implemented",
        _ => "",
    }
}

/// Every limit, the status it produces, and the connection closed afterwards.
#[test]
fn limits_answer_their_status_and_close() {
    let mut config = site(vec![route(
        bext_ir::PathMatch::Prefix("/".into()),
        respond(200, "ok"),
    )]);
    config.global.limits = bext_ir::Limits {
        header_bytes: 1024,
        headers: 10,
        uri_bytes: 100,
        body_bytes: 1000,
        ..bext_ir::Limits::default()
    };
    let srv = start(config);
    let long_uri = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "u".repeat(200));
    let big_field = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "v".repeat(2000)
    );
    let many: String = (0..20).map(|i| format!("X-{i}: v\r\n")).collect();
    let many_fields = format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    let table: Vec<(&str, Vec<u8>, u16)> = vec![
        ("target too long", long_uri.into_bytes(), 414),
        ("head too large", big_field.into_bytes(), 431),
        ("too many fields", many_fields.into_bytes(), 431),
        (
            "declared body too large",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n".to_vec(),
            413,
        ),
        (
            "chunked body too large",
            format!(
                "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n{}\r\n0\r\n\r\n",
                "w".repeat(2048)
            )
            .into_bytes(),
            413,
        ),
        (
            // Refused from the declared size alone: the data is never sent.
            "chunk size over the limit",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\na00001\r\nhello".to_vec(),
            413,
        ),
        (
            "content-length with transfer-encoding",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(),
            400,
        ),
        (
            "bad chunk size",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
            400,
        ),
        ("missing host", b"GET / HTTP/1.1\r\n\r\n".to_vec(), 400),
    ];
    for (what, req, status) in table {
        let (resp, mut r) = exchange(addr(&srv), &req);
        assert_eq!(resp.status, status, "{what}");
        assert_eq!(resp.header("connection"), Some("close"), "{what}");
        assert!(closed(&mut r), "{what}: connection closed");
    }
    srv.shutdown();
}

#[test]
fn a_slow_request_head_times_out_with_408() {
    let mut config = site(vec![route(
        bext_ir::PathMatch::Prefix("/".into()),
        respond(200, "ok"),
    )]);
    config.global.timeouts.header_ms = 200;
    let srv = start(config);
    let (resp, mut r) = exchange(addr(&srv), b"GET / HTTP/1.1\r\nHost: x\r\n");
    assert_eq!(resp.status, 408);
    assert!(closed(&mut r));
    srv.shutdown();
}
