//! `cache { ttl ...; max ...; stale_while_revalidate ...; key ...; bypass ...; ignore_query ... }`
//! in a route.
//!
//! Besides the values, two configurations that can never serve a stored response are warned
//! about: a key on a field every request carries a new value of (W0160), and a bypass on a
//! field every request carries (W0161).

use super::args::Args;
use super::values::is_token;
use super::Lower;
use crate::ast::{Body, Directive};
use crate::diag;
use bext_ir::{Cache, CacheRequestPart, Loc};
use std::collections::HashMap;

/// Request fields whose value is new on every request (request ids, trace context, the
/// client's clock): a key on one of them never matches twice.
const PER_REQUEST_FIELDS: &[&str] = &[
    "x-request-id",
    "request-id",
    "x-correlation-id",
    "correlation-id",
    "traceparent",
    "tracestate",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-amzn-trace-id",
    "x-cloud-trace-context",
    "cf-ray",
    "date",
];

/// Request fields every HTTP/1.1 request carries: a bypass on one of them bypasses everything.
const EVERY_REQUEST_FIELDS: &[&str] = &["host"];

/// The directives of a `cache` block that may be repeated.
const REPEATABLE: &[&str] = &["key", "bypass", "ignore_query"];

impl Lower<'_> {
    pub(super) fn cache(&mut self, b: &Body, at: Loc, d: &Directive) -> Option<Cache> {
        let mut c = Cache::with_ttl(0, at);
        let mut seen = HashMap::new();
        let mut ok = true;
        for d in &b.items {
            if !self.known("cache", d) {
                ok = false;
                continue;
            }
            if !REPEATABLE.contains(&d.name.as_str()) && !self.once(&mut seen, d) {
                ok = false;
                continue;
            }
            seen.entry(d.name.clone()).or_insert(d.name_span);
            let mut a = self.args(d);
            let v = match d.name.as_str() {
                "ttl" => self.next_duration(&mut a).map(|v| c.ttl_ms = v),
                "max" => self.next_size(&mut a).map(|v| c.max_bytes = v),
                "store_errors" => self
                    .on_off(&mut a, "store_errors")
                    .map(|v| c.store_errors = v),
                "store_set_cookie" => self
                    .on_off(&mut a, "store_set_cookie")
                    .map(|v| c.store_set_cookie = v),
                "key" => self.cache_part(&mut a).map(|p| {
                    if let (CacheRequestPart::Header(h), Some(x)) = (&p, d.args.get(1)) {
                        if PER_REQUEST_FIELDS.contains(&h.as_str()) {
                            self.emit(
                                diag::warning(
                                    "W0160",
                                    x.span,
                                    format!(
                                        "a cache key on `{h}`, which every request carries a new value of, never matches twice: nothing stored is ever served"
                                    ),
                                )
                                .help("key on a field that repeats across requests (a language, a device class), or leave it out"),
                            );
                        }
                    }
                    if !c.key.contains(&p) {
                        c.key.push(p);
                    }
                }),
                "bypass" => self.cache_part(&mut a).map(|p| {
                    if let (CacheRequestPart::Header(h), Some(x)) = (&p, d.args.get(1)) {
                        if EVERY_REQUEST_FIELDS.contains(&h.as_str()) {
                            self.emit(
                                diag::warning(
                                    "W0161",
                                    x.span,
                                    format!(
                                        "every request carries `{h}`: this bypass sends every request past the cache, which never stores"
                                    ),
                                )
                                .help("bypass on a field only some requests carry (`bypass cookie session`), or remove the `cache` block"),
                            );
                        }
                    }
                    if !c.bypass.contains(&p) {
                        c.bypass.push(p);
                    }
                }),
                "ignore_query" => {
                    let mut any = false;
                    let mut good = true;
                    while a.peek().is_some() {
                        match self.text(&mut a, "a query parameter name") {
                            Some(x) => {
                                any = true;
                                let name = x.text().to_string();
                                if !c.ignore_query.contains(&name) {
                                    c.ignore_query.push(name);
                                }
                            }
                            None => good = false,
                        }
                    }
                    if !any && good {
                        self.missing(&a, "a query parameter name");
                        good = false;
                    }
                    good.then_some(())
                }
                _ => self
                    .next_duration(&mut a)
                    .map(|v| c.stale_while_revalidate_ms = Some(v)),
            };
            ok &= v.is_some();
            self.done(&mut a);
        }
        if !seen.contains_key("ttl") {
            self.emit(
                diag::error("E0104", d.name_span, "`cache` needs `ttl`")
                    .help("write `cache { ttl 10m }`"),
            );
            return None;
        }
        ok.then_some(c)
    }

    /// `header NAME` or `cookie NAME` (of `key` and `bypass`).
    fn cache_part(&mut self, a: &mut Args<'_>) -> Option<CacheRequestPart> {
        let kind = self.need(a, "`header` or `cookie`")?;
        let k = self.keyword(kind, "request part", &["header", "cookie"])?;
        let n = self.text(
            a,
            if k == 0 {
                "a field name"
            } else {
                "a cookie name"
            },
        )?;
        if k == 0 {
            let h = self.header_name(n)?;
            return Some(CacheRequestPart::Header(h.to_ascii_lowercase()));
        }
        if !is_token(n.text()) {
            self.emit(
                diag::error(
                    "E0260",
                    n.span,
                    format!("{} is not a valid cookie name", n.describe()),
                )
                .help("a cookie name is a token: letters, digits and !#$%&'*+-.^_`|~"),
            );
            return None;
        }
        Some(CacheRequestPart::Cookie(n.text().to_string()))
    }
}

#[cfg(test)]
mod tests {
    use bext_ir::CacheRequestPart::{Cookie, Header};

    #[test]
    fn key_bypass_and_ignored_query_are_lowered_in_order_without_repeats() {
        let src = "listen :8080\nupstream app { server 127.0.0.1:9000 }\nsite a.test { route /* {\n    cache {\n        ttl 10m\n        stale_while_revalidate 30s\n        key header Accept-Language\n        key cookie lang\n        key header accept-language\n        bypass cookie session\n        bypass header Authorization\n        ignore_query utm_source gclid\n        ignore_query utm_source\n        store_errors on\n        store_set_cookie off\n    }\n    proxy app\n} }\n";
        let compiled = crate::compile_str("t.bext", src).expect("compiles");
        assert!(compiled.warnings.is_empty());
        let c = compiled.config.sites[0].routes[0]
            .cache
            .clone()
            .expect("cache");
        assert_eq!(
            (c.ttl_ms, c.stale_while_revalidate_ms),
            (600_000, Some(30_000))
        );
        assert_eq!(
            c.key,
            vec![Header("accept-language".into()), Cookie("lang".into())]
        );
        assert_eq!(
            c.bypass,
            vec![Cookie("session".into()), Header("authorization".into())]
        );
        assert_eq!(c.ignore_query, vec!["utm_source", "gclid"]);
        assert!(c.store_errors && !c.store_set_cookie);
    }
}
