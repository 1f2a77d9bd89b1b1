//! The per-core open-file cache: resolved path → open file with its validators, or the
//! refusal, so a hot file costs a hash lookup instead of an `openat2` and three sibling probes.
//!
//! Bounded by entry count, evicted by CLOCK (second chance: a hit sets a bit, the hand clears
//! bits until it finds an entry without one). An entry is trusted for
//! [`CacheConfig::valid`] (like nginx's `open_file_cache_valid`); after that the path is
//! resolved again on its next use, so a replaced or deleted file is noticed within that time.
//! Negative results (404, 403) are kept for [`CacheConfig::negative_valid`], so a scan of
//! missing paths costs one lookup each per interval, but they do not block a file that appears.
//! Evicting an entry drops its `Rc<File>`: the descriptors close when the last response using
//! them finishes. Keys are the handler's identity and the request path as received; a hit
//! allocates nothing.

use crate::{Found, Refusal, Static};
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::time::{Duration, Instant};

/// Bounds and intervals of a [`FileCache`].
#[derive(Debug, Clone, Copy)]
pub struct CacheConfig {
    /// Most entries kept (default 1024). Zero disables the cache.
    pub max_entries: usize,
    /// How long a found file is trusted before it is resolved again (default 1 s).
    pub valid: Duration,
    /// How long a refusal is trusted (default 1 s).
    pub negative_valid: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            max_entries: 1024,
            valid: Duration::from_secs(1),
            negative_valid: Duration::from_secs(1),
        }
    }
}

struct Slot {
    hash: u64,
    root: u64,
    key: Box<[u8]>,
    value: Result<Found, Refusal>,
    checked: Instant,
    referenced: bool,
}

/// One worker's cache of open files (not `Sync`: each worker keeps its own).
pub struct FileCache {
    config: CacheConfig,
    slots: Vec<Slot>,
    index: HashMap<u64, usize>,
    hasher: RandomState,
    hand: usize,
}

impl std::fmt::Debug for FileCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileCache")
            .field("entries", &self.slots.len())
            .field("config", &self.config)
            .finish()
    }
}

impl FileCache {
    /// An empty cache.
    pub fn new(config: CacheConfig) -> FileCache {
        FileCache {
            config,
            slots: Vec::with_capacity(config.max_entries),
            index: HashMap::with_capacity(config.max_entries),
            hasher: RandomState::new(),
            hand: 0,
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// [`Static::resolve`] through the cache; `now` is the worker's clock (a coarse one is
    /// fine: it only decides revalidation).
    pub fn get(&mut self, handler: &Static, path: &[u8], now: Instant) -> Result<Found, Refusal> {
        let hash = self.hasher.hash_one((handler.id, path));
        if let Some(&i) = self.index.get(&hash) {
            let s = &mut self.slots[i];
            if s.root == handler.id && &*s.key == path {
                let ttl = match s.value {
                    Ok(_) => self.config.valid,
                    Err(_) => self.config.negative_valid,
                };
                if now.saturating_duration_since(s.checked) < ttl {
                    s.referenced = true;
                    return s.value.clone();
                }
                // Stale: resolve again in place.
                let value = handler.resolve(path);
                let s = &mut self.slots[i];
                s.value = value.clone();
                s.checked = now;
                s.referenced = true;
                return value;
            }
        }
        let value = handler.resolve(path);
        if matches!(value, Err(Refusal::Io(_))) || self.config.max_entries == 0 {
            // A transient kernel error (EMFILE, ENOMEM) is not remembered.
            return value;
        }
        let slot = Slot {
            hash,
            root: handler.id,
            key: path.into(),
            value: value.clone(),
            checked: now,
            referenced: false,
        };
        let i = if self.slots.len() < self.config.max_entries {
            self.slots.push(slot);
            self.slots.len() - 1
        } else {
            let i = self.victim();
            let old = std::mem::replace(&mut self.slots[i], slot);
            // Two keys may share a hash: only remove the index entry if it points here.
            if self.index.get(&old.hash) == Some(&i) {
                self.index.remove(&old.hash);
            }
            i
        };
        self.index.insert(hash, i);
        value
    }

    /// CLOCK: the first slot from the hand without its referenced bit, clearing bits on the
    /// way (ends within two turns).
    fn victim(&mut self) -> usize {
        loop {
            let i = self.hand;
            self.hand = (self.hand + 1) % self.slots.len();
            let s = &mut self.slots[i];
            if !s.referenced {
                return i;
            }
            s.referenced = false;
        }
    }

    /// Drops every entry (and so every descriptor no response is using).
    pub fn clear(&mut self) {
        self.slots.clear();
        self.index.clear();
        self.hand = 0;
    }
}
