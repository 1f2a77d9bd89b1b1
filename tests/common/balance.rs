//! Helpers of the balancing tests: origins that can be killed and revived on the same port,
//! told which status to answer, and that count the attempts they receive; configurations with
//! one balanced upstream; a keep-alive client; the admin `/status` document.
#![allow(dead_code)]

use bext_ir as ir;
use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{connect, loc, read_response, Resp};

/// Shared state of one origin.
struct State {
    alive: AtomicBool,
    status: AtomicU16,
    /// Requests answered, health probes excluded.
    hits: AtomicUsize,
    probes: AtomicUsize,
    /// (request id, origin name) of every request, in arrival order over all origins sharing
    /// the journal.
    journal: Arc<Mutex<Vec<(String, String)>>>,
    /// While set, requests wait before being answered (they still count at once).
    hold: AtomicBool,
    name: String,
}

/// An origin on its own threads (see the module documentation). Answers `name` as the body.
pub struct Origin {
    pub addr: SocketAddr,
    st: Arc<State>,
}

impl Origin {
    pub fn start(name: &str) -> Origin {
        Origin::with_journal(name, Arc::new(Mutex::new(Vec::new())))
    }

    pub fn with_journal(name: &str, journal: Arc<Mutex<Vec<(String, String)>>>) -> Origin {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let st = Arc::new(State {
            alive: AtomicBool::new(true),
            status: AtomicU16::new(200),
            hits: AtomicUsize::new(0),
            probes: AtomicUsize::new(0),
            journal,
            hold: AtomicBool::new(false),
            name: name.into(),
        });
        let s = st.clone();
        std::thread::spawn(move || accept_loop(Some(l), addr, s));
        Origin { addr, st }
    }

    pub fn hits(&self) -> usize {
        self.st.hits.load(Ordering::SeqCst)
    }

    pub fn probes(&self) -> usize {
        self.st.probes.load(Ordering::SeqCst)
    }

    pub fn set_status(&self, s: u16) {
        self.st.status.store(s, Ordering::SeqCst);
    }

    pub fn hold(&self, on: bool) {
        self.st.hold.store(on, Ordering::SeqCst);
    }

    /// Stop listening and close every connection: connects are refused.
    pub fn kill(&self) {
        self.st.alive.store(false, Ordering::SeqCst);
        // Wait until the port is closed.
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(self.addr).is_ok() {
            assert!(
                Instant::now() < deadline,
                "origin {} did not die",
                self.st.name
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Listen again on the same port.
    pub fn revive(&self) {
        self.st.alive.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(self.addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "origin {} did not revive",
                self.st.name
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn accept_loop(mut l: Option<TcpListener>, addr: SocketAddr, st: Arc<State>) {
    loop {
        if !st.alive.load(Ordering::SeqCst) {
            l = None;
            std::thread::sleep(Duration::from_millis(2));
            continue;
        }
        let listener = match &l {
            Some(listener) => listener,
            None => match TcpListener::bind(addr) {
                Ok(listener) => {
                    listener.set_nonblocking(true).unwrap();
                    l.insert(listener)
                }
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
            },
        };
        listener.set_nonblocking(true).unwrap();
        match listener.accept() {
            Ok((s, _)) => {
                let st = st.clone();
                std::thread::spawn(move || serve(s, &st));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

/// Keep-alive HTTP/1.1 serving until the client closes or the origin is killed.
fn serve(mut s: TcpStream, st: &State) {
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let end = loop {
            if !st.alive.load(Ordering::SeqCst) {
                return;
            }
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match s.read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return,
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end);
        let field = |name: &str| {
            head.lines().find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
        };
        let len: usize = field("content-length").map_or(0, |v| v.parse().unwrap_or(0));
        while buf.len() < len {
            match s.read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    if !st.alive.load(Ordering::SeqCst) {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
        buf.drain(..len);
        let path = head.split(' ').nth(1).unwrap_or("");
        let status = if path.starts_with("/health") {
            st.probes.fetch_add(1, Ordering::SeqCst);
            200
        } else {
            st.hits.fetch_add(1, Ordering::SeqCst);
            let rid = field("x-request-id").unwrap_or_default();
            st.journal.lock().unwrap().push((rid, st.name.clone()));
            while st.hold.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(2));
            }
            st.status.load(Ordering::SeqCst)
        };
        // One write: a second small one would wait for the proxy's delayed ACK (Nagle).
        let out = format!(
            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n\r\n{}",
            st.name.len(),
            st.name
        );
        if s.write_all(out.as_bytes()).is_err() {
            return;
        }
    }
}

pub fn server(addr: SocketAddr, weight: u32, backup: bool) -> ir::Server {
    ir::Server {
        addr: addr.to_string(),
        weight,
        backup,
        tls: None,
        at: loc(),
    }
}

/// bext on an ephemeral port proxying everything to upstream `backend` of `servers`, with an
/// admin endpoint; `edit` sets the balancing directives.
pub fn balanced(servers: Vec<ir::Server>, edit: impl FnOnce(&mut ir::Upstream)) -> ir::Config {
    let mut c = bext::proxy_config("127.0.0.1:0", &[]);
    c.upstreams[0].servers = servers;
    edit(&mut c.upstreams[0]);
    c.global.admin = Some("127.0.0.1:0".into());
    c
}

pub fn health(kind: ir::HealthKind, healthy: u32, unhealthy: u32) -> ir::HealthCheck {
    ir::HealthCheck {
        kind,
        interval_ms: 50,
        timeout_ms: 500,
        healthy,
        unhealthy,
        at: loc(),
    }
}

/// A keep-alive client that reconnects when the proxy closes the connection.
pub struct Client {
    to: SocketAddr,
    conn: Option<BufReader<TcpStream>>,
}

impl Client {
    pub fn new(to: SocketAddr) -> Client {
        Client { to, conn: None }
    }

    /// GET `path` with extra `fields` (full lines without CRLF).
    pub fn get(&mut self, path: &str, fields: &[String]) -> Resp {
        let mut req = format!("GET {path} HTTP/1.1\r\nHost: test\r\n");
        for f in fields {
            req.push_str(f);
            req.push_str("\r\n");
        }
        req.push_str("\r\n");
        self.send(req.as_bytes())
    }

    pub fn send(&mut self, req: &[u8]) -> Resp {
        let conn = self
            .conn
            .get_or_insert_with(|| BufReader::new(connect(self.to)));
        conn.get_mut().write_all(req).unwrap();
        let resp = read_response(conn, false);
        if resp
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
        {
            self.conn = None;
        }
        resp
    }
}

/// The admin `/status` document.
pub fn status(admin: SocketAddr) -> serde_json::Value {
    let mut s = TcpStream::connect(admin).unwrap();
    s.write_all(b"GET /status HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let body = text.split("\r\n\r\n").nth(1).unwrap();
    serde_json::from_str(body).unwrap()
}

/// The `/status` entry of server `addr` of upstream `backend`.
pub fn server_status(admin: SocketAddr, addr: SocketAddr) -> serde_json::Value {
    let st = status(admin);
    // Workers publish their counters on their tick: right after a start or a reload the
    // upstream may not be listed yet.
    let Some(up) = st["upstreams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "backend")
        .cloned()
    else {
        return serde_json::Value::Null;
    };
    up["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["addr"] == addr.to_string())
        .cloned()
        .unwrap_or(serde_json::Value::Null)
}

/// Poll `cond` until it holds; panics after a generous bound (never a timing assertion: the
/// bound only keeps a broken build from hanging).
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "gave up waiting for: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
