//! The cache's byte bound holds under a flood of unique keys: 20,000 storable 16 KiB responses
//! (320 MiB) through a cache bounded at 2 MiB leave the process's resident set within a few
//! MiB of where it started. This file holds one test, so that the resident set measures it
//! alone.

mod common;
use bext_ir as ir;
use common::*;
use std::io::{BufReader, Write};

const KIB: u64 = 1024;

#[test]
fn a_flood_of_unique_keys_keeps_memory_bounded() {
    let o = origin(16 * KIB);
    let mut config = proxy_to(addr(&o));
    let mut cache = ir::Cache::with_ttl(600_000, loc());
    cache.max_bytes = 2 * 1024 * KIB;
    config.sites[0].routes[0].cache = Some(cache);
    let srv = start(config);
    let a = addr(&srv);
    let mut c = BufReader::new(connect(a));
    let mut fetch = |i: usize| {
        let req = format!("GET /flood/{i} HTTP/1.1\r\nHost: h\r\n\r\n");
        c.get_mut().write_all(req.as_bytes()).unwrap();
        let r = read_response(&mut c, false);
        assert_eq!((r.status, r.body.len() as u64), (200, 16 * KIB), "{i}");
        // A connection ends after its keep-alive request limit: go on with a new one.
        if r.header("connection") == Some("close") {
            c = BufReader::new(connect(a));
        }
        r
    };
    // Fill the cache past its bound once (buffers, pools, the shard's table), then measure.
    for i in 0..1_000 {
        fetch(i);
    }
    let stored = fetch(0);
    let baseline = rss_kib("VmRSS:");
    for i in 1_000..20_000 {
        let r = fetch(i);
        let status = r.header("cache-status").unwrap_or("");
        assert!(status.contains("stored"), "{i}: {status}");
    }
    let after = rss_kib("VmRSS:");
    eprintln!("resident set: {baseline} KiB before the flood, {after} KiB after");
    // Unbounded, the flood would hold 320 MiB; the bound is 2 MiB, and the allowance covers
    // the allocator's own slack.
    assert!(
        after <= baseline + 16 * 1024,
        "resident set grew from {baseline} KiB to {after} KiB ({stored:?})"
    );
    srv.shutdown();
    o.shutdown();
}
