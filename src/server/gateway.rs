//! The gateway service: one canonical HTTP request in, one canonical HTTP response out.
//!
//! It owns the edge of the proxy: request ids, routing, backend selection
//! (`Teamgate-Backend`), body limits and content types, validation, and the one place where
//! a [`Problem`] becomes an `application/problem+json` response. Everything vendor-specific
//! happens behind [`Backend::execute`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};

use arc_swap::ArcSwap;

use crate::cache::{CacheLayer, ReadCache};
use crate::canonical::route::{route, Route};
use crate::canonical::validate::{self, TeamWrite};
use crate::canonical::{CanonicalResponse, ErrorCode, Operation, Problem};
use crate::config::CachePolicy;
use crate::mapping::engine::{Backend, Secret};
use crate::metrics::Metrics;
use crate::server::dispatch::{CacheInfo, Call, Directives, Execute, Reply};
use tower::ServiceExt;
use tracing::Instrument;

pub const BACKEND_HEADER: &str = "teamgate-backend";
/// The vendor credential, on backends configured with `forward_credential = true`.
pub const CREDENTIAL_HEADER: &str = "teamgate-upstream-credential";

/// The inner stack: cache stage in front of the backends.
pub type Executor = tower::util::BoxCloneSyncService<Call, Reply, std::convert::Infallible>;

/// Builds the inner stack. Order: top = first to see the call.
pub fn executor(cache: Arc<ReadCache>) -> Executor {
    let stack = tower::ServiceBuilder::new()
        // Reads answered from memory never reach the mapping engine.
        .layer(CacheLayer::new(cache))
        .service(Execute);
    tower::util::BoxCloneSyncService::new(stack)
}

/// A configured backend as the gateway routes to it.
#[derive(Clone)]
pub struct BackendRoute {
    pub backend: Arc<Backend>,
    pub policy: CachePolicy,
    pub forward_credential: bool,
}
pub const REQUEST_ID_HEADER: &str = "x-request-id";

pub type Body = Full<Bytes>;

/// Shared state of the gateway.
pub struct Gateway {
    /// Swapped whole by a mapping reload; each request works on one snapshot.
    pub backends: ArcSwap<BTreeMap<String, BackendRoute>>,
    /// Runs calls on backends, behind the read cache (see [`crate::cache`]).
    pub executor: Executor,
    pub default_backend: String,
    pub metrics: Arc<Metrics>,
    pub max_body_bytes: usize,
}

impl Gateway {
    /// Answers one request; never fails (every error is a problem response).
    pub async fn handle<B>(&self, req: Request<B>) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Send,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let started = Instant::now();
        // The outermost stage gave the request its id; a direct call makes one here.
        let request_id = req
            .extensions()
            .get::<RequestId>()
            .map(|id| id.0.clone())
            .unwrap_or_else(|| request_id(&req));
        let span = tracing::info_span!("request", request_id = %request_id, operation = tracing::field::Empty, backend = tracing::field::Empty);
        let (label_op, label_backend, response) = self
            .dispatch(req, &request_id)
            .instrument(span.clone())
            .await;
        span.record("operation", label_op);
        span.record("backend", label_backend.as_str());
        let status = response.status().as_u16();
        self.metrics.request(
            label_op,
            &label_backend,
            status,
            started.elapsed().as_secs_f64(),
        );
        span.in_scope(|| {
            tracing::info!(
                status,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "Request answered"
            )
        });
        let mut response = response;
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert(REQUEST_ID_HEADER, v);
        }
        response
    }

    /// Returns the metric labels (operation, backend) with the response.
    async fn dispatch<B>(
        &self,
        req: Request<B>,
        request_id: &str,
    ) -> (&'static str, String, Response<Body>)
    where
        B: http_body::Body<Data = Bytes> + Send,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let routed = route(req.method(), req.uri().path(), req.uri().query());
        let mut canonical = match routed {
            Ok(Route::Operation(c)) => c,
            Ok(Route::Metrics) => {
                let body = self.metrics.render();
                return (
                    "metrics",
                    "none".into(),
                    text(StatusCode::OK, "text/plain; version=0.0.4", body),
                );
            }
            Ok(Route::Health) => {
                return (
                    "health",
                    "none".into(),
                    json_response(200, &json!({"status": "ok"})),
                )
            }
            Ok(Route::Backends) => {
                return (
                    "list_backends",
                    "none".into(),
                    json_response(200, &self.describe()),
                )
            }
            Err(p) => return ("unrouted", "none".into(), problem_response(&p, request_id)),
        };
        let op = canonical.op;
        let backend = match self.select_backend(&req) {
            Ok(b) => b,
            Err(p) => {
                return (
                    op.name(),
                    "unknown".into(),
                    problem_response(&p, request_id),
                )
            }
        };
        let name = backend.backend.name.clone();
        let directives = directives(&req);
        let credential = match (
            backend.forward_credential,
            req.headers().get(CREDENTIAL_HEADER),
        ) {
            (false, _) => None,
            (true, Some(v)) if !v.is_empty() => match v.to_str() {
                Ok(text) => Some(Secret::new(text.to_string())),
                Err(_) => None,
            },
            (true, _) => None,
        };
        if backend.forward_credential && credential.is_none() {
            let problem = Problem::new(
                ErrorCode::Unauthenticated,
                format!("backend `{name}` needs the vendor credential in {CREDENTIAL_HEADER}"),
            )
            .with_backend(&name);
            return (op.name(), name, problem_response(&problem, request_id));
        }
        let route = backend;
        let result = async {
            let body = read_json_body(req, op, self.max_body_bytes).await?;
            canonical.input = match (op, body) {
                (Operation::CreateTeam, Some(b)) => validate::team_input(&b, TeamWrite::Create)?,
                (Operation::UpdateTeam, Some(b)) => validate::team_input(&b, TeamWrite::Patch)?,
                (Operation::AddMember, Some(b)) => validate::member_input(&b)?,
                (Operation::UpdateMember, Some(b)) => validate::member_role_input(&b)?,
                (_, None) => Default::default(),
                (_, Some(_)) => {
                    return Err(Problem::invalid(format!("{} takes no body", op.name())))
                }
            };
            let call = Call {
                backend: route.backend.clone(),
                request: canonical,
                credential,
                directives,
                policy: route.policy,
            };
            let reply = match self.executor.clone().oneshot(call).await {
                Ok(reply) => reply,
                Err(never) => match never {},
            };
            Ok(reply)
        }
        .await;
        let response = match result.and_then(|reply| match reply.result {
            Ok(answer) => Ok((answer, reply.cache)),
            Err(problem) => Err(problem),
        }) {
            Ok((answer, cache)) => cached_response(answer, cache),
            Err(problem) => {
                let problem = problem.with_backend(&name);
                if problem.status() >= 500 {
                    tracing::warn!(code = problem.code.as_str(), detail = %problem.detail, "Request failed");
                }
                problem_response(&problem, request_id)
            }
        };
        (op.name(), name, response)
    }

    fn select_backend<B>(&self, req: &Request<B>) -> Result<BackendRoute, Problem> {
        let name = match req.headers().get(BACKEND_HEADER) {
            None => self.default_backend.as_str(),
            Some(v) => v.to_str().unwrap_or("\u{fffd}").trim(),
        };
        let backends = self.backends.load();
        backends.get(name).cloned().ok_or_else(|| {
            let names: Vec<&String> = backends.keys().collect();
            Problem::invalid(format!(
                "unknown backend {name:?} in Teamgate-Backend; configured: {}",
                names
                    .iter()
                    .map(|n| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .with_extra("backends", json!(names))
        })
    }

    /// Swaps in newly loaded mappings for the configured backends. Other configuration
    /// (addresses, credentials, backends added or removed) needs a restart: those changes are
    /// reported and ignored. Returns how many backends were reloaded.
    pub fn reload_mappings(&self, checked: &crate::config::Checked) -> (usize, Vec<String>) {
        let current = self.backends.load();
        let mut next = BTreeMap::new();
        let mut ignored = Vec::new();
        for (name, route) in current.iter() {
            match checked.mappings.get(name) {
                Some(mapping) => {
                    let mut route = route.clone();
                    route.backend = Arc::new(route.backend.with_mapping(mapping.clone()));
                    next.insert(name.clone(), route);
                }
                None => {
                    ignored.push(format!("backend `{name}` is gone from the config; it keeps serving until a restart"));
                    next.insert(name.clone(), route.clone());
                }
            }
        }
        for name in checked
            .mappings
            .keys()
            .filter(|n| !current.contains_key(*n))
        {
            ignored.push(format!("backend `{name}` is new; it needs a restart"));
        }
        let reloaded = next.len() - ignored.iter().filter(|i| i.contains("is gone")).count();
        self.backends.store(Arc::new(next));
        (reloaded, ignored)
    }

    /// `GET /v1/backends`: what each backend is and can do, read from its mapping.
    fn describe(&self) -> Value {
        let snapshot = self.backends.load();
        let backends: Vec<Value> = snapshot
            .values()
            .map(|route| {
                let b = &route.backend;
                let m = &b.mapping;
                let roles: Vec<&str> = ["admin", "member"]
                    .into_iter()
                    .filter(|r| m.member.vendor_role(r).is_some())
                    .collect();
                json!({
                    "name": b.name,
                    "vendor": m.vendor,
                    "default": b.name == self.default_backend,
                    "operations": m.operations.keys().map(|op| op.name()).collect::<Vec<_>>(),
                    "team_fields": m.team_fields(),
                    "member_roles": roles,
                    "forward_credential": route.forward_credential,
                    "cache": {
                        "ttl_ms": route.policy.ttl.as_millis() as u64,
                        "stale_if_error_ms": route.policy.stale_if_error.as_millis() as u64,
                    },
                    "limits": {
                        "name_max": m.limits.name_max,
                        "description_max": m.limits.description_max,
                        "page_size_max": m.limits.page_size_max,
                    },
                })
            })
            .collect();
        json!({ "backends": backends })
    }
}

/// The caller's request id if it is sane, else a new one.
/// The id of a request, given once at the edge of the stack.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

pub fn request_id<B>(req: &Request<B>) -> String {
    req.headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string())
}

/// Reads and parses the body of operations that take one.
async fn read_json_body<B>(
    req: Request<B>,
    op: Operation,
    max: usize,
) -> Result<Option<Value>, Problem>
where
    B: http_body::Body<Data = Bytes> + Send,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let takes_body = matches!(
        op,
        Operation::CreateTeam
            | Operation::UpdateTeam
            | Operation::AddMember
            | Operation::UpdateMember
    );
    let content_type = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    let (_, body) = req.into_parts();
    let bytes = read_bounded(body, max).await?;
    if !takes_body {
        return if bytes.is_empty() {
            Ok(None)
        } else {
            Err(Problem::invalid(format!("{} takes no body", op.name())))
        };
    }
    let is_json = content_type.as_deref().is_some_and(|ct| {
        ct == "application/json" || (ct.starts_with("application/") && ct.ends_with("+json"))
    });
    if !is_json {
        return Err(Problem::new(
            ErrorCode::UnsupportedMediaType,
            "the body must be JSON (Content-Type: application/json)",
        ));
    }
    if bytes.is_empty() {
        return Err(Problem::invalid(
            "the body is empty; a JSON object is expected",
        ));
    }
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Problem::invalid(format!("the body is not valid JSON: {e}")))
}

/// Past the limit, this much more is read and dropped before answering 413, so that a client
/// still sending gets the answer instead of a reset; beyond it the connection is closed.
const DRAIN_MAX: usize = 16 << 20;

/// Reads a body of at most `max` bytes; a larger one is `payload_too_large`.
async fn read_bounded<B>(body: B, max: usize) -> Result<Bytes, Problem>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let mut body = std::pin::pin!(body);
    let mut collected = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| Problem::invalid("the request body could not be read"))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen += data.len();
        if seen <= max {
            collected.extend_from_slice(&data);
        } else if seen > max + DRAIN_MAX {
            break;
        }
    }
    if seen > max {
        return Err(too_large(max));
    }
    Ok(collected.freeze())
}

fn too_large(max: usize) -> Problem {
    Problem::new(
        ErrorCode::PayloadTooLarge,
        format!("the body is larger than {max} bytes"),
    )
}

/// `Cache-Control: no-cache` / `max-age=0` and `If-None-Match` from the caller.
fn directives<B>(req: &Request<B>) -> Directives {
    let bypass = req
        .headers()
        .get_all(http::header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|d| d.trim().to_ascii_lowercase().replace(' ', ""))
        .any(|d| d == "no-cache" || d == "max-age=0" || d == "no-store");
    let if_none_match = req
        .headers()
        .get(http::header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    Directives {
        bypass,
        if_none_match,
    }
}

/// A success with what the cache said: `Cache-Status`, `Age`, `ETag`, or a 304.
fn cached_response(answer: CanonicalResponse, cache: Option<CacheInfo>) -> Response<Body> {
    let Some(info) = cache else {
        return success_response(answer);
    };
    let mut response = if info.not_modified {
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        success_response(answer)
    };
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&info.status) {
        headers.insert("cache-status", v);
    }
    headers.insert(http::header::AGE, HeaderValue::from(info.age_secs));
    if let Some(v) = info.etag.and_then(|e| HeaderValue::from_str(&e).ok()) {
        headers.insert(http::header::ETAG, v);
    }
    response
}

fn success_response(answer: CanonicalResponse) -> Response<Body> {
    let mut response = match &answer.body {
        Some(body) => json_response(answer.status, body),
        None => {
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::NO_CONTENT);
            r
        }
    };
    if let Some(location) = answer.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        response
            .headers_mut()
            .insert(http::header::LOCATION, location);
    }
    response
}

fn json_response(status: u16, body: &Value) -> Response<Body> {
    text(
        StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
        "application/json",
        body.to_string(),
    )
}

/// The only place a problem becomes HTTP.
pub fn problem_response(problem: &Problem, request_id: &str) -> Response<Body> {
    let mut response = text(
        StatusCode::from_u16(problem.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        "application/problem+json",
        problem.to_json(request_id).to_string(),
    );
    if let Some(secs) = problem.retry_after {
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            response.headers_mut().insert(http::header::RETRY_AFTER, v);
        }
    }
    response
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    response
}
