//! Fault tolerance: slow and vanishing clients, and upstreams that refuse, reset, hang, talk
//! garbage or die mid-body. Each test asserts what a client or the origin would see.

mod support;

use bext_conformance::case::Then;
use bext_conformance::client::Client;
use bext_conformance::origin::{Script, HARNESS_PREFIX};
use bext_conformance::wire::Message;
use std::net::SocketAddr;
use std::thread;
use std::time::Duration;
use support::{one_worker, proxy_to, refusing, Rig, LONG_MS, SHORT_MS};

/// Bounds every wait; a failing proxy never hangs the suite. Never asserted.
const LIMIT: Duration = Duration::from_secs(10);

const DRIVERS: [bext::DriverChoice; 2] = [bext::DriverChoice::Epoll, bext::DriverChoice::IoUring];

fn get(proxy: SocketAddr, target: &str) -> Result<Option<Message>, String> {
    let mut c = Client::connect(proxy, LIMIT).map_err(|e| e.to_string())?;
    c.send(format!("GET {target} HTTP/1.1\r\nHost: a.example\r\n\r\n").as_bytes());
    c.read_response(false)
}

fn status_of(r: &Result<Option<Message>, String>) -> Option<u16> {
    match r {
        Ok(Some(m)) => m.status(),
        _ => None,
    }
}

/// Headers trickled forever: 408 at the header timeout and a closed connection, while another
/// client is served normally meanwhile.
#[test]
fn slowloris_gets_408_and_others_are_served() {
    let rig = Rig::with_timeouts(SHORT_MS, LONG_MS);
    let mut slow = Client::connect(rig.proxy, LIMIT).expect("connect");
    slow.send(b"GET /slow HTTP/1.1\r\nHost: a.example\r\n");
    let writer = slow.stream().try_clone().expect("clone");
    let trickle = thread::spawn(move || {
        use std::io::Write as _;
        let mut w = writer;
        // One header line every 100 ms, never the end of the head, until the proxy hangs up.
        for i in 0..200 {
            if w.write_all(format!("X-{i}: v\r\n").as_bytes()).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(100));
        }
    });
    // Another client meanwhile.
    let other = get(rig.proxy, "/other");
    assert_eq!(status_of(&other), Some(200), "{other:?}");

    let resp = slow.read_response(false);
    assert_eq!(status_of(&resp), Some(408), "{resp:?}");
    assert!(
        slow.wait_closed(),
        "the slow connection is closed after the 408"
    );
    let _ = trickle.join();
    assert!(
        rig.origin
            .forwarded_since(0)
            .iter()
            .all(|f| !matches!(&f.message, Ok(m) if m.target() == "/slow")),
        "an incomplete head never reaches the origin"
    );
}

/// A body that arrives slowly but steadily is forwarded whole.
#[test]
fn slow_but_steady_body_upload_is_forwarded() {
    let rig = Rig::start();
    let mut c = Client::connect(rig.proxy, LIMIT).expect("connect");
    c.send(b"POST /upload HTTP/1.1\r\nHost: a.example\r\nContent-Length: 20\r\n\r\n");
    for piece in [b"01234", b"56789", b"abcde", b"fghij"] {
        // Each gap is far inside the body timeout.
        thread::sleep(Duration::from_millis(100));
        c.send(piece);
    }
    let resp = c.read_response(false);
    assert_eq!(status_of(&resp), Some(200), "{resp:?}");
    let fwd = rig.origin.forwarded_since(0);
    let bodies: Vec<&[u8]> = fwd
        .iter()
        .filter_map(|f| f.message.as_ref().ok())
        .filter(|m| m.target() == "/upload")
        .map(|m| m.body.as_slice())
        .collect();
    assert_eq!(bodies, [&b"0123456789abcdefghij"[..]]);
}

/// A body that stalls past the body timeout: 408 to the client, its connection closed, and the
/// upstream connection that carried the partial body is closed (never reused with half a body).
#[test]
fn stalled_body_upload_gets_408_and_releases_the_upstream() {
    let rig = Rig::with_timeouts(SHORT_MS, LONG_MS);
    let mut c = Client::connect(rig.proxy, LIMIT).expect("connect");
    c.send(b"POST /stall HTTP/1.1\r\nHost: a.example\r\nContent-Length: 100\r\n\r\n0123456789");
    let resp = c.read_response(false);
    assert_eq!(status_of(&resp), Some(408), "{resp:?}");
    assert!(
        c.wait_closed(),
        "the client connection is closed after the 408"
    );
    let released = rig.origin.wait_until(LIMIT, |conns, _| {
        conns
            .iter()
            .filter(|k| k.received.starts_with(b"POST /stall "))
            .all(|k| k.closed_by_peer)
    });
    assert!(
        released,
        "the upstream connection with the partial body is closed"
    );
    assert!(rig
        .origin
        .forwarded_since(0)
        .iter()
        .all(|f| { !matches!(&f.message, Ok(m) if m.target() == "/stall") }));
}

/// The client vanishes in the middle of its body: the upstream connection is closed too.
#[test]
fn client_disconnect_mid_body_releases_the_upstream_connection() {
    let rig = Rig::start();
    {
        let mut c = Client::connect(rig.proxy, LIMIT).expect("connect");
        c.send(b"POST /gone HTTP/1.1\r\nHost: a.example\r\nContent-Length: 1000\r\n\r\n0123456789");
        // Wait until the head reached the origin, then disappear.
        assert!(rig.origin.wait_until(LIMIT, |conns, _| conns
            .iter()
            .any(|k| k.received.starts_with(b"POST /gone "))));
    }
    let released = rig.origin.wait_until(LIMIT, |conns, _| {
        conns
            .iter()
            .filter(|k| k.received.starts_with(b"POST /gone "))
            .all(|k| k.closed_by_peer)
    });
    assert!(released, "the origin sees its connection closed");
    // And the proxy still serves.
    assert_eq!(status_of(&get(rig.proxy, "/after")), Some(200));
}

/// The client vanishes while the upstream is still thinking: the upstream connection is
/// closed rather than left waiting for a response nobody will read.
#[test]
fn client_disconnect_while_waiting_releases_the_upstream_connection() {
    for driver in DRIVERS {
        let rig = Rig::on(driver);
        rig.origin.push_script(Script::Hang);
        {
            let mut c = Client::connect(rig.proxy, LIMIT).expect("connect");
            c.send(b"GET /waiting HTTP/1.1\r\nHost: a.example\r\n\r\n");
            assert!(rig.origin.wait_until(LIMIT, |_, log| log
                .iter()
                .any(|f| matches!(&f.message, Ok(m) if m.target() == "/waiting"))));
        }
        let released = rig.origin.wait_until(LIMIT, |conns, log| {
            log.iter()
                .filter(|f| matches!(&f.message, Ok(m) if m.target() == "/waiting"))
                .all(|f| conns[f.conn].closed_by_peer)
        });
        assert!(
            released,
            "{driver:?}: the origin sees the waiting connection closed"
        );
    }
}

/// A request pipelined while a slow upstream thinks is read by the client watch; it is kept
/// and answered after the first response, on both drivers (on io_uring the watch's read is
/// cancelled when the first response arrives, and what it took is kept).
#[test]
fn requests_pipelined_while_the_upstream_thinks_are_answered() {
    for driver in DRIVERS {
        let rig = Rig::on(driver);
        let slow = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow".to_vec();
        rig.origin
            .push_script(Script::ReplyAfter(Duration::from_millis(800), slow));
        let mut c = Client::connect(rig.proxy, LIMIT).expect("connect");
        c.send(b"GET /slow HTTP/1.1\r\nHost: a.example\r\n\r\n");
        assert!(rig.origin.wait_until(LIMIT, |_, log| log
            .iter()
            .any(|f| matches!(&f.message, Ok(m) if m.target() == "/slow"))));
        // Past the worker tick after which the watch reads the client.
        thread::sleep(Duration::from_millis(400));
        c.send(b"GET /next HTTP/1.1\r\nHost: a.example\r\n\r\n");
        let first = c.read_response(false);
        let second = c.read_response(false);
        assert_eq!(status_of(&first), Some(200), "{driver:?}: {first:?}");
        assert_eq!(
            first.ok().flatten().map(|m| m.body),
            Some(b"slow".to_vec()),
            "{driver:?}"
        );
        assert_eq!(status_of(&second), Some(200), "{driver:?}: {second:?}");
        assert_eq!(
            second.ok().flatten().map(|m| m.body),
            Some(b"ok".to_vec()),
            "{driver:?}"
        );
    }
}

/// Nothing listens at the upstream address: 502.
#[test]
fn upstream_refusing_gets_502() {
    let (dead, _held) = refusing();
    let server = bext::start(proxy_to(dead, LONG_MS, LONG_MS), one_worker()).expect("bext starts");
    let proxy = server.local_addrs()[0];
    let r = get(proxy, "/");
    assert_eq!(status_of(&r), Some(502), "{r:?}");
    if let Ok(Some(m)) = &r {
        assert_eq!(
            m.get("content-type"),
            Some(&b"application/problem+json"[..])
        );
    }
    server.shutdown();
}

/// Queue the same misbehaviour for every attempt the proxy may make (it may retry a GET).
fn every_attempt(rig: &Rig, s: Script) {
    for _ in 0..8 {
        rig.origin.push_script(s.clone());
    }
}

/// The upstream resets the connection as soon as the request arrives: 502.
#[test]
fn upstream_resetting_gets_502() {
    let rig = Rig::start();
    every_attempt(&rig, Script::Reset);
    let r = get(rig.proxy, "/reset");
    assert_eq!(status_of(&r), Some(502), "{r:?}");
}

/// The upstream accepts the request and never answers: 504 at the response timeout.
#[test]
fn upstream_hanging_gets_504() {
    let rig = Rig::with_timeouts(LONG_MS, SHORT_MS);
    every_attempt(&rig, Script::Hang);
    let r = get(rig.proxy, "/hang");
    assert_eq!(status_of(&r), Some(504), "{r:?}");
    // The hung upstream connection is given up, not pooled.
    let released = rig.origin.wait_until(LIMIT, |conns, log| {
        log.iter()
            .filter(|f| matches!(&f.message, Ok(m) if m.target() == "/hang"))
            .all(|f| conns[f.conn].closed_by_peer)
    });
    assert!(released, "the hung upstream connection is closed");
}

/// The upstream answers with bytes that are not HTTP: 502, and the proxy keeps serving.
#[test]
fn upstream_sending_garbage_gets_502() {
    let rig = Rig::start();
    every_attempt(
        &rig,
        Script::Reply(b"SSH-2.0-OpenSSH_9.6\r\n\r\n".to_vec(), Then::Keep),
    );
    let r = get(rig.proxy, "/garbage");
    assert_eq!(status_of(&r), Some(502), "{r:?}");
    rig.origin.clear_scripts();
    assert_eq!(status_of(&get(rig.proxy, "/after")), Some(200));
}

/// The upstream dies in the middle of a large body: the client sees the head, part of the body,
/// then its connection closed; never a complete, shorter "success".
#[test]
fn upstream_closing_mid_body_closes_the_client_connection() {
    let rig = Rig::start();
    let mut reply = b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n".to_vec();
    reply.extend(std::iter::repeat_n(b'x', 64 * 1024));
    every_attempt(&rig, Script::Reply(reply, Then::Close));
    let mut c = Client::connect(rig.proxy, LIMIT).expect("connect");
    c.send(b"GET /big HTTP/1.1\r\nHost: a.example\r\n\r\n");
    match c.read_response(false) {
        Ok(Some(m)) if m.status() == Some(200) => {
            assert!(m.truncated, "the body must end early, not look complete");
            assert!(m.body.len() < 1_000_000);
        }
        // The connection closed inside the head: also never a success.
        Err(e) if e.contains("ended inside") => {}
        other => panic!("want a truncated 200 and a closed connection, got {other:?}"),
    }
    assert!(c.wait_closed(), "the client connection is closed");
}

/// Requests to the harness's own paths are never scripted (a guard for the tests above).
#[test]
fn harness_requests_are_not_scripted() {
    let rig = Rig::start();
    rig.origin.push_script(Script::Hang);
    let r = get(rig.proxy, &format!("{HARNESS_PREFIX}probe"));
    assert_eq!(status_of(&r), Some(200), "{r:?}");
    rig.origin.clear_scripts();
}
