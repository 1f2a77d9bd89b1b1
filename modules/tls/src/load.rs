//! Reading and checking the files of a `tls` block: certificates, keys, OCSP responses and the
//! client CA. Every problem is collected, none stops the others from being found.

// Errors here are made once per bad file when a configuration is loaded, never on a
// connection: their size does not matter, their text does.
#![allow(clippy::result_large_err)]

use std::io::ErrorKind;
use std::sync::Arc;

use bext_ir::Loc;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use rustls::{InconsistentKeys, RootCertStore};

use crate::der::{self, CertFacts};
use crate::error::{Code, TlsError};
use crate::names;

/// Where the stapled OCSP response of a certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Ocsp {
    /// `CERT.ocsp` (the certificate's path with `.ocsp` appended) when that file exists.
    #[default]
    NextToCert,
    /// This file, which must exist.
    File(String),
    /// No stapling.
    Off,
}

/// A certificate and key that loaded, with what bext checked about them.
pub(crate) struct Loaded {
    pub(crate) key: Arc<CertifiedKey>,
    pub(crate) facts: CertFacts,
    pub(crate) ocsp_file: Option<String>,
}

/// Reads a file, telling a missing file (E0701) from one that cannot be read (`unreadable`).
fn read(path: &str, at: &Loc, unreadable: Code, what: &str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| {
        let code = match e.kind() {
            ErrorKind::NotFound => Code::MissingFile,
            _ => unreadable,
        };
        TlsError::new(code, at, format!("{what} `{path}` cannot be read: {e}")).file(path)
    })
}

/// Loads pair `index` of a `tls` block and checks it at time `now` (Unix seconds).
pub(crate) fn cert_pair(
    pair: &bext_ir::CertPair,
    index: usize,
    ocsp: &Ocsp,
    at: &Loc,
    provider: &CryptoProvider,
    now: i64,
    errors: &mut Vec<TlsError>,
) -> Option<Loaded> {
    let before = errors.len();
    let chain = match chain(&pair.cert, at) {
        Ok(chain) => Some(chain),
        Err(e) => {
            errors.push(e.cert(index));
            None
        }
    };
    let facts = chain.as_ref().and_then(|chain| {
        der::certificate(&chain[0])
            .map_err(|e| {
                let msg = format!("certificate `{}` cannot be parsed: {e}", pair.cert);
                errors.push(
                    TlsError::new(Code::BadCertificate, at, msg)
                        .file(&pair.cert)
                        .cert(index),
                )
            })
            .ok()
    });
    let signing_key = match key(&pair.key, at, provider) {
        Ok(key) => Some(key),
        Err(e) => {
            errors.push(e.cert(index));
            None
        }
    };
    let ocsp_response = match ocsp_file(&pair.cert, ocsp) {
        Some(file) => match ocsp_response(&file, at) {
            Ok(bytes) => Some((file, bytes)),
            Err(e) => {
                errors.push(e.cert(index));
                None
            }
        },
        None => None,
    };

    if let Some(facts) = &facts {
        let file = &pair.cert;
        if now < facts.not_before {
            let msg = format!("certificate `{file}` is not valid yet");
            errors.push(
                TlsError::new(Code::NotYetValid, at, msg)
                    .file(file)
                    .cert(index)
                    .help(format!(
                        "its validity starts at {} (UTC); check the clock or the certificate",
                        utc(facts.not_before)
                    )),
            );
        }
        if now > facts.not_after {
            let msg = format!("certificate `{file}` has expired");
            errors.push(
                TlsError::new(Code::Expired, at, msg)
                    .file(file)
                    .cert(index)
                    .help(format!(
                        "it expired at {} (UTC); renew it",
                        utc(facts.not_after)
                    )),
            );
        }
        if let Some(sni) = &pair.sni {
            if !facts.dns_names.iter().any(|san| names::covers(san, sni)) {
                let msg = format!("certificate `{file}` does not cover the server name `{sni}`");
                let names = match facts.dns_names.is_empty() {
                    true => "it has no DNS names".to_owned(),
                    false => format!("it covers {}", facts.dns_names.join(", ")),
                };
                errors.push(
                    TlsError::new(Code::SniNotCovered, at, msg)
                        .file(file)
                        .cert(index)
                        .help(names),
                );
            }
        }
    }

    let (chain, signing_key, facts) = (chain?, signing_key?, facts?);
    let mut key = CertifiedKey::new(chain, signing_key);
    // A key whose public half the provider cannot compute (`InconsistentKeys::Unknown`) is
    // left to the handshake.
    if let Err(rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch)) = key.keys_match() {
        let msg = format!(
            "key `{}` does not belong to certificate `{}`",
            pair.key, pair.cert
        );
        errors.push(
            TlsError::new(Code::KeyMismatch, at, msg)
                .file(&pair.key)
                .cert(index)
                .help("the key's public half differs from the certificate's public key"),
        );
    }
    let ocsp_file = ocsp_response.map(|(file, bytes)| {
        key.ocsp = Some(bytes);
        file
    });
    (errors.len() == before).then(|| Loaded {
        key: Arc::new(key),
        facts,
        ocsp_file,
    })
}

/// The certificate chain of a PEM file, leaf first.
fn chain(path: &str, at: &Loc) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path, at, Code::BadCertificate, "certificate")?;
    let bad = |why: String| {
        TlsError::new(
            Code::BadCertificate,
            at,
            format!("certificate `{path}` {why}"),
        )
        .file(path)
    };
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("is not valid PEM: {e}")))?;
    if chain.is_empty() {
        return Err(bad("holds no CERTIFICATE block".to_owned())
            .help("a certificate file is PEM: -----BEGIN CERTIFICATE----- ..."));
    }
    Ok(chain)
}

/// The signing key of a PEM key file (PKCS#8, PKCS#1 RSA or SEC1 EC).
fn key(
    path: &str,
    at: &Loc,
    provider: &CryptoProvider,
) -> Result<Arc<dyn rustls::sign::SigningKey>, TlsError> {
    let pem = read(path, at, Code::BadKey, "key")?;
    let bad =
        |why: String| TlsError::new(Code::BadKey, at, format!("key `{path}` {why}")).file(path);
    let der = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        bad(format!("holds no private key: {e}"))
            .help("a key file is PEM: -----BEGIN PRIVATE KEY----- (or RSA / EC PRIVATE KEY)")
    })?;
    provider
        .key_provider
        .load_private_key(der)
        .map_err(|e| bad(format!("cannot be used: {e}")))
}

/// The OCSP file to staple for `cert`, if any.
fn ocsp_file(cert: &str, ocsp: &Ocsp) -> Option<String> {
    match ocsp {
        Ocsp::Off => None,
        Ocsp::File(path) => Some(path.clone()),
        Ocsp::NextToCert => {
            let path = format!("{cert}.ocsp");
            std::path::Path::new(&path).exists().then_some(path)
        }
    }
}

fn ocsp_response(path: &str, at: &Loc) -> Result<Vec<u8>, TlsError> {
    let bytes = read(path, at, Code::BadOcsp, "OCSP response")?;
    der::ocsp_response(&bytes).map_err(|e| {
        TlsError::new(
            Code::BadOcsp,
            at,
            format!("OCSP response `{path}` cannot be stapled: {e}"),
        )
        .file(path)
        .help("the file must hold a DER OCSP response, as `openssl ocsp -respout` writes")
    })?;
    Ok(bytes)
}

/// The CA certificates of a client-certificate CA file.
pub(crate) fn client_roots(path: &str, at: &Loc) -> Result<RootCertStore, TlsError> {
    ca_roots(path, at, Code::BadClientCa, "client CA file")
}

/// The CA certificates of a PEM file: a missing file is E0701; one that cannot be read, is not
/// PEM, holds a certificate that does not parse or none at all is `code`.
pub(crate) fn ca_roots(
    path: &str,
    at: &Loc,
    code: Code,
    what: &str,
) -> Result<RootCertStore, TlsError> {
    let pem = read(path, at, code, what)?;
    let bad = |why: String| TlsError::new(code, at, format!("{what} `{path}` {why}")).file(path);
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("is not valid PEM: {e}")))?;
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(certs);
    if ignored > 0 {
        return Err(bad(format!(
            "has {ignored} certificate(s) that cannot be parsed"
        )));
    }
    if added == 0 {
        return Err(bad("holds no CA certificate".to_owned()));
    }
    Ok(roots)
}

/// `2025-01-31 12:00:00` for Unix seconds (civil_from_days, Howard Hinnant).
pub(crate) fn utc(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_text() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00");
        assert_eq!(super::utc(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(super::utc(2_147_483_648), "2038-01-19 03:14:08");
    }
}
