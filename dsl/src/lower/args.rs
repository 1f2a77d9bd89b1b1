//! The argument cursor and the readers of plain values: numbers, sizes, durations,
//! percentages, keywords and status codes.
//!
//! Every reader reports its own mistake at the argument's span (a missing argument just after
//! the last one) and returns `None`, so a directive's other arguments are still checked.

use super::Lower;
use crate::ast::{Arg, ArgKind, Body, Directive};
use crate::diag::{self, suggest, Span};

/// A cursor over a directive's arguments.
pub(super) struct Args<'d> {
    pub(super) d: &'d Directive,
    pub(super) i: usize,
}

impl<'d> Args<'d> {
    pub(super) fn new(d: &'d Directive) -> Args<'d> {
        Args { d, i: 0 }
    }
    pub(super) fn next(&mut self) -> Option<&'d Arg> {
        let a = self.d.args.get(self.i);
        self.i += 1;
        a
    }
    pub(super) fn peek(&self) -> Option<&'d Arg> {
        self.d.args.get(self.i)
    }
    /// Consumes the next argument if it is the word `w`.
    pub(super) fn eat(&mut self, w: &str) -> bool {
        if self.peek().is_some_and(|a| a.is_word(w)) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    /// Where a missing argument would have been: just after the last one.
    pub(super) fn end_span(&self) -> Span {
        self.d
            .args
            .last()
            .map_or(self.d.name_span, |a| a.span)
            .after()
    }
}

/// A kind of number with a unit: how it is written, checked and scaled.
struct Quantity {
    /// `size`, `duration`: the word in messages.
    noun: &'static str,
    /// The argument kind the grammar gives a well-formed value.
    is_own: fn(&ArgKind) -> bool,
    /// The code of a missing or unknown unit.
    code: &'static str,
    /// Each unit and how many base units it is, smallest first.
    units: &'static [(&'static str, u64)],
    unit_list: &'static str,
    example_unit: &'static str,
    /// What was expected, for E0104 and E0201.
    expected: &'static str,
    /// The help of E0204 when the value overflows.
    largest: &'static str,
}

const SIZE: Quantity = Quantity {
    noun: "size",
    is_own: |k| matches!(k, ArgKind::Size),
    code: "E0202",
    units: &[("b", 1), ("kb", 1 << 10), ("mb", 1 << 20), ("gb", 1 << 30)],
    unit_list: "b, kb, mb or gb",
    example_unit: "kb",
    expected: "a size such as `16kb`",
    largest: "the largest size is 17179869183gb (2^64 bytes)",
};

const DURATION: Quantity = Quantity {
    noun: "duration",
    is_own: |k| matches!(k, ArgKind::Duration),
    code: "E0203",
    units: &[
        ("ms", 1),
        ("s", 1_000),
        ("m", 60_000),
        ("h", 3_600_000),
        ("d", 86_400_000),
    ],
    unit_list: "ms, s, m, h or d",
    example_unit: "s",
    expected: "a duration such as `2s`",
    largest: "the largest duration is 213503982d (2^64 milliseconds)",
};

impl Lower<'_> {
    pub(super) fn missing(&mut self, a: &Args<'_>, what: &str) {
        let b = diag::error(
            "E0104",
            a.end_span(),
            format!("`{}` needs {what}", a.d.name),
        )
        .label(a.d.name_span, "in this directive")
        .help_opt(usage_help(&a.d.name, what));
        self.emit(b);
    }

    /// The next argument, or E0104 naming `what` was expected.
    pub(super) fn need<'d>(&mut self, a: &mut Args<'d>, what: &str) -> Option<&'d Arg> {
        match a.next() {
            Some(x) => Some(x),
            None => {
                self.missing(a, what);
                None
            }
        }
    }

    pub(super) fn wrong(&mut self, arg: &Arg, what: &str) {
        let help = match &arg.kind {
            ArgKind::Str(t) if what.contains("name") => {
                Some(format!("names are bare words: write `{t}` without quotes"))
            }
            _ => usage_help(&self.current, what),
        };
        self.emit(
            diag::error(
                "E0201",
                arg.span,
                format!("expected {what}, found {}", arg.describe()),
            )
            .help_opt(help),
        );
    }

    /// Starts checking a directive.
    pub(super) fn args<'d>(&mut self, d: &'d Directive) -> Args<'d> {
        self.mark = self.diags.list.len();
        self.current.clone_from(&d.name);
        Args::new(d)
    }

    /// Reports the first argument left over, unless the directive already has an error.
    pub(super) fn done(&mut self, a: &mut Args<'_>) {
        if self.diags.list.len() > self.mark {
            return;
        }
        if let Some(x) = a.next() {
            let name = a.d.name.clone();
            let mut b = diag::error(
                "E0105",
                x.span,
                format!("unexpected argument {} to `{name}`", x.describe()),
            );
            if x.block().is_some() {
                b = diag::error("E0106", x.span, format!("`{name}` does not take a block"));
            }
            self.emit(b.help_opt(usage_help(&name, "")));
        }
    }

    /// A word or string (for names, paths, values).
    pub(super) fn text<'d>(&mut self, a: &mut Args<'d>, what: &str) -> Option<&'d Arg> {
        let x = self.need(a, what)?;
        match x.kind {
            ArgKind::Word | ArgKind::Str(_) | ArgKind::Number => Some(x),
            _ => {
                self.wrong(x, what);
                None
            }
        }
    }

    pub(super) fn word<'d>(&mut self, a: &mut Args<'d>, what: &str) -> Option<&'d Arg> {
        let x = self.need(a, what)?;
        match x.kind {
            ArgKind::Word => Some(x),
            _ => {
                self.wrong(x, what);
                None
            }
        }
    }

    pub(super) fn block<'d>(&mut self, a: &mut Args<'d>) -> Option<&'d Body> {
        match a.next() {
            Some(x) => match &x.kind {
                ArgKind::Block(b) => Some(&b.body),
                _ => {
                    self.wrong(x, "a block `{ ... }`");
                    None
                }
            },
            None => {
                let b = diag::error(
                    "E0106",
                    a.end_span(),
                    format!("`{}` needs a block `{{ ... }}`", a.d.name),
                )
                .help_opt(usage_help(&a.d.name, "a block"));
                self.emit(b);
                None
            }
        }
    }

    fn parse_digits(&mut self, digits: &str, span: Span) -> Option<u64> {
        match digits.parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => {
                self.emit(
                    diag::error("E0204", span, "number too large")
                        .help("the largest number is 18446744073709551615 (2^64 - 1)"),
                );
                None
            }
        }
    }

    pub(super) fn number(&mut self, x: &Arg, min: u64, max: u64) -> Option<u64> {
        let negative = x
            .raw
            .strip_prefix('-')
            .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()));
        if !matches!(x.kind, ArgKind::Number) && !negative {
            self.wrong(x, "a number");
            return None;
        }
        let n = x.raw.parse::<u64>().ok();
        match n {
            Some(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                let help = if negative {
                    "numbers are never negative here".to_string()
                } else if n.is_some_and(|n| n < min) {
                    format!("the smallest allowed value is {min}")
                } else {
                    format!("the largest allowed value is {max}")
                };
                self.emit(
                    diag::error(
                        "E0204",
                        x.span,
                        format!("`{}` is out of range: expected {min} to {max}", x.raw),
                    )
                    .help(help),
                );
                None
            }
        }
    }

    pub(super) fn next_number(&mut self, a: &mut Args<'_>, min: u64, max: u64) -> Option<u64> {
        let x = self.need(a, "a number")?;
        self.number(x, min, max)
    }

    pub(super) fn next_u32(&mut self, a: &mut Args<'_>, min: u32) -> Option<u32> {
        self.next_number(a, u64::from(min), u64::from(u32::MAX))
            .map(|n| n as u32)
    }

    /// A number with the unit of `q`, in `q`'s base unit (bytes, milliseconds).
    fn quantity(&mut self, x: &Arg, q: &Quantity) -> Option<u64> {
        let split = x
            .raw
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(x.raw.len());
        let (digits, unit) = x.raw.split_at(split);
        match &x.kind {
            k if (q.is_own)(k) => {}
            ArgKind::Number | ArgKind::Word | ArgKind::Size | ArgKind::Duration
                if !digits.is_empty() =>
            {
                let msg = if unit.is_empty() {
                    format!("{} `{}` has no unit", q.noun, x.raw)
                } else {
                    format!("unknown {} unit `{unit}` in `{}`", q.noun, x.raw)
                };
                self.emit(diag::error(q.code, x.span, msg).help(format!(
                    "{}s take a unit: {} (for example `{digits}{}`)",
                    q.noun, q.unit_list, q.example_unit
                )));
                return None;
            }
            _ => {
                self.wrong(x, q.expected);
                return None;
            }
        }
        let n = self.parse_digits(digits, x.span)?;
        // The grammar admits only the units of the table; the last is the largest.
        let mul = q
            .units
            .iter()
            .find(|(u, _)| *u == unit)
            .or(q.units.last())
            .map_or(1, |(_, m)| *m);
        match n.checked_mul(mul) {
            Some(v) => Some(v),
            None => {
                self.emit(
                    diag::error("E0204", x.span, format!("{} too large", q.noun)).help(q.largest),
                );
                None
            }
        }
    }

    /// A size in bytes.
    pub(super) fn next_size(&mut self, a: &mut Args<'_>) -> Option<u64> {
        let x = self.need(a, SIZE.expected)?;
        self.quantity(x, &SIZE)
    }

    /// A duration in milliseconds.
    pub(super) fn next_duration(&mut self, a: &mut Args<'_>) -> Option<u64> {
        let x = self.need(a, DURATION.expected)?;
        self.quantity(x, &DURATION)
    }

    pub(super) fn percent(&mut self, x: &Arg) -> Option<u32> {
        if !matches!(x.kind, ArgKind::Percent) {
            self.wrong(x, "a percentage such as `20%`");
            return None;
        }
        let n = self.parse_digits(x.raw.trim_end_matches('%'), x.span)?;
        if n > 100 {
            self.emit(
                diag::error("E0213", x.span, "a percentage is at most 100%")
                    .help("write a percentage from 0% to 100%"),
            );
            return None;
        }
        Some(n as u32)
    }

    /// One of `choices`, or E0206 with a did-you-mean.
    pub(super) fn keyword(&mut self, x: &Arg, what: &str, choices: &[&str]) -> Option<usize> {
        if let Some(i) = choices.iter().position(|c| x.is_word(c)) {
            return Some(i);
        }
        let help = suggest(x.text(), choices.iter().copied())
            .unwrap_or_else(|| format!("expected one of: {}", choices.join(", ")));
        self.emit(
            diag::error("E0206", x.span, format!("unknown {what} {}", x.describe())).help(help),
        );
        None
    }

    /// `on` or `off`: true for `on`; `what` names the setting in E0206.
    pub(super) fn on_off(&mut self, a: &mut Args<'_>, what: &str) -> Option<bool> {
        let x = self.need(a, "`on` or `off`")?;
        self.keyword(x, what, &["on", "off"]).map(|k| k == 0)
    }

    pub(super) fn status(&mut self, x: &Arg, allowed: &[u16], what: &str) -> Option<u16> {
        let n = if matches!(x.kind, ArgKind::Number) {
            x.raw.parse::<u16>().ok()
        } else {
            None
        };
        match n {
            Some(n) if allowed.is_empty() && (100..=599).contains(&n) => Some(n),
            Some(n) if allowed.contains(&n) => Some(n),
            _ => {
                let help = if allowed.is_empty() {
                    "a status code is a number from 100 to 599".to_string()
                } else {
                    format!(
                        "{what} status codes are {}",
                        allowed
                            .iter()
                            .map(u16::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                self.emit(
                    diag::error(
                        "E0207",
                        x.span,
                        format!("invalid {what} status {}", x.describe()),
                    )
                    .help(help),
                );
                None
            }
        }
    }

    pub(super) fn value(&mut self, a: &mut Args<'_>, what: &str) -> Option<String> {
        self.text(a, what).map(|x| x.text().to_string())
    }
}

/// The help line of a missing, extra or ill-typed argument of `directive` when `what` was
/// expected: how to write the value, or the directive's shape.
pub(super) fn usage_help(directive: &str, what: &str) -> Option<String> {
    if what.contains("duration") {
        return Some("write a duration with its unit: `500ms`, `5s`, `10m`, `1h`".into());
    }
    if what.contains("size") {
        return Some("write a size with its unit: `512b`, `16kb`, `10mb`, `1gb`".into());
    }
    crate::hints::usage(directive).map(str::to_string)
}
