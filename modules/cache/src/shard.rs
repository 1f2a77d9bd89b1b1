//! The per-core store: stored responses by URI, each URI holding its variants (by `Vary`
//! selection and extra key), bounded by accounted bytes, with purge by URI, prefix and tag.
//!
//! Every object is accounted as its URI, extra key, stored fields, selection, tags, body and a
//! fixed overhead for the maps' entries; the sum never exceeds the capacity, checked after
//! every insertion. Objects are `Rc<Stored>`: a hit clones a pointer, and an object evicted or
//! purged while a response is still being written stays alive until that write ends.

use std::rc::Rc;

use bytes::Bytes;
use hashbrown::{HashMap, HashSet};

use crate::evict::{Id, Policy, S3Fifo};
use crate::fields::Fields;
use crate::freshness::{Source, Timing};
use crate::vary::Selection;
use crate::Time;

/// Bytes charged per object for map entries, queue slots and the `Rc` header.
pub const OVERHEAD: usize = 160;

/// The reuse rules of a stored response, derived from its fields whenever they change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// Freshness lifetime in seconds.
    pub lifetime: u32,
    /// Where it came from.
    pub source: Source,
    /// `no-cache`: validate before every use.
    pub no_cache: bool,
    /// `must-revalidate`, `proxy-revalidate` or `s-maxage`: never served stale.
    pub must_revalidate: bool,
    /// `stale-while-revalidate` seconds.
    pub stale_while_revalidate: u32,
    /// `stale-if-error` seconds.
    pub stale_if_error: u32,
}

/// A stored response.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The key's URI.
    pub uri: Box<[u8]>,
    /// The key's extra part.
    pub extra: Box<[u8]>,
    /// Status code.
    pub status: u16,
    /// Stored fields (hop-by-hop and refused fields removed; `Age` kept as received).
    pub headers: Fields,
    /// The complete body.
    pub body: Bytes,
    /// Times for the age calculation.
    pub timing: Timing,
    /// Reuse rules.
    pub rules: Rules,
    /// The request's values of the response's `Vary` fields.
    pub selection: Selection,
    /// Surrogate keys (`Surrogate-Key`, `Cache-Tag`).
    pub tags: Vec<Box<[u8]>>,
    /// When it was stored or last refreshed, to prefer the newest of several matches.
    pub stored_at: Time,
}

impl Stored {
    /// Accounted bytes.
    pub fn weight(&self) -> usize {
        OVERHEAD
            + self.uri.len()
            + self.extra.len()
            + self.headers.weight()
            + self.selection.weight()
            + self.tags.iter().map(|t| t.len() + 16).sum::<usize>()
            + self.body.len()
    }
}

struct Object {
    stored: Rc<Stored>,
    weight: usize,
}

/// A byte-bounded store of one core.
pub struct Shard<P: Policy = S3Fifo> {
    capacity: usize,
    bytes: usize,
    next: Id,
    by_uri: HashMap<Box<[u8]>, Vec<Id>>,
    objects: HashMap<Id, Object>,
    tags: HashMap<Box<[u8]>, HashSet<Id>>,
    policy: P,
    evicted: Vec<Id>,
    evictions: u64,
}

impl Shard<S3Fifo> {
    /// An empty shard bounded by `capacity` accounted bytes, evicting with S3-FIFO.
    pub fn new(capacity: usize) -> Self {
        Shard::with_policy(capacity, S3Fifo::new(capacity as u64))
    }
}

impl<P: Policy> Shard<P> {
    /// An empty shard with a given policy (whose own bound must be `capacity`).
    pub fn with_policy(capacity: usize, policy: P) -> Self {
        Shard {
            capacity,
            bytes: 0,
            next: 1,
            by_uri: HashMap::new(),
            objects: HashMap::new(),
            tags: HashMap::new(),
            policy,
            evicted: Vec::new(),
            evictions: 0,
        }
    }

    /// Accounted bytes now stored.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The bound.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Number of stored objects.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Objects evicted for room so far.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Counts a lookup of `uri` for the admission policy.
    pub fn record(&mut self, uri: &[u8]) {
        self.policy.record(hash(uri));
    }

    /// The objects stored under `uri`, newest first, with their ids.
    pub fn variants(&self, uri: &[u8]) -> impl Iterator<Item = (Id, &Rc<Stored>)> {
        self.by_uri
            .get(uri)
            .into_iter()
            .flatten()
            .filter_map(|id| self.objects.get(id).map(|o| (*id, &o.stored)))
    }

    /// Tells the policy `id` was served.
    pub fn touch(&mut self, id: Id) {
        self.policy.hit(id);
    }

    /// The object `id`, if still stored.
    pub fn get(&self, id: Id) -> Option<&Rc<Stored>> {
        self.objects.get(&id).map(|o| &o.stored)
    }

    /// Stores `stored`, replacing an object of the same URI, extra key and selection. Returns
    /// the new id, or `None` if it is larger than the bound or the policy refused it.
    pub fn insert(&mut self, stored: Stored) -> Option<Id> {
        let weight = stored.weight();
        if weight > self.capacity {
            return None;
        }
        let replaced: Vec<Id> = self
            .variants(&stored.uri)
            .filter(|(_, s)| s.extra == stored.extra && s.selection == stored.selection)
            .map(|(id, _)| id)
            .collect();
        for id in replaced {
            self.remove(id);
        }
        let id = self.next;
        self.next += 1;
        let mut evicted = std::mem::take(&mut self.evicted);
        evicted.clear();
        let admitted = self
            .policy
            .insert(id, hash(&stored.uri), weight as u64, &mut evicted);
        for victim in evicted.drain(..) {
            self.evictions += 1;
            self.forget(victim);
        }
        self.evicted = evicted;
        if !admitted {
            return None;
        }
        for t in &stored.tags {
            self.tags.entry(t.clone()).or_default().insert(id);
        }
        let ids = self.by_uri.entry(stored.uri.clone()).or_default();
        ids.insert(0, id);
        self.objects.insert(
            id,
            Object {
                stored: Rc::new(stored),
                weight,
            },
        );
        self.bytes += weight;
        // The policy evicts until its own total fits; the shard's count is the same sum.
        debug_assert_eq!(self.bytes as u64, self.policy.used());
        debug_assert!(self.bytes <= self.capacity);
        Some(id)
    }

    /// Replaces object `id` in place with `stored` (same URI; after a 304 merge), keeping its
    /// place in the policy only when the weight did not change.
    pub fn replace(&mut self, id: Id, stored: Stored) -> Option<Id> {
        let same = self
            .objects
            .get(&id)
            .is_some_and(|o| o.weight == stored.weight() && o.stored.tags == stored.tags);
        if same {
            if let Some(o) = self.objects.get_mut(&id) {
                o.stored = Rc::new(stored);
            }
            return Some(id);
        }
        self.remove(id);
        self.insert(stored)
    }

    /// Removes object `id`.
    pub fn remove(&mut self, id: Id) {
        self.policy.remove(id);
        self.forget(id);
    }

    /// Drops `id` from the maps (the policy already forgot it).
    fn forget(&mut self, id: Id) {
        let Some(o) = self.objects.remove(&id) else {
            return;
        };
        self.bytes -= o.weight;
        if let Some(ids) = self.by_uri.get_mut(&o.stored.uri) {
            ids.retain(|i| *i != id);
            if ids.is_empty() {
                self.by_uri.remove(&o.stored.uri);
            }
        }
        for t in &o.stored.tags {
            if let Some(set) = self.tags.get_mut(t) {
                set.remove(&id);
                if set.is_empty() {
                    self.tags.remove(t);
                }
            }
        }
    }

    /// Removes every variant stored under `uri`; returns how many.
    pub fn purge_uri(&mut self, uri: &[u8]) -> usize {
        let ids = self.by_uri.get(uri).cloned().unwrap_or_default();
        for id in &ids {
            self.remove(*id);
        }
        ids.len()
    }

    /// Removes every object whose URI starts with `prefix`; returns how many. A scan of the
    /// URIs: an operator action, not a request path.
    pub fn purge_prefix(&mut self, prefix: &[u8]) -> usize {
        let ids: Vec<Id> = self
            .by_uri
            .iter()
            .filter(|(uri, _)| uri.starts_with(prefix))
            .flat_map(|(_, ids)| ids.iter().copied())
            .collect();
        for id in &ids {
            self.remove(*id);
        }
        ids.len()
    }

    /// Removes every object tagged `tag`; returns how many.
    pub fn purge_tag(&mut self, tag: &[u8]) -> usize {
        let ids: Vec<Id> = self
            .tags
            .get(tag)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        for id in &ids {
            self.remove(*id);
        }
        ids.len()
    }

    /// Removes everything.
    pub fn clear(&mut self) {
        let ids: Vec<Id> = self.objects.keys().copied().collect();
        for id in ids {
            self.remove(id);
        }
    }
}

/// FNV-1a of a URI: the policy's frequency and ghost identity of a key.
fn hash(s: &[u8]) -> u64 {
    s.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
