//! The mirror's metrics, registered in the process registry only when a mirror is configured.
//! Labels are configured backend names, canonical operation and field names, and closed sets
//! of results: never ids, names or vendor text.

use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};

use crate::metrics::{
    MIRROR_MISMATCHES_TOTAL, MIRROR_QUEUE_DEPTH, MIRROR_RETRIES_TOTAL, MIRROR_SHADOW_READS_TOTAL,
    MIRROR_WRITES_TOTAL,
};

/// What became of a write the primary answered, on its mirror.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Result {
    /// Repeated on the mirror.
    Ok,
    /// Nothing to repeat: the mirror cannot do it, or holds none of the fields written.
    Skipped,
    /// The mirror's counterpart (team or person) could not be found.
    Unmatched,
    /// The mirror refused it (a 4xx): not retried.
    Failed,
    /// Still failing after the last attempt.
    GaveUp,
    /// Refused by a full queue.
    Dropped,
    /// Still waiting at the shutdown timeout.
    Abandoned,
}

impl Result {
    fn as_str(self) -> &'static str {
        match self {
            Result::Ok => "ok",
            Result::Skipped => "skipped",
            Result::Unmatched => "unmatched",
            Result::Failed => "failed",
            Result::GaveUp => "gave_up",
            Result::Dropped => "dropped",
            Result::Abandoned => "abandoned",
        }
    }
}

#[derive(Clone)]
pub(super) struct MirrorMetrics {
    writes: IntCounterVec,
    retries: IntCounterVec,
    depth: IntGaugeVec,
    shadow: IntCounterVec,
    mismatches: IntCounterVec,
}

impl MirrorMetrics {
    pub fn new(registry: &Registry) -> MirrorMetrics {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric")
        };
        let m = MirrorMetrics {
            writes: counter(
                MIRROR_WRITES_TOTAL,
                "Writes answered by a backend, by what became of them on its mirror.",
                &["backend", "mirror", "result"],
            ),
            retries: counter(
                MIRROR_RETRIES_TOTAL,
                "Mirror write attempts that failed and were retried after a backoff.",
                &["backend", "mirror"],
            ),
            depth: IntGaugeVec::new(
                Opts::new(
                    MIRROR_QUEUE_DEPTH,
                    "Mirror jobs waiting or being replayed, by mirrored backend.",
                ),
                &["backend"],
            )
            .expect("valid metric"),
            shadow: counter(
                MIRROR_SHADOW_READS_TOTAL,
                "Reads also done on the mirror and compared, by result.",
                &["backend", "result"],
            ),
            mismatches: counter(
                MIRROR_MISMATCHES_TOTAL,
                "Fields on which a shadow read's mirror answer differed from the backend's.",
                &["backend", "operation", "field"],
            ),
        };
        for collector in [
            Box::new(m.writes.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(m.retries.clone()),
            Box::new(m.depth.clone()),
            Box::new(m.shadow.clone()),
            Box::new(m.mismatches.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric registered once");
        }
        m
    }

    pub fn write(&self, backend: &str, mirror: &str, result: Result, n: u64) {
        self.writes
            .with_label_values(&[backend, mirror, result.as_str()])
            .inc_by(n);
    }

    pub fn retry(&self, backend: &str, mirror: &str) {
        self.retries.with_label_values(&[backend, mirror]).inc();
    }

    /// The queue depth gauge of `backend`'s mirror.
    pub fn depth(&self, backend: &str) -> prometheus::IntGauge {
        self.depth.with_label_values(&[backend])
    }

    pub fn shadow(&self, backend: &str, result: &str) {
        self.shadow.with_label_values(&[backend, result]).inc();
    }

    pub fn mismatch(&self, backend: &str, operation: &str, field: &str) {
        self.mismatches
            .with_label_values(&[backend, operation, field])
            .inc();
    }
}
