//! HTTP/3: QUIC endpoints on the workers, each request run through the same pipeline as an
//! HTTP/1.1 one.
//!
//! ```text
//! UDP socket (SO_REUSEPORT, quinn-udp: GSO/GRO)  ── runtime.rs: quinn on monoio
//!   └─ quinn Endpoint ── Incoming ── Connection (TLS 1.3 from the listener's certificates,
//!        │                            ALPN h3, 0-RTT off)
//!        └─ h3 server connection ── request stream ── bridge.rs: fields → HTTP/1.1 head,
//!                                                     DATA ↔ body, response → HEADERS/DATA
//!                                       └─ pipe.rs: ClientStream::Quic ── conn (route,
//!                                          filters, handler, response phases, log)
//! ```
//!
//! **Driving quinn from monoio.** quinn's high-level crate is used with a [`Runtime`] of our
//! own (`runtime.rs`): tasks are spawned on the worker, timers are served by one task per
//! worker, and the socket's readiness comes from the runtime's poll on either driver. quinn's
//! `Send` bounds are met by keeping its objects plain data; nothing crosses threads. The
//! alternatives were quinn-proto driven by hand (the same I/O, plus re-implementing quinn's
//! connection driver and h3's `quic` traits, which h3-quinn already provides over quinn), or
//! a tokio runtime on a side thread (a second scheduler per core and a cross-thread hop per
//! request, against the thread-per-core model).
//!
//! **One connection, one core.** Each worker has its own UDP socket on the listener's port
//! (`SO_REUSEPORT`); a BPF program on the group steers each datagram to the worker whose
//! number is written in the connection id (see `steer.rs`, with the fallback where the
//! kernel refuses the program: worker 0 alone).

mod bridge;
mod pipe;
mod runtime;
mod steer;

pub use pipe::QuicStream;

use crate::stop::StopSignal;
use crate::stream::ClientStream;
use crate::worker::Worker;
use bytes::Bytes;
use quinn::crypto::rustls::QuicServerConfig;
use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// QUIC's limits for an HTTP/3 listener, each bounded (see [`QuicLimits::bounded`]); the
/// defaults and bounds are the language's (`bext_ir::Quic`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuicLimits {
    /// Request streams a client may have open at once (default 100, 1–10,000).
    pub streams: u32,
    /// Flow-control window per stream, bytes (default 1 MiB, 16 KiB–16 MiB).
    pub stream_window: u32,
    /// Flow-control window per connection, bytes (default 8 MiB, the stream window–256 MiB).
    pub connection_window: u32,
    /// A connection with no packet for this long is closed (default 30 s, 1 s–10 min).
    pub idle_timeout: Duration,
    /// Requests of safe methods are served from 0-RTT data (`early_data on`; default off).
    pub early_data: bool,
}

impl Default for QuicLimits {
    fn default() -> Self {
        QuicLimits::of(&bext_ir::Quic::default())
    }
}

impl QuicLimits {
    /// The limits of an `http3 { ... }` block, the defaults for those it leaves out.
    pub fn of(q: &bext_ir::Quic) -> QuicLimits {
        use bext_ir::Quic as Q;
        let window =
            |v: Option<u64>, default: u64| u32::try_from(v.unwrap_or(default)).unwrap_or(u32::MAX);
        QuicLimits {
            streams: q.max_streams.unwrap_or(Q::DEFAULT_STREAMS),
            stream_window: window(q.stream_window, Q::DEFAULT_STREAM_WINDOW),
            connection_window: window(q.connection_window, Q::DEFAULT_CONNECTION_WINDOW),
            idle_timeout: Duration::from_millis(
                q.idle_timeout_ms.unwrap_or(Q::DEFAULT_IDLE_TIMEOUT_MS),
            ),
            early_data: q.early_data,
        }
        .bounded()
    }

    /// The limits within their bounds.
    pub fn bounded(self) -> QuicLimits {
        use bext_ir::Quic as Q;
        let bound = |v: u32, (lo, hi): (u64, u64)| {
            u32::try_from(u64::from(v).clamp(lo, hi)).unwrap_or(u32::MAX)
        };
        let stream_window = bound(self.stream_window, Q::STREAM_WINDOW);
        let (lo, hi) = Q::IDLE_TIMEOUT_MS;
        QuicLimits {
            streams: self.streams.clamp(Q::STREAMS.0, Q::STREAMS.1),
            stream_window,
            connection_window: bound(
                self.connection_window,
                (u64::from(stream_window), Q::CONNECTION_WINDOW_MAX),
            ),
            idle_timeout: self
                .idle_timeout
                .clamp(Duration::from_millis(lo), Duration::from_millis(hi)),
            early_data: self.early_data,
        }
    }

    fn transport(&self) -> quinn::TransportConfig {
        let b = self.bounded();
        let mut t = quinn::TransportConfig::default();
        t.max_concurrent_bidi_streams(b.streams.into());
        // The client's control stream and QPACK streams, and room for grease.
        t.max_concurrent_uni_streams(8u32.into());
        t.stream_receive_window(b.stream_window.into());
        t.receive_window(b.connection_window.into());
        t.send_window(u64::from(b.connection_window));
        if let Ok(idle) = quinn::IdleTimeout::try_from(b.idle_timeout) {
            t.max_idle_timeout(Some(idle));
        }
        t
    }
}

/// Handshakes in progress on a worker above which new clients must prove their address with
/// a retry token first (a spoofed flood then costs a stateless packet each, no state).
const RETRY_ABOVE: usize = 256;

/// The QUIC server configuration of a TLS listener: its certificates and resumption, TLS 1.3
/// only (QUIC), ALPN `h3`; early data only with `early_data on` (QUIC takes all or none of
/// it: RFC 9001 §4.6.1).
fn server_config(
    tls: &bext_tls::Listener,
    limits: &QuicLimits,
) -> Result<quinn::ServerConfig, String> {
    let mut c = (**tls.server_config()).clone();
    c.alpn_protocols = vec![b"h3".to_vec()];
    if limits.early_data {
        c.max_early_data_size = u32::MAX;
        // rustls takes early data only on sessions resumed from the listener's session cache
        // (shared by the cores), and takes each session out of it when it resumes: a session
        // serves one 0-RTT flight, and a replayed flight finds it gone (a full handshake, its
        // early data rejected). Stateless tickets could be replayed: none are issued here.
        c.ticketer = Arc::new(NoTickets);
    } else {
        c.max_early_data_size = 0;
    }
    let crypto = QuicServerConfig::try_from(Arc::new(c)).map_err(|e| e.to_string())?;
    let mut sc = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    sc.transport_config(Arc::new(limits.transport()));
    Ok(sc)
}

/// Issues no ticket: sessions resume from the session cache only.
#[derive(Debug)]
struct NoTickets;

impl bext_tls::rustls::server::ProducesTickets for NoTickets {
    fn enabled(&self) -> bool {
        false
    }

    fn lifetime(&self) -> u32 {
        0
    }

    fn encrypt(&self, _plain: &[u8]) -> Option<Vec<u8>> {
        None
    }

    fn decrypt(&self, _cipher: &[u8]) -> Option<Vec<u8>> {
        None
    }
}

/// Whether HTTP/3 can bind UDP at `addr` (as its sockets are bound: `SO_REUSEPORT`): a
/// reload checks it before it commits to starting HTTP/3 there.
pub(crate) fn probe_udp(addr: SocketAddr) -> std::io::Result<()> {
    bind_udp(addr).map(drop)
}

fn bind_udp(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_port(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(s.into())
}

thread_local! {
    static TIMERS: Cell<bool> = const { Cell::new(false) };
    /// The `Alt-Svc` line of each TLS port of this worker that also serves HTTP/3.
    static ALT_SVC: RefCell<Vec<(u16, Box<[u8]>)>> = const { RefCell::new(Vec::new()) };
}

/// How long a client may remember that a port serves HTTP/3 (`ma`, seconds): a day, the
/// common choice, short enough that turning HTTP/3 off is noticed soon.
const ALT_SVC_MAX_AGE: u32 = 86_400;

/// Advertise HTTP/3 on TLS connections accepted on `port` (this worker's thread).
pub(crate) fn advertise(port: u16) {
    ALT_SVC.with(|a| {
        let mut a = a.borrow_mut();
        if !a.iter().any(|(p, _)| *p == port) {
            let line = format!("Alt-Svc: h3=\":{port}\"; ma={ALT_SVC_MAX_AGE}\r\n");
            a.push((port, line.into_bytes().into_boxed_slice()));
        }
    });
}

/// Stop advertising HTTP/3 on `port` (its listener or its HTTP/3 is gone after a reload).
pub(crate) fn withdraw(port: u16) {
    ALT_SVC.with(|a| a.borrow_mut().retain(|(p, _)| *p != port));
}

/// Until the worker stops or `own` (the endpoint's own signal) is triggered.
async fn stopped(w: &Worker, own: &StopSignal) {
    let worker = pin!(w.stop.wait());
    let endpoint = pin!(own.wait());
    crate::io::race(worker, endpoint).await;
}

/// Append the `Alt-Svc` field to a response head written on `stream`, when it is a TLS
/// connection to a listener that also serves HTTP/3 (with the same certificates, on the same
/// port). One `getsockname` per response on such connections; nothing elsewhere.
pub(crate) fn alt_svc(stream: Option<&ClientStream>, out: &mut Vec<u8>) {
    let Some(ClientStream::Tls(s)) = stream else {
        return;
    };
    ALT_SVC.with(|a| {
        let a = a.borrow();
        if a.is_empty() {
            return;
        }
        let Ok(local) = s.tcp().local_addr() else {
            return;
        };
        if let Some((_, line)) = a.iter().find(|(p, _)| *p == local.port()) {
            out.extend_from_slice(line);
        }
    });
}

/// Serve HTTP/3 for the TLS listener configured as `addr`, on UDP at `bound` (the TCP
/// listener's address, so both share a port), until the worker stops or `own` is triggered
/// (a reload that drops the listener or its `http3`); then its connections drain.
pub(crate) async fn serve(w: Rc<Worker>, addr: SocketAddr, bound: SocketAddr, own: Rc<StopSignal>) {
    if !TIMERS.with(|t| t.replace(true)) {
        monoio::spawn(runtime::run_timers());
    }
    let limits = w.pipeline().quic_limits(addr);
    let Some(tls) = w.pipeline().tls_for(addr).cloned() else {
        eprintln!("bext: http3 on {addr}: the listener has no tls");
        return;
    };
    let config = match server_config(&tls, &limits) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bext: http3 on {addr}: {e}");
            return;
        }
    };
    let workers = w.shared.stats.len();
    let socket = match steer::take(bound, w.id, workers) {
        Ok(steer::Taken::Socket { socket, steered }) => {
            if !steered && workers > 1 {
                eprintln!(
                    "bext: http3 on {bound}: datagrams cannot be steered by connection id here; worker 0 serves HTTP/3 alone"
                );
            }
            socket
        }
        Ok(steer::Taken::NotThisWorker) => return,
        Err(e) => {
            eprintln!("bext: http3 on {bound}: {e}");
            return;
        }
    };
    let rt = Arc::new(runtime::MonoioRuntime);
    let socket = match quinn::Runtime::wrap_udp_socket(&*rt, socket) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bext: http3 on {bound}: {e}");
            return;
        }
    };
    let mut ep_config = quinn::EndpointConfig::default();
    let id = w.id;
    ep_config.cid_generator(move || Box::new(steer::CoreCids::new(id, workers)));
    let endpoint =
        match quinn::Endpoint::new_with_abstract_socket(ep_config, Some(config), socket, rt) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("bext: http3 on {bound}: {e}");
                return;
            }
        };
    let mut generation = w.pipeline().generation;
    let mut early_data = limits.early_data;
    loop {
        let incoming = {
            let accept = pin!(endpoint.accept());
            let stop = pin!(stopped(&w, &own));
            match crate::io::race(accept, stop).await {
                crate::io::Either::Left(Some(i)) => i,
                _ => break,
            }
        };
        // A reload: new connections handshake with the new generation's certificates (live
        // ones keep their session and run the new pipeline from their next request).
        let p = w.pipeline();
        if p.generation != generation {
            generation = p.generation;
            if !p.http3.contains(&addr) {
                // HTTP/3 turned off: no new connection; live ones finish as they are.
                break;
            }
            let limits = p.quic_limits(addr);
            early_data = limits.early_data;
            match p.tls_for(addr).map(|t| server_config(t, &limits)) {
                Some(Ok(c)) => endpoint.set_server_config(Some(c)),
                Some(Err(e)) => eprintln!("bext: http3 on {addr}: {e}"),
                None => break,
            }
        }
        drop(p);
        if endpoint.open_connections() > RETRY_ABOVE && !incoming.remote_address_validated() {
            let _ = incoming.retry();
            continue;
        }
        monoio::spawn(connection(w.clone(), incoming, own.clone(), early_data));
    }
    // Draining (the worker stops, or a reload dropped this endpoint): no new connection; live
    // ones get GOAWAY from their own task, finish their requests and close. The worker waits
    // for that (bounded by its drain timeout), so the last responses and the closes leave
    // before its runtime ends.
    endpoint.set_server_config(None);
    let _busy = Busy::new(&w);
    endpoint.wait_idle().await;
}

/// Counts as a client connection of the worker while it lives.
struct Counted<'a>(&'a Worker);

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.connections_closed(1);
    }
}

/// Counts as a request in flight on the worker, so its drain waits.
struct Busy<'a>(&'a Worker);

impl<'a> Busy<'a> {
    fn new(w: &'a Worker) -> Self {
        w.in_flight.set(w.in_flight.get() + 1);
        Busy(w)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0
            .in_flight
            .set(self.0.in_flight.get().saturating_sub(1));
    }
}

/// One QUIC connection: its handshake, then a task per request stream. When the worker
/// stops it sends GOAWAY and lets the requests in flight finish. A QUIC connection counts
/// against the worker's `limits { connections }` like a TCP one: at the cap new ones are
/// refused (CONNECTION_REFUSED, no state kept).
async fn connection(
    w: Rc<Worker>,
    incoming: quinn::Incoming,
    own: Rc<StopSignal>,
    early_data: bool,
) {
    if w.connections.get() >= w.pipeline().client.max_connections {
        incoming.refuse();
        return;
    }
    w.connections.set(w.connections.get() + 1);
    let _count = Counted(&w);
    let Ok(connecting) = incoming.accept() else {
        return;
    };
    // With `early_data on` the connection serves before its handshake completes; until then
    // its requests are early ones (`Early::now`).
    let (conn, early) = if early_data {
        match connecting.into_0rtt() {
            Ok((conn, accepted)) => {
                let early = Rc::new(Early::new(&conn, accepted));
                (conn, early)
            }
            Err(connecting) => match connecting.await {
                Ok(conn) => (conn, Rc::new(Early::done())),
                Err(_) => return,
            },
        }
    } else {
        match connecting.await {
            Ok(conn) => (conn, Rc::new(Early::done())),
            Err(_) => return,
        }
    };
    let max_field = w.pipeline().client.limits.max_head as u64;
    let build = h3::server::builder()
        .max_field_section_size(max_field)
        .build::<_, Bytes>(h3_quinn::Connection::new(conn.clone()))
        .await;
    let Ok(mut h3c) = build else {
        return;
    };
    let live = Rc::new(Cell::new(0usize));
    loop {
        let next = {
            let raced = {
                let accept = pin!(h3c.accept());
                let stop = pin!(stopped(&w, &own));
                match crate::io::race(accept, stop).await {
                    crate::io::Either::Left(r) => Some(r),
                    crate::io::Either::Right(_) => None,
                }
            };
            match raced {
                Some(r) => r,
                None => {
                    // The worker drains: GOAWAY (no new request), the accepted ones finish,
                    // then the connection closes with H3_NO_ERROR.
                    let _busy = Busy::new(&w);
                    let _ = h3c.shutdown(0).await;
                    let deadline = std::time::Instant::now() + w.pipeline().client.drain_timeout;
                    let done = async {
                        while live.get() > 0 && std::time::Instant::now() < deadline {
                            monoio::time::sleep(Duration::from_millis(10)).await;
                        }
                    };
                    let mut done = pin!(done);
                    // Still accepting: h3 rejects streams past the GOAWAY (H3_REQUEST_REJECTED,
                    // so the client may retry them elsewhere) and hands over the ones before.
                    let finished = loop {
                        let accept = pin!(h3c.accept());
                        match crate::io::race(accept, done.as_mut()).await {
                            crate::io::Either::Left(Ok(Some(resolver))) => {
                                let peer = conn.remote_address();
                                spawn_request(&w, &live, &early, resolver, peer);
                            }
                            crate::io::Either::Left(_) => break false,
                            crate::io::Either::Right(()) => break true,
                        }
                    };
                    // A last wait, should the connection's accept have ended first.
                    if !finished {
                        done.await;
                    }
                    conn.close(0x100u32.into(), b"");
                    return;
                }
            }
        };
        match next {
            Ok(Some(resolver)) => {
                let peer = conn.remote_address();
                spawn_request(&w, &live, &early, resolver, peer);
            }
            Ok(None) | Err(_) => break,
        }
    }
}

/// Whether a connection's handshake is still under way: a request whose fields arrive before
/// it completes came in 0-RTT data, which an attacker may have replayed (RFC 8470 §1).
pub(crate) struct Early {
    accepted: RefCell<Option<quinn::ZeroRttAccepted>>,
    conn: Option<quinn::Connection>,
}

impl Early {
    fn new(conn: &quinn::Connection, accepted: quinn::ZeroRttAccepted) -> Early {
        Early {
            accepted: RefCell::new(Some(accepted)),
            conn: Some(conn.clone()),
        }
    }

    fn done() -> Early {
        Early {
            accepted: RefCell::new(None),
            conn: None,
        }
    }

    /// The handshake has not completed, as the connection's packets were processed so far
    /// (quinn settles the handshake before it hands over the streams of later packets). A
    /// connection lost before completing counts as early: a replayed 0-RTT flight is one.
    pub(crate) fn now(&self) -> bool {
        use std::future::Future;
        let mut slot = self.accepted.borrow_mut();
        let Some(accepted) = slot.as_mut() else {
            return false;
        };
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let settled = std::pin::Pin::new(accepted).poll(&mut cx).is_ready();
        if settled
            && self
                .conn
                .as_ref()
                .is_some_and(|c| c.close_reason().is_none())
        {
            *slot = None;
            return false;
        }
        true
    }
}

/// A task for one request stream, counted in `live` while it runs.
fn spawn_request(
    w: &Rc<Worker>,
    live: &Rc<Cell<usize>>,
    early: &Rc<Early>,
    resolver: h3::server::RequestResolver<h3_quinn::Connection, Bytes>,
    peer: SocketAddr,
) {
    let (w, live, early) = (w.clone(), live.clone(), early.clone());
    live.set(live.get() + 1);
    monoio::spawn(async move {
        bridge::request(w, resolver, peer, &early).await;
        live.set(live.get() - 1);
    });
}
