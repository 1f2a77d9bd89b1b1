//! bext's request parser against httparse on identical inputs.
//!
//! httparse only splits the head into method, path, version and fields; bext also validates the
//! target, Host, Content-Length, Transfer-Encoding and Connection and decides framing, so the
//! comparison is conservative for bext. Run: `cargo bench -p bext-http1 --bench parse`.

use bext_http1::{parse_request, Chunk, ChunkedDecoder, Limits, RequestHead};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;

const SMALL: &[u8] = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n";

/// A Chrome navigation, 841 bytes.
const BROWSER: &[u8] = b"GET /articles/2024/http-request-smuggling-explained?utm_source=newsletter&utm_medium=email HTTP/1.1\r\n\
Host: www.example.com\r\n\
Connection: keep-alive\r\n\
sec-ch-ua: \"Chromium\";v=\"124\", \"Google Chrome\";v=\"124\", \"Not-A.Brand\";v=\"99\"\r\n\
sec-ch-ua-mobile: ?0\r\n\
sec-ch-ua-platform: \"Linux\"\r\n\
Upgrade-Insecure-Requests: 1\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8\r\n\
Sec-Fetch-Site: same-origin\r\n\
Sec-Fetch-Mode: navigate\r\n\
Sec-Fetch-User: ?1\r\n\
Sec-Fetch-Dest: document\r\n\
Referer: https://www.example.com/articles/\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Accept-Language: en-GB,en-US;q=0.9,en;q=0.8\r\n\
Cookie: session=3f9a1c2e8b7d4e6f; theme=dark; _ga=GA1.2.1234567890.1700000000\r\n\r\n";

fn many_headers() -> Vec<u8> {
    let mut v =
        b"POST /api/v1/items HTTP/1.1\r\nHost: api.example.com\r\nContent-Length: 0\r\n".to_vec();
    for i in 0..60 {
        v.extend_from_slice(
            format!("X-Custom-Header-{i}: value-{i}-abcdefghijklmnop\r\n").as_bytes(),
        );
    }
    v.extend_from_slice(b"\r\n");
    v
}

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
