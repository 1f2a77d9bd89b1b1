//! SecLang import: `SecRule`, `SecAction`, `SecMarker` and `SecRuleUpdateTargetById`, as the
//! OWASP Core Rule Set v4 writes them, into [`Rule`]s.
//!
//! The importer reads a folder laid out as CRS ships it (`*.conf` in name order, `*.data` phrase
//! lists beside them). Anything it cannot represent is collected as an [`Unsupported`] item with
//! the rule id and the reason; the rule is dropped, and the caller decides whether that is an
//! error ([`ImportOptions::skip_unsupported`]). Directives that only configure the host engine
//! (`SecComponentSignature`, …) are accepted and ignored.

use std::path::Path;

use crate::ir::{
    Cidr, Ctl, Disruptive, Macro, MacroPart, Operator, Rule, Selector, SetVar, Target, Transform,
    Var,
};
use crate::Error;

/// A construct the importer could not represent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsupported {
    /// The rule's id (0 for a directive that is not a rule).
    pub rule_id: u32,
    /// The file it came from.
    pub file: String,
    /// What could not be imported.
    pub reason: String,
}

/// How to import a rule set.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// Rule ids to leave out.
    pub exclude: Vec<u32>,
    /// Drop unsupported rules (they are still listed) instead of failing.
    pub skip_unsupported: bool,
}

/// The result of an import: the rules, and what was left out.
#[derive(Clone, Debug, Default)]
pub struct Import {
    /// Rules and markers in file order.
    pub rules: Vec<Rule>,
    /// Every rule or directive that could not be imported.
    pub unsupported: Vec<Unsupported>,
}

/// Imports every `*.conf` file of an installed CRS `rules/` folder, in name order.
pub fn import_dir(dir: &Path, opts: &ImportOptions) -> Result<Import, Error> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| Error::Io(format!("{}: {e}", dir.display())))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "conf"))
        .collect();
    files.sort();
    let mut sources = Vec::new();
    for f in files {
        let text =
            std::fs::read_to_string(&f).map_err(|e| Error::Io(format!("{}: {e}", f.display())))?;
        let name = f
            .file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned());
        sources.push((name, text));
    }
    let refs: Vec<(&str, &str)> = sources
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    import_sources(&refs, Some(dir), opts)
}

/// Imports SecLang sources given as `(file name, text)`; `data_dir` resolves `@pmFromFile`.
pub fn import_sources(
    sources: &[(&str, &str)],
    data_dir: Option<&Path>,
    opts: &ImportOptions,
) -> Result<Import, Error> {
    let mut out = Import::default();
    let mut updates = Vec::new();
    for (file, text) in sources {
        let mut p = Parser {
            file,
            data_dir,
            unsupported: &mut out.unsupported,
            updates: &mut updates,
        };
        p.parse(text, &mut out.rules)?;
    }
    for (id, spec, file) in updates {
        // Updating a rule that was itself dropped (unsupported or excluded) is harmless.
        if let Some(rule) = out.rules.iter_mut().find(|r| r.id == id) {
            if let Err(reason) = update_targets(rule, &spec) {
                out.unsupported.push(Unsupported {
                    rule_id: id,
                    file,
                    reason,
                });
            }
        }
    }
    out.rules
        .retain(|r| !opts.exclude.contains(&r.id) || r.id == 0);
    if !out.unsupported.is_empty() && !opts.skip_unsupported {
        return Err(Error::Unsupported(out.unsupported));
    }
    Ok(out)
}

type Update = (u32, String, String);

struct Parser<'a> {
    file: &'a str,
    data_dir: Option<&'a Path>,
    unsupported: &'a mut Vec<Unsupported>,
    updates: &'a mut Vec<Update>,
}

impl Parser<'_> {
    fn parse(&mut self, text: &str, rules: &mut Vec<Rule>) -> Result<(), Error> {
        // Pending chain: the head and how many links are still open.
        let mut head: Option<(Rule, bool)> = None;
        for (line_no, line) in logical_lines(text) {
            let words = split_words(&line)
                .map_err(|m| Error::Parse(format!("{}:{line_no}: {m}", self.file)))?;
            let Some(directive) = words.first() else {
                continue;
            };
            match directive.as_str() {
                "SecRule" | "SecAction" => {
                    let parsed = if directive == "SecRule" {
                        if words.len() < 3 || words.len() > 4 {
                            return Err(Error::Parse(format!(
                                "{}:{line_no}: SecRule takes 2 or 3 arguments",
                                self.file
                            )));
                        }
                        self.rule(&words[1], &words[2], words.get(3).map_or("", |s| s))
                    } else {
                        self.rule("", "@unconditionalMatch", words.get(1).map_or("", |s| s))
                    };
                    let (rule, chained, problem) = match parsed {
                        Ok((r, c)) => (Some(r), c, None),
                        Err((id, c, reason)) => (None, c, Some((id, reason))),
                    };
                    match head.take() {
                        None => {
                            if let Some((id, reason)) = problem {
                                self.unsupported.push(Unsupported {
                                    rule_id: id,
                                    file: self.file.to_string(),
                                    reason,
                                });
                            }
                            if let Some(mut r) = rule {
                                r.file = self.file.to_string();
                                if chained {
                                    head = Some((r, true));
                                } else {
                                    rules.push(r);
                                }
                            } else if chained {
                                head = Some((Rule::new(0, 0), false));
                            }
                        }
                        Some((mut h, ok)) => {
                            let mut ok = ok;
                            if let Some((_, reason)) = problem {
                                if ok {
                                    self.unsupported.push(Unsupported {
                                        rule_id: h.id,
                                        file: self.file.to_string(),
                                        reason,
                                    });
                                }
                                ok = false;
                            }
                            if let (true, Some(link)) = (ok, rule) {
                                append_link(&mut h, link);
                            }
                            if chained {
                                head = Some((h, ok));
                            } else if ok {
                                rules.push(h);
                            }
                        }
                    }
                }
                "SecMarker" => {
                    let name = words.get(1).cloned().unwrap_or_default();
                    let mut m = Rule::marker(&name);
                    m.file = self.file.to_string();
                    rules.push(m);
                }
                "SecRuleUpdateTargetById" => {
                    let id = words.get(1).and_then(|s| s.parse().ok()).unwrap_or(0);
                    let spec = words.get(2).cloned().unwrap_or_default();
                    self.updates.push((id, spec, self.file.to_string()));
                }
                "SecComponentSignature"
                | "SecDefaultAction"
                | "SecRuleEngine"
                | "SecRequestBodyAccess"
                | "SecResponseBodyAccess"
                | "SecCollectionTimeout" => {}
                other => self.unsupported.push(Unsupported {
                    rule_id: 0,
                    file: self.file.to_string(),
                    reason: format!("directive {other} is not supported"),
                }),
            }
        }
        if let Some((h, _)) = head {
            return Err(Error::Parse(format!(
                "{}: rule {} ends the file with an open chain",
                self.file, h.id
            )));
        }
        Ok(())
    }

    /// Parses one SecRule; on failure returns the rule id (as far as known), whether it opens
    /// a chain, and the reason.
    fn rule(
        &mut self,
        vars: &str,
        op: &str,
        actions: &str,
    ) -> Result<(Rule, bool), (u32, bool, String)> {
        let list = split_actions(actions);
        let id = list
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("id"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let chained = list.iter().any(|(k, _)| k.eq_ignore_ascii_case("chain"));
        let fail = |reason: String| (id, chained, reason);
        let mut rule = Rule::new(id, 2);
        rule.actions.log = true;
        rule.targets = if vars.is_empty() {
            Vec::new()
        } else {
            parse_targets(vars).map_err(fail)?
        };
        let (negated, operator) = self.operator(op).map_err(fail)?;
        rule.negated = negated;
        rule.operator = operator;
        for (key, value) in &list {
            self.action(&mut rule, key, value).map_err(fail)?;
        }
        Ok((rule, chained))
    }

    fn operator(&self, op: &str) -> Result<(bool, Operator), String> {
        let (negated, op) = match op.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, op),
        };
        let Some(rest) = op.strip_prefix('@') else {
            return Ok((negated, Operator::Rx(op.to_string())));
        };
        let (name, arg) = match rest.find(char::is_whitespace) {
            Some(i) => (&rest[..i], rest[i..].trim_start()),
            None => (rest, ""),
        };
        let m = || parse_macro(arg);
        let o = match name.to_ascii_lowercase().as_str() {
            "rx" => Operator::Rx(arg.to_string()),
            "pm" => Operator::Pm(arg.split_whitespace().map(str::to_string).collect()),
            "pmfromfile" | "pmf" => {
                let mut phrases = Vec::new();
                for f in arg.split_whitespace() {
                    let dir = self.data_dir.ok_or("@pmFromFile without a data folder")?;
                    let text = std::fs::read_to_string(dir.join(f))
                        .map_err(|e| format!("@pmFromFile {f}: {e}"))?;
                    phrases.extend(
                        text.lines()
                            .map(str::trim)
                            .filter(|l| !l.is_empty() && !l.starts_with('#'))
                            .map(str::to_string),
                    );
                }
                Operator::Pm(phrases)
            }
            "contains" => Operator::Contains(m()?),
            "beginswith" => Operator::BeginsWith(m()?),
            "endswith" => Operator::EndsWith(m()?),
            "streq" => Operator::Streq(m()?),
            "within" => Operator::Within(m()?),
            "eq" => Operator::Eq(m()?),
            "ge" => Operator::Ge(m()?),
            "gt" => Operator::Gt(m()?),
            "le" => Operator::Le(m()?),
            "lt" => Operator::Lt(m()?),
            "ipmatch" => Operator::IpMatch(
                arg.split(',')
                    .map(|s| parse_cidr(s.trim()))
                    .collect::<Result<_, _>>()?,
            ),
            "validatebyterange" => Operator::ValidateByteRange(parse_ranges(arg)?),
            "validateurlencoding" => Operator::ValidateUrlEncoding,
            "validateutf8encoding" => Operator::ValidateUtf8Encoding,
            "detectsqli" => Operator::DetectSqli,
            "detectxss" => Operator::DetectXss,
            "unconditionalmatch" => Operator::Unconditional,
            other => return Err(format!("operator @{other} is not supported")),
        };
        Ok((negated, o))
    }

    fn action(&mut self, rule: &mut Rule, key: &str, value: &str) -> Result<(), String> {
        let a = &mut rule.actions;
        match key.to_ascii_lowercase().as_str() {
            "id" | "chain" | "ver" | "rev" | "maturity" | "accuracy" | "auditlog"
            | "noauditlog" | "status" => {}
            "phase" => {
                rule.phase = match value {
                    "request" => 2,
                    "response" => 4,
                    "logging" => 5,
                    n => n.parse().map_err(|_| format!("bad phase {n}"))?,
                };
                if !(1..=5).contains(&rule.phase) {
                    return Err(format!("bad phase {value}"));
                }
            }
            "t" => {
                if value.eq_ignore_ascii_case("none") {
                    rule.transforms.clear();
                } else {
                    let t = Transform::parse(value)
                        .ok_or_else(|| format!("transformation t:{value} is not supported"))?;
                    rule.transforms.push(t);
                }
            }
            "pass" | "block" => a.disruptive = Disruptive::Pass,
            "deny" | "drop" => a.disruptive = Disruptive::Deny,
            "allow" => a.disruptive = Disruptive::Allow,
            "log" => a.log = true,
            "nolog" => a.log = false,
            "msg" => a.msg = Some(parse_macro(value)?),
            "logdata" => a.logdata = Some(parse_macro(value)?),
            "tag" => a.tags.push(value.to_string()),
            "severity" => {
                a.severity = Some(match value.to_ascii_uppercase().as_str() {
                    "EMERGENCY" => 0,
                    "ALERT" => 1,
                    "CRITICAL" => 2,
                    "ERROR" => 3,
                    "WARNING" => 4,
                    "NOTICE" => 5,
                    "INFO" => 6,
                    "DEBUG" => 7,
                    n => n.parse().map_err(|_| format!("bad severity {n}"))?,
                })
            }
            "capture" => a.capture = true,
            "multimatch" => a.multi_match = true,
            "setvar" => a.setvars.push(parse_setvar(value)?),
            "skipafter" => a.skip_after = Some(value.to_string()),
            "skip" => a.skip = value.parse().map_err(|_| format!("bad skip {value}"))?,
            "ctl" => a.ctls.push(parse_ctl(value)?),
            other => return Err(format!("action {other} is not supported")),
        }
        Ok(())
    }
}

fn append_link(head: &mut Rule, mut link: Rule) {
    let mut at = head;
    while at.chain.is_some() {
        // Invariant: the loop condition just saw `Some`.
        at = at.chain.as_deref_mut().expect("chain link present");
    }
    link.phase = at.phase;
    link.id = 0;
    at.chain = Some(Box::new(link));
}

/// Joins `\`-continued lines and drops comments; yields (first line number, text).
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut start = 0;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end();
        if cur.is_empty() {
            let t = line.trim_start();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            start = i + 1;
        }
        if let Some(body) = line.strip_suffix('\\') {
            cur.push_str(body);
        } else {
            cur.push_str(line);
            out.push((start, std::mem::take(&mut cur)));
        }
    }
    if !cur.is_empty() {
        out.push((start, cur));
    }
    out
}

/// Splits a directive into words; `"…"` quotes a word, `\"` inside it is a quote.
fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let mut w = Vec::new();
        if b[i] == b'"' {
            i += 1;
            loop {
                match b.get(i) {
                    None => return Err("unterminated quote".into()),
                    Some(b'\\') if b.get(i + 1) == Some(&b'"') => {
                        w.push(b'"');
                        i += 2;
                    }
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(&c) => {
                        w.push(c);
                        i += 1;
                    }
                }
            }
        } else {
            while i < b.len() && !b[i].is_ascii_whitespace() {
                w.push(b[i]);
                i += 1;
            }
        }
        words.push(String::from_utf8_lossy(&w).into_owned());
    }
    Ok(words)
}

/// Splits an action list on commas outside single quotes into `(name, value)`.
fn split_actions(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if quoted && chars.peek() == Some(&'\'') => {
                cur.push('\'');
                chars.next();
            }
            '\'' => {
                quoted = !quoted;
                cur.push(c);
            }
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter()
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
        .map(|a| match a.find(':') {
            Some(i) => {
                let v = a[i + 1..].trim();
                let v = v
                    .strip_prefix('\'')
                    .and_then(|v| v.strip_suffix('\''))
                    .unwrap_or(v);
                (a[..i].trim().to_string(), v.to_string())
            }
            None => (a, String::new()),
        })
        .collect()
}

fn parse_selector(s: &str) -> Result<Selector, String> {
    let s = s
        .strip_prefix('\'')
        .and_then(|v| v.strip_suffix('\''))
        .unwrap_or(s);
    if s.len() >= 2 && s.starts_with('/') && s.ends_with('/') {
        Ok(Selector::Regex(s[1..s.len() - 1].to_string()))
    } else {
        Ok(Selector::Name(s.to_ascii_lowercase()))
    }
}

/// Parses `ARGS|!ARGS:foo|&TX:x|REQUEST_COOKIES:/re/`.
fn parse_targets(s: &str) -> Result<Vec<Target>, String> {
    let mut targets: Vec<Target> = Vec::new();
    let mut excludes: Vec<(Var, Selector)> = Vec::new();
    for part in split_pipes(s) {
        let (neg, part) = match part.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, part),
        };
        let (count, part) = match part.strip_prefix('&') {
            Some(p) => (true, p),
            None => (false, part),
        };
        let (name, sel) = match part.find(':') {
            Some(i) => (&part[..i], Some(&part[i + 1..])),
            None => (part, None),
        };
        let var = Var::parse(name).ok_or_else(|| format!("variable {name} is not supported"))?;
        let sel = sel.map(parse_selector).transpose()?;
        if neg {
            let sel = sel.ok_or_else(|| format!("exclusion !{name} without a member"))?;
            excludes.push((var, sel));
        } else {
            if sel.is_some() && !var.is_collection() {
                return Err(format!("{name} takes no member"));
            }
            targets.push(Target {
                var,
                selector: sel,
                count,
                exclude: Vec::new(),
            });
        }
    }
    for (var, sel) in excludes {
        for t in targets.iter_mut().filter(|t| t.var == var) {
            t.exclude.push(sel.clone());
        }
    }
    Ok(targets)
}

/// Splits on `|` outside `/…/` selectors (a regex selector may contain `|`).
fn split_pipes(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let (mut start, mut in_re, mut i) = (0, false, 0);
    while i < b.len() {
        match b[i] {
            // `XML:/*` is an XPath expression, not a regex.
            b'/' if i > 0 && b[i - 1] == b':' && !s[..i].to_ascii_uppercase().ends_with("XML:") => {
                in_re = true
            }
            b'\\' if in_re => i += 1,
            b'/' if in_re => in_re = false,
            b'|' if !in_re => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    out.push(&s[start..]);
    out
}

fn update_targets(rule: &mut Rule, spec: &str) -> Result<(), String> {
    let mut adds = Vec::new();
    for part in split_pipes(spec) {
        if let Some(p) = part.strip_prefix('!') {
            let (name, sel) = p.split_once(':').ok_or("exclusion without a member")?;
            let var =
                Var::parse(name).ok_or_else(|| format!("variable {name} is not supported"))?;
            let sel = parse_selector(sel)?;
            for t in rule.targets.iter_mut().filter(|t| t.var == var) {
                t.exclude.push(sel.clone());
            }
        } else {
            adds.extend(parse_targets(part)?);
        }
    }
    rule.targets.extend(adds);
    Ok(())
}

/// Parses `%{tx.name}` references; unknown ones are an error.
pub(crate) fn parse_macro(s: &str) -> Result<Macro, String> {
    let mut parts = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find("%{") {
        let Some(j) = rest[i..].find('}') else { break };
        if i > 0 {
            parts.push(MacroPart::Lit(rest[..i].to_string()));
        }
        let inner = &rest[i + 2..i + j];
        let (name, key) = match inner.split_once('.') {
            Some((n, k)) => (n, Some(k.to_ascii_lowercase())),
            None => (inner, None),
        };
        if name.eq_ignore_ascii_case("rule") {
            parts.push(MacroPart::RuleId);
        } else {
            let var =
                Var::parse(name).ok_or_else(|| format!("macro %{{{inner}}} is not supported"))?;
            parts.push(MacroPart::Ref(var, key));
        }
        rest = &rest[i + j + 1..];
    }
    if !rest.is_empty() {
        parts.push(MacroPart::Lit(rest.to_string()));
    }
    Ok(Macro(parts))
}

fn parse_setvar(s: &str) -> Result<SetVar, String> {
    if let Some(name) = s.strip_prefix('!') {
        return Ok(SetVar::Unset(tx_name(name)?));
    }
    let (name, value) = s.split_once('=').unwrap_or((s, "1"));
    let name = tx_name(name)?;
    Ok(if let Some(v) = value.strip_prefix('+') {
        SetVar::Add(name, parse_macro(v)?)
    } else if let Some(v) = value.strip_prefix('-') {
        SetVar::Sub(name, parse_macro(v)?)
    } else {
        SetVar::Set(name, parse_macro(value)?)
    })
}

fn tx_name(s: &str) -> Result<Macro, String> {
    let (coll, key) = s
        .split_once('.')
        .ok_or_else(|| format!("setvar {s} has no collection"))?;
    if !coll.eq_ignore_ascii_case("tx") {
        return Err(format!("setvar on collection {coll} is not supported"));
    }
    parse_macro(key)
}

fn parse_ctl(s: &str) -> Result<Ctl, String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("ctl:{s} has no value"))?;
    let target = |t: &str| -> Result<(Var, Option<Selector>), String> {
        let (name, sel) = match t.split_once(':') {
            Some((n, s)) => (n, Some(parse_selector(s)?)),
            None => (t, None),
        };
        let var = Var::parse(name).ok_or_else(|| format!("variable {name} is not supported"))?;
        Ok((var, sel))
    };
    Ok(match k.to_ascii_lowercase().as_str() {
        "ruleremovebyid" => {
            let (a, b) = v.split_once('-').unwrap_or((v, v));
            let a = a.trim().parse().map_err(|_| format!("bad rule id {v}"))?;
            let b = b.trim().parse().map_err(|_| format!("bad rule id {v}"))?;
            Ctl::RemoveById(a, b)
        }
        "ruleremovebytag" => Ctl::RemoveByTag(v.to_string()),
        "ruleremovetargetbyid" => {
            let (id, t) = v
                .split_once(';')
                .ok_or("ruleRemoveTargetById needs ID;TARGET")?;
            let (var, sel) = target(t)?;
            Ctl::RemoveTargetById(
                id.parse().map_err(|_| format!("bad rule id {id}"))?,
                var,
                sel,
            )
        }
        "ruleremovetargetbytag" => {
            let (tag, t) = v
                .split_once(';')
                .ok_or("ruleRemoveTargetByTag needs TAG;TARGET")?;
            let (var, sel) = target(t)?;
            Ctl::RemoveTargetByTag(tag.to_string(), var, sel)
        }
        "requestbodyprocessor" => Ctl::RequestBodyProcessor(v.to_ascii_uppercase()),
        "auditengine" | "auditlogparts" | "forcerequestbodyvariable" => Ctl::Ignored,
        other => return Err(format!("ctl:{other} is not supported")),
    })
}

fn parse_cidr(s: &str) -> Result<Cidr, String> {
    let (a, bits) = match s.split_once('/') {
        Some((a, b)) => (
            a,
            Some(b.parse::<u8>().map_err(|_| format!("bad prefix in {s}"))?),
        ),
        None => (s, None),
    };
    let ip: std::net::IpAddr = a.parse().map_err(|_| format!("bad address {s}"))?;
    Ok(match ip {
        std::net::IpAddr::V4(v4) => Cidr {
            addr: u32::from(v4) as u128,
            bits: bits.unwrap_or(32).min(32),
            v4: true,
        },
        std::net::IpAddr::V6(v6) => Cidr {
            addr: u128::from(v6),
            bits: bits.unwrap_or(128).min(128),
            v4: false,
        },
    })
}

fn parse_ranges(s: &str) -> Result<Vec<(u8, u8)>, String> {
    s.split(',')
        .map(|p| {
            let p = p.trim();
            let (a, b) = p.split_once('-').unwrap_or((p, p));
            let a = a
                .trim()
                .parse()
                .map_err(|_| format!("bad byte range {p}"))?;
            let b = b
                .trim()
                .parse()
                .map_err(|_| format!("bad byte range {p}"))?;
            Ok((a, b))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_quotes_and_chain() {
        let src = "SecRule ARGS|!ARGS:foo \"@rx a\\\"b\" \\\n  \"id:1,phase:2,block,t:none,t:lowercase,msg:'x, y',chain\"\n  SecRule TX:a \"@eq 1\" \"setvar:'tx.s=+%{tx.critical_anomaly_score}'\"\nSecMarker END";
        let imp = import_sources(&[("f.conf", src)], None, &ImportOptions::default()).unwrap();
        assert_eq!(imp.rules.len(), 2);
        let r = &imp.rules[0];
        assert_eq!(r.id, 1);
        assert!(matches!(&r.operator, Operator::Rx(p) if p == "a\"b"));
        assert_eq!(r.transforms, vec![Transform::Lowercase]);
        assert_eq!(r.targets[0].exclude.len(), 1);
        assert!(r.chain.is_some());
        assert_eq!(imp.rules[1].marker.as_deref(), Some("END"));
    }

    #[test]
    fn unsupported_is_reported_with_the_rule_id() {
        let src = "SecRule ARGS \"@rsub x\" \"id:7,phase:2\"\nSecRule ARGS \"@rx x\" \"id:8,phase:2,exec:/bin/x\"";
        let err = import_sources(&[("f.conf", src)], None, &ImportOptions::default()).unwrap_err();
        let Error::Unsupported(list) = err else {
            panic!("expected unsupported")
        };
        assert_eq!(
            list.iter().map(|u| u.rule_id).collect::<Vec<_>>(),
            vec![7, 8]
        );
        let opts = ImportOptions {
            skip_unsupported: true,
            ..Default::default()
        };
        let imp = import_sources(&[("f.conf", src)], None, &opts).unwrap();
        assert!(imp.rules.is_empty());
        assert_eq!(imp.unsupported.len(), 2);
    }
}
