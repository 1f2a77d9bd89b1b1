//! Chunked decoder: never panics, and decoding the same input in arbitrary pieces gives the
//! same data, the same end and the same error as decoding it in one piece.
//!
//! Input: the first byte seeds the piece sizes, the rest is the chunked body.
#![no_main]

use bext_http1::{Chunk, ChunkError, ChunkedDecoder};
use libfuzzer_sys::fuzz_target;

/// (decoded data, bytes used by the message if it ended, error if any)
type Outcome = (Vec<u8>, Option<usize>, Option<ChunkError>);

fn run(input: &[u8], mut piece: impl FnMut() -> usize) -> Outcome {
    let mut d = ChunkedDecoder::new();
    let mut out = Vec::new();
    let mut consumed = 0;
    let mut available = piece().min(input.len());
    loop {
        match d.decode(&input[consumed..available]) {
            Err(e) => return (out, None, Some(e)),
            Ok((n, chunk)) => {
                assert!(consumed + n <= available);
                match chunk {
                    Chunk::Data(r) => {
                        assert!(
                            !r.is_empty() && r.end == n,
                            "data ends where consumption ends"
                        );
                        out.extend_from_slice(&input[consumed + r.start..consumed + r.end]);
                    }
                    Chunk::Done => {
                        assert!(d.is_done());
                        return (out, Some(consumed + n), None);
                    }
                    Chunk::NeedMore => {
                        assert_eq!(consumed + n, available);
                        if available == input.len() {
                            return (out, None, None);
                        }
                        available = (available + piece()).min(input.len());
                    }
                }
                consumed += n;
            }
        }
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&seed, body)) = input.split_first() else {
        return;
    };
    let whole = run(body, || body.len().max(1));
    let mut state = u32::from(seed) | 0x100;
    let pieces = run(body, || {
        // xorshift: piece sizes 1..=16 decided by the seed byte.
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state % 16 + 1) as usize
    });
    assert_eq!(whole, pieces);
    let bytewise = run(body, || 1);
    assert_eq!(whole, bytewise);
});
