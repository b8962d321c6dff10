//! The link to Redis: connections, their supervisor, and shared cache invalidation.
//!
//! One task per replica supervises two connections: a multiplexed one for commands (budget
//! scripts, locks, idempotency records, `PUBLISH`) and a pub/sub one subscribed to the
//! invalidation channel `<key_prefix>:invalidate`. While both are up, Redis is *up*:
//!
//! - every scope this replica's cache invalidates is published (`<replica id>` RS scopes),
//!   and every other replica bumps the same scopes in its own cache when the message
//!   arrives: the propagation bound is one publish and one delivery (a few ms on a LAN);
//! - answers stay fresh for their backend's TTL.
//!
//! When either connection fails (an error, a closed socket, a `PING` unanswered within
//! `redis_timeout_ms`), Redis is *down*: the replica forgets its cached answers (messages may
//! have been missed), caps TTLs to `fallback_ttl_ms`, counts the loss, and reconnects with
//! exponential backoff (100 ms doubling to 5 s, ±25 % jitter). On reconnection it forgets its
//! cached answers once more (what was published while it was away is lost with pub/sub) and
//! lifts the cap. Commands issued while down are not attempted: callers fall back at once.
//! The backends this replica wrote to while down are invalidated fleet-wide as a whole once
//! it is back (the others could not be told which teams changed), so a replica cut off from
//! Redis alone leaves the others stale for its outage at most.
//!
//! Why pub/sub rather than generations read from Redis on each hit: measured on loopback
//! (BENCHMARKS.md, "Fleet"), a whole cache hit takes ~40-50 µs end to end and one Redis round
//! trip ~50-65 µs and ~30-40 µs of client CPU: reading generations would about double the
//! cost of every read, for the rare write. Pub/sub costs nothing
//! per read, a publish per write, and its one weakness (messages lost while disconnected) is
//! covered by forgetting the cache on every loss and reconnection.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use futures_util::StreamExt;
use redis::aio::MultiplexedConnection;
use tokio::sync::{mpsc, Notify};

use super::config::FleetConfig;
use super::FleetMetrics;
use crate::cache::ReadCache;

/// Separates the sender's id and the scopes in an invalidation message.
const RS: char = '\u{1e}';
/// Invalidations waiting to be published at most; past it they are dropped (counted).
const QUEUE: usize = 4096;
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How often a connection that carries no traffic is checked.
const PING_EVERY: Duration = Duration::from_secs(1);

/// The connection to Redis, shared by the fleet features of one replica.
pub struct Link {
    /// The command connection, while Redis is up.
    conn: ArcSwapOption<MultiplexedConnection>,
    up: AtomicBool,
    /// A command failed: the supervisor checks the connection at once.
    trouble: Notify,
    timeout: Duration,
    metrics: Arc<FleetMetrics>,
    client: redis::Client,
    /// Backends this replica invalidated while Redis was down.
    missed: std::sync::Mutex<std::collections::BTreeSet<String>>,
}

impl Link {
    /// The link, not connected yet ([`Link::supervise`] connects it).
    pub(super) fn new(
        url: &str,
        config: &FleetConfig,
        metrics: Arc<FleetMetrics>,
    ) -> anyhow::Result<Arc<Link>> {
        let client = redis::Client::open(url)
            .map_err(|e| anyhow::anyhow!("fleet.redis_url: {}", e.category()))?;
        Ok(Arc::new(Link {
            conn: ArcSwapOption::empty(),
            up: AtomicBool::new(false),
            trouble: Notify::new(),
            timeout: config.redis_timeout,
            metrics,
            client,
            missed: Default::default(),
        }))
    }

    /// Starts the supervisor (it connects in the background); it ends when `stopped`'s
    /// sender is dropped.
    pub(super) fn supervise(
        self: &Arc<Link>,
        config: &FleetConfig,
        cache: Arc<ReadCache>,
        backends: Vec<String>,
        stopped: tokio::sync::watch::Receiver<()>,
    ) {
        let link = self;
        let metrics = self.metrics.clone();
        let (tx, rx) = mpsc::channel::<Vec<String>>(QUEUE);
        let sent = metrics.clone();
        let weak = Arc::downgrade(link);
        cache.set_invalidation_hook(Box::new(move |scopes: &[String]| {
            // While Redis is down nobody can be told (and every replica forgets its cache
            // when it gets Redis back).
            let Some(link) = weak.upgrade() else { return };
            if !link.is_up() {
                let mut missed = link.missed.lock().expect("missed lock");
                for scope in scopes {
                    if let Some(backend) = scope.split('\u{1f}').nth(1) {
                        missed.insert(backend.to_string());
                    }
                }
                return;
            }
            if tx.try_send(scopes.to_vec()).is_err() {
                sent.redis_errors.with_label_values(&["invalidate"]).inc();
            }
        }));
        // Until the first connection, this replica is one that has no Redis.
        cache.cap_ttl(Some(config.fallback_ttl));
        let supervisor = Supervisor {
            link: Arc::downgrade(link),
            client: self.client.clone(),
            cache,
            backends,
            fallback_ttl: config.fallback_ttl,
            channel: format!("{}:invalidate", config.key_prefix),
            replica: format!("{:016x}", rand::random::<u64>()),
            metrics,
        };
        tokio::spawn(supervisor.run(rx, stopped));
    }

    /// Whether Redis is reachable now.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Runs one command on the command connection within `redis_timeout_ms`; `None` when
    /// Redis is down, or the command failed or timed out (counted under `use`, and the
    /// supervisor checks the connection).
    pub async fn run<T, F, Fut>(&self, what: &'static str, command: F) -> Option<T>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let conn = self.conn.load_full()?;
        match tokio::time::timeout(self.timeout, command((*conn).clone())).await {
            Ok(Ok(value)) => Some(value),
            Ok(Err(e)) if !e.is_io_error() && !e.is_timeout() && !e.is_connection_dropped() => {
                // Redis answered with an error (a script's, say): the link is fine.
                self.metrics.redis_errors.with_label_values(&[what]).inc();
                tracing::warn!(error = %e.category(), what, "Redis command failed");
                None
            }
            _ => {
                self.metrics.redis_errors.with_label_values(&[what]).inc();
                self.trouble.notify_one();
                None
            }
        }
    }
}

struct Supervisor {
    link: std::sync::Weak<Link>,
    client: redis::Client,
    cache: Arc<ReadCache>,
    backends: Vec<String>,
    fallback_ttl: Duration,
    channel: String,
    replica: String,
    metrics: Arc<FleetMetrics>,
}

impl Supervisor {
    async fn run(
        self,
        mut queue: mpsc::Receiver<Vec<String>>,
        mut stopped: tokio::sync::watch::Receiver<()>,
    ) {
        let mut backoff = BACKOFF_FIRST;
        let mut first = true;
        loop {
            let Some(link) = self.link.upgrade() else {
                return;
            };
            let connected = tokio::select! {
                c = self.connect(link.timeout) => c,
                _ = stopped.changed() => return,
            };
            match connected {
                Ok((mut conn, pubsub)) => {
                    backoff = BACKOFF_FIRST;
                    link.conn.store(Some(Arc::new(conn.clone())));
                    link.up.store(true, Ordering::Relaxed);
                    self.metrics.redis_up.set(1);
                    // Invalidations published while this replica was away are lost.
                    self.cache.forget_backends_locally(&self.backends);
                    self.cache.cap_ttl(None);
                    tracing::info!("Fleet: Redis reached; invalidations are shared");
                    // What this replica changed while away, backend by backend.
                    let missed = std::mem::take(&mut *link.missed.lock().expect("missed lock"));
                    if !missed.is_empty() {
                        let scopes: Vec<String> = missed
                            .iter()
                            .map(|b| crate::cache::backend_scope(b))
                            .collect();
                        if !self.publish(&link, &mut conn, &scopes).await {
                            link.missed.lock().expect("missed lock").extend(missed);
                        }
                    }
                    let stop = self
                        .serve(&link, conn, pubsub, &mut queue, &mut stopped)
                        .await;
                    link.conn.store(None);
                    link.up.store(false, Ordering::Relaxed);
                    self.metrics.redis_up.set(0);
                    self.metrics.redis_lost.inc();
                    self.cache.cap_ttl(Some(self.fallback_ttl));
                    self.cache.forget_backends_locally(&self.backends);
                    if stop {
                        return;
                    }
                    tracing::warn!(
                        fallback_ttl_ms = self.fallback_ttl.as_millis() as u64,
                        "Fleet: Redis lost; local invalidation only, shorter TTLs, reconnecting"
                    );
                }
                Err(e) => {
                    if first {
                        self.metrics.redis_lost.inc();
                        tracing::warn!(error = %e, "Fleet: Redis not reachable; local invalidation only, reconnecting");
                    }
                }
            }
            first = false;
            drop(link);
            // Invalidations made while down need not reach anyone: every replica that was
            // up forgets its cache when it comes back, and the others see them by pub/sub.
            while queue.try_recv().is_ok() {}
            let jitter: f64 = rand::random_range(0.75..1.25);
            tokio::select! {
                _ = tokio::time::sleep(backoff.mul_f64(jitter)) => {}
                _ = stopped.changed() => return,
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    async fn connect(
        &self,
        timeout: Duration,
    ) -> Result<(MultiplexedConnection, redis::aio::PubSub), String> {
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout.max(Duration::from_millis(500))))
            .set_response_timeout(Some(timeout));
        let within = timeout.max(Duration::from_millis(500)) * 2;
        let made = tokio::time::timeout(within, async {
            let conn = self
                .client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            let mut pubsub = self.client.get_async_pubsub().await?;
            pubsub.subscribe(&self.channel).await?;
            Ok::<_, redis::RedisError>((conn, pubsub))
        })
        .await;
        match made {
            Ok(Ok(pair)) => Ok(pair),
            Ok(Err(e)) => Err(e.category().to_string()),
            Err(_) => Err("timed out".into()),
        }
    }

    /// Serves while both connections are up; `true` when the replica is stopping.
    async fn serve(
        &self,
        link: &Link,
        mut conn: MultiplexedConnection,
        mut pubsub: redis::aio::PubSub,
        queue: &mut mpsc::Receiver<Vec<String>>,
        stopped: &mut tokio::sync::watch::Receiver<()>,
    ) -> bool {
        let mut messages = pubsub.on_message();
        let mut tick = tokio::time::interval(PING_EVERY);
        loop {
            tokio::select! {
                message = messages.next() => {
                    let Some(message) = message else { return false };
                    let Ok(payload) = message.get_payload::<String>() else { continue };
                    let mut parts = payload.split(RS);
                    if parts.next() == Some(self.replica.as_str()) {
                        continue;
                    }
                    let scopes: Vec<String> = parts.map(str::to_string).collect();
                    if !scopes.is_empty() {
                        self.cache.apply_remote(&scopes);
                        self.metrics.invalidations.with_label_values(&["received"]).inc();
                    }
                }
                scopes = queue.recv() => {
                    let Some(scopes) = scopes else { return true };
                    if !self.publish(link, &mut conn, &scopes).await {
                        return false;
                    }
                }
                _ = tick.tick() => {
                    if !self.ping(link, &mut conn).await {
                        return false;
                    }
                }
                _ = link.trouble.notified() => {
                    if !self.ping(link, &mut conn).await {
                        return false;
                    }
                }
                _ = stopped.changed() => return true,
            }
        }
    }

    /// Tells the other replicas; `false` when Redis did not take it.
    async fn publish(
        &self,
        link: &Link,
        conn: &mut MultiplexedConnection,
        scopes: &[String],
    ) -> bool {
        let mut payload = self.replica.clone();
        for scope in scopes {
            payload.push(RS);
            payload.push_str(scope);
        }
        let published = tokio::time::timeout(
            link.timeout,
            redis::cmd("PUBLISH")
                .arg(&self.channel)
                .arg(payload)
                .query_async::<i64>(conn),
        )
        .await;
        if !matches!(published, Ok(Ok(_))) {
            self.metrics
                .redis_errors
                .with_label_values(&["invalidate"])
                .inc();
            return false;
        }
        self.metrics
            .invalidations
            .with_label_values(&["sent"])
            .inc();
        true
    }

    async fn ping(&self, link: &Link, conn: &mut MultiplexedConnection) -> bool {
        let pong =
            tokio::time::timeout(link.timeout, redis::cmd("PING").query_async::<String>(conn))
                .await;
        let ok = matches!(pong, Ok(Ok(_)));
        if !ok {
            self.metrics.redis_errors.with_label_values(&["ping"]).inc();
        }
        ok
    }
}
