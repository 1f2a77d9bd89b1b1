//! The per-request path allocates nothing once a file is cached: a cache hit, the plan
//! (preconditions, If-Range, Range) and the multipart arithmetic. Counted with a global
//! allocator that counts allocations made on the test's own thread.

mod common;

use bext_static::conditional::Conditions;
use bext_static::range::{Boundary, Multipart};
use bext_static::{
    plan, CacheConfig, Encoding, FileCache, Found, Method, Options, Plan, Request, Static,
};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Instant;

struct Counting;

thread_local! {
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn allocations() -> u64 {
    COUNT.with(Cell::get)
}

#[test]
fn a_cached_request_allocates_nothing() {
    let tree = common::tree();
    let h = Static::open(&tree.root, &["index.html".into()], Options::default()).expect("open");
    let mut cache = FileCache::new(CacheConfig::default());
    let now = Instant::now();
    let _ = cache.get(&h, b"/style.css", now).expect("warm");
    let accept = [Encoding::Zstd, Encoding::Br, Encoding::Gzip];
    let before = allocations();
    for _ in 0..100 {
        let Ok(Found::File(f)) = cache.get(&h, b"/style.css", now) else {
            panic!("cached");
        };
        let req = Request {
            method: Method::Get,
            accept: &accept,
            conditions: Conditions {
                if_none_match: Some(b"\"x\", W/\"y\""),
                if_modified_since: Some(b"Sun, 06 Nov 1994 08:49:37 GMT"),
                ..Conditions::default()
            },
            range: Some(b"bytes=0-1, 4-5, -1"),
        };
        let Plan::Multipart { rep, ranges, .. } = plan(&f, &req) else {
            panic!("multipart");
        };
        let m = Multipart::new(&ranges, rep.len(), f.content_type(), Boundary::new(7));
        assert!(m.content_length() > rep.len());
        assert!(rep.etag().as_str().ends_with("-br\""));
    }
    assert_eq!(allocations() - before, 0);
    // The counter counts: a miss allocates (the key, the file, the index entry).
    let before = allocations();
    let _ = cache.get(&h, b"/a.txt", now).expect("miss");
    assert!(allocations() > before);
}
