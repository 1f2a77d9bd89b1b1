//! The harness checks itself: in front of a proxy that relays bytes unchanged (what a naive TCP
//! proxy does), the runner must report the smuggling cases as failures, and still pass a plain
//! request. A suite that cannot fail proves nothing.

use bext_conformance::case::{self, Case};
use bext_conformance::origin::Origin;
use bext_conformance::runner::run_case;
use std::io::copy;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::thread;

/// A byte-for-byte TCP relay to `upstream`: one upstream connection per client connection.
fn relay(upstream: SocketAddr) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    thread::spawn(move || {
        for client in l.incoming().flatten() {
            let Ok(up) = TcpStream::connect(upstream) else {
                continue;
            };
            let (Ok(mut c2), Ok(mut u2)) = (client.try_clone(), up.try_clone()) else {
                continue;
            };
            let (mut c, mut u) = (client, up);
            thread::spawn(move || {
                let _ = copy(&mut c, &mut u);
                let _ = u.shutdown(Shutdown::Write);
            });
            thread::spawn(move || {
                let _ = copy(&mut u2, &mut c2);
                let _ = c2.shutdown(Shutdown::Both);
            });
        }
    });
    addr
}

#[test]
fn a_relay_that_forwards_bytes_unchanged_fails_the_smuggling_cases() {
    let cases: Vec<Case> = case::load_all().unwrap_or_else(|e| panic!("cases: {e}"));
    let origin = Origin::start().expect("origin");
    let proxy = relay(origin.addr());
    let find = |id: &str| {
        cases
            .iter()
            .find(|c| c.id == id)
            .unwrap_or_else(|| panic!("no case {id}"))
    };
    for id in [
        "te-cl-both",
        "cl-duplicate-different",
        "te-leading-comma-no-space",
        "field-obs-fold",
        "chunk-size-hex-prefix",
        "pipe-clte-smuggled-get",
        "trailer-host",
        "norm-forwarding-fields-added",
        "norm-connection-listed-removed",
        "up-cl-and-te",
        "up-garbage",
    ] {
        let got = run_case(find(id), proxy, &origin);
        assert!(got.is_err(), "{id}: a byte relay must fail this case");
    }
    for id in ["rl-baseline-get", "pipe-two-gets", "te-chunked"] {
        let got = run_case(find(id), proxy, &origin);
        assert_eq!(got, Ok(()), "{id}: a plain request passes through a relay");
    }
}
