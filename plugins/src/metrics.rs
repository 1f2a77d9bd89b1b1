//! Metrics plugins define (`proxy_define_metric`), for the whole process: a name defined on
//! several cores (or by several plugins) is one metric, its value the sum of their updates.
//! Defining takes a lock (plugins do it when they start); updates are relaxed atomics.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// A metric's kind, as the plugin defined it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

struct Metric {
    name: String,
    kind: MetricKind,
    value: Arc<AtomicI64>,
}

fn registry() -> &'static Mutex<Vec<Metric>> {
    static R: OnceLock<Mutex<Vec<Metric>>> = OnceLock::new();
    R.get_or_init(|| Mutex::new(Vec::new()))
}

/// Metrics defined at most; a definition beyond is refused.
const MAX_METRICS: usize = 4096;

/// The id of metric `name` (defined now if new); `None` for another kind under the same name
/// or past the limit.
pub(crate) fn define(kind: MetricKind, name: &str) -> Option<(u32, Arc<AtomicI64>)> {
    let mut r = registry().lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(i) = r.iter().position(|m| m.name == name) {
        return (r[i].kind == kind).then(|| (i as u32, r[i].value.clone()));
    }
    if r.len() >= MAX_METRICS {
        return None;
    }
    let value = Arc::new(AtomicI64::new(0));
    r.push(Metric {
        name: name.to_string(),
        kind,
        value: value.clone(),
    });
    Some(((r.len() - 1) as u32, value))
}

/// The host's own counters, for every plugin of the process.
#[derive(Debug, Default)]
pub struct HostCounters {
    /// Calls that trapped.
    pub traps: AtomicU64,
    /// Calls interrupted at the end of their budget.
    pub budget_exceeded: AtomicU64,
    /// Instances dropped after a failure (a fresh one serves the next request).
    pub instances_replaced: AtomicU64,
    /// Instances made.
    pub instances_started: AtomicU64,
    /// Requests a failed plugin ended (500), and requests that went on without it (skip).
    pub failed_requests: AtomicU64,
    pub skipped_requests: AtomicU64,
    /// Local replies plugins sent.
    pub local_replies: AtomicU64,
    /// Callbacks called (stream and root contexts).
    pub calls: AtomicU64,
    /// HTTP callouts sent, and those that failed (no answer, timeout, unknown upstream).
    pub callouts: AtomicU64,
    pub callout_failures: AtomicU64,
}

/// The process's host counters.
pub fn counters() -> &'static HostCounters {
    static C: OnceLock<HostCounters> = OnceLock::new();
    C.get_or_init(HostCounters::default)
}

/// Every plugin metric and host counter as Prometheus text lines
/// (`bext_plugin_metric{name="…"} VALUE`), for the status endpoint.
pub fn prometheus() -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let c = counters();
    for (name, v) in [
        ("bext_plugin_traps_total", &c.traps),
        ("bext_plugin_budget_exceeded_total", &c.budget_exceeded),
        (
            "bext_plugin_instances_replaced_total",
            &c.instances_replaced,
        ),
        ("bext_plugin_instances_started_total", &c.instances_started),
        ("bext_plugin_failed_requests_total", &c.failed_requests),
        ("bext_plugin_skipped_requests_total", &c.skipped_requests),
        ("bext_plugin_local_replies_total", &c.local_replies),
        ("bext_plugin_calls_total", &c.calls),
        ("bext_plugin_callouts_total", &c.callouts),
        ("bext_plugin_callout_failures_total", &c.callout_failures),
    ] {
        let _ = writeln!(out, "{name} {}", v.load(Ordering::Relaxed));
    }
    let r = registry().lock().unwrap_or_else(PoisonError::into_inner);
    for m in r.iter() {
        let kind = match m.kind {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        };
        let name: String = m
            .name
            .chars()
            .map(|c| {
                if c == '"' || c == '\\' || c == '\n' {
                    '_'
                } else {
                    c
                }
            })
            .collect();
        let _ = writeln!(
            out,
            "bext_plugin_metric{{name=\"{name}\",kind=\"{kind}\"}} {}",
            m.value.load(Ordering::Relaxed)
        );
    }
    out
}

/// The host counters and the plugins' own metrics, as the engine's `/status` and `/metrics`
/// show them (registered with `bext_stage::hooks::add_counters`).
pub fn export(out: &mut Vec<bext_stage::hooks::Counter>) {
    use bext_stage::hooks::Counter;
    let c = counters();
    let host: [(&'static str, &'static str, &AtomicU64); 10] = [
        (
            "bext_plugin_calls_total",
            "Plugin callbacks called.",
            &c.calls,
        ),
        (
            "bext_plugin_traps_total",
            "Plugin callbacks that trapped.",
            &c.traps,
        ),
        (
            "bext_plugin_budget_exceeded_total",
            "Plugin callbacks stopped at the end of their budget.",
            &c.budget_exceeded,
        ),
        (
            "bext_plugin_instances_started_total",
            "Plugin instances started.",
            &c.instances_started,
        ),
        (
            "bext_plugin_instances_replaced_total",
            "Plugin instances dropped after a failure.",
            &c.instances_replaced,
        ),
        (
            "bext_plugin_failed_requests_total",
            "Requests a failed plugin ended (500 plugin-failed).",
            &c.failed_requests,
        ),
        (
            "bext_plugin_skipped_requests_total",
            "Requests that went on without a failed plugin (on_error skip).",
            &c.skipped_requests,
        ),
        (
            "bext_plugin_local_replies_total",
            "Replies plugins sent themselves.",
            &c.local_replies,
        ),
        (
            "bext_plugin_callouts_total",
            "HTTP callouts plugins sent.",
            &c.callouts,
        ),
        (
            "bext_plugin_callout_failures_total",
            "HTTP callouts that failed or timed out.",
            &c.callout_failures,
        ),
    ];
    for (name, help, v) in host {
        out.push(Counter {
            name,
            help,
            gauge: false,
            label: None,
            value: v.load(Ordering::Relaxed) as i64,
        });
    }
    let r = registry().lock().unwrap_or_else(PoisonError::into_inner);
    for m in r.iter() {
        out.push(Counter {
            name: "bext_plugin_metric",
            help: "Metrics plugins define, by name (counters, gauges and histograms as their last value).",
            gauge: true,
            label: Some(("name", m.name.clone())),
            value: m.value.load(Ordering::Relaxed),
        });
    }
}
