//! The systemd notification protocol (`sd_notify(3)`), for `Type=notify` services: when the
//! service manager sets `NOTIFY_SOCKET`, bext tells it `READY=1` once every listener is bound
//! and every worker runs, `RELOADING=1` (with `MONOTONIC_USEC`) when a reload starts and
//! `READY=1` again when it ends (committed or refused), `STOPPING=1` when it starts draining,
//! and, with `WatchdogSec=` (`WATCHDOG_USEC`), `WATCHDOG=1` every half period for as long as
//! every worker keeps ticking: a worker stuck in a loop stops the pings and systemd restarts
//! the service.
//!
//! The protocol is one datagram per message on a unix socket, a filesystem path or an abstract
//! name (`@name`), with `KEY=value` lines. Without `NOTIFY_SOCKET` every call here does
//! nothing. Sending never blocks the caller for long (the socket is non-blocking) and a failure
//! is ignored, as `sd_notify` callers do: the manager may have gone away.

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::OnceLock;
use std::time::Duration;

struct Notifier {
    sock: UnixDatagram,
    addr: SocketAddr,
}

static NOTIFIER: OnceLock<Option<Notifier>> = OnceLock::new();

/// The address `NOTIFY_SOCKET` names: a path, or an abstract name after `@`.
fn address(v: &str) -> Option<SocketAddr> {
    if let Some(name) = v.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        return SocketAddr::from_abstract_name(name.as_bytes()).ok();
    }
    if v.starts_with('/') {
        return SocketAddr::from_pathname(v).ok();
    }
    None
}

fn notifier() -> Option<&'static Notifier> {
    NOTIFIER
        .get_or_init(|| {
            let v = std::env::var("NOTIFY_SOCKET").ok()?;
            let addr = address(&v)?;
            let sock = UnixDatagram::unbound().ok()?;
            sock.set_nonblocking(true).ok()?;
            Some(Notifier { sock, addr })
        })
        .as_ref()
}

/// Send `state` (newline-separated `KEY=value` lines); false when there is no manager to tell
/// or it could not be told.
pub fn send(state: &str) -> bool {
    notifier().is_some_and(|n| n.sock.send_to_addr(state.as_bytes(), &n.addr).is_ok())
}

/// The service is up: every listener bound, every worker running.
pub fn ready(status: &str) -> bool {
    send(&format!(
        "READY=1\nMAINPID={}\nSTATUS={}",
        std::process::id(),
        one_line(status)
    ))
}

/// A reload starts (`READY=1` follows when it ends, whatever its outcome).
pub fn reloading() -> bool {
    send(&format!(
        "RELOADING=1\nMONOTONIC_USEC={}\nSTATUS=reloading",
        crate::sys::monotonic_usec()
    ))
}

/// The service starts stopping (draining).
pub fn stopping() -> bool {
    send("STOPPING=1\nSTATUS=draining")
}

/// `STATUS=` text: one line.
fn one_line(s: &str) -> String {
    s.replace('\n', " ")
}

/// How often to send `WATCHDOG=1`: half of `WATCHDOG_USEC`, when it is set for this process
/// (`WATCHDOG_PID` unset or ours).
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.parse::<u32>().ok()? != std::process::id() {
            return None;
        }
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

/// Start the watchdog thread when systemd asked for one: every `watchdog_interval`, it sends
/// `WATCHDOG=1` if `alive()` says every worker made progress since the last look. Returns
/// false when no watchdog was asked for (or the thread could not start).
pub fn start_watchdog(mut alive: impl FnMut() -> bool + Send + 'static) -> bool {
    let Some(every) = watchdog_interval() else {
        return false;
    };
    if notifier().is_none() {
        return false;
    }
    std::thread::Builder::new()
        .name("bext-watchdog".into())
        .spawn(move || loop {
            std::thread::sleep(every);
            if alive() {
                send("WATCHDOG=1");
            }
        })
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_socket_addresses_are_paths_or_abstract_names() {
        use std::os::linux::net::SocketAddrExt;
        let a = address("@bext-test").expect("abstract");
        assert_eq!(a.as_abstract_name(), Some(&b"bext-test"[..]));
        let p = address("/run/systemd/notify").expect("path");
        assert_eq!(
            p.as_pathname(),
            Some(std::path::Path::new("/run/systemd/notify"))
        );
        assert!(address("relative").is_none());
        assert!(address("").is_none());
    }

    #[test]
    fn messages_reach_an_abstract_socket() {
        let name = format!("bext-notify-test-{}", std::process::id());
        let addr = address(&format!("@{name}")).unwrap();
        let rx = UnixDatagram::bind_addr(&addr).unwrap();
        let n = Notifier {
            sock: UnixDatagram::unbound().unwrap(),
            addr,
        };
        n.sock.send_to_addr(b"READY=1", &n.addr).unwrap();
        let mut buf = [0u8; 64];
        let len = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1");
    }
}
