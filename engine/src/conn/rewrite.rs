//! A request head rewritten by a request filter (a plugin's header map): rebuilt in the
//! connection buffer in place of the client's, and parsed again as strictly as a client's, so
//! the later stages, the handler (the proxy forwards it) and the log phase read one request.
//!
//! ```text
//! buf: [client head][body and pipelined bytes]  ──▶  [new head][body and pipelined bytes]
//! ```
//!
//! The request line keeps the client's version; the target is origin form (the client's path
//! and query unless the stage changed it); the framing fields are the client's, since the body
//! is still read as the client framed it. Only a route whose stage rewrote the head pays for
//! this.

use super::Ctx;
use bext_http1::{Parse, PathOptions, Version};

/// Rebuild the head from `ctx.ex.rewrite`; `opts` are the site's path options (the forwarded
/// path's normal form is computed again when the target changed). An error leaves the request
/// unusable: the caller answers 500 and closes.
pub(super) fn apply(ctx: &mut Ctx<'_>, opts: &PathOptions) -> Result<(), ()> {
    let rw = &ctx.ex.rewrite;
    let buf: &[u8] = ctx.buf;
    let head: &bext_http1::RequestHead = ctx.head;
    let old_len = head.head_len;
    let mut new = ctx.w.take_xfer();
    new.extend_from_slice(rw.method.as_deref().unwrap_or(head.method_span.get(buf)));
    new.push(b' ');
    match &rw.target {
        Some(t) => new.extend_from_slice(t),
        None => {
            new.extend_from_slice(head.path_or_root(buf));
            if let Some(q) = head.query {
                new.push(b'?');
                new.extend_from_slice(q.get(buf));
            }
        }
    }
    new.extend_from_slice(if head.version == Some(Version::Http10) {
        b" HTTP/1.0\r\n"
    } else {
        b" HTTP/1.1\r\n"
    });
    new.extend_from_slice(&rw.fields);
    for h in &head.headers {
        let name = h.name.get(buf);
        if bext_http1::name_eq(name, b"content-length")
            || bext_http1::name_eq(name, b"transfer-encoding")
        {
            new.extend_from_slice(name);
            new.extend_from_slice(b": ");
            new.extend_from_slice(h.value.get(buf));
            new.extend_from_slice(b"\r\n");
        }
    }
    new.extend_from_slice(b"\r\n");
    let framing = head.framing;
    let target_changed = rw.target.is_some();
    ctx.buf.splice(..old_len, new.iter().copied());
    ctx.pos = ctx.pos + new.len() - old_len;
    ctx.w.give_xfer(new);
    let parsed = bext_http1::parse_request(ctx.buf, &ctx.policy.limits, ctx.head);
    if !matches!(parsed, Ok(Parse::Complete)) || ctx.head.framing != framing {
        return Err(());
    }
    if target_changed {
        let path = ctx.head.path_or_root(ctx.buf);
        ctx.path = match bext_http1::normalize_path(path, opts) {
            Ok(std::borrow::Cow::Owned(p)) => Some(p),
            Ok(std::borrow::Cow::Borrowed(_)) => None,
            Err(_) => return Err(()),
        };
    }
    Ok(())
}
