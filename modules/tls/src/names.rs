//! Server names: which certificate a name selects, and whether a certificate covers a name.
//!
//! One rule everywhere, the one of RFC 6125 §6.4.3 as browsers apply it: names compare ASCII
//! case-insensitively, a trailing dot is ignored, and a wildcard `*.w.example` stands for
//! exactly one whole label: it covers `a.w.example`, not `y.x.w.example` nor `w.example`.
//! The same function decides the certificate for a TLS server name and the site of an HTTP
//! Host, so the engine can compare the two (421 Misdirected Request on a mismatch).

use std::collections::HashMap;

/// The longest DNS name (RFC 1035: 253 characters in text form, without the trailing dot).
const MAX_NAME: usize = 253;

/// Lower-cases `name` into `buf` without allocating and drops one trailing dot; `None` if the
/// name is empty or longer than a DNS name can be.
pub(crate) fn normalize<'b>(name: &str, buf: &'b mut [u8; MAX_NAME]) -> Option<&'b str> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > MAX_NAME {
        return None;
    }
    let out = &mut buf[..name.len()];
    out.copy_from_slice(name.as_bytes());
    out.make_ascii_lowercase();
    // Lower-casing ASCII bytes keeps UTF-8 valid, so this never fails.
    std::str::from_utf8(out).ok()
}

/// Lower-cased, without a trailing dot: the form names are stored in.
pub(crate) fn normalized(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// `a.w.example` → `w.example`: the part a one-label wildcard must equal. `None` when the
/// first label is empty or the name has a single label.
fn parent(name: &str) -> Option<&str> {
    match name.split_once('.') {
        Some((first, rest)) if !first.is_empty() && !rest.is_empty() => Some(rest),
        _ => None,
    }
}

/// Does `pattern` (a name or a `*.` wildcard, as in a certificate or an `sni`) cover `name`?
/// Both are compared case-insensitively.
pub fn covers(pattern: &str, name: &str) -> bool {
    let (pattern, name) = (normalized(pattern), normalized(name));
    match pattern.strip_prefix("*.") {
        // A wildcard `sni` is covered by the same wildcard in the certificate.
        Some(suffix) if name.starts_with("*.") => name[2..] == *suffix,
        Some(suffix) => parent(&name) == Some(suffix),
        None => pattern == name,
    }
}

/// Names → certificate index: exact names, then one-label wildcards, then the default.
#[derive(Debug, Clone, Default)]
pub(crate) struct NameTable {
    exact: HashMap<String, usize>,
    /// Keyed by the part after `*.`.
    wildcard: HashMap<String, usize>,
    default: usize,
}

impl NameTable {
    pub(crate) fn new(default: usize) -> Self {
        NameTable {
            default,
            ..NameTable::default()
        }
    }

    /// Adds `name` (exact or `*.` wildcard) for certificate `index`; returns the index it
    /// already had if the name is taken (the first keeps it).
    pub(crate) fn insert(&mut self, name: &str, index: usize) -> Result<(), usize> {
        let name = normalized(name);
        let (map, key) = match name.strip_prefix("*.") {
            Some(suffix) => (&mut self.wildcard, suffix.to_owned()),
            None => (&mut self.exact, name),
        };
        match map.get(&key) {
            Some(&first) => Err(first),
            None => {
                map.insert(key, index);
                Ok(())
            }
        }
    }

    /// The certificate for a server name; the default for no name or an unknown one.
    pub(crate) fn lookup(&self, name: Option<&str>) -> usize {
        let mut buf = [0u8; MAX_NAME];
        let Some(name) = name.and_then(|n| normalize(n, &mut buf)) else {
            return self.default;
        };
        if let Some(&i) = self.exact.get(name) {
            return i;
        }
        if let Some(i) = parent(name).and_then(|p| self.wildcard.get(p)) {
            return *i;
        }
        self.default
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_covers_exactly_one_label() {
        for (pattern, name, covered) in [
            ("*.w.example", "a.w.example", true),
            ("*.w.example", "A.W.Example.", true),
            ("*.w.example", "y.x.w.example", false),
            ("*.w.example", "w.example", false),
            ("*.w.example", ".w.example", false),
            ("*.w.example", "*.w.example", true),
            ("*.w.example", "*.x.w.example", false),
            ("shop.example", "SHOP.example", true),
            ("shop.example", "a.shop.example", false),
        ] {
            assert_eq!(covers(pattern, name), covered, "{pattern} ⊇ {name}");
        }
    }

    #[test]
    fn lookup_order() {
        let mut t = NameTable::new(0);
        t.insert("a.w.example", 1).unwrap();
        t.insert("*.w.example", 2).unwrap();
        t.insert("Shop.Example", 3).unwrap();
        assert_eq!(t.insert("shop.example.", 4), Err(3));
        for (name, want) in [
            (Some("a.w.example"), 1),
            (Some("b.w.example"), 2),
            (Some("B.W.EXAMPLE."), 2),
            (Some("x.b.w.example"), 0),
            (Some("w.example"), 0),
            (Some("shop.example"), 3),
            (Some(""), 0),
            (None, 0),
        ] {
            assert_eq!(t.lookup(name), want, "{name:?}");
        }
        let long = "a".repeat(300);
        assert_eq!(t.lookup(Some(&long)), 0);
    }
}
