//! The tower stack, composed in exactly one place. Order: top = first to see the request.

use std::convert::Infallible;
use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;
use tower::util::BoxCloneSyncService;
use tower::{BoxError, ServiceBuilder, ServiceExt};

use super::gateway::{problem_response, request_id, Body, Gateway, RequestId, REQUEST_ID_HEADER};
use crate::canonical::{ErrorCode, Problem};
use crate::config::ServerLimits;

/// Infallible: every failure of the stack has become a problem response.
pub type HttpService = BoxCloneSyncService<Request<Incoming>, Response<Body>, Infallible>;

pub fn build(gateway: Arc<Gateway>, limits: &ServerLimits) -> HttpService {
    let gateway_service = tower::service_fn(move |req: Request<Incoming>| {
        let gateway = gateway.clone();
        async move { Ok::<_, Infallible>(gateway.handle(req).await) }
    });
    let stack = ServiceBuilder::new()
        // Refuse at once rather than queue without bound when every slot is busy.
        .load_shed()
        // Clones share one semaphore, so this bounds the whole process.
        .concurrency_limit(limits.concurrency_limit)
        // A whole canonical request, all its upstream steps included.
        .timeout(limits.request_timeout)
        .service(gateway_service);
    // Outermost: the errors of the layers above become problem responses, so hyper only
    // ever sees a response.
    // It also gives the request its id first, so that even a shed or timed-out request
    // answers with one.
    BoxCloneSyncService::new(tower::service_fn(move |mut req: Request<Incoming>| {
        let stack = stack.clone();
        let id = request_id(&req);
        req.extensions_mut().insert(RequestId(id.clone()));
        async move { Ok::<_, Infallible>(to_problem(stack.oneshot(req).await, &id)) }
    }))
}

fn to_problem(result: Result<Response<Body>, BoxError>, request_id: &str) -> Response<Body> {
    let problem = match result {
        Ok(response) => return response,
        Err(e) if e.is::<tower::load_shed::error::Overloaded>() => Problem::new(
            ErrorCode::UpstreamUnavailable,
            "teamgate is at its concurrency limit; retry shortly",
        ),
        Err(e) if e.is::<tower::timeout::error::Elapsed>() => Problem::new(
            ErrorCode::UpstreamTimeout,
            "the request took longer than the configured request timeout",
        ),
        Err(_) => Problem::internal("the request failed"),
    };
    let mut response = problem_response(&problem, request_id);
    if let Ok(v) = http::HeaderValue::from_str(request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    response
}
