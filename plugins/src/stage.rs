//! A `plugin` directive as a stage of its route: the engine's phases mapped onto one
//! request's stream context ([`Stream`]).
//!
//! ```text
//! request filters        Stream::open, proxy_on_request_headers; callouts sent through the
//!                        core's caller (bext_stage::callout) while the request waits in
//!                        poll_request; a local reply or a failure ends the request here
//!   (rewrite_request)    the plugin's header map, when it changed, becomes the request head
//! request body filters   proxy_on_request_body (only for modules that export it)
//! response head filters  proxy_on_response_headers; the changes applied as head edits
//! response body filters  proxy_on_response_body (only for modules that export it)
//! log                    proxy_on_log, proxy_on_done, proxy_on_delete
//! ```
//!
//! What the plugin sees of the request is what the route sees: the path in normal form (the
//! one the request was routed on) and the query, the fields as the client sent them (names
//! in lower case, as proxy-wasm hosts give them).

use crate::load::Plugin;
use crate::metrics::counters;
use crate::stream::{Callout, CalloutResponse, Fields, LocalReply, Stream, StreamData, Verdict};
use bext_stage::callout::{self, CallError, CallRequest, Pending};
use bext_stage::{
    BodyChunk, BodyError, BodyUse, Flow, LogEntry, Phases, Reply, RequestRewrite, RequestView,
    ResponseHead, Stage,
};
use std::cell::RefCell;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// The reply of a plugin that failed (a trap, its budget, an instance that cannot start)
/// under `on_error fail`.
pub const FAILED: Reply = Reply {
    status: 500,
    slug: "plugin-failed",
    title: "Plugin Failed",
    retry_after: None,
};

/// The slug of a plugin's own reply (`proxy_send_local_response`), for the log.
pub const LOCAL_REPLY: &str = "plugin-reply";

/// One `plugin` directive of one route.
pub struct PluginStage {
    plugin: Arc<Plugin>,
    route: Arc<str>,
    phases: Phases,
}

impl PluginStage {
    /// The stage of `plugin` on the route written as `route`. The body phases are taken
    /// only when the module has the callbacks: a plugin without `proxy_on_request_body` does
    /// not make its route read request bodies whole, one without `proxy_on_response_body`
    /// leaves response framing alone.
    pub fn new(plugin: Arc<Plugin>, route: &str) -> PluginStage {
        // The log callbacks read the stream's own data, never the engine's log entry.
        let mut phases = Phases::REQUEST | Phases::RESPONSE_HEAD | Phases::DONE;
        if plugin.exports("proxy_on_request_body") {
            phases = phases | Phases::REQUEST_BODY;
        }
        if plugin.exports("proxy_on_response_body") {
            phases = phases | Phases::RESPONSE_BODY;
        }
        register_hooks();
        PluginStage {
            plugin,
            route: Arc::from(route),
            phases,
        }
    }

    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.plugin
    }
}

/// The worker's tick drives root contexts (`proxy_on_tick`, queues); the host counters go to
/// `/status` and `/metrics`. Registered once for the process.
fn register_hooks() {
    bext_stage::hooks::on_tick("plugins", crate::pool::tick);
    bext_stage::hooks::add_counters("plugins", crate::metrics::export);
}

/// Where a request stands with its plugin.
#[derive(Default)]
pub struct State {
    stream: Option<Stream>,
    /// Callouts sent and not answered yet: (token, answer).
    waiting: Vec<(u32, Pending)>,
    /// The request phase is over (continue or reply decided).
    decided: bool,
    /// The request body callback paused for its callouts: the body is held until they are
    /// answered (`poll_request_body`).
    body_waits: bool,
    reply: Option<LocalReply>,
    /// The plugin's reply replaced the response in its response phase: its own reply passes
    /// the response phases without it.
    replied_in_response: bool,
}

/// What answers to the callouts made the plugin decide.
enum Waited {
    /// No callout was out.
    Nothing,
    /// The plugin's verdict after an answer: resumed, replied, failed, or paused with nothing
    /// left to wait for.
    Decided(Verdict),
}

/// Lower-case a field name into a fresh vector.
fn lower(name: &[u8]) -> Vec<u8> {
    name.to_ascii_lowercase()
}

/// Stream data kept per core: a warm core fills properties and raw header fields into kept
/// buffers, without allocating.
const SPARE_DATA: usize = 64;

thread_local! {
    // Boxed as the streams hold them: a request takes one and gives it back as a pointer.
    #[allow(clippy::vec_box)]
    static SPARE: RefCell<Vec<Box<StreamData>>> = const { RefCell::new(Vec::new()) };
}

fn recycle(mut d: Box<StreamData>) {
    d.recycle();
    SPARE.with(|sp| {
        let mut sp = sp.borrow_mut();
        if sp.len() < SPARE_DATA {
            sp.push(d);
        }
    });
}

/// The stream data of a request reaching the plugin: properties and the request's raw
/// fields (pseudo-headers first), in kept buffers; and whether the request has no body
/// (neither `Content-Length` above 0 nor `Transfer-Encoding`). One pass over the fields.
fn request_data(req: &RequestView<'_>, route: &Arc<str>) -> (Box<StreamData>, bool) {
    let mut d = SPARE.with(|sp| sp.borrow_mut().pop()).unwrap_or_default();
    let mut host = None;
    let mut bodiless = true;
    let p = &mut d.props;
    for (i, (n, v)) in req.headers.iter().enumerate() {
        match n.len() {
            4 if n.eq_ignore_ascii_case(b"host") => host = host.or(Some(i)),
            12 if n.eq_ignore_ascii_case(b"x-request-id") => p.request_id.extend_from_slice(v),
            14 if n.eq_ignore_ascii_case(b"content-length") => {
                bodiless &= v.iter().all(|&b| b == b'0')
            }
            17 if n.eq_ignore_ascii_case(b"transfer-encoding") => bodiless = false,
            _ => {}
        }
    }
    p.method.extend_from_slice(req.method_bytes);
    p.path.extend_from_slice(req.path);
    if let Some(q) = req.query {
        p.path.push(b'?');
        p.path.extend_from_slice(q);
    }
    p.host.extend_from_slice(req.host);
    p.scheme = if req.tls { "https" } else { "http" };
    p.protocol = "HTTP/1.1";
    p.client = Some(req.client);
    if !Arc::ptr_eq(&p.route, route) {
        p.route = route.clone();
    }
    let (buf, list) = req.headers.parts();
    d.raw_request(buf, list, host);
    (d, bodiless)
}

fn value<'f>(fields: &'f Fields, name: &[u8]) -> Option<&'f [u8]> {
    fields
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}

/// Framing fields are bext's own on both sides: the body is read and sent as it is framed.
fn framing(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"transfer-encoding")
}

impl State {
    /// What a verdict of the request phase means for the request.
    fn settle(&mut self, v: Verdict, name: &str) -> Option<Flow> {
        match v {
            Verdict::Continue => None,
            Verdict::Pause => {
                self.send_callouts();
                if self.waiting.is_empty() {
                    // Paused with nothing to wait for: the request would hang.
                    crate::core::log(
                        name,
                        4,
                        b"the request was paused with no callout pending: it fails",
                    );
                    counters().failed_requests.fetch_add(1, Ordering::Relaxed);
                    return Some(Flow::Reply(FAILED));
                }
                None
            }
            Verdict::Local(l) => Some(Flow::Reply(self.answer(l))),
            Verdict::Failed(_) | Verdict::Closed => Some(Flow::Reply(FAILED)),
        }
    }

    /// Answers to the callouts, in the order they come, each to the plugin's callback, until
    /// one makes it decide (callouts still out are then not waited for).
    fn poll_callouts(&mut self, name: &str, cx: &mut Context<'_>) -> Poll<Waited> {
        if self.waiting.is_empty() {
            return Poll::Ready(Waited::Nothing);
        }
        loop {
            let Some((token, r)) = next_answer(&mut self.waiting, cx) else {
                return Poll::Pending;
            };
            let Some(s) = self.stream.as_mut() else {
                self.waiting.clear();
                return Poll::Ready(Waited::Decided(Verdict::Continue));
            };
            match s.callout_done(token, callout_response(r, name)) {
                Verdict::Pause => {
                    self.send_callouts();
                    if self.waiting.is_empty() {
                        return Poll::Ready(Waited::Decided(Verdict::Pause));
                    }
                }
                other => {
                    self.waiting.clear();
                    return Poll::Ready(Waited::Decided(other));
                }
            }
        }
    }

    /// What the plugin's verdict on the request body means for the piece: held (paused
    /// before the end: the next piece carries it), let go on as the plugin left the body, or
    /// answered instead.
    fn body_flow(&mut self, v: Verdict, chunk: &mut BodyChunk<'_>) -> Flow {
        match v {
            Verdict::Pause if !chunk.is_last() => {
                chunk.replace(b"");
                Flow::Continue
            }
            Verdict::Continue | Verdict::Pause => {
                if let Some(s) = self.stream.as_mut() {
                    let body = std::mem::take(&mut s.data.request_body);
                    chunk.replace(&body);
                    s.data.request_body = body;
                    s.data.request_body.clear();
                }
                Flow::Continue
            }
            Verdict::Local(l) => Flow::Reply(self.answer(l)),
            Verdict::Failed(_) | Verdict::Closed => Flow::Reply(FAILED),
        }
    }

    /// The plugin answers with `l` itself: kept for `local_reply`, and the reply that says so.
    fn answer(&mut self, l: LocalReply) -> Reply {
        let r = Reply {
            status: l.status,
            slug: LOCAL_REPLY,
            title: "Plugin Reply",
            retry_after: None,
        };
        self.reply = Some(l);
        r
    }

    fn send_callouts(&mut self) {
        let Some(s) = self.stream.as_mut() else {
            return;
        };
        for c in s.take_callouts() {
            counters().callouts.fetch_add(1, Ordering::Relaxed);
            let token = c.token;
            self.waiting.push((token, callout::call(call_request(c))));
        }
    }
}

/// The first of `waiting`'s callouts that has its answer, taken out with its token.
pub(crate) fn next_answer(
    waiting: &mut Vec<(u32, Pending)>,
    cx: &mut Context<'_>,
) -> Option<(u32, Result<callout::CallResponse, CallError>)> {
    let (i, r) = waiting
        .iter()
        .enumerate()
        .find_map(|(i, (_, p))| match p.poll(cx) {
            Poll::Ready(r) => Some((i, r)),
            Poll::Pending => None,
        })?;
    Some((waiting.swap_remove(i).0, r))
}

pub(crate) fn call_request(c: Callout) -> CallRequest {
    let mut req = CallRequest {
        upstream: c.upstream,
        timeout: Duration::from_millis(u64::from(c.timeout_ms.max(1))),
        body: c.body,
        ..CallRequest::default()
    };
    for (n, v) in c.headers {
        match n.as_slice() {
            b":method" => req.method = v,
            b":path" => req.path = v,
            b":authority" => req.authority = v,
            n if n.starts_with(b":") || framing(n) => {}
            _ => req.fields.push((n, v)),
        }
    }
    if req.method.is_empty() {
        req.method = b"GET".to_vec();
    }
    if req.path.is_empty() {
        req.path = b"/".to_vec();
    }
    req
}

pub(crate) fn callout_response(
    r: Result<callout::CallResponse, CallError>,
    name: &str,
) -> Option<CalloutResponse> {
    match r {
        Ok(resp) => {
            let mut headers = Vec::with_capacity(resp.fields.len() + 1);
            headers.push((b":status".to_vec(), resp.status.to_string().into_bytes()));
            headers.extend(resp.fields.into_iter().map(|(n, v)| (lower(&n), v)));
            Some(CalloutResponse {
                headers,
                body: resp.body,
                trailers: Vec::new(),
            })
        }
        Err(e) => {
            counters().callout_failures.fetch_add(1, Ordering::Relaxed);
            if e == CallError::UnknownUpstream {
                crate::core::log(
                    name,
                    4,
                    b"callout to an upstream the configuration does not define: it fails",
                );
            }
            None
        }
    }
}

impl Stage for PluginStage {
    type State = State;

    fn phases(&self) -> Phases {
        self.phases
    }

    fn init(&self) -> State {
        State::default()
    }

    fn poll_request(
        &self,
        st: &mut State,
        req: &RequestView<'_>,
        cx: &mut Context<'_>,
    ) -> Poll<Flow> {
        if st.decided {
            return Poll::Ready(Flow::Continue);
        }
        if st.stream.is_none() {
            let (data, bodiless) = request_data(req, &self.route);
            let mut s = match Stream::open_with(&self.plugin, data) {
                Ok(s) => s,
                Err(_) => {
                    st.decided = true;
                    return Poll::Ready(Flow::Reply(FAILED));
                }
            };
            let v = s.request_headers(bodiless);
            st.stream = Some(s);
            if let Some(flow) = st.settle(v, self.plugin.name()) {
                st.decided = true;
                return Poll::Ready(flow);
            }
        }
        match st.poll_callouts(self.plugin.name(), cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Waited::Nothing | Waited::Decided(Verdict::Continue)) => {
                st.decided = true;
                Poll::Ready(Flow::Continue)
            }
            Poll::Ready(Waited::Decided(v)) => {
                st.decided = true;
                Poll::Ready(st.settle(v, self.plugin.name()).unwrap_or(Flow::Continue))
            }
        }
    }

    fn rewrite_request(
        &self,
        st: &mut State,
        req: &RequestView<'_>,
        out: &mut RequestRewrite,
    ) -> bool {
        let Some(s) = st.stream.as_ref() else {
            return false;
        };
        if !s.data.request_headers_changed || s.is_off() {
            return false;
        }
        let now = &s.data.request_headers;
        if let Some(m) = value(now, b":method").filter(|m| *m != req.method_bytes) {
            out.method = Some(m.to_vec());
        }
        if let Some(p) = value(now, b":path").filter(|p| *p != s.data.props.path.as_slice()) {
            out.target = Some(p.to_vec());
        }
        if let Some(a) = value(now, b":authority") {
            out.field(b"host", a);
        }
        for (n, v) in now {
            if n.starts_with(b":") || n.eq_ignore_ascii_case(b"host") || framing(n) {
                continue;
            }
            out.field(n, v);
        }
        true
    }

    fn local_reply(&self, st: &mut State, fields: &mut Vec<u8>, body: &mut Vec<u8>) -> bool {
        let Some(l) = st.reply.take() else {
            return false;
        };
        for (n, v) in &l.headers {
            if n.starts_with(b":") || framing(n) {
                continue;
            }
            fields.extend_from_slice(n);
            fields.extend_from_slice(b": ");
            fields.extend_from_slice(v);
            fields.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(&l.body);
        true
    }

    fn on_request_body(&self, st: &mut State, chunk: &mut BodyChunk<'_>) -> Flow {
        let Some(s) = st.stream.as_mut() else {
            return Flow::Continue;
        };
        if s.is_off() {
            return Flow::Continue;
        }
        let last = chunk.is_last();
        let verdict = s.request_body(chunk.data(), last);
        if verdict == Verdict::Pause {
            st.send_callouts();
            if !st.waiting.is_empty() {
                // Held until the callouts are answered (`poll_request_body`).
                st.body_waits = true;
                chunk.replace(b"");
                return Flow::Continue;
            }
        }
        st.body_flow(verdict, chunk)
    }

    fn poll_request_body(
        &self,
        st: &mut State,
        chunk: &mut BodyChunk<'_>,
        cx: &mut Context<'_>,
    ) -> Poll<Flow> {
        if !st.body_waits {
            return Poll::Ready(Flow::Continue);
        }
        let waited = match st.poll_callouts(self.plugin.name(), cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(w) => w,
        };
        st.body_waits = false;
        let verdict = match waited {
            Waited::Nothing => Verdict::Continue,
            Waited::Decided(v) => v,
        };
        Poll::Ready(st.body_flow(verdict, chunk))
    }

    fn on_response_head(&self, st: &mut State, head: &mut ResponseHead<'_>) -> BodyUse {
        if st.replied_in_response {
            return BodyUse::Pass;
        }
        let Some(s) = st.stream.as_mut() else {
            return BodyUse::Pass;
        };
        if s.is_off() {
            return BodyUse::Pass;
        }
        let status = head.status();
        let (fields, list) = head.fields().parts();
        s.data.raw_response(fields, list, head.body_len());
        let end = head.body_len() == Some(0);
        match s.response_headers(status, end) {
            Verdict::Continue | Verdict::Pause => {}
            Verdict::Local(l) if head.replaceable() => {
                // The plugin's reply replaces the origin's response (as Envoy sends a local
                // reply from an encoder filter directly): the reply goes out through the other
                // stages' response phases, not through this plugin's again.
                st.replied_in_response = true;
                return BodyUse::Reply(st.answer(l));
            }
            Verdict::Local(_) => {
                // bext's own response (a file, `respond`, the cache) is not replaced.
                crate::core::log(
                    self.plugin.name(),
                    4,
                    b"a local reply from the response phase of bext's own response is not sent: \
                      the response goes on",
                );
            }
            // Counted and the instance replaced; the response goes on without the plugin.
            Verdict::Failed(_) | Verdict::Closed => return BodyUse::Pass,
        }
        let filters_body = self.phases.contains(Phases::RESPONSE_BODY);
        if s.data.response_headers_changed {
            let d = &s.data;
            if d.response_replaced {
                apply_response_edits(&d.response_headers, head);
            } else {
                apply_named_edits(&d.response_headers, &d.response_touched, head);
            }
            // `:status` changed: the response goes out with the plugin's status, where that
            // keeps the framing (see `ResponseHead::set_status`).
            let wanted = value(&d.response_headers, b":status").map(|v| {
                std::str::from_utf8(v)
                    .ok()
                    .filter(|t| t.len() == 3)
                    .and_then(|t| t.parse::<u16>().ok())
            });
            match wanted {
                Some(Some(n)) if n == status => {}
                Some(Some(n)) if head.set_status(n) => {}
                // Removed, unreadable, or a status whose framing differs (1xx, 204, 304):
                // the handler's stays.
                _ => crate::core::log(
                    self.plugin.name(),
                    4,
                    b"the response's :status was set to a value bext cannot answer with here: \
                      the status stays",
                ),
            }
        }
        // As in Envoy, a plugin that will change the body's length drops `Content-Length` in
        // this callback: the body then leaves re-framed (chunked over HTTP/1.1). One that
        // keeps it keeps the framing; should it change the length after all, the response is
        // cut short rather than sent with a wrong length.
        let dropped_length = s.data.response_headers_changed
            && value(&s.data.response_headers, b"content-length").is_none();
        match (filters_body, head.body_len().is_some() && !dropped_length) {
            (false, _) => BodyUse::Pass,
            (true, true) => BodyUse::Inspect,
            (true, false) => BodyUse::Filter,
        }
    }

    fn on_body(&self, st: &mut State, data: &[u8], out: &mut Vec<u8>) -> Result<(), BodyError> {
        body_piece(st, self.plugin.name(), data, false, out)
    }

    fn on_body_end(&self, st: &mut State, out: &mut Vec<u8>) -> Result<(), BodyError> {
        body_piece(st, self.plugin.name(), b"", true, out)
    }

    fn on_log(&self, st: &mut State, _entry: &LogEntry<'_>) {
        st.waiting.clear();
        if let Some(s) = st.stream.take() {
            recycle(s.finish_into());
        }
    }
}

/// Response body bytes go to the plugin once this many have gathered, or when the body ends:
/// a small body costs one callback (with its end), as Envoy hands over a body that arrived
/// whole; a large one streams window by window.
const BODY_WINDOW: usize = 64 * 1024;

fn body_piece(
    st: &mut State,
    name: &str,
    data: &[u8],
    last: bool,
    out: &mut Vec<u8>,
) -> Result<(), BodyError> {
    let Some(s) = st.stream.as_mut() else {
        out.extend_from_slice(data);
        return Ok(());
    };
    s.data.response_body.extend_from_slice(data);
    if s.is_off() {
        out.extend_from_slice(&s.data.response_body);
        s.data.response_body.clear();
        return Ok(());
    }
    if !last && s.data.response_body.len() < BODY_WINDOW {
        return Ok(());
    }
    let verdict = s.response_body(b"", last);
    if let Verdict::Local(_) = verdict {
        // The head has left: a reply can no longer replace the response.
        crate::core::log(
            name,
            4,
            b"a local reply from a response body callback is not sent: the response goes on",
        );
    }
    match verdict {
        Verdict::Pause if !last => Ok(()),
        Verdict::Continue | Verdict::Pause | Verdict::Local(_) => {
            if out.is_empty() {
                // The body as the plugin left it becomes the output without a copy; the
                // stream keeps the (empty) output buffer for its next piece.
                std::mem::swap(out, &mut s.data.response_body);
            } else {
                out.extend_from_slice(&s.data.response_body);
            }
            s.data.response_body.clear();
            Ok(())
        }
        Verdict::Failed(_) | Verdict::Closed => Err(BodyError),
    }
}

/// [`apply_response_edits`] for the fields named in `touched` only (lower case, each followed
/// by `\n`): what the plugin changed one field at a time.
fn apply_named_edits(after: &Fields, touched: &[u8], head: &mut ResponseHead<'_>) {
    let mut at = 0;
    for n in touched.split(|&b| b == b'\n') {
        let earlier = &touched[..at];
        at += n.len() + 1;
        if n.is_empty() || earlier.split(|&b| b == b'\n').any(|m| m == n) {
            continue;
        }
        edit_field(after, n, head);
    }
}

/// Make the head's lines of field `n` (lower case) those of `after`, when they differ. The
/// status and the framing fields are the engine's.
fn edit_field(after: &Fields, n: &[u8], head: &mut ResponseHead<'_>) {
    if n.starts_with(b":") || framing(n) {
        return;
    }
    let new = after
        .iter()
        .filter(|(m, _)| m.eq_ignore_ascii_case(n))
        .map(|(_, v)| v.as_slice());
    let before = head.fields();
    let old = before
        .iter()
        .filter(|(m, _)| m.eq_ignore_ascii_case(n))
        .map(|(_, v)| v);
    if new.clone().eq(old) {
        return;
    }
    head.remove(n);
    for v in new {
        head.append(n, v);
    }
}

/// The plugin's response fields against the handler's (which the head still holds), as head
/// edits: a name whose lines changed is replaced by the plugin's lines, a name it dropped is
/// removed. The status and the framing fields are the engine's.
fn apply_response_edits(after: &Fields, head: &mut ResponseHead<'_>) {
    let before = head.fields();
    for (n, _) in before.iter() {
        if !after.iter().any(|(m, _)| m.eq_ignore_ascii_case(n)) {
            head.remove(n);
        }
    }
    for (i, (n, _)) in after.iter().enumerate() {
        if !after[..i].iter().any(|(m, _)| m.eq_ignore_ascii_case(n)) {
            edit_field(after, n, head);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bext_http1::{Header, Span};
    use bext_stage::{HeadEdits, Headers};

    fn pair(n: &str, v: &str) -> (Vec<u8>, Vec<u8>) {
        (n.as_bytes().to_vec(), v.as_bytes().to_vec())
    }

    /// Fields changed one at a time become edits of those fields only: a removed name goes,
    /// an added one comes, one set to what it was stays untouched, a name changed twice is
    /// edited once, and the framing fields stay the engine's.
    #[test]
    fn named_edits_touch_only_what_the_plugin_changed() {
        let buf = b"server: o\r\nx-a: 1\r\nx-a: 2\r\nx-keep: k\r\n";
        let mut list = Vec::new();
        let mut at = 0u32;
        for line in buf.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let colon = line.iter().position(|&b| b == b':').unwrap() as u32;
            let end = at + line.len() as u32 - 1;
            list.push(Header {
                name: Span {
                    start: at,
                    end: at + colon,
                },
                value: Span {
                    start: at + colon + 2,
                    end,
                },
            });
            at += line.len() as u32 + 1;
        }
        let mut edits = HeadEdits::default();
        let mut head = ResponseHead::new(200, Headers::new(buf, &list), &mut edits);
        let after = vec![
            pair(":status", "200"),
            pair("server", "o"),
            pair("X-Keep", "k"),
            pair("x-new", "v"),
        ];
        apply_named_edits(
            &after,
            b"x-a\nx-new\nx-keep\nx-a\ncontent-length\n",
            &mut head,
        );
        assert!(edits.removes(b"x-a"));
        assert!(!edits.removes(b"x-keep"));
        assert!(!edits.removes(b"server"));
        assert!(!edits.removes(b"content-length"));
        assert_eq!(edits.added_lines(), b"x-new: v\r\n");
    }
}
