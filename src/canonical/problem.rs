//! Canonical errors: the closed set of codes (DESIGN §2) and their RFC 9457 problem+json form.
//!
//! Every error teamgate answers, whether it found it itself or a vendor answered it, becomes a
//! [`Problem`]. The code → status table is one exhaustive `match`, so a new code does not
//! compile until it has a status and a title.

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
    RateLimited,
    UnsupportedOperation,
    UpstreamError,
    UpstreamUnavailable,
    UpstreamTimeout,
    Internal,
}

impl ErrorCode {
    /// Every code, for tables and checks.
    pub const ALL: [ErrorCode; 14] = [
        ErrorCode::InvalidRequest,
        ErrorCode::Unauthenticated,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::NameTaken,
        ErrorCode::Conflict,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UnsupportedMediaType,
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

/// What the vendor said, kept under `upstream` in the problem.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpstreamDetail {
    pub status: u16,
    pub code: Option<String>,
    pub message: Option<String>,
}

/// A canonical error (RFC 9457 problem details).
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub code: ErrorCode,
    pub detail: String,
    pub backend: Option<String>,
    pub upstream: Option<Box<UpstreamDetail>>,
    /// Seconds, for `rate_limited`.
    pub retry_after: Option<u64>,
    /// Extra members (for example `backends` on an unknown backend name).
    pub extra: Vec<(&'static str, Value)>,
}

impl Problem {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Problem {
            code,
            detail: detail.into(),
            backend: None,
            upstream: None,
            retry_after: None,
            extra: Vec::new(),
        }
    }

    pub fn invalid(detail: impl Into<String>) -> Self {
        Problem::new(ErrorCode::InvalidRequest, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Problem::new(ErrorCode::NotFound, detail)
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        Problem::new(ErrorCode::Internal, detail)
    }

    pub fn with_backend(mut self, backend: &str) -> Self {
        self.backend.get_or_insert_with(|| backend.to_string());
        self
    }

    pub fn with_extra(mut self, key: &'static str, value: Value) -> Self {
        self.extra.push((key, value));
        self
    }

    pub fn status(&self) -> u16 {
        self.code.status()
    }

    /// The problem+json body.
    pub fn to_json(&self, request_id: &str) -> Value {
        let mut body = serde_json::json!({
            "type": format!("/problems/{}", self.code.as_str()),
            "title": self.code.title(),
            "status": self.code.status(),
            "code": self.code.as_str(),
            "detail": self.detail,
            "backend": self.backend,
            "upstream": self.upstream,
            "request_id": request_id,
        });
        if let Some(map) = body.as_object_mut() {
            for (key, value) in &self.extra {
                map.insert((*key).to_string(), value.clone());
            }
        }
        body
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.detail)
    }
}

impl std::error::Error for Problem {}

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
    fn problem_body_has_rfc9457_members_and_the_upstream_detail() {
        let mut p = Problem::new(ErrorCode::NameTaken, "taken").with_backend("b1");
        p.upstream = Some(Box::new(UpstreamDetail {
            status: 409,
            code: None,
            message: Some("Team name taken".into()),
        }));
        let body = p.to_json("rid");
        assert_eq!(body["type"], "/problems/name_taken");
        assert_eq!(body["status"], 409);
        assert_eq!(body["backend"], "b1");
        assert_eq!(body["upstream"]["message"], "Team name taken");
        assert_eq!(body["request_id"], "rid");
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
