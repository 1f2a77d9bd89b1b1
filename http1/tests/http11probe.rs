//! Http11Probe cases that the parser alone decides, with bext's verdict on each.
//!
//! The payloads and expectations come from Http11Probe (github.com/MDA2AV/Http11Probe, MIT
//! licence), as extracted in the project's shared corpus; payloads that the extraction truncated
//! (binary bytes) were rebuilt from each case's description. Eleven cases that test server
//! behaviour only (Date, Allow, Range, Content-Type negotiation...) are left to the conformance
//! suite. The conformance suite runs all of them end to end; this table pins the parser's part.
//!
//! Each row: id, RFC section, Http11Probe's expectation, payload (escaped as in the corpus,
//! `{...}` placeholders filled by [`expand`]), bext's verdict, and why bext chose it where the
//! expectation leaves a choice or bext deliberately differs.

use bext_http1::{parse_request, Chunk, ChunkedDecoder, Framing, Limits, Parse, RequestHead};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Head (and chunked body, if any) accepted.
    Accept,
    /// Head rejected: the status the server answers before closing.
    Reject(u16),
    /// Head accepted, chunked body rejected (the server answers 400 and closes).
    BodyReject,
    /// The input ends before the head or the chunked body does.
    Incomplete,
}
use Verdict::*;

type Row = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Verdict,
    &'static str,
);

const CASES: &[Row] = &[
    ("SMUG-CL-TE-BOTH", "RFC 9112 §6.1", "400 or 2xx", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: {cl}\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n{chunkedBody}", Reject(400), ""),
    ("SMUG-DUPLICATE-CL", "RFC 9110 §8.6", "Exact(400)", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: 5\\r\\nContent-Length: 10\\r\\n\\r\\nhelloworld", Reject(400), ""),
    ("SMUG-CL-LEADING-ZEROS", "RFC 9110 §8.6", "400 or 2xx", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: 005\\r\\n\\r\\nhello", Accept, ""),
    ("SMUG-TE-XCHUNKED", "RFC 9112 §6.1", "400/501 or close", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: xchunked\\r\\nContent-Length: 5\\r\\n\\r\\nhello", Reject(400), ""),
    ("SMUG-TE-TRAILING-SPACE", "RFC 9112 §6.1", "400/501 or 2xx+close", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: chunked \\r\\nContent-Length: 5\\r\\n\\r\\nhello", Reject(400), ""),
    ("SMUG-TE-SP-BEFORE-COLON", "RFC 9112 §5", "Exact(400)", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding : chunked\\r\\nContent-Length: 5\\r\\n\\r\\nhello", Reject(400), ""),
    ("SMUG-CL-NEGATIVE", "RFC 9110 §8.6", "Exact(400)", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: -1\\r\\n\\r\\n", Reject(400), ""),
    ("SMUG-CLTE-PIPELINE", "RFC 9112 §6.1", "400 or close preferred; 2xx acceptable", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: 4\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n0\\r\\n\\r\\n", Reject(400), ""),
    ("SMUG-TECL-PIPELINE", "RFC 9112 §6.1", "400 or close preferred; 2xx acceptable", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: chunked\\r\\nContent-Length: 30\\r\\n\\r\\n0\\r\\n\\r\\n", Reject(400), ""),
    ("SMUG-CL-TRAILING-SPACE", "RFC 9110 §5.5", "400 or 2xx", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: 5 \\r\\n\\r\\nhello", Accept, ""),
    ("SMUG-TE-DOUBLE-CHUNKED", "RFC 9112 §6.1", "400 or 2xx", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: chunked, chunked\\r\\nContent-Length: 5\\r\\n\\r\\nhello", Reject(400), ""),
    ("SMUG-CL-EXTRA-LEADING-SP", "RFC 9110 §5.5", "400 or 2xx", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length:  5\\r\\n\\r\\nhello", Accept, ""),
    ("SMUG-TE-CASE-MISMATCH", "RFC 9112 §6.1", "400 or 2xx", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: Chunked\\r\\nContent-Length: 5\\r\\n\\r\\nhello", Reject(400), ""),
    ("SMUG-CL-COMMA-DIFFERENT", "RFC 9110 §8.6", "Exact(400)", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: 5, 10\\r\\n\\r\\nhello", Reject(400), ""),
    ("SMUG-TE-NOT-FINAL-CHUNKED", "RFC 9112 §6.3", "Exact(400)", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: chunked, gzip\\r\\n\\r\\n0\\r\\n\\r\\n", Reject(400), ""),
    ("SMUG-TE-HTTP10", "RFC 9112 §6.1", "Exact(400)", "POST / HTTP/1.0\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: chunked\\r\\nContent-Length: 5\\r\\n\\r\\nhello", Reject(400), ""),
    ("SMUG-CHUNK-BARE-SEMICOLON", "RFC 9112 §7.1.1", "Exact(400)", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n5;\\r\\nhello\\r\\n0\\r\\n\\r\\n", BodyReject, ""),
    ("SMUG-CHUNK-EXT-INVALID-TOKEN", "RFC 9112 §7.1.1", "Exact(400)", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n5;bad[=x\\r\\nhello\\r\\n0\\r\\n\\r\\n", BodyReject, ""),
    ("SMUG-BARE-CR-HEADER-VALUE", "RFC 9112 §2.2", "Exact(400)", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: 5\\r\\nX-Test: val\\rue\\r\\n\\r\\nhello", Reject(400), ""),
    ("SMUG-CL-OCTAL", "RFC 9110 §8.6", "Exact(400)", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: 0o5\\r\\n\\r\\nhello", Reject(400), ""),
    ("SMUG-CHUNK-UNDERSCORE", "RFC 9112 §7.1", "Exact(400)", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n1_0\\r\\nhello world!!!!!\\r\\n0\\r\\n\\r\\n", BodyReject, ""),
    ("SMUG-TE-EMPTY-VALUE", "RFC 9112 §6.1", "Exact(400)", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: \\r\\nContent-Length: 5\\r\\n\\r\\nhello", Reject(400), ""),
    ("SMUG-TE-LEADING-COMMA", "RFC 9110 §5.6.1", "400 or 2xx", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: , chunked\\r\\nContent-Length: 5\\r\\n\\r\\nhello", Reject(400), ""),
    ("SMUG-TE-DUPLICATE-HEADERS", "RFC 9112 §6.1", "Exact(400)", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: chunked\\r\\nTransfer-Encoding: identity\\r\\nContent-Length: 5\\r\\n\\r\\nhello", Reject(400), ""),
    ("SMUG-CHUNK-HEX-PREFIX", "RFC 9112 §7.1", "Exact(400)", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n0x5\\r\\nhello\\r\\n0\\r\\n\\r\\n", BodyReject, ""),
    ("SMUG-CHUNK-SIZE-PLUS", "RFC 9112 §7.1", "Exact(400)", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n+5\\r\\nhello\\r\\n0\\r\\n\\r\\n", BodyReject, ""),
    ("SMUG-CHUNK-SIZE-TRAILING-OWS", "RFC 9112 §7.1", "Exact(400)", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n5 \\r\\nhello\\r\\n0\\r\\n\\r\\n", BodyReject, ""),
    ("SMUG-CL-HEX-PREFIX", "RFC 9110 §8.6", "Exact(400)", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: 0x5\\r\\n\\r\\nhello", Reject(400), ""),
    ("SMUG-CL-INTERNAL-SPACE", "RFC 9110 §8.6", "Exact(400)", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: 1 0\\r\\n\\r\\nhello12345", Reject(400), ""),
    ("SMUG-CHUNK-LEADING-SP", "RFC 9112 §7.1", "Exact(400)", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n 5\\r\\nhello\\r\\n0\\r\\n\\r\\n", BodyReject, ""),
    ("SMUG-CHUNK-MISSING-TRAILING-CRLF", "RFC 9112 §7.1", "Exact(400)", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n5\\r\\nhello0\\r\\n\\r\\n", BodyReject, ""),
    ("SMUG-CHUNK-EXT-LF", "RFC 9112 §7.1.1", "400 or 2xx", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n5;\\nhello\\r\\n0\\r\\n\\r\\n", BodyReject, ""),
    ("SMUG-CHUNK-SPILL", "RFC 9112 §7.1", "Exact(400)", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n5\\r\\nhello!!\\r\\n0\\r\\n\\r\\n", BodyReject, ""),
    ("SMUG-CHUNK-LF-TERM", "RFC 9112 §7.1", "400 or 2xx", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n5\\r\\nhello\\n0\\r\\n\\r\\n", BodyReject, ""),
    ("SMUG-CHUNK-EXT-CTRL", "RFC 9112 §7.1.1", "Exact(400)", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n5;\\x00\\r\\nhello\\r\\n0\\r\\n\\r\\n", BodyReject, ""),
    ("SMUG-CHUNK-EXT-CR", "RFC 9112 §7.1.1", "Exact(400)", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n5;a\\rX\\r\\nhello\\r\\n0\\r\\n\\r\\n", BodyReject, ""),
    ("SMUG-TE-VTAB", "RFC 9112 §6.1", "Exact(400)", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: \\x0bchunked\\r\\n\\r\\n0\\r\\n\\r\\n", Reject(400), ""),
    ("SMUG-TE-FORMFEED", "RFC 9112 §6.1", "Exact(400)", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: \\x0cchunked\\r\\n\\r\\n0\\r\\n\\r\\n", Reject(400), ""),
    ("SMUG-TE-NULL", "RFC 9112 §6.1", "Exact(400)", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: chunked\\x00\\r\\n\\r\\n0\\r\\n\\r\\n", Reject(400), ""),
    ("SMUG-CHUNK-LF-TRAILER", "RFC 9112 §7.1", "400 or 2xx", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n5\\r\\nhello\\r\\n0\\r\\n\\n", BodyReject, ""),
    ("SMUG-TE-IDENTITY", "RFC 9112 §7", "400/501 or close", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: identity\\r\\nContent-Length: 5\\r\\n\\r\\nhello", Reject(400), ""),
    ("SMUG-CHUNK-NEGATIVE", "RFC 9112 §7.1", "Exact(400)", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n-1\\r\\nhello\\r\\n0\\r\\n\\r\\n", BodyReject, ""),
    ("SMUG-TRANSFER_ENCODING", "RFC 9112 §6.1", "400 or 2xx", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer_Encoding: chunked\\r\\nContent-Length: 5\\r\\n\\r\\nhello", Accept, "a field named with `_` is another field to the parser; the engine decides whether to forward it"),
    ("SMUG-CL-COMMA-SAME", "RFC 9110 §8.6", "400 or 2xx", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: 5, 5\\r\\n\\r\\nhello", Reject(400), ""),
    ("SMUG-CL-COMMA-TRIPLE", "RFC 9110 §8.6", "400 or 2xx", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: 5, 5, 5\\r\\n\\r\\nhello", Reject(400), ""),
    ("SMUG-CHUNKED-WITH-PARAMS", "RFC 9112 §7", "400 or 2xx", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: chunked;ext=val\\r\\nContent-Length: 5\\r\\n\\r\\nhello", Reject(400), ""),
    ("SMUG-EXPECT-100-CL", "RFC 9110 §10.1.1", "400 or 2xx", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: 5\\r\\nExpect: 100-continue\\r\\n\\r\\nhello", Accept, ""),
    ("SMUG-TRAILER-CL", "RFC 9110 §6.5.1", "400 or 2xx", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n5\\r\\nhello\\r\\n0\\r\\nContent-Length: 50\\r\\n\\r\\n", Accept, "the trailer section is checked and dropped, never merged into the header section"),
    ("SMUG-TRAILER-TE", "RFC 9110 §6.5.1", "400 or 2xx", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n5\\r\\nhello\\r\\n0\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n", Accept, "the trailer section is checked and dropped, never merged into the header section"),
    ("SMUG-TRAILER-HOST", "RFC 9110 §6.5.2", "400 or 2xx", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n5\\r\\nhello\\r\\n0\\r\\nHost: evil.example.com\\r\\n\\r\\n", Accept, "the trailer section is checked and dropped, never merged into the header section"),
    ("SMUG-TRAILER-AUTH", "RFC 9110 §6.5.1", "400 or 2xx", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n5\\r\\nhello\\r\\n0\\r\\nAuthorization: Bearer evil\\r\\n\\r\\n", Accept, "the trailer section is checked and dropped, never merged into the header section"),
    ("SMUG-HEAD-CL-BODY", "RFC 9110 §9.3.2", "400 or 2xx", "HEAD / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: 5\\r\\n\\r\\nhello", Accept, ""),
    ("SMUG-OPTIONS-CL-BODY", "RFC 9110 §9.3.7", "400 or 2xx", "OPTIONS / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: 5\\r\\n\\r\\nhello", Accept, ""),
    ("SMUG-CL-UNDERSCORE", "RFC 9110 §8.6", "Exact(400)", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: 1_0\\r\\n\\r\\nhelloworld", Reject(400), ""),
    ("SMUG-CL-NEGATIVE-ZERO", "RFC 9110 §8.6", "Exact(400)", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: -0\\r\\n\\r\\n", Reject(400), ""),
    ("SMUG-CL-DOUBLE-ZERO", "RFC 9110 §8.6", "400 or 2xx", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: 00\\r\\n\\r\\n", Accept, ""),
    ("SMUG-CL-LEADING-ZEROS-OCTAL", "RFC 9110 §8.6", "400 or 2xx", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: 0200\\r\\n\\r\\n{body}", Accept, ""),
    ("SMUG-TE-OBS-FOLD", "RFC 9112 §5.2", "400 or 2xx+close", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding:\\r\\n chunked\\r\\nContent-Length: 5\\r\\n\\r\\nhello", Reject(400), ""),
    ("SMUG-TE-TRAILING-COMMA", "RFC 9110 §5.6.1", "400 or 2xx", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: chunked,\\r\\nContent-Length: 5\\r\\n\\r\\nhello", Reject(400), ""),
    ("SMUG-TE-TAB-BEFORE-VALUE", "RFC 9110 §5.5", "400 or 2xx", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding:\\tchunked\\r\\nContent-Length: 5\\r\\n\\r\\nhello", Reject(400), "stricter than RFC 9110 OWS: bext accepts only SP as whitespace in Transfer-Encoding"),
    ("SMUG-ABSOLUTE-URI-HOST-MISMATCH", "RFC 9112 §3.2.2", "400 or 2xx", "GET http://other.example.com/ HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\n\\r\\n", Accept, ""),
    ("SMUG-MULTIPLE-HOST-COMMA", "RFC 9110 §7.2", "Exact(400)", "GET / HTTP/1.1\\r\\nHost: {ctx.HostHeader}, other.example.com\\r\\n\\r\\n", Reject(400), ""),
    ("SMUG-CHUNK-BARE-CR-TERM", "RFC 9112 §2.2", "Exact(400)", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n5\\rhello\\r\\n0\\r\\n\\r\\n", BodyReject, ""),
    ("SMUG-TRAILER-CONTENT-TYPE", "RFC 9110 §6.5.1", "400 or 2xx", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n5\\r\\nhello\\r\\n0\\r\\nContent-Type: text/evil\\r\\n\\r\\n", Accept, "the trailer section is checked and dropped, never merged into the header section"),
    ("SMUG-CLTE-CONN-CLOSE", "RFC 9112 §6.1", "400, or 2xx + close", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: 5\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n0\\r\\n\\r\\n", Reject(400), ""),
    ("SMUG-TECL-CONN-CLOSE", "RFC 9112 §6.1", "400, or 2xx + close", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: chunked\\r\\nContent-Length: 5\\r\\n\\r\\n0\\r\\n\\r\\n", Reject(400), ""),
    ("SMUG-CLTE-DESYNC", "RFC 9112 §6.1", "400, or close", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: 6\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n0\\r\\n\\r\\nX", Reject(400), ""),
    ("SMUG-CLTE-SMUGGLED-GET", "RFC 9112 §6.1", "400, or close (no extra response)", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: {cl}\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n{body}", Reject(400), ""),
    ("SMUG-CLTE-SMUGGLED-GET-CL-PLUS", "RFC 9112 §6.1", "400, or close (no extra response)", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: +{cl}\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n{body}", Reject(400), ""),
    ("SMUG-CLTE-SMUGGLED-GET-CL-NON-NUMERIC", "RFC 9112 §6.1", "400, or close (no extra response)", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: {cl}x\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n{body}", Reject(400), ""),
    ("SMUG-CLTE-SMUGGLED-GET-TE-OBS-FOLD", "RFC 9112 §5.2", "400, or close (no extra response)", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding:\\r\\n chunked\\r\\nContent-Length: {cl}\\r\\n\\r\\n{body}", Reject(400), ""),
    ("SMUG-CLTE-SMUGGLED-HEAD", "RFC 9112 §6.1", "400, or close (no extra response)", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: {cl}\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n{body}", Reject(400), ""),
    ("SMUG-CLTE-SMUGGLED-GET-TE-TRAILING-SPACE", "RFC 9112 §6.1", "400, or close (no extra response)", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: {cl}\\r\\nTransfer-Encoding: chunked \\r\\n\\r\\n{body}", Reject(400), ""),
    ("SMUG-CLTE-SMUGGLED-GET-TE-LEADING-COMMA", "RFC 9112 §6.1", "400, or close (no extra response)", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: {cl}\\r\\nTransfer-Encoding: , chunked\\r\\n\\r\\n{body}", Reject(400), ""),
    ("SMUG-CLTE-SMUGGLED-GET-TE-CASE-MISMATCH", "RFC 9112 §6.1", "400, or close (no extra response)", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: {cl}\\r\\nTransfer-Encoding: Chunked\\r\\n\\r\\n{body}", Reject(400), ""),
    ("SMUG-TE-DUPLICATE-HEADERS-SMUGGLED-GET", "RFC 9112 §6.1", "400, or close (no extra response)", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: chunked\\r\\nTransfer-Encoding: identity\\r\\nContent-Length: {cl}\\r\\n\\r\\n{body}", Reject(400), ""),
    ("SMUG-TECL-SMUGGLED-GET", "RFC 9112 §6.1", "400, or close (no extra response)", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: chunked\\r\\nContent-Length: {cl}\\r\\n\\r\\n{body}", Reject(400), ""),
    ("SMUG-DUPLICATE-CL-SMUGGLED-GET", "RFC 9110 §8.6", "400, or close (no extra response)", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: 4\\r\\nContent-Length: {cl}\\r\\n\\r\\n{body}", Reject(400), ""),
    ("SMUG-GET-CL-PREFIX-DESYNC", "RFC 9110 §9.3.1", "400/close preferred; extra response on step 2 = warn", "GET / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: {cl}\\r\\n\\r\\n{prefix}", Accept, ""),
    ("SMUG-TECL-DESYNC", "RFC 9112 §6.1", "400, or close", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: chunked\\r\\nContent-Length: 30\\r\\n\\r\\n0\\r\\n\\r\\nX", Reject(400), ""),
    ("SMUG-CL0-BODY-POISON", "RFC 9112 §6.2", "400/close preferred; poisoned follow-up = warn", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: 0\\r\\n\\r\\nX", Accept, ""),
    ("SMUG-GET-CL-BODY-DESYNC", "RFC 9110 §9.3.1", "400/close/pass-through; poisoned follow-up = warn", "GET / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: 5\\r\\n\\r\\nhello", Accept, ""),
    ("SMUG-OPTIONS-CL-BODY-DESYNC", "RFC 9110 §9.3.7", "400/close/pass-through; poisoned follow-up = warn", "OPTIONS / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: 5\\r\\n\\r\\nhello", Accept, ""),
    ("SMUG-EXPECT-100-CL-DESYNC", "RFC 9110 §10.1.1", "417/400/close preferred; poisoned follow-up = warn", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: 5\\r\\nExpect: 100-continue\\r\\n\\r\\nhello", Accept, ""),
    ("SMUG-OPTIONS-TE-OBS-FOLD", "RFC 9112 §5.2", "400, or 2xx + close", "OPTIONS / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding:\\r\\n chunked\\r\\nContent-Length: 5\\r\\n\\r\\nhello", Reject(400), ""),
    ("SMUG-CHUNK-INVALID-SIZE-DESYNC", "RFC 9112 §7.1", "400, or close", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n+0\\r\\n\\r\\nX", BodyReject, ""),
    ("SMUG-PIPELINE-SAFE", "RFC 9112 §9.3", "2xx + 2xx", "GET / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\n\\r\\n", Accept, ""),
    ("COMP-BASELINE", "", "accept", "GET / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\n\\r\\n", Accept, ""),
    ("RFC9112-2.2-BARE-LF-REQUEST-LINE", "RFC 9112 §2.2", "400 or close (pass), 2xx (warn)", "GET / HTTP/1.1\\nHost: {ctx.HostHeader}\\r\\n\\r\\n", Reject(400), ""),
    ("RFC9112-2.2-BARE-LF-HEADER", "RFC 9112 §2.2", "400 or close (pass), 2xx (warn)", "GET / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\nX-Test: value\\r\\n\\r\\n", Reject(400), ""),
    ("RFC9112-5.1-OBS-FOLD", "RFC 9112 §5.1", "Exact(400)", "GET / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nX-Test: value\\r\\n continued\\r\\n\\r\\n", Reject(400), ""),
    ("RFC9110-5.6.2-SP-BEFORE-COLON", "RFC 9112 §5", "Exact(400)", "GET / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nX-Test : value\\r\\n\\r\\n", Reject(400), ""),
    ("RFC9112-3-MULTI-SP-REQUEST-LINE", "RFC 9112 §3", "400 or 2xx", "GET  / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\n\\r\\n", Reject(400), ""),
    ("RFC9112-7.1-MISSING-HOST", "RFC 9112 §3.2", "Exact(400)", "GET / HTTP/1.1\\r\\n\\r\\n", Reject(400), ""),
    ("RFC9112-2.3-INVALID-VERSION", "RFC 9112 §2.3", "400/505 or close", "GET / HTTP/9.9\\r\\nHost: {ctx.HostHeader}\\r\\n\\r\\n", Reject(505), ""),
    ("RFC9112-5-EMPTY-HEADER-NAME", "RFC 9112 §5", "Exact(400)", "GET / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\n: empty-name\\r\\n\\r\\n", Reject(400), ""),
    ("RFC9112-3-CR-ONLY-LINE-ENDING", "RFC 9112 §2.2", "Exact(400)", "GET / HTTP/1.1\\rHost: {ctx.HostHeader}\\r\\n\\r\\n", Reject(400), ""),
    ("RFC9112-3-MISSING-TARGET", "RFC 9112 §3", "Exact(400)", "GET HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\n\\r\\n", Reject(400), ""),
    ("RFC9112-3.2-FRAGMENT-IN-TARGET", "RFC 9112 §3.2", "400 or 2xx", "GET /path#frag HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\n\\r\\n", Reject(400), ""),
    ("RFC9112-2.3-HTTP09-REQUEST", "RFC 9112 §2.3", "400/close/timeout", "GET /\\r\\n", Reject(400), ""),
    ("RFC9112-5-INVALID-HEADER-NAME", "RFC 9112 §5", "Exact(400)", "GET / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nBad[Name: value\\r\\n\\r\\n", Reject(400), ""),
    ("RFC9112-5-HEADER-NO-COLON", "RFC 9112 §5", "Exact(400)", "GET / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nNoColonHere\\r\\n\\r\\n", Reject(400), ""),
    ("RFC9110-5.4-DUPLICATE-HOST", "RFC 9112 §3.2", "Exact(400)", "GET / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nHost: other.example.com\\r\\n\\r\\n", Reject(400), ""),
    ("RFC9112-6.1-CL-NON-NUMERIC", "RFC 9112 §6.1", "Exact(400)", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: abc\\r\\n\\r\\n", Reject(400), ""),
    ("RFC9112-6.1-CL-PLUS-SIGN", "RFC 9112 §6.1", "Exact(400)", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: +5\\r\\n\\r\\nhello", Reject(400), ""),
    ("COMP-WHITESPACE-BEFORE-HEADERS", "RFC 9112 §2.2", "Exact(400)", "GET / HTTP/1.1\\r\\n \\r\\nHost: {ctx.HostHeader}\\r\\n\\r\\n", Reject(400), ""),
    ("COMP-DUPLICATE-HOST-SAME", "RFC 9112 §3.2", "Exact(400)", "GET / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nHost: {ctx.HostHeader}\\r\\n\\r\\n", Reject(400), ""),
    ("COMP-HOST-WITH-USERINFO", "RFC 9112 §3.2", "Exact(400)", "GET / HTTP/1.1\\r\\nHost: user@{ctx.HostHeader}\\r\\n\\r\\n", Reject(400), ""),
    ("COMP-HOST-WITH-PATH", "RFC 9112 §3.2", "Exact(400)", "GET / HTTP/1.1\\r\\nHost: {ctx.HostHeader}/path\\r\\n\\r\\n", Reject(400), ""),
    ("COMP-ASTERISK-WITH-GET", "RFC 9112 §3.2.4", "Exact(400)", "GET * HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\n\\r\\n", Reject(400), ""),
    ("COMP-OPTIONS-STAR", "RFC 9112 §3.2.4", "accept", "OPTIONS * HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\n\\r\\n", Accept, ""),
    ("COMP-UNKNOWN-TE-501", "RFC 9112 §6.1", "400/501 or close", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: gzip\\r\\n\\r\\n", Reject(400), "RFC 9112 §6.3: chunked not final is 400; 501 is for `gzip, chunked`"),
    ("COMP-LEADING-CRLF", "RFC 9112 §2.2", "400 or 2xx", "\\r\\n\\r\\nGET / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\n\\r\\n", Accept, ""),
    ("COMP-ABSOLUTE-FORM", "RFC 9112 §3.2.2", "2xx preferred; 400 warns", "GET http://{ctx.HostHeader}/ HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\n\\r\\n", Accept, ""),
    ("COMP-METHOD-CASE", "RFC 9110 §9.1", "400/405/501 or 2xx", "get / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\n\\r\\n", Accept, "`get` is a valid token (Method::Other); the engine answers for unknown methods"),
    ("COMP-POST-CL-BODY", "RFC 9112 §6.2", "2xx + echo", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: 5\\r\\n\\r\\nhello", Accept, ""),
    ("COMP-POST-CL-ZERO", "RFC 9112 §6.2", "accept", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: 0\\r\\n\\r\\n", Accept, ""),
    ("COMP-POST-NO-CL-NO-TE", "RFC 9112 §6.3", "accept", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\n\\r\\n", Accept, ""),
    ("COMP-POST-CL-UNDERSEND", "RFC 9112 §6.2", "400/close/timeout", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: 10\\r\\n\\r\\nhello", Accept, ""),
    ("COMP-CHUNKED-BODY", "RFC 9112 §7.1", "2xx + echo", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n5\\r\\nhello\\r\\n0\\r\\n\\r\\n", Accept, ""),
    ("COMP-CHUNKED-MULTI", "RFC 9112 §7.1", "2xx + echo", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n5\\r\\nhello\\r\\n6\\r\\n world\\r\\n0\\r\\n\\r\\n", Accept, ""),
    ("COMP-CHUNKED-EMPTY", "RFC 9112 §7.1", "accept", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n0\\r\\n\\r\\n", Accept, ""),
    ("COMP-CHUNKED-NO-FINAL", "RFC 9112 §7.1", "400/close/timeout", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n5\\r\\nhello\\r\\n", Incomplete, ""),
    ("COMP-UPGRADE-POST", "RFC 6455 §4.1", "!101", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nConnection: Upgrade\\r\\nUpgrade: websocket\\r\\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n", Accept, ""),
    ("COMP-UPGRADE-MISSING-CONN", "RFC 9110 §7.8", "!101", "GET / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nUpgrade: websocket\\r\\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n", Accept, ""),
    ("COMP-UPGRADE-UNKNOWN", "RFC 9110 §7.8", "!101", "GET / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nConnection: Upgrade\\r\\nUpgrade: totally-made-up/1.0\\r\\n\\r\\n", Accept, ""),
    ("COMP-METHOD-CONNECT", "RFC 9110 §9.3.6", "400/405/501 or close", "CONNECT example.com:443 HTTP/1.1\\r\\nHost: example.com:443\\r\\n\\r\\n", Accept, ""),
    ("COMP-EXPECT-UNKNOWN", "RFC 9110 §10.1.1", "417 or 2xx", "GET / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nExpect: 200-ok\\r\\n\\r\\n", Accept, ""),
    ("COMP-GET-WITH-CL-BODY", "RFC 9110 §9.3.1", "400 or 2xx", "GET / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: 5\\r\\n\\r\\nhello", Accept, ""),
    ("COMP-CHUNKED-EXTENSION", "RFC 9112 §7.1.1", "2xx preferred; 400 warns", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n5;ext=value\\r\\nhello\\r\\n0\\r\\n\\r\\n", Accept, ""),
    ("COMP-UPGRADE-INVALID-VER", "RFC 6455 §4.4", "non-101 (426 preferred)", "GET / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nConnection: Upgrade\\r\\nUpgrade: websocket\\r\\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\nSec-WebSocket-Version: 99\\r\\n\\r\\n", Accept, ""),
    ("COMP-METHOD-TRACE", "RFC 9110 §9.3.8", "405/501 or 2xx", "TRACE / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\n\\r\\n", Accept, ""),
    ("COMP-HOST-EMPTY-VALUE", "RFC 9112 §3.2", "Exact(400)", "GET / HTTP/1.1\\r\\nHost: \\r\\n\\r\\n", Reject(400), ""),
    ("COMP-REQUEST-LINE-TAB", "RFC 9112 §3", "400 or 2xx", "GET\\t/ HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\n\\r\\n", Reject(400), ""),
    ("COMP-VERSION-MISSING-MINOR", "RFC 9112 §2.3", "Exact(400)", "GET / HTTP/1\\r\\nHost: {ctx.HostHeader}\\r\\n\\r\\n", Reject(400), ""),
    ("COMP-VERSION-LEADING-ZEROS", "RFC 9112 §2.3", "Exact(400)", "GET / HTTP/01.01\\r\\nHost: {ctx.HostHeader}\\r\\n\\r\\n", Reject(400), ""),
    ("COMP-VERSION-WHITESPACE", "RFC 9112 §2.3", "Exact(400)", "GET / HTTP/ 1.1\\r\\nHost: {ctx.HostHeader}\\r\\n\\r\\n", Reject(400), ""),
    ("COMP-CONNECTION-CLOSE", "RFC 9112 §9.3", "2xx + close", "GET / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nConnection: close\\r\\n\\r\\n", Accept, ""),
    ("COMP-HTTP10-DEFAULT-CLOSE", "RFC 9112 §9.3", "2xx + close", "GET / HTTP/1.0\\r\\nHost: {ctx.HostHeader}\\r\\n\\r\\n", Accept, ""),
    ("COMP-HTTP10-NO-HOST", "RFC 9112 §3.2", "200 or 400", "GET / HTTP/1.0\\r\\n\\r\\n", Accept, ""),
    ("COMP-HTTP12-VERSION", "RFC 9112 §2.3", "200 or 505", "GET / HTTP/1.2\\r\\nHost: {ctx.HostHeader}\\r\\n\\r\\n", Reject(505), "deliberate: only HTTP/1.0 and HTTP/1.1 are served (RFC 9110 §6.2 SHOULD serve 1.2 as 1.1)"),
    ("COMP-TRACE-WITH-BODY", "RFC 9110 §9.3.8", "400/405 or 200", "TRACE / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: 5\\r\\n\\r\\nhello", Accept, ""),
    ("COMP-CHUNKED-TRAILER-VALID", "RFC 9112 §7.1.2", "2xx + echo", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n5\\r\\nhello\\r\\n0\\r\\nX-Checksum: abc\\r\\n\\r\\n", Accept, ""),
    ("COMP-CHUNKED-HEX-UPPERCASE", "RFC 9112 §7.1", "2xx + echo", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\nA\\r\\nhelloworld\\r\\n0\\r\\n\\r\\n", Accept, ""),
    ("COMP-RANGE-POST", "RFC 9110 §14.2", "2xx (Range ignored)", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: 5\\r\\nRange: bytes=0-10\\r\\n\\r\\nhello", Accept, ""),
    ("COMP-UPGRADE-HTTP10", "RFC 9110 §7.8", "!101", "GET / HTTP/1.0\\r\\nHost: {ctx.HostHeader}\\r\\nConnection: Upgrade\\r\\nUpgrade: websocket\\r\\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n", Accept, ""),
    ("COMP-HEAD-NO-BODY", "RFC 9110 §9.3.2", "2xx with no body", "HEAD / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\n\\r\\n", Accept, ""),
    ("COMP-UNKNOWN-METHOD", "RFC 9110 §9.1", "501/405/400 or close", "FOOBAR / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\n\\r\\n", Accept, ""),
    ("COMP-NO-1XX-HTTP10", "RFC 9110 §15.2", "non-1xx response", "POST / HTTP/1.0\\r\\nHost: {ctx.HostHeader}\\r\\nExpect: 100-continue\\r\\nContent-Length: 5\\r\\n\\r\\nhello", Accept, ""),
    ("COMP-VERSION-CASE", "RFC 9112 §2.3", "Exact(400)", "GET / http/1.1\\r\\nHost: {ctx.HostHeader}\\r\\n\\r\\n", Reject(400), ""),
    ("COMP-LONG-URL-OK", "RFC 9112 §3", "not 414", "GET {path} HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\n\\r\\n", Accept, ""),
    ("COMP-SPACE-IN-TARGET", "RFC 9112 §3.2", "Exact(400)", "GET /pa th HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\n\\r\\n", Reject(400), ""),
    ("COMP-DUPLICATE-CT", "RFC 9110 §5.3", "400 or 2xx", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: 5\\r\\nContent-Type: text/plain\\r\\nContent-Type: text/html\\r\\n\\r\\nhello", Accept, ""),
    ("MAL-BINARY-GARBAGE", "", "400/close/timeout", "\\x16\\x03\\x01\\x00\\xa5\\x01\\x00\\x00\\xa1\\x03\\x03\\r\\n\\r\\n", Reject(400), ""),
    ("MAL-LONG-URL", "", "400/414/431 or close", "GET {longPath} HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\n\\r\\n", Reject(414), ""),
    ("MAL-LONG-HEADER-VALUE", "", "400/431 or close", "GET / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nX-Big: {longValue}\\r\\n\\r\\n", Reject(431), ""),
    ("MAL-MANY-HEADERS", "", "400/431 or close", "GET / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\n{manyHeaders}\\r\\n", Reject(431), ""),
    ("MAL-NUL-IN-URL", "", "Exact(400)", "GET /\\0test HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\n\\r\\n", Reject(400), ""),
    ("MAL-CONTROL-CHARS-HEADER", "", "Exact(400)", "GET / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nX-Test: abc\\x07\\x08\\x0Bdef\\r\\n\\r\\n", Reject(400), ""),
    ("MAL-INCOMPLETE-REQUEST", "", "400/close/timeout", "GET / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nX-Test: value", Incomplete, ""),
    ("MAL-EMPTY-REQUEST", "", "400/close/timeout", "", Incomplete, ""),
    ("MAL-LONG-HEADER-NAME", "", "400/431 or close", "GET / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\n{longName}: val\\r\\n\\r\\n", Reject(431), ""),
    ("MAL-LONG-METHOD", "", "400 or close", "{longMethod} / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\n\\r\\n", Reject(431), "deliberate: the request line fills max_head before it ends, so 431 (and close) rather than 400"),
    ("MAL-NON-ASCII-HEADER-NAME", "", "Exact(400)", "GET / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nX-Tëst: value\\r\\n\\r\\n", Reject(400), ""),
    ("MAL-NON-ASCII-URL", "", "Exact(400)", "GET /café HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\n\\r\\n", Reject(400), ""),
    ("MAL-CL-OVERFLOW", "", "Exact(400)", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: 99999999999999999999\\r\\n\\r\\n", Reject(400), ""),
    ("MAL-WHITESPACE-ONLY-LINE", "", "400/close/timeout", "   \\r\\nGET / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\n\\r\\n", Reject(400), ""),
    ("MAL-NUL-IN-HEADER-VALUE", "", "Exact(400)", "GET / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nX-Test: val\\0ue\\r\\n\\r\\n", Reject(400), ""),
    ("MAL-CHUNK-SIZE-OVERFLOW", "", "Exact(400)", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\nFFFFFFFFFFFFFFFF0\\r\\nhello\\r\\n0\\r\\n\\r\\n", BodyReject, ""),
    ("MAL-H2-PREFACE", "", "400/505/close/timeout", "PRI * HTTP/2.0\\r\\n\\r\\nSM\\r\\n\\r\\n", Reject(505), ""),
    ("MAL-CL-EMPTY", "RFC 9110 §8.6", "Exact(400)", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: \\r\\n\\r\\n", Reject(400), ""),
    ("MAL-CL-TAB-BEFORE-VALUE", "RFC 9110 §5.5", "400 or 2xx", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length:\\t5\\r\\n\\r\\nhello", Accept, ""),
    ("MAL-URL-BACKSLASH", "", "400 or 2xx/404", "GET /path\\\\file HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\n\\r\\n", Reject(400), ""),
    ("MAL-URL-OVERLONG-UTF8", "", "Exact(400)", "GET /\\xc0\\xaf HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\n\\r\\n", Reject(400), ""),
    ("MAL-URL-PERCENT-NULL", "", "400 or 2xx/404", "GET /path%00.html HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\n\\r\\n", Accept, "valid percent-encoding; decoding (and refusing %00) is the router's job"),
    ("MAL-URL-PERCENT-CRLF", "", "400 or 2xx/404", "GET /path%0d%0aX-Injected:%20true HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\n\\r\\n", Accept, "valid percent-encoding; the target is forwarded encoded"),
    ("MAL-CHUNK-EXT-64K", "", "400 or 2xx", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n5;ext={longExt}\\r\\nhello\\r\\n0\\r\\n\\r\\n", BodyReject, ""),
    ("MAL-POST-CL-HUGE-NO-BODY", "", "400/close/timeout", "POST / HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: 999999999\\r\\n\\r\\n", Accept, ""),
    ("NORM-UNDERSCORE-CL", "", "Reject/drop (pass), normalize (fail), preserve (warn)", "POST /echo HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: 11\\r\\nContent_Length: 99\\r\\n\\r\\nhello world", Accept, "a field named with `_` is another field to the parser; the engine decides whether to forward it"),
    ("NORM-SP-BEFORE-COLON-CL", "RFC 9112 §5", "Reject/drop (pass), normalize (fail), preserve (warn)", "POST /echo HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: 11\\r\\nContent-Length : 5\\r\\n\\r\\nhello world", Reject(400), ""),
    ("NORM-TAB-IN-NAME", "", "Reject/drop (pass), normalize (fail), preserve (warn)", "POST /echo HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: 11\\r\\nContent\\tLength: 99\\r\\n\\r\\nhello world", Reject(400), ""),
    ("NORM-CASE-TE", "", "Reject/drop (pass), normalize casing (fail), preserve (warn)", "POST /echo HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: 11\\r\\nTRANSFER-ENCODING: chunked\\r\\n\\r\\nhello world", Reject(400), ""),
    ("NORM-UNDERSCORE-TE", "", "Reject/drop (pass), normalize (fail), preserve (warn)", "POST /echo HTTP/1.1\\r\\nHost: {ctx.HostHeader}\\r\\nContent-Length: 11\\r\\nTransfer_Encoding: chunked\\r\\n\\r\\nhello world", Accept, "a field named with `_` is another field to the parser; the engine decides whether to forward it"),
];

/// Undo the corpus escaping (`\r`, `\n`, `\t`, `\0`, `\xNN`, `\\`) and fill placeholders.
fn expand(template: &str) -> Vec<u8> {
    let filled = template
        .replace("{ctx.HostHeader}", "localhost:8080")
        .replace("{cl}", "5")
        .replace("{chunkedBody}", "0\\r\\n\\r\\n")
        .replace("{body}", "hello")
        .replace("{prefix}", "GET /admin HTTP/1.1\\r\\nX: ")
        .replace("{path}", &format!("/{}", "a".repeat(7984)))
        .replace("{longPath}", &format!("/{}", "a".repeat(100_000)))
        .replace("{longValue}", &"v".repeat(100_000))
        .replace("{longName}", &"N".repeat(100_000))
        .replace("{longMethod}", &"M".repeat(100_000))
        .replace("{longExt}", &"e".repeat(65_536))
        .replace("{manyHeaders}", &"X-N: v\\r\\n".repeat(10_000));
    let b = filled.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            match b[i + 1] {
                b'r' => out.push(b'\r'),
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'0' => out.push(0),
                b'\\' => out.push(b'\\'),
                b'x' => {
                    let hex = std::str::from_utf8(&b[i + 2..i + 4]).expect("ascii escape");
                    out.push(u8::from_str_radix(hex, 16).expect("hex escape"));
                    i += 2;
                }
                other => panic!("unknown escape \\{}", other as char),
            }
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

fn verdict(input: &[u8]) -> Verdict {
    let mut head = RequestHead::default();
    match parse_request(input, &Limits::default(), &mut head) {
        Err(e) => Reject(e.status()),
        Ok(Parse::Partial) => Incomplete,
        Ok(Parse::Complete) => {
            if head.framing != Some(Framing::Chunked) {
                return Accept;
            }
            let mut rest = &input[head.head_len..];
            let mut decoder = ChunkedDecoder::new();
            loop {
                match decoder.decode(rest) {
                    Err(_) => return BodyReject,
                    Ok((_, Chunk::Done)) => return Accept,
                    Ok((_, Chunk::NeedMore)) => return Incomplete,
                    Ok((n, Chunk::Data(_))) => rest = &rest[n..],
                }
            }
        }
    }
}

#[test]
fn http11probe_parser_verdicts() {
    let mut failures = Vec::new();
    for &(id, rfc, expectation, payload, expected, why) in CASES {
        let got = verdict(&expand(payload));
        if got != expected {
            failures.push(format!(
                "{id} ({rfc}; Http11Probe: {expectation}): expected {expected:?}, got {got:?} {why}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {}:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn every_exact_expectation_is_met() {
    // Where Http11Probe names one status, bext's verdict gives that status.
    for &(id, _, expectation, _, verdict, _) in CASES {
        if expectation == "Exact(400)" {
            assert!(
                matches!(verdict, Reject(400) | BodyReject),
                "{id}: {verdict:?}"
            );
        }
    }
}
