//! Metrics for `GET /metrics` of the admin endpoint: per-core counters written without locks
//! or atomics on the request path, published on the worker's tick and merged on scrape.
//!
//! A request, once answered, adds to one [`Series`] of its core's [`CoreMetrics`]: the counts
//! per status class, one latency bucket and the latency sum, in plain integers behind the
//! worker's `RefCell` (one core writes them, nobody else reads them). Each series belongs to a
//! route of the configuration; its labels ([`RouteLabels`]: site, route, upstream) are fixed
//! when the pipeline is compiled, so the number of series is bounded by the configuration,
//! never by what clients send. On its tick (every 100 ms) a worker adds what changed to its
//! [`Published`] totals, under a mutex that only the scrape also takes, keyed by the labels:
//! a route that a reload keeps (same site and route text) keeps counting where it was. The
//! admin endpoint sums every core's totals ([`render`]); figures trail the requests by at
//! most a tick.
//!
//! Other counters are read where they already live: per worker in
//! [`crate::worker::WorkerStats`], per upstream and server in the upstream snapshots, TLS in
//! [`crate::tls::COUNTERS`], reloads in the control side.
//!
//! `global { metrics off }` turns the per-request part off: nothing is recorded per request
//! (not even a clock read), and `/metrics` shows the other counters only.

use bext_ir as ir;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;

/// Upper bounds of the latency buckets, in microseconds (the last bucket, `+Inf`, is implied).
pub const BUCKETS_US: [u64; 14] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000,
];

/// Buckets per histogram: the bounded ones, then `+Inf`.
const NB: usize = BUCKETS_US.len() + 1;

/// Status classes counted: 1xx to 5xx.
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// The family under which the WAF stage exports, per rule id, the requests it refused (or,
/// in detection mode, would have refused) in which the rule fired (`bext_stage::hooks`;
/// `/status` shows them under `waf`).
pub const WAF_RULE_FAMILY: &str = "bext_waf_rule_matches_total";
/// The family of the requests a WAF in detection mode would have refused.
pub const WAF_WOULD_BLOCK_FAMILY: &str = "bext_waf_would_block_total";

/// The site and route label of requests no route took (unparseable, no site, no route).
pub const UNROUTED: &str = "(none)";

/// The labels of one route's series.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouteLabels {
    /// The site's host patterns, space-separated (`*` for the default site).
    pub site: String,
    /// The route as written: its methods, then `/exact`, `/prefix/*` or `~ regex`; a second
    /// route with the same text in the site gets ` #2`, and so on.
    pub route: String,
    /// The upstream a `proxy` route sends to; empty for other handlers.
    pub upstream: String,
}

impl RouteLabels {
    /// The labels of every route of `config`, in the flat order of `Pipeline::routes`, and one
    /// more for requests no route took.
    pub fn of_config(config: &ir::Config) -> Arc<[RouteLabels]> {
        let mut out = Vec::new();
        for site in &config.sites {
            let site_label = site_label(site);
            let mut seen: HashMap<String, u32> = HashMap::new();
            for r in &site.routes {
                let mut route = route_label(r);
                let n = seen.entry(route.clone()).or_insert(0);
                *n += 1;
                if *n > 1 {
                    let _ = write!(route, " #{n}");
                }
                let upstream = match &r.action {
                    ir::Action::Proxy { upstream } => upstream.clone(),
                    _ => String::new(),
                };
                out.push(RouteLabels {
                    site: site_label.clone(),
                    route,
                    upstream,
                });
            }
        }
        out.push(RouteLabels {
            site: UNROUTED.into(),
            route: UNROUTED.into(),
            upstream: String::new(),
        });
        out.into()
    }
}

/// `a.test *.b.test` or `*`.
pub fn site_label(site: &ir::Site) -> String {
    if site.hosts.is_empty() {
        return "*".into();
    }
    let names: Vec<String> = (site.hosts.iter())
        .map(|h| match h {
            ir::HostPattern::Exact(n) => n.clone(),
            ir::HostPattern::Wildcard(s) => format!("*.{s}"),
            ir::HostPattern::Any => "*".into(),
        })
        .collect();
    names.join(" ")
}

/// `GET,HEAD /api/*`, `/healthz`, `~ ^/u/[0-9]+$` (a bare path is exact, as in the language).
pub fn route_label(r: &ir::Route) -> String {
    let mut s = String::new();
    if !r.methods.is_empty() {
        s.push_str(&r.methods.join(","));
        s.push(' ');
    }
    match &r.path {
        ir::PathMatch::Exact(p) => s.push_str(p),
        ir::PathMatch::Prefix(p) => {
            s.push_str(p);
            s.push('*');
        }
        ir::PathMatch::Regex(re) => {
            s.push_str("~ ");
            s.push_str(re);
        }
    }
    s
}

/// One route's requests: counts per status class and a latency histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Series {
    pub classes: [u64; 5],
    /// Requests per latency bucket (not cumulative), the last one `+Inf`.
    pub buckets: [u64; NB],
    pub sum_us: u64,
}

impl Default for Series {
    fn default() -> Self {
        Series {
            classes: [0; 5],
            buckets: [0; NB],
            sum_us: 0,
        }
    }
}

impl Series {
    #[inline]
    fn observe(&mut self, status: u16, micros: u64) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.classes[class] += 1;
        let b = BUCKETS_US.partition_point(|&le| le < micros);
        self.buckets[b] += 1;
        self.sum_us = self.sum_us.wrapping_add(micros);
    }

    fn add(&mut self, o: &Series) {
        for (a, b) in self.classes.iter_mut().zip(o.classes) {
            *a += b;
        }
        for (a, b) in self.buckets.iter_mut().zip(o.buckets) {
            *a += b;
        }
        self.sum_us = self.sum_us.wrapping_add(o.sum_us);
    }

    fn count(&self) -> u64 {
        self.classes.iter().sum()
    }
}

/// How a cached route's request was served (the `result` label of `bext_cache_requests_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheResult {
    /// Answered from a fresh stored response.
    Hit,
    /// Nothing usable stored: fetched (and stored if allowed).
    Miss,
    /// A stale stored response: served while revalidating, or revalidated first.
    Stale,
    /// The request bypassed the cache (a method other than GET/HEAD, a bypass rule, a
    /// `no-store` request).
    Bypass,
}

const CACHE_RESULTS: [&str; 4] = ["hit", "miss", "stale", "bypass"];

/// One generation's series on one core.
struct Table {
    generation: u64,
    labels: Arc<[RouteLabels]>,
    series: Box<[Series]>,
    touched: bool,
}

/// A core's metrics since its last tick. Owned by the worker; never shared.
#[derive(Default)]
pub struct CoreMetrics {
    /// One table per generation that recorded a request since the last tick (usually one).
    tables: Vec<Table>,
    cache: [u64; 4],
    waf_blocked: u64,
}

impl CoreMetrics {
    /// Count a request answered with `status` after `micros` on route `route` (flat index
    /// into the pipeline's routes; `None`: no route took it) of generation `generation`.
    #[inline]
    pub fn request(
        &mut self,
        generation: u64,
        labels: &Arc<[RouteLabels]>,
        route: Option<usize>,
        status: u16,
        micros: u64,
    ) {
        let t = match self
            .tables
            .iter_mut()
            .position(|t| t.generation == generation)
        {
            Some(i) => &mut self.tables[i],
            None => {
                // Once per generation and tick on this core, never per request.
                self.tables.push(Table {
                    generation,
                    labels: labels.clone(),
                    series: vec![Series::default(); labels.len()].into_boxed_slice(),
                    touched: false,
                });
                let last = self.tables.len() - 1;
                &mut self.tables[last]
            }
        };
        let unrouted = t.series.len() - 1;
        let i = route.filter(|&r| r < unrouted).unwrap_or(unrouted);
        t.series[i].observe(status, micros);
        t.touched = true;
    }

    /// Count a cached route's request.
    #[inline]
    pub fn cache(&mut self, r: CacheResult) {
        self.cache[r as usize] += 1;
    }

    /// Count a request the WAF refused.
    #[inline]
    pub fn waf_blocked(&mut self) {
        self.waf_blocked += 1;
    }

    /// Add what changed since the last call to `out`, and start again from zero.
    pub fn publish(&mut self, out: &std::sync::Mutex<Published>) {
        let touched = self.tables.iter().any(|t| t.touched);
        let others = self.waf_blocked > 0 || self.cache.iter().any(|&n| n > 0);
        if !touched && !others {
            self.drop_past_generations();
            return;
        }
        let mut out = out.lock().unwrap_or_else(|e| e.into_inner());
        for t in self.tables.iter_mut().filter(|t| t.touched) {
            for (s, l) in t.series.iter_mut().zip(t.labels.iter()) {
                if s.count() == 0 {
                    continue;
                }
                match out.series.get_mut(l) {
                    Some(total) => total.add(s),
                    None => {
                        out.series.insert(l.clone(), *s);
                    }
                }
                *s = Series::default();
            }
            t.touched = false;
        }
        for (a, b) in out.cache.iter_mut().zip(self.cache) {
            *a += b;
        }
        self.cache = [0; 4];
        out.waf_blocked += std::mem::take(&mut self.waf_blocked);
        drop(out);
        self.drop_past_generations();
    }

    /// Keep only the newest generation's table (already published, so nothing is lost): the
    /// next request of the running configuration finds its table and allocates nothing; a
    /// late request of an older one makes its table again.
    fn drop_past_generations(&mut self) {
        if let Some(newest) = self.tables.iter().map(|t| t.generation).max() {
            self.tables.retain(|t| t.generation == newest);
        }
    }
}

/// A core's totals since start, as of its last tick.
#[derive(Debug, Default)]
pub struct Published {
    pub series: HashMap<RouteLabels, Series>,
    pub cache: [u64; 4],
    pub waf_blocked: u64,
}

/// The exposition format asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The Prometheus text format, version 0.0.4.
    Prometheus,
    /// OpenMetrics 1.0 text.
    OpenMetrics,
}

impl Format {
    /// The format an `Accept` field asks for: OpenMetrics when it names
    /// `application/openmetrics-text` (with a q above 0), Prometheus text otherwise.
    pub fn from_accept(accept: Option<&str>) -> Format {
        let Some(a) = accept else {
            return Format::Prometheus;
        };
        for range in a.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let ty = parts.next().unwrap_or("");
            if !ty.eq_ignore_ascii_case("application/openmetrics-text") {
                continue;
            }
            let zero = parts.any(|p| {
                p.split_once('=').is_some_and(|(k, v)| {
                    k.trim().eq_ignore_ascii_case("q")
                        && v.trim().parse::<f32>().is_ok_and(|q| q <= 0.0)
                })
            });
            if !zero {
                return Format::OpenMetrics;
            }
        }
        Format::Prometheus
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// Everything `/metrics` shows, gathered by the control side (see `Control::metrics`).
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Per-request metrics are on in the running configuration (`metrics off` turns them off).
    pub enabled: bool,
    pub generation: u64,
    /// Per live generation: requests (or tunnels) still running on it, over every core.
    pub generations: Vec<(u64, usize)>,
    pub reloads_ok: u64,
    pub reloads_failed: u64,
    pub workers: Vec<WorkerFigures>,
    pub series: BTreeMap<RouteLabels, Series>,
    pub cache: [u64; 4],
    pub waf_blocked: u64,
    pub upstreams: Vec<crate::server::UpstreamStatus>,
    pub tls_handshakes: u64,
    pub tls_resumed: u64,
    pub tls_failures: Vec<(&'static str, u64)>,
    /// Figures stage families export (`bext_stage::hooks`: the plugins' counters).
    pub stages: Vec<bext_stage::hooks::Counter>,
}

/// One worker's figures.
#[derive(Debug, Default, Clone)]
pub struct WorkerFigures {
    pub connections: usize,
    pub parked: usize,
    pub requests: u64,
    pub rate_limited: u64,
    pub upstream_stale_closed: u64,
    pub upstream_surplus_closed: u64,
    pub log_dropped: u64,
    pub spans_exported: u64,
    pub spans_dropped: u64,
    pub spans_failed: u64,
}

impl Snapshot {
    /// Add one core's published totals.
    pub fn merge(&mut self, p: &Published) {
        for (l, s) in &p.series {
            self.series.entry(l.clone()).or_default().add(s);
        }
        for (a, b) in self.cache.iter_mut().zip(p.cache) {
            *a += b;
        }
        self.waf_blocked += p.waf_blocked;
    }
}

/// A label value with `\`, `"` and newlines escaped (the same in both formats).
fn esc(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Writes metric families in one of the two formats.
struct Writer {
    out: String,
    format: Format,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Writer {
    /// `# HELP` and `# TYPE` of a family. Counters are named with `_total` in Prometheus
    /// text and without it in OpenMetrics metadata (their samples keep it).
    fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let meta = match (self.format, kind) {
            (Format::OpenMetrics, Kind::Counter) => name.strip_suffix("_total").unwrap_or(name),
            _ => name,
        };
        let ty = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        let _ = writeln!(self.out, "# HELP {meta} {help}");
        let _ = writeln!(self.out, "# TYPE {meta} {ty}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        self.series(name, labels);
        let _ = writeln!(self.out, " {value}");
    }

    fn sample_text(&mut self, name: &str, labels: &[(&str, &str)], value: &str) {
        self.series(name, labels);
        let _ = writeln!(self.out, " {value}");
    }

    /// A sample's name and labels.
    fn series(&mut self, name: &str, labels: &[(&str, &str)]) {
        self.out.push_str(name);
        if labels.is_empty() {
            return;
        }
        self.out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            self.out.push_str(k);
            self.out.push_str("=\"");
            esc(&mut self.out, v);
            self.out.push('"');
        }
        self.out.push('}');
    }
}

/// A float as Prometheus parses it (`0.5`, `1e-06`, never `NaN` here).
fn format_f64(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e15 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

/// Seconds from microseconds, as text.
fn seconds(us: u64) -> String {
    format_f64(us as f64 / 1e6)
}

/// The exposition of `s` in `format`.
pub fn render(s: &Snapshot, format: Format) -> String {
    let mut w = Writer {
        out: String::with_capacity(4096 + s.series.len() * 2048),
        format,
    };
    let om = format == Format::OpenMetrics;

    w.family(
        "bext_http_requests_total",
        Kind::Counter,
        "Requests answered, by site, route, upstream and status class.",
    );
    for (l, series) in &s.series {
        for (i, class) in CLASSES.iter().enumerate() {
            if series.classes[i] == 0 {
                continue;
            }
            let labels = [
                ("site", l.site.as_str()),
                ("route", l.route.as_str()),
                ("upstream", l.upstream.as_str()),
                ("class", class),
            ];
            w.sample("bext_http_requests_total", &labels, series.classes[i]);
        }
    }
    w.family(
        "bext_http_request_duration_seconds",
        Kind::Histogram,
        "Time from the first byte of a request to the end of its response, by site and route.",
    );
    for (l, series) in &s.series {
        let mut cumulative = 0;
        for (b, n) in series.buckets.iter().enumerate() {
            cumulative += n;
            let le = match BUCKETS_US.get(b) {
                Some(&us) => seconds(us),
                None => "+Inf".into(),
            };
            let labels = [
                ("site", l.site.as_str()),
                ("route", l.route.as_str()),
                ("upstream", l.upstream.as_str()),
                ("le", le.as_str()),
            ];
            w.sample(
                "bext_http_request_duration_seconds_bucket",
                &labels,
                cumulative,
            );
        }
        let labels = [
            ("site", l.site.as_str()),
            ("route", l.route.as_str()),
            ("upstream", l.upstream.as_str()),
        ];
        w.sample_text(
            "bext_http_request_duration_seconds_sum",
            &labels,
            &seconds(series.sum_us),
        );
        w.sample(
            "bext_http_request_duration_seconds_count",
            &labels,
            series.count(),
        );
    }

    w.family(
        "bext_metrics_per_request_enabled",
        Kind::Gauge,
        "1 when per-request metrics are on (global { metrics on }), 0 when off.",
    );
    w.sample(
        "bext_metrics_per_request_enabled",
        &[],
        u64::from(s.enabled),
    );

    // Workers.
    let worker_names: Vec<String> = (0..s.workers.len()).map(|i| i.to_string()).collect();
    let per_worker =
        |w: &mut Writer, name: &str, kind: Kind, help: &str, f: &dyn Fn(&WorkerFigures) -> u64| {
            w.family(name, kind, help);
            for (i, fig) in s.workers.iter().enumerate() {
                w.sample(name, &[("worker", worker_names[i].as_str())], f(fig));
            }
        };
    per_worker(
        &mut w,
        "bext_connections_open",
        Kind::Gauge,
        "Client connections open on the worker (parked ones included).",
        &|f| f.connections as u64,
    );
    per_worker(
        &mut w,
        "bext_connections_parked",
        Kind::Gauge,
        "Idle keep-alive client connections parked outside any task.",
        &|f| f.parked as u64,
    );
    per_worker(
        &mut w,
        "bext_worker_requests_total",
        Kind::Counter,
        "Requests whose head was read by the worker.",
        &|f| f.requests,
    );
    per_worker(
        &mut w,
        "bext_rate_limited_total",
        Kind::Counter,
        "Requests answered 429 by a rate_limit.",
        &|f| f.rate_limited,
    );
    per_worker(
        &mut w,
        "bext_upstream_stale_closed_total",
        Kind::Counter,
        "Pooled upstream connections closed at reuse (stray bytes, or closed by the upstream).",
        &|f| f.upstream_stale_closed,
    );
    per_worker(
        &mut w,
        "bext_upstream_surplus_closed_total",
        Kind::Counter,
        "Upstream connections kept out of the pool: bytes beyond the response arrived.",
        &|f| f.upstream_surplus_closed,
    );
    per_worker(
        &mut w,
        "bext_access_log_dropped_total",
        Kind::Counter,
        "Access log lines dropped because the log sink did not keep up.",
        &|f| f.log_dropped,
    );
    per_worker(
        &mut w,
        "bext_trace_spans_exported_total",
        Kind::Counter,
        "Spans the OTLP collector accepted.",
        &|f| f.spans_exported,
    );
    per_worker(
        &mut w,
        "bext_trace_spans_dropped_total",
        Kind::Counter,
        "Spans dropped before export: the core's queue was full, or tracing was reloaded away.",
        &|f| f.spans_dropped,
    );
    per_worker(
        &mut w,
        "bext_trace_spans_failed_total",
        Kind::Counter,
        "Spans lost in batches the OTLP collector refused or did not answer.",
        &|f| f.spans_failed,
    );

    // Generations and reloads.
    w.family(
        "bext_generation",
        Kind::Gauge,
        "The generation of the configuration every core runs new requests on.",
    );
    w.sample("bext_generation", &[], s.generation);
    w.family(
        "bext_generation_active_requests",
        Kind::Gauge,
        "Requests and tunnels still running, per live generation of the configuration.",
    );
    for (g, n) in &s.generations {
        let g = g.to_string();
        w.sample(
            "bext_generation_active_requests",
            &[("generation", g.as_str())],
            *n as u64,
        );
    }
    w.family(
        "bext_reloads_total",
        Kind::Counter,
        "Reloads of the configuration, by outcome.",
    );
    w.sample(
        "bext_reloads_total",
        &[("outcome", "success")],
        s.reloads_ok,
    );
    w.sample(
        "bext_reloads_total",
        &[("outcome", "failure")],
        s.reloads_failed,
    );

    // Stages.
    w.family(
        "bext_waf_blocked_total",
        Kind::Counter,
        "Requests the WAF refused.",
    );
    w.sample("bext_waf_blocked_total", &[], s.waf_blocked);
    w.family(
        "bext_cache_requests_total",
        Kind::Counter,
        "Requests on cached routes, by how the cache served them.",
    );
    for (i, r) in CACHE_RESULTS.iter().enumerate() {
        w.sample("bext_cache_requests_total", &[("result", r)], s.cache[i]);
    }

    // Figures of stage families (plugins), one family per name, in the order given.
    for (i, c) in s.stages.iter().enumerate() {
        if s.stages[..i].iter().all(|d| d.name != c.name) {
            let kind = if c.gauge { Kind::Gauge } else { Kind::Counter };
            w.family(c.name, kind, c.help);
        }
        let value = c.value.to_string();
        match &c.label {
            Some((k, v)) => w.sample_text(c.name, &[(k, v.as_str())], &value),
            None => w.sample_text(c.name, &[], &value),
        }
    }

    // Upstreams.
    type UpFig = fn(&crate::server::UpstreamStatus) -> u64;
    let up_families: [(&str, Kind, &str, UpFig); 7] = [
        (
            "bext_upstream_requests_total",
            Kind::Counter,
            "Requests proxied to the upstream (a retried request counts once).",
            |u| u.requests,
        ),
        (
            "bext_upstream_failures_total",
            Kind::Counter,
            "Failed attempts (connect errors, timeouts, resets, invalid responses, 5xx).",
            |u| u.failures,
        ),
        (
            "bext_upstream_retries_total",
            Kind::Counter,
            "Extra attempts made after a failure.",
            |u| u.retries,
        ),
        (
            "bext_upstream_retry_budget_exhausted_total",
            Kind::Counter,
            "Retries the policy allowed but the retry budget refused.",
            |u| u.budget_exhausted,
        ),
        (
            "bext_upstream_breaker_rejected_total",
            Kind::Counter,
            "Requests answered 503 because the upstream's circuit breaker was open.",
            |u| u.breaker_open,
        ),
        (
            "bext_upstream_active_connections",
            Kind::Gauge,
            "Upstream connections in use by requests now, over the workers.",
            |u| u.active_connections,
        ),
        (
            "bext_upstream_pending_requests",
            Kind::Gauge,
            "Requests waiting for an upstream connection now, over the workers.",
            |u| u.pending_requests,
        ),
    ];
    for (name, kind, help, f) in up_families {
        w.family(name, kind, help);
        for u in &s.upstreams {
            w.sample(name, &[("upstream", u.name.as_str())], f(u));
        }
    }
    w.family(
        "bext_upstream_breaker_open_workers",
        Kind::Gauge,
        "Workers on which the upstream's circuit breaker is open now, by the limit reached (max_connections, max_pending).",
    );
    for u in &s.upstreams {
        for (limit, n) in [
            ("connections", u.breaker_open_connections),
            ("pending", u.breaker_open_pending),
        ] {
            w.sample(
                "bext_upstream_breaker_open_workers",
                &[("upstream", u.name.as_str()), ("limit", limit)],
                n as u64,
            );
        }
    }
    type ServerFig = fn(&crate::server::ServerStatus) -> u64;
    let server_families: [(&str, Kind, &str, ServerFig); 5] = [
        (
            "bext_upstream_server_attempts_total",
            Kind::Counter,
            "Attempts sent to the server.",
            |v| v.requests,
        ),
        (
            "bext_upstream_server_failures_total",
            Kind::Counter,
            "Failed attempts on the server.",
            |v| v.failures,
        ),
        (
            "bext_upstream_server_ejections_total",
            Kind::Counter,
            "Passive ejections of the server, over every worker.",
            |v| v.ejections,
        ),
        (
            "bext_upstream_server_up",
            Kind::Gauge,
            "1 when the active health checks find the server up (always 1 without them).",
            |v| u64::from(v.up),
        ),
        (
            "bext_upstream_server_ejected_workers",
            Kind::Gauge,
            "Workers on which the server is passively ejected now.",
            |v| v.ejected_on as u64,
        ),
    ];
    for (name, kind, help, f) in server_families {
        w.family(name, kind, help);
        for u in &s.upstreams {
            for v in &u.servers {
                let addr = v.addr.to_string();
                w.sample(
                    name,
                    &[("upstream", u.name.as_str()), ("server", addr.as_str())],
                    f(v),
                );
            }
        }
    }

    // TLS.
    w.family(
        "bext_tls_handshakes_total",
        Kind::Counter,
        "TLS handshakes completed, by whether the session was resumed.",
    );
    w.sample(
        "bext_tls_handshakes_total",
        &[("resumed", "false")],
        s.tls_handshakes.saturating_sub(s.tls_resumed),
    );
    w.sample(
        "bext_tls_handshakes_total",
        &[("resumed", "true")],
        s.tls_resumed,
    );
    w.family(
        "bext_tls_handshake_failures_total",
        Kind::Counter,
        "TLS handshakes that failed, by reason class.",
    );
    for (reason, n) in &s.tls_failures {
        w.sample(
            "bext_tls_handshake_failures_total",
            &[("reason", reason)],
            *n,
        );
    }
    if om {
        w.out.push_str("# EOF\n");
    }
    w.out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_fields_choose_the_format() {
        let table: &[(Option<&str>, Format)] = &[
            (None, Format::Prometheus),
            (Some("*/*"), Format::Prometheus),
            (Some("text/plain"), Format::Prometheus),
            (
                Some("application/openmetrics-text; version=1.0.0"),
                Format::OpenMetrics,
            ),
            (
                Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"),
                Format::OpenMetrics,
            ),
            (
                Some("Application/OpenMetrics-Text;q=0, text/plain"),
                Format::Prometheus,
            ),
        ];
        for (accept, want) in table {
            assert_eq!(Format::from_accept(*accept), *want, "{accept:?}");
        }
    }

    fn labels(n: usize) -> Arc<[RouteLabels]> {
        let mut v: Vec<RouteLabels> = (0..n)
            .map(|i| RouteLabels {
                site: "*".into(),
                route: format!("/r{i}/*"),
                upstream: "app".into(),
            })
            .collect();
        v.push(RouteLabels {
            site: UNROUTED.into(),
            route: UNROUTED.into(),
            upstream: String::new(),
        });
        v.into()
    }

    #[test]
    fn requests_land_in_their_class_and_bucket_and_survive_a_new_generation() {
        let l = labels(2);
        let mut core = CoreMetrics::default();
        let published = std::sync::Mutex::new(Published::default());
        core.request(1, &l, Some(0), 200, 400); // first bucket (<= 0.5 ms)
        core.request(1, &l, Some(0), 204, 500); // still the first: `le` is inclusive
        core.request(1, &l, Some(0), 503, 20_000_000); // +Inf
        core.request(1, &l, None, 400, 10);
        core.request(1, &l, Some(99), 404, 10); // out of range: unrouted, not a panic
        core.publish(&published);
        // The same route under a new generation adds to the same series.
        core.request(2, &l, Some(0), 301, 1_000);
        core.publish(&published);
        // Only the newest generation's table is kept between ticks: quiet ticks do not make
        // the next request allocate one again.
        assert_eq!(core.tables.len(), 1);
        core.publish(&published);
        core.publish(&published);
        assert_eq!(core.tables.len(), 1);
        assert_eq!(core.tables[0].generation, 2);
        let p = published.lock().unwrap();
        let r0 = p.series[&l[0]];
        assert_eq!(r0.classes, [0, 2, 1, 0, 1]);
        assert_eq!(r0.buckets[0], 2);
        assert_eq!(r0.buckets[1], 1);
        assert_eq!(r0.buckets[NB - 1], 1);
        assert_eq!(r0.sum_us, 400 + 500 + 20_000_000 + 1_000);
        assert_eq!(p.series[&l[2]].classes, [0, 0, 0, 2, 0]);
        assert!(
            !p.series.contains_key(&l[1]),
            "a route without requests has no series"
        );
    }

    #[test]
    fn route_labels_follow_the_configuration() {
        let mk = |path: ir::PathMatch, methods: &[&str]| {
            let mut r = ir::Route::new(
                path,
                ir::Action::Proxy {
                    upstream: "app".into(),
                },
                ir::Loc::default(),
            );
            r.methods = methods.iter().map(|m| m.to_string()).collect();
            r
        };
        let mut c = ir::Config::default();
        c.sites.push(ir::Site {
            hosts: vec![
                ir::HostPattern::Exact("a.test".into()),
                ir::HostPattern::Wildcard("b.test".into()),
            ],
            routes: vec![
                mk(ir::PathMatch::Exact("/healthz".into()), &[]),
                mk(ir::PathMatch::Prefix("/api/".into()), &["GET", "HEAD"]),
                mk(ir::PathMatch::Regex("^/u/[0-9]+$".into()), &[]),
            ],
            paths: Default::default(),
            redirect_https: None,
            hsts: None,
            at: ir::Loc::default(),
        });
        c.sites.push(ir::Site {
            hosts: vec![],
            routes: vec![
                mk(ir::PathMatch::Prefix("/".into()), &[]),
                mk(ir::PathMatch::Prefix("/".into()), &[]),
            ],
            paths: Default::default(),
            redirect_https: None,
            hsts: None,
            at: ir::Loc::default(),
        });
        let got: Vec<(String, String)> = RouteLabels::of_config(&c)
            .iter()
            .map(|l| (l.site.clone(), l.route.clone()))
            .collect();
        let want = [
            ("a.test *.b.test", "/healthz"),
            ("a.test *.b.test", "GET,HEAD /api/*"),
            ("a.test *.b.test", "~ ^/u/[0-9]+$"),
            ("*", "/*"),
            ("*", "/* #2"),
            (UNROUTED, UNROUTED),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn both_formats_carry_the_same_samples_and_openmetrics_ends_with_eof() {
        let l = labels(1);
        let mut s = Snapshot {
            enabled: true,
            ..Snapshot::default()
        };
        let mut series = Series::default();
        series.observe(200, 700);
        series.observe(500, 3_000_000);
        s.series.insert(
            RouteLabels {
                site: "a \"q\" \\ b".into(),
                ..l[0].clone()
            },
            series,
        );
        let prom = render(&s, Format::Prometheus);
        let om = render(&s, Format::OpenMetrics);
        assert!(prom.contains("# TYPE bext_http_requests_total counter\n"));
        assert!(om.contains("# TYPE bext_http_requests counter\n"));
        let line = "bext_http_requests_total{site=\"a \\\"q\\\" \\\\ b\",route=\"/r0/*\",upstream=\"app\",class=\"2xx\"} 1\n";
        assert!(prom.contains(line), "{prom}");
        assert!(om.contains(line));
        assert!(prom.contains(
            "bext_http_request_duration_seconds_bucket{site=\"a \\\"q\\\" \\\\ b\",route=\"/r0/*\",upstream=\"app\",le=\"0.001\"} 1\n"
        ));
        assert!(prom.contains("le=\"2.5\"} 1\n"));
        assert!(prom.contains("le=\"5.0\"} 2\n"));
        assert!(prom.contains("le=\"+Inf\"} 2\n"));
        assert!(prom.contains("bext_http_request_duration_seconds_sum{site=\"a \\\"q\\\" \\\\ b\",route=\"/r0/*\",upstream=\"app\"} 3.0007\n"));
        assert!(!prom.contains("# EOF"));
        assert!(om.ends_with("# EOF\n"));
    }
}
