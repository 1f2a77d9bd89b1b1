//! One worker per core: its runtime loop, and everything the core owns — the local pipeline
//! slot, buffer free lists, upstream connection pools, round-robin cursors, the cached `Date`
//! line, the access log buffer and the request id counter. Nothing here is shared with other
//! cores; the only cross-core state is [`Shared`] (stop flag, published pipeline, counters),
//! which a worker reads on its ticker, never per request, and the worker's [`Mailbox`], through
//! which the control thread prepares and commits a reload and wakes the worker to stop.

mod reload;

use crate::stop::StopSignal;
use reload::Prepared;
pub use reload::{ControlMsg, Held, Reaper};

use crate::log::AccessLog;
use crate::pipeline::Pipeline;
use crate::upstream::{CoreUpstreams, UpstreamSnapshot};
use crate::upstream_conn::UpstreamStream;
use bext_http1::RequestHead;
use monoio::net::TcpListener;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

/// How often a worker looks at the shared state (stop flag, new pipeline) and refreshes its
/// clock-derived caches.
pub const TICK: Duration = Duration::from_millis(100);

/// The published pipeline: what a worker starts with, and the generation the control thread
/// reports. Workers switch pipelines through their [`Mailbox`] (prepare, then commit); the
/// control thread records the committed pipeline here.
#[derive(Debug)]
pub struct PipelineSlot {
    generation: AtomicU64,
    current: Mutex<Arc<Pipeline>>,
}

impl PipelineSlot {
    pub fn new(p: Arc<Pipeline>) -> PipelineSlot {
        PipelineSlot {
            generation: AtomicU64::new(p.generation),
            current: Mutex::new(p),
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn publish(&self, p: Arc<Pipeline>) {
        let g = p.generation;
        // A poisoned lock only means a panicking thread held it; the Arc inside is still valid.
        let mut cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        *cur = p;
        self.generation.store(g, Ordering::Release);
    }

    pub fn load(&self) -> Arc<Pipeline> {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Counters a worker publishes for the control thread (status, tests).
#[derive(Debug, Default)]
pub struct WorkerStats {
    pub generation: AtomicU64,
    pub connections: AtomicUsize,
    pub requests: AtomicU64,
    /// Requests answered 429 by a `rate_limit`.
    pub rate_limited: AtomicU64,
    /// Pooled upstream connections closed instead of reused: bytes nobody asked for had arrived
    /// while they were idle, or the upstream had closed them.
    pub upstream_stale_closed: AtomicU64,
    /// Upstream connections not pooled because bytes beyond the response had arrived.
    pub upstream_surplus_closed: AtomicU64,
    /// Access log lines dropped because the log writer could not keep up (a stalled sink).
    pub log_dropped: AtomicU64,
    /// Spans sent to the OTLP collector, dropped (queue full, tracing reloaded away) and lost
    /// in a batch the collector refused or did not answer.
    pub spans_exported: AtomicU64,
    pub spans_dropped: AtomicU64,
    pub spans_failed: AtomicU64,
    /// Per generation this core still runs requests on: (generation, requests holding it).
    /// Refreshed on every tick and after every commit. Idle keep-alive connections hold no
    /// generation: they take the newest one at their next request.
    pub in_use: Mutex<Vec<(u64, usize)>>,
    /// This core's upstream counters (requests, failures, retries, ejections ...), refreshed
    /// on every tick; the control thread sums them over cores.
    pub upstreams: Mutex<Vec<UpstreamSnapshot>>,
    /// Idle keep-alive connections parked outside any task, as of the last tick.
    pub parked: AtomicUsize,
    /// Ticks run: a count that stops moving means a stuck worker (the systemd watchdog).
    pub ticks: AtomicU64,
    /// This core's per-route request metrics since start, added to on every tick that had
    /// requests (see [`crate::metrics`]).
    pub metrics: Mutex<crate::metrics::Published>,
}

/// State shared between the control thread and the workers.
#[derive(Debug)]
pub struct Shared {
    pub stop: AtomicBool,
    pub slot: PipelineSlot,
    pub stats: Vec<WorkerStats>,
}

/// Per-request scratch: the connection buffer and the parsed head, taken from the worker's
/// free list when a request starts and given back when its connection goes idle, so an idle
/// connection holds no buffer.
pub struct Scratch {
    pub buf: Vec<u8>,
    pub head: RequestHead,
    pub rhead: bext_http1::ResponseHead,
    /// The request id of the current request.
    pub rid: Vec<u8>,
    /// Copies of the request fields the access log needs after the head was consumed.
    pub note: Vec<u8>,
    /// Cancels a hot read on io_uring; kept with the scratch so a request allocates none.
    pub cancel: monoio::io::Canceller,
    /// The stage states of the current request.
    pub stages: crate::stage::Exchange,
}

/// A pooled idle upstream connection.
pub struct Pooled {
    pub stream: UpstreamStream,
    pub since: Instant,
}

/// What upstream connections are pooled by: the server's address, and for TLS what the
/// connection was verified for (`bext_tls::UpstreamTls::id`; 0 for plain TCP), so a
/// connection is only reused for a server it would have been made for.
pub type PoolKey = (SocketAddr, u64);

const SCRATCH_INITIAL: usize = 4 * 1024;
const SCRATCH_KEEP_MAX: usize = 64 * 1024;
const FREE_LIST_MAX: usize = 1024;
/// Ticks without a request before a worker trims its free lists (about a second).
const QUIET_TICKS: u32 = 10;
/// Buffers of each kind a quiet worker keeps for the next request.
const QUIET_KEEP: usize = 8;

pub struct Worker {
    pub id: usize,
    pub shared: Arc<Shared>,
    /// Rc around the Arc: per-request clones stay core-local (no shared atomic counter).
    #[allow(clippy::redundant_allocation)]
    pipeline: RefCell<Rc<Held>>,
    /// Generations this core switched away from while requests still ran on them; weak, so
    /// they are freed as soon as their last request ends.
    #[allow(clippy::redundant_allocation)]
    retired: RefCell<Vec<(u64, std::rc::Weak<Held>)>>,
    prepared: RefCell<Option<Prepared>>,
    reaper: Reaper,
    /// The accept loops, by configured listener address, each with the address it is bound
    /// to and its own stop signal so that a reload can close one listener without touching
    /// the others.
    #[allow(clippy::type_complexity)]
    listeners: RefCell<
        Vec<(
            SocketAddr,
            SocketAddr,
            Rc<StopSignal>,
            monoio::task::JoinHandle<()>,
        )>,
    >,
    /// The HTTP/3 endpoints, by configured listener address, each with its stop signal (see
    /// [`Worker::serve_http3`]).
    quic: RefCell<Vec<(SocketAddr, Rc<StopSignal>)>>,
    pub stop: StopSignal,
    /// Requests between their first byte and their last response byte (drain waits for 0).
    pub in_flight: Cell<usize>,
    pub connections: Cell<usize>,
    /// Accept loops waiting for `connections` to fall below the pipeline's
    /// `max_connections` (see [`Worker::below_connection_cap`]).
    cap_waiters: RefCell<Vec<Waker>>,
    /// Connections holding their scratch while waiting for their next request (see `conn`).
    pub hot: Cell<usize>,
    /// True on epoll: a connection can wait for readiness without holding a buffer, and a
    /// dropped read loses nothing. On io_uring a posted read owns its buffer until it completes.
    pub readiness_idle: bool,
    /// Keep-alive connections quiet past their hot window, parked outside any task.
    pub parked: crate::idle::Parked,
    /// Boxed so that handing a scratch to a connection moves a pointer, not the struct.
    #[allow(clippy::vec_box)]
    scratch: RefCell<Vec<Box<Scratch>>>,
    xfer: RefCell<Vec<Vec<u8>>>,
    /// Requests served as of the last tick, and ticks since that number last moved: a worker
    /// quiet for `QUIET_TICKS` trims its free lists and releases free pages once.
    served_at_tick: Cell<u64>,
    quiet_ticks: Cell<u32>,
    pools: RefCell<HashMap<PoolKey, Vec<Pooled>>>,
    /// Per-core upstream state (balancers, ejectors, budgets, breakers, counters), one entry
    /// per pipeline generation still in use on this core, the active one last.
    upstreams: RefCell<Vec<Rc<CoreUpstreams>>>,
    /// Origin of [`Worker::now_ms`].
    epoch: Instant,
    date_line: RefCell<Vec<u8>>,
    date_secs: Cell<u64>,
    pub log: RefCell<Option<AccessLog>>,
    /// Request ids: a keyed pseudo-random permutation of a counter, not guessable from earlier
    /// ids.
    ids: crate::reqid::RequestIds,
    seed: u64,
    /// Open static files of this core (see `handler::static_files`).
    pub files: RefCell<bext_static::FileCache>,
    /// Multipart range responses sent, for their boundaries.
    boundaries: Cell<u64>,
    /// Span ids issued (see [`Worker::next_span_id`]).
    spans_issued: Cell<u64>,
    /// This core's response caches, kept across reloads that keep their configuration (see
    /// `handler::cache`).
    pub caches: crate::handler::cache::CoreCaches,
    /// Per-route request counts and latencies since the last tick (see [`crate::metrics`]).
    pub metrics: RefCell<crate::metrics::CoreMetrics>,
    /// Spans waiting for this core's OTLP exporter (see [`crate::trace`]).
    pub spans: RefCell<crate::trace::Spans>,
}

impl Worker {
    pub fn new(id: usize, shared: Arc<Shared>, readiness_idle: bool, reaper: Reaper) -> Worker {
        let p = Held::new(shared.slot.load(), &reaper);
        let log = p.access_log.as_ref().map(AccessLog::open);
        shared.stats[id]
            .generation
            .store(p.generation, Ordering::Release);
        let nanos = crate::trace::unix_ns();
        let seed = mix(nanos ^ (u64::from(std::process::id()) << 32) ^ (id as u64) << 16);
        let upstreams = Rc::new(CoreUpstreams::build(&p, mix(seed ^ p.generation), None));
        let w = Worker {
            id,
            shared,
            pipeline: RefCell::new(Rc::new(p)),
            reaper,
            retired: RefCell::new(Vec::new()),
            prepared: RefCell::new(None),
            listeners: RefCell::new(Vec::new()),
            quic: RefCell::new(Vec::new()),
            stop: StopSignal::default(),
            in_flight: Cell::new(0),
            connections: Cell::new(0),
            cap_waiters: RefCell::new(Vec::new()),
            hot: Cell::new(0),
            readiness_idle,
            parked: crate::idle::Parked::new(true),
            scratch: RefCell::new(Vec::new()),
            xfer: RefCell::new(Vec::new()),
            served_at_tick: Cell::new(0),
            quiet_ticks: Cell::new(0),
            pools: RefCell::new(HashMap::new()),
            upstreams: RefCell::new(vec![upstreams]),
            epoch: Instant::now(),
            date_line: RefCell::new(Vec::new()),
            date_secs: Cell::new(0),
            log: RefCell::new(log),
            ids: crate::reqid::RequestIds::new(id),
            seed,
            files: RefCell::new(bext_static::FileCache::new(Default::default())),
            caches: Default::default(),
            boundaries: Cell::new(0),
            spans_issued: Cell::new(0),
            metrics: RefCell::new(crate::metrics::CoreMetrics::default()),
            spans: RefCell::new(crate::trace::Spans::default()),
        };
        w.refresh_date();
        w
    }

    /// A fresh value for a `multipart/byteranges` boundary: not guessable from earlier ones.
    /// This core's cache for the route cache `c`.
    pub fn cache(&self, c: &crate::handler::cache::CacheRoute) -> Rc<RefCell<bext_cache::Cache>> {
        self.caches.get(c, self.shared.stats.len())
    }

    pub fn boundary_seed(&self) -> u64 {
        let n = self.boundaries.get().wrapping_add(1);
        self.boundaries.set(n);
        mix(self.seed ^ n.rotate_left(32))
    }

    /// `n` client connections closed: count them out and let a paused accept loop go on.
    pub fn connections_closed(&self, n: usize) {
        self.connections
            .set(self.connections.get().saturating_sub(n));
        self.wake_accepting();
    }

    fn wake_accepting(&self) {
        // Only non-empty while the worker is at its cap: nothing to do on the usual path.
        if self.cap_waiters.borrow().is_empty() {
            return;
        }
        let waiters = std::mem::take(&mut *self.cap_waiters.borrow_mut());
        for w in waiters {
            w.wake();
        }
    }

    /// Resolves once this worker holds fewer client connections than `max_connections`
    /// (open, parked, or waiting for their first request). An accept loop awaits it before
    /// each accept: at the cap, new connections wait in the kernel's backlog instead of
    /// costing a descriptor and memory here, and accepting resumes when one closes.
    pub fn below_connection_cap(&self) -> impl std::future::Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            let cap = self.pipeline.borrow().client.max_connections;
            if self.connections.get() < cap {
                return Poll::Ready(());
            }
            let mut waiters = self.cap_waiters.borrow_mut();
            if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
                waiters.push(cx.waker().clone());
            }
            Poll::Pending
        })
    }

    /// The pipeline for the next request (a connection holds it until its response is done).
    #[allow(clippy::redundant_allocation)]
    pub fn pipeline(&self) -> Rc<Held> {
        self.pipeline.borrow().clone()
    }

    pub fn take_scratch(&self) -> Box<Scratch> {
        self.scratch.borrow_mut().pop().unwrap_or_else(|| {
            Box::new(Scratch {
                buf: Vec::with_capacity(SCRATCH_INITIAL),
                head: RequestHead::default(),
                rhead: bext_http1::ResponseHead::default(),
                rid: Vec::with_capacity(32),
                note: Vec::new(),
                cancel: monoio::io::Canceller::new(),
                stages: crate::stage::Exchange::default(),
            })
        })
    }

    pub fn give_scratch(&self, mut s: Box<Scratch>) {
        if s.buf.capacity() > SCRATCH_KEEP_MAX || s.buf.capacity() < SCRATCH_INITIAL {
            s.buf = Vec::with_capacity(SCRATCH_INITIAL);
        }
        s.buf.clear();
        s.note.clear();
        s.stages.reset();
        let mut list = self.scratch.borrow_mut();
        if list.len() < FREE_LIST_MAX {
            list.push(s);
        }
    }

    pub fn take_xfer(&self) -> Vec<u8> {
        self.xfer
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(crate::body::XFER + 64))
    }

    pub fn give_xfer(&self, mut v: Vec<u8>) {
        if v.capacity() > 4 * crate::body::XFER {
            return;
        }
        v.clear();
        let mut list = self.xfer.borrow_mut();
        if list.len() < FREE_LIST_MAX / 4 {
            list.push(v);
        }
    }

    /// `Date: ...\r\n` for the current second.
    pub fn with_date_line<T>(&self, f: impl FnOnce(&[u8]) -> T) -> T {
        f(&self.date_line.borrow())
    }

    pub fn refresh_date(&self) {
        let now = crate::date::now_secs();
        if now != self.date_secs.get() {
            self.date_secs.set(now);
            let mut line = self.date_line.borrow_mut();
            line.clear();
            line.extend_from_slice(b"Date: ");
            line.extend_from_slice(crate::date::http_date(now).as_bytes());
            line.extend_from_slice(b"\r\n");
        }
    }

    pub fn now_secs(&self) -> u64 {
        self.date_secs.get()
    }

    /// A new request id: 32 lower-case hex digits, unique per process run and unpredictable
    /// from the ids seen before it (`reqid.rs`).
    pub fn next_request_id(&self, out: &mut Vec<u8>) -> [u8; 16] {
        let (a, b) = self.ids.next();
        let mut id = [0u8; 32];
        id[..16].copy_from_slice(&hex16(a));
        id[16..].copy_from_slice(&hex16(b));
        out.clear();
        out.extend_from_slice(&id);
        let mut raw = [0u8; 16];
        raw[..8].copy_from_slice(&a.to_be_bytes());
        raw[8..].copy_from_slice(&b.to_be_bytes());
        raw
    }

    /// A span id: unique on this core (a bijective mix of a counter under the core's seed),
    /// never zero. Span ids name, they do not guard: unlike request ids they need no keyed hash.
    pub fn next_span_id(&self) -> u64 {
        let n = self.spans_issued.get().wrapping_add(1);
        self.spans_issued.set(n);
        mix(self.seed.rotate_left(17) ^ n).max(1)
    }

    /// A trace id for a request whose request id is not 32 hex digits.
    pub fn next_trace_id(&self) -> [u8; 16] {
        let (a, b) = self.ids.next();
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&a.to_be_bytes());
        id[8..].copy_from_slice(&b.max(1).to_be_bytes());
        id
    }

    /// This core's upstream state for the generation of `p` (the generation a request runs
    /// on, which may be older than the active one).
    pub fn upstreams_for(&self, p: &Pipeline) -> Rc<CoreUpstreams> {
        let mut sets = self.upstreams.borrow_mut();
        if let Some(u) = sets.iter().rev().find(|u| u.generation == p.generation) {
            return u.clone();
        }
        // Every pipeline a request can hold was prepared on this core, and its state is kept
        // while the generation is in use; this only builds for pipelines handed to the worker
        // some other way (tests).
        let u = Rc::new(CoreUpstreams::build(p, mix(self.seed ^ p.generation), None));
        sets.insert(0, u.clone());
        u
    }

    /// Milliseconds on this core's monotonic clock (passive ejection and retry budget time).
    pub fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// An idle pooled connection to `key`, if one younger than `max_idle` exists.
    pub fn checkout(&self, key: PoolKey, max_idle: Duration) -> Option<UpstreamStream> {
        let mut pools = self.pools.borrow_mut();
        let list = pools.get_mut(&key)?;
        while let Some(c) = list.pop() {
            if c.since.elapsed() < max_idle {
                return Some(c.stream);
            }
        }
        None
    }

    pub fn checkin(&self, key: PoolKey, stream: UpstreamStream, keep: usize) {
        if keep == 0 || self.stop.is_stopped() {
            return;
        }
        let mut pools = self.pools.borrow_mut();
        let list = pools.entry(key).or_default();
        if list.len() < keep {
            list.push(Pooled {
                stream,
                since: Instant::now(),
            });
        }
    }

    /// Called on every tick: clock caches, log flush, per-generation counters, stop flag.
    fn tick(&self) {
        self.refresh_date();
        self.stop.expire(Instant::now());
        self.flush_log();
        if let Some(u) = self.upstreams.borrow().last() {
            u.expire_ejections(self.now_ms());
        }
        self.publish_in_use();
        self.publish_metrics();
        self.trim_when_quiet();
        self.stop_if_asked();
        crate::callout::tick(self);
    }

    /// Add this core's request metrics since the last tick to its published totals, and count
    /// the tick.
    fn publish_metrics(&self) {
        let stats = &self.shared.stats[self.id];
        self.metrics.borrow_mut().publish(&stats.metrics);
        let (exported, dropped, failed) = crate::trace::take_counts(&self.spans);
        if exported + dropped + failed > 0 {
            stats.spans_exported.fetch_add(exported, Ordering::Relaxed);
            stats.spans_dropped.fetch_add(dropped, Ordering::Relaxed);
            stats.spans_failed.fetch_add(failed, Ordering::Relaxed);
        }
        stats.parked.store(self.parked.count(), Ordering::Relaxed);
        stats.ticks.fetch_add(1, Ordering::Relaxed);
    }

    /// Start stopping when the control thread asked: it sets the shared flag, then rings every
    /// worker's bell, so a worker stops at once rather than on its next tick (which still
    /// looks, should a bell be lost).
    fn stop_if_asked(&self) {
        if self.shared.stop.load(Ordering::Acquire) && !self.stop.is_stopped() {
            self.stop.trigger();
        }
    }

    /// Hand the access log buffer to the writer thread (never waits) and publish the lines
    /// dropped so far.
    fn flush_log(&self) {
        if let Some(log) = self.log.borrow_mut().as_mut() {
            log.flush();
            let dropped = log.take_dropped();
            if dropped > 0 {
                self.shared.stats[self.id]
                    .log_dropped
                    .fetch_add(dropped, Ordering::Relaxed);
            }
        }
    }

    fn start_accepting(self: &Rc<Self>, addr: SocketAddr, l: TcpListener) {
        let bound = l.local_addr().unwrap_or(addr);
        let own = Rc::new(StopSignal::default());
        let h = monoio::spawn(accept_loop(self.clone(), addr, l, own.clone()));
        self.listeners.borrow_mut().push((addr, bound, own, h));
    }

    /// Serve HTTP/3 as the current pipeline says: start it on every listener that lists it
    /// and is not served yet (at start, and on listeners a reload adds or turns it on for),
    /// and stop it where the pipeline no longer lists it (its endpoint accepts no new
    /// connection; live ones drain: GOAWAY, the requests accepted finish, then the close).
    /// QUIC shares the TCP listener's port (`bound`), so its Alt-Svc names that port.
    fn serve_http3(self: &Rc<Self>) {
        let p = self.pipeline();
        let listeners = self.listeners.borrow();
        let mut quic = self.quic.borrow_mut();
        quic.retain(|(addr, stop)| {
            let keep = p.http3.contains(addr) && listeners.iter().any(|l| l.0 == *addr);
            if !keep {
                stop.trigger();
                if let Some(l) = listeners.iter().find(|l| l.0 == *addr) {
                    crate::h3::withdraw(l.1.port());
                }
            }
            keep
        });
        for (addr, bound, _, _) in listeners.iter() {
            if p.http3.contains(addr) && !quic.iter().any(|(a, _)| a == addr) {
                let own = Rc::new(StopSignal::default());
                crate::h3::advertise(bound.port());
                monoio::spawn(crate::h3::serve(self.clone(), *addr, *bound, own.clone()));
                quic.push((*addr, own));
            }
        }
    }

    /// After a burst: once no request has been served for `QUIET_TICKS` ticks, keep only a few
    /// buffers in the free lists and hand the free pages back to the kernel. Once per quiet
    /// period; any request re-arms it.
    fn trim_when_quiet(&self) {
        let served = self.shared.stats[self.id].requests.load(Ordering::Relaxed);
        if served != self.served_at_tick.get() || self.in_flight.get() > 0 {
            self.served_at_tick.set(served);
            self.quiet_ticks.set(0);
            return;
        }
        let quiet = self.quiet_ticks.get().saturating_add(1);
        self.quiet_ticks.set(quiet);
        if quiet != QUIET_TICKS {
            return;
        }
        self.scratch.borrow_mut().truncate(QUIET_KEEP);
        self.xfer.borrow_mut().truncate(QUIET_KEEP);
        // Open files are closed too: a quiet core holds no descriptor for files that may
        // have been replaced or removed since.
        self.files.borrow_mut().clear();
        crate::sys::release_free_pages();
    }

    /// Drop pooled connections idle for too long.
    fn sweep_pools(&self) {
        let p = self.pipeline();
        let max_idle = p
            .upstreams
            .iter()
            .map(|u| u.idle_timeout)
            .max()
            .unwrap_or(Duration::ZERO);
        let mut pools = self.pools.borrow_mut();
        for list in pools.values_mut() {
            list.retain(|c| c.since.elapsed() < max_idle);
        }
        pools.retain(|_, l| !l.is_empty());
    }
}

/// splitmix64 finaliser: spreads counter bits over the whole word.
/// `v` as 16 lowercase hex digits, most significant first, without a loop: each half's
/// nibbles are spread to one byte each, then turned into digits all at once.
pub(crate) fn hex16(v: u64) -> [u8; 16] {
    fn half(v: u32) -> [u8; 8] {
        let mut x = u64::from(v);
        x = (x | (x << 16)) & 0x0000_ffff_0000_ffff;
        x = (x | (x << 8)) & 0x00ff_00ff_00ff_00ff;
        x = (x | (x << 4)) & 0x0f0f_0f0f_0f0f_0f0f;
        // 1 in each byte whose nibble is 10 or more: those become 'a'..'f', not ':'..'?'.
        let letters = ((x + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
        (x + 0x3030_3030_3030_3030 + letters * 0x27).to_be_bytes()
    }
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&half((v >> 32) as u32));
    out[8..].copy_from_slice(&half(v as u32));
    out
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The body of a worker thread's runtime: accept on every listener until stopped, then drain.
pub async fn run(
    w: Rc<Worker>,
    listeners: Vec<(SocketAddr, std::net::TcpListener)>,
    mailbox: Mailbox,
) {
    monoio::spawn(control_loop(w.clone(), mailbox));
    crate::callout::install(&w);
    if w.parked.available() {
        monoio::spawn(crate::idle::watch(w.clone()));
    }
    for (addr, l) in listeners {
        match TcpListener::from_std(l) {
            Ok(l) => w.start_accepting(addr, l),
            Err(e) => eprintln!("bext: worker {}: listener: {e}", w.id),
        }
    }
    // HTTP/3 on the same ports over UDP (see `h3`, and `h3/steer.rs` for the cores).
    w.serve_http3();
    let ticker = w.clone();
    monoio::spawn(async move {
        let mut n = 0u32;
        loop {
            monoio::time::sleep(TICK).await;
            ticker.tick();
            n = n.wrapping_add(1);
            if n.is_multiple_of(10) {
                ticker.sweep_pools();
            }
        }
    });
    w.stop.wait().await;
    let accepting = std::mem::take(&mut *w.listeners.borrow_mut());
    for (_, _, _, a) in accepting {
        a.await;
    }
    // Drain: in-flight requests finish (idle keep-alive connections closed themselves when the
    // stop signal fired), bounded by the drain timeout.
    let deadline = Instant::now() + w.pipeline().client.drain_timeout;
    while w.in_flight.get() > 0 && Instant::now() < deadline {
        monoio::time::sleep(Duration::from_millis(10)).await;
    }
    crate::trace::drain(&w).await;
    w.flush_log();
    w.publish_metrics();
    w.pools.borrow_mut().clear();
}

/// The worker's end of its control channel: messages, and a socket the control thread writes
/// a byte to after each message, and when it asks the workers to stop, so that the worker wakes
/// at once rather than on its tick.
pub struct Mailbox {
    pub rx: mpsc::Receiver<ControlMsg>,
    pub bell: std::os::unix::net::UnixStream,
}

async fn control_loop(w: Rc<Worker>, mailbox: Mailbox) {
    use monoio::io::AsyncReadRent;
    let Mailbox { rx, bell } = mailbox;
    let mut bell = match bell
        .set_nonblocking(true)
        .and_then(|()| monoio::net::UnixStream::from_std(bell))
    {
        Ok(b) => b,
        Err(e) => {
            eprintln!("bext: worker {}: control channel: {e}", w.id);
            return;
        }
    };
    let mut buf = vec![0u8; 64];
    loop {
        let (res, b) = bell.read(buf).await;
        buf = b;
        while let Ok(m) = rx.try_recv() {
            w.control(m);
        }
        w.stop_if_asked();
        if !matches!(res, Ok(n) if n > 0) {
            // The control side is gone (engine dropped): nothing more will come.
            return;
        }
    }
}

/// Accept errors reported on stderr: at most one line a second for the whole process, with the
/// number of errors left out since the previous line. Out of descriptors (`EMFILE`), the
/// listener stays readable and every worker retries every 20 ms: unthrottled, that is
/// thousands of lines a minute on the path the operator reads to find out what happened.
pub(crate) struct ErrorThrottle {
    /// Seconds since `UNIX_EPOCH` of the last line printed (0: none yet).
    last: AtomicU64,
    suppressed: AtomicU64,
}

impl ErrorThrottle {
    pub(crate) const fn new() -> ErrorThrottle {
        ErrorThrottle {
            last: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(n)` when a line may be printed at second `now` (`n` errors were left out since
    /// the last one); `None` when this error is only counted.
    pub(crate) fn admit(&self, now: u64) -> Option<u64> {
        let last = self.last.load(Ordering::Relaxed);
        if now > last
            && self
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }
}

static ACCEPT_ERRORS: ErrorThrottle = ErrorThrottle::new();

fn report_accept_error(e: &std::io::Error) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_secs().max(1));
    match ACCEPT_ERRORS.admit(now) {
        Some(0) => eprintln!("bext: accept: {e}"),
        Some(n) => eprintln!("bext: accept: {e} ({n} more accept errors since the last report)"),
        None => {}
    }
}

/// Stop listening on `l` at once: the runtime closes the descriptor with an operation of its
/// own, which a stopping worker may never submit (its ring goes first). Shutting a listening
/// socket down takes it out of the port at once.
fn stop_listening(l: &TcpListener) {
    if let Ok(dup) = crate::sys::duplicate(l.as_raw_fd()) {
        let _ = socket2::Socket::from(dup).shutdown(std::net::Shutdown::Both);
    }
}

async fn accept_loop(w: Rc<Worker>, addr: SocketAddr, l: TcpListener, own: Rc<StopSignal>) {
    let mut cancel = monoio::io::Canceller::new();
    loop {
        let stop = async {
            crate::io::race(std::pin::pin!(w.stop.wait()), std::pin::pin!(own.wait())).await
        };
        let mut stop = std::pin::pin!(stop);
        // At the connection cap no accept is posted: connections wait in the backlog.
        if w.connections.get() >= w.pipeline.borrow().client.max_connections {
            let room = std::pin::pin!(w.below_connection_cap());
            if let crate::io::Either::Right(_) = crate::io::race(room, stop.as_mut()).await {
                stop_listening(&l);
                return;
            }
            continue;
        }
        let mut accept = std::pin::pin!(l.cancelable_accept(cancel.handle()));
        match crate::io::race(accept.as_mut(), stop).await {
            crate::io::Either::Left(Ok((stream, peer))) => {
                // The TLS of the generation in force when the connection arrived.
                let tls = w.pipeline.borrow().tls_for(addr).cloned();
                match tls {
                    None => {
                        monoio::spawn(crate::conn::serve(w.clone(), stream, peer));
                    }
                    Some(tls) => {
                        monoio::spawn(crate::conn::serve_tls(w.clone(), stream, peer, tls));
                    }
                }
            }
            crate::io::Either::Left(Err(e)) => {
                // Out of descriptors or a connection reset while queued: back off briefly
                // instead of spinning, and report it without flooding stderr.
                report_accept_error(&e);
                monoio::time::sleep(Duration::from_millis(20)).await;
            }
            crate::io::Either::Right(_) => {
                // Cancel the posted accept and wait for it to end before the listener goes. On
                // io_uring a pending accept holds the listening socket open until the ring is
                // torn down, which the kernel does later: the socket would stay in its
                // SO_REUSEPORT group, and a server started on the same port meanwhile would
                // lose the connections the kernel still hands to it (they are reset).
                // A connection accepted in that instant is closed: the worker is stopping.
                let _ = std::mem::take(&mut cancel).cancel();
                let _ = accept.await;
                // And stop listening now.
                stop_listening(&l);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One line a second at most, each with the count of errors left out before it.
    #[test]
    fn accept_errors_are_reported_once_a_second() {
        let t = ErrorThrottle::new();
        // (second, what admit says)
        let steps = [
            (100, Some(0)),
            (100, None),
            (100, None),
            (100, None),
            (101, Some(3)),
            (101, None),
            (105, Some(1)),
            (104, None),
            (106, Some(1)),
        ];
        for (i, (now, want)) in steps.into_iter().enumerate() {
            assert_eq!(t.admit(now), want, "step {i}");
        }
    }

    #[test]
    fn hex16_matches_formatting() {
        for v in [
            0,
            1,
            0x9,
            0xa,
            0xf,
            0x10,
            0xdead_beef,
            u64::MAX,
            0x0123_4567_89ab_cdef,
        ] {
            assert_eq!(hex16(v), format!("{v:016x}").as_bytes(), "{v:#x}");
        }
        let mut z = 1u64;
        for _ in 0..10_000 {
            z = mix(z);
            assert_eq!(hex16(z), format!("{z:016x}").as_bytes());
        }
    }

    /// The two phases on one worker: only a prepared generation commits, an abort forgets only
    /// its own generation, a stopping worker refuses to prepare.
    /// A stop reaches an idle worker through its bell, not on a tick: the worker here has no
    /// ticker at all, and still stops once the flag is set and the bell rung.
    #[test]
    fn an_idle_worker_stops_when_its_bell_rings_without_a_tick() {
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            slot: PipelineSlot::new(Arc::new(crate::testing::empty_pipeline())),
            stats: vec![WorkerStats::default()],
        });
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .unwrap();
        let (_tx, rx) = mpsc::channel();
        let (mut bell, worker_end) = std::os::unix::net::UnixStream::pair().unwrap();
        rt.block_on(async {
            let w = Rc::new(Worker::new(0, shared.clone(), true, mpsc::channel().0));
            monoio::spawn(control_loop(
                w.clone(),
                Mailbox {
                    rx,
                    bell: worker_end,
                },
            ));
            // Let the control loop start waiting on its bell.
            monoio::time::sleep(Duration::from_millis(1)).await;
            assert!(!w.stop.is_stopped());
            shared.stop.store(true, Ordering::Release);
            std::io::Write::write_all(&mut bell, &[1]).unwrap();
            // Without the bell this waits forever; the bound only turns a hang into a failure.
            let never_ticks = monoio::time::sleep(Duration::from_secs(30));
            let woken =
                crate::io::race(std::pin::pin!(w.stop.wait()), std::pin::pin!(never_ticks)).await;
            assert!(
                matches!(woken, crate::io::Either::Left(crate::stop::Woken::Stopped)),
                "the worker did not stop on its bell"
            );
        });
    }

    #[test]
    fn prepare_commit_and_abort_follow_generations() {
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            slot: PipelineSlot::new(Arc::new(crate::testing::empty_pipeline())),
            stats: vec![WorkerStats::default()],
        });
        let next = |g: u64| {
            let mut p = crate::testing::empty_pipeline();
            p.generation = g;
            Arc::new(p)
        };
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .unwrap();
        rt.block_on(async {
            let w = Rc::new(Worker::new(0, shared.clone(), true, mpsc::channel().0));
            let (ack, acks) = mpsc::channel();
            let (done, dones) = mpsc::channel();
            let prepare = |g| ControlMsg::Prepare {
                pipeline: next(g),
                listeners: Vec::new(),
                ack: ack.clone(),
            };
            let commit = |g| ControlMsg::Commit {
                generation: g,
                ack: done.clone(),
            };
            // (message, active generation after it has been handled)
            let steps: Vec<(ControlMsg, u64)> = vec![
                (prepare(2), 1),
                (ControlMsg::Abort { generation: 3 }, 1),
                (commit(2), 2),
                (commit(3), 2),
                (prepare(3), 2),
                (ControlMsg::Abort { generation: 3 }, 2),
                (commit(3), 2),
            ];
            for (i, (m, want)) in steps.into_iter().enumerate() {
                let is_commit = matches!(m, ControlMsg::Commit { .. });
                w.control(m);
                if is_commit {
                    // The confirmation is sent from a task; let it run.
                    monoio::time::sleep(Duration::from_millis(1)).await;
                    assert_eq!(dones.try_recv(), Ok(want), "step {i}");
                }
                assert_eq!(w.pipeline().generation, want, "step {i}");
                assert_eq!(
                    shared.stats[0].generation.load(Ordering::Acquire),
                    want,
                    "step {i}"
                );
            }
            assert_eq!(acks.try_iter().collect::<Vec<_>>(), vec![Ok(()), Ok(())]);
            w.stop.trigger();
            w.control(prepare(4));
            assert!(matches!(acks.try_recv(), Ok(Err(m)) if m.contains("stopping")));
        });
    }

    #[test]
    fn request_ids_are_32_hex_digits_and_distinct() {
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            slot: PipelineSlot::new(Arc::new(crate::testing::empty_pipeline())),
            stats: vec![WorkerStats::default()],
        });
        let w = Worker::new(0, shared, true, mpsc::channel().0);
        let mut a = Vec::new();
        let mut b = Vec::new();
        w.next_request_id(&mut a);
        w.next_request_id(&mut b);
        assert_eq!(a.len(), 32);
        assert!(a.iter().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    /// Ids were a seed plus a counter: the next one followed from any one seen.
    #[test]
    fn request_ids_are_not_sequential() {
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            slot: PipelineSlot::new(Arc::new(crate::testing::empty_pipeline())),
            stats: vec![WorkerStats::default()],
        });
        let w = Worker::new(0, shared, true, mpsc::channel().0);
        let halves = |id: &[u8]| {
            let s = std::str::from_utf8(id).unwrap();
            (
                u64::from_str_radix(&s[..16], 16).unwrap(),
                u64::from_str_radix(&s[16..], 16).unwrap(),
            )
        };
        let mut prev = None;
        let mut id = Vec::new();
        for _ in 0..256 {
            w.next_request_id(&mut id);
            let cur = halves(&id);
            if let Some((a, b)) = prev {
                for (x, y) in [(a, cur.0), (b, cur.1)] {
                    let d = y.wrapping_sub(x);
                    // A random pair is this close with probability 2^-31.
                    assert!(
                        d > 1 << 32 && d.wrapping_neg() > 1 << 32,
                        "{x:x} then {y:x}"
                    );
                }
            }
            prev = Some(cur);
        }
    }

    /// Each generation gets its own upstream state on the core; the weights of the
    /// configuration drive the picks, and counters of servers that remain are carried over.
    #[test]
    fn upstream_state_follows_generations_and_keeps_counters() {
        use crate::testing::pipeline_with_upstream;
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            slot: PipelineSlot::new(Arc::new(pipeline_with_upstream(
                &[("127.0.0.1:1", 2), ("127.0.0.1:2", 1)],
                1,
            ))),
            stats: vec![WorkerStats::default()],
        });
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .unwrap();
        rt.block_on(async {
            let w = Rc::new(Worker::new(0, shared.clone(), true, mpsc::channel().0));
            let p1 = w.pipeline();
            let u1 = w.upstreams_for(&p1);
            let picks: Vec<usize> = (0..6)
                .map(|_| {
                    let st = &mut *u1.list[0].borrow_mut();
                    let i = st
                        .balancer
                        .pick(&Default::default(), &st.health, None)
                        .unwrap();
                    st.metrics.attempt(i);
                    i
                })
                .collect();
            assert_eq!(picks, vec![0, 1, 0, 0, 1, 0]);
            let (ack, acks) = mpsc::channel();
            let (done, _dones) = mpsc::channel();
            let p2 = Arc::new(pipeline_with_upstream(
                &[("127.0.0.1:2", 1), ("127.0.0.1:3", 1)],
                2,
            ));
            w.control(ControlMsg::Prepare {
                pipeline: p2,
                listeners: Vec::new(),
                ack,
            });
            assert_eq!(acks.try_recv(), Ok(Ok(())));
            w.control(ControlMsg::Commit {
                generation: 2,
                ack: done,
            });
            let p2 = w.pipeline();
            let u2 = w.upstreams_for(&p2);
            assert_eq!(u2.generation, 2);
            let requests: Vec<u64> = u2.list[0]
                .borrow()
                .metrics
                .servers
                .iter()
                .map(|m| m.requests)
                .collect();
            assert_eq!(requests, vec![2, 0], "127.0.0.1:2 kept its count");
            // The request still holding generation 1 finds its own state.
            assert_eq!(w.upstreams_for(&p1).generation, 1);
            drop(p1);
            w.publish_in_use();
            let published = shared.stats[0].upstreams.lock().unwrap().clone();
            assert_eq!(published.len(), 1);
            assert_eq!(published[0].servers[0].port(), 2);
        });
    }
}
