//! What a plugin costs a request, and what each budget mechanism costs a plugin.
//!
//! - `request/*`: a whole request's callbacks on a warm instance (context create, request
//!   headers, response headers, log, done, delete) for a plugin that does nothing and for one
//!   that adds a response header; the host's share of bext's per-request CPU.
//! - `budget/*`: the same guest loop (and an empty call) compiled with epoch interruption and
//!   with fuel metering: why bext enforces budgets with epochs (docs/plugins.md).
//!
//! `bash bench/scripts/plugins.sh` runs it; `cargo bench -p bext-plugins --bench host`.

use bext_ir::{Loc, Plugin as IrPlugin};
use bext_plugins::{load, Props, Stream};
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use wasmtime::{Config, Engine, Instance, Module, Store};

fn module(response_headers: &str) -> String {
    format!(
        r#"(module
  (import "env" "proxy_add_header_map_value" (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "x-served-by")
  (data (i32.const 16) "bext")
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) i32.const 1024)
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) i32.const 0)
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32) {response_headers})
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_done") (param i32) (result i32) i32.const 1)
  (func (export "proxy_on_delete") (param i32)))"#
    )
}

fn request(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("bext-plugins-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut g = c.benchmark_group("request");
    for (name, body) in [
        ("noop", "i32.const 0".to_string()),
        (
            "add_header",
            "(drop (call $add (i32.const 2) (i32.const 0) (i32.const 11) (i32.const 16) (i32.const 4))) i32.const 0"
                .to_string(),
        ),
    ] {
        let path = dir.join(format!("{name}.wat"));
        std::fs::write(&path, module(&body)).unwrap();
        let p = load(&IrPlugin {
            path: path.to_string_lossy().into_owned(),
            config: vec![],
            at: Loc::default(),
        })
        .unwrap();
        let headers: Vec<(Vec<u8>, Vec<u8>)> = [
            (":method", "GET"),
            (":path", "/"),
            (":authority", "a.test"),
            (":scheme", "http"),
            ("user-agent", "bench"),
            ("accept", "*/*"),
        ]
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect();
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut s = Stream::open(&p, Props::default()).unwrap();
                s.data.request_headers.clone_from(&headers);
                black_box(s.request_headers(true));
                s.data.response_headers.push((b":status".to_vec(), b"200".to_vec()));
                black_box(s.response_headers(200, false));
                s.finish();
            })
        });
    }
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

const LOOP: &str = r#"(module
  (func (export "spin") (param $n i32) (result i32) (local $acc i32)
    (loop $l
      (local.set $acc (i32.add (local.get $acc) (local.get $n)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br_if $l (local.get $n)))
    local.get $acc)
  (func (export "empty")))"#;

fn budget(c: &mut Criterion) {
    let mut g = c.benchmark_group("budget");
    for mech in ["epoch", "fuel"] {
        let mut cfg = Config::new();
        if mech == "epoch" {
            cfg.epoch_interruption(true);
        } else {
            cfg.consume_fuel(true);
        }
        let engine = Engine::new(&cfg).unwrap();
        let m = Module::new(&engine, LOOP).unwrap();
        let mut store = Store::new(&engine, ());
        let reset = |s: &mut Store<()>| {
            if mech == "epoch" {
                s.set_epoch_deadline(1_000_000);
            } else {
                s.set_fuel(u64::MAX / 2).unwrap();
            }
        };
        reset(&mut store);
        let i = Instance::new(&mut store, &m, &[]).unwrap();
        let spin = i.get_typed_func::<i32, i32>(&mut store, "spin").unwrap();
        let empty = i.get_typed_func::<(), ()>(&mut store, "empty").unwrap();
        g.bench_function(format!("{mech}/loop_100k"), |b| {
            b.iter(|| {
                reset(&mut store);
                black_box(spin.call(&mut store, black_box(100_000)).unwrap())
            })
        });
        g.bench_function(format!("{mech}/empty_call"), |b| {
            b.iter(|| {
                reset(&mut store);
                empty.call(&mut store, ()).unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, request, budget);
criterion_main!(benches);
