//! `rate_limit`: how many requests a client (or a header value, or a whole route) may send.
//!
//! # The algorithm
//!
//! Each limit is a GCRA (generic cell rate algorithm, the virtual-scheduling form of a token
//! bucket): a key keeps one number, its *theoretical arrival time* (TAT). A request at time
//! `now` would move it to `max(TAT, now) + T`, where `T` is the emission interval (the period
//! divided by the request count); it is accepted when that is at most `burst × T` ahead of
//! `now`, and then stored. So a fresh key may send `burst` requests at once, then one every `T`.
//! One 64-bit word per key, no refill timer, no cleanup: a key whose TAT is in the past is
//! indistinguishable from one never seen.
//!
//! # Shared by every core, without a lock
//!
//! A limit is one per process, not one per core: a client's connections land on different cores
//! (`SO_REUSEPORT` spreads them by address and port), and a per-core budget would either let
//! `cores × rate` through or cut a one-connection client to `rate / cores`. The cells are
//! `AtomicU64`s updated by compare-and-swap, so cores only ever touch the same cache line when
//! they serve the same key at the same moment.
//!
//! Keys are hashed (with a per-limit random seed, so a client cannot aim at another's cell) into
//! a fixed table of [`CELLS`] cells (512 KiB per keyed limit once every cell is in use; `global`
//! uses one cell). The table is allocated lazily, in chunks of [`CHUNK`] cells (8 KiB) on the
//! first request that lands in a chunk, so a configuration with thousands of limits that see
//! few clients costs kilobytes, not gigabytes; a limit starts with only its chunk pointers
//! (512 bytes). A chunk, once made, lives as long as the limit: the hot path allocates at most
//! once per chunk and never frees. Two keys
//! that share a cell share a budget: under collisions a limit only ever gets stricter, never
//! looser. With k clients active within one burst window, a given client shares its cell with
//! probability about k / 65,536.
//!
//! # Keys
//!
//! `per client_ip` keys IPv4 clients by address and IPv6 clients by their /64 prefix (one
//! subscriber or host usually owns a whole /64, so per-address keys would let it walk around
//! the limit); IPv4-mapped IPv6 addresses count as IPv4. `per header NAME` keys by the first
//! field's value; requests without the field share one budget (the empty value), so leaving the
//! header out does not escape the limit. `global` is one budget for the route.
//!
//! # Reloads
//!
//! A [`Registry`] (one per running server) hands out the cells: a reload that keeps a limit (the
//! same rate, burst and key on a route with the same hosts, path and methods) keeps its counts;
//! a changed or new limit starts fresh.

use bext_ir as ir;
use bext_stage::{Flow, Phases, Reply, RequestView, Stage};
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Instant;

/// Cells per keyed limit (a power of two).
pub const CELLS: usize = 1 << 16;

/// Cells allocated together, on the first request that needs one of them (a power of two).
pub const CHUNK: usize = 1 << 10;

/// The largest accepted rate, in requests per second: the emission interval is kept in whole
/// microseconds.
pub const MAX_PER_SECOND: u64 = 1_000_000;

/// What a request is counted under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    ClientIp,
    /// Lower-case header name.
    Header(Vec<u8>),
    Global,
}

/// The shared state of one limit: its cells and the clock they count in.
struct Cells {
    /// `len` cells in chunks of at most [`CHUNK`], each made on first use.
    chunks: Box<[OnceLock<Box<[AtomicU64]>>]>,
    /// Number of cells (a power of two).
    len: usize,
    hasher: std::collections::hash_map::RandomState,
    /// Cell values are microseconds since this instant.
    epoch: Instant,
}

impl Cells {
    fn new(n: usize) -> Cells {
        debug_assert!(n.is_power_of_two());
        Cells {
            chunks: (0..n.div_ceil(CHUNK)).map(|_| OnceLock::new()).collect(),
            len: n,
            hasher: std::collections::hash_map::RandomState::new(),
            epoch: Instant::now(),
        }
    }

    /// Cell `i` (below `len`), making its chunk if no request has touched it yet. A cell that
    /// was never made holds 0, which is what a fresh chunk holds: laziness changes nothing in
    /// what a request sees.
    fn get(&self, i: usize) -> &AtomicU64 {
        let per = CHUNK.min(self.len);
        let chunk =
            self.chunks[i / per].get_or_init(|| (0..per).map(|_| AtomicU64::new(0)).collect());
        &chunk[i % per]
    }

    /// Cells made so far.
    fn allocated(&self) -> usize {
        self.chunks
            .iter()
            .filter_map(OnceLock::get)
            .map(|c| c.len())
            .sum()
    }

    /// The values of the cells made so far.
    #[cfg(test)]
    fn values(&self) -> Vec<u64> {
        self.chunks
            .iter()
            .filter_map(OnceLock::get)
            .flat_map(|c| c.iter().map(|v| v.load(Ordering::Relaxed)))
            .collect()
    }
}

/// One `rate_limit` of one route, as a request filter.
pub struct RateLimit {
    /// Microseconds between two requests at the sustained rate (T).
    interval_us: u64,
    /// How far ahead of now a key's TAT may get: `burst × T`.
    tolerance_us: u64,
    key: Key,
    state: Arc<Cells>,
    /// The policy as `RateLimit-Policy` states it: `q` requests per `w` seconds.
    quota: u64,
    window_s: u64,
}

/// Why a limit cannot be built.
pub type LimitError = ir::ConfigError;

impl RateLimit {
    /// The emission interval and tolerance of `spec`, checked.
    fn timing(spec: &ir::RateLimit) -> Result<(u64, u64), LimitError> {
        let err = |message: String| LimitError {
            message,
            at: spec.at.clone(),
        };
        if spec.requests == 0 || spec.per_ms == 0 || spec.burst == 0 {
            return Err(err(
                "a rate limit needs at least one request per period and a burst of at least 1"
                    .into(),
            ));
        }
        let period_us = spec.per_ms.saturating_mul(1_000);
        let interval_us = period_us / spec.requests;
        if interval_us == 0 {
            return Err(err(format!(
                "rate {}/{} ms is above the largest supported rate, {MAX_PER_SECOND} requests per second",
                spec.requests, spec.per_ms
            )));
        }
        // Never more than ten years ahead: the counts stay far from overflowing.
        let tolerance_us = interval_us
            .saturating_mul(spec.burst)
            .min(10 * 365 * 86_400 * 1_000_000);
        Ok((interval_us, tolerance_us))
    }

    /// The configured rate as whole seconds: `q` requests per `w` seconds (`100/s` is 100 per
    /// 1, `1000/m` 1000 per 60); a period shorter than a second is scaled up to one.
    fn policy(spec: &ir::RateLimit) -> (u64, u64) {
        let window_s = (spec.per_ms / 1000).max(1);
        let quota = (u128::from(spec.requests) * u128::from(window_s) * 1000
            / u128::from(spec.per_ms.max(1)))
        .clamp(1, u128::from(u64::MAX)) as u64;
        (quota, window_s)
    }

    fn key_of(spec: &ir::RateLimit) -> Key {
        match &spec.key {
            ir::RateKey::ClientIp => Key::ClientIp,
            ir::RateKey::Header(h) => Key::Header(h.to_ascii_lowercase().into_bytes()),
            ir::RateKey::Global => Key::Global,
        }
    }

    /// Fresh cells for a limit counting under `key`.
    fn cells_for(key: &Key) -> Arc<Cells> {
        Arc::new(Cells::new(if *key == Key::Global { 1 } else { CELLS }))
    }

    /// A limit with cells of its own (not shared with any earlier generation).
    pub fn new(spec: &ir::RateLimit) -> Result<RateLimit, LimitError> {
        let (interval_us, tolerance_us) = Self::timing(spec)?;
        let key = Self::key_of(spec);
        let (quota, window_s) = Self::policy(spec);
        Ok(RateLimit {
            interval_us,
            tolerance_us,
            state: Self::cells_for(&key),
            key,
            quota,
            window_s,
        })
    }

    /// Cells this limit has allocated so far (each 8 bytes).
    pub fn allocated_cells(&self) -> usize {
        self.state.allocated()
    }

    fn cell(&self, req: &RequestView<'_>) -> &AtomicU64 {
        let cells = &self.state;
        if cells.len == 1 {
            return cells.get(0);
        }
        let mut h = self.state.hasher.build_hasher();
        match &self.key {
            Key::ClientIp => match req.client.ip() {
                IpAddr::V4(a) => h.write(&a.octets()),
                IpAddr::V6(a) => match a.to_ipv4_mapped() {
                    Some(v4) => h.write(&v4.octets()),
                    None => h.write(&a.octets()[..8]),
                },
            },
            Key::Header(name) => {
                h.write_u8(1);
                h.write(req.headers.get(name).unwrap_or(b""));
            }
            Key::Global => {}
        }
        cells.get((h.finish() as usize) & (cells.len - 1))
    }

    /// Count one request at `now_us` (microseconds since the limit's epoch) in `cell`: `None`
    /// when accepted, else the microseconds until it would be.
    fn take(&self, cell: &AtomicU64, now_us: u64) -> Option<u64> {
        let mut tat = cell.load(Ordering::Relaxed);
        loop {
            let next = tat.max(now_us) + self.interval_us;
            let ahead = next - now_us;
            if ahead > self.tolerance_us {
                return Some(ahead - self.tolerance_us);
            }
            match cell.compare_exchange_weak(tat, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return None,
                Err(seen) => tat = seen,
            }
        }
    }

    fn now_us(&self) -> u64 {
        self.state.epoch.elapsed().as_micros() as u64
    }
}

/// A request filter with no per-request state: over the limit, the request is answered 429
/// `rate-limited` with `Retry-After` (seconds until a request of this client would be accepted
/// again, at least 1).
impl Stage for RateLimit {
    type State = ();

    fn phases(&self) -> Phases {
        Phases::REQUEST
    }

    fn init(&self) {}

    fn on_request(&self, _state: &mut (), req: &RequestView<'_>) -> Flow {
        let cell = self.cell(req);
        match self.take(cell, self.now_us()) {
            None => Flow::Continue,
            Some(wait_us) => Flow::Reply(Reply {
                status: 429,
                slug: "rate-limited",
                title: "Too Many Requests",
                retry_after: Some(wait_us.div_ceil(1_000_000).max(1)),
            }),
        }
    }

    /// The 429's `RateLimit-Policy` and `RateLimit` fields (draft-ietf-httpapi-ratelimit-
    /// headers-09, Structured Fields): the policy `"default"` allows `q` requests per `w`
    /// seconds; the client has `r=0` left, and `t` seconds until a request would be accepted
    /// (the same as `Retry-After`).
    fn reply_fields(&self, reply: &Reply, out: &mut Vec<u8>) {
        use std::io::Write as _;
        let t = reply.retry_after.unwrap_or(1);
        let _ = write!(
            out,
            "RateLimit-Policy: \"default\";q={};w={}\r\nRateLimit: \"default\";r=0;t={t}\r\n",
            self.quota, self.window_s
        );
    }
}

/// What identifies a limit across reloads: where it applies and what it counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Identity {
    hosts: Vec<String>,
    path: String,
    methods: Vec<String>,
    interval_us: u64,
    tolerance_us: u64,
    key: Key,
}

/// The limits of one running server, so that a reload keeps the counts of unchanged limits.
/// Only configuration compiles use it (never a request).
#[derive(Default)]
pub struct Registry {
    live: Mutex<HashMap<Identity, Weak<Cells>>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    /// The limit of `route` (in `site`), sharing its cells with the live limit of the same
    /// identity if there is one.
    pub fn limit(
        &self,
        site: &ir::Site,
        route: &ir::Route,
        spec: &ir::RateLimit,
    ) -> Result<RateLimit, LimitError> {
        let (interval_us, tolerance_us) = RateLimit::timing(spec)?;
        let key = RateLimit::key_of(spec);
        let id = Identity {
            hosts: site.hosts.iter().map(|h| format!("{h:?}")).collect(),
            path: format!("{:?}", route.path),
            methods: route.methods.iter().map(|m| format!("{m:?}")).collect(),
            interval_us,
            tolerance_us,
            key: key.clone(),
        };
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.retain(|_, w| w.strong_count() > 0);
        // Cells are only allocated for a limit that is new (a reload reuses the live ones).
        let state = match live.get(&id).and_then(Weak::upgrade) {
            Some(cells) => cells,
            None => {
                let cells = RateLimit::cells_for(&key);
                live.insert(id, Arc::downgrade(&cells));
                cells
            }
        };
        let (quota, window_s) = RateLimit::policy(spec);
        Ok(RateLimit {
            interval_us,
            tolerance_us,
            key,
            state,
            quota,
            window_s,
        })
    }
}

/// The rate limits of `config`, one per route that has one, by flat route index (the routes of
/// every site in order).
pub fn compile(
    config: &ir::Config,
    registry: &Registry,
) -> Result<Vec<Option<RateLimit>>, LimitError> {
    let mut out = Vec::new();
    for site in &config.sites {
        for route in &site.routes {
            out.push(match &route.rate_limit {
                Some(spec) => Some(registry.limit(site, route, spec)?),
                None => None,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(requests: u64, per_ms: u64, burst: u64, key: ir::RateKey) -> ir::RateLimit {
        ir::RateLimit {
            requests,
            per_ms,
            key,
            burst,
            at: ir::Loc::default(),
        }
    }

    #[test]
    fn a_fresh_key_gets_its_burst_then_one_request_per_interval() {
        let l = RateLimit::new(&spec(10, 1_000, 3, ir::RateKey::Global)).unwrap();
        let c = AtomicU64::new(0);
        let t0 = 5_000_000;
        for _ in 0..3 {
            assert_eq!(l.take(&c, t0), None);
        }
        // The fourth waits one interval (100 ms).
        assert_eq!(l.take(&c, t0), Some(100_000));
        assert_eq!(l.take(&c, t0 + 99_999), Some(1));
        assert_eq!(l.take(&c, t0 + 100_000), None);
        assert_eq!(l.take(&c, t0 + 100_000), Some(100_000));
        // Quiet for longer than the burst window: the whole burst again.
        let later = t0 + 10_000_000;
        for _ in 0..3 {
            assert_eq!(l.take(&c, later), None);
        }
        assert!(l.take(&c, later).is_some());
    }

    #[test]
    fn a_refused_request_does_not_use_up_budget() {
        let l = RateLimit::new(&spec(1, 1_000, 1, ir::RateKey::Global)).unwrap();
        let c = AtomicU64::new(0);
        assert_eq!(l.take(&c, 1_000_000), None);
        for i in 0..100 {
            assert!(l.take(&c, 1_000_000 + i).is_some());
        }
        assert_eq!(l.take(&c, 2_000_000), None);
    }

    #[test]
    fn a_refusal_states_the_policy_and_when_to_come_back() {
        let table = [
            (100, 1_000, "\"default\";q=100;w=1"),
            (1_000, 60_000, "\"default\";q=1000;w=60"),
            (5, 3_600_000, "\"default\";q=5;w=3600"),
            (1, 500, "\"default\";q=2;w=1"),
        ];
        for (requests, per_ms, policy) in table {
            let l = RateLimit::new(&spec(requests, per_ms, 1, ir::RateKey::Global)).unwrap();
            let reply = Reply {
                status: 429,
                slug: "rate-limited",
                title: "Too Many Requests",
                retry_after: Some(7),
            };
            let mut out = Vec::new();
            Stage::reply_fields(&l, &reply, &mut out);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                format!("RateLimit-Policy: {policy}\r\nRateLimit: \"default\";r=0;t=7\r\n")
            );
        }
    }

    #[test]
    fn rates_above_the_clock_resolution_and_empty_rates_are_refused() {
        assert!(RateLimit::new(&spec(1_000_000, 1_000, 1, ir::RateKey::Global)).is_ok());
        let e = RateLimit::new(&spec(2_000_000, 1_000, 1, ir::RateKey::Global))
            .err()
            .unwrap();
        assert!(
            e.message.contains("largest supported rate"),
            "{}",
            e.message
        );
        assert!(RateLimit::new(&spec(0, 1_000, 1, ir::RateKey::Global)).is_err());
        assert!(RateLimit::new(&spec(1, 1_000, 0, ir::RateKey::Global)).is_err());
    }

    #[test]
    fn huge_bursts_at_slow_rates_do_not_overflow() {
        let l = RateLimit::new(&spec(
            1,
            3_600_000,
            u64::from(u32::MAX),
            ir::RateKey::Global,
        ))
        .unwrap();
        let c = AtomicU64::new(0);
        for _ in 0..1000 {
            assert_eq!(l.take(&c, u64::MAX / 4), None);
        }
    }

    #[test]
    fn many_threads_together_get_exactly_the_burst() {
        let l = Arc::new(RateLimit::new(&spec(1, 3_600_000, 1_000, ir::RateKey::Global)).unwrap());
        let accepted = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (l, accepted) = (l.clone(), accepted.clone());
                std::thread::spawn(move || {
                    for _ in 0..1_000 {
                        if l.take(l.state.get(0), 1).is_none() {
                            accepted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(accepted.load(Ordering::Relaxed), 1_000);
    }

    fn site() -> ir::Site {
        ir::Site {
            hosts: vec![],
            routes: vec![],
            paths: Default::default(),
            redirect_https: None,
            hsts: None,
            at: ir::Loc::default(),
        }
    }

    #[test]
    fn the_registry_shares_unchanged_limits_and_renews_changed_ones() {
        let reg = Registry::new();
        let s = site();
        let route = ir::Route::new(
            ir::PathMatch::Prefix("/".into()),
            ir::Action::Respond {
                status: 200,
                body: String::new(),
                content_type: None,
            },
            ir::Loc::default(),
        );
        let a = reg
            .limit(&s, &route, &spec(10, 1_000, 10, ir::RateKey::ClientIp))
            .unwrap();
        let same = reg
            .limit(&s, &route, &spec(10, 1_000, 10, ir::RateKey::ClientIp))
            .unwrap();
        assert!(Arc::ptr_eq(&a.state, &same.state));
        let other = reg
            .limit(&s, &route, &spec(20, 1_000, 10, ir::RateKey::ClientIp))
            .unwrap();
        assert!(!Arc::ptr_eq(&a.state, &other.state));
        // Once nothing uses a limit, the same identity starts fresh.
        let old = Arc::downgrade(&a.state);
        drop((a, same));
        assert!(old.upgrade().is_none());
        let again = reg
            .limit(&s, &route, &spec(10, 1_000, 10, ir::RateKey::ClientIp))
            .unwrap();
        assert_eq!(again.state.values().into_iter().max(), None);
    }

    #[test]
    fn cells_are_allocated_in_chunks_on_first_use() {
        let l = RateLimit::new(&spec(10, 1_000, 1, ir::RateKey::ClientIp)).unwrap();
        assert_eq!(l.allocated_cells(), 0);
        let first = l.state.get(5);
        assert_eq!(l.take(first, 1_000_000), None);
        assert_eq!(l.allocated_cells(), CHUNK);
        // The same cell again, and another cell of the same chunk: nothing new.
        assert!(l.take(l.state.get(5), 1_000_000).is_some());
        assert_eq!(l.take(l.state.get(CHUNK - 1), 1_000_000), None);
        assert_eq!(l.allocated_cells(), CHUNK);
        // A cell of another chunk starts at zero, like every cell of a fresh table.
        assert_eq!(l.state.get(CELLS - 1).load(Ordering::Relaxed), 0);
        assert_eq!(l.allocated_cells(), 2 * CHUNK);
        let g = RateLimit::new(&spec(10, 1_000, 1, ir::RateKey::Global)).unwrap();
        assert_eq!(g.allocated_cells(), 0);
        assert_eq!(g.take(g.state.get(0), 1), None);
        assert_eq!(g.allocated_cells(), 1);
    }

    #[test]
    fn ten_thousand_limits_cost_kilobytes_until_used() {
        let limits: Vec<RateLimit> = (0..10_000)
            .map(|_| RateLimit::new(&spec(10, 1_000, 1, ir::RateKey::ClientIp)).unwrap())
            .collect();
        assert_eq!(
            limits.iter().map(RateLimit::allocated_cells).sum::<usize>(),
            0
        );
        assert_eq!(limits[0].state.chunks.len(), CELLS / CHUNK);
    }
}
