//! The raw client: writes bytes on a fresh TCP connection and observes what comes back: the
//! responses in order, whether the server closed, and anything it sent beyond what was expected.

use crate::wire::{self, Message, Read};
use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// The request the harness sends to learn whether a connection is still usable.
pub const PROBE: &[u8] = b"GET /__conformance/probe HTTP/1.1\r\nHost: probe.test\r\n\r\n";

/// What the client saw.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub responses: Vec<Message>,
    /// The server closed (or reset) the connection.
    pub closed: bool,
    /// The connection was reset rather than closed in order.
    pub reset: bool,
    /// Bytes after the expected responses (a response the client never asked for).
    pub extra: Vec<u8>,
    /// Nothing happened before the limit.
    pub timed_out: bool,
    /// The server's bytes could not be read as HTTP/1.1 responses.
    pub malformed: Option<String>,
}

/// One connection under the harness's control.
pub struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
    eof: bool,
    reset: bool,
    limit: Duration,
}

impl Client {
    /// Connect; `limit` bounds every wait (a failing server never hangs the suite).
    pub fn connect(addr: SocketAddr, limit: Duration) -> std::io::Result<Client> {
        let stream = TcpStream::connect_timeout(&addr, limit)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(limit))?;
        stream.set_write_timeout(Some(limit))?;
        Ok(Client {
            stream,
            buf: Vec::new(),
            eof: false,
            reset: false,
            limit,
        })
    }

    /// Write bytes; a server that already answered and closed may refuse them, which is
    /// observed through the reads, not an error here.
    pub fn send(&mut self, bytes: &[u8]) -> bool {
        self.stream
            .write_all(bytes)
            .and_then(|_| self.stream.flush())
            .is_ok()
    }

    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Read more bytes; false on end of stream or timeout.
    fn fill(&mut self) -> Result<bool, ()> {
        if self.eof {
            return Ok(false);
        }
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => {
                self.eof = true;
                Ok(false)
            }
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(true)
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Err(()),
            Err(_) => {
                self.eof = true;
                self.reset = true;
                Ok(false)
            }
        }
    }

    /// Read one response. `Ok(None)`: the connection ended first. `Err`: timeout or garbage.
    pub fn read_response(&mut self, to_head: bool) -> Result<Option<Message>, String> {
        let deadline = Instant::now() + self.limit;
        loop {
            match wire::read_response(&self.buf, to_head, self.eof) {
                Ok(Read::Done(m)) => {
                    self.buf.drain(..m.len);
                    return Ok(Some(m));
                }
                Ok(Read::Partial) if self.eof => {
                    return if self.buf.is_empty() {
                        Ok(None)
                    } else {
                        Err(format!(
                            "connection ended inside a response head: {}",
                            crate::case::escape(&self.buf)
                        ))
                    };
                }
                Ok(Read::Partial) => {}
                Err(e) => return Err(format!("unreadable response ({e})")),
            }
            if Instant::now() >= deadline || self.fill().is_err() {
                return Err("timed out waiting for a response".into());
            }
        }
    }

    /// Wait for the server to close; true if it did (bytes it sends meanwhile are kept).
    pub fn wait_closed(&mut self) -> bool {
        let deadline = Instant::now() + self.limit;
        while !self.eof {
            if Instant::now() >= deadline || self.fill().is_err() {
                return false;
            }
        }
        true
    }

    pub fn was_reset(&self) -> bool {
        self.reset
    }

    /// Bytes received but not consumed as responses.
    pub fn pending(&self) -> &[u8] {
        &self.buf
    }
}

/// Read one whole response from a bare stream and return its status; `None` when the
/// connection ends, fails or times out first (the stream's own read timeout bounds the wait).
/// For tests that hold many plain streams, where a [`Client`] per connection would cost more.
pub fn read_status(s: &mut TcpStream) -> Option<u16> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Ok(Read::Done(m)) = wire::read_response(&buf, false, false) {
            return m.status();
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Send `writes` on a fresh connection and read `expect.len()` responses (`to_head` per
/// response); then, if `close` is expected, wait for the close, otherwise check that the
/// connection still serves a probe request (which also shows nothing was left unread).
pub fn exchange(
    addr: SocketAddr,
    writes: &[Vec<u8>],
    to_head: &[bool],
    close: bool,
    limit: Duration,
) -> Observed {
    let mut obs = Observed::default();
    let mut c = match Client::connect(addr, limit) {
        Ok(c) => c,
        Err(e) => {
            obs.malformed = Some(format!("connect: {e}"));
            return obs;
        }
    };
    for (i, w) in writes.iter().enumerate() {
        if i > 0 {
            // Separate writes must reach the server as separate segments.
            std::thread::sleep(Duration::from_millis(20));
        }
        if !c.send(w) {
            break;
        }
    }
    for &head in to_head {
        match c.read_response(head) {
            Ok(Some(m)) => obs.responses.push(m),
            Ok(None) => break,
            Err(e) => {
                if e.starts_with("timed out") {
                    obs.timed_out = true;
                } else {
                    obs.malformed = Some(e);
                }
                break;
            }
        }
    }
    if obs.responses.len() == to_head.len() && obs.malformed.is_none() && !obs.timed_out {
        if close {
            obs.closed = c.wait_closed();
            obs.extra = c.pending().to_vec();
        } else if !c.pending().is_empty() {
            obs.extra = c.pending().to_vec();
        } else {
            // Keep-alive expected: the connection must still serve the probe, first.
            c.send(PROBE);
            match c.read_response(false) {
                Ok(Some(m)) if m.body == b"probe" => {}
                Ok(Some(m)) => {
                    obs.extra = m.start_line.into_bytes();
                }
                Ok(None) => obs.closed = true,
                Err(e) => obs.malformed = Some(format!("probe: {e}")),
            }
        }
    } else if obs.malformed.is_none() && !obs.timed_out {
        // The connection ended before every expected response.
        obs.closed = c.wait_closed();
    }
    obs.reset = c.was_reset();
    obs
}
