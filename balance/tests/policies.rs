//! Behaviour of the balancing policies, health, ejection, retries and the breaker, as a user
//! of the upstream would see it.

use bext_balance::*;
use bext_ir as ir;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

fn upstream(balance: ir::Balance, servers: &[(u32, bool)]) -> ir::Upstream {
    ir::Upstream {
        name: "app".into(),
        servers: servers
            .iter()
            .enumerate()
            .map(|(i, &(weight, backup))| ir::Server {
                addr: format!("10.0.0.{}:80", i + 1),
                weight,
                backup,
                tls: None,
                at: ir::Loc::default(),
            })
            .collect(),
        balance,
        keepalive: 0,
        health: None,
        passive: None,
        retry: None,
        timeouts: ir::UpstreamTimeouts::default(),
        max_connections: None,
        max_pending: None,
        at: ir::Loc::default(),
    }
}

fn counts(b: &mut Balancer, h: &HealthView, picks: usize) -> Vec<usize> {
    let mut c = vec![0; b.len()];
    for _ in 0..picks {
        let i = b.pick(&PickContext::default(), h, None).unwrap();
        c[i] += 1;
    }
    c
}

#[test]
fn weighted_distribution_over_10000_picks() {
    // (policy, weights, tolerance in picks per server); SWRR is exact, random and P2C are
    // statistical with a fixed seed.
    let cases: &[(ir::Balance, &[u32], usize)] = &[
        (ir::Balance::RoundRobin, &[1, 1, 1, 1], 0),
        (ir::Balance::RoundRobin, &[5, 3, 2], 0),
        (ir::Balance::Random, &[5, 3, 2], 300),
        (ir::Balance::Random, &[1, 1, 1, 1], 300),
        (ir::Balance::P2c, &[1, 1, 1, 1], 300),
        (ir::Balance::LeastConn, &[1, 1, 1, 1], 0),
    ];
    for (policy, weights, tol) in cases {
        let servers: Vec<(u32, bool)> = weights.iter().map(|&w| (w, false)).collect();
        let mut b = Balancer::with_seed(&upstream(policy.clone(), &servers), 42).unwrap();
        let h = HealthView::all_up(servers.len());
        let c = counts(&mut b, &h, 10_000);
        let total: u32 = weights.iter().sum();
        for (i, &w) in weights.iter().enumerate() {
            let want = 10_000 * w as usize / total as usize;
            assert!(
                c[i].abs_diff(want) <= *tol,
                "{policy:?} {weights:?}: got {c:?}"
            );
        }
    }
}

#[test]
fn smooth_weighted_round_robin_interleaves_like_nginx() {
    let mut b = Balancer::new(&upstream(
        ir::Balance::RoundRobin,
        &[(5, false), (1, false), (1, false)],
    ))
    .unwrap();
    let h = HealthView::all_up(3);
    let seq: Vec<usize> = (0..7)
        .map(|_| b.pick(&PickContext::default(), &h, None).unwrap())
        .collect();
    // nginx's documented sequence for weights {5,1,1}: a a b a c a a.
    assert_eq!(seq, vec![0, 0, 1, 0, 2, 0, 0]);
}

#[test]
fn least_conn_prefers_the_idle_server() {
    let mut b = Balancer::new(&upstream(
        ir::Balance::LeastConn,
        &[(1, false), (1, false), (2, false)],
    ))
    .unwrap();
    let h = HealthView::all_up(3);
    b.on_start(0);
    b.on_start(1);
    b.on_start(2);
    b.on_start(2);
    // 0 and 1 have 1/1, 2 has 2/2: all equal; one more on 0 and 1 makes 2 the least loaded.
    b.on_start(0);
    b.on_start(1);
    assert_eq!(b.pick(&PickContext::default(), &h, None), Some(2));
    b.on_finish(0, Duration::from_millis(1), Outcome::Success);
    b.on_finish(0, Duration::from_millis(1), Outcome::Success);
    assert_eq!(b.pick(&PickContext::default(), &h, None), Some(0));
}

/// With feedback (each pick measured: 200 ms on the slow server, 2 ms on the others), P2C
/// keeps the slow server to a trickle, yet never starves it: a losing candidate's estimate
/// decays until it is sampled again, so a server that recovers can win its share back.
#[test]
fn p2c_avoids_the_slow_server_without_starving_it() {
    let mut b = Balancer::with_seed(
        &upstream(ir::Balance::P2c, &[(1, false), (1, false), (1, false)]),
        7,
    )
    .unwrap();
    let h = HealthView::all_up(3);
    let latency = |i: usize| Duration::from_millis(if i == 2 { 200 } else { 2 });
    let mut c = [0usize; 3];
    for _ in 0..10_000 {
        let i = b.pick(&PickContext::default(), &h, None).unwrap();
        b.on_start(i);
        b.on_finish(i, latency(i), Outcome::Success);
        c[i] += 1;
    }
    assert!(c[2] > 0 && c[2] < 100, "{c:?}");
    // Once it is as fast as the others, it gets a fair share again.
    let mut later = [0usize; 3];
    for _ in 0..10_000 {
        let i = b.pick(&PickContext::default(), &h, None).unwrap();
        b.on_start(i);
        b.on_finish(i, Duration::from_millis(2), Outcome::Success);
        later[i] += 1;
    }
    assert!(later[2] > 2_000, "{later:?}");
}

/// A server never measured is tried before measured ones, however fast they look (a new
/// server is not judged on the starting guess), but only one attempt at a time.
#[test]
fn p2c_tries_an_unmeasured_server_first() {
    let mut b =
        Balancer::with_seed(&upstream(ir::Balance::P2c, &[(1, false), (1, false)]), 3).unwrap();
    let h = HealthView::all_up(2);
    for _ in 0..5 {
        b.on_start(0);
        b.on_finish(0, Duration::from_micros(50), Outcome::Success);
    }
    assert_eq!(b.pick(&PickContext::default(), &h, None), Some(1));
    b.on_start(1);
    // In flight, not yet measured: the fast server wins again meanwhile.
    assert_eq!(b.pick(&PickContext::default(), &h, None), Some(0));
}

fn hash_pick(b: &mut Balancer, h: &HealthView, key: u32) -> usize {
    let ip = IpAddr::V4(Ipv4Addr::from(key));
    b.pick(
        &PickContext {
            client_ip: Some(ip),
            ..PickContext::default()
        },
        h,
        None,
    )
    .unwrap()
}

#[test]
fn consistent_hash_moves_about_one_nth_of_keys_when_a_server_is_added() {
    for n in [3usize, 5, 10] {
        let before: Vec<(u32, bool)> = vec![(1, false); n];
        let after: Vec<(u32, bool)> = vec![(1, false); n + 1];
        let mut b1 =
            Balancer::new(&upstream(ir::Balance::Hash(ir::HashKey::ClientIp), &before)).unwrap();
        let mut b2 =
            Balancer::new(&upstream(ir::Balance::Hash(ir::HashKey::ClientIp), &after)).unwrap();
        let (h1, h2) = (HealthView::all_up(n), HealthView::all_up(n + 1));
        let moved = (0..10_000u32)
            .filter(|&k| hash_pick(&mut b1, &h1, k) != hash_pick(&mut b2, &h2, k))
            .count();
        // Bound: at most 1.3 / (N+1) of the keys change server.
        let bound = 13_000 / (n + 1);
        assert!(moved <= bound, "n={n}: moved {moved} > {bound}");
    }
}

#[test]
fn consistent_hash_keeps_keys_of_healthy_servers_when_one_goes_down() {
    let servers = vec![(1, false); 5];
    let mut b = Balancer::new(&upstream(
        ir::Balance::Hash(ir::HashKey::Header("x-user".into())),
        &servers,
    ))
    .unwrap();
    let h = HealthView::all_up(5);
    let key = |k: u32| k.to_string();
    let pick = |b: &mut Balancer, h: &HealthView, k: &str| {
        b.pick(
            &PickContext {
                header: Some(k.as_bytes()),
                ..PickContext::default()
            },
            h,
            None,
        )
        .unwrap()
    };
    let before: Vec<usize> = (0..2_000).map(|k| pick(&mut b, &h, &key(k))).collect();
    h.set(3, false);
    for k in 0..2_000u32 {
        let now = pick(&mut b, &h, &key(k));
        assert_ne!(now, 3);
        if before[k as usize] != 3 {
            assert_eq!(
                now, before[k as usize],
                "key {k} moved off a healthy server"
            );
        }
    }
}

#[test]
fn backups_only_when_every_primary_is_down() {
    for policy in [
        ir::Balance::RoundRobin,
        ir::Balance::LeastConn,
        ir::Balance::P2c,
        ir::Balance::Random,
        ir::Balance::Hash(ir::HashKey::ClientIp),
    ] {
        let mut b = Balancer::new(&upstream(
            policy.clone(),
            &[(1, false), (1, false), (1, true)],
        ))
        .unwrap();
        let h = HealthView::all_up(3);
        for k in 0..1_000 {
            assert_ne!(hash_pick(&mut b, &h, k), 2, "{policy:?}");
        }
        h.set(0, false);
        for k in 0..1_000 {
            assert_eq!(hash_pick(&mut b, &h, k), 1, "{policy:?}");
        }
        h.set(1, false);
        for k in 0..1_000 {
            assert_eq!(hash_pick(&mut b, &h, k), 2, "{policy:?}");
        }
        h.set(2, false);
        assert_eq!(b.pick(&PickContext::default(), &h, None), None);
    }
}

#[test]
fn exclude_never_repeats_a_server_when_another_is_healthy() {
    for policy in [
        ir::Balance::RoundRobin,
        ir::Balance::LeastConn,
        ir::Balance::P2c,
        ir::Balance::Random,
        ir::Balance::Hash(ir::HashKey::ClientIp),
    ] {
        let mut b = Balancer::new(&upstream(
            policy.clone(),
            &[(3, false), (1, false), (1, false)],
        ))
        .unwrap();
        let h = HealthView::all_up(3);
        for k in 0..3_000u32 {
            let first = hash_pick(&mut b, &h, k);
            let ip = IpAddr::V4(Ipv4Addr::from(k));
            let ctx = PickContext {
                client_ip: Some(ip),
                ..PickContext::default()
            };
            let second = b.pick(&ctx, &h, Some(first)).unwrap();
            assert_ne!(first, second, "{policy:?}");
        }
        // Only the excluded server is up: it is used rather than failing the request.
        h.set(1, false);
        h.set(2, false);
        assert_eq!(
            b.pick(&PickContext::default(), &h, Some(0)),
            Some(0),
            "{policy:?}"
        );
    }
}

#[test]
fn killed_server_leaves_after_unhealthy_failures_and_returns_after_healthy_successes() {
    let check = ir::HealthCheck {
        kind: ir::HealthKind::Tcp,
        interval_ms: 1_000,
        timeout_ms: 500,
        healthy: 2,
        unhealthy: 3,
        at: ir::Loc::default(),
    };
    let mut b = Balancer::new(&upstream(
        ir::Balance::RoundRobin,
        &[(1, false), (1, false)],
    ))
    .unwrap();
    let view = HealthView::all_up(2);
    let mut active = ActiveHealth::new(2, &check);
    // (probe ok?, transition expected, server 1 picked in the next 10 picks?)
    let steps: &[(bool, Option<Transition>, bool)] = &[
        (false, None, true),
        (false, None, true),
        (false, Some(Transition::Down), false),
        (false, None, false),
        (true, None, false),
        (true, Some(Transition::Up), true),
    ];
    for (n, &(ok, want, picked)) in steps.iter().enumerate() {
        let t = active.on_probe_result(1, ok);
        assert_eq!(t, want, "step {n}");
        match t {
            Some(Transition::Up) => view.set(1, true),
            Some(Transition::Down) => view.set(1, false),
            _ => {}
        }
        let hit = (0..10).any(|_| b.pick(&PickContext::default(), &view, None) == Some(1));
        assert_eq!(hit, picked, "step {n}");
    }
}

#[test]
fn passive_ejection_backoff_doubles_and_caps() {
    let cfg = ir::PassiveHealth {
        consecutive_failures: 3,
        base_ejection_ms: 1_000,
        max_ejection_ms: 5_000,
        at: ir::Loc::default(),
    };
    let mut b = Balancer::new(&upstream(
        ir::Balance::RoundRobin,
        &[(1, false), (1, false)],
    ))
    .unwrap();
    let view = HealthView::all_up(2);
    let mut e = PassiveEjector::new(2, &cfg);
    let mut now = 0;
    assert_eq!(e.on_result(0, false, now), None);
    assert_eq!(e.on_result(0, false, now), None);
    // Ejection lengths: 1 s, then each failed half-open trial doubles it up to 5 s.
    for want in [1_000u64, 2_000, 4_000, 5_000, 5_000] {
        let t = e.on_result(0, false, now);
        assert_eq!(
            t,
            Some(Transition::Ejected {
                until_ms: now + want
            })
        );
        b.set_ejected(0, true);
        assert!((0..10).all(|_| b.pick(&PickContext::default(), &view, None) == Some(1)));
        assert_eq!(e.next_expired(now + want - 1), None);
        now += want;
        assert_eq!(e.next_expired(now), Some(0));
        b.set_ejected(0, false);
    }
    // A successful trial restores the server and resets the back-off.
    assert_eq!(e.on_result(0, true, now), Some(Transition::Up));
    for _ in 0..2 {
        assert_eq!(e.on_result(0, false, now), None);
    }
    assert_eq!(
        e.on_result(0, false, now),
        Some(Transition::Ejected {
            until_ms: now + 1_000
        })
    );
}

fn retry(attempts: u32, on: &[ir::RetryOn], budget_percent: u32) -> ir::Retry {
    ir::Retry {
        attempts,
        on: on.to_vec(),
        budget_percent,
        at: ir::Loc::default(),
    }
}

#[test]
fn may_retry_table() {
    let p = RetryPolicy::from_ir(&retry(
        2,
        &[ir::RetryOn::ConnectError, ir::RetryOn::Status(503)],
        20,
    ));
    let f = |idempotent, body_bytes_sent, attempt| RequestFacts {
        idempotent,
        body_bytes_sent,
        attempt,
    };
    let cases = [
        (f(true, 0, 1), Failure::ConnectError, true),
        (f(true, 0, 2), Failure::Status(503), true),
        (f(true, 0, 3), Failure::ConnectError, false), // attempts used up
        (f(true, 0, 1), Failure::Timeout, false),      // not listed
        (f(true, 0, 1), Failure::Status(502), false),  // not listed
        (f(false, 0, 1), Failure::ConnectError, true), // POST, nothing sent yet
        (f(false, 1, 1), Failure::ConnectError, false), // POST, half-sent body
        (f(false, 4096, 1), Failure::Status(503), false),
        (f(true, 4096, 1), Failure::Status(503), true), // PUT is idempotent
    ];
    for (req, fail, want) in cases {
        assert_eq!(p.may_retry(&req, fail), want, "{req:?} {fail:?}");
    }
}

#[test]
fn retry_budget_caps_amplification_when_every_server_fails() {
    for percent in [0u32, 10, 20, 50] {
        let policy = RetryPolicy::from_ir(&retry(5, &[ir::RetryOn::ConnectError], percent));
        let mut budget = RetryBudget::new(percent);
        let mut b = Balancer::new(&upstream(ir::Balance::RoundRobin, &[(1, false); 3])).unwrap();
        let h = HealthView::all_up(3);
        let requests = 1_000u64;
        let mut attempts = 0u64;
        // One request per 5 ms over 5 s: the whole run fits in the 10 s window.
        for r in 0..requests {
            let now = r * 5;
            budget.on_request(now);
            let mut last = None;
            let mut attempt = 0;
            loop {
                let s = b.pick(&PickContext::default(), &h, last).unwrap();
                attempts += 1;
                attempt += 1;
                last = Some(s);
                let facts = RequestFacts {
                    idempotent: true,
                    body_bytes_sent: 0,
                    attempt,
                };
                if !(policy.may_retry(&facts, Failure::ConnectError) && budget.try_retry(now)) {
                    break;
                }
            }
        }
        let cap = requests + requests * u64::from(percent) / 100 + 3;
        assert!(attempts <= cap, "{percent}%: {attempts} > {cap}");
        assert!(
            attempts >= requests + requests * u64::from(percent) / 100,
            "budget unused"
        );
    }
}

#[test]
fn retry_budget_lets_a_lone_request_retry() {
    let mut budget = RetryBudget::new(20);
    budget.on_request(0);
    assert!(budget.try_retry(0));
    // After the window slides past, old requests stop counting.
    let mut budget = RetryBudget::with_window(10, 0, 1_000);
    for _ in 0..100 {
        budget.on_request(0);
    }
    assert!(budget.try_retry(0));
    assert!(!budget.try_retry(20_000));
}

#[test]
fn circuit_breaker_opens_at_the_limits_and_closes_when_guards_drop() {
    let cb = CircuitBreaker::new(Some(2), Some(1));
    let a = cb.try_acquire().unwrap();
    let b = cb.try_acquire().unwrap();
    assert_eq!(cb.try_acquire().err(), Some(Open));
    let p = cb.try_acquire_pending().unwrap();
    assert_eq!(cb.try_acquire_pending().err(), Some(Open));
    drop(a);
    assert_eq!(cb.connections(), 1);
    assert!(cb.try_acquire().is_ok());
    drop((b, p));
    assert_eq!((cb.connections(), cb.pending()), (0, 0));
    let unlimited = CircuitBreaker::new(None, None);
    let guards: Vec<_> = (0..1_000)
        .map(|_| unlimited.try_acquire().unwrap())
        .collect();
    assert_eq!(unlimited.connections(), 1_000);
    drop(guards);
}

#[test]
fn invalid_upstreams_are_refused() {
    let cases: &[(&[(u32, bool)], &str)] = &[
        (&[], "upstream app has no servers"),
        (&[(1, true)], "upstream app has only backup servers"),
        (
            &[(1, false), (0, false)],
            "server 10.0.0.2:80 of upstream app has weight 0",
        ),
    ];
    for (servers, msg) in cases {
        let e = Balancer::new(&upstream(ir::Balance::RoundRobin, servers)).unwrap_err();
        assert_eq!(e.to_string(), *msg);
    }
}

#[test]
fn metrics_count_per_server() {
    let mut m = UpstreamMetrics::new(2);
    m.attempt(1);
    m.failure(1);
    m.ejection(1);
    assert_eq!(m.failures, 1);
    assert_eq!(
        m.servers[1],
        ServerMetrics {
            requests: 1,
            failures: 1,
            ejections: 1
        }
    );
}

/// Passive ejection never takes out the last servers: with every up server ejected, picks
/// ignore ejections (backups first, as when primaries are down); active health still wins.
#[test]
fn ejecting_every_server_falls_back_to_all_of_them() {
    let up = upstream(ir::Balance::RoundRobin, &[(1, false), (1, false)]);
    let mut b = Balancer::new(&up).unwrap();
    let view = HealthView::all_up(2);
    let pick = |b: &mut Balancer, v: &HealthView| b.pick(&PickContext::default(), v, None);
    b.set_ejected(0, true);
    assert!((0..4).all(|_| pick(&mut b, &view) == Some(1)));
    b.set_ejected(1, true);
    let picks: Vec<_> = (0..4).map(|_| pick(&mut b, &view)).collect();
    assert!(
        picks.contains(&Some(0)) && picks.contains(&Some(1)),
        "{picks:?}"
    );
    view.set(1, false);
    assert!((0..4).all(|_| pick(&mut b, &view) == Some(0)));
    view.set(0, false);
    assert_eq!(pick(&mut b, &view), None);
    // A usable backup is preferred to ejected primaries.
    let up = upstream(
        ir::Balance::RoundRobin,
        &[(1, false), (1, false), (1, true)],
    );
    let mut b = Balancer::new(&up).unwrap();
    let view = HealthView::all_up(3);
    b.set_ejected(0, true);
    b.set_ejected(1, true);
    assert!((0..4).all(|_| pick(&mut b, &view) == Some(2)));
}
