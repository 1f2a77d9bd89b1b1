//! Health state: the shared up/down bitmap, the active-probe state machine and passive
//! ejection with exponential back-off.
//!
//! The bitmap is an `Arc<[AtomicU64]>`: the control thread (which runs the probes once per
//! server) flips bits with `fetch_or`/`fetch_and`; every core holds a clone and reads with
//! relaxed loads. A reader never waits and never sees a torn word; a change reaches a core at
//! its next pick. Passive ejection is per core (each core sees its own failures) and is held in
//! the [`crate::Balancer`] itself.

use crate::ir;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The up/down view of an upstream's servers shared by the control thread and every core.
#[derive(Debug, Clone)]
pub struct HealthView {
    words: Arc<[AtomicU64]>,
}

impl HealthView {
    /// Every server starts up: a new upstream takes traffic until probes say otherwise.
    pub fn all_up(servers: usize) -> HealthView {
        let words: Vec<AtomicU64> = (0..servers.div_ceil(64).max(1))
            .map(|_| AtomicU64::new(u64::MAX))
            .collect();
        HealthView {
            words: words.into(),
        }
    }

    pub fn is_up(&self, idx: usize) -> bool {
        self.words
            .get(idx / 64)
            .is_some_and(|w| w.load(Ordering::Relaxed) & (1u64 << (idx % 64)) != 0)
    }

    /// Control thread only: publishes a server's state to every core.
    pub fn set(&self, idx: usize, up: bool) {
        if let Some(w) = self.words.get(idx / 64) {
            let bit = 1u64 << (idx % 64);
            if up {
                w.fetch_or(bit, Ordering::Relaxed);
            } else {
                w.fetch_and(!bit, Ordering::Relaxed);
            }
        }
    }
}

/// A change of a server's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Mark the server up (active: `healthy` successes; passive: the half-open trial passed).
    Up,
    /// Mark the server down (active: `unhealthy` failures).
    Down,
    /// Passive: ejected until the given clock value (ms).
    Ejected { until_ms: u64 },
}

/// Active probe state machine, one per upstream, run by the control thread.
#[derive(Debug)]
pub struct ActiveHealth {
    healthy: u32,
    unhealthy: u32,
    up: Vec<bool>,
    streak: Vec<u32>,
}

impl ActiveHealth {
    /// Like [`ActiveHealth::new`], starting from known states (`up[i]` for server `i`) instead
    /// of all up: a reload keeps what the probes learnt about servers that remain.
    pub fn with_state(up: Vec<bool>, check: &ir::HealthCheck) -> ActiveHealth {
        let n = up.len();
        ActiveHealth {
            healthy: check.healthy.max(1),
            unhealthy: check.unhealthy.max(1),
            up,
            streak: vec![0; n],
        }
    }

    pub fn new(servers: usize, check: &ir::HealthCheck) -> ActiveHealth {
        ActiveHealth {
            healthy: check.healthy.max(1),
            unhealthy: check.unhealthy.max(1),
            up: vec![true; servers],
            streak: vec![0; servers],
        }
    }

    /// Records one probe result; returns a transition when a threshold is crossed.
    pub fn on_probe_result(&mut self, idx: usize, ok: bool) -> Option<Transition> {
        let up = *self.up.get(idx)?;
        if ok == up {
            // The result agrees with the current state: any opposite streak ends.
            self.streak[idx] = 0;
            return None;
        }
        self.streak[idx] += 1;
        let need = if up { self.unhealthy } else { self.healthy };
        if self.streak[idx] < need {
            return None;
        }
        self.streak[idx] = 0;
        self.up[idx] = ok;
        Some(if ok { Transition::Up } else { Transition::Down })
    }

    pub fn is_up(&self, idx: usize) -> bool {
        self.up.get(idx).copied().unwrap_or(false)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Passive {
    Serving,
    Ejected {
        until_ms: u64,
    },
    /// Back-off over: one trial request decides.
    HalfOpen,
}

/// Passive outlier ejection on one core.
#[derive(Debug)]
pub struct PassiveEjector {
    threshold: u32,
    base_ms: u64,
    max_ms: u64,
    state: Vec<Passive>,
    failures: Vec<u32>,
    /// Ejections since the server last served successfully; drives the back-off.
    ejections: Vec<u32>,
}

impl PassiveEjector {
    pub fn new(servers: usize, cfg: &ir::PassiveHealth) -> PassiveEjector {
        PassiveEjector {
            threshold: cfg.consecutive_failures.max(1),
            base_ms: cfg.base_ejection_ms.max(1),
            max_ms: cfg.max_ejection_ms.max(cfg.base_ejection_ms.max(1)),
            state: vec![Passive::Serving; servers],
            failures: vec![0; servers],
            ejections: vec![0; servers],
        }
    }

    /// Ejection length for the next ejection of `idx`: base × 2^k, capped.
    fn backoff(&self, idx: usize) -> u64 {
        let k = self.ejections[idx].min(62);
        self.base_ms.saturating_mul(1u64 << k).min(self.max_ms)
    }

    /// Records the result of an attempt (failure = connect error or 5xx) at `now_ms`.
    pub fn on_result(&mut self, idx: usize, ok: bool, now_ms: u64) -> Option<Transition> {
        let state = *self.state.get(idx)?;
        if ok {
            self.failures[idx] = 0;
            if state == Passive::HalfOpen {
                self.state[idx] = Passive::Serving;
                self.ejections[idx] = 0;
                return Some(Transition::Up);
            }
            return None;
        }
        self.failures[idx] += 1;
        let eject = match state {
            Passive::Serving => self.failures[idx] >= self.threshold,
            Passive::HalfOpen => true,
            Passive::Ejected { .. } => false,
        };
        if !eject {
            return None;
        }
        let until_ms = now_ms.saturating_add(self.backoff(idx));
        self.ejections[idx] = self.ejections[idx].saturating_add(1);
        self.failures[idx] = 0;
        self.state[idx] = Passive::Ejected { until_ms };
        Some(Transition::Ejected { until_ms })
    }

    /// Moves the next server whose back-off is over to half-open and returns it; the engine
    /// then clears its ejection in the balancer (`set_ejected(idx, false)`). Call in a loop
    /// until `None`.
    pub fn next_expired(&mut self, now_ms: u64) -> Option<usize> {
        let idx = self
            .state
            .iter()
            .position(|s| matches!(s, Passive::Ejected { until_ms } if *until_ms <= now_ms))?;
        self.state[idx] = Passive::HalfOpen;
        Some(idx)
    }

    pub fn is_ejected(&self, idx: usize) -> bool {
        matches!(self.state.get(idx), Some(Passive::Ejected { .. }))
    }
}
