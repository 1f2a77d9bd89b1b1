//! `redirect STATUS "LOCATION"`: the location rendered from the request (`{path}`, `{query}`,
//! `{host}`), the head through the response head phase like any other.

use crate::conn::reply::{push_usize, send_bodiless};
use crate::conn::{body_failure, discard_body, strip_port, Ctx, Outcome};
use crate::error::reason;
use crate::pipeline::{CompiledRoute, Segment};

pub(crate) async fn serve(
    ctx: &mut Ctx<'_>,
    route: &CompiledRoute,
    status: u16,
    location: &[Segment],
) -> Outcome {
    if let Err(e) = discard_body(ctx).await {
        return body_failure(ctx, e).await;
    }
    let close = !ctx.keep_wanted;
    let mut head = ctx.w.take_xfer();
    head.extend_from_slice(b"HTTP/1.1 ");
    push_usize(&mut head, u64::from(status));
    head.push(b' ');
    head.extend_from_slice(reason(status).as_bytes());
    head.extend_from_slice(b"\r\nServer: bext\r\nLocation: ");
    render_location(ctx, location, &mut head);
    head.extend_from_slice(b"\r\n");
    route.response_headers.write_added(&mut head);
    send_bodiless(ctx, route, status, head, Some(0), close).await
}

/// The location; `{path}` is the normal path (with its parameters, as forwarded).
fn render_location(ctx: &Ctx<'_>, tpl: &[Segment], out: &mut Vec<u8>) {
    let buf: &[u8] = ctx.buf;
    for seg in tpl {
        match seg {
            Segment::Lit(l) => out.extend_from_slice(l),
            Segment::Path => out.extend_from_slice(ctx.path()),
            Segment::Query => {
                if let Some(q) = ctx.head.query {
                    out.extend_from_slice(q.get(buf));
                }
            }
            Segment::Host => {
                let host = ctx
                    .head
                    .effective_authority()
                    .map_or(&b""[..], |s| s.get(buf));
                out.extend_from_slice(strip_port(host));
            }
        }
    }
}
