//! The SQLi and XSS detectors alone on libinjection's own lists, as libinjection's test driver
//! runs them (each line decoded as its `reader` does). Upstream's harness allows a few misses
//! per list (`reader -m 18` on the positive sets, `-m 21` on the false positives).

mod common;

fn rate(file: &str, detect: impl Fn(&[u8]) -> bool) -> Option<(usize, usize)> {
    let corpora = common::corpora()?;
    let text = std::fs::read_to_string(corpora.join("libinjection").join(file)).ok()?;
    let (mut hit, mut total) = (0, 0);
    for line in text.lines().filter(|l| !l.is_empty()) {
        let v = common::url_decode_line(line);
        if detect(&v) {
            hit += 1;
        } else if std::env::var("WAF_MISSES").is_ok_and(|f| f == file) {
            eprintln!("MISS {line}");
        }
        total += 1;
    }
    Some((hit, total))
}

#[test]
fn sqli_detector_on_libinjection_lists() {
    let sqli = |v: &[u8]| bext_waf::detect_sqli(v).is_some();
    let Some((s, st)) = rate("sqli.txt", sqli) else {
        return;
    };
    let (b, bt) = rate("benign.txt", sqli).expect("benign list");
    eprintln!("detectSQLi: sqli {s}/{st}, benign {b}/{bt}");
    assert!(st - s <= 40, "{} SQLi cases missed", st - s);
    assert!(b <= 25, "{b} benign cases flagged");
}

#[test]
fn xss_detector_on_libinjection_lists() {
    let Some((x, xt)) = rate("xss.txt", bext_waf::detect_xss) else {
        return;
    };
    let (b, bt) = rate("benign.txt", bext_waf::detect_xss).expect("benign list");
    eprintln!("detectXSS: xss {x}/{xt}, benign {b}/{bt}");
    assert!(xt - x <= 40, "{} XSS cases missed", xt - x);
    assert!(b <= 25, "{b} benign cases flagged");
}
