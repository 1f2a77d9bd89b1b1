//! Server selection policies, compiled once per upstream per core.

use crate::health::HealthView;
use crate::ir;
use std::net::IpAddr;
use std::time::Duration;

/// Why an upstream cannot be compiled into a balancer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BalanceError {
    NoServers { upstream: String },
    NoPrimary { upstream: String },
    ZeroWeight { upstream: String, server: String },
}

impl std::fmt::Display for BalanceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BalanceError::NoServers { upstream } => write!(f, "upstream {upstream} has no servers"),
            BalanceError::NoPrimary { upstream } => {
                write!(f, "upstream {upstream} has only backup servers")
            }
            BalanceError::ZeroWeight { upstream, server } => {
                write!(f, "server {server} of upstream {upstream} has weight 0")
            }
        }
    }
}

impl std::error::Error for BalanceError {}

/// What the request offers to a hashing policy. Only the field the policy's key names is read;
/// when it is absent the pick falls back to round robin over the eligible servers.
#[derive(Debug, Clone, Copy, Default)]
pub struct PickContext<'a> {
    pub client_ip: Option<IpAddr>,
    pub header: Option<&'a [u8]>,
    pub cookie: Option<&'a [u8]>,
}

/// How an attempt ended, for the latency EWMA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

#[derive(Debug)]
enum Policy {
    RoundRobin,
    Smooth,
    LeastConn,
    P2c,
    Hash(HashSource),
    Random,
}

#[derive(Debug, Clone, Copy)]
enum HashSource {
    ClientIp,
    Header,
    Cookie,
}

/// Maglev lookup table sizes (primes); the smallest one at least 100 × the server count is used,
/// which keeps the share of each server within about 1 % of 1/N.
const MAGLEV_SIZES: [usize; 5] = [5_003, 65_537, 131_071, 262_139, 655_373];

/// Latency a server is assumed to have before any sample, in microseconds.
const EWMA_START_US: f64 = 1_000.0;
/// Weight of a new latency sample in the EWMA.
const EWMA_ALPHA: f64 = 0.3;
/// Factor applied to the EWMA of the P2C candidate that loses. A server that is never picked
/// is never measured, so without this one slow sample (a cold connection) would keep it out of
/// rotation for good; decaying the loser's estimate brings it back for a new sample after
/// about ln(ratio)/0.02 lost draws (~230 draws for a server that looked 100× slower).
const P2C_LOSER_DECAY: f64 = 0.98;

/// A per-core balancer for one upstream. Not `Sync` by intent: each core owns its own.
#[derive(Debug)]
pub struct Balancer {
    policy: Policy,
    weight: Vec<u32>,
    backup: Vec<bool>,
    /// Smooth weighted round robin: nginx's `current_weight`.
    current: Vec<i64>,
    active: Vec<u32>,
    ewma_us: Vec<f64>,
    /// P2C: whether an attempt on the server has finished yet (its EWMA is a measurement).
    sampled: Vec<bool>,
    /// Passive ejections known to this core, one bit per server.
    ejected: Vec<u64>,
    cursor: usize,
    rng: u64,
    maglev_primary: Vec<u32>,
    maglev_backup: Vec<u32>,
}

impl Balancer {
    /// Compiles `up` with a fixed default seed for the random policies.
    pub fn new(up: &ir::Upstream) -> Result<Balancer, BalanceError> {
        Balancer::with_seed(up, 0x9E37_79B9_7F4A_7C15)
    }

    /// Compiles `up`; `seed` drives P2C and random choices (tests pass a fixed one, the engine
    /// a per-core one so cores do not move in lockstep).
    pub fn with_seed(up: &ir::Upstream, seed: u64) -> Result<Balancer, BalanceError> {
        if up.servers.is_empty() {
            return Err(BalanceError::NoServers {
                upstream: up.name.clone(),
            });
        }
        if up.servers.iter().all(|s| s.backup) {
            return Err(BalanceError::NoPrimary {
                upstream: up.name.clone(),
            });
        }
        if let Some(s) = up.servers.iter().find(|s| s.weight == 0) {
            return Err(BalanceError::ZeroWeight {
                upstream: up.name.clone(),
                server: s.addr.clone(),
            });
        }
        let n = up.servers.len();
        let weight: Vec<u32> = up.servers.iter().map(|s| s.weight).collect();
        let uniform = weight.iter().all(|&w| w == weight[0]);
        let policy = match &up.balance {
            ir::Balance::RoundRobin if uniform => Policy::RoundRobin,
            ir::Balance::RoundRobin => Policy::Smooth,
            ir::Balance::LeastConn => Policy::LeastConn,
            ir::Balance::P2c => Policy::P2c,
            ir::Balance::Hash(ir::HashKey::ClientIp) => Policy::Hash(HashSource::ClientIp),
            ir::Balance::Hash(ir::HashKey::Header(_)) => Policy::Hash(HashSource::Header),
            ir::Balance::Hash(ir::HashKey::Cookie(_)) => Policy::Hash(HashSource::Cookie),
            ir::Balance::Random => Policy::Random,
        };
        let backup: Vec<bool> = up.servers.iter().map(|s| s.backup).collect();
        let (maglev_primary, maglev_backup) = if matches!(policy, Policy::Hash(_)) {
            let prim: Vec<usize> = (0..n).filter(|&i| !backup[i]).collect();
            let back: Vec<usize> = (0..n).filter(|&i| backup[i]).collect();
            (maglev(up, &prim), maglev(up, &back))
        } else {
            (Vec::new(), Vec::new())
        };
        Ok(Balancer {
            policy,
            weight,
            backup,
            current: vec![0; n],
            active: vec![0; n],
            ewma_us: vec![EWMA_START_US; n],
            sampled: vec![false; n],
            ejected: vec![0; n.div_ceil(64)],
            cursor: 0,
            rng: seed | 1,
            maglev_primary,
            maglev_backup,
        })
    }

    /// Number of servers (primaries and backups), the range of returned indexes.
    pub fn len(&self) -> usize {
        self.weight.len()
    }

    /// Always false: an upstream without servers does not compile.
    pub fn is_empty(&self) -> bool {
        self.weight.is_empty()
    }

    /// Marks a server ejected (or restored) on this core, from [`crate::PassiveEjector`].
    pub fn set_ejected(&mut self, idx: usize, ejected: bool) {
        if idx < self.len() {
            let bit = 1u64 << (idx % 64);
            if ejected {
                self.ejected[idx / 64] |= bit;
            } else {
                self.ejected[idx / 64] &= !bit;
            }
        }
    }

    fn usable(&self, idx: usize, health: &HealthView, ejected_too: bool) -> bool {
        health.is_up(idx) && (ejected_too || self.ejected[idx / 64] & (1u64 << (idx % 64)) == 0)
    }

    /// Chooses a server. Primaries first; backups only when no primary is usable. `exclude`
    /// (the server of the previous attempt) is skipped unless it is the only usable one.
    /// Passive ejection never takes out the last servers: when every server that active
    /// health says up is ejected, the pick ignores ejections (like Envoy's panic threshold, and
    /// nginx never marks a lone server unavailable), so a single-server upstream whose server
    /// failed a few times is still tried rather than answered 503 for the whole back-off.
    /// `None` when every server is down. Allocates nothing.
    pub fn pick(
        &mut self,
        ctx: &PickContext,
        health: &HealthView,
        exclude: Option<usize>,
    ) -> Option<usize> {
        for ejected_too in [false, true] {
            for backup in [false, true] {
                for honour_exclude in [true, false] {
                    let ex = if honour_exclude { exclude } else { None };
                    let mask = Eligible {
                        backup,
                        exclude: ex,
                        ejected_too,
                    };
                    if self.count(&mask, health) > 0 {
                        return Some(self.pick_in(ctx, health, &mask));
                    }
                }
            }
        }
        None
    }

    fn ok(&self, i: usize, m: &Eligible, health: &HealthView) -> bool {
        self.backup[i] == m.backup && Some(i) != m.exclude && self.usable(i, health, m.ejected_too)
    }

    fn count(&self, m: &Eligible, health: &HealthView) -> usize {
        (0..self.len()).filter(|&i| self.ok(i, m, health)).count()
    }

    fn pick_in(&mut self, ctx: &PickContext, health: &HealthView, m: &Eligible) -> usize {
        match self.policy {
            Policy::RoundRobin => self.round_robin(health, m),
            Policy::Smooth => {
                let mut total = 0i64;
                let mut best: Option<usize> = None;
                for i in 0..self.len() {
                    if !self.ok(i, m, health) {
                        continue;
                    }
                    self.current[i] += i64::from(self.weight[i]);
                    total += i64::from(self.weight[i]);
                    if best.is_none_or(|b| self.current[i] > self.current[b]) {
                        best = Some(i);
                    }
                }
                // pick_in is only called when at least one server is eligible.
                let b = best.unwrap_or(0);
                self.current[b] -= total;
                b
            }
            Policy::LeastConn => {
                // Start the scan at a rotating cursor so ties spread instead of piling on index 0.
                let n = self.len();
                let start = self.cursor;
                self.cursor = (self.cursor + 1) % n;
                let mut best: Option<usize> = None;
                for k in 0..n {
                    let i = (start + k) % n;
                    if !self.ok(i, m, health) {
                        continue;
                    }
                    let better = best.is_none_or(|b| {
                        u64::from(self.active[i]) * u64::from(self.weight[b])
                            < u64::from(self.active[b]) * u64::from(self.weight[i])
                    });
                    if better {
                        best = Some(i);
                    }
                }
                best.unwrap_or(0)
            }
            Policy::P2c => {
                let c = self.count(m, health);
                let ra = (self.next_rand() % c as u64) as usize;
                let a = self.nth(m, health, ra);
                if c == 1 {
                    return a;
                }
                let mut k = (self.next_rand() % (c as u64 - 1)) as usize;
                let ka = self.rank(m, health, a);
                if k >= ka {
                    k += 1;
                }
                let b = self.nth(m, health, k);
                // A server never measured, with nothing in flight, is tried before a measured
                // one: one attempt gives it a real estimate (a new server, or one added by a
                // reload, is not judged on the 1 ms guess against servers measured faster).
                let fresh = |i: usize| !self.sampled[i] && self.active[i] == 0;
                let (win, lose) = match (fresh(a), fresh(b)) {
                    (true, false) => (a, b),
                    (false, true) => (b, a),
                    _ if self.load(a) <= self.load(b) => (a, b),
                    _ => (b, a),
                };
                self.ewma_us[lose] *= P2C_LOSER_DECAY;
                win
            }
            Policy::Random => {
                let total: u64 = (0..self.len())
                    .filter(|&i| self.ok(i, m, health))
                    .map(|i| u64::from(self.weight[i]))
                    .sum();
                let mut r = self.next_rand() % total;
                for i in 0..self.len() {
                    if self.ok(i, m, health) {
                        let w = u64::from(self.weight[i]);
                        if r < w {
                            return i;
                        }
                        r -= w;
                    }
                }
                self.round_robin(health, m)
            }
            Policy::Hash(src) => {
                let key = match src {
                    HashSource::ClientIp => ctx.client_ip.map(|ip| match ip {
                        IpAddr::V4(v) => hash_bytes(&v.octets()),
                        IpAddr::V6(v) => hash_bytes(&v.octets()),
                    }),
                    HashSource::Header => ctx.header.map(hash_bytes),
                    HashSource::Cookie => ctx.cookie.map(hash_bytes),
                };
                let Some(h) = key else {
                    return self.round_robin(health, m);
                };
                let table = if m.backup {
                    &self.maglev_backup
                } else {
                    &self.maglev_primary
                };
                if table.is_empty() {
                    return self.round_robin(health, m);
                }
                // Walk the table from the key's slot: a down server's keys spread over the
                // others while every other key keeps its server.
                let start = (h % table.len() as u64) as usize;
                for k in 0..table.len() {
                    let i = table[(start + k) % table.len()] as usize;
                    if self.ok(i, m, health) {
                        return i;
                    }
                }
                self.round_robin(health, m)
            }
        }
    }

    fn round_robin(&mut self, health: &HealthView, m: &Eligible) -> usize {
        let n = self.len();
        for k in 0..n {
            let i = (self.cursor + k) % n;
            if self.ok(i, m, health) {
                self.cursor = (i + 1) % n;
                return i;
            }
        }
        0
    }

    fn nth(&self, m: &Eligible, health: &HealthView, k: usize) -> usize {
        (0..self.len())
            .filter(|&i| self.ok(i, m, health))
            .nth(k)
            .unwrap_or(0)
    }

    fn rank(&self, m: &Eligible, health: &HealthView, idx: usize) -> usize {
        (0..idx).filter(|&i| self.ok(i, m, health)).count()
    }

    /// P2C score: expected latency of one more request, per unit of weight.
    fn load(&self, i: usize) -> f64 {
        self.ewma_us[i] * f64::from(self.active[i] + 1) / f64::from(self.weight[i])
    }

    fn next_rand(&mut self) -> u64 {
        // xorshift64*: tiny, fast, seedable; quality is ample for spreading load.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// An attempt to server `idx` started (a connection or a request is in flight).
    pub fn on_start(&mut self, idx: usize) {
        if let Some(a) = self.active.get_mut(idx) {
            *a = a.saturating_add(1);
        }
    }

    /// The attempt to `idx` ended after `latency`. A failure counts as at least twice the
    /// current average, so a failing server looks slow to P2C rather than fast.
    pub fn on_finish(&mut self, idx: usize, latency: Duration, outcome: Outcome) {
        if idx >= self.len() {
            return;
        }
        self.active[idx] = self.active[idx].saturating_sub(1);
        let mut sample = latency.as_micros() as f64;
        if outcome == Outcome::Failure {
            sample = sample.max(self.ewma_us[idx] * 2.0);
        }
        self.ewma_us[idx] += (sample - self.ewma_us[idx]) * EWMA_ALPHA;
        self.sampled[idx] = true;
    }

    /// In-flight attempts on `idx` as seen by this core.
    pub fn active(&self, idx: usize) -> u32 {
        self.active.get(idx).copied().unwrap_or(0)
    }
}

struct Eligible {
    backup: bool,
    exclude: Option<usize>,
    /// Passively ejected servers count as usable (every usable server is ejected).
    ejected_too: bool,
}

/// FNV-1a followed by a SplitMix64 finaliser, so short keys (IPv4 addresses) spread well.
fn hash_bytes(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &x in b {
        h ^= u64::from(x);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix(h)
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Builds a Maglev lookup table (Eisenbud et al., NSDI 2016) over `members`, weighted by
/// giving each member as many turns per round as its weight. Keyed by the server address so
/// the table does not depend on the order of servers in the file.
fn maglev(up: &ir::Upstream, members: &[usize]) -> Vec<u32> {
    if members.is_empty() {
        return Vec::new();
    }
    let n = members.len();
    let m = MAGLEV_SIZES
        .iter()
        .copied()
        .find(|&s| s >= 100 * n)
        .unwrap_or(MAGLEV_SIZES[MAGLEV_SIZES.len() - 1]);
    let perm: Vec<(u64, u64)> = members
        .iter()
        .map(|&i| {
            let a = up.servers[i].addr.as_bytes();
            let offset = hash_bytes(a) % m as u64;
            let skip = mix(hash_bytes(a) ^ 0x5851_f42d_4c95_7f2d) % (m as u64 - 1) + 1;
            (offset, skip)
        })
        .collect();
    let mut next = vec![0u64; n];
    let mut table = vec![u32::MAX; m];
    let mut filled = 0;
    'outer: loop {
        for (j, &idx) in members.iter().enumerate() {
            for _ in 0..up.servers[idx].weight {
                let (offset, skip) = perm[j];
                let mut c = ((offset + next[j] * skip) % m as u64) as usize;
                while table[c] != u32::MAX {
                    next[j] += 1;
                    c = ((offset + next[j] * skip) % m as u64) as usize;
                }
                table[c] = idx as u32;
                next[j] += 1;
                filled += 1;
                if filled == m {
                    break 'outer;
                }
            }
        }
    }
    table
}
