//! `Accept-Encoding` negotiation (RFC 9110 §12.5.3).
//!
//! The grammar is a comma-separated list of `codings [ OWS ";" OWS "q=" qvalue ]`, where a
//! coding is a token (case-insensitive), `identity` or `*`. Elements that do not parse — a
//! q-value out of grammar, a parameter other than `q`, a coding that is not a token — are
//! ignored one by one, the rest of the field still counts: a client that sends junk gets what
//! its readable elements ask for. `x-gzip` is gzip (§8.4.1.3). Nothing is allocated.

use bext_ir::Encoding;

/// A weight in thousandths, 0..=1000.
type Q = u16;

/// The best of `offered` (in the server's order of preference) that the client accepts.
///
/// `values` are the `Accept-Encoding` field lines of the request, in order; they are read as
/// one list. An encoding gets the q-value of its own element (the highest, if listed twice),
/// else that of `*`, else 0; the highest q wins, and the server's order breaks ties. `None`
/// when the request has no `Accept-Encoding` (RFC 9110 lets a server pick any coding then,
/// but clients that send nothing are mostly tools that would not decode it), or when every
/// offered encoding has q=0: the response then goes as it is. `identity;q=0` with nothing else
/// acceptable would call for a 406, but like every deployed server we send identity: a
/// readable answer beats a refusal.
pub fn negotiate<'a, I>(values: I, offered: &[Encoding]) -> Option<Encoding>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    // Per offered encoding (at most three), its own q if listed; and the q of `*`.
    let mut own: [Option<Q>; 3] = [None; 3];
    let mut star: Option<Q> = None;
    let mut any = false;
    for value in values {
        any = true;
        for element in value.split(|&b| b == b',') {
            let Some((coding, q)) = element_of(element) else {
                continue;
            };
            if coding == b"*" {
                star = Some(star.map_or(q, |s| s.max(q)));
                continue;
            }
            for (i, e) in offered.iter().take(3).enumerate() {
                if names(*e, coding) {
                    own[i] = Some(own[i].map_or(q, |s| s.max(q)));
                }
            }
        }
    }
    if !any {
        return None;
    }
    let mut best: Option<(Encoding, Q)> = None;
    for (i, e) in offered.iter().take(3).enumerate() {
        let q = own[i].or(star).unwrap_or(0);
        if q > 0 && best.is_none_or(|(_, b)| q > b) {
            best = Some((*e, q));
        }
    }
    best.map(|(e, _)| e)
}

/// Whether `coding` (any case) names `e`.
fn names(e: Encoding, coding: &[u8]) -> bool {
    coding.eq_ignore_ascii_case(e.token().as_bytes())
        || (e == Encoding::Gzip && coding.eq_ignore_ascii_case(b"x-gzip"))
}

/// One list element: its coding and weight, or `None` when empty or malformed.
fn element_of(element: &[u8]) -> Option<(&[u8], Q)> {
    let mut parts = element.split(|&b| b == b';');
    let coding = trim(parts.next()?);
    if coding.is_empty() || !(coding == b"*" || coding.iter().all(|&b| is_tchar(b))) {
        return None;
    }
    let mut q = 1000;
    let mut seen_q = false;
    for p in parts {
        let p = trim(p);
        let (name, value) = match p.iter().position(|&b| b == b'=') {
            Some(i) => (trim(&p[..i]), trim(&p[i + 1..])),
            None => return None,
        };
        if seen_q || !name.eq_ignore_ascii_case(b"q") {
            return None;
        }
        seen_q = true;
        q = parse_qvalue(value)?;
    }
    Some((coding, q))
}

/// A qvalue (RFC 9110 §12.4.2): `0`, `0.` and up to three digits, `1`, or `1.` and up to three
/// zeros; in thousandths. Anything else (`1.5`, `.5`, `0.0001`, `-1`) is `None`.
pub fn parse_qvalue(v: &[u8]) -> Option<u16> {
    let (int, frac) = match v.iter().position(|&b| b == b'.') {
        Some(i) => (&v[..i], Some(&v[i + 1..])),
        None => (v, None),
    };
    let whole: u16 = match int {
        b"0" => 0,
        b"1" => 1000,
        _ => return None,
    };
    let Some(frac) = frac else {
        return Some(whole);
    };
    if frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut thousandths = 0u16;
    for i in 0..3 {
        thousandths = thousandths * 10 + frac.get(i).map_or(0, |d| u16::from(d - b'0'));
    }
    if whole == 1000 && thousandths != 0 {
        return None;
    }
    Some(whole + thousandths)
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

pub(crate) fn trim_ows(s: &[u8]) -> &[u8] {
    trim(s)
}
