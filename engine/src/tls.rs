//! TLS on a client connection: a rustls session over the TCP stream, driven with the runtime's
//! owned-buffer I/O.
//!
//! Records are read from the socket into a buffer taken for that read only, handed to rustls
//! (`read_tls`, `process_new_packets`), and the plaintext is copied out of its reader; writes
//! seal the plaintext into records (`write_tls` into a vector) and send them. So an idle TLS
//! connection holds its session (keys, sequence numbers and rustls' own small buffers) and no
//! read or write buffer of ours.
//!
//! The session lives behind an `Rc<RefCell>` that is never borrowed across an `.await`, so the
//! two halves of a split stream (the proxy sends a request body while it reads the response)
//! each drive their own half of the socket and share the session soundly: a borrow is a short,
//! synchronous step (feed records, take plaintext, seal plaintext). Records the read half must
//! send (an alert, a key update) wait in the session for the next write.
//!
//! The handshake runs at accept, under the header timeout (`handshake`); its failures are
//! counted per reason class ([`TlsCounters`]). A plain HTTP request sent to the TLS port is
//! answered with a 400 that says so, as nginx does, and the connection is closed.

use std::cell::RefCell;
use std::io::Write as _;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bext_tls::rustls::client::ClientConnectionData;
use bext_tls::rustls::server::ServerConnectionData;
use bext_tls::rustls::{ClientConnection, ConnectionCommon, ServerConnection};
use monoio::buf::{IoBuf, IoBufMut, IoVecBuf};
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, CancelHandle};
use monoio::io::{CancelableAsyncReadRent, OwnedReadHalf, OwnedWriteHalf, Splitable};
use monoio::net::TcpStream;

/// Bytes asked of the socket per read: one full TLS record and its header.
const RECORD_READ: usize = 16 * 1024 + 512;

/// The per-connection TLS state shared by the halves of a split stream.
pub struct Session {
    conn: ServerConnection,
    /// Records received but not yet taken by rustls (its plaintext buffer was full).
    pending: Vec<u8>,
    /// The certificate the connection's server name chose (see `bext_tls::Listener::site_for`).
    pub site: usize,
    pub listener: Arc<bext_tls::Listener>,
    /// The verified client certificate's identity, as the upstream header carries it.
    pub client_subject: Option<String>,
    /// The same identity as routing conditions read it (`client_cert`).
    pub client_cert: Option<Rc<bext_stage::ClientCert>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("site", &self.site).finish()
    }
}

impl Session {
    /// Whether the Host of a request names a site this connection's certificate would not
    /// have served (domain fronting: answer 421).
    pub fn misdirected(&self, host: &[u8]) -> bool {
        let mut host = host;
        while let [rest @ .., b'.'] = host {
            host = rest;
        }
        // The usual case, the Host the connection's server name: the same site by
        // construction, decided without a lookup.
        if self
            .conn
            .server_name()
            .is_some_and(|sni| sni.as_bytes().eq_ignore_ascii_case(host))
        {
            return false;
        }
        let ipv6 = |h: &[u8]| {
            h.contains(&b':')
                && std::str::from_utf8(h).is_ok_and(|h| h.parse::<std::net::Ipv6Addr>().is_ok())
        };
        if host.is_empty() || host[0] == b'[' || is_ipv4(host) || ipv6(host) {
            // An address names no site: the connection's own certificate answers it.
            return false;
        }
        let Ok(host) = std::str::from_utf8(host) else {
            return true;
        };
        self.listener.site_for(Some(&host.to_ascii_lowercase())) != self.site
    }
}

/// Whether `host` is a dotted-quad IPv4 address (four decimal numbers up to 255, no leading
/// zeros, as `Ipv4Addr` parses them), without building a string.
fn is_ipv4(host: &[u8]) -> bool {
    let mut parts = 0;
    for part in host.split(|&b| b == b'.') {
        parts += 1;
        let ok = match part {
            [] => false,
            [b'0'] => true,
            [b'0', ..] => false,
            _ => {
                part.len() <= 3
                    && part.iter().all(u8::is_ascii_digit)
                    && part.iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0')) <= 255
            }
        };
        if !ok || parts > 4 {
            return false;
        }
    }
    parts == 4
}

/// One side of a TLS session (the server side of a client connection, the client side of an
/// upstream connection) as the stream code drives it: records in, plaintext out, plaintext in,
/// records out.
pub trait Side {
    type Data;
    fn conn(&mut self) -> &mut ConnectionCommon<Self::Data>;
    /// Records received but not yet taken by rustls (its plaintext buffer was full).
    fn pending(&mut self) -> &mut Vec<u8>;

    /// Sealed records waiting to be sent, taken out.
    fn take_records(&mut self) -> Vec<u8> {
        let mut out = spare(0);
        while self.conn().wants_write() {
            if self.conn().write_tls(&mut out).is_err() {
                break;
            }
        }
        out
    }

    /// Hands received records to rustls. Errors are fatal to the session.
    fn feed(&mut self, mut data: &[u8]) -> std::io::Result<()> {
        while !data.is_empty() {
            match self.conn().read_tls(&mut data) {
                Ok(0) => break,
                Ok(_) => {}
                // The plaintext buffer is full: keep the rest for when it has been read.
                Err(_) => break,
            }
            self.conn()
                .process_new_packets()
                .map_err(std::io::Error::other)?;
        }
        if !data.is_empty() {
            self.pending().extend_from_slice(data);
        }
        Ok(())
    }

    /// Feeds records kept back earlier, now that plaintext has been taken.
    fn feed_pending(&mut self) -> std::io::Result<()> {
        if self.pending().is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(self.pending());
        self.feed(&pending)
    }

    /// Copies plaintext into `buf`: `Some(n)` (0 at the end of the stream), `None` when more
    /// records are needed.
    fn take_plain<T: IoBufMut>(&mut self, buf: &mut T) -> std::io::Result<Option<usize>> {
        use std::io::BufRead as _;
        let mut reader = self.conn().reader();
        match reader.fill_buf() {
            Ok([]) => Ok(Some(0)),
            Ok(chunk) => {
                let n = crate::sys::fill_buf(buf, chunk);
                reader.consume(n);
                Ok(Some(n))
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
            // The peer closed the socket without `close_notify`: an end of stream all the same
            // (HTTP framing tells a complete message from a truncated one).
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(Some(0)),
            Err(e) => Err(e),
        }
    }

    fn has_plaintext(&mut self) -> bool {
        use std::io::BufRead as _;
        !self.pending().is_empty() || !matches!(self.conn().reader().fill_buf(), Ok([]) | Err(_))
    }
}

impl Side for Session {
    type Data = ServerConnectionData;

    fn conn(&mut self) -> &mut ConnectionCommon<ServerConnectionData> {
        &mut self.conn
    }

    fn pending(&mut self) -> &mut Vec<u8> {
        &mut self.pending
    }
}

thread_local! {
    /// This thread's spare buffers for records read from sockets and sealed records on their
    /// way out, so that a request over an established session allocates for neither. A few,
    /// each at most [`SPARE_MAX`] bytes: idle connections hold none of them.
    static SPARE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// Largest buffer kept spare.
const SPARE_MAX: usize = 64 * 1024;

/// An empty buffer with room for `cap` bytes, spare if one is.
fn spare(cap: usize) -> Vec<u8> {
    match SPARE.with(|s| s.borrow_mut().pop()) {
        Some(mut v) => {
            v.clear();
            v.reserve(cap);
            v
        }
        None => Vec::with_capacity(cap),
    }
}

/// Keeps `v` for the next [`spare`] (up to four, of bounded size).
fn give_back(v: Vec<u8>) {
    if v.capacity() <= SPARE_MAX {
        SPARE.with(|s| {
            let mut s = s.borrow_mut();
            if s.len() < 4 {
                s.push(v);
            }
        });
    }
}

/// Reads plaintext into `buf` through `tcp` (the socket or its read half).
async fn read_plain<R: CancelableAsyncReadRent, T: IoBufMut, S: Side>(
    tcp: &mut R,
    s: &RefCell<S>,
    mut buf: T,
    cancel: Option<CancelHandle>,
) -> (std::io::Result<usize>, T) {
    loop {
        {
            let mut g = s.borrow_mut();
            match g.take_plain(&mut buf) {
                Ok(Some(n)) => return (Ok(n), buf),
                Ok(None) => {}
                Err(e) => return (Err(e), buf),
            }
            if !g.pending().is_empty() {
                if let Err(e) = g.feed_pending() {
                    return (Err(e), buf);
                }
                continue;
            }
        }
        let rec = spare(RECORD_READ);
        let (res, rec) = match &cancel {
            Some(c) => tcp.cancelable_read(rec, c.clone()).await,
            None => tcp.read(rec).await,
        };
        let mut g = s.borrow_mut();
        let fed = match res {
            Ok(0) => {
                // End of the socket: rustls learns it, and its reader then says how it ended.
                let _ = g.conn().read_tls(&mut &[][..]);
                Ok(())
            }
            Ok(n) => g.feed(&rec[..n]),
            Err(e) => Err(e),
        };
        give_back(rec);
        if let Err(e) = fed {
            return (Err(e), buf);
        }
    }
}

/// Seals `data` and sends the records through `tcp`.
async fn write_plain<W: AsyncWriteRent, S: Side>(
    tcp: &mut W,
    s: &RefCell<S>,
    data: &[u8],
) -> std::io::Result<usize> {
    let mut off = 0;
    loop {
        let out = {
            let mut g = s.borrow_mut();
            if off < data.len() {
                off += g.conn().writer().write(&data[off..])?;
            }
            g.take_records()
        };
        if !out.is_empty() {
            let (res, out) = tcp.write_all(out).await;
            give_back(out);
            res?;
        }
        if off >= data.len() {
            return Ok(data.len());
        }
    }
}

/// Sends `close_notify`, then ends the socket's sending side.
async fn close_plain<W: AsyncWriteRent, S: Side>(
    tcp: &mut W,
    s: &RefCell<S>,
) -> std::io::Result<()> {
    let out = {
        let mut g = s.borrow_mut();
        g.conn().send_close_notify();
        g.take_records()
    };
    if !out.is_empty() {
        let (res, _) = tcp.write_all(out).await;
        res?;
    }
    tcp.shutdown().await
}

/// Sends records the read side left waiting (an alert, a key update).
async fn flush_plain<W: AsyncWriteRent, S: Side>(
    tcp: &mut W,
    s: &RefCell<S>,
) -> std::io::Result<()> {
    let out = s.borrow_mut().take_records();
    if !out.is_empty() {
        let (res, out) = tcp.write_all(out).await;
        give_back(out);
        res?;
    }
    Ok(())
}

/// A connection over TLS: a client's ([`Session`]) or an upstream's ([`UpstreamSession`]).
pub struct TlsStream<S = Session> {
    tcp: TcpStream,
    s: Rc<RefCell<S>>,
}

impl<S> std::fmt::Debug for TlsStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStream").field("tcp", &self.tcp).finish()
    }
}

impl<S: Side> TlsStream<S> {
    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    pub fn session(&self) -> std::cell::Ref<'_, S> {
        self.s.borrow()
    }

    /// Whether plaintext or received records wait in the session (the socket's readiness
    /// would not tell).
    pub(crate) fn holds_input(&self) -> bool {
        self.s.borrow_mut().has_plaintext()
    }

    /// The socket and the session apart, to park the connection without a task.
    pub(crate) fn into_parts(self) -> (TcpStream, Rc<RefCell<S>>) {
        (self.tcp, self.s)
    }

    pub(crate) fn from_parts(tcp: TcpStream, s: Rc<RefCell<S>>) -> TlsStream<S> {
        TlsStream { tcp, s }
    }

    /// Ready when plaintext is already waiting, else when the socket is readable.
    pub async fn readable(&self, relaxed: bool) -> std::io::Result<()> {
        if self.s.borrow_mut().has_plaintext() {
            return Ok(());
        }
        self.tcp.readable(relaxed).await
    }

    pub async fn read<T: IoBufMut>(&mut self, buf: T) -> (std::io::Result<usize>, T) {
        read_plain(&mut self.tcp, &self.s, buf, None).await
    }

    pub async fn cancelable_read<T: IoBufMut>(
        &mut self,
        buf: T,
        c: CancelHandle,
    ) -> (std::io::Result<usize>, T) {
        read_plain(&mut self.tcp, &self.s, buf, Some(c)).await
    }

    pub async fn write<T: IoBuf>(&mut self, buf: T) -> (std::io::Result<usize>, T) {
        let res = write_plain(&mut self.tcp, &self.s, crate::sys::buf_bytes(&buf)).await;
        (res, buf)
    }

    pub async fn writev<T: IoVecBuf>(&mut self, buf: T) -> (std::io::Result<usize>, T) {
        let mut all = Vec::new();
        crate::sys::for_each_iovec(&buf, |p| all.extend_from_slice(p));
        let res = write_plain(&mut self.tcp, &self.s, &all).await;
        (res, buf)
    }

    pub async fn flush(&mut self) -> std::io::Result<()> {
        flush_plain(&mut self.tcp, &self.s).await
    }

    pub async fn shutdown(&mut self) -> std::io::Result<()> {
        close_plain(&mut self.tcp, &self.s).await
    }

    pub fn into_split(self) -> (TlsRead<S>, TlsWrite<S>) {
        let (rd, wr) = self.tcp.into_split();
        (
            TlsRead {
                tcp: rd,
                s: self.s.clone(),
            },
            TlsWrite { tcp: wr, s: self.s },
        )
    }
}

/// The reading half of a split TLS stream.
pub struct TlsRead<S = Session> {
    tcp: OwnedReadHalf<TcpStream>,
    s: Rc<RefCell<S>>,
}

/// The writing half of a split TLS stream.
pub struct TlsWrite<S = Session> {
    tcp: OwnedWriteHalf<TcpStream>,
    s: Rc<RefCell<S>>,
}

impl<S: Side> TlsRead<S> {
    pub async fn read<T: IoBufMut>(&mut self, buf: T) -> (std::io::Result<usize>, T) {
        read_plain(&mut self.tcp, &self.s, buf, None).await
    }

    pub async fn cancelable_read<T: IoBufMut>(
        &mut self,
        buf: T,
        c: CancelHandle,
    ) -> (std::io::Result<usize>, T) {
        read_plain(&mut self.tcp, &self.s, buf, Some(c)).await
    }

    /// The stream back, when `w` is its other half.
    #[allow(clippy::type_complexity)]
    pub fn reunite(self, w: TlsWrite<S>) -> Result<TlsStream<S>, (TlsRead<S>, TlsWrite<S>)> {
        if !Rc::ptr_eq(&self.s, &w.s) {
            return Err((self, w));
        }
        let s = self.s;
        drop(w.s);
        match self.tcp.reunite(w.tcp) {
            Ok(tcp) => Ok(TlsStream { tcp, s }),
            // Halves of one stream share their session, so their sockets are one too.
            Err(e) => Err((
                TlsRead {
                    tcp: e.0,
                    s: s.clone(),
                },
                TlsWrite { tcp: e.1, s },
            )),
        }
    }
}

impl<S: Side> TlsWrite<S> {
    pub async fn write<T: IoBuf>(&mut self, buf: T) -> (std::io::Result<usize>, T) {
        let res = write_plain(&mut self.tcp, &self.s, crate::sys::buf_bytes(&buf)).await;
        (res, buf)
    }

    pub async fn writev<T: IoVecBuf>(&mut self, buf: T) -> (std::io::Result<usize>, T) {
        let mut all = Vec::new();
        crate::sys::for_each_iovec(&buf, |p| all.extend_from_slice(p));
        let res = write_plain(&mut self.tcp, &self.s, &all).await;
        (res, buf)
    }

    pub async fn flush(&mut self) -> std::io::Result<()> {
        flush_plain(&mut self.tcp, &self.s).await
    }

    pub async fn shutdown(&mut self) -> std::io::Result<()> {
        close_plain(&mut self.tcp, &self.s).await
    }
}

/// Handshake outcomes since start, for /status (the whole process).
pub struct TlsCounters {
    pub handshakes: AtomicU64,
    pub resumed: AtomicU64,
    pub plain_http: AtomicU64,
    pub misdirected: AtomicU64,
    /// Handshakes with upstream servers (`server … tls`), those resumed, those whose
    /// certificate was not accepted, and those that failed otherwise.
    pub upstream_handshakes: AtomicU64,
    pub upstream_resumed: AtomicU64,
    pub upstream_verify_failed: AtomicU64,
    pub upstream_failed: AtomicU64,
    /// Failed handshakes by reason class (`bext_tls::failure_class`), and those that timed out
    /// or whose peer went away.
    failures: [(&'static str, AtomicU64); FAILURE_CLASSES.len()],
}

/// Every reason class a failed handshake is counted under.
const FAILURE_CLASSES: [&str; 14] = [
    "no_shared_cipher",
    "no_shared_group",
    "no_shared_signature",
    "protocol_version",
    "incompatible",
    "no_shared_alpn",
    "client_cert_missing",
    "client_cert_invalid",
    "peer_alert",
    "malformed",
    "decrypt",
    "other",
    "timeout",
    "closed",
];

impl TlsCounters {
    const fn new() -> TlsCounters {
        #[allow(clippy::declare_interior_mutable_const)]
        const Z: AtomicU64 = AtomicU64::new(0);
        macro_rules! classes {
            ($($i:literal)*) => { [$((FAILURE_CLASSES[$i], AtomicU64::new(0))),*] };
        }
        TlsCounters {
            handshakes: Z,
            resumed: Z,
            plain_http: Z,
            misdirected: Z,
            upstream_handshakes: Z,
            upstream_resumed: Z,
            upstream_verify_failed: Z,
            upstream_failed: Z,
            failures: classes!(0 1 2 3 4 5 6 7 8 9 10 11 12 13),
        }
    }

    fn failed(&self, class: &str) {
        let i = self
            .failures
            .iter()
            .position(|(c, _)| *c == class)
            .unwrap_or(FAILURE_CLASSES.len() - 3);
        self.failures[i].1.fetch_add(1, Ordering::Relaxed);
    }

    /// Failed handshakes per reason class, the classes seen so far.
    pub fn failures(&self) -> Vec<(&'static str, u64)> {
        self.failures
            .iter()
            .map(|(c, n)| (*c, n.load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

pub static COUNTERS: TlsCounters = TlsCounters::new();

/// kTLS offload, probed once: bext encrypts in user space where the kernel does not offer it
/// (shown on /status).
pub fn ktls() -> &'static bext_tls::Ktls {
    static KTLS: std::sync::OnceLock<bext_tls::Ktls> = std::sync::OnceLock::new();
    KTLS.get_or_init(bext_tls::ktls_probe)
}

/// `,"tls":{...}` of the /status document: kTLS, and the handshakes since start.
pub fn status_json(out: &mut String) {
    use std::fmt::Write as _;
    let (ktls, why) = match ktls() {
        bext_tls::Ktls::Available => ("available", String::new()),
        bext_tls::Ktls::Unavailable(why) => ("unavailable", why.replace(['"', '\\'], "'")),
    };
    let c = &COUNTERS;
    let _ = write!(
        out,
        ",\"tls\":{{\"ktls\":\"{ktls}\",\"ktls_reason\":\"{why}\",\"encryption\":\"user space\",\"handshakes\":{},\"resumed\":{},\"plain_http\":{},\"misdirected\":{},\"handshake_failures\":{{",
        c.handshakes.load(Ordering::Relaxed),
        c.resumed.load(Ordering::Relaxed),
        c.plain_http.load(Ordering::Relaxed),
        c.misdirected.load(Ordering::Relaxed),
    );
    for (i, (class, n)) in c.failures().into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "\"{class}\":{n}");
    }
    let _ = write!(
        out,
        "}},\"upstream\":{{\"handshakes\":{},\"resumed\":{},\"verify_failures\":{},\"failures\":{}}}}}",
        c.upstream_handshakes.load(Ordering::Relaxed),
        c.upstream_resumed.load(Ordering::Relaxed),
        c.upstream_verify_failed.load(Ordering::Relaxed),
        c.upstream_failed.load(Ordering::Relaxed),
    );
}

/// The answer to a plain HTTP request on a TLS port.
const PLAIN_HTTP_400: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 48\r\nConnection: close\r\n\r\nThe plain HTTP request was sent to HTTPS port.\r\n";

/// Why a handshake did not complete.
#[derive(Debug)]
pub enum HandshakeErr {
    /// A TLS failure of this reason class (an alert was sent when there was one to send).
    Tls(&'static str),
    /// A plain HTTP request: answered with a 400.
    PlainHttp,
    /// The client went away or said nothing in time.
    Closed,
}

/// How a handshake loop ended short of an established session.
enum Stop {
    /// The peer closed the connection, or a write to it failed.
    Closed,
    /// A step took longer than the limit.
    Timeout,
    /// rustls refused what the peer sent (the alert it queued has been sent).
    Tls(bext_tls::rustls::Error),
    /// The peer's first bytes were a plain HTTP request (looked for on the server side only).
    PlainHttp,
}

/// The handshake of either end on `tcp`: send what rustls queued, read, feed rustls, until
/// the session is established; records received past the handshake are kept in the session's
/// pending bytes. `limit` bounds each write and read.
async fn drive_handshake<S: Side>(
    tcp: &mut TcpStream,
    s: &mut S,
    limit: &crate::io::Limit<'_>,
    look_for_plain_http: bool,
) -> Result<(), Stop> {
    let mut first = true;
    loop {
        let out = s.take_records();
        if !out.is_empty() {
            match limit.run(tcp.write_all(out)).await {
                Some((Ok(_), _)) => {}
                Some((Err(_), _)) => return Err(Stop::Closed),
                None => return Err(Stop::Timeout),
            }
        }
        if !s.conn().is_handshaking() {
            return Ok(());
        }
        let rec = Vec::with_capacity(RECORD_READ);
        let Some((res, rec)) = limit.run(tcp.read(rec)).await else {
            return Err(Stop::Timeout);
        };
        let n = match res {
            Ok(n) if n > 0 => n,
            _ => return Err(Stop::Closed),
        };
        if look_for_plain_http && first && bext_tls::is_plain_http(&rec[..n]) {
            return Err(Stop::PlainHttp);
        }
        first = false;
        let mut data = &rec[..n];
        while !data.is_empty() {
            match s.conn().read_tls(&mut data) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if let Err(e) = s.conn().process_new_packets() {
                // Send the alert rustls queued, so the peer learns why, then give up.
                let out = s.take_records();
                if !out.is_empty() {
                    let _ = limit.run(tcp.write_all(out)).await;
                }
                return Err(Stop::Tls(e));
            }
        }
        if !data.is_empty() {
            s.pending().extend_from_slice(data);
        }
    }
}

/// Runs the server side of the handshake on a new connection. `limit` bounds each step.
pub async fn handshake(
    mut tcp: TcpStream,
    listener: Arc<bext_tls::Listener>,
    limit: crate::io::Limit<'_>,
) -> Result<TlsStream, HandshakeErr> {
    let conn = match ServerConnection::new(listener.server_config().clone()) {
        Ok(c) => c,
        Err(e) => {
            let class = bext_tls::failure_class(&e);
            COUNTERS.failed(class);
            return Err(HandshakeErr::Tls(class));
        }
    };
    let mut s = Session {
        conn,
        pending: Vec::new(),
        site: 0,
        listener,
        client_subject: None,
        client_cert: None,
    };
    match drive_handshake(&mut tcp, &mut s, &limit, true).await {
        Ok(()) => {}
        Err(Stop::PlainHttp) => {
            COUNTERS.plain_http.fetch_add(1, Ordering::Relaxed);
            let _ = limit.run(tcp.write_all(PLAIN_HTTP_400)).await;
            let _ = tcp.shutdown().await;
            return Err(HandshakeErr::PlainHttp);
        }
        Err(Stop::Tls(e)) => {
            let class = bext_tls::failure_class(&e);
            COUNTERS.failed(class);
            return Err(HandshakeErr::Tls(class));
        }
        Err(Stop::Timeout) => {
            COUNTERS.failed("timeout");
            return Err(HandshakeErr::Closed);
        }
        Err(Stop::Closed) => {
            COUNTERS.failed("closed");
            return Err(HandshakeErr::Closed);
        }
    }
    COUNTERS.handshakes.fetch_add(1, Ordering::Relaxed);
    if matches!(
        s.conn.handshake_kind(),
        Some(bext_tls::rustls::HandshakeKind::Resumed)
    ) {
        COUNTERS.resumed.fetch_add(1, Ordering::Relaxed);
    }
    s.site = s.listener.site_for(s.conn.server_name());
    let identity = bext_tls::PeerIdentity::of(&s.conn);
    s.client_subject = identity.as_ref().map(|p| p.header_value());
    s.client_cert = identity.map(|p| {
        Rc::new(bext_stage::ClientCert {
            common_name: p.common_name,
            dns_names: p.dns_names,
        })
    });
    if s.feed_pending().is_err() {
        COUNTERS.failed("malformed");
        return Err(HandshakeErr::Tls("malformed"));
    }
    Ok(TlsStream {
        tcp,
        s: Rc::new(RefCell::new(s)),
    })
}

/// The client side of a TLS session with an upstream server.
pub struct UpstreamSession {
    conn: ClientConnection,
    pending: Vec<u8>,
}

impl Side for UpstreamSession {
    type Data = ClientConnectionData;

    fn conn(&mut self) -> &mut ConnectionCommon<ClientConnectionData> {
        &mut self.conn
    }

    fn pending(&mut self) -> &mut Vec<u8> {
        &mut self.pending
    }
}

/// Why a handshake with an upstream server did not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamTlsErr {
    /// The server's certificate was not accepted (unknown issuer, wrong name, expired...).
    Verify,
    /// Any other TLS failure (no shared version or suite, an alert, a malformed record).
    Handshake,
    /// The server closed the connection during the handshake.
    Closed,
    /// The handshake did not complete in time.
    Timeout,
}

/// Runs the client side of the handshake with an upstream server on a new connection; `limit`
/// bounds each step (the upstream's connect timeout).
pub async fn connect_upstream(
    mut tcp: TcpStream,
    tls: &bext_tls::UpstreamTls,
    limit: crate::io::Limit<'_>,
) -> Result<TlsStream<UpstreamSession>, UpstreamTlsErr> {
    let conn = ClientConnection::new(tls.config().clone(), tls.name().clone()).map_err(|_| {
        COUNTERS.upstream_failed.fetch_add(1, Ordering::Relaxed);
        UpstreamTlsErr::Handshake
    })?;
    let mut s = UpstreamSession {
        conn,
        pending: Vec::new(),
    };
    let result = drive_handshake(&mut tcp, &mut s, &limit, false)
        .await
        .map_err(|stop| match stop {
            Stop::Tls(bext_tls::rustls::Error::InvalidCertificate(_)) => UpstreamTlsErr::Verify,
            Stop::Tls(_) | Stop::PlainHttp => UpstreamTlsErr::Handshake,
            Stop::Timeout => UpstreamTlsErr::Timeout,
            Stop::Closed => UpstreamTlsErr::Closed,
        });
    match result {
        Ok(()) => {
            COUNTERS.upstream_handshakes.fetch_add(1, Ordering::Relaxed);
            if matches!(
                s.conn.handshake_kind(),
                Some(bext_tls::rustls::HandshakeKind::Resumed)
            ) {
                COUNTERS.upstream_resumed.fetch_add(1, Ordering::Relaxed);
            }
            if s.feed_pending().is_err() {
                COUNTERS.upstream_failed.fetch_add(1, Ordering::Relaxed);
                return Err(UpstreamTlsErr::Handshake);
            }
            Ok(TlsStream {
                tcp,
                s: Rc::new(RefCell::new(s)),
            })
        }
        Err(UpstreamTlsErr::Verify) => {
            COUNTERS
                .upstream_verify_failed
                .fetch_add(1, Ordering::Relaxed);
            Err(UpstreamTlsErr::Verify)
        }
        Err(e) => {
            COUNTERS.upstream_failed.fetch_add(1, Ordering::Relaxed);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The byte test reads a Host as an IPv4 address exactly where the standard parser does.
    #[test]
    fn ipv4_hosts_read_as_the_standard_parser_reads_them() {
        for h in [
            "127.0.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "256.1.1.1",
            "01.2.3.4",
            "1.2.3",
            "1.2.3.4.5",
            "1..2.3",
            "1.2.3.4.",
            "a.b.c.d",
            "1.2.3.04",
            "10.0.0.1x",
            "",
            "1.2.3.4:80",
            "999.1.1.1",
        ] {
            assert_eq!(
                is_ipv4(h.as_bytes()),
                h.parse::<std::net::Ipv4Addr>().is_ok(),
                "{h:?}"
            );
        }
    }
}
