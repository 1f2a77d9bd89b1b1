//! The rule IR: what a rule inspects (targets), how the inspected bytes are normalised first
//! (transformations), what it looks for (operators) and what a match does (actions).
//!
//! The IR is plain data. The SecLang importer ([`crate::seclang`]) produces it from CRS files;
//! a native front end can build it directly. [`crate::Waf::compile`] turns a list of rules into
//! the immutable, shared automata; nothing here is executed as such.

/// One rule, or a chain of rules (`chain` holds the next link), or a marker that `skipAfter`
/// jumps to.
#[derive(Clone, Debug)]
pub struct Rule {
    /// Rule id (0 for a chained link or a marker).
    pub id: u32,
    /// 1 request headers, 2 request body, 3 response headers, 4 response body, 5 logging.
    pub phase: u8,
    /// What to inspect; empty for an action-only rule (`SecAction`) or a marker.
    pub targets: Vec<Target>,
    /// The test applied to every transformed target value.
    pub operator: Operator,
    /// `!@op`: the rule matches a value the operator does not match.
    pub negated: bool,
    /// Transformations applied in order (after `t:none` resets the inherited defaults).
    pub transforms: Vec<Transform>,
    /// What a match does.
    pub actions: Actions,
    /// The next link of a chain: the rule matches only when every link matches.
    pub chain: Option<Box<Rule>>,
    /// `Some(name)` for a `SecMarker`.
    pub marker: Option<String>,
    /// File the rule came from (its base name), for reports and per-file statistics.
    pub file: String,
}

impl Rule {
    /// An empty rule: no targets, an operator that always matches, no actions.
    pub fn new(id: u32, phase: u8) -> Rule {
        Rule {
            id,
            phase,
            targets: Vec::new(),
            operator: Operator::Unconditional,
            negated: false,
            transforms: Vec::new(),
            actions: Actions::default(),
            chain: None,
            marker: None,
            file: String::new(),
        }
    }

    /// A `SecMarker`.
    pub fn marker(name: &str) -> Rule {
        let mut r = Rule::new(0, 0);
        r.marker = Some(name.to_string());
        r
    }

    /// Every link of the chain, this rule first.
    pub fn links(&self) -> impl Iterator<Item = &Rule> {
        std::iter::successors(Some(self), |r| r.chain.as_deref())
    }
}

/// A collection or scalar variable of the transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Var {
    // Collections (name → values).
    /// Query and body arguments.
    Args,
    /// Query-string arguments.
    ArgsGet,
    /// Body arguments (urlencoded, multipart fields, JSON leaves).
    ArgsPost,
    /// Names of all arguments.
    ArgsNames,
    /// Names of query-string arguments.
    ArgsGetNames,
    /// Names of body arguments.
    ArgsPostNames,
    /// Request cookies.
    RequestCookies,
    /// Request cookie names.
    RequestCookiesNames,
    /// Request headers.
    RequestHeaders,
    /// Request header names.
    RequestHeadersNames,
    /// Response headers.
    ResponseHeaders,
    /// Response header names.
    ResponseHeadersNames,
    /// Uploaded file names, by form field.
    Files,
    /// Form field names of uploads.
    FilesNames,
    /// Every header line of every multipart part, by part name.
    MultipartPartHeaders,
    /// Transaction variables (`setvar`).
    Tx,
    /// XML body nodes: `/*` the text, `//@*` the attribute values.
    Xml,
    /// Values matched so far by the current rule.
    MatchedVars,
    /// Names of the values matched so far by the current rule.
    MatchedVarsNames,
    // Scalars.
    /// Path and query as sent, decoded of nothing.
    RequestUri,
    /// The request target exactly as sent.
    RequestUriRaw,
    /// The path, without the query.
    RequestFilename,
    /// The last path segment.
    RequestBasename,
    /// `METHOD URI VERSION`.
    RequestLine,
    /// The method.
    RequestMethod,
    /// The HTTP version, e.g. `HTTP/1.1`.
    RequestProtocol,
    /// The query string (no `?`).
    QueryString,
    /// The request body (within the inspection window).
    RequestBody,
    /// Length of the request body seen.
    RequestBodyLength,
    /// The response body (within the inspection window).
    ResponseBody,
    /// The response status code.
    ResponseStatus,
    /// The client address.
    RemoteAddr,
    /// A per-transaction id.
    UniqueId,
    /// `URLENCODED`, `MULTIPART`, `JSON`, `XML` or empty.
    ReqbodyProcessor,
    /// 1 when the body could not be parsed.
    ReqbodyError,
    /// Sum of argument name and value lengths.
    ArgsCombinedSize,
    /// Sum of uploaded file sizes.
    FilesCombinedSize,
    /// The last matched value.
    MatchedVar,
    /// The name of the last matched value (`ARGS:foo`).
    MatchedVarName,
}

impl Var {
    /// The SecLang spelling, used for names such as `ARGS:foo` in `MATCHED_VAR_NAME`.
    pub fn name(self) -> &'static str {
        VAR_NAMES
            .iter()
            .find(|(_, v)| *v == self)
            .map_or("?", |(n, _)| n)
    }

    /// Looks a SecLang variable name up (case-insensitive).
    pub fn parse(s: &str) -> Option<Var> {
        VAR_NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(s))
            .map(|(_, v)| *v)
    }

    /// Whether the variable is a collection (takes a `:selector`).
    pub fn is_collection(self) -> bool {
        self <= Var::MatchedVarsNames
    }
}

const VAR_NAMES: &[(&str, Var)] = &[
    ("ARGS", Var::Args),
    ("ARGS_GET", Var::ArgsGet),
    ("ARGS_POST", Var::ArgsPost),
    ("ARGS_NAMES", Var::ArgsNames),
    ("ARGS_GET_NAMES", Var::ArgsGetNames),
    ("ARGS_POST_NAMES", Var::ArgsPostNames),
    ("REQUEST_COOKIES", Var::RequestCookies),
    ("REQUEST_COOKIES_NAMES", Var::RequestCookiesNames),
    ("REQUEST_HEADERS", Var::RequestHeaders),
    ("REQUEST_HEADERS_NAMES", Var::RequestHeadersNames),
    ("RESPONSE_HEADERS", Var::ResponseHeaders),
    ("RESPONSE_HEADERS_NAMES", Var::ResponseHeadersNames),
    ("FILES", Var::Files),
    ("FILES_NAMES", Var::FilesNames),
    ("MULTIPART_PART_HEADERS", Var::MultipartPartHeaders),
    ("TX", Var::Tx),
    ("XML", Var::Xml),
    ("MATCHED_VARS", Var::MatchedVars),
    ("MATCHED_VARS_NAMES", Var::MatchedVarsNames),
    ("REQUEST_URI", Var::RequestUri),
    ("REQUEST_URI_RAW", Var::RequestUriRaw),
    ("REQUEST_FILENAME", Var::RequestFilename),
    ("REQUEST_BASENAME", Var::RequestBasename),
    ("REQUEST_LINE", Var::RequestLine),
    ("REQUEST_METHOD", Var::RequestMethod),
    ("REQUEST_PROTOCOL", Var::RequestProtocol),
    ("QUERY_STRING", Var::QueryString),
    ("REQUEST_BODY", Var::RequestBody),
    ("REQUEST_BODY_LENGTH", Var::RequestBodyLength),
    ("RESPONSE_BODY", Var::ResponseBody),
    ("RESPONSE_STATUS", Var::ResponseStatus),
    ("REMOTE_ADDR", Var::RemoteAddr),
    ("UNIQUE_ID", Var::UniqueId),
    ("REQBODY_PROCESSOR", Var::ReqbodyProcessor),
    ("REQBODY_ERROR", Var::ReqbodyError),
    ("ARGS_COMBINED_SIZE", Var::ArgsCombinedSize),
    ("FILES_COMBINED_SIZE", Var::FilesCombinedSize),
    ("MATCHED_VAR", Var::MatchedVar),
    ("MATCHED_VAR_NAME", Var::MatchedVarName),
];

/// Picks members of a collection by name.
#[derive(Clone, Debug)]
pub enum Selector {
    /// Exact name, compared case-insensitively (stored lowercased).
    Name(String),
    /// `/regex/` over the name (case-insensitive, as ModSecurity does).
    Regex(String),
}

/// One entry of a rule's target list: `ARGS`, `REQUEST_HEADERS:User-Agent`, `&ARGS`, with
/// the exclusions (`!REQUEST_COOKIES:/__utm/`) that apply to it.
#[derive(Clone, Debug)]
pub struct Target {
    /// The variable.
    pub var: Var,
    /// `None` for the whole collection.
    pub selector: Option<Selector>,
    /// `&VAR`: the number of members instead of their values.
    pub count: bool,
    /// Members left out (`!VAR:name`).
    pub exclude: Vec<Selector>,
}

/// A transformation: a pure function from bytes to bytes, applied before the operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs)]
pub enum Transform {
    UrlDecode,
    UrlDecodeUni,
    HtmlEntityDecode,
    JsDecode,
    CssDecode,
    EscapeSeqDecode,
    Lowercase,
    Uppercase,
    CompressWhitespace,
    RemoveWhitespace,
    RemoveNulls,
    ReplaceNulls,
    NormalizePath,
    NormalizePathWin,
    Base64Decode,
    Base64DecodeExt,
    HexDecode,
    HexEncode,
    CmdLine,
    ReplaceComments,
    RemoveComments,
    RemoveCommentsChar,
    Utf8ToUnicode,
    Length,
    Trim,
    TrimLeft,
    TrimRight,
    Sha1,
}

impl Transform {
    /// Every transformation, in declaration order.
    pub const ALL: [Transform; 28] = [
        Transform::UrlDecode,
        Transform::UrlDecodeUni,
        Transform::HtmlEntityDecode,
        Transform::JsDecode,
        Transform::CssDecode,
        Transform::EscapeSeqDecode,
        Transform::Lowercase,
        Transform::Uppercase,
        Transform::CompressWhitespace,
        Transform::RemoveWhitespace,
        Transform::RemoveNulls,
        Transform::ReplaceNulls,
        Transform::NormalizePath,
        Transform::NormalizePathWin,
        Transform::Base64Decode,
        Transform::Base64DecodeExt,
        Transform::HexDecode,
        Transform::HexEncode,
        Transform::CmdLine,
        Transform::ReplaceComments,
        Transform::RemoveComments,
        Transform::RemoveCommentsChar,
        Transform::Utf8ToUnicode,
        Transform::Length,
        Transform::Trim,
        Transform::TrimLeft,
        Transform::TrimRight,
        Transform::Sha1,
    ];
}

impl Transform {
    /// Looks a `t:` name up (case-insensitive). `none` is handled by the caller.
    pub fn parse(s: &str) -> Option<Transform> {
        use Transform::*;
        Some(match s.to_ascii_lowercase().as_str() {
            "urldecode" => UrlDecode,
            "urldecodeuni" => UrlDecodeUni,
            "htmlentitydecode" => HtmlEntityDecode,
            "jsdecode" => JsDecode,
            "cssdecode" => CssDecode,
            "escapeseqdecode" => EscapeSeqDecode,
            "lowercase" => Lowercase,
            "uppercase" => Uppercase,
            "compresswhitespace" => CompressWhitespace,
            "removewhitespace" => RemoveWhitespace,
            "removenulls" => RemoveNulls,
            "replacenulls" => ReplaceNulls,
            "normalizepath" | "normalisepath" => NormalizePath,
            "normalizepathwin" | "normalisepathwin" => NormalizePathWin,
            "base64decode" => Base64Decode,
            "base64decodeext" => Base64DecodeExt,
            "hexdecode" => HexDecode,
            "hexencode" => HexEncode,
            "cmdline" => CmdLine,
            "replacecomments" => ReplaceComments,
            "removecomments" => RemoveComments,
            "removecommentschar" => RemoveCommentsChar,
            "utf8tounicode" => Utf8ToUnicode,
            "length" => Length,
            "trim" => Trim,
            "trimleft" => TrimLeft,
            "trimright" => TrimRight,
            "sha1" => Sha1,
            _ => return None,
        })
    }
}

/// A string that may contain `%{collection.key}` references, expanded per transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Macro(pub Vec<MacroPart>);

/// A piece of a [`Macro`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MacroPart {
    /// Literal text.
    Lit(String),
    /// `%{VAR}` or `%{VAR.key}` (key lowercased).
    Ref(Var, Option<String>),
    /// `%{rule.id}` and friends: resolved from the rule being run.
    RuleId,
}

impl Macro {
    /// A macro without references.
    pub fn lit(s: &str) -> Macro {
        Macro(vec![MacroPart::Lit(s.to_string())])
    }

    /// The text, if the macro has no references.
    pub fn as_literal(&self) -> Option<String> {
        let mut out = String::new();
        for p in &self.0 {
            match p {
                MacroPart::Lit(s) => out.push_str(s),
                _ => return None,
            }
        }
        Some(out)
    }
}

/// A closed IPv4 or IPv6 network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    /// Network address (IPv4 mapped into the low 32 bits, `v4` set).
    pub addr: u128,
    /// Prefix length.
    pub bits: u8,
    /// Whether this is an IPv4 network.
    pub v4: bool,
}

/// What a rule looks for.
#[derive(Clone, Debug)]
pub enum Operator {
    /// `@rx`: a regular expression (PCRE syntax restricted to what RE2 accepts, as CRS v4 is).
    Rx(String),
    /// `@pm` / `@pmFromFile`: any of the phrases, case-insensitive.
    Pm(Vec<String>),
    /// `@contains`.
    Contains(Macro),
    /// `@beginsWith`.
    BeginsWith(Macro),
    /// `@endsWith`.
    EndsWith(Macro),
    /// `@streq`.
    Streq(Macro),
    /// `@within`: the value is a substring of the argument.
    Within(Macro),
    /// `@eq`.
    Eq(Macro),
    /// `@ge`.
    Ge(Macro),
    /// `@gt`.
    Gt(Macro),
    /// `@le`.
    Le(Macro),
    /// `@lt`.
    Lt(Macro),
    /// `@ipMatch`.
    IpMatch(Vec<Cidr>),
    /// `@validateByteRange`: matches when a byte lies outside the ranges.
    ValidateByteRange(Vec<(u8, u8)>),
    /// `@validateUrlEncoding`: matches on a bad `%` escape.
    ValidateUrlEncoding,
    /// `@validateUtf8Encoding`: matches on invalid UTF-8.
    ValidateUtf8Encoding,
    /// `@detectSQLi`.
    DetectSqli,
    /// `@detectXSS`.
    DetectXss,
    /// `@unconditionalMatch` (also what `SecAction` does).
    Unconditional,
}

/// What happens when a rule matches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Disruptive {
    /// Keep going (`pass`; also `block` in anomaly-scoring mode, where blocking is left to the
    /// threshold rules).
    #[default]
    Pass,
    /// `deny` / `drop`: stop the transaction with a block.
    Deny,
    /// `allow`: stop inspecting, let the request through.
    Allow,
}

/// `setvar` operations.
#[derive(Clone, Debug)]
pub enum SetVar {
    /// `tx.name=value`.
    Set(Macro, Macro),
    /// `tx.name=+value`.
    Add(Macro, Macro),
    /// `tx.name=-value`.
    Sub(Macro, Macro),
    /// `!tx.name`.
    Unset(Macro),
}

/// `ctl` operations that change the running transaction.
#[derive(Clone, Debug)]
pub enum Ctl {
    /// `ctl:ruleRemoveById=ID` or a range `A-B`.
    RemoveById(u32, u32),
    /// `ctl:ruleRemoveByTag=TAG`.
    RemoveByTag(String),
    /// `ctl:ruleRemoveTargetById=ID;TARGET`.
    RemoveTargetById(u32, Var, Option<Selector>),
    /// `ctl:ruleRemoveTargetByTag=TAG;TARGET`.
    RemoveTargetByTag(String, Var, Option<Selector>),
    /// `ctl:requestBodyProcessor=NAME`.
    RequestBodyProcessor(String),
    /// Accepted and ignored (audit logging, forcing REQUEST_BODY, which is always filled).
    Ignored,
}

/// The actions of a rule (for a chained link only `setvar`, `ctl`, `capture` and `t:` count).
#[derive(Clone, Debug, Default)]
pub struct Actions {
    /// Disruptive action.
    pub disruptive: Disruptive,
    /// Whether a match is logged (and reported in the verdict).
    pub log: bool,
    /// `msg`.
    pub msg: Option<Macro>,
    /// `logdata`.
    pub logdata: Option<Macro>,
    /// `tag`s.
    pub tags: Vec<String>,
    /// `severity`, 0 (emergency) to 7.
    pub severity: Option<u8>,
    /// `capture`: `TX.0`..`TX.9` receive the regex groups.
    pub capture: bool,
    /// `multiMatch`: test the value after every transformation, not only the last.
    pub multi_match: bool,
    /// `setvar`s in order.
    pub setvars: Vec<SetVar>,
    /// `skipAfter`.
    pub skip_after: Option<String>,
    /// `skip`.
    pub skip: u32,
    /// `ctl`s in order.
    pub ctls: Vec<Ctl>,
}
