//! The per-request side: a [`Transaction`] collects the request, runs the compiled rules phase
//! by phase and produces a [`Verdict`].
//!
//! # Why it is cheap
//!
//! Request data is laid out once into value slots. A rule asking whether its operator matches
//! slot `s` under chain `c` finds (or makes) the cache entry `(s, c)`: the transformed bytes,
//! and the scan of those bytes by the shared phrase automaton and the chain's multi-pattern
//! regexes. The scan answers for every rule of the chain at once, so a value is transformed
//! once per distinct chain and scanned once per chain, whatever the number of rules. Only
//! dynamic values (transaction variables, `MATCHED_VARS`, counts) are evaluated directly.
//!
//! Work is bounded by the inspection window, the argument cap and the part cap, and is counted
//! in [`Stats`] so tests can assert bounds without timing anything.

use std::borrow::Cow;
use std::collections::HashMap;

use regex_automata::meta::Cache;
use regex_automata::{Input, PatternSet};

use crate::body::{self, Pairs};
use crate::compile::{set_bit, CLink, COp, CRule, CSelector, CTarget, ChainId, LitKind, OpId, Waf};
use crate::ir::{Ctl, Disruptive, Macro, MacroPart, Operator, SetVar, Transform, Var};
use crate::transform::{apply_chain, apply_chain_known, features, unchanged_unless};
use crate::OverLimit;

/// What the WAF decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing matched (or only rules that do not log).
    Allow,
    /// Rules matched; the request goes through (below threshold, or detection only).
    Log,
    /// The request must be refused.
    Block,
}

/// One rule that fired, with what it fired on (for `explain` and the log, never the client).
#[derive(Clone, Debug)]
pub struct Match {
    /// The rule id.
    pub rule_id: u32,
    /// The phase it ran in.
    pub phase: u8,
    /// `ARGS:q`, `REQUEST_HEADERS:user-agent`, …
    pub target: String,
    /// The transformation chain applied before the operator.
    pub transforms: Vec<Transform>,
    /// The transformed value (truncated to 200 bytes).
    pub value: String,
    /// The rule file.
    pub file: String,
}

/// Work counters: what a request cost, in units that do not depend on the machine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Values laid out for inspection.
    pub values: u64,
    /// Transformation chains applied (each a pass over one value).
    pub transforms: u64,
    /// Multi-pattern scans (automaton and regex sets) of transformed values.
    pub scans: u64,
    /// Bytes those scans read.
    pub bytes_scanned: u64,
    /// Operator tests answered (from a scan or directly).
    pub op_tests: u64,
    /// Operators evaluated directly on a value (not from a scan).
    pub direct_evals: u64,
    /// Rules run.
    pub rules: u64,
    /// Arguments not inspected because of the cap.
    pub args_dropped: u64,
    /// Body bytes past the inspection window.
    pub body_bytes_uninspected: u64,
}

/// The outcome of a transaction so far.
#[derive(Clone, Debug)]
pub struct Verdict {
    /// The inbound anomaly score (`tx.blocking_inbound_anomaly_score`, else `tx.anomaly_score`).
    pub score: i64,
    /// The outbound anomaly score.
    pub outbound_score: i64,
    /// What to do.
    pub action: Action,
    /// The rule that blocked, or would have blocked in detection-only mode.
    pub blocked_by: Option<u32>,
    /// Every logged match, in order.
    pub matches: Vec<Match>,
    /// Work done.
    pub stats: Stats,
}

impl Verdict {
    /// The distinct rule ids that fired, in order of first match.
    pub fn rule_ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = Vec::new();
        for m in &self.matches {
            if !ids.contains(&m.rule_id) {
                ids.push(m.rule_id);
            }
        }
        ids
    }
}

/// Reusable per-thread buffers: regex caches sized for one [`Waf`].
pub struct Scratch {
    caches: Vec<Vec<Option<Cache>>>,
    op_caches: Vec<Option<Cache>>,
    /// `(slot, chain)` → entry.
    cache: FastMap<(u32, ChainId), u32>,
    entries: Vec<Entry>,
    hit_pool: Vec<OpId>,
    /// Automaton matches (pattern, start, end) of scanned values.
    ac_pool: Vec<(u32, u32, u32)>,
    /// Per slot, its automaton matches as a range of `ac_pool` (shared by every chain that
    /// leaves the value unchanged) and the chains their patterns serve (`Waf::ac_chains`);
    /// [`UNSCANNED`] until the first pass.
    slot_ac: Vec<((u32, u32), u64)>,
    candidates: Vec<OpId>,
    pattern_set: PatternSet,
    item_buf: Vec<Item>,
    /// `(target list, chain)` → (slot count when made, range of `union_pool`): every operator
    /// of the chain that matches some value of the list; `NOT_STATIC` when the list yields
    /// values made on the fly.
    unions: FastMap<UnionKey, (u32, (u32, u32))>,
    /// `(target list, removals)` → (slot count when made, range of `slot_pool`): the slots
    /// the list yields, or `NOT_STATIC`.
    target_slots: FastMap<(u32, u64), (u32, (u32, u32))>,
    slot_pool: Vec<u32>,
    /// (slot, or `Bytes::Own` entry; transformation) → the entry holding the result, when it
    /// changed the bytes.
    derived: FastMap<(u32, u32), u32>,
    union_pool: Vec<OpId>,
}

const NOT_STATIC: (u32, u32) = (u32::MAX, u32::MAX);

/// (target list, chain, target removals in force).
type UnionKey = (u32, ChainId, u64);

impl Scratch {
    /// Empty caches for `waf` (filled lazily).
    pub fn new(waf: &Waf) -> Scratch {
        Scratch {
            caches: waf
                .sets
                .iter()
                .map(|s| s.iter().map(|_| None).collect())
                .collect(),
            op_caches: waf.ops.iter().map(|_| None).collect(),
            cache: FastMap::default(),
            entries: Vec::new(),
            hit_pool: Vec::new(),
            ac_pool: Vec::new(),
            slot_ac: Vec::new(),
            candidates: Vec::new(),
            pattern_set: PatternSet::new(0),
            item_buf: Vec::new(),
            unions: FastMap::default(),
            target_slots: FastMap::default(),
            slot_pool: Vec::new(),
            derived: FastMap::default(),
            union_pool: Vec::new(),
        }
    }

    /// Empties the per-request tables, keeping their capacity.
    fn clear(&mut self) {
        self.cache.clear();
        self.entries.clear();
        self.hit_pool.clear();
        self.ac_pool.clear();
        self.slot_ac.clear();
        self.candidates.clear();
        self.item_buf.clear();
        self.unions.clear();
        self.target_slots.clear();
        self.slot_pool.clear();
        self.derived.clear();
        self.union_pool.clear();
    }
}

/// Members of collection variables.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Coll {
    ArgsGet,
    ArgsPost,
    Cookies,
    ReqHeaders,
    RespHeaders,
    Files,
    PartHeaders,
    Xml,
}

#[derive(Clone, Copy)]
struct Member {
    name: u32,
    value: u32,
}

/// A value under one transformation chain.
struct Entry {
    slot: u32,
    bytes: Bytes,
    chain: ChainId,
    /// The features of the bytes (`transform::features`).
    feats: u32,
    /// The operators of the chain that match, as a range of the hit pool
    /// ([`UNSCANNED`] until the first scan).
    hits: (u32, u32),
    /// The chain's regex sets run on it (`Waf::op_sets` bits); their hits are in `hits`.
    sets_run: u64,
    /// With [`Bytes::Own`], the automaton's matches in them, as a range of the match pool
    /// ([`UNSCANNED`] until the first pass), and the chains they serve; shared by the
    /// entries whose bytes are these.
    ac: ((u32, u32), u64),
}

/// Where an entry's bytes are.
enum Bytes {
    /// The slot's: the chain left the value as it was.
    Slot,
    /// A transformed copy.
    Own(Vec<u8>),
    /// Those of another entry ([`Bytes::Own`]): the chain's last step left its parent's
    /// result as it was.
    Of(u32),
}

const UNSCANNED: (u32, u32) = (u32::MAX, u32::MAX);

/// A value to test: a slot (cacheable) or owned bytes (dynamic).
enum Src {
    Slot(u32),
    Owned(Vec<u8>),
}

/// How an item is named in matches and `MATCHED_VAR_NAME`; built only when it matches.
enum Name {
    /// A scalar: the variable's name.
    Var,
    /// A collection member: `VAR:member`, the member name in this slot.
    Member(u32),
    /// `&VAR`.
    Count,
    /// A name made while collecting (transaction variables, `MATCHED_VARS`).
    Owned(String),
}

struct Item {
    var: Var,
    name: Name,
    src: Src,
}

/// A hash map keyed by small integers, hashed by one multiplication (the keys are indexes
/// made by this transaction, not input from the network).
type FastMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<IndexHasher>>;

#[derive(Default)]
struct IndexHasher(u64);

impl std::hash::Hasher for IndexHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(b as u64);
        }
    }
    fn write_u16(&mut self, n: u16) {
        self.write_u64(n as u64);
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(n as u64);
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

/// A `ctl:ruleRemoveTarget…` in force: (rule id, or tag), variable, member name.
type RemovedTarget = (Option<u32>, Option<String>, Var, Option<String>);

/// One request (and its response) going through a [`Waf`].
pub struct Transaction<'w> {
    waf: &'w Waf,
    scratch: Scratch,
    slots: Vec<Vec<u8>>,
    /// Per slot, its features (`transform::features`): which chains leave it as it is.
    feats: Vec<u32>,
    colls: FastMap<Coll, Vec<Member>>,
    scalars: FastMap<Var, u32>,
    tx: HashMap<String, Vec<u8>>,
    removed_ids: Vec<(u32, u32)>,
    removed_tags: Vec<String>,
    removed_targets: Vec<RemovedTarget>,
    matched_var: (String, Vec<u8>),
    matched_vars: Vec<(String, Vec<u8>)>,
    matches: Vec<Match>,
    stats: Stats,
    processor: String,
    body: Vec<u8>,
    resp_body: Vec<u8>,
    body_error: bool,
    over_limit: bool,
    done: bool,
    allowed: bool,
    blocked_by: Option<u32>,
    phases_run: [bool; 5],
    files_size: usize,
    current_rule: u32,
}

impl<'w> Transaction<'w> {
    /// A transaction with fresh scratch space.
    pub fn new(waf: &'w Waf) -> Transaction<'w> {
        Transaction::with_scratch(waf, Scratch::new(waf))
    }

    /// A transaction reusing `scratch` (from [`Transaction::into_scratch`]).
    pub fn with_scratch(waf: &'w Waf, scratch: Scratch) -> Transaction<'w> {
        // Scratch made for another compiled WAF does not fit this one.
        let fits = scratch.caches.len() == waf.sets.len()
            && scratch
                .caches
                .iter()
                .zip(&waf.sets)
                .all(|(c, s)| c.len() == s.len())
            && scratch.op_caches.len() == waf.ops.len();
        let mut scratch = if fits { scratch } else { Scratch::new(waf) };
        scratch.clear();
        let c = &waf.config;
        let mut tx = HashMap::new();
        for (k, v) in [
            ("crs_setup_version", "400".to_string()),
            ("blocking_paranoia_level", c.paranoia.to_string()),
            ("detection_paranoia_level", c.paranoia.to_string()),
            (
                "inbound_anomaly_score_threshold",
                c.inbound_threshold.to_string(),
            ),
            (
                "outbound_anomaly_score_threshold",
                c.outbound_threshold.to_string(),
            ),
        ] {
            tx.insert(k.to_string(), v.into_bytes());
        }
        for (k, v) in &c.tx_vars {
            tx.insert(k.to_ascii_lowercase(), v.clone().into_bytes());
        }
        let mut t = Transaction {
            waf,
            scratch,
            slots: Vec::new(),
            feats: Vec::new(),
            colls: FastMap::default(),
            scalars: FastMap::default(),
            tx,
            removed_ids: Vec::new(),
            removed_tags: Vec::new(),
            removed_targets: Vec::new(),
            matched_var: (String::new(), Vec::new()),
            matched_vars: Vec::new(),
            matches: Vec::new(),
            stats: Stats::default(),
            processor: String::new(),
            body: Vec::new(),
            resp_body: Vec::new(),
            body_error: false,
            over_limit: false,
            done: false,
            allowed: false,
            blocked_by: None,
            phases_run: [false; 5],
            files_size: 0,
            current_rule: 0,
        };
        t.set_scalar(Var::RemoteAddr, b"127.0.0.1");
        t.set_scalar(Var::UniqueId, b"0123456789abcdef");
        t
    }

    /// Gives the scratch space back for the next transaction.
    pub fn into_scratch(self) -> Scratch {
        self.scratch
    }

    fn slot(&mut self, v: &[u8]) -> u32 {
        self.stats.values += 1;
        self.feats.push(crate::transform::features(v));
        self.slots.push(v.to_vec());
        (self.slots.len() - 1) as u32
    }

    fn set_scalar(&mut self, var: Var, v: &[u8]) {
        let s = self.slot(v);
        self.scalars.insert(var, s);
    }

    fn push(&mut self, coll: Coll, name: &[u8], value: &[u8]) {
        let name = self.slot(name);
        let value = self.slot(value);
        self.colls
            .entry(coll)
            .or_default()
            .push(Member { name, value });
    }

    /// Leaves rule `id` out of this transaction (a per-route exclusion).
    pub fn remove_rule(&mut self, id: u32) {
        self.removed_ids.push((id, id));
    }

    /// The body went on past the inspection window by `bytes` (counted, not kept).
    pub fn body_overflow(&mut self, bytes: u64) {
        self.over_limit = true;
        self.stats.body_bytes_uninspected += bytes;
    }

    /// Sets the client address (`REMOTE_ADDR`).
    pub fn remote_addr(&mut self, addr: &str) {
        self.set_scalar(Var::RemoteAddr, addr.as_bytes());
    }

    /// The request line.
    pub fn request_line(&mut self, method: &str, uri: &str, version: &str) {
        let line = format!("{method} {uri} {version}");
        self.set_scalar(Var::RequestLine, line.as_bytes());
        self.set_scalar(Var::RequestMethod, method.as_bytes());
        self.set_scalar(Var::RequestProtocol, version.as_bytes());
        self.set_scalar(Var::RequestUriRaw, uri.as_bytes());
        // Origin form for REQUEST_URI, whatever form the target had. Only a target that does
        // not start with `/` is in absolute form: `/get?x=http://a/` is a path and a query.
        let origin = match uri.find("://").filter(|_| !uri.starts_with('/')) {
            Some(i) => uri[i + 3..].find('/').map_or("/", |j| &uri[i + 3 + j..]),
            None => uri,
        };
        self.set_scalar(Var::RequestUri, origin.as_bytes());
        let (path, query) = match origin.find('?') {
            Some(i) => (&origin[..i], Some(&origin[i + 1..])),
            None => (origin, None),
        };
        self.set_scalar(Var::RequestFilename, path.as_bytes());
        let base = path.rsplit('/').next().unwrap_or("");
        self.set_scalar(Var::RequestBasename, base.as_bytes());
        if let Some(q) = query {
            self.set_scalar(Var::QueryString, q.as_bytes());
            let mut pairs = Pairs::new();
            let dropped = body::parse_query(q.as_bytes(), &mut pairs, self.waf.config.max_args);
            self.stats.args_dropped += dropped as u64;
            for (n, v) in pairs {
                self.push(Coll::ArgsGet, &n, &v);
            }
        } else {
            self.set_scalar(Var::QueryString, b"");
        }
    }

    /// One request header (call once per field line, in order).
    pub fn header(&mut self, name: &str, value: &[u8]) {
        self.push(Coll::ReqHeaders, name.as_bytes(), value);
        if name.eq_ignore_ascii_case("cookie") {
            let mut pairs = Pairs::new();
            body::parse_cookies(value, &mut pairs);
            for (n, v) in pairs {
                self.push(Coll::Cookies, &n, &v);
            }
        }
        if name.eq_ignore_ascii_case("content-type") && self.processor.is_empty() {
            let ct = String::from_utf8_lossy(value).to_ascii_lowercase();
            let mime = ct.split(';').next().unwrap_or("").trim().to_string();
            self.processor = if mime == "application/x-www-form-urlencoded" {
                "URLENCODED".into()
            } else if mime == "multipart/form-data" {
                "MULTIPART".into()
            } else if mime == "application/json" || mime.ends_with("+json") {
                "JSON".into()
            } else if mime == "text/xml" || mime == "application/xml" || mime.ends_with("+xml") {
                "XML".into()
            } else {
                String::new()
            };
        }
    }

    /// End of the request head: runs phase 1. Returns `Block` when the request must stop.
    pub fn end_headers(&mut self) -> Action {
        self.run_phase(1);
        self.action()
    }

    /// A chunk of request body; bytes past the inspection window are counted, not kept.
    pub fn body(&mut self, chunk: &[u8]) {
        let room = self.waf.config.body_limit.saturating_sub(self.body.len());
        let take = room.min(chunk.len());
        self.body.extend_from_slice(&chunk[..take]);
        if take < chunk.len() {
            self.over_limit = true;
            self.stats.body_bytes_uninspected += (chunk.len() - take) as u64;
        }
    }

    /// End of the request body: parses it and runs phase 2.
    pub fn end_body(&mut self) -> Action {
        if !self.phases_run[0] {
            self.run_phase(1);
        }
        let body = std::mem::take(&mut self.body);
        let cfg = &self.waf.config;
        let (max_args, max_depth, max_parts) = (cfg.max_args, cfg.max_json_depth, cfg.max_parts);
        let inspected_args = self.colls.get(&Coll::ArgsGet).map_or(0, Vec::len);
        let room = max_args.saturating_sub(inspected_args);
        let processor = self.processor.clone();
        let mut raw_body = true;
        match processor.as_str() {
            "URLENCODED" => {
                let mut pairs = Pairs::new();
                let dropped = body::parse_query(&body, &mut pairs, room);
                self.stats.args_dropped += dropped as u64;
                for (n, v) in pairs {
                    self.push(Coll::ArgsPost, &n, &v);
                }
            }
            "JSON" if !body.is_empty() => {
                let mut pairs = Pairs::new();
                if body::parse_json(&body, max_depth, &mut pairs, room).is_err() {
                    self.body_error = true;
                }
                for (n, v) in pairs {
                    self.push(Coll::ArgsPost, &n, &v);
                }
                raw_body = false;
            }
            "MULTIPART" => {
                let ct = self.header_value("content-type").unwrap_or_default();
                let boundary = ct
                    .split(|&c| c == b';')
                    .filter_map(|p| {
                        let p = p.trim_ascii();
                        (p.len() > 9 && p[..9].eq_ignore_ascii_case(b"boundary="))
                            .then(|| p[9..].to_vec())
                    })
                    .next()
                    .map(|b| {
                        b.strip_prefix(b"\"")
                            .and_then(|b| b.strip_suffix(b"\""))
                            .map(<[u8]>::to_vec)
                            .unwrap_or(b)
                    })
                    .unwrap_or_default();
                let m = body::parse_multipart(&body, &boundary, max_parts, room);
                self.body_error |= m.error;
                for (n, v) in &m.args {
                    self.push(Coll::ArgsPost, n, v);
                }
                for (n, f) in &m.files {
                    self.push(Coll::Files, n, f);
                }
                for (n, h) in &m.part_headers {
                    self.push(Coll::PartHeaders, n, h);
                }
                self.files_size = m.file_bytes;
                raw_body = false;
            }
            "XML" => {
                // No XML processor: `XML:/*` gets the document's text, tags removed, and
                // `XML://@*` each attribute value (entities decoded, as a parser would).
                let mut text = Vec::new();
                let mut tag_start = None;
                for (i, &c) in body.iter().enumerate() {
                    match (c, tag_start) {
                        (b'<', None) => tag_start = Some(i + 1),
                        (b'>', Some(start)) => {
                            tag_start = None;
                            text.push(b' ');
                            for v in crate::body::xml_attribute_values(&body[start..i]) {
                                let v = crate::transform::apply(Transform::HtmlEntityDecode, v);
                                self.push(Coll::Xml, b"//@*", &v);
                            }
                        }
                        (_, None) => text.push(c),
                        _ => {}
                    }
                }
                self.push(Coll::Xml, b"/*", &text);
            }
            _ => {}
        }
        if raw_body {
            self.set_scalar(Var::RequestBody, &body);
        }
        self.set_scalar(Var::RequestBodyLength, body.len().to_string().as_bytes());
        if self.over_limit
            && self.waf.config.over_limit == OverLimit::Block
            && !self.waf.config.detection_only
        {
            self.done = true;
            self.blocked_by = Some(0);
        }
        self.run_phase(2);
        self.action()
    }

    /// The response head: runs phase 3.
    pub fn response_head(&mut self, status: u16, headers: &[(&str, &[u8])]) -> Action {
        self.set_scalar(Var::ResponseStatus, status.to_string().as_bytes());
        for (n, v) in headers {
            self.push(Coll::RespHeaders, n.as_bytes(), v);
        }
        self.run_phase(3);
        self.action()
    }

    /// A chunk of response body (within the inspection window).
    pub fn response_body(&mut self, chunk: &[u8]) {
        let room = self
            .waf
            .config
            .body_limit
            .saturating_sub(self.resp_body.len());
        self.resp_body
            .extend_from_slice(&chunk[..room.min(chunk.len())]);
    }

    /// End of the response: runs phase 4.
    pub fn end_response(&mut self) -> Action {
        let b = std::mem::take(&mut self.resp_body);
        self.set_scalar(Var::ResponseBody, &b);
        self.run_phase(4);
        self.action()
    }

    /// The verdict so far.
    pub fn verdict(&self) -> Verdict {
        Verdict {
            score: self.score(),
            outbound_score: self.tx_int("blocking_outbound_anomaly_score"),
            action: self.action(),
            blocked_by: self.blocked_by,
            matches: self.matches.clone(),
            stats: self.stats,
        }
    }

    /// Work counters so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    fn tx_int(&self, k: &str) -> i64 {
        self.tx.get(k).map_or(0, |v| atoi(v))
    }

    fn score(&self) -> i64 {
        if self.tx.contains_key("blocking_inbound_anomaly_score") {
            self.tx_int("blocking_inbound_anomaly_score")
        } else {
            self.tx_int("anomaly_score")
        }
    }

    fn action(&self) -> Action {
        let cfg = &self.waf.config;
        let over = self.blocked_by.is_some()
            || (!self.tx.contains_key("inbound_anomaly_score_pl1")
                && self.score() >= cfg.inbound_threshold);
        if over && !cfg.detection_only {
            Action::Block
        } else if self.matches.is_empty() {
            Action::Allow
        } else {
            Action::Log
        }
    }

    fn header_value(&self, name: &str) -> Option<Vec<u8>> {
        self.colls.get(&Coll::ReqHeaders)?.iter().find_map(|m| {
            self.slots[m.name as usize]
                .eq_ignore_ascii_case(name.as_bytes())
                .then(|| self.slots[m.value as usize].clone())
        })
    }

    fn removed(&self, r: &CRule) -> bool {
        self.removed_ids
            .iter()
            .any(|(a, b)| (*a..=*b).contains(&r.id))
            || self
                .removed_tags
                .iter()
                .any(|t| r.tags.iter().any(|x| x == t))
    }

    fn run_phase(&mut self, phase: u8) {
        let p = phase as usize - 1;
        if self.phases_run[p] {
            return;
        }
        self.phases_run[p] = true;
        if self.done || (self.allowed && phase <= 2) {
            return;
        }
        let rules = &self.waf.phases[p];
        let mut i = 0;
        while i < rules.len() && !self.done {
            let r = &rules[i];
            i += 1;
            if r.marker || self.removed(r) {
                continue;
            }
            self.stats.rules += 1;
            self.current_rule = r.id;
            if !self.eval_rule(r, phase) {
                continue;
            }
            match r.disruptive {
                Disruptive::Deny => {
                    if self.blocked_by.is_none() {
                        self.blocked_by = Some(r.id);
                    }
                    if !self.waf.config.detection_only {
                        self.done = true;
                    }
                }
                Disruptive::Allow => {
                    self.allowed = true;
                    return;
                }
                Disruptive::Pass => {}
            }
            if let Some(to) = r.skip_to {
                i = to;
            } else if let Some(skip) = r.links.first().map(|l| l.actions.skip).filter(|s| *s > 0) {
                i += skip as usize;
            }
        }
    }

    /// Runs a rule (all links); returns whether it matched.
    fn eval_rule(&mut self, r: &CRule, phase: u8) -> bool {
        self.matched_vars.clear();
        let mut first: Option<(String, Vec<u8>, Vec<Transform>)> = None;
        let mut items = std::mem::take(&mut self.scratch.item_buf);
        let matched = self.eval_links(r, &mut items, &mut first);
        self.scratch.item_buf = items;
        if !matched {
            return false;
        }
        if r.log && r.id != 0 {
            let (target, value, transforms) = first.unwrap_or_default();
            let value = String::from_utf8_lossy(&value[..value.len().min(200)]).into_owned();
            self.matches.push(Match {
                rule_id: r.id,
                phase,
                target,
                transforms,
                value,
                file: r.file.clone(),
            });
        }
        true
    }

    /// Runs every link of `r` in order (`items` is reusable space); whether all matched.
    fn eval_links(
        &mut self,
        r: &CRule,
        items: &mut Vec<Item>,
        first: &mut Option<(String, Vec<u8>, Vec<Transform>)>,
    ) -> bool {
        let single = r.links.len() == 1;
        for (k, link) in r.links.iter().enumerate() {
            if !self.link_may_match(r, link, items) {
                return false;
            }
            self.items(r, &link.targets, items);
            let mut hits: Vec<(String, Vec<u8>)> = Vec::new();
            for item in items.iter() {
                let mut found = self
                    .test(
                        link.op,
                        link.chain,
                        link.negated,
                        link.actions.capture,
                        item,
                    )
                    .map(|v| (v, link.chain));
                // A value the whole chain leaves as it is looks the same after every prefix of
                // it: the `multiMatch` operators would test the same bytes again.
                let same_bytes = match item.src {
                    Src::Slot(s) => self.unchanged(s, link.chain),
                    Src::Owned(_) => false,
                };
                for &(c, o) in &link.alts {
                    if found.is_some() || same_bytes {
                        break;
                    }
                    found = self
                        .test(o, c, false, link.actions.capture, item)
                        .map(|v| (v, c));
                }
                if let Some((v, chain)) = found {
                    let name = self.item_name(item);
                    if k == 0 && first.is_none() {
                        *first = Some((
                            name.clone(),
                            v.clone(),
                            self.waf.chains[chain as usize].clone(),
                        ));
                    }
                    self.matched_var = (name.clone(), v.clone());
                    if single {
                        self.apply_actions(k, r);
                    }
                    hits.push((name, v));
                }
            }
            if hits.is_empty() {
                return false;
            }
            if !single {
                self.apply_actions(k, r);
            }
            self.matched_vars = hits;
        }
        true
    }

    fn apply_actions(&mut self, k: usize, r: &CRule) {
        let link = &r.links[k];
        for sv in &link.actions.setvars {
            match sv {
                SetVar::Set(n, v) | SetVar::Add(n, v) | SetVar::Sub(n, v) => {
                    let name = String::from_utf8_lossy(&self.expand(n)).to_ascii_lowercase();
                    let val = self.expand(v);
                    let new = match sv {
                        SetVar::Set(..) => val,
                        SetVar::Add(..) => {
                            (self.tx_int(&name) + atoi(&val)).to_string().into_bytes()
                        }
                        _ => (self.tx_int(&name) - atoi(&val)).to_string().into_bytes(),
                    };
                    self.tx.insert(name, new);
                }
                SetVar::Unset(n) => {
                    let name = String::from_utf8_lossy(&self.expand(n)).to_ascii_lowercase();
                    self.tx.remove(&name);
                }
            }
        }
        for c in &link.actions.ctls {
            match c {
                Ctl::RemoveById(a, b) => self.removed_ids.push((*a, *b)),
                Ctl::RemoveByTag(t) => self.removed_tags.push(t.clone()),
                Ctl::RemoveTargetById(id, var, sel) => {
                    self.removed_targets
                        .push((Some(*id), None, *var, sel_name(sel)));
                }
                Ctl::RemoveTargetByTag(tag, var, sel) => {
                    self.removed_targets
                        .push((None, Some(tag.clone()), *var, sel_name(sel)));
                }
                Ctl::RequestBodyProcessor(p) => self.processor = p.clone(),
                Ctl::Ignored => {}
            }
        }
    }

    /// Expands a macro against the transaction.
    fn expand(&self, m: &Macro) -> Vec<u8> {
        let mut out = Vec::new();
        for p in &m.0 {
            match p {
                MacroPart::Lit(s) => out.extend_from_slice(s.as_bytes()),
                MacroPart::RuleId => {
                    out.extend_from_slice(self.current_rule.to_string().as_bytes())
                }
                MacroPart::Ref(var, key) => out.extend(self.resolve(*var, key.as_deref())),
            }
        }
        out
    }

    fn resolve(&self, var: Var, key: Option<&str>) -> Vec<u8> {
        match var {
            Var::Tx => key
                .and_then(|k| self.tx.get(k))
                .cloned()
                .unwrap_or_default(),
            Var::MatchedVar => self.matched_var.1.clone(),
            Var::MatchedVarName => self.matched_var.0.clone().into_bytes(),
            _ if var.is_collection() => {
                let Some(key) = key else { return Vec::new() };
                let t = CTarget {
                    var,
                    selector: Some(CSelector::Name(key.to_string())),
                    count: false,
                    exclude: Vec::new(),
                };
                let mut items = Vec::new();
                self.collect(&t, &mut items);
                items
                    .into_iter()
                    .next()
                    .map(|i| match i.src {
                        Src::Slot(s) => self.slots[s as usize].clone(),
                        Src::Owned(b) => b,
                    })
                    .unwrap_or_default()
            }
            _ => self.scalar(var).unwrap_or_default(),
        }
    }

    fn scalar(&self, var: Var) -> Option<Vec<u8>> {
        Some(match var {
            Var::ReqbodyProcessor => self.processor.clone().into_bytes(),
            Var::ReqbodyError => (self.body_error as u8).to_string().into_bytes(),
            Var::FilesCombinedSize => self.files_size.to_string().into_bytes(),
            Var::ArgsCombinedSize => {
                let mut n = 0;
                for c in [Coll::ArgsGet, Coll::ArgsPost] {
                    for m in self.colls.get(&c).into_iter().flatten() {
                        n += self.slots[m.name as usize].len() + self.slots[m.value as usize].len();
                    }
                }
                n.to_string().into_bytes()
            }
            Var::MatchedVar => self.matched_var.1.clone(),
            Var::MatchedVarName => self.matched_var.0.clone().into_bytes(),
            _ => self.slots[*self.scalars.get(&var)? as usize].clone(),
        })
    }

    /// The name an item matches under (`ARGS:q`, `REQUEST_URI`, `&ARGS`).
    fn item_name(&self, item: &Item) -> String {
        match &item.name {
            Name::Var => item.var.name().to_string(),
            Name::Member(s) => format!(
                "{}:{}",
                item.var.name(),
                String::from_utf8_lossy(&self.slots[*s as usize])
            ),
            Name::Count => format!("&{}", item.var.name()),
            Name::Owned(n) => n.clone(),
        }
    }

    /// The values a target list yields for rule `r`, into `out` (emptied first).
    fn items(&self, r: &CRule, targets: &[CTarget], out: &mut Vec<Item>) {
        out.clear();
        if targets.is_empty() {
            // `SecAction`: no variable, one unconditional test.
            out.push(Item {
                var: Var::Tx,
                name: Name::Owned(String::new()),
                src: Src::Owned(Vec::new()),
            });
            return;
        }
        let removals = self.removals_apply(r);
        for t in targets {
            let start = out.len();
            self.collect(t, out);
            if removals {
                let mut keep = Vec::new();
                for item in out.drain(start..) {
                    let gone = self.removed_targets.iter().any(|(id, tag, var, sel)| {
                        let applies = id.is_some_and(|i| i == r.id)
                            || tag
                                .as_ref()
                                .is_some_and(|tg| r.tags.iter().any(|x| x == tg));
                        applies
                            && *var == t.var
                            && sel.as_ref().is_none_or(|s| {
                                self.item_name(&item)
                                    .split_once(':')
                                    .is_some_and(|(_, n)| n.eq_ignore_ascii_case(s))
                            })
                    });
                    if !gone {
                        keep.push(item);
                    }
                }
                out.extend(keep);
            }
        }
    }

    fn collect(&self, t: &CTarget, out: &mut Vec<Item>) {
        let name_of = |n: &[u8]| format!("{}:{}", t.var.name(), String::from_utf8_lossy(n));
        let var = t.var;
        let picked = |name: &[u8]| {
            t.selector.as_ref().is_none_or(|s| s.matches(name))
                && !t.exclude.iter().any(|s| s.matches(name))
        };
        let colls: &[(Coll, bool)] = match t.var {
            Var::Args => &[(Coll::ArgsGet, false), (Coll::ArgsPost, false)],
            Var::ArgsGet => &[(Coll::ArgsGet, false)],
            Var::ArgsPost => &[(Coll::ArgsPost, false)],
            Var::ArgsNames => &[(Coll::ArgsGet, true), (Coll::ArgsPost, true)],
            Var::ArgsGetNames => &[(Coll::ArgsGet, true)],
            Var::ArgsPostNames => &[(Coll::ArgsPost, true)],
            Var::RequestCookies => &[(Coll::Cookies, false)],
            Var::RequestCookiesNames => &[(Coll::Cookies, true)],
            Var::RequestHeaders => &[(Coll::ReqHeaders, false)],
            Var::RequestHeadersNames => &[(Coll::ReqHeaders, true)],
            Var::ResponseHeaders => &[(Coll::RespHeaders, false)],
            Var::ResponseHeadersNames => &[(Coll::RespHeaders, true)],
            Var::Files => &[(Coll::Files, false)],
            Var::FilesNames => &[(Coll::Files, true)],
            Var::MultipartPartHeaders => &[(Coll::PartHeaders, false)],
            Var::Xml => &[(Coll::Xml, false)],
            _ => &[],
        };
        let mut count = 0usize;
        if !colls.is_empty() {
            for (c, names) in colls {
                for m in self.colls.get(c).into_iter().flatten() {
                    let name = &self.slots[m.name as usize];
                    if !picked(name) {
                        continue;
                    }
                    count += 1;
                    if !t.count {
                        let slot = if *names { m.name } else { m.value };
                        out.push(Item {
                            var,
                            name: Name::Member(m.name),
                            src: Src::Slot(slot),
                        });
                    }
                }
            }
        } else {
            match t.var {
                // Keys are stored lowercased, so a named member is at most one key.
                Var::Tx
                    if matches!(t.selector, Some(CSelector::Name(_))) && t.exclude.is_empty() =>
                {
                    let found = self.tx.iter().find(|(k, _)| picked(k.as_bytes()));
                    count = found.is_some() as usize;
                    if let (Some((k, v)), false) = (found, t.count) {
                        out.push(Item {
                            var,
                            name: Name::Owned(name_of(k.as_bytes())),
                            src: Src::Owned(v.clone()),
                        });
                    }
                }
                Var::Tx => {
                    let mut keys: Vec<&String> =
                        self.tx.keys().filter(|k| picked(k.as_bytes())).collect();
                    keys.sort();
                    count = keys.len();
                    if !t.count {
                        for k in keys {
                            out.push(Item {
                                var,
                                name: Name::Owned(name_of(k.as_bytes())),
                                src: Src::Owned(self.tx[k].clone()),
                            });
                        }
                    }
                }
                Var::MatchedVars | Var::MatchedVarsNames => {
                    for (n, v) in &self.matched_vars {
                        let short = n.split_once(':').map_or(n.as_str(), |(_, s)| s);
                        if !picked(short.as_bytes()) {
                            continue;
                        }
                        count += 1;
                        if !t.count {
                            let val = if t.var == Var::MatchedVars {
                                v.clone()
                            } else {
                                n.clone().into_bytes()
                            };
                            out.push(Item {
                                var,
                                name: Name::Owned(n.clone()),
                                src: Src::Owned(val),
                            });
                        }
                    }
                }
                var => {
                    if let Some(&slot) = self.scalars.get(&var) {
                        count = 1;
                        if !t.count {
                            out.push(Item {
                                var,
                                name: Name::Var,
                                src: Src::Slot(slot),
                            });
                        }
                    } else if let Some(v) = self.scalar(var) {
                        count = 1;
                        if !t.count {
                            out.push(Item {
                                var,
                                name: Name::Var,
                                src: Src::Owned(v),
                            });
                        }
                    }
                }
            }
        }
        if t.count {
            out.push(Item {
                var,
                name: Name::Count,
                src: Src::Owned(count.to_string().into_bytes()),
            });
        }
    }

    /// Whether any value of the link's targets can match its operator. Rules share target
    /// lists and chains (CRS has ~200 rules over a few dozen pairs), so the union of every
    /// value's hits is made once per (list, chain, target removals in force) and request; a
    /// rule whose operator (or, with `multiMatch`, none of whose operators) is in it is decided
    /// without visiting its values, which is the fate of most rules on a benign request.
    /// Negated and direct operators and lists with values made on the fly take the long way.
    fn link_may_match(&mut self, r: &CRule, link: &CLink, items: &mut Vec<Item>) -> bool {
        let waf = self.waf;
        if link.negated || !matches!(waf.ops[link.op as usize], COp::Scanned { .. }) {
            return true;
        }
        let Some(removals) = self.removal_bits(r) else {
            return true;
        };
        std::iter::once((link.chain, link.op))
            .chain(link.alts.iter().copied())
            .any(|(chain, op)| self.in_union(r, link, chain, op, removals, items))
    }

    /// Whether `op` matches some value of the link's targets under `chain` (see
    /// [`Transaction::link_may_match`]); `removals` are the target removals applying to `r`.
    fn in_union(
        &mut self,
        r: &CRule,
        link: &CLink,
        chain: ChainId,
        op: OpId,
        removals: u64,
        items: &mut Vec<Item>,
    ) -> bool {
        let key = (link.targets_id, chain, removals);
        let gen = self.slots.len() as u32;
        let range = match self.scratch.unions.get(&key) {
            Some(&(g, range)) if g == gen => range,
            _ => {
                let slots = self.target_slots(r, link, removals, items);
                let mut pool = std::mem::take(&mut self.scratch.union_pool);
                let start = pool.len();
                let mut range = (start as u32, 0);
                if slots == NOT_STATIC {
                    range = NOT_STATIC;
                } else {
                    let waf = self.waf;
                    let mask = waf.chain_masks[chain as usize];
                    // Only the chain's regex sets that hold an operator some rule reads this
                    // list with: a chain's sets serve several lists (headers, arguments…).
                    let need = waf.list_sets(link.targets_id, chain);
                    let has_ac = waf.chain_has_ac[chain as usize];
                    let bit = waf.chain_ac_bits[chain as usize];
                    for i in slots.0..slots.1 {
                        let s = self.scratch.slot_pool[i as usize];
                        // What `nothing_matches` decides, with the chain's part taken out of
                        // the loop: most values need no entry under most chains.
                        if need == 0
                            && self.feats[s as usize] & mask == 0
                            && (!has_ac || self.slot_automaton(s).1 & bit == 0)
                        {
                            continue;
                        }
                        let e = self.entry(s, chain);
                        self.scan(e, need);
                        let (lo, hi) = self.scratch.entries[e as usize].hits;
                        pool.extend_from_slice(&self.scratch.hit_pool[lo as usize..hi as usize]);
                    }
                }
                if range == NOT_STATIC {
                    pool.truncate(start);
                } else {
                    pool[start..].sort_unstable();
                    let mut w = start;
                    for i in start..pool.len() {
                        if w == start || pool[i] != pool[w - 1] {
                            pool[w] = pool[i];
                            w += 1;
                        }
                    }
                    pool.truncate(w);
                    range.1 = w as u32;
                }
                self.scratch.union_pool = pool;
                self.scratch.unions.insert(key, (gen, range));
                range
            }
        };
        range == NOT_STATIC
            || self.scratch.union_pool[range.0 as usize..range.1 as usize]
                .binary_search(&op)
                .is_ok()
    }

    /// The slots of the link's targets for rule `r` under `removals`, as a range of the slot
    /// pool, made once per (target list, removals) and request and shared by every chain;
    /// [`NOT_STATIC`] when the list yields values made on the fly.
    fn target_slots(
        &mut self,
        r: &CRule,
        link: &CLink,
        removals: u64,
        items: &mut Vec<Item>,
    ) -> (u32, u32) {
        let key = (link.targets_id, removals);
        let gen = self.slots.len() as u32;
        if let Some(&(g, range)) = self.scratch.target_slots.get(&key) {
            if g == gen {
                return range;
            }
        }
        self.items(r, &link.targets, items);
        let pool = &mut self.scratch.slot_pool;
        let start = pool.len();
        let mut range = (start as u32, 0);
        for item in items.iter() {
            match item.src {
                Src::Slot(s) => pool.push(s),
                Src::Owned(_) => {
                    range = NOT_STATIC;
                    pool.truncate(start);
                    break;
                }
            }
        }
        if range != NOT_STATIC {
            range.1 = pool.len() as u32;
        }
        self.scratch.target_slots.insert(key, (gen, range));
        range
    }

    /// The `ctl:ruleRemoveTarget…` in force that apply to rule `r`, one bit per removal
    /// (rules under the same removals share their unions); `None` past 64 removals.
    fn removal_bits(&self, r: &CRule) -> Option<u64> {
        let mut bits = 0u64;
        for (i, (id, tag, _, _)) in self.removed_targets.iter().enumerate() {
            let applies = id.is_some_and(|x| x == r.id)
                || tag
                    .as_ref()
                    .is_some_and(|tg| r.tags.iter().any(|x| x == tg));
            if applies {
                bits |= 1u64.checked_shl(i as u32)?;
            }
        }
        Some(bits)
    }

    /// Whether a `ctl:ruleRemoveTarget…` in force applies to rule `r`.
    fn removals_apply(&self, r: &CRule) -> bool {
        self.removed_targets.iter().any(|(id, tag, _, _)| {
            id.is_some_and(|i| i == r.id)
                || tag
                    .as_ref()
                    .is_some_and(|tg| r.tags.iter().any(|x| x == tg))
        })
    }

    /// Tests one value; on a match returns the transformed value.
    fn test(
        &mut self,
        op: OpId,
        chain: ChainId,
        negated: bool,
        capture: bool,
        item: &Item,
    ) -> Option<Vec<u8>> {
        self.stats.op_tests += 1;
        let waf = self.waf;
        let cop = &waf.ops[op as usize];
        let bytes = match &item.src {
            &Src::Slot(s) => {
                let matched = match cop {
                    COp::Scanned { .. } if self.nothing_matches(s, chain, op) => false,
                    COp::Scanned { .. } => {
                        let e = self.entry(s, chain);
                        self.scan(e, waf.op_sets[op as usize]);
                        let (lo, hi) = self.scratch.entries[e as usize].hits;
                        self.scratch.hit_pool[lo as usize..hi as usize]
                            .binary_search(&op)
                            .is_ok()
                    }
                    COp::Direct(o) if self.unchanged(s, chain) => {
                        self.stats.direct_evals += 1;
                        let bytes = std::mem::take(&mut self.slots[s as usize]);
                        let m = self.direct(o, &bytes, capture && !negated);
                        self.slots[s as usize] = bytes;
                        m
                    }
                    COp::Direct(o) => {
                        self.stats.direct_evals += 1;
                        let e = self.entry(s, chain);
                        let bytes = self.take_bytes(e);
                        let m = self.direct(o, &bytes, capture && !negated);
                        self.put_bytes(e, bytes);
                        m
                    }
                };
                if matched == negated {
                    return None;
                }
                if self.unchanged(s, chain) {
                    self.slots[s as usize].clone()
                } else {
                    let e = self.entry(s, chain);
                    self.entry_bytes(e).to_vec()
                }
            }
            Src::Owned(b) => {
                self.stats.transforms += 1;
                let bytes = apply_chain(&waf.chains[chain as usize], b);
                self.stats.direct_evals += 1;
                let matched = match cop {
                    COp::Scanned { regex: Some(r) } => r.is_match(Input::new(&bytes)),
                    COp::Scanned { regex: None } => {
                        let mut hits = Vec::new();
                        let (lo, hi) = self.automaton_matches(&bytes);
                        self.decide_literals(lo, hi, &bytes, chain, &mut hits, None);
                        self.scratch.ac_pool.truncate(lo as usize);
                        hits.contains(&op)
                    }
                    COp::Direct(o) => self.direct(o, &bytes, capture && !negated),
                };
                if matched == negated {
                    return None;
                }
                bytes
            }
        };
        if capture && !negated {
            if let COp::Scanned { regex: Some(r) } = cop {
                let mut caps = r.create_captures();
                r.captures(Input::new(&bytes), &mut caps);
                for i in 0..10 {
                    let key = i.to_string();
                    match caps.get_group(i) {
                        Some(span) => {
                            self.tx.insert(key, bytes[span.range()].to_vec());
                        }
                        None => {
                            self.tx.remove(&key);
                        }
                    }
                }
            }
        }
        Some(bytes)
    }

    /// The entry holding entry `e`'s bytes ([`Bytes::Own`]), or `None` for the slot's.
    fn owner(&self, e: u32) -> Option<u32> {
        match self.scratch.entries[e as usize].bytes {
            Bytes::Slot => None,
            Bytes::Own(_) => Some(e),
            Bytes::Of(x) => Some(x),
        }
    }

    /// The bytes of entry `e`: a transformed copy, or the slot when the chain left the value
    /// as it was.
    fn entry_bytes(&self, e: u32) -> &[u8] {
        match self.owner(e) {
            Some(x) => match &self.scratch.entries[x as usize].bytes {
                Bytes::Own(b) => b,
                _ => &[],
            },
            None => &self.slots[self.scratch.entries[e as usize].slot as usize],
        }
    }

    /// Moves entry `e`'s bytes out, so they can be read while `self` is borrowed mutably;
    /// [`Transaction::put_bytes`] puts them back.
    fn take_bytes(&mut self, e: u32) -> Vec<u8> {
        match self.owner(e) {
            Some(x) => match &mut self.scratch.entries[x as usize].bytes {
                Bytes::Own(b) => std::mem::take(b),
                _ => Vec::new(),
            },
            None => {
                let slot = self.scratch.entries[e as usize].slot;
                std::mem::take(&mut self.slots[slot as usize])
            }
        }
    }

    fn put_bytes(&mut self, e: u32, bytes: Vec<u8>) {
        match self.owner(e) {
            Some(x) => self.scratch.entries[x as usize].bytes = Bytes::Own(bytes),
            None => {
                let slot = self.scratch.entries[e as usize].slot;
                self.slots[slot as usize] = bytes;
            }
        }
    }

    /// The cache entry for `(slot, chain)`, transforming on first use. A chain whose parent
    /// (all its steps but the last) changes the value starts from the parent's entry, so a
    /// value is transformed once along the prefixes of a chain (CRS's `multiMatch` rules
    /// have one chain per prefix), and shares the parent's bytes and automaton pass when the
    /// last step leaves them as they are.
    fn entry(&mut self, slot: u32, chain: ChainId) -> u32 {
        if let Some(&e) = self.scratch.cache.get(&(slot, chain)) {
            return e;
        }
        let waf = self.waf;
        let t = &waf.chains[chain as usize];
        let (bytes, feats) = if self.unchanged(slot, chain) {
            (Bytes::Slot, self.feats[slot as usize])
        } else {
            self.stats.transforms += 1;
            match waf.chain_parents[chain as usize] {
                parent if parent.is_some() || t.len() == 1 => {
                    // The last step, from the parent's bytes (the slot's when the parent
                    // leaves the value as it is). Chains that differ only in steps that
                    // changed nothing meet here: one copy and one automaton pass for all.
                    let (base, base_feats) = match parent {
                        Some(p) if !self.unchanged(slot, p) => {
                            let pe = self.entry(slot, p);
                            (self.owner(pe), self.scratch.entries[pe as usize].feats)
                        }
                        _ => (None, self.feats[slot as usize]),
                    };
                    let last = t[t.len() - 1];
                    let same = match base {
                        Some(x) => Bytes::Of(x),
                        None => Bytes::Slot,
                    };
                    let key = match base {
                        Some(x) => (x, 1 << 8 | last as u32),
                        None => (slot, last as u32),
                    };
                    if base_feats & unchanged_unless(last) == 0 {
                        (same, base_feats)
                    } else if let Some(&x) = self.scratch.derived.get(&key) {
                        (Bytes::Of(x), self.scratch.entries[x as usize].feats)
                    } else {
                        let src = match base {
                            Some(x) => match &self.scratch.entries[x as usize].bytes {
                                Bytes::Own(b) => b.as_slice(),
                                _ => &[],
                            },
                            None => &self.slots[slot as usize],
                        };
                        let out = crate::transform::apply(last, src);
                        if out == src {
                            (same, base_feats)
                        } else {
                            let f = features(&out);
                            let e = self.scratch.entries.len() as u32;
                            self.scratch.derived.insert(key, e);
                            (Bytes::Own(out), f)
                        }
                    }
                }
                _ => {
                    let src = &self.slots[slot as usize];
                    // Most values come out of a chain unchanged: keep no copy of those.
                    match apply_chain_known(t, src, self.feats[slot as usize]) {
                        (Cow::Owned(out), f) if out != *src => (Bytes::Own(out), f),
                        _ => (Bytes::Slot, self.feats[slot as usize]),
                    }
                }
            }
        };
        self.scratch.entries.push(Entry {
            slot,
            bytes,
            chain,
            feats,
            hits: UNSCANNED,
            sets_run: 0,
            ac: (UNSCANNED, 0),
        });
        let e = (self.scratch.entries.len() - 1) as u32;
        self.scratch.cache.insert((slot, chain), e);
        e
    }

    /// The automaton's matches in the bytes of entry `e`: the slot's pass when the chain left
    /// the value as it was, else one pass per distinct transformed copy.
    fn entry_automaton(&mut self, e: u32) -> ((u32, u32), u64) {
        let Some(x) = self.owner(e) else {
            let slot = self.scratch.entries[e as usize].slot;
            return self.slot_automaton(slot);
        };
        if self.scratch.entries[x as usize].ac.0 == UNSCANNED {
            let bytes = self.take_bytes(x);
            let r = self.automaton_matches(&bytes);
            self.put_bytes(x, bytes);
            let chains = self.match_chains(r);
            self.scratch.entries[x as usize].ac = (r, chains);
        }
        self.scratch.entries[x as usize].ac
    }

    /// The chains (`Waf::chain_ac_bits`) served by the patterns of automaton matches `r`.
    fn match_chains(&self, (lo, hi): (u32, u32)) -> u64 {
        self.scratch.ac_pool[lo as usize..hi as usize]
            .iter()
            .fold(0u64, |bits, &(p, _, _)| {
                bits | self.waf.ac_chains[p as usize]
            })
    }

    /// Scans entry `e`: once, the shared automaton (phrases, literals, and the required
    /// factors of prefiltered regexes) and the regexes whose factors appeared; then each of
    /// the chain's sets of regexes without factors in `need` (`Waf::op_sets` bits) not run on
    /// it yet. The hits are a sorted range of the pool.
    fn scan(&mut self, e: u32, need: u64) {
        let waf = self.waf;
        let entry = &self.scratch.entries[e as usize];
        let chain = entry.chain;
        let todo = need & !entry.sets_run;
        let first = entry.hits == UNSCANNED;
        if !first && todo == 0 {
            return;
        }
        let ac = if first {
            let ac = waf.chain_has_ac[chain as usize].then(|| self.entry_automaton(e));
            let no_pattern =
                ac.is_none_or(|(_, chains)| chains & waf.chain_ac_bits[chain as usize] == 0);
            if no_pattern && todo == 0 {
                // Nothing of the chain's appeared and no set is asked for: no hits.
                let at = self.scratch.hit_pool.len() as u32;
                self.scratch.entries[e as usize].hits = (at, at);
                return;
            }
            ac.map(|(r, _)| r)
        } else {
            None
        };
        let bytes = self.take_bytes(e);
        let mut hits = std::mem::take(&mut self.scratch.hit_pool);
        let start = hits.len();
        if !first {
            // More sets on an entry scanned before: its hits move to the end of the pool.
            let (lo, hi) = self.scratch.entries[e as usize].hits;
            hits.extend_from_within(lo as usize..hi as usize);
        }
        let mut cands = std::mem::take(&mut self.scratch.candidates);
        cands.clear();
        if let Some((lo, hi)) = ac {
            self.decide_literals(lo, hi, &bytes, chain, &mut hits, Some(&mut cands));
        }
        cands.sort_unstable();
        cands.dedup();
        for &op in &cands {
            let COp::Scanned { regex: Some(r) } = &waf.ops[op as usize] else {
                continue;
            };
            self.stats.scans += 1;
            self.stats.bytes_scanned += bytes.len() as u64;
            let cache = self.scratch.op_caches[op as usize].get_or_insert_with(|| r.create_cache());
            if r.is_match_with(cache, &Input::new(&bytes)) {
                hits.push(op);
            }
        }
        for (i, set) in waf.sets[chain as usize].iter().enumerate() {
            if todo & set_bit(i) == 0 {
                continue;
            }
            self.stats.scans += 1;
            self.stats.bytes_scanned += bytes.len() as u64;
            let cache = self.scratch.caches[chain as usize][i]
                .get_or_insert_with(|| set.regex.create_cache());
            let ps = &mut self.scratch.pattern_set;
            if ps.capacity() < set.regex.pattern_len() {
                *ps = PatternSet::new(set.regex.pattern_len());
            }
            ps.clear();
            set.regex
                .which_overlapping_matches_with(cache, &Input::new(&bytes), ps);
            hits.extend(ps.iter().map(|p| set.ops[p.as_usize()]));
        }
        hits[start..].sort_unstable();
        let mut w = start;
        for r in start..hits.len() {
            if w == start || hits[r] != hits[w - 1] {
                hits[w] = hits[r];
                w += 1;
            }
        }
        hits.truncate(w);
        let entry = &mut self.scratch.entries[e as usize];
        entry.hits = (start as u32, w as u32);
        entry.sets_run |= todo;
        self.scratch.hit_pool = hits;
        self.scratch.candidates = cands;
        self.put_bytes(e, bytes);
    }

    /// Whether `chain` certainly leaves slot `s` as it is (from the slot's features, without
    /// reading it again).
    fn unchanged(&self, s: u32, chain: ChainId) -> bool {
        self.waf.chain_masks[chain as usize] & self.feats[s as usize] == 0
    }

    /// Whether operator `op` of `chain` cannot match slot `s`, known without a cache entry:
    /// the chain leaves the value as it is, the operator is in no regex set, and the
    /// automaton saw no pattern of the chain's in it. Most values of a benign request are decided so for most chains.
    fn nothing_matches(&mut self, s: u32, chain: ChainId, op: OpId) -> bool {
        let waf = self.waf;
        if !self.unchanged(s, chain) || waf.op_sets[op as usize] != 0 {
            return false;
        }
        if !waf.chain_has_ac[chain as usize] {
            return true;
        }
        let (_, chains) = self.slot_automaton(s);
        chains & waf.chain_ac_bits[chain as usize] == 0
    }

    /// The automaton's matches in slot `s` (one pass per slot) and the chains they serve.
    fn slot_automaton(&mut self, s: u32) -> ((u32, u32), u64) {
        let i = s as usize;
        if self.scratch.slot_ac.len() <= i {
            self.scratch
                .slot_ac
                .resize(self.slots.len(), (UNSCANNED, 0));
        }
        if self.scratch.slot_ac[i].0 != UNSCANNED {
            return self.scratch.slot_ac[i];
        }
        let bytes = std::mem::take(&mut self.slots[i]);
        let (lo, hi) = self.automaton_matches(&bytes);
        self.slots[i] = bytes;
        let chains = self.match_chains((lo, hi));
        self.scratch.slot_ac[i] = ((lo, hi), chains);
        ((lo, hi), chains)
    }

    /// One pass of the shared automaton over `bytes`: every pattern occurrence, as a range of
    /// the match pool.
    fn automaton_matches(&mut self, bytes: &[u8]) -> (u32, u32) {
        let lo = self.scratch.ac_pool.len() as u32;
        if let Some(ac) = &self.waf.ac {
            self.stats.scans += 1;
            self.stats.bytes_scanned += bytes.len() as u64;
            for m in ac.find_overlapping_iter(bytes) {
                self.scratch
                    .ac_pool
                    .push((m.pattern().as_u32(), m.start() as u32, m.end() as u32));
            }
        }
        (lo, self.scratch.ac_pool.len() as u32)
    }

    /// The operators of `chain` that the automaton matches `lo..hi` of the pool decide on
    /// `bytes` go to `hits`; prefiltered regexes whose factor appeared go to `cands` (when
    /// given; without it they are not decided here).
    fn decide_literals(
        &self,
        lo: u32,
        hi: u32,
        bytes: &[u8],
        chain: ChainId,
        hits: &mut Vec<OpId>,
        mut cands: Option<&mut Vec<OpId>>,
    ) {
        let waf = self.waf;
        for &(pattern, start, end) in &self.scratch.ac_pool[lo as usize..hi as usize] {
            let (start, end) = (start as usize, end as usize);
            for u in &waf.ac_uses[pattern as usize] {
                if u.chain != chain {
                    continue;
                }
                let exact = || bytes[start..end] == u.literal[..];
                let ok = match u.kind {
                    LitKind::Phrase => true,
                    LitKind::Contains => exact(),
                    LitKind::Begins => exact() && start == 0,
                    LitKind::Ends => exact() && end == bytes.len(),
                    LitKind::Equals => exact() && start == 0 && end == bytes.len(),
                    LitKind::Factor => {
                        if let Some(c) = cands.as_deref_mut() {
                            c.push(u.op);
                        }
                        false
                    }
                };
                if ok {
                    hits.push(u.op);
                }
            }
        }
    }

    fn direct(&mut self, op: &Operator, v: &[u8], capture: bool) -> bool {
        let num = |s: &[u8]| atoi(s);
        match op {
            Operator::Rx(_) | Operator::Pm(_) => false,
            Operator::Contains(m) => memchr::memmem::find(v, &self.expand(m)).is_some(),
            Operator::BeginsWith(m) => v.starts_with(&self.expand(m)),
            Operator::EndsWith(m) => v.ends_with(&self.expand(m)),
            Operator::Streq(m) => v == self.expand(m).as_slice(),
            Operator::Within(m) => {
                !v.is_empty() && memchr::memmem::find(&self.expand(m), v).is_some()
            }
            Operator::Eq(m) => num(v) == num(&self.expand(m)),
            Operator::Ge(m) => num(v) >= num(&self.expand(m)),
            Operator::Gt(m) => num(v) > num(&self.expand(m)),
            Operator::Le(m) => num(v) <= num(&self.expand(m)),
            Operator::Lt(m) => num(v) < num(&self.expand(m)),
            Operator::IpMatch(cidrs) => {
                let Ok(ip) = std::str::from_utf8(v)
                    .unwrap_or("")
                    .trim()
                    .parse::<std::net::IpAddr>()
                else {
                    return false;
                };
                let (addr, v4) = match ip {
                    std::net::IpAddr::V4(a) => (u32::from(a) as u128, true),
                    std::net::IpAddr::V6(a) => (u128::from(a), false),
                };
                cidrs.iter().any(|c| {
                    let width = if c.v4 { 32 } else { 128 };
                    c.v4 == v4 && (c.bits == 0 || (addr ^ c.addr) >> (width - c.bits as u32) == 0)
                })
            }
            Operator::ValidateByteRange(ranges) => v
                .iter()
                .any(|b| !ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(b))),
            Operator::ValidateUrlEncoding => {
                let mut i = 0;
                while i < v.len() {
                    if v[i] == b'%' {
                        if i + 2 >= v.len() {
                            return true;
                        }
                        if !(v[i + 1].is_ascii_hexdigit() && v[i + 2].is_ascii_hexdigit()) {
                            return true;
                        }
                        i += 3;
                    } else {
                        i += 1;
                    }
                }
                false
            }
            Operator::ValidateUtf8Encoding => std::str::from_utf8(v).is_err(),
            Operator::DetectSqli => match crate::sqli::detect(v) {
                Some(fp) => {
                    if capture {
                        self.tx.insert("0".into(), fp.into_bytes());
                    }
                    true
                }
                None => false,
            },
            Operator::DetectXss => crate::xss::detect(v),
            Operator::Unconditional => true,
        }
    }
}

fn sel_name(s: &Option<crate::ir::Selector>) -> Option<String> {
    match s {
        Some(crate::ir::Selector::Name(n)) => Some(n.clone()),
        Some(crate::ir::Selector::Regex(r)) => Some(r.clone()),
        None => None,
    }
}

/// C `atoi`: optional sign and leading digits, else 0.
fn atoi(s: &[u8]) -> i64 {
    let s = s.trim_ascii();
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut n: i64 = 0;
    for &c in digits.iter().take_while(|c| c.is_ascii_digit()) {
        n = n.saturating_mul(10).saturating_add((c - b'0') as i64);
    }
    if neg {
        -n
    } else {
        n
    }
}
