//! `listen ADDR [tls { cert ... }] [http3 [{ ... }]]`: the sockets bext accepts on.
//!
//! The `tls` block: `cert FILE key FILE [sni NAME] [ocsp FILE|off]` (one or more), `alpn P...`,
//! `client_auth { ca FILE; required|optional }`, `tickets on|off`, `session_cache N`. What
//! needs the files themselves (they exist, keys match, names are covered) is checked by
//! `bext check` with `bext-tls` (E07xx), not here.
//!
//! The `http3` block: QUIC's limits, `max_streams N`, `stream_window SIZE`,
//! `connection_window SIZE`, `idle_timeout DURATION`, each within the bounds the engine
//! enforces (E0320; the connection window at least the stream window, E0321); and
//! `early_data on|off` (0-RTT requests of safe methods, off by default).

use super::Lower;
use crate::ast::{ArgKind, Body, Directive};
use crate::diag::{self, suggest, Span};
use bext_ir::{CertPair, ClientAuth, Listener, Quic, Stapling, Tls};
use std::collections::HashMap;

impl Lower<'_> {
    pub(super) fn listen(&mut self, d: &Directive) {
        let mut a = self.args(d);
        let Some(x) = self.text(&mut a, "an address such as `0.0.0.0:8080`") else {
            return;
        };
        let addr = self.socket_addr(x);
        let mut tls = None;
        let mut http3 = None;
        let mut quic = None;
        // Where `early_data on` was written, for E0322.
        let mut early_data_at = None;
        while let Some(x) = a.next() {
            if x.is_word("tls") {
                let at = self.loc(x.span);
                let mut t = Tls {
                    certs: vec![],
                    alpn: vec![],
                    client_auth: None,
                    tickets: true,
                    session_cache: None,
                    at,
                };
                let mut written = false;
                if let Some(ArgKind::Block(b)) = a.peek().map(|y| &y.kind) {
                    a.next();
                    let mut seen = std::collections::HashMap::new();
                    for c in &b.body.items {
                        if !self.known("tls", c) {
                            continue;
                        }
                        if c.name == "cert" {
                            written = true;
                            if let Some(pair) = self.cert(c) {
                                t.certs.push(pair);
                            }
                            continue;
                        }
                        if self.once(&mut seen, c) {
                            self.tls_setting(c, &mut t);
                        }
                    }
                }
                if !written {
                    self.emit(
                        diag::error("E0306", x.span, "`tls` without a certificate")
                            .help("add `tls { cert \"site.pem\" key \"site.key\" }`"),
                    );
                }
                tls = Some(t);
            } else if x.is_word("http3") {
                http3 = Some(x.span);
                if let Some(ArgKind::Block(b)) = a.peek().map(|y| &y.kind) {
                    a.next();
                    let (q, early_at) = self.quic(&b.body, x.span);
                    quic = Some(q);
                    early_data_at = early_at;
                }
            } else {
                let help = if x.is_word("ssl") {
                    Some("bext writes TLS on the listener as `tls { cert \"site.pem\" key \"site.key\" }`".to_string())
                } else {
                    suggest(x.text(), ["tls", "http3"])
                };
                self.emit(
                    diag::error(
                        "E0105",
                        x.span,
                        format!("unexpected argument {} to `listen`", x.describe()),
                    )
                    .help(help.unwrap_or_else(|| {
                        "`listen` takes an address, then `tls { ... }` and `http3`".into()
                    })),
                );
            }
        }
        if let (Some(span), Some(t)) = (early_data_at, &tls) {
            if t.session_cache == Some(0) {
                self.emit(
                    diag::error(
                        "E0322",
                        span,
                        "`early_data` with `session_cache 0`: no session could carry early data",
                    )
                    .help(
                        "0-RTT resumes sessions from the session cache: remove `session_cache 0` (the default keeps 16384) or `early_data on`",
                    ),
                );
            }
        }
        if let (Some(h), None) = (http3, &tls) {
            self.emit(diag::error("E0312", h, "`http3` needs `tls`").help(
                "HTTP/3 runs over QUIC, which always uses TLS: add `tls { cert ... key ... }`",
            ));
        }
        if let Some(addr) = addr {
            self.spans.listeners.push(x.span);
            self.config.listeners.push(Listener {
                addr,
                tls,
                http3: http3.is_some(),
                quic,
                at: self.loc(d.name_span),
            });
        }
    }

    /// The `http3 { ... }` block at `at`: each limit once, each within its bounds; and where
    /// `early_data on` was written.
    fn quic(&mut self, body: &Body, at: Span) -> (Quic, Option<Span>) {
        let mut q = Quic {
            at: self.loc(at),
            ..Quic::default()
        };
        let mut seen = HashMap::new();
        let mut early_at = None;
        // Where each window was written, for E0321.
        let (mut stream_at, mut connection_at) = (None, None);
        for d in &body.items {
            if !self.known("http3", d) || !self.once(&mut seen, d) {
                continue;
            }
            let mut a = self.args(d);
            let span = a.peek().map_or(d.name_span, |x| x.span);
            match d.name.as_str() {
                "max_streams" => {
                    let (lo, hi) = Quic::STREAMS;
                    q.max_streams = self
                        .next_number(&mut a, 0, u64::MAX)
                        .and_then(|n| {
                            self.quic_bound(span, d, n, (lo.into(), hi.into()), &|n| n.to_string())
                        })
                        .map(|n| n as u32);
                }
                "stream_window" => {
                    q.stream_window = self
                        .next_size(&mut a)
                        .and_then(|n| self.quic_bound(span, d, n, Quic::STREAM_WINDOW, &show_size));
                    stream_at = Some(span);
                }
                "connection_window" => {
                    let bounds = (Quic::STREAM_WINDOW.0, Quic::CONNECTION_WINDOW_MAX);
                    q.connection_window = self
                        .next_size(&mut a)
                        .and_then(|n| self.quic_bound(span, d, n, bounds, &show_size));
                    connection_at = Some(span);
                }
                "early_data" => {
                    q.early_data = self.on_off(&mut a, "`early_data` setting").unwrap_or(false);
                    if q.early_data {
                        early_at = Some(d.name_span);
                    }
                }
                _ => {
                    q.idle_timeout_ms = self.next_duration(&mut a).and_then(|n| {
                        self.quic_bound(span, d, n, Quic::IDLE_TIMEOUT_MS, &show_duration)
                    });
                }
            }
            self.done(&mut a);
        }
        let stream = q.stream_window.unwrap_or(Quic::DEFAULT_STREAM_WINDOW);
        let connection = q
            .connection_window
            .unwrap_or(Quic::DEFAULT_CONNECTION_WINDOW);
        if connection < stream {
            // At the line that was written (the other window is then the default).
            if let Some(span) = connection_at.or(stream_at) {
                let mut b = diag::error(
                    "E0321",
                    span,
                    format!(
                        "the connection window ({}) is smaller than the stream window ({})",
                        show_size(connection),
                        show_size(stream)
                    ),
                )
                .help(format!(
                    "one stream could never use its window: write `connection_window {}` or more",
                    show_size(stream)
                ));
                if let (Some(_), Some(s)) = (connection_at, stream_at) {
                    b = b.label(s, "the stream window");
                }
                self.emit(b);
            }
        }
        (q, early_at)
    }

    /// `n` when it lies within `bounds` (inclusive); E0320 at `span` otherwise, the bounds and
    /// the default shown with `show`.
    fn quic_bound(
        &mut self,
        span: Span,
        d: &Directive,
        n: u64,
        (lo, hi): (u64, u64),
        show: &dyn Fn(u64) -> String,
    ) -> Option<u64> {
        if (lo..=hi).contains(&n) {
            return Some(n);
        }
        let default = match d.name.as_str() {
            "max_streams" => u64::from(Quic::DEFAULT_STREAMS),
            "stream_window" => Quic::DEFAULT_STREAM_WINDOW,
            "connection_window" => Quic::DEFAULT_CONNECTION_WINDOW,
            _ => Quic::DEFAULT_IDLE_TIMEOUT_MS,
        };
        let side = if n < lo { "below" } else { "above" };
        self.emit(
            diag::error(
                "E0320",
                span,
                format!("`{}` {} is {side} its bounds", d.name, show(n)),
            )
            .help(format!(
                "`{}` is from {} to {} (default {})",
                d.name,
                show(lo),
                show(hi),
                show(default)
            )),
        );
        None
    }

    fn cert(&mut self, d: &Directive) -> Option<CertPair> {
        let mut a = self.args(d);
        let cert = self.value(&mut a, "a certificate file");
        let key = if a.eat("key") {
            self.value(&mut a, "a key file")
        } else {
            let b = diag::error("E0104", a.end_span(), "`cert` needs `key FILE`")
                .help("write `cert \"site.pem\" key \"site.key\"`");
            self.emit(b);
            None
        };
        let sni = if a.eat("sni") {
            self.text(&mut a, "a host name")
                .map(|x| x.text().to_ascii_lowercase())
        } else {
            None
        };
        let ocsp = if a.eat("ocsp") {
            match self.text(&mut a, "an OCSP response file or `off`") {
                Some(x) if x.is_word("off") => Stapling::Off,
                Some(x) => Stapling::File(x.text().to_string()),
                None => Stapling::Auto,
            }
        } else {
            Stapling::Auto
        };
        self.done(&mut a);
        Some(CertPair {
            sni,
            cert: cert?,
            key: key?,
            ocsp,
            at: self.loc(d.name_span),
        })
    }

    /// `alpn`, `client_auth`, `tickets`, `session_cache` of a `tls` block.
    fn tls_setting(&mut self, d: &Directive, t: &mut Tls) {
        let mut a = self.args(d);
        match d.name.as_str() {
            "alpn" => {
                let mut any = false;
                while let Some(x) = a.next() {
                    any = true;
                    let p = x.text().to_string();
                    if p == "http/1.1" {
                        t.alpn.push(p);
                    } else {
                        self.emit(
                            diag::error(
                                "E0317",
                                x.span,
                                format!("ALPN protocol `{p}` is not served on this listener"),
                            )
                            .help("bext serves HTTP/1.1 over TLS: write `alpn http/1.1` (a protocol is offered only when it is served)"),
                        );
                    }
                }
                if !any {
                    self.need(&mut a, "a protocol such as `http/1.1`");
                }
                return;
            }
            "tickets" => t.tickets = self.on_off(&mut a, "`tickets` setting").unwrap_or(true),
            "session_cache" => {
                if let Some(x) = self.need(&mut a, "a number of sessions") {
                    t.session_cache = self.number(x, 0, 10_000_000).map(|n| n as u32);
                }
            }
            "client_auth" => {
                let Some(body) = self.block(&mut a) else {
                    return;
                };
                let mut ca = None;
                let mut required: Option<(bool, crate::diag::Span)> = None;
                let mut seen = std::collections::HashMap::new();
                for c in &body.items {
                    if !self.known("client_auth", c) {
                        continue;
                    }
                    let mut ca_args = self.args(c);
                    if c.name == "ca" {
                        if self.once(&mut seen, c) {
                            ca = self.value(&mut ca_args, "a CA certificate file");
                        }
                    } else if let Some((_, first)) = required {
                        self.given_twice(c.name_span, "required` or `optional", first);
                        continue;
                    } else {
                        required = Some((c.name == "required", c.name_span));
                    }
                    self.done(&mut ca_args);
                }
                match ca {
                    Some(ca) => {
                        t.client_auth = Some(ClientAuth {
                            ca,
                            required: required.is_none_or(|(r, _)| r),
                            at: self.loc(d.name_span),
                        })
                    }
                    None => self.emit(
                        diag::error("E0316", d.name_span, "`client_auth` without `ca`")
                            .help("name the CA client certificates must chain to: `client_auth { ca \"clients.pem\"; required }`"),
                    ),
                }
            }
            _ => {}
        }
        self.done(&mut a);
    }
}

/// A size in the largest unit that writes it whole (`16kb`, `1mb`, `100b`).
fn show_size(n: u64) -> String {
    for (unit, m) in [("gb", 1u64 << 30), ("mb", 1 << 20), ("kb", 1 << 10)] {
        if n >= m && n.is_multiple_of(m) {
            return format!("{}{unit}", n / m);
        }
    }
    format!("{n}b")
}

/// A duration in the largest unit that writes it whole (`10m`, `30s`, `1500ms`).
fn show_duration(ms: u64) -> String {
    for (unit, m) in [("h", 3_600_000u64), ("m", 60_000), ("s", 1_000)] {
        if ms >= m && ms.is_multiple_of(m) {
            return format!("{}{unit}", ms / m);
        }
    }
    format!("{ms}ms")
}
