//! One request against one file: method, representation, preconditions, range, in RFC 9110
//! order, as a [`Plan`] the engine carries out.

use crate::conditional::{self, Conditions, Precondition};
use crate::range::{self, ByteRange, RangeOutcome, Ranges};
use crate::{Encoding, File, Representation};

/// The request method, as far as static files care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET: the only method with range handling (RFC 9110 §14.2).
    Get,
    /// HEAD: the same head as GET would get for the whole representation (a Range field is
    /// ignored, as §14.2 requires for methods other than GET), without the body.
    Head,
    /// Anything else: 405 with `Allow: GET, HEAD`.
    Other,
}

/// What the engine read from the request.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The method.
    pub method: Method,
    /// The acceptable precompressed codings, most preferred first (from `Accept-Encoding`;
    /// codings with `q=0` left out). Empty: the file itself.
    pub accept: &'a [Encoding],
    /// The conditional fields.
    pub conditions: Conditions<'a>,
    /// The `Range` field value.
    pub range: Option<&'a [u8]>,
}

/// What to answer.
///
/// Every answer that carries a representation (all but 405 and 412 and 416) has `ETag`,
/// `Last-Modified` and, except 304, `Content-Type` ([`File::content_type`]),
/// `Accept-Ranges: bytes` and `X-Content-Type-Options: nosniff`; `Content-Encoding` when
/// `encoding` is set; `Vary: Accept-Encoding` whenever [`File::has_variants`] (on every
/// representation of that file, the identity one included, so caches key on it).
// The ranges are inline on purpose: planning a request allocates nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy)]
pub enum Plan<'f> {
    /// 405, `Allow: GET, HEAD`.
    MethodNotAllowed,
    /// 412, no body.
    PreconditionFailed,
    /// 304 with the representation's validators, no body.
    NotModified {
        /// The representation the validators are of.
        rep: &'f Representation,
        /// Its coding.
        encoding: Option<Encoding>,
    },
    /// 200, `Content-Length: rep.len()`, the whole file (no body for HEAD).
    Full {
        /// What to send.
        rep: &'f Representation,
        /// Its coding.
        encoding: Option<Encoding>,
    },
    /// 206 with `Content-Range: bytes FIRST-LAST/LEN` and `Content-Length: range.len()`.
    Partial {
        /// What to send from.
        rep: &'f Representation,
        /// Its coding.
        encoding: Option<Encoding>,
        /// The bytes.
        range: ByteRange,
    },
    /// 206 `multipart/byteranges`: frame with [`range::Multipart`].
    Multipart {
        /// What to send from.
        rep: &'f Representation,
        /// Its coding.
        encoding: Option<Encoding>,
        /// The ranges (two or more).
        ranges: Ranges,
    },
    /// 416 with `Content-Range: bytes */LEN`.
    Unsatisfiable {
        /// The representation's length.
        len: u64,
    },
}

/// Decides the answer to `req` for `file` (RFC 9110 §13.2.2 order: preconditions, then
/// If-Range and Range).
pub fn plan<'f>(file: &'f File, req: &Request<'_>) -> Plan<'f> {
    let get_or_head = match req.method {
        Method::Get | Method::Head => true,
        Method::Other => return Plan::MethodNotAllowed,
    };
    let (rep, encoding) = file.select(req.accept);
    let etag = rep.etag().as_str();
    let modified = rep.modified_secs();
    match conditional::evaluate(&req.conditions, etag, modified, get_or_head) {
        Precondition::Proceed => {}
        Precondition::NotModified => return Plan::NotModified { rep, encoding },
        Precondition::Failed => return Plan::PreconditionFailed,
    }
    let full = Plan::Full { rep, encoding };
    let Some(h) = req.range.filter(|_| req.method == Method::Get) else {
        return full;
    };
    if !conditional::if_range(req.conditions.if_range, etag, modified) {
        return full;
    }
    match range::parse(h, rep.len()) {
        RangeOutcome::Full => full,
        RangeOutcome::Unsatisfiable => Plan::Unsatisfiable { len: rep.len() },
        RangeOutcome::Partial(ranges) => match ranges.as_slice() {
            [one] => Plan::Partial {
                rep,
                encoding,
                range: *one,
            },
            _ => Plan::Multipart {
                rep,
                encoding,
                ranges,
            },
        },
    }
}
