//! Stage tests of the cache: a stub service behind the layer, no sockets, tokio's clock
//! paused where time matters.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tower::{Layer, Service, ServiceExt};

use super::*;
use crate::call::{CachePolicy, Call, Directives, Reply, Secret};
use crate::canonical::CanonicalRequest;
use crate::config::CacheSettings;
use crate::error::{Error, ErrorCode, UpstreamDetail};

/// What a stage answers: the reply, or the error.
type Answer = Result<Reply, Error>;

/// A backend as the cache sees it: a name, and the key that fingerprints credentials.
struct Backend {
    name: Arc<str>,
    fingerprints: RandomState,
}

fn backend(name: &str) -> Arc<Backend> {
    Arc::new(Backend {
        name: Arc::from(name),
        fingerprints: RandomState::new(),
    })
}

const POLICY: CachePolicy = CachePolicy {
    ttl: Duration::from_secs(10),
    stale_if_error: Duration::from_secs(30),
};

fn call(backend: &Arc<Backend>, op: Operation, team: &str) -> Call {
    let mut request = CanonicalRequest::new(op);
    request.team_id = Some(team.into());
    Call {
        backend: backend.name.clone(),
        request,
        credential: None,
        partition: backend.fingerprints.hash_one("configured"),
        directives: Directives::default(),
        policy: POLICY,
        trace: None,
        idempotency_key: None,
    }
}

fn ok(body: serde_json::Value) -> Answer {
    Ok(Reply::uncached(CanonicalResponse::ok(body)))
}

fn vendor_down() -> Answer {
    let mut problem = Error::new(ErrorCode::UpstreamUnavailable, "down");
    problem.upstream = Some(Box::new(UpstreamDetail {
        status: 503,
        code: None,
        message: None,
    }));
    Err(problem)
}

/// A service that counts its calls and answers from `answer(n)` for the n-th call, after
/// `delay`.
fn stub(
    delay: Duration,
    answer: impl Fn(usize) -> Answer + Send + Sync + 'static,
) -> (
    impl Service<Call, Response = Reply, Error = Error, Future: Send> + Clone + Send + 'static,
    Arc<AtomicUsize>,
) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let answer = Arc::new(answer);
    let service = tower::service_fn(move |_call: Call| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        let answer = answer.clone();
        async move {
            tokio::time::sleep(delay).await;
            answer(n)
        }
    });
    (service, calls)
}

fn cache(max_bytes: u64) -> Arc<ReadCache> {
    ReadCache::new(
        &CacheSettings {
            enabled: true,
            max_bytes,
        },
        Duration::from_secs(60),
        &prometheus::Registry::new(),
    )
}

async fn send<S>(service: &mut S, call: Call) -> Answer
where
    S: Service<Call, Response = Reply, Error = Error>,
{
    service.ready().await.unwrap().call(call).await
}

fn status(answer: &Answer) -> &str {
    answer
        .as_ref()
        .ok()
        .and_then(|reply| reply.cache.as_ref())
        .map(|c| c.status)
        .unwrap_or("none")
}

/// The canonical body of a successful answer.
fn body(answer: Answer) -> serde_json::Value {
    answer.unwrap().response.json().unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_hit_expires_after_its_ttl() {
    let b = backend("b");
    let (inner, calls) = stub(Duration::ZERO, |n| ok(json!({ "n": n })));
    let mut service = CacheLayer::new(cache(1 << 20)).layer(inner);
    let first = send(&mut service, call(&b, Operation::GetTeam, "1")).await;
    assert_eq!(status(&first), "teamgate; fwd=miss");
    let second = send(&mut service, call(&b, Operation::GetTeam, "1")).await;
    assert_eq!(status(&second), "teamgate; hit");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // TTL 10 s with ±10 % jitter: fresh at 8 s, expired at 12 s.
    tokio::time::advance(Duration::from_secs(8)).await;
    assert_eq!(
        status(&send(&mut service, call(&b, Operation::GetTeam, "1")).await),
        "teamgate; hit"
    );
    assert_eq!(second.as_ref().unwrap().cache.as_ref().unwrap().age_secs, 0);
    tokio::time::advance(Duration::from_secs(4)).await;
    let refreshed = send(&mut service, call(&b, Operation::GetTeam, "1")).await;
    assert_eq!(status(&refreshed), "teamgate; fwd=miss");
    assert_eq!(body(refreshed)["n"], 1);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn stale_stands_in_for_a_vendor_failure_within_the_window_only() {
    let b = backend("b");
    let (inner, calls) = stub(Duration::ZERO, |n| {
        if n == 0 {
            ok(json!({ "v": "good" }))
        } else {
            vendor_down()
        }
    });
    let mut service = CacheLayer::new(cache(1 << 20)).layer(inner);
    let _ = send(&mut service, call(&b, Operation::GetTeam, "1")).await;
    tokio::time::advance(Duration::from_secs(15)).await;
    let stale = send(&mut service, call(&b, Operation::GetTeam, "1")).await;
    assert_eq!(status(&stale), "teamgate; hit; stale");
    assert_eq!(stale.as_ref().unwrap().cache.as_ref().unwrap().age_secs, 15);
    assert_eq!(body(stale)["v"], "good");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "the vendor was asked first"
    );
    // Past TTL + window (at most 11 + 30 s), the error comes through.
    tokio::time::advance(Duration::from_secs(30)).await;
    let failed = send(&mut service, call(&b, Operation::GetTeam, "1")).await;
    assert_eq!(failed.unwrap_err().code, ErrorCode::UpstreamUnavailable);
}

#[tokio::test(start_paused = true)]
async fn a_caller_error_is_never_replaced_by_stale() {
    let b = backend("b");
    let (inner, _) = stub(Duration::ZERO, |n| {
        if n == 0 {
            ok(json!({}))
        } else {
            Err(Error::not_found("gone"))
        }
    });
    let mut service = CacheLayer::new(cache(1 << 20)).layer(inner);
    let _ = send(&mut service, call(&b, Operation::GetTeam, "1")).await;
    tokio::time::advance(Duration::from_secs(15)).await;
    let reply = send(&mut service, call(&b, Operation::GetTeam, "1")).await;
    assert_eq!(reply.unwrap_err().code, ErrorCode::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_misses_make_one_upstream_call() {
    let b = backend("b");
    let (inner, calls) = stub(Duration::from_millis(200), |_| ok(json!({ "x": 1 })));
    let service = CacheLayer::new(cache(1 << 20)).layer(inner);
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let service = service.clone();
        let c = call(&b, Operation::GetTeam, "same");
        tasks.push(tokio::spawn(async move { service.oneshot(c).await }));
    }
    let mut statuses = std::collections::BTreeMap::new();
    for t in tasks {
        let reply = t.await.unwrap();
        assert!(reply.is_ok());
        *statuses.entry(status(&reply).to_string()).or_insert(0) += 1;
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "{statuses:?}");
    assert_eq!(statuses.get("teamgate; fwd=miss"), Some(&1), "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_leader_error_goes_to_its_waiters_and_is_not_kept() {
    let b = backend("b");
    let (inner, calls) = stub(Duration::from_millis(100), |n| {
        if n == 0 {
            vendor_down()
        } else {
            ok(json!({}))
        }
    });
    let service = CacheLayer::new(cache(1 << 20)).layer(inner);
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let service = service.clone();
        let c = call(&b, Operation::GetTeam, "same");
        tasks.push(tokio::spawn(async move { service.oneshot(c).await }));
    }
    for t in tasks {
        assert!(
            t.await.unwrap().is_err(),
            "waiters share the leader's answer"
        );
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let after = service
        .clone()
        .oneshot(call(&b, Operation::GetTeam, "same"))
        .await;
    assert!(after.is_ok(), "the error was not cached");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn writes_invalidate_exactly_their_scopes() {
    let b = backend("b");
    let (inner, calls) = stub(Duration::ZERO, |_| ok(json!({})));
    let mut service = CacheLayer::new(cache(1 << 20)).layer(inner);
    let reads = [
        (Operation::GetTeam, "1"),
        (Operation::ListMembers, "1"),
        (Operation::GetTeam, "2"),
        (Operation::ListTeams, ""),
        (Operation::ListUsers, ""),
    ];
    for (op, team) in reads {
        let _ = send(&mut service, call(&b, op, team)).await;
    }
    let cases: [(Operation, &[usize]); 6] = [
        (Operation::AddMember, &[0, 1, 3]),
        (Operation::RemoveMember, &[0, 1, 3]),
        (Operation::UpdateMember, &[0, 1, 3]),
        (Operation::UpdateTeam, &[0, 1, 3]),
        (Operation::DeleteTeam, &[0, 1, 3]),
        (Operation::CreateTeam, &[3]),
    ];
    for (write, stale) in cases {
        // Warm every read, then write to team 1.
        for (op, team) in reads {
            let _ = send(&mut service, call(&b, op, team)).await;
        }
        let before = calls.load(Ordering::SeqCst);
        let _ = send(&mut service, call(&b, write, "1")).await;
        assert_eq!(calls.load(Ordering::SeqCst), before + 1);
        for (i, (op, team)) in reads.iter().enumerate() {
            let reply = send(&mut service, call(&b, *op, team)).await;
            let expected = if stale.contains(&i) {
                "teamgate; fwd=miss"
            } else {
                "teamgate; hit"
            };
            assert_eq!(status(&reply), expected, "{write:?} then {op:?} {team}");
        }
    }
    // A write the vendor refused invalidates nothing; one that timed out (it may have
    // happened) does.
    let (failing, _) = stub(Duration::ZERO, |_| vendor_down());
    let shared = cache(1 << 20);
    let mut warm = CacheLayer::new(shared.clone()).layer(stub(Duration::ZERO, |_| ok(json!({}))).0);
    let _ = send(&mut warm, call(&b, Operation::GetTeam, "1")).await;
    let mut failing = CacheLayer::new(shared).layer(failing);
    let _ = send(&mut failing, call(&b, Operation::DeleteTeam, "1")).await;
    assert_eq!(
        status(&send(&mut warm, call(&b, Operation::GetTeam, "1")).await),
        "teamgate; hit"
    );
}

#[tokio::test]
async fn credentials_partition_the_cache() {
    let b = backend("b");
    let (inner, calls) = stub(Duration::ZERO, |n| ok(json!({ "n": n })));
    let mut service = CacheLayer::new(cache(1 << 20)).layer(inner);
    let with = |key: &str| {
        let mut c = call(&b, Operation::GetTeam, "1");
        c.credential = Some(Secret::new(key.into()));
        c.partition = b.fingerprints.hash_one(key);
        c
    };
    let _ = send(&mut service, with("alice-key")).await;
    let other = send(&mut service, with("bob-key")).await;
    assert_eq!(status(&other), "teamgate; fwd=miss");
    assert_eq!(
        status(&send(&mut service, with("alice-key")).await),
        "teamgate; hit"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn bypass_goes_to_the_vendor_and_refreshes_the_entry() {
    let b = backend("b");
    let (inner, calls) = stub(Duration::ZERO, |n| ok(json!({ "n": n })));
    let mut service = CacheLayer::new(cache(1 << 20)).layer(inner);
    let _ = send(&mut service, call(&b, Operation::GetTeam, "1")).await;
    let mut bypass = call(&b, Operation::GetTeam, "1");
    bypass.directives.bypass = true;
    let reply = send(&mut service, bypass).await;
    assert_eq!(status(&reply), "teamgate; fwd=bypass");
    let after = send(&mut service, call(&b, Operation::GetTeam, "1")).await;
    assert_eq!(status(&after), "teamgate; hit");
    assert_eq!(body(after)["n"], 1, "the bypass refreshed the entry");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn the_byte_bound_holds_and_evictions_are_counted() {
    let b = backend("b");
    let (inner, _) = stub(Duration::ZERO, |n| {
        ok(json!({ "padding": "x".repeat(400), "n": n }))
    });
    let max = 8 * 1024;
    let shared = cache(max);
    let mut service = CacheLayer::new(shared.clone()).layer(inner);
    for i in 0..200 {
        let _ = send(&mut service, call(&b, Operation::GetTeam, &i.to_string())).await;
    }
    let weighed = shared.weighed_bytes().await;
    assert!(weighed <= max, "{weighed} > {max}");
    assert!(weighed > max / 2, "the cache is used: {weighed}");
    assert!(shared.evictions("b") > 100, "{}", shared.evictions("b"));
}

#[test]
fn etags_match_weakly_and_in_lists() {
    assert!(matches_etag("\"a\"", "\"a\""));
    assert!(matches_etag("W/\"a\"", "\"a\""));
    assert!(matches_etag("\"b\", \"a\"", "\"a\""));
    assert!(matches_etag("*", "\"a\""));
    assert!(!matches_etag("\"b\"", "\"a\""));
}
