//! Every class of mistake, each in a small config: the test asserts the code, line and column of
//! every diagnostic reported (errors and warnings), so a change in what an operator sees is a
//! visible change here.
//!
//! Most cases are appended to a prelude that is valid on its own (a listener, an upstream used by
//! a route); the line numbers in the table count from the first line of the case.

use bext_dsl::{compile_str, Diagnostic};

const PRELUDE: &str = "listen :8080\nupstream app { server 127.0.0.1:9000 }\nsite prelude.test { route /* { proxy app } }\n";
const PRELUDE_LINES: u32 = 3;

/// (name, use the prelude, source, expected (code, line, column) in source order)
type Case = (
    &'static str,
    bool,
    &'static str,
    &'static [(&'static str, u32, u32)],
);

const CASES: &[Case] = &[
    // ---- syntax
    ("unclosed block", true, "site a.test {\n    route /* { proxy app }\n", &[("E0001", 3, 1)]),
    ("syntax errors in two items, and a mistake in a third", true, "upstream b { server 1.2.3.4:80 \"x }\nsite a.test { route /* { proxy app } }\nupstream c { server 1.2.3.4:80; keepalive lots }\nsite b.test { route /* { proxy app } } }\n", &[("E0001", 1, 32), ("E0201", 3, 43), ("E0001", 4, 40)]),
    ("stray closing brace", true, "}\n", &[("E0001", 1, 1)]),
    ("unterminated string", true, "site a.test { route /* { respond 200 \"ok } }\n", &[("E0001", 1, 38)]),
    ("directive must start with a name", true, "\"upstream\" x {}\n", &[("E0001", 1, 1)]),
    ("bad escape", true, "site a.test { route /* { respond 200 \"a\\d\" } }\n", &[("E0002", 1, 40)]),
    ("bad unicode escape", true, "site a.test { route /* { respond 200 \"\\u{zz}\" } }\n", &[("E0002", 1, 39)]),
    // ---- includes
    ("missing include", true, "include \"does-not-exist.bext\"\n", &[("E0003", 1, 9)]),
    ("include without a file", true, "include\n", &[("E0003", 1, 1)]),
    ("include inside a block", true, "site a.test {\n    include \"x.bext\"\n    route /* { proxy app }\n}\n", &[("E0005", 2, 5)]),
    // ---- directives
    ("unknown top-level directive", true, "upstrem b { server 1.2.3.4:80 }\n", &[("E0101", 1, 1)]),
    ("unknown route directive", true, "site a.test { route /* { proxx app } }\n", &[("E0101", 1, 26)]),
    ("unknown upstream directive", true, "upstream b {\n    server 1.2.3.4:80\n    keepalives 10\n}\nsite a.test { route /* { proxy b } }\n", &[("E0101", 3, 5)]),
    ("unknown global directive", true, "global { worker 4 }\n", &[("E0101", 1, 10)]),
    ("directive in the wrong block: proxy at top level", true, "proxy app\n", &[("E0102", 1, 1)]),
    ("directive in the wrong block: server in a route", true, "site a.test { route /* { server 1.2.3.4:80; proxy app } }\n", &[("E0102", 1, 26)]),
    ("balance given twice", true, "upstream b {\n    server 1.2.3.4:80\n    balance p2c\n    balance random\n}\nsite a.test { route /* { proxy b } }\n", &[("E0103", 4, 5)]),
    ("global given twice", true, "global { workers 2 }\nglobal { workers 4 }\n", &[("E0103", 2, 1)]),
    ("proxy given twice", true, "site a.test { route /* { proxy app; proxy app } }\n", &[("E0103", 1, 37)]),
    ("proxy without an upstream", true, "site a.test { route /* { proxy } }\n", &[("E0104", 1, 31)]),
    ("cert without key", true, "listen :8443 tls { cert \"a.pem\" }\n", &[("E0104", 1, 32)]),
    ("cache without ttl", true, "site a.test { route /* { cache { max 1mb }; proxy app } }\n", &[("E0104", 1, 26)]),
    ("cache key on a per-request field", true, "site a.test { route /* { cache { ttl 1m; key header X-Request-Id }; proxy app } }\n", &[("W0160", 1, 53)]),
    ("cache bypass on Host", true, "site a.test { route /* { cache { ttl 1m; bypass header Host }; proxy app } }\n", &[("W0161", 1, 56)]),
    ("cache key on an invalid cookie name", true, "site a.test { route /* { cache { ttl 1m; key cookie \"a b\" }; proxy app } }\n", &[("E0260", 1, 53)]),
    ("cache key on an unknown request part", true, "site a.test { route /* { cache { ttl 1m; key query q }; proxy app } }\n", &[("E0206", 1, 46)]),
    ("cache ignore_query without a name", true, "site a.test { route /* { cache { ttl 1m; ignore_query }; proxy app } }\n", &[("E0104", 1, 54)]),
    ("method without methods", true, "site a.test { route /* { method; proxy app } }\n", &[("E0104", 1, 32)]),
    ("extra argument", true, "upstream b { server 1.2.3.4:80; keepalive 10 20 }\nsite a.test { route /* { proxy b } }\n", &[("E0105", 1, 46)]),
    ("unknown listen flag", true, "listen :9090 http2\n", &[("E0105", 1, 14)]),
    ("unknown server option", true, "upstream b { server 1.2.3.4:80 wieght 2 }\nsite a.test { route /* { proxy b } }\n", &[("E0105", 1, 32)]),
    ("server with weight 0", true, "upstream b {\n    server 1.2.3.4:80 weight 0\n    server 1.2.3.5:80\n}\nsite a.test { route /* { proxy b } }\n", &[("E0313", 2, 30)]),
    ("every server with weight 0", true, "upstream b {\n    server 1.2.3.4:80 weight 0\n    server 1.2.3.5:80 weight 0 backup\n}\nsite a.test { route /* { proxy b } }\n", &[("E0313", 2, 30), ("E0313", 3, 30)]),
    ("weight above 1000", true, "upstream b { server 1.2.3.4:80 weight 1001 }\nsite a.test { route /* { proxy b } }\n", &[("E0204", 1, 39)]),
    ("only backup servers", true, "upstream b {\n    server 1.2.3.4:80 backup\n    server 1.2.3.5:80 weight 2 backup\n}\nsite a.test { route /* { proxy b } }\n", &[("E0314", 1, 10)]),
    ("one backup server alone", true, "upstream b { server 1.2.3.4:80 backup }\nsite a.test { route /* { proxy b } }\n", &[("E0314", 1, 10)]),
    ("upstream without a block", true, "upstream b\n", &[("E0106", 1, 11)]),
    ("site without a block", true, "site a.test\n", &[("E0106", 1, 12)]),
    ("block where none is taken", true, "upstream b { server 1.2.3.4:80; keepalive 4 { } }\nsite a.test { route /* { proxy b } }\n", &[("E0106", 1, 45)]),
    // ---- values
    ("word for a number", true, "upstream b { server 1.2.3.4:80; keepalive lots }\nsite a.test { route /* { proxy b } }\n", &[("E0201", 1, 43)]),
    ("string for a name", true, "site a.test { route /* { proxy \"app\" } }\n", &[("E0201", 1, 32)]),
    ("size without unit", true, "global { limits { body 10 } }\n", &[("E0202", 1, 24)]),
    ("unknown size unit", true, "global { limits { body 10kbb } }\n", &[("E0202", 1, 24)]),
    ("duration without unit", true, "global { timeouts { idle 60 } }\n", &[("E0203", 1, 26)]),
    ("unknown duration unit", true, "global { timeouts { idle 60sec } }\n", &[("E0203", 1, 26)]),
    ("duration where a size is due", true, "global { limits { body 10m } }\n", &[("E0202", 1, 24)]),
    ("zero workers", true, "global { workers 0 }\n", &[("E0204", 1, 18)]),
    ("number too large", true, "upstream b { server 1.2.3.4:80; keepalive 99999999999999999999999 }\nsite a.test { route /* { proxy b } }\n", &[("E0204", 1, 43)]),
    ("size overflows", true, "global { limits { body 99999999999gb } }\n", &[("E0204", 1, 24)]),
    ("listen without port", true, "listen 0.0.0.0\n", &[("E0205", 1, 8)]),
    ("server without port", true, "upstream b { server localhost }\nsite a.test { route /* { proxy b } }\n", &[("E0205", 1, 21)]),
    ("admin bad address", true, "global { admin localhost:99999 }\n", &[("E0205", 1, 16)]),
    ("admin on a non-loopback address", true, "global { admin 0.0.0.0:9901 }\n", &[("E0601", 1, 16)]),
    ("admin on every address by port only", true, "global { admin :9901 }\n", &[("E0601", 1, 16)]),
    ("admin token file missing", true, "global { admin 127.0.0.1:9901 token_file \"/nonexistent/bext-admin.token\" }\n", &[("E0602", 1, 42)]),
    ("otlp over https", true, "global { tracing { otlp \"https://c:4318/v1/traces\" } }\n", &[("E0610", 1, 25)]),
    ("otlp export interval out of range", true, "global { tracing { otlp \"http://127.0.0.1:4318\" interval 5ms } }\n", &[("E0610", 1, 25)]),
    ("otlp endpoint without a host", true, "global { tracing { otlp \"http://:4318/v1/traces\" } }\n", &[("E0610", 1, 25)]),
    ("sampling rate over 100%", true, "global { tracing { sample 150% } }\n", &[("E0611", 1, 27)]),
    ("sampling rate with five decimals", true, "global { tracing { sample 0.00001% } }\n", &[("E0611", 1, 27)]),
    ("tracing parent policy misspelt", true, "global { tracing { parent trused } }\n", &[("E0206", 1, 27)]),
    ("static root missing", true, "site a.test { route /* { static \"/nonexistent/bext-static-root\" } }\n", &[("W0150", 1, 33)]),
    ("static root is not a directory", true, "site a.test { route /* { static \"/dev/null\" index index.html } }\n", &[("W0150", 1, 33)]),
    ("admin token file without a path", true, "global { admin 127.0.0.1:9901 token_file }\n", &[("E0104", 1, 41)]),
    ("compress level out of range", true, "site a.test { route /* { compress gzip { level gzip 10 }; proxy app } }\n", &[("E0250", 1, 53)]),
    ("compress level 0 for zstd", true, "site a.test { route /* { compress zstd { level zstd 0 }; proxy app } }\n", &[("E0250", 1, 53)]),
    ("compress level not a number", true, "site a.test { route /* { compress br { level br fast }; proxy app } }\n", &[("E0201", 1, 49)]),
    ("compress level for an encoding not offered", true, "site a.test { route /* { compress br gzip { level zstd 3 }; proxy app } }\n", &[("E0251", 1, 51)]),
    ("compress level twice", true, "site a.test { route /* {\n    compress br { level br 4; level br 5 }\n    proxy app\n} }\n", &[("E0103", 2, 31)]),
    ("compress invalid media type", true, "site a.test { route /* { compress br { types text/html html \"text/html; charset=utf-8\" */* }; proxy app } }\n", &[("E0252", 1, 56), ("E0252", 1, 61), ("E0252", 1, 88)]),
    ("compress unknown block directive", true, "site a.test { route /* { compress br { min_length 1kb }; proxy app } }\n", &[("E0101", 1, 40)]),
    ("compress without encodings", true, "site a.test { route /* { compress { min_size 1kb }; proxy app } }\n", &[("E0104", 1, 35)]),
    ("compress min_size without unit", true, "site a.test { route /* { compress br { min_size 256 }; proxy app } }\n", &[("E0202", 1, 49)]),
    ("unknown balance policy", true, "upstream b { server 1.2.3.4:80; balance round-robin }\nsite a.test { route /* { proxy b } }\n", &[("E0206", 1, 41)]),
    ("lower-case method", true, "site a.test { route /* { method get; proxy app } }\n", &[("E0206", 1, 33)]),
    ("unknown encoding", true, "site a.test { route /* { compress gz; proxy app } }\n", &[("E0206", 1, 35)]),
    ("unknown rule set", true, "waf w { ruleset builtin/sqlinjection }\nsite a.test { route /* { waf w; proxy app } }\n", &[("E0206", 1, 17)]),
    ("unknown log format", true, "global { access_log stdout jsonl }\n", &[("E0206", 1, 28)]),
    ("unknown hash key", true, "upstream b { server 1.2.3.4:80; balance hash ip }\nsite a.test { route /* { proxy b } }\n", &[("E0206", 1, 46)]),
    ("respond status out of range", true, "site a.test { route /* { respond 700 } }\n", &[("E0207", 1, 34)]),
    ("redirect with a non-redirect status", true, "site a.test { route /* { redirect 200 \"/x\" } }\n", &[("E0207", 1, 35)]),
    ("retry on a 4xx", true, "upstream b { server 1.2.3.4:80; retry 2 on 404 }\nsite a.test { route /* { proxy b } }\n", &[("E0207", 1, 44)]),
    ("route regex does not compile", true, "site a.test { route ~ '(' { proxy app } }\n", &[("E0208", 1, 24)]),
    ("rewrite regex does not compile", true, "site a.test { route /* { rewrite '[a-' \"/x\"; proxy app } }\n", &[("E0208", 1, 35)]),
    ("header condition regex does not compile", true, "site a.test { route /* { header x-a ~ '+'; proxy app } }\n", &[("E0208", 1, 40)]),
    ("rewrite group beyond the pattern's groups", true, "site a.test { route /* { rewrite '^/a/(.*)$' \"/b/$2\"; proxy app } }\n", &[("E0216", 1, 50)]),
    ("rewrite group with a pattern without groups", true, "site a.test { route /* { rewrite '^/a' \"/b$1/$1\"; proxy app } }\n", &[("E0216", 1, 43)]),
    ("rewrite group beyond the pattern's groups, after an escape", true, "site a.test { route /* { rewrite '^/(a)' \"/\\u{41}$2\"; proxy app } }\n", &[("E0216", 1, 50)]),
    ("rewrite $0", true, "site a.test { route /* { rewrite '^/(a)' \"/x/$0\"; proxy app } }\n", &[("E0216", 1, 46)]),
    ("rewrite unknown placeholder", true, "site a.test { route /* { rewrite '^/a' \"/b/{host}\"; proxy app } }\n", &[("E0216", 1, 44)]),
    ("rewrite to something that is not a path", true, "site a.test { route /* { rewrite '^/a/(.*)$' \"b/$1\"; proxy app } }\n", &[("E0216", 1, 47)]),
    ("strip_prefix and rewrite on one route", true, "site a.test {\n    route /api/* {\n        rewrite '^/api/(.*)$' \"/$1\"\n        strip_prefix /api\n        proxy app\n    }\n}\n", &[("E0315", 4, 9)]),
    ("host with a port", true, "site a.test:8080 { route /* { proxy app } }\n", &[("E0209", 1, 6)]),
    ("host with a bad label", true, "site -bad-.test { route /* { proxy app } }\n", &[("E0209", 1, 6)]),
    ("path without slash", true, "site a.test { route api/* { proxy app } }\n", &[("E0210", 1, 21)]),
    ("star inside a path", true, "site a.test { route /a/*/b { proxy app } }\n", &[("E0210", 1, 21)]),
    ("invalid header name", true, "site a.test { route /* { request_header set \"x y\" \"1\"; proxy app } }\n", &[("E0211", 1, 45)]),
    ("header name with a colon", true, "site a.test { route /* { response_header set \"x-a: b\" \"1\"; proxy app } }\n", &[("E0211", 1, 46)]),
    ("header name with a line feed", true, "site a.test { route /* { request_header add \"x\\ny\" \"1\"; proxy app } }\n", &[("E0211", 1, 45)]),
    ("hash header name that is not a token", true, "upstream b { server 1.2.3.4:80; balance hash header \"x y\" }\nsite a.test { route /* { proxy b } }\n", &[("E0211", 1, 53)]),
    ("rate_limit header name that is not a token", true, "site a.test { route /* { rate_limit 10/s per header \"x y\"; proxy app } }\n", &[("E0211", 1, 53)]),
    ("WAF header subject that is not a token", true, "waf w { rule r when header \"a b\" present => log }\nsite a.test { route /* { waf w; proxy app } }\n", &[("E0211", 1, 28)]),
    ("header condition name that is not a token", true, "site a.test { route /* { header \"a:b\" = \"1\"; proxy app } }\n", &[("E0211", 1, 33)]),
    ("line feed in a header value", true, "site a.test { route /* { response_header set x-a \"1\\nSet-Cookie: a=b\"; proxy app } }\n", &[("E0230", 1, 52)]),
    ("carriage return in a request header value", true, "site a.test { route /* { request_header add x-a \"a\\r\\nb\"; proxy app } }\n", &[("E0230", 1, 51)]),
    ("unicode escape of a line feed in a header value", true, "site a.test { route /* { response_header set x-a \"a\\u{a}b\"; proxy app } }\n", &[("E0230", 1, 52)]),
    ("a tab in a header value is allowed", true, "site a.test { route /* { response_header set x-a \"a\\tb\"; proxy app } }\n", &[]),
    ("raw control character in a header value", true, "site a.test { route /* { response_header set x-a \"a\u{1}b\"; proxy app } }\n", &[("E0230", 1, 52)]),
    ("line feed in a redirect location", true, "site a.test { route /old { redirect 301 \"/new\\r\\nSet-Cookie: x=1\" } }\n", &[("E0230", 1, 46)]),
    ("line feed in a content type", true, "site a.test { route /x { respond 200 \"ok\" type \"text/plain\\n\" } }\n", &[("E0230", 1, 59)]),
    ("line feed in a rewrite replacement", true, "site a.test { route /* { rewrite '^/a$' \"/b\\n\"; proxy app } }\n", &[("E0230", 1, 44)]),
    ("line feed in a health-check path", true, "upstream b { server 1.2.3.4:80; health http \"/h\\nHost: x\" }\nsite a.test { route /* { proxy b } }\n", &[("E0230", 1, 48)]),
    ("tab in a health-check path", true, "upstream b { server 1.2.3.4:80; health http \"/h\\t\" }\nsite a.test { route /* { proxy b } }\n", &[("E0230", 1, 48)]),
    ("DEL in a route path", true, "site a.test { route \"/a\\u{7f}\" { proxy app } }\n", &[("E0230", 1, 24)]),
    ("invalid CIDR", true, "waf w { rule r when client_ip in 10.0.0.0/33 => deny }\nsite a.test { route /* { waf w; proxy app } }\n", &[("E0212", 1, 34)]),
    ("percentage over 100", true, "upstream b { server 1.2.3.4:80; retry 1 budget 150% }\nsite a.test { route /* { proxy b } }\n", &[("E0213", 1, 48)]),
    ("incomplete WAF condition", true, "waf w { rule r when path => deny }\nsite a.test { route /* { waf w; proxy app } }\n", &[("E0214", 1, 25)]),
    ("present on a subject without a name", true, "waf w { rule r when path present => log }\nsite a.test { route /* { waf w; proxy app } }\n", &[("E0214", 1, 26)]),
    ("condition with a trailing token", true, "waf w { rule r when path = \"/x\" \"/y\" => log }\nsite a.test { route /* { waf w; proxy app } }\n", &[("E0214", 1, 33)]),
    ("bad rate", true, "site a.test { route /* { rate_limit 100/sec; proxy app } }\n", &[("E0215", 1, 37)]),
    ("rate above one per microsecond", true, "site a.test { route /* { rate_limit 1000001/s; proxy app } }\n", &[("E0215", 1, 37)]),
    // ---- names, references, listeners, sites
    ("upstream defined twice", true, "upstream app { server 1.2.3.5:80 }\n", &[("E0301", 1, 10)]),
    ("waf defined twice", true, "waf w { ruleset builtin/xss }\nwaf w { ruleset builtin/sqli }\nsite a.test { route /* { waf w; proxy app } }\n", &[("E0302", 2, 5)]),
    ("WAF rule defined twice", true, "waf w {\n    rule r when path = \"/a\" => log\n    rule r when path = \"/b\" => log\n}\nsite a.test { route /* { waf w; proxy app } }\n", &[("E0302", 3, 10)]),
    ("undefined upstream", true, "site a.test { route /* { proxy apq } }\n", &[("E0303", 1, 32)]),
    ("undefined waf", true, "site a.test { route /* { waf strict; proxy app } }\n", &[("E0304", 1, 30)]),
    ("port bound twice", true, "listen 127.0.0.1:8080\n", &[("E0305", 1, 8)]),
    ("tls without a certificate", true, "listen :8443 tls\n", &[("E0306", 1, 14)]),
    ("tls with an empty block", true, "listen :8443 tls {}\n", &[("E0306", 1, 14)]),
    ("host served by two sites", true, "site prelude.test { route /* { proxy app } }\n", &[("E0307", 1, 6)]),
    ("host listed twice in one site", true, "site a.test A.test { route /* { proxy app } }\n", &[("E0307", 1, 13)]),
    ("upstream without servers", true, "upstream b { keepalive 4 }\nsite a.test { route /* { proxy b } }\n", &[("E0308", 1, 10)]),
    ("route without an action", true, "site a.test { route /* { method GET } }\n", &[("E0309", 1, 15)]),
    ("route with two actions", true, "site a.test { route /* { proxy app; respond 200 } }\n", &[("E0310", 1, 37)]),
    ("strip_prefix outside the route path", true, "site a.test { route /api/* { strip_prefix /v1; proxy app } }\n", &[("E0311", 1, 43)]),
    ("http3 without tls", true, "listen :8443 http3\n", &[("E0312", 1, 14)]),
    ("client_auth without ca", true, "listen :8443 tls {\n    cert a.pem key a.key\n    client_auth { optional }\n}\n", &[("E0316", 3, 5)]),
    ("ALPN protocol not served", true, "listen :8443 tls {\n    cert a.pem key a.key\n    alpn h2 http/1.1\n}\n", &[("E0317", 3, 10)]),
    ("hsts preload without include_subdomains", true, "site a.test { hsts max_age 30d preload; route /* { proxy app } }\n", &[("E0318", 1, 32)]),
    ("QUIC streams below their bounds", true, "listen :8443 tls { cert a.pem key a.key } http3 { max_streams 0 }\n", &[("E0320", 1, 63)]),
    ("QUIC streams above their bounds", true, "listen :8443 tls { cert a.pem key a.key } http3 { max_streams 10001 }\n", &[("E0320", 1, 63)]),
    ("QUIC stream window below its bounds", true, "listen :8443 tls { cert a.pem key a.key } http3 { stream_window 1kb }\n", &[("E0320", 1, 65)]),
    ("QUIC connection window above its bounds", true, "listen :8443 tls { cert a.pem key a.key } http3 { connection_window 1gb }\n", &[("E0320", 1, 69)]),
    ("QUIC idle timeout above its bounds", true, "listen :8443 tls { cert a.pem key a.key } http3 { idle_timeout 11m }\n", &[("E0320", 1, 64)]),
    ("QUIC early data neither on nor off", true, "listen :8443 tls { cert a.pem key a.key } http3 { early_data yes }\n", &[("E0206", 1, 62)]),
    ("QUIC early data without a session cache", true, "listen :8443 tls { cert a.pem key a.key; session_cache 0 } http3 { early_data on }\n", &[("E0322", 1, 68)]),
    ("QUIC idle timeout below its bounds", true, "listen :8443 tls { cert a.pem key a.key } http3 { idle_timeout 500ms }\n", &[("E0320", 1, 64)]),
    ("QUIC connection window under the stream window", true, "listen :8443 tls { cert a.pem key a.key } http3 {\n    stream_window 4mb\n    connection_window 2mb\n}\n", &[("E0321", 3, 23)]),
    ("QUIC stream window over the default connection window", true, "listen :8443 tls { cert a.pem key a.key } http3 { stream_window 16mb }\n", &[("E0321", 1, 65)]),
    ("QUIC limit given twice", true, "listen :8443 tls { cert a.pem key a.key } http3 { max_streams 10; max_streams 20 }\n", &[("E0103", 1, 67)]),
    ("QUIC limit misspelt", true, "listen :8443 tls { cert a.pem key a.key } http3 { idle_timout 3s }\n", &[("E0101", 1, 51)]),
    ("QUIC limit without a unit", true, "listen :8443 tls { cert a.pem key a.key } http3 { stream_window 65536 }\n", &[("E0202", 1, 65)]),
    ("redirect https without a tls listener", true, "site a.test { redirect https; route /* { proxy app } }\n", &[("E0319", 1, 15)]),
    ("upstream sni that is a wildcard", false, "listen :8080\nupstream b { server 127.0.0.1:9 tls sni *.x.test }\nsite a.test { route /* { proxy b } }\n", &[("E0714", 2, 41)]),
    ("tls settings given twice", true, "listen :8443 tls {\n    cert a.pem key a.key\n    tickets off\n    tickets on\n}\n", &[("E0103", 4, 5)]),
    // ---- route table
    ("identical routes", true, "site a.test {\n    route /a/* { proxy app }\n    route /a/* { respond 200 }\n}\n", &[("E0401", 3, 11)]),
    ("equal priority, overlapping methods", true, "site a.test {\n    route = /x { method GET; proxy app }\n    route = /x { method GET HEAD; respond 200 }\n}\n", &[("E0401", 3, 13)]),
    ("redirect to itself", true, "site a.test { route /* { redirect 301 \"/new{path}\" } }\n", &[("E0402", 1, 39)]),
    ("exact redirect to itself", true, "site a.test {\n    route = /a { redirect \"/a?x=1\" }\n    route /* { proxy app }\n}\n", &[("E0402", 2, 27)]),
    ("a POST redirected with 303 is not a loop", true, "site a.test { route /* { method POST; redirect 303 \"/done\" } }\n", &[]),
    ("prefix route shadowed by an unanchored regex", true, "site a.test {\n    route ~ '/api' { proxy app }\n    route /v1/api/* { respond 200 }\n}\n", &[("W0401", 3, 11)]),
    ("a longer anchored regex shadows nothing", true, "site a.test {\n    route ~ '^/api/v2/x' { proxy app }\n    route /api/* { respond 200 }\n}\n", &[]),
    ("disjoint methods are not a tie", true, "site a.test {\n    route /o/* { method GET; proxy app }\n    route /o/* { method POST; proxy app }\n    route /o/* { proxy app }\n}\n", &[]),
    ("different header values are not a tie", true, "site a.test {\n    route /* { header x-v = \"1\"; proxy app }\n    route /* { header X-V = \"2\"; proxy app }\n}\n", &[]),
    ("an anchored regex shadows nothing", true, "site a.test {\n    route ~ '^/api$' { proxy app }\n    route /api/* { proxy app }\n}\n", &[]),
    ("a regex with narrower conditions shadows nothing", true, "site a.test {\n    route ~ '^/api' { method GET; proxy app }\n    route /api/* { proxy app }\n}\n", &[]),
    ("unused upstream", true, "upstream spare { server 1.2.3.4:80 }\n", &[("W0101", 1, 10)]),
    ("unused waf", true, "waf w { ruleset builtin/xss }\n", &[("W0102", 1, 5)]),
    ("no listener", false, "upstream app { server 1.2.3.4:80 }\nsite a.test { route /* { proxy app } }\n", &[("W0103", 2, 1)]),
    ("prefix route shadowed by a regex", true, "site a.test {\n    route ~ '^/api' { proxy app }\n    route /api/v2/* { respond 200 }\n}\n", &[("W0401", 3, 11)]),
];

fn actual(prelude: bool, src: &str) -> Vec<(String, u32, u32)> {
    let full = if prelude {
        format!("{PRELUDE}{src}")
    } else {
        src.to_string()
    };
    let offset = if prelude { PRELUDE_LINES } else { 0 };
    let diags: Vec<Diagnostic> = match compile_str("t.bext", &full) {
        Ok(c) => c.warnings,
        Err(f) => f.diagnostics().to_vec(),
    };
    diags
        .into_iter()
        .map(|d| (d.code.to_string(), d.line.saturating_sub(offset), d.col))
        .collect()
}

#[test]
fn the_table_is_big_enough() {
    assert!(CASES.len() >= 60, "{} cases", CASES.len());
}

#[test]
fn the_prelude_is_clean() {
    assert_eq!(actual(true, ""), vec![]);
}

#[test]
fn each_bad_config_reports_its_diagnostics() {
    let mut failures = vec![];
    for (name, prelude, src, expected) in CASES {
        let got = actual(*prelude, src);
        let want: Vec<(String, u32, u32)> = expected
            .iter()
            .map(|(c, l, col)| (c.to_string(), *l, *col))
            .collect();
        if got != want {
            failures.push(format!("{name}:\n  want {want:?}\n  got  {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn several_mistakes_are_all_reported() {
    let src = "\
listen :8080
listen :8080
upstream app { server 127.0.0.1:9000; balance fastest }
upstream spare { server nowhere }
site a.test {
    route /api/* { proxy ap; rate_limit 10/x }
    route /* { proxi app }
    route ~ '(' { respond 200 }
}
global { limits { body 10 } }
";
    let got: Vec<(String, u32, u32)> = match compile_str("t.bext", src) {
        Ok(_) => panic!("compiled"),
        Err(f) => f
            .diagnostics()
            .iter()
            .map(|d| (d.code.to_string(), d.line, d.col))
            .collect(),
    };
    // In file order. No W0101 for `spare`: `proxy ap` did not resolve, so which upstreams are
    // used is not known; no E0309 for the route whose action is misspelt (`proxi`).
    let want = [
        ("E0305", 2, 8),
        ("E0206", 3, 47),
        ("E0205", 4, 25),
        ("E0303", 6, 26),
        ("E0215", 6, 41),
        ("E0101", 7, 16),
        ("E0208", 8, 14),
        ("E0202", 10, 24),
    ];
    let want: Vec<(String, u32, u32)> = want
        .iter()
        .map(|(c, l, col)| (c.to_string(), *l, *col))
        .collect();
    assert_eq!(got, want);
}

/// The caps on routes (E0231) and regexes (E0232): only the first item past the cap is reported.
#[test]
fn too_many_routes_and_too_many_regexes_are_reported_once() {
    let mut src = String::from(PRELUDE);
    src.push_str("site a.test {\n");
    for i in 0..10_002 {
        src.push_str(&format!("    route = /r{i} {{ proxy app }}\n"));
    }
    src.push_str("}\n");
    let got: Vec<(String, u32, u32)> = compile_str("t.bext", &src)
        .expect_err("too many routes")
        .diagnostics()
        .iter()
        .map(|d| (d.code.to_string(), d.line, d.col))
        .collect();
    assert_eq!(got, vec![("E0231".to_string(), 4 + 10_001, 5)]);

    let mut src = String::from(PRELUDE);
    src.push_str("site a.test {\n");
    for i in 0..1_002 {
        src.push_str(&format!("    route ~ '^/r{i}$' {{ proxy app }}\n"));
    }
    src.push_str("}\n");
    let got: Vec<(String, u32, u32)> = compile_str("t.bext", &src)
        .expect_err("too many regexes")
        .diagnostics()
        .iter()
        .map(|d| (d.code.to_string(), d.line, d.col))
        .collect();
    assert_eq!(got, vec![("E0232".to_string(), 4 + 1_001, 13)]);
}

/// E0501 (a directive the engine does not run) points at the word itself: `http3` after a
/// multi-line `tls` block, `static` inside its route — not at the `listen` or `route` line.
#[test]
fn not_implemented_points_at_the_word() {
    let src = "listen :443 tls {\n    cert \"a.pem\" key \"a.key\"\n} http3\nsite a.test {\n    route /static/* {\n        # static files\n        static \"/srv\"\n    }\n}\n";
    let c = compile_str("t.bext", src).expect("valid language");
    let at = |directive: &str, loc: &bext_ir::Loc| {
        let d = bext_dsl::diag::not_implemented(&c.sources, directive, loc).expect("located");
        assert_eq!(d.code, "E0501");
        (d.line, d.col)
    };
    assert_eq!(at("http3", &c.config.listeners[0].at), (3, 3));
    assert_eq!(at("static", &c.config.sites[0].routes[0].at), (7, 9));
    let tls = c.config.listeners[0].tls.as_ref().expect("tls");
    assert_eq!(at("tls", &tls.at), (1, 13));
}

#[test]
fn include_cycles_and_included_files_are_reported_with_their_file() {
    let dir = std::env::temp_dir().join(format!("bext-dsl-inc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    std::fs::write(dir.join("a.bext"), "include \"b.bext\"\nlisten :8080\n").expect("write");
    std::fs::write(
        dir.join("b.bext"),
        "upstream app { server 1.2.3.4:80 }\ninclude \"a.bext\"\nkeepalive 3\n",
    )
    .expect("write");
    let main = dir.join("a.bext");
    let f = bext_dsl::compile_file(&main).expect_err("cycle");
    let got: Vec<(String, String, u32, u32)> = f
        .diagnostics()
        .iter()
        .map(|d| {
            let file = std::path::Path::new(&d.file)
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            (d.code.to_string(), file, d.line, d.col)
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("W0101".to_string(), "b.bext".to_string(), 1, 10),
            ("E0004".to_string(), "b.bext".to_string(), 2, 9),
            ("E0102".to_string(), "b.bext".to_string(), 3, 1),
        ]
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn labels_are_drawn_in_source_order_under_the_primary_span() {
    let src = "listen :8080\nlisten 127.0.0.1:8080\n";
    let f = compile_str("t.bext", src).expect_err("port clash");
    let want = "\
error[E0305]: port 8080 is already bound by `listen 0.0.0.0:8080`
 --> t.bext:2:8
  |
1 | listen :8080
  |        ----- first bound here
2 | listen 127.0.0.1:8080
  |        ^^^^^^^^^^^^^^
";
    assert_eq!(
        f.diagnostics()[0].render_human(match &f {
            bext_dsl::Failure::Invalid { sources, .. } => sources,
            bext_dsl::Failure::Io { .. } => unreachable!(),
        }),
        want
    );
}

/// E0208 as an operator sees it: the regex engine's reason, the caret inside the pattern at the
/// part at fault, the whole pattern labelled on the same line (docs/diagnostics.md shows this).
#[test]
fn a_bad_regex_is_shown_with_its_reason_inside_the_pattern() {
    let src = "listen :8080\nsite a.test {\n    route ~ '^/user/(\\d+' { respond 200 }\n}\n";
    let f = compile_str("site.bext", src).expect_err("bad regex");
    let want = "\
error[E0208]: invalid regular expression: unclosed group
 --> site.bext:3:21
  |
3 |     route ~ '^/user/(\\d+' { respond 200 }
  |             ------------- in this pattern
  |                     ^
  = help: add the missing `)`, or write `\\(` for a literal parenthesis
";
    assert_eq!(f.diagnostics().len(), 1);
    assert_eq!(
        f.diagnostics()[0].render_human(match &f {
            bext_dsl::Failure::Invalid { sources, .. } => sources,
            bext_dsl::Failure::Io { .. } => unreachable!(),
        }),
        want
    );
}
