//! `[fleet]` in `config.toml`: what it may say, how it is checked and how `check --print`
//! shows it. The rest of the configuration file stays in `crate::config`, which calls
//! [`validate`] and [`print`].
//!
//! ```toml
//! [fleet]
//! redis_url = "redis://:password@redis.internal:6379/0"  # optional (or TEAMGATE_FLEET_REDIS_URL)
//! key_prefix = "teamgate"        # Redis keys and the invalidation channel start with it
//! fallback_ttl_ms = 1000         # cache TTLs are cut to this while Redis is unreachable
//! redis_timeout_ms = 250         # one Redis command at most; past it, local behaviour
//! lock_lease_ms = 40000          # a fleet lock outlives a dead replica by this at most
//! fallback_budget_share = 0.25   # of each budget, per replica, while Redis is unreachable
//!
//! [fleet.budgets.NAME]           # overrides the mapping's [limits] requests_per_*
//! requests_per_second = 40       # 0: no per-second budget
//! requests_per_minute = 900
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

/// The environment variable that replaces `[fleet] redis_url` (a password stays out of the file).
pub const REDIS_URL_ENV: &str = "TEAMGATE_FLEET_REDIS_URL";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFleet {
    redis_url: Option<Spanned<String>>,
    key_prefix: Option<Spanned<String>>,
    fallback_ttl_ms: Option<u64>,
    redis_timeout_ms: Option<u64>,
    lock_lease_ms: Option<Spanned<u64>>,
    fallback_budget_share: Option<Spanned<f64>>,
    #[serde(default)]
    budgets: BTreeMap<String, Spanned<RawBudget>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBudget {
    requests_per_second: Option<u32>,
    requests_per_minute: Option<u32>,
}

/// A vendor budget: calls per second and per minute, fleet-wide (0 or `None`: no bound).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BudgetLimits {
    pub per_second: Option<u32>,
    pub per_minute: Option<u32>,
}

impl BudgetLimits {
    pub fn is_unbounded(&self) -> bool {
        self.per_second.is_none() && self.per_minute.is_none()
    }

    /// The mapping's declaration with the config's override on top (0 removes a bound).
    pub fn overridden_by(self, over: Option<&BudgetLimits>) -> BudgetLimits {
        let Some(over) = over else { return self };
        let pick = |mine: Option<u32>, theirs: Option<u32>| match theirs {
            Some(0) => None,
            Some(n) => Some(n),
            None => mine,
        };
        BudgetLimits {
            per_second: pick(self.per_second, over.per_second),
            per_minute: pick(self.per_minute, over.per_minute),
        }
    }
}

/// A validated `[fleet]`.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// Shared state through Redis; `None`: budgets per replica, nothing shared.
    pub redis_url: Option<String>,
    pub key_prefix: String,
    pub fallback_ttl: Duration,
    pub redis_timeout: Duration,
    pub lock_lease: Duration,
    /// The share of each budget a replica keeps to itself while it cannot reach Redis (1: the
    /// whole budget; 1/N for N replicas keeps the fleet within it).
    pub fallback_budget_share: f64,
    /// Overrides of the mappings' budgets, by backend.
    pub budgets: BTreeMap<String, BudgetLimits>,
}

/// Checks `[fleet]`; `error(offset, reason)` reports a problem at a byte offset of the file.
pub fn validate(
    raw: &RawFleet,
    backends: &[&str],
    request_timeout: Duration,
    env: &dyn Fn(&str) -> Option<String>,
    error: &mut dyn FnMut(usize, String),
) -> FleetConfig {
    let redis_url = match env(REDIS_URL_ENV).filter(|v| !v.trim().is_empty()) {
        Some(url) => {
            if !is_redis_url(url.trim()) {
                error(
                    0,
                    format!("{REDIS_URL_ENV}: not a redis:// URL (redis://[:password@]host:port[/db])"),
                );
            }
            Some(url.trim().to_string())
        }
        None => raw.redis_url.as_ref().map(|url| {
            if !is_redis_url(url.get_ref()) {
                error(
                    url.span().start,
                    format!(
                        "fleet.redis_url: `{}` is not a redis:// URL (redis://[:password@]host:port[/db])",
                        super::mask_password(url.get_ref())
                    ),
                );
            }
            url.get_ref().clone()
        }),
    };
    let key_prefix = match &raw.key_prefix {
        Some(p) => {
            let ok = !p.get_ref().is_empty()
                && p.get_ref().len() <= 64
                && p.get_ref()
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c));
            if !ok {
                error(
                    p.span().start,
                    "fleet.key_prefix: 1 to 64 letters, digits, `-`, `_`, `.` or `:`".into(),
                );
            }
            p.get_ref().clone()
        }
        None => "teamgate".into(),
    };
    let fallback_budget_share = match &raw.fallback_budget_share {
        Some(share) if *share.get_ref() > 0.0 && *share.get_ref() <= 1.0 => *share.get_ref(),
        Some(share) => {
            error(
                share.span().start,
                "fleet.fallback_budget_share: more than 0, at most 1".into(),
            );
            1.0
        }
        None => 1.0,
    };
    // A read-modify-write holds its fleet lock for up to the request timeout: a lease that
    // ends sooner lets another replica in while the first still writes (a lost update). The
    // default outlives any request timeout; a lease given explicitly must.
    let default_lease = 40_000u64.max(request_timeout.as_millis() as u64 + 10_000);
    let lock_lease = Duration::from_millis(
        raw.lock_lease_ms
            .as_ref()
            .map_or(default_lease, |l| *l.get_ref())
            .clamp(1_000, 3_600_000),
    );
    if redis_url.is_some() && lock_lease <= request_timeout {
        let at = raw.lock_lease_ms.as_ref().map_or(0, |l| l.span().start);
        error(
            at,
            format!(
                "fleet.lock_lease_ms ({} ms) must be longer than server.request_timeout_ms ({} ms): \
                 a lock must outlive the longest write it guards",
                lock_lease.as_millis(),
                request_timeout.as_millis()
            ),
        );
    }
    let mut budgets = BTreeMap::new();
    for (name, spanned) in &raw.budgets {
        if !backends.contains(&name.as_str()) {
            error(
                spanned.span().start,
                format!("fleet.budgets.{name}: `{name}` is not a configured backend"),
            );
        }
        let b = spanned.get_ref();
        budgets.insert(
            name.clone(),
            BudgetLimits {
                per_second: b.requests_per_second,
                per_minute: b.requests_per_minute,
            },
        );
    }
    FleetConfig {
        redis_url,
        key_prefix,
        fallback_ttl: Duration::from_millis(raw.fallback_ttl_ms.unwrap_or(1_000).min(86_400_000)),
        redis_timeout: Duration::from_millis(raw.redis_timeout_ms.unwrap_or(250).clamp(10, 10_000)),
        fallback_budget_share,
        lock_lease,
        budgets,
    }
}

/// `redis://` (or `rediss://`, refused later: this build has no TLS for Redis) with a host.
fn is_redis_url(url: &str) -> bool {
    url.strip_prefix("redis://")
        .is_some_and(|rest| !rest.is_empty() && redis::parse_redis_url(url).is_some())
}

/// `[fleet]` as `teamgate check --print` shows it: the password masked.
pub fn print(fleet: &FleetConfig, out: &mut String) {
    use std::fmt::Write;
    let _ = writeln!(out, "\n[fleet]");
    if let Some(url) = &fleet.redis_url {
        let _ = writeln!(out, "redis_url = \"{}\"", super::mask_password(url));
    }
    let _ = writeln!(out, "key_prefix = \"{}\"", fleet.key_prefix);
    let _ = writeln!(out, "fallback_ttl_ms = {}", fleet.fallback_ttl.as_millis());
    let _ = writeln!(
        out,
        "redis_timeout_ms = {}",
        fleet.redis_timeout.as_millis()
    );
    let _ = writeln!(out, "lock_lease_ms = {}", fleet.lock_lease.as_millis());
    let _ = writeln!(
        out,
        "fallback_budget_share = {}",
        fleet.fallback_budget_share
    );
    for (name, b) in &fleet.budgets {
        let _ = writeln!(out, "\n[fleet.budgets.{name}]");
        if let Some(n) = b.per_second {
            let _ = writeln!(out, "requests_per_second = {n}");
        }
        if let Some(n) = b.per_minute {
            let _ = writeln!(out, "requests_per_minute = {n}");
        }
    }
}
