//! Writes that are safe to retry: the `Idempotency-Key` stage.
//!
//! A `POST` (create a team, add a member) that carries `Idempotency-Key` is remembered, per
//! backend, credential and key, for a configurable window:
//!
//! - the same key with the same request answers the first result again, without a second
//!   vendor write; with another request it is 409 `conflict`;
//! - concurrent requests with one key run one after the other, so the second sees the first's
//!   outcome;
//! - a result that says nothing about the vendor's state (throttled, unavailable) is not
//!   kept: the next attempt runs;
//! - a create whose outcome is unknown (sent, then no answer) is remembered as uncertain: the
//!   next attempt with the key first looks for the team by name, and answers 201 with it when
//!   the first attempt did create it, instead of creating it a second time.
//!
//! With `[fleet]` and Redis, a key is also locked fleet-wide and its answer (or "uncertain")
//! kept in Redis, so a retry that reaches another replica is answered the same
//! (`crate::fleet::lease::SharedKeys`).

use std::collections::hash_map::DefaultHasher;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Mutex;
use tower::{Layer, Service, ServiceExt};

use crate::call::{Call, Directives, Reply};
use crate::canonical::{CanonicalRequest, CanonicalResponse, Operation, PageRequest};
use crate::error::{Error, ErrorCode};
use crate::fleet::lease::{SharedKeys, SharedRecord};

/// Keys remembered at most; past it the oldest go first.
const MAX_KEYS: u64 = 100_000;

/// What a key's first request came to.
#[derive(Clone)]
enum Record {
    /// The answer, success or a refusal that will not change.
    Done {
        request: u64,
        result: Result<Reply, Error>,
    },
    /// Sent, and no answer: the write may or may not have happened.
    Uncertain { request: u64 },
}

type Slot = Arc<Mutex<Option<Record>>>;

/// The keys seen within the window.
pub struct Idempotency {
    slots: moka::future::Cache<String, Slot>,
    /// `[fleet]` with Redis: keys shared by the fleet.
    fleet: Option<Arc<SharedKeys>>,
}

impl Idempotency {
    pub fn new(window: Duration, fleet: Option<Arc<SharedKeys>>) -> Arc<Idempotency> {
        Arc::new(Idempotency {
            slots: moka::future::Cache::builder()
                .max_capacity(MAX_KEYS)
                .time_to_live(window)
                .build(),
            fleet,
        })
    }
}

/// The fleet's copy of a record: answers and uncertainty (refusals stay local).
fn shared(record: &Record) -> Option<SharedRecord> {
    match record {
        Record::Done {
            request,
            result: Ok(reply),
        } => Some(SharedRecord {
            request: *request,
            response: Some(reply.response.clone()),
        }),
        Record::Uncertain { request } => Some(SharedRecord {
            request: *request,
            response: None,
        }),
        Record::Done { .. } => None,
    }
}

fn from_shared(record: SharedRecord) -> Record {
    match record.response {
        Some(response) => Record::Done {
            request: record.request,
            result: Ok(Reply::uncached(response)),
        },
        None => Record::Uncertain {
            request: record.request,
        },
    }
}

#[derive(Clone)]
pub struct IdempotencyLayer {
    store: Arc<Idempotency>,
}

impl IdempotencyLayer {
    pub fn new(store: Arc<Idempotency>) -> IdempotencyLayer {
        IdempotencyLayer { store }
    }
}

impl<S> Layer<S> for IdempotencyLayer {
    type Service = IdempotencyService<S>;

    fn layer(&self, inner: S) -> IdempotencyService<S> {
        IdempotencyService {
            inner,
            store: self.store.clone(),
        }
    }
}

#[derive(Clone)]
pub struct IdempotencyService<S> {
    inner: S,
    store: Arc<Idempotency>,
}

impl<S> Service<Call> for IdempotencyService<S>
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
        // tower's clone-and-swap: the service polled ready is the one that gets the call.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let store = self.store.clone();
        Box::pin(async move {
            match slot_key(&call) {
                Some(key) => remembered(&store, key, inner, call).await,
                None => inner.oneshot(call).await,
            }
        })
    }
}

/// The key of a call that is remembered: a POST with `Idempotency-Key`.
fn slot_key(call: &Call) -> Option<String> {
    let key = call.idempotency_key.as_deref()?;
    let remembered = matches!(
        call.request.op,
        Operation::CreateTeam | Operation::AddMember
    );
    remembered.then(|| {
        format!(
            "{}\u{1f}{:x}\u{1f}{}\u{1f}{key}",
            call.backend,
            call.partition,
            call.request.op.name()
        )
    })
}

/// What makes two requests the same request.
fn fingerprint(request: &CanonicalRequest) -> u64 {
    let mut hasher = DefaultHasher::new();
    request.op.hash(&mut hasher);
    request.team_id.hash(&mut hasher);
    request.user_id.hash(&mut hasher);
    Value::Object(request.input.clone())
        .to_string()
        .hash(&mut hasher);
    hasher.finish()
}

async fn remembered<S>(
    store: &Idempotency,
    key: String,
    inner: S,
    call: Call,
) -> Result<Reply, Error>
where
    S: Service<Call, Response = Reply, Error = Error> + Clone,
{
    let slot = store
        .slots
        .get_with(key.clone(), async { Slot::default() })
        .await;
    // One request per key at a time: a concurrent retry waits for the first one's outcome.
    let mut record = slot.lock().await;
    // With the fleet: one request per key in every replica, and what another one saw.
    let shared_key = store.fleet.as_ref().map(|_| SharedKeys::key_of(&call));
    let _lease = match (&store.fleet, &shared_key) {
        (Some(fleet), Some(key)) => {
            let lease = fleet.lock(key).await;
            if let Some(kept) = fleet.load(key).await {
                *record = Some(from_shared(kept));
            }
            lease
        }
        _ => None,
    };
    let request = fingerprint(&call.request);
    match record.as_ref() {
        Some(Record::Done { request: first, .. } | Record::Uncertain { request: first })
            if *first != request =>
        {
            return Err(Error::new(
                ErrorCode::Conflict,
                "this Idempotency-Key was used for a different request",
            ));
        }
        Some(Record::Done { result, .. }) => return result.clone(),
        Some(Record::Uncertain { .. }) => {
            if let Some(found) = created_before(inner.clone(), &call).await {
                *record = Some(Record::Done {
                    request,
                    result: Ok(found.clone()),
                });
                share(store, shared_key.as_deref(), record.as_ref()).await;
                return Ok(found);
            }
        }
        None => {}
    }
    let result = inner.oneshot(call).await;
    *record = match &result {
        Ok(_) => Some(Record::Done {
            request,
            result: result.clone(),
        }),
        Err(error) if error.outcome_unknown() => Some(Record::Uncertain { request }),
        // Throttled or unavailable: nothing happened, the next attempt should run.
        Err(error) if error.retryable() => record.take(),
        Err(_) => Some(Record::Done {
            request,
            result: result.clone(),
        }),
    };
    share(store, shared_key.as_deref(), record.as_ref()).await;
    result
}

/// Keeps the record in the fleet's store (when there is one and the record is shared).
async fn share(store: &Idempotency, key: Option<&str>, record: Option<&Record>) {
    if let (Some(fleet), Some(key), Some(kept)) = (&store.fleet, key, record.and_then(shared)) {
        fleet.save(key, &kept).await;
    }
}

/// The team an uncertain create made, if the vendor has exactly one by that name now.
async fn created_before<S>(inner: S, create: &Call) -> Option<Reply>
where
    S: Service<Call, Response = Reply, Error = Error>,
{
    if create.request.op != Operation::CreateTeam {
        return None;
    }
    let name = create.request.input.get("name")?.as_str()?.to_string();
    let mut lookup = CanonicalRequest::new(Operation::ListTeams);
    lookup.query.insert("name".into(), name.clone());
    lookup.page = Some(PageRequest {
        limit: crate::canonical::route::LIMIT_MAX,
        offset: 0,
    });
    let call = Call {
        request: lookup,
        // Straight to the vendor: a cached list may predate the first attempt.
        directives: Directives {
            bypass: true,
            if_none_match: None,
        },
        idempotency_key: None,
        ..create.clone()
    };
    let reply = inner.oneshot(call).await.ok()?;
    let teams = reply.response.json()?["teams"].as_array()?.clone();
    let mut same = teams.into_iter().filter(|t| t["name"] == name.as_str());
    let team = same.next()?;
    if same.next().is_some() {
        return None;
    }
    let location = team["id"].as_str().map(|id| {
        format!(
            "/v1/teams/{}",
            crate::mapping::template::encode_component(id)
        )
    });
    let mut response = CanonicalResponse::with_status(201, team);
    response.location = location;
    Some(Reply::uncached(response))
}
