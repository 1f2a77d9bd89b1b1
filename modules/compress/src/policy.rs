//! The compiled `compress` policy and the rules that decide whether a response is compressed.

use bext_ir::{Compress, Encoding};

use crate::encoder::Encoder;
use crate::negotiate::{negotiate, trim_ows};

/// What the decision needs from the request head, filled by the engine.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestFacts<'a> {
    /// The method is `HEAD`.
    pub head: bool,
    /// The request has a `Range` field.
    pub range: bool,
    /// The `Accept-Encoding` field lines, in order (empty when absent).
    pub accept_encoding: &'a [&'a [u8]],
}

/// What the decision needs from the response head, filled by the engine.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResponseFacts<'a> {
    /// The status code.
    pub status: u16,
    /// The `Content-Length`, when the response has one.
    pub content_length: Option<u64>,
    /// The `Content-Type` value, when present.
    pub content_type: Option<&'a [u8]>,
    /// The response already has a `Content-Encoding` field (any value).
    pub content_encoding: bool,
    /// The `Cache-Control` field lines, in order (empty when absent).
    pub cache_control: &'a [&'a [u8]],
}

/// A route's `compress` directive, compiled once and shared by every request on every core.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Offered encodings in preference order, with their levels.
    offered: Vec<Encoding>,
    levels: Vec<u32>,
    min_size: u64,
    /// Exact media types (`text/html`), lower case.
    exact: Vec<Box<[u8]>>,
    /// Top-level types written `text/*`: the part before the slash, lower case.
    wildcard: Vec<Box<[u8]>>,
}

impl Policy {
    /// Compiles the directive. A level missing from `levels` (an IR built by hand) is the
    /// encoding's default.
    pub fn new(c: &Compress) -> Policy {
        let mut exact = vec![];
        let mut wildcard = vec![];
        for t in &c.types {
            let t = t.trim().to_ascii_lowercase().into_bytes();
            match t.strip_suffix(b"/*") {
                Some(top) => wildcard.push(top.into()),
                None => exact.push(t.into_boxed_slice()),
            }
        }
        Policy {
            offered: c.encodings.clone(),
            levels: c
                .encodings
                .iter()
                .map(|e| c.levels.get(e).copied().unwrap_or(e.default_level()))
                .collect(),
            min_size: c.min_size,
            exact,
            wildcard,
        }
    }

    /// The encodings offered, in preference order.
    pub fn offered(&self) -> &[Encoding] {
        &self.offered
    }

    /// The level `e` is compressed at, if offered.
    pub fn level(&self, e: Encoding) -> Option<u32> {
        let i = self.offered.iter().position(|o| *o == e)?;
        Some(self.levels[i])
    }

    /// A fresh encoder for `e` at this route's level (the engine's pool may hand out a reset
    /// one instead).
    pub fn encoder(&self, e: Encoding) -> Encoder {
        Encoder::new(e, self.level(e).unwrap_or(e.default_level()))
    }

    /// The encoding to compress this response with, or `None` to send it as it is.
    ///
    /// `None` for: a `HEAD` request or one with `Range` (a range is of the representation the
    /// origin sent, and a 206 cannot be re-encoded), a status 1xx, 204, 206 or 304, a response
    /// that already has a `Content-Encoding` (never encoded twice), `Cache-Control:
    /// no-transform` on the response, a `Content-Length` of 0 or below `min_size`, a
    /// `Content-Type` absent or not listed, and an `Accept-Encoding` that accepts none of the
    /// offered encodings.
    pub fn decide(&self, req: &RequestFacts<'_>, resp: &ResponseFacts<'_>) -> Option<Encoding> {
        if req.head || req.range || !self.varies(resp) {
            return None;
        }
        negotiate(req.accept_encoding.iter().copied(), &self.offered)
    }

    /// Whether the response would be compressed for some `Accept-Encoding`: then a cache must
    /// key it on that field, and the engine adds `Vary: Accept-Encoding` to the response
    /// whether or not this request got it compressed (see [`crate::head::vary`]).
    pub fn varies(&self, resp: &ResponseFacts<'_>) -> bool {
        self.varies_with(resp, resp.cache_control.iter().any(|v| no_transform(v)))
    }

    /// [`Policy::varies`] with the `no-transform` test already made (the stage reads the
    /// `Cache-Control` lines where they are, without collecting them); `cache_control` is
    /// not read.
    pub(crate) fn varies_with(&self, resp: &ResponseFacts<'_>, no_transform: bool) -> bool {
        let status_ok = matches!(resp.status, 200..=599) && !matches!(resp.status, 204 | 206 | 304);
        status_ok
            && !resp.content_encoding
            && !resp
                .content_length
                .is_some_and(|n| n == 0 || n < self.min_size)
            && !no_transform
            && resp.content_type.is_some_and(|t| self.type_listed(t))
    }

    /// Whether the media type of a `Content-Type` value (parameters dropped, any case) is
    /// listed.
    pub fn type_listed(&self, content_type: &[u8]) -> bool {
        let media = content_type
            .split(|&b| b == b';')
            .next()
            .map_or(&[][..], trim_ows);
        let Some(slash) = media.iter().position(|&b| b == b'/') else {
            return false;
        };
        self.exact.iter().any(|t| media.eq_ignore_ascii_case(t))
            || self
                .wildcard
                .iter()
                .any(|t| media[..slash].eq_ignore_ascii_case(t))
    }
}

/// Whether a `Cache-Control` line has the `no-transform` directive (any case).
pub(crate) fn no_transform(v: &[u8]) -> bool {
    // A quoted argument may hold a comma; a directive name never follows one inside quotes,
    // so skipping quoted strings keeps `private="no-transform"` from counting.
    let mut start = 0;
    let mut quoted = false;
    for i in 0..=v.len() {
        match v.get(i) {
            Some(b'"') => quoted = !quoted,
            Some(b',') | None if !quoted => {
                let d = &v[start..i];
                let name = d.split(|&b| b == b'=').next().map_or(&[][..], trim_ows);
                if name.eq_ignore_ascii_case(b"no-transform") {
                    return true;
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    false
}
