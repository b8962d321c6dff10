//! A tracing span per request, attached to the request's future with [`Instrument`] (never an
//! `enter()` guard held across an `.await`: `clippy.toml` forbids it), and one log line when
//! the request is answered. The router records the operation and backend on the span.
//!
//! The request's W3C trace context (`traceparent`, `tracestate`) is read here, or a new one
//! started; its trace id goes on the span, and the context into the request's extensions, so
//! that the vendor calls made for the request carry it. With the `otlp` feature and an
//! exporter running, the exported span continues that trace (`crate::otlp::attach`).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use http::{Request, Response};
use tower::{Layer, Service};
use tracing::Instrument;

use super::request_id::RequestId;
use crate::call::TraceContext;
use crate::error::Error;

#[derive(Clone, Copy, Default)]
pub struct TraceLayer;

impl<S> Layer<S> for TraceLayer {
    type Service = TraceService<S>;

    fn layer(&self, inner: S) -> TraceService<S> {
        TraceService { inner }
    }
}

#[derive(Clone)]
pub struct TraceService<S> {
    inner: S,
}

impl<S, B, ResBody> Service<Request<B>> for TraceService<S>
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

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
        let caller = header("traceparent")
            .and_then(|parent| TraceContext::parse(parent, header("tracestate")));
        #[cfg(feature = "otlp")]
        let continued = caller.is_some();
        let trace = caller.unwrap_or_else(TraceContext::new_root);
        let request_id = req
            .extensions()
            .get::<RequestId>()
            .map(|id| id.0.as_str())
            .unwrap_or_default();
        let span = tracing::info_span!(
            "request",
            request_id = %request_id,
            // Recorded below, once the trace is settled.
            trace_id = tracing::field::Empty,
            method = %req.method(),
            operation = tracing::field::Empty,
            backend = tracing::field::Empty,
        );
        // With the `otlp` feature, the exported span continues the caller's trace (or, a new
        // root, gives the trace its ids).
        #[cfg(feature = "otlp")]
        let trace = crate::otlp::attach(&span, trace, continued);
        span.record("trace_id", tracing::field::display(&trace.trace_id));
        req.extensions_mut().insert(trace);
        let started = Instant::now();
        // The inner call runs inside the span too: stages that work before their future is
        // polled (the router's synchronous part, say) log into it.
        let answer = span.in_scope(|| self.inner.call(req));
        Box::pin(
            async move {
                let result = answer.await;
                let elapsed_ms = started.elapsed().as_millis() as u64;
                match &result {
                    Ok(response) => {
                        tracing::info!(
                            status = response.status().as_u16(),
                            elapsed_ms,
                            "Request answered"
                        )
                    }
                    Err(error) if error.status() >= 500 => tracing::warn!(
                        status = error.status(),
                        elapsed_ms,
                        code = error.code.as_str(),
                        origin = error.origin.as_str(),
                        detail = %error.detail,
                        "Request failed"
                    ),
                    Err(error) => tracing::info!(
                        status = error.status(),
                        elapsed_ms,
                        code = error.code.as_str(),
                        "Request answered"
                    ),
                }
                result
            }
            .instrument(span),
        )
    }
}
