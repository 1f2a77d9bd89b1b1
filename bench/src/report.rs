//! The load report: what a run measured, as text for people and JSON for the harness.

use crate::load::LoadConfig;
use crate::stats::{Percentiles, Stats};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// CPU time charged to the measured requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CpuUse {
    pub pids: Vec<u32>,
    /// utime + stime growth over the measured window, in clock ticks.
    pub ticks: u64,
    pub clk_tck: u64,
    pub cpu_seconds: f64,
    /// Fraction of one core used over the window.
    pub core_utilisation: f64,
    /// CPU microseconds per successful request.
    pub us_per_request: f64,
}

impl CpuUse {
    pub fn new(pids: Vec<u32>, ticks: u64, clk_tck: u64, requests: u64, window: Duration) -> Self {
        let cpu_seconds = ticks as f64 / clk_tck as f64;
        CpuUse {
            pids,
            ticks,
            clk_tck,
            cpu_seconds,
            core_utilisation: cpu_seconds / window.as_secs_f64(),
            us_per_request: if requests == 0 {
                0.0
            } else {
                cpu_seconds * 1e6 / requests as f64
            },
        }
    }
}

/// One load run's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Always "load"; lets the table tool tell load and idle reports apart.
    pub kind: String,
    pub tags: BTreeMap<String, String>,
    pub target: String,
    /// "closed" or "open".
    pub mode: String,
    pub offered_rate: Option<f64>,
    pub connections: usize,
    pub threads: usize,
    pub keep_alive: bool,
    pub pipeline: usize,
    pub body_size: usize,
    pub driver: String,
    pub warmup_s: f64,
    /// Length of the measured window.
    pub duration_s: f64,
    /// Successful responses (1xx–3xx) completed in the window.
    pub requests: u64,
    pub rps: f64,
    pub errors_total: u64,
    pub errors: BTreeMap<String, u64>,
    /// From the intended send time (open loop) or the send (closed loop).
    pub latency_us: Percentiles,
    /// From the actual send.
    pub service_us: Percentiles,
    pub body_bytes: u64,
    pub connects: u64,
    pub cpu: Option<CpuUse>,
}

impl Report {
    pub fn new(cfg: &LoadConfig, stats: &Stats, window: Duration, cpu: Option<CpuUse>) -> Self {
        Report {
            kind: "load".into(),
            tags: cfg.tags.clone(),
            target: cfg.target.to_string(),
            mode: if cfg.rate.is_some() { "open" } else { "closed" }.into(),
            offered_rate: cfg.rate,
            connections: cfg.connections,
            threads: cfg.threads,
            keep_alive: cfg.keep_alive,
            pipeline: cfg.pipeline,
            body_size: cfg.body_size,
            driver: cfg.driver.name().into(),
            warmup_s: cfg.warmup.as_secs_f64(),
            duration_s: window.as_secs_f64(),
            requests: stats.ok,
            rps: stats.ok as f64 / window.as_secs_f64(),
            errors_total: stats.errors_total(),
            errors: stats
                .errors
                .iter()
                .map(|(k, n)| (k.name().to_string(), *n))
                .collect(),
            latency_us: Percentiles::of(&stats.latency),
            service_us: Percentiles::of(&stats.service),
            body_bytes: stats.body_bytes,
            connects: stats.connects,
            cpu,
        }
    }

    /// The human-readable report.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let mode = match self.offered_rate {
            Some(r) => format!("open loop at {r:.0} req/s"),
            None => "closed loop".into(),
        };
        let conn = if self.keep_alive {
            if self.pipeline > 1 {
                format!("keep-alive, pipeline {}", self.pipeline)
            } else {
                "keep-alive".into()
            }
        } else {
            "new connection per request".into()
        };
        let _ = writeln!(
            s,
            "target {}  {mode}  {} connections ({conn})  {} thread(s) on {}",
            self.target, self.connections, self.threads, self.driver
        );
        let _ = writeln!(
            s,
            "measured {:.2} s after {:.2} s warm-up; request body {} B",
            self.duration_s, self.warmup_s, self.body_size
        );
        let _ = writeln!(
            s,
            "requests   {} ok, {:.1} req/s, {} connections opened, {} body bytes",
            self.requests, self.rps, self.connects, self.body_bytes
        );
        let lat = |p: &Percentiles| {
            format!(
                "p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}  (µs)",
                p.p50, p.p90, p.p99, p.p999, p.max
            )
        };
        let label = if self.offered_rate.is_some() {
            "latency    (from intended send)"
        } else {
            "latency   "
        };
        let _ = writeln!(s, "{label} {}", lat(&self.latency_us));
        if self.offered_rate.is_some() {
            let _ = writeln!(
                s,
                "service    (from actual send)   {}",
                lat(&self.service_us)
            );
        }
        if self.errors_total == 0 {
            let _ = writeln!(s, "errors     none");
        } else {
            let list: Vec<String> = self
                .errors
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            let _ = writeln!(s, "errors     {} ({})", self.errors_total, list.join(", "));
        }
        if let Some(c) = &self.cpu {
            let _ = writeln!(
                s,
                "server cpu {:.2} s over pids {:?} ({:.0}% of a core): {:.2} µs per request",
                c.cpu_seconds,
                c.pids,
                c.core_utilisation * 100.0,
                c.us_per_request
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_per_request_is_ticks_over_requests() {
        // 250 ticks at 100 Hz = 2.5 s of CPU over 100,000 requests = 25 µs each, in 5 s = 50%.
        let c = CpuUse::new(vec![1], 250, 100, 100_000, Duration::from_secs(5));
        assert_eq!(c.cpu_seconds, 2.5);
        assert!((c.us_per_request - 25.0).abs() < 1e-9);
        assert!((c.core_utilisation - 0.5).abs() < 1e-9);
        assert_eq!(
            CpuUse::new(vec![1], 5, 100, 0, Duration::from_secs(1)).us_per_request,
            0.0
        );
    }
}
