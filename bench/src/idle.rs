//! Idle keep-alive connections: memory a server spends per connection it holds open.
//!
//! Opens N connections (each carries one request first, as a browser's keep-alive connection
//! would), waits for the server to settle, and reports the growth of the server's resident
//! memory divided by N. Afterwards it sends one more request on every connection, so the
//! report also shows how many connections the server really held through the measurement.

use crate::framing::ResponseParser;
use crate::procfs;
use crate::rt::{block_on, Driver};
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use serde::{Deserialize, Serialize};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct IdleConfig {
    pub target: SocketAddr,
    pub host: String,
    pub connections: usize,
    /// Connections being opened at once (a server's accept backlog is finite).
    pub concurrency: usize,
    /// Send one request on each connection before it goes idle.
    pub request_first: bool,
    /// Time between the last connection opening and the memory reading.
    pub settle: Duration,
    pub timeout: Duration,
    pub driver: Driver,
    /// Processes whose resident memory is measured.
    pub rss_pids: Vec<u32>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdleReport {
    /// Always "idle".
    pub kind: String,
    pub tags: BTreeMap<String, String>,
    pub target: String,
    pub requested: usize,
    pub opened: usize,
    pub failed: usize,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    /// (after − before) / opened, in bytes.
    pub bytes_per_connection: f64,
    /// Connections that still answered a request after the measurement.
    pub alive_after: usize,
}

impl IdleReport {
    pub fn text(&self) -> String {
        format!(
            "target {}: {} of {} connections open ({} failed), server RSS {} KiB -> {} KiB: \
             {:.0} bytes per idle connection; {} still answered afterwards\n",
            self.target,
            self.opened,
            self.requested,
            self.failed,
            self.rss_before_kib,
            self.rss_after_kib,
            self.bytes_per_connection,
            self.alive_after
        )
    }
}

pub fn run(cfg: &IdleConfig) -> io::Result<IdleReport> {
    if cfg.connections == 0 || cfg.concurrency == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--connections and --concurrency must be at least 1",
        ));
    }
    let before = procfs::rss_kib(&cfg.rss_pids)?;
    let cfg2 = cfg.clone();
    let (opened, failed, after, alive) = block_on(cfg.driver, || async move {
        let cfg = Rc::new(cfg2);
        let request = Rc::new(
            format!(
                "GET / HTTP/1.1\r\nHost: {}\r\nUser-Agent: bext-bench\r\n\r\n",
                cfg.host
            )
            .into_bytes(),
        );
        let next = Rc::new(Cell::new(0usize));
        let held: Rc<RefCell<Vec<TcpStream>>> = Rc::new(RefCell::new(Vec::new()));
        let failed = Rc::new(Cell::new(0usize));
        let mut openers = Vec::new();
        for _ in 0..cfg.concurrency.min(cfg.connections) {
            let (cfg, request, next, held, failed) = (
                Rc::clone(&cfg),
                Rc::clone(&request),
                Rc::clone(&next),
                Rc::clone(&held),
                Rc::clone(&failed),
            );
            openers.push(monoio::spawn(async move {
                while next.get() < cfg.connections {
                    next.set(next.get() + 1);
                    let opened = monoio::time::timeout(cfg.timeout, async {
                        let mut s = TcpStream::connect_addr(cfg.target).await.ok()?;
                        if cfg.request_first {
                            one_request(&mut s, &request).await.ok()?;
                        }
                        Some(s)
                    })
                    .await;
                    match opened {
                        Ok(Some(s)) => held.borrow_mut().push(s),
                        _ => failed.set(failed.get() + 1),
                    }
                }
            }));
        }
        for o in openers {
            o.await;
        }
        monoio::time::sleep(cfg.settle).await;
        let after = procfs::rss_kib(&cfg.rss_pids);
        let streams = std::mem::take(&mut *held.borrow_mut());
        let opened = streams.len();
        let mut alive = 0;
        for mut s in streams {
            let ok = monoio::time::timeout(cfg.timeout, one_request(&mut s, &request)).await;
            if matches!(ok, Ok(Ok(()))) {
                alive += 1;
            }
        }
        (opened, failed.get(), after, alive)
    })?;
    let after = after?;
    Ok(IdleReport {
        kind: "idle".into(),
        tags: cfg.tags.clone(),
        target: cfg.target.to_string(),
        requested: cfg.connections,
        opened,
        failed,
        rss_before_kib: before,
        rss_after_kib: after,
        bytes_per_connection: if opened == 0 {
            0.0
        } else {
            (after as f64 - before as f64) * 1024.0 / opened as f64
        },
        alive_after: alive,
    })
}

/// Sends one request and reads its response to the end.
async fn one_request(s: &mut TcpStream, request: &[u8]) -> io::Result<()> {
    let (res, _) = s.write_all(request.to_vec()).await;
    res?;
    let mut parser = ResponseParser::new(false);
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = Vec::with_capacity(4096);
    loop {
        buf.clear();
        let (res, b) = s.read(buf).await;
        buf = b;
        if res? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        pending.extend_from_slice(&buf);
        let p = parser
            .feed(&pending)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{e:?}")))?;
        pending.drain(..p.consumed);
        if p.done.is_some() {
            return Ok(());
        }
    }
}
