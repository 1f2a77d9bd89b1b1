//! `GET /metrics` of the admin endpoint, scraped while bext serves a load: the counters match
//! the requests sent (per route and status class, the latency histograms' counts, upstream
//! attempts, reloads), `promtool check metrics` (Debian package `prometheus`) accepts every
//! scrape, OpenMetrics is served when asked for, and `metrics off` records nothing per
//! request. Workers publish on their 100 ms tick, so expected figures are waited for (bounded
//! only so that a broken build fails instead of hanging), never timed.

mod common;

use bext_ir as ir;
use common::{connect, read_response, route};
use std::collections::HashMap;
use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A configuration with an admin endpoint on an ephemeral loopback port and three routes: a
/// fixed answer, a proxied one and a 503.
fn config(origin: SocketAddr, metrics: bool) -> ir::Config {
    let mut c = bext::proxy_config("127.0.0.1:0", &[origin.to_string()]);
    c.sites = common::site(vec![
        route(
            ir::PathMatch::Prefix("/a/".into()),
            common::respond(200, "a"),
        ),
        route(
            ir::PathMatch::Prefix("/b/".into()),
            ir::Action::Proxy {
                upstream: "backend".into(),
            },
        ),
        route(
            ir::PathMatch::Exact("/down".into()),
            common::respond(503, "down"),
        ),
    ])
    .sites;
    // Only /a/, /b/ and /down: anything else is 404 with no route.
    c.sites[0].hosts = vec![ir::HostPattern::Exact("test".into())];
    c.global.admin = Some("127.0.0.1:0".into());
    c.global.metrics = metrics;
    c
}

fn start(config: ir::Config, workers: usize) -> bext::Server {
    let opts = bext::StartOptions {
        workers: Some(workers),
        ..common::opts()
    };
    bext::start(config, opts).expect("bext starts")
}

/// One scrape: (content type, body).
fn scrape(admin: SocketAddr, accept: Option<&str>) -> (String, String) {
    let mut s = TcpStream::connect(admin).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let accept = accept.map_or(String::new(), |a| format!("Accept: {a}\r\n"));
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\n{accept}\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    let ctype = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Type: "))
        .unwrap()
        .to_string();
    (ctype, body.to_string())
}

/// Sample lines by their name and labels, as written (`name{labels}` → value).
fn samples(body: &str) -> HashMap<String, f64> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

fn value(body: &str, key: &str) -> f64 {
    samples(body).get(key).copied().unwrap_or(0.0)
}

/// `promtool check metrics` on `body`; the test fails when promtool is missing, since it is
/// the acceptance check (`scripts/setup-debian.sh` installs it).
fn promtool(body: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package `prometheus`) runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool refused the exposition:\n{}{}\n--- exposition:\n{body}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // promtool also reports style problems (names, units, counters without _total) on its
    // output while still exiting 0 for some of them: none are expected.
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.trim().is_empty(), "promtool: {said}");
}

fn get(conn: &mut BufReader<TcpStream>, path: &str) -> u16 {
    write!(conn.get_mut(), "GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
    read_response(conn, false).status
}

const WAIT: Duration = Duration::from_secs(60);

/// Scrape until `cond` holds on a scrape; returns that scrape.
fn scrape_until(admin: SocketAddr, what: &str, cond: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, body) = scrape(admin, None);
        if cond(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "gave up waiting for {what}:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

const A_2XX: &str =
    "bext_http_requests_total{site=\"test\",route=\"/a/*\",upstream=\"\",class=\"2xx\"}";
const B_2XX: &str =
    "bext_http_requests_total{site=\"test\",route=\"/b/*\",upstream=\"backend\",class=\"2xx\"}";
const DOWN_5XX: &str =
    "bext_http_requests_total{site=\"test\",route=\"/down\",upstream=\"\",class=\"5xx\"}";
const NONE_4XX: &str =
    "bext_http_requests_total{site=\"(none)\",route=\"(none)\",upstream=\"\",class=\"4xx\"}";

#[test]
fn counters_scraped_during_load_match_the_requests_sent() {
    let origin = common::origin(16);
    let bext = start(config(common::addr(&origin), true), 2);
    let admin = bext.admin_addr().unwrap();
    let to = common::addr(&bext);
    const CLIENTS: usize = 4;
    const ROUNDS: usize = 50;
    let load = std::thread::spawn(move || {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                std::thread::spawn(move || {
                    let mut conn = BufReader::new(connect(to));
                    for _ in 0..ROUNDS {
                        assert_eq!(get(&mut conn, "/a/x"), 200);
                        assert_eq!(get(&mut conn, "/b/y"), 200);
                        assert_eq!(get(&mut conn, "/down"), 503);
                        assert_eq!(get(&mut conn, "/nowhere"), 404);
                    }
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
    });
    // Scrapes while the load runs are well-formed and never go backwards.
    let mut last = 0.0;
    let mut during = 0;
    while !load.is_finished() {
        let (ctype, body) = scrape(admin, None);
        assert_eq!(ctype, "text/plain; version=0.0.4; charset=utf-8");
        let now = value(&body, A_2XX);
        assert!(now >= last, "a counter went backwards: {last} then {now}");
        last = now;
        if during < 3 {
            promtool(&body);
            during += 1;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    load.join().unwrap();
    let n = (CLIENTS * ROUNDS) as f64;
    let body = scrape_until(admin, "every request counted", |b| {
        value(b, A_2XX) == n
            && value(b, B_2XX) == n
            && value(b, DOWN_5XX) == n
            && value(b, NONE_4XX) == n
    });
    promtool(&body);
    let s = samples(&body);
    // Each route's histogram counts its requests once.
    for (route, upstream) in [("/a/*", ""), ("/b/*", "backend"), ("/down", "")] {
        let labels = format!("site=\"test\",route=\"{route}\",upstream=\"{upstream}\"");
        let count = s[&format!("bext_http_request_duration_seconds_count{{{labels}}}")];
        let inf = s[&format!("bext_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}}")];
        assert_eq!(count, n, "{route}");
        assert_eq!(inf, n, "{route}");
    }
    // Classes a route never answered have no sample.
    assert!(!s.contains_key(&A_2XX.replace("2xx", "5xx")));
    // The upstream saw every proxied request, and its one server every attempt.
    assert_eq!(
        s["bext_upstream_requests_total{upstream=\"backend\"}"], n,
        "{body}"
    );
    let server = common::addr(&origin).to_string();
    assert_eq!(
        s[&format!(
            "bext_upstream_server_attempts_total{{upstream=\"backend\",server=\"{server}\"}}"
        )],
        n
    );
    assert_eq!(
        s[&format!("bext_upstream_server_up{{upstream=\"backend\",server=\"{server}\"}}")],
        1.0
    );
    // The breaker is closed and nothing is in use once the load is over.
    for limit in ["connections", "pending"] {
        assert_eq!(
            s[&format!(
                "bext_upstream_breaker_open_workers{{upstream=\"backend\",limit=\"{limit}\"}}"
            )],
            0.0
        );
    }
    assert_eq!(
        s["bext_upstream_pending_requests{upstream=\"backend\"}"],
        0.0
    );
    // No tracing configured: no span went anywhere.
    assert_eq!(s["bext_trace_spans_exported_total{worker=\"0\"}"], 0.0);
    // Requests read per worker add up to everything sent.
    let read: f64 = (0..2)
        .map(|w| s[&format!("bext_worker_requests_total{{worker=\"{w}\"}}")])
        .sum();
    assert_eq!(read, 4.0 * n);
    assert_eq!(s["bext_metrics_per_request_enabled"], 1.0);
    assert_eq!(s["bext_reloads_total{outcome=\"success\"}"], 0.0);

    // A reload that keeps the routes keeps their series counting; the reload is counted.
    let g = bext.reload(&config(common::addr(&origin), true)).unwrap();
    let mut conn = BufReader::new(connect(to));
    assert_eq!(get(&mut conn, "/a/x"), 200);
    let body = scrape_until(admin, "the request after the reload", |b| {
        value(b, A_2XX) == n + 1.0
    });
    assert_eq!(value(&body, "bext_reloads_total{outcome=\"success\"}"), 1.0);
    assert_eq!(value(&body, "bext_generation"), g as f64);
    promtool(&body);
    drop(conn);
    bext.shutdown();
    origin.shutdown();
}

#[test]
fn openmetrics_is_served_when_asked_for() {
    let origin = common::origin(16);
    let bext = start(config(common::addr(&origin), true), 1);
    let admin = bext.admin_addr().unwrap();
    let mut conn = BufReader::new(connect(common::addr(&bext)));
    assert_eq!(get(&mut conn, "/a/x"), 200);
    let prom = scrape_until(admin, "the request", |b| value(b, A_2XX) == 1.0);
    let (ctype, om) = scrape(
        admin,
        Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"),
    );
    assert_eq!(
        ctype,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(om.ends_with("# EOF\n"), "{om}");
    assert!(om.contains("# TYPE bext_http_requests counter\n"));
    assert!(prom.contains("# TYPE bext_http_requests_total counter\n"));
    assert_eq!(value(&om, A_2XX), 1.0);
    // The same samples in both formats.
    let (mut a, mut b): (Vec<_>, Vec<_>) = (
        samples(&prom).into_keys().collect(),
        samples(&om).into_keys().collect(),
    );
    a.sort();
    b.sort();
    assert_eq!(a, b);
    drop(conn);
    bext.shutdown();
    origin.shutdown();
}

#[test]
fn metrics_off_records_nothing_per_request() {
    let origin = common::origin(16);
    let bext = start(config(common::addr(&origin), false), 1);
    let admin = bext.admin_addr().unwrap();
    let mut conn = BufReader::new(connect(common::addr(&bext)));
    for _ in 0..10 {
        assert_eq!(get(&mut conn, "/a/x"), 200);
    }
    // The worker's own counter moves (on its tick); the per-route series never appear.
    let body = scrape_until(admin, "the worker's request count", |b| {
        value(b, "bext_worker_requests_total{worker=\"0\"}") == 10.0
    });
    assert_eq!(value(&body, "bext_metrics_per_request_enabled"), 0.0);
    assert!(!body.contains("bext_http_requests_total{"), "{body}");
    assert!(!body.contains("bext_http_request_duration_seconds_bucket{"));
    promtool(&body);
    // Turned on by a reload, the next requests are counted.
    bext.reload(&config(common::addr(&origin), true)).unwrap();
    assert_eq!(get(&mut conn, "/a/x"), 200);
    scrape_until(admin, "the request after metrics on", |b| {
        value(b, A_2XX) == 1.0
    });
    drop(conn);
    bext.shutdown();
    origin.shutdown();
}
