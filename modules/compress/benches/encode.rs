//! Compressing a 64 KiB response: gzip 1, zstd 3 and brotli 4 (the defaults), on generated HTML
//! and JSON, pushed in 16 KiB pieces as a proxy would receive them.
//!
//! `encode/*` runs a pooled encoder (reset between responses), `new/*` builds one per response
//! (what it costs without a pool), and `deflate-backend/*` compares zlib-rs (used here, through
//! flate2) with miniz_oxide at level 1 on the same body. The compressed sizes are printed
//! before the runs.
//!
//! ```text
//! cargo bench -p bext-compress --bench encode -- --warm-up-time 1 --measurement-time 3
//! ```

use std::fmt::Write as _;
use std::hint::black_box;

use bext_compress::{Encoder, Encoding};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const SIZE: usize = 64 << 10;
const PIECE: usize = 16 << 10;
const ALL: [Encoding; 3] = [Encoding::Gzip, Encoding::Zstd, Encoding::Br];

/// A product listing page: repeated markup with varying names, prices and links.
fn html() -> Vec<u8> {
    let mut s = String::from(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Catalogue</title>\
         <link rel=\"stylesheet\" href=\"/assets/site.css\"></head><body><main><ul class=\"grid\">\n",
    );
    let words = [
        "oak", "linen", "walnut", "brass", "wool", "cedar", "slate", "copper",
    ];
    let mut i: u64 = 0;
    while s.len() < SIZE {
        let _ = writeln!(
            s,
            "<li class=\"card\" data-id=\"{i}\"><a href=\"/p/{}-{}-{}\"><img src=\"/img/{:x}.webp\" \
             alt=\"{} {}\" loading=\"lazy\"><h3>{} {} no. {}</h3><p class=\"price\">€{}.{:02}</p></a></li>",
            words[(i % 8) as usize],
            words[(i * 3 % 8) as usize],
            i,
            i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40,
            words[(i * 5 % 8) as usize],
            words[(i * 7 % 8) as usize],
            words[(i * 5 % 8) as usize],
            words[(i * 7 % 8) as usize],
            i * 13 % 997,
            10 + i * 31 % 490,
            i * 17 % 100,
        );
        i += 1;
    }
    s.truncate(SIZE);
    s.into_bytes()
}

/// An API answer: an array of objects with ids, names, flags, timestamps and nested tags.
fn json() -> Vec<u8> {
    let mut s = String::from("{\"items\":[");
    let mut i: u64 = 0;
    while s.len() < SIZE {
        let _ = write!(
            s,
            "{{\"id\":{},\"sku\":\"SKU-{:06}\",\"name\":\"Item {}\",\"active\":{},\"price_cents\":{},\
             \"updated_at\":\"2026-{:02}-{:02}T{:02}:{:02}:00Z\",\"tags\":[\"t{}\",\"t{}\"]}},",
            1_000_000 + i,
            i * 7919 % 1_000_000,
            i,
            !i.is_multiple_of(3),
            i * 131 % 100_000,
            1 + i % 12,
            1 + i % 28,
            i % 24,
            i % 60,
            i % 17,
            i % 5
        );
        i += 1;
    }
    s.truncate(SIZE);
    s.into_bytes()
}

fn compress(enc: &mut Encoder, body: &[u8], out: &mut Vec<u8>) {
    out.clear();
    for piece in body.chunks(PIECE) {
        enc.push(piece, out).expect("push");
    }
    enc.finish(out).expect("finish");
}

fn bench(c: &mut Criterion) {
    let bodies = [("html", html()), ("json", json())];
    for (name, body) in &bodies {
        for e in ALL {
            let mut enc = Encoder::new(e, e.default_level());
            let mut out = vec![];
            compress(&mut enc, body, &mut out);
            println!(
                "{name} {} level {}: {} -> {} bytes ({:.1}%)",
                e.token(),
                e.default_level(),
                body.len(),
                out.len(),
                100.0 * out.len() as f64 / body.len() as f64
            );
        }
        let miniz = miniz_oxide::deflate::compress_to_vec(body, 1);
        println!(
            "{name} miniz_oxide level 1 (raw deflate): {} bytes",
            miniz.len()
        );
    }

    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Bytes(SIZE as u64));
    for (name, body) in &bodies {
        for e in ALL {
            let mut enc = Encoder::new(e, e.default_level());
            let mut out = Vec::with_capacity(SIZE);
            g.bench_with_input(BenchmarkId::new(e.token(), name), body, |b, body| {
                b.iter(|| {
                    enc.reset();
                    compress(&mut enc, black_box(body), &mut out);
                    black_box(out.len())
                })
            });
        }
    }
    g.finish();

    let mut g = c.benchmark_group("new");
    g.throughput(Throughput::Bytes(SIZE as u64));
    let (name, body) = &bodies[0];
    for e in ALL {
        let mut out = Vec::with_capacity(SIZE);
        g.bench_with_input(BenchmarkId::new(e.token(), name), body, |b, body| {
            b.iter(|| {
                let mut enc = Encoder::new(e, e.default_level());
                compress(&mut enc, black_box(body), &mut out);
                black_box(out.len())
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("deflate-backend");
    g.throughput(Throughput::Bytes(SIZE as u64));
    for (name, body) in &bodies {
        let mut z = flate2::Compress::new(flate2::Compression::new(1), false);
        let mut out = Vec::with_capacity(2 * SIZE);
        g.bench_with_input(BenchmarkId::new("zlib-rs", name), body, |b, body| {
            b.iter(|| {
                z.reset();
                out.clear();
                z.compress_vec(black_box(body), &mut out, flate2::FlushCompress::Finish)
                    .expect("deflate");
                black_box(out.len())
            })
        });
        let mut m = miniz_oxide::deflate::core::CompressorOxide::new(
            miniz_oxide::deflate::core::create_comp_flags_from_zip_params(1, -15, 0),
        );
        let mut buf = vec![0u8; 2 * SIZE];
        g.bench_with_input(BenchmarkId::new("miniz_oxide", name), body, |b, body| {
            b.iter(|| {
                m.reset();
                let (_, _, n) = miniz_oxide::deflate::core::compress(
                    &mut m,
                    black_box(body),
                    &mut buf,
                    miniz_oxide::deflate::core::TDEFLFlush::Finish,
                );
                black_box(n)
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
