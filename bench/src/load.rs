//! The load generator: closed-loop or open-loop HTTP/1.1 load over N connections.
//!
//! Closed loop: every connection sends its next request as soon as the previous response (or
//! pipelined batch) is complete, so the offered load is whatever the server sustains. Open
//! loop: requests are due on a fixed schedule ([`crate::schedule`]); latency counts from the
//! due time, so a server that stalls is charged for every request that waited behind the stall.
//!
//! Each thread runs one monoio runtime and owns its connections and its [`Stats`]; threads share
//! only a phase flag (warm-up, measure, stop). The main thread reads the target's CPU time at
//! the start and end of the measured window, so the CPU per request covers exactly the requests
//! counted.

use crate::framing::{Response, ResponseParser};
use crate::procfs;
use crate::report::{CpuUse, Report};
use crate::rt::{block_on, Driver};
use crate::schedule::Schedule;
use crate::stats::{ErrorKind, Stats};
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WARMUP: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;

/// Initial read buffer per connection; a response head larger than this grows it.
const READ_BUF: usize = 64 * 1024;

/// Everything one load run needs.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub target: SocketAddr,
    /// `Host` header value.
    pub host: String,
    pub path: String,
    /// Concurrent connections (closed loop: also the concurrency).
    pub connections: usize,
    /// Generator threads, each with its own runtime; connections are spread over them.
    pub threads: usize,
    /// Total requests per second for open-loop mode; `None` is closed loop.
    pub rate: Option<f64>,
    pub warmup: Duration,
    pub duration: Duration,
    /// `false`: a new connection per request (`Connection: close`).
    pub keep_alive: bool,
    /// Requests written back to back before reading their responses (closed loop only).
    pub pipeline: usize,
    /// Request body bytes; 0 sends GET, more sends POST with `Content-Length`.
    pub body_size: usize,
    /// A body sent as is (a POST), in place of `body_size` filler bytes when not empty.
    pub body: Vec<u8>,
    /// More request fields, `Name: value` each.
    pub headers: Vec<String>,
    pub timeout: Duration,
    pub driver: Driver,
    /// Processes whose CPU time is charged to the measured requests.
    pub cpu_pids: Vec<u32>,
    /// Copied into the report, for the harness to label runs.
    pub tags: BTreeMap<String, String>,
}

impl LoadConfig {
    /// Checks combinations the generator cannot honour, so none is silently ignored.
    pub fn validate(&self) -> Result<(), String> {
        if self.connections == 0 || self.threads == 0 {
            return Err("--connections and --threads must be at least 1".into());
        }
        if self.pipeline == 0 {
            return Err("--pipeline must be at least 1".into());
        }
        if self.pipeline > 1 && self.rate.is_some() {
            return Err("--pipeline applies to closed-loop runs only (drop --rate)".into());
        }
        if self.pipeline > 1 && !self.keep_alive {
            return Err("--pipeline needs keep-alive connections".into());
        }
        if let Some(r) = self.rate {
            if !(r.is_finite() && r > 0.0) {
                return Err("--rate must be a positive number of requests per second".into());
            }
        }
        if self.duration.is_zero() {
            return Err("--duration must be more than zero".into());
        }
        Ok(())
    }

    /// The bytes of one request, as written on the wire.
    pub fn request_bytes(&self) -> Vec<u8> {
        let body_len = if self.body.is_empty() {
            self.body_size
        } else {
            self.body.len()
        };
        let method = if body_len > 0 { "POST" } else { "GET" };
        let mut req = format!(
            "{method} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: bext-bench\r\nAccept: */*\r\n",
            self.path, self.host
        );
        if !self.keep_alive {
            req.push_str("Connection: close\r\n");
        }
        for h in &self.headers {
            req.push_str(h);
            req.push_str("\r\n");
        }
        if body_len > 0 {
            let typed = self
                .headers
                .iter()
                .any(|h| h.len() > 13 && h[..13].eq_ignore_ascii_case("content-type:"));
            if !typed {
                req.push_str("Content-Type: application/octet-stream\r\n");
            }
            req.push_str(&format!("Content-Length: {body_len}\r\n"));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        if self.body.is_empty() {
            bytes.resize(bytes.len() + self.body_size, b'b');
        } else {
            bytes.extend_from_slice(&self.body);
        }
        bytes
    }
}

/// Runs the load and returns the merged report. Errors are only for failures to run at all
/// (no runtime, unreadable `/proc`); request failures are counted in the report.
pub fn run(cfg: &LoadConfig) -> io::Result<Report> {
    cfg.validate()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let cfg = Arc::new(cfg.clone());
    let phase = Arc::new(AtomicU8::new(WARMUP));
    let start = Instant::now();
    let mut threads = Vec::with_capacity(cfg.threads);
    for t in 0..cfg.threads {
        let cfg = Arc::clone(&cfg);
        let phase = Arc::clone(&phase);
        threads.push(std::thread::spawn(move || {
            thread_main(cfg, t, phase, start)
        }));
    }
    let clk_tck = procfs::clock_ticks_per_second();
    std::thread::sleep(cfg.warmup);
    let cpu0 = if cfg.cpu_pids.is_empty() {
        None
    } else {
        Some(procfs::cpu_ticks(&cfg.cpu_pids))
    };
    let t0 = Instant::now();
    phase.store(MEASURE, Ordering::Release);
    std::thread::sleep(cfg.duration);
    phase.store(STOP, Ordering::Release);
    let elapsed = t0.elapsed();
    let cpu1 = cpu0.as_ref().map(|_| procfs::cpu_ticks(&cfg.cpu_pids));
    let mut stats = Stats::new();
    for t in threads {
        let s = t
            .join()
            .map_err(|_| io::Error::other("a generator thread panicked"))??;
        stats.merge(&s);
    }
    let cpu = match (cpu0, cpu1) {
        (Some(a), Some(b)) => {
            let (a, b) = (a?, b?);
            Some(CpuUse::new(
                cfg.cpu_pids.clone(),
                b.saturating_sub(a),
                clk_tck,
                stats.ok,
                elapsed,
            ))
        }
        _ => None,
    };
    Ok(Report::new(&cfg, &stats, elapsed, cpu))
}

fn thread_main(
    cfg: Arc<LoadConfig>,
    thread: usize,
    phase: Arc<AtomicU8>,
    start: Instant,
) -> io::Result<Stats> {
    block_on(cfg.driver, || async move {
        let stats = Rc::new(RefCell::new(Stats::new()));
        let request: Rc<[u8]> = cfg.request_bytes().repeat(cfg.pipeline).into();
        let mut tasks = Vec::new();
        for conn in (thread..cfg.connections).step_by(cfg.threads) {
            tasks.push(monoio::spawn(connection(
                Arc::clone(&cfg),
                conn as u64,
                Rc::clone(&stats),
                Rc::clone(&request),
                Arc::clone(&phase),
                start,
            )));
        }
        for t in tasks {
            t.await;
        }
        let merged = stats.borrow().clone();
        merged
    })
}

/// One connection slot: sends requests until the phase says stop.
async fn connection(
    cfg: Arc<LoadConfig>,
    conn: u64,
    stats: Rc<RefCell<Stats>>,
    request: Rc<[u8]>,
    phase: Arc<AtomicU8>,
    start: Instant,
) {
    let mut schedule = cfg
        .rate
        .map(|r| Schedule::new(conn, cfg.connections as u64, r));
    let mut slot = Slot {
        stream: None,
        buf: Vec::with_capacity(READ_BUF),
        req: request.to_vec(),
        done: Vec::with_capacity(cfg.pipeline),
    };
    loop {
        if phase.load(Ordering::Acquire) == STOP {
            return;
        }
        let intended = match schedule.as_mut() {
            Some(s) => {
                let due = start + s.next_due();
                if due > Instant::now() {
                    monoio::time::sleep_until(due.into()).await;
                }
                due
            }
            None => Instant::now(),
        };
        if phase.load(Ordering::Acquire) == STOP {
            return;
        }
        if slot.req.is_empty() {
            // A timed-out write took the buffer with it.
            slot.req = request.to_vec();
        }
        let sent = Instant::now();
        let outcome = monoio::time::timeout(cfg.timeout, slot.exchange(&cfg, &stats)).await;
        let measuring = phase.load(Ordering::Acquire) == MEASURE;
        let failed = {
            let mut st = stats.borrow_mut();
            for (resp, at) in slot.done.drain(..) {
                if measuring {
                    let latency = at.saturating_duration_since(intended).as_nanos() as u64;
                    let service = at.saturating_duration_since(sent).as_nanos() as u64;
                    st.record_response(resp.status, latency, service, resp.body_len);
                }
                if !resp.keep_alive {
                    slot.stream = None;
                }
            }
            let failed = match outcome {
                Ok(Ok(())) => None,
                Ok(Err(kind)) => Some(kind),
                Err(_elapsed) => Some(ErrorKind::Timeout),
            };
            if let (Some(kind), true) = (failed, measuring) {
                st.error(kind);
            }
            failed
        };
        if let Some(kind) = failed {
            slot.stream = None;
            if schedule.is_none() && kind == ErrorKind::Connect {
                // Closed loop against a refusing server would otherwise spin the core.
                monoio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        if !cfg.keep_alive {
            slot.stream = None;
        }
    }
}

/// One connection's reusable state.
struct Slot {
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    req: Vec<u8>,
    /// Responses completed by the current exchange, with their completion time.
    done: Vec<(Response, Instant)>,
}

impl Slot {
    /// Writes one request (or a pipelined batch) and reads every response to it.
    async fn exchange(
        &mut self,
        cfg: &LoadConfig,
        stats: &RefCell<Stats>,
    ) -> Result<(), ErrorKind> {
        if self.stream.is_none() {
            let s = TcpStream::connect_addr(cfg.target)
                .await
                .map_err(|_| ErrorKind::Connect)?;
            let _ = s.set_nodelay(true);
            stats.borrow_mut().connects += 1;
            self.buf.clear();
            self.stream = Some(s);
        }
        let Some(stream) = self.stream.as_mut() else {
            return Err(ErrorKind::Connect);
        };
        let req = std::mem::take(&mut self.req);
        let (res, req) = stream.write_all(req).await;
        self.req = req;
        res.map_err(|_| ErrorKind::Write)?;
        let mut parser = ResponseParser::new(false);
        while self.done.len() < cfg.pipeline {
            // Frame whatever is buffered before reading more.
            loop {
                let p = parser.feed(&self.buf).map_err(|_| ErrorKind::BadResponse)?;
                self.buf.drain(..p.consumed);
                match p.done {
                    Some(r) => {
                        self.done.push((r, Instant::now()));
                        if self.done.len() == cfg.pipeline {
                            return Ok(());
                        }
                    }
                    None => break,
                }
            }
            if self.buf.capacity() - self.buf.len() < 4096 {
                self.buf.reserve(READ_BUF);
            }
            let buf = std::mem::take(&mut self.buf);
            let len = buf.len();
            let cap = buf.capacity();
            let (res, slice) = stream.read(buf.slice_mut(len..cap)).await;
            self.buf = slice.into_inner();
            match res {
                Ok(0) => {
                    return match parser.eof() {
                        Some(r) => {
                            self.done.push((r, Instant::now()));
                            if self.done.len() == cfg.pipeline {
                                Ok(())
                            } else {
                                Err(ErrorKind::Closed)
                            }
                        }
                        None => Err(ErrorKind::Closed),
                    };
                }
                Ok(_) => {}
                Err(_) => return Err(ErrorKind::Read),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> LoadConfig {
        LoadConfig {
            target: SocketAddr::from(([127, 0, 0, 1], 1)),
            host: "bench.test".into(),
            path: "/p".into(),
            connections: 2,
            threads: 1,
            rate: None,
            warmup: Duration::ZERO,
            duration: Duration::from_secs(1),
            keep_alive: true,
            pipeline: 1,
            body_size: 0,
            body: Vec::new(),
            headers: Vec::new(),
            timeout: Duration::from_secs(1),
            driver: Driver::Epoll,
            cpu_pids: vec![],
            tags: BTreeMap::new(),
        }
    }

    #[test]
    fn request_bytes_follow_the_options() {
        let cases: &[(&str, bool, usize, &str)] = &[
            (
                "keep-alive GET",
                true,
                0,
                "GET /p HTTP/1.1\r\nHost: bench.test\r\nUser-Agent: bext-bench\r\nAccept: */*\r\n\r\n",
            ),
            (
                "new connection per request",
                false,
                0,
                "GET /p HTTP/1.1\r\nHost: bench.test\r\nUser-Agent: bext-bench\r\nAccept: */*\r\nConnection: close\r\n\r\n",
            ),
            (
                "body makes a POST",
                true,
                3,
                "POST /p HTTP/1.1\r\nHost: bench.test\r\nUser-Agent: bext-bench\r\nAccept: */*\r\nContent-Type: application/octet-stream\r\nContent-Length: 3\r\n\r\nbbb",
            ),
        ];
        for (name, keep_alive, body_size, want) in cases {
            let cfg = LoadConfig {
                keep_alive: *keep_alive,
                body_size: *body_size,
                headers: Vec::new(),
                ..config()
            };
            assert_eq!(
                String::from_utf8(cfg.request_bytes()).unwrap(),
                *want,
                "{name}"
            );
        }
    }

    #[test]
    fn impossible_combinations_are_refused() {
        let cases: Vec<(&str, LoadConfig, &str)> = vec![
            (
                "pipelining in open loop",
                LoadConfig {
                    pipeline: 4,
                    rate: Some(100.0),
                    ..config()
                },
                "--pipeline applies to closed-loop runs only (drop --rate)",
            ),
            (
                "pipelining without keep-alive",
                LoadConfig {
                    pipeline: 4,
                    keep_alive: false,
                    ..config()
                },
                "--pipeline needs keep-alive connections",
            ),
            (
                "zero rate",
                LoadConfig {
                    rate: Some(0.0),
                    ..config()
                },
                "--rate must be a positive number of requests per second",
            ),
            (
                "no connections",
                LoadConfig {
                    connections: 0,
                    ..config()
                },
                "--connections and --threads must be at least 1",
            ),
        ];
        for (name, cfg, want) in cases {
            assert_eq!(cfg.validate(), Err(want.to_string()), "{name}");
        }
        assert_eq!(config().validate(), Ok(()));
    }
}
