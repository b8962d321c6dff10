//! The read cache's memory bound is a bound: filled with 100,000 small answers (many times
//! what fits), the process grows by no more than `max_bytes` × 1.25. A process of its own, so
//! that no other test's memory is counted.

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_small_entries_stay_within_the_byte_bound() {
    const MAX_BYTES: u64 = 16 << 20;
    let cache = ReadCache::new(
        &CacheSettings {
            enabled: true,
            max_bytes: MAX_BYTES,
        },
        Duration::from_secs(600),
        &prometheus::Registry::new(),
    );
    // A vendor answering every read with a small team.
    let vendor = tower::service_fn(|call: Call| async move {
        let id = call.request.team_id.unwrap_or_default();
        Ok::<_, teamgate::error::Error>(Reply::uncached(CanonicalResponse::ok(
            serde_json::json!({ "id": id, "name": "Team", "member_count": 3 }),
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
    for i in 0..2_000 {
        service.clone().oneshot(call(i)).await.unwrap();
    }
    let before = rss_bytes();
    for i in 2_000..102_000 {
        service.clone().oneshot(call(i)).await.unwrap();
    }
    let weighed = cache.weighed_bytes().await;
    let after = rss_bytes();
    let grown = after.saturating_sub(before);
    println!(
        "100,000 entries into a {} MiB cache: weighed {weighed} B, RSS {} → {} MiB (+{:.1} MiB)",
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
