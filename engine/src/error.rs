//! The one classified error type of the data plane.
//!
//! Every failure on the request path becomes an [`ErrorClass`]; the class alone decides the
//! status code the client sees, whether another attempt could succeed, the slug written in the
//! access log and the RFC 9457 `application/problem+json` body. Problem type URIs are stable:
//! `https://bext.dev/problems/<slug>` (the base is [`PROBLEM_BASE`]); operators and clients may
//! match on them.

/// Base of every problem type URI.
pub const PROBLEM_BASE: &str = "https://bext.dev/problems/";

/// What went wrong, from the client's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The request was malformed (RFC 9112 violations, bad chunking).
    BadRequest,
    /// The request target is longer than the limit.
    UriTooLong,
    /// The request head is larger than the limit or has too many fields.
    HeadersTooLarge,
    /// The request body is larger than the limit.
    PayloadTooLarge,
    /// A transfer coding bext does not implement.
    NotImplemented,
    /// An HTTP version other than 1.0 and 1.1.
    VersionNotSupported,
    /// The client was too slow sending its request head or body.
    RequestTimeout,
    /// No route matches the host and path.
    RouteNotFound,
    /// A route matches the path but not the method.
    MethodNotAllowed,
    /// The upstream could not be reached (connection refused, reset before a response).
    UpstreamUnavailable,
    /// The upstream did not connect or answer in time.
    UpstreamTimeout,
    /// The upstream answered with something that is not a valid HTTP/1.1 response.
    UpstreamInvalid,
    /// Every server of the upstream is down (active health checks) or ejected (passive), backups
    /// included: nothing was attempted.
    NoHealthyUpstream,
    /// The upstream's circuit breaker is open on this core (`max_connections` or `max_pending`
    /// reached): nothing was attempted.
    UpstreamOverloaded,
    /// A `rate_limit` of the route refused the request (its client, header value or route
    /// sent more than the rate and burst allow).
    RateLimited,
    /// A static file route has no file (or index file) at the path, or the name is hidden
    /// (`.git`) or too long.
    NotFound,
    /// A static file that bext may not read, that is not a regular file, or whose path would
    /// leave the root through a symlink.
    Forbidden,
    /// A precondition (`If-Match`, `If-Unmodified-Since`) of a request for a file failed.
    PreconditionFailed,
    /// No range of the request's `Range` overlaps the file.
    RangeNotSatisfiable,
    /// Reading a static file failed in the kernel (an I/O error, no descriptor left).
    FileError,
}

impl ErrorClass {
    /// Every class, for tables and tests.
    pub const ALL: [ErrorClass; 20] = [
        ErrorClass::BadRequest,
        ErrorClass::UriTooLong,
        ErrorClass::HeadersTooLarge,
        ErrorClass::PayloadTooLarge,
        ErrorClass::NotImplemented,
        ErrorClass::VersionNotSupported,
        ErrorClass::RequestTimeout,
        ErrorClass::RouteNotFound,
        ErrorClass::MethodNotAllowed,
        ErrorClass::UpstreamUnavailable,
        ErrorClass::UpstreamTimeout,
        ErrorClass::UpstreamInvalid,
        ErrorClass::NoHealthyUpstream,
        ErrorClass::UpstreamOverloaded,
        ErrorClass::RateLimited,
        ErrorClass::NotFound,
        ErrorClass::Forbidden,
        ErrorClass::PreconditionFailed,
        ErrorClass::RangeNotSatisfiable,
        ErrorClass::FileError,
    ];

    pub fn status(self) -> u16 {
        match self {
            ErrorClass::BadRequest => 400,
            ErrorClass::UriTooLong => 414,
            ErrorClass::HeadersTooLarge => 431,
            ErrorClass::PayloadTooLarge => 413,
            ErrorClass::NotImplemented => 501,
            ErrorClass::VersionNotSupported => 505,
            ErrorClass::RequestTimeout => 408,
            ErrorClass::RouteNotFound => 404,
            ErrorClass::MethodNotAllowed => 405,
            ErrorClass::UpstreamUnavailable => 502,
            ErrorClass::UpstreamTimeout => 504,
            ErrorClass::UpstreamInvalid => 502,
            ErrorClass::NoHealthyUpstream => 503,
            ErrorClass::UpstreamOverloaded => 503,
            ErrorClass::RateLimited => 429,
            ErrorClass::NotFound => 404,
            ErrorClass::Forbidden => 403,
            ErrorClass::PreconditionFailed => 412,
            ErrorClass::RangeNotSatisfiable => 416,
            ErrorClass::FileError => 500,
        }
    }

    /// The last segment of the problem type URI; also the `error` field of access log lines.
    pub fn slug(self) -> &'static str {
        match self {
            ErrorClass::BadRequest => "bad-request",
            ErrorClass::UriTooLong => "uri-too-long",
            ErrorClass::HeadersTooLarge => "headers-too-large",
            ErrorClass::PayloadTooLarge => "payload-too-large",
            ErrorClass::NotImplemented => "not-implemented",
            ErrorClass::VersionNotSupported => "version-not-supported",
            ErrorClass::RequestTimeout => "request-timeout",
            ErrorClass::RouteNotFound => "route-not-found",
            ErrorClass::MethodNotAllowed => "method-not-allowed",
            ErrorClass::UpstreamUnavailable => "upstream-unavailable",
            ErrorClass::UpstreamTimeout => "upstream-timeout",
            ErrorClass::UpstreamInvalid => "upstream-invalid-response",
            ErrorClass::NoHealthyUpstream => "no-healthy-upstream",
            ErrorClass::UpstreamOverloaded => "upstream-overloaded",
            ErrorClass::RateLimited => "rate-limited",
            ErrorClass::NotFound => "not-found",
            ErrorClass::Forbidden => "forbidden",
            ErrorClass::PreconditionFailed => "precondition-failed",
            ErrorClass::RangeNotSatisfiable => "range-not-satisfiable",
            ErrorClass::FileError => "file-error",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            ErrorClass::BadRequest => "Bad request",
            ErrorClass::UriTooLong => "Request target too long",
            ErrorClass::HeadersTooLarge => "Request header fields too large",
            ErrorClass::PayloadTooLarge => "Request body too large",
            ErrorClass::NotImplemented => "Not implemented",
            ErrorClass::VersionNotSupported => "HTTP version not supported",
            ErrorClass::RequestTimeout => "Request timeout",
            ErrorClass::RouteNotFound => "Route not found",
            ErrorClass::MethodNotAllowed => "Method not allowed",
            ErrorClass::UpstreamUnavailable => "Upstream unavailable",
            ErrorClass::UpstreamTimeout => "Upstream timeout",
            ErrorClass::UpstreamInvalid => "Invalid upstream response",
            ErrorClass::NoHealthyUpstream => "No healthy upstream server",
            ErrorClass::UpstreamOverloaded => "Upstream overloaded",
            ErrorClass::RateLimited => "Too many requests",
            ErrorClass::NotFound => "Not found",
            ErrorClass::Forbidden => "Forbidden",
            ErrorClass::PreconditionFailed => "Precondition failed",
            ErrorClass::RangeNotSatisfiable => "Range not satisfiable",
            ErrorClass::FileError => "File could not be read",
        }
    }

    /// Could another attempt (on another server) succeed without risk of doing the work twice?
    /// True only when the request certainly never reached an upstream application.
    pub fn retryable(self) -> bool {
        matches!(self, ErrorClass::UpstreamUnavailable)
    }

    /// Must the client connection be closed after the error response? Errors in the framing
    /// of the request leave the connection in an unknown state.
    pub fn closes_connection(self) -> bool {
        matches!(
            self,
            ErrorClass::BadRequest
                | ErrorClass::UriTooLong
                | ErrorClass::HeadersTooLarge
                | ErrorClass::PayloadTooLarge
                | ErrorClass::NotImplemented
                | ErrorClass::VersionNotSupported
                | ErrorClass::RequestTimeout
        )
    }

    /// The class of a request the codec rejected.
    pub fn from_codec(e: &bext_http1::Error) -> ErrorClass {
        use bext_http1::ErrorKind as K;
        match e.kind {
            K::TargetTooLong => ErrorClass::UriTooLong,
            K::HeadTooLarge => ErrorClass::HeadersTooLarge,
            K::UnsupportedTransferCoding => ErrorClass::NotImplemented,
            K::Version => ErrorClass::VersionNotSupported,
            K::Response => ErrorClass::UpstreamInvalid,
            _ => ErrorClass::BadRequest,
        }
    }

    /// The RFC 9457 body for this class. `instance` is the request id.
    pub fn problem_json(self, instance: &str) -> String {
        problem_body(self.slug(), self.title(), self.status(), instance)
    }
}

/// An RFC 9457 body: `slug` under [`PROBLEM_BASE`], and the request id as instance.
pub fn problem_body(slug: &str, title: &str, status: u16, instance: &str) -> String {
    let mut s = String::with_capacity(192);
    s.push_str("{\"type\":\"");
    s.push_str(PROBLEM_BASE);
    s.push_str(slug);
    s.push_str("\",\"title\":\"");
    s.push_str(title);
    s.push_str("\",\"status\":");
    s.push_str(&status.to_string());
    if !instance.is_empty() {
        s.push_str(",\"instance\":\"urn:bext:request:");
        // Request ids are validated to a safe alphabet before they get here.
        s.push_str(instance);
        s.push('"');
    }
    s.push_str("}\n");
    s
}

impl std::fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.title(), self.status())
    }
}

/// The reason phrase of a status code (only used when bext writes the status line itself).
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        413 => "Content Too Large",
        414 => "URI Too Long",
        412 => "Precondition Failed",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        418 => "I'm a teapot",
        421 => "Misdirected Request",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_has_a_distinct_slug_and_an_error_status() {
        let mut slugs: Vec<&str> = ErrorClass::ALL.iter().map(|c| c.slug()).collect();
        slugs.sort_unstable();
        slugs.dedup();
        assert_eq!(slugs.len(), ErrorClass::ALL.len());
        for c in ErrorClass::ALL {
            assert!((400..600).contains(&c.status()), "{c:?}");
            assert!(!reason(c.status()).is_empty(), "{c:?}");
        }
    }

    #[test]
    fn problem_bodies_name_type_status_and_instance() {
        let table = [
            (
                ErrorClass::RouteNotFound,
                "abc",
                "{\"type\":\"https://bext.dev/problems/route-not-found\",\"title\":\"Route not found\",\"status\":404,\"instance\":\"urn:bext:request:abc\"}\n",
            ),
            (
                ErrorClass::UpstreamTimeout,
                "",
                "{\"type\":\"https://bext.dev/problems/upstream-timeout\",\"title\":\"Upstream timeout\",\"status\":504}\n",
            ),
        ];
        for (class, instance, want) in table {
            assert_eq!(class.problem_json(instance), want);
        }
    }

    #[test]
    fn only_unreached_upstreams_are_retryable() {
        let retryable: Vec<ErrorClass> = ErrorClass::ALL
            .into_iter()
            .filter(|c| c.retryable())
            .collect();
        assert_eq!(retryable, vec![ErrorClass::UpstreamUnavailable]);
    }
}
