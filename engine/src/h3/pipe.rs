//! A QUIC request stream as a client stream (`ClientStream::Quic`): the seam through which an
//! HTTP/3 request runs the same connection code, stages and handlers as an HTTP/1.1 one.
//!
//! The connection side reads the request as canonical HTTP/1.1 bytes (a head that `bridge.rs`
//! writes from the HTTP/3 fields, then the body, framed by Content-Length or chunked) and
//! writes the response as HTTP/1.1 bytes, which `bridge.rs` turns back into HTTP/3 HEADERS
//! and DATA frames. Both directions are bounded buffers shared by the two tasks of a request
//! (`Rc<RefCell>`, never borrowed across an `.await`): a writer that finds its buffer full
//! waits for the other side to drain it, so a large body in either direction flows with
//! QUIC's flow control as its back pressure, never buffered whole.
//!
//! The strict HTTP/1.1 parser sees every HTTP/3 request: its limits and token rules apply to
//! both protocols alike, so an HTTP/3 request cannot carry what an HTTP/1.1 one may not.

use monoio::buf::{IoBuf, IoBufMut, IoVecBuf};
use monoio::BufResult;
use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::task::{Poll, Waker};

/// Bytes a direction holds before its writer waits.
pub(crate) const PIPE_CAP: usize = 64 * 1024;

#[derive(Default)]
pub(crate) struct Direction {
    pub bytes: Vec<u8>,
    pub pos: usize,
    /// The writer has written everything it will.
    pub done: bool,
    /// The reader went away: writes fail.
    pub gone: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

impl Direction {
    pub fn pending(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn wake_reader(&mut self) {
        if let Some(w) = self.reader.take() {
            w.wake();
        }
    }

    fn wake_writer(&mut self) {
        if let Some(w) = self.writer.take() {
            w.wake();
        }
    }

    /// Take up to `max` bytes (the caller copies them out of `bytes[pos..pos + n]`).
    pub fn consumed(&mut self, n: usize) {
        self.pos += n;
        if self.pos == self.bytes.len() {
            self.bytes.clear();
            self.pos = 0;
        }
        self.wake_writer();
    }

    pub fn finish(&mut self) {
        self.done = true;
        self.wake_reader();
    }

    pub fn abandon(&mut self) {
        self.gone = true;
        self.wake_writer();
    }
}

/// The two directions of one request stream.
#[derive(Default)]
pub(crate) struct Pipe {
    /// Request bytes, bridge → connection code.
    pub up: Direction,
    /// Response bytes, connection code → bridge.
    pub down: Direction,
    /// The request's DATA disagreed with its Content-Length: the stream is malformed.
    pub malformed: bool,
    /// The code a body left unread is stopped with, when the response failed (`None`: the
    /// response is complete, `H3_NO_ERROR`).
    pub stop_code: Option<h3::error::Code>,
}

pub(crate) type Shared = Rc<RefCell<Pipe>>;

/// Wait until `dir` of `pipe` has bytes to read or is done; `None` when done and empty.
pub(crate) fn readable(
    pipe: &Shared,
    dir: fn(&mut Pipe) -> &mut Direction,
) -> impl std::future::Future<Output = bool> + '_ {
    std::future::poll_fn(move |cx| {
        let mut p = pipe.borrow_mut();
        let d = dir(&mut p);
        if d.pending() > 0 {
            Poll::Ready(true)
        } else if d.done {
            Poll::Ready(false)
        } else {
            d.reader = Some(cx.waker().clone());
            Poll::Pending
        }
    })
}

/// Append `bytes` to `dir`, waiting while it holds `PIPE_CAP` or more. False when the reader
/// went away.
pub(crate) async fn write_to(
    pipe: &Shared,
    dir: fn(&mut Pipe) -> &mut Direction,
    bytes: &[u8],
) -> bool {
    std::future::poll_fn(|cx| {
        let mut p = pipe.borrow_mut();
        let d = dir(&mut p);
        if d.gone {
            return Poll::Ready(false);
        }
        if d.pending() >= PIPE_CAP {
            d.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        d.bytes.extend_from_slice(bytes);
        d.wake_reader();
        Poll::Ready(true)
    })
    .await
}

pub(crate) fn up(p: &mut Pipe) -> &mut Direction {
    &mut p.up
}

pub(crate) fn down(p: &mut Pipe) -> &mut Direction {
    &mut p.down
}

/// The connection code's end of a request stream (see the module docs).
#[derive(Clone)]
pub struct QuicStream {
    pipe: Shared,
    peer: SocketAddr,
}

impl std::fmt::Debug for QuicStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuicStream")
            .field("peer", &self.peer)
            .finish()
    }
}

impl QuicStream {
    pub(crate) fn new(pipe: Shared, peer: SocketAddr) -> QuicStream {
        QuicStream { pipe, peer }
    }

    /// The client's address (as of the request: a migrating client may move on).
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// Whether `other` is a handle on the same request stream.
    pub fn same(&self, other: &QuicStream) -> bool {
        Rc::ptr_eq(&self.pipe, &other.pipe)
    }

    /// Wait until request bytes (or their end) can be read.
    pub async fn readable(&self) -> std::io::Result<()> {
        readable(&self.pipe, up).await;
        Ok(())
    }

    pub(crate) async fn read<T: IoBufMut>(&mut self, mut buf: T) -> BufResult<usize, T> {
        if !readable(&self.pipe, up).await {
            return (Ok(0), buf);
        }
        let mut p = self.pipe.borrow_mut();
        let n = crate::sys::fill_buf(&mut buf, &p.up.bytes[p.up.pos..]);
        p.up.consumed(n);
        (Ok(n), buf)
    }

    pub(crate) async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        let ok = write_to(&self.pipe, down, crate::sys::buf_bytes(&buf)).await;
        if ok {
            let n = buf.bytes_init();
            (Ok(n), buf)
        } else {
            (Err(std::io::ErrorKind::BrokenPipe.into()), buf)
        }
    }

    pub(crate) async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        let mut all = Vec::new();
        crate::sys::for_each_iovec(&buf, |s| all.extend_from_slice(s));
        if write_to(&self.pipe, down, &all).await {
            (Ok(all.len()), buf)
        } else {
            (Err(std::io::ErrorKind::BrokenPipe.into()), buf)
        }
    }

    /// The response is complete: nothing more is written.
    pub(crate) fn shutdown(&mut self) {
        self.pipe.borrow_mut().down.finish();
    }
}
