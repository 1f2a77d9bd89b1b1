//! Cache directives: `Cache-Control` (RFC 9111 §5.2) and targeted fields such as
//! `CDN-Cache-Control` (RFC 9213).
//!
//! `Cache-Control` is parsed leniently the way §4.2.1 and §5.2 ask recipients to: every line
//! is one list, directive names are case-insensitive, the first occurrence of a directive
//! wins, a quoted argument is accepted where a token is expected, and commas inside quoted
//! strings do not split (so `ext="max-age=9"` is not a `max-age`). A directive name followed
//! by whitespace before `=` is not that directive. An argument that is not a delta-seconds
//! makes the directive [`Delta::Invalid`], which freshness reads as "stale", the safe side.
//!
//! Targeted fields are Structured Field Dictionaries (RFC 8941); one that fails to parse, or
//! gives a known directive a value of the wrong type, is ignored whole (RFC 9213 §2.1), and
//! the cache falls back to the next target or to `Cache-Control`.

use crate::fields::{is_token, members, unquote, values};
use crate::Field;

/// The greatest delta-seconds value kept; larger ones are clamped (RFC 9111 §1.2.2).
pub const DELTA_MAX: u32 = 1 << 31;

/// A delta-seconds argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delta {
    /// A valid number of seconds, clamped to [`DELTA_MAX`].
    Secs(u32),
    /// Present but not a number: treated as zero freshness.
    Invalid,
}

impl Delta {
    /// Seconds, with an invalid argument counting as zero.
    pub fn secs(self) -> u32 {
        match self {
            Delta::Secs(s) => s,
            Delta::Invalid => 0,
        }
    }
}

/// Parses delta-seconds: digits, leading zeros allowed, clamped; a decimal fraction is
/// dropped (`3600.5` is 3600, as most caches read it).
pub fn parse_delta(s: &[u8]) -> Delta {
    let int = match s.iter().position(|&b| b == b'.') {
        Some(dot)
            if dot > 0 && s[dot + 1..].iter().all(u8::is_ascii_digit) && dot + 1 < s.len() =>
        {
            &s[..dot]
        }
        Some(_) => return Delta::Invalid,
        None => s,
    };
    if int.is_empty() || !int.iter().all(u8::is_ascii_digit) {
        return Delta::Invalid;
    }
    let mut v: u64 = 0;
    for &b in int {
        v = (v * 10 + u64::from(b - b'0')).min(u64::from(DELTA_MAX));
    }
    Delta::Secs(v as u32)
}

/// The directives of one message, request or response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directives {
    /// `max-age`
    pub max_age: Option<Delta>,
    /// `s-maxage`
    pub s_maxage: Option<Delta>,
    /// `max-stale`: `Some(None)` accepts any staleness.
    pub max_stale: Option<Option<u32>>,
    /// `min-fresh`
    pub min_fresh: Option<Delta>,
    /// `stale-while-revalidate` (RFC 5861)
    pub stale_while_revalidate: Option<Delta>,
    /// `stale-if-error` (RFC 5861)
    pub stale_if_error: Option<Delta>,
    /// `no-store`
    pub no_store: bool,
    /// Unqualified `no-cache`.
    pub no_cache: bool,
    /// Fields listed by a qualified `no-cache="a, b"`, lowercase.
    pub no_cache_fields: Vec<Box<[u8]>>,
    /// Unqualified `private`.
    pub private: bool,
    /// Fields listed by a qualified `private="a, b"`, lowercase.
    pub private_fields: Vec<Box<[u8]>>,
    /// `public`
    pub public: bool,
    /// `must-revalidate`
    pub must_revalidate: bool,
    /// `proxy-revalidate`
    pub proxy_revalidate: bool,
    /// `must-understand`
    pub must_understand: bool,
    /// `immutable` (RFC 8246)
    pub immutable: bool,
    /// `only-if-cached`
    pub only_if_cached: bool,
    /// `no-transform`
    pub no_transform: bool,
}

impl Directives {
    /// Parses every `Cache-Control` line of a message.
    pub fn cache_control(headers: &[Field<'_>]) -> Self {
        let mut d = Directives::default();
        let mut seen = Seen::default();
        for line in values(headers, b"cache-control") {
            for member in members(line) {
                d.apply(member, &mut seen);
            }
        }
        d
    }

    /// Parses one targeted field's value (RFC 9213) across its lines; `None` when it is absent
    /// or not a valid dictionary, in which case it must be ignored.
    pub fn targeted(headers: &[Field<'_>], name: &[u8]) -> Option<Self> {
        let mut joined = Vec::new();
        let mut any = false;
        for line in values(headers, name) {
            if any {
                joined.push(b',');
            }
            joined.extend_from_slice(line);
            any = true;
        }
        if !any {
            return None;
        }
        sf_dictionary(&joined)
    }

    /// The freshness-relevant directives a shared cache obeys: the first valid targeted field
    /// in `targets`, else `Cache-Control`. The bool says whether a targeted field was used.
    pub fn for_shared_cache(headers: &[Field<'_>], targets: &[Box<[u8]>]) -> (Self, bool) {
        for t in targets {
            if let Some(d) = Directives::targeted(headers, t) {
                return (d, true);
            }
        }
        (Directives::cache_control(headers), false)
    }

    fn apply(&mut self, member: &[u8], seen: &mut Seen) {
        let (name, arg) = match member.iter().position(|&b| b == b'=') {
            Some(eq) => (&member[..eq], Some(&member[eq + 1..])),
            None => (member, None),
        };
        if !is_token(name) {
            return;
        }
        let arg: Option<Vec<u8>> = match arg {
            None => None,
            Some(a) if a.first() == Some(&b'"') => match unquote(a) {
                Some(v) => Some(v),
                None => Some(b"\x00invalid".to_vec()),
            },
            Some(a) if is_token(a) => Some(a.to_vec()),
            Some(_) => Some(b"\x00invalid".to_vec()),
        };
        let lower = name.to_ascii_lowercase();
        let delta = |a: &Option<Vec<u8>>| match a {
            Some(v) => parse_delta(v),
            None => Delta::Invalid,
        };
        match &lower[..] {
            b"max-age" if seen.first(0) => self.max_age = Some(delta(&arg)),
            b"s-maxage" if seen.first(1) => self.s_maxage = Some(delta(&arg)),
            b"min-fresh" if seen.first(2) => self.min_fresh = Some(delta(&arg)),
            b"stale-while-revalidate" if seen.first(3) => {
                self.stale_while_revalidate = Some(delta(&arg))
            }
            b"stale-if-error" if seen.first(4) => self.stale_if_error = Some(delta(&arg)),
            b"max-stale" if seen.first(5) => {
                // An unparseable bound accepts no staleness rather than any.
                self.max_stale = Some(arg.as_ref().map(|v| parse_delta(v).secs()))
            }
            b"no-store" => self.no_store = true,
            b"no-cache" => match arg {
                None => self.no_cache = true,
                Some(v) => self.no_cache_fields.extend(field_names(&v)),
            },
            b"private" => match arg {
                None => self.private = true,
                Some(v) => self.private_fields.extend(field_names(&v)),
            },
            b"public" => self.public = true,
            b"must-revalidate" => self.must_revalidate = true,
            b"proxy-revalidate" => self.proxy_revalidate = true,
            b"must-understand" => self.must_understand = true,
            b"immutable" => self.immutable = true,
            b"only-if-cached" => self.only_if_cached = true,
            b"no-transform" => self.no_transform = true,
            _ => {}
        }
    }
}

/// Which delta directives were already seen, so that the first occurrence wins.
#[derive(Default)]
struct Seen(u8);

impl Seen {
    fn first(&mut self, bit: u8) -> bool {
        let fresh = self.0 & (1 << bit) == 0;
        self.0 |= 1 << bit;
        fresh
    }
}

fn field_names(list: &[u8]) -> Vec<Box<[u8]>> {
    members(list)
        .filter(|m| is_token(m))
        .map(|m| m.to_ascii_lowercase().into_boxed_slice())
        .collect()
}

/// A Structured Field bare item, reduced to what the directives need.
enum Item {
    Integer(i64),
    Bool(bool),
    Other,
}

/// Parses an RFC 8941 dictionary into directives; `None` if it is not a valid dictionary or a
/// known directive has a value of the wrong type.
fn sf_dictionary(s: &[u8]) -> Option<Directives> {
    let mut d = Directives::default();
    let mut seen = Seen::default();
    let mut p = Parser { s, i: 0 };
    p.ows();
    if p.done() {
        return None;
    }
    loop {
        let key = p.key()?;
        let item = if p.eat(b'=') {
            if p.peek() == Some(b'(') {
                p.inner_list()?;
                Item::Other
            } else {
                p.bare_item()?
            }
        } else {
            Item::Bool(true)
        };
        p.params()?;
        let secs = |item: &Item| match item {
            Item::Integer(v) if *v >= 0 => Some(Delta::Secs((*v).min(i64::from(DELTA_MAX)) as u32)),
            _ => None,
        };
        let flag = |item: &Item| match item {
            Item::Bool(b) => Some(*b),
            _ => None,
        };
        match key {
            b"max-age" => {
                let v = secs(&item)?;
                if seen.first(0) {
                    d.max_age = Some(v);
                }
            }
            b"s-maxage" => {
                let v = secs(&item)?;
                if seen.first(1) {
                    d.s_maxage = Some(v);
                }
            }
            b"stale-while-revalidate" => {
                let v = secs(&item)?;
                if seen.first(3) {
                    d.stale_while_revalidate = Some(v);
                }
            }
            b"stale-if-error" => {
                let v = secs(&item)?;
                if seen.first(4) {
                    d.stale_if_error = Some(v);
                }
            }
            b"no-store" => d.no_store |= flag(&item)?,
            b"no-cache" => d.no_cache |= flag(&item)?,
            b"private" => d.private |= flag(&item)?,
            b"public" => d.public |= flag(&item)?,
            b"must-revalidate" => d.must_revalidate |= flag(&item)?,
            b"proxy-revalidate" => d.proxy_revalidate |= flag(&item)?,
            b"immutable" => d.immutable |= flag(&item)?,
            _ => {}
        }
        p.ows();
        if p.done() {
            return Some(d);
        }
        if !p.eat(b',') {
            return None;
        }
        p.ows();
        if p.done() {
            return None;
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn done(&self) -> bool {
        self.i >= self.s.len()
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }
    fn sp(&mut self) {
        while self.peek() == Some(b' ') {
            self.i += 1;
        }
    }
    fn key(&mut self) -> Option<&'a [u8]> {
        let start = self.i;
        match self.peek()? {
            b'a'..=b'z' | b'*' => self.i += 1,
            _ => return None,
        }
        while matches!(
            self.peek(),
            Some(b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' | b'*')
        ) {
            self.i += 1;
        }
        Some(&self.s[start..self.i])
    }
    fn params(&mut self) -> Option<()> {
        while self.eat(b';') {
            self.sp();
            self.key()?;
            if self.eat(b'=') {
                self.bare_item()?;
            }
        }
        Some(())
    }
    fn inner_list(&mut self) -> Option<()> {
        self.eat(b'(');
        loop {
            self.sp();
            if self.eat(b')') {
                return self.params();
            }
            self.bare_item()?;
            self.params()?;
            match self.peek()? {
                b' ' | b')' => {}
                _ => return None,
            }
        }
    }
    fn bare_item(&mut self) -> Option<Item> {
        match self.peek()? {
            b'-' | b'0'..=b'9' => self.number(),
            b'"' => {
                self.i += 1;
                loop {
                    match self.peek()? {
                        b'\\' => {
                            self.i += 1;
                            if !matches!(self.peek()?, b'"' | b'\\') {
                                return None;
                            }
                            self.i += 1;
                        }
                        b'"' => {
                            self.i += 1;
                            return Some(Item::Other);
                        }
                        0x20..=0x7e => self.i += 1,
                        _ => return None,
                    }
                }
            }
            b'?' => {
                self.i += 1;
                let b = match self.peek()? {
                    b'0' => false,
                    b'1' => true,
                    _ => return None,
                };
                self.i += 1;
                Some(Item::Bool(b))
            }
            b':' => {
                self.i += 1;
                while let Some(b) = self.peek() {
                    self.i += 1;
                    if b == b':' {
                        return Some(Item::Other);
                    }
                    if !(b.is_ascii_alphanumeric() || b"+/=".contains(&b)) {
                        return None;
                    }
                }
                None
            }
            b'A'..=b'Z' | b'a'..=b'z' | b'*' => {
                self.i += 1;
                while let Some(b) = self.peek() {
                    if is_token(&[b]) || b == b':' || b == b'/' {
                        self.i += 1;
                    } else {
                        break;
                    }
                }
                Some(Item::Other)
            }
            _ => None,
        }
    }
    fn number(&mut self) -> Option<Item> {
        let neg = self.eat(b'-');
        let start = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        let int = &self.s[start..self.i];
        if int.is_empty() {
            return None;
        }
        if self.eat(b'.') {
            let fs = self.i;
            while matches!(self.peek(), Some(b'0'..=b'9')) {
                self.i += 1;
            }
            let frac = self.i - fs;
            if int.len() > 12 || frac == 0 || frac > 3 {
                return None;
            }
            return Some(Item::Other);
        }
        if int.len() > 15 {
            return None;
        }
        let v = int.iter().fold(0i64, |a, &b| a * 10 + i64::from(b - b'0'));
        Some(Item::Integer(if neg { -v } else { v }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cc(v: &str) -> Directives {
        Directives::cache_control(&[(b"Cache-Control", v.as_bytes())])
    }

    #[test]
    fn delta_forms() {
        for (s, want) in [
            ("3600", Delta::Secs(3600)),
            ("003600", Delta::Secs(3600)),
            ("3600.5", Delta::Secs(3600)),
            ("99999999999", Delta::Secs(DELTA_MAX)),
            ("-1", Delta::Invalid),
            ("a3600", Delta::Invalid),
            ("3600a", Delta::Invalid),
            ("", Delta::Invalid),
            (".5", Delta::Invalid),
        ] {
            assert_eq!(parse_delta(s.as_bytes()), want, "{s}");
        }
    }

    #[test]
    fn quoted_commas_do_not_split() {
        assert_eq!(
            cc(r#"ext="max-age=3600", max-age=1"#).max_age,
            Some(Delta::Secs(1))
        );
        assert_eq!(cc(r#"max-age="3600""#).max_age, Some(Delta::Secs(3600)));
        assert_eq!(cc("max-age='3600'").max_age, Some(Delta::Invalid));
        assert_eq!(cc("max-age =3600").max_age, None);
    }

    #[test]
    fn sf_rejects_wrong_types() {
        let t = |v: &str| {
            Directives::targeted(
                &[(b"CDN-Cache-Control", v.as_bytes())],
                b"cdn-cache-control",
            )
        };
        assert_eq!(t("max-age=60").unwrap().max_age, Some(Delta::Secs(60)));
        assert!(t(r#"max-age="60""#).is_none());
        assert!(t("max-age=60, &&&").is_none());
        assert!(t("foobar, max-age=60").is_some());
        assert!(t("private").unwrap().private);
    }
}
