//! Distributed tracing end to end: a recording origin sees the `traceparent` bext sends (the
//! client's trace continued only from trusted peers and only when valid, bext's span as the
//! parent, `tracestate` only with its trace), a local OTLP/HTTP receiver gets the spans of
//! sampled requests (and of no others), the access log names the trace and span, a collector
//! that is down, stalled or answers garbage costs only counted spans, queued spans are sent when bext stops,
//! and without a `tracing` block the client's fields pass through untouched. Exports happen
//! on a timer, so expected spans are waited for (bounded only so that a broken build fails
//! instead of hanging), never timed.

mod common;

use common::{connect, read_message, read_response};
use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

type Heads = Arc<Mutex<Vec<String>>>;

/// An origin that records every request head and answers 200 "ok".
fn origin() -> (SocketAddr, Heads) {
    let heads: Heads = Arc::default();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let h = heads.clone();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let h = h.clone();
            std::thread::spawn(move || {
                let mut w = s.try_clone().unwrap();
                let mut r = BufReader::new(s);
                while let Some((head, _)) = read_message(&mut r) {
                    h.lock().unwrap().push(head);
                    if w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (addr, heads)
}

/// How a test collector answers.
#[derive(Clone, Copy, PartialEq)]
enum Collector {
    Accepts,
    /// Reads requests and never answers.
    Stalls,
    /// Answers every POST with bytes that are not HTTP.
    Garbles,
}

/// A local OTLP/HTTP receiver: the spans of every accepted POST, in arrival order.
fn collector(mode: Collector) -> (SocketAddr, Arc<Mutex<Vec<serde_json::Value>>>) {
    let spans: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let got = spans.clone();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let got = got.clone();
            std::thread::spawn(move || {
                let mut w = s.try_clone().unwrap();
                let mut r = BufReader::new(s);
                while let Some((head, body)) = read_message(&mut r) {
                    assert!(head.starts_with("POST /v1/traces HTTP/1.1\r\n"), "{head}");
                    assert!(
                        head.contains("Content-Type: application/json\r\n"),
                        "{head}"
                    );
                    if mode == Collector::Stalls {
                        continue;
                    }
                    if mode == Collector::Garbles {
                        let _ = w.write_all(b"SPDY/9 nonsense\r\n\r\n");
                        continue;
                    }
                    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    let rs = &doc["resourceSpans"][0];
                    let service = rs["resource"]["attributes"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|a| a["key"] == "service.name")
                        .unwrap()["value"]["stringValue"]
                        .clone();
                    assert_eq!(service, "edge-test");
                    for s in rs["scopeSpans"][0]["spans"].as_array().unwrap() {
                        got.lock().unwrap().push(s.clone());
                    }
                    if w
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (addr, spans)
}

struct Setup {
    server: bext::Server,
    heads: Heads,
    log: std::path::PathBuf,
    _dir: TempDir,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// bext proxying everything to a recording origin, with `global_extra` in its global block.
fn start(name: &str, global_extra: &str) -> Setup {
    let (up, heads) = origin();
    let dir = std::env::temp_dir().join(format!("bext-tracing-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("access.log");
    let src = format!(
        "global {{\n    admin 127.0.0.1:0\n    access_log \"{}\" json\n    {global_extra}\n}}\nlisten 127.0.0.1:0\nupstream app {{ server {up} }}\nsite * {{\n    route /api/* {{ proxy app }}\n}}\n",
        log.display()
    );
    let compiled = match bext_dsl::compile_str("tracing.bext", &src) {
        Ok(c) => c,
        Err(f) => panic!("the configuration compiles:\n{}\n{src}", f.render_human()),
    };
    let opts = bext::StartOptions {
        workers: Some(1),
        ..common::opts()
    };
    let server = bext::start(compiled.config, opts).expect("bext starts");
    Setup {
        server,
        heads,
        log,
        _dir: TempDir(dir),
    }
}

/// Send one GET with `fields`; the response status.
fn get(s: &Setup, path: &str, fields: &[&str]) -> u16 {
    let mut c = connect(common::addr(&s.server));
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n");
    for f in fields {
        req.push_str(f);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    c.write_all(req.as_bytes()).unwrap();
    read_response(&mut BufReader::new(c), false).status
}

/// The value of field `name` in a recorded head (`None` when absent; panics when repeated).
fn field<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    let mut found = head.lines().filter_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then_some(v.trim())
    });
    let first = found.next();
    assert!(found.next().is_none(), "{name} repeated in {head}");
    first
}

fn last_head(s: &Setup) -> String {
    s.heads
        .lock()
        .unwrap()
        .last()
        .cloned()
        .expect("the origin saw a request")
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < until, "waited too long for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The access log's lines, once it holds `n` of them.
fn log_lines(s: &Setup, n: usize) -> Vec<serde_json::Value> {
    let mut lines = Vec::new();
    wait_for("the access log", || {
        let text = std::fs::read_to_string(&s.log).unwrap_or_default();
        lines = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        lines.len() >= n
    });
    lines
}

fn attr(span: &serde_json::Value, key: &str) -> serde_json::Value {
    span["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == key)
        .map_or(serde_json::Value::Null, |a| a["value"].clone())
}

fn admin_status(s: &Setup) -> serde_json::Value {
    let mut c = TcpStream::connect(s.server.admin_addr().unwrap()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    c.write_all(b"GET /status HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    c.read_to_string(&mut text).unwrap();
    let (_, body) = text.split_once("\r\n\r\n").unwrap();
    serde_json::from_str(body).unwrap()
}

fn worker_sum(s: &Setup, key: &str) -> u64 {
    admin_status(s)["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w[key].as_u64().unwrap())
        .sum()
}

#[test]
fn a_trusted_parent_is_continued_and_its_span_exported() {
    let (otlp, spans) = collector(Collector::Accepts);
    // `sample 0%`: a continued trace follows its parent's sampled flag, not the rate.
    let s = start(
        "trusted",
        &format!(
            "trusted_proxies 127.0.0.1\n    tracing {{ sample 0%; service edge-test; otlp \"http://{otlp}/v1/traces\" interval 50ms }}"
        ),
    );
    assert_eq!(
        get(
            &s,
            "/api/x?token=secret",
            &[
                &format!("traceparent: {PARENT}"),
                "tracestate: vendor=abc,other=1"
            ]
        ),
        200
    );
    let head = last_head(&s);
    let sent = field(&head, "traceparent").expect("traceparent upstream");
    let p: Vec<&str> = sent.split('-').collect();
    assert_eq!((p[0], p[1], p[3]), ("00", TRACE, "01"), "{sent}");
    assert_ne!(
        p[2], "00f067aa0ba902b7",
        "bext's own span is the parent upstream"
    );
    assert_eq!(field(&head, "tracestate"), Some("vendor=abc,other=1"));

    wait_for("the span", || !spans.lock().unwrap().is_empty());
    let span = spans.lock().unwrap()[0].clone();
    assert_eq!(span["traceId"], TRACE);
    assert_eq!(span["spanId"], p[2]);
    assert_eq!(span["parentSpanId"], "00f067aa0ba902b7");
    assert_eq!(span["kind"], 2);
    assert_eq!(span["name"], "GET /api/*");
    assert_eq!(attr(&span, "url.path")["stringValue"], "/api/x");
    assert_eq!(attr(&span, "http.route")["stringValue"], "/api/*");
    assert_eq!(attr(&span, "http.response.status_code")["intValue"], "200");
    assert!(
        !span.to_string().contains("secret"),
        "the query stays out of spans"
    );
    let start: u64 = span["startTimeUnixNano"].as_str().unwrap().parse().unwrap();
    let end: u64 = span["endTimeUnixNano"].as_str().unwrap().parse().unwrap();
    assert!(start > 0 && end >= start);

    let line = &log_lines(&s, 1)[0];
    assert_eq!(line["trace_id"], TRACE);
    assert_eq!(line["span_id"], p[2]);
    wait_for("the exported count", || {
        worker_sum(&s, "spans_exported") == 1
    });
}

#[test]
fn an_untrusted_peer_starts_a_trace_named_by_the_request_id() {
    let (otlp, spans) = collector(Collector::Accepts);
    let s = start(
        "untrusted",
        &format!("tracing {{ service edge-test; otlp \"http://{otlp}\" interval 50ms }}"),
    );
    get(
        &s,
        "/api/y",
        &[&format!("traceparent: {PARENT}"), "tracestate: vendor=abc"],
    );
    let head = last_head(&s);
    let rid = field(&head, "x-request-id").unwrap();
    let sent = field(&head, "traceparent").unwrap();
    assert_eq!(sent, format!("00-{rid}-{}-01", &sent[36..52]));
    assert_eq!(
        field(&head, "tracestate"),
        None,
        "tracestate only with its trace"
    );
    wait_for("the span", || !spans.lock().unwrap().is_empty());
    let span = spans.lock().unwrap()[0].clone();
    assert_eq!(span["traceId"], rid);
    assert!(span.get("parentSpanId").is_none(), "{span}");
    assert_eq!(attr(&span, "bext.request_id")["stringValue"], rid);
}

#[test]
fn an_invalid_or_repeated_traceparent_starts_a_new_trace() {
    let s = start("invalid", "tracing { parent any }");
    let cases: &[&[&str]] = &[
        &[
            "traceparent: 00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "tracestate: a=b",
        ],
        &[
            "traceparent: ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "tracestate: a=b",
        ],
        &[
            "traceparent: 00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "tracestate: a=b",
        ],
        &[
            "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "tracestate: a=b",
        ],
        &[
            "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b8-01",
            "tracestate: a=b",
        ],
    ];
    for fields in cases {
        assert_eq!(get(&s, "/api/z", fields), 200);
        let head = last_head(&s);
        let sent = field(&head, "traceparent").unwrap();
        assert!(!sent.contains(TRACE), "{fields:?} -> {sent}");
        assert_eq!(field(&head, "tracestate"), None, "{fields:?}");
    }
    // A valid one from anyone under `parent any`.
    get(
        &s,
        "/api/z",
        &[&format!("traceparent: {PARENT}"), "tracestate: a=b"],
    );
    let head = last_head(&s);
    assert!(field(&head, "traceparent").unwrap().contains(TRACE));
    assert_eq!(field(&head, "tracestate"), Some("a=b"));
}

#[test]
fn unsampled_requests_are_propagated_but_not_exported() {
    let (otlp, spans) = collector(Collector::Accepts);
    let s = start(
        "unsampled",
        &format!(
            "trusted_proxies 127.0.0.1\n    tracing {{ sample 0%; service edge-test; otlp \"http://{otlp}\" interval 50ms }}"
        ),
    );
    for _ in 0..20 {
        get(&s, "/api/u", &[]);
        let head = last_head(&s);
        assert!(field(&head, "traceparent").unwrap().ends_with("-00"));
    }
    // A parent that asks for sampling is followed: its span is the only one exported.
    get(&s, "/api/sampled", &[&format!("traceparent: {PARENT}")]);
    wait_for("the sampled span", || !spans.lock().unwrap().is_empty());
    let got = spans.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["traceId"], TRACE);
    // Every request is logged with its trace id, sampled or not.
    let lines = log_lines(&s, 21);
    assert!(lines
        .iter()
        .all(|l| l["trace_id"].as_str().unwrap().len() == 32));
}

#[test]
fn without_tracing_the_fields_pass_through_untouched() {
    let s = start("off", "");
    get(
        &s,
        "/api/o",
        &["traceparent: 00-4BF92F-not-even-valid", "tracestate: x=y"],
    );
    let head = last_head(&s);
    assert_eq!(
        field(&head, "traceparent"),
        Some("00-4BF92F-not-even-valid")
    );
    assert_eq!(field(&head, "tracestate"), Some("x=y"));
    let line = &log_lines(&s, 1)[0];
    assert!(line.get("trace_id").is_none(), "{line}");
}

#[test]
fn a_collector_that_is_down_stalled_or_garbled_costs_only_counted_spans() {
    // Down: a port nobody listens on.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let s = start(
        "down",
        &format!("tracing {{ otlp \"http://{closed}\" interval 20ms }}"),
    );
    for _ in 0..30 {
        assert_eq!(get(&s, "/api/d", &[]), 200);
    }
    wait_for("the failed count", || worker_sum(&s, "spans_failed") == 30);
    drop(s);

    // Stalled: it reads and never answers; the queue (16 spans) fills and the rest are dropped.
    let (otlp, _) = collector(Collector::Stalls);
    let s = start(
        "stalled",
        &format!("tracing {{ otlp \"http://{otlp}\" queue 16 interval 20ms }}"),
    );
    for _ in 0..200 {
        assert_eq!(get(&s, "/api/s", &[]), 200);
    }
    wait_for("dropped spans", || worker_sum(&s, "spans_dropped") > 0);
    let st = admin_status(&s);
    assert_eq!(st["workers"][0]["spans_exported"], 0);
    drop(s);

    // Garbled: an answer that is not HTTP fails its batch; nothing counts as exported.
    let (otlp, _) = collector(Collector::Garbles);
    let s = start(
        "garbled",
        &format!("tracing {{ otlp \"http://{otlp}\" interval 20ms }}"),
    );
    for _ in 0..30 {
        assert_eq!(get(&s, "/api/g", &[]), 200);
    }
    wait_for("the failed count", || worker_sum(&s, "spans_failed") == 30);
    assert_eq!(worker_sum(&s, "spans_exported"), 0);
}

#[test]
fn queued_spans_are_sent_when_bext_stops() {
    let (otlp, spans) = collector(Collector::Accepts);
    // An interval longer than the test: only the stop sends them.
    let s = start(
        "stop",
        &format!("tracing {{ service edge-test; otlp \"http://{otlp}\" interval 60s }}"),
    );
    for _ in 0..3 {
        get(&s, "/api/q", &[]);
    }
    drop(s);
    wait_for("the spans sent at the stop", || {
        spans.lock().unwrap().len() == 3
    });
}
