//! bext's example plugins (plugins/examples/, written against the public proxy-wasm Rust SDK),
//! built here for wasm32-wasip1 and run through the host as a request would run them.

mod support;

use bext_plugins::{core, load, Props, Stream, Verdict};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

/// Builds the examples' workspace once per test run (into target/plugin-examples) and
/// returns the folder of the built modules.
fn built() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        support::build_examples(
            &here.join("examples/Cargo.toml"),
            &here.join("../target/plugin-examples"),
        )
    })
}

fn plugin(name: &str, config: &[(&str, &str)]) -> Arc<bext_plugins::Plugin> {
    load(&support::directive(built(), name, config)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn f(pairs: &[(&str, &str)]) -> Vec<(Vec<u8>, Vec<u8>)> {
    pairs
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect()
}

fn request(p: &Arc<bext_plugins::Plugin>, headers: &[(&str, &str)]) -> (Stream, Verdict) {
    let mut s = Stream::open(p, Props::default()).unwrap();
    s.data.request_headers = f(headers);
    let v = s.request_headers(true);
    (s, v)
}

#[test]
fn add_header_rewrites_request_headers_and_sets_a_response_header() {
    let p = plugin(
        "add_header",
        &[
            ("name", "x-served-by"),
            ("value", "bext"),
            ("rename_from", "x-user"),
            ("rename_to", "x-account"),
            ("drop", "x-debug"),
        ],
    );
    let (mut s, v) = request(
        &p,
        &[
            (":path", "/"),
            ("x-user", "ann"),
            ("x-debug", "1"),
            ("accept", "*/*"),
        ],
    );
    assert_eq!(v, Verdict::Continue);
    assert!(s.data.request_headers_changed);
    assert_eq!(
        s.data.request_headers,
        f(&[(":path", "/"), ("accept", "*/*"), ("x-account", "ann")])
    );
    s.data.response_headers = f(&[(":status", "200"), ("content-type", "text/plain")]);
    assert_eq!(s.response_headers(200, false), Verdict::Continue);
    assert_eq!(
        s.data.response_headers,
        f(&[
            (":status", "200"),
            ("content-type", "text/plain"),
            ("x-served-by", "bext")
        ])
    );
    s.finish();
    // A configuration it refuses is an error at load (E0805), not at the first request.
    let ir = support::directive(built(), "add_header", &[("name", "x-a")]);
    let e = load(&ir).unwrap_err();
    assert_eq!(e.kind.code(), "E0805", "{e}");
}

#[test]
fn jwt_check_lets_valid_tokens_through_and_answers_401_otherwise() {
    core::capture_logs();
    let p = plugin("jwt_check", &[("issuer", "https://issuer.example")]);
    let good = format!(
        "Bearer {}",
        support::token(r#"{"iss":"https://issuer.example","sub":"ann","exp":9999999999}"#)
    );
    let (s, v) = request(&p, &[(":path", "/"), ("authorization", &good)]);
    assert_eq!(v, Verdict::Continue);
    assert_eq!(
        s.data.request_headers,
        f(&[(":path", "/"), ("x-jwt-sub", "ann")])
    );
    let expired = format!(
        "Bearer {}",
        support::token(r#"{"iss":"https://issuer.example","sub":"ann","exp":1000}"#)
    );
    let other = format!(
        "Bearer {}",
        support::token(r#"{"iss":"https://other.example","sub":"ann","exp":9999999999}"#)
    );
    for (auth, why) in [
        (None, "no bearer token"),
        (Some("Basic YTpi"), "not a bearer token"),
        (Some("Bearer abc"), "not a JWT"),
        (Some(expired.as_str()), "token expired"),
        (Some(other.as_str()), "wrong issuer"),
    ] {
        let mut h = vec![(":path", "/")];
        if let Some(a) = auth {
            h.push(("authorization", a));
        }
        match request(&p, &h).1 {
            Verdict::Local(l) => {
                assert_eq!(l.status, 401, "{why}");
                assert!(l
                    .headers
                    .contains(&(b"www-authenticate".to_vec(), b"Bearer".to_vec())));
                let body = String::from_utf8(l.body).unwrap();
                assert!(body.contains(why), "{body}");
            }
            v => panic!("{why}: {v:?}"),
        }
    }
    let logs = core::captured_logs();
    assert!(
        logs.iter()
            .any(|l| l.contains("info: refused: token expired")),
        "{logs:?}"
    );
}

#[test]
fn redact_body_holds_the_body_and_redacts_numbers_and_words() {
    let p = plugin("redact_body", &[("words", "secret, password")]);
    let (mut s, v) = request(&p, &[(":path", "/")]);
    assert_eq!(v, Verdict::Continue);
    s.data.response_headers = f(&[(":status", "200"), ("content-length", "70")]);
    assert_eq!(s.response_headers(200, false), Verdict::Continue);
    assert_eq!(s.data.response_headers, f(&[(":status", "200")]));
    // The card number straddles two pieces: held (Pause) until the end.
    assert_eq!(s.response_body(b"card 41111111", false), Verdict::Pause);
    assert_eq!(
        s.response_body(b"11111111 and the secret, id 42", false),
        Verdict::Pause
    );
    assert_eq!(s.response_body(b"", true), Verdict::Continue);
    assert!(s.data.response_body_changed);
    assert_eq!(
        s.data.response_body,
        b"card [redacted] and the [redacted], id 42"
    );
}
