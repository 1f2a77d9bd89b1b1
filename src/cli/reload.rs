//! `bext reload`: ask a running bext to re-read and reload its configuration.
//!
//! With `--admin ADDR` it calls `POST /reload` on the admin endpoint and reports the outcome:
//! exit 0 printing the generation every core now runs, exit 1 printing the diagnostics (the
//! server keeps its running configuration). With `--pid-file F` it sends SIGHUP to the pid in
//! F; the outcome then goes to the server's log only. Exit 2: usage errors, or the server
//! could not be reached.
use clap::{ArgGroup, Args};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Duration;

#[derive(Args)]
#[command(group(ArgGroup::new("target").required(true).args(["admin", "pid_file"])))]
pub struct ReloadArgs {
    /// The admin endpoint (`global { admin ADDR }`): reload and wait for the outcome.
    #[arg(long)]
    pub admin: Option<String>,
    /// The pid file (`global { pid_file F }`): send SIGHUP; the outcome is in the server's log.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
}

pub fn reload(a: ReloadArgs) -> ExitCode {
    match (a.admin, a.pid_file) {
        (Some(addr), _) => via_admin(&addr),
        (None, Some(f)) => via_signal(&f),
        (None, None) => ExitCode::from(2),
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

/// Status code and body of `POST /reload` on `addr`.
fn post_reload(addr: &str) -> std::io::Result<(u16, String)> {
    let sa = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address"))?;
    let mut s = TcpStream::connect_timeout(&sa, Duration::from_secs(5))?;
    s.write_all(
        b"POST /reload HTTP/1.1\r\nHost: bext-admin\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
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

fn via_admin(addr: &str) -> ExitCode {
    match post_reload(addr) {
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
        Ok((status, body)) => {
            eprintln!("bext: {addr} answered {status}: {body}");
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
