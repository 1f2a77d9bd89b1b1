//! Measures the cost of a cache hit decision (key, lookup, age, conditionals, body handle) for
//! a stored 1 KiB and 64 KiB response: the part of the hit path this crate owns.
//!
//! `cargo run --release -p bext-cache --example hit`

use std::time::Instant;

use bext_cache::{Cache, Config, Lookup, ManualClock, Request, Response, Scheme};

fn main() {
    for size in [1024usize, 64 * 1024] {
        let clock = ManualClock::at(1_700_000_000);
        let mut cache = Cache::new(Config::default(), clock);
        let req_headers: Vec<(&[u8], &[u8])> = vec![
            (b"Host", b"example.com"),
            (b"User-Agent", b"bench/1.0"),
            (b"Accept", b"*/*"),
            (b"Accept-Encoding", b"gzip, br"),
        ];
        let req = Request {
            method: b"GET",
            scheme: Scheme::Https,
            authority: b"example.com",
            target: b"/static/app.js?v=42",
            headers: &req_headers,
            has_body: false,
        };
        let resp_headers: Vec<(&[u8], &[u8])> = vec![
            (b"Cache-Control", b"public, max-age=3600"),
            (b"Content-Type", b"application/javascript"),
            (b"ETag", b"\"abc123\""),
            (b"Vary", b"Accept-Encoding"),
        ];
        let resp = Response {
            status: 200,
            headers: &resp_headers,
        };
        let mut p = cache.store(&req, &resp, 1_700_000_000).expect("storable");
        p.push(&vec![b'x'; size]);
        cache.commit(p, true);
        let n = 1_000_000;
        let start = Instant::now();
        let mut bytes = 0usize;
        for _ in 0..n {
            if let Lookup::Fresh(hit) = cache.lookup(&req) {
                bytes += hit.body().len();
            }
        }
        let per = start.elapsed().as_nanos() as f64 / n as f64;
        assert_eq!(bytes, n * size);
        println!("{} KiB: {per:.0} ns per hit decision", size / 1024);
    }
}
