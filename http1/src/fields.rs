//! Field lines (RFC 9112 §5) and the field values that decide framing and persistence:
//! Content-Length, Transfer-Encoding, Connection, Host. Shared by the request and response
//! parsers, which map the errors to their own [`ErrorKind`]s.

use crate::chars::{self, DIGIT};
use crate::{ErrorKind, Header, Span};

/// Why a field section was rejected; the caller turns it into an [`crate::Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FieldError {
    pub kind: ErrorKind,
    pub offset: usize,
}

pub(crate) fn ferr(kind: ErrorKind, offset: usize) -> FieldError {
    FieldError { kind, offset }
}

/// Outcome of scanning the field section: `Some(end)` is the offset after the final CRLF;
/// `None` means the buffer ends first.
pub(crate) type Scan = Result<Option<usize>, FieldError>;

/// Parse field lines from `pos` up to and including the empty line that ends the section.
///
/// Strict: every line ends in CRLF (bare LF and bare CR are errors), a line may not start with
/// whitespace (obs-fold, or whitespace before the first field), the name is a non-empty token
/// directly followed by `:`, the value holds only HTAB, SP, VCHAR and obs-text.
///
/// `candidates` receives the index of every field line whose name may be a known one (see
/// [`Candidates`]), so that the analysis after it visits those lines only.
#[inline]
pub(crate) fn parse_fields(
    buf: &[u8],
    mut pos: usize,
    max_headers: usize,
    headers: &mut Vec<Header>,
    candidates: &mut Candidates,
) -> Scan {
    loop {
        match buf.get(pos) {
            None => return Ok(None),
            Some(b'\r') => {
                return match buf.get(pos + 1) {
                    None => Ok(None),
                    Some(b'\n') => Ok(Some(pos + 2)),
                    Some(_) => Err(ferr(ErrorKind::Field, pos + 1)),
                };
            }
            Some(_) => {}
        }
        // The end of the line first, in one scan from its start: the next line starts two bytes
        // after it, so this scan is the only one each line waits for; the name scan below
        // overlaps with the next lines' instead of adding to a chain of dependent scans. With
        // a CRLF there, the value scan would stop at the same CR (the name, the colon and OWS
        // hold no byte it stops at); without one, the line is checked in order, as written,
        // so that an error earlier on the line wins.
        let line_end = chars::scan_value(buf, pos);
        let whole = buf.get(line_end..line_end + 2) == Some(b"\r\n");
        let name_start = pos;
        pos = chars::scan_token(buf, pos);
        match buf.get(pos) {
            None => return Ok(None),
            Some(b':') if pos > name_start => {}
            // Whitespace before the colon, a byte that is not a tchar, or an empty name; at the
            // start of the line: a bare LF, obs-fold or whitespace before the first field line.
            Some(_) => return Err(ferr(ErrorKind::Field, pos)),
        }
        let name_end = pos;
        pos += 1;
        // Usually one SP: test it without a loop, then loop for anything longer.
        if let Some(b' ') = buf.get(pos) {
            pos += 1;
        }
        while let Some(b' ' | b'\t') = buf.get(pos) {
            pos += 1;
        }
        let value_start = pos;
        pos = if whole {
            line_end
        } else {
            chars::scan_value(buf, pos)
        };
        match buf.get(pos) {
            None => return Ok(None),
            Some(b'\r') => {}
            Some(_) => return Err(ferr(ErrorKind::Field, pos)),
        }
        match buf.get(pos + 1) {
            None => return Ok(None),
            Some(b'\n') => {}
            // Bare CR.
            Some(_) => return Err(ferr(ErrorKind::Field, pos + 1)),
        }
        let mut value_end = pos;
        while let [.., b' ' | b'\t'] = &buf[value_start..value_end] {
            value_end -= 1;
        }
        pos += 2;
        if headers.len() >= max_headers {
            return Err(ferr(ErrorKind::HeadTooLarge, name_start));
        }
        candidates.note(headers.len(), name_end - name_start, buf[name_start]);
        headers.push(Header {
            name: span(name_start, name_end),
            value: span(value_start, value_end),
        });
    }
}

/// Spans are u32: callers cap the parsed window at `u32::MAX` bytes.
#[inline(always)]
pub(crate) fn span(start: usize, end: usize) -> Span {
    Span {
        start: start as u32,
        end: end as u32,
    }
}

/// Field names that decide framing, persistence or routing, recognised once per header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Known {
    Host,
    ContentLength,
    TransferEncoding,
    Connection,
    Upgrade,
    Expect,
    Other,
}

/// The field lines that may carry a known name, in order: a name has to have the length and
/// first letter of one of them to be a candidate, which few other names do.
///
/// Kept while the field lines are parsed so that the analysis does not walk every line a
/// second time. Past [`Candidates::MAX`] candidates the list is dropped and the analysis visits
/// every line, which gives the same result.
#[derive(Debug)]
pub(crate) struct Candidates {
    /// One slot more than the list holds: candidates past the limit are written there.
    index: [u32; Candidates::MAX + 1],
    len: usize,
}

impl Candidates {
    const MAX: usize = 16;

    pub fn new() -> Self {
        Candidates {
            index: [0; Candidates::MAX + 1],
            len: 0,
        }
    }

    /// Record field line `index` if its name (`name_len` bytes, starting with `first`) may be
    /// a known one.
    #[inline(always)]
    fn note(&mut self, index: usize, name_len: usize, first: u8) {
        if KNOWN_FIRST.get(name_len) == Some(&(first | 0x20)) {
            // Spans are u32, so is a field line's index.
            self.index[self.len.min(Candidates::MAX)] = index as u32;
            self.len += 1;
        }
    }

    /// The indices of the field lines to analyse, in order.
    pub fn lines(&self, headers: usize) -> Lines<'_> {
        if self.len <= Candidates::MAX {
            Lines::Listed(self.index[..self.len].iter())
        } else {
            Lines::All(0..headers)
        }
    }
}

/// Iterator of [`Candidates::lines`].
pub(crate) enum Lines<'a> {
    Listed(std::slice::Iter<'a, u32>),
    All(std::ops::Range<usize>),
}

impl Iterator for Lines<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        match self {
            Lines::Listed(list) => list.next().map(|&i| i as usize),
            Lines::All(all) => all.next(),
        }
    }
}

/// The lower-case first letter of the known name of each length, 0 for none.
const KNOWN_FIRST: [u8; 32] = {
    let mut t = [0u8; 32];
    let mut len = 0;
    while len < KNOWN_BY_LEN.len() {
        if let Some((_, name)) = KNOWN_BY_LEN[len] {
            t[len] = name[0];
        }
        len += 1;
    }
    t
};

/// The known name of each length (at most one per length), lower case.
const KNOWN_BY_LEN: [Option<(Known, &[u8])>; 18] = {
    let mut t: [Option<(Known, &[u8])>; 18] = [None; 18];
    t[4] = Some((Known::Host, b"host"));
    t[6] = Some((Known::Expect, b"expect"));
    t[7] = Some((Known::Upgrade, b"upgrade"));
    t[10] = Some((Known::Connection, b"connection"));
    t[14] = Some((Known::ContentLength, b"content-length"));
    t[17] = Some((Known::TransferEncoding, b"transfer-encoding"));
    t
};

/// Recognise a field name that [`parse_fields`] accepted (a token).
#[inline(always)]
pub(crate) fn classify(name: &[u8]) -> Known {
    // Length, then first letter, then the whole name: most fields share a length with a known
    // one but not its first letter. A table rather than a `match` on the length: the match
    // compiles to an indirect jump that mispredicts on every field of a varied head.
    match KNOWN_BY_LEN.get(name.len()) {
        Some(&Some((known, lower)))
            if name[0] | 0x20 == lower[0] && token_eq_lower(name, lower) =>
        {
            known
        }
        _ => Known::Other,
    }
}

/// ASCII case-insensitive equality of a token with a lower-case name of letters and `-`.
///
/// Setting bit 5 of each byte is exact here: the only bytes that become a lower-case letter are
/// that letter in either case, and the only other byte that becomes `-` is CR, never in a token.
#[inline(always)]
pub(crate) fn token_eq_lower(token: &[u8], lower: &[u8]) -> bool {
    let n = token.len();
    if n != lower.len() {
        return false;
    }
    // Two overlapping words cover names of 4 to 16 bytes, every known name and option; a byte
    // loop takes the rest. `lower` is unchanged by setting bit 5.
    let eq = |at: usize, width: usize| {
        let mut t = [0u8; 8];
        let mut l = [0u8; 8];
        t[..width].copy_from_slice(&token[at..at + width]);
        l[..width].copy_from_slice(&lower[at..at + width]);
        u64::from_le_bytes(t) | (LO20 >> (8 * (8 - width))) == u64::from_le_bytes(l)
    };
    match n {
        8..=16 => eq(0, 8) && eq(n - 8, 8),
        4..=7 => eq(0, 4) && eq(n - 4, 4),
        _ => token.iter().zip(lower).all(|(&t, &l)| t | 0x20 == l),
    }
}

const LO20: u64 = 0x2020_2020_2020_2020;

/// `Content-Length = 1*DIGIT` (RFC 9110 §8.6), no sign, no list, no overflow.
#[inline]
pub(crate) fn parse_content_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &b in v {
        if !chars::is(b, DIGIT) {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

/// Running state over every Transfer-Encoding field line of a message (they form one list).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TransferCodings {
    pub present: bool,
    /// The last coding seen so far is `chunked`.
    pub chunked_last: bool,
    /// A coding other than `chunked` was listed (valid token, not implemented).
    pub other_coding: bool,
}

impl TransferCodings {
    /// Add one Transfer-Encoding field line. `raw` is everything between the colon and the CRLF,
    /// optional whitespace included: bext accepts only SP as whitespace in this field.
    ///
    /// Rejected: empty elements, parameters, `identity`, anything after `chunked` (including a
    /// second `chunked`), HTAB, and every byte outside token characters, SP and `,`.
    pub fn add(&mut self, raw: &[u8]) -> Result<(), usize> {
        self.present = true;
        let value = trim_sp(raw);
        if value.is_empty() {
            return Err(0);
        }
        for (start, element) in split_list(value) {
            let e = trim_sp(element);
            if e.is_empty() || !chars::is_token(e) {
                return Err(start);
            }
            if self.chunked_last {
                // `chunked` must be the final coding and applied once (RFC 9112 §6.1).
                return Err(start);
            }
            if e.eq_ignore_ascii_case(b"chunked") {
                self.chunked_last = true;
            } else if e.eq_ignore_ascii_case(b"identity") {
                // Obsolete since RFC 7230; no meaning as a transfer coding.
                return Err(start);
            } else {
                self.other_coding = true;
            }
        }
        Ok(())
    }
}

/// Split a list value at commas, with each element's offset in `v`.
#[inline]
pub(crate) fn split_list(v: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let mut start = 0usize;
    v.split(|&b| b == b',').map(move |e| {
        let s = start;
        start += e.len() + 1;
        (s, e)
    })
}

/// Trim SP only: the callers that use it reject HTAB on purpose.
#[inline]
pub(crate) fn trim_sp(mut s: &[u8]) -> &[u8] {
    while let [b' ', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' '] = s {
        s = rest;
    }
    s
}

/// Connection options found in one Connection field line.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ConnectionOptions {
    pub close: bool,
    pub keep_alive: bool,
    pub upgrade: bool,
}

/// Parse a `Connection` value (`#connection-option`, RFC 9110 §7.6.1): push the span of every
/// option into `tokens`. Empty list elements are ignored as RFC 9110 §5.6.1 requires; an
/// element that is not a token is an error (returns its offset in `value`, the byte after the
/// comma that opens it).
pub(crate) fn parse_connection(
    value: &[u8],
    value_start: usize,
    tokens: &mut Vec<Span>,
    opts: &mut ConnectionOptions,
) -> Result<(), usize> {
    // One pass: OWS, a token (possibly empty), OWS, then a comma or the end of the value.
    let mut element = 0;
    loop {
        let start = skip_ows(value, element);
        let end = chars::scan_token(value, start);
        let next = skip_ows(value, end);
        match value.get(next) {
            None | Some(b',') => {}
            Some(_) => return Err(element),
        }
        let e = &value[start..end];
        if !e.is_empty() {
            tokens.push(span(value_start + start, value_start + end));
            if token_eq_lower(e, b"close") {
                opts.close = true;
            } else if token_eq_lower(e, b"keep-alive") {
                opts.keep_alive = true;
            } else if token_eq_lower(e, b"upgrade") {
                opts.upgrade = true;
            }
        }
        if next >= value.len() {
            return Ok(());
        }
        element = next + 1;
    }
}

#[inline(always)]
fn skip_ows(s: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t') = s.get(i) {
        i += 1;
    }
    i
}

/// `uri-host [ ":" port ]` as bext accepts it in Host and in request-target authorities:
/// a non-empty name of RFC 3986 unreserved characters (no percent-encoding, no sub-delims:
/// no DNS name has them and `,` hides a list), an IPv4 address, or a bracketed IPv6 literal;
/// the port, if the colon is present, is 1 to 5 digits up to 65535. No userinfo.
pub(crate) fn valid_authority(a: &[u8], require_port: bool) -> bool {
    let (host_ok, rest) = if let Some(inner) = a.strip_prefix(b"[") {
        match inner.iter().position(|&b| b == b']') {
            Some(close) => {
                let lit = &inner[..close];
                let ok = lit.len() >= 2
                    && lit
                        .iter()
                        .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
                    && lit.contains(&b':');
                (ok, &inner[close + 1..])
            }
            None => return false,
        }
    } else {
        let end = chars::scan_host(a, 0);
        (end > 0, &a[end..])
    };
    if !host_ok {
        return false;
    }
    match rest {
        [] => !require_port,
        [b':', port @ ..] => valid_port(port),
        _ => false,
    }
}

fn valid_port(p: &[u8]) -> bool {
    (1..=5).contains(&p.len())
        && p.iter().all(|&b| chars::is(b, DIGIT))
        && parse_content_length(p).is_some_and(|n| n <= 65535)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_list_every_known_field_line_in_order() {
        let names = [
            "Host",
            "Accept",
            "connection",
            "Cookie",
            "Content-Length",
            "content-type",
            "Hose",
            "Expect",
            "X-Forwarded-For",
            "upgrade",
            "User-Agent",
            "TRANSFER-ENCODING",
            "Transfer-Encodink",
            "Referer",
        ];
        // Enough lines for the list to be exact, full, and overflowing.
        for count in [0, 1, 5, 16, 17, 20, 27, 28, 29, 40, 80] {
            let mut head = Vec::new();
            let lines: Vec<&str> = names.iter().cycle().take(count).copied().collect();
            for name in &lines {
                head.extend_from_slice(format!("{name}: v\r\n").as_bytes());
            }
            head.extend_from_slice(b"\r\n");
            let mut headers = Vec::new();
            let mut candidates = Candidates::new();
            let end = parse_fields(&head, 0, 100, &mut headers, &mut candidates);
            assert_eq!(end, Ok(Some(head.len())), "{count} lines");
            let known: Vec<usize> = (0..lines.len())
                .filter(|&i| classify(lines[i].as_bytes()) != Known::Other)
                .collect();
            let visited: Vec<usize> = candidates
                .lines(headers.len())
                .filter(|&i| classify(headers[i].name.get(&head)) != Known::Other)
                .collect();
            assert_eq!(visited, known, "{count} lines");
        }
    }

    #[test]
    fn token_equality_ignores_case_only() {
        let names = [
            "te",
            "host",
            "close",
            "expect",
            "upgrade",
            "keep-alive",
            "connection",
            "content-length",
            "transfer-encoding",
            "proxy-connection",
        ];
        for lower in names {
            for other in names {
                assert_eq!(
                    token_eq_lower(other.as_bytes(), lower.as_bytes()),
                    other == lower
                );
            }
            let upper = lower.to_ascii_uppercase();
            assert!(
                token_eq_lower(upper.as_bytes(), lower.as_bytes()),
                "{upper}"
            );
            // Every single-byte change of a tchar is seen, wherever it is.
            for at in 0..lower.len() {
                for b in (0u8..=255).filter(|&b| chars::is_tchar(b)) {
                    let mut t = lower.as_bytes().to_vec();
                    t[at] = b;
                    let same = b.to_ascii_lowercase() == lower.as_bytes()[at];
                    assert_eq!(token_eq_lower(&t, lower.as_bytes()), same, "{t:?} {lower}");
                }
            }
        }
    }

    #[test]
    fn known_names() {
        let cases: &[(&str, Known)] = &[
            ("Host", Known::Host),
            ("hOST", Known::Host),
            ("Hos_", Known::Other),
            ("Content-Length", Known::ContentLength),
            ("Content_Length", Known::Other),
            ("Transfer-Encoding", Known::TransferEncoding),
            ("Connection", Known::Connection),
            ("Connectiom", Known::Other),
            ("Upgrade", Known::Upgrade),
            ("Expect", Known::Expect),
            ("Accept", Known::Other),
            ("X", Known::Other),
            ("Proxy-Connection", Known::Other),
        ];
        for &(name, known) in cases {
            assert_eq!(classify(name.as_bytes()), known, "{name}");
        }
    }

    #[test]
    fn content_length_values() {
        let cases: &[(&str, Option<u64>)] = &[
            ("0", Some(0)),
            ("005", Some(5)),
            ("18446744073709551615", Some(u64::MAX)),
            ("18446744073709551616", None),
            ("", None),
            ("+5", None),
            ("-1", None),
            ("-0", None),
            ("0x5", None),
            ("1_0", None),
            ("1 0", None),
            ("5, 5", None),
            ("0o5", None),
        ];
        for &(v, expected) in cases {
            assert_eq!(parse_content_length(v.as_bytes()), expected, "{v:?}");
        }
    }

    #[test]
    fn authorities() {
        let cases: &[(&str, bool, bool)] = &[
            ("example.com", false, true),
            ("example.com:80", false, true),
            ("example.com:", false, false),
            ("example.com:65536", false, false),
            ("example.com:080", false, true),
            ("127.0.0.1:8080", false, true),
            ("[::1]:443", false, true),
            ("[::1]", false, true),
            ("[::1", false, false),
            ("[]", false, false),
            ("user@example.com", false, false),
            ("example.com/path", false, false),
            ("a, b", false, false),
            ("a,b", false, false),
            ("", false, false),
            (":80", false, false),
            ("example.com", true, false),
            ("example.com:443", true, true),
            ("ex%41mple.com", false, false),
        ];
        for &(a, port, expected) in cases {
            assert_eq!(valid_authority(a.as_bytes(), port), expected, "{a:?}");
        }
    }

    #[test]
    fn transfer_encoding_lists() {
        // (field lines, Ok(chunked_last, other_coding) or Err)
        type Row = (&'static [&'static str], Option<(bool, bool)>);
        let cases: &[Row] = &[
            (&["chunked"], Some((true, false))),
            (&["Chunked"], Some((true, false))),
            (&["CHUNKED"], Some((true, false))),
            (&["gzip, chunked"], Some((true, true))),
            (&["gzip", "chunked"], Some((true, true))),
            (&["gzip"], Some((false, true))),
            (&["xchunked"], Some((false, true))),
            (&["chunked, gzip"], None),
            (&["chunked", "gzip"], None),
            (&["chunked, chunked"], None),
            (&["chunked", "chunked"], None),
            (&["chunked", "identity"], None),
            (&["identity"], None),
            (&[""], None),
            (&[", chunked"], None),
            (&["chunked,"], None),
            (&["chunked;q=1"], None),
            (&["chunked ;"], None),
            (&["\"chunked\""], None),
            (&["chunked\t"], None),
            (&["gzip,\tchunked"], None),
        ];
        for &(lines, expected) in cases {
            let mut te = TransferCodings::default();
            let got = lines
                .iter()
                .try_for_each(|l| te.add(l.as_bytes()).map(|_| ()));
            let got = got.ok().map(|_| (te.chunked_last, te.other_coding));
            assert_eq!(got, expected, "{lines:?}");
        }
        let mut te = TransferCodings::default();
        assert!(te.add(b"\tchunked").is_err(), "HTAB before the value");
    }
}
