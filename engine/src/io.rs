//! Small I/O helpers over monoio's owned-buffer traits: append-reads into a growable buffer,
//! whole writes, both bounded by a timeout, and a two-future race.
//!
//! Timeouts run on the worker's coarse clock ([`Limit`]), not on the runtime's timer wheel: a
//! step that completes at once (most of them) then costs neither a clock read nor a timer
//! entry, and the request's future stays free of the timer's 128-byte-aligned state, whose
//! alignment made every boxed request future an aligned allocation.

use crate::stop::StopSignal;
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::task::Poll;
use std::time::Duration;

/// The deadline of an I/O step, or of several steps sharing one (a request head read in
/// pieces): a tick of the worker's coarse clock, so between the given duration and two ticks
/// more after it was set.
#[derive(Clone, Copy)]
pub struct Limit<'a> {
    clock: &'a StopSignal,
    until: u32,
}

/// A timeout per step of a loop (a body moved piece by piece): each step gets a fresh
/// [`Limit`] of `dur`, so the timeout bounds a pause, not the whole transfer.
#[derive(Clone, Copy)]
pub struct PerStep<'a> {
    clock: &'a StopSignal,
    dur: Duration,
}

impl<'a> PerStep<'a> {
    pub fn new(clock: &'a StopSignal, dur: Duration) -> PerStep<'a> {
        PerStep { clock, dur }
    }

    /// The deadline of a step starting now.
    pub fn step(self) -> Limit<'a> {
        Limit::new(self.clock, self.dur)
    }
}

impl<'a> Limit<'a> {
    pub fn new(clock: &'a StopSignal, dur: Duration) -> Limit<'a> {
        Limit {
            clock,
            until: clock.tick_after(dur),
        }
    }

    /// Run `f` within this limit; `None` when the limit passed first (`f` is dropped).
    pub async fn run<F: Future>(self, f: F) -> Option<F::Output> {
        match race(pin!(f), pin!(self.clock.until(self.until))).await {
            Either::Left(x) => Some(x),
            Either::Right(_) => None,
        }
    }
}

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
    limit: Limit<'_>,
) -> Result<usize, IoFail> {
    if buf.capacity() - buf.len() < spare {
        buf.reserve(spare);
    }
    let len = buf.len();
    let cap = buf.capacity();
    let owned = std::mem::take(buf);
    match limit.run(rd.read(owned.slice_mut(len..cap))).await {
        Some((res, slice)) => {
            *buf = slice.into_inner();
            match res {
                Ok(0) => Err(IoFail::Closed),
                Ok(n) => Ok(n),
                Err(e) => Err(IoFail::Io(e)),
            }
        }
        // The buffer went down with the cancelled read; the caller closes the connection.
        None => Err(IoFail::Timeout),
    }
}

/// Read at most `max` bytes, appending to `out` (used to move a Content-Length body without
/// reading past its end into the next pipelined message).
pub async fn read_upto<R: AsyncReadRent>(
    rd: &mut R,
    out: &mut Vec<u8>,
    max: usize,
    limit: Limit<'_>,
) -> Result<usize, IoFail> {
    if out.capacity() - out.len() < max {
        out.reserve(max);
    }
    let len = out.len();
    let owned = std::mem::take(out);
    match limit.run(rd.read(owned.slice_mut(len..len + max))).await {
        Some((res, slice)) => {
            *out = slice.into_inner();
            match res {
                Ok(0) => Err(IoFail::Closed),
                Ok(n) => Ok(n),
                Err(e) => Err(IoFail::Io(e)),
            }
        }
        None => Err(IoFail::Timeout),
    }
}

/// Write all of `buf` (handed back unchanged, so a failed write can be retried elsewhere).
pub async fn write_all<W: AsyncWriteRent>(
    wr: &mut W,
    buf: &mut Vec<u8>,
    limit: Limit<'_>,
) -> Result<(), IoFail> {
    if buf.is_empty() {
        return Ok(());
    }
    let owned = std::mem::take(buf);
    match limit.run(wr.write_all(owned)).await {
        Some((res, back)) => {
            *buf = back;
            match res {
                Ok(_) => Ok(()),
                Err(e) => Err(IoFail::Io(e)),
            }
        }
        None => Err(IoFail::Timeout),
    }
}

/// Write a static slice.
pub async fn write_static<W: AsyncWriteRent>(
    wr: &mut W,
    data: &'static [u8],
    limit: Limit<'_>,
) -> Result<(), IoFail> {
    match limit.run(wr.write_all(data)).await {
        Some((Ok(_), _)) => Ok(()),
        Some((Err(e), _)) => Err(IoFail::Io(e)),
        None => Err(IoFail::Timeout),
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
