//! A stage's own response (a plugin's local reply: `proxy_send_local_response`): any
//! status, fields and body, sent as a handler's response, so the response phases see it and
//! the engine frames it.

use crate::conn::reply::{send_whole, status_line};
use crate::conn::{Ctx, Outcome};
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
    status_line(&mut head, status);
    head.extend_from_slice(fields);
    let bodied = status >= 200 && status != 204 && status != 304;
    let len = bodied.then_some(body.len() as u64);
    let close = force_close || !ctx.keep_wanted;
    send_whole(ctx, route, status, head, body, len, close).await
}
