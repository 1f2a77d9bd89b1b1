//! Conditional requests (RFC 9110 §13) as tables: preconditions in §13.2.2 order, and
//! `If-Range`.

use bext_static::conditional::{evaluate, if_range, Conditions, Precondition};
use bext_static::format_http_date;

const ETAG: &str = "\"1a-2b-3c\"";
const T: i64 = 1_700_000_000;

fn date(t: i64) -> String {
    String::from_utf8(format_http_date(t).to_vec()).expect("ASCII")
}

#[derive(Default)]
struct Case {
    im: Option<String>,
    ius: Option<String>,
    inm: Option<String>,
    ims: Option<String>,
}

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

#[test]
fn precondition_table() {
    use Precondition::*;
    let before = date(T - 1);
    let at = date(T);
    let after = date(T + 1);
    // (name, fields, GET/HEAD?, outcome)
    let table: Vec<(&str, Case, bool, Precondition)> = vec![
        ("nothing", Case::default(), true, Proceed),
        (
            "If-Match equal",
            Case {
                im: s(ETAG),
                ..Case::default()
            },
            true,
            Proceed,
        ),
        (
            "If-Match *",
            Case {
                im: s("*"),
                ..Case::default()
            },
            true,
            Proceed,
        ),
        (
            "If-Match in a list",
            Case {
                im: s("\"x\", \"1a-2b-3c\""),
                ..Case::default()
            },
            true,
            Proceed,
        ),
        (
            "If-Match list without spaces",
            Case {
                im: s("\"x\",\"1a-2b-3c\""),
                ..Case::default()
            },
            true,
            Proceed,
        ),
        (
            "If-Match weak is never a strong match",
            Case {
                im: s("W/\"1a-2b-3c\""),
                ..Case::default()
            },
            true,
            Failed,
        ),
        (
            "If-Match other",
            Case {
                im: s("\"x\""),
                ..Case::default()
            },
            true,
            Failed,
        ),
        (
            "If-Match other, not GET",
            Case {
                im: s("\"x\""),
                ..Case::default()
            },
            false,
            Failed,
        ),
        (
            "If-Match garbage",
            Case {
                im: s("1a-2b-3c"),
                ..Case::default()
            },
            true,
            Failed,
        ),
        (
            "If-Match wins over a true If-Unmodified-Since",
            Case {
                im: s("\"x\""),
                ius: s(&after),
                ..Case::default()
            },
            true,
            Failed,
        ),
        (
            "If-Unmodified-Since ignored under a true If-Match",
            Case {
                im: s(ETAG),
                ius: s(&before),
                ..Case::default()
            },
            true,
            Proceed,
        ),
        (
            "If-Unmodified-Since at",
            Case {
                ius: s(&at),
                ..Case::default()
            },
            true,
            Proceed,
        ),
        (
            "If-Unmodified-Since after",
            Case {
                ius: s(&after),
                ..Case::default()
            },
            true,
            Proceed,
        ),
        (
            "If-Unmodified-Since before",
            Case {
                ius: s(&before),
                ..Case::default()
            },
            true,
            Failed,
        ),
        (
            "If-Unmodified-Since invalid is ignored",
            Case {
                ius: s("yesterday"),
                ..Case::default()
            },
            true,
            Proceed,
        ),
        (
            "If-None-Match equal, GET",
            Case {
                inm: s(ETAG),
                ..Case::default()
            },
            true,
            NotModified,
        ),
        (
            "If-None-Match equal, not GET",
            Case {
                inm: s(ETAG),
                ..Case::default()
            },
            false,
            Failed,
        ),
        (
            "If-None-Match weak compares weakly",
            Case {
                inm: s("W/\"1a-2b-3c\""),
                ..Case::default()
            },
            true,
            NotModified,
        ),
        (
            "If-None-Match *",
            Case {
                inm: s("*"),
                ..Case::default()
            },
            true,
            NotModified,
        ),
        (
            "If-None-Match in a list",
            Case {
                inm: s("\"a\", W/\"b\", \"1a-2b-3c\""),
                ..Case::default()
            },
            true,
            NotModified,
        ),
        (
            "If-None-Match with a comma inside a tag",
            Case {
                inm: s("\"a,b\", \"1a-2b-3c\""),
                ..Case::default()
            },
            true,
            NotModified,
        ),
        (
            "If-None-Match other",
            Case {
                inm: s("\"x\""),
                ..Case::default()
            },
            true,
            Proceed,
        ),
        (
            "If-None-Match other, not GET",
            Case {
                inm: s("\"x\""),
                ..Case::default()
            },
            false,
            Proceed,
        ),
        (
            "If-Modified-Since ignored under If-None-Match",
            Case {
                inm: s("\"x\""),
                ims: s(&after),
                ..Case::default()
            },
            true,
            Proceed,
        ),
        (
            "If-Modified-Since at",
            Case {
                ims: s(&at),
                ..Case::default()
            },
            true,
            NotModified,
        ),
        (
            "If-Modified-Since after",
            Case {
                ims: s(&after),
                ..Case::default()
            },
            true,
            NotModified,
        ),
        (
            "If-Modified-Since before",
            Case {
                ims: s(&before),
                ..Case::default()
            },
            true,
            Proceed,
        ),
        (
            "If-Modified-Since invalid is ignored",
            Case {
                ims: s("Sun, 06 Nov 1994 08:49:37"),
                ..Case::default()
            },
            true,
            Proceed,
        ),
        (
            "If-Modified-Since only for GET and HEAD",
            Case {
                ims: s(&after),
                ..Case::default()
            },
            false,
            Proceed,
        ),
        (
            "If-Modified-Since in RFC 850 form",
            Case {
                ims: s("Tuesday, 14-Nov-23 22:13:20 GMT"),
                ..Case::default()
            },
            true,
            NotModified,
        ),
        (
            "412 before 304",
            Case {
                ius: s(&before),
                inm: s(ETAG),
                ..Case::default()
            },
            true,
            Failed,
        ),
        (
            "If-Match true, If-None-Match true",
            Case {
                im: s(ETAG),
                inm: s(ETAG),
                ..Case::default()
            },
            true,
            NotModified,
        ),
    ];
    let mut failures = vec![];
    for (name, c, get, want) in &table {
        let conditions = Conditions {
            if_match: c.im.as_deref().map(str::as_bytes),
            if_unmodified_since: c.ius.as_deref().map(str::as_bytes),
            if_none_match: c.inm.as_deref().map(str::as_bytes),
            if_modified_since: c.ims.as_deref().map(str::as_bytes),
            if_range: None,
        };
        let got = evaluate(&conditions, ETAG, T, *get);
        if got != *want {
            failures.push(format!("{name}: want {want:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn if_range_table() {
    let at = date(T);
    let after = date(T + 1);
    let table: &[(Option<&str>, bool)] = &[
        (None, true),
        (Some(ETAG), true),
        (Some(" \"1a-2b-3c\" "), true),
        (Some("W/\"1a-2b-3c\""), false),
        (Some("\"other\""), false),
        (Some(&at), true),
        (Some(&after), false),
        (Some("garbage"), false),
        (Some(""), false),
    ];
    for (v, want) in table {
        assert_eq!(if_range(v.map(str::as_bytes), ETAG, T), *want, "{v:?}");
    }
}
