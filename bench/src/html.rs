//! `bext bench table FILES --html PAGE`: the results as one self-contained HTML page (inline
//! SVG and CSS, no script, nothing fetched), for a person to open next to the markdown table.
//!
//! Per load scenario, three bar charts with one bar per peer: CPU per request (µs, the median
//! of the runs), p50 and p99 latency (ms); the line through a CPU or p99 bar spans the runs'
//! lowest and highest value (run-to-run spread). Idle scenarios get one chart of bytes per idle
//! connection with its spread. Bars are coloured by role (bext, floor, peer).

use crate::table::{LoadSummary, Results};
use std::fmt::Write as _;

/// A load summary's value and its spread.
type Figure = dyn Fn(&LoadSummary) -> (f64, Option<(f64, f64)>);

const W: f64 = 640.0;
const ROW: f64 = 26.0;
const LABEL: f64 = 190.0;

/// Text safe inside HTML and SVG.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn colour(role: &str) -> &'static str {
    match role {
        "bext" => "#2b6cb0",
        "floor" => "#a0aec0",
        _ => "#dd6b20",
    }
}

/// One bar: label, role, value, and the spread (min, max) when there is one.
struct Bar<'a> {
    label: &'a str,
    role: &'a str,
    value: f64,
    spread: Option<(f64, f64)>,
}

/// A horizontal bar chart as inline SVG.
fn chart(out: &mut String, title: &str, unit: &str, bars: &[Bar<'_>]) {
    let finite = |v: f64| if v.is_finite() { v } else { 0.0 };
    let max = (bars.iter())
        .map(|b| finite(b.spread.map_or(b.value, |(_, hi)| hi.max(b.value))))
        .fold(0.0_f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let height = ROW * bars.len() as f64 + 34.0;
    let scale = (W - LABEL - 90.0) / max;
    let _ = write!(
        out,
        "<figure><figcaption>{}</figcaption><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{height}\" role=\"img\" aria-label=\"{}\">",
        esc(title),
        esc(title)
    );
    for (i, b) in bars.iter().enumerate() {
        let y = 8.0 + ROW * i as f64;
        let v = finite(b.value);
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text><rect x=\"{LABEL}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{}: {} {}</title></rect>",
            LABEL - 8.0,
            y + ROW * 0.6,
            esc(b.label),
            v * scale,
            ROW * 0.7,
            colour(b.role),
            esc(b.label),
            number(b.value),
            esc(unit)
        );
        if let Some((lo, hi)) = b.spread {
            let mid = y + ROW * 0.35;
            let _ = write!(
                out,
                "<line class=\"spread\" x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{mid:.1}\" y2=\"{mid:.1}\"/><line class=\"spread\" x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/><line class=\"spread\" x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/>",
                LABEL + finite(lo) * scale,
                LABEL + finite(hi) * scale,
                LABEL + finite(lo) * scale,
                LABEL + finite(lo) * scale,
                mid - 5.0,
                mid + 5.0,
                LABEL + finite(hi) * scale,
                LABEL + finite(hi) * scale,
                mid - 5.0,
                mid + 5.0,
            );
        }
        let end = LABEL + finite(b.spread.map_or(v, |(_, hi)| hi.max(v))) * scale;
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\">{} {}</text>",
            end + 6.0,
            y + ROW * 0.6,
            number(b.value),
            esc(unit)
        );
    }
    let _ = write!(out, "</svg></figure>");
}

fn number(v: f64) -> String {
    if !v.is_finite() {
        "n/a".into()
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn spread(lo: f64, hi: f64) -> Option<(f64, f64)> {
    (lo.is_finite() && hi.is_finite() && hi > lo).then_some((lo, hi))
}

/// The whole page.
pub fn page(r: &Results, source: &str) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>bext bench: {}</title><style>\
body{{font:14px system-ui,sans-serif;margin:2em;color:#1a202c}}h2{{margin-top:2em}}\
figure{{margin:1em 0}}figcaption{{font-weight:600;margin-bottom:.3em}}\
svg text{{font:12px system-ui,sans-serif;fill:#1a202c}}.spread{{stroke:#1a202c;stroke-width:1.5}}\
table{{border-collapse:collapse}}td,th{{padding:.2em .6em;border-bottom:1px solid #e2e8f0;text-align:right}}\
td:first-child,th:first-child{{text-align:left}}.key span{{display:inline-block;width:.9em;height:.9em;margin:0 .3em 0 1em;vertical-align:middle}}\
</style></head><body><h1>bext bench</h1><p>From {}. Bars are medians of the runs; a line through a bar spans the lowest and highest run.</p>\
<p class=\"key\"><span style=\"background:{}\"></span>bext<span style=\"background:{}\"></span>floor<span style=\"background:{}\"></span>peer</p>",
        esc(source),
        esc(source),
        colour("bext"),
        colour("floor"),
        colour("peer")
    );
    for (scenario, rows) in &r.load {
        let rate = rows
            .first()
            .and_then(|x| x.offered_rate)
            .map_or("closed loop".to_string(), |q| {
                format!("{q:.0} requests/s offered")
            });
        let _ = write!(
            o,
            "<h2>{} <small>({})</small></h2>",
            esc(scenario),
            esc(&rate)
        );
        let bars = |f: &Figure| -> Vec<Bar<'_>> {
            rows.iter()
                .map(|x| {
                    let (value, spread) = f(x);
                    Bar {
                        label: &x.peer,
                        role: &x.role,
                        value,
                        spread,
                    }
                })
                .collect()
        };
        chart(
            &mut o,
            &format!("{scenario}: CPU per request"),
            "µs",
            &bars(&|x| (x.cpu_us, spread(x.cpu_min, x.cpu_max))),
        );
        chart(
            &mut o,
            &format!("{scenario}: p50 latency"),
            "ms",
            &bars(&|x| (x.p50 / 1000.0, None)),
        );
        chart(
            &mut o,
            &format!("{scenario}: p99 latency"),
            "ms",
            &bars(&|x| {
                (
                    x.p99 / 1000.0,
                    spread(x.p99_min / 1000.0, x.p99_max / 1000.0),
                )
            }),
        );
        let _ = write!(
            o,
            "<table><tr><th>peer</th><th>runs</th><th>CPU µs/req</th><th>requests/s</th><th>p50 ms</th><th>p99 ms</th><th>errors</th></tr>"
        );
        for x in rows {
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.0}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&x.peer),
                x.runs,
                number(x.cpu_us),
                x.rps,
                number(x.p50 / 1000.0),
                number(x.p99 / 1000.0),
                x.errors
            );
        }
        o.push_str("</table>");
    }
    for (scenario, rows) in &r.idle {
        let _ = write!(
            o,
            "<h2>{} <small>(idle connections)</small></h2>",
            esc(scenario)
        );
        let bars: Vec<Bar<'_>> = (rows.iter())
            .map(|x| Bar {
                label: &x.peer,
                role: &x.role,
                value: x.bytes,
                spread: spread(x.bytes_min, x.bytes_max),
            })
            .collect();
        chart(
            &mut o,
            &format!("{scenario}: memory per idle connection"),
            "bytes",
            &bars,
        );
    }
    o.push_str("</body></html>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(peer: &str, role: &str, run: u32, cpu: f64, p99: f64) -> String {
        serde_json::json!({
            "kind": "load",
            "tags": {"scenario": "S2", "peer": peer, "role": role, "run": run.to_string()},
            "target": "127.0.0.1:1", "mode": "open", "offered_rate": 1000.0,
            "connections": 1, "threads": 1, "keep_alive": true, "pipeline": 1, "body_size": 0,
            "driver": "epoll", "warmup_s": 1.0, "duration_s": 1.0,
            "requests": 1000, "rps": 1000.0, "errors_total": 0, "errors": {},
            "latency_us": {"p50": 500.0, "p90": 600.0, "p99": p99, "p999": 1000.0, "max": 2000.0, "mean": 550.0},
            "service_us": {"p50": 50.0, "p90": 60.0, "p99": 70.0, "p999": 100.0, "max": 200.0, "mean": 55.0},
            "body_bytes": 0, "connects": 1,
            "cpu": {"pids": [1], "ticks": 1, "clk_tck": 100, "cpu_seconds": 0.01,
                    "core_utilisation": 0.01, "us_per_request": cpu}
        })
        .to_string()
    }

    #[test]
    fn the_page_has_a_chart_per_figure_with_spreads_and_fetches_nothing() {
        let lines = [
            load("bext-epoll", "bext", 1, 7.0, 2000.0),
            load("bext-epoll", "bext", 2, 9.0, 3000.0),
            load("bext-epoll", "bext", 3, 8.0, 2500.0),
            load("nginx <1.22>", "peer", 1, 12.0, 4000.0),
        ]
        .join("\n");
        let r = Results::parse(&lines).unwrap();
        let html = page(&r, "results.jsonl");
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert_eq!(html.matches("<svg ").count(), 3, "CPU, p50, p99");
        assert!(html.contains("S2: CPU per request"));
        // Medians, and the spread of bext's three runs on the CPU and p99 charts only.
        assert!(html.contains("<title>bext-epoll: 8.00 µs</title>"));
        assert!(html.contains("<title>bext-epoll: 2.50 ms</title>"));
        assert_eq!(html.matches("class=\"spread\"").count(), 2 * 3);
        // Names are escaped; nothing is loaded from elsewhere.
        assert!(html.contains("nginx &lt;1.22&gt;"));
        assert!(!html.contains("nginx <1.22>"));
        for external in ["<script", "src=", "href=", "@import", "url("] {
            assert!(!html.contains(external), "{external}");
        }
    }
}
