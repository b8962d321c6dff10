//! The inner end of the stack: a routed canonical request ([`Call`]) run on its backend.
//!
//! [`Execute`] is the tower service the cache stage wraps; [`Reply`] carries the canonical
//! answer plus what the cache says about it (for `Cache-Status`, `Age`, `ETag`).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::canonical::{CanonicalRequest, CanonicalResponse, Problem};
use crate::config::CachePolicy;
use crate::mapping::engine::{Backend, Secret};

/// What the caller asked about caching.
#[derive(Debug, Clone, Default)]
pub struct Directives {
    /// `Cache-Control: no-cache` or `max-age=0`: go to the vendor, then refresh the entry.
    pub bypass: bool,
    /// `If-None-Match`, as sent.
    pub if_none_match: Option<String>,
}

/// A canonical request on its way to a backend.
#[derive(Clone)]
pub struct Call {
    pub backend: Arc<Backend>,
    pub request: CanonicalRequest,
    /// The caller's forwarded vendor credential, on backends configured for it.
    pub credential: Option<Secret>,
    pub directives: Directives,
    /// How long this backend's reads stay fresh.
    pub policy: CachePolicy,
}

/// What the cache did for a read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheInfo {
    /// The `Cache-Status` value (RFC 9211), e.g. `teamgate; hit`.
    pub status: String,
    /// Seconds since the answer was fetched from the vendor.
    pub age_secs: u64,
    pub etag: Option<String>,
    /// The caller's `If-None-Match` matched: answer 304.
    pub not_modified: bool,
}

/// A backend's answer, with what the cache did.
pub struct Reply {
    pub result: Result<CanonicalResponse, Problem>,
    pub cache: Option<CacheInfo>,
}

/// Runs calls on their backend.
#[derive(Clone, Copy, Default)]
pub struct Execute;

impl tower::Service<Call> for Execute {
    type Response = Reply;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Reply, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: Call) -> Self::Future {
        Box::pin(async move {
            let result = match call.credential {
                Some(credential) => call.backend.execute_as(&call.request, credential).await,
                None => call.backend.execute(&call.request).await,
            };
            Ok(Reply {
                result,
                cache: None,
            })
        })
    }
}
