//! 10,000 concurrent client connections against one in-process bext worker: every connection
//! is served, and the memory they cost stays bounded.
//!
//! The client ends live in a child process (this test binary again, running the ignored
//! helper below), because one process may not hold both ends of 10,000 connections under the
//! usual 20,000 descriptor hard limit. A dedicated test binary, so that no other test runs in
//! the process while its resident set size is measured.

mod support;

use bext_conformance::client::read_status;
use rlimit::Resource;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;
use support::{one_worker, rss_bytes};

const CONNECTIONS: usize = 10_000;
/// A ceiling that catches a connection holding a full head buffer plus a body buffer, or
/// growth without bound; far above what an idle connection should cost.
const MAX_BYTES_PER_CONNECTION: u64 = 64 * 1024;
const ADDR_VAR: &str = "BEXT_CONFORMANCE_CLIENT_ADDR";

fn raise_nofile(need: u64) {
    let (soft, hard) = rlimit::getrlimit(Resource::NOFILE).expect("getrlimit");
    if soft < need {
        rlimit::setrlimit(Resource::NOFILE, need.min(hard), hard).expect("raise RLIMIT_NOFILE");
    }
}

fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(30))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    Ok(s)
}

fn get(addr: SocketAddr) -> Option<u16> {
    let mut s = connect(addr).ok()?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").ok()?;
    read_status(&mut s)
}

/// The client side, in the child process: open every connection, send one request on each,
/// read every response, report `served N` and hold the connections until stdin closes.
#[test]
#[ignore = "the client process of ten_thousand_concurrent_connections_with_bounded_memory"]
fn client_side_of_ten_thousand_connections() {
    let Some(addr) = std::env::var(ADDR_VAR).ok().and_then(|a| a.parse().ok()) else {
        panic!("run by ten_thousand_concurrent_connections_with_bounded_memory with {ADDR_VAR}");
    };
    raise_nofile(CONNECTIONS as u64 + 256);
    let mut conns: Vec<TcpStream> = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        // The request goes out at once; its response waits in the socket until read below.
        match connect(addr).and_then(|mut s| {
            s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")?;
            Ok(s)
        }) {
            Ok(s) => conns.push(s),
            Err(e) => {
                println!("connect failed after {}: {e}", conns.len());
                break;
            }
        }
    }
    let served = conns
        .iter_mut()
        .map(read_status)
        .filter(|s| *s == Some(200))
        .count();
    println!("served {served}");
    let _ = std::io::stdout().flush();
    let mut rest = String::new();
    let _ = std::io::stdin().read_line(&mut rest);
    drop(conns);
}

#[test]
fn ten_thousand_concurrent_connections_with_bounded_memory() {
    raise_nofile(CONNECTIONS as u64 + 1024);
    let mut config = bext::respond_config("127.0.0.1:0", 200, "ok");
    // The connections must outlive the whole test while idle, whatever the machine's speed.
    config.global.timeouts.idle_ms = 3_600_000;
    config.global.timeouts.header_ms = 3_600_000;
    // One worker holds them all, plus the warm-up and the fresh connection: above the default
    // cap of 10,000 connections per worker, at which the fresh one would wait in the backlog.
    config.global.limits.connections = CONNECTIONS as u32 + 16;
    let server = bext::start(config, one_worker()).expect("bext starts");
    let addr = server.local_addrs()[0];
    // Warm the worker and the allocator before the baseline.
    assert_eq!(get(addr), Some(200));
    let before = rss_bytes();

    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(exe)
        .args([
            "client_side_of_ten_thousand_connections",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ADDR_VAR, addr.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("client process");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut served = None;
    let mut report = Vec::new();
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let Ok(line) = line else { break };
        // libtest may print `test NAME ... ` on the same line first.
        if let Some((_, n)) = line.split_once("served ") {
            served = n.trim().parse::<usize>().ok();
            break;
        }
        report.push(line);
    }
    // All connections are open, each served once, and idle in keep-alive now.
    let after = rss_bytes();
    let fresh = get(addr);
    drop(child.stdin.take());
    // Read the child's last words so that it exits cleanly.
    report.extend(lines.map_while(Result::ok));
    let _ = child.wait();
    server.shutdown();

    let growth = after.saturating_sub(before);
    let per_conn = growth / CONNECTIONS as u64;
    let figures = format!(
        "{CONNECTIONS} concurrent connections: {served:?} served; RSS {} KiB -> {} KiB, \
         growth {} KiB, {per_conn} bytes per connection",
        before / 1024,
        after / 1024,
        growth / 1024
    );
    // Past the harness's output capture, so the figures show in every run.
    let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("{figures}\n").as_bytes());
    assert_eq!(served, Some(CONNECTIONS), "client process said: {report:?}");
    assert_eq!(
        fresh,
        Some(200),
        "a new connection is served with all of them open"
    );
    assert!(
        per_conn < MAX_BYTES_PER_CONNECTION,
        "{per_conn} bytes per connection (ceiling {MAX_BYTES_PER_CONNECTION})"
    );
}
