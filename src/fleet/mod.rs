//! A fleet of replicas behaving like one proxy: `[fleet]` in the configuration (issue 13).
//!
//! Without `[fleet]` nothing here runs: no Redis connection, no budget, every stage as on one
//! replica. With `[fleet]`:
//!
//! - [`config`]: what `[fleet]` says, checked by `teamgate check`, printed with the password
//!   masked.
//! - [`link`]: the Redis connection (one multiplexed command connection and one pub/sub
//!   connection) and its supervisor: reconnects with backoff, tells whether Redis is up,
//!   shares cache invalidations between replicas over pub/sub, cuts cache TTLs to
//!   `fallback_ttl_ms` while Redis is unreachable.
//! - [`budget`]: the vendor budget of each backend (the mapping's `[limits]
//!   requests_per_second/minute`, overridable in `[fleet.budgets.NAME]`): a GCRA, in one
//!   atomic Redis script when Redis is up (fleet-wide), in process otherwise; a tower layer
//!   around every vendor call attempt.
//! - [`lease`]: fleet-wide locks with a lease (per-team read-modify-write, idempotency keys),
//!   and the idempotency records shared through Redis.
//!
//! Whatever Redis does, no canonical request fails because of it: every Redis command has a
//! timeout, and a failure falls back to the replica's own behaviour (counted in
//! `teamgate_fleet_redis_errors_total`).

pub mod budget;
pub mod config;
pub mod lease;
pub mod link;

use std::sync::Arc;

use prometheus::{IntCounterVec, IntGauge, Opts, Registry};

pub use budget::{Budget, DeadlineLayer};
use config::{BudgetLimits, FleetConfig};
pub use link::Link;

/// Metric names of the fleet features.
pub const REDIS_UP: &str = "teamgate_fleet_redis_up";
pub const REDIS_ERRORS_TOTAL: &str = "teamgate_fleet_redis_errors_total";
pub const REDIS_LOST_TOTAL: &str = "teamgate_fleet_redis_lost_total";
pub const INVALIDATIONS_TOTAL: &str = "teamgate_fleet_invalidations_total";
pub const BUDGET_TOTAL: &str = "teamgate_fleet_budget_total";

/// The fleet's metrics (registered in the process registry).
pub struct FleetMetrics {
    pub redis_up: IntGauge,
    /// Redis commands that failed or timed out, by what they were for.
    pub redis_errors: IntCounterVec,
    /// Times the connection to Redis was lost (or could not be made at start).
    pub redis_lost: prometheus::IntCounter,
    /// Invalidations sent to and received from the other replicas.
    pub invalidations: IntCounterVec,
    /// Vendor calls through the budget, by backend and result (`now`, `waited`, `refused`)
    /// and where it was decided (`fleet`: Redis, `local`: this replica).
    pub budget: IntCounterVec,
}

impl FleetMetrics {
    fn new(registry: &Registry) -> FleetMetrics {
        let metrics = FleetMetrics {
            redis_up: IntGauge::new(REDIS_UP, "1 while this replica reaches Redis").unwrap(),
            redis_errors: IntCounterVec::new(
                Opts::new(
                    REDIS_ERRORS_TOTAL,
                    "Redis commands that failed or timed out (this replica fell back to local behaviour)",
                ),
                &["use"],
            )
            .unwrap(),
            redis_lost: prometheus::IntCounter::new(
                REDIS_LOST_TOTAL,
                "Times the connection to Redis was lost or could not be made",
            )
            .unwrap(),
            invalidations: IntCounterVec::new(
                Opts::new(
                    INVALIDATIONS_TOTAL,
                    "Cache invalidations shared with the other replicas, by direction",
                ),
                &["direction"],
            )
            .unwrap(),
            budget: IntCounterVec::new(
                Opts::new(BUDGET_TOTAL, "Vendor calls through the vendor budget"),
                &["backend", "result", "scope"],
            )
            .unwrap(),
        };
        let _ = registry.register(Box::new(metrics.redis_up.clone()));
        let _ = registry.register(Box::new(metrics.redis_errors.clone()));
        let _ = registry.register(Box::new(metrics.redis_lost.clone()));
        let _ = registry.register(Box::new(metrics.invalidations.clone()));
        let _ = registry.register(Box::new(metrics.budget.clone()));
        metrics
    }
}

/// The fleet features of one replica.
pub struct Fleet {
    pub config: FleetConfig,
    /// `None` without `redis_url`.
    pub link: Option<Arc<Link>>,
    pub metrics: Arc<FleetMetrics>,
    /// Dropped with the replica: the Redis supervisor ends.
    stop: tokio::sync::watch::Sender<()>,
}

impl Fleet {
    /// The fleet features, not connected yet.
    pub fn new(config: FleetConfig, registry: &Registry) -> anyhow::Result<Fleet> {
        let metrics = Arc::new(FleetMetrics::new(registry));
        let link = match &config.redis_url {
            Some(url) => Some(Link::new(url, &config, metrics.clone())?),
            None => None,
        };
        let (stop, _) = tokio::sync::watch::channel(());
        Ok(Fleet {
            config,
            link,
            metrics,
            stop,
        })
    }

    /// With `redis_url`, starts the Redis supervisor for this cache and these backends: it
    /// connects in the background; until it does, this replica behaves as one that lost Redis.
    pub fn connect(&self, cache: &Arc<crate::cache::ReadCache>, backends: Vec<String>) {
        if let Some(link) = &self.link {
            link.supervise(&self.config, cache.clone(), backends, self.stop.subscribe());
        }
    }

    /// The budget of a backend whose mapping declares `declared`, with the config's override;
    /// `None` when it has no bound.
    pub fn budget(&self, backend: &str, declared: BudgetLimits) -> Option<Arc<Budget>> {
        let limits = declared.overridden_by(self.config.budgets.get(backend));
        if limits.is_unbounded() {
            return None;
        }
        Some(Arc::new(Budget::new(
            backend,
            limits,
            self.link.clone(),
            &self.config.key_prefix,
            self.config.fallback_budget_share,
            self.metrics.clone(),
        )))
    }
}

impl Fleet {
    /// The upstream client of a backend: with a vendor budget when its mapping declares
    /// one (or the config gives one), as before otherwise.
    pub(crate) fn upstream_client_of(
        &self,
        backend: &crate::config::BackendConfig,
        mapping: &crate::mapping::Mapping,
    ) -> crate::upstream::Upstream {
        match self.budget(&backend.name, mapping.limits.budget) {
            Some(budget) => crate::upstream::client_through(
                backend.timeout,
                backend.max_answer_bytes,
                |attempt| budget::around(budget, attempt),
            ),
            None => crate::upstream::client(backend.timeout, backend.max_answer_bytes),
        }
    }

    /// With Redis: the backend's per-team locks are taken fleet-wide too.
    pub(crate) fn share_team_locks(&self, engine: &crate::mapping::engine::Backend, backend: &str) {
        if let Some(leases) = self.leases() {
            engine.share_locks(leases, backend);
        }
    }

    fn leases(&self) -> Option<lease::Leases> {
        let link = self.link.clone()?;
        Some(lease::Leases::new(
            link,
            self.config.key_prefix.clone(),
            self.config.lock_lease,
        ))
    }

    /// With Redis: idempotency keys shared by the fleet.
    pub(crate) fn idempotency(
        &self,
        window: std::time::Duration,
    ) -> Option<Arc<lease::SharedKeys>> {
        Some(Arc::new(lease::SharedKeys::new(self.leases()?, window)))
    }
}

/// The upstream client of a backend, with the fleet's budget when `[fleet]` is configured.
pub(crate) fn upstream_client(
    fleet: Option<&Fleet>,
    backend: &crate::config::BackendConfig,
    mapping: &crate::mapping::Mapping,
) -> crate::upstream::Upstream {
    match fleet {
        Some(fleet) => fleet.upstream_client_of(backend, mapping),
        None => crate::upstream::client(backend.timeout, backend.max_answer_bytes),
    }
}

/// `redis://user:password@host` with the password masked.
pub fn mask_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_string();
    };
    let userinfo = &rest[..at];
    let user = userinfo.split(':').next().unwrap_or("");
    let masked = if userinfo.contains(':') {
        format!("{user}:***")
    } else {
        "***".to_string()
    };
    format!("{}{masked}{}", &url[..scheme_end + 3], &rest[at..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked() {
        assert_eq!(
            mask_password("redis://:hunter2@r:6379/0"),
            "redis://:***@r:6379/0"
        );
        assert_eq!(
            mask_password("redis://bot:hunter2@r:6379"),
            "redis://bot:***@r:6379"
        );
        assert_eq!(mask_password("redis://token@r"), "redis://***@r");
        assert_eq!(mask_password("redis://r:6379/0"), "redis://r:6379/0");
    }

    #[test]
    fn the_config_overrides_the_mapping_and_zero_removes_a_bound() {
        let declared = BudgetLimits {
            per_second: Some(50),
            per_minute: Some(1000),
        };
        let over = BudgetLimits {
            per_second: Some(0),
            per_minute: Some(600),
        };
        assert_eq!(
            declared.overridden_by(Some(&over)),
            BudgetLimits {
                per_second: None,
                per_minute: Some(600)
            }
        );
        assert_eq!(declared.overridden_by(None), declared);
    }
}
