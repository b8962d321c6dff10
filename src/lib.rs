//! teamgate: one canonical Team API in front of many vendor team APIs.
//!
//! # Layout
//!
//! - [`canonical`]: the canonical API v1 — operations, routing, validation, cursors, problems.
//! - [`mapping`]: mapping files, compiled once, and the engine that runs them.
//! - [`cache`]: the read cache stage (canonical keys, invalidation by writes, single flight).
//! - [`upstream`]: the HTTP client that carries vendor requests.
//! - [`server`]: the HTTP server, the tower stack and the gateway service.
//! - [`config`]: `config.toml` and the start-up check behind `teamgate check`.
//! - [`metrics`]: Prometheus metric names and the registry.
//! - [`embedded`]: the seam through which a build hands in embedded vendors (the demo's
//!   simulators live in their own crate of the workspace, `sim/`; this library never
//!   imports them).
//!
//! [`run`] takes an already-bound listener and a shutdown future, so the binary and every
//! test start the proxy the same way.

pub mod cache;
pub mod canonical;
pub mod config;
pub mod embedded;
pub mod mapping;
pub mod metrics;
pub mod server;
pub mod upstream;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

use config::{Checked, Target};
use mapping::engine::{Backend, Secret};
use metrics::Metrics;
use server::gateway::{BackendRoute, Gateway};
use upstream::HttpTransport;

/// Largest vendor answer read, in bytes.
const MAX_UPSTREAM_BODY: usize = 16 << 20;

/// A proxy ready to serve: backends built, embedded simulators running.
pub struct App {
    pub gateway: Arc<Gateway>,
    pub metrics: Arc<Metrics>,
    pub cache: Arc<cache::ReadCache>,
    /// Embedded vendors by backend name; they stop when the app is dropped.
    pub embedded: BTreeMap<String, embedded::EmbeddedVendor>,
    limits: config::ServerLimits,
    /// The embedded vendor kinds this app was built with, for reloads to check against.
    embedded_kinds: Vec<&'static str>,
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
        vendors: &dyn embedded::EmbeddedVendors,
    ) -> anyhow::Result<App> {
        let metrics = Arc::new(Metrics::new());
        let mut backends = BTreeMap::new();
        let mut simulators = BTreeMap::new();
        for backend in &checked.config.backends {
            let from_env = backend
                .credential_env
                .as_ref()
                .and_then(|var| std::env::var(var).ok());
            let (base_url, credential) = match &backend.target {
                Target::BaseUrl(url) => (url.clone(), from_env.unwrap_or_default()),
                Target::Simulator(kind) => {
                    // No secret in the file and none needed for the demo: an embedded
                    // simulator gets a fresh random credential unless the env names one.
                    let credential =
                        from_env.unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
                    let vendor = vendors.start(kind, &credential).await?;
                    let url = vendor.base_url.clone();
                    tracing::info!(backend = %backend.name, simulator = %kind, url = %url, "Embedded vendor started");
                    simulators.insert(backend.name.clone(), vendor);
                    (url, credential)
                }
            };
            let mapping = checked
                .mappings
                .get(&backend.name)
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("no mapping loaded for backend {}", backend.name))?;
            let transport = Arc::new(HttpTransport::new(backend.timeout, MAX_UPSTREAM_BODY));
            let engine = Arc::new(Backend::new(
                backend.name.clone(),
                mapping,
                &base_url,
                Secret::new(credential),
                backend.options.clone(),
                transport,
                metrics.clone(),
            ));
            backends.insert(
                backend.name.clone(),
                BackendRoute {
                    backend: engine,
                    policy: backend.cache,
                    forward_credential: backend.forward_credential,
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
        let gateway = Arc::new(Gateway {
            backends: arc_swap::ArcSwap::from_pointee(backends),
            executor: server::gateway::executor(cache.clone()),
            default_backend: checked.config.default_backend.clone(),
            metrics: metrics.clone(),
            max_body_bytes: checked.config.server.max_body_bytes,
        });
        Ok(App {
            gateway,
            metrics,
            cache,
            embedded: simulators,
            embedded_kinds: vendors.kinds().to_vec(),
            limits: checked.config.server.clone(),
        })
    }

    /// A handle that reloads the mappings from the configuration file this app was built
    /// from (what `SIGHUP` does). A configuration or mapping that does not check keeps the
    /// old mappings in service.
    pub fn reloader(&self, config_path: std::path::PathBuf) -> Reloader {
        Reloader {
            gateway: self.gateway.clone(),
            config_path,
            embedded_kinds: self.embedded_kinds.clone(),
        }
    }

    /// Serves on `listener` until `shutdown` completes.
    pub async fn serve(self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let App {
            gateway,
            embedded,
            limits,
            ..
        } = self;
        server::serve(listener, gateway, limits, shutdown).await;
        drop(embedded);
    }
}

/// Reloads mapping files into a running app.
#[derive(Clone)]
pub struct Reloader {
    gateway: Arc<Gateway>,
    config_path: std::path::PathBuf,
    embedded_kinds: Vec<&'static str>,
}

impl Reloader {
    /// Checks the configuration and every mapping again; on success swaps the new mappings
    /// in and returns how many backends were reloaded, on failure keeps the old ones and
    /// returns every problem.
    pub fn reload(&self) -> Result<usize, Vec<mapping::CheckError>> {
        let checked = config::check(&self.config_path, &self.embedded_kinds)?;
        let (reloaded, ignored) = self.gateway.reload_mappings(&checked);
        for reason in ignored {
            tracing::warn!(%reason, "Reload ignored a configuration change");
        }
        tracing::info!(reloaded, "Mappings reloaded");
        Ok(reloaded)
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
