//! `bext reload`: ask a running bext to re-read and reload its configuration.
//!
//! With `--admin ADDR` (`127.0.0.1:9901`, or a unix socket: `/run/bext/admin.sock` or
//! `unix:/run/bext/admin.sock`) it calls `POST /reload` on the admin endpoint, with the
//! `X-Bext-Admin` header the endpoint requires and, when a token is given (`--token-file F` or
//! `BEXT_ADMIN_TOKEN`), `Authorization: Bearer`; it reports the outcome: exit 0 printing the
//! generation every core now runs, exit 1 printing the diagnostics (the server keeps its
//! running configuration). With `--pid-file F` it sends SIGHUP to the pid in F; the outcome
//! then goes to the server's log only. Exit 2: usage errors, or the server could not be reached
//! or refused the request.
use clap::{ArgGroup, Args};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

/// The environment variable `bext reload --admin` takes the token from without `--token-file`.
const TOKEN_ENV: &str = "BEXT_ADMIN_TOKEN";

#[derive(Args)]
#[command(group(ArgGroup::new("target").required(true).args(["admin", "pid_file", "diff"])))]
pub struct ReloadArgs {
    /// The admin endpoint (`global { admin ADDR }`): a loopback address, or a unix socket path
    /// (`/run/bext/admin.sock` or `unix:/run/bext/admin.sock`). Reload and wait for the outcome.
    #[arg(long)]
    pub admin: Option<String>,
    /// The file holding the admin endpoint's token (`admin ADDR token_file F`); without it, the
    /// token is taken from BEXT_ADMIN_TOKEN when set.
    #[arg(long, requires = "admin")]
    pub token_file: Option<PathBuf>,
    /// The pid file (`global { pid_file F }`): send SIGHUP; the outcome is in the server's log.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Reload nothing: show what reloading from OLD to NEW would change for routing (routes
    /// added, removed, changed; sampled requests whose destination changes).
    #[arg(long, num_args = 2, value_names = ["OLD", "NEW"])]
    pub diff: Option<Vec<PathBuf>>,
    /// How `--diff` prints: text, or one JSON document.
    #[arg(long, requires = "diff", value_parser = ["text", "json"], default_value = "text")]
    pub format: String,
}

pub fn reload(a: ReloadArgs) -> ExitCode {
    if let Some(files) = &a.diff {
        return diff(&files[0], &files[1], a.format == "json");
    }
    match (a.admin, a.pid_file) {
        (Some(addr), _) => {
            let token = match token(a.token_file.as_deref()) {
                Ok(t) => t,
                Err(m) => {
                    eprintln!("bext: {m}");
                    return ExitCode::from(2);
                }
            };
            via_admin(&addr, token.as_deref())
        }
        (None, Some(f)) => via_signal(&f),
        (None, None) => ExitCode::from(2),
    }
}

/// `--diff OLD NEW`: exit 0 with the difference printed, 1 when a file has errors (printed as
/// `bext check` prints them), 2 when one cannot be read.
fn diff(old: &Path, new: &Path, json: bool) -> ExitCode {
    let mut configs = Vec::new();
    for f in [old, new] {
        match bext_dsl::compile_file(f) {
            Ok(c) => configs.push(c.config),
            Err(e) => {
                eprint!("{}", e.render_human());
                let io = matches!(e, bext_dsl::Failure::Io { .. });
                return ExitCode::from(if io { 2 } else { 1 });
            }
        }
    }
    match bext::diff::diff(&configs[0], &configs[1]) {
        Ok(d) if json => println!("{:#}", d.to_json()),
        Ok(d) => print!("{}", d.to_text()),
        Err(m) => {
            eprintln!("bext: {m}");
            return ExitCode::from(1);
        }
    }
    ExitCode::SUCCESS
}

/// The token to present: from `file` (under the rules of the server's `token_file`), else from
/// the environment, else none.
fn token(file: Option<&Path>) -> Result<Option<String>, String> {
    if let Some(f) = file {
        return bext_ir::read_admin_token(f)
            .map(Some)
            .map_err(|why| format!("admin token file {}: {why}", f.display()));
    }
    match std::env::var(TOKEN_ENV) {
        Ok(t) if !t.trim().is_empty() => Ok(Some(t.trim().to_string())),
        _ => Ok(None),
    }
}

fn via_signal(pid_file: &std::path::Path) -> ExitCode {
    let text = match std::fs::read_to_string(pid_file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("bext: cannot read pid file {}: {e}", pid_file.display());
            return ExitCode::from(2);
        }
    };
    let Ok(pid) = text.trim().parse::<u32>() else {
        eprintln!("bext: {} does not hold a process id", pid_file.display());
        return ExitCode::from(2);
    };
    // `kill` rather than a system call: the binary has no unsafe code.
    match Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
    {
        Ok(s) if s.success() => {
            println!("sent SIGHUP to {pid}; the outcome is in the server's log");
            ExitCode::SUCCESS
        }
        Ok(_) => {
            eprintln!("bext: cannot signal process {pid}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("bext: cannot run `kill`: {e}");
            ExitCode::from(2)
        }
    }
}

/// A unix socket path given to `--admin`: `unix:/path` or `/path`.
fn unix_path(addr: &str) -> Option<&str> {
    match addr.strip_prefix("unix:") {
        Some(p) => Some(p),
        None => addr.starts_with('/').then_some(addr),
    }
}

/// The `POST /reload` request sent to the endpoint, with `host` as its `Host`.
fn reload_request(host: &str, token: Option<&str>) -> String {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    format!(
        "POST /reload HTTP/1.1\r\nHost: {host}\r\nX-Bext-Admin: 1\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
}

/// Status code and body of `POST /reload` on `addr`.
fn post_reload(addr: &str, token: Option<&str>) -> std::io::Result<(u16, String)> {
    let mut raw = Vec::new();
    if let Some(path) = unix_path(addr) {
        let mut s = UnixStream::connect(path)?;
        s.write_all(reload_request("localhost", token).as_bytes())?;
        s.read_to_end(&mut raw)?;
    } else {
        let sa = addr
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address"))?;
        let mut s = TcpStream::connect_timeout(&sa, Duration::from_secs(5))?;
        // The address as connected to: the endpoint accepts loopback names in `Host` only.
        s.write_all(reload_request(&sa.to_string(), token).as_bytes())?;
        s.read_to_end(&mut raw)?;
    }
    let text = String::from_utf8_lossy(&raw);
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP response");
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(bad)?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(bad)?;
    Ok((status, body.to_string()))
}

/// What the server says the reload changed for routing (the `diff` of its answer), as text.
fn diff_summary(body: &str) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let Ok(v) = serde_json::from_str::<serde_json::Value>(body) else {
        return o;
    };
    let d = &v["diff"];
    let empty = |k: &str| d[k].as_array().is_none_or(|a| a.is_empty());
    if [
        "routes_added",
        "routes_removed",
        "routes_changed",
        "requests_moved",
    ]
    .iter()
    .all(|k| empty(k))
    {
        // Routing is unchanged: nothing more to say.
        return o;
    }
    for (key, what) in [
        ("routes_added", "added"),
        ("routes_removed", "removed"),
        ("routes_changed", "changed"),
    ] {
        for r in d[key].as_array().into_iter().flatten() {
            let _ = writeln!(o, "route {what}: {}", r.as_str().unwrap_or(""));
        }
    }
    if let Some(moved) = d["requests_moved"].as_array() {
        let _ = writeln!(
            o,
            "{} of {} sampled requests change destination",
            moved.len(),
            d["requests_sampled"]
        );
        for m in moved {
            let s = |k: &str| m[k].as_str().unwrap_or("").to_string();
            let _ = writeln!(
                o,
                "  {}\n    was: {}\n    now: {}",
                s("request"),
                s("old"),
                s("new")
            );
        }
    }
    o
}

/// The generation in `{"generation":N}`.
fn generation_of(body: &str) -> Option<u64> {
    let rest = body.split_once("\"generation\":")?.1;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn via_admin(addr: &str, token: Option<&str>) -> ExitCode {
    match post_reload(addr, token) {
        Ok((200, body)) => match generation_of(&body) {
            Some(g) => {
                println!("reloaded: generation {g}");
                print!("{}", diff_summary(&body));
                ExitCode::SUCCESS
            }
            None => {
                eprintln!("bext: unexpected answer from {addr}: {body}");
                ExitCode::from(2)
            }
        },
        Ok((422, body)) => {
            eprint!("{body}");
            ExitCode::from(1)
        }
        Ok((401, body)) => {
            eprint!("bext: {addr} answered 401: {body}");
            eprintln!("bext: give the token with --token-file or {TOKEN_ENV}");
            ExitCode::from(2)
        }
        Ok((status, body)) => {
            eprint!("bext: {addr} answered {status}: {body}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("bext: cannot reach the admin endpoint at {addr}: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn unix_socket_paths_are_recognised() {
        let table = [
            ("unix:/run/bext.sock", Some("/run/bext.sock")),
            ("/run/bext.sock", Some("/run/bext.sock")),
            ("127.0.0.1:9901", None),
            ("[::1]:9901", None),
        ];
        for (addr, want) in table {
            assert_eq!(super::unix_path(addr), want, "{addr}");
        }
    }

    #[test]
    fn the_request_carries_the_admin_header_and_the_token() {
        assert_eq!(
            super::reload_request("127.0.0.1:9901", Some("t0k")),
            "POST /reload HTTP/1.1\r\nHost: 127.0.0.1:9901\r\nX-Bext-Admin: 1\r\nAuthorization: Bearer t0k\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        assert_eq!(
            super::reload_request("localhost", None),
            "POST /reload HTTP/1.1\r\nHost: localhost\r\nX-Bext-Admin: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn generation_is_read_from_the_answer() {
        let table = [
            ("{\"generation\":7}\n", Some(7)),
            ("{\"generation\":12345}", Some(12345)),
            ("{}", None),
        ];
        for (body, want) in table {
            assert_eq!(super::generation_of(body), want, "{body}");
        }
    }
}
