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

/// `GET PATH` on the admin endpoint: the body.
fn admin_get(admin: std::net::SocketAddr, path: &str) -> String {
    let r = get(admin, path);
    assert_eq!(r.status, 200, "{path}");
    r.text()
}

/// A native rule denying requests whose path starts with `prefix`.
fn deny_prefix(prefix: &str) -> bext_ir::WafRule {
    bext_ir::WafRule {
        name: format!("deny {prefix}"),
        when: bext_ir::Condition::Match {
            subject: bext_ir::Subject::Path,
            op: bext_ir::MatchOp::Prefix(prefix.into()),
        },
        action: bext_ir::WafAction::Deny { status: 403 },
        at: loc(),
    }
}

fn native_waf(name: &str, rules: Vec<bext_ir::WafRule>, detect: bool) -> bext_ir::Waf {
    bext_ir::Waf {
        name: name.into(),
        rulesets: vec![],
        rules,
        inspect_body_bytes: None,
        crs: None,
        detect_only: detect,
        past_limit_block: false,
        at: loc(),
    }
}

/// Native rules only (ids from 9000001 per block, used by no other test of this file), so
/// the per-rule figures, which are per process, are this test's alone: 3 requests refused by
/// 9000001 on `/guarded/`, 2 that detection mode would have refused by 9000002 on
/// `/watched/`, in `/status` (`waf`) and in `/metrics` (`bext_waf_rule_matches_total`,
/// accepted by `promtool check metrics`).
#[test]
fn blocks_are_counted_per_rule_in_status_and_metrics() {
    let mut c = site(vec![
        route(
            bext_ir::PathMatch::Prefix("/guarded/".into()),
            respond(200, "ok"),
        ),
        route(
            bext_ir::PathMatch::Prefix("/watched/".into()),
            respond(200, "ok"),
        ),
    ]);
    c.global.admin = Some("127.0.0.1:0".into());
    c.wafs
        .push(native_waf("guard", vec![deny_prefix("/guarded/")], false));
    // The first rule never fires: the one that does is 9000002 in this block.
    c.wafs.push(native_waf(
        "watch",
        vec![deny_prefix("/nowhere/"), deny_prefix("/watched/")],
        true,
    ));
    for (r, w) in c.sites[0].routes.iter_mut().zip(["guard", "watch"]) {
        r.waf = Some(bext_ir::NamedRef {
            name: w.into(),
            at: loc(),
        });
    }
    let s = start(c);
    let (a, admin) = (addr(&s), s.admin_addr().expect("admin endpoint"));
    for i in 0..3 {
        assert_eq!(get(a, &format!("/guarded/{i}")).status, 403);
    }
    for i in 0..2 {
        assert_eq!(get(a, &format!("/watched/{i}")).status, 200);
    }
    // Each core publishes on its 100 ms tick.
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let st = admin_get(admin, "/status");
        if st.contains(r#""9000002":2"#) && st.contains(r#""blocked":3"#) {
            break st;
        }
        assert!(Instant::now() < deadline, "counts never showed: {st}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let v: serde_json::Value = serde_json::from_str(&status).expect("/status is JSON");
    let waf = &v["waf"];
    assert_eq!(waf["blocked"], 3, "{status}");
    assert!(waf["would_block"].as_u64() >= Some(2), "{status}");
    assert_eq!(waf["rules"]["9000001"], 3, "{status}");
    assert_eq!(waf["rules"]["9000002"], 2, "{status}");
    let metrics = admin_get(admin, "/metrics");
    for line in [
        "bext_waf_blocked_total 3",
        r#"bext_waf_rule_matches_total{rule="9000001"} 3"#,
        r#"bext_waf_rule_matches_total{rule="9000002"} 2"#,
        "# TYPE bext_waf_rule_matches_total counter",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line}:\n{metrics}");
    }
    promtool(&metrics);
    s.shutdown();
}

/// `promtool check metrics` on `body`, when promtool is installed (`tests/metrics.rs`
/// requires it; here the exposition's other checks stand without it).
fn promtool(body: &str) {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        eprintln!("note: promtool is absent; exposition not checked by it");
        return;
    };
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(body.as_bytes()).expect("promtool reads");
    }
    let out = child.wait_with_output().expect("promtool runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool: {said}\n--- exposition:\n{body}"
    );
}
