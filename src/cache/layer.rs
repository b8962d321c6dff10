//! The cache as a tower stage: [`CacheLayer`] wraps the service that runs calls on backends.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::time::Instant;
use tower::{Layer, Service};

use super::{
    etag, is_vendor_failure, jittered, key, matches_etag, CacheResult, CachedAnswer, ReadCache,
    Stored,
};
use crate::call::{CacheInfo, CachePolicy, Call, Directives, Reply};
use crate::canonical::CanonicalResponse;
use crate::error::Error;

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
    S: Service<Call, Response = Reply, Error = Error> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = Reply;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Reply, Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, call: Call) -> Self::Future {
        // tower's clone-and-swap: the service polled ready goes into the future, its clone
        // stays behind for the next poll_ready.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let cache = self.cache.clone();
        Box::pin(serve(cache, inner, call))
    }
}

async fn serve<S>(cache: Arc<ReadCache>, mut inner: S, call: Call) -> Result<Reply, Error>
where
    S: Service<Call, Response = Reply, Error = Error> + Send,
    S::Future: Send,
{
    let op = call.request.op;
    if !cache.enabled() {
        return inner.call(call).await;
    }
    let backend = call.backend.clone();
    if op.is_write() {
        let team = call.request.team_id.clone();
        let result = inner.call(call).await;
        // A write that happened makes things stale; one refused by the vendor does not. A write
        // whose outcome is unknown (sent, then no answer) may have happened.
        let may_have_happened = match &result {
            Ok(_) => true,
            Err(error) => error.outcome_unknown(),
        };
        if may_have_happened {
            cache.invalidate(&backend, op, team.as_deref());
        }
        return result;
    }
    let Some(key) = key(&cache, &backend, call.partition, &call.request) else {
        return inner.call(call).await;
    };
    let policy = cache.capped(call.policy);
    let directives = call.directives.clone();

    if directives.bypass {
        let mut reply = inner.call(call).await?;
        cache.record(&backend, op, CacheResult::Bypass);
        if reply.response.status == 200 {
            let answer = Arc::new(answer(&key, reply.response.clone(), policy));
            reply.cache = Some(info(&answer, "teamgate; fwd=bypass", &directives));
            cache.store.insert(key, Stored::Answer(answer)).await;
        }
        return Ok(reply);
    }

    let previous = match cache.store.get(&key).await {
        Some(Stored::Answer(answer)) => Some(answer),
        _ => None,
    };
    if let Some(answer) = &previous {
        if answer.is_fresh(Instant::now()) {
            cache.record(&backend, op, CacheResult::Hit);
            return Ok(reply_from(answer, "teamgate; hit", &directives));
        }
    }

    // A miss (or a stale entry): one upstream call per key, whoever else is waiting.
    let ran = Arc::new(AtomicBool::new(false));
    let leader_ran = ran.clone();
    let entry_key = key.clone();
    let stale_candidate = previous.clone();
    let init = async move {
        leader_ran.store(true, Ordering::SeqCst);
        match inner.call(call).await {
            Ok(reply) if reply.response.status == 200 => {
                Stored::Answer(Arc::new(answer(&entry_key, reply.response, policy)))
            }
            Ok(reply) => Stored::Passed(reply.response),
            Err(error) => match stale_candidate {
                // The vendor failed: the last good answer stands in, still marked stale.
                Some(answer)
                    if is_vendor_failure(&error) && answer.is_usable_stale(Instant::now()) =>
                {
                    Stored::Answer(answer)
                }
                _ => Stored::Failed(error),
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
            Ok(reply_from(&answer, "teamgate; hit; stale", &directives))
        }
        Stored::Answer(answer) => {
            cache.record(&backend, op, fetched);
            Ok(reply_from(&answer, status, &directives))
        }
        Stored::Failed(error) => {
            cache.record(&backend, op, fetched);
            Err(error)
        }
        Stored::Passed(response) => {
            cache.record(&backend, op, fetched);
            Ok(Reply::uncached(response))
        }
    }
}

/// Bytes an entry holds besides its key and body: moka's node (its access and write order
/// queues, expiry timer, hash table slot, the key's own copy), our entry and its ETag, and the
/// allocator's share. Measured: with small entries (a 100-byte key and body), resident memory
/// grew by about 1 KB per entry.
const ENTRY_OVERHEAD: usize = 1024;

fn answer(key: &str, response: CanonicalResponse, policy: CachePolicy) -> CachedAnswer {
    let body_len = response.body.as_ref().map(|b| b.len()).unwrap_or(0);
    // What the entry holds: the key, the encoded body (as it is sent), bookkeeping (the
    // entry, the ETag, moka's own node).
    let weight = (key.len() + body_len + ENTRY_OVERHEAD).min(u32::MAX as usize) as u32;
    CachedAnswer {
        etag: etag(&response),
        response,
        stored_at: Instant::now(),
        fresh_for: jittered(&policy),
        stale_for: policy.stale_if_error,
        weight,
    }
}

fn info(answer: &CachedAnswer, status: &'static str, directives: &Directives) -> CacheInfo {
    CacheInfo {
        status,
        age_secs: answer.age(Instant::now()).as_secs(),
        etag: Some(answer.etag.clone()),
        not_modified: directives
            .if_none_match
            .as_deref()
            .is_some_and(|inm| matches_etag(inm, &answer.etag)),
    }
}

fn reply_from(answer: &CachedAnswer, status: &'static str, directives: &Directives) -> Reply {
    Reply {
        response: answer.response.clone(),
        cache: Some(info(answer, status, directives)),
    }
}
