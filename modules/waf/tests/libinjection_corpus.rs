//! libinjection's SQLi, XSS and benign lists sent as the query value `q` to CRS at paranoia 1
//! (blocking mode, default thresholds): the share of each list that is blocked.

mod common;

use bext_waf::{Action, Config, Scratch, Transaction};

/// Floors at what this implementation reaches (fractions of each list).
const SQLI_FLOOR: f64 = 0.999;
const XSS_FLOOR: f64 = 0.999;
const BENIGN_CEILING: f64 = 0.10;

#[test]
fn libinjection_lists_at_paranoia_1() {
    let Some(corpora) = common::corpora() else {
        return;
    };
    let waf = common::crs(Config {
        paranoia: 1,
        ..Config::default()
    })
    .expect("corpus present");
    let mut scratch = Some(Scratch::new(&waf));
    let mut rate = |file: &str| -> (usize, usize) {
        let text = std::fs::read_to_string(corpora.join("libinjection").join(file))
            .expect("list readable");
        let (mut blocked, mut total) = (0, 0);
        for line in text.lines().filter(|l| !l.is_empty()) {
            // Decode as libinjection's reader does, then encode for a valid request target.
            let value = common::url_decode_line(line);
            let mut uri = String::from("/?q=");
            for b in value {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    uri.push(b as char);
                } else {
                    uri.push_str(&format!("%{b:02X}"));
                }
            }
            let mut tx = Transaction::with_scratch(&waf, scratch.take().expect("scratch returned"));
            tx.request_line("GET", &uri, "HTTP/1.1");
            tx.header("Host", b"localhost");
            tx.header("User-Agent", b"Mozilla/5.0");
            tx.header("Accept", b"*/*");
            tx.end_headers();
            if tx.end_body() == Action::Block {
                blocked += 1;
                if std::env::var("WAF_EXPLAIN").is_ok_and(|f| f == file) {
                    eprintln!(
                        "EXPLAIN {line}: {:?}",
                        tx.verdict()
                            .matches
                            .iter()
                            .map(|m| (m.rule_id, m.target.clone(), m.value.clone()))
                            .collect::<Vec<_>>()
                    );
                }
            } else if std::env::var("WAF_MISSES").is_ok_and(|f| f == file) {
                eprintln!("MISS {line}");
            }
            total += 1;
            scratch = Some(tx.into_scratch());
        }
        (blocked, total)
    };
    let (s, st) = rate("sqli.txt");
    let (x, xt) = rate("xss.txt");
    let (b, bt) = rate("benign.txt");
    let pct = |a: usize, t: usize| 100.0 * a as f64 / t.max(1) as f64;
    eprintln!("SQLi blocked   {s}/{st} = {:.2}%", pct(s, st));
    eprintln!("XSS blocked    {x}/{xt} = {:.2}%", pct(x, xt));
    eprintln!("benign blocked {b}/{bt} = {:.2}%", pct(b, bt));
    assert!(s as f64 / st as f64 >= SQLI_FLOOR);
    assert!(x as f64 / xt as f64 >= XSS_FLOOR);
    assert!(b as f64 / bt as f64 <= BENIGN_CEILING);
}
