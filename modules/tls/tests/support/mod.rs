//! Certificates made at test time, and handshakes in memory between a rustls client and a
//! bext-tls listener.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bext_tls::rustls::client::ClientSessionMemoryCache;
use bext_tls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use bext_tls::rustls::{
    self, ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection,
};
use rcgen::{
    date_time_ymd, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, SignatureAlgorithm,
};

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("bext-tls-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }

    pub fn write(&self, name: &str, data: impl AsRef<[u8]>) -> String {
        let path = self.path(name);
        std::fs::write(&path, data).expect("write");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How a leaf certificate is made.
pub struct Leaf<'a> {
    pub names: &'a [&'a str],
    pub alg: &'static SignatureAlgorithm,
    /// (year, month, day)
    pub not_before: (i32, u8, u8),
    pub not_after: (i32, u8, u8),
    pub common_name: Option<&'a str>,
    pub client: bool,
}

impl Default for Leaf<'_> {
    fn default() -> Self {
        Leaf {
            names: &[],
            alg: &rcgen::PKCS_ECDSA_P256_SHA256,
            not_before: (2020, 1, 1),
            not_after: (2090, 1, 1),
            common_name: None,
            client: false,
        }
    }
}

/// A test CA writing its leaves into a temporary directory.
pub struct Pki {
    pub dir: TempDir,
    ca: rcgen::Certificate,
    ca_key: KeyPair,
    /// The CA certificate as PEM, in `dir`.
    pub ca_file: String,
}

impl Pki {
    pub fn new(tag: &str) -> Pki {
        let dir = TempDir::new(tag);
        let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, format!("bext test CA {tag}"));
        params.not_before = date_time_ymd(2020, 1, 1);
        params.not_after = date_time_ymd(2090, 1, 1);
        let ca = params.self_signed(&ca_key).expect("CA cert");
        let ca_file = dir.write("ca.pem", ca.pem());
        Pki {
            dir,
            ca,
            ca_key,
            ca_file,
        }
    }

    /// Makes a leaf; returns (cert path, key path) under `file`.pem / `file`.key.
    pub fn leaf(&self, file: &str, leaf: Leaf<'_>) -> (String, String) {
        let key = KeyPair::generate_for(leaf.alg).expect("leaf key");
        let cert = self.sign(&key, &leaf);
        let cert_path = self.dir.write(&format!("{file}.pem"), cert.pem());
        let key_path = self.dir.write(&format!("{file}.key"), key.serialize_pem());
        (cert_path, key_path)
    }

    /// A leaf with its chain and key in memory, for a client certificate.
    pub fn client_identity(
        &self,
        leaf: Leaf<'_>,
    ) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let key = KeyPair::generate_for(leaf.alg).expect("client key");
        let cert = self.sign(
            &key,
            &Leaf {
                client: true,
                ..leaf
            },
        );
        let der = PrivateKeyDer::try_from(key.serialize_der()).expect("client key der");
        (vec![cert.der().clone()], der)
    }

    fn sign(&self, key: &KeyPair, leaf: &Leaf<'_>) -> rcgen::Certificate {
        let names: Vec<String> = leaf.names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("leaf params");
        let (y, m, d) = leaf.not_before;
        params.not_before = date_time_ymd(y, m, d);
        let (y, m, d) = leaf.not_after;
        params.not_after = date_time_ymd(y, m, d);
        params.distinguished_name = DistinguishedName::new();
        if let Some(cn) = leaf.common_name {
            params.distinguished_name.push(DnType::CommonName, cn);
        }
        params.extended_key_usages = vec![if leaf.client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        params
            .signed_by(key, &self.ca, &self.ca_key)
            .expect("leaf cert")
    }

    pub fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.der().clone()).expect("CA root");
        roots
    }

    /// A client trusting this CA, TLS 1.3 and 1.2, default suites, resumption on.
    pub fn client(&self) -> ClientConfig {
        self.client_for(&[&rustls::version::TLS13, &rustls::version::TLS12])
    }

    pub fn client_for(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> ClientConfig {
        ClientConfig::builder_with_provider(Arc::new(bext_tls::Provider::default().unrestricted()))
            .with_protocol_versions(versions)
            .expect("client versions")
            .with_root_certificates(self.roots())
            .with_no_client_auth()
    }
}

/// A `tls` block of the IR.
pub fn tls(pairs: &[(Option<&str>, &str, &str)]) -> bext_ir::Tls {
    bext_ir::Tls::new(
        pairs
            .iter()
            .map(|(sni, cert, key)| bext_ir::CertPair::new(*sni, cert, key))
            .collect(),
        bext_ir::Loc {
            file: "site.bext".into(),
            line: 3,
            col: 15,
        },
    )
}

/// Runs a handshake in memory; the first error of either side ends it.
pub fn handshake(
    server: &Arc<ServerConfig>,
    client: &Arc<ClientConfig>,
    sni: &str,
) -> Result<(ServerConnection, ClientConnection), rustls::Error> {
    let name = ServerName::try_from(sni.to_owned()).expect("server name");
    let client = ClientConnection::new(client.clone(), name)?;
    handshake_with(server, client)
}

pub fn handshake_with(
    server: &Arc<ServerConfig>,
    mut client: ClientConnection,
) -> Result<(ServerConnection, ClientConnection), rustls::Error> {
    let mut server = ServerConnection::new(server.clone())?;
    let mut buf = Vec::new();
    for _ in 0..20 {
        buf.clear();
        while client.wants_write() {
            client.write_tls(&mut buf).expect("client write");
        }
        let mut input = &buf[..];
        let mut failed = None;
        while !input.is_empty() && failed.is_none() {
            server.read_tls(&mut input).expect("server read");
            failed = server.process_new_packets().err();
        }
        buf.clear();
        while server.wants_write() {
            server.write_tls(&mut buf).expect("server write");
        }
        let mut input = &buf[..];
        while !input.is_empty() {
            client.read_tls(&mut input).expect("client read");
            let result = client.process_new_packets();
            // The server's reason first: the client only saw its alert.
            if let Some(e) = failed {
                return Err(e);
            }
            result?;
        }
        if let Some(e) = failed {
            return Err(e);
        }
        if !client.is_handshaking() && !server.is_handshaking() && !client.wants_write() {
            return Ok((server, client));
        }
    }
    panic!("handshake did not finish");
}

/// The first DNS name of the certificate the client was served.
pub fn served_name(client: &ClientConnection) -> String {
    let cert = &client.peer_certificates().expect("server certificate")[0];
    bext_tls::certificate_facts(cert)
        .expect("certificate")
        .dns_names[0]
        .clone()
}

/// A fresh client session cache, so one test's sessions do not leak into another.
pub fn with_fresh_sessions(mut config: ClientConfig) -> Arc<ClientConfig> {
    config.resumption =
        rustls::client::Resumption::store(Arc::new(ClientSessionMemoryCache::new(64)));
    Arc::new(config)
}

pub fn exists(p: &str) -> bool {
    Path::new(p).exists()
}
