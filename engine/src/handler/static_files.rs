//! The `static "DIR"` handler: files from disk.
//!
//! The decisions (which file, which precompressed sibling, conditional requests, ranges) are
//! `bext-static`'s, one [`bext_static::plan`] per request; this module carries them out on the
//! client connection. Open files come from the worker's cache (`Worker::files`), so a hot file
//! costs no `open` or `stat`.
//!
//! How the bytes move. A small body (up to [`INLINE`]) is read with `pread` behind its head and
//! leaves in one write. A larger one goes from the page cache to the socket in the kernel with
//! `sendfile`, which neither driver's runtime offers: on epoll the socket is already
//! non-blocking and a full send buffer is waited out with the runtime's readiness; io_uring has
//! no sendfile operation (its splice needs a pipe per connection and two operations per
//! piece), so on io_uring the socket is made non-blocking for the length of the body only —
//! no other operation of the connection is in flight meanwhile — and a full send buffer is
//! waited out with a poll operation. When a stage changes the body (compression of a file that
//! has no precompressed sibling the client accepts), the file is read in pieces and goes
//! through the body filters instead.

use crate::conn::reply::{finish_head, push_usize, send_whole, FilterBufs, Framed};
use crate::conn::{body_failure, discard_body, send_problem_with, Ctx, Outcome};
use crate::error::ErrorClass;
use crate::io::{write_all, IoFail, PerStep};
use crate::pipeline::{CompiledRoute, HeaderOps};
use crate::stream::ClientStream;
use bext_http1::Method;
use bext_static::{Encoding, File, Found, Plan, Refusal, Representation};
use std::os::fd::BorrowedFd;

/// Bodies up to this size are read into the head's buffer and sent with it.
const INLINE: u64 = 16 * 1024;

/// Most bytes one `sendfile` call is asked for (the kernel sends what the socket takes).
const SENDFILE_STEP: usize = 1 << 20;

/// A compiled `static` route.
#[derive(Debug)]
pub struct StaticFiles {
    pub files: bext_static::Static,
    /// Bytes of the (normal) request path that name the route, not a file: the route's prefix
    /// without its final `/` (`/assets/*` → 6), 0 for `/*`, exact and regex routes.
    pub strip: usize,
}

impl StaticFiles {
    pub fn open(
        root: &str,
        index: &[String],
        route: &bext_ir::PathMatch,
    ) -> Result<StaticFiles, bext_static::BuildError> {
        let index: Vec<String> = if index.is_empty() {
            vec!["index.html".to_string()]
        } else {
            index.to_vec()
        };
        let files = bext_static::Static::open(
            std::path::Path::new(root),
            &index,
            bext_static::Options::default(),
        )?;
        let strip = match route {
            bext_ir::PathMatch::Prefix(p) => p.trim_end_matches('/').len(),
            _ => 0,
        };
        Ok(StaticFiles { files, strip })
    }
}

/// Serve the file the request path names.
pub(crate) async fn serve(ctx: &mut Ctx<'_>, route: &CompiledRoute, st: &StaticFiles) -> Outcome {
    let method = match ctx.head.method {
        Some(Method::Get) => bext_static::Method::Get,
        Some(Method::Head) => bext_static::Method::Head,
        _ => bext_static::Method::Other,
    };
    // A body (none is expected) is read and dropped, as `respond` does; a client waiting for
    // 100 before sending one is answered at once and the connection closed.
    let mut close = !ctx.keep_wanted;
    if ctx.head.expect_continue && ctx.has_body() && ctx.pos >= ctx.buf.len() {
        close = true;
    } else if let Err(e) = discard_body(ctx).await {
        return body_failure(ctx, e).await;
    }
    let found = {
        let path = ctx.path();
        let rel = path.get(st.strip..).unwrap_or(b"");
        // The coarse clock is enough: it only decides when an open file is looked at again.
        let now = ctx.w.stop.coarse_now();
        ctx.w.files.borrow_mut().get(&st.files, rel, now)
    };
    let file = match found {
        Ok(Found::File(f)) => f,
        Ok(Found::AddSlash) => return add_slash(ctx, route, close).await,
        Err(r) => return refuse(ctx, r, close).await,
    };
    let accept = accepted(ctx, &file);
    let plan = {
        let buf: &[u8] = ctx.buf;
        let field = |name: &[u8]| ctx.head.header(buf, name);
        let req = bext_static::Request {
            method,
            accept: accept.as_slice(),
            conditions: bext_static::conditional::Conditions {
                if_match: field(b"if-match"),
                if_unmodified_since: field(b"if-unmodified-since"),
                if_none_match: field(b"if-none-match"),
                if_modified_since: field(b"if-modified-since"),
                if_range: field(b"if-range"),
            },
            range: field(b"range"),
        };
        bext_static::plan(&file, &req)
    };
    match plan {
        Plan::MethodNotAllowed => {
            let c = ErrorClass::MethodNotAllowed;
            let extra = b"Allow: GET, HEAD\r\n";
            send_problem_with(ctx, c.status(), c.slug(), c.title(), close, extra).await
        }
        Plan::PreconditionFailed => problem(ctx, ErrorClass::PreconditionFailed, close, b"").await,
        Plan::Unsatisfiable { len } => {
            let mut extra = b"Content-Range: bytes */".to_vec();
            push_usize(&mut extra, len);
            extra.extend_from_slice(b"\r\n");
            problem(ctx, ErrorClass::RangeNotSatisfiable, close, &extra).await
        }
        Plan::NotModified { rep, encoding } => {
            let head = rep_head(ctx, 304, &file, rep, encoding, route);
            send_whole(ctx, route, 304, head, &[], None, close).await
        }
        Plan::Full { rep, encoding } => {
            let head = rep_head(ctx, 200, &file, rep, encoding, route);
            body(ctx, route, 200, head, rep, &[(0, rep.len())], None, close).await
        }
        Plan::Partial {
            rep,
            encoding,
            range,
        } => {
            let mut head = rep_head(ctx, 206, &file, rep, encoding, route);
            head.extend_from_slice(b"Content-Range: bytes ");
            push_usize(&mut head, range.first);
            head.push(b'-');
            push_usize(&mut head, range.last);
            head.push(b'/');
            push_usize(&mut head, rep.len());
            head.extend_from_slice(b"\r\n");
            let parts = [(range.first, range.len())];
            body(ctx, route, 206, head, rep, &parts, None, close).await
        }
        Plan::Multipart {
            rep,
            encoding,
            ranges,
        } => {
            let seed = ctx.w.boundary_seed();
            let mp = bext_static::range::Multipart::new(
                &ranges,
                rep.len(),
                file.content_type(),
                bext_static::range::Boundary::new(seed),
            );
            let mut head = ctx.w.take_xfer();
            status_line(&mut head, 206);
            // The parts carry the file's type; the whole is multipart.
            head.extend_from_slice(b"Content-Type: ");
            mp.content_type_value(&mut head);
            head.extend_from_slice(b"\r\n");
            rep_fields(
                &mut head,
                &file,
                rep,
                encoding,
                false,
                &route.response_headers,
            );
            let parts: Vec<(u64, u64)> = mp.ranges().iter().map(|r| (r.first, r.len())).collect();
            body(ctx, route, 206, head, rep, &parts, Some(&mp), close).await
        }
    }
}

/// The precompressed coding the client accepts best among those the file has.
fn accepted(ctx: &Ctx<'_>, file: &File) -> Option<Encoding> {
    if !file.has_variants() {
        return None;
    }
    let mut offered = [bext_ir::Encoding::Zstd; 3];
    let mut n = 0;
    for e in Encoding::ALL {
        if file.variant(e).is_some() {
            offered[n] = ir_encoding(e);
            n += 1;
        }
    }
    let buf: &[u8] = ctx.buf;
    let values = ctx
        .head
        .headers
        .iter()
        .filter(|h| bext_http1::name_eq(h.name.get(buf), b"accept-encoding"))
        .map(|h| h.value.get(buf));
    let best = bext_compress::negotiate(values, &offered[..n])?;
    Encoding::ALL.into_iter().find(|&e| ir_encoding(e) == best)
}

fn ir_encoding(e: Encoding) -> bext_ir::Encoding {
    match e {
        Encoding::Zstd => bext_ir::Encoding::Zstd,
        Encoding::Br => bext_ir::Encoding::Br,
        Encoding::Gzip => bext_ir::Encoding::Gzip,
    }
}

/// The head of a representation (`with_type` for all but 304), in a buffer from the pool.
fn rep_head(
    ctx: &Ctx<'_>,
    status: u16,
    file: &File,
    rep: &Representation,
    encoding: Option<Encoding>,
    route: &CompiledRoute,
) -> Vec<u8> {
    let mut head = ctx.w.take_xfer();
    status_line(&mut head, status);
    let ops = &route.response_headers;
    rep_fields(&mut head, file, rep, encoding, status != 304, ops);
    head
}

fn status_line(out: &mut Vec<u8>, status: u16) {
    out.extend_from_slice(match status {
        200 => b"HTTP/1.1 200 OK\r\nServer: bext\r\n".as_slice(),
        206 => b"HTTP/1.1 206 Partial Content\r\nServer: bext\r\n",
        304 => b"HTTP/1.1 304 Not Modified\r\nServer: bext\r\n",
        _ => b"HTTP/1.1 301 Moved Permanently\r\nServer: bext\r\n",
    });
}

/// The fields of a representation (see [`bext_static::Plan`]), then the route's
/// `response_header` operations.
fn rep_fields(
    out: &mut Vec<u8>,
    file: &File,
    rep: &Representation,
    encoding: Option<Encoding>,
    with_type: bool,
    ops: &HeaderOps,
) {
    let mut field = |name: &[u8], value: &[u8]| {
        if !ops.drops(name) {
            out.extend_from_slice(name);
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
    };
    if with_type {
        field(b"Content-Type", file.content_type().as_bytes());
    }
    field(b"ETag", rep.etag().as_bytes());
    field(b"Last-Modified", rep.last_modified_bytes());
    field(b"Accept-Ranges", b"bytes");
    field(b"X-Content-Type-Options", b"nosniff");
    if let Some(e) = encoding {
        field(b"Content-Encoding", e.token().as_bytes());
    }
    if file.has_variants() {
        field(b"Vary", b"Accept-Encoding");
    }
    ops.write_added(out);
}

/// Send a head and the byte ranges `parts` (offset, length) of `rep`, framed by `mp` when
/// there are several.
#[allow(clippy::too_many_arguments)]
async fn body(
    ctx: &mut Ctx<'_>,
    route: &CompiledRoute,
    status: u16,
    head: Vec<u8>,
    rep: &Representation,
    parts: &[(u64, u64)],
    mp: Option<&bext_static::range::Multipart<'_>>,
    close: bool,
) -> Outcome {
    let len = match mp {
        Some(m) => m.content_length(),
        None => parts.iter().map(|p| p.1).sum(),
    };
    let mut out = ctx.w.take_xfer();
    let framed = finish_head(ctx, route, status, &head, Some(len), close, &mut out);
    ctx.w.give_xfer(head);
    if ctx.is_head {
        let ok = send(ctx, &mut out).await;
        ctx.w.give_xfer(out);
        return done(status, 0, ok, framed.close);
    }
    // A stream that cannot take sendfile (it encrypts what it sends) gets the file through
    // itself, piece by piece, like a filtered body.
    let sendfile = ctx
        .stream
        .as_ref()
        .is_some_and(|s| s.sendfile_socket().is_some());
    let res = if framed.filtering || !sendfile {
        filtered(ctx, route, framed, rep, parts, mp, &mut out).await
    } else {
        plain(ctx, rep, parts, mp, len, &mut out).await
    };
    ctx.w.give_xfer(out);
    match res {
        Ok(bytes) => done(status, bytes, true, framed.close),
        // Part of the body may have left: the connection closes without completing the
        // framing, so the client cannot take a short body for a whole one.
        Err(bytes) => Outcome {
            status,
            bytes,
            keep: false,
            error: Some("file-send-failed"),
            upstream: None,
        },
    }
}

/// The body as it is: small ones behind the head in one write, larger ones by `sendfile`.
async fn plain(
    ctx: &mut Ctx<'_>,
    rep: &Representation,
    parts: &[(u64, u64)],
    mp: Option<&bext_static::range::Multipart<'_>>,
    len: u64,
    out: &mut Vec<u8>,
) -> Result<u64, u64> {
    let steps = ctx.send_steps();
    let uring = !ctx.w.readiness_idle;
    let Some(s) = ctx.stream.as_mut() else {
        return Err(0);
    };
    if len <= INLINE {
        for (i, &(off, n)) in parts.iter().enumerate() {
            if let Some(m) = mp {
                m.write_part_head(i, out);
            }
            if read_into(rep.fd(), out, off, n).is_err() {
                return Err(0);
            }
        }
        if let Some(m) = mp {
            m.write_trailer(out);
        }
        return match write_all(s, out, steps.step()).await {
            Ok(()) => Ok(len),
            Err(_) => Err(0),
        };
    }
    let mut sent = 0u64;
    for (i, &(off, n)) in parts.iter().enumerate() {
        if let Some(m) = mp {
            m.write_part_head(i, out);
        }
        if write_all(s, out, steps.step()).await.is_err() {
            return Err(sent);
        }
        out.clear();
        match send_file(s, rep.fd(), off, n, steps, uring).await {
            Ok(()) => sent += n,
            Err(_) => return Err(sent),
        }
    }
    if let Some(m) = mp {
        m.write_trailer(out);
        if write_all(s, out, steps.step()).await.is_err() {
            return Err(sent);
        }
    }
    Ok(len)
}

/// The body through the body filters, read in pieces.
async fn filtered(
    ctx: &mut Ctx<'_>,
    route: &CompiledRoute,
    mut framed: Framed,
    rep: &Representation,
    parts: &[(u64, u64)],
    mp: Option<&bext_static::range::Multipart<'_>>,
    out: &mut Vec<u8>,
) -> Result<u64, u64> {
    let steps = ctx.send_steps();
    let mut bufs = FilterBufs::take(ctx);
    let mut piece = ctx.w.take_xfer();
    let mut sent = 0u64;
    let res = 'send: {
        let count = parts.len();
        for (i, &(off, n)) in parts.iter().enumerate() {
            if let Some(m) = mp {
                piece.clear();
                m.write_part_head(i, &mut piece);
                match framed.piece(ctx, route, &piece, false, &mut bufs, out) {
                    Ok(b) => sent += b,
                    Err(_) => break 'send Err(sent),
                }
            }
            let mut at = off;
            let end = off + n;
            while at < end {
                piece.clear();
                let want = (end - at).min(crate::body::XFER as u64);
                if read_into(rep.fd(), &mut piece, at, want).is_err() {
                    break 'send Err(sent);
                }
                at += want;
                let last = at == end && i + 1 == count && mp.is_none();
                match framed.piece(ctx, route, &piece, last, &mut bufs, out) {
                    Ok(b) => sent += b,
                    Err(_) => break 'send Err(sent),
                }
                let Some(s) = ctx.stream.as_mut() else {
                    break 'send Err(sent);
                };
                if write_all(s, out, steps.step()).await.is_err() {
                    break 'send Err(sent);
                }
                out.clear();
            }
        }
        if let Some(m) = mp {
            piece.clear();
            m.write_trailer(&mut piece);
            match framed.piece(ctx, route, &piece, true, &mut bufs, out) {
                Ok(b) => sent += b,
                Err(_) => break 'send Err(sent),
            }
        }
        let Some(s) = ctx.stream.as_mut() else {
            break 'send Err(sent);
        };
        match write_all(s, out, steps.step()).await {
            Ok(()) => Ok(sent),
            Err(_) => Err(sent),
        }
    };
    ctx.w.give_xfer(piece);
    bufs.give(ctx);
    res
}

/// Append `n` bytes of `fd` from `off` to `out`. A file that shrank under us is an error: its
/// length is already announced.
fn read_into(fd: BorrowedFd<'_>, out: &mut Vec<u8>, off: u64, n: u64) -> std::io::Result<()> {
    let start = out.len();
    let n = usize::try_from(n).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    out.resize(start + n, 0);
    let mut got = 0;
    while got < n {
        match crate::sys::pread(fd, &mut out[start + got..], off + got as u64)? {
            0 => {
                out.truncate(start);
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            k => got += k,
        }
    }
    Ok(())
}

/// Restores a socket's blocking mode when the body is sent (or abandoned).
struct NonBlocking(i32);

impl Drop for NonBlocking {
    fn drop(&mut self) {
        let _ = crate::sys::set_nonblocking(self.0, false);
    }
}

/// `n` bytes of `fd` from `off` to the client with `sendfile`, each wait for room in the send
/// buffer bounded by the send timeout.
async fn send_file(
    s: &mut ClientStream,
    fd: BorrowedFd<'_>,
    mut off: u64,
    n: u64,
    steps: PerStep<'_>,
    uring: bool,
) -> Result<(), IoFail> {
    let Some(sock) = s.sendfile_socket() else {
        return Err(IoFail::Io(std::io::ErrorKind::Unsupported.into()));
    };
    let _restore = if uring {
        crate::sys::set_nonblocking(sock, true).map_err(IoFail::Io)?;
        Some(NonBlocking(sock))
    } else {
        None
    };
    let end = off + n;
    while off < end {
        let want = ((end - off) as usize).min(SENDFILE_STEP);
        match crate::sys::sendfile(sock, fd, &mut off, want) {
            Ok(0) => return Err(IoFail::Io(std::io::ErrorKind::UnexpectedEof.into())),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                match steps.step().run(s.writable(false)).await {
                    Some(Ok(())) => {}
                    Some(Err(e)) => return Err(IoFail::Io(e)),
                    None => return Err(IoFail::Timeout),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(IoFail::Io(e)),
        }
    }
    Ok(())
}

async fn send(ctx: &mut Ctx<'_>, out: &mut Vec<u8>) -> bool {
    let t = ctx.send_timeout();
    match ctx.stream.as_mut() {
        Some(s) => write_all(s, out, t).await.is_ok(),
        None => false,
    }
}

fn done(status: u16, bytes: u64, ok: bool, close: bool) -> Outcome {
    Outcome {
        status,
        bytes,
        keep: ok && !close,
        error: None,
        upstream: None,
    }
}

/// A directory named without its final `/`: 301 to the path with one (and the query).
async fn add_slash(ctx: &mut Ctx<'_>, route: &CompiledRoute, close: bool) -> Outcome {
    let mut head = ctx.w.take_xfer();
    status_line(&mut head, 301);
    head.extend_from_slice(b"Location: ");
    head.extend_from_slice(ctx.path());
    head.push(b'/');
    if let Some(q) = ctx.head.query {
        head.push(b'?');
        head.extend_from_slice(q.get(ctx.buf));
    }
    head.extend_from_slice(b"\r\n");
    route.response_headers.write_added(&mut head);
    send_whole(ctx, route, 301, head, &[], Some(0), close).await
}

async fn problem(ctx: &mut Ctx<'_>, class: ErrorClass, close: bool, extra: &[u8]) -> Outcome {
    send_problem_with(
        ctx,
        class.status(),
        class.slug(),
        class.title(),
        close,
        extra,
    )
    .await
}

/// A path the handler does not serve.
async fn refuse(ctx: &mut Ctx<'_>, r: Refusal, close: bool) -> Outcome {
    let class = match r {
        // Refused on its bytes: the request was read whole, the connection can go on.
        Refusal::BadPath => {
            let c = ErrorClass::BadRequest;
            return send_problem_with(ctx, c.status(), c.slug(), c.title(), close, b"").await;
        }
        Refusal::Hidden | Refusal::TooLong | Refusal::NotFound => ErrorClass::NotFound,
        Refusal::Escapes | Refusal::Forbidden => ErrorClass::Forbidden,
        Refusal::Io(_) => ErrorClass::FileError,
    };
    problem(ctx, class, close, b"").await
}
