//! The admin stage: `GET /healthz` (alive), `/readyz` (ready for traffic), `/metrics` and
//! `/openapi.json` are answered here, above load shedding and the concurrency limit, so that
//! probes and scrapes are answered however busy the proxy is. None of them is cached.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use tower::{Layer, Service};

use super::measure::Labels;
use super::respond::{self, Body};
use crate::error::Error;
use crate::health::Health;
use crate::mapping::registry::Backends;
use crate::metrics::Metrics;

/// The paths the admin stage answers (GET), with the operation label of their metrics.
pub const ROUTES: [(&str, &str); 4] = [
    ("/healthz", "health"),
    ("/readyz", "ready"),
    ("/metrics", "metrics"),
    ("/openapi.json", "openapi"),
];

/// What the admin stage needs to answer.
#[derive(Clone)]
pub struct AdminLayer {
    backends: Arc<Backends>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

impl AdminLayer {
    pub fn new(backends: Arc<Backends>, metrics: Arc<Metrics>, health: Arc<Health>) -> Self {
        AdminLayer {
            backends,
            metrics,
            health,
        }
    }
}

impl<S> Layer<S> for AdminLayer {
    type Service = AdminService<S>;

    fn layer(&self, inner: S) -> AdminService<S> {
        AdminService {
            inner,
            admin: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct AdminService<S> {
    inner: S,
    admin: AdminLayer,
}

impl<S> Service<Request<Bytes>> for AdminService<S>
where
    S: Service<Request<Bytes>, Response = Response<Body>, Error = Error>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        // The load shedder below is always ready (it sheds in `call` instead of waiting), so
        // an admin request never waits here either.
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Bytes>) -> Self::Future {
        let a = &self.admin;
        let route = ROUTES
            .iter()
            .find(|(path, _)| req.method() == Method::GET && req.uri().path() == *path);
        let answer = route.map(|(_, label)| {
            let response = match *label {
                "health" => health(),
                "ready" => ready(&a.health, &a.backends),
                "metrics" => metrics(&a.metrics),
                _ => openapi(),
            };
            (response, *label)
        });
        match answer {
            Some((mut response, operation)) => {
                response.extensions_mut().insert(Labels {
                    operation,
                    backend: Arc::from("none"),
                });
                Box::pin(async move { Ok(response) })
            }
            None => Box::pin(self.inner.call(req)),
        }
    }
}

fn health() -> Response<Body> {
    respond::json(200, &json!({ "status": "ok" }))
}

/// 200 while the process takes traffic, 503 once it drains; names the configuration in
/// service and each backend with the digest of its mapping.
fn ready(health: &Health, backends: &Backends) -> Response<Body> {
    let draining = health.is_draining();
    let snapshot = backends.snapshot();
    let described: serde_json::Map<String, Value> = snapshot
        .iter()
        .map(|(name, served)| {
            let state = if draining { "draining" } else { "ready" };
            let about = json!({ "state": state, "mapping_digest": served.mapping_digest });
            (name.clone(), about)
        })
        .collect();
    let (status, word) = if draining {
        (503, "draining")
    } else {
        (200, "ready")
    };
    respond::json(
        status,
        &json!({
            "status": word,
            "config_hash": health.config_hash().as_str(),
            "backends": described,
        }),
    )
}

/// `GET /openapi.json`: the canonical API described (see [`crate::openapi`]).
fn openapi() -> Response<Body> {
    respond::json(200, crate::openapi::document())
}

fn metrics(metrics: &Metrics) -> Response<Body> {
    respond::text(
        StatusCode::OK,
        "text/plain; version=0.0.4",
        metrics.render(),
    )
}
