//! Process-wide hooks a stage family registers when it is compiled, which the engine runs
//! without knowing the family: work on every core's tick (a plugin's `proxy_on_tick`) and
//! counters shown by `/status` and `/metrics`. Each is registered under a key, once; running
//! them takes a read lock, on the tick or when the control side gathers metrics, never on the
//! request path. The other way round, one service the engine provides to the families: a
//! clock on a worker's CPU time ([`cpu_clock`]).

use std::sync::{OnceLock, PoisonError, RwLock};
use std::time::Duration;

/// Work for each worker's tick: `now_ms` and `last_ms` on the worker's monotonic clock.
pub type TickFn = fn(now_ms: u64, last_ms: u64);

/// One figure a stage family exports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    /// The metric family, `bext_…`.
    pub name: &'static str,
    pub help: &'static str,
    /// A gauge (may go down) rather than a counter.
    pub gauge: bool,
    /// One label of the sample, when the family has several.
    pub label: Option<(&'static str, String)>,
    pub value: i64,
}

/// Appends a family's current figures.
pub type CountersFn = fn(&mut Vec<Counter>);

static TICKS: RwLock<Vec<(&str, TickFn)>> = RwLock::new(Vec::new());
static COUNTERS: RwLock<Vec<(&str, CountersFn)>> = RwLock::new(Vec::new());

/// Run `f` on every worker's tick from now on (a second registration under `key` is ignored).
pub fn on_tick(key: &'static str, f: TickFn) {
    let mut list = TICKS.write().unwrap_or_else(PoisonError::into_inner);
    if !list.iter().any(|(k, _)| *k == key) {
        list.push((key, f));
    }
}

/// The worker's tick: every registered function.
pub fn tick(now_ms: u64, last_ms: u64) {
    let list = TICKS.read().unwrap_or_else(PoisonError::into_inner);
    for (_, f) in list.iter() {
        f(now_ms, last_ms);
    }
}

/// Export the figures `f` gives (a second registration under `key` is ignored).
pub fn add_counters(key: &'static str, f: CountersFn) {
    let mut list = COUNTERS.write().unwrap_or_else(PoisonError::into_inner);
    if !list.iter().any(|(k, _)| *k == key) {
        list.push((key, f));
    }
}

/// Every registered family's figures, in registration order.
pub fn counters() -> Vec<Counter> {
    let list = COUNTERS.read().unwrap_or_else(PoisonError::into_inner);
    let mut out = Vec::new();
    for (_, f) in list.iter() {
        f(&mut out);
    }
    out
}

/// A clock on the calling thread's CPU time: calls the `fn()` every period of CPU the thread
/// spends, from a signal handler on that thread (so the function may only touch atomics).
/// Refused (an error) on threads the provider does not serve.
pub type CpuClockFn = fn(Duration, fn()) -> std::io::Result<()>;

static CPU_CLOCK: OnceLock<CpuClockFn> = OnceLock::new();

/// The engine's CPU clock for its workers (the first provider stays).
pub fn provide_cpu_clock(f: CpuClockFn) {
    let _ = CPU_CLOCK.set(f);
}

/// Start the calling thread's CPU clock (see [`CpuClockFn`]): an error where no provider
/// serves this thread (no engine, or a thread that is not a worker).
pub fn cpu_clock(period: Duration, on_tick: fn()) -> std::io::Result<()> {
    match CPU_CLOCK.get() {
        Some(f) => f(period, on_tick),
        None => Err(std::io::ErrorKind::Unsupported.into()),
    }
}
