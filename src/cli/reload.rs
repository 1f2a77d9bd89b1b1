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
#[command(group(ArgGroup::new("target").required(true).args(["admin", "pid_file"])))]
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
}

pub fn reload(a: ReloadArgs) -> ExitCode {
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
