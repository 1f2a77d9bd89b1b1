//! Per-thread measurements and their merge: latency histograms, counters, errors by kind.
//!
//! Each generator thread records into its own [`Stats`] without sharing anything; the report
//! merges them once at the end, so recording stays a few instructions on the request path.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;

/// Highest latency recorded exactly, in nanoseconds (60 s); longer ones saturate there.
const MAX_NS: u64 = 60_000_000_000;

/// Why a request did not yield a successful response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The TCP connection could not be established.
    Connect,
    /// Writing the request failed.
    Write,
    /// Reading the response failed (reset, refused mid-way).
    Read,
    /// The server closed the connection before the response was complete.
    Closed,
    /// No complete response within the request timeout.
    Timeout,
    /// The response could not be framed as HTTP/1.x.
    BadResponse,
    /// A complete response with a 4xx status.
    Status4xx,
    /// A complete response with a 5xx status.
    Status5xx,
}

impl ErrorKind {
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Write => "write",
            ErrorKind::Read => "read",
            ErrorKind::Closed => "closed",
            ErrorKind::Timeout => "timeout",
            ErrorKind::BadResponse => "bad_response",
            ErrorKind::Status4xx => "status_4xx",
            ErrorKind::Status5xx => "status_5xx",
        }
    }
}

/// What one thread (or, after [`Stats::merge`], the whole run) measured.
#[derive(Debug, Clone)]
pub struct Stats {
    /// From the intended send time to the last response byte (coordinated omission corrected
    /// in open-loop mode; the same as `service` in closed-loop mode).
    pub latency: Histogram<u64>,
    /// From the actual send to the last response byte.
    pub service: Histogram<u64>,
    /// Responses with a 1xx–3xx status.
    pub ok: u64,
    pub errors: BTreeMap<ErrorKind, u64>,
    /// Response body bytes received.
    pub body_bytes: u64,
    /// Connections opened (including the first one of each slot).
    pub connects: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

impl Stats {
    pub fn new() -> Self {
        Stats {
            latency: new_histogram(),
            service: new_histogram(),
            ok: 0,
            errors: BTreeMap::new(),
            body_bytes: 0,
            connects: 0,
        }
    }

    /// Records a complete response: a status outside 1xx–3xx counts as an error too, so that a
    /// proxy answering 502 quickly never looks fast.
    pub fn record_response(&mut self, status: u16, latency_ns: u64, service_ns: u64, body: u64) {
        self.latency.saturating_record(latency_ns.clamp(1, MAX_NS));
        self.service.saturating_record(service_ns.clamp(1, MAX_NS));
        self.body_bytes += body;
        match status {
            400..=499 => self.error(ErrorKind::Status4xx),
            500.. => self.error(ErrorKind::Status5xx),
            _ => self.ok += 1,
        }
    }

    pub fn error(&mut self, kind: ErrorKind) {
        *self.errors.entry(kind).or_insert(0) += 1;
    }

    pub fn errors_total(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Adds another thread's measurements into this one.
    pub fn merge(&mut self, other: &Stats) {
        // Both histograms share bounds and auto-resize, so adding cannot fail on range; the
        // saturating fallback keeps the counts if it ever did.
        if self.latency.add(&other.latency).is_err() {
            for v in other.latency.iter_recorded() {
                self.latency
                    .saturating_record_n(v.value_iterated_to(), v.count_at_value());
            }
        }
        if self.service.add(&other.service).is_err() {
            for v in other.service.iter_recorded() {
                self.service
                    .saturating_record_n(v.value_iterated_to(), v.count_at_value());
            }
        }
        self.ok += other.ok;
        for (k, n) in &other.errors {
            *self.errors.entry(*k).or_insert(0) += n;
        }
        self.body_bytes += other.body_bytes;
        self.connects += other.connects;
    }
}

fn new_histogram() -> Histogram<u64> {
    // 1 ns .. 60 s at 3 significant digits: constant bounds, so this cannot fail.
    match Histogram::new_with_bounds(1, MAX_NS, 3) {
        Ok(mut h) => {
            h.auto(true);
            h
        }
        Err(e) => unreachable!("constant histogram bounds rejected: {e}"),
    }
}

/// Latency percentiles in microseconds, as reported.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Self {
        let us = |ns: u64| ns as f64 / 1000.0;
        if h.is_empty() {
            return Percentiles {
                p50: 0.0,
                p90: 0.0,
                p99: 0.0,
                p999: 0.0,
                max: 0.0,
                mean: 0.0,
            };
        }
        Percentiles {
            p50: us(h.value_at_quantile(0.50)),
            p90: us(h.value_at_quantile(0.90)),
            p99: us(h.value_at_quantile(0.99)),
            p999: us(h.value_at_quantile(0.999)),
            max: us(h.max()),
            mean: h.mean() / 1000.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_adds_counts_errors_and_histograms() {
        let mut a = Stats::new();
        let mut b = Stats::new();
        for (stats, statuses, latencies_us) in [
            (&mut a, [200u16, 200, 502], [100u64, 200, 300]),
            (&mut b, [200, 404, 200], [1_000, 2_000, 3_000]),
        ] {
            for (s, l) in statuses.iter().zip(latencies_us) {
                stats.record_response(*s, l * 1000, l * 1000, 10);
            }
        }
        b.error(ErrorKind::Timeout);
        b.connects = 3;
        a.merge(&b);
        assert_eq!(a.ok, 4);
        assert_eq!(a.latency.len(), 6);
        assert_eq!(a.body_bytes, 60);
        assert_eq!(a.connects, 3);
        let errors: Vec<(&str, u64)> = a.errors.iter().map(|(k, n)| (k.name(), *n)).collect();
        assert_eq!(
            errors,
            vec![("timeout", 1), ("status_4xx", 1), ("status_5xx", 1)]
        );
        assert_eq!(a.errors_total(), 3);
        let p = Percentiles::of(&a.latency);
        // Six samples: the median is the third smallest (300 µs), the max the largest.
        assert!((p.p50 - 300.0).abs() < 1.0, "p50 {}", p.p50);
        assert!((p.max - 3000.0).abs() < 5.0, "max {}", p.max);
    }

    #[test]
    fn empty_histogram_reports_zeros() {
        let p = Percentiles::of(&Stats::new().latency);
        assert_eq!(p.p99, 0.0);
        assert_eq!(p.max, 0.0);
    }
}
