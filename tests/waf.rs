//! The WAF stage end to end (on the driver `BEXT_TEST_DRIVER` names): OWASP CRS at paranoia 1
//! imported from `../shared/corpora` on a proxied route, blocking and detection modes, the body
//! inspection window, per-route exclusions, and adversarial requests answered in bounded time.

mod common;
use common::*;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn crs_dir() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    [
        root.join("../shared/corpora/crs-v4/crs-data"),
        PathBuf::from("/work/shared/corpora/crs-v4/crs-data"),
    ]
    .into_iter()
    .find(|p| p.is_dir())
}

/// bext proxying to the built-in origin with `waf crs` on its route.
fn waf_proxy(
    origin: std::net::SocketAddr,
    detect: bool,
    past_limit_block: bool,
    exclude: Vec<u32>,
) -> Option<bext::Server> {
    let Some(dir) = crs_dir() else {
        eprintln!("note: ../shared/corpora is absent; skipping");
        return None;
    };
    let mut c = proxy_to(origin);
    c.wafs.push(bext_ir::Waf {
        name: "crs".into(),
        rulesets: vec![],
        rules: vec![],
        inspect_body_bytes: Some(64 * 1024),
        crs: Some(bext_ir::CrsImport {
            dir: dir.to_string_lossy().into_owned(),
            paranoia: 1,
            inbound_threshold: None,
            outbound_threshold: None,
            exclude: vec![],
            skip_unsupported: true,
            at: loc(),
        }),
        detect_only: detect,
        past_limit_block,
        at: loc(),
    });
    for r in &mut c.sites[0].routes {
        r.waf = Some(bext_ir::NamedRef {
            name: "crs".into(),
            at: loc(),
        });
        r.waf_exclude = exclude.clone();
    }
    Some(start(c))
}

fn get(a: std::net::SocketAddr, target: &str) -> Resp {
    exchange(
        a,
        format!(
            "GET {target} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\nAccept: */*\r\n\r\n"
        )
        .as_bytes(),
    )
    .0
}

fn post(a: std::net::SocketAddr, ctype: &str, body: &[u8]) -> Resp {
    let mut req = format!(
        "POST /submit HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\nAccept: */*\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    exchange(a, &req).0
}

#[test]
fn crs_blocks_sqli_in_a_query_and_a_json_body_and_passes_benign_ones() {
    let o = origin(16);
    let Some(s) = waf_proxy(addr(&o), false, false, vec![]) else {
        return;
    };
    let a = addr(&s);
    assert_eq!(get(a, "/search?q=red+shoes+size+42").status, 200);
    let r = get(a, "/search?q=1%27%20or%20%271%27%3D%271");
    assert_eq!(r.status, 403);
    let t = r.text();
    assert!(t.contains("waf-blocked"), "{t}");
    assert!(
        !t.contains("942100"),
        "rule ids never reach the client: {t}"
    );
    let json = "application/json";
    assert_eq!(
        post(a, json, br#"{"name":"Ann","tags":["a","b"]}"#).status,
        200
    );
    let r = post(a, json, br#"{"q":"1 union select password from users--"}"#);
    assert_eq!(r.status, 403);
    s.shutdown();
    o.shutdown();
}

#[test]
fn detection_mode_lets_attacks_through() {
    let o = origin(16);
    let Some(s) = waf_proxy(addr(&o), true, false, vec![]) else {
        return;
    };
    assert_eq!(get(addr(&s), "/?q=1%27%20or%20%271%27%3D%271").status, 200);
    s.shutdown();
    o.shutdown();
}

#[test]
fn a_route_exclusion_leaves_the_rule_out() {
    let o = origin(16);
    // 942100 is libinjection; with it and the blocking evaluation excluded nothing blocks.
    let Some(s) = waf_proxy(addr(&o), false, false, vec![942100, 949110]) else {
        return;
    };
    assert_eq!(get(addr(&s), "/?q=1%27%20or%20%271%27%3D%271").status, 200);
    s.shutdown();
    o.shutdown();
}

#[test]
fn a_body_past_the_window_passes_or_is_blocked_as_configured() {
    let o = origin(16);
    let mut big = b"a=".to_vec();
    big.resize(200 * 1024, b'a');
    let form = "application/x-www-form-urlencoded";
    if let Some(s) = waf_proxy(addr(&o), false, false, vec![]) {
        assert_eq!(post(addr(&s), form, &big).status, 200);
        s.shutdown();
    }
    if let Some(s) = waf_proxy(addr(&o), false, true, vec![]) {
        assert_eq!(post(addr(&s), form, &big).status, 403);
        assert_eq!(post(addr(&s), form, b"a=small").status, 200);
        s.shutdown();
    }
    o.shutdown();
}

#[test]
fn adversarial_requests_are_answered_in_bounded_time() {
    let o = origin(16);
    let Some(s) = waf_proxy(addr(&o), false, false, vec![]) else {
        return;
    };
    let a = addr(&s);
    let many: String = (0..10_000).map(|i| format!("a{i}=x&")).collect();
    let nested = format!("{}1{}", "[".repeat(500_000), "]".repeat(500_000));
    let mut multipart = Vec::new();
    for i in 0..2_000 {
        multipart.extend_from_slice(
            format!("--b\r\nContent-Disposition: form-data; name=\"f{i}\"\r\n\r\nv\r\n").as_bytes(),
        );
    }
    multipart.extend_from_slice(b"--b--\r\n");
    for (ctype, body) in [
        ("application/x-www-form-urlencoded", many.as_bytes()),
        ("application/json", nested.as_bytes()),
        ("multipart/form-data; boundary=b", &multipart[..]),
    ] {
        let t = Instant::now();
        let r = post(a, ctype, body);
        assert!(matches!(r.status, 200 | 403 | 413), "{ctype}: {}", r.status);
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "{ctype}: {:?}",
            t.elapsed()
        );
    }
    s.shutdown();
    o.shutdown();
}
