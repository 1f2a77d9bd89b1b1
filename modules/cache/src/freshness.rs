//! Freshness lifetime (RFC 9111 §4.2.1, heuristics §4.2.2) and current age (§4.2.3).
//!
//! The lifetime is taken, for a shared cache, from the first of: `s-maxage`, `max-age`,
//! `Expires` minus `Date`, then a heuristic. An invalid or repeated `Expires`, or an invalid
//! `max-age`, means stale (§4.2.1 allows either the first value or "stale"; for `Expires`,
//! "stale" is the only answer the spec gives). The heuristic applies only to responses
//! without explicit freshness whose status is heuristically cacheable or which are marked
//! `public`, and only with a `Last-Modified` in the past: a fraction (10% by default) of the
//! time since that modification, capped.

use bext_http1::date::parse_http_date;

use crate::directives::{Delta, Directives, DELTA_MAX};
use crate::fields::{count, first, members, values};
use crate::{Config, Field, Time};

/// Status codes that are heuristically cacheable (RFC 9110 §15.1).
pub const HEURISTIC_STATUSES: [u16; 12] =
    [200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501];

/// Whether `status` is heuristically cacheable.
pub fn heuristically_cacheable(status: u16) -> bool {
    HEURISTIC_STATUSES.contains(&status)
}

/// The `Age` field's value: the first member of the first line; an invalid one is ignored
/// (zero), a huge one clamped to [`DELTA_MAX`].
pub fn age_value(headers: &[Field<'_>]) -> u32 {
    let Some(line) = first(headers, b"age") else {
        return 0;
    };
    let Some(member) = members(line).next() else {
        return 0;
    };
    // A parameter does not make the number less old.
    let number = member
        .split(|&b| b == b';')
        .next()
        .unwrap_or(member)
        .trim_ascii();
    if number.is_empty() || !number.iter().all(u8::is_ascii_digit) {
        return 0;
    }
    number.iter().fold(0u64, |a, &b| {
        (a * 10 + u64::from(b - b'0')).min(u64::from(DELTA_MAX))
    }) as u32
}

/// The `Date` field if present and valid.
pub fn date(headers: &[Field<'_>]) -> Option<Time> {
    if count(headers, b"date") != 1 {
        return None;
    }
    first(headers, b"date").and_then(parse_http_date)
}

/// What is known about when a response was received, kept with the stored response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// When the request that produced the response was sent upstream.
    pub request_time: Time,
    /// When the response head was received.
    pub response_time: Time,
    /// `corrected_initial_age` of §4.2.3.
    pub initial_age: u64,
}

impl Timing {
    /// Computes the initial age from the response's `Age` and `Date` (§4.2.3).
    pub fn new(headers: &[Field<'_>], request_time: Time, response_time: Time) -> Self {
        let date = date(headers).unwrap_or(response_time);
        let apparent = (response_time - date).max(0) as u64;
        let delay = (response_time - request_time).max(0) as u64;
        let corrected = u64::from(age_value(headers)) + delay;
        Timing {
            request_time,
            response_time,
            initial_age: apparent.max(corrected),
        }
    }

    /// `current_age` at `now` (§4.2.3), in seconds.
    pub fn current_age(&self, now: Time) -> u64 {
        self.initial_age + (now - self.response_time).max(0) as u64
    }
}

/// How the freshness lifetime was found, for diagnostics and `Cache-Status` details.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `s-maxage` (shared caches only).
    SMaxAge,
    /// `max-age`
    MaxAge,
    /// `Expires` minus `Date`.
    Expires,
    /// The route's configured default TTL.
    Default,
    /// The `Last-Modified` heuristic.
    Heuristic,
    /// Nothing: stale on arrival.
    None,
}

/// A freshness lifetime in seconds and where it came from.
pub fn lifetime(
    status: u16,
    headers: &[Field<'_>],
    d: &Directives,
    targeted: bool,
    config: &Config,
    response_time: Time,
) -> (u32, Source) {
    if let Some(s) = d.s_maxage {
        return (s.secs(), Source::SMaxAge);
    }
    if let Some(m) = d.max_age {
        return (m.secs(), Source::MaxAge);
    }
    // A targeted field replaces Cache-Control, and RFC 9213 reads it without Expires.
    if !targeted {
        if let Some(expires) = expires(headers) {
            let base = date(headers).unwrap_or(response_time);
            return match expires {
                Some(t) => (
                    (t - base).clamp(0, i64::from(DELTA_MAX)) as u32,
                    Source::Expires,
                ),
                None => (0, Source::Expires),
            };
        }
    }
    if let Some(ttl) = config.default_ttl {
        return (ttl, Source::Default);
    }
    if heuristically_cacheable(status) || d.public {
        if let Some(lm) = first(headers, b"last-modified").and_then(parse_http_date) {
            let base = date(headers).unwrap_or(response_time);
            if lm < base {
                let h = (base - lm) as u64 * u64::from(config.heuristic_percent) / 100;
                return (
                    h.min(u64::from(config.heuristic_max)) as u32,
                    Source::Heuristic,
                );
            }
        }
    }
    (0, Source::None)
}

/// `Expires`: `None` when absent, `Some(None)` when present but invalid or repeated.
pub fn expires(headers: &[Field<'_>]) -> Option<Option<Time>> {
    let mut lines = values(headers, b"expires");
    let one = lines.next()?;
    if lines.next().is_some() {
        return Some(None);
    }
    Some(parse_http_date(one))
}

/// Whether a response has explicit freshness information (for storability, §3).
pub fn explicit(headers: &[Field<'_>], d: &Directives, targeted: bool) -> bool {
    d.s_maxage.is_some() || d.max_age.is_some() || (!targeted && expires(headers).is_some())
}

/// Whether the delta directive is present with a usable value.
pub fn delta_secs(d: Option<Delta>) -> Option<u32> {
    match d {
        Some(Delta::Secs(s)) => Some(s),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_values() {
        for (v, want) in [
            ("abc", 0),
            ("-7200", 0),
            ("7200.0", 0),
            ("7200, 0", 7200),
            ("0, 7200", 0),
            ("7200;foo=bar", 7200),
            ("2147483649", DELTA_MAX),
        ] {
            assert_eq!(age_value(&[(b"Age", v.as_bytes())]), want, "{v}");
        }
    }
}
