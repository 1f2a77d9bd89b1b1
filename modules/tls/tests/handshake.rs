//! Handshakes in memory between a rustls client and a bext-tls listener: which certificate a
//! server name gets, ALPN, the protocol and suite policy, client certificates.

mod support;

use std::sync::Arc;

use bext_tls::rustls::{self, ClientConfig, NamedGroup, ProtocolVersion, ServerConnection};
use bext_tls::{ClientAuth, Ktls, PeerIdentity, Settings};
use support::{handshake, served_name, tls, with_fresh_sessions, Leaf, Pki};

/// A listener with a default certificate, an exact name and a wildcard, each naming itself in
/// its first DNS name.
fn sites(pki: &Pki) -> bext_tls::Listener {
    let (default, default_key) = pki.leaf(
        "default",
        Leaf {
            names: &["default.example", "a.example"],
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
    let (wild, wild_key) = pki.leaf(
        "wild",
        Leaf {
            names: &["*.w.example"],
            ..Leaf::default()
        },
    );
    let (exact, exact_key) = pki.leaf(
        "exact",
        Leaf {
            names: &["a.w.example"],
            ..Leaf::default()
        },
    );
    bext_tls::load(&tls(&[
        (Some("shop.example"), &shop, &shop_key),
        (None, &default, &default_key),
        (Some("*.w.example"), &wild, &wild_key),
        (Some("a.w.example"), &exact, &exact_key),
    ]))
    .expect("listener")
}

#[test]
fn certificate_chosen_by_server_name() {
    let pki = Pki::new("sni");
    let listener = sites(&pki);
    let config = listener.server_config();
    // (SNI sent, certificate served, index of the cert line)
    for (sni, served, index) in [
        ("shop.example", "shop.example", 0),
        ("SHOP.Example", "shop.example", 0),
        ("a.w.example", "a.w.example", 3),
        ("b.w.example", "*.w.example", 2),
        ("a.example", "default.example", 1),
    ] {
        let client = with_fresh_sessions(pki.client());
        let (_, client) = handshake(config, &client, sni).expect(sni);
        assert_eq!(served_name(&client), served, "{sni}");
        assert_eq!(listener.site_for(Some(sni)), index, "{sni}");
    }
    // A wildcard covers one label: `y.x.w.example` and `w.example` get the default, as an
    // unknown name does; its certificate does not cover them, so a verifying client refuses it.
    for sni in ["y.x.w.example", "w.example", "unknown.example"] {
        assert_eq!(listener.site_for(Some(sni)), 1, "{sni}");
        let client = with_fresh_sessions(pki.client());
        let err = handshake(config, &client, sni).expect_err(sni);
        assert!(
            matches!(err, rustls::Error::InvalidCertificate(_)),
            "{sni}: {err}"
        );
    }
    // No SNI at all (a client connecting to an address): the default certificate.
    let mut no_sni = pki.client();
    no_sni.enable_sni = false;
    let (_, client) =
        handshake(config, &with_fresh_sessions(no_sni), "default.example").expect("no SNI");
    assert_eq!(served_name(&client), "default.example");
    assert_eq!(listener.site_for(None), 1);
}

#[test]
fn without_a_cert_line_lacking_sni_the_first_is_the_default() {
    let pki = Pki::new("first");
    let (a, a_key) = pki.leaf(
        "a",
        Leaf {
            names: &["a.example"],
            ..Leaf::default()
        },
    );
    let (b, b_key) = pki.leaf(
        "b",
        Leaf {
            names: &["b.example"],
            ..Leaf::default()
        },
    );
    let listener = bext_tls::load(&tls(&[
        (Some("a.example"), &a, &a_key),
        (Some("b.example"), &b, &b_key),
    ]))
    .expect("listener");
    assert_eq!(listener.site_for(Some("c.example")), 0);
    assert_eq!(listener.site_for(Some("b.example")), 1);
}

#[test]
fn alpn() {
    let pki = Pki::new("alpn");
    let listener = sites(&pki);
    let with_alpn = |protos: &[&[u8]]| {
        let mut c = pki.client();
        c.alpn_protocols = protos.iter().map(|p| p.to_vec()).collect();
        with_fresh_sessions(c)
    };
    let config = listener.server_config();
    let (server, _) =
        handshake(config, &with_alpn(&[b"h2", b"http/1.1"]), "a.example").expect("h2 and http/1.1");
    assert_eq!(server.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (server, _) = handshake(config, &with_alpn(&[]), "a.example").expect("no ALPN");
    assert_eq!(server.alpn_protocol(), None);
    // RFC 7301 §3.2: no protocol in common is a no_application_protocol alert.
    let err = handshake(config, &with_alpn(&[b"h2"]), "a.example").expect_err("h2 only");
    assert!(matches!(err, rustls::Error::NoApplicationProtocol), "{err}");

    // A listener that serves h2 offers it first.
    let h2 = bext_tls::load_with(
        &tls(&[(
            None,
            &pki.dir.path("default.pem"),
            &pki.dir.path("default.key"),
        )]),
        &Settings {
            alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            ..Settings::default()
        },
        None,
    )
    .expect("h2 listener");
    let (server, _) = handshake(
        h2.server_config(),
        &with_alpn(&[b"http/1.1", b"h2"]),
        "a.example",
    )
    .expect("h2");
    assert_eq!(server.alpn_protocol(), Some(&b"h2"[..]));
}

#[test]
fn tls12_only_client_is_served_with_an_aead_suite() {
    let pki = Pki::new("tls12");
    let listener = sites(&pki);
    for sni in ["a.example", "shop.example"] {
        let client = with_fresh_sessions(pki.client_for(&[&rustls::version::TLS12]));
        let (server, _) = handshake(listener.server_config(), &client, sni).expect(sni);
        assert_eq!(server.protocol_version(), Some(ProtocolVersion::TLSv1_2));
        let suite = format!("{:?}", server.negotiated_cipher_suite().unwrap().suite());
        assert!(
            suite.starts_with("TLS_ECDHE_") && (suite.contains("GCM") || suite.contains("CHACHA")),
            "{suite}"
        );
    }
}

#[test]
fn hybrid_post_quantum_group_is_preferred() {
    let pki = Pki::new("pq");
    let listener = sites(&pki);
    let client = with_fresh_sessions(pki.client());
    let (server, _) = handshake(listener.server_config(), &client, "a.example").expect("pq");
    assert_eq!(
        server.negotiated_key_exchange_group().map(|g| g.name()),
        Some(NamedGroup::X25519MLKEM768)
    );
    let offered: Vec<_> = listener
        .server_config()
        .crypto_provider()
        .kx_groups
        .iter()
        .map(|g| g.name())
        .collect();
    assert_eq!(
        offered,
        [
            NamedGroup::X25519MLKEM768,
            NamedGroup::X25519,
            NamedGroup::secp256r1,
            NamedGroup::secp384r1
        ]
    );
}

/// A TLS 1.2 ClientHello offering only CBC suites (ECDHE-RSA-AES128-SHA, AES128-SHA), as an
/// old client sends it.
fn cbc_only_client_hello() -> Vec<u8> {
    let name = b"a.example";
    let mut ext = Vec::new();
    // server_name
    let list_len = name.len() + 3;
    ext.extend_from_slice(&[0x00, 0x00]);
    ext.extend_from_slice(&((list_len + 2) as u16).to_be_bytes());
    ext.extend_from_slice(&(list_len as u16).to_be_bytes());
    ext.push(0);
    ext.extend_from_slice(&(name.len() as u16).to_be_bytes());
    ext.extend_from_slice(name);
    // supported_groups: x25519; ec_point_formats: uncompressed;
    // signature_algorithms: rsa_pkcs1_sha256, ecdsa_secp256r1_sha256
    ext.extend_from_slice(&[0x00, 0x0a, 0x00, 0x04, 0x00, 0x02, 0x00, 0x1d]);
    ext.extend_from_slice(&[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00]);
    ext.extend_from_slice(&[0x00, 0x0d, 0x00, 0x06, 0x00, 0x04, 0x04, 0x01, 0x04, 0x03]);

    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&[0x5a; 32]);
    body.push(0); // session id
    body.extend_from_slice(&[0x00, 0x04, 0xc0, 0x13, 0x00, 0x2f]);
    body.extend_from_slice(&[0x01, 0x00]); // null compression
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);

    let mut hs = vec![0x01];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    record.extend_from_slice(&hs);
    record
}

#[test]
fn cbc_only_client_is_refused() {
    let pki = Pki::new("cbc");
    let listener = sites(&pki);
    let mut server = ServerConnection::new(listener.server_config().clone()).expect("server");
    let hello = cbc_only_client_hello();
    server.read_tls(&mut &hello[..]).expect("read");
    let err = server
        .process_new_packets()
        .expect_err("no suite in common");
    assert!(
        matches!(
            err,
            rustls::Error::PeerIncompatible(rustls::PeerIncompatible::NoCipherSuitesInCommon)
        ),
        "{err}"
    );
    assert_eq!(bext_tls::failure_class(&err), "no_shared_cipher");
    // The answer is a fatal handshake_failure alert: 15 03 03 00 02 02 28.
    let mut out = Vec::new();
    server.write_tls(&mut out).expect("alert");
    assert_eq!(out, [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]);
}

fn client_auth_listener(pki: &Pki, required: bool) -> bext_tls::Listener {
    let (cert, key) = pki.leaf(
        "server",
        Leaf {
            names: &["a.example"],
            ..Leaf::default()
        },
    );
    bext_tls::load_with(
        &tls(&[(None, &cert, &key)]),
        &Settings {
            client_auth: Some(ClientAuth {
                ca: pki.ca_file.clone(),
                required,
            }),
            ..Settings::default()
        },
        None,
    )
    .expect("listener")
}

fn client_with_cert(pki: &Pki, signer: &Pki, tls12: bool) -> Arc<ClientConfig> {
    let (chain, key) = signer.client_identity(Leaf {
        names: &["alice.clients.example"],
        common_name: Some("alice"),
        ..Leaf::default()
    });
    let versions: &[&rustls::SupportedProtocolVersion] = match tls12 {
        true => &[&rustls::version::TLS12],
        false => &[&rustls::version::TLS13],
    };
    let config =
        ClientConfig::builder_with_provider(Arc::new(bext_tls::Provider::default().unrestricted()))
            .with_protocol_versions(versions)
            .expect("versions")
            .with_root_certificates(pki.roots())
            .with_client_auth_cert(chain, key)
            .expect("client cert");
    with_fresh_sessions(config)
}

#[test]
fn client_certificate_required() {
    let pki = Pki::new("mtls");
    let listener = client_auth_listener(&pki, true);
    let config = listener.server_config();
    for tls12 in [false, true] {
        let (server, _) = handshake(config, &client_with_cert(&pki, &pki, tls12), "a.example")
            .expect("client with a certificate");
        let id = PeerIdentity::of(&server).expect("identity");
        assert_eq!(id.common_name.as_deref(), Some("alice"));
        assert_eq!(id.dns_names, ["alice.clients.example"]);
        assert_eq!(
            id.header_value(),
            r#"Subject="CN=alice";DNS=alice.clients.example"#
        );
    }
    let err = handshake(config, &with_fresh_sessions(pki.client()), "a.example")
        .expect_err("no client certificate");
    assert!(
        matches!(err, rustls::Error::NoCertificatesPresented),
        "{err}"
    );
    // A certificate from another CA does not verify.
    let other = Pki::new("mtls-other");
    let err = handshake(config, &client_with_cert(&pki, &other, false), "a.example")
        .expect_err("unknown issuer");
    assert!(matches!(err, rustls::Error::InvalidCertificate(_)), "{err}");
}

#[test]
fn client_certificate_optional() {
    let pki = Pki::new("mtls-opt");
    let listener = client_auth_listener(&pki, false);
    let config = listener.server_config();
    let (server, _) = handshake(config, &with_fresh_sessions(pki.client()), "a.example")
        .expect("no client certificate");
    assert_eq!(PeerIdentity::of(&server), None);
    let (server, _) = handshake(config, &client_with_cert(&pki, &pki, false), "a.example")
        .expect("with a client certificate");
    assert_eq!(
        PeerIdentity::of(&server).and_then(|id| id.common_name),
        Some("alice".to_owned())
    );
    // Optional does not mean unchecked: a certificate that does not verify fails.
    let other = Pki::new("mtls-opt-other");
    handshake(config, &client_with_cert(&pki, &other, false), "a.example")
        .expect_err("unknown issuer");
}

#[test]
fn ktls_probe_gives_a_reason_when_unavailable() {
    match bext_tls::ktls_probe() {
        Ktls::Available => {}
        Ktls::Unavailable(why) => {
            assert!(!why.is_empty());
            assert!(Ktls::Unavailable(why.clone())
                .to_string()
                .starts_with("unavailable: "));
            eprintln!("kTLS unavailable: {why}");
        }
    }
}

#[test]
fn secret_extraction_follows_the_ktls_setting() {
    let pki = Pki::new("ktls");
    let (cert, key) = pki.leaf(
        "c",
        Leaf {
            names: &["a.example"],
            ..Leaf::default()
        },
    );
    let block = tls(&[(None, &cert, &key)]);
    let on = Settings {
        ktls: true,
        ..Settings::default()
    };
    let listener = bext_tls::load_with(&block, &on, None).expect("listener");
    let (server, _) = handshake(
        listener.server_config(),
        &with_fresh_sessions(pki.client()),
        "a.example",
    )
    .expect("handshake");
    assert!(server.dangerous_extract_secrets().is_ok());
    let listener = bext_tls::load(&block).expect("listener");
    let (server, _) = handshake(
        listener.server_config(),
        &with_fresh_sessions(pki.client()),
        "a.example",
    )
    .expect("handshake");
    assert!(server.dangerous_extract_secrets().is_err());
}
