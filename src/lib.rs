//! teamgate: one canonical Team API in front of many vendor team APIs.
//!
//! # Layout
//!
//! From the bottom up (a file imports only from the lines above it):
//!
//! - [`error`]: the one error type — canonical code, origin, retryability, vendor detail.
//! - [`metrics`]: Prometheus metric names and the registry.
//! - [`redact`]: the one redaction step for vendor text on its way to an answer or a log.
//! - [`callers`]: optional caller authentication (`[[callers]]` API keys, stored hashed).
//! - [`canonical`]: the canonical API v1 — operations, routing, validation, cursors.
//! - [`call`]: a routed request on its way to a backend, and its reply (shared by the cache
//!   and the engine).
//! - [`upstream`]: the client that carries vendor requests, as a tower service.
//! - [`mapping`]: mapping files, compiled once; the engine that runs them; the registry of
//!   configured backends.
//! - [`idempotency`]: the `Idempotency-Key` stage (writes that are safe to retry).
//! - [`cache`]: the read cache stage (canonical keys, invalidation by writes, single flight).
//! - [`config`]: `config.toml` and the start-up check behind `teamgate check`.
//! - [`openapi`]: the OpenAPI 3.1 description of the canonical API (`GET /openapi.json`).
//! - [`server`]: the HTTP server and the request path, composed in `server/stack.rs`.
//! - [`health`]: alive, ready, draining, and the hash of the configuration in service.
//! - [`migrate`]: `teamgate migrate` and `teamgate diff`: teams and memberships planned,
//!   carried and compared between two backends, through the mapping engine.
//! - [`mirror`]: mirror mode for a switch-over: a backend's writes repeated on another in the
//!   background, shadow reads compared.
//! - [`embedded`]: the seam through which a build hands in embedded vendors (the demo's
//!   simulators live in their own crate of the workspace, `sim/`; this library never
//!   imports them).
//! - `otlp` (the `otlp` cargo feature only): OpenTelemetry export of the tracing spans over
//!   OTLP/HTTP.
//!
//! [`run`] takes an already-bound listener and a shutdown future, so the binary and every
//! test start the proxy the same way.

pub mod cache;
pub mod call;
pub mod callers;
pub mod canonical;
pub mod config;
pub mod embedded;
pub mod error;
pub mod fleet;
pub mod health;
pub mod idempotency;
pub mod logs;
pub mod mapping;
pub mod metrics;
pub mod migrate;
pub mod mirror;
pub mod openapi;
#[cfg(feature = "otlp")]
pub mod otlp;
pub mod redact;
pub mod server;
pub mod upstream;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

use call::Secret;
use config::{Checked, Target};
use embedded::{EmbeddedVendor, EmbeddedVendors};
use mapping::engine::Backend;
use mapping::registry::{Backends, Served};
use metrics::Metrics;

/// A proxy ready to serve: backends built, embedded vendors running.
pub struct App {
    pub backends: Arc<Backends>,
    pub metrics: Arc<Metrics>,
    pub cache: Arc<cache::ReadCache>,
    pub health: Arc<health::Health>,
    /// The backends' mirrors (`mirror = "..."`); their workers start with [`App::serve`].
    pub mirrors: Arc<mirror::Mirrors>,
    /// Embedded vendors by backend name; they stop when the app is dropped.
    pub embedded: BTreeMap<String, EmbeddedVendor>,
    limits: config::ServerLimits,
    callers: Arc<callers::Callers>,
    /// The embedded vendor kinds this app was built with, for reloads to check against.
    embedded_kinds: Vec<&'static str>,
    /// `[fleet]` (shared state through Redis, vendor budgets); `None`: one replica.
    pub fleet: Option<Arc<fleet::Fleet>>,
}

impl App {
    /// Builds every backend of a checked configuration whose backends all have a `base_url`.
    pub async fn build(checked: Checked) -> anyhow::Result<App> {
        App::build_with(checked, &embedded::NoEmbeddedVendors).await
    }

    /// Builds every backend of a checked configuration; starts the embedded vendors that
    /// backends ask for (`simulator = "<kind>"`) from `vendors`, on loopback ports.
    pub async fn build_with(
        checked: Checked,
        vendors: &dyn EmbeddedVendors,
    ) -> anyhow::Result<App> {
        let metrics = Arc::new(Metrics::new());
        let fleet = match &checked.config.fleet {
            Some(f) => Some(Arc::new(fleet::Fleet::new(f.clone(), metrics.registry())?)),
            None => None,
        };
        let mut served = BTreeMap::new();
        let mut embedded = BTreeMap::new();
        for backend in &checked.config.backends {
            let from_env = backend
                .credential_env
                .as_ref()
                .and_then(|var| std::env::var(var).ok());
            let (base_url, credential) = match &backend.target {
                Target::BaseUrl(url) => (url.clone(), from_env.unwrap_or_default()),
                Target::Simulator(kind) => {
                    // No secret in the file and none needed for the demo: an embedded
                    // vendor gets a fresh random credential unless the env names one.
                    let credential =
                        from_env.unwrap_or_else(|| format!("{:032x}", rand::random::<u128>()));
                    let vendor = vendors.start(kind, &credential).await?;
                    let url = vendor.base_url.clone();
                    tracing::info!(backend = %backend.name, simulator = %kind, url = %url, "Embedded vendor started");
                    embedded.insert(backend.name.clone(), vendor);
                    (url, credential)
                }
            };
            let mapping = checked
                .mappings
                .get(&backend.name)
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("no mapping loaded for backend {}", backend.name))?;
            let engine = Backend::new(
                backend.name.clone(),
                mapping.clone(),
                &base_url,
                Secret::new(credential),
                backend.options.clone(),
                fleet::upstream_client(fleet.as_deref(), backend, &mapping),
                metrics.clone(),
            );
            if let Some(fleet) = &fleet {
                fleet.share_team_locks(&engine, &backend.name);
            }
            let limit = backend
                .concurrency_limit
                .unwrap_or(checked.config.server.backend_share());
            served.insert(
                backend.name.clone(),
                Served {
                    backend: Arc::new(engine),
                    policy: backend.cache,
                    forward_credential: backend.forward_credential,
                    mapping_digest: checked
                        .mapping_digests
                        .get(&backend.name)
                        .cloned()
                        .unwrap_or_default(),
                    slots: Arc::new(tokio::sync::Semaphore::new(limit)),
                    concurrency_limit: limit,
                    breaker: Arc::new(mapping::breaker::Breaker::new(
                        backend.breaker_failures,
                        backend.breaker_open,
                    )),
                },
            );
        }
        let max_entry_life = checked
            .config
            .backends
            .iter()
            .map(|b| b.cache.ttl.mul_f64(1.1) + b.cache.stale_if_error)
            .max()
            .unwrap_or_default();
        let cache =
            cache::ReadCache::new(&checked.config.cache, max_entry_life, metrics.registry());
        let backends = Arc::new(Backends::new(
            served.clone(),
            checked.config.default_backend.clone(),
        ));
        let mirrors = Arc::new(mirror::Mirrors::new(
            &checked.config,
            backends.clone(),
            cache.clone(),
            &metrics,
        ));
        metrics.config_in_service(&checked.hash);
        if let Some(fleet) = &fleet {
            fleet.connect(&cache, served.keys().cloned().collect());
        }
        Ok(App {
            health: Arc::new(health::Health::new(checked.hash.clone())),
            backends,
            mirrors,
            metrics,
            cache,
            embedded,
            limits: checked.config.server.clone(),
            callers: Arc::new(checked.config.callers.clone()),
            embedded_kinds: vendors.kinds().to_vec(),
            fleet,
        })
    }

    /// A handle that reloads the mappings from the configuration file this app was built
    /// from (what `SIGHUP` does). A configuration or mapping that does not check keeps the
    /// old mappings in service.
    pub fn reloader(&self, config_path: std::path::PathBuf) -> Reloader {
        Reloader {
            backends: self.backends.clone(),
            cache: self.cache.clone(),
            metrics: self.metrics.clone(),
            health: self.health.clone(),
            config_path,
            embedded_kinds: self.embedded_kinds.clone(),
        }
    }

    /// Serves on `listener` until `shutdown` completes; then drains the mirrors' queues
    /// within the same shutdown timeout as open requests.
    pub async fn serve(self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        self.mirrors.start();
        let parts = server::stack::Parts {
            backends: self.backends.clone(),
            cache: self.cache.clone(),
            metrics: self.metrics.clone(),
            health: self.health.clone(),
            callers: self.callers.clone(),
            mirrors: self.mirrors.clone(),
            fleet: self.fleet.clone(),
        };
        let service = server::stack::build(parts, &self.limits);
        let stopped = Arc::new(std::sync::OnceLock::new());
        let mark = stopped.clone();
        let shutdown = async move {
            shutdown.await;
            let _ = mark.set(tokio::time::Instant::now());
        };
        server::serve(listener, service, &self.limits, &self.health, shutdown).await;
        if !self.mirrors.is_empty() {
            // The listener closed `drain_grace` after the signal; open requests and mirror
            // jobs share the shutdown timeout from then.
            let deadline = stopped.get().map_or_else(tokio::time::Instant::now, |at| {
                *at + self.limits.drain_grace
            }) + self.limits.shutdown_timeout;
            self.mirrors.drain(deadline).await;
        }
        drop(self.embedded);
    }
}

/// Reloads mapping files into a running app.
#[derive(Clone)]
pub struct Reloader {
    backends: Arc<Backends>,
    cache: Arc<cache::ReadCache>,
    metrics: Arc<Metrics>,
    health: Arc<health::Health>,
    config_path: std::path::PathBuf,
    embedded_kinds: Vec<&'static str>,
}

impl Reloader {
    /// Checks the configuration and every mapping again; on success swaps the new mappings
    /// in (dropping the cached answers of backends whose mapping changed) and returns how many
    /// backends were reloaded, on failure keeps the old ones and returns every problem.
    pub fn reload(&self) -> Result<usize, Vec<mapping::CheckError>> {
        let checked = match config::check(&self.config_path, &self.embedded_kinds) {
            Ok(checked) => checked,
            Err(problems) => {
                self.metrics.reload(false);
                return Err(problems);
            }
        };
        let report = self
            .backends
            .reload(&checked.mappings, &checked.mapping_digests);
        for name in &report.changed {
            self.cache.invalidate_backend(name);
        }
        self.health.set_config_hash(checked.hash.clone());
        self.metrics.config_in_service(&checked.hash);
        self.metrics.reload(true);
        for name in &report.kept {
            tracing::warn!(backend = %name, "Reload: the backend is gone from the config; it keeps serving until a restart");
        }
        for name in &report.ignored_new {
            tracing::warn!(backend = %name, "Reload: the backend is new; it needs a restart");
        }
        tracing::info!(
            reloaded = report.reloaded.len(),
            changed = report.changed.len(),
            hash = %checked.hash,
            "Mappings reloaded"
        );
        Ok(report.reloaded.len())
    }
}

/// Builds the app from a checked configuration and serves it until `shutdown`.
pub async fn run(
    listener: TcpListener,
    checked: Checked,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    App::build(checked).await?.serve(listener, shutdown).await;
    Ok(())
}
