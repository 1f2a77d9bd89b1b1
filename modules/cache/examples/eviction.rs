//! Prints the eviction measurement of `docs/cache.md`: hit ratios of LRU, W-TinyLFU and
//! S3-FIFO on synthetic traces, at two cache sizes.
//!
//! `cargo run --release -p bext-cache --example eviction`

use bext_cache::evict::{Lru, Policy, S3Fifo, WTinyLfu};
use bext_cache::sim::{footprint, replay, trace, Workload};

fn main() {
    let requests = 2_000_000;
    let workloads = [
        (
            "zipf 0.8, 200k keys",
            Workload::Zipf {
                keys: 200_000,
                s: 0.8,
            },
        ),
        (
            "zipf 1.0, 200k keys",
            Workload::Zipf {
                keys: 200_000,
                s: 1.0,
            },
        ),
        (
            "zipf 0.9 + 50% unique flood",
            Workload::ZipfWithFlood {
                keys: 200_000,
                s: 0.9,
            },
        ),
        (
            "zipf 0.9, drifting every 250k",
            Workload::Shifting {
                keys: 200_000,
                s: 0.9,
                period: 250_000,
            },
        ),
    ];
    println!(
        "| workload | cache | LRU | W-TinyLFU | S3-FIFO (promote at 1) | S3-FIFO (promote at 2) |"
    );
    println!("|---|---|---|---|---|---|");
    for (name, w) in workloads {
        let t = trace(w, requests, 42);
        let total = footprint(&t);
        for pct in [1u64, 10] {
            let cap = total * pct / 100;
            let objects = (cap / 20_000) as usize;
            let mut policies: Vec<Box<dyn Policy>> = vec![
                Box::new(Lru::new(cap)),
                Box::new(WTinyLfu::new(cap, objects)),
                Box::new(S3Fifo::with_threshold(cap, 1)),
                Box::new(S3Fifo::with_threshold(cap, 2)),
            ];
            let cells: Vec<String> = policies
                .iter_mut()
                .map(|p| {
                    let r = replay(p.as_mut(), &t);
                    format!("{:.1}% ({:.1}% B)", r.hits * 100.0, r.bytes * 100.0)
                })
                .collect();
            println!("| {name} | {pct}% | {} |", cells.join(" | "));
        }
    }
}
