//! Byte ranges (RFC 9110 §14): parsing `Range: bytes=…` against a length, and the framing of
//! a `multipart/byteranges` body.
//!
//! - A header that is not a valid `bytes` range set (another unit, a bad number, `5-3`, an
//!   empty list) is ignored: the whole representation is sent with 200 (§14.2 lets a server
//!   ignore Range, and answering a malformed one with 416 helps no one).
//! - Ranges past the end are dropped; if none is left, 416 with `Content-Range: bytes */LEN`
//!   (§14.1.1: `first-pos` at or past the length, or a zero `suffix-length`, is
//!   unsatisfiable). A zero-length representation has no satisfiable byte range at all, so
//!   any valid range header on it is ignored and the empty body is sent with 200.
//! - The satisfiable ranges are sorted and overlapping or adjacent ones merged (§14.3 allows
//!   it; it also stops `bytes=0-,0-,0-,…` from sending the file once per range).
//! - More than [`MAX_RANGES`] ranges left after merging ⇒ the header is ignored (200, whole),
//!   like nginx's `max_ranges`: many small ranges cost a part header each, the
//!   range-amplification attack of CVE-2011-3192. The parse itself is linear in the header
//!   and allocation-free (the set is kept sorted in a fixed array).

/// Most ranges served in one response, after merging.
pub const MAX_RANGES: usize = 16;

/// An inclusive byte range `first..=last`, within the length it was parsed against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte offset.
    pub first: u64,
    /// Last byte offset (inclusive).
    pub last: u64,
}

impl ByteRange {
    /// Bytes in the range.
    pub fn len(&self) -> u64 {
        self.last - self.first + 1
    }

    /// Never true (a range holds at least one byte); for the lint.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// A sorted set of disjoint, non-adjacent ranges, inline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ranges {
    list: [ByteRange; MAX_RANGES],
    n: usize,
}

impl Ranges {
    /// The ranges, in ascending order.
    pub fn as_slice(&self) -> &[ByteRange] {
        &self.list[..self.n]
    }

    /// Adds `r`, merging it with ranges it overlaps or touches. False if the set would grow
    /// beyond [`MAX_RANGES`].
    fn insert(&mut self, mut r: ByteRange) -> bool {
        // Index of the first range that ends at or after `r.first - 1` (could merge).
        let mut i = 0;
        while i < self.n && self.list[i].last.saturating_add(1) < r.first {
            i += 1;
        }
        // Absorb every range that starts at or before `r.last + 1`.
        let mut j = i;
        while j < self.n && self.list[j].first <= r.last.saturating_add(1) {
            r.first = r.first.min(self.list[j].first);
            r.last = r.last.max(self.list[j].last);
            j += 1;
        }
        let removed = j - i;
        if removed == 0 && self.n == MAX_RANGES {
            return false;
        }
        // Replace list[i..j] by r.
        let tail = self.n - j;
        if removed == 0 {
            self.list.copy_within(i..i + tail, i + 1);
        } else {
            self.list.copy_within(j..j + tail, i + 1);
        }
        self.list[i] = r;
        self.n = self.n + 1 - removed;
        true
    }

    /// Total bytes in the ranges.
    pub fn total(&self) -> u64 {
        self.as_slice().iter().map(ByteRange::len).sum()
    }
}

/// What a `Range` header asks of a representation of `len` bytes.
// The ranges are inline on purpose: parsing allocates nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeOutcome {
    /// Send the whole representation (no header, an invalid one, too many ranges, an empty
    /// representation).
    Full,
    /// Send these ranges: 206, one part with `Content-Range`, or [`Multipart`] for several.
    Partial(Ranges),
    /// 416 with `Content-Range: bytes */LEN`.
    Unsatisfiable,
}

fn number(s: &[u8]) -> Option<u64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // A position beyond u64 is past any file: saturate rather than refuse the header.
    Some(s.iter().fold(0u64, |a, &b| {
        a.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}

/// Parses a `Range` field value against a representation of `len` bytes.
pub fn parse(header: &[u8], len: u64) -> RangeOutcome {
    let h = header.trim_ascii();
    let Some(set) = h
        .get(..6)
        .filter(|u| u.eq_ignore_ascii_case(b"bytes="))
        .map(|_| &h[6..])
    else {
        return RangeOutcome::Full;
    };
    let mut ranges = Ranges {
        list: [ByteRange { first: 0, last: 0 }; MAX_RANGES],
        n: 0,
    };
    let mut specs = 0usize;
    let mut too_many = false;
    for spec in set.split(|&b| b == b',') {
        let spec = spec.trim_ascii();
        if spec.is_empty() {
            // `1#range-spec` allows empty list elements, but not a list of nothing.
            continue;
        }
        specs += 1;
        let Some(dash) = spec.iter().position(|&b| b == b'-') else {
            return RangeOutcome::Full;
        };
        let (a, b) = (&spec[..dash], &spec[dash + 1..]);
        let r = if a.is_empty() {
            // suffix-range: the last N bytes.
            let Some(n) = number(b) else {
                return RangeOutcome::Full;
            };
            if n == 0 || len == 0 {
                None
            } else {
                Some(ByteRange {
                    first: len - n.min(len),
                    last: len - 1,
                })
            }
        } else {
            let Some(first) = number(a) else {
                return RangeOutcome::Full;
            };
            let last = if b.is_empty() {
                u64::MAX
            } else {
                match number(b) {
                    Some(l) if l >= first => l,
                    _ => return RangeOutcome::Full,
                }
            };
            (first < len).then(|| ByteRange {
                first,
                last: last.min(len - 1),
            })
        };
        if let Some(r) = r {
            if !ranges.insert(r) {
                too_many = true;
            }
        }
    }
    if specs == 0 || len == 0 || too_many {
        return RangeOutcome::Full;
    }
    if ranges.n == 0 {
        return RangeOutcome::Unsatisfiable;
    }
    RangeOutcome::Partial(ranges)
}

/// A boundary for `multipart/byteranges`: 20 characters from a 64-bit value the engine
/// supplies (a per-core counter mixed with a random key is enough: it only has to be absent
/// from the parts, and a file that happens to contain `--bext` and the next 16 hex digits of
/// an unpredictable number at a line start is not a practical concern).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Boundary([u8; 20]);

impl Boundary {
    /// `bext` followed by `seed` in 16 hex digits.
    pub fn new(seed: u64) -> Boundary {
        let mut b = *b"bext0000000000000000";
        for (i, d) in b[4..].iter_mut().enumerate() {
            *d = b"0123456789abcdef"[(seed >> ((15 - i) * 4)) as usize & 15];
        }
        Boundary(b)
    }

    /// The boundary text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("ASCII")
    }
}

/// The framing of a `multipart/byteranges` body (RFC 9110 §14.6) over several ranges: the
/// engine writes, for each range, [`Multipart::write_part_head`] then that range of the file,
/// and finally [`Multipart::write_trailer`]. [`Multipart::content_length`] is known up front,
/// so the response has a `Content-Length`.
#[derive(Debug, Clone, Copy)]
pub struct Multipart<'a> {
    ranges: &'a Ranges,
    len: u64,
    content_type: &'a str,
    boundary: Boundary,
}

impl<'a> Multipart<'a> {
    /// Framing for `ranges` of a representation of `len` bytes whose type is `content_type`.
    pub fn new(ranges: &'a Ranges, len: u64, content_type: &'a str, boundary: Boundary) -> Self {
        Multipart {
            ranges,
            len,
            content_type,
            boundary,
        }
    }

    /// The response's `Content-Type` value: `multipart/byteranges; boundary=…`.
    pub fn content_type_value(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"multipart/byteranges; boundary=");
        out.extend_from_slice(&self.boundary.0);
    }

    /// The ranges, in the order their parts are written.
    pub fn ranges(&self) -> &'a [ByteRange] {
        self.ranges.as_slice()
    }

    /// Appends the delimiter and headers that precede part `i`:
    /// `\r\n--B\r\nContent-Type: T\r\nContent-Range: bytes F-L/LEN\r\n\r\n`.
    pub fn write_part_head(&self, i: usize, out: &mut Vec<u8>) {
        let r = self.ranges.as_slice()[i];
        out.extend_from_slice(b"\r\n--");
        out.extend_from_slice(&self.boundary.0);
        out.extend_from_slice(b"\r\nContent-Type: ");
        out.extend_from_slice(self.content_type.as_bytes());
        out.extend_from_slice(b"\r\nContent-Range: bytes ");
        push_u64(out, r.first);
        out.push(b'-');
        push_u64(out, r.last);
        out.push(b'/');
        push_u64(out, self.len);
        out.extend_from_slice(b"\r\n\r\n");
    }

    /// Appends the closing delimiter: `\r\n--B--\r\n`.
    pub fn write_trailer(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"\r\n--");
        out.extend_from_slice(&self.boundary.0);
        out.extend_from_slice(b"--\r\n");
    }

    /// The exact length of the whole body.
    pub fn content_length(&self) -> u64 {
        // Fixed text per part: "\r\n--" + B + "\r\nContent-Type: " + T +
        // "\r\nContent-Range: bytes " + F "-" L "/" LEN + "\r\n\r\n".
        let fixed = 4 + 20 + 16 + self.content_type.len() as u64 + 23 + 2 + 4;
        let per_len = digits(self.len);
        let parts: u64 = self
            .ranges
            .as_slice()
            .iter()
            .map(|r| fixed + digits(r.first) + digits(r.last) + per_len + r.len())
            .sum();
        parts + 4 + 20 + 4
    }
}

fn digits(v: u64) -> u64 {
    v.checked_ilog10().map_or(1, |d| u64::from(d) + 1)
}

pub use bext_http1::push_decimal as push_u64;
