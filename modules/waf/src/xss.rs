//! Cross-site scripting detection: a port of libinjection's HTML5 tokenizer and XSS check
//! (libinjection 3.9, `src/libinjection_html5.c` and `src/libinjection_xss.c`, Copyright (c)
//! 2012-2016 Nick Galbreath, BSD 3-clause licence, full text in
//! `modules/waf/data/libinjection-COPYING`).
//!
//! The input is tokenized the way an HTML5 parser would see it when it is dropped into a page
//! in five places: as text, and as an attribute value unquoted, in `'`, in `"` and in
//! backquotes. It is XSS when the tokens show a doctype, a dangerous tag (`script`, `iframe`,
//! anything `svg`/`xsl`…), an event handler or other dangerous attribute, a `javascript:` /
//! `data:` / `vbscript:` / `view-source:` URL in a URL attribute (HTML entities decoded), a
//! style attribute, or an IE conditional / XML comment. No allocation.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Tok {
    DataText,
    TagNameOpen,
    TagNameClose,
    TagNameSelfClose,
    TagClose,
    AttrName,
    AttrValue,
    TagComment,
    Doctype,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum St {
    Eof,
    Data,
    TagOpen,
    TagNameClose,
    BeforeAttrName,
    AfterAttrName,
    BeforeAttrValue,
    ValueQuote(u8),
    AfterValueQuoted,
    SelfClosingStartTag,
}

/// Where the input is assumed to land in a page (libinjection's `html5_flags`).
#[derive(Clone, Copy)]
enum Start {
    Data,
    ValueNoQuote,
    ValueSingle,
    ValueDouble,
    ValueBack,
}

struct H5<'a> {
    s: &'a [u8],
    pos: usize,
    is_close: bool,
    state: St,
    tok_start: usize,
    tok_len: usize,
    tok: Tok,
}

/// libinjection's `h5_is_white` uses `strchr`, which also finds the terminating NUL.
fn h5_white(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0)
}

impl<'a> H5<'a> {
    fn new(s: &'a [u8], start: Start) -> Self {
        let state = match start {
            Start::Data => St::Data,
            Start::ValueNoQuote => St::BeforeAttrName,
            Start::ValueSingle => St::ValueQuote(b'\''),
            Start::ValueDouble => St::ValueQuote(b'"'),
            Start::ValueBack => St::ValueQuote(b'`'),
        };
        H5 {
            s,
            pos: 0,
            is_close: false,
            state,
            tok_start: 0,
            tok_len: 0,
            tok: Tok::DataText,
        }
    }

    fn token(&self) -> &'a [u8] {
        &self.s[self.tok_start..self.tok_start + self.tok_len]
    }

    fn emit(&mut self, tok: Tok, start: usize, len: usize) -> bool {
        self.tok = tok;
        self.tok_start = start;
        self.tok_len = len;
        true
    }

    fn next(&mut self) -> bool {
        match self.state {
            St::Eof => false,
            St::Data => self.data(),
            St::TagOpen => self.tag_open(),
            St::TagNameClose => self.tag_name_close(),
            St::BeforeAttrName => self.before_attr_name(),
            St::AfterAttrName => self.after_attr_name(),
            St::BeforeAttrValue => self.before_attr_value(),
            St::ValueQuote(q) => self.value_quote(q),
            St::AfterValueQuoted => self.after_value_quoted(),
            St::SelfClosingStartTag => self.self_closing_start_tag(),
        }
    }

    fn skip_white(&mut self) -> Option<u8> {
        while self.pos < self.s.len() {
            let c = self.s[self.pos];
            if matches!(c, 0 | b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
                self.pos += 1;
            } else {
                return Some(c);
            }
        }
        None
    }

    fn data(&mut self) -> bool {
        let (s, pos) = (self.s, self.pos);
        match memchr::memchr(b'<', &s[pos..]) {
            None => {
                self.state = St::Eof;
                let len = s.len() - pos;
                self.emit(Tok::DataText, pos, len);
                len != 0
            }
            Some(i) => {
                self.emit(Tok::DataText, pos, i);
                self.pos = pos + i + 1;
                self.state = St::TagOpen;
                if i == 0 {
                    return self.tag_open();
                }
                true
            }
        }
    }

    fn tag_open(&mut self) -> bool {
        let s = self.s;
        if self.pos >= s.len() {
            return false;
        }
        match s[self.pos] {
            b'!' => {
                self.pos += 1;
                self.markup_declaration_open()
            }
            b'/' => {
                self.pos += 1;
                self.is_close = true;
                self.end_tag_open()
            }
            b'?' => {
                self.pos += 1;
                self.bogus_comment()
            }
            b'%' => {
                self.pos += 1;
                self.bogus_comment2()
            }
            c if c.is_ascii_alphabetic() || c == 0 => self.tag_name(),
            _ => {
                if self.pos == 0 {
                    return self.data();
                }
                self.state = St::Data;
                let p = self.pos - 1;
                self.emit(Tok::DataText, p, 1)
            }
        }
    }

    fn end_tag_open(&mut self) -> bool {
        let s = self.s;
        if self.pos >= s.len() {
            return false;
        }
        match s[self.pos] {
            b'>' => self.data(),
            c if c.is_ascii_alphabetic() => self.tag_name(),
            _ => {
                self.is_close = false;
                self.bogus_comment()
            }
        }
    }

    fn tag_name_close(&mut self) -> bool {
        self.is_close = false;
        let p = self.pos;
        self.pos += 1;
        self.state = if self.pos < self.s.len() {
            St::Data
        } else {
            St::Eof
        };
        self.emit(Tok::TagNameClose, p, 1)
    }

    fn tag_name(&mut self) -> bool {
        let s = self.s;
        let start = self.pos;
        let mut pos = start;
        while pos < s.len() {
            let c = s[pos];
            if c == 0 {
                pos += 1;
            } else if h5_white(c) {
                self.pos = pos + 1;
                self.state = St::BeforeAttrName;
                return self.emit(Tok::TagNameOpen, start, pos - start);
            } else if c == b'/' {
                self.pos = pos + 1;
                self.state = St::SelfClosingStartTag;
                return self.emit(Tok::TagNameOpen, start, pos - start);
            } else if c == b'>' {
                if self.is_close {
                    self.pos = pos + 1;
                    self.is_close = false;
                    self.state = St::Data;
                    return self.emit(Tok::TagClose, start, pos - start);
                }
                self.pos = pos;
                self.state = St::TagNameClose;
                return self.emit(Tok::TagNameOpen, start, pos - start);
            } else {
                pos += 1;
            }
        }
        self.state = St::Eof;
        self.emit(Tok::TagNameOpen, start, s.len() - start)
    }

    fn before_attr_name(&mut self) -> bool {
        match self.skip_white() {
            None => false,
            Some(b'/') => {
                self.pos += 1;
                self.self_closing_start_tag()
            }
            Some(b'>') => {
                self.state = St::Data;
                let p = self.pos;
                self.pos += 1;
                self.emit(Tok::TagNameClose, p, 1)
            }
            Some(_) => self.attr_name(),
        }
    }

    fn attr_name(&mut self) -> bool {
        let s = self.s;
        let start = self.pos;
        let mut pos = start + 1;
        while pos < s.len() {
            let c = s[pos];
            let (next, state) = if h5_white(c) {
                (pos + 1, St::AfterAttrName)
            } else if c == b'/' {
                (pos + 1, St::SelfClosingStartTag)
            } else if c == b'=' {
                (pos + 1, St::BeforeAttrValue)
            } else if c == b'>' {
                (pos, St::TagNameClose)
            } else {
                pos += 1;
                continue;
            };
            self.state = state;
            self.pos = next;
            return self.emit(Tok::AttrName, start, pos - start);
        }
        self.state = St::Eof;
        self.pos = s.len();
        self.emit(Tok::AttrName, start, s.len() - start)
    }

    fn after_attr_name(&mut self) -> bool {
        match self.skip_white() {
            None => false,
            Some(b'/') => {
                self.pos += 1;
                self.self_closing_start_tag()
            }
            Some(b'=') => {
                self.pos += 1;
                self.before_attr_value()
            }
            Some(b'>') => self.tag_name_close(),
            Some(_) => self.attr_name(),
        }
    }

    fn before_attr_value(&mut self) -> bool {
        match self.skip_white() {
            None => {
                self.state = St::Eof;
                false
            }
            Some(b'"') => self.value_quote(b'"'),
            Some(b'\'') => self.value_quote(b'\''),
            Some(b'`') => self.value_quote(b'`'),
            Some(_) => self.value_no_quote(),
        }
    }

    fn value_quote(&mut self, q: u8) -> bool {
        if self.pos > 0 {
            self.pos += 1;
        }
        let s = self.s;
        let pos = self.pos.min(s.len());
        match memchr::memchr(q, &s[pos..]) {
            None => {
                self.state = St::Eof;
                self.emit(Tok::AttrValue, pos, s.len() - pos)
            }
            Some(i) => {
                self.state = St::AfterValueQuoted;
                self.pos = pos + i + 1;
                self.emit(Tok::AttrValue, pos, i)
            }
        }
    }

    fn value_no_quote(&mut self) -> bool {
        let s = self.s;
        let start = self.pos;
        let mut pos = start;
        while pos < s.len() {
            let c = s[pos];
            if h5_white(c) {
                self.pos = pos + 1;
                self.state = St::BeforeAttrName;
                return self.emit(Tok::AttrValue, start, pos - start);
            } else if c == b'>' {
                self.pos = pos;
                self.state = St::TagNameClose;
                return self.emit(Tok::AttrValue, start, pos - start);
            }
            pos += 1;
        }
        self.state = St::Eof;
        self.emit(Tok::AttrValue, start, s.len() - start)
    }

    fn after_value_quoted(&mut self) -> bool {
        let s = self.s;
        if self.pos >= s.len() {
            return false;
        }
        let c = s[self.pos];
        if h5_white(c) {
            self.pos += 1;
            self.before_attr_name()
        } else if c == b'/' {
            self.pos += 1;
            self.self_closing_start_tag()
        } else if c == b'>' {
            let p = self.pos;
            self.pos += 1;
            self.state = St::Data;
            self.emit(Tok::TagNameClose, p, 1)
        } else {
            self.before_attr_name()
        }
    }

    fn self_closing_start_tag(&mut self) -> bool {
        let s = self.s;
        if self.pos >= s.len() {
            return false;
        }
        if s[self.pos] == b'>' {
            let p = self.pos.saturating_sub(1);
            self.state = St::Data;
            self.pos += 1;
            self.emit(Tok::TagNameSelfClose, p, 2)
        } else {
            self.before_attr_name()
        }
    }

    fn bogus_comment(&mut self) -> bool {
        let (s, pos) = (self.s, self.pos);
        match memchr::memchr(b'>', &s[pos..]) {
            None => {
                self.pos = s.len();
                self.state = St::Eof;
                self.emit(Tok::TagComment, pos, s.len() - pos)
            }
            Some(i) => {
                self.pos = pos + i + 1;
                self.state = St::Data;
                self.emit(Tok::TagComment, pos, i)
            }
        }
    }

    fn bogus_comment2(&mut self) -> bool {
        let s = self.s;
        let start = self.pos;
        let mut pos = start;
        loop {
            match memchr::memchr(b'%', &s[pos..]).map(|i| pos + i) {
                Some(idx) if idx + 1 < s.len() => {
                    if s[idx + 1] != b'>' {
                        pos = idx + 1;
                        continue;
                    }
                    self.pos = idx + 2;
                    self.state = St::Data;
                    return self.emit(Tok::TagComment, start, idx - start);
                }
                _ => {
                    self.pos = s.len();
                    self.state = St::Eof;
                    return self.emit(Tok::TagComment, start, s.len() - start);
                }
            }
        }
    }

    fn markup_declaration_open(&mut self) -> bool {
        let rest = &self.s[self.pos..];
        if rest.len() >= 7 && rest[..7].eq_ignore_ascii_case(b"DOCTYPE") {
            self.doctype()
        } else if rest.len() >= 7 && &rest[..7] == b"[CDATA[" {
            self.pos += 7;
            self.cdata()
        } else if rest.len() >= 2 && &rest[..2] == b"--" {
            self.pos += 2;
            self.comment()
        } else {
            self.bogus_comment()
        }
    }

    fn comment(&mut self) -> bool {
        let s = self.s;
        let end = s.len();
        let start = self.pos;
        let mut pos = start;
        let to_eof = |h: &mut Self| {
            h.state = St::Eof;
            h.emit(Tok::TagComment, start, end - start)
        };
        loop {
            let idx = match memchr::memchr(b'-', &s[pos..]) {
                Some(i) if pos + i + 3 <= end => pos + i,
                _ => return to_eof(self),
            };
            let mut off = 1;
            while idx + off < end && s[idx + off] == 0 {
                off += 1;
            }
            if idx + off == end {
                return to_eof(self);
            }
            let c = s[idx + off];
            if c != b'-' && c != b'!' {
                pos = idx + 1;
                continue;
            }
            off += 1;
            if idx + off == end {
                return to_eof(self);
            }
            if s[idx + off] != b'>' {
                pos = idx + 1;
                continue;
            }
            off += 1;
            self.pos = idx + off;
            self.state = St::Data;
            return self.emit(Tok::TagComment, start, idx - start);
        }
    }

    fn cdata(&mut self) -> bool {
        let s = self.s;
        let start = self.pos.min(s.len());
        let mut pos = start;
        loop {
            match memchr::memchr(b']', &s[pos..]).map(|i| pos + i) {
                Some(idx) if idx + 3 <= s.len() => {
                    if s[idx + 1] == b']' && s[idx + 2] == b'>' {
                        self.state = St::Data;
                        self.pos = idx + 3;
                        return self.emit(Tok::DataText, start, idx - start);
                    }
                    pos = idx + 1;
                }
                _ => {
                    self.state = St::Eof;
                    return self.emit(Tok::DataText, start, s.len() - start);
                }
            }
        }
    }

    fn doctype(&mut self) -> bool {
        let (s, pos) = (self.s, self.pos);
        match memchr::memchr(b'>', &s[pos..]) {
            None => {
                self.state = St::Eof;
                self.emit(Tok::Doctype, pos, s.len() - pos)
            }
            Some(i) => {
                self.state = St::Data;
                self.pos = pos + i + 1;
                self.emit(Tok::Doctype, pos, i)
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Attr {
    None,
    Black,
    Url,
    Style,
    Indirect,
}

const BLACK_ATTRS: &[(&[u8], Attr)] = &[
    (b"ACTION", Attr::Url),
    (b"ATTRIBUTENAME", Attr::Indirect),
    (b"BY", Attr::Url),
    (b"BACKGROUND", Attr::Url),
    (b"DATAFORMATAS", Attr::Black),
    (b"DATASRC", Attr::Black),
    (b"DYNSRC", Attr::Url),
    (b"FILTER", Attr::Style),
    (b"FORMACTION", Attr::Url),
    (b"FOLDER", Attr::Url),
    (b"FROM", Attr::Url),
    (b"HANDLER", Attr::Url),
    (b"HREF", Attr::Url),
    (b"LOWSRC", Attr::Url),
    (b"POSTER", Attr::Url),
    (b"SRC", Attr::Url),
    (b"STYLE", Attr::Style),
    (b"TO", Attr::Url),
    (b"VALUES", Attr::Url),
    (b"XLINK:HREF", Attr::Url),
];

const BLACK_TAGS: &[&[u8]] = &[
    b"APPLET",
    b"BASE",
    b"COMMENT",
    b"EMBED",
    b"FRAME",
    b"FRAMESET",
    b"HANDLER",
    b"IFRAME",
    b"IMPORT",
    b"ISINDEX",
    b"LINK",
    b"LISTENER",
    b"META",
    b"NOSCRIPT",
    b"OBJECT",
    b"SCRIPT",
    b"STYLE",
    b"VMLFRAME",
    b"XML",
    b"XSS",
];

/// libinjection's `cstrcasecmp_with_null`: `s` equals the upper-case `word`, ignoring NUL
/// bytes in `s`.
fn eq_with_null(word: &[u8], s: &[u8]) -> bool {
    let mut w = word.iter();
    for &c in s {
        if c == 0 {
            continue;
        }
        match w.next() {
            Some(&a) if a == c.to_ascii_uppercase() => {}
            _ => return false,
        }
    }
    w.next().is_none()
}

fn is_black_tag(s: &[u8]) -> bool {
    if s.len() < 3 {
        return false;
    }
    if BLACK_TAGS.iter().any(|t| eq_with_null(t, s)) {
        return true;
    }
    s[..3].eq_ignore_ascii_case(b"svg") || s[..3].eq_ignore_ascii_case(b"xsl")
}

fn black_attr(s: &[u8]) -> Attr {
    if s.len() < 2 {
        return Attr::None;
    }
    if s.len() >= 5 {
        if s[..2].eq_ignore_ascii_case(b"on") {
            return Attr::Black;
        }
        if eq_with_null(b"XMLNS", &s[..5]) || eq_with_null(b"XLINK", &s[..5]) {
            return Attr::Black;
        }
    }
    BLACK_ATTRS
        .iter()
        .find(|(n, _)| eq_with_null(n, s))
        .map_or(Attr::None, |(_, a)| *a)
}

/// One character of `s` with HTML numeric entities decoded (libinjection's
/// `html_decode_char_at`): the code point and the bytes it took.
fn decode_char_at(s: &[u8]) -> (u32, usize) {
    if s.is_empty() {
        return (u32::MAX, 0);
    }
    if s[0] != b'&' || s.len() < 2 {
        return (s[0] as u32, 1);
    }
    if s[1] != b'#' {
        return (b'&' as u32, 1);
    }
    let at = |i: usize| s.get(i).copied().unwrap_or(0);
    let (radix, first) = if matches!(at(2), b'x' | b'X') {
        (16, 3)
    } else {
        (10, 2)
    };
    let digit = |c: u8| (c as char).to_digit(radix);
    let Some(mut val) = digit(at(first)) else {
        return (b'&' as u32, 1);
    };
    let mut i = first + 1;
    while i < s.len() {
        let c = s[i];
        if c == b';' {
            return (val, i + 1);
        }
        let Some(d) = digit(c) else {
            return (val, i);
        };
        val = val * radix + d;
        if val > 0x1000FF {
            return (b'&' as u32, 1);
        }
        i += 1;
    }
    (val, i)
}

/// Whether the entity-decoded `s` starts with the upper-case `prefix`, skipping leading
/// whitespace and control characters and any NUL or newline.
fn htmlencode_startswith(prefix: &[u8], mut s: &[u8]) -> bool {
    let mut p = prefix.iter().peekable();
    let mut first = true;
    while !s.is_empty() {
        let Some(&&want) = p.peek() else {
            return true;
        };
        let (mut c, used) = decode_char_at(s);
        s = &s[used..];
        if first && c <= 32 {
            continue;
        }
        first = false;
        if c == 0 || c == 10 {
            continue;
        }
        if (b'a' as u32..=b'z' as u32).contains(&c) {
            c -= 0x20;
        }
        if c != want as u32 {
            return false;
        }
        p.next();
    }
    p.peek().is_none()
}

fn is_black_url(mut s: &[u8]) -> bool {
    while let Some((&c, rest)) = s.split_first() {
        if c <= 32 || c >= 127 {
            s = rest;
        } else {
            break;
        }
    }
    [&b"DATA"[..], b"VIEW-SOURCE", b"JAVA", b"VBSCRIPT"]
        .iter()
        .any(|p| htmlencode_startswith(p, s))
}

fn is_xss(s: &[u8], start: Start) -> bool {
    let mut h5 = H5::new(s, start);
    let mut attr = Attr::None;
    // Every token consumes input; the bound only guards against a state that would not.
    let mut guard = 0usize;
    while h5.next() {
        guard += 1;
        if guard > 2 * s.len() + 16 {
            break;
        }
        let tok = h5.token();
        if h5.tok != Tok::AttrValue {
            attr = Attr::None;
        }
        match h5.tok {
            Tok::Doctype => return true,
            Tok::TagNameOpen => {
                if is_black_tag(tok) {
                    return true;
                }
            }
            Tok::AttrName => attr = black_attr(tok),
            Tok::AttrValue => {
                match attr {
                    Attr::None => {}
                    Attr::Black | Attr::Style => return true,
                    Attr::Url => {
                        if is_black_url(tok) {
                            return true;
                        }
                    }
                    Attr::Indirect => {
                        if black_attr(tok) != Attr::None {
                            return true;
                        }
                    }
                }
                attr = Attr::None;
            }
            Tok::TagComment => {
                if memchr::memchr(b'`', tok).is_some() {
                    return true;
                }
                if tok.len() > 3
                    && ((tok[0] == b'[' && tok[1..3].eq_ignore_ascii_case(b"if"))
                        || tok[..3].eq_ignore_ascii_case(b"xml"))
                {
                    return true;
                }
                if tok.len() > 5
                    && (eq_with_null(b"IMPORT", &tok[..6]) || eq_with_null(b"ENTITY", &tok[..6]))
                {
                    return true;
                }
            }
            Tok::DataText | Tok::TagNameClose | Tok::TagNameSelfClose | Tok::TagClose => {}
        }
    }
    false
}

/// Whether `input` is XSS in any of the five contexts (libinjection_xss).
pub(crate) fn detect(input: &[u8]) -> bool {
    [
        Start::Data,
        Start::ValueNoQuote,
        Start::ValueSingle,
        Start::ValueDouble,
        Start::ValueBack,
    ]
    .into_iter()
    .any(|st| is_xss(input, st))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        for (input, xss) in [
            ("<script>alert(1)</script>", true),
            ("<img src=x onerror=alert(1)>", true),
            ("<a href=\"javascript:alert(1)\">x</a>", true),
            ("<a href=\"&#106;avascript:alert(1)\">x</a>", true),
            ("\"><svg/onload=alert(1)>", true),
            ("<!DOCTYPE html>", true),
            ("<div style=\"color:red\">", true),
            ("<!--[if IE]>x<![endif]-->", true),
            ("hello world", false),
            ("a < b and c > d", false),
            ("<b>bold</b>", false),
            ("<a href=\"https://example.com/\">x</a>", false),
            ("1 + 1 = 2", false),
        ] {
            assert_eq!(detect(input.as_bytes()), xss, "{input}");
        }
    }
}
