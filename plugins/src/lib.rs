//! bext-plugins: WASM plugin stages, the proxy-wasm ABI (0.2.1 and 0.2.0) on wasmtime.
//!
//! # How it fits
//!
//! ```text
//! plugin "f.wasm" { … } ──load (control thread)──▶ Plugin: module compiled once (cranelift),
//!                                                   cached by content, imports checked,
//!                                                   started once to check its configuration
//! per core: pool::slot(plugin) ──▶ Vm: one instance (store: memory limit, epoch budget),
//!                                       root context started (vm_start, configure)
//! per request: Stream::open ──▶ stream context; request/response headers, bodies,
//!                                trailers, callouts; finish → log, done, delete
//! ```
//!
//! A call that traps or runs past its budget is a [`Fault`]: the request it ran for fails
//! (500 `plugin-failed`) or goes on without the plugin (`on_error skip`), the instance is
//! dropped and the next request of the core starts a fresh one. Budgets are enforced by
//! wasmtime's epoch interruption, the epoch advanced by each worker's CPU clock (elsewhere by a
//! wall-clock thread that sleeps while unused; see `budget`); docs/plugins.md says why epochs
//! rather than fuel.
//!
//! Nothing here does I/O on the request path or knows the runtime: callouts are handed to the
//! caller ([`Stream::take_callouts`]) and answered back ([`Stream::callout_done`]); ticks come
//! from the worker's tick ([`pool::tick`]).
#![forbid(unsafe_code)]

mod abi;
mod budget;
pub mod core;
mod host;
pub mod load;
pub mod metrics;
pub mod pool;
pub mod settings;
pub mod stage;
pub mod stream;
pub mod vm;

pub use load::{load, Abi, LoadError, LoadErrorKind, Plugin};
pub use settings::{OnError, Settings};
pub use stream::{Callout, CalloutResponse, LocalReply, Props, Stream, StreamData, Verdict};
pub use vm::{Fault, Vm};
