//! Stopping, and waiting for it: the worker's stop signal, whose waiters may carry deadlines
//! checked on the worker's tick.

use crate::worker::TICK;
use std::cell::{Cell, RefCell};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

/// A local, single-threaded stop signal with any number of waiters, each optionally with a
/// deadline. Deadlines are checked on the worker's tick (every [`TICK`]), not by a timer per
/// waiter: an idle keep-alive connection then costs a slot here instead of a timer entry, and
/// its idle timeout is enforced within one tick.
pub struct StopSignal {
    stopped: Cell<bool>,
    /// Deadlines are stored as tick numbers since `epoch` (4 bytes a waiter instead of 24).
    pub(crate) epoch: Instant,
    /// The tick of the last [`StopSignal::expire`]: the coarse clock [`StopSignal::after`]
    /// counts from, so an I/O step's deadline costs no clock read.
    now: Cell<u32>,
    slots: RefCell<Vec<Slot>>,
    free: RefCell<Vec<usize>>,
}

impl Default for StopSignal {
    fn default() -> Self {
        StopSignal {
            stopped: Cell::new(false),
            epoch: Instant::now(),
            now: Cell::new(0),
            slots: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
        }
    }
}

/// No deadline.
const NEVER: u32 = u32::MAX;

#[derive(Default)]
struct Slot {
    waker: Option<Waker>,
    deadline: u32,
    expired: bool,
}

/// Why a [`StopWait`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woken {
    Stopped,
    Expired,
}

impl StopSignal {
    pub fn is_stopped(&self) -> bool {
        self.stopped.get()
    }

    pub fn trigger(&self) {
        self.stopped.set(true);
        for s in self.slots.borrow_mut().iter_mut() {
            if let Some(w) = s.waker.take() {
                w.wake();
            }
        }
    }

    fn tick_of(&self, t: Instant) -> u32 {
        let ticks = t.saturating_duration_since(self.epoch).as_millis() / TICK.as_millis();
        u32::try_from(ticks).unwrap_or(NEVER - 1)
    }

    /// The coarse clock: the time of the last tick (at most one tick old), read without a
    /// clock call.
    pub fn coarse_now(&self) -> Instant {
        self.epoch + TICK * self.now.get()
    }

    /// Wake the waiters whose deadline has passed.
    pub fn expire(&self, now: Instant) {
        let now = self.tick_of(now);
        self.now.set(self.now.get().max(now));
        for s in self.slots.borrow_mut().iter_mut() {
            if !s.expired && s.deadline != NEVER && s.deadline <= now {
                s.expired = true;
                if let Some(w) = s.waker.take() {
                    w.wake();
                }
            }
        }
    }

    /// Resolves once the signal is triggered.
    pub fn wait(&self) -> StopWait<'_> {
        StopWait {
            sig: self,
            key: None,
            deadline: NEVER,
            stoppable: true,
        }
    }

    /// The tick on the worker's coarse clock by which `limit` has surely passed (one or two
    /// ticks late at most). Reads no clock: I/O steps on the request path take their
    /// deadlines from here.
    pub fn tick_after(&self, limit: Duration) -> u32 {
        let ticks = u32::try_from(limit.as_millis().div_ceil(TICK.as_millis())).unwrap_or(NEVER);
        // One more: the coarse clock may be up to a tick behind.
        self.now
            .get()
            .saturating_add(ticks)
            .saturating_add(1)
            .min(NEVER - 1)
    }

    /// Resolves once the signal is triggered or `limit` has passed on the coarse clock (see
    /// [`StopSignal::tick_after`]): like [`StopSignal::wait_until`] without a clock read.
    pub fn wait_for(&self, limit: Duration) -> StopWait<'_> {
        StopWait {
            sig: self,
            key: None,
            deadline: self.tick_after(limit),
            stoppable: true,
        }
    }

    /// Resolves (with [`Woken::Expired`]) once the coarse clock reaches `tick` (see
    /// [`StopSignal::tick_after`]); a stop does not end it. It costs nothing unless polled
    /// pending: a waiter takes a slot only then.
    pub fn until(&self, tick: u32) -> StopWait<'_> {
        StopWait {
            sig: self,
            key: None,
            deadline: tick,
            stoppable: false,
        }
    }

    /// Resolves once the signal is triggered or `deadline` has passed (within one tick).
    pub fn wait_until(&self, deadline: Instant) -> StopWait<'_> {
        StopWait {
            sig: self,
            key: None,
            // Rounded up: a waiter never expires before its deadline.
            deadline: self.tick_of(deadline).saturating_add(1).min(NEVER - 1),
            stoppable: true,
        }
    }
}

pub struct StopWait<'a> {
    sig: &'a StopSignal,
    key: Option<usize>,
    deadline: u32,
    /// Ends when the signal is triggered (false for the I/O deadlines of [`StopSignal::after`]).
    stoppable: bool,
}

impl std::future::Future for StopWait<'_> {
    type Output = Woken;
    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Woken> {
        if self.stoppable && self.sig.is_stopped() {
            return Poll::Ready(Woken::Stopped);
        }
        let mut slots = self.sig.slots.borrow_mut();
        match self.key {
            Some(k) => {
                if slots[k].expired {
                    return Poll::Ready(Woken::Expired);
                }
                slots[k].waker = Some(cx.waker().clone());
            }
            None => {
                let slot = Slot {
                    waker: Some(cx.waker().clone()),
                    deadline: self.deadline,
                    expired: false,
                };
                let k = match self.sig.free.borrow_mut().pop() {
                    Some(k) => {
                        slots[k] = slot;
                        k
                    }
                    None => {
                        // Grow by a quarter, not double: with thousands of idle connections the
                        // spare capacity would be a large part of their memory.
                        if slots.len() == slots.capacity() {
                            let extra = slots.len() / 4 + 16;
                            slots.reserve_exact(extra);
                        }
                        slots.push(slot);
                        slots.len() - 1
                    }
                };
                drop(slots);
                self.key = Some(k);
            }
        }
        Poll::Pending
    }
}

impl Drop for StopWait<'_> {
    fn drop(&mut self) {
        if let Some(k) = self.key {
            if let Some(slot) = self.sig.slots.borrow_mut().get_mut(k) {
                *slot = Slot::default();
            }
            self.sig.free.borrow_mut().push(k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_waiters_end_on_their_deadline_or_on_stop() {
        use std::future::Future;
        let sig = StopSignal::default();
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let now = Instant::now();
        let mut soon = std::pin::pin!(sig.wait_until(now + Duration::from_millis(150)));
        let mut later = std::pin::pin!(sig.wait_until(now + Duration::from_secs(60)));
        let mut never = std::pin::pin!(sig.wait());
        for f in [soon.as_mut(), later.as_mut(), never.as_mut()] {
            assert_eq!(f.poll(&mut cx), Poll::Pending);
        }
        sig.expire(now + Duration::from_millis(100));
        assert_eq!(
            soon.as_mut().poll(&mut cx),
            Poll::Pending,
            "not before its deadline"
        );
        sig.expire(now + Duration::from_millis(400));
        assert_eq!(soon.as_mut().poll(&mut cx), Poll::Ready(Woken::Expired));
        assert_eq!(later.as_mut().poll(&mut cx), Poll::Pending);
        assert_eq!(never.as_mut().poll(&mut cx), Poll::Pending);
        sig.trigger();
        assert_eq!(later.as_mut().poll(&mut cx), Poll::Ready(Woken::Stopped));
        assert_eq!(never.as_mut().poll(&mut cx), Poll::Ready(Woken::Stopped));
    }

    /// I/O deadlines count from the coarse clock's last tick, never end early, and ignore a
    /// stop (an in-flight request is let finish).
    #[test]
    fn io_deadlines_follow_the_coarse_clock_and_outlive_a_stop() {
        use std::future::Future;
        let sig = StopSignal::default();
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let t0 = sig.epoch;
        sig.expire(t0 + Duration::from_millis(1_000));
        let mut waiters = [
            std::pin::pin!(sig.until(sig.tick_after(Duration::from_millis(250)))),
            std::pin::pin!(sig.until(sig.tick_after(Duration::from_secs(5)))),
        ];
        sig.trigger();
        // (clock at, waiter, expected): a stop does not end them; neither ends early.
        let steps = [
            (1_000, 0, Poll::Pending),
            (1_000, 1, Poll::Pending),
            (1_240, 0, Poll::Pending),
            (1_500, 0, Poll::Ready(Woken::Expired)),
            (5_900, 1, Poll::Pending),
            (6_300, 1, Poll::Ready(Woken::Expired)),
        ];
        for (at, i, want) in steps {
            sig.expire(t0 + Duration::from_millis(at));
            assert_eq!(
                waiters[i].as_mut().poll(&mut cx),
                want,
                "waiter {i} at {at} ms"
            );
        }
        // The clock never runs backwards, whatever time a late tick reports.
        sig.expire(t0);
        assert!(sig.tick_after(Duration::ZERO) > 60);
    }
}
