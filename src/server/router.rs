//! The canonical router: a request with its body read becomes a [`Call`] on one backend —
//! operation and parameters from the path, the backend from `Teamgate-Backend`, the vendor
//! credential the caller forwards where the backend takes one, caching directives, and the
//! body validated for the operation — or it is answered here (`GET /v1/backends`). The
//! backend's [`Reply`] becomes the HTTP answer.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use serde_json::{json, Map, Value};
use tower::{Layer, Service};

use super::measure::Labels;
use super::respond::{self, Body};
use crate::call::{Call, Directives, Reply, Secret, TraceContext};
use crate::callers::Callers;
use crate::canonical::route::{route, Route};
use crate::canonical::validate::{self, TeamWrite};
use crate::canonical::Operation;
use crate::error::{Error, ErrorCode};
use crate::mapping::registry::{Backends, Served};

pub const BACKEND_HEADER: &str = "teamgate-backend";
/// The vendor credential, on backends configured with `forward_credential = true`.
pub const CREDENTIAL_HEADER: &str = "teamgate-upstream-credential";
/// Makes a POST safe to retry (see [`crate::idempotency`]).
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

#[derive(Clone)]
pub struct RouterLayer {
    backends: Arc<Backends>,
    callers: Arc<Callers>,
}

impl RouterLayer {
    pub fn new(backends: Arc<Backends>, callers: Arc<Callers>) -> Self {
        RouterLayer { backends, callers }
    }
}

impl<S> Layer<S> for RouterLayer {
    type Service = RouterService<S>;

    fn layer(&self, inner: S) -> RouterService<S> {
        RouterService {
            inner,
            backends: self.backends.clone(),
            callers: self.callers.clone(),
        }
    }
}

#[derive(Clone)]
pub struct RouterService<S> {
    inner: S,
    backends: Arc<Backends>,
    callers: Arc<Callers>,
}

impl<S> Service<Request<Bytes>> for RouterService<S>
where
    S: Service<Call, Response = Reply, Error = Error> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = Response<Body>;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Bytes>) -> Self::Future {
        // tower's clone-and-swap: the service polled ready is the one that gets the call.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let call = match self.route(&req) {
            Ok(Routed::Call(call)) => *call,
            Ok(Routed::Answered(response)) => return Box::pin(async move { Ok(response) }),
            Err(error) => return Box::pin(async move { Err(error) }),
        };
        Box::pin(run(inner, call))
    }
}

/// What routing made of a request.
enum Routed {
    Call(Box<Call>),
    /// Answered without a backend.
    Answered(Response<Body>),
}

impl<S> RouterService<S> {
    fn route(&self, req: &Request<Bytes>) -> Result<Routed, Error> {
        let mut request = match route(req.method(), req.uri().path(), req.uri().query())? {
            Route::Operation(request) => request,
            Route::Backends => {
                let response = respond::json(200, &describe(&self.backends));
                return Ok(answered(response, "list_backends"));
            }
        };
        let op = request.op;
        let span = tracing::Span::current();
        span.record("operation", op.name());
        let served = self.select_backend(req).map_err(|e| e.during(op.name()))?;
        let backend = &served.backend;
        span.record("backend", backend.name.as_str());
        let fail = |e: Error| e.during(op.name()).with_backend(&backend.name);
        self.callers
            .authorize(req.headers(), &backend.name, op)
            .map_err(fail)?;
        let credential = forwarded_credential(req, &served).map_err(fail)?;
        let idempotency_key = idempotency_key(req).map_err(fail)?;
        request.input = input(op, req.body()).map_err(fail)?;
        let partition = match &credential {
            Some(credential) => backend.fingerprint(credential),
            None => backend.configured_fingerprint(),
        };
        Ok(Routed::Call(Box::new(Call {
            backend: Arc::from(backend.name.as_str()),
            request,
            credential,
            partition,
            directives: directives(req),
            policy: served.policy,
            trace: req.extensions().get::<TraceContext>().cloned(),
            idempotency_key,
        })))
    }

    fn select_backend<B>(&self, req: &Request<B>) -> Result<Served, Error> {
        let name = match req.headers().get(BACKEND_HEADER) {
            None => self.backends.default_name(),
            Some(v) => v.to_str().unwrap_or("\u{fffd}").trim(),
        };
        self.backends.get(name).ok_or_else(|| {
            let snapshot = self.backends.snapshot();
            let names: Vec<&str> = snapshot.keys().map(String::as_str).collect();
            Error::invalid(format!(
                "unknown backend {name:?} in Teamgate-Backend; configured: {}",
                names.join(", ")
            ))
            .with_extra("backends", json!(names))
        })
    }
}

/// Runs the call on its backend and answers with the canonical result.
async fn run<S>(mut inner: S, call: Call) -> Result<Response<Body>, Error>
where
    S: Service<Call, Response = Reply, Error = Error>,
{
    let labels = Labels {
        operation: call.request.op.name(),
        backend: call.backend.clone(),
    };
    let reply = inner
        .call(call)
        .await
        .map_err(|e| e.during(labels.operation).with_backend(&labels.backend))?;
    let mut response = respond::reply(reply);
    response.extensions_mut().insert(labels);
    Ok(response)
}

fn answered(mut response: Response<Body>, operation: &'static str) -> Routed {
    response.extensions_mut().insert(Labels {
        operation,
        backend: Arc::from("none"),
    });
    Routed::Answered(response)
}

/// The caller's vendor credential, on a backend that takes one (and then it is required).
fn forwarded_credential<B>(req: &Request<B>, served: &Served) -> Result<Option<Secret>, Error> {
    if !served.forward_credential {
        return Ok(None);
    }
    req.headers()
        .get(CREDENTIAL_HEADER)
        .filter(|v| !v.is_empty())
        .and_then(|v| v.to_str().ok())
        .map(|text| Some(Secret::new(text.to_string())))
        .ok_or_else(|| {
            Error::new(
                ErrorCode::Unauthenticated,
                format!(
                    "backend `{}` needs the vendor credential in {CREDENTIAL_HEADER}",
                    served.backend.name
                ),
            )
        })
}

/// `Idempotency-Key`: 1 to 255 visible ASCII characters.
fn idempotency_key<B>(req: &Request<B>) -> Result<Option<String>, Error> {
    let Some(value) = req.headers().get(IDEMPOTENCY_HEADER) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .filter(|v| !v.is_empty() && v.len() <= 255 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(|v| Some(v.to_string()))
        .ok_or_else(|| Error::invalid("Idempotency-Key must be 1 to 255 visible ASCII characters"))
}

/// The operation's validated input: the JSON body of the operations that take one.
fn input(op: Operation, body: &Bytes) -> Result<Map<String, Value>, Error> {
    let mode = match op {
        Operation::CreateTeam => Some(TeamWrite::Create),
        Operation::UpdateTeam => Some(TeamWrite::Patch),
        _ => None,
    };
    let takes_body = mode.is_some() || matches!(op, Operation::AddMember | Operation::UpdateMember);
    if !takes_body {
        return match body.is_empty() {
            true => Ok(Map::new()),
            false => Err(Error::invalid(format!("{} takes no body", op.name()))),
        };
    }
    if body.is_empty() {
        return Err(Error::invalid(
            "the body is empty; a JSON object is expected",
        ));
    }
    let value: Value = crate::canonical::strict_json::parse(body)
        .map_err(|e| Error::invalid(format!("the body is not valid JSON: {e}")))?;
    match (op, mode) {
        (_, Some(mode)) => validate::team_input(&value, mode),
        (Operation::AddMember, None) => validate::member_input(&value),
        _ => validate::member_role_input(&value),
    }
}

/// `Cache-Control: no-cache` / `max-age=0` / `no-store` and `If-None-Match` from the caller.
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

/// `GET /v1/backends`: what each backend is and can do, read from its mapping.
fn describe(backends: &Backends) -> Value {
    let snapshot = backends.snapshot();
    let described: Vec<Value> = snapshot
        .values()
        .map(|served| {
            let b = &served.backend;
            let m = &b.mapping;
            let roles: Vec<&str> = ["admin", "member"]
                .into_iter()
                .filter(|r| m.member.vendor_role(r).is_some())
                .collect();
            json!({
                "name": b.name,
                "vendor": m.vendor,
                "default": b.name == backends.default_name(),
                "operations": m.operations.keys().map(|op| op.name()).collect::<Vec<_>>(),
                "team_fields": m.team_fields(),
                "member_roles": roles,
                "forward_credential": served.forward_credential,
                "cache": {
                    "ttl_ms": served.policy.ttl.as_millis() as u64,
                    "stale_if_error_ms": served.policy.stale_if_error.as_millis() as u64,
                },
                "limits": {
                    "name_max": m.limits.name_max,
                    "description_max": m.limits.description_max,
                    "page_size_max": m.limits.page_size_max,
                },
            })
        })
        .collect();
    json!({ "backends": described })
}
