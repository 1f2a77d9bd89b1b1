//! Every encoder's output decodes, byte for byte, to its input: through the reference decoders
//! (libzstd, the brotli crate's decompressor, flate2's `GzDecoder`), through the command-line
//! tools when installed, and for random bodies pushed in random pieces with flushes at random
//! points.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use bext_compress::{EncodeError, Encoder, Encoding};
use proptest::prelude::*;

const ALL: [Encoding; 3] = [Encoding::Gzip, Encoding::Zstd, Encoding::Br];

fn decode(e: Encoding, data: &[u8]) -> Vec<u8> {
    let mut out = vec![];
    match e {
        Encoding::Gzip => {
            // `GzDecoder` reads one member and checks its CRC and length.
            flate2::read::GzDecoder::new(data)
                .read_to_end(&mut out)
                .expect("gzip decodes");
        }
        Encoding::Zstd => out = zstd::stream::decode_all(data).expect("zstd decodes"),
        Encoding::Br => {
            brotli::Decompressor::new(data, 4096)
                .read_to_end(&mut out)
                .expect("brotli decodes");
        }
    }
    out
}

/// A body of text with repetition, the kind that is compressed in practice.
fn html(n: usize) -> Vec<u8> {
    let mut s = String::from("<!doctype html><html><head><title>bext</title></head><body><ul>\n");
    let mut i = 0u64;
    while s.len() < n {
        s.push_str(&format!(
            "<li class=\"item-{}\"><a href=\"/products/{}\">Product {} — {} in stock</a></li>\n",
            i % 7,
            i.wrapping_mul(2654435761) % 100_000,
            i,
            (i * 37) % 1000
        ));
        i += 1;
    }
    s.truncate(n);
    s.into_bytes()
}

fn encode(e: Encoding, level: u32, body: &[u8]) -> Vec<u8> {
    let mut enc = Encoder::new(e, level);
    let mut out = vec![];
    enc.push(body, &mut out).expect("push");
    enc.finish(&mut out).expect("finish");
    out
}

#[test]
fn round_trip_through_reference_decoders() {
    for e in ALL {
        for level in [e.default_level(), *e.levels().start(), *e.levels().end()] {
            for body in [vec![], b"a".to_vec(), html(300), html(200_000)] {
                let z = encode(e, level, &body);
                assert_eq!(
                    decode(e, &z),
                    body,
                    "{e:?} level {level}, {} bytes",
                    body.len()
                );
                if body.len() > 1000 {
                    assert!(z.len() < body.len() / 3, "{e:?} compresses text");
                }
            }
        }
    }
}

#[test]
fn flush_makes_everything_so_far_decodable() {
    // What a client would read from a stalled stream: the bytes up to the flush decode to the
    // input up to it (brotli and zstd decoders stop at the end of the data; gzip's would want
    // the trailer, so read what it yields until then).
    let body = html(50_000);
    for e in ALL {
        let mut enc = Encoder::new(e, e.default_level());
        let mut out = vec![];
        enc.push(&body[..30_000], &mut out).expect("push");
        enc.flush(&mut out).expect("flush");
        let mut got = vec![];
        match e {
            Encoding::Gzip => {
                let mut d = flate2::read::GzDecoder::new(&out[..]);
                let mut buf = [0u8; 4096];
                while let Ok(n) = d.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
            }
            Encoding::Zstd => {
                let mut d = zstd::stream::read::Decoder::new(&out[..]).expect("decoder");
                let mut buf = [0u8; 4096];
                while let Ok(n) = d.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
            }
            Encoding::Br => {
                let mut d = brotli::Decompressor::new(&out[..], 4096);
                let mut buf = [0u8; 4096];
                while let Ok(n) = d.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
            }
        }
        assert_eq!(got, &body[..30_000], "{e:?}");
    }
}

#[test]
fn reset_encoders_write_the_same_bytes_even_after_an_abandoned_stream() {
    let a = html(20_000);
    let b = html(7_000);
    for e in ALL {
        let mut enc = Encoder::new(e, e.default_level());
        let mut out = vec![];
        // Abandoned mid-body (after a flush, or not), then reused: each time the output is
        // what a new encoder writes.
        enc.push(&a, &mut out).expect("push");
        enc.reset();
        enc.push(&a[..5_000], &mut out).expect("push");
        enc.flush(&mut out).expect("flush");
        enc.push(&a[5_000..9_000], &mut out).expect("push");
        enc.reset();
        for body in [&b, &a] {
            out.clear();
            enc.push(body, &mut out).expect("push");
            enc.finish(&mut out).expect("finish");
            assert!(
                decode(e, &out) == *body,
                "{e:?}: a reset encoder's output decodes"
            );
            assert!(
                out == encode(e, e.default_level(), body),
                "{e:?}: a reset encoder is a new one"
            );
            enc.reset();
        }
    }
}

#[test]
fn use_after_finish_is_refused() {
    for e in ALL {
        let mut enc = Encoder::new(e, 1);
        let mut out = vec![];
        enc.finish(&mut out).expect("finish");
        assert!(matches!(
            enc.push(b"x", &mut out),
            Err(EncodeError::Finished)
        ));
        assert!(matches!(enc.flush(&mut out), Err(EncodeError::Finished)));
        assert!(matches!(enc.finish(&mut out), Err(EncodeError::Finished)));
    }
}

#[test]
fn levels_are_clamped() {
    assert_eq!(Encoder::new(Encoding::Gzip, 0).level(), 1);
    assert_eq!(Encoder::new(Encoding::Gzip, 12).level(), 9);
    assert_eq!(Encoder::new(Encoding::Zstd, 22).level(), 19);
    assert_eq!(Encoder::new(Encoding::Br, 99).level(), 11);
}

/// Decodes with the CLI, or `None` when it is not installed.
fn cli_decode(e: Encoding, data: &[u8]) -> Option<Vec<u8>> {
    let (cmd, args): (&str, &[&str]) = match e {
        Encoding::Gzip => ("gzip", &["-dc"]),
        Encoding::Zstd => ("zstd", &["-dcq"]),
        Encoding::Br => ("brotli", &["-dc"]),
    };
    let mut child = match Command::new(cmd)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(_) => {
            println!("note: `{cmd}` is not installed; skipping its check (apt-get install {cmd})");
            return None;
        }
    };
    let mut stdin = child.stdin.take().expect("stdin");
    let data = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().expect("output");
    writer.join().expect("writer").expect("write");
    assert!(out.status.success(), "{cmd} failed");
    Some(out.stdout)
}

#[test]
fn round_trip_through_the_command_line_tools() {
    let body = html(100_000);
    for e in ALL {
        let mut enc = Encoder::new(e, e.default_level());
        let mut out = vec![];
        for piece in body.chunks(7_000) {
            enc.push(piece, &mut out).expect("push");
            enc.flush(&mut out).expect("flush");
        }
        enc.finish(&mut out).expect("finish");
        if let Some(got) = cli_decode(e, &out) {
            assert!(got == body, "{e:?}: the CLI decodes to the body");
        }
    }
}

fn encoding() -> impl Strategy<Value = Encoding> {
    prop_oneof![
        Just(Encoding::Gzip),
        Just(Encoding::Zstd),
        Just(Encoding::Br)
    ]
}

/// Bodies that compress (repeated words) and ones that do not (random bytes).
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..20_000),
        proptest::collection::vec(
            prop_oneof![
                Just(&b"lorem "[..]),
                Just(&b"ipsum\n"[..]),
                Just(&b"<div>"[..])
            ],
            0..4_000
        )
        .prop_map(|w| w.concat()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_bodies_in_random_pieces(
        e in encoding(),
        body in body(),
        cuts in proptest::collection::vec((any::<prop::sample::Index>(), any::<bool>()), 0..12),
        abandon in prop_oneof![Just(0usize), 1..5_000usize],
    ) {
        let mut at: Vec<(usize, bool)> = cuts.iter().map(|(i, f)| (i.index(body.len() + 1), *f)).collect();
        at.sort();
        let mut enc = Encoder::new(e, e.default_level());
        let mut out = vec![];
        if abandon > 0 {
            // A pooled encoder whose previous response was cut short.
            enc.push(&body[..abandon.min(body.len())], &mut out).expect("push");
            enc.reset();
            out.clear();
        }
        let mut from = 0;
        for (to, flush) in at {
            enc.push(&body[from..to], &mut out).expect("push");
            if flush {
                enc.flush(&mut out).expect("flush");
            }
            from = to;
        }
        enc.push(&body[from..], &mut out).expect("push");
        enc.finish(&mut out).expect("finish");
        prop_assert_eq!(decode(e, &out), body);
    }
}
