//! What the engine counts and logs when a handshake fails, and how it recognizes a plain HTTP
//! request sent to a TLS port.

use rustls::{Error, PeerIncompatible};

/// The reason class of a failed handshake: a short, stable label for a metric and the log.
pub fn failure_class(err: &Error) -> &'static str {
    match err {
        Error::PeerIncompatible(p) => match p {
            PeerIncompatible::NoCipherSuitesInCommon => "no_shared_cipher",
            PeerIncompatible::NoKxGroupsInCommon => "no_shared_group",
            PeerIncompatible::NoSignatureSchemesInCommon => "no_shared_signature",
            PeerIncompatible::SupportedVersionsExtensionRequired
            | PeerIncompatible::Tls12NotOffered
            | PeerIncompatible::Tls12NotOfferedOrEnabled => "protocol_version",
            _ => "incompatible",
        },
        Error::NoApplicationProtocol => "no_shared_alpn",
        Error::NoCertificatesPresented => "client_cert_missing",
        Error::InvalidCertificate(_) => "client_cert_invalid",
        Error::AlertReceived(_) => "peer_alert",
        Error::InvalidMessage(_)
        | Error::InappropriateMessage { .. }
        | Error::InappropriateHandshakeMessage { .. }
        | Error::PeerMisbehaved(_)
        | Error::PeerSentOversizedRecord => "malformed",
        Error::DecryptError => "decrypt",
        _ => "other",
    }
}

/// Whether the first bytes of a connection to a TLS port are a plain HTTP request: a TLS
/// connection opens with a handshake record (0x16), an HTTP/1 request with its method, an
/// upper-case token. The engine answers the latter with a 400 that says so, as nginx does
/// ("The plain HTTP request was sent to HTTPS port"), instead of a TLS alert the client cannot
/// read.
pub fn is_plain_http(first: &[u8]) -> bool {
    let method = first.iter().take_while(|b| b.is_ascii_uppercase()).count();
    method > 0 && (first.len() == method || first[method] == b' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_or_tls() {
        for (first, plain) in [
            (&b"GET / HTTP/1.1\r\n"[..], true),
            (b"OPTIONS * HTTP/1.1", true),
            (b"PO", true),
            (b"\x16\x03\x01\x02\x00\x01", false),
            (b"", false),
            (b"get / HTTP/1.1", false),
            (b"GET/", false),
        ] {
            assert_eq!(is_plain_http(first), plain, "{first:?}");
        }
    }

    #[test]
    fn classes() {
        for (err, class) in [
            (
                Error::PeerIncompatible(PeerIncompatible::NoCipherSuitesInCommon),
                "no_shared_cipher",
            ),
            (Error::NoApplicationProtocol, "no_shared_alpn"),
            (Error::NoCertificatesPresented, "client_cert_missing"),
            (Error::General("x".into()), "other"),
        ] {
            assert_eq!(failure_class(&err), class);
        }
    }
}
