//! A client connection: read a request head, route it, run its action, write the response,
//! and loop for keep-alive and pipelining (one request at a time, so responses leave in order).
//!
//! An idle keep-alive connection holds no buffer: on epoll it waits for readiness with nothing
//! allocated, and its scratch (buffer and parsed head) goes back to the worker's free list.

use crate::body::{BodyErr, BodyReader};
use crate::error::{problem_body, reason, ErrorClass};
use crate::io::{race, read_more, write_all, write_static, Either, IoFail, Limit, PerStep};
use crate::pipeline::{
    Action, ClientPolicy, CompiledRoute, Pipeline, Respond, RespondBody, Segment,
};
use crate::stage::{Exchange, Flow, Headers, LogEntry, Phases, RequestView, RouteResult};
use crate::worker::{Scratch, Woken, Worker};
use bext_http1::{Framing, Method, Parse, Version};
use monoio::buf::IoBufMut;
use monoio::net::TcpStream;
use std::net::SocketAddr;
use std::pin::pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// What happened to one request.
pub(crate) struct Outcome {
    pub status: u16,
    pub bytes: u64,
    /// The response announced keep-alive and the connection is in a state to read the next
    /// request.
    pub keep: bool,
    pub error: Option<&'static str>,
    pub upstream: Option<SocketAddr>,
}

impl Outcome {
    pub fn closed(status: u16, error: Option<&'static str>) -> Outcome {
        Outcome {
            status,
            bytes: 0,
            keep: false,
            error,
            upstream: None,
        }
    }
}

/// Everything an action needs about the current request.
pub(crate) struct Ctx<'a> {
    pub w: &'a Rc<Worker>,
    /// `None` once the connection was handed to a tunnel or closed.
    pub stream: &'a mut Option<TcpStream>,
    pub buf: &'a mut Vec<u8>,
    pub head: &'a bext_http1::RequestHead,
    pub rhead: &'a mut bext_http1::ResponseHead,
    /// Start of unconsumed bytes in `buf` (after the head, then after the body).
    pub pos: usize,
    pub peer: SocketAddr,
    pub policy: ClientPolicy,
    pub framing: Framing,
    pub http10: bool,
    pub is_head: bool,
    /// The client asked to keep the connection and the worker is not stopping.
    pub keep_wanted: bool,
    pub rid: &'a [u8],
    /// The peer is one of `trusted_proxies`: its forwarding fields are kept.
    pub trusted: bool,
    /// The normal form of the path when it differs from the one sent (set by `dispatch`).
    pub path: Option<Vec<u8>>,
    /// The route's stage states and the response phases' decisions.
    pub ex: &'a mut Exchange,
    /// The matched route (flat index), once routed.
    pub route: Option<usize>,
}

impl<'a> Ctx<'a> {
    pub fn has_body(&self) -> bool {
        !matches!(self.framing, Framing::None | Framing::ContentLength(0))
    }

    /// The path the request was routed on and is forwarded with: the normal form.
    pub fn path(&self) -> &[u8] {
        match &self.path {
            Some(p) => p,
            None => self.head.path_or_root(self.buf),
        }
    }

    /// The client connection. Actions run only while the connection is present.
    pub fn client(&mut self) -> Option<&mut TcpStream> {
        self.stream.as_mut()
    }

    /// The deadline of a write to the client (or of a read of its body), set now.
    pub fn send_timeout(&self) -> Limit<'a> {
        self.send_steps().step()
    }

    /// The same timeout for each step of a loop that moves a body piece by piece.
    pub fn send_steps(&self) -> PerStep<'a> {
        let w: &'a Rc<Worker> = self.w;
        PerStep::new(&w.stop, self.policy.body_timeout)
    }
}

/// `Connection` field for a response: close, or keep-alive spelled out for HTTP/1.0.
pub(crate) fn connection_field(out: &mut Vec<u8>, close: bool, http10: bool) {
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if http10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
}

fn push_usize(out: &mut Vec<u8>, n: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    let mut v = n;
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
}

pub(crate) fn content_length_field(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(b"Content-Length: ");
    push_usize(out, n);
    out.extend_from_slice(b"\r\n");
}

/// Host without its port (`[v6]:port` keeps the brackets).
pub fn strip_port(h: &[u8]) -> &[u8] {
    if h.first() == Some(&b'[') {
        return match h.iter().position(|&b| b == b']') {
            Some(i) => &h[..=i],
            None => h,
        };
    }
    match h.iter().rposition(|&b| b == b':') {
        Some(i) if h[i + 1..].iter().all(u8::is_ascii_digit) => &h[..i],
        _ => h,
    }
}

/// A request id from a trusted proxy is kept when it is 1..=128 characters of `[A-Za-z0-9._:-]`.
pub fn valid_request_id(v: &[u8]) -> bool {
    (1..=128).contains(&v.len())
        && v.iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'))
}

pin_project_lite::pin_project! {
    /// An idle connection's wait: readable, or the worker stops, or the idle deadline passes.
    /// A struct rather than a `race` of two futures: it is the largest part of an idle
    /// connection's state, so every byte counts.
    struct IdleWait<'a, R> {
        #[pin]
        ready: R,
        stop: crate::worker::StopWait<'a>,
    }
}

impl<R: std::future::Future<Output = std::io::Result<()>>> std::future::Future for IdleWait<'_, R> {
    /// True when the connection became readable.
    type Output = bool;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<bool> {
        let this = self.project();
        if let std::task::Poll::Ready(r) = this.ready.poll(cx) {
            return std::task::Poll::Ready(r.is_ok());
        }
        if std::pin::Pin::new(this.stop).poll(cx).is_ready() {
            return std::task::Poll::Ready(false);
        }
        std::task::Poll::Pending
    }
}

/// Built outside the connection's state machine so that none of its temporaries live there.
fn idle_wait<'a>(
    w: &'a Worker,
    s: &'a TcpStream,
    limit: Duration,
) -> IdleWait<'a, impl std::future::Future<Output = std::io::Result<()>> + 'a> {
    let deadline = Instant::now() + limit;
    IdleWait {
        ready: s.readable(false),
        stop: w.stop.wait_until(deadline),
    }
}

struct ConnCount(Rc<Worker>);

impl Drop for ConnCount {
    fn drop(&mut self) {
        self.0.connections_closed(1);
    }
}

struct InFlight<'a>(&'a Worker);

impl<'a> InFlight<'a> {
    fn new(w: &'a Worker) -> Self {
        w.in_flight.set(w.in_flight.get() + 1);
        InFlight(w)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.set(self.0.in_flight.get() - 1);
    }
}

/// Serve one accepted connection until it closes.
///
/// Between requests a connection is hot for a moment (it keeps its scratch and reads
/// directly), then parked outside any task (see `idle`): an idle connection has no task, so
/// the request's state lives in this future, not in a box allocated per request (the task is
/// allocated once per connection). Where a connection cannot be parked (no parking set) it
/// waits in this future holding no scratch (the scratch is boxed and returned to the worker
/// while idle), and its idle timeout is a deadline checked on the worker's tick rather than a
/// timer of its own.
pub(crate) fn serve(
    w: Rc<Worker>,
    stream: TcpStream,
    peer: SocketAddr,
) -> impl std::future::Future<Output = ()> {
    // TCP_NODELAY is inherited from the listener (see `server::bind_one`).
    w.connections.set(w.connections.get() + 1);
    // A plain function around the async one: the stream is moved into its final place once,
    // instead of being kept both as an argument and as a local of the state machine. The peer
    // address comes from `accept`, so no `getpeername` is needed.
    serve_conn(ConnCount(w), Some(stream), Some(peer), 0, false)
}

/// Serve a parked connection that became readable, `served` requests into its life (its
/// socket options are already set; its peer address is asked for when its next request
/// needs it).
pub(crate) fn resume(
    w: Rc<Worker>,
    stream: TcpStream,
    served: u32,
) -> impl std::future::Future<Output = ()> {
    w.connections.set(w.connections.get() + 1);
    serve_conn(ConnCount(w), Some(stream), None, served, true)
}

/// The connection loop. `served` counts the requests answered on this connection (the last
/// one allowed by `keepalive_requests` is answered with `Connection: close`); `readable` is
/// true for a parked connection that woke up, whose next request is waiting.
async fn serve_conn(
    count: ConnCount,
    mut stream: Option<TcpStream>,
    peer: Option<SocketAddr>,
    mut served: u32,
    readable: bool,
) {
    let w = &count.0;
    // "Hot": the connection just finished a response (or was just accepted) and keeps its
    // scratch for a moment, reading the next request directly: no readiness check first, and
    // for a new connection whose request has already arrived, one syscall instead of two.
    let mut hot = w.hot.get() < HOT_MAX;
    let mut scratch: Option<Box<Scratch>> = hot.then(|| w.take_scratch());
    // A woken parked connection is readable: it is not parked again before its next request.
    let mut skip_park = readable;
    loop {
        if w.stop.is_stopped() {
            break;
        }
        if hot {
            hot = false;
            let (Some(s), Some(sc)) = (stream.as_mut(), scratch.as_mut()) else {
                break;
            };
            match hot_read(w, s, &mut sc.buf, &mut sc.cancel).await {
                Some(true) => {}
                Some(false) => {
                    if let Some(sc) = scratch.take() {
                        w.give_scratch(sc);
                    }
                    continue;
                }
                None => break,
            }
        } else if scratch.is_none() && (w.readiness_idle || w.parked.available()) {
            // A new connection that has not sent its request yet waits under the header
            // timeout, a keep-alive one under the idle timeout.
            let limit = w.pipeline().client.request_wait(served);
            if !skip_park {
                // Quiet past the hot window (or no hot slot free): park the connection, new
                // or kept alive (its task ends; see `idle`). A silent new connection then costs
                // what an idle keep-alive one does, not a task with a request's state.
                let Some(s) = stream.take() else { break };
                match w.parked.park(w, s, limit, served) {
                    Some(s) => stream = Some(s),
                    None => return,
                }
            }
            // Parking unavailable: wait for readiness holding no buffer at all. Not "relaxed":
            // the readiness left over from the last read is confirmed with a zero-timeout poll,
            // or a stale one would make the connection take a buffer and wait with it.
            // (On io_uring the request's read, with its buffer, is the wait.)
            let Some(s) = stream.as_ref() else { break };
            if w.readiness_idle && !idle_wait(w, s, limit).await {
                break;
            }
        }
        skip_park = false;
        let sc = scratch.get_or_insert_with(|| w.take_scratch());
        let next = one_request(w, &mut stream, sc, peer, served).await;
        served = served.saturating_add(1);
        if matches!(next, Next::CloseNow) {
            // The client asked to close and sent nothing more: nothing can arrive that would
            // make the kernel answer with a reset, so no lingering is needed.
            stream = None;
            break;
        }
        if matches!(next, Next::Close) || stream.is_none() {
            break;
        }
        if sc.buf.is_empty() {
            if (w.readiness_idle || w.parked.available()) && w.hot.get() < HOT_MAX {
                hot = true;
            } else if let Some(sc) = scratch.take() {
                w.give_scratch(sc);
            }
        }
    }
    if let Some(sc) = scratch.take() {
        w.give_scratch(sc);
    }
    if let Some(s) = stream.take() {
        Box::pin(linger_close(w, s)).await;
    }
}

/// A hot connection's read of its next request: `Some(true)` when bytes arrived,
/// `Some(false)` when the window passed (the connection goes idle without a buffer), `None` to
/// close. On epoll a pending read holds no data, so dropping it at the deadline loses nothing;
/// on io_uring the read is cancelled and awaited, since it may complete with data meanwhile.
async fn hot_read(
    w: &Worker,
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
    cancel: &mut monoio::io::Canceller,
) -> Option<bool> {
    let _hot = Hot::new(w);
    if buf.capacity() - buf.len() < 1024 {
        buf.reserve(1024);
    }
    if !w.readiness_idle {
        return hot_read_cancelable(w, s, buf, cancel).await;
    }
    let (len, cap) = (buf.len(), buf.capacity());
    let read = monoio::io::AsyncReadRent::read(s, std::mem::take(buf).slice_mut(len..cap));
    let window = w.stop.wait_for(HOT_WINDOW);
    match race(pin!(read), pin!(window)).await {
        Either::Left((Ok(n), slice)) if n > 0 => {
            *buf = slice.into_inner();
            Some(true)
        }
        Either::Left(_) | Either::Right(Woken::Stopped) => None,
        // The buffer went down with the dropped read; the scratch is renewed when given back.
        Either::Right(Woken::Expired) => Some(false),
    }
}

/// `hot_read` on io_uring: at the end of the window the posted read is cancelled and then
/// awaited, so bytes that arrived just before the cancellation are kept, never lost.
async fn hot_read_cancelable(
    w: &Worker,
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
    cancel: &mut monoio::io::Canceller,
) -> Option<bool> {
    use monoio::io::CancelableAsyncReadRent;
    let (len, cap) = (buf.len(), buf.capacity());
    let mut read =
        pin!(s.cancelable_read(std::mem::take(buf).slice_mut(len..cap), cancel.handle()));
    let window = w.stop.wait_for(HOT_WINDOW);
    let (res, slice) = match race(read.as_mut(), pin!(window)).await {
        Either::Left(done) => done,
        Either::Right(woken) => {
            // `cancel` consumes the canceller and hands back a fresh one for the next request.
            *cancel = std::mem::take(cancel).cancel();
            let (res, slice) = read.await;
            *buf = slice.into_inner();
            return match res {
                Ok(n) if n > 0 => Some(true),
                Ok(_) => None,
                Err(_) if matches!(woken, Woken::Stopped) => None,
                // Cancelled: no byte was taken from the socket.
                Err(_) => Some(false),
            };
        }
    };
    *buf = slice.into_inner();
    match res {
        Ok(n) if n > 0 => Some(true),
        _ => None,
    }
}

/// Connections per worker that may stay hot at once; beyond it they go idle without a buffer
/// at once, so many idle connections never hold many buffers.
const HOT_MAX: usize = 64;

/// How long a hot connection waits for its next request before giving its buffer back (the
/// deadline is checked on the worker's tick, so this is 100–200 ms).
const HOT_WINDOW: Duration = Duration::from_millis(100);

/// What the connection does after a request.
enum Next {
    Keep,
    /// Close, lingering first (the client may still be sending).
    Close,
    /// Close at once: the client asked for it and has nothing more to send.
    CloseNow,
}

struct Hot<'a>(&'a Worker);

impl<'a> Hot<'a> {
    fn new(w: &'a Worker) -> Self {
        w.hot.set(w.hot.get() + 1);
        Hot(w)
    }
}

impl Drop for Hot<'_> {
    fn drop(&mut self) {
        self.0.hot.set(self.0.hot.get() - 1);
    }
}

/// Close after sending FIN, reading (and dropping) what the client still sends for a moment:
/// closing a socket with unread input makes the kernel send a reset, which can destroy the
/// last response before the client has read it.
async fn linger_close(w: &Worker, mut s: TcpStream) {
    if monoio::io::AsyncWriteRent::shutdown(&mut s).await.is_err() {
        return;
    }
    let mut buf = Vec::with_capacity(4096);
    let limit = Limit::new(&w.stop, Duration::from_secs(2));
    loop {
        buf.clear();
        if read_more(&mut s, &mut buf, 4096, limit).await.is_err() {
            return;
        }
    }
}

/// Read, route and answer one request. Returns true when the connection stays open.
async fn one_request(
    w: &Rc<Worker>,
    stream: &mut Option<TcpStream>,
    sc: &mut Scratch,
    peer: Option<SocketAddr>,
    served: u32,
) -> Next {
    let Some(peer) = peer.or_else(|| stream.as_ref().and_then(|s| s.peer_addr().ok())) else {
        return Next::Close;
    };
    let p = w.pipeline();
    let p: &Pipeline = &p;
    let policy = p.client;
    if sc.buf.is_empty() {
        // The first bytes of a request: until they arrive the connection is idle, not in
        // flight, so a stop closes it at once.
        let Some(s) = stream.as_mut() else {
            return Next::Close;
        };
        let limit = Limit::new(&w.stop, policy.request_wait(served));
        let read = read_more(s, &mut sc.buf, 1024, limit);
        match race(pin!(read), pin!(w.stop.wait())).await {
            Either::Left(Ok(_)) => {}
            _ => return Next::Close,
        }
    }
    let _busy = InFlight::new(w);
    let started = Instant::now();
    let limit = Limit::new(&w.stop, policy.header_timeout);
    // Phase: request head.
    loop {
        if !sc.buf.is_empty() {
            match bext_http1::parse_request(&sc.buf, &policy.limits, &mut sc.head) {
                Ok(Parse::Complete) => break,
                Ok(Parse::Partial) => {
                    if sc.buf.len() > policy.limits.max_head + policy.limits.max_target {
                        return early_error(
                            w,
                            stream,
                            sc,
                            peer,
                            ErrorClass::HeadersTooLarge,
                            started,
                        )
                        .await;
                    }
                }
                Err(e) => {
                    let class = ErrorClass::from_codec(&e);
                    return early_error(w, stream, sc, peer, class, started).await;
                }
            }
        }
        let Some(s) = stream.as_mut() else {
            return Next::Close;
        };
        let partial = !sc.buf.is_empty();
        match read_more(s, &mut sc.buf, 2048, limit).await {
            Ok(_) => {}
            Err(IoFail::Timeout) if partial => {
                return early_error(w, stream, sc, peer, ErrorClass::RequestTimeout, started).await;
            }
            Err(_) => return Next::Close,
        }
    }
    w.shared.stats[w.id]
        .requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);

    let Scratch {
        buf,
        head,
        rhead,
        rid,
        note,
        stages,
        ..
    } = sc;
    stages.reset();
    // Request id: keep a valid one from a trusted proxy, generate one otherwise.
    let trusted = p.trusted.contains(peer.ip());
    match Headers::from_request(buf, head).get(b"x-request-id") {
        Some(v) if trusted && valid_request_id(v) => {
            rid.clear();
            rid.extend_from_slice(v);
        }
        _ => w.next_request_id(rid),
    }
    let logging = w.log.borrow().is_some() || p.stage_phases.contains(Phases::LOG);
    let note_ranges = if logging {
        Some(take_note(note, buf, head))
    } else {
        None
    };
    let framing = head.framing.unwrap_or(Framing::None);
    let client_keep = head.keep_alive;
    let mut ctx = Ctx {
        w,
        stream,
        head,
        rhead,
        pos: head.head_len,
        peer,
        policy,
        framing,
        http10: head.version == Some(Version::Http10),
        is_head: head.method == Some(Method::Head),
        // The connection's last request under `keepalive_requests` is answered with
        // `Connection: close`.
        keep_wanted: client_keep
            && !w.stop.is_stopped()
            && u64::from(served) + 1 < policy.keepalive_requests,
        rid,
        trusted,
        path: None,
        ex: stages,
        route: None,
        buf,
    };
    let outcome = dispatch(&mut ctx, p).await;
    let route = ctx.route;
    let consumed = ctx.pos.min(ctx.buf.len());
    let keep = outcome.keep && ctx.keep_wanted && ctx.stream.is_some();
    // The client said this was its last request (`Connection: close`, or HTTP/1.0 without
    // keep-alive), the request had no body (none can be left unread) and no byte beyond it
    // was received: the client has nothing more to send.
    let client_done = !client_keep && !ctx.has_body() && consumed == ctx.buf.len();
    ctx.buf.drain(..consumed);
    if let Some(r) = note_ranges {
        let n = &note[..];
        let entry = LogEntry {
            client: peer,
            method: &n[r.method.clone()],
            target: &n[r.target.clone()],
            http10: r.http10,
            host: &n[r.host.clone()],
            status: outcome.status,
            bytes_sent: outcome.bytes,
            duration_us: started.elapsed().as_micros() as u64,
            request_id: std::str::from_utf8(rid).unwrap_or("-"),
            upstream: outcome.upstream,
            error: outcome.error,
            referer: r.referer.clone().map(|x| &n[x]),
            user_agent: r.ua.clone().map(|x| &n[x]),
        };
        if let Some(log) = w.log.borrow_mut().as_mut() {
            log.record(&entry, w.now_secs());
        }
        // Phase "log": the route's stages see the same entry.
        if let Some(r) = route.and_then(|r| p.routes.get(r)) {
            stages.log(&r.stages, &entry);
        }
    }
    stages.reset();
    if keep {
        Next::Keep
    } else if client_done {
        Next::CloseNow
    } else {
        Next::Close
    }
}

struct NoteRanges {
    method: std::ops::Range<usize>,
    target: std::ops::Range<usize>,
    host: std::ops::Range<usize>,
    referer: Option<std::ops::Range<usize>>,
    ua: Option<std::ops::Range<usize>>,
    http10: bool,
}

fn take_note(note: &mut Vec<u8>, buf: &[u8], head: &bext_http1::RequestHead) -> NoteRanges {
    note.clear();
    let mut put = |v: &[u8]| {
        let s = note.len();
        note.extend_from_slice(v);
        s..note.len()
    };
    let h = Headers::from_request(buf, head);
    NoteRanges {
        method: put(head.method_span.get(buf)),
        target: put(head.target.get(buf)),
        host: put(head.host.map_or(&b""[..], |s| s.get(buf))),
        referer: h.get(b"referer").map(&mut put),
        ua: h.get(b"user-agent").map(&mut put),
        http10: head.version == Some(Version::Http10),
    }
}

/// Answer a request that could not be parsed, then close.
async fn early_error(
    w: &Rc<Worker>,
    stream: &mut Option<TcpStream>,
    sc: &mut Scratch,
    peer: SocketAddr,
    class: ErrorClass,
    started: Instant,
) -> Next {
    w.next_request_id(&mut sc.rid);
    let rid = std::str::from_utf8(&sc.rid).unwrap_or("");
    let body = class.problem_json(rid);
    let mut out = std::mem::take(&mut sc.note);
    out.clear();
    problem_head(w, &mut out, class.status(), body.len(), true, false);
    out.extend_from_slice(body.as_bytes());
    if let Some(s) = stream.as_mut() {
        let _ = write_all(s, &mut out, Limit::new(&w.stop, Duration::from_secs(5))).await;
    }
    out.clear();
    sc.note = out;
    sc.buf.clear();
    if let Some(log) = w.log.borrow_mut().as_mut() {
        log.record(
            &LogEntry {
                client: peer,
                method: b"-",
                target: b"-",
                http10: false,
                host: b"",
                status: class.status(),
                bytes_sent: body.len() as u64,
                duration_us: started.elapsed().as_micros() as u64,
                request_id: rid,
                upstream: None,
                error: Some(class.slug()),
                referer: None,
                user_agent: None,
            },
            w.now_secs(),
        );
    }
    Next::Close
}

fn problem_head(w: &Worker, out: &mut Vec<u8>, status: u16, len: usize, close: bool, http10: bool) {
    problem_head_with(w, out, status, len, close, http10, b"");
}

/// A problem response head; `extra` holds more fields, serialised (`Name: value\r\n` each).
fn problem_head_with(
    w: &Worker,
    out: &mut Vec<u8>,
    status: u16,
    len: usize,
    close: bool,
    http10: bool,
    extra: &[u8],
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    push_usize(out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(reason(status).as_bytes());
    out.extend_from_slice(b"\r\nServer: bext\r\nContent-Type: application/problem+json\r\n");
    out.extend_from_slice(extra);
    content_length_field(out, len as u64);
    w.with_date_line(|d| out.extend_from_slice(d));
    connection_field(out, close, http10);
    out.extend_from_slice(b"\r\n");
}

/// Send a problem response for a parsed request. The connection stays open only when the
/// class allows it and the request body was already consumed (or there is none).
pub(crate) async fn send_problem(
    ctx: &mut Ctx<'_>,
    status: u16,
    slug: &'static str,
    title: &str,
    force_close: bool,
) -> Outcome {
    send_problem_with(ctx, status, slug, title, force_close, b"").await
}

/// `send_problem` with more fields (`Retry-After`, `Allow`, `Content-Range`), serialised.
pub(crate) async fn send_problem_with(
    ctx: &mut Ctx<'_>,
    status: u16,
    slug: &'static str,
    title: &str,
    force_close: bool,
    extra: &[u8],
) -> Outcome {
    let rid = std::str::from_utf8(ctx.rid).unwrap_or("");
    let body = problem_body(slug, title, status, rid);
    let close = force_close || !ctx.keep_wanted;
    let mut out = ctx.w.take_xfer();
    problem_head_with(
        ctx.w,
        &mut out,
        status,
        body.len(),
        close,
        ctx.http10,
        extra,
    );
    if !ctx.is_head {
        out.extend_from_slice(body.as_bytes());
    }
    let t = ctx.send_timeout();
    let ok = match ctx.client() {
        Some(s) => write_all(s, &mut out, t).await.is_ok(),
        None => false,
    };
    ctx.w.give_xfer(out);
    Outcome {
        status,
        bytes: if ctx.is_head { 0 } else { body.len() as u64 },
        keep: ok && !close,
        error: Some(slug),
        upstream: None,
    }
}

pub(crate) async fn send_class(
    ctx: &mut Ctx<'_>,
    class: ErrorClass,
    body_pending: bool,
) -> Outcome {
    let close = class.closes_connection() || body_pending;
    send_problem(ctx, class.status(), class.slug(), class.title(), close).await
}

/// Map a request body failure to what the client sees.
pub(crate) async fn body_failure(ctx: &mut Ctx<'_>, e: BodyErr) -> Outcome {
    match e {
        BodyErr::TooLarge => send_class(ctx, ErrorClass::PayloadTooLarge, true).await,
        BodyErr::Framing => send_class(ctx, ErrorClass::BadRequest, true).await,
        BodyErr::Timeout => send_class(ctx, ErrorClass::RequestTimeout, true).await,
        BodyErr::Closed | BodyErr::Io(_) => Outcome::closed(400, Some("client-closed")),
    }
}

/// Phases "route", "request filters", then the route's action.
async fn dispatch(ctx: &mut Ctx<'_>, p: &Pipeline) -> Outcome {
    // bext is a reverse proxy, not a forward proxy: CONNECT tunnels are not offered. That is
    // 501 (RFC 9110 §15.6.2: the server does not support the method for any resource), not 405
    // (§15.5.6: a method the target resource refuses, with an Allow field that would have to
    // list methods for an authority-form target, which names no resource of ours).
    // Unlike an unknown transfer coding (the other 501), the request was framed and read
    // whole, so the connection stays usable.
    if ctx.head.method == Some(Method::Connect) {
        let body_pending = ctx.has_body();
        let c = ErrorClass::NotImplemented;
        return send_problem(ctx, c.status(), c.slug(), c.title(), body_pending).await;
    }
    // Route on the path the origin will receive: its normal form (`bext_http1::path`), with
    // the site's options. A path with two readings (`%2F`, `%00`, `..;`) is refused.
    let (opts, normal) = {
        let buf: &[u8] = ctx.buf;
        let head = ctx.head;
        let host = strip_port(head.effective_authority().map_or(&b""[..], |s| s.get(buf)));
        let opts = p.paths.options(|| p.router.site(host));
        let normal = bext_http1::normalize_path(head.path_or_root(buf), &opts)
            .map(|c| matches!(c, std::borrow::Cow::Owned(_)).then(|| c.into_owned()));
        (opts, normal)
    };
    match normal {
        Ok(path) => ctx.path = path,
        Err(_) => {
            let body_pending = ctx.has_body();
            return send_class(ctx, ErrorClass::BadRequest, body_pending).await;
        }
    }
    let (result, flow, location) = {
        let buf: &[u8] = ctx.buf;
        let head = ctx.head;
        let host_full = head.effective_authority().map_or(&b""[..], |s| s.get(buf));
        let path = match &ctx.path {
            Some(p) => &p[..],
            None => head.path_or_root(buf),
        };
        let view = RequestView {
            method: head.method,
            method_bytes: head.method_span.get(buf),
            host: strip_port(host_full),
            path: &bext_http1::route_view(path, &opts),
            query: head.query.map(|q| q.get(buf)),
            headers: Headers::from_request(buf, head),
            client: ctx.peer,
        };
        let result = p.router.route(&view);
        let mut flow = Flow::Continue;
        let mut location = None;
        if let RouteResult::Matched(id) = result {
            let route = &p.routes[id.0 as usize];
            ctx.route = Some(id.0 as usize);
            // Phase "request filters": the route's stages, each with its state for this
            // request.
            if !route.stages.is_empty() {
                ctx.ex.begin(&route.stages);
                flow = ctx.ex.request(&route.stages, &view).await;
            }
            if let Action::Redirect { location: tpl, .. } = &route.action {
                location = Some(render_location(tpl, &view, path));
            }
        }
        (result, flow, location)
    };
    let body_pending = ctx.has_body();
    let id = match result {
        RouteResult::Matched(id) => id,
        RouteResult::NotFound => {
            return send_class(ctx, ErrorClass::RouteNotFound, body_pending).await
        }
        RouteResult::MethodNotAllowed => {
            return send_class(ctx, ErrorClass::MethodNotAllowed, body_pending).await
        }
    };
    if let Flow::Reply(r) = flow {
        if r.slug == ErrorClass::RateLimited.slug() {
            ctx.w.shared.stats[ctx.w.id]
                .rate_limited
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let mut extra = Vec::new();
        if let Some(secs) = r.retry_after {
            extra.extend_from_slice(b"Retry-After: ");
            push_usize(&mut extra, secs.max(1));
            extra.extend_from_slice(b"\r\n");
        }
        return send_problem_with(ctx, r.status, r.slug, r.title, body_pending, &extra).await;
    }
    if let Framing::ContentLength(n) = ctx.framing {
        if n > ctx.policy.body_bytes {
            return send_class(ctx, ErrorClass::PayloadTooLarge, true).await;
        }
    }
    let route: &CompiledRoute = &p.routes[id.0 as usize];
    match &route.action {
        Action::Respond(r) if route.stages.has(Phases::RESPONSE_HEAD) => {
            respond_staged(ctx, r, route).await
        }
        Action::Respond(r) => respond(ctx, r).await,
        Action::Redirect { status, .. } => {
            let location = location.unwrap_or_default();
            redirect(ctx, *status, &location, route).await
        }
        Action::Proxy { upstream } => crate::proxy::proxy(ctx, p, route, *upstream).await,
        Action::Static(files) => crate::handler::static_files::serve(ctx, route, files).await,
    }
}

/// A redirect location; `{path}` is the normal path (with its parameters, as forwarded).
fn render_location(tpl: &[Segment], view: &RequestView<'_>, path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    for seg in tpl {
        match seg {
            Segment::Lit(l) => out.extend_from_slice(l),
            Segment::Path => out.extend_from_slice(path),
            Segment::Query => out.extend_from_slice(view.query.unwrap_or(b"")),
            Segment::Host => out.extend_from_slice(view.host),
        }
    }
    out
}

/// Read and drop the request body (bounded by the body limit).
pub(crate) async fn discard_body(ctx: &mut Ctx<'_>) -> Result<(), BodyErr> {
    if !ctx.has_body() {
        return Ok(());
    }
    let mut reader = BodyReader::new(ctx.framing, ctx.policy.body_bytes);
    let mut sink = ctx.w.take_xfer();
    let steps = ctx.send_steps();
    let res = loop {
        sink.clear();
        let t = steps.step();
        let Some(s) = ctx.stream.as_mut() else {
            break Err(BodyErr::Closed);
        };
        match reader
            .pull(s, ctx.buf, &mut ctx.pos, &mut sink, false, t)
            .await
        {
            Ok(true) => {}
            Ok(false) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    ctx.w.give_xfer(sink);
    res
}

/// `100 Continue`, when the client waits for it before sending its body.
pub(crate) async fn send_continue(ctx: &mut Ctx<'_>) -> bool {
    if !(ctx.head.expect_continue && ctx.has_body()) || ctx.pos < ctx.buf.len() {
        return true;
    }
    let t = ctx.send_timeout();
    match ctx.client() {
        Some(s) => write_static(s, b"HTTP/1.1 100 Continue\r\n\r\n", t)
            .await
            .is_ok(),
        None => false,
    }
}

/// A repeating pattern that generated bodies are cut from.
static PATTERN: [u8; 16 * 1024] = {
    let mut p = [0u8; 16 * 1024];
    let mut i = 0;
    while i < p.len() {
        p[i] = b"abcdefghijklmnopqrstuvwxyz0123456789\n"[i % 37];
        i += 1;
    }
    p
};

async fn respond(ctx: &mut Ctx<'_>, r: &Respond) -> Outcome {
    if r.echo && ctx.has_body() && !ctx.is_head {
        return echo(ctx, r).await;
    }
    // The client waits for 100 before sending its body: answer at once and close instead of
    // inviting a body that would be thrown away.
    let mut close = !ctx.keep_wanted;
    if ctx.head.expect_continue && ctx.has_body() && ctx.pos >= ctx.buf.len() {
        close = true;
    } else if let Err(e) = discard_body(ctx).await {
        return body_failure(ctx, e).await;
    }
    let mut out = ctx.w.take_xfer();
    out.extend_from_slice(&r.head);
    if r.status >= 200 && r.status != 204 && r.status != 304 {
        content_length_field(&mut out, r.body.len());
    }
    ctx.w.with_date_line(|d| out.extend_from_slice(d));
    connection_field(&mut out, close, ctx.http10);
    out.extend_from_slice(b"\r\n");
    let with_body = !ctx.is_head && r.status >= 200 && r.status != 204 && r.status != 304;
    if with_body {
        if let RespondBody::Fixed(b) = &r.body {
            out.extend_from_slice(b);
        }
    }
    let steps = ctx.send_steps();
    let Some(s) = ctx.stream.as_mut() else {
        return Outcome::closed(r.status, None);
    };
    let mut ok = write_all(s, &mut out, steps.step()).await.is_ok();
    ctx.w.give_xfer(out);
    if let (true, true, RespondBody::Generated { len }) = (ok, with_body, &r.body) {
        let mut left = *len;
        while left > 0 && ok {
            let n = left.min(PATTERN.len() as u64) as usize;
            // A fresh deadline for each piece: the timeout bounds a stalled reader, not the
            // whole (possibly large) body.
            ok = write_static(s, &PATTERN[..n], steps.step()).await.is_ok();
            left -= n as u64;
        }
    }
    Outcome {
        status: r.status,
        bytes: if with_body { r.body.len() } else { 0 },
        keep: ok && !close,
        error: None,
        upstream: None,
    }
}

/// `respond` on a route whose stages see the response: the head goes through the response
/// head phase and, when a stage changes the body, the body goes through the body filters piece
/// by piece, framed chunked (HTTP/1.1) or by closing the connection (HTTP/1.0), since its
/// length is no longer the one configured.
async fn respond_staged(ctx: &mut Ctx<'_>, r: &Respond, route: &CompiledRoute) -> Outcome {
    if r.echo && ctx.has_body() && !ctx.is_head {
        return echo(ctx, r).await;
    }
    let mut close = !ctx.keep_wanted;
    if ctx.head.expect_continue && ctx.has_body() && ctx.pos >= ctx.buf.len() {
        close = true;
    } else if let Err(e) = discard_body(ctx).await {
        return body_failure(ctx, e).await;
    }
    let bodied = r.status >= 200 && r.status != 204 && r.status != 304;
    let fields = Headers::new(&r.head, &r.fields);
    let filtering = ctx.ex.response_head(&route.stages, r.status, fields) && bodied;
    let chunked = filtering && !ctx.http10;
    close |= filtering && ctx.http10;
    let mut out = ctx.w.take_xfer();
    let line_end = r
        .head
        .windows(2)
        .position(|w| w == b"\r\n")
        .map_or(r.head.len(), |i| i + 2);
    out.extend_from_slice(&r.head[..line_end]);
    for (name, value) in fields.iter() {
        if ctx.ex.edits.removes(name) {
            continue;
        }
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(ctx.ex.edits.added_lines());
    if bodied {
        if chunked {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
        } else if !filtering {
            content_length_field(&mut out, r.body.len());
        }
    }
    ctx.w.with_date_line(|d| out.extend_from_slice(d));
    connection_field(&mut out, close, ctx.http10);
    out.extend_from_slice(b"\r\n");
    let with_body = !ctx.is_head && bodied;
    let steps = ctx.send_steps();
    let (mut filtered, mut tmp) = (ctx.w.take_xfer(), ctx.w.take_xfer());
    let mut ok = true;
    let mut bytes = 0u64;
    if let Some(s) = ctx.stream.as_mut() {
        let (fixed, mut left): (&[u8], u64) = match &r.body {
            RespondBody::Fixed(b) => (b, b.len() as u64),
            RespondBody::Generated { len } => (&[], *len),
        };
        let mut first = true;
        while with_body && ok && (first || left > 0) {
            let piece: &[u8] = match &r.body {
                RespondBody::Fixed(_) => fixed,
                RespondBody::Generated { .. } => {
                    &PATTERN[..left.min(PATTERN.len() as u64) as usize]
                }
            };
            left -= piece.len() as u64;
            first = false;
            let last = left == 0;
            if filtering {
                if ctx
                    .ex
                    .body(&route.stages, piece, last, &mut filtered, &mut tmp)
                    .is_err()
                {
                    ok = false;
                    break;
                }
                if !filtered.is_empty() {
                    if chunked {
                        bext_http1::write_chunk_header(&mut out, filtered.len());
                    }
                    out.extend_from_slice(&filtered);
                    if chunked {
                        out.extend_from_slice(b"\r\n");
                    }
                    bytes += filtered.len() as u64;
                }
                if last && chunked {
                    out.extend_from_slice(bext_http1::LAST_CHUNK);
                }
            } else {
                out.extend_from_slice(piece);
                bytes += piece.len() as u64;
            }
            // A fresh deadline for each piece: the timeout bounds a stalled reader.
            ok = write_all(s, &mut out, steps.step()).await.is_ok();
            out.clear();
        }
        if !out.is_empty() && ok {
            ok = write_all(s, &mut out, steps.step()).await.is_ok();
        }
    } else {
        ok = false;
    }
    ctx.w.give_xfer(out);
    ctx.w.give_xfer(filtered);
    ctx.w.give_xfer(tmp);
    Outcome {
        status: r.status,
        bytes,
        keep: ok && !close,
        error: None,
        upstream: None,
    }
}

/// The built-in origin: send the request body back with the same framing.
async fn echo(ctx: &mut Ctx<'_>, r: &Respond) -> Outcome {
    if !send_continue(ctx).await {
        return Outcome::closed(r.status, Some("client-closed"));
    }
    let chunked = matches!(ctx.framing, Framing::Chunked);
    let close = !ctx.keep_wanted;
    let mut out = ctx.w.take_xfer();
    out.extend_from_slice(&r.head);
    match ctx.framing {
        Framing::ContentLength(n) => content_length_field(&mut out, n),
        _ => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
    }
    ctx.w.with_date_line(|d| out.extend_from_slice(d));
    connection_field(&mut out, close, ctx.http10);
    out.extend_from_slice(b"\r\n");
    let mut reader = BodyReader::new(ctx.framing, ctx.policy.body_bytes);
    let mut head_sent = false;
    let steps = ctx.send_steps();
    let result = loop {
        // A fresh deadline for each step: the timeout bounds a pause, not the whole body.
        let t = steps.step();
        let Some(s) = ctx.stream.as_mut() else {
            break Err(None);
        };
        let more = match reader
            .pull(s, ctx.buf, &mut ctx.pos, &mut out, chunked, t)
            .await
        {
            Ok(m) => m,
            Err(e) => break Err(Some(e)),
        };
        if !more && chunked {
            out.extend_from_slice(bext_http1::LAST_CHUNK);
        }
        if write_all(s, &mut out, t).await.is_err() {
            break Err(None);
        }
        out.clear();
        head_sent = true;
        if !more {
            break Ok(());
        }
    };
    ctx.w.give_xfer(out);
    match result {
        Ok(()) => Outcome {
            status: r.status,
            bytes: reader.total(),
            keep: !close,
            error: None,
            upstream: None,
        },
        Err(Some(e)) if !head_sent => body_failure(ctx, e).await,
        Err(_) => Outcome::closed(r.status, Some("client-closed")),
    }
}

async fn redirect(
    ctx: &mut Ctx<'_>,
    status: u16,
    location: &[u8],
    route: &CompiledRoute,
) -> Outcome {
    if let Err(e) = discard_body(ctx).await {
        return body_failure(ctx, e).await;
    }
    let close = !ctx.keep_wanted;
    let mut out = ctx.w.take_xfer();
    out.extend_from_slice(b"HTTP/1.1 ");
    push_usize(&mut out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(reason(status).as_bytes());
    out.extend_from_slice(b"\r\nServer: bext\r\nLocation: ");
    out.extend_from_slice(location);
    out.extend_from_slice(b"\r\nContent-Length: 0\r\n");
    for (n, v) in &route.response_headers.add {
        out.extend_from_slice(n);
        out.extend_from_slice(b": ");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    }
    ctx.w.with_date_line(|d| out.extend_from_slice(d));
    connection_field(&mut out, close, ctx.http10);
    out.extend_from_slice(b"\r\n");
    let t = ctx.send_timeout();
    let ok = match ctx.stream.as_mut() {
        Some(s) => write_all(s, &mut out, t).await.is_ok(),
        None => false,
    };
    ctx.w.give_xfer(out);
    Outcome {
        status,
        bytes: 0,
        keep: ok && !close,
        error: None,
        upstream: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_stripped_from_hosts() {
        let table: &[(&[u8], &[u8])] = &[
            (b"example.com", b"example.com"),
            (b"example.com:8080", b"example.com"),
            (b"[::1]:8080", b"[::1]"),
            (b"[::1]", b"[::1]"),
            (b"a:b", b"a:b"),
            (b"", b""),
        ];
        for (input, want) in table {
            assert_eq!(strip_port(input), *want);
        }
    }

    #[test]
    fn request_ids_from_clients_are_checked() {
        let table: &[(&[u8], bool)] = &[
            (b"abc-123_x.y:z", true),
            (b"", false),
            (b"has space", false),
            (b"quote\"", false),
            (&[b'a'; 128], true),
            (&[b'a'; 129], false),
        ];
        for (v, ok) in table {
            assert_eq!(valid_request_id(v), *ok, "{:?}", String::from_utf8_lossy(v));
        }
    }

    #[test]
    fn decimal_lengths_render_without_allocation_quirks() {
        for n in [0u64, 7, 10, 12345, u64::MAX] {
            let mut out = Vec::new();
            push_usize(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
    }
}
