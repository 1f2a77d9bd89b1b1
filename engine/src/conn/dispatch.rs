//! Phases "route" and "request filters", then the route's handler.

use super::read_whole_body;
use super::reply::push_usize;
use super::{send_class, send_problem, send_problem_with, strip_port, Ctx, Outcome};
use crate::error::ErrorClass;
use crate::pipeline::{CompiledRoute, Pipeline};
use crate::stage::{Flow, Headers, Phases, Reply, RequestStep, RequestView, RouteResult};
use bext_http1::{Framing, Method};

/// Phases "route", "request filters", then the route's action.
pub(super) async fn dispatch(ctx: &mut Ctx<'_>, p: &Pipeline) -> Outcome {
    // bext is a reverse proxy, not a forward proxy: CONNECT tunnels are not offered. That is
    // 501 (RFC 9110 §15.6.2: the server does not support the method for any resource), not 405
    // (§15.5.6: a method the target resource refuses, with an Allow field that would have to
    // list methods for an authority-form target, which names no resource of ours).
    // Unlike an unknown transfer coding (the other 501), the request was framed and read
    // whole, so the connection stays usable.
    if ctx.head.method == Some(Method::Connect) {
        let body_pending = ctx.has_body();
        let c = ErrorClass::NotImplemented;
        return send_problem(ctx, c.status(), c.slug(), c.title(), body_pending).await;
    }
    let (tls, client_cert) = match ctx.stream.as_ref().and_then(|s| s.tls()) {
        Some(t) => (true, t.client_cert.clone()),
        None => (false, None),
    };
    ctx.ex.tls = tls;
    // `redirect https`: a site's requests without TLS go to the same place over HTTPS.
    if !tls && p.https_redirects.iter().any(Option::is_some) {
        let host = strip_port(
            ctx.head
                .effective_authority()
                .map_or(&b""[..], |s| s.get(ctx.buf)),
        );
        let to = p
            .router
            .site(host)
            .and_then(|i| p.https_redirects.get(i).copied().flatten());
        if let Some((status, port)) = to {
            return crate::handler::redirect::to_https(ctx, status, port).await;
        }
    }
    // Over TLS, a Host naming a site that another certificate serves is domain fronting:
    // 421 (RFC 9110 §15.5.20), so the client retries on a connection of its own.
    let misdirected = ctx.stream.as_ref().and_then(|s| s.tls()).is_some_and(|t| {
        let host = ctx.head.effective_authority().map(|h| h.get(ctx.buf));
        host.is_some_and(|h| t.misdirected(strip_port(h)))
    });
    if misdirected {
        crate::tls::COUNTERS
            .misdirected
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let body_pending = ctx.has_body();
        return send_problem(
            ctx,
            421,
            "misdirected-request",
            "Misdirected Request",
            body_pending,
        )
        .await;
    }
    // Route on the path the origin will receive: its normal form (`bext_http1::path`), with
    // the site's options. A path with two readings (`%2F`, `%00`, `..;`) is refused.
    let (opts, normal) = {
        let buf: &[u8] = ctx.buf;
        let head: &bext_http1::RequestHead = ctx.head;
        let host = strip_port(head.effective_authority().map_or(&b""[..], |s| s.get(buf)));
        let opts = p.paths.options(|| p.router.site(host));
        let normal = bext_http1::normalize_path(head.path_or_root(buf), &opts)
            .map(|c| matches!(c, std::borrow::Cow::Owned(_)).then(|| c.into_owned()));
        (opts, normal)
    };
    match normal {
        Ok(path) => ctx.path = path,
        Err(_) => {
            let body_pending = ctx.has_body();
            return send_class(ctx, ErrorClass::BadRequest, body_pending).await;
        }
    }
    // The request filters run from the stage at `from`; a filter that rewrites the request
    // head pauses them, the head is rebuilt, and the filters after it see the new request.
    let mut from = 0;
    let (result, flow) = loop {
        let buf: &[u8] = ctx.buf;
        let head: &bext_http1::RequestHead = ctx.head;
        let host_full = head.effective_authority().map_or(&b""[..], |s| s.get(buf));
        let path = match &ctx.path {
            Some(p) => &p[..],
            None => head.path_or_root(buf),
        };
        let view = RequestView {
            method: head.method,
            method_bytes: head.method_span.get(buf),
            host: strip_port(host_full),
            path: &bext_http1::route_view(path, &opts),
            query: head.query.map(|q| q.get(buf)),
            headers: Headers::from_request(buf, head),
            client: ctx.peer,
            tls,
            client_cert: client_cert.as_deref(),
        };
        let result = match ctx.route {
            // Routed before the rewrite: the route stays.
            Some(i) if from > 0 => RouteResult::Matched(crate::stage::RouteId(i as u32)),
            _ => p.router.route(&view),
        };
        let mut step = RequestStep::Done(Flow::Continue);
        if let RouteResult::Matched(id) = result {
            let route = &p.routes[id.0 as usize];
            ctx.route = Some(id.0 as usize);
            // Phase "request filters": the route's stages, each with its state for this
            // request.
            if !route.stages.is_empty() {
                if from == 0 {
                    ctx.ex.begin(&route.stages);
                }
                step = ctx.ex.request(&route.stages, &view, from).await;
            }
        }
        match step {
            RequestStep::Done(flow) => break (result, flow),
            RequestStep::Rewritten(i) => {
                from = i + 1;
                if super::rewrite::apply(ctx, &opts).is_err() {
                    // The stage's head is not one bext would accept from a client (only plugins
                    // rewrite heads).
                    return send_problem(ctx, 500, "plugin-failed", "Plugin Failed", true).await;
                }
            }
        }
    };
    let body_pending = ctx.has_body();
    let id = match result {
        RouteResult::Matched(id) => id,
        RouteResult::NotFound => {
            return send_class(ctx, ErrorClass::RouteNotFound, body_pending).await
        }
        RouteResult::MethodNotAllowed => {
            return send_class(ctx, ErrorClass::MethodNotAllowed, body_pending).await
        }
    };
    if let Flow::Reply(r) = flow {
        return reply(ctx, r, body_pending, p).await;
    }
    if let Framing::ContentLength(n) = ctx.framing {
        if n > ctx.policy.body_bytes {
            return send_class(ctx, ErrorClass::PayloadTooLarge, true).await;
        }
    }
    let route = &p.routes[id.0 as usize];
    // Phase "request body filters": the body is read whole, through the stages, before the
    // handler runs; the handler gets it in `ctx.body`.
    if route.stages.has(Phases::REQUEST_BODY) && ctx.has_body() {
        match read_filtered_body(ctx, route).await {
            Ok(Flow::Continue) => {}
            Ok(Flow::Reply(r)) => return reply(ctx, r, false, p).await,
            Err(o) => return o,
        }
    }
    crate::handler::run(ctx, p, route).await
}

/// A stage's answer instead of the handler's (in a request phase, or a response head filter's
/// in place of a proxied response).
pub(crate) async fn reply(
    ctx: &mut Ctx<'_>,
    r: Reply,
    body_pending: bool,
    p: &Pipeline,
) -> Outcome {
    if r.slug == ErrorClass::RateLimited.slug() {
        ctx.w.shared.stats[ctx.w.id]
            .rate_limited
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    } else if p.metrics && r.slug == "waf-blocked" {
        ctx.w.metrics.borrow_mut().waf_blocked();
    }
    let mut extra = Vec::new();
    if let Some(secs) = r.retry_after {
        extra.extend_from_slice(b"Retry-After: ");
        push_usize(&mut extra, secs.max(1));
        extra.extend_from_slice(b"\r\n");
    }
    // A response of the stage's own (a plugin's local reply), sent as a handler's.
    if let Some(route) = ctx.route.and_then(|i| p.routes.get(i)) {
        let (mut fields, mut body) = (ctx.w.take_xfer(), ctx.w.take_xfer());
        if ctx.ex.local_reply(&route.stages, &mut fields, &mut body) {
            let o = crate::handler::local::send(ctx, route, r.status, &fields, &body, body_pending)
                .await;
            ctx.w.give_xfer(fields);
            ctx.w.give_xfer(body);
            return o;
        }
        ctx.w.give_xfer(fields);
        ctx.w.give_xfer(body);
    }
    // Fields of the stage's own (`RateLimit`, `RateLimit-Policy`).
    if let Some(route) = ctx.route.and_then(|i| p.routes.get(i)) {
        ctx.ex.reply_fields(&route.stages, &r, &mut extra);
    }
    send_problem_with(ctx, r.status, r.slug, r.title, body_pending, &extra).await
}

/// Read the request body (decoded, within the body limit) through the route's request body
/// filters into `ctx.body`; the request then has no body left to read.
async fn read_filtered_body(ctx: &mut Ctx<'_>, route: &CompiledRoute) -> Result<Flow, Outcome> {
    let (mut a, mut b) = (ctx.w.take_xfer(), ctx.w.take_xfer());
    let mut body = Vec::new();
    let filter = super::BodyFilter {
        stages: &route.stages,
        a: &mut a,
        b: &mut b,
    };
    let res = read_whole_body(ctx, &mut body, Some(filter)).await;
    ctx.w.give_xfer(a);
    ctx.w.give_xfer(b);
    if let Ok(Flow::Continue) = res {
        ctx.body = Some(body);
        ctx.framing = Framing::None;
    }
    res
}
