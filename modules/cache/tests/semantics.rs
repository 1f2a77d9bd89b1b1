//! RFC 9111 behaviour, one test per behaviour, tables where the behaviour has many spellings.

mod common;

use bext_cache::revalidate::{ClientConditional, RangeDecision};
use bext_cache::{Commit, Config, DontStore, Lookup, Response};
use common::{date, lines, request, Harness, Lines};

fn hit(l: &Lookup) -> &bext_cache::Hit {
    match l {
        Lookup::Fresh(h) => h,
        other => panic!("expected a fresh hit, got {other:?}"),
    }
}

fn stale(l: &Lookup) -> &bext_cache::Stale {
    match l {
        Lookup::Stale(s) => s,
        other => panic!("expected stale, got {other:?}"),
    }
}

#[test]
fn storability_by_response_directives_and_status() {
    let d0 = date(0);
    let lm = date(-100_000);
    let table: &[(u16, Lines, Result<(), DontStore>)] = &[
        (200, &[("Cache-Control", "max-age=60")], Ok(())),
        (
            200,
            &[("Cache-Control", "no-store, max-age=60")],
            Err(DontStore::NoStore),
        ),
        (
            200,
            &[("Cache-Control", "nO-StOrE")],
            Err(DontStore::NoStore),
        ),
        (
            200,
            &[("Cache-Control", "private, max-age=60")],
            Err(DontStore::Private),
        ),
        (
            200,
            &[("Cache-Control", "max-age=60, no-store, must-understand")],
            Ok(()),
        ),
        (
            599,
            &[("Cache-Control", "max-age=60, no-store, must-understand")],
            Err(DontStore::Status),
        ),
        (
            206,
            &[("Cache-Control", "max-age=60")],
            Err(DontStore::Status),
        ),
        (302, &[], Err(DontStore::NotCacheable)),
        (302, &[("Cache-Control", "max-age=60")], Ok(())),
        (200, &[("Date", &d0), ("Last-Modified", &lm)], Ok(())),
        (404, &[], Ok(())),
        (
            500,
            &[("Cache-Control", "max-age=60")],
            Err(DontStore::ErrorStatus),
        ),
        (
            400,
            &[("Cache-Control", "max-age=60")],
            Err(DontStore::ErrorStatus),
        ),
        (410, &[("Cache-Control", "max-age=60")], Ok(())),
        (
            200,
            &[("Cache-Control", "max-age=60"), ("Vary", "Foo, *")],
            Err(DontStore::VaryStar),
        ),
        (
            200,
            &[("Cache-Control", "max-age=60"), ("Set-Cookie", "a=b")],
            Err(DontStore::SetCookie),
        ),
    ];
    for (i, (status, headers, want)) in table.iter().enumerate() {
        let mut h = Harness::new();
        let got = h.fill("/x", &[], *status, headers, "b").map(|_| ());
        assert_eq!(&got, want, "row {i}: {status} {headers:?}");
    }
}

#[test]
fn authorization_is_shared_only_when_the_response_allows_it() {
    for (cc, stored) in [
        ("max-age=60", false),
        ("max-age=60, public", true),
        ("s-maxage=60", true),
        ("max-age=60, must-revalidate", true),
    ] {
        let mut h = Harness::new();
        let got = h.fill(
            "/a",
            &[("Authorization", "Basic eA==")],
            200,
            &[("Cache-Control", cc)],
            "b",
        );
        assert_eq!(got.is_ok(), stored, "{cc}");
        if !stored {
            assert_eq!(got, Err(DontStore::Authorization));
        }
    }
}

#[test]
fn freshness_lifetime_precedence_and_expires() {
    let expires_future = date(100);
    let expires_past = date(-100);
    let d0 = date(0);
    let table: &[(Lines, i64, bool)] = &[
        // s-maxage beats max-age
        (&[("Cache-Control", "max-age=1000, s-maxage=10")], 20, false),
        (&[("Cache-Control", "max-age=10, s-maxage=1000")], 20, true),
        // max-age beats Expires
        (
            &[
                ("Cache-Control", "max-age=1000"),
                ("Expires", &expires_past),
            ],
            20,
            true,
        ),
        (&[("Date", &d0), ("Expires", &expires_future)], 50, true),
        (&[("Date", &d0), ("Expires", &expires_future)], 150, false),
        (&[("Date", &d0), ("Expires", "0")], 0, false),
        (
            &[("Date", &d0), ("Expires", "Thu, 18 Aug 2050 02:01:18 UTC")],
            0,
            false,
        ),
        (
            &[
                ("Date", &d0),
                ("Expires", &expires_future),
                ("Expires", &expires_future),
            ],
            0,
            false,
        ),
        // first max-age wins, on one line or two
        (&[("Cache-Control", "max-age=1800, max-age=1")], 10, true),
        (
            &[
                ("Cache-Control", "max-age=1"),
                ("Cache-Control", "max-age=1800"),
            ],
            10,
            false,
        ),
        (&[("Cache-Control", "max-age=\"3600\"")], 10, true),
        (&[("Cache-Control", "max-age='3600'")], 10, false),
        (
            &[("Cache-Control", "extension=\"max-age=3600\", max-age=1")],
            10,
            false,
        ),
        (&[("Cache-Control", "max-age=003600")], 10, true),
        (&[("Cache-Control", "max-age=99999999999")], 10, true),
        (&[("Cache-Control", "max-age=0")], 0, false),
    ];
    for (i, (headers, after, fresh)) in table.iter().enumerate() {
        let mut h = Harness::new();
        h.fill("/f", &[], 200, headers, "b").unwrap();
        h.clock.advance(*after);
        let l = h.get("/f", &[]);
        assert_eq!(
            matches!(l, Lookup::Fresh(_)),
            *fresh,
            "row {i}: {headers:?} after {after}s: {l:?}"
        );
    }
}

#[test]
fn heuristic_freshness_is_ten_percent_of_last_modified_age_and_only_for_allowed_statuses() {
    let d0 = date(0);
    let lm = date(-1000);
    let resp = [("Date", d0.as_str()), ("Last-Modified", lm.as_str())];
    let mut h = Harness::new();
    assert!(matches!(
        h.fill("/h", &[], 200, &resp, "b"),
        Ok(Commit::Stored { ttl: 100 })
    ));
    h.clock.advance(99);
    assert!(matches!(h.get("/h", &[]), Lookup::Fresh(_)));
    h.clock.advance(2);
    assert!(matches!(h.get("/h", &[]), Lookup::Stale(_)));
    // Not heuristically cacheable: not stored at all.
    let mut h = Harness::new();
    assert_eq!(
        h.fill("/h", &[], 302, &resp, "b"),
        Err(DontStore::NotCacheable)
    );
    // Explicit freshness wins over the heuristic.
    let mut h = Harness::new();
    let with_cc = [resp[0], resp[1], ("Cache-Control", "max-age=5")];
    assert!(matches!(
        h.fill("/h", &[], 200, &with_cc, "b"),
        Ok(Commit::Stored { ttl: 5 })
    ));
}

#[test]
fn current_age_counts_age_header_date_and_resident_time() {
    let mut h = Harness::new();
    let d = date(-30);
    h.fill(
        "/a",
        &[],
        200,
        &[
            ("Cache-Control", "max-age=100"),
            ("Age", "20"),
            ("Date", &d),
        ],
        "b",
    )
    .unwrap();
    let l = h.get("/a", &[]);
    assert_eq!(
        hit(&l).age,
        30,
        "apparent age (30) beats the Age header (20)"
    );
    h.clock.advance(10);
    let l = h.get("/a", &[]);
    assert_eq!(hit(&l).age, 40);
    assert_eq!(hit(&l).age_value(), "40");
    assert!(hit(&l)
        .headers()
        .all(|(n, _)| !n.eq_ignore_ascii_case(b"age")));
}

#[test]
fn age_header_parsing() {
    for (age, fresh) in [
        ("abc", true),
        ("-7200", true),
        ("7200.0", true),
        ("2147483648", false),
        ("7200, 0", false),
        ("0, 7200", true),
    ] {
        let mut h = Harness::new();
        assert_eq!(
            h.reused(200, &[("Cache-Control", "max-age=3600"), ("Age", age)]),
            fresh,
            "Age: {age}"
        );
    }
}

#[test]
fn vary_selects_among_variants_with_normalised_fields() {
    let mut h = Harness::new();
    let resp = [
        ("Cache-Control", "max-age=60"),
        ("Vary", "Foo, Accept-Language"),
    ];
    h.fill(
        "/v",
        &[("Foo", "1, 2"), ("Accept-Language", "en, FR")],
        200,
        &resp,
        "one",
    )
    .unwrap();
    h.fill("/v", &[("Foo", "3")], 200, &resp, "three").unwrap();
    let table: &[(Lines, Option<&str>)] = &[
        (
            &[("Foo", "1"), ("Foo", "2"), ("Accept-Language", "fr,en")],
            Some("one"),
        ),
        (
            &[("Foo", " 1,2 "), ("Accept-Language", "FR, en")],
            Some("one"),
        ),
        (&[("Foo", "1, 2")], None),
        (&[("Foo", "3")], Some("three")),
        (&[("Foo", "3"), ("Accept-Language", "en")], None),
        (&[], None),
    ];
    for (req, want) in table {
        let l = h.get("/v", req);
        match (want, &l) {
            (Some(body), Lookup::Fresh(hit)) => {
                assert_eq!(&hit.body()[..], body.as_bytes(), "{req:?}")
            }
            (None, Lookup::Miss(m)) => assert_eq!(m.status.render("bext"), "bext; fwd=vary-miss"),
            _ => panic!("{req:?}: {l:?}"),
        }
    }
}

#[test]
fn vary_star_in_any_position_is_never_stored() {
    for vary in [
        &[("Vary", "*")][..],
        &[("Vary", "*, *")],
        &[("Vary", ", *")],
        &[("Vary", ""), ("Vary", "*")],
        &[("Vary", "Foo, *")],
    ] {
        let mut h = Harness::new();
        let mut resp = vec![("Cache-Control", "max-age=60")];
        resp.extend_from_slice(vary);
        assert_eq!(
            h.fill("/s", &[], 200, &resp, "b"),
            Err(DontStore::VaryStar),
            "{vary:?}"
        );
    }
}

#[test]
fn stale_response_builds_conditional_request_from_validators() {
    let mut h = Harness::new();
    let lm = date(-1000);
    h.fill(
        "/c",
        &[],
        200,
        &[
            ("Cache-Control", "max-age=10"),
            ("ETag", "\"v1\""),
            ("Last-Modified", &lm),
        ],
        "b",
    )
    .unwrap();
    h.clock.advance(20);
    let l = h.get("/c", &[]);
    let s = stale(&l);
    assert!(
        matches!(s.join, Some(bext_cache::Join::Leader(_))),
        "leads the revalidation"
    );
    assert!(
        matches!(
            stale(&h.get("/c", &[])).join,
            Some(bext_cache::Join::Follower(_))
        ),
        "a second request waits for it"
    );
    let names: Vec<&str> = s.conditional.add.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["If-None-Match", "If-Modified-Since"]);
    assert_eq!(&s.conditional.add[0].1[..], b"\"v1\"");
    assert!(!s.serve_while_revalidating);
    assert_eq!(s.hit.status.render("bext"), "bext; fwd=stale; ttl=-10");
}

#[test]
fn a_304_updates_stored_headers_except_content_length_and_hop_by_hop() {
    let mut h = Harness::new();
    h.fill(
        "/u",
        &[],
        200,
        &[
            ("Cache-Control", "max-age=10"),
            ("ETag", "\"v1\""),
            ("Content-Length", "4"),
            ("Test-Header", "A"),
            ("Kept", "k"),
        ],
        "body",
    )
    .unwrap();
    h.clock.advance(20);
    let l = h.get("/u", &[]);
    let s = stale(&l);
    let nm = lines(&[
        ("Cache-Control", "max-age=100"),
        ("ETag", "\"v1\""),
        ("Content-Length", "99"),
        ("Test-Header", "B"),
        ("Connection", "x-hop"),
        ("X-Hop", "1"),
        ("Keep-Alive", "timeout=5"),
    ]);
    let rl = lines(&[]);
    let req = request("GET", "/u", &rl);
    let fresh = h
        .cache
        .on_304(
            s,
            &req,
            &Response {
                status: 304,
                headers: &nm,
            },
            common::T0 + 20,
        )
        .unwrap();
    let get = |n: &str| {
        fresh
            .stored
            .headers
            .get(n.as_bytes())
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    assert_eq!(get("test-header").as_deref(), Some("B"));
    assert_eq!(get("kept").as_deref(), Some("k"));
    assert_eq!(get("content-length").as_deref(), Some("4"));
    assert_eq!(get("x-hop"), None);
    assert_eq!(get("keep-alive"), None);
    assert_eq!(&fresh.body()[..], b"body");
    h.clock.advance(50);
    assert!(
        matches!(h.get("/u", &[]), Lookup::Fresh(_)),
        "freshened by the 304's max-age"
    );
}

#[test]
fn a_304_with_another_etag_does_not_select_the_stored_response() {
    let mut h = Harness::new();
    h.fill(
        "/u",
        &[],
        200,
        &[("Cache-Control", "max-age=1"), ("ETag", "\"v1\"")],
        "b",
    )
    .unwrap();
    h.clock.advance(5);
    let l = h.get("/u", &[]);
    let nm = lines(&[("ETag", "\"v2\"")]);
    let rl = lines(&[]);
    let req = request("GET", "/u", &rl);
    assert!(h
        .cache
        .on_304(
            stale(&l),
            &req,
            &Response {
                status: 304,
                headers: &nm
            },
            common::T0
        )
        .is_none());
}

#[test]
fn no_cache_response_is_stored_but_always_revalidated() {
    for cc in ["no-cache, max-age=1000", "No-CaChE"] {
        let mut h = Harness::new();
        h.fill(
            "/n",
            &[],
            200,
            &[("Cache-Control", cc), ("ETag", "\"a\"")],
            "b",
        )
        .unwrap();
        let l = h.get("/n", &[]);
        assert!(!stale(&l).serve_while_revalidating, "{cc}");
    }
}

#[test]
fn no_cache_with_field_names_strips_those_fields() {
    let mut h = Harness::new();
    h.fill(
        "/n",
        &[],
        200,
        &[
            (
                "Cache-Control",
                "max-age=60, no-cache=\"X-Secret, X-Other\"",
            ),
            ("X-Secret", "s"),
            ("X-Other", "o"),
            ("X-Kept", "k"),
        ],
        "b",
    )
    .unwrap();
    let l = h.get("/n", &[]);
    let stored = &hit(&l).stored.headers;
    assert!(!stored.contains(b"x-secret") && !stored.contains(b"x-other"));
    assert!(stored.contains(b"x-kept"));
}

#[test]
fn must_revalidate_and_proxy_revalidate_forbid_serving_stale() {
    for cc in [
        "max-age=1, must-revalidate",
        "max-age=1, proxy-revalidate",
        "s-maxage=1",
    ] {
        let mut h = Harness::new();
        h.fill(
            "/m",
            &[],
            200,
            &[(
                "Cache-Control",
                &format!("{cc}, stale-while-revalidate=100, stale-if-error=100"),
            )],
            "b",
        )
        .unwrap();
        h.clock.advance(5);
        let l = h.get("/m", &[("Cache-Control", "max-stale")]);
        let s = stale(&l);
        assert!(!s.serve_while_revalidating && !s.serve_if_error, "{cc}");
    }
}

#[test]
fn stale_while_revalidate_serves_stale_with_one_background_refresh_per_key() {
    let mut h = Harness::new();
    h.fill(
        "/w",
        &[],
        200,
        &[("Cache-Control", "max-age=1, stale-while-revalidate=60")],
        "b",
    )
    .unwrap();
    h.clock.advance(10);
    let first = h.get("/w", &[]);
    let second = h.get("/w", &[]);
    let (a, b) = (stale(&first), stale(&second));
    assert!(a.serve_while_revalidating && b.serve_while_revalidating);
    assert!(a.refresh.is_some(), "the first request refreshes");
    assert!(b.refresh.is_none(), "no second refresh while one runs");
    drop(first);
    let third = h.get("/w", &[]);
    assert!(
        stale(&third).refresh.is_some(),
        "the slot frees when the refresh ends"
    );
    h.clock.advance(100);
    let late = h.get("/w", &[]);
    assert!(!stale(&late).serve_while_revalidating, "past the window");
}

#[test]
fn stale_if_error_window() {
    let mut h = Harness::new();
    h.fill(
        "/e",
        &[],
        200,
        &[("Cache-Control", "max-age=1, stale-if-error=30")],
        "b",
    )
    .unwrap();
    h.clock.advance(20);
    assert!(stale(&h.get("/e", &[])).serve_if_error);
    h.clock.advance(20);
    assert!(!stale(&h.get("/e", &[])).serve_if_error);
}

#[test]
fn request_directives() {
    // (request Cache-Control, seconds after storing a max-age=100 response, outcome)
    let table: &[(&str, i64, &str)] = &[
        ("max-age=0", 1, "stale"),
        ("max-age=50", 10, "fresh"),
        ("max-age=5", 10, "stale"),
        ("min-fresh=95", 10, "stale"),
        ("min-fresh=10", 10, "fresh"),
        ("max-stale", 500, "fresh"),
        ("max-stale=50", 120, "fresh"),
        ("max-stale=10", 120, "stale"),
        ("no-cache", 1, "stale"),
        ("no-store", 1, "bypass"),
        ("only-if-cached", 1, "fresh"),
        ("only-if-cached", 200, "504"),
    ];
    for (cc, after, want) in table {
        let mut h = Harness::new();
        h.fill(
            "/q",
            &[],
            200,
            &[("Cache-Control", "max-age=100"), ("ETag", "\"e\"")],
            "b",
        )
        .unwrap();
        h.clock.advance(*after);
        let l = h.get("/q", &[("Cache-Control", cc)]);
        let got = match l {
            Lookup::Fresh(_) => "fresh",
            Lookup::Stale(_) => "stale",
            Lookup::Bypass(_) => "bypass",
            Lookup::OnlyIfCachedMiss => "504",
            Lookup::Miss(_) => "miss",
        };
        assert_eq!(got, *want, "{cc} after {after}s");
    }
    let mut h = Harness::new();
    assert!(matches!(
        h.get("/none", &[("Cache-Control", "only-if-cached")]),
        Lookup::OnlyIfCachedMiss
    ));
}

#[test]
fn pragma_no_cache_counts_only_without_cache_control() {
    let mut h = Harness::new();
    h.fill("/p", &[], 200, &[("Cache-Control", "max-age=100")], "b")
        .unwrap();
    assert!(matches!(
        h.get("/p", &[("Pragma", "no-cache")]),
        Lookup::Stale(_)
    ));
    assert!(matches!(
        h.get(
            "/p",
            &[("Pragma", "no-cache"), ("Cache-Control", "max-age=100")]
        ),
        Lookup::Fresh(_)
    ));
}

#[test]
fn invalidation_on_unsafe_methods_includes_same_origin_locations() {
    let mut h = Harness::new();
    for t in ["/a/target", "/a/loc", "/a/cloc", "/other"] {
        h.fill(t, &[], 200, &[("Cache-Control", "max-age=100")], "b")
            .unwrap();
    }
    let rl = lines(&[]);
    let mut post = request("POST", "/a/target", &rl);
    post.has_body = true;
    let failed = lines(&[]);
    assert_eq!(
        h.cache.invalidate(
            &post,
            &Response {
                status: 500,
                headers: &failed
            }
        ),
        0
    );
    let ok = lines(&[
        ("Location", "loc"),
        ("Content-Location", "https://EXAMPLE.com:443/a/cloc"),
        ("X", "y"),
    ]);
    assert_eq!(
        h.cache.invalidate(
            &post,
            &Response {
                status: 201,
                headers: &ok
            }
        ),
        3
    );
    let foreign = lines(&[("Location", "https://evil.example/other")]);
    assert_eq!(
        h.cache.invalidate(
            &post,
            &Response {
                status: 200,
                headers: &foreign
            }
        ),
        0
    );
    for (t, cached) in [
        ("/a/target", false),
        ("/a/loc", false),
        ("/a/cloc", false),
        ("/other", true),
    ] {
        assert_eq!(matches!(h.get(t, &[]), Lookup::Fresh(_)), cached, "{t}");
    }
}

#[test]
fn head_is_served_from_a_stored_get_without_body() {
    let mut h = Harness::new();
    h.fill("/h", &[], 200, &[("Cache-Control", "max-age=100")], "body")
        .unwrap();
    let l = h.lookup("HEAD", "/h", &[]);
    let hit = hit(&l);
    assert!(hit.head);
    assert!(hit.body().is_empty());
}

#[test]
fn range_requests_are_answered_from_a_stored_full_response() {
    let mut h = Harness::new();
    h.fill(
        "/r",
        &[],
        200,
        &[("Cache-Control", "max-age=100"), ("ETag", "\"s\"")],
        "0123456789",
    )
    .unwrap();
    let table: &[(Lines, RangeDecision, &str)] = &[
        (
            &[("Range", "bytes=2-4")],
            RangeDecision::Partial { start: 2, end: 4 },
            "234",
        ),
        (
            &[("Range", "bytes=7-")],
            RangeDecision::Partial { start: 7, end: 9 },
            "789",
        ),
        (
            &[("Range", "bytes=-3")],
            RangeDecision::Partial { start: 7, end: 9 },
            "789",
        ),
        (&[("Range", "bytes=20-")], RangeDecision::Unsatisfiable, ""),
        (
            &[("Range", "bytes=0-1,3-4")],
            RangeDecision::Full,
            "0123456789",
        ),
        (
            &[("Range", "bytes=2-4"), ("If-Range", "\"s\"")],
            RangeDecision::Partial { start: 2, end: 4 },
            "234",
        ),
        (
            &[("Range", "bytes=2-4"), ("If-Range", "\"old\"")],
            RangeDecision::Full,
            "0123456789",
        ),
    ];
    for (req, want, body) in table {
        let l = h.get("/r", req);
        let hit = hit(&l);
        assert_eq!(hit.range, *want, "{req:?}");
        assert_eq!(&hit.body()[..], body.as_bytes(), "{req:?}");
    }
}

#[test]
fn client_conditionals_are_answered_from_the_stored_response() {
    let mut h = Harness::new();
    let lm = date(-100);
    h.fill(
        "/c",
        &[],
        200,
        &[
            ("Cache-Control", "max-age=100"),
            ("ETag", "W/\"a\""),
            ("Last-Modified", &lm),
        ],
        "b",
    )
    .unwrap();
    let later = date(-50);
    let earlier = date(-200);
    let table: &[(Lines, ClientConditional)] = &[
        (
            &[("If-None-Match", "\"a\"")],
            ClientConditional::NotModified,
        ),
        (
            &[("If-None-Match", "\"x\", W/\"a\"")],
            ClientConditional::NotModified,
        ),
        (&[("If-None-Match", "*")], ClientConditional::NotModified),
        (
            &[("If-None-Match", "\"x\""), ("If-Modified-Since", &later)],
            ClientConditional::Full,
        ),
        (
            &[("If-Modified-Since", &later)],
            ClientConditional::NotModified,
        ),
        (&[("If-Modified-Since", &earlier)], ClientConditional::Full),
    ];
    for (req, want) in table {
        let l = h.get("/c", req);
        assert_eq!(hit(&l).conditional, *want, "{req:?}");
    }
}

#[test]
fn cdn_cache_control_targets_this_cache() {
    let table: &[(Lines, i64, bool)] = &[
        (&[("CDN-Cache-Control", "max-age=3600")], 100, true),
        (
            &[
                ("Cache-Control", "max-age=1"),
                ("CDN-Cache-Control", "max-age=3600"),
            ],
            100,
            true,
        ),
        (
            &[
                ("Cache-Control", "max-age=3600"),
                ("CDN-Cache-Control", "max-age=1"),
            ],
            10,
            false,
        ),
        (
            &[
                ("Cache-Control", "no-store"),
                ("CDN-Cache-Control", "max-age=100"),
            ],
            10,
            true,
        ),
        (
            &[
                ("Cache-Control", "max-age=100"),
                ("CDN-Cache-Control", "private"),
            ],
            0,
            false,
        ),
        (
            &[
                ("Cache-Control", "max-age=100"),
                ("CDN-Cache-Control", "no-store"),
            ],
            0,
            false,
        ),
        (
            &[
                ("Cache-Control", "max-age=100"),
                ("CDN-Cache-Control", "no-cache"),
            ],
            0,
            false,
        ),
        (
            &[
                ("Cache-Control", "no-store"),
                ("CDN-Cache-Control", "max-age=\"100\""),
            ],
            0,
            false,
        ),
        (
            &[
                ("Cache-Control", "no-store"),
                ("CDN-Cache-Control", "max-age=100, &&&"),
            ],
            0,
            false,
        ),
        (&[("CDN-Cache-Control", "max-age=99999999999")], 100, true),
        (
            &[("CDN-Cache-Control", "max-age=3600"), ("Age", "4000")],
            0,
            false,
        ),
    ];
    for (i, (resp, after, fresh)) in table.iter().enumerate() {
        let mut h = Harness::new();
        let _ = h.fill("/t", &[], 200, resp, "b");
        h.clock.advance(*after);
        assert_eq!(
            matches!(h.get("/t", &[]), Lookup::Fresh(_)),
            *fresh,
            "row {i}: {resp:?}"
        );
    }
}

#[test]
fn targeted_field_names_are_configurable() {
    let config = Config {
        targets: vec![
            b"bext-cache-control".to_vec().into(),
            b"cdn-cache-control".to_vec().into(),
        ],
        ..Config::default()
    };
    let mut h = Harness::with(config);
    h.fill(
        "/t",
        &[],
        200,
        &[
            ("CDN-Cache-Control", "max-age=1"),
            ("Bext-Cache-Control", "max-age=100"),
        ],
        "b",
    )
    .unwrap();
    h.clock.advance(10);
    assert!(matches!(h.get("/t", &[]), Lookup::Fresh(_)));
}

#[test]
fn cache_status_members() {
    let mut h = Harness::new();
    let Lookup::Miss(m) = h.get("/s", &[]) else {
        panic!()
    };
    assert_eq!(m.status.render("bext"), "bext; fwd=uri-miss");
    drop(m);
    h.fill("/s", &[], 200, &[("Cache-Control", "max-age=100")], "b")
        .unwrap();
    h.clock.advance(58);
    let l = h.get("/s", &[]);
    let mut st = hit(&l).status.clone();
    assert_eq!(st.render("bext"), "bext; hit; ttl=42");
    st.key = Some("https://example.com/s".into());
    st.collapsed = true;
    assert_eq!(
        st.render("edge"),
        "edge; hit; collapsed; ttl=42; key=\"https://example.com/s\""
    );
    let fwd = bext_cache::CacheStatus {
        fwd: Some(bext_cache::status::Fwd::Request),
        fwd_status: Some(200),
        stored: true,
        ..Default::default()
    };
    assert_eq!(
        fwd.render("bext"),
        "bext; fwd=request; fwd-status=200; stored"
    );
}

#[test]
fn connection_listed_and_hop_by_hop_fields_are_not_stored() {
    let mut h = Harness::new();
    h.fill(
        "/c",
        &[],
        200,
        &[
            ("Cache-Control", "max-age=100"),
            ("Connection", "a, b"),
            ("a", "1"),
            ("b", "2"),
            ("c", "3"),
            ("Keep-Alive", "x"),
            ("Proxy-Authenticate", "y"),
        ],
        "b",
    )
    .unwrap();
    let l = h.get("/c", &[]);
    let names: Vec<String> = hit(&l)
        .headers()
        .map(|(n, _)| String::from_utf8_lossy(n).into_owned())
        .collect();
    assert_eq!(names, ["Cache-Control", "c"]);
}

#[test]
fn query_arguments_are_part_of_the_key_except_ignored_ones() {
    let mut config = Config::default();
    config.key.ignored_query = vec![b"utm_source".to_vec().into()];
    let mut h = Harness::with(config);
    h.fill(
        "/q?a=1&utm_source=x",
        &[],
        200,
        &[("Cache-Control", "max-age=100")],
        "b",
    )
    .unwrap();
    assert!(matches!(h.get("/q?a=1", &[]), Lookup::Fresh(_)));
    assert!(matches!(
        h.get("/q?utm_source=y&a=1", &[]),
        Lookup::Fresh(_)
    ));
    assert!(matches!(h.get("/q?a=2", &[]), Lookup::Miss(_)));
    assert!(matches!(h.get("/q", &[]), Lookup::Miss(_)));
}

#[test]
fn extra_key_parts_separate_objects() {
    let mut config = Config::default();
    config.key.extra = vec![bext_cache::KeyPart::Cookie(b"lang".to_vec().into())];
    let mut h = Harness::with(config);
    h.fill(
        "/k",
        &[("Cookie", "session=1; lang=fr")],
        200,
        &[("Cache-Control", "max-age=100")],
        "fr",
    )
    .unwrap();
    assert!(matches!(
        h.get("/k", &[("Cookie", "lang=fr; session=2")]),
        Lookup::Fresh(_)
    ));
    assert!(matches!(
        h.get("/k", &[("Cookie", "lang=de")]),
        Lookup::Miss(_)
    ));
}

#[test]
fn a_304_to_the_client_carries_validators_and_no_content_fields() {
    let mut h = Harness::new();
    h.fill(
        "/n",
        &[],
        200,
        &[
            ("Cache-Control", "max-age=100"),
            ("ETag", "\"a\""),
            ("Content-Type", "text/plain"),
            ("Content-Length", "4"),
        ],
        "body",
    )
    .unwrap();
    let l = h.get("/n", &[("If-None-Match", "\"a\"")]);
    let nm = hit(&l);
    assert_eq!(nm.status_code(), 304);
    let names: Vec<&[u8]> = nm.headers().map(|(n, _)| n).collect();
    assert_eq!(names, [&b"Cache-Control"[..], b"ETag"]);
    assert!(nm.body().is_empty());
    let l = h.get("/n", &[("Range", "bytes=0-1")]);
    assert_eq!(hit(&l).status_code(), 206);
}
