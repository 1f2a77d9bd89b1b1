//! The serving commands as a user runs them: `bext run FILE`, `respond`, `proxy`, `origin`;
//! the pid file, the access log, refusals of unimplemented directives, and the graceful drain on
//! SIGTERM/SIGINT.

mod common;
use common::*;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn bext(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bext"));
    c.args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null());
    c
}

/// Start a serving command and read the address from its `listening on ADDR` line.
fn serve(args: &[&str]) -> (Child, SocketAddr) {
    let mut child = bext(args).spawn().expect("spawn bext");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .unwrap();
    (child, addr)
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

fn get(a: SocketAddr, path: &str) -> Resp {
    exchange(
        a,
        format!("GET {path} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes(),
    )
    .0
}

fn temp_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("bext-test-{}-{name}", std::process::id()))
}

#[test]
fn run_serves_a_file_writes_pid_and_log_and_drains_on_sigterm() {
    let (got_head_tx, got_head_rx) = mpsc::channel::<()>();
    let got_head_tx = std::sync::Mutex::new(got_head_tx);
    let slow = upstream(move |mut s: TcpStream| {
        read_head(&mut s);
        let _ = got_head_tx.lock().unwrap().send(());
        std::thread::sleep(Duration::from_millis(700));
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow");
    });
    let pid = temp_path("run.pid");
    let log = temp_path("access.log");
    let file = temp_path("run.bext");
    std::fs::write(
        &file,
        format!(
            "global {{\n    pid_file \"{}\"\n    access_log \"{}\" json\n}}\nlisten 127.0.0.1:0\nupstream slow {{\n    server {slow}\n}}\nsite * {{\n    route /slow/* {{ proxy slow }}\n    route /* {{ respond 200 \"from file\" }}\n}}\n",
            pid.display(),
            log.display()
        ),
    )
    .unwrap();
    let (mut child, a) = serve(&["run", file.to_str().unwrap(), "--workers", "1"]);
    assert_eq!(
        std::fs::read_to_string(&pid).unwrap().trim(),
        child.id().to_string()
    );
    assert_eq!(get(a, "/").text(), "from file");

    let in_flight = std::thread::spawn(move || get(a, "/slow/x"));
    got_head_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the slow request reached the upstream");
    signal(&child, "-TERM");
    let resp = in_flight.join().unwrap();
    assert_eq!((resp.status, resp.text().as_str()), (200, "slow"));
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(TcpStream::connect(a).is_err(), "no longer listening");
    assert!(!pid.exists(), "the pid file is removed on exit");
    let lines = std::fs::read_to_string(&log).unwrap();
    assert_eq!(lines.lines().count(), 2, "{lines}");
    assert!(
        lines.contains("\"target\":\"/slow/x\",\"host\":\"h\",\"status\":200"),
        "{lines}"
    );
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_file(&log);
}

#[test]
fn run_refuses_a_configuration_it_cannot_serve() {
    let file = temp_path("refused.bext");
    std::fs::write(
        &file,
        "upstream app {\n    server 127.0.0.1:9\n}\nsite * {\n    route /* { proxy app }\n}\nlisten 127.0.0.1:0 tls { cert \"/nonexistent/c.pem\" key \"/nonexistent/c.key\" } http3\n",
    )
    .unwrap();
    let mut child = bext(&["run", file.to_str().unwrap()]).spawn().unwrap();
    // Refusing is immediate; a bext that started serving instead is stopped, and the test fails
    // on its exit status rather than hanging.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:7:", file.display())), "{err}");
    assert!(
        err.contains("certificate `/nonexistent/c.pem` cannot be read"),
        "{err}"
    );
    let _ = std::fs::remove_file(&file);
}

#[test]
fn quick_commands_serve_and_stop_on_sigint() {
    let (mut origin, oa) = serve(&[
        "origin",
        "--listen",
        "127.0.0.1:0",
        "--body-bytes",
        "5",
        "--workers",
        "1",
    ]);
    let (mut proxy, pa) = serve(&[
        "proxy",
        "--listen",
        "127.0.0.1:0",
        "--to",
        &oa.to_string(),
        "--workers",
        "2",
    ]);
    let (mut respond, ra) = serve(&[
        "respond",
        "--listen",
        "127.0.0.1:0",
        "--status",
        "201",
        "--body",
        "hi",
        "--workers",
        "1",
    ]);
    assert_eq!(get(oa, "/").body.len(), 5);
    assert_eq!(get(pa, "/").body.len(), 5);
    let r = get(ra, "/anything");
    assert_eq!((r.status, r.text().as_str()), (201, "hi"));
    for c in [&mut proxy, &mut respond, &mut origin] {
        signal(c, "-INT");
        assert!(c.wait().unwrap().success());
    }
}
