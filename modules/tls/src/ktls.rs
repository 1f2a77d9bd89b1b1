//! Whether the kernel can take over TLS record encryption (kTLS).
//!
//! kTLS needs the kernel's `tls` upper layer protocol (ULP) on the TCP socket. The only
//! reliable test is to ask for it: [`probe`] connects a loopback socket pair and sets `TCP_ULP`
//! to `tls` on one end, as the engine would on a client socket after the handshake. Where the
//! kernel lacks it (module `tls` not built or not loaded), the engine keeps encrypting in user
//! space and reports the reason on /status.
//!
//! This is the crate's only unsafe code: one `setsockopt` call.
#![allow(unsafe_code)]

use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;

/// What [`probe`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ktls {
    Available,
    /// Not offered by this kernel, and why.
    Unavailable(String),
}

impl std::fmt::Display for Ktls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ktls::Available => f.write_str("available"),
            Ktls::Unavailable(why) => write!(f, "unavailable: {why}"),
        }
    }
}

/// Asks the kernel for the `tls` ULP on a connected loopback socket.
pub fn probe() -> Ktls {
    let pair = TcpListener::bind("127.0.0.1:0").and_then(|listener| {
        let client = TcpStream::connect(listener.local_addr()?)?;
        let (server, _) = listener.accept()?;
        Ok((client, server))
    });
    let (_client, server) = match pair {
        Ok(pair) => pair,
        Err(e) => return Ktls::Unavailable(format!("no loopback socket pair to test on: {e}")),
    };
    let ulp = b"tls";
    // SAFETY: `server` is an open TCP socket for the whole call (it is dropped after it), and
    // the option value is a valid buffer of `ulp.len()` bytes that setsockopt only reads.
    let rc = unsafe {
        libc::setsockopt(
            server.as_raw_fd(),
            libc::SOL_TCP,
            libc::TCP_ULP,
            ulp.as_ptr().cast(),
            ulp.len() as libc::socklen_t,
        )
    };
    if rc == 0 {
        return Ktls::Available;
    }
    let err = std::io::Error::last_os_error();
    Ktls::Unavailable(match err.raw_os_error() {
        Some(libc::ENOENT) => format!(
            "the kernel has no `tls` upper layer protocol (module tls not built or not loaded; \
             available: {})",
            available_ulps()
        ),
        Some(libc::ENOPROTOOPT) => "the kernel has no TCP_ULP socket option".to_owned(),
        _ => format!("setsockopt(TCP_ULP, \"tls\") failed: {err}"),
    })
}

/// The ULPs the kernel lists, for the reason text.
fn available_ulps() -> String {
    match std::fs::read_to_string("/proc/sys/net/ipv4/tcp_available_ulp") {
        Ok(list) if !list.trim().is_empty() => list.trim().to_owned(),
        Ok(_) => "none".to_owned(),
        Err(_) => "unknown".to_owned(),
    }
}
