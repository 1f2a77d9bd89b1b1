//! quinn on a worker's monoio runtime: the three things quinn asks of a runtime (spawn a
//! task, a timer, a UDP socket it can poll), each answered on the worker's own thread.
//!
//! quinn's `Runtime` traits are `Send + Sync` (quinn was written for work-stealing
//! runtimes), while monoio's tasks, timers and sockets are bound to their thread. Nothing here
//! needs to cross a thread, so the answer is to keep every `Send` object plain data and put
//! the thread-bound parts on the worker:
//!
//! - **spawn**: `monoio::spawn` on the calling thread. quinn spawns its endpoint and
//!   connection drivers from inside polls that run on the worker, so they land on its runtime
//!   (a `Send` future runs fine on a thread-local executor).
//! - **timers**: a [`Timer`] is a deadline and an id; pending ones sit in the worker's
//!   [`TimerWheel`] (a heap of deadlines and a table of wakers), served by one monoio task that
//!   sleeps until the earliest deadline. quinn keeps one timer per connection, reset after
//!   each poll; a reset to a later deadline leaves a stale heap entry that is dropped when
//!   reached, and the heap is compacted when stale entries outnumber live ones.
//! - **the socket**: a non-blocking `std` UDP socket read and written with quinn-udp
//!   (`recvmsg`/`sendmsg` with GRO, GSO, ECN and the destination address where the kernel
//!   offers them). Readiness comes from the runtime: a watcher task awaits readability (and
//!   writability, while a send was refused) on a duplicate of the descriptor, on either
//!   driver (a poll SQE on io_uring, a level-checked poll on epoll), only while quinn waits
//!   for it, so a busy socket is read without a readiness round trip.

use std::cell::RefCell;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use quinn::udp::{RecvMeta, Transmit, UdpSocketState};
use quinn::{AsyncTimer, AsyncUdpSocket, Runtime, UdpPoller};

use crate::io::{race, Either};

/// quinn's runtime on a monoio worker. It must only be used from a worker's thread (every
/// quinn object of an endpoint is made and polled there).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct MonoioRuntime;

impl Runtime for MonoioRuntime {
    fn new_timer(&self, i: Instant) -> Pin<Box<dyn AsyncTimer>> {
        Box::pin(Timer::new(i))
    }

    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) {
        monoio::spawn(future);
    }

    fn wrap_udp_socket(&self, t: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        Ok(Arc::new(Udp::new(t)?))
    }
}

// ---------------------------------------------------------------------------------------
// Timers

static NEXT_TIMER: AtomicU64 = AtomicU64::new(1);

/// A quinn timer: plain data, registered with the worker's wheel only while pending.
pub(crate) struct Timer {
    id: u64,
    deadline: Instant,
}

impl fmt::Debug for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timer")
            .field("deadline", &self.deadline)
            .finish()
    }
}

impl Timer {
    fn new(deadline: Instant) -> Timer {
        Timer {
            id: NEXT_TIMER.fetch_add(1, Ordering::Relaxed),
            deadline,
        }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        // `try_with`: a timer dropped while the thread's locals are torn down has nothing
        // left to forget.
        let _ = WHEEL.try_with(|w| w.borrow_mut().forget(self.id));
    }
}

impl AsyncTimer for Timer {
    fn reset(mut self: Pin<&mut Self>, i: Instant) {
        self.deadline = i;
    }

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            let _ = WHEEL.try_with(|w| w.borrow_mut().forget(self.id));
            return Poll::Ready(());
        }
        let _ = WHEEL.try_with(|w| w.borrow_mut().arm(self.id, self.deadline, cx.waker()));
        Poll::Pending
    }
}

/// The pending timers of one worker.
#[derive(Default)]
pub(crate) struct TimerWheel {
    /// (deadline, id), earliest first; an entry is live while `armed` holds the same deadline.
    heap: BinaryHeap<std::cmp::Reverse<(Instant, u64)>>,
    armed: HashMap<u64, (Instant, Waker)>,
    /// The wheel's task, woken when a deadline earlier than the one it sleeps for is armed.
    driver: Option<Waker>,
    sleeping_until: Option<Instant>,
}

thread_local! {
    static WHEEL: RefCell<TimerWheel> = RefCell::new(TimerWheel::default());
}

impl TimerWheel {
    fn arm(&mut self, id: u64, deadline: Instant, waker: &Waker) {
        match self.armed.get_mut(&id) {
            Some((d, w)) if *d == deadline => {
                if !w.will_wake(waker) {
                    w.clone_from(waker);
                }
                return;
            }
            Some(slot) => *slot = (deadline, waker.clone()),
            None => {
                self.armed.insert(id, (deadline, waker.clone()));
            }
        }
        self.heap.push(std::cmp::Reverse((deadline, id)));
        if self.heap.len() > 2 * self.armed.len() + 64 {
            let armed = &self.armed;
            self.heap = armed
                .iter()
                .map(|(id, (d, _))| std::cmp::Reverse((*d, *id)))
                .collect();
        }
        if self.sleeping_until.is_none_or(|t| deadline < t) {
            if let Some(d) = &self.driver {
                d.wake_by_ref();
            }
        }
    }

    fn forget(&mut self, id: u64) {
        self.armed.remove(&id);
    }

    /// Wake the timers that are due; the earliest deadline still pending.
    fn fire(&mut self, now: Instant) -> Option<Instant> {
        while let Some(std::cmp::Reverse((d, id))) = self.heap.peek().copied() {
            let live = self.armed.get(&id).is_some_and(|(a, _)| *a == d);
            if !live {
                self.heap.pop();
                continue;
            }
            if d > now {
                return Some(d);
            }
            self.heap.pop();
            if let Some((_, w)) = self.armed.remove(&id) {
                w.wake();
            }
        }
        None
    }
}

/// The worker's timer task: sleeps until the earliest deadline (or until an earlier one is
/// armed) and wakes what is due. It lives as long as the worker's runtime.
pub(crate) async fn run_timers() {
    loop {
        let next = WHEEL.with(|w| w.borrow_mut().fire(Instant::now()));
        let sleep = async {
            match next {
                Some(t) => monoio::time::sleep_until(t.into()).await,
                None => std::future::pending().await,
            }
        };
        let mut first = true;
        // Pending until `arm` wakes the task for an earlier deadline.
        let rearmed = std::future::poll_fn(|cx| {
            if std::mem::take(&mut first) {
                WHEEL.with(|w| {
                    let mut w = w.borrow_mut();
                    w.sleeping_until = next;
                    w.driver = Some(cx.waker().clone());
                });
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        });
        let _ = race(pin!(sleep), pin!(rearmed)).await;
    }
}

// ---------------------------------------------------------------------------------------
// The UDP socket

/// What quinn's tasks wait for on the socket, and the wakers to call when it comes.
#[derive(Default)]
struct Waiting {
    /// Set when a send was refused (`EAGAIN`): sends wait for writability until cleared.
    send_blocked: bool,
    recv: Option<Waker>,
    send: Vec<Waker>,
    watcher: Option<Waker>,
    closed: bool,
}

/// A worker's UDP socket as quinn sees it.
pub(crate) struct Udp {
    socket: std::net::UdpSocket,
    state: UdpSocketState,
    /// A copy of `Waiting::send_blocked` read without the lock on every send.
    send_blocked: Arc<AtomicBool>,
    waiting: Arc<Mutex<Waiting>>,
}

impl fmt::Debug for Udp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Udp")
            .field("local", &self.socket.local_addr().ok())
            .finish()
    }
}

impl Udp {
    fn new(socket: std::net::UdpSocket) -> io::Result<Udp> {
        socket.set_nonblocking(true)?;
        let state = UdpSocketState::new((&socket).into())?;
        let waiting = Arc::new(Mutex::new(Waiting::default()));
        let send_blocked = Arc::new(AtomicBool::new(false));
        let dup = crate::sys::duplicate(socket.as_raw_fd())?;
        monoio::spawn(watch(dup, waiting.clone(), send_blocked.clone()));
        Ok(Udp {
            socket,
            state,
            send_blocked,
            waiting,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Udp {
    fn drop(&mut self) {
        let mut w = self.lock();
        w.closed = true;
        if let Some(t) = w.watcher.take() {
            t.wake();
        }
    }
}

impl AsyncUdpSocket for Udp {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        Box::pin(Poller(self))
    }

    fn try_send(&self, transmit: &Transmit<'_>) -> io::Result<()> {
        match self.state.try_send((&self.socket).into(), transmit) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let mut w = self.lock();
                w.send_blocked = true;
                self.send_blocked.store(true, Ordering::Relaxed);
                Err(e)
            }
            r => r,
        }
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        match self.state.recv((&self.socket).into(), bufs, meta) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let mut w = self.lock();
                w.recv = Some(cx.waker().clone());
                if let Some(t) = w.watcher.take() {
                    t.wake();
                }
                Poll::Pending
            }
            r => Poll::Ready(r),
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    fn max_transmit_segments(&self) -> usize {
        self.state.max_gso_segments()
    }

    fn max_receive_segments(&self) -> usize {
        self.state.gro_segments()
    }

    fn may_fragment(&self) -> bool {
        self.state.may_fragment()
    }
}

#[derive(Debug)]
struct Poller(Arc<Udp>);

impl UdpPoller for Poller {
    fn poll_writable(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.0.send_blocked.load(Ordering::Relaxed) {
            return Poll::Ready(Ok(()));
        }
        let mut w = self.0.lock();
        // Looked at again under the lock: the watcher clears the flag under it.
        if !w.send_blocked {
            return Poll::Ready(Ok(()));
        }
        if !w.send.iter().any(|s| s.will_wake(cx.waker())) {
            w.send.push(cx.waker().clone());
        }
        if let Some(t) = w.watcher.take() {
            t.wake();
        }
        Poll::Pending
    }
}

/// What the watcher is asked to wait for.
enum Want {
    Read,
    Write,
    Both,
    Closed,
}

/// The socket's readiness task: waits until quinn waits, then for the runtime's readiness.
async fn watch(
    fd: std::os::fd::OwnedFd,
    waiting: Arc<Mutex<Waiting>>,
    send_blocked: Arc<AtomicBool>,
) {
    // Readiness only: the runtime's stream type is a handle for `readable`/`writable`, never
    // read or written (a TCP stream type over a UDP descriptor, as the parking set does with
    // its epoll descriptor).
    let Ok(watcher) = monoio::net::TcpStream::from_std(std::net::TcpStream::from(fd)) else {
        return;
    };
    let lock = || waiting.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let want = std::future::poll_fn(|cx| {
            let mut w = lock();
            let want = match (w.closed, w.recv.is_some(), !w.send.is_empty()) {
                (true, _, _) => Want::Closed,
                (_, true, true) => Want::Both,
                (_, true, false) => Want::Read,
                (_, false, true) => Want::Write,
                (_, false, false) => {
                    w.watcher = Some(cx.waker().clone());
                    return Poll::Pending;
                }
            };
            Poll::Ready(want)
        })
        .await;
        let (read, write) = match want {
            Want::Closed => return,
            Want::Read => (true, false),
            Want::Write => (false, true),
            Want::Both => (true, true),
        };
        let readable = async {
            if read {
                watcher.readable(false).await
            } else {
                std::future::pending().await
            }
        };
        let writable = async {
            if write {
                watcher.writable(false).await
            } else {
                std::future::pending().await
            }
        };
        let ready = race(pin!(readable), pin!(writable)).await;
        let mut w = lock();
        match ready {
            Either::Left(r) => {
                if let Some(t) = w.recv.take() {
                    t.wake();
                }
                if r.is_err() {
                    return;
                }
            }
            Either::Right(r) => {
                // Cleared under the lock that `poll_writable` looks at it under.
                w.send_blocked = false;
                send_blocked.store(false, Ordering::Relaxed);
                for t in w.send.drain(..) {
                    t.wake();
                }
                if r.is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;
    use std::time::Duration;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn due_timers_wake_once_and_reset_deadlines_leave_no_live_entry() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let woken = || count.0.load(Ordering::Relaxed);
        let ms = Duration::from_millis;
        let mut w = TimerWheel::default();
        let t0 = Instant::now();
        w.arm(1, t0 + ms(10), &waker);
        // Reset to later: the 10 ms entry goes stale.
        w.arm(1, t0 + ms(50), &waker);
        w.arm(2, t0 + ms(20), &waker);
        assert_eq!(w.fire(t0 + ms(15)), Some(t0 + ms(20)));
        assert_eq!(woken(), 0);
        assert_eq!(w.fire(t0 + ms(30)), Some(t0 + ms(50)));
        assert_eq!(woken(), 1);
        assert_eq!(w.fire(t0 + ms(60)), None);
        assert_eq!(woken(), 2);
        // Armed again with the same deadline: one entry, one wake-up.
        w.arm(3, t0 + ms(70), &waker);
        w.arm(3, t0 + ms(70), &waker);
        assert_eq!(w.heap.len(), 1);
        // A timer reset on every packet: stale entries are compacted away.
        for i in 0..10_000 {
            w.arm(4, t0 + ms(1_000 + i), &waker);
        }
        assert!(w.heap.len() <= 2 * w.armed.len() + 65, "{}", w.heap.len());
        // A dropped timer is forgotten: it never wakes.
        w.forget(4);
        assert_eq!(w.fire(t0 + ms(100_000)), None);
        assert_eq!(woken(), 3);
    }
}
