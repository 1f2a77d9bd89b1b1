//! Active health checks: one probe per upstream server for the whole process, not one per core.
//!
//! A [`HealthChecker`] owns one thread. For every upstream with a `health` block it probes each
//! server every `interval` (an HTTP `GET path` whose status must be 2xx or 3xx, or a TCP
//! connect), each probe bounded by `timeout`, with blocking sockets: probes that are due
//! together run on short-lived scoped threads so that one dead server does not delay the
//! others. Results feed `bext_balance::ActiveHealth` (healthy/unhealthy thresholds); a
//! transition flips the server's bit in the upstream's shared `HealthView`, which every core
//! reads with a relaxed load on its next pick: no lock and no message on the request path.
//!
//! Reloads: [`HealthChecker::adopt`] gives the new pipeline its views before the workers
//! prepare it (an upstream whose name and server list are unchanged keeps the very same view;
//! otherwise a new view starts from what the probes know about each remaining server, keyed by
//! upstream name and address, new servers up). [`HealthChecker::install`] switches the probe
//! set once every core committed; a reload that aborts leaves the probes untouched.

use crate::pipeline::Pipeline;
use bext_balance::{ActiveHealth, HealthView, Transition};
use bext_ir as ir;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Most probes run at the same time; more due probes wait for the next batch.
const BATCH: usize = 64;
/// Longest status line read from an HTTP probe's answer.
const STATUS_LINE_MAX: usize = 1024;

/// The probes of one upstream.
struct Group {
    name: String,
    check: ir::HealthCheck,
    servers: Vec<SocketAddr>,
    /// Host field of HTTP probes: the server address as configured.
    hosts: Vec<String>,
    /// TLS of each server (`server … tls`): probes run over it, verified like requests.
    tls: Vec<Option<bext_tls::UpstreamTls>>,
    view: HealthView,
    active: ActiveHealth,
    due: Vec<Instant>,
}

impl Group {
    fn same_servers(&self, name: &str, servers: &[SocketAddr]) -> bool {
        self.name == name && self.servers == servers
    }
}

#[derive(Default)]
struct Probes {
    stop: bool,
    groups: Vec<Group>,
}

/// The process-wide active health checker (see the module documentation).
pub struct HealthChecker {
    state: Arc<(Mutex<Probes>, Condvar)>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for HealthChecker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthChecker").finish_non_exhaustive()
    }
}

fn lock(m: &Mutex<Probes>) -> MutexGuard<'_, Probes> {
    // A poisoned lock only means a probe thread panicked while holding it; the probe set is
    // still consistent (every update is a whole assignment).
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the probes currently know about server `addr` of upstream `name`.
fn known_state(groups: &[Group], name: &str, addr: SocketAddr) -> Option<bool> {
    let g = groups.iter().find(|g| g.name == name)?;
    let i = g.servers.iter().position(|a| *a == addr)?;
    Some(g.active.is_up(i))
}

impl HealthChecker {
    /// Start the checker thread, probing the upstreams of `p` that have a `health` block.
    pub fn start(p: &Pipeline) -> std::io::Result<HealthChecker> {
        let state = Arc::new((Mutex::new(Probes::default()), Condvar::new()));
        let st = state.clone();
        let thread = std::thread::Builder::new()
            .name("bext-health".into())
            .spawn(move || run(&st))?;
        let checker = HealthChecker {
            state,
            thread: Mutex::new(Some(thread)),
        };
        checker.install(p);
        Ok(checker)
    }

    /// Give `p` its health views (before the workers prepare it).
    pub fn adopt(&self, p: &mut Pipeline) {
        let probes = lock(&self.state.0);
        for def in &mut p.upstreams {
            if def.config.health.is_none() {
                continue;
            }
            let addrs: Vec<SocketAddr> = def.servers.iter().map(|s| s.addr).collect();
            if let Some(g) = probes
                .groups
                .iter()
                .find(|g| g.same_servers(&def.name, &addrs))
            {
                def.health = g.view.clone();
                continue;
            }
            let view = HealthView::all_up(addrs.len());
            for (i, a) in addrs.iter().enumerate() {
                if known_state(&probes.groups, &def.name, *a) == Some(false) {
                    view.set(i, false);
                }
            }
            def.health = view;
        }
    }

    /// Probe the upstreams of `p` from now on (after every core committed it). An upstream
    /// whose name, servers and thresholds are unchanged keeps its probe state as it is (streaks
    /// and schedule); otherwise each remaining server keeps its up/down state and its place in
    /// the schedule, and new servers start up and are probed at once.
    pub fn install(&self, p: &Pipeline) {
        let (m, cv) = &*self.state;
        let mut probes = lock(m);
        let now = Instant::now();
        let mut old = std::mem::take(&mut probes.groups);
        let mut groups = Vec::new();
        for def in &p.upstreams {
            let Some(check) = &def.config.health else {
                continue;
            };
            let addrs: Vec<SocketAddr> = def.servers.iter().map(|s| s.addr).collect();
            let hosts: Vec<String> = def.config.servers.iter().map(|s| s.addr.clone()).collect();
            let tls: Vec<_> = def.servers.iter().map(|s| s.tls.clone()).collect();
            let kept = old.iter().position(|g| {
                g.same_servers(&def.name, &addrs)
                    && g.check.healthy == check.healthy
                    && g.check.unhealthy == check.unhealthy
            });
            if let Some(k) = kept {
                let mut g = old.swap_remove(k);
                for i in 0..addrs.len() {
                    def.health.set(i, g.active.is_up(i));
                }
                g.view = def.health.clone();
                g.check = check.clone();
                g.hosts = hosts;
                g.tls = tls;
                groups.push(g);
                continue;
            }
            let up: Vec<bool> = addrs
                .iter()
                .map(|a| known_state(&old, &def.name, *a).unwrap_or(true))
                .collect();
            for (i, u) in up.iter().enumerate() {
                def.health.set(i, *u);
            }
            let due = addrs
                .iter()
                .map(|a| {
                    old.iter()
                        .find(|g| g.name == def.name)
                        .and_then(|g| g.servers.iter().position(|b| b == a).map(|i| g.due[i]))
                        .unwrap_or(now)
                })
                .collect();
            groups.push(Group {
                name: def.name.clone(),
                check: check.clone(),
                servers: addrs,
                hosts,
                tls,
                view: def.health.clone(),
                active: ActiveHealth::with_state(up, check),
                due,
            });
        }
        probes.groups = groups;
        cv.notify_all();
    }

    /// Stop the thread and wait for it (probes in flight end within their timeout).
    pub fn stop(&self) {
        let (m, cv) = &*self.state;
        lock(m).stop = true;
        cv.notify_all();
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = handle {
            let _ = t.join();
        }
    }
}

impl Drop for HealthChecker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One probe to run: where, how, and whose result it is.
#[derive(Clone)]
struct Due {
    name: String,
    addr: SocketAddr,
    host: String,
    tls: Option<bext_tls::UpstreamTls>,
    kind: ir::HealthKind,
    timeout: Duration,
}

fn run(state: &(Mutex<Probes>, Condvar)) {
    let (m, cv) = state;
    loop {
        let due: Vec<Due> = {
            let mut probes = lock(m);
            loop {
                if probes.stop {
                    return;
                }
                let now = Instant::now();
                let next = probes
                    .groups
                    .iter()
                    .flat_map(|g| g.due.iter())
                    .min()
                    .copied();
                match next {
                    Some(t) if t <= now => break,
                    Some(t) => {
                        probes = cv
                            .wait_timeout(probes, t - now)
                            .unwrap_or_else(|e| e.into_inner())
                            .0;
                    }
                    None => probes = cv.wait(probes).unwrap_or_else(|e| e.into_inner()),
                }
            }
            let now = Instant::now();
            let mut due = Vec::new();
            for g in &mut probes.groups {
                let interval = Duration::from_millis(g.check.interval_ms.max(1));
                for i in 0..g.servers.len() {
                    if g.due[i] <= now && due.len() < BATCH {
                        g.due[i] = now + interval;
                        due.push(Due {
                            name: g.name.clone(),
                            addr: g.servers[i],
                            host: g.hosts.get(i).cloned().unwrap_or_default(),
                            tls: g.tls.get(i).cloned().flatten(),
                            kind: g.check.kind.clone(),
                            timeout: Duration::from_millis(g.check.timeout_ms.max(1)),
                        });
                    }
                }
            }
            due
        };
        let results = probe_all(&due, &|| {
            std::thread::Builder::new().name("bext-health-probe".into())
        });
        let mut probes = lock(m);
        for (d, ok) in due.iter().zip(results) {
            let Some(g) = probes.groups.iter_mut().find(|g| g.name == d.name) else {
                continue;
            };
            let Some(i) = g.servers.iter().position(|a| *a == d.addr) else {
                continue;
            };
            match g.active.on_probe_result(i, ok) {
                Some(Transition::Up) => {
                    g.view.set(i, true);
                    eprintln!("bext: health: {} {} is up", g.name, d.addr);
                }
                Some(Transition::Down) => {
                    g.view.set(i, false);
                    eprintln!("bext: health: {} {} is down", g.name, d.addr);
                }
                _ => {}
            }
        }
    }
}

/// Run every probe of `due`, each on a thread made by `thread` (so that one slow server does
/// not delay the others). A probe whose thread cannot be started (out of threads or memory)
/// counts as a failed probe: `std::thread::scope`'s own `spawn` panics then, and with
/// `panic = "abort"` that would end the whole process.
fn probe_all(due: &[Due], thread: &dyn Fn() -> std::thread::Builder) -> Vec<bool> {
    std::thread::scope(|s| {
        let handles: Vec<_> = due
            .iter()
            .map(|d| {
                thread()
                    .spawn_scoped(s, move || {
                        probe_with(d.addr, &d.kind, &d.host, d.tls.as_ref(), d.timeout)
                    })
                    .ok()
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.is_some_and(|h| h.join().unwrap_or(false)))
            .collect()
    })
}

/// One probe: a TCP connect, or an HTTP `GET path` answered with 2xx or 3xx, within `timeout`.
pub fn probe(addr: SocketAddr, kind: &ir::HealthKind, host: &str, timeout: Duration) -> bool {
    probe_with(addr, kind, host, None, timeout)
}

/// [`probe`] to a server reached over TLS when `tls` is given: the handshake (with the
/// certificate verified, as for requests) is part of the probe, for `tcp` probes too.
pub fn probe_with(
    addr: SocketAddr,
    kind: &ir::HealthKind,
    host: &str,
    tls: Option<&bext_tls::UpstreamTls>,
    timeout: Duration,
) -> bool {
    let deadline = Instant::now() + timeout;
    let Ok(tcp) = TcpStream::connect_timeout(&addr, timeout) else {
        return false;
    };
    let left = |d: Instant| d.saturating_duration_since(Instant::now());
    let timeouts = |s: &TcpStream| {
        let rest = left(deadline).max(Duration::from_millis(1));
        s.set_write_timeout(Some(rest)).is_ok() && s.set_read_timeout(Some(rest)).is_ok()
    };
    let mut s: Box<dyn ReadWrite> = match tls {
        None => Box::new(tcp),
        Some(t) => {
            let Ok(conn) =
                bext_tls::rustls::ClientConnection::new(t.config().clone(), t.name().clone())
            else {
                return false;
            };
            let mut s = bext_tls::rustls::StreamOwned::new(conn, tcp);
            while s.conn.is_handshaking() {
                if !timeouts(&s.sock) || s.conn.complete_io(&mut s.sock).is_err() {
                    return false;
                }
            }
            Box::new(s)
        }
    };
    let path = match kind {
        ir::HealthKind::Tcp => return true,
        ir::HealthKind::Http { path } => path,
    };
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: bext-health-check\r\nConnection: close\r\n\r\n"
    );
    if !timeouts(s.tcp()) || s.write_all(req.as_bytes()).is_err() || s.flush().is_err() {
        return false;
    }
    let mut buf = Vec::with_capacity(128);
    let mut chunk = [0u8; 256];
    loop {
        if let Some(end) = buf.windows(2).position(|w| w == b"\r\n") {
            return status_ok(&buf[..end]);
        }
        if buf.len() > STATUS_LINE_MAX {
            return false;
        }
        if left(deadline).is_zero() || !timeouts(s.tcp()) {
            return false;
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// A probe's stream, plain or TLS, with the socket its timeouts are set on.
trait ReadWrite: Read + Write {
    fn tcp(&self) -> &TcpStream;
}

impl ReadWrite for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl ReadWrite for bext_tls::rustls::StreamOwned<bext_tls::rustls::ClientConnection, TcpStream> {
    fn tcp(&self) -> &TcpStream {
        &self.sock
    }
}

/// Whether a status line says 2xx or 3xx.
fn status_ok(line: &[u8]) -> bool {
    let Some(rest) = line
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| line.strip_prefix(b"HTTP/1.0 "))
    else {
        return false;
    };
    rest.len() >= 3
        && matches!(rest[0], b'2' | b'3')
        && rest[1].is_ascii_digit()
        && rest[2].is_ascii_digit()
        && rest.get(3).is_none_or(|&x| x == b' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server the probes found down stays down in the views of the next pipeline (same
    /// server list: the same view; a server added: a new view starting from the known states),
    /// and the new server is probed and up.
    #[test]
    fn reloads_carry_health_state_over() {
        let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let added = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let (a, c, n) = (
            open.local_addr().unwrap().to_string(),
            closed.to_string(),
            added.local_addr().unwrap().to_string(),
        );
        let with_health = |u: &mut ir::Upstream| {
            u.health = Some(ir::HealthCheck {
                kind: ir::HealthKind::Tcp,
                interval_ms: 20,
                timeout_ms: 500,
                healthy: 1,
                unhealthy: 1,
                at: ir::Loc::default(),
            })
        };
        let p1 = crate::testing::pipeline_with(&[(&a, 1), (&c, 1)], 1, with_health);
        let checker = HealthChecker::start(&p1).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while p1.upstreams[0].health.is_up(1) {
            assert!(
                Instant::now() < deadline,
                "the closed port was never marked down"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(p1.upstreams[0].health.is_up(0));

        // (pipeline, state of each server right after adopt)
        let mut same = crate::testing::pipeline_with(&[(&a, 1), (&c, 1)], 2, with_health);
        let mut grown = crate::testing::pipeline_with(&[(&c, 1), (&a, 1), (&n, 1)], 3, with_health);
        checker.adopt(&mut same);
        checker.adopt(&mut grown);
        let states = |p: &Pipeline| -> Vec<bool> {
            (0..p.upstreams[0].servers.len())
                .map(|i| p.upstreams[0].health.is_up(i))
                .collect()
        };
        assert_eq!(states(&same), vec![true, false]);
        assert_eq!(states(&grown), vec![false, true, true]);
        // The same view: what the probes write to the running one, the next one sees.
        p1.upstreams[0].health.set(0, false);
        assert!(!same.upstreams[0].health.is_up(0));
        p1.upstreams[0].health.set(0, true);

        checker.install(&grown);
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(
            states(&grown),
            vec![false, true, true],
            "probes keep agreeing"
        );
        checker.stop();
        drop((open, added));
    }

    /// A probe thread that cannot be started is a failed probe, not a panic (which, with
    /// `panic = "abort"`, would end the process).
    #[test]
    fn health_probe_spawn_failure_counts_as_failed_probe() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let due = vec![
            Due {
                name: "app".into(),
                addr: l.local_addr().unwrap(),
                host: String::new(),
                tls: None,
                kind: ir::HealthKind::Tcp,
                timeout: Duration::from_secs(5),
            };
            3
        ];
        let normal = || std::thread::Builder::new();
        assert_eq!(probe_all(&due, &normal), vec![true; 3]);
        // A stack no machine can map: the thread cannot be created.
        let failing = || std::thread::Builder::new().stack_size(1 << 60);
        assert_eq!(probe_all(&due, &failing), vec![false; 3]);
    }

    #[test]
    fn only_2xx_and_3xx_status_lines_are_healthy() {
        let table: &[(&str, bool)] = &[
            ("HTTP/1.1 200 OK", true),
            ("HTTP/1.0 204", true),
            ("HTTP/1.1 301 Moved Permanently", true),
            ("HTTP/1.1 404 Not Found", false),
            ("HTTP/1.1 503 Service Unavailable", false),
            ("HTTP/1.1 199 x", false),
            ("HTTP/1.1 2x0 x", false),
            ("HTTP/1.1 2000 x", false),
            ("HTTP/2 200", false),
            ("", false),
        ];
        for (line, want) in table {
            assert_eq!(status_ok(line.as_bytes()), *want, "{line:?}");
        }
    }

    /// Probes against real sockets: a listener that answers each kind of status, one that
    /// accepts and says nothing (the timeout), and a closed port.
    #[test]
    fn probes_follow_what_the_server_answers() {
        fn answering(reply: &'static [u8]) -> SocketAddr {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let a = l.local_addr().unwrap();
            std::thread::spawn(move || {
                for s in l.incoming().flatten() {
                    let mut s = s;
                    let mut b = [0u8; 512];
                    let _ = s.read(&mut b);
                    let _ = s.write_all(reply);
                }
            });
            a
        }
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let http = ir::HealthKind::Http {
            path: "/health".into(),
        };
        let t = Duration::from_millis(300);
        let table: Vec<(SocketAddr, &ir::HealthKind, bool)> = vec![
            (answering(b"HTTP/1.1 200 OK\r\n\r\n"), &http, true),
            (answering(b"HTTP/1.1 500 Oops\r\n\r\n"), &http, false),
            (answering(b"garbage\r\n"), &http, false),
            (silent.local_addr().unwrap(), &http, false),
            (silent.local_addr().unwrap(), &ir::HealthKind::Tcp, true),
            (closed, &ir::HealthKind::Tcp, false),
            (closed, &http, false),
        ];
        for (addr, kind, want) in table {
            assert_eq!(probe(addr, kind, "x", t), want, "{addr} {kind:?}");
        }
    }
}
