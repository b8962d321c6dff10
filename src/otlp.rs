//! OpenTelemetry export of the tracing spans (the `otlp` cargo feature, off by default).
//!
//! When `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set,
//! [`start`] builds an OTLP/HTTP (protobuf) exporter and a batch processor that runs on the
//! tokio runtime; [`Exporter::layer`] turns teamgate's tracing spans (`request`, `upstream`)
//! into OpenTelemetry spans. Without the variable nothing starts and nothing changes.
//!
//! The exported `request` span continues the caller's W3C trace ([`attach`]): its parent is
//! the caller's span, its trace id the caller's. A request without a trace context becomes a
//! root span, whose ids then stand for the request's trace (in the logs and towards the
//! vendors). A vendor call's `traceparent` names the exported `upstream` span as its parent
//! ([`traceparent`]), so the vendor's spans hang under it.
//!
//! The standard `OTEL_*` variables apply: `OTEL_SERVICE_NAME` (else `teamgate`),
//! `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_TRACES_SAMPLER`, the
//! `OTEL_BSP_*` batch settings. Only `http/protobuf` is built in.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider as _,
};
use opentelemetry_http::hyper::HyperClient;
use opentelemetry_otlp::{ExporterBuildError, Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::runtime;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing::Subscriber;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::call::TraceContext;

/// The variables that name a collector; either one starts the exporter.
pub const ENDPOINT_VARS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];

/// Set once an exporter has started: before (and without) one, the hooks do nothing.
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// A running exporter. [`Exporter::shutdown`] sends what is still buffered.
pub struct Exporter {
    provider: SdkTracerProvider,
}

/// Whether a collector is configured.
pub fn endpoint_configured() -> bool {
    ENDPOINT_VARS
        .iter()
        .any(|var| std::env::var_os(var).is_some_and(|v| !v.is_empty()))
}

/// Starts the exporter when a collector is configured, else `Ok(None)`. Must be called
/// inside the tokio runtime that will run the exports (the batch task is spawned on it).
pub fn start() -> Result<Option<Exporter>, ExporterBuildError> {
    if !endpoint_configured() {
        return Ok(None);
    }
    // The endpoint itself, the headers and the retry policy are read by the exporter.
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .build();
    let client = HyperClient::new(connector, export_timeout(), None);
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_http_client(client)
        .build()?;
    let processor = BatchSpanProcessor::builder(exporter, runtime::Tokio).build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(resource())
        .build();
    EXPORTING.store(true, Ordering::Release);
    Ok(Some(Exporter { provider }))
}

/// `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`, else `OTEL_EXPORTER_OTLP_TIMEOUT` (milliseconds),
/// else 10 s: how long one export may take.
fn export_timeout() -> Duration {
    [
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
        "OTEL_EXPORTER_OTLP_TIMEOUT",
    ]
    .iter()
    .find_map(|var| std::env::var(var).ok()?.trim().parse::<u64>().ok())
    .map_or(Duration::from_secs(10), Duration::from_millis)
}

/// The service is `teamgate` unless `OTEL_SERVICE_NAME` (or `service.name` in
/// `OTEL_RESOURCE_ATTRIBUTES`) says otherwise.
fn resource() -> Resource {
    let detected = Resource::builder().build();
    let named = detected
        .get(&opentelemetry::Key::from_static_str("service.name"))
        .is_some_and(|name| !name.as_str().starts_with("unknown_service"));
    if named {
        detected
    } else {
        Resource::builder().with_service_name("teamgate").build()
    }
}

impl Exporter {
    /// The tracing layer that exports teamgate's spans. Only spans and events of teamgate's
    /// own code are exported: the HTTP client's own spans (at debug level) would otherwise
    /// be exported by the very exports that make them.
    pub fn layer<S>(&self) -> impl Layer<S> + Send + Sync + 'static
    where
        S: Subscriber + for<'span> LookupSpan<'span> + Send + Sync,
    {
        tracing_opentelemetry::layer()
            .with_tracer(self.provider.tracer("teamgate"))
            .with_filter(Targets::new().with_target("teamgate", tracing::Level::TRACE))
    }

    /// Exports what is still buffered and stops. Call it from outside the runtime's worker
    /// threads (it blocks until the batch task, running on them, is done).
    pub fn shutdown(self) -> OTelSdkResult {
        EXPORTING.store(false, Ordering::Release);
        self.provider.shutdown()
    }
}

/// Joins the request span to its trace: with a caller's context (`continued`), the caller's
/// span becomes its remote parent; without one, the exported root span's own ids become the
/// request's trace context. Without an exporter the context comes back unchanged.
pub fn attach(span: &tracing::Span, trace: TraceContext, continued: bool) -> TraceContext {
    if !EXPORTING.load(Ordering::Acquire) || span.is_disabled() {
        return trace;
    }
    if continued {
        if let Some(parent) = remote_parent(&trace) {
            let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(parent));
        }
        return trace;
    }
    let context = span.context();
    let own = context.span().span_context().clone();
    if !own.is_valid() {
        return trace;
    }
    let root = TraceContext {
        trace_id: format!("{:032x}", own.trace_id()),
        parent_id: format!("{:016x}", own.span_id()),
        flags: own.trace_flags().to_u8(),
        state: None,
    };
    root
}

/// The `traceparent` of a vendor call made in `span` (an `upstream` span) for `trace`: the
/// exported span's ids, so that the vendor's spans hang under it. `None` without an
/// exporter, or when that span is not part of the request's exported trace.
pub fn traceparent(span: &tracing::Span, trace: &TraceContext) -> Option<String> {
    if !EXPORTING.load(Ordering::Acquire) || span.is_disabled() {
        return None;
    }
    let context = span.context();
    let own = context.span().span_context().clone();
    let trace_id = format!("{:032x}", own.trace_id());
    (own.is_valid() && trace_id == trace.trace_id).then(|| {
        format!(
            "00-{trace_id}-{:016x}-{:02x}",
            own.span_id(),
            own.trace_flags().to_u8()
        )
    })
}

/// The caller's span as a remote OpenTelemetry span context (tracestate included).
fn remote_parent(trace: &TraceContext) -> Option<SpanContext> {
    let trace_id = TraceId::from_hex(&trace.trace_id).ok()?;
    let span_id = SpanId::from_hex(&trace.parent_id).ok()?;
    let state = trace
        .state
        .as_deref()
        .and_then(|s| s.parse::<TraceState>().ok())
        .unwrap_or_default();
    Some(SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::new(trace.flags),
        true,
        state,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_callers_context_becomes_a_remote_parent() {
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let trace = TraceContext::parse(parent, Some("congo=t61rcWkgMzE")).unwrap();
        let remote = remote_parent(&trace).unwrap();
        assert!(remote.is_remote() && remote.is_valid() && remote.is_sampled());
        assert_eq!(
            remote.trace_id().to_bytes(),
            [
                0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e,
                0x47, 0x36
            ]
        );
        assert_eq!(format!("{:016x}", remote.span_id()), "00f067aa0ba902b7");
        assert_eq!(remote.trace_state().get("congo"), Some("t61rcWkgMzE"));
    }

    #[test]
    fn without_an_exporter_the_hooks_change_nothing() {
        let trace = TraceContext::new_root();
        let span = tracing::info_span!("request");
        assert_eq!(attach(&span, trace.clone(), false), trace);
        assert_eq!(traceparent(&span, &trace), None);
    }
}
