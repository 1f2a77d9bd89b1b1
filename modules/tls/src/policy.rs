//! The TLS policy: the crypto provider, the protocol versions, cipher suites and key exchange
//! groups every listener offers. docs/tls.md states it for operators and says why.
//!
//! - TLS 1.3 and TLS 1.2; nothing older.
//! - AEAD suites with forward secrecy only: AES-GCM and ChaCha20-Poly1305, with ECDHE in
//!   TLS 1.2. (rustls implements no CBC suite and no RSA key exchange; the list is explicit
//!   anyway, so a future provider cannot widen it unnoticed.) The client's order decides
//!   among them, as the client knows whether it has AES instructions.
//! - Key exchange: the hybrid X25519MLKEM768 where the provider has it, then X25519, P-256,
//!   P-384.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::ProducesTickets;
use rustls::{CipherSuite, NamedGroup};

/// The suites offered, in preference order.
pub const CIPHER_SUITES: [CipherSuite; 9] = [
    CipherSuite::TLS13_AES_256_GCM_SHA384,
    CipherSuite::TLS13_AES_128_GCM_SHA256,
    CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
    CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
];

/// The key exchange groups offered, in preference order; a group the provider lacks is left
/// out (ring has no ML-KEM).
pub const KX_GROUPS: [NamedGroup; 4] = [
    NamedGroup::X25519MLKEM768,
    NamedGroup::X25519,
    NamedGroup::secp256r1,
    NamedGroup::secp384r1,
];

/// The protocol versions offered.
pub static VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// A crypto provider bext can be built with. docs/tls.md has the measurements that made
/// aws-lc-rs the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    #[cfg(feature = "aws-lc-rs")]
    AwsLcRs,
    #[cfg(feature = "ring")]
    Ring,
}

#[cfg(not(any(feature = "aws-lc-rs", feature = "ring")))]
compile_error!("bext-tls needs a crypto provider: enable the `aws-lc-rs` or the `ring` feature");

impl Default for Provider {
    fn default() -> Self {
        #[cfg(feature = "aws-lc-rs")]
        return Provider::AwsLcRs;
        #[cfg(not(feature = "aws-lc-rs"))]
        return Provider::Ring;
    }
}

impl Provider {
    pub fn name(self) -> &'static str {
        match self {
            #[cfg(feature = "aws-lc-rs")]
            Provider::AwsLcRs => "aws-lc-rs",
            #[cfg(feature = "ring")]
            Provider::Ring => "ring",
        }
    }

    /// The provider's own defaults, before the policy.
    pub fn unrestricted(self) -> CryptoProvider {
        match self {
            #[cfg(feature = "aws-lc-rs")]
            Provider::AwsLcRs => rustls::crypto::aws_lc_rs::default_provider(),
            #[cfg(feature = "ring")]
            // rustls marks ring deprecated for its lack of ML-KEM; it is kept to compare.
            #[allow(deprecated)]
            Provider::Ring => rustls::crypto::ring::default_provider(),
        }
    }

    /// The provider with bext's policy applied: the suites and groups above, in that order.
    pub fn crypto(self) -> Arc<CryptoProvider> {
        Arc::new(restrict(self.unrestricted()))
    }

    /// A ticket key rotator: AES-256-CBC + HMAC-SHA256 tickets (RFC 5077 §4), a new key every
    /// 6 hours, a ticket accepted until the key after its own is retired (up to 12 hours).
    pub fn ticketer(self) -> Result<Arc<dyn ProducesTickets>, rustls::Error> {
        match self {
            #[cfg(feature = "aws-lc-rs")]
            Provider::AwsLcRs => rustls::crypto::aws_lc_rs::Ticketer::new(),
            #[cfg(feature = "ring")]
            Provider::Ring => rustls::crypto::ring::Ticketer::new(),
        }
    }
}

/// Keeps the policy's suites and groups of `provider`, in the policy's order.
pub fn restrict(mut provider: CryptoProvider) -> CryptoProvider {
    let suites = std::mem::take(&mut provider.cipher_suites);
    provider.cipher_suites = CIPHER_SUITES
        .iter()
        .filter_map(|want| suites.iter().find(|s| s.suite() == *want).copied())
        .collect();
    let groups = std::mem::take(&mut provider.kx_groups);
    provider.kx_groups = KX_GROUPS
        .iter()
        .filter_map(|want| groups.iter().find(|g| g.name() == *want).copied())
        .collect();
    provider
}
