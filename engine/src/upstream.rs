//! Per-core upstream state: for every upstream of a pipeline, this core's balancer, passive
//! ejector, retry policy and budget, circuit breaker and counters (all from `bext-balance`).
//!
//! A worker compiles one [`CoreUpstreams`] per pipeline generation when it prepares the
//! pipeline, so a reload never builds anything on the request path, and requests still running
//! on an old generation keep that generation's state (its upstream indexes). Counters of
//! servers that remain (same upstream name, same address) are carried into the new
//! generation; passive ejections start afresh. Active health is shared by every core and
//! carried over by the health checker (see [`crate::health`]).
//!
//! `bext-balance` is pure logic with no dependency on the engine; the engine uses it as a
//! library because server selection, retries and the breaker are part of the upstream exchange
//! itself (one decision per attempt, inside the proxy loop), not a stage before it.

use crate::pipeline::{HashSource, Pipeline, UpstreamDef};
use bext_balance::{
    Balancer, CircuitBreaker, HealthView, PassiveEjector, PickContext, RetryBudget, RetryPolicy,
    UpstreamMetrics,
};
use std::cell::RefCell;
use std::net::SocketAddr;

/// One upstream on one core.
#[derive(Debug)]
pub struct UpstreamState {
    pub balancer: Balancer,
    pub passive: Option<PassiveEjector>,
    pub retry: Option<RetryPolicy>,
    pub budget: RetryBudget,
    pub breaker: CircuitBreaker,
    pub metrics: UpstreamMetrics,
    pub health: HealthView,
    /// Rate limit of this upstream's failure lines in the error log.
    pub failure_log: FailureLog,
}

/// Every upstream of one pipeline generation, on one core, indexed like `Pipeline::upstreams`.
#[derive(Debug)]
pub struct CoreUpstreams {
    pub generation: u64,
    pub list: Vec<RefCell<UpstreamState>>,
    /// (upstream name, server addresses), for carrying state over and for publishing counters.
    pub names: Vec<(String, Vec<SocketAddr>)>,
}

impl UpstreamState {
    fn new(def: &UpstreamDef, seed: u64) -> UpstreamState {
        // Invariant: Pipeline::compile compiled a balancer from the same IR (only the seed
        // differs, and the seed cannot make it fail), so an upstream this would refuse never
        // reaches a worker.
        let balancer = match Balancer::with_seed(&def.config, seed) {
            Ok(b) => b,
            Err(e) => panic!(
                "upstream `{}` was compiled but its balancer fails: {e}",
                def.name
            ),
        };
        let retry = def.config.retry.as_ref().map(RetryPolicy::from_ir);
        let percent = retry.as_ref().map_or(0, RetryPolicy::budget_percent);
        UpstreamState {
            balancer,
            passive: def
                .config
                .passive
                .as_ref()
                .map(|p| PassiveEjector::new(def.servers.len(), p)),
            retry,
            budget: RetryBudget::new(percent),
            breaker: CircuitBreaker::from_ir(&def.config),
            metrics: UpstreamMetrics::new(def.servers.len()),
            health: def.health.clone(),
            failure_log: FailureLog::new(def.servers.len()),
        }
    }
}

impl CoreUpstreams {
    /// Compile the per-core state of every upstream of `p`; `seed` differs per core (and per
    /// generation) so that random choices do not move in lockstep across cores. Counters of
    /// servers that `previous` also had are carried over.
    pub fn build(p: &Pipeline, seed: u64, previous: Option<&CoreUpstreams>) -> CoreUpstreams {
        let mut list = Vec::with_capacity(p.upstreams.len());
        let mut names = Vec::with_capacity(p.upstreams.len());
        for (i, def) in p.upstreams.iter().enumerate() {
            let mut st = UpstreamState::new(def, mix(seed ^ (i as u64).wrapping_mul(0x9E37)));
            let addrs: Vec<SocketAddr> = def.servers.iter().map(|s| s.addr).collect();
            if let Some(prev) = previous {
                if let Some(j) = prev.names.iter().position(|(n, _)| *n == def.name) {
                    let old = prev.list[j].borrow();
                    let m = &old.metrics;
                    st.metrics.requests = m.requests;
                    st.metrics.failures = m.failures;
                    st.metrics.retries = m.retries;
                    st.metrics.budget_exhausted = m.budget_exhausted;
                    st.metrics.breaker_open = m.breaker_open;
                    for (k, a) in addrs.iter().enumerate() {
                        if let Some(o) = prev.names[j].1.iter().position(|b| b == a) {
                            st.metrics.servers[k] = m.servers[o];
                        }
                    }
                }
            }
            list.push(RefCell::new(st));
            names.push((def.name.clone(), addrs));
        }
        CoreUpstreams {
            generation: p.generation,
            list,
            names,
        }
    }

    /// Passive ejections whose time is over become trials again (half-open).
    pub fn expire_ejections(&self, now_ms: u64) {
        for st in &self.list {
            let st = &mut *st.borrow_mut();
            if let Some(passive) = st.passive.as_mut() {
                while let Some(idx) = passive.next_expired(now_ms) {
                    st.balancer.set_ejected(idx, false);
                }
            }
        }
    }

    /// This core's counters, for the control thread.
    pub fn snapshot(&self) -> Vec<UpstreamSnapshot> {
        self.list
            .iter()
            .zip(&self.names)
            .map(|(st, (name, addrs))| UpstreamSnapshot {
                name: name.clone(),
                servers: addrs.clone(),
                metrics: st.borrow().metrics.clone(),
                up: {
                    let st = st.borrow();
                    (0..addrs.len()).map(|i| st.health.is_up(i)).collect()
                },
                ejected: {
                    let st = st.borrow();
                    (0..addrs.len())
                        .map(|i| st.passive.as_ref().is_some_and(|p| p.is_ejected(i)))
                        .collect()
                },
                breaker: {
                    let st = st.borrow();
                    let (connections_full, pending_full) = st.breaker.state();
                    BreakerSnapshot {
                        connections: st.breaker.connections(),
                        pending: st.breaker.pending(),
                        connections_full,
                        pending_full,
                    }
                },
            })
            .collect()
    }
}

/// One upstream's counters on one core, as published for `GET /status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamSnapshot {
    pub name: String,
    pub servers: Vec<SocketAddr>,
    pub metrics: UpstreamMetrics,
    /// Per server: up for the active health checks (the same on every core).
    pub up: Vec<bool>,
    /// Per server: passively ejected on this core.
    pub ejected: Vec<bool>,
    pub breaker: BreakerSnapshot,
}

/// The circuit breaker of one upstream on one core, as of the last tick.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BreakerSnapshot {
    /// Upstream connections in use, and requests waiting for one.
    pub connections: u32,
    pub pending: u32,
    /// `max_connections` / `max_pending` reached: the breaker refuses new requests.
    pub connections_full: bool,
    pub pending_full: bool,
}

/// What went wrong with an upstream server, as the error log names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailKind {
    /// The connection was refused (nothing listens, or a firewall rejects).
    Refused,
    ConnectTimeout,
    /// Any other connect error (unreachable network or host ...).
    ConnectFailed,
    /// No response head within the response timeout.
    ResponseTimeout,
    /// The connection was reset, or a write to it failed.
    Reset,
    /// The upstream closed before a response head.
    Closed,
    /// A response head that could not be parsed, or a 101 nobody asked for.
    InvalidResponse,
    /// The upstream closed or failed in the middle of a response body.
    ClosedMidBody,
    /// TLS (`server … tls`): the server's certificate was not accepted.
    TlsVerify,
    /// TLS: the handshake failed otherwise (no common version or suite, an alert, a close).
    TlsHandshake,
}

impl FailKind {
    const COUNT: usize = 10;

    pub fn as_str(self) -> &'static str {
        match self {
            FailKind::Refused => "connection refused",
            FailKind::ConnectTimeout => "connect timeout",
            FailKind::ConnectFailed => "connect failed",
            FailKind::ResponseTimeout => "response timeout",
            FailKind::Reset => "connection reset",
            FailKind::Closed => "closed before responding",
            FailKind::InvalidResponse => "invalid response",
            FailKind::ClosedMidBody => "closed mid-body",
            FailKind::TlsVerify => "TLS certificate not accepted",
            FailKind::TlsHandshake => "TLS handshake failed",
        }
    }
}

/// At most one error-log line per second per server and kind of failure, on one core.
const LOG_EVERY_MS: u64 = 1_000;

#[derive(Debug, Clone, Copy, Default)]
struct LogSlot {
    last_ms: Option<u64>,
    suppressed: u64,
}

/// The rate limit of failure lines of one upstream on one core: per server and kind of
/// failure, one line, then silence for a second; the next line says how many failures of that
/// kind were not logged meanwhile. Failures stay visible without an access log, and a dead
/// server under load costs one line a second per core, not one per request.
#[derive(Debug)]
pub struct FailureLog {
    slots: Vec<[LogSlot; FailKind::COUNT]>,
}

impl FailureLog {
    pub fn new(servers: usize) -> FailureLog {
        FailureLog {
            slots: vec![[LogSlot::default(); FailKind::COUNT]; servers],
        }
    }

    /// A failure of `kind` on `server` at `now_ms`: `Some(suppressed)` when a line is due, with
    /// the number of failures of the same kind left out since the previous line.
    pub fn due(&mut self, server: usize, kind: FailKind, now_ms: u64) -> Option<u64> {
        let slot = self.slots.get_mut(server)?.get_mut(kind as usize)?;
        match slot.last_ms {
            Some(t) if now_ms.saturating_sub(t) < LOG_EVERY_MS => {
                slot.suppressed += 1;
                None
            }
            _ => {
                slot.last_ms = Some(now_ms);
                Some(std::mem::take(&mut slot.suppressed))
            }
        }
    }
}

/// The error-log line of an upstream failure.
pub fn failure_line(upstream: &str, server: SocketAddr, kind: FailKind, suppressed: u64) -> String {
    let mut line = format!(
        "bext: upstream {upstream} server {server}: {}",
        kind.as_str()
    );
    if suppressed > 0 {
        line.push_str(&format!(" ({suppressed} more suppressed)"));
    }
    line.push('\n');
    line
}

/// Write one error-log line to stderr, where the engine's other errors go, in one `write`
/// (stderr is unbuffered, so lines of different cores do not interleave). The caller's rate
/// limit bounds how often a worker does this: one short line per second per server and kind
/// at most, so a slow stderr cannot hold a worker for long. The error is dropped: a failing
/// log must not take the data plane down.
pub fn write_error_line(line: &str) {
    use std::io::Write;
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// The hashing key of a request, borrowed from its head.
pub fn pick_context<'a>(
    source: &HashSource,
    client: SocketAddr,
    headers: crate::stage::Headers<'a>,
) -> PickContext<'a> {
    match source {
        HashSource::None => PickContext::default(),
        HashSource::ClientIp => PickContext {
            client_ip: Some(client.ip()),
            ..PickContext::default()
        },
        HashSource::Header(name) => PickContext {
            header: headers.get(name),
            ..PickContext::default()
        },
        HashSource::Cookie(name) => PickContext {
            cookie: headers
                .iter()
                .filter(|(n, _)| bext_http1::name_eq(n, b"cookie"))
                .find_map(|(_, v)| cookie_value(v, name)),
            ..PickContext::default()
        },
    }
}

/// The value of cookie `name` in one `Cookie` field value (`a=1; b=2`, RFC 6265 §4.2.1).
pub fn cookie_value<'a>(field: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    field.split(|&b| b == b';').find_map(|pair| {
        let pair = pair.trim_ascii();
        let eq = pair.iter().position(|&b| b == b'=')?;
        (pair[..eq].trim_ascii() == name).then(|| pair[eq + 1..].trim_ascii())
    })
}

/// splitmix64 finaliser.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One line per second per server and kind; the next line counts what was left out.
    #[test]
    fn failure_lines_are_rate_limited_per_server_and_kind() {
        let mut log = FailureLog::new(2);
        // (server, kind, now_ms, line due with this many suppressed)
        let table: &[(usize, FailKind, u64, Option<u64>)] = &[
            (0, FailKind::Refused, 0, Some(0)),
            (0, FailKind::Refused, 10, None),
            (0, FailKind::Refused, 999, None),
            (0, FailKind::ResponseTimeout, 999, Some(0)),
            (1, FailKind::Refused, 999, Some(0)),
            (0, FailKind::Refused, 1_000, Some(2)),
            (0, FailKind::Refused, 1_500, None),
            (0, FailKind::Refused, 5_000, Some(1)),
            (0, FailKind::Refused, 6_000, Some(0)),
            (7, FailKind::Refused, 6_000, None),
        ];
        for (i, &(server, kind, now, want)) in table.iter().enumerate() {
            assert_eq!(log.due(server, kind, now), want, "row {i}");
        }
        let a: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert_eq!(
            failure_line("api", a, FailKind::Refused, 0),
            "bext: upstream api server 127.0.0.1:9: connection refused\n"
        );
        assert_eq!(
            failure_line("api", a, FailKind::InvalidResponse, 3),
            "bext: upstream api server 127.0.0.1:9: invalid response (3 more suppressed)\n"
        );
    }

    #[test]
    fn cookie_values_are_found_by_exact_name() {
        let table: &[(&str, &str, Option<&str>)] = &[
            ("a=1; b=2", "b", Some("2")),
            ("a=1;b=2", "a", Some("1")),
            (" session = xyz ; other=1", "session", Some("xyz")),
            ("ab=1; b=2", "a", None),
            ("a", "a", None),
            ("a=", "a", Some("")),
            ("", "a", None),
        ];
        for (field, name, want) in table {
            assert_eq!(
                cookie_value(field.as_bytes(), name.as_bytes()),
                want.map(str::as_bytes),
                "{field:?} {name}"
            );
        }
    }
}
