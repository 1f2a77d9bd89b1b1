//! bext-engine: the data plane of bext.
//!
//! Per-core workers (one monoio runtime per thread, pinned, each with its own `SO_REUSEPORT`
//! listener) serve HTTP/1.1 with the strict codec of `bext-http1`, run the compiled
//! [`Pipeline`] (route → request filters → action) and proxy to upstreams through per-core
//! connection pools. A control side ([`Engine`]) starts the workers, publishes new pipelines
//! and stops them with a bounded drain. See `docs/architecture.md` for the phase chart.
#![deny(unsafe_code)]

pub mod admin;
pub mod body;
mod callout;
mod conn;
pub mod date;
pub mod error;
pub mod h3;
pub(crate) mod handler;
pub mod health;
pub(crate) mod idle;
pub mod io;
pub mod log;
pub mod metrics;
pub mod notify;
pub mod origin;
pub mod pipeline;
mod reqid;
pub mod server;
pub mod stage;
pub mod stop;
pub mod stream;
mod sys;
pub mod tls;
pub mod trace;
pub mod upstream;
pub mod upstream_conn;
pub mod worker;

#[cfg(test)]
mod testing;

pub use conn::{strip_port, valid_request_id};
pub use error::ErrorClass;
pub use handler::proxy::upstream_head;
pub use pipeline::{CompileError, Pipeline};
pub use server::{Driver, DriverChoice, Engine, EngineOptions, StartError};
