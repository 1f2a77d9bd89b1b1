//! Starting and stopping the workers: listener binding, driver selection, threads.
//!
//! Every listener address is bound once per worker with `SO_REUSEPORT`, so the kernel spreads
//! connections over the cores. A listener on port 0 yields one port shared by all workers: the
//! first socket is bound, its port read back, and the others are bound to that port.
//!
//! `SO_REUSEPORT` would also let a second process join the group (any process of the same user
//! binding the same address with it), and the kernel would then split connections between the
//! two: a second bext started by mistake on a busy port would silently take half the traffic.
//! So at start each address is first probed with a plain bind (no `SO_REUSEPORT`), which fails
//! while anything listens there, and bext refuses to start ([`StartError::Held`]). Sharing a
//! listening address with another process is not supported. A reload binds the listeners it
//! adds without that probe: the addresses a reload adds are the operator's own edit to a
//! running server, and may have been reserved for it with `SO_REUSEPORT`.

use crate::pipeline::Pipeline;
use crate::worker::{ControlMsg, Mailbox, PipelineSlot, Shared, Worker, WorkerStats};
use socket2::{Domain, Socket, Type};
use std::io::Write as _;
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a reload waits for every worker to answer a prepare or confirm a commit. Workers
/// answer between two requests, so this only expires for a worker that is wedged or gone.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a stopping engine waits for the log writer to write the last lines.
const LOG_DRAIN: Duration = Duration::from_secs(2);

/// Which I/O driver workers run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverChoice {
    /// io_uring when the kernel allows it, epoll otherwise.
    Auto,
    Epoll,
    IoUring,
}

impl DriverChoice {
    /// The driver used when none is asked for: io_uring where the kernel allows it, epoll
    /// otherwise. At the benchmark's calibrated rates io_uring spends as little or less CPU per
    /// request than epoll in every scenario (`docs/benchmarks.md`, "Drivers").
    pub const DEFAULT: DriverChoice = DriverChoice::Auto;
}

impl std::str::FromStr for DriverChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(DriverChoice::Auto),
            "epoll" => Ok(DriverChoice::Epoll),
            "io-uring" | "io_uring" | "uring" => Ok(DriverChoice::IoUring),
            _ => Err(format!("unknown driver `{s}` (auto, epoll, io-uring)")),
        }
    }
}

/// The driver actually running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    Epoll,
    IoUring,
}

impl std::fmt::Display for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Driver::Epoll => "epoll",
            Driver::IoUring => "io-uring",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineOptions {
    /// Number of worker threads (at least 1).
    pub workers: usize,
    pub driver: DriverChoice,
    /// Pin worker `i` to core `i % cores`.
    pub pin: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            workers: available_cores(),
            driver: DriverChoice::DEFAULT,
            pin: true,
        }
    }
}

pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[derive(Debug)]
pub enum StartError {
    /// A listener could not be bound.
    Bind {
        addr: SocketAddr,
        error: std::io::Error,
    },
    /// Another process (possibly another bext) already listens on this address.
    Held { addr: SocketAddr },
    /// The requested driver is not available (io_uring forbidden by the kernel or sandbox).
    Driver(String),
    /// A worker thread could not be started.
    Thread(std::io::Error),
    /// The admin endpoint could not be served (bind, socket file, token file).
    Admin { addr: String, error: std::io::Error },
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Bind { addr, error } => write!(f, "cannot listen on {addr}: {error}"),
            StartError::Held { addr } => write!(
                f,
                "cannot listen on {addr}: address already in use: another process (possibly \
                 another bext) listens there, and bext does not share a listening address with \
                 another process; stop it or choose another address"
            ),
            StartError::Driver(m) => write!(f, "{m}"),
            StartError::Thread(e) => write!(f, "cannot start a worker thread: {e}"),
            StartError::Admin { addr, error } => {
                write!(f, "cannot serve the admin endpoint on {addr}: {error}")
            }
        }
    }
}

impl std::error::Error for StartError {}

fn bind_one(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    sock.set_reuse_address(true)?;
    sock.set_reuse_port(true)?;
    sock.set_nonblocking(true)?;
    // Accepted connections inherit it (Linux copies the listener's TCP options): one
    // `setsockopt` per listener instead of one per connection.
    sock.set_nodelay(true)?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    sock.bind(&addr.into())?;
    sock.listen(4096)?;
    Ok(sock.into())
}

/// Fail with [`StartError::Held`] when something listens on `addr` already. The probe binds
/// without `SO_REUSEPORT` (which would join a listening group instead of failing), with
/// `SO_REUSEADDR` so that connections of a stopped server still in `TIME_WAIT` do not count,
/// and closes at once. Port 0 is never held.
pub fn probe_exclusive(addr: SocketAddr) -> Result<(), StartError> {
    if addr.port() == 0 {
        return Ok(());
    }
    let probe = || -> std::io::Result<()> {
        let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        sock.set_reuse_address(true)?;
        if addr.is_ipv6() {
            sock.set_only_v6(true)?;
        }
        sock.bind(&addr.into())
    };
    match probe() {
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(StartError::Held { addr }),
        // Anything else (an address not on this host, a privileged port) is reported by the
        // real bind, with its own error.
        _ => Ok(()),
    }
}

/// Bind `addr` `n` times with `SO_REUSEPORT`; returns the sockets and the address they share.
pub fn bind_shared(
    addr: SocketAddr,
    n: usize,
) -> Result<(Vec<std::net::TcpListener>, SocketAddr), StartError> {
    let err = |error| StartError::Bind { addr, error };
    let first = bind_one(addr).map_err(err)?;
    let actual = first.local_addr().map_err(err)?;
    let mut all = vec![first];
    for _ in 1..n {
        all.push(bind_one(actual).map_err(|error| StartError::Bind {
            addr: actual,
            error,
        })?);
    }
    Ok((all, actual))
}

/// Whether the io_uring driver can run here (kernel and sandbox allow it); probed once per
/// process, on a thread of its own (see below).
pub fn io_uring_available() -> bool {
    uring_available()
}

/// Whether io_uring can run here, probed once per process.
///
/// The probe creates a ring, and a thread that created a ring is interrupted when the kernel
/// tears that ring down (the teardown queues work on the creating thread with a signal-like
/// notification, so a blocking call with a timeout there fails with `EINTR`, tens of
/// milliseconds later). The probe therefore runs on a thread of its own that ends with it, and
/// the thread that starts bext (an application embedding it, a test's client) is never touched.
fn uring_available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        std::thread::Builder::new()
            .name("bext-uring-probe".into())
            .spawn(monoio::utils::detect_uring)
            .ok()
            .and_then(|t| t.join().ok())
            .unwrap_or(false)
    })
}

/// Raise the soft limit on open descriptors to the hard limit, once per process. Every client
/// connection, parked or not, holds a descriptor, and a proxied request a second one: a soft
/// limit of 1024 (a common default) would refuse connections with `EMFILE` far below
/// `limits { connections }`. Failing to raise it is not fatal: bext runs with what it has.
fn raise_descriptor_limit() {
    static RAISED: std::sync::Once = std::sync::Once::new();
    RAISED.call_once(|| {
        if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
            eprintln!("bext: cannot raise the open file limit: {e}");
        }
    });
}

/// Why a reload was refused. In every case the running pipeline is untouched on every core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadError {
    /// A listener the new configuration adds could not be bound; nothing was bound.
    Bind { addr: SocketAddr, error: String },
    /// A worker could not prepare the new pipeline (or did not answer); every core aborted.
    Prepare(String),
    /// The engine is stopping.
    Stopping,
    /// Every worker prepared and was told to commit `generation`, but not every worker
    /// confirmed it in time (a wedged worker): the generation is published, yet this reload
    /// cannot say that every core runs it.
    Unconfirmed { generation: u64 },
}

impl std::fmt::Display for ReloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReloadError::Bind { addr, error } => write!(
                f,
                "error: cannot listen on {addr}: {error}. The running configuration is kept."
            ),
            ReloadError::Prepare(m) => {
                write!(
                    f,
                    "error: reload aborted on every core: {m}. The running configuration is kept."
                )
            }
            ReloadError::Stopping => write!(f, "error: bext is stopping; nothing was reloaded"),
            ReloadError::Unconfirmed { generation } => write!(
                f,
                "error: generation {generation} was committed but not every worker confirmed running it"
            ),
        }
    }
}

impl std::error::Error for ReloadError {}

/// What the control thread reports about one worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerStatus {
    /// The generation the worker's next request runs on.
    pub generation: u64,
    /// Open client connections.
    pub connections: usize,
    pub requests: u64,
    /// Requests answered 429 by a `rate_limit`.
    pub rate_limited: u64,
    /// Pooled upstream connections closed at reuse (stray bytes or closed by the upstream).
    pub upstream_stale_closed: u64,
    /// Upstream connections not pooled because bytes beyond the response had arrived.
    pub upstream_surplus_closed: u64,
    /// Access log lines dropped because the log sink did not keep up.
    pub log_dropped: u64,
    /// Spans exported, dropped before export, and lost in failed batches (see `trace`).
    pub spans_exported: u64,
    pub spans_dropped: u64,
    pub spans_failed: u64,
    /// (generation, requests still running on it), the active generation first; a retired
    /// generation disappears once its last request ends.
    pub in_use: Vec<(u64, usize)>,
}

/// One upstream's counters over every worker (see [`Control::upstream_status`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamStatus {
    pub name: String,
    /// Requests proxied to it (a retried request counts once).
    pub requests: u64,
    /// Failed attempts (connect errors, timeouts, resets, 5xx).
    pub failures: u64,
    pub retries: u64,
    /// Retries the policy allowed but the retry budget refused.
    pub budget_exhausted: u64,
    /// Requests answered 503 by the circuit breaker.
    pub breaker_open: u64,
    /// Workers on which the breaker's connection limit, and its pending limit, is reached now.
    pub breaker_open_connections: usize,
    pub breaker_open_pending: usize,
    /// Upstream connections in use and requests waiting for one, over the workers.
    pub active_connections: u64,
    pub pending_requests: u64,
    pub servers: Vec<ServerStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerStatus {
    pub addr: SocketAddr,
    /// Up for the active health checks (always true without a `health` block).
    pub up: bool,
    /// Workers on which it is passively ejected now.
    pub ejected_on: usize,
    /// Attempts sent to it.
    pub requests: u64,
    pub failures: u64,
    pub ejections: u64,
}

impl Default for ServerStatus {
    fn default() -> Self {
        ServerStatus {
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            up: true,
            ejected_on: 0,
            requests: 0,
            failures: 0,
            ejections: 0,
        }
    }
}

/// The control thread's end of a worker's mailbox.
struct Outbox {
    tx: mpsc::Sender<ControlMsg>,
    bell: UnixStream,
}

impl Outbox {
    fn send(&self, m: ControlMsg) -> bool {
        // The byte only wakes the worker; a full socket buffer means it is already awake.
        self.tx.send(m).is_ok() && {
            let _ = (&self.bell).write(&[1]);
            true
        }
    }
}

/// Where a reload takes its new pipeline from: re-read and compile the configuration. On
/// failure it returns the diagnostics as the operator should read them.
pub type ReloadSource = Box<dyn Fn() -> Result<Pipeline, String> + Send + Sync>;

/// Called with the new generation after each reload from the [`ReloadSource`] (the admin
/// endpoint re-reads its token file then).
pub type ReloadHook = Box<dyn Fn(u64) + Send + Sync>;

/// The control side of a running engine, shared by the engine handle, the admin endpoint and
/// whoever reloads: what a reload or a status report needs, and nothing a worker owns.
pub struct Control {
    shared: Arc<Shared>,
    /// The listeners being served: (address as configured, address bound; they differ for
    /// port 0).
    listeners: Mutex<Vec<(SocketAddr, SocketAddr)>>,
    /// Held for the duration of a reload: reloads never interleave.
    outboxes: Mutex<Vec<Outbox>>,
    /// Every pipeline published so far that may still be alive somewhere (weak).
    generations: Mutex<Vec<(u64, Weak<Pipeline>)>>,
    source: Mutex<Option<ReloadSource>>,
    /// Run after each successful reload from the source.
    reload_hooks: Mutex<Vec<ReloadHook>>,
    /// Active health probes, once per server for the whole process.
    health: crate::health::HealthChecker,
    /// Reloads committed, and reloads refused (by the compiler or by the workers).
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
    /// What the last reload source compiled changes (JSON), for the admin endpoint's answer.
    reload_note: Mutex<Option<String>>,
}

/// A running engine: worker threads serving the published pipeline.
pub struct Engine {
    control: Arc<Control>,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    addrs: Vec<SocketAddr>,
    driver: Driver,
    admin: Option<crate::admin::AdminServer>,
    /// A second handle on each worker's bell (see [`Engine::request_stop`]): stopping does not
    /// wait for the mailboxes, which a reload holds.
    bells: Vec<UnixStream>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("addrs", &self.addrs)
            .field("workers", &self.threads.len())
            .field("driver", &self.driver)
            .finish()
    }
}

impl Control {
    /// Where [`Control::reload_from_source`] takes the new pipeline from.
    pub fn set_source(&self, source: ReloadSource) {
        *self.source.lock().unwrap_or_else(|e| e.into_inner()) = Some(source);
    }

    /// Re-read the configuration through the reload source and reload it. The error is the
    /// text to show the operator (diagnostics, or why the reload was refused).
    pub fn reload_from_source(&self) -> Result<u64, String> {
        crate::notify::reloading();
        let outcome = self.reload_from_source_inner();
        crate::notify::ready(&match &outcome {
            Ok(g) => format!("serving generation {g}"),
            Err(_) => format!(
                "serving generation {}; the last reload was refused",
                self.generation()
            ),
        });
        outcome
    }

    fn reload_from_source_inner(&self) -> Result<u64, String> {
        let pipeline = {
            let source = self.source.lock().unwrap_or_else(|e| e.into_inner());
            match source.as_ref() {
                Some(f) => f().inspect_err(|_| {
                    self.reloads_failed.fetch_add(1, Ordering::Relaxed);
                })?,
                None => {
                    return Err(
                        "error: this server was not started from a configuration file; nothing to reload"
                            .into(),
                    )
                }
            }
        };
        let g = self.reload(pipeline).map_err(|e| e.to_string())?;
        for hook in self
            .reload_hooks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            hook(g);
        }
        Ok(g)
    }

    /// Set by a reload source: what the configuration it compiled changes (a JSON value), which
    /// the admin endpoint adds to its answer when that reload commits.
    pub fn set_reload_note(&self, note: Option<String>) {
        *self.reload_note.lock().unwrap_or_else(|e| e.into_inner()) = note;
    }

    /// The note of the last reload source, taken.
    pub fn take_reload_note(&self) -> Option<String> {
        self.reload_note
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Run `hook` after each successful [`Control::reload_from_source`].
    pub fn on_reload(&self, hook: ReloadHook) {
        self.reload_hooks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(hook);
    }

    /// The generation of the published pipeline.
    pub fn generation(&self) -> u64 {
        self.shared.slot.generation()
    }

    /// The addresses being listened on now (after reloads that added or removed listeners).
    pub fn listener_addrs(&self) -> Vec<SocketAddr> {
        let list = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        list.iter().map(|(_, actual)| *actual).collect()
    }

    /// Reload: make `pipeline` the one every worker runs, on all cores or none.
    ///
    /// The pipeline gets the next generation number. Phase one sends it to every worker, which
    /// prepares what it needs on its core (its access log) and answers; if any worker refuses
    /// or does not answer, every worker is told to abort and the error is returned. Phase two
    /// tells every worker to commit and returns once all of them run the new generation.
    /// Requests already running finish on the pipeline they started with; a keep-alive
    /// connection takes the new one at its next request; tunnels are not touched.
    ///
    /// Listeners the new pipeline adds are bound before phase one (a port that cannot be bound
    /// fails the reload, nothing changed) and start accepting at the commit; listeners it drops
    /// stop accepting at the commit. The other listeners are not touched.
    pub fn reload(&self, pipeline: Pipeline) -> Result<u64, ReloadError> {
        let outcome = self.reload_on_workers(pipeline);
        let counter = match outcome {
            Ok(_) => &self.reloads_ok,
            Err(_) => &self.reloads_failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        outcome
    }

    /// [`Control::reload`] without counting its outcome.
    fn reload_on_workers(&self, mut pipeline: Pipeline) -> Result<u64, ReloadError> {
        // A poisoned lock only means a panicking reload held it; the outboxes are still valid.
        let outboxes = self.outboxes.lock().unwrap_or_else(|e| e.into_inner());
        if self.shared.stop.load(Ordering::Acquire) {
            return Err(ReloadError::Stopping);
        }
        // Listeners the new pipeline adds are bound here, once per worker, before any worker
        // hears of the reload: a port that cannot be bound fails it with nothing changed.
        let current = self
            .listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut per_worker: Vec<Vec<(SocketAddr, std::net::TcpListener)>> =
            (0..outboxes.len()).map(|_| Vec::new()).collect();
        let mut next = Vec::new();
        for &addr in &pipeline.listeners {
            if let Some(&kept) = current.iter().find(|(c, _)| *c == addr) {
                next.push(kept);
                continue;
            }
            let (socks, actual) = bind_shared(addr, outboxes.len()).map_err(|e| match e {
                StartError::Bind { addr, error } => ReloadError::Bind {
                    addr,
                    error: error.to_string(),
                },
                other => ReloadError::Prepare(other.to_string()),
            })?;
            next.push((addr, actual));
            for (i, s) in socks.into_iter().enumerate() {
                per_worker[i].push((addr, s));
            }
        }
        let generation = self.shared.slot.generation() + 1;
        pipeline.generation = generation;
        // Health views of the servers that remain are carried over before any core sees the
        // pipeline; the probe set switches only once the reload is certain (below).
        self.health.adopt(&mut pipeline);
        let pipeline = Arc::new(pipeline);

        let (ack_tx, ack_rx) = mpsc::channel();
        let mut failure = None;
        for ((i, o), listeners) in outboxes.iter().enumerate().zip(per_worker) {
            let m = ControlMsg::Prepare {
                pipeline: pipeline.clone(),
                listeners,
                ack: ack_tx.clone(),
            };
            if !o.send(m) {
                failure = Some(format!("worker {i} has exited"));
            }
        }
        drop(ack_tx);
        if failure.is_none() {
            for _ in 0..outboxes.len() {
                match ack_rx.recv_timeout(CONTROL_TIMEOUT) {
                    Ok(Ok(())) => {}
                    Ok(Err(m)) => failure = Some(m),
                    Err(_) => failure = Some("a worker did not answer".into()),
                }
                if failure.is_some() {
                    break;
                }
            }
        }
        if let Some(m) = failure {
            for o in outboxes.iter() {
                o.send(ControlMsg::Abort { generation });
            }
            return Err(ReloadError::Prepare(m));
        }

        self.shared.slot.publish(pipeline.clone());
        *self.listeners.lock().unwrap_or_else(|e| e.into_inner()) = next;
        {
            let mut gens = self.generations.lock().unwrap_or_else(|e| e.into_inner());
            gens.retain(|(_, w)| w.strong_count() > 0);
            gens.push((generation, Arc::downgrade(&pipeline)));
        }
        self.health.install(&pipeline);
        drop(pipeline);
        let (done_tx, done_rx) = mpsc::channel();
        for o in outboxes.iter() {
            o.send(ControlMsg::Commit {
                generation,
                ack: done_tx.clone(),
            });
        }
        drop(done_tx);
        // Every worker prepared, so each one commits between two of its tasks; this waits for
        // the confirmations so that the caller can say "every core runs generation N".
        for _ in 0..outboxes.len() {
            if done_rx.recv_timeout(CONTROL_TIMEOUT).is_err() {
                return Err(ReloadError::Unconfirmed { generation });
            }
        }
        Ok(generation)
    }

    /// Remove what `purge` names from the response cache of every core; returns the objects
    /// removed, once every core has done it.
    pub fn purge(&self, purge: crate::handler::cache::Purge) -> Result<usize, String> {
        let outboxes = self.outboxes.lock().unwrap_or_else(|e| e.into_inner());
        let (ack_tx, ack_rx) = mpsc::channel();
        for (i, o) in outboxes.iter().enumerate() {
            let m = ControlMsg::Purge {
                purge: purge.clone(),
                ack: ack_tx.clone(),
            };
            if !o.send(m) {
                return Err(format!("worker {i} has exited"));
            }
        }
        drop(ack_tx);
        let mut total = 0;
        for _ in 0..outboxes.len() {
            match ack_rx.recv_timeout(CONTROL_TIMEOUT) {
                Ok(n) => total += n,
                Err(_) => return Err("a worker did not answer".into()),
            }
        }
        Ok(total)
    }

    /// Per worker: active generation, connections, requests, requests per generation.
    pub fn status(&self) -> Vec<WorkerStatus> {
        self.shared
            .stats
            .iter()
            .map(|s| WorkerStatus {
                generation: s.generation.load(Ordering::Acquire),
                connections: s.connections.load(Ordering::Relaxed),
                requests: s.requests.load(Ordering::Relaxed),
                rate_limited: s.rate_limited.load(Ordering::Relaxed),
                upstream_stale_closed: s.upstream_stale_closed.load(Ordering::Relaxed),
                upstream_surplus_closed: s.upstream_surplus_closed.load(Ordering::Relaxed),
                log_dropped: s.log_dropped.load(Ordering::Relaxed),
                spans_exported: s.spans_exported.load(Ordering::Relaxed),
                spans_dropped: s.spans_dropped.load(Ordering::Relaxed),
                spans_failed: s.spans_failed.load(Ordering::Relaxed),
                in_use: s.in_use.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            })
            .collect()
    }

    /// Upstream counters summed over the workers, per upstream of the active configuration
    /// (by name) and per server (by address).
    pub fn upstream_status(&self) -> Vec<UpstreamStatus> {
        let mut out: Vec<UpstreamStatus> = Vec::new();
        for s in &self.shared.stats {
            let list = s.upstreams.lock().unwrap_or_else(|e| e.into_inner());
            for u in list.iter() {
                let i = match out.iter().position(|o| o.name == u.name) {
                    Some(i) => i,
                    None => {
                        out.push(UpstreamStatus {
                            name: u.name.clone(),
                            ..UpstreamStatus::default()
                        });
                        out.len() - 1
                    }
                };
                let o = &mut out[i];
                o.requests += u.metrics.requests;
                o.failures += u.metrics.failures;
                o.retries += u.metrics.retries;
                o.budget_exhausted += u.metrics.budget_exhausted;
                o.breaker_open += u.metrics.breaker_open;
                o.breaker_open_connections += usize::from(u.breaker.connections_full);
                o.breaker_open_pending += usize::from(u.breaker.pending_full);
                o.active_connections += u64::from(u.breaker.connections);
                o.pending_requests += u64::from(u.breaker.pending);
                for (k, addr) in u.servers.iter().enumerate() {
                    let j = match o.servers.iter().position(|v| v.addr == *addr) {
                        Some(j) => j,
                        None => {
                            o.servers.push(ServerStatus {
                                addr: *addr,
                                up: true,
                                ..ServerStatus::default()
                            });
                            o.servers.len() - 1
                        }
                    };
                    let v = &mut o.servers[j];
                    let m = u.metrics.servers.get(k).copied().unwrap_or_default();
                    v.requests += m.requests;
                    v.failures += m.failures;
                    v.ejections += m.ejections;
                    v.up &= u.up.get(k).copied().unwrap_or(true);
                    v.ejected_on += usize::from(u.ejected.get(k).copied().unwrap_or(false));
                }
            }
        }
        out
    }

    /// Per worker, the ticks it has run so far: a worker whose count stops moving is stuck
    /// (the systemd watchdog looks at it, see [`crate::notify`]).
    pub fn worker_ticks(&self) -> Vec<u64> {
        (self.shared.stats.iter())
            .map(|w| w.ticks.load(Ordering::Relaxed))
            .collect()
    }

    /// Everything the admin endpoint's `GET /metrics` shows, merged over the workers (see
    /// [`crate::metrics`]).
    pub fn metrics(&self) -> crate::metrics::Snapshot {
        use crate::metrics::{Snapshot, WorkerFigures};
        let mut s = Snapshot {
            enabled: self.shared.slot.load().metrics,
            generation: self.generation(),
            reloads_ok: self.reloads_ok.load(Ordering::Relaxed),
            reloads_failed: self.reloads_failed.load(Ordering::Relaxed),
            upstreams: self.upstream_status(),
            tls_handshakes: crate::tls::COUNTERS.handshakes.load(Ordering::Relaxed),
            tls_resumed: crate::tls::COUNTERS.resumed.load(Ordering::Relaxed),
            tls_failures: crate::tls::COUNTERS.failures(),
            stages: bext_stage::hooks::counters(),
            ..Snapshot::default()
        };
        for w in &self.shared.stats {
            s.workers.push(WorkerFigures {
                connections: w.connections.load(Ordering::Relaxed),
                parked: w.parked.load(Ordering::Relaxed),
                requests: w.requests.load(Ordering::Relaxed),
                rate_limited: w.rate_limited.load(Ordering::Relaxed),
                upstream_stale_closed: w.upstream_stale_closed.load(Ordering::Relaxed),
                upstream_surplus_closed: w.upstream_surplus_closed.load(Ordering::Relaxed),
                log_dropped: w.log_dropped.load(Ordering::Relaxed),
                spans_exported: w.spans_exported.load(Ordering::Relaxed),
                spans_dropped: w.spans_dropped.load(Ordering::Relaxed),
                spans_failed: w.spans_failed.load(Ordering::Relaxed),
            });
            for (g, n) in w.in_use.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                match s.generations.iter_mut().find(|(x, _)| x == g) {
                    Some((_, total)) => *total += n,
                    None => s.generations.push((*g, *n)),
                }
            }
            s.merge(&w.metrics.lock().unwrap_or_else(|e| e.into_inner()));
        }
        s.generations.sort_unstable();
        s
    }

    /// The generations whose pipeline is still in memory (held by a worker or by a request
    /// still running on it), oldest first. Old generations leave this list once drained.
    pub fn live_generations(&self) -> Vec<u64> {
        let mut gens = self.generations.lock().unwrap_or_else(|e| e.into_inner());
        gens.retain(|(_, w)| w.strong_count() > 0);
        gens.iter().map(|(g, _)| *g).collect()
    }
}

impl Engine {
    /// Bind every listener of `pipeline`, start the workers and return once all of them run.
    pub fn start(pipeline: Pipeline, opts: EngineOptions) -> Result<Engine, StartError> {
        let n = opts.workers.max(1);
        raise_descriptor_limit();
        let driver = match opts.driver {
            DriverChoice::Epoll => Driver::Epoll,
            DriverChoice::IoUring if uring_available() => Driver::IoUring,
            DriverChoice::IoUring => return Err(StartError::Driver(
                "io_uring is not available here (kernel or sandbox forbids it); use --driver epoll"
                    .into(),
            )),
            DriverChoice::Auto if uring_available() => Driver::IoUring,
            DriverChoice::Auto => Driver::Epoll,
        };
        let mut per_worker: Vec<Vec<(SocketAddr, std::net::TcpListener)>> =
            (0..n).map(|_| Vec::new()).collect();
        let mut addrs = Vec::new();
        let mut listeners = Vec::new();
        for &addr in &pipeline.listeners {
            probe_exclusive(addr)?;
        }
        for &addr in &pipeline.listeners {
            let (socks, actual) = bind_shared(addr, n)?;
            addrs.push(actual);
            listeners.push((addr, actual));
            for (i, s) in socks.into_iter().enumerate() {
                per_worker[i].push((addr, s));
            }
        }
        let first = Arc::new(pipeline);
        let health = crate::health::HealthChecker::start(&first).map_err(StartError::Thread)?;
        let generations = Mutex::new(vec![(first.generation, Arc::downgrade(&first))]);
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            slot: PipelineSlot::new(first),
            stats: (0..n).map(|_| WorkerStats::default()).collect(),
        });
        let cores = available_cores();
        let reaper = start_reaper();
        bext_stage::hooks::provide_cpu_clock(worker_cpu_clock);
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        let mut threads = Vec::new();
        let mut outboxes = Vec::new();
        let mut bells = Vec::new();
        for (i, listeners) in per_worker.into_iter().enumerate() {
            let shared = shared.clone();
            let ready = ready_tx.clone();
            let pin = opts.pin;
            let (tx, rx) = mpsc::channel();
            let (bell_tx, bell_rx) = UnixStream::pair().map_err(StartError::Thread)?;
            bell_tx.set_nonblocking(true).map_err(StartError::Thread)?;
            bells.push(bell_tx.try_clone().map_err(StartError::Thread)?);
            outboxes.push(Outbox { tx, bell: bell_tx });
            let mailbox = Mailbox { rx, bell: bell_rx };
            let reaper = reaper.clone();
            let t = std::thread::Builder::new()
                .name(format!("bext-worker-{i}"))
                .spawn(move || {
                    ON_WORKER.with(|w| w.set(true));
                    if pin {
                        // Pinning is an optimisation; a sandbox refusing it is not an error.
                        let _ = monoio::utils::bind_to_cpu_set([i % cores]);
                    }
                    worker_thread(i, shared, listeners, mailbox, driver, ready, reaper);
                })
                .map_err(StartError::Thread)?;
            threads.push(t);
        }
        drop(ready_tx);
        let mut failure = None;
        for _ in 0..n {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(m)) => failure = Some(m),
                Err(_) => failure = Some("a worker thread exited during start-up".into()),
            }
        }
        let control = Arc::new(Control {
            shared: shared.clone(),
            listeners: Mutex::new(listeners),
            outboxes: Mutex::new(outboxes),
            generations,
            source: Mutex::new(None),
            reload_hooks: Mutex::new(Vec::new()),
            health,
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
            reload_note: Mutex::new(None),
        });
        let engine = Engine {
            control,
            shared,
            threads,
            addrs,
            driver,
            admin: None,
            bells,
        };
        if let Some(m) = failure {
            engine.shutdown();
            return Err(StartError::Driver(m));
        }
        Ok(engine)
    }

    /// The listener addresses bound at start, in the order of the pipeline's listeners (see
    /// [`Control::listener_addrs`] for the current ones after reloads).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    pub fn driver(&self) -> Driver {
        self.driver
    }

    pub fn workers(&self) -> usize {
        self.threads.len()
    }

    /// The generation of the published pipeline.
    pub fn generation(&self) -> u64 {
        self.shared.slot.generation()
    }

    /// See [`Control::reload`].
    pub fn reload(&self, pipeline: Pipeline) -> Result<u64, ReloadError> {
        self.control.reload(pipeline)
    }

    /// See [`Control::status`].
    pub fn status(&self) -> Vec<WorkerStatus> {
        self.control.status()
    }

    /// See [`Control::upstream_status`].
    pub fn upstream_status(&self) -> Vec<UpstreamStatus> {
        self.control.upstream_status()
    }

    /// See [`Control::live_generations`].
    pub fn live_generations(&self) -> Vec<u64> {
        self.control.live_generations()
    }

    /// The control side, for an admin endpoint or a signal handler.
    pub fn control(&self) -> Arc<Control> {
        self.control.clone()
    }

    /// Serve the admin endpoint (a loopback address or a unix socket) until the engine stops;
    /// returns the address served (with the port chosen for port 0).
    pub fn serve_admin(
        &mut self,
        opts: crate::admin::AdminOptions,
    ) -> Result<crate::admin::AdminAddr, StartError> {
        let addr = opts.addr.to_string();
        let admin = crate::admin::AdminServer::start(opts, self.control.clone())
            .map_err(|error| StartError::Admin { addr, error })?;
        let actual = admin.addr().clone();
        self.admin = Some(admin);
        Ok(actual)
    }

    /// The admin endpoint's TCP address, when one is served over TCP.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|a| a.local_addr())
    }

    /// The admin endpoint's address (TCP or unix socket), when one is served.
    pub fn admin_endpoint(&self) -> Option<crate::admin::AdminAddr> {
        self.admin.as_ref().map(|a| a.addr().clone())
    }

    /// Per worker: (active generation, open connections, requests served).
    pub fn stats(&self) -> Vec<(u64, usize, u64)> {
        self.shared
            .stats
            .iter()
            .map(|s| {
                (
                    s.generation.load(Ordering::Relaxed),
                    s.connections.load(Ordering::Relaxed),
                    s.requests.load(Ordering::Relaxed),
                )
            })
            .collect()
    }

    /// Ask the workers to stop accepting and drain; returns at once. Each worker is woken
    /// through its bell, so an idle one stops now, not on its next tick.
    pub fn request_stop(&self) {
        self.shared.stop.store(true, Ordering::Release);
        for bell in &self.bells {
            // A full socket buffer means the worker is already awake.
            let _ = (&*bell).write(&[1]);
        }
    }

    /// Stop accepting, let in-flight requests finish (bounded by the drain timeout), close
    /// idle connections and join the workers.
    pub fn shutdown(mut self) {
        self.request_stop();
        self.admin = None;
        self.control.health.stop();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        // The workers handed their last log lines to the writer thread; let it write them
        // (bounded: a sink nobody reads must not hold the shutdown).
        crate::log::drain(LOG_DRAIN);
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.request_stop();
        self.admin = None;
        self.control.health.stop();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        // The workers handed their last log lines to the writer thread; let it write them
        // (bounded: a sink nobody reads must not hold the shutdown).
        crate::log::drain(LOG_DRAIN);
    }
}

/// The thread that frees the pipelines workers let go of (see [`crate::worker::Held`]): a
/// retired configuration is dropped here, never between two requests of a core. It ends when
/// every worker and every pipeline it held is gone.
fn start_reaper() -> crate::worker::Reaper {
    let (tx, rx) = mpsc::channel::<Arc<Pipeline>>();
    let spawned = std::thread::Builder::new()
        .name("bext-reaper".into())
        .spawn(move || {
            for p in rx {
                drop(p);
            }
        });
    if let Err(e) = spawned {
        // The receiver went down with the closure: workers drop pipelines themselves.
        eprintln!("bext: cannot start the pipeline reaper thread: {e}");
    }
    tx
}

thread_local! {
    /// Set on the threads that serve requests (see [`worker_cpu_clock`]).
    static ON_WORKER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The CPU clock stage families may start ([`bext_stage::hooks::cpu_clock`]), on workers only:
/// the control thread blocks in calls a signal could cut short, a worker only in its
/// runtime's wait.
fn worker_cpu_clock(period: std::time::Duration, on_tick: fn()) -> std::io::Result<()> {
    if !ON_WORKER.with(|w| w.get()) {
        return Err(std::io::ErrorKind::Unsupported.into());
    }
    crate::sys::thread_cpu_clock(period, on_tick)
}

#[allow(clippy::too_many_arguments)]
fn worker_thread(
    id: usize,
    shared: Arc<Shared>,
    listeners: Vec<(SocketAddr, std::net::TcpListener)>,
    mailbox: Mailbox,
    driver: Driver,
    ready: mpsc::Sender<Result<(), String>>,
    reaper: crate::worker::Reaper,
) {
    match driver {
        Driver::Epoll => {
            let rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                .enable_timer()
                .build();
            match rt {
                Ok(mut rt) => {
                    // Ready once the worker exists (its stats name its generation): a caller
                    // of Engine::start sees every worker's state from the first status.
                    let w = Rc::new(Worker::new(id, shared, true, reaper));
                    let _ = ready.send(Ok(()));
                    drop(ready);
                    rt.block_on(crate::worker::run(w, listeners, mailbox));
                }
                Err(e) => {
                    let _ = ready.send(Err(format!("worker {id}: epoll runtime: {e}")));
                }
            }
        }
        Driver::IoUring => {
            // SINGLE_ISSUER + DEFER_TASKRUN: the ring is only touched by its worker thread, and
            // completions are processed when the worker asks for them, not by interrupts.
            let mut urb = io_uring::IoUring::builder();
            urb.setup_single_issuer().setup_defer_taskrun();
            let rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
                .uring_builder(urb)
                .with_entries(4096)
                .enable_timer()
                .build()
                .or_else(|_| {
                    monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
                        .with_entries(4096)
                        .enable_timer()
                        .build()
                });
            match rt {
                Ok(mut rt) => {
                    // Ready once the worker exists (its stats name its generation): a caller
                    // of Engine::start sees every worker's state from the first status.
                    let w = Rc::new(Worker::new(id, shared, false, reaper));
                    let _ = ready.send(Ok(()));
                    drop(ready);
                    rt.block_on(crate::worker::run(w, listeners, mailbox));
                }
                Err(e) => {
                    let _ = ready.send(Err(format!("worker {id}: io_uring runtime: {e}")));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_zero_yields_one_port_for_all_sockets() {
        let (socks, actual) = bind_shared("127.0.0.1:0".parse().unwrap(), 3).unwrap();
        assert_ne!(actual.port(), 0);
        for s in &socks {
            assert_eq!(s.local_addr().unwrap(), actual);
        }
    }

    /// Client connections get `TCP_NODELAY` from their listener, without a call of their own.
    #[test]
    fn accepted_connections_inherit_nodelay() {
        let (socks, actual) = bind_shared("127.0.0.1:0".parse().unwrap(), 1).unwrap();
        let _client = std::net::TcpStream::connect(actual).unwrap();
        socks[0].set_nonblocking(false).unwrap();
        let (accepted, _) = socks[0].accept().unwrap();
        assert!(accepted.nodelay().unwrap());
    }

    fn pipeline() -> Pipeline {
        crate::testing::empty_pipeline()
    }

    /// A second server on an address another process listens on would join its SO_REUSEPORT
    /// group and take part of its connections; it is refused, naming the address. A socket
    /// bound but not listening (a reservation) does not hold the address.
    #[test]
    fn an_address_another_server_listens_on_is_refused_at_start() {
        let opts = EngineOptions {
            workers: 2,
            driver: DriverChoice::Epoll,
            pin: false,
        };
        // What another bext holds: a listening SO_REUSEPORT group.
        let (held, addr) = bind_shared("127.0.0.1:0".parse().unwrap(), 2).unwrap();
        // What any other server holds: a plain listener.
        let plain = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        for taken in [addr, plain.local_addr().unwrap()] {
            let mut p = pipeline();
            p.listeners.push(taken);
            match Engine::start(p, opts) {
                Err(e @ StartError::Held { .. }) => {
                    let text = e.to_string();
                    assert!(text.contains(&taken.to_string()), "{text}");
                    assert!(text.contains("another process"), "{text}");
                }
                Err(e) => panic!("{taken}: expected Held, got {e}"),
                Ok(_) => panic!("{taken}: started on an address another server listens on"),
            }
        }
        drop(held);
        // Once nothing listens there, the address is free again.
        let mut p = pipeline();
        p.listeners.push(addr);
        let engine = Engine::start(p, opts).expect("the address is free again");
        engine.shutdown();
    }

    /// Prepare failures and listener changes abort on every core; a good reload reaches all.
    #[test]
    fn reloads_apply_on_every_core_or_on_none() {
        let opts = EngineOptions {
            workers: 3,
            driver: DriverChoice::Epoll,
            pin: false,
        };
        let engine = Engine::start(pipeline(), opts).unwrap();
        let generations =
            |e: &Engine| -> Vec<u64> { e.status().iter().map(|w| w.generation).collect() };
        assert_eq!(generations(&engine), vec![1, 1, 1]);

        let mut unloggable = pipeline();
        unloggable.access_log = Some(crate::pipeline::AccessLogSpec {
            target: bext_ir::LogTarget::File("/nonexistent-dir/bext/access.log".into()),
            format: bext_ir::LogFormat::Json,
        });
        // A port held by a socket without SO_REUSEPORT cannot be bound again.
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut listening = pipeline();
        listening.listeners.push(taken.local_addr().unwrap());
        type Check = fn(&ReloadError) -> bool;
        let refused: [(Pipeline, Check); 2] = [
            (
                unloggable,
                |e| matches!(e, ReloadError::Prepare(m) if m.contains("/nonexistent-dir/bext/access.log")),
            ),
            (listening, |e| matches!(e, ReloadError::Bind { .. })),
        ];
        for (p, check) in refused {
            let e = engine.reload(p).unwrap_err();
            assert!(check(&e), "{e:?}");
            assert!(
                e.to_string().contains("The running configuration is kept"),
                "{e}"
            );
            assert_eq!(engine.generation(), 1);
            assert_eq!(generations(&engine), vec![1, 1, 1]);
        }

        for want in 2..=4 {
            assert_eq!(engine.reload(pipeline()), Ok(want));
            assert_eq!(generations(&engine), vec![want; 3]);
        }
        // Nothing runs on the old generations, so only the last one stays in memory once the
        // reaper thread has freed the retired ones (it does so shortly after each commit).
        let freed_by = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while engine.live_generations() != vec![4] && std::time::Instant::now() < freed_by {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(engine.live_generations(), vec![4]);
        assert!(engine.control().listener_addrs().is_empty());

        // A listener added by a reload serves; removed by the next one, it is closed.
        let mut adding = pipeline();
        adding.listeners.push("127.0.0.1:0".parse().unwrap());
        assert_eq!(engine.reload(adding), Ok(5));
        let added = engine.control().listener_addrs();
        assert_eq!(added.len(), 1);
        assert!(std::net::TcpStream::connect(added[0]).is_ok());
        assert_eq!(engine.reload(pipeline()), Ok(6));
        assert!(engine.control().listener_addrs().is_empty());
        assert!(std::net::TcpStream::connect(added[0]).is_err());
        engine.shutdown();
    }

    #[test]
    fn driver_names_parse() {
        let table = [
            ("auto", Ok(DriverChoice::Auto)),
            ("epoll", Ok(DriverChoice::Epoll)),
            ("io-uring", Ok(DriverChoice::IoUring)),
        ];
        for (s, want) in table {
            assert_eq!(s.parse::<DriverChoice>(), want);
        }
        assert!("kqueue".parse::<DriverChoice>().is_err());
    }
}
