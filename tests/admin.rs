//! Who the admin endpoint answers, over real sockets against `bext run FILE`: loopback `Host`
//! only (DNS rebinding), no request from a web page (`Origin`, `Sec-Fetch-Site`), the
//! `X-Bext-Admin` header on `POST` (cross-site simple requests), the bearer token, the unix
//! socket (mode 0600, stale file replaced, live one refused, removed at stop), the refusal of a
//! non-loopback address by `bext check` and `bext run`, and a slow client that must not hold
//! the endpoint. Nothing here measures time: every wait is for an event, bounded only so that
//! a broken build fails instead of hanging.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Long enough for a loaded machine; only a broken build waits this long.
const PATIENCE: Duration = Duration::from_secs(30);

/// A directory of its own per test.
fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("bext-admin-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Where an admin endpoint listens, as `bext run` announced it.
#[derive(Clone, Debug)]
enum Admin {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl Admin {
    /// The argument of `bext reload --admin`.
    fn arg(&self) -> String {
        match self {
            Admin::Tcp(a) => a.to_string(),
            Admin::Unix(p) => p.display().to_string(),
        }
    }
}

/// A `bext run FILE` child process, killed when dropped.
struct Bext {
    child: Child,
    admin: Admin,
    dir: PathBuf,
}

impl Drop for Bext {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A configuration answering every request, with `admin_line` in `global`.
fn config(admin_line: &str, body: &str) -> String {
    format!(
        "global {{\n    {admin_line}\n    workers 1\n}}\nlisten 127.0.0.1:0\nsite * {{\n    route /* {{ respond 200 \"{body}\" }}\n}}\n"
    )
}

fn bext(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bext"));
    c.args(args).stdin(Stdio::null());
    c
}

fn spawn_run(file: &Path) -> Child {
    bext(&["run"])
        .arg(file)
        .args(["--no-pin", "--driver", "epoll"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn bext")
}

/// Run `text` as `dir/admin.bext` and wait until it listens.
fn start(dir: PathBuf, text: &str) -> Bext {
    let file = dir.join("admin.bext");
    std::fs::write(&file, text).unwrap();
    let mut child = spawn_run(&file);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut admin = None;
    for _ in 0..4 {
        let mut l = String::new();
        out.read_line(&mut l).unwrap();
        if let Some(a) = l.trim().strip_prefix("admin on ") {
            admin = Some(match a.parse() {
                Ok(sa) => Admin::Tcp(sa),
                Err(_) => Admin::Unix(PathBuf::from(a)),
            });
            break;
        }
    }
    let admin = admin.expect("an `admin on` line");
    // Keep the pipe open so the server's writes do not fail.
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = out.read_to_end(&mut sink);
    });
    Bext { child, admin, dir }
}

/// Send `raw` to the admin endpoint; the status and body of the answer.
fn ask(admin: &Admin, raw: &str) -> (u16, String) {
    let mut text = String::new();
    match admin {
        Admin::Tcp(a) => {
            let mut s = TcpStream::connect(a).unwrap();
            s.set_read_timeout(Some(PATIENCE)).unwrap();
            s.write_all(raw.as_bytes()).unwrap();
            s.read_to_string(&mut text).unwrap();
        }
        Admin::Unix(p) => {
            let mut s = UnixStream::connect(p).unwrap();
            s.set_read_timeout(Some(PATIENCE)).unwrap();
            s.write_all(raw.as_bytes()).unwrap();
            s.read_to_string(&mut text).unwrap();
        }
    }
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

/// `METHOD PATH` with `headers` (each ending in CRLF).
fn request(method: &str, path: &str, headers: &str) -> String {
    format!("{method} {path} HTTP/1.1\r\n{headers}Content-Length: 0\r\nConnection: close\r\n\r\n")
}

/// The published generation, from `GET /status` (with `headers`).
fn generation(admin: &Admin, headers: &str) -> u64 {
    let (status, body) = ask(admin, &request("GET", "/status", headers));
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["generation"].as_u64().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_request_naming_another_host_is_refused() {
    let srv = start(temp_dir("host"), &config("admin 127.0.0.1:0", "hello"));
    let port = match &srv.admin {
        Admin::Tcp(a) => a.port(),
        Admin::Unix(_) => unreachable!(),
    };
    // (Host header, expected status): a DNS-rebound name reaches 127.0.0.1 with its own Host.
    let table: &[(Option<String>, u16)] = &[
        (Some("evil.test".into()), 421),
        (Some(format!("evil.test:{port}")), 421),
        (Some("localhost.evil.test".into()), 421),
        (Some(format!("10.0.0.1:{port}")), 421),
        (None, 421),
        (Some("localhost".into()), 200),
        (Some(format!("localhost:{port}")), 200),
        (Some(format!("127.0.0.1:{port}")), 200),
        (Some(format!("127.0.0.2:{port}")), 200),
        (Some(format!("[::1]:{port}")), 200),
    ];
    for (host, want) in table {
        let h = host
            .as_ref()
            .map_or(String::new(), |h| format!("Host: {h}\r\n"));
        for path in ["/status", "/reload"] {
            let method = if path == "/status" { "GET" } else { "POST" };
            let req = request(method, path, &format!("{h}X-Bext-Admin: 1\r\n"));
            let (status, body) = ask(&srv.admin, &req);
            // A reload of an unchanged file succeeds: 200 as well.
            assert_eq!(status, *want, "{host:?} {path}: {body}");
            if *want == 421 {
                assert!(body.contains("loopback"), "{body}");
            }
        }
    }
}

#[test]
fn a_request_from_a_web_page_is_refused() {
    let srv = start(temp_dir("origin"), &config("admin 127.0.0.1:0", "hello"));
    // (extra header, expected status of GET /status and of POST /reload)
    let table: &[(&str, u16)] = &[
        ("Origin: http://evil.test\r\n", 403),
        ("Origin: null\r\n", 403),
        ("Origin: http://localhost:8080\r\n", 403),
        ("Sec-Fetch-Site: cross-site\r\n", 403),
        ("Sec-Fetch-Site: same-site\r\n", 403),
        ("Sec-Fetch-Site: same-origin\r\n", 200),
        ("Sec-Fetch-Site: none\r\n", 200),
        ("", 200),
    ];
    for (extra, want) in table {
        let before = generation(&srv.admin, "Host: localhost\r\n");
        let get = request("GET", "/status", &format!("Host: localhost\r\n{extra}"));
        assert_eq!(ask(&srv.admin, &get).0, *want, "GET with {extra:?}");
        let post = request(
            "POST",
            "/reload",
            &format!("Host: localhost\r\nX-Bext-Admin: 1\r\n{extra}"),
        );
        let (status, body) = ask(&srv.admin, &post);
        assert_eq!(status, *want, "POST with {extra:?}: {body}");
        let after = generation(&srv.admin, "Host: localhost\r\n");
        assert_eq!(after, before + u64::from(*want == 200), "{extra:?}");
    }
}

#[test]
fn a_post_without_the_admin_header_cannot_reload() {
    let srv = start(temp_dir("header"), &config("admin 127.0.0.1:0", "hello"));
    // What a cross-site form or a fetch without preflight can send: no custom header.
    let simple = [
        "Host: localhost\r\n",
        "Host: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\n",
        "Host: localhost\r\nContent-Type: text/plain\r\n",
    ];
    for headers in simple {
        let (status, body) = ask(&srv.admin, &request("POST", "/reload", headers));
        assert_eq!(status, 403, "{headers:?}: {body}");
        assert!(body.contains("X-Bext-Admin"), "{body}");
    }
    assert_eq!(generation(&srv.admin, "Host: localhost\r\n"), 1);
    let with = request("POST", "/reload", "Host: localhost\r\nX-Bext-Admin: 1\r\n");
    assert_eq!(ask(&srv.admin, &with).0, 200);
    assert_eq!(generation(&srv.admin, "Host: localhost\r\n"), 2);
    // `bext reload --admin` sends it.
    let out = bext(&["reload", "--admin", &srv.admin.arg()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "reloaded: generation 3\n"
    );
}

#[test]
fn admin_on_a_unix_socket_serves_status_and_reload() {
    let dir = temp_dir("unix");
    let sock = dir.join("admin.sock");
    let srv = start(
        dir.clone(),
        &config(&format!("admin \"{}\"", sock.display()), "hello"),
    );
    let Admin::Unix(announced) = &srv.admin else {
        panic!("expected a unix socket, got {:?}", srv.admin);
    };
    assert_eq!(announced, &sock);
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    // Any Host, or none, over the unix socket.
    assert_eq!(generation(&srv.admin, ""), 1);
    assert_eq!(generation(&srv.admin, "Host: anything\r\n"), 1);
    for arg in [
        sock.display().to_string(),
        format!("unix:{}", sock.display()),
    ] {
        let out = bext(&["reload", "--admin", &arg]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{arg}: {}", stderr(&out));
    }
    assert_eq!(generation(&srv.admin, ""), 3);
    // A web page still cannot use it (a browser cannot reach it, but the rule is the same).
    let origin = request("GET", "/status", "Origin: http://evil.test\r\n");
    assert_eq!(ask(&srv.admin, &origin).0, 403);
    // `bext check` accepts it (it was refused as not implemented).
    let out = bext(&["check"])
        .arg(dir.join("admin.bext"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn the_admin_socket_is_removed_at_stop() {
    let dir = temp_dir("unix-stop");
    let sock = dir.join("admin.sock");
    let mut srv = start(
        dir.clone(),
        &config(&format!("admin \"{}\"", sock.display()), "hello"),
    );
    assert!(sock.exists());
    let pid = srv.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = srv.child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(!sock.exists(), "the socket file is left behind");
}

#[test]
fn a_stale_admin_socket_is_replaced_and_a_live_one_refused() {
    let dir = temp_dir("unix-stale");
    let sock = dir.join("admin.sock");
    // A socket file nobody listens on any more, as a killed bext leaves it.
    drop(UnixListener::bind(&sock).unwrap());
    assert!(sock.exists());
    let text = config(&format!("admin \"{}\"", sock.display()), "hello");
    let srv = start(dir.clone(), &text);
    assert_eq!(generation(&srv.admin, ""), 1);
    // A second bext on the same socket is refused, and the first keeps it.
    let second = dir.join("second.bext");
    std::fs::write(&second, &text).unwrap();
    let out = spawn_run(&second).wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("served by another process"),
        "{}",
        stderr(&out)
    );
    assert_eq!(generation(&srv.admin, ""), 1);
    // A file that is not a socket is never replaced.
    let other = dir.join("not-a-socket");
    std::fs::write(&other, "keep me").unwrap();
    let third = dir.join("third.bext");
    std::fs::write(
        &third,
        config(&format!("admin \"{}\"", other.display()), "x"),
    )
    .unwrap();
    let out = spawn_run(&third).wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not a socket"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&other).unwrap(), "keep me");
}

fn write_token(path: &Path, token: &str, mode: u32) {
    std::fs::write(path, token).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn admin_token_is_required_when_configured() {
    let dir = temp_dir("token");
    let token = dir.join("admin.token");
    write_token(&token, "s3cret-token\n", 0o600);
    let srv = start(
        dir.clone(),
        &config(
            &format!("admin 127.0.0.1:0 token_file \"{}\"", token.display()),
            "hello",
        ),
    );
    let admin = &srv.admin;
    // (Authorization header, expected status)
    let table: &[(&str, u16)] = &[
        ("", 401),
        ("Authorization: Bearer wrong\r\n", 401),
        ("Authorization: Bearer s3cret-toke\r\n", 401),
        ("Authorization: Bearer s3cret-token-and-more\r\n", 401),
        ("Authorization: Basic s3cret-token\r\n", 401),
        ("Authorization: Bearer s3cret-token\r\n", 200),
        ("Authorization: bearer s3cret-token\r\n", 200),
    ];
    for (auth, want) in table {
        let req = request("GET", "/status", &format!("Host: localhost\r\n{auth}"));
        let (status, body) = ask(admin, &req);
        assert_eq!(status, *want, "{auth:?}: {body}");
        assert!(!body.contains("s3cret"), "{body}");
    }
    let req = request("POST", "/reload", "Host: localhost\r\nX-Bext-Admin: 1\r\n");
    assert_eq!(ask(admin, &req).0, 401);
    // `bext reload`: without a token it is refused (exit 2); with --token-file or the
    // environment it reloads.
    let out = bext(&["reload", "--admin", &admin.arg()])
        .env_remove("BEXT_ADMIN_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("401"), "{}", stderr(&out));
    let out = bext(&["reload", "--admin", &admin.arg(), "--token-file"])
        .arg(&token)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The token file is read again at each reload: a new token replaces the old one.
    write_token(&token, "rotated-token\n", 0o600);
    let out = bext(&["reload", "--admin", &admin.arg()])
        .env("BEXT_ADMIN_TOKEN", "s3cret-token")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let old = request(
        "GET",
        "/status",
        "Host: localhost\r\nAuthorization: Bearer s3cret-token\r\n",
    );
    assert_eq!(ask(admin, &old).0, 401);
    let new = "Host: localhost\r\nAuthorization: Bearer rotated-token\r\n";
    assert_eq!(generation(admin, new), 3);
}

#[test]
fn an_unusable_admin_token_file_is_a_config_error() {
    let dir = temp_dir("token-bad");
    // (file name, content, mode; None: the file does not exist)
    let table: &[(&str, Option<(&str, u32)>)] = &[
        ("world-readable", Some(("s3cret\n", 0o644))),
        ("world-writable", Some(("s3cret\n", 0o602))),
        ("empty", Some(("\n", 0o600))),
        ("spaces", Some(("two words\n", 0o600))),
        ("missing", None),
    ];
    for (name, file) in table {
        let token = dir.join(name);
        if let Some((text, mode)) = file {
            write_token(&token, text, *mode);
        }
        let conf = dir.join(format!("{name}.bext"));
        std::fs::write(
            &conf,
            config(
                &format!("admin 127.0.0.1:0 token_file \"{}\"", token.display()),
                "x",
            ),
        )
        .unwrap();
        let out = bext(&["check"]).arg(&conf).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{name}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("error[E0602]"),
            "{name}: {}",
            stderr(&out)
        );
        let out = spawn_run(&conf).wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{name}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("error[E0602]"),
            "{name}: {}",
            stderr(&out)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_non_loopback_admin_address_is_refused_by_check_and_run() {
    let dir = temp_dir("non-loopback");
    for addr in ["0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:9901"] {
        let conf = dir.join("a.bext");
        std::fs::write(&conf, config(&format!("admin {addr}"), "x")).unwrap();
        let out = bext(&["check"]).arg(&conf).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{addr}: {}", stderr(&out));
        let text = stderr(&out);
        assert!(text.contains("error[E0601]"), "{addr}: {text}");
        assert!(
            text.contains("use a loopback address or a unix socket"),
            "{addr}: {text}"
        );
        let out = spawn_run(&conf).wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{addr}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("error[E0601]"),
            "{addr}: {}",
            stderr(&out)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_slow_client_does_not_hold_the_admin_endpoint() {
    let srv = start(temp_dir("slow"), &config("admin 127.0.0.1:0", "hello"));
    let Admin::Tcp(addr) = srv.admin else {
        unreachable!()
    };
    // A silent client: connects and sends nothing.
    let silent = TcpStream::connect(addr).unwrap();
    // A slow client: a byte of a request head at a time, never the end of the head, until the
    // server closes its connection or it gives up (after PATIENCE).
    let gave_up = Arc::new(AtomicBool::new(false));
    let closed_by_server = Arc::new(AtomicBool::new(false));
    let slow = {
        let (gave_up, closed_by_server) = (gave_up.clone(), closed_by_server.clone());
        let mut s = TcpStream::connect(addr).unwrap();
        std::thread::spawn(move || {
            let start = std::time::Instant::now();
            let head = b"GET /status HTTP/1.1\r\nHost: localhost\r\nX-Padding: ";
            let mut i = 0;
            while start.elapsed() < PATIENCE {
                let b = head.get(i).copied().unwrap_or(b'a');
                if s.write_all(&[b]).is_err() {
                    closed_by_server.store(true, Ordering::SeqCst);
                    return;
                }
                i += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            gave_up.store(true, Ordering::SeqCst);
        })
    };
    // Both are connected, and /status answers the next client while they hold their
    // connections (before the slow one gives up).
    assert_eq!(generation(&srv.admin, "Host: localhost\r\n"), 1);
    assert!(
        !gave_up.load(Ordering::SeqCst),
        "GET /status waited for the slow client"
    );
    // The slow client is cut by the request deadline, not served at its pace: its
    // connection is closed (with 408) before it gives up.
    slow.join().unwrap();
    assert!(
        closed_by_server.load(Ordering::SeqCst),
        "the slow client was never cut off"
    );
    drop(silent);
}
