//! `Policy::decide`, one case per rule: each starts from a response that is compressed and
//! changes one fact.

use bext_compress::{Encoding, Policy, RequestFacts, ResponseFacts};
use bext_ir::{Compress, Loc};

fn policy() -> Policy {
    Policy::new(&Compress::with_defaults(
        vec![Encoding::Zstd, Encoding::Br, Encoding::Gzip],
        Loc::default(),
    ))
}

const AE: &[&[u8]] = &[b"gzip, br"];

fn req() -> RequestFacts<'static> {
    RequestFacts {
        head: false,
        range: false,
        accept_encoding: AE,
    }
}

fn resp() -> ResponseFacts<'static> {
    ResponseFacts {
        status: 200,
        content_length: Some(10_000),
        content_type: Some(b"text/html; charset=utf-8"),
        content_encoding: false,
        cache_control: &[],
    }
}

type Case = (
    &'static str,
    fn(&mut RequestFacts<'static>, &mut ResponseFacts<'static>),
    Option<Encoding>,
);

const BR: Option<Encoding> = Some(Encoding::Br);

const CASES: &[Case] = &[
    ("the baseline is compressed", |_, _| {}, BR),
    ("HEAD", |q, _| q.head = true, None),
    ("a Range request", |q, _| q.range = true, None),
    ("no Accept-Encoding", |q, _| q.accept_encoding = &[], None),
    (
        "Accept-Encoding without an offered coding",
        |q, _| q.accept_encoding = &[b"deflate"],
        None,
    ),
    ("status 100", |_, r| r.status = 100, None),
    ("status 101", |_, r| r.status = 101, None),
    ("status 103", |_, r| r.status = 103, None),
    ("status 204", |_, r| r.status = 204, None),
    ("status 206", |_, r| r.status = 206, None),
    ("status 304", |_, r| r.status = 304, None),
    ("status 404 is compressed", |_, r| r.status = 404, BR),
    ("status 500 is compressed", |_, r| r.status = 500, BR),
    ("already encoded", |_, r| r.content_encoding = true, None),
    (
        "no-transform",
        |_, r| r.cache_control = &[b"no-transform"],
        None,
    ),
    (
        "no-transform among others, any case",
        |_, r| r.cache_control = &[b"max-age=60", b"public, No-Transform"],
        None,
    ),
    (
        "no-transform inside a quoted argument does not count",
        |_, r| r.cache_control = &[b"private=\"x, no-transform\""],
        BR,
    ),
    (
        "a longer directive name does not count",
        |_, r| r.cache_control = &[b"no-transformx, no-store"],
        BR,
    ),
    ("below min_size", |_, r| r.content_length = Some(255), None),
    ("at min_size", |_, r| r.content_length = Some(256), BR),
    ("no body", |_, r| r.content_length = Some(0), None),
    (
        "unknown length (streamed)",
        |_, r| r.content_length = None,
        BR,
    ),
    ("no Content-Type", |_, r| r.content_type = None, None),
    (
        "a type not listed",
        |_, r| r.content_type = Some(b"image/png"),
        None,
    ),
    (
        "a top-level wildcard",
        |_, r| r.content_type = Some(b"text/css"),
        BR,
    ),
    (
        "a type in capitals",
        |_, r| r.content_type = Some(b"Application/JSON"),
        BR,
    ),
    (
        "parameters and spaces dropped",
        |_, r| r.content_type = Some(b"  application/json ;charset=utf-8"),
        BR,
    ),
    (
        "a suffix is not the type",
        |_, r| r.content_type = Some(b"application/jsonx"),
        None,
    ),
    (
        "a wildcard covers only its top level",
        |_, r| r.content_type = Some(b"textual/plain"),
        None,
    ),
    ("no slash", |_, r| r.content_type = Some(b"text"), None),
    ("svg", |_, r| r.content_type = Some(b"image/svg+xml"), BR),
    (
        "wasm",
        |_, r| r.content_type = Some(b"application/wasm"),
        BR,
    ),
];

#[test]
fn decide_table() {
    let p = policy();
    let mut failed = vec![];
    for (name, change, want) in CASES {
        let (mut q, mut r) = (req(), resp());
        change(&mut q, &mut r);
        let got = p.decide(&q, &r);
        if got != *want {
            failed.push(format!("{name}: got {got:?}, want {want:?}"));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn varies_ignores_the_request() {
    let p = policy();
    let (mut q, r) = (req(), resp());
    q.head = true;
    q.accept_encoding = &[];
    assert_eq!(p.decide(&q, &r), None);
    assert!(
        p.varies(&r),
        "a cache must still key this response on Accept-Encoding"
    );
    let mut r = resp();
    r.content_type = Some(b"image/png");
    assert!(!p.varies(&r));
}

#[test]
fn policy_reads_the_ir() {
    let mut c = Compress::with_defaults(vec![Encoding::Gzip, Encoding::Zstd], Loc::default());
    c.levels.insert(Encoding::Gzip, 6);
    c.min_size = 0;
    c.types = vec!["Application/X-Custom".into(), "font/*".into()];
    let p = Policy::new(&c);
    assert_eq!(p.offered(), &[Encoding::Gzip, Encoding::Zstd]);
    assert_eq!(p.level(Encoding::Gzip), Some(6));
    assert_eq!(p.level(Encoding::Zstd), Some(3));
    assert_eq!(p.level(Encoding::Br), None);
    assert_eq!(p.encoder(Encoding::Gzip).level(), 6);
    assert!(p.type_listed(b"application/x-custom"));
    assert!(p.type_listed(b"font/woff"));
    assert!(!p.type_listed(b"text/html"));
    let mut r = resp();
    r.content_type = Some(b"font/ttf");
    r.content_length = Some(1);
    let q = RequestFacts {
        accept_encoding: &[b"zstd, gzip"],
        ..req()
    };
    assert_eq!(
        p.decide(&q, &r),
        Some(Encoding::Gzip),
        "min_size 0 compresses a 1-byte body"
    );
    r.content_length = Some(0);
    assert_eq!(p.decide(&q, &r), None, "but never an empty one");
}
