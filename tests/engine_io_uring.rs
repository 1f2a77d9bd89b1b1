//! The same engine on the io_uring driver: keep-alive with pipelining, bodies both ways through
//! the proxy, and idle connections (which keep a read posted on io_uring). Where the kernel or
//! the sandbox forbids io_uring, starting fails with a clear error, which is what is asserted.

mod common;
use common::*;
use std::io::{BufReader, Write};

fn uring() -> bext::StartOptions {
    bext::StartOptions {
        driver: bext::DriverChoice::IoUring,
        ..opts()
    }
}

#[test]
fn io_uring_serves_keep_alive_pipelining_and_proxied_bodies() {
    let o = match bext::start_origin("127.0.0.1:0", 7, uring()) {
        Ok(o) => o,
        Err(e) => {
            assert!(e.to_string().contains("io_uring is not available"), "{e}");
            return;
        }
    };
    assert_eq!(o.driver(), bext::Driver::IoUring);
    let srv = bext::start(proxy_to(addr(&o)), uring()).expect("proxy on io_uring");
    let mut s = connect(addr(&srv));
    s.write_all(
        b"GET / HTTP/1.1\r\nHost: h\r\n\r\nPOST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    )
    .unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    assert_eq!(read_response(&mut r, false).body.len(), 7);
    assert_eq!(read_response(&mut r, false).text(), "abc");
    // Idle for a moment (longer than the hot window), then the same connection again.
    std::thread::sleep(std::time::Duration::from_millis(300));
    s.write_all(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nok")
        .unwrap();
    assert_eq!(read_response(&mut r, false).text(), "ok");
    srv.shutdown();
    o.shutdown();
}

/// A server started on the port of one that just stopped gets every connection. On io_uring a
/// pending accept would keep the stopped server's listening socket open until the kernel tears
/// its ring down, still in the port's SO_REUSEPORT group, and connections handed to it were
/// reset (or, in one process, never answered): bext cancels and reaps its accepts and shuts its
/// listening sockets down before its workers end.
#[test]
fn a_restart_on_the_same_port_loses_no_connection() {
    use std::io::Read;
    let first = match bext::start(bext::respond_config("127.0.0.1:0", 200, "one"), uring()) {
        Ok(s) => s,
        Err(e) => {
            assert!(e.to_string().contains("io_uring is not available"), "{e}");
            return;
        }
    };
    let listen = addr(&first);
    first.shutdown();
    let fetch = || -> std::io::Result<Vec<u8>> {
        let mut s = std::net::TcpStream::connect(listen)?;
        s.set_read_timeout(Some(std::time::Duration::from_secs(2)))?;
        s.write_all(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")?;
        let mut out = Vec::new();
        s.read_to_end(&mut out)?;
        Ok(out)
    };
    let mut lost = Vec::new();
    for round in 0..3 {
        let srv = bext::start(
            bext::respond_config(&listen.to_string(), 200, "two"),
            uring(),
        )
        .expect("the port is free again");
        for i in 0..10 {
            match fetch() {
                Ok(r) if r.starts_with(b"HTTP/1.1 200") && r.ends_with(b"two") => {}
                other => lost.push((round, i, format!("{other:?}"))),
            }
        }
        srv.shutdown();
    }
    assert!(
        lost.is_empty(),
        "requests lost (round, request, result): {lost:?}"
    );
}
