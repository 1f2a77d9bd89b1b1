//! The floors and the benchmark origin: the least work a server on this runtime can do.
//!
//! - [`respond_floor`] answers every request with canned bytes. It frames requests only by
//!   their blank line (bodiless requests), parses nothing and allocates nothing per request:
//!   the cost below which no HTTP responder on monoio can go. Efficiency = floor / bext.
//! - [`relay_floor`] pairs each client connection with its own origin connection and copies
//!   bytes both ways without looking at them: the floor for a keep-alive proxy.
//! - [`origin`] answers every request with a fixed-size body. It frames request bodies by
//!   `Content-Length` so that POSTs work, and is the same origin behind every proxy measured.
//!
//! Each runs `workers` threads, each with its own runtime and `SO_REUSEPORT` listener.

use crate::rt::{block_on, Driver};
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt, Splitable};
use monoio::net::{ListenerOpts, TcpListener, TcpStream};
use std::io;
use std::net::SocketAddr;

const BUF: usize = 64 * 1024;

/// The canned response of the respond floor and the origin: the same head as the peers'
/// equivalent configurations send (status, type, length), and `size` bytes of `x`.
pub fn canned_response(size: usize) -> Vec<u8> {
    let mut r =
        format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {size}\r\n\r\n")
            .into_bytes();
    r.resize(r.len() + size, b'x');
    r
}

/// Runs `serve` on `workers` threads until the process is killed.
fn run_workers<F, Fut>(
    listen: SocketAddr,
    workers: usize,
    driver: Driver,
    serve: F,
) -> io::Result<()>
where
    F: Fn(TcpStream) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let mut threads = Vec::new();
    for _ in 0..workers.max(1) {
        let serve = serve.clone();
        threads.push(std::thread::spawn(move || -> io::Result<()> {
            block_on(driver, || accept_loop(listen, serve))?
        }));
    }
    for t in threads {
        t.join()
            .map_err(|_| io::Error::other("a worker thread panicked"))??;
    }
    Ok(())
}

async fn accept_loop<F, Fut>(listen: SocketAddr, serve: F) -> io::Result<()>
where
    F: Fn(TcpStream) -> Fut,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let opts = ListenerOpts::new().reuse_port(true).backlog(4096);
    let listener = TcpListener::bind_with_config(listen, &opts)?;
    loop {
        match listener.accept().await {
            Ok((s, _)) => {
                let _ = s.set_nodelay(true);
                monoio::spawn(serve(s));
            }
            // Out of descriptors or a reset before accept: keep serving the rest.
            Err(_) => monoio::time::sleep(std::time::Duration::from_millis(1)).await,
        }
    }
}

/// The canned-responder floor.
pub fn respond_floor(
    listen: SocketAddr,
    workers: usize,
    driver: Driver,
    body: usize,
) -> io::Result<()> {
    let response = canned_response(body);
    run_workers(listen, workers, driver, move |s| {
        respond_conn(s, response.clone())
    })
}

async fn respond_conn(mut s: TcpStream, response: Vec<u8>) {
    let mut buf = Vec::with_capacity(BUF);
    let mut out = Vec::with_capacity(response.len() * 4);
    // Bytes of a blank-line terminator matched at the end of the previous read.
    let mut matched = 0usize;
    loop {
        buf.clear();
        let (res, b) = s.read(buf).await;
        buf = b;
        match res {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut count = 0;
        for &byte in buf.iter() {
            matched = match (matched, byte) {
                (0, b'\r') | (2, b'\r') => matched + 1,
                (1, b'\n') => 2,
                (3, b'\n') => {
                    count += 1;
                    0
                }
                (_, b'\r') => 1,
                _ => 0,
            };
        }
        if count == 0 {
            continue;
        }
        out.clear();
        for _ in 0..count {
            out.extend_from_slice(&response);
        }
        let (res, o) = s.write_all(out).await;
        out = o;
        if res.is_err() {
            return;
        }
    }
}

/// The byte-relay floor: one origin connection per client connection, bytes copied both ways.
pub fn relay_floor(
    listen: SocketAddr,
    to: SocketAddr,
    workers: usize,
    driver: Driver,
) -> io::Result<()> {
    run_workers(listen, workers, driver, move |s| relay_conn(s, to))
}

async fn relay_conn(client: TcpStream, to: SocketAddr) {
    let Ok(upstream) = TcpStream::connect_addr(to).await else {
        return;
    };
    let _ = upstream.set_nodelay(true);
    let (mut cr, mut cw) = client.into_split();
    let (mut ur, mut uw) = upstream.into_split();
    let up = monoio::spawn(async move {
        copy(&mut cr, &mut uw).await;
    });
    copy(&mut ur, &mut cw).await;
    drop(up);
}

async fn copy<R: AsyncReadRent, W: AsyncWriteRentExt>(r: &mut R, w: &mut W) {
    let mut buf = Vec::with_capacity(BUF);
    loop {
        buf.clear();
        let (res, b) = r.read(buf).await;
        buf = b;
        match res {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let (res, b) = w.write_all(buf).await;
        buf = b;
        if res.is_err() {
            return;
        }
    }
}

/// The benchmark origin: every request gets `body` bytes of `x` with `Content-Length`.
pub fn origin(listen: SocketAddr, workers: usize, driver: Driver, body: usize) -> io::Result<()> {
    let response = canned_response(body);
    run_workers(listen, workers, driver, move |s| {
        origin_conn(s, response.clone())
    })
}

async fn origin_conn(mut s: TcpStream, response: Vec<u8>) {
    let mut buf: Vec<u8> = Vec::with_capacity(BUF);
    let mut out: Vec<u8> = Vec::with_capacity(response.len());
    // Request body bytes still to skip from the previous read.
    let mut skip = 0usize;
    loop {
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(BUF);
        }
        let (len, cap) = (buf.len(), buf.capacity());
        let (res, slice) = s.read(buf.slice_mut(len..cap)).await;
        buf = slice.into_inner();
        match res {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        out.clear();
        let mut pos = 0;
        loop {
            if skip > 0 {
                let take = skip.min(buf.len() - pos);
                pos += take;
                skip -= take;
                if skip > 0 {
                    break;
                }
            }
            match request_head(&buf[pos..]) {
                Some(Ok((head_len, body_len))) => {
                    pos += head_len;
                    skip = body_len;
                    out.extend_from_slice(&response);
                }
                Some(Err(())) => {
                    let (_, _) = s
                        .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec())
                        .await;
                    return;
                }
                None => break,
            }
        }
        buf.drain(..pos);
        if !out.is_empty() {
            let (res, o) = s.write_all(out).await;
            out = o;
            if res.is_err() {
                return;
            }
        }
    }
}

/// Length of a complete request head and its `Content-Length`, `None` if incomplete.
/// Chunked request bodies are refused: the benchmarks send `Content-Length` bodies only.
fn request_head(buf: &[u8]) -> Option<Result<(usize, usize), ()>> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let mut body = 0usize;
    for line in buf[..end].split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"content-length") {
            let Some(n) = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok()) else {
                return Some(Err(()));
            };
            body = n;
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return Some(Err(()));
        }
    }
    Some(Ok((end, body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canned_response_is_framed_by_its_length() {
        let r = canned_response(5);
        assert_eq!(
            String::from_utf8(r).unwrap(),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nxxxxx"
        );
    }

    #[test]
    fn origin_frames_request_heads_and_bodies() {
        type Framed = Option<Result<(usize, usize), ()>>;
        let cases: &[(&str, &[u8], Framed)] = &[
            ("incomplete", b"GET / HTTP/1.1\r\nHost: a\r\n", None),
            (
                "get",
                b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
                Some(Ok((27, 0))),
            ),
            (
                "post with length",
                b"POST / HTTP/1.1\r\ncontent-length: 12\r\n\r\nbody",
                Some(Ok((39, 12))),
            ),
            (
                "bad length",
                b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
                Some(Err(())),
            ),
            (
                "chunked refused",
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
                Some(Err(())),
            ),
        ];
        for (name, input, want) in cases {
            assert_eq!(&request_head(input), want, "{name}");
        }
    }
}
