//! The HTTP server: accepts connections (HTTP/1.1 and h2c) and runs each request through the
//! request path composed in [`stack`], until shutdown. One file per stage of that path.

mod admin;
mod body;
mod measure;
pub mod problem;
pub mod request_id;
mod respond;
pub mod router;
pub mod stack;
mod trace;

use std::future::Future;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use crate::health::Health;

pub use respond::Body;
pub use stack::HttpService;

/// How the server stops: on `shutdown`, `/readyz` turns 503 at once ([`Health`]); requests are
/// still served for `drain_grace` so load balancers notice; then the listener closes and open
/// requests get up to `shutdown_timeout` to finish.
pub struct Drain<'a> {
    pub health: &'a Health,
    pub drain_grace: Duration,
    pub shutdown_timeout: Duration,
}

/// Serves the request path on `listener` until `shutdown` completes, then drains.
pub async fn serve(
    listener: TcpListener,
    service: HttpService,
    drain: Drain<'_>,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    accept_until(&listener, &service, &builder, &graceful, shutdown).await;

    drain.health.start_draining();
    tracing::info!(
        grace_ms = drain.drain_grace.as_millis() as u64,
        "Draining: /readyz answers 503; the listener closes after the grace"
    );
    let grace = tokio::time::sleep(drain.drain_grace);
    accept_until(&listener, &service, &builder, &graceful, grace).await;
    drop(listener);

    tracing::info!("Listener closed; waiting for open requests");
    tokio::select! {
        _ = graceful.shutdown() => tracing::info!("Every open request finished"),
        _ = tokio::time::sleep(drain.shutdown_timeout) => {
            tracing::warn!(
                timeout_ms = drain.shutdown_timeout.as_millis() as u64,
                "Open requests did not finish within the shutdown timeout"
            );
        }
    }
}

/// Accepts connections and serves each on its own task until `stop` completes.
async fn accept_until(
    listener: &TcpListener,
    service: &HttpService,
    builder: &auto::Builder<TokioExecutor>,
    graceful: &GracefulShutdown,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Running out of file descriptors must not end the server; back off briefly.
                    tracing::warn!(error = %e, "Accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => return,
        };
        let _ = stream.set_nodelay(true);
        let hyper_service = TowerToHyperService::new(service.clone());
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), hyper_service);
        let conn = graceful.watch(conn.into_owned());
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "Connection ended with an error");
            }
        });
    }
}
