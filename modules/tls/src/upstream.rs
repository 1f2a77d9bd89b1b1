//! TLS to upstream servers: `server HOST:PORT tls [sni NAME] [ca FILE]`.
//!
//! Each server line with `tls` gets an [`UpstreamTls`]: a rustls client configuration and the
//! name the server's certificate is verified against. Verification is always on: against the
//! CA certificates of the `ca` file, or the system's trust store (the distribution's PEM
//! bundle, read with the same PEM parser as every other file here, so no trust-store crate is
//! linked). One configuration is built per CA file and shared by the servers that name it, so
//! sessions to one server resume on every core (rustls keeps them per server name in a small
//! locked cache, touched once per handshake, never per request).
//!
//! The engine drives the `rustls::ClientConnection`s; this module does no I/O on connections.

// Errors are made once per bad server line when a configuration is loaded.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use bext_ir::Loc;
use rustls::client::Resumption;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};

use crate::error::{Code, TlsError};
use crate::policy::{Provider, VERSIONS};

/// Where the system's trust store is looked for, in order (Debian and its derivatives, then
/// Red Hat and its derivatives, then Alpine and the BSDs).
pub const SYSTEM_CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// Sessions remembered per client configuration, for resumption to upstream servers.
const UPSTREAM_SESSIONS: usize = 1024;

/// TLS to one upstream server.
#[derive(Clone)]
pub struct UpstreamTls {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
    id: u64,
}

impl UpstreamTls {
    /// The client configuration (policy, roots, ALPN `http/1.1`, resumption).
    pub fn config(&self) -> &Arc<ClientConfig> {
        &self.config
    }

    /// The name sent as SNI (a DNS name) and verified in the certificate.
    pub fn name(&self) -> &ServerName<'static> {
        &self.name
    }

    /// Tells apart what a connection was verified for (the name and the CA file, never 0): a
    /// pooled connection is reused only for a server with the same identity, so one verified
    /// under another name or trust (before a reload) is never reused.
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl std::fmt::Debug for UpstreamTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamTls")
            .field("name", &self.name)
            .finish()
    }
}

impl PartialEq for UpstreamTls {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && Arc::ptr_eq(&self.config, &other.config)
    }
}

impl Eq for UpstreamTls {}

/// The TLS of every server of every upstream of `config`, indexed like `config.upstreams` and
/// their `servers` (`None` for a server without `tls`). Every problem is reported, each at its
/// server line: a CA file that does not exist (E0701) or holds no usable CA certificate
/// (E0713), no system trust store (E0713), a host that is no server name (E0714).
pub fn load_upstreams(
    config: &bext_ir::Config,
) -> Result<Vec<Vec<Option<UpstreamTls>>>, Vec<TlsError>> {
    let provider = Provider::default();
    let mut built: Vec<(Option<String>, Arc<ClientConfig>)> = Vec::new();
    let mut errors = Vec::new();
    let mut out = Vec::with_capacity(config.upstreams.len());
    for u in &config.upstreams {
        let mut servers = Vec::with_capacity(u.servers.len());
        for s in &u.servers {
            let Some(tls) = &s.tls else {
                servers.push(None);
                continue;
            };
            let name = server_name(tls.sni.as_deref().unwrap_or(s.host()), &s.at);
            let config = match built.iter().find(|(ca, _)| *ca == tls.ca) {
                Some((_, c)) => Ok(c.clone()),
                None => client_config(tls.ca.as_deref(), provider, &s.at)
                    .inspect(|c| built.push((tls.ca.clone(), c.clone()))),
            };
            match (config, name) {
                (Ok(config), Ok(name)) => {
                    let id = identity(&name, tls.ca.as_deref());
                    servers.push(Some(UpstreamTls { config, name, id }))
                }
                (c, n) => {
                    errors.extend(c.err());
                    errors.extend(n.err());
                    servers.push(None);
                }
            }
        }
        out.push(servers);
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn identity(name: &ServerName<'_>, ca: Option<&str>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    name.to_str().hash(&mut h);
    ca.hash(&mut h);
    h.finish() | 1
}

/// The name a server's certificate is verified against: a DNS name, or an IP address (then
/// no SNI is sent and the certificate must list the address).
fn server_name(name: &str, at: &Loc) -> Result<ServerName<'static>, TlsError> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    ServerName::try_from(name.clone()).map_err(|_| {
        TlsError::new(
            Code::BadServerName,
            at,
            format!("`{name}` is not a server name TLS can verify"),
        )
        .help("give the name the server's certificate is for: `tls sni app.internal`")
    })
}

/// A client configuration verifying against the CAs of `ca`, or the system trust store.
pub fn client_config(
    ca: Option<&str>,
    provider: Provider,
    at: &Loc,
) -> Result<Arc<ClientConfig>, TlsError> {
    let roots = match ca {
        Some(path) => crate::load::ca_roots(path, at, Code::BadUpstreamCa, "upstream CA file")?,
        None => system_roots(at)?,
    };
    let mut config = ClientConfig::builder_with_provider(provider.crypto())
        .with_protocol_versions(VERSIONS)
        .map_err(|e| TlsError::new(Code::BadUpstreamCa, at, e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.resumption = Resumption::in_memory_sessions(UPSTREAM_SESSIONS);
    Ok(Arc::new(config))
}

/// The first system bundle that exists, its certificates that parse (a distribution's bundle
/// may hold a few that webpki cannot read; they are left out, as other TLS clients do).
fn system_roots(at: &Loc) -> Result<RootCertStore, TlsError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    for path in SYSTEM_CA_BUNDLES {
        let Ok(pem) = std::fs::read(path) else {
            continue;
        };
        let certs = CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok);
        let mut roots = RootCertStore::empty();
        let (added, _) = roots.add_parsable_certificates(certs);
        if added > 0 {
            return Ok(roots);
        }
    }
    Err(TlsError::new(
        Code::BadUpstreamCa,
        at,
        format!(
            "no system trust store to verify the server with (looked for {})",
            SYSTEM_CA_BUNDLES.join(", ")
        ),
    )
    .help("install the `ca-certificates` package, or name the CA with `tls ca \"ca.pem\"`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_name_is_the_host_and_addresses_are_names_too() {
        let at = Loc::default();
        assert_eq!(
            server_name("App.Internal.", &at).unwrap(),
            ServerName::try_from("app.internal").unwrap()
        );
        assert!(matches!(
            server_name("127.0.0.1", &at).unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("::1", &at).unwrap(),
            ServerName::IpAddress(_)
        ));
        let e = server_name("bad name", &at).unwrap_err();
        assert_eq!(e.code, Code::BadServerName);
    }

    #[test]
    fn a_missing_ca_file_is_e0701_and_an_empty_one_e0713() {
        let at = Loc::default();
        let e = client_config(Some("/nonexistent/ca.pem"), Provider::default(), &at).unwrap_err();
        assert_eq!(e.code, Code::MissingFile);
        let dir = std::env::temp_dir().join(format!("bext-up-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        let e = client_config(empty.to_str(), Provider::default(), &at).unwrap_err();
        assert_eq!(e.code, Code::BadUpstreamCa);
        assert!(
            e.message.contains("holds no CA certificate"),
            "{}",
            e.message
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
