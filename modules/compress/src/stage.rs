//! The compression stage: the route's `compress` directive run on the phases of a request.
//!
//! ```text
//! request filters      on_request         Accept-Encoding → the encoding this client takes;
//!                                         HEAD and Range noted (never compressed)
//! response head        on_response_head   Policy: could this response be compressed?
//!   filters                                 yes → Vary: Accept-Encoding (compressed or not)
//!                                           and the client takes an encoding → an encoder from
//!                                           the core's pool, Content-Encoding, weak ETag, no
//!                                           Content-Length / Accept-Ranges, BodyUse::Filter
//! response body        on_body            push each piece; flush after a short one
//!   filters            on_body_end        finish (trailer); the encoder goes back to the pool
//! ```
//!
//! # When the output is flushed
//!
//! A codec gathers input into blocks, so without a flush a slow or streaming origin (server-sent
//! events, a page sent in parts) would reach the client only once a block filled. The engine
//! hands a body filter pieces of at most [`FULL_PIECE`] bytes, as they were read; a shorter
//! piece means the read found nothing more waiting (the origin paused, or a chunk of a chunked
//! body ended), so the stage flushes after it: what the origin sent is then decodable by the
//! client. Full pieces are not flushed (more is already waiting), nor is the piece that
//! completes an announced length (the end, with its trailer, follows at once). A flush costs a
//! few bytes and some ratio, only where the origin's own pacing calls for it.
//!
//! # Per-request state
//!
//! [`CompressState`] is a few plain fields: a request that accepts none of the offered
//! encodings, or whose response is not compressed, takes nothing from the pool. The encoder is
//! leased from the core's pool ([`crate::pool`]) only when a response is compressed, and goes
//! back when the body ends or the state is dropped, whichever comes first.

use bext_ir::{Compress, Encoding, Route};
use bext_stage::{BodyError, BodyUse, Flow, Phases, RequestView, ResponseHead, Stage};

use crate::negotiate::{negotiate, trim_ows};
use crate::policy::{no_transform, Policy, ResponseFacts};
use crate::pool::Lease;

/// The largest piece of body the engine hands a body filter at once (its transfer buffer).
pub const FULL_PIECE: usize = 32 * 1024;

/// The `compress` directive of one route, compiled.
#[derive(Debug, Clone)]
pub struct CompressStage {
    policy: Policy,
}

/// What one request needs between its phases.
#[derive(Debug, Default)]
pub struct CompressState {
    /// The best offered encoding the request accepts.
    accepted: Option<Encoding>,
    /// `HEAD` or `Range`: the response is sent as it is.
    excluded: bool,
    /// The encoder, while the body is being compressed.
    lease: Option<Lease>,
    /// Body bytes still to come, when the response announced its length.
    left: Option<u64>,
}

impl CompressStage {
    /// Compiles a route's `compress`.
    pub fn new(c: &Compress) -> CompressStage {
        CompressStage {
            policy: Policy::new(c),
        }
    }

    /// The stage of a route, when it has `compress`.
    pub fn for_route(route: &Route) -> Option<CompressStage> {
        route.compress.as_ref().map(CompressStage::new)
    }

    /// The compiled policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }
}

impl Stage for CompressStage {
    type State = CompressState;

    fn phases(&self) -> Phases {
        Phases::REQUEST | Phases::RESPONSE_BODY
    }

    fn init(&self) -> CompressState {
        CompressState::default()
    }

    fn on_request(&self, st: &mut CompressState, req: &RequestView<'_>) -> Flow {
        let head = req.method_bytes == b"HEAD";
        let range = req.headers.get(b"range").is_some();
        st.excluded = head || range;
        if !st.excluded {
            let lines = req
                .headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(b"accept-encoding"))
                .map(|(_, v)| v);
            st.accepted = negotiate(lines, self.policy.offered());
        }
        Flow::Continue
    }

    fn on_response_head(&self, st: &mut CompressState, head: &mut ResponseHead<'_>) -> BodyUse {
        // The length as the handler knows it (a file's size, a configured body, a proxied
        // Content-Length); a head made without the engine may still carry the field.
        let content_length = head
            .body_len()
            .or_else(|| head.get(b"content-length").and_then(parse_length));
        let facts = ResponseFacts {
            status: head.status(),
            content_length,
            content_type: head.get(b"content-type"),
            content_encoding: head.get(b"content-encoding").is_some(),
            cache_control: &[],
        };
        let nt = head.get_all(b"cache-control").any(no_transform)
            || head.get(b"cache-control").is_some_and(no_transform);
        if !self.policy.varies_with(&facts, nt) {
            return BodyUse::Pass;
        }
        add_vary(head);
        let Some(enc) = st.accepted.filter(|_| !st.excluded) else {
            return BodyUse::Pass;
        };
        let level = self.policy.level(enc).unwrap_or(enc.default_level());
        st.lease = Some(Lease::take(enc, level));
        st.left = content_length;
        head.set(b"Content-Encoding", enc.token().as_bytes());
        head.remove(b"content-length");
        head.remove(b"accept-ranges");
        SCRATCH.with_borrow_mut(|out| {
            out.clear();
            let weakened = head
                .get(b"etag")
                .is_some_and(|tag| crate::head::weaken_etag(tag, out));
            if weakened {
                head.set(b"ETag", out);
            }
        });
        head.length_unknown();
        BodyUse::Filter
    }

    fn on_body(
        &self,
        st: &mut CompressState,
        data: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), BodyError> {
        let Some(lease) = st.lease.as_mut() else {
            // Only a filtered response has a lease; pass anything else through untouched.
            out.extend_from_slice(data);
            return Ok(());
        };
        let enc = lease.encoder();
        enc.push(data, out).map_err(|_| BodyError)?;
        if let Some(left) = &mut st.left {
            *left = left.saturating_sub(data.len() as u64);
        }
        if data.len() < FULL_PIECE && st.left != Some(0) {
            enc.flush(out).map_err(|_| BodyError)?;
        }
        Ok(())
    }

    fn on_body_end(&self, st: &mut CompressState, out: &mut Vec<u8>) -> Result<(), BodyError> {
        let Some(mut lease) = st.lease.take() else {
            return Ok(());
        };
        lease.encoder().finish(out).map_err(|_| BodyError)
        // The lease drops here: the encoder is reset and back in the pool for the next body.
    }
}

thread_local! {
    /// Where a weakened ETag is written before it is copied into the head edits.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `Vary: Accept-Encoding`, unless the response's `Vary` (as edited so far) already names it
/// or is `*`. An existing `Vary` keeps its lines and gets one more: field lines of a list
/// combine (RFC 9110 §5.3), so nothing needs rewriting.
fn add_vary(head: &mut ResponseHead<'_>) {
    let Some(current) = head.get(b"vary") else {
        head.set(b"Vary", b"Accept-Encoding");
        return;
    };
    // The handler's lines, unless an earlier stage replaced them (then its one line).
    let named = if head.get_all(b"vary").next() == Some(current) {
        head.get_all(b"vary").any(names_accept_encoding)
    } else {
        names_accept_encoding(current)
    };
    if !named {
        head.append(b"Vary", b"Accept-Encoding");
    }
}

/// Whether a `Vary` line lists `Accept-Encoding` (any case) or `*`.
fn names_accept_encoding(line: &[u8]) -> bool {
    line.split(|&b| b == b',')
        .map(trim_ows)
        .any(|m| m == b"*" || m.eq_ignore_ascii_case(b"accept-encoding"))
}

/// A `Content-Length` value; `None` when it is not one decimal number.
fn parse_length(v: &[u8]) -> Option<u64> {
    let v = trim_ows(v);
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    v.iter().try_fold(0u64, |n, d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}
