//! The circuit breaker stage: a backend that keeps failing (vendor 5xx, timeouts, refused or
//! broken connections) is given a rest. After `breaker_failures` failures in a row its circuit
//! opens: calls are refused at once — 503 `upstream_unavailable` with `Retry-After` for the
//! rest of `breaker_open_ms`, counted by backend — instead of each waiting for the vendor to
//! fail again. Then one call probes it: success closes the circuit, failure opens it again.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};

use super::registry::Backends;
use crate::call::{Call, Reply};
use crate::error::{Error, ErrorCode, Origin};
use crate::metrics::Metrics;

/// One backend's circuit.
pub struct Breaker {
    failures_to_open: u32,
    open_for: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One probe is out; everyone else is refused until it answers.
    Probing,
}

/// What the breaker lets a call do.
enum Admit {
    Go,
    Probe,
    Refuse { retry_after: Duration },
}

impl Breaker {
    pub fn new(failures_to_open: u32, open_for: Duration) -> Breaker {
        Breaker {
            failures_to_open: failures_to_open.max(1),
            open_for,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    fn admit(&self) -> Admit {
        let mut state = self.state.lock().expect("breaker state");
        match *state {
            State::Closed { .. } => Admit::Go,
            State::Open { until } => {
                let now = Instant::now();
                if now >= until {
                    *state = State::Probing;
                    Admit::Probe
                } else {
                    Admit::Refuse {
                        retry_after: until - now,
                    }
                }
            }
            State::Probing => Admit::Refuse {
                retry_after: Duration::from_secs(1),
            },
        }
    }

    /// What a call's outcome says about the vendor.
    fn record(&self, vendor_failed: bool, probe: bool) {
        let mut state = self.state.lock().expect("breaker state");
        *state = match (*state, vendor_failed) {
            (_, false) => State::Closed { failures: 0 },
            (State::Closed { failures }, true)
                if !probe && failures + 1 < self.failures_to_open =>
            {
                State::Closed {
                    failures: failures + 1,
                }
            }
            (_, true) => State::Open {
                until: Instant::now() + self.open_for,
            },
        };
    }
}

/// Whether an outcome counts against the vendor: it failed or did not answer. A refusal (4xx)
/// or a throttle (429) is the vendor working as it should.
fn vendor_failed(result: &Result<Reply, Error>) -> bool {
    match result {
        Ok(_) => false,
        Err(e) => {
            matches!(e.origin, Origin::Vendor | Origin::Network)
                && e.status() >= 500
                && e.code != ErrorCode::UnsupportedOperation
        }
    }
}

#[derive(Clone)]
pub struct BreakerLayer {
    backends: Arc<Backends>,
    metrics: Arc<Metrics>,
}

impl BreakerLayer {
    pub fn new(backends: Arc<Backends>, metrics: Arc<Metrics>) -> BreakerLayer {
        BreakerLayer { backends, metrics }
    }
}

impl<S> Layer<S> for BreakerLayer {
    type Service = BreakerService<S>;

    fn layer(&self, inner: S) -> BreakerService<S> {
        BreakerService {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct BreakerService<S> {
    inner: S,
    layer: BreakerLayer,
}

impl<S> Service<Call> for BreakerService<S>
where
    S: Service<Call, Response = Reply, Error = Error> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = Reply;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Reply, Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        // The circuit is per backend, known only from the call: decided in `call`.
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
            let breaker = served.breaker;
            let probe = match breaker.admit() {
                Admit::Go => false,
                Admit::Probe => true,
                Admit::Refuse { retry_after } => {
                    metrics.circuit_refused(&call.backend);
                    let secs = retry_after.as_secs_f64().ceil().max(1.0) as u64;
                    let mut refused = Error::new(
                        ErrorCode::UpstreamUnavailable,
                        format!(
                            "backend `{}` keeps failing; its circuit is open for {secs} s more",
                            call.backend
                        ),
                    )
                    .from_origin(Origin::Teamgate);
                    refused.retry_after = Some(secs);
                    return Err(refused);
                }
            };
            let result = inner.oneshot(call).await;
            breaker.record(vendor_failed(&result), probe);
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn opens_after_failures_in_a_row_refuses_then_probes_once() {
        let b = Breaker::new(3, Duration::from_secs(10));
        for _ in 0..2 {
            assert!(matches!(b.admit(), Admit::Go));
            b.record(true, false);
        }
        b.record(false, false);
        for _ in 0..3 {
            assert!(matches!(b.admit(), Admit::Go), "a success reset the count");
            b.record(true, false);
        }
        assert!(
            matches!(b.admit(), Admit::Refuse { .. }),
            "three in a row open it"
        );
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(matches!(b.admit(), Admit::Probe));
        assert!(
            matches!(b.admit(), Admit::Refuse { .. }),
            "one probe at a time"
        );
        b.record(true, true);
        assert!(
            matches!(b.admit(), Admit::Refuse { .. }),
            "a failed probe opens it again"
        );
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(matches!(b.admit(), Admit::Probe));
        b.record(false, true);
        assert!(matches!(b.admit(), Admit::Go), "a good probe closes it");
    }
}
