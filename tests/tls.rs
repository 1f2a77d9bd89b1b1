//! TLS listeners end to end, on the driver the suite runs with (`BEXT_TEST_DRIVER`):
//! certificates made at test time, configurations written in the language, and three
//! independent clients (rustls here, `curl` and `openssl s_client` when installed).

mod common;
#[path = "../modules/tls/tests/support/mod.rs"]
mod pki;

use bext_tls::rustls::{self, ClientConfig, ClientConnection, HandshakeKind, StreamOwned};
use pki::{served_name, with_fresh_sessions, Leaf, Pki};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

type Tls = StreamOwned<ClientConnection, TcpStream>;

/// Compiles `text` and starts it on the suite's driver.
fn serve(text: &str) -> bext::Server {
    let c = bext_dsl::compile_str("tls.bext", text).expect("configuration compiles");
    bext::start(c.config, common::opts()).expect("bext starts")
}

fn connect(a: SocketAddr, client: &Arc<ClientConfig>, sni: &str) -> std::io::Result<Tls> {
    let tcp = TcpStream::connect(a)?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let name = rustls::pki_types::ServerName::try_from(sni.to_owned()).expect("name");
    let conn = ClientConnection::new(client.clone(), name).map_err(std::io::Error::other)?;
    let mut s = StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock)?;
    }
    Ok(s)
}

/// One response: status, head, body (Content-Length framing).
fn response<R: BufRead>(r: &mut R) -> std::io::Result<(u16, String, Vec<u8>)> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let status = head[9..12].parse().expect("status");
    let len = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse::<usize>().expect("length"))
        })
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    Ok((status, head, body))
}

fn get(s: &mut Tls, host: &str, path: &str) -> std::io::Result<(u16, String, Vec<u8>)> {
    write!(s, "GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n")?;
    s.flush()?;
    let mut r = BufReader::new(s);
    response(&mut r)
}

/// A CA, certificates for `a.test`, `b.test` and `*.w.test`, and a default one.
fn certs(tag: &str) -> (Pki, [(String, String); 4]) {
    let pki = Pki::new(tag);
    let leaf = |file: &str, names: &'static [&'static str]| {
        pki.leaf(
            file,
            Leaf {
                names,
                ..Leaf::default()
            },
        )
    };
    let a = leaf("a", &["a.test"]);
    let b = leaf("b", &["b.test"]);
    let w = leaf("w", &["*.w.test"]);
    let d = leaf("d", &["default.test"]);
    (pki, [a, b, w, d])
}

fn tls_block(c: &[(String, String); 4], extra: &str) -> String {
    format!(
        "tls {{\n    cert \"{}\" key \"{}\" sni a.test\n    cert \"{}\" key \"{}\" sni b.test\n    cert \"{}\" key \"{}\" sni *.w.test\n    cert \"{}\" key \"{}\"\n{extra}}}",
        c[0].0, c[0].1, c[1].0, c[1].1, c[2].0, c[2].1, c[3].0, c[3].1
    )
}

fn respond_site(c: &[(String, String); 4], extra: &str) -> String {
    format!(
        "listen 127.0.0.1:0 {}\nsite * {{ route /* {{ respond 200 \"hello over tls\" }} }}\n",
        tls_block(c, extra)
    )
}

#[test]
fn sni_selects_the_certificate_and_unknown_names_get_the_default() {
    let (pki, c) = certs("sni");
    let server = serve(&respond_site(&c, ""));
    let a = common::addr(&server);
    for (sni, served) in [
        ("a.test", "a.test"),
        ("b.test", "b.test"),
        ("x.w.test", "*.w.test"),
        // A wildcard covers one label only.
        ("y.x.w.test", "default.test"),
        ("unknown.test", "default.test"),
    ] {
        let no_check = insecure(&pki);
        let mut s = connect(a, &no_check, sni).expect("handshake");
        assert_eq!(served_name(&s.conn), served, "{sni}");
        let (status, _, body) = get(&mut s, sni, "/").expect("response");
        assert_eq!((status, &body[..]), (200, &b"hello over tls"[..]), "{sni}");
    }
    // ALPN: HTTP/1.1 is chosen out of an offer that starts with h2.
    let mut cfg = pki.client();
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let s = connect(a, &Arc::new(cfg), "a.test").expect("handshake");
    assert_eq!(s.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
}

/// A client that verifies the chain but not the name (to see which certificate a wrong name
/// gets).
fn insecure(pki: &Pki) -> Arc<ClientConfig> {
    #[derive(Debug)]
    struct AnyName(Arc<rustls::client::WebPkiServerVerifier>);
    impl rustls::client::danger::ServerCertVerifier for AnyName {
        fn verify_server_cert(
            &self,
            end: &rustls::pki_types::CertificateDer<'_>,
            inter: &[rustls::pki_types::CertificateDer<'_>],
            _: &rustls::pki_types::ServerName<'_>,
            ocsp: &[u8],
            now: rustls::pki_types::UnixTime,
        ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
            let facts = bext_tls::certificate_facts(end).expect("cert");
            let name = facts.dns_names[0].replace('*', "x");
            let name = rustls::pki_types::ServerName::try_from(name).expect("name");
            self.0.verify_server_cert(end, inter, &name, ocsp, now)
        }
        fn verify_tls12_signature(
            &self,
            m: &[u8],
            c: &rustls::pki_types::CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            self.0.verify_tls12_signature(m, c, d)
        }
        fn verify_tls13_signature(
            &self,
            m: &[u8],
            c: &rustls::pki_types::CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            self.0.verify_tls13_signature(m, c, d)
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.supported_verify_schemes()
        }
    }
    let provider = Arc::new(bext_tls::Provider::default().unrestricted());
    let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(pki.roots()),
        provider.clone(),
    )
    .build()
    .expect("verifier");
    let mut cfg = pki.client();
    cfg.dangerous()
        .set_certificate_verifier(Arc::new(AnyName(inner)));
    with_fresh_sessions(cfg)
}

#[test]
fn domain_fronting_is_misdirected_and_the_same_certificate_is_not() {
    let (pki, c) = certs("fronting");
    let server = serve(&respond_site(&c, ""));
    let a = common::addr(&server);
    let client = with_fresh_sessions(pki.client());
    let mut s = connect(a, &client, "a.test").expect("handshake");
    for (host, status) in [
        ("a.test", 200),
        ("A.TEST:443", 200),
        ("b.test", 421),
        ("x.w.test", 421),
        ("127.0.0.1", 200),
        ("a.test", 200),
    ] {
        let (got, _, _) = get(&mut s, host, "/").expect("response");
        assert_eq!(got, status, "Host {host} on SNI a.test");
    }
    // Two names of one wildcard certificate are one site.
    let mut s = connect(a, &client, "x.w.test").expect("handshake");
    assert_eq!(get(&mut s, "y.w.test", "/").expect("response").0, 200);
}

#[test]
fn keep_alive_tls12_only_clients_and_plain_http_on_the_tls_port() {
    let (pki, c) = certs("ka");
    let server = serve(&respond_site(&c, ""));
    let a = common::addr(&server);
    let tls12 = with_fresh_sessions(pki.client_for(&[&rustls::version::TLS12]));
    let mut s = connect(a, &tls12, "a.test").expect("TLS 1.2 handshake");
    assert_eq!(
        s.conn.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    for _ in 0..50 {
        let (status, _, body) = get(&mut s, "a.test", "/").expect("keep-alive response");
        assert_eq!((status, body.len()), (200, 14));
    }
    let mut plain = TcpStream::connect(a).expect("connect");
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
        .expect("write");
    let mut got = String::new();
    let _ = plain.read_to_string(&mut got);
    assert!(got.starts_with("HTTP/1.1 400 "), "{got}");
    assert!(
        got.contains("plain HTTP request was sent to HTTPS port"),
        "{got}"
    );
}

#[test]
fn expired_and_mismatched_certificates_are_refused_with_their_codes() {
    let pki = Pki::new("expired");
    let (cert, key) = pki.leaf(
        "old",
        Leaf {
            names: &["a.test"],
            not_before: (2020, 1, 1),
            not_after: (2021, 1, 1),
            ..Leaf::default()
        },
    );
    let (_, other_key) = pki.leaf(
        "other",
        Leaf {
            names: &["a.test"],
            ..Leaf::default()
        },
    );
    for (cert, key, code, line) in [
        (&cert, &key, "E0705", 3),
        (&cert, &other_key, "E0704", 3),
        (&cert, &"missing.key".to_string(), "E0701", 3),
    ] {
        let text = format!(
            "listen 127.0.0.1:0 tls {{\n    alpn http/1.1\n    cert \"{cert}\" key \"{key}\"\n}}\nsite * {{ route /* {{ respond 200 }} }}\n"
        );
        let c = bext_dsl::compile_str("tls.bext", &text).expect("language");
        match bext::compile(&c.config, 1) {
            Err(bext::StartError::Tls(list)) => {
                assert!(
                    list.iter()
                        .any(|e| e.code.as_str() == code && e.at.line == line),
                    "{code} at line {line}: {list:?}"
                );
            }
            other => panic!("{code}: {other:?}"),
        }
    }
}

#[test]
fn sessions_resume_and_keep_resuming_across_a_reload() {
    let (pki, c) = certs("resume");
    let server = serve(&respond_site(&c, ""));
    let a = common::addr(&server);
    for versions in [
        &[&rustls::version::TLS13][..],
        &[&rustls::version::TLS12][..],
    ] {
        let client = with_fresh_sessions(pki.client_for(versions));
        let mut s = connect(a, &client, "a.test").expect("first");
        assert_eq!(get(&mut s, "a.test", "/").expect("response").0, 200);
        assert_eq!(s.conn.handshake_kind(), Some(HandshakeKind::Full));
        drop(s);
        let mut s = connect(a, &client, "a.test").expect("second");
        assert_eq!(get(&mut s, "a.test", "/").expect("response").0, 200);
        assert_eq!(s.conn.handshake_kind(), Some(HandshakeKind::Resumed));
        // A session of a.test is never resumed under another name.
        let mut s = connect(a, &client, "b.test").expect("other name");
        assert_eq!(get(&mut s, "b.test", "/").expect("response").0, 200);
        assert_eq!(s.conn.handshake_kind(), Some(HandshakeKind::Full));
    }
    // Reload (same certificates, another body): a returning client still resumes, and a live
    // connection keeps its session.
    let client = with_fresh_sessions(pki.client());
    let mut live = connect(a, &client, "a.test").expect("live");
    assert_eq!(get(&mut live, "a.test", "/").expect("response").0, 200);
    let text = respond_site(&c, "").replace("hello over tls", "reloaded body!");
    let config = bext_dsl::compile_str("tls.bext", &text)
        .expect("compiles")
        .config;
    server.reload(&config).expect("reload");
    let (_, _, body) = get(&mut live, "a.test", "/").expect("live connection after reload");
    assert_eq!(body, b"reloaded body!");
    let mut s = connect(a, &client, "a.test").expect("after reload");
    assert_eq!(get(&mut s, "a.test", "/").expect("response").0, 200);
    assert_eq!(s.conn.handshake_kind(), Some(HandshakeKind::Resumed));
    // A certificate that does not load fails the reload and changes nothing.
    let bad = respond_site(&c, "").replace(&c[0].1, &c[1].1);
    let config = bext_dsl::compile_str("tls.bext", &bad)
        .expect("compiles")
        .config;
    let err = server.reload(&config).expect_err("bad certificate");
    assert!(err.contains("E0704"), "{err}");
    let mut s = connect(a, &client, "a.test").expect("after a failed reload");
    assert_eq!(
        get(&mut s, "a.test", "/").expect("response").2,
        b"reloaded body!"
    );
}

#[test]
fn client_certificates_required_and_optional_reach_the_upstream_as_a_header() {
    let (pki, c) = certs("clientauth");
    // The origin answers with the request head it received.
    let origin = common::upstream(|mut s| loop {
        let head = common::read_head(&mut s);
        if head.is_empty() {
            return;
        }
        let reply = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{head}",
            head.len()
        );
        if s.write_all(reply.as_bytes()).is_err() {
            return;
        }
    });
    for required in ["required", "optional"] {
        let extra = format!("    client_auth {{ ca \"{}\"; {required} }}\n", pki.ca_file);
        let text = format!(
            "listen 127.0.0.1:0 {}\nupstream app {{ server {origin} }}\nsite * {{ route /* {{ proxy app }} }}\n",
            tls_block(&c, &extra)
        );
        let server = serve(&text);
        let a = common::addr(&server);
        let (chain, key) = pki.client_identity(Leaf {
            names: &["client.test"],
            common_name: Some("alice"),
            ..Leaf::default()
        });
        let with_cert = with_fresh_sessions(
            ClientConfig::builder_with_provider(Arc::new(
                bext_tls::Provider::default().unrestricted(),
            ))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(pki.roots())
            .with_client_auth_cert(chain, key)
            .expect("client cert"),
        );
        let mut s = connect(a, &with_cert, "a.test").expect("handshake with a certificate");
        write!(
            s,
            "GET / HTTP/1.1\r\nHost: a.test\r\nX-Client-Cert-Subject: forged\r\n\r\n"
        )
        .expect("write");
        let (status, _, body) = response(&mut BufReader::new(&mut s)).expect("response");
        let seen = String::from_utf8_lossy(&body).to_ascii_lowercase();
        assert_eq!(status, 200);
        assert!(
            seen.contains("x-client-cert-subject: subject=\"cn=alice\""),
            "{seen}"
        );
        assert!(!seen.contains("forged"), "{seen}");
        assert!(seen.contains("x-forwarded-proto: https"), "{seen}");

        let without = with_fresh_sessions(pki.client());
        let got = connect(a, &without, "a.test")
            .and_then(|mut s| get(&mut s, "a.test", "/").map(|r| (r.0, r.2)));
        if required == "required" {
            assert!(got.is_err(), "served without a client certificate");
        } else {
            let (status, body) = got.expect("optional: served");
            assert_eq!(status, 200);
            assert!(!String::from_utf8_lossy(&body)
                .to_ascii_lowercase()
                .contains("x-client-cert-subject"));
        }
    }
}

#[test]
fn proxied_static_and_large_bodies_both_ways() {
    let (pki, c) = certs("bodies");
    let origin = common::origin(16);
    let root = pki.dir.0.join("www");
    std::fs::create_dir_all(&root).expect("root");
    let file: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(root.join("big.bin"), &file).expect("file");
    let text = format!(
        "listen 127.0.0.1:0 {}\nupstream app {{ server {} }}\nsite * {{\n    route /files/* {{ strip_prefix /files; static \"{}\" }}\n    route /* {{ proxy app }}\n}}\n",
        tls_block(&c, ""),
        common::addr(&origin),
        root.display()
    );
    let server = serve(&text);
    let a = common::addr(&server);
    let client = with_fresh_sessions(pki.client());
    let mut s = connect(a, &client, "a.test").expect("handshake");
    // Static files go through the stream (no sendfile under user-space TLS).
    let (status, _, body) = get(&mut s, "a.test", "/files/big.bin").expect("file");
    assert_eq!(status, 200);
    assert!(body == file, "file bytes differ");
    // 1 MB up, echoed back down. The origin answers while the body still arrives, so the
    // response closes the connection (unread body bytes could remain): a new one each time.
    let up: Vec<u8> = (0..1_000_000u32).map(|i| (i % 253) as u8).collect();
    for round in 0..2 {
        let mut s = connect(a, &client, "a.test").expect("handshake");
        write!(
            s,
            "POST /echo HTTP/1.1\r\nHost: a.test\r\nContent-Length: {}\r\n\r\n",
            up.len()
        )
        .expect("head");
        s.write_all(&up).expect("body");
        let (status, _, body) =
            response(&mut BufReader::new(&mut s)).unwrap_or_else(|e| panic!("echo {round}: {e}"));
        assert_eq!(status, 200);
        assert!(body == up, "echoed body differs ({} bytes)", body.len());
    }
}

#[test]
fn certificates_reload_under_load_without_a_failed_request() {
    let (pki, c) = certs("load");
    let server = serve(&respond_site(&c, ""));
    let a = common::addr(&server);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for i in 0..4 {
        let stop = stop.clone();
        let client = with_fresh_sessions(pki.client());
        workers.push(std::thread::spawn(move || {
            let (mut ok, mut failed) = (0u32, 0u32);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // Half the clients reconnect each time, half keep their connection for 20.
                let n = if i % 2 == 0 { 1 } else { 20 };
                match connect(a, &client, "a.test") {
                    Ok(mut s) => {
                        for _ in 0..n {
                            match get(&mut s, "a.test", "/") {
                                Ok((200, _, _)) => ok += 1,
                                _ => failed += 1,
                            }
                        }
                    }
                    Err(_) => failed += 1,
                }
            }
            (ok, failed)
        }));
    }
    // New certificates for a.test on each reload.
    for round in 0..5 {
        std::thread::sleep(Duration::from_millis(150));
        let (cert, key) = pki.leaf(
            &format!("a{round}"),
            Leaf {
                names: &["a.test"],
                ..Leaf::default()
            },
        );
        let mut c2 = c.clone();
        c2[0] = (cert, key);
        let config = bext_dsl::compile_str("tls.bext", &respond_site(&c2, ""))
            .expect("compiles")
            .config;
        server.reload(&config).expect("reload");
    }
    std::thread::sleep(Duration::from_millis(150));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut ok, mut failed) = (0, 0);
    for w in workers {
        let (o, f) = w.join().expect("client");
        ok += o;
        failed += f;
    }
    assert!(ok > 50, "{ok} requests");
    assert_eq!(failed, 0, "{failed} failed of {}", ok + failed);
}

fn have(tool: &str) -> bool {
    std::process::Command::new(tool)
        .arg("--version")
        .output()
        .is_ok()
}

#[test]
fn curl_sees_sni_alpn_and_tls12() {
    if !have("curl") {
        eprintln!("curl not installed: skipped");
        return;
    }
    let (pki, c) = certs("curl");
    let server = serve(&respond_site(&c, ""));
    let port = common::addr(&server).port();
    for (name, extra) in [("a.test", ""), ("b.test", "--tls-max 1.2")] {
        let out = std::process::Command::new("curl")
            .args(["-sS", "-v", "--cacert", &pki.ca_file, "--resolve"])
            .arg(format!("{name}:{port}:127.0.0.1"))
            .args(extra.split_whitespace())
            .arg(format!("https://{name}:{port}/"))
            .output()
            .expect("curl");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert_eq!(out.stdout, b"hello over tls");
        assert!(err.contains("http/1.1"), "{err}");
        if !extra.is_empty() {
            assert!(err.contains("TLSv1.2"), "{err}");
        }
    }
}

#[test]
fn openssl_s_client_resumes_and_is_refused_cbc_suites() {
    if std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_err()
    {
        eprintln!("openssl not installed: skipped");
        return;
    }
    let (pki, c) = certs("openssl");
    let server = serve(&respond_site(&c, ""));
    let port = common::addr(&server).port();
    let sess = pki.dir.path("session.pem");
    let run = |args: &[&str]| {
        let mut child = std::process::Command::new("openssl")
            .args(["s_client", "-connect"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-ign_eof", "-servername", "a.test", "-CAfile", &pki.ca_file])
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("openssl");
        let _ = child
            .stdin
            .take()
            .expect("stdin")
            .write_all(b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n");
        let out = child.wait_with_output().expect("openssl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let first = run(&["-tls1_2", "-sess_out", &sess]);
    assert!(first.contains("hello over tls"), "{first}");
    let again = run(&["-tls1_2", "-sess_in", &sess]);
    assert!(again.contains("Reused"), "{again}");
    let cbc = run(&["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA"]);
    assert!(!cbc.contains("hello over tls"), "{cbc}");
}

#[test]
fn redirect_https_keeps_host_path_and_query_and_hsts_is_sent_only_over_tls() {
    let (pki, c) = certs("redirect");
    let origin = common::origin(16);
    // A port for the TLS listener, known before the configuration is written (the redirect's
    // location names it).
    let tls_addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let text = format!(
        "listen 127.0.0.1:0\nlisten {tls_addr} {}\nupstream app {{ server {} }}\nsite * {{\n    redirect https\n    hsts max_age 365d include_subdomains\n    route /p/* {{ proxy app }}\n    route /* {{ respond 200 \"hello\" }}\n}}\n",
        tls_block(&c, ""),
        common::addr(&origin),
    );
    let server = serve(&text);
    let plain = server.local_addrs()[0];
    // Without TLS: 308 to the TLS listener's port, path and query as sent; no HSTS (RFC 6797
    // §7.2: not over plain HTTP). A body is read and dropped; the connection stays usable.
    let mut s = common::connect(plain);
    s.write_all(b"POST /a/b%2Fc?x=1&y HTTP/1.1\r\nHost: a.test:8080\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\nHost: b.test\r\n\r\n")
        .expect("write");
    let mut r = BufReader::new(s);
    let resp = common::read_response(&mut r, false);
    assert_eq!(resp.status, 308);
    let port = tls_addr.port();
    assert_eq!(
        resp.header("location"),
        Some(format!("https://a.test:{port}/a/b%2Fc?x=1&y").as_str())
    );
    assert_eq!(resp.header("strict-transport-security"), None);
    let resp = common::read_response(&mut r, false);
    assert_eq!(resp.status, 308);
    assert_eq!(
        resp.header("location"),
        Some(format!("https://b.test:{port}/").as_str())
    );
    // HTTP/1.0 without Host: nowhere to send it.
    let (resp, _) = common::exchange(plain, b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(resp.status, 400);
    // Over TLS: served, with Strict-Transport-Security on a respond route and a proxied one.
    let client = with_fresh_sessions(pki.client());
    let mut s = connect(tls_addr, &client, "a.test").expect("handshake");
    for path in ["/", "/p/x"] {
        let (status, head, _) = get(&mut s, "a.test", path).expect("response");
        assert_eq!(status, 200, "{path}");
        assert!(
            head.contains("Strict-Transport-Security: max-age=31536000; includeSubDomains\r\n"),
            "{path}: {head}"
        );
    }
}

#[test]
fn redirect_https_and_hsts_mistakes_are_reported() {
    for (text, code) in [
        (
            "listen :8080\nsite * { redirect https; route /* { respond 200 } }\n",
            "E0319",
        ),
        (
            "listen :8080\nsite * { hsts max_age 365d preload; route /* { respond 200 } }\n",
            "E0318",
        ),
        (
            "listen :8080\nsite * { hsts max_age 30d include_subdomains preload; route /* { respond 200 } }\n",
            "E0318",
        ),
        (
            "listen :8080\nsite * { redirect https 302; route /* { respond 200 } }\n",
            "E0207",
        ),
    ] {
        let Err(e) = bext_dsl::compile_str("r.bext", text) else {
            panic!("{text} compiles");
        };
        let codes: Vec<&str> = e.diagnostics().iter().map(|d| d.code).collect();
        assert!(codes.contains(&code), "{text}: {codes:?}");
    }
    // The location's port is the first TLS listener's, left out for 443.
    let c = bext_dsl::compile_str(
        "r.bext",
        "listen :80\nlisten :443 tls { cert \"a.pem\" key \"a.key\" }\nsite * { redirect https 301; route /* { respond 200 } }\n",
    )
    .expect("compiles");
    let r = c.config.sites[0].redirect_https.as_ref().expect("redirect");
    assert_eq!((r.status, r.port), (301, None));
}

#[test]
fn routes_match_on_the_verified_client_certificate() {
    let (pki, c) = certs("cert-routes");
    let extra = format!("    client_auth {{ ca \"{}\"; optional }}\n", pki.ca_file);
    let text = format!(
        "listen 127.0.0.1:0 {}\nsite * {{\n    route /* {{ client_cert cn = \"alice\"; client_cert dns ~ '\\.clients\\.test$'; respond 200 \"alice\" }}\n    route /* {{ client_cert present; respond 200 \"certified\" }}\n    route /* {{ respond 200 \"anonymous\" }}\n}}\n",
        tls_block(&c, &extra)
    );
    let server = serve(&text);
    let a = common::addr(&server);
    let with = |cn: &'static str, names: &'static [&'static str]| {
        let (chain, key) = pki.client_identity(Leaf {
            names,
            common_name: Some(cn),
            ..Leaf::default()
        });
        with_fresh_sessions(
            ClientConfig::builder_with_provider(Arc::new(
                bext_tls::Provider::default().unrestricted(),
            ))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(pki.roots())
            .with_client_auth_cert(chain, key)
            .expect("client cert"),
        )
    };
    for (client, want) in [
        (with("alice", &["alice.clients.test"]), "alice"),
        // The common name alone is not enough: every condition must hold.
        (with("alice", &["alice.elsewhere.test"]), "certified"),
        (with("bob", &["bob.clients.test"]), "certified"),
        (with_fresh_sessions(pki.client()), "anonymous"),
    ] {
        let mut s = connect(a, &client, "a.test").expect("handshake");
        let (status, _, body) = get(&mut s, "a.test", "/").expect("response");
        assert_eq!(
            (status, String::from_utf8_lossy(&body).as_ref()),
            (200, want)
        );
    }
    // Different common names make routes disjoint, not tied; the same test twice is a tie.
    let routes = |a: &str, b: &str| {
        format!("listen :8080\nsite * {{\n    route /* {{ client_cert cn = \"{a}\"; respond 200 }}\n    route /* {{ client_cert cn = \"{b}\"; respond 200 }}\n}}\n")
    };
    assert!(bext_dsl::compile_str("t.bext", &routes("a", "b")).is_ok());
    let Err(e) = bext_dsl::compile_str("t.bext", &routes("a", "a")) else {
        panic!("a tie compiles");
    };
    assert!(e.diagnostics().iter().any(|d| d.code == "E0401"));
}

#[test]
fn an_idle_tls_connection_is_parked_with_its_session_and_served_again() {
    let (pki, c) = certs("parked");
    let server = serve(&respond_site(&c, ""));
    let a = common::addr(&server);
    let client = with_fresh_sessions(pki.client());
    let mut s = connect(a, &client, "a.test").expect("handshake");
    for round in 0..3 {
        let (status, _, body) = get(&mut s, "a.test", "/").expect("response");
        assert_eq!(
            (status, &body[..]),
            (200, &b"hello over tls"[..]),
            "round {round}"
        );
        // Quiet past the hot window: the connection leaves its task for the parking set, with
        // its session, and the next request wakes it.
        std::thread::sleep(Duration::from_millis(400));
    }
    // Two requests in one write after a quiet period: the second is decrypted with the first
    // and served from the session, not waited for on the socket.
    write!(
        s,
        "GET / HTTP/1.1\r\nHost: a.test\r\n\r\nGET / HTTP/1.1\r\nHost: a.test\r\n\r\n"
    )
    .expect("write");
    s.flush().expect("flush");
    let mut r = BufReader::new(&mut s);
    for _ in 0..2 {
        let (status, _, body) = response(&mut r).expect("pipelined response");
        assert_eq!((status, &body[..]), (200, &b"hello over tls"[..]));
    }
}

/// A cached route served on a plain and a TLS listener keeps `http` and `https` objects apart:
/// the scheme is part of the key (RFC 9111 §2), so what an `https` request stored is never the
/// answer to an `http` one, and each is a hit for its own scheme.
#[test]
fn the_cache_keys_https_apart_from_http() {
    let (pki, c) = certs("cache-scheme");
    let n = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = n.clone();
    let origin = common::upstream(move |mut s| loop {
        let head = common::read_head(&mut s);
        if head.is_empty() {
            return;
        }
        let i = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let body = format!("answer {i}");
        let answer = format!(
            "HTTP/1.1 200 OK\r\nCache-Control: max-age=100\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if s.write_all(answer.as_bytes()).is_err() {
            return;
        }
    });
    let text = format!(
        "listen 127.0.0.1:0\nlisten 127.0.0.2:0 {}\nupstream app {{ server {origin} }}\nsite * {{ route /* {{ cache {{ ttl 0s }}\n proxy app }} }}\n",
        tls_block(&c, "")
    );
    let server = serve(&text);
    let addrs = server.local_addrs();
    let client = insecure(&pki);
    let mut s = connect(addrs[1], &client, "a.test").expect("handshake");
    let (status, _, body) = get(&mut s, "a.test", "/page").expect("https");
    assert_eq!((status, body.as_slice()), (200, &b"answer 1"[..]));
    let (_, head, body) = get(&mut s, "a.test", "/page").expect("https hit");
    assert_eq!(body, b"answer 1");
    assert!(head.contains("hit"), "{head}");
    let plain = |path: &str| {
        let req = format!("GET {path} HTTP/1.1\r\nHost: a.test\r\n\r\n");
        common::exchange(addrs[0], req.as_bytes()).0
    };
    let r = plain("/page");
    assert_eq!(
        r.text(),
        "answer 2",
        "an http request is not served the https object"
    );
    assert_eq!(plain("/page").text(), "answer 2");
    assert_eq!(n.load(std::sync::atomic::Ordering::SeqCst), 2);
    server.shutdown();
}
