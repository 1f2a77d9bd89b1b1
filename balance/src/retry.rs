//! Retry decisions and the retry budget.

use crate::ir;

/// Why an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    ConnectError,
    Timeout,
    Status(u16),
}

/// What the engine knows about the request when an attempt fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestFacts {
    pub idempotent: bool,
    pub body_bytes_sent: u64,
    /// Attempts made so far, counting the first (1 after the first attempt failed).
    pub attempt: u32,
}

/// The retry rules of one upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    attempts: u32,
    on: Vec<ir::RetryOn>,
    budget_percent: u32,
}

impl RetryPolicy {
    pub fn from_ir(r: &ir::Retry) -> RetryPolicy {
        RetryPolicy {
            attempts: r.attempts,
            on: r.on.clone(),
            budget_percent: r.budget_percent,
        }
    }

    pub fn budget_percent(&self) -> u32 {
        self.budget_percent
    }

    /// Whether this failure may be retried, ignoring the budget: the request is safe to send
    /// again (idempotent, or no byte of its body left), the condition is listed, and the
    /// extra attempts are not used up.
    pub fn may_retry(&self, req: &RequestFacts, failure: Failure) -> bool {
        let safe = req.idempotent || req.body_bytes_sent == 0;
        let listed = self.on.iter().any(|c| match (c, failure) {
            (ir::RetryOn::ConnectError, Failure::ConnectError) => true,
            (ir::RetryOn::Timeout, Failure::Timeout) => true,
            (ir::RetryOn::Status(a), Failure::Status(b)) => *a == b,
            _ => false,
        });
        safe && listed && req.attempt <= self.attempts
    }

    /// Whether a retry of this failure takes from the retry budget. A refused connection
    /// carried no request: retrying it on another server adds no work anywhere, it only moves
    /// a request the dead server could not take. Starving those retries while nothing has
    /// taken the dead server out yet (passive ejection needs a few failures) would answer 502
    /// to a share of requests although a healthy server was there; `attempts` still bounds
    /// them. Timeouts and statuses reached a server that may be overloaded: those take from the
    /// budget.
    pub fn uses_budget(failure: Failure) -> bool {
        failure != Failure::ConnectError
    }
}

/// Buckets in the sliding window.
const BUCKETS: usize = 10;

/// Per-core sliding-window budget: retries in the last `BUCKETS × bucket_ms` may be at most
/// `min_retries + percent % × requests` of the same window.
#[derive(Debug, Clone)]
pub struct RetryBudget {
    percent: u64,
    min_retries: u64,
    bucket_ms: u64,
    /// Bucket epoch (now / bucket_ms) each slot holds.
    epoch: [u64; BUCKETS],
    requests: [u64; BUCKETS],
    retries: [u64; BUCKETS],
}

impl RetryBudget {
    /// Default window: 10 buckets of 1 s; default minimum: 3 retries per window.
    pub fn new(percent: u32) -> RetryBudget {
        RetryBudget::with_window(percent, 3, 1_000)
    }

    pub fn with_window(percent: u32, min_retries: u64, bucket_ms: u64) -> RetryBudget {
        RetryBudget {
            percent: u64::from(percent),
            min_retries,
            bucket_ms: bucket_ms.max(1),
            epoch: [u64::MAX; BUCKETS],
            requests: [0; BUCKETS],
            retries: [0; BUCKETS],
        }
    }

    fn slot(&mut self, now_ms: u64) -> usize {
        let e = now_ms / self.bucket_ms;
        let s = (e % BUCKETS as u64) as usize;
        if self.epoch[s] != e {
            self.epoch[s] = e;
            self.requests[s] = 0;
            self.retries[s] = 0;
        }
        s
    }

    fn window(&self, now_ms: u64) -> (u64, u64) {
        let e = now_ms / self.bucket_ms;
        let mut req = 0;
        let mut ret = 0;
        for s in 0..BUCKETS {
            if self.epoch[s] != u64::MAX && self.epoch[s] + BUCKETS as u64 > e && self.epoch[s] <= e
            {
                req += self.requests[s];
                ret += self.retries[s];
            }
        }
        (req, ret)
    }

    /// Counts a new request (its first attempt).
    pub fn on_request(&mut self, now_ms: u64) {
        let s = self.slot(now_ms);
        self.requests[s] += 1;
    }

    /// Takes one retry from the budget; `false` when the budget is exhausted.
    pub fn try_retry(&mut self, now_ms: u64) -> bool {
        let s = self.slot(now_ms);
        let (req, ret) = self.window(now_ms);
        if ret >= self.min_retries + req * self.percent / 100 {
            return false;
        }
        self.retries[s] += 1;
        true
    }
}
