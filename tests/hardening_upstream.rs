//! The upstream side under misbehaving origins, on both drivers: a pooled connection that
//! received bytes while idle is never reused, a 101 nobody asked for is a 502, 204 and 304
//! carry no body, tunnels end when idle, a dead server is retried around and ejected by
//! default, a malformed request body never reaches the origin, and failures are logged.

mod common;
#[path = "common/misbehaving.rs"]
mod misbehaving;

use common::{addr, connect, proxy_to, read_response};
use misbehaving::*;
use std::io::{BufReader, Read, Write};
use std::sync::Arc;

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").into_bytes()
}

/// Item: pooled upstream connection reuse. An origin writes a stray response on a connection
/// bext has pooled (after a HEAD answer, or after a body longer than its Content-Length, in a
/// later write or in the same one): the next request must get its own response, and so must
/// every later one.
#[test]
fn stray_bytes_on_a_pooled_connection_never_reach_the_next_request() {
    const STRAY: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstray";
    // (first request, first answer, stray bytes sent with it rather than later,
    //  stale closes, surplus closes)
    let cases: &[(&str, &[u8], bool, u64, u64)] = &[
        (
            "HEAD",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
            false,
            1,
            0,
        ),
        (
            "GET",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst",
            false,
            1,
            0,
        ),
        (
            "GET",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst",
            true,
            0,
            1,
        ),
    ];
    for o in drivers() {
        for &(method, answer, together, stale, surplus) in cases {
            let go = Arc::new(Flag::default());
            let sent = Arc::new(Flag::default());
            let (g, d) = (go.clone(), sent.clone());
            let origin = Scripted::start(move |i, mut s| {
                if i == 0 {
                    next_head(&mut s).unwrap();
                    if together {
                        s.write_all(&[answer, STRAY].concat()).unwrap();
                    } else {
                        s.write_all(answer).unwrap();
                        g.wait();
                        s.write_all(STRAY).unwrap();
                    }
                    d.set();
                }
                serve_plain(&mut s, "fresh");
            });
            let srv = bext::start(proxy_to(origin.addr), o.clone()).unwrap();
            let mut c = BufReader::new(connect(addr(&srv)));
            let first = format!("{method} / HTTP/1.1\r\nHost: t\r\n\r\n");
            c.get_mut().write_all(first.as_bytes()).unwrap();
            let r = read_response(&mut c, method == "HEAD");
            assert_eq!(r.status, 200);
            go.set();
            sent.wait();
            for n in 0..3 {
                c.get_mut().write_all(&get("/next")).unwrap();
                let r = read_response(&mut c, false);
                assert_eq!(
                    r.text(),
                    "fresh",
                    "{:?} {method} together={together}: request {n} after the stray bytes",
                    o.driver
                );
            }
            let got = (
                worker_sum(&srv, |w| w.upstream_stale_closed),
                worker_sum(&srv, |w| w.upstream_surplus_closed),
            );
            assert_eq!(got, (stale, surplus), "{:?} {method} {together}", o.driver);
            srv.shutdown();
        }
    }
}

/// The counters are in `/status`.
#[test]
fn stale_and_surplus_closes_are_in_status() {
    let origin = Scripted::start(|_, mut s| serve_plain(&mut s, "x"));
    let mut c = proxy_to(origin.addr);
    c.global.admin = Some("127.0.0.1:0".into());
    let srv = bext::start(c, common::opts()).unwrap();
    let admin = srv.admin_addr().unwrap();
    let (r, _) = common::exchange(admin, b"GET /status HTTP/1.1\r\nHost: a\r\n\r\n");
    let text = r.text();
    assert!(text.contains("\"upstream_stale_closed\":0"), "{text}");
    assert!(text.contains("\"upstream_surplus_closed\":0"), "{text}");
    srv.shutdown();
}

/// Item: 101 nobody asked for. A 101 to a request that did not ask to upgrade, or to another
/// protocol than the one asked for, is a 502 problem and its upstream connection is closed; a
/// 101 to the protocol asked for (any case) is tunnelled.
#[test]
fn an_unasked_101_is_a_502_and_its_connection_is_closed() {
    const SWITCH: &[u8] =
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n";
    // (extra request fields, tunnelled)
    let cases: &[(&str, bool)] = &[
        ("", false),
        ("Upgrade: websocket\r\n", false),
        ("Connection: upgrade\r\nUpgrade: h2c\r\n", false),
        ("Connection: Upgrade\r\nUpgrade: WebSocket\r\n", true),
        ("Connection: upgrade\r\nUpgrade: h2c, websocket\r\n", true),
    ];
    for o in drivers() {
        for &(fields, tunnelled) in cases {
            let closed = Arc::new(Flag::default());
            let cl = closed.clone();
            let origin = Scripted::start(move |_, mut s| {
                while let Some(h) = next_head(&mut s) {
                    if target(&h) == "/switch" {
                        s.write_all(SWITCH).unwrap();
                        // Echo whatever comes, until the peer closes.
                        let mut b = [0u8; 64];
                        loop {
                            match s.read(&mut b) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => {
                                    if s.write_all(&b[..n]).is_err() {
                                        break;
                                    }
                                }
                            }
                        }
                        cl.set();
                        return;
                    }
                    s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                        .unwrap();
                }
            });
            let srv = bext::start(proxy_to(origin.addr), o.clone()).unwrap();
            let mut c = BufReader::new(connect(addr(&srv)));
            let req = format!("GET /switch HTTP/1.1\r\nHost: t\r\n{fields}\r\n");
            c.get_mut().write_all(req.as_bytes()).unwrap();
            let r = read_response(&mut c, false);
            let what = format!("{:?} {fields:?}", o.driver);
            if tunnelled {
                assert_eq!(r.status, 101, "{what}");
                c.get_mut().write_all(b"ping").unwrap();
                let mut b = [0u8; 4];
                c.read_exact(&mut b).unwrap();
                assert_eq!(&b, b"ping", "{what}");
                // Closing the client ends the tunnel (the origin sees the close).
                drop(c);
                closed.wait();
            } else {
                assert_eq!(r.status, 502, "{what}");
                assert_eq!(
                    r.header("content-type"),
                    Some("application/problem+json"),
                    "{what}"
                );
                assert!(r.text().contains("upstream-invalid-response"), "{what}");
                // The upstream connection was closed, not pooled: the next request opens one.
                closed.wait();
                c.get_mut().write_all(&get("/ok")).unwrap();
                let r = read_response(&mut c, false);
                assert_eq!((r.status, r.text().as_str()), (200, "ok"), "{what}");
                assert_eq!(origin.accepted(), 2, "{what}");
            }
            srv.shutdown();
        }
    }
}

/// Item: 204/304 with Content-Length. A 204 is relayed without Content-Length or body; a 304
/// keeps its Content-Length as metadata and has no body; body bytes an origin sends anyway
/// never reach the client nor the next request.
#[test]
fn a_204_or_304_with_content_length_has_no_body() {
    // (path, answer, Content-Length relayed)
    let cases: &[(&str, &[u8], Option<&str>)] = &[
        (
            "/204",
            b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello",
            None,
        ),
        (
            "/204-te",
            b"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n",
            None,
        ),
        (
            "/304",
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\nETag: \"e\"\r\n\r\n",
            Some("5"),
        ),
        (
            "/304-body",
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\nhello",
            Some("5"),
        ),
    ];
    for o in drivers() {
        for &(path, answer, cl) in cases {
            let origin = Scripted::start(move |_, mut s| {
                while let Some(h) = next_head(&mut s) {
                    let a: &[u8] = if target(&h) == path {
                        answer
                    } else {
                        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh"
                    };
                    if s.write_all(a).is_err() {
                        return;
                    }
                }
            });
            let srv = bext::start(proxy_to(origin.addr), o.clone()).unwrap();
            let mut c = BufReader::new(connect(addr(&srv)));
            let what = format!("{:?} {path}", o.driver);
            for _ in 0..2 {
                c.get_mut().write_all(&get(path)).unwrap();
                let r = read_response(&mut c, false);
                assert_eq!(r.header("content-length"), cl, "{what}");
                assert_eq!(r.header("transfer-encoding"), None, "{what}");
                c.get_mut().write_all(&get("/next")).unwrap();
                let r = read_response(&mut c, false);
                assert_eq!(r.text(), "fresh", "{what}");
            }
            srv.shutdown();
        }
    }
}
