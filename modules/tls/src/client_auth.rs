//! Client certificates: the verifier a listener asks for them with, and the verified identity
//! routing conditions and the upstream header read.
//!
//! The chain is verified by webpki against the listener's CA file during the handshake; what
//! this module reads afterwards comes from a certificate that verification already accepted.

use std::sync::Arc;

use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;

use crate::der;

/// Client-certificate authentication of one listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAuth {
    /// PEM file of the CA certificates client certificates must chain to.
    pub ca: String,
    /// `true`: a handshake without a client certificate fails. `false`: a client may send
    /// none (the request then has no identity); one it sends must verify.
    pub required: bool,
}

/// Builds the verifier; the error is the reason, for E0710.
pub(crate) fn verifier(
    roots: RootCertStore,
    required: bool,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, String> {
    let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
    let builder = if required {
        builder
    } else {
        builder.allow_unauthenticated()
    };
    builder.build().map_err(|e| e.to_string())
}

/// The verified identity of a client certificate.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeerIdentity {
    /// The subject's common name.
    pub common_name: Option<String>,
    /// The subjectAltName DNS names.
    pub dns_names: Vec<String>,
}

impl PeerIdentity {
    /// The identity of the end-entity certificate of a verified chain; `None` when the client
    /// sent no certificate.
    pub fn of(conn: &rustls::ServerConnection) -> Option<PeerIdentity> {
        let cert = conn.peer_certificates()?.first()?;
        PeerIdentity::from_der(cert)
    }

    /// The identity in a DER certificate, `None` if it cannot be read.
    pub fn from_der(cert: &[u8]) -> Option<PeerIdentity> {
        let facts = der::certificate(cert).ok()?;
        Some(PeerIdentity {
            common_name: facts.common_name,
            dns_names: facts.dns_names,
        })
    }

    /// A header value naming the identity for the upstream, in the manner of the
    /// `X-Forwarded-Client-Cert` element fields: `Subject="CN=alice";DNS=a.example;DNS=b.example`.
    /// Quotes and backslashes in the name are escaped and control characters dropped, so the
    /// value can never split a header.
    pub fn header_value(&self) -> String {
        let mut out = String::new();
        if let Some(cn) = &self.common_name {
            out.push_str("Subject=\"CN=");
            for c in cn.chars().filter(|c| !c.is_control()) {
                if c == '"' || c == '\\' {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('"');
        }
        for name in &self.dns_names {
            if !out.is_empty() {
                out.push(';');
            }
            out.push_str("DNS=");
            // DNS names are ASCII (the reader refuses others); keep only what a name may hold.
            out.extend(
                name.chars()
                    .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '*' | '_')),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_value_cannot_split_a_header() {
        let id = PeerIdentity {
            common_name: Some("evil\"\r\nX-Admin: 1\\".into()),
            dns_names: vec!["a.example".into(), "b.example;x=\r\n".into()],
        };
        assert_eq!(
            id.header_value(),
            r#"Subject="CN=evil\"X-Admin: 1\\";DNS=a.example;DNS=b.examplex"#
        );
        assert_eq!(PeerIdentity::default().header_value(), "");
    }
}
