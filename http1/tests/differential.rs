//! httparse as the oracle: on every input, when both parsers accept a head they agree on its
//! length, method, target, version and fields; whatever httparse rejects, bext rejects.
//! Then property tests: generated valid requests and responses survive serialise → parse →
//! serialise unchanged, and mutations of them keep the agreement rule.

use bext_http1::{
    parse_request, parse_response, Framing, Limits, Method, Parse, RequestHead, ResponseContext,
    ResponseHead, Version,
};
use proptest::prelude::*;

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// What both parsers said about one input.
#[derive(Debug, PartialEq)]
enum Agreement {
    BothAccept,
    OnlyHttparseAccepts,
    BothReject,
    Other,
}

/// Check the agreement rule on `data`; panics on a violation.
fn compare(data: &[u8]) -> Agreement {
    let mut head = RequestHead::default();
    let ours = parse_request(data, &Limits::default(), &mut head);
    let mut slots = [httparse::EMPTY_HEADER; 100];
    let mut req = httparse::Request::new(&mut slots);
    let theirs = req.parse(data);
    let name = String::from_utf8_lossy(data);
    match (ours, theirs) {
        (Ok(Parse::Complete), Ok(httparse::Status::Complete(len))) => {
            assert_eq!(len, head.head_len, "head length of {name:?}");
            assert_eq!(
                req.method.map(str::as_bytes),
                Some(head.method_bytes(data)),
                "{name:?}"
            );
            assert_eq!(
                req.path.map(str::as_bytes),
                Some(head.target.get(data)),
                "{name:?}"
            );
            let v = match head.version {
                Some(Version::Http10) => 0,
                _ => 1,
            };
            assert_eq!(req.version, Some(v), "{name:?}");
            assert_eq!(req.headers.len(), head.headers.len(), "{name:?}");
            for (t, o) in req.headers.iter().zip(&head.headers) {
                assert_eq!(t.name.as_bytes(), o.name.get(data), "{name:?}");
                assert_eq!(trim(t.value), o.value.get(data), "{name:?}");
            }
            Agreement::BothAccept
        }
        (Ok(Parse::Complete), other) => {
            panic!("bext accepts {name:?}, httparse says {other:?}")
        }
        (Err(_), Ok(httparse::Status::Complete(_))) => Agreement::OnlyHttparseAccepts,
        (Err(_), Err(_)) => Agreement::BothReject,
        _ => Agreement::Other,
    }
}

#[test]
fn differential_table() {
    use Agreement::*;
    let cases: &[(&[u8], Agreement)] = &[
        (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", BothAccept),
        (b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", BothAccept),
        (b"GET /a?b HTTP/1.0\r\nX:  v  \r\n\r\n", BothAccept),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\tz\r\n\r\n",
            BothAccept,
        ),
        (b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", BothAccept),
        (
            b"POST http://a/b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
            BothAccept,
        ),
        // httparse is lenient where bext is strict.
        (b"GET / HTTP/1.1\nHost: a\n\n", OnlyHttparseAccepts),
        (b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", OnlyHttparseAccepts),
        (b"GET /#f HTTP/1.1\r\nHost: a\r\n\r\n", OnlyHttparseAccepts),
        (
            b"GET /\"<> HTTP/1.1\r\nHost: a\r\n\r\n",
            OnlyHttparseAccepts,
        ),
        (b"GET / HTTP/1.1\r\n\r\n", OnlyHttparseAccepts),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            OnlyHttparseAccepts,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            OnlyHttparseAccepts,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            OnlyHttparseAccepts,
        ),
        // Both reject.
        (b"GET / HTTP/1.1\r\nHost: a\r\nX : v\r\n\r\n", BothReject),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nX: v\r\n folded\r\n\r\n",
            BothReject,
        ),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", BothReject),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", BothReject),
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", BothReject),
        (b"GET / HTTP/1.1x\r\nHost: a\r\n\r\n", BothReject),
        (b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", BothReject),
        (b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", BothReject),
        (b"GET / HTTP/1.1\r\n Host: a\r\n\r\n", BothReject),
        (b"GET / HTTP/1.1\r\nBad[Name: v\r\n\r\n", BothReject),
    ];
    for &(input, ref expected) in cases {
        assert_eq!(
            &compare(input),
            expected,
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

/// A generated request: what a client would send, in parts.
#[derive(Debug, Clone)]
struct Req {
    method: String,
    target: String,
    version: Version,
    fields: Vec<(String, String)>,
}

/// The canonical form: single spaces, `name: value` with one space, CRLF everywhere.
fn write_request(r: &Req) -> Vec<u8> {
    let v = match r.version {
        Version::Http10 => "HTTP/1.0",
        Version::Http11 => "HTTP/1.1",
    };
    let mut out = format!("{} {} {v}\r\n", r.method, r.target).into_bytes();
    for (n, val) in &r.fields {
        out.extend_from_slice(format!("{n}: {val}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Serialise what bext parsed, from spans only.
fn rewrite_request(buf: &[u8], h: &RequestHead) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(h.method_bytes(buf));
    out.push(b' ');
    out.extend_from_slice(h.target.get(buf));
    out.extend_from_slice(match h.version {
        Some(Version::Http10) => b" HTTP/1.0\r\n",
        _ => b" HTTP/1.1\r\n",
    });
    for f in &h.headers {
        out.extend_from_slice(f.name.get(buf));
        out.extend_from_slice(b": ");
        out.extend_from_slice(f.value.get(buf));
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("GET".to_string()),
        Just("HEAD".to_string()),
        Just("POST".to_string()),
        Just("PUT".to_string()),
        Just("DELETE".to_string()),
        Just("OPTIONS".to_string()),
        Just("PATCH".to_string()),
        Just("TRACE".to_string()),
        "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}",
    ]
}

fn target() -> impl Strategy<Value = String> {
    let seg = "([A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2}){0,12}";
    (
        proptest::collection::vec(seg, 0..5),
        proptest::option::of("([A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9a-f]{2}){0,20}"),
        proptest::option::of("(http|https|HTTP)://[a-z0-9.-]{1,20}(:[0-9]{1,4})?"),
    )
        .prop_map(|(segs, query, abs)| {
            let mut t = abs.unwrap_or_default();
            t.push('/');
            t.push_str(&segs.join("/"));
            if let Some(q) = query {
                t.push('?');
                t.push_str(&q);
            }
            t
        })
}

fn field() -> impl Strategy<Value = (String, String)> {
    (
        "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,16}",
        "([!-~\u{e9}\u{4e2d}]([ \t!-~\u{e9}]{0,30}[!-~])?)?",
    )
        .prop_map(|(n, v)| (format!("x-{n}"), v))
}

fn request() -> impl Strategy<Value = Req> {
    (
        method(),
        target(),
        any::<bool>(),
        "[a-z0-9-]{1,20}(\\.[a-z]{2,5})?(:[0-9]{1,4})?",
        proptest::collection::vec(field(), 0..12),
        0usize..13,
        prop_oneof![
            Just(None),
            (0u64..1_000_000).prop_map(|n| Some(("Content-Length".to_string(), n.to_string()))),
            Just(Some((
                "Transfer-Encoding".to_string(),
                "chunked".to_string()
            ))),
            Just(Some(("Connection".to_string(), "close".to_string()))),
            Just(Some((
                "Connection".to_string(),
                "keep-alive, Upgrade".to_string()
            ))),
            Just(Some(("Expect".to_string(), "100-continue".to_string()))),
        ],
    )
        .prop_map(|(method, target, v11, host, mut fields, host_at, extra)| {
            let version = if v11 {
                Version::Http11
            } else {
                Version::Http10
            };
            let host_at = host_at.min(fields.len());
            fields.insert(host_at, ("Host".to_string(), host));
            if let Some(e) = extra {
                if !(e.0 == "Transfer-Encoding" && version == Version::Http10) {
                    fields.push(e);
                }
            }
            Req {
                method,
                target,
                version,
                fields,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn generated_requests_round_trip_and_httparse_agrees(r in request()) {
        let wire = write_request(&r);
        let mut head = RequestHead::default();
        let parsed = parse_request(&wire, &Limits::default(), &mut head);
        prop_assert_eq!(parsed, Ok(Parse::Complete), "{}", String::from_utf8_lossy(&wire));
        prop_assert_eq!(head.head_len, wire.len());
        prop_assert_eq!(head.version, Some(r.version));
        prop_assert_eq!(head.method_bytes(&wire), r.method.as_bytes());
        prop_assert_eq!(head.target.get(&wire), r.target.as_bytes());
        let fields: Vec<(&[u8], &[u8])> =
            head.headers.iter().map(|h| (h.name.get(&wire), h.value.get(&wire))).collect();
        let expected: Vec<(&[u8], &[u8])> =
            r.fields.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())).collect();
        prop_assert_eq!(fields, expected);
        prop_assert_eq!(rewrite_request(&wire, &head), wire.clone());
        let known = matches!(
            head.method,
            Some(Method::Get | Method::Head | Method::Post | Method::Put | Method::Delete
                | Method::Options | Method::Patch | Method::Trace)
        );
        prop_assert_eq!(known, ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE"].contains(&r.method.as_str()));
        prop_assert_eq!(compare(&wire), Agreement::BothAccept);
    }

    #[test]
    fn mutated_requests_keep_the_agreement_rule(
        r in request(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..4),
    ) {
        let mut wire = write_request(&r);
        for (at, byte, op) in edits {
            let i = at.index(wire.len() + 1);
            match op {
                0 => wire.insert(i, byte),
                1 if i < wire.len() => wire[i] = byte,
                _ if i < wire.len() => { wire.remove(i); }
                _ => {}
            }
        }
        compare(&wire);
    }

    #[test]
    fn generated_responses_round_trip(
        status in 100u16..600,
        reason in "([!-~]([ !-~]{0,20}[!-~])?)?",
        v11 in any::<bool>(),
        fields in proptest::collection::vec(field(), 0..10),
        body in prop_oneof![Just(0u8), Just(1), Just(2)],
        len in 0u64..1_000_000,
        ctx_head in any::<bool>(),
    ) {
        let version = if v11 { "HTTP/1.1" } else { "HTTP/1.0" };
        let mut wire = format!("{version} {status} {reason}\r\n").into_bytes();
        let mut all = fields.clone();
        match body {
            1 => all.push(("Content-Length".into(), len.to_string())),
            2 if v11 => all.push(("Transfer-Encoding".into(), "chunked".into())),
            _ => {}
        }
        for (n, v) in &all {
            wire.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
        }
        wire.extend_from_slice(b"\r\n");
        let ctx = ResponseContext { request_was_head: ctx_head, request_was_connect: false };
        let mut h = ResponseHead::default();
        prop_assert_eq!(parse_response(&wire, &Limits::default(), ctx, &mut h), Ok(Parse::Complete));
        prop_assert_eq!(h.status, status);
        prop_assert_eq!(h.reason.get(&wire), reason.as_bytes());
        prop_assert_eq!(h.head_len, wire.len());
        let got: Vec<(&[u8], &[u8])> =
            h.headers.iter().map(|f| (f.name.get(&wire), f.value.get(&wire))).collect();
        let expected: Vec<(&[u8], &[u8])> =
            all.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())).collect();
        prop_assert_eq!(got, expected);
        let no_body = ctx_head || status < 200 || status == 204 || status == 304;
        let framing = match (no_body, body) {
            (true, _) => Framing::None,
            (false, 1) => Framing::ContentLength(len),
            (false, 2) if v11 => Framing::Chunked,
            _ => Framing::CloseDelimited,
        };
        prop_assert_eq!(h.framing, Some(framing));
        // Rewritten from spans, it is byte for byte the same.
        let mut again = format!("{version} {status} ").into_bytes();
        again.extend_from_slice(h.reason.get(&wire));
        again.extend_from_slice(b"\r\n");
        for f in &h.headers {
            again.extend_from_slice(f.name.get(&wire));
            again.extend_from_slice(b": ");
            again.extend_from_slice(f.value.get(&wire));
            again.extend_from_slice(b"\r\n");
        }
        again.extend_from_slice(b"\r\n");
        prop_assert_eq!(again, wire);
    }
}
