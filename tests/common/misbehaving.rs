//! Helpers of the upstream hardening tests: both drivers, and scripted origins that misbehave
//! on purpose (stray bytes on an idle connection, unasked 101s, bodies where none belong),
//! counting the connections they accept.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Start options for each driver this machine can run: epoll always, io_uring where the kernel
/// allows it (where it does not, the io_uring runs are skipped with a note).
pub fn drivers() -> Vec<bext::StartOptions> {
    let mut out = vec![bext::StartOptions {
        workers: Some(1),
        driver: bext::DriverChoice::Epoll,
        pin: false,
    }];
    let uring = bext::StartOptions {
        driver: bext::DriverChoice::IoUring,
        ..out[0].clone()
    };
    match bext::start(bext::respond_config("127.0.0.1:0", 200, ""), uring.clone()) {
        Ok(s) => {
            s.shutdown();
            out.push(uring);
        }
        Err(e) => eprintln!("io_uring runs skipped: {e}"),
    }
    out
}

/// A one-shot signal between a test and an origin thread.
#[derive(Default)]
pub struct Flag {
    set: Mutex<bool>,
    cv: Condvar,
}

impl Flag {
    pub fn set(&self) {
        *self.set.lock().unwrap() = true;
        self.cv.notify_all();
    }

    /// Wait for `set` (the limit only bounds a failing test).
    pub fn wait(&self) {
        let g = self.set.lock().unwrap();
        let (g, _) = self
            .cv
            .wait_timeout_while(g, Duration::from_secs(20), |s| !*s)
            .unwrap();
        assert!(*g, "flag never set");
    }
}

/// A scripted origin: each accepted connection runs `handler(connection index, stream)` on
/// its own thread; `accepted()` counts connections.
pub struct Scripted {
    pub addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
}

impl Scripted {
    pub fn start<F>(handler: F) -> Scripted
    where
        F: Fn(usize, TcpStream) + Send + Sync + 'static,
    {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        let handler = Arc::new(handler);
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                let i = count.fetch_add(1, Ordering::SeqCst);
                let h = handler.clone();
                std::thread::spawn(move || h(i, s));
            }
        });
        Scripted { addr, accepted }
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// Read one request head; `None` when the peer closed first.
pub fn next_head(s: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(1) => head.push(b[0]),
            _ => return None,
        }
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// The request target of a head.
pub fn target(head: &str) -> &str {
    head.split(' ').nth(1).unwrap_or("")
}

/// Answer every request with 200 and `body` until the peer closes.
pub fn serve_plain(s: &mut TcpStream, body: &str) {
    while next_head(s).is_some() {
        let r = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if s.write_all(r.as_bytes()).is_err() {
            return;
        }
    }
}

/// Read until the peer closes (true) or the read fails otherwise.
pub fn closed_by_peer(s: &mut TcpStream) -> bool {
    let mut rest = Vec::new();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.read_to_end(&mut rest).is_ok()
}

/// Sum of a per-worker counter.
pub fn worker_sum(
    srv: &bext::Server,
    f: impl Fn(&bext_engine::server::WorkerStatus) -> u64,
) -> u64 {
    srv.control().status().iter().map(f).sum()
}
