//! bext-conformance: a black-box HTTP/1.1 conformance suite for bext.
//!
//! Raw bytes go in on a TCP connection; the suite observes what a client and an origin would:
//! the statuses, whether the connection was closed, and the exact bytes the origin received.
//! The policy it checks: ambiguity is rejected with 400 and the connection closed; nothing is
//! forwarded that the next hop could read differently; what is forwarded has one canonical
//! framing.
//!
//! * [`case`]: the case data format (`cases/*.cases`) and its loader;
//! * [`wire`]: a strict message reader, independent of the codec under test;
//! * [`origin`]: the recording origin (plain threads), scriptable to misbehave;
//! * [`client`]: the raw client;
//! * [`runner`]: runs one case and reports every difference.
//!
//! `docs/conformance.md` describes the suite, its sources and its choices.
#![forbid(unsafe_code)]

pub mod case;
pub mod client;
pub mod origin;
pub mod runner;
pub mod wire;
