//! Starting and stopping the workers: listener binding, driver selection, threads.
//!
//! Every listener address is bound once per worker with `SO_REUSEPORT`, so the kernel spreads
//! connections over the cores. A listener on port 0 yields one port shared by all workers: the
//! first socket is bound, its port read back, and the others are bound to that port.

use crate::pipeline::Pipeline;
use crate::worker::{PipelineSlot, Shared, Worker, WorkerStats};
use socket2::{Domain, Socket, Type};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

/// Which I/O driver workers run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverChoice {
    /// io_uring when the kernel allows it, epoll otherwise.
    Auto,
    Epoll,
    IoUring,
}

impl DriverChoice {
    /// The driver used when none is asked for. On the machines bext was measured on, monoio's
    /// epoll driver used less CPU per request than its io_uring driver (one read and one write
    /// submission per request do not amortise the ring), so epoll is the default until the
    /// benchmarks say otherwise.
    pub const DEFAULT: DriverChoice = DriverChoice::Epoll;
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
    /// The requested driver is not available (io_uring forbidden by the kernel or sandbox).
    Driver(String),
    /// A worker thread could not be started.
    Thread(std::io::Error),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Bind { addr, error } => write!(f, "cannot listen on {addr}: {error}"),
            StartError::Driver(m) => write!(f, "{m}"),
            StartError::Thread(e) => write!(f, "cannot start a worker thread: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

fn bind_one(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    sock.set_reuse_address(true)?;
    sock.set_reuse_port(true)?;
    sock.set_nonblocking(true)?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    sock.bind(&addr.into())?;
    sock.listen(4096)?;
    Ok(sock.into())
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

fn uring_available() -> bool {
    monoio::utils::detect_uring()
}

/// A running engine: worker threads serving the published pipeline.
pub struct Engine {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    addrs: Vec<SocketAddr>,
    driver: Driver,
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

impl Engine {
    /// Bind every listener of `pipeline`, start the workers and return once all of them run.
    pub fn start(pipeline: Pipeline, opts: EngineOptions) -> Result<Engine, StartError> {
        let n = opts.workers.max(1);
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
        let mut per_worker: Vec<Vec<std::net::TcpListener>> = (0..n).map(|_| Vec::new()).collect();
        let mut addrs = Vec::new();
        for &addr in &pipeline.listeners {
            let (socks, actual) = bind_shared(addr, n)?;
            addrs.push(actual);
            for (i, s) in socks.into_iter().enumerate() {
                per_worker[i].push(s);
            }
        }
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            slot: PipelineSlot::new(Arc::new(pipeline)),
            stats: (0..n).map(|_| WorkerStats::default()).collect(),
        });
        let cores = available_cores();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        let mut threads = Vec::new();
        for (i, listeners) in per_worker.into_iter().enumerate() {
            let shared = shared.clone();
            let ready = ready_tx.clone();
            let pin = opts.pin;
            let t = std::thread::Builder::new()
                .name(format!("bext-worker-{i}"))
                .spawn(move || {
                    if pin {
                        // Pinning is an optimisation; a sandbox refusing it is not an error.
                        let _ = monoio::utils::bind_to_cpu_set([i % cores]);
                    }
                    worker_thread(i, shared, listeners, driver, ready);
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
        let engine = Engine {
            shared,
            threads,
            addrs,
            driver,
        };
        if let Some(m) = failure {
            engine.shutdown();
            return Err(StartError::Driver(m));
        }
        Ok(engine)
    }

    /// The bound listener addresses, in the order of the pipeline's listeners.
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

    /// Publish a new pipeline; every worker takes it for its next request within one tick.
    /// Listeners are not changed by this call.
    pub fn publish(&self, pipeline: Pipeline) {
        self.shared.slot.publish(Arc::new(pipeline));
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

    /// Ask the workers to stop accepting and drain; returns at once.
    pub fn request_stop(&self) {
        self.shared.stop.store(true, Ordering::Release);
    }

    /// Stop accepting, let in-flight requests finish (bounded by the drain timeout), close
    /// idle connections and join the workers.
    pub fn shutdown(mut self) {
        self.request_stop();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.request_stop();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn worker_thread(
    id: usize,
    shared: Arc<Shared>,
    listeners: Vec<std::net::TcpListener>,
    driver: Driver,
    ready: mpsc::Sender<Result<(), String>>,
) {
    match driver {
        Driver::Epoll => {
            let rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                .enable_timer()
                .build();
            match rt {
                Ok(mut rt) => {
                    let _ = ready.send(Ok(()));
                    drop(ready);
                    let w = Rc::new(Worker::new(id, shared, true));
                    rt.block_on(crate::worker::run(w, listeners));
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
                    let _ = ready.send(Ok(()));
                    drop(ready);
                    let w = Rc::new(Worker::new(id, shared, false));
                    rt.block_on(crate::worker::run(w, listeners));
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
