//! `site HOST... { ... }`: the host names a set of routes answers, and its path policy.

use super::args::{usage_help, Args};
use super::values::valid_host;
use super::Lower;
use crate::ast::{Arg, ArgKind, Directive};
use crate::diag;
use bext_ir::{EscapedSlashes, HostPattern, PathPolicy, Site};
use std::collections::HashMap;

/// At most this many routes in one site (E0231).
pub const MAX_ROUTES_PER_SITE: usize = 10_000;

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
            if r.name == "merge_slashes" {
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
            at: self.loc(d.name_span),
        });
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
