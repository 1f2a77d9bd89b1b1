//! Starting bext on io_uring leaves the starting thread alone: the kernel interrupts a thread
//! when a ring that thread created is torn down, so a probe ring made on the caller's thread
//! made a blocking read there fail with `EINTR` tens of milliseconds later (the conformance
//! client saw it as a connection that ended without an answer). Its own binary: the probe runs
//! once per process, on the first start.

mod common;
use common::*;
use std::io::{ErrorKind, Read};
use std::time::{Duration, Instant};

#[test]
fn a_blocking_read_on_the_starting_thread_is_not_interrupted() {
    let opts = bext::StartOptions {
        driver: bext::DriverChoice::IoUring,
        ..opts()
    };
    let srv = match bext::start(bext::respond_config("127.0.0.1:0", 200, "x"), opts) {
        Ok(s) => s,
        Err(e) => {
            assert!(e.to_string().contains("io_uring is not available"), "{e}");
            return;
        }
    };
    // A connection that never answers: every read waits for its whole timeout.
    let quiet = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut c = std::net::TcpStream::connect(quiet.local_addr().unwrap()).unwrap();
    c.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let until = Instant::now() + Duration::from_millis(600);
    let mut waits = 0;
    while Instant::now() < until {
        let e = c.read(&mut [0u8; 16]).expect_err("nothing is ever sent");
        assert!(
            matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
            "wait {waits}: {e:?}"
        );
        waits += 1;
    }
    srv.shutdown();
}
