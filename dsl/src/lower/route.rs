//! `route PATH { ... }`: what a request must match, the one action that answers it, and the
//! edits, limits and plugins on the way.

use super::args::Args;
use super::values::is_token;
use super::{Lower, RouteSpans};
use crate::ast::{Arg, ArgKind, Directive};
use crate::diag::{self, Span};
use crate::plural;
use bext_ir::{
    Action, FieldCond, HeaderOp, Loc, MatchOp, NamedRef, PathMatch, Plugin, Rewrite, Route,
};
use std::collections::HashMap;

impl Lower<'_> {
    pub(super) fn route(&mut self, d: &Directive) -> Option<(Route, RouteSpans)> {
        let mut a = self.args(d);
        let mut spans = RouteSpans {
            head: d.name_span,
            ..RouteSpans::default()
        };
        let first = self.need(&mut a, "a path: `/exact`, `/prefix/*` or `~ \"regex\"`")?;
        let path = if first.is_word("=") {
            let p = self.text(&mut a, "a path")?;
            spans.path = p.span;
            self.path(p).map(PathMatch::Exact)
        } else if first.is_word("~") {
            let p = self.need(&mut a, "a regular expression")?;
            spans.path = p.span;
            self.regex(p).map(PathMatch::Regex)
        } else if first.block().is_some() {
            self.missing(&a, "a path: `/exact`, `/prefix/*` or `~ \"regex\"`");
            a.i -= 1;
            None
        } else {
            spans.path = first.span;
            self.route_path(first)
        };
        let body = self.block(&mut a);
        self.done(&mut a);
        let body = body?;
        let mut route = Route::new(
            path.clone().unwrap_or(PathMatch::Prefix("/".into())),
            Action::Respond {
                status: 404,
                body: String::new(),
                content_type: None,
            },
            self.loc(d.name_span),
        );
        let mut action: Option<(Span, &str)> = None;
        // Where `strip_prefix` and `rewrite` are written, if they are.
        let mut path_edits: (Option<Span>, Option<Span>) = (None, None);
        let mut seen = HashMap::new();
        // A directive that is not recognised may be the action misspelt (`proxx app`): then
        // "no action" would only repeat the same mistake.
        let mut unknown = false;
        for d in &body.items {
            if !self.known("route", d) {
                unknown = true;
                continue;
            }
            let repeatable = [
                "header",
                "client_cert",
                "query",
                "request_header",
                "response_header",
                "plugin",
            ];
            if !repeatable.contains(&d.name.as_str()) && !self.once(&mut seen, d) {
                continue;
            }
            let is_action = ["proxy", "respond", "redirect", "static"].contains(&d.name.as_str());
            if is_action {
                if let Some((first, name)) = action {
                    self.emit(
                        diag::error("E0310", d.name_span, format!("a route has one action; `{}` follows `{name}`", d.name))
                            .label(first, "first action here")
                            .help("split the route, or keep one of `proxy`, `respond`, `redirect`, `static`"),
                    );
                    continue;
                }
                action = Some((d.name_span, names_of(&d.name)));
            }
            match d.name.as_str() {
                "strip_prefix" => path_edits.0 = Some(d.name_span),
                "rewrite" => path_edits.1 = Some(d.name_span),
                _ => {}
            }
            let mut a = self.args(d);
            self.route_directive(d, &mut a, &mut route, &mut spans);
            self.done(&mut a);
        }
        if let (Some(strip), Some(rewrite)) = path_edits {
            let (first, later) = if strip.start < rewrite.start {
                (strip, rewrite)
            } else {
                (rewrite, strip)
            };
            self.emit(
                diag::error(
                    "E0315",
                    later,
                    "a route may change its path with `strip_prefix` or with `rewrite`, not both",
                )
                .label(first, "the path is already changed here")
                .help("a rewrite can strip a prefix too: `rewrite '^/api(/.*)$' \"$1\"`"),
            );
        }
        if action.is_none() && !unknown {
            self.emit(
                diag::error("E0309", d.name_span, "this route has no action")
                    .help("add one of `proxy UPSTREAM`, `respond STATUS`, `redirect STATUS URL`, `static DIR`"),
            );
        }
        // A route with a mistake inside is kept (the IR is discarded anyway when there are
        // errors) so that references and the route table are still checked and reported.
        path.is_some().then_some((route, spans))
    }

    fn route_path(&mut self, x: &Arg) -> Option<PathMatch> {
        let p = self.path(x)?;
        let star = p.find('*');
        match star {
            None => Some(PathMatch::Exact(p)),
            Some(i) if i == p.len() - 1 => Some(PathMatch::Prefix(p[..i].to_string())),
            Some(_) => {
                self.emit(
                    diag::error("E0210", x.span, "`*` may only end a route path")
                        .help("use `/prefix/*` for everything under a prefix, or `~ \"regex\"` for patterns"),
                );
                None
            }
        }
    }

    fn route_directive(
        &mut self,
        d: &Directive,
        a: &mut Args<'_>,
        r: &mut Route,
        spans: &mut RouteSpans,
    ) {
        let at = self.loc(d.name_span);
        match d.name.as_str() {
            "method" => self.methods(a, r),
            "header" | "query" => self.field_condition(d, a, r),
            "client_cert" => self.client_cert_condition(a, r),
            "proxy" => {
                if let Some(x) = self.word(a, "an upstream name") {
                    spans.proxy = Some(x.span);
                    r.action = Action::Proxy {
                        upstream: x.raw.clone(),
                    };
                }
            }
            "respond" => self.respond(a, r),
            "redirect" => self.redirect(a, r, spans),
            "static" => self.static_files(a, r),
            "strip_prefix" => self.strip_prefix(a, r, spans),
            "rewrite" => self.rewrite(a, r, at),
            "request_header" | "response_header" => self.header_edit(d, a, r),
            "cache" => {
                let Some(b) = self.block(a) else { return };
                r.cache = self.cache(b, at, d);
            }
            "compress" => r.compress = self.compress(a, at),
            "waf" => {
                if let Some(x) = self.word(a, "a WAF name") {
                    spans.waf = Some(x.span);
                    r.waf = Some(NamedRef {
                        name: x.raw.clone(),
                        at,
                    });
                    if a.peek().is_some_and(|x| x.is_word("exclude")) {
                        a.next();
                        while a
                            .peek()
                            .is_some_and(|x| matches!(x.kind, crate::ast::ArgKind::Number))
                        {
                            if let Some(id) = self.next_number(a, 1, 9_999_999) {
                                r.waf_exclude.push(id as u32);
                            }
                        }
                        if r.waf_exclude.is_empty() {
                            self.missing(
                                a,
                                "rule ids to leave out on this route, such as `942100`",
                            );
                        }
                    }
                }
            }
            "rate_limit" => r.rate_limit = self.rate_limit(a, at),
            "request_buffering" => {
                if let Some(on) = self.on_off(a, "request_buffering value") {
                    r.request_buffering = on;
                }
            }
            _ => self.plugin(a, r, at),
        }
    }

    /// `method GET HEAD ...`: tokens in upper case (E0206).
    fn methods(&mut self, a: &mut Args<'_>, r: &mut Route) {
        if a.peek().is_none() {
            self.missing(a, "at least one method such as GET");
        }
        while let Some(m) = a.next() {
            let t = m.text();
            let token = is_token(t);
            if !token || t.chars().any(|c| c.is_ascii_lowercase()) {
                let help = token.then(|| {
                    format!(
                        "methods are case-sensitive: write `{}`",
                        t.to_ascii_uppercase()
                    )
                });
                self.emit(
                    diag::error("E0206", m.span, format!("invalid method {}", m.describe()))
                        .help_opt(help),
                );
            } else if !r.methods.iter().any(|x| x == t) {
                r.methods.push(t.to_string());
            }
        }
    }

    /// `header NAME OP [VALUE]` or `query NAME OP [VALUE]`.
    fn field_condition(&mut self, d: &Directive, a: &mut Args<'_>, r: &mut Route) {
        let Some(n) = self.text(a, "a field name") else {
            return;
        };
        let name = if d.name == "header" {
            match self.header_name(n) {
                Some(h) => h.to_ascii_lowercase(),
                None => return,
            }
        } else {
            n.text().to_string()
        };
        let Some(op) = self.need(a, "an operator: =, ~, starts_with, contains or present") else {
            return;
        };
        let ops = ["=", "~", "starts_with", "contains", "present"];
        let op = match self.keyword(op, "operator", &ops) {
            Some(0) => self.value(a, "a value").map(MatchOp::Equals),
            Some(1) => self
                .need(a, "a regular expression")
                .and_then(|x| self.regex(x))
                .map(MatchOp::Regex),
            Some(2) => self.value(a, "a value").map(MatchOp::Prefix),
            Some(3) => self.value(a, "a value").map(MatchOp::Contains),
            Some(_) => Some(MatchOp::Present),
            None => None,
        };
        if let Some(op) = op {
            let list = if d.name == "header" {
                &mut r.headers
            } else {
                &mut r.query
            };
            list.push(FieldCond { name, op });
        }
    }

    /// `client_cert present`, `client_cert cn OP [VALUE]` or `client_cert dns OP [VALUE]`.
    fn client_cert_condition(&mut self, a: &mut Args<'_>, r: &mut Route) {
        let Some(x) = self.need(a, "`present`, `cn` or `dns`") else {
            return;
        };
        let name = match self.keyword(x, "client certificate part", &["present", "cn", "dns"]) {
            Some(0) => {
                r.client_cert.push(FieldCond {
                    name: "certificate".into(),
                    op: MatchOp::Present,
                });
                return;
            }
            Some(1) => "cn",
            Some(_) => "dns",
            None => return,
        };
        let Some(op) = self.need(a, "an operator: =, ~, starts_with, contains or present") else {
            return;
        };
        let ops = ["=", "~", "starts_with", "contains", "present"];
        let op = match self.keyword(op, "operator", &ops) {
            Some(0) => self.value(a, "a value").map(MatchOp::Equals),
            Some(1) => self
                .need(a, "a regular expression")
                .and_then(|x| self.regex(x))
                .map(MatchOp::Regex),
            Some(2) => self.value(a, "a value").map(MatchOp::Prefix),
            Some(3) => self.value(a, "a value").map(MatchOp::Contains),
            Some(_) => Some(MatchOp::Present),
            None => None,
        };
        if let Some(op) = op {
            r.client_cert.push(FieldCond {
                name: name.into(),
                op,
            });
        }
    }

    /// `respond STATUS ["BODY"] [type TYPE]`.
    fn respond(&mut self, a: &mut Args<'_>, r: &mut Route) {
        let Some(x) = self.need(a, "a status code") else {
            return;
        };
        let Some(status) = self.status(x, &[], "response") else {
            return;
        };
        let mut body = String::new();
        let mut content_type = None;
        if let Some(b) = a.peek() {
            if matches!(b.kind, ArgKind::Str(_)) {
                a.next();
                body = b.text().to_string();
            }
        }
        if a.eat("type") {
            content_type = self
                .text(a, "a content type such as text/plain")
                .filter(|x| self.no_control(x, "content type", false))
                .map(|x| x.text().to_string());
        }
        r.action = Action::Respond {
            status,
            body,
            content_type,
        };
    }

    /// `redirect [STATUS] LOCATION`.
    fn redirect(&mut self, a: &mut Args<'_>, r: &mut Route, spans: &mut RouteSpans) {
        let mut status = 302;
        if let Some(x) = a.peek() {
            if matches!(x.kind, ArgKind::Number) {
                a.next();
                match self.status(x, &[301, 302, 303, 307, 308], "redirect") {
                    Some(s) => status = s,
                    None => return,
                }
            }
        }
        let location = self.text(a, "a location");
        if let Some(x) = location.filter(|x| self.no_control(x, "redirect location", false)) {
            spans.redirect = Some(x.span);
            r.action = Action::Redirect {
                status,
                location: x.text().to_string(),
            };
        }
    }

    /// `static DIR [index FILE...]`.
    fn static_files(&mut self, a: &mut Args<'_>, r: &mut Route) {
        let Some(x) = self.text(a, "a directory") else {
            return;
        };
        let root = x.text().to_string();
        // W0150: a warning, not an error: the directory may be made where bext will
        // run (deployed with the site), and `bext run` refuses a root it cannot open.
        let missing = match self.read_files.then(|| std::fs::metadata(&root)) {
            None => None,
            Some(Ok(m)) if m.is_dir() => None,
            Some(Ok(_)) => Some("it is not a directory".to_string()),
            Some(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                Some("it does not exist".to_string())
            }
            Some(Err(e)) => Some(format!("it cannot be read: {e}")),
        };
        if let Some(why) = missing {
            self.emit(
                diag::warning(
                    "W0150",
                    x.span,
                    format!("static root `{root}` is not a directory on this machine: {why}"),
                )
                .help("create the directory (a relative path is taken from the directory bext runs in), or correct the path"),
            );
        }
        let mut index = vec![];
        if a.eat("index") {
            while let Some(x) = a.next() {
                index.push(x.text().to_string());
            }
            if index.is_empty() {
                self.missing(a, "at least one index file name");
            }
        } else {
            index.push("index.html".to_string());
        }
        r.action = Action::Static { root, index };
    }

    /// `strip_prefix PREFIX`: a prefix of every path the route matches (E0311).
    fn strip_prefix(&mut self, a: &mut Args<'_>, r: &mut Route, spans: &RouteSpans) {
        let Some(x) = self.text(a, "a path prefix such as /api") else {
            return;
        };
        let Some(p) = self.path(x) else { return };
        let matched = match &r.path {
            PathMatch::Exact(e) => Some(e.as_str()),
            PathMatch::Prefix(q) => Some(q.as_str()),
            PathMatch::Regex(_) => None,
        };
        if let Some(m) = matched {
            if !m.starts_with(&p) {
                self.emit(
                    diag::error(
                        "E0311",
                        x.span,
                        format!("`strip_prefix {p}` does not begin the paths this route matches"),
                    )
                    .label(spans.path, "this route matches these paths")
                    .help("strip a prefix of the route path"),
                );
                return;
            }
        }
        r.strip_prefix = Some(p);
    }

    /// `rewrite 'REGEX' "REPLACEMENT"`.
    fn rewrite(&mut self, a: &mut Args<'_>, r: &mut Route, at: Loc) {
        let Some(x) = self.need(a, "a regular expression") else {
            return;
        };
        let pattern = self.regex(x);
        let Some(y) = self.text(a, "a replacement such as \"/new/$1\"") else {
            return;
        };
        if !self.no_control(y, "rewrite replacement", false) {
            return;
        }
        let replacement = y.text().to_string();
        if let Some(pattern) = pattern {
            if self.rewrite_replacement(&pattern, x, y) {
                r.rewrite = Some(Rewrite {
                    pattern,
                    replacement,
                    at,
                });
            }
        }
    }

    /// `request_header` or `response_header`: `set NAME VALUE`, `add NAME VALUE`, `remove NAME`.
    fn header_edit(&mut self, d: &Directive, a: &mut Args<'_>, r: &mut Route) {
        let Some(op) = self.need(a, "set, add or remove") else {
            return;
        };
        let Some(k) = self.keyword(op, "header operation", &["set", "add", "remove"]) else {
            return;
        };
        let Some(n) = self.text(a, "a header name") else {
            return;
        };
        let Some(name) = self.header_name(n) else {
            return;
        };
        let name = name.to_ascii_lowercase();
        let mut value = || {
            let v = self.text(a, "a value")?;
            self.no_control(v, "header value", true)
                .then(|| v.text().to_string())
        };
        let op = match k {
            0 => HeaderOp::Set {
                name,
                value: value().unwrap_or_default(),
            },
            1 => HeaderOp::Add {
                name,
                value: value().unwrap_or_default(),
            },
            _ => HeaderOp::Remove { name },
        };
        if d.name == "request_header" {
            r.request_headers.push(op);
        } else {
            r.response_headers.push(op);
        }
    }

    /// `plugin FILE [{ KEY VALUE ... }]`; `budget DURATION` and `memory SIZE` among the keys.
    fn plugin(&mut self, a: &mut Args<'_>, r: &mut Route, at: Loc) {
        let Some(path) = self.value(a, "a plugin file (.wasm)") else {
            return;
        };
        let mut config = vec![];
        if let Some(ArgKind::Block(b)) = a.peek().map(|x| &x.kind) {
            a.next();
            for kv in &b.body.items {
                let mut ka = self.args(kv);
                // bext's own settings of the plugin (docs/plugins.md) take a duration and a
                // size, kept in the IR with their unit; every other key is the plugin's.
                let v = match kv.name.as_str() {
                    "budget" => self.next_duration(&mut ka).map(|ms| format!("{ms}ms")),
                    "memory" => self.next_size(&mut ka).map(|n| format!("{n}b")),
                    _ => self.value(&mut ka, "a value"),
                };
                if let Some(v) = v {
                    config.push((kv.name.clone(), v));
                }
                self.done(&mut ka);
            }
        }
        r.plugins.push(Plugin { path, config, at });
    }

    /// Checks the replacement `y` of a `rewrite` whose pattern `x` compiled, with the parser the
    /// router uses; false (after reporting E0216) when the router would refuse it.
    fn rewrite_replacement(&mut self, pattern: &str, x: &Arg, y: &Arg) -> bool {
        use bext_ir::routing::{max_group, parse_replacement};
        let text = y.text();
        // Point inside the string, at the piece at fault.
        let at = |start: usize, end: usize| y.span_of(start, end);
        let parts = match parse_replacement(text) {
            Ok(p) => p,
            Err(e) => {
                self.emit(diag::error("E0216", at(e.start, e.end), e.message).help(
                    "a replacement is a path with `$1`..`$9` for groups, `{path}` and `{query}`",
                ));
                return false;
            }
        };
        let groups = regex_syntax::parse(pattern)
            .map(|h| h.properties().explicit_captures_len())
            .unwrap_or(0);
        if let Some((g, start)) = max_group(&parts) {
            if usize::from(g) > groups {
                self.emit(
                    diag::error(
                        "E0216",
                        at(start, start + 2),
                        format!("`${g}` refers to a capture group the pattern does not have"),
                    )
                    .label(
                        x.span,
                        format!("this pattern has {groups} capture group{}", plural(groups)),
                    )
                    .help("add a group in parentheses to the pattern, or use a lower number"),
                );
                return false;
            }
        }
        true
    }
}

fn names_of(n: &str) -> &'static str {
    ["proxy", "respond", "redirect", "static"]
        .into_iter()
        .find(|x| *x == n)
        .unwrap_or("action")
}
