//! Response head parser for upstream responses (RFC 9112 §4, §6.3).
//!
//! Every rejection is [`ErrorKind::Response`] (the engine answers 502), whatever the cause:
//! status line, field syntax, limits, or framing. Choices:
//! - The status line is `HTTP/1.0` or `HTTP/1.1`, SP, three digits from 100 to 599, then
//!   SP and a reason phrase, or directly CRLF (`HTTP/1.1 200\r\n` is common and unambiguous).
//! - No empty line may precede the status line.
//! - Transfer-Encoding must be exactly `chunked` (any case), HTTP/1.1 only, never with
//!   Content-Length; a response whose body the proxy would have to forward still encoded in a
//!   coding it does not implement is refused rather than forwarded close-delimited.
//! - Content-Length as for requests: one field line, `1*DIGIT`, no overflow.
//! - Framing per RFC 9112 §6.3: responses to HEAD, 1xx, 204 and 304, and 2xx to CONNECT have no
//!   body (their Content-Length/Transfer-Encoding are still validated); then chunked; then
//!   Content-Length; else the body runs to the close of the connection.

use crate::fields::{self, span, Candidates, ConnectionOptions, TransferCodings};
use crate::request::{line_end, version_at};
use crate::{
    Error, ErrorKind, Framing, Limits, Parse, ResponseContext, ResponseHead, Span, Version,
};

impl ResponseHead {
    /// Reset every field for the next response, keeping the vectors' capacity.
    pub fn clear(&mut self) {
        self.version = None;
        self.status = 0;
        self.reason = Span::default();
        self.headers.clear();
        self.head_len = 0;
        self.framing = None;
        self.keep_alive = false;
        self.connection_tokens.clear();
    }

    /// The first field value with this name (ASCII case-insensitive).
    pub fn header<'b>(&self, buf: &'b [u8], name: &[u8]) -> Option<&'b [u8]> {
        self.headers
            .iter()
            .find(|h| crate::name_eq(h.name.get(buf), name))
            .map(|h| h.value.get(buf))
    }
}

#[inline]
fn bad(offset: usize) -> Error {
    Error {
        kind: ErrorKind::Response,
        offset,
    }
}

/// Parse a response head from the start of `buf`.
pub fn parse_response(
    buf: &[u8],
    limits: &Limits,
    ctx: ResponseContext,
    head: &mut ResponseHead,
) -> Result<Parse, Error> {
    head.clear();
    let window = limits.max_head.min(buf.len()).min(u32::MAX as usize);
    match parse_in(&buf[..window], limits, ctx, head)? {
        Parse::Partial if buf.len() > window => Err(bad(window)),
        p => Ok(p),
    }
}

fn parse_in(
    buf: &[u8],
    limits: &Limits,
    ctx: ResponseContext,
    head: &mut ResponseHead,
) -> Result<Parse, Error> {
    let version = match version_at(buf, 0).map_err(|e| bad(e.offset))? {
        None => return Ok(Parse::Partial),
        Some((1, 1)) => Version::Http11,
        Some((1, 0)) => Version::Http10,
        Some(_) => return Err(bad(5)),
    };
    head.version = Some(version);
    let mut pos = 8;
    match buf.get(pos) {
        None => return Ok(Parse::Partial),
        Some(b' ') => pos += 1,
        Some(_) => return Err(bad(pos)),
    }
    let mut status: u16 = 0;
    for i in 0..3 {
        match buf.get(pos + i) {
            None => return Ok(Parse::Partial),
            Some(&d) if d.is_ascii_digit() => status = status * 10 + u16::from(d - b'0'),
            Some(_) => return Err(bad(pos + i)),
        }
    }
    if !(100..=599).contains(&status) {
        return Err(bad(pos));
    }
    head.status = status;
    pos += 3;
    let reason_start = match buf.get(pos) {
        None => return Ok(Parse::Partial),
        Some(b' ') => pos + 1,
        Some(b'\r') => pos,
        Some(_) => return Err(bad(pos)),
    };
    // reason-phrase = 1*( HTAB / SP / VCHAR / obs-text ), the field value alphabet.
    pos = crate::chars::scan_value(buf, reason_start);
    match buf.get(pos) {
        None => return Ok(Parse::Partial),
        Some(b'\r') => {}
        Some(_) => return Err(bad(pos)),
    }
    match buf.get(pos + 1) {
        None => return Ok(Parse::Partial),
        Some(b'\n') => {}
        Some(_) => return Err(bad(pos + 1)),
    }
    head.reason = span(reason_start, pos);
    pos += 2;

    let mut candidates = Candidates::new();
    let end = match fields::parse_fields(
        buf,
        pos,
        limits.max_headers,
        &mut head.headers,
        &mut candidates,
    )
    .map_err(|e| bad(e.offset))?
    {
        None => return Ok(Parse::Partial),
        Some(end) => end,
    };
    head.head_len = end;
    analyse(buf, version, ctx, &candidates, head)?;
    Ok(Parse::Complete)
}

fn analyse(
    buf: &[u8],
    version: Version,
    ctx: ResponseContext,
    candidates: &Candidates,
    head: &mut ResponseHead,
) -> Result<(), Error> {
    let mut content_length: Option<u64> = None;
    let mut te = TransferCodings::default();
    let mut conn = ConnectionOptions::default();
    for line in candidates.lines(head.headers.len()) {
        let h = &head.headers[line];
        let value = h.value.get(buf);
        let at = h.value.start as usize;
        match fields::classify(h.name.get(buf)) {
            fields::Known::ContentLength => {
                if content_length.is_some() {
                    return Err(bad(h.name.start as usize));
                }
                content_length = Some(fields::parse_content_length(value).ok_or(bad(at))?);
            }
            fields::Known::TransferEncoding => {
                let raw_start = h.name.end as usize + 1;
                let raw = &buf[raw_start..line_end(buf, h.value.end as usize)];
                te.add(raw).map_err(|o| bad(raw_start + o))?;
            }
            fields::Known::Connection => {
                fields::parse_connection(value, at, &mut head.connection_tokens, &mut conn)
                    .map_err(|o| bad(at + o))?;
            }
            _ => {}
        }
    }
    if te.present
        && (version == Version::Http10
            || content_length.is_some()
            || !te.chunked_last
            || te.other_coding)
    {
        return Err(bad(head.head_len));
    }
    let status = head.status;
    let framing = if ctx.request_was_head
        || (100..200).contains(&status)
        || status == 204
        || status == 304
        || (ctx.request_was_connect && (200..300).contains(&status))
    {
        Framing::None
    } else if te.present {
        Framing::Chunked
    } else if let Some(n) = content_length {
        Framing::ContentLength(n)
    } else {
        Framing::CloseDelimited
    };
    head.framing = Some(framing);
    head.keep_alive = framing != Framing::CloseDelimited
        && !conn.close
        && (version == Version::Http11 || conn.keep_alive);
    Ok(())
}
