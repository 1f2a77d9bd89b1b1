//! `rate_limit` end to end: bursts then 429 with `Retry-After` and a problem body, budgets per
//! client address, per header value and per route, one budget across cores, refill, reloads
//! that keep or renew the counts, and requests with bodies.

mod common;
use bext_ir as ir;
use common::*;
use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

fn limited(requests: u64, per_ms: u64, burst: u64, key: ir::RateKey) -> ir::Config {
    let mut r = route(ir::PathMatch::Prefix("/".into()), respond(200, "ok"));
    r.rate_limit = Some(ir::RateLimit {
        requests,
        per_ms,
        key,
        burst,
        at: loc(),
    });
    let open = route(ir::PathMatch::Prefix("/open/".into()), respond(200, "open"));
    site(vec![r, open])
}

const HOUR: u64 = 3_600_000;

/// A keep-alive connection from `from` (any 127.0.0.0/8 address).
fn client_from(from: [u8; 4], to: SocketAddr) -> BufReader<TcpStream> {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(&SocketAddr::from((from, 0)).into()).unwrap();
    s.connect(&to.into()).unwrap();
    let s: TcpStream = s.into();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    BufReader::new(s)
}

fn get(c: &mut BufReader<TcpStream>, path: &str, extra: &str) -> Resp {
    c.get_mut()
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: h\r\n{extra}\r\n").as_bytes())
        .unwrap();
    read_response(c, false)
}

fn statuses(c: &mut BufReader<TcpStream>, n: usize, extra: &str) -> Vec<u16> {
    (0..n).map(|_| get(c, "/x", extra).status).collect()
}

#[test]
fn a_burst_passes_then_429_with_retry_after_and_a_problem_body() {
    let srv = start(limited(1, HOUR, 3, ir::RateKey::ClientIp));
    let mut c = client_from([127, 0, 0, 1], addr(&srv));
    assert_eq!(statuses(&mut c, 3, ""), vec![200, 200, 200]);
    let r = get(&mut c, "/x", "");
    assert_eq!(r.status, 429);
    // One request per hour: the next one is accepted in about an hour.
    let secs: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((3_000..=3_600).contains(&secs), "{secs}");
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    // The IETF fields (draft-ietf-httpapi-ratelimit-headers): one request per 3600 seconds,
    // none left, and the same wait as Retry-After.
    assert_eq!(r.header("ratelimit-policy"), Some("\"default\";q=1;w=3600"));
    assert_eq!(
        r.header("ratelimit"),
        Some(format!("\"default\";r=0;t={secs}").as_str())
    );
    assert!(
        r.text()
            .contains("\"type\":\"https://bext.dev/problems/rate-limited\""),
        "{}",
        r.text()
    );
    // The connection stays usable, and a route without a limit is not counted.
    assert_eq!(get(&mut c, "/open/a", "").status, 200);
    assert_eq!(get(&mut c, "/x", "").status, 429);
    let limited: u64 = srv.control().status().iter().map(|w| w.rate_limited).sum();
    assert_eq!(limited, 2);
    srv.shutdown();
}

#[test]
fn each_client_address_has_its_own_budget() {
    let srv = start(limited(1, HOUR, 2, ir::RateKey::ClientIp));
    let mut a = client_from([127, 0, 0, 1], addr(&srv));
    let mut b = client_from([127, 0, 0, 2], addr(&srv));
    assert_eq!(statuses(&mut a, 3, ""), vec![200, 200, 429]);
    assert_eq!(statuses(&mut b, 3, ""), vec![200, 200, 429]);
    // A new connection from an address does not get a new budget.
    let mut a2 = client_from([127, 0, 0, 1], addr(&srv));
    assert_eq!(statuses(&mut a2, 1, ""), vec![429]);
    srv.shutdown();
}

#[test]
fn per_header_budgets_follow_the_value_and_a_missing_header_shares_one() {
    let srv = start(limited(1, HOUR, 2, ir::RateKey::Header("x-api-key".into())));
    let mut c = client_from([127, 0, 0, 1], addr(&srv));
    assert_eq!(
        statuses(&mut c, 3, "X-Api-Key: alpha\r\n"),
        vec![200, 200, 429]
    );
    assert_eq!(
        statuses(&mut c, 3, "x-api-key: beta\r\n"),
        vec![200, 200, 429]
    );
    // Leaving the header out is one more budget, not a way around the limit.
    assert_eq!(statuses(&mut c, 3, ""), vec![200, 200, 429]);
    let mut other = client_from([127, 0, 0, 3], addr(&srv));
    assert_eq!(statuses(&mut other, 1, ""), vec![429]);
    assert_eq!(statuses(&mut other, 1, "X-Api-Key: gamma\r\n"), vec![200]);
    srv.shutdown();
}

#[test]
fn a_global_limit_is_shared_by_every_client() {
    let srv = start(limited(1, HOUR, 3, ir::RateKey::Global));
    let mut a = client_from([127, 0, 0, 1], addr(&srv));
    let mut b = client_from([127, 0, 0, 2], addr(&srv));
    assert_eq!(statuses(&mut a, 2, ""), vec![200, 200]);
    assert_eq!(statuses(&mut b, 2, ""), vec![200, 429]);
    assert_eq!(statuses(&mut a, 1, ""), vec![429]);
    srv.shutdown();
}

/// Connections land on both cores; the budget is one per client, not one per core.
#[test]
fn one_budget_across_cores() {
    let opts = bext::StartOptions {
        workers: Some(2),
        ..opts()
    };
    let srv = bext::start(limited(1, HOUR, 10, ir::RateKey::ClientIp), opts).unwrap();
    let mut accepted = 0;
    for _ in 0..40 {
        let mut c = client_from([127, 0, 0, 1], addr(&srv));
        if get(&mut c, "/x", "").status == 200 {
            accepted += 1;
        }
    }
    assert_eq!(accepted, 10);
    let per_worker: Vec<u64> = srv.control().status().iter().map(|w| w.requests).collect();
    assert!(
        per_worker.iter().all(|n| *n > 0),
        "both cores served: {per_worker:?}"
    );
    srv.shutdown();
}

#[test]
fn the_budget_refills_at_the_rate() {
    // Two per second, burst 1: after a refusal, a request half a second later is accepted.
    let srv = start(limited(2, 1_000, 1, ir::RateKey::ClientIp));
    let mut c = client_from([127, 0, 0, 1], addr(&srv));
    let mut refused = false;
    for _ in 0..20 {
        let r = get(&mut c, "/x", "");
        if r.status == 429 {
            assert_eq!(r.header("retry-after"), Some("1"));
            refused = true;
            break;
        }
    }
    assert!(refused, "a burst of 1 is exceeded by back-to-back requests");
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(get(&mut c, "/x", "").status, 200);
    srv.shutdown();
}

#[test]
fn a_reload_keeps_the_counts_of_an_unchanged_limit_and_renews_a_changed_one() {
    let config = limited(1, HOUR, 2, ir::RateKey::ClientIp);
    let srv = start(config.clone());
    let mut c = client_from([127, 0, 0, 1], addr(&srv));
    assert_eq!(statuses(&mut c, 3, ""), vec![200, 200, 429]);
    assert_eq!(srv.reload(&config), Ok(2));
    assert_eq!(statuses(&mut c, 1, ""), vec![429]);
    let changed = limited(1, HOUR, 3, ir::RateKey::ClientIp);
    assert_eq!(srv.reload(&changed), Ok(3));
    assert_eq!(statuses(&mut c, 4, ""), vec![200, 200, 200, 429]);
    srv.shutdown();
}

/// A refused request whose body was not read closes the connection after the 429 (the body
/// would otherwise be taken for the next request); nothing reaches the action.
#[test]
fn a_refused_request_with_a_body_gets_429_and_the_connection_closes() {
    let srv = start(limited(1, HOUR, 1, ir::RateKey::ClientIp));
    let mut c = client_from([127, 0, 0, 1], addr(&srv));
    assert_eq!(statuses(&mut c, 1, ""), vec![200]);
    c.get_mut()
        .write_all(b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello")
        .unwrap();
    let r = read_response(&mut c, false);
    assert_eq!(r.status, 429);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(closed(&mut c));
    srv.shutdown();
}
