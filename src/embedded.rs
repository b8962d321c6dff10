//! Embedded vendors: stand-ins started in-process for backends configured with
//! `simulator = "<kind>"` (the demo's `config.toml`).
//!
//! The library knows no vendor and no simulator. Whoever builds the [`crate::App`] may hand it
//! an [`EmbeddedVendors`] registry; the `teamgate` binary hands over the simulator crate's.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;

/// A running embedded vendor: where it listens, and what keeps it running.
pub struct EmbeddedVendor {
    /// The `base_url` the backend talks to (a loopback address).
    pub base_url: String,
    /// Dropping it stops the vendor.
    pub guard: Box<dyn Any + Send + Sync>,
}

/// The future of [`EmbeddedVendors::start`].
pub type StartFuture<'a> =
    Pin<Box<dyn Future<Output = anyhow::Result<EmbeddedVendor>> + Send + 'a>>;

/// The kinds of embedded vendor a build offers, and how to start one.
pub trait EmbeddedVendors: Send + Sync {
    /// Every kind [`EmbeddedVendors::start`] accepts (what `teamgate check` allows).
    fn kinds(&self) -> &[&'static str];

    /// Starts the vendor of `kind` on a loopback port, accepting `credential` only.
    fn start<'a>(&'a self, kind: &'a str, credential: &'a str) -> StartFuture<'a>;
}

/// A build without embedded vendors: every backend needs a `base_url`.
pub struct NoEmbeddedVendors;

impl EmbeddedVendors for NoEmbeddedVendors {
    fn kinds(&self) -> &[&'static str] {
        &[]
    }

    fn start<'a>(&'a self, kind: &'a str, _credential: &'a str) -> StartFuture<'a> {
        Box::pin(async move { anyhow::bail!("this build embeds no vendor (`{kind}` asked for)") })
    }
}
