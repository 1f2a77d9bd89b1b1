//! Conditional requests (RFC 9110 §13): what `If-Match`, `If-Unmodified-Since`,
//! `If-None-Match`, `If-Modified-Since` and `If-Range` say about a representation.
//!
//! The order of evaluation is §13.2.2's:
//! 1. `If-Match` present: false ⇒ 412. Otherwise `If-Unmodified-Since` (a valid date) false
//!    ⇒ 412.
//! 2. `If-None-Match` present: false ⇒ 304 for GET/HEAD, 412 otherwise. Otherwise, for GET and
//!    HEAD only, `If-Modified-Since` (a valid date) false ⇒ 304.
//! 3. Range processing, where `If-Range` ([`if_range`]) decides whether `Range` applies.
//!
//! `If-Match` compares strongly (§13.1.1), `If-None-Match` weakly (§13.1.2); both accept `*`
//! and comma-separated lists. Repeated fields are one list: the engine passes their values
//! joined with `,`. An invalid date makes its field ignored, as the RFC requires.

use crate::parse_http_date;

/// The conditional fields of a request (raw values, `None` when absent).
#[derive(Debug, Clone, Copy, Default)]
pub struct Conditions<'a> {
    /// `If-Match`.
    pub if_match: Option<&'a [u8]>,
    /// `If-Unmodified-Since`.
    pub if_unmodified_since: Option<&'a [u8]>,
    /// `If-None-Match`.
    pub if_none_match: Option<&'a [u8]>,
    /// `If-Modified-Since`.
    pub if_modified_since: Option<&'a [u8]>,
    /// `If-Range`.
    pub if_range: Option<&'a [u8]>,
}

/// The outcome of the preconditions (steps 1 and 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// Go on (to range processing).
    Proceed,
    /// 304 Not Modified.
    NotModified,
    /// 412 Precondition Failed.
    Failed,
}

/// One entity tag of a list: its opaque part with quotes, and whether it was weak.
fn tags(list: &[u8]) -> impl Iterator<Item = Option<(bool, &[u8])>> {
    // Commas may appear inside an opaque tag, so the list is scanned, not split.
    let mut rest = list;
    std::iter::from_fn(move || loop {
        rest = rest.trim_ascii_start();
        if rest.is_empty() {
            return None;
        }
        if rest[0] == b',' {
            rest = &rest[1..];
            continue;
        }
        let weak = rest.starts_with(b"W/");
        let t = if weak { &rest[2..] } else { rest };
        if t.first() != Some(&b'"') {
            rest = &[];
            return Some(None);
        }
        let Some(end) = t[1..].iter().position(|&b| b == b'"') else {
            rest = &[];
            return Some(None);
        };
        let tag = &t[..end + 2];
        rest = &t[end + 2..];
        return Some(Some((weak, tag)));
    })
}

fn is_star(v: &[u8]) -> bool {
    v.trim_ascii() == b"*"
}

/// Strong comparison of `etag` (a strong tag, quotes included) against a list.
pub fn matches_strong(list: &[u8], etag: &str) -> bool {
    is_star(list) || tags(list).any(|t| matches!(t, Some((false, tag)) if tag == etag.as_bytes()))
}

/// Weak comparison of `etag` against a list: `W/` prefixes are ignored.
pub fn matches_weak(list: &[u8], etag: &str) -> bool {
    is_star(list) || tags(list).any(|t| matches!(t, Some((_, tag)) if tag == etag.as_bytes()))
}

/// Steps 1 and 2 of §13.2.2 for a representation with the strong `etag` last modified at
/// `modified` (Unix seconds). `get_or_head` is whether the method is GET or HEAD.
pub fn evaluate(c: &Conditions<'_>, etag: &str, modified: i64, get_or_head: bool) -> Precondition {
    if let Some(v) = c.if_match {
        if !matches_strong(v, etag) {
            return Precondition::Failed;
        }
    } else if let Some(t) = c.if_unmodified_since.and_then(parse_http_date) {
        if modified > t {
            return Precondition::Failed;
        }
    }
    if let Some(v) = c.if_none_match {
        if matches_weak(v, etag) {
            return if get_or_head {
                Precondition::NotModified
            } else {
                Precondition::Failed
            };
        }
    } else if get_or_head {
        if let Some(t) = c.if_modified_since.and_then(parse_http_date) {
            if modified <= t {
                return Precondition::NotModified;
            }
        }
    }
    Precondition::Proceed
}

/// Whether `Range` applies given `If-Range` (§13.1.5): without it, yes; with an entity tag, if
/// it is strong and equals `etag`; with a date, if it is exactly the Last-Modified date (the
/// server's own date is strong here: it was taken from the file and sent by bext). An invalid
/// value means no.
pub fn if_range(value: Option<&[u8]>, etag: &str, modified: i64) -> bool {
    let Some(v) = value else { return true };
    let v = v.trim_ascii();
    if v.starts_with(b"\"") || v.starts_with(b"W/") {
        return v == etag.as_bytes();
    }
    parse_http_date(v) == Some(modified)
}
