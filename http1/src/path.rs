//! Request path normalisation: the one path that bext routes on and forwards.
//!
//! If bext routed on the path as sent and forwarded it as sent, an origin that decodes or
//! resolves the path (almost all do) would serve a different resource than the one bext's route
//! decided about: `/%61dmin/x`, `/./admin/x`, `//admin/x` and `/x/../admin/x` all miss a route
//! `/admin/*` and still reach the origin's admin handler. So the path is brought into one normal
//! form before routing, and that form is what the origin receives (`docs/conformance.md`, "What
//! the origin sees", has the policy and a table of inputs and outcomes, which the tests read).
//!
//! The normal form (RFC 3986 §6.2.2):
//! - percent-encoded unreserved characters (`ALPHA DIGIT - . _ ~`) are decoded, every other
//!   escape is kept with upper-case hex digits (`%3b` → `%3B`; bytes that are not UTF-8 stay
//!   encoded);
//! - dot segments are removed as in RFC 3986 §5.2.4, after decoding, so `%2E%2E` is `..`; a `..`
//!   that would climb above the root stays at the root (`/../x` → `/x`);
//! - empty segments are merged (`//` → `/`) unless [`PathOptions::merge_slashes`] is off;
//! - `%00` is refused, and so are an encoded `/` (`%2F`) and a `\` (raw or `%5C`) unless
//!   [`PathOptions::keep_escaped_separators`] is on: the origin may read either as a separator
//!   that bext did not see;
//! - a segment that is `.` or `..` once its `;parameters` are removed (`..;`, `.;x`) is refused:
//!   Tomcat and other servlet containers strip parameters and then resolve the dots, other
//!   servers read the segment as a name, so the two readings name different directories.
//!
//! Path parameters (`;x`) are otherwise ordinary characters and are forwarded. Routing sees
//! [`route_view`]: the normal path with each segment's parameters removed, the reading of the
//! servlet containers, so `route /admin/*` also takes `/admin;x/y` (which Tomcat serves as
//! `/admin/y`); a route that matches the forwarded path literally matches this view too.
//!
//! Allocation-free when the path is already normal, which the first pass checks without
//! writing: the result borrows the input. Only a path that changes is written out.

use std::borrow::Cow;

/// How a site's paths are normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathOptions {
    /// Merge empty segments (`//` → `/`). On by default.
    pub merge_slashes: bool,
    /// Keep `%2F`, `%5C` and `\` as sent instead of refusing the request. Off by default.
    pub keep_escaped_separators: bool,
}

impl Default for PathOptions {
    fn default() -> Self {
        PathOptions {
            merge_slashes: true,
            keep_escaped_separators: false,
        }
    }
}

/// Why a path is refused (the request is answered 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// `%00`.
    EncodedNul,
    /// `%2F`, `%5C` or `\`, with [`PathOptions::keep_escaped_separators`] off.
    EscapedSeparator,
    /// A segment that is `.` or `..` once its `;parameters` are removed.
    DotSegmentWithParameters,
    /// `%` not followed by two hex digits (the request parser refuses these first).
    BadEscape,
}

impl PathError {
    /// A short reason, for logs and problem details.
    pub fn reason(self) -> &'static str {
        match self {
            PathError::EncodedNul => "encoded NUL in the path",
            PathError::EscapedSeparator => "encoded slash or backslash in the path",
            PathError::DotSegmentWithParameters => "dot segment with parameters in the path",
            PathError::BadEscape => "invalid percent-encoding in the path",
        }
    }
}

#[inline]
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

#[inline]
fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[inline]
fn is_upper_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'A'..=b'F').contains(&b)
}

/// The byte a `%XY` at `p[i]` encodes.
#[inline]
fn escape_at(p: &[u8], i: usize) -> Result<u8, PathError> {
    match (
        p.get(i + 1).copied().and_then(hex_val),
        p.get(i + 2).copied().and_then(hex_val),
    ) {
        (Some(h), Some(l)) => Ok(h << 4 | l),
        _ => Err(PathError::BadEscape),
    }
}

/// What a segment (decoded, without its `/`) means for dot removal.
#[derive(PartialEq, Eq)]
enum Seg {
    Name,
    Dot,
    DotDot,
}

#[inline]
fn classify(seg: &[u8]) -> Result<Seg, PathError> {
    let bare = match seg.iter().position(|&b| b == b';') {
        Some(i) => &seg[..i],
        None => seg,
    };
    let kind = match bare {
        b"." => Seg::Dot,
        b".." => Seg::DotDot,
        _ => return Ok(Seg::Name),
    };
    if bare.len() != seg.len() {
        return Err(PathError::DotSegmentWithParameters);
    }
    Ok(kind)
}

/// The normal form of `path` (an origin-form path, starting with `/`; anything else, such as
/// the asterisk-form `*`, is returned as it is). Borrows `path` when it is already normal.
pub fn normalize_path<'a>(path: &'a [u8], opts: &PathOptions) -> Result<Cow<'a, [u8]>, PathError> {
    if path.first() != Some(&b'/') {
        return Ok(Cow::Borrowed(path));
    }
    if is_normal(path, opts)? {
        return Ok(Cow::Borrowed(path));
    }
    normalize_slow(path, opts).map(Cow::Owned)
}

/// Whether `path` is already in normal form (no write needed); errors as in [`normalize_path`].
fn is_normal(path: &[u8], opts: &PathOptions) -> Result<bool, PathError> {
    let mut normal = true;
    let mut seg_start = 1;
    let mut i = 1;
    while i <= path.len() {
        let b = path.get(i).copied();
        match b {
            Some(b'%') => {
                let v = escape_at(path, i)?;
                if v == 0 {
                    return Err(PathError::EncodedNul);
                }
                if (v == b'/' || v == b'\\') && !opts.keep_escaped_separators {
                    return Err(PathError::EscapedSeparator);
                }
                if is_unreserved(v) || !is_upper_hex(path[i + 1]) || !is_upper_hex(path[i + 2]) {
                    // Decoding can still turn up an error later on: finish on the slow path.
                    normal = false;
                }
                i += 3;
                continue;
            }
            Some(b'\\') if !opts.keep_escaped_separators => {
                return Err(PathError::EscapedSeparator)
            }
            Some(b'/') | None => {
                let seg = &path[seg_start..i];
                if classify(seg)? != Seg::Name
                    || (seg.is_empty() && b.is_some() && opts.merge_slashes)
                {
                    normal = false;
                }
                seg_start = i + 1;
            }
            Some(_) => {}
        }
        i += 1;
    }
    Ok(normal)
}

/// Decode, then remove dot segments (and empty ones when merging), segment by segment.
fn normalize_slow(path: &[u8], opts: &PathOptions) -> Result<Vec<u8>, PathError> {
    // Pass 1: percent-encoding. Decoding an unreserved byte never creates a `/` or a `;`, so
    // the segments are the same before and after; only `.` and `..` can appear.
    let mut dec = Vec::with_capacity(path.len());
    let mut i = 0;
    while i < path.len() {
        let b = path[i];
        if b == b'%' {
            let v = escape_at(path, i)?;
            if v == 0 {
                return Err(PathError::EncodedNul);
            }
            if (v == b'/' || v == b'\\') && !opts.keep_escaped_separators {
                return Err(PathError::EscapedSeparator);
            }
            if is_unreserved(v) {
                dec.push(v);
            } else {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                dec.extend_from_slice(&[b'%', HEX[usize::from(v >> 4)], HEX[usize::from(v & 15)]]);
            }
            i += 3;
            continue;
        }
        if b == b'\\' && !opts.keep_escaped_separators {
            return Err(PathError::EscapedSeparator);
        }
        dec.push(b);
        i += 1;
    }
    // Pass 2: RFC 3986 §5.2.4 on whole segments. `dec[0]` is the leading `/`.
    let mut kept: Vec<(usize, usize)> = Vec::new();
    let segs: Vec<&[u8]> = dec[1..].split(|&b| b == b'/').collect();
    let last = segs.len() - 1;
    let mut start = 1;
    for (n, seg) in segs.iter().enumerate() {
        let range = (start, start + seg.len());
        start += seg.len() + 1;
        match classify(seg)? {
            Seg::Dot => {}
            Seg::DotDot => {
                kept.pop();
            }
            Seg::Name if seg.is_empty() && n != last && opts.merge_slashes => continue,
            Seg::Name => {
                kept.push(range);
                continue;
            }
        }
        // A final `.` or `..` leaves the path ending in `/` (`/a/b/..` → `/a/`).
        if n == last {
            kept.push((range.0, range.0));
        }
    }
    let mut out = Vec::with_capacity(dec.len());
    for (s, e) in &kept {
        out.push(b'/');
        out.extend_from_slice(&dec[*s..*e]);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    Ok(out)
}

/// The path routes are matched against: `path` (normal form) with each segment's
/// `;parameters` removed; a segment left empty by that is merged away when `merge_slashes`
/// is on (`/;x/admin` → `/admin`). Borrows `path` when it has no `;`.
pub fn route_view<'a>(path: &'a [u8], opts: &PathOptions) -> Cow<'a, [u8]> {
    if path.first() != Some(&b'/') || !path.contains(&b';') {
        return Cow::Borrowed(path);
    }
    let mut out = Vec::with_capacity(path.len());
    let segs: Vec<&[u8]> = path[1..].split(|&b| b == b'/').collect();
    let last = segs.len() - 1;
    for (n, seg) in segs.iter().enumerate() {
        let bare = match seg.iter().position(|&b| b == b';') {
            Some(i) => &seg[..i],
            None => seg,
        };
        if bare.is_empty() && n != last && opts.merge_slashes {
            continue;
        }
        out.push(b'/');
        out.extend_from_slice(bare);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn norm(p: &str) -> Result<String, PathError> {
        normalize_path(p.as_bytes(), &PathOptions::default())
            .map(|c| String::from_utf8(c.into_owned()).unwrap())
    }

    /// (input, normal form or error), with the default options.
    const CASES: &[(&str, Result<&str, PathError>)] = &[
        ("/", Ok("/")),
        ("/a/b", Ok("/a/b")),
        ("/a/b/", Ok("/a/b/")),
        ("/%61dmin/x", Ok("/admin/x")),
        ("/%7e%2d%5F%2e", Ok("/~-_.")),
        ("/./admin/x", Ok("/admin/x")),
        ("//admin/x", Ok("/admin/x")),
        ("/a//b///c", Ok("/a/b/c")),
        ("/x/../admin/x", Ok("/admin/x")),
        ("/../x", Ok("/x")),
        ("/..", Ok("/")),
        ("/.", Ok("/")),
        ("/a/b/..", Ok("/a/")),
        ("/a/b/.", Ok("/a/b/")),
        ("/%2e%2E/admin", Ok("/admin")),
        ("/a/%2e/b", Ok("/a/b")),
        ("/a/.%2e/b", Ok("/b")),
        ("/a/...", Ok("/a/...")),
        ("/a/.b/..c", Ok("/a/.b/..c")),
        ("/a%3bb", Ok("/a%3Bb")),
        ("/a%3Fb", Ok("/a%3Fb")),
        ("/caf%c3%a9", Ok("/caf%C3%A9")),
        ("/%ff", Ok("/%FF")),
        ("/%0d%0a", Ok("/%0D%0A")),
        ("/admin;x/y", Ok("/admin;x/y")),
        ("/a/..;/admin", Err(PathError::DotSegmentWithParameters)),
        ("/a/.;x/b", Err(PathError::DotSegmentWithParameters)),
        ("/a/%2e%2e;/b", Err(PathError::DotSegmentWithParameters)),
        ("/a%2fb", Err(PathError::EscapedSeparator)),
        ("/a%2Fb", Err(PathError::EscapedSeparator)),
        ("/a%5cb", Err(PathError::EscapedSeparator)),
        ("/a\\b", Err(PathError::EscapedSeparator)),
        ("/a%00b", Err(PathError::EncodedNul)),
        ("/a%zz", Err(PathError::BadEscape)),
        ("/a%4", Err(PathError::BadEscape)),
        ("*", Ok("*")),
    ];

    #[test]
    fn normal_forms_table() {
        for (input, want) in CASES {
            let got = norm(input);
            assert_eq!(got.as_deref().map_err(|e| *e), *want, "{input}");
        }
    }

    #[test]
    fn normal_paths_are_borrowed() {
        for p in [
            "/",
            "/a/b",
            "/a/b/",
            "/a%3Bb",
            "/admin;x/y",
            "/%FF",
            "/a/...",
            "*",
        ] {
            let c = normalize_path(p.as_bytes(), &PathOptions::default()).unwrap();
            assert!(matches!(c, Cow::Borrowed(_)), "{p}");
        }
    }

    #[test]
    fn merge_slashes_off_keeps_empty_segments() {
        let o = PathOptions {
            merge_slashes: false,
            ..PathOptions::default()
        };
        let n = |p: &str| normalize_path(p.as_bytes(), &o).unwrap().into_owned();
        assert_eq!(n("//a//b"), b"//a//b");
        assert_eq!(n("/a//../b"), b"/a/b");
        assert_eq!(n("/a/./b//"), b"/a/b//");
    }

    #[test]
    fn escaped_separators_kept_on_request() {
        let o = PathOptions {
            keep_escaped_separators: true,
            ..PathOptions::default()
        };
        let n = |p: &str| normalize_path(p.as_bytes(), &o).map(|c| c.into_owned());
        assert_eq!(n("/a%2fb").unwrap(), b"/a%2Fb");
        assert_eq!(n("/a%5Cb").unwrap(), b"/a%5Cb");
        assert_eq!(n("/a\\b").unwrap(), b"/a\\b");
        assert_eq!(n("/a%00"), Err(PathError::EncodedNul));
    }

    #[test]
    fn route_view_strips_parameters() {
        let o = PathOptions::default();
        for (p, want) in [
            ("/admin;x/y", "/admin/y"),
            ("/admin;x", "/admin"),
            ("/;x/admin", "/admin"),
            ("/a/b;jsessionid=1", "/a/b"),
            ("/a/;x", "/a/"),
            ("/a/b", "/a/b"),
            ("/a%3Bb", "/a%3Bb"),
        ] {
            assert_eq!(
                route_view(p.as_bytes(), &o).as_ref(),
                want.as_bytes(),
                "{p}"
            );
        }
    }

    fn path_strategy() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            Just(&b"/"[..]),
            Just(&b"."[..]),
            Just(&b".."[..]),
            Just(&b"a"[..]),
            Just(&b";p"[..]),
            Just(&b"%2e"[..]),
            Just(&b"%2E"[..]),
            Just(&b"%41"[..]),
            Just(&b"%3b"[..]),
            Just(&b"%ff"[..]),
            Just(&b"%2f"[..]),
            Just(&b"%00"[..]),
            Just(&b"~"[..]),
        ];
        proptest::collection::vec(piece, 0..16).prop_map(|v| {
            let mut p = vec![b'/'];
            for x in v {
                p.extend_from_slice(x);
            }
            p
        })
    }

    proptest! {
        #[test]
        fn normalisation_is_idempotent_and_leaves_no_dot_or_empty_segments(
            p in path_strategy(),
            merge in any::<bool>(),
            keep in any::<bool>(),
        ) {
            let o = PathOptions { merge_slashes: merge, keep_escaped_separators: keep };
            if let Ok(n) = normalize_path(&p, &o) {
                // The fast check agrees with the slow path.
                prop_assert_eq!(normalize_slow(&p, &o).unwrap(), n.as_ref());
                let again = normalize_path(&n, &o).unwrap();
                prop_assert!(matches!(again, Cow::Borrowed(_)));
                prop_assert_eq!(again.as_ref(), n.as_ref());
                let s = n.as_ref();
                let has = |w: &[u8]| s.windows(w.len()).any(|x| x == w);
                prop_assert!(!has(b"/../") && !has(b"/./"));
                prop_assert!(!s.ends_with(b"/..") && !s.ends_with(b"/."));
                if merge {
                    prop_assert!(!has(b"//"));
                }
                let v = route_view(s, &o);
                prop_assert!(!v.windows(4).any(|x| x == b"/../"));
            }
        }
    }
}
