//! The shard: byte bound under floods, variants, purge by key, prefix and tag.

mod common;

use bext_cache::{Commit, Config, Lookup};
use common::Harness;

#[test]
fn byte_bound_holds_under_a_flood_of_100k_unique_keys() {
    let capacity = 1 << 20;
    let mut h = Harness::with(Config {
        capacity_bytes: capacity,
        ..Config::default()
    });
    let body = "x".repeat(700);
    let mut stored = 0;
    for i in 0..100_000 {
        let target = format!("/flood/{i}?q={}", i * 7);
        if let Ok(Commit::Stored { .. }) = h.fill(
            &target,
            &[],
            200,
            &[("Cache-Control", "max-age=600")],
            &body,
        ) {
            stored += 1;
        }
        assert!(
            h.cache.shard().bytes() <= capacity,
            "over the bound after key {i}"
        );
    }
    assert_eq!(
        stored, 100_000,
        "every object fits alone, so each is admitted"
    );
    assert!(
        h.cache.shard().len() < 2000,
        "{} objects resident",
        h.cache.shard().len()
    );
    assert!(
        h.cache.shard().bytes() > capacity / 2,
        "the bound is used, not starved"
    );
    assert!(h.cache.shard().evictions() > 98_000);
}

#[test]
fn an_object_larger_than_the_shard_is_refused() {
    let mut h = Harness::with(Config {
        capacity_bytes: 2048,
        max_object_bytes: 1 << 20,
        ..Config::default()
    });
    let body = "x".repeat(4096);
    assert_eq!(
        h.fill("/huge", &[], 200, &[("Cache-Control", "max-age=60")], &body),
        Ok(Commit::NotAdmitted)
    );
    assert_eq!(h.cache.shard().bytes(), 0);
}

#[test]
fn accounting_includes_key_fields_and_body() {
    let mut h = Harness::new();
    h.fill(
        "/acc",
        &[],
        200,
        &[
            ("Cache-Control", "max-age=60"),
            ("X-Pad", &"p".repeat(1000)),
        ],
        &"b".repeat(500),
    )
    .unwrap();
    let bytes = h.cache.shard().bytes();
    assert!(bytes > 1500, "{bytes}");
}

#[test]
fn a_new_response_replaces_the_same_variant() {
    let mut h = Harness::new();
    h.fill("/r", &[], 200, &[("Cache-Control", "max-age=60")], "one")
        .unwrap();
    let before = h.cache.shard().bytes();
    h.fill("/r", &[], 200, &[("Cache-Control", "max-age=60")], "two")
        .unwrap();
    assert_eq!(h.cache.shard().len(), 1);
    assert_eq!(h.cache.shard().bytes(), before);
    let Lookup::Fresh(hit) = h.get("/r", &[]) else {
        panic!()
    };
    assert_eq!(&hit.body()[..], b"two");
}

#[test]
fn a_hit_shares_the_stored_body() {
    let mut h = Harness::new();
    h.fill(
        "/z",
        &[],
        200,
        &[("Cache-Control", "max-age=60")],
        &"b".repeat(10_000),
    )
    .unwrap();
    let (Lookup::Fresh(a), Lookup::Fresh(b)) = (h.get("/z", &[]), h.get("/z", &[])) else {
        panic!()
    };
    assert_eq!(a.body().as_ptr(), b.body().as_ptr(), "no copy per hit");
}

#[test]
fn purge_by_exact_key_removes_every_variant() {
    let mut h = Harness::new();
    let resp = [("Cache-Control", "max-age=60"), ("Vary", "Accept-Encoding")];
    h.fill("/p", &[("Accept-Encoding", "gzip")], 200, &resp, "g")
        .unwrap();
    h.fill("/p", &[("Accept-Encoding", "br")], 200, &resp, "b")
        .unwrap();
    h.fill("/p2", &[], 200, &resp, "x").unwrap();
    assert_eq!(h.cache.purge_key(b"https://example.com/p"), 2);
    assert!(matches!(
        h.get("/p", &[("Accept-Encoding", "gzip")]),
        Lookup::Miss(_)
    ));
    assert!(matches!(h.get("/p2", &[]), Lookup::Fresh(_)));
}

#[test]
fn purge_by_prefix() {
    let mut h = Harness::new();
    for t in ["/img/a.png", "/img/b.png", "/img2/c.png", "/js/app.js"] {
        h.fill(t, &[], 200, &[("Cache-Control", "max-age=60")], "b")
            .unwrap();
    }
    assert_eq!(h.cache.purge_prefix(b"https://example.com/img/"), 2);
    for (t, kept) in [
        ("/img/a.png", false),
        ("/img/b.png", false),
        ("/img2/c.png", true),
        ("/js/app.js", true),
    ] {
        assert_eq!(matches!(h.get(t, &[]), Lookup::Fresh(_)), kept, "{t}");
    }
}

#[test]
fn purge_by_tag_from_surrogate_key_and_cache_tag() {
    let mut h = Harness::new();
    h.fill(
        "/1",
        &[],
        200,
        &[
            ("Cache-Control", "max-age=60"),
            ("Surrogate-Key", "product-7 catalog"),
        ],
        "b",
    )
    .unwrap();
    h.fill(
        "/2",
        &[],
        200,
        &[
            ("Cache-Control", "max-age=60"),
            ("Cache-Tag", "catalog, home"),
        ],
        "b",
    )
    .unwrap();
    h.fill(
        "/3",
        &[],
        200,
        &[("Cache-Control", "max-age=60"), ("Cache-Tag", "home")],
        "b",
    )
    .unwrap();
    assert_eq!(h.cache.purge_tag(b"catalog"), 2);
    assert!(matches!(h.get("/1", &[]), Lookup::Miss(_)));
    assert!(matches!(h.get("/2", &[]), Lookup::Miss(_)));
    assert!(matches!(h.get("/3", &[]), Lookup::Fresh(_)));
    assert_eq!(h.cache.purge_tag(b"home"), 1);
    assert_eq!(h.cache.purge_tag(b"home"), 0);
    assert_eq!(
        h.cache.shard().bytes(),
        0,
        "purges release every accounted byte"
    );
}
