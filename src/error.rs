//! The crate's one error type, and the closed set of canonical codes (DESIGN §2).
//!
//! Every failure, whether teamgate found it itself or a vendor answered it, is an [`Error`]:
//! a canonical [`ErrorCode`], where the failure came from ([`Origin`]), whether trying again
//! may help ([`Error::retryable`]), and what the vendor said. It becomes an RFC 9457
//! `application/problem+json` answer in exactly one place, at the edge of the server
//! (`server::problem`). The code → status table is one exhaustive `match`, so a new code does
//! not compile until it has a status and a title.

use serde::Serialize;
use serde_json::Value;

/// The canonical error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidRequest,
    Unauthenticated,
    Forbidden,
    NotFound,
    NameTaken,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    RequestTimeout,
    RateLimited,
    UnsupportedOperation,
    UpstreamError,
    UpstreamUnavailable,
    UpstreamTimeout,
    Internal,
}

impl ErrorCode {
    /// Every code, for tables and checks.
    pub const ALL: [ErrorCode; 15] = [
        ErrorCode::InvalidRequest,
        ErrorCode::Unauthenticated,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::NameTaken,
        ErrorCode::Conflict,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::RequestTimeout,
        ErrorCode::RateLimited,
        ErrorCode::UnsupportedOperation,
        ErrorCode::UpstreamError,
        ErrorCode::UpstreamUnavailable,
        ErrorCode::UpstreamTimeout,
        ErrorCode::Internal,
    ];

    pub fn status(self) -> u16 {
        match self {
            ErrorCode::InvalidRequest => 400,
            ErrorCode::Unauthenticated => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::NameTaken => 409,
            ErrorCode::Conflict => 409,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::RequestTimeout => 408,
            ErrorCode::RateLimited => 429,
            ErrorCode::UnsupportedOperation => 501,
            ErrorCode::UpstreamError => 502,
            ErrorCode::UpstreamUnavailable => 503,
            ErrorCode::UpstreamTimeout => 504,
            ErrorCode::Internal => 500,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "The request is invalid",
            ErrorCode::Unauthenticated => "Authentication is required",
            ErrorCode::Forbidden => "The request is not allowed",
            ErrorCode::NotFound => "The resource was not found",
            ErrorCode::NameTaken => "Team name is taken",
            ErrorCode::Conflict => "The request conflicts with the resource's state",
            ErrorCode::PayloadTooLarge => "The request body is too large",
            ErrorCode::UnsupportedMediaType => "The request content type is not supported",
            ErrorCode::RequestTimeout => "The request did not arrive in time",
            ErrorCode::RateLimited => "Too many requests",
            ErrorCode::UnsupportedOperation => "The backend cannot do this operation",
            ErrorCode::UpstreamError => "The backend answered with an error",
            ErrorCode::UpstreamUnavailable => "The backend is unavailable",
            ErrorCode::UpstreamTimeout => "The backend did not answer in time",
            ErrorCode::Internal => "Internal error",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::NameTaken => "name_taken",
            ErrorCode::Conflict => "conflict",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::UnsupportedOperation => "unsupported_operation",
            ErrorCode::UpstreamError => "upstream_error",
            ErrorCode::UpstreamUnavailable => "upstream_unavailable",
            ErrorCode::UpstreamTimeout => "upstream_timeout",
            ErrorCode::Internal => "internal",
        }
    }

    /// Parses a code as written in mapping files.
    pub fn parse(s: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The fallback for a vendor error that no rule matched: by status class.
    pub fn from_upstream_status(status: u16) -> ErrorCode {
        match status {
            400 | 405 | 422 => ErrorCode::InvalidRequest,
            // The vendor refused the backend's own credential: the caller cannot fix that,
            // so it is a gateway-side failure, not the caller's 401/403.
            401 | 403 => ErrorCode::UpstreamError,
            404 | 410 => ErrorCode::NotFound,
            409 | 428 => ErrorCode::Conflict,
            413 => ErrorCode::PayloadTooLarge,
            429 => ErrorCode::RateLimited,
            503 => ErrorCode::UpstreamUnavailable,
            504 => ErrorCode::UpstreamTimeout,
            _ => ErrorCode::UpstreamError,
        }
    }
}

/// Where a failure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    /// The caller's request is wrong (bad input, unknown id, a limit of the backend).
    Caller,
    /// teamgate itself: its limits (load shedding, the request timeout), its configuration,
    /// or a bug.
    Teamgate,
    /// The vendor answered, with an error or with an answer teamgate cannot read.
    Vendor,
    /// No answer came back from the vendor: connect failure, reset, timeout.
    Network,
}

impl Origin {
    /// The origin a code has unless the place that raises it says otherwise.
    fn of(code: ErrorCode) -> Origin {
        match code {
            ErrorCode::InvalidRequest
            | ErrorCode::Unauthenticated
            | ErrorCode::Forbidden
            | ErrorCode::NotFound
            | ErrorCode::NameTaken
            | ErrorCode::Conflict
            | ErrorCode::PayloadTooLarge
            | ErrorCode::UnsupportedMediaType
            | ErrorCode::RequestTimeout => Origin::Caller,
            ErrorCode::RateLimited | ErrorCode::UpstreamError => Origin::Vendor,
            ErrorCode::UpstreamUnavailable | ErrorCode::UpstreamTimeout => Origin::Network,
            ErrorCode::UnsupportedOperation | ErrorCode::Internal => Origin::Teamgate,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Caller => "caller",
            Origin::Teamgate => "teamgate",
            Origin::Vendor => "vendor",
            Origin::Network => "network",
        }
    }
}

/// What the vendor said, kept under `upstream` in the problem.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpstreamDetail {
    pub status: u16,
    pub code: Option<String>,
    pub message: Option<String>,
}

/// A canonical error: what failed, where, and what to tell the caller.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}: {detail}", code.as_str())]
pub struct Error {
    pub code: ErrorCode,
    pub origin: Origin,
    /// For the caller (`detail` of the problem). Never a credential: vendor text is redacted
    /// before it gets here.
    pub detail: String,
    pub backend: Option<String>,
    /// The canonical operation that failed, once routing knew it (a log field and a metric
    /// label; not part of the problem).
    pub operation: Option<&'static str>,
    pub upstream: Option<Box<UpstreamDetail>>,
    /// Seconds, for `rate_limited`.
    pub retry_after: Option<u64>,
    /// Extra members (for example `backends` on an unknown backend name).
    pub extra: Vec<(&'static str, Value)>,
}

impl Error {
    /// An error with the origin its code usually has (see [`Origin`]).
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Error {
            code,
            origin: Origin::of(code),
            detail: detail.into(),
            backend: None,
            operation: None,
            upstream: None,
            retry_after: None,
            extra: Vec::new(),
        }
    }

    pub fn invalid(detail: impl Into<String>) -> Self {
        Error::new(ErrorCode::InvalidRequest, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Error::new(ErrorCode::NotFound, detail)
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        Error::new(ErrorCode::Internal, detail)
    }

    /// The same error, raised at `origin` (a 404 found in a vendor's answer is the vendor's).
    pub fn from_origin(mut self, origin: Origin) -> Self {
        self.origin = origin;
        self
    }

    /// Whether the same request may succeed if sent again later: the vendor or the network
    /// failed for a while, or teamgate shed it. A caller's mistake, a refusal by the vendor
    /// and teamgate's own bugs are not.
    pub fn retryable(&self) -> bool {
        match self.code {
            ErrorCode::RateLimited
            | ErrorCode::UpstreamUnavailable
            | ErrorCode::UpstreamTimeout => true,
            // A vendor 5xx or a dropped connection may pass; an answer teamgate cannot read
            // (or a vendor refusing the backend's own credential, 401/403) will not.
            ErrorCode::UpstreamError => match self.origin {
                Origin::Network => true,
                _ => self.upstream.as_ref().is_some_and(|u| u.status >= 500),
            },
            _ => false,
        }
    }

    /// Whether a write that failed this way may still have happened at the vendor: it was
    /// sent, and then no answer came back (timeout, dropped connection), or the vendor said
    /// yes in words teamgate cannot read (a 2xx with an unreadable or incomplete body: the
    /// only vendor errors without the vendor's status).
    pub fn outcome_unknown(&self) -> bool {
        let unanswered = self.origin == Origin::Network
            && matches!(
                self.code,
                ErrorCode::UpstreamTimeout | ErrorCode::UpstreamError
            );
        let cut_short = self.origin == Origin::Teamgate && self.code == ErrorCode::UpstreamTimeout;
        let unreadable_yes = self.origin == Origin::Vendor
            && self.code == ErrorCode::UpstreamError
            && self.upstream.is_none();
        unanswered || cut_short || unreadable_yes
    }

    pub fn with_backend(mut self, backend: &str) -> Self {
        self.backend.get_or_insert_with(|| backend.to_string());
        self
    }

    /// The error of this operation (kept when already set).
    pub fn during(mut self, operation: &'static str) -> Self {
        self.operation.get_or_insert(operation);
        self
    }

    pub fn with_extra(mut self, key: &'static str, value: Value) -> Self {
        self.extra.push((key, value));
        self
    }

    pub fn status(&self) -> u16 {
        self.code.status()
    }
}

/// The errors of tower's shed, limit and timeout layers, and ours passed through them: the one
/// conversion for every place on the request path where tower's layers sit.
pub fn from_tower(error: tower::BoxError) -> Error {
    let error = match error.downcast::<Error>() {
        Ok(ours) => return *ours,
        Err(other) => other,
    };
    if error.is::<tower::load_shed::error::Overloaded>() {
        let mut shed = Error::new(
            ErrorCode::UpstreamUnavailable,
            "teamgate is at its concurrency limit; retry shortly",
        )
        .from_origin(Origin::Teamgate);
        shed.retry_after = Some(1);
        shed
    } else if error.is::<tower::timeout::error::Elapsed>() {
        // The timeout bounds the vendor work of a request: past it, no answer came in time.
        Error::new(
            ErrorCode::UpstreamTimeout,
            "the backend's work took longer than the configured request timeout",
        )
        .from_origin(Origin::Network)
    } else {
        Error::internal("the request failed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_the_status_of_the_design_table() {
        let expected = [
            ("invalid_request", 400),
            ("unauthenticated", 401),
            ("forbidden", 403),
            ("not_found", 404),
            ("name_taken", 409),
            ("conflict", 409),
            ("payload_too_large", 413),
            ("unsupported_media_type", 415),
            ("request_timeout", 408),
            ("rate_limited", 429),
            ("unsupported_operation", 501),
            ("upstream_error", 502),
            ("upstream_unavailable", 503),
            ("upstream_timeout", 504),
            ("internal", 500),
        ];
        assert_eq!(expected.len(), ErrorCode::ALL.len());
        for (name, status) in expected {
            let code = ErrorCode::parse(name).expect(name);
            assert_eq!(code.status(), status, "{name}");
            assert_eq!(code.as_str(), name);
        }
    }

    #[test]
    fn origin_and_retryability_follow_the_code_unless_raised_elsewhere() {
        let invalid = Error::invalid("bad");
        assert_eq!(invalid.origin, Origin::Caller);
        assert!(!invalid.retryable());
        let mut vendor_500 = Error::new(ErrorCode::UpstreamError, "boom");
        vendor_500.upstream = Some(Box::new(UpstreamDetail {
            status: 500,
            code: None,
            message: None,
        }));
        assert!(vendor_500.retryable());
        vendor_500.upstream.as_mut().unwrap().status = 401;
        assert!(
            !vendor_500.retryable(),
            "the backend's own credential refused"
        );
        let reset = Error::new(ErrorCode::UpstreamError, "reset").from_origin(Origin::Network);
        assert!(reset.retryable() && reset.outcome_unknown());
        let unreadable = Error::new(ErrorCode::UpstreamError, "not JSON");
        assert!(!unreadable.retryable() && unreadable.outcome_unknown());
        let refused = Error::new(ErrorCode::Conflict, "taken").from_origin(Origin::Vendor);
        assert!(!refused.outcome_unknown());
        assert!(Error::new(ErrorCode::UpstreamTimeout, "slow").outcome_unknown());
        let vendor_404 = Error::not_found("gone").from_origin(Origin::Vendor);
        assert_eq!(vendor_404.origin, Origin::Vendor);
        assert!(!vendor_404.retryable());
    }

    #[test]
    fn unmatched_vendor_statuses_fall_back_by_class() {
        assert_eq!(ErrorCode::from_upstream_status(404), ErrorCode::NotFound);
        assert_eq!(ErrorCode::from_upstream_status(429), ErrorCode::RateLimited);
        assert_eq!(
            ErrorCode::from_upstream_status(500),
            ErrorCode::UpstreamError
        );
        assert_eq!(
            ErrorCode::from_upstream_status(503),
            ErrorCode::UpstreamUnavailable
        );
        assert_eq!(
            ErrorCode::from_upstream_status(401),
            ErrorCode::UpstreamError
        );
    }
}
