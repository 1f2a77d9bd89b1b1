//! Where a core's cache keeps large bodies: an anonymous memory file (`memfd`), so that a hit
//! leaves by `sendfile` from it, with no copy of the body by the CPU on the way out — what
//! nginx's file-backed cache gets from the page cache, without a disk.
//!
//! One arena per core's cache, as large as that cache's byte bound, mapped shared into the
//! process: a body is copied in once when it is stored and read in place (it is a [`Bytes`]
//! like any other, for filters, ranges and TLS), and a plain-TCP hit sends it with
//! `sendfile(memfd, offset)`. Space is handed out in whole pages from a free list (first fit,
//! neighbours merged when freed); the pages of a freed body are given back to the system at
//! once (`FALLOC_FL_PUNCH_HOLE`), so the arena's resident size follows the stored bodies.
//! A body is freed when the last [`Bytes`] referring to it goes: a hit being sent keeps its body
//! alive, so an eviction in the meantime never lets another body take its place mid-send.
//! Bodies below [`MIN_BODY`] stay in ordinary memory (a page-rounded slot would waste more
//! than the copy costs), and so does any body when the arena has no contiguous room left or
//! the kernel offers no `memfd`.
//!
//! The free list sits behind a mutex because `Bytes` owners must be `Send`; only the core that
//! owns the cache ever takes it (when it stores or drops a body, never on a hit), so it is
//! never contended.
//!
//! With `sys`, the engine's one other module with `unsafe` code: a mapping shared with a file
//! is memory the standard library cannot describe. Each block states why it is sound.
#![allow(unsafe_code)]

use bytes::Bytes;
use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex};

/// Bodies at least this large go into the arena.
pub const MIN_BODY: usize = 16 * 1024;

const PAGE: usize = 4096;

/// A core's arena for one cache.
#[derive(Clone)]
pub struct Arena {
    inner: Arc<Inner>,
}

struct Inner {
    fd: OwnedFd,
    base: *mut u8,
    len: usize,
    /// Free extents: offset → length (whole pages, never adjacent: merged when freed).
    free: Mutex<BTreeMap<usize, usize>>,
}

// SAFETY: `base` points to a shared mapping of `len` bytes that lives as long as `Inner`. Bytes
// of an extent are written only by `Arena::store`, before the extent is published as a body,
// and never again while any body refers to it (the extent returns to the free list when the
// body is dropped); reads through published bodies therefore never race a write. The free list
// is behind its mutex.
unsafe impl Send for Inner {}
unsafe impl Sync for Inner {}

impl Drop for Inner {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` are the mapping made in `Arena::new`; no body refers to it any
        // more (each holds an `Arc<Inner>`).
        unsafe { libc::munmap(self.base.cast(), self.len) };
    }
}

impl std::fmt::Debug for Arena {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Arena")
            .field("len", &self.inner.len)
            .finish_non_exhaustive()
    }
}

impl Arena {
    /// An arena of `bytes` (rounded up to whole pages); `None` when the kernel offers no
    /// memory file or mapping (bodies then stay in ordinary memory).
    pub fn new(bytes: usize) -> Option<Arena> {
        let len = bytes.max(PAGE).div_ceil(PAGE) * PAGE;
        // SAFETY: a NUL-terminated name and valid flags; the result is checked.
        let raw = unsafe { libc::memfd_create(c"bext-cache".as_ptr(), libc::MFD_CLOEXEC) };
        if raw < 0 {
            return None;
        }
        // SAFETY: `raw` is a new descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: `fd` is open; the size is checked by the kernel.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), len as libc::off_t) } != 0 {
            return None;
        }
        // SAFETY: a fresh shared mapping of the whole file; checked against MAP_FAILED.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return None;
        }
        let free = Mutex::new(BTreeMap::from([(0, len)]));
        Some(Arena {
            inner: Arc::new(Inner {
                fd,
                base: base.cast(),
                len,
                free,
            }),
        })
    }

    /// `body` as the cache will keep it: in the arena when it is large enough and there is
    /// room, else as it is.
    pub fn store(&self, body: Vec<u8>) -> Bytes {
        if body.len() < MIN_BODY {
            return Bytes::from(body);
        }
        let Some(off) = self.inner.alloc(body.len()) else {
            return Bytes::from(body);
        };
        // SAFETY: `off..off + body.len()` lies inside the mapping (`alloc` hands out extents of
        // the file) and belongs to no published body (it was just taken from the free list).
        unsafe {
            std::ptr::copy_nonoverlapping(body.as_ptr(), self.inner.base.add(off), body.len())
        };
        Bytes::from_owner(Slot {
            inner: self.inner.clone(),
            off,
            len: body.len(),
        })
    }

    /// Where `body` lies in this arena's file (`None` when it is not in the arena): the file
    /// and the offset of its first byte.
    pub fn locate(&self, body: &[u8]) -> Option<(BorrowedFd<'_>, u64)> {
        let start = self.inner.base as usize;
        let at = body.as_ptr() as usize;
        let inside = at >= start && at + body.len() <= start + self.inner.len;
        (inside && !body.is_empty()).then(|| (self.inner.fd.as_fd(), (at - start) as u64))
    }

    /// Bytes of free space (for tests and `/status`).
    pub fn free_bytes(&self) -> usize {
        self.inner.free.lock().map_or(0, |f| f.values().sum())
    }
}

impl Inner {
    /// First fit of `n` bytes rounded up to whole pages.
    fn alloc(&self, n: usize) -> Option<usize> {
        let want = n.div_ceil(PAGE) * PAGE;
        let mut free = self.free.lock().ok()?;
        let (&off, &len) = free.iter().find(|(_, &len)| len >= want)?;
        free.remove(&off);
        if len > want {
            free.insert(off + want, len - want);
        }
        Some(off)
    }

    /// Returns `n` bytes (rounded to pages) at `off` to the free list, merged with free
    /// neighbours, and their memory to the system.
    fn release(&self, off: usize, n: usize) {
        let len = n.div_ceil(PAGE) * PAGE;
        // SAFETY: `off..off + len` is an extent of the file no body refers to any more.
        unsafe {
            libc::fallocate(
                self.fd.as_raw_fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                off as libc::off_t,
                len as libc::off_t,
            )
        };
        let Ok(mut free) = self.free.lock() else {
            return;
        };
        let (mut start, mut size) = (off, len);
        if let Some((&p, &plen)) = free.range(..off).next_back() {
            if p + plen == off {
                free.remove(&p);
                start = p;
                size += plen;
            }
        }
        if let Some(next) = free.remove(&(off + len)) {
            size += next;
        }
        free.insert(start, size);
    }
}

/// A body in the arena; its extent is freed when the last `Bytes` referring to it is dropped.
struct Slot {
    inner: Arc<Inner>,
    off: usize,
    len: usize,
}

impl AsRef<[u8]> for Slot {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: the extent lies inside the mapping, was written before this slot was made
        // and is not written while the slot lives (see `Inner`'s Send/Sync note).
        unsafe { std::slice::from_raw_parts(self.inner.base.add(self.off), self.len) }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.inner.release(self.off, self.len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_round_trip_and_free_space_returns() {
        let a = Arena::new(256 * 1024).expect("memfd");
        let total = a.free_bytes();
        let small = a.store(vec![7; 100]);
        assert!(a.locate(&small).is_none(), "small bodies stay in memory");
        let big: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
        let b = a.store(big.clone());
        assert_eq!(&b[..], &big[..]);
        let (fd, off) = a.locate(&b).expect("in the arena");
        // The file holds the same bytes at that offset.
        let mut back = vec![0u8; big.len()];
        let n = unsafe {
            libc::pread(
                fd.as_raw_fd(),
                back.as_mut_ptr().cast(),
                back.len(),
                off as libc::off_t,
            )
        };
        assert_eq!(n as usize, big.len());
        assert_eq!(back, big);
        // A slice of the body is located at its own offset.
        let part = b.slice(100..200);
        assert_eq!(a.locate(&part).unwrap().1, off + 100);
        assert_eq!(a.free_bytes(), total - 40_960);
        drop(b);
        assert_eq!(a.free_bytes(), total - 40_960, "a slice keeps the body");
        drop(part);
        assert_eq!(a.free_bytes(), total);
    }

    #[test]
    fn a_full_arena_keeps_bodies_in_memory_and_merges_freed_space() {
        let a = Arena::new(64 * 1024).expect("memfd");
        let x = a.store(vec![1; 32 * 1024]);
        let y = a.store(vec![2; 32 * 1024]);
        let z = a.store(vec![3; 20 * 1024]);
        assert!(a.locate(&x).is_some() && a.locate(&y).is_some());
        assert!(a.locate(&z).is_none(), "no room: kept in memory");
        assert!(z.iter().all(|&b| b == 3));
        drop(x);
        drop(y);
        // Both halves merged: a body of the whole arena fits.
        let w = a.store(vec![4; 64 * 1024]);
        assert!(a.locate(&w).is_some());
        assert!(w.iter().all(|&b| b == 4));
    }
}
