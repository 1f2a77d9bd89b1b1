//! Files as served: content types, validators, precompressed siblings, the request plan.

mod common;

use bext_static::conditional::Conditions;
use bext_static::{content_type, plan, Encoding, Found, Method, Options, Plan, Request, Static};
use std::rc::Rc;

#[test]
fn content_type_spot_checks() {
    let table = [
        ("index.html", "text/html; charset=utf-8"),
        ("INDEX.HTM", "text/html; charset=utf-8"),
        ("a/b/style.css", "text/css; charset=utf-8"),
        ("app.js", "text/javascript; charset=utf-8"),
        ("app.mjs", "text/javascript; charset=utf-8"),
        ("data.json", "application/json"),
        ("logo.svg", "image/svg+xml"),
        ("photo.JPG", "image/jpeg"),
        ("photo.webp", "image/webp"),
        ("photo.avif", "image/avif"),
        ("icon.png", "image/png"),
        ("favicon.ico", "image/x-icon"),
        ("font.woff2", "font/woff2"),
        ("font.woff", "font/woff"),
        ("module.wasm", "application/wasm"),
        ("doc.pdf", "application/pdf"),
        ("notes.txt", "text/plain; charset=utf-8"),
        ("clip.mp4", "video/mp4"),
        ("site.webmanifest", "application/manifest+json"),
        ("archive.tar.gz", "application/gzip"),
        ("Makefile", "application/octet-stream"),
        ("name.", "application/octet-stream"),
        ("dir.d/file", "application/octet-stream"),
        ("x.unknownextension", "application/octet-stream"),
        ("x.\u{e9}", "application/octet-stream"),
    ];
    for (name, want) in table {
        assert_eq!(content_type(name.as_bytes()), want, "{name}");
    }
}

fn file(h: &Static, path: &str) -> Rc<bext_static::File> {
    match h.resolve(path.as_bytes()) {
        Ok(Found::File(f)) => f,
        other => panic!("{path}: {other:?}"),
    }
}

#[test]
fn validators_describe_the_file() {
    let tree = common::tree();
    let h = Static::open(&tree.root, &[], Options::default()).expect("open");
    let f = file(&h, "/a.txt");
    let r = f.identity();
    assert_eq!(r.len(), 10);
    let tag = r.etag().as_str();
    assert!(
        tag.starts_with('"') && tag.ends_with('"') && tag.matches('-').count() == 2,
        "{tag}"
    );
    assert_eq!(r.last_modified().len(), 29);
    assert!(r.last_modified().ends_with(" GMT"));
    assert_eq!(
        bext_static::parse_http_date(r.last_modified().as_bytes()),
        Some(r.modified_secs())
    );
    // Same file, same tag; a changed file, another tag.
    assert_eq!(file(&h, "/a.txt").identity().etag(), r.etag());
    std::fs::write(tree.root.join("a.txt"), "01234567890").expect("write");
    assert_ne!(file(&h, "/a.txt").identity().etag(), r.etag());
}

#[test]
fn precompressed_siblings_are_chosen_by_preference_and_age() {
    let tree = common::tree();
    let h = Static::open(&tree.root, &[], Options::default()).expect("open");
    let f = file(&h, "/style.css");
    assert!(f.has_variants());
    assert_eq!(f.content_type(), "text/css; charset=utf-8");
    // No .zst; .br is newer than the file; .gz is older, so it is stale and never used.
    assert!(f.variant(Encoding::Zstd).is_none());
    assert!(f.variant(Encoding::Gzip).is_none());
    let (br, enc) = f.select(&[Encoding::Zstd, Encoding::Br, Encoding::Gzip]);
    assert_eq!(enc, Some(Encoding::Br));
    assert_eq!(br.len(), "br-bytes".len() as u64);
    assert!(br.etag().as_str().ends_with("-br\""), "{:?}", br.etag());
    assert_ne!(br.etag(), f.identity().etag());
    let (id, enc) = f.select(&[Encoding::Gzip]);
    assert_eq!(enc, None);
    assert_eq!(id.len(), "body{}".len() as u64);
    assert_eq!(f.select(&[]).1, None);
    // A fresh .gz is found on the next resolution.
    std::fs::write(tree.root.join("style.css.gz"), "gz-bytes").expect("write");
    let f = file(&h, "/style.css");
    assert_eq!(
        f.select(&[Encoding::Gzip, Encoding::Br]).1,
        Some(Encoding::Gzip)
    );
    // A file without siblings needs no Vary.
    assert!(!file(&h, "/a.txt").has_variants());
    // Switched off: never looked for.
    let off = Static::open(
        &tree.root,
        &[],
        Options {
            precompressed: false,
            ..Options::default()
        },
    )
    .expect("open");
    assert!(!file(&off, "/style.css").has_variants());
}

#[test]
fn plan_table() {
    let tree = common::tree();
    let h = Static::open(&tree.root, &[], Options::default()).expect("open");
    let f = file(&h, "/style.css");
    let br_tag = f
        .variant(Encoding::Br)
        .expect("br")
        .etag()
        .as_str()
        .to_string();
    let id_tag = f.identity().etag().as_str().to_string();
    let req = |method, accept: &'static [Encoding], range: Option<&'static str>| Request {
        method,
        accept,
        conditions: Conditions::default(),
        range: range.map(str::as_bytes),
    };
    let br: &[Encoding] = &[Encoding::Br];
    let kind = |p: &Plan<'_>| match p {
        Plan::MethodNotAllowed => "405".to_string(),
        Plan::PreconditionFailed => "412".to_string(),
        Plan::NotModified { encoding, .. } => format!("304 {encoding:?}"),
        Plan::Full { rep, encoding } => format!("200 {encoding:?} {}", rep.len()),
        Plan::Partial {
            range, encoding, ..
        } => format!("206 {encoding:?} {}-{}", range.first, range.last),
        Plan::Multipart { ranges, .. } => format!("206 multipart {}", ranges.as_slice().len()),
        Plan::Unsatisfiable { len } => format!("416 */{len}"),
    };
    let cases: Vec<(Request<'_>, &str)> = vec![
        (req(Method::Get, &[], None), "200 None 6"),
        (req(Method::Get, br, None), "200 Some(Br) 8"),
        (req(Method::Head, br, None), "200 Some(Br) 8"),
        (req(Method::Other, &[], None), "405"),
        (req(Method::Get, &[], Some("bytes=1-2")), "206 None 1-2"),
        (req(Method::Get, br, Some("bytes=-3")), "206 Some(Br) 5-7"),
        (
            req(Method::Get, &[], Some("bytes=0-0,2-3")),
            "206 multipart 2",
        ),
        (req(Method::Get, &[], Some("bytes=6-")), "416 */6"),
        (req(Method::Get, &[], Some("bytes=x")), "200 None 6"),
        // HEAD ignores Range (RFC 9110 §14.2: only GET has range handling).
        (req(Method::Head, &[], Some("bytes=1-2")), "200 None 6"),
        (
            Request {
                conditions: Conditions {
                    if_none_match: Some(br_tag.as_bytes()),
                    ..Conditions::default()
                },
                ..req(Method::Get, br, None)
            },
            "304 Some(Br)",
        ),
        // The identity tag does not validate the brotli representation.
        (
            Request {
                conditions: Conditions {
                    if_none_match: Some(id_tag.as_bytes()),
                    ..Conditions::default()
                },
                ..req(Method::Get, br, None)
            },
            "200 Some(Br) 8",
        ),
        (
            Request {
                conditions: Conditions {
                    if_match: Some(b"\"nope\""),
                    ..Conditions::default()
                },
                ..req(Method::Get, &[], Some("bytes=1-2"))
            },
            "412",
        ),
        (
            Request {
                conditions: Conditions {
                    if_range: Some(id_tag.as_bytes()),
                    ..Conditions::default()
                },
                ..req(Method::Get, &[], Some("bytes=1-2"))
            },
            "206 None 1-2",
        ),
        (
            Request {
                conditions: Conditions {
                    if_range: Some(b"\"stale\""),
                    ..Conditions::default()
                },
                ..req(Method::Get, &[], Some("bytes=1-2"))
            },
            "200 None 6",
        ),
    ];
    let mut failures = vec![];
    for (i, (r, want)) in cases.iter().enumerate() {
        let got = kind(&plan(&f, r));
        if got != *want {
            failures.push(format!("case {i}: want {want}, got {got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
