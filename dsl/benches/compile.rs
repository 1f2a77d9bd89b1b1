//! `bext check` cost: parsing, checking (ties, shadowed routes, redirect loops) and lowering of
//! generated configurations, 1,000 and 10,000 routes, spread over 10 sites or in one site.
//! The generator is `examples/gen_routes.rs` (the one used for timing the `bext check` binary).
//!
//! ```text
//! cargo bench -p bext-dsl --bench compile -- --warm-up-time 1 --measurement-time 3
//! ```

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;

// Only `generate` is used here; the example's `main` is not.
#[allow(dead_code)]
#[path = "../examples/gen_routes.rs"]
mod gen_routes;

fn compile(c: &mut Criterion) {
    let mut g = c.benchmark_group("compile");
    g.sample_size(10);
    for (routes, sites) in [(1_000, 10), (10_000, 10), (10_000, 1)] {
        let src = gen_routes::generate(routes, sites);
        let compiled = bext_dsl::compile_str("gen.bext", &src)
            .unwrap_or_else(|f| panic!("{}", f.render_human()));
        let total: usize = compiled.config.sites.iter().map(|s| s.routes.len()).sum();
        assert_eq!(total, routes);
        g.throughput(Throughput::Elements(routes as u64));
        g.bench_with_input(
            BenchmarkId::new(format!("{sites}_sites"), routes),
            &src,
            |b, src| b.iter(|| bext_dsl::compile_str("gen.bext", black_box(src))),
        );
    }
    g.finish();
}

criterion_group!(benches, compile);
criterion_main!(benches);
