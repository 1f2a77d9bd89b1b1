//! The bare floor: a canned HTTP responder on a plain edge-triggered epoll loop (mio), with no
//! async runtime at all — what an event-driven server written the way nginx is written costs
//! at the least.
//!
//! Per readiness event it reads until a read comes back short (the socket is then drained, so
//! it waits for the next edge without another `recv`), answers every complete request head in
//! what it read with one write, and keeps any unwritten rest for the next writable event. It
//! parses nothing. The runtime floor ([`crate::servers::respond_floor`]) does the same work
//! through monoio, which keeps a socket readable until a read fails with `EAGAIN`: one more
//! `recv` per request. Comparing the two, and both with nginx, says how much of a server's cost
//! is the kernel's, the runtime's and its own.

use crate::servers::canned_response;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use std::io::{self, Read, Write};
use std::net::SocketAddr;

const LISTENER: Token = Token(usize::MAX);
const BUF: usize = 16 * 1024;

struct Conn {
    stream: TcpStream,
    /// Bytes of a blank-line terminator matched at the end of the previous read.
    matched: u8,
    /// Response bytes not yet written (the socket's buffer was full).
    pending: Vec<u8>,
}

/// Serve on `listen` on the calling thread until the process is killed.
pub fn respond_bare(listen: SocketAddr, body: usize) -> io::Result<()> {
    let response = canned_response(body);
    let mut poll = Poll::new()?;
    let mut listener = TcpListener::bind(listen)?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut events = Events::with_capacity(512);
    let mut buf = vec![0u8; BUF];
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for ev in events.iter() {
            if ev.token() == LISTENER {
                accept_all(&listener, &poll, &mut conns, &mut free)?;
                continue;
            }
            let idx = ev.token().0;
            let Some(Some(c)) = conns.get_mut(idx) else {
                continue;
            };
            let alive = (!ev.is_writable() || flush(c)) && serve(c, &mut buf, &response);
            if !alive {
                if let Some(mut c) = conns[idx].take() {
                    let _ = poll.registry().deregister(&mut c.stream);
                }
                free.push(idx);
            }
        }
    }
}

fn accept_all(
    listener: &TcpListener,
    poll: &Poll,
    conns: &mut Vec<Option<Conn>>,
    free: &mut Vec<usize>,
) -> io::Result<()> {
    loop {
        match listener.accept() {
            Ok((mut stream, _)) => {
                let _ = stream.set_nodelay(true);
                let idx = free.pop().unwrap_or_else(|| {
                    conns.push(None);
                    conns.len() - 1
                });
                poll.registry().register(
                    &mut stream,
                    Token(idx),
                    Interest::READABLE | Interest::WRITABLE,
                )?;
                conns[idx] = Some(Conn {
                    stream,
                    matched: 0,
                    pending: Vec::new(),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            // Out of descriptors or a reset before accept: keep serving the rest.
            Err(_) => return Ok(()),
        }
    }
}

/// Read what arrived and answer it; false when the connection is finished.
fn serve(c: &mut Conn, buf: &mut [u8], response: &[u8]) -> bool {
    loop {
        let n = match c.stream.read(buf) {
            Ok(0) => return false,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        };
        let mut count = 0;
        for &byte in &buf[..n] {
            c.matched = match (c.matched, byte) {
                (0, b'\r') | (2, b'\r') => c.matched + 1,
                (1, b'\n') => 2,
                (3, b'\n') => {
                    count += 1;
                    0
                }
                (_, b'\r') => 1,
                _ => 0,
            };
        }
        for _ in 0..count {
            c.pending.extend_from_slice(response);
        }
        if !flush(c) {
            return false;
        }
        // A short read drained the socket: the next bytes bring a new edge.
        if n < buf.len() {
            return true;
        }
    }
}

/// Write pending bytes until done or the socket is full; false on a write error.
fn flush(c: &mut Conn) -> bool {
    let mut done = 0;
    let ok = loop {
        if done == c.pending.len() {
            break true;
        }
        match c.stream.write(&c.pending[done..]) {
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break false,
        }
    };
    c.pending.drain(..done);
    ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};

    /// Pipelined and split requests are each answered once, in order.
    #[test]
    fn answers_each_request_head_once() {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = probe.local_addr().unwrap();
        drop(probe);
        std::thread::spawn(move || respond_bare(addr, 5));
        let mut s = (0..100)
            .find_map(|_| {
                std::thread::sleep(std::time::Duration::from_millis(20));
                std::net::TcpStream::connect(addr).ok()
            })
            .unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHo")
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        s.write_all(b"st: a\r\n\r\n").unwrap();
        let mut r = BufReader::new(s);
        for _ in 0..2 {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            assert_eq!(line, "HTTP/1.1 200 OK\r\n");
            let mut rest = vec![0u8; canned_response(5).len() - line.len()];
            r.read_exact(&mut rest).unwrap();
            assert!(rest.ends_with(b"\r\n\r\nxxxxx"));
        }
    }
}
