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
    let (r, _) = common::exchange(admin, b"GET /status HTTP/1.1\r\nHost: localhost\r\n\r\n");
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

/// `n` GETs on keep-alive connections (a new one after a close); the statuses seen.
fn statuses(to: std::net::SocketAddr, n: usize) -> Vec<u16> {
    let mut c: Option<BufReader<std::net::TcpStream>> = None;
    (0..n)
        .map(|_| {
            let conn = c.get_or_insert_with(|| BufReader::new(connect(to)));
            conn.get_mut().write_all(&get("/")).unwrap();
            let r = read_response(conn, false);
            if r.header("connection") == Some("close") {
                c = None;
            }
            r.status
        })
        .collect()
}

/// Item: defaults a production user expects, retry and ejection. With two servers, one
/// refusing connections, every request succeeds by default (`bext proxy --to A,B`, or an
/// `upstream` without `retry`/`eject` lines), with an explicit `retry 1` even without
/// ejection (a refused connection does not take from the retry budget); `retry off` with
/// `eject off` gives the old behaviour, every second request 502.
#[test]
fn a_refused_server_is_retried_and_ejected_by_default() {
    // (directives in the upstream block, or None for `bext proxy --to`; successes of 100)
    let cases: &[(Option<&str>, usize)] = &[
        (None, 100),
        (Some(""), 100),
        (Some("retry 1"), 100),
        (Some("retry 1\n eject off"), 100),
        (Some("eject off"), 100),
        (Some("retry off\n eject off"), 50),
    ];
    for o in drivers() {
        for &(extra, want) in cases {
            let good = Scripted::start(|_, mut s| serve_plain(&mut s, "up"));
            let (dead, _hold) = common::refusing();
            let config = match extra {
                None => {
                    bext::proxy_config("127.0.0.1:0", &[good.addr.to_string(), dead.to_string()])
                }
                Some(extra) => {
                    let src = format!(
                        "listen 127.0.0.1:0\nupstream backend {{\n server {}\n server {dead}\n {extra}\n}}\n\
                         site * {{\n route /* {{\n  proxy backend\n }}\n}}\n",
                        good.addr
                    );
                    match bext_dsl::compile_str("defaults.bext", &src) {
                        Ok(c) => c.config,
                        Err(_) => panic!("{src} compiles"),
                    }
                }
            };
            let srv = bext::start(config, o.clone()).unwrap();
            let got = statuses(addr(&srv), 100);
            let ok = got.iter().filter(|&&s| s == 200).count();
            assert_eq!(ok, want, "{:?} {extra:?}: {got:?}", o.driver);
            assert!(got.iter().all(|&s| s == 200 || s == 502), "{got:?}");
            srv.shutdown();
        }
    }
}

/// `retry off` and `eject off` lower to no retry policy and no ejector.
#[test]
fn retry_off_and_eject_off_lower_to_nothing() {
    let src = "upstream a {\n server 127.0.0.1:1\n retry off\n eject off\n}\n\
               upstream b {\n server 127.0.0.1:1\n}\n\
               upstream c {\n server 127.0.0.1:1\n retry 2 on 502\n eject after 3\n timeouts { tunnel 5s }\n}\n";
    let c = match bext_dsl::compile_str("off.bext", src) {
        Ok(c) => c.config,
        Err(_) => panic!("compiles"),
    };
    let u = &c.upstreams;
    assert_eq!((u[0].retry.is_none(), u[0].passive.is_none()), (true, true));
    let r = u[1].retry.as_ref().unwrap();
    assert_eq!(
        (r.attempts, r.on.as_slice(), r.budget_percent),
        (1, &[bext_ir::RetryOn::ConnectError][..], 20)
    );
    let p = u[1].passive.as_ref().unwrap();
    assert_eq!(
        (
            p.consecutive_failures,
            p.base_ejection_ms,
            p.max_ejection_ms
        ),
        (5, 10_000, 300_000)
    );
    assert_eq!(u[2].retry.as_ref().unwrap().attempts, 2);
    assert_eq!(u[2].passive.as_ref().unwrap().consecutive_failures, 3);
    assert_eq!(u[0].timeouts.tunnel_ms, 60_000);
    assert_eq!(u[2].timeouts.tunnel_ms, 5_000);
}

/// An origin that switches `/ws` to a WebSocket-like echo. After the client's side ends
/// (`half_close_then_talk`), it keeps writing a byte every 50 ms instead of closing; `ended`
/// is set once bext has closed the upstream connection.
fn echo_after_switch(half_close_then_talk: bool, ended: Arc<Flag>) -> Scripted {
    Scripted::start(move |_, mut s| {
        if next_head(&mut s).is_none() {
            return;
        }
        s.write_all(b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n")
            .unwrap();
        let mut b = [0u8; 64];
        loop {
            match s.read(&mut b) {
                Ok(0) if half_close_then_talk => {
                    while s.write_all(b".").is_ok() {
                        std::thread::sleep(std::time::Duration::from_millis(50));
                    }
                    break;
                }
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if s.write_all(&b[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        ended.set();
    })
}

const UPGRADE: &[u8] =
    b"GET /ws HTTP/1.1\r\nHost: t\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n";

/// Item: tunnels. A tunnel where no byte moves either way for the `tunnel` timeout is closed
/// on both sides; one whose client has closed its half is closed after the grace even while
/// the origin keeps talking. (The client's read timeout only bounds a failing test.)
#[test]
fn an_idle_or_half_closed_tunnel_is_closed() {
    for o in drivers() {
        for half_close in [false, true] {
            let ended = Arc::new(Flag::default());
            let origin = echo_after_switch(half_close, ended.clone());
            let mut c = proxy_to(origin.addr);
            c.upstreams[0].timeouts.tunnel_ms = 300;
            let srv = bext::start(c, o.clone()).unwrap();
            let mut c = BufReader::new(connect(addr(&srv)));
            c.get_mut().write_all(UPGRADE).unwrap();
            let r = read_response(&mut c, false);
            assert_eq!(r.status, 101);
            c.get_mut().write_all(b"ping").unwrap();
            let mut b = [0u8; 4];
            c.read_exact(&mut b).unwrap();
            assert_eq!(&b, b"ping");
            if half_close {
                c.get_mut().shutdown(std::net::Shutdown::Write).unwrap();
            }
            // bext closes the client side: the read ends (rather than timing out).
            let mut rest = Vec::new();
            let end = c.read_to_end(&mut rest);
            assert!(
                end.is_ok(),
                "{:?} half_close={half_close}: {end:?}",
                o.driver
            );
            assert!(rest.iter().all(|&x| x == b'.'), "{rest:?}");
            ended.wait();
            srv.shutdown();
        }
    }
}

/// An origin that answers every request with what it received: `<head fields>|<body>`, the
/// body read by its Content-Length.
fn recording_origin() -> Scripted {
    Scripted::start(|_, mut s| {
        while let Some(h) = next_head(&mut s) {
            let lower = h.to_ascii_lowercase();
            let n: usize = lower
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            let mut body = vec![0; n];
            s.read_exact(&mut body).unwrap();
            let te = if lower.contains("transfer-encoding") {
                "te"
            } else {
                ""
            };
            let out = format!("cl={n}{te}|{}", String::from_utf8_lossy(&body));
            let r = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{out}",
                out.len()
            );
            if s.write_all(r.as_bytes()).is_err() {
                return;
            }
        }
    })
}

/// Item: request body validated before the upstream is contacted. A chunked body whose
/// buffered part is malformed (400) or declares more than the body limit (413) is refused
/// without a connection to the origin; a valid one still streams.
#[test]
fn a_malformed_buffered_body_never_reaches_the_origin() {
    let cases: &[(&[u8], u16)] = &[
        (b"zz\r\nhello\r\n0\r\n\r\n", 400),
        (b"5\r\nhelloXX0\r\n\r\n", 400),
        (b"5;\x01\r\nhello\r\n0\r\n\r\n", 400),
        (b"ffffff\r\nhello", 413),
        (b"5\r\nhello\r\n0\r\n\r\n", 200),
    ];
    for o in drivers() {
        for &(body, want) in cases {
            let origin = recording_origin();
            let mut c = proxy_to(origin.addr);
            c.global.limits.body_bytes = 1_000;
            let srv = bext::start(c, o.clone()).unwrap();
            let req = [
                &b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
                body,
            ]
            .concat();
            let (r, _) = common::exchange(addr(&srv), &req);
            let what = format!("{:?} {:?}", o.driver, String::from_utf8_lossy(body));
            assert_eq!(r.status, want, "{what}");
            if want == 200 {
                assert_eq!(r.text(), "cl=0te|", "{what}");
            } else {
                // A valid request afterwards is the origin's first connection.
                let (r, _) = common::exchange(addr(&srv), &get("/"));
                assert_eq!(r.status, 200, "{what}");
                assert_eq!(
                    origin.accepted(),
                    1,
                    "{what}: the refused request reached it"
                );
            }
            srv.shutdown();
        }
    }
}

/// Item: `request_buffering on`. The whole body is read before the upstream is contacted
/// (here it arrives in two parts, and the origin has accepted nothing after the first) and is
/// forwarded with Content-Length; over the body limit it is 413 without contacting the
/// origin; pipelined requests behind it are kept.
#[test]
fn request_buffering_reads_the_whole_body_before_contacting_the_upstream() {
    for o in drivers() {
        let origin = recording_origin();
        let mut c = proxy_to(origin.addr);
        c.global.limits.body_bytes = 1_000;
        c.sites[0].routes[0].request_buffering = true;
        let srv = bext::start(c, o.clone()).unwrap();
        let what = format!("{:?}", o.driver);
        // Chunked, in two parts, with a pipelined GET behind it.
        let mut s = BufReader::new(connect(addr(&srv)));
        s.get_mut()
            .write_all(
                b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello \r\n",
            )
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert_eq!(
            origin.accepted(),
            0,
            "{what}: contacted before the body was whole"
        );
        s.get_mut()
            .write_all(b"5\r\nworld\r\n0\r\n\r\nGET /after HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let r = read_response(&mut s, false);
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "cl=11|hello world"),
            "{what}"
        );
        let r = read_response(&mut s, false);
        assert_eq!((r.status, r.text().as_str()), (200, "cl=0|"), "{what}");
        // Content-Length body, sent after the head.
        s.get_mut()
            .write_all(b"PUT / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\n")
            .unwrap();
        s.get_mut().write_all(b"abc").unwrap();
        let r = read_response(&mut s, false);
        assert_eq!((r.status, r.text().as_str()), (200, "cl=3|abc"), "{what}");
        // Over the limit: 413, the origin not contacted for it.
        let before = origin.accepted();
        let chunk = format!("{:x}\r\n{}\r\n", 600, "x".repeat(600));
        let req = format!(
            "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n{chunk}{chunk}0\r\n\r\n"
        );
        let (r, _) = common::exchange(addr(&srv), req.as_bytes());
        assert_eq!(r.status, 413, "{what}");
        assert_eq!(origin.accepted(), before, "{what}");
        srv.shutdown();
    }
}

#[test]
fn request_buffering_is_lowered_per_route() {
    let src = "upstream a {\n server 127.0.0.1:1\n}\n\
               site * {\n route /up/* {\n  request_buffering on\n  proxy a\n }\n route /* {\n  proxy a\n }\n}\n";
    let c = match bext_dsl::compile_str("rb.bext", src) {
        Ok(c) => c.config,
        Err(_) => panic!("compiles"),
    };
    let flags: Vec<bool> = c.sites[0]
        .routes
        .iter()
        .map(|r| r.request_buffering)
        .collect();
    assert_eq!(flags, [true, false]);
    assert!(bext::unsupported_features(&c).is_empty());
}

/// Start `bext proxy` as a user runs it; the address from its `listening on` line.
fn bext_proxy(to: &[String], driver: &str) -> (std::process::Child, std::net::SocketAddr) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_bext"))
        .args(["proxy", "--listen", "127.0.0.1:0", "--workers", "1"])
        .args(["--driver", driver, "--to", &to.join(",")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("spawn bext");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let a = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .unwrap();
    (child, a)
}

/// Stop `bext` with SIGINT and return what it wrote to stderr.
fn stop(mut child: std::process::Child) -> String {
    let ok = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(child.wait().unwrap().success(), "{err}");
    err
}

/// Item: upstream failures logged. Without any access log, `bext proxy --to A,B` with B
/// refusing serves every request (retried on A) and its stderr names the upstream, the
/// server and the kind of failure; an origin answering garbage is logged as an invalid
/// response. Lines are rate limited per server and kind (unit test in engine/src/upstream.rs).
#[test]
fn upstream_failures_are_logged_without_an_access_log() {
    for o in drivers() {
        let driver = match o.driver {
            bext::DriverChoice::IoUring => "io-uring",
            _ => "epoll",
        };
        let good = Scripted::start(|_, mut s| serve_plain(&mut s, "up"));
        let garbage = Scripted::start(|_, mut s| {
            if next_head(&mut s).is_some() {
                let _ = s.write_all(b"NOT HTTP\r\n\r\n");
            }
        });
        let (dead, _hold) = common::refusing();
        let (child, a) = bext_proxy(&[good.addr.to_string(), dead.to_string()], driver);
        let got = statuses(a, 100);
        assert!(got.iter().all(|&s| s == 200), "{driver}: {got:?}");
        let err = stop(child);
        let want = format!("bext: upstream backend server {dead}: connection refused");
        assert!(err.contains(&want), "{driver}: {err}");

        let (child, a) = bext_proxy(&[garbage.addr.to_string()], driver);
        let (r, _) = common::exchange(a, &get("/"));
        assert_eq!(r.status, 502);
        let err = stop(child);
        let want = format!(
            "bext: upstream backend server {}: invalid response",
            garbage.addr
        );
        assert!(err.contains(&want), "{driver}: {err}");
    }
}

/// Item: interim responses. An origin's 102 and 103 reach an HTTP/1.1 client before the final
/// response, without their connection-specific fields, on bodiless requests and on requests
/// whose body streams; its `100 Continue` does not (bext answers `Expect` itself); an HTTP/1.0
/// client gets none (RFC 9110 §15.2); an origin sending interim responses without end gets a
/// 502 after at most 16 of them.
#[test]
fn interim_responses_reach_http11_clients_and_are_bounded() {
    const INTERIMS: &[u8] = b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\
        Connection: x-hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\n\r\n\
        HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n";
    for o in drivers() {
        let origin = Scripted::start(move |_, mut s| {
            while let Some(h) = next_head(&mut s) {
                let len: usize = h
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .map_or(0, |v| v.trim().parse().unwrap());
                if target(&h) == "/flood" {
                    for _ in 0..40 {
                        let _ = s.write_all(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n");
                    }
                    return;
                }
                if s.write_all(INTERIMS).is_err() {
                    return;
                }
                let mut body = vec![0u8; len];
                s.read_exact(&mut body).unwrap();
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\nok{}",
                    len + 2,
                    String::from_utf8_lossy(&body)
                );
                s.write_all(answer.as_bytes()).unwrap();
            }
        });
        let srv = bext::start(proxy_to(origin.addr), o.clone()).unwrap();
        let what = format!("{:?}", o.driver);
        let mut c = BufReader::new(connect(addr(&srv)));
        let requests = [
            get("/a"),
            b"POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello".to_vec(),
        ];
        for req in requests {
            c.get_mut().write_all(&req).unwrap();
            let early = read_response(&mut c, false);
            assert_eq!(early.status, 103, "{what}");
            assert_eq!(
                early.header("link"),
                Some("</s.css>; rel=preload"),
                "{what}"
            );
            for gone in ["x-hop", "keep-alive", "connection"] {
                assert_eq!(early.header(gone), None, "{what} {gone}");
            }
            assert_eq!(read_response(&mut c, false).status, 102, "{what}");
            let r = read_response(&mut c, false);
            assert_eq!(r.status, 200, "{what}");
            assert!(r.text().starts_with("ok"), "{what}");
        }
        // HTTP/1.0: the final response only.
        let mut c10 = BufReader::new(connect(addr(&srv)));
        c10.get_mut()
            .write_all(b"GET /c HTTP/1.0\r\nHost: t\r\n\r\n")
            .unwrap();
        let r = read_response(&mut c10, false);
        assert_eq!((r.status, r.text().as_str()), (200, "ok"), "{what}");
        // Without end: at most 16 interim responses, then a 502.
        c.get_mut().write_all(&get("/flood")).unwrap();
        let mut early = 0;
        let last = loop {
            let r = read_response(&mut c, false);
            if r.status != 103 {
                break r;
            }
            early += 1;
        };
        assert_eq!(last.status, 502, "{what}");
        assert!(early <= 16, "{what}: {early} interim responses");
        srv.shutdown();
    }
}
