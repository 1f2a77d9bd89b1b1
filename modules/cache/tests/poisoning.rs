//! Cache poisoning and deception defences, each with the request or response that would
//! exploit a cache without it.

mod common;

use bext_cache::key::KeyBypass;
use bext_cache::{Bypass, Commit, Config, DontStore, KeyPart, Lookup, Response};
use common::{lines, request, Harness};

fn bypass(l: &Lookup) -> &Bypass {
    match l {
        Lookup::Bypass(b) => b,
        other => panic!("expected a bypass, got {other:?}"),
    }
}

#[test]
fn reflected_unkeyed_request_fields_bypass_the_cache() {
    for field in [
        "X-Forwarded-Host",
        "X-Host",
        "X-Forwarded-Server",
        "X-Original-URL",
        "X-Rewrite-URL",
        "X-Forwarded-Scheme",
        "X-Forwarded-Proto",
        "X-Forwarded-Port",
        "Forwarded",
        "X-HTTP-Method-Override",
    ] {
        let mut h = Harness::new();
        let l = h.get("/", &[(field, "evil.example")]);
        assert_eq!(
            bypass(&l),
            &Bypass::Key(KeyBypass::UnkeyedField(
                field.to_ascii_lowercase().into_bytes().into()
            )),
            "{field}"
        );
        // and a response to such a request is not stored either
        assert_eq!(
            h.fill(
                "/",
                &[(field, "evil.example")],
                200,
                &[("Cache-Control", "max-age=60")],
                "poison"
            ),
            Err(DontStore::Bypassed),
            "{field}"
        );
    }
}

#[test]
fn a_keyed_reflected_field_is_cached_per_value() {
    let mut config = Config::default();
    config.key.extra = vec![KeyPart::Header(b"x-forwarded-host".to_vec().into())];
    let mut h = Harness::with(config);
    h.fill(
        "/",
        &[("X-Forwarded-Host", "evil.example")],
        200,
        &[("Cache-Control", "max-age=60")],
        "poison",
    )
    .unwrap();
    assert!(
        matches!(h.get("/", &[]), Lookup::Miss(_)),
        "other users do not get the reflected page"
    );
    assert!(matches!(
        h.get("/", &[("X-Forwarded-Host", "evil.example")]),
        Lookup::Fresh(_)
    ));
}

#[test]
fn get_or_head_with_a_body_bypasses() {
    let mut h = Harness::new();
    let rl = lines(&[("Content-Length", "5")]);
    for m in ["GET", "HEAD"] {
        let mut req = request(m, "/", &rl);
        req.has_body = true;
        assert!(matches!(
            h.cache.lookup(&req),
            Lookup::Bypass(Bypass::Key(KeyBypass::BodyOnSafeMethod))
        ));
    }
}

#[test]
fn host_spellings_share_one_key() {
    let mut h = Harness::new();
    h.fill("/", &[], 200, &[("Cache-Control", "max-age=60")], "b")
        .unwrap();
    for host in [
        "EXAMPLE.com",
        "example.com:443",
        "example.com.",
        "example.com:0443",
    ] {
        let fields = [("Host", host)];
        let rl = lines(&fields);
        let mut req = request("GET", "/", &rl);
        req.authority = host.as_bytes();
        assert!(matches!(h.cache.lookup(&req), Lookup::Fresh(_)), "{host}");
    }
}

#[test]
fn absolute_form_authority_disagreeing_with_host_bypasses() {
    let mut h = Harness::new();
    let rl = lines(&[("Host", "evil.example")]);
    let req = request("GET", "/", &rl); // authority example.com, from the absolute-form target
    assert!(matches!(
        h.cache.lookup(&req),
        Lookup::Bypass(Bypass::Key(KeyBypass::HostMismatch))
    ));
}

#[test]
fn authority_with_userinfo_or_bad_port_bypasses() {
    let mut h = Harness::new();
    for a in ["user@example.com", "example.com:x", ""] {
        let rl = lines(&[]);
        let mut req = request("GET", "/", &rl);
        req.authority = a.as_bytes();
        assert!(
            matches!(
                h.cache.lookup(&req),
                Lookup::Bypass(Bypass::Key(KeyBypass::BadAuthority))
            ),
            "{a:?}"
        );
    }
}

#[test]
fn error_pages_are_not_stored_by_default_cpdos() {
    for status in [400, 403, 413, 431, 500, 502, 503, 504] {
        let mut h = Harness::new();
        let got = h.fill(
            "/",
            &[],
            status,
            &[("Cache-Control", "max-age=600")],
            "error",
        );
        assert_eq!(got, Err(DontStore::ErrorStatus), "{status}");
    }
    for status in [404, 405, 410, 414, 501] {
        let mut h = Harness::new();
        assert!(
            h.fill("/", &[], status, &[("Cache-Control", "max-age=600")], "e")
                .is_ok(),
            "{status}"
        );
    }
    let mut h = Harness::with(Config {
        store_errors: true,
        ..Config::default()
    });
    assert!(h
        .fill("/", &[], 503, &[("Cache-Control", "max-age=600")], "e")
        .is_ok());
}

#[test]
fn set_cookie_responses_are_not_stored_unless_configured() {
    let mut h = Harness::new();
    let resp = [
        ("Cache-Control", "max-age=60"),
        ("Set-Cookie", "session=alice"),
    ];
    assert_eq!(h.fill("/", &[], 200, &resp, "b"), Err(DontStore::SetCookie));
    let mut h = Harness::with(Config {
        store_set_cookie: true,
        ..Config::default()
    });
    assert!(h.fill("/", &[], 200, &resp, "b").is_ok());
}

#[test]
fn private_page_under_a_static_looking_suffix_is_not_stored_even_with_a_default_ttl() {
    // Web cache deception: /account/settings.css is the account page (the origin ignores the
    // suffix); a cache that stores "*.css" for everyone hands it to the next visitor.
    let mut h = Harness::with(Config {
        default_ttl: Some(3600),
        ..Config::default()
    });
    for resp in [
        &[("Content-Type", "text/html"), ("Cache-Control", "private")][..],
        &[("Content-Type", "text/html"), ("Cache-Control", "no-store")],
        &[("Content-Type", "text/html"), ("Set-Cookie", "s=1")],
    ] {
        assert!(
            h.fill("/account/settings.css", &[], 200, resp, "alice's page")
                .is_err(),
            "{resp:?}"
        );
    }
    assert!(h
        .fill(
            "/account/settings.css",
            &[("Authorization", "Bearer x")],
            200,
            &[("Content-Type", "text/html")],
            "alice"
        )
        .is_err());
    assert!(matches!(
        h.get("/account/settings.css", &[]),
        Lookup::Miss(_)
    ));
}

#[test]
fn truncated_bodies_are_never_committed() {
    let mut h = Harness::new();
    let rl = lines(&[]);
    let req = request("GET", "/t", &rl);
    let hl = lines(&[("Cache-Control", "max-age=60"), ("Content-Length", "10")]);
    let resp = Response {
        status: 200,
        headers: &hl,
    };
    let mut p = h.cache.store(&req, &resp, common::T0).unwrap();
    p.push(b"12345");
    assert_eq!(
        h.cache.commit(p, true),
        Commit::Truncated,
        "shorter than Content-Length"
    );
    let mut p = h.cache.store(&req, &resp, common::T0).unwrap();
    p.push(b"1234567890");
    assert_eq!(
        h.cache.commit(p, false),
        Commit::Truncated,
        "aborted upstream"
    );
    let hl = lines(&[("Cache-Control", "max-age=60")]);
    let resp = Response {
        status: 200,
        headers: &hl,
    };
    let mut p = h.cache.store(&req, &resp, common::T0).unwrap();
    p.push(b"partial");
    assert_eq!(
        h.cache.commit(p, false),
        Commit::Truncated,
        "close-delimited, cut"
    );
    assert!(matches!(h.get("/t", &[]), Lookup::Miss(_)));
}

#[test]
fn oversized_objects_are_not_stored() {
    let mut h = Harness::with(Config {
        max_object_bytes: 4096,
        ..Config::default()
    });
    assert_eq!(
        h.fill(
            "/big",
            &[],
            200,
            &[("Cache-Control", "max-age=60"), ("Content-Length", "5000")],
            "x"
        ),
        Err(DontStore::TooLarge),
        "announced"
    );
    let rl = lines(&[]);
    let req = request("GET", "/big", &rl);
    let hl = lines(&[("Cache-Control", "max-age=60")]);
    let mut p = h
        .cache
        .store(
            &req,
            &Response {
                status: 200,
                headers: &hl,
            },
            common::T0,
        )
        .unwrap();
    assert!(p.push(&[b'x'; 3000]));
    assert!(
        !p.push(&[b'x'; 3000]),
        "chunked, discovered while buffering"
    );
    assert_eq!(h.cache.commit(p, true), Commit::TooLarge);
    assert!(h.cache.shard().is_empty());
}

#[test]
fn unsafe_methods_bypass() {
    let mut h = Harness::new();
    for m in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "get"] {
        assert!(
            matches!(
                h.lookup(m, "/", &[]),
                Lookup::Bypass(Bypass::Key(KeyBypass::Method))
            ),
            "{m}"
        );
    }
}

#[test]
fn private_set_cookie_is_stripped_and_the_rest_shared() {
    let mut h = Harness::new();
    let resp = [
        ("Cache-Control", "max-age=60, private=\"Set-Cookie\""),
        ("Set-Cookie", "session=alice"),
    ];
    assert!(h.fill("/", &[], 200, &resp, "b").is_ok());
    let Lookup::Fresh(hit) = h.get("/", &[]) else {
        panic!()
    };
    assert!(!hit.stored.headers.contains(b"set-cookie"));
}
