//! `upstream NAME { ... }`: the servers a route proxies to and how they are chosen, checked and
//! retried.

use super::args::Args;
use super::values::valid_host;
use super::Lower;
use crate::ast::{Arg, ArgKind, Body, Directive};
use crate::diag::{self, suggest};
use bext_ir::{
    Balance, HashKey, HealthCheck, HealthKind, Loc, PassiveHealth, Retry, RetryOn, Server,
    ServerTls, Upstream, UpstreamTimeouts,
};
use std::collections::HashMap;

impl Lower<'_> {
    pub(super) fn upstream(&mut self, d: &Directive) {
        let mut a = self.args(d);
        let Some(name) = self.word(&mut a, "an upstream name") else {
            return;
        };
        let Some(body) = self.block(&mut a) else {
            return;
        };
        self.done(&mut a);
        let at = self.loc(d.name_span);
        // Without `eject` and `retry` lines an upstream gets the defaults, located at its name.
        let mut u = Upstream {
            name: name.raw.clone(),
            servers: vec![],
            balance: Balance::RoundRobin,
            keepalive: 32,
            health: None,
            passive: Some(PassiveHealth {
                at: at.clone(),
                ..PassiveHealth::default()
            }),
            retry: Some(Retry {
                at: at.clone(),
                ..Retry::default()
            }),
            timeouts: UpstreamTimeouts::default(),
            max_connections: None,
            max_pending: None,
            at,
        };
        let mut seen = HashMap::new();
        for d in &body.items {
            if !self.known("upstream", d) {
                continue;
            }
            if d.name != "server" && !self.once(&mut seen, d) {
                continue;
            }
            let mut a = self.args(d);
            let at = self.loc(d.name_span);
            match d.name.as_str() {
                "server" => {
                    if let Some(s) = self.server(&mut a, at) {
                        u.servers.push(s);
                    }
                }
                "balance" => {
                    if let Some(b) = self.balance(&mut a) {
                        u.balance = b;
                    }
                }
                "keepalive" => {
                    if let Some(n) = self.next_number(&mut a, 0, 100_000) {
                        u.keepalive = n as u32;
                    }
                }
                "health" => u.health = self.health(&mut a, at),
                "eject" => u.passive = self.eject(&mut a, at),
                "retry" => u.retry = self.retry(&mut a, at),
                "timeouts" => {
                    if let Some(b) = self.block(&mut a) {
                        self.upstream_timeouts(b, &mut u.timeouts);
                    }
                }
                "max_connections" => u.max_connections = self.next_u32(&mut a, 1),
                _ => u.max_pending = self.next_u32(&mut a, 0),
            }
            self.done(&mut a);
        }
        if u.servers.is_empty() && !body.items.iter().any(|d| d.name == "server") {
            self.emit(
                diag::error(
                    "E0308",
                    name.span,
                    format!("upstream `{}` has no servers", u.name),
                )
                .help("add `server 127.0.0.1:9000`"),
            );
        }
        let declared = body.items.iter().filter(|d| d.name == "server").count();
        if !u.servers.is_empty()
            && u.servers.len() == declared
            && u.servers.iter().all(|s| s.backup)
        {
            self.emit(
                diag::error(
                    "E0314",
                    name.span,
                    format!("every server of upstream `{}` is a backup: no server takes traffic while all are up", u.name),
                )
                .help("backup servers take traffic only when every other server is down; remove `backup` from the servers that should serve"),
            );
        }
        self.spans.upstreams.push(name.span);
        self.config.upstreams.push(u);
    }

    fn server(&mut self, a: &mut Args<'_>, at: Loc) -> Option<Server> {
        let x = self.text(a, "a server address such as `127.0.0.1:9000`")?;
        let addr = self.host_port(x);
        let mut weight = 1;
        let mut backup = false;
        let mut tls: Option<ServerTls> = None;
        let mut sni_ok = true;
        while let Some(y) = a.next() {
            if y.is_word("weight") {
                let Some(w) = self.need(a, "a number") else {
                    break;
                };
                let zero = matches!(w.kind, ArgKind::Number) && w.raw.parse() == Ok(0u64);
                match if zero {
                    Some(0)
                } else {
                    self.number(w, 1, 1000)
                } {
                    Some(0) => {
                        self.emit(
                            diag::error("E0313", w.span, "a server with weight 0 would never take a request")
                                .help("weights run from 1 to 1000; to take a server out of rotation, remove its line or comment it out"),
                        );
                    }
                    Some(n) => weight = n as u32,
                    None => {}
                }
            } else if y.is_word("backup") {
                backup = true;
            } else if y.is_word("tls") {
                tls = Some(ServerTls::default());
            } else if let (Some(t), true) = (tls.as_mut(), y.is_word("sni")) {
                let Some(n) = self.text(a, "a server name such as `app.internal`") else {
                    break;
                };
                t.sni = self.sni_name(n);
                sni_ok &= t.sni.is_some();
            } else if let (Some(t), true) = (tls.as_mut(), y.is_word("ca")) {
                t.ca = self.value(a, "a CA certificate file (PEM)");
            } else if y.is_word("sni") || y.is_word("ca") {
                self.emit(
                    diag::error(
                        "E0105",
                        y.span,
                        format!("`{}` belongs to `tls` on a `server` line", y.text()),
                    )
                    .help(format!(
                        "write `server app.internal:443 tls {} ...`",
                        y.text()
                    )),
                );
                break;
            } else {
                let help = crate::hints::nginx_server_option(y.text())
                    .or_else(|| suggest(y.text(), ["weight", "backup", "tls"]))
                    .unwrap_or_else(|| {
                        "`server` takes an address, then `weight N`, `backup` and `tls [sni NAME] [ca FILE]`".into()
                    });
                self.emit(
                    diag::error(
                        "E0105",
                        y.span,
                        format!("unexpected argument {} to `server`", y.describe()),
                    )
                    .help(help),
                );
                break;
            }
        }
        if !sni_ok {
            return None;
        }
        Some(Server {
            addr: addr?,
            weight,
            backup,
            tls,
            at,
        })
    }

    /// The name of `tls sni NAME`: a DNS name, sent in the handshake and verified in the
    /// server's certificate (E0714 otherwise).
    fn sni_name(&mut self, x: &Arg) -> Option<String> {
        let name = x.text().trim_end_matches('.').to_ascii_lowercase();
        let address = name.parse::<std::net::IpAddr>().is_ok() || name.starts_with('[');
        let dns = !address
            && valid_host(&name)
            && !name.contains('_')
            && name
                .rsplit('.')
                .next()
                .is_some_and(|tld| !tld.bytes().all(|b| b.is_ascii_digit()));
        if dns {
            return Some(name);
        }
        let help = if address {
            "an address is verified without `sni`: leave `sni` out and the server's address is checked against the certificate's IP addresses"
        } else {
            "write a DNS name such as `app.internal`: letters, digits and `-` in labels separated by `.`, no wildcard"
        };
        self.emit(
            diag::error(
                "E0714",
                x.span,
                format!("`{}` is not a server name TLS can send", x.text()),
            )
            .help(help),
        );
        None
    }

    fn host_port(&mut self, x: &Arg) -> Option<String> {
        let t = x.text();
        if t.parse::<std::net::SocketAddr>().is_ok() {
            return Some(t.to_string());
        }
        let ok = t.rsplit_once(':').is_some_and(|(host, port)| {
            port.parse::<u16>().is_ok_and(|p| p > 0) && valid_host(host)
        });
        if ok {
            Some(t.to_string())
        } else {
            self.bad_address(
                x,
                "server address",
                "write host:port, for example `127.0.0.1:9000` or `app.internal:8080`",
            );
            None
        }
    }

    fn balance(&mut self, a: &mut Args<'_>) -> Option<Balance> {
        let x = self.need(a, "a balance policy")?;
        let policies = ["round_robin", "least_conn", "p2c", "random", "hash"];
        Some(match self.keyword(x, "balance policy", &policies)? {
            0 => Balance::RoundRobin,
            1 => Balance::LeastConn,
            2 => Balance::P2c,
            3 => Balance::Random,
            _ => {
                let k = self.need(a, "a hash key: client_ip, header NAME or cookie NAME")?;
                Balance::Hash(
                    match self.keyword(k, "hash key", &["client_ip", "header", "cookie"])? {
                        0 => HashKey::ClientIp,
                        1 => {
                            let n = self.need(a, "a header name")?;
                            HashKey::Header(self.header_name(n)?.to_ascii_lowercase())
                        }
                        _ => HashKey::Cookie(self.value(a, "a cookie name")?),
                    },
                )
            }
        })
    }

    fn health(&mut self, a: &mut Args<'_>, at: Loc) -> Option<HealthCheck> {
        let x = self.need(a, "`http PATH` or `tcp`")?;
        let kind = match self.keyword(x, "health check kind", &["http", "tcp"])? {
            0 => {
                let p = self.need(a, "a path such as \"/healthz\"")?;
                HealthKind::Http {
                    path: self.path(p)?,
                }
            }
            _ => HealthKind::Tcp,
        };
        let mut h = HealthCheck {
            kind,
            interval_ms: 5_000,
            timeout_ms: 1_000,
            healthy: 2,
            unhealthy: 3,
            at,
        };
        let opts = ["every", "timeout", "healthy", "unhealthy"];
        let mut ok = true;
        while let Some(k) = a.next() {
            match self.keyword(k, "health check option", &opts) {
                Some(0) => h.interval_ms = self.next_duration(a).unwrap_or(h.interval_ms),
                Some(1) => h.timeout_ms = self.next_duration(a).unwrap_or(h.timeout_ms),
                Some(2) => h.healthy = self.next_u32(a, 1).unwrap_or(h.healthy),
                Some(3) => h.unhealthy = self.next_u32(a, 1).unwrap_or(h.unhealthy),
                _ => ok = false,
            }
        }
        ok.then_some(h)
    }

    /// `eject after N [for D] [max D]`, or `eject off`.
    fn eject(&mut self, a: &mut Args<'_>, at: Loc) -> Option<PassiveHealth> {
        let mut p = PassiveHealth {
            at,
            ..PassiveHealth::default()
        };
        if a.peek().is_none() {
            self.missing(a, "`after N` (consecutive failures) or `off`");
            return None;
        }
        if a.eat("off") {
            return None;
        }
        while let Some(k) = a.next() {
            match self.keyword(k, "eject option", &["after", "for", "max"]) {
                Some(0) => p.consecutive_failures = self.next_u32(a, 1)?,
                Some(1) => p.base_ejection_ms = self.next_duration(a)?,
                Some(2) => p.max_ejection_ms = self.next_duration(a)?,
                _ => return None,
            }
        }
        Some(p)
    }

    /// `retry N [on ...] [budget P%]`, or `retry off`.
    fn retry(&mut self, a: &mut Args<'_>, at: Loc) -> Option<Retry> {
        if a.eat("off") {
            return None;
        }
        let attempts = self.next_number(a, 0, 10)? as u32;
        let mut r = Retry {
            attempts,
            on: vec![],
            budget_percent: 20,
            at,
        };
        let mut ok = true;
        while let Some(k) = a.next() {
            if k.is_word("on") {
                while let Some(c) = a.peek() {
                    if c.is_word("budget") {
                        break;
                    }
                    a.next();
                    if matches!(c.kind, ArgKind::Number) {
                        match c.raw.parse::<u16>() {
                            Ok(s) if (500..=599).contains(&s) => r.on.push(RetryOn::Status(s)),
                            _ => {
                                ok = false;
                                self.emit(
                                    diag::error("E0207", c.span, format!("cannot retry on status {}", c.raw))
                                        .help("retries are allowed on 5xx statuses, connect_error and timeout"),
                                );
                            }
                        }
                    } else {
                        match self.keyword(c, "retry condition", &["connect_error", "timeout"]) {
                            Some(0) => r.on.push(RetryOn::ConnectError),
                            Some(_) => r.on.push(RetryOn::Timeout),
                            None => ok = false,
                        }
                    }
                }
            } else if k.is_word("budget") {
                let x = self.need(a, "a percentage such as `20%`")?;
                r.budget_percent = self.percent(x)?;
            } else {
                ok = false;
                let help = suggest(k.text(), ["on", "budget"]).unwrap_or_else(|| {
                    "write `retry 2 on connect_error 502 503 budget 20%`".into()
                });
                self.emit(
                    diag::error(
                        "E0105",
                        k.span,
                        format!("unexpected argument {} to `retry`", k.describe()),
                    )
                    .help(help),
                );
            }
        }
        if r.on.is_empty() {
            r.on.push(RetryOn::ConnectError);
        }
        ok.then_some(r)
    }

    fn upstream_timeouts(&mut self, body: &Body, t: &mut UpstreamTimeouts) {
        let mut seen = HashMap::new();
        for d in &body.items {
            if !self.known("upstream timeouts", d) || !self.once(&mut seen, d) {
                continue;
            }
            let mut a = self.args(d);
            if let Some(ms) = self.next_duration(&mut a) {
                match d.name.as_str() {
                    "connect" => t.connect_ms = ms,
                    "response" => t.response_ms = ms,
                    "idle" => t.idle_ms = ms,
                    _ => t.tunnel_ms = ms,
                }
            }
            self.done(&mut a);
        }
    }
}
