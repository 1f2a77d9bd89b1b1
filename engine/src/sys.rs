//! The engine's only `unsafe` code: three calls into the C library and the kernel interface
//! that the standard library and the runtime do not offer safely. Each block states why it is
//! sound.
#![allow(unsafe_code)]

use std::os::fd::{BorrowedFd, OwnedFd, RawFd};

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

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

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
}
