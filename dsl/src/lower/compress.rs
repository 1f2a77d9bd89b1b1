//! `compress ENCODING... [{ level ENCODING N; min_size SIZE; types TYPE... }]` in a route.

use super::args::Args;
use super::values::is_token;
use super::Lower;
use crate::ast::{Arg, ArgKind, Body, Directive};
use crate::diag::{self, Span};
use bext_ir::{Compress, Encoding, Loc};
use std::collections::HashMap;

impl Lower<'_> {
    /// `compress ENCODING... [{ level ENCODING N; min_size SIZE; types TYPE... }]`.
    pub(super) fn compress(&mut self, a: &mut Args<'_>, at: Loc) -> Option<Compress> {
        const WHAT: &str = "at least one encoding: zstd, br or gzip";
        let mut encodings = vec![];
        let mut block = None;
        let mut ok = true;
        while let Some(x) = a.next() {
            if let ArgKind::Block(b) = &x.kind {
                block = Some((&b.body, x.span));
                break;
            }
            match self.encoding(x) {
                Some(e) => {
                    if !encodings.contains(&e) {
                        encodings.push(e);
                    }
                }
                None => ok = false,
            }
        }
        match block {
            Some((_, span)) if encodings.is_empty() && ok => self.emit(
                diag::error(
                    "E0104",
                    span,
                    format!("`compress` needs {WHAT} before its block"),
                )
                .label(a.d.name_span, "in this directive")
                .help("write `compress zstd br gzip { ... }`"),
            ),
            None if encodings.is_empty() && ok => self.missing(a, WHAT),
            _ => {}
        }
        let mut c = Compress::with_defaults(encodings, at);
        if let Some((b, _)) = block {
            ok &= self.compress_block(b, &mut c);
        }
        (ok && !c.encodings.is_empty()).then_some(c)
    }

    /// `zstd`, `br` or `gzip`.
    fn encoding(&mut self, x: &Arg) -> Option<Encoding> {
        let i = self.keyword(x, "encoding", &["zstd", "br", "gzip"])?;
        Some([Encoding::Zstd, Encoding::Br, Encoding::Gzip][i])
    }

    fn compress_block(&mut self, b: &Body, c: &mut Compress) -> bool {
        let mut seen = HashMap::new();
        let mut levels: HashMap<Encoding, Span> = HashMap::new();
        let mut types_given = false;
        let mut ok = true;
        for d in &b.items {
            if !self.known("compress", d) || (d.name != "level" && !self.once(&mut seen, d)) {
                ok = false;
                continue;
            }
            let mut a = self.args(d);
            let v = match d.name.as_str() {
                "level" => self.compress_level(&mut a, d, c, &mut levels),
                "min_size" => self.next_size(&mut a).map(|v| c.min_size = v),
                _ => {
                    if !types_given {
                        c.types.clear();
                        types_given = true;
                    }
                    self.media_types(&mut a, &mut c.types)
                }
            };
            ok &= v.is_some();
            self.done(&mut a);
        }
        ok
    }

    /// `level ENCODING N`: E0251 for an encoding not offered, E0250 out of its range.
    fn compress_level(
        &mut self,
        a: &mut Args<'_>,
        d: &Directive,
        c: &mut Compress,
        levels: &mut HashMap<Encoding, Span>,
    ) -> Option<()> {
        let x = self.need(a, "an encoding: zstd, br or gzip")?;
        let e = self.encoding(x)?;
        let n = self.need(a, "a level")?;
        let level = self.number(n, 0, u64::MAX)?;
        if !c.encodings.contains(&e) {
            self.emit(
                diag::error(
                    "E0251",
                    x.span,
                    format!(
                        "a level for `{}`, which this `compress` does not offer",
                        e.token()
                    ),
                )
                .help(format!(
                    "add `{}` to the encodings after `compress`, or remove this line",
                    e.token()
                )),
            );
            return None;
        }
        if let Some(&first) = levels.get(&e) {
            self.given_twice(d.name_span, &format!("level {}", e.token()), first);
            return None;
        }
        levels.insert(e, d.name_span);
        let range = e.levels();
        if !u32::try_from(level).is_ok_and(|l| range.contains(&l)) {
            self.emit(
                diag::error(
                    "E0250",
                    n.span,
                    format!("{} has no level {level}", e.token()),
                )
                .help(format!(
                    "{} levels go from {} to {}; the default is {}",
                    e.token(),
                    range.start(),
                    range.end(),
                    e.default_level()
                )),
            );
            return None;
        }
        c.levels.insert(e, level as u32);
        Some(())
    }

    /// `types TYPE...`: `type/subtype` or `type/*`, tokens (E0252), stored lower case.
    fn media_types(&mut self, a: &mut Args<'_>, out: &mut Vec<String>) -> Option<()> {
        if a.peek().is_none() {
            self.missing(a, "at least one media type such as `text/*`");
            return None;
        }
        let mut ok = true;
        while let Some(x) = a.next() {
            let t = x.text();
            let valid = t.split_once('/').is_some_and(|(top, sub)| {
                is_token(top)
                    && !top.contains('*')
                    && (sub == "*" || (is_token(sub) && !sub.contains('*')))
            });
            if !valid || !matches!(x.kind, ArgKind::Word | ArgKind::Str(_)) {
                let help = if t.contains(';') {
                    "write the media type without parameters: types are matched without them"
                } else {
                    "write `type/subtype` (`application/json`) or `type/*` (`text/*`)"
                };
                self.emit(
                    diag::error(
                        "E0252",
                        x.span,
                        format!("invalid media type {}", x.describe()),
                    )
                    .help(help),
                );
                ok = false;
                continue;
            }
            let t = t.to_ascii_lowercase();
            if !out.contains(&t) {
                out.push(t);
            }
        }
        ok.then_some(())
    }
}
