//! The decision API: one [`Cache`] per core, called by the cache-lookup handler and the store
//! body filter.
//!
//! Lifecycle of a request through the cache:
//!
//! ```text
//! lookup ─┬─ Fresh(hit) ───────────────► serve (Age set, 304/206/HEAD decided)
//!         ├─ Stale{…} ─ revalidate ──┬─ 304 ─► on_304 ─► serve the refreshed hit
//!         │   (or serve while a       ├─ 2xx ─► store ─► commit
//!         │    background refresh)    └─ 5xx/error ─► serve stale if stale-if-error allows
//!         ├─ Miss{join} ─ Leader ─► fetch ─► store ─► commit ─► Leader::finish
//!         │               Follower ─► await the Outcome ─► lookup again
//!         ├─ Bypass(reason) ─► fetch, nothing stored
//!         └─ OnlyIfCachedMiss ─► 504
//! ```
//!
//! Unsafe methods go upstream as bypasses and, when they succeed, [`Cache::invalidate`]
//! forgets the target URI and the same-origin `Location`/`Content-Location`.

use std::cell::RefCell;
use std::rc::Rc;

use bytes::Bytes;
use hashbrown::HashSet;

use crate::collapse::{Collapser, Join, Outcome};
use crate::directives::{Directives, DELTA_MAX};
use crate::evict::{Id, Policy, S3Fifo};
use crate::fields::{first, list, members, values, Fields};
use crate::freshness::{self, delta_secs, Timing};
use crate::key::{normalise_authority, uri_key, Key, KeyBypass};
use crate::revalidate::{self, ClientConditional, Conditional, RangeDecision};
use crate::shard::{Rules, Shard, Stored};
use crate::status::{CacheStatus, Fwd};
use crate::store::{self, DontStore, StorePlan};
use crate::vary::{Selection, Vary};
use crate::{Clock, Config, Field, Request, Response, Scheme, SystemClock, Time};

/// Fields a 304 carries from the stored response (RFC 9110 §15.4.5, and `Last-Modified`).
pub const NOT_MODIFIED_FIELDS: [&str; 7] = [
    "cache-control",
    "content-location",
    "date",
    "etag",
    "expires",
    "vary",
    "last-modified",
];

/// What the cache says about a request.
#[derive(Debug)]
pub enum Lookup {
    /// Serve this stored response.
    Fresh(Hit),
    /// A stored response exists but needs validation first (or may be served while it is
    /// validated, or if validation fails).
    Stale(Stale),
    /// Nothing usable stored: fetch (or wait for the fetch in flight).
    Miss(Miss),
    /// The cache stays out of this request.
    Bypass(Bypass),
    /// `only-if-cached` and nothing usable: answer `504 Gateway Timeout`.
    OnlyIfCachedMiss,
}

/// A stored response about to be served.
#[derive(Debug, Clone)]
pub struct Hit {
    /// The stored response.
    pub stored: Rc<Stored>,
    /// Its id in the shard.
    pub id: Id,
    /// The `Age` to send, in seconds.
    pub age: u64,
    /// The request was `HEAD`: send no body.
    pub head: bool,
    /// What the client's own conditional fields ask for.
    pub conditional: ClientConditional,
    /// Which bytes to send.
    pub range: RangeDecision,
    /// The `Cache-Status` member so far.
    pub status: CacheStatus,
}

impl Hit {
    /// The `Age` field value.
    pub fn age_value(&self) -> String {
        self.age.min(u64::from(DELTA_MAX)).to_string()
    }

    /// The status to send: 304 for a matched client conditional, 206 or 416 for a range,
    /// else the stored status.
    pub fn status_code(&self) -> u16 {
        if self.conditional == ClientConditional::NotModified {
            return 304;
        }
        match self.range {
            RangeDecision::Full => self.stored.status,
            RangeDecision::Partial { .. } => 206,
            RangeDecision::Unsatisfiable => 416,
        }
    }

    /// The stored fields to send, without the stored `Age` (send [`Hit::age_value`] instead).
    /// For a 304 only the fields RFC 9110 §15.4.5 lists (plus `Last-Modified`) are kept. The
    /// stored fields have no framing of their own (`Transfer-Encoding` is never stored): the
    /// writer frames the body it sends, and for a 206 replaces `Content-Length` and adds
    /// `Content-Range`.
    pub fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let not_modified = self.conditional == ClientConditional::NotModified;
        self.stored.headers.iter().filter(move |(n, _)| {
            if n.eq_ignore_ascii_case(b"age") {
                return false;
            }
            !not_modified
                || NOT_MODIFIED_FIELDS
                    .iter()
                    .any(|f| n.eq_ignore_ascii_case(f.as_bytes()))
        })
    }

    /// The body to send (empty for `HEAD` and `304`), without copying it.
    pub fn body(&self) -> Bytes {
        if self.head || self.conditional == ClientConditional::NotModified {
            return Bytes::new();
        }
        match self.range {
            RangeDecision::Full => self.stored.body.clone(),
            RangeDecision::Partial { start, end } => {
                self.stored.body.slice(start as usize..=end as usize)
            }
            RangeDecision::Unsatisfiable => Bytes::new(),
        }
    }
}

/// A stored response that may not be served as is.
#[derive(Debug)]
pub struct Stale {
    /// The stale response as it would be served.
    pub hit: Hit,
    /// The request's key.
    pub key: Key,
    /// Validators to put on the upstream request.
    pub conditional: Conditional,
    /// `stale-while-revalidate` allows serving it now while it is revalidated in the
    /// background.
    pub serve_while_revalidating: bool,
    /// This request runs the key's one background refresh; `None` when one is already running
    /// (serve stale and do not refresh) or background serving is not allowed.
    pub refresh: Option<Refresh>,
    /// `stale-if-error` allows serving it if the revalidation fails or answers 5xx.
    pub serve_if_error: bool,
    /// For a foreground revalidation of a stale response: lead it, or wait for the one in
    /// flight (then look up again). `None` when serving stale in the meantime, or when the
    /// request's own directives asked for the validation.
    pub join: Option<Join>,
}

/// Holds a key's background refresh slot; dropping it frees the slot.
#[derive(Debug)]
pub struct Refresh {
    key: Box<[u8]>,
    set: Rc<RefCell<HashSet<Box<[u8]>>>>,
}

impl Drop for Refresh {
    fn drop(&mut self) {
        self.set.borrow_mut().remove(&self.key);
    }
}

/// Nothing usable is stored.
#[derive(Debug)]
pub struct Miss {
    /// The request's key.
    pub key: Key,
    /// Lead the fetch, wait for another, or go alone.
    pub join: Join,
    /// The `Cache-Status` member so far.
    pub status: CacheStatus,
}

/// Why the cache stays out of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bypass {
    /// The key builder refused the request.
    Key(KeyBypass),
    /// The request said `no-store`.
    RequestNoStore,
}

/// A response being received, to be committed once its body is complete.
#[derive(Debug)]
pub struct Pending {
    stored: Stored,
    body: Vec<u8>,
    expected: Option<u64>,
    max: usize,
    overflow: bool,
    /// The storability decision.
    pub plan: StorePlan,
}

impl Pending {
    /// Appends a chunk of the body; `false` once the object is over the per-object bound (it
    /// will not be stored, and the caller may stop buffering).
    pub fn push(&mut self, chunk: &[u8]) -> bool {
        if self.overflow || self.body.len() + chunk.len() + self.stored.weight() > self.max {
            self.overflow = true;
            self.body = Vec::new();
            return false;
        }
        self.body.extend_from_slice(chunk);
        true
    }
}

/// What a commit did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// Stored, fresh for `ttl` seconds.
    Stored {
        /// Freshness lifetime.
        ttl: u32,
    },
    /// The body ended early or disagreed with `Content-Length`: not stored.
    Truncated,
    /// Over the per-object bound: not stored.
    TooLarge,
    /// The eviction policy did not admit it.
    NotAdmitted,
}

impl Commit {
    /// The outcome to give collapsed waiters.
    pub fn outcome(self) -> Outcome {
        match self {
            Commit::Stored { .. } => Outcome::Stored,
            _ => Outcome::NotStorable,
        }
    }
}

/// One core's cache.
pub struct Cache<C: Clock = SystemClock, P: Policy = S3Fifo> {
    config: Config,
    clock: C,
    shard: Shard<P>,
    collapse: Collapser,
    refreshing: Rc<RefCell<HashSet<Box<[u8]>>>>,
}

impl<C: Clock> Cache<C, S3Fifo> {
    /// A cache with `config`'s bound, reading time from `clock`.
    pub fn new(config: Config, clock: C) -> Self {
        let shard = Shard::new(config.capacity_bytes);
        Cache::with_shard(config, clock, shard)
    }
}

impl<C: Clock, P: Policy> Cache<C, P> {
    /// A cache over a given shard.
    pub fn with_shard(config: Config, clock: C, shard: Shard<P>) -> Self {
        let collapse = Collapser::new(config.collapse_max_waiters, config.collapse_timeout);
        Cache {
            config,
            clock,
            shard,
            collapse,
            refreshing: Rc::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The shard, for statistics and purges.
    pub fn shard(&self) -> &Shard<P> {
        &self.shard
    }

    /// The collapsing table.
    pub fn collapser(&self) -> &Collapser {
        &self.collapse
    }

    /// Decides what to do with a request.
    pub fn lookup(&mut self, req: &Request<'_>) -> Lookup {
        let now = self.clock.now();
        let key = match self.config.key.build(req) {
            Ok(k) => k,
            Err(b) => return Lookup::Bypass(Bypass::Key(b)),
        };
        let mut rd = Directives::cache_control(req.headers);
        if first(req.headers, b"cache-control").is_none()
            && list(req.headers, b"pragma").any(|m| m.eq_ignore_ascii_case(b"no-cache"))
        {
            rd.no_cache = true;
        }
        if rd.no_store {
            return Lookup::Bypass(Bypass::RequestNoStore);
        }
        self.shard.record(&key.uri);
        let mut any = false;
        let mut found = None;
        for (id, s) in self.shard.variants(&key.uri) {
            any = true;
            if s.extra == key.extra && s.selection.matches(req.headers) {
                found = Some((id, s.clone()));
                break;
            }
        }
        let Some((id, stored)) = found else {
            if rd.only_if_cached {
                return Lookup::OnlyIfCachedMiss;
            }
            let status = CacheStatus {
                fwd: Some(if any { Fwd::VaryMiss } else { Fwd::UriMiss }),
                ..CacheStatus::default()
            };
            // A HEAD waits for a GET in flight but never leads: its response is not stored.
            let join = self
                .collapse
                .join_as(&collapse_key(&key), now, req.method == b"GET");
            return Lookup::Miss(Miss { key, join, status });
        };
        let age = stored.timing.current_age(now);
        let lifetime = u64::from(stored.rules.lifetime);
        let ttl = lifetime as i64 - age as i64;
        let mut hit = Hit {
            id,
            age,
            head: req.method == b"HEAD",
            conditional: revalidate::client_conditional(req.headers, &stored.headers),
            range: revalidate::range(
                req.headers,
                stored.status,
                &stored.headers,
                stored.body.len() as u64,
            ),
            status: CacheStatus {
                ttl: Some(ttl),
                ..CacheStatus::default()
            },
            stored,
        };
        let fresh = age < lifetime;
        let min_fresh = u64::from(rd.min_fresh.map_or(0, |d| d.secs()));
        let too_old = rd.max_age.is_some_and(|m| age > u64::from(m.secs()));
        let forced = hit.stored.rules.no_cache || rd.no_cache;
        let usable_fresh = fresh && lifetime - age >= min_fresh && !too_old;
        if usable_fresh && !forced {
            self.shard.touch(id);
            hit.status.hit = true;
            return Lookup::Fresh(hit);
        }
        let staleness = age.saturating_sub(lifetime);
        let rules = hit.stored.rules;
        let may_serve_stale = !fresh && !forced && !rules.must_revalidate;
        if may_serve_stale && !too_old && min_fresh == 0 {
            if let Some(max_stale) = rd.max_stale {
                if max_stale.is_none_or(|m| staleness <= u64::from(m)) {
                    self.shard.touch(id);
                    hit.status.hit = true;
                    return Lookup::Fresh(hit);
                }
            }
        }
        if rd.only_if_cached {
            return Lookup::OnlyIfCachedMiss;
        }
        let request_driven = fresh || rd.no_cache;
        hit.status.fwd = Some(if request_driven {
            Fwd::Request
        } else {
            Fwd::Stale
        });
        // Without the directive (0) nothing is served stale, not even at zero staleness.
        let serve_while_revalidating = may_serve_stale
            && !request_driven
            && rules.stale_while_revalidate > 0
            && staleness <= u64::from(rules.stale_while_revalidate);
        let refresh = if serve_while_revalidating {
            let ck: Box<[u8]> = collapse_key(&key).into();
            let mut set = self.refreshing.borrow_mut();
            set.insert(ck.clone()).then(|| Refresh {
                key: ck,
                set: self.refreshing.clone(),
            })
        } else {
            None
        };
        if serve_while_revalidating {
            self.shard.touch(id);
        }
        let serve_if_error = !forced
            && !rules.must_revalidate
            && rules.stale_if_error > 0
            && staleness <= u64::from(rules.stale_if_error);
        let join = (!serve_while_revalidating && !request_driven)
            .then(|| self.collapse.join(&collapse_key(&key), now));
        Lookup::Stale(Stale {
            conditional: revalidate::conditional(&hit.stored.headers),
            hit,
            key,
            serve_while_revalidating,
            refresh,
            serve_if_error,
            join,
        })
    }

    /// Decides whether to store `resp`, the upstream answer to `req` sent at `request_time`;
    /// on success the body goes into the returned [`Pending`].
    pub fn store(
        &mut self,
        req: &Request<'_>,
        resp: &Response<'_>,
        request_time: Time,
    ) -> Result<Pending, DontStore> {
        let now = self.clock.now();
        let key = self
            .config
            .key
            .build(req)
            .map_err(|_| DontStore::Bypassed)?;
        let plan = store::decide(&self.config, req, resp, now)?;
        let names = match Vary::parse(resp.headers) {
            Vary::Star => return Err(DontStore::VaryStar),
            Vary::Fields(n) => n,
        };
        let mut headers = Fields::from_lines(resp.headers);
        for s in &plan.strip {
            headers.remove(s);
        }
        let stored = Stored {
            uri: key.uri,
            extra: key.extra,
            status: resp.status,
            rules: rules(&self.config, resp.status, resp.headers, now),
            timing: Timing::new(resp.headers, request_time, now),
            selection: Selection::of(&names, req.headers),
            tags: tags(resp.headers),
            headers,
            body: Bytes::new(),
            stored_at: now,
        };
        let expected = first(resp.headers, b"content-length")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.parse().ok());
        Ok(Pending {
            stored,
            body: Vec::new(),
            expected,
            max: self.config.max_object_bytes,
            overflow: false,
            plan,
        })
    }

    /// Stores a received response; `complete` says whether its body ended as framed (not cut
    /// by an upstream close or an error).
    pub fn commit(&mut self, pending: Pending, complete: bool) -> Commit {
        if pending.overflow {
            return Commit::TooLarge;
        }
        if !complete
            || pending
                .expected
                .is_some_and(|n| n != pending.body.len() as u64)
        {
            return Commit::Truncated;
        }
        let mut stored = pending.stored;
        stored.body = Bytes::from(pending.body);
        if stored.weight() > self.config.max_object_bytes {
            return Commit::TooLarge;
        }
        let ttl = stored.rules.lifetime;
        match self.shard.insert(stored) {
            Some(_) => Commit::Stored { ttl },
            None => Commit::NotAdmitted,
        }
    }

    /// Merges a `304 Not Modified` answering `stale`'s revalidation into the stored response
    /// and returns it as a fresh hit for `req`; `None` if the 304 does not describe the stored
    /// response (then fetch it unconditionally).
    pub fn on_304(
        &mut self,
        stale: &Stale,
        req: &Request<'_>,
        resp: &Response<'_>,
        request_time: Time,
    ) -> Option<Hit> {
        let now = self.clock.now();
        let old = &stale.hit.stored;
        if !revalidate::selects(&old.headers, resp.headers) {
            return None;
        }
        let headers = revalidate::merge(&old.headers, resp.headers);
        let lines = headers.lines();
        let mut updated = Stored::clone(old);
        updated.rules = rules(&self.config, old.status, &lines, now);
        updated.timing = Timing::new(&lines, request_time, now);
        updated.tags = tags(&lines);
        updated.stored_at = now;
        drop(lines);
        updated.headers = headers;
        let id = if self.shard.get(stale.hit.id).is_some() {
            self.shard.replace(stale.hit.id, updated.clone())
        } else {
            self.shard.insert(updated.clone())
        };
        let stored = match id.and_then(|id| self.shard.get(id)) {
            Some(s) => s.clone(),
            None => Rc::new(updated),
        };
        let age = stored.timing.current_age(now);
        Some(Hit {
            id: id.unwrap_or(stale.hit.id),
            age,
            head: req.method == b"HEAD",
            conditional: revalidate::client_conditional(req.headers, &stored.headers),
            range: revalidate::range(
                req.headers,
                stored.status,
                &stored.headers,
                stored.body.len() as u64,
            ),
            status: CacheStatus {
                fwd: Some(Fwd::Stale),
                fwd_status: Some(304),
                ttl: Some(i64::from(stored.rules.lifetime) - age as i64),
                ..CacheStatus::default()
            },
            stored,
        })
    }

    /// Forgets what a successful unsafe request changed (RFC 9111 §4.4): its target URI and the
    /// same-origin URIs in `Location` and `Content-Location`. Returns the objects removed.
    pub fn invalidate(&mut self, req: &Request<'_>, resp: &Response<'_>) -> usize {
        if matches!(req.method, b"GET" | b"HEAD" | b"OPTIONS" | b"TRACE") {
            return 0;
        }
        if !(200..400).contains(&resp.status) {
            return 0;
        }
        let Some(authority) = normalise_authority(req.authority, req.scheme) else {
            return 0;
        };
        let ignored = &self.config.key.ignored_query;
        let mut uris = vec![uri_key(req.scheme, &authority, req.target, ignored)];
        for name in [&b"location"[..], b"content-location"] {
            if let Some(v) = first(resp.headers, name) {
                if let Some(target) = same_origin(v, req.scheme, &authority, req.target) {
                    uris.push(uri_key(req.scheme, &authority, &target, ignored));
                }
            }
        }
        uris.iter().map(|u| self.shard.purge_uri(u)).sum()
    }

    /// Removes every object stored under an exact key URI.
    pub fn purge_key(&mut self, uri: &[u8]) -> usize {
        self.shard.purge_uri(uri)
    }

    /// Removes every object whose key URI starts with `prefix`.
    pub fn purge_prefix(&mut self, prefix: &[u8]) -> usize {
        self.shard.purge_prefix(prefix)
    }

    /// Removes every object tagged `tag` by `Surrogate-Key` or `Cache-Tag`.
    pub fn purge_tag(&mut self, tag: &[u8]) -> usize {
        self.shard.purge_tag(tag)
    }

    /// Releases collapsed waiters whose wait exceeded the bound.
    pub fn expire_waiters(&self) {
        self.collapse.expire(self.clock.now());
    }
}

/// The collapsing and refresh identity of a key: URI and extra part.
fn collapse_key(key: &Key) -> Vec<u8> {
    let mut k = key.uri.to_vec();
    if !key.extra.is_empty() {
        k.push(0);
        k.extend_from_slice(&key.extra);
    }
    k
}

/// Derives the reuse rules from a response's fields.
pub(crate) fn rules(config: &Config, status: u16, headers: &[Field<'_>], now: Time) -> Rules {
    let (d, targeted) = Directives::for_shared_cache(headers, &config.targets);
    let (lifetime, source) = freshness::lifetime(status, headers, &d, targeted, config, now);
    Rules {
        lifetime,
        source,
        no_cache: d.no_cache,
        must_revalidate: d.must_revalidate || d.proxy_revalidate || d.s_maxage.is_some(),
        stale_while_revalidate: delta_secs(d.stale_while_revalidate)
            .unwrap_or(config.stale_while_revalidate),
        stale_if_error: delta_secs(d.stale_if_error).unwrap_or(0),
    }
}

/// Surrogate keys: `Surrogate-Key` is space-separated, `Cache-Tag` comma-separated.
fn tags(headers: &[Field<'_>]) -> Vec<Box<[u8]>> {
    let mut out: Vec<Box<[u8]>> = Vec::new();
    let mut add = |t: &[u8]| {
        let t = t.trim_ascii();
        if !t.is_empty() && !out.iter().any(|o| &o[..] == t) {
            out.push(t.into());
        }
    };
    for v in values(headers, b"surrogate-key") {
        v.split(|b| b.is_ascii_whitespace()).for_each(&mut add);
    }
    for v in values(headers, b"cache-tag") {
        members(v).for_each(&mut add);
    }
    out
}

/// Resolves a `Location`/`Content-Location` reference against the request and returns its
/// origin-form target if it has the request's origin.
fn same_origin(reference: &[u8], scheme: Scheme, authority: &[u8], base: &[u8]) -> Option<Vec<u8>> {
    let r = reference.trim_ascii();
    let r = r.split(|&b| b == b'#').next().unwrap_or(r);
    let (rest, needs_authority) = if let Some(colon) = r.iter().position(|&b| b == b':') {
        let s = &r[..colon];
        if s.iter()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(b))
        {
            if !s.eq_ignore_ascii_case(scheme.as_str().as_bytes()) {
                return None;
            }
            (r[colon + 1..].strip_prefix(b"//")?, true)
        } else {
            (r, false)
        }
    } else if let Some(n) = r.strip_prefix(b"//") {
        (n, true)
    } else {
        (r, false)
    };
    let path: Vec<u8> = if needs_authority {
        let end = rest
            .iter()
            .position(|&b| b == b'/' || b == b'?')
            .unwrap_or(rest.len());
        if normalise_authority(&rest[..end], scheme).as_deref() != Some(authority) {
            return None;
        }
        let p = &rest[end..];
        if p.first() == Some(&b'?') || p.is_empty() {
            [&b"/"[..], p].concat()
        } else {
            p.to_vec()
        }
    } else if rest.first() == Some(&b'/') {
        rest.to_vec()
    } else {
        let base_path = base.split(|&b| b == b'?').next().unwrap_or(base);
        let dir = match base_path.iter().rposition(|&b| b == b'/') {
            Some(i) => &base_path[..=i],
            None => b"/",
        };
        [dir, rest].concat()
    };
    Some(remove_dot_segments(&path))
}

/// RFC 3986 §5.2.4 on the path part; the query is kept as is.
fn remove_dot_segments(target: &[u8]) -> Vec<u8> {
    let (path, query) = match target.iter().position(|&b| b == b'?') {
        Some(q) => (&target[..q], &target[q..]),
        None => (target, &b""[..]),
    };
    let mut out: Vec<&[u8]> = Vec::new();
    let segs: Vec<&[u8]> = path.split(|&b| b == b'/').skip(1).collect();
    let n = segs.len();
    for (i, seg) in segs.into_iter().enumerate() {
        match seg {
            b"." => {
                if i + 1 == n {
                    out.push(b"");
                }
            }
            b".." => {
                out.pop();
                if i + 1 == n {
                    out.push(b"");
                }
            }
            s => out.push(s),
        }
    }
    let mut p = Vec::with_capacity(target.len());
    for s in &out {
        p.push(b'/');
        p.extend_from_slice(s);
    }
    if p.is_empty() {
        p.push(b'/');
    }
    p.extend_from_slice(query);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_references_resolve_against_the_request() {
        let base = b"/a/b/post?x=1";
        for (r, want) in [
            ("loc", Some("/a/b/loc")),
            ("../up", Some("/a/up")),
            ("./here?q", Some("/a/b/here?q")),
            ("/abs", Some("/abs")),
            ("https://example.com/x#frag", Some("/x")),
            ("HTTPS://EXAMPLE.COM:443", Some("/")),
            ("//example.com/n", Some("/n")),
            ("http://example.com/x", None),
            ("https://other.example/x", None),
            ("//other.example/x", None),
        ] {
            let got = same_origin(r.as_bytes(), Scheme::Https, b"example.com", base);
            assert_eq!(got.as_deref(), want.map(str::as_bytes), "{r}");
        }
    }
}
