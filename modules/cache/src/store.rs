//! Whether a response may be stored (RFC 9111 §3), with bext's shared-cache defaults on top.
//!
//! RFC 9111 first: the request method is `GET`; the status is final and understood (or
//! `must-understand` is absent); `no-store` is absent (unless `must-understand` with an
//! understood status overrides it); `private` is absent; a request with `Authorization` only
//! if the response says `public`, `s-maxage` or `must-revalidate` (§3.5); and the response
//! has explicit freshness, a heuristically cacheable status or `public`.
//!
//! Then the defences a shared cache in front of arbitrary origins needs, each configurable:
//! error statuses other than 404, 405, 410, 414 and 501 are not stored even with explicit
//! freshness (cache-poisoned denial of service stores an error that one crafted request
//! provoked); responses with `Set-Cookie` are not stored (they belong to one client);
//! `Vary: *` is not stored (it can never be served); 206 is not stored (bext stores complete
//! responses and answers ranges from them); and an announced `Content-Length` over the
//! per-object bound is refused before any body is buffered.

use crate::directives::Directives;
use crate::fields::{first, list};
use crate::freshness::{self, heuristically_cacheable, Source};
use crate::vary::Vary;
use crate::{Config, Request, Response};

/// Why a response is not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DontStore {
    /// The request bypasses the cache (see [`crate::key::KeyBypass`]).
    Bypassed,
    /// Only responses to `GET` are stored.
    Method,
    /// 1xx, 206, 304 or an unknown status with `must-understand`.
    Status,
    /// `no-store` in the response or the request.
    NoStore,
    /// `private`: for one user.
    Private,
    /// The request had `Authorization` and the response did not allow sharing it.
    Authorization,
    /// No explicit freshness, status not heuristically cacheable, not `public`.
    NotCacheable,
    /// An error status a shared cache does not keep by default (CPDoS).
    ErrorStatus,
    /// `Set-Cookie` present and storing such responses is off.
    SetCookie,
    /// `Vary: *`
    VaryStar,
    /// The announced size exceeds the per-object bound.
    TooLarge,
}

impl DontStore {
    /// A short name for logs and `Cache-Status` details.
    pub fn as_str(&self) -> &'static str {
        match self {
            DontStore::Bypassed => "bypassed",
            DontStore::Method => "method",
            DontStore::Status => "status",
            DontStore::NoStore => "no-store",
            DontStore::Private => "private",
            DontStore::Authorization => "authorization",
            DontStore::NotCacheable => "not-cacheable",
            DontStore::ErrorStatus => "error-status",
            DontStore::SetCookie => "set-cookie",
            DontStore::VaryStar => "vary-star",
            DontStore::TooLarge => "too-large",
        }
    }
}

/// What to store: decided from the head, before the body arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorePlan {
    /// Freshness lifetime in seconds (may be 0: stored, revalidated before every use).
    pub ttl: u32,
    /// Where the lifetime came from.
    pub source: Source,
    /// Response fields not to store (hop-by-hop, `Connection`-listed, `no-cache=`/`private=`
    /// qualified), lowercase.
    pub strip: Vec<Box<[u8]>>,
}

/// Status codes this cache understands (RFC 9110 §15), for `must-understand`.
pub fn understood(status: u16) -> bool {
    matches!(
        status,
        200..=206 | 300..=305 | 307 | 308 | 400..=417 | 421 | 422 | 426 | 500..=505
    )
}

/// Error statuses a shared cache stores by default: the heuristically cacheable ones.
pub fn error_storable_by_default(status: u16) -> bool {
    matches!(status, 404 | 405 | 410 | 414 | 501)
}

/// Fields never stored: hop-by-hop (RFC 9110 §7.6.1) and proxy authentication (§3.1).
pub const NEVER_STORED: [&str; 10] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "transfer-encoding",
    "upgrade",
    "proxy-authenticate",
    "proxy-authentication-info",
    "proxy-authorization",
    "trailer",
];

/// Decides whether `resp`, the answer to `req`, may be stored.
pub fn decide(
    config: &Config,
    req: &Request<'_>,
    resp: &Response<'_>,
    now: crate::Time,
) -> Result<StorePlan, DontStore> {
    if req.method != b"GET" {
        return Err(DontStore::Method);
    }
    let req_cc = Directives::cache_control(req.headers);
    if req_cc.no_store {
        return Err(DontStore::NoStore);
    }
    let (d, targeted) = Directives::for_shared_cache(resp.headers, &config.targets);
    let status = resp.status;
    if status < 200 || status == 206 || status == 304 {
        return Err(DontStore::Status);
    }
    if d.must_understand {
        if !understood(status) {
            return Err(DontStore::Status);
        }
    } else if d.no_store {
        return Err(DontStore::NoStore);
    }
    if d.private {
        return Err(DontStore::Private);
    }
    if first(req.headers, b"authorization").is_some()
        && !(d.public || d.s_maxage.is_some() || d.must_revalidate)
    {
        return Err(DontStore::Authorization);
    }
    if Vary::parse(resp.headers) == Vary::Star {
        return Err(DontStore::VaryStar);
    }
    let explicit = freshness::explicit(resp.headers, &d, targeted);
    if !explicit && !heuristically_cacheable(status) && !d.public && config.default_ttl.is_none() {
        return Err(DontStore::NotCacheable);
    }
    if status >= 400 && !error_storable_by_default(status) && !config.store_errors {
        return Err(DontStore::ErrorStatus);
    }
    // `private="Set-Cookie"` or `no-cache="Set-Cookie"` asks for exactly what the default
    // protects: the rest of the response is shared, the cookie is stripped.
    let cookie_stripped = d
        .private_fields
        .iter()
        .chain(&d.no_cache_fields)
        .any(|f| &f[..] == b"set-cookie");
    if !config.store_set_cookie && !cookie_stripped && first(resp.headers, b"set-cookie").is_some()
    {
        return Err(DontStore::SetCookie);
    }
    if let Some(len) = first(resp.headers, b"content-length") {
        let len = std::str::from_utf8(len)
            .ok()
            .and_then(|s| s.parse::<u64>().ok());
        if len.is_some_and(|l| l > config.max_object_bytes as u64) {
            return Err(DontStore::TooLarge);
        }
    }
    let (ttl, source) = freshness::lifetime(status, resp.headers, &d, targeted, config, now);
    let mut strip: Vec<Box<[u8]>> = NEVER_STORED
        .iter()
        .map(|s| s.as_bytes().to_vec().into_boxed_slice())
        .collect();
    strip.extend(
        list(resp.headers, b"connection").map(|m| m.to_ascii_lowercase().into_boxed_slice()),
    );
    strip.extend(d.no_cache_fields.iter().cloned());
    strip.extend(d.private_fields.iter().cloned());
    Ok(StorePlan { ttl, source, strip })
}
