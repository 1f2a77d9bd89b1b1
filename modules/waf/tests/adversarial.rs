//! Hostile requests stay bounded: the work counters of a transaction (values laid out,
//! transformations, scans, bytes scanned) grow with the caps, not with the attacker's input.
//! Counts, never timings.

mod common;

use bext_waf::{Config, Stats, Transaction, Waf};

fn run(
    waf: &Waf,
    uri: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> (Stats, bext_waf::Verdict) {
    let mut tx = Transaction::new(waf);
    tx.request_line(
        if body.is_empty() { "GET" } else { "POST" },
        uri,
        "HTTP/1.1",
    );
    tx.header("Host", b"localhost");
    tx.header("User-Agent", b"adversary");
    if let Some(ct) = content_type {
        tx.header("Content-Type", ct.as_bytes());
    }
    tx.end_headers();
    tx.body(body);
    tx.end_body();
    (tx.stats(), tx.verdict())
}

/// Upper bound on per-value work: every value under every chain, scanned by every set.
fn bound(waf: &Waf, s: &Stats) -> (u64, u64) {
    let chains = waf.chain_count() as u64;
    let (_, sets) = waf.regex_counts();
    (s.values * chains, s.values * chains * (sets as u64 + 1))
}

#[test]
fn ten_thousand_args_are_capped() {
    let Some(waf) = common::crs(Config {
        paranoia: 4,
        max_args: 256,
        ..Config::default()
    }) else {
        return;
    };
    let query: Vec<String> = (0..10_000).map(|i| format!("a{i}=v{i}")).collect();
    let (s, _) = run(&waf, &format!("/?{}", query.join("&")), None, b"");
    assert_eq!(s.args_dropped, 10_000 - 256);
    assert!(s.values < 2 * 256 + 64, "{s:?}");
    let (transforms, scans) = bound(&waf, &s);
    assert!(s.transforms <= transforms && s.scans <= scans, "{s:?}");
}

#[test]
fn megabyte_of_nested_json_is_refused_at_the_depth_cap() {
    let Some(waf) = common::crs(Config {
        paranoia: 4,
        body_limit: 2 << 20,
        ..Config::default()
    }) else {
        return;
    };
    let depth = 512 * 1024;
    let body = "[".repeat(depth) + &"]".repeat(depth);
    let (s, _) = run(&waf, "/api", Some("application/json"), body.as_bytes());
    // No argument comes out of it: the parser stops at the depth cap.
    assert!(s.values < 64, "{s:?}");
    let (transforms, scans) = bound(&waf, &s);
    assert!(s.transforms <= transforms && s.scans <= scans, "{s:?}");
}

#[test]
fn body_past_the_window_is_not_inspected() {
    let Some(waf) = common::crs(Config {
        paranoia: 1,
        body_limit: 64 * 1024,
        ..Config::default()
    }) else {
        return;
    };
    let body = vec![b'a'; 1 << 20];
    let (s, _) = run(&waf, "/up", Some("text/plain"), &body);
    assert_eq!(s.body_bytes_uninspected, (1 << 20) - 64 * 1024);
    // Each scan reads at most the window (plus the head's small values).
    assert!(s.bytes_scanned <= s.scans * 64 * 1024, "{s:?}");
}

#[test]
fn pathological_regex_inputs_cost_one_pass_per_chain() {
    let Some(waf) = common::crs(Config {
        paranoia: 4,
        ..Config::default()
    }) else {
        return;
    };
    // Inputs that make backtracking engines explode: long runs, nested openers, near-misses.
    let inputs = [
        "a".repeat(30_000),
        "(".repeat(30_000),
        "<a ".repeat(10_000),
        "'or 1=".repeat(5_000),
        "%".repeat(30_000),
    ];
    for input in inputs {
        let encoded: String = input.bytes().map(|b| format!("%{b:02X}")).collect();
        let (s, _) = run(&waf, &format!("/?q={encoded}"), None, b"");
        let (transforms, scans) = bound(&waf, &s);
        assert!(s.transforms <= transforms && s.scans <= scans, "{s:?}");
        // The scans read each transformed value once per set: linear in the input.
        let len = encoded.len() as u64 * 2;
        assert!(s.bytes_scanned <= scans * len, "{s:?}");
    }
}
