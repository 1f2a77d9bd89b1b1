//! Compilation: rules → per-phase rule lists, one Aho-Corasick automaton for every literal
//! and phrase, and per transformation chain a few multi-pattern regexes.
//!
//! Everything here is built once and never mutated; [`Waf`] is `Send + Sync` and meant to be
//! shared by `Arc`. Per-request state lives in [`crate::Transaction`].

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind as AcKind};
use regex_automata::meta::{self, Regex};
use regex_automata::util::syntax;
use regex_automata::MatchKind;

use crate::ir::{
    Actions, Ctl, Disruptive, Macro, Operator, Rule, Selector, Target, Transform, Var,
};
use crate::seclang::Unsupported;
use crate::Error;

/// What to do with a body larger than the inspection window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OverLimit {
    /// Inspect the window, let the rest through uninspected.
    #[default]
    Pass,
    /// Block the request.
    Block,
}

/// Compilation and runtime settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// Paranoia level 1–4: rules above it are left out at compile time.
    pub paranoia: u8,
    /// Inbound anomaly score at which a request is blocked.
    pub inbound_threshold: i64,
    /// Outbound anomaly score at which a response is blocked.
    pub outbound_threshold: i64,
    /// Detection only: evaluate and report, never block.
    pub detection_only: bool,
    /// Bytes of request (and response) body inspected.
    pub body_limit: usize,
    /// What happens past `body_limit`.
    pub over_limit: OverLimit,
    /// Arguments inspected per request (more are counted, not inspected).
    pub max_args: usize,
    /// JSON nesting inspected (deeper documents are a body error).
    pub max_json_depth: usize,
    /// Multipart parts inspected.
    pub max_parts: usize,
    /// Extra initial transaction variables (what `crs-setup.conf` would set).
    pub tx_vars: Vec<(String, String)>,
    /// Drop rules whose operator cannot be compiled (listed in [`Waf::unsupported`]) instead
    /// of failing.
    pub skip_unsupported: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            paranoia: 1,
            inbound_threshold: 5,
            outbound_threshold: 4,
            detection_only: false,
            body_limit: 128 * 1024,
            over_limit: OverLimit::Pass,
            max_args: 1024,
            max_json_depth: 64,
            max_parts: 256,
            tx_vars: Vec::new(),
            skip_unsupported: false,
        }
    }
}

/// Index of an interned transformation chain.
pub(crate) type ChainId = u16;
/// Index of a compiled operator.
pub(crate) type OpId = u32;

/// A compiled operator.
pub(crate) enum COp {
    /// Decided by the scan of the link's chain (regex sets and/or the shared automaton);
    /// `regex` is kept for captures and for dynamic values.
    Scanned { regex: Option<Regex> },
    /// Evaluated directly (macro arguments, numbers, validators, detectors).
    Direct(Operator),
}

/// A compiled target.
pub(crate) struct CTarget {
    pub var: Var,
    pub selector: Option<CSelector>,
    pub count: bool,
    pub exclude: Vec<CSelector>,
}

/// A compiled member selector.
pub(crate) enum CSelector {
    Name(String),
    Regex(Regex),
}

impl CSelector {
    pub(crate) fn matches(&self, name: &[u8]) -> bool {
        match self {
            CSelector::Name(n) => n.as_bytes().eq_ignore_ascii_case(name),
            CSelector::Regex(r) => r.is_match(name),
        }
    }
}

/// One link of a compiled rule.
pub(crate) struct CLink {
    pub targets: Vec<CTarget>,
    /// Links with the same target list share this id (see `Transaction::link_may_match`).
    pub targets_id: u32,
    pub op: OpId,
    pub negated: bool,
    pub chain: ChainId,
    /// `multiMatch`: the operator again after each shorter prefix of the chain (the value
    /// as sent, then after each transformation), as (prefix chain, operator).
    pub alts: Vec<(ChainId, OpId)>,
    pub actions: Actions,
}

/// A compiled rule (or marker).
pub(crate) struct CRule {
    pub id: u32,
    pub links: Vec<CLink>,
    pub tags: Vec<String>,
    pub file: String,
    pub log: bool,
    pub disruptive: Disruptive,
    pub msg: Option<Macro>,
    /// Index (in the phase list) to continue at after `skipAfter`.
    pub skip_to: Option<usize>,
    pub marker: bool,
}

/// The bit of a chain's set `i` in `Waf::op_sets` (the 64th and later share the last bit).
pub(crate) fn set_bit(i: usize) -> u64 {
    1 << i.min(63)
}

/// A multi-pattern regex over one chain: pattern index → operator.
pub(crate) struct RegexSet {
    pub regex: Regex,
    pub ops: Vec<OpId>,
}

/// What a phrase-automaton pattern means for an operator.
#[derive(Clone, Copy, Debug)]
pub(crate) enum LitKind {
    Phrase,
    Contains,
    Begins,
    Ends,
    Equals,
    /// A required factor of a prefiltered regex: seeing it makes the regex a candidate.
    Factor,
}

/// One operator use of an automaton pattern.
pub(crate) struct AcUse {
    pub op: OpId,
    pub chain: ChainId,
    pub kind: LitKind,
    pub literal: Vec<u8>,
}

/// The compiled WAF: immutable, shared by every thread.
pub struct Waf {
    pub(crate) config: Config,
    pub(crate) phases: [Vec<CRule>; 5],
    pub(crate) chains: Vec<Vec<Transform>>,
    pub(crate) sets: Vec<Vec<RegexSet>>,
    pub(crate) ac: Option<AhoCorasick>,
    pub(crate) ac_uses: Vec<Vec<AcUse>>,
    pub(crate) ops: Vec<COp>,
    /// For each chain, whether any operator is decided by the automaton.
    pub(crate) chain_has_ac: Vec<bool>,
    /// For each chain, the value features (`transform::features`) without which every
    /// step leaves a value as it is.
    pub(crate) chain_masks: Vec<u32>,
    /// For each automaton pattern, the chains of its operators, as `chain_ac_bits`.
    pub(crate) ac_chains: Vec<u64>,
    /// For each chain, its bit in `ac_chains` (one for each of the first 64 chains with
    /// automaton operators, all bits for the others).
    pub(crate) chain_ac_bits: Vec<u64>,
    /// For each operator in one of its chain's regex sets, that set's bit ([`set_bit`]).
    pub(crate) op_sets: Vec<u64>,
    /// (target list, chain) → the bits of the chain's sets holding an operator that some
    /// link reads the list with under the chain.
    list_sets: HashMap<(u32, ChainId), u64>,
    /// For each chain of two or more steps, the chain of all its steps but the last.
    pub(crate) chain_parents: Vec<Option<ChainId>>,
    unsupported: Vec<Unsupported>,
    rule_count: usize,
    pattern_count: usize,
    prefiltered: usize,
}

/// Regex syntax: PCRE's DOTALL and DOLLAR_ENDONLY (what ModSecurity sets), bytes not UTF-8.
fn syntax_config(case_insensitive: bool) -> syntax::Config {
    syntax::Config::new()
        .unicode(false)
        .utf8(false)
        .dot_matches_new_line(true)
        .case_insensitive(case_insensitive)
}

pub(crate) fn build_regex(pattern: &str, case_insensitive: bool) -> Result<Regex, String> {
    Regex::builder()
        .syntax(syntax_config(case_insensitive))
        .configure(
            Regex::config()
                .utf8_empty(false)
                .nfa_size_limit(Some(64 << 20)),
        )
        .build(&translate_pcre(pattern))
        .map_err(|e| {
            format!(
                "regex does not compile: {}",
                e.syntax_error().map_or(e.to_string(), |s| s.to_string())
            )
        })
}

/// Rewrites the few PCRE spellings the regex crate reads differently.
fn translate_pcre(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    let mut chars = p.chars().peekable();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('Z') => out.push_str(r"\z"),
                Some('e') => out.push_str(r"\x1b"),
                Some('h') => out.push_str(if in_class { r" \t" } else { r"[ \t]" }),
                Some('/') => out.push('/'),
                // `\x{HH}`: a byte in PCRE's non-UTF mode; the braced form means a code
                // point to the regex crate, which non-Unicode mode refuses above 0x7f.
                Some('x') if chars.peek() == Some(&'{') => {
                    let rest: String = chars.clone().skip(1).take_while(|c| *c != '}').collect();
                    match u32::from_str_radix(&rest, 16) {
                        Ok(v) if v <= 0xff => {
                            out.push_str(&format!(r"\x{v:02x}"));
                            for _ in 0..rest.len() + 2 {
                                chars.next();
                            }
                        }
                        _ => out.push_str(r"\x"),
                    }
                }
                Some(n) if !n.is_ascii_alphanumeric() && !in_class => {
                    out.push('\\');
                    out.push(n);
                }
                Some(n) if !n.is_ascii_alphanumeric() => {
                    if matches!(n, '[' | ']' | '\\' | '-' | '^' | '&' | '~') {
                        out.push('\\');
                    }
                    out.push(n);
                }
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push_str(r"\\"),
            },
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
                // A `]` first in a class is a literal in PCRE.
                if chars.peek() == Some(&']') {
                    out.push_str(r"\]");
                    chars.next();
                }
            }
            '[' if in_class => out.push_str(r"\["),
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            '&' | '~' | '-' if in_class => {
                // `&&`, `~~` and `--` are set operations in the regex crate, literals in PCRE.
                if c != '-' || chars.peek() == Some(&'-') {
                    out.push('\\');
                }
                out.push(c);
            }
            c if !c.is_ascii() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!(r"\x{b:02x}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Whether a rule is CRS's paranoia gate: `SecRule TX:DETECTION_PARANOIA_LEVEL "@lt N"` with
/// `skipAfter` and nothing else. Returns N.
fn paranoia_gate(r: &Rule) -> Option<u8> {
    if r.chain.is_some() || r.actions.skip_after.is_none() || r.targets.len() != 1 {
        return None;
    }
    let t = &r.targets[0];
    let is_pl = matches!(&t.selector, Some(Selector::Name(n)) if n == "detection_paranoia_level");
    if t.var != Var::Tx || !is_pl || t.count || r.negated {
        return None;
    }
    match &r.operator {
        Operator::Lt(m) => m.as_literal()?.trim().parse().ok(),
        _ => None,
    }
}

struct Builder {
    chains: HashMap<Vec<Transform>, ChainId>,
    target_lists: HashMap<String, u32>,
    chain_list: Vec<Vec<Transform>>,
    ops: Vec<COp>,
    rx: Vec<(ChainId, OpId, String)>,
    phrases: Vec<(Vec<u8>, AcUse)>,
    unsupported: Vec<Unsupported>,
}

impl Builder {
    fn chain(&mut self, t: &[Transform]) -> ChainId {
        if let Some(id) = self.chains.get(t) {
            return *id;
        }
        // Every prefix is a chain too: a value is transformed by a chain's last step from its
        // parent's result (see `Transaction::entry`).
        if t.len() > 1 {
            self.chain(&t[..t.len() - 1]);
        }
        let id = self.chain_list.len() as ChainId;
        self.chains.insert(t.to_vec(), id);
        self.chain_list.push(t.to_vec());
        id
    }

    fn op(&mut self, rule: &Rule, link: &Rule, chain: ChainId) -> Result<OpId, String> {
        let id = self.ops.len() as OpId;
        let lit = |m: &Macro| m.as_literal().filter(|s| !s.is_empty());
        let phrase = |this: &mut Self, kind: LitKind, s: &str| {
            this.phrases.push((
                s.as_bytes().to_ascii_lowercase(),
                AcUse {
                    op: id,
                    chain,
                    kind,
                    literal: s.as_bytes().to_vec(),
                },
            ));
        };
        let op = match &link.operator {
            Operator::Rx(p) => {
                let regex = build_regex(p, false)?;
                self.rx.push((chain, id, p.clone()));
                COp::Scanned { regex: Some(regex) }
            }
            Operator::Pm(list) => {
                for p in list.iter().filter(|p| !p.is_empty()) {
                    phrase(self, LitKind::Phrase, p);
                }
                COp::Scanned { regex: None }
            }
            Operator::Contains(m)
            | Operator::BeginsWith(m)
            | Operator::EndsWith(m)
            | Operator::Streq(m)
                if lit(m).is_some() =>
            {
                let kind = match &link.operator {
                    Operator::Contains(_) => LitKind::Contains,
                    Operator::BeginsWith(_) => LitKind::Begins,
                    Operator::EndsWith(_) => LitKind::Ends,
                    _ => LitKind::Equals,
                };
                phrase(self, kind, &lit(m).unwrap_or_default());
                COp::Scanned { regex: None }
            }
            other => COp::Direct(other.clone()),
        };
        let _ = rule;
        self.ops.push(op);
        Ok(id)
    }

    fn target(&self, t: &Target) -> Result<CTarget, String> {
        let sel = |s: &Selector| -> Result<CSelector, String> {
            Ok(match s {
                Selector::Name(n) => CSelector::Name(n.clone()),
                Selector::Regex(r) => CSelector::Regex(build_regex(r, true)?),
            })
        };
        Ok(CTarget {
            var: t.var,
            selector: t.selector.as_ref().map(sel).transpose()?,
            count: t.count,
            exclude: t.exclude.iter().map(sel).collect::<Result<_, _>>()?,
        })
    }

    fn rule(&mut self, r: &Rule) -> Result<CRule, String> {
        let mut links = Vec::new();
        for link in r.links() {
            let chain = self.chain(&link.transforms);
            let op = self.op(r, link, chain)?;
            let mut alts = Vec::new();
            if link.actions.multi_match && !link.negated {
                for k in 0..link.transforms.len() {
                    let c = self.chain(&link.transforms[..k]);
                    alts.push((c, self.op(r, link, c)?));
                }
            }
            let mut actions = link.actions.clone();
            for c in &actions.ctls {
                if let Ctl::RemoveTargetById(..) | Ctl::RemoveTargetByTag(..) = c {}
            }
            actions.msg = None;
            let next = self.target_lists.len() as u32;
            let targets_id = *self
                .target_lists
                .entry(format!("{:?}", link.targets))
                .or_insert(next);
            links.push(CLink {
                targets_id,
                targets: link
                    .targets
                    .iter()
                    .map(|t| self.target(t))
                    .collect::<Result<_, _>>()?,
                op,
                negated: link.negated,
                chain,
                alts,
                actions,
            });
        }
        Ok(CRule {
            id: r.id,
            links,
            tags: r.actions.tags.clone(),
            file: r.file.clone(),
            log: r.actions.log,
            disruptive: r.actions.disruptive,
            msg: r.actions.msg.clone(),
            skip_to: None,
            marker: false,
        })
    }
}

impl Waf {
    /// Compiles rules (in order; markers included) for `config`.
    pub fn compile(rules: &[Rule], config: Config) -> Result<Waf, Error> {
        let mut b = Builder {
            chains: HashMap::new(),
            target_lists: HashMap::new(),
            chain_list: Vec::new(),
            ops: Vec::new(),
            rx: Vec::new(),
            phrases: Vec::new(),
            unsupported: Vec::new(),
        };
        let mut phases: [Vec<CRule>; 5] = Default::default();
        let mut markers: Vec<(usize, &str)> = Vec::new();
        let mut skipping: [Option<&str>; 5] = [None; 5];
        let mut rule_count = 0;
        for (idx, r) in rules.iter().enumerate() {
            if let Some(name) = &r.marker {
                markers.push((idx, name));
                for (p, list) in phases.iter_mut().enumerate() {
                    if skipping[p] == Some(name.as_str()) {
                        skipping[p] = None;
                    }
                    list.push(CRule {
                        id: 0,
                        links: Vec::new(),
                        tags: Vec::new(),
                        file: r.file.clone(),
                        log: false,
                        disruptive: Disruptive::Pass,
                        msg: Some(Macro::lit(name)),
                        skip_to: None,
                        marker: true,
                    });
                }
                continue;
            }
            let p = (r.phase.clamp(1, 5) - 1) as usize;
            if skipping[p].is_some() {
                continue;
            }
            // Paranoia gates are decided here: the rules they guard are left out entirely
            // when the paranoia level is below the gate, and the gate itself is dropped.
            if let Some(level) = paranoia_gate(r) {
                if config.paranoia < level {
                    skipping[p] = r.actions.skip_after.as_deref();
                }
                continue;
            }
            match b.rule(r) {
                Ok(c) => {
                    rule_count += 1;
                    phases[p].push(c);
                }
                Err(reason) => b.unsupported.push(Unsupported {
                    rule_id: r.id,
                    file: r.file.clone(),
                    reason,
                }),
            }
        }
        let _ = markers;
        // Resolve skipAfter targets per phase.
        for list in phases.iter_mut() {
            let names: Vec<Option<String>> = list
                .iter()
                .map(|r| {
                    if r.marker {
                        r.msg.as_ref().and_then(|m| m.as_literal())
                    } else {
                        None
                    }
                })
                .collect();
            for i in 0..list.len() {
                let Some(target) = list[i]
                    .links
                    .first()
                    .and_then(|l| l.actions.skip_after.clone())
                else {
                    continue;
                };
                list[i].skip_to = names[i + 1..]
                    .iter()
                    .position(|n| n.as_deref() == Some(target.as_str()))
                    .map(|j| i + 1 + j + 1)
                    .or(Some(list.len()));
            }
        }
        if !b.unsupported.is_empty() && !config.skip_unsupported {
            return Err(Error::Unsupported(b.unsupported));
        }
        // Per chain, the regexes in multi-pattern sets of bounded size.
        let mut sets: Vec<Vec<RegexSet>> = (0..b.chain_list.len()).map(|_| Vec::new()).collect();
        // A regex with required factors runs alone, only on values where the automaton saw
        // one of them; the others go into the chain's multi-pattern sets.
        let mut by_chain: Vec<Vec<(OpId, String)>> = vec![Vec::new(); b.chain_list.len()];
        let mut prefiltered = 0;
        for (chain, op, p) in b.rx.drain(..) {
            let p = translate_pcre(&p);
            match crate::prefilter::factors(&p) {
                Some(set) => {
                    prefiltered += 1;
                    for f in set {
                        b.phrases.push((
                            f,
                            AcUse {
                                op,
                                chain,
                                kind: LitKind::Factor,
                                literal: Vec::new(),
                            },
                        ));
                    }
                }
                None => by_chain[chain as usize].push((op, p)),
            }
        }
        // One automaton for every literal and phrase.
        let mut pat_index: HashMap<Vec<u8>, usize> = HashMap::new();
        let mut patterns: Vec<Vec<u8>> = Vec::new();
        let mut ac_uses: Vec<Vec<AcUse>> = Vec::new();
        let mut chain_has_ac = vec![false; b.chain_list.len()];
        for (pat, u) in b.phrases.drain(..) {
            chain_has_ac[u.chain as usize] = true;
            let i = *pat_index.entry(pat.clone()).or_insert_with(|| {
                patterns.push(pat);
                ac_uses.push(Vec::new());
                patterns.len() - 1
            });
            ac_uses[i].push(u);
        }
        let ac = if patterns.is_empty() {
            None
        } else {
            Some(
                AhoCorasickBuilder::new()
                    .ascii_case_insensitive(true)
                    .match_kind(AcKind::Standard)
                    .build(&patterns)
                    .map_err(|e| Error::Parse(format!("phrase automaton: {e}")))?,
            )
        };
        let mut pattern_count = 0;
        for (chain, list) in by_chain.into_iter().enumerate() {
            pattern_count += list.len();
            // Bound each set's source size so the lazy DFA of one set stays small.
            let mut group: Vec<(OpId, String)> = Vec::new();
            let mut size = 0;
            let flush =
                |group: &mut Vec<(OpId, String)>, sets: &mut Vec<RegexSet>| -> Result<(), Error> {
                    if group.is_empty() {
                        return Ok(());
                    }
                    let pats: Vec<&str> = group.iter().map(|(_, p)| p.as_str()).collect();
                    let regex = Regex::builder()
                        .syntax(syntax_config(false))
                        .configure(
                            Regex::config()
                                .match_kind(MatchKind::All)
                                .utf8_empty(false)
                                .nfa_size_limit(Some(256 << 20))
                                .hybrid_cache_capacity(4 << 20),
                        )
                        .build_many(&pats)
                        .map_err(|e| Error::Parse(format!("regex set: {e}")))?;
                    sets.push(RegexSet {
                        regex,
                        ops: group.iter().map(|(o, _)| *o).collect(),
                    });
                    group.clear();
                    Ok(())
                };
            for (op, p) in list {
                size += p.len();
                group.push((op, p));
                if size > SET_SOURCE_BYTES {
                    flush(&mut group, &mut sets[chain])?;
                    size = 0;
                }
            }
            flush(&mut group, &mut sets[chain])?;
        }
        let chain_masks = b
            .chain_list
            .iter()
            .map(|c| crate::transform::chain_mask(c))
            .collect();
        let mut next_bit = 0u32;
        let chain_ac_bits: Vec<u64> = chain_has_ac
            .iter()
            .map(|&has| {
                if !has {
                    return 0;
                }
                next_bit += 1;
                1u64.checked_shl(next_bit - 1).unwrap_or(u64::MAX)
            })
            .collect();
        let ac_chains = ac_uses
            .iter()
            .map(|uses| {
                uses.iter()
                    .fold(0u64, |bits, u| bits | chain_ac_bits[u.chain as usize])
            })
            .collect();
        let chain_parents = b
            .chain_list
            .iter()
            .map(|c| {
                (c.len() > 1)
                    .then(|| b.chains.get(&c[..c.len() - 1]).copied())
                    .flatten()
            })
            .collect();
        let mut op_sets = vec![0u64; b.ops.len()];
        for chain_sets in &sets {
            for (i, set) in chain_sets.iter().enumerate() {
                for &op in &set.ops {
                    op_sets[op as usize] = set_bit(i);
                }
            }
        }
        let mut list_sets: HashMap<(u32, ChainId), u64> = HashMap::new();
        for link in phases.iter().flatten().flat_map(|r| &r.links) {
            for (chain, op) in
                std::iter::once((link.chain, link.op)).chain(link.alts.iter().copied())
            {
                if op_sets[op as usize] != 0 {
                    *list_sets.entry((link.targets_id, chain)).or_default() |= op_sets[op as usize];
                }
            }
        }
        Ok(Waf {
            config,
            op_sets,
            list_sets,
            phases,
            chain_masks,
            ac_chains,
            chain_ac_bits,
            chain_parents,
            chains: b.chain_list,
            sets,
            ac,
            ac_uses,
            ops: b.ops,
            chain_has_ac,
            unsupported: b.unsupported,
            rule_count,
            pattern_count: pattern_count + prefiltered,
            prefiltered,
        })
    }

    /// The sets of `chain` that the links reading target list `targets_id` under it need.
    pub(crate) fn list_sets(&self, targets_id: u32, chain: ChainId) -> u64 {
        self.list_sets
            .get(&(targets_id, chain))
            .copied()
            .unwrap_or(0)
    }

    /// Rules dropped at compile time because they could not be compiled.
    pub fn unsupported(&self) -> &[Unsupported] {
        &self.unsupported
    }

    /// The settings the WAF was compiled with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Rules kept after paranoia gating.
    pub fn rule_count(&self) -> usize {
        self.rule_count
    }

    /// Number of distinct transformation chains.
    pub fn chain_count(&self) -> usize {
        self.chains.len()
    }

    /// Number of regexes across all multi-pattern sets, and the number of sets.
    pub fn regex_counts(&self) -> (usize, usize) {
        (self.pattern_count, self.sets.iter().map(Vec::len).sum())
    }

    /// Number of regexes run only where the automaton saw one of their required factors.
    pub fn prefiltered_count(&self) -> usize {
        self.prefiltered
    }

    /// Number of distinct automaton patterns (literals, phrases and regex factors).
    pub fn phrase_count(&self) -> usize {
        self.ac_uses.len()
    }

    /// Approximate heap bytes of the compiled automata (shared by all threads).
    pub fn memory_usage(&self) -> usize {
        let sets: usize = self
            .sets
            .iter()
            .flatten()
            .map(|s| s.regex.memory_usage())
            .sum();
        let singles: usize = self
            .ops
            .iter()
            .map(|o| match o {
                COp::Scanned { regex: Some(r) } => r.memory_usage(),
                _ => 0,
            })
            .sum();
        sets + singles + self.ac.as_ref().map_or(0, |a| a.memory_usage())
    }
}

/// Pattern source bytes per multi-pattern regex.
const SET_SOURCE_BYTES: usize = 24 * 1024;

#[allow(dead_code)]
fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Waf>();
    let _ = meta::Regex::new;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcre_spellings() {
        for (p, yes, no) in [
            (r"[\x7f-\x{ff}]+x", &b"\xffx"[..], &b"ax"[..]),
            (r"\x{bc}[^>\x{be}]*", b"\xbcz", b"z"),
            (r"[]a]", b"]", b"b"),
            (r"a\/b", b"a/b", b"ab"),
        ] {
            let r = build_regex(p, false).unwrap_or_else(|e| panic!("{p}: {e}"));
            assert!(r.is_match(yes), "{p}");
            assert!(!r.is_match(no), "{p}");
        }
    }
}
