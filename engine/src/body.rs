//! Streaming message bodies with bounded memory.
//!
//! A [`BodyReader`] pulls a body piece by piece from a connection: first the bytes already in
//! the connection buffer (read together with the head), then from the socket. Content-Length
//! bodies are read straight into the transfer buffer, never past their end, so pipelined
//! requests stay in the connection buffer. Chunked bodies are decoded in the connection buffer
//! (consumed bytes are dropped as they go, so the buffer never holds more than one read) and
//! may be re-encoded as chunked on the way out: what leaves bext is always one canonical framing.

use crate::io::{read_more, read_upto, IoFail, Limit};
use bext_http1::{write_body_piece, Chunk, ChunkedDecoder, Framing};
use monoio::io::AsyncReadRent;

/// Largest piece moved in one step.
pub const XFER: usize = 32 * 1024;

#[derive(Debug)]
pub enum BodyErr {
    /// The peer closed before the end of the body.
    Closed,
    Timeout,
    Io(std::io::Error),
    /// Invalid chunked framing.
    Framing,
    /// The body exceeds the configured limit.
    TooLarge,
}

impl From<IoFail> for BodyErr {
    fn from(e: IoFail) -> Self {
        match e {
            IoFail::Closed => BodyErr::Closed,
            IoFail::Timeout => BodyErr::Timeout,
            IoFail::Io(e) => BodyErr::Io(e),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Empty,
    Length,
    Chunked,
    UntilClose,
}

#[derive(Debug)]
pub struct BodyReader {
    kind: Kind,
    remaining: u64,
    total: u64,
    limit: u64,
    decoder: ChunkedDecoder,
    done: bool,
}

impl BodyReader {
    /// `limit` bounds the decoded size (Content-Length bodies are checked before reading).
    pub fn new(framing: Framing, limit: u64) -> BodyReader {
        let (kind, remaining) = match framing {
            Framing::None => (Kind::Empty, 0),
            Framing::ContentLength(0) => (Kind::Empty, 0),
            Framing::ContentLength(n) => (Kind::Length, n),
            Framing::Chunked => (Kind::Chunked, 0),
            Framing::CloseDelimited => (Kind::UntilClose, 0),
        };
        BodyReader {
            kind,
            remaining,
            total: 0,
            limit,
            decoder: ChunkedDecoder::new(),
            done: kind == Kind::Empty,
        }
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The whole body has been delivered: ended, or a Content-Length body whose last byte
    /// was delivered (the next [`BodyReader::pull`] then reads nothing and ends it).
    pub fn at_end(&self) -> bool {
        self.done || (self.kind == Kind::Length && self.remaining == 0)
    }

    /// Body bytes delivered so far.
    pub fn total(&self) -> u64 {
        self.total
    }

    fn emit(&mut self, out: &mut Vec<u8>, data: &[u8], chunked_out: bool) -> Result<(), BodyErr> {
        self.total += data.len() as u64;
        if self.total > self.limit {
            return Err(BodyErr::TooLarge);
        }
        write_body_piece(out, data, chunked_out);
        Ok(())
    }

    /// Append the next piece of the body to `out`: `Ok(true)` when bytes were appended,
    /// `Ok(false)` at the end of the body. `buf[*pos..]` are unconsumed connection bytes;
    /// `buf[..*pos]` may be discarded at any time, so the caller must not need the head anymore.
    /// With `chunked_out`, pieces are written in chunked framing (the last chunk is the
    /// caller's to write).
    pub async fn pull<R: AsyncReadRent>(
        &mut self,
        rd: &mut R,
        buf: &mut Vec<u8>,
        pos: &mut usize,
        out: &mut Vec<u8>,
        chunked_out: bool,
        limit: Limit<'_>,
    ) -> Result<bool, BodyErr> {
        if self.done {
            return Ok(false);
        }
        match self.kind {
            Kind::Empty => {
                self.done = true;
                Ok(false)
            }
            Kind::Length => {
                if self.remaining == 0 {
                    self.done = true;
                    return Ok(false);
                }
                let avail = buf.len() - *pos;
                if avail > 0 {
                    let n = avail.min(self.remaining.min(XFER as u64) as usize);
                    let start = *pos;
                    *pos += n;
                    self.remaining -= n as u64;
                    self.emit(out, &buf[start..start + n], chunked_out)?;
                    return Ok(true);
                }
                let want = self.remaining.min(XFER as u64) as usize;
                if chunked_out {
                    buf.clear();
                    *pos = 0;
                    let n = read_upto(rd, buf, want, limit).await?;
                    self.remaining -= n as u64;
                    *pos = n;
                    self.emit(out, &buf[..n], true)?;
                    buf.clear();
                    *pos = 0;
                } else {
                    let n = read_upto(rd, out, want, limit).await?;
                    self.remaining -= n as u64;
                    self.total += n as u64;
                }
                Ok(true)
            }
            Kind::UntilClose => {
                let avail = buf.len() - *pos;
                if avail > 0 {
                    let start = *pos;
                    *pos = buf.len();
                    self.emit(out, &buf[start..], chunked_out)?;
                    return Ok(true);
                }
                buf.clear();
                *pos = 0;
                match read_more(rd, buf, XFER, limit).await {
                    Ok(_) => {
                        *pos = buf.len();
                        let data = std::mem::take(buf);
                        let r = self.emit(out, &data, chunked_out);
                        *buf = data;
                        buf.clear();
                        *pos = 0;
                        r.map(|()| true)
                    }
                    Err(IoFail::Closed) => {
                        self.done = true;
                        Ok(false)
                    }
                    Err(e) => Err(e.into()),
                }
            }
            Kind::Chunked => loop {
                if *pos < buf.len() {
                    let (consumed, chunk) = self
                        .decoder
                        .decode(&buf[*pos..])
                        .map_err(|_| BodyErr::Framing)?;
                    let base = *pos;
                    *pos += consumed;
                    // Refuse a chunk as soon as its declared size is known to overrun the
                    // limit, instead of reading (or waiting for) data that will be refused.
                    if overruns(self.total, &chunk, &self.decoder, self.limit) {
                        return Err(BodyErr::TooLarge);
                    }
                    match chunk {
                        Chunk::Data(r) if !r.is_empty() => {
                            let (s, e) = (base + r.start, base + r.end);
                            let data = std::mem::take(buf);
                            let res = self.emit(out, &data[s..e], chunked_out);
                            *buf = data;
                            res?;
                            return Ok(true);
                        }
                        Chunk::Data(_) | Chunk::NeedMore => {}
                        Chunk::Done => {
                            self.done = true;
                            return Ok(false);
                        }
                    }
                    if *pos < buf.len() {
                        continue;
                    }
                }
                // Everything buffered was consumed: drop it and read more.
                buf.drain(..*pos);
                *pos = 0;
                read_more(rd, buf, 8 * 1024, limit).await?;
            },
        }
    }
}

/// Whether the piece `decoder` just returned takes a chunked body past `limit`: `total`
/// bytes before it, its data, and what its chunk's declared size still owes.
fn overruns(total: u64, chunk: &Chunk, decoder: &ChunkedDecoder, limit: u64) -> bool {
    let here = match chunk {
        Chunk::Data(r) => r.len() as u64,
        _ => 0,
    };
    total.saturating_add(here.saturating_add(decoder.remaining_in_chunk())) > limit
}

/// Run the chunked decoder over the part of a request body that is already buffered, without
/// consuming it, under the same rules as [`BodyReader::pull`]: a framing error or a declared
/// size over `limit` is known before the upstream is contacted.
pub fn check_chunked_prefix(data: &[u8], limit: u64) -> Result<(), BodyErr> {
    let mut d = ChunkedDecoder::new();
    let mut pos = 0;
    let mut total: u64 = 0;
    while pos < data.len() {
        let (consumed, chunk) = d.decode(&data[pos..]).map_err(|_| BodyErr::Framing)?;
        pos += consumed;
        if overruns(total, &chunk, &d, limit) {
            return Err(BodyErr::TooLarge);
        }
        match chunk {
            Chunk::Data(r) if consumed > 0 => total = total.saturating_add(r.len() as u64),
            Chunk::Data(_) | Chunk::Done | Chunk::NeedMore => return Ok(()),
        }
    }
    Ok(())
}
