//! Hints for what newcomers write out of habit: nginx directives, and control characters.
//!
//! Someone who knows nginx writes `proxy_pass`, `location` or `listen 80;` first. The checker
//! reports those like any unknown directive (E0101) or misplaced one (E0102), with a help line
//! that says how bext spells the same thing, rather than a did-you-mean that happens to be close
//! (`root` is one letter from `route`, which is not what was meant).

/// How bext says what the nginx directive `name` says, when there is a well-known equivalent.
pub fn nginx(name: &str) -> Option<&'static str> {
    Some(match name {
        "proxy_pass" => {
            "bext writes `proxy NAME` inside a `route`, NAME being an `upstream NAME { server HOST:PORT }` block at the top level"
        }
        "location" => {
            "bext calls it a route: `route /prefix/* { ... }`, `route = /exact { ... }` or `route ~ 'regex' { ... }`, inside a `site`"
        }
        "server_name" => "bext names the hosts on the site itself: `site example.com www.example.com { ... }`",
        "server" => {
            "a virtual server is `site HOST { ... }` in bext; `server HOST:PORT` lines list the servers of an `upstream`"
        }
        "return" => {
            "inside a route, write `redirect 301 \"https://example.com{path}\"` or `respond 404`"
        }
        "client_max_body_size" => "bext writes `global { limits { body 10mb } }`",
        "root" | "alias" | "try_files" | "autoindex" => {
            "bext serves files with `static \"/var/www\"` inside a route"
        }
        "index" => "bext writes `static \"/var/www\" index index.html` inside a route",
        "proxy_set_header" | "more_set_input_headers" => {
            "bext writes `request_header set NAME \"VALUE\"` inside a route"
        }
        "add_header" | "more_set_headers" => {
            "bext writes `response_header set NAME \"VALUE\"` inside a route"
        }
        "proxy_hide_header" => "bext writes `response_header remove NAME` inside a route",
        "gzip" | "brotli" | "zstd" => "bext writes `compress zstd br gzip` inside a route",
        "ssl_certificate" | "ssl_certificate_key" | "ssl" => {
            "bext configures TLS on the listener: `listen :443 tls { cert \"site.pem\" key \"site.key\" }`"
        }
        "worker_processes" => "bext writes `global { workers auto }`",
        "keepalive_timeout" => "bext writes `global { timeouts { idle 60s } }`",
        "client_header_timeout" => "bext writes `global { timeouts { header 10s } }`",
        "client_body_timeout" => "bext writes `global { timeouts { body 30s } }`",
        "proxy_connect_timeout" => "bext writes `timeouts { connect 5s }` inside the `upstream`",
        "proxy_read_timeout" | "proxy_send_timeout" => {
            "bext writes `timeouts { response 60s }` inside the `upstream`"
        }
        "limit_req" | "limit_req_zone" => "bext writes `rate_limit 100/s` inside a route",
        "error_log" | "error_page" => {
            "bext has no such directive; docs/language.md lists what a route can do"
        }
        "http" | "events" | "stream" => {
            "a .bext file has no `http` or `events` wrapper: write `listen`, `upstream` and `site` at the top level"
        }
        "least_conn" | "ip_hash" | "random" => {
            "bext writes the policy with `balance`: `balance least_conn`, `balance hash client_ip`, `balance random`"
        }
        _ => return None,
    })
}

/// How bext says the nginx option `word` of an upstream `server` line (`max_fails=3`).
pub fn nginx_server_option(word: &str) -> Option<String> {
    let (key, value) = word.split_once('=')?;
    let v = if value.is_empty() { "N" } else { value };
    Some(match key {
        "weight" => format!("write `weight {v}` (a space, no `=`)"),
        "max_fails" => {
            format!("passive health is one line in the upstream in bext: `eject after {v} for 30s`")
        }
        "fail_timeout" => {
            format!("passive health is one line in the upstream in bext: `eject after 3 for {v}`")
        }
        "max_conns" => format!("write `max_connections {v}` in the upstream (per worker)"),
        _ => return None,
    })
}

/// A control character named for a message: `line feed (\n)`, `U+0001`.
pub fn control_name(c: char) -> String {
    match c {
        '\n' => "a line feed (\\n)".into(),
        '\r' => "a carriage return (\\r)".into(),
        '\t' => "a tab (\\t)".into(),
        '\0' => "a NUL character".into(),
        c => format!("the control character U+{:04X}", u32::from(c)),
    }
}

/// The shape of `directive`, for the help line of a missing, extra or ill-typed argument.
pub fn usage(directive: &str) -> Option<&'static str> {
    Some(match directive {
        "listen" => {
            "write `listen :8080`, `listen 0.0.0.0:443 tls { cert \"a.pem\" key \"a.key\" } http3`"
        }
        "upstream" => "write `upstream app { server 127.0.0.1:9000 }`",
        "site" => "write `site example.com { route /* { proxy app } }`",
        "route" => "write `route /api/* { proxy app }` (a path, then a block)",
        "global" => "write `global { workers auto }`",
        "waf" => {
            "write `waf NAME { import crs \"/etc/crs/rules\" paranoia 1 }` at the top level, `waf NAME [exclude ID…]` in a route"
        }
        "server" => "write `server 127.0.0.1:9000 [weight 1..1000] [backup] [tls [sni NAME] [ca FILE]]`",
        "balance" => {
            "write `balance round_robin`, `least_conn`, `p2c`, `random` or `hash client_ip`"
        }
        "keepalive" => "write `keepalive 32` (idle connections per worker)",
        "health" => "write `health http \"/healthz\" every 5s` or `health tcp`",
        "eject" => "write `eject after 5 for 30s max 5m`, or `eject off`",
        "retry" => "write `retry 2 on connect_error 502 503 budget 20%`, or `retry off`",
        "max_connections" | "max_pending" => "write a number, for example `max_connections 1000`",
        "workers" => "write `workers auto` or a number from 1 to 1024",
        "admin" => "write `admin 127.0.0.1:9901` or `admin \"/run/bext/admin.sock\"`, then optionally `token_file \"/etc/bext/admin.token\"`",
        "pid_file" => "write `pid_file \"/run/bext.pid\"`",
        "metrics" => "write `metrics on` or `metrics off`",
        "access_log" => {
            "write `access_log stdout json`, `access_log \"/var/log/bext.log\" combined`"
        }
        "proxy" => "write `proxy NAME`, NAME being an `upstream NAME { ... }` block",
        "respond" => {
            "write `respond 200 \"body\" type \"text/plain\"` (the body is a quoted string)"
        }
        "redirect" => "write `redirect 301 \"https://example.com{path}\"` (the status first)",
        "static" => "write `static \"/var/www\" index index.html`",
        "strip_prefix" => "write `strip_prefix /api`",
        "rewrite" => "write `rewrite '^/old/(.*)$' \"/new/$1\"`",
        "request_header" | "response_header" => {
            "write `set NAME \"VALUE\"`, `add NAME \"VALUE\"` or `remove NAME` after the directive"
        }
        "method" => "write `method GET HEAD`",
        "import" => "write `import crs \"/etc/crs/rules\" paranoia 1 [anomaly_threshold 5 4] [exclude 942100] [skip_unsupported]`",
        "mode" => "write `mode block` or `mode detect`",
        "past_limit" => "write `past_limit pass` or `past_limit block`",
        "header" | "query" => {
            "write `header NAME = \"VALUE\"` (or `~ 'regex'`, `starts_with`, `contains`, `present`)"
        }
        "rate_limit" => {
            "write `rate_limit 100/s [per client_ip | per header NAME | global] [burst N]`"
        }
        "cache" => "write `cache { ttl 10m }`",
        "compress" => "write `compress zstd br gzip`",
        "request_buffering" => "write `request_buffering on` or `request_buffering off`",
        "plugin" => "write `plugin \"filter.wasm\"`",
        "cert" => "write `cert \"site.pem\" key \"site.key\" [sni example.com]`",
        "ruleset" => "write `ruleset builtin/sqli builtin/xss`",
        "rule" => "write `rule NAME when CONDITION => deny`",
        "include" => "write `include \"sites/example.bext\"`",
        "header_bytes" | "uri_bytes" | "body" | "inspect_body" | "max" => {
            "write a size such as `16kb` or `10mb`"
        }
        "headers" => "write a number, for example `headers 100`",
        "connect" | "response" | "idle" | "drain" | "tunnel" | "ttl" | "stale_while_revalidate" => {
            "write a duration such as `500ms`, `5s` or `10m`"
        }
        _ => return None,
    })
}
