//! Runtime selection: the same code on monoio's epoll ("legacy") or io_uring driver.

use serde::{Deserialize, Serialize};
use std::future::Future;
use std::io;

/// Which monoio driver runs the event loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Driver {
    Epoll,
    IoUring,
}

impl Driver {
    pub fn name(self) -> &'static str {
        match self {
            Driver::Epoll => "epoll",
            Driver::IoUring => "io-uring",
        }
    }
}

/// Builds a runtime with a timer on `driver` and runs the future made by `f` to completion.
pub fn block_on<F, Fut>(driver: Driver, f: F) -> io::Result<Fut::Output>
where
    F: FnOnce() -> Fut,
    Fut: Future,
{
    Ok(match driver {
        Driver::Epoll => monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()?
            .block_on(f()),
        Driver::IoUring => monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .enable_timer()
            .build()?
            .block_on(f()),
    })
}
