//! bext-bench: the load generator, the floors and the side-by-side harness behind `bext bench`.
//!
//! - [`load`] drives closed- or open-loop HTTP/1.1 load and reports throughput, latency
//!   percentiles, errors by kind and, given the server's pids, its CPU time per request.
//! - [`idle`] holds thousands of idle keep-alive connections and reports memory per connection.
//! - [`servers`] holds the floors (a canned responder and a byte relay, the least work a server
//!   on this runtime can do) and a minimal origin, all run as binaries of this crate.
//! - [`bare`] holds the bare floor: the canned responder on a plain epoll loop, no runtime.
//! - [`table`] turns the harness's JSON lines into the markdown tables of `docs/benchmarks.md`
//!   and checks them against the acceptance bars.
//!
//! Everything but the bare floor runs on monoio, the engine's runtime, with either driver.
#![forbid(unsafe_code)]

pub mod bare;
pub mod cli;
pub mod framing;
pub mod html;
pub mod idle;
pub mod load;
pub mod procfs;
pub mod report;
pub mod rt;
pub mod schedule;
pub mod servers;
pub mod stats;
pub mod table;
