//! The engine's only `unsafe` code: the calls into the C library and the kernel interface that
//! the standard library and the runtime do not offer safely. Each block states why it is sound.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

/// Release whole free pages of every allocator arena to the kernel (glibc `malloc_trim`).
/// Returns true when memory was released; a no-op where the allocator is not glibc's.
///
/// A burst of concurrent requests leaves free chunks inside the allocator's heaps; glibc gives
/// back only the top of a heap on its own, so without this, resident memory would follow the
/// largest burst ever seen rather than the live connections (HAProxy trims the same way once
/// its pools are flushed).
pub fn release_free_pages() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `malloc_trim` takes no pointer and touches only the allocator's own free
        // chunks, under the allocator's arena locks; glibc documents it as callable from any
        // thread at any time.
        unsafe { libc::malloc_trim(0) != 0 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// `CLOCK_MONOTONIC` in microseconds: the clock systemd reads `MONOTONIC_USEC` on (the
/// standard library's `Instant` does not expose its value).
pub fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call, and
    // CLOCK_MONOTONIC is always supported on Linux; on failure `ts` stays zero.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000)
        .saturating_add(ts.tv_nsec as u64 / 1_000)
}

/// A new descriptor for the same open file as `fd` (`dup` with close-on-exec), owned.
///
/// # Contract
/// `fd` must be open for the duration of the call (the caller holds its owner).
pub fn duplicate(fd: RawFd) -> std::io::Result<OwnedFd> {
    // SAFETY: per the contract the descriptor is open while borrowed; `try_clone_to_owned`
    // creates a new descriptor and never closes the borrowed one.
    unsafe { BorrowedFd::borrow_raw(fd) }.try_clone_to_owned()
}

/// What a non-blocking look at an idle socket found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleState {
    /// Nothing to read and the peer has not closed: the connection may carry a request.
    Quiet,
    /// Bytes are waiting that nobody asked for.
    Readable,
    /// The peer closed (end of stream) or the socket holds an error.
    Closed,
}

/// Look at an idle connection without blocking and without consuming anything
/// (`recv(MSG_PEEK | MSG_DONTWAIT)` of one byte).
///
/// # Contract
/// `fd` must be an open stream socket for the duration of the call (the caller holds its
/// owner).
pub fn idle_state(fd: RawFd) -> IdleState {
    let mut byte = 0u8;
    // SAFETY: per the contract `fd` is open; the buffer is one valid, writable byte that lives
    // across the call; MSG_PEEK leaves the data in the socket and MSG_DONTWAIT makes the call
    // return at once whatever the descriptor's blocking mode.
    let n = unsafe {
        libc::recv(
            fd,
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    match n {
        0 => IdleState::Closed,
        n if n > 0 => IdleState::Readable,
        _ => match std::io::Error::last_os_error().kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted => IdleState::Quiet,
            _ => IdleState::Closed,
        },
    }
}

/// Read from `fd` at `offset` into `buf` (`pread`): how a small static file joins its head in
/// one write. Returns the bytes read (0 at the end of the file).
pub fn pread(fd: BorrowedFd<'_>, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let off = libc::off_t::try_from(offset)
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    loop {
        // SAFETY: `fd` is borrowed, so open for the call; the pointer and length describe
        // `buf`, which is valid and writable for its whole length and outlives the call.
        let n = unsafe { libc::pread(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), off) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Send up to `len` bytes of file `file` from `*offset` to socket `sock` in the kernel
/// (`sendfile`), advancing `*offset`. The socket must be non-blocking: a full send buffer is
/// `WouldBlock`, which the caller waits out with the runtime. Returns the bytes sent; 0 means
/// the file ended before `*offset + len` (it shrank).
///
/// # Contract
/// `sock` must be an open socket for the duration of the call (the caller holds its owner).
pub fn sendfile(
    sock: RawFd,
    file: BorrowedFd<'_>,
    offset: &mut u64,
    len: usize,
) -> std::io::Result<usize> {
    let mut off = libc::off_t::try_from(*offset)
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: per the contract `sock` is open, and `file` is borrowed; `off` is a valid,
    // writable `off_t` that lives across the call, which is all the kernel writes.
    let n = unsafe { libc::sendfile(sock, file.as_raw_fd(), &mut off, len) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    *offset = off as u64;
    Ok(n as usize)
}

/// Set or clear `O_NONBLOCK` on `fd`; returns whether it was set before.
///
/// # Contract
/// `fd` must be open for the duration of the call (the caller holds its owner).
pub fn set_nonblocking(fd: RawFd, on: bool) -> std::io::Result<bool> {
    // SAFETY: per the contract `fd` is open; F_GETFL and F_SETFL read and write only the
    // descriptor's status flags.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let was = flags & libc::O_NONBLOCK != 0;
        if was != on {
            let new = if on {
                flags | libc::O_NONBLOCK
            } else {
                flags & !libc::O_NONBLOCK
            };
            if libc::fcntl(fd, libc::F_SETFL, new) < 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(was)
    }
}

/// The initialised bytes of an owned write buffer.
pub fn buf_bytes<T: monoio::buf::IoBuf>(buf: &T) -> &[u8] {
    // SAFETY: `IoBuf` is an unsafe trait whose implementors promise that `read_ptr` points to
    // `bytes_init` initialised bytes that stay valid and unmoved while the buffer is borrowed;
    // the slice borrows `buf`, so it cannot outlive them.
    unsafe { std::slice::from_raw_parts(buf.read_ptr(), buf.bytes_init()) }
}

/// Calls `f` with each initialised part of an owned vectored write buffer, in order.
pub fn for_each_iovec<T: monoio::buf::IoVecBuf>(buf: &T, mut f: impl FnMut(&[u8])) {
    let (ptr, len) = (buf.read_iovec_ptr(), buf.read_iovec_len());
    for i in 0..len {
        // SAFETY: `IoVecBuf` (an unsafe trait) promises `len` valid iovecs at `ptr`, each
        // describing initialised memory that lives as long as the buffer, which is borrowed for
        // the whole loop.
        let part = unsafe {
            let v = &*ptr.add(i);
            if v.iov_len == 0 {
                continue;
            }
            std::slice::from_raw_parts(v.iov_base as *const u8, v.iov_len)
        };
        f(part);
    }
}

/// A response head and a shared body, written with one `writev` (no copy of the body into
/// the head's buffer).
pub struct HeadAndBody {
    head: Vec<u8>,
    /// Held so that what the second iovec points to lives as long as the value.
    _body: bytes::Bytes,
    iov: Box<[libc::iovec; 2]>,
}

impl HeadAndBody {
    pub fn new(head: Vec<u8>, body: bytes::Bytes) -> HeadAndBody {
        let iov = Box::new([
            libc::iovec {
                iov_base: head.as_ptr() as *mut libc::c_void,
                iov_len: head.len(),
            },
            libc::iovec {
                iov_base: body.as_ptr() as *mut libc::c_void,
                iov_len: body.len(),
            },
        ]);
        HeadAndBody {
            head,
            _body: body,
            iov,
        }
    }

    /// The head's buffer back (for the pool).
    pub fn into_head(self) -> Vec<u8> {
        self.head
    }
}

// SAFETY: the two iovecs describe the head's heap buffer and the body's shared bytes, both owned
// by the value and never changed or moved while it lives (moving a `Vec` or `Bytes` does not move
// what they point to); the iovec array is boxed, so its address is stable too.
unsafe impl monoio::buf::IoVecBuf for HeadAndBody {
    fn read_iovec_ptr(&self) -> *const libc::iovec {
        self.iov.as_ptr()
    }

    fn read_iovec_len(&self) -> usize {
        2
    }
}

/// Copies as much of `src` as fits into an owned read buffer, from its start, and marks those
/// bytes initialised; returns how many were copied.
pub fn fill_buf<T: monoio::buf::IoBufMut>(buf: &mut T, src: &[u8]) -> usize {
    let n = src.len().min(buf.bytes_total());
    // SAFETY: `IoBufMut` (an unsafe trait) promises that `write_ptr` is valid for writes of
    // `bytes_total` bytes; `n` is at most that, and `src` is a distinct borrowed slice, so the
    // ranges do not overlap. The `n` bytes are initialised before `set_init` says so.
    unsafe {
        std::ptr::copy_nonoverlapping(src.as_ptr(), buf.write_ptr(), n);
        buf.set_init(n);
    }
    n
}

/// Attach a classic BPF program choosing the socket of an `SO_REUSEPORT` group that receives
/// each datagram (`SO_ATTACH_REUSEPORT_CBPF`): it returns a socket's index in the group
/// (its order of binding); an index out of range makes the kernel fall back to its hash.
///
/// # Contract
/// `fd` must be an open socket for the duration of the call (the caller holds its owner).
pub fn attach_reuseport_cbpf(fd: RawFd, prog: &[libc::sock_filter]) -> std::io::Result<()> {
    let len = u16::try_from(prog.len()).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    let fprog = libc::sock_fprog {
        len,
        filter: prog.as_ptr().cast_mut(),
    };
    // SAFETY: per the contract `fd` is open; `fprog` points at `len` instructions that live
    // across the call (the kernel copies and checks the program before returning; it never
    // writes through the pointer), and the option length is the size of the struct passed.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ATTACH_REUSEPORT_CBPF,
            std::ptr::addr_of!(fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

    #[test]
    fn owned_buffers_are_read_and_filled_in_place() {
        use monoio::buf::{IoBufMut, SliceMut};
        assert_eq!(super::buf_bytes(&b"abc".to_vec()), b"abc");
        let mut parts = Vec::new();
        let v = monoio::buf::VecBuf::from(vec![b"ab".to_vec(), Vec::new(), b"c".to_vec()]);
        super::for_each_iovec(&v, |p| parts.push(p.to_vec()));
        assert_eq!(parts, vec![b"ab".to_vec(), b"c".to_vec()]);
        let mut xy = Vec::with_capacity(6);
        xy.extend_from_slice(b"xy");
        let mut buf: SliceMut<Vec<u8>> = xy.slice_mut(2..6);
        assert_eq!(super::fill_buf(&mut buf, b"0123456"), 4);
        assert_eq!(buf.into_inner(), b"xy0123");
        let mut empty = Vec::with_capacity(8);
        assert_eq!(super::fill_buf(&mut empty, b"hello"), 5);
        assert_eq!(empty, b"hello");
    }

    #[test]
    fn releasing_free_pages_keeps_live_memory_intact() {
        let bufs: Vec<Vec<u8>> = (0..256).map(|_| vec![1u8; 32 * 1024]).collect();
        let keep: Vec<u8> = std::iter::repeat_n(2u8, 64).collect();
        drop(bufs);
        let _ = super::release_free_pages();
        assert!(keep.iter().all(|&b| b == 2));
    }

    #[test]
    fn idle_state_sees_stray_bytes_and_close_without_consuming() {
        use super::{idle_state, IdleState};
        use std::io::{Read, Write};
        let (mut a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut b = b;
        assert_eq!(idle_state(b.as_raw_fd()), IdleState::Quiet);
        a.write_all(b"x").unwrap();
        assert_eq!(idle_state(b.as_raw_fd()), IdleState::Readable);
        let mut got = [0u8; 1];
        b.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"x", "the peeked byte is still there");
        drop(a);
        assert_eq!(idle_state(b.as_raw_fd()), IdleState::Closed);
    }

    #[test]
    fn duplicated_descriptors_are_usable() {
        use std::io::{Read, Write};
        let (mut a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let dup = super::duplicate(a.as_raw_fd()).unwrap();
        assert_ne!(dup.as_raw_fd(), a.as_raw_fd());
        let mut a2 = std::os::unix::net::UnixStream::from(dup);
        a.write_all(b"x").unwrap();
        a2.write_all(b"y").unwrap();
        let mut got = [0u8; 2];
        let mut b = b;
        b.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"xy");
    }

    #[test]
    fn pread_and_sendfile_move_the_bytes_asked_for() {
        use std::io::{Read, Write};
        use std::os::fd::AsFd;
        let dir = std::env::temp_dir().join(format!("bext-sys-{}", std::process::id()));
        std::fs::write(&dir, b"0123456789").unwrap();
        let f = std::fs::File::open(&dir).unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(super::pread(f.as_fd(), &mut buf, 3).unwrap(), 4);
        assert_eq!(&buf, b"3456");
        assert_eq!(super::pread(f.as_fd(), &mut buf, 10).unwrap(), 0);
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        assert!(!super::set_nonblocking(s.as_raw_fd(), true).unwrap());
        let mut off = 2;
        assert_eq!(
            super::sendfile(s.as_raw_fd(), f.as_fd(), &mut off, 5).unwrap(),
            5
        );
        assert_eq!(off, 7);
        let mut off = 9;
        assert_eq!(
            super::sendfile(s.as_raw_fd(), f.as_fd(), &mut off, 5).unwrap(),
            1
        );
        assert_eq!(
            super::sendfile(s.as_raw_fd(), f.as_fd(), &mut off, 5).unwrap(),
            0
        );
        assert!(super::set_nonblocking(s.as_raw_fd(), false).unwrap());
        drop(s);
        let mut got = Vec::new();
        c.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"234569");
        let _ = c.write_all(b"");
        let _ = std::fs::remove_file(&dir);
    }
}

/// The signal a thread's CPU clock ([`thread_cpu_clock`]) is delivered with: a real-time
/// signal above the C library's own (glibc keeps the first two), below the ones debuggers and
/// valgrind take from the top.
fn cpu_clock_signal() -> libc::c_int {
    libc::SIGRTMIN() + 3
}

/// What the CPU clocks call on every tick (a `fn()` as an address; 0 until the first clock).
static CPU_TICK: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

extern "C" fn on_cpu_clock_signal(_: libc::c_int) {
    let f = CPU_TICK.load(std::sync::atomic::Ordering::Acquire);
    if f != 0 {
        // SAFETY: the only values ever stored in CPU_TICK are `fn()` pointers cast to usize
        // (see `thread_cpu_clock`), and a `fn()` has the size and validity of a usize address.
        let f = unsafe { std::mem::transmute::<usize, fn()>(f) };
        f();
    }
}

/// A POSIX timer, deleted when the thread that made it ends.
struct CpuTimer(libc::timer_t);

impl Drop for CpuTimer {
    fn drop(&mut self) {
        // SAFETY: `self.0` was returned by a successful `timer_create` and is deleted once,
        // here.
        unsafe { libc::timer_delete(self.0) };
    }
}

thread_local! {
    static CPU_TIMER: std::cell::RefCell<Option<CpuTimer>> = const { std::cell::RefCell::new(None) };
}

/// Calls `on_tick` every `period` of CPU time the calling thread spends, from a signal
/// handler on that thread (so `on_tick` may only touch atomics): a timer on the thread's own
/// CPU clock, which costs nothing while the thread sleeps — unlike a thread woken every
/// period — and fires about 1/period times a second while it is busy. Once per thread: later
/// calls on a thread that has its clock change nothing. Every clock of the process calls the
/// same function: the first one given.
///
/// The signal is installed with `SA_RESTART`; a wait it interrupts (`epoll_wait`,
/// `io_uring_enter`) returns early, which both runtime drivers take as a spurious wake-up.
pub fn thread_cpu_clock(period: std::time::Duration, on_tick: fn()) -> std::io::Result<()> {
    use std::sync::atomic::Ordering;
    if CPU_TIMER.with(|t| t.borrow().is_some()) {
        return Ok(());
    }
    let signal = cpu_clock_signal();
    let _ = CPU_TICK.compare_exchange(0, on_tick as usize, Ordering::AcqRel, Ordering::Acquire);
    static INSTALL: std::sync::OnceLock<std::io::Result<()>> = std::sync::OnceLock::new();
    let installed = INSTALL.get_or_init(|| {
        // SAFETY: a zeroed `sigaction` is a valid "no flags, empty mask" value; the handler
        // is an `extern "C" fn(c_int)` that only reads an atomic and calls a function that
        // only touches atomics, so it is async-signal-safe; `sigemptyset` gets a valid mask.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_cpu_clock_signal as extern "C" fn(libc::c_int) as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            if libc::sigaction(signal, &sa, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    });
    if let Err(e) = installed {
        return Err(std::io::Error::new(e.kind(), e.to_string()));
    }
    // SAFETY: every pointer passed is to a local that lives through its call; a zeroed
    // `sigevent` is valid (no value, no flags) before its fields are set; the timer handle
    // is owned by `CpuTimer` from here on and deleted once.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, signal);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        let mut sev: libc::sigevent = std::mem::zeroed();
        sev.sigev_notify = libc::SIGEV_THREAD_ID;
        sev.sigev_signo = signal;
        sev.sigev_notify_thread_id = libc::gettid();
        let mut timer: libc::timer_t = std::ptr::null_mut();
        if libc::timer_create(libc::CLOCK_THREAD_CPUTIME_ID, &mut sev, &mut timer) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let timer = CpuTimer(timer);
        let every = libc::timespec {
            tv_sec: period.as_secs() as libc::time_t,
            tv_nsec: period.subsec_nanos() as libc::c_long,
        };
        let spec = libc::itimerspec {
            it_interval: every,
            it_value: every,
        };
        if libc::timer_settime(timer.0, 0, &spec, std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        CPU_TIMER.with(|t| *t.borrow_mut() = Some(timer));
    }
    Ok(())
}
