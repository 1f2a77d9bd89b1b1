//! The case data itself: it loads, it is large enough, every case is tagged, and the bodies the
//! accepted cases expect at the origin agree with the bytes they send.

use bext_conformance::case::{self, Case};
use bext_conformance::wire::{self, Read};

fn all() -> Vec<Case> {
    case::load_all().unwrap_or_else(|e| panic!("cases do not load: {e}"))
}

#[test]
fn the_suite_has_at_least_150_tagged_cases() {
    let cases = all();
    println!("conformance cases by category:");
    for (cat, n) in case::counts_by_category(&cases) {
        println!("  {cat:<16} {n}");
    }
    println!("  {:<16} {}", "total", cases.len());
    assert!(cases.len() >= 150, "only {} cases", cases.len());
    for c in &cases {
        assert!(
            c.rfc.starts_with("RFC 9110 §")
                || c.rfc.starts_with("RFC 9112 §")
                || c.rfc.starts_with("RFC 6585 §"),
            "{}: rfc tag `{}`",
            c.id,
            c.rfc
        );
    }
}

#[test]
fn the_categories_are_in_reading_order() {
    let cases = all();
    let cats = case::counts_by_category(&cases);
    let want = [
        "request-line",
        "host",
        "fields",
        "framing",
        "chunked",
        "trailers",
        "pipelining",
        "limits",
        "normalisation",
        "upstream",
        "methods",
    ];
    let got: Vec<&str> = cats.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(got, want);
}

#[test]
fn rejected_requests_are_never_expected_at_the_origin() {
    for c in all() {
        if c.upstream.is_some() {
            continue;
        }
        let accepted = c
            .expect
            .responses
            .iter()
            .filter(|r| (200..300).contains(&r.status))
            .count();
        assert_eq!(
            accepted,
            c.forward.len(),
            "{} ({}): every 2xx answers one forwarded request, and only those",
            c.id,
            c.at
        );
        // A request that could not be read as one message ends its connection.
        if c.expect
            .responses
            .iter()
            .any(|r| matches!(r.status, 400 | 413 | 414 | 431 | 505))
        {
            assert!(
                c.expect.close,
                "{}: a rejection closes the connection",
                c.id
            );
        }
    }
}

/// Where the strict reference reader accepts the bytes a case sends, the bodies it reads are the
/// bodies the case expects at the origin (a guard against miscounted lengths in the data).
#[test]
fn expected_bodies_match_the_bytes_sent() {
    let mut checked = 0;
    for c in all() {
        if c.upstream.is_some() || c.forward.is_empty() {
            continue;
        }
        let bytes = c.request_bytes();
        let mut rest: &[u8] = bytes.strip_prefix(b"\r\n").unwrap_or(&bytes);
        let mut bodies = Vec::new();
        let mut strict = true;
        while !rest.is_empty() && bodies.len() < c.forward.len() {
            match wire::read_request(rest) {
                Ok(Read::Done(m)) => {
                    rest = &rest[m.len..];
                    bodies.push(m.body);
                }
                _ => {
                    strict = false;
                    break;
                }
            }
        }
        if !strict {
            continue;
        }
        let want: Vec<&[u8]> = c.forward.iter().map(|f| f.body.as_slice()).collect();
        let got: Vec<&[u8]> = bodies.iter().map(|b| b.as_slice()).collect();
        assert_eq!(got, want, "{} ({})", c.id, c.at);
        checked += 1;
    }
    assert!(checked > 50, "only {checked} cases checked");
}
