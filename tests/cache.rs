//! The response cache over real sockets: `cache { }` on a proxy route in front of a counting
//! origin, one test per behaviour (docs/cache.md). The origin counts the requests that reach
//! it, which is what every assertion about the cache comes down to: served from the cache, or
//! not. No assertion is on a duration; a few tests wait for a response to become stale.

mod common;

use bext_ir as ir;
use common::{connect, read_response, Resp};
use std::io::{BufReader, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An origin answering with `answer(request head, request number)`; it counts requests and
/// keeps their heads. An answer containing `X-Close: 1` closes the connection after it.
struct Origin {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Origin {
    fn start(answer: impl Fn(&str, usize) -> String + Send + Sync + 'static) -> Origin {
        let hits = Arc::new(AtomicUsize::new(0));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let (h, l) = (hits.clone(), heads.clone());
        let addr = common::upstream(move |mut s| {
            while let Some(head) = next_head(&mut s) {
                let n = h.fetch_add(1, Ordering::SeqCst);
                l.lock().unwrap().push(head.clone());
                if let Some(len) = field(&head, "content-length") {
                    let mut body = vec![0; len.parse().unwrap_or(0)];
                    let _ = s.read_exact(&mut body);
                }
                let a = answer(&head, n);
                if s.write_all(a.as_bytes()).is_err() || a.contains("X-Close: 1") {
                    return;
                }
            }
        });
        Origin { addr, hits, heads }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    fn last_head(&self) -> String {
        self.heads
            .lock()
            .unwrap()
            .last()
            .cloned()
            .unwrap_or_default()
    }
}

fn next_head(s: &mut std::net::TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(1) => head.push(b[0]),
            _ => return None,
        }
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// A request field's value in a raw head.
fn field<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// A 200 with `fields` (serialised lines) and `body`.
fn ok(fields: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\n{fields}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn cached(origin: SocketAddr, edit: impl FnOnce(&mut ir::Cache)) -> ir::Config {
    let mut c = bext::proxy_config("127.0.0.1:0", &[origin.to_string()]);
    let mut cache = ir::Cache::with_ttl(0, common::loc());
    edit(&mut cache);
    c.sites[0].routes[0].cache = Some(cache);
    c
}

fn start(origin: &Origin) -> bext::Server {
    common::start(cached(origin.addr, |_| {}))
}

/// A request on a new connection; `extra` are more field lines.
fn send(srv: &bext::Server, method: &str, target: &str, extra: &str) -> Resp {
    let raw = format!("{method} {target} HTTP/1.1\r\nHost: a.test\r\n{extra}\r\n");
    common::exchange(common::addr(srv), raw.as_bytes()).0
}

fn get(srv: &bext::Server, target: &str, extra: &str) -> Resp {
    send(srv, "GET", target, extra)
}

/// Waits (bounded, for a failing test) until `cond` holds.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..200 {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what}: never happened");
}

fn status_of(r: &Resp) -> &str {
    r.header("cache-status").unwrap_or("")
}

#[test]
fn a_stored_response_is_a_hit_with_age_and_cache_status() {
    let o = Origin::start(|_, _| ok("Cache-Control: max-age=100\r\nETag: \"v1\"\r\n", "hello"));
    let srv = start(&o);
    let first = get(&srv, "/a", "");
    assert_eq!((first.status, first.text().as_str()), (200, "hello"));
    assert!(status_of(&first).contains("fwd=uri-miss"), "{first:?}");
    assert!(status_of(&first).contains("stored"), "{first:?}");
    let second = get(&srv, "/a", "");
    assert_eq!((second.status, second.text().as_str()), (200, "hello"));
    assert!(status_of(&second).starts_with("bext; hit"), "{second:?}");
    assert!(second.header("age").is_some(), "{second:?}");
    assert_eq!(second.header("content-length"), Some("5"));
    assert_eq!(o.hits(), 1);
    // HEAD, a range and a matching conditional, all from the stored GET response.
    let head = send(&srv, "HEAD", "/a", "");
    assert_eq!(
        (head.status, head.header("content-length")),
        (200, Some("5"))
    );
    let range = get(&srv, "/a", "Range: bytes=1-3\r\n");
    assert_eq!((range.status, range.text().as_str()), (206, "ell"));
    assert_eq!(range.header("content-range"), Some("bytes 1-3/5"));
    let cond = get(&srv, "/a", "If-None-Match: \"v1\"\r\n");
    assert_eq!(cond.status, 304);
    assert_eq!(o.hits(), 1);
    srv.shutdown();
}

#[test]
fn private_no_store_and_authorization_are_never_served_to_another_client() {
    let o = Origin::start(|head, _| {
        let user = field(head, "authorization").unwrap_or("nobody").to_string();
        let cc = match common_target(head) {
            "/private" => "private, max-age=100",
            "/no-store" => "no-store, max-age=100",
            _ => "max-age=100",
        };
        ok(&format!("Cache-Control: {cc}\r\n"), &user)
    });
    let srv = start(&o);
    for (path, fields) in [
        ("/private", "Authorization: alice\r\n"),
        ("/no-store", "Authorization: alice\r\n"),
        ("/auth", "Authorization: alice\r\n"),
    ] {
        let before = o.hits();
        assert_eq!(get(&srv, path, fields).text(), "alice");
        let other = get(&srv, path, "");
        assert_eq!(other.text(), "nobody", "{path}: {other:?}");
        assert_eq!(o.hits(), before + 2, "{path}");
    }
    srv.shutdown();
}

fn common_target(head: &str) -> &str {
    head.split(' ').nth(1).unwrap_or("")
}

#[test]
fn vary_selects_among_stored_variants() {
    let o = Origin::start(|head, _| {
        let lang = field(head, "accept-language").unwrap_or("none").to_string();
        ok(
            "Cache-Control: max-age=100\r\nVary: Accept-Language\r\n",
            &lang,
        )
    });
    let srv = start(&o);
    assert_eq!(get(&srv, "/v", "Accept-Language: en\r\n").text(), "en");
    assert_eq!(get(&srv, "/v", "Accept-Language: fr\r\n").text(), "fr");
    assert_eq!(get(&srv, "/v", "Accept-Language: en\r\n").text(), "en");
    assert_eq!(get(&srv, "/v", "Accept-Language: fr\r\n").text(), "fr");
    assert_eq!(o.hits(), 2);
    srv.shutdown();
}

#[test]
fn a_stale_response_is_revalidated_and_a_304_refreshes_it() {
    let o = Origin::start(|head, n| {
        if n > 0 && field(head, "if-none-match") == Some("\"v1\"") {
            "HTTP/1.1 304 Not Modified\r\nCache-Control: max-age=100\r\nETag: \"v1\"\r\nX-Refreshed: yes\r\n\r\n".into()
        } else {
            ok("Cache-Control: max-age=0\r\nETag: \"v1\"\r\n", "body")
        }
    });
    let srv = start(&o);
    let first = get(&srv, "/r", "");
    assert_eq!(first.text(), "body", "{first:?}");
    let second = get(&srv, "/r", "");
    assert_eq!((second.status, second.text().as_str()), (200, "body"));
    assert_eq!(field(&o.last_head(), "if-none-match"), Some("\"v1\""));
    assert_eq!(second.header("x-refreshed"), Some("yes"), "{second:?}");
    assert!(status_of(&second).contains("fwd-status=304"), "{second:?}");
    let third = get(&srv, "/r", "");
    assert!(status_of(&third).starts_with("bext; hit"), "{third:?}");
    assert_eq!(o.hits(), 2);
    srv.shutdown();
}

#[test]
fn stale_while_revalidate_serves_stale_and_refreshes_once() {
    let o = Origin::start(|_, n| {
        if n > 0 {
            std::thread::sleep(Duration::from_millis(300));
        }
        ok(
            "Cache-Control: max-age=1, stale-while-revalidate=100\r\n",
            &format!("v{n}"),
        )
    });
    let srv = start(&o);
    assert_eq!(get(&srv, "/s", "").text(), "v0");
    std::thread::sleep(Duration::from_millis(2100));
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let a = common::addr(&srv);
            std::thread::spawn(move || {
                let mut s = connect(a);
                s.write_all(b"GET /s HTTP/1.1\r\nHost: a.test\r\n\r\n")
                    .unwrap();
                read_response(&mut BufReader::new(s), false)
            })
        })
        .collect();
    for c in clients {
        let r = c.join().unwrap();
        assert_eq!(r.status, 200);
        assert!(r.text() == "v0" || r.text() == "v1", "{r:?}");
    }
    wait_until("the refresh is stored", || {
        get(&srv, "/s", "").text() == "v1"
    });
    assert_eq!(o.hits(), 2, "one refresh for the key");
    srv.shutdown();
}

#[test]
fn stale_if_error_serves_the_stored_response_when_the_origin_fails() {
    let o = Origin::start(|_, n| {
        if n == 0 {
            ok("Cache-Control: max-age=1, stale-if-error=100\r\n", "kept")
        } else {
            "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\ndown".into()
        }
    });
    let srv = start(&o);
    assert_eq!(get(&srv, "/e", "").text(), "kept");
    std::thread::sleep(Duration::from_millis(2100));
    let r = get(&srv, "/e", "");
    assert_eq!((r.status, r.text().as_str()), (200, "kept"), "{r:?}");
    assert!(status_of(&r).contains("stale-if-error"), "{r:?}");
    assert_eq!(o.hits(), 2);
    srv.shutdown();
}

/// Disconnected from the origin (it closes without answering), a stale response is served,
/// unless it said `must-revalidate`.
#[test]
fn a_disconnected_origin_gets_stale_served_unless_must_revalidate() {
    let o = Origin::start(|head, n| {
        if n < 2 {
            let cc = if common_target(head) == "/strict" {
                "max-age=1, must-revalidate"
            } else {
                "max-age=1"
            };
            ok(&format!("Cache-Control: {cc}\r\n"), "old")
        } else {
            "X-Close: 1".into()
        }
    });
    let srv = start(&o);
    assert_eq!(get(&srv, "/lax", "").text(), "old");
    assert_eq!(get(&srv, "/strict", "").text(), "old");
    std::thread::sleep(Duration::from_millis(2100));
    let lax = get(&srv, "/lax", "");
    assert_eq!((lax.status, lax.text().as_str()), (200, "old"), "{lax:?}");
    assert!(status_of(&lax).contains("stale-disconnected"), "{lax:?}");
    let strict = get(&srv, "/strict", "");
    assert_eq!(strict.status, 502, "{strict:?}");
    srv.shutdown();
}

#[test]
fn concurrent_misses_on_one_key_send_one_request_upstream() {
    let o = Origin::start(|_, _| {
        std::thread::sleep(Duration::from_millis(500));
        ok("Cache-Control: max-age=100\r\n", "once")
    });
    let srv = start(&o);
    let a = common::addr(&srv);
    let clients: Vec<_> = (0..50)
        .map(|_| {
            std::thread::spawn(move || {
                let mut s = connect(a);
                s.write_all(b"GET /c HTTP/1.1\r\nHost: a.test\r\n\r\n")
                    .unwrap();
                read_response(&mut BufReader::new(s), false)
            })
        })
        .collect();
    for c in clients {
        let r = c.join().unwrap();
        assert_eq!((r.status, r.text().as_str()), (200, "once"), "{r:?}");
    }
    assert_eq!(o.hits(), 1, "one worker: one upstream request");
    srv.shutdown();
}

#[test]
fn purge_by_key_prefix_and_tag_through_the_admin_endpoint() {
    let o = Origin::start(|head, _| {
        let tag = if common_target(head).starts_with("/t/") {
            "Surrogate-Key: red blue\r\n"
        } else {
            ""
        };
        ok(&format!("Cache-Control: max-age=100\r\n{tag}"), "x")
    });
    let mut config = cached(o.addr, |_| {});
    config.global.admin = Some("127.0.0.1:0".into());
    let srv = common::start(config);
    let admin = srv.admin_addr().expect("admin endpoint");
    let purge = |query: &str| -> String {
        let raw = format!(
            "POST /purge?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Bext-Admin: 1\r\nContent-Length: 0\r\n\r\n"
        );
        let (r, _) = common::exchange(admin, raw.as_bytes());
        assert_eq!(r.status, 200, "{}", r.text());
        r.text()
    };
    for p in ["/k", "/p/1", "/p/2", "/t/1"] {
        get(&srv, p, "");
        get(&srv, p, "");
    }
    assert_eq!(o.hits(), 4);
    assert_eq!(purge("key=http://a.test/k"), "{\"purged\":1}\n");
    assert_eq!(
        purge("prefix=http%3A%2F%2Fa.test%2Fp%2F"),
        "{\"purged\":2}\n"
    );
    assert_eq!(purge("tag=blue"), "{\"purged\":1}\n");
    for p in ["/k", "/p/1", "/p/2", "/t/1"] {
        assert!(status_of(&get(&srv, p, "")).contains("fwd=uri-miss"), "{p}");
    }
    assert_eq!(o.hits(), 8);
    srv.shutdown();
}

/// With two workers, each keeps its own copy of a key; a purge through the admin endpoint
/// removes it on every core (the count it answers is over the cores), and each core then
/// fetches it again.
#[test]
fn a_purge_reaches_every_core() {
    let o = Origin::start(|_, _| ok("Cache-Control: max-age=100\r\n", "x"));
    let mut config = cached(o.addr, |_| {});
    config.global.admin = Some("127.0.0.1:0".into());
    let opts = bext::StartOptions {
        workers: Some(2),
        ..common::opts()
    };
    let srv = bext::start(config, opts).expect("bext starts");
    let admin = srv.admin_addr().expect("admin endpoint");
    let a = common::addr(&srv);
    // Kept-alive connections stay on the worker that accepted them; twenty of them reach both
    // workers but for odds of about one in a million.
    let mut conns: Vec<_> = (0..20).map(|_| BufReader::new(connect(a))).collect();
    let fetch_all = |conns: &mut Vec<BufReader<std::net::TcpStream>>| {
        for c in conns.iter_mut() {
            c.get_mut()
                .write_all(b"GET /k HTTP/1.1\r\nHost: a.test\r\n\r\n")
                .unwrap();
            let r = read_response(c, false);
            assert_eq!((r.status, r.text().as_str()), (200, "x"));
        }
    };
    fetch_all(&mut conns);
    let cores_with_it = o.hits();
    assert!((1..=2).contains(&cores_with_it), "{cores_with_it}");
    let raw = "POST /purge?key=http://a.test/k HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Bext-Admin: 1\r\nContent-Length: 0\r\n\r\n";
    let (r, _) = common::exchange(admin, raw.as_bytes());
    assert_eq!(r.text(), format!("{{\"purged\":{cores_with_it}}}\n"));
    fetch_all(&mut conns);
    assert_eq!(
        o.hits(),
        2 * cores_with_it,
        "each core fetched the key again, once"
    );
    srv.shutdown();
}

#[test]
fn a_reload_keeps_the_cache_unless_its_configuration_changed() {
    let o = Origin::start(|_, _| ok("Cache-Control: max-age=100\r\n", "x"));
    let config = cached(o.addr, |_| {});
    let srv = common::start(config.clone());
    get(&srv, "/k", "");
    srv.reload(&config).expect("reload");
    assert!(status_of(&get(&srv, "/k", "")).starts_with("bext; hit"));
    assert_eq!(o.hits(), 1);
    srv.reload(&cached(o.addr, |c| c.ttl_ms = 5_000))
        .expect("reload");
    assert!(status_of(&get(&srv, "/k", "")).contains("fwd=uri-miss"));
    assert_eq!(o.hits(), 2);
    srv.shutdown();
}

#[test]
fn an_unsafe_method_invalidates_the_target() {
    let o = Origin::start(|_, _| ok("Cache-Control: max-age=100\r\n", "x"));
    let srv = start(&o);
    get(&srv, "/u", "");
    get(&srv, "/u", "");
    assert_eq!(o.hits(), 1);
    let post = send(&srv, "POST", "/u", "Content-Length: 2\r\n\r\nhi");
    assert_eq!(post.status, 200);
    assert!(status_of(&get(&srv, "/u", "")).contains("fwd=uri-miss"));
    assert_eq!(o.hits(), 3);
    srv.shutdown();
}

/// An origin that reflects `X-Forwarded-Host` or the absolute-form authority into its body:
/// what the key does not contain never reaches another client.
#[test]
fn unkeyed_reflected_fields_and_absolute_targets_do_not_poison() {
    let o = Origin::start(|head, _| {
        let host = field(head, "x-original-url")
            .or(field(head, "host"))
            .unwrap_or("")
            .to_string();
        ok("Cache-Control: max-age=100\r\n", &host)
    });
    let srv = start(&o);
    let evil = get(&srv, "/p", "X-Original-URL: /evil\r\n");
    assert!(status_of(&evil).contains("fwd=bypass"), "{evil:?}");
    let a = common::addr(&srv);
    let (abs, _) = common::exchange(
        a,
        b"GET http://evil.test/p HTTP/1.1\r\nHost: evil.test\r\n\r\n",
    );
    assert_eq!(abs.status, 200);
    let clean = get(&srv, "/p", "");
    assert_eq!(clean.text(), "a.test", "{clean:?}");
    srv.shutdown();
}

#[test]
fn host_spellings_share_one_object() {
    let o = Origin::start(|_, _| ok("Cache-Control: max-age=100\r\n", "x"));
    let srv = start(&o);
    let a = common::addr(&srv);
    for host in ["a.test", "A.TEST", "a.test.", "a.test:80"] {
        let raw = format!("GET /h HTTP/1.1\r\nHost: {host}\r\n\r\n");
        let (r, _) = common::exchange(a, raw.as_bytes());
        assert_eq!(r.status, 200, "{host}");
    }
    assert_eq!(o.hits(), 1);
    srv.shutdown();
}

#[test]
fn a_get_with_a_body_is_neither_served_nor_stored() {
    let o = Origin::start(|_, n| ok("Cache-Control: max-age=100\r\n", &format!("{n}")));
    let srv = start(&o);
    let fat = get(&srv, "/b", "Content-Length: 4\r\n\r\nevil");
    assert!(status_of(&fat).contains("fwd=bypass"), "{fat:?}");
    assert_eq!(get(&srv, "/b", "").text(), "1");
    assert_eq!(get(&srv, "/b", "").text(), "1");
    assert_eq!(o.hits(), 2);
    srv.shutdown();
}

#[test]
fn vary_star_is_never_stored() {
    let o = Origin::start(|_, _| ok("Cache-Control: max-age=100\r\nVary: Accept, *\r\n", "x"));
    let srv = start(&o);
    get(&srv, "/star", "");
    get(&srv, "/star", "");
    assert_eq!(o.hits(), 2);
    srv.shutdown();
}

/// CPDoS: an error page an attacker's request provoked, even with explicit freshness, is not
/// served to the next client.
#[test]
fn error_pages_from_shaped_requests_are_not_stored() {
    let o = Origin::start(|head, _| {
        if field(head, "x-oversized").is_some() {
            "HTTP/1.1 400 Bad Request\r\nCache-Control: max-age=100\r\nContent-Length: 3\r\n\r\nbad"
                .into()
        } else {
            ok("Cache-Control: max-age=100\r\n", "good")
        }
    });
    let srv = start(&o);
    assert_eq!(get(&srv, "/x", "X-Oversized: aaaa\r\n").status, 400);
    let next = get(&srv, "/x", "");
    assert_eq!((next.status, next.text().as_str()), (200, "good"));
    srv.shutdown();
}

/// Web cache deception: a private page under a static-looking suffix is not stored, whatever
/// `ttl` says for responses without freshness.
#[test]
fn a_private_page_under_a_static_suffix_is_not_stored() {
    let o = Origin::start(|head, _| {
        let user = field(head, "cookie").unwrap_or("none").to_string();
        ok(
            "Cache-Control: private\r\nContent-Type: text/html\r\n",
            &user,
        )
    });
    let srv = common::start(cached(o.addr, |c| c.ttl_ms = 3_600_000));
    assert_eq!(
        get(&srv, "/account/x.css", "Cookie: session=alice\r\n").text(),
        "session=alice"
    );
    assert_eq!(get(&srv, "/account/x.css", "").text(), "none");
    assert_eq!(o.hits(), 2);
    srv.shutdown();
}

#[test]
fn truncated_and_oversized_objects_are_not_committed() {
    let big = "b".repeat(2 << 20);
    let o = Origin::start(move |head, _| {
        if common_target(head) == "/cut" {
            "HTTP/1.1 200 OK\r\nCache-Control: max-age=100\r\nContent-Length: 10\r\nX-Close: 1\r\n\r\nhalf".into()
        } else {
            ok("Cache-Control: max-age=100\r\n", &big)
        }
    });
    let srv = common::start(cached(o.addr, |c| c.max_bytes = 1 << 20));
    let cut = get(&srv, "/cut", "");
    assert!(!cut.complete, "{cut:?}");
    get(&srv, "/cut", "");
    assert_eq!(o.hits(), 2, "a truncated body is not stored");
    let large = get(&srv, "/big", "");
    assert_eq!(large.body.len(), 2 << 20);
    get(&srv, "/big", "");
    assert_eq!(o.hits(), 4, "an object over the bound is not stored");
    srv.shutdown();
}

#[test]
fn configured_key_bypass_and_ignored_query() {
    let o = Origin::start(|head, n| {
        let _ = head;
        ok("Cache-Control: max-age=100\r\n", &format!("{n}"))
    });
    let srv = common::start(cached(o.addr, |c| {
        c.key = vec![ir::CacheRequestPart::Header("X-Device".into())];
        c.bypass = vec![ir::CacheRequestPart::Cookie("session".into())];
        c.ignore_query = vec!["utm_source".into()];
    }));
    assert_eq!(
        get(&srv, "/q?utm_source=a", "X-Device: phone\r\n").text(),
        "0"
    );
    assert_eq!(
        get(&srv, "/q?utm_source=b", "X-Device: phone\r\n").text(),
        "0"
    );
    assert_eq!(get(&srv, "/q", "X-Device: desk\r\n").text(), "1");
    let by = get(&srv, "/q", "X-Device: phone\r\nCookie: a=1; session=x\r\n");
    assert_eq!(by.text(), "2");
    assert!(status_of(&by).contains("fwd=bypass"));
    assert_eq!(o.hits(), 3);
    srv.shutdown();
}

#[test]
fn interim_responses_are_passed_on_and_never_stored() {
    let o = Origin::start(|_, _| {
        let early = "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\nX-Early: 1\r\n\r\n";
        format!("{early}{}", ok("Cache-Control: max-age=100\r\n", "final"))
    });
    let srv = start(&o);
    let mut c = BufReader::new(connect(common::addr(&srv)));
    c.get_mut()
        .write_all(b"GET /i HTTP/1.1\r\nHost: a.test\r\n\r\n")
        .unwrap();
    let early = read_response(&mut c, false);
    assert_eq!(early.status, 103, "{early:?}");
    assert_eq!(early.header("link"), Some("</s.css>; rel=preload"));
    let first = read_response(&mut c, false);
    assert_eq!((first.status, first.text().as_str()), (200, "final"));
    // The hit: no interim response first (the status line read is the 200), and no field of
    // the 103 merged into the stored one.
    c.get_mut()
        .write_all(b"GET /i HTTP/1.1\r\nHost: a.test\r\n\r\n")
        .unwrap();
    let hit = read_response(&mut c, false);
    assert_eq!((hit.status, hit.text().as_str()), (200, "final"), "{hit:?}");
    assert!(status_of(&hit).starts_with("bext; hit"), "{hit:?}");
    assert_eq!(hit.header("x-early"), None, "{hit:?}");
    assert_eq!(o.hits(), 1);
    srv.shutdown();
}

/// A thousand clients miss on one key at once, spread over two workers: each worker sends at
/// most one request upstream (its shard's leader) and every client gets the one response.
#[test]
fn a_thousand_concurrent_misses_send_at_most_one_request_per_worker() {
    const CLIENTS: usize = 1000;
    let release = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
    let gate = release.clone();
    let o = Origin::start(move |_, _| {
        // Hold the answer until every client has sent its request.
        let (m, cv) = &*gate;
        let g = m.lock().unwrap();
        let _g = cv
            .wait_timeout_while(g, Duration::from_secs(20), |open| !*open)
            .unwrap();
        ok("Cache-Control: max-age=100\r\n", "once")
    });
    let opts = bext::StartOptions {
        workers: Some(2),
        ..common::opts()
    };
    let srv = bext::start(cached(o.addr, |_| {}), opts).expect("bext starts");
    let a = common::addr(&srv);
    let mut clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let mut s = connect(a);
            s.write_all(b"GET /many HTTP/1.1\r\nHost: a.test\r\n\r\n")
                .unwrap();
            BufReader::new(s)
        })
        .collect();
    {
        let (m, cv) = &*release;
        *m.lock().unwrap() = true;
        cv.notify_all();
    }
    for c in clients.iter_mut() {
        let r = read_response(c, false);
        assert_eq!((r.status, r.text().as_str()), (200, "once"), "{r:?}");
    }
    assert!(
        o.hits() <= 2,
        "{} upstream requests for 2 workers",
        o.hits()
    );
    srv.shutdown();
}

/// Large bodies are kept where a hit can send them without a copy (`sendfile`): every way a
/// stored 100 KiB body leaves — whole, ranged, as a HEAD, several times on one connection —
/// is byte-exact.
#[test]
fn a_large_stored_body_is_served_byte_exact() {
    let body: String = (0..100 * 1024)
        .map(|i| (b'a' + (i * 7 % 26) as u8) as char)
        .collect();
    let b = body.clone();
    let o = Origin::start(move |_, _| ok("Cache-Control: max-age=100\r\n", &b));
    let srv = start(&o);
    let first = get(&srv, "/big", "");
    assert_eq!(first.text(), body);
    let mut c = BufReader::new(connect(common::addr(&srv)));
    for _ in 0..3 {
        c.get_mut()
            .write_all(b"GET /big HTTP/1.1\r\nHost: a.test\r\n\r\n")
            .unwrap();
        let hit = read_response(&mut c, false);
        assert!(
            status_of(&hit).starts_with("bext; hit"),
            "{:?}",
            hit.headers
        );
        assert_eq!(hit.header("content-length"), Some("102400"));
        assert!(hit.text() == body, "hit body differs");
    }
    let range = get(&srv, "/big", "Range: bytes=50000-50099\r\n");
    assert_eq!(
        (range.status, range.text()),
        (206, body[50000..50100].to_string())
    );
    let head = send(&srv, "HEAD", "/big", "");
    assert_eq!((head.status, head.body.len()), (200, 0));
    assert_eq!(o.hits(), 1);
    srv.shutdown();
}
