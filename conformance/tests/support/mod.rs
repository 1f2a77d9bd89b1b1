//! Shared by the fault-tolerance test binaries: a bext proxy in front of the recording origin,
//! with short timeouts so that every fault resolves quickly. No test asserts a duration: the
//! timeouts only decide which status a stalled exchange ends with.
#![allow(dead_code)]

use bext_conformance::origin::Origin;
use std::net::SocketAddr;

/// A timeout a test wants to reach: short, so the fault resolves quickly.
pub const SHORT_MS: u64 = 600;
/// A timeout a test must not reach even on a loaded machine.
pub const LONG_MS: u64 = 20_000;

/// An address that refuses connections for as long as the returned socket lives: the port is
/// bound but never listened on, so nothing else running in parallel can take it.
pub fn refusing() -> (SocketAddr, socket2::Socket) {
    let s =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    s.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .expect("bind");
    let a = s.local_addr().expect("addr").as_socket().expect("inet");
    (a, s)
}

/// One worker on the driver `BEXT_TEST_DRIVER` names (`auto`, `epoll`, `io-uring`), bext's
/// default when unset. CI runs the tests once on each.
pub fn one_worker() -> bext::StartOptions {
    let driver = match std::env::var("BEXT_TEST_DRIVER") {
        Ok(v) if !v.is_empty() => v
            .parse()
            .unwrap_or_else(|e| panic!("BEXT_TEST_DRIVER: {e}")),
        _ => bext::DriverChoice::DEFAULT,
    };
    bext::StartOptions {
        workers: Some(1),
        pin: false,
        driver,
    }
}

/// `route /*` proxied to `upstream`; `client_ms` is the header and body timeout, `response_ms`
/// the upstream connect and response-head timeout.
pub fn proxy_to(upstream: SocketAddr, client_ms: u64, response_ms: u64) -> bext_ir::Config {
    let mut c = bext::proxy_config("127.0.0.1:0", &[upstream.to_string()]);
    c.global.timeouts.header_ms = client_ms;
    c.global.timeouts.body_ms = client_ms;
    for u in &mut c.upstreams {
        u.timeouts.connect_ms = response_ms;
        u.timeouts.response_ms = response_ms;
    }
    c
}

/// A running proxy in front of a fresh recording origin.
pub struct Rig {
    pub origin: Origin,
    pub server: Option<bext::Server>,
    pub proxy: SocketAddr,
}

impl Rig {
    /// Long timeouts: for faults that must not depend on a timer.
    pub fn start() -> Rig {
        Rig::with_timeouts(LONG_MS, LONG_MS)
    }

    pub fn with_timeouts(client_ms: u64, response_ms: u64) -> Rig {
        Rig::build(client_ms, response_ms, one_worker())
    }

    /// Long timeouts, on the given driver.
    pub fn on(driver: bext::DriverChoice) -> Rig {
        let opts = bext::StartOptions {
            driver,
            ..one_worker()
        };
        Rig::build(LONG_MS, LONG_MS, opts)
    }

    fn build(client_ms: u64, response_ms: u64, opts: bext::StartOptions) -> Rig {
        let origin = Origin::start().expect("origin starts");
        let config = proxy_to(origin.addr(), client_ms, response_ms);
        let server = bext::start(config, opts).expect("bext starts");
        let proxy = server.local_addrs()[0];
        Rig {
            origin,
            server: Some(server),
            proxy,
        }
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown();
        }
    }
}

/// The resident set size of this process, from /proc/self/status.
pub fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}
