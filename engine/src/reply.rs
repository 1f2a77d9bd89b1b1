//! Responses the engine makes itself (a handler's, not an upstream's): the end of the head,
//! after the response head phase, and the framing of a body that body filters may change.
//!
//! A handler writes its status line and fields into a buffer, then calls [`finish_head`]:
//! when the route has stages in the response head phase they see the fields and edit them,
//! and the framing is chosen after them — `Content-Length` when the body is the handler's,
//! chunked (HTTP/1.1) or close-delimited (HTTP/1.0) when a stage changes it. Body pieces then
//! go through [`Framed::piece`], which passes them untouched (nothing copied) or through the
//! body filters.

use crate::conn::{connection_field, content_length_field, Ctx};
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
        filtering = ctx.ex.response_head(&route.stages, status, view) && len.is_some();
        let line_end = head
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(head.len(), |i| i + 2);
        out.extend_from_slice(&head[..line_end]);
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
    let chunked = filtering && !ctx.http10;
    let close = close || (filtering && ctx.http10);
    if let Some(n) = len {
        if chunked {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
        } else if !filtering {
            content_length_field(out, n);
        }
    }
    ctx.w.with_date_line(|d| out.extend_from_slice(d));
    connection_field(out, close, ctx.http10);
    out.extend_from_slice(b"\r\n");
    Framed {
        filtering,
        chunked,
        close,
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
        &self,
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
        if n > 0 {
            if self.chunked {
                bext_http1::write_chunk_header(out, n);
            }
            out.extend_from_slice(&bufs.filtered);
            if self.chunked {
                out.extend_from_slice(b"\r\n");
            }
        }
        if last && self.chunked {
            out.extend_from_slice(bext_http1::LAST_CHUNK);
        }
        Ok(n as u64)
    }
}
