//! Mistakes a newcomer makes in a first `.bext` file — typos, units, unknown names, missing
//! arguments, habits from nginx, broken regexes — each with exactly the diagnostics it must get:
//! code, line, column and a help line a user can act on. No row may get a follow-on
//! diagnostic (a second report of the same mistake), and every row must carry a hint.

use bext_dsl::{compile_str, Diagnostic};

/// (name, source, expected diagnostics: (code, line, column, text the help must contain))
type Case = (
    &'static str,
    &'static str,
    &'static [(&'static str, u32, u32, &'static str)],
);

const CASES: &[Case] = &[
    // ---- regular expressions: the engine's reason, at the place in the pattern
    ("unclosed group in a route regex", "listen :8080\nupstream app { server 127.0.0.1:9000 }\nsite * {\n    route ~ '^/user/(\\d+' { proxy app }\n}\n",
        &[("E0208", 4, 21, "add the missing `)`")]),
    ("unclosed class in a rewrite", "listen :8080\nupstream app { server 127.0.0.1:9000 }\nsite * {\n    route /* {\n        rewrite '^/[a-z' \"/x\"\n        proxy app\n    }\n}\n",
        &[("E0208", 5, 20, "add the missing `]`")]),
    ("a plus with nothing to repeat", "listen :8080\nupstream app { server 127.0.0.1:9000 }\nsite * {\n    route ~ '+v1' { proxy app }\n}\n",
        &[("E0208", 4, 14, "write `\\+`")]),
    ("look-ahead in a regex", "listen :8080\nupstream app { server 127.0.0.1:9000 }\nsite * {\n    route ~ '^/(?!admin)' { proxy app }\n}\n",
        &[("E0208", 4, 16, "no look-around")]),
    // ---- numbers and addresses out of range
    ("port above 65535", "listen :70000\nupstream app { server 127.0.0.1:9000 }\nsite * { route /* { proxy app } }\n",
        &[("E0205", 1, 8, "1 to 65535")]),
    ("negative weight", "listen :8080\nupstream app {\n    server 127.0.0.1:9000 weight -1\n}\nsite * { route /* { proxy app } }\n",
        &[("E0204", 3, 34, "never negative")]),
    ("huge keepalive", "listen :8080\nupstream app {\n    server 127.0.0.1:9000\n    keepalive 99999999999\n}\nsite * { route /* { proxy app } }\n",
        &[("E0204", 4, 15, "largest allowed value is 100000")]),
    ("zero workers", "global { workers 0 }\nlisten :8080\nupstream app { server 127.0.0.1:9000 }\nsite * { route /* { proxy app } }\n",
        &[("E0204", 1, 18, "smallest allowed value is 1")]),
    ("server port out of range", "listen :8080\nupstream app { server 10.0.0.1:80800 }\nsite * { route /* { proxy app } }\n",
        &[("E0205", 2, 23, "1 to 65535")]),
    ("server without a port", "listen :8080\nupstream app { server localhost }\nsite * { route /* { proxy app } }\n",
        &[("E0205", 2, 23, "add a port: `localhost:80`")]),
    // ---- braces
    ("a block left open in the middle of the file", "listen :8080\nupstream app { server 127.0.0.1:9000 }\nsite * {\n    route /api/* {\n        proxy app\n    route /* { respond 404 }\n}\n",
        &[("E0001", 4, 18, "before line 6")]),
    ("a block left open in an upstream", "listen :8080\nupstream app {\n    server 127.0.0.1:9000\n    health http \"/healthz\" every 5s\nsite * {\n    route /* { proxy app }\n}\n",
        &[("E0001", 2, 14, "before line 5")]),
    ("opening brace on a line of its own", "listen :8080\nupstream app { server 127.0.0.1:9000 }\nsite *\n{\n    route /* { proxy app }\n}\n",
        &[("E0001", 4, 1, "move this `{` to the end of the previous line")]),
    // ---- nginx habits
    ("proxy_pass", "listen :8080\nupstream app { server 127.0.0.1:9000 }\nsite * {\n    route /* { proxy_pass http://app; }\n}\n",
        &[("E0101", 4, 16, "`proxy NAME`")]),
    ("location", "listen :8080\nupstream app { server 127.0.0.1:9000 }\nsite * {\n    location /api {\n        proxy app\n    }\n}\n",
        &[("E0101", 4, 5, "route /prefix/*")]),
    ("server_name", "listen :8080\nupstream app { server 127.0.0.1:9000 }\nsite * {\n    server_name example.com;\n    route /* { proxy app }\n}\n",
        &[("E0101", 4, 5, "site example.com")]),
    ("listen with a bare port", "listen 80;\nupstream app { server 127.0.0.1:9000 }\nsite * { route /* { proxy app } }\n",
        &[("E0205", 1, 8, "`:80`")]),
    ("return 301", "listen :8080\nsite * {\n    route /old/* { return 301 https://example.com/new; }\n}\n",
        &[("E0101", 3, 20, "redirect 301")]),
    ("client_max_body_size", "client_max_body_size 10m;\nlisten :8080\nupstream app { server 127.0.0.1:9000 }\nsite * { route /* { proxy app } }\n",
        &[("E0101", 1, 1, "limits { body 10mb }")]),
    ("a whole nginx server block", "server {\n    listen 80;\n    server_name example.com;\n    location / { proxy_pass http://127.0.0.1:9000; }\n}\n",
        &[("E0102", 1, 1, "site HOST")]),
    ("root", "listen :8080\nsite * {\n    route /* { root /var/www; }\n}\n",
        &[("E0101", 3, 16, "static \"/var/www\"")]),
    ("max_fails on a server line", "listen :8080\nupstream app {\n    server 10.0.0.1:80 max_fails=3 fail_timeout=30s;\n}\nsite * { route /* { proxy app } }\n",
        &[("E0105", 3, 24, "eject after 3 for 30s")]),
    ("weight= on a server line", "listen :8080\nupstream app { server 10.0.0.1:80 weight=5 }\nsite * { route /* { proxy app } }\n",
        &[("E0105", 2, 35, "`weight 5`")]),
    ("listen ... ssl", "listen :443 ssl\nupstream app { server 127.0.0.1:9000 }\nsite * { route /* { proxy app } }\n",
        &[("E0105", 1, 13, "tls { cert")]),
    ("proxy to a URL", "listen :8080\nupstream app { server 127.0.0.1:9000 }\nsite * { route /* { proxy http://127.0.0.1:9000 } }\n",
        &[("E0303", 3, 27, "not a URL")]),
    ("listen inside a site", "listen :8080\nupstream app { server 127.0.0.1:9000 }\nsite * {\n    listen :8081\n    route /* { proxy app }\n}\n",
        &[("E0102", 4, 5, "every site is served on every listener")]),
    // ---- typos, and nothing after them
    ("misspelt upstream name", "listen :8080\nupstream app { server 127.0.0.1:9000 }\nupstream api { server 127.0.0.1:9001 }\nsite * {\n    route /api/* { proxy apl }\n    route /* { proxy app }\n}\n",
        &[("E0303", 5, 26, "did you mean `api`?")]),
    ("misspelt proxy", "listen :8080\nupstream app { server 127.0.0.1:9000 }\nsite * { route /* { proxx app } }\n",
        &[("E0101", 3, 21, "did you mean `proxy`?")]),
    ("misspelt listen", "listne :8080\nupstream app { server 127.0.0.1:9000 }\nsite * { route /* { proxy app } }\n",
        &[("E0101", 1, 1, "did you mean `listen`?")]),
    ("misspelt site", "listen :8080\nupstream app { server 127.0.0.1:9000 }\nstie * { route /* { proxy app } }\n",
        &[("E0101", 3, 1, "did you mean `site`?")]),
    ("misspelt balance policy", "listen :8080\nupstream app {\n    server 127.0.0.1:9000\n    balance round-robin\n}\nsite * { route /* { proxy app } }\n",
        &[("E0206", 4, 13, "did you mean `round_robin`?")]),
    ("lower-case method", "listen :8080\nupstream app { server 127.0.0.1:9000 }\nsite * { route /* { method get post; proxy app } }\n",
        &[("E0206", 3, 28, "write `GET`"), ("E0206", 3, 32, "write `POST`")]),
    ("double equals in a header condition", "listen :8080\nupstream app { server 127.0.0.1:9000 }\nsite * { route /* { header x-canary == \"1\"; proxy app } }\n",
        &[("E0206", 3, 37, "did you mean `=`?")]),
    // ---- units
    ("minutes where a size is due", "global { limits { body 10m } }\nlisten :8080\nupstream app { server 127.0.0.1:9000 }\nsite * { route /* { proxy app } }\n",
        &[("E0202", 1, 24, "`10kb`")]),
    ("timeout without a unit", "listen :8080\nupstream app {\n    server 127.0.0.1:9000\n    timeouts { connect 5 }\n}\nsite * { route /* { proxy app } }\n",
        &[("E0203", 4, 24, "`5s`")]),
    ("seconds spelt out", "global { timeouts { idle 60sec } }\nlisten :8080\nupstream app { server 127.0.0.1:9000 }\nsite * { route /* { proxy app } }\n",
        &[("E0203", 1, 26, "`60s`")]),
    ("rate per second spelt out", "listen :8080\nupstream app { server 127.0.0.1:9000 }\nsite * { route /* { rate_limit 100/sec; proxy app } }\n",
        &[("E0215", 3, 32, "`100/s`")]),
    // ---- missing and misplaced arguments
    ("proxy without a name", "listen :8080\nupstream app { server 127.0.0.1:9000 }\nsite * { route /* { proxy } }\n",
        &[("E0104", 3, 26, "`proxy NAME`")]),
    ("upstream name in quotes", "listen :8080\nupstream app { server 127.0.0.1:9000 }\nsite * { route /* { proxy \"app\" } }\n",
        &[("E0201", 3, 27, "without quotes")]),
    ("respond with an unquoted body", "listen :8080\nsite * { route /* { respond 200 ok } }\n",
        &[("E0105", 2, 33, "quoted string")]),
    ("redirect with the status last", "listen :8080\nsite * { route /old { redirect \"https://example.com/\" 301 } }\n",
        &[("E0105", 2, 55, "the status first")]),
    ("site without a block", "listen :8080\nupstream app { server 127.0.0.1:9000 }\nsite example.com\n",
        &[("E0106", 3, 17, "site example.com {")]),
    ("route at the top level", "listen :8080\nupstream app { server 127.0.0.1:9000 }\nroute /* { proxy app }\n",
        &[("E0102", 3, 1, "belongs in a `site` block")]),
    ("route path without a slash", "listen :8080\nupstream app { server 127.0.0.1:9000 }\nsite * { route api/* { proxy app } }\n",
        &[("E0210", 3, 16, "write `/api/*`")]),
    ("host with a port", "listen :8080\nupstream app { server 127.0.0.1:9000 }\nsite example.com:8080 { route /* { proxy app } }\n",
        &[("E0209", 3, 6, "ports belong to `listen`")]),
    ("cache without a ttl", "listen :8080\nupstream app { server 127.0.0.1:9000 }\nsite * { route /* { cache { max 10mb }; proxy app } }\n",
        &[("E0104", 3, 21, "cache { ttl 10m }")]),
    // ---- values that would reach the wire
    ("header value with a line break", "listen :8080\nupstream app { server 127.0.0.1:9000 }\nsite * { route /* { response_header set x-a \"1\\nx-b: 2\"; proxy app } }\n",
        &[("E0230", 3, 47, "response splitting")]),
];

fn run(src: &str) -> Vec<Diagnostic> {
    match compile_str("t.bext", src) {
        Ok(c) => c.warnings,
        Err(f) => f.diagnostics().to_vec(),
    }
}

#[test]
fn the_table_has_at_least_thirty_mistakes() {
    assert!(CASES.len() >= 30, "{} cases", CASES.len());
}

/// Exactly the expected diagnostics, at their places, with their hints: no follow-on ones.
#[test]
fn each_mistake_is_reported_once_with_a_hint() {
    let mut failures = vec![];
    for (name, src, expected) in CASES {
        let got = run(src);
        let places: Vec<(&str, u32, u32)> = got.iter().map(|d| (d.code, d.line, d.col)).collect();
        let want: Vec<(&str, u32, u32)> = expected
            .iter()
            .map(|(c, l, col, _)| (*c, *l, *col))
            .collect();
        if places != want {
            failures.push(format!(
                "{name}:\n  want {want:?}\n  got  {places:?}\n{}",
                got.iter()
                    .map(|d| format!(
                        "  {} {}:{} {} / help: {:?}",
                        d.code, d.line, d.col, d.message, d.help
                    ))
                    .collect::<Vec<_>>()
                    .join("\n")
            ));
            continue;
        }
        for (d, (_, _, _, hint)) in got.iter().zip(expected.iter()) {
            let help = d.help.as_deref().unwrap_or("");
            if !help.contains(hint) {
                failures.push(format!("{name}: help {help:?} does not contain {hint:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every diagnostic of the table carries a non-empty help line; the count is the coverage.
#[test]
fn every_row_carries_a_hint() {
    let mut total = 0;
    let mut with_hint = 0;
    for (name, src, _) in CASES {
        for d in run(src) {
            total += 1;
            if d.help.as_deref().is_some_and(|h| !h.trim().is_empty()) {
                with_hint += 1;
            } else {
                eprintln!("{name}: {} {} has no help", d.code, d.message);
            }
        }
    }
    eprintln!("hints: {with_hint} of {total}");
    assert_eq!(
        with_hint, total,
        "{with_hint} of {total} diagnostics carry a hint"
    );
}

/// Diagnostics come in file order, whatever pass found them.
#[test]
fn diagnostics_come_in_file_order() {
    for (name, src, _) in CASES {
        let got = run(src);
        let mut sorted = got.clone();
        sorted.sort_by_key(|d| (d.line, d.col));
        assert_eq!(got, sorted, "{name}");
    }
}
