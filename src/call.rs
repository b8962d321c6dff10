//! A routed canonical request on its way to a backend ([`Call`]), and what comes back
//! ([`Reply`]).
//!
//! These are the request and response types of the inner part of the stack — read cache →
//! mapping engine — so they live below both: the cache and the engine import this file, and
//! it imports neither. A call names its backend; the engine finds it in its registry.

use std::sync::Arc;
use std::time::Duration;

use crate::canonical::{CanonicalRequest, CanonicalResponse};

/// A vendor credential that never shows in `Debug` output.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// How long one backend's reads stay fresh, and how long a stale one may stand in for an
/// error.
#[derive(Debug, Clone, Copy)]
pub struct CachePolicy {
    pub ttl: Duration,
    pub stale_if_error: Duration,
}

/// What the caller asked about caching.
#[derive(Debug, Clone, Default)]
pub struct Directives {
    /// `Cache-Control: no-cache` or `max-age=0`: go to the vendor, then refresh the entry.
    pub bypass: bool,
    /// `If-None-Match`, as sent.
    pub if_none_match: Option<String>,
}

/// A canonical request on its way to a backend.
#[derive(Debug, Clone)]
pub struct Call {
    /// The configured backend's name.
    pub backend: Arc<str>,
    pub request: CanonicalRequest,
    /// The caller's forwarded vendor credential, on backends configured for it.
    pub credential: Option<Secret>,
    /// A keyed, non-reversible fingerprint of the credential in use, forwarded or
    /// configured: callers with different vendor credentials never share a cache entry.
    pub partition: u64,
    pub directives: Directives,
    /// How long this backend's reads stay fresh.
    pub policy: CachePolicy,
}

/// What the cache did for a read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheInfo {
    /// The `Cache-Status` value (RFC 9211), e.g. `teamgate; hit`.
    pub status: &'static str,
    /// Seconds since the answer was fetched from the vendor.
    pub age_secs: u64,
    pub etag: Option<String>,
    /// The caller's `If-None-Match` matched: answer 304.
    pub not_modified: bool,
}

/// A backend's canonical answer, with what the cache did.
#[derive(Debug, Clone)]
pub struct Reply {
    pub response: CanonicalResponse,
    pub cache: Option<CacheInfo>,
}

impl Reply {
    /// An answer that did not go through the cache.
    pub fn uncached(response: CanonicalResponse) -> Reply {
        Reply {
            response,
            cache: None,
        }
    }
}
