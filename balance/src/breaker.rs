//! Per-upstream, per-core circuit breaker on active connections and pending requests.
//!
//! Counters are `Rc<Cell<u32>>`: a core's tasks share them without locks, and a guard can be
//! held across an await; they are not `Send` on purpose.

use crate::ir;
use std::cell::Cell;
use std::rc::Rc;

/// The breaker is open: answer 503 (upstream-unavailable) without contacting the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Open;

#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    max_connections: Option<u32>,
    max_pending: Option<u32>,
    connections: Rc<Cell<u32>>,
    pending: Rc<Cell<u32>>,
}

/// Holds one connection slot until dropped.
#[derive(Debug)]
pub struct ConnectionGuard(Rc<Cell<u32>>);
/// Holds one pending-request slot until dropped.
#[derive(Debug)]
pub struct PendingGuard(Rc<Cell<u32>>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}
impl Drop for PendingGuard {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}

fn take(c: &Rc<Cell<u32>>, max: Option<u32>) -> Result<Rc<Cell<u32>>, Open> {
    if max.is_some_and(|m| c.get() >= m) {
        return Err(Open);
    }
    c.set(c.get() + 1);
    Ok(Rc::clone(c))
}

impl CircuitBreaker {
    pub fn from_ir(up: &ir::Upstream) -> CircuitBreaker {
        CircuitBreaker::new(up.max_connections, up.max_pending)
    }

    pub fn new(max_connections: Option<u32>, max_pending: Option<u32>) -> CircuitBreaker {
        CircuitBreaker {
            max_connections,
            max_pending,
            connections: Rc::new(Cell::new(0)),
            pending: Rc::new(Cell::new(0)),
        }
    }

    /// Takes a connection slot (opening a new upstream connection or using a pooled one).
    pub fn try_acquire(&self) -> Result<ConnectionGuard, Open> {
        take(&self.connections, self.max_connections).map(ConnectionGuard)
    }

    /// Takes a pending slot (a request waiting for a connection).
    pub fn try_acquire_pending(&self) -> Result<PendingGuard, Open> {
        take(&self.pending, self.max_pending).map(PendingGuard)
    }

    pub fn connections(&self) -> u32 {
        self.connections.get()
    }

    pub fn pending(&self) -> u32 {
        self.pending.get()
    }

    /// The breaker's state now: (the connection limit is reached, the pending limit is
    /// reached). Either one open refuses the next request that needs it.
    pub fn state(&self) -> (bool, bool) {
        let full = |c: &Cell<u32>, max: Option<u32>| max.is_some_and(|m| c.get() >= m);
        (
            full(&self.connections, self.max_connections),
            full(&self.pending, self.max_pending),
        )
    }
}
