//! Small I/O helpers over monoio's owned-buffer traits: append-reads into a growable buffer,
//! whole writes, both bounded by a timeout, and a two-future race.

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

/// Why an I/O step did not complete.
#[derive(Debug)]
pub enum IoFail {
    /// The peer closed its side (a read returned 0).
    Closed,
    Timeout,
    Io(std::io::Error),
}

/// Read once, appending to `buf`; makes room for at least `spare` bytes first. Returns the
/// number of bytes read; a closed peer is `IoFail::Closed`.
pub async fn read_more<R: AsyncReadRent>(
    rd: &mut R,
    buf: &mut Vec<u8>,
    spare: usize,
    limit: Duration,
) -> Result<usize, IoFail> {
    if buf.capacity() - buf.len() < spare {
        buf.reserve(spare);
    }
    let len = buf.len();
    let cap = buf.capacity();
    let owned = std::mem::take(buf);
    match monoio::time::timeout(limit, rd.read(owned.slice_mut(len..cap))).await {
        Ok((res, slice)) => {
            *buf = slice.into_inner();
            match res {
                Ok(0) => Err(IoFail::Closed),
                Ok(n) => Ok(n),
                Err(e) => Err(IoFail::Io(e)),
            }
        }
        // The buffer went down with the cancelled read; the caller closes the connection.
        Err(_) => Err(IoFail::Timeout),
    }
}

/// Read at most `max` bytes, appending to `out` (used to move a Content-Length body without
/// reading past its end into the next pipelined message).
pub async fn read_upto<R: AsyncReadRent>(
    rd: &mut R,
    out: &mut Vec<u8>,
    max: usize,
    limit: Duration,
) -> Result<usize, IoFail> {
    if out.capacity() - out.len() < max {
        out.reserve(max);
    }
    let len = out.len();
    let owned = std::mem::take(out);
    match monoio::time::timeout(limit, rd.read(owned.slice_mut(len..len + max))).await {
        Ok((res, slice)) => {
            *out = slice.into_inner();
            match res {
                Ok(0) => Err(IoFail::Closed),
                Ok(n) => Ok(n),
                Err(e) => Err(IoFail::Io(e)),
            }
        }
        Err(_) => Err(IoFail::Timeout),
    }
}

/// Write all of `buf` (handed back unchanged, so a failed write can be retried elsewhere).
pub async fn write_all<W: AsyncWriteRent>(
    wr: &mut W,
    buf: &mut Vec<u8>,
    limit: Duration,
) -> Result<(), IoFail> {
    if buf.is_empty() {
        return Ok(());
    }
    let owned = std::mem::take(buf);
    match monoio::time::timeout(limit, wr.write_all(owned)).await {
        Ok((res, back)) => {
            *buf = back;
            match res {
                Ok(_) => Ok(()),
                Err(e) => Err(IoFail::Io(e)),
            }
        }
        Err(_) => Err(IoFail::Timeout),
    }
}

/// Write a static slice.
pub async fn write_static<W: AsyncWriteRent>(
    wr: &mut W,
    data: &'static [u8],
    limit: Duration,
) -> Result<(), IoFail> {
    match monoio::time::timeout(limit, wr.write_all(data)).await {
        Ok((Ok(_), _)) => Ok(()),
        Ok((Err(e), _)) => Err(IoFail::Io(e)),
        Err(_) => Err(IoFail::Timeout),
    }
}

pub enum Either<A, B> {
    Left(A),
    Right(B),
}

/// Poll two pinned futures; return the output of the first to finish. Taking them pinned by
/// the caller (`race(pin!(a), pin!(b))`) stores each future once, in the caller's state: an
/// idle connection's whole task is mostly this race.
pub fn race<'a, A: Future + ?Sized, B: Future + ?Sized>(
    mut a: Pin<&'a mut A>,
    mut b: Pin<&'a mut B>,
) -> impl Future<Output = Either<A::Output, B::Output>> + 'a {
    poll_fn(move |cx| {
        if let Poll::Ready(x) = a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(x));
        }
        if let Poll::Ready(y) = b.as_mut().poll(cx) {
            return Poll::Ready(Either::Right(y));
        }
        Poll::Pending
    })
}
