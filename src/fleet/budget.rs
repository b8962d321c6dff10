//! The vendor budget of a backend: calls per second and per minute, for the whole fleet.
//!
//! Each bound is a GCRA (generic cell rate algorithm: a token bucket kept as one timestamp,
//! the "theoretical arrival time"). For a limit of `L` calls per period `P`, the burst is
//! `B = ceil(L / 10)` calls and the emission interval `T = P / (L - B + 1)`, so that *any*
//! window of length `P` holds at most `L` calls whatever the vendor's own algorithm (a
//! token bucket, a fixed or a sliding window); the price is a sustained rate of about 90 %
//! of `L`. All bounds of a backend are decided together: a call is scheduled at the first
//! instant every bound allows it, and each bound's timestamp moves past it.
//!
//! With Redis up, the decision is one atomic Lua script over the backend's keys, on Redis's
//! own clock (`TIME`), so replicas whose clocks disagree still share one schedule. Without
//! Redis configured, the same algorithm runs in process with the whole budget; with Redis
//! configured but unreachable, in process with `fallback_budget_share` of it (1/N of the
//! budget for N replicas keeps the fleet within the vendor's limit meanwhile).
//!
//! A call that would have to wait past the request's deadline (what is left of
//! `request_timeout_ms`, less a margin for the call itself) is refused without taking a slot:
//! 429 `rate_limited` with `Retry-After`. A call that may wait reserves its slot, sleeps, then
//! goes. The budget wraps every attempt of the upstream client (below its retry), so it
//! counts vendor calls, not canonical requests.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service, ServiceExt};

use super::config::BudgetLimits;
use super::{FleetMetrics, Link};
use crate::error::{Error, ErrorCode, Origin};
use crate::upstream::{Upstream, UpstreamError, UpstreamRequest, UpstreamResponse};

tokio::task_local! {
    /// When the vendor work of the current request must be done.
    static DEADLINE: Instant;
}

/// When the vendor work of the current request must be done, if a request is being served.
pub fn deadline() -> Option<Instant> {
    DEADLINE.try_with(|d| *d).ok()
}

/// How long a call may wait for the budget when no request deadline is known (the CLI's
/// migrations, say).
const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(10);
/// Kept from the deadline for the call itself: a quarter of what is left, at least this,
/// at most half of it.
const CALL_MARGIN: Duration = Duration::from_millis(250);

/// One GCRA bound: emission interval and tolerance, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bound {
    interval: u64,
    tolerance: u64,
}

impl Bound {
    fn new(limit: u32, period: Duration) -> Bound {
        let limit = u64::from(limit.max(1));
        let burst = limit.div_ceil(10).max(1);
        // Rounded up: never a microsecond faster than the limit allows.
        let interval = (period.as_micros() as u64).div_ceil(limit - burst + 1);
        Bound {
            interval,
            tolerance: (burst - 1) * interval,
        }
    }
}

/// The decision of one scheduling: wait this long then go, or refused (and retry after).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Go(Duration),
    Refused(Duration),
}

/// GCRA over several bounds at `now` (µs), on timestamps `tats`; updates them when it goes.
fn schedule(bounds: &[Bound], tats: &mut [u64], now: u64, max_wait: u64) -> Decision {
    let mut at = now;
    for (bound, tat) in bounds.iter().zip(tats.iter()) {
        let tat = (*tat).max(now);
        at = at.max(tat.saturating_sub(bound.tolerance));
    }
    let wait = at - now;
    if wait > max_wait {
        return Decision::Refused(Duration::from_micros(wait));
    }
    for (bound, tat) in bounds.iter().zip(tats.iter_mut()) {
        *tat = (*tat).max(at) + bound.interval;
    }
    Decision::Go(Duration::from_micros(wait))
}

/// The same algorithm in Redis. KEYS: one per bound; ARGV: max wait (µs), then interval and
/// tolerance of each bound. Returns {1 = go | 0 = refused, wait µs}.
const SCRIPT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local max_wait = tonumber(ARGV[1])
local at = now
local tats = {}
for i = 1, #KEYS do
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  if tat < now then tat = now end
  tats[i] = tat
  local allowed = tat - tonumber(ARGV[2 * i + 1])
  if allowed > at then at = allowed end
end
local wait = at - now
if wait > max_wait then return {0, wait} end
for i = 1, #KEYS do
  local tat = tats[i]
  if tat < at then tat = at end
  local new = tat + tonumber(ARGV[2 * i])
  redis.call('SET', KEYS[i], string.format('%.0f', new), 'PX', math.floor((new - now) / 1000) + 1000)
end
return {1, wait}
"#;

/// The vendor budget of one backend.
pub struct Budget {
    backend: String,
    bounds: Vec<Bound>,
    /// The bounds in process while Redis is configured but unreachable.
    fallback: Vec<Bound>,
    /// Redis keys, one per bound, in one hash slot.
    keys: Vec<String>,
    /// The in-process timestamps (µs since `epoch`).
    local: Mutex<Vec<u64>>,
    epoch: Instant,
    link: Option<Arc<Link>>,
    script: redis::Script,
    metrics: Arc<FleetMetrics>,
}

impl Budget {
    pub(super) fn new(
        backend: &str,
        limits: BudgetLimits,
        link: Option<Arc<Link>>,
        prefix: &str,
        fallback_share: f64,
        metrics: Arc<FleetMetrics>,
    ) -> Budget {
        let mut bounds = Vec::new();
        let mut fallback = Vec::new();
        let mut keys = Vec::new();
        let share = |n: u32| ((f64::from(n) * fallback_share).floor() as u32).max(1);
        if let Some(n) = limits.per_second {
            bounds.push(Bound::new(n, Duration::from_secs(1)));
            fallback.push(Bound::new(share(n), Duration::from_secs(1)));
            keys.push(format!("{{{prefix}:budget:{backend}}}:second"));
        }
        if let Some(n) = limits.per_minute {
            bounds.push(Bound::new(n, Duration::from_secs(60)));
            fallback.push(Bound::new(share(n), Duration::from_secs(60)));
            keys.push(format!("{{{prefix}:budget:{backend}}}:minute"));
        }
        Budget {
            backend: backend.to_string(),
            local: Mutex::new(vec![0; bounds.len()]),
            bounds,
            fallback,
            keys,
            epoch: Instant::now(),
            link,
            script: redis::Script::new(SCRIPT),
            metrics,
        }
    }

    /// Waits for a slot for one vendor call; `Err(retry after)` when none comes before the
    /// request's deadline.
    pub async fn acquire(&self) -> Result<(), Duration> {
        let now = Instant::now();
        let max_wait = DEADLINE
            .try_with(|deadline| {
                let left = deadline.saturating_duration_since(now);
                left.saturating_sub((left / 4).max(CALL_MARGIN).min(left / 2))
            })
            .unwrap_or(DEFAULT_MAX_WAIT);
        let max_wait_us = max_wait.as_micros() as u64;
        let (decision, scope) = match self.in_redis(max_wait_us).await {
            Some(decision) => (decision, "fleet"),
            None => {
                let now_us = now.duration_since(self.epoch).as_micros() as u64;
                let bounds = match self.link {
                    Some(_) => &self.fallback,
                    None => &self.bounds,
                };
                let mut tats = self.local.lock().expect("budget lock");
                (schedule(bounds, &mut tats, now_us, max_wait_us), "local")
            }
        };
        let result = match decision {
            Decision::Go(wait) if wait.is_zero() => "now",
            Decision::Go(_) => "waited",
            Decision::Refused(_) => "refused",
        };
        self.metrics
            .budget
            .with_label_values(&[&self.backend, result, scope])
            .inc();
        match decision {
            Decision::Go(wait) => {
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
                Ok(())
            }
            Decision::Refused(wait) => Err(wait),
        }
    }

    async fn in_redis(&self, max_wait_us: u64) -> Option<Decision> {
        let link = self.link.as_ref()?;
        if !link.is_up() {
            return None;
        }
        let mut invocation = self.script.prepare_invoke();
        for key in &self.keys {
            invocation.key(key);
        }
        invocation.arg(max_wait_us);
        for bound in &self.bounds {
            invocation.arg(bound.interval).arg(bound.tolerance);
        }
        let (go, wait): (i64, i64) = link
            .run("budget", |mut conn| async move {
                invocation.invoke_async(&mut conn).await
            })
            .await?;
        let wait = Duration::from_micros(wait.max(0) as u64);
        Some(if go == 1 {
            Decision::Go(wait)
        } else {
            Decision::Refused(wait)
        })
    }
}

/// The upstream client of a backend with its budget taken before every attempt.
pub fn around(budget: Arc<Budget>, attempts: Upstream) -> Upstream {
    BoxCloneSyncService::new(Budgeted {
        budget,
        inner: attempts,
    })
}

#[derive(Clone)]
struct Budgeted {
    budget: Arc<Budget>,
    inner: Upstream,
}

impl Service<UpstreamRequest> for Budgeted {
    type Response = UpstreamResponse;
    type Error = UpstreamError;
    type Future = Pin<Box<dyn Future<Output = Result<UpstreamResponse, UpstreamError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), UpstreamError>> {
        // The inner client is polled ready when the slot is ours (`oneshot`).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: UpstreamRequest) -> Self::Future {
        let budget = self.budget.clone();
        let inner = self.inner.clone();
        Box::pin(async move {
            budget
                .acquire()
                .await
                .map_err(|wait| UpstreamError::OverBudget {
                    retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
                })?;
            inner.oneshot(request).await
        })
    }
}

/// The answer to a call refused by the budget: 429 `rate_limited` with `Retry-After`,
/// teamgate's own (the vendor was not called).
pub fn refused(retry_after_secs: u64) -> Error {
    let mut error = Error::new(
        ErrorCode::RateLimited,
        format!(
            "the backend's vendor budget allows no call before this request's deadline; retry after {retry_after_secs} s"
        ),
    )
    .from_origin(Origin::Teamgate);
    error.retry_after = Some(retry_after_secs);
    error
}

/// Sets the deadline of the vendor work of each request (what the budget may wait for); it
/// sits right above the request timeout, with the same duration.
#[derive(Clone)]
pub struct DeadlineLayer {
    within: Duration,
}

impl DeadlineLayer {
    pub fn new(within: Duration) -> DeadlineLayer {
        DeadlineLayer { within }
    }
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = DeadlineService<S>;

    fn layer(&self, inner: S) -> DeadlineService<S> {
        DeadlineService {
            inner,
            within: self.within,
        }
    }
}

#[derive(Clone)]
pub struct DeadlineService<S> {
    inner: S,
    within: Duration,
}

impl<S, R> Service<R> for DeadlineService<S>
where
    S: Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = tokio::task::futures::TaskLocalFuture<Instant, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        DEADLINE.scope(Instant::now() + self.within, self.inner.call(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_window_of_a_period_holds_at_most_the_limit() {
        for limit in [1u32, 5, 50, 300, 1000] {
            let bound = Bound::new(limit, Duration::from_secs(1));
            let mut tats = vec![0];
            // Callers as greedy as can be: every microsecond step, go when allowed.
            let mut sent = Vec::new();
            let mut now = 0u64;
            while now < 5_000_000 {
                match schedule(&[bound], &mut tats, now, 0) {
                    Decision::Go(_) => sent.push(now),
                    Decision::Refused(wait) => now += wait.as_micros() as u64 - 1,
                }
                now += 1;
            }
            for (i, start) in sent.iter().enumerate() {
                let within = sent[i..]
                    .iter()
                    .take_while(|t| **t < start + 1_000_000)
                    .count();
                assert!(
                    within <= limit as usize,
                    "limit {limit}: {within} in one second"
                );
            }
            // And nearly all of it is used.
            assert!(
                sent.len() as f64 >= 0.85 * 5.0 * limit as f64,
                "limit {limit}: {}",
                sent.len()
            );
        }
    }

    #[test]
    fn two_bounds_decide_together_and_a_refusal_takes_nothing() {
        let bounds = [
            Bound::new(10, Duration::from_secs(1)),
            Bound::new(20, Duration::from_secs(60)),
        ];
        let mut tats = vec![0, 0];
        let mut gone = 0;
        for _ in 0..100 {
            if let Decision::Go(_) = schedule(&bounds, &mut tats, 0, 0) {
                gone += 1;
            }
        }
        assert_eq!(gone, 1, "the per-second burst is ceil(10/10) = 1");
        let before = tats.clone();
        assert!(matches!(
            schedule(&bounds, &mut tats, 0, 0),
            Decision::Refused(_)
        ));
        assert_eq!(tats, before);
        // With time to wait, it is scheduled at the first instant both allow.
        assert!(
            matches!(schedule(&bounds, &mut tats, 0, 10_000_000), Decision::Go(w) if w > Duration::ZERO)
        );
    }
}
