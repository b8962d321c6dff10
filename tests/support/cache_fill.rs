//! Filling a read cache of 16 MiB far past its bound, measuring the process (the cache memory
//! tests: one file each, so that each runs in a process of its own).

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::Duration;

use teamgate::cache::{CacheLayer, ReadCache};
use teamgate::call::{CachePolicy, Call, Directives, Reply};
use teamgate::canonical::{CanonicalRequest, CanonicalResponse, Operation};
use teamgate::config::CacheSettings;
use tower::{Layer, ServiceExt};

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb * 1024
}

/// Puts `entries` answers of about `padding` bytes into a 16 MiB cache; checks the process
/// grew by no more than the bound × 1.25.
pub async fn fill(entries: u64, padding: usize) {
    const MAX_BYTES: u64 = 16 << 20;
    let cache = ReadCache::new(
        &CacheSettings {
            enabled: true,
            max_bytes: MAX_BYTES,
        },
        Duration::from_secs(600),
        &prometheus::Registry::new(),
    );
    // A vendor answering every read with a team of the size asked for.
    let vendor = tower::service_fn(move |call: Call| async move {
        let id = call.request.team_id.unwrap_or_default();
        let description = "d".repeat(padding);
        Ok::<_, teamgate::error::Error>(Reply::uncached(CanonicalResponse::ok(
            serde_json::json!({ "id": id, "name": "Team", "description": description }),
        )))
    });
    let service = CacheLayer::new(cache.clone()).layer(vendor);
    let partition = RandomState::new().hash_one("credential");
    let call = |i: u64| {
        let mut request = CanonicalRequest::new(Operation::GetTeam);
        request.team_id = Some(format!("team-{i:08}"));
        Call {
            backend: Arc::from("b"),
            request,
            credential: None,
            partition,
            directives: Directives::default(),
            policy: CachePolicy {
                ttl: Duration::from_secs(600),
                stale_if_error: Duration::from_secs(600),
            },
            trace: None,
            idempotency_key: None,
        }
    };
    // Warm up the allocator and the cache's own structures.
    for i in 0..entries / 50 {
        service.clone().oneshot(call(i)).await.unwrap();
    }
    let before = rss_bytes();
    for i in entries / 50..entries / 50 + entries {
        service.clone().oneshot(call(i)).await.unwrap();
    }
    let weighed = cache.weighed_bytes().await;
    let after = rss_bytes();
    let grown = after.saturating_sub(before);
    println!(
        "{entries} entries of ~{padding} B into a {} MiB cache: weighed {weighed} B, RSS {} → {} MiB (+{:.1} MiB)",
        MAX_BYTES >> 20,
        before >> 20,
        after >> 20,
        grown as f64 / (1 << 20) as f64
    );
    assert!(weighed <= MAX_BYTES, "the weigher's own bound");
    assert!(
        weighed > MAX_BYTES / 2,
        "the cache was filled ({weighed} B)"
    );
    assert!(
        grown <= MAX_BYTES + MAX_BYTES / 4,
        "RSS grew by {grown} B for a {MAX_BYTES} B bound"
    );
}
