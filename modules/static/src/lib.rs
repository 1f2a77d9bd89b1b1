//! `static "DIR" [index FILE...]`: everything the static-file handler decides, as a library.
//!
//! The engine owns the sockets and the writing (sendfile or splice); this crate owns the
//! decisions: which file a request path names ([`Static::resolve`]), its validators
//! ([`Representation`]: strong ETag, Last-Modified, content type), which precompressed sibling
//! to send ([`File::select`]), what the conditional fields say ([`conditional::evaluate`]),
//! which byte ranges to send ([`range::parse`], [`range::Multipart`]), and a per-core cache of
//! open files ([`FileCache`]). [`plan`] puts them together in RFC 9110 order, so the engine
//! calls one function per request and writes what it is told.
//!
//! # Compiled state and per-core state
//!
//! [`Static`] is built once per configuration (it opens the root directory: lookups go through
//! that descriptor, so renaming or replacing the root's path later does not redirect them) and
//! is `Send + Sync`, shared by every worker. [`FileCache`] is per worker, `!Sync`, without
//! locks; it hands out [`File`]s behind `Rc`, so a file evicted while a response is still
//! being written keeps its descriptor until that response is done.
//!
//! # Staying beneath the root, and the race it cannot have
//!
//! The classic way to confine lookups is to canonicalise the path (`realpath`) and check it
//! starts with the root. That is a time-of-check/time-of-use race: between the check and the
//! `open`, anyone who can write under the root can swap a directory for a symlink to `/`, and
//! the open follows it. Here the kernel does the confinement at open time, so there is no
//! window: `openat2(root_fd, path, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)` resolves every
//! component (symlinks included) relative to the root descriptor and fails with `EXDEV` the
//! moment resolution would leave it, whether by `..`, an absolute symlink or a relative one.
//! Where `openat2` is missing (Linux before 5.6) or filtered (some seccomp profiles), each
//! component is opened with `openat(dir_fd, name, O_NOFOLLOW)` from the root down: no symlink
//! is followed at all, which is stricter (a symlink inside the root is refused too) and equally
//! race-free, since every step is relative to a descriptor already held. The request path is
//! checked as bytes before any of that (see [`Refusal`]): dot segments, encoded separators,
//! NUL, over-long names and dotfiles never reach the kernel.
//!
//! Only regular files are served: a directory is answered with its index files (in order) or
//! with a redirect to the path with a trailing slash; a FIFO, socket or device under the root
//! is [`Refusal::Forbidden`] (files are opened with `O_NONBLOCK`, so a FIFO cannot block the
//! worker before its type is seen).
#![deny(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

mod cache;
pub mod conditional;
mod mime;
mod plan;
pub mod range;
mod resolve;
#[allow(unsafe_code)]
mod sys;

pub use bext_http1::date::{format_http_date, parse_http_date};
pub use cache::{CacheConfig, FileCache};
pub use mime::{content_type, DEFAULT_TYPE};
pub use plan::{plan, Method, Plan, Request};
pub use resolve::{Symlinks, NAME_MAX, PATH_MAX};

use resolve::RelPath;
use std::fs;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why a request path is not served. The engine answers [`Refusal::status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A `.` or `..` segment, a NUL, an encoded `/` or `\`, a raw `\`, a broken escape: 400.
    BadPath,
    /// A name starting with `.` (`.git`, `.env`), other than `.well-known`: 404, as if absent.
    Hidden,
    /// A component longer than `NAME_MAX` or a path longer than `PATH_MAX`: 404.
    TooLong,
    /// No such file, or a directory without any of its index files: 404.
    NotFound,
    /// Resolution would leave the root (a symlink pointing outside it, or any symlink where
    /// symlinks are refused): 403.
    Escapes,
    /// Not readable by bext, or neither a regular file nor a directory: 403.
    Forbidden,
    /// Any other error of the kernel (the `errno`): 500.
    Io(i32),
}

impl Refusal {
    /// The status the engine answers with.
    pub fn status(self) -> u16 {
        match self {
            Refusal::BadPath => 400,
            Refusal::Hidden | Refusal::TooLong | Refusal::NotFound => 404,
            Refusal::Escapes | Refusal::Forbidden => 403,
            Refusal::Io(_) => 500,
        }
    }
}

/// A content coding bext can find precompressed next to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `zstd`, in `FILE.zst`.
    Zstd,
    /// `br`, in `FILE.br`.
    Br,
    /// `gzip`, in `FILE.gz`.
    Gzip,
}

impl Encoding {
    /// Every coding, in the order of [`File`]'s variants.
    pub const ALL: [Encoding; 3] = [Encoding::Zstd, Encoding::Br, Encoding::Gzip];

    /// The `Content-Encoding` token.
    pub fn token(self) -> &'static str {
        match self {
            Encoding::Zstd => "zstd",
            Encoding::Br => "br",
            Encoding::Gzip => "gzip",
        }
    }

    /// The sibling's extension, after the file's own name.
    pub fn extension(self) -> &'static str {
        match self {
            Encoding::Zstd => ".zst",
            Encoding::Br => ".br",
            Encoding::Gzip => ".gz",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A strong entity tag with its quotes, kept inline: `"INODE-SIZE-MTIMENS"` in lower-case hex,
/// with `-zst`, `-br` or `-gz` before the closing quote for a precompressed variant.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ETag {
    buf: [u8; 64],
    len: u8,
}

impl ETag {
    fn new(ino: u64, len: u64, mtime_ns: i128, enc: Option<Encoding>) -> ETag {
        let mut t = ETag {
            buf: [0; 64],
            len: 0,
        };
        t.push(b'"');
        t.hex(ino);
        t.push(b'-');
        t.hex(len);
        t.push(b'-');
        // Folded to 64 bits: a pre-1970 mtime (negative) still gives a distinct tag.
        t.hex(mtime_ns as u64);
        if let Some(e) = enc {
            t.push(b'-');
            for &b in &e.extension().as_bytes()[1..] {
                t.push(b);
            }
        }
        t.push(b'"');
        t
    }

    fn push(&mut self, b: u8) {
        self.buf[self.len as usize] = b;
        self.len += 1;
    }

    fn hex(&mut self, v: u64) {
        let digits = (64 - v.leading_zeros()).div_ceil(4).max(1);
        for i in (0..digits).rev() {
            self.push(b"0123456789abcdef"[(v >> (i * 4)) as usize & 15]);
        }
    }

    /// The field value, quotes included, as bytes (no UTF-8 check).
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }

    /// The field value, quotes included.
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits, `"`, `-` and extension letters are ever pushed.
        std::str::from_utf8(&self.buf[..self.len as usize]).expect("ASCII")
    }
}

impl std::fmt::Debug for ETag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One servable representation of a file (the file itself, or a precompressed sibling): an
/// open descriptor and the metadata taken from it (`fstat` on the descriptor, so the
/// validators describe exactly the bytes that will be sent).
#[derive(Debug)]
pub struct Representation {
    fd: OwnedFd,
    len: u64,
    mtime: i64,
    mtime_ns: i128,
    ino: u64,
    dev: u64,
    etag: ETag,
    last_modified: [u8; 29],
}

impl Representation {
    fn from_fd(
        fd: OwnedFd,
        enc: Option<Encoding>,
    ) -> Result<(Representation, fs::Metadata), Refusal> {
        let file = fs::File::from(fd);
        let meta = file.metadata().map_err(io_refusal)?;
        let mtime_ns = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
        let r = Representation {
            len: meta.size(),
            mtime: meta.mtime(),
            mtime_ns,
            ino: meta.ino(),
            dev: meta.dev(),
            etag: ETag::new(meta.ino(), meta.size(), mtime_ns, enc),
            last_modified: format_http_date(meta.mtime()),
            fd: OwnedFd::from(file),
        };
        Ok((r, meta))
    }

    /// The open file, for `sendfile`/`splice`/`pread` (offsets are explicit: the descriptor
    /// is shared by every response that uses this representation, so never move its offset).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The size in bytes when it was opened.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The strong validator.
    pub fn etag(&self) -> &ETag {
        &self.etag
    }

    /// Last-Modified, as an IMF-fixdate.
    pub fn last_modified(&self) -> &str {
        // `format_http_date` writes ASCII only.
        std::str::from_utf8(&self.last_modified).expect("ASCII")
    }

    /// Last-Modified as bytes (no UTF-8 check).
    pub fn last_modified_bytes(&self) -> &[u8] {
        &self.last_modified
    }

    /// Last modification, in Unix seconds (what `If-Modified-Since` is compared with).
    pub fn modified_secs(&self) -> i64 {
        self.mtime
    }

    /// Device and inode: the identity of the file on disk.
    pub fn identity(&self) -> (u64, u64) {
        (self.dev, self.ino)
    }
}

fn io_refusal(e: io::Error) -> Refusal {
    Refusal::Io(e.raw_os_error().unwrap_or(0))
}

/// A resolved file: its identity representation, the precompressed siblings found next to it
/// (those not older than it), and its content type.
#[derive(Debug)]
pub struct File {
    identity: Representation,
    variants: [Option<Representation>; 3],
    content_type: &'static str,
}

impl File {
    /// The file itself.
    pub fn identity(&self) -> &Representation {
        &self.identity
    }

    /// The precompressed sibling for `enc`, if one was found.
    pub fn variant(&self, enc: Encoding) -> Option<&Representation> {
        self.variants[enc.index()].as_ref()
    }

    /// Whether any sibling exists: then every response for this file, whichever
    /// representation it carries, must have `Vary: Accept-Encoding`.
    pub fn has_variants(&self) -> bool {
        self.variants.iter().any(Option::is_some)
    }

    /// The first of `accept` (the request's acceptable codings, most preferred first, as the
    /// engine read them from `Accept-Encoding`) that has a sibling; else the file itself.
    pub fn select(&self, accept: &[Encoding]) -> (&Representation, Option<Encoding>) {
        for &e in accept {
            if let Some(r) = self.variant(e) {
                return (r, Some(e));
            }
        }
        (&self.identity, None)
    }

    /// The content type, by the file's extension (the same for every representation).
    pub fn content_type(&self) -> &'static str {
        self.content_type
    }
}

/// What a path resolves to.
#[derive(Debug, Clone)]
pub enum Found {
    /// A file to serve.
    File(std::rc::Rc<File>),
    /// A directory named without its trailing slash: answer 301 with `Location:` the request
    /// path (the normal form the route saw, route prefix included) plus `/`, then the query if
    /// any. The empty path (the route's prefix itself) is the root directory, so it is
    /// redirected too.
    AddSlash,
}

/// Options of a static handler.
#[derive(Debug, Clone)]
pub struct Options {
    /// How symlinks beneath the root are treated (default [`Symlinks::FollowBeneath`], which
    /// falls back to [`Symlinks::Refuse`] where `openat2` is unavailable).
    pub symlinks: Symlinks,
    /// Look for `FILE.zst`, `FILE.br`, `FILE.gz` next to each file (default on).
    pub precompressed: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            symlinks: Symlinks::FollowBeneath,
            precompressed: true,
        }
    }
}

/// Why a static handler cannot be built.
#[derive(Debug)]
pub enum BuildError {
    /// The root cannot be opened as a directory.
    Root(io::Error),
    /// An index name that is empty, contains `/` or NUL, starts with `.`, or is too long.
    Index(String),
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::Root(e) => write!(f, "the root cannot be opened as a directory: {e}"),
            BuildError::Index(n) => write!(f, "invalid index file name `{n}`"),
        }
    }
}

impl std::error::Error for BuildError {}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A compiled `static` handler: the root directory, held open, and its index names.
#[derive(Debug)]
pub struct Static {
    root: OwnedFd,
    index: Vec<Box<[u8]>>,
    symlinks: Symlinks,
    precompressed: bool,
    id: u64,
}

impl Static {
    /// Opens `root` (once: lookups never go through its path again) and checks the index
    /// names.
    pub fn open(root: &Path, index: &[String], opts: Options) -> Result<Static, BuildError> {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(root)
            .map_err(BuildError::Root)?;
        for i in index {
            let b = i.as_bytes();
            if b.is_empty()
                || b.len() > NAME_MAX
                || b[0] == b'.'
                || b.contains(&b'/')
                || b.contains(&0)
            {
                return Err(BuildError::Index(i.clone()));
            }
        }
        let root = OwnedFd::from(dir);
        let symlinks = match opts.symlinks {
            Symlinks::FollowBeneath if resolve::openat2_available(root.as_fd()) => {
                Symlinks::FollowBeneath
            }
            _ => Symlinks::Refuse,
        };
        Ok(Static {
            root,
            index: index.iter().map(|i| i.as_bytes().into()).collect(),
            symlinks,
            precompressed: opts.precompressed,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// How symlinks are treated in fact (after probing for `openat2`).
    pub fn symlinks(&self) -> Symlinks {
        self.symlinks
    }

    /// Resolves `path` (percent-encoded, in bext's normal form, the route prefix removed) to a
    /// file beneath the root, opening it and its precompressed siblings. Uncached: the engine
    /// goes through [`FileCache::get`].
    pub fn resolve(&self, path: &[u8]) -> Result<Found, Refusal> {
        let mut rel = RelPath::parse(path)?;
        let fd = resolve::open_beneath(self.root.as_fd(), &mut rel, self.symlinks)?;
        let (rep, meta) = Representation::from_fd(fd, None)?;
        if meta.is_dir() {
            if !rel.slash {
                return Ok(Found::AddSlash);
            }
            for name in &self.index {
                let p = rel.joined(Some(b'/'), name)?;
                match self.open_file(p) {
                    Ok(f) => return Ok(Found::File(std::rc::Rc::new(f))),
                    Err(Refusal::NotFound) => continue,
                    Err(e) => return Err(e),
                }
            }
            return Err(Refusal::NotFound);
        }
        if rel.slash {
            // `/a.html/`: a file named as a directory.
            return Err(Refusal::NotFound);
        }
        if !meta.is_file() {
            return Err(Refusal::Forbidden);
        }
        Ok(Found::File(std::rc::Rc::new(self.with_variants(rel, rep))))
    }

    fn open_file(&self, mut p: RelPath) -> Result<File, Refusal> {
        let fd = resolve::open_beneath(self.root.as_fd(), &mut p, self.symlinks)?;
        let (rep, meta) = Representation::from_fd(fd, None)?;
        if meta.is_dir() {
            // An index name that is a directory is not an index file.
            return Err(Refusal::NotFound);
        }
        if !meta.is_file() {
            return Err(Refusal::Forbidden);
        }
        Ok(self.with_variants(p, rep))
    }

    fn with_variants(&self, rel: RelPath, identity: Representation) -> File {
        let content_type = content_type(rel.bytes());
        let mut variants = [None, None, None];
        if self.precompressed {
            for e in Encoding::ALL {
                variants[e.index()] = self.sibling(&rel, &identity, e);
            }
        }
        File {
            identity,
            variants,
            content_type,
        }
    }

    /// `FILE.ext` beneath the root, a regular file not older than `FILE`.
    fn sibling(&self, rel: &RelPath, of: &Representation, e: Encoding) -> Option<Representation> {
        let mut p = rel.joined(None, e.extension().as_bytes()).ok()?;
        let fd = resolve::open_beneath(self.root.as_fd(), &mut p, self.symlinks).ok()?;
        let (rep, meta) = Representation::from_fd(fd, Some(e)).ok()?;
        (meta.is_file() && rep.mtime_ns >= of.mtime_ns).then_some(rep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiled_state_is_shared_by_every_worker() {
        fn shared<T: Send + Sync>() {}
        shared::<Static>();
    }

    #[test]
    fn etag_shape() {
        let t = ETag::new(0x1a2b, 1234, 1_700_000_000_123_456_789, None);
        assert_eq!(t.as_str(), "\"1a2b-4d2-17979cfe3d85cd15\"");
        let t = ETag::new(u64::MAX, u64::MAX, -1, Some(Encoding::Zstd));
        assert_eq!(
            t.as_str(),
            "\"ffffffffffffffff-ffffffffffffffff-ffffffffffffffff-zst\""
        );
        assert_eq!(
            ETag::new(0, 0, 0, Some(Encoding::Br)).as_str(),
            "\"0-0-0-br\""
        );
    }
}
