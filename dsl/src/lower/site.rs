//! `site HOST... { ... }`: the host names a set of routes answers, and its path policy.

use super::args::{usage_help, Args};
use super::values::valid_host;
use super::Lower;
use crate::ast::{Arg, ArgKind, Directive};
use crate::diag;
use bext_ir::{EscapedSlashes, HostPattern, Hsts, HttpsRedirect, Loc, PathPolicy, Site};
use std::collections::HashMap;

/// At most this many routes in one site (E0231).
pub const MAX_ROUTES_PER_SITE: usize = 10_000;

/// The shortest `max_age` the browsers' HSTS preload list accepts: one year.
const HSTS_PRELOAD_MIN_S: u64 = 365 * 24 * 3600;

impl Lower<'_> {
    pub(super) fn site(&mut self, d: &Directive) {
        let mut hosts = vec![];
        let mut host_spans = vec![];
        let mut body = None;
        for x in &d.args {
            match &x.kind {
                ArgKind::Block(b) if body.is_none() => body = Some(&b.body),
                ArgKind::Block(_) => {
                    self.emit(diag::error("E0106", x.span, "`site` takes one block"))
                }
                _ if body.is_some() => {
                    self.emit(diag::error(
                        "E0105",
                        x.span,
                        "host names go before the block",
                    ));
                }
                ArgKind::Word | ArgKind::Str(_) => {
                    if let Some(h) = self.host_pattern(x) {
                        hosts.push(h);
                        host_spans.push(x.span);
                    }
                }
                _ => self.wrong(x, "a host name"),
            }
        }
        let Some(body) = body else {
            let a = Args::new(d);
            self.emit(
                diag::error("E0106", a.end_span(), "`site` needs a block `{ ... }`")
                    .help_opt(usage_help("site", "a block")),
            );
            return;
        };
        if hosts.is_empty() && d.args.len() == 1 {
            hosts.push(HostPattern::Any);
            host_spans.push(d.name_span);
        }
        let mut routes = vec![];
        let mut route_spans = vec![];
        let mut count = 0;
        let mut paths = PathPolicy::default();
        let mut redirect_https = None;
        let mut hsts = None;
        let mut seen = HashMap::new();
        for r in &body.items {
            if !self.known("site", r) {
                continue;
            }
            if r.name == "route" {
                count += 1;
                if count == MAX_ROUTES_PER_SITE + 1 {
                    self.emit(
                        diag::error(
                            "E0231",
                            r.name_span,
                            format!("more than {MAX_ROUTES_PER_SITE} routes in one site"),
                        )
                        .label(d.name_span, "in this site")
                        .help("group paths under prefix routes (`route /api/*`) or split the hosts into several sites"),
                    );
                }
                if count > MAX_ROUTES_PER_SITE {
                    continue;
                }
                if let Some((route, spans)) = self.route(r) {
                    routes.push(route);
                    route_spans.push(spans);
                }
                continue;
            }
            if !self.once(&mut seen, r) {
                continue;
            }
            let mut a = self.args(r);
            if r.name == "redirect" {
                redirect_https = self.redirect_https(&mut a, self.loc(r.name_span));
                if redirect_https.is_some() {
                    self.spans.https_redirects.push(r.name_span);
                }
            } else if r.name == "hsts" {
                hsts = self.hsts(&mut a, self.loc(r.name_span));
            } else if r.name == "merge_slashes" {
                if let Some(on) = self.on_off(&mut a, "merge_slashes setting") {
                    paths.merge_slashes = on;
                }
            } else if let Some(x) = self.need(&mut a, "`reject` or `keep`") {
                // escaped_slashes
                match self.keyword(x, "escaped_slashes action", &["reject", "keep"]) {
                    Some(0) => paths.escaped_slashes = EscapedSlashes::Reject,
                    Some(_) => paths.escaped_slashes = EscapedSlashes::Keep,
                    None => {}
                }
            }
            self.done(&mut a);
        }
        self.spans.sites.push((d.name_span, route_spans));
        self.spans.site_hosts.push(host_spans);
        self.config.sites.push(Site {
            hosts,
            routes,
            paths,
            redirect_https,
            hsts,
            at: self.loc(d.name_span),
        });
    }

    /// `redirect https [301|308]` (the port is filled in by the cross checks, from the TLS
    /// listeners).
    fn redirect_https(&mut self, a: &mut Args<'_>, at: Loc) -> Option<HttpsRedirect> {
        let x = self.need(a, "`https`")?;
        self.keyword(x, "redirect target of a site", &["https"])?;
        let mut status = 308;
        if let Some(s) = a.next() {
            status = self.status(s, &[301, 308], "redirect to https")?;
        }
        Some(HttpsRedirect {
            status,
            port: None,
            at,
        })
    }

    /// `hsts max_age D [include_subdomains] [preload]`.
    fn hsts(&mut self, a: &mut Args<'_>, at: Loc) -> Option<Hsts> {
        let x = self.need(a, "`max_age` and a duration such as `365d`")?;
        self.keyword(x, "hsts setting", &["max_age"])?;
        let max_age_s = self.next_duration(a)? / 1000;
        let mut h = Hsts {
            max_age_s,
            include_subdomains: false,
            preload: false,
            at,
        };
        let mut preload_span = None;
        while let Some(k) = a.next() {
            match self.keyword(k, "hsts option", &["include_subdomains", "preload"])? {
                0 => h.include_subdomains = true,
                _ => {
                    h.preload = true;
                    preload_span = Some(k.span);
                }
            }
        }
        // What the browsers' preload list requires (hstspreload.org): a list entry that
        // does not meet it is refused there, so a config that asks for it is wrong here.
        if let Some(span) = preload_span {
            if !h.include_subdomains || h.max_age_s < HSTS_PRELOAD_MIN_S {
                self.emit(
                    diag::error("E0318", span, "`preload` needs `include_subdomains` and a `max_age` of at least a year")
                        .help("write `hsts max_age 365d include_subdomains preload`, or leave `preload` out"),
                );
                return None;
            }
        }
        Some(h)
    }

    fn host_pattern(&mut self, x: &Arg) -> Option<HostPattern> {
        let t = x.text().to_ascii_lowercase();
        if t == "*" {
            return Some(HostPattern::Any);
        }
        if let Some(rest) = t.strip_prefix("*.") {
            if valid_host(rest) && !rest.contains('*') {
                return Some(HostPattern::Wildcard(rest.to_string()));
            }
        } else if valid_host(&t) {
            return Some(HostPattern::Exact(t));
        }
        let help = if t.contains(':') {
            "a site matches host names without a port; ports belong to `listen`"
        } else if t.contains('/') {
            "a site matches host names; paths belong to `route`"
        } else {
            "write a host name (`example.com`), a wildcard (`*.example.com`) or `*`"
        };
        self.emit(
            diag::error(
                "E0209",
                x.span,
                format!("invalid host name {}", x.describe()),
            )
            .help(help),
        );
        None
    }
}
