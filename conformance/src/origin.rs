//! The recording origin: a plain-threads HTTP/1.1 server that records, per connection, the exact
//! bytes it received and every request it read from them, and answers as scripted.
//!
//! By default it answers each request `200` with the body `ok`. A test can queue [`Script`]s that
//! apply to the next requests (requests to `/__conformance/…`, the harness's own probes and
//! barriers, always get the default answer). Requests are read with [`crate::wire`], which accepts
//! only messages with exactly one reading: a forwarded request it cannot read is recorded as an
//! error, and that is a conformance failure (the next hop could read it differently).

use crate::case::Then;
use crate::wire::{self, Message, Read};
use std::collections::VecDeque;
use std::io::{Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

/// Targets under this prefix belong to the harness and are never scripted.
pub const HARNESS_PREFIX: &str = "/__conformance/";

/// How the origin treats the next request that is not the harness's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Script {
    /// Answer with these raw bytes, then keep the connection, close it, or hang.
    Reply(Vec<u8>, Then),
    /// As soon as request bytes arrive, close without reading them: the kernel answers with a
    /// TCP reset because unread data is pending.
    Reset,
    /// Read the request and never answer (the connection stays open until the peer closes it).
    Hang,
    /// Answer with these raw bytes after a pause (a slow upstream), then keep the connection.
    ReplyAfter(Duration, Vec<u8>),
}

/// One accepted upstream connection.
#[derive(Debug, Clone, Default)]
pub struct Conn {
    /// Everything received, exactly as received.
    pub received: Vec<u8>,
    /// The peer (bext) closed or reset the connection.
    pub closed_by_peer: bool,
    /// The origin closed it (scripted `close`/`Reset`, or a request it could not read).
    pub closed_by_origin: bool,
}

/// One request as the origin read it.
#[derive(Debug, Clone)]
pub struct Forwarded {
    pub conn: usize,
    /// The request, or why the origin could not read it.
    pub message: Result<Message, String>,
}

#[derive(Default)]
struct State {
    conns: Vec<Conn>,
    log: Vec<Forwarded>,
    scripts: VecDeque<Script>,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    stop: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking connection thread must not hide the records of the others.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running recording origin; stops when dropped.
pub struct Origin {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Origin {
    /// Listen on an ephemeral loopback port.
    pub fn start() -> std::io::Result<Origin> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let sh = shared.clone();
        thread::Builder::new()
            .name("origin-accept".into())
            .spawn(move || accept_loop(listener, sh))?;
        Ok(Origin { addr, shared })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queue a script for the next request that is not the harness's own.
    pub fn push_script(&self, s: Script) {
        self.shared.lock().scripts.push_back(s);
    }

    /// Drop scripts no request consumed (a rejected request never reaches the origin).
    pub fn clear_scripts(&self) {
        self.shared.lock().scripts.clear();
    }

    /// Number of requests logged so far: a mark to take [`Origin::forwarded_since`] from.
    pub fn mark(&self) -> usize {
        self.shared.lock().log.len()
    }

    /// Requests logged since `mark`, without the harness's own.
    pub fn forwarded_since(&self, mark: usize) -> Vec<Forwarded> {
        self.shared
            .lock()
            .log
            .iter()
            .skip(mark)
            .filter(|f| !matches!(&f.message, Ok(m) if m.target().starts_with(HARNESS_PREFIX)))
            .cloned()
            .collect()
    }

    /// A snapshot of every connection so far.
    pub fn conns(&self) -> Vec<Conn> {
        self.shared.lock().conns.clone()
    }

    /// Wait until `cond` holds over (connections, log) or `limit` passes; returns whether it held.
    /// The limit only bounds a failing test; nothing is asserted about how long it took.
    pub fn wait_until(
        &self,
        limit: Duration,
        cond: impl Fn(&[Conn], &[Forwarded]) -> bool,
    ) -> bool {
        let deadline = Instant::now() + limit;
        let mut st = self.shared.lock();
        loop {
            if cond(&st.conns, &st.log) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            st = match self.shared.changed.wait_timeout(st, deadline - now) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let id = {
            let mut st = shared.lock();
            st.conns.push(Conn::default());
            st.conns.len() - 1
        };
        shared.changed.notify_all();
        let sh = shared.clone();
        let spawned = thread::Builder::new()
            .name(format!("origin-conn-{id}"))
            .spawn(move || serve(stream, id, sh));
        if spawned.is_err() {
            // Out of threads: the connection is dropped, which the tests see as a refused
            // upstream; nothing else can be done here.
            continue;
        }
    }
}

fn default_reply(req: &Message) -> Vec<u8> {
    let body: &[u8] = if req.target().starts_with("/__conformance/probe") {
        b"probe"
    } else {
        b"ok"
    };
    let mut out = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    if req.method() != "HEAD" {
        out.extend_from_slice(body);
    }
    out
}

fn serve(mut stream: TcpStream, id: usize, shared: Arc<Shared>) {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let finish = |shared: &Shared, by_peer: bool| {
        let mut st = shared.lock();
        if by_peer {
            st.conns[id].closed_by_peer = true;
        } else {
            st.conns[id].closed_by_origin = true;
        }
        drop(st);
        shared.changed.notify_all();
    };
    let mut hanging = false;
    loop {
        // Look before reading, so that a scripted reset leaves the bytes unread.
        match stream.peek(&mut chunk[..1]) {
            Ok(0) | Err(_) => return finish(&shared, true),
            Ok(_) => {}
        }
        if !hanging {
            let mut st = shared.lock();
            if st.scripts.front() == Some(&Script::Reset) && buf.is_empty() {
                st.scripts.pop_front();
                st.conns[id].closed_by_origin = true;
                drop(st);
                shared.changed.notify_all();
                drop(stream);
                return;
            }
        }
        let n = match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return finish(&shared, true),
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        shared.lock().conns[id]
            .received
            .extend_from_slice(&chunk[..n]);
        shared.changed.notify_all();
        if hanging {
            continue;
        }
        loop {
            match wire::read_request(&buf) {
                Ok(Read::Partial) => break,
                Err(e) => {
                    shared.lock().log.push(Forwarded {
                        conn: id,
                        message: Err(e),
                    });
                    let _ = stream.shutdown(Shutdown::Both);
                    return finish(&shared, false);
                }
                Ok(Read::Done(m)) => {
                    buf.drain(..m.len);
                    let harness = m.target().starts_with(HARNESS_PREFIX);
                    let script = {
                        let mut st = shared.lock();
                        let s = if harness {
                            None
                        } else {
                            st.scripts.pop_front()
                        };
                        st.log.push(Forwarded {
                            conn: id,
                            message: Ok(m.clone()),
                        });
                        s
                    };
                    shared.changed.notify_all();
                    match script {
                        None => {
                            if stream.write_all(&default_reply(&m)).is_err() {
                                return finish(&shared, true);
                            }
                        }
                        Some(Script::Reply(bytes, then)) => {
                            let _ = stream.write_all(&bytes);
                            match then {
                                Then::Keep => {}
                                Then::Close => {
                                    let _ = stream.shutdown(Shutdown::Both);
                                    return finish(&shared, false);
                                }
                                Then::Hang => hanging = true,
                            }
                        }
                        // A reset is taken before reading; here the request was already read
                        // (it arrived with the previous one), so close as abruptly as possible.
                        Some(Script::Reset) => {
                            let _ = stream.shutdown(Shutdown::Both);
                            return finish(&shared, false);
                        }
                        Some(Script::Hang) => hanging = true,
                        Some(Script::ReplyAfter(pause, bytes)) => {
                            thread::sleep(pause);
                            let _ = stream.write_all(&bytes);
                        }
                    }
                    if hanging {
                        break;
                    }
                }
            }
        }
    }
}
