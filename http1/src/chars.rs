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

/// True if all eight bytes have `class`: eight loads, one branch.
#[inline(always)]
fn all8(block: &[u8], class: u8) -> bool {
    let mut acc = class;
    for &b in block {
        acc &= CLASS[b as usize];
    }
    acc != 0
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
#[inline]
pub fn scan_target(buf: &[u8], mut i: usize) -> TargetScan {
    let mut query = None;
    let mut percent = false;
    loop {
        while let Some(block) = buf.get(i..i + 8) {
            if !all8(block, URI_PLAIN) {
                break;
            }
            i += 8;
        }
        match buf.get(i) {
            Some(&b) if is(b, URI_PLAIN) => i += 1,
            Some(b'?') => {
                query.get_or_insert(i);
                i += 1;
            }
            Some(b'%') => {
                percent = true;
                i += 1;
            }
            _ => {
                return TargetScan {
                    end: i,
                    query,
                    percent,
                }
            }
        }
    }
}

/// Index of the first byte at or after `i` that is not a tchar (or `buf.len()`).
#[inline]
pub fn scan_token(buf: &[u8], mut i: usize) -> usize {
    while let Some(block) = buf.get(i..i + 8) {
        if !all8(block, TCHAR) {
            break;
        }
        i += 8;
    }
    while let Some(&b) = buf.get(i) {
        if !is_tchar(b) {
            break;
        }
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_value_agrees_with_the_table_on_every_byte_at_every_position() {
        for bad in 0u8..=255 {
            for pos in 0..20 {
                let mut v = vec![b'a'; 24];
                v[pos] = bad;
                let expected = if is(bad, VALUE) { 24 } else { pos };
                assert_eq!(scan_value(&v, 0), expected, "byte {bad:#x} at {pos}");
            }
        }
    }

    #[test]
    fn block_scans_agree_with_the_table_on_every_byte_at_every_position() {
        for bad in 0u8..=255 {
            for pos in 0..20 {
                let mut v = vec![b'a'; 24];
                v[pos] = bad;
                let token_end = if is_tchar(bad) { 24 } else { pos };
                assert_eq!(scan_token(&v, 0), token_end, "token byte {bad:#x} at {pos}");
                let t = scan_target(&v, 0);
                let target_end = if is(bad, URI) { 24 } else { pos };
                assert_eq!(t.end, target_end, "target byte {bad:#x} at {pos}");
                assert_eq!(t.query, (bad == b'?').then_some(pos));
                assert_eq!(t.percent, bad == b'%');
            }
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
