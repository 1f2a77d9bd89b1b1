//! A micro benchmark without a harness: compiles CRS from a folder and times one benign
//! request and one attack, with scratch space reused as a worker thread would.
//!
//! `cargo run --release -p bext-waf --example waf_bench -- DIR [PARANOIA] [REQUESTS] [CASE]`
//!
//! Cases: `benign` (a GET with a query and a cookie, 30 values), `attack` (SQLi and XSS in the
//! query), `json` (a POST of a 16 KiB JSON document of 1,200 values).
//!
//! Timings on a shared machine are noisy; instructions are not: compare
//! `perf stat -e instructions:u` of a run with REQUESTS and one with 0 (the difference over
//! REQUESTS per case is the instructions per request, compilation excluded).

use std::time::Instant;

use bext_waf::seclang::{import_dir, ImportOptions};
use bext_waf::{Config, Transaction, Waf};

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .unwrap_or_else(|| "../shared/corpora/crs-v4/crs-data".into());
    let paranoia: u8 = args.next().and_then(|p| p.parse().ok()).unwrap_or(1);
    let n: u32 = args.next().and_then(|p| p.parse().ok()).unwrap_or(2000);
    let only = args.next();
    let opts = ImportOptions {
        skip_unsupported: true,
        ..Default::default()
    };
    let t0 = Instant::now();
    let import = import_dir(dir.as_ref(), &opts).expect("rules import");
    let t1 = Instant::now();
    let config = Config {
        paranoia,
        skip_unsupported: true,
        ..Config::default()
    };
    let waf = Waf::compile(&import.rules, config).expect("rules compile");
    let t2 = Instant::now();
    println!(
        "import {:?}, compile {:?} at PL{paranoia}: {} rules, {} chains, regexes/sets {:?} ({} prefiltered), {} phrases, ~{} KiB automata, {} unsupported",
        t1 - t0,
        t2 - t1,
        waf.rule_count(),
        waf.chain_count(),
        waf.regex_counts(),
        waf.prefiltered_count(),
        waf.phrase_count(),
        waf.memory_usage() / 1024,
        import.unsupported.len() + waf.unsupported().len()
    );
    let cases: [(&str, &str); 2] = [
        ("benign", "/search?q=red+shoes&page=2&sort=price"),
        (
            "attack",
            "/search?q=1'%20union%20select%20password%20from%20users--&x=<script>alert(1)</script>",
        ),
    ];
    let json = json_body();
    let cases = cases
        .iter()
        .map(|&(name, uri)| (name, "GET", uri, None))
        .chain([("json", "POST", "/api/orders", Some(json.as_bytes()))]);
    for (name, method, uri, body) in cases {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let mut scratch = Some(bext_waf::Scratch::new(&waf));
        let start = Instant::now();
        let mut last = None;
        for _ in 0..n {
            let mut tx = Transaction::with_scratch(&waf, scratch.take().expect("scratch returned"));
            tx.request_line(method, uri, "HTTP/1.1");
            tx.header("Host", b"example.com");
            tx.header(
                "User-Agent",
                b"Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
            );
            tx.header("Accept", b"text/html,application/xhtml+xml");
            tx.header("Cookie", b"session=abc123; theme=dark");
            if let Some(b) = body {
                tx.header("Content-Type", b"application/json");
                tx.header("Content-Length", b.len().to_string().as_bytes());
            }
            tx.end_headers();
            if let Some(b) = body {
                tx.body(b);
            }
            tx.end_body();
            last = Some(tx.verdict());
            scratch = Some(tx.into_scratch());
        }
        let Some(v) = last else { continue };
        let per = start.elapsed() / n;
        println!(
            "{name}: {per:?}/request, score {}, rules {:?}, {:?}",
            v.score,
            v.rule_ids(),
            v.stats
        );
    }
}

/// A benign JSON document of about 16 KiB: 300 order lines of four values each (1,200 values,
/// names such as `json.items.17.sku`), as an API client would post.
fn json_body() -> String {
    let lines: Vec<String> = (0..300)
        .map(|i| {
            format!(
                r#"{{"id":{i},"sku":"SKU-{:05}","qty":{},"note":"gift wrap {}"}}"#,
                i * 37 % 100_000,
                i % 7 + 1,
                i % 13
            )
        })
        .collect();
    format!(r#"{{"items":[{}]}}"#, lines.join(","))
}
