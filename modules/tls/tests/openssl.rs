//! An independent client: `openssl s_client` against a bext-tls listener served over a real
//! loopback socket. Skipped where the `openssl` command is missing.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::Arc;

use bext_tls::rustls::{ServerConnection, StreamOwned};
use support::{tls, Leaf, Pki};

/// Serves `HTTP/1.1 200 ok` on every connection, one at a time, until the test ends.
fn serve(listener: &bext_tls::Listener) -> u16 {
    let socket = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = socket.local_addr().expect("addr").port();
    let config = listener.server_config().clone();
    std::thread::spawn(move || {
        for tcp in socket.incoming() {
            let Ok(tcp) = tcp else { continue };
            let _ = tcp.set_read_timeout(Some(std::time::Duration::from_secs(5)));
            let conn = ServerConnection::new(Arc::clone(&config)).expect("connection");
            let mut stream = StreamOwned::new(conn, tcp);
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match stream.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            if head.ends_with(b"\r\n\r\n") {
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
                stream.conn.send_close_notify();
                let _ = stream.flush();
            }
        }
    });
    port
}

/// Runs `openssl s_client` with `args`, sending one request; (exit ok, stdout + stderr).
fn s_client(port: u16, args: &[&str]) -> (bool, String) {
    let mut child = Command::new("openssl")
        .arg("s_client")
        .args(["-connect", &format!("127.0.0.1:{port}"), "-ign_eof"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl");
    // A failed handshake closes stdin early; the write error does not matter then.
    let _ = child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n");
    let out = child.wait_with_output().expect("openssl output");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn openssl_s_client() {
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!("skipped: no openssl command");
        return;
    }
    let pki = Pki::new("openssl");
    let (default, default_key) = pki.leaf(
        "default",
        Leaf {
            names: &["a.example"],
            ..Leaf::default()
        },
    );
    let (shop, shop_key) = pki.leaf(
        "shop",
        Leaf {
            names: &["shop.example"],
            alg: &rcgen::PKCS_RSA_SHA256,
            ..Leaf::default()
        },
    );
    let listener = bext_tls::load(&tls(&[
        (None, &default, &default_key),
        (Some("shop.example"), &shop, &shop_key),
    ]))
    .expect("listener");
    let port = serve(&listener);
    let ca = pki.ca_file.as_str();
    let verify = ["-CAfile", ca, "-verify_return_error"];

    // SNI selection, verification, ALPN, TLS 1.3.
    for name in ["a.example", "shop.example"] {
        let (ok, out) = s_client(
            port,
            &[
                &verify[..],
                &[
                    "-servername",
                    name,
                    "-verify_hostname",
                    name,
                    "-alpn",
                    "http/1.1",
                ],
            ]
            .concat(),
        );
        assert!(ok, "{name}: {out}");
        for want in [
            "Verify return code: 0 (ok)",
            "ALPN protocol: http/1.1",
            "TLSv1.3",
            "HTTP/1.1 200 OK",
        ] {
            assert!(out.contains(want), "{name}: `{want}` missing in\n{out}");
        }
    }

    // A TLS 1.2-only client gets an ECDHE AEAD suite.
    let (ok, out) = s_client(
        port,
        &[&verify[..], &["-servername", "shop.example", "-tls1_2"]].concat(),
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("Protocol  : TLSv1.2") && out.contains("Cipher    : ECDHE-RSA-AES"),
        "{out}"
    );
    assert!(out.contains("GCM"), "{out}");

    // A CBC-only client is refused.
    let (ok, out) = s_client(
        port,
        &[
            "-servername",
            "shop.example",
            "-tls1_2",
            "-cipher",
            "ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES128-SHA:AES128-SHA:AES256-SHA",
        ],
    );
    assert!(!ok, "{out}");
    assert!(out.contains("handshake failure"), "{out}");

    // A session saved by one connection resumes on the next.
    let session = pki.dir.path("session.pem");
    let sess_args = |flag: &'static str| -> Vec<&str> {
        [
            &verify[..],
            &["-servername", "a.example", flag, session.as_str()],
        ]
        .concat()
    };
    let (ok, out) = s_client(port, &sess_args("-sess_out"));
    assert!(ok && out.contains("New, TLSv1.3"), "{out}");
    let (ok, out) = s_client(port, &sess_args("-sess_in"));
    assert!(ok && out.contains("Reused, TLSv1.3"), "{out}");
}
