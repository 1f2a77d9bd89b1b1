//! Chunked decoder: verdicts on whole bodies, and the same result in any split.

use bext_http1::{write_chunk_header, Chunk, ChunkError, ChunkedDecoder, LAST_CHUNK};
use ChunkError::*;

/// Decode `input` fed in pieces of `step` bytes (the rest is kept and re-offered, as a
/// connection buffer would). Returns the body and how many bytes of `input` the message used.
fn decode_in_steps(input: &[u8], step: usize) -> Result<(Vec<u8>, usize), ChunkError> {
    let mut d = ChunkedDecoder::new();
    let mut out = Vec::new();
    let mut consumed = 0;
    let mut available = step.min(input.len());
    loop {
        let (n, chunk) = d.decode(&input[consumed..available])?;
        match chunk {
            Chunk::Data(r) => out.extend_from_slice(&input[consumed + r.start..consumed + r.end]),
            Chunk::Done => {
                assert!(d.is_done());
                return Ok((out, consumed + n));
            }
            Chunk::NeedMore => {
                assert_eq!(consumed + n, available, "NeedMore consumes everything");
                if available == input.len() {
                    panic!("input ended before the last chunk");
                }
                available = (available + step).min(input.len());
            }
        }
        consumed += n;
    }
}

fn decode(input: &[u8]) -> Result<(Vec<u8>, usize), ChunkError> {
    let whole = decode_in_steps(input, input.len());
    for step in [1, 2, 3, 7] {
        assert_eq!(
            decode_in_steps(input, step),
            whole,
            "split in steps of {step}"
        );
    }
    whole
}

#[test]
fn valid_bodies() {
    let cases: &[(&str, &[u8], &[u8])] = &[
        ("empty", b"0\r\n\r\n", b""),
        ("one chunk", b"5\r\nhello\r\n0\r\n\r\n", b"hello"),
        (
            "two chunks",
            b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
            b"hello world",
        ),
        ("upper hex", b"A\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
        ("leading zeros", b"0005\r\nhello\r\n000\r\n\r\n", b"hello"),
        (
            "sixteen digits",
            b"0000000000000005\r\nhello\r\n0\r\n\r\n",
            b"hello",
        ),
        ("extension", b"5;name\r\nhello\r\n0\r\n\r\n", b"hello"),
        (
            "extension value",
            b"5;name=value;b=c\r\nhello\r\n0;last\r\n\r\n",
            b"hello",
        ),
        (
            "quoted extension",
            b"5;a=\"x y;\\\"z\"\r\nhello\r\n0\r\n\r\n",
            b"hello",
        ),
        (
            "trailer",
            b"5\r\nhello\r\n0\r\nX-Sum: abc\r\nX-B:\r\n\r\n",
            b"hello",
        ),
        (
            "trailer content-length is dropped",
            b"5\r\nhello\r\n0\r\nContent-Length: 50\r\n\r\n",
            b"hello",
        ),
        ("CRLF in data", b"2\r\n\r\n\r\n0\r\n\r\n", b"\r\n"),
    ];
    for &(name, input, body) in cases {
        let mut with_next = input.to_vec();
        with_next.extend_from_slice(b"GET / HTTP/1.1\r\n");
        assert_eq!(
            decode(&with_next),
            Ok((body.to_vec(), input.len())),
            "{name}"
        );
    }
}

#[test]
fn invalid_bodies() {
    let long_ext = format!("5;{}\r\nhello\r\n0\r\n\r\n", "a".repeat(1100));
    let long_trailer = format!("0\r\nX: {}\r\n\r\n", "a".repeat(9000));
    let cases: Vec<(&str, &[u8], ChunkError)> = vec![
        ("hex prefix", b"0x5\r\nhello\r\n0\r\n\r\n", Size),
        ("plus", b"+5\r\nhello\r\n0\r\n\r\n", Size),
        ("minus", b"-1\r\nhello\r\n0\r\n\r\n", Size),
        ("underscore", b"1_0\r\nhello world!!!!!\r\n0\r\n\r\n", Size),
        ("leading space", b" 5\r\nhello\r\n0\r\n\r\n", Size),
        ("trailing space", b"5 \r\nhello\r\n0\r\n\r\n", Size),
        ("tab", b"5\t\r\nhello\r\n0\r\n\r\n", Size),
        (
            "space before semicolon",
            b"5 ;a\r\nhello\r\n0\r\n\r\n",
            Size,
        ),
        ("empty size", b"\r\nhello\r\n0\r\n\r\n", Size),
        (
            "seventeen digits",
            b"00000000000000005\r\nhello\r\n0\r\n\r\n",
            Size,
        ),
        ("overflow", b"10000000000000000\r\n", Size),
        ("bare LF after size", b"5\nhello\r\n0\r\n\r\n", Size),
        ("bare CR after size", b"5\rhello\r\n0\r\n\r\n", Size),
        ("junk after size", b"5g\r\nhello\r\n0\r\n\r\n", Size),
        ("bare semicolon", b"5;\r\nhello\r\n0\r\n\r\n", Extension),
        (
            "invalid extension token",
            b"5;bad[=x\r\nhello\r\n0\r\n\r\n",
            Extension,
        ),
        ("extension with LF", b"5;\nhello\r\n0\r\n\r\n", Extension),
        (
            "extension ended by bare LF",
            b"5;a\nhello\r\n0\r\n\r\n",
            Extension,
        ),
        ("extension bare CR", b"5;a\rhello\r\n0\r\n\r\n", Extension),
        (
            "extension control",
            b"5;a\x01\r\nhello\r\n0\r\n\r\n",
            Extension,
        ),
        (
            "extension empty value",
            b"5;a=\r\nhello\r\n0\r\n\r\n",
            Extension,
        ),
        (
            "extension space",
            b"5;a = b\r\nhello\r\n0\r\n\r\n",
            Extension,
        ),
        (
            "unterminated quote",
            b"5;a=\"x\r\nhello\r\n0\r\n\r\n",
            Extension,
        ),
        (
            "junk after quote",
            b"5;a=\"x\"y\r\nhello\r\n0\r\n\r\n",
            Extension,
        ),
        ("extension too long", long_ext.as_bytes(), Extension),
        (
            "missing CRLF after data",
            b"5\r\nhello0\r\n\r\n",
            DataTerminator,
        ),
        (
            "data longer than size",
            b"5\r\nhello!!\r\n0\r\n\r\n",
            DataTerminator,
        ),
        ("LF after data", b"5\r\nhello\n0\r\n\r\n", DataTerminator),
        ("CR after data", b"5\r\nhello\r0\r\n\r\n", DataTerminator),
        ("bare LF ending trailers", b"5\r\nhello\r\n0\r\n\n", Trailer),
        ("bare CR ending trailers", b"0\r\n\rX", Trailer),
        ("trailer without colon", b"0\r\nX\r\n\r\n", Trailer),
        ("trailer space before colon", b"0\r\nX : a\r\n\r\n", Trailer),
        ("trailer obs-fold", b"0\r\nX: a\r\n b\r\n\r\n", Trailer),
        ("trailer NUL", b"0\r\nX: a\0\r\n\r\n", Trailer),
        ("trailer bare LF", b"0\r\nX: a\n\r\n", Trailer),
        ("trailer too long", long_trailer.as_bytes(), Trailer),
    ];
    for (name, input, error) in cases {
        for step in [1, 3, input.len()] {
            let got = std::panic::catch_unwind(|| decode_in_steps(input, step));
            assert_eq!(got.ok(), Some(Err(error)), "{name} in steps of {step}");
        }
    }
}

#[test]
fn decoder_stays_failed_and_done() {
    let mut d = ChunkedDecoder::new();
    assert_eq!(d.decode(b"x"), Err(Size));
    assert_eq!(d.decode(b"5\r\n"), Err(Size));
    let mut d = ChunkedDecoder::new();
    assert_eq!(d.decode(b"0\r\n\r\nrest"), Ok((5, Chunk::Done)));
    assert_eq!(d.decode(b"rest"), Ok((0, Chunk::Done)));
    assert_eq!(d.decode(b""), Ok((0, Chunk::Done)));
}

#[test]
fn data_is_reported_in_place() {
    let mut d = ChunkedDecoder::new();
    let input = b"3\r\nabc\r\n2\r\nde";
    assert_eq!(d.decode(input), Ok((6, Chunk::Data(3..6))));
    assert_eq!(d.decode(&input[6..]), Ok((7, Chunk::Data(5..7))));
    assert_eq!(d.remaining_in_chunk(), 0);
    assert_eq!(d.decode(&input[13..]), Ok((0, Chunk::NeedMore)));
    let mut d = ChunkedDecoder::new();
    assert_eq!(d.decode(b"a\r\nabc"), Ok((6, Chunk::Data(3..6))));
    assert_eq!(d.remaining_in_chunk(), 7);
}

#[test]
fn writer_round_trips_through_the_decoder() {
    let cases: &[(usize, &str)] = &[
        (0, "0\r\n"),
        (1, "1\r\n"),
        (15, "f\r\n"),
        (16, "10\r\n"),
        (4096, "1000\r\n"),
        (usize::MAX, "ffffffffffffffff\r\n"),
    ];
    for &(len, expected) in cases {
        let mut out = Vec::new();
        write_chunk_header(&mut out, len);
        assert_eq!(out, expected.as_bytes());
    }
    let mut body = Vec::new();
    for piece in [&b"hello"[..], b" ", b"world"] {
        write_chunk_header(&mut body, piece.len());
        body.extend_from_slice(piece);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(LAST_CHUNK);
    assert_eq!(decode(&body), Ok((b"hello world".to_vec(), body.len())));
}
