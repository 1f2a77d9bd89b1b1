//! bext's request parser against httparse on identical inputs.
//!
//! httparse only splits the head into method, path, version and fields; bext also validates the
//! target, Host, Content-Length, Transfer-Encoding and Connection and decides framing, so the
//! comparison is conservative for bext. Run: `cargo bench -p bext-http1 --bench parse`.

use bext_http1::{parse_request, Chunk, ChunkedDecoder, Limits, RequestHead};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;

mod inputs;
use inputs::{many_headers, BROWSER, SMALL};

fn bench_requests(c: &mut Criterion) {
    let many = many_headers();
    let inputs: [(&str, &[u8]); 3] = [
        ("small", SMALL),
        ("browser", BROWSER),
        ("many_headers", &many),
    ];
    let limits = Limits::default();
    for (name, input) in inputs {
        let mut group = c.benchmark_group(format!("request/{name}"));
        group.throughput(Throughput::Bytes(input.len() as u64));
        let mut head = RequestHead::default();
        assert!(
            parse_request(input, &limits, &mut head).is_ok(),
            "{name} is valid for bext"
        );
        group.bench_function("bext", |b| {
            b.iter(|| {
                let r = parse_request(black_box(input), &limits, &mut head);
                black_box(&r);
            })
        });
        let mut slots = [httparse::EMPTY_HEADER; 100];
        assert!(
            matches!(
                httparse::Request::new(&mut slots).parse(input),
                Ok(httparse::Status::Complete(_))
            ),
            "{name} is valid for httparse"
        );
        group.bench_function("httparse", |b| {
            b.iter(|| {
                let mut req = httparse::Request::new(&mut slots);
                let r = req.parse(black_box(input)).map(|s| s.is_complete());
                black_box(&r);
            })
        });
        group.finish();
    }
}

fn bench_chunked(c: &mut Criterion) {
    let mut body = Vec::new();
    for _ in 0..64 {
        bext_http1::write_chunk_header(&mut body, 1000);
        body.extend(std::iter::repeat_n(b'x', 1000));
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(bext_http1::LAST_CHUNK);
    let mut group = c.benchmark_group("chunked");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("64x1000", |b| {
        b.iter(|| {
            let mut d = ChunkedDecoder::new();
            let mut rest = black_box(&body[..]);
            let mut total = 0;
            while let Ok((n, Chunk::Data(r))) = d.decode(rest) {
                total += r.len();
                rest = &rest[n..];
            }
            black_box(total)
        })
    });
    group.finish();
}

criterion_group!(benches, bench_requests, bench_chunked);
criterion_main!(benches);
