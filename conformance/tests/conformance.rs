//! The conformance suite end to end: every case of `cases/*.cases` against a running bext that
//! proxies `/*` to the recording origin. Prints the case count by category and the known
//! failures; fails on any other failure, and on a known failure that now passes (so the list
//! only ever shrinks).

use bext_conformance::case::{self, Case};
use bext_conformance::origin::Origin;
use bext_conformance::runner::run_case;

/// Cases bext does not pass yet, each with what it does instead. Every entry is a defect to
/// fix in the engine or the codec, not a changed expectation.
const KNOWN_FAILURES: &[(&str, &str)] = &[];

/// Print past the test harness's output capture, so that the counts show in every run.
fn show(text: &str) {
    use std::io::Write as _;
    let _ = std::io::stderr().write_all(text.as_bytes());
}

fn config(origin: std::net::SocketAddr) -> bext_ir::Config {
    let mut c = bext::proxy_config("127.0.0.1:0", &[origin.to_string()]);
    // Short client timeouts: a case that leaves a request unfinished ends quickly.
    // (Long enough that no case that completes its request reaches them on a loaded machine.)
    c.global.timeouts.header_ms = 4_000;
    c.global.timeouts.body_ms = 4_000;
    for u in &mut c.upstreams {
        u.timeouts.connect_ms = 20_000;
        u.timeouts.response_ms = 20_000;
    }
    c
}

#[test]
fn conformance_suite_on_epoll() {
    conformance_suite(bext::DriverChoice::Epoll);
}

/// The same cases on io_uring (where the kernel or sandbox forbids it, nothing to run).
#[test]
fn conformance_suite_on_io_uring() {
    conformance_suite(bext::DriverChoice::IoUring);
}

fn conformance_suite(driver: bext::DriverChoice) {
    let cases: Vec<Case> = case::load_all().unwrap_or_else(|e| panic!("cases: {e}"));
    let origin = Origin::start().expect("origin starts");
    let opts = bext::StartOptions {
        workers: Some(1),
        pin: false,
        driver,
    };
    let server = match bext::start(config(origin.addr()), opts) {
        Ok(s) => s,
        Err(e) if driver == bext::DriverChoice::IoUring => {
            assert!(e.to_string().contains("io_uring is not available"), "{e}");
            return;
        }
        Err(e) => panic!("bext starts: {e}"),
    };
    let proxy = server.local_addrs()[0];

    let only = std::env::var("CONFORMANCE_ONLY").ok();
    let mut passed = Vec::new();
    let mut failed = Vec::new();
    for c in &cases {
        if only.as_deref().is_some_and(|o| !c.id.contains(o)) {
            continue;
        }
        match run_case(c, proxy, &origin) {
            Ok(()) => passed.push(c),
            Err(why) => failed.push((c, why)),
        }
    }
    server.shutdown();

    let mut report = format!("conformance cases by category on {driver:?} (passed/total):\n");
    for (cat, n) in case::counts_by_category(&cases) {
        let ok = passed.iter().filter(|c| c.category == cat).count();
        report += &format!("  {cat:<16} {ok:>3}/{n}\n");
    }
    report += &format!("  {:<16} {:>3}/{}\n", "total", passed.len(), cases.len());

    let known = |id: &str| KNOWN_FAILURES.iter().find(|(k, _)| *k == id);
    let mut unexpected = Vec::new();
    if !KNOWN_FAILURES.is_empty() {
        report += &format!("known failures ({}):\n", KNOWN_FAILURES.len());
    }
    for (c, why) in &failed {
        match known(&c.id) {
            Some((_, observed)) => report += &format!("  {} [{}]: {observed}\n", c.id, c.category),
            None => unexpected.push(format!(
                "{} [{}] {} ({})\n  {}\n  sent: {}",
                c.id,
                c.category,
                c.rfc,
                c.at,
                why.replace('\n', "\n  "),
                case::escape(&c.request_bytes()[..c.request_bytes().len().min(300)])
            )),
        }
    }
    for (id, _) in KNOWN_FAILURES {
        if passed.iter().any(|c| c.id == *id) {
            unexpected.push(format!(
                "{id}: listed as a known failure but passes; remove it"
            ));
        }
    }
    show(&report);
    assert!(
        unexpected.is_empty(),
        "{} unexpected result(s):\n{}",
        unexpected.len(),
        unexpected.join("\n")
    );
}
