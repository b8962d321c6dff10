//! The backend guard stage: what each backend allows before a call reaches its vendor.
//!
//! - Its **circuit** ([`Breaker`]): while open, calls are refused at once — 503
//!   `upstream_unavailable` with `Retry-After` for the rest of the rest — counted in
//!   `teamgate_circuit_refused_total{backend}`.
//! - Its **bulkhead**: a budget of calls in flight of its own (half the server's by default),
//!   so a slow or stalled vendor sheds only its own traffic; past it 503 with `Retry-After`,
//!   counted in `teamgate_backend_shed_total{backend}`.
//!
//! It sits below the read cache: answers from memory need neither.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower::{Layer, Service, ServiceExt};

use super::breaker::{vendor_failed, Admit};
use super::registry::{Backends, Served};
use crate::call::{Call, Reply};
use crate::error::{Error, ErrorCode, Origin};
use crate::metrics::Metrics;

#[derive(Clone)]
pub struct GuardLayer {
    backends: Arc<Backends>,
    metrics: Arc<Metrics>,
}

impl GuardLayer {
    pub fn new(backends: Arc<Backends>, metrics: Arc<Metrics>) -> GuardLayer {
        GuardLayer { backends, metrics }
    }
}

impl<S> Layer<S> for GuardLayer {
    type Service = Guard<S>;

    fn layer(&self, inner: S) -> Guard<S> {
        Guard {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Guard<S> {
    inner: S,
    layer: GuardLayer,
}

impl<S> Service<Call> for Guard<S>
where
    S: Service<Call, Response = Reply, Error = Error> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = Reply;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Reply, Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        // The guards are per backend, known only from the call: decided in `call`.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: Call) -> Self::Future {
        let inner = self.inner.clone();
        let served = self.layer.backends.get(&call.backend);
        let metrics = self.layer.metrics.clone();
        Box::pin(async move {
            match served {
                Some(served) => guarded(inner, call, served, &metrics).await,
                None => inner.oneshot(call).await,
            }
        })
    }
}

async fn guarded<S>(inner: S, call: Call, served: Served, metrics: &Metrics) -> Result<Reply, Error>
where
    S: Service<Call, Response = Reply, Error = Error>,
{
    let probe = match served.breaker.admit() {
        Admit::Go => false,
        Admit::Probe => true,
        Admit::Refuse { retry_after } => {
            metrics.circuit_refused(&call.backend);
            let secs = retry_after.as_secs_f64().ceil().max(1.0) as u64;
            let detail = format!(
                "backend `{}` keeps failing; its circuit is open for {secs} s more",
                call.backend
            );
            return Err(refused(detail, secs));
        }
    };
    let Ok(slot) = served.slots.clone().try_acquire_owned() else {
        metrics.shed(&call.backend);
        // A probe that could not run leaves the circuit to the next call.
        if probe {
            served.breaker.abandon(true);
        }
        let detail = format!(
            "backend `{}` has {} calls in flight, its limit; retry shortly",
            call.backend, served.concurrency_limit
        );
        return Err(refused(detail, 1));
    };
    // The request timeout sits below this stage, so a call that ran out of time finishes here
    // as an error, and counts. One dropped half-way was abandoned by its caller (a closed
    // connection): no verdict on the vendor, but a probe must never leave the circuit waiting
    // for an answer that never comes.
    let mut outcome = Outcome {
        served: &served,
        probe,
        verdict: None,
    };
    let result = inner.oneshot(call).await;
    drop(slot);
    outcome.verdict = Some(vendor_failed(&result));
    drop(outcome);
    result
}

/// Records a call's outcome in its backend's circuit when dropped; a call dropped before it
/// finished is abandoned.
struct Outcome<'a> {
    served: &'a Served,
    probe: bool,
    /// Whether the vendor failed, once the call has finished.
    verdict: Option<bool>,
}

impl Drop for Outcome<'_> {
    fn drop(&mut self) {
        match self.verdict {
            Some(failed) => self.served.breaker.record(failed, self.probe),
            None => self.served.breaker.abandon(self.probe),
        }
    }
}

/// A call turned away before its vendor: 503 with `Retry-After`.
fn refused(detail: String, retry_after_secs: u64) -> Error {
    let mut error =
        Error::new(ErrorCode::UpstreamUnavailable, detail).from_origin(Origin::Teamgate);
    error.retry_after = Some(retry_after_secs);
    error
}
