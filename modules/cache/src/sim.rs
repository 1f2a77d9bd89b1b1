//! A deterministic trace simulator for choosing the eviction policy: it replays synthetic
//! request traces against each [`Policy`] and reports hit ratios. `examples/eviction.rs`
//! prints the table in `docs/cache.md`; a test replays a smaller trace so that the choice
//! stays justified as the policies change.

use hashbrown::HashMap;

use crate::evict::{Id, Policy};

/// SplitMix64: a small deterministic generator, so every run replays the same trace.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform float in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Draws ranks 0..n with probability proportional to 1/(rank+1)^s.
#[derive(Debug, Clone)]
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    /// A Zipf distribution over `n` ranks with exponent `s`.
    pub fn new(n: usize, s: f64) -> Self {
        let mut cdf = Vec::with_capacity(n);
        let mut total = 0.0;
        for r in 0..n {
            total += 1.0 / ((r + 1) as f64).powf(s);
            cdf.push(total);
        }
        cdf.iter_mut().for_each(|c| *c /= total);
        Zipf { cdf }
    }

    /// A rank.
    pub fn sample(&self, rng: &mut Rng) -> usize {
        let u = rng.unit();
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }
}

/// An object's size in bytes, fixed per key: mostly small, a tail of large ones
/// (60% 1–4 KiB, 30% 4–32 KiB, 10% 32–256 KiB).
pub fn size_of(key: u64) -> u64 {
    let mut r = Rng::new(key ^ 0x5151_5151);
    let class = r.next_u64() % 10;
    let (lo, hi) = match class {
        0..=5 => (1 << 10, 4 << 10),
        6..=8 => (4 << 10, 32 << 10),
        _ => (32 << 10, 256 << 10),
    };
    lo + r.next_u64() % (hi - lo)
}

/// A synthetic workload.
#[derive(Debug, Clone, Copy)]
pub enum Workload {
    /// Zipf over `keys` keys.
    Zipf {
        /// Distinct keys.
        keys: usize,
        /// Exponent.
        s: f64,
    },
    /// Zipf, with every other request for a key never seen before (a crawler or an
    /// attacker flooding unique URLs).
    ZipfWithFlood {
        /// Distinct popular keys.
        keys: usize,
        /// Exponent.
        s: f64,
    },
    /// Zipf whose popular keys change every `period` requests.
    Shifting {
        /// Distinct keys per phase.
        keys: usize,
        /// Exponent.
        s: f64,
        /// Requests per phase.
        period: usize,
    },
}

/// The result of one replay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ratio {
    /// Requests served from the cache, as a fraction of requests.
    pub hits: f64,
    /// Bytes served from the cache, as a fraction of bytes requested.
    pub bytes: f64,
}

/// The trace of a workload: `requests` keys, deterministic for a seed.
pub fn trace(w: Workload, requests: usize, seed: u64) -> Vec<u64> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(requests);
    match w {
        Workload::Zipf { keys, s } => {
            let z = Zipf::new(keys, s);
            for _ in 0..requests {
                out.push(scramble(z.sample(&mut rng) as u64));
            }
        }
        Workload::ZipfWithFlood { keys, s } => {
            let z = Zipf::new(keys, s);
            for i in 0..requests {
                if i % 2 == 0 {
                    out.push(scramble(z.sample(&mut rng) as u64));
                } else {
                    out.push(scramble((1 << 40) + i as u64));
                }
            }
        }
        Workload::Shifting { keys, s, period } => {
            let z = Zipf::new(keys, s);
            for i in 0..requests {
                let phase = (i / period) as u64;
                // Half of each phase's key space is new: popularity drifts.
                let rank = z.sample(&mut rng) as u64;
                out.push(scramble(rank + phase * (keys as u64 / 2)));
            }
        }
    }
    out
}

fn scramble(k: u64) -> u64 {
    let mut r = Rng::new(k);
    r.next_u64()
}

/// Replays `trace` against `policy`, a cache of the policy's capacity.
pub fn replay(policy: &mut dyn Policy, trace: &[u64]) -> Ratio {
    let mut resident: HashMap<u64, Id> = HashMap::new();
    let mut keys: HashMap<Id, u64> = HashMap::new();
    let mut next: Id = 0;
    let (mut hits, mut hit_bytes, mut total_bytes) = (0u64, 0u64, 0u64);
    let mut evicted = Vec::new();
    for &k in trace {
        let size = size_of(k);
        total_bytes += size;
        policy.record(k);
        if let Some(&id) = resident.get(&k) {
            hits += 1;
            hit_bytes += size;
            policy.hit(id);
            continue;
        }
        next += 1;
        evicted.clear();
        if policy.insert(next, k, size, &mut evicted) {
            resident.insert(k, next);
            keys.insert(next, k);
        }
        for id in &evicted {
            if let Some(key) = keys.remove(id) {
                resident.remove(&key);
            }
        }
    }
    Ratio {
        hits: hits as f64 / trace.len().max(1) as f64,
        bytes: hit_bytes as f64 / total_bytes.max(1) as f64,
    }
}

/// The total size of the distinct keys in `trace`.
pub fn footprint(trace: &[u64]) -> u64 {
    let mut seen = hashbrown::HashSet::new();
    trace
        .iter()
        .filter(|k| seen.insert(**k))
        .map(|k| size_of(*k))
        .sum()
}
