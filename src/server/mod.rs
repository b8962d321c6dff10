//! The HTTP server: accepts connections (HTTP/1.1 and h2c) and runs each request through the
//! request path composed in [`stack`], until shutdown. One file per stage of that path.

pub mod admin;
mod body;
mod measure;
pub mod problem;
pub mod request_id;
mod respond;
pub mod router;
pub mod stack;
mod trace;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::config::ServerLimits;
use crate::health::Health;

pub use respond::Body;
pub use stack::HttpService;

/// Serves the request path on `listener` until `shutdown` completes, then drains: `/readyz`
/// turns 503 at once ([`Health`]); requests are still served for `drain_grace` so load
/// balancers notice; then the listener closes and open requests get up to `shutdown_timeout`
/// to finish.
///
/// Connections: at most `max_connections` are open (past it, new ones wait in the listen
/// backlog); a client gets `header_read_timeout` to send a request's headers, which also
/// closes an idle HTTP/1.1 keep-alive connection; HTTP/2 connections are pinged and bounded in
/// concurrent streams and pending resets.
pub async fn serve(
    listener: TcpListener,
    service: HttpService,
    limits: &ServerLimits,
    health: &Health,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let builder = connection_builder(limits);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let accept = Accept {
        listener: &listener,
        service: &service,
        builder: &builder,
        graceful: &graceful,
        slots: &slots,
        first_bytes: limits.header_read_timeout,
    };
    accept.until(shutdown).await;

    health.start_draining();
    tracing::info!(
        grace_ms = limits.drain_grace.as_millis() as u64,
        "Draining: /readyz answers 503; the listener closes after the grace"
    );
    accept.until(tokio::time::sleep(limits.drain_grace)).await;
    drop(listener);

    tracing::info!("Listener closed; waiting for open requests");
    tokio::select! {
        _ = graceful.shutdown() => tracing::info!("Every open request finished"),
        _ = tokio::time::sleep(limits.shutdown_timeout) => {
            tracing::warn!(
                timeout_ms = limits.shutdown_timeout.as_millis() as u64,
                "Open requests did not finish within the shutdown timeout"
            );
        }
    }
}

fn connection_builder(limits: &ServerLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(20))
        .keep_alive_timeout(Duration::from_secs(20))
        .max_concurrent_streams(256)
        .max_pending_accept_reset_streams(64);
    builder
}

/// What the accept loop needs, borrowed for its two phases (serving, then the drain grace).
struct Accept<'a> {
    listener: &'a TcpListener,
    service: &'a HttpService,
    builder: &'a auto::Builder<TokioExecutor>,
    graceful: &'a GracefulShutdown,
    slots: &'a Arc<Semaphore>,
    /// How long a new connection may stay silent.
    first_bytes: Duration,
}

impl Accept<'_> {
    /// Accepts connections and serves each on its own task until `stop` completes.
    async fn until(&self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            // A connection slot first: at the cap, new connections wait in the backlog.
            let slot = tokio::select! {
                slot = self.slots.clone().acquire_owned() => match slot {
                    Ok(slot) => slot,
                    Err(_) => return,
                },
                _ = &mut stop => return,
            };
            let (stream, _) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        // Out of file descriptors, say: back off instead of spinning; the
                        // connections already open go on being served.
                        tracing::warn!(error = %e, "Accept failed; backing off");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                _ = &mut stop => return,
            };
            let _ = stream.set_nodelay(true);
            let hyper_service = TowerToHyperService::new(self.service.clone());
            let builder = self.builder.clone();
            let watcher = self.graceful.watcher();
            let first_bytes = self.first_bytes;
            tokio::spawn(async move {
                // Until its first bytes arrive a connection is nobody's: the protocol is not
                // known yet, so hyper's header timeout has not started. Bound that wait too.
                let mut first = [0u8; 1];
                if !matches!(
                    tokio::time::timeout(first_bytes, stream.peek(&mut first)).await,
                    Ok(Ok(1))
                ) {
                    return;
                }
                let conn =
                    builder.serve_connection_with_upgrades(TokioIo::new(stream), hyper_service);
                if let Err(e) = watcher.watch(conn.into_owned()).await {
                    tracing::debug!(error = %e, "Connection ended with an error");
                }
                drop(slot);
            });
        }
    }
}
