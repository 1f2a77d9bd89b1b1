//! The response cache of a route (`cache { ... }` on a `proxy` route): a lookup before the
//! proxy, and a tap on the proxied response that stores it while it streams to the client.
//!
//! The decisions are `bext-cache`'s (RFC 9111, `docs/cache.md`); this module carries them out
//! on a connection, with the core's own cache (`Worker::cache`: no lock, one per core and per
//! cache configuration, kept across reloads that leave the configuration as it was):
//!
//! - a fresh hit is answered here: the stored head goes through `finish_head`, so the route's
//!   response stages still see it, with `Age` and `Cache-Status`; `HEAD`, a single range and
//!   the client's own conditionals are answered from the stored `GET` response;
//! - a miss runs the proxy with a [`ResponseTap`] that decides storability from the upstream
//!   head and copies the body into the cache as it streams (bounded by the object limit;
//!   committed only when the body ended as framed). Other misses on the same key wait for that
//!   fetch (bounded in count and time) and look up again, or go upstream themselves;
//! - a stale response is revalidated with its validators: a 304 refreshes the stored head and
//!   the client is answered from the cache; a 5xx or an unreachable upstream serves it stale
//!   where `stale-if-error` allows. Under `stale-while-revalidate` it is served at once, and
//!   the one request holding the key's refresh slot refreshes it afterwards on its connection
//!   (the client has its answer; its next request on the connection waits for the refresh);
//! - unsafe methods go upstream and, when they succeed, invalidate what they changed.

use crate::conn::reply::{finish_head, FilterBufs};
use crate::conn::{send_problem, Ctx, Outcome};
use crate::handler::proxy::{self, ResponseTap, TapHead, TAKEN_OVER};
use crate::io::{race, write_all, Either};
use crate::metrics::CacheResult;
use crate::pipeline::{CompiledRoute, HeaderOps, Pipeline};
use bext_cache as bc;
use bext_ir as ir;
use monoio::io::AsyncWriteRentExt;
use std::cell::RefCell;
use std::hash::{Hash, Hasher};
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;

/// A route's compiled cache settings.
#[derive(Debug)]
pub struct CacheRoute {
    /// The cache's configuration; `capacity_bytes` is the total over every core.
    pub config: bc::Config,
    /// Identifies the core's cache for this configuration across reloads: a hash of the
    /// configuration and of the upstream it caches.
    pub id: u64,
    /// Request fields (lowercase) and cookies that send a request past the cache.
    pub bypass: Vec<ir::CacheRequestPart>,
}

/// A cache on one core holds at least this much, whatever the number of cores.
const MIN_CORE_BYTES: usize = 1 << 20;

impl CacheRoute {
    /// The settings of `c` on a route proxying to `upstream`.
    pub fn compile(c: &ir::Cache, upstream: &str) -> CacheRoute {
        let mut config = bc::Config {
            capacity_bytes: usize::try_from(c.max_bytes).unwrap_or(usize::MAX),
            ..bc::Config::default()
        };
        config.max_object_bytes = config.max_object_bytes.min(config.capacity_bytes);
        if c.ttl_ms > 0 {
            config.default_ttl = Some(u32::try_from(c.ttl_ms / 1000).unwrap_or(u32::MAX));
        }
        config.store_errors = c.store_errors;
        config.store_set_cookie = c.store_set_cookie;
        if let Some(s) = c.stale_while_revalidate_ms {
            config.stale_while_revalidate = u32::try_from(s / 1000).unwrap_or(u32::MAX);
        }
        config.key.ignored_query = (c.ignore_query.iter())
            .map(|q| q.as_bytes().to_vec().into_boxed_slice())
            .collect();
        config.key.extra = (c.key.iter())
            .map(|p| match p {
                ir::CacheRequestPart::Header(h) => {
                    bc::KeyPart::Header(h.to_ascii_lowercase().into_bytes().into_boxed_slice())
                }
                ir::CacheRequestPart::Cookie(n) => {
                    bc::KeyPart::Cookie(n.as_bytes().to_vec().into_boxed_slice())
                }
            })
            .collect();
        // A keyed field is no longer an unkeyed reflected one.
        let keyed: Vec<String> = (c.key.iter())
            .filter_map(|p| match p {
                ir::CacheRequestPart::Header(h) => Some(h.to_ascii_lowercase()),
                ir::CacheRequestPart::Cookie(_) => None,
            })
            .collect();
        config
            .key
            .unkeyed_bypass
            .retain(|f| !keyed.iter().any(|k| k.as_bytes() == &f[..]));
        let bypass = (c.bypass.iter())
            .map(|p| match p {
                ir::CacheRequestPart::Header(h) => {
                    ir::CacheRequestPart::Header(h.to_ascii_lowercase())
                }
                other => other.clone(),
            })
            .collect();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (c.ttl_ms, c.max_bytes, c.stale_while_revalidate_ms).hash(&mut h);
        (&c.key, &c.bypass, &c.ignore_query, upstream).hash(&mut h);
        (c.store_errors, c.store_set_cookie).hash(&mut h);
        CacheRoute {
            config,
            id: h.finish(),
            bypass,
        }
    }

    /// The configuration of one core's cache when the engine runs `cores` of them.
    pub fn core_config(&self, cores: usize) -> bc::Config {
        let mut c = self.config.clone();
        c.capacity_bytes = (c.capacity_bytes / cores.max(1)).max(MIN_CORE_BYTES);
        c.max_object_bytes = c.max_object_bytes.min(c.capacity_bytes);
        c
    }

    /// Whether the request carries a configured bypass field or cookie.
    fn bypassed(&self, req: &Owned) -> bool {
        self.bypass.iter().any(|p| match p {
            ir::CacheRequestPart::Header(h) => req.field(h.as_bytes()).is_some(),
            ir::CacheRequestPart::Cookie(n) => (req.headers.iter())
                .filter(|(name, _)| name.eq_ignore_ascii_case(b"cookie"))
                .flat_map(|(_, v)| v.split(|&b| b == b';'))
                .any(|c| {
                    let c = c.trim_ascii();
                    c.split(|&b| b == b'=').next() == Some(n.as_bytes())
                }),
        })
    }
}

/// The request as the cache sees it, copied out of the connection buffer (the proxy borrows
/// the connection while the tap needs the request).
struct Owned {
    method: Vec<u8>,
    authority: Vec<u8>,
    target: Vec<u8>,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    has_body: bool,
    /// Received over TLS or QUIC: the key's scheme is `https`.
    https: bool,
}

impl Owned {
    fn of(ctx: &Ctx<'_>) -> Owned {
        let buf: &[u8] = ctx.buf;
        let head: &bext_http1::RequestHead = ctx.head;
        let mut target = ctx.path().to_vec();
        if let Some(q) = head.query {
            target.push(b'?');
            target.extend_from_slice(q.get(buf));
        }
        Owned {
            method: head.method_span.get(buf).to_vec(),
            authority: (head.authority.or(head.host))
                .map(|s| s.get(buf).to_vec())
                .unwrap_or_default(),
            target,
            headers: (head.headers.iter())
                .map(|h| (h.name.get(buf).to_vec(), h.value.get(buf).to_vec()))
                .collect(),
            has_body: ctx.has_body(),
            https: ctx.stream.as_ref().is_some_and(|s| s.encrypted()),
        }
    }

    fn field(&self, name: &[u8]) -> Option<&[u8]> {
        (self.headers.iter())
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| &v[..])
    }

    fn lines(&self) -> Vec<bc::Field<'_>> {
        self.headers.iter().map(|(n, v)| (&n[..], &v[..])).collect()
    }

    fn view<'a>(&'a self, lines: &'a [bc::Field<'a>]) -> bc::Request<'a> {
        bc::Request {
            method: &self.method,
            scheme: if self.https {
                bc::Scheme::Https
            } else {
                bc::Scheme::Http
            },
            authority: &self.authority,
            target: &self.target,
            headers: lines,
            has_body: self.has_body,
        }
    }
}

/// Serve a request on a cached `proxy` route towards upstream `up`.
pub(crate) async fn serve(
    ctx: &mut Ctx<'_>,
    p: &Pipeline,
    route: &CompiledRoute,
    c: &CacheRoute,
    up: usize,
) -> Outcome {
    let cache = ctx.w.cache(c);
    let req = Owned::of(ctx);
    let lines = req.lines();
    let view = req.view(&lines);
    if !matches!(&req.method[..], b"GET" | b"HEAD") {
        count(ctx, p, CacheResult::Bypass);
        // Unsafe methods invalidate what they changed once they succeed; OPTIONS and TRACE
        // change nothing and pass.
        let mode = if matches!(&req.method[..], b"OPTIONS" | b"TRACE") {
            Mode::Pass(bc::status::Fwd::Method)
        } else {
            Mode::Invalidate
        };
        let mut tap = Tap::new(&cache, &req, mode);
        return proxy::proxy_tapped(ctx, p, route, up, Some(&mut tap)).await;
    }
    if c.bypassed(&req) {
        count(ctx, p, CacheResult::Bypass);
        let mut tap = Tap::new(&cache, &req, Mode::Pass(bc::status::Fwd::Bypass));
        return proxy::proxy_tapped(ctx, p, route, up, Some(&mut tap)).await;
    }
    let mut collapsed = false;
    let mut waited = false;
    loop {
        let lookup = cache.borrow_mut().lookup(&view);
        match lookup {
            bc::Lookup::Fresh(mut hit) => {
                count(ctx, p, CacheResult::Hit);
                hit.status.collapsed = collapsed;
                return serve_hit(ctx, route, &cache, &hit).await;
            }
            bc::Lookup::OnlyIfCachedMiss => {
                count(ctx, p, CacheResult::Miss);
                return send_problem(
                    ctx,
                    504,
                    "cache-only-if-cached",
                    "Not in cache (only-if-cached)",
                    false,
                )
                .await;
            }
            bc::Lookup::Bypass(_) => {
                count(ctx, p, CacheResult::Bypass);
                let mut tap = Tap::new(&cache, &req, Mode::Pass(bc::status::Fwd::Bypass));
                return proxy::proxy_tapped(ctx, p, route, up, Some(&mut tap)).await;
            }
            bc::Lookup::Miss(m) => {
                let leader = match m.join {
                    bc::Join::Leader(l) => Some(l),
                    bc::Join::Follower(w) if !waited => {
                        waited = true;
                        collapsed = wait(&cache, w).await == bc::Outcome::Stored;
                        continue;
                    }
                    _ => None,
                };
                count(ctx, p, CacheResult::Miss);
                let mut tap = Tap::new(&cache, &req, Mode::Store);
                tap.status = m.status;
                tap.status.collapsed = collapsed;
                tap.leader = leader;
                return proxy::proxy_tapped(ctx, p, route, up, Some(&mut tap)).await;
            }
            bc::Lookup::Stale(mut s) => {
                if s.serve_while_revalidating {
                    count(ctx, p, CacheResult::Stale);
                    s.hit.status.hit = true;
                    s.hit.status.fwd = None;
                    s.hit.status.detail = Some("stale-while-revalidate".into());
                    let served = serve_hit(ctx, route, &cache, &s.hit).await;
                    if s.refresh.is_some() && served.keep {
                        // The client has its answer: refresh the key for the next ones. The
                        // client connection is set aside meanwhile, so that the refresh does
                        // not end when the client closes (nothing is sent to it).
                        let mut tap = Tap::new(&cache, &req, Mode::Refresh);
                        tap.ops = Some(revalidation_ops(&route.request_headers, &s));
                        tap.stale = Some(s);
                        let client = ctx.stream.take();
                        let _ = proxy::proxy_tapped(ctx, p, route, up, Some(&mut tap)).await;
                        *ctx.stream = client;
                    }
                    return served;
                }
                let leader = match s.join.take() {
                    Some(bc::Join::Leader(l)) => Some(l),
                    Some(bc::Join::Follower(w)) if !waited => {
                        waited = true;
                        collapsed = wait(&cache, w).await == bc::Outcome::Stored;
                        continue;
                    }
                    _ => None,
                };
                count(ctx, p, CacheResult::Stale);
                let mut tap = Tap::new(&cache, &req, Mode::Revalidate);
                tap.status = s.hit.status.clone();
                tap.status.collapsed = collapsed;
                tap.leader = leader;
                tap.ops = Some(revalidation_ops(&route.request_headers, &s));
                tap.stale = Some(s);
                let out = proxy::proxy_tapped(ctx, p, route, up, Some(&mut tap)).await;
                if out.status != TAKEN_OVER {
                    return out;
                }
                let upstream = out.upstream;
                let mut o = match tap.result.take() {
                    Some(Answer::Hit(hit)) => serve_hit(ctx, route, &cache, &hit).await,
                    Some(Answer::Stale) => match tap.stale.take() {
                        Some(mut s) => {
                            s.hit.status.hit = true;
                            let why = if s.serve_if_error {
                                "stale-if-error"
                            } else {
                                "stale-disconnected"
                            };
                            s.hit.status.detail = Some(why.into());
                            serve_hit(ctx, route, &cache, &s.hit).await
                        }
                        None => {
                            send_problem(ctx, 502, "upstream-unavailable", "Bad Gateway", false)
                                .await
                        }
                    },
                    None => {
                        // The 304 did not describe the stored response: fetch it whole.
                        drop(tap);
                        let mut tap = Tap::new(&cache, &req, Mode::Store);
                        return proxy::proxy_tapped(ctx, p, route, up, Some(&mut tap)).await;
                    }
                };
                o.upstream = upstream;
                return o;
            }
        }
    }
}

/// Count how a request on a cached route is served (when metrics are on).
fn count(ctx: &Ctx<'_>, p: &Pipeline, r: CacheResult) {
    if p.metrics {
        ctx.w.metrics.borrow_mut().cache(r);
    }
}

/// Waits for another request's fetch of the same key, at most the collapsing timeout.
async fn wait(cache: &RefCell<bc::Cache>, w: bc::Waiter) -> bc::Outcome {
    let secs = cache.borrow().config().collapse_timeout;
    let mut w = pin!(w);
    let mut timeout = pin!(monoio::time::sleep(Duration::from_secs(u64::from(secs))));
    match race(w.as_mut(), timeout.as_mut()).await {
        Either::Left(o) => o,
        Either::Right(()) => bc::Outcome::TimedOut,
    }
}

/// The route's request field edits, plus the revalidation's: the client's own conditionals
/// and range replaced by the stored response's validators.
fn revalidation_ops(route: &HeaderOps, s: &bc::Stale) -> HeaderOps {
    let mut ops = route.clone();
    for f in bc::revalidate::CLIENT_CONDITIONALS.iter().chain(&["range"]) {
        ops.drop.push(f.as_bytes().to_vec());
    }
    for (n, v) in &s.conditional.add {
        ops.add.push((n.as_bytes().to_vec(), v.to_vec()));
    }
    ops
}

/// What the tap does with the upstream response.
enum Mode {
    /// A miss: store what may be stored.
    Store,
    /// A stale response's revalidation: a 304 refreshes it, an error may serve it.
    Revalidate,
    /// A background refresh: nothing goes to the client.
    Refresh,
    /// An unsafe method: invalidate on success.
    Invalidate,
    /// Not cached: say why in `Cache-Status`.
    Pass(bc::status::Fwd),
}

/// What the cache answers instead of the upstream response.
enum Answer {
    Hit(bc::Hit),
    Stale,
}

struct Tap<'a> {
    cache: &'a RefCell<bc::Cache>,
    req: &'a Owned,
    mode: Mode,
    request_time: bc::Time,
    status: bc::CacheStatus,
    leader: Option<bc::Leader>,
    pending: Option<bc::Pending>,
    stale: Option<bc::Stale>,
    ops: Option<HeaderOps>,
    result: Option<Answer>,
}

impl<'a> Tap<'a> {
    fn new(cache: &'a RefCell<bc::Cache>, req: &'a Owned, mode: Mode) -> Tap<'a> {
        use bc::Clock;
        Tap {
            cache,
            req,
            mode,
            request_time: bc::SystemClock.now(),
            status: bc::CacheStatus::default(),
            leader: None,
            pending: None,
            stale: None,
            ops: None,
            result: None,
        }
    }

    fn finish(&mut self, outcome: bc::Outcome) {
        if let Some(l) = self.leader.take() {
            l.finish(outcome);
        }
    }

    fn status_line(&self, extra: &mut Vec<u8>) {
        let name = self.cache.borrow().config().name.clone();
        extra.extend_from_slice(b"Cache-Status: ");
        extra.extend_from_slice(self.status.render(&name).as_bytes());
        extra.extend_from_slice(b"\r\n");
    }

    /// Tries to store the response; the `Cache-Status` says what happened.
    fn try_store(&mut self, resp: &bc::Response<'_>) {
        let lines = self.req.lines();
        let view = self.req.view(&lines);
        let r = self
            .cache
            .borrow_mut()
            .store(&view, resp, self.request_time);
        match r {
            Ok(p) => {
                self.status.stored = true;
                self.pending = Some(p);
            }
            Err(why) => {
                self.status.detail = Some(why.as_str().to_string());
                // Nothing will be stored: waiters go upstream now rather than after the body.
                self.finish(bc::Outcome::NotStorable);
            }
        }
    }
}

impl ResponseTap for Tap<'_> {
    fn request_ops(&self) -> Option<&HeaderOps> {
        self.ops.as_ref()
    }

    fn on_head(&mut self, status: u16, fields: &[(&[u8], &[u8])], extra: &mut Vec<u8>) -> TapHead {
        let resp = bc::Response {
            status,
            headers: fields,
        };
        match self.mode {
            Mode::Invalidate => {
                let lines = self.req.lines();
                let view = self.req.view(&lines);
                self.cache.borrow_mut().invalidate(&view, &resp);
                TapHead::Relay
            }
            Mode::Pass(fwd) => {
                self.status.fwd = Some(fwd);
                self.status.fwd_status = Some(status);
                self.status_line(extra);
                TapHead::Relay
            }
            Mode::Store => {
                self.status.fwd_status = Some(status);
                self.try_store(&resp);
                self.status_line(extra);
                TapHead::Relay
            }
            Mode::Revalidate | Mode::Refresh => {
                let refresh = matches!(self.mode, Mode::Refresh);
                if status == 304 {
                    let lines = self.req.lines();
                    let view = self.req.view(&lines);
                    let hit = match &self.stale {
                        Some(s) => {
                            self.cache
                                .borrow_mut()
                                .on_304(s, &view, &resp, self.request_time)
                        }
                        None => None,
                    };
                    let stored = hit.is_some();
                    self.result = hit.map(Answer::Hit);
                    self.finish(if stored {
                        bc::Outcome::Stored
                    } else {
                        bc::Outcome::NotStorable
                    });
                    return TapHead::Absorb;
                }
                let may_serve_stale = self.stale.as_ref().is_some_and(|s| s.serve_if_error);
                if status >= 500 && (refresh || may_serve_stale) {
                    self.result = Some(Answer::Stale);
                    self.finish(bc::Outcome::Error);
                    return TapHead::Absorb;
                }
                self.status.fwd_status = Some(status);
                self.try_store(&resp);
                if refresh {
                    return TapHead::Absorb;
                }
                self.status_line(extra);
                TapHead::Relay
            }
        }
    }

    fn on_body(&mut self, data: &[u8]) {
        if let Some(p) = self.pending.as_mut() {
            if !p.push(data) {
                // Over the object bound: stop buffering; the commit refuses it.
                self.finish(bc::Outcome::NotStorable);
            }
        }
    }

    fn on_end(&mut self, complete: bool) {
        let outcome = match self.pending.take() {
            Some(p) => self.cache.borrow_mut().commit(p, complete).outcome(),
            None => bc::Outcome::NotStorable,
        };
        self.finish(outcome);
    }

    fn on_error(&mut self) -> bool {
        self.finish(bc::Outcome::Error);
        // Disconnected from the origin (unreachable, or closed before answering), a cache may
        // serve a stale response (RFC 9111 §4.2.4) unless the response forbids serving it
        // stale or the request asked for a validated one.
        let disconnected_stale_ok = self.stale.as_ref().is_some_and(|s| {
            let rules = &s.hit.stored.rules;
            s.serve_if_error
                || (s.hit.status.fwd == Some(bc::status::Fwd::Stale)
                    && !rules.no_cache
                    && !rules.must_revalidate)
        });
        if matches!(self.mode, Mode::Refresh)
            || (matches!(self.mode, Mode::Revalidate) && disconnected_stale_ok)
        {
            self.result = Some(Answer::Stale);
            return true;
        }
        false
    }
}

/// Bodies at least this large are written from where they are stored, behind the head, instead
/// of being copied behind it first.
const LARGE_BODY: usize = 16 * 1024;

/// Answer from a stored response.
async fn serve_hit(
    ctx: &mut Ctx<'_>,
    route: &CompiledRoute,
    cache: &RefCell<bc::Cache>,
    hit: &bc::Hit,
) -> Outcome {
    let name = cache.borrow().config().name.clone();
    let status = hit.status_code();
    let full = hit.stored.body.len() as u64;
    let ops = &route.response_headers;
    let mut head = ctx.w.take_xfer();
    crate::conn::reply::status_line(&mut head, status);
    let mut has_date = false;
    let ranged = status == 206 || status == 416;
    for (n, v) in hit.headers() {
        if n.eq_ignore_ascii_case(b"content-length")
            || (ranged && n.eq_ignore_ascii_case(b"content-range"))
            || n.eq_ignore_ascii_case(b"transfer-encoding")
            || n.eq_ignore_ascii_case(b"connection")
            || ops.drops(n)
        {
            continue;
        }
        has_date |= n.eq_ignore_ascii_case(b"date");
        field(&mut head, n, v);
    }
    field(&mut head, b"Age", hit.age_value().as_bytes());
    let len = match hit.range {
        bc::revalidate::RangeDecision::Partial { start, end } if status == 206 => {
            let v = format!("bytes {start}-{end}/{full}");
            field(&mut head, b"Content-Range", v.as_bytes());
            end - start + 1
        }
        bc::revalidate::RangeDecision::Unsatisfiable if status == 416 => {
            field(
                &mut head,
                b"Content-Range",
                format!("bytes */{full}").as_bytes(),
            );
            0
        }
        _ => full,
    };
    field(
        &mut head,
        b"Cache-Status",
        hit.status.render(&name).as_bytes(),
    );
    for (n, v) in &ops.add {
        field(&mut head, n, v);
    }
    head.extend_from_slice(b"Via: 1.1 bext\r\n");
    let bodied = status != 304 && status != 204;
    let close = !ctx.keep_wanted;
    let mut out = ctx.w.take_xfer();
    let mut framed = finish_head(
        ctx,
        route,
        status,
        &head,
        bodied.then_some(len),
        close,
        &mut out,
    );
    ctx.w.give_xfer(head);
    if has_date {
        // The stored `Date` stays (with `Age`, it tells downstream caches how old this is):
        // the one just added goes.
        let now = ctx.w.with_date_line(<[u8]>::to_vec);
        if let Some(at) = out.windows(now.len()).rposition(|w| w == &now[..]) {
            out.drain(at..at + now.len());
        }
    }
    let mut bytes = 0;
    let mut ok = true;
    if bodied && !ctx.is_head {
        let body = hit.body();
        // A large body unchanged by any stage leaves with the head in one `writev`, read in
        // place (copied once, by the kernel).
        if !framed.filtering && body.len() >= LARGE_BODY {
            let n = body.len() as u64;
            let hb = crate::sys::HeadAndBody::new(out, body);
            let steps = ctx.send_steps();
            let (ok, hb) = match ctx.stream.as_mut() {
                Some(s) => match steps.step().run(s.write_vectored_all(hb)).await {
                    Some((r, hb)) => (r.is_ok(), Some(hb)),
                    None => (false, None),
                },
                None => (false, Some(hb)),
            };
            if let Some(hb) = hb {
                ctx.w.give_xfer(hb.into_head());
            }
            return Outcome {
                status,
                bytes: if ok { n } else { 0 },
                keep: ok && !framed.close,
                error: (!ok).then_some("cache-send-failed"),
                upstream: None,
            };
        }
        let mut bufs = FilterBufs::take(ctx);
        match framed.piece(ctx, route, &body, true, &mut bufs, &mut out) {
            Ok(n) => bytes = n,
            Err(_) => ok = false,
        }
        bufs.give(ctx);
    }
    let steps = ctx.send_steps();
    if ok {
        ok = match ctx.stream.as_mut() {
            Some(s) => write_all(s, &mut out, steps.step()).await.is_ok(),
            None => false,
        };
    }
    ctx.w.give_xfer(out);
    Outcome {
        status,
        bytes,
        keep: ok && !framed.close,
        error: None,
        upstream: None,
    }
}

fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// A core's caches, one per cache configuration (see [`CacheRoute::id`]).
#[derive(Default)]
pub struct CoreCaches {
    map: RefCell<std::collections::HashMap<u64, Rc<RefCell<bc::Cache>>>>,
}

impl CoreCaches {
    /// The cache for `c`, made on first use.
    pub fn get(&self, c: &CacheRoute, cores: usize) -> Rc<RefCell<bc::Cache>> {
        self.map
            .borrow_mut()
            .entry(c.id)
            .or_insert_with(|| {
                Rc::new(RefCell::new(bc::Cache::new(
                    c.core_config(cores),
                    bc::SystemClock,
                )))
            })
            .clone()
    }

    /// Forgets the caches of configurations no longer in use (after a reload).
    pub fn keep_only(&self, ids: &[u64]) {
        self.map.borrow_mut().retain(|id, _| ids.contains(id));
    }

    /// Applies a purge to every cache of this core; returns the objects removed.
    pub fn purge(&self, p: &Purge) -> usize {
        let map = self.map.borrow();
        map.values()
            .map(|c| {
                let mut c = c.borrow_mut();
                match p {
                    Purge::Key(k) => c.purge_key(k.as_bytes()),
                    Purge::Prefix(k) => c.purge_prefix(k.as_bytes()),
                    Purge::Tag(t) => c.purge_tag(t.as_bytes()),
                }
            })
            .sum()
    }

    /// Objects stored on this core, over its caches.
    pub fn objects(&self) -> usize {
        self.map
            .borrow()
            .values()
            .map(|c| c.borrow().shard().len())
            .sum()
    }
}

/// What an admin purge removes, on every core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Purge {
    /// The objects stored under this key URI (`http://host/path?query`, `https://…` for requests
    /// received over TLS), every variant.
    Key(String),
    /// Every object whose key URI starts with this.
    Prefix(String),
    /// Every object tagged so by `Surrogate-Key` or `Cache-Tag`.
    Tag(String),
}
