//! Request head parser: verdicts on whole heads (tables), what a complete parse reports, and
//! behaviour on short input and limits.

use bext_http1::{
    parse_request, Error, ErrorKind, Framing, Limits, Method, Parse, RequestHead, TargetForm,
    Version,
};
use ErrorKind::*;

fn parse(input: &[u8]) -> Result<(Parse, RequestHead), Error> {
    let mut head = RequestHead::default();
    parse_request(input, &Limits::default(), &mut head).map(|p| (p, head))
}

/// Verdict on a complete head: `Ok(status)` with the status a server answers (200 = accepted).
fn verdict(input: &[u8]) -> Result<(), ErrorKind> {
    match parse(input) {
        Ok((Parse::Complete, _)) => Ok(()),
        Ok((Parse::Partial, _)) => panic!("partial: {:?}", String::from_utf8_lossy(input)),
        Err(e) => Err(e.kind),
    }
}

const OK: Result<(), ErrorKind> = Ok(());

#[test]
fn request_verdicts() {
    let cases: &[(&str, &[u8], Result<(), ErrorKind>)] = &[
        // Request line.
        ("minimal", b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", OK),
        ("http/1.0 without host", b"GET / HTTP/1.0\r\n\r\n", OK),
        ("other method token", b"PURGE /x HTTP/1.1\r\nHost: a\r\n\r\n", OK),
        ("asterisk with another method", b"M-SEARCH * HTTP/1.1\r\nHost: a\r\n\r\n", Err(RequestLine)),
        ("leading CRLF ignored", b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", OK),
        ("two leading CRLFs ignored", b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", OK),
        ("leading bare LF", b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", Err(RequestLine)),
        ("leading bare CR", b"\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", Err(RequestLine)),
        ("leading space", b" GET / HTTP/1.1\r\nHost: a\r\n\r\n", Err(RequestLine)),
        ("two spaces after method", b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", Err(RequestLine)),
        ("two spaces before version", b"GET /  HTTP/1.1\r\nHost: a\r\n\r\n", Err(RequestLine)),
        ("tab separator", b"GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", Err(RequestLine)),
        ("tab in target", b"GET /\t HTTP/1.1\r\nHost: a\r\n\r\n", Err(RequestLine)),
        ("trailing space after version", b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", Err(RequestLine)),
        ("missing target", b"GET HTTP/1.1\r\nHost: a\r\n\r\n", Err(RequestLine)),
        ("bare LF after request line", b"GET / HTTP/1.1\nHost: a\r\n\r\n", Err(RequestLine)),
        ("bare CR after request line", b"GET / HTTP/1.1\rHost: a\r\n\r\n", Err(RequestLine)),
        ("invalid method token", b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", Err(RequestLine)),
        ("method garbage prefix", b"G=\":<>(e),[T];?\" /get HTTP/1.1\r\n\r\n", Err(RequestLine)),
        ("NUL in method", b"G\0T / HTTP/1.1\r\nHost: a\r\n\r\n", Err(RequestLine)),
        ("empty method", b" / HTTP/1.1\r\nHost: a\r\n\r\n", Err(RequestLine)),
        // Versions.
        ("version 2.0", b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", Err(Version)),
        ("version 9.9", b"GET / HTTP/9.9\r\nHost: a\r\n\r\n", Err(Version)),
        ("version 0.9", b"GET / HTTP/0.9\r\nHost: a\r\n\r\n", Err(Version)),
        ("version 1.2", b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", Err(Version)),
        ("version 1.1x", b"GET / HTTP/1.1x\r\nHost: a\r\n\r\n", Err(RequestLine)),
        ("version 1.32", b"GET /test HTTP/1.32\r\n\r\n", Err(RequestLine)),
        ("version 11.1", b"GET / HTTP/11.1\r\nHost: a\r\n\r\n", Err(RequestLine)),
        ("lowercase http", b"GET / http/1.1\r\nHost: a\r\n\r\n", Err(RequestLine)),
        ("no version (HTTP/0.9 style)", b"GET /\r\n\r\n", Err(RequestLine)),
        ("version 1", b"GET / HTTP/1\r\nHost: a\r\n\r\n", Err(RequestLine)),
        // Targets.
        ("query", b"GET /a?b=c&d HTTP/1.1\r\nHost: a\r\n\r\n", OK),
        ("percent-encoding", b"GET /a%20b HTTP/1.1\r\nHost: a\r\n\r\n", OK),
        ("bad percent-encoding", b"GET /a%2 HTTP/1.1\r\nHost: a\r\n\r\n", Err(RequestLine)),
        ("percent not hex", b"GET /a%zz HTTP/1.1\r\nHost: a\r\n\r\n", Err(RequestLine)),
        ("fragment", b"GET /path#frag HTTP/1.1\r\nHost: a\r\n\r\n", Err(RequestLine)),
        ("double quote", b"GET /\"x HTTP/1.1\r\nHost: a\r\n\r\n", Err(RequestLine)),
        ("backslash", b"GET /a\\b HTTP/1.1\r\nHost: a\r\n\r\n", Err(RequestLine)),
        ("angle brackets", b"GET /<script> HTTP/1.1\r\nHost: a\r\n\r\n", Err(RequestLine)),
        ("obs-text in target", b"GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", Err(RequestLine)),
        ("DEL in target", b"GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n", Err(RequestLine)),
        ("NUL in target", b"GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n", Err(RequestLine)),
        ("relative target", b"GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", Err(RequestLine)),
        ("asterisk with OPTIONS", b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", OK),
        ("asterisk with GET", b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", Err(RequestLine)),
        ("absolute-form", b"GET http://a.example/x HTTP/1.1\r\nHost: a\r\n\r\n", OK),
        ("absolute-form https", b"GET HTTPS://a.example:8443 HTTP/1.1\r\nHost: a\r\n\r\n", OK),
        ("absolute-form other host", b"GET http://other.example/ HTTP/1.1\r\nHost: a\r\n\r\n", OK),
        ("absolute-form userinfo", b"GET http://u@a.example/ HTTP/1.1\r\nHost: a\r\n\r\n", Err(RequestLine)),
        ("absolute-form empty host", b"GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", Err(RequestLine)),
        ("absolute-form ftp", b"GET ftp://a/x HTTP/1.1\r\nHost: a\r\n\r\n", Err(RequestLine)),
        ("absolute-form no slashes", b"GET http:a/x HTTP/1.1\r\nHost: a\r\n\r\n", Err(RequestLine)),
        ("CONNECT authority", b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n", OK),
        ("CONNECT without port", b"CONNECT a.example HTTP/1.1\r\nHost: a\r\n\r\n", Err(RequestLine)),
        ("CONNECT origin-form", b"CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n", Err(RequestLine)),
        ("authority-form with GET", b"GET a.example:443 HTTP/1.1\r\nHost: a\r\n\r\n", Err(RequestLine)),
        // Host.
        ("missing host", b"GET / HTTP/1.1\r\n\r\n", Err(Host)),
        ("duplicate host", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", Err(Host)),
        ("duplicate identical host", b"GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", Err(Host)),
        ("duplicate host in 1.0", b"GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", Err(Host)),
        ("empty host", b"GET / HTTP/1.1\r\nHost: \r\n\r\n", Err(Host)),
        ("host with port", b"GET / HTTP/1.1\r\nHost: a.example:8080\r\n\r\n", OK),
        ("host ipv6", b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", OK),
        ("host list", b"GET / HTTP/1.1\r\nHost: a, b\r\n\r\n", Err(Host)),
        ("host userinfo", b"GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", Err(Host)),
        ("host with path", b"GET / HTTP/1.1\r\nHost: a/path\r\n\r\n", Err(Host)),
        ("host bad port", b"GET / HTTP/1.1\r\nHost: a:99999\r\n\r\n", Err(Host)),
        ("host with space", b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", Err(Host)),
        ("missing host with absolute-form", b"GET http://a/ HTTP/1.1\r\n\r\n", Err(Host)),
        // Field syntax.
        ("space before colon", b"GET / HTTP/1.1\r\nHost: a\r\nX-Test : v\r\n\r\n", Err(Field)),
        ("tab before colon", b"GET / HTTP/1.1\r\nHost: a\r\nX-Test\t: v\r\n\r\n", Err(Field)),
        ("obs-fold", b"GET / HTTP/1.1\r\nHost: a\r\nX-Test: v\r\n continued\r\n\r\n", Err(Field)),
        ("obs-fold with tab", b"GET / HTTP/1.1\r\nHost: a\r\nX-Test: v\r\n\tcontinued\r\n\r\n", Err(Field)),
        ("space before first header", b"GET / HTTP/1.1\r\n Host: a\r\n\r\n", Err(Field)),
        ("tab before first header", b"GET / HTTP/1.1\r\n\tContent-Length: 1\r\nHost: a\r\n\r\nX", Err(Field)),
        ("whitespace-only line", b"GET / HTTP/1.1\r\n \r\nHost: a\r\n\r\n", Err(Field)),
        ("empty name", b"GET / HTTP/1.1\r\nHost: a\r\n: v\r\n\r\n", Err(Field)),
        ("no colon", b"GET / HTTP/1.1\r\nHost: a\r\nNoColonHere\r\n\r\n", Err(Field)),
        ("invalid name char", b"GET / HTTP/1.1\r\nHost: a\r\nBad[Name: v\r\n\r\n", Err(Field)),
        ("underscore name is a token", b"GET / HTTP/1.1\r\nHost: a\r\nX_Test: v\r\n\r\n", OK),
        ("non-ascii name", b"GET / HTTP/1.1\r\nHost: a\r\nX\xc3\xa9: v\r\n\r\n", Err(Field)),
        ("bare CR in value", b"GET / HTTP/1.1\r\nHost: a\r\nX: val\rue\r\n\r\n", Err(Field)),
        ("bare LF in value line", b"GET / HTTP/1.1\r\nHost: a\nX: v\r\n\r\n", Err(Field)),
        ("bare LF ending head", b"GET / HTTP/1.1\r\nHost: a\r\n\n", Err(Field)),
        ("NUL in value", b"GET / HTTP/1.1\r\nHost: a\r\nX: v\0a\r\n\r\n", Err(Field)),
        ("VT in value", b"GET / HTTP/1.1\r\nHost: a\r\nX: v\x0ba\r\n\r\n", Err(Field)),
        ("FF in value", b"GET / HTTP/1.1\r\nHost: a\r\nX: v\x0ca\r\n\r\n", Err(Field)),
        ("DEL in value", b"GET / HTTP/1.1\r\nHost: a\r\nX: v\x7fa\r\n\r\n", Err(Field)),
        ("ESC in value", b"GET / HTTP/1.1\r\nHost: a\r\nX: v\x1ba\r\n\r\n", Err(Field)),
        ("tab in value", b"GET / HTTP/1.1\r\nHost: a\r\nX: v\ta\r\n\r\n", OK),
        ("obs-text in value", b"GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\r\n\r\n", OK),
        ("empty value", b"GET / HTTP/1.1\r\nHost: a\r\nX:\r\n\r\n", OK),
        ("bare CR ending head", b"GET / HTTP/1.1\r\nHost: a\r\n\rX", Err(Field)),
        // Content-Length.
        ("content-length", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", OK),
        ("content-length leading zeros", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 005\r\n\r\n", OK),
        ("content-length extra spaces", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length:  5 \r\n\r\n", OK),
        ("content-length duplicate different", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 10\r\n\r\n", Err(ContentLength)),
        ("content-length duplicate same", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", Err(ContentLength)),
        ("content-length list same", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", Err(ContentLength)),
        ("content-length list different", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 10\r\n\r\n", Err(ContentLength)),
        ("content-length empty", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", Err(ContentLength)),
        ("content-length negative", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", Err(ContentLength)),
        ("content-length minus zero", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -0\r\n\r\n", Err(ContentLength)),
        ("content-length plus", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", Err(ContentLength)),
        ("content-length hex", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", Err(ContentLength)),
        ("content-length underscore", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1_0\r\n\r\n", Err(ContentLength)),
        ("content-length inner space", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 0\r\n\r\n", Err(ContentLength)),
        ("content-length letters", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n", Err(ContentLength)),
        ("content-length overflow", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n", Err(ContentLength)),
        ("content-length max", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551615\r\n\r\n", OK),
        ("content-length underscore name is another field", b"POST / HTTP/1.1\r\nHost: a\r\nContent_Length: x\r\n\r\n", OK),
        // Transfer-Encoding.
        ("chunked", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", OK),
        ("chunked capitalised", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n", OK),
        ("chunked upper", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n", OK),
        ("chunked trailing space", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked \r\n\r\n", OK),
        ("CL and TE", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", Err(ContentLengthWithTransferEncoding)),
        ("TE and CL", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", Err(ContentLengthWithTransferEncoding)),
        ("TE gzip then chunked and CL", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 5\r\n\r\n", Err(ContentLengthWithTransferEncoding)),
        ("TE in HTTP/1.0", b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", Err(TransferEncoding)),
        ("TE chunked, gzip", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", Err(TransferEncoding)),
        ("TE gzip, chunked", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", Err(UnsupportedTransferCoding)),
        ("TE gzip alone", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", Err(TransferEncoding)),
        ("TE xchunked", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", Err(TransferEncoding)),
        ("TE chunkedx", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunkedx\r\n\r\n", Err(TransferEncoding)),
        ("TE identity", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", Err(TransferEncoding)),
        ("TE chunked then identity line", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n", Err(TransferEncoding)),
        ("TE chunked twice", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", Err(TransferEncoding)),
        ("TE chunked on two lines", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", Err(TransferEncoding)),
        ("TE gzip line then chunked line", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", Err(UnsupportedTransferCoding)),
        ("TE chunked space semicolon", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked ;\r\n\r\n", Err(TransferEncoding)),
        ("TE chunked with parameter", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;ext=val\r\n\r\n", Err(TransferEncoding)),
        ("TE tab before value", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tchunked\r\n\r\n", Err(TransferEncoding)),
        ("TE tab after value", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\t\r\n\r\n", Err(TransferEncoding)),
        ("TE quoted", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", Err(TransferEncoding)),
        ("TE empty", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n\r\n", Err(TransferEncoding)),
        ("TE leading comma", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , chunked\r\n\r\n", Err(TransferEncoding)),
        ("TE trailing comma", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked,\r\n\r\n", Err(TransferEncoding)),
        ("TE vertical tab", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \x0bchunked\r\n\r\n", Err(Field)),
        ("TE form feed", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \x0cchunked\r\n\r\n", Err(Field)),
        ("TE NUL", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\0\r\n\r\n", Err(Field)),
        ("TE obs-fold", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n", Err(Field)),
        ("TE space before colon", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", Err(Field)),
        ("TE underscore name is another field", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer_Encoding: chunked\r\n\r\n", OK),
        ("TE non-ascii lookalike", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ch\xc3\xbcnked\r\n\r\n", Err(TransferEncoding)),
        // Connection and friends.
        ("connection list", b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n", OK),
        ("connection empty elements", b"GET / HTTP/1.1\r\nHost: a\r\nConnection: , close,\r\n\r\n", OK),
        ("connection invalid token", b"GET / HTTP/1.1\r\nHost: a\r\nConnection: cl\"ose\r\n\r\n", Err(Field)),
        ("duplicate upgrade", b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: a\r\nUpgrade: b\r\n\r\n", Err(Field)),
    ];
    let mut failures = Vec::new();
    for &(name, input, expected) in cases {
        let got = verdict(input);
        if got != expected {
            failures.push(format!("{name}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn complete_parse_reports_every_part() {
    let buf = b"POST /a/b?x=1 HTTP/1.1\r\nHost: example.com:8080\r\nContent-Length:  12 \r\nX-Empty:\r\nConnection: keep-alive, X-Hop\r\n\r\nhello world!";
    let (p, h) = parse(buf).unwrap();
    assert_eq!(p, Parse::Complete);
    assert_eq!(h.method, Some(Method::Post));
    assert_eq!(h.method_span.get(buf), b"POST");
    assert_eq!(h.target.get(buf), b"/a/b?x=1");
    assert_eq!(h.target_form, Some(TargetForm::Origin));
    assert_eq!(h.path.get(buf), b"/a/b");
    assert_eq!(h.query.map(|q| q.get(buf)), Some(&b"x=1"[..]));
    assert_eq!(h.authority, None);
    assert_eq!(h.version, Some(Version::Http11));
    assert_eq!(h.host.map(|s| s.get(buf)), Some(&b"example.com:8080"[..]));
    assert_eq!(h.framing, Some(Framing::ContentLength(12)));
    assert_eq!(&buf[h.head_len..], b"hello world!");
    assert!(h.keep_alive);
    let headers: Vec<(&[u8], &[u8])> = h
        .headers
        .iter()
        .map(|x| (x.name.get(buf), x.value.get(buf)))
        .collect();
    assert_eq!(
        headers,
        vec![
            (&b"Host"[..], &b"example.com:8080"[..]),
            (b"Content-Length", b"12"),
            (b"X-Empty", b""),
            (b"Connection", b"keep-alive, X-Hop"),
        ]
    );
    let tokens: Vec<&[u8]> = h.connection_tokens.iter().map(|t| t.get(buf)).collect();
    assert_eq!(tokens, vec![&b"keep-alive"[..], b"X-Hop"]);
}

#[test]
fn target_forms() {
    // (input, form, path, query, authority, path_or_root)
    type Row = (
        &'static [u8],
        TargetForm,
        &'static [u8],
        Option<&'static [u8]>,
        Option<&'static [u8]>,
        &'static [u8],
    );
    let cases: &[Row] = &[
        (
            b"GET /p HTTP/1.1\r\nHost: a\r\n\r\n",
            TargetForm::Origin,
            b"/p",
            None,
            None,
            b"/p",
        ),
        (
            b"GET /p? HTTP/1.1\r\nHost: a\r\n\r\n",
            TargetForm::Origin,
            b"/p",
            Some(b""),
            None,
            b"/p",
        ),
        (
            b"GET http://h:1/p?q HTTP/1.1\r\nHost: a\r\n\r\n",
            TargetForm::Absolute,
            b"/p",
            Some(b"q"),
            Some(b"h:1"),
            b"/p",
        ),
        (
            b"GET http://h HTTP/1.1\r\nHost: a\r\n\r\n",
            TargetForm::Absolute,
            b"",
            None,
            Some(b"h"),
            b"/",
        ),
        (
            b"GET http://h?q HTTP/1.1\r\nHost: a\r\n\r\n",
            TargetForm::Absolute,
            b"",
            Some(b"q"),
            Some(b"h"),
            b"/",
        ),
        (
            b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n",
            TargetForm::Authority,
            b"",
            None,
            Some(b"h:443"),
            b"",
        ),
        (
            b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
            TargetForm::Asterisk,
            b"*",
            None,
            None,
            b"*",
        ),
    ];
    for &(buf, form, path, query, authority, root) in cases {
        let (_, h) = parse(buf).unwrap();
        let name = String::from_utf8_lossy(buf);
        assert_eq!(h.target_form, Some(form), "{name}");
        assert_eq!(h.path.get(buf), path, "{name}");
        assert_eq!(h.query.map(|s| s.get(buf)), query, "{name}");
        assert_eq!(h.authority.map(|s| s.get(buf)), authority, "{name}");
        assert_eq!(h.path_or_root(buf), root, "{name}");
        let effective = h.effective_authority().map(|s| s.get(buf));
        assert_eq!(
            effective,
            authority.or(Some(b"a")),
            "{name}: the target's authority wins over Host"
        );
    }
}

#[test]
fn framing_and_persistence() {
    // (input, framing, keep_alive, expect_continue, upgrade)
    type Row = (&'static [u8], Framing, bool, bool, Option<&'static [u8]>);
    let cases: &[Row] = &[
        (
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
            Framing::None,
            true,
            false,
            None,
        ),
        (b"GET / HTTP/1.0\r\n\r\n", Framing::None, false, false, None),
        (
            b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            Framing::None,
            true,
            false,
            None,
        ),
        (
            b"GET / HTTP/1.0\r\nConnection: Keep-Alive, close\r\n\r\n",
            Framing::None,
            false,
            false,
            None,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            Framing::None,
            false,
            false,
            None,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: x\r\nConnection: CLOSE\r\n\r\n",
            Framing::None,
            false,
            false,
            None,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
            Framing::ContentLength(0),
            true,
            false,
            None,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
            Framing::Chunked,
            true,
            false,
            None,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n",
            Framing::ContentLength(3),
            true,
            true,
            None,
        ),
        (
            b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
            Framing::ContentLength(3),
            false,
            false,
            None,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nExpect: something-else\r\n\r\n",
            Framing::None,
            true,
            false,
            None,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
            Framing::None,
            true,
            false,
            Some(b"websocket"),
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n",
            Framing::None,
            true,
            false,
            None,
        ),
    ];
    for &(buf, framing, keep_alive, expect, upgrade) in cases {
        let (_, h) = parse(buf).unwrap();
        let name = String::from_utf8_lossy(buf);
        assert_eq!(h.framing, Some(framing), "{name}");
        assert_eq!(h.keep_alive, keep_alive, "{name}");
        assert_eq!(h.expect_continue, expect, "{name}");
        assert_eq!(h.upgrade.map(|s| s.get(buf)), upgrade, "{name}");
    }
}

#[test]
fn every_prefix_of_a_valid_head_is_partial() {
    let buf: &[u8] = b"\r\nPOST http://h/p?q HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nX: a\tb\r\n\r\n";
    for n in 0..buf.len() {
        let got = parse(&buf[..n]).map(|(p, _)| p);
        assert_eq!(got, Ok(Parse::Partial), "prefix of {n} bytes");
    }
    assert_eq!(
        parse(buf).map(|(p, h)| (p, h.head_len)),
        Ok((Parse::Complete, buf.len()))
    );
}

#[test]
fn errors_are_reported_before_the_head_is_complete() {
    let cases: &[(&[u8], ErrorKind, usize)] = &[
        (b"GE(", RequestLine, 2),
        (b"GET /#", RequestLine, 5),
        (b"GET / HTTP/2x", RequestLine, 12),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX : ", Field, 26),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\0", Field, 29),
        (b"GET / HTTP/1.1\r\n x", Field, 16),
    ];
    for &(buf, kind, offset) in cases {
        let e = parse(buf).unwrap_err();
        assert_eq!(
            (e.kind, e.offset),
            (kind, offset),
            "{:?}",
            String::from_utf8_lossy(buf)
        );
    }
}

#[test]
fn limits_give_414_and_431() {
    let limits = Limits {
        max_target: 16,
        max_head: 128,
        max_headers: 3,
    };
    let run = |buf: &[u8]| {
        let mut h = RequestHead::default();
        parse_request(buf, &limits, &mut h).map_err(|e| e.status())
    };
    let long_target = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(16));
    let ok_target = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(15));
    let unfinished_target = format!("GET /{}", "a".repeat(40));
    let many = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    let three = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n";
    let big = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nA: {}\r\n\r\n",
        "x".repeat(100)
    );
    let unfinished_big = format!("GET / HTTP/1.1\r\nHost: a\r\nA: {}", "x".repeat(200));
    let exact = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nA: {}\r\n\r\n",
        "x".repeat(128 - 32)
    );
    let exact_plus_body = format!("{exact}BODY");
    let cases: Vec<(&str, &[u8], Result<Parse, u16>)> = vec![
        ("target over limit", long_target.as_bytes(), Err(414)),
        ("target at limit", ok_target.as_bytes(), Ok(Parse::Complete)),
        (
            "unfinished target over limit",
            unfinished_target.as_bytes(),
            Err(414),
        ),
        ("too many headers", many.as_bytes(), Err(431)),
        ("headers at limit", three.as_bytes(), Ok(Parse::Complete)),
        ("head over limit", big.as_bytes(), Err(431)),
        (
            "unfinished head over limit",
            unfinished_big.as_bytes(),
            Err(431),
        ),
        (
            "head exactly at limit",
            exact.as_bytes(),
            Ok(Parse::Complete),
        ),
        (
            "head at limit then body",
            exact_plus_body.as_bytes(),
            Ok(Parse::Complete),
        ),
    ];
    assert_eq!(exact.len(), 128);
    for (name, buf, expected) in cases {
        assert_eq!(run(buf), expected, "{name}");
    }
}

#[test]
fn statuses_of_errors() {
    let cases: &[(&[u8], u16)] = &[
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
        (b"GET / HTTP/1.1x\r\nHost: a\r\n\r\n", 400),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            501,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
            400,
        ),
    ];
    for &(buf, status) in cases {
        assert_eq!(
            parse(buf).unwrap_err().status(),
            status,
            "{:?}",
            String::from_utf8_lossy(buf)
        );
    }
}

#[test]
fn reusing_a_head_keeps_no_state_from_the_previous_request() {
    let mut h = RequestHead::default();
    let a = b"POST http://x/ HTTP/1.1\r\nHost: a\r\nConnection: close, upgrade\r\nUpgrade: ws\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n";
    let b = b"GET /b HTTP/1.1\r\nHost: b\r\n\r\n";
    parse_request(a, &Limits::default(), &mut h).unwrap();
    let capacity = h.headers.capacity();
    parse_request(b, &Limits::default(), &mut h).unwrap();
    let mut fresh = RequestHead::default();
    parse_request(b, &Limits::default(), &mut fresh).unwrap();
    assert_eq!(
        format!(
            "{:?}",
            (
                &h.method,
                h.target,
                h.authority,
                h.framing,
                h.keep_alive,
                h.expect_continue,
                h.upgrade,
                h.host,
                &h.connection_tokens,
                &h.headers
            )
        ),
        format!(
            "{:?}",
            (
                &fresh.method,
                fresh.target,
                fresh.authority,
                fresh.framing,
                fresh.keep_alive,
                fresh.expect_continue,
                fresh.upgrade,
                fresh.host,
                &fresh.connection_tokens,
                &fresh.headers
            )
        )
    );
    assert_eq!(
        h.headers.capacity(),
        capacity,
        "the header vector is reused, not reallocated"
    );
}
