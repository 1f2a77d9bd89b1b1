//! `Accept-Encoding` negotiation, as a table: the field lines, what the route offers, the pick.

use bext_compress::{negotiate, parse_qvalue, Encoding};
use Encoding::{Br, Gzip, Zstd};

const ALL: &[Encoding] = &[Zstd, Br, Gzip];

/// (name, field lines, offered, expected)
type Case = (
    &'static str,
    &'static [&'static str],
    &'static [Encoding],
    Option<Encoding>,
);

const CASES: &[Case] = &[
    ("no field: sent as is", &[], ALL, None),
    ("empty field: identity only", &[""], ALL, None),
    ("one coding", &["gzip"], ALL, Some(Gzip)),
    (
        "server order breaks a tie",
        &["gzip, br, zstd"],
        ALL,
        Some(Zstd),
    ),
    (
        "server order, other offer",
        &["gzip, br"],
        &[Br, Gzip],
        Some(Br),
    ),
    (
        "browser default",
        &["gzip, deflate, br, zstd"],
        &[Gzip, Br],
        Some(Gzip),
    ),
    (
        "higher q wins over order",
        &["zstd;q=0.5, gzip"],
        ALL,
        Some(Gzip),
    ),
    ("q=0 refuses", &["zstd;q=0, br;q=0, gzip"], ALL, Some(Gzip)),
    (
        "q=0 on everything",
        &["zstd;q=0, br;q=0, gzip;q=0"],
        ALL,
        None,
    ),
    ("q=0.000 refuses", &["gzip;q=0.000"], ALL, None),
    ("q=1.000 accepts", &["gzip;q=1.000"], ALL, Some(Gzip)),
    (
        "three digits compare",
        &["gzip;q=0.501, br;q=0.5"],
        ALL,
        Some(Gzip),
    ),
    ("star covers the rest", &["*"], ALL, Some(Zstd)),
    ("star with q", &["*;q=0.1, gzip;q=0.2"], ALL, Some(Gzip)),
    ("own q beats star", &["*, zstd;q=0"], ALL, Some(Br)),
    (
        "star;q=0 refuses unnamed",
        &["gzip, *;q=0"],
        &[Zstd, Gzip],
        Some(Gzip),
    ),
    ("star;q=0 alone", &["*;q=0"], ALL, None),
    (
        "identity;q=0 alone: still identity",
        &["identity;q=0"],
        ALL,
        None,
    ),
    (
        "identity;q=0 with gzip",
        &["identity;q=0, gzip"],
        ALL,
        Some(Gzip),
    ),
    ("identity only", &["identity"], ALL, None),
    (
        "case-insensitive tokens",
        &["GZIP, Br;Q=0.9"],
        ALL,
        Some(Gzip),
    ),
    ("x-gzip is gzip", &["x-gzip"], ALL, Some(Gzip)),
    ("X-GZIP too", &["X-Gzip;q=0.5"], &[Gzip], Some(Gzip)),
    (
        "gzip listed twice: the best q",
        &["gzip;q=0, x-gzip;q=0.4"],
        &[Gzip],
        Some(Gzip),
    ),
    ("not offered", &["br"], &[Gzip], None),
    (
        "whitespace around",
        &["  gzip ;  q=0.5 ,\tbr ; q=0.6  "],
        ALL,
        Some(Br),
    ),
    (
        "two field lines are one list",
        &["gzip;q=0.5", "br"],
        ALL,
        Some(Br),
    ),
    ("empty elements", &[",, ,gzip,,"], ALL, Some(Gzip)),
    (
        "malformed q ignores the element",
        &["zstd;q=2, gzip"],
        ALL,
        Some(Gzip),
    ),
    ("q=1.5", &["zstd;q=1.5, gzip;q=0.1"], ALL, Some(Gzip)),
    ("q=.5", &["zstd;q=.5, gzip;q=0.1"], ALL, Some(Gzip)),
    (
        "four decimals",
        &["zstd;q=0.5000, gzip;q=0.1"],
        ALL,
        Some(Gzip),
    ),
    ("negative q", &["zstd;q=-1, gzip;q=0.1"], ALL, Some(Gzip)),
    ("empty q", &["zstd;q=, gzip;q=0.1"], ALL, Some(Gzip)),
    (
        "unknown parameter",
        &["zstd;level=1, gzip"],
        ALL,
        Some(Gzip),
    ),
    (
        "parameter without value",
        &["zstd;q, gzip"],
        ALL,
        Some(Gzip),
    ),
    ("two q parameters", &["zstd;q=1;q=1, gzip"], ALL, Some(Gzip)),
    ("not a token", &["zs/td, gzip"], ALL, Some(Gzip)),
    ("quoted coding", &["\"zstd\", gzip"], ALL, Some(Gzip)),
    ("junk only", &["\u{7f}\u{1}; ;=,"], ALL, None),
    (
        "a longer token that starts like one",
        &["gzipx, brotli, zstd2"],
        ALL,
        None,
    ),
    ("nothing offered", &["gzip"], &[], None),
];

#[test]
fn negotiation_table() {
    let mut failed = vec![];
    for (name, lines, offered, want) in CASES {
        let got = negotiate(lines.iter().map(|l| l.as_bytes()), offered);
        if got != *want {
            failed.push(format!(
                "{name}: {lines:?} offered {offered:?}: got {got:?}, want {want:?}"
            ));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn qvalue_grammar() {
    let table: &[(&str, Option<u16>)] = &[
        ("0", Some(0)),
        ("0.", Some(0)),
        ("0.5", Some(500)),
        ("0.05", Some(50)),
        ("0.001", Some(1)),
        ("0.999", Some(999)),
        ("1", Some(1000)),
        ("1.", Some(1000)),
        ("1.000", Some(1000)),
        ("1.001", None),
        ("1.0000", None),
        ("2", None),
        ("00.5", None),
        (".5", None),
        ("0.5x", None),
        ("", None),
        (" 0.5", None),
    ];
    for (text, want) in table {
        assert_eq!(parse_qvalue(text.as_bytes()), *want, "{text:?}");
    }
}
