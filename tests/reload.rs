//! Hot reload as an operator sees it: `bext run FILE` with an admin endpoint, reloaded through
//! `POST /reload`, `bext reload` and SIGHUP while clients keep talking to it. Nothing here
//! measures time: every wait is for an event (a response, a status line), bounded only so that a
//! broken build fails instead of hanging.

mod common;
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A `bext run FILE` child process, killed when dropped.
struct Bext {
    child: Child,
    addr: SocketAddr,
    admin: SocketAddr,
    file: PathBuf,
}

impl Drop for Bext {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.file);
    }
}

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("bext-reload-{}-{name}", std::process::id()))
}

/// A configuration answering `/r` with `body`; `/ws` goes to `ws_origin` when given.
fn config(body: &str, ws_origin: Option<SocketAddr>) -> String {
    let mut c =
        String::from("global {\n    admin 127.0.0.1:0\n    workers 2\n}\nlisten 127.0.0.1:0\n");
    if let Some(o) = ws_origin {
        c.push_str(&format!("upstream ws {{\n    server {o}\n}}\n"));
    }
    c.push_str("site * {\n");
    if ws_origin.is_some() {
        c.push_str("    route /ws { proxy ws }\n");
    }
    c.push_str(&format!("    route /* {{ respond 200 \"{body}\" }}\n}}\n"));
    c
}

fn start_bext(name: &str, text: &str) -> Bext {
    start_bext_on(name, text, driver_arg())
}

fn start_bext_on(name: &str, text: &str, driver: &str) -> Bext {
    let file = temp_path(name);
    std::fs::write(&file, text).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_bext"))
        .arg("run")
        .arg(&file)
        .args(["--no-pin", "--driver", driver])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn bext");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = |prefix: &str| -> SocketAddr {
        let mut l = String::new();
        out.read_line(&mut l).unwrap();
        l.trim()
            .strip_prefix(prefix)
            .unwrap_or_else(|| panic!("expected {prefix:?}, got {l:?}"))
            .parse()
            .unwrap()
    };
    let addr = line("listening on ");
    let admin = line("admin on ");
    Bext {
        child,
        addr,
        admin,
        file,
    }
}

/// One request to the admin endpoint: (status, body).
fn admin(a: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let mut s = connect(a);
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nX-Bext-Admin: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let resp = read_response(&mut r, false);
    (resp.status, resp.text())
}

/// Write `text` to the served file and reload it; the new generation.
fn reload(b: &Bext, text: &str) -> Result<u64, String> {
    std::fs::write(&b.file, text).unwrap();
    match admin(b.admin, "POST", "/reload") {
        (200, body) => {
            let v: serde_json::Value =
                serde_json::from_str(&body).unwrap_or_else(|_| panic!("answer {body:?}"));
            Ok(v["generation"]
                .as_u64()
                .unwrap_or_else(|| panic!("answer {body:?}")))
        }
        (422, body) => Err(body),
        (s, body) => panic!("unexpected {s}: {body}"),
    }
}

fn get(a: SocketAddr) -> String {
    let (resp, _) = exchange(a, b"GET /r HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(resp.status, 200);
    resp.text()
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The `live_generations` list of `GET /status`.
fn live_generations(a: SocketAddr) -> Vec<u64> {
    let (status, body) = admin(a, "GET", "/status");
    assert_eq!(status, 200);
    let list = body
        .split_once("\"live_generations\":[")
        .and_then(|(_, r)| r.split_once(']'))
        .unwrap_or_else(|| panic!("status {body}"))
        .0;
    list.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect()
}

/// How a load client talks to bext.
#[derive(Clone, Copy, Debug)]
enum Client {
    KeepAliveGet,
    NewConnectionGet,
    KeepAlivePost,
    NewConnectionChunkedPost,
}

impl Client {
    fn request(self) -> Vec<u8> {
        match self {
            Client::KeepAliveGet | Client::NewConnectionGet => {
                b"GET /r HTTP/1.1\r\nHost: h\r\n\r\n".to_vec()
            }
            Client::KeepAlivePost => {
                let mut r = b"POST /r HTTP/1.1\r\nHost: h\r\nContent-Length: 3000\r\n\r\n".to_vec();
                r.extend(std::iter::repeat_n(b'p', 3000));
                r
            }
            Client::NewConnectionChunkedPost => {
                b"POST /r HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
                    .to_vec()
            }
        }
    }

    fn keep_alive(self) -> bool {
        matches!(self, Client::KeepAliveGet | Client::KeepAlivePost)
    }
}

/// New connections a client opens per reload at most: each one leaves a TIME-WAIT socket on
/// the loopback interface, and an unpaced client would run out of ephemeral ports.
const NEW_CONNECTIONS_PER_RELOAD: usize = 10;

/// Send requests until `stop`; return the bodies seen (every response must be a complete 200).
fn load(
    a: SocketAddr,
    kind: Client,
    stop: Arc<AtomicBool>,
    reloads: Arc<AtomicUsize>,
) -> Vec<String> {
    let req = kind.request();
    let mut seen = Vec::new();
    let mut conn: Option<BufReader<TcpStream>> = None;
    let (mut epoch, mut opened) = (reloads.load(Ordering::Relaxed), 0);
    while !stop.load(Ordering::Relaxed) {
        if conn.is_none() {
            if opened == NEW_CONNECTIONS_PER_RELOAD {
                // Wait for the next reload (or the end) before opening more.
                let now = reloads.load(Ordering::Relaxed);
                if now == epoch {
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                }
                (epoch, opened) = (now, 0);
            }
            opened += 1;
        }
        let r = conn.get_or_insert_with(|| BufReader::new(connect(a)));
        r.get_mut().write_all(&req).expect("send");
        let resp = read_response(r, false);
        assert_eq!(resp.status, 200, "{kind:?}: {resp:?}");
        assert!(resp.complete, "{kind:?}: incomplete response");
        assert_ne!(
            resp.header("connection"),
            Some("close"),
            "{kind:?}: bext closed a keep-alive connection"
        );
        seen.push(resp.text());
        if !kind.keep_alive() {
            conn = None;
        }
    }
    seen
}

#[test]
fn two_hundred_reloads_under_load_drop_nothing_and_never_mix_configs() {
    reloads_under_load("epoll");
}

#[test]
fn two_hundred_reloads_under_load_on_io_uring() {
    let probe = bext::start(
        bext::respond_config("127.0.0.1:0", 200, "x"),
        bext::StartOptions {
            driver: bext::DriverChoice::IoUring,
            workers: Some(1),
            pin: false,
        },
    );
    match probe {
        Ok(s) => s.shutdown(),
        Err(e) => {
            // Where the kernel or sandbox forbids io_uring, starting fails with this error.
            assert!(e.to_string().contains("io_uring is not available"), "{e}");
            return;
        }
    }
    reloads_under_load("io-uring");
}

fn reloads_under_load(driver: &str) {
    // Keep-alive clients here make thousands of requests on one connection: lift
    // `keepalive_requests`, so that any `Connection: close` is one a reload caused.
    let unlimited = |c: String| {
        c.replacen(
            "global {\n",
            "global {\n    limits { keepalive_requests 1000000000 }\n",
            1,
        )
    };
    let (a, b) = (
        unlimited(config("from-config-a", None)),
        unlimited(config("from-config-b", None)),
    );
    let srv = start_bext_on(&format!("load-{driver}.bext"), &a, driver);
    let stop = Arc::new(AtomicBool::new(false));
    let reloads = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = [
        Client::KeepAliveGet,
        Client::KeepAliveGet,
        Client::NewConnectionGet,
        Client::KeepAlivePost,
        Client::NewConnectionChunkedPost,
    ]
    .into_iter()
    .map(|kind| {
        let (stop, reloads) = (stop.clone(), reloads.clone());
        let addr = srv.addr;
        std::thread::spawn(move || load(addr, kind, stop, reloads))
    })
    .collect();
    let mut last = 1;
    for i in 0..200 {
        let (text, want) = if i % 2 == 0 {
            (&b, "from-config-b")
        } else {
            (&a, "from-config-a")
        };
        let g = reload(&srv, text).expect("reload");
        reloads.fetch_add(1, Ordering::Relaxed);
        assert_eq!(g, last + 1, "generations count up by one");
        last = g;
        // The answer comes once every core runs the new generation: a new request sees it.
        assert_eq!(get(srv.addr), want, "after reload {i}");
    }
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    let mut bodies = std::collections::BTreeSet::new();
    for c in clients {
        let seen = c.join().expect("a load client saw a failure");
        assert!(!seen.is_empty());
        total += seen.len();
        bodies.extend(seen);
    }
    eprintln!("{driver}: {total} requests during 200 reloads");
    assert!(total > 200, "{total} requests");
    let allowed: std::collections::BTreeSet<String> = ["from-config-a", "from-config-b"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert!(bodies.is_subset(&allowed), "{bodies:?}");
}

#[test]
fn a_broken_or_unappliable_config_keeps_the_old_one_serving() {
    let good = config("still-good", None);
    let srv = start_bext("broken.bext", &good);
    // A port held by a socket without SO_REUSEPORT cannot be bound by bext.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listener_added = good.replace(
        "listen 127.0.0.1:0\n",
        &format!(
            "listen 127.0.0.1:0\nlisten {}\n",
            taken.local_addr().unwrap()
        ),
    );
    // (configuration, what the diagnostic says)
    let table: Vec<(String, &str)> = vec![
        (
            good.replace("respond 200 \"still-good\" }", "respond 200 \"x\""),
            "error[E",
        ),
        (
            good.replace(
                "{ respond 200",
                "{\n        plugin \"p.wasm\"\n        respond 200",
            ),
            // A plugin whose module cannot be read fails the reload.
            "cannot read plugin",
        ),
        (listener_added, "cannot listen on"),
        (
            good.replace("workers 2", "workers 3"),
            "cannot change `workers`",
        ),
        (
            good.replace("respond 200 \"still-good\"", "proxy nowhere"),
            "nowhere",
        ),
    ];
    for (text, says) in &table {
        let err = reload(&srv, text).expect_err("the reload must fail");
        assert!(err.contains(says), "{says:?} not in {err}");
        assert!(err.trim_end().len() > says.len());
        assert_eq!(get(srv.addr), "still-good");
    }
    // `bext reload --admin`: exit 1 and the diagnostics, then exit 0 and the generation.
    std::fs::write(&srv.file, &table[0].0).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_bext"))
        .args(["reload", "--admin", &srv.admin.to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error[E") && stderr.contains("broken.bext"),
        "{stderr}"
    );
    std::fs::write(&srv.file, config("good-again", None)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_bext"))
        .args(["reload", "--admin", &srv.admin.to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    // The generation, then what the reload changed for routing: the catch-all answers
    // another body, and every request still goes to it.
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "reloaded: generation 2\nroute changed: * /*\n0 of 1 sampled requests change destination\n"
    );
    assert_eq!(get(srv.addr), "good-again");
}

#[test]
fn listeners_added_and_removed_by_reloads_leave_the_others_alone() {
    let base = config("served", None);
    let srv = start_bext("listeners.bext", &base);
    let (free, _reserved) = common::reserved();
    let with_extra = base.replace(
        "listen 127.0.0.1:0\n",
        &format!("listen 127.0.0.1:0\nlisten {free}\n"),
    );
    let mut kept = BufReader::new(connect(srv.addr));
    let ask = |r: &mut BufReader<TcpStream>| {
        r.get_mut()
            .write_all(b"GET /r HTTP/1.1\r\nHost: h\r\n\r\n")
            .unwrap();
        read_response(r, false).text()
    };
    assert_eq!(ask(&mut kept), "served");
    assert_eq!(reload(&srv, &with_extra), Ok(2));
    assert_eq!(get(free), "served");
    let mut on_extra = BufReader::new(connect(free));
    assert_eq!(ask(&mut on_extra), "served");
    let (_, status) = admin(srv.admin, "GET", "/status");
    assert!(status.contains(&format!("\"{free}\"")), "{status}");
    assert_eq!(ask(&mut kept), "served");
    // Removed: the port stops accepting; connections it accepted and the other listener go on.
    assert_eq!(reload(&srv, &base), Ok(3));
    assert!(TcpStream::connect(free).is_err());
    assert_eq!(ask(&mut on_extra), "served");
    assert_eq!(ask(&mut kept), "served");
    assert_eq!(get(srv.addr), "served");
}

#[test]
fn upstream_connections_are_kept_across_reloads() {
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    let origin = upstream(move |mut s: TcpStream| {
        count.fetch_add(1, Ordering::SeqCst);
        while !read_head(&mut s).is_empty() {
            if s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\norigin")
                .is_err()
            {
                break;
            }
        }
    });
    let proxied = |tag: &str| {
        format!(
            "global {{\n    admin 127.0.0.1:0\n    workers 2\n}}\nlisten 127.0.0.1:0\nupstream app {{\n    server {origin}\n}}\nsite * {{\n    route /* {{\n        response_header set x-config \"{tag}\"\n        proxy app\n    }}\n}}\n"
        )
    };
    let srv = start_bext("pool.bext", &proxied("a"));
    let mut client = BufReader::new(connect(srv.addr));
    for i in 0..20 {
        let tag = if i % 2 == 0 { "a" } else { "b" };
        client
            .get_mut()
            .write_all(b"GET /p HTTP/1.1\r\nHost: h\r\n\r\n")
            .unwrap();
        let resp = read_response(&mut client, false);
        assert_eq!(
            (resp.status, resp.text().as_str(), resp.header("x-config")),
            (200, "origin", Some(tag))
        );
        reload(&srv, &proxied(if i % 2 == 0 { "b" } else { "a" })).expect("reload");
    }
    // One client connection on one core: its pooled upstream connection served every
    // generation.
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[test]
fn a_request_in_flight_finishes_on_its_generation_and_status_shows_it_draining() {
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let release_rx = std::sync::Mutex::new(release_rx);
    let (arrived_tx, arrived_rx) = std::sync::mpsc::channel::<()>();
    let arrived_tx = std::sync::Mutex::new(arrived_tx);
    let origin = upstream(move |mut s: TcpStream| {
        if read_head(&mut s).is_empty() {
            return;
        }
        let _ = arrived_tx.lock().unwrap().send(());
        let _ = release_rx.lock().unwrap().recv();
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow");
    });
    let proxied = |tag: &str| {
        format!(
            "global {{\n    admin 127.0.0.1:0\n    workers 2\n}}\nlisten 127.0.0.1:0\nupstream slow {{\n    server {origin}\n}}\nsite * {{\n    route /slow {{\n        response_header set x-config \"{tag}\"\n        proxy slow\n    }}\n    route /* {{ respond 200 \"{tag}\" }}\n}}\n"
        )
    };
    let srv = start_bext("inflight.bext", &proxied("old"));
    let mut slow = connect(srv.addr);
    slow.write_all(b"GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap();
    arrived_rx.recv().unwrap();
    assert_eq!(reload(&srv, &proxied("new")), Ok(2));
    assert_eq!(get(srv.addr), "new");
    // The old generation is still in memory, with one request running on it.
    assert_eq!(live_generations(srv.admin), vec![1, 2]);
    let (_, status) = admin(srv.admin, "GET", "/status");
    assert!(
        status.contains("{\"generation\":1,\"active_requests\":1}"),
        "{status}"
    );
    release_tx.send(()).unwrap();
    let mut r = BufReader::new(slow);
    let resp = read_response(&mut r, false);
    assert_eq!(
        (resp.text().as_str(), resp.header("x-config")),
        ("slow", Some("old"))
    );
    // The same keep-alive connection's next request runs on the new generation.
    r.get_mut()
        .write_all(b"GET /r HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut r, false).text(), "new");
    // Drained: generation 1 leaves memory once the request that held it has fully ended.
    for _ in 0..500 {
        if live_generations(srv.admin) == vec![2] {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("generation 1 was never freed");
}

#[test]
fn sighup_and_pid_file_reload_the_file() {
    let pid_file = temp_path("bext.pid");
    let with_pid = |body: &str| {
        config(body, None).replace(
            "workers 2\n",
            &format!("workers 2\n    pid_file \"{}\"\n", pid_file.display()),
        )
    };
    let srv = start_bext("sighup.bext", &with_pid("one"));
    std::fs::write(&srv.file, with_pid("two")).unwrap();
    let ok = Command::new("kill")
        .args(["-HUP", &srv.child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    wait_for_body(srv.addr, "two");
    std::fs::write(&srv.file, with_pid("three")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_bext"))
        .args(["reload", "--pid-file"])
        .arg(&pid_file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    wait_for_body(srv.addr, "three");
    assert_eq!(live_generations(srv.admin), vec![3]);
}

/// A signal-driven reload has no answer to wait for: poll the served body (bounded).
fn wait_for_body(a: SocketAddr, want: &str) {
    for _ in 0..500 {
        if get(a) == want {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the reload to {want:?} never took effect");
}

#[test]
fn a_websocket_opened_before_fifty_reloads_still_echoes_after_them() {
    let ws_up = upstream(|s: TcpStream| {
        let Ok(mut ws) = tungstenite::accept(s) else {
            return;
        };
        while let Ok(msg) = ws.read() {
            if msg.is_close() || ws.send(msg).is_err() {
                break;
            }
        }
    });
    let (a, b) = (config("a", Some(ws_up)), config("b", Some(ws_up)));
    let srv = start_bext("ws.bext", &a);
    let stream = connect(srv.addr);
    let (mut ws, resp) =
        tungstenite::client(format!("ws://{}/ws", srv.addr), stream).expect("handshake");
    assert_eq!(resp.status().as_u16(), 101);
    let mut echo = |text: String| {
        ws.send(tungstenite::Message::text(text.clone())).unwrap();
        let back = ws.read().unwrap();
        assert_eq!(back.into_text().unwrap().as_str(), text);
    };
    echo("before".into());
    for i in 0..50 {
        reload(&srv, if i % 2 == 0 { &b } else { &a }).expect("reload");
        if i % 10 == 9 {
            echo(format!("after {} reloads", i + 1));
        }
    }
    assert_eq!(get(srv.addr), "a");
    echo("x".repeat(50_000));
    // The tunnel still holds the first generation; everything else was freed.
    let live = live_generations(srv.admin);
    assert_eq!(live, vec![1, 51], "{live:?}");
}

#[test]
fn a_thousand_reloads_free_old_generations() {
    let (a, b) = (config("a", None), config("b", None));
    let srv = start_bext("memory.bext", &a);
    let pid = srv.child.id();
    let run = |from: usize, to: usize| {
        for i in from..to {
            reload(&srv, if i % 2 == 0 { &b } else { &a }).expect("reload");
            // Keep-alive traffic on every generation, so each one was used before it retired.
            get(srv.addr);
        }
    };
    run(0, 10);
    let after_10 = rss_kib(pid);
    run(10, 1000);
    let after_1000 = rss_kib(pid);
    assert_eq!(live_generations(srv.admin), vec![1001]);
    // 990 generations leaked would be far above this bound; allocator noise stays below it.
    assert!(
        after_1000 < after_10 + 2048,
        "VmRSS {after_10} KiB after 10 reloads, {after_1000} KiB after 1,000"
    );
    let mut s = connect(srv.addr);
    s.write_all(b"GET /r HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut all = String::new();
    s.read_to_string(&mut all).unwrap();
    assert!(all.ends_with("\r\n\r\na"), "{all}");
}

#[test]
fn the_library_reloads_a_running_server_in_process() {
    let srv = bext::start(
        bext::respond_config("127.0.0.1:0", 200, "one"),
        bext::StartOptions {
            workers: Some(2),
            pin: false,
            ..bext::StartOptions::default()
        },
    )
    .unwrap();
    let a = srv.local_addrs()[0];
    assert_eq!(
        srv.reload(&bext::respond_config("127.0.0.1:0", 200, "two")),
        Ok(2)
    );
    assert_eq!(get(a), "two");
    let mut unsupported = bext::respond_config("127.0.0.1:0", 200, "three");
    unsupported.sites[0].routes[0]
        .plugins
        .push(bext_ir::Plugin {
            path: "p.wasm".into(),
            config: vec![],
            at: loc(),
        });
    let mut restart_only = bext::respond_config("127.0.0.1:0", 200, "three");
    restart_only.global.admin = Some("127.0.0.1:0".into());
    let table = [
        (unsupported, "cannot read plugin"),
        (restart_only, "cannot change `admin`"),
    ];
    for (config, says) in &table {
        let err = srv.reload(config).unwrap_err();
        assert!(err.contains(says), "{says:?} not in {err}");
        assert_eq!(get(a), "two");
    }
    assert_eq!(srv.generation(), 2);
    assert!(srv.stats().iter().all(|(g, _, _)| *g == 2));
    srv.shutdown();
}

#[test]
fn the_admin_endpoint_answers_only_its_two_requests() {
    let srv = start_bext("admin.bext", &config("x", None));
    // (raw request, expected status)
    let table: &[(&[u8], u16)] = &[
        (b"GET /status HTTP/1.1\r\nHost: localhost\r\n\r\n", 200),
        (b"GET /nope HTTP/1.1\r\nHost: localhost\r\n\r\n", 404),
        (b"GET /reload HTTP/1.1\r\nHost: localhost\r\n\r\n", 405),
        (
            b"POST /status HTTP/1.1\r\nHost: localhost\r\nX-Bext-Admin: 1\r\n\r\n",
            405,
        ),
        (
            b"POST /reload HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
        ),
        (b"NONSENSE\r\n\r\n", 400),
    ];
    for (req, want) in table {
        let (resp, _) = exchange(srv.admin, req);
        assert_eq!(resp.status, *want, "{}", String::from_utf8_lossy(req));
    }
    // Nothing above reloaded anything.
    assert_eq!(live_generations(srv.admin), vec![1]);
}

#[test]
fn bext_reload_without_a_reachable_target_is_a_usage_error() {
    let missing = temp_path("missing.pid");
    let not_a_pid = temp_path("not-a-pid");
    std::fs::write(&not_a_pid, "hello\n").unwrap();
    let (closed, _held) = common::refusing();
    // (arguments, what stderr says)
    let table: Vec<(Vec<String>, &str)> = vec![
        (vec![], "--admin"),
        (
            vec!["--pid-file".into(), missing.display().to_string()],
            "cannot read pid file",
        ),
        (
            vec!["--pid-file".into(), not_a_pid.display().to_string()],
            "does not hold a process id",
        ),
        (
            vec!["--admin".into(), closed.to_string()],
            "cannot reach the admin endpoint",
        ),
    ];
    for (args, says) in &table {
        let out = Command::new(env!("CARGO_BIN_EXE_bext"))
            .arg("reload")
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    let _ = std::fs::remove_file(not_a_pid);
}

/// The admin endpoint's reload answer says what the reload changed for routing: routes added,
/// removed and changed, and sampled requests that now go elsewhere.
#[test]
fn the_reload_answer_carries_the_routing_diff() {
    let srv = start_bext("diff", &config("one", None));
    let with_new_route = config("one", None).replace(
        "site * {\n",
        "site * {\n    route /new/* { respond 201 \"new\" }\n",
    );
    std::fs::write(&srv.file, &with_new_route).unwrap();
    let (status, body) = admin(srv.admin, "POST", "/reload");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["generation"], 2);
    let d = &v["diff"];
    assert_eq!(d["routes_added"], serde_json::json!(["* /new/*"]));
    assert_eq!(d["routes_removed"], serde_json::json!([]));
    assert_eq!(d["routes_changed"], serde_json::json!([]));
    assert_eq!(
        d["requests_moved"],
        serde_json::json!([{
            "request": "GET http://default.invalid/new/sample",
            "old": "* /* → respond 200",
            "new": "* /new/* → respond 201",
        }])
    );
    // Against the configuration now running: reloading it again changes nothing.
    let (status, body) = admin(srv.admin, "POST", "/reload");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["generation"], 3);
    assert_eq!(v["diff"]["routes_added"], serde_json::json!([]));
    assert_eq!(v["diff"]["requests_moved"], serde_json::json!([]));
}
