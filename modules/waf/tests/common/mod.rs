//! Shared helpers: where the corpora live, loading CRS, feeding a request.

#![allow(dead_code)]

use std::path::PathBuf;

use bext_waf::seclang::{import_dir, ImportOptions};
use bext_waf::{Config, Transaction, Verdict, Waf};

/// `../shared/corpora` seen from the workspace root, or `None` (with a note) when absent.
pub fn corpora() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora");
    let alt = PathBuf::from("/work/shared/corpora");
    for p in [root, alt] {
        if p.join("crs-v4").is_dir() {
            return Some(p);
        }
    }
    eprintln!("note: ../shared/corpora is absent; skipping");
    None
}

/// CRS imported from the corpus and compiled with `config`.
pub fn crs(config: Config) -> Option<Waf> {
    let dir = corpora()?.join("crs-v4/crs-data");
    let opts = ImportOptions {
        skip_unsupported: true,
        ..Default::default()
    };
    let import = import_dir(&dir, &opts).expect("CRS imports");
    let waf = Waf::compile(
        &import.rules,
        Config {
            skip_unsupported: true,
            ..config
        },
    )
    .expect("CRS compiles");
    Some(waf)
}

/// Header fields as (name, value).
pub type Headers = Vec<(String, Vec<u8>)>;

/// A response: status, headers, body.
pub type Response = (u16, Headers, Vec<u8>);

/// A request as parts.
pub struct Request<'a> {
    pub method: &'a str,
    pub uri: &'a str,
    pub version: &'a str,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Option<&'a [u8]>,
}

/// Runs a request (and, when given, a response) through a transaction.
pub fn run(waf: &Waf, req: &Request, resp: Option<Response>) -> Verdict {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Option<bext_waf::Scratch>> = const { std::cell::RefCell::new(None) };
    }
    let scratch = SCRATCH
        .with(|s| s.borrow_mut().take())
        .unwrap_or_else(|| bext_waf::Scratch::new(waf));
    let mut tx = Transaction::with_scratch(waf, scratch);
    tx.request_line(req.method, req.uri, req.version);
    for (n, v) in &req.headers {
        tx.header(n, v);
    }
    tx.end_headers();
    if let Some(b) = req.body {
        tx.body(b);
    }
    tx.end_body();
    if let Some((status, headers, body)) = resp {
        let h: Vec<(&str, &[u8])> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        tx.response_head(status, &h);
        tx.response_body(&body);
        tx.end_response();
    }
    let v = tx.verdict();
    let scratch = tx.into_scratch();
    SCRATCH.with(|s| *s.borrow_mut() = Some(scratch));
    v
}

/// Decodes libinjection's list format: `+` is a space, `%XX` a byte.
pub fn url_decode_line(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let h = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match h {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    out
}
