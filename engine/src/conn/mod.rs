//! A client connection: read a request head, route it, run its action, write the response,
//! and loop for keep-alive and pipelining (one request at a time, so responses leave in order).
//!
//! An idle keep-alive connection holds no buffer: on epoll it waits for readiness with nothing
//! allocated, and its scratch (buffer and parsed head) goes back to the worker's free list.

mod dispatch;
pub(crate) mod reply;
mod request;
mod rewrite;

use request::one_request;

pub(crate) use dispatch::reply as stage_reply;
pub(crate) use reply::{body_failure, send_class, send_problem, send_problem_with};

use crate::body::{BodyErr, BodyReader};
use crate::io::{race, read_more, write_static, Either, Limit, PerStep};
use crate::pipeline::ClientPolicy;
use crate::stage::{Exchange, Flow};
use crate::stop::Woken;
use crate::stream::{ClientStream, Parking};
use crate::worker::{Scratch, Worker};
use bext_http1::Framing;
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
    pub stream: &'a mut Option<ClientStream>,
    pub buf: &'a mut Vec<u8>,
    /// Rebuilt when a request filter rewrites the head (see `rewrite`).
    pub head: &'a mut bext_http1::RequestHead,
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
    /// The request's trace context, when the configuration traces (see [`crate::trace`]).
    pub trace: Option<crate::trace::TraceContext>,
    /// The normal form of the path when it differs from the one sent (set by `dispatch`).
    pub path: Option<Vec<u8>>,
    /// The route's stage states and the response phases' decisions.
    pub ex: &'a mut Exchange,
    /// The request body, read whole and as the request body filters left it, when the
    /// route has such filters (the request's framing is then `None`: nothing is left to read).
    pub body: Option<Vec<u8>>,
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
    pub fn client(&mut self) -> Option<&mut ClientStream> {
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
        stop: crate::stop::StopWait<'a>,
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
    s: &'a ClientStream,
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

pub(super) struct InFlight<'a>(&'a Worker);

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
    serve_conn(ConnCount(w), Some(stream.into()), Some(peer), 0, false)
}

/// Serve a connection accepted on a TLS listener: the handshake first, under the header
/// timeout, then requests as on any connection. A failed handshake is counted and logged with
/// its reason class (see `tls.rs`).
pub(crate) fn serve_tls(
    w: Rc<Worker>,
    stream: TcpStream,
    peer: SocketAddr,
    tls: std::sync::Arc<bext_tls::Listener>,
) -> impl std::future::Future<Output = ()> {
    w.connections.set(w.connections.get() + 1);
    let count = ConnCount(w);
    async move {
        let w = &count.0;
        let limit = Limit::new(&w.stop, w.pipeline().client.header_timeout);
        match crate::tls::handshake(stream, tls, limit).await {
            Ok(s) => {
                Box::pin(serve_conn(
                    count,
                    Some(ClientStream::Tls(s)),
                    Some(peer),
                    0,
                    false,
                ))
                .await
            }
            Err(crate::tls::HandshakeErr::Tls(class)) => report_handshake_failure(peer, class),
            Err(_) => {}
        }
    }
}

static HANDSHAKE_FAILURES: crate::worker::ErrorThrottle = crate::worker::ErrorThrottle::new();

/// At most one line a second for the whole process, with the number left out since.
fn report_handshake_failure(peer: SocketAddr, class: &str) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_secs().max(1));
    match HANDSHAKE_FAILURES.admit(now) {
        Some(0) => eprintln!("bext: TLS handshake with {peer} failed: {class}"),
        Some(n) => eprintln!(
            "bext: TLS handshake with {peer} failed: {class} ({n} more failed handshakes since the last report)"
        ),
        None => {}
    }
}

/// Serve the one request of an HTTP/3 request stream (see `h3/pipe.rs`): the same request
/// path as a TCP connection's, without the connection loop (a stream carries one request).
pub(crate) async fn serve_quic(w: Rc<Worker>, stream: crate::h3::QuicStream, peer: SocketAddr) {
    let mut stream = Some(ClientStream::Quic(stream));
    let mut sc = w.take_scratch();
    let _ = one_request(&w, &mut stream, &mut sc, Some(peer), 0).await;
    w.give_scratch(sc);
}

/// Serve a parked connection that became readable, `served` requests into its life (its
/// socket options are already set; its peer address is asked for when its next request
/// needs it).
pub(crate) fn resume(
    w: Rc<Worker>,
    stream: ClientStream,
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
    mut stream: Option<ClientStream>,
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
                match (s.parking(), s) {
                    (Parking::Descriptor, s) => match s.into_tcp() {
                        Ok(tcp) => match w.parked.park(w, tcp, limit, served) {
                            Some(tcp) => stream = Some(tcp.into()),
                            None => return,
                        },
                        Err(s) => stream = Some(s),
                    },
                    (Parking::Session, ClientStream::Tls(t)) => {
                        match w.parked.park_tls(w, t, limit, served) {
                            Some(t) => stream = Some(ClientStream::Tls(t)),
                            None => return,
                        }
                    }
                    (_, s) => stream = Some(s),
                }
            }
            // Parking unavailable: wait for readiness holding no buffer at all. Not "relaxed":
            // the readiness left over from the last read is confirmed with a zero-timeout poll,
            // or a stale one would make the connection take a buffer and wait with it.
            // (On io_uring the request's read, with its buffer, is the wait.)
            // A TLS session waits for readiness on either driver, so that no read (and no
            // buffer) is posted while it is idle.
            let Some(s) = stream.as_ref() else { break };
            let in_task = !matches!(s.parking(), Parking::Descriptor);
            if (w.readiness_idle || in_task) && !idle_wait(w, s, limit).await {
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
    s: &mut ClientStream,
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
    s: &mut ClientStream,
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
pub(super) enum Next {
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
async fn linger_close(w: &Worker, mut s: ClientStream) {
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

/// The request body filters a body is read through: the route's stages, and two scratch
/// buffers ([`Exchange::request_body`]).
pub(crate) struct BodyFilter<'f> {
    pub stages: &'f crate::stage::Stages,
    pub a: &'f mut Vec<u8>,
    pub b: &'f mut Vec<u8>,
}

/// What becomes of the pieces of a body read to its end.
enum Take<'b, 'f> {
    /// Appended to the buffer as they are.
    Append(&'b mut Vec<u8>),
    /// Through the filter, which appends to the buffer what the handler gets.
    Filter(&'b mut Vec<u8>, BodyFilter<'f>),
    /// Dropped.
    Drop,
}

/// Read the request body (decoded, within the body limit) to its end, keeping the head. The
/// body is decoded in a buffer of its own: the reader may drop consumed bytes from the front
/// of its buffer, and the connection buffer still holds the head that handlers answer from
/// (a file's path and fields, a redirect's location, the proxy's upstream request). What
/// follows the body (a pipelined request) goes back after the head. A filter's answer stops
/// the read (the connection then closes after the answer if the body was not read to its end).
async fn pull_whole_body(ctx: &mut Ctx<'_>, mut take: Take<'_, '_>) -> Result<Flow, BodyErr> {
    let steps = ctx.send_steps();
    let mut reader = BodyReader::new(ctx.framing, ctx.policy.body_bytes);
    let mut rest = ctx.buf[ctx.pos..].to_vec();
    let mut at = 0;
    // Pieces that are not appended as they are are decoded apart.
    let mut piece = match take {
        Take::Append(_) => Vec::new(),
        _ => ctx.w.take_xfer(),
    };
    let res = loop {
        let Some(client) = ctx.stream.as_mut() else {
            break Err(BodyErr::Closed);
        };
        let out = match &mut take {
            Take::Append(body) => &mut **body,
            _ => {
                piece.clear();
                &mut piece
            }
        };
        let more = match reader
            .pull(client, &mut rest, &mut at, out, false, steps.step())
            .await
        {
            Ok(more) => more,
            Err(e) => break Err(e),
        };
        if let Take::Filter(body, f) = &mut take {
            let flow = (ctx.ex)
                .request_body(f.stages, &piece, !more, body, f.a, f.b)
                .await;
            if let Flow::Reply(r) = flow {
                // What is left of the body is not read.
                if !reader.is_done() {
                    ctx.keep_wanted = false;
                }
                break Ok(Flow::Reply(r));
            }
        }
        if !more {
            break Ok(Flow::Continue);
        }
    };
    if !matches!(take, Take::Append(_)) {
        ctx.w.give_xfer(piece);
    }
    ctx.buf.truncate(ctx.pos);
    ctx.buf.extend_from_slice(&rest[at.min(rest.len())..]);
    res
}

/// Read the whole request body into `body` (through `filter` when there is one), after
/// `100 Continue` if the client waits for it. A failure has been answered already (413, 400,
/// 408) and is returned as the outcome.
pub(crate) async fn read_whole_body(
    ctx: &mut Ctx<'_>,
    body: &mut Vec<u8>,
    filter: Option<BodyFilter<'_>>,
) -> Result<Flow, Outcome> {
    if !send_continue(ctx).await {
        return Err(Outcome::closed(400, Some("client-closed")));
    }
    let take = match filter {
        Some(f) => Take::Filter(body, f),
        None => Take::Append(body),
    };
    match pull_whole_body(ctx, take).await {
        Ok(flow) => Ok(flow),
        Err(e) => Err(body_failure(ctx, e).await),
    }
}

/// Read and drop the request body (bounded by the body limit), keeping the head. An HTTP/3
/// request's is left unread instead: its stream carries nothing after it, and once the
/// response is complete the bridge asks the client to stop sending (`h3/bridge.rs`).
pub(crate) async fn discard_body(ctx: &mut Ctx<'_>) -> Result<(), BodyErr> {
    if !ctx.has_body() || matches!(ctx.stream, Some(ClientStream::Quic(_))) {
        return Ok(());
    }
    pull_whole_body(ctx, Take::Drop).await.map(|_| ())
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
}
