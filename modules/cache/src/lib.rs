//! bext-cache: the response cache's decisions and storage, as a library without a runtime.
//!
//! The engine owns sockets, timers and tasks; this crate owns what a shared HTTP cache
//! (RFC 9111) decides. A cache-lookup handler calls [`Cache::lookup`] before proxying and
//! acts on the [`Lookup`] it gets back (serve a hit, revalidate, wait for another request's
//! fetch, bypass, answer 504). A store body filter calls [`Cache::store`] with the upstream
//! response head, feeds the body into the returned [`Pending`] and calls [`Cache::commit`]
//! when the body ended cleanly. [`Cache::on_304`] merges a `304 Not Modified` into the stored
//! response, and [`Cache::invalidate`] forgets what an unsafe request changed.
//!
//! # Pieces
//!
//! - [`directives`]: `Cache-Control` (RFC 9111 §5.2) and targeted fields such as
//!   `CDN-Cache-Control` (RFC 9213), parsed once per message.
//! - [`freshness`]: freshness lifetime (§4.2.1, heuristics §4.2.2) and current age (§4.2.3).
//! - [`store`]: whether a response may be stored (§3) plus bext's poisoning defences.
//! - [`key`]: the cache key and the request checks that bypass the cache.
//! - [`vary`]: secondary keys (§4.1) with normalised selecting fields.
//! - [`revalidate`]: conditional requests out (§4.3.1), 304 merges (§3.2, §4.3.4), client
//!   conditionals and ranges answered from a stored response.
//! - [`status`]: the `Cache-Status` response field (RFC 9211).
//! - [`shard`] and [`evict`]: the byte-bounded per-core store and its eviction policy.
//! - [`collapse`]: one upstream fetch per key while other requests wait.
//! - [`sim`]: the trace replay that chose the eviction policy (`docs/cache.md`).
//!
//! # Per core
//!
//! A [`Cache`] belongs to one worker thread: it is `!Send`, holds no lock, and hands out
//! stored responses behind `Rc` with bodies as [`bytes::Bytes`], so a hit copies no body.
//! Purges are applied by calling the same method on every core's cache.
//!
//! Time comes from a [`Clock`], so tests move it by hand and nothing here reads the system
//! clock behind the caller's back.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

mod cache;
pub mod collapse;
pub mod directives;
pub mod evict;
mod fields;
pub mod freshness;
pub mod key;
pub mod revalidate;
pub mod shard;
pub mod sim;
pub mod status;
pub mod store;
pub mod vary;

pub use cache::{
    Bypass, Cache, Commit, Hit, Lookup, Miss, Pending, Refresh, Stale, NOT_MODIFIED_FIELDS,
};
pub use collapse::{Collapser, Join, Leader, Outcome, Waiter};
pub use fields::Fields;
pub use key::{Key, KeyConfig, KeyPart};
pub use shard::{Shard, Stored};
pub use status::CacheStatus;
pub use store::{DontStore, StorePlan};

/// A field line: name and value as received (value without surrounding whitespace).
pub type Field<'a> = (&'a [u8], &'a [u8]);

/// The request scheme, which is part of the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `http`
    Http,
    /// `https`
    Https,
}

impl Scheme {
    /// The scheme's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// The port that is left out of a normalised authority.
    pub fn default_port(self) -> &'static [u8] {
        match self {
            Scheme::Http => b"80",
            Scheme::Https => b"443",
        }
    }
}

/// A request as the cache sees it: borrowed from the engine's parsed head.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The method token, case-sensitive (RFC 9110 §9.1).
    pub method: &'a [u8],
    /// The scheme the client used.
    pub scheme: Scheme,
    /// The effective authority: the absolute-form target's authority, else `Host`.
    pub authority: &'a [u8],
    /// Path and query in origin form (`/a/b?c=d`).
    pub target: &'a [u8],
    /// Every field line in order.
    pub headers: &'a [Field<'a>],
    /// The request has content (a non-zero `Content-Length` or chunked framing).
    pub has_body: bool,
}

/// A response head as the cache sees it: borrowed from the engine's parsed upstream head.
#[derive(Debug, Clone, Copy)]
pub struct Response<'a> {
    /// Status code.
    pub status: u16,
    /// Every field line in order.
    pub headers: &'a [Field<'a>],
}

/// Seconds since the Unix epoch: HTTP's dates and ages have one-second resolution.
pub type Time = i64;

/// Where the cache reads the time.
pub trait Clock {
    /// The current time.
    fn now(&self) -> Time;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Time {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as Time)
    }
}

/// A clock moved by hand, for tests and simulations.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(std::rc::Rc<std::cell::Cell<Time>>);

impl ManualClock {
    /// A clock reading `t`.
    pub fn at(t: Time) -> Self {
        ManualClock(std::rc::Rc::new(std::cell::Cell::new(t)))
    }
    /// Moves the clock forward by `secs`.
    pub fn advance(&self, secs: i64) {
        self.0.set(self.0.get() + secs);
    }
    /// Sets the clock.
    pub fn set(&self, t: Time) {
        self.0.set(t);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Time {
        self.0.get()
    }
}

/// Everything a route's cache is configured with. [`Config::default`] is the safe shared-cache
/// behaviour documented in `docs/cache.md`.
#[derive(Debug, Clone)]
pub struct Config {
    /// The cache's name in `Cache-Status` (RFC 9211 §2).
    pub name: String,
    /// Targeted cache-control fields this cache obeys, most specific first, lowercase
    /// (RFC 9213 §2.2). The first one present and valid replaces `Cache-Control`.
    pub targets: Vec<Box<[u8]>>,
    /// The bound on accounted bytes (keys, fields and bodies) of one shard.
    pub capacity_bytes: usize,
    /// Objects larger than this (accounted bytes) are not stored.
    pub max_object_bytes: usize,
    /// Freshness given to storable responses without explicit freshness, instead of the
    /// heuristic. Never overrides `private`, `no-store`, `no-cache` or `Set-Cookie` refusals.
    pub default_ttl: Option<u32>,
    /// `stale-while-revalidate` given to stored responses that do not set one, in seconds
    /// (0: none). Never overrides `must-revalidate`, `proxy-revalidate`, `s-maxage` or
    /// `no-cache`, which forbid serving stale.
    pub stale_while_revalidate: u32,
    /// The heuristic's fraction of the time since `Last-Modified`, in percent (RFC 9111
    /// §4.2.2 suggests at most 10).
    pub heuristic_percent: u32,
    /// Upper bound of a heuristic freshness lifetime, in seconds.
    pub heuristic_max: u32,
    /// Store responses carrying `Set-Cookie` (RFC 9111 allows it; a shared cache that does
    /// hands one user's cookie to everyone).
    pub store_set_cookie: bool,
    /// Store 4xx/5xx responses other than the cacheable-by-default 404, 405, 410, 414 and 501
    /// when they carry explicit freshness (off: an attacker-shaped request must not be able
    /// to cache an error page for everyone, CPDoS).
    pub store_errors: bool,
    /// How keys are built and which requests bypass.
    pub key: KeyConfig,
    /// At most this many requests wait on one in-flight fetch; more go upstream.
    pub collapse_max_waiters: usize,
    /// Waiters give up on an in-flight fetch after this many seconds.
    pub collapse_timeout: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            name: "bext".to_owned(),
            targets: vec![b"cdn-cache-control".to_vec().into_boxed_slice()],
            capacity_bytes: 256 << 20,
            max_object_bytes: 8 << 20,
            default_ttl: None,
            stale_while_revalidate: 0,
            heuristic_percent: 10,
            heuristic_max: 86_400,
            store_set_cookie: false,
            store_errors: false,
            key: KeyConfig::default(),
            collapse_max_waiters: 1024,
            collapse_timeout: 10,
        }
    }
}
