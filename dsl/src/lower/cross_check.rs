//! Checks that need the whole configuration: duplicate and undefined names, unused upstreams
//! and WAFs, ports bound twice, hosts served twice, a missing listener, and the route table of
//! each site.

use super::Lower;
use crate::diag::{self, suggest, Span};
use bext_ir::{Action, HostPattern};
use std::collections::{HashMap, HashSet};

impl Lower<'_> {
    /// `redirect https` sends clients to the first TLS listener's port (left out when it is
    /// 443); without a TLS listener there is nowhere to send them (E0319).
    fn https_ports(&mut self) {
        let port = self
            .config
            .listeners
            .iter()
            .find(|l| l.tls.is_some())
            .and_then(|l| l.addr.rsplit_once(':'))
            .and_then(|(_, p)| p.parse::<u16>().ok());
        let spans = self.spans.https_redirects.clone();
        let mut i = 0;
        let mut nowhere = Vec::new();
        for site in &mut self.config.sites {
            let Some(r) = site.redirect_https.as_mut() else {
                continue;
            };
            match port {
                Some(p) => r.port = (p != 443).then_some(p),
                None => nowhere.extend(spans.get(i).copied()),
            }
            i += 1;
        }
        for span in nowhere {
            self.emit(
                diag::error("E0319", span, "`redirect https` without a TLS listener")
                    .help("add `listen :443 tls { cert \"site.pem\" key \"site.key\" }`: the redirect sends clients to its port"),
            );
        }
    }

    /// Checks that need the whole configuration: names, references, ports, hosts.
    pub fn cross_check(&mut self) {
        self.https_ports();
        let cfg = std::mem::take(&mut self.config);
        let spans = std::mem::take(&mut self.spans);
        // Duplicate names.
        let upstreams: Vec<(&str, Span)> = cfg
            .upstreams
            .iter()
            .map(|u| u.name.as_str())
            .zip(spans.upstreams.iter().copied())
            .collect();
        let wafs: Vec<(&str, Span)> = cfg
            .wafs
            .iter()
            .map(|w| w.name.as_str())
            .zip(spans.wafs.iter().copied())
            .collect();
        let firsts = self.first_definitions("E0301", "upstream", &upstreams);
        let wfirst = self.first_definitions("E0302", "waf", &wafs);
        // References.
        let mut used_up: HashSet<&str> = HashSet::new();
        let mut used_waf: HashSet<&str> = HashSet::new();
        for (site, (_, rspans)) in cfg.sites.iter().zip(&spans.sites) {
            for (r, rs) in site.routes.iter().zip(rspans) {
                if let (Action::Proxy { upstream }, Some(span)) = (&r.action, rs.proxy) {
                    if firsts.contains_key(upstream.as_str()) {
                        used_up.insert(upstream);
                    } else {
                        // A likely typo of a defined name: that upstream is not "unused" too.
                        let mut names: Vec<&str> = firsts.keys().copied().collect();
                        names.sort_unstable();
                        if let Some(m) = diag::did_you_mean(upstream, names.iter().copied()) {
                            used_up.insert(m);
                        }
                        let url = upstream.contains("://").then(|| {
                            "`proxy` takes the name of an upstream, not a URL: define `upstream app { server HOST:PORT }` and write `proxy app`".to_string()
                        });
                        let help = url
                            .or_else(|| suggest(upstream, names.iter().copied()))
                            .or_else(|| {
                                Some(if names.is_empty() {
                                    "define it with `upstream NAME { server HOST:PORT }`"
                                        .to_string()
                                } else {
                                    format!("defined upstreams: {}", names.join(", "))
                                })
                            });
                        self.emit(
                            diag::error("E0303", span, format!("undefined upstream `{upstream}`"))
                                .help_opt(help),
                        );
                    }
                }
                if let (Some(w), Some(span)) = (&r.waf, rs.waf) {
                    if wfirst.contains_key(w.name.as_str()) {
                        used_waf.insert(&w.name);
                    } else {
                        let mut names: Vec<&str> = wfirst.keys().copied().collect();
                        names.sort_unstable();
                        if let Some(m) = diag::did_you_mean(&w.name, names.iter().copied()) {
                            used_waf.insert(m);
                        }
                        let help = suggest(&w.name, names.iter().copied()).or_else(|| {
                            Some("define it with `waf NAME { ruleset builtin/sqli }`".to_string())
                        });
                        self.emit(
                            diag::error("E0304", span, format!("undefined waf `{}`", w.name))
                                .help_opt(help),
                        );
                    }
                }
            }
        }
        // After a reference that did not resolve (or was lost to an error), "never used" may
        // be false: the broken reference may be the use.
        let uncertain = self.refs_uncertain
            || self
                .diags
                .list
                .iter()
                .any(|d| d.code == "E0303" || d.code == "E0304");
        if !uncertain {
            for &(name, s) in unused(&upstreams, &firsts, &used_up) {
                self.emit(
                    diag::warning("W0101", s, format!("upstream `{name}` is never used"))
                        .help("proxy to it from a route, or remove it"),
                );
            }
            for &(name, s) in unused(&wafs, &wfirst, &used_waf) {
                self.emit(
                    diag::warning("W0102", s, format!("waf `{name}` is never used"))
                        .help("reference it from a route with `waf NAME`, or remove it"),
                );
            }
        }
        // Ports bound twice.
        let mut bound: Vec<(std::net::SocketAddr, Span)> = vec![];
        for (l, s) in cfg.listeners.iter().zip(&spans.listeners) {
            let Ok(sa) = l.addr.parse::<std::net::SocketAddr>() else {
                continue;
            };
            let clash = bound.iter().find(|(b, _)| {
                b.port() == sa.port()
                    && (b.ip() == sa.ip() || b.ip().is_unspecified() || sa.ip().is_unspecified())
            });
            if let Some((b, first)) = clash {
                self.emit(
                    diag::error(
                        "E0305",
                        *s,
                        format!("port {} is already bound by `listen {b}`", sa.port()),
                    )
                    .label(*first, "first bound here"),
                );
            } else {
                bound.push((sa, *s));
            }
        }
        // A host served by two sites.
        let mut hosts: HashMap<&HostPattern, (usize, Span)> = HashMap::new();
        for (k, (site, spans)) in cfg.sites.iter().zip(&spans.site_hosts).enumerate() {
            for (h, s) in site.hosts.iter().zip(spans) {
                if let Some((first_site, f)) = hosts.get(h) {
                    let name = match h {
                        HostPattern::Exact(x) => x.clone(),
                        HostPattern::Wildcard(x) => format!("*.{x}"),
                        HostPattern::Any => "*".into(),
                    };
                    let (msg, help) = if *first_site == k {
                        (
                            format!("host `{name}` is listed twice"),
                            "remove one of them",
                        )
                    } else {
                        (
                            format!("host `{name}` is served by two sites"),
                            "merge the routes into one site",
                        )
                    };
                    self.emit(
                        diag::error("E0307", *s, msg)
                            .label(*f, "first listed here")
                            .help(help),
                    );
                } else {
                    hosts.insert(h, (k, *s));
                }
            }
        }
        if cfg.listeners.is_empty() && !cfg.sites.is_empty() && !self.listen_uncertain {
            if let Some((s, _)) = spans.sites.first() {
                self.emit(
                    diag::warning(
                        "W0103",
                        *s,
                        "no `listen` directive: nothing will receive requests",
                    )
                    .help("add `listen 0.0.0.0:8080`"),
                );
            }
        }
        for (site, (_, rspans)) in cfg.sites.iter().zip(&spans.sites) {
            crate::routes::analyse(site, rspans, self.sources, self.diags);
        }
        self.config = cfg;
        self.spans = spans;
    }

    /// The first definition of each name in `defs`; each later one is reported as `code`.
    fn first_definitions<'c>(
        &mut self,
        code: &'static str,
        kind: &str,
        defs: &[(&'c str, Span)],
    ) -> HashMap<&'c str, Span> {
        let mut firsts: HashMap<&str, Span> = HashMap::new();
        for &(name, span) in defs {
            match firsts.get(name) {
                Some(&first) => self.defined_twice(code, kind, name, span, first),
                None => {
                    firsts.insert(name, span);
                }
            }
        }
        firsts
    }
}

/// The definitions that are the first of their name and that no route uses.
fn unused<'a>(
    defs: &'a [(&'a str, Span)],
    firsts: &'a HashMap<&'a str, Span>,
    used: &'a HashSet<&'a str>,
) -> impl Iterator<Item = &'a (&'a str, Span)> {
    defs.iter()
        .filter(|(name, s)| !used.contains(name) && firsts.get(name) == Some(s))
}
