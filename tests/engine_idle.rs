//! Idle keep-alive connections, on both drivers: after a short hot window a quiet connection is
//! parked outside any task (engine/src/idle.rs). These tests show what a client sees of that:
//! its next request is answered (alone or pipelined, whenever it comes, also right at the end of
//! the window), a reload applies to it, it is closed at the idle timeout and when bext stops,
//! and idle connections cost little memory.

mod common;
use bext_ir as ir;
use common::*;
use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const DRIVERS: [bext::DriverChoice; 2] = [bext::DriverChoice::Epoll, bext::DriverChoice::IoUring];

/// Long enough for a connection to leave its hot window and be parked (window 100 ms, checked
/// on a 100 ms tick).
const PARKED: Duration = Duration::from_millis(600);

/// The memory tests measure this process's resident set: they run alone (write lock), the
/// other tests of this file side by side (read lock).
static MEASURING: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn shared() -> std::sync::RwLockReadGuard<'static, ()> {
    MEASURING.read().unwrap_or_else(|e| e.into_inner())
}

fn alone() -> std::sync::RwLockWriteGuard<'static, ()> {
    MEASURING.write().unwrap_or_else(|e| e.into_inner())
}

fn start_on(config: ir::Config, driver: bext::DriverChoice) -> Option<bext::Server> {
    let srv = bext::start(
        config,
        bext::StartOptions {
            workers: Some(1),
            driver,
            pin: false,
        },
    )
    .expect("bext starts");
    // Where the kernel refuses io_uring, the engine falls back to epoll, already covered.
    if driver == bext::DriverChoice::IoUring && srv.driver() != bext::Driver::IoUring {
        srv.shutdown();
        return None;
    }
    Some(srv)
}

fn responder(body: &str) -> ir::Config {
    site(vec![route(
        ir::PathMatch::Prefix("/".into()),
        respond(200, body),
    )])
}

fn get(r: &mut BufReader<TcpStream>) -> Resp {
    r.get_mut()
        .write_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap();
    read_response(r, false)
}

fn open(a: std::net::SocketAddr) -> BufReader<TcpStream> {
    let s = connect(a);
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    BufReader::new(s)
}

#[test]
fn parked_connections_answer_their_next_request() {
    let _running = shared();
    for driver in DRIVERS {
        let Some(srv) = start_on(responder("parked"), driver) else {
            continue;
        };
        let mut conns: Vec<_> = (0..200).map(|_| open(addr(&srv))).collect();
        for c in conns.iter_mut() {
            assert_eq!(get(c).status, 200);
        }
        std::thread::sleep(PARKED);
        for (i, c) in conns.iter_mut().enumerate() {
            if i % 2 == 0 {
                let r = get(c);
                assert_eq!((r.status, r.text().as_str()), (200, "parked"), "{driver:?}");
            } else {
                // Two pipelined requests wake a parked connection once; both are answered.
                c.get_mut()
                    .write_all(
                        b"GET / HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
                    )
                    .unwrap();
                assert_eq!(read_response(c, false).text(), "parked", "{driver:?}");
                assert_eq!(read_response(c, false).text(), "parked", "{driver:?}");
            }
        }
        // Parked connections still count as open connections of their worker.
        let open_now: usize = srv.stats().iter().map(|s| s.1).sum();
        assert_eq!(open_now, 200, "{driver:?}");
        srv.shutdown();
    }
}

#[test]
fn requests_around_the_end_of_the_hot_window_are_never_lost() {
    let _running = shared();
    for driver in DRIVERS {
        let Some(srv) = start_on(responder("w"), driver) else {
            continue;
        };
        let mut c = open(addr(&srv));
        assert_eq!(get(&mut c).status, 200);
        // Pauses from well inside the window to well past it, in 10 ms steps: some requests
        // arrive while the window closes (on io_uring, while the posted read is cancelled).
        for pause_ms in (40..=400).step_by(10) {
            std::thread::sleep(Duration::from_millis(pause_ms));
            let r = get(&mut c);
            assert_eq!(
                (r.status, r.text().as_str()),
                (200, "w"),
                "{driver:?} after {pause_ms} ms"
            );
        }
        srv.shutdown();
    }
}

#[test]
fn a_reload_applies_to_parked_connections() {
    let _running = shared();
    for driver in DRIVERS {
        let Some(srv) = start_on(responder("before"), driver) else {
            continue;
        };
        let mut c = open(addr(&srv));
        assert_eq!(get(&mut c).text(), "before");
        std::thread::sleep(PARKED);
        srv.reload(&responder("after")).expect("reload");
        assert_eq!(get(&mut c).text(), "after", "{driver:?}");
        srv.shutdown();
    }
}

#[test]
fn parked_connections_close_at_the_idle_timeout_and_when_bext_stops() {
    let _running = shared();
    for driver in DRIVERS {
        let mut config = responder("t");
        config.global.timeouts.idle_ms = 1_000;
        let Some(srv) = start_on(config, driver) else {
            continue;
        };
        let mut timed = open(addr(&srv));
        assert_eq!(get(&mut timed).status, 200);
        // The server closes the connection on its own: the read ends with EOF, not with this
        // side's 10-second read timeout.
        let mut rest = Vec::new();
        let n = timed.read_to_end(&mut rest);
        assert!(matches!(n, Ok(0)), "{driver:?}: {n:?}");

        let mut kept = open(addr(&srv));
        assert_eq!(get(&mut kept).status, 200);
        std::thread::sleep(Duration::from_millis(300));
        srv.shutdown();
        let mut rest = Vec::new();
        assert!(matches!(kept.read_to_end(&mut rest), Ok(0)), "{driver:?}");
    }
}

/// One request on a bare stream (no buffered reader: the client's memory is measured too).
fn bare_get(s: &mut TcpStream) -> bool {
    s.write_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    let mut got = [0u8; 512];
    let mut n = 0;
    while n < got.len() {
        match s.read(&mut got[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
        if got[..n].ends_with(b"\r\n\r\nm") {
            return got.starts_with(b"HTTP/1.1 200 ");
        }
    }
    false
}

#[test]
fn idle_connections_cost_little_memory() {
    let _measuring = alone();
    for driver in DRIVERS {
        let Some(srv) = start_on(responder("m"), driver) else {
            continue;
        };
        let open_bare = || {
            let s = connect(addr(&srv));
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s
        };
        // Warm up buffers and pools before the baseline.
        let mut warm: Vec<_> = (0..50).map(|_| open_bare()).collect();
        for c in warm.iter_mut() {
            assert!(bare_get(c));
        }
        drop(warm);
        std::thread::sleep(Duration::from_millis(1_500));
        let before = rss_kib("VmRSS:");
        let n = 2_000;
        let mut conns: Vec<_> = (0..n).map(|_| open_bare()).collect();
        for c in conns.iter_mut() {
            assert!(bare_get(c), "{driver:?}");
        }
        // Past the hot window and the quiet period after which free buffers are released.
        std::thread::sleep(Duration::from_millis(2_000));
        let after = rss_kib("VmRSS:");
        let per_conn = after.saturating_sub(before) * 1024 / n as u64;
        // A connection task with a posted read and its buffer costs several KiB; a parked
        // connection a few bytes (the client side of these sockets lives in this process too,
        // but its memory is the kernel's).
        assert!(
            per_conn < 1024,
            "{driver:?}: {per_conn} bytes per idle connection"
        );
        for c in conns.iter_mut() {
            assert!(bare_get(c), "{driver:?}");
        }
        srv.shutdown();
    }
}

/// New connections that send nothing are parked like idle keep-alive ones after their hot
/// window (with the header timeout as expiry): a few bytes each, not a task holding a
/// request's state and, on io_uring, a posted read with its buffer.
#[test]
fn silent_new_connections_are_parked_and_cost_what_idle_ones_do() {
    let _measuring = alone();
    for driver in DRIVERS {
        let mut config = responder("m");
        // Long enough that none of them is closed while measured.
        config.global.timeouts.header_ms = 120_000;
        let Some(srv) = start_on(config, driver) else {
            continue;
        };
        let open_bare = || {
            let s = connect(addr(&srv));
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s
        };
        let mut warm: Vec<_> = (0..50).map(|_| open_bare()).collect();
        for c in warm.iter_mut() {
            assert!(bare_get(c));
        }
        drop(warm);
        std::thread::sleep(Duration::from_millis(1_500));
        let before = rss_kib("VmRSS:");
        let n = 2_000;
        // Opened in batches a few hot windows apart: connections opened all at once would
        // each hold a task before the first is parked, and the resident set keeps that peak.
        let mut conns = Vec::with_capacity(n);
        for _ in 0..20 {
            conns.extend((0..n / 20).map(|_| open_bare()));
            std::thread::sleep(Duration::from_millis(300));
        }
        std::thread::sleep(Duration::from_millis(2_000));
        let after = rss_kib("VmRSS:");
        let per_conn = after.saturating_sub(before) * 1024 / n as u64;
        assert!(
            // Unparked, a silent connection costs ~4 KiB (a task, its state and, on
            // io_uring, a posted read's buffer); parked, a few hundred bytes. The bound leaves
            // room for the allocator's noise on a busy machine.
            per_conn < 2048,
            "{driver:?}: {per_conn} bytes per silent new connection"
        );
        // Each is still served once it speaks.
        for c in conns.iter_mut().step_by(97) {
            assert!(bare_get(c), "{driver:?}");
        }
        srv.shutdown();
    }
}
