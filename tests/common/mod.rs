//! Shared helpers of the integration tests: bext started in-process on ephemeral ports, a raw
//! HTTP/1.1 response reader (to see exact framing), and small scripted upstreams.
#![allow(dead_code)]

use bext_ir as ir;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// The driver the tests run on: `BEXT_TEST_DRIVER` (`auto`, `epoll` or `io-uring`), `auto`
/// (bext's default) when unset. CI runs the suite once on each.
pub fn driver() -> bext::DriverChoice {
    match std::env::var("BEXT_TEST_DRIVER") {
        Ok(v) if !v.is_empty() => v
            .parse()
            .unwrap_or_else(|e| panic!("BEXT_TEST_DRIVER: {e}")),
        _ => bext::DriverChoice::Auto,
    }
}

/// The same choice as a `--driver` argument for a spawned `bext`.
pub fn driver_arg() -> &'static str {
    match driver() {
        bext::DriverChoice::Auto => "auto",
        bext::DriverChoice::Epoll => "epoll",
        bext::DriverChoice::IoUring => "io-uring",
    }
}

pub fn opts() -> bext::StartOptions {
    bext::StartOptions {
        workers: Some(1),
        driver: driver(),
        pin: false,
    }
}

pub fn start(config: ir::Config) -> bext::Server {
    bext::start(config, opts()).expect("bext starts")
}

pub fn addr(s: &bext::Server) -> SocketAddr {
    s.local_addrs()[0]
}

pub fn loc() -> ir::Loc {
    ir::Loc::default()
}

pub fn route(path: ir::PathMatch, action: ir::Action) -> ir::Route {
    ir::Route::new(path, action, loc())
}

pub fn respond(status: u16, body: &str) -> ir::Action {
    ir::Action::Respond {
        status,
        body: body.into(),
        content_type: None,
    }
}

/// A configuration with one default site holding `routes`, listening on an ephemeral port.
pub fn site(routes: Vec<ir::Route>) -> ir::Config {
    ir::Config {
        listeners: vec![ir::Listener {
            addr: "127.0.0.1:0".into(),
            tls: None,
            http3: false,
            quic: None,
            at: loc(),
        }],
        sites: vec![ir::Site {
            hosts: vec![],
            routes,
            paths: Default::default(),
            redirect_https: None,
            hsts: None,
            at: loc(),
        }],
        ..ir::Config::default()
    }
}

/// bext proxying everything to `upstream`.
pub fn proxy_to(upstream: SocketAddr) -> ir::Config {
    bext::proxy_config("127.0.0.1:0", &[upstream.to_string()])
}

/// The built-in origin (echo for bodies, `body_bytes` otherwise), in-process.
pub fn origin(body_bytes: u64) -> bext::Server {
    bext::start_origin("127.0.0.1:0", body_bytes, opts()).expect("origin starts")
}

pub fn connect(a: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(a).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The body ended as its framing says (false: the connection closed early).
    pub complete: bool,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Read one response (`head_request`: no body follows). Interim 1xx responses are returned
/// like any other; call again for the final one.
pub fn read_response(r: &mut BufReader<TcpStream>, head_request: bool) -> Resp {
    let mut line = String::new();
    r.read_line(&mut line).expect("status line");
    assert!(line.starts_with("HTTP/1.1 "), "status line: {line:?}");
    let status: u16 = line[9..12].parse().unwrap();
    let mut headers = Vec::new();
    loop {
        let mut l = String::new();
        r.read_line(&mut l).expect("field line");
        let l = l.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            break;
        }
        let (n, v) = l.split_once(':').expect("field");
        headers.push((n.to_string(), v.trim().to_string()));
    }
    let mut resp = Resp {
        status,
        headers,
        body: Vec::new(),
        complete: true,
    };
    if head_request || (100..200).contains(&status) || status == 204 || status == 304 {
        return resp;
    }
    if let Some(cl) = resp.header("content-length") {
        let n: usize = cl.parse().unwrap();
        let mut body = vec![0; n];
        let mut got = 0;
        while got < n {
            match r.read(&mut body[got..]) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Ok(0) | Err(_) => break,
                Ok(k) => got += k,
            }
        }
        body.truncate(got);
        resp.complete = got == n;
        resp.body = body;
    } else if resp
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        resp.complete = false;
        loop {
            let mut size = String::new();
            if r.read_line(&mut size).unwrap_or(0) == 0 {
                break;
            }
            let n = usize::from_str_radix(size.trim_end().split(';').next().unwrap(), 16)
                .expect("chunk size");
            if n == 0 {
                let mut end = String::new();
                let _ = r.read_line(&mut end);
                resp.complete = end == "\r\n";
                break;
            }
            let mut chunk = vec![0; n + 2];
            if r.read_exact(&mut chunk).is_err() {
                break;
            }
            resp.body.extend_from_slice(&chunk[..n]);
        }
    } else {
        let _ = r.read_to_end(&mut resp.body);
    }
    resp
}

/// Send `req` on a new connection and read one response.
pub fn exchange(a: SocketAddr, req: &[u8]) -> (Resp, BufReader<TcpStream>) {
    let mut s = connect(a);
    s.write_all(req).unwrap();
    let mut r = BufReader::new(s);
    let resp = read_response(&mut r, req.starts_with(b"HEAD "));
    (resp, r)
}

/// True when the server closed the connection (no further bytes).
pub fn closed(r: &mut BufReader<TcpStream>) -> bool {
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).is_ok() && rest.is_empty()
}

/// An address that refuses connections for as long as the returned socket lives: the port is
/// bound but never listened on, so no other test (and no outgoing connection) can take it.
pub fn refusing() -> (SocketAddr, socket2::Socket) {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let a = s.local_addr().unwrap().as_socket().unwrap();
    (a, s)
}

/// A port nothing else can take while the returned socket lives, that bext can still listen on:
/// the socket is bound with SO_REUSEPORT (as bext's listeners are) but never listened on, so
/// once bext stops listening there, connections to the port are refused.
pub fn reserved() -> (SocketAddr, socket2::Socket) {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.set_reuse_port(true).unwrap();
    s.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let a = s.local_addr().unwrap().as_socket().unwrap();
    (a, s)
}

/// A scripted upstream: each accepted connection is handed to `handler` on its own thread.
pub fn upstream<F>(handler: F) -> SocketAddr
where
    F: Fn(TcpStream) + Send + Sync + 'static,
{
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    let handler = std::sync::Arc::new(handler);
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let h = handler.clone();
            std::thread::spawn(move || h(s));
        }
    });
    a
}

/// One HTTP/1.1 message from `r`: its head (up to the blank line) and a Content-Length body;
/// `None` when the peer closed first.
pub fn read_message(r: &mut impl BufRead) -> Option<(String, Vec<u8>)> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let len = head
        .lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some((head, body))
}

/// Read a request head (up to the blank line) from a raw stream.
pub fn read_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(1) => head.push(b[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// The resident set size of this process, in KiB.
pub fn rss_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}
