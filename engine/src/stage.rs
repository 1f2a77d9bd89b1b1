//! Phases, and how the engine runs a route's stages.
//!
//! The stage API itself (the [`Stage`] trait, request views, head edits) lives in the
//! `bext-stage` crate, which module crates depend on without linking the runtime; this module
//! re-exports it and adds what only the engine needs: the compiled stage list of a route
//! ([`Stages`]) and the per-request part of an exchange ([`Exchange`]), kept in the
//! connection's scratch so a request allocates nothing for it (a zero-sized stage state is a
//! box that allocates nothing; the list of states is emptied, not freed, between requests).
//!
//! ```text
//! request head → route → request filters → request body filters → handler
//!              → response head filters → response body filters → log
//! ```
//!
//! The engine's own steps of those phases (request normal form, header operations of
//! `request_header`/`response_header`, the access log) run statically, in the code of the
//! phase; module stages run through [`DynStage`], one virtual call per phase they take part
//! in, and only on routes that have them: a route without stages pays a test of an empty list.

pub use bext_stage::{
    flat_route_index, BodyChunk, BodyError, BodyUse, DynStage, Flow, HeadEdits, Headers, LogEntry,
    Phases, Reply, RequestRewrite, RequestView, ResponseHead, RouteId, RouteResult, RouteStage,
    Stage, TargetRewrite,
};
use std::any::Any;
use std::future::poll_fn;

/// The stages of one route, in the order the pipeline fixed (see `docs/architecture.md`).
#[derive(Default)]
pub struct Stages {
    list: Vec<Box<dyn DynStage>>,
    phases: Phases,
    /// The site's `hsts` value: `Strict-Transport-Security` on the responses sent over TLS,
    /// set in the response head phase (the engine's own step of it, before module stages).
    hsts: Option<Box<[u8]>>,
}

impl Stages {
    /// No stage yet; with `hsts`, the response head phase sets that header over TLS.
    pub fn with_hsts(hsts: Option<String>) -> Stages {
        Stages {
            list: Vec::new(),
            phases: if hsts.is_some() {
                Phases::RESPONSE_HEAD
            } else {
                Phases::NONE
            },
            hsts: hsts.map(|v| v.into_bytes().into_boxed_slice()),
        }
    }

    pub fn push(&mut self, stage: Box<dyn DynStage>) {
        self.phases = self.phases | stage.phases();
        self.list.push(stage);
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Some stage of the route takes part in `phase`.
    #[inline]
    pub fn has(&self, phase: Phases) -> bool {
        self.phases.contains(phase)
    }
}

/// Per-request state of a route's stages, and what the response phases decided. Lives in the
/// connection's scratch.
#[derive(Default)]
pub struct Exchange {
    states: Vec<Box<dyn Any>>,
    /// The stages (by position) that filter this response's body.
    filtering: u64,
    /// Every stage filtering this response's body keeps its length ([`BodyUse::Inspect`]).
    length_kept: bool,
    pub(crate) edits: HeadEdits,
    /// The current request came over TLS (set before routing).
    pub(crate) tls: bool,
    /// Buffers of the body filters (raw piece, filtered piece, scratch), kept from request to
    /// request like the rest of the connection's scratch.
    bufs: Option<(Vec<u8>, Vec<u8>, Vec<u8>)>,
    /// The stage (by position) whose reply ended a request phase, or replaced the handler's
    /// response.
    replied: Option<usize>,
    /// A response head filter's reply that replaces the handler's response
    /// ([`BodyUse::Reply`]).
    replaced: Option<Reply>,
    /// A request filter's new request head (see [`Stage::rewrite_request`]).
    pub(crate) rewrite: RequestRewrite,
    /// `states` were made fresh in place at the end of the last request
    /// ([`Exchange::recycle`]): the next request on the same route reuses their allocations.
    fresh: bool,
}

/// Where the request filters stopped.
pub(crate) enum RequestStep {
    /// The phase is over.
    Done(Flow),
    /// The stage at this position rewrote the request head (in [`Exchange::rewrite`]): the
    /// engine applies it, then goes on with the next stage.
    Rewritten(usize),
}

impl Exchange {
    /// Start a request on a route: a fresh state per stage (the last request's, made fresh in
    /// place, when it ran on a route with the same kinds of stages).
    pub(crate) fn begin(&mut self, stages: &Stages) {
        let fresh = std::mem::take(&mut self.fresh);
        self.next_request();
        let same = fresh
            && self.states.len() == stages.list.len()
            && stages
                .list
                .iter()
                .zip(&self.states)
                .all(|(s, st)| s.owns(&**st));
        if same {
            return;
        }
        self.states.clear();
        for s in &stages.list {
            self.states.push(s.init());
        }
    }

    /// Drop the states of the last request (their buffers return to the stages' pools).
    pub(crate) fn reset(&mut self) {
        self.states.clear();
        self.fresh = false;
        self.next_request();
    }

    /// The end of a request on a route with `stages`: each state made fresh in place (what it
    /// held is dropped now, as [`Exchange::reset`] would), its allocation kept for the next
    /// request.
    pub(crate) fn recycle(&mut self, stages: &Stages) {
        self.fresh = self.states.len() == stages.list.len()
            && stages
                .list
                .iter()
                .zip(self.states.iter_mut())
                .all(|(s, st)| s.reinit(&mut **st));
        if !self.fresh {
            self.states.clear();
        }
        self.next_request();
    }

    /// A new request on the connection: what the last one decided is forgotten; the stages'
    /// states stay for [`Exchange::begin`] (fresh, or replaced there).
    pub(crate) fn next_request(&mut self) {
        self.filtering = 0;
        self.edits.clear();
        self.replied = None;
        self.replaced = None;
    }

    /// A response head filter answered instead of the handler's response.
    pub(crate) fn replaced(&self) -> bool {
        self.replaced.is_some()
    }

    /// The reply a response head filter answered with instead of the handler's response
    /// (taken: asked once, by the handler that gives way).
    pub(crate) fn take_replaced(&mut self) -> Option<Reply> {
        self.replaced.take()
    }

    /// The header lines the stage that replied sends with its reply (see
    /// [`bext_stage::Stage::reply_fields`]), appended to `out`.
    pub(crate) fn reply_fields(&self, stages: &Stages, reply: &Reply, out: &mut Vec<u8>) {
        if let Some(s) = self.replied.and_then(|i| stages.list.get(i)) {
            s.reply_fields(reply, out);
        }
    }

    /// Phase "request filters", in order from the stage at `from`; the first reply ends the
    /// phase, a rewritten request head pauses it (see [`RequestStep`]).
    pub(crate) async fn request(
        &mut self,
        stages: &Stages,
        req: &RequestView<'_>,
        from: usize,
    ) -> RequestStep {
        if !stages.has(Phases::REQUEST) {
            return RequestStep::Done(Flow::Continue);
        }
        let list = stages.list.iter().zip(self.states.iter_mut());
        for (i, (s, st)) in list.enumerate().skip(from) {
            if !s.phases().contains(Phases::REQUEST) {
                continue;
            }
            let flow = poll_fn(|cx| s.poll_request(&mut **st, req, cx)).await;
            if let Flow::Reply(_) = flow {
                self.replied = Some(i);
                return RequestStep::Done(flow);
            }
            self.rewrite.clear();
            if s.rewrite_request(&mut **st, req, &mut self.rewrite) {
                return RequestStep::Rewritten(i);
            }
        }
        RequestStep::Done(Flow::Continue)
    }

    /// The response of its own the stage that replied sends (see [`Stage::local_reply`]):
    /// fields and body appended; false when it answers with a problem.
    pub(crate) fn local_reply(
        &mut self,
        stages: &Stages,
        fields: &mut Vec<u8>,
        body: &mut Vec<u8>,
    ) -> bool {
        let Some(i) = self.replied else { return false };
        match (stages.list.get(i), self.states.get_mut(i)) {
            (Some(s), Some(st)) => s.local_reply(&mut **st, fields, body),
            _ => false,
        }
    }

    /// Phase "request body filters" for one piece of the body (`last`: the body ends with
    /// it): each stage in order, the piece as the previous one left it (once the stage is done
    /// waiting, [`Stage::poll_request_body`]); the result is appended to `body`. `a` and `b`
    /// are scratch. The first reply ends the phase.
    pub(crate) async fn request_body(
        &mut self,
        stages: &Stages,
        data: &[u8],
        last: bool,
        body: &mut Vec<u8>,
        a: &mut Vec<u8>,
        b: &mut Vec<u8>,
    ) -> Flow {
        // Whether the current piece is in `a` (a stage replaced it) rather than `data`.
        let mut in_a = false;
        for (i, (s, st)) in stages.list.iter().zip(self.states.iter_mut()).enumerate() {
            if !s.phases().contains(Phases::REQUEST_BODY) {
                continue;
            }
            let input: &[u8] = if in_a { a } else { data };
            let mut chunk = BodyChunk::new(input, last, b);
            let mut flow = s.on_request_body(&mut **st, &mut chunk);
            if flow == Flow::Continue {
                flow = poll_fn(|cx| s.poll_request_body(&mut **st, &mut chunk, cx)).await;
            }
            let replaced = chunk.is_replaced();
            if let Flow::Reply(_) = flow {
                self.replied = Some(i);
                return flow;
            }
            if replaced {
                std::mem::swap(a, b);
                in_a = true;
            }
        }
        body.extend_from_slice(if in_a { a } else { data });
        Flow::Continue
    }

    /// Whether the body filters of this response all keep the body's length (the framing the
    /// handler had stays; see [`BodyUse::Inspect`]).
    pub(crate) fn length_kept(&self) -> bool {
        self.length_kept
    }

    /// Phase "response head filters": edits collect in `self.edits`; returns true when a
    /// stage filters the body (the body's length is then unknown, unless every such stage
    /// keeps it: [`Exchange::length_kept`]). Where `replaceable` (nothing of the response has
    /// reached the client), a stage may answer instead ([`BodyUse::Reply`]): the phase ends
    /// there, and [`Exchange::take_replaced`] has the reply.
    pub(crate) fn response_head(
        &mut self,
        stages: &Stages,
        status: u16,
        fields: Headers<'_>,
        body_len: Option<u64>,
        replaceable: bool,
    ) -> bool {
        self.edits.clear();
        self.filtering = 0;
        self.length_kept = true;
        self.replaced = None;
        if !stages.has(Phases::RESPONSE_HEAD) {
            return false;
        }
        let mut head = ResponseHead::new(status, fields, &mut self.edits).with_body_len(body_len);
        if replaceable {
            head = head.replaceable_by_stage();
        }
        if let (Some(v), true) = (&stages.hsts, self.tls) {
            head.set(b"Strict-Transport-Security", v);
        }
        for (i, (s, st)) in stages.list.iter().zip(self.states.iter_mut()).enumerate() {
            if !s.phases().contains(Phases::RESPONSE_HEAD) {
                continue;
            }
            match s.on_response_head(&mut **st, &mut head) {
                BodyUse::Pass => {}
                BodyUse::Reply(r) if replaceable => {
                    self.replied = Some(i);
                    self.replaced = Some(r);
                    self.filtering = 0;
                    return false;
                }
                BodyUse::Reply(_) => {}
                _ if i >= 64 => {}
                BodyUse::Filter => {
                    self.filtering |= 1 << i;
                    self.length_kept = false;
                }
                BodyUse::Inspect => self.filtering |= 1 << i,
            }
        }
        if self.filtering != 0 && !self.length_kept {
            head.length_unknown();
        }
        self.filtering != 0
    }

    /// The body filters' buffers (new ones the first time).
    pub(crate) fn take_buffers(&mut self) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        self.bufs.take().unwrap_or_default()
    }

    /// Give the buffers back; oversized ones are dropped.
    pub(crate) fn give_buffers(&mut self, a: Vec<u8>, b: Vec<u8>, c: Vec<u8>) {
        const KEEP: usize = 64 * 1024;
        if a.capacity().max(b.capacity()).max(c.capacity()) <= KEEP {
            self.bufs = Some((a, b, c));
        }
    }

    /// Phase "response body filters" for one chunk (`last`: the body ended after it): each
    /// filtering stage in order, the output of one the input of the next. The result is in
    /// `out` (cleared first); `tmp` is scratch of the same kind.
    pub(crate) fn body(
        &mut self,
        stages: &Stages,
        data: &[u8],
        last: bool,
        out: &mut Vec<u8>,
        tmp: &mut Vec<u8>,
    ) -> Result<(), BodyError> {
        let mut first = true;
        for (i, (s, st)) in stages.list.iter().zip(self.states.iter_mut()).enumerate() {
            if i >= 64 || self.filtering & (1 << i) == 0 {
                continue;
            }
            tmp.clear();
            // The first filter reads the handler's bytes where they are: nothing is copied
            // for a stage that does not change them.
            let input: &[u8] = if first { data } else { out };
            if !input.is_empty() {
                s.on_body(&mut **st, input, tmp)?;
            }
            if last {
                s.on_body_end(&mut **st, tmp)?;
            }
            std::mem::swap(out, tmp);
            first = false;
        }
        if first {
            out.clear();
            out.extend_from_slice(data);
        }
        Ok(())
    }

    /// Phase "log".
    pub(crate) fn log(&mut self, stages: &Stages, entry: &LogEntry<'_>) {
        if !stages.has(Phases::LOG) && !stages.has(Phases::DONE) {
            return;
        }
        for (s, st) in stages.list.iter().zip(self.states.iter_mut()) {
            let p = s.phases();
            if p.contains(Phases::LOG) || p.contains(Phases::DONE) {
                s.on_log(&mut **st, entry);
            }
        }
    }
}
