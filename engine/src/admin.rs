//! The admin endpoint (`global { admin 127.0.0.1:9901 }` or `admin "/run/bext/admin.sock"`): a
//! small HTTP/1.1 server off the workers, for operators and scripts.
//!
//! - `GET /status`: JSON; the published generation, the generations still in memory, the
//!   addresses listened on, and per
//!   worker its active generation, open connections, requests served, and the requests still
//!   running per generation (how an operator watches an old generation drain); and per
//!   upstream, summed over the workers, its requests, failed attempts, retries, retries refused
//!   by the budget and requests refused by the circuit breaker, with per server its active
//!   health (`up`), the workers that passively ejected it now, attempts, failures and ejections.
//! - `GET /metrics`: the Prometheus text format (OpenMetrics 1.0 when `Accept` asks for
//!   `application/openmetrics-text`): requests and latency per route, connections, upstreams,
//!   reloads, rate limits, WAF blocks, cache results, TLS handshakes (see [`crate::metrics`]).
//! - `POST /purge?key=URI`, `?prefix=URI-PREFIX` or `?tag=TAG`: remove from the response
//!   cache of every core the objects stored under that key URI (`http://host/path?query`, as
//!   normalised by the cache), under key URIs starting with the prefix, or tagged so by
//!   `Surrogate-Key`/`Cache-Tag`; `200` with `{"purged":N}` once every core has done it.
//! - `POST /reload`: re-read and compile the configuration and reload it on every core; `200`
//!   with `{"generation":N}` once every core runs generation N, `422` with the diagnostics as
//!   text otherwise (the running configuration is kept).
//!
//! Who may call it (`docs/operations.md`, "Security model"), checked in this order:
//!
//! 1. the peer: a loopback address over TCP (403 otherwise); over a unix socket, whoever may
//!    open the socket file, which is created with mode 0600;
//! 2. over TCP, `Host` names a loopback address or `localhost` (421 otherwise), which defeats
//!    DNS rebinding;
//! 3. no `Origin` header and no `Sec-Fetch-Site` other than `same-origin` or `none` (403): the
//!    endpoint serves no page, so a request that carries them comes from a web page;
//! 4. with `token_file`, `Authorization: Bearer <token>` (401 otherwise), compared in constant
//!    time; the file is read at start and again after each reload of the configuration;
//! 5. a request other than `GET` or `HEAD` carries `X-Bext-Admin` (403 otherwise): a header no cross-site form or simple
//!    `fetch` can send without a CORS preflight, which this endpoint never grants.
//!
//! The accepting thread hands each connection to a thread of its own (at most
//! [`CLIENTS_MAX`] at once; more are answered 503 at once), so a slow or silent client cannot
//! hold the endpoint: the request must arrive within [`REQUEST_DEADLINE`] and the answer is
//! written under the same timeout. One request per connection. Reloads are serialised by the
//! engine ([`Control::reload`]).

use crate::server::Control;
use socket2::Socket;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Longest request head the admin endpoint reads.
const HEAD_MAX: usize = 8 * 1024;
/// Longest request body it reads (and discards): its requests carry no body.
const BODY_MAX: usize = 64 * 1024;
/// The whole request must arrive within this, and each write of the answer must complete
/// within it, so a slow client is dropped rather than served at its pace.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(2);
/// Connections served at once; one more is answered 503 and closed.
pub const CLIENTS_MAX: usize = 16;

/// Where the admin endpoint listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminAddr {
    /// A loopback TCP address.
    Tcp(SocketAddr),
    /// A unix socket path.
    Unix(PathBuf),
}

impl std::fmt::Display for AdminAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminAddr::Tcp(a) => write!(f, "{a}"),
            AdminAddr::Unix(p) => write!(f, "{}", p.display()),
        }
    }
}

/// How to serve the admin endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminOptions {
    pub addr: AdminAddr,
    /// The file holding the bearer token callers must present (see
    /// [`bext_ir::read_admin_token`]); `None`: no token.
    pub token_file: Option<PathBuf>,
}

/// A running admin endpoint; stopped when dropped (a unix socket file it created is removed).
pub struct AdminServer {
    addr: AdminAddr,
    listener: Arc<Socket>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// The (device, inode) of the socket file it created: removed at stop only if it is still
    /// that file.
    socket_file: Option<(u64, u64)>,
}

impl AdminServer {
    /// Bind `opts.addr` (a loopback address or a unix socket path), read the token file, and
    /// serve `control` until dropped.
    pub fn start(opts: AdminOptions, control: Arc<Control>) -> std::io::Result<AdminServer> {
        let auth = match &opts.token_file {
            Some(f) => {
                let token = bext_ir::read_admin_token(f).map_err(|why| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        format!("admin token file {}: {why}", f.display()),
                    )
                })?;
                let auth = Arc::new(Auth {
                    file: f.clone(),
                    token: Mutex::new(token),
                });
                let reread = auth.clone();
                control.on_reload(Box::new(move |_| reread.reread()));
                Some(auth)
            }
            None => None,
        };
        let (listener, addr, socket_file) = match &opts.addr {
            AdminAddr::Tcp(a) => {
                if !a.ip().is_loopback() {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::PermissionDenied,
                        "the admin endpoint listens on loopback addresses or a unix socket only",
                    ));
                }
                let l = std::net::TcpListener::bind(a)?;
                let actual = l.local_addr()?;
                (Socket::from(l), AdminAddr::Tcp(actual), None)
            }
            AdminAddr::Unix(p) => {
                let (l, id) = bind_unix(p)?;
                (Socket::from(l), AdminAddr::Unix(p.clone()), Some(id))
            }
        };
        let listener = Arc::new(listener);
        let stop = Arc::new(AtomicBool::new(false));
        let ctx = Arc::new(Ctx {
            control,
            auth,
            tcp: matches!(addr, AdminAddr::Tcp(_)),
        });
        let (l, flag) = (listener.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("bext-admin".into())
            .spawn(move || accept_loop(&l, &flag, &ctx));
        let thread = match thread {
            Ok(t) => t,
            Err(e) => {
                remove_socket_file(&addr, socket_file);
                return Err(e);
            }
        };
        Ok(AdminServer {
            addr,
            listener,
            stop,
            thread: Some(thread),
            socket_file,
        })
    }

    /// The address served (with the port chosen for port 0).
    pub fn addr(&self) -> &AdminAddr {
        &self.addr
    }

    /// The TCP address served; `None` on a unix socket.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self.addr {
            AdminAddr::Tcp(a) => Some(a),
            AdminAddr::Unix(_) => None,
        }
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Shutting a listening socket down wakes its blocking accept (with EINVAL) on Linux,
        // for TCP and unix sockets alike; the loop sees the flag and returns.
        let _ = self.listener.shutdown(std::net::Shutdown::Read);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        remove_socket_file(&self.addr, self.socket_file);
    }
}

/// Remove the socket file at `addr` if it is still the one this server created.
fn remove_socket_file(addr: &AdminAddr, created: Option<(u64, u64)>) {
    if let (AdminAddr::Unix(p), Some(id)) = (addr, created) {
        if std::fs::symlink_metadata(p).is_ok_and(|m| (m.dev(), m.ino()) == id) {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Bind a unix socket at `path` that only this user can connect to.
///
/// A socket file left by a bext that is gone (nobody accepts on it) is replaced; one that is
/// served is refused, and so is any other kind of file. The socket is bound inside a private
/// directory (mode 0700) next to `path`, set to mode 0600, then renamed onto `path`: there is
/// no moment at which another user could connect, and no process-wide umask to change.
/// Returns the listener and the (device, inode) of the socket file.
fn bind_unix(path: &Path) -> std::io::Result<(UnixListener, (u64, u64))> {
    use std::io::{Error, ErrorKind};
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => match UnixStream::connect(path) {
            Ok(_) => {
                return Err(Error::new(
                    ErrorKind::AddrInUse,
                    format!("{} is served by another process", path.display()),
                ))
            }
            // Nobody listens: a stale socket file, replaced below.
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {}
            Err(e) => return Err(e),
        },
        Ok(_) => {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let private = dir.join(format!(".bext-admin.{}", std::process::id()));
    // Left behind by an earlier process with the same pid that was killed mid-way.
    let _ = std::fs::remove_dir_all(&private);
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().mode(0o700).create(&private)?;
    }
    let inner = private.join("s");
    let bound = (|| {
        let l = UnixListener::bind(&inner)?;
        std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(0o600))?;
        let m = std::fs::symlink_metadata(&inner)?;
        std::fs::rename(&inner, path)?;
        Ok((l, (m.dev(), m.ino())))
    })();
    let _ = std::fs::remove_dir_all(&private);
    bound
}

/// What every connection thread shares.
struct Ctx {
    control: Arc<Control>,
    auth: Option<Arc<Auth>>,
    /// Served over TCP (the peer and `Host` are checked); over a unix socket the file mode
    /// decides who connects.
    tcp: bool,
}

/// The bearer token and where it comes from.
struct Auth {
    file: PathBuf,
    token: Mutex<String>,
}

impl Auth {
    /// After a reload: read the file again (the compiler checked it for that reload). A file
    /// that became unusable since keeps the previous token, with a message in the log.
    fn reread(&self) {
        match bext_ir::read_admin_token(&self.file) {
            Ok(token) => *self.token.lock().unwrap_or_else(|e| e.into_inner()) = token,
            Err(why) => eprintln!(
                "bext: admin token file {}: {why}; the previous token is kept",
                self.file.display()
            ),
        }
    }

    /// Whether `given` is the token, compared in constant time.
    fn accepts(&self, given: &str) -> bool {
        let token = self.token.lock().unwrap_or_else(|e| e.into_inner());
        constant_time_eq(given.as_bytes(), token.as_bytes())
    }
}

/// A connection to the admin endpoint.
enum Conn {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Conn {
    fn set_timeouts(&self, read: Duration, write: Duration) {
        let _ = match self {
            Conn::Tcp(s) => s
                .set_read_timeout(Some(read))
                .and(s.set_write_timeout(Some(write))),
            Conn::Unix(s) => s
                .set_read_timeout(Some(read))
                .and(s.set_write_timeout(Some(write))),
        };
    }

    /// Over TCP, whether the peer is a loopback address; over a unix socket, always.
    fn peer_is_local(&self) -> bool {
        match self {
            Conn::Tcp(s) => s.peer_addr().is_ok_and(|p| p.ip().is_loopback()),
            Conn::Unix(_) => true,
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.read(buf),
            Conn::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.write(buf),
            Conn::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn accept_loop(listener: &Socket, stop: &AtomicBool, ctx: &Arc<Ctx>) {
    let mut clients: Vec<JoinHandle<()>> = Vec::new();
    loop {
        let accepted = listener.accept();
        if stop.load(Ordering::Acquire) {
            break;
        }
        let sock = match accepted {
            Ok((s, _)) => s,
            Err(_) => {
                // Out of descriptors or memory: wait rather than spin.
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let mut conn = if ctx.tcp {
            Conn::Tcp(sock.into())
        } else {
            Conn::Unix(sock.into())
        };
        clients.retain(|h| !h.is_finished());
        if clients.len() >= CLIENTS_MAX {
            conn.set_timeouts(REQUEST_DEADLINE, REQUEST_DEADLINE);
            respond(
                &mut conn,
                503,
                &[],
                "text/plain",
                "busy: too many admin connections\n",
            );
            continue;
        }
        let ctx = ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("bext-admin-conn".into())
            .spawn(move || handle(conn, &ctx));
        if let Ok(h) = spawned {
            clients.push(h);
        }
    }
    // Each is bounded by the request deadline (and a reload by the engine's own deadline).
    for h in clients {
        let _ = h.join();
    }
}

/// A parsed admin request: what the endpoint looks at.
#[derive(Debug, Default, PartialEq, Eq)]
struct Request {
    method: String,
    path: String,
    /// The query, undecoded, without its `?`.
    query: String,
    body_len: usize,
    host: Option<String>,
    /// An `Origin` header was sent.
    origin: bool,
    sec_fetch_site: Option<String>,
    authorization: Option<String>,
    /// The `X-Bext-Admin` header was sent.
    admin_header: bool,
    /// The `Accept` field lines, joined with `, `.
    accept: Option<String>,
}

/// Parse a request head (everything before the blank line). `None` for anything malformed,
/// including a repeated `Host`, `Content-Length` or `Authorization`.
fn parse_head(head: &str) -> Option<Request> {
    let mut lines = head.split("\r\n");
    let mut parts = lines.next()?.split(' ');
    let method = parts.next()?.to_string();
    let target = parts.next()?;
    let version = parts.next()?;
    if parts.next().is_some() || !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return None;
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut req = Request {
        method,
        path: path.to_string(),
        query: query.to_string(),
        ..Request::default()
    };
    let mut content_length = None;
    for line in lines {
        let (name, value) = line.split_once(':')?;
        let value = value.trim();
        let once = |slot: &mut Option<String>| match slot {
            Some(_) => None,
            None => {
                *slot = Some(value.to_string());
                Some(())
            }
        };
        match name.to_ascii_lowercase().as_str() {
            "transfer-encoding" => return None,
            "content-length" => once(&mut content_length)?,
            "host" => once(&mut req.host)?,
            "authorization" => once(&mut req.authorization)?,
            "origin" => req.origin = true,
            "sec-fetch-site" => req.sec_fetch_site = Some(value.to_ascii_lowercase()),
            "x-bext-admin" => req.admin_header = true,
            "accept" => match &mut req.accept {
                Some(a) => {
                    a.push_str(", ");
                    a.push_str(value);
                }
                None => req.accept = Some(value.to_string()),
            },
            _ => {}
        }
    }
    if let Some(n) = content_length {
        req.body_len = n.parse().ok()?;
    }
    Some(req)
}

/// Why a request was not read: the status to answer and a short reason.
type Refusal = (u16, &'static str);

fn read_request(s: &mut Conn) -> Result<Request, Refusal> {
    let deadline = Instant::now() + REQUEST_DEADLINE;
    let timed_out: Refusal = (408, "request not received in time\n");
    // One deadline for the whole request: a client sending a byte at a time cannot stretch it.
    let read = |s: &mut Conn, buf: &mut [u8]| -> Result<usize, Refusal> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timed_out);
        }
        s.set_timeouts(left, REQUEST_DEADLINE);
        match s.read(buf) {
            Ok(0) => Err((400, "bad request\n")),
            Ok(n) => Ok(n),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Err(timed_out)
            }
            Err(_) => Err((400, "bad request\n")),
        }
    };
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > HEAD_MAX {
            return Err((431, "request head too large\n"));
        }
        let n = read(s, &mut chunk)?;
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| (400, "bad request\n"))?;
    let req = parse_head(head).ok_or((400, "bad request\n"))?;
    if req.body_len > BODY_MAX {
        return Err((413, "request body too large\n"));
    }
    let mut have = buf.len() - end - 4;
    while have < req.body_len {
        have += read(s, &mut chunk)?;
    }
    Ok(req)
}

/// Whether `host` (a `Host` header value) names a loopback address: `localhost`, an address
/// in `127.0.0.0/8` or `[::1]`, each with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        // [v6] or [v6]:port
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return false;
        }
        return v6
            .parse::<std::net::Ipv6Addr>()
            .is_ok_and(|a| a.is_loopback());
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if is_port(port) => name,
            Some(_) => return false,
            None => host,
        }
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|a| IpAddr::V4(a).is_loopback())
}

fn is_port(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
}

/// `a == b` in a time that depends on their lengths only, not on where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

/// The first check `req` fails, as the status and body to answer; `None` when it may be served.
fn refuse(req: &Request, ctx: &Ctx) -> Option<(u16, &'static str)> {
    if ctx.tcp && !req.host.as_deref().is_some_and(is_loopback_host) {
        return Some((
            421,
            "the Host header must name a loopback address (localhost, 127.0.0.1, [::1])\n",
        ));
    }
    if req.origin {
        return Some((
            403,
            "requests from web pages (with an Origin header) are refused\n",
        ));
    }
    if req
        .sec_fetch_site
        .as_deref()
        .is_some_and(|s| s != "same-origin" && s != "none")
    {
        return Some((403, "cross-site requests are refused\n"));
    }
    if let Some(auth) = &ctx.auth {
        // The scheme is case-insensitive (RFC 9110, section 11.1).
        let given = req
            .authorization
            .as_deref()
            .and_then(|a| a.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim());
        if !given.is_some_and(|g| auth.accepts(g)) {
            return Some((401, "a valid `Authorization: Bearer <token>` is required\n"));
        }
    }
    if !matches!(req.method.as_str(), "GET" | "HEAD") && !req.admin_header {
        return Some((
            403,
            "a request other than GET requires the header `X-Bext-Admin: 1`\n",
        ));
    }
    None
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        421 => "Misdirected Request",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Unprocessable Content",
    }
}

fn respond(s: &mut Conn, status: u16, extra: &[&str], content_type: &str, body: &str) {
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n",
        reason(status),
        body.len()
    );
    for h in extra {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let _ = s.write_all(head.as_bytes());
    let _ = s.write_all(body.as_bytes());
}

fn handle(mut s: Conn, ctx: &Ctx) {
    s.set_timeouts(REQUEST_DEADLINE, REQUEST_DEADLINE);
    if !s.peer_is_local() {
        respond(&mut s, 403, &[], "text/plain", "loopback clients only\n");
        return;
    }
    let req = match read_request(&mut s) {
        Ok(r) => r,
        Err((status, body)) => {
            respond(&mut s, status, &[], "text/plain", body);
            return;
        }
    };
    if let Some((status, body)) = refuse(&req, ctx) {
        let challenge: &[&str] = if status == 401 {
            &["WWW-Authenticate: Bearer realm=\"bext-admin\""]
        } else {
            &[]
        };
        respond(&mut s, status, challenge, "text/plain", body);
        return;
    }
    let control = &ctx.control;
    match (req.method.as_str(), req.path.as_str()) {
        ("GET" | "HEAD", "/status") => {
            respond(&mut s, 200, &[], "application/json", &status_json(control));
        }
        ("GET" | "HEAD", "/metrics") => {
            let format = crate::metrics::Format::from_accept(req.accept.as_deref());
            let body = crate::metrics::render(&control.metrics(), format);
            respond(&mut s, 200, &[], format.content_type(), &body);
        }
        ("POST", "/reload") => match control.reload_from_source() {
            Ok(g) => {
                eprintln!("bext: reloaded: generation {g}");
                // With what the reload changed for routing, when the source says.
                let body = match control.take_reload_note() {
                    Some(diff) => format!("{{\"generation\":{g},\"diff\":{diff}}}\n"),
                    None => format!("{{\"generation\":{g}}}\n"),
                };
                respond(&mut s, 200, &[], "application/json", &body);
            }
            Err(m) => {
                eprintln!("bext: reload failed; the running configuration is kept:\n{m}");
                let mut text = m;
                if !text.ends_with('\n') {
                    text.push('\n');
                }
                respond(&mut s, 422, &[], "text/plain; charset=utf-8", &text);
            }
        },
        ("POST", "/purge") => match purge_of(&req.query) {
            Some(p) => match control.purge(p) {
                Ok(n) => respond(
                    &mut s,
                    200,
                    &[],
                    "application/json",
                    &format!("{{\"purged\":{n}}}\n"),
                ),
                Err(m) => respond(&mut s, 503, &[], "text/plain", &format!("{m}\n")),
            },
            None => respond(
                &mut s,
                400,
                &[],
                "text/plain",
                "name what to purge: ?key=URI, ?prefix=URI-PREFIX or ?tag=TAG\n",
            ),
        },
        (_, "/status" | "/metrics" | "/reload" | "/purge") => {
            respond(&mut s, 405, &[], "text/plain", "method not allowed\n")
        }
        _ => respond(
            &mut s,
            404,
            &[],
            "text/plain",
            "not found (GET /status, GET /metrics, POST /reload, POST /purge)\n",
        ),
    }
}

/// The purge a `/purge` query names: exactly one of `key`, `prefix`, `tag`, percent-decoded.
fn purge_of(query: &str) -> Option<crate::handler::cache::Purge> {
    use crate::handler::cache::Purge;
    let mut found = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=')?;
        let v = percent_decode(v)?;
        let p = match k {
            "key" => Purge::Key(v),
            "prefix" => Purge::Prefix(v),
            "tag" => Purge::Tag(v),
            _ => return None,
        };
        if found.replace(p).is_some() {
            return None;
        }
    }
    found.filter(|p| match p {
        Purge::Key(v) | Purge::Prefix(v) | Purge::Tag(v) => !v.is_empty(),
    })
}

/// `%XX` and `+` (a space) decoded; `None` for a bad escape or text that is not UTF-8.
fn percent_decode(v: &str) -> Option<String> {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
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
            "{{\"worker\":{i},\"generation\":{},\"connections\":{},\"requests\":{},\"rate_limited\":{},\"upstream_stale_closed\":{},\"upstream_surplus_closed\":{},\"log_dropped\":{},\"spans_exported\":{},\"spans_dropped\":{},\"spans_failed\":{},\"generations\":[",
            w.generation,
            w.connections,
            w.requests,
            w.rate_limited,
            w.upstream_stale_closed,
            w.upstream_surplus_closed,
            w.log_dropped,
            w.spans_exported,
            w.spans_dropped,
            w.spans_failed
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
            ",\"requests\":{},\"failures\":{},\"retries\":{},\"budget_exhausted\":{},\"breaker_open\":{},\"breaker\":{{\"open_connections_on_workers\":{},\"open_pending_on_workers\":{},\"active_connections\":{},\"pending_requests\":{}}},\"servers\":[",
            u.requests,
            u.failures,
            u.retries,
            u.budget_exhausted,
            u.breaker_open,
            u.breaker_open_connections,
            u.breaker_open_pending,
            u.active_connections,
            u.pending_requests
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
    out.push(']');
    crate::tls::status_json(&mut out);
    waf_json(&mut out, &control.metrics());
    stages_json(&mut out);
    out.push_str("}\n");
    out
}

/// `,"waf":{"blocked":N,"would_block":N,"rules":{"ID":N,…}}`: requests the WAF refused (on
/// this server, as `bext_waf_blocked_total`), requests a WAF in detection mode would have
/// refused, and per rule id the requests of either kind it fired in (the WAF stage's figures,
/// per process).
fn waf_json(out: &mut String, s: &crate::metrics::Snapshot) {
    use crate::metrics::{WAF_RULE_FAMILY, WAF_WOULD_BLOCK_FAMILY};
    use std::fmt::Write as _;
    let would = (s.stages.iter())
        .find(|c| c.name == WAF_WOULD_BLOCK_FAMILY)
        .map_or(0, |c| c.value);
    let _ = write!(
        out,
        ",\"waf\":{{\"blocked\":{},\"would_block\":{would},\"rules\":{{",
        s.waf_blocked
    );
    let rules = (s.stages.iter()).filter(|c| c.name == WAF_RULE_FAMILY);
    for (i, c) in rules.enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_str(out, c.label.as_ref().map_or("", |(_, v)| v.as_str()));
        let _ = write!(out, ":{}", c.value);
    }
    out.push_str("}}");
}

/// `,"stages":[…]`: the figures stage families export (the plugins' counters and metrics),
/// each `{"name":…,"value":…}` with its label when it has one.
fn stages_json(out: &mut String) {
    use std::fmt::Write as _;
    out.push_str(",\"stages\":[");
    for (i, c) in bext_stage::hooks::counters().iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"name\":");
        json_str(out, c.name);
        if let Some((k, v)) = &c.label {
            out.push(',');
            json_str(out, k);
            out.push(':');
            json_str(out, v);
        }
        let _ = write!(out, ",\"value\":{}}}", c.value);
    }
    out.push(']');
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
                ..Request::default()
            })
        };
        let with = |f: fn(&mut Request)| {
            let mut r = Request {
                method: "POST".into(),
                path: "/reload".into(),
                ..Request::default()
            };
            f(&mut r);
            Some(r)
        };
        let table: &[(&str, Option<Request>)] = &[
            (
                "GET /status HTTP/1.1\r\nHost: x",
                Some(Request {
                    host: Some("x".into()),
                    ..ok("GET", "/status", 0).unwrap()
                }),
            ),
            (
                "POST /purge?tag=a HTTP/1.0",
                Some(Request {
                    query: "tag=a".into(),
                    ..ok("POST", "/purge", 0).unwrap()
                }),
            ),
            (
                "POST /reload HTTP/1.1\r\nContent-Length: 3",
                ok("POST", "/reload", 3),
            ),
            (
                "POST /reload HTTP/1.1\r\nOrigin: null\r\nx-bext-admin: 1",
                with(|r| {
                    r.origin = true;
                    r.admin_header = true;
                }),
            ),
            (
                "POST /reload HTTP/1.1\r\nSec-Fetch-Site: Cross-Site\r\nAuthorization: Bearer t",
                with(|r| {
                    r.sec_fetch_site = Some("cross-site".into());
                    r.authorization = Some("Bearer t".into());
                }),
            ),
            ("POST /reload HTTP/1.1\r\nTransfer-Encoding: chunked", None),
            ("POST /reload HTTP/1.1\r\nContent-Length: x", None),
            (
                "POST /reload HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 0",
                None,
            ),
            (
                "GET /status HTTP/1.1\r\nHost: localhost\r\nHost: evil.test",
                None,
            ),
            (
                "GET /status HTTP/1.1\r\nAuthorization: a\r\nAuthorization: b",
                None,
            ),
            ("GET status HTTP/1.1", None),
            ("GET /status", None),
            ("GET /status HTTP/1.1\r\nno colon", None),
        ];
        for (head, want) in table {
            assert_eq!(&parse_head(head), want, "{head:?}");
        }
    }

    #[test]
    fn purge_queries_name_exactly_one_thing() {
        use crate::handler::cache::Purge;
        let table: &[(&str, Option<Purge>)] = &[
            (
                "key=http%3A%2F%2Fa.test%2Fx",
                Some(Purge::Key("http://a.test/x".into())),
            ),
            (
                "prefix=http://a.test/p/",
                Some(Purge::Prefix("http://a.test/p/".into())),
            ),
            ("tag=red+blue", Some(Purge::Tag("red blue".into()))),
            ("tag=a&tag=b", None),
            ("key=", None),
            ("colour=red", None),
            ("tag=%zz", None),
            ("", None),
        ];
        for (q, want) in table {
            assert_eq!(&purge_of(q), want, "{q}");
        }
    }

    #[test]
    fn only_loopback_hosts_are_accepted() {
        let table = [
            ("localhost", true),
            ("LocalHost:9901", true),
            ("127.0.0.1", true),
            ("127.0.0.1:9901", true),
            ("127.1.2.3:80", true),
            ("[::1]", true),
            ("[::1]:9901", true),
            ("", false),
            ("localhost.", false),
            ("localhost:", false),
            ("localhost:x", false),
            ("evil.test", false),
            ("evil.test:9901", false),
            ("127.0.0.1.evil.test", false),
            ("localhost.evil.test", false),
            ("10.0.0.1:9901", false),
            ("0.0.0.0:9901", false),
            ("[::]:9901", false),
            ("[::ffff:127.0.0.1]:9901", false),
            ("[::1]x", false),
            ("::1", false),
        ];
        for (host, want) in table {
            assert_eq!(is_loopback_host(host), want, "{host:?}");
        }
    }

    #[test]
    fn tokens_compare_equal_only_when_equal() {
        let table: &[(&[u8], &[u8], bool)] = &[
            (b"secret", b"secret", true),
            (b"secret", b"secreT", false),
            (b"secret", b"secret2", false),
            (b"secret", b"", false),
            (b"", b"", true),
        ];
        for (a, b, want) in table {
            assert_eq!(constant_time_eq(a, b), *want);
            assert_eq!(constant_time_eq(b, a), *want);
        }
    }
}
