//! Request metrics: one count and one duration per answered request, labelled by canonical
//! operation, backend and status (closed sets only; see [`crate::metrics`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http::{Request, Response};
use tower::{Layer, Service};

use crate::error::Error;
use crate::metrics::Metrics;

/// What a response was for, put in its extensions by the router.
#[derive(Debug, Clone)]
pub struct Labels {
    pub operation: &'static str,
    pub backend: Arc<str>,
}

/// The labels of a request that never reached the router (shed, or not routable).
const UNROUTED: &str = "unrouted";
const NO_BACKEND: &str = "none";

#[derive(Clone)]
pub struct MetricsLayer {
    metrics: Arc<Metrics>,
}

impl MetricsLayer {
    pub fn new(metrics: Arc<Metrics>) -> MetricsLayer {
        MetricsLayer { metrics }
    }
}

impl<S> Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;

    fn layer(&self, inner: S) -> MetricsService<S> {
        MetricsService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Clone)]
pub struct MetricsService<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S, B, ResBody> Service<Request<B>> for MetricsService<S>
where
    S: Service<Request<B>, Response = Response<ResBody>, Error = Error>,
    S::Future: Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ResBody>, Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let started = Instant::now();
        let metrics = self.metrics.clone();
        let answer = self.inner.call(req);
        Box::pin(async move {
            let result = answer.await;
            let seconds = started.elapsed().as_secs_f64();
            match &result {
                Ok(response) => {
                    let labels = response.extensions().get::<Labels>();
                    metrics.request(
                        labels.map_or(UNROUTED, |l| l.operation),
                        labels.map_or(NO_BACKEND, |l| &l.backend),
                        response.status().as_u16(),
                        seconds,
                    );
                }
                Err(error) => metrics.request(
                    error.operation.unwrap_or(UNROUTED),
                    error.backend.as_deref().unwrap_or(NO_BACKEND),
                    error.status(),
                    seconds,
                ),
            }
            result
        })
    }
}
