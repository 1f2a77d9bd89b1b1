//! Every diagnostic code the compiler can emit is documented in `docs/diagnostics.md` exactly
//! once, every documented code exists, and every code is exercised by a bad-config test.

use std::collections::BTreeMap;
use std::path::Path;

fn codes_in(text: &str, quoted: bool) -> Vec<String> {
    let b = text.as_bytes();
    let mut out = vec![];
    for i in 0..b.len().saturating_sub(5) {
        let is_code =
            (b[i] == b'E' || b[i] == b'W') && b[i + 1..i + 5].iter().all(u8::is_ascii_digit);
        let before_ok = !quoted || (i > 0 && b[i - 1] == b'"' && b.get(i + 5) == Some(&b'"'));
        let bounded = i == 0 || !b[i - 1].is_ascii_alphanumeric();
        if is_code
            && before_ok
            && bounded
            && b.get(i + 5).is_none_or(|c| !c.is_ascii_alphanumeric())
        {
            out.push(text[i..i + 5].to_string());
        }
    }
    out
}

fn source_codes() -> Vec<String> {
    codes_under("src")
}

/// The codes of what the engine refuses beyond the language, which the `bext` command reports
/// (`bext check`, and `bext run` when it refuses to start).
fn cli_codes() -> Vec<String> {
    codes_under("../src/cli")
}

fn codes_under(dir: &str) -> Vec<String> {
    let mut all = vec![];
    let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join(dir)];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(dir).expect("source dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                all.extend(codes_in(&std::fs::read_to_string(&p).expect("read"), true));
            }
        }
    }
    all.sort();
    all.dedup();
    all
}

fn documented() -> BTreeMap<String, usize> {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/diagnostics.md"),
    )
    .expect("docs/diagnostics.md");
    let mut m = BTreeMap::new();
    for line in doc.lines() {
        if let Some(h) = line.strip_prefix("### ") {
            let code = h.split_whitespace().next().unwrap_or("").to_string();
            *m.entry(code).or_insert(0) += 1;
        }
    }
    m
}

#[test]
fn every_code_is_documented_once_and_every_documented_code_exists() {
    let src = [source_codes(), cli_codes()].concat();
    let doc = documented();
    assert!(src.len() >= 40, "{src:?}");
    for c in &src {
        assert_eq!(
            doc.get(c),
            Some(&1),
            "{c} must have exactly one `### {c}` heading"
        );
    }
    for c in doc.keys() {
        assert!(src.contains(c), "{c} is documented but never emitted");
    }
}

#[test]
fn codes_are_well_formed_and_errors_are_distinct_from_warnings() {
    for c in source_codes() {
        assert_eq!(c.len(), 5);
        assert!(c.starts_with('E') || c.starts_with('W'));
    }
}

#[test]
fn every_code_is_exercised_by_a_test() {
    let tests =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad_configs.rs"))
            .expect("bad_configs.rs");
    let tested = codes_in(&tests, true);
    for c in source_codes() {
        // E0000 is the unreadable top-level file and E0501 a directive the engine does not
        // run: both are tested through the CLI (tests/cli_check.rs).
        if c != "E0000" && c != "E0501" {
            assert!(tested.contains(&c), "{c} has no bad-config test");
        }
    }
}
