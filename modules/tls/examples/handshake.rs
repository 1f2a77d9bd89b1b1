//! Server-side CPU cost of TLS handshakes and records, per crypto provider, in memory.
//!
//! A rustls client and a bext-tls server talk through byte vectors (no sockets, no kernel),
//! and only the server's calls are timed, with the thread's CPU clock, so other work on the
//! machine does not count. Rounds alternate between the providers; the median round is shown.
//!
//! ```text
//! cargo run --release -p bext-tls --features ring --example handshake [ROUNDS]
//! ```
//!
//! docs/tls.md holds the figures and the choice they led to.

use std::io::Write;
use std::sync::Arc;

use bext_tls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use bext_tls::rustls::crypto::CryptoProvider;
use bext_tls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use bext_tls::rustls::{
    self, ClientConfig, ClientConnection, DigitallySignedStruct, HandshakeKind, NamedGroup,
    ServerConnection, SignatureScheme,
};
use bext_tls::{Provider, Settings};

/// The calling thread's CPU time in nanoseconds.
fn cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Accepts any server certificate: the client's cost is not what is measured.
#[derive(Debug)]
struct AnyServer(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Runs one handshake; returns the server's CPU nanoseconds and the connections.
fn handshake(
    server_config: &Arc<rustls::ServerConfig>,
    client_config: &Arc<ClientConfig>,
) -> (u64, ServerConnection, ClientConnection) {
    let name = ServerName::try_from("bench.example").expect("a valid name");
    let mut client = ClientConnection::new(client_config.clone(), name).expect("client");
    let t0 = cpu_ns();
    let mut server = ServerConnection::new(server_config.clone()).expect("server");
    let mut spent = cpu_ns() - t0;
    let (mut to_server, mut to_client) = (Vec::new(), Vec::new());
    loop {
        to_server.clear();
        while client.wants_write() {
            client.write_tls(&mut to_server).expect("client write");
        }
        let t0 = cpu_ns();
        let mut input = &to_server[..];
        while !input.is_empty() {
            server.read_tls(&mut input).expect("server read");
            server.process_new_packets().expect("server handshake");
        }
        to_client.clear();
        while server.wants_write() {
            server.write_tls(&mut to_client).expect("server write");
        }
        spent += cpu_ns() - t0;
        let mut input = &to_client[..];
        while !input.is_empty() {
            client.read_tls(&mut input).expect("client read");
            client.process_new_packets().expect("client handshake");
        }
        if !client.is_handshaking() && !server.is_handshaking() && !client.wants_write() {
            return (spent, server, client);
        }
    }
}

struct Pki {
    dir: std::path::PathBuf,
}

impl Pki {
    fn new() -> Pki {
        let dir = std::env::temp_dir().join(format!("bext-tls-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        for (name, alg) in [
            ("ecdsa", &rcgen::PKCS_ECDSA_P256_SHA256),
            ("rsa", &rcgen::PKCS_RSA_SHA256),
        ] {
            let key = rcgen::KeyPair::generate_for(alg).expect("key");
            let params =
                rcgen::CertificateParams::new(vec!["bench.example".to_owned()]).expect("params");
            let cert = params.self_signed(&key).expect("cert");
            std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).expect("write");
            std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).expect("write");
        }
        Pki { dir }
    }

    fn server(&self, cert: &str, provider: Provider) -> Arc<rustls::ServerConfig> {
        let path = |ext: &str| self.dir.join(format!("{cert}.{ext}")).display().to_string();
        let tls = bext_ir::Tls::new(
            vec![bext_ir::CertPair::new(None, &path("pem"), &path("key"))],
            bext_ir::Loc::default(),
        );
        let settings = Settings {
            provider,
            ..Settings::default()
        };
        let listener = bext_tls::load_with(&tls, &settings, None).expect("listener");
        listener.server_config().clone()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn client(provider: Provider, group: NamedGroup, tls12: bool, resume: bool) -> Arc<ClientConfig> {
    client_with(provider, group, tls12, resume, None)
}

fn client_with(
    provider: Provider,
    group: NamedGroup,
    tls12: bool,
    resume: bool,
    suite: Option<rustls::CipherSuite>,
) -> Arc<ClientConfig> {
    let mut crypto = provider.crypto().as_ref().clone();
    crypto.kx_groups.retain(|g| g.name() == group);
    if let Some(suite) = suite {
        crypto.cipher_suites.retain(|s| s.suite() == suite);
    }
    let crypto = Arc::new(crypto);
    let versions: &[&rustls::SupportedProtocolVersion] = match tls12 {
        true => &[&rustls::version::TLS12],
        false => &[&rustls::version::TLS13],
    };
    let mut config = ClientConfig::builder_with_provider(crypto.clone())
        .with_protocol_versions(versions)
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServer(crypto)))
        .with_no_client_auth();
    if !resume {
        config.resumption = rustls::client::Resumption::disabled();
    }
    Arc::new(config)
}

/// One measured case: server CPU ns per operation over `n` operations, or `None` if the
/// provider cannot do it.
type Case = fn(&Pki, Provider, u32) -> Option<f64>;

fn full(pki: &Pki, p: Provider, n: u32, cert: &str, group: NamedGroup, tls12: bool) -> Option<f64> {
    full_with(pki, p, n, cert, group, tls12, None)
}

fn full_with(
    pki: &Pki,
    p: Provider,
    n: u32,
    cert: &str,
    group: NamedGroup,
    tls12: bool,
    suite: Option<rustls::CipherSuite>,
) -> Option<f64> {
    if !p.crypto().kx_groups.iter().any(|g| g.name() == group) {
        return None;
    }
    let server = pki.server(cert, p);
    let client = client_with(p, group, tls12, false, suite);
    let mut total = 0;
    for _ in 0..n {
        let (spent, server, _) = handshake(&server, &client);
        assert_eq!(server.handshake_kind(), Some(HandshakeKind::Full));
        total += spent;
    }
    Some(total as f64 / f64::from(n))
}

fn resumed(pki: &Pki, p: Provider, n: u32, tls12: bool) -> Option<f64> {
    let server = pki.server("ecdsa", p);
    let client = client(p, NamedGroup::X25519, tls12, true);
    handshake(&server, &client);
    let mut total = 0;
    for _ in 0..n {
        let (spent, server, _) = handshake(&server, &client);
        assert_eq!(server.handshake_kind(), Some(HandshakeKind::Resumed));
        total += spent;
    }
    Some(total as f64 / f64::from(n))
}

fn record(pki: &Pki, p: Provider, n: u32) -> Option<f64> {
    let server = pki.server("ecdsa", p);
    let (_, mut server, _) = handshake(&server, &client(p, NamedGroup::X25519, false, false));
    let body = [0x42u8; 1024];
    let mut out = Vec::with_capacity(2048);
    let t0 = cpu_ns();
    for _ in 0..n {
        server.writer().write_all(&body).expect("write");
        out.clear();
        server.write_tls(&mut out).expect("write_tls");
    }
    Some((cpu_ns() - t0) as f64 / f64::from(n))
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map_or(7, |r| r.parse().expect("ROUNDS is a number"));
    let pki = Pki::new();
    let t0 = cpu_ns();
    for _ in 0..10_000 {
        std::hint::black_box(cpu_ns());
    }
    println!(
        "(one read of the CPU clock: {:.2} µs; a handshake reads it 2 to 8 times)",
        (cpu_ns() - t0) as f64 / 10_000_000.0
    );
    let cases: [(&str, u32, Case); 8] = [
        ("full TLS 1.3, ECDSA P-256, X25519", 400, |k, p, n| {
            full(k, p, n, "ecdsa", NamedGroup::X25519, false)
        }),
        ("  same, TLS13_AES_128_GCM_SHA256", 400, |k, p, n| {
            let suite = Some(rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
            full_with(k, p, n, "ecdsa", NamedGroup::X25519, false, suite)
        }),
        ("full TLS 1.3, RSA-2048, X25519", 100, |k, p, n| {
            full(k, p, n, "rsa", NamedGroup::X25519, false)
        }),
        (
            "full TLS 1.3, ECDSA P-256, X25519MLKEM768",
            400,
            |k, p, n| full(k, p, n, "ecdsa", NamedGroup::X25519MLKEM768, false),
        ),
        ("full TLS 1.2, ECDSA P-256, X25519", 400, |k, p, n| {
            full(k, p, n, "ecdsa", NamedGroup::X25519, true)
        }),
        ("resumed TLS 1.3 (ticket, X25519)", 400, |k, p, n| {
            resumed(k, p, n, false)
        }),
        ("resumed TLS 1.2 (ticket)", 400, |k, p, n| {
            resumed(k, p, n, true)
        }),
        ("1 KB record encrypt (AES-256-GCM)", 20_000, record),
    ];
    let providers = [Provider::AwsLcRs, Provider::Ring];
    println!("server CPU per operation, median of {rounds} interleaved rounds (µs; [min–max])");
    println!("{:<44} {:>24} {:>24}", "", "aws-lc-rs", "ring");
    for (name, n, case) in cases {
        // Warm up both providers once, then alternate.
        for p in providers {
            case(&pki, p, n / 10 + 1);
        }
        let mut samples: Vec<Vec<f64>> = vec![Vec::new(); providers.len()];
        for _ in 0..rounds {
            for (i, p) in providers.iter().enumerate() {
                if let Some(ns) = case(&pki, *p, n) {
                    samples[i].push(ns / 1000.0);
                }
            }
        }
        let cells: Vec<String> = samples
            .iter_mut()
            .map(|s| {
                if s.is_empty() {
                    return "not offered".to_owned();
                }
                s.sort_by(f64::total_cmp);
                format!("{:.2} [{:.2}–{:.2}]", s[s.len() / 2], s[0], s[s.len() - 1])
            })
            .collect();
        println!("{name:<44} {:>24} {:>24}", cells[0], cells[1]);
    }
}
