//! File-descriptor exhaustion: with the process's descriptor limit lowered, connections pile
//! up until `accept` fails with EMFILE. bext must back off instead of crashing or spinning, and
//! serve again, including the connections that waited in the backlog, once descriptors free
//! up. A dedicated test binary, because the limit is per process.

mod support;

use bext_conformance::client::read_status;
use rlimit::Resource;
use std::io::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;
use support::one_worker;

fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64)
}

fn get(s: &mut TcpStream) -> Option<u16> {
    s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").ok()?;
    read_status(s)
}

fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    Ok(s)
}

#[test]
fn accept_backs_off_when_descriptors_run_out_and_serves_again() {
    let config = bext::respond_config("127.0.0.1:0", 200, "ok");
    let server = bext::start(config, one_worker()).expect("bext starts");
    let addr = server.local_addrs()[0];
    let mut first = connect(addr).expect("connect");
    assert_eq!(get(&mut first), Some(200));

    let (soft, hard) = rlimit::getrlimit(Resource::NOFILE).expect("getrlimit");
    // Room for a few dozen connections, shared by the test's client ends and bext's accepted
    // ends: the process runs out of descriptors long before the loop below ends.
    let low = open_fds() + 48;
    rlimit::setrlimit(Resource::NOFILE, low, hard).expect("lower RLIMIT_NOFILE");
    let mut conns = Vec::new();
    let mut refused = false;
    for _ in 0..1000 {
        match connect(addr) {
            Ok(s) => conns.push(s),
            Err(_) => {
                refused = true;
                break;
            }
        }
    }
    // The last connections were completed by the kernel but cannot be accepted yet.
    let mut waiting: Vec<TcpStream> = conns.split_off(conns.len().saturating_sub(4));
    for s in &mut waiting {
        let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    }
    // Let the worker meet EMFILE for a while before descriptors come back.
    std::thread::sleep(Duration::from_millis(300));
    let exhausted_at = conns.len() + waiting.len();

    // Free descriptors: close most client ends (bext then closes its ends) and restore the limit.
    drop(conns);
    rlimit::setrlimit(Resource::NOFILE, soft, hard).expect("restore RLIMIT_NOFILE");

    let mut backlog_served = 0;
    for s in &mut waiting {
        if read_status(s) == Some(200) {
            backlog_served += 1;
        }
    }
    let mut fresh = connect(addr).expect("connect after recovery");
    let fresh_status = get(&mut fresh);
    let first_status = get(&mut first);
    let figures = format!(
        "descriptor limit {low}: {exhausted_at} connections opened before the process ran out \
         (connect refused: {refused}); {backlog_served}/{} waiting connections served after \
         recovery",
        waiting.len()
    );
    // Past the harness's output capture, so the figures show in every run.
    let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("{figures}\n").as_bytes());
    server.shutdown();

    assert!(refused, "the limit was reached");
    assert_eq!(
        fresh_status,
        Some(200),
        "a new connection is served after recovery"
    );
    assert_eq!(
        first_status,
        Some(200),
        "an old keep-alive connection still works"
    );
    assert_eq!(
        backlog_served,
        waiting.len(),
        "connections that waited while accept failed are served once descriptors free up"
    );
}
