//! `redirect STATUS "LOCATION"`: the location rendered from the request (`{path}`, `{query}`,
//! `{host}`), the head through the response head phase like any other.

use crate::conn::reply::{connection_field, push_usize, send_whole, status_line};
use crate::conn::{body_failure, discard_body, strip_port, Ctx, Outcome};
use crate::io::write_all;
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
    status_line(&mut head, status);
    head.extend_from_slice(b"Server: bext\r\nLocation: ");
    render_location(ctx, location, &mut head);
    head.extend_from_slice(b"\r\n");
    route.response_headers.write_added(&mut head);
    send_whole(ctx, route, status, head, &[], Some(0), close).await
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

/// `redirect https`: the same host, path and query (as the client sent them) over HTTPS, on
/// `port` (`None`: 443). A request without a usable host (an HTTP/1.0 request without `Host`)
/// cannot be sent anywhere: 400.
pub(crate) async fn to_https(ctx: &mut Ctx<'_>, status: u16, port: Option<u16>) -> Outcome {
    let host = {
        let buf: &[u8] = ctx.buf;
        let authority = ctx
            .head
            .effective_authority()
            .map_or(&b""[..], |s| s.get(buf));
        strip_port(authority).to_vec()
    };
    let usable = !host.is_empty()
        && host.iter().all(|&b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'[' | b']' | b':')
        });
    if !usable {
        let pending = ctx.has_body();
        return crate::conn::send_class(ctx, crate::error::ErrorClass::BadRequest, pending).await;
    }
    if let Err(e) = discard_body(ctx).await {
        return body_failure(ctx, e).await;
    }
    let close = !ctx.keep_wanted;
    let mut out = ctx.w.take_xfer();
    status_line(&mut out, status);
    out.extend_from_slice(b"Server: bext\r\nLocation: https://");
    out.extend_from_slice(&host);
    if let Some(p) = port {
        out.push(b':');
        push_usize(&mut out, u64::from(p));
    }
    {
        let buf: &[u8] = ctx.buf;
        out.extend_from_slice(ctx.head.path_or_root(buf));
        if let Some(q) = ctx.head.query {
            out.push(b'?');
            out.extend_from_slice(q.get(buf));
        }
    }
    out.extend_from_slice(b"\r\nContent-Length: 0\r\n");
    ctx.w.with_date_line(|d| out.extend_from_slice(d));
    connection_field(&mut out, close, ctx.http10);
    out.extend_from_slice(b"\r\n");
    let t = ctx.send_timeout();
    let ok = match ctx.stream.as_mut() {
        Some(s) => write_all(s, &mut out, t).await.is_ok(),
        None => false,
    };
    ctx.w.give_xfer(out);
    Outcome {
        status,
        bytes: 0,
        keep: ok && !close,
        error: None,
        upstream: None,
    }
}
