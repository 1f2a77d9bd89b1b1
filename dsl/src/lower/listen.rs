//! `listen ADDR [tls { cert ... }] [http3]`: the sockets bext accepts on.

use super::Lower;
use crate::ast::{ArgKind, Directive};
use crate::diag::{self, suggest};
use bext_ir::{CertPair, Listener, Tls};

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
                let mut certs = vec![];
                let mut written = false;
                if let Some(ArgKind::Block(b)) = a.peek().map(|y| &y.kind) {
                    a.next();
                    for c in &b.body.items {
                        if self.known("tls", c) {
                            written = true;
                            if let Some(pair) = self.cert(c) {
                                certs.push(pair);
                            }
                        }
                    }
                }
                if !written {
                    self.emit(
                        diag::error("E0306", x.span, "`tls` without a certificate")
                            .help("add `tls { cert \"site.pem\" key \"site.key\" }`"),
                    );
                }
                tls = Some(Tls { certs, at });
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
        self.done(&mut a);
        Some(CertPair {
            sni,
            cert: cert?,
            key: key?,
        })
    }
}
