//! The cache as a tower stage: [`CacheLayer`] wraps the service that runs calls on backends.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};

use super::{
    etag, is_vendor_failure, jittered, key, matches_etag, CacheResult, CachedAnswer, ReadCache,
    Stored,
};
use crate::canonical::{CanonicalResponse, ErrorCode};
use crate::config::CachePolicy;
use crate::server::dispatch::{CacheInfo, Call, Directives, Reply};

/// Puts the read cache in front of a service that runs calls.
#[derive(Clone)]
pub struct CacheLayer {
    cache: Arc<ReadCache>,
}

impl CacheLayer {
    pub fn new(cache: Arc<ReadCache>) -> CacheLayer {
        CacheLayer { cache }
    }
}

impl<S> Layer<S> for CacheLayer {
    type Service = CacheService<S>;

    fn layer(&self, inner: S) -> CacheService<S> {
        CacheService {
            inner,
            cache: self.cache.clone(),
        }
    }
}

#[derive(Clone)]
pub struct CacheService<S> {
    inner: S,
    cache: Arc<ReadCache>,
}

impl<S> Service<Call> for CacheService<S>
where
    S: Service<Call, Response = Reply, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = Reply;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Reply, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, call: Call) -> Self::Future {
        let cache = self.cache.clone();
        let inner = self.inner.clone();
        Box::pin(async move { Ok(serve(cache, inner, call).await) })
    }
}

async fn run<S>(inner: S, call: Call) -> Reply
where
    S: Service<Call, Response = Reply, Error = Infallible>,
{
    match inner.oneshot(call).await {
        Ok(reply) => reply,
        Err(never) => match never {},
    }
}

async fn serve<S>(cache: Arc<ReadCache>, inner: S, call: Call) -> Reply
where
    S: Service<Call, Response = Reply, Error = Infallible> + Send,
    S::Future: Send,
{
    let op = call.request.op;
    let backend = call.backend.name.clone();
    if !cache.enabled() {
        return run(inner, call).await;
    }
    if op.is_write() {
        let team = call.request.team_id.clone();
        let reply = run(inner, call).await;
        // A write that happened makes things stale; one refused by the vendor does not. A write
        // whose outcome is unknown (it timed out after being sent) may have happened.
        let may_have_happened = match &reply.result {
            Ok(_) => true,
            Err(problem) => problem.code == ErrorCode::UpstreamTimeout,
        };
        if may_have_happened {
            cache.invalidate(&backend, op, team.as_deref());
        }
        return reply;
    }
    let fingerprint = match &call.credential {
        Some(credential) => call.backend.fingerprint(credential),
        None => call.backend.configured_fingerprint(),
    };
    let Some(key) = key(&cache, &backend, fingerprint, &call.request) else {
        return run(inner, call).await;
    };
    let policy = call.policy;
    let directives = call.directives.clone();

    if directives.bypass {
        let mut reply = run(inner, call).await;
        cache.record(&backend, op, CacheResult::Bypass);
        if let Ok(response) = &reply.result {
            if response.status == 200 {
                let answer = Arc::new(answer(&key, response.clone(), policy));
                reply.cache = Some(info(&answer, "teamgate; fwd=bypass", &directives));
                cache.store.insert(key, Stored::Answer(answer)).await;
            }
        }
        return reply;
    }

    let previous = match cache.store.get(&key).await {
        Some(Stored::Answer(answer)) => Some(answer),
        _ => None,
    };
    if let Some(answer) = &previous {
        if answer.is_fresh(Instant::now()) {
            cache.record(&backend, op, CacheResult::Hit);
            return reply_from(answer, "teamgate; hit", &directives);
        }
    }

    // A miss (or a stale entry): one upstream call per key, whoever else is waiting.
    let ran = Arc::new(AtomicBool::new(false));
    let leader_ran = ran.clone();
    let entry_key = key.clone();
    let stale_candidate = previous.clone();
    let init = async move {
        leader_ran.store(true, Ordering::SeqCst);
        let reply = run(inner, call).await;
        match reply.result {
            Ok(response) if response.status == 200 => {
                Stored::Answer(Arc::new(answer(&entry_key, response, policy)))
            }
            Ok(response) => Stored::Passed(response),
            Err(problem) => match stale_candidate {
                // The vendor failed: the last good answer stands in, still marked stale.
                Some(answer)
                    if is_vendor_failure(&problem) && answer.is_usable_stale(Instant::now()) =>
                {
                    Stored::Answer(answer)
                }
                _ => Stored::Failed(problem),
            },
        }
    };
    let entry = cache
        .store
        .entry(key)
        .or_insert_with_if(init, |value| value.needs_refresh(Instant::now()))
        .await;
    let leader = ran.load(Ordering::SeqCst);
    let fetched = if leader {
        CacheResult::Miss
    } else {
        CacheResult::Coalesced
    };
    let status = if leader {
        "teamgate; fwd=miss"
    } else {
        "teamgate; fwd=miss; collapsed"
    };
    match entry.into_value() {
        Stored::Answer(answer) if !answer.is_fresh(Instant::now()) => {
            cache.record(&backend, op, CacheResult::Stale);
            reply_from(&answer, "teamgate; hit; stale", &directives)
        }
        Stored::Answer(answer) => {
            cache.record(&backend, op, fetched);
            reply_from(&answer, status, &directives)
        }
        Stored::Failed(problem) => {
            cache.record(&backend, op, fetched);
            Reply {
                result: Err(problem),
                cache: Some(CacheInfo {
                    status: status.to_string(),
                    age_secs: 0,
                    etag: None,
                    not_modified: false,
                }),
            }
        }
        Stored::Passed(response) => {
            cache.record(&backend, op, fetched);
            Reply {
                result: Ok(response),
                cache: None,
            }
        }
    }
}

fn answer(key: &str, response: CanonicalResponse, policy: CachePolicy) -> CachedAnswer {
    let body_len = response
        .body
        .as_ref()
        .map(|b| b.to_string().len())
        .unwrap_or(0);
    // What the entry costs in memory, roughly: key, serialized body, bookkeeping.
    let weight = (key.len() + body_len + 128).min(u32::MAX as usize) as u32;
    CachedAnswer {
        etag: etag(&response),
        response,
        stored_at: Instant::now(),
        fresh_for: jittered(&policy),
        stale_for: policy.stale_if_error,
        weight,
    }
}

fn info(answer: &CachedAnswer, status: &str, directives: &Directives) -> CacheInfo {
    CacheInfo {
        status: status.to_string(),
        age_secs: answer.age(Instant::now()).as_secs(),
        etag: Some(answer.etag.clone()),
        not_modified: directives
            .if_none_match
            .as_deref()
            .is_some_and(|inm| matches_etag(inm, &answer.etag)),
    }
}

fn reply_from(answer: &CachedAnswer, status: &str, directives: &Directives) -> Reply {
    Reply {
        result: Ok(answer.response.clone()),
        cache: Some(info(answer, status, directives)),
    }
}
