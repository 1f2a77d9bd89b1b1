//! `bext check` reports every tie (E0401) of a configuration, each at the later route's path
//! with a label on the earlier route it ties with — not only the first one, and not the routes
//! that merely look alike (disjoint conditions, fewer conditions).

use bext_dsl::compile_str;

const SRC: &str = r#"listen :8080
upstream app { server 127.0.0.1:9000 }
site a.test {
    route = /x { proxy app }
    route = /x { respond 200 }
    route /api/* { method GET; proxy app }
    route /api/* { method GET HEAD; proxy app }
    route /api/* { method POST; proxy app }
    route /api/* { proxy app }
    route ~ '^/u/[0-9]+$' { header x-v = "1"; proxy app }
    route ~ '^/u/[0-9]+$' { header x-v = "2"; proxy app }
    route ~ '^/u/[0-9]+$' { header X-V present; proxy app }
    route /* { proxy app }
    route /* { respond 404 }
    route /* { respond 410 }
}
site b.test {
    route /s/* { query q = "1"; proxy app }
    route /s/* { header x-a present; proxy app }
    route /t/* { query q = "1"; proxy app }
    route /t/* { query q = "2"; proxy app }
}
"#;

#[test]
fn every_tie_is_reported_with_the_route_it_ties_with() {
    let failure = compile_str("ties.bext", SRC).expect_err("ties are errors");
    let mut got: Vec<(&str, u32, u32, Vec<u32>)> = failure
        .diagnostics()
        .iter()
        .map(|d| {
            (
                d.code,
                d.line,
                d.col,
                d.labels.iter().map(|l| l.line).collect(),
            )
        })
        .collect();
    got.sort_by_key(|(_, line, col, _)| (*line, *col));
    // (code, line, column of the later route's path, line of the earlier route)
    let want: Vec<(&str, u32, u32, Vec<u32>)> = vec![
        // Same exact path, no conditions.
        ("E0401", 5, 13, vec![4]),
        // GET is in both method lists. POST (line 8) is disjoint; line 9 has fewer conditions.
        ("E0401", 7, 11, vec![6]),
        // `present` overlaps `= "1"`; lines 10 and 11 require different values.
        ("E0401", 12, 13, vec![10]),
        // A third identical route ties with the first, and is reported too.
        ("E0401", 14, 11, vec![13]),
        ("E0401", 15, 11, vec![13]),
        // One query and one header condition: equal counts, both can hold.
        ("E0401", 19, 11, vec![18]),
    ];
    assert_eq!(got, want);
}

#[test]
fn ties_are_reported_in_json_with_line_and_column() {
    let failure = compile_str("ties.bext", SRC).expect_err("ties are errors");
    let json = failure.render_json();
    let lines: Vec<&str> = json.lines().collect();
    assert_eq!(lines.len(), 6, "{json}");
    for line in lines {
        assert!(line.contains(r#""code":"E0401""#), "{line}");
        assert!(line.contains(r#""file":"ties.bext""#), "{line}");
    }
    assert!(json.contains(r#""line":19,"column":11"#), "{json}");
}
