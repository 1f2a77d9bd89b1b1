//! Parked client connections: what an idle or silent client connection costs while it waits.
//!
//! A keep-alive connection that stays quiet past its hot window (see `conn`) is parked: its task
//! ends, and what remains is its descriptor in the worker's parking set — an epoll instance of
//! its own, watched by one task per worker — plus an expiry time and its request count: 12
//! bytes in a table instead of a task, a runtime registration and a shared-descriptor record.
//! When the client sends its next request the descriptor becomes readable, leaves the set, and
//! gets a connection task again, under the pipeline current at that moment (a reload meanwhile
//! applies at once).
//!
//! A TLS connection parks the same way: its session (keys, sequence numbers, rustls' state)
//! waits in a table beside the descriptors, keyed by the same token, and goes back to a task
//! with it. Only a session with nothing decrypted or received left to read is parked.
//!
//! A new connection that has not sent its first byte by the end of its hot window is parked the
//! same way, with the header timeout as its expiry instead of the idle timeout: ten thousand
//! silent connections cost what ten thousand idle keep-alive ones do, not a task holding a
//! request's state each.
//!
//! The price is four `epoll_ctl` calls per quiet period (leave the runtime's set, join the
//! parking set, and back again) plus a `dup` and a `close` (the runtime's descriptor is
//! closed and a duplicate parked), never anything per request: a connection that keeps sending
//! stays hot and is never parked. Readiness is level-checked on registration, so bytes that
//! arrive while a connection is being parked wake it at once.
//!
//! Both drivers park. On io_uring the hot window ends by cancelling the posted read and
//! awaiting it, so a request that raced the cancellation is served, not lost.

use crate::stop::Woken;
use crate::stream::ClientStream;
use crate::worker::Worker;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use monoio::net::TcpStream;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::pin::pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Events taken from the parking set per `epoll_wait`.
const BATCH: usize = 256;

/// How often parked connections are checked for their idle timeout (so a parked connection
/// closes up to this much after its timeout).
const SWEEP: Duration = Duration::from_millis(500);

/// Expiry times are kept in units of this since the set was created (u32: 13 years).
const UNIT_MS: u64 = 100;

struct Slot {
    fd: OwnedFd,
    expires: u32,
    /// Requests served on the connection so far (`keepalive_requests` counts across parking).
    served: u32,
}

struct Set {
    poll: Poll,
    events: Events,
    /// Indexed by token; `Option<Slot>` is 12 bytes (the descriptor's niche).
    slots: Vec<Option<Slot>>,
    free: Vec<u32>,
    /// Tokens of one batch of events, kept between wake-ups so a wake-up allocates nothing.
    ready: Vec<usize>,
    epoch: Instant,
    /// The TLS sessions of parked TLS connections, by token: a TLS connection parks like a
    /// plain one (no task), its session (keys, sequence numbers) kept here, and only plain
    /// connections keep their 12-byte slot.
    sessions: HashMap<u32, TlsSession>,
}

type TlsSession = Rc<RefCell<crate::tls::Session>>;

impl Set {
    fn units(&self, t: Instant) -> u32 {
        let ms = t.saturating_duration_since(self.epoch).as_millis() as u64;
        u32::try_from(ms / UNIT_MS).unwrap_or(u32::MAX)
    }

    fn remove(&mut self, idx: usize) -> Option<Slot> {
        let slot = self.slots.get_mut(idx)?.take()?;
        let _ = self
            .poll
            .registry()
            .deregister(&mut SourceFd(&slot.fd.as_raw_fd()));
        self.free.push(idx as u32);
        Some(slot)
    }
}

/// A worker's parked connections. Parking is unavailable (and connections wait in their own
/// task, as on io_uring) when the parking set cannot be created or its watcher fails.
pub struct Parked {
    set: RefCell<Option<Set>>,
    count: Cell<usize>,
}

impl Parked {
    pub fn new(enabled: bool) -> Parked {
        let set = if enabled {
            Poll::new().ok().map(|poll| Set {
                poll,
                events: Events::with_capacity(BATCH),
                slots: Vec::new(),
                free: Vec::new(),
                ready: Vec::with_capacity(BATCH),
                epoch: Instant::now(),
                sessions: HashMap::new(),
            })
        } else {
            None
        };
        Parked {
            set: RefCell::new(set),
            count: Cell::new(0),
        }
    }

    /// Connections parked now.
    pub fn count(&self) -> usize {
        self.count.get()
    }

    pub fn available(&self) -> bool {
        self.set.borrow().is_some()
    }

    /// Park `stream`, which has served `served` requests, until it is readable or `idle`
    /// passes. `Some(stream)` when parking is not possible (the caller keeps waiting in its
    /// task); `None` when the connection was parked (or, if it could be neither parked nor
    /// handed back, closed).
    pub fn park(
        &self,
        w: &Worker,
        stream: TcpStream,
        idle: Duration,
        served: u32,
    ) -> Option<TcpStream> {
        self.park_with(w, stream, None, idle, served)
            .err()
            .map(|(tcp, _)| tcp)
    }

    /// [`Parked::park`] for a TLS connection: its session waits with its descriptor. Only a
    /// session holding no plaintext or records yet to be read is parked (bytes already taken
    /// from the socket would never make the descriptor readable).
    pub fn park_tls(
        &self,
        w: &Worker,
        stream: crate::tls::TlsStream,
        idle: Duration,
        served: u32,
    ) -> Option<crate::tls::TlsStream> {
        if stream.holds_input() {
            return Some(stream);
        }
        let (tcp, session) = stream.into_parts();
        match self.park_with(w, tcp, Some(session), idle, served) {
            Ok(()) => None,
            Err((tcp, Some(session))) => Some(crate::tls::TlsStream::from_parts(tcp, session)),
            // The descriptor came back without its session: cannot happen (it is handed
            // back with the session it was given); the connection closes.
            Err((_, None)) => None,
        }
    }

    #[allow(clippy::type_complexity)]
    fn park_with(
        &self,
        w: &Worker,
        stream: TcpStream,
        session: Option<TlsSession>,
        idle: Duration,
        served: u32,
    ) -> Result<(), (TcpStream, Option<TlsSession>)> {
        let mut guard = self.set.borrow_mut();
        let Some(set) = guard.as_mut() else {
            return Err((stream, session));
        };
        // A descriptor of our own for the socket, and the runtime's closed with its stream
        // (deregistered first on epoll, a close operation on io_uring). Not `into_raw_fd`:
        // monoio 0.2.4 (the latest release) implements it with `SharedFd::try_unwrap`, which
        // creates its placeholder state with `MaybeUninit::uninit().assume_init()`, undefined
        // behaviour, and panics (`expect`) when the descriptor is shared. Costs one `dup`.
        let fd = match crate::sys::duplicate(stream.as_raw_fd()) {
            Ok(fd) => fd,
            // Out of descriptors: the connection keeps waiting in its task.
            Err(_) => return Err((stream, session)),
        };
        drop(stream);
        let idx = match set.free.pop() {
            Some(i) => i as usize,
            None => {
                set.slots.push(None);
                set.slots.len() - 1
            }
        };
        let registered = set.poll.registry().register(
            &mut SourceFd(&fd.as_raw_fd()),
            Token(idx),
            Interest::READABLE,
        );
        if registered.is_err() {
            set.free.push(idx as u32);
            drop(guard);
            return match TcpStream::from_std(std::net::TcpStream::from(fd)) {
                Ok(tcp) => Err((tcp, session)),
                Err(_) => Ok(()),
            };
        }
        let expires = set.units(Instant::now() + idle).max(1);
        set.slots[idx] = Some(Slot {
            fd,
            expires,
            served,
        });
        if let Some(s) = session {
            set.sessions.insert(idx as u32, s);
        }
        self.count.set(self.count.get() + 1);
        // A parked connection still counts as a connection of this worker.
        w.connections.set(w.connections.get() + 1);
        Ok(())
    }

    /// Take the parked connections that became readable (and give each a task again).
    fn wake(&self, w: &Rc<Worker>) {
        let mut guard = self.set.borrow_mut();
        let Some(set) = guard.as_mut() else { return };
        loop {
            match set.poll.poll(&mut set.events, Some(Duration::ZERO)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            }
            let mut ready = std::mem::take(&mut set.ready);
            ready.clear();
            ready.extend(set.events.iter().map(|ev| ev.token().0));
            for &idx in &ready {
                let Some(slot) = set.remove(idx) else {
                    continue;
                };
                self.count.set(self.count.get().saturating_sub(1));
                let session = set.sessions.remove(&(idx as u32));
                match TcpStream::from_std(std::net::TcpStream::from(slot.fd)) {
                    Ok(tcp) => {
                        let s = match session {
                            Some(s) => ClientStream::Tls(crate::tls::TlsStream::from_parts(tcp, s)),
                            None => ClientStream::Tcp(tcp),
                        };
                        // The connection moves from the set to a task: still one connection.
                        w.connections.set(w.connections.get().saturating_sub(1));
                        monoio::spawn(crate::conn::resume(w.clone(), s, slot.served));
                    }
                    Err(_) => w.connections_closed(1),
                }
            }
            let n = ready.len();
            set.ready = ready;
            if n < BATCH {
                return;
            }
        }
    }

    /// Close the parked connections whose idle timeout has passed.
    fn expire(&self, w: &Worker, now: Instant) {
        let mut guard = self.set.borrow_mut();
        let Some(set) = guard.as_mut() else { return };
        let now = set.units(now);
        for idx in 0..set.slots.len() {
            if set.slots[idx].as_ref().is_some_and(|s| s.expires <= now) {
                // Closing the only descriptor also removes it from the parking set.
                if let Some(slot) = set.slots[idx].take() {
                    drop(slot.fd);
                    set.sessions.remove(&(idx as u32));
                    set.free.push(idx as u32);
                    self.count.set(self.count.get().saturating_sub(1));
                    w.connections_closed(1);
                }
            }
        }
    }

    /// Close every parked connection (the worker stops) and, when `disable`, stop parking.
    fn close_all(&self, w: &Worker, disable: bool) {
        let mut guard = self.set.borrow_mut();
        if let Some(set) = guard.as_mut() {
            set.slots.clear();
            set.free.clear();
            set.sessions.clear();
        }
        if disable {
            *guard = None;
        }
        w.connections_closed(self.count.get());
        self.count.set(0);
    }

    /// The parking set's descriptor as a runtime stream, so its readiness can be awaited.
    fn watcher(&self) -> std::io::Result<TcpStream> {
        let raw = match self.set.borrow().as_ref() {
            Some(set) => set.poll.as_raw_fd(),
            None => return Err(std::io::ErrorKind::Unsupported.into()),
        };
        let dup = crate::sys::duplicate(raw)?;
        TcpStream::from_std(std::net::TcpStream::from(dup))
    }
}

/// The worker's parking task: wakes parked connections when they become readable, closes them
/// on their idle timeout, and all of them when the worker stops.
pub async fn watch(w: Rc<Worker>) {
    let watcher = match w.parked.watcher() {
        Ok(s) => s,
        Err(_) => {
            w.parked.close_all(&w, true);
            return;
        }
    };
    let mut next_sweep = Instant::now() + SWEEP;
    loop {
        let woke = {
            let ready = pin!(watcher.readable(false));
            let stop = pin!(w.stop.wait_until(next_sweep));
            crate::io::race(ready, stop).await
        };
        match woke {
            crate::io::Either::Left(Ok(())) => w.parked.wake(&w),
            crate::io::Either::Left(Err(_)) => {
                w.parked.close_all(&w, true);
                return;
            }
            crate::io::Either::Right(Woken::Stopped) => {
                w.parked.close_all(&w, true);
                return;
            }
            crate::io::Either::Right(Woken::Expired) => {}
        }
        let now = Instant::now();
        if now >= next_sweep {
            w.parked.expire(&w, now);
            next_sweep = now + SWEEP;
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_slot_is_the_size_of_its_descriptor_expiry_and_request_count() {
        assert_eq!(std::mem::size_of::<Option<super::Slot>>(), 12);
    }
}
