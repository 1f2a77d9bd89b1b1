//! Writes a large, valid configuration to stdout, for timing `bext check`:
//!
//! ```text
//! cargo run -p bext-dsl --release --example gen_routes -- 10000 [SITES] > /tmp/routes.bext
//! time bext check /tmp/routes.bext
//! ```
//!
//! The routes mix the three path kinds (prefix, exact, regex, some regexes without `$` so the
//! shadow analysis has work to do), method conditions and every action, over SITES sites
//! (default 10) and 20 upstreams.

use std::fmt::Write as _;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let sites: usize = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .filter(|s| *s > 0)
        .unwrap_or(10);
    print!("{}", generate(n, sites));
}

/// `n` routes over `sites` sites (at least one) and 20 upstreams. Also used by
/// `benches/compile.rs`.
pub fn generate(n: usize, sites: usize) -> String {
    let sites = sites.max(1);
    let mut s = String::new();
    s.push_str("listen 0.0.0.0:8080\n\n");
    for u in 0..20 {
        let _ = writeln!(
            s,
            "upstream u{u} {{\n    server 10.1.{u}.1:8080 weight 2\n    server 10.1.{u}.2:8080\n    balance p2c\n}}\n"
        );
    }
    for site in 0..sites {
        let _ = writeln!(s, "site s{site}.example.com {{");
        for i in (site..n).step_by(sites) {
            let up = (i / 10) % 20;
            let route = match i % 10 {
                0..=5 => format!("route /p{i}/* {{ proxy u{up} }}"),
                6 => format!("route /m{i}/* {{ method GET HEAD; proxy u{up} }}"),
                7 => format!("route = /e{i} {{ respond 200 \"ok\" }}"),
                8 => format!("route ~ '^/r{i}/[0-9]+$' {{ proxy u{up} }}"),
                _ => format!(
                    "route ~ '^/w{i}/[a-z]+' {{ redirect 301 \"/p{}/\" }}",
                    i - 9
                ),
            };
            let _ = writeln!(s, "    {route}");
        }
        s.push_str("}\n\n");
    }
    s
}
