//! The read cache stage: canonical reads served from memory, correct first and fast second.
//!
//! - **Keys** are canonical, not URLs: backend + operation + normalized parameters + a
//!   fingerprint of the vendor credential in use (never the credential), so two callers with
//!   different vendor keys never share an entry.
//! - **Invalidation** is expressed on canonical operations: a successful member change makes
//!   that team and its member list stale, a team change the team, and both the backend's team
//!   lists. It works by generations: a write bumps the generation of the scopes it touches,
//!   and keys carry the generation they were made under, so stale entries become unreachable
//!   at once and age out by themselves.
//! - **Single flight**: concurrent misses on one key share one upstream call (moka's entry
//!   coalescing). A failed leader's error goes to its waiters and is never stored.
//! - **Stale-if-error**: when the vendor fails (5xx, timeout, connect error, 429), the last
//!   good answer stands in for a configurable window, marked stale.
//! - **Bounds**: entries are weighed in bytes; the total stays under `max_bytes`.
//!
//! Freshness is measured on tokio's clock, so tests can pause it; moka's own expiry only
//! frees memory after the stale window.

mod layer;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use moka::future::Cache;
use moka::notification::RemovalCause;
use moka::Expiry;
use prometheus::{IntCounterVec, IntGauge, Opts};
use tokio::time::Instant;

pub use layer::{CacheLayer, CacheService};

use crate::call::CachePolicy;
use crate::canonical::{CanonicalResponse, Operation};
use crate::config::CacheSettings;
use crate::error::{Error, ErrorCode, Origin};

/// Metric names of the cache stage.
pub const CACHE_REQUESTS_TOTAL: &str = "teamgate_cache_requests_total";
pub const CACHE_EVICTIONS_TOTAL: &str = "teamgate_cache_evictions_total";
pub const CACHE_BYTES: &str = "teamgate_cache_bytes";

/// What one cached read did (a label value of `teamgate_cache_requests_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheResult {
    Hit,
    Miss,
    /// Waited for another request's upstream call on the same key.
    Coalesced,
    /// Served a stale entry because the vendor failed.
    Stale,
    Bypass,
}

impl CacheResult {
    fn as_str(self) -> &'static str {
        match self {
            CacheResult::Hit => "hit",
            CacheResult::Miss => "miss",
            CacheResult::Coalesced => "coalesced",
            CacheResult::Stale => "stale",
            CacheResult::Bypass => "bypass",
        }
    }
}

/// A cached answer, or the outcome of a leader's call shared with its waiters.
#[derive(Clone)]
pub(crate) enum Stored {
    Answer(Arc<CachedAnswer>),
    /// The leader's error: handed to the waiters of that one call, replaced by the next.
    Failed(Error),
    /// A success that is not cached (not a 200).
    Passed(CanonicalResponse),
}

pub(crate) struct CachedAnswer {
    pub response: CanonicalResponse,
    pub etag: String,
    pub stored_at: Instant,
    pub fresh_for: Duration,
    pub stale_for: Duration,
    pub weight: u32,
}

impl CachedAnswer {
    pub fn age(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.stored_at)
    }

    pub fn is_fresh(&self, now: Instant) -> bool {
        self.age(now) < self.fresh_for
    }

    /// Whether it may still stand in for a vendor failure.
    pub fn is_usable_stale(&self, now: Instant) -> bool {
        self.age(now) < self.fresh_for + self.stale_for
    }
}

impl Stored {
    /// Whether the next read of this key must go to the vendor.
    fn needs_refresh(&self, now: Instant) -> bool {
        match self {
            Stored::Answer(answer) => !answer.is_fresh(now),
            Stored::Failed(_) | Stored::Passed(_) => true,
        }
    }
}

/// Per-entry lifetime in moka: answers live through their stale window, outcomes of a call
/// only as long as its waiters need them.
struct Lifetime;

impl Expiry<String, Stored> for Lifetime {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &Stored,
        _now: std::time::Instant,
    ) -> Option<Duration> {
        Some(match value {
            Stored::Answer(answer) => answer.fresh_for + answer.stale_for,
            Stored::Failed(_) | Stored::Passed(_) => Duration::from_secs(1),
        })
    }

    fn expire_after_update(
        &self,
        key: &String,
        value: &Stored,
        now: std::time::Instant,
        _current: Option<Duration>,
    ) -> Option<Duration> {
        self.expire_after_create(key, value, now)
    }
}

/// The cache shared by every backend of the process.
pub struct ReadCache {
    enabled: bool,
    store: Cache<String, Stored>,
    generations: Mutex<HashMap<String, (u64, Instant)>>,
    counter: AtomicU64,
    /// Past this age a generation can be forgotten: every entry made before its bump is gone.
    max_entry_life: Duration,
    requests: IntCounterVec,
    evictions: IntCounterVec,
    bytes: IntGauge,
    /// `[fleet]`: told of every scope this replica invalidates, to tell the other replicas.
    on_invalidate: std::sync::OnceLock<InvalidationHook>,
    /// `[fleet]`: while Redis is unreachable, answers stay fresh this many ms at most (0: no cap).
    ttl_cap_ms: AtomicU64,
}

/// Receives the scopes a write made stale (see `crate::fleet`).
pub type InvalidationHook = Box<dyn Fn(&[String]) + Send + Sync>;

/// Generations kept before old ones are pruned.
const GENERATIONS_MAX: usize = 100_000;

impl ReadCache {
    /// Builds the cache and registers its metrics. `max_entry_life` is the longest
    /// TTL + stale window of any backend.
    pub fn new(
        settings: &CacheSettings,
        max_entry_life: Duration,
        registry: &prometheus::Registry,
    ) -> Arc<ReadCache> {
        let requests = IntCounterVec::new(
            Opts::new(CACHE_REQUESTS_TOTAL, "Cached reads by backend, operation and result (hit, miss, coalesced, stale, bypass)."),
            &["backend", "operation", "result"],
        )
        .expect("valid metric");
        let evictions = IntCounterVec::new(
            Opts::new(
                CACHE_EVICTIONS_TOTAL,
                "Cache entries evicted to stay under the byte bound, by backend.",
            ),
            &["backend"],
        )
        .expect("valid metric");
        let bytes = IntGauge::new(CACHE_BYTES, "What the cached answers weigh, in bytes.")
            .expect("valid metric");
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(evictions.clone()),
            Box::new(bytes.clone()),
        ] {
            // A second cache on the same registry (tests) keeps the first registration.
            let _ = registry.register(collector);
        }
        let listener_evictions = evictions.clone();
        let store = Cache::builder()
            .max_capacity(settings.max_bytes)
            .weigher(|_key: &String, value: &Stored| match value {
                Stored::Answer(answer) => answer.weight,
                Stored::Failed(_) | Stored::Passed(_) => 1,
            })
            .expire_after(Lifetime)
            .eviction_listener(move |key: Arc<String>, _value, cause| {
                if cause == RemovalCause::Size {
                    let backend = key.split(SEPARATOR).next().unwrap_or("unknown");
                    listener_evictions.with_label_values(&[backend]).inc();
                }
            })
            .build();
        Arc::new(ReadCache {
            enabled: settings.enabled,
            store,
            generations: Mutex::new(HashMap::new()),
            counter: AtomicU64::new(1),
            max_entry_life,
            requests,
            evictions,
            bytes,
            on_invalidate: std::sync::OnceLock::new(),
            ttl_cap_ms: AtomicU64::new(0),
        })
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// What the entries weigh now (after pending maintenance).
    pub async fn weighed_bytes(&self) -> u64 {
        self.store.run_pending_tasks().await;
        let size = self.store.weighted_size();
        self.bytes.set(size as i64);
        size
    }

    fn record(&self, backend: &str, op: Operation, result: CacheResult) {
        self.requests
            .with_label_values(&[backend, op.name(), result.as_str()])
            .inc();
        // moka's size is eventually consistent; close enough for a gauge.
        self.bytes.set(self.store.weighted_size() as i64);
    }

    /// Entries of `backend` evicted to honour the byte bound.
    pub fn evictions(&self, backend: &str) -> u64 {
        self.evictions.with_label_values(&[backend]).get()
    }

    /// The count of one result, for tests.
    pub fn count(&self, backend: &str, op: Operation, result: CacheResult) -> u64 {
        self.requests
            .with_label_values(&[backend, op.name(), result.as_str()])
            .get()
    }

    /// The generations of a scope and of its whole backend, under one lock.
    fn generations(&self, scope: &str, backend_scope: &str) -> (u64, u64) {
        let generations = self.generations.lock().expect("generations lock");
        let of = |s: &str| generations.get(s).map(|(g, _)| *g).unwrap_or(0);
        (of(scope), of(backend_scope))
    }

    /// Makes every entry of these scopes unreachable.
    fn bump(&self, scopes: &[String]) {
        let now = Instant::now();
        let mut generations = self.generations.lock().expect("generations lock");
        if generations.len() >= GENERATIONS_MAX {
            let life = self.max_entry_life;
            generations.retain(|_, (_, bumped)| now.saturating_duration_since(*bumped) < life);
        }
        for scope in scopes {
            let next = self.counter.fetch_add(1, Ordering::Relaxed);
            generations.insert(scope.clone(), (next, now));
        }
    }

    /// After a successful write: what it made stale, by canonical operation.
    pub fn invalidate(&self, backend: &str, op: Operation, team_id: Option<&str>) {
        let lists = format!("lists{SEPARATOR}{backend}");
        let team = team_id.map(|id| format!("team{SEPARATOR}{backend}{SEPARATOR}{id}"));
        let scopes: Vec<String> = match op {
            Operation::CreateTeam => vec![lists],
            Operation::UpdateTeam
            | Operation::DeleteTeam
            | Operation::AddMember
            | Operation::RemoveMember
            | Operation::UpdateMember => team.into_iter().chain([lists]).collect(),
            Operation::ListTeams
            | Operation::GetTeam
            | Operation::ListMembers
            | Operation::ListUsers => Vec::new(),
        };
        if !scopes.is_empty() {
            self.bump(&scopes);
            self.tell_fleet(&scopes);
        }
    }

    /// Makes every entry of a backend unreachable (its mapping changed: answers read through
    /// the old one may differ).
    pub fn invalidate_backend(&self, backend: &str) {
        let scopes = [backend_scope(backend)];
        self.bump(&scopes);
        self.tell_fleet(&scopes);
    }

    fn tell_fleet(&self, scopes: &[String]) {
        if let Some(hook) = self.on_invalidate.get() {
            hook(scopes);
        }
    }

    /// `[fleet]`: sets who is told of this replica's invalidations (once).
    pub(crate) fn set_invalidation_hook(&self, hook: InvalidationHook) {
        let _ = self.on_invalidate.set(hook);
    }

    /// `[fleet]`: invalidations another replica made (not told again).
    pub(crate) fn apply_remote(&self, scopes: &[String]) {
        self.bump(scopes);
    }

    /// `[fleet]`: every entry of these backends unreachable, here only (Redis was lost or
    /// regained: invalidations may have been missed).
    pub(crate) fn forget_backends_locally(&self, backends: &[String]) {
        let scopes: Vec<String> = backends.iter().map(|b| backend_scope(b)).collect();
        self.bump(&scopes);
    }

    /// `[fleet]`: caps how long new answers stay fresh (`None`: their backend's TTL).
    pub(crate) fn cap_ttl(&self, cap: Option<Duration>) {
        let ms = cap.map(|d| (d.as_millis() as u64).max(1)).unwrap_or(0);
        self.ttl_cap_ms.store(ms, Ordering::Relaxed);
    }

    /// A backend's policy under the current cap.
    pub(crate) fn capped(&self, mut policy: CachePolicy) -> CachePolicy {
        let cap = self.ttl_cap_ms.load(Ordering::Relaxed);
        if cap != 0 {
            policy.ttl = policy.ttl.min(Duration::from_millis(cap));
        }
        policy
    }
}

pub(crate) fn backend_scope(backend: &str) -> String {
    format!("backend{SEPARATOR}{backend}")
}

/// Separates key parts; ids and query values cannot contain control characters.
const SEPARATOR: char = '\u{1f}';

/// The canonical key of a cacheable read, or `None` for operations that are not cached.
pub(crate) fn key(
    cache: &ReadCache,
    backend: &str,
    credential: u64,
    request: &crate::canonical::CanonicalRequest,
) -> Option<String> {
    use std::fmt::Write;
    let team = request.team_id.as_deref().unwrap_or("");
    let s = SEPARATOR;
    // Built in one buffer: this runs on every cached read, hits included.
    let mut key = String::with_capacity(96 + team.len());
    match request.op {
        Operation::GetTeam | Operation::ListMembers => {
            let _ = write!(key, "team{s}{backend}{s}{team}");
        }
        Operation::ListTeams => {
            let _ = write!(key, "lists{s}{backend}");
        }
        Operation::ListUsers => {
            let _ = write!(key, "users{s}{backend}");
        }
        _ => return None,
    };
    let (generation, backend_generation) = cache.generations(&key, &backend_scope(backend));
    key.clear();
    let _ = write!(
        key,
        "{backend}{s}{}{s}{credential:x}{s}{backend_generation}.{generation}{s}{team}{s}{}{s}",
        request.op.name(),
        request.user_id.as_deref().unwrap_or(""),
    );
    for (i, (k, v)) in request.query.iter().enumerate() {
        if i > 0 {
            key.push('&');
        }
        let _ = write!(key, "{k}={v}");
    }
    if let Some(p) = request.page {
        let _ = write!(key, "{s}{}:{}", p.limit, p.offset);
    } else {
        key.push(s);
    }
    // The two forms of an answer, with and without its vendor leftovers, are kept apart.
    key.push(s);
    if request.include_vendor {
        key.push_str("vendor");
    }
    Some(key)
}

/// An ETag for a canonical body: the same body gives the same tag in every replica.
pub(crate) fn etag(response: &CanonicalResponse) -> String {
    // SipHash with fixed keys: the same bytes give the same tag in every process.
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    response
        .body
        .as_deref()
        .unwrap_or_default()
        .hash(&mut hasher);
    format!("\"{:016x}\"", hasher.finish())
}

/// Whether an `If-None-Match` value matches `etag` (weak comparison, lists, `*`).
pub(crate) fn matches_etag(if_none_match: &str, etag: &str) -> bool {
    if_none_match.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == etag
    })
}

/// Whether the last good answer may stand in for this failure: the vendor or the network
/// failed (5xx, an unreadable answer, timeout, connect, 429), not the caller, and not a vendor
/// refusing the request (4xx).
pub(crate) fn is_vendor_failure(error: &Error) -> bool {
    let failed_elsewhere = matches!(error.origin, Origin::Vendor | Origin::Network);
    let class = error.status() >= 500 || error.code == ErrorCode::RateLimited;
    let vendor_status = error
        .upstream
        .as_ref()
        .is_none_or(|u| u.status >= 500 || u.status == 429);
    failed_elsewhere && class && vendor_status
}

/// A TTL with ±10% jitter, so entries filled together do not expire together.
pub(crate) fn jittered(policy: &CachePolicy) -> Duration {
    let factor: f64 = rand::random_range(0.9..1.1);
    policy.ttl.mul_f64(factor)
}

#[cfg(test)]
mod tests;
