//! `respond`: a configured response (and the built-in origin's generated and echoed bodies).

use crate::body::BodyReader;
use crate::conn::reply::{connection_field, content_length_field, finish_head, FilterBufs};
use crate::conn::{body_failure, discard_body, send_continue, Ctx, Outcome};
use crate::io::{write_all, write_static};
use crate::pipeline::{CompiledRoute, Respond, RespondBody};
use crate::stage::Phases;
use bext_http1::Framing;

/// Answer with the configured response; a request body is read and dropped, or sent back by
/// the built-in origin.
pub(crate) async fn serve(ctx: &mut Ctx<'_>, route: &CompiledRoute, r: &Respond) -> Outcome {
    if r.echo && ctx.has_body() && !ctx.is_head {
        return echo(ctx, r).await;
    }
    if route.stages.has(Phases::RESPONSE_HEAD) {
        staged(ctx, route, r).await
    } else {
        respond(ctx, r).await
    }
}

/// A repeating pattern that generated bodies are cut from.
static PATTERN: [u8; 16 * 1024] = {
    let mut p = [0u8; 16 * 1024];
    let mut i = 0;
    while i < p.len() {
        p[i] = b"abcdefghijklmnopqrstuvwxyz0123456789\n"[i % 37];
        i += 1;
    }
    p
};

async fn respond(ctx: &mut Ctx<'_>, r: &Respond) -> Outcome {
    // The client waits for 100 before sending its body: answer at once and close instead of
    // inviting a body that would be thrown away.
    let mut close = !ctx.keep_wanted;
    if ctx.head.expect_continue && ctx.has_body() && ctx.pos >= ctx.buf.len() {
        close = true;
    } else if let Err(e) = discard_body(ctx).await {
        return body_failure(ctx, e).await;
    }
    let mut out = ctx.w.take_xfer();
    out.extend_from_slice(&r.head);
    if r.status >= 200 && r.status != 204 && r.status != 304 {
        content_length_field(&mut out, r.body.len());
    }
    crate::h3::alt_svc(ctx.stream.as_ref(), &mut out);
    ctx.w.with_date_line(|d| out.extend_from_slice(d));
    connection_field(&mut out, close, ctx.http10);
    out.extend_from_slice(b"\r\n");
    let with_body = !ctx.is_head && r.status >= 200 && r.status != 204 && r.status != 304;
    if with_body {
        if let RespondBody::Fixed(b) = &r.body {
            out.extend_from_slice(b);
        }
    }
    let steps = ctx.send_steps();
    let Some(s) = ctx.stream.as_mut() else {
        return Outcome::closed(r.status, None);
    };
    let mut ok = write_all(s, &mut out, steps.step()).await.is_ok();
    ctx.w.give_xfer(out);
    if let (true, true, RespondBody::Generated { len }) = (ok, with_body, &r.body) {
        let mut left = *len;
        while left > 0 && ok {
            let n = left.min(PATTERN.len() as u64) as usize;
            // A fresh deadline for each piece: the timeout bounds a stalled reader, not the
            // whole (possibly large) body.
            ok = write_static(s, &PATTERN[..n], steps.step()).await.is_ok();
            left -= n as u64;
        }
    }
    Outcome {
        status: r.status,
        bytes: if with_body { r.body.len() } else { 0 },
        keep: ok && !close,
        error: None,
        upstream: None,
    }
}

/// `respond` on a route whose stages see the response: the head goes through the response
/// head phase and, when a stage changes the body, the body goes through the body filters piece
/// by piece (see `conn::reply`).
async fn staged(ctx: &mut Ctx<'_>, route: &CompiledRoute, r: &Respond) -> Outcome {
    let mut close = !ctx.keep_wanted;
    if ctx.head.expect_continue && ctx.has_body() && ctx.pos >= ctx.buf.len() {
        close = true;
    } else if let Err(e) = discard_body(ctx).await {
        return body_failure(ctx, e).await;
    }
    let bodied = r.status >= 200 && r.status != 204 && r.status != 304;
    let mut out = ctx.w.take_xfer();
    let len = bodied.then(|| r.body.len());
    let mut framed = finish_head(ctx, route, r.status, &r.head, len, close, &mut out);
    let with_body = !ctx.is_head && bodied;
    let steps = ctx.send_steps();
    let mut bufs = FilterBufs::take(ctx);
    let mut ok = true;
    let mut bytes = 0u64;
    let (fixed, mut left): (&[u8], u64) = match &r.body {
        RespondBody::Fixed(b) => (b, b.len() as u64),
        RespondBody::Generated { len } => (&[], *len),
    };
    let mut first = true;
    while with_body && ok && (first || left > 0) {
        let piece: &[u8] = match &r.body {
            RespondBody::Fixed(_) => fixed,
            RespondBody::Generated { .. } => &PATTERN[..left.min(PATTERN.len() as u64) as usize],
        };
        left -= piece.len() as u64;
        first = false;
        match framed.piece(ctx, route, piece, left == 0, &mut bufs, &mut out) {
            Ok(n) => bytes += n,
            Err(_) => {
                ok = false;
                break;
            }
        }
        // A fresh deadline for each piece: the timeout bounds a stalled reader.
        ok = match ctx.stream.as_mut() {
            Some(s) => write_all(s, &mut out, steps.step()).await.is_ok(),
            None => false,
        };
        out.clear();
    }
    if ok && !out.is_empty() {
        ok = match ctx.stream.as_mut() {
            Some(s) => write_all(s, &mut out, steps.step()).await.is_ok(),
            None => false,
        };
    }
    ctx.w.give_xfer(out);
    bufs.give(ctx);
    Outcome {
        status: r.status,
        bytes,
        keep: ok && !framed.close,
        error: None,
        upstream: None,
    }
}

/// The built-in origin: send the request body back with the same framing.
async fn echo(ctx: &mut Ctx<'_>, r: &Respond) -> Outcome {
    if !send_continue(ctx).await {
        return Outcome::closed(r.status, Some("client-closed"));
    }
    let chunked = matches!(ctx.framing, Framing::Chunked);
    let close = !ctx.keep_wanted;
    let mut out = ctx.w.take_xfer();
    out.extend_from_slice(&r.head);
    match ctx.framing {
        Framing::ContentLength(n) => content_length_field(&mut out, n),
        _ => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
    }
    crate::h3::alt_svc(ctx.stream.as_ref(), &mut out);
    ctx.w.with_date_line(|d| out.extend_from_slice(d));
    connection_field(&mut out, close, ctx.http10);
    out.extend_from_slice(b"\r\n");
    let mut reader = BodyReader::new(ctx.framing, ctx.policy.body_bytes);
    let mut head_sent = false;
    let steps = ctx.send_steps();
    let result = loop {
        // A fresh deadline for each step: the timeout bounds a pause, not the whole body.
        let t = steps.step();
        let Some(s) = ctx.stream.as_mut() else {
            break Err(None);
        };
        let more = match reader
            .pull(s, ctx.buf, &mut ctx.pos, &mut out, chunked, t)
            .await
        {
            Ok(m) => m,
            Err(e) => break Err(Some(e)),
        };
        if !more && chunked {
            out.extend_from_slice(bext_http1::LAST_CHUNK);
        }
        if write_all(s, &mut out, t).await.is_err() {
            break Err(None);
        }
        out.clear();
        head_sent = true;
        if !more {
            break Ok(());
        }
    };
    ctx.w.give_xfer(out);
    match result {
        Ok(()) => Outcome {
            status: r.status,
            bytes: reader.total(),
            keep: !close,
            error: None,
            upstream: None,
        },
        Err(Some(e)) if !head_sent => body_failure(ctx, e).await,
        Err(_) => Outcome::closed(r.status, Some("client-closed")),
    }
}
