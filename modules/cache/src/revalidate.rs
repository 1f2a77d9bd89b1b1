//! Validation both ways: the conditional request the cache sends for a stale response
//! (RFC 9111 §4.3.1), merging a `304` into the stored response (§3.2, §4.3.4), answering a
//! client's own conditional request from a stored response (§4.3.2), and which range of a
//! stored complete response to send (RFC 9110 §14).

use bext_http1::date::parse_http_date;
use bytes::Bytes;

use crate::fields::{first, list, Fields};
use crate::store::NEVER_STORED;
use crate::Field;

/// Fields the cache sets on a revalidation request; the client's own conditionals are removed
/// first, since the 304 must answer the cache's validators, not the client's.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Conditional {
    /// Lines to add: `If-None-Match` from the stored `ETag`, `If-Modified-Since` from the
    /// stored `Last-Modified`.
    pub add: Vec<(&'static str, Bytes)>,
}

/// Request fields replaced on a revalidation request.
pub const CLIENT_CONDITIONALS: [&str; 5] = [
    "if-none-match",
    "if-modified-since",
    "if-match",
    "if-unmodified-since",
    "if-range",
];

/// Builds the validators for a stored response's fields. Empty when it has none, in which
/// case the revalidation is a plain request.
pub fn conditional(stored: &Fields) -> Conditional {
    let mut add = Vec::new();
    if let Some(etag) = stored.get(b"etag") {
        add.push(("If-None-Match", Bytes::copy_from_slice(etag)));
    }
    if let Some(lm) = stored.get(b"last-modified") {
        if parse_http_date(lm).is_some() {
            add.push(("If-Modified-Since", Bytes::copy_from_slice(lm)));
        }
    }
    Conditional { add }
}

/// Whether a 304 describes the stored response (§4.3.4): a strong `ETag` in the 304 must equal
/// the stored one; without one, a `Last-Modified` must equal; without either, it selects.
pub fn selects(stored: &Fields, not_modified: &[Field<'_>]) -> bool {
    if let Some(etag) = first(not_modified, b"etag") {
        return stored.get(b"etag").is_some_and(|s| weak_eq(s, etag));
    }
    if let Some(lm) = first(not_modified, b"last-modified") {
        return stored.get(b"last-modified") == Some(lm);
    }
    true
}

/// Fields a 304 does not update (§3.2): those never stored, those its `Connection` names, and
/// `Content-Length`, which describes the stored body.
pub fn merge(stored: &Fields, not_modified: &[Field<'_>]) -> Fields {
    let connection: Vec<Vec<u8>> = list(not_modified, b"connection")
        .map(<[u8]>::to_ascii_lowercase)
        .collect();
    let updatable = |name: &[u8]| {
        !name.eq_ignore_ascii_case(b"content-length")
            && !NEVER_STORED
                .iter()
                .any(|n| name.eq_ignore_ascii_case(n.as_bytes()))
            && !connection.iter().any(|c| name.eq_ignore_ascii_case(c))
    };
    let mut out = stored.clone();
    let mut replaced: Vec<Vec<u8>> = Vec::new();
    for (name, value) in not_modified {
        if !updatable(name) {
            continue;
        }
        let lower = name.to_ascii_lowercase();
        if !replaced.contains(&lower) {
            out.remove(name);
            replaced.push(lower);
        }
        out.0
            .push((Bytes::copy_from_slice(name), Bytes::copy_from_slice(value)));
    }
    out
}

/// What to answer a client's conditional `GET`/`HEAD` with, from a usable stored response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientConditional {
    /// No condition, or conditions that do not hold: send the stored response.
    Full,
    /// `304 Not Modified`.
    NotModified,
}

/// Evaluates `If-None-Match` (weak comparison, precedence) then `If-Modified-Since` against a
/// stored response (RFC 9110 §13.2.2). `If-Modified-Since` compares with `Last-Modified`, or
/// with `Date` when there is none.
pub fn client_conditional(request: &[Field<'_>], stored: &Fields) -> ClientConditional {
    if first(request, b"if-none-match").is_some() {
        let Some(etag) = stored.get(b"etag") else {
            return ClientConditional::Full;
        };
        let matched = list(request, b"if-none-match").any(|t| t == b"*" || weak_eq(t, etag));
        return if matched {
            ClientConditional::NotModified
        } else {
            ClientConditional::Full
        };
    }
    if let Some(ims) = first(request, b"if-modified-since").and_then(parse_http_date) {
        let last = stored
            .get(b"last-modified")
            .or_else(|| stored.get(b"date"))
            .and_then(parse_http_date);
        if last.is_some_and(|t| t <= ims) {
            return ClientConditional::NotModified;
        }
    }
    ClientConditional::Full
}

/// Weak entity-tag comparison: equal opaque tags, `W/` ignored.
pub fn weak_eq(a: &[u8], b: &[u8]) -> bool {
    let strip = |t: &[u8]| -> Vec<u8> {
        let t = t.trim_ascii();
        t.strip_prefix(b"W/").unwrap_or(t).to_vec()
    };
    strip(a) == strip(b)
}

/// Which part of a stored complete response of `len` bytes to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeDecision {
    /// The whole response, status as stored (no `Range`, several ranges, a non-byte unit, or
    /// an `If-Range` that does not match).
    Full,
    /// `206` with bytes `start..=end`.
    Partial {
        /// First byte.
        start: u64,
        /// Last byte, inclusive.
        end: u64,
    },
    /// `416 Range Not Satisfiable`.
    Unsatisfiable,
}

/// Decides a `Range` request against a stored `200` of `len` bytes. Only single byte ranges
/// are served from the cache; anything else gets the full response, which RFC 9110 §14.2
/// permits.
pub fn range(
    request: &[Field<'_>],
    stored_status: u16,
    stored: &Fields,
    len: u64,
) -> RangeDecision {
    let Some(spec) = first(request, b"range") else {
        return RangeDecision::Full;
    };
    if stored_status != 200 {
        return RangeDecision::Full;
    }
    if let Some(cond) = first(request, b"if-range") {
        let strong_match = stored
            .get(b"etag")
            .is_some_and(|e| !e.starts_with(b"W/") && e == cond);
        let date_match =
            stored.get(b"last-modified") == Some(cond) && parse_http_date(cond).is_some();
        if !strong_match && !date_match {
            return RangeDecision::Full;
        }
    }
    let Some(set) = spec.trim_ascii().strip_prefix(b"bytes=") else {
        return RangeDecision::Full;
    };
    if set.contains(&b',') {
        return RangeDecision::Full;
    }
    let set = set.trim_ascii();
    let Some(dash) = set.iter().position(|&b| b == b'-') else {
        return RangeDecision::Full;
    };
    let num = |s: &[u8]| -> Option<u64> {
        if s.is_empty() || !s.iter().all(u8::is_ascii_digit) || s.len() > 19 {
            return None;
        }
        std::str::from_utf8(s).ok()?.parse().ok()
    };
    let (a, b) = (&set[..dash], &set[dash + 1..]);
    if a.is_empty() {
        let Some(n) = num(b) else {
            return RangeDecision::Full;
        };
        if n == 0 || len == 0 {
            return RangeDecision::Unsatisfiable;
        }
        return RangeDecision::Partial {
            start: len.saturating_sub(n),
            end: len - 1,
        };
    }
    let Some(start) = num(a) else {
        return RangeDecision::Full;
    };
    let end = if b.is_empty() {
        len.saturating_sub(1)
    } else {
        match num(b) {
            Some(e) if e >= start => e.min(len.saturating_sub(1)),
            _ => return RangeDecision::Full,
        }
    };
    if start >= len {
        return RangeDecision::Unsatisfiable;
    }
    RangeDecision::Partial { start, end }
}
