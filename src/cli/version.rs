//! `bext version` (and `bext --version`): the version, which I/O drivers can run on this
//! machine, and what the engine of this version runs and refuses.
use std::process::ExitCode;

/// What the engine runs, for the operator deciding whether a configuration will be served.
const RUNS: &str = "HTTP/1.1; routing, rewrites and redirects; reverse proxying with \
                    balancing, health checks, retries and circuit breaking; rate limits; \
                    access log; reloads; admin endpoint";

pub fn version() -> ExitCode {
    let uring = if bext_engine::server::io_uring_available() {
        "available on this kernel"
    } else {
        "not available here: the kernel or a sandbox forbids it"
    };
    println!("bext {}", env!("CARGO_PKG_VERSION"));
    println!("drivers: epoll (available), io-uring ({uring})");
    println!("runs: {RUNS}");
    if !bext::NOT_IMPLEMENTED.is_empty() {
        println!(
            "not implemented yet (E0501 in `bext check`, refused by `bext run`): {}",
            bext::NOT_IMPLEMENTED.join(", ")
        );
    }
    ExitCode::SUCCESS
}
