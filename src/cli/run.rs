//! `bext run`, `bext proxy`, `bext respond`, `bext origin`: build a configuration (from a file
//! or from flags), start it through `bext::start`, print where it listens, and stop cleanly on
//! SIGTERM/SIGINT (stop accepting, drain in-flight requests, exit 0). `bext run FILE` also
//! reloads FILE on SIGHUP (and on `POST /reload` of its admin endpoint): see
//! `docs/operations.md`.
use bext::{DriverChoice, Server, StartOptions};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Options shared by every serving command.
#[derive(Args, Debug, Clone)]
pub struct EngineArgs {
    /// Worker threads, 1 to 1024 (default: the configuration's `workers`, else one per core).
    #[arg(long, value_parser = parse_workers)]
    pub workers: Option<usize>,
    /// I/O driver: auto (io_uring when the kernel allows it, epoll otherwise), epoll or
    /// io-uring.
    #[arg(long, default_value = "auto", value_parser = parse_driver)]
    pub driver: DriverChoice,
    /// Do not pin workers to cores.
    #[arg(long)]
    pub no_pin: bool,
}

fn parse_driver(s: &str) -> Result<DriverChoice, String> {
    s.parse()
}

/// The range `workers` takes in a configuration file (E0204 outside it).
fn parse_workers(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n @ 1..=1024) => Ok(n),
        _ => Err("a number from 1 to 1024 (as `workers` in a configuration)".into()),
    }
}

/// The help of every `--listen`, saying what [`parse_listen`] accepts.
const LISTEN_HELP: &str = "Address to listen on: ip:port, [ipv6]:port, :port (every address, \
                           as `listen :PORT` in a file) or a bare port (127.0.0.1 only)";

/// What `--listen` says where to listen: `ip:port`, `[ipv6]:port` or `host:port` as written;
/// `:port` is every address, as in a `.bext` file (`listen :8080` is `0.0.0.0:8080`); a bare
/// port is this machine only (`127.0.0.1`), the quick commands' default host.
pub fn parse_listen(s: &str) -> Result<String, String> {
    let port_only = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    let full = if port_only(s) {
        format!("127.0.0.1:{s}")
    } else if s.strip_prefix(':').is_some_and(port_only) {
        format!("0.0.0.0{s}")
    } else {
        s.to_string()
    };
    let valid = full.parse::<std::net::SocketAddr>().is_ok()
        || full
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if valid {
        Ok(full)
    } else {
        Err("write ip:port, [ipv6]:port, :port or a port, for example 127.0.0.1:8080".into())
    }
}

impl EngineArgs {
    fn options(&self) -> StartOptions {
        StartOptions {
            workers: self.workers,
            driver: self.driver,
            pin: !self.no_pin,
        }
    }
}

#[derive(Args)]
pub struct RunArgs {
    /// The configuration to serve; without it, a demo: a proxy on --listen (127.0.0.1:8080)
    /// in front of a built-in origin.
    pub file: Option<PathBuf>,
    /// The demo's address, without FILE only (a file says where it listens): ip:port,
    /// [ipv6]:port, :port (every address) or a bare port (127.0.0.1 only) [default:
    /// 127.0.0.1:8080].
    #[arg(long, conflicts_with = "file", value_parser = parse_listen)]
    pub listen: Option<String>,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Args)]
pub struct ProxyArgs {
    #[arg(long, default_value = "127.0.0.1:8080", value_parser = parse_listen, help = LISTEN_HELP)]
    pub listen: String,
    /// Upstream servers, comma-separated (round robin).
    #[arg(long, required = true, value_delimiter = ',')]
    pub to: Vec<String>,
    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// TLS on the listener of a quick command.
#[derive(Args)]
pub struct TlsArgs {
    /// Serve TLS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<String>,
    /// The certificate's private key (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<String>,
    /// Stateless session tickets (sessions resume from the server's cache either way).
    #[arg(long, value_parser = ["on", "off"], default_value = "on", requires = "tls_cert")]
    pub tls_session_tickets: String,
}

impl TlsArgs {
    /// `config`'s listener made a TLS one, when asked.
    fn apply(&self, config: &mut bext_ir::Config) {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return;
        };
        let mut tls = bext_ir::Tls::new(
            vec![bext_ir::CertPair::new(None, cert, key)],
            bext_ir::Loc::default(),
        );
        tls.tickets = self.tls_session_tickets == "on";
        for l in &mut config.listeners {
            l.tls = Some(tls.clone());
        }
    }
}

#[derive(Args)]
pub struct RespondArgs {
    #[arg(long, default_value = "127.0.0.1:8080", value_parser = parse_listen, help = LISTEN_HELP)]
    pub listen: String,
    /// Status code of every response.
    #[arg(long, default_value_t = 200)]
    pub status: u16,
    /// Body of every response.
    #[arg(long, default_value = "Hello from bext\n")]
    pub body: String,
    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Args)]
pub struct OriginArgs {
    #[arg(long, default_value = "127.0.0.1:9000", value_parser = parse_listen, help = LISTEN_HELP)]
    pub listen: String,
    /// Size of every response body (request bodies are echoed instead).
    #[arg(long, default_value_t = 64)]
    pub body_bytes: u64,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// Register the stop signals before anything is printed, so a signal sent right after the
/// "listening on" line is never missed.
fn stop_signals() -> Option<signal_hook::iterator::Signals> {
    signals(&[signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT])
}

fn signals(list: &[i32]) -> Option<signal_hook::iterator::Signals> {
    match signal_hook::iterator::Signals::new(list) {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!("bext: cannot install signal handlers: {e}");
            None
        }
    }
}

fn announce(server: &Server, what: &str) {
    let mut out = std::io::stdout().lock();
    for a in server.local_addrs() {
        let _ = writeln!(out, "listening on {a}");
    }
    if let Some(a) = server.admin_endpoint() {
        let _ = writeln!(out, "admin on {a}");
    }
    let _ = out.flush();
    eprintln!(
        "bext: {what}; {} worker(s) on {}; stop with Ctrl-C or SIGTERM",
        server.workers(),
        server.driver()
    );
}

fn serve_until_signal(
    servers: Vec<Server>,
    mut signals: Option<signal_hook::iterator::Signals>,
) -> ExitCode {
    if let Some(sig) = signals.as_mut() {
        for s in sig.forever() {
            if s == signal_hook::consts::SIGHUP {
                reload_on_signal(&servers);
                continue;
            }
            eprintln!("bext: signal {s}: draining");
            bext_engine::notify::stopping();
            break;
        }
    } else {
        // Without handlers the default action of SIGTERM/SIGINT ends the process.
        loop {
            std::thread::park();
        }
    }
    for s in servers {
        s.shutdown();
    }
    eprintln!("bext: stopped");
    ExitCode::SUCCESS
}

/// Under systemd (`Type=notify`, `NOTIFY_SOCKET` set): tell it the service is ready, and with
/// `WatchdogSec=` ping its watchdog for as long as every worker keeps ticking. Nothing without
/// `NOTIFY_SOCKET`.
fn systemd_ready(server: &Server, path: &std::path::Path) {
    use bext_engine::notify;
    notify::ready(&format!(
        "serving {} (generation {})",
        path.display(),
        server.generation()
    ));
    let control = server.control();
    let mut last = control.worker_ticks();
    notify::start_watchdog(move || {
        let now = control.worker_ticks();
        let alive = now.len() == last.len() && now.iter().zip(&last).all(|(n, l)| n > l);
        last = now;
        alive
    });
}

/// SIGHUP: reload the first server (the one serving the file) and log the outcome.
fn reload_on_signal(servers: &[Server]) {
    let Some(server) = servers.first() else {
        return;
    };
    match server.control().reload_from_source() {
        Ok(g) => eprintln!("bext: reloaded: generation {g}"),
        Err(m) => eprintln!("bext: reload failed; the running configuration is kept:\n{m}"),
    }
}

/// The reload source of `bext run FILE`: re-read FILE (and its includes), compile it like at
/// start-up, and refuse changes that only a restart can apply.
///
/// Each compiled reload also leaves, for the admin endpoint's answer, what it changes for
/// routing (`bext::diff`) against the configuration running now, which a committed reload
/// replaces.
fn file_source(
    path: PathBuf,
    started: bext_ir::Global,
    limits: std::sync::Arc<bext::Limits>,
    tls: std::sync::Arc<bext::TlsCarry>,
    running: bext_ir::Config,
    control: &std::sync::Arc<bext_engine::server::Control>,
) -> bext_engine::server::ReloadSource {
    use std::sync::{Arc, Mutex};
    let running = Arc::new(Mutex::new(running));
    let pending: Arc<Mutex<Option<bext_ir::Config>>> = Arc::new(Mutex::new(None));
    // Weak: the source lives in the control side it reports to.
    let reporter = Arc::downgrade(control);
    {
        let (running, pending) = (running.clone(), pending.clone());
        control.on_reload(Box::new(move |_| {
            let next = pending.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(c) = next {
                *running.lock().unwrap_or_else(|e| e.into_inner()) = c;
            }
        }));
    }
    Box::new(move || {
        let compiled = bext_dsl::compile_file(&path).map_err(|f| f.render_human())?;
        if !compiled.warnings.is_empty() {
            eprint!(
                "{}",
                bext_dsl::render_human(&compiled.warnings, &compiled.sources)
            );
        }
        let changed = bext::restart_only_changes(&started, &compiled.config.global);
        if !changed.is_empty() {
            return Err(format!(
                "{}: error: a reload cannot change `{}`; restart bext to change it. The running configuration is kept.",
                path.display(),
                changed.join("`, `")
            ));
        }
        let pipeline = bext::compile_carrying(&compiled.config, 0, &limits, &tls)
            .map_err(|e| e.to_string())?;
        if let Some(control) = reporter.upgrade() {
            let old = running.lock().unwrap_or_else(|e| e.into_inner());
            let note = bext::diff::diff(&old, &compiled.config).map(|d| d.to_json().to_string());
            control.set_reload_note(note.ok());
        }
        *pending.lock().unwrap_or_else(|e| e.into_inner()) = Some(compiled.config);
        Ok(pipeline)
    })
}

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("{e}");
    ExitCode::from(1)
}

pub fn run(a: RunArgs) -> ExitCode {
    let Some(path) = a.file else {
        let listen = a.listen.as_deref().unwrap_or("127.0.0.1:8080");
        return run_demo(listen, &a.engine, stop_signals());
    };
    let signals = signals(&[
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ]);
    let compiled = match bext_dsl::compile_file(&path) {
        Ok(c) => c,
        Err(f) => {
            eprint!("{}", f.render_human());
            return ExitCode::from(1);
        }
    };
    let bext_dsl::Compiled {
        config,
        warnings,
        sources,
    } = compiled;
    let started = config.global.clone();
    let initial = config.clone();
    // Plugins that cannot load are reported beside any refusal, as `bext check` reports them.
    let plugins = crate::cli::check::plugin_diagnostics(&config, &sources);
    match bext::start(config, a.engine.options()) {
        Ok(server) => {
            if !warnings.is_empty() {
                eprint!("{}", bext_dsl::render_human(&warnings, &sources));
            }
            server.control().set_source(file_source(
                path.clone(),
                started,
                server.limits(),
                server.tls_carry(),
                initial,
                &server.control(),
            ));
            announce(
                &server,
                &format!("serving {}; reload with SIGHUP", path.display()),
            );
            systemd_ready(&server, &path);
            serve_until_signal(vec![server], signals)
        }
        Err(e) => {
            // A configuration the engine refuses is reported as `bext check` reports it: the
            // warnings and every refusal, each with its code, place and hint.
            match crate::cli::check::refusal(&sources, &e) {
                Some(refused) => {
                    let mut all: Vec<_> =
                        warnings.into_iter().chain(plugins).chain(refused).collect();
                    all.sort_by_key(|d| (d.span.file, d.span.start));
                    eprint!("{}", bext_dsl::render_human(&all, &sources));
                }
                None => {
                    eprint!("{}", bext_dsl::render_human(&warnings, &sources));
                    eprintln!("{e}");
                }
            }
            ExitCode::from(1)
        }
    }
}

fn run_demo(
    listen: &str,
    engine: &EngineArgs,
    signals: Option<signal_hook::iterator::Signals>,
) -> ExitCode {
    let origin_opts = StartOptions {
        workers: Some(1),
        ..engine.options()
    };
    let greeting = bext::respond_config(
        "127.0.0.1:0",
        200,
        &format!("Hello from bext's built-in origin, through the bext proxy on {listen}.\n"),
    );
    let origin = match bext::start(greeting, origin_opts) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let origin_addr = origin.local_addrs()[0];
    let config = bext::demo_config(listen, origin_addr);
    match bext::start(config, engine.options()) {
        Ok(server) => {
            let url = server
                .local_addrs()
                .first()
                .map_or_else(String::new, |a| format!("; try `curl http://{a}/`"));
            announce(
                &server,
                &format!("demo: proxying to the built-in origin at {origin_addr}{url}"),
            );
            serve_until_signal(vec![server, origin], signals)
        }
        Err(e) => {
            origin.shutdown();
            fail(e)
        }
    }
}

pub fn proxy(a: ProxyArgs) -> ExitCode {
    let signals = stop_signals();
    let mut config = bext::proxy_config(&a.listen, &a.to);
    a.tls.apply(&mut config);
    match bext::start(config, a.engine.options()) {
        Ok(server) => {
            announce(&server, &format!("proxying to {}", a.to.join(", ")));
            serve_until_signal(vec![server], signals)
        }
        Err(e) => fail(e),
    }
}

pub fn respond(a: RespondArgs) -> ExitCode {
    let signals = stop_signals();
    let mut config = bext::respond_config(&a.listen, a.status, &a.body);
    a.tls.apply(&mut config);
    match bext::start(config, a.engine.options()) {
        Ok(server) => {
            announce(&server, &format!("responding {}", a.status));
            serve_until_signal(vec![server], signals)
        }
        Err(e) => fail(e),
    }
}

pub fn origin(a: OriginArgs) -> ExitCode {
    let signals = stop_signals();
    match bext::start_origin(&a.listen, a.body_bytes, a.engine.options()) {
        Ok(server) => {
            announce(
                &server,
                &format!(
                    "built-in origin, {}-byte bodies, echoing request bodies",
                    a.body_bytes
                ),
            );
            serve_until_signal(vec![server], signals)
        }
        Err(e) => fail(e),
    }
}
