//! The `proxy` action: upstream select, upstream exchange, response relay, tunnels.
//!
//! What goes upstream is re-serialised in one canonical form: origin-form target (after
//! `strip_prefix`), hop-by-hop fields and the fields named in `Connection` removed, exactly one
//! framing (`Content-Length` or `Transfer-Encoding: chunked`, re-encoded), the normal path the
//! request was routed on, `X-Forwarded-For`, `X-Forwarded-Proto`, `X-Forwarded-Host`,
//! `X-Real-IP` (the client's own only from `trusted_proxies`), `Via` and `X-Request-Id` set by
//! bext, and with `tracing`, bext's `traceparent` (the client's `tracestate` only when its trace
//! was continued).
//! `Expect: 100-continue` is answered by bext itself and not forwarded; an upstream's other
//! interim responses (102, 103 Early Hints) are passed on to HTTP/1.1 clients as they arrive,
//! without connection-specific fields, at most 16 per request.
//!
//! Failures and what the client sees: connection refused/reset before a response → 502
//! (`upstream-unavailable`), connect or response-head timeout → 504 (`upstream-timeout`), an
//! invalid response head → 502 (`upstream-invalid-response`). Once the response head was sent,
//! a failure mid-body closes the client connection without completing the framing (a short
//! Content-Length body, or no last chunk), so the client never sees a truncated success.
//!
//! What an upstream sends beyond what was asked never reaches another request: a pooled
//! connection that received bytes while idle (or was closed) is closed at checkout, one with
//! bytes beyond its response is not pooled, a 101 is accepted only for the protocol the request
//! asked to upgrade to, and 1xx/204/304 have no body. Tunnels end when idle. Failures are
//! logged, rate limited, without any access log (see [`crate::upstream::FailureLog`]).

use crate::body::{BodyErr, BodyReader};
use crate::conn::reply::{connection_field, content_length_field, spend_owed};
use crate::conn::{body_failure, read_whole_body, send_class, send_continue, Ctx, Outcome};
use crate::error::{reason, ErrorClass};
use crate::io::{race, read_more, write_all, Either, IoFail, Limit, PerStep};
use crate::pipeline::{CompiledRoute, HeaderOps, Pipeline};
use crate::stage::{Exchange, HeadEdits, Headers, Phases, Stages};
use crate::stop::{StopSignal, Woken};
use crate::upstream::{failure_line, pick_context, write_error_line, FailKind, UpstreamState};
use crate::upstream_conn::UpstreamStream;
use crate::worker::{PoolKey, Worker};
use bext_balance::{Failure, Outcome as BalanceOutcome, RequestFacts, RetryPolicy, Transition};
use bext_http1::{Framing, Parse, RequestHead, ResponseContext, ResponseHead, Version};
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::{Duration, Instant};

/// Limits on upstream response heads (more generous than on requests: bext trusts its
/// upstreams more than its clients, but not without bound).
const UPSTREAM_LIMITS: bext_http1::Limits = bext_http1::Limits {
    max_target: 8 * 1024,
    max_head: 64 * 1024,
    max_headers: 256,
};

/// Largest request body sent in the same write as the upstream head.
const INLINE_BODY_MAX: u64 = 16 * 1024;

/// What a [`ResponseTap`] makes of an upstream response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TapHead {
    /// Relay the response to the client (the tap sees its body on the way).
    Relay,
    /// Send nothing to the client: the body is read into the tap and the caller answers.
    Absorb,
}

/// A handler that wraps the proxy (the response cache) sees the exchange through this: the
/// upstream request's field edits, the upstream response head, its body as it streams (as the
/// upstream sent it, before any body filter) and whether it ended as framed.
pub(crate) trait ResponseTap {
    /// Field edits for the upstream request, instead of the route's `request_header`s.
    fn request_ops(&self) -> Option<&HeaderOps> {
        None
    }
    /// The upstream answered with this head; fields to add to the client's head go to
    /// `extra` (serialised, `Name: value\r\n` each).
    fn on_head(&mut self, status: u16, fields: &[(&[u8], &[u8])], extra: &mut Vec<u8>) -> TapHead;
    /// A piece of the body, decoded from its transfer coding.
    fn on_body(&mut self, data: &[u8]);
    /// The body ended; `complete`: as framed, not cut by a failure.
    fn on_end(&mut self, complete: bool);
    /// No response came (the upstream could not be reached or failed before its head). `true`:
    /// the tap answers the client itself, and the proxy sends nothing.
    fn on_error(&mut self) -> bool {
        false
    }
}

#[derive(Debug)]
enum UpErr {
    /// Closed or reset; `any` when some response bytes had arrived.
    Gone {
        any: bool,
        reset: bool,
    },
    Timeout,
    Invalid,
    /// The client closed while the response was awaited.
    ClientGone,
}

impl UpErr {
    fn class(&self) -> ErrorClass {
        match self {
            UpErr::Gone { .. } | UpErr::ClientGone => ErrorClass::UpstreamUnavailable,
            UpErr::Timeout => ErrorClass::UpstreamTimeout,
            UpErr::Invalid => ErrorClass::UpstreamInvalid,
        }
    }

    /// How the error log names it; `None` when the server is not at fault.
    fn kind(&self) -> Option<FailKind> {
        match self {
            UpErr::Gone { reset: true, .. } => Some(FailKind::Reset),
            UpErr::Gone { .. } => Some(FailKind::Closed),
            UpErr::Timeout => Some(FailKind::ResponseTimeout),
            UpErr::Invalid => Some(FailKind::InvalidResponse),
            UpErr::ClientGone => None,
        }
    }
}

fn is_named_in(tokens: &[bext_http1::Span], buf: &[u8], name: &[u8]) -> bool {
    tokens.iter().any(|t| bext_http1::name_eq(t.get(buf), name))
}

/// Fields bext sets itself or re-frames; the client's copies are never forwarded.
fn replaced_upstream(name: &[u8]) -> bool {
    const NAMES: [&[u8]; 7] = [
        b"content-length",
        b"transfer-encoding",
        b"expect",
        b"x-request-id",
        b"upgrade",
        b"connection",
        b"x-client-cert-subject",
    ];
    NAMES.iter().any(|n| bext_http1::name_eq(n, name))
}

/// With tracing, bext sends its own `traceparent`; the client's `tracestate` goes along only
/// with the trace it belongs to.
fn is_replaced_trace_field(name: &[u8], t: &crate::trace::TraceContext) -> bool {
    bext_http1::name_eq(name, b"traceparent")
        || (!t.continued() && bext_http1::name_eq(name, b"tracestate"))
}

/// Fields that say who the client is and how it reached the proxies: kept only from a trusted
/// proxy (`trusted_proxies`), else replaced by what bext saw. `X-Forwarded-For` is handled
/// apart (appended to, or started afresh).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Forwarding {
    Not,
    For,
    Proto,
    Host,
    RealIp,
    /// `Forwarded` and any other `X-Forwarded-*` (`-Port`, `-Prefix`, `-Server`, ...).
    Other,
}

fn forwarding(name: &[u8]) -> Forwarding {
    const XF: &[u8] = b"x-forwarded-";
    if name.len() >= XF.len() && bext_http1::name_eq(&name[..XF.len()], XF) {
        let rest = &name[XF.len()..];
        return if bext_http1::name_eq(rest, b"for") {
            Forwarding::For
        } else if bext_http1::name_eq(rest, b"proto") {
            Forwarding::Proto
        } else if bext_http1::name_eq(rest, b"host") {
            Forwarding::Host
        } else {
            Forwarding::Other
        };
    }
    if bext_http1::name_eq(name, b"x-real-ip") {
        Forwarding::RealIp
    } else if bext_http1::name_eq(name, b"forwarded") {
        Forwarding::Other
    } else {
        Forwarding::Not
    }
}

fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Whether a field name holds `_`. Such names are never forwarded: CGI-style origins fold `_`
/// and `-` together, so `Content_Length` would reach them as a second Content-Length.
fn has_underscore(name: &[u8]) -> bool {
    name.contains(&b'_')
}

/// Serialise the request head sent upstream. `path` is the normal path (what the request was
/// routed on); `framing` is the body as it goes upstream: the request's own, or
/// `ContentLength` of a body bext read whole first (`request_buffering on`); `server` is the
/// upstream server's address, sent as Host when the request has none (HTTP/1.0 allows that;
/// HTTP/1.1 requires one). From a peer that is not `trusted`, the client's `Forwarded`,
/// `X-Real-IP` and `X-Forwarded-*` are dropped and bext's own sent: `X-Forwarded-For` and
/// `X-Real-IP` are the peer address alone; from a trusted proxy they are kept and the peer is
/// appended to `X-Forwarded-For`.
#[allow(clippy::too_many_arguments)]
pub fn upstream_head(
    out: &mut Vec<u8>,
    buf: &[u8],
    head: &RequestHead,
    framing: Option<Framing>,
    path: &[u8],
    strip_prefix: Option<&[u8]>,
    rewrite: Option<&dyn crate::stage::TargetRewrite>,
    ops: &HeaderOps,
    client_ip: std::net::IpAddr,
    trusted: bool,
    rid: &[u8],
    server: SocketAddr,
    tls: Option<ClientTls<'_>>,
    trace: Option<&crate::trace::TraceContext>,
) {
    out.extend_from_slice(head.method_span.get(buf));
    out.push(b' ');
    let mut path = path;
    let query = head.query.map(|q| q.get(buf));
    // A route has a rewrite or a strip_prefix, never both (the checker refuses it).
    if !rewrite.is_some_and(|rw| rw.rewrite(path, query, out)) {
        if let Some(prefix) = strip_prefix {
            if let Some(rest) = path.strip_prefix(prefix) {
                path = rest;
                if !path.starts_with(b"/") {
                    out.push(b'/');
                }
            }
        }
        out.extend_from_slice(path);
        if let Some(q) = query {
            out.push(b'?');
            out.extend_from_slice(q);
        }
    }
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let host = head.authority.or(head.host).map(|s| s.get(buf));
    match host {
        Some(h) => field(out, b"Host", h),
        None => field(out, b"Host", server.to_string().as_bytes()),
    }
    let client_ip = client_ip.to_canonical();
    let mut xff: Vec<&[u8]> = Vec::new();
    let (mut has_proto, mut has_host, mut has_real_ip) = (false, false, false);
    for h in &head.headers {
        let name = h.name.get(buf);
        let value = h.value.get(buf);
        match forwarding(name) {
            Forwarding::Not => {}
            _ if !trusted => continue,
            Forwarding::For => {
                xff.push(value);
                continue;
            }
            Forwarding::Proto => has_proto = true,
            Forwarding::Host => has_host = true,
            Forwarding::RealIp => has_real_ip = true,
            Forwarding::Other => {}
        }
        if bext_http1::name_eq(name, b"host")
            || replaced_upstream(name)
            || bext_http1::is_hop_by_hop(name)
            || is_named_in(&head.connection_tokens, buf, name)
            || ops.drops(name)
            || has_underscore(name)
            || trace.is_some_and(|t| is_replaced_trace_field(name, t))
        {
            continue;
        }
        field(out, name, value);
    }
    let mut ip_buf = [0u8; 39];
    let ip = ip_text(client_ip, &mut ip_buf);
    out.extend_from_slice(b"X-Forwarded-For: ");
    for v in xff {
        out.extend_from_slice(v);
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(ip);
    out.extend_from_slice(b"\r\n");
    if !has_proto {
        out.extend_from_slice(match tls {
            Some(_) => b"X-Forwarded-Proto: https\r\n",
            None => b"X-Forwarded-Proto: http\r\n",
        });
    }
    // The verified client certificate: only ever what bext verified (the client's own field
    // of that name was dropped above).
    if let Some(subject) = tls.and_then(|t| t.client_subject) {
        field(out, b"X-Client-Cert-Subject", subject.as_bytes());
    }
    if let Some(h) = host.filter(|_| !has_host) {
        field(out, b"X-Forwarded-Host", h);
    }
    if !has_real_ip {
        field(out, b"X-Real-IP", ip);
    }
    out.extend_from_slice(if head.version == Some(Version::Http10) {
        b"Via: 1.0 bext\r\n"
    } else {
        b"Via: 1.1 bext\r\n"
    });
    field(out, b"X-Request-Id", rid);
    if let Some(t) = trace {
        field(out, b"traceparent", &t.traceparent());
    }
    for (n, v) in &ops.add {
        field(out, n, v);
    }
    match framing {
        Some(Framing::ContentLength(n)) if n > 0 => content_length_field(out, n),
        Some(Framing::Chunked) => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        _ => {}
    }
    if let Some(u) = head.upgrade {
        out.extend_from_slice(b"Connection: upgrade\r\n");
        field(out, b"Upgrade", u.get(buf));
    }
    out.extend_from_slice(b"\r\n");
}

/// `ip` as text in `buf` (at most 39 bytes: a full IPv6 address). IPv4 addresses are written
/// digit by digit, as every proxied request names its client; IPv6 goes through `Display`.
fn ip_text(ip: std::net::IpAddr, buf: &mut [u8; 39]) -> &[u8] {
    use std::io::Write;
    let mut n = 0;
    match ip {
        std::net::IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    buf[n] = b'.';
                    n += 1;
                }
                if octet >= 100 {
                    buf[n] = b'0' + octet / 100;
                    n += 1;
                }
                if octet >= 10 {
                    buf[n] = b'0' + octet / 10 % 10;
                    n += 1;
                }
                buf[n] = b'0' + octet % 10;
                n += 1;
            }
        }
        std::net::IpAddr::V6(v6) => {
            let mut w = &mut buf[..];
            // 39 bytes hold the longest form Display writes.
            let _ = write!(w, "{v6}");
            n = 39 - w.len();
        }
    }
    &buf[..n]
}

/// How the response body is framed towards the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Out {
    None,
    Length(u64),
    Chunked,
    /// HTTP/1.0 clients: the end of the body is the end of the connection.
    UntilClose,
}

/// What the upstream learns of a client connection over TLS.
#[derive(Debug, Clone, Copy)]
pub struct ClientTls<'a> {
    /// The verified client certificate's subject, when one was presented.
    pub client_subject: Option<&'a str>,
}

/// Serialise the response head sent to the client.
#[allow(clippy::too_many_arguments)]
fn client_head(
    out: &mut Vec<u8>,
    ubuf: &[u8],
    rh: &ResponseHead,
    ops: &HeaderOps,
    edits: &HeadEdits,
    framing: Out,
    close: bool,
    http10: bool,
    upgrade: bool,
) {
    let edited = !edits.is_empty();
    match edits.status() {
        // A stage's status: its standard reason phrase, not the origin's.
        Some(s) => crate::conn::reply::status_line(out, s),
        None => status_line(rh, ubuf, out),
    }
    let mut upgrade_value = None;
    let no_content_length = rh.status == 204 || (100..200).contains(&rh.status);
    for h in &rh.headers {
        let name = h.name.get(ubuf);
        if bext_http1::name_eq(name, b"upgrade") {
            upgrade_value = Some(h.value.get(ubuf));
            continue;
        }
        let framing_field = bext_http1::name_eq(name, b"content-length")
            || bext_http1::name_eq(name, b"transfer-encoding");
        // Without a body (HEAD, 304) the upstream's Content-Length describes the
        // representation and is kept; a 1xx or 204 has no representation to describe and
        // must not carry one (RFC 9110 §8.6).
        let keep_cl = framing == Out::None
            && !no_content_length
            && bext_http1::name_eq(name, b"content-length");
        if (framing_field && !keep_cl)
            || bext_http1::name_eq(name, b"connection")
            || bext_http1::is_hop_by_hop(name)
            || is_named_in(&rh.connection_tokens, ubuf, name)
            || ops.drops(name)
            || (edited && edits.removes(name))
        {
            continue;
        }
        field(out, name, h.value.get(ubuf));
    }
    out.extend_from_slice(b"Via: 1.1 bext\r\n");
    for (n, v) in &ops.add {
        field(out, n, v);
    }
    out.extend_from_slice(edits.added_lines());
    match framing {
        Out::Length(n) => content_length_field(out, n),
        Out::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        Out::None | Out::UntilClose => {}
    }
    if upgrade {
        out.extend_from_slice(b"Connection: upgrade\r\n");
        if let Some(v) = upgrade_value {
            field(out, b"Upgrade", v);
        }
    } else {
        connection_field(out, close, http10);
    }
    out.extend_from_slice(b"\r\n");
}

/// Whether a 101's `Upgrade` value names only protocols the request offered (RFC 9110 §7.8:
/// a server switches to one of the protocols listed in the request). Tokens compare
/// case-insensitively; an empty answer matches nothing.
fn upgrade_matches(offered: &[u8], chosen: &[u8]) -> bool {
    let mut any = false;
    for c in chosen.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
        if c.is_empty() {
            continue;
        }
        let listed = offered
            .split(|&b| b == b',')
            .any(|o| o.trim_ascii().eq_ignore_ascii_case(c));
        if !listed {
            return false;
        }
        any = true;
    }
    any
}

/// A 101 is accepted only for a request that asked to upgrade (`Connection: upgrade` with
/// `Upgrade`, `offered` is its value) and can be tunnelled, and only to a protocol it offered;
/// any other 101 is an invalid response: the connection no longer speaks HTTP, so it is
/// closed and the client gets 502.
fn check_switch(rh: &ResponseHead, ubuf: &[u8], offered: Option<&[u8]>) -> Result<(), UpErr> {
    if rh.status != 101 {
        return Ok(());
    }
    match (offered, rh.header(ubuf, b"upgrade")) {
        (Some(o), Some(c)) if upgrade_matches(o, c) => Ok(()),
        _ => Err(UpErr::Invalid),
    }
}

/// What [`read_response_head`] left at the start of `ubuf`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Head {
    /// The final response (or a 101).
    Final,
    /// An interim 1xx response to pass on to the client (`ubuf[..rh.head_len]`).
    Interim,
}

/// The most interim responses relayed before one final response: an upstream that sends them
/// without end is an invalid response, not a connection held open forever.
const MAX_INTERIM: u32 = 16;

/// Read until a final (or 101) response head is in `ubuf`. A `100 Continue` is dropped (bext
/// answers `Expect: 100-continue` itself); other interim responses (102 Processing, 103 Early
/// Hints, …) are returned as [`Head::Interim`] when `relay_interim` (RFC 9110 §15.2: a proxy
/// forwards them, except to an HTTP/1.0 client), else dropped. `interims` counts them across
/// calls for one response.
async fn read_response_head<R: AsyncReadRent>(
    rd: &mut R,
    ubuf: &mut Vec<u8>,
    rh: &mut ResponseHead,
    rctx: ResponseContext,
    limit: Limit<'_>,
    relay_interim: bool,
    interims: &mut u32,
) -> Result<Head, UpErr> {
    let mut any = false;
    loop {
        if !ubuf.is_empty() {
            match bext_http1::parse_response(ubuf, &UPSTREAM_LIMITS, rctx, rh) {
                Ok(Parse::Complete) => {
                    if (100..200).contains(&rh.status) && rh.status != 101 {
                        *interims += 1;
                        if *interims > MAX_INTERIM {
                            return Err(UpErr::Invalid);
                        }
                        if relay_interim && rh.status != 100 {
                            return Ok(Head::Interim);
                        }
                        ubuf.drain(..rh.head_len);
                        continue;
                    }
                    return Ok(Head::Final);
                }
                Ok(Parse::Partial) => {
                    if ubuf.len() > UPSTREAM_LIMITS.max_head {
                        return Err(UpErr::Invalid);
                    }
                }
                Err(_) => return Err(UpErr::Invalid),
            }
        }
        match read_more(rd, ubuf, 8 * 1024, limit).await {
            Ok(_) => any = true,
            Err(IoFail::Timeout) => return Err(UpErr::Timeout),
            Err(IoFail::Closed) => return Err(UpErr::Gone { any, reset: false }),
            Err(IoFail::Io(_)) => return Err(UpErr::Gone { any, reset: true }),
        }
    }
}

/// The upstream's status line as the client gets it: HTTP/1.1, its code and its reason phrase
/// (the standard one when it sent none).
fn status_line(rh: &ResponseHead, ubuf: &[u8], out: &mut Vec<u8>) {
    let phrase = if rh.reason.is_empty() {
        reason(rh.status).as_bytes()
    } else {
        rh.reason.get(ubuf)
    };
    crate::conn::reply::status_line_with(out, rh.status, phrase);
}

/// The client's copy of the interim response at the start of `ubuf`: its status line and
/// fields without the connection-specific ones (hop-by-hop, those `Connection` names, framing
/// fields, which a 1xx cannot carry).
fn interim_head(rh: &ResponseHead, ubuf: &[u8], out: &mut Vec<u8>) {
    status_line(rh, ubuf, out);
    for h in &rh.headers {
        let name = h.name.get(ubuf);
        if bext_http1::name_eq(name, b"content-length")
            || bext_http1::name_eq(name, b"transfer-encoding")
            || bext_http1::name_eq(name, b"connection")
            || bext_http1::name_eq(name, b"upgrade")
            || bext_http1::is_hop_by_hop(name)
            || is_named_in(&rh.connection_tokens, ubuf, name)
        {
            continue;
        }
        field(out, name, h.value.get(ubuf));
    }
    out.extend_from_slice(b"\r\n");
}

/// Pass the interim response at the start of `ubuf` on to the client and drop it from `ubuf`.
async fn send_interim<W: AsyncWriteRent>(
    client: &mut W,
    ubuf: &mut Vec<u8>,
    rh: &ResponseHead,
    limit: Limit<'_>,
) -> Result<(), UpErr> {
    let mut out = Vec::with_capacity(rh.head_len + 32);
    interim_head(rh, ubuf, &mut out);
    ubuf.drain(..rh.head_len);
    write_all(client, &mut out, limit)
        .await
        .map_err(|_| UpErr::ClientGone)
}

/// The result of relaying a response.
struct Relay {
    status: u16,
    bytes: u64,
    /// The response was delivered completely and its framing ended cleanly.
    complete: bool,
    /// The upstream connection may be reused.
    reusable: bool,
    /// Bytes beyond the end of the response had arrived: the connection is not reused.
    surplus: bool,
    /// The upstream failed mid-body (closed, reset, timed out, invalid chunked framing).
    upstream_failed: bool,
    /// The client connection may carry another request.
    client_ok: bool,
}

/// Relay the response whose head is in `ubuf` to the client, streaming the body.
#[allow(clippy::too_many_arguments)]
async fn relay<R: AsyncReadRent, W: AsyncWriteRent>(
    up: &mut R,
    ubuf: &mut Vec<u8>,
    rh: &ResponseHead,
    client: &mut W,
    out: &mut Vec<u8>,
    ops: &HeaderOps,
    stages: &Stages,
    ex: &mut Exchange,
    close_wanted: bool,
    http10: bool,
    up_timeout: PerStep<'_>,
    client_timeout: PerStep<'_>,
    head_sent: &Cell<bool>,
    body_done: &Cell<bool>,
    mut tap: Option<&mut dyn ResponseTap>,
    extra: &[u8],
) -> Relay {
    let framing = rh.framing.unwrap_or(Framing::None);
    // Phase "response head filters" (then the framing is chosen: a stage that changes the body
    // makes its length unknown).
    let body_len = match framing {
        Framing::ContentLength(n) => Some(n),
        _ => None,
    };
    let filtering = stages.has(Phases::RESPONSE_HEAD)
        && ex.response_head(
            stages,
            rh.status,
            Headers::new(ubuf, &rh.headers),
            body_len,
            true,
        )
        && framing != Framing::None;
    if ex.replaced() {
        // A stage answers instead (the caller sends its reply, `Exchange::take_replaced`):
        // nothing of this response goes to the client, and its body stays unread (the
        // connection is not reused).
        return Relay {
            status: rh.status,
            bytes: 0,
            complete: true,
            reusable: false,
            surplus: false,
            upstream_failed: false,
            client_ok: true,
        };
    }
    // Filters that keep the length leave a Content-Length body framed as it was.
    let kept = filtering && ex.length_kept() && body_len.is_some();
    let reframed = filtering && !kept;
    let (outf, forced_close) = match framing {
        Framing::None => (Out::None, false),
        Framing::ContentLength(_) | Framing::Chunked | Framing::CloseDelimited
            if http10 && reframed =>
        {
            (Out::UntilClose, true)
        }
        Framing::ContentLength(_) if reframed => (Out::Chunked, false),
        Framing::ContentLength(n) => (Out::Length(n), false),
        Framing::Chunked | Framing::CloseDelimited if http10 => (Out::UntilClose, true),
        Framing::Chunked | Framing::CloseDelimited => (Out::Chunked, false),
    };
    // An upstream answering before the request body was sent entirely leaves unread body
    // bytes on the client connection: it closes after this response.
    let close = close_wanted || forced_close || !body_done.get();
    out.clear();
    client_head(out, ubuf, rh, ops, &ex.edits, outf, close, http10, false);
    if !extra.is_empty() {
        // Before the blank line that ends the head.
        out.truncate(out.len() - 2);
        out.extend_from_slice(extra);
        out.extend_from_slice(b"\r\n");
    }
    if filtering {
        return relay_filtered(
            up,
            ubuf,
            rh,
            client,
            out,
            stages,
            ex,
            outf == Out::Chunked,
            if kept { body_len } else { None },
            close,
            up_timeout,
            client_timeout,
            head_sent,
            tap,
        )
        .await;
    }
    let mut pos = rh.head_len;
    let mut reader = BodyReader::new(framing, u64::MAX);
    let chunked = outf == Out::Chunked;
    let mut failed = false;
    // A tapped body is read decoded, shown to the tap, then framed here.
    let mut raw = Vec::new();
    loop {
        let pulled = match tap.as_mut() {
            None => {
                reader
                    .pull(up, ubuf, &mut pos, out, chunked, up_timeout.step())
                    .await
            }
            Some(t) => {
                raw.clear();
                let r = reader
                    .pull(up, ubuf, &mut pos, &mut raw, false, up_timeout.step())
                    .await;
                if !raw.is_empty() {
                    t.on_body(&raw);
                    bext_http1::write_body_piece(out, &raw, chunked);
                }
                r
            }
        };
        let more = match pulled {
            Ok(m) => m,
            Err(_) => {
                failed = true;
                false
            }
        };
        if !more && !failed && chunked {
            out.extend_from_slice(bext_http1::LAST_CHUNK);
        }
        if !out.is_empty() {
            let sent = write_all(client, out, client_timeout.step()).await.is_ok();
            out.clear();
            head_sent.set(true);
            if !sent {
                if let Some(t) = tap {
                    t.on_end(false);
                }
                return Relay {
                    status: rh.status,
                    bytes: reader.total(),
                    complete: false,
                    reusable: false,
                    surplus: false,
                    upstream_failed: failed,
                    client_ok: false,
                };
            }
        }
        if !more {
            break;
        }
    }
    let complete = !failed && reader.is_done();
    if let Some(t) = tap {
        t.on_end(complete);
    }
    // Bytes past the end of a complete response (a body longer than its Content-Length, data
    // after the last chunk or after a bodiless head) would be read as the start of the next
    // request's response.
    let surplus = complete && pos < ubuf.len();
    Relay {
        status: rh.status,
        bytes: reader.total(),
        complete,
        reusable: complete && rh.keep_alive && framing != Framing::CloseDelimited && !surplus,
        surplus,
        upstream_failed: failed,
        client_ok: complete && !close,
    }
}

/// `relay` for a response whose body a stage changes: each piece read from the upstream goes
/// through the body filters, and what they produce is framed again (chunked, or up to the
/// close for HTTP/1.0), or, when the filters keep the length, sent under the upstream's
/// Content-Length (`owed`: the bytes it still announces). The head is in `out`, not sent yet.
#[allow(clippy::too_many_arguments)]
async fn relay_filtered<R: AsyncReadRent, W: AsyncWriteRent>(
    up: &mut R,
    ubuf: &mut Vec<u8>,
    rh: &ResponseHead,
    client: &mut W,
    out: &mut Vec<u8>,
    stages: &Stages,
    ex: &mut Exchange,
    chunked: bool,
    mut owed: Option<u64>,
    close: bool,
    up_timeout: PerStep<'_>,
    client_timeout: PerStep<'_>,
    head_sent: &Cell<bool>,
    mut tap: Option<&mut dyn ResponseTap>,
) -> Relay {
    let framing = rh.framing.unwrap_or(Framing::None);
    let mut pos = rh.head_len;
    let mut reader = BodyReader::new(framing, u64::MAX);
    let mut failed = false;
    let mut filter_failed = false;
    let mut bytes = 0u64;
    let (mut raw, mut filtered, mut tmp) = ex.take_buffers();
    let mut client_ok = true;
    loop {
        raw.clear();
        let mut more = match reader
            .pull(up, ubuf, &mut pos, &mut raw, false, up_timeout.step())
            .await
        {
            Ok(m) => m,
            Err(_) => {
                failed = true;
                false
            }
        };
        if failed {
            break;
        }
        // The last byte of a Content-Length body: ended now (that pull reads nothing), so the
        // last piece and the end of the body leave in one write, not two.
        if more && reader.at_end() {
            more = matches!(
                reader
                    .pull(up, ubuf, &mut pos, &mut raw, false, up_timeout.step())
                    .await,
                Ok(true)
            );
        }
        if let Some(t) = tap.as_mut() {
            if !raw.is_empty() {
                t.on_body(&raw);
            }
        }
        if ex
            .body(stages, &raw, !more, &mut filtered, &mut tmp)
            .is_err()
        {
            filter_failed = true;
            break;
        }
        // The filters keep the Content-Length the head carries: output past it, or short of
        // it at the end, cuts the response short.
        if spend_owed(&mut owed, filtered.len(), !more).is_err() {
            filter_failed = true;
            break;
        }
        bext_http1::write_body_piece(out, &filtered, chunked);
        bytes += filtered.len() as u64;
        if !more && chunked {
            out.extend_from_slice(bext_http1::LAST_CHUNK);
        }
        if !out.is_empty() {
            let sent = write_all(client, out, client_timeout.step()).await.is_ok();
            out.clear();
            head_sent.set(true);
            if !sent {
                client_ok = false;
                break;
            }
        }
        if !more {
            break;
        }
    }
    if !head_sent.get() && !out.is_empty() && (failed || filter_failed) {
        // Nothing was sent yet: the head goes out alone, then the connection closes, so the
        // client sees a response cut short, never a complete one.
        let _ = write_all(client, out, client_timeout.step()).await;
        out.clear();
        head_sent.set(true);
    }
    ex.give_buffers(raw, filtered, tmp);
    let complete = !failed && !filter_failed && client_ok && reader.is_done();
    if let Some(t) = tap {
        t.on_end(!failed && reader.is_done() && client_ok);
    }
    let surplus = complete && pos < ubuf.len();
    Relay {
        status: rh.status,
        bytes,
        complete,
        reusable: !failed
            && reader.is_done()
            && rh.keep_alive
            && framing != Framing::CloseDelimited
            && pos >= ubuf.len(),
        surplus,
        upstream_failed: failed,
        client_ok: complete && !close,
    }
}

/// Read the body of the response whose head is in `ubuf` into `tap`, sending nothing to the
/// client (a revalidation answered for the cache, a background refresh).
async fn absorb<R: AsyncReadRent>(
    up: &mut R,
    ubuf: &mut Vec<u8>,
    rh: &ResponseHead,
    tap: &mut dyn ResponseTap,
    up_timeout: PerStep<'_>,
) -> Relay {
    let framing = rh.framing.unwrap_or(Framing::None);
    let mut pos = rh.head_len;
    let mut reader = BodyReader::new(framing, u64::MAX);
    let mut raw = Vec::new();
    let mut failed = false;
    loop {
        raw.clear();
        let more = match reader
            .pull(up, ubuf, &mut pos, &mut raw, false, up_timeout.step())
            .await
        {
            Ok(m) => m,
            Err(_) => {
                failed = true;
                false
            }
        };
        if !raw.is_empty() {
            tap.on_body(&raw);
        }
        if !more {
            break;
        }
    }
    let complete = !failed && reader.is_done();
    tap.on_end(complete);
    let surplus = complete && pos < ubuf.len();
    Relay {
        status: rh.status,
        bytes: 0,
        complete,
        reusable: complete && rh.keep_alive && framing != Framing::CloseDelimited && !surplus,
        surplus,
        upstream_failed: failed,
        client_ok: true,
    }
}

/// A pooled connection to `addr` that is safe to send a request on. Each candidate is looked
/// at without blocking first: one that received bytes while idle (a stray or late response,
/// a body longer than announced) or that the upstream closed is closed, never reused, since
/// what it holds would be read as the next request's response.
pub(crate) fn checkout_clean(
    w: &Worker,
    key: PoolKey,
    max_idle: Duration,
) -> Option<UpstreamStream> {
    while let Some(s) = w.checkout(key, max_idle) {
        if crate::sys::idle_state(s.raw_fd()) == crate::sys::IdleState::Quiet {
            return Some(s);
        }
        w.shared.stats[w.id]
            .upstream_stale_closed
            .fetch_add(1, Ordering::Relaxed);
    }
    None
}

/// After a relayed response: pool the upstream connection when it may carry another request,
/// count it when surplus bytes kept it out.
fn release(w: &Worker, key: PoolKey, us: UpstreamStream, r: &Relay, keepalive: usize) {
    // Decrypted bytes beyond the response, still in the TLS session, are surplus too.
    let surplus = r.surplus || (r.reusable && us.holds_unread());
    if surplus {
        w.shared.stats[w.id]
            .upstream_surplus_closed
            .fetch_add(1, Ordering::Relaxed);
    }
    if r.reusable && !surplus {
        w.checkin(key, us, keepalive);
    }
}

/// After one side of a tunnel has closed its half, how long the other may still take, at
/// most (capped by the tunnel's idle timeout).
const TUNNEL_GRACE: Duration = Duration::from_secs(5);

/// The deadline of a tunnel on the worker's coarse clock: moved by every byte read in either
/// direction (`tunnel` in the upstream's `timeouts`), and fixed at the grace once one side has
/// closed its half. Reads no clock (see [`crate::stop::StopSignal::tick_after`]).
struct TunnelClock<'a> {
    clock: &'a StopSignal,
    idle: Duration,
    deadline: Cell<u32>,
    half_closed: Cell<bool>,
}

impl TunnelClock<'_> {
    fn touch(&self) {
        if !self.half_closed.get() {
            self.deadline.set(self.clock.tick_after(self.idle));
        }
    }

    fn half_close(&self) {
        if !self.half_closed.replace(true) {
            self.deadline
                .set(self.clock.tick_after(TUNNEL_GRACE.min(self.idle)));
        }
    }

    /// Resolves when the deadline passes without having been moved.
    async fn expired(&self) {
        loop {
            let d = self.deadline.get();
            self.clock.until(d).await;
            if self.deadline.get() == d {
                return;
            }
        }
    }
}

/// After a 101: copy bytes both ways until both directions have ended, no byte has moved
/// either way for `idle`, or the grace after the first half-close is over. An upgraded
/// connection holds its pipeline generation (and a connection slot) for as long as it lives,
/// so it must not outlive a peer that went quiet; dropping the copies closes both sockets.
async fn tunnel(
    clock: &StopSignal,
    idle: Duration,
    client: crate::stream::ClientStream,
    upstream: UpstreamStream,
    to_up: Vec<u8>,
    to_client: Vec<u8>,
) {
    let (mut crd, mut cwr) = client.into_split();
    let (mut urd, mut uwr) = upstream.into_split();
    let t = TunnelClock {
        clock,
        idle,
        deadline: Cell::new(clock.tick_after(idle)),
        half_closed: Cell::new(false),
    };
    let a = copy_one_way(&mut crd, &mut uwr, to_up, &t);
    let b = copy_one_way(&mut urd, &mut cwr, to_client, &t);
    let both = async {
        monoio::join!(a, b);
    };
    race(pin!(both), pin!(t.expired())).await;
}

async fn copy_one_way<R: AsyncReadRent, W: AsyncWriteRent>(
    rd: &mut R,
    wr: &mut W,
    first: Vec<u8>,
    t: &TunnelClock<'_>,
) {
    let mut buf = first;
    loop {
        if !buf.is_empty() {
            let (res, back) = wr.write_all(buf).await;
            buf = back;
            if res.is_err() {
                break;
            }
        }
        buf.clear();
        if buf.capacity() < 16 * 1024 {
            buf.reserve(16 * 1024);
        }
        let (res, back) = rd.read(buf).await;
        buf = back;
        match res {
            Ok(0) | Err(_) => break,
            Ok(_) => t.touch(),
        }
    }
    let _ = wr.shutdown().await;
    t.half_close();
}

/// How one attempt ended before its response could be relayed.
#[derive(Debug)]
enum AttemptErr {
    /// No connection: refused, failed, or not in time.
    Connect(FailKind),
    /// The circuit breaker refused a new connection (`max_pending`).
    Overloaded,
    /// Connected, but the head could not be written.
    Write,
    /// The response head did not arrive (or was invalid).
    Head(UpErr),
}

impl AttemptErr {
    fn class(&self) -> ErrorClass {
        match self {
            AttemptErr::Connect(FailKind::ConnectTimeout) => ErrorClass::UpstreamTimeout,
            AttemptErr::Connect(_) => ErrorClass::UpstreamUnavailable,
            AttemptErr::Overloaded => ErrorClass::UpstreamOverloaded,
            AttemptErr::Write => ErrorClass::UpstreamUnavailable,
            AttemptErr::Head(e) => e.class(),
        }
    }

    /// The retry condition this failure matches, if any (`retry on ...`).
    fn failure(&self) -> Option<Failure> {
        match self {
            AttemptErr::Connect(FailKind::ConnectTimeout) => Some(Failure::Timeout),
            AttemptErr::Connect(_) => Some(Failure::ConnectError),
            AttemptErr::Head(UpErr::Timeout) => Some(Failure::Timeout),
            _ => None,
        }
    }

    /// How the error log names it; `None` when the server is not at fault.
    fn kind(&self) -> Option<FailKind> {
        match self {
            AttemptErr::Connect(k) => Some(*k),
            AttemptErr::Overloaded => None,
            AttemptErr::Write => Some(FailKind::Reset),
            AttemptErr::Head(e) => e.kind(),
        }
    }

    /// Does it count against the server (passive health)? A full breaker and a client that
    /// went away say nothing about the server.
    fn counts_against_server(&self) -> bool {
        !matches!(
            self,
            AttemptErr::Overloaded | AttemptErr::Head(UpErr::ClientGone)
        )
    }
}

/// One attempt on one server: `on_start` when created, `on_finish` (latency, outcome) when
/// dropped, whichever way the exchange ends. The latency reported is the time to the response
/// head when one arrived (what P2C compares; a long body says nothing about the server's
/// speed), else the time the attempt took to fail.
struct AttemptGuard<'a> {
    state: &'a RefCell<UpstreamState>,
    idx: usize,
    started: Instant,
    to_head: Cell<Option<Duration>>,
    outcome: Cell<BalanceOutcome>,
}

impl<'a> AttemptGuard<'a> {
    fn start(state: &'a RefCell<UpstreamState>, idx: usize) -> AttemptGuard<'a> {
        {
            let st = &mut *state.borrow_mut();
            st.balancer.on_start(idx);
            st.metrics.attempt(idx);
        }
        AttemptGuard {
            state,
            idx,
            started: Instant::now(),
            to_head: Cell::new(None),
            outcome: Cell::new(BalanceOutcome::Success),
        }
    }

    fn head_arrived(&self) {
        self.to_head.set(Some(self.started.elapsed()));
    }
}

impl Drop for AttemptGuard<'_> {
    fn drop(&mut self) {
        let latency = self.to_head.get().unwrap_or_else(|| self.started.elapsed());
        self.state
            .borrow_mut()
            .balancer
            .on_finish(self.idx, latency, self.outcome.get());
    }
}

/// Record the result of an attempt on server `idx`: failure counters and passive ejection.
fn record(state: &RefCell<UpstreamState>, idx: usize, ok: bool, now_ms: u64) {
    let st = &mut *state.borrow_mut();
    if !ok {
        st.metrics.failure(idx);
    }
    if let Some(passive) = st.passive.as_mut() {
        match passive.on_result(idx, ok, now_ms) {
            Some(Transition::Ejected { .. }) => {
                st.balancer.set_ejected(idx, true);
                st.metrics.ejection(idx);
            }
            Some(Transition::Up) => st.balancer.set_ejected(idx, false),
            _ => {}
        }
    }
}

/// An upstream failure for the error log: one line per server and kind of failure per second
/// on this core, counting what it leaves out (see [`crate::upstream::FailureLog`]).
fn note_failure(
    state: &RefCell<UpstreamState>,
    def: &crate::pipeline::UpstreamDef,
    idx: usize,
    kind: Option<FailKind>,
    now_ms: u64,
) {
    let Some(kind) = kind else { return };
    let due = state.borrow_mut().failure_log.due(idx, kind, now_ms);
    if let Some(suppressed) = due {
        write_error_line(&failure_line(
            &def.name,
            def.servers[idx].addr,
            kind,
            suppressed,
        ));
    }
}

/// Whether another attempt may follow a failure: the upstream's retry policy lists it, the
/// request is safe to send again, and the core's retry budget has room (a refused connection
/// does not take from the budget, see [`RetryPolicy::uses_budget`]).
fn retry_allowed(
    state: &RefCell<UpstreamState>,
    facts: &RequestFacts,
    failure: Option<Failure>,
    now_ms: u64,
) -> bool {
    let Some(failure) = failure else {
        return false;
    };
    let st = &mut *state.borrow_mut();
    let Some(policy) = st.retry.as_ref() else {
        return false;
    };
    if !policy.may_retry(facts, failure) {
        return false;
    }
    if RetryPolicy::uses_budget(failure) && !st.budget.try_retry(now_ms) {
        st.metrics.budget_exhausted += 1;
        return false;
    }
    st.metrics.retries += 1;
    true
}

/// Connect to `addr` (or reuse a pooled connection), send the head in `hb`, and for bodiless
/// requests read the response head into `ctx.rhead`. A pooled connection the upstream closed
/// meanwhile is replaced once by a fresh one when `replayable` (this is not a retry: the same
/// server, and the request certainly did not run twice).
#[allow(clippy::too_many_arguments)]
async fn attempt(
    ctx: &mut Ctx<'_>,
    w: &Worker,
    state: &RefCell<UpstreamState>,
    def: &crate::pipeline::UpstreamDef,
    idx: usize,
    hb: &mut Vec<u8>,
    ubuf: &mut Vec<u8>,
    has_body: bool,
    replayable: bool,
    rctx: ResponseContext,
) -> Result<UpstreamStream, AttemptErr> {
    let server = &def.servers[idx];
    if server.tls.is_none() && def.config.servers[idx].tls.is_some() {
        // A pipeline compiled without loading its upstream TLS (see `bext::compile_with`):
        // never fall back to plain TCP.
        return Err(AttemptErr::Connect(FailKind::TlsHandshake));
    }
    let mut fresh_only = false;
    loop {
        let pooled = if fresh_only {
            None
        } else {
            checkout_clean(w, server.pool_key(), def.idle_timeout)
        };
        let reused = pooled.is_some();
        let mut s = match pooled {
            Some(s) => s,
            None => {
                let pending = state.borrow().breaker.try_acquire_pending();
                let Ok(_pending) = pending else {
                    return Err(AttemptErr::Overloaded);
                };
                let limit = Limit::new(&w.stop, def.connect_timeout);
                crate::upstream_conn::connect(server.addr, server.tls.as_ref(), limit)
                    .await
                    .map_err(AttemptErr::Connect)?
            }
        };
        let limit = Limit::new(&w.stop, def.response_timeout);
        if write_all(&mut s, hb, limit).await.is_err() {
            if reused && replayable {
                fresh_only = true;
                continue;
            }
            return Err(AttemptErr::Write);
        }
        if has_body {
            return Ok(s);
        }
        ubuf.clear();
        let relay_interim = !ctx.http10 && ctx.stream.is_some();
        let mut interims = 0;
        let head = loop {
            let rh = read_response_head(
                &mut s,
                ubuf,
                ctx.rhead,
                rctx,
                limit,
                relay_interim,
                &mut interims,
            );
            let max = ctx.policy.limits.max_head;
            let head = match ctx.stream.as_mut() {
                Some(c) => {
                    // The watch's read is tied to a canceller: when the head arrives first it is
                    // cancelled and awaited, so a byte it took (io_uring posts the read with a
                    // buffer) is kept.
                    let canceller = RefCell::new(None);
                    let mut rh = pin!(rh);
                    let mut watch = pin!(watch_client(w, c, ctx.buf, max, &canceller));
                    match race(rh.as_mut(), watch.as_mut()).await {
                        Either::Left(r) => {
                            let posted = canceller.borrow_mut().take();
                            if let Some(cancel) = posted {
                                let _ = cancel.cancel();
                                watch.await;
                            }
                            r
                        }
                        Either::Right(Watched::Gone) => Err(UpErr::ClientGone),
                        Either::Right(Watched::Quiet) => rh.await,
                    }
                }
                None => rh.await,
            };
            let steps = ctx.send_steps();
            match (head, ctx.stream.as_mut()) {
                (Ok(Head::Interim), Some(c)) => {
                    let sent = send_interim(c, ubuf, ctx.rhead, steps.step()).await;
                    if let Err(e) = sent {
                        break Err(e);
                    }
                }
                (Ok(Head::Interim), None) => {
                    ubuf.drain(..ctx.rhead.head_len);
                }
                (other, _) => break other.map(drop),
            }
        };
        let offered = ctx.head.upgrade.map(|u| u.get(ctx.buf));
        match head.and_then(|()| check_switch(ctx.rhead, ubuf, offered)) {
            Ok(()) => return Ok(s),
            Err(UpErr::Gone { any: false, .. }) if reused && replayable => {
                fresh_only = true;
                continue;
            }
            Err(e) => return Err(AttemptErr::Head(e)),
        }
    }
}

/// Run the `proxy` action of `route` towards upstream `up`.
///
/// Per attempt: the core's balancer picks a server (skipping the previous attempt's server
/// while another is usable), the attempt runs, its result feeds the balancer, the passive
/// ejector and the counters; a failure the retry policy lists is retried while the request is
/// safe to send again and the retry budget agrees. Nothing is retried once a byte of the
/// response went to the client or a byte of a streamed request body went upstream.
pub(crate) async fn proxy(
    ctx: &mut Ctx<'_>,
    p: &Pipeline,
    route: &CompiledRoute,
    up: usize,
) -> Outcome {
    proxy_tapped(ctx, p, route, up, None).await
}

/// The outcome [`proxy_tapped`] returns when its tap took the answer over: nothing was sent.
pub(crate) const TAKEN_OVER: u16 = 0;

/// [`proxy`] with a tap on the response (see [`ResponseTap`]).
pub(crate) async fn proxy_tapped(
    ctx: &mut Ctx<'_>,
    p: &Pipeline,
    route: &CompiledRoute,
    up: usize,
    mut tap: Option<&mut dyn ResponseTap>,
) -> Outcome {
    let w = ctx.w.clone();
    let def = &p.upstreams[up];
    let set = w.upstreams_for(p);
    let state = &set.list[up];
    let mut has_body = ctx.has_body();
    // What of a chunked body already arrived with the head is checked before any upstream is
    // contacted: a malformed or oversized body is refused here, and the origin never sees the
    // request.
    if has_body && ctx.framing == Framing::Chunked {
        if let Err(e) =
            crate::body::check_chunked_prefix(&ctx.buf[ctx.pos..], ctx.policy.body_bytes)
        {
            return body_failure(ctx, e).await;
        }
    }
    // `request_buffering on`: the whole body is read (within the body limit) before the
    // upstream is contacted, then sent with the head like a small inline body.
    // A body the request body filters read is forwarded as they left it, like a buffered one.
    let mut buffered: Option<Vec<u8>> = ctx.body.take();
    // Over TLS: the verified client identity, if any (copied: the stream is lent out below).
    let tls: Option<Option<String>> = ctx.stream.as_ref().and_then(|s| s.tls_identity());
    if route.request_buffering && has_body {
        let mut body = Vec::new();
        match read_whole_body(ctx, &mut body, None).await {
            Ok(_) => {
                buffered = Some(body);
                has_body = false;
            }
            Err(o) => return o,
        }
    }
    let breaker = state.borrow().breaker.try_acquire();
    let Ok(_connection_slot) = breaker else {
        state.borrow_mut().metrics.breaker_open += 1;
        return send_class(ctx, ErrorClass::UpstreamOverloaded, has_body).await;
    };
    // A small Content-Length body that already arrived with the head goes out in the same
    // write as the upstream head, and the exchange is then like a bodiless one: one write
    // instead of two, and the request can be sent again (stale pooled connection, retry)
    // because nothing was consumed from the client socket.
    let mut inline: Option<(usize, usize)> = None;
    if let (Framing::ContentLength(n), None) = (ctx.framing, &buffered) {
        let avail = ctx.buf.len().saturating_sub(ctx.pos);
        if n > 0 && n <= INLINE_BODY_MAX && n as usize <= avail {
            inline = Some((ctx.pos, n as usize));
            ctx.pos += n as usize;
            has_body = false;
        }
    }
    let upgrade = ctx.head.upgrade.is_some();
    let rctx = ResponseContext {
        request_was_head: ctx.is_head,
        request_was_connect: false,
    };
    let idempotent = ctx.head.method.is_some_and(|m| m.is_idempotent());
    // A stale pooled connection may have delivered the request before closing, so only a
    // request whose repetition is harmless (RFC 9110 §9.2.2) and whose whole body is still
    // held here (none, or inline in `hb`) may be sent again; any other request gets 502.
    let replayable = !has_body && idempotent;
    {
        let st = &mut *state.borrow_mut();
        st.metrics.requests += 1;
        st.budget.on_request(w.now_ms());
    }
    let mut hb = w.take_xfer();
    let mut ubuf = w.take_xfer();
    let mut exclude = None;
    let mut attempts: u32 = 0;
    let (addr, mut us, guard) = loop {
        let picked = {
            let st = &mut *state.borrow_mut();
            let headers = Headers::from_request(ctx.buf, ctx.head);
            let pc = pick_context(&def.hash, ctx.peer, headers);
            st.balancer.pick(&pc, &st.health, exclude)
        };
        let Some(idx) = picked else {
            w.give_xfer(hb);
            w.give_xfer(ubuf);
            if tap.as_mut().is_some_and(|t| t.on_error()) {
                return Outcome::closed(TAKEN_OVER, None);
            }
            return send_class(ctx, ErrorClass::NoHealthyUpstream, has_body).await;
        };
        let addr = def.servers[idx].addr;
        let guard = AttemptGuard::start(state, idx);
        attempts += 1;
        hb.clear();
        upstream_head(
            &mut hb,
            ctx.buf,
            ctx.head,
            match &buffered {
                Some(b) => Some(Framing::ContentLength(b.len() as u64)),
                None => ctx.head.framing,
            },
            ctx.path(),
            route.strip_prefix.as_deref(),
            route.rewrite.as_deref(),
            tap.as_ref()
                .and_then(|t| t.request_ops())
                .unwrap_or(&route.request_headers),
            ctx.peer.ip(),
            ctx.trusted,
            ctx.rid,
            addr,
            tls.as_ref().map(|subject| ClientTls {
                client_subject: subject.as_deref(),
            }),
            ctx.trace.as_ref(),
        );
        let inline_len = match &buffered {
            Some(b) => {
                hb.extend_from_slice(b);
                b.len() as u64
            }
            None => inline.map_or(0, |(start, n)| {
                hb.extend_from_slice(&ctx.buf[start..start + n]);
                n as u64
            }),
        };
        let res = attempt(
            ctx, &w, state, def, idx, &mut hb, &mut ubuf, has_body, replayable, rctx,
        )
        .await;
        let now = w.now_ms();
        match res {
            Ok(s) => {
                if has_body {
                    break (addr, s, guard);
                }
                guard.head_arrived();
                let status = ctx.rhead.status;
                record(state, idx, status < 500, now);
                if status >= 500 {
                    guard.outcome.set(BalanceOutcome::Failure);
                }
                let facts = RequestFacts {
                    idempotent,
                    body_bytes_sent: inline_len,
                    attempt: attempts,
                };
                if !(upgrade && status == 101)
                    && retry_allowed(state, &facts, Some(Failure::Status(status)), now)
                {
                    // The response is dropped unread, with its connection.
                    drop(s);
                    exclude = Some(idx);
                    continue;
                }
                break (addr, s, guard);
            }
            Err(e) => {
                if let AttemptErr::Head(UpErr::ClientGone) = e {
                    // Nobody will read the response: drop the upstream connection now.
                    w.give_xfer(hb);
                    w.give_xfer(ubuf);
                    let mut o = Outcome::closed(499, Some("client-closed"));
                    o.upstream = Some(addr);
                    return o;
                }
                if e.counts_against_server() {
                    record(state, idx, false, now);
                    guard.outcome.set(BalanceOutcome::Failure);
                }
                note_failure(state, def, idx, e.kind(), now);
                // Nothing of a streamed body was read from the client yet (it is sent only
                // after the head went out), so only what went with the head counts.
                let body_bytes_sent = match e {
                    AttemptErr::Connect(_) | AttemptErr::Overloaded => 0,
                    _ => inline_len,
                };
                let facts = RequestFacts {
                    idempotent,
                    body_bytes_sent,
                    attempt: attempts,
                };
                if retry_allowed(state, &facts, e.failure(), now) {
                    exclude = Some(idx);
                    continue;
                }
                w.give_xfer(hb);
                w.give_xfer(ubuf);
                if tap.as_mut().is_some_and(|t| t.on_error()) {
                    let mut o = Outcome::closed(TAKEN_OVER, None);
                    o.upstream = Some(addr);
                    return o;
                }
                let mut o = send_class(ctx, e.class(), has_body).await;
                o.upstream = Some(addr);
                return o;
            }
        }
    };
    hb.clear();
    let client_steps = ctx.send_steps();
    let close_wanted = !ctx.keep_wanted;

    if !has_body {
        // 101 after an upgrade request: hand both connections to a tunnel.
        if upgrade && ctx.rhead.status == 101 {
            let mut head = std::mem::take(&mut hb);
            client_head(
                &mut head,
                &ubuf,
                ctx.rhead,
                &route.response_headers,
                &ctx.ex.edits,
                Out::None,
                false,
                ctx.http10,
                true,
            );
            let to_client = {
                let mut v = head;
                v.extend_from_slice(&ubuf[ctx.rhead.head_len..]);
                v
            };
            let to_up = ctx.buf[ctx.pos.min(ctx.buf.len())..].to_vec();
            ctx.pos = ctx.buf.len();
            w.give_xfer(ubuf);
            let Some(client) = ctx.stream.take() else {
                return Outcome::closed(101, None);
            };
            tunnel(&w.stop, def.tunnel_timeout, client, us, to_up, to_client).await;
            return Outcome {
                status: 101,
                bytes: 0,
                keep: false,
                error: None,
                upstream: Some(addr),
            };
        }
        let mut extra = Vec::new();
        crate::h3::alt_svc(ctx.stream.as_ref(), &mut extra);
        if let Some(t) = tap.as_mut() {
            let rh = &*ctx.rhead;
            let fields: Vec<(&[u8], &[u8])> = (rh.headers.iter())
                .map(|h| (h.name.get(&ubuf), h.value.get(&ubuf)))
                .collect();
            if t.on_head(rh.status, &fields, &mut extra) == TapHead::Absorb {
                drop(fields);
                let steps = PerStep::new(&w.stop, def.response_timeout);
                let r = absorb(&mut us, &mut ubuf, ctx.rhead, &mut **t, steps).await;
                release(&w, def.servers[guard.idx].pool_key(), us, &r, def.keepalive);
                w.give_xfer(hb);
                w.give_xfer(ubuf);
                let mut o = Outcome::closed(TAKEN_OVER, None);
                o.upstream = Some(addr);
                return o;
            }
        }
        let head_sent = Cell::new(false);
        let Some(client) = ctx.stream.as_mut() else {
            return Outcome::closed(502, None);
        };
        let r = relay(
            &mut us,
            &mut ubuf,
            ctx.rhead,
            client,
            &mut hb,
            &route.response_headers,
            &route.stages,
            ctx.ex,
            close_wanted,
            ctx.http10,
            PerStep::new(&w.stop, def.response_timeout),
            client_steps,
            &head_sent,
            &Cell::new(true),
            tap,
            &extra,
        )
        .await;
        if !r.complete {
            guard.outcome.set(BalanceOutcome::Failure);
        }
        if r.upstream_failed {
            note_failure(
                state,
                def,
                guard.idx,
                Some(FailKind::ClosedMidBody),
                w.now_ms(),
            );
        }
        release(&w, def.servers[guard.idx].pool_key(), us, &r, def.keepalive);
        w.give_xfer(hb);
        w.give_xfer(ubuf);
        if let Some(reply) = ctx.ex.take_replaced() {
            let mut o = crate::conn::stage_reply(ctx, reply, false, p).await;
            o.upstream = Some(addr);
            return o;
        }
        return Outcome {
            status: r.status,
            bytes: r.bytes,
            keep: r.client_ok,
            error: if r.complete {
                None
            } else {
                Some("upstream-closed-mid-body")
            },
            upstream: Some(addr),
        };
    }

    // A request with a body: send it while reading the response, so an upstream that answers
    // early (or echoes) never deadlocks against a full socket buffer.
    if !send_continue(ctx).await {
        w.give_xfer(hb);
        w.give_xfer(ubuf);
        return Outcome::closed(400, Some("client-closed"));
    }
    let mut alt_svc = Vec::new();
    crate::h3::alt_svc(ctx.stream.as_ref(), &mut alt_svc);
    let Some(client) = ctx.stream.take() else {
        return Outcome::closed(400, None);
    };
    let (mut crd, mut cwr) = client.into_split();
    let (mut urd, mut uwr) = us.into_split();
    let mut reader = BodyReader::new(ctx.framing, ctx.policy.body_bytes);
    let chunked_up = matches!(ctx.framing, Framing::Chunked);
    let head_sent = Cell::new(false);
    let body_done = Cell::new(false);
    let http10 = ctx.http10;
    let mut send_err: Option<SendErr> = None;
    let mut relay_res: Option<Result<Relay, UpErr>> = None;
    {
        let buf = &mut *ctx.buf;
        let pos = &mut ctx.pos;
        let rhead = &mut *ctx.rhead;
        let ex = &mut *ctx.ex;
        let send = async {
            let r = send_body(
                &mut reader,
                &mut crd,
                buf,
                pos,
                &mut uwr,
                chunked_up,
                client_steps,
            )
            .await;
            if r.is_ok() {
                body_done.set(true);
            }
            r
        };
        let recv = async {
            let limit = Limit::new(&w.stop, def.response_timeout);
            let mut interims = 0;
            while read_response_head(
                &mut urd,
                &mut ubuf,
                rhead,
                rctx,
                limit,
                !http10,
                &mut interims,
            )
            .await?
                == Head::Interim
            {
                send_interim(&mut cwr, &mut ubuf, rhead, client_steps.step()).await?;
            }
            // A request whose body streams is never tunnelled: a 101 to it is invalid.
            check_switch(rhead, &ubuf, None)?;
            guard.head_arrived();
            Ok(relay(
                &mut urd,
                &mut ubuf,
                rhead,
                &mut cwr,
                &mut hb,
                &route.response_headers,
                &route.stages,
                ex,
                close_wanted,
                http10,
                PerStep::new(&w.stop, def.response_timeout),
                client_steps,
                &head_sent,
                &body_done,
                None,
                &alt_svc,
            )
            .await)
        };
        let mut send = pin!(send);
        let mut recv = pin!(recv);
        let mut send_done = false;
        poll_fn(|cx| {
            if !send_done {
                if let Poll::Ready(r) = send.as_mut().poll(cx) {
                    send_done = true;
                    if let Err(e) = r {
                        send_err = Some(e);
                    }
                }
            }
            // A client that stops sending its body mid-way ends the exchange.
            if matches!(send_err, Some(SendErr::Client(_))) {
                return Poll::Ready(());
            }
            if relay_res.is_none() {
                if let Poll::Ready(r) = recv.as_mut().poll(cx) {
                    relay_res = Some(r);
                }
            }
            if relay_res.is_some() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }
    let sent_all = body_done.get();
    let reunited = crd.reunite(cwr).ok();
    let upstream_back = urd.reunite(uwr);
    match (relay_res, send_err) {
        (_, Some(SendErr::Client(e))) if !head_sent.get() => {
            *ctx.stream = reunited;
            w.give_xfer(hb);
            w.give_xfer(ubuf);
            let mut o = body_failure(ctx, e).await;
            o.upstream = Some(addr);
            o.keep = false;
            o
        }
        (Some(Ok(r)), _) => {
            record(state, guard.idx, r.status < 500, w.now_ms());
            if r.status >= 500 || !r.complete {
                guard.outcome.set(BalanceOutcome::Failure);
            }
            if r.upstream_failed {
                note_failure(
                    state,
                    def,
                    guard.idx,
                    Some(FailKind::ClosedMidBody),
                    w.now_ms(),
                );
            }
            if let Some(u) = upstream_back {
                if sent_all {
                    release(&w, def.servers[guard.idx].pool_key(), u, &r, def.keepalive);
                }
            }
            *ctx.stream = reunited;
            w.give_xfer(hb);
            w.give_xfer(ubuf);
            if let Some(reply) = ctx.ex.take_replaced() {
                // What of the request body was not sent stays unread: the connection closes
                // after the reply.
                let mut o = crate::conn::stage_reply(ctx, reply, !sent_all, p).await;
                o.upstream = Some(addr);
                return o;
            }
            Outcome {
                status: r.status,
                bytes: r.bytes,
                keep: r.client_ok && sent_all,
                error: if r.complete {
                    None
                } else {
                    Some("upstream-closed-mid-body")
                },
                upstream: Some(addr),
            }
        }
        (Some(Err(e)), _) => {
            if !matches!(e, UpErr::ClientGone) {
                record(state, guard.idx, false, w.now_ms());
                guard.outcome.set(BalanceOutcome::Failure);
            }
            note_failure(state, def, guard.idx, e.kind(), w.now_ms());
            *ctx.stream = reunited;
            w.give_xfer(hb);
            w.give_xfer(ubuf);
            let mut o = send_class(ctx, e.class(), !sent_all).await;
            o.upstream = Some(addr);
            o.keep = false;
            o
        }
        (None, _) => {
            w.give_xfer(hb);
            w.give_xfer(ubuf);
            Outcome::closed(502, Some("client-closed"))
        }
    }
}

/// How a client watch ended.
enum Watched {
    /// The client closed or reset its connection.
    Gone,
    /// The watch stopped with no read posted (cancelled, buffer full, or the worker is
    /// draining): the response is awaited as usual.
    Quiet,
}

/// While a slow upstream thinks, notice a client that goes away (so the upstream connection is
/// released at once, not at the response timeout). Bytes the client pipelines meanwhile are kept
/// in its buffer. The read is tied to a canceller left in `posted`, which the caller cancels
/// (and then awaits this future) when the response head arrives first: on io_uring a posted
/// read holds a buffer and may complete with data at any moment, and what it took is appended
/// to `buf` like any other bytes. Fast responses never pay for the watch: it starts after one
/// worker tick.
async fn watch_client(
    w: &Worker,
    c: &mut crate::stream::ClientStream,
    buf: &mut Vec<u8>,
    max: usize,
    posted: &RefCell<Option<monoio::io::Canceller>>,
) -> Watched {
    use monoio::io::CancelableAsyncReadRent;
    if w.stop.wait_for(Duration::from_millis(1)).await == Woken::Stopped {
        // Draining: the in-flight request is let finish.
        return Watched::Quiet;
    }
    let cancel = monoio::io::Canceller::new();
    let handle = cancel.handle();
    *posted.borrow_mut() = Some(cancel);
    let mut small = Vec::with_capacity(1024);
    loop {
        if buf.len() >= max {
            posted.borrow_mut().take();
            return Watched::Quiet;
        }
        small.clear();
        let (res, back) = c.cancelable_read(small, handle.clone()).await;
        small = back;
        match res {
            Ok(0) => return Watched::Gone,
            Ok(_) => buf.extend_from_slice(&small),
            // ECANCELED: the response head arrived and the caller cancelled the read.
            Err(e) if e.raw_os_error() == Some(125) => return Watched::Quiet,
            Err(_) => return Watched::Gone,
        }
    }
}

enum SendErr {
    Client(BodyErr),
    Upstream,
}

async fn send_body<R: AsyncReadRent, W: AsyncWriteRent>(
    reader: &mut BodyReader,
    client: &mut R,
    buf: &mut Vec<u8>,
    pos: &mut usize,
    upstream: &mut W,
    chunked: bool,
    limit: PerStep<'_>,
) -> Result<(), SendErr> {
    let mut out = Vec::with_capacity(crate::body::XFER + 64);
    loop {
        out.clear();
        let more = reader
            .pull(client, buf, pos, &mut out, chunked, limit.step())
            .await
            .map_err(SendErr::Client)?;
        if !more && chunked {
            out.extend_from_slice(bext_http1::LAST_CHUNK);
        }
        if !out.is_empty() && write_all(upstream, &mut out, limit.step()).await.is_err() {
            return Err(SendErr::Upstream);
        }
        if !more {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::CoreUpstreams;
    use bext_ir as ir;

    fn state(edit: impl FnOnce(&mut ir::Upstream)) -> CoreUpstreams {
        let p = crate::testing::pipeline_with(&[("127.0.0.1:1", 1), ("127.0.0.1:2", 1)], 1, edit);
        CoreUpstreams::build(&p, 1, None)
    }

    /// The client address as the forwarding fields carry it: what `Display` writes.
    #[test]
    fn ip_text_writes_what_display_does() {
        let ips: [std::net::IpAddr; 7] = [
            "0.0.0.0".parse().unwrap(),
            "127.0.0.1".parse().unwrap(),
            "10.20.100.255".parse().unwrap(),
            "255.255.255.255".parse().unwrap(),
            "9.99.199.9".parse().unwrap(),
            "::1".parse().unwrap(),
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".parse().unwrap(),
        ];
        for ip in ips {
            let mut buf = [0; 39];
            assert_eq!(ip_text(ip, &mut buf), ip.to_string().as_bytes());
        }
    }

    /// Consecutive failures eject a server from this core's balancer (and count), a success
    /// in between resets the streak.
    #[test]
    fn failures_feed_passive_ejection() {
        let set = state(|u| {
            u.passive = Some(ir::PassiveHealth {
                consecutive_failures: 2,
                base_ejection_ms: 1_000,
                max_ejection_ms: 2_000,
                at: ir::Loc::default(),
            })
        });
        let st = &set.list[0];
        // (server 1 result, ejected after it)
        let steps = [(false, false), (true, false), (false, false), (false, true)];
        for (i, (ok, ejected)) in steps.into_iter().enumerate() {
            record(st, 1, ok, 10);
            let s = st.borrow();
            assert_eq!(
                s.passive.as_ref().unwrap().is_ejected(1),
                ejected,
                "step {i}"
            );
        }
        let picks: Vec<usize> = (0..4)
            .map(|_| {
                let s = &mut *st.borrow_mut();
                s.balancer
                    .pick(&Default::default(), &s.health, None)
                    .unwrap()
            })
            .collect();
        assert_eq!(picks, vec![0; 4], "an ejected server gets nothing");
        let m = st.borrow().metrics.clone();
        assert_eq!((m.failures, m.servers[1].ejections), (3, 1));
        // The back-off over, the worker's tick makes it a trial again.
        set.expire_ejections(10 + 1_000);
        let s = &mut *st.borrow_mut();
        let next: Vec<usize> = (0..2)
            .map(|_| {
                s.balancer
                    .pick(&Default::default(), &s.health, None)
                    .unwrap()
            })
            .collect();
        assert!(next.contains(&1), "{next:?}");
    }

    /// Which failures are retried: only listed ones, only for requests safe to repeat, only
    /// within the budget (3 retries with no request in the window, then 10 % of requests),
    /// except refused connections, which take nothing from the budget.
    #[test]
    fn retries_follow_policy_safety_and_budget() {
        let set = state(|u| {
            u.retry = Some(ir::Retry {
                attempts: 2,
                on: vec![ir::RetryOn::ConnectError, ir::RetryOn::Status(503)],
                budget_percent: 10,
                at: ir::Loc::default(),
            })
        });
        let st = &set.list[0];
        let get = |attempt| RequestFacts {
            idempotent: true,
            body_bytes_sent: 0,
            attempt,
        };
        let half_sent_post = RequestFacts {
            idempotent: false,
            body_bytes_sent: 10,
            attempt: 1,
        };
        let table: &[(RequestFacts, Option<Failure>, bool)] = &[
            (get(1), None, false),
            (get(1), Some(Failure::Timeout), false),
            (get(1), Some(Failure::Status(502)), false),
            (half_sent_post, Some(Failure::ConnectError), false),
            (get(3), Some(Failure::ConnectError), false),
            (get(1), Some(Failure::ConnectError), true),
            (get(2), Some(Failure::Status(503)), true),
            (get(1), Some(Failure::Status(503)), true),
            (get(1), Some(Failure::Status(503)), true),
            // The budget's floor of 3 is spent.
            (get(1), Some(Failure::Status(503)), false),
            // A refused connection is still retried.
            (get(1), Some(Failure::ConnectError), true),
        ];
        for (i, (facts, failure, want)) in table.iter().enumerate() {
            assert_eq!(retry_allowed(st, facts, *failure, 5), *want, "case {i}");
        }
        let m = st.borrow().metrics.clone();
        assert_eq!((m.retries, m.budget_exhausted), (5, 1));
        // Without a retry block nothing is retried.
        let none = state(|_| {});
        assert!(!retry_allowed(
            &none.list[0],
            &get(1),
            Some(Failure::ConnectError),
            5
        ));
    }

    #[test]
    fn replaced_fields_are_recognised_in_any_case() {
        for n in [
            &b"Content-Length"[..],
            b"EXPECT",
            b"x-request-id",
            b"Upgrade",
        ] {
            assert!(replaced_upstream(n));
        }
        for n in [&b"accept"[..], b"x-forwarded-port", b"host"] {
            assert!(!replaced_upstream(n));
        }
    }
}
