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

/// Header fields as bext read them, in one buffer, before they become a map: the map
/// (a pair of buffers per field, names in lower case) is built on the first host call that
/// reads or changes it, so a plugin that never looks at a map costs one copy of its bytes.
#[derive(Debug, Default)]
pub struct RawFields {
    bytes: Vec<u8>,
    /// Each field's name and value in `bytes`: (name start, name end, value start, value end).
    spans: Vec<[u32; 4]>,
}

impl RawFields {
    pub fn push(&mut self, name: &[u8], value: &[u8]) {
        let a = self.bytes.len() as u32;
        self.bytes.extend_from_slice(name);
        let b = self.bytes.len() as u32;
        self.bytes.extend_from_slice(value);
        self.spans.push([a, b, b, self.bytes.len() as u32]);
    }

    /// The fields of a parsed head, `list` spans of `buf`: their bytes copied as one block
    /// (from the first name to the last value, line ends and all), not field by field.
    pub fn push_parsed(&mut self, buf: &[u8], list: &[bext_http1::Header]) {
        let (Some(first), Some(last)) = (list.first(), list.last()) else {
            return;
        };
        let (lo, hi) = (first.name.start, last.value.end);
        let inside = |h: &bext_http1::Header| {
            lo <= h.name.start
                && h.name.start <= h.name.end
                && h.name.end <= h.value.start
                && h.value.start <= h.value.end
                && h.value.end <= hi
        };
        if hi as usize > buf.len() || !list.iter().all(inside) {
            // Fields out of order (a head the engine rebuilt): copied one by one.
            for h in list {
                self.push(h.name.get(buf), h.value.get(buf));
            }
            return;
        }
        let base = self.bytes.len() as u32;
        self.bytes.extend_from_slice(&buf[lo as usize..hi as usize]);
        let at = |x: u32| base + (x - lo);
        self.spans.extend(list.iter().map(|h| {
            [
                at(h.name.start),
                at(h.name.end),
                at(h.value.start),
                at(h.value.end),
            ]
        }));
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    pub fn clear(&mut self) {
        self.bytes.clear();
        self.spans.clear();
    }

    /// Append the fields to `map`, names in lower case, in buffers taken from `spare`, and
    /// empty `self`.
    fn build(&mut self, map: &mut Fields, spare: &mut Fields) {
        map.reserve(self.spans.len());
        for &[a, b, c, d] in &self.spans {
            let (mut name, mut value) = spare.pop().unwrap_or_default();
            name.extend_from_slice(&self.bytes[a as usize..b as usize]);
            name.make_ascii_lowercase();
            value.extend_from_slice(&self.bytes[c as usize..d as usize]);
            map.push((name, value));
        }
        self.clear();
    }
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
    /// The request's fields while `request_headers` is not built yet (pseudo-headers first).
    pub request_raw: RawFields,
    /// The response's fields while `response_headers` is not built yet (`:status` first).
    pub response_raw: RawFields,
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
        self.local = None;
        self.resumed = false;
        self.closed = false;
    }

    /// The request's header map, built now if its fields are still raw.
    pub fn request_map(&mut self) -> &mut Fields {
        if !self.request_raw.is_empty() {
            self.request_raw
                .build(&mut self.request_headers, &mut self.spare);
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
        if !self.response_raw.is_empty() {
            self.response_raw
                .build(&mut self.response_headers, &mut self.spare);
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
    fn close(&mut self, data: &mut Box<StreamData>, log: bool) {
        if self.off {
            return;
        }
        self.off = true;
        let ctx = self.ctx;
        let r = self.slot.call_in(self.generation, |vm| {
            lend(vm, data, |vm| vm.finish_context(ctx, log))
        });
        if r.is_err() {
            // The request is answered already: only the instance goes.
            self.slot.replace(self.generation);
        }
    }
}

/// Runs `f` with `data` moved into the instance's store (where the host functions read and
/// change it), and takes it back after, whatever `f` answers.
fn lend<R>(vm: &mut Vm, data: &mut Box<StreamData>, f: impl FnOnce(&mut Vm) -> R) -> R {
    std::mem::swap(&mut vm.store.data_mut().stream, data);
    let r = f(vm);
    std::mem::swap(&mut vm.store.data_mut().stream, data);
    r
}

impl Drop for StreamContext {
    fn drop(&mut self) {
        if !self.off {
            self.close(&mut Box::default(), false);
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
        let r = self.cx.slot.call_in(self.cx.generation, |vm| {
            let r = lend(vm, data, |vm| call(vm, ctx));
            let callouts = std::mem::take(&mut vm.store.data_mut().callouts);
            let queued = vm.deliver_queues();
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
        let n = (self.data.request_headers.len() + self.data.request_raw.len()) as i32;
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
        let n = (self.data.response_headers.len() + self.data.response_raw.len()) as i32;
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
        let sizes = response
            .as_ref()
            .map(|r| (r.headers.len(), r.body.len(), r.trailers.len()))
            .unwrap_or((0, 0, 0));
        // Waiting on the callout meant "paused" unless the callback resumes.
        self.run(move |vm, ctx| {
            // A failed call reads as an empty response (no fields, no body), never as a
            // missing buffer: the SDKs read the body whatever the sizes say.
            vm.store.data_mut().call_response = Some(response.unwrap_or_default());
            let r = vm.call_response(ctx, token, sizes.0, sizes.1, sizes.2);
            vm.store.data_mut().call_response = None;
            r.map(|()| 1)
        })
    }

    /// The request is done: `proxy_on_log`, `proxy_on_done`, `proxy_on_delete`.
    pub fn finish(mut self) {
        self.cx.close(&mut self.data, true);
    }

    /// [`Stream::finish`], handing back the stream's data (its buffers may serve another
    /// request).
    pub fn finish_into(mut self) -> Box<StreamData> {
        self.cx.close(&mut self.data, true);
        self.data
    }
}
