//! `bext run` under the systemd notification protocol, against a unix datagram socket standing
//! in for systemd (`NOTIFY_SOCKET`): `READY=1` with `MAINPID` once serving, `WATCHDOG=1` pings
//! with `WATCHDOG_USEC`, `RELOADING=1` (with `MONOTONIC_USEC`) then `READY=1` around a reload
//! through the admin endpoint (what the unit's `ExecReload=` runs) and around a refused one,
//! `STOPPING=1` on SIGTERM; and `dist/systemd/bext.service` passes `systemd-analyze verify`.
//! Waits are for messages, bounded only so that a broken build fails instead of hanging.

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("bext-systemd-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The next message on `sock` that is not a watchdog ping (counted into `pings`).
fn next(sock: &UnixDatagram, pings: &mut usize) -> String {
    let mut buf = [0u8; 4096];
    loop {
        let n = sock.recv(&mut buf).expect("a notification in time");
        let m = String::from_utf8_lossy(&buf[..n]).into_owned();
        if m == "WATCHDOG=1" {
            *pings += 1;
            continue;
        }
        return m;
    }
}

fn fields(m: &str) -> Vec<(&str, &str)> {
    m.lines().filter_map(|l| l.split_once('=')).collect()
}

fn bext() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bext"));
    c.stdin(Stdio::null());
    c
}

#[test]
fn the_notify_protocol_follows_start_watchdog_reload_and_stop() {
    let dir = temp_dir("notify");
    let sock_path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let file = dir.join("site.bext");
    let config = |body: &str| {
        format!(
            "global {{\n    admin 127.0.0.1:0\n    workers 2\n}}\nlisten 127.0.0.1:0\nsite * {{\n    route /* {{ respond 200 \"{body}\" }}\n}}\n"
        )
    };
    std::fs::write(&file, config("one")).unwrap();
    let mut child = bext()
        .arg("run")
        .arg(&file)
        .args(["--no-pin", "--driver", driver()])
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "400000")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut pings = 0;

    let ready = next(&sock, &mut pings);
    let f = fields(&ready);
    assert_eq!(f[0], ("READY", "1"), "{ready}");
    assert!(
        f.contains(&("MAINPID", child.id().to_string().as_str())),
        "{ready}"
    );
    // READY comes after `admin on ADDR` was printed: the endpoint answers.
    let admin = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("admin on ").map(str::to_string))
        .expect("admin on ADDR");

    // The watchdog is pinged while the workers tick.
    let mut buf = [0u8; 4096];
    while pings < 2 {
        let n = sock.recv(&mut buf).expect("a ping in time");
        let m = String::from_utf8_lossy(&buf[..n]);
        assert_eq!(m, "WATCHDOG=1", "before any reload");
        pings += 1;
    }

    // A reload through the admin endpoint, as `ExecReload=` does it.
    std::fs::write(&file, config("two")).unwrap();
    let out = bext().args(["reload", "--admin", &admin]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reloading = next(&sock, &mut pings);
    let f = fields(&reloading);
    assert_eq!(f[0], ("RELOADING", "1"), "{reloading}");
    let usec: u64 = f
        .iter()
        .find(|(k, _)| *k == "MONOTONIC_USEC")
        .expect("MONOTONIC_USEC")
        .1
        .parse()
        .unwrap();
    assert!(usec > 0);
    let ready = next(&sock, &mut pings);
    assert!(ready.starts_with("READY=1\n"), "{ready}");
    assert!(ready.contains("STATUS=serving generation 2"), "{ready}");

    // A refused reload also ends with READY=1: the old configuration serves on.
    std::fs::write(&file, "site * { route /x { nonsense } }\n").unwrap();
    let out = bext().args(["reload", "--admin", &admin]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(next(&sock, &mut pings).starts_with("RELOADING=1\n"));
    let ready = next(&sock, &mut pings);
    assert!(ready.contains("the last reload was refused"), "{ready}");

    // SIGTERM: STOPPING=1, then a clean exit.
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let stopping = next(&sock, &mut pings);
    assert!(stopping.starts_with("STOPPING=1"), "{stopping}");
    assert!(child.wait().unwrap().success());
    assert!(pings >= 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_notify_socket_bext_serves_and_stops_cleanly() {
    // The same binary outside systemd (WATCHDOG_USEC alone means nothing without a socket).
    let dir = temp_dir("plain");
    let file = dir.join("site.bext");
    std::fs::write(
        &file,
        "listen 127.0.0.1:0\nsite * {\n    route /* { respond 200 \"ok\" }\n}\n",
    )
    .unwrap();
    let mut child = bext()
        .arg("run")
        .arg(&file)
        .args(["--no-pin", "--driver", driver(), "--workers", "1"])
        .env_remove("NOTIFY_SOCKET")
        .env("WATCHDOG_USEC", "400000")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let line = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .find(|l| l.starts_with("listening on "));
    assert!(line.is_some());
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_unit_file_passes_systemd_analyze_verify() {
    let unit = Path::new(env!("CARGO_MANIFEST_DIR")).join("dist/systemd/bext.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    for line in [
        "Type=notify",
        "ExecReload=/usr/local/bin/bext reload --admin /run/bext/admin.sock",
        "WatchdogSec=",
    ] {
        assert!(text.contains(line), "{line}");
    }
    let Ok(probe) = Command::new("systemd-analyze").arg("--version").output() else {
        // No systemd on this machine: the protocol test above stands in for it.
        eprintln!("systemd-analyze is not installed: the unit file is not verified here");
        return;
    };
    assert!(probe.status.success());
    // Verify the unit with the binary under test in place of /usr/local/bin/bext, which
    // `verify` requires to exist.
    let dir = temp_dir("unit");
    let copy = dir.join("bext.service");
    std::fs::write(
        &copy,
        text.replace("/usr/local/bin/bext", env!("CARGO_BIN_EXE_bext")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify"])
        .arg(&copy)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn driver() -> &'static str {
    match std::env::var("BEXT_TEST_DRIVER").as_deref() {
        Ok("epoll") => "epoll",
        Ok("io-uring") => "io-uring",
        _ => "auto",
    }
}
