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
    /// The caller's W3C trace context (or a new one), carried into the vendor calls.
    pub trace: Option<TraceContext>,
    /// The caller's `Idempotency-Key`, on the writes that take one.
    pub idempotency_key: Option<String>,
}

/// A W3C trace context (`traceparent`, `tracestate`): the caller's, or a new root, so that
/// the vendor calls made for a request carry its trace id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// 32 lowercase hex digits, not all zero.
    pub trace_id: String,
    /// The caller's span: 16 lowercase hex digits, not all zero.
    pub parent_id: String,
    pub flags: u8,
    /// `tracestate`, passed on untouched (bounded in length).
    pub state: Option<String>,
}

impl TraceContext {
    /// Reads `traceparent` (version `00`, or a later one read as `00` as the spec says);
    /// `None` when it is malformed, and then a new root is started instead.
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Option<TraceContext> {
        let parts: Vec<&str> = traceparent.trim().split('-').collect();
        let [version, trace_id, parent_id, flags, ..] = parts.as_slice() else {
            return None;
        };
        let lower_hex = |s: &str, len: usize| {
            s.len() == len
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        let valid = lower_hex(version, 2)
            && *version != "ff"
            && (*version != "00" || parts.len() == 4)
            && lower_hex(trace_id, 32)
            && trace_id.bytes().any(|b| b != b'0')
            && lower_hex(parent_id, 16)
            && parent_id.bytes().any(|b| b != b'0')
            && lower_hex(flags, 2);
        if !valid {
            return None;
        }
        Some(TraceContext {
            trace_id: trace_id.to_string(),
            parent_id: parent_id.to_string(),
            flags: u8::from_str_radix(flags, 16).ok()?,
            state: tracestate
                .map(str::trim)
                .filter(|s| !s.is_empty() && s.len() <= 512)
                .map(str::to_string),
        })
    }

    /// A new trace, for a request that came without one (not sampled: teamgate records no
    /// traces itself).
    pub fn new_root() -> TraceContext {
        TraceContext {
            trace_id: format!("{:032x}", rand::random::<u128>() | 1),
            parent_id: format!("{:016x}", rand::random::<u64>() | 1),
            flags: 0,
            state: None,
        }
    }

    /// The `traceparent` of a call made on behalf of this context: same trace, a new span.
    pub fn child_traceparent(&self) -> String {
        format!(
            "00-{}-{:016x}-{:02x}",
            self.trace_id,
            rand::random::<u64>() | 1,
            self.flags
        )
    }
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

#[cfg(test)]
mod tests {
    use super::TraceContext;

    #[test]
    fn a_valid_traceparent_is_read_and_continued_with_a_new_span() {
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let trace = TraceContext::parse(parent, Some("congo=t61rcWkgMzE")).unwrap();
        assert_eq!(trace.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(trace.flags, 1);
        assert_eq!(trace.state.as_deref(), Some("congo=t61rcWkgMzE"));
        let child = trace.child_traceparent();
        let parts: Vec<&str> = child.split('-').collect();
        assert_eq!(parts[0], "00");
        assert_eq!(parts[1], trace.trace_id);
        assert_eq!(parts[2].len(), 16);
        assert_ne!(parts[2], "00f067aa0ba902b7", "a new span id");
        assert_eq!(parts[3], "01");
    }

    #[test]
    fn malformed_traceparents_are_refused() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::parse(bad, None), None, "{bad:?}");
        }
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what";
        assert!(
            TraceContext::parse(later, None).is_some(),
            "a later version"
        );
        let root = TraceContext::new_root();
        assert!(TraceContext::parse(&root.child_traceparent(), None).is_some());
    }
}
