//! The configured backends by name, as the router picks them and the engine runs them.
//!
//! The whole map is swapped at once by a mapping reload (arc-swap): each request works on
//! one snapshot, and a reloaded backend keeps its vendor address, credential, upstream
//! client, per-team locks and tokens.

use std::collections::BTreeMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::engine::Backend;
use super::Mapping;
use crate::call::CachePolicy;

/// A configured backend with how it is served.
#[derive(Clone)]
pub struct Served {
    pub backend: Arc<Backend>,
    /// How long its reads stay fresh in the cache.
    pub policy: CachePolicy,
    /// The caller sends the vendor credential (`Teamgate-Upstream-Credential`).
    pub forward_credential: bool,
    /// A digest of the mapping text in service, to tell what a reload changes.
    pub mapping_digest: String,
    /// The backend's bulkhead: calls in flight to it at most (kept across reloads).
    pub slots: Arc<tokio::sync::Semaphore>,
    /// The size of `slots`.
    pub concurrency_limit: usize,
    /// The backend's circuit (kept across reloads).
    pub breaker: Arc<super::breaker::Breaker>,
}

/// What a reload did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// Backends now speaking through their newly loaded mapping.
    pub reloaded: Vec<String>,
    /// Of those, the ones whose mapping text changed.
    pub changed: Vec<String>,
    /// Backends gone from the configuration: they keep serving until a restart.
    pub kept: Vec<String>,
    /// Backends new in the configuration: they need a restart.
    pub ignored_new: Vec<String>,
}

/// Every configured backend, and the default one.
pub struct Backends {
    by_name: ArcSwap<BTreeMap<String, Served>>,
    default: String,
}

impl Backends {
    pub fn new(backends: BTreeMap<String, Served>, default: String) -> Backends {
        Backends {
            by_name: ArcSwap::from_pointee(backends),
            default,
        }
    }

    /// The backend of that name, in the current snapshot.
    pub fn get(&self, name: &str) -> Option<Served> {
        self.by_name.load().get(name).cloned()
    }

    /// The backend that serves requests that name none.
    pub fn default_name(&self) -> &str {
        &self.default
    }

    /// The current snapshot of every backend.
    pub fn snapshot(&self) -> Arc<BTreeMap<String, Served>> {
        self.by_name.load_full()
    }

    /// Swaps in newly loaded mappings for the configured backends. Other configuration
    /// (addresses, credentials, backends added or removed) needs a restart: those changes are
    /// reported and otherwise ignored.
    pub fn reload(
        &self,
        mappings: &BTreeMap<String, Arc<Mapping>>,
        digests: &BTreeMap<String, String>,
    ) -> ReloadReport {
        let current = self.by_name.load();
        let mut next = BTreeMap::new();
        let mut report = ReloadReport::default();
        for (name, served) in current.iter() {
            let mut served = served.clone();
            match mappings.get(name) {
                Some(mapping) => {
                    served.backend = Arc::new(served.backend.with_mapping(mapping.clone()));
                    let digest = digests.get(name).cloned().unwrap_or_default();
                    if digest != served.mapping_digest {
                        report.changed.push(name.clone());
                        served.mapping_digest = digest;
                    }
                    report.reloaded.push(name.clone());
                }
                None => report.kept.push(name.clone()),
            }
            next.insert(name.clone(), served);
        }
        report.ignored_new = mappings
            .keys()
            .filter(|name| !current.contains_key(*name))
            .cloned()
            .collect();
        self.by_name.store(Arc::new(next));
        report
    }
}
