//! `listen ADDR [tls { cert ... }] [http3]`: the sockets bext accepts on.
//!
//! The `tls` block: `cert FILE key FILE [sni NAME] [ocsp FILE|off]` (one or more), `alpn P...`,
//! `client_auth { ca FILE; required|optional }`, `tickets on|off`, `session_cache N`. What
//! needs the files themselves (they exist, keys match, names are covered) is checked by
//! `bext check` with `bext-tls` (E07xx), not here.

use super::Lower;
use crate::ast::{ArgKind, Directive};
use crate::diag::{self, suggest};
use bext_ir::{CertPair, ClientAuth, Listener, Stapling, Tls};

impl Lower<'_> {
    pub(super) fn listen(&mut self, d: &Directive) {
        let mut a = self.args(d);
        let Some(x) = self.text(&mut a, "an address such as `0.0.0.0:8080`") else {
            return;
        };
        let addr = self.socket_addr(x);
        let mut tls = None;
        let mut http3 = None;
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
                at: self.loc(d.name_span),
            });
        }
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
