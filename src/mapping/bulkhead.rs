//! The bulkhead stage: each backend has its own budget of calls in flight, so a slow or
//! stalled vendor sheds only its own traffic and leaves the rest of the process's concurrency
//! to the other backends. Past the budget a call is refused at once: 503
//! `upstream_unavailable` with `Retry-After`, counted by backend. It sits below the read
//! cache: answers from memory need no slot.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower::{Layer, Service, ServiceExt};

use super::registry::Backends;
use crate::call::{Call, Reply};
use crate::error::{Error, ErrorCode, Origin};
use crate::metrics::Metrics;

#[derive(Clone)]
pub struct BulkheadLayer {
    backends: Arc<Backends>,
    metrics: Arc<Metrics>,
}

impl BulkheadLayer {
    pub fn new(backends: Arc<Backends>, metrics: Arc<Metrics>) -> BulkheadLayer {
        BulkheadLayer { backends, metrics }
    }
}

impl<S> Layer<S> for BulkheadLayer {
    type Service = Bulkhead<S>;

    fn layer(&self, inner: S) -> Bulkhead<S> {
        Bulkhead {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Bulkhead<S> {
    inner: S,
    layer: BulkheadLayer,
}

impl<S> Service<Call> for Bulkhead<S>
where
    S: Service<Call, Response = Reply, Error = Error> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = Reply;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Reply, Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        // The budget is per backend, known only from the call: decided in `call`.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: Call) -> Self::Future {
        let inner = self.inner.clone();
        let served = self.layer.backends.get(&call.backend);
        let metrics = self.layer.metrics.clone();
        Box::pin(async move {
            let Some(served) = served else {
                return inner.oneshot(call).await;
            };
            let Ok(slot) = served.slots.clone().try_acquire_owned() else {
                metrics.shed(&call.backend);
                let mut shed = Error::new(
                    ErrorCode::UpstreamUnavailable,
                    format!(
                        "backend `{}` has {} calls in flight, its limit; retry shortly",
                        call.backend, served.concurrency_limit
                    ),
                )
                .from_origin(Origin::Teamgate);
                shed.retry_after = Some(1);
                return Err(shed);
            };
            let result = inner.oneshot(call).await;
            drop(slot);
            result
        })
    }
}
