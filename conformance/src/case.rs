//! Conformance cases: the data format of `conformance/cases/*.cases` and its loader.
//!
//! Each file is one category (its stem). A case is a block that starts with `[id]` and holds
//! `key = value` lines; `#` starts a comment line. Values are written in the escape notation of
//! the public corpora (Http11Probe, http-garden), so payloads can be compared with their sources
//! at a glance:
//!
//! * `\r` `\n` `\t` `\0` `\\` and `\xHH` (any byte, so non-UTF-8 input is expressible);
//! * `{TEXT*N}` repeats `TEXT` N times (long targets and heads for the limit cases); a literal
//!   brace is written `\x7b`.
//!
//! Keys (unknown keys are an error, so a typo never silently drops an expectation):
//!
//! | key | meaning |
//! |---|---|
//! | `rfc` | the section the case checks, e.g. `RFC 9112 §6.1` (required) |
//! | `from` | where the case comes from (a corpus id), for attribution |
//! | `note` | why the expectation is what it is, where that is a choice |
//! | `send` | bytes written on the client connection; repeat the key for separate writes |
//! | `upstream` | raw bytes the origin answers the next request with, instead of its `200 ok` |
//! | `upstream.then` | after that answer: `keep` (default), `close`, or `hang` |
//! | `expect` | statuses in order, then `close` or `keep` (e.g. `200 200 keep`); a status written `200:head` answers a HEAD request and has no body; `200:truncated` is a response whose body the server cut short by closing |
//! | `forward` | `none`: nothing may reach the origin (the default when no `forward.line` is given) |
//! | `forward.line` | the request line one forwarded request must have; starts a new forwarded request |
//! | `forward.has` | `Name: value` that forwarded request must carry exactly once |
//! | `forward.present` | a field name that forwarded request must carry exactly once, any value |
//! | `forward.lacks` | a field name that forwarded request must not carry |
//! | `forward.body` | the body (after de-chunking) it must carry; empty by default |
//! | `response.has` | `Name: value` the first response must carry exactly once |
//! | `response.lacks` | a field name the first response must not carry |
//!
//! Every forwarded request must also be readable in exactly one way (see [`crate::wire`]) and
//! carry exactly one Host; the runner checks that for every case.

use std::fmt;
use std::path::Path;

/// What the client must observe on its connection, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    pub responses: Vec<ExpectedResponse>,
    /// The server must close the connection after the last response (and send nothing more).
    pub close: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpectedResponse {
    pub status: u16,
    /// The response answers a HEAD request: it has no body whatever its framing fields say.
    pub to_head: bool,
    /// The body must end early because the server closed the connection.
    pub truncated: bool,
}

/// One request the origin must receive.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExpectedForward {
    pub line: String,
    pub has: Vec<(String, Vec<u8>)>,
    pub present: Vec<String>,
    pub lacks: Vec<String>,
    pub body: Vec<u8>,
}

/// What the origin does after a scripted answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Then {
    #[default]
    Keep,
    Close,
    Hang,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub response: Vec<u8>,
    pub then: Then,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    pub id: String,
    pub category: String,
    pub rfc: String,
    pub from: Option<String>,
    pub note: Option<String>,
    /// Separate writes on the client connection.
    pub send: Vec<Vec<u8>>,
    pub upstream: Option<Upstream>,
    pub expect: Expect,
    pub forward: Vec<ExpectedForward>,
    /// Fields the first response must carry (exactly once, exact value).
    pub response_has: Vec<(String, Vec<u8>)>,
    /// Fields the first response must not carry.
    pub response_lacks: Vec<String>,
    /// Where the case is written, `file:line`.
    pub at: String,
}

impl Case {
    /// All bytes the client sends, concatenated.
    pub fn request_bytes(&self) -> Vec<u8> {
        self.send.concat()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError {
    pub at: String,
    pub msg: String,
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.msg)
    }
}

impl std::error::Error for FormatError {}

/// Decode the escape notation described in the module docs.
pub fn unescape(s: &str) -> Result<Vec<u8>, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => {
                let c = *b.get(i + 1).ok_or("dangling backslash")?;
                i += 2;
                match c {
                    b'r' => out.push(b'\r'),
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'0' => out.push(0),
                    b'\\' => out.push(b'\\'),
                    b'x' => {
                        let hex = b.get(i..i + 2).ok_or("\\x needs two hex digits")?;
                        let hex = std::str::from_utf8(hex).map_err(|_| "bad \\x escape")?;
                        out.push(u8::from_str_radix(hex, 16).map_err(|_| "bad \\x escape")?);
                        i += 2;
                    }
                    other => return Err(format!("unknown escape \\{}", other as char)),
                }
            }
            b'{' => {
                let close = b[i..]
                    .iter()
                    .position(|&c| c == b'}')
                    .ok_or("unclosed {repeat}")?;
                let inner = &s[i + 1..i + close];
                let (text, n) = inner
                    .rsplit_once('*')
                    .ok_or("a {repeat} is written {TEXT*N}")?;
                let n: usize = n.parse().map_err(|_| "bad repeat count")?;
                let text = unescape(text)?;
                for _ in 0..n {
                    out.extend_from_slice(&text);
                }
                i += close + 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// Render bytes in the escape notation (for failure messages).
pub fn escape(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    for &c in b {
        match c {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(c as char),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s
}

fn parse_expect(v: &str) -> Result<Expect, String> {
    let words: Vec<&str> = v.split_whitespace().collect();
    let (last, statuses) = words.split_last().ok_or("expect is empty")?;
    let close = match *last {
        "close" => true,
        "keep" => false,
        _ => return Err("expect ends with `close` or `keep`".into()),
    };
    let mut responses = Vec::new();
    for w in statuses {
        let (num, flag) = match w.split_once(':') {
            Some((n, f)) => (n, Some(f)),
            None => (*w, None),
        };
        let status: u16 = num.parse().map_err(|_| format!("bad status {w}"))?;
        if !(100..=599).contains(&status) {
            return Err(format!("bad status {w}"));
        }
        let (to_head, truncated) = match flag {
            None => (false, false),
            Some("head") => (true, false),
            Some("truncated") => (false, true),
            Some(f) => return Err(format!("unknown status flag :{f}")),
        };
        responses.push(ExpectedResponse {
            status,
            to_head,
            truncated,
        });
    }
    if responses.is_empty() && !close {
        return Err("no response and `keep` cannot be observed".into());
    }
    Ok(Expect { responses, close })
}

struct Builder {
    id: String,
    at: String,
    rfc: Option<String>,
    from: Option<String>,
    note: Option<String>,
    send: Vec<Vec<u8>>,
    upstream: Option<Vec<u8>>,
    then: Option<Then>,
    expect: Option<Expect>,
    forward_none: bool,
    forward: Vec<ExpectedForward>,
    response_has: Vec<(String, Vec<u8>)>,
    response_lacks: Vec<String>,
}

impl Builder {
    fn finish(self, category: &str) -> Result<Case, FormatError> {
        let err = |msg: &str| FormatError {
            at: self.at.clone(),
            msg: format!("[{}]: {msg}", self.id),
        };
        if self.forward_none && !self.forward.is_empty() {
            return Err(err("`forward = none` with forward.line"));
        }
        if self.send.is_empty() {
            return Err(err("no `send`"));
        }
        if self.then.is_some() && self.upstream.is_none() {
            return Err(err("`upstream.then` without `upstream`"));
        }
        Ok(Case {
            rfc: self.rfc.clone().ok_or_else(|| err("no `rfc`"))?,
            expect: self.expect.clone().ok_or_else(|| err("no `expect`"))?,
            upstream: self.upstream.map(|response| Upstream {
                response,
                then: self.then.unwrap_or_default(),
            }),
            id: self.id,
            category: category.to_string(),
            from: self.from,
            note: self.note,
            send: self.send,
            forward: self.forward,
            response_has: self.response_has,
            response_lacks: self.response_lacks,
            at: self.at,
        })
    }
}

/// Parse one cases file; `category` is its stem.
pub fn parse_file(name: &str, category: &str, text: &str) -> Result<Vec<Case>, FormatError> {
    let mut cases = Vec::new();
    let mut cur: Option<Builder> = None;
    for (n, line) in text.lines().enumerate() {
        let at = format!("{name}:{}", n + 1);
        let err = |msg: String| FormatError {
            at: at.clone(),
            msg,
        };
        let line = line.trim_end();
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some(id) = trimmed.strip_prefix('[') {
            let id = id
                .strip_suffix(']')
                .ok_or_else(|| err("a case header is `[id]`".into()))?;
            if let Some(b) = cur.take() {
                cases.push(b.finish(category)?);
            }
            cur = Some(Builder {
                id: id.to_string(),
                at: at.clone(),
                rfc: None,
                from: None,
                note: None,
                send: Vec::new(),
                upstream: None,
                then: None,
                expect: None,
                forward_none: false,
                forward: Vec::new(),
                response_has: Vec::new(),
                response_lacks: Vec::new(),
            });
            continue;
        }
        let b = cur
            .as_mut()
            .ok_or_else(|| err("a key outside a case".into()))?;
        let (key, value) = trimmed
            .split_once(" = ")
            .or_else(|| trimmed.strip_suffix(" =").map(|k| (k, "")))
            .ok_or_else(|| err("expected `key = value`".into()))?;
        let key = key.trim();
        let bytes = || unescape(value).map_err(&err);
        let fwd = |b: &mut Builder| -> Result<(), FormatError> {
            if b.forward.is_empty() {
                Err(err(format!("{key} before forward.line")))
            } else {
                Ok(())
            }
        };
        match key {
            "rfc" => b.rfc = Some(value.to_string()),
            "from" => b.from = Some(value.to_string()),
            "note" => b.note = Some(value.to_string()),
            "send" => b.send.push(bytes()?),
            "upstream" => b.upstream = Some(bytes()?),
            "upstream.then" => {
                b.then = Some(match value {
                    "keep" => Then::Keep,
                    "close" => Then::Close,
                    "hang" => Then::Hang,
                    _ => return Err(err("upstream.then is keep, close or hang".into())),
                })
            }
            "expect" => b.expect = Some(parse_expect(value).map_err(err)?),
            "forward" => {
                if value != "none" {
                    return Err(err("`forward` only takes `none`".into()));
                }
                b.forward_none = true;
            }
            "forward.line" => b.forward.push(ExpectedForward {
                line: String::from_utf8_lossy(&bytes()?).into_owned(),
                ..Default::default()
            }),
            "forward.has" | "response.has" => {
                if key == "forward.has" {
                    fwd(b)?;
                }
                let (name, v) = value
                    .split_once(": ")
                    .ok_or_else(|| err(format!("{key} is `Name: value`")))?;
                let field = (name.to_string(), unescape(v).map_err(err)?);
                match b.forward.last_mut() {
                    Some(f) if key == "forward.has" => f.has.push(field),
                    _ => b.response_has.push(field),
                }
            }
            "response.lacks" => b.response_lacks.push(value.to_string()),
            "forward.present" | "forward.lacks" | "forward.body" => {
                fwd(b)?;
                let body = if key == "forward.body" {
                    Some(bytes()?)
                } else {
                    None
                };
                if let Some(f) = b.forward.last_mut() {
                    match (key, body) {
                        ("forward.body", Some(body)) => f.body = body,
                        ("forward.present", _) => f.present.push(value.to_string()),
                        _ => f.lacks.push(value.to_string()),
                    }
                }
            }
            _ => return Err(err(format!("unknown key `{key}`"))),
        }
    }
    if let Some(b) = cur.take() {
        cases.push(b.finish(category)?);
    }
    Ok(cases)
}

/// The directory holding the case files of this crate.
pub fn cases_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/cases"))
}

/// Load every `*.cases` file of `dir`, sorted by file name; ids must be unique.
pub fn load_dir(dir: &Path) -> Result<Vec<Case>, Box<dyn std::error::Error>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "cases"))
        .collect();
    files.sort();
    let mut all: Vec<Case> = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f)?;
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let category = f
            .file_stem()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // Files are named `NN-category.cases` so that they sort in reading order.
        let category = match category.split_once('-') {
            Some((n, rest)) if n.chars().all(|c| c.is_ascii_digit()) => rest.to_string(),
            _ => category,
        };
        all.extend(parse_file(&name, &category, &text)?);
    }
    let mut ids: Vec<&str> = all.iter().map(|c| c.id.as_str()).collect();
    ids.sort_unstable();
    if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!("duplicate case id {}", w[0]).into());
    }
    Ok(all)
}

/// Load the suite's own cases.
pub fn load_all() -> Result<Vec<Case>, Box<dyn std::error::Error>> {
    load_dir(cases_dir())
}

/// Case counts per category, in file order.
pub fn counts_by_category(cases: &[Case]) -> Vec<(String, usize)> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for c in cases {
        match out.iter_mut().find(|(k, _)| *k == c.category) {
            Some((_, n)) => *n += 1,
            None => out.push((c.category.clone(), 1)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescape_table() {
        let table: &[(&str, &[u8])] = &[
            ("a\\r\\nb", b"a\r\nb"),
            ("\\t\\0\\\\", b"\t\0\\"),
            ("\\x0b\\xff", b"\x0b\xff"),
            ("{ab*3}", b"ababab"),
            ("x{\\r\\n*2}y", b"x\r\n\r\ny"),
            ("\\x7b", b"{"),
        ];
        for (src, want) in table {
            assert_eq!(unescape(src).as_deref(), Ok(*want), "{src}");
        }
        for bad in ["\\q", "\\x1", "{a*}", "{a", "\\"] {
            assert!(unescape(bad).is_err(), "{bad} must be rejected");
        }
    }

    #[test]
    fn escape_round_trips() {
        let raw = b"GET / HTTP/1.1\r\nX: \x00\x0b\xff\\\r\n\r\n";
        assert_eq!(unescape(&escape(raw)).as_deref(), Ok(&raw[..]));
    }

    #[test]
    fn a_case_block_parses() {
        let text = "\
# comment
[one]
rfc = RFC 9112 §6.1
send = POST / HTTP/1.1\\r\\nHost: a\\r\\nContent-Length: 2\\r\\n\\r\\nhi
expect = 200 keep
forward.line = POST / HTTP/1.1
forward.has = Host: a
forward.lacks = Transfer-Encoding
forward.body = hi

[two]
rfc = RFC 9112 §5
send = GET / HTTP/1.1\\r\\n\\r\\n
upstream = HTTP/1.1 200 OK\\r\\n\\r\\n
upstream.then = close
expect = 400 200:head close
";
        let cases = parse_file("t.cases", "t", text).expect("parses");
        assert_eq!(cases.len(), 2);
        assert_eq!(cases[0].forward[0].body, b"hi");
        assert_eq!(
            cases[0].forward[0].has,
            vec![("Host".into(), b"a".to_vec())]
        );
        assert!(!cases[0].expect.close);
        assert_eq!(
            cases[1].upstream.as_ref().map(|u| u.then),
            Some(Then::Close)
        );
        assert!(cases[1].expect.responses[1].to_head);
        assert!(cases[1].forward.is_empty());
    }

    #[test]
    fn format_mistakes_are_reported_with_their_line() {
        let table: &[(&str, &str)] = &[
            (
                "[a]\nrfc = x\nsend = x\nexpect = 200 keep\nbogus = 1\n",
                "t:5",
            ),
            ("[a]\nrfc = x\nexpect = 200 keep\n", "t:1"),
            ("[a]\nrfc = x\nsend = x\nexpect = 200 maybe\n", "t:4"),
            (
                "[a]\nrfc = x\nsend = x\nexpect = 200 keep\nforward.has = A: b\n",
                "t:5",
            ),
            ("rfc = x\n", "t:1"),
        ];
        for (text, at) in table {
            let e = parse_file("t", "t", text).expect_err(text);
            assert_eq!(&e.at, at, "{text}: {e}");
        }
    }
}
