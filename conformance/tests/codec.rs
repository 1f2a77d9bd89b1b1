//! The request-side cases against the codec alone (`bext_http1`), with a small model of what a
//! server built on it answers: the status of each request in order, and whether the connection
//! ends. It tells a codec defect from an engine defect when the end-to-end suite fails, and
//! pins the codec to the suite's expectations.

use bext_conformance::case::{self, Case};
use bext_http1::{parse_request, Chunk, ChunkedDecoder, Framing, Limits, Parse, RequestHead};

/// The body limit of the configuration the end-to-end suite runs (the IR default).
const BODY_LIMIT: u64 = 10 * 1024 * 1024;

/// Cases whose outcome is decided above the codec, each with the reason.
const DECIDED_BY_THE_ENGINE: &[(&str, &str)] = &[
    (
        "limit-body-chunk-over",
        "the body limit applies to chunk sizes as the decoder reports them",
    ),
    (
        "connect-refused",
        "the codec parses CONNECT; the engine refuses to tunnel",
    ),
    (
        "rl-percent-encoded-nul-refused",
        "valid URI syntax; the engine's path normalisation refuses `%00`",
    ),
    (
        "rl-encoded-slash-refused",
        "valid URI syntax; the engine's path normalisation refuses `%2F`",
    ),
];

/// What a server built on the codec answers to `bytes`: statuses in order, and whether it ends
/// the connection. A request left incomplete ends with the timeout's 408.
fn model(bytes: &[u8]) -> (Vec<u16>, bool) {
    let limits = Limits::default();
    let mut out = Vec::new();
    let mut pos = 0;
    let mut head = RequestHead::default();
    while pos < bytes.len() {
        match parse_request(&bytes[pos..], &limits, &mut head) {
            Err(e) => {
                out.push(e.status());
                return (out, true);
            }
            Ok(Parse::Partial) => {
                out.push(408);
                return (out, true);
            }
            Ok(Parse::Complete) => {}
        }
        pos += head.head_len;
        match head.framing {
            Some(Framing::ContentLength(n)) => {
                if n > BODY_LIMIT {
                    out.push(413);
                    return (out, true);
                }
                let n = n as usize;
                if bytes.len() - pos < n {
                    out.push(408);
                    return (out, true);
                }
                pos += n;
            }
            Some(Framing::Chunked) => {
                let mut dec = ChunkedDecoder::new();
                loop {
                    match dec.decode(&bytes[pos..]) {
                        Ok((used, Chunk::Data(_))) => pos += used,
                        Ok((used, Chunk::Done)) => {
                            pos += used;
                            break;
                        }
                        Ok((_, Chunk::NeedMore)) => {
                            out.push(408);
                            return (out, true);
                        }
                        Err(_) => {
                            out.push(400);
                            return (out, true);
                        }
                    }
                }
            }
            _ => {}
        }
        out.push(200);
        if !head.keep_alive {
            return (out, true);
        }
    }
    (out, false)
}

#[test]
fn the_codec_agrees_with_every_request_side_case() {
    let cases: Vec<Case> = case::load_all().unwrap_or_else(|e| panic!("cases: {e}"));
    let mut checked = 0;
    let mut differ = Vec::new();
    for c in &cases {
        if c.upstream.is_some() || DECIDED_BY_THE_ENGINE.iter().any(|(id, _)| *id == c.id) {
            continue;
        }
        // Interim responses depend on timing (was the body there yet?), not on parsing.
        let want: Vec<u16> = c
            .expect
            .responses
            .iter()
            .map(|r| r.status)
            .filter(|s| *s >= 200)
            .collect();
        let (got, closed) = model(&c.request_bytes());
        checked += 1;
        if got != want || closed != c.expect.close {
            differ.push(format!(
                "{} ({}): want {want:?} {}, the codec gives {got:?} {}",
                c.id,
                c.at,
                if c.expect.close { "close" } else { "keep" },
                if closed { "close" } else { "keep" },
            ));
        }
    }
    println!("{checked} request-side cases checked against the codec");
    assert!(checked >= 250, "only {checked} cases checked");
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}
