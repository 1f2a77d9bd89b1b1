//! SQL injection detection after libinjection's published design: tokenize the input as SQL
//! (three times: as is, as if it followed a `'`, as if it followed a `"`), fold the tokens
//! into at most five token types, and look that fingerprint up in libinjection's list of
//! fingerprints seen in attacks ([`crate::sqli_data`], BSD-licensed data, with attribution).
//!
//! The tokenizer follows libinjection's character classes and token types. The folding is a
//! reduced form of libinjection's: comments dropped, adjacent strings merged, unary operators
//! absorbed, two-word keywords (`UNION ALL`, `ORDER BY`) merged, and `value op value`
//! arithmetic collapsed; libinjection's false-positive filter for short fingerprints is
//! approximated by refusing fingerprints under three tokens that do not end in a comment.

use crate::sqli_data::{CHARMAP, FINGERPRINTS, KEYWORDS};

const MAX_TOKENS: usize = 5;

#[derive(Clone, Debug)]
struct Token {
    ty: u8,
    val: Vec<u8>,
}

fn keyword(word: &[u8]) -> Option<u8> {
    let up = String::from_utf8_lossy(word).to_ascii_uppercase();
    KEYWORDS
        .binary_search_by(|(k, _)| k.cmp(&up.as_str()))
        .ok()
        .map(|i| KEYWORDS[i].1)
}

fn is_fingerprint(fp: &str) -> bool {
    // The list is upper case; libinjection compares fingerprints case-insensitively.
    FINGERPRINTS
        .binary_search(&fp.to_ascii_uppercase().as_str())
        .is_ok()
}

fn is_white(c: u8) -> bool {
    CHARMAP[c as usize] == b'w'
}

fn is_word_char(c: u8) -> bool {
    !(is_white(c) || b" []{}<>:\\?=@!#~+-*/&|^%(),';\"`".contains(&c))
}

struct Lexer<'a> {
    s: &'a [u8],
    pos: usize,
    delim: u8,
    mysql: bool,
}

impl Lexer<'_> {
    /// Next token, or `None` at the end.
    fn next(&mut self) -> Option<Token> {
        let s = self.s;
        if self.pos == 0 && self.delim != 0 {
            // The input is the inside of a string opened before it.
            let end = find_close(s, 0, self.delim);
            self.pos = end.map_or(s.len(), |e| e + 1);
            return Some(Token {
                ty: b's',
                val: s[..end.unwrap_or(s.len())].to_vec(),
            });
        }
        while self.pos < s.len() {
            let start = self.pos;
            let c = s[start];
            let rest = &s[start..];
            let tok = |ty: u8, end: usize| Token {
                ty,
                val: s[start..end.min(s.len())].to_vec(),
            };
            match CHARMAP[c as usize] {
                b'w' => {
                    self.pos += 1;
                    continue;
                }
                b's' => {
                    let end = find_close(s, start + 1, c);
                    self.pos = end.map_or(s.len(), |e| e + 1);
                    return Some(Token {
                        ty: b's',
                        val: s[start + 1..end.unwrap_or(s.len())].to_vec(),
                    });
                }
                b'#' => {
                    if self.mysql {
                        self.pos = memchr::memchr(b'\n', rest).map_or(s.len(), |i| start + i + 1);
                        return Some(tok(b'c', self.pos));
                    }
                    self.pos += 1;
                    return Some(tok(b'o', start + 1));
                }
                b'-' => {
                    if rest.starts_with(b"--")
                        && (!self.mysql || rest.get(2).is_none_or(|c| is_white(*c)))
                    {
                        self.pos = memchr::memchr(b'\n', rest).map_or(s.len(), |i| start + i + 1);
                        return Some(tok(b'c', self.pos));
                    }
                    self.pos += 1;
                    return Some(tok(b'o', start + 1));
                }
                b'/' => {
                    if rest.starts_with(b"/*") {
                        if self.mysql && rest.get(2) == Some(&b'!') {
                            // MySQL executes `/*! … */`: read on inside it.
                            self.pos += 3;
                            while self.pos < s.len() && s[self.pos].is_ascii_digit() {
                                self.pos += 1;
                            }
                            continue;
                        }
                        let end = memchr::memmem::find(&rest[2..], b"*/")
                            .map_or(s.len(), |i| start + 2 + i + 2);
                        self.pos = end;
                        let nested = memchr::memmem::find(&s[start + 2..end], b"/*").is_some();
                        let bang = rest.get(2) == Some(&b'!');
                        return Some(tok(if nested || bang { b'X' } else { b'c' }, end));
                    }
                    self.pos += 1;
                    return Some(tok(b'o', start + 1));
                }
                b'\\' => {
                    if rest.get(1) == Some(&b'N') {
                        self.pos += 2;
                        return Some(tok(b'1', start + 2));
                    }
                    self.pos += 1;
                    return Some(tok(b'\\', start + 1));
                }
                b'!' | b'O' => {
                    if rest.starts_with(b"<=>") {
                        self.pos += 3;
                        return Some(tok(b'o', start + 3));
                    }
                    if rest.len() >= 2 {
                        if let Some(t) = keyword(&rest[..2]) {
                            self.pos += 2;
                            return Some(tok(t, start + 2));
                        }
                    }
                    self.pos += 1;
                    return Some(tok(if c == b':' { b':' } else { b'o' }, start + 1));
                }
                b'o' | b'u' => {
                    self.pos += 1;
                    return Some(tok(b'o', start + 1));
                }
                b'(' | b')' | b',' | b';' | b'{' | b'}' => {
                    self.pos += 1;
                    return Some(tok(CHARMAP[c as usize], start + 1));
                }
                b'?' => {
                    self.pos += 1;
                    return Some(tok(b'?', start + 1));
                }
                b'1' => return Some(self.number()),
                b'$' => {
                    if rest
                        .get(1)
                        .is_some_and(|c| c.is_ascii_digit() || *c == b'.')
                    {
                        self.pos += 1;
                        let mut t = self.number();
                        t.val.insert(0, b'$');
                        return Some(t);
                    }
                    if rest.starts_with(b"$$") {
                        let end = memchr::memmem::find(&rest[2..], b"$$")
                            .map_or(s.len(), |i| start + 2 + i + 2);
                        self.pos = end;
                        return Some(tok(b's', end));
                    }
                    return Some(self.word());
                }
                b'@' => {
                    self.pos += if rest.starts_with(b"@@") { 2 } else { 1 };
                    while self.pos < s.len() && is_word_char(s[self.pos]) && s[self.pos] != b'.' {
                        self.pos += 1;
                    }
                    return Some(tok(b'v', self.pos));
                }
                b'`' => {
                    let end = memchr::memchr(b'`', &rest[1..]).map_or(s.len(), |i| start + 1 + i);
                    self.pos = (end + 1).min(s.len());
                    let inner = &s[start + 1..end];
                    let ty = if keyword(inner) == Some(b'f') {
                        b'f'
                    } else {
                        b'n'
                    };
                    return Some(Token {
                        ty,
                        val: inner.to_vec(),
                    });
                }
                b'[' => {
                    let end = memchr::memchr(b']', rest).map_or(s.len(), |i| start + i + 1);
                    self.pos = end;
                    return Some(tok(b'n', end));
                }
                b'B' | b'E' | b'N' | b'Q' | b'U' | b'X' => {
                    let quote_at = match CHARMAP[c as usize] {
                        b'U' if rest.get(1) == Some(&b'&') => 2,
                        b'Q' | b'N' | b'E' | b'B' | b'X' => 1,
                        _ => 0,
                    };
                    if quote_at > 0 && rest.get(quote_at) == Some(&b'\'') {
                        let end = find_close(s, start + quote_at + 1, b'\'');
                        self.pos = end.map_or(s.len(), |e| e + 1);
                        let ty = if matches!(c.to_ascii_uppercase(), b'B' | b'X') {
                            b'1'
                        } else {
                            b's'
                        };
                        return Some(tok(ty, self.pos));
                    }
                    return Some(self.word());
                }
                _ => return Some(self.word()),
            }
        }
        None
    }

    fn number(&mut self) -> Token {
        let s = self.s;
        let start = self.pos;
        let rest = &s[start..];
        if rest.len() > 2 && rest[0] == b'0' && matches!(rest[1], b'x' | b'X' | b'b' | b'B') {
            let hex = matches!(rest[1], b'x' | b'X');
            let n = rest[2..]
                .iter()
                .take_while(|c| {
                    if hex {
                        c.is_ascii_hexdigit()
                    } else {
                        matches!(c, b'0' | b'1')
                    }
                })
                .count();
            if n > 0 {
                self.pos += 2 + n;
                return Token {
                    ty: b'1',
                    val: s[start..self.pos].to_vec(),
                };
            }
        }
        let mut i = start;
        while i < s.len() && s[i].is_ascii_digit() {
            i += 1;
        }
        let mut had_digits = i > start;
        if i < s.len() && s[i] == b'.' {
            i += 1;
            while i < s.len() && s[i].is_ascii_digit() {
                i += 1;
                had_digits = true;
            }
            if !had_digits {
                self.pos = start + 1;
                return Token {
                    ty: b'.',
                    val: b".".to_vec(),
                };
            }
        }
        if i < s.len() && matches!(s[i], b'e' | b'E') {
            let mut j = i + 1;
            if j < s.len() && matches!(s[j], b'+' | b'-') {
                j += 1;
            }
            if j < s.len() && s[j].is_ascii_digit() {
                while j < s.len() && s[j].is_ascii_digit() {
                    j += 1;
                }
                i = j;
            }
        }
        if i < s.len()
            && matches!(s[i], b'd' | b'D' | b'f' | b'F')
            && s.get(i + 1).is_none_or(|c| !is_word_char(*c))
        {
            i += 1;
        }
        self.pos = i.max(start + 1);
        Token {
            ty: b'1',
            val: s[start..self.pos].to_vec(),
        }
    }

    fn word(&mut self) -> Token {
        let s = self.s;
        let start = self.pos;
        let mut end = start;
        while end < s.len() && is_word_char(s[end]) {
            end += 1;
        }
        if end == start {
            end = start + 1;
        }
        let word = &s[start..end];
        // `table.column`: a keyword before the dot stands alone.
        if let Some(dot) = memchr::memchr(b'.', word) {
            if dot > 0 {
                if let Some(t) = keyword(&word[..dot]) {
                    if t != b'n' {
                        self.pos = start + dot;
                        return Token {
                            ty: t,
                            val: word[..dot].to_ascii_uppercase(),
                        };
                    }
                }
            }
        }
        self.pos = end;
        let ty = keyword(word).unwrap_or(b'n');
        Token {
            ty,
            val: word.to_ascii_uppercase(),
        }
    }
}

/// Index of the closing `delim` from `from`, skipping backslash-escaped and doubled ones.
fn find_close(s: &[u8], from: usize, delim: u8) -> Option<usize> {
    let mut i = from;
    while i < s.len() {
        if s[i] == b'\\' {
            i += 2;
            continue;
        }
        if s[i] == delim {
            if s.get(i + 1) == Some(&delim) {
                i += 2;
                continue;
            }
            return Some(i);
        }
        i += 1;
    }
    None
}

fn is_unary(t: &Token) -> bool {
    t.ty == b'o' && matches!(t.val.as_slice(), b"+" | b"-" | b"!" | b"!!" | b"~" | b"NOT")
}

fn is_arith(t: &Token) -> bool {
    t.ty == b'o'
        && matches!(
            t.val.as_slice(),
            b"-" | b"+" | b"*" | b"/" | b"%" | b"DIV" | b"MOD" | b"&" | b"|" | b"^"
        )
}

/// Tokenizes and folds; returns the fingerprint.
fn fingerprint(s: &[u8], delim: u8, mysql: bool) -> (String, bool) {
    let mut lx = Lexer {
        s,
        pos: 0,
        delim,
        mysql,
    };
    let mut toks: Vec<Token> = Vec::new();
    let mut had_comment = false;
    let mut guard = 0;
    while let Some(t) = lx.next() {
        guard += 1;
        if guard > 4096 {
            break;
        }
        if t.ty == b'c' {
            had_comment = true;
            if toks.len() < MAX_TOKENS && toks.last().is_none_or(|l| l.ty != b'c') {
                toks.push(t);
            }
            continue;
        }
        // Leading left parens, comments and unary operators say nothing.
        if toks.is_empty() && (t.ty == b'(' || is_unary(&t) || t.ty == b't') {
            continue;
        }
        if let Some(last) = toks.last_mut() {
            if last.ty == b'c' {
                toks.pop();
            }
        }
        if let Some(last) = toks.last() {
            let merged = format!(
                "{} {}",
                String::from_utf8_lossy(&last.val),
                String::from_utf8_lossy(&t.val)
            );
            let pair = (last.ty, t.ty);
            if pair == (b's', b's') || pair == (b';', b';') {
                continue;
            }
            if matches!(last.ty, b'o' | b'&') && (is_unary(&t) || t.ty == b't') {
                continue;
            }
            if last.ty == b'(' && is_unary(&t) {
                continue;
            }
            if matches!(
                last.ty,
                b'k' | b'n' | b'U' | b'o' | b'E' | b'B' | b't' | b'&'
            ) {
                if let Some(ty) = keyword(merged.as_bytes()) {
                    let l = toks.len() - 1;
                    toks[l] = Token {
                        ty,
                        val: merged.into_bytes(),
                    };
                    continue;
                }
            }
            // `value op value` is one value.
            if toks.len() >= 2 && matches!(t.ty, b'1' | b'n' | b'v' | b's') && is_arith(last) {
                let before = &toks[toks.len() - 2];
                if matches!(before.ty, b'1' | b'n' | b'v') && t.ty != b's' {
                    toks.pop();
                    continue;
                }
            }
            if last.ty == b'n' && t.ty == b'(' && keyword(&last.val) == Some(b'f') {
                let l = toks.len() - 1;
                toks[l].ty = b'f';
            }
        }
        if toks.len() >= MAX_TOKENS {
            break;
        }
        toks.push(t);
    }
    while toks.len() > MAX_TOKENS {
        toks.pop();
    }
    // A trailing comment only counts as one token.
    let fp: String = toks.iter().map(|t| t.ty as char).collect();
    (fp, had_comment)
}

/// Whether `input` is SQL injection; returns the fingerprint.
pub(crate) fn detect(input: &[u8]) -> Option<String> {
    if input.is_empty() {
        return None;
    }
    let mut contexts: Vec<(u8, bool)> = vec![(0, false)];
    if memchr::memchr(b'\'', input).is_some() {
        contexts.push((b'\'', false));
    }
    if memchr::memchr(b'"', input).is_some() {
        contexts.push((b'"', true));
    }
    for (delim, mysql) in contexts {
        for flavour in [mysql, true] {
            let (fp, _) = fingerprint(input, delim, flavour);
            if fp.len() < 3 && !fp.ends_with('c') {
                continue;
            }
            if is_fingerprint(&fp) {
                return Some(fp);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        for (input, sqli) in [
            ("1' or '1'='1", true),
            ("1 union select password from users", true),
            ("admin'--", true),
            ("1; drop table users", true),
            ("hello world", false),
            ("red shoes size 42", false),
            ("O'Brien", false),
        ] {
            assert_eq!(
                detect(input.as_bytes()).is_some(),
                sqli,
                "{input}: {:?}",
                detect(input.as_bytes())
            );
        }
    }
}
