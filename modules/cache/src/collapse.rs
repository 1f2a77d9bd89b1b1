//! Request collapsing: while one request fetches a key from upstream, other misses on that key
//! wait for its outcome instead of sending their own.
//!
//! The first miss on a key becomes the [`Leader`]; later ones get a [`Waiter`], a future that
//! resolves to the leader's [`Outcome`]. The wait is bounded twice: at most
//! `max_waiters` per key (the rest go upstream on their own rather than queue without limit),
//! and a deadline after which [`Collapser::expire`] releases the waiters with
//! [`Outcome::TimedOut`] and forgets the flight, so the next miss leads a fresh one. A leader
//! dropped without reporting (its task was cancelled, its connection died) releases its
//! waiters with [`Outcome::Error`].
//!
//! No runtime is involved: a waiter keeps the last `Waker` it was polled with, and the leader
//! wakes them all. Everything is per core (`Rc`, `RefCell`), as the shard is.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

use hashbrown::HashMap;

use crate::Time;

/// What the leader's fetch came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A response was stored: look up again.
    Stored,
    /// The response could not be stored (private, too large, ...): go upstream yourself.
    NotStorable,
    /// The fetch failed: go upstream yourself (or serve stale if allowed).
    Error,
    /// The wait took longer than the bound.
    TimedOut,
}

struct Flight {
    outcome: Option<Outcome>,
    waiters: Vec<Option<Waker>>,
    waiting: usize,
    deadline: Time,
}

type Table = RefCell<HashMap<Box<[u8]>, Rc<RefCell<Flight>>>>;

/// The in-flight table of one core.
pub struct Collapser {
    table: Rc<Table>,
    max_waiters: usize,
    timeout: u32,
}

/// What joining a key's flight gives.
pub enum Join {
    /// No fetch was in flight: this request fetches, and must report through the leader.
    Leader(Leader),
    /// Another request is fetching: wait for it.
    Follower(Waiter),
    /// Too many requests already wait on this key: go upstream without waiting.
    Overflow,
    /// No fetch is in flight and this request cannot lead one (a `HEAD`, whose response is
    /// not stored): go upstream without waiting.
    Alone,
}

impl std::fmt::Debug for Join {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Join::Leader(_) => "Leader",
            Join::Follower(_) => "Follower",
            Join::Overflow => "Overflow",
            Join::Alone => "Alone",
        })
    }
}

impl Collapser {
    /// A table letting at most `max_waiters` wait per key for at most `timeout` seconds.
    pub fn new(max_waiters: usize, timeout: u32) -> Self {
        Collapser {
            table: Rc::new(RefCell::new(HashMap::new())),
            max_waiters,
            timeout,
        }
    }

    /// Joins the flight for `key` at `now`.
    pub fn join(&self, key: &[u8], now: Time) -> Join {
        self.join_as(key, now, true)
    }

    /// Joins the flight for `key` at `now`; a request that `can_lead` no fetch (its response
    /// would not be stored) only follows one already in flight.
    pub fn join_as(&self, key: &[u8], now: Time, can_lead: bool) -> Join {
        let mut table = self.table.borrow_mut();
        if let Some(flight) = table.get(key) {
            let mut f = flight.borrow_mut();
            if f.outcome.is_none() && f.deadline > now {
                if f.waiting >= self.max_waiters {
                    return Join::Overflow;
                }
                f.waiting += 1;
                f.waiters.push(None);
                let slot = f.waiters.len() - 1;
                return Join::Follower(Waiter {
                    flight: flight.clone(),
                    slot,
                    done: false,
                });
            }
        }
        if !can_lead {
            return Join::Alone;
        }
        let flight = Rc::new(RefCell::new(Flight {
            outcome: None,
            waiters: Vec::new(),
            waiting: 0,
            deadline: now + Time::from(self.timeout),
        }));
        table.insert(key.into(), flight.clone());
        Join::Leader(Leader {
            key: key.into(),
            flight,
            table: Rc::downgrade(&self.table),
            reported: false,
        })
    }

    /// Releases the waiters of every flight past its deadline with [`Outcome::TimedOut`].
    pub fn expire(&self, now: Time) {
        self.table.borrow_mut().retain(|_, flight| {
            let mut f = flight.borrow_mut();
            if f.deadline <= now {
                finish(&mut f, Outcome::TimedOut);
                false
            } else {
                true
            }
        });
    }

    /// Keys with a fetch in flight.
    pub fn in_flight(&self) -> usize {
        self.table.borrow().len()
    }

    /// Requests waiting on `key`.
    pub fn waiting(&self, key: &[u8]) -> usize {
        self.table
            .borrow()
            .get(key)
            .map_or(0, |f| f.borrow().waiting)
    }
}

fn finish(f: &mut Flight, outcome: Outcome) {
    if f.outcome.is_none() {
        f.outcome = Some(outcome);
    }
    for w in f.waiters.iter_mut().filter_map(Option::take) {
        w.wake();
    }
}

/// The request that fetches for everyone; report with [`Leader::finish`].
pub struct Leader {
    key: Box<[u8]>,
    flight: Rc<RefCell<Flight>>,
    table: Weak<Table>,
    reported: bool,
}

impl Leader {
    /// Delivers the outcome to every waiter and ends the flight.
    pub fn finish(mut self, outcome: Outcome) {
        self.report(outcome);
    }

    /// The key this leader fetches.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    fn report(&mut self, outcome: Outcome) {
        if self.reported {
            return;
        }
        self.reported = true;
        finish(&mut self.flight.borrow_mut(), outcome);
        if let Some(table) = self.table.upgrade() {
            let mut table = table.borrow_mut();
            if table
                .get(&self.key)
                .is_some_and(|f| Rc::ptr_eq(f, &self.flight))
            {
                table.remove(&self.key);
            }
        }
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        self.report(Outcome::Error);
    }
}

/// A request waiting for a leader; a future of the [`Outcome`].
pub struct Waiter {
    flight: Rc<RefCell<Flight>>,
    slot: usize,
    done: bool,
}

impl Future for Waiter {
    type Output = Outcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let mut f = self.flight.borrow_mut();
        if let Some(o) = f.outcome {
            drop(f);
            self.done = true;
            return Poll::Ready(o);
        }
        let slot = self.slot;
        match &mut f.waiters[slot] {
            Some(w) if w.will_wake(cx.waker()) => {}
            w => *w = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let mut f = self.flight.borrow_mut();
        f.waiting -= 1;
        if !self.done {
            f.waiters[self.slot] = None;
        }
    }
}
