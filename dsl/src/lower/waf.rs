//! `waf NAME { ... }`: rule sets, an imported OWASP CRS, rules, the mode and the body window,
//! and the condition language of `rule ... when`.

use super::args::Args;
use super::Lower;
use crate::ast::{Arg, ArgKind, Directive};
use crate::diag::{self, Span};
use bext_ir::{Condition, CrsImport, Loc, MatchOp, Subject, Waf, WafAction, WafRule};
use std::collections::HashMap;

/// Built-in WAF rule sets.
pub const RULESETS: &[&str] = &[
    "builtin/sqli",
    "builtin/xss",
    "builtin/traversal",
    "builtin/scanners",
];

impl Lower<'_> {
    pub(super) fn waf(&mut self, d: &Directive) {
        let mut a = self.args(d);
        let Some(name) = self.word(&mut a, "a WAF name") else {
            return;
        };
        let Some(body) = self.block(&mut a) else {
            return;
        };
        self.done(&mut a);
        let mut w = Waf {
            name: name.raw.clone(),
            rulesets: vec![],
            rules: vec![],
            inspect_body_bytes: None,
            crs: None,
            detect_only: false,
            past_limit_block: false,
            at: self.loc(d.name_span),
        };
        let mut seen = HashMap::new();
        let mut rule_names: HashMap<String, Span> = HashMap::new();
        for d in &body.items {
            if !self.known("waf", d) {
                continue;
            }
            let mut a = self.args(d);
            match d.name.as_str() {
                "ruleset" => {
                    if a.peek().is_none() {
                        self.missing(&a, "a rule set such as `builtin/sqli`");
                    }
                    while let Some(x) = a.next() {
                        if let Some(i) = self.keyword(x, "rule set", RULESETS) {
                            w.rulesets.push(RULESETS[i].to_string());
                        }
                    }
                }
                "rule" => {
                    let Some(n) = self.word(&mut a, "a rule name") else {
                        continue;
                    };
                    if let Some(first) = rule_names.insert(n.raw.clone(), n.span) {
                        self.defined_twice("E0302", "rule", &n.raw, n.span, first);
                    }
                    if let Some(r) = self.rule(&mut a, n, self.loc(d.name_span)) {
                        w.rules.push(r);
                    }
                }
                "import" => {
                    if self.once(&mut seen, d) {
                        w.crs = self.crs_import(&mut a, self.loc(d.name_span));
                    }
                }
                "mode" => {
                    if self.once(&mut seen, d) {
                        if let Some(x) = self.need(&mut a, "`block` or `detect`") {
                            if let Some(i) = self.keyword(x, "WAF mode", &["block", "detect"]) {
                                w.detect_only = i == 1;
                            }
                        }
                    }
                }
                "past_limit" => {
                    if self.once(&mut seen, d) {
                        if let Some(x) = self.need(&mut a, "`pass` or `block`") {
                            if let Some(i) = self.keyword(x, "past_limit value", &["pass", "block"])
                            {
                                w.past_limit_block = i == 1;
                            }
                        }
                    }
                }
                // `inspect_body` and `body_limit` are one setting.
                _ => {
                    let mut probe = d.clone();
                    probe.name = "body_limit".into();
                    if self.once(&mut seen, &probe) {
                        w.inspect_body_bytes = self.next_size(&mut a);
                    }
                }
            }
            self.done(&mut a);
        }
        self.spans.wafs.push(name.span);
        self.config.wafs.push(w);
    }

    /// `import crs "DIR" paranoia N [anomaly_threshold IN OUT] [exclude ID…] [skip_unsupported]`.
    fn crs_import(&mut self, a: &mut Args<'_>, at: Loc) -> Option<CrsImport> {
        let kind = self.need(a, "`crs`")?;
        self.keyword(kind, "rule set format", &["crs"])?;
        let dir = self.text(a, "the CRS `rules/` folder, quoted")?;
        let p = self.need(a, "`paranoia N`")?;
        if !p.is_word("paranoia") {
            self.wrong(p, "`paranoia N` (1 to 4)");
            return None;
        }
        let paranoia = self.next_number(a, 1, 4)? as u8;
        let mut crs = CrsImport {
            dir: dir.text().to_string(),
            paranoia,
            inbound_threshold: None,
            outbound_threshold: None,
            exclude: vec![],
            skip_unsupported: false,
            at,
        };
        while let Some(x) = a.peek() {
            let opts = ["anomaly_threshold", "exclude", "skip_unsupported"];
            let Some(i) = self.keyword(x, "import option", &opts) else {
                a.next();
                return None;
            };
            a.next();
            match i {
                0 => {
                    crs.inbound_threshold = Some(self.next_number(a, 1, 10_000)? as u32);
                    crs.outbound_threshold = Some(self.next_number(a, 1, 10_000)? as u32);
                }
                1 => {
                    let before = crs.exclude.len();
                    while a.peek().is_some_and(|x| matches!(x.kind, ArgKind::Number)) {
                        crs.exclude.push(self.next_number(a, 1, 9_999_999)? as u32);
                    }
                    if crs.exclude.len() == before {
                        self.missing(a, "rule ids to leave out, such as `942100`");
                        return None;
                    }
                }
                _ => crs.skip_unsupported = true,
            }
        }
        Some(crs)
    }

    fn rule(&mut self, a: &mut Args<'_>, name: &Arg, at: Loc) -> Option<WafRule> {
        let w = self.need(a, "`when CONDITION => ACTION`")?;
        if !w.is_word("when") {
            self.wrong(w, "`when`");
            return None;
        }
        let start = a.i;
        let arrow = a.d.args[start..].iter().position(|x| x.is_word("=>"));
        let Some(arrow) = arrow.map(|p| p + start) else {
            self.missing(a, "`=> ACTION` (deny STATUS, allow or log)");
            a.i = a.d.args.len();
            return None;
        };
        let toks = &a.d.args[start..arrow];
        let mut cp = CondParser { toks, i: 0 };
        let when = self.cond_or(&mut cp, a);
        if when.is_some() && cp.i < toks.len() {
            let x = &toks[cp.i];
            self.emit(diag::error(
                "E0214",
                x.span,
                format!("expected `and`, `or` or `=>`, found {}", x.describe()),
            ));
        }
        a.i = arrow + 1;
        let act = self.need(a, "an action: deny STATUS, allow or log")?;
        let action = match self.keyword(act, "WAF action", &["deny", "allow", "log"])? {
            0 => {
                let s = match a.peek() {
                    Some(x) if matches!(x.kind, ArgKind::Number) => {
                        a.next();
                        self.status(x, &[], "deny")?
                    }
                    _ => 403,
                };
                WafAction::Deny { status: s }
            }
            1 => WafAction::Allow,
            _ => WafAction::Log,
        };
        Some(WafRule {
            name: name.raw.clone(),
            when: when?,
            action,
            at,
        })
    }

    fn cond_or(&mut self, p: &mut CondParser<'_>, a: &Args<'_>) -> Option<Condition> {
        let mut parts = vec![self.cond_and(p, a)?];
        while p.eat("or") {
            parts.push(self.cond_and(p, a)?);
        }
        Some(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Condition::Or(parts)
        })
    }

    fn cond_and(&mut self, p: &mut CondParser<'_>, a: &Args<'_>) -> Option<Condition> {
        let mut parts = vec![self.cond_unary(p, a)?];
        while p.eat("and") {
            parts.push(self.cond_unary(p, a)?);
        }
        Some(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Condition::And(parts)
        })
    }

    fn cond_need<'t>(
        &mut self,
        p: &mut CondParser<'t>,
        a: &Args<'_>,
        what: &str,
    ) -> Option<&'t Arg> {
        match p.next() {
            Some(x) => Some(x),
            None => {
                let span = p.toks.last().map_or(a.end_span(), |x| x.span.after());
                self.emit(diag::error(
                    "E0214",
                    span,
                    format!("incomplete condition: expected {what}"),
                ));
                None
            }
        }
    }

    fn cond_unary(&mut self, p: &mut CondParser<'_>, a: &Args<'_>) -> Option<Condition> {
        if p.eat("not") {
            return Some(Condition::Not(Box::new(self.cond_unary(p, a)?)));
        }
        if p.peek().is_some_and(|x| x.raw == "(") {
            p.i += 1;
            let c = self.cond_or(p, a)?;
            let close = self.cond_need(p, a, "`)`")?;
            if close.raw != ")" {
                self.wrong(close, "`)`");
                return None;
            }
            return Some(c);
        }
        let s = self.cond_need(p, a, "a subject such as `path` or `header NAME`")?;
        let subjects = [
            "path",
            "query",
            "method",
            "host",
            "client_ip",
            "header",
            "arg",
            "cookie",
        ];
        let subject = match self.keyword(s, "condition subject", &subjects)? {
            0 => Subject::Path,
            1 => Subject::Query,
            2 => Subject::Method,
            3 => Subject::Host,
            4 => Subject::ClientIp,
            i => {
                let n = self.cond_need(p, a, "a name")?;
                match i {
                    5 => Subject::Header(self.header_name(n)?.to_ascii_lowercase()),
                    6 => Subject::QueryParam(n.text().to_string()),
                    _ => Subject::Cookie(n.text().to_string()),
                }
            }
        };
        let named = matches!(
            subject,
            Subject::Header(_) | Subject::QueryParam(_) | Subject::Cookie(_)
        );
        let op = self.cond_need(
            p,
            a,
            "an operator: =, ~, starts_with, contains, in or present",
        )?;
        let ops = ["=", "~", "starts_with", "contains", "in", "present"];
        let op = match self.keyword(op, "operator", &ops)? {
            0 => MatchOp::Equals(self.cond_need(p, a, "a value")?.text().to_string()),
            1 => {
                let x = self.cond_need(p, a, "a regular expression")?;
                MatchOp::Regex(self.regex(x)?)
            }
            2 => MatchOp::Prefix(self.cond_need(p, a, "a value")?.text().to_string()),
            3 => MatchOp::Contains(self.cond_need(p, a, "a value")?.text().to_string()),
            4 => {
                if subject != Subject::ClientIp {
                    self.emit(diag::error(
                        "E0214",
                        op.span,
                        "`in` applies to `client_ip` only",
                    ));
                    return None;
                }
                let mut cidrs = vec![];
                while let Some(x) = p.peek() {
                    if ["and", "or", ")"].contains(&x.raw.as_str())
                        && matches!(x.kind, ArgKind::Word | ArgKind::Paren)
                    {
                        break;
                    }
                    p.i += 1;
                    cidrs.push(self.cidr(x)?);
                }
                if cidrs.is_empty() {
                    self.cond_need(p, a, "a CIDR such as 10.0.0.0/8")?;
                }
                MatchOp::InCidr(cidrs)
            }
            _ => {
                if !named {
                    self.emit(diag::error(
                        "E0214",
                        op.span,
                        "`present` applies to `header`, `arg` and `cookie` only",
                    ));
                    return None;
                }
                MatchOp::Present
            }
        };
        Some(Condition::Match { subject, op })
    }
}

struct CondParser<'t> {
    toks: &'t [Arg],
    i: usize,
}

impl<'t> CondParser<'t> {
    fn peek(&self) -> Option<&'t Arg> {
        self.toks.get(self.i)
    }
    fn next(&mut self) -> Option<&'t Arg> {
        let t = self.toks.get(self.i);
        self.i += 1;
        t
    }
    fn eat(&mut self, w: &str) -> bool {
        if self.peek().is_some_and(|x| x.is_word(w)) {
            self.i += 1;
            true
        } else {
            false
        }
    }
}
