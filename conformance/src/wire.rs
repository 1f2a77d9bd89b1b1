//! A small, strict HTTP/1.1 message reader, independent of `bext-http1`.
//!
//! The suite must not judge bext with bext's own parser. This reader is deliberately simple and
//! strict: CRLF line endings only, token field names, no whitespace before the colon, no control
//! bytes in values, exactly one well-formed framing (`Content-Length` or `Transfer-Encoding:
//! chunked`, never both, never repeated). The recording origin uses it to check that what bext
//! forwards has exactly one reading; the client side uses it to read bext's responses.

/// A parsed message (request or response).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The start line without its CRLF.
    pub start_line: String,
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body after de-chunking.
    pub body: Vec<u8>,
    /// The trailer section of a chunked body.
    pub trailers: Vec<(String, Vec<u8>)>,
    pub framing: Framing,
    /// Bytes the message took in the stream.
    pub len: usize,
    /// The stream ended before the body did (only for [`read_response`] at end of input).
    pub truncated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    None,
    ContentLength(u64),
    Chunked,
    /// Responses only: the body runs to the end of the connection.
    UntilClose,
}

impl Message {
    /// All values of a field (name compared case-insensitively).
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    pub fn count(&self, name: &str) -> usize {
        self.all(name).count()
    }

    /// The response status code (responses only).
    pub fn status(&self) -> Option<u16> {
        let mut parts = self.start_line.splitn(3, ' ');
        let _version = parts.next()?;
        parts.next()?.parse().ok()
    }

    /// The request method (requests only).
    pub fn method(&self) -> &str {
        self.start_line.split(' ').next().unwrap_or("")
    }

    /// The request target (requests only).
    pub fn target(&self) -> &str {
        self.start_line.split(' ').nth(1).unwrap_or("")
    }
}

/// Outcome of reading from a buffer that may hold a partial message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// Need more bytes.
    Partial,
    Done(Message),
}

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|p| p + from)
}

/// Parse a head; `Ok(None)` when incomplete. Returns (start line, fields, head length).
type Head = (String, Vec<(String, Vec<u8>)>, usize);

fn parse_head(buf: &[u8]) -> Result<Option<Head>, String> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        if let Some(p) = buf.iter().position(|&c| c == b'\n') {
            if p == 0 || buf[p - 1] != b'\r' {
                return Err(format!("bare LF at {p}"));
            }
        }
        return Ok(None);
    };
    let head = &buf[..end + 2];
    let mut lines = Vec::new();
    let mut pos = 0;
    while pos < head.len() {
        let e = find_crlf(head, pos).ok_or("unterminated line")?;
        lines.push(&head[pos..e]);
        pos = e + 2;
    }
    let (start, fields) = lines.split_first().ok_or("empty head")?;
    if start.iter().any(|&c| c < 0x20 || c == 0x7f) {
        return Err("control byte in the start line".into());
    }
    let start = String::from_utf8(start.to_vec()).map_err(|_| "non-UTF-8 start line")?;
    let mut headers = Vec::new();
    for f in fields {
        let colon = f
            .iter()
            .position(|&c| c == b':')
            .ok_or("field line without a colon")?;
        let name = &f[..colon];
        if name.is_empty() || !name.iter().all(|&c| is_tchar(c)) {
            return Err(format!(
                "invalid field name {:?}",
                String::from_utf8_lossy(name)
            ));
        }
        let value = &f[colon + 1..];
        if value.iter().any(|&c| (c < 0x20 && c != b'\t') || c == 0x7f) {
            return Err("control byte in a field value".into());
        }
        let value = value.trim_ascii();
        headers.push((String::from_utf8_lossy(name).into_owned(), value.to_vec()));
    }
    Ok(Some((start, headers, end + 4)))
}

fn framing_of(headers: &[(String, Vec<u8>)]) -> Result<Framing, String> {
    let cl: Vec<&[u8]> = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.as_slice())
        .collect();
    let te: Vec<&[u8]> = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"))
        .map(|(_, v)| v.as_slice())
        .collect();
    match (cl.as_slice(), te.as_slice()) {
        ([], []) => Ok(Framing::None),
        ([v], []) => {
            if v.is_empty() || !v.iter().all(u8::is_ascii_digit) || v.len() > 18 {
                return Err(format!("Content-Length {:?}", String::from_utf8_lossy(v)));
            }
            let n = std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or("Content-Length overflow")?;
            Ok(Framing::ContentLength(n))
        }
        ([], [v]) if *v == b"chunked" => Ok(Framing::Chunked),
        ([], [v]) => Err(format!(
            "Transfer-Encoding {:?} (only `chunked` has one reading)",
            String::from_utf8_lossy(v)
        )),
        ([_, ..], [_, ..]) => Err("both Content-Length and Transfer-Encoding".into()),
        _ => Err("a framing field is repeated".into()),
    }
}

type Dechunked = (Vec<u8>, Vec<(String, Vec<u8>)>, usize);

/// Decode a chunked body from `buf`; `Ok(None)` when incomplete.
/// Returns (body, trailer fields, bytes used).
fn dechunk(buf: &[u8]) -> Result<Option<Dechunked>, String> {
    let mut body = Vec::new();
    let mut trailers = Vec::new();
    let mut pos = 0;
    loop {
        let Some(e) = find_crlf(buf, pos) else {
            return Ok(None);
        };
        let line = &buf[pos..e];
        let size_end = line.iter().position(|&c| c == b';').unwrap_or(line.len());
        let size = &line[..size_end];
        if size.is_empty() || size.len() > 15 || !size.iter().all(u8::is_ascii_hexdigit) {
            return Err(format!("chunk size {:?}", String::from_utf8_lossy(line)));
        }
        if line.iter().any(|&c| c < 0x20 && c != b'\t') {
            return Err("control byte in a chunk extension".into());
        }
        let n = usize::from_str_radix(std::str::from_utf8(size).map_err(|e| e.to_string())?, 16)
            .map_err(|e| e.to_string())?;
        pos = e + 2;
        if n == 0 {
            // Trailer section: field lines, then an empty line.
            loop {
                let Some(e) = find_crlf(buf, pos) else {
                    return Ok(None);
                };
                let line = &buf[pos..e];
                pos = e + 2;
                if line.is_empty() {
                    return Ok(Some((body, trailers, pos)));
                }
                let colon = line.iter().position(|&c| c == b':').ok_or("bad trailer")?;
                if colon == 0 || !line[..colon].iter().all(|&c| is_tchar(c)) {
                    return Err("bad trailer field name".into());
                }
                let value = &line[colon + 1..];
                if value.iter().any(|&c| (c < 0x20 && c != b'\t') || c == 0x7f) {
                    return Err("control byte in a trailer value".into());
                }
                trailers.push((
                    String::from_utf8_lossy(&line[..colon]).into_owned(),
                    value.trim_ascii().to_vec(),
                ));
            }
        }
        if buf.len() < pos + n + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&buf[pos..pos + n]);
        if &buf[pos + n..pos + n + 2] != b"\r\n" {
            return Err("chunk data not followed by CRLF".into());
        }
        pos += n + 2;
    }
}

/// Read one request from the start of `buf`.
pub fn read_request(buf: &[u8]) -> Result<Read, String> {
    let Some((start, headers, head_len)) = parse_head(buf)? else {
        return Ok(Read::Partial);
    };
    let parts: Vec<&str> = start.split(' ').collect();
    if parts.len() != 3
        || parts[0].is_empty()
        || !parts[0].bytes().all(is_tchar)
        || parts[1].is_empty()
        || !matches!(parts[2], "HTTP/1.1" | "HTTP/1.0")
    {
        return Err(format!("request line {start:?}"));
    }
    let framing = framing_of(&headers)?;
    let rest = &buf[head_len..];
    let (body, trailers, used) = match framing {
        Framing::None | Framing::UntilClose => (Vec::new(), Vec::new(), 0),
        Framing::ContentLength(n) => {
            let n = usize::try_from(n).map_err(|_| "Content-Length too large")?;
            if rest.len() < n {
                return Ok(Read::Partial);
            }
            (rest[..n].to_vec(), Vec::new(), n)
        }
        Framing::Chunked => match dechunk(rest)? {
            Some(x) => x,
            None => return Ok(Read::Partial),
        },
    };
    Ok(Read::Done(Message {
        start_line: start,
        headers,
        body,
        trailers,
        framing,
        len: head_len + used,
        truncated: false,
    }))
}

/// Read one response from the start of `buf`. `to_head`: it answers a HEAD request. `eof`: no
/// more bytes will come, so a close-delimited body ends here and a short body is truncated.
pub fn read_response(buf: &[u8], to_head: bool, eof: bool) -> Result<Read, String> {
    let Some((start, headers, head_len)) = parse_head(buf)? else {
        return Ok(Read::Partial);
    };
    let status: u16 = start
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| start.strip_prefix("HTTP/1.0 "))
        .and_then(|s| s.get(..3))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("status line {start:?}"))?;
    let mut framing = framing_of(&headers)?;
    let no_body = to_head || (100..200).contains(&status) || status == 204 || status == 304;
    if framing == Framing::None && !no_body {
        framing = Framing::UntilClose;
    }
    let rest = &buf[head_len..];
    let done = |body: Vec<u8>, used: usize, truncated: bool| {
        Ok(Read::Done(Message {
            start_line: start.clone(),
            headers: headers.clone(),
            body,
            trailers: Vec::new(),
            framing,
            len: head_len + used,
            truncated,
        }))
    };
    if no_body {
        return done(Vec::new(), 0, false);
    }
    match framing {
        Framing::None => done(Vec::new(), 0, false),
        Framing::ContentLength(n) => {
            let n = usize::try_from(n).map_err(|_| "Content-Length too large")?;
            if rest.len() >= n {
                done(rest[..n].to_vec(), n, false)
            } else if eof {
                done(rest.to_vec(), rest.len(), true)
            } else {
                Ok(Read::Partial)
            }
        }
        Framing::Chunked => match dechunk(rest) {
            Ok(Some((body, _, used))) => done(body, used, false),
            Ok(None) | Err(_) if eof => done(rest.to_vec(), rest.len(), true),
            Ok(None) => Ok(Read::Partial),
            Err(e) => Err(e),
        },
        Framing::UntilClose if eof => done(rest.to_vec(), rest.len(), false),
        Framing::UntilClose => Ok(Read::Partial),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(b: &[u8]) -> Result<Read, String> {
        read_request(b)
    }

    #[test]
    fn requests_with_one_reading_are_read() {
        let table: &[(&[u8], &str, &[u8])] = &[
            (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET / HTTP/1.1", b""),
            (
                b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi",
                "POST /x HTTP/1.1",
                b"hi",
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2;a=b\r\nhi\r\n1\r\n!\r\n0\r\nX: y\r\n\r\n",
                "POST / HTTP/1.1",
                b"hi!",
            ),
        ];
        for (raw, line, body) in table {
            match req(raw) {
                Ok(Read::Done(m)) => {
                    assert_eq!(m.start_line, *line);
                    assert_eq!(m.body, *body);
                    assert_eq!(m.len, raw.len());
                }
                other => panic!("{}: {other:?}", crate::case::escape(raw)),
            }
        }
    }

    #[test]
    fn ambiguous_requests_are_refused() {
        let table: &[&[u8]] = &[
            b"GET / HTTP/1.1\nHost: a\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
            b"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0x1\r\nx\r\n0\r\n\r\n",
            b"GET  / HTTP/1.1\r\n\r\n",
        ];
        for raw in table {
            assert!(req(raw).is_err(), "{}", crate::case::escape(raw));
        }
    }

    #[test]
    fn partial_input_waits() {
        for raw in [
            &b"GET / HTTP/1.1\r\nHost: a\r\n"[..],
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhel",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        ] {
            assert_eq!(req(raw), Ok(Read::Partial), "{}", crate::case::escape(raw));
        }
    }

    #[test]
    fn responses_are_read_with_their_framing() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        let Ok(Read::Done(m)) = read_response(ok, false, false) else {
            panic!("complete response")
        };
        assert_eq!((m.status(), m.body.as_slice()), (Some(200), &b"ok"[..]));
        let Ok(Read::Done(m)) = read_response(ok, true, false) else {
            panic!("HEAD response")
        };
        assert_eq!(m.len, ok.len() - 2, "a response to HEAD has no body");
        let short = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nok";
        assert_eq!(read_response(short, false, false), Ok(Read::Partial));
        let Ok(Read::Done(m)) = read_response(short, false, true) else {
            panic!("truncated response")
        };
        assert!(m.truncated);
    }
}
