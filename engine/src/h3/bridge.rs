//! One HTTP/3 request: its fields checked and written as a canonical HTTP/1.1 head, its DATA
//! frames as the body, the connection code run over the pair (`pipe.rs`), and the HTTP/1.1
//! response it writes turned back into HEADERS and DATA frames.
//!
//! What HTTP/3 forbids and h3 does not check itself is refused here as a malformed request
//! (RFC 9114 §4.1.2: a stream error `H3_MESSAGE_ERROR`): connection-specific fields (§4.2),
//! `TE` other than `trailers`, a `Host` that disagrees with `:authority` (§4.3.1), and DATA
//! that adds up to more or less than the request's `Content-Length` (§4.1.2). Pseudo-header
//! rules (missing, repeated, unknown or misplaced pseudo-headers) are h3's, answered with the
//! same code. Everything else the HTTP/1.1 path refuses (limits, tokens, smuggling rules) is
//! refused by the same parser, with the same problem+json answers.

use super::pipe::{self, Pipe, QuicStream, Shared};
use crate::worker::Worker;
use bext_http1::{Chunk, ChunkedDecoder, Framing, Parse, ResponseContext, ResponseHead};
use bytes::{Buf, Bytes};
use h3::error::Code;
use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;

type Conn = h3_quinn::Connection;
type SendHalf = h3::server::RequestStream<h3_quinn::SendStream<Bytes>, Bytes>;
type RecvHalf = h3::server::RequestStream<h3_quinn::RecvStream, Bytes>;

/// Fields that name or shape a single HTTP/1.1 connection, malformed in HTTP/3 requests and
/// never sent in HTTP/3 responses.
const CONNECTION_SPECIFIC: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];

/// Why a request is malformed (the stream is reset with `H3_MESSAGE_ERROR`).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Malformed {
    ConnectionSpecific,
    Te,
    HostMismatch,
    ContentLength,
}

/// The request head as HTTP/1.1 bytes (without the framing field and the final CRLF, which
/// depend on whether a body follows), and the declared Content-Length.
pub(crate) fn head_of(req: &http::Request<()>) -> Result<(Vec<u8>, Option<u64>), Malformed> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(req.method().as_str().as_bytes());
    out.push(b' ');
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let authority = req.uri().authority().map(|a| a.as_str());
    let mut declared = None;
    let mut cookies: Vec<&[u8]> = Vec::new();
    let mut host_seen = false;
    for (name, value) in req.headers() {
        let n = name.as_str();
        if CONNECTION_SPECIFIC.contains(&n) {
            return Err(Malformed::ConnectionSpecific);
        }
        if n == "te" && !value.as_bytes().eq_ignore_ascii_case(b"trailers") {
            return Err(Malformed::Te);
        }
        if n == "host" {
            if authority.is_some_and(|a| !a.as_bytes().eq_ignore_ascii_case(value.as_bytes())) {
                return Err(Malformed::HostMismatch);
            }
            if authority.is_some() || host_seen {
                continue;
            }
            host_seen = true;
        }
        if n == "cookie" {
            // RFC 9114 §4.2.1: split cookie fields are joined for HTTP/1.1.
            cookies.push(value.as_bytes());
            continue;
        }
        if n == "content-length" {
            let v = std::str::from_utf8(value.as_bytes())
                .ok()
                .and_then(|v| v.parse::<u64>().ok());
            match (v, declared) {
                (Some(v), None) => declared = Some(v),
                (Some(v), Some(d)) if v == d => continue,
                _ => return Err(Malformed::ContentLength),
            }
        }
        out.extend_from_slice(n.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if let Some(a) = authority {
        out.extend_from_slice(b"host: ");
        out.extend_from_slice(a.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !cookies.is_empty() {
        out.extend_from_slice(b"cookie: ");
        for (i, c) in cookies.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b"; ");
            }
            out.extend_from_slice(c);
        }
        out.extend_from_slice(b"\r\n");
    }
    Ok((out, declared))
}

/// Serve one request stream of a connection.
pub(crate) async fn request(
    w: Rc<Worker>,
    resolver: h3::server::RequestResolver<Conn, Bytes>,
    peer: SocketAddr,
    early: &super::Early,
) {
    // A malformed field section (pseudo-headers) is answered by h3 with H3_MESSAGE_ERROR.
    let Ok((req, stream)) = resolver.resolve_request().await else {
        return;
    };
    let (mut send, mut recv) = stream.split();
    let (mut head, declared) = match head_of(&req) {
        Ok(h) => h,
        Err(_) => {
            refuse(&mut send, &mut recv);
            return;
        }
    };
    // A request in 0-RTT data may be a replay: served only for safe methods, and marked for
    // the origin (RFC 8470 §5.1); any other waits for the handshake (425, §5.2).
    if early.now() {
        if !matches!(
            *req.method(),
            http::Method::GET | http::Method::HEAD | http::Method::OPTIONS
        ) {
            too_early(&mut send, &mut recv).await;
            return;
        }
        head.extend_from_slice(b"early-data: 1\r\n");
    }
    let is_head = req.method() == http::Method::HEAD;
    // Framing of the HTTP/1.1 request: the declared length, none when the client ended the
    // stream with its fields, chunked otherwise (DATA of unannounced length).
    let mut first: Option<Bytes> = None;
    let chunked = match declared {
        Some(_) => false,
        None => match recv.recv_data().await {
            Ok(Some(mut b)) => {
                first = Some(b.copy_to_bytes(b.remaining()));
                true
            }
            Ok(None) => false,
            Err(_) => return,
        },
    };
    if chunked {
        head.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    head.extend_from_slice(b"\r\n");
    let pipe: Shared = Rc::new(RefCell::new(Pipe::default()));
    pipe.borrow_mut().up.bytes = head;
    // The body, when there is one, moves in a task of its own, at the pace of the client's
    // DATA; a request whose stream ended with its fields has none to wait for. The request
    // does not wait for that task: a body left unread is stopped from there (see `unread`).
    if declared.is_none() && !chunked {
        pipe.borrow_mut().up.finish();
    } else {
        let pipe = pipe.clone();
        monoio::spawn(async move { request_body(&pipe, recv, declared, chunked, first).await });
    }
    // The connection code runs in a task of its own (its future is large: moved once into
    // its task rather than into this one's), the response here.
    let conn = {
        let (w, pipe) = (w.clone(), pipe.clone());
        monoio::spawn(async move {
            crate::conn::serve_quic(w, QuicStream::new(pipe.clone(), peer), peer).await;
            let mut p = pipe.borrow_mut();
            p.down.finish();
            p.up.abandon();
        })
    };
    let answered = response(&pipe, &mut send, is_head).await;
    let code = if pipe.borrow().malformed {
        Code::H3_MESSAGE_ERROR
    } else {
        Code::H3_INTERNAL_ERROR
    };
    if !answered {
        send.stop_stream(code);
    }
    // The response is complete (or failed): the rest of the request body, if any, will not
    // be read (the body task stops it), and the connection code ends on its own.
    {
        let mut p = pipe.borrow_mut();
        p.stop_code = (!answered).then_some(code);
        p.up.abandon();
        p.down.abandon();
    }
    conn.await;
}

/// `425 Too Early` (problem+json): the client repeats the request once its handshake is
/// complete (RFC 8470 §5.2). The body it may have started is not read.
async fn too_early(send: &mut SendHalf, recv: &mut RecvHalf) {
    recv.stop_sending(Code::H3_NO_ERROR);
    let body = crate::error::problem_body("too-early", "Too Early", 425, "");
    let mut resp = http::Response::new(());
    *resp.status_mut() = http::StatusCode::from_u16(425).expect("425 is a status");
    let fields = resp.headers_mut();
    fields.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/problem+json"),
    );
    fields.insert(http::header::CONTENT_LENGTH, body.len().into());
    fields.insert(http::header::SERVER, http::HeaderValue::from_static("bext"));
    if send.send_response(resp).await.is_ok() && send.send_data(Bytes::from(body)).await.is_ok() {
        let _ = send.finish().await;
    }
}

fn refuse(send: &mut SendHalf, recv: &mut RecvHalf) {
    send.stop_stream(Code::H3_MESSAGE_ERROR);
    recv.stop_sending(Code::H3_MESSAGE_ERROR);
}

/// Move the request's DATA into the pipe (chunked when its length was not declared). A
/// length that disagrees with the declared one resets the stream (`H3_MESSAGE_ERROR`) and
/// leaves the body short, which the connection code reads as a client gone mid-body. Once the
/// connection code stops reading (it answered without the body, or the response is complete),
/// the rest is left unread: the client is asked to stop sending at its next DATA (or at once
/// when the pipe is full) instead of being read to its end.
async fn request_body(
    pipe: &Shared,
    mut recv: RecvHalf,
    declared: Option<u64>,
    chunked: bool,
    first: Option<Bytes>,
) {
    let mut total: u64 = 0;
    let mut next = first;
    loop {
        let data = match next.take() {
            Some(b) => b,
            None => {
                // A read in flight is never cancelled: h3-quinn's stream is inside it until it
                // completes, and stopping the stream needs it back. So the reader's departure
                // is seen between reads (at the client's next DATA, or when the pipe is full).
                if pipe.borrow().up.gone {
                    return unread(pipe, recv);
                }
                match recv.recv_data().await {
                    Ok(Some(mut b)) => b.copy_to_bytes(b.remaining()),
                    Ok(None) => {
                        if declared.is_some_and(|d| d != total) {
                            return malformed(pipe, recv);
                        }
                        // Trailers are read to the stream's end and dropped, as over HTTP/1.1
                        // (RFC 9110 §6.5.1): never merged into the head nor forwarded.
                        let _ = recv.recv_trailers().await;
                        if chunked {
                            pipe::write_to(pipe, pipe::up, bext_http1::LAST_CHUNK).await;
                        }
                        pipe.borrow_mut().up.finish();
                        return;
                    }
                    // The client reset its stream: the body ends short.
                    Err(_) => {
                        pipe.borrow_mut().up.finish();
                        return;
                    }
                }
            }
        };
        total += data.len() as u64;
        if declared.is_some_and(|d| total > d) {
            return malformed(pipe, recv);
        }
        if data.is_empty() {
            continue;
        }
        let mut framed = Vec::with_capacity(data.len() + 16);
        if chunked {
            framed.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
        }
        framed.extend_from_slice(&data);
        if chunked {
            framed.extend_from_slice(b"\r\n");
        }
        if !pipe::write_to(pipe, pipe::up, &framed).await {
            return unread(pipe, recv);
        }
    }
}

/// The connection code stopped reading the body: it ends here for it, and the client is
/// asked to stop sending the rest: with `H3_NO_ERROR` after a complete response (RFC 9114
/// §4.1: it keeps the response), with the reset's code otherwise.
fn unread(pipe: &Shared, mut recv: RecvHalf) {
    let code = {
        let mut p = pipe.borrow_mut();
        p.up.finish();
        p.stop_code.unwrap_or(Code::H3_NO_ERROR)
    };
    recv.stop_sending(code);
}

/// DATA disagreeing with the declared length: the body ends short for the connection code
/// (which answers nothing), and the stream is reset as malformed both ways.
fn malformed(pipe: &Shared, mut recv: RecvHalf) {
    recv.stop_sending(Code::H3_MESSAGE_ERROR);
    let mut p = pipe.borrow_mut();
    p.malformed = true;
    p.up.finish();
}

/// Take the HTTP/1.1 response the connection code writes and send it as HTTP/3. False when
/// no complete response could be sent (the stream is then reset).
async fn response(pipe: &Shared, send: &mut SendHalf, is_head: bool) -> bool {
    let mut buf: Vec<u8> = Vec::new();
    let mut rhead = ResponseHead::default();
    let limits = bext_http1::Limits {
        max_target: 0,
        max_head: 64 * 1024,
        max_headers: 256,
    };
    let ctx = ResponseContext {
        request_was_head: is_head,
        request_was_connect: false,
    };
    // The head (interim 1xx heads, `100 Continue`, are skipped: HTTP/3 clients do not wait
    // for them before sending a body).
    loop {
        if !buf.is_empty() {
            match bext_http1::parse_response(&buf, &limits, ctx, &mut rhead) {
                Ok(Parse::Complete) if rhead.status < 200 => {
                    buf.drain(..rhead.head_len);
                    continue;
                }
                Ok(Parse::Complete) => break,
                Ok(Parse::Partial) => {}
                Err(_) => return false,
            }
        }
        if !take(pipe, &mut buf).await {
            return false;
        }
    }
    let Some(resp) = response_head(&buf, &rhead) else {
        return false;
    };
    if send.send_response(resp).await.is_err() {
        return false;
    }
    buf.drain(..rhead.head_len);
    let framing = rhead.framing.unwrap_or(Framing::None);
    let ok = match framing {
        Framing::None => true,
        Framing::ContentLength(mut left) => loop {
            if left == 0 {
                break true;
            }
            if buf.is_empty() && !take(pipe, &mut buf).await {
                break false;
            }
            let n = (buf.len() as u64).min(left) as usize;
            let out = Bytes::copy_from_slice(&buf[..n]);
            buf.drain(..n);
            left -= n as u64;
            if send.send_data(out).await.is_err() {
                break false;
            }
        },
        Framing::Chunked => {
            let mut dec = ChunkedDecoder::new();
            'body: loop {
                let mut used = 0;
                loop {
                    match dec.decode(&buf[used..]) {
                        Ok((n, Chunk::Data(r))) => {
                            let out = Bytes::copy_from_slice(&buf[used + r.start..used + r.end]);
                            used += n;
                            if send.send_data(out).await.is_err() {
                                break 'body false;
                            }
                        }
                        Ok((n, Chunk::NeedMore)) => {
                            used += n;
                            break;
                        }
                        Ok((_, Chunk::Done)) => break 'body true,
                        Err(_) => break 'body false,
                    }
                }
                buf.drain(..used);
                if !take(pipe, &mut buf).await {
                    break false;
                }
            }
        }
        Framing::CloseDelimited => loop {
            if !buf.is_empty() {
                let out = Bytes::from(std::mem::take(&mut buf));
                if send.send_data(out).await.is_err() {
                    break false;
                }
            }
            if !take(pipe, &mut buf).await {
                break true;
            }
        },
    };
    ok && send.finish().await.is_ok()
}

/// Append what the connection code wrote; false when it is done and nothing is left.
async fn take(pipe: &Shared, buf: &mut Vec<u8>) -> bool {
    if !pipe::readable(pipe, pipe::down).await {
        return false;
    }
    let mut p = pipe.borrow_mut();
    let d = &mut p.down;
    let n = d.pending();
    buf.extend_from_slice(&d.bytes[d.pos..]);
    d.consumed(n);
    true
}

/// The `Content-Type` values QPACK's static table holds (RFC 9204 Appendix A) that differ
/// from a common spelling only by the optional whitespace after `;` (RFC 9110 §5.6.6): sent
/// in the table's spelling, such a field is one byte of the block instead of a
/// Huffman-coded literal.
const TABLE_CONTENT_TYPES: &[(&[u8], &str)] = &[
    (b"text/plain; charset=utf-8", "text/plain;charset=utf-8"),
    (b"text/html;charset=utf-8", "text/html; charset=utf-8"),
];

fn table_spelling(name: &http::HeaderName, value: &[u8]) -> Option<&'static str> {
    if name != http::header::CONTENT_TYPE {
        return None;
    }
    TABLE_CONTENT_TYPES
        .iter()
        .find(|(spelling, _)| spelling.eq_ignore_ascii_case(value))
        .map(|&(_, table)| table)
}

/// The HTTP/3 response head of an HTTP/1.1 one: the status and the fields, less those that
/// belong to one HTTP/1.1 connection (and those its `Connection` field names). The values
/// share one copy of the head (a slice each) rather than a copy apiece.
fn response_head(buf: &[u8], rhead: &ResponseHead) -> Option<http::Response<()>> {
    let head = Bytes::copy_from_slice(&buf[..rhead.head_len]);
    let mut resp = http::Response::new(());
    *resp.status_mut() = http::StatusCode::from_u16(rhead.status).ok()?;
    let fields = resp.headers_mut();
    fields.reserve(rhead.headers.len());
    for h in &rhead.headers {
        let name = h.name.get(buf);
        let hop = CONNECTION_SPECIFIC
            .iter()
            .any(|c| c.as_bytes().eq_ignore_ascii_case(name))
            || rhead
                .connection_tokens
                .iter()
                .any(|t| t.get(buf).eq_ignore_ascii_case(name));
        if hop {
            continue;
        }
        // Lower-cased by `from_bytes`, as HTTP/3 requires.
        let name = http::HeaderName::from_bytes(name).ok()?;
        let value = match table_spelling(&name, h.value.get(buf)) {
            Some(v) => http::HeaderValue::from_static(v),
            None => {
                let value = head.slice(h.value.start as usize..h.value.end as usize);
                http::HeaderValue::from_maybe_shared(value).ok()?
            }
        };
        fields.append(name, value);
    }
    Some(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(fields: &[(&str, &str)]) -> http::Request<()> {
        let mut b = http::Request::builder()
            .method("POST")
            .uri("https://a.example/p?q=1");
        for (n, v) in fields {
            b = b.header(*n, *v);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn head_is_canonical_http11_with_host_from_authority() {
        let (h, cl) = head_of(&req(&[("content-length", "5"), ("x-a", "b")])).unwrap();
        assert_eq!(
            String::from_utf8(h).unwrap(),
            "POST /p?q=1 HTTP/1.1\r\ncontent-length: 5\r\nx-a: b\r\nhost: a.example\r\n"
        );
        assert_eq!(cl, Some(5));
    }

    #[test]
    fn split_cookies_are_joined() {
        let (h, _) = head_of(&req(&[("cookie", "a=1"), ("cookie", "b=2")])).unwrap();
        assert!(String::from_utf8(h)
            .unwrap()
            .ends_with("cookie: a=1; b=2\r\n"));
    }

    #[test]
    fn malformed_fields_are_refused() {
        let table: &[(&[(&str, &str)], Malformed)] = &[
            (&[("connection", "close")], Malformed::ConnectionSpecific),
            (
                &[("transfer-encoding", "chunked")],
                Malformed::ConnectionSpecific,
            ),
            (&[("keep-alive", "5")], Malformed::ConnectionSpecific),
            (&[("upgrade", "websocket")], Malformed::ConnectionSpecific),
            (&[("proxy-connection", "x")], Malformed::ConnectionSpecific),
            (&[("te", "gzip")], Malformed::Te),
            (&[("host", "b.example")], Malformed::HostMismatch),
            (&[("content-length", "x")], Malformed::ContentLength),
            (
                &[("content-length", "1"), ("content-length", "2")],
                Malformed::ContentLength,
            ),
        ];
        for (fields, want) in table {
            assert_eq!(head_of(&req(fields)).unwrap_err(), *want, "{fields:?}");
        }
        assert!(head_of(&req(&[("te", "trailers"), ("host", "a.example")])).is_ok());
    }

    #[test]
    fn response_drops_connection_fields() {
        let raw = b"HTTP/1.1 200 OK\r\nConnection: close, x-hop\r\nX-Hop: 1\r\nKeep-Alive: 5\r\nContent-Length: 2\r\nX-Keep: y\r\n\r\nok";
        let mut rh = ResponseHead::default();
        let ctx = ResponseContext {
            request_was_head: false,
            request_was_connect: false,
        };
        let parsed = bext_http1::parse_response(raw, &Default::default(), ctx, &mut rh);
        assert_eq!(parsed, Ok(Parse::Complete));
        let r = response_head(raw, &rh).unwrap();
        assert_eq!(r.status(), 200);
        let names: Vec<&str> = r.headers().keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["content-length", "x-keep"]);
    }

    /// A `Content-Type` QPACK's static table holds in another spelling is sent in the
    /// table's; any other value as it came.
    #[test]
    fn content_types_take_the_static_tables_spelling() {
        let ctx = ResponseContext {
            request_was_head: false,
            request_was_connect: false,
        };
        for (sent, want) in [
            ("text/plain; charset=utf-8", "text/plain;charset=utf-8"),
            ("Text/HTML;charset=UTF-8", "text/html; charset=utf-8"),
            ("text/plain;  charset=utf-8", "text/plain;  charset=utf-8"),
            ("application/json", "application/json"),
        ] {
            let raw =
                format!("HTTP/1.1 200 OK\r\nContent-Type: {sent}\r\nContent-Length: 0\r\n\r\n");
            let mut rh = ResponseHead::default();
            let parsed =
                bext_http1::parse_response(raw.as_bytes(), &Default::default(), ctx, &mut rh);
            assert_eq!(parsed, Ok(Parse::Complete));
            let r = response_head(raw.as_bytes(), &rh).unwrap();
            assert_eq!(r.headers()["content-type"], want, "{sent}");
        }
    }
}
