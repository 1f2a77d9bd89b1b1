//! Field lookups shared by every decision: case-insensitive names, list members split outside
//! quoted strings (RFC 9110 §5.6.1), and the stored field list type.

use bytes::Bytes;

use crate::Field;

/// Values of every line named `name`, in order.
pub(crate) fn values<'a>(
    headers: &'a [Field<'a>],
    name: &'a [u8],
) -> impl Iterator<Item = &'a [u8]> + 'a {
    headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

/// The first line named `name`.
pub(crate) fn first<'a>(headers: &'a [Field<'a>], name: &[u8]) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

/// How many lines are named `name`.
pub(crate) fn count(headers: &[Field<'_>], name: &[u8]) -> usize {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .count()
}

/// The members of a comma-separated list, trimmed, empty members dropped, commas inside
/// quoted strings kept.
pub(crate) fn members(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = value;
    std::iter::from_fn(move || loop {
        if rest.is_empty() {
            return None;
        }
        let mut quoted = false;
        let mut escaped = false;
        let mut end = rest.len();
        for (i, &b) in rest.iter().enumerate() {
            if escaped {
                escaped = false;
            } else if quoted && b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                quoted = !quoted;
            } else if b == b',' && !quoted {
                end = i;
                break;
            }
        }
        let member = rest[..end].trim_ascii();
        rest = if end < rest.len() {
            &rest[end + 1..]
        } else {
            &[]
        };
        if !member.is_empty() {
            return Some(member);
        }
    })
}

/// Members of every line named `name`.
pub(crate) fn list<'a>(
    headers: &'a [Field<'a>],
    name: &'a [u8],
) -> impl Iterator<Item = &'a [u8]> + 'a {
    values(headers, name).flat_map(members)
}

/// A token (RFC 9110 §5.6.2).
pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty()
        && s.iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The content of a quoted string with escapes removed, or `None` if `s` is not exactly one.
pub(crate) fn unquote(s: &[u8]) -> Option<Vec<u8>> {
    if s.len() < 2 || s[0] != b'"' || s[s.len() - 1] != b'"' {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() - 2);
    let mut escaped = false;
    for &b in &s[1..s.len() - 1] {
        if escaped {
            out.push(b);
            escaped = false;
        } else if b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            return None;
        } else {
            out.push(b);
        }
    }
    (!escaped).then_some(out)
}

/// A stored field list: owned, in the order received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields(pub Vec<(Bytes, Bytes)>);

impl Fields {
    /// Copies borrowed lines.
    pub fn from_lines(lines: &[Field<'_>]) -> Self {
        Fields(
            lines
                .iter()
                .map(|(n, v)| (Bytes::copy_from_slice(n), Bytes::copy_from_slice(v)))
                .collect(),
        )
    }

    /// The first value named `name`.
    pub fn get(&self, name: &[u8]) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| &v[..])
    }

    /// Whether a line named `name` is present.
    pub fn contains(&self, name: &[u8]) -> bool {
        self.get(name).is_some()
    }

    /// Removes every line named `name`.
    pub fn remove(&mut self, name: &[u8]) {
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// Borrowed lines, for the parsers that take `&[Field]`.
    pub fn lines(&self) -> Vec<Field<'_>> {
        self.0.iter().map(|(n, v)| (&n[..], &v[..])).collect()
    }

    /// Bytes accounted for these lines (`name: value\r\n`).
    pub fn weight(&self) -> usize {
        self.0.iter().map(|(n, v)| n.len() + v.len() + 4).sum()
    }

    /// Every line in order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.0.iter().map(|(n, v)| (&n[..], &v[..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_keep_quoted_commas() {
        let got: Vec<&[u8]> = members(b" a, b=\"x, y\" ,, c ").collect();
        assert_eq!(got, [&b"a"[..], b"b=\"x, y\"", b"c"]);
    }

    #[test]
    fn unquote_handles_escapes() {
        assert_eq!(unquote(br#""a\"b""#).as_deref(), Some(&b"a\"b"[..]));
        assert_eq!(unquote(b"'a'"), None);
        assert_eq!(unquote(br#""a"b""#), None);
    }
}
