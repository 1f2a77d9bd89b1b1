//! The admin endpoint (`global { admin 127.0.0.1:9901 }`): a small HTTP/1.1 server on its own
//! thread, off the workers, for operators and scripts.
//!
//! - `GET /status`: JSON; the published generation, the generations still in memory, the
//!   addresses listened on, and per
//!   worker its active generation, open connections, requests served, and the requests still
//!   running per generation (how an operator watches an old generation drain); and per
//!   upstream, summed over the workers, its requests, failed attempts, retries, retries refused
//!   by the budget and requests refused by the circuit breaker, with per server its active
//!   health (`up`), the workers that passively ejected it now, attempts, failures and ejections.
//! - `POST /reload`: re-read and compile the configuration and reload it on every core; `200`
//!   with `{"generation":N}` once every core runs generation N, `422` with the diagnostics as
//!   text otherwise (the running configuration is kept).
//!
//! It listens on loopback addresses only and answers `403` to any peer that is not loopback.
//! One request per connection, handled one at a time: it is a control channel, not a data
//! plane, and serialising requests also serialises reloads.

use crate::server::Control;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Longest request head the admin endpoint reads.
const HEAD_MAX: usize = 8 * 1024;
/// Longest request body it reads (and discards): its requests carry no body.
const BODY_MAX: usize = 64 * 1024;
/// A client that sends nothing for this long is dropped, so it cannot hold the endpoint.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// A running admin endpoint; stopped when dropped.
pub struct AdminServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl AdminServer {
    /// Bind `addr` (a loopback address) and serve `control` on a thread of its own.
    pub fn start(addr: SocketAddr, control: Arc<Control>) -> std::io::Result<AdminServer> {
        if !addr.ip().is_loopback() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "the admin endpoint listens on loopback addresses only",
            ));
        }
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("bext-admin".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if flag.load(Ordering::Acquire) {
                        return;
                    }
                    if let Ok(s) = conn {
                        handle(s, &control);
                    }
                }
            })?;
        Ok(AdminServer {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Wake the blocking accept; it sees the flag and returns.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A parsed admin request: method, path and declared body length.
#[derive(Debug, PartialEq, Eq)]
struct Request {
    method: String,
    path: String,
    body_len: usize,
}

/// Parse a request head (everything before the blank line). `None` for anything malformed.
fn parse_head(head: &str) -> Option<Request> {
    let mut lines = head.split("\r\n");
    let mut parts = lines.next()?.split(' ');
    let method = parts.next()?.to_string();
    let target = parts.next()?;
    let version = parts.next()?;
    if parts.next().is_some() || !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return None;
    }
    let path = target.split('?').next().unwrap_or(target).to_string();
    let mut body_len = 0;
    for line in lines {
        let (name, value) = line.split_once(':')?;
        if name.eq_ignore_ascii_case("transfer-encoding") {
            return None;
        }
        if name.eq_ignore_ascii_case("content-length") {
            body_len = value.trim().parse().ok()?;
        }
    }
    Some(Request {
        method,
        path,
        body_len,
    })
}

fn read_request(s: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > HEAD_MAX {
            return None;
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let req = parse_head(std::str::from_utf8(&buf[..end]).ok()?)?;
    if req.body_len > BODY_MAX {
        return None;
    }
    let mut have = buf.len() - end - 4;
    while have < req.body_len {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => have += n,
        }
    }
    Some(req)
}

fn respond(s: &mut TcpStream, status: u16, content_type: &str, body: &str) {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Unprocessable Content",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = s.write_all(head.as_bytes());
    let _ = s.write_all(body.as_bytes());
}

fn handle(mut s: TcpStream, control: &Control) {
    let _ = s.set_read_timeout(Some(CLIENT_TIMEOUT));
    let _ = s.set_write_timeout(Some(CLIENT_TIMEOUT));
    if !s.peer_addr().is_ok_and(|p| p.ip().is_loopback()) {
        respond(&mut s, 403, "text/plain", "loopback clients only\n");
        return;
    }
    let Some(req) = read_request(&mut s) else {
        respond(&mut s, 400, "text/plain", "bad request\n");
        return;
    };
    match (req.method.as_str(), req.path.as_str()) {
        ("GET" | "HEAD", "/status") => {
            respond(&mut s, 200, "application/json", &status_json(control));
        }
        ("POST", "/reload") => match control.reload_from_source() {
            Ok(g) => {
                eprintln!("bext: reloaded: generation {g}");
                respond(
                    &mut s,
                    200,
                    "application/json",
                    &format!("{{\"generation\":{g}}}\n"),
                );
            }
            Err(m) => {
                eprintln!("bext: reload failed; the running configuration is kept:\n{m}");
                let mut text = m;
                if !text.ends_with('\n') {
                    text.push('\n');
                }
                respond(&mut s, 422, "text/plain; charset=utf-8", &text);
            }
        },
        (_, "/status" | "/reload") => respond(&mut s, 405, "text/plain", "method not allowed\n"),
        _ => respond(
            &mut s,
            404,
            "text/plain",
            "not found (GET /status, POST /reload)\n",
        ),
    }
}

/// The `GET /status` document (numbers only, so it is written by hand).
fn status_json(control: &Control) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let live: Vec<String> = (control.live_generations().iter())
        .map(u64::to_string)
        .collect();
    let listeners: Vec<String> = (control.listener_addrs().iter())
        .map(|a| format!("\"{a}\""))
        .collect();
    let _ = write!(
        out,
        "{{\"generation\":{},\"live_generations\":[{}],\"listeners\":[{}],\"workers\":[",
        control.generation(),
        live.join(","),
        listeners.join(",")
    );
    for (i, w) in control.status().iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{{\"worker\":{i},\"generation\":{},\"connections\":{},\"requests\":{},\"rate_limited\":{},\"generations\":[",
            w.generation, w.connections, w.requests, w.rate_limited
        );
        for (j, (g, n)) in w.in_use.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            let _ = write!(out, "{{\"generation\":{g},\"active_requests\":{n}}}");
        }
        out.push_str("]}");
    }
    out.push_str("],\"upstreams\":[");
    for (i, u) in control.upstream_status().iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"name\":");
        json_str(&mut out, &u.name);
        let _ = write!(
            out,
            ",\"requests\":{},\"failures\":{},\"retries\":{},\"budget_exhausted\":{},\"breaker_open\":{},\"servers\":[",
            u.requests, u.failures, u.retries, u.budget_exhausted, u.breaker_open
        );
        for (j, v) in u.servers.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            let _ = write!(
                out,
                "{{\"addr\":\"{}\",\"up\":{},\"ejected_on_workers\":{},\"requests\":{},\"failures\":{},\"ejections\":{}}}",
                v.addr, v.up, v.ejected_on, v.requests, v.failures, v.ejections
            );
        }
        out.push_str("]}");
    }
    out.push_str("]}\n");
    out
}

/// Append `s` as a JSON string.
fn json_str(out: &mut String, s: &str) {
    use std::fmt::Write as _;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_written_as_json_strings() {
        let table = [
            ("app", "\"app\""),
            ("a\"b", "\"a\\\"b\""),
            ("a\\b", "\"a\\\\b\""),
            ("a\nb", "\"a\\u000ab\""),
        ];
        for (name, want) in table {
            let mut out = String::new();
            json_str(&mut out, name);
            assert_eq!(out, want);
        }
    }

    #[test]
    fn request_heads_parse_or_are_refused() {
        let ok = |m: &str, p: &str, n: usize| {
            Some(Request {
                method: m.into(),
                path: p.into(),
                body_len: n,
            })
        };
        let table: &[(&str, Option<Request>)] = &[
            ("GET /status HTTP/1.1\r\nHost: x", ok("GET", "/status", 0)),
            ("POST /reload?x=1 HTTP/1.0", ok("POST", "/reload", 0)),
            (
                "POST /reload HTTP/1.1\r\nContent-Length: 3",
                ok("POST", "/reload", 3),
            ),
            ("POST /reload HTTP/1.1\r\nTransfer-Encoding: chunked", None),
            ("POST /reload HTTP/1.1\r\nContent-Length: x", None),
            ("GET status HTTP/1.1", None),
            ("GET /status", None),
            ("GET /status HTTP/1.1\r\nno colon", None),
        ];
        for (head, want) in table {
            assert_eq!(&parse_head(head), want, "{head:?}");
        }
    }
}
