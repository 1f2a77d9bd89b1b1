//! The WAF as a bext stage: a `waf NAME { … }` block of the configuration compiled into a
//! [`Waf`] (imported CRS, built-in rule sets and native `rule` lines, all in the same rule IR),
//! shared read-only by every core, and the per-route [`WafStage`] that runs it.
//!
//! Phases: the request head phase runs CRS phase 1 (and, for a request without a body, phase 2
//! at once); a request with a body is decided when its body (the inspection window of it) has
//! gone through the request body phase. Blocking answers `403` problem `waf-blocked`; the rule
//! ids that fired go to the log line (stderr, with the request id), never into the response.
//! Detection mode logs the same line and lets the request through. The rules of a refused (or,
//! detection mode, would-be refused) request are counted per rule (`counts`).
//!
//! Compiling CRS takes a fraction of a second, so compiled WAFs are kept in a process-wide
//! table keyed by a hash of the rule sources and settings: a reload whose WAF did not change
//! gets the same `Arc<Waf>` back without compiling.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use bext_ir as bir;
use bext_stage::{BodyChunk, Flow, LogEntry, Phases, Reply, RequestView, Stage};

use crate::seclang::{import_sources, ImportOptions, Unsupported};
use crate::{Action, Config, OverLimit, Scratch, Transaction, Waf};

/// The reply of a blocked request.
pub const BLOCKED: Reply = Reply {
    status: 403,
    slug: "waf-blocked",
    title: "Request blocked by the web application firewall",
    retry_after: None,
};

/// Default inspection window when the block does not set `body_limit`.
pub const DEFAULT_BODY_LIMIT: usize = 128 * 1024;

/// What building a `waf` block produced: the shared compiled WAF, and the rules left out.
pub struct Built {
    /// The compiled WAF, shared by every route and core that uses the block.
    pub waf: Arc<Waf>,
    /// Constructs of the imported rule set that bext cannot run (left out with
    /// `skip_unsupported`, else the build fails with them).
    pub unsupported: Vec<Unsupported>,
    /// Whether this build came from the table (no compilation).
    pub reused: bool,
}

/// Why a `waf` block could not be built.
#[derive(Debug)]
pub enum BuildError {
    /// The CRS folder or a file in it could not be read, or a rule is malformed.
    Rules(String),
    /// Constructs that cannot be imported (without `skip_unsupported`).
    Unsupported(Vec<Unsupported>),
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::Rules(m) => f.write_str(m),
            BuildError::Unsupported(l) => {
                write!(f, "{} rule(s) use constructs bext cannot run", l.len())?;
                for u in l.iter().take(5) {
                    write!(f, "; rule {} ({}): {}", u.rule_id, u.file, u.reason)?;
                }
                Ok(())
            }
        }
    }
}

/// The folder relative paths of the block are read from: that of the configuration file.
fn base_dir(at: &bir::Loc) -> PathBuf {
    Path::new(&at.file)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The CRS folder of an import, resolved against the configuration file's folder.
pub fn crs_dir(w: &bir::Waf) -> Option<PathBuf> {
    let crs = w.crs.as_ref()?;
    let p = Path::new(&crs.dir);
    Some(if p.is_absolute() {
        p.to_path_buf()
    } else {
        base_dir(&w.at).join(p)
    })
}

/// Every rule source of the block, as `(file name, SecLang text)`: the CRS `*.conf` files in
/// name order, then the built-in rule sets, then the native rules.
fn sources(w: &bir::Waf) -> Result<Vec<(String, String)>, BuildError> {
    let mut out = Vec::new();
    if let Some(dir) = crs_dir(w) {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| BuildError::Rules(format!("{}: {e}", dir.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "conf"))
            .collect();
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f)
                .map_err(|e| BuildError::Rules(format!("{}: {e}", f.display())))?;
            let name = f
                .file_name()
                .map_or(String::new(), |n| n.to_string_lossy().into_owned());
            out.push((name, text));
        }
    }
    for set in &w.rulesets {
        out.push((set.clone(), builtin(set).to_string()));
    }
    if !w.rules.is_empty() {
        out.push((format!("waf {}", w.name), native_rules(&w.rules)));
    }
    Ok(out)
}

/// The built-in rule sets, in SecLang.
fn builtin(name: &str) -> &'static str {
    match name {
        "builtin/sqli" => {
            "SecRule ARGS|ARGS_NAMES|REQUEST_COOKIES|REQUEST_COOKIES_NAMES \"@detectSQLi\" \
             \"id:9100001,phase:2,deny,log,msg:'SQL injection',t:none,t:urlDecodeUni,multiMatch\"\n"
        }
        "builtin/xss" => {
            "SecRule ARGS|ARGS_NAMES|REQUEST_COOKIES|REQUEST_COOKIES_NAMES \"@detectXSS\" \
             \"id:9100002,phase:2,deny,log,msg:'cross-site scripting',t:none,t:urlDecodeUni,t:htmlEntityDecode,multiMatch\"\n"
        }
        "builtin/traversal" => {
            "SecRule REQUEST_URI_RAW|ARGS \"@rx (?:^|[\\\\/])\\.\\.(?:[\\\\/]|$)\" \
             \"id:9100003,phase:2,deny,log,msg:'path traversal',t:none,t:urlDecodeUni,multiMatch\"\n"
        }
        "builtin/scanners" => {
            "SecRule REQUEST_HEADERS:User-Agent \"@pm sqlmap nikto nmap masscan dirbuster acunetix nessus w3af zgrab\" \
             \"id:9100004,phase:1,deny,log,msg:'security scanner',t:none,t:lowercase\"\n"
        }
        _ => "",
    }
}

/// First id of the native rules (rule `i` of the block gets `NATIVE_BASE + i`).
pub const NATIVE_BASE: u32 = 9_000_001;

/// A leaf of a native condition: SecLang target and operator.
fn leaf(subject: &bir::Subject, op: &bir::MatchOp) -> (String, String) {
    use bir::{MatchOp as M, Subject as S};
    let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let target = match subject {
        S::Path => "REQUEST_FILENAME".to_string(),
        S::Query => "QUERY_STRING".to_string(),
        S::Method => "REQUEST_METHOD".to_string(),
        S::Host => "REQUEST_HEADERS:host".to_string(),
        S::ClientIp => "REMOTE_ADDR".to_string(),
        S::Header(n) => format!("REQUEST_HEADERS:{n}"),
        S::QueryParam(n) => format!("ARGS_GET:{n}"),
        S::Cookie(n) => format!("REQUEST_COOKIES:{n}"),
    };
    match op {
        M::Equals(v) => (target, format!("@streq {}", esc(v))),
        M::Prefix(v) => (target, format!("@beginsWith {}", esc(v))),
        M::Contains(v) => (target, format!("@contains {}", esc(v))),
        M::Regex(r) => (target, format!("@rx {}", esc(r))),
        M::InCidr(c) => (target, format!("@ipMatch {}", c.join(","))),
        M::Present => (format!("&{target}"), "@gt 0".to_string()),
    }
}

/// A condition in disjunctive normal form: a list of conjunctions of (possibly negated)
/// leaves. Negations are pushed to the leaves (De Morgan).
fn dnf(c: &bir::Condition, neg: bool) -> Vec<Vec<(String, String, bool)>> {
    use bir::Condition as C;
    match (c, neg) {
        (C::Not(inner), _) => dnf(inner, !neg),
        (C::And(parts), false) | (C::Or(parts), true) => {
            let mut acc: Vec<Vec<(String, String, bool)>> = vec![vec![]];
            for p in parts {
                let d = dnf(p, neg);
                let mut next = Vec::new();
                for a in &acc {
                    for b in &d {
                        let mut x = a.clone();
                        x.extend(b.iter().cloned());
                        next.push(x);
                    }
                }
                acc = next;
            }
            acc
        }
        (C::Or(parts), false) | (C::And(parts), true) => {
            parts.iter().flat_map(|p| dnf(p, neg)).collect()
        }
        (C::Match { subject, op }, _) => {
            let (t, o) = leaf(subject, op);
            vec![vec![(t, o, neg)]]
        }
    }
}

/// Native `rule` lines as SecLang: each conjunction of a rule's condition is one chained
/// SecRule with the rule's id, so the rules run through the same compiler as CRS.
fn native_rules(rules: &[bir::WafRule]) -> String {
    let mut out = String::new();
    for (i, r) in rules.iter().enumerate() {
        let id = NATIVE_BASE + i as u32;
        let action = match r.action {
            bir::WafAction::Deny { .. } => "deny",
            bir::WafAction::Allow => "allow",
            bir::WafAction::Log => "pass",
        };
        let name = r.name.replace(['\'', '"', '\\'], "");
        for conj in dnf(&r.when, false) {
            for (k, (target, op, negated)) in conj.iter().enumerate() {
                let bang = if *negated { "!" } else { "" };
                let chain = if k + 1 < conj.len() { ",chain" } else { "" };
                let actions = if k == 0 {
                    format!("id:{id},phase:1,{action},log,msg:'{name}',t:none{chain}")
                } else {
                    format!("t:none{chain}")
                };
                out.push_str(&format!("SecRule {target} \"{bang}{op}\" \"{actions}\"\n"));
            }
        }
    }
    out
}

/// The compile settings of a block.
fn config(w: &bir::Waf) -> Config {
    let crs = w.crs.as_ref();
    let d = Config::default();
    Config {
        paranoia: crs.map_or(1, |c| c.paranoia),
        inbound_threshold: crs
            .and_then(|c| c.inbound_threshold)
            .map_or(d.inbound_threshold, i64::from),
        outbound_threshold: crs
            .and_then(|c| c.outbound_threshold)
            .map_or(d.outbound_threshold, i64::from),
        detection_only: w.detect_only,
        body_limit: w
            .inspect_body_bytes
            .map_or(DEFAULT_BODY_LIMIT, |b| b as usize),
        over_limit: if w.past_limit_block {
            OverLimit::Block
        } else {
            OverLimit::Pass
        },
        skip_unsupported: crs.is_some_and(|c| c.skip_unsupported),
        ..d
    }
}

type Table = Mutex<HashMap<u64, Weak<Waf>>>;

fn table() -> &'static Table {
    static T: std::sync::OnceLock<Table> = std::sync::OnceLock::new();
    T.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Imports and compiles a `waf` block, or returns the compiled WAF of an identical earlier
/// build (same rule sources, same settings) that is still in use.
pub fn build(w: &bir::Waf) -> Result<Built, BuildError> {
    let srcs = sources(w)?;
    let cfg = config(w);
    let crs = w.crs.as_ref();
    let exclude = crs.map(|c| c.exclude.clone()).unwrap_or_default();
    let skip = crs.is_some_and(|c| c.skip_unsupported);
    let mut h = std::collections::hash_map::DefaultHasher::new();
    srcs.hash(&mut h);
    format!("{cfg:?}").hash(&mut h);
    exclude.hash(&mut h);
    crs_dir(w).hash(&mut h);
    let key = h.finish();

    let opts = ImportOptions {
        exclude,
        skip_unsupported: true,
    };
    let refs: Vec<(&str, &str)> = srcs.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
    let data_dir = crs_dir(w);
    // Importing is cheap (milliseconds) and tells what is unsupported; compiling is not.
    let import = import_sources(&refs, data_dir.as_deref(), &opts)
        .map_err(|e| BuildError::Rules(e.to_string()))?;
    if !import.unsupported.is_empty() && !skip {
        return Err(BuildError::Unsupported(import.unsupported));
    }
    if let Some(waf) = table()
        .lock()
        .ok()
        .and_then(|t| t.get(&key).and_then(Weak::upgrade))
    {
        return Ok(Built {
            waf,
            unsupported: import.unsupported,
            reused: true,
        });
    }
    let waf = Waf::compile(
        &import.rules,
        Config {
            skip_unsupported: true,
            ..cfg
        },
    )
    .map_err(|e| BuildError::Rules(e.to_string()))?;
    let mut unsupported = import.unsupported;
    unsupported.extend(waf.unsupported().iter().cloned());
    if !unsupported.is_empty() && !skip {
        return Err(BuildError::Unsupported(unsupported));
    }
    let waf = Arc::new(waf);
    if let Ok(mut t) = table().lock() {
        t.retain(|_, w| w.strong_count() > 0);
        t.insert(key, Arc::downgrade(&waf));
    }
    Ok(Built {
        waf,
        unsupported,
        reused: false,
    })
}

/// The WAF on one route.
pub struct WafStage {
    name: String,
    waf: Arc<Waf>,
    /// Rules left out on this route (`waf NAME exclude ID…`).
    exclude: Vec<u32>,
    /// Deny status of native rules, by rule id.
    statuses: Vec<(u32, u16)>,
}

impl WafStage {
    /// The stage of block `w` (compiled as `waf`) on a route excluding `exclude`.
    pub fn new(w: &bir::Waf, waf: Arc<Waf>, exclude: Vec<u32>) -> WafStage {
        let statuses = w
            .rules
            .iter()
            .enumerate()
            .filter_map(|(i, r)| match r.action {
                bir::WafAction::Deny { status } => Some((NATIVE_BASE + i as u32, status)),
                _ => None,
            })
            .collect();
        crate::counts::register();
        WafStage {
            name: w.name.clone(),
            waf,
            exclude,
            statuses,
        }
    }

    /// The compiled WAF (shared).
    pub fn waf(&self) -> &Arc<Waf> {
        &self.waf
    }

    fn run(&self, st: &mut WafState, body: Option<&[u8]>) -> Action {
        thread_local! {
            static SCRATCH: std::cell::RefCell<Option<Scratch>> = const { std::cell::RefCell::new(None) };
        }
        let scratch = SCRATCH.with(|s| s.borrow_mut().take());
        let mut tx = match scratch {
            Some(s) => Transaction::with_scratch(&self.waf, s),
            None => Transaction::new(&self.waf),
        };
        for id in &self.exclude {
            tx.remove_rule(*id);
        }
        tx.remote_addr(&st.client);
        tx.request_line(&st.method, &st.target, "HTTP/1.1");
        for (n, v) in &st.headers {
            tx.header(n, v);
        }
        let action = match body {
            None => tx.end_headers(),
            Some(b) => {
                tx.body(b);
                if st.over {
                    tx.body_overflow(st.over_bytes);
                }
                tx.end_body()
            }
        };
        let v = tx.verdict();
        st.rules = v.rule_ids();
        st.blocked_by = v.blocked_by;
        st.score = v.score;
        SCRATCH.with(|s| *s.borrow_mut() = Some(tx.into_scratch()));
        action
    }

    fn decide(&self, st: &mut WafState, action: Action) -> Flow {
        match action {
            Action::Block => {
                st.outcome = Outcome::Blocked;
                let status = st
                    .blocked_by
                    .and_then(|id| self.statuses.iter().find(|(r, _)| *r == id))
                    .map_or(BLOCKED.status, |(_, s)| *s);
                Flow::Reply(Reply { status, ..BLOCKED })
            }
            Action::Log => {
                st.outcome = Outcome::Logged;
                Flow::Continue
            }
            Action::Allow => Flow::Continue,
        }
    }
}

#[derive(Default, PartialEq, Eq, Clone, Copy)]
enum Outcome {
    #[default]
    Passed,
    Logged,
    Blocked,
}

/// What the WAF keeps of one request: the head (to run the body phase with), the inspection
/// window of the body, and the verdict for the log line.
#[derive(Default)]
pub struct WafState {
    method: String,
    target: String,
    client: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    over: bool,
    over_bytes: u64,
    decided: bool,
    outcome: Outcome,
    rules: Vec<u32>,
    blocked_by: Option<u32>,
    score: i64,
}

impl Stage for WafStage {
    type State = WafState;

    fn phases(&self) -> Phases {
        Phases::REQUEST | Phases::REQUEST_BODY | Phases::LOG
    }

    fn init(&self) -> WafState {
        WafState::default()
    }

    fn on_request(&self, st: &mut WafState, req: &RequestView<'_>) -> Flow {
        st.method = String::from_utf8_lossy(req.method_bytes).into_owned();
        st.target = String::from_utf8_lossy(req.path).into_owned();
        if let Some(q) = req.query {
            st.target.push('?');
            st.target.push_str(&String::from_utf8_lossy(q));
        }
        st.client = req.client.ip().to_string();
        st.headers = req
            .headers
            .iter()
            .map(|(n, v)| (String::from_utf8_lossy(n).into_owned(), v.to_vec()))
            .collect();
        let has_body = req.headers.get(b"transfer-encoding").is_some()
            || req
                .headers
                .get(b"content-length")
                .is_some_and(|v| v.trim_ascii() != b"0");
        if has_body {
            // Phase 1 now (a head that is enough to block stops here); the whole transaction
            // runs again, with the body, at the end of the body.
            let action = self.run(st, None);
            if action == Action::Block {
                st.decided = true;
                return self.decide(st, action);
            }
            return Flow::Continue;
        }
        st.decided = true;
        let action = self.run(st, Some(b""));
        self.decide(st, action)
    }

    fn on_request_body(&self, st: &mut WafState, chunk: &mut BodyChunk<'_>) -> Flow {
        if st.decided {
            return Flow::Continue;
        }
        let limit = self.waf.config().body_limit;
        let data = chunk.data();
        let room = limit.saturating_sub(st.body.len());
        let take = room.min(data.len());
        st.body.extend_from_slice(&data[..take]);
        if take < data.len() {
            st.over = true;
            st.over_bytes += (data.len() - take) as u64;
            if self.waf.config().over_limit == OverLimit::Block && !self.waf.config().detection_only
            {
                st.decided = true;
                st.outcome = Outcome::Blocked;
                st.rules.clear();
                return Flow::Reply(BLOCKED);
            }
        }
        if !chunk.is_last() {
            return Flow::Continue;
        }
        st.decided = true;
        let body = std::mem::take(&mut st.body);
        let action = self.run(st, Some(&body));
        self.decide(st, action)
    }

    fn on_log(&self, st: &mut WafState, entry: &LogEntry<'_>) {
        let what = match st.outcome {
            Outcome::Passed => return,
            Outcome::Logged if self.waf.config().detection_only && st.blocked_by.is_some() => {
                crate::counts::record(&st.rules, true);
                "would block"
            }
            Outcome::Logged => "logged",
            Outcome::Blocked => {
                crate::counts::record(&st.rules, false);
                "blocked"
            }
        };
        let rules: Vec<String> = st.rules.iter().map(u32::to_string).collect();
        let rules = if rules.is_empty() && st.over {
            "body past the inspection window".to_string()
        } else {
            rules.join(",")
        };
        eprintln!(
            "waf {}: {what} {} {} request_id={} score={} rules={rules}",
            self.name,
            String::from_utf8_lossy(entry.method),
            String::from_utf8_lossy(entry.target),
            entry.request_id,
            st.score,
        );
    }
}
