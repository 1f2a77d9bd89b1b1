//! Response head parser: status line, framing per RFC 9112 §6.3, rejections.

use bext_http1::{
    parse_response, ErrorKind, Framing, Limits, Parse, ResponseContext, ResponseHead, Version,
};

const GET: ResponseContext = ResponseContext {
    request_was_head: false,
    request_was_connect: false,
};
const HEAD: ResponseContext = ResponseContext {
    request_was_head: true,
    request_was_connect: false,
};
const CONNECT: ResponseContext = ResponseContext {
    request_was_head: false,
    request_was_connect: true,
};

fn parse(buf: &[u8], ctx: ResponseContext) -> Result<(Parse, ResponseHead), ErrorKind> {
    let mut h = ResponseHead::default();
    parse_response(buf, &Limits::default(), ctx, &mut h)
        .map(|p| (p, h))
        .map_err(|e| e.kind)
}

#[test]
fn framing_per_rfc9112_6_3() {
    // (input, context, framing, keep_alive)
    let cases: &[(&[u8], ResponseContext, Framing, bool)] = &[
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", GET, Framing::ContentLength(5), true),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", HEAD, Framing::None, true),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", GET, Framing::Chunked, true),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", HEAD, Framing::None, true),
        (b"HTTP/1.1 200 OK\r\n\r\n", GET, Framing::CloseDelimited, false),
        (b"HTTP/1.1 204 No Content\r\n\r\n", GET, Framing::None, true),
        (b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", GET, Framing::None, true),
        (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n", GET, Framing::None, true),
        (b"HTTP/1.1 100 Continue\r\n\r\n", GET, Framing::None, true),
        (b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n", GET, Framing::None, true),
        (b"HTTP/1.1 200 Connection established\r\n\r\n", CONNECT, Framing::None, true),
        (b"HTTP/1.1 407 Proxy Auth\r\nContent-Length: 3\r\n\r\n", CONNECT, Framing::ContentLength(3), true),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n", GET, Framing::ContentLength(5), false),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n", GET, Framing::ContentLength(5), false),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\n", GET, Framing::ContentLength(5), true),
        (b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", GET, Framing::ContentLength(0), true),
        (b"HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n", GET, Framing::ContentLength(0), true),
        (b"HTTP/1.1 599 Custom\r\nContent-Length: 0\r\n\r\n", GET, Framing::ContentLength(0), true),
    ];
    for &(buf, ctx, framing, keep_alive) in cases {
        let name = String::from_utf8_lossy(buf);
        let (p, h) = parse(buf, ctx).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(p, Parse::Complete, "{name}");
        assert_eq!(h.framing, Some(framing), "{name}");
        assert_eq!(h.keep_alive, keep_alive, "{name}");
        assert_eq!(h.head_len, buf.len(), "{name}");
    }
}

#[test]
fn status_line_parts() {
    let buf = b"HTTP/1.0 404 Not Found Here\r\nX-A: b\r\n\r\n";
    let (_, h) = parse(buf, GET).unwrap();
    assert_eq!(h.version, Some(Version::Http10));
    assert_eq!(h.status, 404);
    assert_eq!(h.reason.get(buf), b"Not Found Here");
    assert_eq!(h.headers.len(), 1);
    assert_eq!(h.header(buf, b"x-a"), Some(&b"b"[..]));
}

/// Found by the `response` fuzz target: a reason phrase with obs-text is valid (RFC 9112 §4)
/// and kept byte for byte (httparse reports it as empty, which is why the target compares only
/// ASCII reasons).
#[test]
fn reason_phrase_with_obs_text_is_kept() {
    let cases: &[(&[u8], &[u8])] = &[
        (b"HTTP/1.0 200 O\xc9\xa3#\r\nX: gzip\r\n\r\n", b"O\xc9\xa3#"),
        (
            b"HTTP/1.1 101 S\xf7 101 Switching\r\n\r\n",
            b"S\xf7 101 Switching",
        ),
        (b"HTTP/1.1 200 a\tb\r\n\r\n", b"a\tb"),
    ];
    for &(buf, reason) in cases {
        let (_, h) = parse(buf, GET).unwrap();
        assert_eq!(h.reason.get(buf), reason);
    }
}

#[test]
fn rejected_responses() {
    let cases: &[(&str, &[u8])] = &[
        ("HTTP/2.0", b"HTTP/2.0 200 OK\r\n\r\n"),
        ("lowercase", b"http/1.1 200 OK\r\n\r\n"),
        ("two digit status", b"HTTP/1.1 20 OK\r\n\r\n"),
        ("four digit status", b"HTTP/1.1 2000 OK\r\n\r\n"),
        ("status 099", b"HTTP/1.1 099 OK\r\n\r\n"),
        ("status 600", b"HTTP/1.1 600 OK\r\n\r\n"),
        ("no space after version", b"HTTP/1.1200 OK\r\n\r\n"),
        ("two spaces after version", b"HTTP/1.1  200 OK\r\n\r\n"),
        ("leading CRLF", b"\r\nHTTP/1.1 200 OK\r\n\r\n"),
        (
            "bare LF status line",
            b"HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",
        ),
        ("NUL in reason", b"HTTP/1.1 200 O\0K\r\n\r\n"),
        (
            "CL and TE",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        ),
        (
            "CL and TE on 204",
            b"HTTP/1.1 204 OK\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n",
        ),
        (
            "duplicate CL",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
        ),
        (
            "invalid CL",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\n",
        ),
        (
            "TE gzip",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        ),
        (
            "TE gzip, chunked",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        ),
        (
            "TE chunked, chunked",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
        ),
        (
            "TE in HTTP/1.0",
            b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        ),
        ("obs-fold", b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n"),
        ("space before colon", b"HTTP/1.1 200 OK\r\nX : a\r\n\r\n"),
        ("bare CR in field", b"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n"),
        (
            "invalid Connection",
            b"HTTP/1.1 200 OK\r\nConnection: a b\r\n\r\n",
        ),
    ];
    for &(name, buf) in cases {
        assert_eq!(
            parse(buf, GET).map(|(p, _)| p),
            Err(ErrorKind::Response),
            "{name}"
        );
    }
}

#[test]
fn response_limits_and_partial_input() {
    let buf = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
    for n in 0..buf.len() {
        assert_eq!(
            parse(&buf[..n], GET).map(|(p, _)| p),
            Ok(Parse::Partial),
            "prefix {n}"
        );
    }
    let limits = Limits {
        max_target: 10,
        max_head: 32,
        max_headers: 1,
    };
    let mut h = ResponseHead::default();
    let too_big = parse_response(buf, &limits, GET, &mut h).unwrap_err();
    assert_eq!((too_big.kind, too_big.status()), (ErrorKind::Response, 502));
    let two = b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n";
    let limits = Limits {
        max_headers: 1,
        ..Limits::default()
    };
    assert_eq!(
        parse_response(two, &limits, GET, &mut h).map_err(|e| e.kind),
        Err(ErrorKind::Response)
    );
}
