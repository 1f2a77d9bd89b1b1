//! `cache { ttl ...; max ...; stale_while_revalidate ... }` in a route.

use super::Lower;
use crate::ast::{Body, Directive};
use crate::diag;
use bext_ir::{Cache, Loc};
use std::collections::HashMap;

impl Lower<'_> {
    pub(super) fn cache(&mut self, b: &Body, at: Loc, d: &Directive) -> Option<Cache> {
        let mut c = Cache {
            ttl_ms: 0,
            max_bytes: 64 << 20,
            stale_while_revalidate_ms: None,
            at,
        };
        let mut seen = HashMap::new();
        let mut ok = true;
        for d in &b.items {
            if !self.known("cache", d) || !self.once(&mut seen, d) {
                ok = false;
                continue;
            }
            let mut a = self.args(d);
            let v = match d.name.as_str() {
                "ttl" => self.next_duration(&mut a).map(|v| c.ttl_ms = v),
                "max" => self.next_size(&mut a).map(|v| c.max_bytes = v),
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
}
