//! `bext-waf`: a web application firewall compiled to shared automata.
//!
//! # How it fits
//!
//! Rules arrive as [`ir::Rule`]s, from the SecLang importer ([`seclang`], which reads an
//! installed OWASP CRS v4) or from a native front end. [`Waf::compile`] does all the expensive
//! work once: it interns every distinct transformation chain, puts every literal and phrase list
//! of every rule into one Aho-Corasick automaton, and puts the regexes of each chain into
//! multi-pattern `regex-automata` regexes. The result is immutable, `Send + Sync`, and shared
//! by `Arc` across threads.
//!
//! A [`Transaction`] holds one request's mutable state (the `regex-automata` `Regex`/`Cache`
//! split): parsed arguments, transformed values, scan results, transaction variables. Rules
//! still run in order (CRS relies on `setvar`, `chain`, `skipAfter`), but a rule's operator
//! on a value is a lookup: the first rule to ask for a value under a chain transforms it once
//! and scans it once with every pattern of that chain, and later rules read the result.
//!
//! The library does not depend on the engine; [`stage::WafStage`] wraps a [`Transaction`] as a
//! bext stage (request head, request body and log phases), and counts per rule the requests it
//! refuses for `/status` and `/metrics` (`counts`).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod ir;
pub mod seclang;
pub mod stage;
pub mod transform;

mod body;
mod compile;
mod counts;
mod prefilter;
mod sqli;
mod sqli_data;
mod tx;
mod xss;

pub use compile::{Config, OverLimit, Waf};
pub use counts::{RULE_FAMILY, WOULD_BLOCK_FAMILY};
pub use seclang::{ImportOptions, Unsupported};
pub use tx::{Action, Match, Scratch, Stats, Transaction, Verdict};

/// Whether `input` looks like SQL injection (libinjection's tokenizer and fingerprints);
/// returns the fingerprint that matched.
pub fn detect_sqli(input: &[u8]) -> Option<String> {
    sqli::detect(input)
}

/// Whether `input` looks like cross-site scripting (libinjection's HTML5 state machine).
pub fn detect_xss(input: &[u8]) -> bool {
    xss::detect(input)
}

/// Errors from importing or compiling rules.
#[derive(Debug)]
pub enum Error {
    /// A rule file could not be read.
    Io(String),
    /// A rule file is malformed (file:line and the reason).
    Parse(String),
    /// Constructs that cannot be imported or compiled, each with its rule id and the reason.
    Unsupported(Vec<Unsupported>),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Io(m) => write!(f, "cannot read rules: {m}"),
            Error::Parse(m) => write!(f, "malformed rule: {m}"),
            Error::Unsupported(list) => {
                write!(f, "{} unsupported construct(s)", list.len())?;
                for u in list.iter().take(10) {
                    write!(f, "; rule {} ({}): {}", u.rule_id, u.file, u.reason)?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for Error {}
