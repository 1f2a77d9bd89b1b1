//! What `bext check` reports about a `tls` block: one case per E07xx code, all problems of a
//! block reported together, and every code documented once.

mod support;

use std::sync::{Arc, Mutex};

use bext_tls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use bext_tls::rustls::client::WebPkiServerVerifier;
use bext_tls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use bext_tls::rustls::{self, DigitallySignedStruct, SignatureScheme};

use bext_tls::{ClientAuth, Code, Ocsp, Settings};
use support::{tls, Leaf, Pki};

/// The codes `load_with` reports for a block, in order.
fn codes(tls: &bext_ir::Tls, settings: &Settings) -> Vec<Code> {
    match bext_tls::load_with(tls, settings, None) {
        Ok(_) => Vec::new(),
        Err(errors) => {
            for e in &errors {
                assert_eq!(e.at.line, 3, "errors point at the tls block: {e}");
                assert!(!e.message.is_empty());
            }
            errors.iter().map(|e| e.code).collect()
        }
    }
}

#[test]
fn each_problem_has_its_code() {
    let pki = Pki::new("check");
    let (good, good_key) = pki.leaf(
        "good",
        Leaf {
            names: &["a.example", "*.w.example"],
            ..Leaf::default()
        },
    );
    let (rsa, rsa_key) = pki.leaf(
        "rsa",
        Leaf {
            names: &["rsa.example"],
            alg: &rcgen::PKCS_RSA_SHA256,
            ..Leaf::default()
        },
    );
    let (expired, expired_key) = pki.leaf(
        "expired",
        Leaf {
            names: &["old.example"],
            not_before: (2019, 1, 1),
            not_after: (2020, 1, 1),
            ..Leaf::default()
        },
    );
    let (future, future_key) = pki.leaf(
        "future",
        Leaf {
            names: &["new.example"],
            not_before: (2090, 1, 1),
            not_after: (2091, 1, 1),
            ..Leaf::default()
        },
    );
    let garbage = pki.dir.write("garbage.pem", "not a certificate\n");
    let bad_der = pki.dir.write(
        "bad-der.pem",
        "-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n",
    );
    let missing = pki.dir.path("missing.pem");
    let bad_ocsp = pki.dir.write("bad.ocsp", [0x30, 0x03, 0x0a, 0x01, 0x03]);
    let good_ocsp = pki
        .dir
        .write("good.ocsp", [0x30, 0x05, 0x0a, 0x01, 0x00, 0xa0, 0x00]);

    let default = Settings::default();
    let with_ocsp = |ocsp: Ocsp| Settings {
        ocsp: vec![ocsp],
        ..Settings::default()
    };
    let with_ca = |ca: &str| Settings {
        client_auth: Some(ClientAuth {
            ca: ca.to_owned(),
            required: true,
        }),
        ..Settings::default()
    };
    let cases: Vec<(&str, bext_ir::Tls, Settings, Vec<Code>)> = vec![
        (
            "clean ECDSA and RSA with OCSP and a client CA",
            tls(&[
                (None, &good, &good_key),
                (Some("rsa.example"), &rsa, &rsa_key),
            ]),
            Settings {
                ocsp: vec![Ocsp::File(good_ocsp.clone())],
                ..with_ca(&pki.ca_file)
            },
            vec![],
        ),
        (
            "missing certificate file",
            tls(&[(None, &missing, &good_key)]),
            default.clone(),
            vec![Code::MissingFile],
        ),
        (
            "missing key file",
            tls(&[(None, &good, &missing)]),
            default.clone(),
            vec![Code::MissingFile],
        ),
        (
            "certificate file without PEM",
            tls(&[(None, &garbage, &good_key)]),
            default.clone(),
            vec![Code::BadCertificate],
        ),
        (
            "certificate that does not parse",
            tls(&[(None, &bad_der, &good_key)]),
            default.clone(),
            vec![Code::BadCertificate],
        ),
        (
            "certificate is a directory",
            tls(&[(None, &pki.dir.path(""), &good_key)]),
            default.clone(),
            vec![Code::BadCertificate],
        ),
        (
            "key file holding a certificate",
            tls(&[(None, &good, &good)]),
            default.clone(),
            vec![Code::BadKey],
        ),
        (
            "key of another certificate",
            tls(&[(None, &good, &rsa_key)]),
            default.clone(),
            vec![Code::KeyMismatch],
        ),
        (
            "expired",
            tls(&[(None, &expired, &expired_key)]),
            default.clone(),
            vec![Code::Expired],
        ),
        (
            "not yet valid",
            tls(&[(None, &future, &future_key)]),
            default.clone(),
            vec![Code::NotYetValid],
        ),
        (
            "sni not among the names",
            tls(&[(Some("shop.example"), &good, &good_key)]),
            default.clone(),
            vec![Code::SniNotCovered],
        ),
        (
            "a wildcard covers one label only",
            tls(&[(Some("y.x.w.example"), &good, &good_key)]),
            default.clone(),
            vec![Code::SniNotCovered],
        ),
        (
            "wildcard sni covered by the same wildcard, and a name it covers",
            tls(&[
                (Some("*.w.example"), &good, &good_key),
                (Some("b.w.example"), &good, &good_key),
            ]),
            default.clone(),
            vec![],
        ),
        (
            "duplicate sni, in another case",
            tls(&[
                (Some("a.example"), &good, &good_key),
                (Some("A.Example"), &good, &good_key),
            ]),
            default.clone(),
            vec![Code::DuplicateSni],
        ),
        (
            "OCSP file missing",
            tls(&[(None, &good, &good_key)]),
            with_ocsp(Ocsp::File(missing.clone())),
            vec![Code::MissingFile],
        ),
        (
            "OCSP response not successful",
            tls(&[(None, &good, &good_key)]),
            with_ocsp(Ocsp::File(bad_ocsp.clone())),
            vec![Code::BadOcsp],
        ),
        (
            "client CA file missing",
            tls(&[(None, &good, &good_key)]),
            with_ca(&missing),
            vec![Code::MissingFile],
        ),
        (
            "client CA file without a certificate",
            tls(&[(None, &good, &good_key)]),
            with_ca(&garbage),
            vec![Code::BadClientCa],
        ),
        (
            "empty ALPN protocol",
            tls(&[(None, &good, &good_key)]),
            Settings {
                alpn: vec![b"http/1.1".to_vec(), Vec::new()],
                ..Settings::default()
            },
            vec![Code::BadAlpn],
        ),
        (
            "every problem of a block at once",
            tls(&[
                (None, &expired, &expired_key),
                (Some("a.example"), &good, &rsa_key),
                (Some("a.example"), &missing, &good_key),
            ]),
            default.clone(),
            vec![
                Code::Expired,
                Code::KeyMismatch,
                Code::DuplicateSni,
                Code::MissingFile,
            ],
        ),
    ];
    for (name, block, settings, want) in cases {
        assert_eq!(codes(&block, &settings), want, "{name}");
    }
}

#[test]
fn errors_name_the_file_and_the_cert_line() {
    let pki = Pki::new("located");
    let (good, good_key) = pki.leaf(
        "good",
        Leaf {
            names: &["a.example"],
            ..Leaf::default()
        },
    );
    let missing = pki.dir.path("nope.key");
    let errors = bext_tls::load(&tls(&[
        (None, &good, &good_key),
        (Some("a.example"), &good, &missing),
    ]))
    .expect_err("a missing key");
    assert_eq!(errors.len(), 1);
    let e = &errors[0];
    assert_eq!(
        (e.code.as_str(), e.cert, e.file.as_deref()),
        ("E0701", Some(1), Some(missing.as_str()))
    );
    let text = e.to_string();
    assert!(
        text.starts_with("error[E0701]: key `") && text.contains("site.bext:3:15 (cert 2"),
        "{text}"
    );
}

#[test]
fn validity_is_judged_at_the_given_time() {
    let pki = Pki::new("time");
    let (cert, key) = pki.leaf(
        "c",
        Leaf {
            names: &["a.example"],
            not_before: (2030, 1, 1),
            not_after: (2031, 1, 1),
            ..Leaf::default()
        },
    );
    let block = tls(&[(None, &cert, &key)]);
    let at = |secs: i64| {
        bext_tls::load_at(&block, &Settings::default(), None, secs)
            .err()
            .map(|e| e[0].code)
    };
    // 2029-12-31, 2030-06-01, 2031-01-02
    assert_eq!(at(1_893_369_600), Some(Code::NotYetValid));
    assert_eq!(at(1_906_502_400), None);
    assert_eq!(at(1_924_992_000 + 86_400), Some(Code::Expired));
}

#[test]
fn codes_are_unique_and_documented_once() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/diagnostics.md"
    ))
    .expect("docs/diagnostics.md");
    let mut seen = std::collections::HashSet::new();
    for code in Code::ALL {
        assert!(seen.insert(code.as_str()), "{code} twice");
        let heading = format!("### {code} ");
        assert_eq!(
            doc.matches(&heading).count(),
            1,
            "{code} in docs/diagnostics.md"
        );
    }
}

#[test]
fn ocsp_next_to_the_certificate_is_stapled() {
    let pki = Pki::new("ocsp");
    let (cert, key) = pki.leaf(
        "c",
        Leaf {
            names: &["a.example"],
            ..Leaf::default()
        },
    );
    let block = tls(&[(None, &cert, &key)]);
    let listener = bext_tls::load(&block).expect("no OCSP file is fine");
    assert_eq!(listener.certs()[0].ocsp_file, None);

    let response = [0x30, 0x05, 0x0a, 0x01, 0x00, 0xa0, 0x00];
    std::fs::write(format!("{cert}.ocsp"), response).expect("write");
    let listener = bext_tls::load(&block).expect("stapled");
    assert_eq!(
        listener.certs()[0].ocsp_file.as_deref(),
        Some(format!("{cert}.ocsp").as_str())
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut client = pki.client();
    let inner = WebPkiServerVerifier::builder_with_provider(
        Arc::new(pki.roots()),
        Arc::new(bext_tls::Provider::default().unrestricted()),
    )
    .build()
    .expect("verifier");
    client
        .dangerous()
        .set_certificate_verifier(Arc::new(RecordOcsp(inner, seen.clone())));
    let client = support::with_fresh_sessions(client);
    support::handshake(listener.server_config(), &client, "a.example").expect("handshake");
    assert_eq!(*seen.lock().unwrap(), response);

    // `Ocsp::Off` ignores the file.
    let off = Settings {
        ocsp: vec![Ocsp::Off],
        ..Settings::default()
    };
    let listener = bext_tls::load_with(&block, &off, None).expect("off");
    assert_eq!(listener.certs()[0].ocsp_file, None);
}

/// Verifies as webpki does and keeps the stapled OCSP response.
#[derive(Debug)]
struct RecordOcsp(Arc<WebPkiServerVerifier>, Arc<Mutex<Vec<u8>>>);

impl ServerCertVerifier for RecordOcsp {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        *self.1.lock().unwrap() = ocsp_response.to_vec();
        self.0
            .verify_server_cert(end_entity, intermediates, server_name, &[], now)
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
