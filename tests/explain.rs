//! `bext explain` against a running bext: for each request, the route the explanation names
//! is the one whose answer the server sends (through the whole request path: parsing, the
//! path's normal form, the host's port, conditions, 404 and 405); the stages it lists are the
//! ones the compiler puts on the route; `--format json` carries the route's place in the file.
//! (The router's own priority table is checked against the same reasoning in
//! `modules/router/tests/priority.rs`.)

mod common;

use std::io::{BufReader, Write};
use std::process::Command;

/// Every route answers its own name; `/heavy/*` has module stages.
const CONFIG: &str = r#"listen 127.0.0.1:0

site a.test *.b.test {
    route /heavy/* {
        rate_limit 1000/s per client_ip burst 1000
        compress gzip
        respond 200 "heavy"
    }
    route = /x { respond 200 "exact-x" }
    route ~ '^/u/[0-9]+$' { respond 200 "user" }
    route /api/* {
        method GET HEAD
        respond 200 "api-read"
    }
    route /api/* {
        method POST
        header x-v = "1"
        respond 200 "api-write"
    }
    route /* { respond 200 "root-a" }
}

site * {
    route /only/* { respond 200 "only" }
    route /m/* {
        method GET
        respond 200 "m"
    }
}
"#;

/// (request as `bext explain` takes it, extra header, the answer the server gives)
const REQUESTS: &[(&str, Option<&str>, &str)] = &[
    ("GET http://a.test/x", None, "exact-x"),
    ("GET http://a.test:8080/x", None, "exact-x"),
    ("GET http://A.TEST/x/", None, "root-a"),
    ("GET http://a.test/y/../x", None, "exact-x"),
    ("GET http://a.test/u/42", None, "user"),
    ("GET http://a.test/u/4x", None, "root-a"),
    ("GET http://c.b.test/api/z", None, "api-read"),
    ("POST http://a.test/api/z", Some("X-V: 1"), "api-write"),
    ("POST http://a.test/api/z", Some("X-V: 2"), "root-a"),
    ("GET http://a.test/heavy/1", None, "heavy"),
    ("GET http://a.test/api;v=1/z", None, "api-read"),
    ("GET http://other.test/only/1", None, "only"),
    ("GET http://other.test/x", None, "404"),
    ("DELETE http://other.test/only/1", None, "only"),
    ("PUT http://other.test/m/1", None, "405"),
];

fn explain_json(file: &std::path::Path, request: &str, header: Option<&str>) -> serde_json::Value {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bext"));
    c.arg("explain")
        .arg(file)
        .arg(request)
        .args(["--format", "json"]);
    if let Some(h) = header {
        c.args(["-H", h]);
    }
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{request}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn explain_names_the_route_the_server_answers_from() {
    let dir = std::env::temp_dir().join(format!("bext-explain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("site.bext");
    std::fs::write(&file, CONFIG).unwrap();
    let config = bext_dsl::compile_file(&file).unwrap().config;
    let server = common::start(config.clone());
    let to = common::addr(&server);
    let mut conn = BufReader::new(common::connect(to));
    // The body each route answers, by its place in the file.
    let names: std::collections::HashMap<String, String> = config
        .sites
        .iter()
        .flat_map(|s| &s.routes)
        .map(|r| match &r.action {
            bext_ir::Action::Respond { body, .. } => (r.at.to_string(), body.clone()),
            other => panic!("{other:?}"),
        })
        .collect();
    for (request, header, answer) in REQUESTS {
        let e = explain_json(&file, request, *header);
        let explained = match e["route"]["at"].as_str() {
            Some(at) => names[at].clone(),
            None => e["status"].to_string(),
        };
        // The same request, sent to the server.
        let (method, url) = request.split_once(' ').unwrap();
        let rest = url.strip_prefix("http://").unwrap();
        let (host, path) = rest.split_at(rest.find('/').unwrap());
        let extra = header.map_or(String::new(), |h| format!("{h}\r\n"));
        write!(
            conn.get_mut(),
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Content-Length: 0\r\n\r\n"
        )
        .unwrap();
        let resp = common::read_response(&mut conn, false);
        let served = if resp.status == 200 {
            String::from_utf8(resp.body).unwrap()
        } else {
            resp.status.to_string()
        };
        assert_eq!(served, *answer, "the server, on {request}");
        assert_eq!(explained, *answer, "bext explain, on {request}: {e:#}");
    }
    drop(conn);
    server.shutdown();

    // The stages listed are the compiler's, in its order.
    let e = explain_json(&file, "GET http://a.test/heavy/1", None);
    let steps: Vec<(&str, &str)> = e["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["phase"].as_str().unwrap(), s["step"].as_str().unwrap()))
        .collect();
    let phases: Vec<&str> = steps.iter().map(|s| s.0).collect();
    assert_eq!(
        phases,
        [
            "request filters",
            "handler",
            "response head filters",
            "response body filters"
        ]
    );
    assert!(steps[0]
        .1
        .starts_with("rate_limit 1000 per 1s per client_ip"));
    assert!(steps[2].1.starts_with("compress gzip"));
    let pipeline = bext::compile(&config, 1).unwrap();
    let modules = steps
        .iter()
        .filter(|s| s.1.starts_with("rate_limit") || s.1.starts_with("waf"))
        .count()
        + 1; // compression: one stage in both phases
    assert_eq!(pipeline.routes[0].stages().len(), modules);
    let at = &e["route"];
    assert_eq!(
        (at["line"].as_u64(), at["col"].as_u64()),
        (Some(4), Some(5))
    );
    assert!(at["file"].as_str().unwrap().ends_with("site.bext"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn explain_reports_refusals_and_usage_errors() {
    let dir = std::env::temp_dir().join(format!("bext-explain-u-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("site.bext");
    std::fs::write(&file, CONFIG).unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_bext"))
            .arg("explain")
            .arg(&file)
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["GET http://a.test/a%2Fb"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("refused before routing: 400"), "{text}");
    let out = run(&["PUT http://other.test/m/1"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("answer: 405"), "{text}");
    assert!(text.contains("the method is not one of GET"), "{text}");
    assert_eq!(run(&["GET"]).status.code(), Some(2));
    assert_eq!(run(&["GET ftp://x/"]).status.code(), Some(2));
    std::fs::write(&file, "site * { route /x { nonsense } }\n").unwrap();
    assert_eq!(run(&["GET http://a.test/"]).status.code(), Some(1));
    let _ = std::fs::remove_dir_all(&dir);
}
