//! The compiled, immutable pipeline: everything a worker needs to serve a request, built once
//! from a [`bext_ir::Config`] and shared by every core behind an `Arc`.
//!
//! Per-core scratch (buffers, upstream pools, round-robin cursors, the log buffer) lives in the
//! worker, never here, so the pipeline is read-only on the request path. Each pipeline carries a
//! generation number; a reload publishes a new pipeline with the next number.

pub use crate::stage::flat_route_index;
use crate::stage::{RouteStage, Stages};
use bext_ir as ir;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// Why a configuration could not be turned into a pipeline.
pub type CompileError = ir::ConfigError;

/// Header operations of one direction, resolved for serialisation: fields whose name is in
/// `drop` are not copied, then `add` is appended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderOps {
    /// Lower-case names removed (by `remove` and by `set`).
    pub drop: Vec<Vec<u8>>,
    /// Fields appended, in order (from `set` and `add`).
    pub add: Vec<(Vec<u8>, Vec<u8>)>,
}

impl HeaderOps {
    pub fn compile(ops: &[ir::HeaderOp]) -> HeaderOps {
        let mut out = HeaderOps::default();
        for op in ops {
            match op {
                ir::HeaderOp::Set { name, value } => {
                    out.drop.push(name.to_ascii_lowercase().into_bytes());
                    out.add
                        .retain(|(n, _)| !n.eq_ignore_ascii_case(name.as_bytes()));
                    out.add
                        .push((name.as_bytes().to_vec(), value.as_bytes().to_vec()));
                }
                ir::HeaderOp::Add { name, value } => {
                    out.add
                        .push((name.as_bytes().to_vec(), value.as_bytes().to_vec()));
                }
                ir::HeaderOp::Remove { name } => {
                    out.drop.push(name.to_ascii_lowercase().into_bytes());
                    out.add
                        .retain(|(n, _)| !n.eq_ignore_ascii_case(name.as_bytes()));
                }
            }
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.drop.is_empty() && self.add.is_empty()
    }

    #[inline]
    pub fn drops(&self, name: &[u8]) -> bool {
        self.drop.iter().any(|d| d.eq_ignore_ascii_case(name))
    }

    /// Append the added fields, serialised (`Name: value\r\n` each).
    pub fn write_added(&self, out: &mut Vec<u8>) {
        for (n, v) in &self.add {
            out.extend_from_slice(n);
            out.extend_from_slice(b": ");
            out.extend_from_slice(v);
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// A piece of a redirect location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Lit(Vec<u8>),
    Path,
    Query,
    Host,
}

/// Parse `{path}`, `{query}`, `{host}` placeholders; anything else is literal.
pub fn compile_template(s: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut lit = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let (seg, len) = if rest.starts_with("{path}") {
            (Some(Segment::Path), 6)
        } else if rest.starts_with("{query}") {
            (Some(Segment::Query), 7)
        } else if rest.starts_with("{host}") {
            (Some(Segment::Host), 6)
        } else {
            (None, rest.chars().next().map_or(1, char::len_utf8))
        };
        match seg {
            Some(seg) => {
                if !lit.is_empty() {
                    out.push(Segment::Lit(std::mem::take(&mut lit)));
                }
                out.push(seg);
            }
            None => lit.extend_from_slice(&rest.as_bytes()[..len]),
        }
        rest = &rest[len..];
    }
    if !lit.is_empty() {
        out.push(Segment::Lit(lit));
    }
    out
}

/// The body of a `respond` action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RespondBody {
    Fixed(Vec<u8>),
    /// `len` bytes of a repeating pattern, generated while writing (the built-in origin's
    /// large bodies are never held in memory).
    Generated {
        len: u64,
    },
}

impl RespondBody {
    pub fn len(&self) -> u64 {
        match self {
            RespondBody::Fixed(b) => b.len() as u64,
            RespondBody::Generated { len } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Respond {
    pub status: u16,
    pub body: RespondBody,
    /// Status line and fixed fields, ready to copy (without the final CRLF).
    pub head: Vec<u8>,
    /// Requests with a body get it back (the built-in origin); otherwise bodies are read and
    /// discarded.
    pub echo: bool,
    /// The fields of `head` (after its status line), for the response head phase.
    pub fields: Vec<bext_http1::Header>,
}

impl Respond {
    pub fn new(
        status: u16,
        body: RespondBody,
        content_type: Option<&str>,
        ops: &HeaderOps,
        echo: bool,
    ) -> Respond {
        let mut head = Vec::with_capacity(128);
        head.extend_from_slice(b"HTTP/1.1 ");
        head.extend_from_slice(status.to_string().as_bytes());
        head.push(b' ');
        head.extend_from_slice(crate::error::reason(status).as_bytes());
        head.extend_from_slice(b"\r\nServer: bext\r\n");
        let ct = content_type.unwrap_or("text/plain; charset=utf-8");
        if !body.is_empty() && !ops.drops(b"content-type") {
            head.extend_from_slice(b"Content-Type: ");
            head.extend_from_slice(ct.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        ops.write_added(&mut head);
        let fields = head_fields(&head);
        Respond {
            status,
            body,
            head,
            echo,
            fields,
        }
    }
}

/// The fields of a serialised head (`status line CRLF (name: value CRLF)*`), as spans.
pub(crate) fn head_fields(head: &[u8]) -> Vec<bext_http1::Header> {
    let mut out = Vec::new();
    let mut at = match head.windows(2).position(|w| w == b"\r\n") {
        Some(i) => i + 2,
        None => return out,
    };
    while at < head.len() {
        let end = head[at..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(head.len(), |i| at + i);
        let line = &head[at..end];
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            let vstart =
                at + colon + 1 + line[colon + 1..].iter().take_while(|&&b| b == b' ').count();
            out.push(bext_http1::Header {
                name: bext_http1::Span {
                    start: at as u32,
                    end: (at + colon) as u32,
                },
                value: bext_http1::Span {
                    start: vstart as u32,
                    end: end as u32,
                },
            });
        }
        at = end + 2;
    }
    out
}

/// What produces the response once the request filters let a request through (see
/// `handler`): one variant per handler type.
#[derive(Debug)]
pub enum Handler {
    Proxy {
        upstream: usize,
    },
    Respond(Respond),
    Redirect {
        status: u16,
        location: Vec<Segment>,
    },
    Static(Box<crate::handler::static_files::StaticFiles>),
    /// `proxy` behind the route's response cache.
    Cached {
        cache: Box<crate::handler::cache::CacheRoute>,
        upstream: usize,
    },
}

pub struct CompiledRoute {
    pub handler: Handler,
    pub strip_prefix: Option<Vec<u8>>,
    /// Set after compilation by whoever implements rewrites (`bext-router`).
    pub rewrite: Option<Box<dyn crate::stage::TargetRewrite>>,
    pub request_headers: HeaderOps,
    pub response_headers: HeaderOps,
    /// The route's module stages, in the order the compiler fixed; set after compilation by
    /// whoever builds them (see `bext::compile_with`).
    pub(crate) stages: Stages,
    /// `request_buffering on`: a proxied request body is read whole before the upstream is
    /// contacted.
    pub request_buffering: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamServer {
    pub addr: SocketAddr,
    pub weight: u32,
    pub backup: bool,
    /// TLS to this server (`server … tls`), set with its client configuration by whoever
    /// loads it (see `bext::compile_with`); `None`: plain TCP.
    pub tls: Option<bext_tls::UpstreamTls>,
}

impl UpstreamServer {
    /// The pool its connections are kept in (see [`crate::worker::PoolKey`]).
    pub fn pool_key(&self) -> crate::worker::PoolKey {
        (
            self.addr,
            self.tls.as_ref().map_or(0, bext_tls::UpstreamTls::id),
        )
    }
}

/// Where a hashing balancer finds its key in a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashSource {
    /// Not a hashing policy: nothing to extract.
    None,
    ClientIp,
    /// The value of the first field of this (lower-case) name.
    Header(Vec<u8>),
    /// The value of the cookie of this name.
    Cookie(Vec<u8>),
}

#[derive(Debug, Clone)]
pub struct UpstreamDef {
    pub name: String,
    pub servers: Vec<UpstreamServer>,
    /// Idle connections kept per worker and server.
    pub keepalive: usize,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    pub idle_timeout: Duration,
    /// An upgraded connection passing no byte either way for this long is closed.
    pub tunnel_timeout: Duration,
    /// The upstream as configured: each core compiles its balancer, ejector, retry policy and
    /// circuit breaker from it (see [`crate::upstream`]).
    pub config: ir::Upstream,
    pub hash: HashSource,
    /// Active health of the servers, shared by every core and written by the health checker
    /// (all up, and never written, without a `health` block). A reload carries it over for
    /// servers that remain (see [`crate::health`]).
    pub health: bext_balance::HealthView,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLogSpec {
    pub target: ir::LogTarget,
    pub format: ir::LogFormat,
}

/// Client-side limits and timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientPolicy {
    pub limits: bext_http1::Limits,
    pub body_bytes: u64,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub idle_timeout: Duration,
    pub drain_timeout: Duration,
    /// Client connections per worker; at it, the worker stops accepting.
    pub max_connections: usize,
    /// Requests per client connection; the last is answered with `Connection: close`.
    pub keepalive_requests: u64,
}

impl ClientPolicy {
    /// How long a connection waits for its next request: a new one (nothing `served` yet)
    /// under the header timeout, a kept-alive one under the idle timeout.
    pub fn request_wait(&self, served: u32) -> Duration {
        if served == 0 {
            self.header_timeout
        } else {
            self.idle_timeout
        }
    }
}

pub struct Pipeline {
    pub generation: u64,
    /// Every phase some route's stage takes part in.
    pub(crate) stage_phases: crate::stage::Phases,
    pub listeners: Vec<SocketAddr>,
    pub client: ClientPolicy,
    pub router: Box<dyn RouteStage>,
    pub routes: Vec<CompiledRoute>,
    pub upstreams: Vec<UpstreamDef>,
    pub access_log: Option<AccessLogSpec>,
    /// Path normalisation per site (`merge_slashes`, `escaped_slashes`).
    pub paths: crate::origin::SitePaths,
    /// `trusted_proxies`: peers whose forwarding fields are kept.
    pub trusted: crate::origin::TrustedProxies,
    /// The TLS of each TLS listener, by address: built on the control thread (certificates
    /// read and checked, resumption carried from the generation before), so a connection
    /// accepted under this generation handshakes with this generation's certificates.
    pub tls: Vec<(SocketAddr, std::sync::Arc<bext_tls::Listener>)>,
    /// Per site (in configuration order, as `RouteStage::site` numbers them): `redirect
    /// https`, the status and the port of the location (`None`: 443, left out).
    pub https_redirects: Vec<Option<(u16, Option<u16>)>>,
    /// `metrics on` (the default): each request is counted per route (see [`crate::metrics`]).
    pub metrics: bool,
    /// The labels of each route's metrics, in the order of `routes`, then those of requests
    /// no route took.
    pub metric_labels: std::sync::Arc<[crate::metrics::RouteLabels]>,
    /// `tracing { ... }`: trace context accepted or started, propagated, spans exported.
    pub tracing: Option<crate::trace::Tracing>,
    /// TLS listeners (as configured) that also serve HTTP/3 on UDP (see `h3`).
    pub http3: Vec<SocketAddr>,
    /// QUIC's limits of those listeners written in their `http3 { ... }` blocks (the others
    /// run with the defaults; see [`Pipeline::quic_limits`]).
    pub quic: Vec<(SocketAddr, crate::h3::QuicLimits)>,
}

impl Pipeline {
    /// The TLS of the listener bound to `addr`, if it is a TLS listener.
    pub fn tls_for(&self, addr: SocketAddr) -> Option<&std::sync::Arc<bext_tls::Listener>> {
        self.tls.iter().find(|(a, _)| *a == addr).map(|(_, l)| l)
    }

    /// QUIC's limits of the HTTP/3 listener configured as `addr`.
    pub fn quic_limits(&self, addr: SocketAddr) -> crate::h3::QuicLimits {
        self.quic
            .iter()
            .find(|(a, _)| *a == addr)
            .map_or_else(Default::default, |(_, q)| *q)
    }
}

impl Pipeline {
    /// Append a stage to route `route` (flat index): stages run in the order they were added,
    /// which the compiler fixes per phase (see `docs/architecture.md`).
    pub fn add_stage(&mut self, route: usize, stage: Box<dyn crate::stage::DynStage>) {
        self.stage_phases = self.stage_phases | stage.phases();
        if let Some(r) = self.routes.get_mut(route) {
            r.stages.push(stage);
        }
    }
}

impl Pipeline {
    /// The identities of the response caches the routes use (see
    /// [`crate::handler::cache::CacheRoute::id`]).
    pub fn cache_ids(&self) -> Vec<u64> {
        (self.routes.iter())
            .filter_map(|r| match &r.handler {
                Handler::Cached { cache, .. } => Some(cache.id),
                _ => None,
            })
            .collect()
    }
}

impl CompiledRoute {
    /// The route's stages.
    pub fn stages(&self) -> &Stages {
        &self.stages
    }
}

/// Pipelines dropped on a worker thread so far (a test hook: workers hand the pipelines they
/// let go of to the reaper thread, so this stays 0 while the engine serves).
#[doc(hidden)]
pub static DROPPED_ON_WORKERS: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);

impl Drop for Pipeline {
    fn drop(&mut self) {
        let on_worker = std::thread::current()
            .name()
            .is_some_and(|n| n.starts_with("bext-worker"));
        if on_worker {
            DROPPED_ON_WORKERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("generation", &self.generation)
            .field("listeners", &self.listeners)
            .field("routes", &self.routes.len())
            .field("upstreams", &self.upstreams)
            .finish()
    }
}

fn resolve(addr: &str, at: &ir::Loc) -> Result<SocketAddr, CompileError> {
    addr.to_socket_addrs()
        .ok()
        .and_then(|mut it| it.next())
        .ok_or_else(|| CompileError {
            message: format!("cannot resolve address `{addr}`"),
            at: at.clone(),
        })
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

impl Pipeline {
    /// Compile `config` with `router` (built by the router module from the same config).
    /// Features the engine does not implement must have been refused before this call; this
    /// compiles the parts it implements.
    pub fn compile(
        config: &ir::Config,
        router: Box<dyn RouteStage>,
        generation: u64,
    ) -> Result<Pipeline, CompileError> {
        let mut listeners = Vec::new();
        let mut http3 = Vec::new();
        let mut quic = Vec::new();
        for l in &config.listeners {
            let addr = resolve(&l.addr, &l.at)?;
            if !listeners.contains(&addr) {
                listeners.push(addr);
            }
            if l.http3 && l.tls.is_some() && !http3.contains(&addr) {
                http3.push(addr);
                if let Some(q) = &l.quic {
                    quic.push((addr, crate::h3::QuicLimits::of(q)));
                }
            }
        }
        let mut upstreams = Vec::new();
        for u in &config.upstreams {
            let mut servers = Vec::new();
            for s in &u.servers {
                servers.push(UpstreamServer {
                    addr: resolve(&s.addr, &s.at)?,
                    weight: s.weight,
                    backup: s.backup,
                    tls: None,
                });
            }
            if servers.is_empty() {
                return Err(CompileError {
                    message: format!("upstream `{}` has no server", u.name),
                    at: u.at.clone(),
                });
            }
            // Every core compiles its own balancer from the same IR; compiling one here turns
            // what would fail there (only backups, a zero weight) into a configuration error.
            if let Err(e) = bext_balance::Balancer::new(u) {
                return Err(CompileError {
                    message: e.to_string(),
                    at: u.at.clone(),
                });
            }
            let hash = match &u.balance {
                ir::Balance::Hash(ir::HashKey::ClientIp) => HashSource::ClientIp,
                ir::Balance::Hash(ir::HashKey::Header(n)) => {
                    HashSource::Header(n.to_ascii_lowercase().into_bytes())
                }
                ir::Balance::Hash(ir::HashKey::Cookie(n)) => {
                    HashSource::Cookie(n.as_bytes().to_vec())
                }
                _ => HashSource::None,
            };
            upstreams.push(UpstreamDef {
                name: u.name.clone(),
                servers,
                keepalive: u.keepalive as usize,
                connect_timeout: ms(u.timeouts.connect_ms),
                response_timeout: ms(u.timeouts.response_ms),
                idle_timeout: ms(u.timeouts.idle_ms),
                tunnel_timeout: ms(u.timeouts.tunnel_ms),
                config: u.clone(),
                hash,
                health: bext_balance::HealthView::all_up(u.servers.len()),
            });
        }
        let mut routes = Vec::new();
        for site in &config.sites {
            for r in &site.routes {
                let response_headers = HeaderOps::compile(&r.response_headers);
                let handler = match &r.action {
                    ir::Action::Proxy { upstream } => {
                        let idx = config
                            .upstreams
                            .iter()
                            .position(|u| &u.name == upstream)
                            .ok_or_else(|| CompileError {
                                message: format!("unknown upstream `{upstream}`"),
                                at: r.at.clone(),
                            })?;
                        Handler::Proxy { upstream: idx }
                    }
                    ir::Action::Respond {
                        status,
                        body,
                        content_type,
                    } => Handler::Respond(Respond::new(
                        *status,
                        RespondBody::Fixed(body.as_bytes().to_vec()),
                        content_type.as_deref(),
                        &response_headers,
                        false,
                    )),
                    ir::Action::Redirect { status, location } => Handler::Redirect {
                        status: *status,
                        location: compile_template(location),
                    },
                    ir::Action::Static { root, index } => {
                        let files =
                            crate::handler::static_files::StaticFiles::open(root, index, &r.path)
                                .map_err(|e| CompileError {
                                message: format!("static root `{root}`: {e}"),
                                at: r.at.clone(),
                            })?;
                        Handler::Static(Box::new(files))
                    }
                };
                let handler = match (&r.cache, handler) {
                    (None, h) => h,
                    (Some(c), Handler::Proxy { upstream }) => Handler::Cached {
                        cache: Box::new(crate::handler::cache::CacheRoute::compile(
                            c,
                            &config.upstreams[upstream].name,
                        )),
                        upstream,
                    },
                    (Some(c), _) => {
                        return Err(CompileError {
                            message: "`cache` stores proxied responses: it needs `proxy`".into(),
                            at: c.at.clone(),
                        })
                    }
                };
                routes.push(CompiledRoute {
                    handler,
                    strip_prefix: r.strip_prefix.as_ref().map(|p| p.as_bytes().to_vec()),
                    rewrite: None,
                    request_headers: HeaderOps::compile(&r.request_headers),
                    response_headers,
                    stages: Stages::with_hsts(site.hsts.as_ref().map(|h| h.value())),
                    request_buffering: r.request_buffering,
                });
            }
        }
        let g = &config.global;
        let trusted =
            crate::origin::TrustedProxies::compile(&g.trusted_proxies).map_err(|message| {
                CompileError {
                    message,
                    at: ir::Loc::default(),
                }
            })?;
        Ok(Pipeline {
            generation,
            stage_phases: crate::stage::Phases::NONE,
            listeners,
            client: ClientPolicy {
                limits: bext_http1::Limits {
                    max_target: g.limits.uri_bytes as usize,
                    max_head: g.limits.header_bytes as usize,
                    max_headers: g.limits.headers as usize,
                },
                body_bytes: g.limits.body_bytes,
                header_timeout: ms(g.timeouts.header_ms),
                body_timeout: ms(g.timeouts.body_ms),
                idle_timeout: ms(g.timeouts.idle_ms),
                drain_timeout: ms(g.timeouts.drain_ms),
                max_connections: g.limits.connections.max(1) as usize,
                keepalive_requests: u64::from(g.limits.keepalive_requests.max(1)),
            },
            router,
            routes,
            upstreams,
            access_log: g.access_log.as_ref().map(|a| AccessLogSpec {
                target: a.target.clone(),
                format: a.format,
            }),
            paths: crate::origin::SitePaths::compile(config),
            trusted,
            tls: Vec::new(),
            https_redirects: (config.sites.iter())
                .map(|s| s.redirect_https.as_ref().map(|r| (r.status, r.port)))
                .collect(),
            metrics: g.metrics,
            metric_labels: crate::metrics::RouteLabels::of_config(config),
            tracing: match &g.tracing {
                Some(t) => {
                    Some(
                        crate::trace::Tracing::compile(t).map_err(|message| CompileError {
                            message,
                            at: t.otlp.as_ref().map_or(t.at.clone(), |o| o.at.clone()),
                        })?,
                    )
                }
                None => None,
            },
            http3,
            quic,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_split_placeholders_from_literals() {
        let table: &[(&str, Vec<Segment>)] = &[
            ("", vec![]),
            (
                "https://{host}{path}?{query}",
                vec![
                    Segment::Lit(b"https://".to_vec()),
                    Segment::Host,
                    Segment::Path,
                    Segment::Lit(b"?".to_vec()),
                    Segment::Query,
                ],
            ),
            (
                "/new/é{x}",
                vec![Segment::Lit("/new/é{x}".as_bytes().to_vec())],
            ),
        ];
        for (src, want) in table {
            assert_eq!(&compile_template(src), want, "{src}");
        }
    }

    #[test]
    fn header_ops_set_replaces_and_remove_wins_over_earlier_add() {
        let ops = HeaderOps::compile(&[
            ir::HeaderOp::Add {
                name: "X-A".into(),
                value: "1".into(),
            },
            ir::HeaderOp::Set {
                name: "x-a".into(),
                value: "2".into(),
            },
            ir::HeaderOp::Add {
                name: "X-B".into(),
                value: "3".into(),
            },
            ir::HeaderOp::Remove { name: "X-B".into() },
        ]);
        assert_eq!(ops.add, vec![(b"x-a".to_vec(), b"2".to_vec())]);
        assert!(ops.drops(b"X-A") && ops.drops(b"x-b") && !ops.drops(b"x-c"));
    }

    #[test]
    fn respond_head_carries_status_type_and_added_fields() {
        let ops = HeaderOps::compile(&[ir::HeaderOp::Set {
            name: "Cache-Control".into(),
            value: "no-store".into(),
        }]);
        let r = Respond::new(
            201,
            RespondBody::Fixed(b"hi".to_vec()),
            Some("text/html"),
            &ops,
            false,
        );
        assert_eq!(
            String::from_utf8_lossy(&r.head),
            "HTTP/1.1 201 Created\r\nServer: bext\r\nContent-Type: text/html\r\nCache-Control: no-store\r\n"
        );
    }
}
