//! Request parsing for inspection: query strings, cookies, urlencoded, JSON and multipart
//! bodies into (name, value) arguments.
//!
//! Every parser is bounded: by the argument cap, the JSON depth cap and the part cap, all from
//! [`crate::Config`]; none recurses, so a hostile body costs time linear in its length.

use crate::transform::url_decode;

/// (name, value) pairs.
pub(crate) type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Splits `a=1&b=2` into decoded pairs, keeping at most `max` (returns how many were dropped).
pub(crate) fn parse_query(s: &[u8], out: &mut Pairs, max: usize) -> usize {
    let mut dropped = 0;
    for part in s.split(|&c| c == b'&') {
        if part.is_empty() {
            continue;
        }
        if out.len() >= max {
            dropped += 1;
            continue;
        }
        let (n, v) = match memchr::memchr(b'=', part) {
            Some(i) => (&part[..i], &part[i + 1..]),
            None => (part, &b""[..]),
        };
        out.push((url_decode(n, false), url_decode(v, false)));
    }
    dropped
}

/// Splits a `Cookie` header into pairs (values are not decoded).
pub(crate) fn parse_cookies(s: &[u8], out: &mut Pairs) {
    for part in s.split(|&c| c == b';') {
        let part = part.trim_ascii();
        if part.is_empty() {
            continue;
        }
        let (n, v) = match memchr::memchr(b'=', part) {
            Some(i) => (&part[..i], &part[i + 1..]),
            None => (part, &b""[..]),
        };
        out.push((n.trim_ascii().to_vec(), v.to_vec()));
    }
}

/// The attribute values of one XML tag's inside (`a x="1" y='2'`); none for a closing tag, a
/// processing instruction or a declaration.
pub(crate) fn xml_attribute_values(tag: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    if matches!(tag.first(), None | Some(b'/' | b'?' | b'!')) {
        return out;
    }
    let mut i = 0;
    while i < tag.len() {
        if tag[i] != b'=' {
            i += 1;
            continue;
        }
        i += 1;
        while i < tag.len() && tag[i].is_ascii_whitespace() {
            i += 1;
        }
        let Some(&q) = tag.get(i).filter(|q| matches!(q, b'"' | b'\'')) else {
            continue;
        };
        let start = i + 1;
        match memchr::memchr(q, &tag[start..]) {
            Some(len) => {
                out.push(&tag[start..start + len]);
                i = start + len + 1;
            }
            None => break,
        }
    }
    out
}

/// Flattens a JSON document into `json.a.b` / `json.a.0` arguments. Errors on malformed
/// input or nesting deeper than `max_depth` (arguments found before the error are kept).
pub(crate) fn parse_json(
    s: &[u8],
    max_depth: usize,
    out: &mut Pairs,
    max: usize,
) -> Result<(), ()> {
    enum Frame {
        Obj,
        Arr(usize),
    }
    let mut stack: Vec<Frame> = Vec::new();
    let mut path: Vec<Vec<u8>> = vec![b"json".to_vec()];
    let mut i = 0;
    let ws = |i: &mut usize| {
        while *i < s.len() && s[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    let name = |path: &[Vec<u8>]| path.join(&b'.');
    // `expect_value`: at a value position.
    let mut expect_value = true;
    loop {
        ws(&mut i);
        if expect_value {
            let Some(&c) = s.get(i) else { return Err(()) };
            match c {
                b'{' | b'[' => {
                    if stack.len() >= max_depth {
                        return Err(());
                    }
                    i += 1;
                    ws(&mut i);
                    if c == b'{' {
                        stack.push(Frame::Obj);
                        if s.get(i) == Some(&b'}') {
                            i += 1;
                            stack.pop();
                            expect_value = false;
                        } else {
                            let key = string(s, &mut i)?;
                            ws(&mut i);
                            if s.get(i) != Some(&b':') {
                                return Err(());
                            }
                            i += 1;
                            path.push(key);
                        }
                    } else {
                        stack.push(Frame::Arr(0));
                        if s.get(i) == Some(&b']') {
                            i += 1;
                            stack.pop();
                            expect_value = false;
                        } else {
                            path.push(b"0".to_vec());
                        }
                    }
                    continue;
                }
                b'"' => {
                    let v = string(s, &mut i)?;
                    if out.len() < max {
                        out.push((name(&path), v));
                    }
                }
                _ => {
                    let start = i;
                    while i < s.len()
                        && !matches!(s[i], b',' | b'}' | b']')
                        && !s[i].is_ascii_whitespace()
                    {
                        i += 1;
                    }
                    if start == i {
                        return Err(());
                    }
                    if out.len() < max {
                        out.push((name(&path), s[start..i].to_vec()));
                    }
                }
            }
            expect_value = false;
            if stack.is_empty() {
                ws(&mut i);
                return if i == s.len() { Ok(()) } else { Err(()) };
            }
            continue;
        }
        // After a value inside a container: `,` or the closer.
        let Some(frame) = stack.last_mut() else {
            ws(&mut i);
            return if i == s.len() { Ok(()) } else { Err(()) };
        };
        match (s.get(i), frame) {
            (Some(b','), Frame::Obj) => {
                i += 1;
                ws(&mut i);
                let key = string(s, &mut i)?;
                ws(&mut i);
                if s.get(i) != Some(&b':') {
                    return Err(());
                }
                i += 1;
                path.pop();
                path.push(key);
                expect_value = true;
            }
            (Some(b','), Frame::Arr(n)) => {
                i += 1;
                *n += 1;
                path.pop();
                path.push(n.to_string().into_bytes());
                expect_value = true;
            }
            (Some(b'}'), Frame::Obj) | (Some(b']'), Frame::Arr(_)) => {
                i += 1;
                stack.pop();
                path.pop();
                if stack.is_empty() {
                    ws(&mut i);
                    return if i == s.len() { Ok(()) } else { Err(()) };
                }
            }
            _ => return Err(()),
        }
    }
}

/// Reads a JSON string at `s[*i]` (which must be `"`), decoding escapes.
fn string(s: &[u8], i: &mut usize) -> Result<Vec<u8>, ()> {
    if s.get(*i) != Some(&b'"') {
        return Err(());
    }
    *i += 1;
    let mut out = Vec::new();
    loop {
        let Some(&c) = s.get(*i) else { return Err(()) };
        *i += 1;
        match c {
            b'"' => return Ok(out),
            b'\\' => {
                let Some(&e) = s.get(*i) else { return Err(()) };
                *i += 1;
                match e {
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'r' => out.push(b'\r'),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'u' => {
                        let hex = s.get(*i..*i + 4).ok_or(())?;
                        let cp = u32::from_str_radix(std::str::from_utf8(hex).map_err(|_| ())?, 16)
                            .map_err(|_| ())?;
                        *i += 4;
                        let ch = char::from_u32(cp).unwrap_or('\u{fffd}');
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                    }
                    other => out.push(other),
                }
            }
            _ => out.push(c),
        }
    }
}

/// What a multipart body yields.
#[derive(Default)]
pub(crate) struct Multipart {
    pub args: Pairs,
    /// (field name, file name)
    pub files: Pairs,
    /// (part name, header line)
    pub part_headers: Pairs,
    pub file_bytes: usize,
    pub error: bool,
}

/// Parses `multipart/form-data` with `boundary`, at most `max_parts` parts.
pub(crate) fn parse_multipart(
    body: &[u8],
    boundary: &[u8],
    max_parts: usize,
    max_args: usize,
) -> Multipart {
    let mut m = Multipart::default();
    let mut delim = b"--".to_vec();
    delim.extend_from_slice(boundary);
    let finder = memchr::memmem::Finder::new(&delim);
    let mut positions: Vec<usize> = finder.find_iter(body).collect();
    if positions.is_empty() {
        m.error = true;
        return m;
    }
    positions.truncate(max_parts + 1);
    for w in positions.windows(2) {
        let mut part = &body[w[0] + delim.len()..w[1]];
        part = part
            .strip_prefix(b"\r\n")
            .or_else(|| part.strip_prefix(b"\n"))
            .unwrap_or(part);
        part = part
            .strip_suffix(b"\r\n")
            .or_else(|| part.strip_suffix(b"\n"))
            .unwrap_or(part);
        let (head, content) = match memchr::memmem::find(part, b"\r\n\r\n") {
            Some(i) => (&part[..i], &part[i + 4..]),
            None => match memchr::memmem::find(part, b"\n\n") {
                Some(i) => (&part[..i], &part[i + 2..]),
                None => {
                    m.error = true;
                    continue;
                }
            },
        };
        let mut name = Vec::new();
        let mut filename: Option<Vec<u8>> = None;
        let lines: Vec<&[u8]> = head
            .split(|&c| c == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .collect();
        for line in &lines {
            let Some(colon) = memchr::memchr(b':', line) else {
                continue;
            };
            if line[..colon]
                .trim_ascii()
                .eq_ignore_ascii_case(b"content-disposition")
            {
                for param in line[colon + 1..].split(|&c| c == b';') {
                    let param = param.trim_ascii();
                    let Some(eq) = memchr::memchr(b'=', param) else {
                        continue;
                    };
                    let key = param[..eq].trim_ascii().to_ascii_lowercase();
                    let mut val = param[eq + 1..].trim_ascii();
                    if val.len() >= 2 && val[0] == b'"' && val[val.len() - 1] == b'"' {
                        val = &val[1..val.len() - 1];
                    }
                    match key.as_slice() {
                        b"name" => name = val.to_vec(),
                        b"filename" | b"filename*" => filename = Some(val.to_vec()),
                        _ => {}
                    }
                }
            }
        }
        for line in lines {
            if !line.is_empty() {
                m.part_headers.push((name.clone(), line.to_vec()));
            }
        }
        match filename {
            Some(f) => {
                m.file_bytes += content.len();
                m.files.push((name, f));
            }
            None if m.args.len() < max_args => m.args.push((name, content.to_vec())),
            None => {}
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_attributes() {
        let got = xml_attribute_values(br#"a probe="&lt;x" y = 'b"c' z"#);
        assert_eq!(got, vec![&b"&lt;x"[..], &b"b\"c"[..]]);
        assert!(xml_attribute_values(br#"?xml version="1.0"?"#).is_empty());
        assert!(xml_attribute_values(b"/a").is_empty());
    }

    #[test]
    fn json_flattens_and_bounds_depth() {
        let mut out = Vec::new();
        parse_json(
            br#"{"a":{"b":"x\u0041"},"c":[1,"y",{"d":null}],"e":[]}"#,
            8,
            &mut out,
            100,
        )
        .unwrap();
        let got: Vec<(String, String)> = out
            .iter()
            .map(|(n, v)| {
                (
                    String::from_utf8_lossy(n).into(),
                    String::from_utf8_lossy(v).into(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("json.a.b".into(), "xA".into()),
                ("json.c.0".into(), "1".into()),
                ("json.c.1".into(), "y".into()),
                ("json.c.2.d".into(), "null".into()),
            ]
        );
        let deep = "[".repeat(100) + &"]".repeat(100);
        assert!(parse_json(deep.as_bytes(), 64, &mut Vec::new(), 100).is_err());
        assert!(parse_json(deep.as_bytes(), 128, &mut Vec::new(), 100).is_ok());
    }

    #[test]
    fn multipart_fields_and_files() {
        let body = b"--xx\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--xx\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.php\"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--xx--\r\n";
        let m = parse_multipart(body, b"xx", 10, 10);
        assert_eq!(m.args, vec![(b"a".to_vec(), b"1".to_vec())]);
        assert_eq!(m.files, vec![(b"f".to_vec(), b"x.php".to_vec())]);
        assert_eq!(m.part_headers.len(), 3);
    }
}
