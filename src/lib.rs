//! The `bext` library: wiring a compiled configuration ([`bext_ir::Config`]) to the engine's
//! pipeline and the module crates, and starting it. The binary, the conformance suite and the
//! benchmark harness all start bext through [`start`], so every way of running bext goes
//! through the same compiled pipeline.
//!
//! ```no_run
//! let config = bext::respond_config("127.0.0.1:0", 200, "hello\n");
//! let server = bext::start(config, bext::StartOptions::default()).unwrap();
//! println!("listening on {}", server.local_addrs()[0]);
//! server.shutdown();
//! ```
#![forbid(unsafe_code)]

pub mod diff;
pub mod explain;

use bext_engine::pipeline::{Handler, Respond, RespondBody};
use bext_engine::{Engine, EngineOptions, Pipeline};
use bext_ir as ir;
use std::net::SocketAddr;
use std::path::PathBuf;

pub use bext_engine::{Driver, DriverChoice};

/// How to run a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartOptions {
    /// Worker threads; `None` = the configuration's `workers` (one per core by default).
    pub workers: Option<usize>,
    pub driver: DriverChoice,
    /// Pin each worker to a core.
    pub pin: bool,
}

impl Default for StartOptions {
    fn default() -> Self {
        StartOptions {
            workers: None,
            driver: DriverChoice::DEFAULT,
            pin: true,
        }
    }
}

/// Why a configuration could not be started.
#[derive(Debug)]
pub enum StartError {
    /// Features the engine does not implement yet, each with where it was written.
    Unsupported(Vec<Unsupported>),
    /// The configuration is inconsistent for the engine (unknown upstream, invalid regex...).
    Compile(ir::ConfigError),
    /// Binding, driver or thread failure.
    Engine(bext_engine::StartError),
    /// The pid file could not be written.
    PidFile { path: String, error: std::io::Error },
    /// Certificates, keys or other files of a `tls` block are missing or unusable (E07xx),
    /// each at its `cert` line or its `tls` block.
    Tls(Vec<bext_tls::TlsError>),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Unsupported(list) => {
                for (i, u) in list.iter().enumerate() {
                    if i > 0 {
                        writeln!(f)?;
                    }
                    write!(f, "{u}")?;
                }
                Ok(())
            }
            StartError::Compile(e) => write!(f, "{e}"),
            StartError::Engine(e) => write!(f, "{e}"),
            StartError::PidFile { path, error } => {
                write!(f, "cannot write pid file {path}: {error}")
            }
            StartError::Tls(list) => {
                for (i, e) in list.iter().enumerate() {
                    if i > 0 {
                        writeln!(f)?;
                    }
                    write!(f, "{e}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for StartError {}

/// A configured feature the engine refuses to run rather than silently ignore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// The directive as the operator wrote it (`cache`, `balance least_conn`, ...).
    pub directive: String,
    pub at: ir::Loc,
}

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.at.file.is_empty() {
            write!(
                f,
                "error: `{}` is not implemented by this version of bext's engine",
                self.directive
            )
        } else {
            write!(
                f,
                "{}: error: `{}` is not implemented by this version of bext's engine",
                self.at, self.directive
            )
        }
    }
}

/// The directives [`unsupported_features`] refuses, as it names them: what this version of
/// the engine does not run yet (`bext version` lists them).
pub const NOT_IMPLEMENTED: &[&str] = &[];

/// Every feature of `config` the engine does not implement yet, in file order per section.
/// `bext run` refuses to start when this is not empty: nothing configured is ever ignored.
///
/// Today the engine runs every directive of the language (the last two refused were `http3`
/// and `plugin`), so nothing is refused; a directive the language gains before the engine runs
/// it is refused here by name, at its place, and listed in [`NOT_IMPLEMENTED`].
pub fn unsupported_features(_config: &ir::Config) -> Vec<Unsupported> {
    Vec::new()
}

/// Compile `config` into an engine pipeline: refuse what is not implemented, build the router
/// and the route table.
pub fn compile(config: &ir::Config, generation: u64) -> Result<Pipeline, StartError> {
    compile_with(config, generation, &Limits::new())
}

/// The rate-limit state of a running server, which its reloads keep (see `bext_ratelimit`).
pub type Limits = bext_ratelimit::Registry;

/// [`compile`] for a running server: limits unchanged since its current configuration keep
/// their counts.
pub fn compile_with(
    config: &ir::Config,
    generation: u64,
    limits: &Limits,
) -> Result<Pipeline, StartError> {
    compile_carrying(config, generation, limits, &TlsCarry::default())
}

/// The session resumption state of a running server's TLS listeners, by address, which its
/// reloads carry over: ticket keys and cached sessions stay valid, so clients that return
/// after a reload still resume.
#[derive(Default)]
pub struct TlsCarry(std::sync::Mutex<Vec<(SocketAddr, bext_tls::Resumption)>>);

impl std::fmt::Debug for TlsCarry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsCarry")
    }
}

impl TlsCarry {
    fn get(&self, addr: SocketAddr) -> Option<bext_tls::Resumption> {
        let list = self.0.lock().unwrap_or_else(|e| e.into_inner());
        list.iter()
            .find(|(a, _)| *a == addr)
            .map(|(_, r)| r.clone())
    }

    fn keep(&self, built: &[(SocketAddr, std::sync::Arc<bext_tls::Listener>)]) {
        let mut list = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *list = built
            .iter()
            .map(|(a, l)| (*a, l.resumption().clone()))
            .collect();
    }
}

/// Every `tls` block of `config` loaded and checked (the files read now, on the calling
/// thread), each carrying the resumption state of the listener it replaces.
pub fn load_tls(
    config: &ir::Config,
    carry: &TlsCarry,
) -> Result<Vec<(SocketAddr, std::sync::Arc<bext_tls::Listener>)>, StartError> {
    use std::net::ToSocketAddrs;
    let mut built = Vec::new();
    let mut errors = Vec::new();
    for l in &config.listeners {
        let Some(tls) = &l.tls else { continue };
        let Some(addr) = l.addr.to_socket_addrs().ok().and_then(|mut a| a.next()) else {
            continue;
        };
        let old = carry.get(addr);
        match bext_tls::load_with(tls, &bext_tls::Settings::of(tls), old.as_ref()) {
            Ok(listener) => built.push((addr, std::sync::Arc::new(listener))),
            Err(list) => errors.extend(list.into_iter().map(|mut e| {
                // Point at the `cert` line the finding is about, when the IR knows it.
                if let Some(pair) = e.cert.and_then(|i| tls.certs.get(i)) {
                    if pair.at.line > 0 {
                        e.at = pair.at.clone();
                    }
                }
                e
            })),
        }
    }
    if errors.is_empty() {
        Ok(built)
    } else {
        Err(StartError::Tls(errors))
    }
}

/// The TLS of every upstream server with `tls` (its client configuration, loaded and checked
/// now), indexed like the upstreams and their servers.
pub fn load_upstream_tls(
    config: &ir::Config,
) -> Result<Vec<Vec<Option<bext_tls::UpstreamTls>>>, StartError> {
    bext_tls::load_upstreams(config).map_err(StartError::Tls)
}

/// [`compile_with`], the TLS listeners carrying the resumption state in `tls`.
pub fn compile_carrying(
    config: &ir::Config,
    generation: u64,
    limits: &Limits,
    tls: &TlsCarry,
) -> Result<Pipeline, StartError> {
    let refused = unsupported_features(config);
    if !refused.is_empty() {
        return Err(StartError::Unsupported(refused));
    }
    // Every TLS problem of listeners and upstream servers reported together.
    let (tls_listeners, upstream_tls) = match (load_tls(config, tls), load_upstream_tls(config)) {
        (Ok(l), Ok(u)) => (l, u),
        (l, u) => {
            let mut all = Vec::new();
            for e in [l.err(), u.err()].into_iter().flatten() {
                if let StartError::Tls(list) = e {
                    all.extend(list);
                }
            }
            return Err(StartError::Tls(all));
        }
    };
    let router = bext_router::Router::compile(config).map_err(StartError::Compile)?;
    let rewrites =
        std::sync::Arc::new(bext_router::Rewrites::compile(config).map_err(StartError::Compile)?);
    let mut pipeline =
        Pipeline::compile(config, Box::new(router), generation).map_err(StartError::Compile)?;
    let rate_limits = bext_ratelimit::compile(config, limits).map_err(StartError::Compile)?;
    // Stage order per route, whatever the order of lines in the file (see the phase chart in
    // docs/architecture.md): rate limits first, so a refused request costs nothing more.
    for (i, limit) in rate_limits.into_iter().enumerate() {
        if let Some(l) = limit {
            pipeline.add_stage(i, Box::new(l));
        }
    }
    // Then the WAF (before any stage that transforms a body, such as compression): a request
    // over its rate limit is not inspected, and the WAF sees the body as the client sent it.
    for (i, stage) in waf_stages(config)?.into_iter().enumerate() {
        if let Some(s) = stage {
            pipeline.add_stage(i, Box::new(s));
        }
    }
    // Then the plugins, in the order written: a request refused by a limit or the WAF never
    // reaches one, and as body filters they see the bytes before compression does.
    for (i, stages) in plugin_stages(config)?.into_iter().enumerate() {
        for s in stages {
            pipeline.add_stage(i, Box::new(s));
        }
    }
    // Then compression: it only reads the request there, and acts on the response.
    for (i, r) in config.sites.iter().flat_map(|s| &s.routes).enumerate() {
        if let Some(c) = bext_compress::CompressStage::for_route(r) {
            pipeline.add_stage(i, Box::new(c));
        }
    }
    // Routes are numbered in file order in both tables.
    for (i, route) in pipeline.routes.iter_mut().enumerate() {
        let id = bext_router::RouteId(i as u32);
        route.rewrite = rewrites
            .for_route(id)
            .map(|rw| Box::new(rw) as Box<dyn bext_engine::stage::TargetRewrite>);
    }
    for (def, servers) in pipeline.upstreams.iter_mut().zip(upstream_tls) {
        for (server, tls) in def.servers.iter_mut().zip(servers) {
            server.tls = tls;
        }
    }
    tls.keep(&tls_listeners);
    pipeline.tls = tls_listeners;
    Ok(pipeline)
}

/// The WAF stage of every route with `waf NAME`, by flat route index. Each `waf` block is
/// compiled once (and reused from an earlier load when its rules and settings did not change);
/// its routes share it.
fn waf_stages(config: &ir::Config) -> Result<Vec<Option<bext_waf::stage::WafStage>>, StartError> {
    let mut built: Vec<Option<std::sync::Arc<bext_waf::Waf>>> = vec![None; config.wafs.len()];
    let mut out = Vec::new();
    for site in &config.sites {
        for r in &site.routes {
            let Some(name) = &r.waf else {
                out.push(None);
                continue;
            };
            let Some(i) = config.wafs.iter().position(|w| w.name == name.name) else {
                let msg = format!("no `waf {}` block is defined", name.name);
                return Err(StartError::Compile(ir::ConfigError::new(msg, &name.at)));
            };
            let w = &config.wafs[i];
            if built[i].is_none() {
                let b = bext_waf::stage::build(w).map_err(|e| {
                    StartError::Compile(ir::ConfigError::new(format!("waf {}: {e}", w.name), &w.at))
                })?;
                built[i] = Some(b.waf);
            }
            let waf = built[i].clone().expect("built above");
            out.push(Some(bext_waf::stage::WafStage::new(
                w,
                waf,
                r.waf_exclude.clone(),
            )));
        }
    }
    Ok(out)
}

/// The plugin stages of every route, by flat route index: each `plugin` loaded (compiled once
/// on this thread, or taken from the cache when its module did not change; see
/// `bext_plugins::load`). The first plugin that cannot be loaded fails the compilation, at its
/// directive (`bext check` reports each with its code, E0801–E0805).
fn plugin_stages(
    config: &ir::Config,
) -> Result<Vec<Vec<bext_plugins::stage::PluginStage>>, StartError> {
    let mut out = Vec::new();
    for site in &config.sites {
        for r in &site.routes {
            let mut list = Vec::new();
            for p in &r.plugins {
                let plugin = bext_plugins::load(p)
                    .map_err(|e| StartError::Compile(e.into_config_error()))?;
                let route = bext_engine::metrics::route_label(r);
                list.push(bext_plugins::stage::PluginStage::new(plugin, &route));
            }
            out.push(list);
        }
    }
    Ok(out)
}

/// A running bext.
#[derive(Debug)]
pub struct Server {
    engine: Engine,
    pid_file: Option<PathBuf>,
    /// The global settings it started with: a reload may not change those applied only at
    /// start (see [`restart_only_changes`]).
    started: ir::Global,
    /// Rate-limit counts, kept by reloads for unchanged limits.
    limits: std::sync::Arc<Limits>,
    /// TLS resumption state, kept by reloads.
    tls: std::sync::Arc<TlsCarry>,
}

impl Server {
    /// The bound listener addresses, in the order of the configuration's listeners (a port 0
    /// listener shows the port that was chosen).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        self.engine.local_addrs()
    }

    pub fn driver(&self) -> Driver {
        self.engine.driver()
    }

    pub fn workers(&self) -> usize {
        self.engine.workers()
    }

    /// The generation of the pipeline being served.
    pub fn generation(&self) -> u64 {
        self.engine.generation()
    }

    /// Per worker: (active generation, open connections, requests served).
    pub fn stats(&self) -> Vec<(u64, usize, u64)> {
        self.engine.stats()
    }

    /// The admin endpoint's TCP address (`global { admin ... }`), when one is served over TCP.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.engine.admin_addr()
    }

    /// The admin endpoint's address, TCP or unix socket, when one is served.
    pub fn admin_endpoint(&self) -> Option<bext_engine::admin::AdminAddr> {
        self.engine.admin_endpoint()
    }

    /// Compile `config` and reload it on every core (all or none); returns the new generation.
    /// Errors are the text to show the operator; the running configuration is then kept.
    pub fn reload(&self, config: &ir::Config) -> Result<u64, String> {
        let changed = restart_only_changes(&self.started, &config.global);
        if !changed.is_empty() {
            return Err(format!(
                "error: a reload cannot change `{}`; restart bext to change it. The running configuration is kept.",
                changed.join("`, `")
            ));
        }
        let pipeline =
            compile_carrying(config, 0, &self.limits, &self.tls).map_err(|e| e.to_string())?;
        self.engine.reload(pipeline).map_err(|e| e.to_string())
    }

    /// The rate-limit state a reload of this server compiles against (see [`compile_with`]).
    pub fn limits(&self) -> std::sync::Arc<Limits> {
        self.limits.clone()
    }

    /// The TLS resumption state a reload of this server carries (see [`compile_carrying`]).
    pub fn tls_carry(&self) -> std::sync::Arc<TlsCarry> {
        self.tls.clone()
    }

    /// The control side (reload source, reloads, status), shared with signal handlers and the
    /// admin endpoint.
    pub fn control(&self) -> std::sync::Arc<bext_engine::server::Control> {
        self.engine.control()
    }

    /// Stop accepting, let in-flight requests finish (bounded by the drain timeout), close
    /// idle connections, join the workers and remove the pid file.
    pub fn shutdown(self) {
        let Server {
            engine, pid_file, ..
        } = self;
        engine.shutdown();
        if let Some(p) = pid_file {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn engine_options(config: &ir::Config, opts: &StartOptions) -> EngineOptions {
    let workers = opts.workers.unwrap_or(match config.global.workers {
        ir::Workers::Auto => bext_engine::server::available_cores(),
        ir::Workers::Count(n) => usize::from(n),
    });
    EngineOptions {
        workers: workers.max(1),
        driver: opts.driver,
        pin: opts.pin,
    }
}

/// Compile and serve `config`. Returns once every listener is bound and every worker runs.
pub fn start(config: ir::Config, opts: StartOptions) -> Result<Server, StartError> {
    start_with_stages(config, opts, |_| {})
}

/// [`start`], with `edit` run on the compiled pipeline before it is served: the testing hook
/// through which tests add stages of their own (`Pipeline::add_stage`) to see each phase run.
#[doc(hidden)]
pub fn start_with_stages(
    config: ir::Config,
    opts: StartOptions,
    edit: impl FnOnce(&mut Pipeline),
) -> Result<Server, StartError> {
    let limits = std::sync::Arc::new(Limits::new());
    let tls = std::sync::Arc::new(TlsCarry::default());
    let mut pipeline = compile_carrying(&config, 1, &limits, &tls)?;
    edit(&mut pipeline);
    let mut engine =
        Engine::start(pipeline, engine_options(&config, &opts)).map_err(StartError::Engine)?;
    if let Some(admin) = &config.global.admin {
        let served = resolve_admin(admin).and_then(|addr| {
            let opts = bext_engine::admin::AdminOptions {
                addr,
                token_file: config.global.admin_token_file.as_ref().map(PathBuf::from),
            };
            engine.serve_admin(opts).map_err(StartError::Engine)
        });
        if let Err(e) = served {
            engine.shutdown();
            return Err(e);
        }
    }
    let pid_file = match &config.global.pid_file {
        Some(path) => {
            if let Err(error) = std::fs::write(path, format!("{}\n", std::process::id())) {
                engine.shutdown();
                return Err(StartError::PidFile {
                    path: path.clone(),
                    error,
                });
            }
            Some(PathBuf::from(path))
        }
        None => None,
    };
    Ok(Server {
        engine,
        pid_file,
        started: config.global,
        limits,
        tls,
    })
}

/// The global settings that are applied only at start and differ between `started` and `new`
/// (`workers`, `admin`, `pid_file`): a reload that changes them is refused.
pub fn restart_only_changes(started: &ir::Global, new: &ir::Global) -> Vec<&'static str> {
    let fixed = [
        ("workers", started.workers != new.workers),
        (
            "admin",
            started.admin != new.admin || started.admin_token_file != new.admin_token_file,
        ),
        ("pid_file", started.pid_file != new.pid_file),
    ];
    fixed.iter().filter(|f| f.1).map(|f| f.0).collect()
}

/// A unix socket path (starting with `/`) or an address to resolve.
fn resolve_admin(addr: &str) -> Result<bext_engine::admin::AdminAddr, StartError> {
    use bext_engine::admin::AdminAddr;
    use std::net::ToSocketAddrs;
    if addr.starts_with('/') {
        return Ok(AdminAddr::Unix(PathBuf::from(addr)));
    }
    addr.to_socket_addrs()
        .ok()
        .and_then(|mut it| it.next())
        .map(AdminAddr::Tcp)
        .ok_or_else(|| {
            StartError::Compile(ir::ConfigError::new(
                format!("admin: cannot resolve address `{addr}`"),
                &ir::Loc::default(),
            ))
        })
}

fn cli_loc() -> ir::Loc {
    ir::Loc {
        file: "<command line>".into(),
        line: 1,
        col: 1,
    }
}

fn catch_all(action: ir::Action) -> ir::Site {
    ir::Site {
        hosts: vec![ir::HostPattern::Any],
        routes: vec![ir::Route::new(
            ir::PathMatch::Prefix("/".into()),
            action,
            cli_loc(),
        )],
        paths: Default::default(),
        redirect_https: None,
        hsts: None,
        at: cli_loc(),
    }
}

fn listener(addr: &str) -> ir::Listener {
    ir::Listener {
        addr: addr.to_string(),
        tls: None,
        http3: false,
        quic: None,
        at: cli_loc(),
    }
}

/// `bext respond`: every request is answered with `status` and `body`.
pub fn respond_config(listen: &str, status: u16, body: &str) -> ir::Config {
    ir::Config {
        listeners: vec![listener(listen)],
        sites: vec![catch_all(ir::Action::Respond {
            status,
            body: body.to_string(),
            content_type: None,
        })],
        ..ir::Config::default()
    }
}

/// `bext proxy`: every request is proxied round robin to `to`.
pub fn proxy_config(listen: &str, to: &[String]) -> ir::Config {
    ir::Config {
        listeners: vec![listener(listen)],
        upstreams: vec![ir::Upstream {
            name: "backend".into(),
            servers: to
                .iter()
                .map(|a| ir::Server {
                    addr: a.clone(),
                    weight: 1,
                    backup: false,
                    tls: None,
                    at: cli_loc(),
                })
                .collect(),
            balance: ir::Balance::RoundRobin,
            keepalive: 256,
            health: None,
            // The same defaults as an `upstream` block without `eject` and `retry` lines.
            passive: Some(ir::PassiveHealth::default()),
            retry: Some(ir::Retry::default()),
            timeouts: ir::UpstreamTimeouts::default(),
            max_connections: None,
            max_pending: None,
            at: cli_loc(),
        }],
        sites: vec![catch_all(ir::Action::Proxy {
            upstream: "backend".into(),
        })],
        ..ir::Config::default()
    }
}

/// The built-in origin (`bext origin`): answers every request with `body_bytes` bytes of a
/// repeating text pattern (generated while writing, never held in memory), and sends request
/// bodies back with the same framing. It is a [`respond_config`] whose action the engine runs
/// in echo mode.
pub fn start_origin(
    listen: &str,
    body_bytes: u64,
    opts: StartOptions,
) -> Result<Server, StartError> {
    let mut config = respond_config(listen, 200, "");
    // An origin for tests and benchmarks takes bodies of any size (they are streamed back).
    config.global.limits.body_bytes = u64::MAX;
    let mut pipeline = compile(&config, 1)?;
    for r in &mut pipeline.routes {
        if let Handler::Respond(resp) = &mut r.handler {
            *resp = Respond::new(
                200,
                RespondBody::Generated { len: body_bytes },
                Some("text/plain"),
                &r.response_headers,
                true,
            );
        }
    }
    let engine =
        Engine::start(pipeline, engine_options(&config, &opts)).map_err(StartError::Engine)?;
    Ok(Server {
        engine,
        pid_file: None,
        started: config.global,
        limits: std::sync::Arc::new(Limits::new()),
        tls: std::sync::Arc::new(TlsCarry::default()),
    })
}

/// The configuration `bext run` serves without a file: `listen` proxied to `origin`.
pub fn demo_config(listen: &str, origin: SocketAddr) -> ir::Config {
    proxy_config(listen, &[origin.to_string()])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: u32) -> ir::Loc {
        ir::Loc {
            file: "t.bext".into(),
            line,
            col: 3,
        }
    }

    fn base() -> ir::Config {
        proxy_config("127.0.0.1:0", &["127.0.0.1:9".into()])
    }

    /// The engine runs every directive of the language: nothing is listed as refused, and a
    /// configuration with the last two it refused (`http3` on a listener, a `plugin` in a
    /// route) has nothing refused.
    #[test]
    fn nothing_configured_is_refused_by_the_engine() {
        assert!(NOT_IMPLEMENTED.is_empty());
        let mut c = base();
        c.listeners[0].http3 = true;
        c.sites[0].routes[0].plugins.push(ir::Plugin {
            path: "p.wasm".into(),
            config: vec![],
            at: at(7),
        });
        assert_eq!(unsupported_features(&c), vec![]);
    }

    /// The upstream directives the engine implements: each configuration compiles into a
    /// pipeline with nothing refused.
    #[test]
    fn every_upstream_directive_is_accepted_and_compiles() {
        type Edit = fn(&mut ir::Config);
        let table: &[(&str, Edit)] = &[
            ("balance least_conn", |c| {
                c.upstreams[0].balance = ir::Balance::LeastConn;
                c.upstreams[0].at = at(7);
            }),
            ("balance p2c", |c| {
                c.upstreams[0].balance = ir::Balance::P2c;
                c.upstreams[0].at = at(7);
            }),
            ("balance hash", |c| {
                c.upstreams[0].balance = ir::Balance::Hash(ir::HashKey::ClientIp);
                c.upstreams[0].at = at(7);
            }),
            ("balance random", |c| {
                c.upstreams[0].balance = ir::Balance::Random;
                c.upstreams[0].at = at(7);
            }),
            ("backup", |c| {
                c.upstreams[0].servers[0].backup = true;
                c.upstreams[0].servers[0].at = at(7);
            }),
            ("health", |c| {
                c.upstreams[0].health = Some(ir::HealthCheck {
                    kind: ir::HealthKind::Tcp,
                    interval_ms: 1000,
                    timeout_ms: 1000,
                    healthy: 1,
                    unhealthy: 1,
                    at: at(7),
                })
            }),
            ("passive", |c| {
                c.upstreams[0].passive = Some(ir::PassiveHealth {
                    consecutive_failures: 3,
                    base_ejection_ms: 1,
                    max_ejection_ms: 2,
                    at: at(7),
                })
            }),
            ("retry", |c| {
                c.upstreams[0].retry = Some(ir::Retry {
                    attempts: 1,
                    on: vec![],
                    budget_percent: 10,
                    at: at(7),
                })
            }),
            ("max_connections", |c| {
                c.upstreams[0].max_connections = Some(10);
                c.upstreams[0].at = at(7);
            }),
            ("max_pending", |c| {
                c.upstreams[0].max_pending = Some(10);
                c.upstreams[0].at = at(7);
            }),
            ("header and cookie hashing", |c| {
                c.upstreams[0].balance = ir::Balance::Hash(ir::HashKey::Header("X-User".into()));
                c.upstreams.push(c.upstreams[0].clone());
                c.upstreams[1].name = "second".into();
                c.upstreams[1].balance = ir::Balance::Hash(ir::HashKey::Cookie("sid".into()));
            }),
        ];
        for (directive, edit) in table {
            let mut c = base();
            if *directive == "backup" {
                // An upstream of backups only has nothing to fall back from; keep a primary.
                let mut primary = c.upstreams[0].servers[0].clone();
                primary.addr = "127.0.0.1:10".into();
                c.upstreams[0].servers.push(primary);
            }
            edit(&mut c);
            assert_eq!(unsupported_features(&c), vec![], "{directive}");
            if let Err(e) = compile(&c, 1) {
                panic!("{directive}: {e}");
            }
        }
    }

    /// What no core could balance is refused when the pipeline is compiled, at the upstream.
    #[test]
    fn an_upstream_of_backups_only_does_not_compile() {
        let mut c = base();
        c.upstreams[0].servers[0].backup = true;
        c.upstreams[0].at = at(7);
        match compile(&c, 1) {
            Err(e @ StartError::Compile(_)) => {
                let text = e.to_string();
                assert!(text.contains("only backup servers"), "{text}");
                assert!(text.starts_with("t.bext:7:3"), "{text}");
            }
            other => panic!("expected a compile error, got {other:?}"),
        }
    }

    #[test]
    fn the_quick_command_configurations_have_nothing_to_refuse() {
        for c in [
            base(),
            respond_config("127.0.0.1:0", 200, "x"),
            demo_config("127.0.0.1:0", "127.0.0.1:1".parse().unwrap()),
        ] {
            assert!(unsupported_features(&c).is_empty());
            assert!(compile(&c, 1).is_ok());
        }
    }

    #[test]
    fn an_undefined_waf_reference_is_refused_at_the_reference() {
        let mut c = base();
        c.sites[0].routes[0].waf = Some(ir::NamedRef {
            name: "w".into(),
            at: at(9),
        });
        assert!(unsupported_features(&c).is_empty());
        match compile(&c, 1) {
            Err(StartError::Compile(e)) => assert_eq!(e.at.line, 9),
            other => panic!("{:?}", other.map(|_| ())),
        }
    }
}
