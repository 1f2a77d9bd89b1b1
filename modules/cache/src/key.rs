//! The cache key, and the request checks that send a request past the cache.
//!
//! A key is a method class, the normalised URI (`scheme://host[:port]/path?query`) and an
//! optional extra part built from configured request fields. The URI is what purges and
//! invalidation name; the extra part, like `Vary`, selects among objects stored under one URI.
//!
//! Normalisation only merges spellings that are the same resource by RFC 3986 §6.2.2:
//! lowercase host, the scheme's default port dropped, a trailing dot dropped from the host,
//! percent-encodings in uppercase hex, encoded unreserved characters decoded, an empty query
//! dropped. Configured query parameters (trackers such as `utm_source`) are removed.
//!
//! # Poisoning defences
//!
//! Web cache poisoning stores a response shaped by something the key does not contain. So a
//! request bypasses the cache (neither served nor stored) when it carries a field that origins
//! are known to reflect into links, redirects or routing but that is not part of the key (the
//! `X-Forwarded-Host` family in [`KeyConfig::default`]); when a `GET`/`HEAD` carries a body
//! (a "fat GET" that the origin may read but the key ignores); and when `Host` disagrees with
//! an absolute-form target's authority (one may be keyed while the origin reads the other).
//! Making a field part of the key with [`KeyPart::Header`] lifts its bypass.

use crate::fields::{first, values};
use crate::{Request, Scheme};

/// The request methods sharing stored responses: `GET` and `HEAD` read the same object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MethodClass {
    /// `GET` and `HEAD`.
    Get,
}

/// A configured part of the key beyond the URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPart {
    /// A request field's value (all lines, joined), lowercase name.
    Header(Box<[u8]>),
    /// One cookie's value, by name.
    Cookie(Box<[u8]>),
}

/// How keys are built and which requests bypass.
#[derive(Debug, Clone)]
pub struct KeyConfig {
    /// Query parameters left out of the key (by exact name).
    pub ignored_query: Vec<Box<[u8]>>,
    /// Extra key parts, in order.
    pub extra: Vec<KeyPart>,
    /// Request fields that bypass the cache unless keyed, lowercase.
    pub unkeyed_bypass: Vec<Box<[u8]>>,
}

/// Request fields origins are known to reflect: host overrides, URL rewrites, scheme and port
/// hints, and method overrides.
pub const REFLECTED_FIELDS: [&str; 14] = [
    "x-forwarded-host",
    "x-host",
    "x-forwarded-server",
    "x-original-host",
    "x-original-url",
    "x-rewrite-url",
    "x-forwarded-scheme",
    "x-forwarded-proto",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "forwarded",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

impl Default for KeyConfig {
    fn default() -> Self {
        KeyConfig {
            ignored_query: Vec::new(),
            extra: Vec::new(),
            unkeyed_bypass: REFLECTED_FIELDS
                .iter()
                .map(|s| s.as_bytes().to_vec().into_boxed_slice())
                .collect(),
        }
    }
}

/// A built key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    /// Method class.
    pub class: MethodClass,
    /// `scheme://authority/path?query`, normalised: what purges and invalidation name.
    pub uri: Box<[u8]>,
    /// The configured extra parts, separated by NUL (empty when none are configured).
    pub extra: Box<[u8]>,
}

impl Key {
    /// The key as text for `Cache-Status`' `key` parameter.
    pub fn display(&self) -> String {
        let mut s = String::from_utf8_lossy(&self.uri).into_owned();
        if !self.extra.is_empty() {
            s.push(' ');
            s.push_str(&String::from_utf8_lossy(&self.extra).replace('\0', " "));
        }
        s
    }
}

/// Why a request bypasses the cache before any lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyBypass {
    /// A method other than `GET` or `HEAD`.
    Method,
    /// A `GET` or `HEAD` with content.
    BodyOnSafeMethod,
    /// A field origins reflect, not part of the key (lowercase name).
    UnkeyedField(Box<[u8]>),
    /// `Host` names another authority than the absolute-form target.
    HostMismatch,
    /// The authority is not a valid host.
    BadAuthority,
}

impl KeyConfig {
    /// Builds the key of a request, or says why the request bypasses the cache.
    pub fn build(&self, req: &Request<'_>) -> Result<Key, KeyBypass> {
        if req.method != b"GET" && req.method != b"HEAD" {
            return Err(KeyBypass::Method);
        }
        if req.has_body {
            return Err(KeyBypass::BodyOnSafeMethod);
        }
        for name in &self.unkeyed_bypass {
            let keyed = self
                .extra
                .iter()
                .any(|p| matches!(p, KeyPart::Header(h) if h.eq_ignore_ascii_case(name)));
            if !keyed && first(req.headers, name).is_some() {
                return Err(KeyBypass::UnkeyedField(name.clone()));
            }
        }
        let authority =
            normalise_authority(req.authority, req.scheme).ok_or(KeyBypass::BadAuthority)?;
        if let Some(host) = first(req.headers, b"host") {
            if normalise_authority(host, req.scheme).as_deref() != Some(&authority[..]) {
                return Err(KeyBypass::HostMismatch);
            }
        }
        let uri = uri_key(req.scheme, &authority, req.target, &self.ignored_query);
        let mut extra = Vec::new();
        for (i, part) in self.extra.iter().enumerate() {
            if i > 0 {
                extra.push(0);
            }
            match part {
                KeyPart::Header(name) => {
                    for (j, v) in values(req.headers, name).enumerate() {
                        if j > 0 {
                            extra.push(b',');
                        }
                        extra.extend_from_slice(v);
                    }
                }
                KeyPart::Cookie(name) => {
                    if let Some(v) = cookie(req.headers, name) {
                        extra.extend_from_slice(v);
                    }
                }
            }
        }
        Ok(Key {
            class: MethodClass::Get,
            uri: uri.into_boxed_slice(),
            extra: extra.into_boxed_slice(),
        })
    }
}

/// The URI part of a key for a scheme, a normalised authority and an origin-form target.
pub fn uri_key(
    scheme: Scheme,
    authority: &[u8],
    target: &[u8],
    ignored_query: &[Box<[u8]>],
) -> Vec<u8> {
    let (path, query) = match target.iter().position(|&b| b == b'?') {
        Some(q) => (&target[..q], Some(&target[q + 1..])),
        None => (target, None),
    };
    let mut out = Vec::with_capacity(scheme.as_str().len() + 3 + authority.len() + target.len());
    out.extend_from_slice(scheme.as_str().as_bytes());
    out.extend_from_slice(b"://");
    out.extend_from_slice(authority);
    if path.is_empty() {
        out.push(b'/');
    } else {
        normalise_percent(path, &mut out);
    }
    if let Some(query) = query {
        let mut first = true;
        for param in query.split(|&b| b == b'&') {
            if param.is_empty() {
                continue;
            }
            let name = param.split(|&b| b == b'=').next().unwrap_or(param);
            if ignored_query.iter().any(|n| &n[..] == name) {
                continue;
            }
            out.push(if first { b'?' } else { b'&' });
            first = false;
            normalise_percent(param, &mut out);
        }
    }
    out
}

/// Lowercases the host, drops a trailing dot and the scheme's default port; `None` for an
/// authority with userinfo, an empty host or a non-numeric port.
pub fn normalise_authority(authority: &[u8], scheme: Scheme) -> Option<Vec<u8>> {
    let a = authority.trim_ascii();
    if a.is_empty() || a.contains(&b'@') {
        return None;
    }
    let (host, port) = if a[0] == b'[' {
        let close = a.iter().position(|&b| b == b']')?;
        let rest = &a[close + 1..];
        match rest.split_first() {
            None => (&a[..=close], None),
            Some((b':', p)) => (&a[..=close], Some(p)),
            Some(_) => return None,
        }
    } else {
        match a.iter().rposition(|&b| b == b':') {
            Some(c) => (&a[..c], Some(&a[c + 1..])),
            None => (a, None),
        }
    };
    let host = host.strip_suffix(b".").unwrap_or(host);
    if host.is_empty()
        || !host
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"-._~[]:".contains(&b))
    {
        return None;
    }
    let mut out = host.to_ascii_lowercase();
    if let Some(port) = port {
        if !port.iter().all(u8::is_ascii_digit) {
            return None;
        }
        // Leading zeros do not make another port.
        let port = match port.iter().position(|&b| b != b'0') {
            Some(i) => &port[i..],
            None => &port[port.len().saturating_sub(1)..],
        };
        if !port.is_empty() && port != scheme.default_port() {
            out.push(b':');
            out.extend_from_slice(port);
        }
    }
    Some(out)
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~".contains(&b)
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|v| v as u8)
}

/// Copies `s`, decoding percent-encoded unreserved characters and uppercasing the hex of the
/// others (RFC 3986 §6.2.2.1–2).
fn normalise_percent(s: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' && i + 2 < s.len() {
            if let (Some(h), Some(l)) = (hex(s[i + 1]), hex(s[i + 2])) {
                let c = h * 16 + l;
                if is_unreserved(c) {
                    out.push(c);
                } else {
                    out.push(b'%');
                    out.push(s[i + 1].to_ascii_uppercase());
                    out.push(s[i + 2].to_ascii_uppercase());
                }
                i += 3;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
}

/// One cookie's value from the `Cookie` lines.
fn cookie<'a>(headers: &'a [crate::Field<'a>], name: &[u8]) -> Option<&'a [u8]> {
    values(headers, b"cookie")
        .flat_map(|v| v.split(|&b| b == b';'))
        .map(<[u8]>::trim_ascii)
        .find_map(|pair| {
            let eq = pair.iter().position(|&b| b == b'=')?;
            (&pair[..eq] == name).then(|| &pair[eq + 1..])
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_spellings() {
        for (a, scheme, want) in [
            ("Example.COM", Scheme::Http, Some("example.com")),
            ("example.com:80", Scheme::Http, Some("example.com")),
            ("example.com:080", Scheme::Http, Some("example.com")),
            ("example.com:443", Scheme::Https, Some("example.com")),
            ("example.com:443", Scheme::Http, Some("example.com:443")),
            ("example.com.", Scheme::Http, Some("example.com")),
            ("[::1]:80", Scheme::Http, Some("[::1]")),
            ("user@example.com", Scheme::Http, None),
            ("example.com:8x", Scheme::Http, None),
            ("", Scheme::Http, None),
        ] {
            assert_eq!(
                normalise_authority(a.as_bytes(), scheme).as_deref(),
                want.map(str::as_bytes),
                "{a}"
            );
        }
    }

    #[test]
    fn percent_normalisation() {
        let mut out = Vec::new();
        normalise_percent(b"/%7euser/%2f%41", &mut out);
        assert_eq!(out, b"/~user/%2FA");
    }
}
