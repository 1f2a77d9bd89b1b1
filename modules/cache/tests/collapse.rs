//! Request collapsing: one leader per key, bounded waiters, bounded time.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use bext_cache::{Collapser, Config, Join, Lookup, Outcome, Waiter};
use common::Harness;

struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

fn poll(w: &mut Waiter, waker: &Waker) -> Poll<Outcome> {
    Pin::new(w).poll(&mut Context::from_waker(waker))
}

#[test]
fn a_thousand_misses_on_one_key_make_one_leader() {
    let mut h = Harness::with(Config {
        collapse_max_waiters: 1000,
        ..Config::default()
    });
    let count = Arc::new(Count(AtomicUsize::new(0)));
    let waker = Waker::from(count.clone());
    let mut leaders = Vec::new();
    let mut waiters = Vec::new();
    for _ in 0..1001 {
        match h.get("/hot", &[]) {
            Lookup::Miss(m) => match m.join {
                Join::Leader(l) => leaders.push(l),
                Join::Follower(w) => waiters.push(w),
                Join::Overflow | Join::Alone => panic!("not collapsed below the bound"),
            },
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(leaders.len(), 1);
    assert_eq!(waiters.len(), 1000);
    for w in &mut waiters {
        assert_eq!(poll(w, &waker), Poll::Pending);
    }
    // The leader stores the response and reports.
    h.fill("/hot", &[], 200, &[("Cache-Control", "max-age=60")], "b")
        .unwrap();
    leaders.pop().unwrap().finish(Outcome::Stored);
    assert_eq!(
        count.0.load(Ordering::Relaxed),
        1000,
        "every waiter woken once"
    );
    for w in &mut waiters {
        assert_eq!(poll(w, &waker), Poll::Ready(Outcome::Stored));
    }
    drop(waiters);
    assert_eq!(h.cache.collapser().in_flight(), 0);
    assert!(matches!(h.get("/hot", &[]), Lookup::Fresh(_)));
}

#[test]
fn waiters_beyond_the_bound_go_upstream_alone() {
    let c = Collapser::new(2, 10);
    let _leader = c.join(b"k", 0);
    let a = c.join(b"k", 0);
    let b = c.join(b"k", 0);
    assert!(matches!((&a, &b), (Join::Follower(_), Join::Follower(_))));
    assert!(matches!(c.join(b"k", 0), Join::Overflow));
    drop(a);
    assert!(
        matches!(c.join(b"k", 0), Join::Follower(_)),
        "a slot frees when a waiter leaves"
    );
}

#[test]
fn waiters_are_released_when_the_wait_exceeds_its_bound() {
    let c = Collapser::new(10, 5);
    let _leader = c.join(b"k", 100);
    let Join::Follower(mut w) = c.join(b"k", 101) else {
        panic!()
    };
    let waker = Waker::noop();
    assert_eq!(poll(&mut w, waker), Poll::Pending);
    c.expire(104);
    assert_eq!(poll(&mut w, waker), Poll::Pending);
    c.expire(105);
    assert_eq!(poll(&mut w, waker), Poll::Ready(Outcome::TimedOut));
    assert!(
        matches!(c.join(b"k", 106), Join::Leader(_)),
        "the next miss leads a new fetch"
    );
}

#[test]
fn a_dropped_leader_releases_its_waiters_with_an_error() {
    let c = Collapser::new(10, 5);
    let leader = c.join(b"k", 0);
    let Join::Follower(mut w) = c.join(b"k", 0) else {
        panic!()
    };
    drop(leader);
    assert_eq!(poll(&mut w, Waker::noop()), Poll::Ready(Outcome::Error));
    assert_eq!(c.in_flight(), 0);
}

#[test]
fn a_not_storable_outcome_reaches_waiters() {
    let c = Collapser::new(10, 5);
    let Join::Leader(leader) = c.join(b"k", 0) else {
        panic!()
    };
    let Join::Follower(mut w) = c.join(b"k", 0) else {
        panic!()
    };
    assert_eq!(c.waiting(b"k"), 1);
    leader.finish(Outcome::NotStorable);
    assert_eq!(
        poll(&mut w, Waker::noop()),
        Poll::Ready(Outcome::NotStorable)
    );
}

#[test]
fn different_keys_do_not_collapse() {
    let c = Collapser::new(10, 5);
    let a = c.join(b"a", 0);
    assert!(matches!(a, Join::Leader(_)));
    assert!(matches!(c.join(b"a", 0), Join::Follower(_)));
    assert!(matches!(c.join(b"b", 0), Join::Leader(_)));
}

#[test]
fn head_follows_a_get_in_flight_but_never_leads() {
    let mut h = Harness::new();
    let Lookup::Miss(m) = h.lookup("HEAD", "/h", &[]) else {
        panic!()
    };
    assert!(matches!(m.join, Join::Alone));
    let Lookup::Miss(get) = h.get("/h", &[]) else {
        panic!()
    };
    assert!(matches!(get.join, Join::Leader(_)));
    let Lookup::Miss(head) = h.lookup("HEAD", "/h", &[]) else {
        panic!()
    };
    assert!(matches!(head.join, Join::Follower(_)));
}
