//! Responses the engine makes itself (a handler's, not an upstream's): the end of the head,
//! after the response head phase, and the framing of a body that body filters may change.
//!
//! A handler writes its status line and fields into a buffer, then calls [`finish_head`]:
//! when the route has stages in the response head phase they see the fields and edit them,
//! and the framing is chosen after them — `Content-Length` when the body is the handler's,
//! chunked (HTTP/1.1) or close-delimited (HTTP/1.0) when a stage changes it. Body pieces then
//! go through [`Framed::piece`], which passes them untouched (nothing copied) or through the
//! body filters.

use super::Outcome;
use crate::body::BodyErr;
use crate::error::{problem_body, reason, ErrorClass};
use crate::io::write_all;
use crate::worker::Worker;

use super::Ctx;
use crate::pipeline::CompiledRoute;
use crate::stage::{Headers, Phases};

/// How the body of a finished head is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Framed {
    /// Some stage changes the body: its pieces go through [`Framed::piece`].
    pub filtering: bool,
    /// The body is sent chunked.
    pub chunked: bool,
    /// The connection closes after the response (asked for, or the end of a close-delimited
    /// body).
    pub close: bool,
    /// The filters keep the body's length: the bytes still owed under its `Content-Length`
    /// (output past it, or short of it at the end, cuts the response short).
    pub owed: Option<u64>,
}

/// Finish the head in `head` (status line, then `Name: value\r\n` fields; no framing, `Date`
/// or `Connection`) into `out`. `len` is the body's length for a status that has a body (also
/// for HEAD, where the fields are those a GET would get), `None` for one that has none (304).
pub(crate) fn finish_head(
    ctx: &mut Ctx<'_>,
    route: &CompiledRoute,
    status: u16,
    head: &[u8],
    len: Option<u64>,
    close: bool,
    out: &mut Vec<u8>,
) -> Framed {
    let mut filtering = false;
    if route.stages.has(Phases::RESPONSE_HEAD) {
        let fields = crate::pipeline::head_fields(head);
        let view = Headers::new(head, &fields);
        filtering = ctx
            .ex
            .response_head(&route.stages, status, view, len, false)
            && len.is_some();
        let line_end = head
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(head.len(), |i| i + 2);
        match ctx.ex.edits.status() {
            Some(s) => status_line(out, s),
            None => out.extend_from_slice(&head[..line_end]),
        }
        for (name, value) in view.iter() {
            if ctx.ex.edits.removes(name) {
                continue;
            }
            out.extend_from_slice(name);
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(ctx.ex.edits.added_lines());
    } else {
        out.extend_from_slice(head);
    }
    // Filters that keep the length leave the framing as it was.
    let kept = filtering && ctx.ex.length_kept();
    let reframed = filtering && !kept;
    let chunked = reframed && !ctx.http10;
    let close = close || (reframed && ctx.http10);
    if let Some(n) = len {
        if chunked {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
        } else if !reframed {
            content_length_field(out, n);
        }
    }
    crate::h3::alt_svc(ctx.stream.as_ref(), out);
    ctx.w.with_date_line(|d| out.extend_from_slice(d));
    connection_field(out, close, ctx.http10);
    out.extend_from_slice(b"\r\n");
    Framed {
        filtering,
        chunked,
        close,
        owed: if kept { len } else { None },
    }
}

/// Buffers a filtered body moves through, taken from the worker's pool.
pub(crate) struct FilterBufs {
    filtered: Vec<u8>,
    tmp: Vec<u8>,
}

impl FilterBufs {
    pub fn take(ctx: &Ctx<'_>) -> FilterBufs {
        FilterBufs {
            filtered: ctx.w.take_xfer(),
            tmp: ctx.w.take_xfer(),
        }
    }

    pub fn give(self, ctx: &Ctx<'_>) {
        ctx.w.give_xfer(self.filtered);
        ctx.w.give_xfer(self.tmp);
    }
}

impl Framed {
    /// Append one piece of the body to `out`, as the client receives it: through the body
    /// filters when some stage changes the body, chunk-framed when chunked (`last`: the body
    /// ends with this piece, which may be empty). Returns the body bytes appended (framing not
    /// counted); an error of a filter cuts the response short.
    pub fn piece(
        &mut self,
        ctx: &mut Ctx<'_>,
        route: &CompiledRoute,
        piece: &[u8],
        last: bool,
        bufs: &mut FilterBufs,
        out: &mut Vec<u8>,
    ) -> Result<u64, crate::stage::BodyError> {
        if !self.filtering {
            out.extend_from_slice(piece);
            return Ok(piece.len() as u64);
        }
        ctx.ex.body(
            &route.stages,
            piece,
            last,
            &mut bufs.filtered,
            &mut bufs.tmp,
        )?;
        let n = bufs.filtered.len();
        spend_owed(&mut self.owed, n, last)?;
        bext_http1::write_body_piece(out, &bufs.filtered, self.chunked);
        if last && self.chunked {
            out.extend_from_slice(bext_http1::LAST_CHUNK);
        }
        Ok(n as u64)
    }
}

/// `n` filtered bytes against `owed`, the bytes a kept `Content-Length` still announces
/// (`None`: the body is re-framed, nothing is owed). Output past it, or short of it at the
/// `last` piece, is an error: a filter that said it keeps the length changed it after all, and
/// the response is cut short.
pub(crate) fn spend_owed(
    owed: &mut Option<u64>,
    n: usize,
    last: bool,
) -> Result<(), crate::stage::BodyError> {
    if let Some(owed) = owed.as_mut() {
        let n = n as u64;
        if n > *owed || (last && n != *owed) {
            return Err(crate::stage::BodyError);
        }
        *owed -= n;
    }
    Ok(())
}

/// A response whose whole body is at hand (none for a 304 or a redirect, a stage's own
/// reply): `head` (status line and fields, given back to the pool) through [`finish_head`],
/// then `body` (through the body filters when a stage filters it, their end included), sent
/// in one write. `len` as for [`finish_head`]: `None` sends no body.
pub(crate) async fn send_whole(
    ctx: &mut Ctx<'_>,
    route: &CompiledRoute,
    status: u16,
    head: Vec<u8>,
    body: &[u8],
    len: Option<u64>,
    close: bool,
) -> Outcome {
    let mut out = ctx.w.take_xfer();
    let mut framed = finish_head(ctx, route, status, &head, len, close, &mut out);
    ctx.w.give_xfer(head);
    let mut ok = true;
    let mut bytes = 0;
    if len.is_some() && !ctx.is_head {
        if framed.filtering {
            let mut bufs = FilterBufs::take(ctx);
            match framed.piece(ctx, route, body, true, &mut bufs, &mut out) {
                Ok(n) => bytes = n,
                Err(_) => ok = false,
            }
            bufs.give(ctx);
        } else {
            out.extend_from_slice(body);
            bytes = body.len() as u64;
        }
    }
    let t = ctx.send_timeout();
    let ok = ok
        && match ctx.stream.as_mut() {
            Some(s) => write_all(s, &mut out, t).await.is_ok(),
            None => false,
        };
    ctx.w.give_xfer(out);
    Outcome {
        status,
        bytes,
        keep: ok && !framed.close,
        error: None,
        upstream: None,
    }
}

/// `Connection` field for a response: close, or keep-alive spelled out for HTTP/1.0.
pub(crate) fn connection_field(out: &mut Vec<u8>, close: bool, http10: bool) {
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if http10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
}

pub(crate) use bext_http1::push_decimal as push_usize;

/// `HTTP/1.1 STATUS Reason\r\n`, the status line of bext's own responses.
pub(crate) fn status_line(out: &mut Vec<u8>, status: u16) {
    status_line_with(out, status, reason(status).as_bytes());
}

/// `HTTP/1.1 STATUS REASON\r\n` with a reason phrase of the caller's (an origin's).
pub(crate) fn status_line_with(out: &mut Vec<u8>, status: u16, reason: &[u8]) {
    out.extend_from_slice(b"HTTP/1.1 ");
    push_usize(out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(reason);
    out.extend_from_slice(b"\r\n");
}

pub(crate) fn content_length_field(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(b"Content-Length: ");
    push_usize(out, n);
    out.extend_from_slice(b"\r\n");
}

pub(super) fn problem_head(
    w: &Worker,
    out: &mut Vec<u8>,
    status: u16,
    len: usize,
    close: bool,
    http10: bool,
) {
    problem_head_with(w, out, status, len, close, http10, b"");
}

/// A problem response head; `extra` holds more fields, serialised (`Name: value\r\n` each).
fn problem_head_with(
    w: &Worker,
    out: &mut Vec<u8>,
    status: u16,
    len: usize,
    close: bool,
    http10: bool,
    extra: &[u8],
) {
    status_line(out, status);
    out.extend_from_slice(b"Server: bext\r\nContent-Type: application/problem+json\r\n");
    out.extend_from_slice(extra);
    content_length_field(out, len as u64);
    w.with_date_line(|d| out.extend_from_slice(d));
    connection_field(out, close, http10);
    out.extend_from_slice(b"\r\n");
}

/// Send a problem response for a parsed request. The connection stays open only when the
/// class allows it and the request body was already consumed (or there is none).
pub(crate) async fn send_problem(
    ctx: &mut Ctx<'_>,
    status: u16,
    slug: &'static str,
    title: &str,
    force_close: bool,
) -> Outcome {
    send_problem_with(ctx, status, slug, title, force_close, b"").await
}

/// `send_problem` with more fields (`Retry-After`, `Allow`, `Content-Range`), serialised.
pub(crate) async fn send_problem_with(
    ctx: &mut Ctx<'_>,
    status: u16,
    slug: &'static str,
    title: &str,
    force_close: bool,
    extra: &[u8],
) -> Outcome {
    let rid = std::str::from_utf8(ctx.rid).unwrap_or("");
    let body = problem_body(slug, title, status, rid);
    let close = force_close || !ctx.keep_wanted;
    let mut out = ctx.w.take_xfer();
    let mut fields = extra.to_vec();
    crate::h3::alt_svc(ctx.stream.as_ref(), &mut fields);
    problem_head_with(
        ctx.w,
        &mut out,
        status,
        body.len(),
        close,
        ctx.http10,
        &fields,
    );
    if !ctx.is_head {
        out.extend_from_slice(body.as_bytes());
    }
    let t = ctx.send_timeout();
    let ok = match ctx.client() {
        Some(s) => write_all(s, &mut out, t).await.is_ok(),
        None => false,
    };
    ctx.w.give_xfer(out);
    Outcome {
        status,
        bytes: if ctx.is_head { 0 } else { body.len() as u64 },
        keep: ok && !close,
        error: Some(slug),
        upstream: None,
    }
}

pub(crate) async fn send_class(
    ctx: &mut Ctx<'_>,
    class: ErrorClass,
    body_pending: bool,
) -> Outcome {
    let close = class.closes_connection() || body_pending;
    send_problem(ctx, class.status(), class.slug(), class.title(), close).await
}

/// Map a request body failure to what the client sees.
pub(crate) async fn body_failure(ctx: &mut Ctx<'_>, e: BodyErr) -> Outcome {
    match e {
        BodyErr::TooLarge => send_class(ctx, ErrorClass::PayloadTooLarge, true).await,
        BodyErr::Framing => send_class(ctx, ErrorClass::BadRequest, true).await,
        BodyErr::Timeout => send_class(ctx, ErrorClass::RequestTimeout, true).await,
        BodyErr::Closed | BodyErr::Io(_) => Outcome::closed(400, Some("client-closed")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_lengths_render_without_allocation_quirks() {
        for n in [0u64, 7, 10, 12345, u64::MAX] {
            let mut out = Vec::new();
            push_usize(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
    }
}
