//! One request on a connection: read its head, route it, run its handler, log it.

use super::dispatch::dispatch;
use super::reply::problem_head;
use super::{valid_request_id, Ctx, InFlight, Next};
use crate::io::{race, read_more, write_all, Either, IoFail, Limit};
use crate::pipeline::Pipeline;
use crate::stage::{Headers, LogEntry, Phases};
use crate::stream::ClientStream;
use crate::worker::{Scratch, Worker};
use bext_http1::{Framing, Method, Parse, Version};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::error::ErrorClass;
use std::pin::pin;

/// Read, route and answer one request. Returns true when the connection stays open.
pub(super) async fn one_request(
    w: &Rc<Worker>,
    stream: &mut Option<ClientStream>,
    sc: &mut Scratch,
    peer: Option<SocketAddr>,
    served: u32,
) -> Next {
    let Some(peer) = peer.or_else(|| stream.as_ref().and_then(|s| s.peer_addr().ok())) else {
        return Next::Close;
    };
    let p = w.pipeline();
    let p: &Pipeline = &p;
    let policy = p.client;
    if sc.buf.is_empty() {
        // The first bytes of a request: until they arrive the connection is idle, not in
        // flight, so a stop closes it at once.
        let Some(s) = stream.as_mut() else {
            return Next::Close;
        };
        let limit = Limit::new(&w.stop, policy.request_wait(served));
        let read = read_more(s, &mut sc.buf, 1024, limit);
        match race(pin!(read), pin!(w.stop.wait())).await {
            Either::Left(Ok(_)) => {}
            _ => return Next::Close,
        }
    }
    let _busy = InFlight::new(w);
    let started = Instant::now();
    let limit = Limit::new(&w.stop, policy.header_timeout);
    // Phase: request head.
    loop {
        if !sc.buf.is_empty() {
            match bext_http1::parse_request(&sc.buf, &policy.limits, &mut sc.head) {
                Ok(Parse::Complete) => break,
                Ok(Parse::Partial) => {
                    if sc.buf.len() > policy.limits.max_head + policy.limits.max_target {
                        return early_error(
                            w,
                            stream,
                            sc,
                            peer,
                            ErrorClass::HeadersTooLarge,
                            started,
                        )
                        .await;
                    }
                }
                Err(e) => {
                    let class = ErrorClass::from_codec(&e);
                    return early_error(w, stream, sc, peer, class, started).await;
                }
            }
        }
        let Some(s) = stream.as_mut() else {
            return Next::Close;
        };
        let partial = !sc.buf.is_empty();
        match read_more(s, &mut sc.buf, 2048, limit).await {
            Ok(_) => {}
            Err(IoFail::Timeout) if partial => {
                return early_error(w, stream, sc, peer, ErrorClass::RequestTimeout, started).await;
            }
            Err(_) => return Next::Close,
        }
    }
    w.shared.stats[w.id]
        .requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);

    let Scratch {
        buf,
        head,
        rhead,
        rid,
        note,
        stages,
        ..
    } = sc;
    stages.next_request();
    // Request id: keep a valid one from a trusted proxy, generate one otherwise.
    let trusted = p.trusted.contains(peer.ip());
    // The request id's bytes when bext made it (a new trace takes it as its id).
    let rid_raw = match Headers::from_request(buf, head).get(b"x-request-id") {
        Some(v) if trusted && valid_request_id(v) => {
            rid.clear();
            rid.extend_from_slice(v);
            None
        }
        _ => Some(w.next_request_id(rid)),
    };
    // Trace context: only with a `tracing` block (no field is looked up otherwise).
    let trace = p.tracing.as_ref().map(|t| {
        let accept = match t.parent {
            bext_ir::TraceParent::Trusted => trusted,
            bext_ir::TraceParent::Any => true,
            bext_ir::TraceParent::None => false,
        };
        crate::trace::TraceContext::of_request(
            t,
            Headers::from_request(buf, head),
            accept,
            rid_raw,
            w.next_span_id(),
            || w.next_trace_id(),
        )
    });
    let logging = w.log.borrow().is_some() || p.stage_phases.contains(Phases::LOG);
    // Stages told of the request's end without its request fields (see `Phases::DONE`).
    let done = p.stage_phases.contains(Phases::DONE);
    // A sampled request's span is exported: it names the method, target and host too.
    let span = match (&p.tracing, &trace) {
        (Some(t), Some(c)) if crate::trace::exporting(t, c) => Some((t, c)),
        _ => None,
    };
    let note_ranges = if logging || span.is_some() {
        Some(take_note(note, buf, head))
    } else {
        None
    };
    let framing = head.framing.unwrap_or(Framing::None);
    let client_keep = head.keep_alive;
    let mut ctx = Ctx {
        w,
        stream,
        rhead,
        pos: head.head_len,
        peer,
        policy,
        framing,
        http10: head.version == Some(Version::Http10),
        is_head: head.method == Some(Method::Head),
        // The connection's last request under `keepalive_requests` is answered with
        // `Connection: close`.
        keep_wanted: client_keep
            && !w.stop.is_stopped()
            && u64::from(served) + 1 < policy.keepalive_requests,
        rid,
        trusted,
        trace,
        path: None,
        ex: stages,
        route: None,
        body: None,
        // Last: the fields above read the head before it is lent out.
        head,
        buf,
    };
    let mut outcome = dispatch(&mut ctx, p).await;
    // A stage answered with another status (the response head carried it): the log and the
    // metrics count that one.
    if let Some(s) = ctx.ex.edits.status() {
        outcome.status = s;
    }
    let route = ctx.route;
    let consumed = ctx.pos.min(ctx.buf.len());
    let keep = outcome.keep && ctx.keep_wanted && ctx.stream.is_some();
    // The client said this was its last request (`Connection: close`, or HTTP/1.0 without
    // keep-alive), the request had no body (none can be left unread) and no byte beyond it
    // was received: the client has nothing more to send.
    let client_done = !client_keep && !ctx.has_body() && consumed == ctx.buf.len();
    ctx.buf.drain(..consumed);
    let duration_us = if logging || done || p.metrics {
        started.elapsed().as_micros() as u64
    } else {
        0
    };
    if p.metrics {
        w.metrics.borrow_mut().request(
            p.generation,
            &p.metric_labels,
            route,
            outcome.status,
            duration_us,
        );
    }
    if let (Some((t, c)), Some(r)) = (span, &note_ranges) {
        let n = &note[..];
        let end = crate::trace::unix_ns();
        crate::trace::finish(
            w,
            t,
            c,
            &crate::trace::SpanEnd {
                method: &n[r.method.clone()],
                target: &n[r.target.clone()],
                host: &n[r.host.clone()],
                route: route
                    .and_then(|r| p.metric_labels.get(r))
                    .map(|l| l.route.as_str()),
                status: outcome.status,
                client: peer.ip(),
                upstream: outcome.upstream,
                request_id: rid,
                start_unix_ns: end.saturating_sub(started.elapsed().as_nanos() as u64),
                end_unix_ns: end,
                error: outcome.error,
            },
        );
    }
    if logging || done {
        let n = &note[..];
        // Without an access log or a stage reading them, no request field was kept.
        let r = note_ranges.filter(|_| logging).unwrap_or_default();
        let trace_ids = trace.map(|t| (t.trace_hex(), t.span_hex()));
        let entry = LogEntry {
            client: peer,
            method: &n[r.method.clone()],
            target: &n[r.target.clone()],
            http10: r.http10,
            http3: matches!(ctx.stream, Some(ClientStream::Quic(_))),
            host: &n[r.host.clone()],
            status: outcome.status,
            bytes_sent: outcome.bytes,
            duration_us,
            request_id: std::str::from_utf8(rid).unwrap_or("-"),
            upstream: outcome.upstream,
            error: outcome.error,
            referer: r.referer.clone().map(|x| &n[x]),
            user_agent: r.ua.clone().map(|x| &n[x]),
            trace: trace_ids.as_ref().map(|(t, s)| {
                (
                    std::str::from_utf8(t).unwrap_or("-"),
                    std::str::from_utf8(s).unwrap_or("-"),
                )
            }),
        };
        if let (Some(log), true) = (w.log.borrow_mut().as_mut(), logging) {
            log.record(&entry, w.now_secs());
        }
        // Phase "log": the route's stages see the same entry.
        if let Some(r) = route.and_then(|r| p.routes.get(r)) {
            stages.log(&r.stages, &entry);
        }
    }
    // The stages' states are made fresh in place for the connection's next request.
    match route.and_then(|r| p.routes.get(r)) {
        Some(r) => stages.recycle(&r.stages),
        None => stages.reset(),
    }
    if keep {
        Next::Keep
    } else if client_done {
        Next::CloseNow
    } else {
        Next::Close
    }
}

#[derive(Default)]
struct NoteRanges {
    method: std::ops::Range<usize>,
    target: std::ops::Range<usize>,
    host: std::ops::Range<usize>,
    referer: Option<std::ops::Range<usize>>,
    ua: Option<std::ops::Range<usize>>,
    http10: bool,
}

fn take_note(note: &mut Vec<u8>, buf: &[u8], head: &bext_http1::RequestHead) -> NoteRanges {
    note.clear();
    let mut put = |v: &[u8]| {
        let s = note.len();
        note.extend_from_slice(v);
        s..note.len()
    };
    // One pass for both fields, the first of each name (as `Headers::get` finds it).
    let (mut referer, mut ua) = (None, None);
    for (n, v) in Headers::from_request(buf, head).iter() {
        match n.len() {
            7 if referer.is_none() && n.eq_ignore_ascii_case(b"referer") => referer = Some(v),
            10 if ua.is_none() && n.eq_ignore_ascii_case(b"user-agent") => ua = Some(v),
            _ => {}
        }
    }
    NoteRanges {
        method: put(head.method_span.get(buf)),
        target: put(head.target.get(buf)),
        host: put(head.host.map_or(&b""[..], |s| s.get(buf))),
        referer: referer.map(&mut put),
        ua: ua.map(&mut put),
        http10: head.version == Some(Version::Http10),
    }
}

/// Answer a request that could not be parsed, then close.
pub(super) async fn early_error(
    w: &Rc<Worker>,
    stream: &mut Option<ClientStream>,
    sc: &mut Scratch,
    peer: SocketAddr,
    class: ErrorClass,
    started: Instant,
) -> Next {
    w.next_request_id(&mut sc.rid);
    let rid = std::str::from_utf8(&sc.rid).unwrap_or("");
    let body = class.problem_json(rid);
    let mut out = std::mem::take(&mut sc.note);
    out.clear();
    problem_head(w, &mut out, class.status(), body.len(), true, false);
    out.extend_from_slice(body.as_bytes());
    if let Some(s) = stream.as_mut() {
        let _ = write_all(s, &mut out, Limit::new(&w.stop, Duration::from_secs(5))).await;
    }
    out.clear();
    sc.note = out;
    sc.buf.clear();
    let p = w.pipeline();
    if p.metrics {
        let micros = started.elapsed().as_micros() as u64;
        (w.metrics.borrow_mut()).request(
            p.generation,
            &p.metric_labels,
            None,
            class.status(),
            micros,
        );
    }
    drop(p);
    if let Some(log) = w.log.borrow_mut().as_mut() {
        log.record(
            &LogEntry {
                client: peer,
                method: b"-",
                target: b"-",
                http10: false,
                http3: matches!(stream, Some(ClientStream::Quic(_))),
                host: b"",
                status: class.status(),
                bytes_sent: body.len() as u64,
                duration_us: started.elapsed().as_micros() as u64,
                request_id: rid,
                upstream: None,
                error: Some(class.slug()),
                referer: None,
                user_agent: None,
                trace: None,
            },
            w.now_secs(),
        );
    }
    Next::Close
}
