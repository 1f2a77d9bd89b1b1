//! Request head parser (RFC 9112 §3, §5, §6): request line, field lines, and the fields that
//! decide framing, persistence and routing.
//!
//! Choices where RFC 9112 leaves room, all on the strict side:
//! - Empty lines (CRLF) before the request line are skipped (RFC 9112 §2.2 asks to ignore at
//!   least one); they count towards `max_head` and `head_len`. A bare LF there is an error.
//! - Every line ends in CRLF: bare LF and bare CR are errors (RFC 9112 §2.2 allows either).
//! - The request line is `method SP target SP version CRLF` with single spaces.
//! - Only `HTTP/1.0` and `HTTP/1.1` are served: any other well-formed `HTTP/d.d` is 505
//!   (including `HTTP/1.2`, which RFC 9110 §6.2 would serve as 1.1); anything else is 400.
//! - The target holds RFC 3986 characters only, with valid percent-encoding and no fragment.
//!   Absolute-form accepts the `http` and `https` schemes only, with no userinfo.
//! - Host: exactly one in HTTP/1.1, at most one in HTTP/1.0, never empty. With an absolute-form
//!   target the target's authority wins (RFC 9112 §3.2.2) but Host must still be present and
//!   valid. Host (and an absolute-form authority) is `uri-host [":" port]`: uri-host is a
//!   non-empty name of RFC 3986 unreserved characters (letters, digits, `-`, `.`, `_`, `~`; no
//!   percent-encoding, no sub-delims such as `,`), an IPv4 address or a bracketed IPv6 literal,
//!   and port is 1 to 5 digits up to 65535. Userinfo (`user@`) is rejected.
//! - Content-Length: one field line only, even when repeated with the same value, and no list.
//! - Transfer-Encoding: only in HTTP/1.1 requests, never with Content-Length; tokens separated
//!   by `,` and SP (HTAB, empty elements, parameters, `identity` and a second `chunked` are
//!   400). `chunked` (any case) must be the final coding, else 400 (RFC 9112 §6.3); a valid list
//!   with other codings before it (`gzip, chunked`) is 501, as bext decodes none of them.
//! - Connection options are tokens (empty list elements ignored); `Expect` other than
//!   `100-continue` is ignored, as is `100-continue` from an HTTP/1.0 client (RFC 9110 §10.1.1).

use crate::chars::{self, HEX};
use crate::fields::{
    self, span, Candidates, ConnectionOptions, FieldError, Known, TransferCodings,
};
use crate::{
    Error, ErrorKind, Framing, Limits, Method, Parse, RequestHead, Span, TargetForm, Version,
};

impl RequestHead {
    /// Reset every field for the next request, keeping the vectors' capacity.
    pub fn clear(&mut self) {
        self.method = None;
        self.method_span = Span::default();
        self.target = Span::default();
        self.target_form = None;
        self.path = Span::default();
        self.query = None;
        self.authority = None;
        self.version = None;
        self.headers.clear();
        self.head_len = 0;
        self.framing = None;
        self.host = None;
        self.keep_alive = false;
        self.expect_continue = false;
        self.upgrade = None;
        self.connection_tokens.clear();
    }

    /// The authority the request is for: the absolute-form target's authority if there is one
    /// (RFC 9112 §3.2.2: it wins over Host), else the Host field.
    pub fn effective_authority(&self) -> Option<Span> {
        self.authority.or(self.host)
    }

    /// The path bytes, `/` when an absolute-form target has an empty path.
    pub fn path_or_root<'b>(&self, buf: &'b [u8]) -> &'b [u8] {
        if self.path.is_empty() && self.target_form == Some(TargetForm::Absolute) {
            b"/"
        } else {
            self.path.get(buf)
        }
    }

    /// The method name as sent.
    pub fn method_bytes<'b>(&self, buf: &'b [u8]) -> &'b [u8] {
        self.method_span.get(buf)
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
fn err(kind: ErrorKind, offset: usize) -> Error {
    Error { kind, offset }
}

impl From<FieldError> for Error {
    fn from(e: FieldError) -> Self {
        err(e.kind, e.offset)
    }
}

/// Parse a request head from the start of `buf`.
///
/// `Ok(Parse::Partial)`: the head is not complete and still within limits; call again with the
/// same bytes plus more. `Ok(Parse::Complete)`: `head` describes `buf[..head.head_len]`.
pub fn parse_request(buf: &[u8], limits: &Limits, head: &mut RequestHead) -> Result<Parse, Error> {
    head.clear();
    // Only the first `max_head` bytes can be part of an acceptable head. Spans are u32.
    let window = limits.max_head.min(buf.len()).min(u32::MAX as usize);
    match parse_in(&buf[..window], limits, head)? {
        Parse::Partial if buf.len() > window => Err(err(ErrorKind::HeadTooLarge, window)),
        p => Ok(p),
    }
}

fn parse_in(buf: &[u8], limits: &Limits, head: &mut RequestHead) -> Result<Parse, Error> {
    let mut pos = 0;
    // Empty lines before the request line.
    loop {
        match buf.get(pos) {
            None => return Ok(Parse::Partial),
            Some(b'\r') => match buf.get(pos + 1) {
                None => return Ok(Parse::Partial),
                Some(b'\n') => pos += 2,
                Some(_) => return Err(err(ErrorKind::RequestLine, pos + 1)),
            },
            Some(_) => break,
        }
    }

    // method SP
    let method_start = pos;
    pos = chars::scan_token(buf, pos);
    match buf.get(pos) {
        None => return Ok(Parse::Partial),
        Some(b' ') if pos > method_start => {}
        Some(_) => return Err(err(ErrorKind::RequestLine, pos)),
    }
    let method = method_from(&buf[method_start..pos]);
    head.method = Some(method);
    head.method_span = span(method_start, pos);
    pos += 1;

    // request-target SP
    let target_start = pos;
    let scan = chars::scan_target(buf, pos);
    pos = scan.end;
    if pos - target_start > limits.max_target {
        return Err(err(
            ErrorKind::TargetTooLong,
            target_start + limits.max_target,
        ));
    }
    match buf.get(pos) {
        None => return Ok(Parse::Partial),
        Some(b' ') if pos > target_start => {}
        Some(_) => return Err(err(ErrorKind::RequestLine, pos)),
    }
    let target_end = pos;
    head.target = span(target_start, target_end);
    pos += 1;

    // HTTP-version CRLF
    let version = match version_at(buf, pos)? {
        None => return Ok(Parse::Partial),
        Some(v) => v,
    };
    match buf.get(pos + 8) {
        None => return Ok(Parse::Partial),
        Some(b'\r') => {}
        Some(_) => return Err(err(ErrorKind::RequestLine, pos + 8)),
    }
    match buf.get(pos + 9) {
        None => return Ok(Parse::Partial),
        Some(b'\n') => {}
        Some(_) => return Err(err(ErrorKind::RequestLine, pos + 9)),
    }
    let version = match version {
        (1, 1) => Version::Http11,
        (1, 0) => Version::Http10,
        _ => return Err(err(ErrorKind::Version, pos)),
    };
    head.version = Some(version);
    pos += 10;

    let mut candidates = Candidates::new();
    let end = match fields::parse_fields(
        buf,
        pos,
        limits.max_headers,
        &mut head.headers,
        &mut candidates,
    )? {
        None => return Ok(Parse::Partial),
        Some(end) => end,
    };
    head.head_len = end;

    analyse_target(buf, method, target_start, target_end, &scan, head)?;
    analyse_fields(buf, version, &candidates, head)?;
    Ok(Parse::Complete)
}

/// `HTTP/DIGIT.DIGIT` at `pos`: `Ok(None)` if the buffer ends first, the digits otherwise.
/// The caller checks what follows, so `HTTP/1.1x` and `HTTP/1.32` are 400, not 505.
#[inline]
pub(crate) fn version_at(buf: &[u8], pos: usize) -> Result<Option<(u8, u8)>, Error> {
    match buf.get(pos..pos + 8) {
        Some(b"HTTP/1.1") => return Ok(Some((1, 1))),
        Some(b"HTTP/1.0") => return Ok(Some((1, 0))),
        _ => {}
    }
    const PATTERN: &[u8; 8] = b"HTTP/0.0";
    for (i, &p) in PATTERN.iter().enumerate() {
        let Some(&b) = buf.get(pos + i) else {
            return Ok(None);
        };
        let ok = if p == b'0' {
            b.is_ascii_digit()
        } else {
            b == p
        };
        if !ok {
            return Err(err(ErrorKind::RequestLine, pos + i));
        }
    }
    Ok(Some((buf[pos + 5] - b'0', buf[pos + 7] - b'0')))
}

#[inline]
fn method_from(m: &[u8]) -> Method {
    match m {
        b"GET" => Method::Get,
        b"HEAD" => Method::Head,
        b"POST" => Method::Post,
        b"PUT" => Method::Put,
        b"DELETE" => Method::Delete,
        b"CONNECT" => Method::Connect,
        b"OPTIONS" => Method::Options,
        b"TRACE" => Method::Trace,
        b"PATCH" => Method::Patch,
        _ => Method::Other,
    }
}

/// Decide the target form and split path, query and authority (RFC 9112 §3.2).
fn analyse_target(
    buf: &[u8],
    method: Method,
    start: usize,
    end: usize,
    scan: &chars::TargetScan,
    head: &mut RequestHead,
) -> Result<(), Error> {
    let t = &buf[start..end];
    let bad = |off: usize| err(ErrorKind::RequestLine, start + off);
    // Percent-encoding must be `%` HEXDIG HEXDIG everywhere.
    let mut i = 0;
    while let Some(p) = scan
        .percent
        .then(|| t[i..].iter().position(|&b| b == b'%'))
        .flatten()
    {
        let at = i + p;
        match t.get(at + 1..at + 3) {
            Some([a, b]) if chars::is(*a, HEX) && chars::is(*b, HEX) => i = at + 3,
            _ => return Err(bad(at)),
        }
    }

    if method == Method::Connect {
        // authority-form = uri-host ":" port
        if !fields::valid_authority(t, true) {
            return Err(bad(0));
        }
        head.target_form = Some(TargetForm::Authority);
        head.authority = Some(span(start, end));
        head.path = span(end, end);
        return Ok(());
    }
    if t == b"*" {
        if method != Method::Options {
            return Err(bad(0));
        }
        head.target_form = Some(TargetForm::Asterisk);
        head.path = span(start, end);
        return Ok(());
    }
    let path_start = if t[0] == b'/' {
        head.target_form = Some(TargetForm::Origin);
        0
    } else {
        // absolute-form: only http and https, "://" then an authority without userinfo.
        let scheme_len = if t.len() > 7 && t[..7].eq_ignore_ascii_case(b"http://") {
            7
        } else if t.len() > 8 && t[..8].eq_ignore_ascii_case(b"https://") {
            8
        } else {
            return Err(bad(0));
        };
        let auth_end = t[scheme_len..]
            .iter()
            .position(|&b| b == b'/' || b == b'?')
            .map_or(t.len(), |p| scheme_len + p);
        if !fields::valid_authority(&t[scheme_len..auth_end], false) {
            return Err(bad(scheme_len));
        }
        head.target_form = Some(TargetForm::Absolute);
        head.authority = Some(span(start + scheme_len, start + auth_end));
        auth_end
    };
    // The first `?` ends the path; the authority of an absolute-form target has none.
    match scan.query {
        Some(q) => {
            let q = q - start;
            head.path = span(start + path_start, start + q);
            head.query = Some(span(start + q + 1, end));
        }
        None => head.path = span(start + path_start, end),
    }
    Ok(())
}

/// Framing, persistence, Host, Expect and Upgrade from the field lines.
fn analyse_fields(
    buf: &[u8],
    version: Version,
    candidates: &Candidates,
    head: &mut RequestHead,
) -> Result<(), Error> {
    let mut content_length: Option<u64> = None;
    let mut te = TransferCodings::default();
    let mut conn = ConnectionOptions::default();
    let mut upgrade: Option<Span> = None;
    for line in candidates.lines(head.headers.len()) {
        let h = &head.headers[line];
        let name = h.name.get(buf);
        let value = h.value.get(buf);
        let at = h.value.start as usize;
        match fields::classify(name) {
            Known::Other => {}
            Known::Host => {
                if head.host.is_some() {
                    return Err(err(ErrorKind::Host, h.name.start as usize));
                }
                if !fields::valid_authority(value, false) {
                    return Err(err(ErrorKind::Host, at));
                }
                head.host = Some(h.value);
            }
            Known::ContentLength => {
                if content_length.is_some() {
                    return Err(err(ErrorKind::ContentLength, h.name.start as usize));
                }
                content_length = Some(
                    fields::parse_content_length(value).ok_or(err(ErrorKind::ContentLength, at))?,
                );
            }
            Known::TransferEncoding => {
                let raw_start = h.name.end as usize + 1;
                let raw = &buf[raw_start..line_end(buf, h.value.end as usize)];
                te.add(raw)
                    .map_err(|o| err(ErrorKind::TransferEncoding, raw_start + o))?;
            }
            Known::Connection => {
                fields::parse_connection(value, at, &mut head.connection_tokens, &mut conn)
                    .map_err(|o| err(ErrorKind::Field, at + o))?;
            }
            Known::Upgrade => {
                if upgrade.is_some() {
                    return Err(err(ErrorKind::Field, h.name.start as usize));
                }
                upgrade = Some(h.value);
            }
            Known::Expect => {
                // Other expectations are ignored (RFC 9110 §10.1.1 allows a 417, not requires);
                // a 100-continue from an HTTP/1.0 client MUST be ignored.
                if version == Version::Http11 && value.eq_ignore_ascii_case(b"100-continue") {
                    head.expect_continue = true;
                }
            }
        }
    }
    if version == Version::Http11 && head.host.is_none() {
        return Err(err(ErrorKind::Host, head.head_len));
    }
    head.framing = Some(if te.present {
        if version == Version::Http10 {
            // RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 means faulty framing.
            return Err(err(ErrorKind::TransferEncoding, head.head_len));
        }
        if content_length.is_some() {
            return Err(err(
                ErrorKind::ContentLengthWithTransferEncoding,
                head.head_len,
            ));
        }
        if !te.chunked_last {
            return Err(err(ErrorKind::TransferEncoding, head.head_len));
        }
        if te.other_coding {
            return Err(err(ErrorKind::UnsupportedTransferCoding, head.head_len));
        }
        Framing::Chunked
    } else if let Some(n) = content_length {
        Framing::ContentLength(n)
    } else {
        Framing::None
    });
    head.keep_alive = !conn.close && (version == Version::Http11 || conn.keep_alive);
    if conn.upgrade {
        head.upgrade = upgrade;
    }
    Ok(())
}

/// Offset of the CR ending the field line whose trimmed value ends at `value_end`.
#[inline]
pub(crate) fn line_end(buf: &[u8], mut value_end: usize) -> usize {
    while let Some(b' ' | b'\t') = buf.get(value_end) {
        value_end += 1;
    }
    value_end
}
