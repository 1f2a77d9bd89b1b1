//! bext-http1: a strict, zero-copy, push-style HTTP/1.1 codec (RFC 9112).
//!
//! The parser never allocates per request: it records offsets ([`Span`]) into the caller's
//! connection buffer and returns [`Parse::Partial`] on short input, so the caller reads more
//! and calls again with the longer buffer. Anything ambiguous is an [`Error`] with the status the
//! server must answer with, after which the connection is closed: bext never forwards a message
//! the next hop could frame differently.
//!
//! This crate has no runtime dependency so that fuzz targets, benchmarks and the conformance
//! suite link it alone. httparse is its differential oracle in tests, never its parser.
//!
//! CONTRACT (used by bext-engine): the public items below are the API. Their bodies are
//! implemented in the submodules.
#![forbid(unsafe_code)]

mod chars;
mod chunked;
pub mod date;
mod fields;
mod path;
mod request;
mod response;

pub use chunked::{
    write_body_piece, write_chunk_header, ChunkedDecoder, MAX_CHUNK_EXT_LEN, MAX_TRAILER_LEN,
};

/// `n` in decimal, written at the end of `buf`: the slice of its digits.
pub fn decimal(n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    let mut v = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return &buf[i..];
        }
    }
}

/// Appends `n` in decimal (a `Content-Length`, a status code, a port).
pub fn push_decimal(out: &mut Vec<u8>, n: u64) {
    let mut buf = [0; 20];
    out.extend_from_slice(decimal(n, &mut buf));
}
pub use path::{normalize_path, route_view, PathError, PathOptions};
pub use request::parse_request;
pub use response::parse_response;

/// A byte range into the buffer that was parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    #[inline]
    pub fn get<'b>(&self, buf: &'b [u8]) -> &'b [u8] {
        &buf[self.start as usize..self.end as usize]
    }
    #[inline]
    pub fn len(&self) -> usize {
        (self.end - self.start) as usize
    }
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
}

/// Limits applied while parsing a request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Request target length; over it: 414.
    pub max_target: usize,
    /// Whole head (start line + fields + CRLFs); over it: 431.
    pub max_head: usize,
    /// Number of header fields; over it: 431.
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_target: 8 * 1024,
            max_head: 16 * 1024,
            max_headers: 100,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Connect,
    Options,
    Trace,
    Patch,
    /// Any other valid token; read it through `RequestHead::method_span`.
    Other,
}

impl Method {
    /// Methods whose repetition has the same effect (RFC 9110 §9.2.2).
    pub fn is_idempotent(self) -> bool {
        matches!(
            self,
            Method::Get
                | Method::Head
                | Method::Put
                | Method::Delete
                | Method::Options
                | Method::Trace
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

/// The form of the request target (RFC 9112 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetForm {
    /// `/path?query`
    Origin,
    /// `http://host/path?query`: `path`/`query` point inside it and `authority` is set.
    Absolute,
    /// `host:port`, only with CONNECT.
    Authority,
    /// `*`, only with OPTIONS.
    Asterisk,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Header {
    pub name: Span,
    /// Without leading/trailing optional whitespace.
    pub value: Span,
}

/// How the message body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (requests without CL/TE; 1xx/204/304 responses; responses to HEAD).
    None,
    ContentLength(u64),
    Chunked,
    /// Responses only: the body runs until the upstream closes.
    CloseDelimited,
}

/// A parsed request head. Reuse one per connection: the parser clears it.
#[derive(Debug, Clone, Default)]
pub struct RequestHead {
    pub method: Option<Method>,
    pub method_span: Span,
    pub target: Span,
    pub target_form: Option<TargetForm>,
    /// The path part of the target (for absolute-form: after the authority, an empty span when
    /// the target has no path: read it with [`RequestHead::path_or_root`], which gives `/`).
    /// Authority-form: empty; asterisk-form: `*`.
    pub path: Span,
    /// The query without `?`, if the target has one.
    pub query: Option<Span>,
    /// From the absolute-form target, if any.
    pub authority: Option<Span>,
    pub version: Option<Version>,
    pub headers: Vec<Header>,
    /// Bytes of the head including the final CRLF CRLF.
    pub head_len: usize,
    pub framing: Option<Framing>,
    /// The Host field value (exactly one is required for HTTP/1.1, at most one for HTTP/1.0;
    /// never empty). With an absolute-form target the target's authority wins (RFC 9112
    /// §3.2.2): route on [`RequestHead::effective_authority`].
    pub host: Option<Span>,
    /// Persistence after this request (version default, `Connection: close`/`keep-alive`).
    pub keep_alive: bool,
    /// `Expect: 100-continue` was sent.
    pub expect_continue: bool,
    /// The `Upgrade` value when `Connection` lists `upgrade`.
    pub upgrade: Option<Span>,
    /// Field names listed in `Connection` (hop-by-hop, to strip before forwarding).
    pub connection_tokens: Vec<Span>,
}

/// A parsed response head. Reuse one per upstream connection: the parser clears it.
#[derive(Debug, Clone, Default)]
pub struct ResponseHead {
    pub version: Option<Version>,
    pub status: u16,
    pub reason: Span,
    pub headers: Vec<Header>,
    pub head_len: usize,
    pub framing: Option<Framing>,
    pub keep_alive: bool,
    pub connection_tokens: Vec<Span>,
}

/// What the response answers; it decides response framing (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResponseContext {
    pub request_was_head: bool,
    pub request_was_connect: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parse {
    Complete,
    Partial,
}

/// Why a message was rejected. `status()` is what a server answers (then closes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad method token, target, version or line ending in the request line.
    RequestLine,
    /// Target longer than `max_target` (414).
    TargetTooLong,
    /// Head longer than `max_head` or more than `max_headers` fields (431).
    HeadTooLarge,
    /// Invalid field name or value, whitespace before the colon, obs-fold, bare CR, NUL.
    Field,
    /// Missing, repeated or invalid Host.
    Host,
    /// Invalid, repeated-and-different, or negative Content-Length.
    ContentLength,
    /// Content-Length together with Transfer-Encoding.
    ContentLengthWithTransferEncoding,
    /// Transfer-Encoding that is not exactly `chunked` last (unknown codings: 501).
    TransferEncoding,
    /// Transfer-Encoding with a coding the proxy does not implement (501).
    UnsupportedTransferCoding,
    /// HTTP version other than 1.0/1.1 (505).
    Version,
    /// Response status line or framing invalid (the engine answers 502).
    Response,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    /// Offset in the buffer where the problem was found (for logs and tests).
    pub offset: usize,
}

impl Error {
    /// The status a server answers a request rejected with this error.
    pub fn status(&self) -> u16 {
        match self.kind {
            ErrorKind::TargetTooLong => 414,
            ErrorKind::HeadTooLarge => 431,
            ErrorKind::UnsupportedTransferCoding => 501,
            ErrorKind::Version => 505,
            ErrorKind::Response => 502,
            _ => 400,
        }
    }
}

/// One step of chunked decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk {
    /// Body bytes: `input[range]`.
    Data(std::ops::Range<usize>),
    /// Everything given was consumed; call again with more input.
    NeedMore,
    /// The last chunk and the trailer section were consumed; the message ends.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkError {
    /// Size not hex, too large (overflow), missing, or followed by junk.
    Size,
    /// Extension syntax invalid or extensions too long.
    Extension,
    /// Chunk data not followed by CRLF.
    DataTerminator,
    /// Trailer section invalid or too large.
    Trailer,
}

/// The last chunk with an empty trailer section.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Hop-by-hop fields that a proxy never forwards (RFC 9110 §7.6.1), besides those named in
/// `Connection`.
///
/// The list: Connection, Proxy-Connection, Keep-Alive, TE, Transfer-Encoding, Upgrade.
pub fn is_hop_by_hop(name: &[u8]) -> bool {
    const HOP_BY_HOP: [&[u8]; 6] = [
        b"connection",
        b"proxy-connection",
        b"keep-alive",
        b"te",
        b"transfer-encoding",
        b"upgrade",
    ];
    HOP_BY_HOP.iter().any(|h| name_eq(name, h))
}

/// ASCII case-insensitive comparison of field names.
#[inline]
pub fn name_eq(a: &[u8], b: &[u8]) -> bool {
    a.eq_ignore_ascii_case(b)
}
