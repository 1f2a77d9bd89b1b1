//! What `bext check` reports about certificates, keys and the files around them.
//!
//! Every finding has a stable code (E07xx, listed in docs/tls.md and docs/diagnostics.md) and
//! the location of the `tls` block it comes from. The IR keeps one location per `tls` block,
//! not per `cert` line, so the error names the file and the certificate's position in the block
//! as well.

use bext_ir::Loc;

/// The E07xx codes. A code never changes meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// A certificate, key, OCSP or CA file (of a listener or an upstream server) does not exist.
    MissingFile,
    /// A certificate file cannot be read, or holds no certificate that parses.
    BadCertificate,
    /// A key file cannot be read, holds no private key, or a key of a kind not supported.
    BadKey,
    /// The private key does not belong to the certificate.
    KeyMismatch,
    /// The certificate's `notAfter` has passed.
    Expired,
    /// The certificate's `notBefore` is still to come.
    NotYetValid,
    /// An `sni` name is not among the certificate's subjectAltName DNS names.
    SniNotCovered,
    /// Two `cert` lines of one `tls` block have the same `sni`.
    DuplicateSni,
    /// An OCSP response file cannot be read or is not a successful OCSP response.
    BadOcsp,
    /// The client-certificate CA file cannot be read or holds no usable CA certificate.
    BadClientCa,
    /// An ALPN protocol name is empty or longer than 255 bytes.
    BadAlpn,
    /// The system's random source failed while making session ticket keys.
    TicketKeys,
    /// An upstream server's CA file cannot be read or holds no usable CA certificate, or no
    /// system trust store was found.
    BadUpstreamCa,
    /// An upstream server's `sni` name (or its host, without `sni`) is no name TLS can send
    /// and verify.
    BadServerName,
}

impl Code {
    /// Every code, in number order.
    pub const ALL: [Code; 14] = [
        Code::MissingFile,
        Code::BadCertificate,
        Code::BadKey,
        Code::KeyMismatch,
        Code::Expired,
        Code::NotYetValid,
        Code::SniNotCovered,
        Code::DuplicateSni,
        Code::BadOcsp,
        Code::BadClientCa,
        Code::BadAlpn,
        Code::TicketKeys,
        Code::BadUpstreamCa,
        Code::BadServerName,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Code::MissingFile => "E0701",
            Code::BadCertificate => "E0702",
            Code::BadKey => "E0703",
            Code::KeyMismatch => "E0704",
            Code::Expired => "E0705",
            Code::NotYetValid => "E0706",
            Code::SniNotCovered => "E0707",
            Code::DuplicateSni => "E0708",
            Code::BadOcsp => "E0709",
            Code::BadClientCa => "E0710",
            Code::BadAlpn => "E0711",
            Code::TicketKeys => "E0712",
            Code::BadUpstreamCa => "E0713",
            Code::BadServerName => "E0714",
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finding, located at the `tls` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsError {
    pub code: Code,
    /// The `tls` block. (Its `PartialEq` ignores locations, as everywhere in the IR.)
    pub at: Loc,
    /// The position of the `cert` line in the block (0-based), when the finding is about one.
    pub cert: Option<usize>,
    /// The file concerned, as written in the configuration.
    pub file: Option<String>,
    pub message: String,
    pub help: Option<String>,
}

impl TlsError {
    pub(crate) fn new(code: Code, at: &Loc, message: impl Into<String>) -> Self {
        TlsError {
            code,
            at: at.clone(),
            cert: None,
            file: None,
            message: message.into(),
            help: None,
        }
    }

    pub(crate) fn cert(mut self, index: usize) -> Self {
        self.cert = Some(index);
        self
    }

    pub(crate) fn file(mut self, path: &str) -> Self {
        self.file = Some(path.to_owned());
        self
    }

    pub(crate) fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "error[{}]: {}", self.code, self.message)?;
        write!(f, "\n --> {}", self.at)?;
        if let Some(i) = self.cert {
            write!(f, " (cert {} of the tls block)", i + 1)?;
        }
        if let Some(help) = &self.help {
            write!(f, "\n  = help: {help}")?;
        }
        Ok(())
    }
}

impl std::error::Error for TlsError {}
