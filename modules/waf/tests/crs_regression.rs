//! CRS v4's regression tests (go-ftw entries in `crs-v4/crs-tests.json`) replayed against the
//! library at paranoia 4 in detection-only mode, as CRS runs them: an entry passes when the
//! rule ids it expects in the log fired and the ones it forbids did not.

mod common;

use std::collections::BTreeMap;

use bext_waf::Config;
use serde_json::Value;

/// The pass rate this implementation reaches; the test fails if it drops below.
const FLOOR: f64 = 0.98;

fn crs_test_config() -> Config {
    let vars = [
        ("crs_validate_utf8_encoding", "1"),
        ("arg_name_length", "100"),
        ("arg_length", "400"),
        ("total_arg_length", "64000"),
        ("max_num_args", "255"),
        ("max_file_size", "64100"),
        ("combined_file_sizes", "65535"),
    ];
    Config {
        paranoia: 4,
        detection_only: true,
        tx_vars: vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Config::default()
    }
}

/// Splits a raw request into parts.
type RawParts = (String, String, String, common::Headers, Vec<u8>);

fn parse_raw(raw: &str) -> RawParts {
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .or_else(|| raw.split_once("\n\n"))
        .unwrap_or((raw, ""));
    let mut lines = head.lines();
    let line = lines.next().unwrap_or("");
    let mut parts = line.splitn(3, ' ');
    let method = parts.next().unwrap_or("GET").to_string();
    let uri = parts.next().unwrap_or("/").to_string();
    let version = parts.next().unwrap_or("HTTP/1.1").to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().as_bytes().to_vec()))
        .collect();
    (method, uri, version, headers, body.as_bytes().to_vec())
}

#[test]
fn crs_regression_pass_rate() {
    let Some(corpora) = common::corpora() else {
        return;
    };
    let text =
        std::fs::read_to_string(corpora.join("crs-v4/crs-tests.json")).expect("tests readable");
    let entries: Vec<Value> = serde_json::from_str(&text).expect("tests parse");
    let t0 = std::time::Instant::now();
    let waf = common::crs(crs_test_config()).expect("corpus present");
    eprintln!(
        "compiled CRS PL4 in {:?}: {} rules",
        t0.elapsed(),
        waf.rule_count()
    );
    for u in waf.unsupported() {
        eprintln!(
            "unsupported at compile: {} {}: {}",
            u.rule_id, u.file, u.reason
        );
    }
    let only = std::env::var("CRS_TEST").ok();
    let mut per_file: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut failures = Vec::new();
    // `CRS_DUMP=FILE` writes every entry's fired rules, to compare two builds entry by entry.
    let mut dump = String::new();
    let (mut pass, mut total, mut skipped) = (0usize, 0usize, 0usize);
    for e in &entries {
        let id = e["id"].as_str().unwrap_or("");
        if only.as_deref().is_some_and(|o| !id.starts_with(o)) {
            continue;
        }
        let expect = e["expect"].as_str();
        if expect.is_none() {
            // Status-only entries test the server's request-line parser, not the rules.
            skipped += 1;
            continue;
        }
        let (method, uri, version, mut headers, body) = match e["raw"].as_str() {
            Some(raw) => parse_raw(raw),
            None => (
                e["method"].as_str().unwrap_or("GET").to_string(),
                e["uri"].as_str().unwrap_or("/").to_string(),
                e["version"].as_str().unwrap_or("HTTP/1.1").to_string(),
                e["headers"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|h| {
                                (
                                    h[0].as_str().unwrap_or("").to_string(),
                                    h[1].as_str().unwrap_or("").as_bytes().to_vec(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                e["body"].as_str().unwrap_or("").as_bytes().to_vec(),
            ),
        };
        if e["autocomplete_headers"].as_bool().unwrap_or(true) {
            let has = |h: &Vec<(String, Vec<u8>)>, n: &str| {
                h.iter().any(|(k, _)| k.eq_ignore_ascii_case(n))
            };
            if !body.is_empty() && !has(&headers, "content-length") {
                headers.push(("Content-Length".into(), body.len().to_string().into_bytes()));
            }
            // go-ftw labels a body without a type as a form.
            if !body.is_empty() && !has(&headers, "content-type") {
                headers.push((
                    "Content-Type".into(),
                    b"application/x-www-form-urlencoded".to_vec(),
                ));
            }
            if !has(&headers, "connection") {
                headers.push(("Connection".into(), b"close".to_vec()));
            }
        }
        // The test backend's /reflect endpoint answers with the status, headers and body
        // that the request's JSON body describes.
        let resp = if uri.starts_with("/reflect") {
            let spec: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let status = spec["status"].as_u64().unwrap_or(200) as u16;
            let hdrs = spec["headers"]
                .as_object()
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").as_bytes().to_vec()))
                        .collect()
                })
                .unwrap_or_default();
            let b = spec["body"].as_str().unwrap_or("").as_bytes().to_vec();
            Some((status, hdrs, b))
        } else {
            None
        };
        let req = common::Request {
            method: &method,
            uri: &uri,
            version: &version,
            headers,
            body: (!body.is_empty()).then_some(body.as_slice()),
        };
        let verdict = common::run(&waf, &req, resp);
        let fired = verdict.rule_ids();
        dump.push_str(&format!("{id} {fired:?} {}\n", verdict.score));
        let ids = |k: &str| -> Vec<u32> {
            e[k].as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_u64())
                        .map(|v| v as u32)
                        .collect()
                })
                .unwrap_or_default()
        };
        let ok = match (e["expect_basis"].as_str(), expect) {
            (Some("log_regex"), Some("no_match")) => {
                let re = e["log_no_match_regex"].as_str().unwrap_or("");
                match re
                    .find("id \"")
                    .and_then(|i| re[i + 4..].split('"').next())
                    .and_then(|s| s.parse::<u32>().ok())
                {
                    Some(id) => !fired.contains(&id),
                    None => fired.iter().all(|id| *id >= 949000 && *id < 990000),
                }
            }
            (Some("log_regex"), Some("match")) => {
                let re = e["log_match_regex"].as_str().unwrap_or("");
                match re
                    .find("id \"")
                    .and_then(|i| re[i + 4..].split('"').next())
                    .and_then(|s| s.parse::<u32>().ok())
                {
                    Some(id) => fired.contains(&id),
                    None => fired.contains(&(e["rule_id"].as_u64().unwrap_or(0) as u32)),
                }
            }
            (_, Some("match")) => {
                ids("expect_ids").iter().all(|i| fired.contains(i))
                    && !ids("no_expect_ids").iter().any(|i| fired.contains(i))
            }
            _ => !ids("no_expect_ids").iter().any(|i| fired.contains(i)),
        };
        let file = e["file"]
            .as_str()
            .unwrap_or("")
            .rsplit('/')
            .nth(1)
            .unwrap_or("")
            .to_string();
        let slot = per_file.entry(file).or_default();
        slot.1 += 1;
        total += 1;
        if ok {
            slot.0 += 1;
            pass += 1;
        } else {
            failures.push(format!("{id} ({expect:?}) fired {fired:?}"));
        }
    }
    for (file, (p, t)) in &per_file {
        eprintln!(
            "{file:55} {p:5}/{t:5} {:6.2}%",
            100.0 * *p as f64 / *t as f64
        );
    }
    if std::env::var("CRS_FAILURES").is_ok() {
        for f in &failures {
            eprintln!("FAIL {f}");
        }
    }
    if let Ok(path) = std::env::var("CRS_DUMP") {
        std::fs::write(path, &dump).expect("dump written");
    }
    let rate = pass as f64 / total.max(1) as f64;
    eprintln!(
        "total {pass}/{total} = {:.2}% ({skipped} status-only entries not applicable)",
        100.0 * rate
    );
    assert!(
        only.is_some() || rate >= FLOOR,
        "pass rate {rate} below floor {FLOOR}"
    );
}
