//! What the origin sees, over real sockets on both drivers: the path bext routes on is the
//! path the origin receives (the table of `docs/conformance.md`, "What the origin sees", read
//! row by row), forwarding fields from clients are believed only from `trusted_proxies`,
//! generated request ids cannot be predicted, and no forwarded value carries CR or LF.

mod common;
use common::*;
use std::io::{BufReader, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

fn driver_opts(driver: bext::DriverChoice) -> bext::StartOptions {
    bext::StartOptions { driver, ..opts() }
}

/// bext from `.bext` source, or `None` where io_uring is not available (asserted to be why).
fn start_src(src: &str, driver: bext::DriverChoice) -> Option<bext::Server> {
    let compiled = match bext_dsl::compile_str("hardening.bext", src) {
        Ok(c) => c,
        Err(f) => panic!("the configuration compiles:\n{}\n{src}", f.render_human()),
    };
    match bext::start(compiled.config, driver_opts(driver)) {
        Ok(s) => Some(s),
        Err(e) => {
            assert!(e.to_string().contains("io_uring is not available"), "{e}");
            None
        }
    }
}

/// An origin that answers every request with its request head as the body, and counts them.
fn echo_origin() -> (SocketAddr, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let a = upstream(move |mut s| loop {
        let head = read_head(&mut s);
        if head.is_empty() {
            return;
        }
        c.fetch_add(1, Ordering::SeqCst);
        let resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{head}",
            head.len()
        );
        if s.write_all(resp.as_bytes()).is_err() {
            return;
        }
    });
    (a, count)
}

/// The configuration of the path table: `setting` placed in the site.
fn table_config(origin: SocketAddr, setting: &str) -> String {
    format!(
        "listen 127.0.0.1:0\nupstream origin {{\n    server {origin}\n}}\nsite * {{\n    {setting}\n    \
         route /admin/* {{\n        respond 403\n    }}\n    route /* {{\n        proxy origin\n    }}\n}}\n"
    )
}

/// The request line the origin received, from an echoed head.
fn request_line(echo: &str) -> &str {
    echo.lines().next().unwrap_or("")
}

/// Every value of field `name` in an echoed head.
fn fields<'a>(echo: &'a str, name: &str) -> Vec<&'a str> {
    echo.lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
        .collect()
}

/// One row of the path table: what is sent, the site setting, the outcome.
struct Row {
    sent: String,
    setting: String,
    outcome: String,
}

/// The rows of the table between `<!-- path-table -->` and `<!-- /path-table -->`.
fn path_table() -> Vec<Row> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/conformance.md"))
        .expect("docs/conformance.md");
    let start = doc.find("<!-- path-table -->").expect("table start") + 19;
    let end = doc.find("<!-- /path-table -->").expect("table end");
    let cell = |c: &str| c.trim().trim_matches('`').to_string();
    let rows: Vec<Row> = doc[start..end]
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let c: Vec<&str> = l.trim().trim_matches('|').split('|').collect();
            assert_eq!(c.len(), 3, "row {l:?}");
            Row {
                sent: cell(c[0]),
                setting: cell(c[1]),
                outcome: cell(c[2]),
            }
        })
        .collect();
    assert!(
        rows.len() >= 30,
        "the table was not read: {} rows",
        rows.len()
    );
    rows
}

/// Item: routing on what the origin will see. Every row of the documented table, sent on a
/// connection of its own: an admin route cannot be bypassed by encoding, dot segments, doubled
/// slashes or path parameters, and the origin receives the path the route was chosen on.
fn routing_sees_what_the_origin_sees(driver: bext::DriverChoice) {
    let (origin, _) = echo_origin();
    let rows = path_table();
    let mut settings: Vec<&str> = rows.iter().map(|r| r.setting.as_str()).collect();
    settings.sort();
    settings.dedup();
    let mut failures = Vec::new();
    for setting in settings {
        let Some(srv) = start_src(&table_config(origin, setting), driver) else {
            return;
        };
        for row in rows.iter().filter(|r| r.setting == setting) {
            let req = format!("GET {} HTTP/1.1\r\nHost: a.example\r\n\r\n", row.sent);
            let (resp, _) = exchange(addr(&srv), req.as_bytes());
            let got = match resp.status {
                200 => {
                    let echo = resp.text();
                    let line = request_line(&echo);
                    line.strip_prefix("GET ")
                        .and_then(|l| l.strip_suffix(" HTTP/1.1"))
                        .unwrap_or(line)
                        .to_string()
                }
                s => s.to_string(),
            };
            if got != row.outcome {
                failures.push(format!(
                    "{} [{}]: expected {}, got {got}",
                    row.sent, row.setting, row.outcome
                ));
            }
        }
        srv.shutdown();
    }
    assert!(failures.is_empty(), "{driver:?}:\n{}", failures.join("\n"));
}

#[test]
fn routing_sees_what_the_origin_sees_on_epoll() {
    routing_sees_what_the_origin_sees(bext::DriverChoice::Epoll);
}

#[test]
fn routing_sees_what_the_origin_sees_on_io_uring() {
    routing_sees_what_the_origin_sees(bext::DriverChoice::IoUring);
}

/// `strip_prefix`, `rewrite` and a redirect's `{path}` work on the normal path.
fn path_edits_see_the_normal_path(driver: bext::DriverChoice) {
    let (origin, _) = echo_origin();
    let src = format!(
        "listen 127.0.0.1:0\nupstream origin {{\n    server {origin}\n}}\nsite * {{\n\
         route /api/* {{\n        strip_prefix /api\n        proxy origin\n    }}\n\
         route /old/* {{\n        rewrite '^/old/(.*)$' \"/new/$1\"\n        proxy origin\n    }}\n\
         route /go/* {{\n        redirect 308 \"https://b.test{{path}}\"\n    }}\n}}\n"
    );
    let Some(srv) = start_src(&src, driver) else {
        return;
    };
    let get = |target: &str| {
        let req = format!("GET {target} HTTP/1.1\r\nHost: a.example\r\n\r\n");
        exchange(addr(&srv), req.as_bytes()).0
    };
    let r = get("/x/../api/%61/./b?q=%2e");
    assert_eq!(request_line(&r.text()), "GET /a/b?q=%2e HTTP/1.1");
    let r = get("//old/./%7Ex");
    assert_eq!(request_line(&r.text()), "GET /new/~x HTTP/1.1");
    let r = get("/go/%2e/x//y");
    assert_eq!(r.status, 308);
    assert_eq!(r.header("location"), Some("https://b.test/go/x/y"));
    srv.shutdown();
}

#[test]
fn path_edits_see_the_normal_path_on_epoll() {
    path_edits_see_the_normal_path(bext::DriverChoice::Epoll);
}

#[test]
fn path_edits_see_the_normal_path_on_io_uring() {
    path_edits_see_the_normal_path(bext::DriverChoice::IoUring);
}

const CLAIMS: &str = "X-Forwarded-For: 192.0.2.1\r\nX-Forwarded-Proto: https\r\n\
                      X-Forwarded-Host: evil.example\r\nX-Forwarded-Port: 443\r\n\
                      X-Real-IP: 192.0.2.9\r\nForwarded: for=192.0.2.9;proto=https\r\n\
                      X-Request-Id: chosen-by-the-client\r\n";

fn proxy_src(origin: SocketAddr, global: &str) -> String {
    format!(
        "{global}listen 127.0.0.1:0\nupstream origin {{\n    server {origin}\n}}\n\
         site * {{\n    route /* {{\n        proxy origin\n    }}\n}}\n"
    )
}

fn is_generated_id(v: &str) -> bool {
    v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Item: client-controlled forwarding fields. From a peer that is not a trusted proxy (the
/// default), the client's claims are dropped and replaced by what bext saw.
fn client_forwarding_fields_are_replaced(driver: bext::DriverChoice) {
    let (origin, _) = echo_origin();
    let Some(srv) = start_src(&proxy_src(origin, ""), driver) else {
        return;
    };
    let req = format!("GET / HTTP/1.1\r\nHost: a.example\r\n{CLAIMS}\r\n");
    let (resp, _) = exchange(addr(&srv), req.as_bytes());
    let echo = resp.text();
    assert_eq!(fields(&echo, "x-forwarded-for"), ["127.0.0.1"], "{echo}");
    assert_eq!(fields(&echo, "x-forwarded-proto"), ["http"], "{echo}");
    assert_eq!(fields(&echo, "x-forwarded-host"), ["a.example"], "{echo}");
    assert_eq!(fields(&echo, "x-real-ip"), ["127.0.0.1"], "{echo}");
    assert!(fields(&echo, "forwarded").is_empty(), "{echo}");
    assert!(fields(&echo, "x-forwarded-port").is_empty(), "{echo}");
    let id = fields(&echo, "x-request-id");
    assert_eq!(id.len(), 1, "{echo}");
    assert!(is_generated_id(id[0]), "the client's id was kept: {echo}");
    srv.shutdown();
}

#[test]
fn client_forwarding_fields_are_replaced_on_epoll() {
    client_forwarding_fields_are_replaced(bext::DriverChoice::Epoll);
}

#[test]
fn client_forwarding_fields_are_replaced_on_io_uring() {
    client_forwarding_fields_are_replaced(bext::DriverChoice::IoUring);
}

/// From a peer in `trusted_proxies` the fields are kept and the peer appended to XFF.
fn trusted_proxy_forwarding_fields_are_kept(driver: bext::DriverChoice) {
    let (origin, _) = echo_origin();
    let global = "global {\n    trusted_proxies 127.0.0.0/8 ::1\n}\n";
    let Some(srv) = start_src(&proxy_src(origin, global), driver) else {
        return;
    };
    let req = format!("GET / HTTP/1.1\r\nHost: a.example\r\n{CLAIMS}\r\n");
    let (resp, _) = exchange(addr(&srv), req.as_bytes());
    let echo = resp.text();
    assert_eq!(
        fields(&echo, "x-forwarded-for"),
        ["192.0.2.1, 127.0.0.1"],
        "{echo}"
    );
    assert_eq!(fields(&echo, "x-forwarded-proto"), ["https"], "{echo}");
    assert_eq!(
        fields(&echo, "x-forwarded-host"),
        ["evil.example"],
        "{echo}"
    );
    assert_eq!(fields(&echo, "x-forwarded-port"), ["443"], "{echo}");
    assert_eq!(fields(&echo, "x-real-ip"), ["192.0.2.9"], "{echo}");
    assert_eq!(
        fields(&echo, "forwarded"),
        ["for=192.0.2.9;proto=https"],
        "{echo}"
    );
    assert_eq!(
        fields(&echo, "x-request-id"),
        ["chosen-by-the-client"],
        "{echo}"
    );
    srv.shutdown();
}

#[test]
fn trusted_proxy_forwarding_fields_are_kept_on_epoll() {
    trusted_proxy_forwarding_fields_are_kept(bext::DriverChoice::Epoll);
}

#[test]
fn trusted_proxy_forwarding_fields_are_kept_on_io_uring() {
    trusted_proxy_forwarding_fields_are_kept(bext::DriverChoice::IoUring);
}

/// Item: guessable request ids. Ids the origin receives for consecutive requests share no
/// pattern: neither half is a small step from the previous id's.
fn generated_request_ids_are_not_sequential(driver: bext::DriverChoice) {
    let (origin, _) = echo_origin();
    let Some(srv) = start_src(&proxy_src(origin, ""), driver) else {
        return;
    };
    let mut s = connect(addr(&srv));
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut ids = Vec::new();
    for _ in 0..16 {
        s.write_all(b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n")
            .unwrap();
        let echo = read_response(&mut r, false).text();
        let id = fields(&echo, "x-request-id")[0].to_string();
        assert!(is_generated_id(&id), "{id}");
        let half = |h: &str| u64::from_str_radix(h, 16).unwrap();
        ids.push((half(&id[..16]), half(&id[16..])));
    }
    for w in ids.windows(2) {
        for (x, y) in [(w[0].0, w[1].0), (w[0].1, w[1].1)] {
            let d = y.wrapping_sub(x);
            // A random pair is this close with probability 2^-31.
            assert!(
                d > 1 << 32 && d.wrapping_neg() > 1 << 32,
                "{x:016x} then {y:016x}"
            );
        }
    }
    srv.shutdown();
}

#[test]
fn generated_request_ids_are_not_sequential_on_epoll() {
    generated_request_ids_are_not_sequential(bext::DriverChoice::Epoll);
}

#[test]
fn generated_request_ids_are_not_sequential_on_io_uring() {
    generated_request_ids_are_not_sequential(bext::DriverChoice::IoUring);
}

/// Item: header values bext forwards never hold CR or LF. The parser refuses every way of
/// putting one in a value (bare CR, bare LF, obs-fold, NUL): 400, and nothing reaches the
/// origin. A percent-encoded CRLF in the path stays encoded.
fn forwarded_header_values_never_carry_cr_or_lf(driver: bext::DriverChoice) {
    let (origin, count) = echo_origin();
    let Some(srv) = start_src(&proxy_src(origin, ""), driver) else {
        return;
    };
    let bad: [&[u8]; 5] = [
        b"GET / HTTP/1.1\r\nHost: a.example\r\nX-A: a\rX-Injected: 1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a.example\r\nX-A: a\nX-Injected: 1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a.example\r\nX-A: a\r\n X-Injected: 1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a.example\r\nX-A: a\0b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a.example\r\nX-A: a\r\n\tb\r\n\r\n",
    ];
    for req in bad {
        let (resp, mut r) = exchange(addr(&srv), req);
        assert_eq!(resp.status, 400, "{}", String::from_utf8_lossy(req));
        assert!(closed(&mut r));
    }
    assert_eq!(
        count.load(Ordering::SeqCst),
        0,
        "a bad head reached the origin"
    );
    let (resp, _) = exchange(
        addr(&srv),
        b"GET /a%0d%0aX-Injected:%20b HTTP/1.1\r\nHost: a.example\r\nX-A: a\x80b\r\n\r\n",
    );
    let echo = resp.text();
    assert_eq!(request_line(&echo), "GET /a%0D%0AX-Injected:%20b HTTP/1.1");
    assert!(fields(&echo, "x-injected").is_empty(), "{echo}");
    assert_eq!(count.load(Ordering::SeqCst), 1);
    srv.shutdown();
}

#[test]
fn forwarded_header_values_never_carry_cr_or_lf_on_epoll() {
    forwarded_header_values_never_carry_cr_or_lf(bext::DriverChoice::Epoll);
}

#[test]
fn forwarded_header_values_never_carry_cr_or_lf_on_io_uring() {
    forwarded_header_values_never_carry_cr_or_lf(bext::DriverChoice::IoUring);
}
