//! SQL injection detection: a port of libinjection's SQLi tokenizer, folder and
//! false-positive filter (libinjection 3.9, `src/libinjection_sqli.c`, Copyright (c) 2012-2016
//! Nick Galbreath, BSD 3-clause licence, full text in `modules/waf/data/libinjection-COPYING`).
//!
//! The input is tokenized as SQL (as is, as if it followed a `'`, as if it followed a `"`;
//! ANSI, then MySQL comment rules when the input had `#` or `--x`), the tokens are folded into
//! at most five, and the token types form a fingerprint looked up in libinjection's list of
//! fingerprints seen in attacks ([`crate::sqli_data`]). A fingerprint found in the list still
//! passes libinjection's filter for short, ambiguous fingerprints (`1c`, `sos`, `nk1`…) before
//! it counts. The behaviour follows the C code step for step; tokens are fixed-size values, so
//! detection allocates nothing.

// The folding keeps libinjection's case-by-case `if … else if` chain, one branch per rule of
// the C code, so that the two can be read side by side; some branches share a body.
#![allow(clippy::if_same_then_else, clippy::collapsible_if)]

use crate::sqli_data::{FINGERPRINTS, KEYWORDS};

const MAX_TOKENS: usize = 5;
/// Bytes kept of a token's value (libinjection's `val[32]` with its terminating NUL).
const TOKEN_SIZE: usize = 32;

const T_NONE: u8 = 0;
const T_KEYWORD: u8 = b'k';
const T_UNION: u8 = b'U';
const T_GROUP: u8 = b'B';
const T_EXPRESSION: u8 = b'E';
const T_SQLTYPE: u8 = b't';
const T_FUNCTION: u8 = b'f';
const T_BAREWORD: u8 = b'n';
const T_NUMBER: u8 = b'1';
const T_VARIABLE: u8 = b'v';
const T_STRING: u8 = b's';
const T_OPERATOR: u8 = b'o';
const T_LOGIC: u8 = b'&';
const T_COMMENT: u8 = b'c';
const T_COLLATE: u8 = b'A';
const T_LPAREN: u8 = b'(';
const T_RPAREN: u8 = b')';
const T_LBRACE: u8 = b'{';
const T_RBRACE: u8 = b'}';
const T_DOT: u8 = b'.';
const T_COMMA: u8 = b',';
const T_COLON: u8 = b':';
const T_SEMICOLON: u8 = b';';
const T_TSQL: u8 = b'T';
const T_UNKNOWN: u8 = b'?';
const T_EVIL: u8 = b'X';
const T_BACKSLASH: u8 = b'\\';

const FLAG_QUOTE_NONE: u8 = 1;
const FLAG_QUOTE_SINGLE: u8 = 2;
const FLAG_QUOTE_DOUBLE: u8 = 4;
const FLAG_SQL_ANSI: u8 = 8;
const FLAG_SQL_MYSQL: u8 = 16;

#[derive(Clone, Copy)]
struct Token {
    ty: u8,
    pos: usize,
    len: usize,
    str_open: u8,
    str_close: u8,
    val: [u8; TOKEN_SIZE],
}

impl Token {
    const EMPTY: Token = Token {
        ty: T_NONE,
        pos: 0,
        len: 0,
        str_open: 0,
        str_close: 0,
        val: [0; TOKEN_SIZE],
    };

    fn val(&self) -> &[u8] {
        &self.val[..self.len]
    }

    fn assign(&mut self, ty: u8, pos: usize, value: &[u8]) {
        let last = value.len().min(TOKEN_SIZE - 1);
        self.ty = ty;
        self.pos = pos;
        self.len = last;
        self.val[..last].copy_from_slice(&value[..last]);
        self.val[last] = 0;
    }

    fn assign_char(&mut self, ty: u8, pos: usize, c: u8) {
        self.ty = ty;
        self.pos = pos;
        self.len = 1;
        self.val[0] = c;
        self.val[1] = 0;
    }

    fn is_arithmetic_op(&self) -> bool {
        self.ty == T_OPERATOR
            && self.len == 1
            && matches!(self.val[0], b'*' | b'/' | b'-' | b'+' | b'%')
    }

    fn is_unary_op(&self) -> bool {
        if self.ty != T_OPERATOR {
            return false;
        }
        match self.len {
            1 => matches!(self.val[0], b'+' | b'-' | b'!' | b'~'),
            2 => self.val[0] == b'!' && self.val[1] == b'!',
            3 => self.val().eq_ignore_ascii_case(b"NOT"),
            _ => false,
        }
    }

    /// libinjection's `cstrcasecmp(WORD, val, len) == 0`.
    fn is(&self, word: &[u8]) -> bool {
        self.val().eq_ignore_ascii_case(word)
    }
}

fn is_white(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0xa0 | 0)
}

/// The keyword table's type for `word` (ASCII case-insensitive), or 0.
fn lookup_word(word: &[u8]) -> u8 {
    if word.is_empty() || word.len() >= 64 {
        return T_NONE;
    }
    let mut up = [0u8; 64];
    for (d, s) in up.iter_mut().zip(word) {
        *d = s.to_ascii_uppercase();
    }
    let key = &up[..word.len()];
    KEYWORDS
        .binary_search_by(|(k, _)| k.as_bytes().cmp(key))
        .map_or(T_NONE, |i| KEYWORDS[i].1)
}

fn is_fingerprint(fp: &[u8]) -> bool {
    let mut up = [0u8; 8];
    for (d, s) in up.iter_mut().zip(fp) {
        *d = s.to_ascii_uppercase();
    }
    let key = &up[..fp.len()];
    FINGERPRINTS
        .binary_search_by(|k| k.as_bytes().cmp(key))
        .is_ok()
}

fn find2(s: &[u8], from: usize, c0: u8, c1: u8) -> Option<usize> {
    if from >= s.len() {
        return None;
    }
    s[from..]
        .windows(2)
        .position(|w| w[0] == c0 && w[1] == c1)
        .map(|i| from + i)
}

fn span(s: &[u8], from: usize, accept: &[u8]) -> usize {
    s[from..].iter().take_while(|c| accept.contains(c)).count()
}

/// The length of the run of `s` from `from` with no byte of `reject` (C's `strcspn`).
fn cspan(s: &[u8], from: usize, reject: &[bool; 256]) -> usize {
    s[from..]
        .iter()
        .take_while(|&&c| !reject[c as usize])
        .count()
}

/// A set of bytes as a table, for [`cspan`].
const fn byte_set(bytes: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < bytes.len() {
        t[bytes[i] as usize] = true;
        i += 1;
    }
    t
}

/// What ends a word (libinjection's `parse_word`).
const WORD_END: [bool; 256] = byte_set(b" []{}<>:\\?=@!#~+-*/&|^%(),';\t\n\x0b\x0c\r\"\xa0\x00");
/// What ends a variable name (libinjection's `parse_var`).
const VAR_END: [bool; 256] = byte_set(b" <>:\\?=@!#~+-*/&|^%(),';\t\n\x0b\x0c\r'`\"");

struct State<'a> {
    s: &'a [u8],
    flags: u8,
    pos: usize,
    tokens: [Token; 8],
    current: usize,
    fingerprint: [u8; 8],
    fp_len: usize,
    stats_comment_ddx: u32,
    stats_comment_hash: u32,
    stats_tokens: u32,
}

impl<'a> State<'a> {
    fn new(s: &'a [u8], flags: u8) -> Self {
        State {
            s,
            flags,
            pos: 0,
            tokens: [Token::EMPTY; 8],
            current: 0,
            fingerprint: [0; 8],
            fp_len: 0,
            stats_comment_ddx: 0,
            stats_comment_hash: 0,
            stats_tokens: 0,
        }
    }

    fn reset(&mut self, flags: u8) {
        *self = State::new(self.s, flags);
    }

    fn cur(&mut self) -> &mut Token {
        &mut self.tokens[self.current]
    }

    // ---- parsers: each reads the token at `self.pos` and returns where the next one starts.

    fn parse_white(&mut self) -> usize {
        self.pos + 1
    }

    fn parse_operator1(&mut self) -> usize {
        let (pos, c) = (self.pos, self.s[self.pos]);
        self.cur().assign_char(T_OPERATOR, pos, c);
        pos + 1
    }

    fn parse_other(&mut self) -> usize {
        let (pos, c) = (self.pos, self.s[self.pos]);
        self.cur().assign_char(T_UNKNOWN, pos, c);
        pos + 1
    }

    fn parse_char(&mut self) -> usize {
        let (pos, c) = (self.pos, self.s[self.pos]);
        self.cur().assign_char(c, pos, c);
        pos + 1
    }

    fn parse_eol_comment(&mut self) -> usize {
        let (s, pos) = (self.s, self.pos);
        match memchr::memchr(b'\n', &s[pos..]) {
            None => {
                self.cur().assign(T_COMMENT, pos, &s[pos..]);
                s.len()
            }
            Some(i) => {
                self.cur().assign(T_COMMENT, pos, &s[pos..pos + i]);
                pos + i + 1
            }
        }
    }

    fn parse_hash(&mut self) -> usize {
        self.stats_comment_hash += 1;
        if self.flags & FLAG_SQL_MYSQL != 0 {
            self.stats_comment_hash += 1;
            self.parse_eol_comment()
        } else {
            let pos = self.pos;
            self.cur().assign_char(T_OPERATOR, pos, b'#');
            pos + 1
        }
    }

    fn parse_dash(&mut self) -> usize {
        let (s, pos) = (self.s, self.pos);
        let slen = s.len();
        if pos + 2 < slen && s[pos + 1] == b'-' && is_white(s[pos + 2]) {
            self.parse_eol_comment()
        } else if pos + 2 == slen && s[pos + 1] == b'-' {
            self.parse_eol_comment()
        } else if pos + 1 < slen && s[pos + 1] == b'-' && self.flags & FLAG_SQL_ANSI != 0 {
            self.stats_comment_ddx += 1;
            self.parse_eol_comment()
        } else {
            self.cur().assign_char(T_OPERATOR, pos, b'-');
            pos + 1
        }
    }

    fn parse_slash(&mut self) -> usize {
        let (s, pos) = (self.s, self.pos);
        let slen = s.len();
        if pos + 1 == slen || s[pos + 1] != b'*' {
            return self.parse_operator1();
        }
        let end = find2(s, pos + 2, b'*', b'/');
        let clen = match end {
            None => slen - pos,
            Some(e) => e + 2 - pos,
        };
        // A `/*` inside the comment (PostgreSQL nests them) or MySQL's `/*!` cannot be
        // parsed consistently: evil. The C code searches `ptr - (cur + 1)` bytes from
        // `cur + 2`; when there is no end that length wraps, i.e. the whole rest.
        let inner_end = match end {
            Some(e) => (e + 1).min(slen),
            None => slen,
        };
        let nested = pos + 2 <= inner_end && find2(&s[..inner_end], pos + 2, b'/', b'*').is_some();
        let ty = if nested || (pos + 2 < slen && s[pos + 2] == b'!') {
            T_EVIL
        } else {
            T_COMMENT
        };
        self.cur().assign(ty, pos, &s[pos..pos + clen]);
        pos + clen
    }

    fn parse_backslash(&mut self) -> usize {
        let (s, pos) = (self.s, self.pos);
        if pos + 1 < s.len() && s[pos + 1] == b'N' {
            self.cur().assign(T_NUMBER, pos, &s[pos..pos + 2]);
            pos + 2
        } else {
            self.cur().assign_char(T_BACKSLASH, pos, s[pos]);
            pos + 1
        }
    }

    fn parse_operator2(&mut self) -> usize {
        let (s, pos) = (self.s, self.pos);
        let slen = s.len();
        if pos + 1 >= slen {
            return self.parse_operator1();
        }
        if pos + 2 < slen && &s[pos..pos + 3] == b"<=>" {
            self.cur().assign(T_OPERATOR, pos, &s[pos..pos + 3]);
            return pos + 3;
        }
        let ch = lookup_word(&s[pos..pos + 2]);
        if ch != T_NONE {
            self.cur().assign(ch, pos, &s[pos..pos + 2]);
            return pos + 2;
        }
        if s[pos] == b':' {
            self.cur().assign(T_COLON, pos, &s[pos..pos + 1]);
            pos + 1
        } else {
            self.parse_operator1()
        }
    }

    fn parse_string(&mut self) -> usize {
        let (s, pos) = (self.s, self.pos);
        let cur = self.current;
        parse_string_core(s, pos, &mut self.tokens[cur], s[pos], 1)
    }

    fn parse_estring(&mut self) -> usize {
        let (s, pos) = (self.s, self.pos);
        if pos + 2 >= s.len() || s[pos + 1] != b'\'' {
            return self.parse_word();
        }
        let cur = self.current;
        parse_string_core(s, pos, &mut self.tokens[cur], b'\'', 2)
    }

    fn parse_ustring(&mut self) -> usize {
        let (s, pos) = (self.s, self.pos);
        if pos + 2 < s.len() && s[pos + 1] == b'&' && s[pos + 2] == b'\'' {
            self.pos += 2;
            let p = self.parse_string();
            let t = self.cur();
            t.str_open = b'u';
            if t.str_close == b'\'' {
                t.str_close = b'u';
            }
            p
        } else {
            self.parse_word()
        }
    }

    fn parse_qstring_core(&mut self, offset: usize) -> usize {
        let s = self.s;
        let slen = s.len();
        let pos = self.pos + offset;
        if pos >= slen || !matches!(s[pos], b'q' | b'Q') || pos + 2 >= slen || s[pos + 1] != b'\'' {
            return self.parse_word();
        }
        let mut ch = s[pos + 2];
        // The C code reads a signed char: bytes ≥ 0x80 are "< 33" too.
        if !(33..0x80).contains(&ch) {
            return self.parse_word();
        }
        ch = match ch {
            b'(' => b')',
            b'[' => b']',
            b'{' => b'}',
            b'<' => b'>',
            c => c,
        };
        match find2(s, pos + 3, ch, b'\'') {
            None => {
                let t = self.cur();
                t.assign(T_STRING, pos + 3, &s[pos + 3..]);
                t.str_open = b'q';
                t.str_close = 0;
                slen
            }
            Some(e) => {
                let t = self.cur();
                t.assign(T_STRING, pos + 3, &s[pos + 3..e]);
                t.str_open = b'q';
                t.str_close = b'q';
                e + 2
            }
        }
    }

    fn parse_nqstring(&mut self) -> usize {
        let (s, pos) = (self.s, self.pos);
        if pos + 2 < s.len() && s[pos + 1] == b'\'' {
            return self.parse_estring();
        }
        self.parse_qstring_core(1)
    }

    fn parse_bxstring(&mut self, digits: &[u8]) -> usize {
        let (s, pos) = (self.s, self.pos);
        let slen = s.len();
        if pos + 2 >= slen || s[pos + 1] != b'\'' {
            return self.parse_word();
        }
        let wlen = span(s, pos + 2, digits);
        if pos + 2 + wlen >= slen || s[pos + 2 + wlen] != b'\'' {
            return self.parse_word();
        }
        self.cur().assign(T_NUMBER, pos, &s[pos..pos + wlen + 3]);
        pos + 2 + wlen + 1
    }

    fn parse_bword(&mut self) -> usize {
        let (s, pos) = (self.s, self.pos);
        match memchr::memchr(b']', &s[pos..]) {
            None => {
                self.cur().assign(T_BAREWORD, pos, &s[pos..]);
                s.len()
            }
            Some(i) => {
                self.cur().assign(T_BAREWORD, pos, &s[pos..pos + i + 1]);
                pos + i + 1
            }
        }
    }

    fn parse_word(&mut self) -> usize {
        let (s, pos) = (self.s, self.pos);
        let wlen = cspan(s, pos, &WORD_END);
        self.cur().assign(T_BAREWORD, pos, &s[pos..pos + wlen]);
        let t = *self.cur();
        for i in 0..t.len {
            let d = t.val[i];
            if d == b'.' || d == b'`' {
                let ch = lookup_word(&t.val[..i]);
                if ch != T_NONE && ch != T_BAREWORD {
                    let c = self.cur();
                    *c = Token::EMPTY;
                    c.assign(ch, pos, &s[pos..pos + i]);
                    return pos + i;
                }
            }
        }
        if wlen < TOKEN_SIZE {
            let ch = lookup_word(&t.val[..t.len]);
            self.cur().ty = if ch == T_NONE { T_BAREWORD } else { ch };
        }
        pos + wlen
    }

    fn parse_tick(&mut self) -> usize {
        let (s, pos) = (self.s, self.pos);
        let cur = self.current;
        let p = parse_string_core(s, pos, &mut self.tokens[cur], b'`', 1);
        let t = &mut self.tokens[cur];
        t.ty = if lookup_word(t.val()) == T_FUNCTION {
            T_FUNCTION
        } else {
            T_BAREWORD
        };
        p
    }

    fn parse_var(&mut self) -> usize {
        let s = self.s;
        let slen = s.len();
        let mut pos = self.pos + 1;
        if pos < slen && s[pos] == b'@' {
            pos += 1;
        }
        if pos < slen {
            if s[pos] == b'`' {
                self.pos = pos;
                let p = self.parse_tick();
                self.cur().ty = T_VARIABLE;
                return p;
            } else if s[pos] == b'\'' || s[pos] == b'"' {
                self.pos = pos;
                let p = self.parse_string();
                self.cur().ty = T_VARIABLE;
                return p;
            }
        }
        let xlen = cspan(s, pos, &VAR_END);
        self.cur().assign(T_VARIABLE, pos, &s[pos..pos + xlen]);
        pos + xlen
    }

    fn parse_money(&mut self) -> usize {
        let (s, pos) = (self.s, self.pos);
        let slen = s.len();
        if pos + 1 == slen {
            self.cur().assign_char(T_BAREWORD, pos, b'$');
            return slen;
        }
        let xlen = span(s, pos + 1, b"0123456789.,");
        if xlen == 0 {
            if s[pos + 1] == b'$' {
                match find2(s, pos + 2, b'$', b'$') {
                    None => {
                        let t = self.cur();
                        t.assign(T_STRING, pos + 2, &s[pos + 2..]);
                        t.str_open = b'$';
                        t.str_close = 0;
                        slen
                    }
                    Some(e) => {
                        let t = self.cur();
                        t.assign(T_STRING, pos + 2, &s[pos + 2..e]);
                        t.str_open = b'$';
                        t.str_close = b'$';
                        e + 2
                    }
                }
            } else {
                let xlen = span(
                    s,
                    pos + 1,
                    b"abcdefghjiklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
                );
                if xlen == 0 {
                    self.cur().assign_char(T_BAREWORD, pos, b'$');
                    return pos + 1;
                }
                if pos + xlen + 1 == slen || s[pos + xlen + 1] != b'$' {
                    self.cur().assign_char(T_BAREWORD, pos, b'$');
                    return pos + 1;
                }
                // `$tag$ … $tag$`. The C code searches from `cs + xlen + 2` (not from
                // `pos`) and then rejects a hit before the opening tag's end.
                let tag = &s[pos..pos + xlen + 2];
                let from = xlen + 2;
                let hit = if from <= slen {
                    memchr::memmem::find(&s[from..], tag).map(|i| from + i)
                } else {
                    None
                };
                match hit {
                    Some(e) if e >= pos + xlen + 2 => {
                        let t = self.cur();
                        t.assign(T_STRING, pos + xlen + 2, &s[pos + xlen + 2..e]);
                        t.str_open = b'$';
                        t.str_close = b'$';
                        e + xlen + 2
                    }
                    _ => {
                        let t = self.cur();
                        t.assign(T_STRING, pos + xlen + 2, &s[pos + xlen + 2..]);
                        t.str_open = b'$';
                        t.str_close = 0;
                        slen
                    }
                }
            }
        } else if xlen == 1 && s[pos + 1] == b'.' {
            self.parse_word()
        } else {
            self.cur().assign(T_NUMBER, pos, &s[pos..pos + 1 + xlen]);
            pos + 1 + xlen
        }
    }

    fn parse_number(&mut self) -> usize {
        let s = self.s;
        let slen = s.len();
        let mut pos = self.pos;
        if s[pos] == b'0' && pos + 1 < slen {
            let digits: Option<&[u8]> = match s[pos + 1] {
                b'X' | b'x' => Some(b"0123456789ABCDEFabcdef"),
                b'B' | b'b' => Some(b"01"),
                _ => None,
            };
            if let Some(d) = digits {
                let xlen = span(s, pos + 2, d);
                if xlen == 0 {
                    self.cur().assign(T_BAREWORD, pos, &s[pos..pos + 2]);
                    return pos + 2;
                }
                self.cur().assign(T_NUMBER, pos, &s[pos..pos + 2 + xlen]);
                return pos + 2 + xlen;
            }
        }
        let start = pos;
        while pos < slen && s[pos].is_ascii_digit() {
            pos += 1;
        }
        if pos < slen && s[pos] == b'.' {
            pos += 1;
            while pos < slen && s[pos].is_ascii_digit() {
                pos += 1;
            }
            if pos - start == 1 {
                self.cur().assign_char(T_DOT, start, b'.');
                return pos;
            }
        }
        let (mut have_e, mut have_exp) = (false, false);
        if pos < slen && matches!(s[pos], b'E' | b'e') {
            have_e = true;
            pos += 1;
            if pos < slen && matches!(s[pos], b'+' | b'-') {
                pos += 1;
            }
            while pos < slen && s[pos].is_ascii_digit() {
                have_exp = true;
                pos += 1;
            }
        }
        if pos < slen && matches!(s[pos], b'd' | b'D' | b'f' | b'F') {
            if pos + 1 == slen
                || is_white(s[pos + 1])
                || s[pos + 1] == b';'
                || matches!(s[pos + 1], b'u' | b'U')
            {
                pos += 1;
            }
        }
        let ty = if have_e && !have_exp {
            T_BAREWORD
        } else {
            T_NUMBER
        };
        self.cur().assign(ty, start, &s[start..pos]);
        pos
    }

    fn dispatch(&mut self, c: u8) -> usize {
        match c {
            0..=32 | 127 | 160 => self.parse_white(),
            b'!' | b'&' | b'*' | b':' | b'<' | b'=' | b'>' | b'|' => self.parse_operator2(),
            b'"' | b'\'' => self.parse_string(),
            b'#' => self.parse_hash(),
            b'$' => self.parse_money(),
            b'%' | b'+' | b'^' | b'~' => self.parse_operator1(),
            b'(' | b')' | b',' | b';' | b'{' | b'}' => self.parse_char(),
            b'-' => self.parse_dash(),
            b'.' | b'0'..=b'9' => self.parse_number(),
            b'/' => self.parse_slash(),
            b'?' | b']' => self.parse_other(),
            b'@' => self.parse_var(),
            b'B' | b'b' => self.parse_bxstring(b"01"),
            b'E' | b'e' => self.parse_estring(),
            b'N' | b'n' => self.parse_nqstring(),
            b'Q' | b'q' => self.parse_qstring_core(0),
            b'U' | b'u' => self.parse_ustring(),
            b'X' | b'x' => self.parse_bxstring(b"0123456789ABCDEFabcdef"),
            b'[' => self.parse_bword(),
            b'\\' => self.parse_backslash(),
            b'`' => self.parse_tick(),
            _ => self.parse_word(),
        }
    }

    /// The next token into `tokens[current]`; false at the end of the input.
    fn tokenize(&mut self) -> bool {
        let s = self.s;
        if s.is_empty() {
            return false;
        }
        *self.cur() = Token::EMPTY;
        if self.pos == 0 && self.flags & (FLAG_QUOTE_SINGLE | FLAG_QUOTE_DOUBLE) != 0 {
            let delim = if self.flags & FLAG_QUOTE_SINGLE != 0 {
                b'\''
            } else {
                b'"'
            };
            let cur = self.current;
            self.pos = parse_string_core(s, 0, &mut self.tokens[cur], delim, 0);
            self.stats_tokens += 1;
            return true;
        }
        while self.pos < s.len() {
            self.pos = self.dispatch(s[self.pos]);
            if self.cur().ty != T_NONE {
                self.stats_tokens += 1;
                return true;
            }
        }
        false
    }

    fn merge_words(&mut self, a: usize, b: usize) -> bool {
        let (ta, tb) = (self.tokens[a], self.tokens[b]);
        let ok_a = matches!(
            ta.ty,
            T_KEYWORD
                | T_BAREWORD
                | T_OPERATOR
                | T_UNION
                | T_FUNCTION
                | T_EXPRESSION
                | T_TSQL
                | T_SQLTYPE
        );
        let ok_b = matches!(
            tb.ty,
            T_KEYWORD
                | T_BAREWORD
                | T_OPERATOR
                | T_UNION
                | T_FUNCTION
                | T_EXPRESSION
                | T_TSQL
                | T_SQLTYPE
                | T_LOGIC
        );
        if !ok_a || !ok_b {
            return false;
        }
        let sz3 = ta.len + tb.len + 1;
        if sz3 >= TOKEN_SIZE {
            return false;
        }
        let mut tmp = [0u8; TOKEN_SIZE];
        tmp[..ta.len].copy_from_slice(ta.val());
        tmp[ta.len] = b' ';
        tmp[ta.len + 1..sz3].copy_from_slice(tb.val());
        let ch = lookup_word(&tmp[..sz3]);
        if ch != T_NONE {
            let pos = ta.pos;
            self.tokens[a].assign(ch, pos, &tmp[..sz3]);
            true
        } else {
            false
        }
    }

    /// Reads tokens into `tokens[pos]` until `pos - left` reaches `want`; comments are kept
    /// aside in `last_comment`.
    fn fetch(
        &mut self,
        more: &mut bool,
        pos: &mut usize,
        left: usize,
        want: usize,
        last_comment: &mut Token,
    ) {
        while *more && *pos <= MAX_TOKENS && *pos - left < want {
            self.current = *pos;
            *more = self.tokenize();
            if *more {
                if self.tokens[*pos].ty == T_COMMENT {
                    *last_comment = self.tokens[*pos];
                } else {
                    last_comment.ty = T_NONE;
                    *pos += 1;
                }
            }
        }
    }

    /// libinjection_sqli_fold: returns the number of tokens.
    fn fold(&mut self) -> usize {
        let mut last_comment = Token::EMPTY;
        let mut pos = 0usize;
        let mut left = 0usize;
        let mut more = true;

        self.current = 0;
        while more {
            more = self.tokenize();
            let t = &self.tokens[0];
            if !(t.ty == T_COMMENT || t.ty == T_LPAREN || t.ty == T_SQLTYPE || t.is_unary_op()) {
                break;
            }
        }
        if !more {
            return 0;
        }
        pos += 1;

        // Every pass either folds (the token count drops) or reads input; the guard only
        // bounds a pathological loop.
        let mut guard = 0usize;
        loop {
            guard += 1;
            if guard > 16 * self.s.len() + 64 {
                break;
            }
            if pos >= MAX_TOKENS {
                let t = |i: usize| self.tokens[i].ty;
                if (t(0) == T_NUMBER
                    && (t(1) == T_OPERATOR || t(1) == T_COMMA)
                    && t(2) == T_LPAREN
                    && t(3) == T_NUMBER
                    && t(4) == T_RPAREN)
                    || (t(0) == T_BAREWORD
                        && t(1) == T_OPERATOR
                        && t(2) == T_LPAREN
                        && (t(3) == T_BAREWORD || t(3) == T_NUMBER)
                        && t(4) == T_RPAREN)
                    || (t(0) == T_NUMBER
                        && t(1) == T_RPAREN
                        && t(2) == T_COMMA
                        && t(3) == T_LPAREN
                        && t(4) == T_NUMBER)
                    || (t(0) == T_BAREWORD
                        && t(1) == T_RPAREN
                        && t(2) == T_OPERATOR
                        && t(3) == T_LPAREN
                        && t(4) == T_BAREWORD)
                {
                    if pos > MAX_TOKENS {
                        self.tokens[1] = self.tokens[MAX_TOKENS];
                        pos = 2;
                    } else {
                        pos = 1;
                    }
                    left = 0;
                }
            }

            if !more || left >= MAX_TOKENS {
                left = pos;
                break;
            }

            self.fetch(&mut more, &mut pos, left, 2, &mut last_comment);
            if pos - left < 2 {
                left = pos;
                continue;
            }

            let a = self.tokens[left];
            let b = self.tokens[left + 1];
            if a.ty == T_STRING && b.ty == T_STRING {
                pos -= 1;
                continue;
            } else if a.ty == T_SEMICOLON && b.ty == T_SEMICOLON {
                pos -= 1;
                continue;
            } else if (a.ty == T_OPERATOR || a.ty == T_LOGIC)
                && (b.is_unary_op() || b.ty == T_SQLTYPE)
            {
                pos -= 1;
                left = 0;
                continue;
            } else if a.ty == T_LPAREN && b.is_unary_op() {
                pos -= 1;
                left = left.saturating_sub(1);
                continue;
            } else if self.merge_words(left, left + 1) {
                pos -= 1;
                left = left.saturating_sub(1);
                continue;
            } else if a.ty == T_SEMICOLON
                && b.ty == T_FUNCTION
                && b.len >= 2
                && b.val[0].eq_ignore_ascii_case(&b'I')
                && b.val[1].eq_ignore_ascii_case(&b'F')
            {
                self.tokens[left + 1].ty = T_TSQL;
                continue;
            } else if (a.ty == T_BAREWORD || a.ty == T_VARIABLE)
                && b.ty == T_LPAREN
                && [
                    &b"USER_ID"[..],
                    b"USER_NAME",
                    b"DATABASE",
                    b"PASSWORD",
                    b"USER",
                    b"CURRENT_USER",
                    b"CURRENT_DATE",
                    b"CURRENT_TIME",
                    b"CURRENT_TIMESTAMP",
                    b"LOCALTIME",
                    b"LOCALTIMESTAMP",
                ]
                .iter()
                .any(|w| a.is(w))
            {
                self.tokens[left].ty = T_FUNCTION;
                continue;
            } else if a.ty == T_KEYWORD && (a.is(b"IN") || a.is(b"NOT IN")) {
                self.tokens[left].ty = if b.ty == T_LPAREN {
                    T_OPERATOR
                } else {
                    T_BAREWORD
                };
                continue;
            } else if a.ty == T_OPERATOR && (a.is(b"LIKE") || a.is(b"NOT LIKE")) {
                if b.ty == T_LPAREN {
                    self.tokens[left].ty = T_FUNCTION;
                }
            } else if a.ty == T_SQLTYPE
                && matches!(
                    b.ty,
                    T_BAREWORD
                        | T_NUMBER
                        | T_SQLTYPE
                        | T_LPAREN
                        | T_FUNCTION
                        | T_VARIABLE
                        | T_STRING
                )
            {
                self.tokens[left] = b;
                pos -= 1;
                left = 0;
                continue;
            } else if a.ty == T_COLLATE && b.ty == T_BAREWORD {
                if b.val().contains(&b'_') {
                    self.tokens[left + 1].ty = T_SQLTYPE;
                    left = 0;
                }
            } else if a.ty == T_BACKSLASH {
                if b.is_arithmetic_op() {
                    self.tokens[left].ty = T_NUMBER;
                } else {
                    self.tokens[left] = b;
                    pos -= 1;
                }
                left = 0;
                continue;
            } else if a.ty == T_LPAREN && b.ty == T_LPAREN {
                pos -= 1;
                left = 0;
                continue;
            } else if a.ty == T_RPAREN && b.ty == T_RPAREN {
                pos -= 1;
                left = 0;
                continue;
            } else if a.ty == T_LBRACE && b.ty == T_BAREWORD {
                if b.len == 0 {
                    self.tokens[left + 1].ty = T_EVIL;
                    return left + 2;
                }
                left = 0;
                pos -= 2;
                continue;
            } else if b.ty == T_RBRACE {
                pos -= 1;
                left = 0;
                continue;
            }

            self.fetch(&mut more, &mut pos, left, 3, &mut last_comment);
            if pos - left < 3 {
                left = pos;
                continue;
            }

            let a = self.tokens[left];
            let b = self.tokens[left + 1];
            let c = self.tokens[left + 2];
            if a.ty == T_NUMBER && b.ty == T_OPERATOR && c.ty == T_NUMBER {
                pos -= 2;
                left = 0;
                continue;
            } else if a.ty == T_OPERATOR && b.ty != T_LPAREN && c.ty == T_OPERATOR {
                left = 0;
                pos -= 2;
                continue;
            } else if a.ty == T_LOGIC && c.ty == T_LOGIC {
                pos -= 2;
                left = 0;
                continue;
            } else if a.ty == T_VARIABLE
                && b.ty == T_OPERATOR
                && matches!(c.ty, T_VARIABLE | T_NUMBER | T_BAREWORD)
            {
                pos -= 2;
                left = 0;
                continue;
            } else if matches!(a.ty, T_BAREWORD | T_NUMBER)
                && b.ty == T_OPERATOR
                && matches!(c.ty, T_NUMBER | T_BAREWORD)
            {
                pos -= 2;
                left = 0;
                continue;
            } else if matches!(a.ty, T_BAREWORD | T_NUMBER | T_VARIABLE | T_STRING)
                && b.ty == T_OPERATOR
                && b.val() == b"::"
                && c.ty == T_SQLTYPE
            {
                pos -= 2;
                left = 0;
                continue;
            } else if matches!(a.ty, T_BAREWORD | T_NUMBER | T_STRING | T_VARIABLE)
                && b.ty == T_COMMA
                && matches!(c.ty, T_NUMBER | T_BAREWORD | T_STRING | T_VARIABLE)
            {
                pos -= 2;
                left = 0;
                continue;
            } else if matches!(a.ty, T_EXPRESSION | T_GROUP | T_COMMA)
                && b.is_unary_op()
                && c.ty == T_LPAREN
            {
                self.tokens[left + 1] = c;
                pos -= 1;
                left = 0;
                continue;
            } else if matches!(a.ty, T_KEYWORD | T_EXPRESSION | T_GROUP)
                && b.is_unary_op()
                && matches!(
                    c.ty,
                    T_NUMBER | T_BAREWORD | T_VARIABLE | T_STRING | T_FUNCTION
                )
            {
                self.tokens[left + 1] = c;
                pos -= 1;
                left = 0;
                continue;
            } else if a.ty == T_COMMA
                && b.is_unary_op()
                && matches!(c.ty, T_NUMBER | T_BAREWORD | T_VARIABLE | T_STRING)
            {
                self.tokens[left + 1] = c;
                left = 0;
                pos -= 3;
                continue;
            } else if a.ty == T_COMMA && b.is_unary_op() && c.ty == T_FUNCTION {
                self.tokens[left + 1] = c;
                pos -= 1;
                left = 0;
                continue;
            } else if a.ty == T_BAREWORD && b.ty == T_DOT && c.ty == T_BAREWORD {
                pos -= 2;
                left = 0;
                continue;
            } else if a.ty == T_EXPRESSION && b.ty == T_DOT && c.ty == T_BAREWORD {
                self.tokens[left + 1] = c;
                pos -= 1;
                left = 0;
                continue;
            } else if a.ty == T_FUNCTION && b.ty == T_LPAREN && c.ty != T_RPAREN {
                // `USER(foo)`: USER takes no arguments, so it is not the function.
                if a.is(b"USER") {
                    self.tokens[left].ty = T_BAREWORD;
                }
            }
            left += 1;
        }

        if left < MAX_TOKENS && last_comment.ty == T_COMMENT {
            self.tokens[left] = last_comment;
            left += 1;
        }
        left.min(MAX_TOKENS)
    }

    /// libinjection_sqli_fingerprint.
    fn fingerprint(&mut self, flags: u8) {
        self.reset(flags);
        let tlen = self.fold();
        if tlen > 2 {
            let t = &mut self.tokens[tlen - 1];
            if t.ty == T_BAREWORD && t.str_open == b'`' && t.len == 0 && t.str_close == 0 {
                t.ty = T_COMMENT;
            }
        }
        for i in 0..tlen {
            self.fingerprint[i] = self.tokens[i].ty;
        }
        self.fp_len = tlen;
        if self.fingerprint[..tlen].contains(&T_EVIL) {
            self.fingerprint = [0; 8];
            self.fingerprint[0] = T_EVIL;
            self.fp_len = 1;
            self.tokens[0].ty = T_EVIL;
            self.tokens[0].val = [0; TOKEN_SIZE];
            self.tokens[0].val[0] = T_EVIL;
            self.tokens[0].len = 1;
            self.tokens[1].ty = T_NONE;
        }
    }

    fn fp(&self) -> &[u8] {
        &self.fingerprint[..self.fp_len]
    }

    /// libinjection_sqli_check_fingerprint: in the list, and past the false-positive filter.
    fn check_fingerprint(&self) -> bool {
        let fp = self.fp();
        !fp.is_empty() && is_fingerprint(fp) && self.not_whitelist()
    }

    /// libinjection_sqli_not_whitelist: true when the (listed) fingerprint is SQLi.
    fn not_whitelist(&self) -> bool {
        let fp = self.fp();
        let tlen = fp.len();
        let tok = &self.tokens;
        let s = self.s;
        if tlen > 1
            && fp[tlen - 1] == T_COMMENT
            && memchr::memmem::find(s, b"sp_password").is_some()
        {
            return true;
        }
        match tlen {
            2 => {
                if fp[1] == T_UNION {
                    return self.stats_tokens != 2;
                }
                if tok[1].val[0] == b'#' {
                    return false;
                }
                if tok[0].ty == T_BAREWORD && tok[1].ty == T_COMMENT && tok[1].val[0] != b'/' {
                    return false;
                }
                if tok[0].ty == T_NUMBER && tok[1].ty == T_COMMENT && tok[1].val[0] == b'/' {
                    return true;
                }
                if tok[0].ty == T_NUMBER && tok[1].ty == T_COMMENT {
                    if self.stats_tokens > 2 {
                        return true;
                    }
                    let at = |i: usize| s.get(i).copied().unwrap_or(0);
                    let ch = at(tok[0].len);
                    if ch <= 32 {
                        return true;
                    }
                    if ch == b'/' && at(tok[0].len + 1) == b'*' {
                        return true;
                    }
                    if ch == b'-' && at(tok[0].len + 1) == b'-' {
                        return true;
                    }
                    return false;
                }
                if tok[1].len > 2 && tok[1].val[0] == b'-' {
                    return false;
                }
            }
            3 => {
                if fp == b"sos" || fp == b"s&s" {
                    return tok[0].str_open == 0
                        && tok[2].str_close == 0
                        && tok[0].str_close == tok[2].str_open;
                } else if matches!(fp, b"s&n" | b"n&1" | b"1&1" | b"1&v" | b"1&s") {
                    if self.stats_tokens == 3 {
                        return false;
                    }
                } else if tok[1].ty == T_KEYWORD
                    && (tok[1].len < 5 || !tok[1].val[..4].eq_ignore_ascii_case(b"INTO"))
                {
                    // Only `INTO OUTFILE` / `INTO DUMPFILE` count.
                    return false;
                }
            }
            _ => {}
        }
        true
    }

    fn reparse_as_mysql(&self) -> bool {
        self.stats_comment_ddx != 0 || self.stats_comment_hash != 0
    }
}

/// parse_string_core: a string delimited by `delim` starting at `pos + offset` (offset 0:
/// the input began inside the string).
fn parse_string_core(s: &[u8], pos: usize, st: &mut Token, delim: u8, offset: usize) -> usize {
    let start = pos + offset;
    let mut q = if start <= s.len() {
        memchr::memchr(delim, &s[start..]).map(|i| start + i)
    } else {
        None
    };
    st.str_open = if offset > 0 { delim } else { 0 };
    loop {
        match q {
            None => {
                st.assign(T_STRING, start, &s[start.min(s.len())..]);
                st.str_close = 0;
                return s.len();
            }
            Some(qp) => {
                // An odd number of backslashes right before the quote escapes it.
                let mut n = 0;
                while qp > start + n && s[qp - 1 - n] == b'\\' {
                    n += 1;
                }
                if n % 2 == 1 {
                    q = memchr::memchr(delim, &s[qp + 1..]).map(|i| qp + 1 + i);
                    continue;
                }
                if qp + 1 < s.len() && s[qp + 1] == delim {
                    q = if qp + 2 <= s.len() {
                        memchr::memchr(delim, &s[qp + 2..]).map(|i| qp + 2 + i)
                    } else {
                        None
                    };
                    continue;
                }
                st.assign(T_STRING, start, &s[start..qp]);
                st.str_close = delim;
                return qp + 1;
            }
        }
    }
}

/// Whether `input` is SQL injection (libinjection_is_sqli); returns the fingerprint.
pub(crate) fn detect(input: &[u8]) -> Option<String> {
    detect_fp(input).map(|(fp, n)| String::from_utf8_lossy(&fp[..n]).into_owned())
}

/// [`detect`] without allocation: the fingerprint bytes and their length.
pub(crate) fn detect_fp(input: &[u8]) -> Option<([u8; 8], usize)> {
    if input.is_empty() {
        return None;
    }
    let mut st = State::new(input, FLAG_QUOTE_NONE | FLAG_SQL_ANSI);
    let hit = |st: &State| {
        st.check_fingerprint()
            .then_some((st.fingerprint, st.fp_len))
    };

    st.fingerprint(FLAG_QUOTE_NONE | FLAG_SQL_ANSI);
    if let Some(r) = hit(&st) {
        return Some(r);
    } else if st.reparse_as_mysql() {
        st.fingerprint(FLAG_QUOTE_NONE | FLAG_SQL_MYSQL);
        if let Some(r) = hit(&st) {
            return Some(r);
        }
    }
    if memchr::memchr(b'\'', input).is_some() {
        st.fingerprint(FLAG_QUOTE_SINGLE | FLAG_SQL_ANSI);
        if let Some(r) = hit(&st) {
            return Some(r);
        } else if st.reparse_as_mysql() {
            st.fingerprint(FLAG_QUOTE_SINGLE | FLAG_SQL_MYSQL);
            if let Some(r) = hit(&st) {
                return Some(r);
            }
        }
    }
    if memchr::memchr(b'"', input).is_some() {
        st.fingerprint(FLAG_QUOTE_DOUBLE | FLAG_SQL_MYSQL);
        if let Some(r) = hit(&st) {
            return Some(r);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        for (input, fp) in [
            ("1' or '1'='1", Some("s&sos")),
            ("1 union select password from users", Some("1UEnk")),
            ("admin'--", Some("sc")),
            ("1; drop table users", Some("1;Tnn")),
            ("-1 UNION ALL SELECT 1,2,3--", Some("1UE1c")),
            ("hello world", None),
            ("red shoes size 42", None),
            ("O'Brien", None),
            ("1 union", None),
            ("sexy and 17", None),
            ("foo' + 'bar", Some("sos")),
        ] {
            assert_eq!(detect(input.as_bytes()).as_deref(), fp, "{input}");
        }
    }
}
