//! The `global` block: workers, the admin endpoint, the pid file, request limits, client
//! timeouts, the access log, trusted proxies, per-request metrics and tracing.

use super::args::Args;
use super::Lower;
use crate::ast::{Body, Directive};
use crate::diag;
use bext_ir::{AccessLog, LogFormat, LogTarget, Otlp, TraceParent, Tracing, Workers};
use std::collections::HashMap;

impl Lower<'_> {
    pub(super) fn global(&mut self, d: &Directive) {
        let mut a = self.args(d);
        let Some(body) = self.block(&mut a) else {
            return;
        };
        self.done(&mut a);
        let mut seen = HashMap::new();
        for d in &body.items {
            if !self.known("global", d) || !self.once(&mut seen, d) {
                continue;
            }
            let mut a = self.args(d);
            match d.name.as_str() {
                "workers" => {
                    if a.eat("auto") {
                        self.config.global.workers = Workers::Auto;
                    } else if let Some(n) = self.next_number(&mut a, 1, 1024) {
                        self.config.global.workers = Workers::Count(n as u16);
                    }
                }
                "admin" => self.admin(&mut a),
                "pid_file" => self.config.global.pid_file = self.value(&mut a, "a file path"),
                "metrics" => {
                    if let Some(on) = self.on_off(&mut a, "metrics value") {
                        self.config.global.metrics = on;
                    }
                }
                "trusted_proxies" => {
                    let what = "an address or CIDR such as 10.0.0.0/8";
                    let mut list = vec![];
                    let mut next = self.need(&mut a, what);
                    while let Some(x) = next {
                        if let Some(c) = self.cidr(x) {
                            list.push(c);
                        }
                        next = a.next();
                    }
                    self.config.global.trusted_proxies = list;
                }
                "tracing" => {
                    if let Some(b) = self.block(&mut a) {
                        self.tracing(b, d);
                    }
                }
                "limits" => {
                    if let Some(b) = self.block(&mut a) {
                        self.limits(b);
                    }
                }
                "timeouts" => {
                    if let Some(b) = self.block(&mut a) {
                        self.global_timeouts(b);
                    }
                }
                _ => {
                    // access_log
                    if let Some(x) = self.text(&mut a, "stdout, stderr or a file path") {
                        let target = if x.is_word("stdout") {
                            LogTarget::Stdout
                        } else if x.is_word("stderr") {
                            LogTarget::Stderr
                        } else {
                            LogTarget::File(x.text().to_string())
                        };
                        let mut format = LogFormat::Json;
                        if let Some(f) = a.next() {
                            match self.keyword(f, "log format", &["json", "combined"]) {
                                Some(0) => format = LogFormat::Json,
                                Some(_) => format = LogFormat::Combined,
                                None => {}
                            }
                        }
                        self.config.global.access_log = Some(AccessLog {
                            target,
                            format,
                            at: self.loc(d.name_span),
                        });
                    }
                }
            }
            self.done(&mut a);
        }
    }

    /// `admin ADDR [token_file F]`: a loopback address or a unix socket path, and the file
    /// holding the bearer token callers must present.
    fn admin(&mut self, a: &mut Args<'_>) {
        if let Some(x) = self.text(a, "a loopback address or a unix socket path") {
            let t = x.text();
            if t.starts_with('/') {
                self.config.global.admin = Some(t.to_string());
            } else if let Some(addr) = self.socket_addr(x) {
                match addr.parse::<std::net::SocketAddr>() {
                    Ok(sa) if !sa.ip().is_loopback() => self.emit(
                        diag::error(
                            "E0601",
                            x.span,
                            format!("the admin endpoint cannot listen on `{addr}`: not a loopback address"),
                        )
                        .help("use a loopback address or a unix socket, such as `127.0.0.1:9901` or \"/run/bext/admin.sock\""),
                    ),
                    _ => self.config.global.admin = Some(addr),
                }
            }
        }
        if a.eat("token_file") {
            let Some(x) = self.text(a, "the path of the file holding the token") else {
                return;
            };
            let path = x.text().to_string();
            if self.read_files {
                if let Err(why) = bext_ir::read_admin_token(std::path::Path::new(&path)) {
                    self.emit(
                        diag::error(
                            "E0602",
                            x.span,
                            format!("admin token file `{path}` cannot be used: {why}"),
                        )
                        .help("write the token on one line in a file only its owner can read (`chmod 600`)"),
                    );
                }
            }
            self.config.global.admin_token_file = Some(path);
        }
    }

    /// `tracing { sample R  parent trusted|any|none  otlp "URL" [queue N] [interval D]
    /// service NAME }`.
    fn tracing(&mut self, body: &Body, d: &Directive) {
        let mut t = Tracing {
            sample_ppm: Tracing::ALL,
            parent: TraceParent::Trusted,
            otlp: None,
            service: "bext".to_string(),
            at: self.loc(d.name_span),
        };
        let mut seen = HashMap::new();
        for d in &body.items {
            if !self.known("tracing", d) || !self.once(&mut seen, d) {
                continue;
            }
            let mut a = self.args(d);
            match d.name.as_str() {
                "sample" => {
                    if let Some(x) = self.need(&mut a, "a percentage such as `10%` or `0.5%`") {
                        match sample_ppm(x.text()) {
                            Some(ppm) => t.sample_ppm = ppm,
                            None => self.emit(
                                diag::error(
                                    "E0611",
                                    x.span,
                                    format!("invalid sampling rate {}", x.describe()),
                                )
                                .help("write a percentage from 0% to 100% with at most four decimals, such as `5%` or `0.01%`"),
                            ),
                        }
                    }
                }
                "parent" => {
                    if let Some(x) = self.need(&mut a, "trusted, any or none") {
                        match self.keyword(x, "parent policy", &["trusted", "any", "none"]) {
                            Some(0) => t.parent = TraceParent::Trusted,
                            Some(1) => t.parent = TraceParent::Any,
                            Some(_) => t.parent = TraceParent::None,
                            None => {}
                        }
                    }
                }
                "service" => {
                    if let Some(x) = self.text(&mut a, "a service name") {
                        if self.no_control(x, "service name", false) {
                            t.service = x.text().to_string();
                        }
                    }
                }
                _ => {
                    // otlp
                    let Some(x) = self.text(
                        &mut a,
                        "a collector URL such as \"http://127.0.0.1:4318/v1/traces\"",
                    ) else {
                        continue;
                    };
                    let (authority, path) = match otlp_url(x.text()) {
                        Ok(v) => v,
                        Err(why) => {
                            self.emit(
                                diag::error(
                                    "E0610",
                                    x.span,
                                    format!("OTLP endpoint {} cannot be used: {why}", x.describe()),
                                )
                                .help("write an OTLP/HTTP endpoint as http://HOST:PORT/PATH, such as \"http://127.0.0.1:4318/v1/traces\" (a local collector forwards over TLS if needed)"),
                            );
                            continue;
                        }
                    };
                    let mut otlp = Otlp {
                        authority,
                        path,
                        queue: 2048,
                        interval_ms: 1000,
                        at: self.loc(x.span),
                    };
                    loop {
                        if a.eat("queue") {
                            match self.next_number(&mut a, 16, 1_000_000) {
                                Some(n) => otlp.queue = n as u32,
                                None => break,
                            }
                        } else if a.eat("interval") {
                            match self.next_duration(&mut a) {
                                Some(ms) if (10..=60_000).contains(&ms) => otlp.interval_ms = ms,
                                Some(_) => {
                                    self.emit(
                                        diag::error(
                                            "E0610",
                                            x.span,
                                            "the OTLP export interval is out of range",
                                        )
                                        .help("write an interval from 10ms to 60s (default 1s)"),
                                    );
                                    break;
                                }
                                None => break,
                            }
                        } else {
                            break;
                        }
                    }
                    t.otlp = Some(otlp);
                }
            }
            self.done(&mut a);
        }
        self.config.global.tracing = Some(t);
    }

    fn limits(&mut self, body: &Body) {
        let mut seen = HashMap::new();
        for d in &body.items {
            if !self.known("limits", d) || !self.once(&mut seen, d) {
                continue;
            }
            let mut a = self.args(d);
            match d.name.as_str() {
                "headers" => {
                    if let Some(n) = self.next_number(&mut a, 1, 10_000) {
                        self.config.global.limits.headers = n as u32;
                    }
                }
                "connections" => {
                    if let Some(n) = self.next_number(&mut a, 1, 1_000_000) {
                        self.config.global.limits.connections = n as u32;
                    }
                }
                "keepalive_requests" => {
                    if let Some(n) = self.next_number(&mut a, 1, 1_000_000_000) {
                        self.config.global.limits.keepalive_requests = n as u32;
                    }
                }
                name => {
                    if let Some(n) = self.next_size(&mut a) {
                        let l = &mut self.config.global.limits;
                        match name {
                            "header_bytes" => l.header_bytes = n,
                            "uri_bytes" => l.uri_bytes = n,
                            _ => l.body_bytes = n,
                        }
                    }
                }
            }
            self.done(&mut a);
        }
    }

    fn global_timeouts(&mut self, body: &Body) {
        let mut seen = HashMap::new();
        for d in &body.items {
            if !self.known("global timeouts", d) || !self.once(&mut seen, d) {
                continue;
            }
            let mut a = self.args(d);
            if let Some(ms) = self.next_duration(&mut a) {
                let t = &mut self.config.global.timeouts;
                match d.name.as_str() {
                    "header" => t.header_ms = ms,
                    "body" => t.body_ms = ms,
                    "idle" => t.idle_ms = ms,
                    _ => t.drain_ms = ms,
                }
            }
            self.done(&mut a);
        }
    }
}

/// A sampling rate written as a percentage with up to four decimals (`5%`, `0.01%`), in
/// millionths.
fn sample_ppm(text: &str) -> Option<u32> {
    let num = text.strip_suffix('%')?;
    let (whole, frac) = num.split_once('.').unwrap_or((num, ""));
    if whole.is_empty()
        || whole.len() > 3
        || frac.len() > 4
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || (num.contains('.') && frac.is_empty())
    {
        return None;
    }
    let mut ppm: u32 = whole.parse::<u32>().ok()? * 10_000;
    let mut scale = 1000;
    for b in frac.bytes() {
        ppm += u32::from(b - b'0') * scale;
        scale /= 10;
    }
    (ppm <= Tracing::ALL).then_some(ppm)
}

/// `http://HOST:PORT/PATH` split into `HOST:PORT` (port 4318 when absent) and the path
/// (`/v1/traces` when absent).
fn otlp_url(url: &str) -> Result<(String, String), &'static str> {
    let Some(rest) = url.strip_prefix("http://") else {
        return Err(if url.starts_with("https://") {
            "bext exports over plain HTTP to a collector on the machine or the local network"
        } else {
            "it is not an http:// URL"
        });
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/v1/traces"),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err("it names no host");
    }
    if path.bytes().any(|b| !(0x21..0x7f).contains(&b)) || path.contains('?') || path.contains('#')
    {
        return Err("its path holds a space, a control character, a query or a fragment");
    }
    let has_port = match authority.rfind(':') {
        Some(i) => !authority.ends_with(']') && i > authority.rfind(']').unwrap_or(0),
        None => false,
    };
    let authority = if has_port {
        let port = &authority[authority.rfind(':').unwrap_or(0) + 1..];
        match port.parse::<u16>() {
            Ok(p) if p > 0 => authority.to_string(),
            _ => return Err("its port is not a number from 1 to 65535"),
        }
    } else {
        format!("{authority}:4318")
    };
    let host = &authority[..authority.rfind(':').unwrap_or(0)];
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.parse::<std::net::IpAddr>().is_err() && !super::values::valid_host(host) {
        return Err("its host is neither an address nor a host name");
    }
    Ok((authority, path.to_string()))
}

#[cfg(test)]
mod tests {
    use super::{otlp_url, sample_ppm};

    #[test]
    fn sampling_rates_are_percentages_with_up_to_four_decimals() {
        assert_eq!(sample_ppm("100%"), Some(1_000_000));
        assert_eq!(sample_ppm("0%"), Some(0));
        assert_eq!(sample_ppm("5%"), Some(50_000));
        assert_eq!(sample_ppm("0.5%"), Some(5_000));
        assert_eq!(sample_ppm("0.0001%"), Some(1));
        assert_eq!(sample_ppm("12.25%"), Some(122_500));
        for bad in [
            "101%", "0.00001%", "5", "%", ".5%", "5.%", "-1%", "1e2%", "1000%",
        ] {
            assert_eq!(sample_ppm(bad), None, "{bad}");
        }
    }

    #[test]
    fn otlp_urls_are_plain_http_with_a_host() {
        let ok = |u: &str| otlp_url(u).unwrap();
        assert_eq!(
            ok("http://127.0.0.1:4318/v1/traces"),
            ("127.0.0.1:4318".into(), "/v1/traces".into())
        );
        assert_eq!(
            ok("http://collector"),
            ("collector:4318".into(), "/v1/traces".into())
        );
        assert_eq!(
            ok("http://[::1]:9000/x"),
            ("[::1]:9000".into(), "/x".into())
        );
        assert_eq!(ok("http://[::1]/x"), ("[::1]:4318".into(), "/x".into()));
        for bad in [
            "https://c:4318/v1/traces",
            "ftp://c/x",
            "http:///x",
            "http://c:0/x",
            "http://c:99999/x",
            "http://u@c/x",
            "http://c/a b",
            "http://c/x?y",
            "http://bad_host!/x",
        ] {
            assert!(otlp_url(bad).is_err(), "{bad}");
        }
    }
}
