//! `pick` and the feedback calls allocate nothing: a counting global allocator proves it.

use bext_balance::*;
use bext_ir as ir;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

struct Counting;

thread_local! {
    /// Allocations made by this thread: the test harness's own threads may allocate while a
    /// test runs, and must not be counted against the code under test.
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: a thread being torn down may still free or allocate.
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

fn allocs() -> u64 {
    ALLOCS.with(Cell::get)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count();
        // SAFETY: forwards the caller's layout to the system allocator unchanged.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: `p` came from `System.alloc` with this layout.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

#[test]
fn pick_and_feedback_allocate_nothing() {
    let policies = [
        ir::Balance::RoundRobin,
        ir::Balance::LeastConn,
        ir::Balance::P2c,
        ir::Balance::Random,
        ir::Balance::Hash(ir::HashKey::ClientIp),
        ir::Balance::Hash(ir::HashKey::Cookie("sid".into())),
    ];
    for policy in policies {
        let up = ir::Upstream {
            name: "app".into(),
            servers: (0..8)
                .map(|i| ir::Server {
                    addr: format!("10.0.0.{i}:80"),
                    weight: 1 + i % 3,
                    backup: i == 7,
                    tls: None,
                    at: ir::Loc::default(),
                })
                .collect(),
            balance: policy.clone(),
            keepalive: 0,
            health: None,
            passive: None,
            retry: None,
            timeouts: ir::UpstreamTimeouts::default(),
            max_connections: None,
            max_pending: None,
            at: ir::Loc::default(),
        };
        let mut b = Balancer::new(&up).unwrap();
        let h = HealthView::all_up(8);
        h.set(2, false);
        let mut budget = RetryBudget::new(20);
        let before = allocs();
        let mut last = None;
        for k in 0..10_000u32 {
            let ctx = PickContext {
                client_ip: Some(IpAddr::V4(Ipv4Addr::from(k))),
                header: None,
                cookie: Some(b"abc"),
            };
            let i = b.pick(&ctx, &h, last).unwrap();
            b.on_start(i);
            b.on_finish(
                i,
                Duration::from_micros(u64::from(k % 500)),
                Outcome::Success,
            );
            budget.on_request(u64::from(k));
            let _ = budget.try_retry(u64::from(k));
            last = Some(i);
        }
        assert_eq!(allocs() - before, 0, "{policy:?}");
    }
}
