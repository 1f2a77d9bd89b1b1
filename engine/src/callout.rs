//! What stages ask of the core they run on without linking the runtime (see
//! `bext_stage::callout` and `bext_stage::hooks`): HTTP calls to named upstreams (a plugin's
//! `proxy_http_call`), and the stage families' work on the worker's tick (`proxy_on_tick`).
//!
//! A call runs as a task of its own on the core: the upstream's balancer picks a server, a
//! pooled connection is taken (or one opened), the request sent, the response read whole, and
//! the connection pooled again when it can carry another request. The whole call is bounded by
//! its timeout; the request that made it waits in its stage's `poll_request` meanwhile, and
//! the core serves other requests. Calls are not retried and do not feed passive health: they
//! are the plugin's, which decides what a failure means.

use crate::body::BodyReader;
use crate::io::{race, read_more, write_all, Either, Limit};
use crate::pipeline::Pipeline;
use crate::worker::Worker;
use bext_http1::{Framing, Parse, ResponseContext, ResponseHead};
use bext_stage::callout::{CallError, CallRequest, CallResponse, Caller, Pending};
use std::cell::Cell;
use std::pin::pin;
use std::rc::{Rc, Weak};

/// Limits on a callout's response head.
const HEAD_LIMITS: bext_http1::Limits = bext_http1::Limits {
    max_target: 8 * 1024,
    max_head: 64 * 1024,
    max_headers: 256,
};

/// Largest callout response body: the plugin gets it whole, in its memory.
const MAX_BODY: u64 = 4 << 20;

/// The caller installed on each worker's thread.
pub(crate) struct WorkerCaller(Weak<Worker>);

/// Install this worker's caller on its thread.
pub(crate) fn install(w: &Rc<Worker>) {
    bext_stage::callout::install(Some(Rc::new(WorkerCaller(Rc::downgrade(w)))));
}

impl Caller for WorkerCaller {
    fn call(&self, req: CallRequest) -> Pending {
        let Some(w) = self.0.upgrade() else {
            return Pending::ready(Err(CallError::NoCaller));
        };
        let (pending, done) = bext_stage::callout::pending();
        monoio::spawn(async move {
            let exchange = pin!(exchange(&w, &req));
            let deadline = pin!(w.stop.wait_for(req.timeout));
            let r = match race(exchange, deadline).await {
                Either::Left(r) => r,
                Either::Right(_) => Err(CallError::Timeout),
            };
            if !done.is_abandoned() {
                done.complete(r);
            }
        });
        pending
    }
}

/// One call: request out, response in.
async fn exchange(w: &Rc<Worker>, req: &CallRequest) -> Result<CallResponse, CallError> {
    let held = w.pipeline();
    let p: &Pipeline = &held;
    let Some(up) = p.upstreams.iter().position(|u| u.name == req.upstream) else {
        return Err(CallError::UnknownUpstream);
    };
    let def = &p.upstreams[up];
    let set = w.upstreams_for(p);
    let picked = {
        let st = &mut *set.list[up].borrow_mut();
        st.balancer
            .pick(&bext_balance::PickContext::default(), &st.health, None)
    };
    let Some(idx) = picked else {
        return Err(CallError::Unavailable);
    };
    let server = &def.servers[idx];
    if server.tls.is_none() && def.config.servers[idx].tls.is_some() {
        return Err(CallError::Unavailable);
    }
    let key = server.pool_key();
    let mut out = w.take_xfer();
    request_head(&mut out, req, server.addr);
    out.extend_from_slice(&req.body);
    let limit = Limit::new(&w.stop, req.timeout);
    let mut s = match crate::handler::proxy::checkout_clean(w, key, def.idle_timeout) {
        Some(s) => s,
        None => {
            let connect = Limit::new(&w.stop, def.connect_timeout.min(req.timeout));
            crate::upstream_conn::connect(server.addr, server.tls.as_ref(), connect)
                .await
                .map_err(|_| CallError::Unavailable)?
        }
    };
    let sent = write_all(&mut s, &mut out, limit).await;
    w.give_xfer(out);
    sent.map_err(|_| CallError::Unavailable)?;
    let mut ubuf = w.take_xfer();
    let mut rh = ResponseHead::default();
    let rctx = ResponseContext {
        request_was_head: req.method == b"HEAD",
        request_was_connect: false,
    };
    let r = read_response(&mut s, &mut ubuf, &mut rh, rctx, limit).await;
    let r = match r {
        Ok(resp) => {
            let framing = rh.framing.unwrap_or(Framing::None);
            if rh.keep_alive
                && framing != Framing::CloseDelimited
                && ubuf.is_empty()
                && !s.holds_unread()
            {
                w.checkin(key, s, def.keepalive);
            }
            Ok(resp)
        }
        Err(e) => Err(e),
    };
    w.give_xfer(ubuf);
    r
}

fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The request head: the call's method, target and fields; `Host` is its authority (the
/// server's address when it has none); `Content-Length` is bext's.
fn request_head(out: &mut Vec<u8>, req: &CallRequest, server: std::net::SocketAddr) {
    out.extend_from_slice(&req.method);
    out.push(b' ');
    out.extend_from_slice(&req.path);
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if req.authority.is_empty() {
        field(out, b"Host", server.to_string().as_bytes());
    } else {
        field(out, b"Host", &req.authority);
    }
    for (n, v) in &req.fields {
        if bext_http1::name_eq(n, b"host")
            || bext_http1::name_eq(n, b"content-length")
            || bext_http1::name_eq(n, b"transfer-encoding")
            || bext_http1::is_hop_by_hop(n)
        {
            continue;
        }
        field(out, n, v);
    }
    if !req.body.is_empty() || matches!(req.method.as_slice(), b"POST" | b"PUT" | b"PATCH") {
        crate::conn::reply::content_length_field(out, req.body.len() as u64);
    }
    out.extend_from_slice(b"\r\n");
}

/// Read the final response head and the whole body; `ubuf` keeps what follows the body.
async fn read_response(
    s: &mut crate::upstream_conn::UpstreamStream,
    ubuf: &mut Vec<u8>,
    rh: &mut ResponseHead,
    rctx: ResponseContext,
    limit: Limit<'_>,
) -> Result<CallResponse, CallError> {
    loop {
        if !ubuf.is_empty() {
            match bext_http1::parse_response(ubuf, &HEAD_LIMITS, rctx, rh) {
                Ok(Parse::Complete) if (100..200).contains(&rh.status) => {
                    ubuf.drain(..rh.head_len);
                    continue;
                }
                Ok(Parse::Complete) => break,
                Ok(Parse::Partial) if ubuf.len() > HEAD_LIMITS.max_head => {
                    return Err(CallError::Invalid)
                }
                Ok(Parse::Partial) => {}
                Err(_) => return Err(CallError::Invalid),
            }
        }
        read_more(s, ubuf, 8 * 1024, limit)
            .await
            .map_err(|_| CallError::Unavailable)?;
    }
    let mut resp = CallResponse {
        status: rh.status,
        fields: rh
            .headers
            .iter()
            .map(|h| (h.name.get(ubuf).to_vec(), h.value.get(ubuf).to_vec()))
            .collect(),
        body: Vec::new(),
    };
    let mut reader = BodyReader::new(rh.framing.unwrap_or(Framing::None), MAX_BODY);
    let mut at = rh.head_len;
    loop {
        match reader
            .pull(s, ubuf, &mut at, &mut resp.body, false, limit)
            .await
        {
            Ok(true) => {}
            Ok(false) => break,
            Err(crate::body::BodyErr::TooLarge | crate::body::BodyErr::Framing) => {
                return Err(CallError::Invalid)
            }
            Err(_) => return Err(CallError::Unavailable),
        }
    }
    ubuf.drain(..at.min(ubuf.len()));
    Ok(resp)
}

thread_local! {
    /// The worker clock's milliseconds at the last tick the stages saw.
    static LAST_TICK: Cell<u64> = const { Cell::new(0) };
}

/// The stage families' work on this worker's tick (a plugin's `proxy_on_tick`).
pub(crate) fn tick(w: &Worker) {
    let now = w.now_ms();
    let last = LAST_TICK.with(|l| l.replace(now));
    bext_stage::hooks::tick(now, last);
}
