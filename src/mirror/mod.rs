//! Mirror mode, for the switch-over between two backends: `[backends.X] mirror = "Y"`.
//!
//! Every canonical write that succeeds on X (`create_team`, `update_team`, `delete_team`,
//! `add_member`, `update_member`, `remove_member`) is repeated on Y **after X has answered**:
//! the request path only puts a job in a bounded queue ([`layer`]), so the caller never waits
//! for the mirror and never fails because of it. Background workers replay the jobs
//! ([`replay`]) through the mapping engine, with canonical requests, as `teamgate migrate`
//! does, so this module names no vendor.
//!
//! What is mirrored, and how ids are matched (vendors give the same team different ids):
//!
//! - **Teams** pair by the id pair remembered from the mirrored create, else by exact name
//!   (not `src/migrate`'s case-insensitive fallback: seeing one team at a time, the mirror
//!   cannot tell whether another team of X folds to the same name). When the workers start, every team of X is paired with Y's team of
//!   the same exact name (one listing of each side), so teams carried over by `teamgate
//!   migrate` before the switch-over are known, deleted ones included. A create whose name
//!   already exists on Y adopts that team (a create whose answer was lost is never made twice).
//! - **Fields**: `name`, and `description`, `email`, `parent_id` where Y holds them (the
//!   parent translated to Y's id of the parent team); fields Y does not hold are left out.
//! - **Members** match by email: the member X answered (or, for `remove_member`, X's people
//!   lookup) gives the email; Y adds by email and finds its own user id in its member list.
//!   A role is carried only where Y has roles. After a mirrored create, and after a write that
//!   replaced a team's member list, Y's members of the team are made the same as X's (a vendor
//!   may put a team's creator in it).
//! - **Not mirrored**: writes that failed on X, and writes whose outcome on X is unknown (they
//!   timed out or their answer was lost: they may not have happened); a rename of a team Y
//!   cannot pair (it is not remembered and its old name is gone); writes Y cannot do at all
//!   (`skipped`). Each is counted; `teamgate diff X Y` shows what is left, and `teamgate
//!   migrate --from X --to Y --apply` carries it over.
//!
//! Order: jobs of one team (keyed by X's team id) run one after the other, in the order X
//! answered them; jobs of different teams run in parallel ([`queue`], a few workers).
//!
//! Failures: a vendor failure on Y (5xx, 429, timeout, a lost answer) is retried by the same
//! worker after a jittered exponential backoff (`mirror_retry_ms` doubling up to
//! `mirror_retry_max_ms`, at least the vendor's `Retry-After`), up to `mirror_attempts`
//! failures at the vendor (`gave_up` after that; a call turned away by the mirror's open
//! circuit or full bulkhead uses none: the mirror's calls take its guard as requests do); a
//! refusal (4xx: a name too long for Y, a person Y does not
//! know) is not retried (`failed`). Retries keep the team's later jobs waiting, so the order
//! holds. A retried create first looks the name up, a retried add answers "already there" and a
//! retried removal "not found", which count as done. The queue holds `mirror_queue` jobs;
//! when it is full the **newest** job is dropped (`dropped`), so the jobs already waiting keep
//! their order and a stalled mirror costs the request path nothing. At shutdown the queue is
//! drained (retries included) until the shutdown timeout; jobs still waiting then are
//! `abandoned`.
//!
//! Shadow reads (`mirror_shadow_reads = true` or a fraction): a `get_team` or `list_members`
//! that X answered (a cache miss) is also done on Y in the background ([`shadow`]), and the
//! two canonical answers are compared on the fields both hold: `name`, the carried fields,
//! members by email and roles where both have roles. Mismatches are counted by operation and
//! field; the first few are logged, values redacted and cut short. A read of a team that has
//! mirror jobs waiting is not compared (the mirror is known to lag).
//!
//! Metrics ([`metrics`]): `teamgate_mirror_writes_total{backend,mirror,result}`,
//! `teamgate_mirror_retries_total{backend,mirror}`, `teamgate_mirror_queue_depth{backend}`,
//! `teamgate_mirror_shadow_reads_total{backend,result}`,
//! `teamgate_mirror_mismatches_total{backend,operation,field}`.

pub mod layer;
mod metrics;
mod queue;
mod replay;
pub mod settings;
mod shadow;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use tower::util::BoxCloneSyncService;
use tower::{ServiceBuilder, ServiceExt};

use crate::cache::ReadCache;
use crate::call::{Call, Directives, Reply};
use crate::canonical::{CanonicalRequest, CanonicalResponse, Operation};
use crate::config::Config;
use crate::error::Error;
use crate::mapping::guard::GuardLayer;
use crate::mapping::registry::Backends;
use crate::mapping::service::Engine;
use crate::metrics::Metrics;
use crate::migrate::Side;
use metrics::MirrorMetrics;
use queue::{Job, Queue};
pub use settings::{check_mirrors, MirrorSettings, RawMirror, ShadowReads};

pub use layer::MirrorLayer;

/// The guarded path to a backend that mirror calls take.
type Guarded = BoxCloneSyncService<Call, Reply, Error>;

/// Workers per mirrored backend: jobs of different teams replayed at once.
const WORKERS: usize = 4;
/// Shadow reads in flight per mirrored backend at most; past it a read is not compared.
const SHADOW_SLOTS: usize = 8;
/// How many failures (and, apart, mismatches) each mirror logs; the rest are only counted.
const LOG_FIRST: usize = 5;
/// Id pairs remembered at most per mirror (beyond it, teams pair by name).
const PAIRS_MAX: usize = 200_000;

/// Every configured mirror, by the name of the backend it mirrors.
pub struct Mirrors {
    by_primary: HashMap<String, Arc<Mirror>>,
}

impl Mirrors {
    /// No mirror: the request path passes every call straight through.
    pub fn none() -> Mirrors {
        Mirrors {
            by_primary: HashMap::new(),
        }
    }

    /// The mirrors of a checked configuration. Nothing runs until [`Mirrors::start`].
    pub fn new(
        config: &Config,
        backends: Arc<Backends>,
        cache: Arc<ReadCache>,
        metrics: &Arc<Metrics>,
    ) -> Mirrors {
        let configured: Vec<_> = config
            .backends
            .iter()
            .filter_map(|b| Some((b.name.clone(), b.mirror.clone()?)))
            .collect();
        if configured.is_empty() {
            return Mirrors::none();
        }
        let counters = MirrorMetrics::new(metrics.registry());
        // The mirror's own calls take the path below the read cache, as a request's would:
        // each backend's circuit and bulkhead, the request timeout, the mapping engine.
        let guarded: Guarded = BoxCloneSyncService::new(
            ServiceBuilder::new()
                .layer(GuardLayer::new(backends.clone(), metrics.clone()))
                .map_err(crate::error::from_tower)
                .timeout(config.server.request_timeout)
                .service(Engine::new(backends.clone())),
        );
        let by_primary = configured
            .into_iter()
            .map(|(primary, settings)| {
                let mirror = Mirror {
                    queue: Queue::new(settings.queue, Some(counters.depth(&primary))),
                    primary: primary.clone(),
                    settings,
                    backends: backends.clone(),
                    cache: cache.clone(),
                    metrics: counters.clone(),
                    guarded: guarded.clone(),
                    pairs: Mutex::new(HashMap::new()),
                    paired_at_start: AtomicBool::new(false),
                    people: Mutex::new(People::default()),
                    shadow_slots: Arc::new(tokio::sync::Semaphore::new(SHADOW_SLOTS)),
                    failures_logged: AtomicUsize::new(0),
                    mismatches_logged: AtomicUsize::new(0),
                    started: AtomicBool::new(false),
                };
                (primary, Arc::new(mirror))
            })
            .collect();
        Mirrors { by_primary }
    }

    pub fn is_empty(&self) -> bool {
        self.by_primary.is_empty()
    }

    /// The mirror of backend `primary`, if it has one.
    pub fn get(&self, primary: &str) -> Option<&Arc<Mirror>> {
        self.by_primary.get(primary)
    }

    /// Starts the workers (and the pairing of existing teams by name). Once.
    pub fn start(&self) {
        for mirror in self.by_primary.values() {
            mirror.clone().start();
        }
    }

    /// Jobs waiting or being replayed, over every mirror.
    pub fn pending(&self) -> usize {
        self.by_primary.values().map(|m| m.queue.depth()).sum()
    }

    /// Waits until every queue is empty (retries included) or `deadline`; then counts the
    /// jobs still waiting as abandoned. Returns how many were abandoned.
    pub async fn drain(&self, deadline: Instant) -> usize {
        // Bounded: polls every 20 ms until the deadline.
        while self.pending() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut abandoned = 0;
        for mirror in self.by_primary.values() {
            let left = mirror.queue.abandon();
            if left > 0 {
                mirror.count(metrics::Result::Abandoned, left as u64);
                tracing::warn!(
                    backend = %mirror.primary,
                    mirror = %mirror.settings.target,
                    jobs = left,
                    "Mirror: jobs not replayed by the shutdown timeout"
                );
            }
            abandoned += left;
        }
        abandoned
    }
}

/// One backend's mirror: its queue, workers, id pairs and people.
pub struct Mirror {
    primary: String,
    settings: MirrorSettings,
    backends: Arc<Backends>,
    cache: Arc<ReadCache>,
    metrics: MirrorMetrics,
    /// Runs a canonical call on a backend through its circuit, bulkhead and request timeout.
    guarded: Guarded,
    queue: Queue,
    /// The primary's team id → the mirror's.
    pairs: Mutex<HashMap<String, String>>,
    /// Whether the teams that existed at start have been paired by name.
    paired_at_start: AtomicBool,
    /// The primary's people: user id → email (for removals, whose answer names nobody).
    people: Mutex<People>,
    shadow_slots: Arc<tokio::sync::Semaphore>,
    failures_logged: AtomicUsize,
    mismatches_logged: AtomicUsize,
    started: AtomicBool,
}

/// The primary's people, as last looked up.
#[derive(Default)]
struct People {
    emails: HashMap<String, String>,
    looked_up: Option<Instant>,
}

impl Mirror {
    fn start(self: Arc<Self>) {
        if self.started.swap(true, Ordering::SeqCst) {
            return;
        }
        let pairing = self.clone();
        tokio::spawn(async move { pairing.pair_existing_teams().await });
        for _ in 0..WORKERS {
            let worker = self.clone();
            tokio::spawn(async move { worker.work().await });
        }
    }

    /// Whether this read should also be done on the mirror (and compared).
    pub(crate) fn samples(&self, op: Operation) -> bool {
        let fraction = self.settings.shadow_reads;
        matches!(op, Operation::GetTeam | Operation::ListMembers)
            && fraction > 0.0
            && (fraction >= 1.0 || rand::random::<f64>() < fraction)
    }

    /// What the request path hands over once X has answered: a write to repeat, or a read to
    /// compare. Never waits.
    pub(crate) fn observe(self: &Arc<Self>, request: CanonicalRequest, answer: &CanonicalResponse) {
        if !(200..300).contains(&answer.status) {
            return;
        }
        if request.op.is_write() {
            self.enqueue(request, answer.clone());
        } else {
            match self.shadow_slots.clone().try_acquire_owned() {
                Ok(slot) => {
                    let mirror = self.clone();
                    let answer = answer.clone();
                    tokio::spawn(async move {
                        shadow::compare(&mirror, &request, &answer).await;
                        drop(slot);
                    });
                }
                Err(_) => self.metrics.shadow(&self.primary, "skipped"),
            }
        }
    }

    fn enqueue(&self, request: CanonicalRequest, answer: CanonicalResponse) {
        let key = match &request.team_id {
            Some(id) => id.clone(),
            None => match created_id(&answer) {
                Some(id) => id,
                None => {
                    self.count(metrics::Result::Unmatched, 1);
                    return;
                }
            },
        };
        let job = Job {
            key,
            request,
            answer,
        };
        let op = job.request.op;
        if !self.queue.push(job) {
            self.count(metrics::Result::Dropped, 1);
            self.log_failure(op, "dropped", "the mirror queue is full");
        }
    }

    async fn work(self: Arc<Self>) {
        while let Some(job) = self.queue.next().await {
            let result = self.run(&job).await;
            // A job given up at shutdown was counted as abandoned.
            if !self.queue.is_closed() {
                self.count(result, 1);
            }
            self.queue.done(&job.key);
        }
    }

    /// Replays one job, retrying vendor failures with backoff. An attempt turned away by a
    /// backend's open circuit or full bulkhead reached no vendor: it waits (at least the
    /// `Retry-After` it got) without using up an attempt, so a mirror down for a while holds
    /// its jobs, in order, until its circuit lets a probe through (the bounded queue and the
    /// shutdown timeout bound the wait).
    async fn run(&self, job: &Job) -> metrics::Result {
        let op = job.request.op;
        let mut attempt = 0;
        // Bounded: `attempts` vendor failures, or the queue closed at shutdown.
        loop {
            let e = match replay::replay(self, job).await {
                Ok(done) => return done,
                Err(replay::Failure::Refused(e)) => {
                    self.log_failure(op, "failed", &describe(&e));
                    return metrics::Result::Failed;
                }
                Err(replay::Failure::Retry(e)) => e,
            };
            let turned_away = e.origin == crate::error::Origin::Teamgate
                && e.code == crate::error::ErrorCode::UpstreamUnavailable;
            if !turned_away {
                attempt += 1;
            }
            if attempt >= self.settings.attempts {
                self.log_failure(op, "gave_up", &describe(&e));
                return metrics::Result::GaveUp;
            }
            if self.queue.is_closed() {
                return metrics::Result::Abandoned;
            }
            self.metrics.retry(&self.primary, &self.settings.target);
            tokio::time::sleep(self.backoff(attempt.max(1), e.retry_after)).await;
        }
    }

    /// The wait after failed attempt `attempt`: `retry_base` doubled per attempt, capped,
    /// with full jitter over its upper half; at least the vendor's `Retry-After`.
    fn backoff(&self, attempt: u32, retry_after: Option<u64>) -> Duration {
        backoff(&self.settings, attempt, retry_after, rand::random::<f64>())
    }

    fn count(&self, result: metrics::Result, n: u64) {
        self.metrics
            .write(&self.primary, &self.settings.target, result, n);
    }

    fn log_failure(&self, op: Operation, result: &str, why: &str) {
        if self.failures_logged.fetch_add(1, Ordering::Relaxed) < LOG_FIRST {
            tracing::warn!(
                backend = %self.primary,
                mirror = %self.settings.target,
                operation = op.name(),
                result,
                reason = %why,
                "Mirror write not repeated (only the first few are logged; all are counted)"
            );
        }
    }

    /// Runs `req` on backend `name` through its circuit breaker and bulkhead (mirror traffic
    /// counts in them as any other), within the request timeout.
    async fn call(&self, name: &str, req: &CanonicalRequest) -> Result<CanonicalResponse, Error> {
        let served = self
            .backends
            .get(name)
            .ok_or_else(|| Error::internal(format!("backend `{name}` is not configured")))?;
        let call = Call {
            backend: Arc::from(name),
            request: req.clone(),
            credential: None,
            partition: served.backend.configured_fingerprint(),
            directives: Directives::default(),
            policy: served.policy,
            trace: None,
            idempotency_key: None,
        };
        Ok(self.guarded.clone().oneshot(call).await?.response)
    }

    /// A side of the mirror, as the mapping engine runs it now (mapping reloads apply).
    fn side(&self, name: &str) -> Result<Side, Error> {
        let served = self
            .backends
            .get(name)
            .ok_or_else(|| Error::internal(format!("backend `{name}` is not configured")))?;
        Ok(Side::of(name, served.backend))
    }

    fn pair(&self, primary_id: &str) -> Option<String> {
        self.pairs.lock().expect("pairs").get(primary_id).cloned()
    }

    fn remember(&self, primary_id: &str, mirror_id: &str) {
        let mut pairs = self.pairs.lock().expect("pairs");
        if pairs.len() < PAIRS_MAX || pairs.contains_key(primary_id) {
            pairs.insert(primary_id.to_string(), mirror_id.to_string());
        }
    }

    fn forget(&self, primary_id: &str) {
        self.pairs.lock().expect("pairs").remove(primary_id);
    }

    /// Pairs the teams both sides already hold by exact name (teams a migration carried over
    /// before the switch-over), retrying while either side fails, a few times.
    async fn pair_existing_teams(&self) {
        for attempt in 1..=self.settings.attempts {
            match self.try_pair_existing().await {
                Ok(n) => {
                    tracing::info!(backend = %self.primary, mirror = %self.settings.target, teams = n, "Mirror: existing teams paired by name");
                    break;
                }
                Err(e) if attempt == self.settings.attempts => {
                    tracing::warn!(backend = %self.primary, mirror = %self.settings.target, reason = %describe(&e), "Mirror: existing teams could not be paired; teams pair by name as they are written");
                }
                Err(e) => tokio::time::sleep(self.backoff(attempt, e.retry_after)).await,
            }
        }
        self.paired_at_start.store(true, Ordering::SeqCst);
    }

    async fn try_pair_existing(&self) -> Result<usize, Error> {
        let x = self.side(&self.primary)?.team_ids().await?;
        let y = self.side(&self.settings.target)?.team_ids().await?;
        let mut pairs = self.pairs.lock().expect("pairs");
        let mut n = 0;
        for (name, x_id) in &x {
            if let Some(y_id) = y.get(name) {
                if pairs.len() < PAIRS_MAX {
                    pairs.entry(x_id.clone()).or_insert_with(|| y_id.clone());
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// The email of the primary's person `user_id`, looking the primary's people up again
    /// when it is not known (at most once a second).
    async fn primary_email(&self, user_id: &str) -> Result<Option<String>, Error> {
        {
            let people = self.people.lock().expect("people");
            if let Some(email) = people.emails.get(user_id) {
                return Ok(Some(email.clone()));
            }
            if people
                .looked_up
                .is_some_and(|at| at.elapsed() < Duration::from_secs(1))
            {
                return Ok(None);
            }
        }
        let found = self.side(&self.primary)?.people().await?;
        let mut people = self.people.lock().expect("people");
        people.emails = found.into_iter().map(|(email, id)| (id, email)).collect();
        people.looked_up = Some(Instant::now());
        Ok(people.emails.get(user_id).cloned())
    }
}

/// The backoff after failed attempt `attempt` (1, 2, ...), `unit` a random number in [0, 1):
/// `retry_base × 2^(attempt-1)` capped at `retry_max`, jittered over its upper half, at least
/// the vendor's `Retry-After` (itself capped at `retry_max`).
fn backoff(
    settings: &MirrorSettings,
    attempt: u32,
    retry_after: Option<u64>,
    unit: f64,
) -> Duration {
    let base = settings.retry_base.as_secs_f64();
    let max = settings.retry_max.as_secs_f64();
    let ceiling = (base * 2f64.powi(attempt.saturating_sub(1).min(30) as i32)).min(max);
    let jittered = ceiling * (0.5 + unit.clamp(0.0, 1.0) * 0.5);
    let floor = retry_after.map_or(0.0, |s| (s as f64).min(max));
    Duration::from_secs_f64(jittered.max(floor))
}

/// The id of a created team: from its `Location`, else from its body.
fn created_id(answer: &CanonicalResponse) -> Option<String> {
    if let Some(encoded) = answer
        .location
        .as_deref()
        .and_then(|l| l.strip_prefix("/v1/teams/"))
    {
        if let Ok(id) = percent_encoding::percent_decode_str(encoded).decode_utf8() {
            return Some(id.into_owned());
        }
    }
    answer.json()?["id"].as_str().map(str::to_string)
}

/// An error as a log reason: code and status, and its detail (already redacted where it
/// came from a vendor), cut short.
fn describe(e: &Error) -> String {
    let detail: String = e.detail.chars().take(160).collect();
    format!("{} ({}): {detail}", e.code.as_str(), e.code.status())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> MirrorSettings {
        MirrorSettings {
            target: "m".into(),
            shadow_reads: 0.0,
            queue: 10,
            attempts: 8,
            retry_base: Duration::from_millis(100),
            retry_max: Duration::from_secs(2),
        }
    }

    #[test]
    fn backoff_doubles_within_jitter_is_capped_and_honours_retry_after() {
        let s = settings();
        let ms = |attempt, after, unit| backoff(&s, attempt, after, unit).as_millis();
        assert_eq!((ms(1, None, 0.0), ms(1, None, 1.0)), (50, 100));
        assert_eq!((ms(3, None, 0.0), ms(3, None, 1.0)), (200, 400));
        assert_eq!(ms(30, None, 1.0), 2000, "capped");
        assert_eq!(ms(1, Some(1), 0.0), 1000, "at least Retry-After");
        assert_eq!(
            ms(1, Some(3600), 0.0),
            2000,
            "a Retry-After past the cap is capped"
        );
    }

    #[test]
    fn shadow_reads_are_a_fraction() {
        assert_eq!(ShadowReads::On(true).fraction(), 1.0);
        assert_eq!(ShadowReads::On(false).fraction(), 0.0);
        assert_eq!(ShadowReads::Fraction(0.25).fraction(), 0.25);
        assert_eq!(ShadowReads::Fraction(f64::NAN).fraction(), 0.0);
    }

    #[test]
    fn a_created_team_is_known_by_its_location() {
        let mut created = CanonicalResponse::with_status(201, serde_json::json!({"id": "x"}));
        created.location = Some("/v1/teams/a%2Fb".into());
        assert_eq!(created_id(&created).as_deref(), Some("a/b"));
        created.location = None;
        assert_eq!(created_id(&created).as_deref(), Some("x"));
    }
}
