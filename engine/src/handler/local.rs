//! A stage's own response (a plugin's local reply: `proxy_send_local_response`): any
//! status, fields and body, sent as a handler's response, so the response phases see it and
//! the engine frames it.

use crate::conn::reply::{finish_head, push_usize, FilterBufs};
use crate::conn::{Ctx, Outcome};
use crate::error::reason;
use crate::io::write_all;
use crate::pipeline::CompiledRoute;

/// Send `status` with `fields` (`Name: value\r\n` each, no framing) and `body`; the
/// connection closes after it when `force_close` (a request body left unread).
pub(crate) async fn send(
    ctx: &mut Ctx<'_>,
    route: &CompiledRoute,
    status: u16,
    fields: &[u8],
    body: &[u8],
    force_close: bool,
) -> Outcome {
    let mut head = ctx.w.take_xfer();
    head.extend_from_slice(b"HTTP/1.1 ");
    push_usize(&mut head, u64::from(status));
    head.push(b' ');
    head.extend_from_slice(reason(status).as_bytes());
    head.extend_from_slice(b"\r\n");
    head.extend_from_slice(fields);
    let bodied = status >= 200 && status != 204 && status != 304;
    let len = bodied.then_some(body.len() as u64);
    let close = force_close || !ctx.keep_wanted;
    let mut out = ctx.w.take_xfer();
    let mut framed = finish_head(ctx, route, status, &head, len, close, &mut out);
    ctx.w.give_xfer(head);
    let mut ok = true;
    let mut bytes = 0;
    if bodied && !ctx.is_head {
        let mut bufs = FilterBufs::take(ctx);
        match framed.piece(ctx, route, body, true, &mut bufs, &mut out) {
            Ok(n) => bytes = n,
            Err(_) => ok = false,
        }
        bufs.give(ctx);
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
