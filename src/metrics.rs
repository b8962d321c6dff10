//! Prometheus metrics: names, labels and the registry, declared in one place.
//!
//! Label values come from closed sets only — canonical operation names, configured backend
//! names, HTTP status codes, upstream outcomes — never ids, paths, messages or credentials.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

pub const REQUESTS_TOTAL: &str = "teamgate_requests_total";
pub const UPSTREAM_REQUESTS_TOTAL: &str = "teamgate_upstream_requests_total";
pub const REQUEST_DURATION_SECONDS: &str = "teamgate_request_duration_seconds";
pub const UPSTREAM_DURATION_SECONDS: &str = "teamgate_upstream_request_duration_seconds";
pub const CONFIG_INFO: &str = "teamgate_config_info";
pub const BACKEND_SHED_TOTAL: &str = "teamgate_backend_shed_total";
pub const CIRCUIT_REFUSED_TOTAL: &str = "teamgate_circuit_refused_total";
pub const CONFIG_RELOADS_TOTAL: &str = "teamgate_config_reloads_total";
pub const LOG_LINES_DROPPED_TOTAL: &str = "teamgate_log_lines_dropped_total";
// Mirror mode (registered by `mirror/` when a backend has a mirror).
pub const MIRROR_WRITES_TOTAL: &str = "teamgate_mirror_writes_total";
pub const MIRROR_RETRIES_TOTAL: &str = "teamgate_mirror_retries_total";
pub const MIRROR_QUEUE_DEPTH: &str = "teamgate_mirror_queue_depth";
pub const MIRROR_SHADOW_READS_TOTAL: &str = "teamgate_mirror_shadow_reads_total";
pub const MIRROR_MISMATCHES_TOTAL: &str = "teamgate_mirror_mismatches_total";

/// Seconds: from a cache hit (sub-millisecond) to a vendor at its timeout.
const LATENCY_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// What became of one call to a vendor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamOutcome {
    /// A success answer.
    Ok,
    /// An answer that is a vendor error (any status, or an error body inside a 2xx).
    VendorError,
    /// An answer that could not be read (not JSON, too large).
    BadAnswer,
    Timeout,
    ConnectError,
    TransportError,
}

impl UpstreamOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamOutcome::Ok => "ok",
            UpstreamOutcome::VendorError => "vendor_error",
            UpstreamOutcome::BadAnswer => "bad_answer",
            UpstreamOutcome::Timeout => "timeout",
            UpstreamOutcome::ConnectError => "connect_error",
            UpstreamOutcome::TransportError => "transport_error",
        }
    }
}

/// The process's metrics. Created at start and passed in, so each test reads a clean one.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    upstream: IntCounterVec,
    duration: HistogramVec,
    upstream_duration: HistogramVec,
    config_info: IntGaugeVec,
    reloads: IntCounterVec,
    backend_shed: IntCounterVec,
    circuit_refused: IntCounterVec,
    log_lines_dropped: IntCounter,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                REQUESTS_TOTAL,
                "Canonical requests answered, by operation, backend and status.",
            ),
            &["operation", "backend", "status"],
        )
        .expect("valid metric");
        let upstream = IntCounterVec::new(
            Opts::new(
                UPSTREAM_REQUESTS_TOTAL,
                "Calls sent to vendors, by backend, operation and outcome.",
            ),
            &["backend", "operation", "outcome"],
        )
        .expect("valid metric");
        let duration = HistogramVec::new(
            HistogramOpts::new(
                REQUEST_DURATION_SECONDS,
                "Time to answer a canonical request.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["operation", "backend"],
        )
        .expect("valid metric");
        let upstream_duration = HistogramVec::new(
            HistogramOpts::new(
                UPSTREAM_DURATION_SECONDS,
                "Time of one call to a vendor, answered or not, by backend and operation.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["backend", "operation"],
        )
        .expect("valid metric");
        let config_info = IntGaugeVec::new(
            Opts::new(
                CONFIG_INFO,
                "The configuration in service: 1 for its hash (config and mappings).",
            ),
            &["hash"],
        )
        .expect("valid metric");
        let reloads = IntCounterVec::new(
            Opts::new(
                CONFIG_RELOADS_TOTAL,
                "Configuration reloads, by result (ok, or failed: the old one stays).",
            ),
            &["result"],
        )
        .expect("valid metric");
        let backend_shed = IntCounterVec::new(
            Opts::new(
                BACKEND_SHED_TOTAL,
                "Calls refused because their backend had its concurrency limit in flight.",
            ),
            &["backend"],
        )
        .expect("valid metric");
        let circuit_refused = IntCounterVec::new(
            Opts::new(
                CIRCUIT_REFUSED_TOTAL,
                "Calls refused because their backend's circuit was open.",
            ),
            &["backend"],
        )
        .expect("valid metric");
        let log_lines_dropped = IntCounter::new(
            LOG_LINES_DROPPED_TOTAL,
            "Log lines dropped because the log writer was full (stderr slower than the logs).",
        )
        .expect("valid metric");
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(upstream.clone()),
            Box::new(duration.clone()),
            Box::new(upstream_duration.clone()),
            Box::new(config_info.clone()),
            Box::new(reloads.clone()),
            Box::new(backend_shed.clone()),
            Box::new(circuit_refused.clone()),
            Box::new(log_lines_dropped.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric registered once");
        }
        Metrics {
            registry,
            requests,
            upstream,
            duration,
            upstream_duration,
            config_info,
            reloads,
            backend_shed,
            circuit_refused,
            log_lines_dropped,
        }
    }

    /// A call refused by its backend's open circuit.
    pub fn circuit_refused(&self, backend: &str) {
        self.circuit_refused.with_label_values(&[backend]).inc();
    }

    /// A call refused by its backend's bulkhead.
    pub fn shed(&self, backend: &str) {
        self.backend_shed.with_label_values(&[backend]).inc();
    }

    /// The configuration with this hash is now in service (the only series of the gauge).
    pub fn config_in_service(&self, hash: &str) {
        self.config_info.reset();
        self.config_info.with_label_values(&[hash]).set(1);
    }

    /// A reload happened; `ok` false when it was refused and the old configuration stayed.
    pub fn reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.reloads.with_label_values(&[result]).inc();
    }

    /// Reloads counted with this result, for tests.
    pub fn reloads(&self, ok: bool) -> u64 {
        let result = if ok { "ok" } else { "failed" };
        self.reloads.with_label_values(&[result]).get()
    }

    /// One canonical request answered.
    pub fn request(&self, operation: &str, backend: &str, status: u16, seconds: f64) {
        self.requests
            .with_label_values(&[operation, backend, &status.to_string()])
            .inc();
        self.duration
            .with_label_values(&[operation, backend])
            .observe(seconds);
    }

    /// One call sent to a vendor.
    pub fn upstream(&self, backend: &str, operation: &str, outcome: UpstreamOutcome) {
        self.upstream
            .with_label_values(&[backend, operation, outcome.as_str()])
            .inc();
    }

    /// How long one vendor call took.
    pub fn upstream_latency(&self, backend: &str, operation: &str, seconds: f64) {
        self.upstream_duration
            .with_label_values(&[backend, operation])
            .observe(seconds);
    }

    /// The number of calls counted for `backend` and `operation` (all outcomes), for tests.
    pub fn upstream_count(&self, backend: &str, operation: &str) -> u64 {
        [
            UpstreamOutcome::Ok,
            UpstreamOutcome::VendorError,
            UpstreamOutcome::BadAnswer,
            UpstreamOutcome::Timeout,
            UpstreamOutcome::ConnectError,
            UpstreamOutcome::TransportError,
        ]
        .iter()
        .map(|o| {
            self.upstream
                .with_label_values(&[backend, operation, o.as_str()])
                .get()
        })
        .sum()
    }

    /// The registry, for stages that declare their own metrics (the cache).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        // The log writer counts its drops; the counter catches up at each scrape.
        let dropped = crate::logs::dropped_lines();
        let counted = self.log_lines_dropped.get();
        if dropped > counted {
            self.log_lines_dropped.inc_by(dropped - counted);
        }
        let mut buffer = Vec::new();
        let encoder = TextEncoder::new();
        if encoder
            .encode(&self.registry.gather(), &mut buffer)
            .is_err()
        {
            return String::new();
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
