//! No directive is parsed and silently ignored: for every directive of every block, a config
//! with it lowers to a different IR than the same config without it. The engine relies on this
//! to refuse, by name, what it does not implement yet.

use bext_dsl::lower::CONTEXTS;

const BASE: &str = "\
global {
    {G}
}
listen :8080{L}
listen :8443 tls { cert b.pem key b.key }
upstream app {
    server 127.0.0.1:9000
    {U}
}
waf w {
    ruleset builtin/xss
    {W}
}
site a.test {
    route /api/* {
        proxy app
        {R}
    }
    {S}
}
";

/// (block, directive, slot, text placed in the slot)
const CASES: &[(&str, &str, &str, &str)] = &[
    ("global", "workers", "G", "workers 3"),
    ("global", "admin", "G", "admin 127.0.0.1:9901"),
    ("global", "pid_file", "G", "pid_file \"/run/bext.pid\""),
    ("global", "metrics", "G", "metrics off"),
    ("global", "tracing", "G", "tracing { }"),
    ("tracing", "sample", "G", "tracing { sample 0.5% }"),
    ("tracing", "parent", "G", "tracing { parent any }"),
    (
        "tracing",
        "otlp",
        "G",
        "tracing { otlp \"http://127.0.0.1:4318/v1/traces\" queue 64 interval 200ms }",
    ),
    ("tracing", "service", "G", "tracing { service edge-eu }"),
    ("global", "access_log", "G", "access_log stderr combined"),
    (
        "global",
        "trusted_proxies",
        "G",
        "trusted_proxies 10.0.0.0/8 ::1",
    ),
    ("global", "limits", "G", "limits { headers 7 }"),
    ("limits", "header_bytes", "G", "limits { header_bytes 1kb }"),
    ("limits", "headers", "G", "limits { headers 7 }"),
    ("limits", "uri_bytes", "G", "limits { uri_bytes 1kb }"),
    ("limits", "body", "G", "limits { body 1kb }"),
    ("limits", "connections", "G", "limits { connections 7 }"),
    (
        "limits",
        "keepalive_requests",
        "G",
        "limits { keepalive_requests 7 }",
    ),
    ("global", "timeouts", "G", "timeouts { idle 1s }"),
    ("global timeouts", "header", "G", "timeouts { header 1s }"),
    ("global timeouts", "body", "G", "timeouts { body 1s }"),
    ("global timeouts", "idle", "G", "timeouts { idle 1s }"),
    ("global timeouts", "drain", "G", "timeouts { drain 1s }"),
    (
        "tls",
        "cert",
        "L",
        " tls { cert \"a.pem\" key \"a.key\" sni a.test }",
    ),
    (
        "tls",
        "alpn",
        "L",
        " tls { cert a.pem key a.key; alpn http/1.1 }",
    ),
    (
        "tls",
        "client_auth",
        "L",
        " tls { cert a.pem key a.key; client_auth { ca c.pem } }",
    ),
    (
        "tls",
        "tickets",
        "L",
        " tls { cert a.pem key a.key; tickets off }",
    ),
    (
        "tls",
        "session_cache",
        "L",
        " tls { cert a.pem key a.key; session_cache 100 }",
    ),
    (
        "client_auth",
        "ca",
        "L",
        " tls { cert a.pem key a.key; client_auth { ca c.pem } }",
    ),
    (
        "client_auth",
        "required",
        "L",
        " tls { cert a.pem key a.key; client_auth { ca c.pem; required } }",
    ),
    (
        "client_auth",
        "optional",
        "L",
        " tls { cert a.pem key a.key; client_auth { ca c.pem; optional } }",
    ),
    (
        "http3",
        "max_streams",
        "L",
        " tls { cert a.pem key a.key } http3 { max_streams 7 }",
    ),
    (
        "http3",
        "stream_window",
        "L",
        " tls { cert a.pem key a.key } http3 { stream_window 64kb }",
    ),
    (
        "http3",
        "connection_window",
        "L",
        " tls { cert a.pem key a.key } http3 { connection_window 64mb }",
    ),
    (
        "http3",
        "idle_timeout",
        "L",
        " tls { cert a.pem key a.key } http3 { idle_timeout 5s }",
    ),
    (
        "http3",
        "early_data",
        "L",
        " tls { cert a.pem key a.key } http3 { early_data on }",
    ),
    (
        "upstream",
        "server",
        "U",
        "server 127.0.0.1:9001 weight 2 backup",
    ),
    (
        "upstream",
        "server",
        "U",
        "server 127.0.0.1:9443 tls sni app.test ca \"ca.pem\"",
    ),
    ("upstream", "balance", "U", "balance hash cookie \"sid\""),
    ("upstream", "keepalive", "U", "keepalive 7"),
    ("upstream", "health", "U", "health tcp every 1s"),
    ("upstream", "eject", "U", "eject after 2"),
    ("upstream", "retry", "U", "retry 1 on timeout"),
    ("upstream timeouts", "tunnel", "U", "timeouts { tunnel 1s }"),
    ("upstream", "timeouts", "U", "timeouts { connect 1s }"),
    (
        "upstream timeouts",
        "connect",
        "U",
        "timeouts { connect 1s }",
    ),
    (
        "upstream timeouts",
        "response",
        "U",
        "timeouts { response 1s }",
    ),
    ("upstream timeouts", "idle", "U", "timeouts { idle 1s }"),
    ("upstream", "max_connections", "U", "max_connections 10"),
    ("upstream", "max_pending", "U", "max_pending 10"),
    ("waf", "ruleset", "W", "ruleset builtin/sqli"),
    ("waf", "rule", "W", "rule r when host = \"x\" => allow"),
    ("waf", "inspect_body", "W", "inspect_body 1kb"),
    ("waf", "body_limit", "W", "body_limit 2kb"),
    (
        "waf",
        "import",
        "W",
        "import crs \"rules\" paranoia 2 exclude 942100",
    ),
    ("waf", "mode", "W", "mode detect"),
    ("waf", "past_limit", "W", "past_limit block"),
    ("site", "route", "S", "route = /x { respond 204 }"),
    ("site", "merge_slashes", "S", "merge_slashes off"),
    ("site", "escaped_slashes", "S", "escaped_slashes keep"),
    ("site", "redirect", "S", "redirect https"),
    ("site", "hsts", "S", "hsts max_age 1d"),
    ("route", "client_cert", "R", "client_cert cn = \"a\""),
    ("route", "method", "R", "method GET"),
    ("route", "header", "R", "header x-a present"),
    ("route", "query", "R", "query a = \"1\""),
    ("route", "strip_prefix", "R", "strip_prefix /api"),
    ("route", "rewrite", "R", "rewrite '^/(.*)$' \"/v1/$1\""),
    (
        "route",
        "request_header",
        "R",
        "request_header add x-a \"1\"",
    ),
    (
        "route",
        "response_header",
        "R",
        "response_header remove server",
    ),
    ("route", "cache", "R", "cache { ttl 1s }"),
    ("cache", "ttl", "R", "cache { ttl 1s }"),
    ("cache", "max", "R", "cache { ttl 1s; max 1kb }"),
    (
        "cache",
        "stale_while_revalidate",
        "R",
        "cache { ttl 1s; stale_while_revalidate 1s }",
    ),
    (
        "cache",
        "key",
        "R",
        "cache { ttl 1s; key header accept-language }",
    ),
    (
        "cache",
        "bypass",
        "R",
        "cache { ttl 1s; bypass cookie session }",
    ),
    (
        "cache",
        "ignore_query",
        "R",
        "cache { ttl 1s; ignore_query utm_source }",
    ),
    (
        "cache",
        "store_errors",
        "R",
        "cache { ttl 1s; store_errors on }",
    ),
    (
        "cache",
        "store_set_cookie",
        "R",
        "cache { ttl 1s; store_set_cookie on }",
    ),
    ("route", "compress", "R", "compress br"),
    ("compress", "level", "R", "compress br { level br 9 }"),
    ("compress", "min_size", "R", "compress br { min_size 1kb }"),
    ("compress", "types", "R", "compress br { types text/html }"),
    ("route", "waf", "R", "waf w"),
    ("route", "rate_limit", "R", "rate_limit 1/s"),
    ("route", "plugin", "R", "plugin \"p.wasm\" { k \"v\" }"),
    ("route", "request_buffering", "R", "request_buffering on"),
];

/// Actions replace `proxy app`: each must produce its own action.
const ACTIONS: &[(&str, &str, &str)] = &[
    ("proxy", "proxy app", "proxy"),
    ("respond", "respond 200 \"x\"", "respond"),
    (
        "redirect",
        "redirect 308 \"https://b.test{path}\"",
        "redirect",
    ),
    ("static", "static \"/srv\"", "static"),
];

fn fill(slot: &str, text: &str) -> String {
    let mut s = BASE.to_string();
    for k in ["G", "L", "U", "W", "R", "S"] {
        let v = if k == slot { text } else { "" };
        s = s.replace(&format!("{{{k}}}"), v);
    }
    s
}

fn compile(src: &str) -> serde_json::Value {
    match bext_dsl::compile_str("t.bext", src) {
        // Compare as JSON without locations: `Loc` equality would hide nothing here, but the
        // JSON also shows what differs when the test fails.
        Ok(c) => {
            let mut v = serde_json::to_value(&c.config).expect("json");
            strip_locs(&mut v);
            v
        }
        Err(f) => panic!("{src}\n{}", f.render_human()),
    }
}

fn strip_locs(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            m.remove("at");
            m.values_mut().for_each(strip_locs);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(strip_locs),
        _ => {}
    }
}

#[test]
fn every_directive_changes_the_ir() {
    let base = compile(&fill("", ""));
    for (ctx, name, slot, text) in CASES {
        let with = compile(&fill(slot, text));
        assert_ne!(with, base, "`{name}` in {ctx} left no trace in the IR");
    }
}

#[test]
fn every_directive_of_every_block_is_in_the_table() {
    // Top-level items are containers, and `include` disappears by design (its file's items
    // take its place); actions are covered by `every_action_lowers_to_itself`.
    for (ctx, names) in CONTEXTS {
        if *ctx == "top level" {
            continue;
        }
        for name in *names {
            let covered = CASES.iter().any(|(c, n, _, _)| c == ctx && n == name)
                || (*ctx == "route" && ACTIONS.iter().any(|(n, _, _)| n == name));
            assert!(covered, "`{name}` in {ctx} has no case");
        }
    }
}

#[test]
fn every_action_lowers_to_itself() {
    for (name, text, variant) in ACTIONS {
        let src = fill("", "").replace("proxy app", text);
        let ir = compile(&src);
        let action = &ir["sites"][0]["routes"][0]["action"];
        assert!(
            action.get(variant).is_some(),
            "`{name}` lowered to {action}"
        );
    }
}
