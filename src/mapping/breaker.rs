//! A backend's circuit: a backend that keeps failing (vendor 5xx, timeouts, refused or broken
//! connections) is given a rest. After `breaker_failures` failures in a row its circuit opens:
//! calls are refused at once for `breaker_open_ms` instead of each waiting for the vendor to
//! fail again. Then one call probes it: success closes the circuit, failure opens it again.
//! The guard stage ([`super::guard`]) asks it before each call and tells it each outcome.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::call::Reply;
use crate::error::{Error, ErrorCode, Origin};

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
pub(super) enum Admit {
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

    pub(super) fn admit(&self) -> Admit {
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
    pub(super) fn record(&self, vendor_failed: bool, probe: bool) {
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

    /// A call that ended without a verdict (its caller went away, or a probe found no free
    /// slot): a non-probe changes nothing; a probe hands the probing to the next call.
    pub(super) fn abandon(&self, probe: bool) {
        if !probe {
            return;
        }
        let mut state = self.state.lock().expect("breaker state");
        if *state == State::Probing {
            *state = State::Open {
                until: Instant::now(),
            };
        }
    }
}

/// Whether an outcome counts against the vendor: it failed or did not answer. A refusal (4xx)
/// or a throttle (429) is the vendor working as it should.
pub(super) fn vendor_failed(result: &Result<Reply, Error>) -> bool {
    match result {
        Ok(_) => false,
        Err(e) => {
            matches!(e.origin, Origin::Vendor | Origin::Network)
                && e.status() >= 500
                && e.code != ErrorCode::UnsupportedOperation
        }
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
        for _ in 0..10 {
            b.abandon(false);
        }
        assert!(
            matches!(b.admit(), Admit::Go),
            "abandoned calls are no failures"
        );
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
        b.abandon(true);
        assert!(
            matches!(b.admit(), Admit::Probe),
            "an abandoned probe hands the probing to the next call at once"
        );
        b.record(false, true);
        assert!(matches!(b.admit(), Admit::Go), "a good probe closes it");
    }
}
