//! bext against httparse, interleaved: batches of each parser alternate and the fastest batch
//! of each counts. On a shared, noisy machine this is steadier than timing one parser after the
//! other. Run: `cargo bench -p bext-http1 --bench interleaved`.

use bext_http1::{parse_request, Limits, RequestHead};
use std::hint::black_box;
use std::time::Instant;

mod inputs;
use inputs::{many_headers, BROWSER, SMALL};

const ROUNDS: usize = 300;
const BATCH: u32 = 2000;

fn main() {
    let many = many_headers();
    let inputs: [(&str, &[u8]); 3] = [
        ("small", SMALL),
        ("browser", BROWSER),
        ("many_headers", &many),
    ];
    let limits = Limits::default();
    println!("fastest of {ROUNDS} interleaved batches of {BATCH} parses, ns per parse");
    for (name, input) in inputs {
        let mut head = RequestHead::default();
        let mut slots = [httparse::EMPTY_HEADER; 100];
        let (mut bext, mut httparse) = (f64::MAX, f64::MAX);
        for _ in 0..ROUNDS {
            let t = Instant::now();
            for _ in 0..BATCH {
                let r = parse_request(black_box(input), &limits, &mut head);
                black_box(&r);
            }
            bext = bext.min(t.elapsed().as_nanos() as f64 / f64::from(BATCH));
            let t = Instant::now();
            for _ in 0..BATCH {
                let mut req = httparse::Request::new(&mut slots);
                let r = req.parse(black_box(input)).map(|s| s.is_complete());
                black_box(&r);
            }
            httparse = httparse.min(t.elapsed().as_nanos() as f64 / f64::from(BATCH));
        }
        println!(
            "{name:14} {:5} bytes  bext {bext:8.1}  httparse {httparse:8.1}  bext/httparse {:.2}",
            input.len(),
            bext / httparse
        );
    }
}
