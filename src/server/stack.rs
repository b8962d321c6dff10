//! The request path, composed in exactly one place. It reads top to bottom like a request's
//! journey; each stage is a tower `Layer` in its own file:
//!
//! ```text
//! request id → problem edge → trace span → metrics → body (timeout, limit, JSON)
//!   → admin (/healthz, /readyz, /metrics, /openapi.json: never shed) → load shed
//!   → concurrency limit → canonical router → idempotency keys → read cache
//!   → mirror (a mirrored backend's answered writes handed to its mirror)
//!   → backend guard (circuit breaker, bulkhead) → request timeout → mapping engine
//!   → (inside each backend) upstream client: retry → timeout → pooled hyper client
//! ```
//!
//! Below the problem edge every stage answers `Result<_, Error>`; the edge turns an error into
//! its problem+json answer, so hyper only ever sees a response. The body is read before the
//! concurrency limit, within its own timeout, so a slow client holds no slot; probes and
//! scrapes are answered above the shedder, so a busy proxy still says it is alive.

use std::convert::Infallible;
use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;
use tower::util::BoxCloneSyncService;
use tower::ServiceBuilder;

use super::admin::AdminLayer;
use super::body::BodyLayer;
use super::measure::MetricsLayer;
use super::problem::ProblemLayer;
use super::request_id::RequestIdLayer;
use super::respond::Body;
use super::router::RouterLayer;
use super::trace::TraceLayer;
use crate::cache::{CacheLayer, ReadCache};
use crate::callers::Callers;
use crate::config::ServerLimits;
use crate::health::Health;
use crate::idempotency::{Idempotency, IdempotencyLayer};
use crate::mapping::guard::GuardLayer;
use crate::mapping::registry::Backends;
use crate::mapping::service::Engine;
use crate::metrics::Metrics;
use crate::mirror::{MirrorLayer, Mirrors};

/// The whole request path; infallible, every failure has become a problem answer.
pub type HttpService = BoxCloneSyncService<Request<Incoming>, Response<Body>, Infallible>;

/// The shared state the stages of the request path hold.
pub struct Parts {
    pub backends: Arc<Backends>,
    pub cache: Arc<ReadCache>,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    pub callers: Arc<Callers>,
    pub mirrors: Arc<Mirrors>,
    /// `[fleet]`, when configured.
    pub fleet: Option<Arc<crate::fleet::Fleet>>,
}

pub fn build(parts: Parts, limits: &ServerLimits) -> HttpService {
    let Parts {
        backends,
        cache,
        metrics,
        health,
        callers,
        mirrors,
        fleet,
    } = parts;
    let deadline = fleet
        .as_ref()
        .map(|_| crate::fleet::DeadlineLayer::new(limits.request_timeout));
    let stack = ServiceBuilder::new()
        .layer(RequestIdLayer)
        .layer(ProblemLayer)
        .layer(TraceLayer)
        .layer(MetricsLayer::new(metrics.clone()))
        .layer(BodyLayer::new(limits.max_body_bytes, limits.body_timeout))
        .layer(AdminLayer::new(backends.clone(), metrics.clone(), health))
        .map_err(crate::error::from_tower)
        // Refuse at once rather than queue without bound when every slot is busy.
        .load_shed()
        // Clones share one semaphore, so this bounds the whole process.
        .concurrency_limit(limits.concurrency_limit)
        .layer(RouterLayer::new(backends.clone(), callers))
        // A repeated POST with its Idempotency-Key answers the first result.
        .layer(IdempotencyLayer::new(Idempotency::new(
            limits.idempotency_window,
            fleet
                .as_ref()
                .and_then(|f| f.idempotency(limits.idempotency_window)),
        )))
        // Reads answered from memory never reach the mapping engine.
        .layer(CacheLayer::new(cache))
        // A mirrored backend's answered writes (and sampled reads) go to its mirror's queue.
        .layer(MirrorLayer::new(mirrors))
        // Each backend's circuit and its own budget of calls in flight. Above the request
        // timeout, so the circuit is told of a call cut short as the timeout it is; a call
        // it sees dropped is one whose caller went away, which says nothing of the vendor.
        .layer(GuardLayer::new(backends.clone(), metrics.clone()))
        .map_err(crate::error::from_tower)
        // `[fleet]`: how long the vendor budget may make a call wait (the same deadline).
        .option_layer(deadline)
        // The vendor work of a request, all its upstream steps included. Below the cache and
        // the idempotency keys, so that a write cut short is still seen by both (its outcome
        // is unknown: they invalidate and remember it as such).
        .timeout(limits.request_timeout)
        .service(Engine::new(backends));
    BoxCloneSyncService::new(stack)
}
