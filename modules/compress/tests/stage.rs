//! The stage on its own, with heads built by hand (no engine): what it edits, when it flushes,
//! and how encoders go back to the core's pool, after a whole body or an abandoned one.

use std::io::Read;

use bext_compress::{pool, CompressStage, CompressState, Encoding, FULL_PIECE};
use bext_http1::{Header, Span};
use bext_ir::{Compress, Loc};
use bext_stage::{BodyUse, HeadEdits, Headers, RequestView, ResponseHead, Stage};

/// A head's fields, `Name: value` per line, and their spans.
fn fields(text: &str) -> (Vec<u8>, Vec<Header>) {
    let buf = text.as_bytes().to_vec();
    let mut list = vec![];
    let mut at = 0u32;
    for line in text.split_inclusive('\n') {
        let colon = line.find(':').expect("a field line") as u32;
        let value = line[colon as usize + 1..].trim();
        let vstart = at + line[..].find(value).unwrap_or(colon as usize + 1) as u32;
        list.push(Header {
            name: Span {
                start: at,
                end: at + colon,
            },
            value: Span {
                start: vstart,
                end: vstart + value.len() as u32,
            },
        });
        at += line.len() as u32;
    }
    (buf, list)
}

fn stage(encodings: Vec<Encoding>) -> CompressStage {
    CompressStage::new(&Compress::with_defaults(encodings, Loc::default()))
}

/// Runs the request phase for a request with these fields.
fn request(s: &CompressStage, method: &str, text: &str) -> CompressState {
    let (buf, list) = fields(text);
    let view = RequestView {
        method: None,
        method_bytes: method.as_bytes(),
        host: b"h",
        path: b"/",
        query: None,
        headers: Headers::new(&buf, &list),
        client: "127.0.0.1:1".parse().unwrap(),
        tls: false,
        client_cert: None,
    };
    let mut st = s.init();
    s.on_request(&mut st, &view);
    st
}

/// Runs the response head phase: what the stage answered and the serialised edits.
fn respond(
    s: &CompressStage,
    st: &mut CompressState,
    status: u16,
    text: &str,
) -> (BodyUse, String, bool) {
    let (buf, list) = fields(text);
    let mut edits = HeadEdits::default();
    let mut head = ResponseHead::new(status, Headers::new(&buf, &list), &mut edits);
    let used = s.on_response_head(st, &mut head);
    let lines = String::from_utf8(edits.added_lines().to_vec()).unwrap();
    let cl_removed = edits.removes(b"content-length");
    (used, lines, cl_removed)
}

const HTML: &str = "Content-Type: text/html\nContent-Length: 5000\n";

#[test]
fn a_compressed_head_is_edited_as_a_whole() {
    let s = stage(vec![Encoding::Gzip]);
    let mut st = request(&s, "GET", "Accept-Encoding: gzip\n");
    let (used, added, cl_removed) = respond(
        &s,
        &mut st,
        200,
        "Content-Type: text/html\nContent-Length: 5000\nETag: \"v1\"\nVary: Cookie\nAccept-Ranges: bytes\n",
    );
    assert_eq!(used, BodyUse::Filter);
    assert!(cl_removed);
    assert_eq!(
        added,
        "Vary: Accept-Encoding\r\nContent-Encoding: gzip\r\nETag: W/\"v1\"\r\n"
    );
}

#[test]
fn what_is_not_compressed_is_left_alone_but_may_vary() {
    let s = stage(vec![Encoding::Zstd, Encoding::Gzip]);
    // (method, request fields, status, response fields, Vary added)
    let cases: &[(&str, &str, u16, &str, bool)] = &[
        ("HEAD", "Accept-Encoding: gzip\n", 200, HTML, true),
        (
            "GET",
            "Accept-Encoding: gzip\nRange: bytes=0-1\n",
            200,
            HTML,
            true,
        ),
        ("GET", "Accept-Encoding: identity;q=0\n", 200, HTML, true),
        (
            "GET",
            "Accept-Encoding: gzip;q=0, zstd;q=0\n",
            200,
            HTML,
            true,
        ),
        ("GET", "X-Other: 1\n", 200, HTML, true),
        ("GET", "Accept-Encoding: gzip\n", 206, HTML, false),
        ("GET", "Accept-Encoding: gzip\n", 304, HTML, false),
        (
            "GET",
            "Accept-Encoding: gzip\n",
            200,
            "Content-Type: text/html\nContent-Length: 10\n",
            false,
        ),
        (
            "GET",
            "Accept-Encoding: gzip\n",
            200,
            "Content-Type: text/html\nContent-Encoding: br\n",
            false,
        ),
        (
            "GET",
            "Accept-Encoding: gzip\n",
            200,
            "Content-Type: text/html\nCache-Control: No-Transform\n",
            false,
        ),
        (
            "GET",
            "Accept-Encoding: gzip\n",
            200,
            "Content-Type: image/png\n",
            false,
        ),
    ];
    for (method, req, status, resp, vary) in cases {
        let mut st = request(&s, method, req);
        let before = pool::idle(Encoding::Gzip, 1) + pool::idle(Encoding::Zstd, 3);
        let (used, added, cl_removed) = respond(&s, &mut st, *status, resp);
        assert_eq!(used, BodyUse::Pass, "{method} {req:?} {status} {resp:?}");
        assert!(!cl_removed);
        let want = if *vary {
            "Vary: Accept-Encoding\r\n"
        } else {
            ""
        };
        assert_eq!(added, want, "{method} {req:?} {status} {resp:?}");
        // No encoder was taken.
        assert_eq!(
            pool::idle(Encoding::Gzip, 1) + pool::idle(Encoding::Zstd, 3),
            before
        );
    }
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = vec![];
    flate2::read::MultiGzDecoder::new(data)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// A gzip stream cut where it is, decoded as far as it goes.
fn gunzip_prefix(data: &[u8]) -> Vec<u8> {
    let mut out = vec![];
    let mut d = flate2::read::GzDecoder::new(data);
    let mut buf = [0u8; 4096];
    while let Ok(n) = d.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    out
}

#[test]
fn a_short_piece_is_flushed_unless_it_completes_the_announced_length() {
    let s = stage(vec![Encoding::Gzip]);
    let body = b"a short piece of text, less than a full transfer buffer".repeat(10);
    // Length unknown (chunked upstream): the short piece is flushed, decodable at once.
    let mut st = request(&s, "GET", "Accept-Encoding: gzip\n");
    let (used, ..) = respond(&s, &mut st, 200, "Content-Type: text/html\n");
    assert_eq!(used, BodyUse::Filter);
    let mut out = vec![];
    s.on_body(&mut st, &body, &mut out).unwrap();
    assert_eq!(gunzip_prefix(&out), body);
    // The piece that completes the Content-Length is not: the trailer follows at once.
    let mut st = request(&s, "GET", "Accept-Encoding: gzip\n");
    let cl = format!("Content-Type: text/html\nContent-Length: {}\n", body.len());
    respond(&s, &mut st, 200, &cl);
    let mut out = vec![];
    s.on_body(&mut st, &body, &mut out).unwrap();
    assert_eq!(out.len(), 10, "only the gzip header before the end");
    s.on_body_end(&mut st, &mut out).unwrap();
    assert_eq!(gunzip(&out), body);
    // Full pieces are not flushed: more is waiting.
    let big = vec![b'x'; FULL_PIECE];
    let mut st = request(&s, "GET", "Accept-Encoding: gzip\n");
    respond(&s, &mut st, 200, "Content-Type: text/html\n");
    let mut out = vec![];
    s.on_body(&mut st, &big, &mut out).unwrap();
    assert!(gunzip_prefix(&out).len() < big.len());
}

#[test]
fn encoders_return_to_the_pool_after_whole_and_abandoned_bodies() {
    // A level no other test of this file uses, so the counts are this test's own.
    let mut c = Compress::with_defaults(vec![Encoding::Gzip], Loc::default());
    c.levels.insert(Encoding::Gzip, 7);
    let s = CompressStage::new(&c);
    let body = b"<p>some html, some more html</p>\n".repeat(3000);
    assert_eq!(pool::idle(Encoding::Gzip, 7), 0);
    for round in 0..3 {
        // Abandoned half-way: the state is dropped with the encoder mid-stream.
        let mut st = request(&s, "GET", "Accept-Encoding: gzip\n");
        respond(&s, &mut st, 200, "Content-Type: text/html\n");
        let mut out = vec![];
        s.on_body(&mut st, &body[..50_000], &mut out).unwrap();
        drop(st);
        assert_eq!(pool::idle(Encoding::Gzip, 7), 1, "round {round}");
        // The next body, on the same encoder, decodes exactly.
        let mut st = request(&s, "GET", "Accept-Encoding: gzip\n");
        respond(&s, &mut st, 200, "Content-Type: text/html\n");
        assert_eq!(pool::idle(Encoding::Gzip, 7), 0, "taken from the pool");
        let mut out = vec![];
        for piece in body.chunks(7000) {
            s.on_body(&mut st, piece, &mut out).unwrap();
        }
        s.on_body_end(&mut st, &mut out).unwrap();
        assert_eq!(
            pool::idle(Encoding::Gzip, 7),
            1,
            "back at the end of the body"
        );
        assert_eq!(gunzip(&out), body);
    }
}

#[test]
fn the_pool_keeps_a_bounded_number_per_kind() {
    let leases: Vec<_> = (0..pool::IDLE_PER_KIND + 3)
        .map(|_| pool::Lease::take(Encoding::Zstd, 11))
        .collect();
    assert_eq!(pool::idle(Encoding::Zstd, 11), 0);
    drop(leases);
    assert_eq!(pool::idle(Encoding::Zstd, 11), pool::IDLE_PER_KIND);
}
