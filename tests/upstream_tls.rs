//! TLS to upstream servers (`server … tls [sni NAME] [ca FILE]`), end to end on the suite's
//! driver: bext in front of a TLS origin written here with rustls (so each test sees exactly
//! what reached the origin: the server name, ALPN, how many connections, whether a session
//! resumed), with certificates from a test CA.

mod common;
#[path = "../modules/tls/tests/support/mod.rs"]
mod pki;

use bext_tls::rustls::pki_types::pem::PemObject;
use bext_tls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use bext_tls::rustls::{HandshakeKind, ServerConfig, ServerConnection, StreamOwned};
use pki::{Leaf, Pki};
use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the origin saw, per connection: the server name sent, the ALPN protocol, whether the
/// session was resumed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    sni: Option<String>,
    alpn: Option<Vec<u8>>,
    resumed: bool,
}

struct Origin {
    addr: SocketAddr,
    /// Connections whose handshake completed.
    conns: Arc<Mutex<Vec<Seen>>>,
    /// Handshakes that failed (bext refused the certificate).
    failed: Arc<AtomicUsize>,
}

/// A TLS origin serving `cert`/`key`. `GET /big/N` answers N bytes, `POST` echoes the body,
/// anything else answers "origin over tls"; with `close`, every response closes its connection.
fn origin(cert: &str, key: &str, close: bool) -> Origin {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .expect("cert file")
        .collect::<Result<_, _>>()
        .expect("cert pem");
    let key = PrivateKeyDer::from_pem_file(key).expect("key pem");
    let provider = Arc::new(bext_tls::Provider::default().unrestricted());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server config");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let config = Arc::new(config);
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().unwrap();
    let conns = Arc::new(Mutex::new(Vec::new()));
    let failed = Arc::new(AtomicUsize::new(0));
    let (c2, f2) = (conns.clone(), failed.clone());
    std::thread::spawn(move || {
        for tcp in l.incoming().flatten() {
            let (config, conns, failed) = (config.clone(), c2.clone(), f2.clone());
            std::thread::spawn(move || serve(tcp, config, conns, failed, close));
        }
    });
    Origin {
        addr,
        conns,
        failed,
    }
}

fn serve(
    tcp: TcpStream,
    config: Arc<ServerConfig>,
    conns: Arc<Mutex<Vec<Seen>>>,
    failed: Arc<AtomicUsize>,
    close: bool,
) {
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut s = StreamOwned::new(ServerConnection::new(config).unwrap(), tcp);
    while s.conn.is_handshaking() {
        if s.conn.complete_io(&mut s.sock).is_err() {
            failed.fetch_add(1, Ordering::SeqCst);
            return;
        }
    }
    conns.lock().unwrap().push(Seen {
        sni: s.conn.server_name().map(str::to_owned),
        alpn: s.conn.alpn_protocol().map(<[u8]>::to_vec),
        resumed: s.conn.handshake_kind() == Some(HandshakeKind::Resumed),
    });
    let mut r = BufReader::new(s);
    loop {
        let Some((head, body)) = common::read_message(&mut r) else {
            return;
        };
        let target = head.split(' ').nth(1).unwrap_or("/").to_string();
        let reply = if head.starts_with("POST") {
            body
        } else if let Some(n) = target.strip_prefix("/big/") {
            let n: usize = n.parse().unwrap();
            (0..n).map(|i| b'a' + (i % 26) as u8).collect()
        } else {
            b"origin over tls".to_vec()
        };
        let s = r.get_mut();
        let conn = if close { "close" } else { "keep-alive" };
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: {conn}\r\n\r\n",
            reply.len()
        );
        if s.write_all(head.as_bytes()).is_err() || s.write_all(&reply).is_err() {
            return;
        }
        let _ = s.flush();
        if close {
            s.conn.send_close_notify();
            let _ = s.flush();
            return;
        }
    }
}

/// bext proxying everything to the upstream whose `server` line is `server`.
fn front(server: &str) -> bext::Server {
    let text = format!(
        "listen 127.0.0.1:0\nupstream o {{\n    {server}\n}}\nsite * {{ route /* {{ proxy o }} }}\n"
    );
    let c = bext_dsl::compile_str("up.bext", &text).expect("configuration compiles");
    bext::start(c.config, common::opts()).expect("bext starts")
}

fn leaf(pki: &Pki, file: &str, names: &'static [&'static str]) -> (String, String) {
    pki.leaf(
        file,
        Leaf {
            names,
            ..Leaf::default()
        },
    )
}

fn verify_failures() -> u64 {
    bext_engine::tls::COUNTERS
        .upstream_verify_failed
        .load(Ordering::Relaxed)
}

#[test]
fn requests_reach_a_tls_origin_with_the_sni_and_alpn_and_reuse_one_connection() {
    let pki = Pki::new("up-ok");
    let (cert, key) = leaf(&pki, "origin", &["origin.test"]);
    let o = origin(&cert, &key, false);
    let server = front(&format!(
        "server {} tls sni origin.test ca \"{}\"",
        o.addr, pki.ca_file
    ));
    let a = common::addr(&server);
    let mut s = common::connect(a);
    let mut r = BufReader::new(s.try_clone().unwrap());
    for _ in 0..5 {
        s.write_all(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
        let resp = common::read_response(&mut r, false);
        assert_eq!(
            (resp.status, resp.text().as_str()),
            (200, "origin over tls")
        );
    }
    // Five requests, one upstream connection: the TLS connection was pooled and reused.
    let seen = o.conns.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![Seen {
            sni: Some("origin.test".into()),
            alpn: Some(b"http/1.1".to_vec()),
            resumed: false,
        }]
    );
}

#[test]
fn without_sni_an_address_is_verified_against_the_certificate_addresses() {
    let pki = Pki::new("up-ip");
    let (cert, key) = leaf(&pki, "origin", &["127.0.0.1"]);
    let o = origin(&cert, &key, false);
    let server = front(&format!("server {} tls ca \"{}\"", o.addr, pki.ca_file));
    let (resp, _) = common::exchange(common::addr(&server), b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(
        (resp.status, resp.text().as_str()),
        (200, "origin over tls")
    );
    // No server name is sent for an address (RFC 6066 §3).
    assert_eq!(o.conns.lock().unwrap()[0].sni, None);
}

#[test]
fn a_new_connection_resumes_the_session_of_the_previous_one() {
    let pki = Pki::new("up-resume");
    let (cert, key) = leaf(&pki, "origin", &["origin.test"]);
    let o = origin(&cert, &key, true);
    let server = front(&format!(
        "server {} tls sni origin.test ca \"{}\"",
        o.addr, pki.ca_file
    ));
    let a = common::addr(&server);
    for _ in 0..3 {
        let (resp, _) = common::exchange(a, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(resp.status, 200);
    }
    let seen = o.conns.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "the origin closes every connection");
    assert!(!seen[0].resumed);
    assert!(seen[1..].iter().all(|s| s.resumed), "{seen:?}");
}

fn expect_502(server: &bext::Server) {
    let (resp, _) = common::exchange(common::addr(server), b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(resp.status, 502);
    assert_eq!(
        resp.header("content-type"),
        Some("application/problem+json")
    );
    let body = resp.text();
    assert!(body.contains("/problems/upstream-unavailable\""), "{body}");
}

#[test]
fn a_certificate_from_another_ca_is_refused_with_502() {
    let pki = Pki::new("up-ca");
    let other = Pki::new("up-ca-other");
    let (cert, key) = leaf(&other, "origin", &["origin.test"]);
    let o = origin(&cert, &key, false);
    let before = verify_failures();
    let server = front(&format!(
        "server {} tls sni origin.test ca \"{}\"",
        o.addr, pki.ca_file
    ));
    expect_502(&server);
    assert!(verify_failures() > before);
    assert!(
        o.conns.lock().unwrap().is_empty(),
        "no request reached the origin"
    );
    // The origin's thread notes the failed handshake when it reads bext's alert, which may
    // be after bext has answered the client.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while o.failed.load(Ordering::SeqCst) == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(o.failed.load(Ordering::SeqCst) >= 1);
}

#[test]
fn a_certificate_for_another_name_is_refused_with_502() {
    let pki = Pki::new("up-name");
    let (cert, key) = leaf(&pki, "origin", &["origin.test"]);
    let o = origin(&cert, &key, false);
    let before = verify_failures();
    let server = front(&format!(
        "server {} tls sni other.test ca \"{}\"",
        o.addr, pki.ca_file
    ));
    expect_502(&server);
    assert!(verify_failures() > before);
    assert!(
        o.conns.lock().unwrap().is_empty(),
        "no request reached the origin"
    );
}

#[test]
fn the_system_trust_store_does_not_trust_a_private_ca() {
    let pki = Pki::new("up-system");
    let (cert, key) = leaf(&pki, "origin", &["origin.test"]);
    let o = origin(&cert, &key, false);
    let before = verify_failures();
    // No `ca`: the system's bundle, which knows nothing of the test CA.
    let server = front(&format!("server {} tls sni origin.test", o.addr));
    expect_502(&server);
    assert!(verify_failures() > before);
}

#[test]
fn large_bodies_cross_the_tls_upstream_both_ways() {
    let pki = Pki::new("up-large");
    let (cert, key) = leaf(&pki, "origin", &["origin.test"]);
    let o = origin(&cert, &key, false);
    let server = front(&format!(
        "server {} tls sni origin.test ca \"{}\"",
        o.addr, pki.ca_file
    ));
    let a = common::addr(&server);
    let mut s = common::connect(a);
    let mut r = BufReader::new(s.try_clone().unwrap());
    // Upload 3 MiB (streamed to the origin while its echo streams back), then download 5 MiB,
    // on one client connection.
    let up: Vec<u8> = (0..3 << 20).map(|i: u32| (i % 251) as u8).collect();
    let writer = {
        let mut s = s.try_clone().unwrap();
        let up = up.clone();
        std::thread::spawn(move || {
            let head = format!(
                "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
                up.len()
            );
            s.write_all(head.as_bytes()).unwrap();
            s.write_all(&up).unwrap();
        })
    };
    let resp = common::read_response(&mut r, false);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body.len(), up.len());
    assert!(resp.body == up, "the echo differs from what was sent");
    writer.join().unwrap();
    let n = 5 << 20;
    s.write_all(format!("GET /big/{n} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes())
        .unwrap();
    let resp = common::read_response(&mut r, false);
    assert_eq!((resp.status, resp.body.len()), (200, n));
    assert!(resp
        .body
        .iter()
        .enumerate()
        .all(|(i, b)| *b == b'a' + (i % 26) as u8));
    // Both exchanges on one upstream connection.
    assert_eq!(o.conns.lock().unwrap().len(), 1);
}

#[test]
fn bext_check_reports_a_missing_ca_file_and_a_bad_server_name() {
    let dir = pki::TempDir::new("up-check");
    let empty = dir.write("empty.pem", "not a certificate\n");
    let text = format!(
        "listen 127.0.0.1:0\nupstream o {{\n    server 127.0.0.1:9 tls ca \"{}\"\n    server 127.0.0.1:10 tls ca \"{empty}\"\n}}\nsite * {{ route /* {{ proxy o }} }}\n",
        dir.path("missing.pem")
    );
    let c = bext_dsl::compile_str("up.bext", &text).expect("the language accepts it");
    let Err(bext::StartError::Tls(list)) = bext::compile(&c.config, 1) else {
        panic!("the CA files are refused");
    };
    let found: Vec<(&str, u32)> = list.iter().map(|e| (e.code.as_str(), e.at.line)).collect();
    assert_eq!(found, vec![("E0701", 3), ("E0713", 4)]);
    // A name TLS cannot send is the language's own error, at the name.
    for bad in ["*.origin.test", "10.0.0.1", "bad_name.test"] {
        let text = format!(
            "listen 127.0.0.1:0\nupstream o {{ server 127.0.0.1:9 tls sni {bad} }}\nsite * {{ route /* {{ proxy o }} }}\n"
        );
        let Err(e) = bext_dsl::compile_str("up.bext", &text) else {
            panic!("{bad} is refused");
        };
        let codes: Vec<&str> = e.diagnostics().iter().map(|d| d.code).collect();
        assert_eq!(codes, vec!["E0714"], "{bad}");
    }
}

#[test]
fn health_probes_speak_tls_to_a_tls_server() {
    let pki = Pki::new("up-health");
    let (cert, key) = leaf(&pki, "origin", &["origin.test"]);
    let o = origin(&cert, &key, true);
    let server = front(&format!(
        "server {} tls sni origin.test ca \"{}\"\n    health http \"/healthz\" every 100ms healthy 1 unhealthy 1",
        o.addr, pki.ca_file
    ));
    // Probes arrive over TLS, with the server name, until a few have been seen.
    for _ in 0..200 {
        if o.conns.lock().unwrap().len() >= 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let seen = o.conns.lock().unwrap().clone();
    assert!(seen.len() >= 3, "{seen:?}");
    assert!(seen.iter().all(|s| s.sni.as_deref() == Some("origin.test")));
    assert_eq!(o.failed.load(Ordering::SeqCst), 0);
    // The server is up: requests are served.
    let (resp, _) = common::exchange(common::addr(&server), b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(
        (resp.status, resp.text().as_str()),
        (200, "origin over tls")
    );
}
