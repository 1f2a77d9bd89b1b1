//! What an encoder allocates per response: a new one against a reset one.
//!
//! A counting global allocator (this test binary only) reports the bytes Rust code allocates
//! while one 64 KB body is compressed (deflate and brotli), and glibc's `mallinfo2` the growth
//! of the C heap, where libzstd allocates; a reset gzip or zstd encoder must allocate nothing.
//! Run with `--nocapture` to see the figures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use bext_compress::{Encoder, Encoding};

struct Counting;

static BYTES: AtomicUsize = AtomicUsize::new(0);
static CALLS: AtomicUsize = AtomicUsize::new(0);
/// Tests in this file run one at a time so the counters see only one of them.
static ONE: Mutex<()> = Mutex::new(());

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        BYTES.fetch_add(l.size(), Ordering::Relaxed);
        CALLS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: `p` came from `alloc` above, with this layout.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        BYTES.fetch_add(new.saturating_sub(l.size()), Ordering::Relaxed);
        CALLS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `dealloc`; `new` is the caller's non-zero size.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// glibc's heap statistics (`struct mallinfo2`, all `size_t`).
#[repr(C)]
#[derive(Default)]
struct MallInfo2 {
    arena: usize,
    ordblks: usize,
    smblks: usize,
    hblks: usize,
    hblkhd: usize,
    usmblks: usize,
    fsmblks: usize,
    uordblks: usize,
    fordblks: usize,
    keepcost: usize,
}

extern "C" {
    fn mallinfo2() -> MallInfo2;
}

/// Bytes in use on the C heap, mapped chunks included.
fn heap_in_use() -> usize {
    // SAFETY: mallinfo2 takes nothing and returns a plain struct by value (glibc 2.33+).
    let m = unsafe { mallinfo2() };
    m.uordblks + m.hblkhd
}

/// (Rust bytes allocated, Rust allocations, growth of the heap in use) while `f` runs.
fn measure(f: impl FnOnce()) -> (usize, usize, isize) {
    let (b, c) = (BYTES.load(Ordering::Relaxed), CALLS.load(Ordering::Relaxed));
    let h = heap_in_use();
    f();
    (
        BYTES.load(Ordering::Relaxed) - b,
        CALLS.load(Ordering::Relaxed) - c,
        heap_in_use() as isize - h as isize,
    )
}

fn body() -> Vec<u8> {
    (0..4000)
        .flat_map(|i| {
            format!("{{\"id\":{i},\"name\":\"item {}\",\"ok\":true}},", i % 97).into_bytes()
        })
        .take(64 << 10)
        .collect()
}

#[test]
fn a_reset_encoder_allocates_only_output() {
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let body = body();
    for e in [Encoding::Gzip, Encoding::Zstd, Encoding::Br] {
        // Output room reserved up front, so only the codec's allocations count.
        let mut out = Vec::with_capacity(256 << 10);
        let mut enc = None;
        let (new_bytes, new_calls, new_heap) = measure(|| {
            let mut x = Encoder::new(e, e.default_level());
            for piece in body.chunks(16 << 10) {
                x.push(piece, &mut out).expect("push");
            }
            x.finish(&mut out).expect("finish");
            enc = Some(x);
        });
        let mut enc = enc.expect("set above");
        out.clear();
        let (reused_bytes, reused_calls, reused_heap) = measure(|| {
            enc.reset();
            for piece in body.chunks(16 << 10) {
                enc.push(piece, &mut out).expect("push");
            }
            enc.finish(&mut out).expect("finish");
        });
        println!(
            "{e:?} level {}: new encoder: Rust {new_bytes} bytes in {new_calls} allocations, heap +{new_heap}; reset encoder: Rust {reused_bytes} bytes in {reused_calls} allocations, heap {reused_heap:+}; {} bytes out",
            enc.level(),
            out.len()
        );
        assert!(new_heap > 0, "{e:?}: a new encoder allocates its tables");
        if e != Encoding::Br {
            assert_eq!(reused_calls, 0, "{e:?}: a reset encoder allocates nothing");
            assert!(reused_heap <= 0, "{e:?}: a reset encoder allocates nothing");
        }
    }
}
