//! One request's passage through a plugin: its stream context on this core's instance, the
//! data its callbacks see (headers, bodies, properties) and what they decided.
//!
//! ```text
//! Stream::open ── proxy_on_context_create
//!   request_headers ── proxy_on_request_headers ─┬─ Continue
//!   request_body*   ── proxy_on_request_body     ├─ Pause (callouts pending: callout_done)
//!   response_headers ─ proxy_on_response_headers ├─ Local(reply)  (send_local_response)
//!   response_body*  ── proxy_on_response_body    └─ Failed (a trap, the budget; on_error fail)
//!   finish ── proxy_on_log, proxy_on_done, proxy_on_delete
//! ```
//!
//! The instance is shared by every stream of the core (one root context, many stream
//! contexts, as in Envoy); a stream's data lives here and is handed to the instance only for
//! the duration of its own callbacks. When a call fails, the instance is dropped (every
//! stream on it is failed: their contexts are gone) and the core's next request gets a fresh
//! one.

use crate::abi::ACTION_CONTINUE;
use crate::load::Plugin;
use crate::metrics::counters;
use crate::pool::{self, Slot};
use crate::settings::OnError;
use crate::vm::{Fault, HeadersFn, Vm};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Header fields: (name, value) in order, names as sent.
pub type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// A response a plugin answers with (`proxy_send_local_response`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u16,
    pub headers: Fields,
    pub body: Vec<u8>,
    /// The details the plugin gave (for the log).
    pub details: Vec<u8>,
}

/// An HTTP call a plugin asked for (`proxy_http_call`), to a named upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callout {
    pub token: u32,
    /// The upstream's name, as the plugin wrote it.
    pub upstream: String,
    /// The request head, with `:method`, `:path` and `:authority`.
    pub headers: Fields,
    pub body: Vec<u8>,
    pub trailers: Fields,
    /// After that long without a response the call fails (delivered as no response).
    pub timeout_ms: u32,
}

/// The answer to a [`Callout`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CalloutResponse {
    /// With `:status`.
    pub headers: Fields,
    pub body: Vec<u8>,
    pub trailers: Fields,
}

/// The request attributes a plugin reads with `proxy_get_property` (docs/plugins.md lists
/// the paths).
#[derive(Debug, Clone, Default)]
pub struct Props {
    pub method: Vec<u8>,
    /// The path (in normal form, as routed) and `?query` when there is one: the path and the
    /// query are read from it ([`Props::url_path`], [`Props::query`]).
    pub path: Vec<u8>,
    pub host: Vec<u8>,
    pub scheme: &'static str,
    pub protocol: &'static str,
    pub request_id: Vec<u8>,
    pub client: Option<SocketAddr>,
    /// The route, as written in the configuration.
    pub route: Arc<str>,
    pub response_code: Option<u16>,
    /// Set by the plugin (`proxy_set_property`), read back by it.
    pub(crate) custom: Fields,
}

impl Props {
    /// The path without the query.
    pub fn url_path(&self) -> &[u8] {
        self.path_and_query().0
    }

    /// The query, without its `?` (empty when there is none).
    pub fn query(&self) -> &[u8] {
        self.path_and_query().1
    }

    /// `path` split at its first `?` (the normal-form path has none of its own).
    fn path_and_query(&self) -> (&[u8], &[u8]) {
        match self.path.iter().position(|&b| b == b'?') {
            Some(i) => (&self.path[..i], &self.path[i + 1..]),
            None => (&self.path, &[]),
        }
    }
}

/// Header fields as bext read them, in one buffer, before they become a map: the map (a pair
/// of buffers per field, names in lower case) is built on the first host call that reads or
/// changes it, so a plugin that never looks at a map costs one copy of the head's bytes and of
/// the parser's spans. The pseudo-headers are not here: the map's builder puts them first
/// ([`StreamData::request_map`], [`StreamData::response_map`]).
#[derive(Debug, Default)]
pub struct RawFields {
    bytes: Vec<u8>,
    /// The parser's spans of a head copied whole, each `shift` past its place in `bytes`.
    parsed: Vec<bext_http1::Header>,
    shift: u32,
}

impl RawFields {
    /// The fields of a parsed head, `list` spans of `buf`: the bytes from the lowest span to
    /// the highest copied as one block (line ends and all), the spans as they are. Once per
    /// head, on empty fields.
    pub fn push_parsed(&mut self, buf: &[u8], list: &[bext_http1::Header]) {
        let (mut lo, mut hi) = (u32::MAX, 0);
        for h in list {
            lo = lo.min(h.name.start);
            hi = hi.max(h.value.end);
        }
        if list.is_empty() || lo > hi || hi as usize > buf.len() {
            return;
        }
        let base = self.bytes.len() as u32;
        self.bytes.extend_from_slice(&buf[lo as usize..hi as usize]);
        // Each span moves from `x` to `x - lo + base`: `shift` is `lo - base` (or, written
        // without wrapping, the spans are read as `x + base - lo`).
        self.shift = lo.wrapping_sub(base);
        self.parsed.extend_from_slice(list);
    }

    /// Fields held (not counting pseudo-headers).
    pub fn len(&self) -> usize {
        self.parsed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.parsed.is_empty()
    }

    pub fn clear(&mut self) {
        self.bytes.clear();
        self.parsed.clear();
    }

    /// The bytes of span `[a, b)` of a parsed field (empty should it fall outside the block).
    fn parsed_bytes(&self, s: bext_http1::Span) -> &[u8] {
        let at = |x: u32| x.wrapping_sub(self.shift) as usize;
        self.bytes.get(at(s.start)..at(s.end)).unwrap_or_default()
    }

    /// The value of parsed field `i`.
    fn parsed_value(&self, i: usize) -> &[u8] {
        self.parsed
            .get(i)
            .map_or(&[], |h| self.parsed_bytes(h.value))
    }

    /// Append the fields to `map`, names in lower case, in buffers taken from `spare`, and
    /// empty `self`.
    fn build(&mut self, map: &mut Fields, spare: &mut Fields) {
        map.reserve(self.len());
        for h in &self.parsed {
            let (name, value) = (self.parsed_bytes(h.name), self.parsed_bytes(h.value));
            map.push(pair(spare, name, value));
        }
        self.clear();
    }
}

/// A map entry for `name` (made lower case) and `value`, in buffers taken from `spare`.
fn pair(spare: &mut Fields, name: &[u8], value: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (mut n, mut v) = spare.pop().unwrap_or_default();
    n.extend_from_slice(name);
    n.make_ascii_lowercase();
    v.extend_from_slice(value);
    (n, v)
}

/// Pair buffers a recycled [`StreamData`] keeps, and the largest buffer kept.
const SPARE_PAIRS: usize = 64;
const KEEP_BYTES: usize = 4096;

/// What a stream's callbacks see and change.
#[derive(Debug, Default)]
pub struct StreamData {
    pub request_headers: Fields,
    pub request_headers_changed: bool,
    pub request_trailers: Fields,
    pub response_headers: Fields,
    pub response_headers_changed: bool,
    /// The response fields the plugin changed, by name (lower case, each followed by `\n`),
    /// unless it replaced the whole map (`response_replaced`): the edits to apply to the head.
    pub response_touched: Vec<u8>,
    pub response_replaced: bool,
    pub response_trailers: Fields,
    /// The request body buffered so far (what `proxy_get_buffer_bytes` reads).
    pub request_body: Vec<u8>,
    pub request_body_changed: bool,
    pub response_body: Vec<u8>,
    pub response_body_changed: bool,
    pub props: Props,
    /// The request's fields while `request_headers` is not built yet
    /// ([`StreamData::raw_request`]).
    pub request_raw: RawFields,
    request_pending: bool,
    /// Which of the request's raw fields is `Host` (`:authority`; else `props.host`).
    authority: Option<usize>,
    /// The response's fields while `response_headers` is not built yet
    /// ([`StreamData::raw_response`]).
    pub response_raw: RawFields,
    response_pending: bool,
    /// The response body's length, when known (`content-length` in the response map).
    response_length: Option<u64>,
    /// Pair buffers of earlier requests, for building maps without allocating.
    spare: Fields,
    pub(crate) local: Option<LocalReply>,
    pub(crate) resumed: bool,
    pub(crate) closed: bool,
}

impl StreamData {
    /// Ready for another request: everything emptied, the buffers kept (the fields' own
    /// buffers among the spare pairs, at most [`SPARE_PAIRS`] of them, none larger than
    /// [`KEEP_BYTES`]).
    pub(crate) fn recycle(&mut self) {
        let spare = &mut self.spare;
        let mut put = |f: &mut Fields| {
            for (mut n, mut v) in f.drain(..) {
                if spare.len() < SPARE_PAIRS
                    && n.capacity() <= KEEP_BYTES
                    && v.capacity() <= KEEP_BYTES
                {
                    n.clear();
                    v.clear();
                    spare.push((n, v));
                }
            }
        };
        put(&mut self.request_headers);
        put(&mut self.request_trailers);
        put(&mut self.response_headers);
        put(&mut self.response_trailers);
        put(&mut self.props.custom);
        for b in [&mut self.request_body, &mut self.response_body] {
            if b.capacity() > KEEP_BYTES * 16 {
                *b = Vec::new();
            }
            b.clear();
        }
        let p = &mut self.props;
        for v in [&mut p.method, &mut p.path, &mut p.host, &mut p.request_id] {
            v.clear();
        }
        p.client = None;
        p.response_code = None;
        self.request_headers_changed = false;
        self.response_headers_changed = false;
        self.response_touched.clear();
        self.response_replaced = false;
        self.request_body_changed = false;
        self.response_body_changed = false;
        for raw in [&mut self.request_raw, &mut self.response_raw] {
            if raw.bytes.capacity() > KEEP_BYTES * 4 {
                *raw = RawFields::default();
            }
            raw.clear();
        }
        self.request_pending = false;
        self.authority = None;
        self.response_pending = false;
        self.response_length = None;
        self.local = None;
        self.resumed = false;
        self.closed = false;
    }

    /// The request's fields, raw until a host call needs the map: the head's fields
    /// `list` of `buf`, the one at `host` (if any) the authority. The map then has
    /// `:method`, `:path` and `:scheme` from `props`, `:authority`, then the fields.
    pub fn raw_request(&mut self, buf: &[u8], list: &[bext_http1::Header], host: Option<usize>) {
        self.request_raw.clear();
        self.request_headers.clear();
        self.request_raw.push_parsed(buf, list);
        self.authority = host;
        self.request_pending = true;
    }

    /// The response's fields, raw until a host call needs the map: `:status` (from
    /// `props.response_code`), the fields `list` of `buf`, then `content-length` when
    /// `length` is known.
    pub fn raw_response(&mut self, buf: &[u8], list: &[bext_http1::Header], length: Option<u64>) {
        self.response_raw.clear();
        self.response_headers.clear();
        self.response_raw.push_parsed(buf, list);
        self.response_length = length;
        self.response_pending = true;
    }

    /// Fields the request's map has (or will have, once built).
    pub(crate) fn request_count(&self) -> usize {
        if self.request_pending {
            self.request_raw.len() + 4
        } else {
            self.request_headers.len()
        }
    }

    /// Fields the response's map has (or will have, once built).
    pub(crate) fn response_count(&self) -> usize {
        if self.response_pending {
            self.response_raw.len() + 1 + usize::from(self.response_length.is_some())
        } else {
            self.response_headers.len()
        }
    }

    /// The request's header map, built now if its fields are still raw.
    pub fn request_map(&mut self) -> &mut Fields {
        if self.request_pending {
            self.request_pending = false;
            let (map, spare, p) = (&mut self.request_headers, &mut self.spare, &self.props);
            let authority = match self.authority {
                Some(i) => self.request_raw.parsed_value(i),
                None => &p.host,
            };
            map.push(pair(spare, b":method", &p.method));
            map.push(pair(spare, b":path", &p.path));
            // The authority as sent, port included (what `:authority` carries in HTTP/2).
            map.push(pair(spare, b":authority", authority));
            map.push(pair(spare, b":scheme", p.scheme.as_bytes()));
            self.request_raw.build(map, spare);
        }
        &mut self.request_headers
    }

    /// Note a change of response field `name` (`None`: the whole map).
    pub(crate) fn touch_response(&mut self, name: Option<&[u8]>) {
        match name {
            Some(n) if !self.response_replaced => {
                let start = self.response_touched.len();
                self.response_touched.extend_from_slice(n);
                self.response_touched[start..].make_ascii_lowercase();
                self.response_touched.push(b'\n');
            }
            Some(_) => {}
            None => self.response_replaced = true,
        }
    }

    /// The response's header map, built now if its fields are still raw.
    pub fn response_map(&mut self) -> &mut Fields {
        if self.response_pending {
            self.response_pending = false;
            let (map, spare) = (&mut self.response_headers, &mut self.spare);
            let mut buf = [0; 20];
            let status = u64::from(self.props.response_code.unwrap_or(0));
            map.push(pair(
                spare,
                b":status",
                bext_http1::decimal(status, &mut buf),
            ));
            self.response_raw.build(map, spare);
            if let Some(n) = self.response_length {
                map.push(pair(
                    spare,
                    b"content-length",
                    bext_http1::decimal(n, &mut buf),
                ));
            }
        }
        &mut self.response_headers
    }
}

/// What a phase decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Go on (with the data as the plugin left it).
    Continue,
    /// The plugin waits: for its callouts ([`Stream::take_callouts`], then
    /// [`Stream::callout_done`]), or for more body (a body callback that paused before the
    /// end: the bytes stay buffered and the next call sees them all).
    Pause,
    /// Answer with this instead of going on.
    Local(LocalReply),
    /// The plugin failed and its directive says `on_error fail`: answer 500 `plugin-failed`.
    Failed(Fault),
    /// The stream ended early (`proxy_close_stream`): close the connection.
    Closed,
}

/// One request's stream context. Dropping it without [`Stream::finish`] still deletes the
/// context (`proxy_on_done`, `proxy_on_delete`).
pub struct Stream {
    cx: StreamContext,
    pending: Vec<Callout>,
    /// Boxed: each callback moves it into the instance's store and back, a pointer swap.
    pub data: Box<StreamData>,
}

/// A stream's context in its instance. Kept apart from the stream's data so a finished stream
/// hands its data back without a replacement box ([`Stream::finish_into`]); one dropped
/// unfinished (a request abandoned midway) still deletes its context, with empty data.
struct StreamContext {
    slot: Rc<Slot>,
    /// The instance generation the context lives in; another one means it is gone.
    generation: u64,
    ctx: u32,
    on_error: OnError,
    /// The plugin failed and the request goes on without it (`on_error skip`), or the
    /// stream is finished.
    off: bool,
}

impl StreamContext {
    /// `proxy_on_log` (when `log`), `proxy_on_done` and `proxy_on_delete`, with `data`.
    /// `unwaited` callouts the stream made earlier without waiting for them are not sent.
    fn close(&mut self, data: &mut Box<StreamData>, log: bool, unwaited: usize) {
        if self.off {
            return;
        }
        self.off = true;
        let ctx = self.ctx;
        let r = self.slot.call_in(self.generation, |vm| {
            let r = lend(vm, data, |vm| vm.finish_context(ctx, log));
            // A finished stream's calls would have no context to answer to.
            let made = std::mem::take(&mut vm.store.data_mut().callouts).len();
            unsent(vm, unwaited + made);
            r
        });
        if r.is_err() {
            // The request is answered already: only the instance goes.
            self.slot.replace(self.generation);
        }
    }
}

/// Callouts a stream made that are not sent: from its log callbacks, or made while it went
/// on without waiting for them. Counted as failed and logged.
fn unsent(vm: &Vm, n: usize) {
    if n == 0 {
        return;
    }
    counters()
        .callout_failures
        .fetch_add(n as u64, Ordering::Relaxed);
    crate::core::log(
        &vm.store.data().name,
        4,
        b"callouts the stream did not wait for (it went on, or it was ending) are not sent",
    );
}

/// Runs `f` with `data` moved into the instance's store (where the host functions read and
/// change it), and takes it back after, whatever `f` answers.
#[inline]
fn lend<R>(vm: &mut Vm, data: &mut Box<StreamData>, f: impl FnOnce(&mut Vm) -> R) -> R {
    std::mem::swap(&mut vm.store.data_mut().stream, data);
    let r = f(vm);
    std::mem::swap(&mut vm.store.data_mut().stream, data);
    r
}

impl Drop for StreamContext {
    fn drop(&mut self) {
        if !self.off {
            self.close(&mut Box::default(), false, 0);
        }
    }
}

impl Stream {
    /// A stream context for one request on this core's instance of `plugin` (started now if
    /// the core has none). `None` when the plugin is skipped for this request (it could not
    /// start and says `on_error skip`); `Err` when it could not start and says `fail`.
    pub fn open(plugin: &Arc<Plugin>, props: Props) -> Result<Stream, Fault> {
        Stream::open_with(
            plugin,
            Box::new(StreamData {
                props,
                ..Default::default()
            }),
        )
    }

    /// [`Stream::open`] with the data its callbacks will see, filled by the caller (buffers
    /// kept from an earlier request: see [`Stream::finish_into`]).
    pub fn open_with(plugin: &Arc<Plugin>, data: Box<StreamData>) -> Result<Stream, Fault> {
        let slot = pool::slot(plugin);
        let on_error = plugin.settings.on_error;
        let mut s = Stream {
            cx: StreamContext {
                generation: 0,
                ctx: 0,
                on_error,
                off: false,
                slot,
            },
            pending: Vec::new(),
            data,
        };
        let opened = s.cx.slot.with_vm(|vm| vm.create_context());
        match opened {
            Ok((generation, ctx)) => {
                s.cx.generation = generation;
                s.cx.ctx = ctx;
                Ok(s)
            }
            Err(f) => match s.fail(f) {
                Verdict::Failed(f) => Err(f),
                _ => Ok(s),
            },
        }
    }

    /// Whether the plugin is out of this request (skipped after a failure, or finished).
    pub fn is_off(&self) -> bool {
        self.cx.off
    }

    /// A failure: the instance is replaced; the request fails or goes on without the plugin.
    fn fail(&mut self, f: Fault) -> Verdict {
        self.cx.off = true;
        self.cx.slot.replace(self.cx.generation);
        match self.cx.on_error {
            OnError::Fail => {
                counters().failed_requests.fetch_add(1, Ordering::Relaxed);
                Verdict::Failed(f)
            }
            OnError::Skip => {
                counters().skipped_requests.fetch_add(1, Ordering::Relaxed);
                Verdict::Continue
            }
        }
    }

    /// Runs `call` on the instance with this stream's data, then reads what it decided.
    fn run(&mut self, call: impl FnOnce(&mut Vm, u32) -> Result<i32, Fault>) -> Verdict {
        if self.cx.off {
            return Verdict::Continue;
        }
        let ctx = self.cx.ctx;
        let data = &mut self.data;
        data.resumed = false;
        let slot = &self.cx.slot;
        let r = slot.call_in(self.cx.generation, |vm| {
            let r = lend(vm, data, |vm| call(vm, ctx));
            let callouts = std::mem::take(&mut vm.store.data_mut().callouts);
            let queued = vm.deliver_queues();
            // What the root context asked for while its queues were delivered is its own.
            slot.send_root_callouts(vm);
            r.and_then(|a| queued.map(|()| (a, callouts)))
        });
        match r {
            Err(f) => self.fail(f),
            Ok((action, callouts)) => {
                self.pending.extend(callouts);
                self.decide(action)
            }
        }
    }

    fn decide(&mut self, action: i32) -> Verdict {
        if let Some(l) = self.data.local.take() {
            counters().local_replies.fetch_add(1, Ordering::Relaxed);
            return Verdict::Local(l);
        }
        if self.data.closed {
            return Verdict::Closed;
        }
        if action == ACTION_CONTINUE || self.data.resumed {
            Verdict::Continue
        } else {
            Verdict::Pause
        }
    }

    /// `proxy_on_request_headers` with `data.request_headers` (pseudo-headers first:
    /// `:method`, `:path`, `:authority`, `:scheme`).
    pub fn request_headers(&mut self, end_of_stream: bool) -> Verdict {
        let n = self.data.request_count() as i32;
        self.run(|vm, ctx| match &Rc::clone(&vm.f).request_headers {
            Some(HeadersFn::WithEnd(f)) => vm.call(f, (ctx as i32, n, end_of_stream as i32)),
            Some(HeadersFn::NoEnd(f)) => vm.call(f, (ctx as i32, n)),
            None => Ok(ACTION_CONTINUE),
        })
    }

    /// `proxy_on_request_body` with `piece` appended to the buffered request body. On
    /// [`Verdict::Continue`] the caller takes `data.request_body` (as the plugin left it) and
    /// clears it; on [`Verdict::Pause`] before the end it stays buffered.
    pub fn request_body(&mut self, piece: &[u8], end_of_stream: bool) -> Verdict {
        self.data.request_body.extend_from_slice(piece);
        let n = self.data.request_body.len() as i32;
        self.run(|vm, ctx| match &Rc::clone(&vm.f).request_body {
            Some(f) => vm.call(f, (ctx as i32, n, end_of_stream as i32)),
            None => Ok(ACTION_CONTINUE),
        })
    }

    /// `proxy_on_response_headers` with `data.response_headers` (`:status` first).
    pub fn response_headers(&mut self, status: u16, end_of_stream: bool) -> Verdict {
        self.data.props.response_code = Some(status);
        let n = self.data.response_count() as i32;
        self.run(|vm, ctx| match &Rc::clone(&vm.f).response_headers {
            Some(HeadersFn::WithEnd(f)) => vm.call(f, (ctx as i32, n, end_of_stream as i32)),
            Some(HeadersFn::NoEnd(f)) => vm.call(f, (ctx as i32, n)),
            None => Ok(ACTION_CONTINUE),
        })
    }

    /// `proxy_on_response_body`, as [`Stream::request_body`].
    pub fn response_body(&mut self, piece: &[u8], end_of_stream: bool) -> Verdict {
        self.data.response_body.extend_from_slice(piece);
        let n = self.data.response_body.len() as i32;
        self.run(|vm, ctx| match &Rc::clone(&vm.f).response_body {
            Some(f) => vm.call(f, (ctx as i32, n, end_of_stream as i32)),
            None => Ok(ACTION_CONTINUE),
        })
    }

    /// `proxy_on_request_trailers` / `proxy_on_response_trailers` with the trailers in
    /// `data`.
    pub fn trailers(&mut self, response: bool) -> Verdict {
        let n = if response {
            self.data.response_trailers.len()
        } else {
            self.data.request_trailers.len()
        } as i32;
        self.run(|vm, ctx| {
            let f = if response {
                vm.f.response_trailers.clone()
            } else {
                vm.f.request_trailers.clone()
            };
            match f {
                Some(f) => vm.call(&f, (ctx as i32, n)),
                None => Ok(ACTION_CONTINUE),
            }
        })
    }

    /// The callouts the plugin asked for since the last look; the caller makes each and
    /// answers with [`Stream::callout_done`] (a response, or `None` when it failed or timed
    /// out: the plugin then sees no headers and no body, as in Envoy).
    pub fn take_callouts(&mut self) -> Vec<Callout> {
        std::mem::take(&mut self.pending)
    }

    /// `proxy_on_http_call_response` for `token`; the verdict says whether the stream goes
    /// on (the plugin resumed it or answered).
    pub fn callout_done(&mut self, token: u32, response: Option<CalloutResponse>) -> Verdict {
        // Waiting on the callout meant "paused" unless the callback resumes.
        self.run(move |vm, ctx| vm.call_response(ctx, token, response).map(|()| 1))
    }

    /// The request is done: `proxy_on_log`, `proxy_on_done`, `proxy_on_delete`.
    pub fn finish(self) {
        drop(self.finish_into());
    }

    /// [`Stream::finish`], handing back the stream's data (its buffers may serve another
    /// request).
    pub fn finish_into(mut self) -> Box<StreamData> {
        let unwaited = std::mem::take(&mut self.pending).len();
        self.cx.close(&mut self.data, true, unwaited);
        self.data
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bext_http1::{Header, Span};

    /// The spans of `Name: value\r\n` lines starting at `at` in `buf`.
    fn spans(buf: &[u8], at: usize) -> Vec<Header> {
        let mut list = Vec::new();
        let mut pos = at;
        for line in buf[at..].split(|&b| b == b'\n').filter(|l| l.len() > 1) {
            let colon = line.iter().position(|&b| b == b':').unwrap();
            let p = pos as u32;
            list.push(Header {
                name: Span {
                    start: p,
                    end: p + colon as u32,
                },
                value: Span {
                    start: p + colon as u32 + 2,
                    end: p + line.len() as u32 - 1,
                },
            });
            pos += line.len() + 1;
        }
        list
    }

    fn text(f: &Fields) -> Vec<(String, String)> {
        f.iter()
            .map(|(n, v)| {
                (
                    String::from_utf8_lossy(n).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    /// A request's raw fields become its map on first use: pseudo-headers first (the
    /// authority from the Host line, port included), names in lower case, in the head's order,
    /// whatever the head's offset in its buffer; the count the callback gets matches.
    #[test]
    fn raw_fields_build_the_maps_the_plugin_sees() {
        let buf = b"GET /a?b HTTP/1.1\r\nHost: example.com:8080\r\nX-One: 1\r\nAccept: */*\r\n\r\n";
        let list = spans(buf, 19);
        let mut d = StreamData::default();
        d.props.method = b"GET".to_vec();
        d.props.path = b"/a?b".to_vec();
        d.props.host = b"example.com".to_vec();
        d.props.scheme = "http";
        d.raw_request(buf, &list, Some(0));
        assert_eq!(d.request_count(), 7);
        let want = pairs(&[
            (":method", "GET"),
            (":path", "/a?b"),
            (":authority", "example.com:8080"),
            (":scheme", "http"),
            ("host", "example.com:8080"),
            ("x-one", "1"),
            ("accept", "*/*"),
        ]);
        assert_eq!(text(d.request_map()), want);
        assert_eq!(d.request_count(), 7);

        // Spans out of order (a head the engine rebuilt) and no Host line.
        let mut rev = list.clone();
        rev.reverse();
        rev.pop();
        d.recycle();
        d.props.host = b"fallback".to_vec();
        d.raw_request(buf, &rev, None);
        let map = text(d.request_map());
        assert_eq!(map[2], (":authority".into(), "fallback".into()));
        assert_eq!(map[4..], pairs(&[("accept", "*/*"), ("x-one", "1")])[..]);

        // The response: `:status` first, the length last.
        let head = b"HTTP/1.1 200 OK\r\nServer: o\r\n\r\n";
        d.props.response_code = Some(201);
        d.raw_response(head, &spans(head, 17), Some(12));
        assert_eq!(d.response_count(), 3);
        assert_eq!(
            text(d.response_map()),
            pairs(&[
                (":status", "201"),
                ("server", "o"),
                ("content-length", "12")
            ])
        );
    }
}
