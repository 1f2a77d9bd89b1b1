//! The eviction choice stays justified: on a smaller replay of the traces in
//! `docs/cache.md`, S3-FIFO (the shard's policy) beats LRU on skewed traffic and under a flood
//! of unique keys. Deterministic traces, so these are exact comparisons, not timings.

use bext_cache::evict::{Lru, S3Fifo, WTinyLfu};
use bext_cache::sim::{footprint, replay, trace, Workload};

fn compare(w: Workload) -> (f64, f64, f64) {
    let t = trace(w, 100_000, 7);
    let cap = footprint(&t) / 100;
    let lru = replay(&mut Lru::new(cap), &t).hits;
    let tiny = replay(&mut WTinyLfu::new(cap, (cap / 20_000) as usize), &t).hits;
    let s3 = replay(&mut S3Fifo::new(cap), &t).hits;
    (lru, tiny, s3)
}

#[test]
fn s3_fifo_beats_lru_on_zipf_traffic() {
    let (lru, _, s3) = compare(Workload::Zipf {
        keys: 20_000,
        s: 0.9,
    });
    assert!(s3 > lru, "S3-FIFO {s3:.3} vs LRU {lru:.3}");
}

#[test]
fn s3_fifo_resists_a_unique_key_flood() {
    let (lru, _, s3) = compare(Workload::ZipfWithFlood {
        keys: 20_000,
        s: 0.9,
    });
    assert!(s3 > lru, "S3-FIFO {s3:.3} vs LRU {lru:.3}");
}

#[test]
fn simulation_is_deterministic() {
    let w = Workload::Zipf {
        keys: 5_000,
        s: 1.0,
    };
    assert_eq!(trace(w, 10_000, 1), trace(w, 10_000, 1));
    let t = trace(w, 10_000, 1);
    let cap = footprint(&t) / 10;
    assert_eq!(
        replay(&mut S3Fifo::new(cap), &t),
        replay(&mut S3Fifo::new(cap), &t)
    );
}
