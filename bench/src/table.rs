//! Aggregation of the harness's JSON lines into markdown tables, and the acceptance bars.
//!
//! Every run is one JSON line (a load [`Report`] or an [`IdleReport`]) tagged with `scenario`,
//! `peer` and `role` (`bext`, `peer`, `floor`, or `reference` for a row shown but not used by
//! the bars). Per scenario and peer the table shows the median and the min–max of the CPU
//! microseconds per request over the runs, the ratio of each server's cost to each bext
//! driver's cost (peer/bext: above 1 means bext spends less), the floor's efficiency against
//! bext, throughput, latency and errors. The bars of the benchmark issue are then checked
//! from the same medians, misses included.

use crate::idle::IdleReport;
use crate::report::Report;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One acceptance bar: bext's median CPU per request must be at most `1/vs_peers` of the
/// better peer's, optionally within `floor` times the floor's, and optionally with a p99 no
/// worse than that peer's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bar {
    pub scenario: &'static str,
    pub vs_peers: f64,
    pub floor: Option<f64>,
    pub p99_no_worse: bool,
}

/// The bars of the benchmark issue (S6 is checked separately: memory, against nginx).
pub const BARS: &[Bar] = &[
    Bar {
        scenario: "S1",
        vs_peers: 1.3,
        floor: Some(1.15),
        p99_no_worse: false,
    },
    Bar {
        scenario: "S2",
        vs_peers: 1.2,
        floor: None,
        p99_no_worse: true,
    },
    Bar {
        scenario: "S3",
        vs_peers: 1.1,
        floor: None,
        p99_no_worse: false,
    },
    Bar {
        scenario: "S4",
        vs_peers: 1.1,
        floor: None,
        p99_no_worse: false,
    },
    // Static files and compression, against nginx (the one peer that serves files).
    Bar {
        scenario: "F1",
        vs_peers: 1.1,
        floor: None,
        p99_no_worse: false,
    },
    Bar {
        scenario: "F2",
        vs_peers: 1.1,
        floor: None,
        p99_no_worse: false,
    },
    Bar {
        scenario: "Z1",
        vs_peers: 1.2,
        floor: None,
        p99_no_worse: false,
    },
    // Cache hits, against nginx's proxy_cache and Varnish.
    Bar {
        scenario: "C1",
        vs_peers: 1.2,
        floor: None,
        p99_no_worse: false,
    },
    Bar {
        scenario: "C2",
        vs_peers: 1.2,
        floor: None,
        p99_no_worse: false,
    },
];

/// Median of the values (mean of the middle two for an even count); 0 for none.
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn min_max(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}

/// Medians of one peer's runs in one load scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadSummary {
    pub peer: String,
    pub role: String,
    pub runs: usize,
    pub cpu_us: f64,
    pub cpu_min: f64,
    pub cpu_max: f64,
    pub rps: f64,
    pub p50: f64,
    pub p99: f64,
    /// The lowest and highest p99 of the runs (run-to-run spread).
    pub p99_min: f64,
    pub p99_max: f64,
    pub errors: u64,
    pub offered_rate: Option<f64>,
}

/// Medians of one peer's runs of the idle-connection scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct IdleSummary {
    pub peer: String,
    pub role: String,
    pub runs: usize,
    pub bytes: f64,
    pub bytes_min: f64,
    pub bytes_max: f64,
    pub opened_min: usize,
    pub alive_min: usize,
    pub requested: usize,
}

/// Everything read from the JSON lines, grouped by scenario in order of first appearance.
#[derive(Debug, Default)]
pub struct Results {
    pub load: Vec<(String, Vec<LoadSummary>)>,
    pub idle: Vec<(String, Vec<IdleSummary>)>,
}

fn tag<'a>(tags: &'a BTreeMap<String, String>, key: &str, default: &'a str) -> &'a str {
    tags.get(key).map_or(default, String::as_str)
}

/// Groups `items` by (scenario, peer), keeping first-appearance order.
/// Runs grouped by scenario, then by peer.
type Grouped<T> = Vec<(String, Vec<(String, Vec<T>)>)>;

fn group<T>(items: Vec<(String, String, T)>) -> Grouped<T> {
    let mut out: Grouped<T> = Vec::new();
    for (scenario, peer, item) in items {
        let si = match out.iter().position(|(s, _)| *s == scenario) {
            Some(i) => i,
            None => {
                out.push((scenario, Vec::new()));
                out.len() - 1
            }
        };
        let peers = &mut out[si].1;
        match peers.iter_mut().find(|(p, _)| *p == peer) {
            Some((_, v)) => v.push(item),
            None => peers.push((peer, vec![item])),
        }
    }
    out
}

impl Results {
    /// Parses JSON lines; blank lines are skipped, anything else unparsable is an error.
    pub fn parse(text: &str) -> Result<Results, String> {
        let mut loads = Vec::new();
        let mut idles = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let v: serde_json::Value =
                serde_json::from_str(line).map_err(|e| format!("line {}: {e}", i + 1))?;
            match v.get("kind").and_then(|k| k.as_str()) {
                Some("load") => {
                    let r: Report =
                        serde_json::from_value(v).map_err(|e| format!("line {}: {e}", i + 1))?;
                    loads.push((
                        tag(&r.tags, "scenario", "?").to_string(),
                        tag(&r.tags, "peer", &r.target).to_string(),
                        r,
                    ));
                }
                Some("idle") => {
                    let r: IdleReport =
                        serde_json::from_value(v).map_err(|e| format!("line {}: {e}", i + 1))?;
                    idles.push((
                        tag(&r.tags, "scenario", "S6").to_string(),
                        tag(&r.tags, "peer", &r.target).to_string(),
                        r,
                    ));
                }
                _ => return Err(format!("line {}: neither a load nor an idle report", i + 1)),
            }
        }
        let load = group(loads)
            .into_iter()
            .map(|(s, peers)| {
                let rows = peers
                    .into_iter()
                    .map(|(peer, runs)| {
                        let cpu: Vec<f64> = runs
                            .iter()
                            .map(|r| r.cpu.as_ref().map_or(f64::NAN, |c| c.us_per_request))
                            .collect();
                        let (cpu_min, cpu_max) = min_max(&cpu);
                        let p99s: Vec<f64> = runs.iter().map(|r| r.latency_us.p99).collect();
                        let (p99_min, p99_max) = min_max(&p99s);
                        let pick =
                            |f: fn(&Report) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
                        LoadSummary {
                            role: tag(&runs[0].tags, "role", "peer").to_string(),
                            peer,
                            runs: runs.len(),
                            cpu_us: median(&cpu),
                            cpu_min,
                            cpu_max,
                            rps: pick(|r| r.rps),
                            p50: pick(|r| r.latency_us.p50),
                            p99: pick(|r| r.latency_us.p99),
                            p99_min,
                            p99_max,
                            errors: runs.iter().map(|r| r.errors_total).sum(),
                            offered_rate: runs[0].offered_rate,
                        }
                    })
                    .collect();
                (s, rows)
            })
            .collect();
        let idle = group(idles)
            .into_iter()
            .map(|(s, peers)| {
                let rows = peers
                    .into_iter()
                    .map(|(peer, runs)| {
                        let bytes: Vec<f64> = runs.iter().map(|r| r.bytes_per_connection).collect();
                        let (bytes_min, bytes_max) = min_max(&bytes);
                        IdleSummary {
                            role: tag(&runs[0].tags, "role", "peer").to_string(),
                            peer,
                            runs: runs.len(),
                            bytes: median(&bytes),
                            bytes_min,
                            bytes_max,
                            opened_min: runs.iter().map(|r| r.opened).min().unwrap_or(0),
                            alive_min: runs.iter().map(|r| r.alive_after).min().unwrap_or(0),
                            requested: runs[0].requested,
                        }
                    })
                    .collect();
                (s, rows)
            })
            .collect();
        Ok(Results { load, idle })
    }

    /// The markdown tables, then the bars.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        for (scenario, rows) in &self.load {
            let bexts: Vec<&LoadSummary> = rows.iter().filter(|r| r.role == "bext").collect();
            let floor = rows.iter().find(|r| r.role == "floor");
            let rate = rows
                .first()
                .and_then(|r| r.offered_rate)
                .map_or("closed loop".to_string(), |r| {
                    format!("offered {r:.0} req/s")
                });
            let _ = writeln!(s, "#### {scenario} ({rate})\n");
            let mut head = "| server | runs | CPU µs/req, median (min–max) |".to_string();
            let mut rule = "|---|---:|---:|".to_string();
            for b in &bexts {
                let _ = write!(head, " ÷ {} |", b.peer);
                rule.push_str("---:|");
            }
            if let Some(f) = floor {
                let _ = write!(head, " {} ÷ server |", f.peer);
                rule.push_str("---:|");
            }
            head.push_str(" req/s | p50 µs | p99 µs | errors |");
            rule.push_str("---:|---:|---:|---:|");
            let _ = writeln!(s, "{head}\n{rule}");
            for r in rows {
                let mut line = format!(
                    "| {} | {} | {:.2} ({:.2}–{:.2}) |",
                    r.peer, r.runs, r.cpu_us, r.cpu_min, r.cpu_max
                );
                for b in &bexts {
                    let _ = write!(line, " {:.2} |", ratio(r.cpu_us, b.cpu_us));
                }
                if let Some(f) = floor {
                    let _ = write!(line, " {:.2} |", ratio(f.cpu_us, r.cpu_us));
                }
                let _ = write!(
                    line,
                    " {:.0} | {:.0} | {:.0} | {} |",
                    r.rps, r.p50, r.p99, r.errors
                );
                let _ = writeln!(s, "{line}");
            }
            s.push('\n');
        }
        for (scenario, rows) in &self.idle {
            let _ = writeln!(s, "#### {scenario} (idle keep-alive connections)\n");
            let _ = writeln!(
                s,
                "| server | runs | bytes per idle connection, median (min–max) | opened (min) | answered after (min) |\n|---|---:|---:|---:|---:|"
            );
            for r in rows {
                let _ = writeln!(
                    s,
                    "| {} | {} | {:.0} ({:.0}–{:.0}) | {}/{} | {} |",
                    r.peer,
                    r.runs,
                    r.bytes,
                    r.bytes_min,
                    r.bytes_max,
                    r.opened_min,
                    r.requested,
                    r.alive_min
                );
            }
            s.push('\n');
        }
        let verdicts = self.verdicts();
        if !verdicts.is_empty() {
            let _ = writeln!(s, "#### Acceptance bars\n");
            let _ = writeln!(
                s,
                "| scenario | bext | bar | measured | verdict |\n|---|---|---|---|---|"
            );
            for v in verdicts {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} |",
                    v.scenario,
                    v.bext,
                    v.bar,
                    v.measured,
                    if v.met { "met" } else { "**missed**" }
                );
            }
        }
        s
    }

    /// Every bar checked for every bext driver present.
    pub fn verdicts(&self) -> Vec<Verdict> {
        let mut out = Vec::new();
        for bar in BARS {
            let Some((_, rows)) = self.load.iter().find(|(s, _)| s == bar.scenario) else {
                continue;
            };
            let best_peer = rows
                .iter()
                .filter(|r| r.role == "peer" && r.cpu_us > 0.0)
                .min_by(|a, b| a.cpu_us.total_cmp(&b.cpu_us));
            let floor = rows.iter().find(|r| r.role == "floor");
            for b in rows.iter().filter(|r| r.role == "bext") {
                if let Some(p) = best_peer {
                    let r = b.cpu_us / p.cpu_us;
                    out.push(Verdict {
                        scenario: bar.scenario.into(),
                        bext: b.peer.clone(),
                        bar: format!(
                            "CPU/req ≤ 1/{} of the better peer ({})",
                            bar.vs_peers, p.peer
                        ),
                        measured: format!(
                            "{:.2} vs {:.2} µs: {:.3} (needs ≤ {:.3})",
                            b.cpu_us,
                            p.cpu_us,
                            r,
                            1.0 / bar.vs_peers
                        ),
                        met: b.errors == 0 && r <= 1.0 / bar.vs_peers,
                    });
                    if bar.p99_no_worse {
                        out.push(Verdict {
                            scenario: bar.scenario.into(),
                            bext: b.peer.clone(),
                            bar: format!("p99 ≤ {}'s at the same offered rate", p.peer),
                            measured: format!("{:.0} vs {:.0} µs", b.p99, p.p99),
                            met: b.p99 <= p.p99,
                        });
                    }
                }
                if let (Some(limit), Some(f)) = (bar.floor, floor) {
                    let r = b.cpu_us / f.cpu_us;
                    out.push(Verdict {
                        scenario: bar.scenario.into(),
                        bext: b.peer.clone(),
                        bar: format!("CPU/req ≤ {limit}× the floor ({})", f.peer),
                        measured: format!("{:.2} vs {:.2} µs: {:.3}×", b.cpu_us, f.cpu_us, r),
                        met: r <= limit,
                    });
                }
            }
        }
        for (scenario, rows) in &self.idle {
            let Some(nginx) = rows.iter().find(|r| r.peer == "nginx") else {
                continue;
            };
            for b in rows.iter().filter(|r| r.role == "bext") {
                out.push(Verdict {
                    scenario: scenario.clone(),
                    bext: b.peer.clone(),
                    bar: "memory per idle connection ≤ nginx's".into(),
                    measured: format!("{:.0} vs {:.0} bytes", b.bytes, nginx.bytes),
                    met: b.bytes <= nginx.bytes && b.alive_min == b.requested,
                });
            }
        }
        out
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        f64::NAN
    }
}

/// One bar checked for one bext driver.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub scenario: String,
    pub bext: String,
    pub bar: String,
    pub measured: String,
    pub met: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_empty() {
        let cases: &[(&[f64], f64)] = &[
            (&[3.0, 1.0, 2.0], 2.0),
            (&[4.0, 1.0, 3.0, 2.0], 2.5),
            (&[], 0.0),
            (&[f64::NAN, 5.0], 5.0),
        ];
        for (values, want) in cases {
            assert_eq!(median(values), *want, "{values:?}");
        }
    }

    fn load_line(
        scenario: &str,
        peer: &str,
        role: &str,
        cpu_us: f64,
        p99: f64,
        errors: u64,
    ) -> String {
        serde_json::json!({
            "kind": "load",
            "tags": {"scenario": scenario, "peer": peer, "role": role},
            "target": "127.0.0.1:1", "mode": "open", "offered_rate": 1000.0,
            "connections": 1, "threads": 1, "keep_alive": true, "pipeline": 1, "body_size": 0,
            "driver": "epoll", "warmup_s": 1.0, "duration_s": 1.0,
            "requests": 1000, "rps": 1000.0, "errors_total": errors, "errors": {},
            "latency_us": {"p50": 50.0, "p90": 60.0, "p99": p99, "p999": 100.0, "max": 200.0, "mean": 55.0},
            "service_us": {"p50": 50.0, "p90": 60.0, "p99": p99, "p999": 100.0, "max": 200.0, "mean": 55.0},
            "body_bytes": 0, "connects": 1,
            "cpu": {"pids": [1], "ticks": 1, "clk_tck": 100, "cpu_seconds": 0.01,
                    "core_utilisation": 0.01, "us_per_request": cpu_us}
        })
        .to_string()
    }

    fn idle_line(peer: &str, role: &str, bytes: f64) -> String {
        serde_json::json!({
            "kind": "idle", "tags": {"scenario": "S6", "peer": peer, "role": role},
            "target": "127.0.0.1:1", "requested": 10, "opened": 10, "failed": 0,
            "rss_before_kib": 1, "rss_after_kib": 2, "bytes_per_connection": bytes, "alive_after": 10
        })
        .to_string()
    }

    #[test]
    fn medians_ratios_and_bars_from_runs() {
        let lines = [
            load_line("S1", "floor-respond", "floor", 4.0, 90.0, 0),
            load_line("S1", "bext-epoll", "bext", 5.0, 90.0, 0),
            load_line("S1", "bext-epoll", "bext", 4.0, 90.0, 0),
            load_line("S1", "bext-epoll", "bext", 6.0, 90.0, 0),
            load_line("S1", "nginx", "peer", 10.0, 80.0, 0),
            load_line("S1", "haproxy", "peer", 8.0, 70.0, 0),
            load_line("S2", "bext-epoll", "bext", 10.0, 120.0, 0),
            load_line("S2", "nginx", "peer", 11.0, 100.0, 0),
            idle_line("bext-epoll", "bext", 900.0),
            idle_line("nginx", "peer", 1000.0),
        ]
        .join("\n");
        let results = Results::parse(&lines).unwrap();
        let s1 = &results.load[0].1;
        let bext = s1.iter().find(|r| r.peer == "bext-epoll").unwrap();
        assert_eq!(
            (bext.runs, bext.cpu_us, bext.cpu_min, bext.cpu_max),
            (3, 5.0, 4.0, 6.0)
        );
        let got: Vec<(String, bool)> = results
            .verdicts()
            .into_iter()
            .map(|v| (format!("{} {}", v.scenario, v.bar), v.met))
            .collect();
        let want: Vec<(String, bool)> = vec![
            // 5 / 8 = 0.625 ≤ 1/1.3 = 0.769.
            (
                "S1 CPU/req ≤ 1/1.3 of the better peer (haproxy)".into(),
                true,
            ),
            // 5 / 4 = 1.25 > 1.15.
            ("S1 CPU/req ≤ 1.15× the floor (floor-respond)".into(), false),
            // 10 / 11 = 0.909 > 1/1.2 = 0.833.
            (
                "S2 CPU/req ≤ 1/1.2 of the better peer (nginx)".into(),
                false,
            ),
            ("S2 p99 ≤ nginx's at the same offered rate".into(), false),
            ("S6 memory per idle connection ≤ nginx's".into(), true),
        ];
        assert_eq!(got, want);
        let md = results.markdown();
        assert!(
            md.contains("| haproxy | 1 | 8.00 (8.00–8.00) | 1.60 | 0.50 | 1000 | 50 | 70 | 0 |"),
            "{md}"
        );
        assert!(md.contains("| S1 | bext-epoll | CPU/req ≤ 1.15× the floor (floor-respond) | 5.00 vs 4.00 µs: 1.250× | **missed** |"), "{md}");
    }

    #[test]
    fn errors_in_runs_fail_the_bar() {
        let lines = [
            load_line("S3", "bext-epoll", "bext", 1.0, 1.0, 5),
            load_line("S3", "nginx", "peer", 10.0, 1.0, 0),
        ]
        .join("\n");
        let v = Results::parse(&lines).unwrap().verdicts();
        assert_eq!(v.len(), 1);
        assert!(!v[0].met);
    }

    #[test]
    fn unparsable_line_names_its_number() {
        let err = Results::parse("\n{\"kind\":\"other\"}").unwrap_err();
        assert_eq!(err, "line 2: neither a load nor an idle report");
    }
}
