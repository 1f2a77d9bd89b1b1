//! bext-stage: the stage API of bext, without the runtime.
//!
//! A request passes fixed phases (the chart and the reasons for the order are in
//! `docs/architecture.md`):
//!
//! ```text
//! request head → route → request filters → request body filters → handler
//!              → response head filters → response body filters → log
//! ```
//!
//! A [`Stage`] implements only the phases it needs: every phase method has a no-op default.
//! The stage value itself is compiled once per route and shared by every core (`&self`); what
//! a stage keeps for one request lives in its [`Stage::State`], made by [`Stage::init`] when a
//! request reaches the route (like Pingora's `HttpModuleBuilder::init` → `HttpModule`), and
//! passed back `&mut` to every later phase of that request. A stage that must wait (a plugin
//! callout, a cache lock) implements [`Stage::poll_request`] instead of [`Stage::on_request`]:
//! the engine polls it from the connection's task, so waiting needs no runtime here.
//!
//! Module crates (`modules/*`) and plugins depend on this crate only, never on the engine, so
//! they do not link the runtime. The engine runs a module stage through [`DynStage`], the
//! object-safe form every [`Stage`] gets for free.

#![forbid(unsafe_code)]

pub mod callout;
pub mod hooks;

use std::any::Any;
use std::task::{Context, Poll};

use bext_http1::{Header, Method, RequestHead};
use std::net::SocketAddr;

/// Index of a route in the pipeline's flat route table: the routes of `Config::sites` in
/// order, site after site (see [`crate::pipeline::flat_route_index`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RouteId(pub u32);

/// What the router decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteResult {
    Matched(RouteId),
    /// No route of the chosen site matches the path (or no site matches the host).
    NotFound,
    /// Some route matches the path, none the method: 405.
    MethodNotAllowed,
}

/// The request fields every phase may read, borrowed from the connection buffer.
pub struct RequestView<'a> {
    pub method: Option<Method>,
    /// The method token as sent.
    pub method_bytes: &'a [u8],
    /// Host without port, as sent (compare ASCII-case-insensitively).
    pub host: &'a [u8],
    /// The path in normal form, without `;parameters` (`bext_http1::route_view`): what routes
    /// match. The forwarded path keeps the parameters.
    pub path: &'a [u8],
    pub query: Option<&'a [u8]>,
    pub headers: Headers<'a>,
    pub client: SocketAddr,
    /// The request came over TLS.
    pub tls: bool,
    /// The verified client certificate of the connection, when it sent one (TLS listeners
    /// with `client_auth`).
    pub client_cert: Option<&'a ClientCert>,
}

/// The identity of a verified client certificate, as routing conditions read it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientCert {
    /// The subject's common name.
    pub common_name: Option<String>,
    /// The subjectAltName DNS names.
    pub dns_names: Vec<String>,
}

/// The header fields of a parsed head.
#[derive(Clone, Copy)]
pub struct Headers<'a> {
    buf: &'a [u8],
    list: &'a [Header],
}

impl<'a> Headers<'a> {
    pub fn new(buf: &'a [u8], list: &'a [Header]) -> Self {
        Headers { buf, list }
    }

    pub fn from_request(buf: &'a [u8], head: &'a RequestHead) -> Self {
        Headers::new(buf, &head.headers)
    }

    /// The first field named `name` (ASCII case-insensitive).
    pub fn get(&self, name: &[u8]) -> Option<&'a [u8]> {
        self.iter()
            .find(|(n, _)| bext_http1::name_eq(n, name))
            .map(|(_, v)| v)
    }

    /// The buffer and the fields' spans in it (to copy them as one block).
    pub fn parts(&self) -> (&'a [u8], &'a [Header]) {
        (self.buf, self.list)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + '_ {
        let buf = self.buf;
        self.list
            .iter()
            .map(move |h| (h.name.get(buf), h.value.get(buf)))
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

/// Phase "route": choose the route of a request. Implemented by `bext-router`.
pub trait RouteStage: Send + Sync {
    fn route(&self, req: &RequestView<'_>) -> RouteResult;

    /// The index in `Config::sites` of the site serving `host` (without port), asked before
    /// routing only when sites normalise paths differently.
    fn site(&self, _host: &[u8]) -> Option<usize> {
        None
    }
}

/// The `rewrite` of one route: the request target sent upstream instead of the client's.
/// Implemented by `bext-router`; any per-core state a rewrite needs is its own (no lock).
pub trait TargetRewrite: Send + Sync {
    /// Appends the new target (path, then `?query`) to `out` and returns true when the rewrite
    /// applies; returns false, leaving `out` untouched, when it does not (the request keeps its
    /// target). `query` comes without its `?`.
    fn rewrite(&self, path: &[u8], query: Option<&[u8]>, out: &mut Vec<u8>) -> bool;
}

/// One finished request, as the log phase sees it.
pub struct LogEntry<'a> {
    pub client: SocketAddr,
    pub method: &'a [u8],
    pub target: &'a [u8],
    pub http10: bool,
    /// Received over HTTP/3 (its request is read as HTTP/1.1: `http10` is then false).
    pub http3: bool,
    pub host: &'a [u8],
    pub status: u16,
    /// Body bytes sent to the client.
    pub bytes_sent: u64,
    pub duration_us: u64,
    pub request_id: &'a str,
    pub upstream: Option<SocketAddr>,
    /// The error class slug, when the request failed.
    pub error: Option<&'static str>,
    pub referer: Option<&'a [u8]>,
    pub user_agent: Option<&'a [u8]>,
    /// The request's trace and span ids (32 and 16 hex digits) when tracing is configured.
    pub trace: Option<(&'a str, &'a str)>,
}

/// The flat index of route `route` of site `site`: the routes of all sites, in order.
pub fn flat_route_index(config: &bext_ir::Config, site: usize, route: usize) -> u32 {
    let before: usize = config.sites[..site].iter().map(|s| s.routes.len()).sum();
    (before + route) as u32
}

/// A response a stage answers with instead of letting the request go on: a problem response
/// (RFC 9457) of this status and type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    /// The problem type slug (`https://bext.dev/problems/<slug>`).
    pub slug: &'static str,
    pub title: &'static str,
    /// `Retry-After`, in seconds.
    pub retry_after: Option<u64>,
}

/// What a request phase decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// End the request with this response; later stages and the handler do not run.
    Reply(Reply),
}

/// Which phases a stage takes part in, so the engine skips the others without a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Phases(u8);

impl Phases {
    pub const REQUEST: Phases = Phases(1);
    pub const RESPONSE_HEAD: Phases = Phases(2);
    /// Implies taking part in the response head phase, where a stage says whether it changes
    /// the body of this response.
    pub const RESPONSE_BODY: Phases = Phases(4 | 2);
    pub const LOG: Phases = Phases(8);
    /// Told that the request is finished ([`Stage::on_log`]) without reading the entry's
    /// request fields: they come empty (method, target, host, referer, user agent), so the
    /// engine keeps no copy of them for this stage alone. The status, sizes, times and ids
    /// are filled in.
    pub const DONE: Phases = Phases(32);
    /// The request body, piece by piece, before the handler runs.
    pub const REQUEST_BODY: Phases = Phases(16);
    pub const NONE: Phases = Phases(0);

    pub const fn union(self, other: Phases) -> Phases {
        Phases(self.0 | other.0)
    }

    pub const fn contains(self, other: Phases) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }
}

impl std::ops::BitOr for Phases {
    type Output = Phases;
    fn bitor(self, rhs: Phases) -> Phases {
        self.union(rhs)
    }
}

/// The response head as the response head phase sees it: the fields the handler produced
/// (read-only) and the edits stages ask for, which the engine applies when it serialises the
/// head. Edits are kept in buffers the engine reuses from request to request.
pub struct ResponseHead<'a> {
    status: u16,
    fields: Headers<'a>,
    edits: &'a mut HeadEdits,
    body_len: Option<u64>,
    replaceable: bool,
}

impl<'a> ResponseHead<'a> {
    pub fn new(status: u16, fields: Headers<'a>, edits: &'a mut HeadEdits) -> Self {
        ResponseHead {
            status,
            fields,
            edits,
            body_len: None,
            replaceable: false,
        }
    }

    /// A head nothing of which has reached the client yet, whose handler can give way to a
    /// stage's own response ([`BodyUse::Reply`]): a proxied response.
    pub fn replaceable_by_stage(mut self) -> Self {
        self.replaceable = true;
        self
    }

    /// Whether a stage may answer instead of the handler here ([`BodyUse::Reply`]).
    pub fn replaceable(&self) -> bool {
        self.replaceable
    }

    /// The head of a body of `len` bytes (see [`ResponseHead::body_len`]).
    pub fn with_body_len(mut self, len: Option<u64>) -> Self {
        self.body_len = len;
        self
    }

    /// The status, as a stage may have changed it ([`ResponseHead::set_status`]).
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Answer with `status` instead. Accepted only where it changes nothing of the framing:
    /// both the handler's status and the new one in 200–599, neither 204, 205 nor 304 (whose
    /// responses carry no body); false, and the status unchanged, otherwise.
    pub fn set_status(&mut self, status: u16) -> bool {
        let bodied = |s: u16| (200..=599).contains(&s) && !matches!(s, 204 | 205 | 304);
        if !bodied(self.status) || !bodied(status) {
            return false;
        }
        self.status = status;
        self.edits.status = Some(status);
        true
    }

    /// The body's length as the handler knows it (a proxied response's `Content-Length`, a
    /// file's size, a configured body), whatever the framing the engine will choose: `None`
    /// when it is unknown (chunked or close-delimited) or the response has no body. The fields
    /// a handler makes carry no `Content-Length`: the engine frames after this phase.
    pub fn body_len(&self) -> Option<u64> {
        self.body_len
    }

    /// The first field named `name` (ASCII case-insensitive), after the edits so far (a
    /// removed field is gone, a field set by an earlier stage is seen).
    pub fn get(&self, name: &[u8]) -> Option<&[u8]> {
        if let Some(v) = self.edits.added(name) {
            return Some(v);
        }
        if self.edits.removes(name) {
            return None;
        }
        self.fields.get(name)
    }

    /// Every line of field `name`, as the handler produced them (edits not applied).
    pub fn get_all<'s>(&'s self, name: &'s [u8]) -> impl Iterator<Item = &'a [u8]> + 's {
        self.fields
            .iter()
            .filter(move |(n, _)| bext_http1::name_eq(n, name))
            .map(|(_, v)| v)
    }

    /// Every field as the handler produced it (edits not applied).
    pub fn fields(&self) -> Headers<'a> {
        self.fields
    }

    /// Remove every line of field `name`.
    pub fn remove(&mut self, name: &[u8]) {
        self.edits.remove(name);
    }

    /// Replace every line of field `name` with one.
    pub fn set(&mut self, name: &[u8], value: &[u8]) {
        self.edits.remove(name);
        self.edits.append(name, value);
    }

    /// Add a line, keeping those of the same name.
    pub fn append(&mut self, name: &[u8], value: &[u8]) {
        self.edits.append(name, value);
    }

    /// The body will not have the length the handler announced: the engine frames it chunked
    /// (HTTP/1.1) or by closing the connection (HTTP/1.0).
    pub fn length_unknown(&mut self) {
        self.edits.length_unknown = true;
    }
}

/// Edits to a response head, collected over the response head phase. Cleared, not freed,
/// between requests.
#[derive(Debug, Default, Clone)]
pub struct HeadEdits {
    /// Lower-case names of removed fields, each followed by `\n`.
    removed: Vec<u8>,
    /// Added lines, serialised (`Name: value\r\n`).
    added: Vec<u8>,
    /// Where each added line's name ends and its value starts, per line: (start, colon, end).
    spans: Vec<(u32, u32, u32)>,
    length_unknown: bool,
    /// The status a stage answered with instead of the handler's.
    status: Option<u16>,
}

impl HeadEdits {
    pub fn clear(&mut self) {
        self.removed.clear();
        self.added.clear();
        self.spans.clear();
        self.length_unknown = false;
        self.status = None;
    }

    pub fn is_empty(&self) -> bool {
        self.removed.is_empty()
            && self.added.is_empty()
            && !self.length_unknown
            && self.status.is_none()
    }

    /// The status a stage set ([`ResponseHead::set_status`]), if any.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// Whether a handler's field `name` is removed.
    pub fn removes(&self, name: &[u8]) -> bool {
        self.removed
            .split(|&b| b == b'\n')
            .any(|n| !n.is_empty() && n.eq_ignore_ascii_case(name))
    }

    /// The serialised lines to add, `Name: value\r\n` each.
    pub fn added_lines(&self) -> &[u8] {
        &self.added
    }

    /// Whether the body's length changes (the handler's `Content-Length` no longer holds).
    pub fn length_changes(&self) -> bool {
        self.length_unknown
    }

    fn added(&self, name: &[u8]) -> Option<&[u8]> {
        self.spans.iter().find_map(|&(s, c, e)| {
            let n = &self.added[s as usize..c as usize];
            n.eq_ignore_ascii_case(name)
                .then(|| &self.added[c as usize + 2..e as usize - 2])
        })
    }

    fn remove(&mut self, name: &[u8]) {
        // Lines added earlier under this name go too.
        let mut i = 0;
        while i < self.spans.len() {
            let (s, c, e) = self.spans[i];
            if self.added[s as usize..c as usize].eq_ignore_ascii_case(name) {
                let len = e - s;
                self.added.drain(s as usize..e as usize);
                self.spans.remove(i);
                for sp in &mut self.spans[i..] {
                    sp.0 -= len;
                    sp.1 -= len;
                    sp.2 -= len;
                }
            } else {
                i += 1;
            }
        }
        if !self.removes(name) {
            self.removed.extend(name.iter().map(u8::to_ascii_lowercase));
            self.removed.push(b'\n');
        }
    }

    fn append(&mut self, name: &[u8], value: &[u8]) {
        let s = self.added.len() as u32;
        self.added.extend_from_slice(name);
        let c = self.added.len() as u32;
        self.added.extend_from_slice(b": ");
        self.added.extend_from_slice(value);
        self.added.extend_from_slice(b"\r\n");
        self.spans.push((s, c, self.added.len() as u32));
    }
}

/// A new request head, as a request filter leaves it (see [`Stage::rewrite_request`]): the
/// method and target when they change, and every field. Cleared, not freed, between requests.
#[derive(Debug, Default, Clone)]
pub struct RequestRewrite {
    /// The new method token, when it changes.
    pub method: Option<Vec<u8>>,
    /// The new target (origin form, `/path?query`), when it changes.
    pub target: Option<Vec<u8>>,
    /// Every field of the new head, serialised (`Name: value\r\n` each), `Host` included.
    /// The framing fields (`Content-Length`, `Transfer-Encoding`) are not among them: the
    /// engine keeps the client's, since the body is read as the client framed it.
    pub fields: Vec<u8>,
}

impl RequestRewrite {
    pub fn clear(&mut self) {
        self.method = None;
        self.target = None;
        self.fields.clear();
    }

    /// Add a field line.
    pub fn field(&mut self, name: &[u8], value: &[u8]) {
        self.fields.extend_from_slice(name);
        self.fields.extend_from_slice(b": ");
        self.fields.extend_from_slice(value);
        self.fields.extend_from_slice(b"\r\n");
    }
}

/// One piece of a request body, as the request body phase sees it: the bytes (decoded from
/// the chunked coding, as they were sent or as an earlier stage left them), whether the body
/// ends with them, and what the stage makes of them. A stage that only reads the piece
/// changes nothing and nothing is copied for it.
pub struct BodyChunk<'a> {
    data: &'a [u8],
    last: bool,
    replacement: &'a mut Vec<u8>,
    replaced: bool,
}

impl<'a> BodyChunk<'a> {
    pub fn new(data: &'a [u8], last: bool, replacement: &'a mut Vec<u8>) -> Self {
        replacement.clear();
        BodyChunk {
            data,
            last,
            replacement,
            replaced: false,
        }
    }

    /// The bytes of this piece (empty for the end of a body that ended with its last piece).
    pub fn data(&self) -> &[u8] {
        if self.replaced {
            self.replacement
        } else {
            self.data
        }
    }

    /// The body ends with this piece.
    pub fn is_last(&self) -> bool {
        self.last
    }

    /// The piece becomes `bytes` for the stages after this one and for the handler.
    pub fn replace(&mut self, bytes: &[u8]) {
        let mut fresh = std::mem::take(self.replacement);
        fresh.clear();
        fresh.extend_from_slice(bytes);
        *self.replacement = fresh;
        self.replaced = true;
    }

    /// Whether a stage replaced the piece.
    pub fn is_replaced(&self) -> bool {
        self.replaced
    }
}

/// Whether a stage changes the body of this response (decided in the response head phase).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyUse {
    /// The body passes this stage untouched: the stage sees none of it, nothing is copied.
    Pass,
    /// Every chunk of the body goes through [`Stage::on_body`], then [`Stage::on_body_end`].
    Filter,
    /// As [`BodyUse::Filter`], but the stage leaves the body's length as it is (it may read
    /// the body, or change bytes in place): the engine keeps the handler's framing, a
    /// `Content-Length` included, and cuts the response short should the output's length
    /// differ from it after all.
    Inspect,
    /// The stage answers instead of the handler: its own response ([`Stage::local_reply`],
    /// with this reply's status; a problem response when it has none) replaces the handler's,
    /// whose body is not sent. Only where [`ResponseHead::replaceable`] says so (otherwise
    /// taken as [`BodyUse::Pass`]); later stages do not see the replaced head.
    Reply(Reply),
}

/// A body filter failed: the response is cut short (the connection closes without completing
/// its framing, so the client never takes a partial body for a whole one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyError;

/// A stage: the phases of a request it takes part in, compiled once per route.
///
/// `Self` is the compiled, immutable part, shared by every core; [`Stage::State`] is what one
/// request of one core needs (an encoder, a counter, what the request phase learnt for the
/// response phases). Every method but [`Stage::init`] and [`Stage::phases`] has a no-op
/// default; a stage lists what it implements in [`Stage::phases`], so the engine calls
/// nothing else.
pub trait Stage: Send + Sync + 'static {
    /// Per-request state. A zero-sized state costs no allocation.
    type State: 'static;

    /// The phases this stage implements.
    fn phases(&self) -> Phases;

    /// A request reached the route: its state, before any phase runs.
    fn init(&self) -> Self::State;

    /// Phase "request filters": continue, or answer instead of the handler.
    fn on_request(&self, _state: &mut Self::State, _req: &RequestView<'_>) -> Flow {
        Flow::Continue
    }

    /// [`Stage::on_request`] for a stage that may have to wait: polled from the connection's
    /// task until ready, with the same request each time.
    fn poll_request(
        &self,
        state: &mut Self::State,
        req: &RequestView<'_>,
        _cx: &mut Context<'_>,
    ) -> Poll<Flow> {
        Poll::Ready(self.on_request(state, req))
    }

    /// Phase "request body filters": one piece of the request body. A route with a stage in
    /// this phase has its request body read whole (within the body limit) before the handler
    /// runs, so a stage may still answer instead of the handler ([`Flow::Reply`]) on any
    /// piece: nothing has reached an upstream yet. The handler gets the body as the stages
    /// left it.
    fn on_request_body(&self, _state: &mut Self::State, _chunk: &mut BodyChunk<'_>) -> Flow {
        Flow::Continue
    }

    /// After [`Stage::on_request_body`] answered [`Flow::Continue`] for a piece: whether the
    /// stage waits (a plugin's callouts) before the piece goes on to the stages after it.
    /// Polled until ready, while the core serves other requests; `chunk` is the piece as
    /// `on_request_body` left it, and may be replaced once the wait is over (a plugin lets the
    /// body it held go on). A reply ends the request as one from `on_request_body` does.
    fn poll_request_body(
        &self,
        _state: &mut Self::State,
        _chunk: &mut BodyChunk<'_>,
        _cx: &mut Context<'_>,
    ) -> Poll<Flow> {
        Poll::Ready(Flow::Continue)
    }

    /// Phase "response head filters": edit the head; say whether the body is changed.
    fn on_response_head(&self, _state: &mut Self::State, _head: &mut ResponseHead<'_>) -> BodyUse {
        BodyUse::Pass
    }

    /// Phase "response body filters": one chunk of the body (as the previous filter left it),
    /// the result appended to `out`. Only called when the head phase answered
    /// [`BodyUse::Filter`].
    fn on_body(
        &self,
        _state: &mut Self::State,
        data: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), BodyError> {
        out.extend_from_slice(data);
        Ok(())
    }

    /// The body ended: what the filter still holds, appended to `out`.
    fn on_body_end(&self, _state: &mut Self::State, _out: &mut Vec<u8>) -> Result<(), BodyError> {
        Ok(())
    }

    /// Phase "log": the request is finished.
    fn on_log(&self, _state: &mut Self::State, _entry: &LogEntry<'_>) {}

    /// This stage answered `reply` in a request phase: header lines to send with it
    /// (`Name: value\r\n` each, appended to `out`), beside the problem body and `Retry-After`
    /// the engine writes (the rate limits' `RateLimit` and `RateLimit-Policy`).
    fn reply_fields(&self, _reply: &Reply, _out: &mut Vec<u8>) {}

    /// After [`Stage::poll_request`] answered [`Flow::Continue`]: a stage that changed the
    /// request head says how in `out` and returns true. The engine rebuilds the head, checks
    /// it as strictly as a client's, and the later stages, the handler and the response phases
    /// see that request; the route chosen stays.
    fn rewrite_request(
        &self,
        _state: &mut Self::State,
        _req: &RequestView<'_>,
        _out: &mut RequestRewrite,
    ) -> bool {
        false
    }

    /// This stage answered [`Flow::Reply`] with a response of its own rather than a problem:
    /// its fields (`Name: value\r\n` each, without framing) appended to `fields`, its body to
    /// `body`, and true. The engine sends it with the reply's status through the response
    /// phases, as a handler's response.
    fn local_reply(
        &self,
        _state: &mut Self::State,
        _fields: &mut Vec<u8>,
        _body: &mut Vec<u8>,
    ) -> bool {
        false
    }
}

/// The object-safe form of [`Stage`], which the engine holds module stages as: the state is
/// boxed as `dyn Any` (no allocation when it is zero-sized).
pub trait DynStage: Send + Sync {
    fn phases(&self) -> Phases;
    fn init(&self) -> Box<dyn Any>;
    /// Make `state` a fresh one ([`Stage::init`]) in place, keeping its allocation; false
    /// when it is not this stage's kind of state.
    fn reinit(&self, state: &mut dyn Any) -> bool;
    /// Whether `state` is this stage's kind of state.
    fn owns(&self, state: &dyn Any) -> bool;
    fn poll_request(
        &self,
        state: &mut dyn Any,
        req: &RequestView<'_>,
        cx: &mut Context<'_>,
    ) -> Poll<Flow>;
    fn on_request_body(&self, state: &mut dyn Any, chunk: &mut BodyChunk<'_>) -> Flow;
    fn poll_request_body(
        &self,
        state: &mut dyn Any,
        chunk: &mut BodyChunk<'_>,
        cx: &mut Context<'_>,
    ) -> Poll<Flow>;
    fn on_response_head(&self, state: &mut dyn Any, head: &mut ResponseHead<'_>) -> BodyUse;
    fn on_body(&self, state: &mut dyn Any, data: &[u8], out: &mut Vec<u8>)
        -> Result<(), BodyError>;
    fn on_body_end(&self, state: &mut dyn Any, out: &mut Vec<u8>) -> Result<(), BodyError>;
    fn on_log(&self, state: &mut dyn Any, entry: &LogEntry<'_>);
    /// See [`Stage::reply_fields`].
    fn reply_fields(&self, _reply: &Reply, _out: &mut Vec<u8>) {}
    /// See [`Stage::rewrite_request`].
    fn rewrite_request(
        &self,
        state: &mut dyn Any,
        req: &RequestView<'_>,
        out: &mut RequestRewrite,
    ) -> bool;
    /// See [`Stage::local_reply`].
    fn local_reply(&self, state: &mut dyn Any, fields: &mut Vec<u8>, body: &mut Vec<u8>) -> bool;
}

/// The state handed back is always the one `init` made for this stage (the engine keeps them
/// side by side); a mismatch is a bug in the engine, answered without a panic: the phase is
/// skipped.
impl<S: Stage> DynStage for S {
    fn phases(&self) -> Phases {
        Stage::phases(self)
    }

    fn reply_fields(&self, reply: &Reply, out: &mut Vec<u8>) {
        Stage::reply_fields(self, reply, out)
    }

    fn init(&self) -> Box<dyn Any> {
        Box::new(Stage::init(self))
    }

    fn reinit(&self, state: &mut dyn Any) -> bool {
        match state.downcast_mut::<S::State>() {
            Some(st) => {
                *st = Stage::init(self);
                true
            }
            None => false,
        }
    }

    fn owns(&self, state: &dyn Any) -> bool {
        state.is::<S::State>()
    }

    fn poll_request(
        &self,
        state: &mut dyn Any,
        req: &RequestView<'_>,
        cx: &mut Context<'_>,
    ) -> Poll<Flow> {
        match state.downcast_mut::<S::State>() {
            Some(st) => Stage::poll_request(self, st, req, cx),
            None => Poll::Ready(Flow::Continue),
        }
    }

    fn on_request_body(&self, state: &mut dyn Any, chunk: &mut BodyChunk<'_>) -> Flow {
        match state.downcast_mut::<S::State>() {
            Some(st) => Stage::on_request_body(self, st, chunk),
            None => Flow::Continue,
        }
    }

    fn poll_request_body(
        &self,
        state: &mut dyn Any,
        chunk: &mut BodyChunk<'_>,
        cx: &mut Context<'_>,
    ) -> Poll<Flow> {
        match state.downcast_mut::<S::State>() {
            Some(st) => Stage::poll_request_body(self, st, chunk, cx),
            None => Poll::Ready(Flow::Continue),
        }
    }

    fn on_response_head(&self, state: &mut dyn Any, head: &mut ResponseHead<'_>) -> BodyUse {
        match state.downcast_mut::<S::State>() {
            Some(st) => Stage::on_response_head(self, st, head),
            None => BodyUse::Pass,
        }
    }

    fn on_body(
        &self,
        state: &mut dyn Any,
        data: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), BodyError> {
        match state.downcast_mut::<S::State>() {
            Some(st) => Stage::on_body(self, st, data, out),
            None => Err(BodyError),
        }
    }

    fn on_body_end(&self, state: &mut dyn Any, out: &mut Vec<u8>) -> Result<(), BodyError> {
        match state.downcast_mut::<S::State>() {
            Some(st) => Stage::on_body_end(self, st, out),
            None => Err(BodyError),
        }
    }

    fn on_log(&self, state: &mut dyn Any, entry: &LogEntry<'_>) {
        if let Some(st) = state.downcast_mut::<S::State>() {
            Stage::on_log(self, st, entry)
        }
    }

    fn rewrite_request(
        &self,
        state: &mut dyn Any,
        req: &RequestView<'_>,
        out: &mut RequestRewrite,
    ) -> bool {
        match state.downcast_mut::<S::State>() {
            Some(st) => Stage::rewrite_request(self, st, req, out),
            None => false,
        }
    }

    fn local_reply(&self, state: &mut dyn Any, fields: &mut Vec<u8>, body: &mut Vec<u8>) -> bool {
        match state.downcast_mut::<S::State>() {
            Some(st) => Stage::local_reply(self, st, fields, body),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A status is changed only between statuses whose responses carry a body.
    #[test]
    fn a_status_changes_only_where_the_framing_stays() {
        for (from, to, ok) in [
            (200, 418, true),
            (404, 200, true),
            (200, 204, false),
            (200, 304, false),
            (200, 205, false),
            (200, 101, false),
            (204, 200, false),
            (304, 200, false),
            (200, 600, false),
        ] {
            let mut e = HeadEdits::default();
            let mut h = ResponseHead::new(from, Headers::new(b"", &[]), &mut e);
            assert_eq!(h.set_status(to), ok, "{from} -> {to}");
            assert_eq!(h.status(), if ok { to } else { from });
            assert_eq!(e.status(), ok.then_some(to));
            e.clear();
            assert!(e.status().is_none() && e.is_empty());
        }
    }

    #[test]
    fn head_edits_remove_set_and_read_back() {
        let mut e = HeadEdits::default();
        let buf = b"";
        let mut h = ResponseHead::new(200, Headers::new(buf, &[]), &mut e);
        h.append(b"X-A", b"1");
        h.set(b"Vary", b"Accept-Encoding");
        h.append(b"X-B", b"2");
        h.remove(b"x-a");
        assert_eq!(h.get(b"vary"), Some(&b"Accept-Encoding"[..]));
        assert_eq!(h.get(b"x-a"), None);
        h.length_unknown();
        assert_eq!(
            e.added_lines(),
            b"Vary: Accept-Encoding\r\nX-B: 2\r\n".as_slice()
        );
        assert!(e.removes(b"VARY") && e.removes(b"x-a") && !e.removes(b"x-b"));
        assert!(e.length_changes());
        e.clear();
        assert!(e.is_empty());
    }

    #[test]
    fn body_chunks_pass_or_are_replaced() {
        let mut spare = Vec::new();
        let mut c = BodyChunk::new(b"abc", true, &mut spare);
        assert_eq!(c.data(), b"abc");
        assert!(c.is_last() && !c.is_replaced());
        c.replace(b"xy");
        assert_eq!(c.data(), b"xy");
        c.replace(b"z");
        assert_eq!(c.data(), b"z");
        assert!(c.is_replaced());
    }

    #[test]
    fn phases_combine() {
        let p = Phases::REQUEST | Phases::LOG;
        assert!(p.contains(Phases::REQUEST) && p.contains(Phases::LOG));
        assert!(!p.contains(Phases::RESPONSE_HEAD));
        assert!(Phases::RESPONSE_BODY.contains(Phases::RESPONSE_HEAD));
        assert!(!Phases::NONE.contains(Phases::NONE));
    }
}
