//! Head edits: the exact bytes written.

use bext_compress::head::{edit, vary, weaken_etag, Edit};

#[test]
fn vary_table() {
    let table: &[(&[&str], Option<&str>)] = &[
        (&[], Some("Accept-Encoding")),
        (&["Origin"], Some("Origin, Accept-Encoding")),
        (&["Origin, Cookie"], Some("Origin, Cookie, Accept-Encoding")),
        (
            &["Origin", " Cookie ,"],
            Some("Origin, Cookie, Accept-Encoding"),
        ),
        (&["accept-encoding"], None),
        (&["Origin,Accept-Encoding"], None),
        (&["Origin", "ACCEPT-ENCODING"], None),
        (&["*"], None),
        (&["Origin, *"], None),
        (
            &["Accept-Encodings"],
            Some("Accept-Encodings, Accept-Encoding"),
        ),
    ];
    for (existing, want) in table {
        let lines: Vec<&[u8]> = existing.iter().map(|s| s.as_bytes()).collect();
        let mut out = vec![];
        let changed = vary(&lines, &mut out);
        match want {
            Some(w) => {
                assert!(changed, "{existing:?}");
                assert_eq!(String::from_utf8_lossy(&out), *w, "{existing:?}");
            }
            None => assert!(!changed && out.is_empty(), "{existing:?}"),
        }
    }
}

#[test]
fn etag_table() {
    let table: &[(&str, Option<&str>)] = &[
        ("\"abc\"", Some("W/\"abc\"")),
        ("\"\"", Some("W/\"\"")),
        (" \"abc\" ", Some("W/\"abc\"")),
        ("W/\"abc\"", None),
        ("abc", None),
        ("\"", None),
        ("", None),
    ];
    for (tag, want) in table {
        let mut out = vec![];
        let changed = weaken_etag(tag.as_bytes(), &mut out);
        assert_eq!(
            changed
                .then(|| String::from_utf8_lossy(&out).into_owned())
                .as_deref(),
            *want,
            "{tag:?}"
        );
    }
}

#[test]
fn field_edits() {
    let table: &[(&str, &str, Edit, &str)] = &[
        ("Content-Length", "1234", Edit::Remove, ""),
        ("content-length", "0", Edit::Remove, ""),
        ("Accept-Ranges", "bytes", Edit::Remove, ""),
        ("ETag", "\"v1\"", Edit::Replace, "W/\"v1\""),
        ("etag", "W/\"v1\"", Edit::Keep, ""),
        ("Content-Type", "text/html", Edit::Keep, ""),
        ("Vary", "Origin", Edit::Keep, ""),
        ("Cache-Control", "max-age=60", Edit::Keep, ""),
    ];
    for (name, value, want, written) in table {
        let mut out = vec![];
        assert_eq!(
            edit(name.as_bytes(), value.as_bytes(), &mut out),
            *want,
            "{name}: {value}"
        );
        assert_eq!(String::from_utf8_lossy(&out), *written, "{name}: {value}");
    }
}
