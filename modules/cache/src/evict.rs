//! Admission and eviction: which object leaves when the byte bound is reached, and whether a
//! new object gets in at all.
//!
//! Three candidates implement [`Policy`], all weighted by bytes: [`Lru`], the baseline most
//! proxies use; [`WTinyLfu`], a small LRU window in front of a main LRU guarded by a
//! count-min frequency sketch (Caffeine's design, without the segmented main); and [`S3Fifo`]
//! (Yang et al., SOSP 2023): a small FIFO that filters one-hit wonders, a main FIFO with
//! reinsertion, and a ghost list of recently filtered keys. The shard uses [`S3Fifo`]: the
//! simulation in `examples/eviction.rs` and the figures in `docs/cache.md` say why.
//!
//! Queues are `VecDeque`s with lazy deletion: removing an object forgets its metadata, and its
//! stale queue entry is skipped when it reaches the front. A hit is a counter increment (FIFO)
//! rather than a list splice, which is what makes S3-FIFO cheap on the hit path.

use std::collections::VecDeque;

use hashbrown::HashMap;

/// An object's identity in the shard; never reused.
pub type Id = u64;

/// An eviction policy over byte-weighted objects.
pub trait Policy {
    /// Records a lookup of the key hashing to `hash`, hit or miss (frequency estimators count
    /// these).
    fn record(&mut self, hash: u64) {
        let _ = hash;
    }
    /// `id` was served.
    fn hit(&mut self, id: Id);
    /// Offers a new object. Objects that must leave to make room are pushed to `evicted` (the
    /// caller removes them); `false` if the policy refused the new object (then it is not
    /// tracked and the caller must not store it).
    fn insert(&mut self, id: Id, hash: u64, weight: u64, evicted: &mut Vec<Id>) -> bool;
    /// Forgets `id` (purged, replaced or expired).
    fn remove(&mut self, id: Id);
    /// Bytes currently tracked.
    fn used(&self) -> u64;
}

/// Least recently used, by bytes.
#[derive(Debug)]
pub struct Lru {
    cap: u64,
    used: u64,
    stamp: u64,
    meta: HashMap<Id, (u64, u64)>,
    queue: VecDeque<(Id, u64)>,
}

impl Lru {
    /// An empty LRU holding at most `cap` bytes.
    pub fn new(cap: u64) -> Self {
        Lru {
            cap,
            used: 0,
            stamp: 0,
            meta: HashMap::new(),
            queue: VecDeque::new(),
        }
    }

    fn push(&mut self, id: Id) {
        self.stamp += 1;
        if let Some(m) = self.meta.get_mut(&id) {
            m.1 = self.stamp;
            self.queue.push_back((id, self.stamp));
        }
        if self.queue.len() > 2 * self.meta.len() + 64 {
            let meta = &self.meta;
            self.queue
                .retain(|(id, s)| meta.get(id).is_some_and(|m| m.1 == *s));
        }
    }

    /// The least recently used object, without removing it.
    fn coldest(&mut self) -> Option<Id> {
        while let Some(&(id, s)) = self.queue.front() {
            if self.meta.get(&id).is_some_and(|m| m.1 == s) {
                return Some(id);
            }
            self.queue.pop_front();
        }
        None
    }

    fn weight_of(&self, id: Id) -> u64 {
        self.meta.get(&id).map_or(0, |m| m.0)
    }

    fn add(&mut self, id: Id, weight: u64) {
        self.meta.insert(id, (weight, 0));
        self.used += weight;
        self.push(id);
    }
}

impl Policy for Lru {
    fn hit(&mut self, id: Id) {
        self.push(id);
    }

    fn insert(&mut self, id: Id, _hash: u64, weight: u64, evicted: &mut Vec<Id>) -> bool {
        if weight > self.cap {
            return false;
        }
        self.add(id, weight);
        while self.used > self.cap {
            let Some(victim) = self.coldest() else { break };
            self.remove(victim);
            evicted.push(victim);
        }
        true
    }

    fn remove(&mut self, id: Id) {
        if let Some((w, _)) = self.meta.remove(&id) {
            self.used -= w;
        }
    }

    fn used(&self) -> u64 {
        self.used
    }
}

/// A count-min sketch of 4-bit counters that halves itself periodically, so that old
/// popularity fades (TinyLFU's reset).
#[derive(Debug)]
pub struct Sketch {
    rows: [Vec<u8>; 4],
    mask: u64,
    added: u64,
    period: u64,
}

impl Sketch {
    /// A sketch sized for about `items` distinct hot keys.
    pub fn new(items: usize) -> Self {
        let width = items.max(64).next_power_of_two();
        Sketch {
            rows: std::array::from_fn(|_| vec![0; width]),
            mask: width as u64 - 1,
            added: 0,
            period: 10 * width as u64,
        }
    }

    fn index(&self, hash: u64, row: usize) -> usize {
        let h = hash.wrapping_mul(0x9E37_79B9_7F4A_7C15_u64.wrapping_add(2 * row as u64 + 1));
        ((h ^ (h >> 29)) & self.mask) as usize
    }

    /// Counts one occurrence.
    pub fn increment(&mut self, hash: u64) {
        for r in 0..4 {
            let i = self.index(hash, r);
            self.rows[r][i] = (self.rows[r][i] + 1).min(15);
        }
        self.added += 1;
        if self.added >= self.period {
            self.added /= 2;
            for row in &mut self.rows {
                row.iter_mut().for_each(|c| *c /= 2);
            }
        }
    }

    /// The estimated count.
    pub fn estimate(&self, hash: u64) -> u8 {
        (0..4)
            .map(|r| self.rows[r][self.index(hash, r)])
            .min()
            .unwrap_or(0)
    }
}

/// A 1% LRU window in front of a main LRU; a candidate leaving the window enters the main
/// area only if the sketch says it is more popular than what it would displace.
#[derive(Debug)]
pub struct WTinyLfu {
    window: Lru,
    main: Lru,
    hashes: HashMap<Id, u64>,
    sketch: Sketch,
}

impl WTinyLfu {
    /// An empty policy holding at most `cap` bytes, sized for about `items` objects.
    pub fn new(cap: u64, items: usize) -> Self {
        let window = (cap / 100).max(1);
        WTinyLfu {
            window: Lru::new(window),
            main: Lru::new(cap - window),
            hashes: HashMap::new(),
            sketch: Sketch::new(items),
        }
    }
}

impl Policy for WTinyLfu {
    fn record(&mut self, hash: u64) {
        self.sketch.increment(hash);
    }

    fn hit(&mut self, id: Id) {
        if self.window.meta.contains_key(&id) {
            self.window.hit(id);
        } else {
            self.main.hit(id);
        }
    }

    fn insert(&mut self, id: Id, hash: u64, weight: u64, evicted: &mut Vec<Id>) -> bool {
        if weight > self.main.cap {
            return false;
        }
        self.hashes.insert(id, hash);
        // Too big for the window: straight to the admission contest.
        let mut candidates = Vec::new();
        if weight > self.window.cap {
            candidates.push((id, weight));
        } else {
            self.window.add(id, weight);
            while self.window.used > self.window.cap {
                let Some(c) = self.window.coldest() else {
                    break;
                };
                let w = self.window.weight_of(c);
                self.window.remove(c);
                candidates.push((c, w));
            }
        }
        let mut admitted = true;
        for (c, w) in candidates {
            // Every id in the window or the main area has its hash recorded in `hashes`.
            let freq = self.sketch.estimate(self.hashes[&c]);
            // One contest against the coldest main object, as Caffeine does.
            let admit = match self.main.coldest() {
                Some(v) if self.main.used + w > self.main.cap => {
                    self.sketch.estimate(self.hashes[&v]) < freq
                }
                _ => true,
            };
            if admit {
                while self.main.used + w > self.main.cap {
                    let Some(v) = self.main.coldest() else { break };
                    self.main.remove(v);
                    self.hashes.remove(&v);
                    evicted.push(v);
                }
                self.main.add(c, w);
            } else {
                self.hashes.remove(&c);
                if c == id {
                    admitted = false;
                } else {
                    evicted.push(c);
                }
            }
        }
        admitted
    }

    fn remove(&mut self, id: Id) {
        self.window.remove(id);
        self.main.remove(id);
        self.hashes.remove(&id);
    }

    fn used(&self) -> u64 {
        self.window.used + self.main.used
    }
}

#[derive(Debug)]
struct Meta {
    weight: u64,
    hash: u64,
    freq: u8,
    main: bool,
}

/// S3-FIFO: 10% small FIFO, 90% main FIFO with reinsertion, ghost keys remembered for the
/// main queue's size.
#[derive(Debug)]
pub struct S3Fifo {
    cap: u64,
    small_cap: u64,
    small_used: u64,
    main_used: u64,
    promote_at: u8,
    meta: HashMap<Id, Meta>,
    small: VecDeque<Id>,
    main: VecDeque<Id>,
    ghost: VecDeque<(u64, u64)>,
    ghost_set: HashMap<u64, u32>,
    ghost_used: u64,
}

impl S3Fifo {
    /// An empty S3-FIFO holding at most `cap` bytes; an object seen again while in the small
    /// queue moves to main when its hit count reaches 1.
    pub fn new(cap: u64) -> Self {
        Self::with_threshold(cap, 1)
    }

    /// As [`S3Fifo::new`] with the small-to-main promotion threshold `promote_at`.
    pub fn with_threshold(cap: u64, promote_at: u8) -> Self {
        S3Fifo {
            cap,
            small_cap: (cap / 10).max(1),
            small_used: 0,
            main_used: 0,
            promote_at,
            meta: HashMap::new(),
            small: VecDeque::new(),
            main: VecDeque::new(),
            ghost: VecDeque::new(),
            ghost_set: HashMap::new(),
            ghost_used: 0,
        }
    }

    fn evict_one(&mut self, evicted: &mut Vec<Id>) -> bool {
        let small_first = self.small_used > self.small_cap || self.main_used == 0;
        if small_first && self.evict_small(evicted) {
            return true;
        }
        self.evict_main(evicted) || self.evict_small(evicted)
    }

    fn evict_small(&mut self, evicted: &mut Vec<Id>) -> bool {
        while let Some(id) = self.small.pop_front() {
            let Some(m) = self.meta.get_mut(&id) else {
                continue;
            };
            if m.main {
                continue;
            }
            if m.freq >= self.promote_at {
                m.main = true;
                m.freq = 0;
                self.small_used -= m.weight;
                self.main_used += m.weight;
                self.main.push_back(id);
                continue;
            }
            let (w, h) = (m.weight, m.hash);
            self.meta.remove(&id);
            self.small_used -= w;
            self.remember(h, w);
            evicted.push(id);
            return true;
        }
        false
    }

    fn evict_main(&mut self, evicted: &mut Vec<Id>) -> bool {
        while let Some(id) = self.main.pop_front() {
            let Some(m) = self.meta.get_mut(&id) else {
                continue;
            };
            if !m.main {
                continue;
            }
            if m.freq > 0 {
                m.freq -= 1;
                self.main.push_back(id);
                continue;
            }
            let w = m.weight;
            self.meta.remove(&id);
            self.main_used -= w;
            evicted.push(id);
            return true;
        }
        false
    }

    fn remember(&mut self, hash: u64, weight: u64) {
        *self.ghost_set.entry(hash).or_insert(0) += 1;
        self.ghost.push_back((hash, weight));
        self.ghost_used += weight;
        while self.ghost_used > self.cap - self.small_cap {
            let Some((h, w)) = self.ghost.pop_front() else {
                break;
            };
            self.ghost_used -= w;
            if let Some(n) = self.ghost_set.get_mut(&h) {
                *n -= 1;
                if *n == 0 {
                    self.ghost_set.remove(&h);
                }
            }
        }
    }

    fn compact(&mut self) {
        let meta = &self.meta;
        if self.small.len() > 2 * meta.len() + 64 {
            self.small
                .retain(|id| meta.get(id).is_some_and(|m| !m.main));
        }
        if self.main.len() > 2 * meta.len() + 64 {
            self.main.retain(|id| meta.get(id).is_some_and(|m| m.main));
        }
    }
}

impl Policy for S3Fifo {
    fn hit(&mut self, id: Id) {
        if let Some(m) = self.meta.get_mut(&id) {
            m.freq = (m.freq + 1).min(3);
        }
    }

    fn insert(&mut self, id: Id, hash: u64, weight: u64, evicted: &mut Vec<Id>) -> bool {
        if weight > self.cap - self.small_cap {
            return false;
        }
        let main = self.ghost_set.contains_key(&hash);
        self.meta.insert(
            id,
            Meta {
                weight,
                hash,
                freq: 0,
                main,
            },
        );
        if main {
            self.main_used += weight;
            self.main.push_back(id);
        } else {
            self.small_used += weight;
            self.small.push_back(id);
        }
        while self.small_used + self.main_used > self.cap {
            if !self.evict_one(evicted) {
                break;
            }
        }
        self.compact();
        true
    }

    fn remove(&mut self, id: Id) {
        if let Some(m) = self.meta.remove(&id) {
            if m.main {
                self.main_used -= m.weight;
            } else {
                self.small_used -= m.weight;
            }
        }
    }

    fn used(&self) -> u64 {
        self.small_used + self.main_used
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(p: &mut dyn Policy, cap: u64) {
        let mut live = std::collections::HashSet::new();
        let mut ev = Vec::new();
        for id in 0..10_000u64 {
            let w = 1 + id % 97;
            ev.clear();
            if p.insert(id, id % 3000, w, &mut ev) {
                live.insert(id);
            }
            for e in &ev {
                assert!(live.remove(e), "evicted {e} twice or never inserted");
            }
            if id % 3 == 0 {
                p.hit(id / 2);
            }
            assert!(p.used() <= cap);
        }
    }

    #[test]
    fn every_policy_stays_within_its_bound() {
        check(&mut Lru::new(5000), 5000);
        check(&mut S3Fifo::new(5000), 5000);
        check(&mut WTinyLfu::new(5000, 100), 5000);
    }
}
