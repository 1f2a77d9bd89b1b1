//! Edits to the response head when its body is compressed, as pure functions over bytes.
//!
//! The engine owns the header representation; these functions only read field names and
//! values and write new values into a caller's buffer, so they work with any of them. For a
//! compressed response the engine:
//!
//! 1. sets `Content-Encoding` to [`Encoding::token`](bext_ir::Encoding::token);
//! 2. applies [`edit`] to every field: `Content-Length` and `Accept-Ranges` go (the length is
//!    unknown until the end, so the body is framed chunked, or by close for HTTP/1.0; byte
//!    ranges of the compressed body are not served), a strong `ETag` becomes weak (the bytes
//!    differ from the origin's, the meaning does not: RFC 9110 §8.8.3);
//! 3. replaces the `Vary` lines with [`vary`]'s value when it returns one. This also applies
//!    to responses sent uncompressed that [`Policy::varies`](crate::Policy::varies) says could
//!    have been.

/// What to do with one response field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    /// Leave it as it is.
    Keep,
    /// Remove it.
    Remove,
    /// Replace its value with what was written to the output buffer.
    Replace,
}

/// The edit a compressed response needs on the field `name: value` (any case); a replacement
/// value is appended to `out`.
pub fn edit(name: &[u8], value: &[u8], out: &mut Vec<u8>) -> Edit {
    if name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"accept-ranges") {
        Edit::Remove
    } else if name.eq_ignore_ascii_case(b"etag") && weaken_etag(value, out) {
        Edit::Replace
    } else {
        Edit::Keep
    }
}

/// Appends the weak form of a strong entity tag (`"x"` ⇒ `W/"x"`) to `out` and returns true;
/// returns false, writing nothing, for a tag already weak (`W/"x"`) or not an entity tag at
/// all (left for the client to judge, as the origin sent it).
pub fn weaken_etag(etag: &[u8], out: &mut Vec<u8>) -> bool {
    let t = crate::negotiate::trim_ows(etag);
    let strong = t.len() >= 2 && t[0] == b'"' && t[t.len() - 1] == b'"';
    if strong {
        out.extend_from_slice(b"W/");
        out.extend_from_slice(t);
    }
    strong
}

/// The `Vary` value a response that depends on `Accept-Encoding` needs, given its current
/// `Vary` lines: when they already name `Accept-Encoding` (any case) or are `*`, returns false
/// and writes nothing (they stay); otherwise appends to `out` their members followed by
/// `Accept-Encoding`, joined by `, `, and returns true: the engine replaces every `Vary`
/// line with that one.
pub fn vary(existing: &[&[u8]], out: &mut Vec<u8>) -> bool {
    let members = || {
        existing
            .iter()
            .flat_map(|v| v.split(|&b| b == b','))
            .map(crate::negotiate::trim_ows)
            .filter(|m| !m.is_empty())
    };
    if members().any(|m| m == b"*" || m.eq_ignore_ascii_case(b"accept-encoding")) {
        return false;
    }
    for m in members() {
        out.extend_from_slice(m);
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(b"Accept-Encoding");
    true
}
