//! Tracing costs the request path no allocation: heap allocations over rounds of proxied
//! keep-alive requests are counted (a counting global allocator, this test binary only) for a
//! configuration without `tracing` and for one that continues every client's trace and samples
//! every request (propagation and the log's ids, no export), and the second allocates no more
//! than the first. The client and the origin in this process allocate nothing per request; a
//! round's count can still catch a worker's periodic tick, so each configuration's figure is
//! the fewest allocations over several rounds.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU64, Ordering};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/// Read into `buf` until it holds a whole head (`\r\n\r\n`) plus `extra` bytes after it.
fn read_message(s: &mut impl Read, buf: &mut [u8; 8192], extra: usize) -> bool {
    let mut n = 0;
    loop {
        let m = match s.read(&mut buf[n..]) {
            Ok(0) | Err(_) => return false,
            Ok(m) => m,
        };
        n += m;
        if let Some(end) = buf[..n].windows(4).position(|w| w == b"\r\n\r\n") {
            if n >= end + 4 + extra {
                return true;
            }
        }
    }
}

/// An origin answering every request "ok" without allocating per request.
fn origin() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                while read_message(&mut s, &mut buf, 0) {
                    if s.write_all(RESPONSE).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// The fewest allocations over `rounds` rounds of `n` keep-alive requests through bext.
fn fewest_allocations(tracing: &str, rounds: usize, n: usize) -> u64 {
    let up = origin();
    let src = format!(
        "global {{\n    limits {{ keepalive_requests 100000 }}\n    {tracing}\n}}\nlisten 127.0.0.1:0\nupstream app {{ server {up} }}\nsite * {{ route /* {{ proxy app }} }}\n"
    );
    let compiled = bext_dsl::compile_str("alloc.bext", &src).expect("compiles");
    let opts = bext::StartOptions {
        workers: Some(1),
        ..common::opts()
    };
    let server = bext::start(compiled.config, opts).expect("bext starts");
    let mut c = std::net::TcpStream::connect(common::addr(&server)).unwrap();
    c.set_nodelay(true).unwrap();
    let request: &[u8] = b"GET /a HTTP/1.1\r\nHost: app.test\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\ntracestate: vendor=abc\r\n\r\n";
    let mut buf = [0u8; 8192];
    let mut one = |c: &mut std::net::TcpStream| {
        c.write_all(request).unwrap();
        assert!(read_message(c, &mut buf, 2), "a response");
    };
    // Warm up: pools, scratch buffers, the upstream connection.
    for _ in 0..200 {
        one(&mut c);
    }
    let mut fewest = u64::MAX;
    for _ in 0..rounds {
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        for _ in 0..n {
            one(&mut c);
        }
        fewest = fewest.min(ALLOCATIONS.load(Ordering::Relaxed) - before);
    }
    drop(c);
    drop(server);
    fewest
}

#[test]
fn tracing_adds_no_allocation_to_the_request_path() {
    let off = fewest_allocations("", 7, 200);
    let on = fewest_allocations("tracing { parent any; sample 100% }", 7, 200);
    eprintln!("allocations per 200 requests: {off} without tracing, {on} with it");
    assert!(
        on <= off,
        "allocations per 200 requests: {off} without tracing, {on} with it"
    );
}
