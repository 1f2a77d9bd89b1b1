//! Request path → open file beneath the root.
//!
//! The path arrives in bext's normal form (`bext_http1::normalize_path`: dot segments removed,
//! unreserved escapes decoded, `%00`, `%2F` and `\` refused) with the route prefix stripped.
//! Nothing here relies on that: every check the normaliser makes is made again, because a
//! static handler that trusted its caller would turn any future leniency upstream (a site with
//! `escaped_slashes keep`, a rewrite) into a file disclosure.
//!
//! Per segment, after percent-decoding into a stack buffer: a decoded NUL, `/` or `\` (and a raw
//! `\`) is [`Refusal::BadPath`]; `.` and `..` are [`Refusal::BadPath`] (the normal form has
//! none, so one here was smuggled past it); a name starting with `.` is [`Refusal::Hidden`]
//! (`.git`, `.env`, `.htpasswd`), except `.well-known` (RFC 8615, ACME challenges); a name
//! longer than `NAME_MAX` (255 bytes) or a path longer than `PATH_MAX` (4096) is
//! [`Refusal::TooLong`]. Names are bytes: non-UTF-8 names are looked up as they are.

use crate::sys;
use crate::Refusal;
use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// Longest file name component (Linux `NAME_MAX`).
pub const NAME_MAX: usize = 255;
/// Longest relative path handed to the kernel, terminating NUL included (Linux `PATH_MAX`).
pub const PATH_MAX: usize = 4096;

/// A decoded, checked relative path in a stack buffer, NUL-terminated for the kernel.
pub(crate) struct RelPath {
    buf: [u8; PATH_MAX],
    /// Length without the NUL.
    len: usize,
    /// The request path ended with `/`: it names a directory. The empty path (a request for
    /// the route's prefix itself, `/docs` under `route /docs/*`) does not, so the root is
    /// redirected to `/docs/` like any other directory.
    pub(crate) slash: bool,
}

impl RelPath {
    /// Decodes and checks `path` (percent-encoded, `/`-separated, with or without a leading
    /// `/`). The empty path and `/` are the root itself (`.`).
    pub(crate) fn parse(path: &[u8]) -> Result<RelPath, Refusal> {
        let mut p = RelPath {
            buf: [0; PATH_MAX],
            len: 0,
            slash: path.ends_with(b"/"),
        };
        if path.len() >= PATH_MAX {
            return Err(Refusal::TooLong);
        }
        for seg in path.split(|&b| b == b'/') {
            if seg.is_empty() {
                continue;
            }
            p.push_segment(seg)?;
        }
        if p.len == 0 {
            p.buf[0] = b'.';
            p.len = 1;
        }
        Ok(p)
    }

    fn push_segment(&mut self, seg: &[u8]) -> Result<(), Refusal> {
        let start = if self.len == 0 {
            0
        } else {
            self.put(b'/')?;
            self.len
        };
        let mut i = 0;
        while i < seg.len() {
            let b = match seg[i] {
                b'%' => {
                    let hex = |c: u8| (c as char).to_digit(16);
                    let (Some(h), Some(l)) = (
                        seg.get(i + 1).copied().and_then(hex),
                        seg.get(i + 2).copied().and_then(hex),
                    ) else {
                        return Err(Refusal::BadPath);
                    };
                    i += 3;
                    (h * 16 + l) as u8
                }
                b => {
                    i += 1;
                    b
                }
            };
            if matches!(b, 0 | b'/' | b'\\') {
                return Err(Refusal::BadPath);
            }
            self.put(b)?;
        }
        let name = &self.buf[start..self.len];
        if name == b"." || name == b".." {
            return Err(Refusal::BadPath);
        }
        if name.len() > NAME_MAX {
            return Err(Refusal::TooLong);
        }
        if name[0] == b'.' && name != b".well-known" {
            return Err(Refusal::Hidden);
        }
        Ok(())
    }

    fn put(&mut self, b: u8) -> Result<(), Refusal> {
        // One byte is kept for the NUL.
        if self.len + 1 >= PATH_MAX {
            return Err(Refusal::TooLong);
        }
        self.buf[self.len] = b;
        self.len += 1;
        Ok(())
    }

    /// Appends `/name` (an index file) or `.ext` (a precompressed sibling) to a copy of
    /// the path. `name` was checked when the handler was compiled.
    pub(crate) fn joined(&self, sep: Option<u8>, name: &[u8]) -> Result<RelPath, Refusal> {
        let mut p = RelPath {
            buf: self.buf,
            len: self.len,
            slash: false,
        };
        if self.len == 1 && self.buf[0] == b'.' && sep == Some(b'/') {
            p.len = 0;
        } else if let Some(s) = sep {
            p.put(s)?;
        }
        let last = p.buf[..p.len]
            .iter()
            .rposition(|&b| b == b'/')
            .map_or(0, |i| i + 1);
        for &b in name {
            p.put(b)?;
        }
        if p.len - last > NAME_MAX {
            return Err(Refusal::TooLong);
        }
        Ok(p)
    }

    /// The path, NUL-terminated.
    pub(crate) fn c_str(&mut self) -> &CStr {
        self.buf[self.len] = 0;
        // The buffer holds no NUL before `len` (`push_segment` refuses it) and one at `len`.
        CStr::from_bytes_with_nul(&self.buf[..=self.len]).expect("one NUL, at the end")
    }

    /// The decoded relative path (for tests and logs).
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// How symlinks beneath the root are resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Symlinks {
    /// `openat2` with `RESOLVE_BENEATH`: symlinks that stay beneath the root are followed,
    /// any that leaves it is refused by the kernel. Needs Linux 5.6; where the kernel (or a
    /// seccomp filter) refuses `openat2`, [`Symlinks::Refuse`] is used instead.
    FollowBeneath,
    /// Every component is opened with `O_NOFOLLOW`: no symlink is ever followed.
    Refuse,
}

const O_FILE: i32 = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY;

/// Opens `path` beneath `root`. `O_NONBLOCK` so that a FIFO planted under the root cannot
/// block the worker; it changes nothing for regular files.
pub(crate) fn open_beneath(
    root: BorrowedFd<'_>,
    path: &mut RelPath,
    mode: Symlinks,
) -> Result<OwnedFd, Refusal> {
    match mode {
        Symlinks::FollowBeneath => {
            sys::openat2_beneath(root, path.c_str(), O_FILE).map_err(refusal)
        }
        Symlinks::Refuse => open_nofollow(root, path),
    }
}

/// Component by component, each with `O_NOFOLLOW`: a symlink anywhere is refused.
fn open_nofollow(root: BorrowedFd<'_>, path: &mut RelPath) -> Result<OwnedFd, Refusal> {
    let len = path.len;
    let mut start = 0;
    let mut dir: Option<OwnedFd> = None;
    loop {
        let end = path.buf[start..len]
            .iter()
            .position(|&b| b == b'/')
            .map_or(len, |i| start + i);
        let last = end == len;
        let mut name = [0u8; NAME_MAX + 2];
        let n = end - start;
        name[..n].copy_from_slice(&path.buf[start..end]);
        let c = CStr::from_bytes_with_nul(&name[..=n]).map_err(|_| Refusal::BadPath)?;
        let at = dir.as_ref().map_or(root, |d| d.as_fd());
        let flags = if last {
            O_FILE | libc::O_NOFOLLOW
        } else {
            // With O_PATH and O_NOFOLLOW a symlink opens as itself (O_DIRECTORY would
            // report it as ENOTDIR, indistinguishable from a file), so its type is looked at.
            libc::O_PATH | libc::O_NOFOLLOW
        };
        let fd = sys::openat(at, c, flags).map_err(refusal)?;
        if last {
            return Ok(fd);
        }
        let file = std::fs::File::from(fd);
        let t = file.metadata().map_err(refusal)?.file_type();
        if t.is_symlink() {
            return Err(Refusal::Escapes);
        }
        if !t.is_dir() {
            return Err(Refusal::NotFound);
        }
        let fd = OwnedFd::from(file);
        dir = Some(fd);
        start = end + 1;
    }
}

/// Maps an open error to what the client may learn.
fn refusal(e: io::Error) -> Refusal {
    match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENOTDIR) => Refusal::NotFound,
        Some(libc::ENAMETOOLONG) => Refusal::TooLong,
        // EXDEV: openat2 saw the resolution leave the root; ELOOP: a symlink met O_NOFOLLOW,
        // a magic link, or a loop.
        Some(libc::EXDEV) | Some(libc::ELOOP) => Refusal::Escapes,
        Some(libc::EACCES) | Some(libc::EPERM) => Refusal::Forbidden,
        _ => Refusal::Io(e.raw_os_error().unwrap_or(0)),
    }
}

/// Whether `openat2` works here (kernel 5.6+, not filtered by seccomp), probed on `root`.
pub(crate) fn openat2_available(root: BorrowedFd<'_>) -> bool {
    let dot = c".";
    sys::openat2_beneath(root, dot, libc::O_PATH | libc::O_DIRECTORY).is_ok()
}
