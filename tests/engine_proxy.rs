//! The reverse proxy over real sockets: what goes upstream, upstream reuse, bodies both ways,
//! upstream failures and what the client sees, WebSocket tunnelling.

mod common;
use common::*;
use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An upstream that records request heads and answers each with `200 ok` (keep-alive).
fn recording_upstream() -> (
    std::net::SocketAddr,
    Arc<Mutex<Vec<String>>>,
    Arc<AtomicUsize>,
) {
    let heads = Arc::new(Mutex::new(Vec::new()));
    let conns = Arc::new(AtomicUsize::new(0));
    let (h, c) = (heads.clone(), conns.clone());
    let a = upstream(move |mut s: TcpStream| {
        c.fetch_add(1, Ordering::SeqCst);
        loop {
            let head = read_head(&mut s);
            if head.is_empty() {
                return;
            }
            h.lock().unwrap().push(head);
            if s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nKeep-Alive: timeout=5\r\nConnection: keep-alive, X-Secret\r\nX-Secret: s\r\n\r\nok").is_err() {
                return;
            }
        }
    });
    (a, heads, conns)
}

#[test]
fn the_upstream_request_is_canonical_and_carries_forwarding_fields() {
    let (up, heads, _) = recording_upstream();
    let srv = start(proxy_to(up));
    let (resp, _) = exchange(
        addr(&srv),
        b"GET /p?q=1 HTTP/1.1\r\nHost: example.com\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\nX-Forwarded-For: 10.0.0.9\r\nX-Request-Id: client-id-1\r\nAccept: */*\r\n\r\n",
    );
    assert_eq!((resp.status, resp.text().as_str()), (200, "ok"));
    // Hop-by-hop fields of the response (and those it names in Connection) are not relayed.
    assert_eq!(resp.header("x-secret"), None);
    assert_eq!(resp.header("keep-alive"), None);
    assert_eq!(resp.header("via"), Some("1.1 bext"));
    let head = heads.lock().unwrap()[0].clone();
    // The client is no trusted proxy: its X-Forwarded-For and request id are replaced.
    let id = head
        .split("X-Request-Id: ")
        .nth(1)
        .and_then(|r| r.split("\r\n").next())
        .unwrap_or("");
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{head}"
    );
    let want = format!("GET /p?q=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nX-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: example.com\r\nX-Real-IP: 127.0.0.1\r\nVia: 1.1 bext\r\nX-Request-Id: {id}\r\n\r\n");
    assert_eq!(head, want);
    srv.shutdown();
}

/// Request targets and fields that need a decision before they go upstream: the forwarded
/// request line, and a field line that must (or must not) be in the forwarded head.
#[test]
fn unusual_targets_and_field_names_are_forwarded_canonically() {
    let (up, heads, _) = recording_upstream();
    let srv = start(proxy_to(up));
    let up_host = format!("Host: {up}\r\n");
    // (request, forwarded request line, field line present, field name absent)
    let table: [(&[u8], &str, &str, &str); 4] = [
        (
            b"GET http://a.example HTTP/1.1\r\nHost: a.example\r\n\r\n",
            "GET / HTTP/1.1",
            "Host: a.example\r\n",
            "",
        ),
        (
            b"OPTIONS * HTTP/1.1\r\nHost: a.example\r\n\r\n",
            "OPTIONS * HTTP/1.1",
            "Host: a.example\r\n",
            "",
        ),
        (
            b"GET /ten HTTP/1.0\r\n\r\n",
            "GET /ten HTTP/1.1",
            &up_host,
            "",
        ),
        (
            b"GET /u HTTP/1.1\r\nHost: h\r\nContent_Length: 99\r\nX_Real_IP: 10.0.0.1\r\n\r\n",
            "GET /u HTTP/1.1",
            "Host: h\r\n",
            "_",
        ),
    ];
    for (i, (req, line, has, lacks)) in table.iter().enumerate() {
        let (resp, _) = exchange(addr(&srv), req);
        assert_eq!(resp.status, 200, "{line}");
        let head = heads.lock().unwrap()[i].clone();
        assert_eq!(head.lines().next(), Some(*line), "{head}");
        assert!(head.contains(has), "{head}");
        if !lacks.is_empty() {
            let fields = head.split_once("\r\n").map_or("", |(_, f)| f);
            assert!(!fields.contains(lacks), "{head}");
        }
    }
    srv.shutdown();
}

#[test]
fn invalid_client_request_ids_are_replaced() {
    let (up, heads, _) = recording_upstream();
    let srv = start(proxy_to(up));
    exchange(
        addr(&srv),
        b"GET / HTTP/1.1\r\nHost: h\r\nX-Request-Id: bad id\r\n\r\n",
    );
    let head = heads.lock().unwrap()[0].clone();
    let id = head
        .lines()
        .find_map(|l| l.strip_prefix("X-Request-Id: "))
        .unwrap();
    assert_eq!(id.len(), 32, "{head}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    srv.shutdown();
}

#[test]
fn upstream_connections_are_pooled_and_reused() {
    let (up, heads, conns) = recording_upstream();
    let srv = start(proxy_to(up));
    for _ in 0..5 {
        let (resp, _) = exchange(addr(&srv), b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(resp.status, 200);
    }
    assert_eq!(heads.lock().unwrap().len(), 5);
    assert_eq!(conns.load(Ordering::SeqCst), 1);
    srv.shutdown();
}

#[test]
fn requests_are_spread_round_robin() {
    let (a, ha, _) = recording_upstream();
    let (b, hb, _) = recording_upstream();
    let srv = start(bext::proxy_config(
        "127.0.0.1:0",
        &[a.to_string(), b.to_string()],
    ));
    for _ in 0..6 {
        exchange(addr(&srv), b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    }
    assert_eq!((ha.lock().unwrap().len(), hb.lock().unwrap().len()), (3, 3));
    srv.shutdown();
}

#[test]
fn bodies_stream_both_ways_chunked_or_by_length() {
    let o = origin(10);
    let srv = start(proxy_to(addr(&o)));
    let mut s = connect(addr(&srv));
    let mut r = BufReader::new(s.try_clone().unwrap());
    // Chunked up, echoed chunked down.
    s.write_all(b"POST /e HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        .unwrap();
    let resp = read_response(&mut r, false);
    assert_eq!(resp.header("transfer-encoding"), Some("chunked"));
    assert_eq!((resp.text().as_str(), resp.complete), ("hello world", true));
    // By length, on the same connection. On io_uring the echoed head can leave before the
    // last write of the upload has completed, and bext then closes rather than keep a
    // connection whose request body it has not finished with (proxy.rs, `relay`): go on on a
    // new connection then.
    if resp.header("connection") == Some("close") {
        assert!(closed(&mut r));
        s = connect(addr(&srv));
        r = BufReader::new(s.try_clone().unwrap());
    }
    s.write_all(b"POST /e HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nabcd")
        .unwrap();
    let resp = read_response(&mut r, false);
    assert_eq!(resp.header("content-length"), Some("4"));
    assert_eq!(resp.text(), "abcd");
    // HEAD through the proxy keeps the length and sends no body.
    s.write_all(b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap();
    let head = read_response(&mut r, true);
    assert_eq!(head.header("content-length"), Some("10"));
    assert_eq!(read_response(&mut r, false).body.len(), 10);
    srv.shutdown();
    o.shutdown();
}

#[test]
fn http10_clients_get_close_delimited_bodies_from_chunked_upstreams() {
    let up = upstream(|mut s: TcpStream| {
        read_head(&mut s);
        let _ = s.write_all(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        );
    });
    let srv = start(proxy_to(up));
    let (resp, mut r) = exchange(addr(&srv), b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(resp.header("transfer-encoding"), None);
    assert_eq!(resp.text(), "abc");
    assert!(closed(&mut r));
    srv.shutdown();
}

fn problem_type(resp: &Resp) -> String {
    let t = resp.text();
    t.split("\"type\":\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or("")
        .to_string()
}

#[test]
fn upstream_failures_map_to_their_status_and_problem_type() {
    let (refused, _held) = refusing();
    let silent = upstream(|mut s: TcpStream| {
        read_head(&mut s);
        std::thread::sleep(Duration::from_secs(3));
    });
    let garbage = upstream(|mut s: TcpStream| {
        read_head(&mut s);
        let _ = s.write_all(b"SMTP ready\r\n\r\n");
    });
    let table = [
        (
            "refused",
            refused,
            502,
            "https://bext.dev/problems/upstream-unavailable",
        ),
        (
            "timeout",
            silent,
            504,
            "https://bext.dev/problems/upstream-timeout",
        ),
        (
            "garbage",
            garbage,
            502,
            "https://bext.dev/problems/upstream-invalid-response",
        ),
    ];
    for (what, up, status, ptype) in table {
        let mut config = proxy_to(up);
        config.upstreams[0].timeouts.response_ms = 300;
        let srv = start(config);
        let (resp, _) = exchange(addr(&srv), b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(resp.status, status, "{what}");
        assert_eq!(
            resp.header("content-type"),
            Some("application/problem+json"),
            "{what}"
        );
        assert_eq!(problem_type(&resp), ptype, "{what}");
        srv.shutdown();
    }
}

#[test]
fn an_upstream_gone_mid_body_closes_the_client_without_completing_the_framing() {
    let short_cl = upstream(|mut s: TcpStream| {
        read_head(&mut s);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly-ten!!");
    });
    let short_chunked = upstream(|mut s: TcpStream| {
        read_head(&mut s);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
    });
    for (what, up) in [("content-length", short_cl), ("chunked", short_chunked)] {
        let srv = start(proxy_to(up));
        let (resp, mut r) = exchange(addr(&srv), b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(resp.status, 200, "{what}");
        assert!(
            !resp.complete,
            "{what}: the client must see an incomplete body"
        );
        assert!(closed(&mut r), "{what}");
        srv.shutdown();
    }
}

#[test]
fn websocket_upgrades_are_tunnelled_both_ways() {
    let ws_up = upstream(|s: TcpStream| {
        let Ok(mut ws) = tungstenite::accept(s) else {
            return;
        };
        while let Ok(msg) = ws.read() {
            if msg.is_close() {
                break;
            }
            if ws.send(msg).is_err() {
                break;
            }
        }
    });
    let srv = start(proxy_to(ws_up));
    let stream = connect(addr(&srv));
    let (mut ws, resp) =
        tungstenite::client(format!("ws://{}/chat", addr(&srv)), stream).expect("handshake");
    assert_eq!(resp.status().as_u16(), 101);
    for text in ["one", "two", &"x".repeat(100_000)] {
        ws.send(tungstenite::Message::text(text)).unwrap();
        let back = ws.read().unwrap();
        assert_eq!(back.into_text().unwrap().as_str(), text);
    }
    ws.close(None).unwrap();
    // The tunnel is in flight until both sides are gone.
    drop(ws);
    srv.shutdown();
}

#[test]
fn a_client_closing_mid_upload_does_not_disturb_other_requests() {
    let o = origin(3);
    let srv = start(proxy_to(addr(&o)));
    {
        let mut s = connect(addr(&srv));
        s.write_all(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1000000\r\n\r\npartial")
            .unwrap();
    }
    let (resp, _) = exchange(addr(&srv), b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(resp.body.len(), 3);
    let mut s = connect(addr(&srv));
    s.write_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    let mut buf = [0u8; 1];
    s.read_exact(&mut buf).expect("a response byte");
    srv.shutdown();
    o.shutdown();
}

#[test]
fn routes_strip_prefixes_and_apply_header_operations() {
    let (up, heads, _) = recording_upstream();
    let mut config = proxy_to(up);
    let r = &mut config.sites[0].routes[0];
    r.path = bext_ir::PathMatch::Prefix("/api/".into());
    r.strip_prefix = Some("/api".into());
    r.request_headers = vec![
        bext_ir::HeaderOp::Set {
            name: "X-Gateway".into(),
            value: "bext".into(),
        },
        bext_ir::HeaderOp::Remove {
            name: "Cookie".into(),
        },
    ];
    r.response_headers = vec![bext_ir::HeaderOp::Add {
        name: "Cache-Control".into(),
        value: "no-store".into(),
    }];
    let srv = start(config);
    let (resp, _) = exchange(
        addr(&srv),
        b"GET /api/users?id=7 HTTP/1.1\r\nHost: h\r\nCookie: secret\r\nX-Gateway: client\r\n\r\n",
    );
    assert_eq!(resp.header("cache-control"), Some("no-store"));
    let head = heads.lock().unwrap()[0].clone();
    assert!(head.starts_with("GET /users?id=7 HTTP/1.1\r\n"), "{head}");
    assert!(head.contains("\r\nX-Gateway: bext\r\n"), "{head}");
    assert!(
        !head.contains("client") && !head.contains("Cookie"),
        "{head}"
    );
    let (resp, _) = exchange(addr(&srv), b"GET /other HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(resp.status, 404);
    srv.shutdown();
}

#[test]
fn a_pooled_connection_the_upstream_closed_is_replaced_only_for_idempotent_requests() {
    // Announces keep-alive, answers the first request of each connection, and closes, without
    // answering, when the next one arrives: a reused connection looked idle and open when it
    // was taken from the pool, and died with the request on it (the keep-alive race). (A
    // connection already closed while pooled is never taken: see hardening_upstream.rs.) An
    // idempotent request (RFC 9110 §9.2.2) whose body is held whole is sent again on a new
    // connection; a POST may have reached the origin before the close, so it gets 502 and is
    // never sent twice.
    let conns = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let c = conns.clone();
    let seen2 = seen.clone();
    let up = upstream(move |mut s: TcpStream| {
        c.fetch_add(1, Ordering::SeqCst);
        let mut answered = false;
        loop {
            let head = read_head(&mut s);
            if head.is_empty() {
                return;
            }
            let line = head.lines().next().unwrap_or("").to_string();
            if answered {
                seen2.lock().unwrap().push(format!("{line} (dropped)"));
                return;
            }
            seen2.lock().unwrap().push(line);
            let body = if head.starts_with("PUT") || head.starts_with("POST") {
                let mut b = [0u8; 4];
                s.read_exact(&mut b).unwrap();
                b.to_vec()
            } else {
                b"get!".to_vec()
            };
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n");
            let _ = s.write_all(&body);
            answered = true;
        }
    });
    let srv = start(proxy_to(up));
    // (request, status, body): every request after the first finds the pooled socket dying.
    let table: [(&[u8], u16, &str); 5] = [
        (b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", 200, "get!"),
        (
            b"PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nput!",
            200,
            "put!",
        ),
        (b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", 200, "get!"),
        (
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\npost",
            502,
            "",
        ),
        (b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", 200, "get!"),
    ];
    for (req, status, want) in table {
        std::thread::sleep(Duration::from_millis(50));
        let (resp, _) = exchange(addr(&srv), req);
        assert_eq!(resp.status, status);
        if status == 200 {
            assert_eq!(resp.text(), want);
        }
    }
    // The POST's dead socket was dropped, not replaced: the last GET opened the fourth.
    assert_eq!(conns.load(Ordering::SeqCst), 4);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            "GET / HTTP/1.1",
            "PUT / HTTP/1.1 (dropped)",
            "PUT / HTTP/1.1",
            "GET / HTTP/1.1 (dropped)",
            "GET / HTTP/1.1",
            "POST / HTTP/1.1 (dropped)",
            "GET / HTTP/1.1"
        ]
    );
    srv.shutdown();
}

#[test]
fn a_client_leaving_while_the_upstream_thinks_releases_the_upstream_connection() {
    let (got_head, got_head_rx) = std::sync::mpsc::channel::<()>();
    let (released, released_rx) = std::sync::mpsc::channel::<()>();
    let (got_head, released) = (Mutex::new(got_head), Mutex::new(released));
    let up = upstream(move |mut s: TcpStream| {
        read_head(&mut s);
        let _ = got_head.lock().unwrap().send(());
        // Never answers; waits for the proxy to close the connection.
        let mut b = [0u8; 1];
        if matches!(s.read(&mut b), Ok(0) | Err(_)) {
            let _ = released.lock().unwrap().send(());
        }
    });
    let srv = start(proxy_to(up)); // response timeout: the 60 s default
    {
        let mut c = connect(addr(&srv));
        c.write_all(b"GET /wait HTTP/1.1\r\nHost: h\r\n\r\n")
            .unwrap();
        got_head_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    }
    released_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the upstream connection is closed long before the response timeout");
    srv.shutdown();
}
