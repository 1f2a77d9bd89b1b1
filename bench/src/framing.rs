//! Response framing for the load generator: finds where each HTTP/1.1 response ends.
//!
//! The generator must know exactly where a response stops to reuse a keep-alive connection and
//! to match pipelined responses to requests. It does not validate responses the way the engine's
//! codec validates requests: it reads the status, `Content-Length`, `Transfer-Encoding: chunked`
//! and `Connection`, and streams body bytes through without keeping them, so a 64 KB (or 1 GB)
//! body costs no memory. Anything it cannot frame is a `BadResponse`, counted as an error.

/// Largest response head accepted before the response is declared malformed.
const MAX_HEAD: usize = 64 * 1024;

/// Why a response could not be framed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FramingError {
    /// The status line is not `HTTP/1.x NNN ...`.
    StatusLine,
    /// A header line has no colon or the head is over [`MAX_HEAD`].
    Header,
    /// `Content-Length` is not a decimal number, or two of them differ.
    ContentLength,
    /// A chunk size line is not hexadecimal or a chunk is not followed by CRLF.
    Chunk,
}

/// A complete response, as the generator records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Whether the server lets the connection carry another request.
    pub keep_alive: bool,
    /// Body bytes (decoded length for chunked bodies).
    pub body_len: u64,
}

/// What one call to [`ResponseParser::feed`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes of the input consumed; the caller drops them and feeds the rest later.
    pub consumed: usize,
    /// Set when a whole response has been consumed.
    pub done: Option<Response>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    Fixed { remaining: u64 },
    ChunkSize,
    ChunkData { remaining: u64 },
    ChunkDataEnd,
    Trailers,
    UntilClose,
}

/// Incremental parser for a sequence of responses on one connection.
#[derive(Debug)]
pub struct ResponseParser {
    state: State,
    status: u16,
    keep_alive: bool,
    body_len: u64,
    /// The request the next response answers was `HEAD`: no body follows the head.
    head_request: bool,
}

impl ResponseParser {
    pub fn new(head_request: bool) -> Self {
        ResponseParser {
            state: State::Head,
            status: 0,
            keep_alive: true,
            body_len: 0,
            head_request,
        }
    }

    /// Whether the parser is in the middle of a response (bytes seen but not finished).
    pub fn in_body(&self) -> bool {
        self.state != State::Head
    }

    /// Called when the server closed the connection. Ends a close-delimited body; any other
    /// unfinished response is an error for the caller to count.
    pub fn eof(&mut self) -> Option<Response> {
        if self.state == State::UntilClose {
            self.state = State::Head;
            Some(Response {
                status: self.status,
                keep_alive: false,
                body_len: self.body_len,
            })
        } else {
            None
        }
    }

    /// Consumes as much of `input` as possible, stopping after one complete response.
    pub fn feed(&mut self, input: &[u8]) -> Result<Progress, FramingError> {
        let mut pos = 0;
        loop {
            let rest = &input[pos..];
            match self.state {
                State::Head => {
                    let Some(end) = find_head_end(rest) else {
                        if rest.len() > MAX_HEAD {
                            return Err(FramingError::Header);
                        }
                        return Ok(Progress {
                            consumed: pos,
                            done: None,
                        });
                    };
                    let head = parse_head(&rest[..end])?;
                    pos += end;
                    // Interim responses (100 Continue) precede the real one; 101 ends HTTP.
                    if (100..200).contains(&head.status) && head.status != 101 {
                        continue;
                    }
                    self.status = head.status;
                    self.keep_alive = head.keep_alive;
                    self.body_len = 0;
                    let no_body = self.head_request
                        || (100..200).contains(&head.status)
                        || head.status == 204
                        || head.status == 304;
                    self.state = if no_body {
                        return Ok(self.finish(pos));
                    } else if head.chunked {
                        State::ChunkSize
                    } else if let Some(n) = head.content_length {
                        if n == 0 {
                            return Ok(self.finish(pos));
                        }
                        State::Fixed { remaining: n }
                    } else {
                        self.keep_alive = false;
                        State::UntilClose
                    };
                }
                State::Fixed { remaining } => {
                    let take = remaining.min(rest.len() as u64);
                    pos += take as usize;
                    self.body_len += take;
                    if take == remaining {
                        return Ok(self.finish(pos));
                    }
                    self.state = State::Fixed {
                        remaining: remaining - take,
                    };
                    return Ok(Progress {
                        consumed: pos,
                        done: None,
                    });
                }
                State::ChunkSize => {
                    let Some(eol) = find_crlf(rest) else {
                        return self.need_more(pos, rest.len());
                    };
                    let size = parse_chunk_size(&rest[..eol])?;
                    pos += eol + 2;
                    self.state = if size == 0 {
                        State::Trailers
                    } else {
                        State::ChunkData { remaining: size }
                    };
                }
                State::ChunkData { remaining } => {
                    let take = remaining.min(rest.len() as u64);
                    pos += take as usize;
                    self.body_len += take;
                    if take < remaining {
                        self.state = State::ChunkData {
                            remaining: remaining - take,
                        };
                        return Ok(Progress {
                            consumed: pos,
                            done: None,
                        });
                    }
                    self.state = State::ChunkDataEnd;
                }
                State::ChunkDataEnd => {
                    if rest.len() < 2 {
                        return Ok(Progress {
                            consumed: pos,
                            done: None,
                        });
                    }
                    if &rest[..2] != b"\r\n" {
                        return Err(FramingError::Chunk);
                    }
                    pos += 2;
                    self.state = State::ChunkSize;
                }
                State::Trailers => {
                    let Some(eol) = find_crlf(rest) else {
                        return self.need_more(pos, rest.len());
                    };
                    pos += eol + 2;
                    if eol == 0 {
                        return Ok(self.finish(pos));
                    }
                }
                State::UntilClose => {
                    self.body_len += rest.len() as u64;
                    return Ok(Progress {
                        consumed: input.len(),
                        done: None,
                    });
                }
            }
        }
    }

    fn need_more(&self, pos: usize, pending: usize) -> Result<Progress, FramingError> {
        if pending > MAX_HEAD {
            return Err(FramingError::Chunk);
        }
        Ok(Progress {
            consumed: pos,
            done: None,
        })
    }

    fn finish(&mut self, pos: usize) -> Progress {
        self.state = State::Head;
        Progress {
            consumed: pos,
            done: Some(Response {
                status: self.status,
                keep_alive: self.keep_alive,
                body_len: self.body_len,
            }),
        }
    }
}

struct Head {
    status: u16,
    keep_alive: bool,
    chunked: bool,
    content_length: Option<u64>,
}

/// Index just past the blank line that ends the head, if the head is complete.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

fn parse_head(head: &[u8]) -> Result<Head, FramingError> {
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let status_line = lines.next().ok_or(FramingError::StatusLine)?;
    let (http10, status) = parse_status_line(status_line)?;
    let mut out = Head {
        status,
        keep_alive: !http10,
        chunked: false,
        content_length: None,
    };
    for line in lines {
        if line.is_empty() {
            continue;
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(FramingError::Header)?;
        let name = &line[..colon];
        let value = trim(&line[colon + 1..]);
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = parse_decimal(value).ok_or(FramingError::ContentLength)?;
            if out.content_length.is_some_and(|m| m != n) {
                return Err(FramingError::ContentLength);
            }
            out.content_length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // Only the last coding decides whether the body is chunked-framed.
            let last = value.rsplit(|&b| b == b',').next().map(trim).unwrap_or(b"");
            out.chunked = last.eq_ignore_ascii_case(b"chunked");
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in value.split(|&b| b == b',').map(trim) {
                if token.eq_ignore_ascii_case(b"close") {
                    out.keep_alive = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && http10 {
                    out.keep_alive = true;
                }
            }
        }
    }
    Ok(out)
}

fn parse_status_line(line: &[u8]) -> Result<(bool, u16), FramingError> {
    let http10 = match line.get(..9) {
        Some(b"HTTP/1.1 ") => false,
        Some(b"HTTP/1.0 ") => true,
        _ => return Err(FramingError::StatusLine),
    };
    let code = line.get(9..12).ok_or(FramingError::StatusLine)?;
    if !code.iter().all(u8::is_ascii_digit) || line.get(12).is_some_and(|&b| b != b' ') {
        return Err(FramingError::StatusLine);
    }
    let status = code
        .iter()
        .fold(0u16, |acc, &d| acc * 10 + u16::from(d - b'0'));
    Ok((http10, status))
}

fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        s.iter()
            .fold(0u64, |acc, &d| acc * 10 + u64::from(d - b'0')),
    )
}

fn parse_chunk_size(line: &[u8]) -> Result<u64, FramingError> {
    // Chunk extensions (";name=value") carry nothing the generator needs.
    let digits = trim(line.split(|&b| b == b';').next().unwrap_or(b""));
    if digits.is_empty() || digits.len() > 15 {
        return Err(FramingError::Chunk);
    }
    digits.iter().try_fold(0u64, |acc, &b| {
        let d = (b as char).to_digit(16).ok_or(FramingError::Chunk)?;
        Ok(acc * 16 + u64::from(d))
    })
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |i| i + 1);
    &s[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces of `step` bytes, as a socket might deliver it, and returns every
    /// response found plus the parser's final error, if any.
    fn parse_all(
        input: &[u8],
        step: usize,
        head_request: bool,
    ) -> (Vec<Response>, Option<FramingError>) {
        let mut parser = ResponseParser::new(head_request);
        let mut pending: Vec<u8> = Vec::new();
        let mut out = Vec::new();
        for piece in input.chunks(step) {
            pending.extend_from_slice(piece);
            loop {
                match parser.feed(&pending) {
                    Ok(p) => {
                        pending.drain(..p.consumed);
                        match p.done {
                            Some(r) => out.push(r),
                            None => break,
                        }
                    }
                    Err(e) => return (out, Some(e)),
                }
            }
        }
        if let Some(r) = parser.eof() {
            out.push(r);
        }
        (out, None)
    }

    fn ok(status: u16, keep_alive: bool, body_len: u64) -> Response {
        Response {
            status,
            keep_alive,
            body_len,
        }
    }

    #[test]
    fn frames_responses_whole_and_byte_by_byte() {
        let cases: &[(&str, &[u8], bool, &[Response])] = &[
            (
                "content-length",
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
                false,
                &[ok(200, true, 5)],
            ),
            (
                "two pipelined",
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiHTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
                false,
                &[ok(200, true, 2), ok(404, true, 0)],
            ),
            (
                "chunked with extension and trailer",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\nA\r\n0123456789\r\n0\r\nTrailer: t\r\n\r\n",
                false,
                &[ok(200, true, 15)],
            ),
            (
                "connection close",
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx",
                false,
                &[ok(200, false, 1)],
            ),
            (
                "http/1.0 keep-alive",
                b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx",
                false,
                &[ok(200, true, 1)],
            ),
            (
                "http/1.0 default close",
                b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx",
                false,
                &[ok(200, false, 1)],
            ),
            (
                "close-delimited body",
                b"HTTP/1.1 200 OK\r\n\r\nuntil the end",
                false,
                &[ok(200, false, 13)],
            ),
            (
                "interim 100 then final",
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
                false,
                &[ok(201, true, 0)],
            ),
            (
                "204 has no body",
                b"HTTP/1.1 204 No Content\r\n\r\n",
                false,
                &[ok(204, true, 0)],
            ),
            (
                "HEAD response ignores content-length",
                b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n",
                true,
                &[ok(200, true, 0)],
            ),
        ];
        for (name, input, head, want) in cases {
            for step in [input.len(), 1, 7] {
                let (got, err) = parse_all(input, step, *head);
                assert_eq!(err, None, "{name} step {step}");
                assert_eq!(&got, want, "{name} step {step}");
            }
        }
    }

    #[test]
    fn rejects_what_cannot_be_framed() {
        let cases: &[(&str, &[u8], FramingError)] = &[
            (
                "not http",
                b"SSH-2.0-OpenSSH\r\n\r\n",
                FramingError::StatusLine,
            ),
            (
                "status not digits",
                b"HTTP/1.1 2x0 OK\r\n\r\n",
                FramingError::StatusLine,
            ),
            (
                "header without colon",
                b"HTTP/1.1 200 OK\r\nbroken\r\n\r\n",
                FramingError::Header,
            ),
            (
                "differing content-length",
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                FramingError::ContentLength,
            ),
            (
                "bad content-length",
                b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
                FramingError::ContentLength,
            ),
            (
                "bad chunk size",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                FramingError::Chunk,
            ),
            (
                "chunk without crlf",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxYZ",
                FramingError::Chunk,
            ),
        ];
        for (name, input, want) in cases {
            let (_, err) = parse_all(input, input.len(), false);
            assert_eq!(err.as_ref(), Some(want), "{name}");
        }
    }

    #[test]
    fn unfinished_response_at_eof_is_not_a_response() {
        let mut parser = ResponseParser::new(false);
        let p = parser
            .feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
            .unwrap();
        assert_eq!(p.done, None);
        assert!(parser.in_body());
        assert_eq!(parser.eof(), None);
    }
}
