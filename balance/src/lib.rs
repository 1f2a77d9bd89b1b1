//! Load balancing for bext, as pure per-core logic: no I/O, no runtime, no locks.
//!
//! The engine compiles one [`Balancer`] per upstream per core from an [`ir::Upstream`], asks it
//! for a server index per attempt ([`Balancer::pick`]) and reports back ([`Balancer::on_start`],
//! [`Balancer::on_finish`]). Health reaches the core as a [`HealthView`] (a shared bitmap the
//! control thread writes with atomics; cores only load). Active probes feed [`ActiveHealth`],
//! passive failures feed [`PassiveEjector`]; retries are decided by [`RetryPolicy`] and capped by
//! a [`RetryBudget`]; [`CircuitBreaker`] bounds connections and pending requests.
#![forbid(unsafe_code)]

use bext_ir as ir;

mod balancer;
mod breaker;
mod health;
mod metrics;
mod retry;

pub use balancer::{BalanceError, Balancer, Outcome, PickContext};
pub use breaker::{CircuitBreaker, ConnectionGuard, Open, PendingGuard};
pub use health::{ActiveHealth, HealthView, PassiveEjector, Transition};
pub use metrics::{ServerMetrics, UpstreamMetrics};
pub use retry::{Failure, RequestFacts, RetryBudget, RetryPolicy};
