//! Byte classes of RFC 9110/9112 as lookup tables, and the word-at-a-time scan of field values.
//!
//! Every decision on a single byte goes through one table load; the parser's hot loop over field
//! values checks eight bytes per step (SWAR) because values are most of a request head's bytes.

/// `tchar` (RFC 9110 §5.6.2): method names, field names, codings, connection options.
pub const TCHAR: u8 = 1;
/// Field value byte (RFC 9110 §5.5): HTAB, SP, VCHAR, obs-text. No CR, LF, NUL, other CTLs, DEL.
pub const VALUE: u8 = 2;
/// Byte allowed in a request target (RFC 3986 characters minus `#`; `%` is checked separately).
pub const URI: u8 = 4;
/// HEXDIG.
pub const HEX: u8 = 8;
/// DIGIT.
pub const DIGIT: u8 = 16;
/// Host name byte accepted by bext: RFC 3986 `unreserved` (ALPHA DIGIT `-` `.` `_` `~`).
pub const HOSTNAME: u8 = 32;
/// `qdtext` of a quoted-string (RFC 9110 §5.6.4): HTAB, SP, `!`, `#`-`[`, `]`-`~`, obs-text.
pub const QDTEXT: u8 = 64;
/// Target byte that needs no second look: [`URI`] without `%` and `?`.
pub const URI_PLAIN: u8 = 128;

const fn class_of(b: u8) -> u8 {
    let mut c = 0u8;
    let alpha = b.is_ascii_alphabetic();
    let digit = b.is_ascii_digit();
    if alpha
        || digit
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
    {
        c |= TCHAR;
    }
    if b == b'\t' || (b >= 0x20 && b != 0x7f) {
        c |= VALUE;
    }
    if alpha
        || digit
        || matches!(
            b,
            // unreserved
            b'-' | b'.' | b'_' | b'~'
            // gen-delims without '#'
            | b':' | b'/' | b'?' | b'[' | b']' | b'@'
            // sub-delims
            | b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
            // pct-encoded introducer
            | b'%'
        )
    {
        c |= URI;
    }
    if c & URI != 0 && b != b'%' && b != b'?' {
        c |= URI_PLAIN;
    }
    if b.is_ascii_hexdigit() {
        c |= HEX;
    }
    if digit {
        c |= DIGIT;
    }
    if alpha || digit || matches!(b, b'-' | b'.' | b'_' | b'~') {
        c |= HOSTNAME;
    }
    if b == b'\t'
        || b == b' '
        || b == b'!'
        || (b >= 0x23 && b <= 0x5b)
        || (b >= 0x5d && b <= 0x7e)
        || b >= 0x80
    {
        c |= QDTEXT;
    }
    c
}

const fn build() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = class_of(i as u8);
        i += 1;
    }
    t
}

/// The class bits of every byte value.
pub static CLASS: [u8; 256] = build();

#[inline(always)]
pub fn is(b: u8, class: u8) -> bool {
    CLASS[b as usize] & class != 0
}

#[inline(always)]
pub fn is_tchar(b: u8) -> bool {
    is(b, TCHAR)
}

/// True if `s` is a non-empty token.
#[inline]
pub fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Index of the first byte at or after `i` that is not a field value byte (or `buf.len()`).
///
/// Eight bytes at a time: a word is clean when it has no byte below 0x20 and no 0x7F. A word with
/// such a byte (an HTAB, or the CR that ends the line) falls back to the table.
#[inline]
pub fn scan_value(buf: &[u8], mut i: usize) -> usize {
    // Two words per step: one branch per 16 bytes on the common long values. The lowest flagged
    // byte of a mask is exact (borrows only run upwards), so the stop needs no byte loop.
    while let Some(block) = buf.get(i..i + 16) {
        let (a, b) = block.split_at(8);
        let (Ok(a), Ok(b)) = (<[u8; 8]>::try_from(a), <[u8; 8]>::try_from(b)) else {
            break;
        };
        let (ma, mb) = (
            special(u64::from_le_bytes(a)),
            special(u64::from_le_bytes(b)),
        );
        if ma | mb == 0 {
            i += 16;
            continue;
        }
        let at = if ma != 0 {
            i + (ma.trailing_zeros() / 8) as usize
        } else {
            i + 8 + (mb.trailing_zeros() / 8) as usize
        };
        if buf[at] != b'\t' {
            return at;
        }
        i = at + 1;
    }
    while let Some(&b) = buf.get(i) {
        if !is(b, VALUE) {
            break;
        }
        i += 1;
    }
    i
}

/// Non-zero if the word has a byte below 0x20 or a 0x7F (exact as an "any" test).
#[inline(always)]
fn special(w: u64) -> u64 {
    let below_space = w.wrapping_sub(LO * 0x20) & !w & HI;
    let x = w ^ (LO * 0x7f);
    let del = x.wrapping_sub(LO) & !x & HI;
    below_space | del
}

/// What [`scan_target`] found.
#[derive(Debug, Clone, Copy)]
pub struct TargetScan {
    /// Index of the first byte that is not a target byte (or `buf.len()`).
    pub end: usize,
    /// Index of the first `?`, if any.
    pub query: Option<usize>,
    /// A `%` was seen (percent-encoding still to be checked).
    pub percent: bool,
}

/// Scan a request target from `i`: its end, first `?` and whether it has a `%`, in one pass.
///
/// Eight bytes at a time: [`not_target_word`] flags, exactly, the bytes outside the classes
/// most targets are made of; the first flagged byte is then looked up in the table, and the
/// scan resumes right after it unless it ends the target. (Resuming at the next byte and
/// re-testing the whole word would cost up to eight word tests per `?`.)
#[inline]
pub fn scan_target(buf: &[u8], mut i: usize) -> TargetScan {
    let mut query = None;
    let mut percent = false;
    loop {
        let at = match buf.get(i..i + 8).and_then(|w| <[u8; 8]>::try_from(w).ok()) {
            Some(word) => {
                let m = not_target_word(u64::from_le_bytes(word));
                if m == 0 {
                    i += 8;
                    continue;
                }
                i + (m.trailing_zeros() / 8) as usize
            }
            None => i,
        };
        match buf.get(at) {
            // The SP after the target first: it saves the table load on the common path.
            Some(b' ') => {
                return TargetScan {
                    end: at,
                    query,
                    percent,
                }
            }
            Some(&b) if is(b, URI_PLAIN) => {}
            Some(b'?') => {
                query.get_or_insert(at);
            }
            Some(b'%') => percent = true,
            _ => {
                return TargetScan {
                    end: at,
                    query,
                    percent,
                }
            }
        }
        i = at + 1;
    }
}

/// The high bit of every byte of `w` outside `&`..`;` (punctuation and digits), letters, `=`
/// and `_`: the bytes of nearly every path and query. Exact per byte, like [`not_name_word`].
#[inline(always)]
fn not_target_word(w: u64) -> u64 {
    let y = w & !HI;
    let l = y | (LO * 0x20);
    let letter = in_range(l, b'a', b'z');
    let punct_digit = in_range(y, b'&', b';');
    let eq = is_byte(y, b'=');
    let low_line = is_byte(y, b'_');
    !((letter | punct_digit | eq | low_line) & !w) & HI
}

/// High bit set in each byte of `y` (all bytes below 0x80) within `lo..=hi`; other bits noise.
#[inline(always)]
fn in_range(y: u64, lo: u8, hi: u8) -> u64 {
    y.wrapping_add(LO * u64::from(0x80 - lo)) & !y.wrapping_add(LO * u64::from(0x7f - hi))
}

/// High bit set in each byte of `y` (all bytes below 0x80) equal to `b`; other bits noise.
#[inline(always)]
fn is_byte(y: u64, b: u8) -> u64 {
    !(y ^ (LO * u64::from(b))).wrapping_add(LO * 0x7f)
}

/// Index of the first byte at or after `i` that is not a tchar (or `buf.len()`).
///
/// Eight bytes at a time: [`not_name_word`] flags, exactly, every byte other than a letter, a
/// digit or `-` (the bytes of nearly every method and field name), so the first flagged byte is
/// found without a byte loop. It is the end of the token unless it is one of the rarer tchars
/// (`_`, `.`, `!` ...), which the table confirms before the scan goes on.
#[inline]
pub fn scan_token(buf: &[u8], mut i: usize) -> usize {
    while let Some(word) = buf.get(i..i + 8) {
        let Ok(word) = <[u8; 8]>::try_from(word) else {
            break;
        };
        let m = not_name_word(u64::from_le_bytes(word));
        if m == 0 {
            i += 8;
            continue;
        }
        let at = i + (m.trailing_zeros() / 8) as usize;
        // The colon after a field name first: it saves the table load on the common path.
        let b = buf[at];
        if b == b':' || !is_tchar(b) {
            return at;
        }
        i = at + 1;
    }
    while let Some(&b) = buf.get(i) {
        if !is_tchar(b) {
            break;
        }
        i += 1;
    }
    i
}

/// Index of the first byte at or after `i` that is not a [`HOSTNAME`] byte (or `buf.len()`).
///
/// Eight bytes at a time like [`scan_token`]: [`not_host_word`] flags exactly the bytes other
/// than letters, digits, `-` and `.`, and the table settles the rare `_` and `~`.
#[inline]
pub fn scan_host(buf: &[u8], mut i: usize) -> usize {
    while let Some(word) = buf.get(i..i + 8) {
        let Ok(word) = <[u8; 8]>::try_from(word) else {
            break;
        };
        let m = not_host_word(u64::from_le_bytes(word));
        if m == 0 {
            i += 8;
            continue;
        }
        let at = i + (m.trailing_zeros() / 8) as usize;
        if !is(buf[at], HOSTNAME) {
            return at;
        }
        i = at + 1;
    }
    while let Some(&b) = buf.get(i) {
        if !is(b, HOSTNAME) {
            break;
        }
        i += 1;
    }
    i
}

/// The high bit of every byte of `w` that is not an ASCII letter, digit, `-` or `.`; exact per
/// byte, like [`not_name_word`].
#[inline(always)]
fn not_host_word(w: u64) -> u64 {
    let y = w & !HI;
    let l = y | (LO * 0x20);
    let letter = in_range(l, b'a', b'z');
    let digit = in_range(y, b'0', b'9');
    let dash_dot = in_range(y, b'-', b'.');
    !((letter | digit | dash_dot) & !w) & HI
}

/// The high bit of every byte of `w` that is not an ASCII letter, digit or `-`; exact per byte
/// (no carry crosses a byte: every sum stays under 0x100 once the high bits are masked).
#[inline(always)]
fn not_name_word(w: u64) -> u64 {
    let y = w & !HI;
    // Setting bit 5 folds upper case onto lower case; no other byte lands on a letter.
    let l = y | (LO * 0x20);
    let letter = in_range(l, b'a', b'z');
    let digit = in_range(y, b'0', b'9');
    let dash = is_byte(y, b'-');
    !((letter | digit | dash) & !w) & HI
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_value_agrees_with_the_table_on_every_byte_at_every_position() {
        for bad in 0u8..=255 {
            // Long enough for full blocks, the padded tail, and stops in every word of a block.
            for pos in 0..70 {
                let mut v = vec![b'a'; 72];
                v[pos] = bad;
                let expected = if is(bad, VALUE) { 72 } else { pos };
                assert_eq!(scan_value(&v, 0), expected, "byte {bad:#x} at {pos}");
            }
        }
    }

    #[test]
    fn block_scans_agree_with_the_table_on_every_byte_at_every_position() {
        for bad in 0u8..=255 {
            for pos in 0..40 {
                let mut v = vec![b'a'; 44];
                v[pos] = bad;
                let token_end = if is_tchar(bad) { 44 } else { pos };
                assert_eq!(scan_token(&v, 0), token_end, "token byte {bad:#x} at {pos}");
                let t = scan_target(&v, 0);
                let target_end = if is(bad, URI) { 44 } else { pos };
                assert_eq!(t.end, target_end, "target byte {bad:#x} at {pos}");
                assert_eq!(t.query, (bad == b'?').then_some(pos));
                assert_eq!(t.percent, bad == b'%');
            }
        }
    }

    #[test]
    fn name_word_flags_exactly_the_bytes_outside_letters_digits_and_dash() {
        for b in 0u8..=255 {
            let clean = b.is_ascii_alphanumeric() || b == b'-';
            for pos in 0..8 {
                // Neighbours of every kind, so a carry or borrow across bytes would show.
                for fill in [b'a', b'Z', b'0', b'-', 0x00, 0xff, 0x7f, b':'] {
                    let mut w = [fill; 8];
                    w[pos] = b;
                    let m = not_name_word(u64::from_le_bytes(w));
                    let flagged = m & (0x80 << (8 * pos)) != 0;
                    assert_eq!(flagged, !clean, "byte {b:#x} at {pos} among {fill:#x}");
                    let fill_clean = fill.is_ascii_alphanumeric() || fill == b'-';
                    let others = m & !(0x80u64 << (8 * pos));
                    assert_eq!(others == 0, fill_clean, "neighbours {fill:#x} of {b:#x}");
                }
            }
        }
    }

    #[test]
    fn scans_stop_at_the_end_of_every_short_buffer() {
        for len in 0..40 {
            let v = vec![b'a'; len];
            for start in 0..=len {
                assert_eq!(
                    scan_value(&v, start),
                    len,
                    "value, {len} bytes from {start}"
                );
                assert_eq!(
                    scan_token(&v, start),
                    len,
                    "token, {len} bytes from {start}"
                );
            }
        }
    }

    #[test]
    fn target_word_flags_exactly_the_bytes_outside_its_classes() {
        let clean =
            |b: u8| b.is_ascii_alphabetic() || (b'&'..=b';').contains(&b) || b == b'=' || b == b'_';
        for b in 0u8..=255 {
            for pos in 0..8 {
                for fill in [b'a', b'Z', b'0', b'/', b'=', 0x00, 0xff, 0x7f, b'?'] {
                    let mut w = [fill; 8];
                    w[pos] = b;
                    let m = not_target_word(u64::from_le_bytes(w));
                    let flagged = m & (0x80 << (8 * pos)) != 0;
                    assert_eq!(flagged, !clean(b), "byte {b:#x} at {pos} among {fill:#x}");
                    let others = m & !(0x80u64 << (8 * pos));
                    assert_eq!(others == 0, clean(fill), "neighbours {fill:#x} of {b:#x}");
                }
            }
        }
    }

    #[test]
    fn host_scan_agrees_with_the_table_on_every_byte_at_every_position() {
        for bad in 0u8..=255 {
            for pos in 0..20 {
                let mut v = b"www.exam-ple9.com.xyz".to_vec();
                v[pos] = bad;
                let end = if is(bad, HOSTNAME) { v.len() } else { pos };
                assert_eq!(scan_host(&v, 0), end, "byte {bad:#x} at {pos}");
            }
        }
    }

    #[test]
    fn target_scans() {
        // (target followed by a space, end, first `?`, `%` seen)
        let cases: &[(&str, usize, Option<usize>, bool)] = &[
            ("/ ", 1, None, false),
            ("/a?b?c ", 6, Some(2), false),
            ("/??%41 ", 6, Some(1), true),
            (
                "/path/to/a/file.html?x=1&y=_~!$'()*+,;:@[] ",
                42,
                Some(20),
                false,
            ),
            ("/%20%20%20%20%20%20 ", 19, None, true),
            ("/a#b ", 2, None, false),
            ("/a\"b ", 2, None, false),
            ("/abcdefgh\x7f ", 9, None, false),
        ];
        for &(t, end, query, percent) in cases {
            let r = scan_target(t.as_bytes(), 0);
            assert_eq!((r.end, r.query, r.percent), (end, query, percent), "{t:?}");
        }
    }

    #[test]
    fn byte_classes() {
        let cases: &[(u8, u8, bool)] = &[
            (b'a', TCHAR, true),
            (b'(', TCHAR, false),
            (b':', TCHAR, false),
            (b'\t', VALUE, true),
            (0x7f, VALUE, false),
            (0x00, VALUE, false),
            (0xff, VALUE, true),
            (b'#', URI, false),
            (b'%', URI, true),
            (b' ', URI, false),
            (b'"', URI, false),
            (0x80, URI, false),
            (b'F', HEX, true),
            (b'g', HEX, false),
            (b',', HOSTNAME, false),
            (b'"', QDTEXT, false),
            (b'\\', QDTEXT, false),
        ];
        for &(b, class, expected) in cases {
            assert_eq!(is(b, class), expected, "byte {:?} class {class}", b as char);
        }
    }
}
