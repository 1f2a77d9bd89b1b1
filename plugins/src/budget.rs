//! Call budgets: how a callback that runs too long is stopped.
//!
//! Every call into a module runs under a deadline on the process's wasmtime epoch: the
//! compiled code compares the epoch with its store's deadline at each function entry and loop
//! back edge, so whatever advances the epoch is what ends a runaway callback. Two clocks
//! advance it:
//!
//! - **On a worker**, the engine's CPU clock (`bext_stage::hooks::cpu_clock`): a timer on the
//!   worker's own CPU time signals it every [`CPU_TICK`] of CPU it spends, and the epoch
//!   advances. A call notes its thread's tick count when it starts; at each epoch change
//!   during the call the store's deadline callback compares, and the call is stopped once its
//!   own thread has ticked [`budget_ticks`] times. The budget is CPU time on the core — what a
//!   looping callback takes from the requests queued behind it — and an idle process is never
//!   woken for it: a busy core is signalled about 200 times per second of CPU, an idle one not
//!   at all.
//! - **Elsewhere** (the control thread starting a plugin at load or reload, `bext check`, this
//!   crate's own tests): a thread advances the epoch every [`EPOCH_TICK`] of wall time while any
//!   such thread holds an instance, and sleeps while none does. A call there is stopped
//!   [`budget_ticks`] ticks after it started.
//!
//! A thread woken every tick was the only clock before. On this kind of VM each wake costs
//! 18–45 µs of CPU (a timer programmed, an idle core woken), so a process with a plugin spent
//! 0.2–0.45 % of a core on it while idle, and about 0.7 µs per request at 4,000 requests a
//! second (docs/benchmarks.md).

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::thread::Thread;
use std::time::Duration;

/// How often the wall-clock thread ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// How often a worker's CPU clock ticks: every 5 ms of CPU, which the kernel checks at its
/// scheduler tick (4 ms at 250 Hz). A core busy all the time takes 200 signals a second.
pub const CPU_TICK: Duration = Duration::from_millis(5);

/// Ticks of `clock` a call of `budget` may run: the budget in whole ticks (at least one), plus
/// one since the current tick may be about to end.
pub(crate) fn budget_ticks(budget: Duration, clock: Clock) -> u64 {
    let tick = match clock {
        Clock::Cpu => CPU_TICK,
        Clock::Wall => EPOCH_TICK,
    };
    (budget.as_micros().div_ceil(tick.as_micros())).max(1) as u64 + 1
}

/// Which clock stops the calls of a thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Clock {
    /// The thread's own CPU clock (a worker).
    Cpu,
    /// The wall-clock thread (any other thread).
    Wall,
}

thread_local! {
    /// Ticks of this thread's CPU clock, advanced by its signal handler.
    static CPU_TICKS: AtomicU64 = const { AtomicU64::new(0) };
    static CLOCK: Cell<Option<Clock>> = const { Cell::new(None) };
}

/// The CPU clock's tick, in a signal handler on the thread that spent the CPU: atomics only.
fn on_cpu_tick() {
    CPU_TICKS.with(|t| t.fetch_add(1, Ordering::Relaxed));
    if let Some(e) = crate::load::started_engine() {
        e.increment_epoch();
    }
}

/// Ticks of the calling thread's CPU clock so far.
pub(crate) fn cpu_ticks() -> u64 {
    CPU_TICKS.with(|t| t.load(Ordering::Relaxed))
}

/// The clock that stops the calling thread's calls, started on the first use.
pub(crate) fn clock() -> Clock {
    CLOCK.with(|c| {
        if let Some(k) = c.get() {
            return k;
        }
        let k = match bext_stage::hooks::cpu_clock(CPU_TICK, on_cpu_tick) {
            Ok(()) => Clock::Cpu,
            Err(_) => Clock::Wall,
        };
        c.set(Some(k));
        k
    })
}

/// Instances held on threads without a CPU clock: the wall-clock thread ticks while any is.
static WALL_USERS: AtomicUsize = AtomicUsize::new(0);

/// The wall-clock thread, started on first use.
fn wall_thread() -> &'static Thread {
    static THREAD: OnceLock<Thread> = OnceLock::new();
    THREAD.get_or_init(|| {
        let started = std::thread::Builder::new()
            .name("bext-wasm-epoch".into())
            .spawn(|| loop {
                if WALL_USERS.load(Ordering::Acquire) == 0 {
                    // Woken by the next holder (an unpark before this park is not lost).
                    std::thread::park();
                    continue;
                }
                std::thread::sleep(EPOCH_TICK);
                crate::load::engine().increment_epoch();
            });
        match started {
            Ok(t) => t.thread().clone(),
            // Without it no budget would hold on this thread: refuse to go on instead.
            Err(e) => panic!("cannot start the plugin budget thread: {e}"),
        }
    })
}

/// An instance on a thread without a CPU clock: the wall-clock thread ticks while it lives.
pub(crate) struct WallTicks(());

impl WallTicks {
    pub(crate) fn hold() -> WallTicks {
        if WALL_USERS.fetch_add(1, Ordering::AcqRel) == 0 {
            wall_thread().unpark();
        }
        WallTicks(())
    }
}

impl Drop for WallTicks {
    fn drop(&mut self) {
        WALL_USERS.fetch_sub(1, Ordering::AcqRel);
    }
}
