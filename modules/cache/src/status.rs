//! The `Cache-Status` response field (RFC 9211): what this cache did with a request, as one
//! list member naming the cache, appended to any members from caches upstream.

use std::fmt::Write;

/// Why a request went upstream (RFC 9211 §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fwd {
    /// The cache bypassed (configuration or a request it does not cache).
    Bypass,
    /// The method is not cacheable.
    Method,
    /// Nothing stored under the URI.
    UriMiss,
    /// Something stored under the URI, but no variant matched.
    VaryMiss,
    /// No matching response; generic.
    Miss,
    /// The request's own directives demanded it.
    Request,
    /// A stored response was stale.
    Stale,
    /// A stored response was partial.
    Partial,
}

impl Fwd {
    fn as_str(self) -> &'static str {
        match self {
            Fwd::Bypass => "bypass",
            Fwd::Method => "method",
            Fwd::UriMiss => "uri-miss",
            Fwd::VaryMiss => "vary-miss",
            Fwd::Miss => "miss",
            Fwd::Request => "request",
            Fwd::Stale => "stale",
            Fwd::Partial => "partial",
        }
    }
}

/// One `Cache-Status` member under construction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheStatus {
    /// Served from the cache without going upstream.
    pub hit: bool,
    /// Why it went upstream.
    pub fwd: Option<Fwd>,
    /// The upstream status, when it went upstream.
    pub fwd_status: Option<u16>,
    /// The response was stored.
    pub stored: bool,
    /// The request waited on another request's fetch.
    pub collapsed: bool,
    /// Remaining freshness in seconds (negative when stale).
    pub ttl: Option<i64>,
    /// The cache key, when exposing it is configured.
    pub key: Option<String>,
    /// Free-form detail (e.g. why not stored).
    pub detail: Option<String>,
}

impl CacheStatus {
    /// The member text for a cache called `name`, e.g. `bext; hit; ttl=42`.
    pub fn render(&self, name: &str) -> String {
        let mut s = String::with_capacity(48);
        s.push_str(name);
        if self.hit {
            s.push_str("; hit");
        }
        if let Some(f) = self.fwd {
            let _ = write!(s, "; fwd={}", f.as_str());
        }
        if let Some(st) = self.fwd_status {
            let _ = write!(s, "; fwd-status={st}");
        }
        if self.stored {
            s.push_str("; stored");
        }
        if self.collapsed {
            s.push_str("; collapsed");
        }
        if let Some(t) = self.ttl {
            let _ = write!(s, "; ttl={t}");
        }
        if let Some(k) = &self.key {
            s.push_str("; key=");
            quote(k, &mut s);
        }
        if let Some(d) = &self.detail {
            s.push_str("; detail=");
            quote(d, &mut s);
        }
        s
    }
}

/// Writes an sf-string: printable ASCII, `"` and `\` escaped, anything else replaced by `?`.
fn quote(v: &str, s: &mut String) {
    s.push('"');
    for c in v.chars() {
        match c {
            '"' | '\\' => {
                s.push('\\');
                s.push(c);
            }
            ' '..='~' => s.push(c),
            _ => s.push('?'),
        }
    }
    s.push('"');
}
