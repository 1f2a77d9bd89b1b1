//! bext-tls: TLS termination for bext's listeners, without the runtime.
//!
//! A `listen … tls { cert … key … [sni NAME] }` block becomes a [`Listener`]: a rustls
//! `ServerConfig` shared by every core, the certificate chosen per connection by SNI, and the
//! session resumption state a reload carries over. The engine's client-stream layer drives
//! `rustls::ServerConnection`s made from [`Listener::server_config`]; this crate does no I/O
//! on connections.
//!
//! - [`load`] / [`load_with`] read and check every file of the block (what `bext check`
//!   reports, each problem an E07xx [`TlsError`] at the block's location) and build the config.
//! - Certificates are chosen by server name (exact names, then one-label wildcards, then the
//!   default), and [`Listener::site_for`] answers the same question for an HTTP Host so the
//!   engine can refuse domain fronting with 421 (`names.rs`).
//! - `server … tls` lines of upstreams become [`UpstreamTls`] client configurations
//!   ([`load_upstreams`], `upstream.rs`): verification always on, ALPN `http/1.1`, resumption.
//! - The policy (versions, suites, groups, provider) lives in `policy.rs`; resumption in
//!   `resume.rs`; client certificates in `client_auth.rs`; the kTLS probe in `ktls.rs`, the
//!   only unsafe code; handshake failure classes and plain-HTTP detection in `failure.rs`.
//!
//! docs/tls.md is the operator's page: the policy, the codes, the measurements behind the
//! choice of provider.
#![deny(unsafe_code)]

mod client_auth;
mod der;
mod error;
mod failure;
mod ktls;
mod load;
mod names;
mod policy;
mod resume;
mod upstream;

use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

pub use client_auth::{ClientAuth, PeerIdentity};
pub use der::{certificate as certificate_facts, CertFacts, DerError};
pub use error::{Code, TlsError};
pub use failure::{failure_class, is_plain_http};
pub use ktls::{probe as ktls_probe, Ktls};
pub use load::Ocsp;
pub use names::covers;
pub use policy::{restrict, Provider, CIPHER_SUITES, KX_GROUPS, VERSIONS};
pub use resume::{Resumption, TicketKeys};
pub use rustls;
pub use upstream::{client_config, load_upstreams, UpstreamTls, SYSTEM_CA_BUNDLES};

/// What a listener's TLS needs beyond the `tls` block of the IR (which holds only the
/// certificates today); every field has the default bext uses when the configuration is silent.
#[derive(Debug, Clone)]
pub struct Settings {
    /// ALPN protocols offered, in preference order. Only what the listener serves: `h2` and
    /// `h3` are added when those protocols are.
    pub alpn: Vec<Vec<u8>>,
    pub client_auth: Option<ClientAuth>,
    /// Stateless session tickets (TLS 1.2 and 1.3). Off: sessions resume from the cache only.
    pub tickets: bool,
    /// Sessions the stateful cache holds (shared by all cores).
    pub session_cache: usize,
    /// Per `cert` line, by position; a missing entry is [`Ocsp::NextToCert`].
    pub ocsp: Vec<Ocsp>,
    /// Let the engine take the traffic secrets after the handshake to hand them to kTLS.
    pub ktls: bool,
    pub provider: Provider,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            alpn: vec![b"http/1.1".to_vec()],
            client_auth: None,
            tickets: true,
            session_cache: 16_384,
            ocsp: Vec::new(),
            ktls: false,
            provider: Provider::default(),
        }
    }
}

impl Settings {
    /// The settings a `tls` block of the IR writes (`alpn`, `client_auth`, `tickets`,
    /// `session_cache`, `ocsp` per cert); the others keep their defaults.
    pub fn of(tls: &bext_ir::Tls) -> Settings {
        let d = Settings::default();
        Settings {
            alpn: if tls.alpn.is_empty() {
                d.alpn
            } else {
                tls.alpn.iter().map(|p| p.as_bytes().to_vec()).collect()
            },
            client_auth: tls.client_auth.as_ref().map(|c| ClientAuth {
                ca: c.ca.clone(),
                required: c.required,
            }),
            tickets: tls.tickets,
            session_cache: tls.session_cache.map_or(d.session_cache, |n| n as usize),
            ocsp: tls
                .certs
                .iter()
                .map(|c| match &c.ocsp {
                    bext_ir::Stapling::Auto => Ocsp::NextToCert,
                    bext_ir::Stapling::File(f) => Ocsp::File(f.clone()),
                    bext_ir::Stapling::Off => Ocsp::Off,
                })
                .collect(),
            ..d
        }
    }
}

/// A certificate of a listener, as /status shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    pub sni: Option<String>,
    pub cert_file: String,
    pub dns_names: Vec<String>,
    /// Unix seconds.
    pub not_after: i64,
    /// The OCSP response file stapled, if any.
    pub ocsp_file: Option<String>,
}

/// Chooses the certificate of a connection by its server name.
#[derive(Debug)]
struct Resolver {
    names: names::NameTable,
    keys: Vec<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.keys
            .get(self.names.lookup(hello.server_name()))
            .cloned()
    }
}

/// The TLS side of one `listen … tls { … }`: immutable once built, shared by all cores.
#[derive(Debug, Clone)]
pub struct Listener {
    config: Arc<ServerConfig>,
    resolver: Arc<Resolver>,
    resumption: Resumption,
    certs: Vec<CertInfo>,
}

impl Listener {
    /// The config every `rustls::ServerConnection` of the listener is made from.
    pub fn server_config(&self) -> &Arc<ServerConfig> {
        &self.config
    }

    /// The index of the certificate (the `cert` line of the tls block) that serves `name`: the
    /// one chosen for a TLS server name, or the one a Host would have been served with. A
    /// request whose Host gives another index than its connection's SNI is domain fronting:
    /// answer 421 Misdirected Request. No name, or an unknown one: the default certificate.
    pub fn site_for(&self, name: Option<&str>) -> usize {
        self.resolver.names.lookup(name)
    }

    /// The resumption state, to hand to [`load_with`] when the listener is rebuilt.
    pub fn resumption(&self) -> &Resumption {
        &self.resumption
    }

    pub fn certs(&self) -> &[CertInfo] {
        &self.certs
    }
}

/// [`load_with`] with the default [`Settings`] and fresh resumption state.
pub fn load(tls: &bext_ir::Tls) -> Result<Listener, Vec<TlsError>> {
    load_with(tls, &Settings::default(), None)
}

/// Reads and checks every file of `tls` and builds the listener. `carry`: the resumption state
/// of the listener this one replaces (a reload), so that its tickets and sessions stay valid.
/// All problems are returned together.
pub fn load_with(
    tls: &bext_ir::Tls,
    settings: &Settings,
    carry: Option<&Resumption>,
) -> Result<Listener, Vec<TlsError>> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    load_at(tls, settings, carry, now)
}

/// [`load_with`] as if the time were `now` (Unix seconds): what `bext check --at` would use,
/// and how tests look at a certificate's validity from either side.
pub fn load_at(
    tls: &bext_ir::Tls,
    settings: &Settings,
    carry: Option<&Resumption>,
    now: i64,
) -> Result<Listener, Vec<TlsError>> {
    let at = &tls.at;
    let provider = settings.provider.crypto();
    let mut errors = Vec::new();

    for proto in &settings.alpn {
        if proto.is_empty() || proto.len() > 255 {
            errors.push(TlsError::new(
                Code::BadAlpn,
                at,
                format!(
                    "ALPN protocol `{}` must be 1 to 255 bytes",
                    String::from_utf8_lossy(proto)
                ),
            ));
        }
    }

    let default = tls.certs.iter().position(|c| c.sni.is_none()).unwrap_or(0);
    let mut table = names::NameTable::new(default);
    let mut loaded = Vec::with_capacity(tls.certs.len());
    for (i, pair) in tls.certs.iter().enumerate() {
        if let Some(sni) = &pair.sni {
            if let Err(first) = table.insert(sni, i) {
                errors.push(
                    TlsError::new(
                        Code::DuplicateSni,
                        at,
                        format!("server name `{sni}` is given to two certificates"),
                    )
                    .cert(i)
                    .help(format!(
                        "cert {} of the block has it already; a name selects one certificate",
                        first + 1
                    )),
                );
            }
        }
        let ocsp = settings.ocsp.get(i).cloned().unwrap_or_default();
        loaded.push(load::cert_pair(
            pair,
            i,
            &ocsp,
            at,
            &provider,
            now,
            &mut errors,
        ));
    }

    let verifier = match &settings.client_auth {
        None => None,
        Some(auth) => match load::client_roots(&auth.ca, at) {
            Ok(roots) => match client_auth::verifier(roots, auth.required, provider.clone()) {
                Ok(v) => Some(v),
                Err(why) => {
                    errors.push(
                        TlsError::new(
                            Code::BadClientCa,
                            at,
                            format!("client CA file `{}` cannot be used: {why}", auth.ca),
                        )
                        .file(&auth.ca),
                    );
                    None
                }
            },
            Err(e) => {
                errors.push(e);
                None
            }
        },
    };

    let fresh = match carry {
        Some(old) => old.carried(settings.provider, settings.tickets, settings.session_cache),
        None => Resumption::new(settings.provider, settings.tickets, settings.session_cache),
    };
    let resumption = match fresh {
        Ok(r) => r,
        Err(e) => {
            // Only a failing random source gets here.
            errors.push(TlsError::new(
                Code::TicketKeys,
                at,
                format!("session ticket keys cannot be made: {e}"),
            ));
            return Err(errors);
        }
    };
    if !errors.is_empty() {
        return Err(errors);
    }

    let mut certs = Vec::with_capacity(loaded.len());
    let mut keys = Vec::with_capacity(loaded.len());
    for (pair, l) in tls.certs.iter().zip(loaded.into_iter().flatten()) {
        certs.push(CertInfo {
            sni: pair.sni.clone(),
            cert_file: pair.cert.clone(),
            dns_names: l.facts.dns_names,
            not_after: l.facts.not_after,
            ocsp_file: l.ocsp_file,
        });
        keys.push(l.key);
    }
    let resolver = Arc::new(Resolver { names: table, keys });

    // The policy's provider always has suites for both versions, so this cannot fail.
    let builder = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(VERSIONS)
        .expect("the policy offers suites for TLS 1.2 and 1.3");
    let builder = match verifier {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(resolver.clone());
    config.alpn_protocols = settings.alpn.clone();
    config.session_storage = resumption.sessions.clone();
    if let Some(keys) = &resumption.tickets {
        config.ticketer = keys.0.clone();
    }
    config.enable_secret_extraction = settings.ktls;
    // No 0-RTT: early data can be replayed, and bext forwards requests that are not idempotent.
    config.max_early_data_size = 0;

    Ok(Listener {
        config: Arc::new(config),
        resolver,
        resumption,
        certs,
    })
}
