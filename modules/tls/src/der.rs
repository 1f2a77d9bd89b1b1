//! The few facts bext reads out of an X.509 certificate and an OCSP response, with a DER
//! reader small enough to audit at a glance.
//!
//! rustls and webpki parse certificates for the handshake but do not expose the validity period
//! or the names, and a general X.509 crate is far more than `bext check` needs: the validity
//! (`notBefore`, `notAfter`), the DNS names of the subjectAltName extension and the subject's
//! common name (for client identities). Anything the reader does not understand is an error,
//! never a guess; the handshake itself still goes through webpki.

/// What bext knows about one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFacts {
    /// `notBefore`, seconds since the Unix epoch (negative before 1970).
    pub not_before: i64,
    /// `notAfter`, seconds since the Unix epoch.
    pub not_after: i64,
    /// The `dNSName` entries of the subjectAltName extension, as written (ASCII).
    pub dns_names: Vec<String>,
    /// The first common name (CN) of the subject, if it is a string type bext can read.
    pub common_name: Option<String>,
}

/// Why a DER structure could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DerError(pub &'static str);

impl std::fmt::Display for DerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const INTEGER: u8 = 0x02;
const BOOLEAN: u8 = 0x01;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;
const ENUMERATED: u8 = 0x0a;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
/// `[0]` constructed: the version of a TBSCertificate, the responseBytes of an OCSP response.
const CONTEXT_0: u8 = 0xa0;
/// `[3]` constructed: the extensions of a TBSCertificate.
const CONTEXT_3: u8 = 0xa3;
/// `[2]` primitive inside GeneralName: dNSName.
const GENERAL_NAME_DNS: u8 = 0x82;

/// 2.5.29.17, subjectAltName.
const OID_SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];
/// 2.5.4.3, commonName.
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];

/// A cursor over DER bytes.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Reader { rest: data }
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// One tag-length-value; only the single-byte tags that certificates use.
    fn any(&mut self) -> Result<(u8, &'a [u8]), DerError> {
        let [tag, first, rest @ ..] = self.rest else {
            return Err(DerError("truncated"));
        };
        if tag & 0x1f == 0x1f {
            return Err(DerError("multi-byte tag"));
        }
        let (len, rest) = match *first {
            n if n < 0x80 => (usize::from(n), rest),
            0x81..=0x84 => {
                let n = usize::from(first & 0x7f);
                if rest.len() < n {
                    return Err(DerError("truncated length"));
                }
                let len = rest[..n]
                    .iter()
                    .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
                (len, &rest[n..])
            }
            _ => return Err(DerError("unsupported length")),
        };
        if rest.len() < len {
            return Err(DerError("truncated value"));
        }
        let (value, after) = rest.split_at(len);
        self.rest = after;
        Ok((*tag, value))
    }

    fn expect(&mut self, tag: u8, what: &'static str) -> Result<&'a [u8], DerError> {
        match self.any()? {
            (t, value) if t == tag => Ok(value),
            _ => Err(DerError(what)),
        }
    }

    /// The value if the next element has `tag`, else nothing consumed.
    fn optional(&mut self, tag: u8) -> Result<Option<&'a [u8]>, DerError> {
        if self.peek_tag() == Some(tag) {
            Ok(Some(self.any()?.1))
        } else {
            Ok(None)
        }
    }
}

/// Reads the validity, the DNS names and the common name of a DER certificate.
pub fn certificate(der: &[u8]) -> Result<CertFacts, DerError> {
    let mut outer = Reader::new(der);
    let cert = outer.expect(SEQUENCE, "certificate is not a SEQUENCE")?;
    let mut cert = Reader::new(cert);
    let tbs = cert.expect(SEQUENCE, "tbsCertificate is not a SEQUENCE")?;
    let mut tbs = Reader::new(tbs);
    tbs.optional(CONTEXT_0)?;
    tbs.expect(INTEGER, "serial number is not an INTEGER")?;
    tbs.expect(SEQUENCE, "signature algorithm is not a SEQUENCE")?;
    tbs.expect(SEQUENCE, "issuer is not a SEQUENCE")?;
    let validity = tbs.expect(SEQUENCE, "validity is not a SEQUENCE")?;
    let mut validity = Reader::new(validity);
    let not_before = time(&mut validity)?;
    let not_after = time(&mut validity)?;
    let subject = tbs.expect(SEQUENCE, "subject is not a SEQUENCE")?;
    tbs.expect(SEQUENCE, "subjectPublicKeyInfo is not a SEQUENCE")?;
    let mut dns_names = Vec::new();
    while !tbs.is_empty() {
        let (tag, value) = tbs.any()?;
        if tag == CONTEXT_3 {
            dns_names = subject_alt_dns_names(value)?;
        }
    }
    Ok(CertFacts {
        not_before,
        not_after,
        dns_names,
        common_name: common_name(subject)?,
    })
}

/// The dNSName entries of the subjectAltName extension inside `[3] { SEQUENCE OF Extension }`.
fn subject_alt_dns_names(explicit: &[u8]) -> Result<Vec<String>, DerError> {
    let mut outer = Reader::new(explicit);
    let list = outer.expect(SEQUENCE, "extensions are not a SEQUENCE")?;
    let mut list = Reader::new(list);
    let mut names = Vec::new();
    while !list.is_empty() {
        let ext = list.expect(SEQUENCE, "extension is not a SEQUENCE")?;
        let mut ext = Reader::new(ext);
        let oid = ext.expect(OID, "extension id is not an OID")?;
        ext.optional(BOOLEAN)?;
        let value = ext.expect(OCTET_STRING, "extension value is not an OCTET STRING")?;
        if oid != OID_SUBJECT_ALT_NAME {
            continue;
        }
        let mut value = Reader::new(value);
        let general_names = value.expect(SEQUENCE, "subjectAltName is not a SEQUENCE")?;
        let mut general_names = Reader::new(general_names);
        while !general_names.is_empty() {
            let (tag, name) = general_names.any()?;
            if tag == GENERAL_NAME_DNS {
                let name = std::str::from_utf8(name)
                    .ok()
                    .filter(|n| n.is_ascii())
                    .ok_or(DerError("dNSName is not ASCII"))?;
                names.push(name.to_owned());
            }
        }
    }
    Ok(names)
}

/// The first commonName of a Name (`SEQUENCE OF SET OF AttributeTypeAndValue`).
fn common_name(name: &[u8]) -> Result<Option<String>, DerError> {
    let mut rdns = Reader::new(name);
    while !rdns.is_empty() {
        let set = rdns.expect(SET, "name component is not a SET")?;
        let mut set = Reader::new(set);
        while !set.is_empty() {
            let attr = set.expect(SEQUENCE, "attribute is not a SEQUENCE")?;
            let mut attr = Reader::new(attr);
            let oid = attr.expect(OID, "attribute type is not an OID")?;
            let (tag, value) = attr.any()?;
            // UTF8String, PrintableString, IA5String; other string types are not read.
            if oid == OID_COMMON_NAME && matches!(tag, 0x0c | 0x13 | 0x16) {
                return Ok(std::str::from_utf8(value).ok().map(str::to_owned));
            }
        }
    }
    Ok(None)
}

/// UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`), as Unix seconds.
fn time(r: &mut Reader<'_>) -> Result<i64, DerError> {
    let (tag, value) = r.any()?;
    let (year, rest) = match (tag, value.len()) {
        (UTC_TIME, 13) => {
            let yy = digits(&value[..2])?;
            // RFC 5280 §4.1.2.5.1: 50..99 are 19xx, 00..49 are 20xx.
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &value[2..])
        }
        (GENERALIZED_TIME, 15) => (digits(&value[..4])?, &value[4..]),
        _ => {
            return Err(DerError(
                "validity time is neither UTCTime nor GeneralizedTime",
            ))
        }
    };
    if rest[10] != b'Z' {
        return Err(DerError("validity time is not in UTC"));
    }
    let (month, day) = (digits(&rest[0..2])?, digits(&rest[2..4])?);
    let (hour, minute, second) = (
        digits(&rest[4..6])?,
        digits(&rest[6..8])?,
        digits(&rest[8..10])?,
    );
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(DerError("validity time out of range"));
    }
    let days = days_from_civil(year, month, day);
    Ok(days * 86_400 + hour * 3_600 + minute * 60 + second)
}

fn digits(ascii: &[u8]) -> Result<i64, DerError> {
    ascii.iter().try_fold(0i64, |acc, b| match b {
        b'0'..=b'9' => Ok(acc * 10 + i64::from(b - b'0')),
        _ => Err(DerError("time has a non-digit")),
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Checks that `der` is an OCSPResponse whose status is `successful` and that carries response
/// bytes: what a client can use. (Whether it is fresh and signed is the client's to verify.)
pub fn ocsp_response(der: &[u8]) -> Result<(), DerError> {
    let mut outer = Reader::new(der);
    let resp = outer.expect(SEQUENCE, "OCSP response is not a SEQUENCE")?;
    if !outer.is_empty() {
        return Err(DerError("bytes after the OCSP response"));
    }
    let mut resp = Reader::new(resp);
    match resp.expect(ENUMERATED, "OCSP response status is not an ENUMERATED")? {
        [0] => {}
        _ => return Err(DerError("OCSP response status is not `successful`")),
    }
    resp.expect(CONTEXT_0, "OCSP response has no response bytes")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days() {
        for (y, m, d, days) in [
            (1970, 1, 1, 0),
            (2000, 3, 1, 11_017),
            (1969, 12, 31, -1),
            (2038, 1, 19, 24_855),
        ] {
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
    }

    #[test]
    fn times() {
        for (tag, text, secs) in [
            (UTC_TIME, "700101000000Z", 0),
            (UTC_TIME, "491231235959Z", 2_524_607_999),
            (UTC_TIME, "500101000000Z", -631_152_000),
            (GENERALIZED_TIME, "20380119031408Z", 2_147_483_648),
        ] {
            let mut der = vec![tag, text.len() as u8];
            der.extend_from_slice(text.as_bytes());
            assert_eq!(time(&mut Reader::new(&der)), Ok(secs), "{text}");
        }
        for bad in ["700101000000+", "7a0101000000Z", "701301000000Z"] {
            let mut der = vec![UTC_TIME, bad.len() as u8];
            der.extend_from_slice(bad.as_bytes());
            assert!(time(&mut Reader::new(&der)).is_err(), "{bad}");
        }
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        for der in [
            &[][..],
            &[0x30],
            &[0x30, 0x05, 0x02],
            &[0x30, 0x85, 0, 0, 0, 0, 1],
        ] {
            assert!(certificate(der).is_err());
            assert!(ocsp_response(der).is_err());
        }
    }

    #[test]
    fn ocsp_status() {
        assert!(ocsp_response(&[0x30, 0x05, 0x0a, 0x01, 0x00, 0xa0, 0x00]).is_ok());
        // tryLater (3), no response bytes: useless to a client.
        assert!(ocsp_response(&[0x30, 0x03, 0x0a, 0x01, 0x03]).is_err());
    }
}
