//! Incremental decoder for the chunked transfer coding (RFC 9112 §7.1), and the writer side.
//!
//! The decoder is a byte-level state machine: it keeps no input, so a message can arrive in
//! pieces of any size (one byte at a time included) and decode to the same data. Data is never
//! copied: [`Chunk::Data`] is a range of the caller's input. Choices, all strict:
//! - chunk-size is 1 to 16 HEXDIG (leading zeros count), nothing else: no `0x`, sign, `_` or
//!   whitespace, not even the BWS that RFC 9112 §7.1.1 tolerates before `;`.
//! - Every line ends in CRLF; a bare LF or bare CR anywhere is an error.
//! - Extensions are checked against `*( ";" token [ "=" ( token / quoted-string ) ] )` and
//!   capped at [`MAX_CHUNK_EXT_LEN`] bytes per chunk line, then ignored (RFC 9112 §7.1.1: a
//!   recipient MUST ignore extensions it does not understand).
//! - The trailer section is parsed as field lines, capped at [`MAX_TRAILER_LEN`] bytes, and
//!   dropped: trailers are never merged into the header section, and bext does not forward them
//!   (RFC 9110 §6.5.1 lets a recipient discard them).

use crate::chars::{self, HEX, QDTEXT, VALUE};
use crate::{Chunk, ChunkError};

/// Longest chunk extension accepted on one chunk line, from `;` to before CRLF.
pub const MAX_CHUNK_EXT_LEN: u32 = 1024;
/// Longest trailer section accepted (field lines with their CRLFs, without the final CRLF).
pub const MAX_TRAILER_LEN: u32 = 8 * 1024;
/// Most hex digits in a chunk size: 16 is all of a u64.
const MAX_SIZE_DIGITS: u8 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    /// Before the first hex digit of a chunk size.
    #[default]
    SizeStart,
    /// In the hex digits.
    Size,
    /// After `;`: an extension name must start.
    ExtNameStart,
    ExtName,
    /// After `=`: a token or a quoted string must start.
    ExtValueStart,
    ExtToken,
    ExtQuoted,
    ExtQuotedEscape,
    /// After the closing quote: `;` or CR.
    ExtAfterQuoted,
    /// CR seen at the end of a chunk line.
    SizeLf,
    Data,
    DataCr,
    DataLf,
    TrailerLineStart,
    TrailerName,
    TrailerValue,
    TrailerLineLf,
    TrailerEndLf,
    Done,
    Failed(ChunkError),
}

/// Incremental decoder for `Transfer-Encoding: chunked` (RFC 9112 §7.1).
#[derive(Debug, Clone, Default)]
pub struct ChunkedDecoder {
    state: State,
    /// Size being read, then bytes of data left in the current chunk.
    size: u64,
    digits: u8,
    ext_len: u32,
    trailer_len: u32,
}

impl ChunkedDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// True once `Chunk::Done` was returned.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Bytes of chunk data still expected in the current chunk (0 between chunks).
    pub fn remaining_in_chunk(&self) -> u64 {
        if self.state == State::Data {
            self.size
        } else {
            0
        }
    }

    /// Decode from `input`. Returns how many bytes of `input` were consumed and what they were.
    /// Call again with the unconsumed rest (plus newly read bytes) until `Chunk::Done`.
    ///
    /// Bytes after the end of the message are left unconsumed (they belong to the next message).
    /// After an error the decoder keeps returning it.
    pub fn decode(&mut self, input: &[u8]) -> Result<(usize, Chunk), ChunkError> {
        let mut pos = 0;
        loop {
            match self.state {
                State::Done => return Ok((pos, Chunk::Done)),
                State::Failed(e) => return Err(e),
                State::Data => {
                    let available = input.len() - pos;
                    if available == 0 {
                        return Ok((pos, Chunk::NeedMore));
                    }
                    let n = usize::try_from(self.size)
                        .unwrap_or(usize::MAX)
                        .min(available);
                    self.size -= n as u64;
                    if self.size == 0 {
                        self.state = State::DataCr;
                    }
                    return Ok((pos + n, Chunk::Data(pos..pos + n)));
                }
                _ => {}
            }
            let Some(&b) = input.get(pos) else {
                return Ok((pos, Chunk::NeedMore));
            };
            if let Err(e) = self.step(b) {
                self.state = State::Failed(e);
                return Err(e);
            }
            pos += 1;
        }
    }

    /// Advance over one framing byte (any state but Data, Done, Failed).
    #[inline]
    fn step(&mut self, b: u8) -> Result<(), ChunkError> {
        use State::*;
        self.state = match self.state {
            SizeStart => {
                if !chars::is(b, HEX) {
                    return Err(ChunkError::Size);
                }
                self.size = u64::from(hex_value(b));
                self.digits = 1;
                self.ext_len = 0;
                Size
            }
            Size => match b {
                _ if chars::is(b, HEX) => {
                    if self.digits == MAX_SIZE_DIGITS {
                        return Err(ChunkError::Size);
                    }
                    self.digits += 1;
                    self.size = (self.size << 4) | u64::from(hex_value(b));
                    Size
                }
                b';' => ExtNameStart,
                b'\r' => SizeLf,
                _ => return Err(ChunkError::Size),
            },
            SizeLf => {
                if b != b'\n' {
                    return Err(if self.ext_len > 0 {
                        ChunkError::Extension
                    } else {
                        ChunkError::Size
                    });
                }
                if self.size == 0 {
                    TrailerLineStart
                } else {
                    Data
                }
            }
            DataCr if b == b'\r' => DataLf,
            DataLf if b == b'\n' => SizeStart,
            DataCr | DataLf => return Err(ChunkError::DataTerminator),
            TrailerLineStart => match b {
                b'\r' => TrailerEndLf,
                _ if chars::is_tchar(b) => {
                    self.count_trailer()?;
                    TrailerName
                }
                _ => return Err(ChunkError::Trailer),
            },
            TrailerName => {
                self.count_trailer()?;
                match b {
                    b':' => TrailerValue,
                    _ if chars::is_tchar(b) => TrailerName,
                    _ => return Err(ChunkError::Trailer),
                }
            }
            TrailerValue => {
                self.count_trailer()?;
                match b {
                    b'\r' => TrailerLineLf,
                    _ if chars::is(b, VALUE) => TrailerValue,
                    _ => return Err(ChunkError::Trailer),
                }
            }
            TrailerLineLf => {
                self.count_trailer()?;
                if b != b'\n' {
                    return Err(ChunkError::Trailer);
                }
                TrailerLineStart
            }
            TrailerEndLf => {
                if b != b'\n' {
                    return Err(ChunkError::Trailer);
                }
                Done
            }
            ext => {
                self.ext_len += 1;
                if self.ext_len > MAX_CHUNK_EXT_LEN {
                    return Err(ChunkError::Extension);
                }
                self.step_ext(ext, b)?
            }
        };
        Ok(())
    }

    /// One byte of `chunk-ext` (the `;` that opened it was counted as the first byte).
    #[inline]
    fn step_ext(&mut self, state: State, b: u8) -> Result<State, ChunkError> {
        use State::*;
        let tchar = chars::is_tchar(b);
        Ok(match (state, b) {
            (ExtNameStart, _) if tchar => ExtName,
            (ExtName, _) if tchar => ExtName,
            (ExtName, b'=') => ExtValueStart,
            (ExtName | ExtToken | ExtAfterQuoted, b';') => ExtNameStart,
            (ExtName | ExtToken | ExtAfterQuoted, b'\r') => SizeLf,
            (ExtValueStart, b'"') => ExtQuoted,
            (ExtValueStart | ExtToken, _) if tchar => ExtToken,
            (ExtQuoted, b'"') => ExtAfterQuoted,
            (ExtQuoted, b'\\') => ExtQuotedEscape,
            (ExtQuoted, _) if chars::is(b, QDTEXT) => ExtQuoted,
            // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
            (ExtQuotedEscape, _) if chars::is(b, VALUE) => ExtQuoted,
            _ => return Err(ChunkError::Extension),
        })
    }

    #[inline]
    fn count_trailer(&mut self) -> Result<(), ChunkError> {
        self.trailer_len += 1;
        if self.trailer_len > MAX_TRAILER_LEN {
            return Err(ChunkError::Trailer);
        }
        Ok(())
    }
}

#[inline]
fn hex_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}

/// Append a piece of body to `out`: as one chunk (size line, bytes, CRLF) when `chunked`,
/// as it is otherwise. An empty piece adds nothing (an empty chunk would end the body).
pub fn write_body_piece(out: &mut Vec<u8>, data: &[u8], chunked: bool) {
    if data.is_empty() {
        return;
    }
    if chunked {
        write_chunk_header(out, data.len());
    }
    out.extend_from_slice(data);
    if chunked {
        out.extend_from_slice(b"\r\n");
    }
}

/// Append a chunk-size line for `len` bytes of data (`{hex}\r\n`), lowercase, no leading zeros.
pub fn write_chunk_header(out: &mut Vec<u8>, len: usize) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut tmp = [0u8; 16];
    let mut i = tmp.len();
    let mut n = len as u64;
    loop {
        i -= 1;
        tmp[i] = DIGITS[(n & 0xf) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
    out.extend_from_slice(b"\r\n");
}
