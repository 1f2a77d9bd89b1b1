//! Load balancing end to end, over real sockets: weighted distribution, active health checks
//! (a killed origin leaves and comes back), passive ejection, retries (never of a half-sent
//! body, never twice in a row on one server, capped by the budget), the circuit breaker,
//! backups, header hashing, and health state across a reload.

#[path = "common/balance.rs"]
mod balance_common;
mod common;

use balance_common::*;
use bext_ir as ir;
use common::{addr, connect, opts};
use std::collections::HashMap;
use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn start_with(config: ir::Config, workers: usize) -> bext::Server {
    let mut o = opts();
    o.workers = Some(workers);
    bext::start(config, o).expect("bext starts")
}

fn retry(attempts: u32, on: Vec<ir::RetryOn>, budget_percent: u32) -> Option<ir::Retry> {
    Some(ir::Retry {
        attempts,
        on,
        budget_percent,
        at: common::loc(),
    })
}

/// Smooth weighted round robin, 10,000 requests through the proxy on two cores from four
/// keep-alive clients: each origin's share is within ±1 % of its weight's share (each core
/// is exact on its own requests).
#[test]
fn weighted_round_robin_splits_ten_thousand_requests_by_weight() {
    let origins = [Origin::start("a"), Origin::start("b"), Origin::start("c")];
    let weights = [5u32, 3, 2];
    let servers = origins
        .iter()
        .zip(weights)
        .map(|(o, w)| server(o.addr, w, false))
        .collect();
    let srv = start_with(balanced(servers, |_| {}), 2);
    let to = addr(&srv);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                let mut c = Client::new(to);
                for _ in 0..2_500 {
                    assert_eq!(c.get("/", &[]).status, 200);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let total: u32 = weights.iter().sum();
    for (o, w) in origins.iter().zip(weights) {
        let want = 10_000 * w as usize / total as usize;
        let got = o.hits();
        assert!(
            got.abs_diff(want) <= 100,
            "weight {w}: {got} requests, want {want} ± 100"
        );
    }
    assert_eq!(origins.iter().map(Origin::hits).sum::<usize>(), 10_000);
    srv.shutdown();
}

/// Active HTTP probes: a killed origin is marked down after `unhealthy` failed probes and gets
/// no request afterwards; revived, it is marked up after `healthy` probes and serves again.
#[test]
fn a_killed_origin_leaves_the_rotation_and_returns_when_it_recovers() {
    let a = Origin::start("a");
    let b = Origin::start("b");
    let check = health(
        ir::HealthKind::Http {
            path: "/health".into(),
        },
        2,
        2,
    );
    let srv = start_with(
        balanced(
            vec![server(a.addr, 1, false), server(b.addr, 1, false)],
            |u| u.health = Some(check),
        ),
        1,
    );
    let admin = srv.admin_addr().unwrap();
    let mut c = Client::new(addr(&srv));
    wait_for("both origins probed", || a.probes() > 0 && b.probes() > 0);
    for _ in 0..20 {
        assert_eq!(c.get("/", &[]).status, 200);
    }
    assert!(a.hits() > 0 && b.hits() > 0);

    b.kill();
    wait_for("b marked down in /status", || {
        server_status(admin, b.addr)["up"] == false
    });
    let before = b.hits();
    for _ in 0..50 {
        let r = c.get("/", &[]);
        assert_eq!((r.status, r.text().as_str()), (200, "a"));
    }
    assert_eq!(b.hits(), before, "a down origin got no request");

    b.revive();
    wait_for("b serves again", || {
        c.get("/", &[]);
        b.hits() > before
    });
    // /status follows within a worker tick.
    wait_for("b up in /status", || {
        server_status(admin, b.addr)["up"] == true
    });
    srv.shutdown();
}

/// Passive ejection: after `consecutive_failures` 5xx answers the server is ejected (here for
/// a minute), so on one core it gets exactly that many requests out of 100; `/status` counts
/// the ejection.
#[test]
fn consecutive_5xx_eject_a_server_from_the_core() {
    let a = Origin::start("a");
    let b = Origin::start("b");
    b.set_status(500);
    let srv = start_with(
        balanced(
            vec![server(a.addr, 1, false), server(b.addr, 1, false)],
            |u| {
                u.passive = Some(ir::PassiveHealth {
                    consecutive_failures: 3,
                    base_ejection_ms: 60_000,
                    max_ejection_ms: 120_000,
                    at: common::loc(),
                })
            },
        ),
        1,
    );
    let admin = srv.admin_addr().unwrap();
    let mut c = Client::new(addr(&srv));
    let mut statuses: HashMap<u16, usize> = HashMap::new();
    for _ in 0..100 {
        *statuses.entry(c.get("/", &[]).status).or_default() += 1;
    }
    assert_eq!(b.hits(), 3);
    assert_eq!(a.hits(), 97);
    assert_eq!(statuses, HashMap::from([(200, 97), (500, 3)]));
    wait_for("the ejection in /status", || {
        let s = server_status(admin, b.addr);
        s["ejections"] == 1 && s["ejected_on_workers"] == 1 && s["failures"] == 3
    });
    srv.shutdown();
}

/// An ejection ends after its back-off; the next request is a trial, and a server that
/// answers well again stays in the rotation.
#[test]
fn an_ejected_server_is_probed_back_in_after_its_backoff() {
    let a = Origin::start("a");
    let b = Origin::start("b");
    b.set_status(502);
    let srv = start_with(
        balanced(
            vec![server(a.addr, 1, false), server(b.addr, 1, false)],
            |u| {
                u.passive = Some(ir::PassiveHealth {
                    consecutive_failures: 2,
                    base_ejection_ms: 200,
                    max_ejection_ms: 400,
                    at: common::loc(),
                })
            },
        ),
        1,
    );
    let admin = srv.admin_addr().unwrap();
    let mut c = Client::new(addr(&srv));
    wait_for("b ejected", || {
        c.get("/", &[]);
        server_status(admin, b.addr)["ejections"].as_u64() >= Some(1)
    });
    b.set_status(200);
    let before = b.hits();
    wait_for("b serves again", || {
        c.get("/", &[]).status == 200 && b.hits() > before + 5
    });
    srv.shutdown();
}

/// A request whose body was partly sent upstream is never sent again, whatever the retry
/// policy says and whether the method is idempotent: every origin reads part of the body and
/// resets; exactly one attempt reaches them.
#[test]
fn a_half_sent_body_is_never_retried() {
    for method in ["POST", "PUT"] {
        let attempts = Arc::new(AtomicUsize::new(0));
        let resetting = || {
            let n = attempts.clone();
            common::upstream(move |mut s: TcpStream| {
                let head = common::read_head(&mut s);
                if head.is_empty() {
                    return;
                }
                n.fetch_add(1, Ordering::SeqCst);
                let mut part = [0u8; 1000];
                let _ = s.read_exact(&mut part);
                // Dropped with unread bytes in its buffer: the kernel resets the connection.
            })
        };
        let (u1, u2) = (resetting(), resetting());
        let srv = start_with(
            balanced(vec![server(u1, 1, false), server(u2, 1, false)], |u| {
                u.retry = retry(
                    3,
                    vec![
                        ir::RetryOn::ConnectError,
                        ir::RetryOn::Timeout,
                        ir::RetryOn::Status(502),
                    ],
                    100,
                );
            }),
            1,
        );
        let mut s = connect(addr(&srv));
        s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
        let len = 4 * 1024 * 1024;
        let head = format!("{method} /upload HTTP/1.1\r\nHost: t\r\nContent-Length: {len}\r\n\r\n");
        s.write_all(head.as_bytes()).unwrap();
        let chunk = vec![b'x'; 64 * 1024];
        let mut sent = 0;
        while sent < len {
            if s.write_all(&chunk).is_err() {
                break;
            }
            sent += chunk.len();
        }
        let mut r = BufReader::new(s);
        let mut first = [0u8; 12];
        // The answer is a 502, or the connection closes: either way, one attempt.
        if r.read_exact(&mut first).is_ok() {
            assert_eq!(&first, b"HTTP/1.1 502", "{method}");
        }
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(attempts.load(Ordering::SeqCst), 1, "{method}");
        srv.shutdown();
    }
}

/// Every server fails with a listed status: the retry budget (20 % of recent requests, at
/// least 3) caps the attempts at (1 + 20 %) × requests + 3, while some retries do happen.
#[test]
fn the_retry_budget_caps_amplification_when_every_server_fails() {
    let origins = [Origin::start("a"), Origin::start("b")];
    for o in &origins {
        o.set_status(503);
    }
    let srv = start_with(
        balanced(
            origins.iter().map(|o| server(o.addr, 1, false)).collect(),
            |u| u.retry = retry(3, vec![ir::RetryOn::Status(503)], 20),
        ),
        1,
    );
    let admin = srv.admin_addr().unwrap();
    let mut c = Client::new(addr(&srv));
    let requests = 200;
    for _ in 0..requests {
        assert_eq!(c.get("/", &[]).status, 503);
    }
    let attempts: usize = origins.iter().map(Origin::hits).sum();
    let cap = requests + requests / 5 + 3;
    assert!(
        attempts > requests && attempts <= cap,
        "{attempts} attempts for {requests} requests (cap {cap})"
    );
    wait_for("retries in /status", || {
        let st = status(admin);
        let u = &st["upstreams"][0];
        u["requests"] == requests
            && u["retries"].as_u64() == Some((attempts - requests) as u64)
            && u["budget_exhausted"].as_u64() > Some(0)
    });
    srv.shutdown();
}

/// Retries go to another server than the previous attempt while another is usable: with three
/// failing origins, no request's attempts hit one origin twice in a row.
#[test]
fn retries_never_go_to_the_same_server_twice_in_a_row() {
    let journal = Arc::new(Mutex::new(Vec::new()));
    let origins: Vec<Origin> = ["a", "b", "c"]
        .iter()
        .map(|n| Origin::with_journal(n, journal.clone()))
        .collect();
    for o in &origins {
        o.set_status(503);
    }
    let srv = start_with(
        balanced(
            origins.iter().map(|o| server(o.addr, 1, false)).collect(),
            |u| u.retry = retry(2, vec![ir::RetryOn::Status(503)], 100),
        ),
        1,
    );
    let mut c = Client::new(addr(&srv));
    for _ in 0..50 {
        assert_eq!(c.get("/", &[]).status, 503);
    }
    let journal = journal.lock().unwrap();
    let mut per_request: HashMap<&str, Vec<&str>> = HashMap::new();
    for (rid, origin) in journal.iter() {
        per_request.entry(rid).or_default().push(origin);
    }
    assert_eq!(per_request.len(), 50);
    let retried = per_request.values().filter(|v| v.len() > 1).count();
    assert!(retried > 0, "some requests were retried");
    for (rid, seq) in &per_request {
        assert!(seq.len() <= 3, "{rid}: {seq:?}");
        for w in seq.windows(2) {
            assert_ne!(w[0], w[1], "request {rid} went to {seq:?}");
        }
    }
    srv.shutdown();
}

/// Connect errors are retried on another server: a dead server costs the client nothing.
#[test]
fn connect_errors_are_retried_on_another_server() {
    let a = Origin::start("a");
    let (dead, _held) = common::refusing();
    let srv = start_with(
        balanced(
            vec![server(a.addr, 1, false), server(dead, 1, false)],
            |u| u.retry = retry(1, vec![ir::RetryOn::ConnectError], 100),
        ),
        1,
    );
    let mut c = Client::new(addr(&srv));
    for _ in 0..20 {
        let r = c.get("/", &[]);
        assert_eq!((r.status, r.text().as_str()), (200, "a"));
    }
    srv.shutdown();
}

/// `max_connections 1`: while one request holds the only connection slot, the next is answered
/// 503 with a problem+json body at once, without reaching the upstream.
#[test]
fn an_open_circuit_breaker_answers_503_problem_json() {
    let a = Origin::start("a");
    a.hold(true);
    let srv = start_with(
        balanced(vec![server(a.addr, 1, false)], |u| {
            u.max_connections = Some(1)
        }),
        1,
    );
    let admin = srv.admin_addr().unwrap();
    let to = addr(&srv);
    let first = std::thread::spawn(move || Client::new(to).get("/slow", &[]));
    wait_for("the first request at the origin", || a.hits() == 1);
    // The breaker's state: open on the one worker while the slot is held.
    wait_for("the open breaker in /status", || {
        let b = &status(admin)["upstreams"][0]["breaker"];
        b["open_connections_on_workers"] == 1 && b["active_connections"] == 1
    });
    let r = Client::new(to).get("/second", &[]);
    assert_eq!(r.status, 503);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        body["type"],
        "https://bext.dev/problems/upstream-overloaded"
    );
    assert_eq!(body["status"], 503);
    assert_eq!(a.hits(), 1, "the refused request never reached the origin");
    a.hold(false);
    assert_eq!(first.join().unwrap().status, 200);
    wait_for("breaker_open in /status", || {
        status(admin)["upstreams"][0]["breaker_open"] == 1
    });
    wait_for("the breaker closed again", || {
        let b = &status(admin)["upstreams"][0]["breaker"];
        b["open_connections_on_workers"] == 0 && b["active_connections"] == 0
    });
    srv.shutdown();
}

/// A backup takes traffic only while every primary is down; with all servers down the answer
/// is 503 no-healthy-upstream.
#[test]
fn backups_serve_only_while_the_primaries_are_down() {
    let p1 = Origin::start("p1");
    let p2 = Origin::start("p2");
    let bk = Origin::start("backup");
    let check = health(ir::HealthKind::Tcp, 1, 1);
    let srv = start_with(
        balanced(
            vec![
                server(p1.addr, 1, false),
                server(bk.addr, 1, true),
                server(p2.addr, 1, false),
            ],
            |u| u.health = Some(check),
        ),
        1,
    );
    let admin = srv.admin_addr().unwrap();
    let mut c = Client::new(addr(&srv));
    for _ in 0..30 {
        assert_eq!(c.get("/", &[]).status, 200);
    }
    assert_eq!(bk.hits(), 0);
    assert!(p1.hits() > 0 && p2.hits() > 0);

    p1.kill();
    wait_for("p1 down", || server_status(admin, p1.addr)["up"] == false);
    for _ in 0..30 {
        assert_eq!(c.get("/", &[]).text(), "p2");
    }
    assert_eq!(
        bk.hits(),
        0,
        "one primary is enough to keep the backup idle"
    );

    p2.kill();
    wait_for("p2 down", || server_status(admin, p2.addr)["up"] == false);
    for _ in 0..30 {
        let r = c.get("/", &[]);
        assert_eq!((r.status, r.text().as_str()), (200, "backup"));
    }

    bk.kill();
    wait_for("backup down", || {
        server_status(admin, bk.addr)["up"] == false
    });
    let r = c.get("/", &[]);
    assert_eq!(r.status, 503);
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        body["type"],
        "https://bext.dev/problems/no-healthy-upstream"
    );

    p1.revive();
    wait_for("p1 up", || server_status(admin, p1.addr)["up"] == true);
    bk.revive();
    wait_for("backup up", || server_status(admin, bk.addr)["up"] == true);
    let before = bk.hits();
    for _ in 0..30 {
        assert_eq!(c.get("/", &[]).text(), "p1");
    }
    assert_eq!(bk.hits(), before, "back to the primary");
    srv.shutdown();
}

/// `hash(header X-User)`: every request of a key goes to one server; keys spread over all of
/// them; requests without the header are still served.
#[test]
fn header_hashing_keeps_each_key_on_one_server() {
    let origins = [Origin::start("a"), Origin::start("b"), Origin::start("c")];
    let srv = start_with(
        balanced(
            origins.iter().map(|o| server(o.addr, 1, false)).collect(),
            |u| u.balance = ir::Balance::Hash(ir::HashKey::Header("X-User".into())),
        ),
        2,
    );
    let mut c = Client::new(addr(&srv));
    let mut owner: HashMap<String, String> = HashMap::new();
    for round in 0..5 {
        for k in 0..60 {
            let key = format!("user-{k}");
            let r = c.get("/", &[format!("X-User: {key}")]);
            assert_eq!(r.status, 200);
            let got = r.text();
            let first = owner.entry(key.clone()).or_insert_with(|| got.clone());
            assert_eq!(*first, got, "{key} moved in round {round}");
            // A new connection may land on the other core: the table is the same there.
            if k % 7 == 0 {
                c = Client::new(addr(&srv));
            }
        }
    }
    let mut used: Vec<&String> = owner.values().collect();
    used.sort();
    used.dedup();
    assert_eq!(used.len(), 3, "60 keys use every server");
    assert_eq!(c.get("/", &[]).status, 200);
    srv.shutdown();
}

/// A reload keeps what the probes learnt about servers that remain: a dead server stays out of
/// the rotation across the reload, and a server the reload adds serves.
#[test]
fn health_state_survives_a_reload() {
    let a = Origin::start("a");
    let b = Origin::start("b");
    let c2 = Origin::start("c");
    // A long interval: after the reload no probe could mark b down again before the requests.
    let mut check = health(ir::HealthKind::Tcp, 1, 1);
    let servers = vec![server(a.addr, 1, false), server(b.addr, 1, false)];
    let config = balanced(servers.clone(), |u| u.health = Some(check.clone()));
    let srv = start_with(config, 1);
    let admin = srv.admin_addr().unwrap();
    b.kill();
    wait_for("b down", || server_status(admin, b.addr)["up"] == false);
    check.interval_ms = 60_000;
    let mut more = servers;
    more.push(server(c2.addr, 1, false));
    let next = balanced(more, |u| u.health = Some(check));
    assert_eq!(srv.reload(&next), Ok(2));
    let mut cl = Client::new(addr(&srv));
    for _ in 0..40 {
        let r = cl.get("/", &[]);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_ne!(r.text(), "b");
    }
    assert!(c2.hits() > 0, "the added server serves");
    srv.shutdown();
}

/// Every policy serves through the proxy (the distribution of each is tested in bext-balance).
#[test]
fn every_policy_serves_through_the_proxy() {
    let policies = [
        ir::Balance::RoundRobin,
        ir::Balance::LeastConn,
        ir::Balance::P2c,
        ir::Balance::Random,
        ir::Balance::Hash(ir::HashKey::ClientIp),
        ir::Balance::Hash(ir::HashKey::Cookie("sid".into())),
    ];
    for policy in policies {
        let origins = [Origin::start("a"), Origin::start("b")];
        let srv = start_with(
            balanced(
                origins.iter().map(|o| server(o.addr, 1, false)).collect(),
                |u| u.balance = policy.clone(),
            ),
            1,
        );
        let mut c = Client::new(addr(&srv));
        for i in 0..40 {
            let r = c.get("/", &[format!("Cookie: a=1; sid=s{i}")]);
            assert_eq!(r.status, 200, "{policy:?}");
        }
        let hits: Vec<usize> = origins.iter().map(Origin::hits).collect();
        assert_eq!(hits.iter().sum::<usize>(), 40, "{policy:?}");
        if !matches!(policy, ir::Balance::Hash(ir::HashKey::ClientIp)) {
            // Client-ip hashing sends one client to one server; the others spread.
            assert!(hits.iter().all(|&h| h > 0), "{policy:?}: {hits:?}");
        }
        srv.shutdown();
    }
}

/// `bext check` and `bext run` agree: a file using every upstream directive checks clean, and
/// `bext run` serves it (the balancer, probes and breaker running) until SIGTERM.
#[test]
fn check_and_run_accept_every_upstream_directive() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let a = Origin::start("a");
    let b = Origin::start("b");
    let bk = Origin::start("backup");
    let file = std::env::temp_dir().join(format!("bext-balance-{}.bext", std::process::id()));
    let text = format!(
        "listen 127.0.0.1:0\n\
         upstream app {{\n\
         \x20   server {} weight 2\n\
         \x20   server {}\n\
         \x20   server {} backup\n\
         \x20   balance least_conn\n\
         \x20   health http \"/health\" every 1s timeout 500ms healthy 2 unhealthy 3\n\
         \x20   eject after 5 for 30s max 5m\n\
         \x20   retry 2 on connect_error timeout 502 503 budget 20%\n\
         \x20   max_connections 100\n\
         \x20   max_pending 10\n\
         }}\n\
         site * {{\n\
         \x20   route /* {{ proxy app }}\n\
         }}\n",
        a.addr, b.addr, bk.addr
    );
    std::fs::write(&file, text).unwrap();
    let bin = env!("CARGO_BIN_EXE_bext");
    let check = Command::new(bin)
        .args(["check", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let mut child = Command::new(bin)
        .args(["run", file.to_str().unwrap(), "--workers", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let to: std::net::SocketAddr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| {
            let _ = child.kill();
            let mut err = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            panic!("bext run did not start: {line:?} {err}")
        })
        .parse()
        .unwrap();
    let mut c = Client::new(to);
    for _ in 0..30 {
        assert_eq!(c.get("/", &[]).status, 200);
    }
    assert_eq!(a.hits() + b.hits(), 30);
    assert_eq!(bk.hits(), 0);
    wait_for("probes from bext run", || a.probes() > 0 && b.probes() > 0);
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    assert!(child.wait().unwrap().success());
    let _ = std::fs::remove_file(&file);
}
