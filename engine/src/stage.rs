//! Phases and the stage traits.
//!
//! A request passes fixed phases (see `docs/architecture.md` for the chart):
//!
//! ```text
//! accept → request head → route → request filters → upstream select → upstream exchange
//!        → response head filters → response body → log
//! ```
//!
//! A stage implements only the phases it needs: each phase is a small trait whose methods have
//! no-op defaults. Module crates (`modules/*`) implement these traits from IR types; the engine
//! depends on no module that implements a stage (`bext-balance`, which the engine does use, is
//! pure per-core logic inside each upstream attempt, not a stage: see docs/balancing.md).
//! Built-in stages of the engine itself (header operations, the
//! actions) are called with static dispatch; module stages are boxed, one virtual call per
//! phase per request.

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

/// What a request filter decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Continue,
    /// Answer with this status and problem type slug instead of running the action.
    Reject {
        status: u16,
        slug: &'static str,
    },
    /// Over a rate limit: 429 `rate-limited`, with `Retry-After` (seconds until a request of
    /// this client would be accepted again, at least 1).
    Limited {
        retry_after_secs: u64,
    },
}

/// Phase "request filters" (limits, WAF, auth, plugins): may short-circuit with a response.
pub trait RequestFilter: Send + Sync {
    fn on_request(&self, _req: &RequestView<'_>) -> Verdict {
        Verdict::Continue
    }
}

/// Phase "response head filters": may add or remove fields of the response head.
pub trait ResponseFilter: Send + Sync {
    fn on_response_head(&self, _status: u16, _out: &mut Vec<(Vec<u8>, Vec<u8>)>) {}
}

/// One finished request, as the log phase sees it.
pub struct LogEntry<'a> {
    pub client: SocketAddr,
    pub method: &'a [u8],
    pub target: &'a [u8],
    pub http10: bool,
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
}

/// Phase "log".
pub trait LogStage: Send + Sync {
    fn on_log(&self, _entry: &LogEntry<'_>) {}
}
