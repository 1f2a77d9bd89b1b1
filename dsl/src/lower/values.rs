//! Values that several blocks read: paths, header names, socket addresses, host names,
//! CIDRs and regular expressions, checked the way the engine will use them.

use super::Lower;
use crate::ast::Arg;
use crate::diag;

/// At most this many regular expressions in one configuration (E0232).
pub const MAX_REGEXES: usize = 1_000;

impl Lower<'_> {
    pub(super) fn regex(&mut self, x: &Arg) -> Option<String> {
        let pattern = x.text().to_string();
        self.regexes += 1;
        if self.regexes == MAX_REGEXES + 1 {
            self.emit(
                diag::error(
                    "E0232",
                    x.span,
                    format!("more than {MAX_REGEXES} regular expressions in one configuration"),
                )
                .help("each regex costs memory and matching time on every request it may apply to: use prefix routes (`route /api/*`) and exact paths where a regex is not needed"),
            );
        }
        if self.regexes > MAX_REGEXES {
            return None;
        }
        match crate::routes::compile_regex(&pattern) {
            Ok(_) => Some(pattern),
            Err(e) => {
                let span = e.at.map_or(x.span, |(from, to)| x.span_of(from, to));
                let mut b = diag::error(
                    "E0208",
                    span,
                    format!("invalid regular expression: {}", e.message),
                );
                if span != x.span {
                    b = b.label(x.span, "in this pattern");
                }
                self.emit(b.help(e.help));
                None
            }
        }
    }

    /// E0230 when `x` (a value sent on the wire: `what`) holds a control character; a tab is
    /// allowed where `tab_ok` (inside header values, as HTTP allows). The caret points at the
    /// character, or at the escape that wrote it.
    pub(super) fn no_control(&mut self, x: &Arg, what: &str, tab_ok: bool) -> bool {
        let bad = x
            .text()
            .char_indices()
            .find(|&(_, c)| c.is_control() && !(tab_ok && c == '\t'));
        let Some((i, c)) = bad else {
            return true;
        };
        let help = if c == '\n' || c == '\r' {
            "a line break would end the header line and let the value write headers of its own (response splitting): remove it"
        } else {
            "control characters are not allowed in HTTP header fields and request lines: remove it"
        };
        self.emit(
            diag::error(
                "E0230",
                x.span_of(i, i + c.len_utf8()),
                format!("{} in a {what}", crate::hints::control_name(c)),
            )
            .label(x.span, format!("in this {what}"))
            .help(help),
        );
        false
    }

    pub(super) fn path(&mut self, x: &Arg) -> Option<String> {
        let p = x.text();
        if !p.starts_with('/') {
            self.emit(
                diag::error(
                    "E0210",
                    x.span,
                    format!("a path must start with `/`, found {}", x.describe()),
                )
                .help(format!("write `/{}`", p.trim_start_matches('/'))),
            );
            return None;
        }
        if !self.no_control(x, "path", false) {
            return None;
        }
        if p.chars().any(|c| c.is_whitespace()) {
            self.emit(
                diag::error("E0210", x.span, "a path cannot contain spaces")
                    .help("write a space in a path as `%20`"),
            );
            return None;
        }
        Some(p.to_string())
    }

    pub(super) fn header_name(&mut self, x: &Arg) -> Option<String> {
        let n = x.text();
        if !is_token(n) {
            self.emit(
                diag::error(
                    "E0211",
                    x.span,
                    format!("invalid header name {}", x.describe()),
                )
                .help("header names are tokens: letters, digits and ! # $ % & ' * + - . ^ _ ` | ~"),
            );
            return None;
        }
        Some(n.to_string())
    }

    /// `ip:port`, `[v6]:port` or `:port` (all addresses).
    pub(super) fn socket_addr(&mut self, x: &Arg) -> Option<String> {
        let t = x.text();
        let full = if t.starts_with(':') {
            format!("0.0.0.0{t}")
        } else {
            t.to_string()
        };
        match full.parse::<std::net::SocketAddr>() {
            Ok(sa) => Some(sa.to_string()),
            Err(_) => {
                self.bad_address(
                    x,
                    "address",
                    "write ip:port, [ipv6]:port or :port, for example `0.0.0.0:8080`",
                );
                None
            }
        }
    }

    /// E0205 for an address that does not parse, saying what is wrong when that is clear (a
    /// bare port, a URL, a port out of range); `what` and `help` otherwise.
    pub(super) fn bad_address(&mut self, x: &Arg, what: &str, help: &str) {
        let (msg, better) = address_problem(x.text());
        self.emit(
            diag::error(
                "E0205",
                x.span,
                msg.unwrap_or_else(|| format!("invalid {what} {}", x.describe())),
            )
            .help(better.unwrap_or_else(|| help.to_string())),
        );
    }

    pub(super) fn cidr(&mut self, x: &Arg) -> Option<String> {
        let t = x.text();
        let ok = match t.split_once('/') {
            Some((ip, bits)) => match (ip.parse::<std::net::IpAddr>(), bits.parse::<u8>()) {
                (Ok(std::net::IpAddr::V4(_)), Ok(b)) => b <= 32,
                (Ok(std::net::IpAddr::V6(_)), Ok(b)) => b <= 128,
                _ => false,
            },
            None => t.parse::<std::net::IpAddr>().is_ok(),
        };
        if ok {
            Some(t.to_string())
        } else {
            self.emit(
                diag::error("E0212", x.span, format!("invalid CIDR {}", x.describe())).help(
                    "write an address with a prefix length, for example 10.0.0.0/8 or fd00::/8",
                ),
            );
            None
        }
    }
}

/// A more precise message and help for an address that does not parse: a port out of range, a
/// bare port (`listen 80`), a URL (`http://app:80`).
fn address_problem(t: &str) -> (Option<String>, Option<String>) {
    if let Some(rest) = t.split_once("://").map(|(_, r)| r) {
        let hostport = rest.trim_end_matches('/');
        return (
            Some(format!("`{t}` is a URL, not an address")),
            Some(format!("write the address alone: `{hostport}`")),
        );
    }
    if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()) {
        return (
            None,
            Some(format!(
                "a port alone is written `:{t}` (every IPv4 address), or with an address: `0.0.0.0:{t}`"
            )),
        );
    }
    if let Some((_, port)) = t.rsplit_once(':') {
        if !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()) {
            if port.parse::<u32>().is_ok_and(|p| p > 65_535) || port.len() > 5 {
                return (
                    Some(format!("port {port} is out of range: expected 1 to 65535")),
                    Some("a port is a number from 1 to 65535".into()),
                );
            }
        } else if port.is_empty() || !t.contains(']') || t.ends_with(']') {
            return (
                None,
                Some("the port is missing or not a number: write host:port, for example `127.0.0.1:9000`".into()),
            );
        }
    } else {
        return (None, Some(format!("add a port: `{t}:80`")));
    }
    (None, None)
}

/// An HTTP token (RFC 9110 §5.6.2): header names, methods, the parts of a media type.
pub(super) fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
}

/// A DNS name or IP literal (no port).
pub(super) fn valid_host(h: &str) -> bool {
    if h.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let h = h
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .map_or(h, |x| x);
    if h.parse::<std::net::Ipv6Addr>().is_ok() {
        return true;
    }
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}
