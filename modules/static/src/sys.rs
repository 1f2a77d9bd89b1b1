//! The crate's only `unsafe` code: the two kernel calls that open a path relative to a
//! directory descriptor (`openat2` and `openat`), which the standard library does not offer.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// `openat2(dir, path, flags, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`: the kernel refuses
/// (`EXDEV`) any resolution that would leave `dir`, through `..` or a symlink, absolute or
/// relative, and any `/proc` magic link (`ELOOP`).
pub(crate) fn openat2_beneath(dir: BorrowedFd<'_>, path: &CStr, flags: i32) -> io::Result<OwnedFd> {
    // `open_how` is non-exhaustive (the kernel may grow it): start from zeroes.
    // SAFETY: `open_how` is plain integers, for which all-zero bytes are a valid value.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: `path` is NUL-terminated and outlives the call; `how` is a valid `open_how` whose
    // size is passed with it, as the syscall requires; `dir` is an open descriptor borrowed for
    // the call. The kernel does not keep either pointer.
    let r = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a non-negative result of `openat2` is a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(r as i32) })
}

/// `openat(dir, name, flags | O_CLOEXEC)`.
pub(crate) fn openat(dir: BorrowedFd<'_>, name: &CStr, flags: i32) -> io::Result<OwnedFd> {
    // SAFETY: `name` is NUL-terminated and outlives the call; `dir` is an open descriptor
    // borrowed for the call; the mode argument is not read without `O_CREAT`.
    let r = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags | libc::O_CLOEXEC) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a non-negative result of `openat` is a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(r) })
}
