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

/// The host's own counters, for every plugin of the process. Each thread counts in its own
/// (see [`counters`]); [`totals`] sums them.
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

impl HostCounters {
    /// Every counter, in the order of [`COUNTERS`].
    fn each(&self) -> [&AtomicU64; 10] {
        [
            &self.calls,
            &self.traps,
            &self.budget_exceeded,
            &self.instances_started,
            &self.instances_replaced,
            &self.failed_requests,
            &self.skipped_requests,
            &self.local_replies,
            &self.callouts,
            &self.callout_failures,
        ]
    }
}

/// The counters' names and help, in the order of [`HostCounters::each`].
const COUNTERS: [(&str, &str); 10] = [
    ("bext_plugin_calls_total", "Plugin callbacks called."),
    ("bext_plugin_traps_total", "Plugin callbacks that trapped."),
    (
        "bext_plugin_budget_exceeded_total",
        "Plugin callbacks stopped at the end of their budget.",
    ),
    (
        "bext_plugin_instances_started_total",
        "Plugin instances started.",
    ),
    (
        "bext_plugin_instances_replaced_total",
        "Plugin instances dropped after a failure.",
    ),
    (
        "bext_plugin_failed_requests_total",
        "Requests a failed plugin ended (500 plugin-failed).",
    ),
    (
        "bext_plugin_skipped_requests_total",
        "Requests that went on without a failed plugin (on_error skip).",
    ),
    (
        "bext_plugin_local_replies_total",
        "Replies plugins sent themselves.",
    ),
    ("bext_plugin_callouts_total", "HTTP callouts plugins sent."),
    (
        "bext_plugin_callout_failures_total",
        "HTTP callouts that failed or timed out.",
    ),
];

/// Every thread's counters (each made once per thread and kept for the process's life, so
/// the totals never go down).
fn all_counters() -> &'static Mutex<Vec<&'static HostCounters>> {
    static ALL: OnceLock<Mutex<Vec<&'static HostCounters>>> = OnceLock::new();
    ALL.get_or_init(|| Mutex::new(Vec::new()))
}

thread_local! {
    static MINE: &'static HostCounters = {
        let c: &'static HostCounters = Box::leak(Box::default());
        all_counters()
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(c);
        c
    };
}

/// The calling thread's host counters: a core counts in its own cache line, never in one
/// another core writes too (7 calls a request would otherwise bounce it between cores).
pub fn counters() -> &'static HostCounters {
    MINE.with(|c| *c)
}

/// The host counters summed over every thread, in the order of [`COUNTERS`].
pub fn totals() -> [u64; 10] {
    let mut sum = [0u64; 10];
    for c in all_counters()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
    {
        for (s, v) in sum.iter_mut().zip(c.each()) {
            *s += v.load(Ordering::Relaxed);
        }
    }
    sum
}

/// Every plugin metric and host counter as Prometheus text lines
/// (`bext_plugin_metric{name="…"} VALUE`), for the status endpoint.
pub fn prometheus() -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for ((name, _), v) in COUNTERS.iter().zip(totals()) {
        let _ = writeln!(out, "{name} {v}");
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
    for ((name, help), v) in COUNTERS.iter().zip(totals()) {
        out.push(Counter {
            name,
            help,
            gauge: false,
            label: None,
            value: v as i64,
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
