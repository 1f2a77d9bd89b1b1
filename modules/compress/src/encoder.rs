//! Streaming encoders: gzip (deflate from zlib-rs, through flate2), zstd (libzstd) and
//! brotli (a pure-Rust port), behind one type with static dispatch.
//!
//! zlib-rs rather than miniz_oxide for deflate: at level 1 on 64 KiB of HTML or JSON it runs
//! about twice as fast (`benches/encode.rs`, `deflate-backend`), for output about 15% larger —
//! level 1 is the level chosen for speed, and a route that wants size offers zstd or brotli
//! first or raises the gzip level.
//!
//! Each call appends to the caller's `Vec` whatever compressed output is ready and keeps only
//! the codec's own window: a body is never held whole. Output grows the `Vec` in steps of
//! [`STEP`] bytes at most per round, so a caller that drains it between calls keeps it at
//! about that size.

use std::fmt;

use bext_ir::Encoding;
use brotli::enc::encode::{
    BrotliEncoderOperation, BrotliEncoderParameter, BrotliEncoderStateStruct,
};
use brotli::enc::StandardAlloc;
use flate2::{Compress, Compression, Crc, FlushCompress, Status};
use zstd::stream::raw::{InBuffer, Operation, OutBuffer};

/// How much room each round of a codec is given in the output.
const STEP: usize = 16 << 10;

/// brotli's window: 512 KiB, ngx_brotli's default (`brotli_window 512k`). The library's 4 MiB
/// costs a new state about 10 MB of tables and ring buffer against about 2.6 MB here, allocated
/// and zeroed again for every response (the state cannot be rewound), for a gain only on
/// bodies of megabytes.
const BROTLI_LGWIN: u32 = 19;

/// A streaming compressor for one response at a time; [`Encoder::reset`] readies it for the
/// next one.
pub struct Encoder {
    codec: Codec,
    level: u32,
    finished: bool,
}

enum Codec {
    Gzip(Gzip),
    Zstd(zstd::stream::raw::Encoder<'static>),
    Brotli(Box<BrotliEncoderStateStruct<StandardAlloc>>),
}

/// An encoder failed, or was used after [`Encoder::finish`] without a reset.
#[derive(Debug)]
pub enum EncodeError {
    /// `push`, `flush` or `finish` after `finish`.
    Finished,
    /// The codec refused (out of memory, or an internal error).
    Codec {
        /// Which codec.
        encoding: Encoding,
        /// What it said.
        message: String,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::Finished => f.write_str("the encoder was used after finish"),
            EncodeError::Codec { encoding, message } => {
                write!(f, "{} encoder failed: {message}", encoding.token())
            }
        }
    }
}

impl std::error::Error for EncodeError {}

fn codec_error(encoding: Encoding, message: impl fmt::Display) -> EncodeError {
    EncodeError::Codec {
        encoding,
        message: message.to_string(),
    }
}

impl Encoder {
    /// An encoder for `encoding` at `level`, clamped to [`Encoding::levels`].
    pub fn new(encoding: Encoding, level: u32) -> Encoder {
        let range = encoding.levels();
        let level = level.clamp(*range.start(), *range.end());
        let codec = match encoding {
            Encoding::Gzip => Codec::Gzip(Gzip::new(level)),
            Encoding::Zstd => Codec::Zstd(zstd_encoder(level)),
            Encoding::Br => Codec::Brotli(brotli_state(level)),
        };
        Encoder {
            codec,
            level,
            finished: false,
        }
    }

    /// The encoding this encoder writes.
    pub fn encoding(&self) -> Encoding {
        match self.codec {
            Codec::Gzip(_) => Encoding::Gzip,
            Codec::Zstd(_) => Encoding::Zstd,
            Codec::Brotli(_) => Encoding::Br,
        }
    }

    /// Its level (after clamping).
    pub fn level(&self) -> u32 {
        self.level
    }

    /// Compresses `input`, appending to `out` what output is ready (possibly nothing: the
    /// codecs gather a block before they emit it).
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if self.finished {
            return Err(EncodeError::Finished);
        }
        match &mut self.codec {
            Codec::Gzip(g) => g.run(input, out, FlushCompress::None),
            Codec::Zstd(z) => zstd_run(z, input, out),
            Codec::Brotli(b) => brotli_run(
                b,
                BrotliEncoderOperation::BROTLI_OPERATION_PROCESS,
                input,
                out,
            ),
        }
    }

    /// Appends everything pushed so far in decodable form, so a client sees the bytes of a
    /// body whose upstream paused. Costs some ratio: call it when the source stalls, not per
    /// piece.
    pub fn flush(&mut self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if self.finished {
            return Err(EncodeError::Finished);
        }
        match &mut self.codec {
            Codec::Gzip(g) => g.run(&[], out, FlushCompress::Sync),
            Codec::Zstd(z) => zstd_drain(z, out, |z, o| z.flush(o)),
            Codec::Brotli(b) => {
                brotli_run(b, BrotliEncoderOperation::BROTLI_OPERATION_FLUSH, &[], out)
            }
        }
    }

    /// Ends the stream, appending the rest of the output and the format's trailer. The encoder
    /// then refuses input until [`Encoder::reset`].
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if self.finished {
            return Err(EncodeError::Finished);
        }
        self.finished = true;
        match &mut self.codec {
            Codec::Gzip(g) => g.run(&[], out, FlushCompress::Finish),
            Codec::Zstd(z) => zstd_drain(z, out, |z, o| z.finish(o, true)),
            Codec::Brotli(b) => {
                brotli_run(b, BrotliEncoderOperation::BROTLI_OPERATION_FINISH, &[], out)
            }
        }
    }

    /// Readies the encoder for a new stream at the same level, whatever state it was left in
    /// (finished, or abandoned mid-body). gzip and zstd keep their tables and allocate nothing;
    /// brotli builds a new state, which allocates its tables again on the first input.
    pub fn reset(&mut self) {
        self.finished = false;
        match &mut self.codec {
            Codec::Gzip(g) => g.reset(),
            Codec::Zstd(z) => {
                if z.reinit().is_err() {
                    *z = zstd_encoder(self.level);
                }
            }
            Codec::Brotli(b) => *b = brotli_state(self.level),
        }
    }
}

impl fmt::Debug for Encoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Encoder")
            .field("encoding", &self.encoding())
            .field("level", &self.level)
            .field("finished", &self.finished)
            .finish()
    }
}

/// Room for at least `min` more bytes in `out`, growing by [`STEP`].
fn room(out: &mut Vec<u8>, min: usize) {
    if out.capacity() - out.len() < min {
        out.reserve(STEP);
    }
}

// ---------------------------------------------------------------- gzip

/// A gzip member (RFC 1952): a fixed header, raw deflate, CRC-32 and length.
struct Gzip {
    deflate: Compress,
    crc: Crc,
    header_written: bool,
    /// The stream was finished: a reset may reuse the tables.
    ended: bool,
    level: u32,
}

impl Gzip {
    fn new(level: u32) -> Gzip {
        Gzip {
            deflate: Compress::new(Compression::new(level), false),
            crc: Crc::new(),
            header_written: false,
            ended: false,
            level,
        }
    }

    fn reset(&mut self) {
        if self.deflate.total_in() == 0 || self.ended {
            self.deflate.reset();
        } else {
            // zlib-rs 0.6 at level 1 writes a corrupt stream after a reset that lands
            // mid-stream (its quick strategy keeps state that `deflateReset` does not clear),
            // so a stream abandoned before its end gets fresh tables. Only aborted responses
            // pay for it.
            self.deflate = Compress::new(Compression::new(self.level), false);
        }
        self.crc.reset();
        self.header_written = false;
        self.ended = false;
    }

    fn run(
        &mut self,
        mut input: &[u8],
        out: &mut Vec<u8>,
        flush: FlushCompress,
    ) -> Result<(), EncodeError> {
        if !self.header_written {
            // No name, no time (a time would make equal bodies differ), XFL says the
            // fastest or the best level, OS "unknown".
            let xfl = match self.level {
                1 => 4,
                9 => 2,
                _ => 0,
            };
            out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255]);
            self.header_written = true;
        }
        self.crc.update(input);
        loop {
            room(out, 64);
            let before = self.deflate.total_in();
            let status = self
                .deflate
                .compress_vec(input, out, flush)
                .map_err(|e| codec_error(Encoding::Gzip, e))?;
            // The difference is at most `input.len()`, which is a usize.
            let used = (self.deflate.total_in() - before) as usize;
            input = &input[used..];
            let drained = out.len() < out.capacity();
            let done = match flush {
                FlushCompress::None => input.is_empty(),
                FlushCompress::Finish => status == Status::StreamEnd,
                _ => input.is_empty() && drained,
            };
            if done {
                break;
            }
        }
        if matches!(flush, FlushCompress::Finish) {
            self.ended = true;
            out.extend_from_slice(&self.crc.sum().to_le_bytes());
            out.extend_from_slice(&self.crc.amount().to_le_bytes());
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- zstd

fn zstd_encoder(level: u32) -> zstd::stream::raw::Encoder<'static> {
    // Levels are clamped to 1..=19 by the caller, which libzstd accepts; creating a context
    // fails only when memory is exhausted, where the process aborts anyway.
    #[allow(clippy::expect_used)]
    zstd::stream::raw::Encoder::new(level as i32).expect("a zstd context at a valid level")
}

fn zstd_run(
    z: &mut zstd::stream::raw::Encoder<'static>,
    input: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let mut src = InBuffer::around(input);
    while src.pos() < input.len() {
        room(out, 64);
        let len = out.len();
        let mut dst = OutBuffer::around_pos(out, len);
        z.run(&mut src, &mut dst)
            .map_err(|e| codec_error(Encoding::Zstd, e))?;
    }
    Ok(())
}

/// Calls `step` (flush or finish) until libzstd says nothing is left to write.
fn zstd_drain(
    z: &mut zstd::stream::raw::Encoder<'static>,
    out: &mut Vec<u8>,
    step: impl Fn(
        &mut zstd::stream::raw::Encoder<'static>,
        &mut OutBuffer<'_, Vec<u8>>,
    ) -> std::io::Result<usize>,
) -> Result<(), EncodeError> {
    loop {
        room(out, 64);
        let len = out.len();
        let mut dst = OutBuffer::around_pos(out, len);
        let left = step(z, &mut dst).map_err(|e| codec_error(Encoding::Zstd, e))?;
        if left == 0 {
            return Ok(());
        }
    }
}

// ---------------------------------------------------------------- brotli

fn brotli_state(level: u32) -> Box<BrotliEncoderStateStruct<StandardAlloc>> {
    let mut s = Box::new(BrotliEncoderStateStruct::new(StandardAlloc::default()));
    s.set_parameter(BrotliEncoderParameter::BROTLI_PARAM_QUALITY, level);
    s.set_parameter(BrotliEncoderParameter::BROTLI_PARAM_LGWIN, BROTLI_LGWIN);
    s
}

fn brotli_run(
    s: &mut BrotliEncoderStateStruct<StandardAlloc>,
    op: BrotliEncoderOperation,
    input: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let mut avail_in = input.len();
    let mut in_at = 0;
    let mut nop =
        |_: &mut brotli::enc::interface::PredictionModeContextMap<brotli::InputReferenceMut>,
         _: &mut [brotli::enc::interface::StaticCommand],
         _: brotli::InputPair,
         _: &mut StandardAlloc| ();
    loop {
        // brotli writes into a slice: give it zeroed room and cut back to what it wrote.
        let start = out.len();
        out.resize(start + STEP, 0);
        let mut avail_out = STEP;
        let mut out_at = start;
        let ok = s.compress_stream(
            op,
            &mut avail_in,
            input,
            &mut in_at,
            &mut avail_out,
            out,
            &mut out_at,
            &mut None,
            &mut nop,
        );
        out.truncate(out_at);
        if !ok {
            return Err(codec_error(Encoding::Br, "the stream was refused"));
        }
        let done = match op {
            BrotliEncoderOperation::BROTLI_OPERATION_FINISH => s.is_finished(),
            _ => avail_in == 0 && !s.has_more_output(),
        };
        if done {
            return Ok(());
        }
    }
}
