//! Command-line front of the crate: `bext bench ...` and the `bext-bench` binary share it.

use crate::idle::{self, IdleConfig};
use crate::load::{self, LoadConfig};
use crate::rt::Driver;
use crate::servers;
use crate::table::Results;
use clap::{Args, Subcommand};
use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Subcommand, Debug)]
pub enum BenchCmd {
    /// Generate HTTP/1.1 load (closed loop, or open loop with --rate) and report.
    Load(LoadArgs),
    /// Hold idle keep-alive connections and report the server's memory per connection.
    Idle(IdleArgs),
    /// Turn the harness's JSON lines into markdown tables and check the acceptance bars.
    Table(TableArgs),
    /// Canned-responder floor: the least CPU an HTTP responder on this runtime can spend.
    FloorRespond(FloorRespondArgs),
    /// Byte-relay floor: one origin connection per client connection, bytes copied both ways.
    FloorRelay(FloorRelayArgs),
    /// Bare floor: the canned responder on a plain epoll loop without a runtime (one thread).
    FloorBare(FloorBareArgs),
    /// Benchmark origin: a fixed-size body for every request.
    Origin(OriginArgs),
}

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Target: ADDR:PORT or http://HOST:PORT/PATH.
    pub target: String,
    /// Concurrent connections.
    #[arg(short, long, default_value_t = 50)]
    pub connections: usize,
    /// Generator threads (one runtime each).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Open loop at this many requests per second in total; closed loop without it.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Measured window (e.g. 10, 10s, 500ms).
    #[arg(short, long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Warm-up before the measured window; its requests are not counted.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Open a new connection for every request (sends `Connection: close`).
    #[arg(long)]
    pub new_connection_per_request: bool,
    /// Requests written back to back per round trip (closed loop, keep-alive only).
    #[arg(long, default_value_t = 1)]
    pub pipeline: usize,
    /// Request body size in bytes (POST with Content-Length when above 0).
    #[arg(long, default_value_t = 0)]
    pub body_size: usize,
    /// A file whose bytes are the request body (a POST; its type from `--header
    /// "Content-Type: …"`, else application/octet-stream).
    #[arg(long)]
    pub body_file: Option<std::path::PathBuf>,
    /// A request field, `Name: value` (repeatable), e.g. `Accept-Encoding: gzip`.
    #[arg(long = "header", value_parser = parse_header)]
    pub headers: Vec<String>,
    /// Time allowed for one request (or pipelined batch), connect included.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
    #[arg(long, value_enum, default_value = "epoll")]
    pub driver: Driver,
    /// Charge this process's CPU time to the measured requests (repeatable, or comma-separated).
    #[arg(long = "cpu-pid", value_delimiter = ',')]
    pub cpu_pids: Vec<u32>,
    /// KEY=VALUE copied into the report (repeatable).
    #[arg(long = "tag", value_parser = parse_tag)]
    pub tags: Vec<(String, String)>,
    /// Print the report as one JSON line.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct IdleArgs {
    /// Target: ADDR:PORT or http://HOST:PORT/.
    pub target: String,
    #[arg(short, long, default_value_t = 10_000)]
    pub connections: usize,
    /// Connections being opened at once.
    #[arg(long, default_value_t = 200)]
    pub concurrency: usize,
    /// Do not send a request before a connection goes idle.
    #[arg(long)]
    pub no_request: bool,
    /// Wait between the last connection and the memory reading.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub settle: Duration,
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
    #[arg(long, value_enum, default_value = "epoll")]
    pub driver: Driver,
    /// The server's processes whose resident memory is measured (required).
    #[arg(long = "rss-pid", value_delimiter = ',', required = true)]
    pub rss_pids: Vec<u32>,
    #[arg(long = "tag", value_parser = parse_tag)]
    pub tags: Vec<(String, String)>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct TableArgs {
    /// Files of JSON lines written by `load --json` and `idle --json`.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Also write a self-contained HTML page with charts of the same results (CPU per request
    /// and p50/p99 per peer and scenario, with the run-to-run spread) to this file.
    #[arg(long)]
    pub html: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct FloorRespondArgs {
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Response body size in bytes.
    #[arg(long, default_value_t = 100)]
    pub body_size: usize,
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    #[arg(long, value_enum, default_value = "epoll")]
    pub driver: Driver,
}

#[derive(Args, Debug)]
pub struct FloorBareArgs {
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Response body size in bytes.
    #[arg(long, default_value_t = 100)]
    pub body_size: usize,
}

#[derive(Args, Debug)]
pub struct FloorRelayArgs {
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The origin every client connection is relayed to.
    #[arg(long)]
    pub to: SocketAddr,
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    #[arg(long, value_enum, default_value = "epoll")]
    pub driver: Driver,
}

#[derive(Args, Debug)]
pub struct OriginArgs {
    #[arg(long, default_value = "127.0.0.1:9000")]
    pub listen: SocketAddr,
    /// Response body size in bytes.
    #[arg(long, default_value_t = 1024)]
    pub body_size: usize,
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    #[arg(long, value_enum, default_value = "epoll")]
    pub driver: Driver,
}

/// Runs one bench command; the exit code is 0 when it ran, 1 when it could not, 2 on bad input.
pub fn main(cmd: BenchCmd) -> ExitCode {
    match cmd {
        BenchCmd::Load(a) => load_cmd(a),
        BenchCmd::Idle(a) => idle_cmd(a),
        BenchCmd::Table(a) => table_cmd(a),
        BenchCmd::FloorRespond(a) => {
            announce(a.listen, "floor-respond");
            served(servers::respond_floor(
                a.listen,
                a.workers,
                a.driver,
                a.body_size,
            ))
        }
        BenchCmd::FloorBare(a) => {
            announce(a.listen, "floor-bare");
            served(crate::bare::respond_bare(a.listen, a.body_size))
        }
        BenchCmd::FloorRelay(a) => {
            announce(a.listen, "floor-relay");
            served(servers::relay_floor(a.listen, a.to, a.workers, a.driver))
        }
        BenchCmd::Origin(a) => {
            announce(a.listen, "origin");
            served(servers::origin(a.listen, a.workers, a.driver, a.body_size))
        }
    }
}

fn announce(addr: SocketAddr, what: &str) {
    eprintln!("{what} listening on {addr}");
}

fn served(r: std::io::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn load_cmd(a: LoadArgs) -> ExitCode {
    let (target, host, path) = match parse_target(&a.target) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let body = match &a.body_file {
        Some(p) => match std::fs::read(p) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("error: {}: {e}", p.display());
                return ExitCode::from(2);
            }
        },
        None => Vec::new(),
    };
    let cfg = LoadConfig {
        target,
        host,
        path,
        connections: a.connections,
        threads: a.threads,
        rate: a.rate,
        warmup: a.warmup,
        duration: a.duration,
        keep_alive: !a.new_connection_per_request,
        pipeline: a.pipeline,
        body_size: a.body_size,
        body,
        headers: a.headers,
        timeout: a.timeout,
        driver: a.driver,
        cpu_pids: a.cpu_pids,
        tags: a.tags.into_iter().collect::<BTreeMap<_, _>>(),
    };
    if let Err(e) = cfg.validate() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    match load::run(&cfg) {
        Ok(report) => {
            if a.json {
                match serde_json::to_string(&report) {
                    Ok(j) => println!("{j}"),
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::from(1);
                    }
                }
            } else {
                print!("{}", report.text());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn idle_cmd(a: IdleArgs) -> ExitCode {
    let (target, host, _) = match parse_target(&a.target) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let cfg = IdleConfig {
        target,
        host,
        connections: a.connections,
        concurrency: a.concurrency,
        request_first: !a.no_request,
        settle: a.settle,
        timeout: a.timeout,
        driver: a.driver,
        rss_pids: a.rss_pids,
        tags: a.tags.into_iter().collect(),
    };
    match idle::run(&cfg) {
        Ok(r) => {
            if a.json {
                match serde_json::to_string(&r) {
                    Ok(j) => println!("{j}"),
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::from(1);
                    }
                }
            } else {
                print!("{}", r.text());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn table_cmd(a: TableArgs) -> ExitCode {
    let mut text = String::new();
    for f in &a.files {
        match std::fs::read_to_string(f) {
            Ok(t) => {
                text.push_str(&t);
                text.push('\n');
            }
            Err(e) => {
                eprintln!("error: {}: {e}", f.display());
                return ExitCode::from(1);
            }
        }
    }
    match Results::parse(&text) {
        Ok(r) => {
            print!("{}", r.markdown());
            if let Some(path) = &a.html {
                let title = (a.files.iter())
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ");
                if let Err(e) = std::fs::write(path, crate::html::page(&r, &title)) {
                    eprintln!("error: {}: {e}", path.display());
                    return ExitCode::from(1);
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// `ADDR:PORT` or `http://HOST:PORT/PATH` → (socket address, Host header, path).
pub fn parse_target(s: &str) -> Result<(SocketAddr, String, String), String> {
    let rest = match s.strip_prefix("http://") {
        Some(r) => r,
        None if s.contains("://") => {
            return Err(format!("{s}: only http:// targets are supported"))
        }
        None => s,
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let authority_with_port = if authority.contains(':') && !authority.ends_with(']') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let addr = authority_with_port
        .to_socket_addrs()
        .map_err(|e| format!("{s}: {e}"))?
        .next()
        .ok_or_else(|| format!("{s}: no address"))?;
    Ok((addr, authority.to_string(), path.to_string()))
}

/// `10`, `10s`, `1.5s`, `500ms` → a duration.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s}: expected seconds (10, 10s) or milliseconds (500ms)"))?;
    if !(v.is_finite() && v >= 0.0) {
        return Err(format!("{s}: must be a non-negative duration"));
    }
    Ok(Duration::from_secs_f64(v * scale))
}

fn parse_tag(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("{s}: expected KEY=VALUE"))?;
    Ok((k.to_string(), v.to_string()))
}

/// `Name: value`, with a token for a name and no line break anywhere.
fn parse_header(s: &str) -> Result<String, String> {
    let (name, value) = s
        .split_once(':')
        .ok_or_else(|| format!("`{s}`: expected `Name: value`"))?;
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(token) {
        return Err(format!("`{name}` is not a field name"));
    }
    if value.contains(['\r', '\n']) {
        return Err("a field value cannot hold a line break".into());
    }
    Ok(format!("{name}: {}", value.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let cases = [
            (
                "127.0.0.1:8080",
                Ok(("127.0.0.1:8080", "127.0.0.1:8080", "/")),
            ),
            (
                "http://127.0.0.1:81/a/b?q=1",
                Ok(("127.0.0.1:81", "127.0.0.1:81", "/a/b?q=1")),
            ),
            ("http://127.0.0.1/", Ok(("127.0.0.1:80", "127.0.0.1", "/"))),
            (
                "https://127.0.0.1/",
                Err("https://127.0.0.1/: only http:// targets are supported"),
            ),
        ];
        for (input, want) in cases {
            let got = parse_target(input).map(|(a, h, p)| (a.to_string(), h, p));
            let want = want
                .map(|(a, h, p)| (a.to_string(), h.to_string(), p.to_string()))
                .map_err(str::to_string);
            assert_eq!(got, want, "{input}");
        }
    }

    #[test]
    fn durations() {
        let cases = [
            ("10", Ok(Duration::from_secs(10))),
            ("2s", Ok(Duration::from_secs(2))),
            ("1.5s", Ok(Duration::from_millis(1500))),
            ("250ms", Ok(Duration::from_millis(250))),
            (
                "soon",
                Err("soon: expected seconds (10, 10s) or milliseconds (500ms)".to_string()),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(parse_duration(input), want, "{input}");
        }
    }

    #[test]
    fn tags() {
        assert_eq!(parse_tag("peer=nginx"), Ok(("peer".into(), "nginx".into())));
        assert_eq!(parse_tag("peer"), Err("peer: expected KEY=VALUE".into()));
    }
}
