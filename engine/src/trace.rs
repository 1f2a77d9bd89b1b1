//! Distributed tracing: W3C Trace Context (`traceparent`, `tracestate`) accepted or started,
//! propagated upstream, and spans exported to an OTLP/HTTP collector.
//!
//! Each request on a traced configuration gets a [`TraceContext`]: the trace it belongs to (the
//! one its `traceparent` names, when that field is valid and the parent policy accepts it, or a
//! new one whose id is the request id), a span id of bext's own, and a sampling decision (the
//! parent's flag, or the configured share of trace ids). The proxy sends `traceparent` with
//! bext's span as the parent, and the client's `tracestate` only when its trace was continued.
//! Without a `tracing` block nothing here runs: no field is looked up, no clock read.
//!
//! Export is off the request path: a sampled request's span is encoded (OTLP JSON) into its
//! core's queue when the request ends, and a task per core sends the queue in one POST at
//! least every `interval`, sooner when a quarter of the queue is waiting. The queue is bounded;
//! a span that does not fit is dropped and counted, as is every span of a batch the collector
//! refused or did not answer. Nothing is retried: a collector that is down costs each core one
//! connection attempt per interval.

use crate::io::{race, read_more, write_all, Limit};
use crate::log::json_escaped;
use crate::worker::Worker;
use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::Duration;

/// A configuration's tracing, compiled.
#[derive(Debug, Clone)]
pub struct Tracing {
    /// New traces whose id's last eight bytes, as a number, are below this are sampled
    /// (`u64::MAX`: all of them).
    threshold: u64,
    pub parent: bext_ir::TraceParent,
    pub otlp: Option<Arc<Otlp>>,
}

#[derive(Debug)]
pub struct Otlp {
    pub addr: SocketAddr,
    /// `Host` of the POSTs.
    pub authority: String,
    pub path: String,
    pub queue: usize,
    pub interval: Duration,
    /// The OTLP JSON document up to the spans' array: resource (service name, host, pid) and
    /// scope.
    prefix: Vec<u8>,
}

impl Tracing {
    pub fn compile(t: &bext_ir::Tracing) -> Result<Tracing, String> {
        let threshold = if t.sample_ppm >= bext_ir::Tracing::ALL {
            u64::MAX
        } else {
            ((u128::from(t.sample_ppm) << 64) / u128::from(bext_ir::Tracing::ALL)) as u64
        };
        let otlp = match &t.otlp {
            None => None,
            Some(o) => {
                use std::net::ToSocketAddrs;
                let addr = (o.authority.to_socket_addrs().ok())
                    .and_then(|mut a| a.next())
                    .ok_or_else(|| format!("OTLP endpoint `{}` does not resolve", o.authority))?;
                let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .map(|h| h.trim().to_string())
                    .unwrap_or_default();
                let mut prefix = b"{\"resourceSpans\":[{\"resource\":{\"attributes\":[".to_vec();
                put_attr_str(&mut prefix, "service.name", t.service.as_bytes());
                prefix.push(b',');
                put_attr_str(&mut prefix, "host.name", host.as_bytes());
                prefix.push(b',');
                put_attr_int(&mut prefix, "process.pid", u64::from(std::process::id()));
                prefix.extend_from_slice(
                    b"]},\"scopeSpans\":[{\"scope\":{\"name\":\"bext\",\"version\":\"",
                );
                prefix.extend_from_slice(env!("CARGO_PKG_VERSION").as_bytes());
                prefix.extend_from_slice(b"\"},\"spans\":[");
                Some(Arc::new(Otlp {
                    addr,
                    authority: o.authority.clone(),
                    path: o.path.clone(),
                    queue: o.queue as usize,
                    interval: Duration::from_millis(o.interval_ms),
                    prefix,
                }))
            }
        };
        Ok(Tracing {
            threshold,
            parent: t.parent,
            otlp,
        })
    }

    /// Whether a new trace with this id is sampled.
    fn samples(&self, trace_id: &[u8; 16]) -> bool {
        let mut low = [0u8; 8];
        low.copy_from_slice(&trace_id[8..]);
        self.threshold == u64::MAX || u64::from_be_bytes(low) < self.threshold
    }
}

/// One request's place in a trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    /// bext's span for this request: the parent of what it sends upstream.
    pub span_id: u64,
    /// The span of the client's `traceparent`, when the trace was continued.
    pub parent_id: Option<u64>,
    pub sampled: bool,
}

impl TraceContext {
    /// The context of a request: continue the trace of its `traceparent` when that field is
    /// valid and `accept` (the parent policy allows this peer), else start one whose id is
    /// the request id bext made (`rid`, its 16 bytes) or, when the request id came from a
    /// trusted proxy, `fresh`.
    pub fn of_request(
        t: &Tracing,
        headers: crate::stage::Headers<'_>,
        accept: bool,
        rid: Option<[u8; 16]>,
        span_id: u64,
        fresh: impl FnOnce() -> [u8; 16],
    ) -> TraceContext {
        if accept {
            if let Some(p) = single(headers, b"traceparent").and_then(parse_traceparent) {
                return TraceContext {
                    trace_id: p.trace_id,
                    span_id,
                    parent_id: Some(p.parent_id),
                    sampled: p.flags & 1 == 1,
                };
            }
        }
        let trace_id = match rid {
            Some(id) if id != [0; 16] => id,
            _ => fresh(),
        };
        TraceContext {
            trace_id,
            span_id,
            parent_id: None,
            sampled: t.samples(&trace_id),
        }
    }

    /// The client's `tracestate` goes upstream only with the trace it belongs to.
    pub fn continued(&self) -> bool {
        self.parent_id.is_some()
    }

    /// `traceparent` as sent upstream: this trace, bext's span as the parent.
    pub fn traceparent(&self) -> [u8; 55] {
        let mut out = [0u8; 55];
        out[..3].copy_from_slice(b"00-");
        hex_into(&mut out[3..35], &self.trace_id);
        out[35] = b'-';
        hex_into(&mut out[36..52], &self.span_id.to_be_bytes());
        out[52] = b'-';
        out[53] = b'0';
        out[54] = if self.sampled { b'1' } else { b'0' };
        out
    }

    pub fn trace_hex(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        hex_into(&mut out, &self.trace_id);
        out
    }

    pub fn span_hex(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        hex_into(&mut out, &self.span_id.to_be_bytes());
        out
    }
}

/// A field's value when the request holds it exactly once.
fn single<'a>(headers: crate::stage::Headers<'a>, name: &[u8]) -> Option<&'a [u8]> {
    let mut found = None;
    for (n, v) in headers.iter() {
        if bext_http1::name_eq(n, name) {
            if found.is_some() {
                return None;
            }
            found = Some(v);
        }
    }
    found
}

#[derive(Debug, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: [u8; 16],
    pub parent_id: u64,
    pub flags: u8,
}

/// A `traceparent` value (W3C Trace Context, §3.2): version 00 exactly as specified; a later
/// version is read for its first four fields when what follows them starts with `-`; version
/// ff, upper-case hex, and all-zero ids are invalid.
pub fn parse_traceparent(v: &[u8]) -> Option<TraceParent> {
    if v.len() < 55 || v[2] != b'-' || v[35] != b'-' || v[52] != b'-' {
        return None;
    }
    let version = unhex::<1>(&v[..2])?[0];
    match version {
        0xff => return None,
        0 if v.len() != 55 => return None,
        _ if v.len() > 55 && v[55] != b'-' => return None,
        _ => {}
    }
    let trace_id = unhex::<16>(&v[3..35])?;
    let parent_id = u64::from_be_bytes(unhex::<8>(&v[36..52])?);
    let flags = unhex::<1>(&v[53..55])?[0];
    if trace_id == [0; 16] || parent_id == 0 {
        return None;
    }
    Some(TraceParent {
        trace_id,
        parent_id,
        flags,
    })
}

/// Lower-case hex digits into `N` bytes; anything else (upper case included) is `None`.
fn unhex<const N: usize>(s: &[u8]) -> Option<[u8; N]> {
    if s.len() != 2 * N {
        return None;
    }
    fn digit(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            _ => None,
        }
    }
    let mut out = [0u8; N];
    for (i, pair) in s.chunks_exact(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

/// Lower-case hex of whole 8-byte words (the ids' sizes), eight digits per step.
fn hex_into(out: &mut [u8], bytes: &[u8]) {
    for (o, w) in out.chunks_exact_mut(16).zip(bytes.chunks_exact(8)) {
        let mut word = [0u8; 8];
        word.copy_from_slice(w);
        o.copy_from_slice(&crate::worker::hex16(u64::from_be_bytes(word)));
    }
}

/// What a finished request's span says.
pub struct SpanEnd<'a> {
    pub method: &'a [u8],
    /// The request target as received (the query is left out of the span).
    pub target: &'a [u8],
    pub host: &'a [u8],
    /// The route as written (`GET /api/*`), when one took the request.
    pub route: Option<&'a str>,
    pub status: u16,
    pub client: IpAddr,
    pub upstream: Option<SocketAddr>,
    pub request_id: &'a [u8],
    pub start_unix_ns: u64,
    pub end_unix_ns: u64,
    pub error: Option<&'static str>,
}

/// What closes the document [`Otlp::prefix`] opens.
const SUFFIX: &[u8] = b"]}]}]}";

/// A core's spans waiting to be sent, and its export counters.
#[derive(Default)]
pub struct Spans {
    /// Encoded spans, comma-separated.
    buf: Vec<u8>,
    count: usize,
    exporting: bool,
    waker: Option<Waker>,
    /// Counts since the last tick, published into the shared stats by the worker.
    pub exported: u64,
    pub dropped: u64,
    pub failed: u64,
}

impl Spans {
    /// Queue a span; `false` when the queue is full (the span is counted as dropped).
    fn push(&mut self, otlp: &Otlp, ctx: &TraceContext, s: &SpanEnd<'_>) -> bool {
        if self.count >= otlp.queue {
            self.dropped += 1;
            return false;
        }
        // The queue is the request body being built: the document's opening, then the spans.
        if self.count == 0 {
            self.buf.clear();
            self.buf.extend_from_slice(&otlp.prefix);
        } else {
            self.buf.push(b',');
        }
        encode_span(&mut self.buf, ctx, s);
        self.count += 1;
        if self.count * 4 >= otlp.queue {
            if let Some(w) = self.waker.take() {
                w.wake();
            }
        }
        true
    }

    /// Take the queued spans as a whole OTLP document, and their number.
    fn take(&mut self, spare: Vec<u8>) -> (Vec<u8>, usize) {
        let n = std::mem::take(&mut self.count);
        let mut doc = std::mem::replace(&mut self.buf, spare);
        if n > 0 {
            doc.extend_from_slice(SUFFIX);
        }
        (doc, n)
    }
}

/// A sampled request ended: queue its span on this core, and start the core's exporter if
/// it is not running.
pub fn finish(w: &Rc<Worker>, t: &Tracing, ctx: &TraceContext, s: &SpanEnd<'_>) {
    let Some(otlp) = &t.otlp else {
        return;
    };
    let mut spans = w.spans.borrow_mut();
    if spans.push(otlp, ctx, s) && !spans.exporting {
        spans.exporting = true;
        monoio::spawn(export(w.clone()));
    }
}

/// The unix time in nanoseconds.
pub fn unix_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The core's exporter: send the queue at least every interval, until nothing is queued and
/// the worker stops (or tracing was reloaded away).
async fn export(w: Rc<Worker>) {
    let mut conn: Option<(SocketAddr, monoio::net::TcpStream)> = None;
    let mut spare = Vec::new();
    let mut head = Vec::new();
    let mut resp = Vec::new();
    loop {
        let otlp = w.pipeline().tracing.as_ref().and_then(|t| t.otlp.clone());
        let Some(otlp) = otlp else {
            // Tracing or its export was reloaded away: what was queued has nowhere to go.
            let mut spans = w.spans.borrow_mut();
            let (_, n) = spans.take(Vec::new());
            spans.dropped += n as u64;
            spans.exporting = false;
            return;
        };
        if !w.stop.is_stopped() {
            let full = std::future::poll_fn(|cx| {
                let mut spans = w.spans.borrow_mut();
                if spans.count * 4 >= otlp.queue {
                    Poll::Ready(())
                } else {
                    spans.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            });
            let _ = race(pin!(full), pin!(w.stop.wait_for(otlp.interval))).await;
            w.spans.borrow_mut().waker = None;
        }
        let (mut doc, n) = w.spans.borrow_mut().take(std::mem::take(&mut spare));
        if n > 0 {
            let sent = post(&w, &otlp, &mut conn, &mut head, &mut doc, &mut resp).await;
            let mut s = w.spans.borrow_mut();
            if sent {
                s.exported += n as u64;
            } else {
                s.failed += n as u64;
            }
        }
        spare = doc;
        spare.clear();
        if w.stop.is_stopped() {
            if w.spans.borrow().count == 0 && w.in_flight.get() == 0 {
                w.spans.borrow_mut().exporting = false;
                return;
            }
            monoio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// POST one batch; keeps the connection for the next when the collector allows. True when
/// the collector answered 2xx.
async fn post(
    w: &Worker,
    otlp: &Otlp,
    conn: &mut Option<(SocketAddr, monoio::net::TcpStream)>,
    head: &mut Vec<u8>,
    body: &mut Vec<u8>,
    resp: &mut Vec<u8>,
) -> bool {
    use std::io::Write;
    head.clear();
    let _ = write!(
        head,
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nUser-Agent: bext/{}\r\n\r\n",
        otlp.path,
        otlp.authority,
        body.len(),
        env!("CARGO_PKG_VERSION")
    );
    // A kept connection may have been closed by the collector meanwhile: one more try on a
    // new connection.
    for _ in 0..2 {
        let reused = conn.as_ref().is_some_and(|(a, _)| *a == otlp.addr);
        if !reused {
            let limit = Limit::new(&w.stop, Duration::from_secs(2));
            match limit
                .run(monoio::net::TcpStream::connect_addr(otlp.addr))
                .await
            {
                Some(Ok(s)) => {
                    let _ = s.set_nodelay(true);
                    *conn = Some((otlp.addr, s));
                }
                _ => {
                    *conn = None;
                    return false;
                }
            }
        }
        let Some((_, s)) = conn.as_mut() else {
            return false;
        };
        let limit = Limit::new(&w.stop, Duration::from_secs(5));
        resp.clear();
        // Head and body in two writes: the body (the queue itself) is never copied.
        let answer = async {
            write_all(s, head, limit).await.ok()?;
            write_all(s, body, limit).await.ok()?;
            read_answer(s, resp, limit).await
        };
        match answer.await {
            Some((status, keep)) => {
                if !keep {
                    *conn = None;
                }
                return (200..300).contains(&status);
            }
            None => {
                *conn = None;
                if !reused {
                    return false;
                }
            }
        }
    }
    false
}

/// Read the collector's response; its status and whether the connection can carry another
/// request (a body of known length, read whole, and no `Connection: close`).
async fn read_answer(
    s: &mut monoio::net::TcpStream,
    buf: &mut Vec<u8>,
    limit: Limit<'_>,
) -> Option<(u16, bool)> {
    const LIMITS: bext_http1::Limits = bext_http1::Limits {
        max_target: 1024,
        max_head: 16 * 1024,
        max_headers: 64,
    };
    let mut head = bext_http1::ResponseHead::default();
    loop {
        let ctx = bext_http1::ResponseContext::default();
        match bext_http1::parse_response(buf, &LIMITS, ctx, &mut head) {
            Ok(bext_http1::Parse::Complete) => break,
            Ok(bext_http1::Parse::Partial) if buf.len() < LIMITS.max_head => {
                read_more(s, buf, 1024, limit).await.ok()?;
            }
            _ => return None,
        }
    }
    if head.status < 200 {
        // An interim response: not expected from a collector.
        return Some((head.status, false));
    }
    let mut keep = head.keep_alive;
    match head.framing {
        Some(bext_http1::Framing::ContentLength(n)) if n <= 1 << 20 => {
            let want = head.head_len + n as usize;
            while buf.len() < want {
                if read_more(s, buf, want - buf.len(), limit).await.is_err() {
                    return Some((head.status, false));
                }
            }
            keep &= buf.len() == want;
        }
        Some(bext_http1::Framing::None) | None => keep &= head.head_len == buf.len(),
        _ => keep = false,
    }
    Some((head.status, keep))
}

fn put_attr_str(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    out.extend_from_slice(b"{\"key\":\"");
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\",\"value\":{\"stringValue\":\"");
    json_escaped(out, value);
    out.extend_from_slice(b"\"}}");
}

/// An integer attribute (OTLP JSON writes 64-bit integers as strings).
fn put_attr_int(out: &mut Vec<u8>, key: &str, value: u64) {
    out.extend_from_slice(b"{\"key\":\"");
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\",\"value\":{\"intValue\":\"");
    put_u64(out, value);
    out.extend_from_slice(b"\"}}");
}

/// An address attribute, formatted in place (addresses need no escaping); IPv4 without the
/// formatting machinery.
fn put_attr_addr(out: &mut Vec<u8>, key: &str, ip: IpAddr, port: Option<u16>) {
    use std::io::Write;
    out.extend_from_slice(b"{\"key\":\"");
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\",\"value\":{\"stringValue\":\"");
    match ip {
        IpAddr::V4(v4) => {
            for (i, o) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                put_u64(out, u64::from(o));
            }
            if let Some(p) = port {
                out.push(b':');
                put_u64(out, u64::from(p));
            }
        }
        IpAddr::V6(v6) => {
            let _ = match port {
                Some(p) => write!(out, "[{v6}]:{p}"),
                None => write!(out, "{v6}"),
            };
        }
    }
    out.extend_from_slice(b"\"}}");
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    // Two digits per division.
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut v = v;
    while v >= 100 {
        let p = (v % 100) as usize * 2;
        v /= 100;
        i -= 2;
        digits[i..i + 2].copy_from_slice(&PAIRS[p..p + 2]);
    }
    if v >= 10 {
        let p = v as usize * 2;
        i -= 2;
        digits[i..i + 2].copy_from_slice(&PAIRS[p..p + 2]);
    } else {
        i -= 1;
        digits[i] = b'0' + v as u8;
    }
    out.extend_from_slice(&digits[i..]);
}

/// One span in OTLP JSON (opentelemetry-proto's JSON mapping: ids in hex, 64-bit integers as
/// strings, `kind` 2 = server, status code 2 = error), with HTTP semantic-convention
/// attributes.
fn encode_span(out: &mut Vec<u8>, ctx: &TraceContext, s: &SpanEnd<'_>) {
    out.extend_from_slice(b"{\"traceId\":\"");
    out.extend_from_slice(&ctx.trace_hex());
    out.extend_from_slice(b"\",\"spanId\":\"");
    out.extend_from_slice(&ctx.span_hex());
    if let Some(p) = ctx.parent_id {
        out.extend_from_slice(b"\",\"parentSpanId\":\"");
        let mut h = [0u8; 16];
        hex_into(&mut h, &p.to_be_bytes());
        out.extend_from_slice(&h);
    }
    out.extend_from_slice(b"\",\"name\":\"");
    match s.route {
        // The route as written starts with its methods when it has any.
        Some(r) if r.starts_with('/') || r.starts_with('~') => {
            json_escaped(out, s.method);
            out.push(b' ');
            json_escaped(out, r.as_bytes());
        }
        Some(r) => json_escaped(out, r.as_bytes()),
        None => json_escaped(out, s.method),
    }
    out.extend_from_slice(b"\",\"kind\":2,\"startTimeUnixNano\":\"");
    put_u64(out, s.start_unix_ns);
    out.extend_from_slice(b"\",\"endTimeUnixNano\":\"");
    put_u64(out, s.end_unix_ns.max(s.start_unix_ns));
    out.extend_from_slice(b"\",\"attributes\":[");
    put_attr_str(out, "http.request.method", s.method);
    out.push(b',');
    let path = s.target.split(|&b| b == b'?').next().unwrap_or(b"");
    put_attr_str(out, "url.path", path);
    out.push(b',');
    put_attr_str(out, "server.address", s.host);
    out.push(b',');
    put_attr_addr(out, "client.address", s.client, None);
    out.push(b',');
    put_attr_int(out, "http.response.status_code", u64::from(s.status));
    if let Some(r) = s.route {
        out.push(b',');
        put_attr_str(out, "http.route", r.as_bytes());
    }
    if let Some(u) = s.upstream {
        out.push(b',');
        put_attr_addr(out, "bext.upstream.address", u.ip(), Some(u.port()));
    }
    if let Some(e) = s.error {
        out.push(b',');
        put_attr_str(out, "error.type", e.as_bytes());
    }
    out.push(b',');
    put_attr_str(out, "bext.request_id", s.request_id);
    out.extend_from_slice(b"]");
    if s.status >= 500 {
        out.extend_from_slice(b",\"status\":{\"code\":2}");
    }
    out.push(b'}');
}

/// Wait (bounded) for the core's exporter to send what is queued, at the end of a drain.
pub async fn drain(w: &Worker) {
    for _ in 0..150 {
        if !w.spans.borrow().exporting {
            return;
        }
        monoio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether a request's span goes anywhere: it is sampled and spans are exported.
pub fn exporting(t: &Tracing, ctx: &TraceContext) -> bool {
    ctx.sampled && t.otlp.is_some()
}

/// The spans a worker exported, dropped and failed to send since the last call.
pub fn take_counts(spans: &RefCell<Spans>) -> (u64, u64, u64) {
    let mut s = spans.borrow_mut();
    (
        std::mem::take(&mut s.exported),
        std::mem::take(&mut s.dropped),
        std::mem::take(&mut s.failed),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &[u8] = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn traceparent_follows_the_w3c_grammar() {
        let p = parse_traceparent(VALID).unwrap();
        assert_eq!(p.parent_id, 0x00f0_67aa_0ba9_02b7);
        assert_eq!(p.flags, 1);
        assert_eq!(p.trace_id[0], 0x4b);
        // Later versions: the first four fields, when a `-` follows them.
        assert!(parse_traceparent(
            b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-brings"
        )
        .is_some());
        assert!(
            parse_traceparent(b"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09").is_some()
        );
        for bad in [
            &b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-"[..],
            b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            b"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
            b"00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
            b"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902g7-01",
            b"0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            b"",
        ] {
            assert_eq!(
                parse_traceparent(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn traceparent_sent_upstream_round_trips() {
        let ctx = TraceContext {
            trace_id: [0xab; 16],
            span_id: 0x0102_0304_0506_0708,
            parent_id: None,
            sampled: true,
        };
        let v = ctx.traceparent();
        assert_eq!(
            &v[..],
            b"00-abababababababababababababababab-0102030405060708-01"
        );
        let p = parse_traceparent(&v).unwrap();
        assert_eq!(p.trace_id, ctx.trace_id);
        assert_eq!(p.parent_id, ctx.span_id);
        let unsampled = TraceContext {
            sampled: false,
            ..ctx
        };
        assert!(unsampled.traceparent().ends_with(b"-00"));
    }

    #[test]
    fn sampling_takes_the_configured_share_of_trace_ids() {
        let t = |ppm| {
            Tracing::compile(&bext_ir::Tracing {
                sample_ppm: ppm,
                parent: bext_ir::TraceParent::Trusted,
                otlp: None,
                service: "bext".into(),
                at: Default::default(),
            })
            .unwrap()
        };
        let (all, none, tenth) = (t(1_000_000), t(0), t(100_000));
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut taken = 0;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut id = [0u8; 16];
            id[8..].copy_from_slice(&x.to_be_bytes());
            assert!(all.samples(&id));
            assert!(!none.samples(&id));
            taken += usize::from(tenth.samples(&id));
        }
        assert!((9_000..11_000).contains(&taken), "{taken}");
    }

    #[test]
    fn spans_encode_as_otlp_json() {
        let ctx = TraceContext {
            trace_id: [0x11; 16],
            span_id: 2,
            parent_id: Some(3),
            sampled: true,
        };
        let mut out = Vec::new();
        encode_span(
            &mut out,
            &ctx,
            &SpanEnd {
                method: b"GET",
                target: b"/a/\"b\"?secret=1",
                host: b"example.com",
                route: Some("/a/*"),
                status: 502,
                client: "10.0.0.1".parse().unwrap(),
                upstream: Some("127.0.0.1:9000".parse().unwrap()),
                request_id: b"r1",
                start_unix_ns: 5,
                end_unix_ns: 7,
                error: Some("upstream-unavailable"),
            },
        );
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["traceId"], "11111111111111111111111111111111");
        assert_eq!(v["spanId"], "0000000000000002");
        assert_eq!(v["parentSpanId"], "0000000000000003");
        assert_eq!(v["name"], "GET /a/*");
        assert_eq!(v["kind"], 2);
        assert_eq!(v["startTimeUnixNano"], "5");
        assert_eq!(v["status"]["code"], 2);
        let attrs = v["attributes"].as_array().unwrap();
        let get = |k: &str| {
            attrs
                .iter()
                .find(|a| a["key"] == k)
                .map(|a| a["value"].clone())
        };
        assert_eq!(get("url.path").unwrap()["stringValue"], "/a/\"b\"");
        assert_eq!(get("http.response.status_code").unwrap()["intValue"], "502");
        assert_eq!(
            get("error.type").unwrap()["stringValue"],
            "upstream-unavailable"
        );
        assert!(out.windows(6).all(|w| w != b"secret"));
    }

    #[test]
    fn numbers_and_ids_are_written_as_formatted() {
        for v in [0, 7, 10, 99, 100, 101, 12345, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            put_u64(&mut out, v);
            assert_eq!(out, v.to_string().as_bytes());
        }
        let ctx = TraceContext {
            trace_id: *b"\x01\x23\x45\x67\x89\xab\xcd\xef\xfe\xdc\xba\x98\x76\x54\x32\x10",
            span_id: 0xa1b2_c3d4_e5f6_0718,
            parent_id: None,
            sampled: true,
        };
        assert_eq!(&ctx.trace_hex(), b"0123456789abcdeffedcba9876543210");
        assert_eq!(&ctx.span_hex(), b"a1b2c3d4e5f60718");
    }

    #[test]
    fn addresses_are_written_as_displayed() {
        for (ip, port) in [
            ("10.0.0.1", None),
            ("255.255.0.9", Some(65535)),
            ("::1", None),
            ("2001:db8::7", Some(443)),
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            let mut out = Vec::new();
            put_attr_addr(&mut out, "k", ip, port);
            let want = match port {
                Some(p) => SocketAddr::new(ip, p).to_string(),
                None => ip.to_string(),
            };
            assert_eq!(
                String::from_utf8(out).unwrap(),
                format!("{{\"key\":\"k\",\"value\":{{\"stringValue\":\"{want}\"}}}}")
            );
        }
    }

    #[test]
    fn the_queue_is_bounded_and_counts_what_it_drops() {
        let otlp = Otlp {
            addr: "127.0.0.1:1".parse().unwrap(),
            authority: "127.0.0.1:1".into(),
            path: "/v1/traces".into(),
            queue: 16,
            interval: Duration::from_secs(1),
            prefix: b"{\"a\":[{\"b\":[{\"c\":[".to_vec(),
        };
        let ctx = TraceContext {
            trace_id: [1; 16],
            span_id: 1,
            parent_id: None,
            sampled: true,
        };
        let end = SpanEnd {
            method: b"GET",
            target: b"/",
            host: b"h",
            route: None,
            status: 200,
            client: "10.0.0.1".parse().unwrap(),
            upstream: None,
            request_id: b"r",
            start_unix_ns: 1,
            end_unix_ns: 2,
            error: None,
        };
        let mut spans = Spans::default();
        let kept = (0..100).filter(|_| spans.push(&otlp, &ctx, &end)).count();
        assert_eq!(kept, 16);
        assert_eq!(spans.dropped, 84);
        let (doc, n) = spans.take(Vec::new());
        assert_eq!(n, 16);
        let v: serde_json::Value = serde_json::from_slice(&doc).unwrap();
        assert_eq!(v["a"][0]["b"][0]["c"].as_array().unwrap().len(), 16);
        assert!(spans.push(&otlp, &ctx, &end));
    }
}
