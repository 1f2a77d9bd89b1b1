//! The canonical layout of a `.bext` file.
//!
//! Formatting is a layout operation only: arguments are printed as written (strings keep their
//! quotes and escapes), so the formatted file lowers to the same IR. What changes: indentation
//! (four spaces per block), one space between arguments, one directive per line (`;` only
//! inside blocks kept on one line), commas and line continuations dropped, at most one blank
//! line between directives, comments kept where they were (own line or end of line).

use crate::ast::{ArgKind, Body, Directive};

/// Formats a parsed file. `src` is the text the body was parsed from (for blank lines).
pub fn format(body: &Body, src: &str) -> String {
    let mut out = String::new();
    body_lines(body, src, 0, &mut out);
    out
}

enum Item<'a> {
    D(&'a Directive),
    C(&'a crate::ast::Comment),
}

fn body_lines(body: &Body, src: &str, depth: usize, out: &mut String) {
    let mut items: Vec<(usize, usize, Item<'_>)> = body
        .items
        .iter()
        .map(|d| (d.span.start, d.span.end, Item::D(d)))
        .chain(
            body.comments
                .iter()
                .map(|c| (c.span.start, c.span.end, Item::C(c))),
        )
        .collect();
    items.sort_by_key(|(s, _, _)| *s);
    let indent = "    ".repeat(depth);
    let mut prev_end: Option<usize> = None;
    let mut prev_directive = false;
    for (start, end, item) in items {
        let between = prev_end.map(|p| src.get(p..start).unwrap_or(""));
        let newlines = between.map_or(0, |b| b.matches('\n').count());
        match item {
            Item::C(c) if prev_directive && between.is_some() && newlines == 0 => {
                // A comment at the end of a directive's line stays there.
                if out.ends_with('\n') {
                    out.pop();
                }
                out.push_str("  ");
                out.push_str(&c.text);
                out.push('\n');
                prev_directive = false;
            }
            item => {
                if newlines >= 2 {
                    out.push('\n');
                }
                out.push_str(&indent);
                match item {
                    Item::C(c) => {
                        out.push_str(&c.text);
                        prev_directive = false;
                    }
                    Item::D(d) => {
                        directive(d, src, depth, out);
                        prev_directive = true;
                    }
                }
                out.push('\n');
            }
        }
        prev_end = Some(end);
    }
}

fn directive(d: &Directive, src: &str, depth: usize, out: &mut String) {
    out.push_str(&d.name);
    for a in &d.args {
        out.push(' ');
        match &a.kind {
            ArgKind::Block(b) => {
                if b.body.items.is_empty() && b.body.comments.is_empty() {
                    out.push_str("{}");
                } else if b.one_line && b.body.comments.is_empty() {
                    out.push_str("{ ");
                    for (i, inner) in b.body.items.iter().enumerate() {
                        if i > 0 {
                            out.push_str("; ");
                        }
                        directive(inner, src, depth + 1, out);
                    }
                    out.push_str(" }");
                } else {
                    out.push_str("{\n");
                    body_lines(&b.body, src, depth + 1, out);
                    out.push_str(&"    ".repeat(depth));
                    out.push('}');
                }
            }
            _ => out.push_str(&a.raw),
        }
    }
}
