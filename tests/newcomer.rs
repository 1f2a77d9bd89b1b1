//! A newcomer's first hour, as the binary answers it: a second bext on a busy port, the
//! `--listen` and `--workers` flags, the demo on another address, checking several files or
//! standard input, `bext version`, `fmt --check`, and `bext run` refusing a configuration with
//! the same coded diagnostics as `bext check`.

mod common;
use common::*;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Output, Stdio};

fn bext(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bext"));
    c.args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null());
    c
}

/// Run a command that ends by itself.
fn output(args: &[&str]) -> Output {
    bext(args).output().expect("run bext")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Start a serving command and read the address from its `listening on ADDR` line.
fn serve(args: &[&str]) -> (Child, SocketAddr) {
    let mut child = bext(args).spawn().expect("spawn bext");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("read");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .expect("address");
    (child, addr)
}

/// SIGTERM, and the graceful stop's exit status.
fn stop(mut child: Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok);
    assert!(child.wait().expect("wait").success());
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(name: &str, content: &str) -> Scratch {
        let p = std::env::temp_dir().join(format!("bext-newcomer-{}-{name}", std::process::id()));
        std::fs::write(&p, content).expect("write scratch file");
        Scratch(p)
    }
    fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 path")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// With SO_REUSEPORT, a second bext on the port of a running one used to start and take part of
/// its connections. It now refuses, naming the address, and the first keeps serving.
#[test]
fn a_second_bext_on_a_port_another_bext_holds_refuses_to_start() {
    let listen = format!("127.0.0.1:{}", free_port());
    let (first, a) = serve(&["respond", "--listen", &listen, "--workers", "1"]);
    let second = output(&["respond", "--listen", &listen, "--workers", "1"]);
    let err = text(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{err}");
    assert!(second.stdout.is_empty(), "{}", text(&second.stdout));
    assert!(err.contains(&format!("cannot listen on {listen}")), "{err}");
    assert!(err.contains("another process"), "{err}");
    let r = exchange(a, b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").0;
    assert_eq!(r.status, 200);
    stop(first);
}

/// `--listen PORT` is this machine only; `--listen :PORT` is every address, as `listen :PORT`
/// in a file; anything else that is not an address is a usage error (exit 2).
#[test]
fn listen_takes_a_bare_port_or_colon_port() {
    let table: [(&str, [u8; 4]); 2] = [("0", [127, 0, 0, 1]), (":0", [0, 0, 0, 0])];
    for (flag, ip) in table {
        let (child, a) = serve(&["respond", "--listen", flag, "--workers", "1"]);
        assert_eq!(a.ip(), std::net::IpAddr::from(ip), "--listen {flag}");
        assert_ne!(a.port(), 0);
        stop(child);
    }
    for bad in ["8080x", "localhost", ""] {
        let out = output(&["respond", "--listen", bad]);
        assert_eq!(out.status.code(), Some(2), "--listen {bad:?}");
        assert!(
            text(&out.stderr).contains("--listen"),
            "{}",
            text(&out.stderr)
        );
    }
}

/// `--workers 0` is refused like `workers 0` in a file, before anything starts.
#[test]
fn workers_zero_is_a_usage_error() {
    for n in ["0", "1025"] {
        for cmd in ["respond", "proxy", "origin", "run"] {
            let mut args = vec![cmd, "--workers", n];
            if cmd == "proxy" {
                args.extend(["--to", "127.0.0.1:9"]);
            }
            let out = output(&args);
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{cmd} --workers {n}: {err}");
            assert!(err.contains("1 to 1024"), "{err}");
        }
    }
}

/// `bext run` without a file serves the demo on `--listen`; with a file, `--listen` is a usage
/// error (the file says where it listens).
#[test]
fn run_without_a_file_serves_the_demo_on_listen() {
    let (demo, a) = serve(&["run", "--listen", "127.0.0.1:0", "--workers", "1"]);
    let r = exchange(a, b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").0;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("built-in origin"), "{}", r.text());
    stop(demo);
    let out = output(&["run", "site.bext", "--listen", "8080"]);
    assert_eq!(out.status.code(), Some(2));
}

const GOOD: &str = "listen 127.0.0.1:0\nsite * {\n    route /* { respond 200 \"ok\" }\n}\n";
const BAD: &str = "listen 127.0.0.1:0\nsite * {\n    route /* { proxy nowhere }\n}\n";

/// `bext check` checks every file it is given, `-` being standard input, and exits with the
/// worst outcome: 0 all clean, 1 errors, 2 a file cannot be read.
#[test]
fn check_takes_several_files_and_standard_input() {
    let good = Scratch::new("good.bext", GOOD);
    let bad = Scratch::new("bad.bext", BAD);
    let mut child = bext(&["check", good.path(), "-"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(GOOD.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!("ok: {}:", good.path())),
        "{stdout}"
    );
    assert!(stdout.contains("ok: <stdin>:"), "{stdout}");

    let out = output(&["check", good.path(), bad.path()]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(text(&out.stdout).contains(good.path()));
    assert!(err.contains(&format!("{}:3:", bad.path())), "{err}");
    assert!(err.contains("error[E0303]"), "{err}");

    let out = output(&["check", bad.path(), "/nonexistent/bext/site.bext"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

/// `bext version` and `bext --version` print the same: the version, and which I/O drivers
/// can run here.
#[test]
fn version_names_the_version_and_the_drivers() {
    let long = output(&["version"]);
    let flag = output(&["--version"]);
    assert!(long.status.success() && flag.status.success());
    let v = text(&long.stdout);
    assert_eq!(v, text(&flag.stdout));
    assert!(
        v.starts_with(&format!("bext {}\n", env!("CARGO_PKG_VERSION"))),
        "{v}"
    );
    assert!(
        v.contains("drivers: epoll") && v.contains("io-uring ("),
        "{v}"
    );
    // What the engine refuses is listed when there is any (today nothing).
    assert_eq!(
        v.contains("not implemented yet"),
        !bext::NOT_IMPLEMENTED.is_empty(),
        "{v}"
    );
}

/// `fmt --check` prints no formatted text; for a file that is not formatted it names the file
/// on stderr and exits 1, as its help says.
#[test]
fn fmt_check_prints_what_its_help_says() {
    let messy = Scratch::new(
        "messy.bext",
        "listen   127.0.0.1:0\nsite * {\nroute /* { respond 200 \"ok\" }\n}\n",
    );
    let help = text(&output(&["fmt", "--help"]).stdout);
    assert!(help.contains("naming the file on stderr"), "{help}");
    let out = output(&["fmt", "--check", messy.path()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains(messy.path()));
}

/// What `bext run` refuses it reports exactly as `bext check` does: the same coded
/// diagnostics, with file:line:col and a hint, and exit 1.
#[test]
fn run_refuses_with_the_diagnostics_of_check() {
    let refused = Scratch::new(
        "refused.bext",
        "site * {\n    route /* {\n        respond 200 \"ok\"\n    }\n}\nlisten 127.0.0.1:0\nglobal { tracing { otlp \"http://nowhere.invalid:4318/v1/traces\" } }\n",
    );
    let check = output(&["check", refused.path()]);
    let run = output(&["run", refused.path(), "--workers", "1"]);
    assert_eq!(check.status.code(), Some(1));
    assert_eq!(run.status.code(), Some(1));
    let err = text(&run.stderr);
    assert_eq!(err, text(&check.stderr));
    assert!(err.contains("error[E0502]"), "{err}");
    assert!(err.contains(&format!("{}:7:25", refused.path())), "{err}");
    assert!(err.contains("= help:"), "{err}");
}

/// An upstream name that does not resolve: `bext check` warns (W0503; it may resolve where bext
/// runs) and `bext run` refuses it at its place (E0502).
#[test]
fn an_upstream_name_that_does_not_resolve_is_a_warning_for_check_and_an_error_for_run() {
    let unresolved = Scratch::new(
        "unresolved.bext",
        "listen 127.0.0.1:0\nupstream app {\n    server nowhere.invalid:9000\n}\nsite * {\n    route /* { proxy app }\n}\n",
    );
    let check = output(&["check", unresolved.path()]);
    let err = text(&check.stderr);
    assert_eq!(check.status.code(), Some(0), "{err}");
    assert!(err.contains("warning[W0503]"), "{err}");
    assert!(err.contains(&format!("{}:3:5", unresolved.path())), "{err}");
    let run = output(&["run", unresolved.path(), "--workers", "1"]);
    let err = text(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{err}");
    assert!(err.contains("error[E0502]"), "{err}");
    assert!(err.contains(&format!("{}:3:5", unresolved.path())), "{err}");
}
