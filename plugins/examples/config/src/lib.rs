//! The configuration bext hands a plugin whose block has keys other than its own settings: a
//! flat JSON object of strings (`{"name":"x-served-by","value":"bext"}`). A parser for that
//! shape only, so the plugins carry no JSON library.

/// The pairs of a flat object of strings; `None` when the bytes are anything else.
pub fn parse(bytes: &[u8]) -> Option<Vec<(String, String)>> {
    let s = std::str::from_utf8(bytes).ok()?.trim();
    if s.is_empty() {
        return Some(Vec::new());
    }
    let mut chars = s
        .strip_prefix('{')?
        .strip_suffix('}')?
        .trim()
        .chars()
        .peekable();
    let mut out = Vec::new();
    loop {
        skip_ws(&mut chars);
        if chars.peek().is_none() {
            return Some(out);
        }
        let k = string(&mut chars)?;
        skip_ws(&mut chars);
        if chars.next()? != ':' {
            return None;
        }
        skip_ws(&mut chars);
        let v = string(&mut chars)?;
        out.push((k, v));
        skip_ws(&mut chars);
        match chars.next() {
            Some(',') => {}
            None => return Some(out),
            _ => return None,
        }
    }
}

/// The value of `key`.
pub fn get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn skip_ws(c: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while c.peek().is_some_and(|c| c.is_whitespace()) {
        c.next();
    }
}

fn string(c: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<String> {
    if c.next()? != '"' {
        return None;
    }
    let mut out = String::new();
    loop {
        match c.next()? {
            '"' => return Some(out),
            '\\' => match c.next()? {
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'u' => {
                    let hex: String = (0..4).filter_map(|_| c.next()).collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                x => out.push(x),
            },
            x => out.push(x),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn flat_objects() {
        assert_eq!(
            super::parse(br#"{"name":"x-a", "value" : "b\"c\u0041"}"#),
            Some(vec![
                ("name".into(), "x-a".into()),
                ("value".into(), "b\"cA".into())
            ])
        );
        assert_eq!(super::parse(b""), Some(vec![]));
        assert_eq!(super::parse(b"{}"), Some(vec![]));
        assert_eq!(super::parse(b"[1]"), None);
        assert_eq!(super::parse(br#"{"a":1}"#), None);
    }
}
