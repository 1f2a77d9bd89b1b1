//! The per-core open-file cache: its bound, CLOCK eviction, descriptors released on eviction,
//! revalidation and negative entries. Time is passed in, so nothing here waits.

mod common;

use bext_static::{CacheConfig, FileCache, Found, Options, Refusal, Static};
use std::rc::Rc;
use std::time::{Duration, Instant};

fn file(r: Result<Found, Refusal>) -> Rc<bext_static::File> {
    match r {
        Ok(Found::File(f)) => f,
        other => panic!("{other:?}"),
    }
}

fn cache(max: usize) -> FileCache {
    FileCache::new(CacheConfig {
        max_entries: max,
        valid: Duration::from_secs(1),
        negative_valid: Duration::from_secs(1),
    })
}

#[test]
fn a_hit_returns_the_same_open_file() {
    let tree = common::tree();
    let h = Static::open(&tree.root, &["index.html".into()], Options::default()).expect("open");
    let mut c = cache(8);
    let now = Instant::now();
    let a = file(c.get(&h, b"/a.txt", now));
    let b = file(c.get(&h, b"/a.txt", now + Duration::from_millis(500)));
    assert!(Rc::ptr_eq(&a, &b));
    assert!(matches!(c.get(&h, b"/sub", now), Ok(Found::AddSlash)));
    assert_eq!(c.len(), 2);
}

#[test]
fn the_bound_holds_and_clock_spares_referenced_entries() {
    let tree = common::tree();
    let h = Static::open(&tree.root, &["index.html".into()], Options::default()).expect("open");
    let mut c = cache(2);
    let now = Instant::now();
    let a = file(c.get(&h, b"/a.txt", now));
    let b = file(c.get(&h, b"/index.html", now));
    // A hit marks /a.txt referenced; the next miss evicts /index.html instead.
    assert!(Rc::ptr_eq(&a, &file(c.get(&h, b"/a.txt", now))));
    let _s = file(c.get(&h, b"/style.css", now));
    assert_eq!(c.len(), 2);
    assert!(
        Rc::ptr_eq(&a, &file(c.get(&h, b"/a.txt", now))),
        "referenced entry evicted"
    );
    // The evicted entry's descriptors are ours alone now: dropping it closes them.
    assert_eq!(Rc::strong_count(&b), 1);
    assert!(!Rc::ptr_eq(&b, &file(c.get(&h, b"/index.html", now))));
    for i in 0..100 {
        let _ = c.get(&h, format!("/missing-{i}").as_bytes(), now);
        assert!(c.len() <= 2);
    }
    // Evicted and no longer used: the cache holds none of these files any more.
    assert_eq!(Rc::strong_count(&a), 1);
}

#[test]
fn entries_are_resolved_again_after_the_valid_interval() {
    let tree = common::tree();
    let h = Static::open(&tree.root, &[], Options::default()).expect("open");
    let mut c = cache(8);
    let now = Instant::now();
    let a = file(c.get(&h, b"/a.txt", now));
    std::fs::write(tree.root.join("a.txt"), "changed, longer").expect("write");
    // Within the interval the cached file is trusted.
    assert!(Rc::ptr_eq(
        &a,
        &file(c.get(&h, b"/a.txt", now + Duration::from_millis(999)))
    ));
    // After it, the path is opened again and the change seen.
    let b = file(c.get(&h, b"/a.txt", now + Duration::from_secs(2)));
    assert_eq!(b.identity().len(), 15);
    assert_ne!(a.identity().etag(), b.identity().etag());
    // A deleted file turns into a refusal.
    std::fs::remove_file(tree.root.join("a.txt")).expect("rm");
    assert_eq!(
        c.get(&h, b"/a.txt", now + Duration::from_secs(4)).err(),
        Some(Refusal::NotFound)
    );
}

#[test]
fn negative_entries_are_kept_briefly() {
    let tree = common::tree();
    let h = Static::open(&tree.root, &[], Options::default()).expect("open");
    let mut c = cache(8);
    let now = Instant::now();
    assert_eq!(c.get(&h, b"/new.txt", now).err(), Some(Refusal::NotFound));
    std::fs::write(tree.root.join("new.txt"), "new").expect("write");
    assert_eq!(
        c.get(&h, b"/new.txt", now + Duration::from_millis(500))
            .err(),
        Some(Refusal::NotFound)
    );
    assert_eq!(
        file(c.get(&h, b"/new.txt", now + Duration::from_secs(1)))
            .identity()
            .len(),
        3
    );
    // Refusals made before the kernel is asked are cached like any other.
    assert_eq!(c.get(&h, b"/.env", now).err(), Some(Refusal::Hidden));
}

#[test]
fn handlers_do_not_share_entries() {
    let tree = common::tree();
    let one = Static::open(&tree.root, &[], Options::default()).expect("open");
    let two = Static::open(&tree.root.join("sub"), &[], Options::default()).expect("open");
    let mut c = cache(8);
    let now = Instant::now();
    assert_eq!(file(c.get(&one, b"/index.html", now)).identity().len(), 13);
    assert_eq!(file(c.get(&two, b"/index.html", now)).identity().len(), 3);
}

#[test]
fn a_zero_sized_cache_still_resolves() {
    let tree = common::tree();
    let h = Static::open(&tree.root, &[], Options::default()).expect("open");
    let mut c = cache(0);
    let _ = file(c.get(&h, b"/a.txt", Instant::now()));
    assert!(c.is_empty());
}
