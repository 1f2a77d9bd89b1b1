//! `compress` end to end: bext started with the directive on `respond` and `proxy` routes,
//! a scripted origin sending bodies with Content-Length, chunked and close-delimited framing,
//! in small and large pieces, with and without pauses; clients are a raw one over `TcpStream`
//! (exact framing, bodies decoded with the reference decoders flate2, zstd and brotli,
//! byte-exact) and curl where it is installed.

mod common;
use bext_ir::{Compress, Encoding};
use common::*;
use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// ------------------------------------------------------------------ configurations

fn all_three() -> Compress {
    Compress::with_defaults(vec![Encoding::Zstd, Encoding::Br, Encoding::Gzip], loc())
}

/// A respond route with `compress`.
fn responding(body: &str, c: Compress) -> bext::Server {
    let mut r = route(bext_ir::PathMatch::Prefix("/".into()), respond(200, body));
    r.compress = Some(c);
    start(site(vec![r]))
}

/// bext proxying to `origin` with `compress`.
fn proxying(origin: SocketAddr, c: Compress) -> bext::Server {
    let mut config = proxy_to(origin);
    config.sites[0].routes[0].compress = Some(c);
    start(config)
}

/// Text that compresses well, `n` bytes, different at every offset of a line.
fn text(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 64);
    let mut i = 0u64;
    while out.len() < n {
        out.extend_from_slice(
            format!("line {i}: the quick brown fox jumps over the lazy dog\n").as_bytes(),
        );
        i += 1;
    }
    out.truncate(n);
    out
}

// ------------------------------------------------------------------ the scripted origin

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    Length,
    Chunked,
    Close,
}

/// What the origin answers to the next requests.
#[derive(Clone)]
struct Script {
    status: u16,
    /// Fields besides the framing ones.
    fields: Vec<(String, String)>,
    body: Vec<u8>,
    framing: Framing,
    /// Sizes of the pieces the body is written in (the rest goes in one last piece); each is
    /// one chunk when chunked.
    pieces: Vec<usize>,
    /// A pause after each piece.
    pause: Duration,
    /// When set, the origin stops after its first piece until this turns true.
    gate: Option<Arc<AtomicBool>>,
    /// The origin closes the connection after this many body bytes, mid-body.
    abort_after: Option<usize>,
}

impl Script {
    fn new(body: Vec<u8>) -> Script {
        Script {
            status: 200,
            fields: vec![("Content-Type".into(), "text/html; charset=utf-8".into())],
            body,
            framing: Framing::Length,
            pieces: vec![],
            pause: Duration::ZERO,
            gate: None,
            abort_after: None,
        }
    }

    fn field(mut self, n: &str, v: &str) -> Script {
        self.fields.retain(|(f, _)| !f.eq_ignore_ascii_case(n));
        self.fields.push((n.into(), v.into()));
        self
    }

    fn framing(mut self, f: Framing) -> Script {
        self.framing = f;
        self
    }

    fn status(mut self, s: u16) -> Script {
        self.status = s;
        self
    }
}

type Shared = Arc<Mutex<Script>>;

/// The origin: reads requests one after the other on each connection and answers each with
/// the script as it is when the request arrives.
fn scripted(script: Script) -> (SocketAddr, Shared) {
    let shared = Arc::new(Mutex::new(script));
    let s2 = shared.clone();
    let a = upstream(move |s| serve(s, &s2));
    (a, shared)
}

fn serve(mut s: TcpStream, script: &Shared) {
    s.set_nodelay(true).unwrap();
    loop {
        let Some(head) = request_head(&mut s) else {
            return;
        };
        let sc = script.lock().unwrap().clone();
        let head_request = head.starts_with("HEAD ");
        let bodiless = head_request || sc.status == 204 || sc.status == 304;
        let mut out = format!("HTTP/1.1 {} X\r\n", sc.status);
        for (n, v) in &sc.fields {
            out.push_str(&format!("{n}: {v}\r\n"));
        }
        match sc.framing {
            _ if sc.status == 204 || sc.status == 304 => {}
            Framing::Length => out.push_str(&format!("Content-Length: {}\r\n", sc.body.len())),
            Framing::Chunked => out.push_str("Transfer-Encoding: chunked\r\n"),
            Framing::Close => out.push_str("Connection: close\r\n"),
        }
        out.push_str("\r\n");
        if s.write_all(out.as_bytes()).is_err() {
            return;
        }
        if bodiless {
            if sc.framing == Framing::Close {
                return;
            }
            continue;
        }
        let mut at = 0;
        let mut sizes = sc.pieces.iter().copied();
        let mut first = true;
        while at < sc.body.len() {
            let n = sizes
                .next()
                .unwrap_or(sc.body.len() - at)
                .clamp(1, sc.body.len() - at);
            let mut piece = &sc.body[at..at + n];
            if let Some(stop) = sc.abort_after {
                if at + n > stop {
                    piece = &sc.body[at..stop.max(at)];
                    let _ = s.write_all(piece);
                    return;
                }
            }
            let ok = if sc.framing == Framing::Chunked {
                s.write_all(format!("{:x}\r\n", piece.len()).as_bytes())
                    .and_then(|_| s.write_all(piece))
                    .and_then(|_| s.write_all(b"\r\n"))
            } else {
                s.write_all(piece)
            };
            if ok.is_err() {
                return;
            }
            at += n;
            if first {
                if let Some(g) = &sc.gate {
                    let until = Instant::now() + Duration::from_secs(20);
                    while !g.load(Ordering::SeqCst) && Instant::now() < until {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
                first = false;
            }
            if !sc.pause.is_zero() {
                std::thread::sleep(sc.pause);
            }
        }
        match sc.framing {
            Framing::Chunked => {
                if s.write_all(b"0\r\n\r\n").is_err() {
                    return;
                }
            }
            Framing::Close => return,
            Framing::Length => {}
        }
    }
}

/// One request head, or `None` when the peer closed.
fn request_head(s: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(1) => head.push(b[0]),
            _ => return None,
        }
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

// ------------------------------------------------------------------ the clients

fn request(path: &str, accept: Option<&str>, extra: &str) -> Vec<u8> {
    let ae = accept.map_or(String::new(), |v| format!("Accept-Encoding: {v}\r\n"));
    format!("GET {path} HTTP/1.1\r\nHost: h\r\n{ae}{extra}\r\n").into_bytes()
}

fn get(a: SocketAddr, accept: Option<&str>) -> Resp {
    exchange(a, &request("/", accept, "")).0
}

/// The body decoded as its `Content-Encoding` says, by the reference decoders; a stream that
/// does not end properly (truncated, trailing garbage, bad checksum) fails.
fn decode(r: &Resp) -> Vec<u8> {
    decode_as(r.header("content-encoding"), &r.body)
}

fn decode_as(encoding: Option<&str>, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match encoding {
        None => out.extend_from_slice(body),
        Some("gzip") => {
            let mut d = flate2::read::GzDecoder::new(body);
            d.read_to_end(&mut out).expect("a valid gzip stream");
            let mut rest = Vec::new();
            d.into_inner().read_to_end(&mut rest).unwrap();
            assert!(
                rest.is_empty(),
                "{} bytes after the gzip member",
                rest.len()
            );
        }
        Some("zstd") => out = zstd::stream::decode_all(body).expect("a valid zstd frame"),
        Some("br") => {
            brotli::Decompressor::new(body, 4096)
                .read_to_end(&mut out)
                .expect("a valid brotli stream");
        }
        Some(other) => panic!("unexpected Content-Encoding {other}"),
    }
    out
}

/// Every line of field `name`, joined with `, `.
fn all(r: &Resp, name: &str) -> String {
    r.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A compressed response, as every compressed response must look.
fn assert_compressed(r: &Resp, encoding: &str, want: &[u8]) {
    assert_eq!(r.status, 200);
    assert!(r.complete, "the response ended cleanly");
    assert_eq!(r.header("content-encoding"), Some(encoding));
    assert_eq!(r.header("content-length"), None);
    assert_eq!(r.header("accept-ranges"), None);
    let vary = all(r, "vary").to_ascii_lowercase();
    assert!(
        vary.contains("accept-encoding") || vary == "*",
        "{:?}",
        r.headers
    );
    let got = decode(r);
    assert_eq!(got.len(), want.len());
    assert!(got == want, "the decoded body differs");
}

/// A response sent as it is.
fn assert_identity(r: &Resp, want: &[u8]) {
    assert_eq!(r.header("content-encoding"), None, "{:?}", r.headers);
    assert!(r.body == want, "the body was changed");
}

// ------------------------------------------------------------------ respond routes

#[test]
fn respond_routes_are_compressed_with_each_encoding_and_decode_exactly() {
    let body = String::from_utf8(text(5000)).unwrap();
    let s = responding(&body, all_three());
    let a = addr(&s);
    for (accept, enc) in [
        ("zstd", "zstd"),
        ("br", "br"),
        ("gzip", "gzip"),
        ("x-gzip", "gzip"),
        ("gzip, deflate, br, zstd", "zstd"),
        ("gzip;q=0.5, br;q=0.9", "br"),
        ("*", "zstd"),
        ("zstd;q=0, *;q=0.1", "br"),
        ("GZIP;Q=1", "gzip"),
    ] {
        let r = get(a, Some(accept));
        assert_eq!(r.header("transfer-encoding"), Some("chunked"), "{accept}");
        assert_compressed(&r, enc, body.as_bytes());
    }
    s.shutdown();
}

#[test]
fn respond_routes_below_min_size_or_not_accepting_are_sent_as_they_are() {
    let mut c = all_three();
    c.min_size = 1000;
    let small = responding("short body, below the minimum", c.clone());
    let r = get(addr(&small), Some("gzip"));
    assert_identity(&r, b"short body, below the minimum");
    assert_eq!(r.header("content-length"), Some("29"));
    // Too small to be worth it for anyone: no Vary either.
    assert_eq!(r.header("vary"), None);
    small.shutdown();

    let body = String::from_utf8(text(2000)).unwrap();
    let s = responding(&body, c);
    let a = addr(&s);
    for accept in [
        None,
        Some("identity"),
        Some("deflate"),
        Some("identity;q=0"),
        Some("gzip;q=0, zstd;q=0, br;q=0"),
    ] {
        let r = get(a, accept);
        assert_identity(&r, body.as_bytes());
        assert_eq!(r.header("content-length"), Some("2000"), "{accept:?}");
        assert_eq!(r.header("vary"), Some("Accept-Encoding"), "{accept:?}");
    }
    s.shutdown();
}

#[test]
fn an_unlisted_type_is_not_compressed() {
    let mut c = all_three();
    c.types = vec!["application/json".into()];
    let s = responding(&String::from_utf8(text(2000)).unwrap(), c);
    let r = get(addr(&s), Some("gzip"));
    // `respond` bodies are text/plain.
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.header("vary"), None);
    s.shutdown();
}

#[test]
fn head_requests_get_the_head_of_the_uncompressed_response() {
    let body = String::from_utf8(text(2000)).unwrap();
    let s = responding(&body, all_three());
    let (r, _) = exchange(
        addr(&s),
        b"HEAD / HTTP/1.1\r\nHost: h\r\nAccept-Encoding: gzip\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.header("content-length"), Some("2000"));
    assert_eq!(r.header("vary"), Some("Accept-Encoding"));
    assert!(r.body.is_empty());
    s.shutdown();
}

#[test]
fn keep_alive_carries_requests_after_a_compressed_response() {
    let body = String::from_utf8(text(40_000)).unwrap();
    let s = responding(&body, all_three());
    let mut c = connect(addr(&s));
    let mut r = BufReader::new(c.try_clone().unwrap());
    for accept in [Some("gzip"), Some("zstd"), None, Some("br")] {
        c.write_all(&request("/", accept, "")).unwrap();
        let resp = read_response(&mut r, false);
        match accept {
            Some(e) => assert_compressed(&resp, e, body.as_bytes()),
            None => assert_identity(&resp, body.as_bytes()),
        }
        assert_eq!(resp.header("connection"), None);
    }
    s.shutdown();
}

#[test]
fn an_http10_client_gets_a_body_delimited_by_the_close() {
    let body = String::from_utf8(text(3000)).unwrap();
    let s = responding(&body, all_three());
    let (r, mut rest) = exchange(addr(&s), b"GET / HTTP/1.0\r\nAccept-Encoding: gzip\r\n\r\n");
    assert_eq!(r.header("transfer-encoding"), None);
    assert_eq!(r.header("connection"), Some("close"));
    assert_compressed(&r, "gzip", body.as_bytes());
    assert!(closed(&mut rest));
    s.shutdown();
}

// ------------------------------------------------------------------ proxied responses

#[test]
fn every_framing_and_piece_size_is_compressed_and_decodes_exactly() {
    let body = text(300_000);
    let (o, script) = scripted(Script::new(body.clone()));
    let s = proxying(o, all_three());
    let a = addr(&s);
    let shapes: &[(&str, Vec<usize>, Duration)] = &[
        ("one write", vec![], Duration::ZERO),
        ("small pieces", vec![7; 40], Duration::ZERO),
        ("large pieces", vec![70_000; 4], Duration::ZERO),
        (
            "small pieces with pauses",
            vec![100, 1, 3000, 5, 16_000],
            Duration::from_millis(15),
        ),
        (
            "large pieces with pauses",
            vec![100_000, 90_000],
            Duration::from_millis(30),
        ),
    ];
    for framing in [Framing::Length, Framing::Chunked, Framing::Close] {
        for (what, pieces, pause) in shapes {
            for enc in ["zstd", "br", "gzip"] {
                {
                    let mut sc = script.lock().unwrap();
                    sc.framing = framing;
                    sc.pieces = pieces.clone();
                    sc.pause = *pause;
                }
                let r = get(a, Some(enc));
                assert_eq!(
                    r.header("transfer-encoding"),
                    Some("chunked"),
                    "{framing:?} {what} {enc}"
                );
                assert_compressed(&r, enc, &body);
            }
        }
    }
    s.shutdown();
}

#[test]
fn responses_that_must_not_be_compressed_pass_untouched() {
    let body = text(4000);
    let (o, script) = scripted(Script::new(body.clone()));
    let s = proxying(o, all_three());
    let a = addr(&s);
    type Case = (&'static str, fn(Script) -> Script, &'static str, bool);
    // (what, origin script, request fields, Vary expected)
    let cases: &[Case] = &[
        (
            "already encoded",
            |s| s.field("Content-Encoding", "gzip"),
            "",
            false,
        ),
        (
            "already encoded, even as identity",
            |s| s.field("Content-Encoding", "identity"),
            "",
            false,
        ),
        (
            "no-transform",
            |s| s.field("Cache-Control", "public, no-transform"),
            "",
            false,
        ),
        (
            "an unlisted type",
            |s| s.field("Content-Type", "image/png"),
            "",
            false,
        ),
        (
            "no Content-Type",
            |s| {
                let mut s = s;
                s.fields.clear();
                s
            },
            "",
            false,
        ),
        (
            "a Range request answered in full",
            |s| s,
            "Range: bytes=0-9\r\n",
            true,
        ),
        (
            "a 206",
            |s| s.status(206).field("Content-Range", "bytes 0-3999/10000"),
            "Range: bytes=0-3999\r\n",
            false,
        ),
    ];
    for (what, edit, extra, vary) in cases {
        *script.lock().unwrap() = edit(Script::new(body.clone()));
        let origin_encoding = script
            .lock()
            .unwrap()
            .fields
            .iter()
            .find(|(n, _)| n == "Content-Encoding")
            .map(|(_, v)| v.clone());
        let (r, _) = exchange(a, &request("/", Some("gzip, br, zstd"), extra));
        assert_eq!(
            r.header("content-encoding"),
            origin_encoding.as_deref(),
            "{what}"
        );
        assert!(r.body == body, "{what}: the body was changed");
        assert_eq!(r.header("content-length"), Some("4000"), "{what}");
        assert_eq!(r.header("vary").is_some(), *vary, "{what}: {:?}", r.headers);
    }
    for status in [204, 304] {
        *script.lock().unwrap() = Script::new(vec![]).status(status).field("ETag", "\"v1\"");
        let r = get(a, Some("gzip"));
        assert_eq!(r.status, status);
        assert_eq!(r.header("content-encoding"), None);
        assert_eq!(r.header("etag"), Some("\"v1\""));
    }
    // HEAD of a proxied response: the origin's head, with Vary.
    *script.lock().unwrap() = Script::new(body.clone());
    let (r, _) = exchange(
        a,
        b"HEAD / HTTP/1.1\r\nHost: h\r\nAccept-Encoding: gzip\r\n\r\n",
    );
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.header("content-length"), Some("4000"));
    assert_eq!(r.header("vary"), Some("Accept-Encoding"));
    s.shutdown();
}

#[test]
fn below_min_size_from_the_origin_is_sent_as_it_is_but_unknown_lengths_are_compressed() {
    let mut c = all_three();
    c.min_size = 5000;
    let (o, script) = scripted(Script::new(text(4999)));
    let s = proxying(o, c);
    let a = addr(&s);
    let r = get(a, Some("gzip"));
    assert_identity(&r, &text(4999));
    assert_eq!(r.header("vary"), None);
    // A chunked body's length is not known from its head: compressed.
    script.lock().unwrap().framing = Framing::Chunked;
    assert_compressed(&get(a, Some("gzip")), "gzip", &text(4999));
    *script.lock().unwrap() = Script::new(text(5000));
    assert_compressed(&get(a, Some("gzip")), "gzip", &text(5000));
    s.shutdown();
}

#[test]
fn etags_are_weakened_and_vary_is_merged() {
    let body = text(3000);
    let (o, script) = scripted(
        Script::new(body.clone())
            .field("ETag", "\"abc\"")
            .field("Vary", "Cookie"),
    );
    let s = proxying(o, all_three());
    let a = addr(&s);
    let r = get(a, Some("br"));
    assert_compressed(&r, "br", &body);
    assert_eq!(r.header("etag"), Some("W/\"abc\""));
    assert_eq!(all(&r, "vary"), "Cookie, Accept-Encoding");
    // Uncompressed: the strong tag stays, Vary still names Accept-Encoding.
    let r = get(a, None);
    assert_identity(&r, &body);
    assert_eq!(r.header("etag"), Some("\"abc\""));
    assert_eq!(all(&r, "vary"), "Cookie, Accept-Encoding");
    // Already weak, and a Vary that names it already (any case) or is `*`.
    for (etag, vary) in [
        ("W/\"x\"", "accept-encoding"),
        ("W/\"x\"", "*"),
        ("W/\"x\"", "Cookie, Accept-Encoding"),
    ] {
        *script.lock().unwrap() = Script::new(body.clone())
            .field("ETag", etag)
            .field("Vary", vary);
        let r = get(a, Some("zstd"));
        assert_compressed(&r, "zstd", &body);
        assert_eq!(r.header("etag"), Some(etag));
        assert_eq!(all(&r, "vary"), vary);
    }
    s.shutdown();
}

/// Streaming: what the origin sent before it paused reaches the client decodable, before the
/// origin sends the rest.
#[test]
fn a_paused_origin_does_not_hold_back_what_it_sent() {
    let body = text(50_000);
    let (o, script) = scripted(Script::new(body.clone()));
    let s = proxying(o, all_three());
    let a = addr(&s);
    for framing in [Framing::Length, Framing::Chunked, Framing::Close] {
        for enc in ["gzip", "zstd", "br"] {
            let gate = Arc::new(AtomicBool::new(false));
            {
                let mut sc = script.lock().unwrap();
                sc.framing = framing;
                sc.pieces = vec![1000];
                sc.gate = Some(gate.clone());
            }
            let mut c = connect(a);
            c.write_all(&request("/", Some(enc), "")).unwrap();
            let mut r = BufReader::new(c);
            let first = read_until_decoded(&mut r, enc, &body[..1000]);
            assert!(
                first,
                "{framing:?} {enc}: the first 1000 bytes did not arrive alone"
            );
            gate.store(true, Ordering::SeqCst);
        }
    }
    script.lock().unwrap().gate = None;
    s.shutdown();
}

/// Reads the head and then chunks of a compressed response, decoding as they come, until the
/// decoded output is `want` (true), or the stream ends or stalls (false).
fn read_until_decoded(r: &mut BufReader<TcpStream>, enc: &str, want: &[u8]) -> bool {
    use std::io::BufRead;
    let mut line = String::new();
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        if line.to_ascii_lowercase().starts_with("content-encoding:") {
            assert_eq!(line[17..].trim(), enc);
        }
    }
    let mut dec: Box<dyn Write> = Box::new(Vec::new());
    let out = Arc::new(Mutex::new(Vec::new()));
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let sink = Sink(out.clone());
    dec = match enc {
        "gzip" => Box::new(flate2::write::GzDecoder::new(sink)),
        "zstd" => Box::new(zstd::stream::write::Decoder::new(sink).unwrap()),
        "br" => Box::new(brotli::DecompressorWriter::new(sink, 4096)),
        _ => dec,
    };
    r.get_ref()
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return false;
        }
        let n = usize::from_str_radix(line.trim_end(), 16).expect("chunk size");
        if n == 0 {
            return false;
        }
        let mut chunk = vec![0; n + 2];
        r.read_exact(&mut chunk).unwrap();
        dec.write_all(&chunk[..n]).unwrap();
        dec.flush().unwrap();
        let got = out.lock().unwrap().clone();
        if got.len() >= want.len() {
            return got == want;
        }
    }
}

#[test]
fn keep_alive_and_upstream_reuse_after_compressed_proxied_responses() {
    let body = text(20_000);
    let (o, script) = scripted(Script::new(body.clone()).framing(Framing::Chunked));
    let s = proxying(o, all_three());
    let mut c = connect(addr(&s));
    let mut r = BufReader::new(c.try_clone().unwrap());
    for (i, enc) in ["gzip", "br", "zstd", "gzip"].into_iter().enumerate() {
        script.lock().unwrap().framing = if i % 2 == 0 {
            Framing::Chunked
        } else {
            Framing::Length
        };
        c.write_all(&request("/", Some(enc), "")).unwrap();
        assert_compressed(&read_response(&mut r, false), enc, &body);
    }
    s.shutdown();
}

#[test]
fn an_http10_client_of_a_proxied_route_gets_the_body_until_the_close() {
    let body = text(70_000);
    let (o, script) = scripted(Script::new(body.clone()));
    let s = proxying(o, all_three());
    for framing in [Framing::Length, Framing::Chunked, Framing::Close] {
        script.lock().unwrap().framing = framing;
        let (r, mut rest) = exchange(addr(&s), b"GET / HTTP/1.0\r\nAccept-Encoding: br\r\n\r\n");
        assert_eq!(r.header("transfer-encoding"), None);
        assert_compressed(&r, "br", &body);
        assert!(closed(&mut rest));
    }
    s.shutdown();
}

/// A response abandoned half-way (the origin closed mid-body) leaves an encoder mid-stream;
/// it goes back to the pool, and the next response compressed with it decodes exactly.
#[test]
fn an_encoder_left_mid_stream_is_fit_for_the_next_response() {
    let body = text(200_000);
    let (o, script) = scripted(Script::new(body.clone()));
    let s = proxying(o, all_three());
    let a = addr(&s);
    for enc in ["gzip", "zstd", "br"] {
        {
            let mut sc = script.lock().unwrap();
            sc.pieces = vec![40_000];
            sc.pause = Duration::from_millis(20);
            sc.abort_after = Some(100_000);
        }
        let r = get(a, Some(enc));
        assert!(
            !r.complete,
            "{enc}: a cut response ends without its last chunk"
        );
        *script.lock().unwrap() = Script::new(body.clone());
        for _ in 0..2 {
            assert_compressed(&get(a, Some(enc)), enc, &body);
        }
    }
    s.shutdown();
}

// ------------------------------------------------------------------ curl

/// Whether curl is installed with support for `feature` (`libz`, `brotli`, `zstd`).
fn curl_has(feature: &str) -> bool {
    match Command::new("curl").arg("-V").output() {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .lines()
            .any(|l| l.starts_with("Features:") && l.split_whitespace().any(|f| f == feature)),
        _ => false,
    }
}

fn curl(args: &[&str]) -> (String, Vec<u8>) {
    let head = std::env::temp_dir().join(format!("bext-compress-curl-{}", std::process::id()));
    let out = Command::new("curl")
        .args(["-s", "-S", "--max-time", "20", "-D"])
        .arg(&head)
        .args(args)
        .output()
        .expect("curl runs");
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let h = std::fs::read_to_string(&head).unwrap_or_default();
    let _ = std::fs::remove_file(&head);
    (h.to_ascii_lowercase(), out.stdout)
}

#[test]
fn curl_decodes_what_bext_compresses() {
    let body = text(100_000);
    let (o, script) = scripted(Script::new(body.clone()).framing(Framing::Chunked));
    let s = proxying(o, all_three());
    let url = format!("http://{}/", addr(&s));
    script.lock().unwrap().pieces = vec![3000, 50_000, 7];
    for (feature, enc) in [("libz", "gzip"), ("brotli", "br"), ("zstd", "zstd")] {
        if !curl_has(feature) {
            eprintln!("skipped: curl without {feature}");
            continue;
        }
        // curl asks for exactly this encoding and decodes it itself.
        let (head, got) = curl(&[
            "--compressed",
            "-H",
            &format!("Accept-Encoding: {enc}"),
            &url,
        ]);
        assert!(head.contains(&format!("content-encoding: {enc}")), "{head}");
        assert!(got == body, "{enc}: curl's decoded body differs");
        // The raw bytes, decoded here.
        let (_, raw) = curl(&["-H", &format!("Accept-Encoding: {enc}"), &url]);
        assert!(decode_as(Some(enc), &raw) == body, "{enc}");
    }
    if curl_has("libz") {
        // Whatever curl offers by itself with --compressed.
        let (head, got) = curl(&["--compressed", &url]);
        assert!(head.contains("content-encoding:"), "{head}");
        assert!(got == body);
        // HTTP/1.0.
        let (head, got) = curl(&["--compressed", "--http1.0", &url]);
        assert!(head.contains("connection: close"), "{head}");
        assert!(got == body);
    }
    s.shutdown();
}

// ------------------------------------------------------------------ random bodies and chunkings

mod random {
    use super::*;
    use proptest::prelude::*;

    fn bodies() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            // Incompressible bytes.
            proptest::collection::vec(any::<u8>(), 1..70_000),
            // Text, with a random cut.
            (1usize..150_000).prop_map(text),
            // Runs of few distinct bytes.
            proptest::collection::vec((0u8..4, 1usize..3000), 1..60).prop_map(|runs| runs
                .into_iter()
                .flat_map(|(b, n)| std::iter::repeat_n(b'a' + b, n))
                .collect()),
        ]
    }

    fn framings() -> impl Strategy<Value = Framing> {
        prop_oneof![
            Just(Framing::Length),
            Just(Framing::Chunked),
            Just(Framing::Close)
        ]
    }

    fn encodings() -> impl Strategy<Value = &'static str> {
        prop_oneof![Just("gzip"), Just("zstd"), Just("br")]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        #[test]
        fn any_body_in_any_chunking_decodes_exactly(
            body in bodies(),
            pieces in proptest::collection::vec(1usize..40_000, 0..12),
            framing in framings(),
            enc in encodings(),
            http10 in any::<bool>(),
        ) {
            let (o, _) = scripted(Script {
                pieces,
                framing,
                ..Script::new(body.clone()).field("Content-Type", "application/octet-stream")
            });
            let mut c = all_three();
            c.types = vec!["application/octet-stream".into()];
            c.min_size = 1;
            let s = proxying(o, c);
            let version = if http10 { "1.0" } else { "1.1" };
            let req = format!("GET / HTTP/{version}\r\nHost: h\r\nAccept-Encoding: {enc}\r\n\r\n");
            let (r, _) = exchange(addr(&s), req.as_bytes());
            s.shutdown();
            prop_assert_eq!(r.header("content-encoding"), Some(enc));
            prop_assert!(r.complete);
            let got = decode(&r);
            prop_assert_eq!(got.len(), body.len());
            prop_assert!(got == body);
        }
    }
}

// ------------------------------------------------------------------ static files

/// Files compressed on the fly: the body goes through the encoder instead of sendfile, and a
/// precompressed sibling (already encoded) is never compressed again.
#[test]
fn static_files_are_compressed_and_their_precompressed_siblings_are_not() {
    let dir = std::env::temp_dir().join(format!("bext-compress-static-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let page = text(200_000);
    std::fs::write(dir.join("page.html"), &page).unwrap();
    let css = text(3000);
    std::fs::write(dir.join("site.css"), &css).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&css).unwrap();
    let css_gz = gz.finish().unwrap();
    std::fs::write(dir.join("site.css.gz"), &css_gz).unwrap();
    std::fs::write(dir.join("tiny.css"), b"a{color:red}").unwrap();
    let mut r = route(
        bext_ir::PathMatch::Prefix("/".into()),
        bext_ir::Action::Static {
            root: dir.to_str().unwrap().into(),
            index: vec![],
        },
    );
    r.compress = Some(all_three());
    let s = start(site(vec![r]));
    let a = addr(&s);
    for enc in ["zstd", "br", "gzip"] {
        let (resp, _) = exchange(a, &request("/page.html", Some(enc), ""));
        assert_compressed(&resp, enc, &page);
        let etag = resp.header("etag").unwrap_or("W/");
        assert!(etag.starts_with("W/"), "{etag}");
    }
    let (resp, _) = exchange(a, &request("/site.css", Some("gzip"), ""));
    assert_eq!(resp.header("content-encoding"), Some("gzip"));
    assert!(resp.body == css_gz, "the sibling is sent as it is");
    assert!(decode(&resp) == css);
    // A file below min_size is sent as it is, with its length.
    let (resp, _) = exchange(a, &request("/tiny.css", Some("gzip"), ""));
    assert_eq!(resp.header("content-encoding"), None);
    assert_eq!(resp.header("content-length"), Some("12"));
    assert_eq!(resp.body, b"a{color:red}");
    s.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}
