//! The intermediate representation (IR) of a bext configuration.
//!
//! `bext-dsl` parses and checks `.bext` sources and lowers them into a [`Config`]. The engine
//! and the module crates compile a `Config` into their runtime structures. The IR is plain data:
//! no parser types, no runtime types, every field serialisable, so `bext check --dump` prints it
//! and golden tests pin it.
//!
//! Units are fixed by field names: `*_ms` are milliseconds, `*_bytes` (and sizes) are bytes.
//!
//! Every item that an operator wrote carries a [`Loc`] so that later stages (the engine refusing
//! a directive it does not implement, a bind failure) can point at the source. `Loc` is
//! provenance, not meaning: it compares equal to every other `Loc`, so two configs that differ
//! only in layout (for example before and after `bext fmt`) are equal IR.
#![forbid(unsafe_code)]

pub mod routing;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where an item came from: the file (as given to the compiler) and a 1-based line and column.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Loc {
    pub file: String,
    pub line: u32,
    pub col: u32,
}

impl PartialEq for Loc {
    /// Locations never make two configurations different (see the crate docs).
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}
impl Eq for Loc {}

impl std::fmt::Display for Loc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// A configuration the language accepted that a compiler after it (the engine's pipeline, the
/// router, a stage's module) cannot build, with where it was written: the one located error
/// type every compiler of the configuration returns, printed `file:line:col: message` (the
/// message alone when the location is unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub message: String,
    pub at: Loc,
}

impl ConfigError {
    pub fn new(message: impl Into<String>, at: &Loc) -> ConfigError {
        ConfigError {
            message: message.into(),
            at: at.clone(),
        }
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.at.file.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.at, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// A whole compiled configuration (after includes are resolved).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Config {
    pub global: Global,
    pub listeners: Vec<Listener>,
    pub upstreams: Vec<Upstream>,
    pub wafs: Vec<Waf>,
    pub sites: Vec<Site>,
}

impl Config {
    pub fn upstream(&self, name: &str) -> Option<&Upstream> {
        self.upstreams.iter().find(|u| u.name == name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Global {
    pub workers: Workers,
    /// Admin endpoint address (`127.0.0.1:9901`, loopback only), or a unix socket path
    /// starting with `/`.
    pub admin: Option<String>,
    /// The file holding the admin endpoint's bearer token (`admin ADDR token_file F`); see
    /// [`read_admin_token`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_token_file: Option<String>,
    pub limits: Limits,
    pub timeouts: ClientTimeouts,
    pub access_log: Option<AccessLog>,
    pub pid_file: Option<String>,
    /// Peers whose forwarding fields (`Forwarded`, `X-Forwarded-*`, `X-Real-IP`,
    /// `X-Request-Id`) are believed: addresses or CIDRs (`10.0.0.0/8`). Empty = nobody.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_proxies: Vec<String>,
    /// `metrics on|off`: per-request metrics (requests and latency per route, cache results,
    /// WAF blocks) for the admin endpoint's `/metrics`. On by default; off, a request records
    /// nothing (not even a clock read) and `/metrics` shows the other counters only.
    #[serde(default = "metrics_on", skip_serializing_if = "is_metrics_on")]
    pub metrics: bool,
    /// `tracing { ... }`: W3C trace context accepted or started, propagated upstream, and spans
    /// exported over OTLP/HTTP. Absent: no trace field is read or written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing: Option<Tracing>,
}

/// `tracing { sample R  parent trusted|any|none  otlp "URL" [queue N] [interval D]  service NAME }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tracing {
    /// Share of new traces sampled, in millionths (`sample 1%` = 10,000). Default: all.
    pub sample_ppm: u32,
    /// Whose `traceparent` is continued (its trace id kept, its sampled flag followed).
    pub parent: TraceParent,
    pub otlp: Option<Otlp>,
    /// `service.name` of the exported spans (default `bext`).
    pub service: String,
    pub at: Loc,
}

impl Tracing {
    pub const ALL: u32 = 1_000_000;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TraceParent {
    /// From `trusted_proxies` only (the default); from anyone else a new trace is started.
    Trusted,
    Any,
    /// Every request starts a new trace.
    None,
}

/// Where sampled spans go: an OTLP/HTTP collector (`http://HOST:PORT/PATH`, JSON encoding).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Otlp {
    /// `HOST:PORT` as written (resolved when the configuration is compiled).
    pub authority: String,
    pub path: String,
    /// Spans a core holds while waiting to send them; past it new spans are dropped and counted.
    pub queue: u32,
    /// Longest wait before queued spans are sent.
    pub interval_ms: u64,
    pub at: Loc,
}

fn metrics_on() -> bool {
    true
}

fn is_metrics_on(v: &bool) -> bool {
    *v
}

impl Default for Global {
    fn default() -> Self {
        Global {
            workers: Workers::Auto,
            admin: None,
            admin_token_file: None,
            limits: Limits::default(),
            timeouts: ClientTimeouts::default(),
            access_log: None,
            pid_file: None,
            trusted_proxies: Vec::new(),
            metrics: true,
            tracing: None,
        }
    }
}

/// Longest admin token file read, in bytes.
pub const ADMIN_TOKEN_MAX: u64 = 4096;

/// Read the admin endpoint's bearer token from `path`: the file's text without its trailing
/// whitespace. The one rule for a token file, shared by the compiler (which checks the file
/// named by `admin ... token_file`) and the admin endpoint (which reads it at start and after
/// each reload). Refused, with the reason as text: a file that cannot be read, is not a regular
/// file, is readable or writable by every user, is longer than [`ADMIN_TOKEN_MAX`], is empty,
/// or holds anything but visible ASCII (it is sent in an `Authorization` header).
pub fn read_admin_token(path: &std::path::Path) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read it: {e}"))?;
    if !meta.is_file() {
        return Err("it is not a regular file".into());
    }
    if meta.permissions().mode() & 0o006 != 0 {
        return Err("every user can read or write it".into());
    }
    if meta.len() > ADMIN_TOKEN_MAX {
        return Err(format!("it is longer than {ADMIN_TOKEN_MAX} bytes"));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
    let token = text.trim();
    if token.is_empty() {
        return Err("it is empty".into());
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("it holds something other than visible ASCII characters".into());
    }
    Ok(token.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Workers {
    /// One worker per available core.
    Auto,
    Count(u16),
}

/// Request limits enforced by the HTTP/1.1 codec and the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Whole request head (request line + fields); over it: 431.
    pub header_bytes: u64,
    /// Number of header fields; over it: 431.
    pub headers: u32,
    /// Request target length; over it: 414.
    pub uri_bytes: u64,
    /// Request body; over it: 413.
    pub body_bytes: u64,
    /// Client connections per worker (open, parked and waiting for their first request);
    /// at it, the worker stops accepting until one closes.
    #[serde(default = "default_connections")]
    pub connections: u32,
    /// Requests served on one client connection; the last one is answered with
    /// `Connection: close`.
    #[serde(default = "default_keepalive_requests")]
    pub keepalive_requests: u32,
}

fn default_connections() -> u32 {
    Limits::default().connections
}

fn default_keepalive_requests() -> u32 {
    Limits::default().keepalive_requests
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_bytes: 16 * 1024,
            headers: 100,
            uri_bytes: 8 * 1024,
            body_bytes: 10 * 1024 * 1024,
            // nginx: worker_connections 512 by default, 1024 in its shipped nginx.conf, and
            // commonly raised to thousands; HAProxy derives maxconn from the descriptor limit.
            connections: 10_000,
            // nginx's keepalive_requests default (since 1.19.10).
            keepalive_requests: 1_000,
        }
    }
}

/// Client-side timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientTimeouts {
    /// Time allowed to receive a complete request head; over it: 408 and close.
    pub header_ms: u64,
    /// Time between bytes of a request body; over it: 408 and close.
    pub body_ms: u64,
    /// Keep-alive idle time between requests.
    pub idle_ms: u64,
    /// On shutdown, how long in-flight requests may take before connections are cut.
    pub drain_ms: u64,
}

impl Default for ClientTimeouts {
    fn default() -> Self {
        ClientTimeouts {
            header_ms: 10_000,
            body_ms: 30_000,
            idle_ms: 60_000,
            drain_ms: 10_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessLog {
    pub target: LogTarget,
    pub format: LogFormat,
    pub at: Loc,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogTarget {
    Stdout,
    Stderr,
    File(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Json,
    Combined,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listener {
    /// `ip:port` (IPv6 as `[::1]:8080`).
    pub addr: String,
    pub tls: Option<Tls>,
    pub http3: bool,
    /// `http3 { ... }`: the QUIC limits written for this listener (absent: the engine's
    /// defaults for all of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quic: Option<Quic>,
    pub at: Loc,
}

/// The QUIC limits of an `http3` listener, as written: a limit left out is the engine's
/// default (`bext_engine::h3::QuicLimits`). Each is within its bounds (checked when lowered,
/// E0320/E0321).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quic {
    /// `max_streams N`: request streams a client may have open at once on one connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_streams: Option<u32>,
    /// `stream_window SIZE`: flow-control window per request stream, bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_window: Option<u64>,
    /// `connection_window SIZE`: flow-control window per connection, bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_window: Option<u64>,
    /// `idle_timeout DURATION`: a connection with no packet for this long is closed, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_ms: Option<u64>,
    /// `early_data on`: requests of safe methods are served from 0-RTT data (default off).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub early_data: bool,
    pub at: Loc,
}

impl Quic {
    /// `max_streams` when not written.
    pub const DEFAULT_STREAMS: u32 = 100;
    /// `stream_window` when not written: 1 MiB.
    pub const DEFAULT_STREAM_WINDOW: u64 = 1 << 20;
    /// `connection_window` when not written: 8 MiB.
    pub const DEFAULT_CONNECTION_WINDOW: u64 = 8 << 20;
    /// `idle_timeout` when not written: 30 s.
    pub const DEFAULT_IDLE_TIMEOUT_MS: u64 = 30_000;
    /// The bounds of `max_streams` (the language's and the engine's).
    pub const STREAMS: (u32, u32) = (1, 10_000);
    /// The bounds of `stream_window`, bytes: 16 KiB to 16 MiB.
    pub const STREAM_WINDOW: (u64, u64) = (16 << 10, 16 << 20);
    /// The bounds of `connection_window`, bytes: at least the stream window, at most 256 MiB.
    pub const CONNECTION_WINDOW_MAX: u64 = 256 << 20;
    /// The bounds of `idle_timeout`, milliseconds: 1 s to 10 min.
    pub const IDLE_TIMEOUT_MS: (u64, u64) = (1_000, 600_000);
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tls {
    /// The first certificate without `sni` is the default.
    pub certs: Vec<CertPair>,
    /// `alpn P...`: the protocols offered, in preference order; empty: `http/1.1`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alpn: Vec<String>,
    /// `client_auth { ca FILE; required|optional }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_auth: Option<ClientAuth>,
    /// `tickets on|off`: stateless session tickets (on by default).
    #[serde(default = "yes")]
    pub tickets: bool,
    /// `session_cache N`: sessions kept by the stateful cache; `None`: the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_cache: Option<u32>,
    pub at: Loc,
}

fn yes() -> bool {
    true
}

impl Tls {
    /// A block of these certificates with every other setting at its default.
    pub fn new(certs: Vec<CertPair>, at: Loc) -> Tls {
        Tls {
            certs,
            alpn: Vec::new(),
            client_auth: None,
            tickets: true,
            session_cache: None,
            at,
        }
    }
}

impl CertPair {
    /// `cert CERT key KEY [sni SNI]`, stapling the default OCSP file.
    pub fn new(sni: Option<&str>, cert: &str, key: &str) -> CertPair {
        CertPair {
            sni: sni.map(str::to_owned),
            cert: cert.to_owned(),
            key: key.to_owned(),
            ocsp: Stapling::Auto,
            at: Loc::default(),
        }
    }
}

/// Client certificates asked for on a TLS listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientAuth {
    /// PEM file of the CA certificates client certificates must chain to.
    pub ca: String,
    /// `required`: a client without a valid certificate is refused in the handshake;
    /// `optional`: it is served, without an identity.
    pub required: bool,
    pub at: Loc,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertPair {
    pub sni: Option<String>,
    pub cert: String,
    pub key: String,
    /// `ocsp FILE|off`; unset: `CERT.ocsp` when that file exists.
    #[serde(default, skip_serializing_if = "Stapling::is_auto")]
    pub ocsp: Stapling,
    /// The `cert` line.
    #[serde(default)]
    pub at: Loc,
}

/// The OCSP response stapled to a certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stapling {
    /// The certificate's path with `.ocsp` appended, when that file exists.
    #[default]
    Auto,
    /// This file, which must exist.
    File(String),
    /// None.
    Off,
}

impl Stapling {
    pub fn is_auto(&self) -> bool {
        matches!(self, Stapling::Auto)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upstream {
    pub name: String,
    pub servers: Vec<Server>,
    pub balance: Balance,
    /// Idle keep-alive connections kept per worker.
    pub keepalive: u32,
    pub health: Option<HealthCheck>,
    /// `None`: `eject off`. Without an `eject` line, [`PassiveHealth::default`].
    pub passive: Option<PassiveHealth>,
    /// `None`: `retry off`. Without a `retry` line, [`Retry::default`].
    pub retry: Option<Retry>,
    pub timeouts: UpstreamTimeouts,
    /// Circuit breaker: concurrent connections per worker; `None` = unlimited.
    pub max_connections: Option<u32>,
    /// Circuit breaker: requests waiting for a connection per worker; `None` = unlimited.
    pub max_pending: Option<u32>,
    pub at: Loc,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Server {
    /// `host:port`; a host name is resolved once when the configuration is compiled.
    pub addr: String,
    pub weight: u32,
    pub backup: bool,
    /// `tls [sni NAME] [ca FILE]`: bext talks TLS to this server, verifying its certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ServerTls>,
    pub at: Loc,
}

/// TLS to an upstream server. The certificate is always verified: against the CA
/// certificates of `ca`, or the system's trust store without it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerTls {
    /// The name sent as SNI and verified in the certificate; `None`: the host of the server's
    /// address (an IP address is verified against the certificate's IP addresses, and no SNI
    /// is sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    /// A PEM file of the CA certificates the server's certificate must chain to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
}

impl Server {
    /// The host part of `addr` (without brackets for IPv6), the default TLS server name.
    pub fn host(&self) -> &str {
        let host = self.addr.rsplit_once(':').map_or(&*self.addr, |(h, _)| h);
        host.strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    RoundRobin,
    LeastConn,
    /// Power of two choices over a latency EWMA.
    P2c,
    /// Consistent hashing on a key.
    Hash(HashKey),
    Random,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HashKey {
    ClientIp,
    Header(String),
    Cookie(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    pub kind: HealthKind,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    /// Consecutive successes before a server is marked up.
    pub healthy: u32,
    /// Consecutive failures before a server is marked down.
    pub unhealthy: u32,
    pub at: Loc,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthKind {
    /// `GET path`; healthy when the status is 2xx or 3xx.
    Http {
        path: String,
    },
    Tcp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassiveHealth {
    /// Consecutive connect failures or 5xx responses that eject a server.
    pub consecutive_failures: u32,
    pub base_ejection_ms: u64,
    pub max_ejection_ms: u64,
    pub at: Loc,
}

impl Default for PassiveHealth {
    /// What an upstream without an `eject` line gets (`eject after 5 for 10s max 5m`): five
    /// consecutive failures eject a server for 10 s, doubling up to 5 minutes.
    fn default() -> Self {
        PassiveHealth {
            consecutive_failures: 5,
            base_ejection_ms: 10_000,
            max_ejection_ms: 300_000,
            at: Loc::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retry {
    /// Extra attempts after the first one.
    pub attempts: u32,
    pub on: Vec<RetryOn>,
    /// Retries may add at most this percentage of recent requests.
    pub budget_percent: u32,
    pub at: Loc,
}

impl Default for Retry {
    /// What an upstream without a `retry` line gets (`retry 1 on connect_error budget 20%`):
    /// a refused connection, which carried nothing, is tried once more on another server.
    fn default() -> Self {
        Retry {
            attempts: 1,
            on: vec![RetryOn::ConnectError],
            budget_percent: 20,
            at: Loc::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryOn {
    ConnectError,
    Timeout,
    Status(u16),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamTimeouts {
    pub connect_ms: u64,
    /// Until the response head has arrived.
    pub response_ms: u64,
    /// How long a pooled idle connection is kept.
    pub idle_ms: u64,
    /// How long an upgraded connection (WebSocket and other tunnels) may pass no byte in
    /// either direction before both sides are closed.
    pub tunnel_ms: u64,
}

impl Default for UpstreamTimeouts {
    fn default() -> Self {
        UpstreamTimeouts {
            connect_ms: 5_000,
            response_ms: 60_000,
            idle_ms: 60_000,
            tunnel_ms: 60_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waf {
    pub name: String,
    pub rulesets: Vec<String>,
    pub rules: Vec<WafRule>,
    /// Request body bytes inspected; `None` = bodies are not inspected.
    pub inspect_body_bytes: Option<u64>,
    /// `import crs "DIR" paranoia N …`: an installed OWASP CRS v4 rule folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crs: Option<CrsImport>,
    /// `mode detect`: evaluate and log, never block.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub detect_only: bool,
    /// `past_limit block`: a body longer than the inspection window is refused (default:
    /// the rest passes uninspected).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub past_limit_block: bool,
    pub at: Loc,
}

/// `import crs "DIR" paranoia N [anomaly_threshold IN OUT] [exclude ID…] [skip_unsupported]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrsImport {
    /// The CRS `rules/` folder (`*.conf` and `*.data`), relative to the configuration file.
    pub dir: String,
    pub paranoia: u8,
    /// Inbound and outbound anomaly thresholds (CRS defaults 5 and 4).
    pub inbound_threshold: Option<u32>,
    pub outbound_threshold: Option<u32>,
    pub exclude: Vec<u32>,
    /// Leave out rules using constructs bext cannot run (reported as warnings) instead of
    /// refusing the configuration.
    pub skip_unsupported: bool,
    pub at: Loc,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WafRule {
    pub name: String,
    pub when: Condition,
    pub action: WafAction,
    pub at: Loc,
}

/// A boolean condition over the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    And(Vec<Condition>),
    Or(Vec<Condition>),
    Not(Box<Condition>),
    Match { subject: Subject, op: MatchOp },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    Path,
    Query,
    Method,
    Host,
    ClientIp,
    Header(String),
    QueryParam(String),
    Cookie(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchOp {
    /// Exact equality (header values: case-sensitive; method: exact).
    Equals(String),
    Prefix(String),
    Contains(String),
    /// A regular expression (regex-automata syntax), unanchored unless written with `^`/`$`.
    Regex(String),
    /// CIDR list, for `client_ip`.
    InCidr(Vec<String>),
    Present,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WafAction {
    Deny { status: u16 },
    Allow,
    Log,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    pub hosts: Vec<HostPattern>,
    pub routes: Vec<Route>,
    /// How request paths are normalised before routing and forwarding.
    #[serde(default, skip_serializing_if = "PathPolicy::is_default")]
    pub paths: PathPolicy,
    /// `redirect https [301|308]`: requests that arrive without TLS are redirected to the
    /// same host, path and query over HTTPS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_https: Option<HttpsRedirect>,
    /// `hsts max_age D [include_subdomains] [preload]`: `Strict-Transport-Security` on the
    /// responses sent over TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hsts: Option<Hsts>,
    pub at: Loc,
}

/// `redirect https [STATUS]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpsRedirect {
    /// 301 or 308 (the default: the method and body are kept).
    pub status: u16,
    /// The port of the location: the first TLS listener's; `None` for 443 (left out).
    pub port: Option<u16>,
    pub at: Loc,
}

/// `hsts max_age D [include_subdomains] [preload]` (RFC 6797).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hsts {
    pub max_age_s: u64,
    pub include_subdomains: bool,
    pub preload: bool,
    pub at: Loc,
}

impl Hsts {
    /// The field value: `max-age=N[; includeSubDomains][; preload]`.
    pub fn value(&self) -> String {
        let mut v = format!("max-age={}", self.max_age_s);
        if self.include_subdomains {
            v.push_str("; includeSubDomains");
        }
        if self.preload {
            v.push_str("; preload");
        }
        v
    }
}

/// How a site normalises request paths (`docs/conformance.md`, "What the origin sees"). Dot
/// segments are always removed and unreserved characters always decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathPolicy {
    /// `merge_slashes on` (the default): `//` becomes `/`.
    pub merge_slashes: bool,
    /// `escaped_slashes`: what to do with `%2F`, `%5C` and `\` in a path.
    pub escaped_slashes: EscapedSlashes,
}

impl Default for PathPolicy {
    fn default() -> Self {
        PathPolicy {
            merge_slashes: true,
            escaped_slashes: EscapedSlashes::Reject,
        }
    }
}

impl PathPolicy {
    pub fn is_default(&self) -> bool {
        *self == PathPolicy::default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscapedSlashes {
    /// Answer 400 (the default): the origin may read them as separators bext did not see.
    Reject,
    /// Route on them and forward them as sent (upper-cased hex), for origins that need them.
    Keep,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostPattern {
    /// Lower-case host name without port.
    Exact(String),
    /// `*.example.com` stored as `example.com`: matches any name with at least one more label.
    Wildcard(String),
    /// `*` or a site without names: the default site.
    Any,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub path: PathMatch,
    /// Empty = any method.
    pub methods: Vec<String>,
    pub headers: Vec<FieldCond>,
    pub query: Vec<FieldCond>,
    /// `client_cert present | cn OP V | dns OP V`: conditions on the connection's verified
    /// client certificate; `name` is `certificate` (present), `cn` (the subject's common
    /// name) or `dns` (true when one of the subjectAltName DNS names matches).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub client_cert: Vec<FieldCond>,
    pub strip_prefix: Option<String>,
    pub rewrite: Option<Rewrite>,
    pub request_headers: Vec<HeaderOp>,
    pub response_headers: Vec<HeaderOp>,
    pub cache: Option<Cache>,
    pub compress: Option<Compress>,
    pub waf: Option<NamedRef>,
    /// `waf NAME exclude ID…`: rules of the WAF left out on this route.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waf_exclude: Vec<u32>,
    pub rate_limit: Option<RateLimit>,
    pub plugins: Vec<Plugin>,
    /// `request_buffering on`: the whole request body is read (within the body limit) before
    /// the upstream is contacted, and forwarded with Content-Length.
    pub request_buffering: bool,
    pub action: Action,
    pub at: Loc,
}

impl Route {
    /// A route matching `path` (any method, no conditions) that runs `action`, with no filter.
    pub fn new(path: PathMatch, action: Action, at: Loc) -> Route {
        Route {
            path,
            methods: vec![],
            headers: vec![],
            query: vec![],
            client_cert: vec![],
            strip_prefix: None,
            rewrite: None,
            request_headers: vec![],
            response_headers: vec![],
            cache: None,
            compress: None,
            waf: None,
            waf_exclude: vec![],
            rate_limit: None,
            plugins: vec![],
            request_buffering: false,
            action,
            at,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PathMatch {
    /// `route = /healthz`
    Exact(String),
    /// `route /api/*` stored as `/api/`; `route /*` stored as `/`.
    Prefix(String),
    /// `route ~ "^/user/([0-9]+)$"`
    Regex(String),
}

/// A condition on one header or query parameter of a route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldCond {
    pub name: String,
    pub op: MatchOp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rewrite {
    /// Regex on the path; the replacement may use `$1`.. `$9` and `{path}`/`{query}`.
    pub pattern: String,
    pub replacement: String,
    pub at: Loc,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeaderOp {
    Set { name: String, value: String },
    Add { name: String, value: String },
    Remove { name: String },
}

/// A route's response cache (`docs/cache.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cache {
    /// Freshness given to storable responses that carry none of their own.
    pub ttl_ms: u64,
    /// Bytes the cache may hold, over all cores.
    pub max_bytes: u64,
    /// `stale-while-revalidate` given to stored responses that carry none of their own.
    pub stale_while_revalidate_ms: Option<u64>,
    /// Request parts added to the key beyond the URI, in order (`key header NAME`,
    /// `key cookie NAME`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key: Vec<CacheRequestPart>,
    /// Requests carrying one of these go past the cache (`bypass header NAME`,
    /// `bypass cookie NAME`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bypass: Vec<CacheRequestPart>,
    /// Query parameters left out of the key (`ignore_query NAME ...`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_query: Vec<String>,
    /// Store 4xx/5xx responses beyond 404, 405, 410, 414 and 501 when they carry explicit
    /// freshness (`store_errors on`; off by default: an attacker-shaped request must not
    /// cache an error page for everyone).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub store_errors: bool,
    /// Store responses carrying `Set-Cookie` (`store_set_cookie on`; off by default).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub store_set_cookie: bool,
    pub at: Loc,
}

impl Cache {
    /// A cache with `ttl` and everything else defaulted.
    pub fn with_ttl(ttl_ms: u64, at: Loc) -> Cache {
        Cache {
            ttl_ms,
            max_bytes: 64 << 20,
            stale_while_revalidate_ms: None,
            key: Vec::new(),
            bypass: Vec::new(),
            ignore_query: Vec::new(),
            store_errors: false,
            store_set_cookie: false,
            at,
        }
    }
}

/// A part of a request the cache looks at: a field by name, or a cookie by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheRequestPart {
    Header(String),
    Cookie(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compress {
    /// In order of preference: the first one the client accepts (at its best q-value) wins.
    pub encodings: Vec<Encoding>,
    /// The level of each offered encoding, written or defaulted ([`Encoding::default_level`]).
    pub levels: BTreeMap<Encoding, u32>,
    /// Responses whose `Content-Length` is below this many bytes are sent as they are.
    pub min_size: u64,
    /// Media types compressed (`text/html`, or `text/*` for a whole top-level type), lower
    /// case, without parameters.
    pub types: Vec<String>,
    pub at: Loc,
}

impl Compress {
    /// Below this a compressed body saves next to nothing: a gzip frame alone is 18 bytes and
    /// a few hundred bytes of text fit in one packet either way, while every response pays for
    /// the encoder's set-up.
    pub const DEFAULT_MIN_SIZE: u64 = 256;

    /// Text formats and the binary formats that are not compressed already (Caddy's and
    /// Cloudflare's lists agree on these): images other than SVG, video, audio, fonts in
    /// WOFF2 and archives are left out, as they gain nothing.
    pub const DEFAULT_TYPES: &'static [&'static str] = &[
        "text/*",
        "application/json",
        "application/javascript",
        "application/xml",
        "application/xhtml+xml",
        "application/rss+xml",
        "application/atom+xml",
        "application/ld+json",
        "application/manifest+json",
        "application/problem+json",
        "application/wasm",
        "application/x-javascript",
        "image/svg+xml",
        "image/x-icon",
        "font/ttf",
        "font/otf",
    ];

    /// The policy for `encodings` with every other setting at its default.
    pub fn with_defaults(encodings: Vec<Encoding>, at: Loc) -> Compress {
        Compress {
            levels: encodings.iter().map(|e| (*e, e.default_level())).collect(),
            encodings,
            min_size: Compress::DEFAULT_MIN_SIZE,
            types: Compress::DEFAULT_TYPES
                .iter()
                .map(|t| (*t).to_string())
                .collect(),
            at,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    Zstd,
    Br,
    Gzip,
}

impl Encoding {
    /// The content-coding token (`Content-Encoding`, `Accept-Encoding`).
    pub fn token(self) -> &'static str {
        match self {
            Encoding::Zstd => "zstd",
            Encoding::Br => "br",
            Encoding::Gzip => "gzip",
        }
    }

    /// The levels the language accepts. zstd stops at 19: above it the window outgrows the
    /// 8 MB that HTTP clients are required to support (RFC 9659 §3); brotli's 10 and 11 are
    /// offline-only speeds but still valid.
    pub fn levels(self) -> std::ops::RangeInclusive<u32> {
        match self {
            Encoding::Zstd => 1..=19,
            Encoding::Br => 0..=11,
            Encoding::Gzip => 1..=9,
        }
    }

    /// gzip 1 (nginx's `gzip_comp_level`), zstd 3 (the library's own default), brotli 4 (the
    /// quality at which brotli beats gzip 6 on size at about gzip's speed; 11, the library
    /// default, is two orders of magnitude slower).
    pub fn default_level(self) -> u32 {
        match self {
            Encoding::Zstd => 3,
            Encoding::Br => 4,
            Encoding::Gzip => 1,
        }
    }
}

/// A reference by name to a top-level item (a `waf` block).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedRef {
    pub name: String,
    pub at: Loc,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    /// Sustained rate: `requests` per `per_ms`.
    pub requests: u64,
    pub per_ms: u64,
    pub key: RateKey,
    pub burst: u64,
    pub at: Loc,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateKey {
    ClientIp,
    Header(String),
    Global,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plugin {
    pub path: String,
    pub config: Vec<(String, String)>,
    pub at: Loc,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Proxy {
        upstream: String,
    },
    Respond {
        status: u16,
        body: String,
        content_type: Option<String>,
    },
    /// `location` may contain `{path}`, `{query}`, `{host}`.
    Redirect {
        status: u16,
        location: String,
    },
    Static {
        root: String,
        index: Vec<String>,
    },
}
